//! Checking a segment's WAL while it is copied out, so that damage stops recovery instead of
//! ending it: PostgreSQL takes a bad page header or record CRC in a restored file as the end
//! of WAL, finishes recovery there and promotes — silently dropping everything after it.
//!
//! What is checked, in order:
//!
//! 1. the first page's long header names the segment: known page magic (a supported major),
//!    the segment's own start as page address, a timeline no newer than the file name's,
//!    the segment size the name was read with, 8 KiB WAL blocks;
//! 2. every page header and every record that starts in the segment, with
//!    [`WalDecoder`]: page addresses and timelines (against the timeline's history when the
//!    archive has it), record headers, the `xl_prev` chain and each record's CRC-32C;
//! 3. for a complete segment, the record that runs into the next segment, when the archive
//!    has that one: its start is read until the record is whole. Without a next segment a
//!    record cut by the segment end is accepted (that is where the archive ends), but zeros
//!    or garbage where WAL must continue are not;
//! 4. for a `.partial`, WAL may stop anywhere (zeros, a torn tail), but not be followed by
//!    valid pages again (which would be damage in the middle).

use pgwalrus_wal::decoder::{EndOfWal, EndReason};
use pgwalrus_wal::history::TimelineHistory;
use pgwalrus_wal::names::SegmentName;
use pgwalrus_wal::page::{PageHeader, XLOG_BLCKSZ, XLP_LONG_HEADER, major_for_magic};
use pgwalrus_wal::{DecodeError, Expectations, Lsn, WalDecoder, WalSegSize};

/// Checks the long page header at the start of segment `name` (`header`: the first
/// [`LONG_HEADER_LEN`](pgwalrus_wal::page::LONG_HEADER_LEN) bytes of its content).
///
/// # Errors
/// What is wrong, in words.
pub(crate) fn first_page(header: &[u8], name: SegmentName) -> Result<(), String> {
    let h =
        PageHeader::parse(header).map_err(|e| format!("its first page header is invalid: {e}"))?;
    let long = match h.long {
        Some(long) if h.info & XLP_LONG_HEADER != 0 => long,
        _ => {
            return Err(format!(
                "its first page has no long header (info flags {:#06x}): it is not the start of a segment",
                h.info
            ));
        }
    };
    let Some(major) = major_for_magic(h.magic) else {
        return Err(format!(
            "its first page has magic {:#06X}, which no PostgreSQL major from 14 to 18 writes",
            h.magic
        ));
    };
    if h.page_addr != name.start_lsn() {
        return Err(format!(
            "its first page is the page at {} (its header says so), not the start of segment {} at {}",
            h.page_addr,
            name.plain(),
            name.start_lsn()
        ));
    }
    if h.tli == 0 || h.tli > name.tli().get() {
        return Err(format!(
            "its first page is on timeline {}, but the file is of timeline {}",
            h.tli,
            name.tli()
        ));
    }
    if long.seg_size != name.seg_size().bytes() || long.xlog_blcksz != XLOG_BLCKSZ {
        return Err(format!(
            "its long header says {} byte segments of {} byte pages (PostgreSQL {major}), not {} of {XLOG_BLCKSZ}",
            long.seg_size,
            long.xlog_blcksz,
            name.seg_size().bytes()
        ));
    }
    Ok(())
}

/// The record-level check of one segment, fed as its content is copied.
#[derive(Debug)]
pub(crate) struct SegmentCheck {
    decoder: WalDecoder,
    seg_size: WalSegSize,
    /// The segment's end: where the next segment starts.
    end: Lsn,
    /// Whether a record that ends past [`SegmentCheck::end`] (or starts there) was read.
    crossed: bool,
}

/// How a complete segment's last record was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tail {
    /// Nothing runs past the segment end, or the record that does was read whole from the
    /// next segment.
    Checked,
    /// A record runs into the next segment, which the archive does not have (yet), or only
    /// as a `.partial` that does not hold the rest.
    Unchecked,
}

/// Reads the next bytes of a file into a buffer; `Ok(0)` at its end.
pub(crate) type ReadNext<'a> = &'a mut dyn FnMut(&mut [u8]) -> Result<usize, String>;

impl SegmentCheck {
    /// A check of segment `name` (at its real segment size), against `history` when known.
    ///
    /// # Errors
    /// Only if the segment's start were not page-aligned, which no segment's is.
    pub(crate) fn new(
        name: SegmentName,
        history: Option<TimelineHistory>,
    ) -> Result<SegmentCheck, String> {
        let mut expect = Expectations::default().with_timeline(name.tli());
        if let Some(history) = history {
            expect = expect.with_history(history);
        }
        let decoder = WalDecoder::new(name.start_lsn(), name.seg_size(), expect)
            .map_err(|e| e.to_string())?;
        Ok(SegmentCheck {
            decoder,
            seg_size: name.seg_size(),
            end: name.end_lsn().unwrap_or(Lsn::MAX),
            crossed: false,
        })
    }

    /// Checks the next bytes of the segment.
    ///
    /// # Errors
    /// The damage found, with its position.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.decoder.feed(bytes);
        self.drain().map_err(|e| self.describe(&e))
    }

    /// After the whole of a complete segment was fed: checks its end, reading the start of
    /// the next segment through `next` when the archive has one (`true` with it when that
    /// file is a `.partial`, which may end anywhere).
    ///
    /// # Errors
    /// The damage found, with its position.
    pub(crate) fn end_complete(
        mut self,
        next: Option<(ReadNext<'_>, bool)>,
    ) -> Result<Tail, String> {
        if let Some((read, next_is_partial)) = next {
            let mut buf = vec![0u8; XLOG_BLCKSZ as usize];
            loop {
                if self.crossed {
                    return Ok(Tail::Checked);
                }
                let n = match read(&mut buf) {
                    Ok(n) => n,
                    // The next file's own damage is reported when it is asked for.
                    Err(_) => return Ok(Tail::Unchecked),
                };
                if n == 0 {
                    return Ok(Tail::Unchecked);
                }
                self.decoder.feed(buf.get(..n).unwrap_or_default());
                match self.drain() {
                    Ok(()) => {}
                    // A record that starts in this segment does not read whole from a
                    // complete next segment: damage at the boundary.
                    Err(e) if e.lsn < self.end && !next_is_partial => {
                        return Err(format!(
                            "{} (a record running into the next segment)",
                            self.describe(&e)
                        ));
                    }
                    Err(_) => return Ok(Tail::Unchecked),
                }
            }
        }
        self.decoder.finish();
        self.drain().map_err(|e| self.describe(&e))?;
        match self.decoder.end_of_wal() {
            None
            | Some(EndOfWal {
                reason: EndReason::InputEnded,
                ..
            }) => Ok(Tail::Checked),
            Some(EndOfWal {
                reason: EndReason::Incomplete,
                ..
            }) => Ok(Tail::Unchecked),
            Some(EndOfWal {
                lsn,
                reason: EndReason::Zeros,
            }) => Err(format!(
                "zeros at {lsn} (byte {:#x} of the file) where WAL must continue: a complete segment ends with WAL, or with the padding after a WAL switch",
                lsn.segment_offset(self.seg_size)
            )),
            Some(EndOfWal {
                reason: EndReason::Invalid(e),
                ..
            }) => Err(self.describe(e)),
            Some(EndOfWal { lsn, reason }) => Err(format!(
                "valid WAL stops at {lsn} (byte {:#x} of the file) inside a complete segment: {reason:?}",
                lsn.segment_offset(self.seg_size)
            )),
        }
    }

    /// After the whole of a `.partial` was fed: where its valid WAL ends.
    ///
    /// # Errors
    /// Damage that is not a torn tail: invalid data followed by valid pages again.
    pub(crate) fn end_partial(mut self) -> Result<Lsn, String> {
        self.decoder.finish();
        self.drain().map_err(|e| self.describe(&e))?;
        Ok(self
            .decoder
            .end_of_wal()
            .map_or_else(|| self.decoder.next_record_lsn(), |e| e.lsn))
    }

    fn drain(&mut self) -> Result<(), DecodeError> {
        while let Some(record) = self.decoder.next()? {
            if record.end > self.end || record.lsn >= self.end {
                self.crossed = true;
            }
        }
        Ok(())
    }

    fn describe(&self, e: &DecodeError) -> String {
        let file = if e.lsn >= self.end {
            "of the next segment"
        } else {
            "of the file"
        };
        format!(
            "{} at {} (byte {:#x} {file})",
            e.kind,
            e.lsn,
            e.lsn.segment_offset(self.seg_size)
        )
    }
}
