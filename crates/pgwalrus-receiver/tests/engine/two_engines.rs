//! Two engines in one process, two servers: one synchronous standby under pgbench, one with
//! a slot; their status snapshots read concurrently from another thread; stopping one does
//! not disturb the other.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use pgwalrus_client::config::Config;
use pgwalrus_receiver::{FromConfig, ReceiveSettings, Shutdown, State, StatusReceiver, Stopped};
use pgwalrus_testkit::{Cluster, TRUST_USER, TempDir, wait_until};
use pgwalrus_wal::Lsn;

use crate::support::{
    assert_identical_to_pg_wal, current_lsn, load_and_switch, pgbench, run_pgbench, small_cluster,
};

fn source(c: &Cluster, application_name: &str) -> FromConfig {
    let conninfo = format!(
        "{} replication=true application_name={application_name}",
        c.conninfo(TRUST_USER)
    );
    FromConfig::new(Config::from_conninfo(&conninfo).expect("conninfo"))
}

#[track_caller]
fn wait_flushed(status: &StatusReceiver, lsn: Lsn) {
    assert!(
        wait_until(Duration::from_secs(30), || status.borrow().flushed_lsn
            >= lsn),
        "flushed position stayed at {} (wanted {lsn}): {:?}",
        status.borrow().flushed_lsn,
        status.borrow()
    );
}

#[test]
fn two_engines_in_one_process_and_stopping_one_leaves_the_other_streaming() {
    let a = small_cluster().start();
    let b = small_cluster().start();
    run_pgbench(&a, &["-i", "-s", "1", "-q"]);
    run_pgbench(&b, &["-i", "-s", "1", "-q"]);
    // From now on every commit on A waits for engine A.
    a.psql("ALTER SYSTEM SET synchronous_standby_names = 'engine_a'");
    a.psql("SELECT pg_reload_conf()");
    let (archive_a, archive_b) = (TempDir::new("engine-a"), TempDir::new("engine-b"));

    let mut sync = ReceiveSettings::new(archive_a.path());
    sync.synchronous = true;
    let mut slotted = ReceiveSettings::new(archive_b.path());
    slotted.slot = Some("engine_b".to_owned());
    slotted.create_slot = true;
    let (stop_a, shutdown_a) = Shutdown::new();
    let (stop_b, shutdown_b) = Shutdown::new();
    let engine_a = pgwalrus_receiver::spawn("engine-a", sync, source(&a, "engine_a"), shutdown_a)
        .expect("spawn engine a");
    let engine_b =
        pgwalrus_receiver::spawn("engine-b", slotted, source(&b, "engine_b"), shutdown_b)
            .expect("spawn engine b");
    let (status_a, status_b) = (engine_a.status(), engine_b.status());

    // A reader on another thread: positions only ever move forward.
    let reading = Arc::new(AtomicBool::new(true));
    let reads = Arc::new(AtomicU64::new(0));
    let reader = {
        let (reading, reads) = (reading.clone(), reads.clone());
        let (sa, sb) = (status_a.clone(), status_b.clone());
        std::thread::spawn(move || {
            let mut last = (Lsn::INVALID, Lsn::INVALID);
            while reading.load(Ordering::Relaxed) {
                let (fa, fb) = (sa.borrow().flushed_lsn, sb.borrow().flushed_lsn);
                assert!(fa >= last.0 && fb >= last.1, "a flushed position went back");
                last = (fa, fb);
                reads.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };

    for (name, status) in [("a", &status_a), ("b", &status_b)] {
        assert!(
            wait_until(Duration::from_secs(30), || status.borrow().state
                == State::Streaming),
            "engine {name} is not streaming: {:?}",
            status.borrow()
        );
    }
    assert!(
        wait_until(Duration::from_secs(10), || a.psql(
            "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'engine_a'"
        ) == "sync"),
        "engine a is not the synchronous standby"
    );
    // Synchronous commits on A wait for engine A for the whole run.
    let bench = pgbench(&a, &["-c", "2", "-j", "1", "-T", "6", "-N"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start pgbench");
    load_and_switch(&b);
    load_and_switch(&b);
    let b_end = current_lsn(&b);
    wait_flushed(&status_b, b_end);
    std::thread::sleep(Duration::from_secs(2));
    stop_b.trigger();
    assert!(
        wait_until(Duration::from_secs(10), || engine_b.is_finished()),
        "engine b did not stop within 10 s"
    );
    let stopped_b = engine_b.join().expect("engine b stops cleanly");
    assert!(matches!(stopped_b, Stopped::Shutdown { flushed } if flushed >= b_end));
    assert_eq!(status_b.borrow().state, State::Stopped);
    // A goes on: its synchronous commits keep being acknowledged.
    let a_flushed_at_b_stop = status_a.borrow().flushed_lsn;
    let out = bench.wait_with_output().expect("pgbench output");
    assert!(
        out.status.success(),
        "pgbench on a failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        status_a.borrow().flushed_lsn > a_flushed_at_b_stop,
        "engine a made nothing durable after engine b stopped"
    );
    assert_eq!(status_a.borrow().state, State::Streaming);
    load_and_switch(&a);
    load_and_switch(&a);
    let a_end = current_lsn(&a);
    wait_flushed(&status_a, a_end);
    stop_a.trigger();
    assert!(matches!(
        engine_a.join().expect("engine a stops cleanly"),
        Stopped::Shutdown { .. }
    ));
    reading.store(false, Ordering::Relaxed);
    reader
        .join()
        .expect("the status reader saw positions only move forward");
    assert!(reads.load(Ordering::Relaxed) > 100);

    assert!(assert_identical_to_pg_wal(&a, archive_a.path()) >= 2);
    assert!(assert_identical_to_pg_wal(&b, archive_b.path()) >= 2);
    let s = status_a.borrow();
    assert_eq!(s.sender_host.as_deref(), Some("127.0.0.1"));
    assert_eq!(s.sender_port, Some(a.port()));
    assert!(s.segments_completed >= 2, "{s:?}");
    assert!(
        s.conninfo
            .as_deref()
            .is_some_and(|c| c.contains("user=walrus_trust"))
    );
}
