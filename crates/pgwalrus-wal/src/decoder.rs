//! [`WalDecoder`]: an incremental, sans-IO decoder from WAL bytes to [`Record`]s.
//!
//! Bytes go in with [`feed`](WalDecoder::feed) in any chunking; records come out of
//! [`next`](WalDecoder::next), `Ok(None)` meaning "feed me more". The decoder validates every
//! page header (magic, flags, long-header identity, page address, timeline), reassembles
//! records across pages and segments, checks each record header, `xl_prev` chain and CRC-32C
//! as PostgreSQL's `xlogreader.c` does, and skips the padding after `XLOG SWITCH`.
//!
//! It keeps no consumed bytes: memory is the unconsumed input plus the record being
//! assembled (bounded by [`Expectations::max_record_len`]).
//!
//! # Checking without copies
//!
//! For checking WAL rather than using its records (`pgwalrus verify`), two things avoid
//! all per-record work beyond the checks, with the same results as `feed` and `next`:
//!
//! * [`feed_borrowed`](WalDecoder::feed_borrowed) decodes the caller's bytes in place; only
//!   a record that crosses a page (or the end of those bytes) is copied, into a buffer the
//!   decoder reuses;
//! * [`next_checked`](WalDecoder::next_checked) makes every check `next` makes but returns
//!   a [`RecordView`] borrowing the bytes instead of building an owned [`Record`].
//!
//! A record that lies whole in a page takes a straight path through the checks; anything
//! else, including every failure, takes the general state machine, so that errors are
//! decided in one place. [`sync_point`](WalDecoder::sync_point) lets decoders started at
//! different places prove they agree, to decode segments in parallel.
//!
//! # End of WAL versus corruption
//!
//! WAL has no end marker: the valid stream simply stops, followed by zeros (a new or
//! pre-zeroed segment), stale pages of a recycled segment, or a torn last record. The
//! decoder tells that apart from corruption once the caller says the stream is over with
//! [`finish`](WalDecoder::finish):
//!
//! * zeros where a record or page header should start are never an error by themselves:
//!   while more may come the decoder waits (consuming zeros without storing them); non-zero
//!   bytes after them are corruption; after `finish` they are the end of WAL;
//! * input that stops inside a record is "need more bytes" until `finish`, then the end of
//!   WAL;
//! * any other invalid data is an error while more may come. After `finish` it is the end
//!   of WAL when no later page of the remaining input carries a valid header for its
//!   position (everything after it is unwritten or stale), and corruption otherwise.
//!
//! After the end, [`end_of_wal`](WalDecoder::end_of_wal) says where valid WAL stops (the
//! position the next record would have started at, the server's insert position) and why.

mod borrowed;
mod error;
mod sync;

pub use borrowed::BorrowedFeed;
pub use error::{DecodeError, DecodeErrorKind};
pub use sync::SyncPoint;

use std::ops::Range;

use crate::crc::record_crc;
use crate::history::TimelineHistory;
use crate::page::{
    LONG_HEADER_LEN, PageHeader, PageHeaderError, SHORT_HEADER_LEN, XLOG_BLCKSZ,
    XLP_FIRST_IS_CONTRECORD, XLP_FIRST_IS_OVERWRITE_CONTRECORD, XLP_LONG_HEADER,
};
use crate::record::{
    ParsedBody, RECORD_HEADER_LEN, Record, RecordHeader, RecordView, common_shape_main_data,
    le_u32, le_u64, parse_body,
};
use crate::rmgr::RmgrId;
use crate::{Lsn, PgMajor, TimeLineId, WalSegSize};

const PAGE: u64 = XLOG_BLCKSZ as u64;

/// The largest record the decoder accepts by default: PostgreSQL's readers cannot allocate
/// more than `MaxAllocSize` (1 GiB − 1) for one record either.
pub const DEFAULT_MAX_RECORD_LEN: u32 = 0x3FFF_FFFF;

/// What the caller knows about the WAL before reading it. Everything is optional; what is
/// not given is learned from the first page (major, system identifier) or not checked.
///
/// ```
/// use pgwalrus_wal::{Expectations, PgMajor, TimeLineId};
///
/// let expect = Expectations::default()
///     .with_major(PgMajor::V15)
///     .with_system_id(7_710_561_531_580_599_929)
///     .with_timeline(TimeLineId::ONE);
/// assert_eq!(expect.major, Some(PgMajor::V15));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Expectations {
    /// The server's major version. When `None`, learned from the first page's magic (which
    /// must then be a supported one); every later page must carry the same magic.
    pub major: Option<PgMajor>,
    /// The cluster's system identifier. When `None`, learned from the first long header;
    /// every later long header must carry the same.
    pub system_id: Option<u64>,
    /// The timeline being read: pages may carry it or an older (lower) timeline, as the
    /// segment a promotion copies does, never a newer one. Page timelines never decrease.
    pub timeline: Option<TimeLineId>,
    /// The history of the timeline being read: every page's timeline must be the target
    /// or one of its ancestors, as the server checks during recovery (`tliInHistory`).
    pub history: Option<TimelineHistory>,
    /// `xl_prev` of the first record decoded, when the caller knows it; otherwise the first
    /// record's `xl_prev` need only be below its own position, as for the server's reads
    /// from an arbitrary position.
    pub prev: Option<Lsn>,
    /// The largest `xl_tot_len` accepted.
    pub max_record_len: u32,
}

impl Default for Expectations {
    fn default() -> Self {
        Expectations {
            major: None,
            system_id: None,
            timeline: None,
            history: None,
            prev: None,
            max_record_len: DEFAULT_MAX_RECORD_LEN,
        }
    }
}

impl Expectations {
    /// Sets [`major`](Expectations::major).
    #[must_use]
    pub fn with_major(mut self, major: PgMajor) -> Self {
        self.major = Some(major);
        self
    }

    /// Sets [`system_id`](Expectations::system_id).
    #[must_use]
    pub fn with_system_id(mut self, system_id: u64) -> Self {
        self.system_id = Some(system_id);
        self
    }

    /// Sets [`timeline`](Expectations::timeline).
    #[must_use]
    pub fn with_timeline(mut self, timeline: TimeLineId) -> Self {
        self.timeline = Some(timeline);
        self
    }

    /// Sets [`history`](Expectations::history).
    #[must_use]
    pub fn with_history(mut self, history: TimelineHistory) -> Self {
        self.history = Some(history);
        self
    }

    /// Sets [`prev`](Expectations::prev).
    #[must_use]
    pub fn with_prev(mut self, prev: Lsn) -> Self {
        self.prev = Some(prev);
        self
    }

    /// Sets [`max_record_len`](Expectations::max_record_len).
    #[must_use]
    pub fn with_max_record_len(mut self, max: u32) -> Self {
        self.max_record_len = max;
        self
    }
}

/// Where valid WAL stops, once the stream is finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndOfWal {
    /// The position the next record would start at: the end of the last valid record
    /// (the decoder's start when no record was found).
    pub lsn: Lsn,
    /// Why decoding stopped there.
    pub reason: EndReason,
}

/// Why valid WAL stops at [`EndOfWal::lsn`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndReason {
    /// The input ended at a record boundary.
    InputEnded,
    /// The input ended inside a record or page header.
    Incomplete,
    /// Zeros follow, up to the end of the input.
    Zeros,
    /// Invalid data follows (a torn record, a recycled page), and no later page is valid.
    Invalid(DecodeError),
}

/// Where to go after skipping bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    FindFirst,
    RecordStart,
}

/// A record being assembled from more than one page, in [`WalDecoder::scratch`].
#[derive(Debug)]
struct Assembly {
    lsn: Lsn,
    tot_len: u32,
    header_checked: bool,
}

#[derive(Debug)]
enum Phase {
    /// At a page start chosen by the caller: its header says where the first record is.
    FindFirst,
    /// At a record boundary.
    RecordStart,
    /// Inside a record that crosses a page (or input) boundary.
    Record(Assembly),
    /// Discarding bytes (a continuation before the first record, alignment, switch padding).
    Skip { until: Lsn, then: After },
    /// Zeros where a header should start; waiting to see what follows.
    ZeroRun { error: DecodeError },
    /// Invalid data; `fail_page` is the page it was found in.
    Failed { error: DecodeError, fail_page: Lsn },
    /// Done; see `end`.
    Ended,
}

/// Where the bytes of a completed record are.
#[derive(Debug)]
enum Loc {
    /// Assembled in `scratch`.
    Scratch,
    /// In place, in the decoder's own buffer.
    Carry(Range<usize>),
    /// In place, in the bytes of the current [`WalDecoder::feed_borrowed`].
    Borrowed(Range<usize>),
}

/// The record that passed every check most recently: what [`WalDecoder::view`] shows.
#[derive(Debug)]
struct Done {
    lsn: Lsn,
    end: Lsn,
    header: RecordHeader,
    major: PgMajor,
    aborted_record: Option<Lsn>,
    main_data: Range<usize>,
    loc: Loc,
}

impl Default for Done {
    /// A placeholder until the first record: never shown, `poll` reports a record only
    /// after completing it here.
    fn default() -> Self {
        Done {
            lsn: Lsn(0),
            end: Lsn(0),
            header: RecordHeader::default(),
            major: PgMajor::V15,
            aborted_record: None,
            main_data: 0..0,
            loc: Loc::Scratch,
        }
    }
}

enum Step {
    Continue,
    NeedMore,
    /// A record is complete, in [`WalDecoder::done`].
    Record,
    Ended,
}

/// A record assembly buffer larger than this is released after use, so one huge record
/// does not pin its size for the rest of the stream.
const SCRATCH_KEEP: usize = 1 << 20;

/// No borrowed bytes: the decoder's own buffer is all the input.
const NO_BYTES: &[u8] = &[];

/// An incremental WAL decoder. See the [module documentation](self) for the contract.
///
/// ```
/// use pgwalrus_wal::{Expectations, Lsn, WalDecoder, WalSegSize};
///
/// let mut decoder = WalDecoder::new(Lsn(0x0100_0000), WalSegSize::DEFAULT, Expectations::default())?;
/// // A page that was never written: zeros are the end of WAL once the stream is finished.
/// decoder.feed(&[0u8; 8192]);
/// assert!(decoder.next()?.is_none()); // might still be followed by data
/// decoder.finish();
/// assert!(decoder.next()?.is_none());
/// assert_eq!(decoder.end_of_wal().map(|e| e.lsn), Some(Lsn(0x0100_0000)));
/// # Ok::<(), pgwalrus_wal::DecodeError>(())
/// ```
#[derive(Debug)]
pub struct WalDecoder {
    seg_size: WalSegSize,
    expect: Expectations,
    major: Option<PgMajor>,
    system_id: Option<u64>,
    /// Input fed with [`feed`](WalDecoder::feed), or left over from a borrowed feed; it
    /// comes before the borrowed bytes. Consumed bytes are dropped on the next feed.
    buf: Vec<u8>,
    buf_pos: usize,
    /// Within a [`feed_borrowed`](WalDecoder::feed_borrowed): how many of the borrowed
    /// bytes there are, and how many were consumed.
    ext_len: usize,
    ext_pos: usize,
    /// The position of the next unconsumed byte.
    pos: Lsn,
    finished: bool,
    phase: Phase,
    /// Reassembly of records that cross a page or input boundary; reused.
    scratch: Vec<u8>,
    /// The record completed last.
    done: Done,
    /// The page whose header has been validated and consumed most recently.
    validated_page: Option<Lsn>,
    last_tli: u32,
    prev_record: Option<Lsn>,
    next_record: Lsn,
    pending_aborted: Option<Lsn>,
    end: Option<EndOfWal>,
}

impl WalDecoder {
    /// A decoder for bytes starting at `start`, a page boundary: a segment start or any page
    /// start. When that page begins in the middle of a record, the continuation is skipped
    /// and decoding starts at the first record that begins on or after it.
    ///
    /// # Errors
    /// [`DecodeErrorKind::StartNotPageAligned`] when `start` is not a multiple of 8192.
    pub fn new(
        start: Lsn,
        seg_size: WalSegSize,
        expectations: Expectations,
    ) -> Result<WalDecoder, DecodeError> {
        if !start.0.is_multiple_of(PAGE) {
            return Err(DecodeError::new(
                start,
                DecodeErrorKind::StartNotPageAligned,
            ));
        }
        Ok(WalDecoder {
            seg_size,
            major: expectations.major,
            system_id: expectations.system_id,
            expect: expectations,
            buf: Vec::new(),
            buf_pos: 0,
            ext_len: 0,
            ext_pos: 0,
            pos: start,
            finished: false,
            phase: Phase::FindFirst,
            scratch: Vec::new(),
            done: Done::default(),
            validated_page: None,
            last_tli: 0,
            prev_record: None,
            next_record: start,
            pending_aborted: None,
            end: None,
        })
    }

    /// Appends WAL bytes continuing exactly where the previous call stopped (the first call
    /// gives the bytes at `start`). Bytes fed after [`finish`](WalDecoder::finish) are
    /// ignored. Bytes are kept only until decoded, except after an error: then they are kept
    /// so that [`finish`](WalDecoder::finish) can tell a torn tail from corruption.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.ext_len = 0;
        self.ext_pos = 0;
        if self.finished || bytes.is_empty() {
            return;
        }
        self.compact();
        self.buf.extend_from_slice(bytes);
    }

    /// Like [`feed`](WalDecoder::feed), without copying: records are decoded from `bytes`
    /// where they lie, through the returned [`BorrowedFeed`], and only what is left
    /// undecoded when it is dropped (the start of a record header cut by the end of
    /// `bytes`, or everything after an error) is copied in, as `feed` would have kept it.
    /// Records that cross a page are reassembled in a buffer the decoder reuses.
    ///
    /// Decoding is the same as with `feed`, whatever the mix and chunking of the two.
    ///
    /// ```
    /// use pgwalrus_wal::{Expectations, Lsn, WalDecoder, WalSegSize};
    ///
    /// let mut decoder = WalDecoder::new(Lsn(0x0100_0000), WalSegSize::DEFAULT, Expectations::default())?;
    /// let page = [0u8; 8192];
    /// let mut input = decoder.feed_borrowed(&page);
    /// input.finish();
    /// while let Some(record) = input.next_checked()? {
    ///     println!("{} {}", record.lsn, record.header.tot_len);
    /// }
    /// drop(input);
    /// assert_eq!(decoder.end_of_wal().map(|e| e.lsn), Some(Lsn(0x0100_0000)));
    /// # Ok::<(), pgwalrus_wal::DecodeError>(())
    /// ```
    pub fn feed_borrowed<'d, 'b>(&'d mut self, bytes: &'b [u8]) -> BorrowedFeed<'d, 'b> {
        let bytes = if self.finished { NO_BYTES } else { bytes };
        self.compact();
        // Top the own buffer up to a page boundary, so that the seam between it and the
        // borrowed bytes is a page start: no page or record header straddles it.
        let mut ext_pos = 0;
        if self.carry_len() > 0 {
            let input_end = self.pos.0.saturating_add(self.carry_len() as u64);
            let to_boundary = usize::try_from((PAGE - input_end % PAGE) % PAGE).unwrap_or(0);
            let take = bytes
                .get(..to_boundary.min(bytes.len()))
                .unwrap_or_default();
            self.buf.extend_from_slice(take);
            ext_pos = take.len();
        }
        self.ext_len = bytes.len();
        self.ext_pos = ext_pos;
        BorrowedFeed {
            decoder: self,
            bytes,
        }
    }

    /// Declares that no more bytes will come: what cannot be decoded from the input now
    /// decides between the end of WAL and corruption (see the [module docs](self)).
    pub fn finish(&mut self) {
        self.finished = true;
    }

    /// Whether [`finish`](WalDecoder::finish) was called.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Decodes the next record.
    ///
    /// Returns `Ok(None)` when more bytes are needed; after [`finish`](WalDecoder::finish),
    /// `Ok(None)` means the WAL ended and [`end_of_wal`](WalDecoder::end_of_wal) says where.
    ///
    /// # Errors
    /// A [`DecodeError`] naming the position and the check that failed. The decoder stays
    /// at the failure: calling again returns the same error, or, once the stream is finished
    /// and the failure turns out to be at its tail, `Ok(None)` with the end of WAL.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Record>, DecodeError> {
        self.ext_len = 0;
        if self.poll(NO_BYTES)? {
            self.view(NO_BYTES).to_record().map(Some)
        } else {
            Ok(None)
        }
    }

    /// Decodes and checks the next record exactly as [`next`](WalDecoder::next) does,
    /// returning a view of it instead of an owned [`Record`]: no allocation per record.
    ///
    /// # Errors
    /// As for [`next`](WalDecoder::next).
    pub fn next_checked(&mut self) -> Result<Option<RecordView<'_>>, DecodeError> {
        self.ext_len = 0;
        if self.poll(NO_BYTES)? {
            Ok(Some(self.view(NO_BYTES)))
        } else {
            Ok(None)
        }
    }

    /// Where valid WAL ends and why, once [`next`](WalDecoder::next) has returned `Ok(None)`
    /// after [`finish`](WalDecoder::finish).
    pub fn end_of_wal(&self) -> Option<&EndOfWal> {
        self.end.as_ref()
    }

    /// The major version: the expected one, or the one learned from the first page.
    pub fn major(&self) -> Option<PgMajor> {
        self.major
    }

    /// The system identifier: the expected one, or the one learned from a long header.
    pub fn system_id(&self) -> Option<u64> {
        self.system_id
    }

    /// The timeline of the last page header read (0 before the first).
    pub fn page_timeline(&self) -> u32 {
        self.last_tli
    }

    /// Where the next record starts: the end of the last record returned (or the start).
    pub fn next_record_lsn(&self) -> Lsn {
        self.next_record
    }

    /// The position of the next byte to [`feed`](WalDecoder::feed).
    pub fn input_position(&self) -> Lsn {
        let rest = self.carry_len() + self.ext_len.saturating_sub(self.ext_pos);
        add(self.pos, rest as u64)
    }

    /// The decoder's state at a record boundary, where decoders can be compared: two
    /// decoders with the same segment size and [`Expectations`] whose sync points are equal
    /// decode the same bytes from [`SyncPoint::position`] on identically — same records,
    /// same errors, same end. `None` anywhere else (before the first record boundary,
    /// inside a record, after an error or the end).
    ///
    /// This is what lets WAL be checked in parallel: a decoder started at a later segment
    /// (which skips the record continued there) produces the same results as the one
    /// coming from before, from the first record boundary where their sync points agree.
    pub fn sync_point(&self) -> Option<SyncPoint> {
        let position = match self.phase {
            Phase::RecordStart => self.pos,
            Phase::Skip {
                until,
                then: After::RecordStart,
            } => until,
            _ => return None,
        };
        Some(SyncPoint {
            position,
            next_record: self.next_record,
            prev_record: self.prev_record,
            last_tli: self.last_tli,
            major: self.major,
            system_id: self.system_id,
            validated_page: self.validated_page,
            pending_aborted: self.pending_aborted,
            finished: self.finished,
        })
    }

    /// Unconsumed bytes in the own buffer.
    fn carry_len(&self) -> usize {
        self.buf.len().saturating_sub(self.buf_pos)
    }

    /// Unconsumed borrowed bytes.
    fn ext_rest(&self, ext: &[u8]) -> usize {
        ext.len().saturating_sub(self.ext_pos)
    }

    /// The input being decoded now: the own buffer until it is consumed, then the
    /// borrowed bytes.
    fn available<'a>(&'a self, ext: &'a [u8]) -> &'a [u8] {
        current(&self.buf, self.buf_pos, ext, self.ext_pos)
    }

    fn consume(&mut self, n: usize, ext: &[u8]) {
        let n = if self.carry_len() > 0 {
            let n = n.min(self.carry_len());
            self.buf_pos += n;
            n
        } else {
            let n = n.min(self.ext_rest(ext));
            self.ext_pos += n;
            n
        };
        self.pos = add(self.pos, n as u64);
    }

    /// Drops consumed bytes from the own buffer (keeping its allocation).
    fn compact(&mut self) {
        if self.buf_pos >= self.buf.len() {
            self.buf.clear();
            self.buf_pos = 0;
        } else if self.buf_pos > 0 && self.buf_pos * 2 >= self.buf.len() {
            self.buf.drain(..self.buf_pos);
            self.buf_pos = 0;
        }
    }

    /// Moves the unconsumed borrowed bytes into the own buffer.
    fn absorb(&mut self, ext: &[u8]) {
        let rest = ext.get(self.ext_pos..).unwrap_or_default();
        self.compact();
        self.buf.extend_from_slice(rest);
        self.ext_pos = ext.len();
    }

    /// Up to `out.len()` input bytes at `off` past the current position, across the seam
    /// between the own buffer and the borrowed bytes; returns how many.
    fn copy_at(&self, off: usize, out: &mut [u8], ext: &[u8]) -> usize {
        let carry = self.buf.get(self.buf_pos..).unwrap_or_default();
        let borrowed = ext.get(self.ext_pos..).unwrap_or_default();
        let mut n = 0;
        for (i, slot) in out.iter_mut().enumerate() {
            let at = off + i;
            let byte = if at < carry.len() {
                carry.get(at)
            } else {
                borrowed.get(at - carry.len())
            };
            let Some(&byte) = byte else { break };
            *slot = byte;
            n += 1;
        }
        n
    }

    /// Runs the state machine until a record (`true`: see [`view`](Self::view)), the need
    /// for more bytes, the end or an error.
    fn poll(&mut self, ext: &[u8]) -> Result<bool, DecodeError> {
        if self.in_page_record(ext) {
            return Ok(true);
        }
        loop {
            let on_carry = self.carry_len() > 0;
            match self.step(ext)? {
                Step::Continue => {}
                Step::Record => return Ok(true),
                Step::Ended => return Ok(false),
                Step::NeedMore => {
                    if on_carry && self.ext_rest(ext) > 0 {
                        // The own buffer ran out: go on with the borrowed bytes. Should
                        // what is needed straddle the two, join them (the top-up to a page
                        // boundary in `feed_borrowed` makes that not happen).
                        if self.carry_len() > 0 {
                            self.absorb(ext);
                        }
                        continue;
                    }
                    if self.finished {
                        let rest = self.available(ext);
                        let reason = if matches!(self.phase, Phase::Record(_)) {
                            EndReason::Incomplete
                        } else if rest.is_empty() {
                            EndReason::InputEnded
                        } else if rest.iter().all(|&b| b == 0) {
                            // Fewer zeros than a header, where a header should start.
                            EndReason::Zeros
                        } else {
                            EndReason::Incomplete
                        };
                        self.end_with(reason);
                    }
                    return Ok(false);
                }
            }
        }
    }

    /// The view of the record `poll` completed last.
    #[inline]
    fn view<'a>(&'a self, ext: &'a [u8]) -> RecordView<'a> {
        let done = &self.done;
        let raw = match &done.loc {
            Loc::Scratch => &self.scratch[..],
            Loc::Carry(range) => self.buf.get(range.clone()).unwrap_or_default(),
            Loc::Borrowed(range) => ext.get(range.clone()).unwrap_or_default(),
        };
        RecordView {
            lsn: done.lsn,
            end: done.end,
            header: done.header,
            aborted_record: done.aborted_record,
            major: done.major,
            raw,
            main_data: done.main_data.clone(),
        }
    }

    fn end_with(&mut self, reason: EndReason) {
        self.phase = Phase::Ended;
        self.end = Some(EndOfWal {
            lsn: self.next_record,
            reason,
        });
    }

    fn step(&mut self, ext: &[u8]) -> Result<Step, DecodeError> {
        match &mut self.phase {
            Phase::Ended => return Ok(Step::Ended),
            Phase::Failed { error, fail_page } => {
                let (error, fail_page) = (error.clone(), *fail_page);
                return self.judge_failure(error, fail_page, ext);
            }
            Phase::ZeroRun { error } => {
                let error = error.clone();
                return self.zero_run(error, ext);
            }
            Phase::Skip { until, then } => {
                let (until, then) = (*until, *then);
                let want = until.0.saturating_sub(self.pos.0);
                let n = usize::try_from(want)
                    .unwrap_or(usize::MAX)
                    .min(self.available(ext).len());
                self.consume(n, ext);
                if self.pos >= until {
                    self.phase = match then {
                        After::FindFirst => Phase::FindFirst,
                        After::RecordStart => Phase::RecordStart,
                    };
                    return Ok(Step::Continue);
                }
                return Ok(Step::NeedMore);
            }
            Phase::FindFirst | Phase::RecordStart | Phase::Record(_) => {}
        }
        if self.pos.0.is_multiple_of(PAGE) && self.validated_page != Some(self.pos) {
            return self.page_header(ext);
        }
        match std::mem::replace(&mut self.phase, Phase::Ended) {
            Phase::RecordStart => self.record_start(ext),
            Phase::Record(assembly) => self.record_bytes(assembly, ext),
            other => {
                // FindFirst is only ever at a page start, handled above.
                self.phase = other;
                Ok(Step::NeedMore)
            }
        }
    }

    /// Validates and consumes the page header at `pos`, then applies the continuation rules
    /// of the current phase.
    fn page_header(&mut self, ext: &[u8]) -> Result<Step, DecodeError> {
        let page = self.pos;
        let avail = self.available(ext);
        let Some(short) = avail.get(..SHORT_HEADER_LEN) else {
            return Ok(Step::NeedMore);
        };
        if short.iter().all(|&b| b == 0) {
            self.phase = Phase::ZeroRun {
                error: DecodeError::new(page, DecodeErrorKind::ZeroPage),
            };
            return Ok(Step::Continue);
        }
        let header = match PageHeader::parse(avail) {
            Ok(h) => h,
            Err(PageHeaderError::Short { .. }) => return Ok(Step::NeedMore),
            Err(PageHeaderError::Flags { info }) => {
                return self.fail(
                    DecodeError::new(page, DecodeErrorKind::PageInfoBits { info }),
                    page,
                    ext,
                );
            }
            Err(_) => {
                return self.fail(DecodeError::new(page, DecodeErrorKind::ZeroPage), page, ext);
            }
        };
        if let Err(kind) = self.check_page(page, &header) {
            return self.fail(DecodeError::new(page, kind), page, ext);
        }
        let header_len = if header.info & XLP_LONG_HEADER != 0 {
            LONG_HEADER_LEN
        } else {
            SHORT_HEADER_LEN
        };
        let contrecord = header.info & XLP_FIRST_IS_CONTRECORD != 0;
        match std::mem::replace(&mut self.phase, Phase::Ended) {
            Phase::FindFirst => {
                self.phase = if contrecord {
                    let space = PAGE - header_len as u64;
                    let rest = align8(u64::from(header.rem_len));
                    if rest >= space {
                        Phase::Skip {
                            until: add(page, PAGE),
                            then: After::FindFirst,
                        }
                    } else {
                        Phase::Skip {
                            until: add(page, header_len as u64 + rest),
                            then: After::RecordStart,
                        }
                    }
                } else {
                    Phase::RecordStart
                };
            }
            Phase::RecordStart => {
                if contrecord {
                    self.phase = Phase::RecordStart;
                    return self.fail(
                        DecodeError::new(
                            add(page, header_len as u64),
                            DecodeErrorKind::UnexpectedContrecord,
                        ),
                        page,
                        ext,
                    );
                }
                self.phase = Phase::RecordStart;
            }
            Phase::Record(assembly) => {
                if header.info & XLP_FIRST_IS_OVERWRITE_CONTRECORD != 0 {
                    // The rest of this record was never written; a new record starts here.
                    self.pending_aborted = Some(assembly.lsn);
                    self.phase = Phase::RecordStart;
                } else if !contrecord {
                    let lsn = assembly.lsn;
                    self.phase = Phase::Record(assembly);
                    return self.fail(
                        DecodeError::new(lsn, DecodeErrorKind::ContrecordMissing { page }),
                        page,
                        ext,
                    );
                } else {
                    let expected = u64::from(assembly.tot_len) - self.scratch.len() as u64;
                    if header.rem_len == 0 || u64::from(header.rem_len) != expected {
                        let lsn = assembly.lsn;
                        self.phase = Phase::Record(assembly);
                        return self.fail(
                            DecodeError::new(
                                lsn,
                                DecodeErrorKind::ContrecordLength {
                                    page,
                                    rem_len: header.rem_len,
                                    expected,
                                },
                            ),
                            page,
                            ext,
                        );
                    }
                    self.phase = Phase::Record(assembly);
                }
            }
            other => self.phase = other,
        }
        self.validated_page = Some(page);
        self.consume(header_len, ext);
        Ok(Step::Continue)
    }

    /// `XLogReaderValidatePageHeader`, with the identity learned where not given.
    fn check_page(&mut self, page: Lsn, h: &PageHeader) -> Result<(), DecodeErrorKind> {
        match self.major {
            Some(major) if major.magic() != h.magic => {
                return Err(DecodeErrorKind::PageMagic {
                    found: h.magic,
                    expected: major.magic(),
                });
            }
            Some(_) => {}
            None => {
                let major = PgMajor::from_magic(h.magic)
                    .ok_or(DecodeErrorKind::UnknownMagic { found: h.magic })?;
                self.major = Some(major);
            }
        }
        if let Some(long) = h.long {
            match self.system_id {
                Some(expected) if expected != long.system_id => {
                    return Err(DecodeErrorKind::SystemIdMismatch {
                        found: long.system_id,
                        expected,
                    });
                }
                Some(_) => {}
                None => self.system_id = Some(long.system_id),
            }
            if long.seg_size != self.seg_size.bytes() {
                return Err(DecodeErrorKind::SegmentSizeMismatch {
                    found: long.seg_size,
                    expected: self.seg_size.bytes(),
                });
            }
            if long.xlog_blcksz != XLOG_BLCKSZ {
                return Err(DecodeErrorKind::BlockSizeMismatch {
                    found: long.xlog_blcksz,
                });
            }
        } else if page.is_segment_start(self.seg_size) {
            return Err(DecodeErrorKind::MissingLongHeader { info: h.info });
        }
        if h.page_addr != page {
            return Err(DecodeErrorKind::PageAddrMismatch { found: h.page_addr });
        }
        if h.tli < self.last_tli {
            return Err(DecodeErrorKind::TimelineBackwards {
                found: h.tli,
                previous: self.last_tli,
            });
        }
        if let Some(max) = self.expect.timeline
            && h.tli > max.get()
        {
            return Err(DecodeErrorKind::TimelineAhead {
                found: h.tli,
                max: max.get(),
            });
        }
        if let Some(history) = &self.expect.history
            && !TimeLineId::new(h.tli).is_ok_and(|tli| history.contains(tli))
        {
            return Err(DecodeErrorKind::TimelineNotInHistory {
                found: h.tli,
                target: history.target().get(),
            });
        }
        self.last_tli = h.tli;
        Ok(())
    }

    /// At a record boundary (not a page start): reads and checks what of the header is on
    /// this page. A record that lies whole in this page and in the input at hand is
    /// completed where it lies; any other is assembled in `scratch`.
    fn record_start(&mut self, ext: &[u8]) -> Result<Step, DecodeError> {
        let lsn = self.pos;
        let page_rest = PAGE - lsn.0 % PAGE;
        let want = usize::try_from(page_rest.min(RECORD_HEADER_LEN as u64)).unwrap_or(0);
        let avail = self.available(ext);
        let Some(head) = avail.get(..want) else {
            self.phase = Phase::RecordStart;
            return Ok(Step::NeedMore);
        };
        if head.iter().all(|&b| b == 0) {
            self.phase = Phase::ZeroRun {
                error: DecodeError::new(lsn, DecodeErrorKind::RecordTooShort { tot_len: 0 }),
            };
            return Ok(Step::Continue);
        }
        let tot_len = le_u32(head, 0).unwrap_or(0);
        let full_header = want == RECORD_HEADER_LEN;
        let in_place = full_header
            && u64::from(tot_len) <= page_rest
            && usize::try_from(tot_len).is_ok_and(|len| len <= avail.len());
        let checked = if let Some(header) = RecordHeader::parse(head).filter(|_| full_header) {
            self.check_record_header(lsn, &header)
        } else if (tot_len as usize) < RECORD_HEADER_LEN {
            Err(DecodeErrorKind::RecordTooShort { tot_len })
        } else {
            self.check_length(tot_len)
        };
        self.phase = Phase::RecordStart;
        if let Err(kind) = checked {
            return self.fail(DecodeError::new(lsn, kind), page_of(lsn), ext);
        }
        if in_place {
            let len = tot_len as usize;
            let loc = if self.carry_len() > 0 {
                Loc::Carry(self.buf_pos..self.buf_pos + len)
            } else {
                Loc::Borrowed(self.ext_pos..self.ext_pos + len)
            };
            self.consume(len, ext);
            return self.complete(lsn, loc, ext);
        }
        self.scratch.clear();
        if self.scratch.capacity() > SCRATCH_KEEP {
            self.scratch.shrink_to(SCRATCH_KEEP);
        }
        self.phase = Phase::Record(Assembly {
            lsn,
            tot_len,
            header_checked: full_header,
        });
        Ok(Step::Continue)
    }

    /// The common case in one go, without the general state machine: at a record boundary
    /// inside a page, a whole valid record lies in this page and in the input at hand. It
    /// is completed exactly as `record_start` and `complete` would complete it. Anything
    /// else — a page start, a record crossing the page or the input, any check failing, an
    /// `XLOG SWITCH`, a pending aborted record — returns `false` having changed nothing,
    /// and the general path decides (and reports) it.
    #[inline]
    fn in_page_record(&mut self, ext: &[u8]) -> bool {
        self.try_in_page_record(ext).is_some()
    }

    /// [`in_page_record`](Self::in_page_record), `None` for `false`.
    #[inline]
    fn try_in_page_record(&mut self, ext: &[u8]) -> Option<()> {
        if !matches!(self.phase, Phase::RecordStart)
            || self.pos.0.is_multiple_of(PAGE)
            || self.pending_aborted.is_some()
        {
            return None;
        }
        let major = self.major?;
        let expected_prev = self.prev_record.or(self.expect.prev)?;
        let lsn = self.pos;
        let page_rest = PAGE - lsn.0 % PAGE;
        let on_carry = self.carry_len() > 0;
        let at = if on_carry { self.buf_pos } else { self.ext_pos };
        let avail = current(&self.buf, self.buf_pos, ext, self.ext_pos);
        let header = RecordHeader::parse(avail)?;
        let len = header.tot_len as usize;
        if (header.tot_len as usize) < RECORD_HEADER_LEN
            || u64::from(header.tot_len) > page_rest
            || header.tot_len > self.expect.max_record_len
            || header.prev != expected_prev
            || !RmgrId(header.rmid).is_valid(major)
        {
            return None;
        }
        let raw = avail.get(..len)?;
        if record_crc(raw) != Some(header.crc) {
            return None;
        }
        let main_data = match common_shape_main_data(raw) {
            Some(main_data) => main_data,
            None => parse_body(major, lsn, raw, |_, _, _| {}).ok()?.main_data,
        };
        if header.rmid == RmgrId::XLOG.0 && header.rmgr_info() == crate::rmgr::XLOG_SWITCH {
            return None;
        }
        // Valid: consume it, and its alignment padding when at hand, as `complete` does.
        let end = Lsn(align8(lsn.0 + len as u64));
        let padded = (end.0 - lsn.0) as usize;
        if padded <= avail.len() {
            self.consume(padded, ext);
        } else {
            self.consume(len, ext);
            self.phase = Phase::Skip {
                until: end,
                then: After::RecordStart,
            };
        }
        self.prev_record = Some(lsn);
        self.next_record = end;
        self.done = Done {
            lsn,
            end,
            header,
            major,
            aborted_record: None,
            main_data,
            loc: if on_carry {
                Loc::Carry(at..at + len)
            } else {
                Loc::Borrowed(at..at + len)
            },
        };
        Some(())
    }

    /// Copies record bytes from the current page; completes the record when all are in.
    fn record_bytes(&mut self, asm: Assembly, ext: &[u8]) -> Result<Step, DecodeError> {
        let page_rest = PAGE - self.pos.0 % PAGE;
        let need = u64::from(asm.tot_len).saturating_sub(self.scratch.len() as u64);
        let src = current(&self.buf, self.buf_pos, ext, self.ext_pos);
        let n = usize::try_from(need.min(page_rest))
            .unwrap_or(usize::MAX)
            .min(src.len());
        if n == 0 {
            self.phase = Phase::Record(asm);
            return Ok(Step::NeedMore);
        }
        self.scratch
            .extend_from_slice(src.get(..n).unwrap_or_default());
        self.consume(n, ext);
        let mut asm = asm;
        if !asm.header_checked
            && let Some(header) = RecordHeader::parse(&self.scratch)
        {
            if let Err(kind) = self.check_record_header(asm.lsn, &header) {
                let lsn = asm.lsn;
                self.phase = Phase::Record(asm);
                let fail_page = self.last_byte_page();
                return self.fail(DecodeError::new(lsn, kind), fail_page, ext);
            }
            asm.header_checked = true;
        }
        if self.scratch.len() as u64 == u64::from(asm.tot_len) {
            return self.complete(asm.lsn, Loc::Scratch, ext);
        }
        self.phase = Phase::Record(asm);
        Ok(Step::Continue)
    }

    /// All of the record at `lsn` is in: checks its CRC and body, then moves past it.
    fn complete(&mut self, lsn: Lsn, loc: Loc, ext: &[u8]) -> Result<Step, DecodeError> {
        self.phase = Phase::RecordStart;
        let fail_page = self.last_byte_page();
        let Some(major) = self.major else {
            return self.fail(
                DecodeError::new(lsn, DecodeErrorKind::MajorUnknown),
                fail_page,
                ext,
            );
        };
        let aborted_record = self.pending_aborted.take();
        let raw = match &loc {
            Loc::Scratch => &self.scratch[..],
            Loc::Carry(range) => self.buf.get(range.clone()).unwrap_or_default(),
            Loc::Borrowed(range) => ext.get(range.clone()).unwrap_or_default(),
        };
        let (header, body, is_switch) = match check_record(major, lsn, raw, aborted_record) {
            Ok(checked) => checked,
            Err(e) => return self.fail(e, fail_page, ext),
        };
        let aligned_end = Lsn(align8(self.pos.0));
        let end = if is_switch {
            next_segment_boundary(aligned_end, self.seg_size)
        } else {
            aligned_end
        };
        self.prev_record = Some(lsn);
        self.next_record = end;
        if end > self.pos {
            let pad = usize::try_from(end.0 - self.pos.0).unwrap_or(usize::MAX);
            if !is_switch && pad <= self.available(ext).len() {
                // The alignment padding is at hand: skip it now rather than in a step.
                self.consume(pad, ext);
            } else {
                self.phase = Phase::Skip {
                    until: end,
                    then: After::RecordStart,
                };
            }
        }
        self.done = Done {
            lsn,
            end,
            header,
            major,
            aborted_record,
            main_data: body.main_data,
            loc,
        };
        Ok(Step::Record)
    }

    /// `ValidXLogRecordHeader`.
    fn check_record_header(&self, lsn: Lsn, h: &RecordHeader) -> Result<(), DecodeErrorKind> {
        if (h.tot_len as usize) < RECORD_HEADER_LEN {
            return Err(DecodeErrorKind::RecordTooShort { tot_len: h.tot_len });
        }
        self.check_length(h.tot_len)?;
        let major = self.major.ok_or(DecodeErrorKind::MajorUnknown)?;
        if !RmgrId(h.rmid).is_valid(major) {
            return Err(DecodeErrorKind::InvalidRmgr { rmid: h.rmid });
        }
        match self.prev_record.or(self.expect.prev) {
            Some(expected) if h.prev != expected => Err(DecodeErrorKind::PrevLinkMismatch {
                found: h.prev,
                expected,
            }),
            Some(_) => Ok(()),
            None if h.prev >= lsn => Err(DecodeErrorKind::PrevLinkNotBefore { found: h.prev }),
            None => Ok(()),
        }
    }

    fn check_length(&self, tot_len: u32) -> Result<(), DecodeErrorKind> {
        if tot_len > self.expect.max_record_len {
            return Err(DecodeErrorKind::RecordTooLong {
                tot_len,
                max: self.expect.max_record_len,
            });
        }
        Ok(())
    }

    /// The page holding the last consumed byte.
    fn last_byte_page(&self) -> Lsn {
        page_of(Lsn(self.pos.0.saturating_sub(1)))
    }

    /// Zeros where a header should start: consume them; non-zero data after them is a
    /// failure, the end of a finished input is the end of WAL.
    fn zero_run(&mut self, error: DecodeError, ext: &[u8]) -> Result<Step, DecodeError> {
        let avail = self.available(ext);
        match avail.iter().position(|&b| b != 0) {
            Some(i) => {
                self.consume(i, ext);
                let fail_page = page_of(error.lsn);
                self.fail(error, fail_page, ext)
            }
            None => {
                let n = avail.len();
                self.consume(n, ext);
                if self.finished && self.carry_len() == 0 && self.ext_rest(ext) == 0 {
                    self.end_with(EndReason::Zeros);
                    Ok(Step::Ended)
                } else {
                    Ok(Step::NeedMore)
                }
            }
        }
    }

    fn fail(
        &mut self,
        error: DecodeError,
        fail_page: Lsn,
        ext: &[u8],
    ) -> Result<Step, DecodeError> {
        self.phase = Phase::Failed {
            error: error.clone(),
            fail_page,
        };
        self.judge_failure(error, fail_page, ext)
    }

    /// A failure is the end of WAL when the stream is finished and no page after the one
    /// holding the failure carries a header for its own position.
    fn judge_failure(
        &mut self,
        error: DecodeError,
        fail_page: Lsn,
        ext: &[u8],
    ) -> Result<Step, DecodeError> {
        if self.finished && !self.written_page_after(fail_page, ext) {
            self.end_with(EndReason::Invalid(error));
            return Ok(Step::Ended);
        }
        Err(error)
    }

    fn written_page_after(&self, fail_page: Lsn, ext: &[u8]) -> bool {
        let rest = self.carry_len() + self.ext_rest(ext);
        let first = add(fail_page, PAGE).max(Lsn(align_up(self.pos.0, PAGE)));
        let mut page = first;
        let mut header = [0u8; LONG_HEADER_LEN];
        loop {
            let Some(off) = page
                .0
                .checked_sub(self.pos.0)
                .and_then(|o| usize::try_from(o).ok())
            else {
                return false;
            };
            if rest.saturating_sub(off) < SHORT_HEADER_LEN {
                return false;
            }
            let got = self.copy_at(off, &mut header, ext);
            // A header that names its own position was written for this stream (a
            // recycled page names an older one); the magic is not required to match, so
            // a wrong expected major cannot pass for the end of WAL.
            if PageHeader::parse(header.get(..got).unwrap_or_default())
                .is_ok_and(|h| h.page_addr == page)
            {
                return true;
            }
            let Some(next) = page.0.checked_add(PAGE) else {
                return false;
            };
            page = Lsn(next);
        }
    }
}

/// The CRC, the body (block references, lengths) and, after an aborted record, the
/// `OVERWRITE_CONTRECORD` record's link to it: everything checked once a record is whole.
fn check_record(
    major: PgMajor,
    lsn: Lsn,
    raw: &[u8],
    aborted: Option<Lsn>,
) -> Result<(RecordHeader, ParsedBody, bool), DecodeError> {
    let stored = RecordHeader::parse(raw).map_or(0, |h| h.crc);
    let computed = record_crc(raw).unwrap_or(!stored);
    if computed != stored {
        return Err(DecodeError::new(
            lsn,
            DecodeErrorKind::CrcMismatch {
                expected: stored,
                got: computed,
            },
        ));
    }
    let body = parse_body(major, lsn, raw, |_, _, _| {})?;
    // `parse_body` checked that the whole header is there.
    let header = RecordHeader::parse(raw).unwrap_or_default();
    let is_xlog = header.rmid == RmgrId::XLOG.0;
    let is_switch = is_xlog && header.rmgr_info() == crate::rmgr::XLOG_SWITCH;
    if let Some(aborted) = aborted
        && is_xlog
        && header.rmgr_info() == crate::rmgr::XLOG_OVERWRITE_CONTRECORD
        && let Some(found) = raw.get(body.main_data.clone()).and_then(|m| le_u64(m, 0))
        && Lsn(found) != aborted
    {
        return Err(DecodeError::new(
            lsn,
            DecodeErrorKind::OverwrittenLsnMismatch {
                found: Lsn(found),
                expected: aborted,
            },
        ));
    }
    Ok((header, body, is_switch))
}

/// The part of the input being decoded: the own buffer from `buf_pos` while any of it is
/// left, then the borrowed bytes from `ext_pos`.
fn current<'a>(buf: &'a [u8], buf_pos: usize, ext: &'a [u8], ext_pos: usize) -> &'a [u8] {
    match buf.get(buf_pos..) {
        Some(rest) if !rest.is_empty() => rest,
        _ => ext.get(ext_pos..).unwrap_or_default(),
    }
}

fn add(lsn: Lsn, n: u64) -> Lsn {
    Lsn(lsn.0.saturating_add(n))
}

fn align8(x: u64) -> u64 {
    align_up(x, 8)
}

/// Rounds `x` up to a multiple of `to` (a power of two), saturating at the largest one.
fn align_up(x: u64, to: u64) -> u64 {
    match x.checked_add(to - 1) {
        Some(v) => v & !(to - 1),
        None => !(to - 1),
    }
}

fn page_of(lsn: Lsn) -> Lsn {
    Lsn(lsn.0 - lsn.0 % PAGE)
}

/// `lsn` when it is a segment start, else the next segment start.
fn next_segment_boundary(lsn: Lsn, seg_size: WalSegSize) -> Lsn {
    Lsn(align_up(lsn.0, seg_size.as_u64()))
}

#[cfg(test)]
mod feed_tests;
#[cfg(test)]
mod tests;
