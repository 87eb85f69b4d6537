//! Timelines at the start of a session, sans-IO: where to stream when the server is on
//! another timeline than the archive, and whether the archive's history files agree with
//! the server's. `start.rs` fetches the server's history files and lists the archive; this
//! decides.
//!
//! # Rules
//!
//! The archive ends on timeline `T` and resumes at `X` (a segment boundary, from the resume
//! scan); the server is on timeline `S` (`IDENTIFY_SYSTEM`) and its history is the history
//! file of `S` (`TIMELINE_HISTORY S`).
//!
//! * `S == T`: stream `T` from `X`.
//! * `S > T` and `T` is not in the server's history: refuse. The archive followed a timeline
//!   the server never had (another branch of the cluster); streaming would put two
//!   histories into one archive.
//! * `S > T`, `T` ended at switch point `E` in the server's history, and `X < E`: stream `T`
//!   from `X`. The server sends `T` up to `E` and ends the timeline; the receiver follows
//!   each switch in turn. Never jump straight to `S`: `X..E` would be missing.
//! * `X >= E`: the archive holds WAL of `T` past the fork — the old primary kept writing
//!   after the new timeline branched off, and it was archived from there before the
//!   failover. That WAL is in no history of the server. Continue on the timeline `N` that
//!   follows `T` in the server's history, from the start of the segment holding `E`
//!   (recovery reads that segment from `N`, whose copy holds `T`'s WAL up to `E`), or from
//!   where the archive's own files of `N` end when it has some (a restart after the first
//!   ones were written: streaming the fork again would need WAL the server may have
//!   removed). The files of `T` from the segment holding `E` on are left untouched and
//!   reported ([`Fork::past_fork`]). Repeated while the position is past `N`'s end too.
//! * `S < T`: the server is behind the archive. If the archive's history of `T` has `S` as
//!   an ancestor that ended at `E` and the server is not past `E`, it is a standby that has
//!   not replayed the switch yet: wait for it ([`Behind::Wait`]). Otherwise it went another
//!   way and never will reach `T` ([`Behind::Diverged`]).
//!
//! History files are compared by their entries' timelines and switch points; the free-text
//! reasons are not compared.

use std::fmt;

use pgwalrus_wal::history::{HistoryEntry, TimelineHistory};
use pgwalrus_wal::names::SegmentName;
use pgwalrus_wal::{Lsn, TimeLineId, WalSegSize};

/// Where a session streams from, and the forks passed on the way there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The timeline to stream.
    pub tli: TimeLineId,
    /// Where to start (a segment boundary).
    pub start: Lsn,
    /// Timelines left at a fork because the archive holds their WAL past it, oldest first.
    pub forks: Vec<Fork>,
}

/// An old timeline the archive ran past: the server's history continues on `next`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fork {
    /// The timeline the archive holds WAL of past the fork.
    pub old: TimeLineId,
    /// Where `old` ended in the server's history.
    pub switch_point: Lsn,
    /// The timeline that took over at `switch_point`.
    pub next: TimeLineId,
    /// The archive's files of `old` from the segment holding `switch_point` on, in order:
    /// they hold (or may hold) WAL written after the fork.
    pub past_fork: Vec<SegmentName>,
}

/// The archive's timeline is not in the server's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotInHistory {
    /// The archive's timeline.
    pub tli: TimeLineId,
    /// Every timeline of the server's history, oldest first.
    pub timelines: Vec<TimeLineId>,
}

impl fmt::Display for NotInHistory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "timelines {}", list(&self.timelines))
    }
}

/// The route from the archive's end (`tli`, `start`) along `server`'s history (the history
/// of the server's timeline, which must not be older than `tli`); `archive` holds the
/// archive's segment file names (any suffix; temporary files left out). See the
/// [module documentation](self).
///
/// # Errors
/// [`NotInHistory`] when `tli` is not in `server`.
pub fn route(
    tli: TimeLineId,
    start: Lsn,
    server: &TimelineHistory,
    seg_size: WalSegSize,
    archive: &[SegmentName],
) -> Result<Route, NotInHistory> {
    if !server.contains(tli) {
        return Err(NotInHistory {
            tli,
            timelines: server.spans().map(|s| s.tli).collect(),
        });
    }
    let mut route = Route {
        tli,
        start,
        forks: Vec::new(),
    };
    while let Some(span) = server.span(route.tli) {
        let (Some(end), Some(next)) = (span.end, span.next) else {
            break; // the server's own timeline
        };
        if route.start < end {
            break; // the server walks through the switch
        }
        let fork_segno = end.segno(seg_size);
        let mut past_fork: Vec<SegmentName> = archive
            .iter()
            .filter(|n| n.tli() == route.tli && n.segno() >= fork_segno)
            .copied()
            .collect();
        past_fork.sort_by_key(|n| (n.segno(), n.is_partial()));
        let resumed = archive
            .iter()
            .filter(|n| n.tli() == next && n.segno() >= fork_segno)
            .filter_map(|n| {
                if n.is_partial() {
                    Some(n.start_lsn())
                } else {
                    n.end_lsn()
                }
            })
            .max();
        route.forks.push(Fork {
            old: route.tli,
            switch_point: end,
            next,
            past_fork,
        });
        route.tli = next;
        route.start = resumed.map_or(end.segment_start(seg_size), |r| {
            r.max(end.segment_start(seg_size))
        });
    }
    Ok(route)
}

/// What to make of a server on an older timeline than the archive's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behind {
    /// The server's timeline is an ancestor of the archive's and the server is not past
    /// where it ended: a standby that has yet to replay the switch.
    Wait {
        /// Where the server's timeline ended in the archive's history.
        switch_point: Lsn,
    },
    /// The server's timeline ended at `switch_point` in the archive's history, but the
    /// server has WAL past it: it went another way.
    Diverged {
        /// Where the server's timeline ended in the archive's history.
        switch_point: Lsn,
    },
    /// The server's timeline is not in the archive's history at all.
    NotAncestor,
}

/// Judges a server on timeline `server_tli` with WAL up to `server_pos`, against
/// `archive`, the history of the (newer) timeline the archive is on.
pub fn behind(archive: &TimelineHistory, server_tli: TimeLineId, server_pos: Lsn) -> Behind {
    match archive.span(server_tli).and_then(|s| s.end) {
        None => Behind::NotAncestor,
        Some(switch_point) if server_pos > switch_point => Behind::Diverged { switch_point },
        Some(switch_point) => Behind::Wait { switch_point },
    }
}

/// The first entry where two histories of the same timeline differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// 1-based entry number (the line, not counting blank and comment lines).
    pub entry: usize,
    /// The archive's entry there, if it has one.
    pub local: Option<HistoryEntry>,
    /// The server's entry there, if it has one.
    pub server: Option<HistoryEntry>,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = |e: &Option<HistoryEntry>| match e {
            Some(e) => format!("\"timeline {} ended at {}\"", e.parent, e.switch_point),
            None => "no such entry".to_owned(),
        };
        write!(
            f,
            "entry {}: the archive's file has {}, the server's has {}",
            self.entry,
            side(&self.local),
            side(&self.server)
        )
    }
}

/// The first entry where `local` and `server` disagree on a parent timeline or a switch
/// point; `None` when they agree.
pub fn first_conflict(local: &TimelineHistory, server: &TimelineHistory) -> Option<Conflict> {
    let (l, s) = (local.entries(), server.entries());
    (0..l.len().max(s.len())).find_map(|i| {
        let (a, b) = (l.get(i), s.get(i));
        let same = match (a, b) {
            (Some(a), Some(b)) => a.parent == b.parent && a.switch_point == b.switch_point,
            _ => false,
        };
        (!same).then(|| Conflict {
            entry: i + 1,
            local: a.cloned(),
            server: b.cloned(),
        })
    })
}

/// The history of `tli` as `server` (the history of a newer timeline) tells it: the
/// entries of its ancestors. `None` when `tli` is not in `server`.
pub fn history_of(server: &TimelineHistory, tli: TimeLineId) -> Option<TimelineHistory> {
    if !server.contains(tli) {
        return None;
    }
    let entries = server
        .entries()
        .iter()
        .filter(|e| e.parent < tli)
        .cloned()
        .collect();
    TimelineHistory::new(tli, entries).ok()
}

/// `1, 2, 3`.
pub fn list(timelines: &[TimeLineId]) -> String {
    timelines
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where streaming continues after the server ended the timeline being streamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switch {
    /// The next timeline.
    pub tli: TimeLineId,
    /// Where to stream it from: the segment start of the switch point.
    pub start: Lsn,
    /// The switch point is inside a segment: the old timeline's last segment stays
    /// `.partial` (recovery reads that segment from the new timeline).
    pub keeps_partial: bool,
}

/// An end-of-timeline message that cannot be followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwitchRefused {
    /// The timeline being streamed.
    pub tli: TimeLineId,
    /// What was received of it.
    pub received: Lsn,
    /// The timeline the server named.
    pub next_tli: TimeLineId,
    /// Where the server said it starts.
    pub next_start: Lsn,
}

impl fmt::Display for SwitchRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "server reported new timeline {} starting at {}, but we were on timeline {} and received up to {}",
            self.next_tli, self.next_start, self.tli, self.received
        )
    }
}

/// The server ended timeline `tli`, of which WAL up to `received` arrived, and named
/// `next_tli` starting at `next_start`. Followed when the next timeline is newer and starts
/// at or before what was received (the server sends the old timeline up to the switch
/// point, never less); refused otherwise — a server that goes back in timelines, or claims a
/// switch beyond the WAL it sent, would leave a gap or two histories in one archive.
///
/// # Errors
/// [`SwitchRefused`] naming both timelines and positions.
pub fn follow_switch(
    tli: TimeLineId,
    received: Lsn,
    next_tli: TimeLineId,
    next_start: Lsn,
    seg_size: WalSegSize,
) -> Result<Switch, SwitchRefused> {
    if next_tli <= tli || next_start > received {
        return Err(SwitchRefused {
            tli,
            received,
            next_tli,
            next_start,
        });
    }
    Ok(Switch {
        tli: next_tli,
        start: next_start.segment_start(seg_size),
        keeps_partial: !next_start.is_segment_start(seg_size),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgwalrus_wal::names::FileName;

    const SEG: WalSegSize = WalSegSize::DEFAULT;

    fn tli(v: u32) -> TimeLineId {
        TimeLineId::new(v).unwrap()
    }

    fn lsn(s: &str) -> Lsn {
        s.parse().unwrap()
    }

    /// Timeline 1 → 2 at 0/6800120, 2 → 3 at 0/9000000 (a segment boundary).
    fn three() -> TimelineHistory {
        TimelineHistory::parse(
            tli(3),
            b"1\t0/6800120\tno recovery target specified\n\n2\t0/9000000\tno recovery target specified\n",
        )
        .unwrap()
    }

    fn names(list: &[&str]) -> Vec<SegmentName> {
        list.iter()
            .map(|n| match FileName::parse(n, SEG).unwrap() {
                FileName::Segment(s) => s,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    fn shown(names: &[SegmentName]) -> Vec<String> {
        names.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn the_servers_own_timeline_streams_from_the_archive_end() {
        let r = route(tli(3), lsn("0/A000000"), &three(), SEG, &[]).unwrap();
        assert_eq!((r.tli, r.start), (tli(3), lsn("0/A000000")));
        assert!(r.forks.is_empty());
    }

    #[test]
    fn before_the_switch_the_old_timeline_streams_and_the_server_walks_through() {
        let archive = names(&[
            "000000010000000000000005",
            "000000010000000000000006.partial",
        ]);
        let r = route(tli(1), lsn("0/6000000"), &three(), SEG, &archive).unwrap();
        assert_eq!((r.tli, r.start), (tli(1), lsn("0/6000000")));
        assert!(r.forks.is_empty());
    }

    #[test]
    fn past_the_fork_it_continues_on_the_next_timeline_from_the_fork_segment() {
        let archive = names(&[
            "000000010000000000000005",
            "000000010000000000000006",
            "000000010000000000000007.gz",
            "000000010000000000000008.partial",
        ]);
        let r = route(tli(1), lsn("0/8000000"), &three(), SEG, &archive).unwrap();
        assert_eq!((r.tli, r.start), (tli(2), lsn("0/6000000")));
        assert_eq!(r.forks.len(), 1);
        let fork = &r.forks[0];
        assert_eq!(
            (fork.old, fork.switch_point, fork.next),
            (tli(1), lsn("0/6800120"), tli(2))
        );
        assert_eq!(
            shown(&fork.past_fork),
            [
                "000000010000000000000006",
                "000000010000000000000007.gz",
                "000000010000000000000008.partial"
            ]
        );
    }

    #[test]
    fn past_the_fork_it_resumes_where_the_next_timelines_files_end() {
        let archive = names(&[
            "000000010000000000000008",
            "000000020000000000000006",
            "000000020000000000000007.partial",
        ]);
        let r = route(tli(1), lsn("0/9000000"), &three(), SEG, &archive).unwrap();
        assert_eq!((r.tli, r.start), (tli(2), lsn("0/7000000")));
        let archive = names(&["000000010000000000000008", "000000020000000000000007"]);
        let r = route(tli(1), lsn("0/9000000"), &three(), SEG, &archive).unwrap();
        assert_eq!((r.tli, r.start), (tli(2), lsn("0/8000000")));
    }

    #[test]
    fn past_two_forks_it_goes_on_to_the_newest_timeline() {
        // Timeline 2 ended at 0/9000000, a segment boundary: its file 9 is all after the fork.
        let archive = names(&[
            "00000001000000000000000A",
            "000000020000000000000009.partial",
        ]);
        let r = route(tli(1), lsn("0/B000000"), &three(), SEG, &archive).unwrap();
        assert_eq!((r.tli, r.start), (tli(3), lsn("0/9000000")));
        assert_eq!(
            r.forks.iter().map(|f| (f.old, f.next)).collect::<Vec<_>>(),
            [(tli(1), tli(2)), (tli(2), tli(3))]
        );
        assert_eq!(
            shown(&r.forks[1].past_fork),
            ["000000020000000000000009.partial"]
        );
    }

    #[test]
    fn exactly_at_the_switch_point_it_continues_on_the_next_timeline() {
        // Timeline 2's last segment was archived complete and ends exactly at its switch
        // point: nothing past the fork, nothing to report.
        let archive = names(&["000000020000000000000008"]);
        let r = route(tli(2), lsn("0/9000000"), &three(), SEG, &archive).unwrap();
        assert_eq!((r.tli, r.start), (tli(3), lsn("0/9000000")));
        assert!(r.forks[0].past_fork.is_empty());
    }

    #[test]
    fn a_timeline_outside_the_servers_history_is_refused() {
        let one_three =
            TimelineHistory::parse(tli(4), b"1\t0/3000000\tx\n3\t0/5000000\tx\n").unwrap();
        let err = route(tli(2), lsn("0/4000000"), &one_three, SEG, &[]).unwrap_err();
        assert_eq!(err.tli, tli(2));
        assert_eq!(err.to_string(), "timelines 1, 3, 4");
    }

    #[test]
    fn a_server_behind_the_archive_is_waited_for_unless_it_went_past_the_switch() {
        let h = three();
        assert_eq!(
            behind(&h, tli(2), lsn("0/8FFFFFF")),
            Behind::Wait {
                switch_point: lsn("0/9000000")
            }
        );
        assert_eq!(
            behind(&h, tli(2), lsn("0/9000000")),
            Behind::Wait {
                switch_point: lsn("0/9000000")
            }
        );
        assert_eq!(
            behind(&h, tli(1), lsn("0/7000000")),
            Behind::Diverged {
                switch_point: lsn("0/6800120")
            }
        );
        let other = TimelineHistory::parse(tli(3), b"2\t0/3000000\tx\n").unwrap();
        assert_eq!(
            behind(&other, tli(1), lsn("0/1000000")),
            Behind::NotAncestor
        );
    }

    #[test]
    fn histories_are_compared_by_timelines_and_switch_points_not_reasons() {
        let server = three();
        let same = TimelineHistory::parse(
            tli(3),
            b"1\t0/6800120\tbefore transaction 123\n2\t0/9000000\tanything\n",
        )
        .unwrap();
        assert_eq!(first_conflict(&same, &server), None);

        let moved = TimelineHistory::parse(tli(3), b"1\t0/6800120\tx\n2\t0/9100000\tx\n").unwrap();
        let c = first_conflict(&moved, &server).unwrap();
        assert_eq!(c.entry, 2);
        assert_eq!(
            c.to_string(),
            "entry 2: the archive's file has \"timeline 2 ended at 0/9100000\", the server's has \"timeline 2 ended at 0/9000000\""
        );

        let short = TimelineHistory::parse(tli(3), b"1\t0/6800120\tx\n").unwrap();
        let c = first_conflict(&short, &server).unwrap();
        assert_eq!((c.entry, &c.local), (2, &None));
        assert!(
            c.to_string().contains("archive's file has no such entry"),
            "{c}"
        );
    }

    #[test]
    fn the_history_of_an_ancestor_is_the_prefix_of_a_newer_one() {
        let h = history_of(&three(), tli(2)).unwrap();
        assert_eq!(h.target(), tli(2));
        assert_eq!(h.entries().len(), 1);
        assert_eq!(h.entries()[0].switch_point, lsn("0/6800120"));
        assert!(history_of(&three(), tli(5)).is_none());
        assert!(history_of(&three(), tli(1)).unwrap().entries().is_empty());
    }

    #[test]
    fn a_timeline_switch_is_followed_only_forward_and_within_what_was_received() {
        // (tli, received, next tli, next start) -> Some((start, keeps_partial)) or refused
        let cases = [
            (1, "0/6800120", 2, "0/6800120", Some(("0/6000000", true))),
            (1, "0/7000000", 2, "0/6800120", Some(("0/6000000", true))),
            (2, "0/9000000", 3, "0/9000000", Some(("0/9000000", false))),
            (1, "0/6800120", 5, "0/6000000", Some(("0/6000000", false))),
            // Backwards or sideways in timelines.
            (2, "0/9000000", 2, "0/9000000", None),
            (3, "0/9000000", 2, "0/9000000", None),
            // A switch point beyond what the server sent.
            (1, "0/6800000", 2, "0/6800120", None),
        ];
        for (old, received, next, at, expected) in cases {
            let got = follow_switch(tli(old), lsn(received), tli(next), lsn(at), SEG);
            match expected {
                Some((start, keeps_partial)) => assert_eq!(
                    got,
                    Ok(Switch {
                        tli: tli(next),
                        start: lsn(start),
                        keeps_partial
                    }),
                    "{old} {received} -> {next} {at}"
                ),
                None => {
                    let refused = got.expect_err("refused");
                    assert!(
                        refused
                            .to_string()
                            .contains(&format!("new timeline {next} starting at {at}")),
                        "{refused}"
                    );
                }
            }
        }
    }
}
