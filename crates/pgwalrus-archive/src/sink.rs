//! The archive's write side at the level of WAL, not files: what a receive loop needs from
//! wherever WAL goes — start at a position, write at an LSN, make durable and say up to
//! where, close the open segment, write a timeline's history. [`ArchiveWriter`] implements it
//! for a directory (on any [`ArchiveFs`], the crash simulator included); a storage that ships
//! to object storage will implement it around one.

use std::path::PathBuf;

use pgwalrus_wal::names::SegmentName;
use pgwalrus_wal::{Lsn, TimeLineId};

use crate::error::Result;
use crate::fs::ArchiveFs;
use crate::writer::{ArchiveWriter, Written};

/// Where a receive loop puts WAL. Positions only move forward; after an error the sink is
/// poisoned and every later call fails (a failed fsync is never retried).
pub trait WalSink: Send + std::fmt::Debug {
    /// Writes timeline `tli`'s history file durably (before any segment of `tli`); returns
    /// where it went, for the log.
    ///
    /// # Errors
    /// As [`ArchiveWriter::write_history`].
    fn write_history(&mut self, tli: TimeLineId, content: &[u8]) -> Result<PathBuf>;

    /// Streaming (re)starts at `lsn` (a segment boundary) on `tli`.
    ///
    /// # Errors
    /// As [`ArchiveWriter::start`].
    fn start(&mut self, tli: TimeLineId, lsn: Lsn) -> Result<()>;

    /// WAL `bytes` starting at `lsn`, continuing what was written before.
    ///
    /// # Errors
    /// As [`ArchiveWriter::write`].
    fn write(&mut self, tli: TimeLineId, lsn: Lsn, bytes: &[u8]) -> Result<Written>;

    /// Makes everything written durable; returns the durable position.
    ///
    /// # Errors
    /// As [`ArchiveWriter::sync`].
    fn sync(&mut self) -> Result<Lsn>;

    /// Makes everything written durable and closes the open segment, leaving it resumable;
    /// returns the durable position.
    ///
    /// # Errors
    /// As [`ArchiveWriter::close_partial`].
    fn close_partial(&mut self) -> Result<Lsn>;

    /// End of what was handed to the storage.
    fn write_lsn(&self) -> Lsn;

    /// End of what is durable.
    fn flush_lsn(&self) -> Lsn;

    /// The timeline being written, once started.
    fn timeline(&self) -> Option<TimeLineId>;

    /// The segment most recently completed under its final name, if any. A
    /// [`WalSink::write`] that completes a segment and then fails (the next segment cannot
    /// be created: a full disk) returns only the error; the caller learns of the completion
    /// here.
    fn last_completed(&self) -> Option<SegmentName> {
        None
    }

    /// Whether there is preparatory work for an idle moment ([`WalSink::zero_ahead`]).
    fn zero_ahead_due(&self) -> bool {
        false
    }

    /// Preparatory work while the stream is idle; returns the durable position.
    ///
    /// # Errors
    /// As [`ArchiveWriter::zero_ahead`].
    fn zero_ahead(&mut self) -> Result<Lsn> {
        Ok(self.flush_lsn())
    }
}

impl<F> WalSink for ArchiveWriter<F>
where
    F: ArchiveFs + Send,
    F::File: Send,
{
    fn write_history(&mut self, tli: TimeLineId, content: &[u8]) -> Result<PathBuf> {
        ArchiveWriter::write_history(self, tli, content)
    }

    fn start(&mut self, tli: TimeLineId, lsn: Lsn) -> Result<()> {
        ArchiveWriter::start(self, tli, lsn)
    }

    fn write(&mut self, tli: TimeLineId, lsn: Lsn, bytes: &[u8]) -> Result<Written> {
        ArchiveWriter::write(self, tli, lsn, bytes)
    }

    fn sync(&mut self) -> Result<Lsn> {
        ArchiveWriter::sync(self)
    }

    fn close_partial(&mut self) -> Result<Lsn> {
        ArchiveWriter::close_partial(self)
    }

    fn write_lsn(&self) -> Lsn {
        ArchiveWriter::write_lsn(self)
    }

    fn flush_lsn(&self) -> Lsn {
        ArchiveWriter::flush_lsn(self)
    }

    fn timeline(&self) -> Option<TimeLineId> {
        ArchiveWriter::timeline(self)
    }

    fn last_completed(&self) -> Option<SegmentName> {
        ArchiveWriter::last_completed(self)
    }

    fn zero_ahead_due(&self) -> bool {
        ArchiveWriter::zero_ahead_due(self)
    }

    fn zero_ahead(&mut self) -> Result<Lsn> {
        ArchiveWriter::zero_ahead(self)
    }
}
