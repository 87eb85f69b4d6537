//! `pgwalrus receive` refusing to continue, with the documented exit code and nothing in
//! the archive changed: another cluster's archive (3), a dropped slot or removed WAL (4),
//! a lost connection with `--no-loop` (1).

use pgwalrus_testkit::wait_until;

use crate::receive_support::{Fixture, Lsn, PATIENCE, listing, small_cluster, snapshot};

/// Archives a little WAL (a complete segment and a `.partial`) with `extra` flags, stops
/// cleanly, and returns the position archived.
fn archive_some(f: &Fixture, extra: &[&str]) -> Lsn {
    let mut r = f.receive(extra);
    f.load(200);
    f.switch();
    let lsn = f.load(200);
    f.wait_archived(lsn, &r);
    r.signal("TERM");
    r.expect_exit(0, PATIENCE);
    lsn
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
