//! [`Encoder`]: a streaming compressor for one archive file, writing a standard format that
//! the `gzip`, `lz4` and `zstd` command-line tools decompress, into an in-memory buffer that
//! the caller drains into the file.
//!
//! Every file is exactly one stream: one gzip member (so the gzip trailer's ISIZE is the
//! whole content, which pg_receivewal's resume scan reads), one LZ4 frame, or one zstd
//! frame. [`Encoder::flush`] ends the data so far at a boundary a decoder can reach
//! without the rest of the stream:
//!
//! | method | flush | a decoder reading a file cut after the flush gets |
//! |---|---|---|
//! | gzip | `Z_SYNC_FLUSH`, repeated until zlib reports it complete: the pending deflate block is ended and an empty stored block byte-aligns the stream | every byte given so far |
//! | lz4 | the pending input becomes a complete block (256 KiB blocks, linked, each with its xxHash32 checksum) | every byte given so far |
//! | zstd | `ZSTD_e_flush`: the current block is ended | every byte given so far |
//!
//! [`Encoder::finish`] writes the stream's end (gzip CRC-32 and ISIZE; LZ4 end mark; zstd
//! last block and content checksum); nothing may be written after it.
//!
//! LZ4 frames carry a checksum per block but none of the whole content: the block checksums
//! already cover every byte (each block's compressed data), a whole-content xxHash32 cost
//! another 11% of lz4's compression time, and the WAL inside has its own CRC per record.
//! pg_receivewal writes neither.

use std::io::{self, Write as _};

use pgwalrus_wal::names::Compression;

/// LZ4 block size. Not the 64 KiB pg_receivewal writes (liblz4's default): with 256 KiB
/// blocks lz4_flex compressed WAL about 28% faster to the same size (fewer block starts;
/// 1 MiB gained little more and 4 MiB lost it to the cache). Every LZ4 reader accepts any
/// of the frame format's block sizes, liblz4 and pg_receivewal included.
const LZ4_BLOCK: lz4_flex::frame::BlockSize = lz4_flex::frame::BlockSize::Max256KB;

/// deflate's window: 32 KiB, the gzip format's maximum.
const GZIP_WINDOW_BITS: u8 = 15;
/// Output space reserved before each deflate call.
const GZIP_OUT_CHUNK: usize = 64 * 1024;

/// A streaming compressor. See the [module documentation](self).
pub struct Encoder {
    inner: Inner,
    finished: bool,
}

enum Inner {
    Gzip(Box<Gzip>),
    Lz4(Box<lz4_flex::frame::FrameEncoder<Vec<u8>>>),
    Zstd(Box<zstd::stream::write::Encoder<'static, Vec<u8>>>),
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("method", &self.method())
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl Encoder {
    /// A compressor for `method` at `level` (see
    /// [`CompressionSpec::effective_level`](super::CompressionSpec::effective_level); gzip
    /// levels are clamped to 1–9, and lz4 has one speed whatever the level: `lz4_flex`
    /// implements the fast mode only).
    ///
    /// # Errors
    ///
    /// The compression library could not set up its state (zstd: out of memory or a level
    /// it rejects).
    pub fn new(method: Compression, level: i32) -> io::Result<Encoder> {
        let inner = match method {
            Compression::Gzip => {
                let level = u32::try_from(level.clamp(1, 9)).unwrap_or(6);
                Inner::Gzip(Box::new(Gzip {
                    deflate: flate2::Compress::new_gzip(
                        flate2::Compression::new(level),
                        GZIP_WINDOW_BITS,
                    ),
                    out: Vec::new(),
                }))
            }
            Compression::Lz4 => {
                let info = lz4_flex::frame::FrameInfo::new()
                    .block_size(LZ4_BLOCK)
                    .block_mode(lz4_flex::frame::BlockMode::Linked)
                    .block_checksums(true)
                    .content_checksum(false);
                Inner::Lz4(Box::new(lz4_flex::frame::FrameEncoder::with_frame_info(
                    info,
                    Vec::new(),
                )))
            }
            Compression::Zstd => {
                let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), level)?;
                encoder.include_checksum(true)?;
                Inner::Zstd(Box::new(encoder))
            }
        };
        Ok(Encoder {
            inner,
            finished: false,
        })
    }

    /// The method.
    pub fn method(&self) -> Compression {
        match self.inner {
            Inner::Gzip(_) => Compression::Gzip,
            Inner::Lz4(_) => Compression::Lz4,
            Inner::Zstd(_) => Compression::Zstd,
        }
    }

    /// Compresses `data`. Output may stay buffered inside the compressor until the next
    /// [`Encoder::flush`] or [`Encoder::finish`].
    ///
    /// # Errors
    ///
    /// The compressor failed, or the stream was already finished.
    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.check_open()?;
        match &mut self.inner {
            Inner::Gzip(e) => e.run(data, flate2::FlushCompress::None),
            Inner::Lz4(e) => e.write_all(data),
            Inner::Zstd(e) => e.write_all(data),
        }
    }

    /// Ends the data given so far at a boundary a decoder reaches without the rest of the
    /// stream (see the [module documentation](self)), and puts it in [`Encoder::output`].
    ///
    /// # Errors
    ///
    /// The compressor failed, or the stream was already finished.
    pub fn flush(&mut self) -> io::Result<()> {
        self.check_open()?;
        match &mut self.inner {
            Inner::Gzip(e) => e.run(&[], flate2::FlushCompress::Sync),
            Inner::Lz4(e) => e.flush(),
            Inner::Zstd(e) => e.flush(),
        }
    }

    /// Ends the stream: flushes and writes the trailer into [`Encoder::output`]. Later
    /// writes fail.
    ///
    /// # Errors
    ///
    /// The compressor failed, or the stream was already finished.
    pub fn finish(&mut self) -> io::Result<()> {
        self.check_open()?;
        self.finished = true;
        match &mut self.inner {
            Inner::Gzip(e) => e.run(&[], flate2::FlushCompress::Finish),
            Inner::Lz4(e) => e.try_finish().map_err(io::Error::other),
            Inner::Zstd(e) => e.do_finish(),
        }
    }

    /// `true` once [`Encoder::finish`] was called.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The compressed bytes produced and not yet taken. The caller writes them to the file
    /// and clears the buffer (its capacity is reused).
    pub fn output(&mut self) -> &mut Vec<u8> {
        match &mut self.inner {
            Inner::Gzip(e) => &mut e.out,
            Inner::Lz4(e) => e.get_mut(),
            Inner::Zstd(e) => e.get_mut(),
        }
    }

    fn check_open(&self) -> io::Result<()> {
        if self.finished {
            return Err(io::Error::other(
                "the compressed stream is already finished",
            ));
        }
        Ok(())
    }
}

/// A gzip stream: zlib's deflate with its gzip wrapper (header, then CRC-32 and ISIZE at
/// the end), driven directly so that a sync flush is carried to its end whatever the
/// amount of pending output (a writer-side `flush` that stops when its buffer is full
/// can leave the flush marker unwritten).
struct Gzip {
    deflate: flate2::Compress,
    out: Vec<u8>,
}

impl Gzip {
    /// Feeds `input` to deflate with `flush`, until all of it is consumed and — for a sync
    /// flush or the finish — zlib says the flush is complete (output space was left over,
    /// or the stream ended).
    fn run(&mut self, mut input: &[u8], flush: flate2::FlushCompress) -> io::Result<()> {
        loop {
            if self.out.capacity() - self.out.len() < GZIP_OUT_CHUNK / 2 {
                self.out.reserve(GZIP_OUT_CHUNK);
            }
            let before = self.deflate.total_in();
            let status = self
                .deflate
                .compress_vec(input, &mut self.out, flush)
                .map_err(io::Error::other)?;
            let consumed = usize::try_from(self.deflate.total_in() - before).unwrap_or(usize::MAX);
            input = input.get(consumed..).unwrap_or_default();
            let room_left = self.out.len() < self.out.capacity();
            match status {
                flate2::Status::StreamEnd => return Ok(()),
                // No progress possible: nothing left to consume or to flush.
                flate2::Status::BufError if input.is_empty() => return Ok(()),
                _ if input.is_empty()
                    && room_left
                    && !matches!(flush, flate2::FlushCompress::Finish) =>
                {
                    return Ok(());
                }
                _ => {}
            }
        }
    }
}
