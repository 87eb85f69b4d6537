//! Tests for the incremental decoder, on WAL laid out by the test writer in the shapes that
//! matter: records crossing pages and segments, a start inside a record, switch padding,
//! overwritten continuations, every validation failure, and the end of WAL.

use proptest::prelude::*;

use super::*;
use crate::testutil::{Body, Image, PAGE, SYSID, WalWriter, noop_body, rel};

const SEG: WalSegSize = WalSegSize::MIN; // 1 MiB: segment crossings stay cheap
const START: Lsn = Lsn(0x0100_0000);

fn writer() -> WalWriter {
    WalWriter::new(PgMajor::V15, SEG, START)
}

fn decoder() -> WalDecoder {
    WalDecoder::new(START, SEG, Expectations::default()).unwrap()
}

/// Feeds everything, finishes, and collects records until the end or an error.
fn decode_all(mut dec: WalDecoder, bytes: &[u8]) -> (Vec<Record>, Result<EndOfWal, DecodeError>) {
    dec.feed(bytes);
    dec.finish();
    let mut records = Vec::new();
    loop {
        match dec.next() {
            Ok(Some(r)) => records.push(r),
            Ok(None) => return (records, Ok(dec.end_of_wal().cloned().unwrap())),
            Err(e) => return (records, Err(e)),
        }
    }
}

/// Feeds everything without finishing (more may come) and collects records until the
/// decoder needs more bytes or fails.
fn decode_open(bytes: &[u8]) -> (Vec<Record>, Option<DecodeError>) {
    let mut dec = decoder();
    dec.feed(bytes);
    let mut records = Vec::new();
    loop {
        match dec.next() {
            Ok(Some(r)) => records.push(r),
            Ok(None) => return (records, None),
            Err(e) => return (records, Some(e)),
        }
    }
}

/// Collects records fed in the given chunk sizes (cycled), then finishes.
fn decode_chunked(
    mut dec: WalDecoder,
    bytes: &[u8],
    chunks: &[usize],
) -> (Vec<Record>, Result<EndOfWal, DecodeError>) {
    let mut records = Vec::new();
    let mut rest = bytes;
    let mut sizes = chunks.iter().cycle();
    while !rest.is_empty() {
        let n = (*sizes.next().unwrap()).clamp(1, rest.len());
        let (now, later) = rest.split_at(n);
        rest = later;
        dec.feed(now);
        loop {
            match dec.next() {
                Ok(Some(r)) => records.push(r),
                Ok(None) => break,
                Err(e) => return (records, Err(e)),
            }
        }
    }
    dec.finish();
    loop {
        match dec.next() {
            Ok(Some(r)) => records.push(r),
            Ok(None) => return (records, Ok(dec.end_of_wal().cloned().unwrap())),
            Err(e) => return (records, Err(e)),
        }
    }
}

fn kind_of(result: Result<EndOfWal, DecodeError>) -> DecodeErrorKind {
    result.expect_err("expected a decode error").kind
}

#[test]
fn decodes_fields_blocks_and_main_data() {
    let mut w = writer();
    let image = Image {
        info: 0x01 | 0x02, // has hole, apply (15)
        hole_offset: 100,
        hole_length: None,
        bytes: vec![0xAB; 8192 - 4000],
    };
    let body = Body::new()
        .block(0, 0, Some(rel(5, 16384)), 7, Some(image), b"blockdata")
        .block(1, 2, None, 8, None, &[])
        .block(3, 1, Some(rel(5, 16400)), 9, None, b"x")
        .origin(4)
        .toplevel_xid(900)
        .main(b"main data")
        .build();
    let first = w.noop(40);
    let lsn = w.record(10, 0x00, 901, &body);
    let (records, end) = decode_all(decoder(), &w.out);
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].lsn, first);
    let r = &records[1];
    assert_eq!(r.lsn, lsn);
    assert_eq!(r.prev(), first);
    assert_eq!((r.rmid(), r.info(), r.xid()), (10, 0x00, 901));
    assert_eq!(r.total_len() as usize, 24 + body.len());
    assert_eq!(r.main_data(), b"main data");
    assert_eq!((r.origin, r.toplevel_xid), (Some(4), Some(900)));
    assert_eq!(r.blocks.len(), 3);
    let b0 = &r.blocks[0];
    assert_eq!((b0.id, b0.locator, b0.block), (0, rel(5, 16384), 7));
    assert_eq!(r.block_data(b0), b"blockdata");
    let img = b0.image.as_ref().unwrap();
    assert_eq!(
        (img.len, img.hole_offset, img.hole_length),
        (4192, 100, 4000)
    );
    assert!(img.apply);
    assert_eq!(img.compression, crate::record::ImageCompression::None);
    assert_eq!(r.image_data(b0).unwrap().len(), 4192);
    let b1 = &r.blocks[1];
    assert_eq!(
        (b1.id, b1.locator, b1.fork(), b1.block),
        (
            1,
            rel(5, 16384),
            crate::record::ForkNumber::VISIBILITY_MAP,
            8
        )
    );
    assert!(!b1.has_data() && b1.image.is_none());
    assert_eq!(r.blocks[2].id, 3);
    assert_eq!(r.block_data(&r.blocks[2]), b"x");
    assert!(r.block(2).is_none());
    assert_eq!(r.fpi_len(), 4192);
    assert_eq!(r.rec_len(), r.total_len() - 4192);
    assert_eq!(r.end, Lsn((w.pos().0 + 7) & !7));
    let end = end.unwrap();
    assert_eq!(end.reason, EndReason::InputEnded);
    assert_eq!(end.lsn, r.end);
}

#[test]
fn records_cross_pages_and_segments() {
    let mut w = writer();
    let mut lsns = Vec::new();
    // Enough records of awkward sizes to cross many pages and one segment boundary,
    // including headers split across pages.
    let sizes = [27, 8000, 30, 20_000, 8170, 28, 100_000, 9000, 33, 65_000];
    while w.pos().0 < START.0 + SEG.as_u64() + 3 * PAGE {
        for &s in &sizes {
            lsns.push(w.noop(s));
        }
    }
    let (records, end) = decode_all(decoder(), &w.out);
    assert_eq!(records.iter().map(|r| r.lsn).collect::<Vec<_>>(), lsns);
    for (r, s) in records.iter().zip(sizes.iter().cycle()) {
        assert_eq!(r.total_len() as usize, *s);
        assert_eq!(
            r.main_data(),
            Record::decode(PgMajor::V15, r.lsn, r.raw().to_vec())
                .unwrap()
                .main_data()
        );
    }
    assert_eq!(end.unwrap().reason, EndReason::InputEnded);
}

#[test]
fn record_header_split_across_a_page_boundary() {
    let mut w = writer();
    // Leave exactly 8 bytes on the first page: only xl_tot_len and xl_xid fit.
    let first_room = PAGE as usize - 40;
    w.noop(first_room - 8);
    let split = w.noop(200);
    assert_eq!(split.0 % PAGE, PAGE - 8);
    w.noop(50);
    let (records, end) = decode_all(decoder(), &w.out);
    assert_eq!(records.len(), 3);
    assert_eq!(records[1].lsn, split);
    assert_eq!(records[1].total_len(), 200);
    assert!(end.is_ok());
}

#[test]
fn record_ending_exactly_at_a_page_end() {
    let mut w = writer();
    w.noop(PAGE as usize - 40);
    let next = w.noop(64);
    assert_eq!(next.0, START.0 + PAGE + 24);
    let (records, _) = decode_all(decoder(), &w.out);
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].end, Lsn(START.0 + PAGE));
    assert_eq!(records[1].lsn, next);
}

#[test]
fn starting_inside_a_record_skips_its_continuation() {
    let mut w = writer();
    w.noop(100);
    let long = w.noop(3 * PAGE as usize); // spans pages 0..3
    let after = w.noop(80);
    w.noop(90);
    assert!(long.0 < START.0 + PAGE);
    // Start on page 1 and on page 2: both begin in the middle of `long`.
    for page in 1..=2 {
        let start = Lsn(START.0 + page * PAGE);
        let offset = (page * PAGE) as usize;
        let dec = WalDecoder::new(start, SEG, Expectations::default()).unwrap();
        let (records, end) = decode_all(dec, &w.out[offset..]);
        assert_eq!(records.first().map(|r| r.lsn), Some(after), "page {page}");
        assert_eq!(records.len(), 2);
        assert!(end.is_ok());
    }
}

#[test]
fn starting_at_a_page_whose_continuation_fills_it() {
    let mut w = writer();
    w.noop(100);
    // A record whose remainder on page 1 exactly fills it: the first record after it
    // starts on page 2, after a header without the continuation flag.
    let room0 = PAGE as usize - 40 - 104;
    let room1 = PAGE as usize - 24;
    w.noop(room0 + room1);
    let after = w.noop(64);
    assert_eq!(after.0, START.0 + 2 * PAGE + 24);
    let dec = WalDecoder::new(Lsn(START.0 + PAGE), SEG, Expectations::default()).unwrap();
    let (records, _) = decode_all(dec, &w.out[PAGE as usize..]);
    assert_eq!(records.first().map(|r| r.lsn), Some(after));
}

#[test]
fn first_record_prev_link_must_point_backwards_or_match_expectation() {
    let mut w = writer();
    w.prev = Lsn(START.0 + 0x1_0000); // a "previous" record after this one
    w.noop(40);
    let (_, err) = decode_open(&w.out);
    assert!(matches!(
        err.unwrap().kind,
        DecodeErrorKind::PrevLinkNotBefore { .. }
    ));

    let mut w = writer();
    let prev = w.prev;
    w.noop(40);
    let dec = WalDecoder::new(START, SEG, Expectations::default().with_prev(prev)).unwrap();
    assert_eq!(decode_all(dec, &w.out).0.len(), 1);
    let mut dec = WalDecoder::new(START, SEG, Expectations::default().with_prev(Lsn(1))).unwrap();
    dec.feed(&w.out);
    assert!(matches!(
        dec.next().unwrap_err().kind,
        DecodeErrorKind::PrevLinkMismatch { .. }
    ));
}

#[test]
fn broken_prev_chain_is_an_error() {
    let mut w = writer();
    w.noop(40);
    w.prev = Lsn(0x42);
    let bad = w.noop(40);
    let (records, err) = decode_open(&w.out);
    assert_eq!(records.len(), 1);
    let err = err.unwrap();
    assert_eq!(err.lsn, bad);
    assert_eq!(
        err.kind,
        DecodeErrorKind::PrevLinkMismatch {
            found: Lsn(0x42),
            expected: records[0].lsn
        }
    );
}

#[test]
fn crc_mismatch_names_both_values() {
    let mut w = writer();
    let lsn = w.noop(64);
    w.noop(64);
    // Flip a main-data byte of the first record (before a valid second page would exist,
    // so add pages after to make it corruption rather than a torn tail).
    let at = (lsn.0 - START.0) as usize + 40;
    w.out[at] ^= 0xFF;
    while w.pos().0 < START.0 + 2 * PAGE {
        w.noop(1000);
    }
    let (records, end) = decode_all(decoder(), &w.out);
    assert!(records.is_empty());
    let err = end.unwrap_err();
    assert_eq!(err.lsn, lsn);
    match err.kind {
        DecodeErrorKind::CrcMismatch { expected, got } => assert_ne!(expected, got),
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with("incorrect resource manager data checksum")
    );
}

#[test]
fn page_header_failures() {
    let base = {
        let mut w = writer();
        while w.pos().0 < START.0 + 3 * PAGE {
            w.noop(500);
        }
        w
    };
    let page1 = PAGE as usize;
    type Case<'a> = (
        Box<dyn Fn(&mut Vec<u8>) + 'a>,
        Expectations,
        fn(&DecodeErrorKind) -> bool,
    );
    let cases: Vec<Case> = vec![
        (
            Box::new(|b| b[page1] = 0x0D), // magic D10D: 14's
            Expectations::default(),
            |k| {
                matches!(
                    k,
                    DecodeErrorKind::PageMagic {
                        found: 0xD10D,
                        expected: 0xD110
                    }
                )
            },
        ),
        (Box::new(|b| b[0] = 0x06), Expectations::default(), |k| {
            matches!(k, DecodeErrorKind::UnknownMagic { found: 0xD106 })
        }),
        (
            Box::new(|_| {}),
            Expectations::default().with_major(PgMajor::V16),
            |k| {
                matches!(
                    k,
                    DecodeErrorKind::PageMagic {
                        found: 0xD110,
                        expected: 0xD113
                    }
                )
            },
        ),
        (
            Box::new(|b| b[page1 + 2] |= 0x10),
            Expectations::default(),
            |k| matches!(k, DecodeErrorKind::PageInfoBits { .. }),
        ),
        (
            Box::new(|b| b[2] &= !0x02), // segment start without long header
            Expectations::default(),
            |k| matches!(k, DecodeErrorKind::MissingLongHeader { .. }),
        ),
        (
            Box::new(|_| {}),
            Expectations::default().with_system_id(SYSID + 1),
            |k| matches!(k, DecodeErrorKind::SystemIdMismatch { found: SYSID, .. }),
        ),
        (
            Box::new(|b| b[34] = 0x20), // seg size 2 MiB in the long header
            Expectations::default(),
            |k| {
                matches!(
                    k,
                    DecodeErrorKind::SegmentSizeMismatch {
                        found: 0x20_0000,
                        ..
                    }
                )
            },
        ),
        (
            Box::new(|b| b[37] = 0x40), // blcksz 16 KiB
            Expectations::default(),
            |k| matches!(k, DecodeErrorKind::BlockSizeMismatch { found: 0x4000 }),
        ),
        (
            Box::new(|b| b[page1 + 9] ^= 0x01), // pageaddr off by 256
            Expectations::default(),
            |k| matches!(k, DecodeErrorKind::PageAddrMismatch { .. }),
        ),
        (
            Box::new(|b| b[4] = 2), // first page on timeline 2, the next on 1
            Expectations::default(),
            |k| {
                matches!(
                    k,
                    DecodeErrorKind::TimelineBackwards {
                        found: 1,
                        previous: 2
                    }
                )
            },
        ),
        (
            Box::new(|b| b[page1 + 4] = 3),
            Expectations::default().with_timeline(TimeLineId::new(2).unwrap()),
            |k| matches!(k, DecodeErrorKind::TimelineAhead { found: 3, max: 2 }),
        ),
    ];
    for (i, (mutate, expect, check)) in cases.into_iter().enumerate() {
        let mut bytes = base.out.clone();
        mutate(&mut bytes);
        let dec = WalDecoder::new(START, SEG, expect).unwrap();
        let (_, end) = decode_all(dec, &bytes);
        let err = end.expect_err(&format!("case {i}"));
        assert!(check(&err.kind), "case {i}: {err:?}");
        assert!(err.is_page_error(), "case {i}");
    }
}

#[test]
fn timelines_may_increase_and_learned_identity_is_enforced() {
    let mut w = writer();
    while w.pos().0 < START.0 + 2 * PAGE {
        w.noop(700);
    }
    w.tli = 2; // the pages after a promotion
    while w.pos().0 < START.0 + 4 * PAGE {
        w.noop(700);
    }
    let mut dec = decoder();
    dec.feed(&w.out);
    while dec.next().unwrap().is_some() {}
    assert_eq!(dec.page_timeline(), 2);
    assert_eq!(dec.system_id(), Some(SYSID));
    assert_eq!(dec.major(), Some(PgMajor::V15));
}

#[test]
fn page_timelines_must_be_in_the_history() {
    use crate::history::TimelineHistory;
    let mut w = writer();
    w.noop(100);
    w.tli = 2;
    while w.pos().0 < START.0 + 2 * PAGE {
        w.noop(700);
    }
    w.tli = 3;
    while w.pos().0 < START.0 + 4 * PAGE {
        w.noop(700);
    }
    let three = TimeLineId::new(3).unwrap();
    // 3 forked from 1: pages of timeline 2 do not belong.
    let history = TimelineHistory::parse(three, b"1\t0/1002000\tforked\n").unwrap();
    let dec = WalDecoder::new(START, SEG, Expectations::default().with_history(history)).unwrap();
    let err = decode_all(dec, &w.out).1.unwrap_err();
    assert_eq!(
        err.kind,
        DecodeErrorKind::TimelineNotInHistory {
            found: 2,
            target: 3
        }
    );
    let history = TimelineHistory::parse(
        three,
        b"1\t0/1001000\tno recovery target specified\n2\t0/1003000\tno recovery target specified\n",
    )
    .unwrap();
    let dec = WalDecoder::new(START, SEG, Expectations::default().with_history(history)).unwrap();
    assert!(decode_all(dec, &w.out).1.is_ok());
}

#[test]
fn continuation_flag_and_length_are_checked() {
    let mut w = writer();
    w.noop(100);
    let long = w.noop(2 * PAGE as usize);
    while w.pos().0 < START.0 + 4 * PAGE {
        w.noop(600);
    }
    let page1 = PAGE as usize;
    let mut no_flag = w.out.clone();
    no_flag[page1 + 2] &= !0x01;
    let err = decode_all(decoder(), &no_flag).1.unwrap_err();
    assert_eq!(err.lsn, long);
    assert!(
        matches!(err.kind, DecodeErrorKind::ContrecordMissing { page } if page.0 == START.0 + PAGE)
    );

    let mut bad_len = w.out.clone();
    bad_len[page1 + 16] ^= 0x04;
    let err = decode_all(decoder(), &bad_len).1.unwrap_err();
    assert!(
        matches!(err.kind, DecodeErrorKind::ContrecordLength { .. }),
        "{err:?}"
    );
}

#[test]
fn a_page_continuing_nothing_is_an_error() {
    let mut w = writer();
    w.noop(PAGE as usize - 40); // ends exactly at the page end
    w.noop(64);
    while w.pos().0 < START.0 + 3 * PAGE {
        w.noop(900);
    }
    w.out[PAGE as usize + 2] |= 0x01;
    let err = decode_all(decoder(), &w.out).1.unwrap_err();
    assert_eq!(err.kind, DecodeErrorKind::UnexpectedContrecord);
}

#[test]
fn overwritten_continuation_restarts_at_the_page() {
    let mut w = writer();
    let before = w.noop(100);
    // A record that should continue on page 1, but the server crashed and wrote an
    // OVERWRITE_CONTRECORD record there instead.
    let aborted_bytes = w.raw_record(0, 0x20, 0, &noop_body(10_000));
    let room = (PAGE - ((w.pos().0 + 7) & !7) % PAGE) as usize;
    let aborted = w.put_record(&aborted_bytes[..room]);
    assert_eq!(w.pos().0, START.0 + PAGE);
    w.prev = before;
    let mut main = aborted.0.to_le_bytes().to_vec();
    main.extend_from_slice(&777_000_000i64.to_le_bytes());
    let overwrite = w.raw_record(0, 0xD0, 0, &Body::new().main(&main).build());
    // The page header the server writes at the missing continuation.
    w.out.extend_from_slice(&PgMajor::V15.magic().to_le_bytes());
    w.out.extend_from_slice(&0x0008u16.to_le_bytes());
    w.out.extend_from_slice(&1u32.to_le_bytes());
    w.out.extend_from_slice(&(START.0 + PAGE).to_le_bytes());
    w.out.extend_from_slice(&[0; 8]);
    let ow = w.put_record(&overwrite);
    let next = w.noop(50);
    let (records, end) = decode_all(decoder(), &w.out);
    let lsns: Vec<Lsn> = records.iter().map(|r| r.lsn).collect();
    assert_eq!(lsns, vec![before, ow, next]);
    assert_eq!(records[1].aborted_record, Some(aborted));
    assert_eq!(records[2].aborted_record, None);
    assert!(end.is_ok());
    assert_eq!(
        crate::dump::format_record(PgMajor::V15, &records[1]),
        format!(
            "rmgr: XLOG        len (rec/tot):     42/    42, tx:          0, lsn: {ow:#}, prev {before:#}, desc: OVERWRITE_CONTRECORD lsn {}; time 2000-01-01 00:12:57.000000 UTC",
            crate::desc::LsnText(aborted.0)
        )
    );
}

#[test]
fn switch_skips_to_the_next_segment() {
    let mut w = writer();
    w.noop(100);
    let switch = w.switch();
    let next = w.noop(64);
    assert_eq!(next.0, START.0 + SEG.as_u64() + 40);
    let (records, end) = decode_all(decoder(), &w.out);
    assert_eq!(records.len(), 3);
    assert_eq!(records[1].lsn, switch);
    assert_eq!(records[1].end, Lsn(START.0 + SEG.as_u64()));
    assert_eq!(records[2].lsn, next);
    assert_eq!(end.unwrap().lsn, records[2].end);

    // A finished stream that stops in the padding ends at the next segment.
    let cut = (switch.0 - START.0) as usize + 5 * PAGE as usize;
    let (records, end) = decode_all(decoder(), &w.out[..cut]);
    assert_eq!(records.len(), 2);
    assert_eq!(
        end.unwrap(),
        EndOfWal {
            lsn: Lsn(START.0 + SEG.as_u64()),
            reason: EndReason::InputEnded
        }
    );
}

#[test]
fn zeros_are_the_end_once_finished_and_corruption_if_data_follows() {
    let mut w = writer();
    w.noop(100);
    let last = w.noop(3000);
    let end_lsn = Lsn((w.pos().0 + 7) & !7);
    w.zero_fill_segment();

    // More may come: zeros are neither records nor errors.
    let mut dec = decoder();
    dec.feed(&w.out);
    assert_eq!(dec.next().unwrap().map(|r| r.lsn), Some(Lsn(START.0 + 40)));
    assert_eq!(dec.next().unwrap().map(|r| r.lsn), Some(last));
    assert_eq!(dec.next().unwrap(), None);
    assert!(dec.end_of_wal().is_none());
    dec.finish();
    assert_eq!(dec.next().unwrap(), None);
    assert_eq!(
        dec.end_of_wal(),
        Some(&EndOfWal {
            lsn: end_lsn,
            reason: EndReason::Zeros
        })
    );

    // Non-zero bytes after the zeros, in a later page with a valid header: corruption.
    let mut w2 = writer();
    w2.noop(100);
    w2.out.extend_from_slice(&[0; 100]);
    while !w2.out.len().is_multiple_of(PAGE as usize) {
        w2.out.push(0);
    }
    w2.noop(64);
    let mut dec = decoder();
    dec.feed(&w2.out);
    assert!(dec.next().unwrap().is_some());
    let err = dec.next().unwrap_err();
    assert_eq!(err.kind, DecodeErrorKind::RecordTooShort { tot_len: 0 });
}

#[test]
fn a_zero_page_inside_a_record_is_the_end_once_finished() {
    let mut w = writer();
    w.noop(100);
    let long = w.noop(3 * PAGE as usize);
    w.out.truncate(PAGE as usize + 100);
    w.out.resize(4 * PAGE as usize, 0); // pages 2 and 3 never written
    let (records, end) = decode_all(decoder(), &w.out);
    assert_eq!(records.len(), 1);
    assert_eq!(
        end.unwrap(),
        EndOfWal {
            lsn: long,
            reason: EndReason::Zeros
        }
    );
}

#[test]
fn incomplete_input_is_need_more_then_the_end() {
    let mut w = writer();
    w.noop(100);
    let partial = w.noop(5000);
    let cut = (partial.0 - START.0) as usize + 100;
    let mut dec = decoder();
    dec.feed(&w.out[..cut]);
    assert!(dec.next().unwrap().is_some());
    assert_eq!(dec.next().unwrap(), None);
    assert_eq!(dec.input_position(), Lsn(START.0 + cut as u64));
    dec.finish();
    assert_eq!(dec.next().unwrap(), None);
    assert_eq!(
        dec.end_of_wal(),
        Some(&EndOfWal {
            lsn: partial,
            reason: EndReason::Incomplete
        })
    );
    // A page header cut short.
    let (records, end) = decode_all(decoder(), &w.out[..10]);
    assert!(records.is_empty());
    assert_eq!(end.unwrap().reason, EndReason::Incomplete);
    // A few zeros where the next record should start.
    let mut w = writer();
    let last = w.noop(100);
    let mut bytes = w.out.clone();
    bytes.extend_from_slice(&[0; 12]);
    let (records, end) = decode_all(decoder(), &bytes);
    assert_eq!(records.last().map(|r| r.lsn), Some(last));
    assert_eq!(end.unwrap().reason, EndReason::Zeros);
    // Nothing at all.
    let (_, end) = decode_all(decoder(), &[]);
    assert_eq!(
        end.unwrap(),
        EndOfWal {
            lsn: START,
            reason: EndReason::InputEnded
        }
    );
}

#[test]
fn torn_tail_is_the_end_but_a_torn_middle_is_corruption() {
    let mut w = writer();
    w.noop(100);
    let torn = w.noop(2000);
    let at = (torn.0 - START.0) as usize + 1500;
    let mut tail = w.out.clone();
    tail[at] ^= 0x55;
    tail.resize(2 * PAGE as usize, 0);
    // While more may come, the bad record is an error...
    let mut dec = decoder();
    dec.feed(&tail);
    assert!(dec.next().unwrap().is_some());
    let err = dec.next().unwrap_err();
    assert!(matches!(err.kind, DecodeErrorKind::CrcMismatch { .. }));
    assert_eq!(dec.next().unwrap_err(), err, "errors are sticky");
    // ...and once the stream is known to end there, it is the end of WAL.
    dec.finish();
    assert_eq!(dec.next().unwrap(), None);
    assert_eq!(
        dec.end_of_wal(),
        Some(&EndOfWal {
            lsn: torn,
            reason: EndReason::Invalid(err.clone())
        })
    );

    // The same damage with valid pages after it is corruption even when finished.
    let mut middle = w.clone();
    while middle.pos().0 < START.0 + 3 * PAGE {
        middle.noop(1000);
    }
    middle.out[at] ^= 0x55;
    let (_, end) = decode_all(decoder(), &middle.out);
    assert!(matches!(kind_of(end), DecodeErrorKind::CrcMismatch { .. }));
}

#[test]
fn recycled_pages_after_the_end_are_not_corruption() {
    let mut old = WalWriter::new(PgMajor::V15, SEG, START);
    old.start = Lsn(START.0 - SEG.as_u64()); // a segment written one cycle earlier
    while old.pos().0 < START.0 - SEG.as_u64() + 4 * PAGE {
        old.noop(900);
    }
    let mut w = writer();
    w.noop(100);
    let last = w.noop(300);
    let end = (w.pos().0 + 7) & !7;
    let mut bytes = w.out.clone();
    bytes.resize(PAGE as usize, 0xEE); // garbage after the last record on its page
    bytes.extend_from_slice(&old.out[PAGE as usize..4 * PAGE as usize]);
    let (records, eow) = decode_all(decoder(), &bytes);
    assert_eq!(records.last().map(|r| r.lsn), Some(last));
    let eow = eow.unwrap();
    assert_eq!(eow.lsn, Lsn(end));
    assert!(matches!(eow.reason, EndReason::Invalid(_)));
}

#[test]
fn record_level_validation_failures() {
    let cases: Vec<(Vec<u8>, DecodeErrorKind)> = vec![
        // rmid 22 does not exist; 200 is custom (valid from 15).
        (
            Body::new().main(b"x").build(),
            DecodeErrorKind::InvalidRmgr { rmid: 22 },
        ),
    ];
    for (body, want) in cases {
        let mut w = writer();
        w.record(22, 0, 0, &body);
        while w.pos().0 < START.0 + 2 * PAGE {
            w.noop(1000);
        }
        assert_eq!(kind_of(decode_all(decoder(), &w.out).1), want);
    }
    let mut w = writer();
    w.record(200, 0, 0, &[]);
    assert_eq!(decode_all(decoder(), &w.out).0.len(), 1);
    let mut w = WalWriter::new(PgMajor::V14, SEG, START);
    w.record(200, 0, 0, &[]);
    w.noop(9000);
    assert_eq!(
        kind_of(decode_all(decoder(), &w.out).1),
        DecodeErrorKind::InvalidRmgr { rmid: 200 }
    );

    // xl_tot_len below the header size, non-zero header.
    let mut w = writer();
    let mut rec = w.raw_record(0, 0x20, 0, &[]);
    rec[0] = 10;
    w.put_record(&rec);
    w.out.resize(2 * PAGE as usize, 0);
    w.noop(100);
    assert_eq!(
        kind_of(decode_all(decoder(), &w.out).1),
        DecodeErrorKind::RecordTooShort { tot_len: 10 }
    );

    // Over the configured limit (while more may come: an error).
    let mut w = writer();
    w.noop(5000);
    let mut dec = WalDecoder::new(
        START,
        SEG,
        Expectations::default().with_max_record_len(4096),
    )
    .unwrap();
    dec.feed(&w.out);
    assert_eq!(
        dec.next().unwrap_err().kind,
        DecodeErrorKind::RecordTooLong {
            tot_len: 5000,
            max: 4096
        }
    );
}

#[test]
fn start_must_be_page_aligned() {
    let err = WalDecoder::new(Lsn(START.0 + 40), SEG, Expectations::default()).unwrap_err();
    assert_eq!(err.kind, DecodeErrorKind::StartNotPageAligned);
    assert_eq!(
        err.to_string(),
        "decoding must start at a page boundary at 0/1000028"
    );
}

#[test]
fn memory_does_not_keep_consumed_pages() {
    let mut w = writer();
    while w.pos().0 < START.0 + SEG.as_u64() {
        w.noop(700);
    }
    let mut dec = decoder();
    let mut max_buffered = 0;
    for chunk in w.out.chunks(PAGE as usize) {
        dec.feed(chunk);
        while dec.next().unwrap().is_some() {}
        max_buffered = max_buffered.max(dec.buf.capacity());
    }
    assert!(max_buffered <= 4 * PAGE as usize, "{max_buffered}");
}

fn sample_wal() -> Vec<u8> {
    let mut w = writer();
    let sizes = [27, 8000, 30, 20_000, 8170, 28, 9000, 33, 1000, 64];
    for &s in &sizes {
        w.noop(s);
    }
    w.switch();
    for &s in sizes.iter().rev() {
        w.noop(s);
    }
    let mut out = w.out;
    out.extend_from_slice(&[0; 5000]);
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Any split of the input into `feed` calls yields the same records and the same end.
    #[test]
    fn any_chunking_yields_the_same_records(chunks in proptest::collection::vec(1usize..20_000, 1..40)) {
        let wal = sample_wal();
        let (expected, expected_end) = decode_all(decoder(), &wal);
        let (records, end) = decode_chunked(decoder(), &wal, &chunks);
        prop_assert_eq!(records, expected);
        prop_assert_eq!(end, expected_end);
    }

    /// Arbitrary bytes never panic the decoder, fed any way.
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..3000)) {
        crate::fuzz::decode_arbitrary(&data);
        crate::fuzz::decode_record_arbitrary(&data);
    }

    /// Damaging any single byte of valid WAL never panics, and never yields a record that
    /// was not written (a different position or contents).
    #[test]
    fn single_byte_damage_is_detected_or_harmless(at in 0usize..40_000, xor in 1u8..=255) {
        let wal = sample_wal();
        let (good, _) = decode_all(decoder(), &wal);
        let mut bad = wal.clone();
        if let Some(b) = bad.get_mut(at) {
            *b ^= xor;
        }
        let (records, _) = decode_all(decoder(), &bad);
        for r in &records {
            prop_assert!(good.iter().any(|g| g.lsn == r.lsn && g.raw() == r.raw()));
        }
    }
}
