//! Tests of the compression module: the `-Z` grammar, round trips through every method,
//! flush boundaries that survive any truncation, damaged input, and the standard
//! command-line tools as the oracle for the formats.

use std::io::Write as _;
use std::process::{Command, Stdio};

use proptest::prelude::*;

use super::*;

const METHODS: [Compression; 3] = Compression::ALL;

/// WAL-like bytes: pseudo-random stretches (record payloads) between runs of zeros (page
/// padding), so both the compressible and the incompressible paths run.
fn wal_like(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let run = (x % 3000) as usize + 1;
        if x & 0x100 == 0 {
            out.extend(std::iter::repeat_n(0u8, run));
        } else {
            let mut y = x;
            for _ in 0..run {
                y = y.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                out.push((y >> 56) as u8);
            }
        }
    }
    out.truncate(len);
    out
}

/// Compresses `data` cut at `cuts`, flushing at the cut points in `flush_at`; returns the
/// file and, for every flush, (file length after it, input length before it).
fn compress_with_syncs(
    method: Compression,
    data: &[u8],
    cuts: &[usize],
    finish: bool,
) -> (Vec<u8>, Vec<(usize, usize)>) {
    let mut e = Encoder::new(
        method,
        CompressionSpec::default_for(method).effective_level(),
    )
    .unwrap();
    let mut file = Vec::new();
    let mut syncs = Vec::new();
    let mut at = 0;
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    points.sort_unstable();
    points.push(data.len());
    for point in points {
        e.write(&data[at..point]).unwrap();
        at = point;
        e.flush().unwrap();
        file.append(e.output());
        syncs.push((file.len(), at));
    }
    if finish {
        e.finish().unwrap();
        file.append(e.output());
    }
    (file, syncs)
}

fn decoded(method: Compression, file: &[u8]) -> (Vec<u8>, StreamEnd) {
    let mut out = Vec::new();
    let held = decode(method, file, u64::MAX, |b| out.extend_from_slice(b)).unwrap();
    assert_eq!(held.bytes, out.len() as u64);
    (out, held.end)
}

#[test]
fn spec_grammar_follows_pg_receivewal() {
    use Compression::{Gzip, Lz4, Zstd};
    let ok: &[(&str, Option<Compression>, i32)] = &[
        ("none", None, 0),
        ("none:0", None, 0),
        ("none:level=0", None, 0),
        ("0", None, 0),
        ("gzip", Some(Gzip), 6),
        ("gzip:9", Some(Gzip), 9),
        ("gzip:1", Some(Gzip), 1),
        ("gzip:-1", Some(Gzip), 6),
        ("gzip:level=4", Some(Gzip), 4),
        ("5", Some(Gzip), 5),
        ("+5", Some(Gzip), 5),
        ("-1", Some(Gzip), 6),
        ("lz4", Some(Lz4), 0),
        ("lz4:0", Some(Lz4), 0),
        ("lz4:1", Some(Lz4), 1),
        ("lz4:level=12", Some(Lz4), 12),
        ("zstd", Some(Zstd), 1),
        ("zstd:level=3", Some(Zstd), 3),
        ("zstd:19", Some(Zstd), 19),
        ("zstd:-5", Some(Zstd), -5),
        ("zstd:level=22", Some(Zstd), 22),
        ("zstd:level=1,level=2", Some(Zstd), 2),
    ];
    for (text, method, level) in ok {
        let spec: CompressionSpec = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(spec.method(), *method, "{text}");
        assert_eq!(spec.effective_level(), *level, "{text}");
        // Display reads back as the same spec.
        assert_eq!(
            spec.to_string().parse::<CompressionSpec>().unwrap(),
            spec,
            "{text}"
        );
    }

    let bad: &[(&str, &str)] = &[
        ("", "empty compression specification"),
        ("brotli", "unrecognized compression algorithm: \"brotli\""),
        ("GZIP", "unrecognized compression algorithm"),
        ("gzip:10", "between 1 and 9 (default at -1), not 10"),
        ("gzip:0", "between 1 and 9"),
        ("10", "\"gzip\" expects a compression level between 1 and 9"),
        ("99999999999", "between 1 and 9"),
        (
            "lz4:13",
            "\"lz4\" expects a compression level between 1 and 12",
        ),
        ("zstd:23", "\"zstd\" expects a compression level between"),
        ("none:1", "\"none\" does not accept a compression level"),
        (
            "gzip:",
            "found empty string where a compression option was expected",
        ),
        ("zstd:level=3,", "found empty string"),
        ("gzip:fast", "unrecognized compression option: \"fast\""),
        (
            "gzip:level",
            "compression option \"level\" requires a value",
        ),
        ("gzip:level=high", "must be an integer, not \"high\""),
        ("gzip:workers=2", "\"gzip\" does not accept a worker count"),
        ("zstd:workers=2", "does not support the \"workers\" option"),
        ("gzip:level=11,workers=2", "between 1 and 9"),
    ];
    for (text, message) in bad {
        let e = text
            .parse::<CompressionSpec>()
            .expect_err(&format!("{text} was accepted"));
        let shown = e.to_string();
        assert!(shown.contains(message), "{text}: {shown}");
        assert!(!shown.ends_with('.'), "{shown}");
    }
    assert_eq!(CompressionSpec::NONE.to_string(), "none");
    assert_eq!(CompressionSpec::default(), CompressionSpec::NONE);
    assert_eq!(
        CompressionSpec::new(Some(Gzip), Some(0)),
        Err(SpecError::LevelOutOfRange {
            method: Gzip,
            level: 0,
            min: 1,
            max: 9,
            default: -1
        })
    );
}

#[test]
fn every_method_round_trips_and_ends_finished() {
    let data = wal_like(700_000, 7);
    for method in METHODS {
        let (file, _) = compress_with_syncs(method, &data, &[1, 5000, 65_536, 300_001], true);
        assert!(file.len() < data.len(), "{method}: no compression at all");
        let (out, end) = decoded(method, &file);
        assert_eq!(end, StreamEnd::Finished, "{method}");
        assert!(out == data, "{method}: round trip differs");
        // The standard reader interface too.
        let mut d = Decoder::new(method, &file[..]).unwrap();
        assert_eq!(d.method(), method);
        let mut all = Vec::new();
        std::io::Read::read_to_end(&mut d, &mut all).unwrap();
        assert!(all == data, "{method}");
    }
}

#[test]
fn an_empty_stream_is_valid_and_holds_nothing() {
    for method in METHODS {
        let mut e = Encoder::new(method, 1).unwrap();
        e.finish().unwrap();
        assert!(e.is_finished());
        let file = e.output().clone();
        assert_eq!(
            decoded(method, &file),
            (Vec::new(), StreamEnd::Finished),
            "{method}"
        );
        assert!(e.write(b"x").is_err(), "{method}: write after finish");
        assert!(e.flush().is_err() && e.finish().is_err(), "{method}");
        // A file with nothing in it at all: no bytes, and not a clean end for zstd/gzip.
        let held = held_bytes(method, &[][..], 100).unwrap();
        assert_eq!(held.bytes, 0, "{method}");
    }
}

#[test]
fn a_cut_anywhere_decodes_a_prefix_holding_every_byte_flushed_before_it() {
    let data = wal_like(150_000, 11);
    for method in METHODS {
        let (file, syncs) =
            compress_with_syncs(method, &data, &[1000, 20_000, 20_001, 90_000], true);
        // Cuts all over the file (every 61st byte keeps it quick), and at every sync point
        // and its neighbours.
        let mut cuts: Vec<usize> = (0..=file.len()).step_by(61).collect();
        for &(len, _) in &syncs {
            cuts.extend([len.saturating_sub(1), len, len + 1]);
        }
        for cut in cuts {
            let cut = cut.min(file.len());
            let (out, end) = decoded(method, &file[..cut]);
            assert!(
                data.starts_with(&out),
                "{method}: cut at {cut} decodes to something else"
            );
            let flushed = syncs
                .iter()
                .filter(|(len, _)| *len <= cut)
                .map(|(_, bytes)| *bytes)
                .max()
                .unwrap_or(0);
            assert!(
                out.len() >= flushed,
                "{method}: cut at {cut} of {} decodes {} bytes, but {flushed} were flushed before it ({end})",
                file.len(),
                out.len()
            );
            // A cut is a cut: never taken for a clean end, never for damage.
            match cut {
                0 => assert_eq!(end, StreamEnd::Finished, "{method}: an empty file"),
                c if c == file.len() => assert_eq!(end, StreamEnd::Finished, "{method}"),
                _ => assert_eq!(end, StreamEnd::Truncated, "{method}: cut at {cut}"),
            }
        }
    }
}

#[test]
fn garbage_after_a_flush_point_keeps_what_was_flushed() {
    let data = wal_like(100_000, 3);
    for method in METHODS {
        let (file, syncs) = compress_with_syncs(method, &data, &[40_000], false);
        let (len, bytes) = syncs[0];
        for garbage in [vec![0u8; 5000], vec![0xFF; 77], wal_like(3000, 99)] {
            let mut torn = file[..len].to_vec();
            torn.extend_from_slice(&garbage);
            let (out, end) = decoded(method, &torn);
            assert!(data.starts_with(&out), "{method}");
            assert!(out.len() >= bytes, "{method}: lost flushed bytes ({end})");
            assert!(
                !end.is_finished(),
                "{method}: garbage taken for a clean end"
            );
        }
    }
}

#[test]
fn the_limit_stops_decoding() {
    let data = wal_like(200_000, 5);
    for method in METHODS {
        let (file, _) = compress_with_syncs(method, &data, &[], true);
        let mut out = Vec::new();
        let held = decode(method, &file[..], 1000, |b| out.extend_from_slice(b)).unwrap();
        assert_eq!(
            (held.bytes, held.end),
            (1000, StreamEnd::OverLimit),
            "{method}"
        );
        assert_eq!(out, data[..1000], "{method}");
        let held = held_bytes(method, &file[..], data.len() as u64).unwrap();
        assert_eq!(
            (held.bytes, held.end),
            (data.len() as u64, StreamEnd::Finished),
            "{method}: exactly the limit is not over it"
        );
    }
}

#[test]
fn concatenated_streams_decode_as_one() {
    let a = wal_like(30_000, 1);
    let b = wal_like(20_000, 2);
    for method in METHODS {
        let (mut file, _) = compress_with_syncs(method, &a, &[], true);
        file.extend(compress_with_syncs(method, &b, &[], true).0);
        let (out, end) = decoded(method, &file);
        assert_eq!(end, StreamEnd::Finished, "{method}");
        assert!(out == [a.clone(), b.clone()].concat(), "{method}");
    }
}

#[test]
fn the_reader_s_own_failures_are_errors_not_damage() {
    /// The first bytes of a real stream, then EIO.
    struct Failing(Vec<u8>);
    impl std::io::Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() {
                return Err(std::io::Error::from_raw_os_error(5));
            }
            let n = buf.len().min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0.drain(..n);
            Ok(n)
        }
    }
    for method in METHODS {
        let (file, _) = compress_with_syncs(method, &wal_like(100_000, 8), &[], true);
        for keep in [0, 3, 20, file.len() / 2] {
            let e = held_bytes(method, Failing(file[..keep].to_vec()), 1 << 20).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(5), "{method}: {e}");
        }
    }
}

#[test]
fn standard_tools_decompress_our_streams() {
    let data = wal_like(300_000, 21);
    for method in METHODS {
        let tool = match method {
            Compression::Gzip => "gzip",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        };
        let (file, _) = compress_with_syncs(method, &data, &[10, 100_000], true);
        if method == Compression::Gzip {
            // One member, so the trailer's ISIZE (what pg_receivewal reads) is the content.
            let isize = u32::from_le_bytes(file[file.len() - 4..].try_into().unwrap());
            assert_eq!(isize as usize, data.len());
        }
        let child = Command::new(tool)
            .args(["-d", "-c"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = child.unwrap_or_else(|e| {
            panic!("cannot run {tool} -d -c ({e}); scripts/test.sh installs gzip, lz4 and zstd")
        });
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || stdin.write_all(&file));
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap().unwrap();
        assert!(
            out.status.success(),
            "{tool} -d failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout == data, "{tool} -d gives other bytes");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn any_chunk_split_and_sync_points_decode_to_the_same_bytes(
        method in prop::sample::select(METHODS.to_vec()),
        cuts in prop::collection::vec(0usize..60_000, 0..12),
        seed in any::<u64>(),
        finish in any::<bool>(),
    ) {
        let data = wal_like(60_000, seed);
        let (file, syncs) = compress_with_syncs(method, &data, &cuts, finish);
        let (out, end) = decoded(method, &file);
        prop_assert!(out == data);
        prop_assert_eq!(end.is_finished(), finish);
        // The last flush covered everything.
        prop_assert_eq!(syncs.last().map(|s| s.1), Some(data.len()));
    }

    #[test]
    fn any_bytes_decode_without_panicking(
        method in prop::sample::select(METHODS.to_vec()),
        bytes in prop::collection::vec(any::<u8>(), 0..2000),
        prefix in any::<bool>(),
    ) {
        // Half the cases start with the format's magic, to get past the first check.
        let mut input = Vec::new();
        if prefix {
            input.extend_from_slice(match method {
                Compression::Gzip => &[0x1f, 0x8b, 8, 0][..],
                Compression::Lz4 => &[0x04, 0x22, 0x4d, 0x18][..],
                Compression::Zstd => &[0x28, 0xb5, 0x2f, 0xfd][..],
            });
        }
        input.extend_from_slice(&bytes);
        let held = held_bytes(method, &input[..], 1 << 20).unwrap();
        prop_assert!(held.bytes <= 1 << 20);
        // A clean stream cut short decodes to a prefix of its content. (Damaged input may
        // lose a block a shorter cut still gives: see the fuzz target.)
        let mut whole = Vec::new();
        let end = decode(method, &input[..], 1 << 20, |b| whole.extend_from_slice(b)).unwrap().end;
        if end == StreamEnd::Finished {
            let mut part = Vec::new();
            decode(method, &input[..input.len() / 2], 1 << 20, |b| part.extend_from_slice(b)).unwrap();
            prop_assert!(whole.starts_with(&part));
        }
    }
}

#[test]
fn lz4_frames_of_different_shapes_each_get_a_decoder_of_their_own() {
    use std::io::Write as _;
    // Ours (256 KiB linked blocks), then one with 4 MiB independent blocks, as another tool
    // may append; then a legacy-format frame followed by a modern one (found by fuzzing: one
    // lz4_flex decoder carried the first frame's buffer sizes into the next).
    let a = wal_like(100_000, 31);
    let b = wal_like(300_000, 32);
    let (mut file, _) = compress_with_syncs(Compression::Lz4, &a, &[], true);
    let mut e = lz4_flex::frame::FrameEncoder::with_frame_info(
        lz4_flex::frame::FrameInfo::new().block_size(lz4_flex::frame::BlockSize::Max4MB),
        Vec::new(),
    );
    e.write_all(&b).unwrap();
    file.extend(e.finish().unwrap());
    let (out, end) = decoded(Compression::Lz4, &file);
    assert_eq!(end, StreamEnd::Finished);
    assert!(out == [a, b].concat());

    let legacy_then_modern: &[u8] = &[
        0x02, 0x21, 0x4c, 0x18, 0, 0, 0, 0, 0x04, 0x22, 0x4d, 0x18, 0x40, 0x40, 0xc0, 0x05, 0, 0,
        0x80, b'h', b'e', b'l', b'l', b'o', 0, 0, 0, 0,
    ];
    let held = held_bytes(Compression::Lz4, legacy_then_modern, 1 << 20).unwrap();
    assert!(held.bytes <= 5, "{held:?}");
}
