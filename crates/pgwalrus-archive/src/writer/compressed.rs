//! The compressed segment the [`ArchiveWriter`](super::ArchiveWriter) is writing: a
//! streaming [`Encoder`] in front of a [`CompressedFile`], and the rule that decides when
//! the file may take the segment's `.partial` name.
//!
//! # The rule
//!
//! The file is written under its temporary name. It takes the name `NAME.c.partial` —
//! replacing the `.partial` an earlier run left for the segment, if any — only at a sync
//! point where it holds, durably, at least as many WAL bytes as that old file held when the
//! segment was opened ([`CompressedSegment::sync`]). Until then the old file is untouched,
//! and the flush position does not move into the segment: after a crash the old file is
//! still there with everything it had, and the temporary file is deleted. From then on,
//! every sync point flushes the compressor to a decodable boundary and fsyncs, so after a
//! crash the file decodes to at least the flush position reported.
//!
//! Any failure leaves the encoder and the file out of step (the compressor has consumed
//! input whose output may not be on disk), so the writer poisons itself on every error
//! from here, whatever the operation.

use std::path::Path;

use pgwalrus_wal::WalSegSize;
use pgwalrus_wal::names::{Compression, SegmentName};

use crate::compress::file::held_in_file;
use crate::compress::{Encoder, StreamEnd};
use crate::durable::{self, CompressedFile, Durability};
use crate::error::{Error, Op, Result};
use crate::fs::{ArchiveFile, ArchiveFs};

/// A compressed segment being written. See the [module documentation](self).
#[derive(Debug)]
pub(super) struct CompressedSegment<Fi> {
    file: CompressedFile<Fi>,
    encoder: Encoder,
    /// The file's length: where the next compressed bytes go.
    file_len: u64,
    /// WAL bytes of the segment given to the encoder.
    fed: u64,
    /// WAL bytes the segment's old `.partial` held when this one was opened (0 if none).
    replaces: u64,
}

impl<Fi: ArchiveFile> CompressedSegment<Fi> {
    /// Opens segment `name` (any form) for writing from its first byte as
    /// `NAME.c.partial`, compressed with `method` at `level`. Reads how much the segment's
    /// existing `NAME.c.partial` holds, if there is one, and creates the new file under
    /// its temporary name; the old file is not changed.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] reading the old file or creating the new one (nothing changed);
    /// [`Error::Decompress`] when the old file decodes to more than a segment;
    /// [`Error::Compress`] when the compressor cannot be set up.
    pub(super) fn open<F: ArchiveFs<File = Fi>>(
        fs: &F,
        dir: &Path,
        name: SegmentName,
        method: Compression,
        level: i32,
        seg_size: WalSegSize,
    ) -> Result<Self> {
        let partial = name
            .not_temporary()
            .with_compression(Some(method))
            .partial();
        let partial_path = dir.join(partial.to_string());
        let replaces = match fs.file_len(&partial_path) {
            Ok(_) => {
                let held = held_in_file(fs, &partial_path, method, seg_size.as_u64())?;
                if held.end == StreamEnd::OverLimit {
                    return Err(Error::Decompress {
                        path: partial_path,
                        compression: method,
                        at: held.bytes,
                        problem: held.end,
                    });
                }
                held.bytes
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(Error::io(Op::Stat, &partial_path, e)),
        };
        let encoder = Encoder::new(method, level).map_err(|source| Error::Compress {
            path: partial_path.clone(),
            compression: method,
            source,
        })?;
        let file = durable::create_compressed(fs, dir, partial)?;
        Ok(CompressedSegment {
            file,
            encoder,
            file_len: 0,
            fed: 0,
            replaces,
        })
    }

    /// Where the file is now (its temporary name, then its `.partial` name).
    pub(super) fn path(&self) -> &Path {
        &self.file.path
    }

    /// Compresses `bytes`, the next WAL of the segment, and appends what the compressor
    /// produced to the file.
    ///
    /// # Errors
    ///
    /// [`Error::Compress`]; [`Error::Io`] with [`Op::Write`] (ENOSPC included).
    pub(super) fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.encoder
            .write(bytes)
            .map_err(|e| self.compress_error(e))?;
        self.fed += bytes.len() as u64;
        self.drain()
    }

    /// A sync point. Returns `true` when every WAL byte given so far is durable in the file
    /// under its `.partial` name, `false` when nothing was done because the file still
    /// holds less than the `.partial` it is to replace.
    ///
    /// Promoted: flush the compressor, append, `fdatasync`. Not yet promoted and holding at
    /// least as much as the old file: flush the compressor, append, then
    /// [`durable::promote_compressed`].
    ///
    /// # Errors
    ///
    /// [`Error::Compress`]; [`Error::Io`] writing, syncing or renaming.
    pub(super) fn sync<F: ArchiveFs<File = Fi>>(
        &mut self,
        fs: &F,
        dir: &Path,
        durability: Durability,
    ) -> Result<bool> {
        if !self.file.promoted && self.fed < self.replaces {
            return Ok(false);
        }
        self.encoder.flush().map_err(|e| self.compress_error(e))?;
        self.drain()?;
        if self.file.promoted {
            durable::sync_data(&self.file.file, &self.file.path, durability)?;
            durable::ensure_named(&self.file.file, &self.file.path, Op::Sync)?;
        } else {
            durable::promote_compressed(fs, dir, &mut self.file, durability)?;
        }
        Ok(true)
    }

    /// The segment is full: finish the stream and give the file its final name
    /// ([`durable::complete_compressed`]). Returns the final name.
    ///
    /// # Errors
    ///
    /// As for [`CompressedSegment::sync`].
    pub(super) fn complete<F: ArchiveFs<File = Fi>>(
        mut self,
        fs: &F,
        dir: &Path,
        durability: Durability,
    ) -> Result<SegmentName> {
        self.encoder.finish().map_err(|e| self.compress_error(e))?;
        self.drain()?;
        durable::complete_compressed(fs, dir, &self.file, durability).map(|(name, _)| name)
    }

    /// A clean stop part-way through the segment. When the file holds at least what the
    /// old `.partial` held: finish the stream (so the `.partial` is a whole gzip member,
    /// LZ4 frame or zstd frame that the standard tools read without complaint), then sync
    /// or promote it, and return `true`. Otherwise remove the temporary file, leave the old
    /// `.partial` as it was, and return `false`.
    ///
    /// # Errors
    ///
    /// As for [`CompressedSegment::sync`]; [`Error::Io`] with [`Op::Remove`].
    pub(super) fn close<F: ArchiveFs<File = Fi>>(
        mut self,
        fs: &F,
        dir: &Path,
        durability: Durability,
    ) -> Result<bool> {
        if !self.file.promoted && self.fed < self.replaces {
            durable::discard_compressed(fs, dir, self.file)?;
            return Ok(false);
        }
        self.encoder.finish().map_err(|e| self.compress_error(e))?;
        self.drain()?;
        if self.file.promoted {
            durable::sync_data(&self.file.file, &self.file.path, durability)?;
            durable::ensure_named(&self.file.file, &self.file.path, Op::Sync)?;
        } else {
            durable::promote_compressed(fs, dir, &mut self.file, durability)?;
        }
        Ok(true)
    }

    /// Appends the compressor's output to the file.
    fn drain(&mut self) -> Result<()> {
        let out = self.encoder.output();
        if out.is_empty() {
            return Ok(());
        }
        self.file
            .file
            .write_all_at(out, self.file_len)
            .map_err(Error::at(Op::Write, &self.file.path))?;
        self.file_len += out.len() as u64;
        out.clear();
        Ok(())
    }

    fn compress_error(&self, source: std::io::Error) -> Error {
        Error::Compress {
            path: self.file.path.clone(),
            compression: self.encoder.method(),
            source,
        }
    }
}
