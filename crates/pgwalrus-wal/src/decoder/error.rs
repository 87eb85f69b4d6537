//! [`DecodeError`]: what made WAL bytes undecodable, and the position where it happened.

use std::fmt;

use crate::Lsn;

/// WAL bytes that are not valid WAL at [`lsn`](DecodeError::lsn).
///
/// For page-level failures `lsn` is the page's address; for record-level failures it is the
/// record's start (`ReadRecPtr`), as in the server's messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} at {lsn}")]
#[non_exhaustive]
pub struct DecodeError {
    /// Where the failure is: the page address or the record start.
    pub lsn: Lsn,
    /// What failed.
    pub kind: DecodeErrorKind,
}

impl DecodeError {
    /// A failure of kind `kind` at `lsn`.
    pub fn new(lsn: Lsn, kind: DecodeErrorKind) -> Self {
        DecodeError { lsn, kind }
    }

    /// Whether the failure is in a page header rather than in a record.
    pub fn is_page_error(&self) -> bool {
        matches!(
            self.kind,
            DecodeErrorKind::PageMagic { .. }
                | DecodeErrorKind::UnknownMagic { .. }
                | DecodeErrorKind::PageInfoBits { .. }
                | DecodeErrorKind::MissingLongHeader { .. }
                | DecodeErrorKind::SystemIdMismatch { .. }
                | DecodeErrorKind::SegmentSizeMismatch { .. }
                | DecodeErrorKind::BlockSizeMismatch { .. }
                | DecodeErrorKind::PageAddrMismatch { .. }
                | DecodeErrorKind::TimelineBackwards { .. }
                | DecodeErrorKind::TimelineAhead { .. }
                | DecodeErrorKind::TimelineNotInHistory { .. }
                | DecodeErrorKind::ZeroPage
        )
    }
}

/// The ways WAL can fail to decode. Messages follow the server's wording where it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The decoder must start at a page boundary.
    StartNotPageAligned,
    /// `xlp_magic` differs from the major being read.
    PageMagic {
        /// The magic on the page.
        found: u16,
        /// The magic of the expected major.
        expected: u16,
    },
    /// The first page's magic belongs to no supported major.
    UnknownMagic {
        /// The magic on the page.
        found: u16,
    },
    /// `xlp_info` has bits no server sets.
    PageInfoBits {
        /// The flags found.
        info: u16,
    },
    /// The first page of a segment lacks the long header.
    MissingLongHeader {
        /// The flags found.
        info: u16,
    },
    /// The long header names another cluster.
    SystemIdMismatch {
        /// `xlp_sysid` on the page.
        found: u64,
        /// The expected system identifier.
        expected: u64,
    },
    /// The long header's segment size differs from the decoder's.
    SegmentSizeMismatch {
        /// `xlp_seg_size` on the page.
        found: u32,
        /// The decoder's segment size.
        expected: u32,
    },
    /// The long header's WAL block size is not 8192.
    BlockSizeMismatch {
        /// `xlp_xlog_blcksz` on the page.
        found: u32,
    },
    /// `xlp_pageaddr` is not the page's position (typically a recycled segment).
    PageAddrMismatch {
        /// The address on the page.
        found: Lsn,
    },
    /// The page's timeline is lower than an earlier page's.
    TimelineBackwards {
        /// The page's timeline.
        found: u32,
        /// The previous page's timeline.
        previous: u32,
    },
    /// The page's timeline is newer than the timeline being read.
    TimelineAhead {
        /// The page's timeline.
        found: u32,
        /// The timeline being read.
        max: u32,
    },
    /// The page's timeline is neither the timeline being read nor one of its ancestors.
    TimelineNotInHistory {
        /// The page's timeline.
        found: u32,
        /// The timeline being read.
        target: u32,
    },
    /// The page header is all zeros: the page was never written.
    ZeroPage,
    /// A record continues onto a page that lacks `XLP_FIRST_IS_CONTRECORD`.
    ContrecordMissing {
        /// The page that should continue the record.
        page: Lsn,
    },
    /// `xlp_rem_len` disagrees with what remains of the record being continued.
    ContrecordLength {
        /// The page that continues the record.
        page: Lsn,
        /// `xlp_rem_len` on the page.
        rem_len: u32,
        /// Bytes of the record still expected.
        expected: u64,
    },
    /// A new record was expected at a page start, but the page says it continues one.
    UnexpectedContrecord,
    /// `xl_tot_len` is smaller than a record header.
    RecordTooShort {
        /// `xl_tot_len`.
        tot_len: u32,
    },
    /// `xl_tot_len` is larger than the decoder accepts.
    RecordTooLong {
        /// `xl_tot_len`.
        tot_len: u32,
        /// The limit.
        max: u32,
    },
    /// `xl_rmid` is not a valid resource manager for the major.
    InvalidRmgr {
        /// `xl_rmid`.
        rmid: u8,
    },
    /// `xl_prev` is not the previous record's position.
    PrevLinkMismatch {
        /// `xl_prev` in the record.
        found: Lsn,
        /// The previous record's position.
        expected: Lsn,
    },
    /// `xl_prev` of the first record read is not below the record's own position.
    PrevLinkNotBefore {
        /// `xl_prev` in the record.
        found: Lsn,
    },
    /// The CRC computed over the record differs from `xl_crc`.
    CrcMismatch {
        /// `xl_crc` stored in the record.
        expected: u32,
        /// The CRC of the bytes read.
        got: u32,
    },
    /// The decoder's record buffer holds a different length than `xl_tot_len`.
    RecordLengthMismatch {
        /// `xl_tot_len`.
        tot_len: u32,
        /// Bytes given.
        available: usize,
    },
    /// Fragment headers and payload lengths do not add up to `xl_tot_len`.
    FragmentsOverrun,
    /// Block ids must increase within a record.
    BlockIdOutOfOrder {
        /// The offending id.
        block_id: u8,
    },
    /// A fragment id that is neither a block (0–32) nor a reserved id (252–255).
    InvalidBlockId {
        /// The offending id.
        block_id: u8,
    },
    /// `BKPBLOCK_HAS_DATA` is set but the data length is zero.
    BlockDataMissing {
        /// The block id.
        block_id: u8,
    },
    /// `BKPBLOCK_HAS_DATA` is clear but a data length is given.
    BlockDataUnexpected {
        /// The block id.
        block_id: u8,
        /// The data length given.
        data_len: u16,
    },
    /// The image header's hole and length contradict its flags.
    InvalidImage {
        /// The block id.
        block_id: u8,
        /// `bimg_len`.
        len: u16,
        /// `hole_offset`.
        hole_offset: u16,
        /// `hole_length`.
        hole_length: u16,
        /// `BKPIMAGE_HAS_HOLE`.
        has_hole: bool,
        /// Whether a compression bit is set.
        compressed: bool,
    },
    /// `BKPBLOCK_SAME_REL` on the first block reference.
    SameRelWithoutPrevious,
    /// An `OVERWRITE_CONTRECORD` record names another aborted record.
    OverwrittenLsnMismatch {
        /// `overwritten_lsn` in the record.
        found: Lsn,
        /// The aborted record the decoder saw.
        expected: Lsn,
    },
    /// The major version is unknown when a record must be decoded.
    MajorUnknown,
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use DecodeErrorKind as K;
        match self {
            K::StartNotPageAligned => write!(f, "decoding must start at a page boundary"),
            K::PageMagic { found, expected } => {
                write!(
                    f,
                    "invalid magic number {found:04X} (expected {expected:04X}) in page header"
                )
            }
            K::UnknownMagic { found } => write!(
                f,
                "invalid magic number {found:04X} in page header: not a postgresql 14 to 18 wal page"
            ),
            K::PageInfoBits { info } => write!(f, "invalid info bits {info:04X} in page header"),
            K::MissingLongHeader { info } => write!(
                f,
                "invalid info bits {info:04X} in page header: first page of a segment needs a long header"
            ),
            K::SystemIdMismatch { found, expected } => write!(
                f,
                "wal file is from different database system: wal file database system identifier is {found}, expected {expected}"
            ),
            K::SegmentSizeMismatch { found, expected } => write!(
                f,
                "wal file is from different database system: segment size {found} in page header, expected {expected}"
            ),
            K::BlockSizeMismatch { found } => write!(
                f,
                "wal file is from different database system: xlog_blcksz {found} in page header, expected 8192"
            ),
            K::PageAddrMismatch { found } => {
                write!(f, "unexpected pageaddr {found} in page header")
            }
            K::TimelineBackwards { found, previous } => {
                write!(
                    f,
                    "out-of-sequence timeline id {found} (after {previous}) in page header"
                )
            }
            K::TimelineAhead { found, max } => write!(
                f,
                "timeline id {found} in page header is newer than timeline {max} being read"
            ),
            K::TimelineNotInHistory { found, target } => write!(
                f,
                "unexpected timeline id {found} in page header: not in the history of timeline {target}"
            ),
            K::ZeroPage => write!(f, "page header is all zeros"),
            K::ContrecordMissing { page } => {
                write!(f, "there is no contrecord flag at {page} for the record")
            }
            K::ContrecordLength {
                page,
                rem_len,
                expected,
            } => write!(
                f,
                "invalid contrecord length {rem_len} (expected {expected}) at {page} for the record"
            ),
            K::UnexpectedContrecord => write!(f, "contrecord is requested"),
            K::RecordTooShort { tot_len } => {
                write!(
                    f,
                    "invalid record length: wanted at least 24, got {tot_len}"
                )
            }
            K::RecordTooLong { tot_len, max } => {
                write!(
                    f,
                    "invalid record length: {tot_len} exceeds the limit of {max}"
                )
            }
            K::InvalidRmgr { rmid } => write!(f, "invalid resource manager id {rmid}"),
            K::PrevLinkMismatch { found, expected } => {
                write!(
                    f,
                    "record with incorrect prev-link {found} (expected {expected})"
                )
            }
            K::PrevLinkNotBefore { found } => {
                write!(
                    f,
                    "record with incorrect prev-link {found} (not before the record)"
                )
            }
            K::CrcMismatch { expected, got } => write!(
                f,
                "incorrect resource manager data checksum: expected {expected:08X}, got {got:08X}"
            ),
            K::RecordLengthMismatch { tot_len, available } => {
                write!(f, "record length {tot_len} but {available} bytes given")
            }
            K::FragmentsOverrun => write!(f, "record with invalid length"),
            K::BlockIdOutOfOrder { block_id } => write!(f, "out-of-order block_id {block_id}"),
            K::InvalidBlockId { block_id } => write!(f, "invalid block_id {block_id}"),
            K::BlockDataMissing { block_id } => write!(
                f,
                "BKPBLOCK_HAS_DATA set, but no data included for block {block_id}"
            ),
            K::BlockDataUnexpected { block_id, data_len } => write!(
                f,
                "BKPBLOCK_HAS_DATA not set, but data length is {data_len} for block {block_id}"
            ),
            K::InvalidImage {
                block_id,
                len,
                hole_offset,
                hole_length,
                has_hole,
                compressed,
            } => write!(
                f,
                "invalid block image for block {block_id}: length {len}, hole offset {hole_offset}, hole length {hole_length}, has hole {has_hole}, compressed {compressed}"
            ),
            K::SameRelWithoutPrevious => write!(f, "BKPBLOCK_SAME_REL set but no previous rel"),
            K::OverwrittenLsnMismatch { found, expected } => {
                write!(f, "mismatching overwritten lsn {found} -> {expected}")
            }
            K::MajorUnknown => write!(f, "postgresql major version unknown"),
        }
    }
}
