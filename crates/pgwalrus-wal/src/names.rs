//! The one grammar of WAL archive file names. Nothing else in pgwalrus formats or parses
//! these names: build them with [`SegmentName`] and [`HistoryName`], read them with
//! [`FileName::parse`], and print them with `Display`.
//!
//! # Grammar
//!
//! ```text
//! segment        TTTTTTTTXXXXXXXXYYYYYYYY [compression] [.partial] [.tmp]
//! history        TTTTTTTT.history         [compression]            [.tmp]
//! backup history TTTTTTTTXXXXXXXXYYYYYYYY.OOOOOOOO.backup [compression]
//! compression    .gz | .lz4 | .zst
//! ```
//!
//! * `TTTTTTTT` is the timeline, `XXXXXXXX` is `segno / segments_per_xlogid` and
//!   `YYYYYYYY` is `segno % segments_per_xlogid`, all eight upper-case hex digits
//!   (PostgreSQL's `XLogFileName`). Lower case is rejected, as PostgreSQL's
//!   `IsXLogFileName` does, and so is a `YYYYYYYY` not below
//!   [`WalSegSize::segments_per_xlogid`] (that name cannot exist at this segment size).
//!   Timeline `00000000` is rejected.
//! * The compression suffix comes before `.partial`, in pg_receivewal's order
//!   (`NAME.gz.partial`). pg_receivewal also compresses history files
//!   (`00000002.history.gz`; seen with PostgreSQL 15's `--compress=gzip`), so history
//!   names take a compression suffix too.
//! * `.partial` marks a segment that is still being received, or the last segment of a
//!   timeline that ended part-way through (a promoted server archives one too).
//! * Backup history files (`NAME.OOOOOOOO.backup`, where `OOOOOOOO` is the offset of the
//!   backup start within the segment) are only recognised, so that a directory scan can
//!   tell them apart and skip them; pgwalrus never writes them.
//!
//! # Temporary names
//!
//! A file under construction carries `.tmp` after everything else. Segments are created as
//! `NAME[.c].partial.tmp`, fully sized, then renamed to `NAME[.c].partial`, and renamed to
//! `NAME[.c]` when complete. History files are written as `TTTTTTTT.history[.c].tmp` and
//! renamed to their final name — the same temporary name pg_receivewal uses for them. A name
//! with `.tmp` is never a finished file: [`FileName::is_temporary`] says so, and anything
//! that finds one after a crash may delete it. Backup history files have no temporary form.
//!
//! ```
//! use pgwalrus_wal::names::{Compression, FileName, SegmentName};
//! use pgwalrus_wal::{Lsn, SegNo, TimeLineId, WalSegSize};
//!
//! let seg_size = WalSegSize::DEFAULT;
//! let name = SegmentName::new(TimeLineId::ONE, SegNo(0x16B3), seg_size)?;
//! let receiving = name.with_compression(Some(Compression::Gzip)).partial();
//! assert_eq!(receiving.to_string(), "0000000100000016000000B3.gz.partial");
//! assert_eq!(receiving.temporary().to_string(), "0000000100000016000000B3.gz.partial.tmp");
//!
//! match FileName::parse("0000000100000016000000B3.gz.partial", seg_size)? {
//!     FileName::Segment(s) => {
//!         assert_eq!(s, receiving);
//!         assert_eq!(s.start_lsn(), "16/B3000000".parse::<Lsn>()?);
//!     }
//!     FileName::History(_) | FileName::BackupHistory(_) => unreachable!(),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::str::FromStr;

use crate::error::excerpt;
use crate::hex::{self, HexFieldError};
use crate::{Lsn, SegNo, TimeLineId, WalSegSize};

#[cfg(test)]
mod tests;

const TEMP_SUFFIX: &str = ".tmp";
const PARTIAL_SUFFIX: &str = ".partial";
const HISTORY_SUFFIX: &str = ".history";
const BACKUP_SUFFIX: &str = ".backup";

/// A file name could not be built or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The text does not follow the grammar of any archive file name.
    #[error("{name:?} is not a wal archive file name: {reason}")]
    Unrecognised {
        /// The rejected name (shortened if long).
        name: String,
        /// What was wrong with it.
        reason: &'static str,
    },
    /// The last eight hex digits of a segment name are too large for the segment size: the
    /// file was written by a cluster with smaller segments, or is not a WAL file at all.
    #[error(
        "{name:?} is not a segment name for wal segment size {seg_size}: its last 8 digits must be below {per_xlogid:08X}"
    )]
    SegmentOutOfRange {
        /// The rejected name.
        name: String,
        /// The segment size the name was checked against.
        seg_size: WalSegSize,
        /// Segments per xlogid at that size; the last field must be below it.
        per_xlogid: u64,
    },
    /// The offset in a backup history file name is not inside a segment.
    #[error(
        "{name:?} is not a backup history file name for wal segment size {seg_size}: offset is past the segment end"
    )]
    BackupOffsetOutOfRange {
        /// The rejected name.
        name: String,
        /// The segment size the name was checked against.
        seg_size: WalSegSize,
    },
    /// A segment number whose start is past the last WAL position cannot have a file name.
    #[error(
        "segment {segno} cannot be named at wal segment size {seg_size}: it starts past FFFFFFFF/FFFFFFFF"
    )]
    SegNoOutOfRange {
        /// The rejected segment number.
        segno: SegNo,
        /// The segment size it was checked against.
        seg_size: WalSegSize,
    },
    /// Text that names no compression method.
    #[error("unknown compression method {input:?}: expected gzip, lz4 or zstd")]
    UnknownCompression {
        /// The rejected text.
        input: String,
    },
}

/// A compression method, as it appears in a file name suffix.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Compression {
    /// gzip, suffix `.gz` (pg_receivewal `--compress=gzip`).
    Gzip,
    /// LZ4 frame format, suffix `.lz4` (pg_receivewal `--compress=lz4`).
    Lz4,
    /// Zstandard, suffix `.zst` (pgwalrus only; pg_receivewal cannot write it).
    Zstd,
}

impl Compression {
    /// Every method, in suffix-matching order.
    pub const ALL: [Compression; 3] = [Compression::Gzip, Compression::Lz4, Compression::Zstd];

    /// The file name suffix, with its dot: `.gz`, `.lz4` or `.zst`.
    pub const fn suffix(self) -> &'static str {
        match self {
            Compression::Gzip => ".gz",
            Compression::Lz4 => ".lz4",
            Compression::Zstd => ".zst",
        }
    }

    /// The method's name as pg_receivewal's `--compress` spells it: `gzip`, `lz4`, `zstd`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }

    /// Splits a compression suffix off the end of `s`, if it has one.
    fn strip_from(s: &str) -> (&str, Option<Compression>) {
        for c in Compression::ALL {
            if let Some(rest) = s.strip_suffix(c.suffix()) {
                return (rest, Some(c));
            }
        }
        (s, None)
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Compression {
    type Err = NameError;

    /// Parses a method name: `gzip`, `lz4` or `zstd`.
    ///
    /// # Errors
    ///
    /// [`NameError::UnknownCompression`] for anything else.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Compression::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| NameError::UnknownCompression { input: excerpt(s) })
    }
}

/// The name of a WAL segment file, with its compression, `.partial` and temporary marks.
///
/// Always valid: its segment starts at a real position, and it prints as a name that
/// [`FileName::parse`] reads back unchanged.
#[doc(alias = "XLogFileName")]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct SegmentName {
    tli: TimeLineId,
    segno: SegNo,
    seg_size: WalSegSize,
    compression: Option<Compression>,
    partial: bool,
    temporary: bool,
}

impl SegmentName {
    /// The plain name (uncompressed, complete, final) of segment `segno` on timeline `tli`.
    ///
    /// # Errors
    ///
    /// [`NameError::SegNoOutOfRange`] if the segment would start past the last WAL position
    /// (above [`WalSegSize::max_segno`]); no file name can express it.
    pub fn new(tli: TimeLineId, segno: SegNo, seg_size: WalSegSize) -> Result<Self, NameError> {
        if segno > seg_size.max_segno() {
            return Err(NameError::SegNoOutOfRange { segno, seg_size });
        }
        Ok(SegmentName {
            tli,
            segno,
            seg_size,
            compression: None,
            partial: false,
            temporary: false,
        })
    }

    /// The plain name of the segment that holds the byte at `lsn`.
    #[doc(alias = "XLByteToSeg")]
    pub fn containing(tli: TimeLineId, lsn: Lsn, seg_size: WalSegSize) -> Self {
        SegmentName {
            tli,
            segno: lsn.segno(seg_size),
            seg_size,
            compression: None,
            partial: false,
            temporary: false,
        }
    }

    /// The same segment with the given compression suffix (or none).
    #[must_use]
    pub const fn with_compression(mut self, compression: Option<Compression>) -> Self {
        self.compression = compression;
        self
    }

    /// The same segment marked `.partial`.
    #[must_use]
    pub const fn partial(mut self) -> Self {
        self.partial = true;
        self
    }

    /// The same segment without `.partial`: the name it gets once complete.
    #[must_use]
    pub const fn not_partial(mut self) -> Self {
        self.partial = false;
        self
    }

    /// The same name with `.tmp` appended: the file while it is being created.
    #[must_use]
    pub const fn temporary(mut self) -> Self {
        self.temporary = true;
        self
    }

    /// The same name without `.tmp`.
    #[must_use]
    pub const fn not_temporary(mut self) -> Self {
        self.temporary = false;
        self
    }

    /// The bare 24-digit name, uncompressed, complete and final — the form PostgreSQL asks
    /// `restore_command` for.
    #[must_use]
    pub const fn plain(self) -> Self {
        SegmentName {
            compression: None,
            partial: false,
            temporary: false,
            ..self
        }
    }

    /// The timeline.
    pub const fn tli(&self) -> TimeLineId {
        self.tli
    }

    /// The segment number.
    pub const fn segno(&self) -> SegNo {
        self.segno
    }

    /// The segment size the name was built or parsed with.
    pub const fn seg_size(&self) -> WalSegSize {
        self.seg_size
    }

    /// The compression suffix, if any.
    pub const fn compression(&self) -> Option<Compression> {
        self.compression
    }

    /// `true` if the name ends in `.partial` (before any `.tmp`).
    #[doc(alias = "IsPartialXLogFileName")]
    pub const fn is_partial(&self) -> bool {
        self.partial
    }

    /// `true` if the name ends in `.tmp`.
    pub const fn is_temporary(&self) -> bool {
        self.temporary
    }

    /// The first WAL position in this segment.
    #[doc(alias = "XLogSegNoOffsetToRecPtr")]
    pub const fn start_lsn(&self) -> Lsn {
        // `new`, `containing` and `parse` only admit segments that start at a valid
        // position, so the shift cannot lose bits.
        Lsn(self.segno.0 << self.seg_size.log2())
    }

    /// The position just past this segment, or `None` for the very last segment.
    pub const fn end_lsn(&self) -> Option<Lsn> {
        self.segno.end_lsn(self.seg_size)
    }

    /// `true` if the segment holds the byte at `lsn`.
    pub const fn contains(&self, lsn: Lsn) -> bool {
        self.segno.contains(lsn, self.seg_size)
    }

    /// The `XXXXXXXX` and `YYYYYYYY` fields of the name.
    const fn xlogid_and_seg(&self) -> (u64, u64) {
        let per = self.seg_size.segments_per_xlogid();
        (self.segno.0 / per, self.segno.0 % per)
    }
}

impl fmt::Display for SegmentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (xlogid, seg) = self.xlogid_and_seg();
        write!(f, "{:08X}{xlogid:08X}{seg:08X}", self.tli)?;
        if let Some(c) = self.compression {
            f.write_str(c.suffix())?;
        }
        if self.partial {
            f.write_str(PARTIAL_SUFFIX)?;
        }
        if self.temporary {
            f.write_str(TEMP_SUFFIX)?;
        }
        Ok(())
    }
}

/// The name of a timeline history file, `TTTTTTTT.history`, with its compression and
/// temporary marks.
#[doc(alias = "TLHistoryFileName")]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct HistoryName {
    tli: TimeLineId,
    compression: Option<Compression>,
    temporary: bool,
}

impl HistoryName {
    /// The plain (uncompressed, final) history file name of timeline `tli`.
    pub const fn new(tli: TimeLineId) -> Self {
        HistoryName {
            tli,
            compression: None,
            temporary: false,
        }
    }

    /// The same name with the given compression suffix (or none).
    #[must_use]
    pub const fn with_compression(mut self, compression: Option<Compression>) -> Self {
        self.compression = compression;
        self
    }

    /// The same name with `.tmp` appended: the file while it is being written.
    #[must_use]
    pub const fn temporary(mut self) -> Self {
        self.temporary = true;
        self
    }

    /// The same name without `.tmp`.
    #[must_use]
    pub const fn not_temporary(mut self) -> Self {
        self.temporary = false;
        self
    }

    /// The timeline whose history this file holds.
    pub const fn tli(&self) -> TimeLineId {
        self.tli
    }

    /// The compression suffix, if any.
    pub const fn compression(&self) -> Option<Compression> {
        self.compression
    }

    /// `true` if the name ends in `.tmp`.
    pub const fn is_temporary(&self) -> bool {
        self.temporary
    }
}

impl fmt::Display for HistoryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08X}{HISTORY_SUFFIX}", self.tli)?;
        if let Some(c) = self.compression {
            f.write_str(c.suffix())?;
        }
        if self.temporary {
            f.write_str(TEMP_SUFFIX)?;
        }
        Ok(())
    }
}

/// The name of a backup history file, `TTTTTTTTXXXXXXXXYYYYYYYY.OOOOOOOO.backup`, written
/// by the server's archiver when a base backup ends. pgwalrus only recognises these, so
/// that it can skip them; it has no way to build one.
#[doc(alias = "BackupHistoryFileName")]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct BackupHistoryName {
    segment: SegmentName,
    offset: u32,
}

impl BackupHistoryName {
    /// The timeline the backup started on.
    pub const fn tli(&self) -> TimeLineId {
        self.segment.tli
    }

    /// The segment in which the backup started.
    pub const fn segno(&self) -> SegNo {
        self.segment.segno
    }

    /// The offset of the backup start within that segment.
    pub const fn offset(&self) -> u32 {
        self.offset
    }

    /// The position where the backup started.
    pub const fn start_lsn(&self) -> Lsn {
        // Parsing checked the offset is below the segment size, so this is an OR.
        Lsn(self.segment.start_lsn().0 | self.offset as u64)
    }

    /// The compression suffix, if any.
    pub const fn compression(&self) -> Option<Compression> {
        self.segment.compression
    }
}

impl fmt::Display for BackupHistoryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bare = self.segment.plain();
        write!(f, "{bare}.{:08X}{BACKUP_SUFFIX}", self.offset)?;
        if let Some(c) = self.segment.compression {
            f.write_str(c.suffix())?;
        }
        Ok(())
    }
}

/// Any file name that can appear in a WAL archive directory.
///
/// [`FileName::parse`] is the only way to read a name; `Display` prints it back exactly.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum FileName {
    /// A WAL segment, complete or `.partial`, possibly compressed or temporary.
    Segment(SegmentName),
    /// A timeline history file.
    History(HistoryName),
    /// A backup history file, to be skipped.
    BackupHistory(BackupHistoryName),
}

impl FileName {
    /// Reads an archive file name (a bare name, not a path) against the cluster's segment
    /// size. See the [module documentation](self) for the grammar.
    ///
    /// # Errors
    ///
    /// * [`NameError::Unrecognised`] when the name follows no rule of the grammar: wrong
    ///   length, lower-case or non-hex digits, timeline 0, unknown or misplaced suffixes.
    /// * [`NameError::SegmentOutOfRange`] when a segment (or backup history) name's last
    ///   eight digits are not below [`WalSegSize::segments_per_xlogid`].
    /// * [`NameError::BackupOffsetOutOfRange`] when a backup history offset is not below the
    ///   segment size.
    #[doc(alias = "IsXLogFileName")]
    #[doc(alias = "XLogFromFileName")]
    #[doc(alias = "IsTLHistoryFileName")]
    #[doc(alias = "IsBackupHistoryFileName")]
    pub fn parse(name: &str, seg_size: WalSegSize) -> Result<Self, NameError> {
        let unrecognised = |reason| NameError::Unrecognised {
            name: excerpt(name),
            reason,
        };
        let (rest, temporary) = strip_flag(name, TEMP_SUFFIX);
        let (rest, partial) = strip_flag(rest, PARTIAL_SUFFIX);
        let (stem, compression) = Compression::strip_from(rest);

        if let Some(tli_hex) = stem.strip_suffix(HISTORY_SUFFIX) {
            if partial {
                return Err(unrecognised("history files have no .partial form"));
            }
            let tli = parse_tli(tli_hex.as_bytes()).map_err(unrecognised)?;
            return Ok(FileName::History(HistoryName {
                tli,
                compression,
                temporary,
            }));
        }

        if let Some(backup_stem) = stem.strip_suffix(BACKUP_SUFFIX) {
            if partial || temporary {
                return Err(unrecognised(
                    "backup history files have no .partial or .tmp form",
                ));
            }
            let bytes = backup_stem.as_bytes();
            let (segment_part, offset_part) = match (bytes.get(..24), bytes.get(24..)) {
                (Some(s), Some([b'.', offset @ ..])) => (s, offset),
                _ => {
                    return Err(unrecognised(
                        "expected a 24-digit segment name, '.', 8 hex digits, then .backup",
                    ));
                }
            };
            let segment = parse_segment_stem(name, segment_part, seg_size)?;
            let offset = hex::parse_upper8(offset_part).map_err(|e| unrecognised(e.reason()))?;
            if offset >= seg_size.bytes() {
                return Err(NameError::BackupOffsetOutOfRange {
                    name: excerpt(name),
                    seg_size,
                });
            }
            return Ok(FileName::BackupHistory(BackupHistoryName {
                segment: segment.with_compression(compression),
                offset,
            }));
        }

        let bytes = stem.as_bytes();
        if bytes.len() != 24 {
            return Err(unrecognised(
                "expected 24 hex digits, optionally followed by .gz, .lz4 or .zst, then .partial, then .tmp; or TTTTTTTT.history; or a .backup file",
            ));
        }
        let segment = parse_segment_stem(name, bytes, seg_size)?;
        Ok(FileName::Segment(SegmentName {
            compression,
            partial,
            temporary,
            ..segment
        }))
    }

    /// The timeline in the name.
    pub const fn tli(&self) -> TimeLineId {
        match self {
            FileName::Segment(s) => s.tli(),
            FileName::History(h) => h.tli(),
            FileName::BackupHistory(b) => b.tli(),
        }
    }

    /// The compression suffix, if any.
    pub const fn compression(&self) -> Option<Compression> {
        match self {
            FileName::Segment(s) => s.compression(),
            FileName::History(h) => h.compression(),
            FileName::BackupHistory(b) => b.compression(),
        }
    }

    /// `true` if the name ends in `.tmp`: a file that was still being created. It is never
    /// a finished archive file.
    pub const fn is_temporary(&self) -> bool {
        match self {
            FileName::Segment(s) => s.is_temporary(),
            FileName::History(h) => h.is_temporary(),
            FileName::BackupHistory(_) => false,
        }
    }

    /// `true` for a `.partial` segment.
    pub const fn is_partial(&self) -> bool {
        match self {
            FileName::Segment(s) => s.is_partial(),
            FileName::History(_) | FileName::BackupHistory(_) => false,
        }
    }

    /// The segment name, if this is one.
    pub const fn as_segment(&self) -> Option<&SegmentName> {
        match self {
            FileName::Segment(s) => Some(s),
            _ => None,
        }
    }

    /// The history file name, if this is one.
    pub const fn as_history(&self) -> Option<&HistoryName> {
        match self {
            FileName::History(h) => Some(h),
            _ => None,
        }
    }

    /// The backup history file name, if this is one.
    pub const fn as_backup_history(&self) -> Option<&BackupHistoryName> {
        match self {
            FileName::BackupHistory(b) => Some(b),
            _ => None,
        }
    }
}

impl fmt::Display for FileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileName::Segment(s) => s.fmt(f),
            FileName::History(h) => h.fmt(f),
            FileName::BackupHistory(b) => b.fmt(f),
        }
    }
}

impl From<SegmentName> for FileName {
    fn from(name: SegmentName) -> Self {
        FileName::Segment(name)
    }
}

impl From<HistoryName> for FileName {
    fn from(name: HistoryName) -> Self {
        FileName::History(name)
    }
}

/// Splits `suffix` off `s` and says whether it was there.
fn strip_flag<'a>(s: &'a str, suffix: &str) -> (&'a str, bool) {
    match s.strip_suffix(suffix) {
        Some(rest) => (rest, true),
        None => (s, false),
    }
}

/// Reads a timeline field (`TTTTTTTT`), giving the reason on failure.
fn parse_tli(field: &[u8]) -> Result<TimeLineId, &'static str> {
    let raw = hex::parse_upper8(field).map_err(|e| match e {
        HexFieldError::Length => "expected an 8-hex-digit timeline",
        other => other.reason(),
    })?;
    TimeLineId::new(raw).map_err(|_| "timeline 00000000 does not exist; timelines start at 1")
}

/// Reads the 24 digits `TTTTTTTTXXXXXXXXYYYYYYYY` into a plain segment name.
fn parse_segment_stem(
    name: &str,
    stem: &[u8],
    seg_size: WalSegSize,
) -> Result<SegmentName, NameError> {
    let unrecognised = |reason| NameError::Unrecognised {
        name: excerpt(name),
        reason,
    };
    let field = |range: std::ops::Range<usize>| {
        stem.get(range)
            .ok_or(HexFieldError::Length)
            .and_then(hex::parse_upper8)
            .map_err(|e| unrecognised(e.reason()))
    };
    if stem.len() != 24 {
        return Err(unrecognised("expected a 24-digit segment name"));
    }
    let tli = parse_tli(stem.get(..8).unwrap_or_default()).map_err(unrecognised)?;
    let xlogid = u64::from(field(8..16)?);
    let seg = u64::from(field(16..24)?);
    let per_xlogid = seg_size.segments_per_xlogid();
    if seg >= per_xlogid {
        return Err(NameError::SegmentOutOfRange {
            name: excerpt(name),
            seg_size,
            per_xlogid,
        });
    }
    // xlogid < 2^32 and per_xlogid <= 2^12, so this cannot overflow; and the result is at
    // most (2^32 - 1) * per + (per - 1) = 2^32 * per - 1 = max_segno, so it always names a
    // segment that starts at a valid position.
    let segno = SegNo(xlogid * per_xlogid + seg);
    SegmentName::new(tli, segno, seg_size)
}
