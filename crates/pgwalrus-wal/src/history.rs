//! Timeline history files (`TTTTTTTT.history`): parsing their contents, printing them, and
//! answering "which timeline holds this position" for a timeline and its ancestors.
//!
//! # Format
//!
//! Facts from PostgreSQL's `src/backend/access/transam/timeline.c` (`readTimeLineHistory`,
//! `writeTimeLineHistory`), checked against files written by PostgreSQL 15:
//!
//! * Each line is `parentTLI <TAB> switchpoint <TAB> reason`: the parent timeline in
//!   decimal, the position where the child branched off it in `X/Y` form, and free text.
//!   The server writes tabs; the reader accepts any whitespace between fields.
//! * Lines that are empty or only whitespace, and lines whose first non-blank character is
//!   `#`, are skipped. The server puts a blank line between an inherited parent file and
//!   the new line it appends.
//! * Parent timelines must strictly increase from line to line and all be below the
//!   timeline the file belongs to. A file lists the whole ancestry, oldest first: the file
//!   of timeline 3 repeats the line of timeline 2's file and adds its own.
//! * Timeline 1 has no history file; a missing file means "no parents".
//!
//! Where pgwalrus is stricter than the server: the switch point must be a valid `pg_lsn`
//! (1 to 8 hex digits per half) followed by whitespace or the end of the line, and must not
//! be `0/0`. The server's own files always satisfy this.
//!
//! Switch points are *not* required to increase: recovery that ends on an older timeline
//! before a later branch point can produce a file whose last switch point is below an
//! earlier one. Lookups follow PostgreSQL's rule (newest timeline first) so they give the
//! server's answer for such files too.

use std::fmt;

use crate::error::excerpt;
use crate::{Lsn, TimeLineId};

#[cfg(test)]
mod tests;

/// A history file's contents could not be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryError {
    /// The first field of a line is not a decimal timeline id of at least 1.
    #[error(
        "history line {line}: expected a parent timeline id (a decimal number from 1), found {found:?}"
    )]
    ExpectedTimeLine {
        /// 1-based line number.
        line: usize,
        /// The offending field, or the whole line if it was not text.
        found: String,
    },
    /// The second field of a line is missing or not an `X/Y` position.
    #[error(
        "history line {line}: expected a switch point like 0/3000000 after the timeline id, found {found:?}"
    )]
    ExpectedSwitchPoint {
        /// 1-based line number.
        line: usize,
        /// The offending field (empty if it was missing).
        found: String,
    },
    /// A switch point of `0/0`, which is no position at all.
    #[error("history line {line}: switch point 0/0 is not a wal position")]
    InvalidSwitchPoint {
        /// 1-based line number.
        line: usize,
    },
    /// A parent timeline not above the one on the line before.
    #[error(
        "history line {line}: timeline {tli} follows timeline {previous}; timeline ids must increase"
    )]
    NotIncreasing {
        /// 1-based line number (for [`TimelineHistory::new`], the 1-based entry number).
        line: usize,
        /// The timeline on this line.
        tli: TimeLineId,
        /// The timeline on the previous line.
        previous: TimeLineId,
    },
    /// An ancestor that is not older than the timeline the history belongs to.
    #[error(
        "history of timeline {target} lists timeline {tli} as an ancestor; ancestors must be older"
    )]
    NotOlderThanTarget {
        /// The timeline whose history this is.
        target: TimeLineId,
        /// The newest ancestor listed.
        tli: TimeLineId,
    },
    /// A history file of a timeline above 1 with no entries (empty, or only blank and
    /// comment lines). The server never writes one: every timeline above 1 branched off a
    /// parent, which its file names. PostgreSQL's reader takes such a file for "no parents"
    /// and recovery then fails far from the file (the new timeline "is not a child" of the
    /// one being recovered), so it is refused here, where the file can be named.
    #[error(
        "history of timeline {target} has no entries (a timeline above 1 always names the timeline it branched off)"
    )]
    NoEntries {
        /// The timeline whose history this is.
        target: TimeLineId,
    },
    /// A reason with a line break, which the file format cannot hold.
    #[error("history entry for timeline {tli}: the reason {reason:?} contains a line break")]
    ReasonHasLineBreak {
        /// The entry's parent timeline.
        tli: TimeLineId,
        /// The offending reason.
        reason: String,
    },
}

/// One line of a history file: the timeline `parent` ended at `switch_point`, where its
/// child (the next line's parent, or the file's own timeline) began.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct HistoryEntry {
    /// The ancestor timeline.
    pub parent: TimeLineId,
    /// The first position that belongs to the child rather than `parent`.
    pub switch_point: Lsn,
    /// Free text from the server, e.g. `no recovery target specified`. Surrounding
    /// whitespace is not kept; bytes that are not UTF-8 are replaced with U+FFFD.
    pub reason: String,
}

/// The part of the WAL stream one timeline covers in a history.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct TimelineSpan {
    /// The timeline.
    pub tli: TimeLineId,
    /// The first position on this timeline ([`Lsn::INVALID`] for the oldest, meaning the
    /// start of WAL).
    pub begin: Lsn,
    /// The switch point where the next timeline took over, or `None` for the history's own
    /// timeline, which has not ended.
    pub end: Option<Lsn>,
    /// The timeline that took over at `end`, or `None` for the history's own timeline.
    pub next: Option<TimeLineId>,
}

impl TimelineSpan {
    /// `true` if `lsn` lies in `[begin, end)`.
    pub fn contains(&self, lsn: Lsn) -> bool {
        self.begin <= lsn && self.end.is_none_or(|end| lsn < end)
    }
}

/// The ancestry of one timeline: its history file's entries, oldest first, plus the
/// timeline itself as the newest, unended, span.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct TimelineHistory {
    target: TimeLineId,
    entries: Vec<HistoryEntry>,
}

impl TimelineHistory {
    /// The history of a timeline with no ancestors: timeline 1, or any timeline whose
    /// history file does not exist (PostgreSQL treats a missing file the same way).
    pub fn without_parents(target: TimeLineId) -> Self {
        TimelineHistory {
            target,
            entries: Vec::new(),
        }
    }

    /// Parses the contents of `target`'s history file, as read from disk or returned by
    /// `TIMELINE_HISTORY` (raw bytes: reasons need not be UTF-8).
    ///
    /// # Errors
    ///
    /// Each names the 1-based line: [`HistoryError::ExpectedTimeLine`],
    /// [`HistoryError::ExpectedSwitchPoint`] or [`HistoryError::InvalidSwitchPoint`] for a
    /// malformed line; [`HistoryError::NotIncreasing`] when parent timelines do not
    /// strictly increase; [`HistoryError::NotOlderThanTarget`] when the newest parent is
    /// not below `target`; [`HistoryError::NoEntries`] for a timeline above 1 whose file
    /// has no entries (stricter than the server, see the variant).
    #[doc(alias = "readTimeLineHistory")]
    pub fn parse(target: TimeLineId, contents: &[u8]) -> Result<Self, HistoryError> {
        let mut entries: Vec<HistoryEntry> = Vec::new();
        for (index, raw_line) in contents.split(|&b| b == b'\n').enumerate() {
            let line = index + 1;
            let Some(entry) = parse_line(line, raw_line)? else {
                continue;
            };
            if let Some(previous) = entries.last()
                && entry.parent <= previous.parent
            {
                return Err(HistoryError::NotIncreasing {
                    line,
                    tli: entry.parent,
                    previous: previous.parent,
                });
            }
            entries.push(entry);
        }
        if entries.is_empty() && target != TimeLineId::ONE {
            return Err(HistoryError::NoEntries { target });
        }
        check_older_than_target(target, &entries)?;
        Ok(TimelineHistory { target, entries })
    }

    /// Builds a history from entries, oldest first, with the same checks as
    /// [`TimelineHistory::parse`].
    ///
    /// # Errors
    ///
    /// [`HistoryError::NotIncreasing`] (its `line` is the 1-based entry number),
    /// [`HistoryError::NotOlderThanTarget`], [`HistoryError::InvalidSwitchPoint`] for a
    /// `0/0` switch point, or [`HistoryError::ReasonHasLineBreak`] for a reason that could
    /// not be written to a file.
    pub fn new(target: TimeLineId, entries: Vec<HistoryEntry>) -> Result<Self, HistoryError> {
        for (index, entry) in entries.iter().enumerate() {
            let line = index + 1;
            if !entry.switch_point.is_valid() {
                return Err(HistoryError::InvalidSwitchPoint { line });
            }
            if entry.reason.contains(['\n', '\r']) {
                return Err(HistoryError::ReasonHasLineBreak {
                    tli: entry.parent,
                    reason: excerpt(&entry.reason),
                });
            }
            if let Some(previous) = index.checked_sub(1).and_then(|i| entries.get(i))
                && entry.parent <= previous.parent
            {
                return Err(HistoryError::NotIncreasing {
                    line,
                    tli: entry.parent,
                    previous: previous.parent,
                });
            }
        }
        check_older_than_target(target, &entries)?;
        Ok(TimelineHistory { target, entries })
    }

    /// The timeline this history belongs to (the newest).
    pub fn target(&self) -> TimeLineId {
        self.target
    }

    /// The ancestors as listed in the file, oldest first.
    pub fn entries(&self) -> &[HistoryEntry] {
        &self.entries
    }

    /// Every timeline of the history with the positions it covers, oldest first and ending
    /// with [`TimelineHistory::target`].
    pub fn spans(&self) -> impl DoubleEndedIterator<Item = TimelineSpan> + '_ {
        let ancestors = self.entries.iter().enumerate().map(|(i, entry)| {
            let begin = i
                .checked_sub(1)
                .and_then(|p| self.entries.get(p))
                .map_or(Lsn::INVALID, |prev| prev.switch_point);
            let next = self
                .entries
                .get(i + 1)
                .map_or(self.target, |child| child.parent);
            TimelineSpan {
                tli: entry.parent,
                begin,
                end: Some(entry.switch_point),
                next: Some(next),
            }
        });
        let tip = TimelineSpan {
            tli: self.target,
            begin: self
                .entries
                .last()
                .map_or(Lsn::INVALID, |last| last.switch_point),
            end: None,
            next: None,
        };
        ancestors.chain(std::iter::once(tip))
    }

    /// `true` if `tli` is the target or one of its ancestors.
    #[doc(alias = "tliInHistory")]
    pub fn contains(&self, tli: TimeLineId) -> bool {
        tli == self.target || self.entries.iter().any(|e| e.parent == tli)
    }

    /// The span of `tli` in this history (where it began, where it was switched away from
    /// and to which timeline), or `None` if `tli` is neither the target nor an ancestor.
    #[doc(alias = "tliSwitchPoint")]
    pub fn span(&self, tli: TimeLineId) -> Option<TimelineSpan> {
        self.spans().find(|s| s.tli == tli)
    }

    /// The timeline whose WAL holds position `lsn` when following this history: the
    /// ancestor that was current at `lsn`, or the target for positions at or after the
    /// last switch point.
    ///
    /// Spans are tried newest first, as PostgreSQL's `tliOfPointInHistory` does; every
    /// position falls in some span, so there is always an answer.
    #[doc(alias = "tliOfPointInHistory")]
    pub fn timeline_of(&self, lsn: Lsn) -> TimeLineId {
        self.spans()
            .rev()
            .find(|s| s.contains(lsn))
            .map_or(self.target, |s| s.tli)
    }
}

impl fmt::Display for TimelineHistory {
    /// The file contents as PostgreSQL writes them: one `parent\tX/Y\treason` line per
    /// ancestor, each ending in a newline. Empty for a history without parents.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.entries {
            writeln!(f, "{}\t{}\t{}", e.parent, e.switch_point, e.reason)?;
        }
        Ok(())
    }
}

/// Whitespace as C's `isspace` sees it in the "C" locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0B' | b'\x0C' | b'\r')
}

/// `bytes` without leading and trailing C whitespace.
fn trim_c_space(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| !is_c_space(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&b| !is_c_space(b))
        .map_or(start, |p| p + 1);
    bytes.get(start..end).unwrap_or_default()
}

/// Splits the first whitespace-delimited field off `bytes` (which must not start with
/// whitespace), returning it and the rest.
fn split_field(bytes: &[u8]) -> (&[u8], &[u8]) {
    let end = bytes
        .iter()
        .position(|&b| is_c_space(b))
        .unwrap_or(bytes.len());
    bytes.split_at_checked(end).unwrap_or((bytes, &[]))
}

/// For error messages: the field as text, shortened.
fn shown(field: &[u8]) -> String {
    excerpt(&String::from_utf8_lossy(field))
}

/// Parses one line; `Ok(None)` for blank and comment lines.
fn parse_line(line: usize, raw: &[u8]) -> Result<Option<HistoryEntry>, HistoryError> {
    let text = trim_c_space(raw);
    if text.is_empty() || text.first() == Some(&b'#') {
        return Ok(None);
    }
    let (tli_field, rest) = split_field(text);
    let parent = std::str::from_utf8(tli_field)
        .ok()
        .and_then(|s| s.parse::<TimeLineId>().ok())
        .ok_or_else(|| HistoryError::ExpectedTimeLine {
            line,
            found: shown(tli_field),
        })?;
    let (lsn_field, rest) = split_field(trim_c_space(rest));
    let switch_point = std::str::from_utf8(lsn_field)
        .ok()
        .and_then(|s| s.parse::<Lsn>().ok())
        .ok_or_else(|| HistoryError::ExpectedSwitchPoint {
            line,
            found: shown(lsn_field),
        })?;
    if !switch_point.is_valid() {
        return Err(HistoryError::InvalidSwitchPoint { line });
    }
    let reason = String::from_utf8_lossy(trim_c_space(rest)).into_owned();
    Ok(Some(HistoryEntry {
        parent,
        switch_point,
        reason,
    }))
}

/// Every ancestor must be older than the timeline the history belongs to; since parents
/// increase, checking the last is enough.
fn check_older_than_target(
    target: TimeLineId,
    entries: &[HistoryEntry],
) -> Result<(), HistoryError> {
    match entries.last() {
        Some(last) if last.parent >= target => Err(HistoryError::NotOlderThanTarget {
            target,
            tli: last.parent,
        }),
        _ => Ok(()),
    }
}
