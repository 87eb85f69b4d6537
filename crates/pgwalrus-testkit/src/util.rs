//! Process, OS-user and filesystem helpers shared by the harness.
//!
//! PostgreSQL server binaries refuse to run as root, so when the test process
//! runs as root (euid 0) every server binary is started through
//! `runuser -u postgres --` and every file the server touches is handed to the
//! `postgres` OS user. Processes are inspected through `/proc` and signalled
//! with the `kill` command (the crate forbids `unsafe`, so no libc calls).

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The OS user that runs server binaries when the test process is root.
pub const SERVER_OS_USER: &str = "postgres";

/// The effective uid of this process (owner of `/proc/self`).
pub(crate) fn euid() -> u32 {
    fs::metadata("/proc/self")
        .map(|m| m.uid())
        .expect("pgwalrus-testkit: cannot stat /proc/self to learn the effective uid")
}

/// Whether this process runs as root, in which case server binaries run as
/// [`SERVER_OS_USER`] through `runuser`.
pub fn is_root() -> bool {
    euid() == 0
}

/// uid and gid of [`SERVER_OS_USER`].
#[derive(Clone, Copy, Debug)]
struct ServerUser {
    uid: u32,
    gid: u32,
}

fn server_user() -> ServerUser {
    static USER: OnceLock<ServerUser> = OnceLock::new();
    *USER.get_or_init(|| {
        let id = |flag: &str| -> u32 {
            let out = Command::new("id")
                .args([flag, SERVER_OS_USER])
                .stdin(Stdio::null())
                .output()
                .unwrap_or_else(|e| panic!("pgwalrus-testkit: cannot run `id {flag} {SERVER_OS_USER}`: {e}"));
            assert!(
                out.status.success(),
                "pgwalrus-testkit: running as root, but there is no `{SERVER_OS_USER}` OS user to run the \
                 server as (install postgresql-15 or create the user): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .unwrap_or_else(|e| panic!("pgwalrus-testkit: `id {flag} {SERVER_OS_USER}` printed no number: {e}"))
        };
        ServerUser { uid: id("-u"), gid: id("-g") }
    })
}

/// Removes every `PG*` variable (PGDATA, PGPORT, PGSSLMODE, PGPASSWORD, …)
/// inherited from the test environment so it cannot leak into a child.
pub(crate) fn scrub_pg_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        if key.as_encoded_bytes().starts_with(b"PG") {
            cmd.env_remove(key);
        }
    }
}

/// A [`Command`] for a PostgreSQL *server* binary (initdb, pg_ctl, postgres,
/// …): wrapped in `runuser -u postgres --` when this process is root, run
/// directly otherwise. `PG*` environment variables are removed, stdin is
/// `/dev/null` and the working directory is `/` (the server user may not be
/// able to enter the test's working directory).
pub fn server_command(program: impl AsRef<OsStr>) -> Command {
    let mut cmd = if is_root() {
        let _ = server_user(); // fail early with a clear message
        let mut c = Command::new("runuser");
        c.args(["-u", SERVER_OS_USER, "--"]).arg(program.as_ref());
        c
    } else {
        Command::new(program.as_ref())
    };
    scrub_pg_env(&mut cmd);
    cmd.current_dir("/").stdin(Stdio::null());
    cmd
}

/// Gives `path` (recursively; symlinks themselves, not their targets) to the
/// server OS user when this process is root; a no-op otherwise.
pub fn give_to_server_user(path: &Path) {
    if !is_root() {
        return;
    }
    let user = server_user();
    chown_tree(path, user.uid, user.gid).unwrap_or_else(|e| {
        panic!(
            "pgwalrus-testkit: cannot chown {} to {SERVER_OS_USER}: {e}",
            path.display()
        )
    });
}

fn chown_tree(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
    let meta = fs::symlink_metadata(path)?;
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
    if meta.is_dir() {
        for entry in fs::read_dir(path)? {
            chown_tree(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// Creates a directory (not its parents) with the given mode.
pub(crate) fn mkdir(path: &Path, mode: u32) -> io::Result<()> {
    fs::DirBuilder::new().mode(mode).create(path)?;
    // The umask may have removed bits.
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

/// Sets a file's mode, panicking with the path on failure.
pub(crate) fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap_or_else(|e| {
        panic!(
            "pgwalrus-testkit: cannot chmod {:o} {}: {e}",
            mode,
            path.display()
        )
    });
}

/// Runs `cmd`, returning its stdout on success and a description with both
/// output streams on failure. `what` names the step in error messages.
pub(crate) fn run(cmd: &mut Command, what: &str) -> Result<String, String> {
    let out: Output = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: cannot run {cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{what} failed ({}): {cmd:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout).trim_end(),
            String::from_utf8_lossy(&out.stderr).trim_end()
        ))
    }
}

/// The current instant. Harness code only: the workspace routes clock reads
/// of production code through the driver, which does not apply to test setup.
#[allow(
    clippy::disallowed_methods,
    reason = "test harness timeouts, not production logic"
)]
pub(crate) fn now() -> Instant {
    Instant::now()
}

/// Renames `from` to `to` (atomic publication of cache directories).
#[allow(
    clippy::disallowed_methods,
    reason = "test-harness cache directories in the temp dir, not archive data"
)]
pub(crate) fn rename(from: &Path, to: &Path) -> io::Result<()> {
    fs::rename(from, to)
}

/// Polls `condition` every 20 ms until it returns true or `timeout` passes;
/// returns whether it became true.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The fields of `/proc/<pid>/stat` after the command name, starting with
/// the state (field 3).
fn proc_stat_tail(pid: u32) -> Option<Vec<String>> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let tail = &stat[stat.rfind(')')? + 1..];
    Some(tail.split_whitespace().map(str::to_owned).collect())
}

/// Whether a process with this pid exists and is not a zombie.
pub fn process_alive(pid: u32) -> bool {
    matches!(
        proc_stat_tail(pid).as_deref().and_then(|f| f.first()).map(String::as_str),
        Some(state) if state != "Z" && state != "X" && state != "x"
    )
}

/// Whether a process with this pid exists at all (zombies included).
pub(crate) fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The start time of a process (field 22 of `/proc/<pid>/stat`), which
/// together with the pid identifies it across pid reuse.
pub(crate) fn process_start_time(pid: u32) -> Option<u64> {
    proc_stat_tail(pid)?.get(19)?.parse().ok()
}

/// The parent pid of a process.
fn parent_pid(pid: u32) -> Option<u32> {
    proc_stat_tail(pid)?.get(1)?.parse().ok()
}

/// The pids whose parent is `pid` (live ones only).
pub(crate) fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&child| parent_pid(child) == Some(pid) && process_alive(child))
        .collect()
}

/// Whether `pid` is a live postmaster serving `data_dir` (its command line
/// names the data directory). Guards every kill against pid reuse.
pub(crate) fn is_postmaster_of(pid: u32, data_dir: &Path) -> bool {
    if !process_alive(pid) {
        return false;
    }
    let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let want = data_dir.as_os_str().as_encoded_bytes();
    cmdline.split(|&b| b == 0).any(|arg| arg == want)
}

/// The postmaster pid recorded in `<data_dir>/postmaster.pid`, if any.
pub(crate) fn pid_file_pid(data_dir: &Path) -> Option<u32> {
    let text = fs::read_to_string(data_dir.join("postmaster.pid")).ok()?;
    text.lines().next()?.trim().parse().ok()
}

/// Sends a signal with the `kill` command; returns whether it was delivered.
pub(crate) fn send_signal(signal: &str, pid: u32) -> bool {
    Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// SIGKILLs the postmaster `pid` of `data_dir` (only if it really is that
/// postmaster) and its children, then waits until they are gone.
pub(crate) fn kill_postmaster_tree(pid: u32, data_dir: &Path) {
    if !is_postmaster_of(pid, data_dir) {
        return;
    }
    let children = children_of(pid);
    send_signal("KILL", pid);
    for &child in &children {
        send_signal("KILL", child);
    }
    wait_until(Duration::from_secs(10), || {
        !process_alive(pid) && children.iter().all(|&c| !process_alive(c))
    });
}

/// 64-bit FNV-1a, a stable hash for cache keys.
pub(crate) fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in *part {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        hash ^= 0xff; // separator
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Environment variable: directory in which cluster directories are created
/// (default: `/dev/shm/pgwalrus-testkit-<euid>` if `/dev/shm` exists, else
/// [`cache_dir`]).
pub const CLUSTERS_DIR_ENV: &str = "PGWALRUS_TESTKIT_DIR";

/// Creates `dir` (mode 0755) if missing and, when root, checks that the
/// server OS user can enter it.
fn prepare_shared_dir(dir: &Path) {
    match mkdir(dir, 0o755) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => panic!("pgwalrus-testkit: cannot create {}: {e}", dir.display()),
    }
    if is_root() {
        let ok = server_command("test")
            .arg("-x")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "pgwalrus-testkit: the `{SERVER_OS_USER}` OS user cannot enter {} (every parent directory \
             must be o+x)",
            dir.display()
        );
    }
}

/// The harness's cache directory, `<temp dir>/pgwalrus-testkit-<euid>`: the
/// initdb templates and the TLS material, kept across test processes.
pub fn cache_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("pgwalrus-testkit-{}", euid()));
        prepare_shared_dir(&dir);
        dir
    })
}

/// Where cluster directories are created: `$PGWALRUS_TESTKIT_DIR` if set,
/// else `/dev/shm/pgwalrus-testkit-<euid>` when `/dev/shm` is a directory (tmpfs:
/// creating a data directory's ~1000 files there is more than ten times
/// faster than on the CI machines' ext4), else [`cache_dir`].
pub fn clusters_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = match std::env::var_os(CLUSTERS_DIR_ENV) {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ if Path::new("/dev/shm").is_dir() => {
                PathBuf::from(format!("/dev/shm/pgwalrus-testkit-{}", euid()))
            }
            _ => return cache_dir().to_owned(),
        };
        prepare_shared_dir(&dir);
        dir
    })
}

/// Quotes a libpq connection-string value when needed.
pub(crate) fn conninfo_value(value: &str) -> String {
    if !value.is_empty() && !value.contains(|c: char| c.is_whitespace() || c == '\'' || c == '\\') {
        return value.to_owned();
    }
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('\'');
    for c in value.chars() {
        if c == '\'' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('\'');
    quoted
}

/// Quotes a postgresql.conf value (always single-quoted, quotes doubled).
pub(crate) fn conf_value(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
}

/// Copies a directory tree with `cp -a` (keeps modes and, as root, owners).
pub(crate) fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    run(
        Command::new("cp").arg("-a").arg("--").arg(from).arg(to),
        "copying a data directory",
    )
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(conninfo_value("/tmp/x"), "/tmp/x");
        assert_eq!(conninfo_value("a b'c"), r"'a b\'c'");
        assert_eq!(conninfo_value(""), "''");
        assert_eq!(conf_value("cp %p '/x/%f'"), "'cp %p ''/x/%f'''");
    }

    #[test]
    fn own_process_is_alive() {
        let me = std::process::id();
        assert!(process_alive(me));
        assert!(process_start_time(me).is_some());
        assert!(parent_pid(me).is_some());
    }

    #[test]
    fn fnv_is_stable() {
        assert_eq!(fnv1a(&[b"a", b"b"]), fnv1a(&[b"a", b"b"]));
        assert_ne!(fnv1a(&[b"ab"]), fnv1a(&[b"a", b"b"]));
    }
}
