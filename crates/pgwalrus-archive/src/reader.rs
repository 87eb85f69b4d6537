//! Reading archive files back, whatever their compression — what restore and verify use.
//!
//! * [`ArchiveStream`] — any archive file (a segment, complete or `.partial`, or a history
//!   file; plain, `.gz`, `.lz4` or `.zst`) by name, streamed: an [`io::Read`], or typed
//!   chunks with [`ArchiveStream::read_chunk`].
//! * [`read_file`] — the same, whole.
//! * [`SegmentReader`] — a segment with random access (by offset or range). A compressed
//!   segment is decompressed into memory when it is opened.
//! * [`read_segment`] — a segment, whole.
//!
//! # Damaged files
//!
//! A complete file (a segment under its final name, a history file) must decode whole: a
//! compressed stream that is cut short or damaged is [`Error::Decompress`]. A `.partial`
//! segment is what a crash may have cut: it gives every byte that decodes and ends there
//! ([`ArchiveStream::end`] says how). An uncompressed `.partial` is read as it is on disk —
//! pgwalrus and pg_receivewal make it one segment long, zeros after the last byte received.
//!
//! Decompression stops after one segment for segments and after [`MAX_HISTORY_BYTES`] for
//! history files; more is [`Error::Decompress`] with [`StreamEnd::OverLimit`].

use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

use pgwalrus_wal::names::{Compression, FileName, SegmentName};

use crate::compress::file::FileSource;
use crate::compress::{Decoder, StreamEnd};
use crate::error::{Error, Op, Result};
use crate::fs::{ArchiveFile, ArchiveFs};

/// The most a history file may decompress to: far more than any real one.
pub const MAX_HISTORY_BYTES: u64 = 64 << 20;

/// Read size of [`ArchiveStream::read_all`].
const CHUNK: usize = 64 * 1024;

/// An archive segment file open for reading, with random access.
#[derive(Debug)]
pub struct SegmentReader<Fi> {
    data: Data<Fi>,
    path: PathBuf,
    name: SegmentName,
    len: u64,
}

/// Where a [`SegmentReader`]'s bytes come from.
#[derive(Debug)]
enum Data<Fi> {
    /// An uncompressed file, read with `pread`.
    File(Fi),
    /// A compressed file, decompressed when it was opened.
    Memory(Vec<u8>),
}

impl<Fi: ArchiveFile> SegmentReader<Fi> {
    /// Opens the file `name` (complete or `.partial`, compressed or not, as the name says)
    /// in `dir`. A compressed file is decompressed here, whole (see the
    /// [module documentation](self) for damaged files).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] with [`Op::Open`] (a missing file shows in [`Error::is_not_found`]),
    /// [`Op::Stat`] or [`Op::Read`]; [`Error::Decompress`] for a damaged complete file or
    /// one that decompresses to more than a segment.
    pub fn open<F>(fs: &F, dir: &Path, name: SegmentName) -> Result<Self>
    where
        F: ArchiveFs<File = Fi>,
    {
        let path = dir.join(name.to_string());
        if name.compression().is_some() {
            let data = ArchiveStream::open(fs, dir, &FileName::Segment(name))?.read_all()?;
            return Ok(SegmentReader {
                len: data.len() as u64,
                data: Data::Memory(data),
                path,
                name,
            });
        }
        let file = fs.open_read(&path).map_err(Error::at(Op::Open, &path))?;
        let len = file.size().map_err(Error::at(Op::Stat, &path))?;
        Ok(SegmentReader {
            data: Data::File(file),
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

    /// The length of the segment's content when it was opened: for an uncompressed file its
    /// length on disk (a complete segment is one segment long; so is a `.partial` written by
    /// pgwalrus or pg_receivewal, with zeros after the last byte received), for a
    /// compressed one what it decompresses to.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// `true` when there is no content.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Fills `buf` from `offset` of the content.
    ///
    /// # Errors
    ///
    /// [`Error::ReadPastEnd`] if the content ends first; [`Error::Io`] with [`Op::Read`].
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
        let file = match &self.data {
            Data::File(file) => file,
            Data::Memory(data) => {
                let from = usize::try_from(offset).map_err(|_| past_end())?;
                let bytes = data.get(from..from + buf.len()).ok_or_else(past_end)?;
                buf.copy_from_slice(bytes);
                return Ok(());
            }
        };
        let n = file
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

    /// The bytes in `range` (offsets in the content).
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

    /// The whole content.
    ///
    /// # Errors
    ///
    /// As for [`SegmentReader::read_exact_at`].
    pub fn read_all(&self) -> Result<Vec<u8>> {
        self.read_range(0..self.len)
    }
}

/// Reads the whole segment file `name` in `dir`, decompressed.
///
/// # Errors
///
/// As for [`ArchiveStream::open`] and [`ArchiveStream::read_all`].
pub fn read_segment<F: ArchiveFs>(fs: &F, dir: &Path, name: SegmentName) -> Result<Vec<u8>> {
    read_file(fs, dir, &FileName::Segment(name))
}

/// Reads the whole archive file `name` in `dir`, decompressed.
///
/// # Errors
///
/// As for [`ArchiveStream::open`] and [`ArchiveStream::read_all`].
pub fn read_file<F: ArchiveFs>(fs: &F, dir: &Path, name: &FileName) -> Result<Vec<u8>> {
    ArchiveStream::open(fs, dir, name)?.read_all()
}

/// Any archive file, open for reading its content from the start, decompressed as it goes.
/// See the [module documentation](self).
///
/// ```
/// use std::io::Read as _;
/// use pgwalrus_archive::{ArchiveStream, SimFs};
/// use pgwalrus_archive::compress::Encoder;
/// use pgwalrus_wal::WalSegSize;
/// use pgwalrus_wal::names::{Compression, FileName};
///
/// let fs = SimFs::new();
/// fs.create_dir("/archive");
/// let mut e = Encoder::new(Compression::Gzip, 6)?;
/// e.write(b"1\t0/3000000\tno recovery target specified\n")?;
/// e.finish()?;
/// fs.put_file("/archive/00000002.history.gz", e.output());
///
/// let name = FileName::parse("00000002.history.gz", WalSegSize::DEFAULT)?;
/// let mut text = String::new();
/// ArchiveStream::open(&fs, "/archive".as_ref(), &name)?.read_to_string(&mut text)?;
/// assert!(text.starts_with("1\t0/3000000"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ArchiveStream<Fi: ArchiveFile> {
    source: Source<Fi>,
    path: PathBuf,
    name: FileName,
    /// A `.partial` segment: decoding may stop anywhere.
    tolerant: bool,
    limit: u64,
    read: u64,
    end: Option<StreamEnd>,
}

enum Source<Fi: ArchiveFile> {
    Plain(FileSource<Fi>),
    Compressed(Box<Decoder<FileSource<Fi>>>),
}

impl<Fi: ArchiveFile> std::fmt::Debug for ArchiveStream<Fi> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArchiveStream")
            .field("path", &self.path)
            .field("read", &self.read)
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

impl<Fi: ArchiveFile> ArchiveStream<Fi> {
    /// Opens the archive file `name` in `dir`. Backup history files are read like history
    /// files.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] with [`Op::Open`] (a missing file shows in [`Error::is_not_found`]);
    /// [`Error::Compress`] if the decompressor cannot be set up.
    pub fn open<F>(fs: &F, dir: &Path, name: &FileName) -> Result<Self>
    where
        F: ArchiveFs<File = Fi>,
    {
        let path = dir.join(name.to_string());
        let file = fs.open_read(&path).map_err(Error::at(Op::Open, &path))?;
        let source = FileSource::new(file);
        let source = match name.compression() {
            None => Source::Plain(source),
            Some(method) => {
                Source::Compressed(Box::new(Decoder::new(method, source).map_err(|e| {
                    Error::Compress {
                        path: path.clone(),
                        compression: method,
                        source: e,
                    }
                })?))
            }
        };
        let limit = match name {
            FileName::Segment(s) => s.seg_size().as_u64(),
            FileName::History(_) | FileName::BackupHistory(_) => MAX_HISTORY_BYTES,
        };
        Ok(ArchiveStream {
            source,
            path,
            name: *name,
            tolerant: name.is_partial(),
            limit,
            read: 0,
            end: None,
        })
    }

    /// The file's name.
    pub fn name(&self) -> &FileName {
        &self.name
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many content bytes were read so far.
    pub fn bytes_read(&self) -> u64 {
        self.read
    }

    /// How the content ended, once the end was reached: [`StreamEnd::Finished`] for an
    /// uncompressed file and a whole compressed stream, [`StreamEnd::Truncated`] or
    /// [`StreamEnd::Corrupt`] for a compressed `.partial` a crash cut short.
    pub fn end(&self) -> Option<&StreamEnd> {
        self.end.as_ref()
    }

    /// Reads the next content bytes into `buf`; `Ok(0)` at the end.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] with [`Op::Read`]; [`Error::Decompress`] when a file that must decode
    /// whole does not, or the content exceeds the limit.
    pub fn read_chunk(&mut self, buf: &mut [u8]) -> Result<usize> {
        if self.end.is_some() || buf.is_empty() {
            return Ok(0);
        }
        let got = match &mut self.source {
            Source::Plain(file) => {
                let n = io::Read::read(file, buf).map_err(Error::at(Op::Read, &self.path))?;
                Ok(n)
            }
            Source::Compressed(decoder) => decoder
                .read_classified(buf)
                .map_err(Error::at(Op::Read, &self.path))?,
        };
        let n = match got {
            Ok(0) => {
                self.end = Some(StreamEnd::Finished);
                return Ok(0);
            }
            Ok(n) => n,
            Err(end) => {
                if !self.tolerant {
                    return Err(self.decompress_error(end));
                }
                self.end = Some(end);
                return Ok(0);
            }
        };
        if self.name.compression().is_some() && self.read + n as u64 > self.limit {
            return Err(self.decompress_error(StreamEnd::OverLimit));
        }
        self.read += n as u64;
        Ok(n)
    }

    /// The rest of the content.
    ///
    /// # Errors
    ///
    /// As for [`ArchiveStream::read_chunk`].
    pub fn read_all(mut self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = self.read_chunk(&mut buf)?;
            if n == 0 {
                return Ok(out);
            }
            out.extend_from_slice(buf.get(..n).unwrap_or_default());
        }
    }

    fn decompress_error(&self, problem: StreamEnd) -> Error {
        Error::Decompress {
            path: self.path.clone(),
            compression: self.name.compression().unwrap_or(Compression::Gzip),
            at: self.read,
            problem,
        }
    }
}

impl<Fi: ArchiveFile> io::Read for ArchiveStream<Fi> {
    /// [`ArchiveStream::read_chunk`]; an [`Error`] becomes an `io::Error` of the same kind
    /// for I/O failures and `InvalidData` for damaged content, with the [`Error`] inside.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_chunk(buf).map_err(|e| {
            let kind = e
                .io_error()
                .map_or(io::ErrorKind::InvalidData, io::Error::kind);
            io::Error::new(kind, e)
        })
    }
}

#[cfg(test)]
mod tests;
