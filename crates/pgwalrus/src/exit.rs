//! Exit codes: the one table every command maps its outcome to, documented in `--help` and
//! the README. Scripts and service managers rely on them, so they never change meaning.

use std::process::ExitCode;

/// What a run of pgwalrus ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Exit {
    /// Success: a clean stop (signal, `--endpos`) or a check that passed.
    Ok = 0,
    /// The server could not be reached or the connection was lost (with `--no-loop`); trying
    /// again later may work.
    Connection = 1,
    /// Usage or configuration error: bad flags or conninfo, authentication failure, missing
    /// privilege, unsupported server, missing slot. Retrying the same command will not help.
    Config = 2,
    /// The archive directory holds WAL of another cluster (or another segment size).
    OtherCluster = 3,
    /// WAL we need is gone from the server: the slot was dropped or invalidated, or the
    /// requested segment has been removed.
    WalGone = 4,
    /// A local I/O error (disk full, permissions, failed fsync) stopped the run.
    Io = 5,
    /// The server sent WAL that fails verification (a record's CRC, a page header, the
    /// `xl_prev` chain); nothing after it was archived.
    CorruptWal = 6,
    /// `restore`: the file is in the archive but damaged or unreadable, the archive has a
    /// hole where it should be, or restore cannot run (bad arguments, no archive, `%p` not
    /// writable). PostgreSQL 14–18 treat a `restore_command` status above 125 like death by
    /// a signal and stop recovery with FATAL; any lower failure status is taken for "not in
    /// the archive", and recovery would end there and promote.
    AbortRecovery = 255,
}

impl Exit {
    /// `verify` and `dump`: the archive was read, and problems were found in it. Shares
    /// status 1 with [`Exit::Connection`]; those commands make no connection.
    pub const PROBLEMS_FOUND: Exit = Exit::Connection;

    /// `restore`: the archive does not have the file asked for. Recovery moves on (to the
    /// next history file it probes for, or to the end of recovery). Shares status 1 with
    /// [`Exit::Connection`]; restore makes no connection.
    pub const NOT_IN_ARCHIVE: Exit = Exit::Connection;

    /// The numeric process status.
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit.code())
    }
}

/// The exit-code table as shown at the end of `--help`.
pub const HELP_TABLE: &str = "\
Exit status:
  0  success (clean stop, or the check passed)
  1  server unreachable or connection lost (verify, dump: problems found in the archive)
  2  usage or configuration error (flags, conninfo, authentication, privileges, slot)
  3  the archive belongs to another cluster
  4  WAL needed is gone from the server (slot dropped or invalidated, segment removed)
  5  local I/O error (disk full, permissions, fsync failure)
  6  the server sent WAL that fails verification (CRC, page header, xl_prev)
  255  restore: file damaged or unreadable, hole in the archive, or restore cannot run";

/// The exit statuses of `restore`, as shown at the end of its `--help`.
pub const RESTORE_HELP: &str = "\
Exit status (what PostgreSQL does with it):
  0    the file was restored to PATH
  1    the archive does not have the file: recovery moves on (probing for history files,
       or ending at the end of the archive)
  255  the file is damaged or unreadable, the archive has a hole where it should be, or
       restore cannot run: PostgreSQL 14-18 stop recovery (FATAL) on a status above 125,
       instead of ending recovery early and promoting

Example: restore_command = 'pgwalrus restore %f %p -D /var/lib/walarchive --prefetch 8'";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_table_lists_every_code() {
        for exit in [
            Exit::Ok,
            Exit::Connection,
            Exit::Config,
            Exit::OtherCluster,
            Exit::WalGone,
            Exit::Io,
            Exit::CorruptWal,
            Exit::AbortRecovery,
        ] {
            assert!(
                HELP_TABLE.contains(&format!("  {}  ", exit.code())),
                "{exit:?} missing from help"
            );
        }
    }
}
