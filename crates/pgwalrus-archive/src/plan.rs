//! The archive as recovery would read it: for a target timeline and its history, which file
//! serves each segment number, in LSN order, and where segments are missing. `verify`,
//! `dump` and `restore` all walk the archive through this one plan.
//!
//! PostgreSQL's rule for a segment number `n` (XLogFileReadAnyTLI): take the newest
//! timeline of the target's history whose first segment is not after `n`. So the segment
//! holding a switch point is read from the *new* timeline, which carries a copy of the old
//! timeline's bytes up to the switch; the old timeline's `.partial` of that segment is not
//! used. Of two files for the same segment and timeline, a complete one beats a `.partial`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pgwalrus_wal::history::TimelineHistory;
use pgwalrus_wal::names::{FileName, HistoryName, SegmentName};
use pgwalrus_wal::{SegNo, TimeLineId, WalSegSize};

use crate::error::{Error, Op};
use crate::fs::{ArchiveFile, ArchiveFs};
use crate::identity::{self, Finding};
use crate::inventory::Inventory;

/// Why the archive could not be planned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// Reading the directory or a file failed.
    #[error(transparent)]
    Archive(#[from] Error),
    /// The target timeline's history file does not parse.
    #[error("timeline history file \"{}\" is damaged", path.display())]
    BadHistory {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line number.
        #[source]
        source: pgwalrus_wal::history::HistoryError,
    },
}

type Result<T, E = PlanError> = std::result::Result<T, E>;

/// One segment of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedSegment {
    /// The segment number.
    pub segno: SegNo,
    /// The file that serves it (its name tells timeline, compression, `.partial`).
    pub name: SegmentName,
    /// Its path.
    pub path: PathBuf,
}

/// A run of segment numbers with no file on the timeline recovery would read them from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// The timeline whose files are missing.
    pub tli: TimeLineId,
    /// First missing segment number.
    pub first: SegNo,
    /// Last missing segment number (inclusive).
    pub last: SegNo,
}

/// The archive, laid out along one timeline's history.
#[derive(Debug)]
pub struct ArchivePlan {
    /// Segment size (from the first long page header found, or given).
    pub seg_size: WalSegSize,
    /// The timeline the plan follows.
    pub target: TimeLineId,
    /// Its history (parents and switch points).
    pub history: TimelineHistory,
    /// `false` when the target is not timeline 1 and its `.history` file is missing, so the
    /// plan could only follow the target itself.
    pub history_found: bool,
    /// Segments in order; a [`Gap`] sits wherever numbers are not consecutive.
    pub segments: Vec<PlannedSegment>,
    /// Missing runs between the first and the last planned segment.
    pub gaps: Vec<Gap>,
    /// History files of the archive that cannot be read or do not parse (empty ones
    /// included), each as [`PlanError::BadHistory`] or [`PlanError::Archive`] naming the
    /// file. The newest timeline is chosen among the readable ones; when the target's own
    /// file is here, the plan follows the target alone.
    pub damaged_histories: Vec<PlanError>,
    /// Files named like WAL files but in lower-case hex, which nothing reads
    /// ([`Inventory::misspelled`]).
    pub misspelled: Vec<(std::ffi::OsString, FileName)>,
}

/// Finds the segment size of an archive from the long header of its first segment file
/// (in name order; complete or `.partial`, compressed or not) whose first page was written.
/// A compressed file's first page is decompressed; one whose first bytes do not decompress
/// is passed over like a plain file whose first page is not a long header. `Ok(None)` when
/// no such file exists.
///
/// # Errors
/// [`PlanError::Archive`] listing the directory or opening or reading a file.
pub fn detect_seg_size<F: ArchiveFs>(fs: &F, dir: &Path) -> Result<Option<WalSegSize>> {
    Ok(detect_origin(fs, dir)?.map(|o| o.seg_size))
}

/// Where an archive's WAL comes from, as the first segment file with a long header says
/// (see [`detect_seg_size`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// The segment size.
    pub seg_size: WalSegSize,
    /// The database system identifier.
    pub system_id: u64,
    /// The file it was read from.
    pub file: SegmentName,
}

/// The segment size and system identifier of an archive, from the file
/// [`detect_seg_size`] reads.
///
/// # Errors
/// As for [`detect_seg_size`].
pub fn detect_origin<F: ArchiveFs>(fs: &F, dir: &Path) -> Result<Option<Origin>> {
    // Listed at the smallest size: a name valid at any size is valid there.
    let inventory = Inventory::list(fs, dir, WalSegSize::MIN)?;
    for &name in &inventory.segments {
        let path = inventory.path(name);
        let finding = match name.compression() {
            Some(compression) => identity::first_page_compressed(fs, &path, compression)?,
            None => identity::first_page(fs, &path)?,
        };
        if let Finding::Identified {
            seg_size,
            system_id,
            ..
        } = finding
            && let Ok(seg_size) = WalSegSize::new(seg_size)
        {
            return Ok(Some(Origin {
                seg_size,
                system_id,
                file: name,
            }));
        }
    }
    Ok(None)
}

/// Plans the walk of `dir` along `target` (default: the newest timeline with a segment or
/// history file in the archive).
///
/// # Errors
/// [`PlanError::Archive`] listing the directory. A history file that cannot be read or
/// does not parse is not an error of the plan: it is listed in
/// [`ArchivePlan::damaged_histories`].
pub fn plan<F: ArchiveFs>(
    fs: &F,
    dir: &Path,
    seg_size: WalSegSize,
    target: Option<TimeLineId>,
) -> Result<ArchivePlan> {
    let inventory = Inventory::list(fs, dir, seg_size)?;
    // (segno, tli) -> best file; complete beats partial, plain beats compressed.
    let mut files: BTreeMap<(SegNo, TimeLineId), (SegmentName, PathBuf)> = BTreeMap::new();
    let mut newest = TimeLineId::ONE;
    let mut history_files: BTreeMap<TimeLineId, PathBuf> = BTreeMap::new();
    for &segment in &inventory.segments {
        newest = newest.max(segment.tli());
        let key = (segment.segno(), segment.tli());
        let better = match files.get(&key) {
            None => true,
            Some((have, _)) => rank(&segment) < rank(have),
        };
        if better {
            files.insert(key, (segment, inventory.path(segment)));
        }
    }
    for tli in inventory.histories.iter().map(HistoryName::tli) {
        // A plain copy wins; a compressed one alone is read decompressed.
        if let Some(name) = inventory.history(tli) {
            history_files.insert(tli, inventory.path(name));
        }
    }
    // Every history file is read, so that a damaged one is named even when the walk does
    // not follow its timeline (an empty `00000002.history` beside timeline 1's segments).
    let mut histories: BTreeMap<TimeLineId, TimelineHistory> = BTreeMap::new();
    let mut damaged_histories = Vec::new();
    for (&tli, path) in &history_files {
        match read_history(fs, tli, path) {
            Ok(history) => {
                histories.insert(tli, history);
            }
            Err(e) => damaged_histories.push(e),
        }
    }
    // A damaged history file does not make its timeline the newest: the walk follows the
    // newest timeline it can read the history of (and names the damaged file).
    for history in &inventory.histories {
        if histories.contains_key(&history.tli()) {
            newest = newest.max(history.tli());
        }
    }
    let target = target.unwrap_or(newest);
    let (history, history_found) = if target == TimeLineId::ONE {
        (TimelineHistory::without_parents(target), true)
    } else if let Some(history) = histories.get(&target) {
        (history.clone(), true)
    } else {
        // Missing, or damaged (then it is in `damaged_histories`, and not also "missing").
        (
            TimelineHistory::without_parents(target),
            history_files.contains_key(&target),
        )
    };

    // The first segment each timeline of the history serves, newest first.
    let mut starts: Vec<(TimeLineId, SegNo)> = history
        .spans()
        .map(|span| (span.tli, span.begin.segno(seg_size)))
        .collect();
    starts.reverse();
    let serving = |segno: SegNo| -> Option<TimeLineId> {
        starts
            .iter()
            .find(|(_, first)| *first <= segno)
            .map(|(tli, _)| *tli)
    };

    let mut segments: Vec<PlannedSegment> = Vec::new();
    let mut candidates: Vec<SegNo> = files.keys().map(|(segno, _)| *segno).collect();
    candidates.dedup();
    for segno in candidates {
        let Some(tli) = serving(segno) else { continue };
        if let Some((name, path)) = files.get(&(segno, tli)) {
            segments.push(PlannedSegment {
                segno,
                name: *name,
                path: path.clone(),
            });
        }
    }
    let mut gaps = Vec::new();
    for pair in segments.windows(2) {
        let (a, b) = (pair[0].segno, pair[1].segno);
        if b.0 > a.0 + 1 {
            let first = SegNo(a.0 + 1);
            let tli = serving(first).unwrap_or(target);
            gaps.push(Gap {
                tli,
                first,
                last: SegNo(b.0 - 1),
            });
        }
    }
    Ok(ArchivePlan {
        seg_size,
        target,
        history,
        history_found,
        segments,
        gaps,
        damaged_histories,
        misspelled: inventory.misspelled.clone(),
    })
}

/// Reads and parses the history file of `tli` at `path`.
fn read_history<F: ArchiveFs>(fs: &F, tli: TimeLineId, path: &Path) -> Result<TimelineHistory> {
    let content = read_plain(fs, path)?;
    TimelineHistory::parse(tli, &content).map_err(|source| PlanError::BadHistory {
        path: path.to_path_buf(),
        source,
    })
}

fn read_plain<F: ArchiveFs>(fs: &F, path: &Path) -> Result<Vec<u8>> {
    let text = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    // A compressed history file (pg_receivewal -Z gzip writes `00000002.history.gz`) is
    // read through the reader, which decompresses it whole.
    if let Ok(name @ FileName::History(history)) = FileName::parse(text, WalSegSize::MIN)
        && history.compression().is_some()
    {
        let dir = path.parent().unwrap_or_else(|| Path::new("."));
        return Ok(crate::reader::read_file(fs, dir, &name)?);
    }
    let file = fs.open_read(path).map_err(Error::at(Op::Open, path))?;
    let mut content = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let got = file
            .read_at(&mut buf, content.len() as u64)
            .map_err(Error::at(Op::Read, path))?;
        if got == 0 {
            return Ok(content);
        }
        content.extend_from_slice(&buf[..got]);
    }
}

/// Lower is better: complete before partial, then plain before compressed.
fn rank(name: &SegmentName) -> (bool, bool) {
    (name.is_partial(), name.compression().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::SimFs;
    use crate::test_support::{compressed, compressed_unfinished, long_header};
    use pgwalrus_wal::names::Compression;

    fn seg(tli: u32, segno: u64) -> SegmentName {
        SegmentName::new(
            TimeLineId::new(tli).unwrap(),
            SegNo(segno),
            WalSegSize::DEFAULT,
        )
        .unwrap()
    }

    fn dir_with(files: &[(&str, &[u8])]) -> (SimFs, PathBuf) {
        let fs = SimFs::new();
        let dir = PathBuf::from("/archive");
        fs.create_dir(&dir);
        for (name, content) in files {
            fs.put_file(dir.join(name), content);
        }
        (fs, dir)
    }

    #[test]
    fn follows_the_history_and_reads_the_switch_segment_from_the_new_timeline() {
        let names: Vec<String> = vec![
            seg(1, 1).to_string(),
            seg(1, 2).to_string(),
            seg(1, 3).partial().to_string(),
            seg(2, 3).to_string(),
            seg(2, 4).partial().to_string(),
        ];
        let mut files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b""[..])).collect();
        let history = b"1\t0/3000100\tno recovery target specified\n";
        files.push(("00000002.history", history));
        let (fs, dir) = dir_with(&files);
        let plan = plan(&fs, &dir, WalSegSize::DEFAULT, None).unwrap();
        assert_eq!(plan.target.get(), 2);
        assert!(plan.history_found);
        let got: Vec<String> = plan.segments.iter().map(|s| s.name.to_string()).collect();
        assert_eq!(
            got,
            [
                names[0].clone(),
                names[1].clone(),
                names[3].clone(),
                names[4].clone()
            ]
        );
        assert!(plan.gaps.is_empty());
    }

    #[test]
    fn reports_gaps_and_prefers_complete_files() {
        let names = [
            seg(1, 1).to_string(),
            seg(1, 4).partial().to_string(),
            seg(1, 4).to_string(),
            seg(1, 7).to_string(),
        ];
        let files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b""[..])).collect();
        let (fs, dir) = dir_with(&files);
        let plan = plan(&fs, &dir, WalSegSize::DEFAULT, None).unwrap();
        assert_eq!(plan.segments.len(), 3);
        assert!(!plan.segments[1].name.is_partial());
        assert_eq!(
            plan.gaps,
            [
                Gap {
                    tli: TimeLineId::ONE,
                    first: SegNo(2),
                    last: SegNo(3)
                },
                Gap {
                    tli: TimeLineId::ONE,
                    first: SegNo(5),
                    last: SegNo(6)
                }
            ]
        );
    }

    #[test]
    fn a_compressed_history_file_is_read() {
        let mut e =
            crate::compress::Encoder::new(pgwalrus_wal::names::Compression::Gzip, 6).unwrap();
        e.write(b"1\t0/3000100\tno recovery target specified\n")
            .unwrap();
        e.finish().unwrap();
        let gz = std::mem::take(e.output());
        let names = [seg(1, 2).to_string(), seg(2, 3).to_string()];
        let mut files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b""[..])).collect();
        files.push(("00000002.history.gz", &gz));
        let (fs, dir) = dir_with(&files);
        let plan = plan(&fs, &dir, WalSegSize::DEFAULT, None).unwrap();
        assert!(plan.history_found);
        assert_eq!(plan.history.entries().len(), 1);
        assert_eq!(plan.segments.len(), 2);
    }

    #[test]
    fn a_missing_segment_of_the_new_timeline_is_a_gap_named_on_that_timeline() {
        // Timeline 2 forks inside segment 3; its copy of segment 3 is missing, while the old
        // timeline's `.partial` of it is there (and must not stand in for it).
        let names = [
            seg(1, 2).to_string(),
            seg(1, 3).partial().to_string(),
            seg(2, 4).to_string(),
            seg(2, 5).to_string(),
        ];
        let mut files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b""[..])).collect();
        let history = b"1\t0/3000100\tno recovery target specified\n";
        files.push(("00000002.history", history));
        let (fs, dir) = dir_with(&files);
        let plan = plan(&fs, &dir, WalSegSize::DEFAULT, None).unwrap();
        assert_eq!(
            plan.gaps,
            [Gap {
                tli: TimeLineId::new(2).unwrap(),
                first: SegNo(3),
                last: SegNo(3)
            }]
        );
        let used: Vec<String> = plan.segments.iter().map(|s| s.name.to_string()).collect();
        assert!(
            !used.contains(&names[1]),
            "the old timeline's partial is not used: {used:?}"
        );
    }

    /// A first page of a 16 MiB segment `segno` of timeline 1: a long header, zeros after.
    fn first_page(segno: u64) -> Vec<u8> {
        let start = SegNo(segno).start_lsn(WalSegSize::DEFAULT).unwrap();
        let mut page = long_header(7, WalSegSize::DEFAULT.bytes(), 1, start);
        page.resize(8192, 0);
        page
    }

    #[test]
    fn the_segment_size_is_read_from_compressed_segments_too() {
        for method in [Compression::Gzip, Compression::Lz4, Compression::Zstd] {
            // Only compressed files, as `receive -Z` writes into an empty directory: a
            // complete segment, and a `.partial` a crash left unfinished.
            let complete = seg(1, 2).with_compression(Some(method)).to_string();
            let partial = seg(1, 3)
                .with_compression(Some(method))
                .partial()
                .to_string();
            let files: [(&str, &[u8]); 2] = [
                (&complete, &compressed(method, &first_page(2))),
                (&partial, &compressed_unfinished(method, &first_page(3))),
            ];
            let (fs, dir) = dir_with(&files);
            assert_eq!(
                detect_seg_size(&fs, &dir).unwrap(),
                Some(WalSegSize::DEFAULT),
                "{method}"
            );
            let (fs, dir) = dir_with(&files[1..]);
            assert_eq!(
                detect_seg_size(&fs, &dir).unwrap(),
                Some(WalSegSize::DEFAULT),
                "{method} .partial alone"
            );
        }
    }

    #[test]
    fn a_compressed_segment_that_does_not_decompress_is_passed_over() {
        let damaged = seg(1, 2)
            .with_compression(Some(Compression::Zstd))
            .to_string();
        let good = seg(1, 3)
            .with_compression(Some(Compression::Gzip))
            .to_string();
        let cut = seg(1, 4)
            .with_compression(Some(Compression::Lz4))
            .partial()
            .to_string();
        let mut garbage = compressed(Compression::Zstd, &first_page(2));
        garbage[..8].fill(0xAB);
        let (fs, dir) = dir_with(&[(&damaged, &garbage)]);
        assert_eq!(detect_seg_size(&fs, &dir).unwrap(), None);
        // A `.partial` cut before the end of its long header gives no evidence either.
        let short = compressed_unfinished(Compression::Lz4, &first_page(4)[..20]);
        let (fs, dir) = dir_with(&[(&damaged, &garbage), (&cut, &short)]);
        assert_eq!(detect_seg_size(&fs, &dir).unwrap(), None);
        let (fs, dir) = dir_with(&[
            (&damaged, &garbage),
            (&good, &compressed(Compression::Gzip, &first_page(3))),
            (&cut, &short),
        ]);
        assert_eq!(
            detect_seg_size(&fs, &dir).unwrap(),
            Some(WalSegSize::DEFAULT)
        );
    }

    #[test]
    fn damaged_history_files_are_named_and_do_not_choose_the_timeline() {
        let names = [seg(1, 2).to_string(), seg(1, 3).to_string()];
        let mut files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b""[..])).collect();
        // An empty file of timeline 2 and one of timeline 3 that does not parse.
        files.push(("00000002.history", b""));
        files.push(("00000003.history", b"1\tnot-a-position\tx\n"));
        let (fs, dir) = dir_with(&files);
        let plan = plan(&fs, &dir, WalSegSize::DEFAULT, None).unwrap();
        assert_eq!(plan.target, TimeLineId::ONE, "the newest readable timeline");
        assert_eq!(plan.segments.len(), 2);
        let damaged: Vec<String> = plan
            .damaged_histories
            .iter()
            .map(|e| match e {
                PlanError::BadHistory { path, .. } => path.display().to_string(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            damaged,
            ["/archive/00000002.history", "/archive/00000003.history"]
        );
        // Asked for explicitly, a timeline whose file is damaged is followed alone, and its
        // file is not also "missing".
        let plan = plan_of(&fs, &dir, 2);
        assert_eq!(plan.target.get(), 2);
        assert!(plan.history_found);
        assert!(plan.history.entries().is_empty());
    }

    fn plan_of(fs: &SimFs, dir: &Path, tli: u32) -> ArchivePlan {
        plan(
            fs,
            dir,
            WalSegSize::DEFAULT,
            Some(TimeLineId::new(tli).unwrap()),
        )
        .unwrap()
    }

    #[test]
    fn missing_history_is_reported_not_fatal() {
        let names = [seg(3, 9).to_string()];
        let files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b""[..])).collect();
        let (fs, dir) = dir_with(&files);
        let plan = plan(&fs, &dir, WalSegSize::DEFAULT, None).unwrap();
        assert_eq!(plan.target.get(), 3);
        assert!(!plan.history_found);
        assert_eq!(plan.segments.len(), 1);
    }
}
