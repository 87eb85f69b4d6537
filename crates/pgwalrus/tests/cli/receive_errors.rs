//! `pgwalrus receive` refusing to continue, with the documented exit code and nothing in
//! the archive changed: another cluster's archive (3), a dropped slot or removed WAL (4),
//! a lost connection with `--no-loop` (1).

use pgwalrus_testkit::wait_until;

use crate::receive_support::{Fixture, Lsn, PATIENCE, listing, small_cluster, snapshot};

/// Archives a little WAL (a complete segment and a `.partial`) with `extra` flags, stops
/// cleanly, and returns the position archived.
fn archive_some(f: &Fixture, extra: &[&str]) -> Lsn {
    f.archive_some(|| f.receive(extra))
}

#[test]
fn receive_refuses_another_clusters_archive_and_changes_nothing() {
    let a = Fixture::small();
    archive_some(&a, &[]);
    let b = small_cluster().start();
    let (id_a, id_b) = (a.c.system_identifier(), b.system_identifier());
    assert_ne!(id_a, id_b);

    let before = snapshot(&a.archive);
    let mut other = Fixture::new(b);
    other.archive = a.archive.clone();
    let mut r = other.receive(&[]);
    r.expect_exit(3, PATIENCE);
    let err = r.stderr();
    assert!(
        err.contains(&id_a.to_string()) && err.contains(&id_b.to_string()),
        "the message names both system identifiers ({id_a}, {id_b}):\n{err}"
    );
    let after = snapshot(&a.archive);
    assert!(
        before == after,
        "the archive changed:\nbefore: {}\nafter:  {}",
        listing(&before),
        listing(&after)
    );
}

#[test]
fn receive_with_a_dropped_slot_exits_4_and_changes_nothing() {
    let f = Fixture::small();
    f.c.psql("SELECT pg_create_physical_replication_slot('arch', true)");
    archive_some(&f, &["-S", "arch"]);
    f.c.psql("SELECT pg_drop_replication_slot('arch')");

    let before = snapshot(&f.archive);
    let mut r = f.receive(&["-S", "arch"]);
    r.expect_exit(4, PATIENCE);
    let err = r.stderr();
    assert!(
        err.contains("replication slot \"arch\" is gone"),
        "the message says the slot is gone:\n{err}"
    );
    assert!(before == snapshot(&f.archive), "the archive changed");

    // With an empty archive nothing can be missing: a configuration error (2).
    let mut empty = Fixture::new(small_cluster().start());
    empty.conninfo = f.conninfo.clone();
    let mut r = empty.receive(&["-S", "arch"]);
    r.expect_exit(2, PATIENCE);
    assert!(
        r.stderr().contains("\"arch\" does not exist"),
        "{}",
        r.stderr()
    );
    assert!(snapshot(&empty.archive).is_empty());
}

#[test]
fn receive_refuses_a_complete_segment_of_the_wrong_size_and_changes_nothing() {
    let f = Fixture::small();
    archive_some(&f, &[]);
    let segs = f.archive_segments();
    let complete = segs
        .iter()
        .find(|s| !s.partial)
        .expect("a complete segment");
    let path = f.archive.join(&complete.name);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(f.seg_size / 2)
        .unwrap();

    let before = snapshot(&f.archive);
    let mut r = f.receive(&[]);
    r.expect_exit(3, PATIENCE);
    let err = r.stderr();
    assert!(
        err.contains(&complete.name) && err.contains(&(f.seg_size / 2).to_string()),
        "the message names the file and its size:\n{err}"
    );
    assert!(before == snapshot(&f.archive), "the archive changed");
}

#[test]
fn receive_refuses_a_missing_archive_directory() {
    let home = crate::support::Home::new();
    let missing = home.path().join("no-such-dir");
    let run = crate::support::pgwalrus(
        &home,
        &[
            "receive",
            "-D",
            &missing.display().to_string(),
            "-d",
            "host=127.0.0.1 port=1",
        ],
        &[],
    );
    run.expect_code(2);
    assert!(
        run.stderr.contains("could not access directory") && run.stderr.contains("no-such-dir"),
        "{}",
        run.stderr
    );
    assert!(!missing.exists(), "created the directory");
}

#[test]
fn receive_exits_4_naming_the_lsn_when_the_server_removed_the_wal() {
    let f = Fixture::new(
        small_cluster()
            .setting("wal_keep_size", "0")
            .setting("min_wal_size", "2MB")
            .setting("max_wal_size", "4MB")
            .start(),
    );
    let lsn = archive_some(&f, &[]);
    let segs = f.archive_segments();
    let partial = segs.last().expect("segments").clone();
    assert!(partial.partial, "{segs:?}");
    let needed = Lsn(partial.segno * f.seg_size);

    // Without a slot, checkpoints remove (or recycle) the segment the archive needs next.
    let server_name = partial.name.trim_end_matches(".partial").to_owned();
    assert!(
        wait_until(PATIENCE, || {
            f.load(100);
            f.c.psql("SELECT pg_switch_wal(); CHECKPOINT;");
            f.server_segment(&server_name).is_none()
        }),
        "the server kept {server_name}"
    );
    assert!(f.current_lsn() > lsn);

    let before = snapshot(&f.archive);
    let mut r = f.receive(&[]);
    r.expect_exit(4, PATIENCE);
    let err = r.stderr();
    assert!(
        err.contains(&needed.to_string()),
        "the message names {needed}:\n{err}"
    );
    assert!(err.contains("removed"), "the server's reason:\n{err}");
    assert!(
        err.contains(&partial.name),
        "the message names the .partial left as it was:\n{err}"
    );
    let after = snapshot(&f.archive);
    assert!(
        before == after,
        "the archive changed:\nbefore: {}\nafter:  {}",
        listing(&before),
        listing(&after)
    );
}

#[test]
fn receive_no_loop_exits_1_when_the_server_stops_and_resumes_later() {
    let f = Fixture::small();
    let mut r = f.receive(&["--no-loop"]);
    let lsn = f.load(300);
    f.wait_archived(lsn, &r);
    f.c.stop();
    r.expect_exit(1, PATIENCE);

    f.c.start();
    let mut r = f.receive(&["--no-loop"]);
    f.load(1200);
    let end = f.switch();
    f.wait_archived(end, &r);
    r.signal("TERM");
    r.expect_exit(0, PATIENCE);
    f.assert_complete_and_identical(1);
}

#[test]
fn receive_exits_4_when_its_slot_is_dropped_while_streaming() {
    let f = Fixture::small();
    f.c.psql("SELECT pg_create_physical_replication_slot('arch', true)");
    let mut r = f.receive(&["-S", "arch"]);
    let lsn = f.load(300);
    f.wait_archived(lsn, &r);
    // An active slot cannot be dropped: end its walsender, then drop it before pgwalrus
    // reconnects (its first retry waits a second).
    assert!(
        wait_until(PATIENCE, || {
            f.c.psql(
                "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots \
                 WHERE slot_name = 'arch' AND active_pid IS NOT NULL",
            );
            f.c.try_psql("SELECT pg_drop_replication_slot('arch')")
                .is_ok()
        }),
        "could not drop the slot"
    );
    r.expect_exit(4, PATIENCE);
    let err = r.stderr();
    assert!(
        err.contains("replication slot \"arch\" is gone"),
        "the message says the slot is gone:\n{err}"
    );
    assert!(f.archive_holds(lsn));
}

#[test]
fn receive_exits_4_when_its_slot_was_invalidated() {
    let f = Fixture::new(
        small_cluster()
            .setting("wal_keep_size", "0")
            .setting("min_wal_size", "2MB")
            .setting("max_wal_size", "4MB")
            .setting("max_slot_wal_keep_size", "2MB")
            .start(),
    );
    f.c.psql("SELECT pg_create_physical_replication_slot('arch', true)");
    archive_some(&f, &["-S", "arch"]);
    assert!(
        wait_until(PATIENCE, || {
            f.load(100);
            f.c.psql("SELECT pg_switch_wal(); CHECKPOINT;");
            f.c.psql("SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'arch'")
                == "lost"
        }),
        "the slot was not invalidated"
    );
    let before = snapshot(&f.archive);
    let mut r = f.receive(&["-S", "arch"]);
    r.expect_exit(4, PATIENCE);
    let err = r.stderr();
    assert!(
        err.contains("no longer has the WAL the archive needs"),
        "{err}"
    );
    assert!(before == snapshot(&f.archive), "the archive changed");
}

#[test]
fn receive_stops_with_exit_0_on_sigterm_while_waiting_to_reconnect() {
    let f = Fixture::small();
    let mut r = f.receive(&[]);
    let lsn = f.load(300);
    f.wait_archived(lsn, &r);
    f.c.stop();
    assert!(
        wait_until(PATIENCE, || r.stderr().contains("retrying in")),
        "{}",
        r.stderr()
    );
    let before = snapshot(&f.archive);
    r.signal("TERM");
    r.expect_exit(0, PATIENCE);
    assert!(before == snapshot(&f.archive), "the archive changed");
}
