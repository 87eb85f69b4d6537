//! Tests of the resume scan: a table of directory listings and the start each gives.

use super::*;
use crate::fs::{SimFs, StdFs};
use crate::test_support::{
    SEG, TempDir, compressed, compressed_unfinished, dir, dir_path, seg_start, sim, tli,
};
use pgwalrus_wal::names::Compression;

const FULL: u64 = 1 << 20;
/// For a compressed name: bytes that do not decode at all.
const GARBAGE: u64 = u64::MAX;

/// A case: what it shows, the directory (name, length), the expected outcome.
type Case = (&'static str, &'static [(&'static str, u64)], Expect);

#[derive(Debug)]
enum Expect {
    Nothing,
    Start {
        tli: u32,
        segno: u64,
        partial: Option<&'static str>,
    },
    WrongSize(&'static str, u64),
    WrongUncompressed(&'static str, u64),
    Undecodable(&'static str),
    Oversized(&'static str),
    Foreign(&'static str),
}

/// A directory with these files. For an uncompressed name the length is the file's; for a
/// compressed one it is the length of its content (zeros): a finished stream for a
/// complete name, an unfinished one for a `.partial` — or [`GARBAGE`].
fn fs_with(files: &[(&str, u64)]) -> SimFs {
    let fs = sim();
    for (name, len) in files {
        let method = Compression::ALL.into_iter().find(|c| {
            let suffix = c.suffix();
            name.ends_with(suffix) || name.ends_with(&format!("{suffix}.partial"))
        });
        let content = match method {
            None => vec![0u8; *len as usize],
            Some(_) if *len == GARBAGE => b"\x1f\x8b this is not compressed data".to_vec(),
            Some(c) if name.ends_with(".partial") => {
                compressed_unfinished(c, &vec![0u8; *len as usize])
            }
            Some(c) => compressed(c, &vec![0u8; *len as usize]),
        };
        fs.put_file(dir_path(name), &content);
    }
    fs
}

#[test]
fn resume_rules_table() {
    use Expect::*;
    let cases: &[Case] = &[
        ("empty directory", &[], Nothing),
        (
            "only history, backup history, temp and junk",
            &[
                ("00000002.history", 40),
                ("000000010000000000000003.00000028.backup", 200),
                ("000000010000000000000005.partial.tmp", 3),
                ("00000002.history.tmp", 3),
                ("README", 10),
                ("00000001000000000000000a", FULL),
                ("000000010000000000000005.bak", FULL),
            ],
            Nothing,
        ),
        (
            "one complete segment",
            &[("000000010000000000000005", FULL)],
            Start {
                tli: 1,
                segno: 6,
                partial: None,
            },
        ),
        (
            "complete then a full partial",
            &[
                ("000000010000000000000005", FULL),
                ("000000010000000000000006.partial", FULL),
            ],
            Start {
                tli: 1,
                segno: 6,
                partial: Some("000000010000000000000006.partial"),
            },
        ),
        (
            "zero-length partial",
            &[("000000010000000000000006.partial", 0)],
            Start {
                tli: 1,
                segno: 6,
                partial: Some("000000010000000000000006.partial"),
            },
        ),
        (
            "truncated partial",
            &[
                ("000000010000000000000005", FULL),
                ("000000010000000000000006.partial", 12_345),
            ],
            Start {
                tli: 1,
                segno: 6,
                partial: Some("000000010000000000000006.partial"),
            },
        ),
        (
            "complete beats partial of the same segment and timeline",
            &[
                ("000000010000000000000006", FULL),
                ("000000010000000000000006.partial", FULL),
            ],
            Start {
                tli: 1,
                segno: 7,
                partial: None,
            },
        ),
        (
            "higher timeline wins on the same segment",
            &[
                ("000000010000000000000005", FULL),
                ("000000020000000000000005.partial", FULL),
            ],
            Start {
                tli: 2,
                segno: 5,
                partial: Some("000000020000000000000005.partial"),
            },
        ),
        (
            "higher segment beats higher timeline",
            &[
                ("000000010000000000000006", FULL),
                ("000000030000000000000005", FULL),
            ],
            Start {
                tli: 1,
                segno: 7,
                partial: None,
            },
        ),
        (
            "old timeline's last partial, new timeline continues",
            &[
                ("000000010000000000000005", FULL),
                ("000000010000000000000006.partial", FULL),
                ("00000002.history", 40),
                ("000000020000000000000006", FULL),
                ("000000020000000000000007.partial", 8192),
            ],
            Start {
                tli: 2,
                segno: 7,
                partial: Some("000000020000000000000007.partial"),
            },
        ),
        (
            "compressed complete segments count by name",
            &[
                ("000000010000000000000005.gz", FULL),
                ("000000010000000000000006.lz4", FULL),
                ("000000010000000000000007.zst", FULL),
            ],
            Start {
                tli: 1,
                segno: 8,
                partial: None,
            },
        ),
        (
            "compressed partial",
            &[
                ("000000010000000000000005.zst", FULL),
                ("000000010000000000000006.gz.partial", 10),
            ],
            Start {
                tli: 1,
                segno: 6,
                partial: Some("000000010000000000000006.gz.partial"),
            },
        ),
        (
            "lz4 partial",
            &[("000000010000000000000009.lz4.partial", 0)],
            Start {
                tli: 1,
                segno: 9,
                partial: Some("000000010000000000000009.lz4.partial"),
            },
        ),
        (
            "mixed methods: uncompressed, gzip, lz4, then a zstd partial",
            &[
                ("000000010000000000000004", FULL),
                ("000000010000000000000005.gz", FULL),
                ("000000010000000000000006.lz4", FULL),
                ("000000010000000000000007.zst.partial", 5000),
            ],
            Start {
                tli: 1,
                segno: 7,
                partial: Some("000000010000000000000007.zst.partial"),
            },
        ),
        (
            "pg_receivewal's gzip partial next to a complete segment of an earlier run",
            &[
                ("000000010000000000000006", FULL),
                ("000000010000000000000007.gz.partial", 0),
            ],
            Start {
                tli: 1,
                segno: 7,
                partial: Some("000000010000000000000007.gz.partial"),
            },
        ),
        (
            "a complete compressed winner must hold a whole segment",
            &[("000000010000000000000007.lz4", FULL - 8192)],
            WrongUncompressed("000000010000000000000007.lz4", FULL - 8192),
        ),
        (
            "a complete compressed winner must decode",
            &[
                ("000000010000000000000006", FULL),
                ("000000010000000000000007.gz", GARBAGE),
            ],
            Undecodable("000000010000000000000007.gz"),
        ),
        (
            "older complete compressed segments are not decompressed at every start",
            &[
                ("000000010000000000000006.zst", GARBAGE),
                ("000000010000000000000007.gz", FULL),
            ],
            Start {
                tli: 1,
                segno: 8,
                partial: None,
            },
        ),
        (
            "numeric order across the xlogid boundary",
            &[
                ("000000010000000000000FFF", FULL),
                ("000000010000000100000000.partial", 0),
            ],
            Start {
                tli: 1,
                segno: 4096,
                partial: Some("000000010000000100000000.partial"),
            },
        ),
        (
            "odd-sized complete segment is an error, even if older",
            &[
                ("000000010000000000000005", 4096),
                ("000000010000000000000006", FULL),
            ],
            WrongSize("000000010000000000000005", 4096),
        ),
        (
            "complete segment longer than a segment is an error",
            &[("000000010000000000000005", FULL + 1)],
            WrongSize("000000010000000000000005", FULL + 1),
        ),
        (
            "partial longer than a segment is an error",
            &[("000000010000000000000005.partial", FULL + 8192)],
            Oversized("000000010000000000000005.partial"),
        ),
        (
            "a name that cannot exist at this segment size",
            &[("000000010000000000001000", FULL)],
            Foreign("000000010000000000001000"),
        ),
    ];

    for (what, files, expect) in cases {
        let fs = fs_with(files);
        let got = scan(&fs, dir(), SEG);
        match (expect, got) {
            (Nothing, Ok(s)) => assert_eq!(s.resume, None, "{what}"),
            (
                Start {
                    tli: t,
                    segno,
                    partial,
                },
                Ok(s),
            ) => {
                let r = s
                    .resume
                    .unwrap_or_else(|| panic!("{what}: no resume point"));
                assert_eq!(r.tli, tli(*t), "{what}");
                assert_eq!(r.start, seg_start(*segno), "{what}");
                assert!(r.start.is_segment_start(SEG), "{what}");
                assert_eq!(
                    r.partial.as_ref().map(|p| p.path.clone()),
                    partial.map(dir_path),
                    "{what}"
                );
            }
            (WrongSize(name, size), Err(e)) => {
                assert!(
                    matches!(&e, Error::WrongSegmentSize { path, size: s, .. }
                        if *path == dir_path(name) && s == size),
                    "{what}: {e}"
                );
                assert!(e.to_string().contains(name), "{what}: {e}");
                assert!(e.to_string().contains(&size.to_string()), "{what}: {e}");
            }
            (WrongUncompressed(name, size), Err(e)) => {
                assert!(
                    matches!(&e, Error::WrongUncompressedSize { path, size: s, .. }
                        if *path == dir_path(name) && s == size),
                    "{what}: {e}"
                );
                assert!(e.to_string().contains(name), "{what}: {e}");
            }
            (Undecodable(name), Err(e)) => assert!(
                matches!(&e, Error::Decompress { path, .. } if *path == dir_path(name)),
                "{what}: {e}"
            ),
            (Oversized(name), Err(e)) => assert!(
                matches!(&e, Error::OversizedPartial { path, .. } if *path == dir_path(name)),
                "{what}: {e}"
            ),
            (Foreign(name), Err(e)) => {
                assert!(
                    matches!(&e, Error::ForeignSegmentName { path, .. } if *path == dir_path(name)),
                    "{what}: {e}"
                );
                assert!(e.is_cluster_mismatch(), "{what}");
            }
            (expect, got) => panic!("{what}: expected {expect:?}, got {got:?}"),
        }
        // The scan never changes the directory.
        let mut names: Vec<String> = files.iter().map(|(n, _)| n.to_string()).collect();
        names.sort();
        assert_eq!(fs.live_names(dir()), names, "{what}");
    }
}

#[test]
fn scan_reports_both_ends_partials_and_temp_files() {
    let fs = fs_with(&[
        ("000000010000000000000004", FULL),
        ("000000010000000000000005", FULL),
        ("000000010000000000000006.partial", FULL),
        ("000000020000000000000006", FULL),
        ("000000020000000000000007.partial", 100),
        ("000000020000000000000008.partial.tmp", 1),
        ("00000003.history.tmp", 1),
    ]);
    let s = scan(&fs, dir(), SEG).unwrap();
    let r = s.resume.as_ref().unwrap();
    assert_eq!((r.tli, r.start), (tli(2), seg_start(7)));
    assert_eq!(r.partial.as_ref().unwrap().len, 100);
    let newest = r.newest_complete.as_ref().unwrap();
    assert_eq!(newest.path, dir_path("000000020000000000000006"));
    assert_eq!(newest.len, FULL);
    assert_eq!(
        s.oldest_complete.as_ref().unwrap().path,
        dir_path("000000010000000000000004")
    );
    let partials: Vec<_> = s.partials.iter().map(|p| p.name.to_string()).collect();
    assert_eq!(
        partials,
        [
            "000000010000000000000006.partial",
            "000000020000000000000007.partial"
        ]
    );
    let temps: Vec<_> = s.temp_files.iter().map(|t| t.to_string()).collect();
    assert_eq!(
        temps,
        [
            "000000020000000000000008.partial.tmp",
            "00000003.history.tmp"
        ]
    );
    assert_eq!(
        find_streaming_start(&fs, dir(), SEG).unwrap().as_ref(),
        Some(r)
    );
}

#[test]
fn missing_directory_is_an_io_error_naming_it() {
    let fs = SimFs::new();
    let e = scan(&fs, dir(), SEG).unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert_eq!(e.op(), Some(Op::ListDir));
    assert!(e.to_string().contains("/archive"), "{e}");
}

#[test]
fn scan_of_a_real_directory() {
    let tmp = TempDir::new("resume-std");
    std::fs::write(
        tmp.path().join("000000010000000000000005"),
        vec![0u8; FULL as usize],
    )
    .unwrap();
    std::fs::write(tmp.path().join("000000010000000000000006.partial"), b"").unwrap();
    std::fs::create_dir(tmp.path().join("000000010000000000000009")).unwrap();
    let r = find_streaming_start(&StdFs::new(), tmp.path(), SEG)
        .unwrap()
        .unwrap();
    assert_eq!((r.tli, r.start), (tli(1), seg_start(6)));
    assert_eq!(
        r.partial.unwrap().path,
        tmp.path().join("000000010000000000000006.partial")
    );
}
