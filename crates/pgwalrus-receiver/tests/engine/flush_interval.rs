//! The bounded loss window: under pgbench, with the default flush interval (1 s), the
//! server's `flush_lsn` for the archive (sampled from `pg_stat_replication` every 0.5 s)
//! never trails its `sent_lsn` by more than 2 s worth of WAL, and equals it within 2 s of the
//! load stopping. (pg_receivewal reports flush only when a segment completes.)

use std::time::Duration;

use pgwalrus_client::config::Config;
use pgwalrus_receiver::{FromConfig, ReceiveSettings, Shutdown, State};
use pgwalrus_testkit::{TRUST_USER, TempDir, wait_until};
use pgwalrus_wal::Lsn;

use crate::support::{pgbench, run_pgbench, small_cluster};

fn positions(c: &pgwalrus_testkit::Cluster) -> Option<(Lsn, Lsn)> {
    let row = c.psql(
        "SELECT sent_lsn, flush_lsn FROM pg_stat_replication WHERE application_name = 'flush_interval'",
    );
    let (sent, flush) = row.split_once('|')?;
    Some((sent.parse().ok()?, flush.parse().ok()?))
}

#[test]
fn flush_lsn_trails_sent_lsn_by_at_most_two_seconds_of_wal_and_catches_up_after_the_load() {
    let c = small_cluster().start();
    run_pgbench(&c, &["-i", "-s", "1", "-q"]);
    let archive = TempDir::new("flush-interval");
    let mut settings = ReceiveSettings::new(archive.path());
    settings.slot = Some("flush_interval".to_owned());
    settings.create_slot = true;
    assert_eq!(settings.flush_interval, Some(Duration::from_secs(1)));
    let conninfo = format!(
        "{} replication=true application_name=flush_interval",
        c.conninfo(TRUST_USER)
    );
    let source = FromConfig::new(Config::from_conninfo(&conninfo).expect("conninfo"));
    let (stop, shutdown) = Shutdown::new();
    let engine = pgwalrus_receiver::spawn("flush-interval", settings, source, shutdown)
        .expect("spawn the engine");
    let status = engine.status();
    assert!(wait_until(Duration::from_secs(30), || status
        .borrow()
        .state
        == State::Streaming));

    // Caught up with what pgbench -i wrote (the new slot keeps it from the last redo point).
    let start: Lsn = c.current_wal_lsn().parse().expect("lsn");
    assert!(
        wait_until(Duration::from_secs(30), || positions(&c)
            .is_some_and(|(_, flush)| flush >= start)),
        "the archive did not catch up: {:?}",
        positions(&c)
    );
    let mut bench = pgbench(&c, &["-c", "2", "-j", "1", "-T", "6", "-N"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start pgbench");
    let mut samples = Vec::new();
    while bench.try_wait().expect("poll pgbench").is_none() {
        if let Some(pair) = positions(&c) {
            samples.push(pair);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let end: Lsn = c.current_wal_lsn().parse().expect("lsn");
    let rate = end.as_u64().saturating_sub(start.as_u64()) as f64 / 6.0;
    assert!(samples.len() >= 8, "only {} samples", samples.len());
    assert!(rate > 0.0);
    for (sent, flush) in &samples {
        let behind = sent.as_u64().saturating_sub(flush.as_u64()) as f64;
        assert!(
            behind <= 2.0 * rate,
            "flush_lsn {flush} trails sent_lsn {sent} by {behind} bytes, more than 2 s of WAL ({:.0} bytes/s)",
            rate
        );
    }
    // The load stopped: within 2 s the flush position is the sent position.
    let caught_up = wait_until(Duration::from_secs(2), || {
        positions(&c).is_some_and(|(sent, flush)| sent == flush && sent >= end)
    });
    assert!(
        caught_up,
        "flush_lsn did not reach sent_lsn within 2 s: {:?}",
        positions(&c)
    );
    stop.trigger();
    assert!(engine.join().is_ok());
}
