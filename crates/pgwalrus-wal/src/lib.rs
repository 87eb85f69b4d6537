//! PostgreSQL WAL format for pgwalrus: positions, timelines, segment sizes, the one grammar
//! of archive file names and timeline history files.
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
//!
//! # Example
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

pub mod crc;
pub mod decoder;
pub mod desc;
pub mod dump;
mod error;
mod hex;
pub mod history;
pub mod fuzz;
mod lsn;
mod major;
pub mod names;
pub mod page;
pub mod record;
pub mod rmgr;
mod segment;
#[cfg(test)]
mod testutil;
mod timeline;

pub use decoder::{DecodeError, DecodeErrorKind, EndOfWal, EndReason, Expectations, WalDecoder};
pub use error::ValueError;
pub use lsn::Lsn;
pub use major::{PgMajor, UnsupportedMajor};
pub use record::Record;
pub use segment::{SegNo, WalSegSize};
pub use timeline::TimeLineId;
