//! Walks an archive directory in LSN order along one timeline's history (the
//! [`plan`](pgwalrus_archive::plan)), decoding every record, and reports records and
//! problems as it goes. `verify` and `dump` are two views of this one walk.
//!
//! After a problem the walk resumes at the next segment start with a fresh decoder (which
//! skips a continued record at a segment start), so one damaged byte costs one report, not
//! a cascade.
//!
//! # Layout
//! * this file — the options, events and summary, the plan and its gaps;
//! * `segment` — the walk itself, one segment at a time, reading into a reused buffer
//!   and decoding in place;
//! * `parallel` — the same walk split into runs of segments decoded on several threads
//!   and stitched into exactly what one sequential walk reports (used when records are
//!   not wanted, as by `verify`).

mod parallel;
mod segment;

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use pgwalrus_archive::StdFs;
use pgwalrus_archive::plan::{ArchivePlan, PlanError, PlannedSegment, detect_origin, plan};
use pgwalrus_client::error_chain;
use pgwalrus_wal::decoder::Expectations;
use pgwalrus_wal::names::{FileName, HistoryName, SegmentName};
use pgwalrus_wal::record::{Record, RecordView};
use pgwalrus_wal::{Lsn, PgMajor, TimeLineId, WalDecoder, WalSegSize};

use crate::exit::Exit;
use crate::failure::Failure;

use segment::{Context, ReadBuf, Sink, Tally, Walker};

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
    /// About to read segment `index` of `count` (in LSN order, except that a walk on
    /// several threads reads several segments at once).
    Segment {
        /// 0-based.
        index: usize,
        /// Segments in the walk.
        count: usize,
        /// Its file name.
        name: &'a str,
    },
    /// A decoded record within the range ([`walk`] only).
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
pub fn walk(options: &WalkOptions, on_event: impl FnMut(Event<'_>)) -> Result<Summary, Failure> {
    run(options, Mode::Records, on_event)
}

/// The same walk without [`Event::Record`]s: every record is checked and counted as
/// [`walk`] does, and the same problems are reported in the same order, but the segments
/// are decoded on several threads when the range has no end (runs of segments decoded
/// separately, then stitched where their decoders provably agree).
///
/// # Errors
/// As for [`walk`].
pub fn check(options: &WalkOptions, on_event: impl FnMut(Event<'_>)) -> Result<Summary, Failure> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    run(
        options,
        Mode::Check {
            threads,
            run_len: None,
            read_chunk: parallel::READ_CHUNK,
        },
        on_event,
    )
}

/// How [`run`] walks.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// Sequentially, reporting records.
    Records,
    /// Without reporting records: on `threads` threads, `run_len` segments per run
    /// (default: [`parallel::run_len`]), reading `read_chunk` bytes at a time.
    Check {
        threads: usize,
        run_len: Option<usize>,
        read_chunk: usize,
    },
}

fn run(
    options: &WalkOptions,
    mode: Mode,
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
    let origin = detect_origin(&fs, dir)
        .map_err(|e| Failure::new(Exit::Config, e))?
        .ok_or_else(|| {
            Failure::msg(
                Exit::Config,
                format!("no WAL segment files in \"{}\"", dir.display()),
            )
        })?;
    let seg_size = origin.seg_size;
    let plan = plan(&fs, dir, seg_size, options.timeline).map_err(|e| Failure::new(Exit::Io, e))?;
    let mut summary = Summary {
        timeline: Some(plan.target),
        ..Summary::default()
    };
    let report = |summary: &mut Summary, problem: Problem, on_event: &mut dyn FnMut(Event<'_>)| {
        summary.problems += 1;
        on_event(Event::Problem(&problem));
    };

    for damaged in &plan.damaged_histories {
        let file = match damaged {
            PlanError::BadHistory { path, .. } => path.file_name(),
            PlanError::Archive(e) => e.path().and_then(Path::file_name),
            _ => None,
        };
        report(
            &mut summary,
            Problem {
                file: file.map(|f| f.to_string_lossy().into_owned()),
                offset: None,
                lsn: None,
                message: error_chain(damaged).to_string(),
            },
            &mut on_event,
        );
    }

    // A file whose name is a WAL file name only in upper case is read by nothing
    // (PostgreSQL, pg_receivewal and pgwalrus all want upper-case hex): worth an operator's
    // look in `verify`, which judges the archive; `dump` only reads its WAL.
    if matches!(mode, Mode::Check { .. }) {
        for (os_name, spelled) in &plan.misspelled {
            let file = os_name.to_string_lossy().into_owned();
            report(
                &mut summary,
                Problem {
                    message: format!(
                        "not a WAL file name: it spells {spelled} in lower-case hex, and PostgreSQL and pgwalrus read only upper-case names, so this file is never read"
                    ),
                    file: Some(file),
                    offset: None,
                    lsn: None,
                },
                &mut on_event,
            );
        }
    }

    if !plan.history_found {
        let name = FileName::from(HistoryName::new(plan.target)).to_string();
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
        let first = SegmentName::new(gap.tli, gap.first, seg_size)
            .map(|n| n.to_string())
            .unwrap_or_default();
        let last = SegmentName::new(gap.tli, gap.last, seg_size)
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

    let ctx = Context {
        fs,
        dir,
        segments: &segments,
        seg_size,
        // Every long header must name the cluster of the archive's first segment: a file of
        // another cluster is reported where it is, a `.partial` included.
        expectations: Expectations::default()
            .with_history(plan.history.clone())
            .with_system_id(origin.system_id),
        start: options.start,
    };
    if let Mode::Check {
        threads,
        run_len,
        read_chunk,
    } = mode
        && options.end.is_none()
    {
        // Nothing is reported per record and the walk runs to the end: it can be split.
        let run_len = run_len.unwrap_or_else(|| parallel::run_len(segments.len(), threads));
        let (problems, tally) = parallel::walk(&ctx, threads, run_len, read_chunk, &mut |index| {
            if let Some(s) = segments.get(index) {
                on_event(Event::Segment {
                    index,
                    count: segments.len(),
                    name: &s.name.to_string(),
                });
            }
        });
        summary.segments = segments.len();
        summary.first_file = segments.first().map(|s| s.name.to_string());
        summary.last_file = segments.last().map(|s| s.name.to_string());
        for problem in problems {
            report(&mut summary, problem, &mut on_event);
        }
        tally.add_to(&mut summary);
        return Ok(summary);
    }

    let records = matches!(mode, Mode::Records);
    let mut sink = Sequential {
        summary: &mut summary,
        on_event: &mut on_event,
        range: (options.start, options.end),
        records,
    };
    let mut walker = Walker::new();
    let mut buf = ReadBuf::whole();
    for index in 0..segments.len() {
        if walker.segment(&ctx, &mut buf, index, &mut sink).is_break() {
            break;
        }
    }
    Ok(summary)
}

/// The sequential walk's sink: everything goes to the caller as it is found.
struct Sequential<'s, 'e> {
    summary: &'s mut Summary,
    on_event: &'e mut dyn FnMut(Event<'_>),
    range: (Option<Lsn>, Option<Lsn>),
    records: bool,
}

impl Sink for Sequential<'_, '_> {
    fn segment(&mut self, ctx: &Context<'_>, index: usize, _fresh: bool) -> ControlFlow<()> {
        if let Some(segment) = ctx.segments.get(index) {
            let name = segment.name.to_string();
            (self.on_event)(Event::Segment {
                index,
                count: ctx.segments.len(),
                name: &name,
            });
            self.summary.segments += 1;
            self.summary.first_file.get_or_insert_with(|| name.clone());
            self.summary.last_file = Some(name);
        }
        ControlFlow::Continue(())
    }

    fn record(&mut self, record: &RecordView<'_>) -> ControlFlow<()> {
        let mut tally = Tally::default();
        let counted = tally.add(record, self.range);
        // The major is taken from every record, the one that ends the range included.
        tally.add_to(self.summary);
        let in_range = counted?;
        if in_range && self.records {
            match record.to_record() {
                Ok(owned) => (self.on_event)(Event::Record(&owned, record.major)),
                Err(e) => self.problem(Problem {
                    file: None,
                    offset: None,
                    lsn: Some(e.lsn),
                    message: e.kind.to_string(),
                }),
            }
        }
        ControlFlow::Continue(())
    }

    fn after_record(&mut self, _index: usize, _lsn: Lsn, _decoder: &WalDecoder) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }

    fn problem(&mut self, problem: Problem) {
        self.summary.problems += 1;
        (self.on_event)(Event::Problem(&problem));
    }

    fn rollback(&mut self) {
        // Whole segments are read before they are decoded: nothing to take back.
    }
}

/// The planned segments within the requested range (or the one requested file).
fn selected(
    plan: &ArchivePlan,
    options: &WalkOptions,
    seg_size: WalSegSize,
) -> Vec<PlannedSegment> {
    if let Some(file) = options.only_file.as_deref() {
        // A named file is read whatever timeline recovery would prefer.
        return match FileName::parse(file, seg_size) {
            Ok(FileName::Segment(name)) => vec![PlannedSegment {
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
                .start
                .is_none_or(|start| s.segno >= start.segno(seg_size))
        })
        .filter(|s| options.end.is_none_or(|end| s.segno <= end.segno(seg_size)))
        .cloned()
        .collect()
}

/// File name and byte offset of `lsn` among the walked segments.
fn locate(
    segments: &[PlannedSegment],
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

#[cfg(test)]
mod tests;
