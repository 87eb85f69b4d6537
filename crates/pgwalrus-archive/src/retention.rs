//! Retention, sans-IO: which complete segments of an archive may go, by age and by size.
//! The caller lists the archive ([`Inventory`](crate::Inventory)) with each segment's size
//! and modification time, asks [`plan`], and removes what it says (`pgwalrus prune`, the
//! daemon).
//!
//! # Rules
//! - Only complete segments are ever removed: never a `.partial`, a `.history` file, a
//!   temporary file or anything else.
//! - A segment may go when every rule set allows it: older than `keep_time` (its file was
//!   last written before the horizon) and outside the newest `keep_size` bytes.
//! - Removal starts at the oldest segment and stops at the first one that stays, so the kept
//!   range has no holes: recovery from any kept segment to the newest has every segment.
//! - Nothing of a timeline newer than the oldest kept segment's is removed (a fork segment
//!   of the next timeline stays while the old timeline's segments around it stay).

use std::time::{Duration, SystemTime};

use pgwalrus_wal::names::SegmentName;

/// What to keep; a rule that is `None` keeps nothing by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Keep {
    /// Keep every segment written within this long before now.
    pub time: Option<Duration>,
    /// Keep the newest segments up to this many bytes (on disk).
    pub size: Option<u64>,
}

impl Keep {
    /// Whether any rule is set (without one, nothing is ever removed).
    pub fn is_set(&self) -> bool {
        self.time.is_some() || self.size.is_some()
    }
}

/// A complete segment file of the archive, as retention sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Its name.
    pub name: SegmentName,
    /// Its size on disk.
    pub bytes: u64,
    /// When it was last written.
    pub modified: SystemTime,
}

/// What retention would do.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Segments to remove, oldest first.
    pub remove: Vec<SegmentName>,
    /// The oldest segment kept, if any: the archive's horizon.
    pub horizon: Option<SegmentName>,
    /// Bytes the removal frees.
    pub freed: u64,
}

/// Plans retention over `segments` (any order; `.partial` and temporary names are ignored)
/// at time `now`. See the [module documentation](self) for the rules.
pub fn plan(segments: &[Candidate], keep: Keep, now: SystemTime) -> Plan {
    let mut complete: Vec<&Candidate> = segments
        .iter()
        .filter(|c| !c.name.is_partial() && !c.name.is_temporary())
        .collect();
    complete.sort_by_key(|c| (c.name.segno(), c.name.tli()));
    if !keep.is_set() || complete.is_empty() {
        return Plan {
            horizon: complete.first().map(|c| c.name),
            ..Plan::default()
        };
    }
    // The size rule keeps the newest segments up to `size` bytes.
    let mut kept_by_size = vec![false; complete.len()];
    if let Some(size) = keep.size {
        let mut total = 0u64;
        for (i, c) in complete.iter().enumerate().rev() {
            total = total.saturating_add(c.bytes);
            if total > size {
                break;
            }
            kept_by_size[i] = true;
        }
    }
    let removable = |i: usize, c: &Candidate| {
        let old_enough = keep
            .time
            .is_none_or(|t| now.duration_since(c.modified).is_ok_and(|age| age > t));
        let outside_size = keep.size.is_none() || !kept_by_size[i];
        old_enough && outside_size
    };
    let first_kept = complete
        .iter()
        .enumerate()
        .position(|(i, c)| !removable(i, c))
        .unwrap_or(complete.len());
    // Always keep the newest complete segment: the archive's end must stay findable.
    let first_kept = first_kept.min(complete.len() - 1);
    let horizon = complete[first_kept].name;
    let mut out = Plan {
        horizon: Some(horizon),
        ..Plan::default()
    };
    for c in &complete[..first_kept] {
        if c.name.tli() > horizon.tli() {
            continue;
        }
        out.remove.push(c.name);
        out.freed += c.bytes;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgwalrus_wal::WalSegSize;
    use pgwalrus_wal::names::FileName;

    const SEG: WalSegSize = WalSegSize::DEFAULT;
    const HOUR: Duration = Duration::from_secs(3600);

    fn t0() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    /// `name` written `hours_ago` hours before [`t0`], one segment long.
    fn seg(name: &str, hours_ago: u64) -> Candidate {
        let FileName::Segment(name) = FileName::parse(name, SEG).unwrap() else {
            panic!("not a segment: {name}");
        };
        Candidate {
            name,
            bytes: SEG.as_u64(),
            modified: t0() - HOUR * u32::try_from(hours_ago).unwrap(),
        }
    }

    fn names(p: &Plan) -> Vec<String> {
        p.remove.iter().map(ToString::to_string).collect()
    }

    /// Timeline 1 up to segment 5, a fork in 5 (its .partial on timeline 1), timeline 2 on.
    fn two_timelines() -> Vec<Candidate> {
        vec![
            seg("000000010000000000000001", 50),
            seg("000000010000000000000002", 40),
            seg("000000010000000000000003", 30),
            seg("000000010000000000000004", 20),
            seg("000000010000000000000005.partial", 15),
            seg("000000020000000000000005", 10),
            seg("000000020000000000000006", 5),
            seg("000000020000000000000007.partial", 0),
        ]
    }

    #[test]
    fn age_removes_the_oldest_run_and_never_a_partial() {
        let keep = Keep {
            time: Some(HOUR * 25),
            size: None,
        };
        let p = plan(&two_timelines(), keep, t0());
        assert_eq!(
            names(&p),
            [
                "000000010000000000000001",
                "000000010000000000000002",
                "000000010000000000000003"
            ]
        );
        assert_eq!(p.horizon.unwrap().to_string(), "000000010000000000000004");
        assert_eq!(p.freed, 3 * SEG.as_u64());
    }

    #[test]
    fn size_keeps_the_newest_bytes() {
        let keep = Keep {
            time: None,
            size: Some(2 * SEG.as_u64()),
        };
        let p = plan(&two_timelines(), keep, t0());
        // Newest two complete segments: 2/6 and 2/5; everything of timeline 1 before goes.
        assert_eq!(
            names(&p),
            [
                "000000010000000000000001",
                "000000010000000000000002",
                "000000010000000000000003",
                "000000010000000000000004"
            ]
        );
        assert_eq!(p.horizon.unwrap().to_string(), "000000020000000000000005");
    }

    #[test]
    fn both_rules_must_allow_a_removal() {
        let keep = Keep {
            time: Some(HOUR * 35),
            size: Some(SEG.as_u64()),
        };
        let p = plan(&two_timelines(), keep, t0());
        assert_eq!(
            names(&p),
            ["000000010000000000000001", "000000010000000000000002"]
        );
    }

    #[test]
    fn no_holes_and_nothing_of_a_newer_timeline_than_the_horizon() {
        // An old primary's timeline-1 segment 6 written after the fork, kept by age, sits
        // after the fork segment of timeline 2: removal stops before the kept one, and the
        // fork segment of timeline 2 is not removed while timeline 1 is the horizon.
        let mut segments = two_timelines();
        segments.push(seg("000000010000000000000006", 1));
        segments.retain(|c| c.name.to_string() != "000000010000000000000005.partial");
        segments.push(seg("000000010000000000000005", 12));
        let keep = Keep {
            time: Some(HOUR * 11),
            size: None,
        };
        let p = plan(&segments, keep, t0());
        // Sorted: 1/1 1/2 1/3 1/4 1/5 2/5 1/6 2/6 …; 2/5 (10 h) is the first kept.
        assert_eq!(p.horizon.unwrap().to_string(), "000000020000000000000005");
        assert_eq!(names(&p).len(), 5);
        // A middle segment young enough to keep stops the removal there.
        let mut segments = two_timelines();
        segments[1] = seg("000000010000000000000002", 1);
        let p = plan(
            &segments,
            Keep {
                time: Some(HOUR * 25),
                size: None,
            },
            t0(),
        );
        assert_eq!(names(&p), ["000000010000000000000001"]);
    }

    #[test]
    fn without_rules_or_with_everything_old_the_newest_complete_segment_stays() {
        assert_eq!(plan(&two_timelines(), Keep::default(), t0()).remove, []);
        let p = plan(
            &two_timelines(),
            Keep {
                time: Some(Duration::from_secs(1)),
                size: None,
            },
            t0() + HOUR * 100,
        );
        assert_eq!(p.horizon.unwrap().to_string(), "000000020000000000000006");
        assert!(!names(&p).iter().any(|n| n.contains("0006")));
        assert!(names(&p).iter().all(|n| !n.ends_with("partial")));
    }
}
