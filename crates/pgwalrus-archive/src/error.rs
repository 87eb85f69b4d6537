//! [`Error`], the one error type of the archive crate, with the operation, path and WAL
//! position that give it context, and predicates ([`Error::is_no_space`],
//! [`Error::is_poisoned`], …) decided by error kinds and codes, never by message text.
//!
//! A message never repeats its source (the operating system's error, …): show an error to
//! people with its whole chain, `error: source`, as `anyhow`'s `{:#}` does.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use pgwalrus_wal::names::{Compression, NameError};
use pgwalrus_wal::page::PageHeaderError;
use pgwalrus_wal::{Lsn, TimeLineId, WalSegSize};

use crate::compress::StreamEnd;

/// `ENOSPC`, "no space left on device": 28 on Linux, macOS and the BSDs.
const ENOSPC: i32 = 28;

/// The file system operation that failed, as named in error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Op {
    /// Creating a file that must not exist yet (`open(O_CREAT | O_EXCL)`).
    Create,
    /// Opening an existing file.
    Open,
    /// Writing at an offset (`pwrite`).
    Write,
    /// Reading at an offset (`pread`).
    Read,
    /// Changing a file's length (`ftruncate`, or `fallocate` reserving its blocks).
    SetLen,
    /// Reading a file's length (`stat` / `fstat`).
    Stat,
    /// Flushing a file to stable storage (`fsync` / `fdatasync`).
    Sync,
    /// Flushing a directory's entries to stable storage (`fsync` on the directory).
    SyncDir,
    /// Renaming a file (`rename`).
    Rename,
    /// Removing a file (`unlink`).
    Remove,
    /// Listing a directory (`readdir`).
    ListDir,
}

impl Op {
    /// The operation as a lower-case verb phrase (`"fsync"`, `"rename"`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Open => "open",
            Op::Write => "write",
            Op::Read => "read",
            Op::SetLen => "set the length of",
            Op::Stat => "stat",
            Op::Sync => "fsync",
            Op::SyncDir => "fsync directory",
            Op::Rename => "rename",
            Op::Remove => "remove",
            Op::ListDir => "list directory",
        }
    }

    /// `true` for the operations after whose failure the on-disk state is unknown and a
    /// writer must not carry on: fsync of a file or directory, and rename.
    pub const fn poisons(self) -> bool {
        matches!(self, Op::Sync | Op::SyncDir | Op::Rename)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong in the archive.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file system operation failed.
    #[error("could not {op} {}", path.display())]
    Io {
        /// What was being done.
        op: Op,
        /// The file or directory it was done to (for a rename, the source).
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },

    /// The segment file being written is no longer under its name: another process moved,
    /// removed or replaced it while the writer had it open. The writer refuses to report
    /// what it wrote there as durable, or to give the file its final name.
    #[error(
        "segment file {} is no longer the file being written: another process moved, removed or replaced it; refusing to {op} it (what was written into it since the last fsync is not in the archive)",
        path.display()
    )]
    Replaced {
        /// The `.partial` path the writer opened.
        path: PathBuf,
        /// What the writer was about to do ([`Op::Sync`] or [`Op::Rename`]).
        op: Op,
    },

    /// WAL data did not start where the previous data ended.
    #[error(
        "wal data on timeline {tli} is not contiguous: expected data starting at {expected}, got data starting at {got}"
    )]
    NotContiguous {
        /// The timeline being written.
        tli: TimeLineId,
        /// The current write position.
        expected: Lsn,
        /// Where the rejected data starts.
        got: Lsn,
    },

    /// WAL data for another timeline than the one being written.
    #[error("wal data at {lsn} is for timeline {got}, but timeline {expected} is being written")]
    TimelineMismatch {
        /// The timeline being written.
        expected: TimeLineId,
        /// The timeline of the rejected data.
        got: TimeLineId,
        /// Where the rejected data starts.
        lsn: Lsn,
    },

    /// Data arrived before a start position was set, or after a clean stop.
    #[error("the archive writer has no start position: call start() before writing")]
    NotStarted,

    /// The archive's file system has less free space than the configured floor: no new
    /// segment is started until space returns.
    #[error(
        "the file system of \"{}\" has {available} bytes free, under the floor of {floor} bytes (min_free_space): no new segment is started until space is freed",
        dir.display()
    )]
    BelowFloor {
        /// The archive directory.
        dir: PathBuf,
        /// Bytes available to the writer.
        available: u64,
        /// The floor.
        floor: u64,
    },

    /// Streaming must start at the first byte of a segment.
    #[error("cannot start streaming at {lsn}: it is not the start of a {seg_size} segment")]
    NotSegmentStart {
        /// The rejected start position.
        lsn: Lsn,
        /// The segment size.
        seg_size: WalSegSize,
    },

    /// A new start position was set while a segment file was still open.
    #[error(
        "cannot start at {lsn} on timeline {tli}: segment {} is still open; close it first",
        path.display()
    )]
    SegmentOpen {
        /// The open segment.
        path: PathBuf,
        /// The requested timeline.
        tli: TimeLineId,
        /// The requested start.
        lsn: Lsn,
    },

    /// An earlier fsync or rename failed; the writer refuses all further work.
    #[error(
        "the archive writer is poisoned: an earlier {op} of {} failed; reconnect and stream again from {flush_lsn}",
        path.display()
    )]
    Poisoned {
        /// The operation that failed.
        op: Op,
        /// The file or directory it failed on.
        path: PathBuf,
        /// The last position known to be durable.
        flush_lsn: Lsn,
    },

    /// A complete, uncompressed segment whose length is not one segment.
    #[error(
        "complete segment {} has {size} bytes, but a wal segment has {expected}; it was truncated or is not a segment of this cluster (left as it is)",
        path.display()
    )]
    WrongSegmentSize {
        /// The file.
        path: PathBuf,
        /// Its length.
        size: u64,
        /// One segment.
        expected: u64,
    },

    /// A `.partial` segment longer than one segment: nothing pgwalrus or pg_receivewal
    /// writes looks like that.
    #[error(
        "partial segment {} has {size} bytes, more than one {seg_size} segment (left as it is)",
        path.display()
    )]
    OversizedPartial {
        /// The file.
        path: PathBuf,
        /// Its length.
        size: u64,
        /// The segment size.
        seg_size: WalSegSize,
    },

    /// A file named like a WAL segment, but not one that can exist at this segment size:
    /// the directory holds WAL of a cluster with another segment size.
    #[error("{} is not a wal file name at segment size {seg_size}", path.display())]
    ForeignSegmentName {
        /// The file.
        path: PathBuf,
        /// The segment size names were checked against.
        seg_size: WalSegSize,
        /// Why the name does not fit.
        #[source]
        source: NameError,
    },

    /// The archive holds WAL of another database system than the server's.
    #[error(
        "{} belongs to database system {archive_system_id}, but the server is database system {server_system_id}",
        path.display()
    )]
    SystemIdMismatch {
        /// The archive file that gave the evidence.
        path: PathBuf,
        /// The system identifier in that file's first page header.
        archive_system_id: u64,
        /// The server's system identifier.
        server_system_id: u64,
    },

    /// The archive holds WAL written with another segment size than the server's.
    #[error(
        "{} was written with wal segment size {archive_seg_size} bytes, but the server uses {server_seg_size}",
        path.display()
    )]
    SegSizeMismatch {
        /// The archive file that gave the evidence.
        path: PathBuf,
        /// The segment size in that file's first page header, in bytes.
        archive_seg_size: u32,
        /// The server's segment size.
        server_seg_size: WalSegSize,
    },

    /// A complete segment whose first bytes are not a WAL long page header.
    #[error("{} does not start with a wal segment header: {reason}", path.display())]
    NotWalHeader {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: HeaderProblem,
    },

    /// A compressed file that must decode whole (a complete segment or history file) does
    /// not: it is cut short or damaged, or it decompresses to more than a segment.
    #[error(
        "cannot decompress {} ({compression}) past byte {at} of its content: {problem}",
        path.display()
    )]
    Decompress {
        /// The file.
        path: PathBuf,
        /// Its compression.
        compression: Compression,
        /// How many bytes decoded before the problem.
        at: u64,
        /// What stopped decoding.
        problem: StreamEnd,
    },

    /// A complete compressed segment that does not decompress to exactly one segment.
    #[error(
        "complete segment {} decompresses ({compression}) to {size} bytes, but a wal segment has {expected}; it was cut short or is not a segment of this cluster (left as it is)",
        path.display()
    )]
    WrongUncompressedSize {
        /// The file.
        path: PathBuf,
        /// Its compression.
        compression: Compression,
        /// What it decompresses to.
        size: u64,
        /// One segment.
        expected: u64,
    },

    /// The compressor failed (it could not set up its state, or was used after the end of
    /// its stream).
    #[error("could not compress {} with {compression}", path.display())]
    Compress {
        /// The file being written.
        path: PathBuf,
        /// The method.
        compression: Compression,
        /// The library's error.
        #[source]
        source: io::Error,
    },

    /// A read past the end of a file.
    #[error(
        "cannot read {len} bytes at offset {offset} of {}: the file has {file_len} bytes",
        path.display()
    )]
    ReadPastEnd {
        /// The file.
        path: PathBuf,
        /// Where the read started.
        offset: u64,
        /// How many bytes were asked for.
        len: u64,
        /// The file's length.
        file_len: u64,
    },

    /// WAL data that would run past the last possible position `FFFFFFFF/FFFFFFFF`.
    #[error("{len} bytes of wal at {lsn} would run past the last wal position")]
    LsnOverflow {
        /// Where the data starts.
        lsn: Lsn,
        /// Its length.
        len: u64,
    },

    /// Refused to remove a file that is not one of pgwalrus's temporary files.
    #[error("refusing to remove {}: not a temporary file name", path.display())]
    NotTemporary {
        /// The file.
        path: PathBuf,
    },
}

/// Why a first page is not a usable WAL segment header.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderProblem {
    /// The page header did not decode.
    Invalid(PageHeaderError),
    /// A valid page header without the long-header flag, which every segment's first page
    /// carries.
    NoLongHeader,
    /// A long header whose system identifier or segment size is zero (a torn write of the
    /// first page; the server never writes zeros there).
    ZeroFields,
    /// A long header of this cluster, but of another segment: its page address is not the
    /// start of the segment the file's name says (a file copied under another name).
    OtherSegment {
        /// The page address in the header.
        page_addr: Lsn,
        /// The start of the segment the name says.
        segment_start: Lsn,
    },
    /// A compressed file whose first page does not decompress.
    Undecodable {
        /// The file's compression.
        compression: Compression,
        /// What stopped decoding.
        problem: StreamEnd,
    },
}

impl HeaderProblem {
    /// Whether a crash while the first page was written can leave this: a torn long header
    /// ([`HeaderProblem::ZeroFields`]) or a compressed stream whose first bytes do not
    /// decode ([`HeaderProblem::Undecodable`]). Random bytes, a page header without the
    /// long-header flag and another segment's page are not left by a crash.
    pub fn may_be_left_by_a_crash(&self) -> bool {
        matches!(
            self,
            HeaderProblem::ZeroFields | HeaderProblem::Undecodable { .. }
        )
    }
}

impl fmt::Display for HeaderProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderProblem::Invalid(e) => e.fmt(f),
            HeaderProblem::NoLongHeader => f.write_str("the first page has no long header"),
            HeaderProblem::ZeroFields => {
                f.write_str("the long header's system identifier or segment size is zero")
            }
            HeaderProblem::OtherSegment {
                page_addr,
                segment_start,
            } => write!(
                f,
                "its first page is the page at {page_addr} (its header says so), not the start of the segment at {segment_start}"
            ),
            HeaderProblem::Undecodable {
                compression,
                problem,
            } => write!(
                f,
                "its first page does not decompress ({compression}): {problem}"
            ),
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with its operation and path.
    pub(crate) fn io(op: Op, path: &Path, source: io::Error) -> Self {
        Error::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    /// A closure for `map_err` that wraps an I/O error with its operation and path. The path
    /// is only copied when there is an error.
    pub(crate) fn at(op: Op, path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
        move |source| Error::io(op, path, source)
    }

    /// `true` when the device or quota is full: the I/O error's kind is `StorageFull` or
    /// `QuotaExceeded`, or its OS code is `ENOSPC`; or the free space is under the
    /// configured floor ([`Error::BelowFloor`]). Existing files are intact; the
    /// operation may succeed once space is freed.
    pub fn is_no_space(&self) -> bool {
        if matches!(self, Error::BelowFloor { .. }) {
            return true;
        }
        self.io_error().is_some_and(|e| {
            matches!(
                e.kind(),
                io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
            ) || e.raw_os_error() == Some(ENOSPC)
        })
    }

    /// `true` when a file the operation needed does not exist.
    pub fn is_not_found(&self) -> bool {
        self.io_error()
            .is_some_and(|e| e.kind() == io::ErrorKind::NotFound)
    }

    /// `true` for [`Error::Poisoned`]: a writer that refuses all work after a failed fsync
    /// or rename. The caller drops it, reconnects and streams again from the last durable
    /// position.
    pub fn is_poisoned(&self) -> bool {
        matches!(self, Error::Poisoned { .. })
    }

    /// `true` for an I/O failure that poisons a writer (a failed fsync or rename); the call
    /// that returns it is the last one the writer accepts.
    pub fn is_poisoning(&self) -> bool {
        matches!(self, Error::Io { op, .. } if op.poisons())
    }

    /// `true` for data that does not continue the stream: [`Error::NotContiguous`] or
    /// [`Error::TimelineMismatch`]. Nothing was written.
    pub fn is_discontinuity(&self) -> bool {
        matches!(
            self,
            Error::NotContiguous { .. } | Error::TimelineMismatch { .. }
        )
    }

    /// `true` when the archive belongs to another cluster or segment size
    /// ([`Error::SystemIdMismatch`], [`Error::SegSizeMismatch`],
    /// [`Error::ForeignSegmentName`]).
    pub fn is_cluster_mismatch(&self) -> bool {
        matches!(
            self,
            Error::SystemIdMismatch { .. }
                | Error::SegSizeMismatch { .. }
                | Error::ForeignSegmentName { .. }
        )
    }

    /// The underlying I/O error, for [`Error::Io`].
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }

    /// The failed operation, for [`Error::Io`], [`Error::Poisoned`] and
    /// [`Error::Replaced`] (the operation refused).
    pub fn op(&self) -> Option<Op> {
        match self {
            Error::Io { op, .. } | Error::Poisoned { op, .. } | Error::Replaced { op, .. } => {
                Some(*op)
            }
            _ => None,
        }
    }

    /// The file or directory the error is about, when there is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Error::Io { path, .. }
            | Error::SegmentOpen { path, .. }
            | Error::Poisoned { path, .. }
            | Error::WrongSegmentSize { path, .. }
            | Error::OversizedPartial { path, .. }
            | Error::ForeignSegmentName { path, .. }
            | Error::SystemIdMismatch { path, .. }
            | Error::SegSizeMismatch { path, .. }
            | Error::NotWalHeader { path, .. }
            | Error::Decompress { path, .. }
            | Error::WrongUncompressedSize { path, .. }
            | Error::Compress { path, .. }
            | Error::ReadPastEnd { path, .. }
            | Error::NotTemporary { path }
            | Error::Replaced { path, .. }
            | Error::BelowFloor { dir: path, .. } => Some(path),
            Error::NotContiguous { .. }
            | Error::TimelineMismatch { .. }
            | Error::NotStarted
            | Error::NotSegmentStart { .. }
            | Error::LsnOverflow { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io_err(source: io::Error) -> Error {
        Error::io(
            Op::Write,
            Path::new("/a/000000010000000000000001.partial"),
            source,
        )
    }

    #[test]
    fn no_space_is_decided_by_kind_or_code_not_text() {
        assert!(io_err(io::Error::from_raw_os_error(ENOSPC)).is_no_space());
        assert!(io_err(io::Error::from(io::ErrorKind::StorageFull)).is_no_space());
        assert!(io_err(io::Error::from(io::ErrorKind::QuotaExceeded)).is_no_space());
        assert!(!io_err(io::Error::other("no space left on device")).is_no_space());
        assert!(!io_err(io::Error::from_raw_os_error(5)).is_no_space());
        assert!(!Error::NotStarted.is_no_space());
    }

    #[test]
    fn poisoning_ops_are_fsync_and_rename() {
        for op in [Op::Sync, Op::SyncDir, Op::Rename] {
            assert!(op.poisons(), "{op}");
        }
        for op in [
            Op::Create,
            Op::Open,
            Op::Write,
            Op::Read,
            Op::SetLen,
            Op::Stat,
            Op::Remove,
            Op::ListDir,
        ] {
            assert!(!op.poisons(), "{op}");
        }
        let e = Error::io(Op::Sync, Path::new("/a"), io::Error::from_raw_os_error(5));
        assert!(e.is_poisoning() && !e.is_poisoned());
    }

    #[test]
    fn messages_are_lower_case_without_trailing_period_and_carry_context() {
        let path = PathBuf::from("/archive/000000010000000000000002");
        let errors = [
            io_err(io::Error::from_raw_os_error(ENOSPC)),
            Error::NotContiguous {
                tli: TimeLineId::ONE,
                expected: Lsn(0x100_0000),
                got: Lsn(0x100_0010),
            },
            Error::TimelineMismatch {
                expected: TimeLineId::ONE,
                got: TimeLineId::new(2).unwrap(),
                lsn: Lsn(0x100_0000),
            },
            Error::NotStarted,
            Error::Poisoned {
                op: Op::Sync,
                path: path.clone(),
                flush_lsn: Lsn(0x200_0000),
            },
            Error::WrongSegmentSize {
                path: path.clone(),
                size: 12,
                expected: 16 << 20,
            },
            Error::SystemIdMismatch {
                path: path.clone(),
                archive_system_id: 7,
                server_system_id: 8,
            },
        ];
        for e in &errors {
            let msg = e.to_string();
            let first = msg.chars().next().unwrap();
            assert!(!first.is_uppercase(), "{msg}");
            assert!(!msg.ends_with('.'), "{msg}");
        }
        assert!(
            errors[0]
                .to_string()
                .contains("000000010000000000000001.partial")
        );
        assert!(errors[1].to_string().contains("0/1000000"));
        assert!(errors[1].to_string().contains("0/1000010"));
        assert!(errors[4].to_string().contains("0/2000000"));
        assert!(errors[5].to_string().contains("12 bytes"));
        let mismatch = errors[6].to_string();
        assert!(
            mismatch.contains(" 7") && mismatch.contains(" 8"),
            "{mismatch}"
        );
        assert_eq!(errors[6].path(), Some(path.as_path()));
        assert!(errors[6].is_cluster_mismatch());
        assert!(errors[1].is_discontinuity() && errors[2].is_discontinuity());
        // The cause is the source, not part of the message.
        let cause = std::error::Error::source(&errors[0]).unwrap().to_string();
        assert!(!errors[0].to_string().contains(&cause), "{}", errors[0]);
    }
}
