//! Tests of the archive writer: positions, segment boundaries, reuse of `.partial`
//! files, contiguity, poisoning, ENOSPC, clean stops, and any split of the stream.

use super::*;
use crate::fs::{Failpoint, Fault, SimFs, SimOp, StdFs};
use crate::resume;
use crate::test_support::{SEG, TempDir, dir, dir_path, seg_name, seg_start, sim, stream, tli};
use proptest::prelude::*;

fn writer(fs: &SimFs) -> ArchiveWriter<SimFs> {
    ArchiveWriter::new(fs.clone(), DIR_PATH, SEG, Durability::Fsync)
}

const DIR_PATH: &str = crate::test_support::DIR;

fn lsn(segno: u64, offset: u64) -> Lsn {
    Lsn(seg_start(segno).0 + offset)
}

/// Writes the stream bytes `[from, to)` in one call.
fn put(w: &mut ArchiveWriter<SimFs>, t: u32, from: Lsn, to: Lsn) -> Result<Written> {
    w.write(tli(t), from, &stream(from, to))
}

fn live(fs: &SimFs, name: &str) -> Vec<u8> {
    fs.live_file(dir_path(name))
        .unwrap_or_else(|| panic!("{name} missing"))
}

const SEG_BYTES: u64 = 1 << 20;

#[test]
fn writes_at_exact_offsets_and_sync_reports_the_flush_position() {
    let fs = sim();
    let mut w = writer(&fs);
    assert_eq!((w.write_lsn(), w.flush_lsn()), (Lsn::INVALID, Lsn::INVALID));
    w.start(tli(1), seg_start(3)).unwrap();
    assert_eq!(w.timeline(), Some(tli(1)));
    assert_eq!((w.write_lsn(), w.flush_lsn()), (seg_start(3), seg_start(3)));
    let written = put(&mut w, 1, lsn(3, 0), lsn(3, 1000)).unwrap();
    assert_eq!(written.completed_count(), 0);
    put(&mut w, 1, lsn(3, 1000), lsn(3, 5000)).unwrap();
    assert_eq!(w.write_lsn(), lsn(3, 5000));
    assert_eq!(w.flush_lsn(), lsn(3, 0));
    assert_eq!(w.sync().unwrap(), lsn(3, 5000));
    assert_eq!(w.flush_lsn(), lsn(3, 5000));
    let name = "000000010000000000000003.partial";
    assert_eq!(w.current_segment(), Some(dir_path(name).as_path()));
    let durable = fs.durable_file(dir_path(name)).unwrap();
    assert_eq!(durable.len() as u64, SEG_BYTES);
    assert_eq!(&durable[..5000], &stream(lsn(3, 0), lsn(3, 5000))[..]);
    assert!(durable[5000..].iter().all(|&b| b == 0));
}

#[test]
fn nothing_on_disk_is_touched_before_the_first_byte() {
    let fs = sim();
    let old = stream(lsn(4, 0), lsn(4, 3000));
    fs.put_file(dir_path("000000010000000000000004.partial"), &old);
    let mut w = writer(&fs);
    w.start(tli(1), seg_start(4)).unwrap();
    w.write(tli(1), seg_start(4), &[]).unwrap();
    assert_eq!(w.sync().unwrap(), seg_start(4));
    assert_eq!(w.close_partial().unwrap(), seg_start(4));
    drop(w);
    for op in [
        SimOp::Create,
        SimOp::Open,
        SimOp::SetLen,
        SimOp::Write,
        SimOp::SyncFile,
        SimOp::SyncDir,
        SimOp::Rename,
    ] {
        assert_eq!(fs.count(op), 0, "{op:?}");
    }
    assert_eq!(live(&fs, "000000010000000000000004.partial"), old);
}

#[test]
fn a_chunk_straddling_a_segment_end_completes_the_segment_and_continues() {
    let fs = sim();
    let mut w = writer(&fs);
    w.start(tli(1), seg_start(3)).unwrap();
    put(&mut w, 1, lsn(3, 0), lsn(3, SEG_BYTES - 100)).unwrap();
    let written = put(&mut w, 1, lsn(3, SEG_BYTES - 100), lsn(4, 100)).unwrap();
    assert_eq!(written.completed().collect::<Vec<_>>(), [seg_name(1, 3)]);
    assert_eq!(written.last_completed(), Some(seg_name(1, 3)));
    assert_eq!(w.last_completed(), Some(seg_name(1, 3)));
    // Completing a segment makes everything up to its end durable.
    assert_eq!(w.flush_lsn(), seg_start(4));
    assert_eq!(w.write_lsn(), lsn(4, 100));
    assert_eq!(
        fs.live_names(dir()),
        [
            "000000010000000000000003",
            "000000010000000000000004.partial"
        ]
    );
    assert_eq!(
        fs.durable_file(dir_path("000000010000000000000003"))
            .unwrap(),
        stream(seg_start(3), seg_start(4))
    );
    assert_eq!(
        &live(&fs, "000000010000000000000004.partial")[..100],
        &stream(seg_start(4), lsn(4, 100))[..]
    );
}

#[test]
fn one_chunk_may_complete_several_segments() {
    let fs = sim();
    let mut w = writer(&fs);
    w.start(tli(1), seg_start(3)).unwrap();
    let written = put(&mut w, 1, seg_start(3), lsn(5, SEG_BYTES / 2)).unwrap();
    assert_eq!(
        written.completed().collect::<Vec<_>>(),
        [seg_name(1, 3), seg_name(1, 4)]
    );
    assert_eq!(written.completed_count(), 2);
    for segno in [3, 4] {
        assert_eq!(
            live(&fs, &seg_name(1, segno).to_string()),
            stream(seg_start(segno), seg_start(segno + 1))
        );
    }
}

#[test]
fn ending_exactly_at_a_segment_end_opens_nothing_new() {
    let fs = sim();
    let mut w = writer(&fs);
    w.start(tli(1), seg_start(3)).unwrap();
    let written = put(&mut w, 1, seg_start(3), seg_start(4)).unwrap();
    assert_eq!(written.completed_count(), 1);
    assert_eq!(fs.live_names(dir()), ["000000010000000000000003"]);
    assert_eq!(w.current_segment(), None);
    assert_eq!((w.write_lsn(), w.flush_lsn()), (seg_start(4), seg_start(4)));
    let syncs = fs.sync_count();
    assert_eq!(w.sync().unwrap(), seg_start(4));
    assert_eq!(fs.sync_count(), syncs);
}

#[test]
fn discontinuities_are_typed_errors_and_write_nothing() {
    let fs = sim();
    let mut w = writer(&fs);
    let e = put(&mut w, 1, seg_start(3), lsn(3, 10)).unwrap_err();
    assert!(matches!(e, Error::NotStarted), "{e}");
    let e = w.start(tli(1), lsn(3, 8)).unwrap_err();
    assert!(matches!(e, Error::NotSegmentStart { .. }), "{e}");
    w.start(tli(1), seg_start(3)).unwrap();
    put(&mut w, 1, lsn(3, 0), lsn(3, 10)).unwrap();

    let e = put(&mut w, 1, lsn(3, 11), lsn(3, 20)).unwrap_err();
    assert!(
        matches!(e, Error::NotContiguous { expected, got, .. } if expected == lsn(3, 10) && got == lsn(3, 11)),
        "{e}"
    );
    assert!(e.is_discontinuity());
    assert!(
        e.to_string().contains("0/30000A") && e.to_string().contains("0/30000B"),
        "{e}"
    );
    let e = put(&mut w, 1, lsn(3, 5), lsn(3, 20)).unwrap_err();
    assert!(matches!(e, Error::NotContiguous { .. }), "{e}");
    let e = put(&mut w, 2, lsn(3, 10), lsn(3, 20)).unwrap_err();
    assert!(
        matches!(e, Error::TimelineMismatch { expected, got, .. } if expected == tli(1) && got == tli(2)),
        "{e}"
    );
    let e = w.start(tli(2), seg_start(3)).unwrap_err();
    assert!(matches!(e, Error::SegmentOpen { .. }), "{e}");
    let e = w.write(tli(1), Lsn(u64::MAX - 2), &[0; 8]).unwrap_err();
    assert!(matches!(e, Error::NotContiguous { .. }), "{e}");

    assert_eq!(w.write_lsn(), lsn(3, 10));
    assert!(!w.is_poisoned());
    assert_eq!(
        &live(&fs, "000000010000000000000003.partial")[..12],
        &[&stream(lsn(3, 0), lsn(3, 10))[..], &[0, 0]].concat()[..]
    );
}

#[test]
fn positions_past_the_end_of_wal_are_refused() {
    let fs = sim();
    let mut w = writer(&fs);
    let last = SEG.max_segno().start_lsn(SEG).unwrap();
    w.start(tli(1), last).unwrap();
    let e = w
        .write(tli(1), last, &vec![0; SEG_BYTES as usize + 1])
        .unwrap_err();
    assert!(matches!(e, Error::LsnOverflow { .. }), "{e}");
}

#[test]
fn an_existing_partial_of_any_size_is_reused_and_overwritten_from_its_start() {
    let old_full: Vec<u8> = vec![0xEE; SEG_BYTES as usize];
    for old in [Vec::new(), vec![0xEE; 12_345], old_full] {
        let fs = sim();
        fs.put_file(dir_path("000000010000000000000004.partial"), &old);
        let mut w = writer(&fs);
        w.start(tli(1), seg_start(4)).unwrap();
        put(&mut w, 1, seg_start(4), lsn(4, 5000)).unwrap();
        w.sync().unwrap();
        let now = fs
            .durable_file(dir_path("000000010000000000000004.partial"))
            .unwrap();
        assert_eq!(now.len() as u64, SEG_BYTES, "old len {}", old.len());
        assert_eq!(&now[..5000], &stream(seg_start(4), lsn(4, 5000))[..]);
        // Beyond the write position: the old bytes or the hole, never relied on.
        for (i, &b) in now.iter().enumerate().skip(5000) {
            assert_eq!(b, old.get(i).copied().unwrap_or(0), "old len {}", old.len());
        }
        put(&mut w, 1, lsn(4, 5000), seg_start(5)).unwrap();
        assert_eq!(
            live(&fs, "000000010000000000000004"),
            stream(seg_start(4), seg_start(5))
        );
        assert_eq!(fs.live_names(dir()), ["000000010000000000000004"]);
    }
}

#[test]
fn an_oversized_partial_is_left_alone_and_reported() {
    let fs = sim();
    let big = vec![1u8; SEG_BYTES as usize + 1];
    fs.put_file(dir_path("000000010000000000000004.partial"), &big);
    let mut w = writer(&fs);
    w.start(tli(1), seg_start(4)).unwrap();
    let e = put(&mut w, 1, seg_start(4), lsn(4, 10)).unwrap_err();
    assert!(matches!(e, Error::OversizedPartial { .. }), "{e}");
    assert!(!w.is_poisoned());
    assert_eq!(live(&fs, "000000010000000000000004.partial"), big);
}

#[test]
fn sync_is_free_when_nothing_changed() {
    let fs = sim();
    let mut w = writer(&fs);
    w.start(tli(1), seg_start(3)).unwrap();
    put(&mut w, 1, lsn(3, 0), lsn(3, 10)).unwrap();
    let base = fs.count(SimOp::SyncFile);
    w.sync().unwrap();
    w.sync().unwrap();
    w.sync().unwrap();
    assert_eq!(fs.count(SimOp::SyncFile), base + 1);
    put(&mut w, 1, lsn(3, 10), lsn(3, 20)).unwrap();
    w.sync().unwrap();
    assert_eq!(fs.count(SimOp::SyncFile), base + 2);
}

#[test]
fn a_failed_fsync_poisons_and_is_never_retried() {
    let fs = sim();
    let mut w = writer(&fs);
    w.start(tli(1), seg_start(3)).unwrap();
    put(&mut w, 1, lsn(3, 0), lsn(3, 100)).unwrap();
    w.sync().unwrap();
    put(&mut w, 1, lsn(3, 100), lsn(3, 200)).unwrap();
    fs.fail(Failpoint::new(SimOp::SyncFile, Fault::Io));
    let e = w.sync().unwrap_err();
    assert_eq!(e.op(), Some(Op::Sync));
    assert!(e.is_poisoning() && !e.is_poisoned(), "{e}");
    assert!(w.is_poisoned());
    assert_eq!(w.flush_lsn(), lsn(3, 100));

    let syncs = fs.sync_count();
    let results = [
        w.sync().map(drop),
        put(&mut w, 1, lsn(3, 200), lsn(3, 300)).map(drop),
        w.close_partial().map(drop),
        w.start(tli(1), seg_start(3)),
        w.write_history(tli(2), b"1\t0/3000000\tx\n").map(drop),
    ];
    for r in results {
        let e = r.unwrap_err();
        assert!(
            matches!(&e, Error::Poisoned { op: Op::Sync, flush_lsn, .. } if *flush_lsn == lsn(3, 100)),
            "{e}"
        );
        assert!(e.to_string().contains("0/300064"), "{e}");
    }
    assert_eq!(fs.sync_count(), syncs, "fsync retried after a failure");
    // What the failed fsync dropped is gone, and nothing claims otherwise.
    let after = fs.crash();
    let durable = after
        .live_file(dir_path("000000010000000000000003.partial"))
        .unwrap();
    assert_eq!(&durable[..100], &stream(lsn(3, 0), lsn(3, 100))[..]);
    assert!(durable[100..200].iter().all(|&b| b == 0));
}

#[test]
fn a_failed_rename_while_completing_poisons() {
    let fs = sim();
    let mut w = writer(&fs);
    w.start(tli(1), seg_start(3)).unwrap();
    fs.fail(Failpoint::new(SimOp::Rename, Fault::Io).nth(2));
    let e = put(&mut w, 1, seg_start(3), lsn(4, 10)).unwrap_err();
    assert_eq!(e.op(), Some(Op::Rename), "{e}");
    assert!(w.is_poisoned());
    assert!(
        put(&mut w, 1, seg_start(4), lsn(4, 10))
            .unwrap_err()
            .is_poisoned()
    );
    assert_eq!(fs.live_names(dir()), ["000000010000000000000003.partial"]);
}

#[test]
fn after_poisoning_a_new_writer_re_streams_and_makes_the_name_durable() {
    let fs = sim();
    let mut w = writer(&fs);
    w.start(tli(1), seg_start(3)).unwrap();
    // Creation renames the file into place, then the directory fsync fails.
    fs.fail(Failpoint::new(SimOp::SyncDir, Fault::Io));
    let e = put(&mut w, 1, seg_start(3), lsn(3, 100)).unwrap_err();
    assert_eq!(e.op(), Some(Op::SyncDir));
    assert!(w.is_poisoned());
    drop(w);
    assert!(fs.durable_names(dir()).is_empty());

    // The receiver reconnects: scan, new writer, stream again from the segment start.
    let point = resume::find_streaming_start(&fs, dir(), SEG)
        .unwrap()
        .unwrap();
    assert_eq!(point.start, seg_start(3));
    let mut w = writer(&fs);
    w.start(point.tli, point.start).unwrap();
    put(&mut w, 1, seg_start(3), lsn(3, 100)).unwrap();
    assert_eq!(w.sync().unwrap(), lsn(3, 100));
    let after = fs.crash();
    let durable = after
        .live_file(dir_path("000000010000000000000003.partial"))
        .expect("the reused partial's name is durable");
    assert_eq!(&durable[..100], &stream(lsn(3, 0), lsn(3, 100))[..]);
}

#[test]
fn no_space_on_write_is_typed_leaves_files_intact_and_can_be_retried() {
    let fs = sim();
    let mut w = writer(&fs);
    w.start(tli(1), seg_start(3)).unwrap();
    put(&mut w, 1, seg_start(3), lsn(4, 100)).unwrap();
    w.sync().unwrap();
    let complete = live(&fs, "000000010000000000000003");

    fs.fail(Failpoint::new(SimOp::Write, Fault::NoSpace));
    let e = put(&mut w, 1, lsn(4, 100), lsn(4, 200)).unwrap_err();
    assert!(e.is_no_space(), "{e}");
    assert_eq!(e.op(), Some(Op::Write));
    assert!(
        e.to_string().contains("000000010000000000000004.partial"),
        "{e}"
    );
    assert!(!w.is_poisoned());
    assert_eq!(w.write_lsn(), lsn(4, 100));
    assert_eq!(live(&fs, "000000010000000000000003"), complete);

    // Space is freed; the same data is offered again.
    put(&mut w, 1, lsn(4, 100), lsn(4, 200)).unwrap();
    assert_eq!(w.sync().unwrap(), lsn(4, 200));
    assert_eq!(
        &live(&fs, "000000010000000000000004.partial")[..200],
        &stream(seg_start(4), lsn(4, 200))[..]
    );
}

#[test]
fn no_space_creating_the_next_segment_keeps_the_completed_one() {
    let fs = sim();
    let mut w = writer(&fs);
    w.start(tli(1), seg_start(3)).unwrap();
    fs.fail(Failpoint::new(SimOp::Create, Fault::NoSpace).nth(2));
    let e = put(&mut w, 1, seg_start(3), lsn(4, 100)).unwrap_err();
    assert!(e.is_no_space(), "{e}");
    assert!(!w.is_poisoned());
    assert_eq!(w.write_lsn(), seg_start(4));
    assert_eq!(w.flush_lsn(), seg_start(4));
    assert_eq!(w.last_completed(), Some(seg_name(1, 3)));
    assert_eq!(fs.live_names(dir()), ["000000010000000000000003"]);
    // The rest of the chunk, from the write position.
    put(&mut w, 1, seg_start(4), lsn(4, 100)).unwrap();
    assert_eq!(
        fs.live_names(dir()),
        [
            "000000010000000000000003",
            "000000010000000000000004.partial"
        ]
    );
}

#[test]
fn a_partial_replaced_under_the_writer_is_never_reported_durable_nor_completed() {
    let fs = sim();
    let mut w = writer(&fs);
    w.start(tli(1), seg_start(3)).unwrap();
    put(&mut w, 1, lsn(3, 0), lsn(3, 100)).unwrap();
    assert_eq!(w.sync().unwrap(), lsn(3, 100));
    // Another process moves the open file away and puts a copy in its place.
    let name = "000000010000000000000003.partial";
    fs.rename(&dir_path(name), &dir_path("moved")).unwrap();
    fs.put_file(dir_path(name), &live(&fs, "moved"));
    put(&mut w, 1, lsn(3, 100), lsn(3, 200)).unwrap();
    let e = w.sync().unwrap_err();
    assert!(
        matches!(&e, Error::Replaced { op: Op::Sync, path } if path == &dir_path(name)),
        "{e}"
    );
    assert!(e.to_string().contains(name), "{e}");
    assert!(!e.is_no_space() && !e.is_poisoning(), "{e}");
    assert_eq!(
        w.flush_lsn(),
        lsn(3, 100),
        "nothing new is reported durable"
    );
    assert!(w.is_poisoned());
    assert!(
        put(&mut w, 1, lsn(3, 200), lsn(3, 300))
            .unwrap_err()
            .is_poisoned()
    );

    // Completion: the copy is never given the final name.
    let fs = sim();
    let mut w = writer(&fs);
    w.start(tli(1), seg_start(3)).unwrap();
    put(&mut w, 1, lsn(3, 0), lsn(3, 100)).unwrap();
    fs.rename(&dir_path(name), &dir_path("moved")).unwrap();
    fs.put_file(dir_path(name), b"another file");
    let e = put(&mut w, 1, lsn(3, 100), lsn(4, 10)).unwrap_err();
    assert!(matches!(&e, Error::Replaced { op: Op::Rename, .. }), "{e}");
    assert_eq!(w.flush_lsn(), lsn(3, 0));
    assert!(w.is_poisoned());
    assert_eq!(fs.live_names(dir()), [name, "moved"]);
    assert_eq!(live(&fs, name), b"another file");

    // Removed without a replacement: the same.
    let fs = sim();
    let mut w = writer(&fs);
    w.start(tli(1), seg_start(3)).unwrap();
    put(&mut w, 1, lsn(3, 0), lsn(3, 100)).unwrap();
    fs.remove_file(&dir_path(name)).unwrap();
    assert!(matches!(
        w.close_partial().unwrap_err(),
        Error::Replaced { op: Op::Sync, .. }
    ));
}

#[test]
fn close_partial_syncs_keeps_the_partial_and_needs_a_new_start() {
    let fs = sim();
    let mut w = writer(&fs);
    w.start(tli(1), seg_start(3)).unwrap();
    put(&mut w, 1, seg_start(3), lsn(3, 777)).unwrap();
    assert_eq!(w.close_partial().unwrap(), lsn(3, 777));
    assert_eq!(w.timeline(), None);
    assert_eq!(w.current_segment(), None);
    assert_eq!(
        fs.durable_names(dir()),
        ["000000010000000000000003.partial"]
    );
    let durable = fs
        .durable_file(dir_path("000000010000000000000003.partial"))
        .unwrap();
    assert_eq!(&durable[..777], &stream(seg_start(3), lsn(3, 777))[..]);
    assert!(matches!(
        put(&mut w, 1, lsn(3, 777), lsn(3, 800)).unwrap_err(),
        Error::NotStarted
    ));
    // Restarting at the partial's segment streams it again from the start.
    w.start(tli(1), seg_start(3)).unwrap();
    put(&mut w, 1, seg_start(3), lsn(3, 800)).unwrap();
    assert_eq!(w.sync().unwrap(), lsn(3, 800));
}

#[test]
fn the_end_of_a_timeline_leaves_its_last_segment_partial() {
    let fs = sim();
    let mut w = writer(&fs);
    w.start(tli(1), seg_start(3)).unwrap();
    put(&mut w, 1, seg_start(3), lsn(4, 500)).unwrap();
    w.close_partial().unwrap();
    w.write_history(tli(2), b"1\t0/4001F4\tno recovery target specified\n")
        .unwrap();
    // The next timeline starts at the segment holding the switch point.
    w.start(tli(2), seg_start(4)).unwrap();
    put(&mut w, 2, seg_start(4), lsn(4, 600)).unwrap();
    w.sync().unwrap();
    assert_eq!(
        fs.durable_names(dir()),
        [
            "000000010000000000000003",
            "000000010000000000000004.partial",
            "00000002.history",
            "000000020000000000000004.partial",
        ]
    );
    let point = resume::find_streaming_start(&fs, dir(), SEG)
        .unwrap()
        .unwrap();
    assert_eq!((point.tli, point.start), (tli(2), seg_start(4)));
}

#[test]
fn dropping_a_writer_never_syncs_or_renames() {
    let fs = sim();
    let mut w = writer(&fs);
    w.start(tli(1), seg_start(3)).unwrap();
    put(&mut w, 1, seg_start(3), lsn(3, 100)).unwrap();
    let (syncs, renames) = (fs.sync_count(), fs.count(SimOp::Rename));
    drop(w);
    assert_eq!(fs.sync_count(), syncs);
    assert_eq!(fs.count(SimOp::Rename), renames);
    assert_eq!(fs.live_names(dir()), ["000000010000000000000003.partial"]);
}

#[test]
fn history_is_written_atomically_and_a_failed_fsync_poisons() {
    let fs = sim();
    let mut w = writer(&fs);
    let content = b"1\t0/3000000\tno recovery target specified\n";
    let path = w.write_history(tli(2), content).unwrap();
    assert_eq!(path, dir_path("00000002.history"));
    assert_eq!(fs.durable_file(&path).unwrap(), content);

    fs.fail(Failpoint::new(SimOp::SyncFile, Fault::Io));
    let e = w.write_history(tli(3), content).unwrap_err();
    assert!(e.is_poisoning(), "{e}");
    assert!(w.is_poisoned());
    assert!(fs.live_file(dir_path("00000003.history")).is_none());

    let fs = sim();
    let mut w = writer(&fs);
    fs.fail(Failpoint::new(SimOp::Write, Fault::NoSpace));
    let e = w.write_history(tli(3), content).unwrap_err();
    assert!(e.is_no_space() && !w.is_poisoned(), "{e}");
    assert!(fs.live_names(dir()).is_empty());
}

#[test]
fn no_sync_never_syncs_and_flush_follows_write() {
    let fs = sim();
    let mut w = ArchiveWriter::new(fs.clone(), DIR_PATH, SEG, Durability::NoSync);
    assert_eq!(w.durability(), Durability::NoSync);
    w.write_history(tli(2), b"1\t0/3000000\tx\n").unwrap();
    w.start(tli(2), seg_start(3)).unwrap();
    put(&mut w, 2, seg_start(3), lsn(4, 10)).unwrap();
    assert_eq!(w.sync().unwrap(), lsn(4, 10));
    w.close_partial().unwrap();
    assert_eq!(fs.sync_count(), 0);
    assert_eq!(
        fs.live_names(dir()),
        [
            "00000002.history",
            "000000020000000000000003",
            "000000020000000000000004.partial"
        ]
    );
}

#[test]
fn accessors_describe_the_writer() {
    let fs = sim();
    let w = writer(&fs);
    assert_eq!(w.dir(), dir());
    assert_eq!(w.seg_size(), SEG);
    assert_eq!(w.durability(), Durability::Fsync);
    assert!(w.fs().live_names(dir()).is_empty());
    assert!(format!("{w:?}").contains("ArchiveWriter"));
}

#[test]
fn std_fs_end_to_end_in_a_real_directory() {
    let tmp = TempDir::new("writer-std");
    let mut w = ArchiveWriter::new(StdFs::new(), tmp.path(), SEG, Durability::Fsync);
    w.start(tli(1), seg_start(3)).unwrap();
    let end = lsn(5, SEG_BYTES / 2);
    let data = stream(seg_start(3), end);
    let mut at = seg_start(3);
    for chunk in data.chunks(128 * 1024 + 17) {
        w.write(tli(1), at, chunk).unwrap();
        at = Lsn(at.0 + chunk.len() as u64);
        w.sync().unwrap();
    }
    assert_eq!(w.close_partial().unwrap(), end);
    let read = |name: &str| std::fs::read(tmp.path().join(name)).unwrap();
    assert_eq!(
        read("000000010000000000000003"),
        stream(seg_start(3), seg_start(4))
    );
    assert_eq!(
        read("000000010000000000000004"),
        stream(seg_start(4), seg_start(5))
    );
    let partial = read("000000010000000000000005.partial");
    assert_eq!(partial.len() as u64, SEG_BYTES);
    assert_eq!(
        &partial[..SEG_BYTES as usize / 2],
        &stream(seg_start(5), end)[..]
    );
    let point = resume::find_streaming_start(&StdFs::new(), tmp.path(), SEG)
        .unwrap()
        .unwrap();
    assert_eq!(point.start, seg_start(5));
}

/// Writes the stream `[start, end)` split at `cuts` (offsets from `start`), syncing after
/// the chunks flagged in `syncs`, and returns the directory's live files.
fn write_split(cuts: &[u64], syncs: &[bool], len: u64) -> Vec<(String, Vec<u8>)> {
    let fs = sim();
    let mut w = writer(&fs);
    let start = seg_start(3);
    w.start(tli(1), start).unwrap();
    let mut bounds: Vec<u64> = cuts.iter().map(|c| c % (len + 1)).collect();
    bounds.push(0);
    bounds.push(len);
    bounds.sort_unstable();
    bounds.dedup();
    for (i, pair) in bounds.windows(2).enumerate() {
        let (from, to) = (Lsn(start.0 + pair[0]), Lsn(start.0 + pair[1]));
        w.write(tli(1), from, &stream(from, to)).unwrap();
        if syncs.get(i).copied().unwrap_or(false) {
            assert_eq!(w.sync().unwrap(), to);
        }
    }
    w.close_partial().unwrap();
    fs.live_names(dir())
        .into_iter()
        .map(|n| {
            let c = live(&fs, &n);
            (n, c)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn any_split_of_the_stream_gives_identical_segment_files(
        cuts in proptest::collection::vec(any::<u64>(), 0..24),
        syncs in proptest::collection::vec(any::<bool>(), 0..24),
        extra in 0u64..SEG_BYTES,
    ) {
        let len = 2 * SEG_BYTES + extra;
        let files = write_split(&cuts, &syncs, len);
        let whole = write_split(&[], &[], len);
        prop_assert_eq!(&files, &whole);
        // And the files are the stream itself.
        let end = Lsn(seg_start(3).0 + len);
        prop_assert_eq!(files.len(), if extra == 0 { 2 } else { 3 });
        for (name, content) in &files {
            let segno = if name.starts_with("000000010000000000000003") {
                3
            } else if name.starts_with("000000010000000000000004") {
                4
            } else {
                5
            };
            let to = seg_start(segno + 1).min(end);
            let expected = stream(seg_start(segno), to);
            prop_assert_eq!(&content[..expected.len()], &expected[..]);
            prop_assert!(content[expected.len()..].iter().all(|&b| b == 0));
            prop_assert_eq!(name.ends_with(".partial"), segno == 5);
        }
    }
}

#[test]
fn writers_can_move_to_a_writer_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<ArchiveWriter<StdFs>>();
    assert_send::<ArchiveWriter<SimFs>>();
}

fn zero_ahead_writer(fs: &SimFs) -> ArchiveWriter<SimFs> {
    writer(fs).with_zero_ahead(true)
}

#[test]
fn zero_ahead_in_a_real_file_changes_no_byte() {
    let tmp = TempDir::new("writer-zero-ahead");
    let mut w =
        ArchiveWriter::new(StdFs::new(), tmp.path(), SEG, Durability::Fsync).with_zero_ahead(true);
    w.start(tli(1), seg_start(3)).unwrap();
    w.write(tli(1), lsn(3, 0), &stream(lsn(3, 0), lsn(3, 5000)))
        .unwrap();
    w.sync().unwrap();
    let path = tmp.path().join("000000010000000000000003.partial");
    assert!(w.zero_ahead_due());
    w.write(tli(1), lsn(3, 5000), &stream(lsn(3, 5000), lsn(3, 6000)))
        .unwrap();
    // Zero-ahead syncs, so it also makes the WAL written so far durable.
    assert_eq!(w.zero_ahead().unwrap(), lsn(3, 6000));
    assert_eq!(w.flush_lsn(), lsn(3, 6000));
    assert!(!w.zero_ahead_due());
    let content = std::fs::read(&path).unwrap();
    assert_eq!(content.len() as u64, SEG_BYTES);
    assert_eq!(&content[..6000], &stream(lsn(3, 0), lsn(3, 6000))[..]);
    assert!(content[6000..].iter().all(|&b| b == 0));
    // WAL goes on over the zeroed blocks, byte for byte.
    w.write(tli(1), lsn(3, 6000), &stream(lsn(3, 6000), lsn(4, 10)))
        .unwrap();
    assert_eq!(
        std::fs::read(tmp.path().join("000000010000000000000003")).unwrap(),
        stream(seg_start(3), seg_start(4))
    );
}

#[test]
fn zero_ahead_keeps_a_window_ahead_and_stops_at_the_segment_end() {
    let fs = sim();
    let mut w = zero_ahead_writer(&fs);
    w.start(tli(1), seg_start(3)).unwrap();
    put(&mut w, 1, lsn(3, 0), lsn(3, 100)).unwrap();
    let writes = fs.count(SimOp::Write);
    let syncs = fs.count(SimOp::SyncFile);
    w.zero_ahead().unwrap();
    assert!(fs.count(SimOp::Write) > writes);
    assert_eq!(fs.count(SimOp::SyncFile), syncs + 1);
    // Nothing more to do until the write position comes within the low mark.
    let writes = fs.count(SimOp::Write);
    w.zero_ahead().unwrap();
    assert_eq!(fs.count(SimOp::Write), writes);
    // The test segments are 1 MiB: the first window already reached the segment's end, so
    // there is never anything more to zero in it.
    let near_end = lsn(3, SEG_BYTES - 1000);
    put(&mut w, 1, lsn(3, 100), near_end).unwrap();
    assert!(!w.zero_ahead_due());
    assert_eq!(w.zero_ahead().unwrap(), lsn(3, 100));
    let durable = fs
        .durable_file(dir_path("000000010000000000000003.partial"))
        .unwrap();
    assert_eq!(&durable[..100], &stream(lsn(3, 0), lsn(3, 100))[..]);
    assert!(durable[100..].iter().all(|&b| b == 0));
    // The next segment is new again.
    put(&mut w, 1, near_end, lsn(4, 10)).unwrap();
    assert!(w.zero_ahead_due());
}

#[test]
fn zero_ahead_never_touches_a_reopened_partial() {
    let fs = sim();
    // An earlier run's `.partial`: WAL past where this run will be when it is idle, which
    // the server may no longer have.
    let old = stream(lsn(3, 0), lsn(3, 300_000));
    fs.put_file(dir_path("000000010000000000000003.partial"), &old);
    let mut w = zero_ahead_writer(&fs);
    w.start(tli(1), seg_start(3)).unwrap();
    put(&mut w, 1, lsn(3, 0), lsn(3, 1000)).unwrap();
    assert!(!w.zero_ahead_due());
    let writes = fs.count(SimOp::Write);
    assert_eq!(w.zero_ahead().unwrap(), w.flush_lsn());
    assert_eq!(fs.count(SimOp::Write), writes);
    assert_eq!(
        &live(&fs, "000000010000000000000003.partial")[..old.len()],
        &old[..]
    );
}

#[test]
fn zero_ahead_is_off_unless_asked_for_and_without_fsync() {
    let fs = sim();
    let mut w = writer(&fs);
    w.start(tli(1), seg_start(3)).unwrap();
    put(&mut w, 1, lsn(3, 0), lsn(3, 100)).unwrap();
    assert!(!w.zero_ahead_due());
    let fs = sim();
    let mut w =
        ArchiveWriter::new(fs.clone(), DIR_PATH, SEG, Durability::NoSync).with_zero_ahead(true);
    w.start(tli(1), seg_start(3)).unwrap();
    put(&mut w, 1, lsn(3, 0), lsn(3, 100)).unwrap();
    assert!(!w.zero_ahead_due());
    // Nor for compressed segments, which are appended, not sized.
    let fs = sim();
    let mut w =
        zero_ahead_writer(&fs).with_compression(CompressionSpec::default_for(Compression::Zstd));
    w.start(tli(1), seg_start(3)).unwrap();
    put(&mut w, 1, lsn(3, 0), lsn(3, 100)).unwrap();
    assert!(!w.zero_ahead_due());
}

#[test]
fn zero_ahead_out_of_space_leaves_the_writer_usable_and_the_data_intact() {
    let fs = sim();
    let mut w = zero_ahead_writer(&fs);
    w.start(tli(1), seg_start(3)).unwrap();
    put(&mut w, 1, lsn(3, 0), lsn(3, 100)).unwrap();
    fs.fail(Failpoint::new(SimOp::Write, Fault::NoSpace));
    let e = w.zero_ahead().unwrap_err();
    assert!(e.is_no_space(), "{e}");
    assert_eq!(e.op(), Some(Op::Write));
    assert!(!w.is_poisoned());
    assert_eq!(w.flush_lsn(), lsn(3, 0));
    // Not tried again in this segment.
    assert!(!w.zero_ahead_due());
    put(&mut w, 1, lsn(3, 100), lsn(3, 200)).unwrap();
    assert_eq!(w.sync().unwrap(), lsn(3, 200));
    assert_eq!(
        &live(&fs, "000000010000000000000003.partial")[..200],
        &stream(lsn(3, 0), lsn(3, 200))[..]
    );
}

#[test]
fn a_failed_zero_ahead_sync_poisons() {
    let fs = sim();
    let mut w = zero_ahead_writer(&fs);
    w.start(tli(1), seg_start(3)).unwrap();
    put(&mut w, 1, lsn(3, 0), lsn(3, 100)).unwrap();
    fs.fail(Failpoint::new(SimOp::SyncFile, Fault::Io));
    w.zero_ahead().unwrap_err();
    assert!(w.is_poisoned());
    assert_eq!(w.flush_lsn(), lsn(3, 0));
}

/// A file system that says how much is free, for the floor.
#[derive(Debug, Clone)]
struct Tight {
    inner: SimFs,
    free: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl ArchiveFs for Tight {
    type File = <SimFs as ArchiveFs>::File;
    fn create_new(&self, path: &Path) -> std::io::Result<Self::File> {
        self.inner.create_new(path)
    }
    fn open_rw(&self, path: &Path) -> std::io::Result<Self::File> {
        self.inner.open_rw(path)
    }
    fn open_read(&self, path: &Path) -> std::io::Result<Self::File> {
        self.inner.open_read(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        self.inner.rename(from, to)
    }
    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        self.inner.sync_dir(dir)
    }
    fn file_len(&self, path: &Path) -> std::io::Result<u64> {
        self.inner.file_len(path)
    }
    fn remove_file(&self, path: &Path) -> std::io::Result<()> {
        self.inner.remove_file(path)
    }
    fn list_dir(&self, dir: &Path) -> std::io::Result<Vec<std::ffi::OsString>> {
        self.inner.list_dir(dir)
    }
    fn available_space(&self, _dir: &Path) -> std::io::Result<u64> {
        Ok(self.free.load(std::sync::atomic::Ordering::Relaxed))
    }
}

#[test]
fn no_new_segment_is_started_under_the_free_space_floor_and_nothing_is_poisoned() {
    use std::sync::atomic::Ordering;
    let inner = SimFs::new();
    inner.create_dir(dir());
    let fs = Tight {
        inner: inner.clone(),
        free: std::sync::Arc::default(),
    };
    fs.free.store(10 * SEG.as_u64(), Ordering::Relaxed);
    let t = TimeLineId::new(1).unwrap();
    let start = Lsn(SEG.as_u64() * 3);
    let mut w = ArchiveWriter::new(fs.clone(), dir(), SEG, Durability::Fsync)
        .with_min_free_space(4 * SEG.as_u64());
    w.start(t, start).unwrap();
    let one = vec![7u8; usize::try_from(SEG.as_u64()).unwrap()];
    w.write(t, start, &one).unwrap();
    assert_eq!(w.flush_lsn(), Lsn(start.0 + SEG.as_u64()));
    // Space runs short: the next segment is not started, the first one is intact.
    fs.free.store(3 * SEG.as_u64(), Ordering::Relaxed);
    let e = w.write(t, w.write_lsn(), &one).unwrap_err();
    assert!(e.is_no_space() && !e.is_poisoning(), "{e}");
    assert!(e.to_string().contains("under the floor"), "{e}");
    assert!(!w.is_poisoned());
    assert!(
        inner
            .durable_file(dir().join("000000010000000000000003"))
            .is_some()
    );
    assert_eq!(inner.live_names(dir()).len(), 1);
    // Space returns: it goes on where it stopped.
    fs.free.store(10 * SEG.as_u64(), Ordering::Relaxed);
    w.write(t, w.write_lsn(), &one).unwrap();
    assert_eq!(w.flush_lsn(), Lsn(start.0 + 2 * SEG.as_u64()));
}
