//! Walks an archive directory in LSN order along one timeline's history (the
//! [`plan`](pgwalrus_archive::plan)), decoding every record, and reports records and
//! problems as it goes. `verify` and `dump` are two views of this one walk.
//!
//! After a problem the walk resumes at the next segment start with a fresh decoder (which
//! skips a continued record at a segment start), so one damaged byte costs one report, not
//! a cascade.

use std::path::{Path, PathBuf};

use pgwalrus_archive::plan::{ArchivePlan, PlanError, detect_seg_size, plan};
use pgwalrus_archive::{StdFs, reader};
use pgwalrus_wal::decoder::{EndOfWal, EndReason, Expectations, WalDecoder};
use pgwalrus_wal::names::FileName;
use pgwalrus_wal::record::Record;
use pgwalrus_wal::{Lsn, PgMajor, TimeLineId, WalSegSize};

use crate::exit::Exit;
use crate::failure::Failure;

/// What to walk.
#[derive(Debug, Clone, Default)]
pub struct WalkOptions {
    /// The archive directory.
    pub dir: PathBuf,
    /// Only this segment file (a file argument to `dump`).
    pub only_file: Option<String>,
    /// Follow this timeline's history (default: the newest in the archive).
    pub timeline: Option<TimeLineId>,
    /// Skip records before this position.
    pub start: Option<Lsn>,
    /// Stop at records starting at or after this position.
    pub end: Option<Lsn>,
}

/// A problem found, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file it is in, when it is in one.
    pub file: Option<String>,
    /// Byte offset in that file.
    pub offset: Option<u64>,
    /// WAL position.
    pub lsn: Option<Lsn>,
    /// What is wrong.
    pub message: String,
}

/// What the walk reports, in order.
#[derive(Debug)]
pub enum Event<'a> {
    /// About to read segment `index` of `count`.
    Segment {
        /// 0-based.
        index: usize,
        /// Segments in the walk.
        count: usize,
        /// Its file name.
        name: &'a str,
    },
    /// A decoded record within the range.
    Record(&'a Record, PgMajor),
    /// A problem.
    Problem(&'a Problem),
}

/// Totals of a walk.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Segments read.
    pub segments: usize,
    /// Records decoded in range.
    pub records: u64,
    /// First and last segment file names.
    pub first_file: Option<String>,
    /// Last segment file name.
    pub last_file: Option<String>,
    /// Start of the first record in range.
    pub first_lsn: Option<Lsn>,
    /// End of the last record in range.
    pub end_lsn: Option<Lsn>,
    /// The timeline followed.
    pub timeline: Option<TimeLineId>,
    /// Problems found.
    pub problems: usize,
    /// The WAL major, once a page was read.
    pub major: Option<PgMajor>,
}

/// Walks the archive, calling `on_event` for each segment, record and problem.
///
/// # Errors
/// A [`Failure`] (exit 2) when the walk cannot run at all: no such directory, no WAL.
pub fn walk(
    options: &WalkOptions,
    mut on_event: impl FnMut(Event<'_>),
) -> Result<Summary, Failure> {
    let fs = StdFs::new();
    let dir = &options.dir;
    if !dir.is_dir() {
        return Err(Failure::msg(
            Exit::Config,
            format!("could not access directory \"{}\"", dir.display()),
        ));
    }
    let seg_size = detect_seg_size(&fs, dir)
        .map_err(|e| Failure::new(Exit::Config, e))?
        .ok_or_else(|| {
            Failure::msg(
                Exit::Config,
                format!("no WAL segment files in \"{}\"", dir.display()),
            )
        })?;
    let plan = plan(&fs, dir, seg_size, options.timeline).map_err(|e| match e {
        PlanError::BadHistory { .. } | PlanError::CompressedHistory { .. } => {
            Failure::new(Exit::Config, e)
        }
        other => Failure::new(Exit::Io, other),
    })?;
    let mut summary = Summary {
        timeline: Some(plan.target),
        ..Summary::default()
    };
    let mut report =
        |summary: &mut Summary, problem: Problem, on_event: &mut dyn FnMut(Event<'_>)| {
            summary.problems += 1;
            on_event(Event::Problem(&problem));
        };

    if !plan.history_found {
        let name = FileName::from(pgwalrus_wal::names::HistoryName::new(plan.target)).to_string();
        report(
            &mut summary,
            Problem {
                file: Some(name.clone()),
                offset: None,
                lsn: None,
                message: format!("history file {name} of timeline {} is missing", plan.target),
            },
            &mut on_event,
        );
    }

    let segments = selected(&plan, options, seg_size);
    for gap in &plan.gaps {
        let in_range = segments.first().is_some_and(|f| f.segno <= gap.first)
            && segments.last().is_some_and(|l| l.segno >= gap.last);
        if !in_range {
            continue;
        }
        let first = pgwalrus_wal::names::SegmentName::new(gap.tli, gap.first, seg_size)
            .map(|n| n.to_string())
            .unwrap_or_default();
        let last = pgwalrus_wal::names::SegmentName::new(gap.tli, gap.last, seg_size)
            .map(|n| n.to_string())
            .unwrap_or_default();
        let message = if gap.first == gap.last {
            format!("missing segment {first}")
        } else {
            format!("missing segments {first} to {last}")
        };
        report(
            &mut summary,
            Problem {
                file: Some(first),
                offset: None,
                lsn: gap.first.start_lsn(seg_size),
                message,
            },
            &mut on_event,
        );
    }

    let count = segments.len();
    let mut decoder: Option<WalDecoder> = None;
    let mut previous: Option<pgwalrus_wal::SegNo> = None;
    let mut previous_partial = false;
    let expectations = Expectations::default().with_history(plan.history.clone());
    for (index, segment) in segments.iter().enumerate() {
        let name = segment.name.to_string();
        on_event(Event::Segment {
            index,
            count,
            name: &name,
        });
        summary.segments += 1;
        summary.first_file.get_or_insert_with(|| name.clone());
        summary.last_file = Some(name.clone());
        let consecutive = previous.is_some_and(|p| p.0 + 1 == segment.segno.0);
        previous = Some(segment.segno);
        let start = segment.name.start_lsn();
        // WAL after a `.partial` cannot continue it: decode the next file on its own.
        let after_partial = std::mem::replace(&mut previous_partial, segment.name.is_partial());
        if !consecutive || decoder.is_none() || after_partial {
            decoder = WalDecoder::new(start, seg_size, expectations.clone()).ok();
        }
        let bytes = match reader::read_segment(&fs, dir, segment.name) {
            Ok(bytes) => bytes,
            Err(e) => {
                report(
                    &mut summary,
                    Problem {
                        file: Some(name.clone()),
                        offset: None,
                        lsn: Some(start),
                        message: format!("{e}"),
                    },
                    &mut on_event,
                );
                decoder = None;
                continue;
            }
        };
        // Decode this segment; when the problem found lies in an earlier segment (zeros
        // there, data here), decode this one again on its own so its problems are seen.
        let mut attempts = 0;
        let mut failed_here = false;
        while attempts < 2 {
            attempts += 1;
            let Some(d) = decoder.as_mut() else { break };
            d.feed(&bytes);
            if index + 1 == count || segment.name.is_partial() {
                d.finish();
            }
            let mut failed = None;
            loop {
                match d.next() {
                    Ok(Some(record)) => {
                        summary.major = d.major();
                        if options.end.is_some_and(|e| record.lsn >= e) {
                            return Ok(summary);
                        }
                        if options.start.is_some_and(|s| record.lsn < s) {
                            continue;
                        }
                        summary.records += 1;
                        summary.first_lsn.get_or_insert(record.lsn);
                        summary.end_lsn = Some(record.end);
                        if let Some(major) = d.major() {
                            on_event(Event::Record(&record, major));
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            let Some(e) = failed else { break };
            let (file, offset) = locate(&segments, e.lsn, seg_size, &name);
            report(
                &mut summary,
                Problem {
                    file: Some(file),
                    offset: Some(offset),
                    lsn: Some(e.lsn),
                    message: e.kind.to_string(),
                },
                &mut on_event,
            );
            if e.lsn >= start {
                failed_here = true;
                decoder = None;
                break;
            }
            decoder = WalDecoder::new(start, seg_size, expectations.clone()).ok();
        }
        if failed_here {
            continue;
        }
        let Some(d) = decoder.as_mut() else { continue };
        let last = index + 1 == count;
        if last || segment.name.is_partial() {
            let end = d.end_of_wal().cloned();
            let problem = match end {
                // A complete file must hold valid WAL to its end.
                Some(EndOfWal {
                    reason: EndReason::Invalid(e),
                    ..
                }) if !segment.name.is_partial() => Some((e.lsn, e.kind.to_string())),
                Some(EndOfWal {
                    lsn,
                    reason: EndReason::Zeros,
                }) if !segment.name.is_partial() => Some((
                    lsn,
                    "zeros where WAL should continue in a complete segment".to_owned(),
                )),
                // An incomplete segment in the middle of the archive: WAL between its end and
                // the next file is missing.
                Some(EndOfWal { lsn, .. }) if !last => Some((
                    lsn,
                    format!(
                        "segment is incomplete (valid WAL ends at {lsn}) but later segments exist"
                    ),
                )),
                _ => None,
            };
            if let Some((lsn, message)) = problem {
                let (file, offset) = locate(&segments, lsn, seg_size, &name);
                report(
                    &mut summary,
                    Problem {
                        file: Some(file),
                        offset: Some(offset),
                        lsn: Some(lsn),
                        message,
                    },
                    &mut on_event,
                );
            }
        }
    }
    Ok(summary)
}

/// The planned segments within the requested range (or the one requested file).
fn selected(
    plan: &ArchivePlan,
    options: &WalkOptions,
    seg_size: WalSegSize,
) -> Vec<pgwalrus_archive::plan::PlannedSegment> {
    if let Some(file) = options.only_file.as_deref() {
        // A named file is read whatever timeline recovery would prefer.
        return match FileName::parse(file, seg_size) {
            Ok(FileName::Segment(name)) => vec![pgwalrus_archive::plan::PlannedSegment {
                segno: name.segno(),
                name,
                path: options.dir.join(file),
            }],
            _ => Vec::new(),
        };
    }
    plan.segments
        .iter()
        .filter(|s| {
            options
                .only_file
                .as_deref()
                .is_none_or(|f| s.name.to_string() == f)
        })
        .filter(|s| {
            options
                .start
                .is_none_or(|start| s.segno >= start.segno(seg_size))
        })
        .filter(|s| options.end.is_none_or(|end| s.segno <= end.segno(seg_size)))
        .cloned()
        .collect()
}

/// File name and byte offset of `lsn` among the walked segments.
fn locate(
    segments: &[pgwalrus_archive::plan::PlannedSegment],
    lsn: Lsn,
    seg_size: WalSegSize,
    fallback: &str,
) -> (String, u64) {
    let segno = lsn.segno(seg_size);
    let file = segments
        .iter()
        .find(|s| s.segno == segno)
        .map_or_else(|| fallback.to_owned(), |s| s.name.to_string());
    (file, u64::from(lsn.segment_offset(seg_size)))
}

/// A file argument: its directory and file name.
pub fn split_file_argument(path: &Path) -> Option<(PathBuf, String)> {
    let name = path.file_name()?.to_str()?.to_owned();
    let dir = path.parent().map_or_else(
        || PathBuf::from("."),
        |p| {
            if p.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                p.to_owned()
            }
        },
    );
    Some((dir, name))
}
