//! Tests of the durable steps: every sync point of creation, completion and history
//! writes under every crash mode, faults, `--no-sync`, and a real directory.

use super::*;
use crate::fs::{CrashMode, Failpoint, Fault, SimFs, SimOp, StdFs};
use crate::test_support::{SEG, TempDir, dir, dir_path, seg_name, sim, tli};

const HISTORY: &[u8] = b"1\t0/3000000\tno recovery target specified\n";

/// Runs `op` on a fresh file system once per sync point it reaches, with the power cut at
/// that point (and once with no cut), and hands every crash image to `check` along with
/// whether `op` returned `Ok`.
fn at_every_sync_point(
    setup: impl Fn() -> SimFs,
    op: impl Fn(&SimFs) -> bool,
    check: impl Fn(&SimFs, bool, &str),
) {
    let clean = setup();
    let before = clean.sync_count();
    assert!(op(&clean), "the operation succeeds without faults");
    let points = clean.sync_count() - before;
    assert!(points > 0);
    for k in 1..=points + 1 {
        let fs = setup();
        if k <= points {
            fs.fail(Failpoint::any_sync(Fault::PowerCut).nth(k));
        }
        let ok = op(&fs);
        assert_eq!(ok, k > points, "cut at sync point {k}");
        for mode in CrashMode::ALL {
            check(
                &fs.crash_with(mode),
                ok,
                &format!("cut at sync point {k} of {points}, {mode:?}"),
            );
        }
    }
}

#[test]
fn create_segment_makes_a_full_sized_partial_with_a_durable_name() {
    let fs = sim();
    let seg = create_segment(&fs, dir(), seg_name(1, 5), Durability::Fsync).unwrap();
    assert_eq!(seg.name, seg_name(1, 5).partial());
    assert_eq!(seg.path, dir_path("000000010000000000000005.partial"));
    assert_eq!(seg.previous_len, None);
    assert_eq!(fs.live_names(dir()), ["000000010000000000000005.partial"]);
    let durable = fs.durable_file(&seg.path).unwrap();
    assert_eq!(durable.len() as u64, SEG.as_u64());
    // Sized (fallocate or ftruncate), never written: no zero-filling.
    assert_eq!(fs.count(SimOp::Write), 0);
    assert_eq!(fs.count(SimOp::SyncFile), 1);
    assert_eq!(fs.count(SimOp::SyncDir), 1);
}

#[test]
fn a_crash_during_create_never_leaves_a_half_initialised_partial() {
    at_every_sync_point(
        sim,
        |fs| create_segment(fs, dir(), seg_name(1, 5), Durability::Fsync).is_ok(),
        |fs, ok, at| {
            let names = fs.live_names(dir());
            for name in &names {
                let len = fs.live_file(dir_path(name)).unwrap().len() as u64;
                if name.ends_with(".partial") {
                    assert_eq!(len, SEG.as_u64(), "{at}: {name} is half-initialised");
                } else {
                    assert!(name.ends_with(".partial.tmp"), "{at}: unexpected {name}");
                }
            }
            if ok {
                assert_eq!(names, ["000000010000000000000005.partial"], "{at}");
            }
        },
    );
}

#[test]
fn a_crash_during_completion_leaves_the_segment_complete_under_one_name() {
    let data: Vec<u8> = (0..SEG.as_u64()).map(|i| (i % 253) as u8 + 1).collect();
    let setup = || {
        let fs = sim();
        let seg = create_segment(&fs, dir(), seg_name(1, 5), Durability::Fsync).unwrap();
        // Written but not synced: completion must sync it.
        seg.file.write_all_at(&data, 0).unwrap();
        fs
    };
    let complete = |fs: &SimFs| {
        let seg = PartialSegment {
            file: fs
                .open_rw(&dir_path("000000010000000000000005.partial"))
                .unwrap(),
            path: dir_path("000000010000000000000005.partial"),
            name: seg_name(1, 5).partial(),
            previous_len: None,
        };
        complete_segment(fs, dir(), &seg, Durability::Fsync).is_ok()
    };
    at_every_sync_point(setup, complete, |fs, ok, at| {
        let names = fs.live_names(dir());
        assert_eq!(names.len(), 1, "{at}: {names:?}");
        let contents = fs.live_file(dir_path(&names[0])).unwrap();
        assert_eq!(contents.len() as u64, SEG.as_u64(), "{at}");
        if names[0] == "000000010000000000000005" {
            assert!(
                contents == data,
                "{at}: a final-named segment is incomplete"
            );
        } else {
            assert_eq!(names[0], "000000010000000000000005.partial", "{at}");
            assert!(!ok, "{at}: completion reported but not durable");
        }
    });
}

#[test]
fn a_crash_while_writing_history_leaves_it_absent_or_complete() {
    let write = |fs: &SimFs| {
        write_history_file(
            fs,
            dir(),
            HistoryName::new(tli(2)),
            HISTORY,
            Durability::Fsync,
        )
        .is_ok()
    };
    at_every_sync_point(sim, write, |fs, ok, at| {
        match fs.live_file(dir_path("00000002.history")) {
            Some(content) => assert_eq!(content, HISTORY, "{at}"),
            None => assert!(!ok, "{at}: history reported written but lost"),
        }
        for name in fs.live_names(dir()) {
            assert!(
                name == "00000002.history" || name == "00000002.history.tmp",
                "{at}: {name}"
            );
        }
    });
}

#[test]
fn history_replaces_an_old_file_and_a_stale_temp() {
    let fs = sim();
    fs.put_file(dir_path("00000002.history"), b"old");
    fs.put_file(dir_path("00000002.history.tmp"), b"stale");
    let path = write_history_file(
        &fs,
        dir(),
        HistoryName::new(tli(2)),
        HISTORY,
        Durability::Fsync,
    )
    .unwrap();
    assert_eq!(path, dir_path("00000002.history"));
    assert_eq!(fs.live_names(dir()), ["00000002.history"]);
    assert_eq!(fs.durable_file(&path).unwrap(), HISTORY);
}

#[test]
fn no_sync_does_the_same_steps_without_syncing() {
    let fs = sim();
    let seg = create_segment(&fs, dir(), seg_name(1, 5), Durability::NoSync).unwrap();
    complete_segment(&fs, dir(), &seg, Durability::NoSync).unwrap();
    write_history_file(
        &fs,
        dir(),
        HistoryName::new(tli(2)),
        HISTORY,
        Durability::NoSync,
    )
    .unwrap();
    assert_eq!(fs.sync_count(), 0);
    assert_eq!(
        fs.live_names(dir()),
        ["000000010000000000000005", "00000002.history"]
    );
    assert!(!Durability::NoSync.syncs() && Durability::default().syncs());
}

#[test]
fn create_segment_replaces_a_stale_temporary_file_of_ours() {
    let fs = sim();
    fs.put_file(dir_path("000000010000000000000005.partial.tmp"), b"junk");
    create_segment(&fs, dir(), seg_name(1, 5), Durability::Fsync).unwrap();
    assert_eq!(fs.live_names(dir()), ["000000010000000000000005.partial"]);
}

#[test]
fn no_space_while_creating_is_typed_and_leaves_nothing_behind() {
    for op in [SimOp::Create, SimOp::SetLen] {
        let fs = sim();
        fs.put_file(dir_path("000000010000000000000004"), &[7; 16]);
        fs.fail(Failpoint::new(op, Fault::NoSpace));
        let e = create_segment(&fs, dir(), seg_name(1, 5), Durability::Fsync).unwrap_err();
        assert!(e.is_no_space(), "{op:?}: {e}");
        assert!(!e.is_poisoning(), "{op:?}: {e}");
        assert_eq!(fs.live_names(dir()), ["000000010000000000000004"], "{op:?}");
        assert_eq!(
            fs.live_file(dir_path("000000010000000000000004")).unwrap(),
            [7; 16]
        );
    }
}

#[test]
fn failed_sync_or_rename_while_creating_poisons() {
    for (op, expected) in [
        (SimOp::SyncFile, Op::Sync),
        (SimOp::Rename, Op::Rename),
        (SimOp::SyncDir, Op::SyncDir),
    ] {
        let fs = sim();
        fs.fail(Failpoint::new(op, Fault::Io));
        let e = create_segment(&fs, dir(), seg_name(1, 5), Durability::Fsync).unwrap_err();
        assert_eq!(e.op(), Some(expected), "{e}");
        assert!(e.is_poisoning(), "{e}");
        // Nothing half-made is visible under the .partial name.
        for name in fs.live_names(dir()) {
            if name.ends_with(".partial") {
                assert_eq!(
                    fs.live_file(dir_path(&name)).unwrap().len() as u64,
                    SEG.as_u64()
                );
            }
        }
    }
}

#[test]
fn reopen_extends_short_partials_to_a_full_segment_without_touching_their_bytes() {
    for len in [0usize, 1, 40, 8192, 300_000, SEG.bytes() as usize] {
        let fs = sim();
        let content: Vec<u8> = (0..len).map(|i| (i % 7) as u8 + 1).collect();
        fs.put_file(dir_path("000000010000000000000005.partial"), &content);
        let seg = reopen_partial(&fs, dir(), seg_name(1, 5), Durability::Fsync).unwrap();
        assert_eq!(seg.previous_len, Some(len as u64));
        let now = fs.durable_file(&seg.path).unwrap();
        assert_eq!(now.len() as u64, SEG.as_u64(), "{len}");
        assert_eq!(&now[..len], &content[..], "{len}");
        assert!(now[len..].iter().all(|&b| b == 0), "{len}");
        assert_eq!(fs.count(SimOp::Write), 0);
        assert_eq!(fs.count(SimOp::SyncFile), 1);
        assert_eq!(fs.count(SimOp::SyncDir), 1);
    }
}

#[test]
fn reopen_refuses_a_partial_longer_than_a_segment_and_leaves_it() {
    let fs = sim();
    let big = vec![1u8; SEG.bytes() as usize + 1];
    fs.put_file(dir_path("000000010000000000000005.partial"), &big);
    let e = reopen_partial(&fs, dir(), seg_name(1, 5), Durability::Fsync).unwrap_err();
    assert!(matches!(e, Error::OversizedPartial { size, .. } if size == big.len() as u64));
    assert!(
        e.to_string().contains("000000010000000000000005.partial"),
        "{e}"
    );
    assert_eq!(
        fs.live_file(dir_path("000000010000000000000005.partial"))
            .unwrap(),
        big
    );
}

#[test]
fn remove_temp_file_removes_only_temporary_names() {
    let fs = sim();
    let seg_size = SEG;
    for name in [
        "000000010000000000000005.partial.tmp",
        "00000002.history.tmp",
    ] {
        fs.put_file(dir_path(name), b"x");
        let parsed = FileName::parse(name, seg_size).unwrap();
        assert_eq!(
            remove_temp_file(&fs, dir(), &parsed).unwrap(),
            dir_path(name)
        );
        // Gone already: fine.
        remove_temp_file(&fs, dir(), &parsed).unwrap();
    }
    for name in [
        "000000010000000000000005",
        "000000010000000000000005.partial",
        "00000002.history",
    ] {
        fs.put_file(dir_path(name), b"x");
        let parsed = FileName::parse(name, seg_size).unwrap();
        let e = remove_temp_file(&fs, dir(), &parsed).unwrap_err();
        assert!(matches!(e, Error::NotTemporary { .. }), "{e}");
        assert!(fs.live_file(dir_path(name)).is_some());
    }
}

#[test]
fn std_fs_segment_life_cycle_in_a_real_directory() {
    use std::os::unix::fs::MetadataExt;
    let tmp = TempDir::new("durable-std");
    let fs = StdFs::new();
    let seg = create_segment(&fs, tmp.path(), seg_name(1, 5), Durability::Fsync).unwrap();
    let meta = std::fs::metadata(&seg.path).unwrap();
    assert_eq!(meta.len(), SEG.as_u64());
    // Reserved (fallocate, where the file system can), yet nothing written: reads as zeros.
    if crate::test_support::reserves_blocks(tmp.path()) {
        assert!(
            meta.blocks() * 512 >= meta.len(),
            "{} blocks",
            meta.blocks()
        );
    }
    assert!(std::fs::read(&seg.path).unwrap().iter().all(|&b| b == 0));
    seg.file.write_all_at(b"wal", 0).unwrap();
    let (done, path) = complete_segment(&fs, tmp.path(), &seg, Durability::Fsync).unwrap();
    assert_eq!(done, seg_name(1, 5));
    assert_eq!(&std::fs::read(&path).unwrap()[..3], b"wal");
    let history = write_history_file(
        &fs,
        tmp.path(),
        HistoryName::new(tli(2)),
        HISTORY,
        Durability::Fsync,
    )
    .unwrap();
    assert_eq!(std::fs::read(history).unwrap(), HISTORY);
    let mut names: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["000000010000000000000005", "00000002.history"]);
}
