//! Disk faults under the receive engine where a real file system cannot be made to fail on
//! cue: EIO on a write and on an fsync, ENOSPC at each step of a segment's creation and
//! completion, and the reconnect backoff while the disk stays full. A real server streams
//! through the engine into the crash-simulating file system (`pgwalrus_archive::SimFs`),
//! with a failpoint armed. After each fault the archive is copied to a real directory and
//! `pgwalrus verify` must pass on it, and the engine (or a new one, once the fault is
//! cleared) must reach the end position with no gap, every segment byte-identical to the
//! server's `pg_wal`. The faults a real file system can produce (read-only, permission
//! denied, a file replaced) are in [`disk_faults`](crate::disk_faults), through the CLI.

use std::path::Path;
use std::time::{Duration, Instant};

use pgwalrus_archive::SimFs;
use pgwalrus_archive::fs::{CrashMode, Failpoint, Fault, SimOp};
use pgwalrus_client::config::Config;
use pgwalrus_receiver::{
    Engine, FromConfig, ReceiveSettings, ReceiverStatus, Shutdown, ShutdownTrigger, State,
    StopKind, Stopped,
};
use pgwalrus_testkit::{Cluster, TRUST_USER, wait_until};
use pgwalrus_wal::Lsn;

use crate::receive_support::{segment_name, small_cluster};
use crate::support::{Home, pgwalrus};

const DIR: &str = "/archive";
const SEG: u64 = 1024 * 1024;

/// A server with WAL to stream: the archive starts with one complete segment (`seed`), and
/// streaming resumes after it, at segment `first`, up to `end` (four segments later).
struct Setup {
    c: Cluster,
    seed: String,
    seed_bytes: Vec<u8>,
    first: u64,
    end: Lsn,
}

fn current_lsn(c: &Cluster) -> Lsn {
    c.current_wal_lsn().parse().expect("an LSN")
}

fn load_and_switch(c: &Cluster) {
    c.psql(
        "CREATE TABLE IF NOT EXISTS load (i int, t text);\n\
         INSERT INTO load SELECT g, repeat(md5(g::text), 15) FROM generate_series(1, 500) g;\n\
         SELECT pg_switch_wal();",
    );
}

fn name(segno: u64) -> String {
    segment_name(1, segno, SEG)
}

fn setup() -> Setup {
    let c = small_cluster().setting("wal_keep_size", "256MB").start();
    load_and_switch(&c);
    let resume = current_lsn(&c);
    let first = resume.as_u64() / SEG;
    let seed = name(first - 1);
    let seed_bytes = std::fs::read(c.pg_wal_dir().join(&seed)).expect("the seed segment");
    for _ in 0..4 {
        load_and_switch(&c);
    }
    let end = current_lsn(&c);
    // A little WAL past the end, so the server has sent everything up to it.
    c.psql("INSERT INTO load VALUES (0, 'after the end')");
    Setup {
        c,
        seed,
        seed_bytes,
        first,
        end,
    }
}

impl Setup {
    fn fresh(&self) -> SimFs {
        let fs = SimFs::new();
        fs.create_dir(DIR);
        fs.put_file(Path::new(DIR).join(&self.seed), &self.seed_bytes);
        fs
    }

    /// Starts an engine over `fs` up to the end position, retrying quickly.
    fn spawn(&self, fs: &SimFs) -> (Engine, ShutdownTrigger) {
        self.spawn_with_backoff(fs, Duration::from_millis(50), Duration::from_millis(200))
    }

    /// [`Setup::spawn`] with a backoff of `initial` doubling to `max`.
    fn spawn_with_backoff(
        &self,
        fs: &SimFs,
        initial: Duration,
        max: Duration,
    ) -> (Engine, ShutdownTrigger) {
        let mut settings = ReceiveSettings::new(DIR);
        settings.endpos = Some(self.end);
        // Only the syncs of the WAL itself (segment creation and completion), so the nth
        // sync of a file is the same step in every run.
        settings.flush_interval = None;
        settings.status_interval = None;
        settings.backoff_initial = initial;
        settings.backoff_max = max;
        let conninfo = format!("{} replication=true", self.c.conninfo(TRUST_USER));
        let source = FromConfig::new(Config::from_conninfo(&conninfo).expect("conninfo"));
        let (trigger, shutdown) = Shutdown::new();
        let engine =
            pgwalrus_receiver::spawn_on("disk-faults", fs.clone(), settings, source, shutdown)
                .expect("spawn the engine");
        (engine, trigger)
    }

    /// Runs an engine over `fs` until it stops by itself.
    fn run(&self, fs: &SimFs) -> Result<Stopped, pgwalrus_receiver::StopReason> {
        let (engine, _trigger) = self.spawn(fs);
        assert!(
            wait_until(Duration::from_secs(60), || engine.is_finished()),
            "the engine did not stop: {:?}",
            engine.status().borrow()
        );
        engine.join()
    }

    /// A new engine over `fs` (the fault cleared) reaches the end position, and the archive
    /// is then complete and identical, and verifies.
    #[track_caller]
    fn assert_resumes(&self, fs: &SimFs, context: &str) {
        match self.run(fs) {
            Ok(Stopped::EndPosition { flushed }) => assert!(flushed >= self.end, "{context}"),
            other => panic!(
                "{context}: the restarted engine did not reach {}: {:?}",
                self.end,
                other.map_err(|r| r.error.chain())
            ),
        }
        self.assert_complete(fs, context);
    }

    /// Every segment from the seed to the end position is in `fs`, identical to the
    /// server's; nothing else but a `.partial` is left; `pgwalrus verify` passes.
    #[track_caller]
    fn assert_complete(&self, fs: &SimFs, context: &str) {
        let names = fs.live_names(DIR);
        for segno in self.first - 1..self.end.as_u64() / SEG {
            let n = name(segno);
            let ours = fs
                .live_file(Path::new(DIR).join(&n))
                .unwrap_or_else(|| panic!("{context}: {n} is missing: {names:?}"));
            let theirs = std::fs::read(self.c.pg_wal_dir().join(&n)).expect("the server's copy");
            assert!(ours == theirs, "{context}: {n} differs from the server's");
        }
        for n in &names {
            assert!(
                n.len() == 24 || n.ends_with(".partial"),
                "{context}: unexpected file {n} left in the archive: {names:?}"
            );
        }
        assert_verifies(fs, context);
    }
}

/// Copies the archive on `fs` to a real directory and runs `pgwalrus verify` on it.
#[track_caller]
fn assert_verifies(fs: &SimFs, context: &str) {
    let home = Home::new();
    let copy = home.path().join("archive-copy");
    std::fs::create_dir_all(&copy).expect("a directory for the copy");
    for n in fs.live_names(DIR) {
        let bytes = fs.live_file(Path::new(DIR).join(&n)).expect("listed");
        std::fs::write(copy.join(&n), bytes).expect("copy a file");
    }
    let run = pgwalrus(&home, &["verify", copy.to_str().expect("utf-8")], &[]);
    assert_eq!(
        run.code, 0,
        "{context}: verify failed\n{}\n{}",
        run.stdout, run.stderr
    );
}

/// Waits until the engine's status satisfies `ok`; panics with the status if not.
#[track_caller]
fn wait_status(
    engine: &Engine,
    what: &str,
    ok: impl Fn(&ReceiverStatus) -> bool,
) -> ReceiverStatus {
    let status = engine.status();
    assert!(
        wait_until(Duration::from_secs(60), || ok(&status.borrow())),
        "{what}: {:?}",
        status.borrow()
    );
    status.borrow().clone()
}

#[test]
fn eio_on_a_write_stops_the_engine_as_an_io_error_and_a_restart_resumes_with_no_gap() {
    let s = setup();
    let fs = s.fresh();
    let target = name(s.first + 1);
    fs.fail(
        Failpoint::new(SimOp::Write, Fault::Io)
            .on_path_containing(&target)
            .nth(3),
    );
    let reason = s.run(&fs).expect_err("the engine stops");
    assert_eq!(reason.kind, StopKind::Io, "{}", reason.error.chain());
    let message = reason.error.chain();
    assert!(
        message.contains(&format!("could not write {DIR}/{target}.partial"))
            && message.contains("Input/output error"),
        "{message}"
    );
    // What was durable before the fault is intact: the seed and the segment completed.
    assert_eq!(
        fs.live_file(Path::new(DIR).join(name(s.first))),
        std::fs::read(s.c.pg_wal_dir().join(name(s.first))).ok()
    );
    assert_verifies(&fs, "after the failed write");
    fs.clear_failpoints();
    s.assert_resumes(&fs, "restarted after the failed write");
}

#[test]
fn eio_on_an_fsync_poisons_the_writer_and_the_stream_restarts_from_the_last_durable_position() {
    let s = setup();
    let fs = s.fresh();
    let target = name(s.first + 1);
    // The first sync of the file is at its creation (`.partial.tmp`); the second, the
    // fdatasync that completes it. It fails once, and the kernel drops the dirty pages.
    fs.fail(
        Failpoint::new(SimOp::SyncFile, Fault::Io)
            .on_path_containing(format!("{target}.partial"))
            .nth(2),
    );
    let (engine, _trigger) = s.spawn(&fs);
    let status = engine.status();
    assert!(wait_until(Duration::from_secs(60), || engine.is_finished()));
    let stopped = engine.join();
    assert!(
        matches!(stopped, Ok(Stopped::EndPosition { flushed }) if flushed >= s.end),
        "the engine retried by itself and reached the end: {:?}",
        stopped.map_err(|r| r.error.chain())
    );
    let after = status.borrow().clone();
    assert!(after.reconnects >= 1, "{after:?}");
    let error = after.last_error.clone().unwrap_or_default();
    assert!(
        error.contains(&format!("could not fsync {DIR}/{target}.partial")),
        "{error}"
    );
    // Never trusted a second fsync of the same pages: the segment was written again by a
    // new writer, so what a power cut keeps now is every byte of every segment. (A writer
    // that re-fsynced the old descriptor would have renamed a segment whose pages never
    // reached the disk, and the crash image would hold zeros in it.)
    for mode in CrashMode::ALL {
        let image = fs.crash_with(mode);
        s.assert_complete(&image, &format!("power cut after the run ({mode:?})"));
        s.assert_resumes(&image, &format!("restarted after the power cut ({mode:?})"));
    }
}

/// One step of a segment's creation or completion, failing with ENOSPC until cleared.
struct Step {
    what: &'static str,
    failpoint: Failpoint,
    /// What the error names.
    message: String,
    /// A file the step's failure leaves, or the step before it made (checks that the
    /// failpoint hit the step it is named for).
    left: Option<String>,
}

#[test]
fn enospc_at_each_step_of_segment_creation_and_completion_waits_as_disk_full_and_resumes() {
    let s = setup();
    let done = name(s.first);
    let x = name(s.first + 1);
    let tmp = format!("{x}.partial.tmp");
    let partial = format!("{x}.partial");
    let no_space = |op| Failpoint::new(op, Fault::NoSpace).always();
    // Directory syncs, in order: creation of `first` (1), its completion (2), creation of
    // x (3), its completion (4).
    let steps = [
        Step {
            what: "create",
            failpoint: no_space(SimOp::Create).on_path_containing(&tmp),
            message: format!("could not create {DIR}/{tmp}"),
            left: None,
        },
        Step {
            what: "reserve (fallocate / set_len)",
            failpoint: no_space(SimOp::SetLen).on_path_containing(&tmp),
            message: format!("could not set the length of {DIR}/{tmp}"),
            left: None,
        },
        Step {
            what: "fsync of the new file",
            failpoint: no_space(SimOp::SyncFile).on_path_containing(&tmp),
            message: format!("could not fsync {DIR}/{tmp}"),
            left: None,
        },
        Step {
            what: "rename into place",
            failpoint: no_space(SimOp::Rename).on_path_containing(&tmp),
            message: format!("could not rename {DIR}/{tmp}"),
            left: None,
        },
        Step {
            what: "directory fsync after creation",
            failpoint: no_space(SimOp::SyncDir).nth(3),
            message: format!("could not fsync directory {DIR}"),
            left: Some(partial.clone()),
        },
        Step {
            what: "write",
            failpoint: no_space(SimOp::Write).on_path_containing(&partial).nth(2),
            message: format!("could not write {DIR}/{partial}"),
            left: Some(partial.clone()),
        },
        Step {
            what: "fsync before completion",
            failpoint: no_space(SimOp::SyncFile)
                .on_path_containing(&partial)
                .nth(2),
            message: format!("could not fsync {DIR}/{partial}"),
            left: Some(partial.clone()),
        },
        Step {
            what: "rename to the final name",
            failpoint: no_space(SimOp::Rename).on_path_containing(&partial).nth(2),
            message: format!("could not rename {DIR}/{partial}"),
            left: Some(partial.clone()),
        },
        Step {
            what: "directory fsync after completion",
            failpoint: no_space(SimOp::SyncDir).nth(4),
            message: format!("could not fsync directory {DIR}"),
            left: Some(x.clone()),
        },
    ];
    for step in steps {
        let context = format!("ENOSPC at {}", step.what);
        let fs = s.fresh();
        fs.fail(step.failpoint.clone());
        let (engine, _trigger) = s.spawn(&fs);
        let status = wait_status(&engine, &context, |st| {
            st.state == State::DiskFull
                && st
                    .last_error
                    .as_deref()
                    .is_some_and(|e| e.contains(&step.message))
        });
        // The segment before is complete and was reported so, even when its last chunk
        // also hit the full disk creating the next one.
        assert_eq!(
            status.last_completed_segment.map(|n| n.to_string()),
            Some(done.clone()),
            "{context}: {status:?}"
        );
        let names = fs.live_names(DIR);
        if let Some(left) = &step.left {
            assert!(names.contains(left), "{context}: no {left}: {names:?}");
        }
        // Never more than one file per segment; a half-created one is removed.
        assert!(!names.contains(&tmp), "{context}: {names:?}");
        assert!(
            status.flushed_lsn.as_u64() <= (s.first + 2) * SEG,
            "{context}: {status:?}"
        );
        assert_verifies(&fs, &context);
        // Space returns: the same engine goes on by itself.
        fs.clear_failpoints();
        assert!(
            wait_until(Duration::from_secs(60), || engine.is_finished()),
            "{context}: the engine did not finish after space returned: {:?}",
            engine.status().borrow()
        );
        let stopped = engine.join();
        assert!(
            matches!(stopped, Ok(Stopped::EndPosition { flushed }) if flushed >= s.end),
            "{context}: {:?}",
            stopped.map_err(|r| r.error.chain())
        );
        s.assert_complete(&fs, &context);
        // And a restart after a power cut resumes with no gap.
        s.assert_resumes(&fs.crash(), &format!("{context}, then a power cut"));
    }
}

#[test]
#[allow(
    clippy::disallowed_methods,
    reason = "the test measures the engine's retries in real time"
)]
fn a_disk_that_stays_full_is_retried_with_a_growing_backoff() {
    let s = setup();
    let fs = s.fresh();
    let x = name(s.first + 1);
    fs.fail(
        Failpoint::new(SimOp::SetLen, Fault::NoSpace)
            .on_path_containing(format!("{x}.partial.tmp"))
            .always(),
    );
    let (engine, _trigger) =
        s.spawn_with_backoff(&fs, Duration::from_millis(200), Duration::from_millis(1600));
    let first = wait_status(&engine, "disk full", |st| st.state == State::DiskFull);
    // The first session wrote a segment (the backoff starts over after it); every later
    // one receives WAL but writes none, so the pauses double: 0.2, 0.4, 0.8, 1.6, 1.6 s.
    // Retrying every 0.2 s (a session that merely received WAL resetting the backoff)
    // would make about 20 attempts in the 4 s watched.
    let watched = Instant::now();
    std::thread::sleep(Duration::from_secs(4));
    let later = engine.status().borrow().clone();
    let attempts = later.reconnects - first.reconnects;
    assert!(
        (2..=6).contains(&attempts),
        "{attempts} reconnects in {:?} with the disk full: {later:?}",
        watched.elapsed()
    );
    assert_eq!(later.state, State::DiskFull, "{later:?}");
    fs.clear_failpoints();
    assert!(wait_until(Duration::from_secs(60), || engine.is_finished()));
    assert!(matches!(engine.join(), Ok(Stopped::EndPosition { .. })));
    s.assert_complete(&fs, "after the full disk");
}
