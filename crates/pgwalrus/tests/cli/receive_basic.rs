//! `pgwalrus receive` in normal operation: the archive equals the server's `pg_wal`, clean
//! stops (signals, `--endpos`), resuming `.partial` files of any length, reconnecting.

use std::time::Duration;

use pgwalrus_testkit::{Cluster, pg_bin};

use crate::receive_support::{Fixture, Lsn, PATIENCE, Rng, pgbench, seed};

/// Stops `r` with SIGTERM and expects exit 0.
fn stop(r: &mut crate::support::Background) {
    r.signal("TERM");
    r.expect_exit(0, PATIENCE);
}

/// The newest segment of the archive is a `.partial` holding WAL up to `lsn`.
#[track_caller]
fn assert_partial_holds(f: &Fixture, lsn: Lsn) {
    let segs = f.archive_segments();
    let newest = segs.last().expect("segments");
    assert!(newest.partial, "newest segment is not .partial: {segs:?}");
    assert_eq!(newest.segno, f.segno_before(lsn), "{segs:?}");
    let len = std::fs::metadata(f.archive.join(&newest.name))
        .unwrap()
        .len();
    assert_eq!(len, f.seg_size, "a pgwalrus .partial is one segment long");
    assert!(
        f.archive_holds(lsn),
        "{} does not hold WAL up to {lsn}",
        newest.name
    );
}

#[test]
fn receive_archive_is_byte_identical_to_pg_wal_after_pgbench() {
    let f = Fixture::small();
    let mut r = f.receive(&[]);
    pgbench(&f.c, &["-i", "-s", "1", "-q"]);
    pgbench(&f.c, &["-c", "2", "-t", "100"]);
    let end = f.switch();
    f.wait_archived(end, &r);
    stop(&mut r);
    // pgbench -i -s 1 alone writes more than 10 MiB of WAL.
    f.assert_complete_and_identical(10);
    assert!(
        r.stderr().contains("completed segment"),
        "one log line per segment:\n{}",
        r.stderr()
    );
}

#[test]
fn receive_sigterm_and_sigint_stop_cleanly_and_the_partial_resumes() {
    // The default 16 MiB segments here (every other test uses 1 MiB for speed).
    let f = Fixture::new(Cluster::builder(&pg_bin()).start());
    assert_eq!(f.seg_size, 16 * 1024 * 1024);
    for signal in ["TERM", "INT"] {
        let mut r = f.receive(&[]);
        let lsn = f.load(300);
        f.wait_archived(lsn, &r);
        r.signal(signal);
        r.expect_exit(0, PATIENCE);
        assert!(
            r.stderr().contains("stays resumable"),
            "SIG{signal}:\n{}",
            r.stderr()
        );
        assert_partial_holds(&f, lsn);
    }
    // The last `.partial` continues with identical bytes.
    let mut r = f.receive(&[]);
    f.load(1200);
    let end = f.switch();
    f.wait_archived(end, &r);
    stop(&mut r);
    f.assert_complete_and_identical(1);
}

#[test]
fn receive_endpos_stops_with_exit_0_once_it_is_archived() {
    let f = Fixture::small();
    let mut r = f.receive(&[]);
    let lsn = f.load(100);
    f.wait_archived(lsn, &r);
    stop(&mut r);

    // An end position the server already has, two segments later, mid-segment.
    let endpos = f.load(2300);
    let mut r = f.receive(&["-E", &endpos.to_string()]);
    r.expect_exit(0, PATIENCE);
    assert!(
        r.stderr().contains("reached end position"),
        "{}",
        r.stderr()
    );
    assert!(f.archive_holds(endpos), "archive ends before {endpos}");
    f.assert_complete_and_identical(2);

    // An end position in the future: the receiver waits for it.
    let target = Lsn(f.current_lsn().0 + 200 * 1024);
    let mut r = f.receive(&["--endpos", &target.to_string()]);
    f.wait_streaming("pgwalrus", &r);
    assert!(
        r.is_running(),
        "exited before its end position:\n{}",
        r.stderr()
    );
    let end = f.load(400);
    assert!(end > target);
    r.expect_exit(0, PATIENCE);
    assert!(f.archive_holds(target), "archive ends before {target}");
    f.assert_complete_and_identical(2);

    // An end position the archive already holds in complete segments: nothing to wait for,
    // even if the server writes nothing more (pg_receivewal stops at once too).
    let end = f.switch();
    let mut r = f.receive(&[]);
    f.wait_archived(end, &r);
    stop(&mut r);
    let before = Lsn(end.0 - 1000);
    let mut r = f.receive(&["-E", &before.to_string()]);
    // Promptly: an idle server may write nothing for a long time (at most every 15 s a
    // standby snapshot record, which would end the wait by accident).
    r.expect_exit(0, Duration::from_secs(5));
    assert!(
        r.stderr().contains("reached end position"),
        "{}",
        r.stderr()
    );
}

#[test]
fn receive_resumes_zero_length_and_truncated_partials() {
    let f = Fixture::small();
    let mut rng = Rng::new(seed(0x7a11));
    let mut r = f.receive(&[]);
    let lsn = f.load(300);
    f.wait_archived(lsn, &r);
    stop(&mut r);

    for cut in ["zero", "random"] {
        let segs = f.archive_segments();
        let partial = segs.last().expect("segments");
        assert!(partial.partial, "{segs:?}");
        let path = f.archive.join(&partial.name);
        let len = match cut {
            "zero" => 0,
            _ => rng.range(1, f.seg_size),
        };
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len)
            .unwrap();

        let mut r = f.receive(&[]);
        let lsn = f.load(300);
        f.wait_archived(lsn, &r);
        stop(&mut r);
        assert!(
            f.archive_holds(lsn),
            "{} cut to {len} bytes was not streamed again",
            partial.name
        );
    }
    let mut r = f.receive(&[]);
    let end = f.switch();
    f.wait_archived(end, &r);
    stop(&mut r);
    f.assert_complete_and_identical(1);
}

#[test]
fn receive_reconnects_after_a_server_restart_without_a_gap() {
    let f = Fixture::small();
    let mut r = f.receive(&[]);
    let lsn = f.load(300);
    f.wait_archived(lsn, &r);

    f.c.restart();
    f.load(1500);
    let end = f.switch();
    f.wait_archived(end, &r);
    assert!(r.is_running(), "{}", r.stderr());
    let log = r.stderr();
    assert!(
        log.contains("retrying in 1s"),
        "first reconnect after 1 s:\n{log}"
    );
    assert_eq!(
        log.matches("starting log streaming").count(),
        2,
        "one reconnect:\n{log}"
    );
    stop(&mut r);
    f.assert_complete_and_identical(2);
}
