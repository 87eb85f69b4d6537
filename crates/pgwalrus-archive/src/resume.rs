//! Where to resume streaming: a scan of the archive directory that follows pg_receivewal's
//! `FindStreamingStart`, plus pgwalrus's stricter rules.
//!
//! # Rules
//!
//! * Segment names count with no suffix, `.partial`, or a compression suffix (`.gz`,
//!   `.lz4`, `.zst`) with or without `.partial` — [`pgwalrus_wal::names`] decides.
//!   History and backup history files are ignored, and so are names that are not WAL file
//!   names at all.
//! * Temporary files of ours (`*.tmp`) are ignored and reported in [`DirScan::temp_files`]
//!   so the caller can remove them ([`remove_temp_file`](crate::durable::remove_temp_file)).
//! * A complete uncompressed segment must be exactly one segment long. pg_receivewal
//!   skips such a file with a warning and so streams that segment again under the same
//!   name; we stop with [`Error::WrongSegmentSize`] naming the file, and touch nothing —
//!   a short "complete" segment means something outside our contract happened.
//! * A `.partial` of any length up to one segment counts (0 bytes, cut short, full): it is
//!   streamed again from its start. pg_receivewal refuses anything but 0 or a full segment
//!   when it opens the file; we reuse it. Longer than a segment is
//!   [`Error::OversizedPartial`].
//! * A compressed `.partial` is taken by name: how much it holds is read when its segment
//!   is written again (the writer decodes it as far as it goes).
//! * The complete compressed segment the resume point is derived from (the winner, when
//!   it is complete) must decompress to exactly one segment: pg_receivewal checks the
//!   gzip trailer's ISIZE and decompresses LZ4 files to count; we decompress it, whatever
//!   the method, and stop with [`Error::WrongUncompressedSize`] or
//!   [`Error::Decompress`] otherwise (touching nothing), as for a short uncompressed
//!   segment — resuming after it would leave a gap. Older complete compressed segments are
//!   not decompressed at every start (that is verify's job).
//! * A segment name that cannot exist at this segment size (its low part too big) means
//!   the directory holds WAL of a cluster with smaller segments:
//!   [`Error::ForeignSegmentName`].
//! * The winner is the highest segment number, then the highest timeline, and a complete
//!   file beats a `.partial` of the same segment and timeline. Streaming resumes at the
//!   start of the next segment after a complete winner, or at the start of a `.partial`
//!   winner; always at a segment boundary.

use std::path::{Path, PathBuf};

use pgwalrus_wal::names::{FileName, SegmentName};
use pgwalrus_wal::{Lsn, TimeLineId, WalSegSize};

use crate::compress::file::held_in_file;
use crate::error::{Error, Op, Result};
use crate::fs::ArchiveFs;
use crate::inventory::Inventory;

/// A segment file found in the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundSegment {
    /// Its name, as parsed.
    pub name: SegmentName,
    /// Its path.
    pub path: PathBuf,
    /// Its length in bytes (on disk, compressed or not).
    pub len: u64,
}

/// Where streaming resumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumePoint {
    /// The timeline to stream.
    pub tli: TimeLineId,
    /// The position to stream from; always a segment boundary.
    pub start: Lsn,
    /// The `.partial` file of the segment at `start`, when the winner is one; it will be
    /// written again from its first byte.
    pub partial: Option<FoundSegment>,
    /// The complete segment with the highest number (then timeline), if any.
    pub newest_complete: Option<FoundSegment>,
}

/// What a scan of the archive directory found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DirScan {
    /// Where to resume; `None` when the directory holds no segment at all (the caller
    /// then asks the server: the slot's restart position, or its current position).
    pub resume: Option<ResumePoint>,
    /// The complete segment with the lowest number (then timeline), if any.
    pub oldest_complete: Option<FoundSegment>,
    /// Every `.partial` segment, lowest first.
    pub partials: Vec<FoundSegment>,
    /// Every temporary file of ours (name ending in `.tmp`), by name.
    pub temp_files: Vec<FileName>,
    /// The listing the scan was made from.
    pub inventory: Inventory,
}

/// Scans `dir` as described in the [module documentation](self).
///
/// # Errors
///
/// [`Error::Io`] listing the directory or reading a file; [`Error::WrongSegmentSize`],
/// [`Error::OversizedPartial`], [`Error::ForeignSegmentName`],
/// [`Error::WrongUncompressedSize`] and [`Error::Decompress`] for files that break the
/// rules, naming the file.
pub fn scan<F: ArchiveFs>(fs: &F, dir: &Path, seg_size: WalSegSize) -> Result<DirScan> {
    scan_inventory(fs, Inventory::list(fs, dir, seg_size)?, seg_size)
}

/// [`scan`] over a listing made already.
///
/// # Errors
///
/// As for [`scan`], but for listing the directory.
pub fn scan_inventory<F: ArchiveFs>(
    fs: &F,
    inventory: Inventory,
    seg_size: WalSegSize,
) -> Result<DirScan> {
    let dir = inventory.dir().to_path_buf();
    if let Some((os_name, e)) = inventory.out_of_range.first() {
        return Err(Error::ForeignSegmentName {
            path: dir.join(os_name),
            seg_size,
            source: e.clone(),
        });
    }
    let mut scan = DirScan {
        temp_files: inventory.temps.clone(),
        ..DirScan::default()
    };
    let mut winner: Option<FoundSegment> = None;
    let mut newest_complete: Option<FoundSegment> = None;

    for &segment in &inventory.segments {
        let path = inventory.path(segment);
        let len = fs.file_len(&path).map_err(Error::at(Op::Stat, &path))?;
        let uncompressed = segment.compression().is_none();
        if uncompressed && !segment.is_partial() && len != seg_size.as_u64() {
            return Err(Error::WrongSegmentSize {
                path,
                size: len,
                expected: seg_size.as_u64(),
            });
        }
        if uncompressed && segment.is_partial() && len > seg_size.as_u64() {
            return Err(Error::OversizedPartial {
                path,
                size: len,
                seg_size,
            });
        }
        let found = FoundSegment {
            name: segment,
            path,
            len,
        };
        if segment.is_partial() {
            scan.partials.push(found.clone());
        } else {
            if newest_complete
                .as_ref()
                .is_none_or(|n| position(&found) > position(n))
            {
                newest_complete = Some(found.clone());
            }
            if scan
                .oldest_complete
                .as_ref()
                .is_none_or(|o| position(&found) < position(o))
            {
                scan.oldest_complete = Some(found.clone());
            }
        }
        if winner.as_ref().is_none_or(|w| rank(&found) > rank(w)) {
            winner = Some(found);
        }
    }
    scan.partials.sort_by_key(position);
    scan.inventory = inventory;

    if let Some(winner) = winner {
        if let (Some(method), false) = (winner.name.compression(), winner.name.is_partial()) {
            check_complete_compressed(fs, &winner, method, seg_size)?;
        }
        let (start, partial) = if winner.name.is_partial() {
            (winner.name.start_lsn(), Some(winner.clone()))
        } else {
            let start = winner.name.end_lsn().ok_or(Error::LsnOverflow {
                lsn: winner.name.start_lsn(),
                len: seg_size.as_u64(),
            })?;
            (start, None)
        };
        scan.resume = Some(ResumePoint {
            tli: winner.name.tli(),
            start,
            partial,
            newest_complete,
        });
    }
    Ok(scan)
}

/// The resume point alone: [`scan`]`(…).resume`.
///
/// # Errors
///
/// As for [`scan`].
pub fn find_streaming_start<F: ArchiveFs>(
    fs: &F,
    dir: &Path,
    seg_size: WalSegSize,
) -> Result<Option<ResumePoint>> {
    Ok(scan(fs, dir, seg_size)?.resume)
}

/// A complete compressed segment must decompress, as a whole stream, to exactly one
/// segment.
fn check_complete_compressed<F: ArchiveFs>(
    fs: &F,
    found: &FoundSegment,
    method: pgwalrus_wal::names::Compression,
    seg_size: WalSegSize,
) -> Result<()> {
    let held = held_in_file(fs, &found.path, method, seg_size.as_u64())?;
    if !held.end.is_finished() {
        return Err(Error::Decompress {
            path: found.path.clone(),
            compression: method,
            at: held.bytes,
            problem: held.end,
        });
    }
    if held.bytes != seg_size.as_u64() {
        return Err(Error::WrongUncompressedSize {
            path: found.path.clone(),
            compression: method,
            size: held.bytes,
            expected: seg_size.as_u64(),
        });
    }
    Ok(())
}

/// Segment number, then timeline.
fn position(found: &FoundSegment) -> (u64, TimeLineId) {
    (found.name.segno().0, found.name.tli())
}

/// pg_receivewal's order — segment number, then timeline, then complete over partial —
/// and, between otherwise equal files, uncompressed first (it can be read back today).
fn rank(found: &FoundSegment) -> (u64, TimeLineId, bool, bool) {
    (
        found.name.segno().0,
        found.name.tli(),
        !found.name.is_partial(),
        found.name.compression().is_none(),
    )
}

#[cfg(test)]
mod tests;
