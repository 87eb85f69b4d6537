//! Copying segments out of a simulated archive: WAL laid out the way the server does
//! (long and short page headers, records crossing pages and segments, CRCs, the `xl_prev`
//! chain), served whole, and every kind of damage refused with its position.

use std::path::{Path, PathBuf};

use pgwalrus_archive::{ArchiveFs as _, SimFs};
use pgwalrus_wal::WalSegSize;
use pgwalrus_wal::names::{Compression, FileName, SegmentName};

use super::*;
use crate::restore::test_wal::{SEG, Wal, compressed, name, wal};

fn archive(files: &[(SegmentName, Vec<u8>)]) -> (SimFs, PathBuf) {
    let fs = SimFs::new();
    let dir = PathBuf::from("/archive");
    fs.create_dir(&dir);
    fs.create_dir("/out");
    for (n, content) in files {
        fs.put_file(dir.join(n.to_string()), content);
    }
    (fs, dir)
}

fn serve(fs: &SimFs, dir: &Path, found: SegmentName) -> (Result<Copied, Problem>, Vec<u8>) {
    let out = Path::new("/out/RECOVERYXLOG");
    let _ = fs.remove_file(out);
    let file = fs.create_new(out).unwrap();
    let result = copy_segment(fs, dir, found, &file, out);
    (result, fs.live_file(out).unwrap_or_default())
}

fn damaged(result: Result<Copied, Problem>) -> String {
    match result {
        Err(Problem::Damaged(why)) => why,
        other => panic!("expected damage, got {other:?}"),
    }
}

#[test]
fn a_complete_segment_is_served_whole_and_its_last_record_checked_against_the_next() {
    let wal = wal();
    let seg3 = wal[..SEG as usize].to_vec();
    let seg4 = wal[SEG as usize..2 * SEG as usize].to_vec();
    let (fs, dir) = archive(&[(name(3), seg3.clone()), (name(4), seg4)]);
    let (result, out) = serve(&fs, &dir, name(3));
    let copied = result.unwrap();
    assert_eq!(out, seg3);
    assert_eq!(copied.tail, Tail::Checked);
    assert_eq!(copied.bytes, SEG);
    // Without the next segment the crossing record cannot be checked, and that is fine.
    let (fs, dir) = archive(&[(name(3), seg3)]);
    assert_eq!(serve(&fs, &dir, name(3)).0.unwrap().tail, Tail::Unchecked);
}

#[test]
fn compressed_segments_are_served_decompressed() {
    let wal = wal();
    let seg4 = wal[SEG as usize..2 * SEG as usize].to_vec();
    for method in Compression::ALL {
        let found = name(4).with_compression(Some(method));
        let (fs, dir) = archive(&[(found, compressed(method, &seg4))]);
        let (result, out) = serve(&fs, &dir, found);
        assert_eq!(result.unwrap().name.compression(), Some(method));
        assert_eq!(out, seg4, "{method}");
        // Cut short: refused.
        let mut cut = compressed(method, &seg4);
        cut.truncate(cut.len() / 2);
        let (fs, dir) = archive(&[(found, cut)]);
        let (result, _) = serve(&fs, &dir, found);
        assert!(
            matches!(result, Err(Problem::Damaged(_))),
            "{method}: {result:?}"
        );
    }
}

#[test]
fn flipped_bytes_truncation_and_a_recycled_segment_are_damage() {
    let wal = wal();
    let mut seg3 = wal[..SEG as usize].to_vec();
    seg3[(SEG / 2 + 4000) as usize] ^= 0x5A;
    let (fs, dir) = archive(&[(name(3), seg3)]);
    let why = damaged(serve(&fs, &dir, name(3)).0);
    assert!(
        why.contains("checksum") && why.contains("of the file"),
        "{why}"
    );

    let (fs, dir) = archive(&[(name(3), wal[..(SEG / 2) as usize].to_vec())]);
    let why = damaged(serve(&fs, &dir, name(3)).0);
    assert!(why.contains("cut short"), "{why}");

    // Segment 4's bytes under segment 5's name (a recycled file).
    let (fs, dir) = archive(&[(name(5), wal[SEG as usize..2 * SEG as usize].to_vec())]);
    let why = damaged(serve(&fs, &dir, name(5)).0);
    assert!(why.contains("not the start of segment"), "{why}");
}

#[test]
fn damage_in_the_record_running_into_the_next_segment_is_found() {
    let wal = wal();
    let seg3 = wal[..SEG as usize].to_vec();
    let mut seg4 = wal[SEG as usize..2 * SEG as usize].to_vec();
    // The continuation at the start of segment 4, after its long header.
    seg4[48] ^= 0xFF;
    let (fs, dir) = archive(&[(name(3), seg3), (name(4), seg4)]);
    let why = damaged(serve(&fs, &dir, name(3)).0);
    assert!(why.contains("next segment"), "{why}");
}

#[test]
fn zeros_where_a_complete_segment_must_continue_are_damage() {
    let mut w = Wal::new(3);
    w.fill(SEG / 2);
    w.out.resize(SEG as usize, 0);
    let (fs, dir) = archive(&[(name(3), w.out.clone())]);
    let why = damaged(serve(&fs, &dir, name(3)).0);
    assert!(why.contains("zeros"), "{why}");
}

#[test]
fn a_partial_segment_is_padded_to_a_full_segment_and_says_where_wal_ends() {
    let wal = wal();
    let cut = (SEG / 3) as usize;
    for method in [None, Some(Compression::Zstd)] {
        let found = name(3).with_compression(method).partial();
        let bytes = match method {
            None => wal[..cut].to_vec(),
            Some(m) => compressed(m, &wal[..cut]),
        };
        let (fs, dir) = archive(&[(found, bytes)]);
        let (result, out) = serve(&fs, &dir, found);
        let copied = result.unwrap();
        assert_eq!(out.len() as u64, SEG);
        assert_eq!(&out[..cut], &wal[..cut]);
        assert!(out[cut..].iter().all(|&b| b == 0));
        let end = copied.wal_end.unwrap();
        assert!(end.0 > 3 * SEG && end.0 <= 3 * SEG + cut as u64, "{end}");
    }
    // A .partial whose first page was never written holds no WAL.
    let found = name(3).partial();
    let (fs, dir) = archive(&[(found, vec![0; SEG as usize])]);
    assert!(matches!(serve(&fs, &dir, found).0, Err(Problem::NoWal(_))));
}

#[test]
fn history_files_are_read_in_any_form_and_checked() {
    let text = b"1\t0/3000100\tno recovery target specified\n";
    let fs = SimFs::new();
    let dir = PathBuf::from("/archive");
    fs.create_dir(&dir);
    fs.put_file(
        dir.join("00000002.history.gz"),
        &compressed(Compression::Gzip, text),
    );
    fs.put_file(dir.join("00000003.history"), b"not a history\n");
    let h = |t: u32| match FileName::parse(&format!("{t:08X}.history"), WalSegSize::MIN) {
        Ok(FileName::History(h)) => h,
        other => panic!("{other:?}"),
    };
    let (found, content) = read_history_file(&fs, &dir, h(2)).unwrap().unwrap();
    assert_eq!(found.to_string(), "00000002.history.gz");
    assert_eq!(content, text);
    assert!(matches!(
        read_history_file(&fs, &dir, h(3)),
        Err(Problem::Damaged(_))
    ));
    assert_eq!(read_history_file(&fs, &dir, h(4)).unwrap(), None);
}
