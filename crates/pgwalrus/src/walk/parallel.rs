//! The walk on several threads, reporting exactly what the sequential walk reports.
//!
//! The segments are cut into runs of consecutive segments; each run is walked on its own
//! by a worker thread, starting with a fresh decoder at its first segment (which skips the
//! record continued there, and cannot check that record's `xl_prev` link to the one
//! before). Runs are then stitched in order: the walk so far *catches up* into the next
//! run, decoding its first records exactly as the sequential walk would (the record
//! crossing into it, the `xl_prev` link, timelines and system identifier across the
//! boundary), until its state is provably the same as the run's own walk at the same
//! point:
//!
//! * both are about to decode a segment with a fresh decoder (after a gap, a `.partial`
//!   or a problem), or
//! * both just decoded the same record in the run's first segment and their decoders'
//!   [`SyncPoint`](pgwalrus_wal::SyncPoint)s are equal — then they decode everything after
//!   identically.
//!
//! From there on the run's own findings are the sequential walk's. If the two never meet
//! (damage right at the boundary), the catch-up simply walks the whole run itself.
//! Memory stays bounded: a run keeps its problems, a few totals and its final decoder.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use pgwalrus_wal::record::RecordView;
use pgwalrus_wal::{Lsn, SyncPoint, WalDecoder};

use super::Problem;
use super::segment::{Context, ReadBuf, Sink, Tally, Walker};

/// Segments other than the last are read and decoded in pieces of this size, small
/// enough that the bytes are still in the CPU cache when decoded.
pub(super) const READ_CHUNK: usize = 256 << 10;

/// How many of the first records of a run are kept as meeting points for the catch-up.
/// It meets at the first record starting in the run unless that record's link back is
/// broken; more are kept for WAL shapes where the two start differently.
const RECORD_MEETING_POINTS: usize = 64;

/// How many segments a run has: several runs per thread, so that a slow thread does not
/// hold up the end, and at most 64 segments (the runs waiting to be stitched are small).
pub(super) fn run_len(count: usize, threads: usize) -> usize {
    (count / (threads.max(1) * 16)).clamp(1, 64)
}

/// Walks every segment of `ctx` on up to `threads` threads, `run_len` segments per run,
/// reading `read_chunk` bytes at a time. Returns the problems, in the order the sequential
/// walk reports them, and the record totals. `on_segment` is called with the index of
/// each segment a worker starts.
pub(super) fn walk(
    ctx: &Context<'_>,
    threads: usize,
    run_len: usize,
    read_chunk: usize,
    on_segment: &mut dyn FnMut(usize),
) -> (Vec<Problem>, Tally) {
    let count = ctx.segments.len();
    let run_len = run_len.max(1);
    let runs = count.div_ceil(run_len);
    let threads = threads.clamp(1, runs.max(1));
    let next_run = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel::<Message>();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let tx = tx.clone();
            let next_run = &next_run;
            scope.spawn(move || {
                let mut buf = ReadBuf::chunked(read_chunk);
                loop {
                    let i = next_run.fetch_add(1, Ordering::Relaxed);
                    if i >= runs {
                        break;
                    }
                    let first = i * run_len;
                    let run = walk_run(ctx, first, (first + run_len).min(count), &mut buf, &tx);
                    if tx.send(Message::Done(i, Box::new(run))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        // Stitch runs in order as they come in.
        let mut waiting: BTreeMap<usize, Box<Run>> = BTreeMap::new();
        let mut so_far: Option<SoFar> = None;
        let mut stitched = 0;
        let mut buf = ReadBuf::chunked(read_chunk);
        for message in rx {
            match message {
                Message::Segment(index) => on_segment(index),
                Message::Done(i, run) => {
                    waiting.insert(i, run);
                    while let Some(run) = waiting.remove(&stitched) {
                        so_far = Some(match so_far.take() {
                            None => SoFar::from(*run),
                            Some(so_far) => so_far.stitch(ctx, *run, &mut buf),
                        });
                        stitched += 1;
                    }
                }
            }
        }
        so_far.map_or_else(|| (Vec::new(), Tally::default()), |s| (s.problems, s.tally))
    })
}

enum Message {
    /// A worker starts reading this segment.
    Segment(usize),
    /// Run number `.0` is walked; here is what it found.
    Done(usize, Box<Run>),
}

/// Walks segments `first..end` on their own, starting afresh.
fn walk_run(
    ctx: &Context<'_>,
    first: usize,
    end: usize,
    buf: &mut ReadBuf,
    progress: &mpsc::Sender<Message>,
) -> Run {
    let mut sink = RunSink {
        log: Log::new(ctx.start),
        closed: Vec::new(),
        points: Vec::new(),
        first,
        record_points: RECORD_MEETING_POINTS,
        mark_points: (0, 0),
        progress,
    };
    let mut walker = Walker::new();
    for index in first..end {
        // Nothing in a run's sink ends the walk.
        let _ = walker.segment(ctx, buf, index, &mut sink);
    }
    let RunSink {
        log,
        closed,
        points,
        ..
    } = sink;
    Run {
        first,
        end,
        problems: log.problems,
        closed,
        open: log.tally,
        points,
        walker,
    }
}

/// What a run found, kept for stitching.
#[derive(Debug)]
struct Run {
    first: usize,
    end: usize,
    problems: Vec<Problem>,
    /// Record totals between meeting points: `closed[i]` ends at `points[i]`.
    closed: Vec<Tally>,
    /// Totals after the last meeting point.
    open: Tally,
    points: Vec<MeetingPoint>,
    /// The state after the run's last segment.
    walker: Walker,
}

impl Run {
    /// The problems and totals the run found after meeting point `i`.
    fn after(self, i: usize) -> (Vec<Problem>, Tally) {
        let Some(point) = self.points.get(i) else {
            return (Vec::new(), Tally::default());
        };
        let tally = self
            .closed
            .get(point.closed..)
            .unwrap_or_default()
            .iter()
            .fold(Tally::default(), |a, &b| a.then(b))
            .then(self.open);
        let problems = self.problems.into_iter().skip(point.problems).collect();
        (problems, tally)
    }
}

/// A state of a run's walk that the catch-up can recognise as its own.
#[derive(Debug)]
struct MeetingPoint {
    at: At,
    /// How many problems and closed totals came before it.
    problems: usize,
    closed: usize,
}

#[derive(Debug, PartialEq, Eq)]
enum At {
    /// About to read segment `index` with a fresh decoder.
    Fresh(usize),
    /// Just decoded the record at `lsn` in segment `index`; the decoder was at `sync`.
    Record {
        index: usize,
        lsn: Lsn,
        sync: SyncPoint,
    },
}

/// Problems and record totals, with a point to roll back to (see [`Sink::rollback`]).
#[derive(Debug)]
struct Log {
    start: Option<Lsn>,
    problems: Vec<Problem>,
    tally: Tally,
    mark: (usize, Tally),
}

impl Log {
    fn new(start: Option<Lsn>) -> Self {
        Log {
            start,
            problems: Vec::new(),
            tally: Tally::default(),
            mark: (0, Tally::default()),
        }
    }

    fn record(&mut self, record: &RecordView<'_>) {
        // No end is set when the walk runs in parallel; the start only filters.
        let _ = self.tally.add(record, (self.start, None));
    }

    /// Remembers where a segment starts, for [`Log::roll_back`].
    fn set_mark(&mut self) {
        self.mark = (self.problems.len(), self.tally);
    }

    /// Forgets what was logged since [`Log::set_mark`].
    fn roll_back(&mut self) {
        let (problems, tally) = self.mark;
        self.problems.truncate(problems);
        self.tally = tally;
    }
}

/// A run's sink: logs, and keeps meeting points.
struct RunSink<'p> {
    log: Log,
    closed: Vec<Tally>,
    points: Vec<MeetingPoint>,
    first: usize,
    record_points: usize,
    /// Closed totals and meeting points when the current segment started.
    mark_points: (usize, usize),
    progress: &'p mpsc::Sender<Message>,
}

impl RunSink<'_> {
    fn point(&mut self, at: At) {
        self.closed.push(std::mem::take(&mut self.log.tally));
        self.points.push(MeetingPoint {
            at,
            problems: self.log.problems.len(),
            closed: self.closed.len(),
        });
    }
}

impl Sink for RunSink<'_> {
    #[inline]
    fn segment(&mut self, _ctx: &Context<'_>, index: usize, fresh: bool) -> ControlFlow<()> {
        let _ = self.progress.send(Message::Segment(index));
        if fresh {
            self.point(At::Fresh(index));
        }
        // A rollback keeps the meeting point: it is before the read.
        self.log.set_mark();
        self.mark_points = (self.closed.len(), self.points.len());
        ControlFlow::Continue(())
    }

    #[inline]
    fn record(&mut self, record: &RecordView<'_>) -> ControlFlow<()> {
        self.log.record(record);
        ControlFlow::Continue(())
    }

    #[inline]
    fn after_record(&mut self, index: usize, lsn: Lsn, decoder: &WalDecoder) -> ControlFlow<()> {
        if index == self.first && self.record_points > 0 {
            self.record_points -= 1;
            if let Some(sync) = decoder.sync_point() {
                self.point(At::Record { index, lsn, sync });
            }
        }
        ControlFlow::Continue(())
    }

    fn problem(&mut self, problem: Problem) {
        self.log.problems.push(problem);
    }

    fn rollback(&mut self) {
        self.log.roll_back();
        let (closed, points) = self.mark_points;
        self.closed.truncate(closed);
        self.points.truncate(points);
    }
}

/// The stitched walk of the runs so far.
#[derive(Debug)]
struct SoFar {
    problems: Vec<Problem>,
    tally: Tally,
    walker: Walker,
}

impl From<Run> for SoFar {
    fn from(run: Run) -> Self {
        let tally = run
            .closed
            .iter()
            .fold(Tally::default(), |a, &b| a.then(b))
            .then(run.open);
        SoFar {
            problems: run.problems,
            tally,
            walker: run.walker,
        }
    }
}

impl SoFar {
    /// Continues the walk into `run` until it meets the run's own walk, then takes the
    /// run's findings from there.
    fn stitch(mut self, ctx: &Context<'_>, mut run: Run, buf: &mut ReadBuf) -> SoFar {
        let mut sink = CatchUp {
            log: Log::new(ctx.start),
            points: &run.points,
            first: run.first,
            met: None,
        };
        for index in run.first..run.end {
            if self.walker.segment(ctx, buf, index, &mut sink).is_break() {
                break;
            }
        }
        let CatchUp { log, met, .. } = sink;
        self.problems.extend(log.problems);
        self.tally = self.tally.then(log.tally);
        if let Some(i) = met {
            self.walker = std::mem::take(&mut run.walker);
            let (problems, tally) = run.after(i);
            self.problems.extend(problems);
            self.tally = self.tally.then(tally);
        }
        // Never met: the catch-up walked the whole run itself.
        self
    }
}

/// The catch-up's sink: logs, and stops where the run's walk is met.
struct CatchUp<'r> {
    log: Log,
    points: &'r [MeetingPoint],
    /// The run's first segment: the only one with record meeting points.
    first: usize,
    met: Option<usize>,
}

impl Sink for CatchUp<'_> {
    fn segment(&mut self, _ctx: &Context<'_>, index: usize, fresh: bool) -> ControlFlow<()> {
        if fresh && let Some(i) = self.points.iter().position(|p| p.at == At::Fresh(index)) {
            self.met = Some(i);
            return ControlFlow::Break(());
        }
        self.log.set_mark();
        ControlFlow::Continue(())
    }

    fn record(&mut self, record: &RecordView<'_>) -> ControlFlow<()> {
        self.log.record(record);
        ControlFlow::Continue(())
    }

    fn after_record(&mut self, index: usize, lsn: Lsn, decoder: &WalDecoder) -> ControlFlow<()> {
        if index != self.first {
            return ControlFlow::Continue(());
        }
        let candidate = self.points.iter().position(
            |p| matches!(&p.at, At::Record { index: i, lsn: l, .. } if *i == index && *l == lsn),
        );
        if let Some(i) = candidate
            && let Some(At::Record { sync, .. }) = self.points.get(i).map(|p| &p.at)
            && decoder.sync_point().as_ref() == Some(sync)
        {
            self.met = Some(i);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }

    fn problem(&mut self, problem: Problem) {
        self.log.problems.push(problem);
    }

    fn rollback(&mut self) {
        self.log.roll_back();
    }
}
