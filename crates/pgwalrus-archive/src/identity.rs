//! The cluster guard: which database system (and segment size) the WAL in the archive
//! comes from, read from the long page header at the start of its segments, and the check
//! against the server's.
//!
//! pg_receivewal does not remember the cluster it archives: pointed at a rebuilt or
//! different server it appends that server's WAL to the old archive. pgwalrus reads the
//! evidence already on disk instead:
//!
//! * the newest complete segment and the oldest one (the two ends of the archive);
//! * every `.partial` whose first page has been written. A first page that is all zeros
//!   (a sparse or pre-zeroed file not yet written) or a file shorter than the header gives
//!   no evidence and is skipped.
//!
//! Compressed files are read the same way: their first 40 bytes are decompressed (a
//! `.partial` cut short before them gives no evidence; a complete file whose first bytes do
//! not decompress is [`HeaderProblem::Undecodable`]).

use std::path::Path;

use pgwalrus_wal::names::Compression;
use pgwalrus_wal::page::{LONG_HEADER_LEN, PageHeader, PageHeaderError, XLP_LONG_HEADER};
use pgwalrus_wal::{Lsn, WalSegSize};

use crate::compress::StreamEnd;
use crate::compress::file::prefix_of_file;
use crate::error::{Error, HeaderProblem, Op, Result};
use crate::fs::{ArchiveFile, ArchiveFs};
use crate::resume::{DirScan, FoundSegment};

/// Why a file was looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The newest complete segment.
    NewestComplete,
    /// The oldest complete segment.
    OldestComplete,
    /// A `.partial` segment.
    Partial,
}

/// What a file's first page says.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Finding {
    /// A long page header.
    Identified {
        /// `xlp_sysid`: the database system identifier.
        system_id: u64,
        /// `xlp_seg_size`: the segment size in bytes.
        seg_size: u32,
        /// `xlp_magic`: identifies the major version that wrote it.
        magic: u16,
        /// `xlp_pageaddr`: the position of the page, which for a segment's first page is
        /// the segment's start.
        page_addr: Lsn,
    },
    /// No evidence: the first page was never written (all zeros), or the file is shorter
    /// than a long page header (decompressed, for a compressed file).
    Unwritten,
    /// The first bytes are not a usable long page header.
    NotWal(HeaderProblem),
}

/// One file's evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// The file.
    pub segment: FoundSegment,
    /// Why it was looked at.
    pub role: Role,
    /// What its first page says.
    pub finding: Finding,
}

/// The evidence the archive holds about its cluster.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ArchiveIdentity {
    /// Every file looked at, newest complete first, then oldest complete, then partials.
    pub evidence: Vec<Evidence>,
}

impl ArchiveIdentity {
    /// The first file that identified a system: its system identifier, segment size and
    /// path. `None` for an empty archive or one with no readable evidence.
    pub fn identified(&self) -> Option<(u64, u32, &Path)> {
        self.evidence.iter().find_map(|e| match e.finding {
            Finding::Identified {
                system_id,
                seg_size,
                ..
            } => Some((system_id, seg_size, e.segment.path.as_path())),
            _ => None,
        })
    }

    /// Checks every piece of evidence against the server's system identifier and segment
    /// size (from `IDENTIFY_SYSTEM` and `SHOW wal_segment_size`).
    ///
    /// # Errors
    ///
    /// The first of, in evidence order: [`Error::SystemIdMismatch`] or
    /// [`Error::SegSizeMismatch`], naming both values and the file;
    /// [`Error::NotWalHeader`] for a segment, complete or `.partial`, whose first page is
    /// written but is not a long page header, or is the first page of another segment
    /// ([`HeaderProblem::OtherSegment`]), except what a crash can leave at the start of a
    /// `.partial` ([`HeaderProblem::may_be_left_by_a_crash`]). A `.partial` is resumed from
    /// its start, but only
    /// the bytes the server sends again are written: resuming into random bytes (or
    /// another segment's copy) would leave them behind the new WAL, in a file that
    /// `restore --partial` and `verify` then refuse.
    pub fn check_server(&self, server_system_id: u64, server_seg_size: WalSegSize) -> Result<()> {
        for e in &self.evidence {
            match &e.finding {
                Finding::Identified {
                    system_id,
                    seg_size,
                    page_addr,
                    ..
                } => {
                    if *system_id != server_system_id {
                        return Err(Error::SystemIdMismatch {
                            path: e.segment.path.clone(),
                            archive_system_id: *system_id,
                            server_system_id,
                        });
                    }
                    if *seg_size != server_seg_size.bytes() {
                        return Err(Error::SegSizeMismatch {
                            path: e.segment.path.clone(),
                            archive_seg_size: *seg_size,
                            server_seg_size,
                        });
                    }
                    let start = e.segment.name.start_lsn();
                    if *page_addr != start {
                        return Err(Error::NotWalHeader {
                            path: e.segment.path.clone(),
                            reason: HeaderProblem::OtherSegment {
                                page_addr: *page_addr,
                                segment_start: start,
                            },
                        });
                    }
                }
                // What a crash can leave at the start of a `.partial` (a torn long header, a
                // compressed stream whose first bytes never reached the disk) stays no
                // evidence: the file is written again from its start. Anything else there
                // (random bytes, no long header) is not WAL the receiver wrote.
                Finding::NotWal(problem)
                    if e.role != Role::Partial || !problem.may_be_left_by_a_crash() =>
                {
                    return Err(Error::NotWalHeader {
                        path: e.segment.path.clone(),
                        reason: problem.clone(),
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Reads the evidence of the files a [`DirScan`] found (see the
/// [module documentation](self) for which).
///
/// # Errors
///
/// [`Error::Io`] opening or reading a file.
pub fn inspect<F: ArchiveFs>(fs: &F, scan: &DirScan) -> Result<ArchiveIdentity> {
    let newest = scan
        .resume
        .as_ref()
        .and_then(|r| r.newest_complete.as_ref());
    let candidates = newest
        .map(|s| (s, Role::NewestComplete))
        .into_iter()
        .chain(
            scan.oldest_complete
                .iter()
                .map(|s| (s, Role::OldestComplete)),
        )
        .chain(scan.partials.iter().map(|s| (s, Role::Partial)));

    let mut identity = ArchiveIdentity::default();
    for (segment, role) in candidates {
        if identity
            .evidence
            .iter()
            .any(|e| e.segment.path == segment.path)
        {
            continue;
        }
        let finding = match segment.name.compression() {
            Some(compression) => first_page_compressed(fs, &segment.path, compression)?,
            None => first_page(fs, &segment.path)?,
        };
        identity.evidence.push(Evidence {
            segment: segment.clone(),
            role,
            finding,
        });
    }
    Ok(identity)
}

/// Reads and judges the long page header at the start of an uncompressed segment file.
///
/// # Errors
///
/// [`Error::Io`] opening or reading the file.
pub fn first_page<F: ArchiveFs>(fs: &F, path: &Path) -> Result<Finding> {
    let file = fs.open_read(path).map_err(Error::at(Op::Open, path))?;
    let mut header = [0u8; LONG_HEADER_LEN];
    let n = file
        .read_full_at(&mut header, 0)
        .map_err(Error::at(Op::Read, path))?;
    Ok(judge(header.get(..n).unwrap_or_default()))
}

/// Decompresses the first bytes of a compressed segment file and judges its long page
/// header. Too few bytes is no evidence, unless the data stops decoding before them.
///
/// # Errors
///
/// [`Error::Io`] opening or reading the file.
pub fn first_page_compressed<F: ArchiveFs>(
    fs: &F,
    path: &Path,
    compression: Compression,
) -> Result<Finding> {
    let (bytes, held) = prefix_of_file(fs, path, compression, LONG_HEADER_LEN)?;
    if bytes.len() < LONG_HEADER_LEN
        && let StreamEnd::Corrupt(_) = held.end
    {
        return Ok(Finding::NotWal(HeaderProblem::Undecodable {
            compression,
            problem: held.end,
        }));
    }
    Ok(judge(&bytes))
}

fn judge(bytes: &[u8]) -> Finding {
    if bytes.len() < LONG_HEADER_LEN {
        return Finding::Unwritten;
    }
    match PageHeader::parse(bytes) {
        Err(PageHeaderError::Zero | PageHeaderError::Short { .. }) => Finding::Unwritten,
        Err(e) => Finding::NotWal(HeaderProblem::Invalid(e)),
        Ok(h) => match h.long {
            Some(long) if h.info & XLP_LONG_HEADER != 0 => {
                if long.system_id == 0 || long.seg_size == 0 {
                    Finding::NotWal(HeaderProblem::ZeroFields)
                } else {
                    Finding::Identified {
                        system_id: long.system_id,
                        seg_size: long.seg_size,
                        magic: h.magic,
                        page_addr: h.page_addr,
                    }
                }
            }
            _ => Finding::NotWal(HeaderProblem::NoLongHeader),
        },
    }
}

#[cfg(test)]
mod tests;
