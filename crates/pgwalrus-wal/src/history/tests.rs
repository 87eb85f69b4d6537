use super::*;
use proptest::prelude::*;

fn tli(v: u32) -> TimeLineId {
    TimeLineId::new(v).unwrap()
}

fn lsn(s: &str) -> Lsn {
    s.parse().unwrap()
}

/// `pg_wal/00000003.history` byte for byte, from a PostgreSQL 15 cluster promoted twice
/// (primary -> standby promoted to timeline 2 -> its standby promoted to timeline 3). Note
/// the blank line the server inserts after the inherited parent file.
const PG15_TIMELINE_3: &[u8] =
    b"1\t0/3000000\tno recovery target specified\n\n2\t0/6000000\tno recovery target specified\n";

#[test]
fn parses_a_file_written_by_postgres() {
    let h = TimelineHistory::parse(tli(3), PG15_TIMELINE_3).unwrap();
    assert_eq!(h.target(), tli(3));
    assert_eq!(
        h.entries(),
        &[
            HistoryEntry {
                parent: tli(1),
                switch_point: lsn("0/3000000"),
                reason: "no recovery target specified".into(),
            },
            HistoryEntry {
                parent: tli(2),
                switch_point: lsn("0/6000000"),
                reason: "no recovery target specified".into(),
            },
        ]
    );
    assert_eq!(
        h.to_string(),
        "1\t0/3000000\tno recovery target specified\n2\t0/6000000\tno recovery target specified\n"
    );
}

#[test]
fn finds_the_timeline_of_a_position() {
    let h = TimelineHistory::parse(tli(3), PG15_TIMELINE_3).unwrap();
    assert_eq!(h.timeline_of(Lsn::INVALID), tli(1));
    assert_eq!(h.timeline_of(lsn("0/2FFFFFF")), tli(1));
    assert_eq!(h.timeline_of(lsn("0/3000000")), tli(2));
    assert_eq!(h.timeline_of(lsn("0/5FFFFFF")), tli(2));
    assert_eq!(h.timeline_of(lsn("0/6000000")), tli(3));
    assert_eq!(h.timeline_of(Lsn::MAX), tli(3));
}

#[test]
fn describes_each_timeline_span() {
    let h = TimelineHistory::parse(tli(3), PG15_TIMELINE_3).unwrap();
    let spans: Vec<_> = h.spans().collect();
    assert_eq!(
        spans,
        vec![
            TimelineSpan {
                tli: tli(1),
                begin: Lsn::INVALID,
                end: Some(lsn("0/3000000")),
                next: Some(tli(2)),
            },
            TimelineSpan {
                tli: tli(2),
                begin: lsn("0/3000000"),
                end: Some(lsn("0/6000000")),
                next: Some(tli(3)),
            },
            TimelineSpan {
                tli: tli(3),
                begin: lsn("0/6000000"),
                end: None,
                next: None,
            },
        ]
    );
    assert_eq!(h.span(tli(2)), Some(spans[1]));
    assert_eq!(h.span(tli(4)), None);
    assert!(h.contains(tli(1)) && h.contains(tli(2)) && h.contains(tli(3)));
    assert!(!h.contains(tli(4)));
}

#[test]
fn timelines_may_skip_ids() {
    // Timeline 4 branched from 2: timeline 3 (a sibling) is not in its history.
    let h = TimelineHistory::parse(tli(4), b"1\t0/3000000\tx\n2\t0/5000000\ty\n").unwrap();
    assert!(!h.contains(tli(3)));
    assert_eq!(h.span(tli(2)).unwrap().next, Some(tli(4)));
    assert_eq!(h.timeline_of(lsn("0/5000000")), tli(4));
}

#[test]
fn decreasing_switch_points_follow_postgres() {
    // Recovery of timeline 2 that stopped before 1->2's switch point, on timeline 1's WAL,
    // still records timeline 2 as the parent. Newest-first lookup gives: below 0/4000000
    // timeline 1, from there on timeline 3; timeline 2 covers nothing.
    let h = TimelineHistory::parse(tli(3), b"1\t0/5000000\ta\n2\t0/4000000\tb\n").unwrap();
    assert_eq!(h.timeline_of(lsn("0/3FFFFFF")), tli(1));
    assert_eq!(h.timeline_of(lsn("0/4000000")), tli(3));
    assert_eq!(h.timeline_of(lsn("0/4800000")), tli(3));
    assert_eq!(h.timeline_of(lsn("0/5000000")), tli(3));
}

#[test]
fn no_parents() {
    let h = TimelineHistory::without_parents(TimeLineId::ONE);
    assert_eq!(h.timeline_of(lsn("16/B374D848")), TimeLineId::ONE);
    assert_eq!(h.to_string(), "");
    assert_eq!(h.spans().count(), 1);
    assert_eq!(TimelineHistory::parse(tli(1), b""), Ok(h.clone()));
    assert_eq!(TimelineHistory::parse(tli(1), b"\n# nothing\n  \n"), Ok(h));
}

#[test]
fn a_file_of_a_later_timeline_without_entries_is_refused() {
    // Empty, or blank and comment lines only: the server never writes such a file, and
    // PostgreSQL's own reader would take it for "no parents".
    for content in [&b""[..], b"\n", b"# nothing\n  \n"] {
        assert_eq!(
            TimelineHistory::parse(tli(2), content),
            Err(HistoryError::NoEntries { target: tli(2) }),
            "{content:?}"
        );
    }
    // `without_parents` still builds the history of a timeline whose file is missing.
    assert!(
        TimelineHistory::without_parents(tli(2))
            .entries()
            .is_empty()
    );
}

#[test]
fn accepts_what_the_server_reader_accepts() {
    let variants: [&[u8]; 7] = [
        b"1\t0/3000000\tno recovery target specified\n",
        b"1 0/3000000 no recovery target specified",
        b"  1   0/3000000\t\t no recovery target specified  \r\n",
        b"# comment\n\n1\t0/3000000\tno recovery target specified\n",
        b"\t# indented comment\n1\t0/3000000\tno recovery target specified\n\n\n",
        b"1\t0/03000000\tno recovery target specified\n",
        b"01\t0/3000000\tno recovery target specified\n",
    ];
    for v in variants {
        let h = TimelineHistory::parse(tli(2), v)
            .unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(v)));
        assert_eq!(h.entries().len(), 1);
        assert_eq!(h.entries()[0].parent, tli(1));
        assert_eq!(h.entries()[0].switch_point, lsn("0/3000000"));
        assert_eq!(h.entries()[0].reason, "no recovery target specified");
    }
    // Reason is optional, and need not be UTF-8.
    let h = TimelineHistory::parse(tli(2), b"1\t0/3000000\n").unwrap();
    assert_eq!(h.entries()[0].reason, "");
    let h = TimelineHistory::parse(tli(2), b"1\t0/3000000\tat \xff\n").unwrap();
    assert_eq!(h.entries()[0].reason, "at \u{FFFD}");
}

#[test]
fn errors_name_the_line() {
    let cases: [(&[u8], HistoryError); 9] = [
        (
            b"x\t0/3000000\treason\n",
            HistoryError::ExpectedTimeLine {
                line: 1,
                found: "x".into(),
            },
        ),
        (
            b"\n\n0\t0/3000000\treason\n",
            HistoryError::ExpectedTimeLine {
                line: 3,
                found: "0".into(),
            },
        ),
        (
            b"-1\t0/3000000\n",
            HistoryError::ExpectedTimeLine {
                line: 1,
                found: "-1".into(),
            },
        ),
        (
            b"4294967296\t0/3000000\n",
            HistoryError::ExpectedTimeLine {
                line: 1,
                found: "4294967296".into(),
            },
        ),
        (
            b"1\n",
            HistoryError::ExpectedSwitchPoint {
                line: 1,
                found: String::new(),
            },
        ),
        (
            b"1\t3000000\treason\n",
            HistoryError::ExpectedSwitchPoint {
                line: 1,
                found: "3000000".into(),
            },
        ),
        (
            b"1\t0/100000000\treason\n",
            HistoryError::ExpectedSwitchPoint {
                line: 1,
                found: "0/100000000".into(),
            },
        ),
        (
            b"1\t0/0\treason\n",
            HistoryError::InvalidSwitchPoint { line: 1 },
        ),
        (
            b"1\t0/3000000\ta\n# c\n1\t0/4000000\tb\n",
            HistoryError::NotIncreasing {
                line: 3,
                tli: tli(1),
                previous: tli(1),
            },
        ),
    ];
    for (input, expected) in cases {
        let err = TimelineHistory::parse(tli(5), input).unwrap_err();
        assert_eq!(err, expected, "{:?}", String::from_utf8_lossy(input));
        let msg = err.to_string();
        assert!(msg.starts_with("history line "), "{msg}");
        assert!(!msg.ends_with('.'), "{msg}");
    }
    assert_eq!(
        TimelineHistory::parse(tli(2), b"1\t0/3000000\ta\n2\t0/4000000\tb\n"),
        Err(HistoryError::NotOlderThanTarget {
            target: tli(2),
            tli: tli(2)
        })
    );
    assert_eq!(
        TimelineHistory::parse(tli(1), b"1\t0/3000000\ta\n"),
        Err(HistoryError::NotOlderThanTarget {
            target: tli(1),
            tli: tli(1)
        })
    );
    let err = TimelineHistory::parse(tli(5), b"1\t\xff\n").unwrap_err();
    assert_eq!(
        err,
        HistoryError::ExpectedSwitchPoint {
            line: 1,
            found: "\u{FFFD}".into()
        }
    );
}

#[test]
fn new_checks_what_parse_checks() {
    let entry = |parent: u32, at: &str, reason: &str| HistoryEntry {
        parent: tli(parent),
        switch_point: lsn(at),
        reason: reason.into(),
    };
    assert!(
        TimelineHistory::new(
            tli(3),
            vec![entry(1, "0/3000000", "a"), entry(2, "0/4000000", "b")]
        )
        .is_ok()
    );
    assert_eq!(
        TimelineHistory::new(
            tli(3),
            vec![entry(2, "0/3000000", "a"), entry(1, "0/4000000", "b")]
        ),
        Err(HistoryError::NotIncreasing {
            line: 2,
            tli: tli(1),
            previous: tli(2)
        })
    );
    assert_eq!(
        TimelineHistory::new(tli(2), vec![entry(2, "0/3000000", "a")]),
        Err(HistoryError::NotOlderThanTarget {
            target: tli(2),
            tli: tli(2)
        })
    );
    assert_eq!(
        TimelineHistory::new(tli(2), vec![entry(1, "0/0", "a")]),
        Err(HistoryError::InvalidSwitchPoint { line: 1 })
    );
    assert!(matches!(
        TimelineHistory::new(tli(2), vec![entry(1, "0/3000000", "a\nb")]),
        Err(HistoryError::ReasonHasLineBreak { .. })
    ));
}

fn history_strategy() -> impl Strategy<Value = TimelineHistory> {
    (
        prop::collection::btree_set(1u32..1000, 0..8),
        prop::collection::vec((1u64.., "[ -~]{0,40}"), 8),
        1u32..1000,
    )
        .prop_map(|(parents, points, extra)| {
            let parents: Vec<u32> = parents.into_iter().collect();
            let target = parents.last().map_or(1, |&p| p + extra);
            let entries = parents
                .iter()
                .zip(points)
                .map(|(&p, (at, reason))| HistoryEntry {
                    parent: tli(p),
                    switch_point: Lsn(at),
                    reason: reason.trim_matches(|c| c == ' ').to_owned(),
                })
                .collect();
            TimelineHistory::new(tli(target), entries).unwrap()
        })
}

proptest! {
    #[test]
    fn printed_history_parses_back(h in history_strategy()) {
        let text = h.to_string();
        prop_assert_eq!(TimelineHistory::parse(h.target(), text.as_bytes()), Ok(h));
    }

    #[test]
    fn every_position_has_a_timeline_in_the_history(h in history_strategy(), at in any::<u64>()) {
        let found = h.timeline_of(Lsn(at));
        prop_assert!(h.contains(found));
        // An independent model of tliOfPointInHistory: entries newest first, each covering
        // [previous switch point, its switch point), the target covering the rest.
        let e = h.entries();
        let expected = if e.last().is_none_or(|last| Lsn(at) >= last.switch_point) {
            Some(h.target())
        } else {
            (0..e.len()).rev().find_map(|i| {
                let begin = if i == 0 { Lsn::INVALID } else { e[i - 1].switch_point };
                (begin <= Lsn(at) && Lsn(at) < e[i].switch_point).then_some(e[i].parent)
            })
        };
        prop_assert_eq!(Some(found), expected);
    }

    #[test]
    fn parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200), t in 1u32..) {
        let _ = TimelineHistory::parse(tli(t), &bytes);
    }

    #[test]
    fn parse_never_panics_on_near_misses(text in "([0-9]{0,3}[ \t]{0,2}[0-9A-Fa-f/]{0,12}[ \t]{0,2}[a-z ]{0,6}\r?\n?){0,5}") {
        let _ = TimelineHistory::parse(tli(1000), text.as_bytes());
    }
}
