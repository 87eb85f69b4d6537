//! Running the binary: a clean environment, captured output, a private home directory; in
//! the background with a guard that kills it by pid.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use pgwalrus_testkit::wait_until;

/// A finished run of the binary.
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Panics with both streams unless the exit code is `code`.
    #[track_caller]
    pub(crate) fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "expected exit code {code}, got {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }
}

/// A private home directory (for `.pgpass`, `~/.postgresql`), removed on drop.
pub(crate) struct Home {
    pub(crate) dir: PathBuf,
}

impl Home {
    pub(crate) fn new() -> Home {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "pgwalrus-cli-home-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create test home");
        Home { dir }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `pgwalrus ARGS…` with no `PG*` variables and `HOME` set to `home`, plus `envs`.
pub(crate) fn pgwalrus(home: &Home, args: &[&str], envs: &[(&str, &str)]) -> Run {
    Run::from(command(home, args, envs).output().expect("run pgwalrus"))
}

/// The `pgwalrus` command with a scrubbed environment (no `PG*` variables, `HOME` set to
/// `home`), plus `envs`.
fn command(home: &Home, args: &[&str], envs: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgwalrus"));
    scrubbed(&mut cmd, home, args, envs);
    cmd
}

/// [`command`] run as the server's OS user (`postgres`) through `setpriv`, for tests of
/// file permissions, which root does not meet. `home` must be the user's to read.
fn command_as_server_user(home: &Home, args: &[&str], envs: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid=postgres",
        "--regid=postgres",
        "--clear-groups",
        "--",
        env!("CARGO_BIN_EXE_pgwalrus"),
    ]);
    scrubbed(&mut cmd, home, args, envs);
    cmd
}

fn scrubbed<'c>(
    cmd: &'c mut Command,
    home: &Home,
    args: &[&str],
    envs: &[(&str, &str)],
) -> &'c mut Command {
    cmd.args(args)
        .env_clear()
        .env("HOME", home.path())
        .env("PATH", "/usr/bin:/bin");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd
}

/// Sends `signal` (a name such as `TERM`) to the process `pid` with the `kill` command (the
/// workspace forbids `unsafe`, so no libc). Returns whether it was delivered.
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

/// A child process that is SIGKILLed (by its pid) and reaped when dropped, also while a
/// test unwinds from a panic.
pub(crate) struct Guarded {
    child: Option<Child>,
    pid: u32,
}

impl Guarded {
    /// Spawns `cmd` and guards it.
    pub(crate) fn spawn(cmd: &mut Command) -> Guarded {
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {cmd:?}: {e}"));
        Guarded {
            pid: child.id(),
            child: Some(child),
        }
    }

    /// `Some(status)` once the process has exited (reaped), `None` while it runs.
    pub(crate) fn try_status(&mut self) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        child.try_wait().expect("try_wait")
    }

    /// Whether the process still runs.
    pub(crate) fn is_running(&mut self) -> bool {
        self.child.is_some() && self.try_status().is_none()
    }

    /// Waits up to `timeout` for the process to exit; `None` if it still runs.
    pub(crate) fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut status = None;
        wait_until(timeout, || {
            status = self.try_status();
            status.is_some()
        });
        status
    }

    /// Waits up to `timeout` for the process to exit, then returns its status and what it
    /// wrote to its piped stdout and stderr (small outputs only: the pipes are read after
    /// the exit). `None` if it still runs.
    pub(crate) fn wait_output(
        &mut self,
        timeout: Duration,
    ) -> Option<(ExitStatus, String, String)> {
        let status = self.wait_timeout(timeout)?;
        let child = self.child.as_mut()?;
        let read = |pipe: Option<&mut dyn Read>| {
            let mut text = String::new();
            if let Some(pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        };
        let stdout = read(child.stdout.as_mut().map(|p| p as &mut dyn Read));
        let stderr = read(child.stderr.as_mut().map(|p| p as &mut dyn Read));
        Some((status, stdout, stderr))
    }

    /// Writes `input` to the process's piped stdin and closes it (small inputs only: the
    /// write must fit in the pipe).
    pub(crate) fn feed_stdin(&mut self, input: &[u8]) {
        if let Some(mut stdin) = self.child.as_mut().and_then(|c| c.stdin.take()) {
            // The process may exit before reading everything: ignore EPIPE.
            let _ = stdin.write_all(input);
        }
    }

    /// Sends `signal` (`TERM`, `INT`, …) to the process.
    pub(crate) fn signal(&self, signal: &str) {
        assert!(
            send_signal(signal, self.pid),
            "could not send SIG{signal} to {}",
            self.pid
        );
    }

    /// SIGKILLs the process and reaps it.
    pub(crate) fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            // `Child::kill` is `kill(pid, SIGKILL)` on exactly this pid; harmless if it exited.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// `pgwalrus ARGS…` running in the background (scrubbed environment as [`pgwalrus`]), its
/// stderr going to a file; SIGKILLed by pid when dropped.
pub(crate) struct Background {
    process: Guarded,
    log: PathBuf,
    args: String,
}

impl Background {
    /// Starts `pgwalrus ARGS…`; stderr goes to `log` (appended), stdout is discarded.
    pub(crate) fn spawn(
        home: &Home,
        args: &[&str],
        envs: &[(&str, &str)],
        log: &Path,
    ) -> Background {
        Background::start(command(home, args, envs), args, log)
    }

    /// [`Background::spawn`] as the server's OS user (`postgres`, through `setpriv`), for
    /// tests of file permissions, which root does not meet. `home` must be the user's.
    pub(crate) fn spawn_as_server_user(home: &Home, args: &[&str], log: &Path) -> Background {
        Background::start(command_as_server_user(home, args, &[]), args, log)
    }

    fn start(mut cmd: Command, args: &[&str], log: &Path) -> Background {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", log.display()));
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(file));
        Background {
            process: Guarded::spawn(&mut cmd),
            log: log.to_owned(),
            args: args.join(" "),
        }
    }

    /// What it has written to stderr so far (of every run that shared the log file).
    pub(crate) fn stderr(&self) -> String {
        std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Whether it still runs.
    pub(crate) fn is_running(&mut self) -> bool {
        self.process.is_running()
    }

    /// Its process id.
    pub(crate) fn pid(&self) -> u32 {
        self.process.pid
    }

    /// Sends `signal` (`TERM`, `INT`, …).
    pub(crate) fn signal(&self, signal: &str) {
        self.process.signal(signal);
    }

    /// SIGKILLs it.
    pub(crate) fn kill9(&mut self) {
        self.process.kill9();
    }

    /// Waits up to `timeout` for it to exit and returns its exit code; panics with its
    /// stderr if it does not exit in time (the guard then kills it) or dies of a signal.
    #[track_caller]
    pub(crate) fn wait(&mut self, timeout: Duration) -> i32 {
        match self.process.wait_timeout(timeout) {
            Some(status) => status.code().unwrap_or_else(|| {
                panic!(
                    "pgwalrus {} died of {status}\n--- stderr\n{}",
                    self.args,
                    self.stderr()
                )
            }),
            None => panic!(
                "pgwalrus {} still runs after {timeout:?}\n--- stderr\n{}",
                self.args,
                self.stderr()
            ),
        }
    }

    /// Waits for exit code `code`, panicking with stderr otherwise.
    #[track_caller]
    pub(crate) fn expect_exit(&mut self, code: i32, timeout: Duration) {
        let got = self.wait(timeout);
        assert_eq!(
            got,
            code,
            "pgwalrus {} exited with {got}, expected {code}\n--- stderr\n{}",
            self.args,
            self.stderr()
        );
    }
}

/// `cp -a FROM TO` (ownership kept: the server user's files stay its own).
#[track_caller]
pub(crate) fn copy_tree(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("run cp");
    assert!(
        status.success(),
        "cp -a {} {}",
        from.display(),
        to.display()
    );
}

/// Creates an empty file the server user owns (a signal file such as `standby.signal`).
pub(crate) fn touch_for_server(path: &Path) {
    std::fs::write(path, "").unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    pgwalrus_testkit::give_to_server_user(path);
}

/// A small tmpfs mounted for a test (root only), unmounted when dropped: a file system that
/// fills up, or can be made read-only, on cue.
pub(crate) struct SmallFs(PathBuf);

impl SmallFs {
    /// Mounts a tmpfs of `size` (`12m`) at `at`, creating the directory.
    #[track_caller]
    pub(crate) fn mount(at: &Path, size: &str) -> SmallFs {
        std::fs::create_dir_all(at).expect("mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mount -t tmpfs failed (the suite runs as root)"
        );
        SmallFs(at.to_owned())
    }

    /// Where it is mounted.
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    /// `mount -o remount,OPTION` (`ro`, `rw`).
    #[track_caller]
    pub(crate) fn remount(&self, option: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{option}")])
            .arg(&self.0)
            .status()
            .expect("run mount");
        assert!(status.success(), "mount -o remount,{option} failed");
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}
