//! Cuts the power at every sync point of a whole receive session — history file, segment
//! creation, syncs, completions, clean stop — and checks, for every crash mode, that the
//! durability contract held and that a restart recovers the full stream.

use pgwalrus_wal::names::FileName;

use super::*;
use crate::durable::remove_temp_file;
use crate::fs::{CrashMode, Failpoint, Fault, SimFs};
use crate::resume;
use crate::test_support::{DIR, SEG, dir, dir_path, seg_start, sim, stream, tli};

pub(super) const HISTORY: &[u8] = b"1\t0/2FFF000\tno recovery target specified\n";
const CHUNK: usize = 200_000;

fn start() -> Lsn {
    seg_start(3)
}

fn end() -> Lsn {
    Lsn(seg_start(5).0 + 300_000)
}

/// What the session was told before the power went out.
#[derive(Debug, Default)]
pub(super) struct Told {
    pub(super) history_written: bool,
    pub(super) completed: Vec<SegmentName>,
    /// The highest flush position the writer reported.
    pub(super) flush: Lsn,
}

/// Writes history, then streams `[from, end())` in chunks, syncing every third chunk, and
/// stops cleanly. Stops at the first error.
fn session(fs: &SimFs, from: Lsn, with_history: bool) -> (Told, bool) {
    let writer = ArchiveWriter::new(fs.clone(), DIR, SEG, Durability::Fsync);
    run_session(writer, from, &stream(from, end()), CHUNK, with_history)
}

/// A whole receive session with `w` (shared with the compressed power-cut tests): the
/// timeline-2 history file (optionally), then `data` from `from` in `chunk`-byte writes,
/// syncing every third, then a clean stop. Stops at the first error; returns what the
/// session was told and whether it got to the end.
pub(super) fn run_session(
    mut w: ArchiveWriter<SimFs>,
    from: Lsn,
    data: &[u8],
    chunk: usize,
    with_history: bool,
) -> (Told, bool) {
    let mut told = Told {
        flush: from,
        ..Told::default()
    };
    if with_history {
        if w.write_history(tli(2), HISTORY).is_err() {
            return (told, false);
        }
        told.history_written = true;
    }
    if w.start(tli(2), from).is_err() {
        return (told, false);
    }
    let mut at = from;
    for (i, chunk) in data.chunks(chunk).enumerate() {
        match w.write(tli(2), at, chunk) {
            Ok(written) => told.completed.extend(written.completed()),
            Err(_) => return (told, false),
        }
        told.flush = told.flush.max(w.flush_lsn());
        at = Lsn(at.0 + chunk.len() as u64);
        if i % 3 == 2 {
            match w.sync() {
                Ok(flush) => told.flush = told.flush.max(flush),
                Err(_) => return (told, false),
            }
        }
    }
    match w.close_partial() {
        Ok(flush) => told.flush = told.flush.max(flush),
        Err(_) => return (told, false),
    }
    (told, true)
}

/// The bytes of segment `segno` on timeline 2 as the crashed archive holds them, final
/// name first.
fn segment_bytes(fs: &SimFs, segno: u64) -> Option<Vec<u8>> {
    let name = SegmentName::new(tli(2), SegNo(segno), SEG).unwrap();
    fs.live_file(dir_path(&name.to_string()))
        .or_else(|| fs.live_file(dir_path(&name.partial().to_string())))
}

fn check_invariants(fs: &SimFs, told: &Told, at: &str) {
    for name in fs.live_names(dir()) {
        let content = fs.live_file(dir_path(&name)).unwrap();
        match FileName::parse(&name, SEG).unwrap() {
            f if f.is_temporary() => {}
            FileName::History(_) => assert_eq!(content, HISTORY, "{at}: torn {name}"),
            FileName::Segment(s) if s.is_partial() => assert_eq!(
                content.len() as u64,
                SEG.as_u64(),
                "{at}: half-initialised {name}"
            ),
            FileName::Segment(s) => assert!(
                content == stream(s.start_lsn(), s.end_lsn().unwrap()),
                "{at}: incomplete final-named {name}"
            ),
            other => panic!("{at}: unexpected {other}"),
        }
    }
    if told.history_written {
        assert!(
            fs.live_file(dir_path("00000002.history")).is_some(),
            "{at}: history reported written but lost"
        );
    }
    for name in &told.completed {
        assert!(
            fs.live_file(dir_path(&name.to_string())).is_some(),
            "{at}: {name} reported complete but lost"
        );
    }
    // Every byte below the reported flush position survived.
    let mut lsn = start();
    while lsn < told.flush {
        let segno = lsn.segno(SEG).0;
        let upto = seg_start(segno + 1).min(told.flush);
        let bytes = segment_bytes(fs, segno)
            .unwrap_or_else(|| panic!("{at}: segment {segno} lost below flush {}", told.flush));
        let len = (upto.0 - lsn.0) as usize;
        assert!(
            bytes[..len] == stream(lsn, upto)[..],
            "{at}: bytes below flush {} lost in segment {segno}",
            told.flush
        );
        lsn = upto;
    }
}

/// Restarts on the crashed archive as the receiver would and streams to the end.
fn recover(fs: &SimFs, at: &str) {
    let scan = resume::scan(fs, dir(), SEG).unwrap_or_else(|e| panic!("{at}: {e}"));
    for temp in &scan.temp_files {
        remove_temp_file(fs, dir(), temp).unwrap();
    }
    let from = match &scan.resume {
        Some(point) => {
            assert_eq!(point.tli, tli(2), "{at}");
            point.start
        }
        None => start(),
    };
    assert!(from >= start() && from <= end(), "{at}: resumes at {from}");
    let history_missing = fs.live_file(dir_path("00000002.history")).is_none();
    let (_, ok) = session(fs, from, history_missing);
    assert!(ok, "{at}: recovery session failed");

    let names = fs.live_names(dir());
    assert_eq!(
        names,
        [
            "00000002.history",
            "000000020000000000000003",
            "000000020000000000000004",
            "000000020000000000000005.partial",
        ],
        "{at}"
    );
    for segno in [3, 4] {
        assert!(
            segment_bytes(fs, segno).unwrap() == stream(seg_start(segno), seg_start(segno + 1)),
            "{at}: segment {segno} after recovery"
        );
    }
    let last = segment_bytes(fs, 5).unwrap();
    let tail = stream(seg_start(5), end());
    assert!(
        last[..tail.len()] == tail[..],
        "{at}: partial after recovery"
    );
}

#[test]
fn a_power_cut_at_any_sync_point_keeps_the_contract_and_restart_recovers() {
    let clean = sim();
    let (_, ok) = session(&clean, start(), true);
    assert!(ok);
    let points = clean.sync_count();
    assert!(points >= 15, "only {points} sync points");

    for k in 1..=points + 1 {
        let fs = sim();
        if k <= points {
            fs.fail(Failpoint::any_sync(Fault::PowerCut).nth(k));
        }
        let (told, ok) = session(&fs, start(), true);
        assert_eq!(ok, k > points);
        for mode in CrashMode::ALL {
            let at = format!("power cut at sync point {k} of {points}, {mode:?}");
            let crashed = fs.crash_with(mode);
            check_invariants(&crashed, &told, &at);
            recover(&crashed, &at);
        }
    }
}

#[test]
fn a_failed_fsync_at_any_sync_point_never_overstates_the_flush_position() {
    let clean = sim();
    let (_, ok) = session(&clean, start(), true);
    assert!(ok);
    let points = clean.sync_count();

    for k in 1..=points {
        let fs = sim();
        fs.fail(Failpoint::any_sync(Fault::Io).nth(k));
        let (told, ok) = session(&fs, start(), true);
        assert!(!ok, "sync point {k}: the failure was swallowed");
        // The writer gave up; the machine then crashed.
        for mode in CrashMode::ALL {
            let at = format!("fsync failure at sync point {k} of {points}, {mode:?}");
            let crashed = fs.crash_with(mode);
            check_invariants(&crashed, &told, &at);
            recover(&crashed, &at);
        }
    }
}
