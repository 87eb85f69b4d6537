//! WAL for unit tests, laid out the way the server does: long and short page headers,
//! records crossing pages and segments, CRC-32C, the `xl_prev` chain (1 MiB segments,
//! PostgreSQL 15's page magic, XLOG NOOP records).

use pgwalrus_archive::compress::Encoder;
use pgwalrus_wal::crc::record_crc;
use pgwalrus_wal::names::{Compression, SegmentName};
use pgwalrus_wal::page::{XLOG_BLCKSZ, XLP_FIRST_IS_CONTRECORD, XLP_LONG_HEADER};
use pgwalrus_wal::record::XLR_BLOCK_ID_DATA_LONG;
use pgwalrus_wal::{PgMajor, SegNo, TimeLineId, WalSegSize};

pub(crate) const SEG: u64 = 1 << 20;
const PAGE: u64 = XLOG_BLCKSZ as u64;

/// Writes WAL from the start of a segment.
pub(crate) struct Wal {
    start: u64,
    pub(crate) out: Vec<u8>,
    prev: u64,
}

impl Wal {
    pub(crate) fn new(segno: u64) -> Wal {
        Wal {
            start: segno * SEG,
            out: Vec::new(),
            prev: segno * SEG - 0x100,
        }
    }

    fn pos(&self) -> u64 {
        self.start + self.out.len() as u64
    }

    fn page_header(&mut self, info: u16, rem_len: u32) {
        let page = self.pos();
        let long = page.is_multiple_of(SEG);
        self.out
            .extend_from_slice(&PgMajor::V15.magic().to_le_bytes());
        let info = info | if long { XLP_LONG_HEADER } else { 0 };
        self.out.extend_from_slice(&info.to_le_bytes());
        self.out.extend_from_slice(&1u32.to_le_bytes());
        self.out.extend_from_slice(&page.to_le_bytes());
        self.out.extend_from_slice(&rem_len.to_le_bytes());
        self.out.extend_from_slice(&[0; 4]);
        if long {
            self.out.extend_from_slice(&7u64.to_le_bytes());
            self.out.extend_from_slice(&(SEG as u32).to_le_bytes());
            self.out.extend_from_slice(&XLOG_BLCKSZ.to_le_bytes());
        }
    }

    /// An XLOG NOOP record whose main data is `len` bytes.
    fn record(&mut self, len: usize) {
        while !self.out.len().is_multiple_of(8) {
            self.out.push(0);
        }
        if self.pos().is_multiple_of(PAGE) {
            self.page_header(0, 0);
        }
        let mut rec = Vec::new();
        rec.extend_from_slice(&(24 + 5 + len as u32).to_le_bytes());
        rec.extend_from_slice(&0u32.to_le_bytes());
        rec.extend_from_slice(&self.prev.to_le_bytes());
        rec.extend_from_slice(&[0x20, 0, 0, 0, 0, 0, 0, 0]);
        rec.push(XLR_BLOCK_ID_DATA_LONG);
        rec.extend_from_slice(&(len as u32).to_le_bytes());
        rec.extend((0..len).map(|i| (i * 31 + 7) as u8));
        let crc = record_crc(&rec).unwrap();
        rec[20..24].copy_from_slice(&crc.to_le_bytes());
        self.prev = self.pos();
        let mut rest = &rec[..];
        while !rest.is_empty() {
            let room = (PAGE - self.pos() % PAGE) as usize;
            let (now, later) = rest.split_at(room.min(rest.len()));
            self.out.extend_from_slice(now);
            rest = later;
            if !rest.is_empty() {
                self.page_header(XLP_FIRST_IS_CONTRECORD, rest.len() as u32);
            }
        }
    }

    /// Records until `until` bytes are written.
    pub(crate) fn fill(&mut self, until: u64) {
        let mut i = 0;
        while (self.out.len() as u64) < until {
            self.record(100 + (i * 997) % 3000);
            i += 1;
        }
    }
}

/// Two full segments (3 and 4) of records, the last record of segment 3 running into 4,
/// and the start of segment 5.
pub(crate) fn wal() -> Vec<u8> {
    let mut w = Wal::new(3);
    w.fill(2 * SEG + 20_000);
    w.out.truncate((2 * SEG + 16_384) as usize);
    w.out
}

/// Segment `segno` of timeline 1 (its name at the 1 MiB segment size).
pub(crate) fn name(segno: u64) -> SegmentName {
    SegmentName::new(TimeLineId::ONE, SegNo(segno), WalSegSize::MIN).unwrap()
}

/// `data` as one finished stream of `method`.
pub(crate) fn compressed(method: Compression, data: &[u8]) -> Vec<u8> {
    let mut e = Encoder::new(method, 3).unwrap();
    e.write(data).unwrap();
    e.finish().unwrap();
    std::mem::take(e.output())
}
