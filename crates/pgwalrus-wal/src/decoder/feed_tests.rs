//! Tests that decoding in place ([`WalDecoder::feed_borrowed`], `next_checked`) is the same
//! as decoding copies ([`WalDecoder::feed`], `next`) — records, errors and the end of WAL —
//! whatever the chunking and mix of the two, on valid and damaged WAL; and that equal
//! [`SyncPoint`]s mean equal decoding from there on.

use proptest::prelude::*;

use super::*;
use crate::testutil::{Body, Image, PAGE, WalWriter, rel};

const SEG: WalSegSize = WalSegSize::MIN;
const START: Lsn = Lsn(0x0100_0000);

fn decoder() -> WalDecoder {
    WalDecoder::new(START, SEG, Expectations::default()).unwrap()
}

/// Two segments and a bit of varied WAL: short records, full-page images, records
/// crossing pages and the segment boundary, a header split by a page end, a switch.
fn varied_wal() -> Vec<u8> {
    let mut w = WalWriter::new(PgMajor::V15, SEG, START);
    let mut i = 0u32;
    while w.pos().0 < START.0 + SEG.as_u64() + 5 * PAGE {
        i += 1;
        match i % 9 {
            0 => {
                let image = Image {
                    info: 0x03,
                    hole_offset: 300,
                    hole_length: None,
                    bytes: vec![0x11; 8192 - 1000],
                };
                let body = Body::new()
                    .block(0, 0, Some(rel(5, 16_384)), i, Some(image), &[])
                    .main(b"fpi")
                    .build();
                w.record(10, 0x00, i, &body);
            }
            3 => {
                w.noop(9000 + (i as usize * 37) % 5000);
            }
            _ => {
                let data = vec![i as u8; 10 + (i as usize * 13) % 90];
                let body = Body::new()
                    .block(0, 0, Some(rel(5, 16_384)), i, None, &data)
                    .main(&[1, 2, 3])
                    .build();
                w.record(10, 0x00, i, &body);
            }
        }
        if i == 40 {
            // Leave 8 bytes on the page: the next header is split by the page end.
            let room = PAGE - w.pos().0 % PAGE;
            if room > 64 {
                w.noop(room as usize - 8 - 8);
            }
        }
    }
    w.switch();
    for s in [30, 200, 8100] {
        w.noop(s);
    }
    let mut out = w.out;
    out.extend_from_slice(&[0; 3000]);
    out
}

/// What a decoder reports: each record (position, end, bytes, aborted record), then the
/// first error or the end of WAL.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Record(Lsn, Lsn, Vec<u8>, Option<Lsn>),
    Error(DecodeError),
    End(Option<EndOfWal>),
}

/// How a piece of input is given.
#[derive(Debug, Clone, Copy)]
enum How {
    Copied,
    Borrowed,
    /// Borrowed, records taken as owned `Record`s from the `BorrowedFeed`.
    BorrowedOwned,
}

/// Feeds `bytes` in the given pieces, draining after each, then finishes; stops at the
/// first error.
fn run(bytes: &[u8], pieces: &[(usize, How)]) -> Vec<Seen> {
    let mut dec = decoder();
    let mut seen = Vec::new();
    let mut rest = bytes;
    let mut plan = pieces.iter().cycle();
    let mut first = true;
    while !rest.is_empty() || first {
        first = false;
        let &(n, how) = plan.next().unwrap();
        let (now, later) = rest.split_at(n.clamp(1, rest.len().max(1)).min(rest.len()));
        rest = later;
        let last = rest.is_empty();
        if drain(&mut dec, now, how, last, &mut seen) {
            return seen;
        }
    }
    seen.push(Seen::End(dec.end_of_wal().cloned()));
    seen
}

/// Gives `now` to the decoder and collects what it reports; `true` after an error.
fn drain(dec: &mut WalDecoder, now: &[u8], how: How, last: bool, seen: &mut Vec<Seen>) -> bool {
    let mut push = |r: Result<Option<Seen>, DecodeError>| match r {
        Ok(Some(s)) => {
            seen.push(s);
            None
        }
        Ok(None) => Some(false),
        Err(e) => {
            seen.push(Seen::Error(e));
            Some(true)
        }
    };
    match how {
        How::Copied => {
            dec.feed(now);
            if last {
                dec.finish();
            }
            loop {
                let r = dec.next().map(|o| {
                    o.map(|r| Seen::Record(r.lsn, r.end, r.raw().to_vec(), r.aborted_record))
                });
                if let Some(failed) = push(r) {
                    return failed;
                }
            }
        }
        How::Borrowed | How::BorrowedOwned => {
            let mut input = dec.feed_borrowed(now);
            if last {
                input.finish();
            }
            loop {
                let r = if matches!(how, How::Borrowed) {
                    input.next_checked().map(|o| {
                        o.map(|v| Seen::Record(v.lsn, v.end, v.raw().to_vec(), v.aborted_record))
                    })
                } else {
                    input.next().map(|o| {
                        o.map(|r| Seen::Record(r.lsn, r.end, r.raw().to_vec(), r.aborted_record))
                    })
                };
                if let Some(failed) = push(r) {
                    return failed;
                }
            }
        }
    }
}

fn how() -> impl Strategy<Value = How> {
    prop_oneof![
        Just(How::Copied),
        Just(How::Borrowed),
        Just(How::BorrowedOwned)
    ]
}

#[test]
fn borrowed_whole_input_matches_copied() {
    let wal = varied_wal();
    let copied = run(&wal, &[(wal.len(), How::Copied)]);
    assert!(copied.len() > 100);
    assert!(matches!(copied.last(), Some(Seen::End(Some(_)))));
    assert_eq!(run(&wal, &[(wal.len(), How::Borrowed)]), copied);
    assert_eq!(run(&wal, &[(wal.len(), How::BorrowedOwned)]), copied);
    // A damaged record in the first segment: an error, the same one both ways, in any
    // pieces.
    let mut bad = wal.clone();
    bad[300_000] ^= 0x40;
    let copied = run(&bad, &[(5000, How::Copied)]);
    assert!(
        matches!(copied.last(), Some(Seen::Error(_))),
        "{:?}",
        copied.last()
    );
    assert_eq!(run(&bad, &[(5000, How::Borrowed)]), copied);
    assert_eq!(
        run(&bad, &[(70_001, How::Borrowed), (3, How::Copied)]),
        copied
    );
}

#[test]
fn next_checked_views_are_the_records_next_returns() {
    let wal = varied_wal();
    let mut a = decoder();
    let mut b = decoder();
    a.feed(&wal);
    b.feed(&wal);
    let mut n = 0;
    while let Some(record) = a.next().unwrap() {
        let view = b.next_checked().unwrap().unwrap();
        assert_eq!(view.to_record().unwrap(), record);
        assert_eq!(view.main_data(), record.main_data());
        assert_eq!(view.header, record.header);
        n += 1;
    }
    assert!(b.next_checked().unwrap().is_none());
    assert!(n > 100);
}

#[test]
fn memory_stays_bounded_when_borrowing() {
    let wal = varied_wal();
    let mut dec = decoder();
    for chunk in wal.chunks(4096 + 13) {
        let mut input = dec.feed_borrowed(chunk);
        while input.next_checked().unwrap().is_some() {}
        drop(input);
        // What is kept between pieces is at most a page (the seam top-up) and a header.
        assert!(
            dec.buf.len() - dec.buf_pos <= PAGE as usize,
            "{}",
            dec.buf.len()
        );
    }
}

/// The first record boundary of a decoder started at `start` where its sync point equals
/// that of a decoder coming from `START`, and the records both decode from there on.
fn meet(wal: &[u8], start: Lsn) -> Option<(Lsn, Vec<Lsn>, Vec<Lsn>)> {
    let mut from_start = decoder();
    from_start.feed(wal);
    let offset = (start.0 - START.0) as usize;
    let mut later = WalDecoder::new(start, SEG, Expectations::default()).unwrap();
    later.feed(&wal[offset..]);
    let mut points = std::collections::HashMap::new();
    while let Ok(Some(r)) = later.next() {
        points.insert(r.lsn, later.sync_point());
        if points.len() > 5 {
            break;
        }
    }
    while let Ok(Some(r)) = from_start.next() {
        if let Some(Some(p)) = points.get(&r.lsn)
            && from_start.sync_point().as_ref() == Some(p)
        {
            let mut later = WalDecoder::new(start, SEG, Expectations::default()).unwrap();
            later.feed(&wal[offset..]);
            while later.next().unwrap().is_some_and(|l| l.lsn != r.lsn) {}
            let rest = |d: &mut WalDecoder| {
                let mut v = Vec::new();
                while let Ok(Some(r)) = d.next() {
                    v.push(r.lsn);
                }
                v
            };
            return Some((r.lsn, rest(&mut from_start), rest(&mut later)));
        }
    }
    None
}

#[test]
fn a_later_start_meets_the_decoder_from_before() {
    let wal = varied_wal();
    // At a segment start with a record continued across it: they meet at the first
    // record that starts in the segment.
    let start = START.0 + SEG.as_u64();
    let (at, a, b) = meet(&wal, Lsn(start)).expect("they meet");
    assert!(at.0 >= start && at.0 < start + 2 * PAGE + 20_000, "{at}");
    assert_eq!(a, b);
    assert!(a.len() > 10);
    // At a page start inside a segment, the later decoder has not seen the long header
    // with the system identifier yet: they do not meet before the next segment.
    if let Some((at, a, b)) = meet(&wal, Lsn(START.0 + 3 * PAGE)) {
        assert!(at.0 >= start, "{at}");
        assert_eq!(a, b);
    }
}

#[test]
fn sync_points_differ_where_state_differs() {
    let wal = varied_wal();
    let mut a = decoder();
    a.feed(&wal);
    a.next().unwrap();
    let p = a.sync_point().unwrap();
    // Before any record boundary, and after a failure, there is none.
    let mut fresh =
        WalDecoder::new(Lsn(START.0 + SEG.as_u64()), SEG, Expectations::default()).unwrap();
    assert!(fresh.sync_point().is_none());
    fresh.feed(&wal[SEG.as_u64() as usize..]);
    let r = fresh.next().unwrap().unwrap();
    let q = fresh.sync_point().unwrap();
    assert_ne!(p, q);
    assert_eq!(q.position(), r.end);
    assert_eq!(q.prev_record(), Some(r.lsn));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Any chunking, any mix of copied and borrowed pieces, valid or damaged input: the
    /// same records, the same first error, the same end — as copying with the same pieces.
    #[test]
    fn borrowing_reports_what_copying_reports(
        sizes in proptest::collection::vec((1usize..30_000, how()), 1..12),
        damage in proptest::collection::vec((0usize..1_200_000, 1u8..=255), 0..3),
    ) {
        let mut wal = varied_wal();
        for (at, xor) in damage {
            let at = at % wal.len();
            wal[at] ^= xor;
        }
        let copied: Vec<(usize, How)> = sizes.iter().map(|&(n, _)| (n, How::Copied)).collect();
        let expected = run(&wal, &copied);
        prop_assert_eq!(run(&wal, &sizes), expected);
    }
}
