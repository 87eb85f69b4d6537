//! The spool and its worker on a real directory: the window follows the cursor, spooled
//! files are whole and handed over by rename, a bad one is refused, and an idle worker
//! cleans up and exits.

use std::time::Duration;

use pgwalrus_archive::StdFs;

use super::*;
use crate::restore::test_wal::{SEG, Wal, name};
use crate::test_support::TempDir;

fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..500 {
        if condition() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("timed out waiting for {what}");
}

fn set_cursor(spool: &Path, segno: u64) {
    std::fs::write(spool.join(CURSOR), format!("{} {SEG}\n", name(segno))).unwrap();
}

fn spooled(spool: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(spool)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != LOCK && n != CURSOR)
        .collect();
    names.sort();
    names
}

#[test]
fn the_worker_keeps_the_window_after_the_cursor_spooled_and_exits_when_idle() {
    let tmp = TempDir::new("spool");
    let archive = tmp.path().join("archive");
    std::fs::create_dir_all(&archive).unwrap();
    let mut w = Wal::new(3);
    w.fill(5 * SEG + 10_000);
    for i in 0..5u64 {
        let bytes = &w.out[(i * SEG) as usize..((i + 1) * SEG) as usize];
        std::fs::write(archive.join(name(3 + i).to_string()), bytes).unwrap();
    }
    let spool_dir = archive.join(SPOOL_ROOT).join("test");
    std::fs::create_dir_all(&spool_dir).unwrap();
    set_cursor(&spool_dir, 3);
    let worker = {
        let (spool_dir, archive) = (spool_dir.clone(), archive.clone());
        std::thread::spawn(move || {
            work_until_idle(&spool_dir, &archive, 2, Duration::from_millis(500))
        })
    };
    let four = name(4).to_string();
    let five = name(5).to_string();
    let six = name(6).to_string();
    wait_for("segments 4 and 5", || {
        spooled(&spool_dir) == [four.clone(), five.clone()]
    });
    // A second worker of the same spool gives way.
    assert!(work_until_idle(&spool_dir, &archive, 2, Duration::ZERO).is_ok());

    // Restore takes 4 from the spool by renaming it.
    let target = tmp.path().join("RECOVERYXLOG");
    let fs = StdFs::new();
    let spool = Spool::at(&spool_dir);
    let taken = spool.take(&fs, name(4), &target).expect("spooled");
    assert_eq!(taken.seg_size().as_u64(), SEG);
    assert_eq!(
        std::fs::read(&target).unwrap(),
        std::fs::read(archive.join(&four)).unwrap()
    );
    set_cursor(&spool_dir, 4);
    wait_for("segments 5 and 6", || {
        spooled(&spool_dir) == [five.clone(), six.clone()]
    });

    // A spooled file that is not what it should be is refused and removed.
    std::fs::write(spool_dir.join(&five), vec![0xAB; SEG as usize]).unwrap();
    assert_eq!(spool.take(&fs, name(5), &target), None);
    assert!(!spool_dir.join(&five).exists());

    // Idle: the worker removes what it spooled and exits.
    worker.join().unwrap().unwrap();
    assert!(spooled(&spool_dir).is_empty(), "{:?}", spooled(&spool_dir));
}

#[test]
fn spool_keys_are_stable_per_directory() {
    assert_eq!(fnv1a(b"/data/pg_wal"), fnv1a(b"/data/pg_wal"));
    assert_ne!(fnv1a(b"/data/pg_wal"), fnv1a(b"/data2/pg_wal"));
}
