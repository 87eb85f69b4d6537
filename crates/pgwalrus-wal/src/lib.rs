//! PostgreSQL WAL format for pgwalrus: positions, timelines, segment sizes, the one grammar
//! of archive file names and timeline history files, and WAL record decoding and
//! description for PostgreSQL 14 to 18.
//!
//! Everything here is pure: no files, sockets, clocks or async. Every parser takes
//! untrusted input and answers with a typed error that names it; none panics.
//!
//! # Layout
//!
//! * [`Lsn`] (`lsn.rs`) — a WAL position, its `X/Y` text form and checked arithmetic.
//! * [`TimeLineId`] (`timeline.rs`) — a timeline id, decimal or 8-hex-digit.
//! * [`WalSegSize`], [`SegNo`] (`segment.rs`) — the segment size and segment numbers, and
//!   conversions between segment numbers and positions.
//! * [`names`] — the only code that formats or parses archive file names: segments,
//!   `.partial`, compression suffixes, `.history`, backup history, temporary names.
//! * [`page`] — WAL page headers; the long header's system identifier and segment size.
//! * [`history`] — timeline `.history` file contents and "which timeline holds this
//!   position".
//! * [`ValueError`] (`error.rs`) — errors for the newtypes above.
//! * [`PgMajor`] (`major.rs`) — the supported majors and what their WAL formats differ in.
//! * [`crc`] — CRC-32C as PostgreSQL computes it for records.
//! * [`record`] — a decoded [`Record`]: header, block references (relation, fork, block,
//!   full-page image with its hole and compression), main data.
//! * [`decoder`] — [`WalDecoder`]: incremental, sans-IO decoding of a WAL byte stream into
//!   records, validating pages, the `xl_prev` chain and CRCs; [`DecodeError`]; end of WAL
//!   versus corruption ([`EndOfWal`]); checking in place ([`BorrowedFeed`],
//!   [`RecordView`]) and [`SyncPoint`]s for parallel checking.
//! * [`rmgr`] — resource manager ids and names, record type names (`identify`) per major.
//! * [`desc`] — record descriptions as `pg_waldump` prints them, per major.
//! * [`dump`] — `pg_waldump`'s record line and `--stats` tables.
//! * [`fuzz`] — arbitrary-bytes entry points for fuzz targets.
//!
//! # Example
//!
//!
//! ```
//! use pgwalrus_wal::history::TimelineHistory;
//! use pgwalrus_wal::names::{Compression, FileName, HistoryName, SegmentName};
//! use pgwalrus_wal::{Lsn, TimeLineId, WalSegSize};
//!
//! // The server says: timeline 2, 16 MiB segments, streaming from 0/3000148.
//! let tli: TimeLineId = "2".parse()?;
//! let seg_size: WalSegSize = "16MB".parse()?;
//! let start: Lsn = "0/3000148".parse()?;
//!
//! // Streaming starts at the beginning of the segment, written under a `.partial` name.
//! let segment = SegmentName::containing(tli, start, seg_size)
//!     .with_compression(Some(Compression::Zstd));
//! assert_eq!(segment.start_lsn(), "0/3000000".parse()?);
//! assert_eq!(segment.partial().to_string(), "000000020000000000000003.zst.partial");
//!
//! // Timeline 2 needs its history file; TIMELINE_HISTORY 2 returned this content.
//! let history = TimelineHistory::parse(tli, b"1\t0/3000000\tno recovery target specified\n")?;
//! assert_eq!(HistoryName::new(tli).to_string(), "00000002.history");
//! assert_eq!(history.timeline_of("0/2FFFFFF".parse()?).get(), 1);
//! assert_eq!(history.timeline_of(start), tli);
//!
//! // A directory scan reads names back.
//! let found = FileName::parse("000000010000000000000003.partial", seg_size)?;
//! assert!(found.is_partial() && found.tli() == TimeLineId::ONE);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Decoding records from bytes read in any chunking (here, a segment that was never
//! written):
//!
//! ```
//! use pgwalrus_wal::{EndReason, Expectations, Lsn, PgMajor, WalDecoder, WalSegSize, dump};
//!
//! let start: Lsn = "0/3000000".parse()?;
//! let expect = Expectations::default().with_major(PgMajor::V15);
//! let mut decoder = WalDecoder::new(start, WalSegSize::DEFAULT, expect)?;
//! for chunk in [&[0u8; 5000][..], &[0u8; 3192][..]] {
//!     decoder.feed(chunk);
//!     while let Some(record) = decoder.next()? {
//!         let line = dump::format_record(PgMajor::V15, &record);
//!         assert!(line.starts_with("rmgr: "));
//!     }
//! }
//! decoder.finish();
//! assert!(decoder.next()?.is_none());
//! let end = decoder.end_of_wal().expect("finished");
//! assert_eq!((end.lsn, &end.reason), (start, &EndReason::Zeros));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod crc;
pub mod decoder;
pub mod desc;
pub mod dump;
mod error;
pub mod fuzz;
mod hex;
pub mod history;
mod lsn;
mod major;
pub mod names;
pub mod page;
pub mod record;
pub mod rmgr;
mod segment;
#[cfg(any(test, feature = "testutil"))]
#[doc(hidden)]
pub mod testutil;
mod timeline;

pub use decoder::{
    BorrowedFeed, DecodeError, DecodeErrorKind, EndOfWal, EndReason, Expectations, SyncPoint,
    WalDecoder,
};
pub use error::ValueError;
pub use lsn::Lsn;
pub use major::{PgMajor, UnsupportedMajor};
pub use record::{Record, RecordView};
pub use segment::{SegNo, WalSegSize};
pub use timeline::TimeLineId;
