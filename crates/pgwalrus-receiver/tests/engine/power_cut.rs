//! The whole receive loop — a real server, the engine — over the crash-simulating file
//! system, with the power cut at every sync point of a multi-segment run in turn, once on
//! one timeline and once across a timeline switch (a promoted standby). After each cut the
//! machine "restarts" with what survived (each of the simulator's crash modes in turn), a
//! new engine resumes, and the archive must end with no gap and every segment
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
    segment_name_on(1, segno)
}

fn segment_name_on(tli: u32, segno: u64) -> String {
    // 1 MiB segments: 4096 segments per "log" id.
    format!("{tli:08X}{:08X}{:08X}", segno / 4096, segno % 4096)
}

/// Runs an engine over `fs` up to `end`; `Ok` with how it stopped, or `None` when the power
/// went out first (the engine is then stopped and its result ignored).
fn run_engine(c: &Cluster, fs: &SimFs, end: Lsn) -> Option<Stopped> {
    let mut settings = ReceiveSettings::new(DIR);
    settings.endpos = Some(end);
    // Only the syncs of the WAL itself (segment creation and completion, the stop), so
    // every run of the same WAL has the same sync points: no timer-driven fsyncs.
    settings.flush_interval = None;
    settings.status_interval = None;
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
    cut_everywhere(&c, &fresh, end, &seed, &seed_bytes, |fs, context| {
        assert_complete(&c, fs, first, end, context);
    });
}

/// Runs the engine over a fresh archive from `fresh` once without a failpoint, then once
/// with the power cut before each sync point in turn, restarting after each cut with what
/// survived; `check` judges every finished archive.
fn cut_everywhere(
    c: &Cluster,
    fresh: &dyn Fn() -> SimFs,
    end: Lsn,
    seed: &str,
    seed_bytes: &[u8],
    check: impl Fn(&SimFs, &str),
) {
    // Without a failpoint: the run is complete, and says how many sync points it has.
    let clean = fresh();
    assert!(matches!(
        run_engine(c, &clean, end),
        Some(Stopped::EndPosition { .. })
    ));
    check(&clean, "without a power cut");
    let sync_points = clean.sync_count();
    assert!(
        sync_points >= 8,
        "only {sync_points} sync points in the run"
    );

    let mut cuts = 0;
    for nth in 1.. {
        let fs = fresh();
        fs.fail(Failpoint::any_sync(Fault::PowerCut).nth(nth));
        if run_engine(c, &fs, end).is_some() {
            // The run ended before its nth sync point: each of its sync points, 1 to nth - 1,
            // was cut in an earlier round.
            let synced = fs.sync_count();
            assert!(
                synced < nth,
                "a run with the power cut armed at sync point {nth} finished after {synced} syncs"
            );
            check(&fs, "the run that ended before its armed power cut");
            break;
        }
        cuts += 1;
        let mode = CrashMode::ALL[nth as usize % CrashMode::ALL.len()];
        let restarted = fs.crash_with(mode);
        let context = format!("power cut before sync point {nth}, restarted with {mode:?}");
        let stopped = run_engine(c, &restarted, end);
        assert!(
            matches!(stopped, Some(Stopped::EndPosition { flushed }) if flushed >= end),
            "{context}: the restarted engine did not reach {end}: {stopped:?}"
        );
        assert_eq!(
            restarted.live_file(Path::new(DIR).join(seed)).as_deref(),
            Some(seed_bytes),
            "{context}: the seed segment changed"
        );
        check(&restarted, &context);
        assert!(nth < 500, "no end to the sync points");
    }
    // How many sync points a run has depends on whether WAL past the end position arrived
    // before the stop (the next segment is then created: three more). Every sync point of
    // the last run was cut (asserted above); a clean run has about as many.
    assert!(
        cuts + 4 >= sync_points,
        "cut {cuts} times, but a clean run has {sync_points} sync points"
    );
}

/// A standby of `p` started from a copy of `p`'s data directory (`p` is stopped for the
/// copy and started again).
fn standby_of(p: &Cluster) -> Cluster {
    p.switch_wal();
    p.stop();
    let source = p.root_dir().join("standby-source");
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(p.data_dir())
        .arg(&source)
        .status()
        .expect("run cp");
    assert!(status.success(), "cp -a of the data directory failed");
    let signal = source.join("standby.signal");
    std::fs::write(&signal, "").expect("standby.signal");
    pgwalrus_testkit::give_to_server_user(&signal);
    p.start();
    let s = Cluster::builder(p.pg())
        .from_data_dir(&source)
        .setting("wal_keep_size", "256MB")
        .setting(
            "primary_conninfo",
            format!("host=127.0.0.1 port={} user={TRUST_USER}", p.port()),
        )
        .start();
    assert_eq!(s.psql("SELECT pg_is_in_recovery()"), "t");
    s
}

#[test]
fn power_cut_at_every_sync_point_across_a_timeline_switch_loses_nothing() {
    let p = small_cluster().start();
    load_and_switch(&p);
    let s = standby_of(&p);
    for _ in 0..3 {
        load_and_switch(&p);
    }
    let replayed = format!(
        "SELECT pg_last_wal_replay_lsn() >= '{}'::pg_lsn",
        current_lsn(&p)
    );
    assert!(
        wait_until(Duration::from_secs(30), || s.psql(&replayed) == "t"),
        "the standby did not catch up"
    );
    // The archive starts with a timeline 1 segment two before the end of timeline 1.
    let seed_segno = current_lsn(&p).as_u64() / SEG - 2;
    let seed = segment_name(seed_segno);
    let seed_bytes = std::fs::read(p.pg_wal_dir().join(&seed)).expect("the seed segment");
    // Timeline 1 ends inside a segment: its last one stays .partial in the archive.
    p.psql("INSERT INTO load VALUES (1, 'the last of timeline 1')");
    let replayed = format!(
        "SELECT pg_last_wal_replay_lsn() >= '{}'::pg_lsn",
        current_lsn(&p)
    );
    assert!(wait_until(Duration::from_secs(30), || s.psql(&replayed) == "t"));
    p.stop();
    assert_eq!(s.psql("SELECT pg_promote()"), "t");
    let history = std::fs::read(s.pg_wal_dir().join("00000002.history")).expect("history");
    let text = String::from_utf8_lossy(&history).into_owned();
    let switch: Lsn = text
        .split_whitespace()
        .nth(1)
        .and_then(|l| l.parse().ok())
        .unwrap_or_else(|| panic!("no switch point in {text:?}"));
    assert_ne!(
        switch.as_u64() % SEG,
        0,
        "the switch point should be inside a segment"
    );
    for _ in 0..2 {
        load_and_switch(&s);
    }
    let end = current_lsn(&s);
    s.psql("INSERT INTO load VALUES (2, 'after the end')");
    let switch_segno = switch.as_u64() / SEG;

    let fresh = || {
        let fs = SimFs::new();
        fs.create_dir(DIR);
        fs.put_file(Path::new(DIR).join(&seed), &seed_bytes);
        fs
    };
    let server_copy = |name: &str| {
        std::fs::read(s.pg_wal_dir().join(name))
            .or_else(|_| std::fs::read(p.pg_wal_dir().join(name)))
            .unwrap_or_else(|e| panic!("{name} is in neither server's pg_wal: {e}"))
    };
    cut_everywhere(&s, &fresh, end, &seed, &seed_bytes, |fs, context| {
        let names = fs.live_names(DIR);
        // Timeline 1 up to the switch segment, which stays .partial; timeline 2 from it on.
        for segno in seed_segno..end.as_u64() / SEG {
            let (tli, name) = if segno < switch_segno {
                (1, segment_name_on(1, segno))
            } else {
                (2, segment_name_on(2, segno))
            };
            let ours = fs.live_file(Path::new(DIR).join(&name)).unwrap_or_else(|| {
                panic!("{context}: {name} (timeline {tli}) is missing: {names:?}")
            });
            if let Some(at) = ours
                .iter()
                .zip(server_copy(&name).iter())
                .position(|(a, b)| a != b)
            {
                panic!("{context}: {name} differs from the server's at byte {at}");
            }
        }
        let partial = format!("{}.partial", segment_name_on(1, switch_segno));
        assert!(
            names.contains(&partial),
            "{context}: no {partial}: {names:?}"
        );
        assert_eq!(
            fs.live_file(Path::new(DIR).join("00000002.history"))
                .as_deref(),
            Some(history.as_slice()),
            "{context}: the history file of timeline 2"
        );
        for name in &names {
            assert!(
                name.len() == 24 || name.ends_with(".partial") || name == "00000002.history",
                "{context}: unexpected file {name}: {names:?}"
            );
        }
    });
}
