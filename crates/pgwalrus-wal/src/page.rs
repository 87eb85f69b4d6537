//! WAL page headers: the short header every 8 KiB page starts with, and the long header at
//! the start of each segment, which carries the cluster's system identifier and segment size.
//!
//! Layout (server byte order, little-endian on every platform pgwalrus supports):
//! `magic u16 | info u16 | tli u32 | pageaddr u64 | rem_len u32 | pad to 24`, and for the long
//! header `sysid u64 @24 | seg_size u32 @32 | xlog_blcksz u32 @36`, 40 bytes in all.

use crate::{Lsn, TimeLineId};

/// Size of a short page header (MAXALIGN of its 20 bytes of fields).
pub const SHORT_HEADER_LEN: usize = 24;
/// Size of a long page header.
pub const LONG_HEADER_LEN: usize = 40;
/// The WAL block size every supported server is built with by default.
pub const XLOG_BLCKSZ: u32 = 8192;

/// `xlp_info`: the page starts with the continuation of a record from the previous page.
pub const XLP_FIRST_IS_CONTRECORD: u16 = 0x0001;
/// `xlp_info`: this page has a long header (first page of a segment).
pub const XLP_LONG_HEADER: u16 = 0x0002;
/// `xlp_info`: full-page images in this page's records may be removed by a compressor.
pub const XLP_BKP_REMOVABLE: u16 = 0x0004;
/// `xlp_info`: the continuation record at the page start was overwritten (aborted record).
pub const XLP_FIRST_IS_OVERWRITE_CONTRECORD: u16 = 0x0008;
/// Every `xlp_info` bit a valid page may carry.
pub const XLP_ALL_FLAGS: u16 = 0x000F;

/// The page magic (`XLOG_PAGE_MAGIC`) each supported major writes; it changes whenever the
/// WAL format does, so it identifies the major a segment came from.
pub const PAGE_MAGIC_BY_MAJOR: [(u32, u16); 5] = [
    (14, 0xD10D),
    (15, 0xD110),
    (16, 0xD113),
    (17, 0xD116),
    (18, 0xD118),
];

/// The major version whose WAL carries `magic`, if it is one pgwalrus supports.
pub fn major_for_magic(magic: u16) -> Option<u32> {
    PAGE_MAGIC_BY_MAJOR
        .iter()
        .find(|(_, m)| *m == magic)
        .map(|(major, _)| *major)
}

/// A decoded page header (short fields; the long-header fields when present).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageHeader {
    /// `xlp_magic`.
    pub magic: u16,
    /// `xlp_info` flag bits.
    pub info: u16,
    /// `xlp_tli`: timeline of the first record on the page.
    pub tli: u32,
    /// `xlp_pageaddr`: WAL position of the page start.
    pub page_addr: Lsn,
    /// `xlp_rem_len`: bytes of a continued record remaining at the page start.
    pub rem_len: u32,
    /// The long-header fields, when `XLP_LONG_HEADER` is set.
    pub long: Option<LongHeaderFields>,
}

/// The fields only the first page of a segment carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LongHeaderFields {
    /// `xlp_sysid`: the cluster's system identifier (as in `pg_control_system()`).
    pub system_id: u64,
    /// `xlp_seg_size`: WAL segment size in bytes.
    pub seg_size: u32,
    /// `xlp_xlog_blcksz`: WAL block size in bytes.
    pub xlog_blcksz: u32,
}

/// Why bytes are not a page header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PageHeaderError {
    /// Fewer bytes than the header needs.
    #[error("page header needs {needed} bytes, only {available} available")]
    Short {
        /// Bytes the header needs.
        needed: usize,
        /// Bytes given.
        available: usize,
    },
    /// All header bytes are zero: the page was never written (a sparse or pre-zeroed file).
    #[error("page header is all zeros (page never written)")]
    Zero,
    /// `xlp_info` has bits no server sets.
    #[error("invalid page info flags {info:#06x}")]
    Flags {
        /// The flags found.
        info: u16,
    },
}

impl PageHeader {
    /// Decodes the header at the start of `page`; reads the long fields when the long-header
    /// flag is set.
    ///
    /// # Errors
    /// Too few bytes, an all-zero header, or unknown flag bits. The magic is returned, not
    /// judged: callers compare it with what they expect.
    pub fn parse(page: &[u8]) -> Result<PageHeader, PageHeaderError> {
        let short = page.get(..SHORT_HEADER_LEN).ok_or(PageHeaderError::Short {
            needed: SHORT_HEADER_LEN,
            available: page.len(),
        })?;
        if short.iter().all(|&b| b == 0) {
            return Err(PageHeaderError::Zero);
        }
        let magic = u16_at(short, 0);
        let info = u16_at(short, 2);
        if info & !XLP_ALL_FLAGS != 0 {
            return Err(PageHeaderError::Flags { info });
        }
        let long = if info & XLP_LONG_HEADER != 0 {
            let long = page.get(..LONG_HEADER_LEN).ok_or(PageHeaderError::Short {
                needed: LONG_HEADER_LEN,
                available: page.len(),
            })?;
            Some(LongHeaderFields {
                system_id: u64_at(long, 24),
                seg_size: u32_at(long, 32),
                xlog_blcksz: u32_at(long, 36),
            })
        } else {
            None
        };
        Ok(PageHeader {
            magic,
            info,
            tli: u32_at(short, 4),
            page_addr: Lsn(u64_at(short, 8)),
            rem_len: u32_at(short, 16),
            long,
        })
    }

    /// The page's timeline, when it is a valid timeline id.
    pub fn timeline(&self) -> Option<TimeLineId> {
        TimeLineId::new(self.tli).ok()
    }
}

// Callers slice to the header length first, so these offsets are always in bounds; `get`
// keeps them panic-free regardless.
fn u16_at(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u16::from_le_bytes)
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first 40 bytes of `000000010000000000000001` from a PostgreSQL 15.18 cluster made
    /// by `initdb` (16 MiB segments), captured with `xxd -l 40`; `pg_controldata` reported
    /// system identifier 7710561531580599929 for it.
    const PG15_FIRST_PAGE: [u8; 40] = [
        0x10, 0xd1, 0x02, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x79, 0x4e, 0xa7, 0x54, 0xdc, 0x6a,
        0x01, 0x6b, 0x00, 0x00, 0x00, 0x01, 0x00, 0x20, 0x00, 0x00,
    ];

    #[test]
    fn decodes_a_real_long_header() {
        let h = PageHeader::parse(&PG15_FIRST_PAGE).unwrap();
        assert_eq!(major_for_magic(h.magic), Some(15));
        assert_eq!(h.info & XLP_LONG_HEADER, XLP_LONG_HEADER);
        assert_eq!(h.tli, 1);
        assert_eq!(h.page_addr, Lsn(0x0100_0000));
        let long = h.long.unwrap();
        assert_eq!(long.seg_size, 16 << 20);
        assert_eq!(long.xlog_blcksz, XLOG_BLCKSZ);
        assert_eq!(long.system_id, 7_710_561_531_580_599_929);
    }

    #[test]
    fn rejects_short_zero_and_bad_flags() {
        assert!(matches!(
            PageHeader::parse(&[1; 10]),
            Err(PageHeaderError::Short { .. })
        ));
        assert_eq!(PageHeader::parse(&[0; 40]), Err(PageHeaderError::Zero));
        let mut bad = PG15_FIRST_PAGE;
        bad[2] = 0x40;
        assert!(matches!(
            PageHeader::parse(&bad),
            Err(PageHeaderError::Flags { .. })
        ));
        assert!(matches!(
            PageHeader::parse(&PG15_FIRST_PAGE[..30]),
            Err(PageHeaderError::Short { .. })
        ));
    }

    #[test]
    fn never_panics_on_arbitrary_prefixes() {
        for len in 0..=PG15_FIRST_PAGE.len() {
            let _ = PageHeader::parse(&PG15_FIRST_PAGE[..len]);
        }
    }
}
