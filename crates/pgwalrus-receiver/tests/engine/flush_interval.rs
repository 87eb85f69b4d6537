//! The bounded loss window: under pgbench, with the default flush interval (1 s), the
//! server's `flush_lsn` for the archive (sampled from `pg_stat_replication`) never trails
//! its `sent_lsn` by more than 2 s worth of WAL, and equals it within 2 s of the load
//! stopping. (pg_receivewal reports flush only when a segment completes.)
//!
//! "2 s worth of WAL" is measured in time, on the server's clock: the flush position at
//! time t must be at least where the sent position was at t − 2 s. The server samples
//! itself — a function loops over `pg_stat_replication` every 50 ms, stamping each row with
//! `clock_timestamp()` and noting whether pgbench is still connected — so neither the
//! test's clock nor an average rate is involved: on a loaded machine a psql started per
//! sample runs late (samples a second apart), and two seconds at the load's average rate
//! can be much less WAL than two seconds of one of its bursts.

use std::time::Duration;

use pgwalrus_client::config::Config;
use pgwalrus_receiver::{FromConfig, ReceiveSettings, Shutdown, State};
use pgwalrus_testkit::{Cluster, TRUST_USER, TempDir, wait_until};
use pgwalrus_wal::Lsn;

use crate::support::{pgbench, run_pgbench, small_cluster};

/// One reading of the stream's row in `pg_stat_replication`, by the server.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// The server's clock when it was read, in seconds.
    at: f64,
    sent: Lsn,
    flush: Lsn,
    /// pgbench was connected.
    load: bool,
    /// The server's end of WAL then.
    wal_end: Lsn,
}

/// A function that samples the stream's row every 50 ms until pgbench, once seen, has been
/// gone for 3 s (or 60 s pass without it). pgbench connects twice (a vacuum first, then
/// its clients), so it may be gone for a moment before the load begins. The activity
/// snapshot is cleared every round: within one transaction the view would otherwise show
/// the same backends throughout.
const SAMPLER: &str = r"
CREATE FUNCTION pg_temp.flush_samples()
RETURNS TABLE (at float8, sent pg_lsn, flush pg_lsn, load boolean, wal_end pg_lsn)
LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz := clock_timestamp();
    seen boolean := false;
    running boolean;
    quiet_since timestamptz;
BEGIN
    LOOP
        PERFORM pg_stat_clear_snapshot();
        running := EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = 'pgbench');
        seen := seen OR running;
        IF running THEN
            quiet_since := NULL;
        ELSIF seen AND quiet_since IS NULL THEN
            quiet_since := clock_timestamp();
        END IF;
        EXIT WHEN clock_timestamp() > coalesce(quiet_since + interval '3 s', started + interval '60 s');
        RETURN QUERY
            SELECT extract(epoch FROM clock_timestamp())::float8, r.sent_lsn, r.flush_lsn,
                   running, pg_current_wal_lsn()
            FROM pg_stat_replication r WHERE r.application_name = 'flush_interval';
        PERFORM pg_sleep(0.05);
    END LOOP;
END $$;
SELECT * FROM pg_temp.flush_samples();
";

fn parse(row: &str) -> Sample {
    let f: Vec<&str> = row.split('|').collect();
    assert_eq!(f.len(), 5, "a sample: {row:?}");
    Sample {
        at: f[0].parse().expect("time"),
        sent: f[1].parse().expect("sent_lsn"),
        flush: f[2].parse().expect("flush_lsn"),
        load: f[3] == "t",
        wal_end: f[4].parse().expect("end of WAL"),
    }
}

/// The stream's row now, read the same way, for the start.
fn sample(c: &Cluster) -> Option<Sample> {
    let row = c.psql(
        "SELECT extract(epoch FROM clock_timestamp())::float8, sent_lsn, flush_lsn, false, \
         pg_current_wal_lsn() FROM pg_stat_replication WHERE application_name = 'flush_interval'",
    );
    (!row.is_empty()).then(|| parse(&row))
}

/// Where `sent_lsn` was at least at server time `at`, from above: the sent position of the
/// earliest sample taken at or after `at` (sent positions only grow, so it was not past
/// that then). Checking a flush position against it never passes a trail longer than
/// 2 s; with samples 50 ms apart it is stricter than that by about as much. The samples
/// are sorted by time and the last one is at or after `at`.
fn sent_by(samples: &[Sample], at: f64) -> Lsn {
    let i = samples.partition_point(|s| s.at < at);
    samples[i].sent
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
        wait_until(Duration::from_secs(30), || sample(&c)
            .is_some_and(|s| s.flush >= start)),
        "the archive did not catch up: {:?}",
        sample(&c)
    );
    // Caught up before the load: this stands for every moment before the samples.
    let before = sample(&c).expect("the stream's row");
    let samples: Vec<Sample> = std::thread::scope(|s| {
        let sampler = s.spawn(|| c.psql(SAMPLER));
        // pgbench starts once the sampler runs, so the samples cover the whole load.
        assert!(
            wait_until(Duration::from_secs(30), || {
                c.psql(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT * FROM pg_temp.flush_samples()%'"
            ) == "1"
            }),
            "the sampler did not start"
        );
        let bench = pgbench(&c, &["-c", "2", "-j", "1", "-T", "6", "-N"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .output()
            .expect("run pgbench");
        assert!(
            bench.status.success(),
            "pgbench: {}",
            String::from_utf8_lossy(&bench.stderr)
        );
        let rows = sampler.join().expect("the sampler");
        std::iter::once(before)
            .chain(rows.lines().map(parse))
            .collect()
    });
    let under_load = samples.iter().filter(|s| s.load).count();
    assert!(under_load >= 8, "only {under_load} samples under load");
    assert!(
        samples.iter().any(|s| s.load && s.sent > start),
        "pgbench wrote no WAL"
    );
    for s in &samples {
        let bound = sent_by(&samples, s.at - 2.0);
        assert!(
            s.flush >= bound,
            "flush_lsn {} at {:.3} is behind {bound}, where sent_lsn already was 2 s earlier \
             (samples: {samples:?})",
            s.flush,
            s.at
        );
    }
    // The load stopped (the first sample without pgbench after its last): within 2 s the
    // flush position is the sent position, at or past the end of WAL then.
    let last_load = samples
        .iter()
        .rposition(|s| s.load)
        .expect("a sample under load");
    let quiet = samples.get(last_load + 1).expect("a sample after the load");
    let reached = samples
        .iter()
        .find(|s| s.at >= quiet.at && s.flush >= quiet.wal_end && s.flush == s.sent);
    assert!(
        reached.is_some_and(|r| r.at - quiet.at <= 2.0),
        "flush_lsn did not reach sent_lsn and {} within 2 s of the load's end at {:.3}: {samples:?}",
        quiet.wal_end,
        quiet.at
    );
    stop.trigger();
    assert!(engine.join().is_ok());
}
