//! Test-only WAL writer: lays records out in pages and segments the way the server does
//! (long header on each segment's first page, `XLP_FIRST_IS_CONTRECORD` and `xlp_rem_len`
//! on continuation pages, 8-byte record alignment, CRC-32C, the `xl_prev` chain), so the
//! decoder can be tested on shapes a server only produces by chance.
//!
//! Compiled for this crate's tests, and for other crates' tests and benchmarks with the
//! non-default `testutil` feature; not part of the API.

use crate::crc::record_crc;
use crate::page::{XLOG_BLCKSZ, XLP_FIRST_IS_CONTRECORD, XLP_LONG_HEADER};
use crate::record::{
    BKPBLOCK_HAS_DATA, BKPBLOCK_HAS_IMAGE, BKPBLOCK_SAME_REL, RelFileLocator,
    XLR_BLOCK_ID_DATA_LONG, XLR_BLOCK_ID_DATA_SHORT, XLR_BLOCK_ID_ORIGIN,
    XLR_BLOCK_ID_TOPLEVEL_XID,
};
use crate::{Lsn, PgMajor, WalSegSize};

/// The WAL page size.
pub const PAGE: u64 = XLOG_BLCKSZ as u64;
/// The system identifier the writer puts in long headers.
pub const SYSID: u64 = 7_000_000_000_000_000_001;

/// A full-page image as a block reference carries it.
#[derive(Debug, Clone)]
pub struct Image {
    /// `bimg_info`.
    pub info: u8,
    /// Bytes before the hole.
    pub hole_offset: u16,
    /// Written only when the image is compressed and has a hole.
    pub hole_length: Option<u16>,
    /// The stored image bytes.
    pub bytes: Vec<u8>,
}

/// Builds a record body (everything after the 24-byte header).
#[derive(Debug, Default, Clone)]
pub struct Body {
    headers: Vec<u8>,
    payload: Vec<u8>,
    extra: Vec<u8>,
    main: Vec<u8>,
    long_main: bool,
}

impl Body {
    /// An empty body.
    pub fn new() -> Self {
        Self::default()
    }

    /// A block reference; `rel: None` means `BKPBLOCK_SAME_REL`.
    pub fn block(
        mut self,
        id: u8,
        fork: u8,
        rel: Option<RelFileLocator>,
        blkno: u32,
        image: Option<Image>,
        data: &[u8],
    ) -> Self {
        let mut flags = fork;
        if image.is_some() {
            flags |= BKPBLOCK_HAS_IMAGE;
        }
        if !data.is_empty() {
            flags |= BKPBLOCK_HAS_DATA;
        }
        if rel.is_none() {
            flags |= BKPBLOCK_SAME_REL;
        }
        self.headers.push(id);
        self.headers.push(flags);
        self.headers
            .extend_from_slice(&(data.len() as u16).to_le_bytes());
        if let Some(image) = &image {
            self.headers
                .extend_from_slice(&(image.bytes.len() as u16).to_le_bytes());
            self.headers
                .extend_from_slice(&image.hole_offset.to_le_bytes());
            self.headers.push(image.info);
            if let Some(hole) = image.hole_length {
                self.headers.extend_from_slice(&hole.to_le_bytes());
            }
            self.payload.extend_from_slice(&image.bytes);
        }
        if let Some(rel) = rel {
            for v in [rel.spc_oid, rel.db_oid, rel.rel_number] {
                self.headers.extend_from_slice(&v.to_le_bytes());
            }
        }
        self.headers.extend_from_slice(&blkno.to_le_bytes());
        self.payload.extend_from_slice(data);
        self
    }

    /// A replication origin fragment.
    pub fn origin(mut self, origin: u16) -> Self {
        self.extra.push(XLR_BLOCK_ID_ORIGIN);
        self.extra.extend_from_slice(&origin.to_le_bytes());
        self
    }

    /// A top-level transaction id fragment.
    pub fn toplevel_xid(mut self, xid: u32) -> Self {
        self.extra.push(XLR_BLOCK_ID_TOPLEVEL_XID);
        self.extra.extend_from_slice(&xid.to_le_bytes());
        self
    }

    /// Main data (the short length form when it fits).
    pub fn main(mut self, main: &[u8]) -> Self {
        self.main = main.to_vec();
        self
    }

    /// Main data with the four-byte length form even when short.
    pub fn main_long(mut self, main: &[u8]) -> Self {
        self.main = main.to_vec();
        self.long_main = true;
        self
    }

    /// The body bytes: fragment headers, payloads, main data.
    pub fn build(&self) -> Vec<u8> {
        let mut out = self.headers.clone();
        out.extend_from_slice(&self.extra);
        if !self.main.is_empty() {
            if let (Ok(short), false) = (u8::try_from(self.main.len()), self.long_main) {
                out.push(XLR_BLOCK_ID_DATA_SHORT);
                out.push(short);
            } else {
                out.push(XLR_BLOCK_ID_DATA_LONG);
                out.extend_from_slice(&(self.main.len() as u32).to_le_bytes());
            }
        }
        out.extend_from_slice(&self.payload);
        out.extend_from_slice(&self.main);
        out
    }
}

/// A relation in the default tablespace.
pub fn rel(db: u32, relnumber: u32) -> RelFileLocator {
    RelFileLocator {
        spc_oid: 1663,
        db_oid: db,
        rel_number: relnumber,
    }
}

/// Writes WAL from a page-aligned start.
#[derive(Debug, Clone)]
pub struct WalWriter {
    /// The major whose page magic is written.
    pub major: PgMajor,
    /// The segment size (long headers, switch padding).
    pub seg_size: WalSegSize,
    /// The system identifier in long headers.
    pub sysid: u64,
    /// The timeline in page headers.
    pub tli: u32,
    /// Where `out` starts.
    pub start: Lsn,
    /// The WAL written so far.
    pub out: Vec<u8>,
    /// `xl_prev` of the next record.
    pub prev: Lsn,
}

impl WalWriter {
    /// A writer starting at the page boundary `start`.
    pub fn new(major: PgMajor, seg_size: WalSegSize, start: Lsn) -> Self {
        assert_eq!(start.0 % PAGE, 0);
        WalWriter {
            major,
            seg_size,
            sysid: SYSID,
            tli: 1,
            start,
            out: Vec::new(),
            prev: Lsn(start.0.saturating_sub(0x100)),
        }
    }

    /// The position of the next byte written.
    pub fn pos(&self) -> Lsn {
        Lsn(self.start.0 + self.out.len() as u64)
    }

    fn page_header(&mut self, info: u16, rem_len: u32) {
        let page = self.pos();
        let long = page.is_segment_start(self.seg_size);
        self.out
            .extend_from_slice(&self.major.magic().to_le_bytes());
        let info = info | if long { XLP_LONG_HEADER } else { 0 };
        self.out.extend_from_slice(&info.to_le_bytes());
        self.out.extend_from_slice(&self.tli.to_le_bytes());
        self.out.extend_from_slice(&page.0.to_le_bytes());
        self.out.extend_from_slice(&rem_len.to_le_bytes());
        self.out.extend_from_slice(&[0; 4]);
        if long {
            self.out.extend_from_slice(&self.sysid.to_le_bytes());
            self.out
                .extend_from_slice(&self.seg_size.bytes().to_le_bytes());
            self.out.extend_from_slice(&XLOG_BLCKSZ.to_le_bytes());
        }
    }

    /// Pads with zeros to the next multiple of 8.
    fn align(&mut self) {
        while !self.out.len().is_multiple_of(8) {
            self.out.push(0);
        }
    }

    /// Appends a record with the given header fields and body; returns its position.
    pub fn record(&mut self, rmid: u8, info: u8, xid: u32, body: &[u8]) -> Lsn {
        let bytes = self.raw_record(rmid, info, xid, body);
        self.put_record(&bytes)
    }

    /// The bytes of a record that would follow the current one, CRC included.
    pub fn raw_record(&self, rmid: u8, info: u8, xid: u32, body: &[u8]) -> Vec<u8> {
        let tot_len = 24 + body.len() as u32;
        let mut rec = Vec::with_capacity(tot_len as usize);
        rec.extend_from_slice(&tot_len.to_le_bytes());
        rec.extend_from_slice(&xid.to_le_bytes());
        rec.extend_from_slice(&self.prev.0.to_le_bytes());
        rec.push(info);
        rec.push(rmid);
        rec.extend_from_slice(&[0, 0]);
        rec.extend_from_slice(&[0; 4]);
        rec.extend_from_slice(body);
        let crc = record_crc(&rec).unwrap_or(0);
        rec[20..24].copy_from_slice(&crc.to_le_bytes());
        rec
    }

    /// Lays out already-built record bytes (whose `xl_prev` the caller chose).
    pub fn put_record(&mut self, bytes: &[u8]) -> Lsn {
        self.align();
        if self.pos().0.is_multiple_of(PAGE) {
            self.page_header(0, 0);
        }
        let lsn = self.pos();
        let mut rest = bytes;
        while !rest.is_empty() {
            let room = (PAGE - self.pos().0 % PAGE) as usize;
            let (now, later) = rest.split_at(room.min(rest.len()));
            self.out.extend_from_slice(now);
            rest = later;
            if !rest.is_empty() {
                self.page_header(XLP_FIRST_IS_CONTRECORD, rest.len() as u32);
            }
        }
        self.prev = lsn;
        lsn
    }

    /// Appends an `XLOG SWITCH` record and pads the segment as the server does (zeroed
    /// pages with short headers); returns the record's position.
    pub fn switch(&mut self) -> Lsn {
        let lsn = self.record(0, 0x40, 0, &[]);
        self.align();
        while !self.pos().is_segment_start(self.seg_size) {
            if self.pos().0.is_multiple_of(PAGE) {
                self.page_header(0, 0);
            } else {
                self.out.push(0);
            }
        }
        lsn
    }

    /// Zero-fills to the end of the current segment (an unwritten tail).
    pub fn zero_fill_segment(&mut self) {
        while !self.pos().is_segment_start(self.seg_size) || self.out.is_empty() {
            self.out.push(0);
        }
    }

    /// An XLOG NOOP record of total length exactly `tot_len` (at least 27) carrying
    /// main data.
    pub fn noop(&mut self, tot_len: usize) -> Lsn {
        let body = noop_body(tot_len);
        self.record(0, 0x20, 0, &body)
    }
}

/// The body of an XLOG NOOP record of total length `tot_len` (main data of the right size;
/// at least one byte, as the server never writes an empty main-data fragment).
pub fn noop_body(tot_len: usize) -> Vec<u8> {
    assert!(tot_len >= 27);
    let short_main = tot_len - 24 - 2;
    if short_main < 256 {
        let main: Vec<u8> = (0..short_main).map(|i| i as u8).collect();
        Body::new().main(&main).build()
    } else {
        let main: Vec<u8> = (0..tot_len - 24 - 5).map(|i| (i * 7) as u8).collect();
        Body::new().main_long(&main).build()
    }
}
