//! The walk over one segment after another: which decoder reads a segment (the one
//! coming from the previous segment, or a fresh one after a gap, a `.partial` or a
//! problem), reading the file into a buffer that is reused, decoding the records where
//! they lie, and the problems a segment can have. What is found goes to a [`Sink`].

use std::ops::ControlFlow;
use std::path::Path;

use pgwalrus_archive::plan::PlannedSegment;
use pgwalrus_archive::{SegmentReader, StdFs, reader};
use pgwalrus_client::error_chain;
use pgwalrus_wal::decoder::{
    BorrowedFeed, DecodeError, DecodeErrorKind, EndOfWal, EndReason, Expectations, WalDecoder,
};
use pgwalrus_wal::record::RecordView;
use pgwalrus_wal::{Lsn, PgMajor, SegNo, WalSegSize};

use super::{Problem, Summary, locate};

/// What every walker of one walk shares.
#[derive(Debug)]
pub(super) struct Context<'a> {
    pub(super) fs: StdFs,
    pub(super) dir: &'a Path,
    /// The segments of the walk, in order.
    pub(super) segments: &'a [PlannedSegment],
    pub(super) seg_size: WalSegSize,
    pub(super) expectations: Expectations,
    /// Records before `start` are not counted.
    pub(super) start: Option<Lsn>,
}

/// Where a walker's findings go.
pub(super) trait Sink {
    /// Segment `index` is about to be read; `fresh` when its decoding starts with a new
    /// decoder at the segment start.
    fn segment(&mut self, ctx: &Context<'_>, index: usize, fresh: bool) -> ControlFlow<()>;
    /// A decoded record. `Break` ends the walk.
    fn record(&mut self, record: &RecordView<'_>) -> ControlFlow<()>;
    /// After each record, in segment `index`, with the decoder that produced it. `Break`
    /// ends the walk.
    fn after_record(&mut self, index: usize, lsn: Lsn, decoder: &WalDecoder) -> ControlFlow<()>;
    /// A problem.
    fn problem(&mut self, problem: Problem);
    /// Only when segments are read in chunks: a read failed part way through the segment,
    /// so what it reported since [`segment`](Sink::segment) is void — a walk that reads
    /// whole segments would have decoded none of it.
    fn rollback(&mut self);
}

/// Record totals: what a [`Summary`] says about records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Tally {
    pub(super) records: u64,
    pub(super) first_lsn: Option<Lsn>,
    pub(super) end_lsn: Option<Lsn>,
    /// The major of the last record seen, in range or not.
    pub(super) major: Option<PgMajor>,
}

impl Tally {
    /// Counts `record` if it is in `range` (start, end): `Continue(true)` when counted,
    /// `Continue(false)` when before the start, `Break` at or after the end.
    pub(super) fn add(
        &mut self,
        record: &RecordView<'_>,
        (start, end): (Option<Lsn>, Option<Lsn>),
    ) -> ControlFlow<(), bool> {
        self.major = Some(record.major);
        if end.is_some_and(|e| record.lsn >= e) {
            return ControlFlow::Break(());
        }
        if start.is_some_and(|s| record.lsn < s) {
            return ControlFlow::Continue(false);
        }
        self.records += 1;
        self.first_lsn.get_or_insert(record.lsn);
        self.end_lsn = Some(record.end);
        ControlFlow::Continue(true)
    }

    /// `self` followed by `later`.
    pub(super) fn then(self, later: Tally) -> Tally {
        Tally {
            records: self.records + later.records,
            first_lsn: self.first_lsn.or(later.first_lsn),
            end_lsn: later.end_lsn.or(self.end_lsn),
            major: later.major.or(self.major),
        }
    }

    /// Adds these totals to `summary`, as coming after what it holds.
    pub(super) fn add_to(self, summary: &mut Summary) {
        let sum = Tally {
            records: summary.records,
            first_lsn: summary.first_lsn,
            end_lsn: summary.end_lsn,
            major: summary.major,
        }
        .then(self);
        summary.records = sum.records;
        summary.first_lsn = sum.first_lsn;
        summary.end_lsn = sum.end_lsn;
        summary.major = sum.major;
    }
}

/// The reused read buffer, and how segments are read into it.
#[derive(Debug)]
pub(super) struct ReadBuf {
    bytes: Vec<u8>,
    /// Read segments in pieces of this size, decoding each before reading the next (it is
    /// still in the CPU cache); `None` reads whole segments.
    chunk: Option<usize>,
}

impl ReadBuf {
    /// Whole segments: nothing is decoded before the whole file was read.
    pub(super) fn whole() -> Self {
        ReadBuf {
            bytes: Vec::new(),
            chunk: None,
        }
    }

    /// Segments in pieces of `chunk` bytes (see [`Sink::rollback`]).
    pub(super) fn chunked(chunk: usize) -> Self {
        ReadBuf {
            bytes: Vec::new(),
            chunk: Some(chunk.max(1)),
        }
    }

    /// `len` bytes of buffer.
    fn take(&mut self, len: usize) -> &mut [u8] {
        if self.bytes.len() < len {
            self.bytes.resize(len, 0);
        }
        self.bytes.get_mut(..len).unwrap_or_default()
    }
}

/// A segment file, opened.
enum Source {
    /// Uncompressed: read into the [`ReadBuf`], whole or in pieces.
    Plain {
        reader: SegmentReader<std::fs::File>,
        len: usize,
        whole_read: bool,
    },
    /// Compressed: decompressed into memory by the archive reader.
    Memory(Vec<u8>),
}

/// How decoding a segment (or the part of it read so far) ended.
enum Outcome {
    /// All of it was decoded (the decoder may be waiting for the next segment).
    Decoded,
    /// The decoder reported this.
    Failed(DecodeError),
    /// The sink ended the walk.
    Stopped,
    /// Reading the file failed after part of it was decoded.
    ReadFailed(pgwalrus_archive::Error),
}

impl Source {
    /// The segment's length: on disk, or decompressed.
    fn len(&self) -> u64 {
        match self {
            Source::Plain { len, .. } => *len as u64,
            Source::Memory(bytes) => bytes.len() as u64,
        }
    }

    fn open(
        ctx: &Context<'_>,
        segment: &PlannedSegment,
        buf: &mut ReadBuf,
    ) -> Result<Source, pgwalrus_archive::Error> {
        match Source::open_name(ctx, segment.name, buf) {
            // A receiver completed the `.partial` after the listing (renamed it to its
            // complete name): read that one, so that verifying a live archive does not
            // report a file that merely moved on.
            Err(e) if e.is_not_found() && segment.name.is_partial() => {
                Source::open_name(ctx, segment.name.not_partial(), buf).map_err(|_| e)
            }
            other => other,
        }
    }

    fn open_name(
        ctx: &Context<'_>,
        name: pgwalrus_wal::names::SegmentName,
        buf: &mut ReadBuf,
    ) -> Result<Source, pgwalrus_archive::Error> {
        if name.compression().is_some() {
            return reader::read_segment(&ctx.fs, ctx.dir, name).map(Source::Memory);
        }
        let reader = SegmentReader::open(&ctx.fs, ctx.dir, name)?;
        let len = usize::try_from(reader.len()).unwrap_or(usize::MAX);
        let whole_read = buf.chunk.is_none();
        if whole_read {
            reader.read_exact_at(0, buf.take(len))?;
        }
        Ok(Source::Plain {
            reader,
            len,
            whole_read,
        })
    }

    /// Feeds the segment to `decoder` (finishing the stream after it when `last`) and
    /// hands every record to `sink`.
    fn decode(
        &self,
        decoder: &mut WalDecoder,
        buf: &mut ReadBuf,
        last: bool,
        index: usize,
        sink: &mut impl Sink,
    ) -> Outcome {
        let whole: &[u8] = match self {
            Source::Memory(bytes) => bytes,
            Source::Plain {
                whole_read: true,
                len,
                ..
            } => buf.bytes.get(..*len).unwrap_or_default(),
            Source::Plain {
                reader,
                len,
                whole_read: false,
            } => return decode_in_pieces(reader, *len, decoder, buf, last, index, sink),
        };
        let mut feed = decoder.feed_borrowed(whole);
        if last {
            feed.finish();
        }
        drain(&mut feed, index, sink)
    }
}

/// [`Source::decode`] of an uncompressed file read a piece at a time, each decoded while
/// it is in the CPU cache. The result is what decoding the whole file at once gives: the
/// decoder does not depend on how its input is cut, and at the end of the stream (`last`)
/// a failure is only judged — the end of WAL, or damage — once the decoder has all of it.
fn decode_in_pieces(
    reader: &SegmentReader<std::fs::File>,
    len: usize,
    decoder: &mut WalDecoder,
    buf: &mut ReadBuf,
    last: bool,
    index: usize,
    sink: &mut impl Sink,
) -> Outcome {
    let chunk = buf.chunk.unwrap_or(len).max(1);
    let mut offset = 0;
    loop {
        let n = chunk.min(len - offset);
        if let Err(e) = reader.read_exact_at(offset as u64, buf.take(n)) {
            return Outcome::ReadFailed(e);
        }
        offset += n;
        let final_piece = offset == len;
        let mut feed = decoder.feed_borrowed(buf.bytes.get(..n).unwrap_or_default());
        if last && final_piece {
            feed.finish();
        }
        match drain(&mut feed, index, sink) {
            Outcome::Decoded if final_piece => return Outcome::Decoded,
            Outcome::Decoded => {}
            Outcome::Failed(_) if last && !final_piece => {
                // Before the stream is finished a failure is an error; after it, it may be
                // the end of WAL. Give the decoder the rest (it keeps what follows a
                // failure) and let it judge, as it would have with the whole file.
                drop(feed);
                while offset < len {
                    let n = chunk.min(len - offset);
                    if let Err(e) = reader.read_exact_at(offset as u64, buf.take(n)) {
                        return Outcome::ReadFailed(e);
                    }
                    offset += n;
                    decoder.feed(buf.bytes.get(..n).unwrap_or_default());
                }
                let mut feed = decoder.feed_borrowed(&[]);
                feed.finish();
                return drain(&mut feed, index, sink);
            }
            other => return other,
        }
    }
}

/// Decodes records until the decoder needs more bytes, fails, or the sink says stop.
fn drain(feed: &mut BorrowedFeed<'_, '_>, index: usize, sink: &mut impl Sink) -> Outcome {
    loop {
        let (lsn, flow) = match feed.next_checked() {
            Ok(Some(record)) => (record.lsn, sink.record(&record)),
            Ok(None) => return Outcome::Decoded,
            Err(e) => return Outcome::Failed(e),
        };
        if flow.is_break() || sink.after_record(index, lsn, feed.decoder()).is_break() {
            return Outcome::Stopped;
        }
    }
}

/// The state carried from one segment to the next.
#[derive(Debug, Default)]
pub(super) struct Walker {
    /// `None` after a problem: the next segment starts afresh.
    decoder: Option<WalDecoder>,
    previous: Option<SegNo>,
    previous_partial: bool,
}

impl Walker {
    /// Before the first segment.
    pub(super) fn new() -> Self {
        Walker::default()
    }

    /// Walks segment `index` of the context. `Break` when the sink ended the walk.
    pub(super) fn segment(
        &mut self,
        ctx: &Context<'_>,
        buf: &mut ReadBuf,
        index: usize,
        sink: &mut impl Sink,
    ) -> ControlFlow<()> {
        let Some(segment) = ctx.segments.get(index) else {
            return ControlFlow::Continue(());
        };
        let consecutive = self.previous.is_some_and(|p| p.0 + 1 == segment.segno.0);
        self.previous = Some(segment.segno);
        let start = segment.name.start_lsn();
        // WAL after a `.partial` cannot continue it: decode the next file on its own.
        let after_partial =
            std::mem::replace(&mut self.previous_partial, segment.name.is_partial());
        let fresh = !consecutive || self.decoder.is_none() || after_partial;
        if fresh {
            self.decoder = WalDecoder::new(start, ctx.seg_size, ctx.expectations.clone()).ok();
        }
        sink.segment(ctx, index, fresh)?;
        let last = index + 1 == ctx.segments.len() || segment.name.is_partial();
        let name = segment.name.to_string();
        let read_problem = |e: pgwalrus_archive::Error| Problem {
            file: Some(name.clone()),
            offset: None,
            lsn: Some(start),
            message: error_chain(&e).to_string(),
        };
        let source = match Source::open(ctx, segment, buf) {
            Ok(source) => source,
            Err(e) => {
                sink.problem(read_problem(e));
                self.decoder = None;
                return ControlFlow::Continue(());
            }
        };
        // A file that is not one segment long is named as such and not decoded: decoding
        // it would report its missing (or extra) bytes as a checksum or page-address
        // problem, and in the next file — which an operator would then replace instead.
        if let Some(message) = wrong_length(segment, source.len(), ctx.seg_size) {
            sink.problem(Problem {
                file: Some(name.clone()),
                offset: None,
                lsn: Some(start),
                message,
            });
            self.decoder = None;
            return ControlFlow::Continue(());
        }
        // Decode this segment; when the problem found lies in an earlier segment (zeros
        // there, data here), decode this one again on its own so its problems are seen.
        let mut attempts = 0;
        while attempts < 2 {
            attempts += 1;
            let Some(d) = self.decoder.as_mut() else {
                break;
            };
            let e = match source.decode(d, buf, last, index, sink) {
                Outcome::Decoded => break,
                Outcome::Failed(e) => e,
                Outcome::Stopped => return ControlFlow::Break(()),
                Outcome::ReadFailed(e) => {
                    sink.rollback();
                    sink.problem(read_problem(e));
                    self.decoder = None;
                    return ControlFlow::Continue(());
                }
            };
            let (file, offset) = locate(ctx.segments, e.lsn, ctx.seg_size, &name);
            sink.problem(Problem {
                file: Some(file),
                offset: Some(offset),
                lsn: Some(e.lsn),
                message: e.kind.to_string(),
            });
            if e.lsn >= start {
                self.decoder = None;
                return ControlFlow::Continue(());
            }
            self.decoder = WalDecoder::new(start, ctx.seg_size, ctx.expectations.clone()).ok();
        }
        let Some(d) = self.decoder.as_ref() else {
            return ControlFlow::Continue(());
        };
        if last {
            let partial = segment.name.is_partial();
            let problem = match d.end_of_wal().cloned() {
                // A complete file must hold valid WAL to its end.
                Some(EndOfWal {
                    reason: EndReason::Invalid(e),
                    ..
                }) if !partial => Some((e.lsn, e.kind.to_string())),
                Some(EndOfWal {
                    lsn,
                    reason: EndReason::Zeros,
                }) if !partial => Some((
                    lsn,
                    "zeros where WAL should continue in a complete segment".to_owned(),
                )),
                // A `.partial` holds WAL from its start up to where it was written, then
                // zeros (or, in a promoted server's copy, recycled pages). Its first page is
                // written (not zeros) but is no page of this segment: it is not this
                // segment's WAL at all (random bytes, another cluster's file).
                Some(EndOfWal {
                    reason: EndReason::Invalid(e),
                    ..
                }) if e.lsn == start && !matches!(e.kind, DecodeErrorKind::ZeroPage) => Some((
                    e.lsn,
                    format!(
                        "{}: the first page of this .partial is not the start of segment {}, so the file holds no WAL of it",
                        e.kind,
                        segment.name.plain()
                    ),
                )),
                // An incomplete segment in the middle of the archive: WAL between its end and
                // the next file is missing.
                Some(EndOfWal { lsn, .. }) if index + 1 != ctx.segments.len() => Some((
                    lsn,
                    format!(
                        "segment is incomplete (valid WAL ends at {lsn}) but later segments exist"
                    ),
                )),
                _ => None,
            };
            if let Some((lsn, message)) = problem {
                let (file, offset) = locate(ctx.segments, lsn, ctx.seg_size, &name);
                sink.problem(Problem {
                    file: Some(file),
                    offset: Some(offset),
                    lsn: Some(lsn),
                    message,
                });
            }
        }
        ControlFlow::Continue(())
    }
}

/// Why a segment file's length is wrong, if it is: a complete segment (its decompressed
/// content, when compressed) is exactly one segment long; a `.partial` is at most one
/// segment long (it may be shorter: pgwalrus resumes cut `.partial` files).
fn wrong_length(segment: &PlannedSegment, held: u64, seg_size: WalSegSize) -> Option<String> {
    let expected = seg_size.as_u64();
    let partial = segment.name.is_partial();
    if held == expected || (partial && held < expected) {
        return None;
    }
    let holds = if segment.name.compression().is_some() {
        "it decompresses to"
    } else {
        "it has"
    };
    let what = if held > expected {
        "it is longer than a segment"
    } else if held == 0 {
        "it is empty"
    } else {
        "it was cut short"
    };
    Some(format!(
        "{holds} {held} bytes, but a {seg_size} segment has {expected}: {what}"
    ))
}
