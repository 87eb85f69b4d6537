//! Tests for record header parsing and body decoding: every cross-check of
//! `DecodeXLogRecord`, and the image flag bits that moved between 14 and 15.

use super::*;
use crate::WalSegSize;
use crate::testutil::{Body, Image, WalWriter, rel};

const LSN: Lsn = Lsn(0x0100_0028);

fn raw(body: &[u8]) -> Vec<u8> {
    WalWriter::new(PgMajor::V15, WalSegSize::MIN, Lsn(0x0100_0000)).raw_record(10, 0x00, 5, body)
}

fn decode(major: PgMajor, body: &[u8]) -> Result<Record, DecodeErrorKind> {
    Record::decode(major, LSN, raw(body)).map_err(|e| {
        assert_eq!(e.lsn, LSN);
        e.kind
    })
}

#[test]
fn header_fields() {
    let bytes = raw(b"");
    let h = RecordHeader::parse(&bytes).unwrap();
    assert_eq!((h.tot_len, h.xid, h.info, h.rmid), (24, 5, 0x00, 10));
    assert_eq!(h.prev, Lsn(0x0100_0000 - 0x100));
    assert_eq!(Some(h.crc), crate::crc::record_crc(&bytes));
    assert_eq!(RecordHeader::parse(&bytes[..23]), None);
    let h = RecordHeader { info: 0x9B, ..h };
    assert_eq!(h.rmgr_info(), 0x90);
}

#[test]
fn empty_record_and_main_data_forms() {
    let r = decode(PgMajor::V15, b"").unwrap();
    assert!(r.blocks.is_empty() && r.main_data().is_empty());
    assert_eq!((r.origin, r.toplevel_xid), (None, None));
    let r = decode(PgMajor::V15, &Body::new().main(b"abc").build()).unwrap();
    assert_eq!(r.main_data(), b"abc");
    let r = decode(PgMajor::V15, &Body::new().main_long(b"abc").build()).unwrap();
    assert_eq!(r.main_data(), b"abc");
    let big = vec![7u8; 70_000];
    let r = decode(PgMajor::V15, &Body::new().main(&big).build()).unwrap();
    assert_eq!(r.main_data().len(), 70_000);
}

fn image(info: u8, len: usize, hole_offset: u16, hole_length: Option<u16>) -> Image {
    Image {
        info,
        hole_offset,
        hole_length,
        bytes: vec![0x5A; len],
    }
}

#[test]
fn image_flags_moved_in_15() {
    // 15+: 0x02 apply, 0x04 pglz, 0x08 lz4, 0x10 zstd. 14: 0x02 compressed, 0x04 apply.
    let body = |info| {
        Body::new()
            .block(
                0,
                0,
                Some(rel(5, 1)),
                0,
                Some(image(info, 3000, 0, None)),
                b"",
            )
            .build()
    };
    let img = |major, info| {
        decode(major, &body(info)).unwrap().blocks[0]
            .image
            .clone()
            .unwrap()
    };
    let cases = [
        (PgMajor::V15, 0x02 | 0x04, ImageCompression::Pglz, true),
        (PgMajor::V16, 0x08, ImageCompression::Lz4, false),
        (PgMajor::V18, 0x02 | 0x10, ImageCompression::Zstd, true),
        (PgMajor::V14, 0x02 | 0x04, ImageCompression::Pglz, true),
        (PgMajor::V14, 0x02, ImageCompression::Pglz, false),
    ];
    for (major, info, compression, apply) in cases {
        let i = img(major, info);
        assert_eq!(
            (i.compression, i.apply),
            (compression, apply),
            "{major} {info:#x}"
        );
        assert_eq!((i.len, i.hole_offset, i.hole_length), (3000, 0, 0));
    }
    // 14 has no lz4/zstd: 0x08 is no compression, so a 3000-byte image without a hole is
    // invalid there.
    assert!(matches!(
        decode(PgMajor::V14, &body(0x08)),
        Err(DecodeErrorKind::InvalidImage {
            compressed: false,
            ..
        })
    ));
    assert_eq!(ImageCompression::Zstd.name(), Some("zstd"));
    assert_eq!(ImageCompression::None.name(), None);
}

#[test]
fn compressed_image_with_hole_stores_the_hole_length() {
    let body = Body::new()
        .block(
            0,
            0,
            Some(rel(5, 1)),
            3,
            Some(image(0x01 | 0x04, 900, 200, Some(5000))),
            b"d",
        )
        .build();
    let r = decode(PgMajor::V15, &body).unwrap();
    let b = &r.blocks[0];
    let i = b.image.as_ref().unwrap();
    assert_eq!((i.len, i.hole_offset, i.hole_length), (900, 200, 5000));
    assert_eq!(r.image_data(b).unwrap().len(), 900);
    assert_eq!(r.block_data(b), b"d");
    assert_eq!(r.fpi_len(), 900);
}

#[test]
fn image_cross_checks() {
    let check = |img: Image| {
        decode(
            PgMajor::V15,
            &Body::new()
                .block(0, 0, Some(rel(5, 1)), 0, Some(img), b"")
                .build(),
        )
    };
    let invalid =
        |r: Result<Record, DecodeErrorKind>| matches!(r, Err(DecodeErrorKind::InvalidImage { .. }));
    // Uncompressed, no hole: must be a whole block.
    assert!(check(image(0x02, 8192, 0, None)).is_ok());
    assert!(invalid(check(image(0x02, 8000, 0, None))));
    // Uncompressed with a hole: offset and length non-zero, not a whole block.
    assert!(check(image(0x03, 8000, 10, None)).is_ok());
    assert!(invalid(check(image(0x03, 8000, 0, None))));
    assert!(invalid(check(image(0x03, 8192, 10, None))));
    // No hole flag but an offset.
    assert!(invalid(check(image(0x02, 8192, 10, None))));
    // Compressed to a whole block makes no sense.
    assert!(invalid(check(image(0x06, 8192, 0, None))));
    // Compressed with hole: zero hole length is invalid.
    assert!(invalid(check(image(0x07, 100, 10, Some(0)))));
}

#[test]
fn block_reference_cross_checks() {
    let b = |id, data: &[u8]| Body::new().block(id, 0, Some(rel(5, 1)), 0, None, data);
    // Same relation as the previous block.
    let body = b(0, b"x").block(1, 0, None, 1, None, b"").build();
    let r = decode(PgMajor::V15, &body).unwrap();
    assert_eq!(r.blocks[1].locator, rel(5, 1));
    // ...but not on the first block.
    let body = Body::new().block(0, 0, None, 0, None, b"").build();
    assert_eq!(
        decode(PgMajor::V15, &body),
        Err(DecodeErrorKind::SameRelWithoutPrevious)
    );
    // Block ids must increase.
    let body = b(2, b"").block(2, 0, None, 0, None, b"").build();
    assert_eq!(
        decode(PgMajor::V15, &body),
        Err(DecodeErrorKind::BlockIdOutOfOrder { block_id: 2 })
    );
    // Ids 33..=251 are invalid.
    let mut body = b(0, b"").build();
    body[0] = 40;
    assert_eq!(
        decode(PgMajor::V15, &body),
        Err(DecodeErrorKind::InvalidBlockId { block_id: 40 })
    );
    // HAS_DATA with no data, and data without HAS_DATA.
    let mut body = b(0, b"abc").build();
    body[1] &= !BKPBLOCK_HAS_DATA;
    assert_eq!(
        decode(PgMajor::V15, &body),
        Err(DecodeErrorKind::BlockDataUnexpected {
            block_id: 0,
            data_len: 3
        })
    );
    let mut body = b(0, b"").build();
    body[1] |= BKPBLOCK_HAS_DATA;
    assert_eq!(
        decode(PgMajor::V15, &body),
        Err(DecodeErrorKind::BlockDataMissing { block_id: 0 })
    );
}

#[test]
fn lengths_must_add_up() {
    let good = Body::new()
        .block(0, 0, Some(rel(5, 1)), 0, None, b"abcd")
        .main(b"xyz")
        .build();
    assert!(decode(PgMajor::V15, &good).is_ok());
    // One byte too many or too few.
    let mut long = good.clone();
    long.push(0);
    assert_eq!(
        decode(PgMajor::V15, &long),
        Err(DecodeErrorKind::FragmentsOverrun)
    );
    let short = &good[..good.len() - 1];
    assert_eq!(
        decode(PgMajor::V15, short),
        Err(DecodeErrorKind::FragmentsOverrun)
    );
    // A fragment header cut in the middle.
    assert_eq!(
        decode(PgMajor::V15, &good[..3]),
        Err(DecodeErrorKind::FragmentsOverrun)
    );
    // The buffer must hold exactly xl_tot_len bytes.
    let mut bytes = raw(&good);
    bytes.push(0);
    assert!(matches!(
        Record::decode(PgMajor::V15, LSN, bytes).unwrap_err().kind,
        DecodeErrorKind::RecordLengthMismatch { .. }
    ));
    assert!(matches!(
        Record::decode(PgMajor::V15, LSN, vec![1, 2, 3])
            .unwrap_err()
            .kind,
        DecodeErrorKind::RecordTooShort { .. }
    ));
}

#[test]
fn origin_toplevel_xid_and_fork_names() {
    let body = Body::new()
        .block(4, 3, Some(rel(5, 1)), 0, None, b"")
        .origin(9)
        .toplevel_xid(1234)
        .build();
    let r = decode(PgMajor::V15, &body).unwrap();
    assert_eq!((r.origin, r.toplevel_xid), (Some(9), Some(1234)));
    assert_eq!(r.blocks[0].fork(), ForkNumber::INIT);
    assert_eq!(ForkNumber::INIT.name(), Some("init"));
    assert_eq!(ForkNumber(9).name(), None);
    assert_eq!(rel(5, 1).to_string(), "1663/5/1");
}

#[test]
fn never_panics_on_truncations_of_a_rich_record() {
    let body = Body::new()
        .block(
            0,
            0,
            Some(rel(5, 1)),
            0,
            Some(image(0x01 | 0x08, 300, 20, Some(7000))),
            b"abc",
        )
        .block(1, 1, None, 1, None, b"d")
        .origin(1)
        .toplevel_xid(2)
        .main(b"main")
        .build();
    for cut in 0..=body.len() {
        let mut bytes = raw(&body[..cut]);
        let _ = Record::decode(PgMajor::V15, LSN, bytes.clone());
        for i in 24..bytes.len() {
            bytes[i] ^= 0xFF;
            let _ = Record::decode(PgMajor::V14, LSN, bytes.clone());
            bytes[i] ^= 0xFF;
        }
    }
}

mod common_shapes {
    use proptest::prelude::*;

    use super::*;
    use crate::record::{common_shape_main_data, parse_body};

    /// A record of one of the shapes the shortcut knows, or one close to them.
    fn record() -> impl Strategy<Value = Vec<u8>> {
        (
            any::<bool>(),
            0u8..=255,
            1usize..300,
            0usize..256,
            proptest::collection::vec((0usize..64, any::<u8>()), 0..3),
            prop_oneof![Just(0isize), -3isize..3],
        )
            .prop_map(|(block, flags, data_len, main_len, flips, resize)| {
                let main = vec![0x33; main_len];
                let body = if block {
                    // The flags' data, image and same-relation bits vary: Body writes what
                    // they say, or the flips below break it.
                    let data = vec![0x44; data_len];
                    Body::new()
                        .block(0, flags & 0x0F, Some(rel(5, 16_384)), 7, None, &data)
                        .main(&main)
                        .build()
                } else {
                    Body::new().main(&main).build()
                };
                let mut bytes = raw(&body);
                for (at, xor) in flips {
                    if let Some(b) = bytes.get_mut(20 + at) {
                        *b ^= xor;
                    }
                }
                let len = (bytes.len() as isize + resize).max(0) as usize;
                bytes.resize(len, 0);
                bytes
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

        /// Whenever the shortcut answers, the general parser accepts the record and finds
        /// the same main data — for every major.
        #[test]
        fn the_shortcut_only_answers_what_the_parser_answers(raw in record()) {
            if let Some(main_data) = common_shape_main_data(&raw) {
                for major in PgMajor::ALL {
                    let parsed = parse_body(major, LSN, &raw, |_, _, _| {});
                    prop_assert_eq!(parsed.map(|p| p.main_data), Ok(main_data.clone()));
                }
            }
        }

        /// Arbitrary bytes too.
        #[test]
        fn the_shortcut_never_contradicts_the_parser_on_any_bytes(raw in proptest::collection::vec(any::<u8>(), 0..120)) {
            if let Some(main_data) = common_shape_main_data(&raw) {
                let parsed = parse_body(PgMajor::V15, LSN, &raw, |_, _, _| {});
                prop_assert_eq!(parsed.map(|p| p.main_data), Ok(main_data));
            }
        }
    }

    #[test]
    fn the_shortcut_answers_for_commits_and_heap_records() {
        let commit = raw(&Body::new().main(&[1; 30]).build());
        assert_eq!(common_shape_main_data(&commit), Some(26..56));
        let heap = raw(&Body::new()
            .block(0, 0, Some(rel(5, 16_384)), 3, None, &[2; 50])
            .main(&[1; 3])
            .build());
        assert_eq!(common_shape_main_data(&heap), Some(96..99));
        let same_rel = raw(&Body::new()
            .block(0, 0, None, 3, None, &[2; 50])
            .main(&[1; 3])
            .build());
        assert_eq!(common_shape_main_data(&same_rel), None);
    }
}
