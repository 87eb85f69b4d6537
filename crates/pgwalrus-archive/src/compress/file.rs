//! Compressed archive files on an [`ArchiveFs`]: a positional reader over an open file, and
//! the questions the archive asks of a compressed file — how much WAL it holds, and what its
//! first bytes are.

use std::borrow::Borrow;
use std::io;
use std::marker::PhantomData;
use std::path::Path;

use pgwalrus_wal::names::Compression;

use super::decode::{Held, decode};
use crate::error::{Error, Op, Result};
use crate::fs::{ArchiveFile, ArchiveFs};

/// An `io::Read` over an [`ArchiveFile`] (owned, or borrowed as `&Fi`), from offset 0, with
/// positional reads (`pread`).
#[derive(Debug)]
pub(crate) struct FileSource<Fi, H = Fi> {
    file: H,
    pos: u64,
    _file: PhantomData<fn() -> Fi>,
}

impl<Fi: ArchiveFile, H: Borrow<Fi>> FileSource<Fi, H> {
    pub(crate) fn new(file: H) -> Self {
        FileSource {
            file,
            pos: 0,
            _file: PhantomData,
        }
    }
}

impl<Fi: ArchiveFile, H: Borrow<Fi>> io::Read for FileSource<Fi, H> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.file.borrow().read_at(buf, self.pos) {
                Ok(n) => {
                    self.pos += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Decodes the compressed file at `path` as far as it goes, up to `limit` bytes, handing
/// the bytes to `sink`.
///
/// # Errors
///
/// [`Error::Io`] opening ([`Op::Open`]) or reading ([`Op::Read`]) the file, or setting up
/// the decompressor ([`Op::Read`] too: it happens on the way to reading).
pub(crate) fn decode_file<F: ArchiveFs>(
    fs: &F,
    path: &Path,
    method: Compression,
    limit: u64,
    sink: impl FnMut(&[u8]),
) -> Result<Held> {
    let file = fs.open_read(path).map_err(Error::at(Op::Open, path))?;
    decode(
        method,
        FileSource::<F::File, &F::File>::new(&file),
        limit,
        sink,
    )
    .map_err(Error::at(Op::Read, path))
}

/// How many bytes the compressed file at `path` holds, decoded as far as it goes (at most
/// `limit`), and how its stream ends.
///
/// # Errors
///
/// As for [`decode_file`].
pub(crate) fn held_in_file<F: ArchiveFs>(
    fs: &F,
    path: &Path,
    method: Compression,
    limit: u64,
) -> Result<Held> {
    decode_file(fs, path, method, limit, |_| {})
}

/// The first `n` decoded bytes of the compressed file at `path` (fewer if it holds fewer),
/// and how decoding ended.
///
/// # Errors
///
/// As for [`decode_file`].
pub(crate) fn prefix_of_file<F: ArchiveFs>(
    fs: &F,
    path: &Path,
    method: Compression,
    n: usize,
) -> Result<(Vec<u8>, Held)> {
    let mut bytes = Vec::with_capacity(n);
    let held = decode_file(fs, path, method, n as u64, |b| bytes.extend_from_slice(b))?;
    Ok((bytes, held))
}
