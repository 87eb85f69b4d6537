//! Tests of the staging operations: a file written beside its destination appears there
//! whole or not at all, at every sync point and under every crash mode; leftovers of a dead
//! run are replaced; a prepared file is moved into place without copying.

use super::*;
use crate::fs::{CrashMode, Failpoint, Fault, SimFs, SimOp, StdFs};
use crate::test_support::{TempDir, dir, dir_path, sim};

const CONTENT: &[u8] = b"sixteen megabytes of wal, in spirit";

fn stage_write_install(fs: &SimFs, target: &Path) -> Result<PathBuf> {
    let staged = stage_beside(fs, target)?;
    staged
        .file
        .write_all_at(CONTENT, 0)
        .map_err(Error::at(Op::Write, &staged.temp_path))?;
    install_staged(fs, staged, Durability::Fsync)
}

#[test]
fn a_staged_file_gets_its_name_only_when_complete() {
    let fs = sim();
    let target = dir_path("RECOVERYXLOG");
    let staged = stage_beside(&fs, &target).unwrap();
    assert_eq!(staged.temp_path, dir_path("RECOVERYXLOG.pgwalrus.tmp"));
    staged.file.write_all_at(CONTENT, 0).unwrap();
    assert_eq!(fs.live_names(dir()), ["RECOVERYXLOG.pgwalrus.tmp"]);
    assert_eq!(
        install_staged(&fs, staged, Durability::Fsync).unwrap(),
        target
    );
    assert_eq!(fs.live_names(dir()), ["RECOVERYXLOG"]);
    assert_eq!(fs.durable_file(&target).as_deref(), Some(CONTENT));
    assert_eq!(fs.count(SimOp::SyncFile), 1);
    assert_eq!(fs.count(SimOp::SyncDir), 1);
}

#[test]
fn a_crash_at_any_sync_point_leaves_the_destination_absent_or_complete() {
    let target = dir_path("RECOVERYXLOG");
    let clean = sim();
    stage_write_install(&clean, &target).unwrap();
    let points = clean.sync_count();
    for k in 1..=points + 1 {
        let fs = sim();
        if k <= points {
            fs.fail(Failpoint::any_sync(Fault::PowerCut).nth(k));
        }
        let ok = stage_write_install(&fs, &target).is_ok();
        assert_eq!(ok, k > points);
        for mode in CrashMode::ALL {
            let image = fs.crash_with(mode);
            if let Some(content) = image.live_file(&target) {
                assert_eq!(content, CONTENT, "cut at {k}, {mode:?}: destination torn");
            }
            if ok {
                assert_eq!(image.live_file(&target).as_deref(), Some(CONTENT));
            }
        }
    }
}

#[test]
fn a_failed_fsync_removes_the_temporary_file_and_leaves_the_destination_alone() {
    let fs = sim();
    let target = dir_path("RECOVERYXLOG");
    fs.put_file(&target, b"old");
    fs.fail(Failpoint::new(SimOp::SyncFile, Fault::Io));
    let err = stage_write_install(&fs, &target).unwrap_err();
    assert!(err.is_poisoning(), "{err}");
    assert_eq!(fs.live_names(dir()), ["RECOVERYXLOG"]);
    assert_eq!(fs.live_file(&target).as_deref(), Some(&b"old"[..]));
}

#[test]
fn a_leftover_temporary_file_is_replaced_and_discard_removes_it() {
    let fs = sim();
    let target = dir_path("RECOVERYXLOG");
    fs.put_file(dir_path("RECOVERYXLOG.pgwalrus.tmp"), b"left by a dead run");
    let staged = stage_beside(&fs, &target).unwrap();
    assert_eq!(
        fs.live_file(&staged.temp_path).as_deref(),
        Some(&b""[..]),
        "the leftover is replaced by an empty file"
    );
    discard_staged(&fs, staged).unwrap();
    assert!(fs.live_names(dir()).is_empty());
}

#[test]
fn move_into_place_renames_a_prepared_file_and_syncs_the_directory() {
    let tmp = TempDir::new("move-into-place");
    let fs = StdFs::new();
    let spool = tmp.path().join("spool");
    let wal = tmp.path().join("pg_wal");
    std::fs::create_dir_all(&spool).unwrap();
    std::fs::create_dir_all(&wal).unwrap();
    let prepared = spool.join("000000010000000000000005");
    let staged = stage_beside(&fs, &prepared).unwrap();
    staged.file.write_all_at(CONTENT, 0).unwrap();
    install_staged(&fs, staged, Durability::Fsync).unwrap();
    let target = wal.join("RECOVERYXLOG");
    std::fs::write(&target, b"an older file").unwrap();
    move_into_place(&fs, &prepared, &target, Durability::Fsync).unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), CONTENT);
    assert!(!prepared.exists());
    let err = move_into_place(&fs, &prepared, &target, Durability::Fsync).unwrap_err();
    assert!(err.is_not_found(), "{err}");
}
