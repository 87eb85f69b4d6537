//! What PostgreSQL asks `restore_command` for (`%f`) and which archive file serves it: the
//! plain name first, then its compressed forms, then (for segments) its `.partial` forms —
//! or why there is none, told apart into "not in the archive" (recovery may move on) and "a
//! hole in the archive" (recovery must not end there).
//!
//! The usual case — a complete segment under one of its four names — costs a few `stat`s;
//! the directory is listed only when the file is not there, to see what is around it.
//!
//! Names are parsed at the smallest segment size before the real one is known (it is read
//! from the file's first page later): that keeps their text and their order (within a
//! timeline, names sort in WAL order at every segment size), which is all this module uses.

use std::io;
use std::path::Path;

use pgwalrus_archive::{ArchiveFs, Inventory};
use pgwalrus_wal::WalSegSize;
use pgwalrus_wal::names::{Compression, FileName, HistoryName, SegmentName};

/// Compression forms in the order they are tried: plain first.
pub(crate) const FORMS: [Option<Compression>; 4] = [
    None,
    Some(Compression::Gzip),
    Some(Compression::Lz4),
    Some(Compression::Zstd),
];

/// The file asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Request {
    /// A WAL segment, plain form, parsed at the smallest segment size.
    Segment(SegmentName),
    /// A timeline history file, plain form.
    History(HistoryName),
    /// A backup history file (PostgreSQL does not ask for these during recovery; served as
    /// they are if asked).
    BackupHistory(FileName),
}

/// Reads `%f`.
///
/// # Errors
/// A message when `file` is not a name PostgreSQL asks `restore_command` for.
pub(crate) fn parse_request(file: &str) -> Result<Request, String> {
    let name = FileName::parse(file, WalSegSize::MIN).map_err(|e| e.to_string())?;
    if name.is_temporary() || name.is_partial() || name.compression().is_some() {
        return Err(format!(
            "{file:?} is not a name PostgreSQL asks restore_command for: expected a plain segment or history file name (%f)"
        ));
    }
    Ok(match name {
        FileName::Segment(s) => Request::Segment(s),
        FileName::History(h) => Request::History(h),
        FileName::BackupHistory(_) => Request::BackupHistory(name),
    })
}

/// The complete forms of a segment name (plain, `.gz`, `.lz4`, `.zst`).
pub(crate) fn complete_forms(name: SegmentName) -> impl Iterator<Item = SegmentName> {
    let plain = name.plain();
    FORMS.into_iter().map(move |c| plain.with_compression(c))
}

/// The `.partial` forms of a segment name.
pub(crate) fn partial_forms(name: SegmentName) -> impl Iterator<Item = SegmentName> {
    complete_forms(name).map(SegmentName::partial)
}

/// The forms of a history file name.
pub(crate) fn history_forms(name: HistoryName) -> impl Iterator<Item = HistoryName> {
    FORMS.into_iter().map(move |c| name.with_compression(c))
}

/// Whether `dir/name` exists. `Err` for anything but "no such file" (permissions, I/O):
/// an archive that cannot be read must not look like one that lacks the file.
pub(crate) fn exists<F: ArchiveFs>(fs: &F, dir: &Path, name: &FileName) -> io::Result<bool> {
    match fs.file_len(&dir.join(name.to_string())) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// The first of `names` that exists in `dir`.
pub(crate) fn first_existing<F: ArchiveFs>(
    fs: &F,
    dir: &Path,
    names: impl IntoIterator<Item = FileName>,
) -> io::Result<Option<FileName>> {
    for name in names {
        if exists(fs, dir, &name)? {
            return Ok(Some(name));
        }
    }
    Ok(None)
}

/// Where a segment is, or why it is not served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Found {
    /// The file to serve (complete, or `.partial` when allowed).
    File(SegmentName),
    /// The archive does not have the segment; the text says what was looked for and what
    /// is there instead.
    Missing(String),
    /// The segment is missing (or only its `.partial` is there) between segments the
    /// archive has: recovery ending here would silently drop the WAL after the hole.
    Hole(String),
}

/// Looks for segment `wanted` (plain form) in `dir`.
///
/// # Errors
/// The I/O error of a `stat` or of listing the directory.
pub(crate) fn segment<F: ArchiveFs>(
    fs: &F,
    dir: &Path,
    wanted: SegmentName,
    serve_partial: bool,
) -> io::Result<Found> {
    if let Some(FileName::Segment(name)) =
        first_existing(fs, dir, complete_forms(wanted).map(FileName::Segment))?
    {
        return Ok(Found::File(name));
    }
    let partial = first_existing(fs, dir, partial_forms(wanted).map(FileName::Segment))?
        .and_then(|n| n.as_segment().copied());
    let around = Around::scan(fs, dir, wanted)?;
    let shown = dir.display();
    if let Some(partial) = partial {
        if let Some(later) = around.later_same_timeline {
            return Ok(Found::Hole(format!(
                "only {partial} is in the archive \"{shown}\", but {later} follows it on timeline {}: the WAL between them is missing",
                wanted.tli()
            )));
        }
        if serve_partial {
            return Ok(Found::File(partial));
        }
        return Ok(Found::Missing(format!(
            "{wanted} is not complete in the archive \"{shown}\": only {partial} is there, the newest segment of timeline {}, and --partial is not set",
            wanted.tli()
        )));
    }
    if let (Some(earlier), Some(later)) = (around.earlier, around.later_same_timeline) {
        return Ok(Found::Hole(format!(
            "{wanted} is missing from the archive \"{shown}\", which has {earlier} before it and {later} after it on timeline {}: the WAL of the missing segment is lost",
            wanted.tli()
        )));
    }
    Ok(Found::Missing(format!(
        "{wanted} is not in the archive \"{shown}\" (no {wanted}, .gz, .lz4, .zst{})",
        if serve_partial {
            " or .partial form"
        } else {
            ""
        }
    )))
}

/// What the archive has around a missing segment.
#[derive(Debug, Default)]
struct Around {
    /// The newest segment before it, on its timeline or an older one.
    earlier: Option<SegmentName>,
    /// The oldest segment after it on its timeline.
    later_same_timeline: Option<SegmentName>,
}

impl Around {
    fn scan<F: ArchiveFs>(fs: &F, dir: &Path, wanted: SegmentName) -> io::Result<Around> {
        let mut around = Around::default();
        // Listed at the smallest segment size: a name valid at any size is valid there.
        let inventory = Inventory::list(fs, dir, WalSegSize::MIN).map_err(|e| match e {
            // Keep the kind: restore's caller decides on it.
            pgwalrus_archive::Error::Io { source, .. } => source,
            other => io::Error::other(other),
        })?;
        for &name in &inventory.segments {
            if name.tli() == wanted.tli()
                && name.segno() > wanted.segno()
                && around
                    .later_same_timeline
                    .is_none_or(|l| name.segno() < l.segno())
            {
                around.later_same_timeline = Some(name);
            }
            if name.tli() <= wanted.tli()
                && name.segno() < wanted.segno()
                && around.earlier.is_none_or(|e| name.segno() > e.segno())
            {
                around.earlier = Some(name);
            }
        }
        Ok(around)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgwalrus_archive::SimFs;
    use std::path::PathBuf;

    fn archive(names: &[&str]) -> (SimFs, PathBuf) {
        let fs = SimFs::new();
        let dir = PathBuf::from("/archive");
        fs.create_dir(&dir);
        for name in names {
            fs.put_file(dir.join(name), b"x");
        }
        (fs, dir)
    }

    fn seg(text: &str) -> SegmentName {
        match parse_request(text) {
            Ok(Request::Segment(s)) => s,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn requests_are_plain_wal_names_only() {
        assert!(matches!(
            parse_request("00000002.history"),
            Ok(Request::History(_))
        ));
        assert!(matches!(
            parse_request("000000010000000000000003"),
            Ok(Request::Segment(_))
        ));
        for bad in [
            "000000010000000000000003.gz",
            "000000010000000000000003.partial",
            "00000002.history.tmp",
            "RECOVERYXLOG",
            "",
        ] {
            assert!(parse_request(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn plain_beats_compressed_and_complete_beats_partial() {
        let (fs, dir) = archive(&[
            "000000010000000000000003.zst",
            "000000010000000000000003",
            "000000010000000000000004.partial",
            "000000010000000000000004.lz4",
        ]);
        let found = segment(&fs, &dir, seg("000000010000000000000003"), true).unwrap();
        assert_eq!(found, Found::File(seg("000000010000000000000003")));
        let Found::File(name) = segment(&fs, &dir, seg("000000010000000000000004"), true).unwrap()
        else {
            panic!()
        };
        assert_eq!(name.to_string(), "000000010000000000000004.lz4");
    }

    #[test]
    fn a_newest_partial_is_served_only_with_partial() {
        let (fs, dir) = archive(&[
            "000000010000000000000003",
            "000000010000000000000004.gz.partial",
        ]);
        let wanted = seg("000000010000000000000004");
        let Found::File(name) = segment(&fs, &dir, wanted, true).unwrap() else {
            panic!()
        };
        assert_eq!(name.to_string(), "000000010000000000000004.gz.partial");
        let Found::Missing(text) = segment(&fs, &dir, wanted, false).unwrap() else {
            panic!()
        };
        assert!(text.contains("--partial"), "{text}");
    }

    #[test]
    fn holes_and_partials_followed_by_later_segments_are_told_apart_from_the_end() {
        let (fs, dir) = archive(&[
            "000000010000000000000003",
            "000000010000000000000005.partial",
            "000000010000000000000006",
            "000000020000000000000006",
        ]);
        assert!(matches!(
            segment(&fs, &dir, seg("000000010000000000000004"), true).unwrap(),
            Found::Hole(_)
        ));
        assert!(matches!(
            segment(&fs, &dir, seg("000000010000000000000005"), true).unwrap(),
            Found::Hole(_)
        ));
        // The end of the archive, and segments before its start, are simply missing.
        assert!(matches!(
            segment(&fs, &dir, seg("000000010000000000000007"), true).unwrap(),
            Found::Missing(_)
        ));
        assert!(matches!(
            segment(&fs, &dir, seg("000000010000000000000002"), true).unwrap(),
            Found::Missing(_)
        ));
        // Timeline 2 has nothing after segment 6: its segment 7 is the end, not a hole.
        assert!(matches!(
            segment(&fs, &dir, seg("000000020000000000000007"), true).unwrap(),
            Found::Missing(_)
        ));
    }
}
