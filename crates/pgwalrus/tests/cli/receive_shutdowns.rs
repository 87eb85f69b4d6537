//! Servers that go away: the primary stopped with `pg_ctl -m fast`, `pg_ctl -m immediate`
//! and `kill -9` of its postmaster, again and again, while pgbench writes WAL and one
//! `pgwalrus receive` process streams it through a slot. After each restart the receiver
//! comes back by itself, and the archive holds everything the server wrote, with no gap
//! and every complete segment byte-identical to the server's `pg_wal`.
//!
//! The three ways differ in what the receiver last sees: a fast stop sends everything up to
//! the shutdown checkpoint before the walsender exits (checked before the restart, with the
//! checkpoint's position read from `pg_control`); an immediate stop and a `kill -9` cut the
//! stream wherever it is (possibly inside a record that crosses a page, which the restarted
//! server then overwrites with an `OVERWRITE_CONTRECORD` record), and the next start runs
//! crash recovery. At the end the receiver stops on SIGTERM with exit 0 and `pgwalrus
//! verify` finds no problem in the archive. The whole loop takes about 50 s per major.

use std::process::Stdio;
use std::time::{Duration, Instant};

use pgwalrus_testkit::{Cluster, wait_until};

use crate::receive_support::{
    Fixture, Lsn, PATIENCE, Rng, listing, pgbench, seed, segment_name, snapshot,
};
use crate::support::{Guarded, pgwalrus};

/// Events of each kind; the loop cycles the kinds.
const EACH: usize = 7;

/// How the primary goes away.
#[derive(Debug, Clone, Copy)]
enum GoAway {
    /// `pg_ctl -m fast stop` ([`Cluster::stop`]).
    Fast,
    /// `pg_ctl -m immediate stop` ([`Cluster::stop_immediate`]).
    Immediate,
    /// `kill -9` of the postmaster ([`Cluster::kill9`]).
    Kill9,
}

const KINDS: [GoAway; 3] = [GoAway::Fast, GoAway::Immediate, GoAway::Kill9];

/// The last checkpoint record of the stopped server `f.c`, from its start to its end: the
/// position from `global/pg_control` (`state` at byte 16 must be `DB_SHUTDOWNED`, 1;
/// `checkPoint` at byte 32, the layout of every major since 9.x), its length from the
/// record's `xl_tot_len` in `pg_wal`. The record (114 bytes) crosses at most one page
/// boundary, behind which a page header (24 bytes, 40 on a segment's first page) precedes
/// its rest.
#[track_caller]
fn shutdown_checkpoint(f: &Fixture) -> (Lsn, Lsn) {
    const PAGE: u64 = 8192;
    let control = std::fs::read(f.c.data_dir().join("global/pg_control")).expect("read pg_control");
    let u32_at =
        |bytes: &[u8], at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    assert_eq!(u32_at(&control, 16), 1, "pg_control: not shut down cleanly");
    let checkpoint = Lsn(u64::from_le_bytes(control[32..40].try_into().unwrap()));
    let segment = f
        .server_segment(&segment_name(1, checkpoint.0 / f.seg_size, f.seg_size))
        .expect("the shutdown checkpoint's segment in pg_wal");
    let tot_len = u64::from(u32_at(&segment, (checkpoint.0 % f.seg_size) as usize));
    let on_page = PAGE - checkpoint.0 % PAGE;
    let end = if tot_len <= on_page {
        checkpoint.0 + tot_len
    } else {
        let next_page = checkpoint.0 + on_page;
        let header = if next_page.is_multiple_of(f.seg_size) {
            40
        } else {
            24
        };
        next_page + header + (tot_len - on_page)
    };
    (checkpoint, Lsn(end))
}

/// `pgbench -n -N -c 2` for up to a minute in the background (it ends when the server goes
/// away); output discarded.
fn pgbench_load(c: &Cluster) -> Guarded {
    Guarded::spawn(
        c.pgbench(&["-n", "-N", "-c", "2", "-T", "60"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
}

#[test]
fn receive_follows_a_primary_through_fast_immediate_and_kill9_shutdowns_under_load() {
    #[allow(
        clippy::disallowed_methods,
        reason = "the test reports its own duration, which must stay well under 90 s"
    )]
    let started = Instant::now();
    let f = Fixture::small();
    let mut rng = Rng::new(seed(0x676f_6e65));
    let mut r = f.receive(&["-S", "walrus_shutdowns", "--create-slot", "--if-not-exists"]);
    f.wait_streaming("pgwalrus", &r);
    pgbench(&f.c, &["-i", "-s", "1", "-q"]);
    let first = f.current_lsn();

    let events = EACH * KINDS.len();
    for i in 0..events {
        let kind = KINDS[i % KINDS.len()];
        // The receiver streams (it archived the previous round's switch); pgbench writes
        // for a random while, then the server goes away under it.
        let mut load = pgbench_load(&f.c);
        let before = f.current_lsn();
        std::thread::sleep(Duration::from_millis(rng.range(200, 700)));
        assert!(
            f.current_lsn() > before,
            "event {i} ({kind:?}): pgbench wrote no WAL"
        );
        match kind {
            GoAway::Fast => f.c.stop(),
            GoAway::Immediate => f.c.stop_immediate(),
            GoAway::Kill9 => f.c.kill9(),
        }
        load.kill9();
        // A fast stop's walsender exits only once the receiver has reported everything up
        // to the shutdown checkpoint flushed: the archive holds it before the restart.
        let shutdown_checkpoint = matches!(kind, GoAway::Fast).then(|| {
            let (checkpoint, end) = shutdown_checkpoint(&f);
            assert!(
                f.archive_holds(end),
                "event {i}: the archive lacks the shutdown checkpoint {checkpoint}..{end} \
                 after a fast stop; archive: {}\n--- receiver stderr\n{}",
                listing(&snapshot(&f.archive)),
                r.stderr()
            );
            checkpoint
        });
        f.c.start();
        if let Some(checkpoint) = shutdown_checkpoint {
            // The same position from the server itself (the control file was read by hand).
            let reported =
                f.c.psql("SELECT checkpoint_lsn FROM pg_control_checkpoint()");
            assert_eq!(Lsn::parse(&reported), checkpoint, "event {i}");
        }

        // More WAL and a switch: the archive must come to hold all of it, and every
        // segment, including the one the event cut, must equal the server's.
        f.load(64);
        let end = f.switch();
        f.wait_archived(end, &r);
        // One receiver process throughout: it reconnected by itself.
        assert!(
            r.is_running(),
            "event {i} ({kind:?}): the receiver exited\n--- receiver stderr\n{}",
            r.stderr()
        );
        f.assert_complete_and_identical(1);
    }

    let log = r.stderr();
    let sessions = log.matches("starting log streaming").count();
    assert!(
        sessions > events,
        "{sessions} streaming sessions for {events} events\n{log}"
    );
    r.signal("TERM");
    r.expect_exit(0, PATIENCE);
    let compared = f.assert_complete_and_identical(1);
    let check = pgwalrus(&f.home, &["verify", f.archive.to_str().unwrap()], &[]);
    check.expect_code(0);
    assert!(check.stdout.contains("no problems"), "{}", check.stdout);
    #[allow(
        clippy::print_stderr,
        reason = "what the loop covered and how long it took"
    )]
    {
        eprintln!(
            "{events} events ({EACH} of each kind), {sessions} sessions, {} MiB of WAL from {first}, \
             {compared} segments compared at the end, {:.1?}",
            (f.current_lsn().0 - first.0) >> 20,
            started.elapsed()
        );
    }
}

/// A clean fast shutdown of the server is the server shutting down, not a connection that
/// "closed unexpectedly": the walsender ends streaming (a bare CommandComplete, or FATAL
/// with SQLSTATE 57P01 admin_shutdown) and closes. The receiver says so once, and comes
/// back when the server does.
#[test]
fn a_fast_shutdown_of_the_server_is_logged_as_a_shutdown() {
    let f = Fixture::small();
    let mut r = f.receive(&[]);
    let lsn = f.load(100);
    f.wait_archived(lsn, &r);
    f.c.stop();
    assert!(
        wait_until(PATIENCE, || r.stderr().contains("retrying")),
        "the receiver notices the shutdown:\n{}",
        r.stderr()
    );
    let err = r.stderr();
    assert!(
        err.contains("shutting down") && !err.contains("unexpectedly"),
        "a fast shutdown is logged as one:\n{err}"
    );
    f.c.start();
    let lsn = f.load(100);
    f.wait_archived(lsn, &r);
    r.signal("TERM");
    r.expect_exit(0, PATIENCE);
}
