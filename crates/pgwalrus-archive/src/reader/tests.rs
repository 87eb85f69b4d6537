//! Tests of the reader: uncompressed and compressed segments and history files, whole, by
//! range and streamed; damaged complete files are errors, damaged `.partial` files end
//! where the damage starts.

use std::io::Read as _;

use super::*;
use crate::fs::SimFs;
use crate::test_support::{DIR, SEG, compressed, compressed_unfinished, dir_path, seg_name, sim};
use pgwalrus_wal::names::HistoryName;
use pgwalrus_wal::{TimeLineId, WalSegSize};

fn segment_bytes() -> Vec<u8> {
    (0..SEG.as_u64()).map(|i| ((i / 3) % 251) as u8).collect()
}

#[test]
fn reads_complete_and_partial_segments_whole_and_by_range() {
    let fs = SimFs::new();
    fs.create_dir(DIR);
    let complete = seg_name(1, 1);
    let data: Vec<u8> = (0..SEG.as_u64()).map(|i| (i % 251) as u8).collect();
    fs.put_file(dir_path(&complete.to_string()), &data);
    let partial = seg_name(1, 2).partial();
    fs.put_file(dir_path(&partial.to_string()), b"abcdef");

    assert_eq!(read_segment(&fs, Path::new(DIR), complete).unwrap(), data);
    let r = SegmentReader::open(&fs, Path::new(DIR), partial).unwrap();
    assert_eq!(r.len(), 6);
    assert!(!r.is_empty());
    assert_eq!(r.name(), partial);
    assert!(r.path().ends_with("000000010000000000000002.partial"));
    assert_eq!(r.read_range(2..5).unwrap(), b"cde");
    let (from, to) = (5, 2);
    assert_eq!(r.read_range(from..to).unwrap(), b"");
    let mut buf = [0u8; 2];
    r.read_exact_at(4, &mut buf).unwrap();
    assert_eq!(&buf, b"ef");
}

#[test]
fn past_end_and_missing_files_are_typed_errors() {
    let fs = SimFs::new();
    fs.create_dir(DIR);
    let partial = seg_name(1, 2).partial();
    fs.put_file(dir_path(&partial.to_string()), b"abc");
    let r = SegmentReader::open(&fs, Path::new(DIR), partial).unwrap();
    let e = r.read_range(1..10).unwrap_err();
    assert!(
        matches!(
            e,
            Error::ReadPastEnd {
                offset: 1,
                len: 9,
                file_len: 3,
                ..
            }
        ),
        "{e}"
    );
    let e = read_segment(&fs, Path::new(DIR), seg_name(1, 9)).unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert!(e.to_string().contains("000000010000000000000009"), "{e}");
    let gz = seg_name(1, 9).with_compression(Some(Compression::Zstd));
    let e = SegmentReader::open(&fs, Path::new(DIR), gz).unwrap_err();
    assert!(e.is_not_found(), "{e}");
}

#[test]
fn compressed_segments_read_like_plain_ones() {
    let data = segment_bytes();
    for method in Compression::ALL {
        let fs = sim();
        let name = seg_name(1, 1).with_compression(Some(method));
        fs.put_file(dir_path(&name.to_string()), &compressed(method, &data));
        assert!(
            read_segment(&fs, Path::new(DIR), name).unwrap() == data,
            "{method}"
        );

        let r = SegmentReader::open(&fs, Path::new(DIR), name).unwrap();
        assert_eq!(r.len(), SEG.as_u64(), "{method}");
        assert_eq!(
            r.read_range(1000..1010).unwrap(),
            data[1000..1010],
            "{method}"
        );
        let e = r
            .read_range(SEG.as_u64() - 1..SEG.as_u64() + 1)
            .unwrap_err();
        assert!(matches!(e, Error::ReadPastEnd { .. }), "{e}");

        // Streamed, in small reads, through `io::Read`.
        let mut s = ArchiveStream::open(&fs, Path::new(DIR), &FileName::Segment(name)).unwrap();
        assert_eq!(s.name(), &FileName::Segment(name));
        assert!(s.path().ends_with(name.to_string()));
        let mut out = Vec::new();
        let mut buf = [0u8; 1000];
        loop {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        assert!(out == data, "{method}");
        assert_eq!(s.bytes_read(), SEG.as_u64());
        assert_eq!(s.end(), Some(&StreamEnd::Finished));
    }
}

#[test]
fn a_cut_compressed_partial_gives_what_decodes_but_a_cut_complete_segment_is_an_error() {
    let data = segment_bytes();
    for method in Compression::ALL {
        let fs = sim();
        let file = compressed_unfinished(method, &data[..300_000]);
        let partial = seg_name(1, 1).with_compression(Some(method)).partial();
        fs.put_file(dir_path(&partial.to_string()), &file);
        let complete = seg_name(1, 2).with_compression(Some(method));
        fs.put_file(dir_path(&complete.to_string()), &file);

        let mut s = ArchiveStream::open(&fs, Path::new(DIR), &FileName::Segment(partial)).unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        assert!(got == data[..300_000], "{method}");
        assert_eq!(s.end(), Some(&StreamEnd::Truncated), "{method}");
        let r = SegmentReader::open(&fs, Path::new(DIR), partial).unwrap();
        assert_eq!(r.len(), 300_000);

        let e = read_segment(&fs, Path::new(DIR), complete).unwrap_err();
        assert!(
            matches!(
                &e,
                Error::Decompress {
                    at: 300_000,
                    problem: StreamEnd::Truncated,
                    ..
                }
            ),
            "{method}: {e}"
        );
        assert!(e.to_string().contains(&complete.to_string()), "{e}");
        // Through `io::Read` the same error comes as `InvalidData`, with ours inside.
        let mut s = ArchiveStream::open(&fs, Path::new(DIR), &FileName::Segment(complete)).unwrap();
        let e = s.read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        assert!(e.get_ref().unwrap().is::<Error>());
    }
}

#[test]
fn garbage_is_an_error_in_a_complete_file_and_an_end_in_a_partial() {
    for method in Compression::ALL {
        let fs = sim();
        let mut file = compressed_unfinished(method, b"some wal bytes");
        file.extend_from_slice(&[0xA5; 64]);
        let partial = seg_name(1, 1).with_compression(Some(method)).partial();
        fs.put_file(dir_path(&partial.to_string()), &file);
        let complete = seg_name(1, 2).with_compression(Some(method));
        fs.put_file(dir_path(&complete.to_string()), &file);

        assert_eq!(
            read_segment(&fs, Path::new(DIR), partial).unwrap(),
            b"some wal bytes",
            "{method}"
        );
        let e = read_segment(&fs, Path::new(DIR), complete).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Decompress {
                    problem: StreamEnd::Corrupt(_),
                    ..
                }
            ),
            "{method}: {e}"
        );
    }
}

#[test]
fn a_segment_decompressing_to_more_than_a_segment_is_refused() {
    let fs = sim();
    let name = seg_name(1, 1).with_compression(Some(Compression::Lz4));
    let too_much = vec![7u8; SEG.as_u64() as usize + 10];
    fs.put_file(
        dir_path(&name.to_string()),
        &compressed(Compression::Lz4, &too_much),
    );
    let e = read_segment(&fs, Path::new(DIR), name).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Decompress {
                problem: StreamEnd::OverLimit,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn history_files_are_read_plain_or_compressed() {
    let content = b"1\t0/3000000\tno recovery target specified\n";
    let fs = sim();
    let tli = TimeLineId::new(2).unwrap();
    fs.put_file(dir_path("00000002.history"), content);
    fs.put_file(
        dir_path("00000003.history.zst"),
        &compressed(Compression::Zstd, content),
    );
    let plain = FileName::History(HistoryName::new(tli));
    assert_eq!(read_file(&fs, Path::new(DIR), &plain).unwrap(), content);
    let zst = FileName::parse("00000003.history.zst", WalSegSize::DEFAULT).unwrap();
    assert_eq!(read_file(&fs, Path::new(DIR), &zst).unwrap(), content);
    let missing = FileName::parse("00000004.history.gz", WalSegSize::DEFAULT).unwrap();
    assert!(
        read_file(&fs, Path::new(DIR), &missing)
            .unwrap_err()
            .is_not_found()
    );
}
