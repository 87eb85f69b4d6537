//! Copying one archive file out, decompressed and checked: a segment (complete, or a
//! `.partial` padded with zeros to a full segment) or a timeline history file. The bytes go
//! to a file the caller staged beside the destination; the caller installs it only when
//! the copy succeeded, so nothing half-written or damaged ever reaches the server.

use std::path::Path;

use pgwalrus_archive::identity::{Finding, first_page, first_page_compressed};
use pgwalrus_archive::plan::detect_origin;
use pgwalrus_archive::{ArchiveFile, ArchiveFs, ArchiveStream, Error as ArchiveError, reader};
use pgwalrus_client::error_chain;
use pgwalrus_wal::history::TimelineHistory;
use pgwalrus_wal::names::{FileName, HistoryName, SegmentName};
use pgwalrus_wal::page::LONG_HEADER_LEN;
use pgwalrus_wal::{Lsn, SegNo, TimeLineId, WalSegSize};

use super::check::{self, SegmentCheck, Tail};
use super::find;

/// Read size while copying.
const CHUNK: usize = 1 << 20;

/// Why a file was not copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Problem {
    /// The file disappeared after it was found (a receiver renamed its `.partial`): look
    /// again.
    Vanished,
    /// A `.partial` with no WAL in it yet (its first page was never written).
    NoWal(String),
    /// The content is damaged; the text says how and where.
    Damaged(String),
    /// Reading the archive or writing the copy failed.
    Io(String),
}

/// What was copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Copied {
    /// The file's name at the archive's real segment size.
    pub(crate) name: SegmentName,
    /// Content bytes read from it (decompressed).
    pub(crate) bytes: u64,
    /// For a `.partial`: where its valid WAL ends (zeros follow in the copy).
    pub(crate) wal_end: Option<Lsn>,
    /// Whether the record running into the next segment could be checked.
    pub(crate) tail: Tail,
}

fn archive_problem(e: &ArchiveError) -> Problem {
    if e.is_not_found() {
        Problem::Vanished
    } else if e.io_error().is_some() {
        Problem::Io(error_chain(e).to_string())
    } else {
        Problem::Damaged(error_chain(e).to_string())
    }
}

/// Copies segment file `found` (its name as found, at any segment size) from `dir` into
/// `out`, checking it as it goes (see [`check`]). A `.partial` shorter than a
/// segment is padded with zeros (`out` is set to a full segment's length).
///
/// # Errors
/// A [`Problem`]; `out` then holds some bytes and must be discarded.
pub(crate) fn copy_segment<F: ArchiveFs, O: ArchiveFile>(
    fs: &F,
    dir: &Path,
    found: SegmentName,
    out: &O,
    out_path: &Path,
) -> Result<Copied, Problem> {
    let path = dir.join(found.to_string());
    let finding = match found.compression() {
        Some(method) => first_page_compressed(fs, &path, method),
        None => first_page(fs, &path),
    }
    .map_err(|e| archive_problem(&e))?;
    let seg_size = match finding {
        Finding::Identified {
            seg_size,
            system_id,
            ..
        } => {
            same_system(fs, dir, system_id)?;
            WalSegSize::new(seg_size).map_err(|e| {
                Problem::Damaged(format!(
                    "its first page gives a segment size of {seg_size} bytes: {e}"
                ))
            })?
        }
        Finding::Unwritten if found.is_partial() => {
            return Err(Problem::NoWal(format!(
                "{} holds no WAL yet (its first page was never written)",
                path.display()
            )));
        }
        Finding::Unwritten => {
            // An empty or cut file is named by its length, the first thing to compare.
            let len = match found.compression() {
                None => fs.file_len(&path).ok(),
                Some(_) => None,
            };
            return Err(Problem::Damaged(match len {
                Some(0) => "it has 0 bytes: it is empty".to_owned(),
                Some(len) => format!(
                    "it has {len} bytes, and its first page was never written (zeros, or fewer bytes than a page header)"
                ),
                None => {
                    "its first page was never written (zeros, or fewer bytes than a page header)"
                        .to_owned()
                }
            }));
        }
        Finding::NotWal(problem) => {
            return Err(Problem::Damaged(format!(
                "its first page is not WAL: {problem}"
            )));
        }
        other => {
            return Err(Problem::Damaged(format!(
                "its first page is not WAL: {other:?}"
            )));
        }
    };
    let name = match FileName::parse(&found.to_string(), seg_size) {
        Ok(FileName::Segment(name)) => name,
        _ => {
            return Err(Problem::Damaged(format!(
                "its first page says the cluster has {seg_size} segments, at which the name {found} cannot exist"
            )));
        }
    };
    let seg = seg_size.as_u64();
    if name.compression().is_none() {
        let len = fs.file_len(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Problem::Vanished
            } else {
                Problem::Io(format!("could not stat {}: {e}", path.display()))
            }
        })?;
        if (!name.is_partial() && len != seg) || len > seg {
            return Err(Problem::Damaged(format!(
                "it has {len} bytes, but a {seg_size} segment has {seg}: it was cut short or is not a segment of this cluster"
            )));
        }
    }

    let mut check =
        SegmentCheck::new(name, read_history(fs, dir, name.tli())).map_err(Problem::Damaged)?;
    let mut stream =
        ArchiveStream::open(fs, dir, &FileName::Segment(name)).map_err(|e| archive_problem(&e))?;
    let mut buf = vec![0u8; CHUNK];
    let mut head: Vec<u8> = Vec::with_capacity(LONG_HEADER_LEN);
    let mut at: u64 = 0;
    loop {
        let n = stream
            .read_chunk(&mut buf)
            .map_err(|e| archive_problem(&e))?;
        if n == 0 {
            break;
        }
        let chunk = buf.get(..n).unwrap_or_default();
        if head.len() < LONG_HEADER_LEN {
            let take = (LONG_HEADER_LEN - head.len()).min(chunk.len());
            head.extend_from_slice(chunk.get(..take).unwrap_or_default());
            if head.len() == LONG_HEADER_LEN {
                check::first_page(&head, name).map_err(Problem::Damaged)?;
            }
        }
        if at + n as u64 > seg {
            return Err(Problem::Damaged(format!(
                "it holds more than one {seg_size} segment"
            )));
        }
        out.write_all_at(chunk, at)
            .map_err(|e| Problem::Io(format!("could not write {}: {e}", out_path.display())))?;
        check.feed(chunk).map_err(Problem::Damaged)?;
        at += n as u64;
    }
    if head.len() < LONG_HEADER_LEN {
        return Err(if name.is_partial() {
            Problem::NoWal(format!("{} holds no WAL yet", path.display()))
        } else {
            Problem::Damaged(format!("it holds only {at} bytes"))
        });
    }
    if name.is_partial() {
        let wal_end = check.end_partial().map_err(Problem::Damaged)?;
        if at < seg {
            out.set_len(seg).map_err(|e| {
                Problem::Io(format!("could not extend {}: {e}", out_path.display()))
            })?;
        }
        return Ok(Copied {
            name,
            bytes: at,
            wal_end: Some(wal_end),
            tail: Tail::Checked,
        });
    }
    if at != seg {
        return Err(Problem::Damaged(format!(
            "it decompresses to {at} bytes, but a {seg_size} segment has {seg}: it was cut short"
        )));
    }
    let tail = end_of_complete(fs, dir, name, check)?;
    Ok(Copied {
        name,
        bytes: at,
        wal_end: None,
        tail,
    })
}

/// Finishes the check of complete segment `name` with the start of the next segment, if
/// the archive has it on the same timeline.
fn end_of_complete<F: ArchiveFs>(
    fs: &F,
    dir: &Path,
    name: SegmentName,
    check: SegmentCheck,
) -> Result<Tail, Problem> {
    let next = name
        .segno()
        .checked_next()
        .and_then(|segno: SegNo| SegmentName::new(name.tli(), segno, name.seg_size()).ok());
    let mut stream = None;
    if let Some(next) = next {
        for form in find::complete_forms(next).chain(find::partial_forms(next)) {
            match ArchiveStream::open(fs, dir, &FileName::Segment(form)) {
                Ok(s) => {
                    stream = Some((s, form.is_partial()));
                    break;
                }
                Err(e) if e.is_not_found() => {}
                // Unreadable: its problem is reported when it is asked for.
                Err(_) => break,
            }
        }
    }
    match stream {
        Some((mut s, is_partial)) => {
            let mut read =
                |buf: &mut [u8]| s.read_chunk(buf).map_err(|e| error_chain(&e).to_string());
            check
                .end_complete(Some((&mut read, is_partial)))
                .map_err(Problem::Damaged)
        }
        None => check.end_complete(None).map_err(Problem::Damaged),
    }
}

/// The history of timeline `tli` from the archive, when it has a readable one (timeline 1
/// has none).
pub(crate) fn read_history<F: ArchiveFs>(
    fs: &F,
    dir: &Path,
    tli: TimeLineId,
) -> Option<TimelineHistory> {
    if tli == TimeLineId::ONE {
        return None;
    }
    let found = find::first_existing(
        fs,
        dir,
        find::history_forms(HistoryName::new(tli)).map(FileName::History),
    )
    .ok()??;
    let content = reader::read_file(fs, dir, &found).ok()?;
    TimelineHistory::parse(tli, &content).ok()
}

/// The file's long header must name the database system of the archive's first segment
/// (the one `verify` checks every file against): a `.partial` of another cluster copied in
/// would otherwise reach the server, which takes the mismatch for the end of WAL and ends
/// recovery there.
///
/// # Errors
/// [`Problem::Damaged`] naming both systems; [`Problem::Io`] reading the archive.
fn same_system<F: ArchiveFs>(fs: &F, dir: &Path, system_id: u64) -> Result<(), Problem> {
    let origin = detect_origin(fs, dir).map_err(|e| {
        Problem::Io(format!(
            "could not read the archive's first segment: {}",
            error_chain(&e)
        ))
    })?;
    match origin {
        Some(origin) if origin.system_id != system_id => Err(Problem::Damaged(format!(
            "its first page is of database system {system_id}, but the archive's WAL is of system {} (as {} says): it is a file of another cluster",
            origin.system_id, origin.file
        ))),
        _ => Ok(()),
    }
}

/// Reads history file `wanted` (plain name) from `dir` in whichever form the archive has
/// it, decompressed and parsed. `Ok(None)` when the archive does not have it.
///
/// # Errors
/// [`Problem::Damaged`] for a file that does not decompress or parse; [`Problem::Io`].
pub(crate) fn read_history_file<F: ArchiveFs>(
    fs: &F,
    dir: &Path,
    wanted: HistoryName,
) -> Result<Option<(FileName, Vec<u8>)>, Problem> {
    let found =
        find::first_existing(fs, dir, find::history_forms(wanted).map(FileName::History))
            .map_err(|e| Problem::Io(format!("could not look in \"{}\": {e}", dir.display())))?;
    let Some(found) = found else {
        return Ok(None);
    };
    let content = reader::read_file(fs, dir, &found).map_err(|e| archive_problem(&e))?;
    TimelineHistory::parse(wanted.tli(), &content)
        .map_err(|e| Problem::Damaged(format!("it does not parse as a timeline history: {e}")))?;
    Ok(Some((found, content)))
}

#[cfg(test)]
mod tests;
