//! What a failed session means: stop for good ([`StopKind`]) or retry after a pause. Decided
//! by the error's kind, SQLSTATE constant or predicate, never by its text.

use std::path::PathBuf;

use pgwalrus_archive::Error as ArchiveError;
use pgwalrus_client::{Error as ClientError, SqlState};
use pgwalrus_wal::{Lsn, TimeLineId};

use crate::error::{Error, StopKind, StopReason};

/// How a session failed.
#[derive(Debug)]
pub(crate) enum SessionError {
    /// Stop the engine.
    Fatal(StopReason),
    /// Reconnect (unless `no_loop`).
    Retry {
        /// What happened.
        error: Error,
        /// Whether the session wrote WAL before it happened (resets the backoff).
        progressed: bool,
        /// The archive's file system is full (or under its free-space floor).
        disk_full: bool,
    },
}

impl SessionError {
    pub(crate) fn fatal(kind: StopKind, error: impl Into<Error>) -> Self {
        SessionError::Fatal(StopReason::new(kind, error))
    }

    pub(crate) fn retry(error: impl Into<Error>) -> Self {
        SessionError::Retry {
            error: error.into(),
            progressed: false,
            disk_full: false,
        }
    }

    /// The same error, noting whether the session made WAL durable before it.
    pub(crate) fn progressed(self, progressed: bool) -> Self {
        match self {
            SessionError::Retry {
                error, disk_full, ..
            } => SessionError::Retry {
                error,
                progressed,
                disk_full,
            },
            fatal => fatal,
        }
    }
}

/// Connection-phase client errors: what retrying cannot fix is fatal, the rest retried.
pub(crate) fn client_error(e: ClientError) -> SessionError {
    if e.is_permanent() {
        SessionError::fatal(StopKind::Config, e)
    } else {
        SessionError::retry(e)
    }
}

/// Archive errors: another cluster, and a segment file whose size no segment of this
/// cluster can have, are [`StopKind::OtherCluster`] (docs/failure-modes.md); a full disk or
/// a failed fsync is retried (the slot still holds the WAL; streaming restarts from the last
/// durable position); any other local I/O problem is [`StopKind::Io`] — a permission denied
/// or read-only file system too, whatever the operation (a rename refused for want of
/// permission poisons the writer, but retrying it cannot help), and a segment file another
/// process moved or replaced ([`ArchiveError::Replaced`]: two writers in one directory must
/// not take turns).
pub(crate) fn archive_error(e: ArchiveError) -> SessionError {
    if e.is_cluster_mismatch()
        || matches!(
            e,
            ArchiveError::WrongSegmentSize { .. } | ArchiveError::OversizedPartial { .. }
        )
    {
        return SessionError::fatal(StopKind::OtherCluster, e);
    }
    if e.is_no_space() {
        return SessionError::Retry {
            error: e.into(),
            progressed: false,
            disk_full: true,
        };
    }
    let refused = e.io_error().is_some_and(|io| {
        matches!(
            io.kind(),
            std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
        )
    });
    if refused {
        return SessionError::fatal(StopKind::Io, e);
    }
    if e.is_poisoning() || e.is_poisoned() || e.is_discontinuity() {
        return SessionError::retry(e);
    }
    SessionError::fatal(StopKind::Io, e)
}

/// The server sent WAL that does not verify: stop, never archive it silently.
pub(crate) fn corrupt_wal(
    e: &pgwalrus_wal::DecodeError,
    server: &str,
    system_id: u64,
) -> SessionError {
    SessionError::fatal(
        StopKind::CorruptWal,
        Error::msg(format!(
            "server {server} (system identifier {system_id}) sent WAL that fails verification at {}: {}; \
             the chunk completing it was not archived and its segment stays .partial",
            e.lsn, e.kind
        )),
    )
}

/// The server sent WAL `start..end` where the stream stood at `expected` (where the last
/// chunk ended, or where streaming began): a gap or a repeat, never written. Retried: the
/// next session starts again from what is durable.
pub(crate) fn out_of_place(server: &str, start: Lsn, end: Lsn, expected: Lsn) -> Error {
    let what = if start < expected {
        format!(
            "it goes back {} bytes, over WAL already received",
            expected.abs_diff(start)
        )
    } else {
        format!("{} bytes were skipped", start.abs_diff(expected))
    };
    Error::msg(format!(
        "server {server} sent WAL from {start} to {end}, but the stream is at {expected}, \
         where the WAL it sent before ends: {what}; the chunk was not archived"
    ))
}

/// Where a stream stands, for error messages.
#[derive(Debug, Clone)]
pub(crate) struct StreamPosition {
    pub(crate) tli: TimeLineId,
    pub(crate) start: Lsn,
    pub(crate) slot: Option<String>,
    pub(crate) archive_has_wal: bool,
    pub(crate) partial: Option<PathBuf>,
}

/// Errors while streaming: WAL gone from the server and dropped slots are
/// [`StopKind::WalGone`].
pub(crate) fn stream_error(e: ClientError, p: &StreamPosition) -> SessionError {
    match e.sqlstate() {
        Some(SqlState::UNDEFINED_FILE | SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE) => {
            let kept = p.partial.as_ref().map_or_else(String::new, |f| {
                format!("; \"{}\" was left as it was", f.display())
            });
            SessionError::fatal(
                StopKind::WalGone,
                Error::context(
                    e,
                    format!(
                        "the server no longer has the WAL the archive needs next (timeline {}, from {}){kept}; \
                         to continue with a gap, move the archive's newest files aside or start a new archive directory",
                        p.tli, p.start
                    ),
                ),
            )
        }
        Some(SqlState::UNDEFINED_OBJECT) => {
            let kind = if p.archive_has_wal {
                StopKind::WalGone
            } else {
                StopKind::Config
            };
            SessionError::fatal(
                kind,
                Error::context(
                    e,
                    format!(
                        "replication slot {} is gone; WAL after {} may have been removed — recreate it with --create-slot and check the archive for a gap",
                        p.slot
                            .as_deref()
                            .map_or_else(|| "(none)".to_owned(), |s| format!("\"{s}\"")),
                        p.start
                    ),
                ),
            )
        }
        _ => client_error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_errors_split_into_retry_and_stop_by_kind() {
        let full = ArchiveError::Io {
            op: pgwalrus_archive::Op::Write,
            path: PathBuf::from("/a/x"),
            source: std::io::Error::from_raw_os_error(28),
        };
        assert!(matches!(
            archive_error(full),
            SessionError::Retry {
                disk_full: true,
                ..
            }
        ));
        let stops = |e: ArchiveError| {
            matches!(
                archive_error(e),
                SessionError::Fatal(StopReason {
                    kind: StopKind::Io,
                    ..
                })
            )
        };
        let io = |op, source| ArchiveError::Io {
            op,
            path: PathBuf::from("/a/x"),
            source,
        };
        use pgwalrus_archive::Op;
        use std::io::{Error as IoError, ErrorKind};
        assert!(stops(io(
            Op::Write,
            IoError::from(ErrorKind::PermissionDenied)
        )));
        assert!(stops(io(Op::Write, IoError::from_raw_os_error(5))));
        // A refused rename poisons the writer, but retrying cannot help.
        assert!(stops(io(
            Op::Rename,
            IoError::from(ErrorKind::PermissionDenied)
        )));
        assert!(stops(io(Op::Create, IoError::from_raw_os_error(30))));
        assert!(stops(ArchiveError::Replaced {
            path: PathBuf::from("/a/x.partial"),
            op: Op::Sync,
        }));
        // A failed fsync (EIO) is retried from the last durable position.
        assert!(matches!(
            archive_error(io(Op::Sync, IoError::from_raw_os_error(5))),
            SessionError::Retry {
                disk_full: false,
                ..
            }
        ));
    }
}
