//! WAL records: the 24-byte record header, block references (relation, fork, block number,
//! full-page image and per-block data) and main data, decoded from a complete record's bytes
//! as PostgreSQL's `DecodeXLogRecord` does.
//!
//! A record is `XLogRecord` (24 bytes) followed by fragment headers — one per block
//! reference, then optional origin and top-level-xid fragments, then the main-data length —
//! followed by the payloads in the same order: each block's image, then its data, and the
//! main data last. [`Record::decode`] checks every length and flag the server's reader
//! checks; it never panics on any input.

use std::fmt;
use std::ops::Range;

use crate::decoder::{DecodeError, DecodeErrorKind};
use crate::{Lsn, PgMajor};

/// Size of the record header (`SizeOfXLogRecord`).
#[doc(alias = "SizeOfXLogRecord")]
pub const RECORD_HEADER_LEN: usize = 24;
/// Offset of `xl_crc` in the record header; the CRC covers the header bytes before it.
pub(crate) const XL_CRC_OFFSET: usize = 20;
/// The data page size every supported server is built with (`BLCKSZ`).
pub const BLCKSZ: u32 = 8192;

/// `xl_info` bits owned by the WAL machinery (the low four).
pub const XLR_INFO_MASK: u8 = 0x0F;
/// `xl_info` bits owned by the resource manager (the high four).
pub const XLR_RMGR_INFO_MASK: u8 = 0xF0;
/// `xl_info`: the record changes relation files beyond its block references.
pub const XLR_SPECIAL_REL_UPDATE: u8 = 0x01;
/// `xl_info`: every block carries an image for `wal_consistency_checking`.
pub const XLR_CHECK_CONSISTENCY: u8 = 0x02;

/// The largest block reference id (`XLR_MAX_BLOCK_ID`).
pub const XLR_MAX_BLOCK_ID: u8 = 32;
/// Fragment id: main data with a one-byte length.
pub const XLR_BLOCK_ID_DATA_SHORT: u8 = 255;
/// Fragment id: main data with a four-byte length.
pub const XLR_BLOCK_ID_DATA_LONG: u8 = 254;
/// Fragment id: the replication origin (`RepOriginId`, two bytes).
pub const XLR_BLOCK_ID_ORIGIN: u8 = 253;
/// Fragment id: the top-level transaction id of a subtransaction's record.
pub const XLR_BLOCK_ID_TOPLEVEL_XID: u8 = 252;

/// Block header `fork_flags`: the fork number bits.
pub const BKPBLOCK_FORK_MASK: u8 = 0x0F;
/// Block header `fork_flags`: a full-page image follows.
pub const BKPBLOCK_HAS_IMAGE: u8 = 0x10;
/// Block header `fork_flags`: per-block data follows.
pub const BKPBLOCK_HAS_DATA: u8 = 0x20;
/// Block header `fork_flags`: redo re-initialises the page.
pub const BKPBLOCK_WILL_INIT: u8 = 0x40;
/// Block header `fork_flags`: the relation is the previous block's (locator omitted).
pub const BKPBLOCK_SAME_REL: u8 = 0x80;

/// `bimg_info`: the image has a hole (every major).
pub const BKPIMAGE_HAS_HOLE: u8 = 0x01;

/// The fixed 24-byte header of every record (`XLogRecord`).
#[doc(alias = "XLogRecord")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RecordHeader {
    /// `xl_tot_len`: length of the whole record, header included.
    pub tot_len: u32,
    /// `xl_xid`: the transaction id, 0 when none.
    pub xid: u32,
    /// `xl_prev`: the position of the previous record.
    pub prev: Lsn,
    /// `xl_info`: the low four bits are the WAL machinery's, the high four the rmgr's.
    pub info: u8,
    /// `xl_rmid`: the resource manager.
    pub rmid: u8,
    /// `xl_crc`: CRC-32C of the record (see [`crate::crc::record_crc`]).
    pub crc: u32,
}

impl RecordHeader {
    /// Reads a header from the first 24 bytes of `bytes` (no validation beyond the
    /// length); `None` when fewer than 24 bytes are given.
    pub fn parse(bytes: &[u8]) -> Option<RecordHeader> {
        let h: &[u8; RECORD_HEADER_LEN] = bytes.get(..RECORD_HEADER_LEN)?.try_into().ok()?;
        let [
            l0,
            l1,
            l2,
            l3,
            x0,
            x1,
            x2,
            x3,
            p0,
            p1,
            p2,
            p3,
            p4,
            p5,
            p6,
            p7,
            info,
            rmid,
            _,
            _,
            c0,
            c1,
            c2,
            c3,
        ] = *h;
        Some(RecordHeader {
            tot_len: u32::from_le_bytes([l0, l1, l2, l3]),
            xid: u32::from_le_bytes([x0, x1, x2, x3]),
            prev: Lsn(u64::from_le_bytes([p0, p1, p2, p3, p4, p5, p6, p7])),
            info,
            rmid,
            crc: u32::from_le_bytes([c0, c1, c2, c3]),
        })
    }

    /// The resource manager's four bits of `xl_info` (`info & XLR_RMGR_INFO_MASK`).
    pub fn rmgr_info(&self) -> u8 {
        self.info & XLR_RMGR_INFO_MASK
    }
}

/// A relation's physical identity: tablespace, database and relation file number
/// (`RelFileNode` before 16, `RelFileLocator` from 16; same 12 bytes).
#[doc(alias = "RelFileNode")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct RelFileLocator {
    /// Tablespace OID (`spcNode` / `spcOid`).
    pub spc_oid: u32,
    /// Database OID, 0 for shared relations (`dbNode` / `dbOid`).
    pub db_oid: u32,
    /// Relation file number (`relNode` / `relNumber`).
    pub rel_number: u32,
}

impl RelFileLocator {
    /// Reads the three OIDs from 12 little-endian bytes at `at`.
    pub(crate) fn read(bytes: &[u8], at: usize) -> Option<RelFileLocator> {
        Some(RelFileLocator {
            spc_oid: le_u32(bytes, at)?,
            db_oid: le_u32(bytes, at + 4)?,
            rel_number: le_u32(bytes, at + 8)?,
        })
    }
}

impl fmt::Display for RelFileLocator {
    /// `spc/db/rel`, as `pg_waldump` prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.spc_oid, self.db_oid, self.rel_number)
    }
}

/// A relation fork number (`ForkNumber`): the low four bits of a block header's flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ForkNumber(pub u8);

impl ForkNumber {
    /// The main data fork.
    pub const MAIN: ForkNumber = ForkNumber(0);
    /// The free space map.
    pub const FSM: ForkNumber = ForkNumber(1);
    /// The visibility map.
    pub const VISIBILITY_MAP: ForkNumber = ForkNumber(2);
    /// The init fork of unlogged relations.
    pub const INIT: ForkNumber = ForkNumber(3);

    /// The fork's name as in file names and `pg_waldump` (`main`, `fsm`, `vm`, `init`);
    /// `None` for numbers PostgreSQL does not define.
    #[doc(alias = "forkNames")]
    pub fn name(self) -> Option<&'static str> {
        match self.0 {
            0 => Some("main"),
            1 => Some("fsm"),
            2 => Some("vm"),
            3 => Some("init"),
            _ => None,
        }
    }
}

/// How a full-page image is compressed (`wal_compression`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ImageCompression {
    /// Stored as is (minus its hole).
    None,
    /// PostgreSQL's own LZ (the only method before 15).
    Pglz,
    /// LZ4 (15 and later).
    Lz4,
    /// Zstandard (15 and later).
    Zstd,
}

impl ImageCompression {
    /// The method's name as `pg_waldump --bkp-details` prints it; `None` for no compression.
    pub fn name(self) -> Option<&'static str> {
        match self {
            ImageCompression::None => None,
            ImageCompression::Pglz => Some("pglz"),
            ImageCompression::Lz4 => Some("lz4"),
            ImageCompression::Zstd => Some("zstd"),
        }
    }
}

/// The meaning of `bimg_info` bits in one major.
#[derive(Debug, Clone, Copy)]
struct ImageFlags {
    apply: u8,
    pglz: u8,
    lz4: u8,
    zstd: u8,
}

impl ImageFlags {
    fn of(major: PgMajor) -> ImageFlags {
        if major >= PgMajor::V15 {
            ImageFlags {
                apply: 0x02,
                pglz: 0x04,
                lz4: 0x08,
                zstd: 0x10,
            }
        } else {
            // 14: BKPIMAGE_IS_COMPRESSED (0x02) meant pglz, BKPIMAGE_APPLY was 0x04.
            ImageFlags {
                apply: 0x04,
                pglz: 0x02,
                lz4: 0,
                zstd: 0,
            }
        }
    }

    fn compression(self, info: u8) -> ImageCompression {
        if info & self.pglz != 0 {
            ImageCompression::Pglz
        } else if info & self.lz4 != 0 {
            ImageCompression::Lz4
        } else if info & self.zstd != 0 {
            ImageCompression::Zstd
        } else {
            ImageCompression::None
        }
    }
}

/// A full-page image carried by a block reference (`XLogRecordBlockImageHeader`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockImage {
    /// `bimg_len`: bytes of image data stored in the record.
    pub len: u16,
    /// Bytes before the hole.
    pub hole_offset: u16,
    /// Length of the hole (zero bytes not stored).
    pub hole_length: u16,
    /// The raw `bimg_info` flags (their meaning depends on the major).
    pub info: u8,
    /// The compression method the flags name.
    pub compression: ImageCompression,
    /// Whether redo restores the image (`BKPIMAGE_APPLY`); images written only for
    /// `wal_consistency_checking` are not applied.
    pub apply: bool,
    data: Range<usize>,
}

/// A block reference of a record (`DecodedBkpBlock`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockRef {
    /// Block reference id, 0 to 32.
    pub id: u8,
    /// The raw `fork_flags` byte.
    pub fork_flags: u8,
    /// The relation.
    pub locator: RelFileLocator,
    /// The block number in the fork.
    pub block: u32,
    /// The full-page image, if any.
    pub image: Option<BlockImage>,
    data: Range<usize>,
}

impl BlockRef {
    /// The fork (`fork_flags & BKPBLOCK_FORK_MASK`).
    pub fn fork(&self) -> ForkNumber {
        ForkNumber(self.fork_flags & BKPBLOCK_FORK_MASK)
    }

    /// Whether per-block data is present (`BKPBLOCK_HAS_DATA`).
    pub fn has_data(&self) -> bool {
        self.fork_flags & BKPBLOCK_HAS_DATA != 0
    }

    /// Whether redo re-initialises the page (`BKPBLOCK_WILL_INIT`).
    pub fn will_init(&self) -> bool {
        self.fork_flags & BKPBLOCK_WILL_INIT != 0
    }

    /// Length of the per-block data.
    pub fn data_len(&self) -> usize {
        self.data.len()
    }
}

/// A decoded, CRC-checked WAL record. Owns its bytes; block data, images and main data
/// are slices of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Where the record starts (`ReadRecPtr`).
    pub lsn: Lsn,
    /// Where the next record starts (`EndRecPtr`): the record's end rounded up to 8 bytes,
    /// or the next segment's start after an `XLOG SWITCH` record.
    pub end: Lsn,
    /// The record header.
    pub header: RecordHeader,
    /// Block references in id order.
    pub blocks: Vec<BlockRef>,
    /// The replication origin, when the record carries one.
    pub origin: Option<u16>,
    /// The top-level transaction id, when a subtransaction's record carries one.
    pub toplevel_xid: Option<u32>,
    /// Set on the first record after an aborted multi-page record whose continuation was
    /// overwritten (`XLP_FIRST_IS_OVERWRITE_CONTRECORD`): the aborted record's position.
    pub aborted_record: Option<Lsn>,
    main_data: Range<usize>,
    raw: Vec<u8>,
}

impl Record {
    /// Decodes a complete record (`raw` holds exactly `xl_tot_len` bytes, header included)
    /// found at `lsn`, checking fragment headers and lengths as `DecodeXLogRecord` does.
    /// Checks neither the CRC nor the header's `xl_prev`/rmid; [`crate::WalDecoder`] does.
    /// `end` is set to the 8-byte-aligned end assuming the record does not cross a page.
    ///
    /// # Errors
    /// [`DecodeError`] at `lsn` when the length disagrees with the header or fragments, a
    /// block id is out of order or invalid, or a block's data/image flags and lengths
    /// contradict each other.
    pub fn decode(major: PgMajor, lsn: Lsn, raw: Vec<u8>) -> Result<Record, DecodeError> {
        let mut blocks: Vec<BlockRef> = Vec::new();
        // Lengths of each block's image and data, to lay out payloads afterwards.
        let mut layout: Vec<(u16, u16)> = Vec::new();
        let body = parse_body(major, lsn, &raw, |block, image_len, data_len| {
            blocks.push(block);
            layout.push((image_len, data_len));
        })?;
        // Payloads follow the fragment headers: per block its image then its data, then
        // the main data. The sum was checked, so every range lies within `raw`.
        let mut at = body.payload_start;
        for (block, (image_len, data_len)) in blocks.iter_mut().zip(layout) {
            if let Some(image) = block.image.as_mut() {
                image.data = at..at + usize::from(image_len);
                at += usize::from(image_len);
            }
            block.data = at..at + usize::from(data_len);
            at += usize::from(data_len);
        }
        let main_data = at..raw.len();
        debug_assert_eq!(main_data, body.main_data);
        // `parse_body` checked that the whole header is there.
        let header = RecordHeader::parse(&raw).unwrap_or_default();
        Ok(Record {
            lsn,
            end: Lsn(lsn
                .0
                .saturating_add(u64::from(header.tot_len))
                .saturating_add(7)
                & !7),
            header,
            blocks,
            origin: body.origin,
            toplevel_xid: body.toplevel_xid,
            aborted_record: None,
            main_data,
            raw,
        })
    }

    /// The record's bytes, header included (`xl_tot_len` of them).
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The main data (`XLogRecGetData`).
    pub fn main_data(&self) -> &[u8] {
        self.raw.get(self.main_data.clone()).unwrap_or_default()
    }

    /// The per-block data of `block` (empty when it has none).
    pub fn block_data(&self, block: &BlockRef) -> &[u8] {
        self.raw.get(block.data.clone()).unwrap_or_default()
    }

    /// The stored (hole-less, possibly compressed) image bytes of `block`.
    pub fn image_data(&self, block: &BlockRef) -> Option<&[u8]> {
        let image = block.image.as_ref()?;
        self.raw.get(image.data.clone())
    }

    /// The block reference with id `id`.
    pub fn block(&self, id: u8) -> Option<&BlockRef> {
        self.blocks.iter().find(|b| b.id == id)
    }

    /// The resource manager id.
    pub fn rmid(&self) -> u8 {
        self.header.rmid
    }

    /// The full `xl_info` byte.
    pub fn info(&self) -> u8 {
        self.header.info
    }

    /// The transaction id (`xl_xid`).
    pub fn xid(&self) -> u32 {
        self.header.xid
    }

    /// The previous record's position (`xl_prev`).
    pub fn prev(&self) -> Lsn {
        self.header.prev
    }

    /// `xl_tot_len`.
    pub fn total_len(&self) -> u32 {
        self.header.tot_len
    }

    /// Bytes of full-page images in the record (the sum of `bimg_len`).
    pub fn fpi_len(&self) -> u32 {
        self.blocks
            .iter()
            .filter_map(|b| b.image.as_ref())
            .map(|i| u32::from(i.len))
            .sum()
    }

    /// The record's length without its images, as `pg_waldump` counts it (`rec_len`).
    pub fn rec_len(&self) -> u32 {
        self.header.tot_len.saturating_sub(self.fpi_len())
    }
}

/// What [`parse_body`] finds besides the block references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedBody {
    pub(crate) origin: Option<u16>,
    pub(crate) toplevel_xid: Option<u32>,
    /// Where the payloads (images, block data, main data) start.
    pub(crate) payload_start: usize,
    /// The main data, at the end of the record.
    pub(crate) main_data: Range<usize>,
}

/// `DecodeXLogRecord`: walks the fragment headers of the complete record `raw` at `lsn`,
/// checking every length and flag the server's reader checks, and hands each block
/// reference (with its image and data lengths; payload ranges not yet laid out) to
/// `on_block`. The one parser behind [`Record::decode`] and the decoder's checks, so the
/// two can never disagree.
pub(crate) fn parse_body(
    major: PgMajor,
    lsn: Lsn,
    raw: &[u8],
    mut on_block: impl FnMut(BlockRef, u16, u16),
) -> Result<ParsedBody, DecodeError> {
    let err = |kind| DecodeError::new(lsn, kind);
    let tot_len = raw
        .get(..RECORD_HEADER_LEN)
        .and_then(|h| le_u32(h, 0))
        .ok_or_else(|| {
            err(DecodeErrorKind::RecordTooShort {
                tot_len: u32::try_from(raw.len()).unwrap_or(u32::MAX),
            })
        })?;
    if usize::try_from(tot_len).ok() != Some(raw.len()) {
        return Err(err(DecodeErrorKind::RecordLengthMismatch {
            tot_len,
            available: raw.len(),
        }));
    }
    let flags = ImageFlags::of(major);
    let mut cur = RECORD_HEADER_LEN;
    let body_end = raw.len();
    let remaining = (body_end - RECORD_HEADER_LEN) as u64;
    let mut datatotal: u64 = 0;
    let mut main_len: u64 = 0;
    let mut origin = None;
    let mut toplevel_xid = None;
    let mut last_id: Option<u8> = None;
    let mut prev_locator: Option<RelFileLocator> = None;
    let short = || err(DecodeErrorKind::FragmentsOverrun);

    while remaining.saturating_sub((cur - RECORD_HEADER_LEN) as u64) > datatotal {
        let id = take_u8(raw, &mut cur).ok_or_else(short)?;
        match id {
            XLR_BLOCK_ID_DATA_SHORT => {
                main_len = u64::from(take_u8(raw, &mut cur).ok_or_else(short)?);
                datatotal += main_len;
                break;
            }
            XLR_BLOCK_ID_DATA_LONG => {
                main_len = u64::from(take_u32(raw, &mut cur).ok_or_else(short)?);
                datatotal += main_len;
                break;
            }
            XLR_BLOCK_ID_ORIGIN => {
                origin = Some(take_u16(raw, &mut cur).ok_or_else(short)?);
            }
            XLR_BLOCK_ID_TOPLEVEL_XID => {
                toplevel_xid = Some(take_u32(raw, &mut cur).ok_or_else(short)?);
            }
            id if id <= XLR_MAX_BLOCK_ID => {
                if last_id.is_some_and(|last| id <= last) {
                    return Err(err(DecodeErrorKind::BlockIdOutOfOrder { block_id: id }));
                }
                last_id = Some(id);
                let [fork_flags, l0, l1] = take::<3>(raw, &mut cur).ok_or_else(short)?;
                let data_len = u16::from_le_bytes([l0, l1]);
                let has_data = fork_flags & BKPBLOCK_HAS_DATA != 0;
                if has_data && data_len == 0 {
                    return Err(err(DecodeErrorKind::BlockDataMissing { block_id: id }));
                }
                if !has_data && data_len != 0 {
                    return Err(err(DecodeErrorKind::BlockDataUnexpected {
                        block_id: id,
                        data_len,
                    }));
                }
                datatotal += u64::from(data_len);
                let mut image = None;
                let mut image_len = 0;
                if fork_flags & BKPBLOCK_HAS_IMAGE != 0 {
                    let [l0, l1, h0, h1, info] = take::<5>(raw, &mut cur).ok_or_else(short)?;
                    let len = u16::from_le_bytes([l0, l1]);
                    let hole_offset = u16::from_le_bytes([h0, h1]);
                    let compression = flags.compression(info);
                    let has_hole = info & BKPIMAGE_HAS_HOLE != 0;
                    let hole_length = if compression != ImageCompression::None {
                        if has_hole {
                            take_u16(raw, &mut cur).ok_or_else(short)?
                        } else {
                            0
                        }
                    } else {
                        // As the server computes it, in 16-bit arithmetic.
                        (BLCKSZ as u16).wrapping_sub(len)
                    };
                    datatotal += u64::from(len);
                    check_image(id, len, hole_offset, hole_length, has_hole, compression)
                        .map_err(err)?;
                    image_len = len;
                    image = Some(BlockImage {
                        len,
                        hole_offset,
                        hole_length,
                        info,
                        compression,
                        apply: info & flags.apply != 0,
                        data: 0..0,
                    });
                }
                let locator = if fork_flags & BKPBLOCK_SAME_REL != 0 {
                    prev_locator.ok_or_else(|| err(DecodeErrorKind::SameRelWithoutPrevious))?
                } else {
                    let b = take::<12>(raw, &mut cur).ok_or_else(short)?;
                    RelFileLocator {
                        spc_oid: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
                        db_oid: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
                        rel_number: u32::from_le_bytes([b[8], b[9], b[10], b[11]]),
                    }
                };
                prev_locator = Some(locator);
                let block = take_u32(raw, &mut cur).ok_or_else(short)?;
                on_block(
                    BlockRef {
                        id,
                        fork_flags,
                        locator,
                        block,
                        image,
                        data: 0..0,
                    },
                    image_len,
                    data_len,
                );
            }
            other => return Err(err(DecodeErrorKind::InvalidBlockId { block_id: other })),
        }
    }
    let headers_len = (cur - RECORD_HEADER_LEN) as u64;
    if remaining != headers_len + datatotal {
        return Err(short());
    }
    // `main_len <= datatotal <= remaining`, so the main data lies within the body.
    let main_start = body_end - usize::try_from(main_len).unwrap_or(0);
    Ok(ParsedBody {
        origin,
        toplevel_xid,
        payload_start: cur,
        main_data: main_start..body_end,
    })
}

/// The main data of a record of one of the two shapes most WAL is made of, found without
/// the general walk of [`parse_body`]: main data alone (a commit), or one block reference
/// with data, a relation and no image, then main data (a heap insert, update or delete);
/// both with the short main-data length. `None` for any other record.
///
/// A shortcut only: when it answers, [`parse_body`] accepts the record and finds the same
/// main data (each step below is the step `parse_body` takes on such bytes; a property
/// test checks the two agree). Anything else goes through `parse_body`.
pub(crate) fn common_shape_main_data(raw: &[u8]) -> Option<Range<usize>> {
    // Short main data at `at` (id, one-byte length), after `payload` bytes of block data:
    // the record must end exactly where the main data does.
    let short_main = |at: usize, payload: usize| -> Option<Range<usize>> {
        let [id, main_len] = *raw.get(at..)?.first_chunk::<2>()?;
        let start = at + 2 + payload;
        (id == XLR_BLOCK_ID_DATA_SHORT && start + usize::from(main_len) == raw.len())
            .then_some(start..raw.len())
    };
    if usize::try_from(le_u32(raw, 0)?).ok() != Some(raw.len()) {
        return None;
    }
    match *raw.get(RECORD_HEADER_LEN)? {
        XLR_BLOCK_ID_DATA_SHORT => short_main(RECORD_HEADER_LEN, 0),
        0 => {
            // Block 0: id, flags, data length, then relation (12) and block number (4).
            let [_, flags, l0, l1] = *raw.get(RECORD_HEADER_LEN..)?.first_chunk::<4>()?;
            let data_len = usize::from(u16::from_le_bytes([l0, l1]));
            let kind = flags & (BKPBLOCK_HAS_DATA | BKPBLOCK_HAS_IMAGE | BKPBLOCK_SAME_REL);
            if kind != BKPBLOCK_HAS_DATA || data_len == 0 {
                return None;
            }
            short_main(RECORD_HEADER_LEN + 20, data_len)
        }
        _ => None,
    }
}

/// The cross-checks `DecodeXLogRecord` applies to an image header.
fn check_image(
    block_id: u8,
    len: u16,
    hole_offset: u16,
    hole_length: u16,
    has_hole: bool,
    compression: ImageCompression,
) -> Result<(), DecodeErrorKind> {
    let compressed = compression != ImageCompression::None;
    let full = u32::from(len) == BLCKSZ;
    let bad = if has_hole {
        hole_offset == 0 || hole_length == 0 || full
    } else {
        hole_offset != 0 || hole_length != 0 || (!compressed && !full)
    };
    if bad || (compressed && full) {
        return Err(DecodeErrorKind::InvalidImage {
            block_id,
            len,
            hole_offset,
            hole_length,
            has_hole,
            compressed,
        });
    }
    Ok(())
}

pub(crate) fn le_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

pub(crate) fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

pub(crate) fn le_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// The `N` bytes at `cur`, moving past them.
fn take<const N: usize>(b: &[u8], cur: &mut usize) -> Option<[u8; N]> {
    let bytes: [u8; N] = b.get(*cur..cur.checked_add(N)?)?.try_into().ok()?;
    *cur += N;
    Some(bytes)
}

fn take_u8(b: &[u8], cur: &mut usize) -> Option<u8> {
    let v = *b.get(*cur)?;
    *cur += 1;
    Some(v)
}

fn take_u16(b: &[u8], cur: &mut usize) -> Option<u16> {
    let v = le_u16(b, *cur)?;
    *cur += 2;
    Some(v)
}

fn take_u32(b: &[u8], cur: &mut usize) -> Option<u32> {
    let v = le_u32(b, *cur)?;
    *cur += 4;
    Some(v)
}

mod view;

pub use view::RecordView;

#[cfg(test)]
mod tests;
