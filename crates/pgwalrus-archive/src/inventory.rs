//! What an archive directory holds, listed once and parsed once with the one grammar of
//! file names ([`pgwalrus_wal::names`]): segments (complete and `.partial`, any
//! compression), timeline history files, our temporary files. The resume scan, the segment
//! size detection, the plan of a walk, restore's look-around and the receive loop all read
//! the archive through an [`Inventory`] instead of each listing the directory its own way.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use pgwalrus_wal::names::{FileName, HistoryName, NameError, SegmentName};
use pgwalrus_wal::{TimeLineId, WalSegSize};

use crate::error::{Error, Op, Result};
use crate::fs::ArchiveFs;

/// One listing of an archive directory, in name order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Inventory {
    dir: PathBuf,
    /// Segment files, complete and `.partial`, plain and compressed; no temporary files.
    pub segments: Vec<SegmentName>,
    /// Timeline history files, plain and compressed; no temporary files.
    pub histories: Vec<HistoryName>,
    /// Our temporary files (names ending in `.tmp`).
    pub temps: Vec<FileName>,
    /// Names shaped like segment names whose segment number cannot exist at the segment
    /// size listed for (written by a cluster with another segment size), with why.
    pub out_of_range: Vec<(OsString, NameError)>,
    /// Names that are WAL file names only once their hex digits are upper case
    /// (`000000010000000000000a0b`), with the name they spell. PostgreSQL
    /// (`IsXLogFileName`), pg_receivewal and pgwalrus read only upper-case names, so such a
    /// file is never used: a copy made by hand, or one that collides with the real file on a
    /// case-insensitive file system.
    pub misspelled: Vec<(OsString, FileName)>,
}

impl Inventory {
    /// Lists `dir`, parsing names at segment size `seg_size`. When the size is not known
    /// yet, list at [`WalSegSize::MIN`]: a name valid at any size is valid at the smallest
    /// (larger sizes allow fewer segment numbers, never more).
    ///
    /// # Errors
    /// [`Error::Io`] listing the directory.
    pub fn list<F: ArchiveFs>(fs: &F, dir: &Path, seg_size: WalSegSize) -> Result<Inventory> {
        let names = fs.list_dir(dir).map_err(Error::at(Op::ListDir, dir))?;
        Ok(Inventory::from_names(dir, names, seg_size))
    }

    /// The inventory of a directory `dir` holding the files `names` (in any order), parsed
    /// at segment size `seg_size`: [`list`](Inventory::list) without the file system, for
    /// a listing made elsewhere (and for fuzzing the one grammar over whole listings).
    pub fn from_names(
        dir: &Path,
        names: impl IntoIterator<Item = OsString>,
        seg_size: WalSegSize,
    ) -> Inventory {
        let mut names: Vec<OsString> = names.into_iter().collect();
        names.sort();
        let mut inventory = Inventory {
            dir: dir.to_path_buf(),
            ..Inventory::default()
        };
        for os_name in names {
            // Names that are not UTF-8 are not WAL file names.
            let Some(text) = os_name.to_str() else {
                continue;
            };
            match FileName::parse(text, seg_size) {
                Ok(name) if name.is_temporary() => inventory.temps.push(name),
                Ok(FileName::Segment(segment)) => inventory.segments.push(segment),
                Ok(FileName::History(history)) => inventory.histories.push(history),
                Ok(FileName::BackupHistory(_)) => {}
                Err(
                    e @ (NameError::SegmentOutOfRange { .. }
                    | NameError::BackupOffsetOutOfRange { .. }),
                ) => inventory.out_of_range.push((os_name, e)),
                Err(_) => {
                    if let Some(name) = upper_case_spelling(text, seg_size) {
                        inventory.misspelled.push((os_name, name));
                    }
                }
            }
        }
        inventory
    }

    /// The directory listed.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of a file of this directory.
    pub fn path(&self, name: impl Into<FileName>) -> PathBuf {
        self.dir.join(name.into().to_string())
    }

    /// The history file of `tli`, plain if there is one, else compressed (`pg_receivewal -Z
    /// gzip` writes `00000002.history.gz`).
    pub fn history(&self, tli: TimeLineId) -> Option<HistoryName> {
        self.histories
            .iter()
            .filter(|h| h.tli() == tli)
            .min_by_key(|h| h.compression().is_some())
            .copied()
    }
}

/// The file name `text` spells with its leading hex digits in upper case, when that is a
/// WAL file name and `text` is not.
fn upper_case_spelling(text: &str, seg_size: WalSegSize) -> Option<FileName> {
    let digits = text.bytes().take_while(u8::is_ascii_hexdigit).count();
    let (hex, rest) = text.split_at(digits);
    if !hex.bytes().any(|b| b.is_ascii_lowercase()) {
        return None;
    }
    FileName::parse(&format!("{}{rest}", hex.to_ascii_uppercase()), seg_size).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::SimFs;

    #[test]
    fn one_listing_sorts_every_kind_of_name_once() {
        let fs = SimFs::new();
        let dir = Path::new("/a");
        fs.create_dir(dir);
        for name in [
            "000000010000000000000002.zst",
            "000000010000000000000001",
            "000000010000000000000003.partial",
            "00000002.history.gz",
            "00000003.history",
            "00000003.history.gz",
            "000000010000000000000004.tmp",
            "000000010000000000000001.00000028.backup",
            // Segment 0x100 of log 0 exists only with segments smaller than 16 MiB.
            "000000010000000000000100",
            "notes.txt",
            // Lower-case hex: not WAL file names, whatever they spell.
            "00000001000000000000000b",
            "0000000a.history",
            "deadbeef",
        ] {
            fs.put_file(dir.join(name), b"");
        }
        let inv = Inventory::list(&fs, dir, WalSegSize::DEFAULT).unwrap();
        let names = |v: &[SegmentName]| v.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(
            names(&inv.segments),
            [
                "000000010000000000000001",
                "000000010000000000000002.zst",
                "000000010000000000000003.partial"
            ]
        );
        assert_eq!(inv.histories.len(), 3);
        assert_eq!(inv.temps.len(), 1);
        assert_eq!(inv.out_of_range.len(), 1);
        let misspelled: Vec<(String, String)> = inv
            .misspelled
            .iter()
            .map(|(os, name)| (os.to_string_lossy().into_owned(), name.to_string()))
            .collect();
        assert_eq!(
            misspelled,
            [
                (
                    "00000001000000000000000b".to_owned(),
                    "00000001000000000000000B".to_owned()
                ),
                ("0000000a.history".to_owned(), "0000000A.history".to_owned())
            ]
        );
        let two = TimeLineId::new(2).unwrap();
        let three = TimeLineId::new(3).unwrap();
        assert_eq!(inv.history(two).unwrap().to_string(), "00000002.history.gz");
        assert_eq!(inv.history(three).unwrap().to_string(), "00000003.history");
        assert_eq!(inv.history(TimeLineId::ONE), None);
        assert_eq!(
            inv.path(inv.segments[0]),
            Path::new("/a/000000010000000000000001")
        );
        // At the smallest size the long name is a segment like any other.
        let small = Inventory::list(&fs, dir, WalSegSize::MIN).unwrap();
        assert_eq!(small.segments.len(), 4);
        assert!(small.out_of_range.is_empty());
    }
}
