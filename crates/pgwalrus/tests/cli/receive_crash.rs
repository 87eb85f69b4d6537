//! `kill -9` of the receiver at random moments under load: every restart continues the
//! archive with no gap and the server's bytes. (`bench/soak-kill9.sh` does the same 500
//! times, outside CI.)

use std::time::Duration;

use pgwalrus_testkit::Cluster;

use crate::receive_support::{Fixture, PATIENCE, Rng, psql_background, seed, snapshot_names};
use crate::support::Guarded;

const KILLS: usize = 20;

/// WAL load in the background: small transactions in a loop, ~1–2 MiB/s, until cancelled.
fn background_load(c: &Cluster) -> Guarded {
    c.psql("CREATE TABLE churn (i int, pad text)");
    psql_background(
        c,
        "DO $$ BEGIN
           FOR n IN 1..100000 LOOP
             INSERT INTO churn SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 50) g;
             COMMIT;
             PERFORM pg_sleep(0.005);
           END LOOP;
         END $$",
        "walrus_load",
    )
}

#[test]
fn receive_survives_kill9_at_random_moments_without_gap_or_difference() {
    let f = Fixture::small();
    let mut rng = Rng::new(seed(0x6b69_6c6c));
    // A slot, so the server keeps everything the archive has not flushed, whatever the
    // kills do to the feedback.
    f.c.psql("SELECT pg_create_physical_replication_slot('crash', true)");
    let load = background_load(&f.c);
    let start = f.current_lsn();

    // How many runs were killed while streaming, and after completing a segment.
    let (mut streaming, mut completing) = (0, 0);
    for i in 0..KILLS {
        // Alternate the modes: plain, with the slot, synchronous with the slot.
        let args: &[&str] = match i % 3 {
            0 => &[],
            1 => &["-S", "crash", "-s", "1"],
            _ => &["-S", "crash", "--synchronous"],
        };
        let mut r = f.receive(args);
        // From "just exec'd" (before connecting) to well into streaming.
        std::thread::sleep(Duration::from_millis(rng.range(0, 700)));
        assert!(r.is_running(), "run {i} exited by itself:\n{}", r.stderr());
        r.kill9();
        let log = r.stderr();
        streaming += usize::from(log.contains("starting log streaming"));
        completing += usize::from(log.contains("completed segment"));
    }
    #[allow(clippy::print_stderr, reason = "coverage of the random kills")]
    {
        eprintln!(
            "{KILLS} kills: {streaming} while streaming, {completing} after completing a segment"
        );
    }
    assert!(
        streaming >= KILLS / 2,
        "only {streaming} of {KILLS} runs were killed while streaming"
    );
    assert!(
        f.current_lsn().0 - start.0 > 2 * f.seg_size,
        "the load wrote too little WAL to cross segments"
    );
    drop(load);
    f.c.psql(
        "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'walrus_load'",
    );

    // A run after the last kill resumes its `.partial`, catches up, and stops cleanly.
    let mut r = f.receive(&["-S", "crash"]);
    let lsn = f.current_lsn();
    f.wait_archived(lsn, &r);
    r.signal("TERM");
    r.expect_exit(0, PATIENCE);
    let compared = f.assert_complete_and_identical(2);
    let leftovers: Vec<String> = snapshot_names(&f.archive)
        .into_iter()
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");

    // And the `.partial` it left resumes with identical bytes.
    let mut r = f.receive(&["-S", "crash"]);
    f.load(300);
    let end = f.switch();
    f.wait_archived(end, &r);
    r.signal("TERM");
    r.expect_exit(0, PATIENCE);
    assert!(f.assert_complete_and_identical(2) > compared);
}
