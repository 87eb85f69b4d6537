//! The whole receive loop — a real server, the engine — over the crash-simulating file
//! system, with the power cut at every sync point of a multi-segment run in turn. After each
//! cut the machine "restarts" with what survived (each of the simulator's crash modes in
//! turn), a new engine resumes, and the archive must end with no gap and every segment
//! byte-identical to the server's.

use std::path::Path;
use std::time::Duration;

use pgwalrus_archive::SimFs;
use pgwalrus_archive::fs::{CrashMode, Failpoint, Fault};
use pgwalrus_client::config::Config;
use pgwalrus_receiver::{FromConfig, ReceiveSettings, Shutdown, Stopped};
use pgwalrus_testkit::{Cluster, TRUST_USER, wait_until};
use pgwalrus_wal::Lsn;

use crate::support::{SEG, current_lsn, load_and_switch, small_cluster};

const DIR: &str = "/archive";

fn source(c: &Cluster) -> FromConfig {
    let conninfo = format!("{} replication=true", c.conninfo(TRUST_USER));
    FromConfig::new(Config::from_conninfo(&conninfo).expect("conninfo"))
}

fn segment_name(segno: u64) -> String {
    // Timeline 1, 1 MiB segments: 4096 segments per "log" id.
    format!("00000001{:08X}{:08X}", segno / 4096, segno % 4096)
}

/// Runs an engine over `fs` up to `end`; `Ok` with how it stopped, or `None` when the power
/// went out first (the engine is then stopped and its result ignored).
fn run_engine(c: &Cluster, fs: &SimFs, end: Lsn) -> Option<Stopped> {
    let mut settings = ReceiveSettings::new(DIR);
    settings.endpos = Some(end);
    let (trigger, shutdown) = Shutdown::new();
    let engine =
        pgwalrus_receiver::spawn_on("power-cut", fs.clone(), settings, source(c), shutdown)
            .expect("spawn the engine");
    assert!(
        wait_until(Duration::from_secs(60), || engine.is_finished()
            || fs.is_powered_off()),
        "the engine neither finished nor hit the power cut: {:?}",
        engine.status().borrow()
    );
    if fs.is_powered_off() {
        trigger.trigger();
        assert!(
            wait_until(Duration::from_secs(30), || engine.is_finished()),
            "the engine did not stop after the power cut"
        );
        let _ = engine.join();
        return None;
    }
    Some(engine.join().unwrap_or_else(|reason| {
        panic!(
            "the engine stopped with {} ({})",
            reason.error.chain(),
            reason.kind
        )
    }))
}

/// The archive on `fs` holds `seed` and every segment from `first` up to `end`, each
/// identical to the server's copy, and nothing else but one `.partial` at most.
#[track_caller]
fn assert_complete(c: &Cluster, fs: &SimFs, first: u64, end: Lsn, context: &str) {
    let last = end.as_u64() / SEG; // exclusive
    for segno in first..last {
        let name = segment_name(segno);
        let ours = fs
            .live_file(Path::new(DIR).join(&name))
            .unwrap_or_else(|| panic!("{context}: {name} is missing: {:?}", fs.live_names(DIR)));
        let theirs = std::fs::read(c.pg_wal_dir().join(&name)).expect("the server's segment");
        if let Some(at) = ours.iter().zip(&theirs).position(|(a, b)| a != b) {
            panic!("{context}: {name} differs from the server's at byte {at}");
        }
        assert_eq!(
            ours.len(),
            theirs.len(),
            "{context}: {name} has the wrong length"
        );
    }
    for name in fs.live_names(DIR) {
        assert!(
            name.len() == 24 || name.ends_with(".partial"),
            "{context}: unexpected file {name} left in the archive: {:?}",
            fs.live_names(DIR)
        );
    }
}

#[test]
fn power_cut_at_every_sync_point_then_resume_loses_nothing() {
    let c = small_cluster().start();
    load_and_switch(&c);
    // The archive starts with the segment just completed; streaming resumes after it.
    let resume = current_lsn(&c);
    assert_eq!(
        resume.as_u64() % SEG,
        0,
        "a switch ends on a segment boundary"
    );
    let seed = segment_name(resume.as_u64() / SEG - 1);
    let seed_bytes = std::fs::read(c.pg_wal_dir().join(&seed)).expect("the seed segment");
    for _ in 0..4 {
        load_and_switch(&c);
    }
    let end = current_lsn(&c);
    // A little WAL past the end, so the server has sent everything up to it.
    c.psql("INSERT INTO load VALUES (0, 'after the end')");
    let first = resume.as_u64() / SEG;

    let fresh = || {
        let fs = SimFs::new();
        fs.create_dir(DIR);
        fs.put_file(Path::new(DIR).join(&seed), &seed_bytes);
        fs
    };
    // Without a failpoint: the run is complete, and says how many sync points it has.
    let clean = fresh();
    assert!(matches!(
        run_engine(&c, &clean, end),
        Some(Stopped::EndPosition { .. })
    ));
    assert_complete(&c, &clean, first, end, "without a power cut");
    let sync_points = clean.sync_count();
    assert!(
        sync_points >= 8,
        "only {sync_points} sync points in a 4-segment run"
    );

    let mut cuts = 0;
    for nth in 1.. {
        let fs = fresh();
        fs.fail(Failpoint::any_sync(Fault::PowerCut).nth(nth));
        if run_engine(&c, &fs, end).is_some() {
            // The run ended before its nth sync point: every one was cut.
            break;
        }
        cuts += 1;
        let mode = CrashMode::ALL[nth as usize % CrashMode::ALL.len()];
        let restarted = fs.crash_with(mode);
        let context = format!("power cut before sync point {nth}, restarted with {mode:?}");
        let stopped = run_engine(&c, &restarted, end);
        assert!(
            matches!(stopped, Some(Stopped::EndPosition { flushed }) if flushed >= end),
            "{context}: the restarted engine did not reach {end}: {stopped:?}"
        );
        assert_eq!(
            restarted.live_file(Path::new(DIR).join(&seed)).as_deref(),
            Some(seed_bytes.as_slice()),
            "{context}: the seed segment changed"
        );
        assert_complete(&c, &restarted, first, end, &context);
        assert!(nth < 500, "no end to the sync points");
    }
    assert!(
        cuts as u64 + 2 >= sync_points,
        "cut {cuts} times, but a clean run has {sync_points} sync points"
    );
}
