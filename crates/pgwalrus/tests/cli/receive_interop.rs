//! One archive directory, two tools: pgwalrus continues what `pg_receivewal` started and
//! the reverse, with no gap and the server's bytes.
//!
//! Debian's `pg_receivewal` is version 15 and refuses newer servers, so this test runs
//! against the server under test when it is 15 or older, and against Debian's PostgreSQL 15
//! otherwise (the same test in every major's run; it costs about a second).

use std::process::{Command, Stdio};

use pgwalrus_testkit::{Cluster, DEBIAN_BINDIR, PgBin, debian_bin, pg_bin};

use crate::receive_support::{Fixture, PATIENCE};
use crate::support::Guarded;

/// `pg_receivewal -D ARCHIVE -d CONNINFO` in the background (stderr discarded: only its
/// files and its exit code matter here).
fn pg_receivewal(f: &Fixture) -> Guarded {
    let mut cmd = Command::new(debian_bin("pg_receivewal"));
    cmd.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("PGPASSFILE", "/nonexistent")
        .arg("-D")
        .arg(&f.archive)
        .args(["-d", &f.conninfo, "--no-password"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Guarded::spawn(&mut cmd)
}

/// Stops pg_receivewal as an operator would (SIGINT: it keeps the `.partial`, exits 0).
#[track_caller]
fn stop_pg_receivewal(p: &mut Guarded) {
    p.signal("INT");
    let status = p.wait_timeout(PATIENCE);
    assert!(
        status.is_some_and(|s| s.success()),
        "pg_receivewal did not exit cleanly: {status:?}"
    );
}

#[test]
fn receive_continues_pg_receivewal_directories_and_pg_receivewal_continues_ours() {
    let pg = pg_bin();
    let pg = if pg.major <= 15 {
        pg
    } else {
        PgBin::new(DEBIAN_BINDIR)
    };
    let f = Fixture::new(Cluster::builder(&pg).initdb_arg("--wal-segsize=1").start());

    // pg_receivewal starts the archive: a complete segment and a `.partial` (zero-padded).
    let mut p = pg_receivewal(&f);
    f.load(800);
    let lsn = f.load(400);
    assert!(
        pgwalrus_testkit::wait_until(PATIENCE, || f.archive_holds(lsn)),
        "pg_receivewal did not archive up to {lsn}: {:?}",
        f.archive_segments()
    );
    stop_pg_receivewal(&mut p);
    let theirs = f.archive_segments();
    assert!(theirs.last().is_some_and(|s| s.partial), "{theirs:?}");

    // pgwalrus continues from pg_receivewal's `.partial`.
    let mut r = f.receive(&[]);
    f.load(800);
    let lsn = f.load(400);
    f.wait_archived(lsn, &r);
    r.signal("TERM");
    r.expect_exit(0, PATIENCE);
    let ours = f.archive_segments();
    assert!(
        ours.last()
            .is_some_and(|s| s.partial && s.segno > theirs.last().unwrap().segno),
        "{ours:?}"
    );
    f.assert_complete_and_identical(2);

    // pg_receivewal continues from pgwalrus's `.partial`.
    let mut p = pg_receivewal(&f);
    f.load(800);
    let end = f.switch();
    assert!(
        pgwalrus_testkit::wait_until(PATIENCE, || f.archive_holds(end)),
        "pg_receivewal did not archive up to {end}: {:?}",
        f.archive_segments()
    );
    stop_pg_receivewal(&mut p);
    let all = f.archive_segments();
    assert!(
        all.last().unwrap().segno > ours.last().unwrap().segno,
        "{all:?}"
    );
    f.assert_complete_and_identical(4);
}
