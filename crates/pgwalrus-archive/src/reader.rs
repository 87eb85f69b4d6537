//! Reading archive segments back: an uncompressed segment or `.partial`, by name, whole or
//! by byte range. (Compressed segments come with compression.)

use std::ops::Range;
use std::path::{Path, PathBuf};

use pgwalrus_wal::names::SegmentName;

use crate::error::{Error, Op, Result};
use crate::fs::{ArchiveFile, ArchiveFs};

/// An archive segment file open for reading.
#[derive(Debug)]
pub struct SegmentReader<Fi> {
    file: Fi,
    path: PathBuf,
    name: SegmentName,
    len: u64,
}

impl<Fi: ArchiveFile> SegmentReader<Fi> {
    /// Opens the file `name` (complete or `.partial`, as the name says) in `dir`.
    ///
    /// # Errors
    ///
    /// [`Error::Compressed`] for a compressed name; [`Error::Io`] with [`Op::Open`] (a
    /// missing file shows in [`Error::is_not_found`]) or [`Op::Stat`].
    pub fn open<F>(fs: &F, dir: &Path, name: SegmentName) -> Result<Self>
    where
        F: ArchiveFs<File = Fi>,
    {
        let path = dir.join(name.to_string());
        if let Some(compression) = name.compression() {
            return Err(Error::Compressed { path, compression });
        }
        let file = fs.open_read(&path).map_err(Error::at(Op::Open, &path))?;
        let len = file.size().map_err(Error::at(Op::Stat, &path))?;
        Ok(SegmentReader {
            file,
            path,
            name,
            len,
        })
    }

    /// The file's name.
    pub fn name(&self) -> SegmentName {
        self.name
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's length when it was opened. A complete segment is one segment long; a
    /// `.partial` written by pgwalrus or pg_receivewal is too, with zeros after the last
    /// byte received.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// `true` for an empty file.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Fills `buf` from `offset`.
    ///
    /// # Errors
    ///
    /// [`Error::ReadPastEnd`] if the file ends first; [`Error::Io`] with [`Op::Read`].
    pub fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let past_end = || Error::ReadPastEnd {
            path: self.path.clone(),
            offset,
            len: buf.len() as u64,
            file_len: self.len,
        };
        let end = offset.checked_add(buf.len() as u64);
        if end.is_none_or(|end| end > self.len) {
            return Err(past_end());
        }
        let n = self
            .file
            .read_full_at(buf, offset)
            .map_err(Error::at(Op::Read, &self.path))?;
        if n < buf.len() {
            // The file shrank since it was opened.
            return Err(Error::ReadPastEnd {
                path: self.path.clone(),
                offset,
                len: buf.len() as u64,
                file_len: offset + n as u64,
            });
        }
        Ok(())
    }

    /// The bytes in `range` (offsets in the file).
    ///
    /// # Errors
    ///
    /// As for [`SegmentReader::read_exact_at`]; an empty or reversed range gives no bytes.
    pub fn read_range(&self, range: Range<u64>) -> Result<Vec<u8>> {
        let len = usize::try_from(range.end.saturating_sub(range.start)).map_err(|_| {
            Error::ReadPastEnd {
                path: self.path.clone(),
                offset: range.start,
                len: range.end - range.start,
                file_len: self.len,
            }
        })?;
        let mut buf = vec![0; len];
        self.read_exact_at(range.start, &mut buf)?;
        Ok(buf)
    }

    /// The whole file.
    ///
    /// # Errors
    ///
    /// As for [`SegmentReader::read_exact_at`].
    pub fn read_all(&self) -> Result<Vec<u8>> {
        self.read_range(0..self.len)
    }
}

/// Reads the whole segment file `name` in `dir`.
///
/// # Errors
///
/// As for [`SegmentReader::open`] and [`SegmentReader::read_all`].
pub fn read_segment<F: ArchiveFs>(fs: &F, dir: &Path, name: SegmentName) -> Result<Vec<u8>> {
    SegmentReader::open(fs, dir, name)?.read_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::SimFs;
    use crate::test_support::{DIR, SEG, dir_path, seg_name};
    use pgwalrus_wal::names::Compression;

    #[test]
    fn reads_complete_and_partial_segments_whole_and_by_range() {
        let fs = SimFs::new();
        fs.create_dir(DIR);
        let complete = seg_name(1, 1);
        let data: Vec<u8> = (0..SEG.as_u64()).map(|i| (i % 251) as u8).collect();
        fs.put_file(dir_path(&complete.to_string()), &data);
        let partial = seg_name(1, 2).partial();
        fs.put_file(dir_path(&partial.to_string()), b"abcdef");

        assert_eq!(read_segment(&fs, Path::new(DIR), complete).unwrap(), data);
        let r = SegmentReader::open(&fs, Path::new(DIR), partial).unwrap();
        assert_eq!(r.len(), 6);
        assert!(!r.is_empty());
        assert_eq!(r.name(), partial);
        assert!(r.path().ends_with("000000010000000000000002.partial"));
        assert_eq!(r.read_range(2..5).unwrap(), b"cde");
        let (from, to) = (5, 2);
        assert_eq!(r.read_range(from..to).unwrap(), b"");
        let mut buf = [0u8; 2];
        r.read_exact_at(4, &mut buf).unwrap();
        assert_eq!(&buf, b"ef");
    }

    #[test]
    fn past_end_missing_and_compressed_are_typed_errors() {
        let fs = SimFs::new();
        fs.create_dir(DIR);
        let partial = seg_name(1, 2).partial();
        fs.put_file(dir_path(&partial.to_string()), b"abc");
        let r = SegmentReader::open(&fs, Path::new(DIR), partial).unwrap();
        let e = r.read_range(1..10).unwrap_err();
        assert!(
            matches!(
                e,
                Error::ReadPastEnd {
                    offset: 1,
                    len: 9,
                    file_len: 3,
                    ..
                }
            ),
            "{e}"
        );
        let e = read_segment(&fs, Path::new(DIR), seg_name(1, 9)).unwrap_err();
        assert!(e.is_not_found(), "{e}");
        assert!(e.to_string().contains("000000010000000000000009"), "{e}");
        let gz = seg_name(1, 2).with_compression(Some(Compression::Gzip));
        let e = read_segment(&fs, Path::new(DIR), gz).unwrap_err();
        assert!(matches!(e, Error::Compressed { .. }), "{e}");
    }
}
