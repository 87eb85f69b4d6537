//! [`ArchiveWriter`]: the writer side of the receive pipeline. It takes WAL as the server
//! streams it, writes it into segment files at exact offsets, completes segments durably,
//! and tells the caller how far the archive is durable (the flush position it may report).
//!
//! # Positions
//!
//! * `write_lsn` — the end of the bytes handed to the operating system.
//! * `flush_lsn` — the end of the bytes on stable storage, in files whose names and
//!   directory entries are on stable storage too. This is the only position the receiver
//!   may report as flushed; it never runs ahead of a completed fsync.
//!
//! # Life cycle
//!
//! [`ArchiveWriter::start`] sets the timeline and start (a segment boundary);
//! [`ArchiveWriter::write`] appends; [`ArchiveWriter::sync`] advances the flush position;
//! [`ArchiveWriter::close_partial`] stops cleanly, leaving the current segment as
//! `.partial` (at the end of a timeline, or on shutdown). A segment file is only touched
//! when the first byte for it arrives, so starting on a segment whose `.partial` exists
//! changes nothing on disk until the server actually sends that WAL.
//!
//! # Zero-ahead (opt-in, for synchronous mode)
//!
//! A new segment file is sized with its blocks reserved, not written, so an `fdatasync`
//! after WAL first reaches a block also commits the block's change from reserved to written
//! to the file system's journal: measured on ext4, 8 KiB writes took 130–145 µs to sync into
//! reserved blocks (147 µs into a hole) and 91–100 µs into blocks already written. A synchronous standby pays that on every
//! commit. With [`ArchiveWriter::with_zero_ahead`], [`ArchiveWriter::zero_ahead`] (called
//! when the stream is idle) writes zeros into the next stretch of a new segment's unwritten
//! blocks and syncs them, keeping between [`ZERO_AHEAD_LOW`] and [`ZERO_AHEAD_WINDOW`]
//! bytes ready ahead of the write position. Zeros are what the sized file reads as there
//! anyway, so the file's content is the same at every instant; only blocks no WAL was ever
//! written to are touched (never a reopened `.partial`, whose old bytes past the write
//! position may be WAL the server no longer has). Without it (the receiver's default,
//! non-synchronous mode) every block is written once, by WAL; with it, only when the stream
//! is idle, so a synchronous catch-up writes zeros only where the stream paused.
//!
//! # Failures
//!
//! A failed fsync or rename *poisons* the writer: that call returns the I/O error and
//! every later call returns [`Error::Poisoned`] with the last durable position. The
//! writer never retries an fsync; the receiver drops it, reconnects, and streams again from
//! the flush position. Other failures (a write that hits ENOSPC, a file that cannot be
//! created) leave the writer usable at its last position: the same data may be offered
//! again from [`ArchiveWriter::write_lsn`]. Dropping the writer never syncs or renames.
//!
//! A segment file that another process moved, removed or replaced while it was open
//! ([`Error::Replaced`], found at each sync and before completion) poisons too: the
//! writer's descriptor still writes into the old file, which the archive no longer holds
//! under that name, so nothing written there is reported durable and the other file is
//! never renamed to the segment's final name.
//!
//! # Compression
//!
//! With [`ArchiveWriter::with_compression`], new segments are written through a streaming
//! compressor as `NAME.c.partial` (created under a temporary name, not pre-sized) and
//! completed as `NAME.c`. A segment keeps the method of the file it resumes: an existing
//! uncompressed `.partial` is continued uncompressed, an existing `NAME.c.partial` in
//! method `c`, and only segments with no `.partial` at all take the configured method.
//! A compressed segment's file takes its `.partial` name only once it holds at least what
//! the old `.partial` held (see `writer::compressed`), and the flush position moves into the
//! segment only then. Any failure while writing a compressed segment poisons the writer:
//! the compressor cannot be rewound to the last byte on disk.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use pgwalrus_wal::names::{Compression, HistoryName, SegmentName};
use pgwalrus_wal::{Lsn, SegNo, TimeLineId, WalSegSize};

use crate::compress::CompressionSpec;
use crate::durable::{self, Durability, PartialSegment};
use crate::error::{Error, Op, Result};
use crate::fs::{ArchiveFile, ArchiveFs};

use self::compressed::CompressedSegment;

#[cfg(test)]
mod compress_tests;
mod compressed;
#[cfg(test)]
mod crash_tests;
#[cfg(test)]
mod tests;

/// What one [`ArchiveWriter::write`] did besides writing: the segments it completed (given
/// their final names, durably), in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Written {
    completed: Option<(SegmentName, u64)>,
    /// The compression of the completed segments after the first: only the first segment
    /// of a write can be one resumed in another method.
    later: Option<Compression>,
}

impl Written {
    fn push(&mut self, name: SegmentName) {
        match &mut self.completed {
            Some((_, count)) => {
                if *count == 1 {
                    self.later = name.compression();
                }
                *count += 1;
            }
            None => self.completed = Some((name, 1)),
        }
    }

    /// The segments completed by the write, oldest first, by their final names.
    pub fn completed(&self) -> impl Iterator<Item = SegmentName> + '_ {
        let (first, count) = match self.completed {
            Some((first, count)) => (Some(first), count),
            None => (None, 0),
        };
        let later = self.later;
        (0..count).filter_map(move |i| {
            let first = first?;
            if i == 0 {
                return Some(first);
            }
            let segno = SegNo(first.segno().0.checked_add(i)?);
            SegmentName::new(first.tli(), segno, first.seg_size())
                .ok()
                .map(|n| n.with_compression(later))
        })
    }

    /// How many segments the write completed (usually 0 or 1).
    pub fn completed_count(&self) -> u64 {
        self.completed.map_or(0, |(_, count)| count)
    }

    /// The last segment the write completed.
    pub fn last_completed(&self) -> Option<SegmentName> {
        self.completed().last()
    }
}

/// [`ArchiveWriter::zero_ahead`] does nothing while at least this many zeroed bytes lie
/// ahead of the write position.
pub const ZERO_AHEAD_LOW: u64 = 256 * 1024;
/// How far ahead of the write position [`ArchiveWriter::zero_ahead`] zeroes: about 0.5 ms of
/// writing and syncing on the machine of the project's benchmarks.
pub const ZERO_AHEAD_WINDOW: u64 = 1024 * 1024;
/// The file-system block the zeroing is aligned to.
const BLOCK: u64 = 4096;
/// What zero-ahead writes from.
static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

/// Writes streamed WAL into an archive directory. See the [module documentation](self).
pub struct ArchiveWriter<F: ArchiveFs> {
    fs: F,
    dir: PathBuf,
    seg_size: WalSegSize,
    durability: Durability,
    /// `None` before [`ArchiveWriter::start`] and after [`ArchiveWriter::close_partial`].
    tli: Option<TimeLineId>,
    write_lsn: Lsn,
    flush_lsn: Lsn,
    /// The uncompressed segment being written; when neither it nor `compressed` is open,
    /// `write_lsn` is at a segment boundary.
    segment: Option<PartialSegment<F::File>>,
    /// The compressed segment being written.
    compressed: Option<CompressedSegment<F::File>>,
    /// The method for new segments.
    compression: CompressionSpec,
    last_completed: Option<SegmentName>,
    poison: Option<(Op, PathBuf)>,
    /// [`ArchiveWriter::with_zero_ahead`] was asked for.
    zero_ahead: bool,
    /// Offset in the open segment up to which its blocks are written (WAL or zeros); `None`
    /// when zero-ahead may not touch the file (a reopened `.partial`, or none open).
    zeroed_to: Option<u64>,
    /// [`ArchiveWriter::with_min_free_space`]: 0 for no floor.
    min_free_space: u64,
}

impl<F: ArchiveFs> fmt::Debug for ArchiveWriter<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArchiveWriter")
            .field("dir", &self.dir)
            .field("seg_size", &self.seg_size)
            .field("durability", &self.durability)
            .field("tli", &self.tli)
            .field("write_lsn", &self.write_lsn)
            .field("flush_lsn", &self.flush_lsn)
            .field("segment", &self.current_segment())
            .field("compression", &self.compression)
            .field("poison", &self.poison)
            .finish_non_exhaustive()
    }
}

impl<F: ArchiveFs> ArchiveWriter<F> {
    /// A writer for the archive directory `dir` (which must exist) of a cluster with
    /// segment size `seg_size`. Touches nothing on disk.
    pub fn new(
        fs: F,
        dir: impl Into<PathBuf>,
        seg_size: WalSegSize,
        durability: Durability,
    ) -> Self {
        ArchiveWriter {
            fs,
            dir: dir.into(),
            seg_size,
            durability,
            tli: None,
            write_lsn: Lsn::INVALID,
            flush_lsn: Lsn::INVALID,
            segment: None,
            compressed: None,
            compression: CompressionSpec::NONE,
            last_completed: None,
            poison: None,
            zero_ahead: false,
            zeroed_to: None,
            min_free_space: 0,
        }
    }

    /// A free-space floor: no new segment is started while the archive's file system has
    /// fewer than `bytes` free ([`Error::BelowFloor`], which [`Error::is_no_space`]); what
    /// was written before stays intact and durable. 0 (the default) is no floor.
    #[must_use]
    pub fn with_min_free_space(mut self, bytes: u64) -> Self {
        self.min_free_space = bytes;
        self
    }

    /// Compresses new segments as `spec` says (the default is [`CompressionSpec::NONE`]).
    /// See [Compression](self#compression) for which segments it applies to.
    #[must_use]
    pub fn with_compression(mut self, spec: CompressionSpec) -> Self {
        self.compression = spec;
        self
    }

    /// Sets where the stream starts: timeline `tli` at `lsn`, which must be a segment
    /// boundary (streaming always starts at one). Both positions become `lsn`. Touches
    /// nothing on disk: the segment file is opened when its first byte arrives — an
    /// existing `.partial` for it is then reused (see
    /// [`reopen_partial`](crate::durable::reopen_partial)), otherwise one is created.
    ///
    /// # Errors
    ///
    /// [`Error::Poisoned`]; [`Error::SegmentOpen`] if a segment is still open (call
    /// [`ArchiveWriter::close_partial`] first); [`Error::NotSegmentStart`].
    pub fn start(&mut self, tli: TimeLineId, lsn: Lsn) -> Result<()> {
        self.check_poison()?;
        if let Some(path) = self.current_segment() {
            return Err(Error::SegmentOpen {
                path: path.to_path_buf(),
                tli,
                lsn,
            });
        }
        if !lsn.is_segment_start(self.seg_size) {
            return Err(Error::NotSegmentStart {
                lsn,
                seg_size: self.seg_size,
            });
        }
        self.tli = Some(tli);
        self.write_lsn = lsn;
        self.flush_lsn = lsn;
        Ok(())
    }

    /// Writes WAL that starts at `lsn` on timeline `tli`, which must be exactly the current
    /// write position. Bytes go straight from `bytes` to the file at their offset; a chunk
    /// that crosses segment boundaries is split, and each segment that becomes full is
    /// completed (fsync, rename to its final name, directory fsync) before the call
    /// returns. The flush position then moves to the end of the completed segment.
    ///
    /// # Errors
    ///
    /// * [`Error::Poisoned`]; [`Error::NotStarted`]; [`Error::TimelineMismatch`],
    ///   [`Error::NotContiguous`] or [`Error::LsnOverflow`] (nothing written).
    /// * [`Error::Io`] from opening or creating the segment file or writing to it (for
    ///   instance ENOSPC, see [`Error::is_no_space`]): the writer stays usable; the bytes
    ///   from [`ArchiveWriter::write_lsn`] on were not (all) written and may be offered
    ///   again. Earlier segments completed by this call stay complete.
    /// * [`Error::Io`] from an fsync or rename ([`Error::is_poisoning`]): the writer is
    ///   poisoned.
    /// * While a compressed segment is open, any error from writing to it (ENOSPC
    ///   included, still shown by [`Error::is_no_space`]) or [`Error::Compress`] poisons
    ///   the writer: the compressor cannot be rewound to the last byte on disk. The segment
    ///   starts again from its first byte with a new writer.
    pub fn write(&mut self, tli: TimeLineId, lsn: Lsn, bytes: &[u8]) -> Result<Written> {
        self.check_poison()?;
        let current = self.tli.ok_or(Error::NotStarted)?;
        if tli != current {
            return Err(Error::TimelineMismatch {
                expected: current,
                got: tli,
                lsn,
            });
        }
        if lsn != self.write_lsn {
            return Err(Error::NotContiguous {
                tli,
                expected: self.write_lsn,
                got: lsn,
            });
        }
        if lsn.checked_add(bytes.len() as u64).is_none() {
            return Err(Error::LsnOverflow {
                lsn,
                len: bytes.len() as u64,
            });
        }

        let seg_bytes = self.seg_size.as_u64();
        let mut written = Written::default();
        let mut rest = bytes;
        while !rest.is_empty() {
            if self.segment.is_none() && self.compressed.is_none() {
                self.open_segment(tli)?;
            }
            let offset = u64::from(self.write_lsn.segment_offset(self.seg_size));
            let room = seg_bytes - offset;
            let n = usize::try_from(room).map_or(rest.len(), |room| room.min(rest.len()));
            let (now, later) = rest.split_at(n);
            if let Some(compressed) = &mut self.compressed {
                if let Err(e) = compressed.write(now) {
                    return Err(self.broken_by(e));
                }
            } else {
                let Some(segment) = &self.segment else {
                    break;
                };
                segment
                    .file
                    .write_all_at(now, offset)
                    .map_err(Error::at(Op::Write, &segment.path))?;
            }
            self.write_lsn = Lsn(self.write_lsn.0 + n as u64);
            rest = later;
            if offset + n as u64 == seg_bytes {
                written.push(self.complete_segment()?);
            }
        }
        Ok(written)
    }

    /// Lets [`ArchiveWriter::zero_ahead`] work (see [Zero-ahead](self#zero-ahead-opt-in-for-synchronous-mode)).
    #[must_use]
    pub fn with_zero_ahead(mut self, on: bool) -> Self {
        self.zero_ahead = on;
        self
    }

    /// Whether [`ArchiveWriter::zero_ahead`] would do anything now: enabled, syncing, an
    /// uncompressed segment this writer created is open, and fewer than
    /// [`ZERO_AHEAD_LOW`] zeroed bytes lie ahead of the write position.
    pub fn zero_ahead_due(&self) -> bool {
        self.zero_ahead_range().is_some()
    }

    fn zero_ahead_range(&self) -> Option<(u64, u64)> {
        if !self.zero_ahead
            || self.durability == Durability::NoSync
            || self.poison.is_some()
            || self.segment.is_none()
        {
            return None;
        }
        let zeroed = self.zeroed_to?;
        let seg_bytes = self.seg_size.as_u64();
        let offset = u64::from(self.write_lsn.segment_offset(self.seg_size));
        // The block the write position is in already holds WAL (or is the first one).
        let from = zeroed.max(offset.next_multiple_of(BLOCK));
        if from >= seg_bytes || from - offset >= ZERO_AHEAD_LOW {
            return None;
        }
        Some((from, seg_bytes.min(offset + ZERO_AHEAD_WINDOW)))
    }

    /// Zero-ahead (see [Zero-ahead](self#zero-ahead-opt-in-for-synchronous-mode)): when
    /// [`ArchiveWriter::zero_ahead_due`], writes zeros into the open segment's next unwritten
    /// blocks, up to [`ZERO_AHEAD_WINDOW`] past the write position, and syncs the file —
    /// which also makes everything written so far durable, as [`ArchiveWriter::sync`] does.
    /// Returns the flush position.
    ///
    /// # Errors
    ///
    /// [`Error::Poisoned`]; [`Error::Io`] with [`Op::Write`] (ENOSPC included; the writer
    /// stays usable, the data is unchanged, and zero-ahead is off for the rest of the
    /// segment) or [`Op::Sync`] (poisons the writer).
    pub fn zero_ahead(&mut self) -> Result<Lsn> {
        self.check_poison()?;
        let (Some((from, to)), Some(segment)) = (self.zero_ahead_range(), &self.segment) else {
            return Ok(self.flush_lsn);
        };
        let mut at = from;
        while at < to {
            let n = usize::try_from(to - at).map_or(ZEROS.len(), |n| n.min(ZEROS.len()));
            if let Err(e) = segment.file.write_all_at(&ZEROS[..n], at) {
                // Optional work: not tried again in this segment.
                let e = Error::io(Op::Write, &segment.path, e);
                self.zeroed_to = None;
                return Err(e);
            }
            at += n as u64;
        }
        self.sync_segment()?;
        self.zeroed_to = Some(to);
        Ok(self.flush_lsn)
    }

    /// Makes everything written so far durable and returns the new flush position: one
    /// `fdatasync` of the open segment when anything was written since the last sync,
    /// nothing at all otherwise. (Completed segments are already durable.) With
    /// [`Durability::NoSync`] nothing is synced and the flush position simply follows the
    /// write position, as in pg_receivewal's `--no-sync`.
    ///
    /// A compressed segment first flushes its compressor to a decodable boundary; the first
    /// sync at which it holds at least what the segment's old `.partial` held also gives it
    /// its `.partial` name (see [Compression](self#compression)). Before that, nothing is
    /// done and the flush position stays where it is.
    ///
    /// # Errors
    ///
    /// [`Error::Poisoned`]; [`Error::Io`] with [`Op::Sync`] (or, for a compressed segment,
    /// any error), which poisons the writer.
    pub fn sync(&mut self) -> Result<Lsn> {
        self.check_poison()?;
        if self.flush_lsn >= self.write_lsn {
            return Ok(self.flush_lsn);
        }
        if let Some(compressed) = &mut self.compressed {
            match compressed.sync(&self.fs, &self.dir, self.durability) {
                Ok(true) => self.flush_lsn = self.write_lsn,
                // Still short of the `.partial` it replaces: nothing new is durable.
                Ok(false) => {}
                Err(e) => return Err(self.broken_by(e)),
            }
            return Ok(self.flush_lsn);
        }
        self.sync_segment()?;
        Ok(self.flush_lsn)
    }

    /// `fdatasync` of the open uncompressed segment (if any); everything written is then
    /// durable. A failure poisons the writer.
    fn sync_segment(&mut self) -> Result<()> {
        if let Some(segment) = &self.segment {
            // After the fsync, so the name is checked at the moment the data is durable:
            // a file moved away before it holds WAL the archive does not.
            let result = durable::sync_data(&segment.file, &segment.path, self.durability)
                .and_then(|()| durable::ensure_named(&segment.file, &segment.path, Op::Sync));
            if let Err(e) = result {
                return Err(self.poisoned_by(e));
            }
        }
        self.flush_lsn = self.write_lsn;
        Ok(())
    }

    /// Stops cleanly: syncs what was written (as [`ArchiveWriter::sync`]), closes the
    /// segment file and leaves it as `.partial`. Returns the flush position. Writing needs
    /// a new [`ArchiveWriter::start`] afterwards (at the end of a timeline: the next
    /// timeline's start).
    ///
    /// # Errors
    ///
    /// As for [`ArchiveWriter::sync`]; an uncompressed segment stays open after an error (a
    /// compressed one's error poisons the writer).
    ///
    /// A compressed segment's stream is finished, so its `.partial` is a whole gzip member,
    /// LZ4 frame or zstd frame; if it holds less than the segment's old `.partial` did, it
    /// is removed instead and the old one kept, and the flush position stays.
    pub fn close_partial(&mut self) -> Result<Lsn> {
        self.check_poison()?;
        if let Some(compressed) = self.compressed.take() {
            match compressed.close(&self.fs, &self.dir, self.durability) {
                Ok(true) => self.flush_lsn = self.write_lsn,
                // The old `.partial` holds more and stays; nothing new is durable.
                Ok(false) => {}
                Err(e) => return Err(self.broken_by(e)),
            }
            self.tli = None;
            return Ok(self.flush_lsn);
        }
        let flush = self.sync()?;
        self.segment = None;
        self.tli = None;
        Ok(flush)
    }

    /// Writes the history file of timeline `tli` (the content `TIMELINE_HISTORY` returned)
    /// atomically and durably, replacing any file of that name (see
    /// [`write_history_file`](crate::durable::write_history_file)). Call it before
    /// streaming the first byte of that timeline, so the history is durable before any of
    /// its segments exist. Returns the file's path.
    ///
    /// # Errors
    ///
    /// [`Error::Poisoned`]; [`Error::Io`] naming the step (a failed fsync or rename poisons
    /// the writer).
    pub fn write_history(&mut self, tli: TimeLineId, content: &[u8]) -> Result<PathBuf> {
        self.check_poison()?;
        durable::write_history_file(
            &self.fs,
            &self.dir,
            HistoryName::new(tli),
            content,
            self.durability,
        )
        .map_err(|e| self.poisoned_by(e))
    }

    /// The end of the bytes handed to the operating system (`0/0` before the first start).
    pub fn write_lsn(&self) -> Lsn {
        self.write_lsn
    }

    /// The end of the bytes on stable storage in durable files: the position the receiver
    /// may report as flushed.
    pub fn flush_lsn(&self) -> Lsn {
        self.flush_lsn
    }

    /// The timeline being written, or `None` before a start or after a clean stop.
    pub fn timeline(&self) -> Option<TimeLineId> {
        self.tli
    }

    /// The `.partial` file being written, if one is open.
    pub fn current_segment(&self) -> Option<&Path> {
        self.segment
            .as_ref()
            .map(|s| s.path.as_path())
            .or_else(|| self.compressed.as_ref().map(CompressedSegment::path))
    }

    /// The compression of new segments.
    pub fn compression(&self) -> CompressionSpec {
        self.compression
    }

    /// The segment most recently completed by this writer, by its final name.
    pub fn last_completed(&self) -> Option<SegmentName> {
        self.last_completed
    }

    /// `true` once an fsync or rename has failed; every call then returns
    /// [`Error::Poisoned`].
    pub fn is_poisoned(&self) -> bool {
        self.poison.is_some()
    }

    /// The archive directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The segment size.
    pub fn seg_size(&self) -> WalSegSize {
        self.seg_size
    }

    /// Whether the writer syncs.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// The file system.
    pub fn fs(&self) -> &F {
        &self.fs
    }

    fn check_poison(&self) -> Result<()> {
        match &self.poison {
            None => Ok(()),
            Some((op, path)) => Err(Error::Poisoned {
                op: *op,
                path: path.clone(),
                flush_lsn: self.flush_lsn,
            }),
        }
    }

    /// Records `e` as the poison if it is an fsync or rename failure, or the open segment
    /// was found replaced (the directory is not what the writer thinks), and hands it back.
    fn poisoned_by(&mut self, e: Error) -> Error {
        match &e {
            Error::Io { op, path, .. } if e.is_poisoning() => {
                self.poison = Some((*op, path.clone()));
            }
            Error::Replaced { op, path } => self.poison = Some((*op, path.clone())),
            _ => {}
        }
        e
    }

    /// Records any failure while a compressed segment is open as the poison (the
    /// compressor has consumed input whose output may not be on disk), and hands it back.
    fn broken_by(&mut self, e: Error) -> Error {
        let path = e.path().map_or_else(|| self.dir.clone(), Path::to_path_buf);
        self.poison = Some((e.op().unwrap_or(Op::Write), path));
        e
    }

    /// Which method continues the segment whose `.partial` form is `name`, and at which
    /// level: `None` for uncompressed. An existing uncompressed `.partial` wins (it is
    /// reopened as it is), then an existing `.partial` in the configured method, then one
    /// in any other method; with none, the configured method.
    fn method_for(&self, name: SegmentName) -> Result<Option<(Compression, i32)>> {
        let exists = |name: SegmentName| {
            let path = self.dir.join(name.to_string());
            match self.fs.file_len(&path) {
                Ok(_) => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(Error::io(Op::Stat, &path, e)),
            }
        };
        if exists(name.with_compression(None))? {
            return Ok(None);
        }
        let configured = self.compression.method();
        let others = Compression::ALL
            .into_iter()
            .filter(|c| Some(*c) != configured);
        for method in configured.into_iter().chain(others) {
            if exists(name.with_compression(Some(method)))? {
                let level = if Some(method) == configured {
                    self.compression.effective_level()
                } else {
                    CompressionSpec::default_for(method).effective_level()
                };
                return Ok(Some((method, level)));
            }
        }
        Ok(configured.map(|method| (method, self.compression.effective_level())))
    }

    /// Opens the segment that starts at the write position: reuses its `.partial` if one
    /// exists, creates it otherwise.
    fn open_segment(&mut self, tli: TimeLineId) -> Result<()> {
        // A segment is only ever opened at its first byte: the file is then rewritten from
        // offset 0, so nothing written before this session is relied on.
        if !self.write_lsn.is_segment_start(self.seg_size) {
            return Err(Error::NotSegmentStart {
                lsn: self.write_lsn,
                seg_size: self.seg_size,
            });
        }
        if self.min_free_space > 0 {
            // Checked before the segment is made, so a full file system never holds a
            // half-made one; nothing is poisoned: everything written so far is durable.
            let available = self
                .fs
                .available_space(&self.dir)
                .map_err(|e| Error::io(Op::Stat, &self.dir, e))?;
            if available < self.min_free_space {
                return Err(Error::BelowFloor {
                    dir: self.dir.clone(),
                    available,
                    floor: self.min_free_space,
                });
            }
        }
        let name = SegmentName::containing(tli, self.write_lsn, self.seg_size).partial();
        if let Some((method, level)) = self.method_for(name)? {
            let opened =
                CompressedSegment::open(&self.fs, &self.dir, name, method, level, self.seg_size);
            return match opened {
                Ok(segment) => {
                    self.compressed = Some(segment);
                    Ok(())
                }
                Err(e) => Err(self.poisoned_by(e)),
            };
        }
        let path = self.dir.join(name.to_string());
        let exists = match self.fs.file_len(&path) {
            Ok(_) => true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(Error::io(Op::Stat, &path, e)),
        };
        let opened = if exists {
            durable::reopen_partial(&self.fs, &self.dir, name, self.durability)
        } else {
            durable::create_segment(&self.fs, &self.dir, name, self.durability)
        };
        match opened {
            Ok(segment) => {
                // Only a file this writer created has no bytes of its own past the write
                // position.
                self.zeroed_to = segment.previous_len.is_none().then_some(0);
                self.segment = Some(segment);
                Ok(())
            }
            Err(e) => Err(self.poisoned_by(e)),
        }
    }

    /// Completes the open segment, which the write position has just reached the end of.
    fn complete_segment(&mut self) -> Result<SegmentName> {
        if let Some(compressed) = self.compressed.take() {
            return match compressed.complete(&self.fs, &self.dir, self.durability) {
                Ok(name) => {
                    self.flush_lsn = self.write_lsn;
                    self.last_completed = Some(name);
                    Ok(name)
                }
                Err(e) => Err(self.broken_by(e)),
            };
        }
        let Some(segment) = self.segment.take() else {
            return Err(Error::NotStarted);
        };
        match durable::complete_segment(&self.fs, &self.dir, &segment, self.durability) {
            Ok((name, _)) => {
                self.flush_lsn = self.write_lsn;
                self.last_completed = Some(name);
                Ok(name)
            }
            Err(e) => Err(self.poisoned_by(e)),
        }
    }
}
