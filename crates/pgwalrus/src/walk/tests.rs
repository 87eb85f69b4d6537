//! The parallel walk against the sequential one, on synthetic archives with random damage:
//! flipped bytes, a missing segment, a truncated file, a zeroed page, a `.partial` last
//! file. Whatever the thread count, run length and read size, `check` must report exactly
//! what `walk` reports — every problem (file, offset, LSN, message) in the same order, and
//! the same totals.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use pgwalrus_archive::CompressionSpec;
use pgwalrus_archive::compress::{Compression, Encoder};
use pgwalrus_wal::names::SegmentName;
use pgwalrus_wal::testutil::{Body, Image, PAGE, WalWriter, rel};
use pgwalrus_wal::{SegNo, TimeLineId};
use proptest::prelude::*;

use super::*;

const SEG: WalSegSize = WalSegSize::MIN;
/// Segment 16 of 1 MiB segments.
const START: Lsn = Lsn(0x0100_0000);

/// Six segments of varied WAL, ending at a segment boundary: short records, full-page
/// images, records crossing pages and segments, a switch in the middle.
fn wal() -> &'static [u8] {
    static WAL: OnceLock<Vec<u8>> = OnceLock::new();
    WAL.get_or_init(|| {
        let mut w = WalWriter::new(PgMajor::V15, SEG, START);
        let mut i = 0u32;
        while w.pos().0 < START.0 + 6 * SEG.as_u64() - 40_000 {
            i += 1;
            if i == 3000 {
                w.switch();
            }
            match i % 23 {
                0 => {
                    let image = Image {
                        info: 0x03,
                        hole_offset: 400,
                        hole_length: None,
                        bytes: vec![i as u8; 8192 - 700],
                    };
                    let body = Body::new()
                        .block(0, 0, Some(rel(5, 16_384)), i, Some(image), &[])
                        .main(b"fpi")
                        .build();
                    w.record(10, 0x00, i, &body);
                }
                5 if i.is_multiple_of(16) => {
                    w.noop(20_000 + (i as usize * 101) % 20_000);
                }
                _ => {
                    let data = vec![i as u8; 8 + (i as usize * 29) % 120];
                    let body = Body::new()
                        .block(0, 0, Some(rel(5, 16_384)), i, None, &data)
                        .main(&[4, 5, 6])
                        .build();
                    w.record(10, 0x00, i, &body);
                }
            }
        }
        w.switch();
        assert!((w.out.len() as u64).is_multiple_of(SEG.as_u64()));
        w.out
    })
}

fn name(index: usize) -> String {
    SegmentName::new(
        TimeLineId::ONE,
        SegNo(START.segno(SEG).0 + index as u64),
        SEG,
    )
    .unwrap()
    .to_string()
}

/// Damage applied to the archive.
#[derive(Debug, Clone)]
struct Damage {
    flips: Vec<(usize, u8)>,
    missing: Option<usize>,
    truncated: Option<(usize, usize)>,
    zero_page: Option<usize>,
    partial_last: bool,
}

/// A directory with the archive, damaged; removed on drop.
struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn archive(damage: &Damage) -> Dir {
    archive_of(wal(), damage)
}

fn archive_of(wal: &[u8], damage: &Damage) -> Dir {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "pgwalrus-walk-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let mut bytes = wal.to_vec();
    for &(at, xor) in &damage.flips {
        let at = at % bytes.len();
        bytes[at] ^= xor;
    }
    if let Some(page) = damage.zero_page {
        let at = (page * PAGE as usize) % bytes.len();
        bytes[at..at + PAGE as usize].fill(0);
    }
    let seg = SEG.as_u64() as usize;
    let count = bytes.len() / seg;
    for (index, content) in bytes.chunks(seg).enumerate() {
        if damage.missing == Some(index) {
            continue;
        }
        let content = match damage.truncated {
            Some((i, len)) if i == index => &content[..len % seg],
            _ => content,
        };
        let file = if damage.partial_last && index + 1 == count {
            format!("{}.partial", name(index))
        } else {
            name(index)
        };
        std::fs::write(dir.join(file), content).unwrap();
    }
    Dir(dir)
}

/// Replaces every segment file of `dir` by its copy compressed with `method` (one finished
/// stream, as `receive -Z` writes), so the archive holds compressed files only.
fn compress_all(dir: &Dir, method: Compression) {
    for entry in std::fs::read_dir(&dir.0).unwrap() {
        let path = entry.unwrap().path();
        let text = path.file_name().unwrap().to_str().unwrap();
        let Ok(FileName::Segment(name)) = FileName::parse(text, SEG) else {
            continue;
        };
        let mut e = Encoder::new(
            method,
            CompressionSpec::default_for(method).effective_level(),
        )
        .unwrap();
        e.write(&std::fs::read(&path).unwrap()).unwrap();
        e.finish().unwrap();
        let compressed = name.with_compression(Some(method)).to_string();
        std::fs::write(dir.0.join(compressed), e.output()).unwrap();
        std::fs::remove_file(&path).unwrap();
    }
}

/// Problems and totals of a walk in `mode`.
fn outcome(dir: &Dir, mode: Mode, start: Option<Lsn>) -> (Vec<Problem>, [Option<String>; 6]) {
    let options = WalkOptions {
        dir: dir.0.clone(),
        start,
        ..WalkOptions::default()
    };
    let mut problems = Vec::new();
    let summary = run(&options, mode, |event| {
        if let Event::Problem(p) = event {
            problems.push(p.clone());
        }
    })
    .unwrap();
    let totals = [
        Some(summary.segments.to_string()),
        Some(summary.records.to_string()),
        summary.first_lsn.map(|l| l.to_string()),
        summary.end_lsn.map(|l| l.to_string()),
        Some(summary.problems.to_string()),
        summary.major.map(|m| m.to_string()),
    ];
    (problems, totals)
}

#[test]
fn a_clean_archive_has_no_problems_either_way() {
    let dir = archive(&Damage {
        flips: vec![],
        missing: None,
        truncated: None,
        zero_page: None,
        partial_last: false,
    });
    let sequential = outcome(&dir, Mode::Records, None);
    assert!(sequential.0.is_empty(), "{:?}", sequential.0);
    assert_eq!(sequential.1[0].as_deref(), Some("6"));
    let records: u64 = sequential.1[1].as_deref().unwrap().parse().unwrap();
    assert!(records > 10_000, "{records}");
    for (threads, run_len, chunk) in [
        (1, 1, 4096),
        (2, 1, 100_000),
        (2, 2, 256 << 10),
        (3, 4, 8191),
        (4, 6, 1 << 20),
    ] {
        assert_eq!(
            outcome(
                &dir,
                Mode::Check {
                    threads,
                    run_len: Some(run_len),
                    read_chunk: chunk
                },
                None
            ),
            sequential
        );
    }
}

#[test]
fn an_archive_of_compressed_segments_only_is_walked_like_a_plain_one() {
    // What `receive -Z` leaves in an empty directory: no plain file to read the segment
    // size from. The last file is a `.partial`.
    let damage = Damage {
        flips: vec![],
        missing: None,
        truncated: None,
        zero_page: None,
        partial_last: true,
    };
    let plain = outcome(&archive(&damage), Mode::Records, None);
    assert!(plain.0.is_empty(), "{:?}", plain.0);
    assert_eq!(plain.1[0].as_deref(), Some("6"));
    for method in [Compression::Gzip, Compression::Lz4, Compression::Zstd] {
        let dir = archive(&damage);
        compress_all(&dir, method);
        let options = WalkOptions {
            dir: dir.0.clone(),
            ..WalkOptions::default()
        };
        // `dump` and `verify` as the commands call them.
        let mut names = Vec::new();
        let mut records = 0u64;
        let dumped = walk(&options, |event| match event {
            Event::Segment { name, .. } => names.push(name.to_owned()),
            Event::Record(..) => records += 1,
            Event::Problem(p) => panic!("{method}: {p:?}"),
        })
        .unwrap_or_else(|e| panic!("{method}: {e}"));
        assert_eq!(dumped.segments, 6, "{method}");
        assert_eq!(Some(records.to_string()), plain.1[1], "{method}");
        assert!(
            names.iter().all(|n| n.contains(method.suffix())),
            "{names:?}"
        );
        let checked = check(&options, |event| {
            if let Event::Problem(p) = event {
                panic!("{method}: {p:?}");
            }
        })
        .unwrap_or_else(|e| panic!("{method}: {e}"));
        assert_eq!(checked.problems, 0, "{method}");
        // Problems and totals as for the plain archive, whatever the walk.
        assert_eq!(outcome(&dir, Mode::Records, None), plain, "{method}");
        assert_eq!(
            outcome(
                &dir,
                Mode::Check {
                    threads: 2,
                    run_len: Some(2),
                    read_chunk: 8192
                },
                None
            ),
            plain,
            "{method}"
        );
    }
}

#[test]
fn a_record_broken_at_a_run_boundary_is_reported_once_and_where_it_is() {
    // Damage the record that crosses into segment 3 (its continuation there): the run
    // starting at segment 3 skips it, the catch-up must report it.
    let seg = SEG.as_u64() as usize;
    // The first page of segment 3 continues a record (the writer packs pages full);
    // flip a byte of that continuation.
    let flips = vec![(3 * seg + 100, 0x08)];
    let dir = archive(&Damage {
        flips,
        missing: None,
        truncated: None,
        zero_page: None,
        partial_last: false,
    });
    let sequential = outcome(&dir, Mode::Records, None);
    let first = sequential.0.first().and_then(|p| p.lsn).expect("a problem");
    assert!(
        first.0 < START.0 + 3 * SEG.as_u64(),
        "{first} {:?}",
        sequential.0
    );
    assert_eq!(sequential.0[0].file.as_deref(), Some(name(2).as_str()));
    for run_len in 1..=3 {
        assert_eq!(
            outcome(
                &dir,
                Mode::Check {
                    threads: 2,
                    run_len: Some(run_len),
                    read_chunk: 5000
                },
                None
            ),
            sequential
        );
    }
}

#[test]
fn a_torn_last_record_is_judged_with_the_whole_last_file() {
    // Three segments, the last written to its middle, zeros after: damage to its last
    // record is the end of WAL (a torn tail) — no problem in a `.partial`, a problem in a
    // complete file. Read in small pieces, the failure is met long before the file ends.
    let mut w = WalWriter::new(PgMajor::V15, SEG, START);
    let mut i = 0u32;
    while w.pos().0 < START.0 + 2 * SEG.as_u64() + SEG.as_u64() / 2 {
        i += 1;
        let data = vec![i as u8; 40 + (i as usize * 7) % 200];
        let body = Body::new()
            .block(0, 0, Some(rel(5, 16_384)), i, None, &data)
            .main(&[1])
            .build();
        w.record(10, 0x00, i, &body);
    }
    let last = w.record(10, 0x00, 0, &Body::new().main(&[9; 100]).build());
    w.zero_fill_segment();
    let at = (last.0 - START.0) as usize + 50;
    for partial_last in [true, false] {
        let dir = archive_of(
            &w.out,
            &Damage {
                flips: vec![(at, 0x10)],
                missing: None,
                truncated: None,
                zero_page: None,
                partial_last,
            },
        );
        let sequential = outcome(&dir, Mode::Records, None);
        assert_eq!(sequential.0.is_empty(), partial_last, "{:?}", sequential.0);
        for chunk in [4096, 8192 + 5, 1 << 20] {
            assert_eq!(
                outcome(
                    &dir,
                    Mode::Check {
                        threads: 2,
                        run_len: Some(1),
                        read_chunk: chunk
                    },
                    None
                ),
                sequential
            );
        }
    }
}

#[test]
fn a_file_of_the_wrong_length_is_reported_in_itself_and_not_in_the_next() {
    let seg = SEG.as_u64() as usize;
    for (len, words) in [
        (0, "it is empty"),
        (seg / 3, "it was cut short"),
        (seg + 100, "it is longer than a segment"),
    ] {
        for method in [None, Some(Compression::Zstd)] {
            let dir = archive(&Damage {
                flips: vec![],
                missing: None,
                truncated: None,
                zero_page: None,
                partial_last: false,
            });
            let path = dir.0.join(name(2));
            let mut content = std::fs::read(&path).unwrap();
            content.resize(len, 0);
            std::fs::write(&path, &content).unwrap();
            if let Some(method) = method {
                compress_all(&dir, method);
            }
            for mode in [
                Mode::Records,
                Mode::Check {
                    threads: 2,
                    run_len: Some(1),
                    read_chunk: 8192,
                },
            ] {
                let (problems, _) = outcome(&dir, mode, None);
                let label = format!("{len} bytes, {method:?}, {mode:?}");
                assert_eq!(problems.len(), 1, "{label}: {problems:?}");
                let p = &problems[0];
                assert!(
                    p.file.as_deref().is_some_and(|f| f.starts_with(&name(2))),
                    "{label}: {p:?}"
                );
                // A compressed file is decompressed at most one segment far: the reader
                // itself says it holds more.
                let said = if method.is_some() && len > seg {
                    p.message.contains("more than one segment")
                } else {
                    p.message.contains(&format!("{len} bytes")) && p.message.contains(words)
                };
                assert!(said, "{label}: {p:?}");
            }
        }
    }
}

#[test]
fn the_newest_partial_must_start_with_its_own_first_page() {
    let seg = SEG.as_u64() as usize;
    let last = wal().len() / seg - 1;
    // What the .partial holds, how it is made, whether it is a problem.
    type Case = (&'static str, fn(&mut Vec<u8>), bool);
    let cases: [Case; 4] = [
        ("WAL, then zeros", |c| c[300_000..].fill(0), false),
        ("nothing written yet", |c| c.fill(0), false),
        (
            "random bytes",
            |c| {
                for (i, b) in c.iter_mut().enumerate() {
                    *b = (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1];
                }
            },
            true,
        ),
        (
            "another segment's first page",
            |c| {
                // Page address of the segment before it: a copy under the wrong name.
                let addr =
                    (START.0 + (wal().len() / (1 << 20) - 2) as u64 * (1 << 20)).to_le_bytes();
                c[8..16].copy_from_slice(&addr);
            },
            true,
        ),
    ];
    for (what, damage, problem) in cases {
        let dir = archive(&Damage {
            flips: vec![],
            missing: None,
            truncated: None,
            zero_page: None,
            partial_last: true,
        });
        let path = dir.0.join(format!("{}.partial", name(last)));
        let mut content = std::fs::read(&path).unwrap();
        damage(&mut content);
        std::fs::write(&path, &content).unwrap();
        for mode in [
            Mode::Records,
            Mode::Check {
                threads: 2,
                run_len: Some(2),
                read_chunk: 65_536,
            },
        ] {
            let (problems, _) = outcome(&dir, mode, None);
            if problem {
                assert_eq!(problems.len(), 1, "{what}, {mode:?}: {problems:?}");
                assert_eq!(
                    problems[0].file.as_deref(),
                    Some(format!("{}.partial", name(last)).as_str()),
                    "{what}, {mode:?}: {problems:?}"
                );
            } else {
                assert!(problems.is_empty(), "{what}, {mode:?}: {problems:?}");
            }
        }
    }
}

fn damage() -> impl Strategy<Value = Damage> {
    (
        // Anywhere, or near a segment boundary, where runs meet.
        proptest::collection::vec(
            (
                prop_oneof![
                    0usize..7_000_000,
                    (1usize..6, 0usize..32_768).prop_map(|(s, d)| s * (1 << 20) + d - 16_384)
                ],
                1u8..=255,
            ),
            0..4,
        ),
        proptest::option::weighted(0.2, 0usize..6),
        proptest::option::weighted(0.15, (0usize..6, 0usize..1_100_000)),
        proptest::option::weighted(0.15, 0usize..800),
        proptest::bool::weighted(0.15),
    )
        .prop_map(
            |(flips, missing, truncated, zero_page, partial_last)| Damage {
                flips,
                missing,
                truncated,
                zero_page,
                partial_last,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    /// Damage anywhere: the parallel walk reports exactly what the sequential walk
    /// reports, whatever the thread count, run length and read size.
    #[test]
    fn parallel_check_reports_what_the_sequential_walk_reports(
        damage in damage(),
        threads in 1usize..4,
        run_len in 1usize..4,
        chunk in prop_oneof![Just(8192usize), Just(65_536 + 3), Just(256 << 10), 1000usize..20_000],
        from_segment in proptest::option::weighted(0.2, 0u64..3),
    ) {
        let dir = archive(&damage);
        let start = from_segment.map(|s| Lsn(START.0 + s * SEG.as_u64() + 5000));
        let sequential = outcome(&dir, Mode::Records, start);
        let parallel = outcome(&dir, Mode::Check { threads, run_len: Some(run_len), read_chunk: chunk }, start);
        prop_assert_eq!(parallel, sequential);
    }
}

#[test]
fn a_partial_completed_by_a_receiver_during_the_walk_is_read_under_its_new_name() {
    let last = wal().len() / SEG.as_u64() as usize - 1;
    for mode in [
        Mode::Records,
        Mode::Check {
            threads: 2,
            run_len: Some(2),
            read_chunk: 65_536,
        },
    ] {
        let dir = archive(&Damage {
            flips: vec![],
            missing: None,
            truncated: None,
            zero_page: None,
            partial_last: true,
        });
        let partial = format!("{}.partial", name(last));
        let options = WalkOptions {
            dir: dir.0.clone(),
            ..WalkOptions::default()
        };
        let mut problems = Vec::new();
        let mut renamed = false;
        let summary = run(&options, mode, |event| match event {
            // The receiver completes the segment between the listing and the read.
            Event::Segment { name, .. } if name == partial && !renamed => {
                #[allow(clippy::disallowed_methods, reason = "a receiver's rename, in a test")]
                std::fs::rename(
                    dir.0.join(&partial),
                    dir.0.join(name.trim_end_matches(".partial")),
                )
                .unwrap();
                renamed = true;
            }
            Event::Problem(p) => problems.push(p.clone()),
            _ => {}
        })
        .unwrap();
        assert!(renamed, "{mode:?}: the walk never came to {partial}");
        assert!(problems.is_empty(), "{mode:?}: {problems:?}");
        assert_eq!(summary.segments, last + 1, "{mode:?}");
    }
}
