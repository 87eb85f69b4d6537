//! A timeline switch: the server is restarted as a standby (so it serves timeline 1 as a
//! cascading walsender) and promoted. pgwalrus follows the end of timeline 1 to timeline 2:
//! the history file first, the last segment of timeline 1 left `.partial`, timeline 2 from
//! the start of the switch segment — all equal to the server's own files.

use pgwalrus_testkit::wait_until;

use crate::receive_support::{Fixture, Lsn, PATIENCE, parse_segment, segment_name};
use crate::support::Background;

/// The archive's file of segment `segno` on `tli` (complete, else `.partial`).
fn archived(f: &Fixture, tli: u32, segno: u64) -> Option<Vec<u8>> {
    let name = segment_name(tli, segno, f.seg_size);
    std::fs::read(f.archive.join(&name))
        .or_else(|_| std::fs::read(f.archive.join(format!("{name}.partial"))))
        .ok()
}

/// Promotes the standby and waits until it writes on timeline 2.
pub(crate) fn promote(f: &Fixture) -> Lsn {
    assert_eq!(f.c.psql("SELECT pg_promote()"), "t");
    assert!(
        f.c.psql("SELECT pg_walfile_name(pg_current_wal_lsn())")
            .starts_with("00000002"),
        "not writing on timeline 2"
    );
    // The switch point: where timeline 2 begins, from the server's history file.
    let history = std::fs::read_to_string(f.c.pg_wal_dir().join("00000002.history"))
        .expect("00000002.history in pg_wal");
    let switch = history
        .lines()
        .find_map(|l| l.split_whitespace().nth(1))
        .expect("switch point");
    Lsn::parse(switch)
}

/// Restarts the server as a standby with no upstream: it serves what it has on timeline 1.
pub(crate) fn make_standby(f: &Fixture) {
    f.c.stop();
    let signal = f.c.data_dir().join("standby.signal");
    std::fs::write(&signal, "").unwrap();
    pgwalrus_testkit::give_to_server_user(&signal);
    f.c.start();
    assert_eq!(f.c.psql("SELECT pg_is_in_recovery()"), "t");
}

#[track_caller]
fn check_switch(f: &Fixture, r: &Background, switch: Lsn) {
    // Timeline 2 is streamed past its first segment.
    f.load(1200);
    let end = f.switch();
    assert!(
        wait_until(PATIENCE, || f.archive_holds_on(2, end)),
        "timeline 2 not archived up to {end}: {:?}\n{}",
        f.archive_segments(),
        r.stderr()
    );

    let history = std::fs::read(f.archive.join("00000002.history")).expect("history archived");
    assert_eq!(
        history,
        std::fs::read(f.c.pg_wal_dir().join("00000002.history")).unwrap(),
        "history file differs"
    );
    let switch_segno = f.segno_before(Lsn(switch.0 + 1));
    let old_last = segment_name(1, switch_segno, f.seg_size);
    let names: Vec<String> = f.archive_segments().into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&format!("{old_last}.partial")) && !names.contains(&old_last),
        "the last segment of timeline 1 stays .partial: {names:?}"
    );
    assert!(
        f.archive_holds_on(1, switch),
        "timeline 1 up to the switch point {switch}"
    );
    // Timeline 2 from the switch segment on: no gap, the server's bytes.
    let tl2: Vec<u64> = names
        .iter()
        .filter_map(|n| parse_segment(n, f.seg_size))
        .filter(|s| s.tli == 2)
        .map(|s| s.segno)
        .collect();
    assert_eq!(tl2.first(), Some(&switch_segno), "{names:?}");
    for (i, segno) in tl2.iter().enumerate() {
        assert_eq!(
            *segno,
            switch_segno + i as u64,
            "gap on timeline 2: {names:?}"
        );
        let name = segment_name(2, *segno, f.seg_size);
        if names.contains(&name) {
            assert_eq!(
                archived(f, 2, *segno),
                f.server_segment(&name),
                "{name} differs from pg_wal"
            );
        }
    }
    assert!(
        !names.iter().any(|n| n.starts_with("00000001")
            && parse_segment(n, f.seg_size).is_some_and(|s| s.segno > switch_segno)),
        "timeline 1 WAL after the switch: {names:?}"
    );
}

#[test]
fn receive_follows_a_promotion_to_the_next_timeline_while_streaming() {
    let f = Fixture::small();
    let mut r = f.receive(&[]);
    let lsn = f.load(1500);
    f.wait_archived(lsn, &r);
    make_standby(&f);
    // pgwalrus reconnects to the standby and streams timeline 1 from it.
    f.wait_streaming("pgwalrus", &r);
    let switch = promote(&f);
    check_switch(&f, &r, switch);
    assert!(
        r.stderr().contains("switching to timeline 2"),
        "{}",
        r.stderr()
    );
    r.signal("TERM");
    r.expect_exit(0, PATIENCE);
}

#[test]
fn receive_resumes_on_the_next_timeline_after_a_promotion_while_stopped() {
    let f = Fixture::small();
    let mut r = f.receive(&[]);
    let lsn = f.load(1500);
    f.wait_archived(lsn, &r);
    r.signal("TERM");
    r.expect_exit(0, PATIENCE);
    make_standby(&f);
    let switch = promote(&f);

    let mut r = f.receive(&[]);
    check_switch(&f, &r, switch);
    r.signal("TERM");
    r.expect_exit(0, PATIENCE);
}
