use super::*;
use proptest::prelude::*;

fn tli(v: u32) -> TimeLineId {
    TimeLineId::new(v).unwrap()
}

fn size_mb(mb: u32) -> WalSegSize {
    WalSegSize::new(mb << 20).unwrap()
}

fn parse(s: &str, seg_size: WalSegSize) -> FileName {
    FileName::parse(s, seg_size).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

/// `(lsn, timeline, segment size in MB, pg_walfile_name(lsn), pg_walfile_name_offset(lsn).file_offset)`.
///
/// Captured from PostgreSQL 15 (`/usr/lib/postgresql/15/bin`): one throwaway cluster per
/// segment size made with `initdb --wal-segsize=N`, its timeline set with
/// `pg_resetwal -l TTTTTTTT0000000100000001` (for the non-1 timelines), then
/// `select pg_walfile_name('…'), file_offset from pg_walfile_name_offset('…')`.
///
/// Note that `pg_walfile_name` names the segment holding the byte *before* the position
/// (`XLByteToPrevSeg`), so a position on a segment boundary gives the previous segment, and
/// `0/0` wraps around to the last segment.
const PG_WALFILE_NAME: &[(&str, u32, u32, &str, u32)] = &[
    ("0/1", 7, 1, "000000070000000000000000", 1),
    ("0/A000", 7, 1, "000000070000000000000000", 40960),
    ("0/FFFFF", 7, 1, "000000070000000000000000", 1048575),
    ("0/100000", 7, 1, "000000070000000000000000", 0),
    ("0/100001", 7, 1, "000000070000000000000001", 1),
    ("0/FFFFFF", 7, 1, "00000007000000000000000F", 1048575),
    ("0/1000000", 7, 1, "00000007000000000000000F", 0),
    ("0/1000001", 7, 1, "000000070000000000000010", 1),
    ("0/3FFFFFFF", 7, 1, "0000000700000000000003FF", 1048575),
    ("0/40000000", 7, 1, "0000000700000000000003FF", 0),
    ("0/40000001", 7, 1, "000000070000000000000400", 1),
    ("0/FFFFFFFF", 7, 1, "000000070000000000000FFF", 1048575),
    ("1/0", 7, 1, "000000070000000000000FFF", 0),
    ("1/1", 7, 1, "000000070000000100000000", 1),
    ("16/B374D848", 7, 1, "000000070000001600000B37", 317512),
    ("FF/FFFFFFFF", 7, 1, "00000007000000FF00000FFF", 1048575),
    ("7FFFFFFF/80000000", 7, 1, "000000077FFFFFFF000007FF", 0),
    (
        "ABCDEF01/23456789",
        7,
        1,
        "00000007ABCDEF0100000234",
        354185,
    ),
    (
        "FFFFFFFF/FFFFFFFF",
        7,
        1,
        "00000007FFFFFFFF00000FFF",
        1048575,
    ),
    ("0/0", 7, 1, "00000007FFFFFFFF00000FFF", 0),
    ("0/1", 1, 16, "000000010000000000000000", 1),
    ("0/A000", 1, 16, "000000010000000000000000", 40960),
    ("0/FFFFF", 1, 16, "000000010000000000000000", 1048575),
    ("0/100000", 1, 16, "000000010000000000000000", 1048576),
    ("0/100001", 1, 16, "000000010000000000000000", 1048577),
    ("0/FFFFFF", 1, 16, "000000010000000000000000", 16777215),
    ("0/1000000", 1, 16, "000000010000000000000000", 0),
    ("0/1000001", 1, 16, "000000010000000000000001", 1),
    ("0/3FFFFFFF", 1, 16, "00000001000000000000003F", 16777215),
    ("0/40000000", 1, 16, "00000001000000000000003F", 0),
    ("0/40000001", 1, 16, "000000010000000000000040", 1),
    ("0/FFFFFFFF", 1, 16, "0000000100000000000000FF", 16777215),
    ("1/0", 1, 16, "0000000100000000000000FF", 0),
    ("1/1", 1, 16, "000000010000000100000000", 1),
    ("16/B374D848", 1, 16, "0000000100000016000000B3", 7657544),
    ("FF/FFFFFFFF", 1, 16, "00000001000000FF000000FF", 16777215),
    ("7FFFFFFF/80000000", 1, 16, "000000017FFFFFFF0000007F", 0),
    (
        "ABCDEF01/23456789",
        1,
        16,
        "00000001ABCDEF0100000023",
        4548489,
    ),
    (
        "FFFFFFFF/FFFFFFFF",
        1,
        16,
        "00000001FFFFFFFF000000FF",
        16777215,
    ),
    ("0/0", 1, 16, "00000001FFFFFFFF000000FF", 0),
    ("0/1", 42, 64, "0000002A0000000000000000", 1),
    ("0/A000", 42, 64, "0000002A0000000000000000", 40960),
    ("0/FFFFF", 42, 64, "0000002A0000000000000000", 1048575),
    ("0/100000", 42, 64, "0000002A0000000000000000", 1048576),
    ("0/100001", 42, 64, "0000002A0000000000000000", 1048577),
    ("0/FFFFFF", 42, 64, "0000002A0000000000000000", 16777215),
    ("0/1000000", 42, 64, "0000002A0000000000000000", 16777216),
    ("0/1000001", 42, 64, "0000002A0000000000000000", 16777217),
    ("0/3FFFFFFF", 42, 64, "0000002A000000000000000F", 67108863),
    ("0/40000000", 42, 64, "0000002A000000000000000F", 0),
    ("0/40000001", 42, 64, "0000002A0000000000000010", 1),
    ("0/FFFFFFFF", 42, 64, "0000002A000000000000003F", 67108863),
    ("1/0", 42, 64, "0000002A000000000000003F", 0),
    ("1/1", 42, 64, "0000002A0000000100000000", 1),
    ("16/B374D848", 42, 64, "0000002A000000160000002C", 57989192),
    ("FF/FFFFFFFF", 42, 64, "0000002A000000FF0000003F", 67108863),
    ("7FFFFFFF/80000000", 42, 64, "0000002A7FFFFFFF0000001F", 0),
    (
        "ABCDEF01/23456789",
        42,
        64,
        "0000002AABCDEF0100000008",
        54880137,
    ),
    (
        "FFFFFFFF/FFFFFFFF",
        42,
        64,
        "0000002AFFFFFFFF0000003F",
        67108863,
    ),
    ("0/0", 42, 64, "0000002AFFFFFFFF0000003F", 0),
    ("0/1", 0xDEADBEEF, 1024, "DEADBEEF0000000000000000", 1),
    (
        "0/A000",
        0xDEADBEEF,
        1024,
        "DEADBEEF0000000000000000",
        40960,
    ),
    (
        "0/FFFFF",
        0xDEADBEEF,
        1024,
        "DEADBEEF0000000000000000",
        1048575,
    ),
    (
        "0/100000",
        0xDEADBEEF,
        1024,
        "DEADBEEF0000000000000000",
        1048576,
    ),
    (
        "0/100001",
        0xDEADBEEF,
        1024,
        "DEADBEEF0000000000000000",
        1048577,
    ),
    (
        "0/FFFFFF",
        0xDEADBEEF,
        1024,
        "DEADBEEF0000000000000000",
        16777215,
    ),
    (
        "0/1000000",
        0xDEADBEEF,
        1024,
        "DEADBEEF0000000000000000",
        16777216,
    ),
    (
        "0/1000001",
        0xDEADBEEF,
        1024,
        "DEADBEEF0000000000000000",
        16777217,
    ),
    (
        "0/3FFFFFFF",
        0xDEADBEEF,
        1024,
        "DEADBEEF0000000000000000",
        1073741823,
    ),
    (
        "0/40000000",
        0xDEADBEEF,
        1024,
        "DEADBEEF0000000000000000",
        0,
    ),
    (
        "0/40000001",
        0xDEADBEEF,
        1024,
        "DEADBEEF0000000000000001",
        1,
    ),
    (
        "0/FFFFFFFF",
        0xDEADBEEF,
        1024,
        "DEADBEEF0000000000000003",
        1073741823,
    ),
    ("1/0", 0xDEADBEEF, 1024, "DEADBEEF0000000000000003", 0),
    ("1/1", 0xDEADBEEF, 1024, "DEADBEEF0000000100000000", 1),
    (
        "16/B374D848",
        0xDEADBEEF,
        1024,
        "DEADBEEF0000001600000002",
        863295560,
    ),
    (
        "FF/FFFFFFFF",
        0xDEADBEEF,
        1024,
        "DEADBEEF000000FF00000003",
        1073741823,
    ),
    (
        "7FFFFFFF/80000000",
        0xDEADBEEF,
        1024,
        "DEADBEEF7FFFFFFF00000001",
        0,
    ),
    (
        "ABCDEF01/23456789",
        0xDEADBEEF,
        1024,
        "DEADBEEFABCDEF0100000000",
        591751049,
    ),
    (
        "FFFFFFFF/FFFFFFFF",
        0xDEADBEEF,
        1024,
        "DEADBEEFFFFFFFFF00000003",
        1073741823,
    ),
    ("0/0", 0xDEADBEEF, 1024, "DEADBEEFFFFFFFFF00000003", 0),
];

#[test]
fn agrees_with_pg_walfile_name() {
    for &(lsn_text, tli_raw, mb, expected, offset) in PG_WALFILE_NAME {
        let lsn: Lsn = lsn_text.parse().unwrap();
        let seg_size = size_mb(mb);
        // pg_walfile_name uses XLByteToPrevSeg; at 0/0 PostgreSQL wraps to the last segment.
        let segno = lsn
            .end_segno(seg_size)
            .unwrap_or_else(|| Lsn::MAX.segno(seg_size));
        let name = SegmentName::new(tli(tli_raw), segno, seg_size).unwrap();
        assert_eq!(name.to_string(), expected, "{lsn_text} at {mb}MB");
        assert_eq!(lsn.segment_offset(seg_size), offset, "{lsn_text} at {mb}MB");

        let parsed = parse(expected, seg_size);
        assert_eq!(parsed, FileName::Segment(name));
        assert_eq!(parsed.tli().get(), tli_raw);
        // The segment of the byte *at* the position differs only on a boundary.
        let at = SegmentName::containing(tli(tli_raw), lsn, seg_size);
        assert_eq!(
            at == name,
            !lsn.is_segment_start(seg_size),
            "{lsn_text} at {mb}MB"
        );
    }
}

#[test]
fn formats_every_suffix_in_pg_receivewal_order() {
    let s = WalSegSize::DEFAULT;
    let base = SegmentName::new(tli(1), SegNo(0x16B3), s).unwrap();
    let cases = [
        (base, "0000000100000016000000B3"),
        (base.partial(), "0000000100000016000000B3.partial"),
        (
            base.with_compression(Some(Compression::Gzip)),
            "0000000100000016000000B3.gz",
        ),
        (
            base.with_compression(Some(Compression::Lz4)).partial(),
            "0000000100000016000000B3.lz4.partial",
        ),
        (
            base.with_compression(Some(Compression::Zstd))
                .partial()
                .temporary(),
            "0000000100000016000000B3.zst.partial.tmp",
        ),
        (base.temporary(), "0000000100000016000000B3.tmp"),
    ];
    for (name, text) in cases {
        assert_eq!(name.to_string(), text);
        assert_eq!(parse(text, s), FileName::Segment(name));
    }
    let finished = cases[4].0.not_temporary().not_partial();
    assert_eq!(finished.to_string(), "0000000100000016000000B3.zst");
    assert_eq!(finished.plain(), base);
}

#[test]
fn history_names() {
    let h = HistoryName::new(tli(2));
    assert_eq!(h.to_string(), "00000002.history");
    assert_eq!(h.temporary().to_string(), "00000002.history.tmp");
    // pg_receivewal --compress=gzip (PostgreSQL 15) wrote exactly this name.
    let gz = h.with_compression(Some(Compression::Gzip));
    assert_eq!(gz.to_string(), "00000002.history.gz");
    assert_eq!(gz.temporary().to_string(), "00000002.history.gz.tmp");
    for name in [h, h.temporary(), gz, gz.temporary()] {
        let parsed = parse(&name.to_string(), WalSegSize::DEFAULT);
        assert_eq!(parsed, FileName::History(name));
        assert_eq!(parsed.is_temporary(), name.is_temporary());
        assert!(!parsed.is_partial());
    }
    assert_eq!(
        HistoryName::new(tli(0xDEAD_BEEF)).to_string(),
        "DEADBEEF.history"
    );
}

#[test]
fn backup_history_names_are_recognised() {
    let s = WalSegSize::DEFAULT;
    let parsed = parse("000000010000000000000002.00000028.backup", s);
    let b = parsed.as_backup_history().expect("a backup history name");
    assert_eq!(b.tli(), tli(1));
    assert_eq!(b.segno(), SegNo(2));
    assert_eq!(b.offset(), 0x28);
    assert_eq!(b.start_lsn(), "0/2000028".parse().unwrap());
    assert_eq!(b.compression(), None);
    assert_eq!(
        parsed.to_string(),
        "000000010000000000000002.00000028.backup"
    );
    assert!(!parsed.is_temporary());
    assert!(parsed.as_segment().is_none());

    let gz = parse("000000010000000000000002.00000028.backup.gz", s);
    assert_eq!(gz.compression(), Some(Compression::Gzip));
    assert_eq!(
        gz.to_string(),
        "000000010000000000000002.00000028.backup.gz"
    );

    assert!(matches!(
        FileName::parse("000000010000000000000002.01000000.backup", s),
        Err(NameError::BackupOffsetOutOfRange { .. })
    ));
    assert!(FileName::parse("000000010000000000000002.01000000.backup", size_mb(32)).is_ok());
}

#[test]
fn segment_field_range_depends_on_segment_size() {
    // 000000FF is the last segment of an xlogid at 16MB but does not exist at 32MB.
    let name = "0000000100000000000000FF";
    assert!(FileName::parse(name, WalSegSize::DEFAULT).is_ok());
    let err = FileName::parse(name, size_mb(32)).unwrap_err();
    assert_eq!(
        err,
        NameError::SegmentOutOfRange {
            name: name.into(),
            seg_size: size_mb(32),
            per_xlogid: 128,
        }
    );
    assert!(err.to_string().contains(name), "{err}");
    assert!(err.to_string().contains("32MB"), "{err}");
    assert!(FileName::parse("000000010000000000000FFF", WalSegSize::MIN).is_ok());
    assert!(FileName::parse("000000010000000000001000", WalSegSize::MIN).is_err());
    assert!(FileName::parse("000000010000000000000003", WalSegSize::MAX).is_ok());
    assert!(FileName::parse("000000010000000000000004", WalSegSize::MAX).is_err());
    assert!(
        FileName::parse(
            "000000010000000000000100.00000000.backup",
            WalSegSize::DEFAULT
        )
        .is_err()
    );
}

#[test]
fn rejects_what_postgres_would_not_write() {
    let s = WalSegSize::DEFAULT;
    for bad in [
        "",
        ".partial",
        ".tmp",
        ".gz",
        "00000001000000000000000a",
        "00000001000000000000000A.PARTIAL",
        "00000001000000000000000",
        "0000000100000000000000001",
        "00000001000000000000000G",
        "000000000000000000000001",
        "00000001000000000000000A.partial.gz",
        "00000001000000000000000A.tmp.partial",
        "00000001000000000000000A.gz.gz",
        "00000001000000000000000A.bz2",
        "00000001000000000000000A.zstd",
        "00000001000000000000000A.partial.partial",
        "00000001000000000000000A.tmp.tmp",
        "00000001000000000000000A.",
        " 00000001000000000000000A",
        "00000001000000000000000A ",
        "0000000é000000000000000A",
        "000000010000000000000é0A",
        "00000002.history.partial",
        "00000002.history.tmp.gz",
        "0000002.history",
        "000000002.history",
        "0000000a.history",
        "00000000.history",
        "00000002.HISTORY",
        "00000002history",
        "history",
        ".history",
        "000000010000000000000002.00000028.backup.tmp",
        "000000010000000000000002.00000028.backup.partial",
        "000000010000000000000002.0000028.backup",
        "000000010000000000000002_00000028.backup",
        "000000010000000000000002.0000002a.backup",
        "00000001000000000000002.00000028.backup",
        ".backup",
        "archive_status",
        "pg_wal",
        "backup_label",
        "xlogtemp.1234",
        "00000001000000000000000A.gz.partial/x",
    ] {
        let err = FileName::parse(bad, s).expect_err(bad);
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("{:?}", excerpt(bad))),
            "{bad:?}: {msg}"
        );
    }
}

#[test]
fn rejection_reasons_are_specific() {
    let s = WalSegSize::DEFAULT;
    let reason = |name: &str| match FileName::parse(name, s) {
        Err(NameError::Unrecognised { reason, .. }) => reason,
        other => panic!("{name:?}: {other:?}"),
    };
    assert!(reason("00000001000000000000000a").contains("upper-case"));
    assert!(reason("0000000a.history").contains("upper-case"));
    assert!(reason("000000000000000000000001").contains("timelines start at 1"));
    assert!(reason("00000002.history.partial").contains(".partial"));
}

#[test]
fn segment_numbers_past_the_last_position_have_no_name() {
    for s in WalSegSize::ALL {
        let last = s.max_segno();
        let name = SegmentName::new(tli(1), last, s).unwrap();
        assert_eq!(&name.to_string()[8..16], "FFFFFFFF");
        assert_eq!(name.end_lsn(), None);
        assert_eq!(
            SegmentName::new(tli(1), SegNo(last.0 + 1), s),
            Err(NameError::SegNoOutOfRange {
                segno: SegNo(last.0 + 1),
                seg_size: s
            })
        );
    }
}

#[test]
fn accessors_describe_the_segment() {
    let s = WalSegSize::DEFAULT;
    let lsn: Lsn = "16/B374D848".parse().unwrap();
    let name = SegmentName::containing(tli(3), lsn, s).with_compression(Some(Compression::Lz4));
    assert_eq!(name.tli(), tli(3));
    assert_eq!(name.segno(), SegNo(0x16B3));
    assert_eq!(name.seg_size(), s);
    assert_eq!(name.compression(), Some(Compression::Lz4));
    assert!(!name.is_partial());
    assert!(!name.is_temporary());
    assert_eq!(name.start_lsn(), "16/B3000000".parse().unwrap());
    assert_eq!(name.end_lsn(), Some("16/B4000000".parse().unwrap()));
    assert!(name.contains(lsn));
    assert!(!name.contains("16/B4000000".parse().unwrap()));
    let file = FileName::from(name.partial());
    assert!(file.is_partial());
    assert_eq!(file.tli(), tli(3));
    assert_eq!(file.compression(), Some(Compression::Lz4));
    assert_eq!(file.as_segment(), Some(&name.partial()));
    assert!(file.as_history().is_none());
    assert!(file.as_backup_history().is_none());
    assert_eq!(
        FileName::from(HistoryName::new(tli(3))).as_history(),
        Some(&HistoryName::new(tli(3)))
    );
}

#[test]
fn compression_names() {
    for c in Compression::ALL {
        assert_eq!(c.as_str().parse::<Compression>(), Ok(c));
        assert_eq!(c.to_string(), c.as_str());
        assert_eq!(
            Compression::strip_from(&format!("x{}", c.suffix())),
            ("x", Some(c))
        );
    }
    assert_eq!(
        "gz".parse::<Compression>(),
        Err(NameError::UnknownCompression { input: "gz".into() })
    );
    assert!("none".parse::<Compression>().is_err());
    assert!("GZIP".parse::<Compression>().is_err());
}

fn seg_size_strategy() -> impl Strategy<Value = WalSegSize> {
    (0usize..WalSegSize::ALL.len()).prop_map(|k| WalSegSize::ALL[k])
}

fn compression_strategy() -> impl Strategy<Value = Option<Compression>> {
    prop_oneof![
        Just(None),
        Just(Some(Compression::Gzip)),
        Just(Some(Compression::Lz4)),
        Just(Some(Compression::Zstd)),
    ]
}

fn segment_strategy() -> impl Strategy<Value = SegmentName> {
    (
        seg_size_strategy(),
        1u32..,
        any::<u64>(),
        compression_strategy(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(s, t, raw, c, partial, temporary)| {
            let segno = SegNo(raw % (s.max_segno().0 + 1));
            let mut name = SegmentName::new(tli(t), segno, s)
                .unwrap()
                .with_compression(c);
            if partial {
                name = name.partial();
            }
            if temporary {
                name = name.temporary();
            }
            name
        })
}

proptest! {
    #[test]
    fn segment_names_round_trip(name in segment_strategy()) {
        let text = name.to_string();
        prop_assert_eq!(FileName::parse(&text, name.seg_size()), Ok(FileName::Segment(name)));
        prop_assert!(text.is_ascii());
        prop_assert_eq!(text.get(..24).map(|p| p.len()), Some(24));
    }

    #[test]
    fn segment_name_of_an_lsn_contains_it(s in seg_size_strategy(), t in 1u32.., v in any::<u64>()) {
        let lsn = Lsn(v);
        let name = SegmentName::containing(tli(t), lsn, s);
        prop_assert!(name.contains(lsn));
        prop_assert_eq!(name.start_lsn(), lsn.segment_start(s));
        prop_assert_eq!(FileName::parse(&name.to_string(), s), Ok(FileName::Segment(name)));
    }

    #[test]
    fn history_names_round_trip(
        s in seg_size_strategy(), t in 1u32.., c in compression_strategy(), temporary in any::<bool>()
    ) {
        let mut name = HistoryName::new(tli(t)).with_compression(c);
        if temporary {
            name = name.temporary();
        }
        prop_assert_eq!(FileName::parse(&name.to_string(), s), Ok(FileName::History(name)));
    }

    #[test]
    fn backup_history_names_round_trip(
        seg in segment_strategy(), raw_offset in any::<u32>()
    ) {
        let s = seg.seg_size();
        let name = BackupHistoryName {
            segment: seg.not_partial().not_temporary(),
            offset: raw_offset % s.bytes(),
        };
        let text = name.to_string();
        prop_assert_eq!(FileName::parse(&text, s), Ok(FileName::BackupHistory(name)));
    }

    #[test]
    fn parse_never_panics(s in ".{0,48}", k in 0usize..11) {
        let _ = FileName::parse(&s, WalSegSize::ALL[k]);
    }

    #[test]
    fn parse_never_panics_on_near_misses(
        s in "[0-9A-Fa-f.é]{0,30}(\\.gz|\\.lz4|\\.zst|\\.history|\\.backup|\\.partial|\\.tmp){0,4}",
        k in 0usize..11,
    ) {
        if let Ok(parsed) = FileName::parse(&s, WalSegSize::ALL[k]) {
            // Whatever parses must print back exactly as it was written.
            prop_assert_eq!(parsed.to_string(), s);
        }
    }

    #[test]
    fn lower_case_names_never_parse(name in segment_strategy()) {
        let text = name.to_string();
        let lower = text.to_lowercase();
        prop_assume!(lower.get(..24) != text.get(..24));
        prop_assert!(FileName::parse(&lower, name.seg_size()).is_err());
    }
}

proptest! {
    #[test]
    fn mutated_names_parse_back_exactly_or_not_at_all(
        name in segment_strategy(), at in any::<prop::sample::Index>(), c in any::<char>(), op in 0u8..3
    ) {
        let mut chars: Vec<char> = name.to_string().chars().collect();
        let i = at.index(chars.len() + 1);
        match op {
            0 => chars.insert(i, c),
            1 if i < chars.len() => { chars.remove(i); }
            _ if i < chars.len() => chars[i] = c,
            _ => chars.push(c),
        }
        let mutated: String = chars.into_iter().collect();
        if let Ok(parsed) = FileName::parse(&mutated, name.seg_size()) {
            prop_assert_eq!(parsed.to_string(), mutated);
        }
    }
}
