//! Decoding compressed archive files: [`Decoder`] (an `io::Read` over any method), and
//! [`decode`], which says how many bytes a file holds and how its stream ends.
//!
//! A file a crash cut short — a `.partial` whose last block was half written, or whose
//! tail pages never reached the disk — is normal input here, not an error: [`decode`]
//! hands over every byte that decodes, in order, and reports *how* the stream ended
//! ([`StreamEnd`]). Whether that end is acceptable is the caller's decision: a `.partial`
//! may end anywhere, a complete segment must end [`StreamEnd::Finished`].
//!
//! Errors of the underlying reader (a failed `pread`) are kept apart from damage in the
//! data: they are returned as `Err`, never folded into a [`StreamEnd`].
//!
//! Every byte that decodes before the damage is handed over, including bytes decoded in
//! the same library call that then met the damage: gzip is driven through zlib's
//! `inflate` directly (its output counters move even when it fails), zstd is fed one
//! block at a time (the size `ZSTD_decompressStream` asks for next), and the LZ4 decoder
//! returns each block as it completes. (One exception, in input no pgwalrus writer makes: a
//! zstd frame whose header announces a content size its blocks do not add up to fails at
//! the end of its last block, and that block's bytes are not handed over.) The end of the input is told apart from a cut
//! inside a stream by the decoders' own state (gzip, zstd) or by following the LZ4 frame
//! layout as the bytes go by (lz4_flex reports a frame cut at a block boundary as a clean
//! end).
//!
//! Concatenated streams (several gzip members, LZ4 frames or zstd frames, as other tools
//! may write) decode as one; pgwalrus itself writes one stream per file.

use std::fmt;
use std::io::{self, BufRead as _, BufReader, Read};

use pgwalrus_wal::names::Compression;
use zstd::zstd_safe;

/// Input buffer of the gzip and zstd drivers, and read buffer of the LZ4 decoder.
const INPUT_BUFFER: usize = 64 * 1024;
/// Output chunk of [`decode`].
const CHUNK: usize = 64 * 1024;
/// deflate's window: 32 KiB, what gzip allows.
const GZIP_WINDOW_BITS: u8 = 15;

/// How a decoded stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamEnd {
    /// Every stream that was started was finished (trailer and checksum checked) and the
    /// file ends there. An empty file is an empty, finished stream.
    Finished,
    /// The file ends inside a stream: what a crash leaves, or a writer still at work.
    Truncated,
    /// Bytes that do not decode: a torn write, a checksum mismatch, trailing garbage, or
    /// not this format at all.
    Corrupt(DecodeError),
    /// More than the limit: decoding stopped there.
    OverLimit,
}

impl StreamEnd {
    /// `true` for [`StreamEnd::Finished`].
    pub fn is_finished(&self) -> bool {
        matches!(self, StreamEnd::Finished)
    }
}

impl fmt::Display for StreamEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamEnd::Finished => f.write_str("the compressed stream ends cleanly"),
            StreamEnd::Truncated => f.write_str("the file ends inside the compressed stream"),
            StreamEnd::Corrupt(e) => write!(f, "the data stops decoding: {e}"),
            StreamEnd::OverLimit => f.write_str("it decompresses to more than one segment"),
        }
    }
}

/// What the decompressor said about bytes it could not decode. The message is the
/// library's, for people; code never looks at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    message: String,
}

impl DecodeError {
    fn new(message: impl fmt::Display) -> DecodeError {
        DecodeError {
            message: message.to_string(),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DecodeError {}

/// What [`decode`] found: how many bytes decoded, and how the stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// Decoded bytes handed to the sink (at most the limit).
    pub bytes: u64,
    /// How the stream ended.
    pub end: StreamEnd,
}

/// A decompressing reader for any method. See the [module documentation](self).
pub struct Decoder<R: Read> {
    inner: DecoderInner<R>,
    /// Set once the end was reached; every later read reports it again.
    end: Option<StreamEnd>,
}

enum DecoderInner<R: Read> {
    Gzip(Box<GzipDriver<R>>),
    /// `None` only while one frame's decoder is replaced by the next one's.
    Lz4(Option<Box<Lz4Decoder<R>>>),
    Zstd(Box<ZstdDriver<R>>),
}

impl<R: Read> fmt::Debug for Decoder<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoder")
            .field("method", &self.method())
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

/// One step of a driver: decoded bytes, or the end.
type Step = io::Result<Result<usize, StreamEnd>>;

impl<R: Read> Decoder<R> {
    /// A decoder of `method` reading compressed bytes from `source`.
    ///
    /// # Errors
    ///
    /// The decompression library could not set up its state (zstd: out of memory).
    pub fn new(method: Compression, source: R) -> io::Result<Decoder<R>> {
        let inner = match method {
            Compression::Gzip => DecoderInner::Gzip(Box::new(GzipDriver {
                input: Input::new(source),
                inflate: None,
                damage: None,
            })),
            Compression::Lz4 => {
                DecoderInner::Lz4(Some(Box::new(Lz4Decoder::new(BufReader::with_capacity(
                    INPUT_BUFFER,
                    Tracked {
                        inner: source,
                        failure: None,
                        framing: Lz4Framing::default(),
                    },
                )))))
            }
            Compression::Zstd => {
                let mut dctx = zstd_safe::DCtx::try_create().ok_or_else(|| {
                    io::Error::other("cannot create a zstd decompression context")
                })?;
                dctx.init()
                    .map_err(|code| io::Error::other(zstd_safe::get_error_name(code)))?;
                DecoderInner::Zstd(Box::new(ZstdDriver {
                    input: Input::new(source),
                    dctx,
                    want: ZSTD_FIRST_FEED,
                    in_frame: false,
                    draining: false,
                }))
            }
        };
        Ok(Decoder { inner, end: None })
    }

    /// The method.
    pub fn method(&self) -> Compression {
        match self.inner {
            DecoderInner::Gzip(_) => Compression::Gzip,
            DecoderInner::Lz4(_) => Compression::Lz4,
            DecoderInner::Zstd(_) => Compression::Zstd,
        }
    }

    /// Reads decoded bytes, classifying the end: `Ok(Ok(n))` for `n` bytes, `Ok(Ok(0))` at
    /// a clean end ([`StreamEnd::Finished`]), `Ok(Err(end))` when the data stops decoding
    /// or is cut short. Once an end is reached, every later call reports it again.
    ///
    /// # Errors
    ///
    /// The underlying reader's own error.
    pub fn read_classified(&mut self, buf: &mut [u8]) -> Step {
        if let Some(end) = &self.end {
            return Ok(match end {
                StreamEnd::Finished => Ok(0),
                other => Err(other.clone()),
            });
        }
        if buf.is_empty() {
            return Ok(Ok(0));
        }
        let step = match &mut self.inner {
            DecoderInner::Gzip(d) => d.read(buf),
            DecoderInner::Lz4(slot) => lz4_read(slot, buf),
            DecoderInner::Zstd(d) => d.read(buf),
        }?;
        match step {
            Ok(0) => self.end = Some(StreamEnd::Finished),
            Ok(_) => {}
            Err(ref end) => self.end = Some(end.clone()),
        }
        Ok(step)
    }
}

impl<R: Read> Read for Decoder<R> {
    /// Decoded bytes; a cut-short stream is an error of kind `UnexpectedEof`, damaged data
    /// one of kind `InvalidData`. Use [`Decoder::read_classified`] to tell those from the
    /// underlying reader's own errors.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.read_classified(buf)? {
            Ok(n) => Ok(n),
            Err(StreamEnd::Truncated) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                StreamEnd::Truncated.to_string(),
            )),
            Err(end) => Err(io::Error::new(io::ErrorKind::InvalidData, end.to_string())),
        }
    }
}

/// The compressed input of the gzip and zstd drivers: a buffer over the source.
struct Input<R> {
    source: R,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    eof: bool,
}

impl<R: Read> Input<R> {
    fn new(source: R) -> Self {
        Input {
            source,
            buf: vec![0u8; INPUT_BUFFER],
            pos: 0,
            len: 0,
            eof: false,
        }
    }

    /// The buffered bytes not yet consumed, reading more first when fewer than `want` are
    /// buffered (unless the source has ended). Empty only at the end of the source.
    fn available(&mut self, want: usize) -> io::Result<&[u8]> {
        if self.len - self.pos < want && !self.eof {
            self.buf.copy_within(self.pos..self.len, 0);
            self.len -= self.pos;
            self.pos = 0;
            while self.len < want.min(self.buf.len()) {
                let free = self.buf.get_mut(self.len..).unwrap_or_default();
                match self.source.read(free) {
                    Ok(0) => {
                        self.eof = true;
                        break;
                    }
                    Ok(n) => self.len += n.min(free.len()),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(self.buffered())
    }

    /// The buffered bytes not yet consumed.
    fn buffered(&self) -> &[u8] {
        self.buf.get(self.pos..self.len).unwrap_or_default()
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.len);
    }
}

/// gzip: zlib's `inflate` with its gzip wrapper, one member after another.
struct GzipDriver<R> {
    input: Input<R>,
    /// The member being decoded; `None` between members.
    inflate: Option<flate2::Decompress>,
    /// Damage met by a call that also decoded bytes: reported by the next call.
    damage: Option<StreamEnd>,
}

impl<R: Read> GzipDriver<R> {
    fn read(&mut self, buf: &mut [u8]) -> Step {
        if let Some(end) = self.damage.take() {
            return Ok(Err(end));
        }
        loop {
            let input = self.input.available(1)?;
            if input.is_empty() {
                return Ok(match self.inflate {
                    Some(_) => Err(StreamEnd::Truncated),
                    None => Ok(0),
                });
            }
            let inflate = self
                .inflate
                .get_or_insert_with(|| flate2::Decompress::new_gzip(GZIP_WINDOW_BITS));
            let (in_before, out_before) = (inflate.total_in(), inflate.total_out());
            let result = inflate.decompress(input, buf, flate2::FlushDecompress::None);
            let consumed = usize::try_from(inflate.total_in() - in_before).unwrap_or(usize::MAX);
            let produced = usize::try_from(inflate.total_out() - out_before).unwrap_or(0);
            self.input.consume(consumed);
            match result {
                // The bytes decoded before the damage count; the damage is reported next.
                Err(e) if produced > 0 => {
                    self.damage = Some(StreamEnd::Corrupt(DecodeError::new(e)));
                    return Ok(Ok(produced.min(buf.len())));
                }
                Err(e) => return Ok(Err(StreamEnd::Corrupt(DecodeError::new(e)))),
                Ok(flate2::Status::StreamEnd) => self.inflate = None,
                Ok(_) if consumed == 0 && produced == 0 => {
                    return Ok(Err(StreamEnd::Corrupt(DecodeError::new(
                        "deflate made no progress",
                    ))));
                }
                Ok(_) => {}
            }
            if produced > 0 {
                return Ok(Ok(produced.min(buf.len())));
            }
        }
    }
}

/// The first feed of a zstd frame: its magic number.
const ZSTD_FIRST_FEED: usize = 4;
/// A zstd block header.
const ZSTD_BLOCK_HEADER: usize = 3;

/// zstd: `ZSTD_decompressStream`, fed so that a damaged block cannot take the output of
/// the blocks before it along. zstd reports no output from a call that fails, and when it
/// asks for a block's body it asks for the next block's header too, to parse it in the
/// same call; so each call gets at most what was asked for minus a block header (the
/// header then comes alone, in a call of its own), and a call that filled the output
/// buffer is followed by one with no input, which only drains what zstd still holds.
struct ZstdDriver<R> {
    input: Input<R>,
    dctx: zstd_safe::DCtx<'static>,
    /// How many bytes the decoder asked for next.
    want: usize,
    /// A frame was started and not finished.
    in_frame: bool,
    /// The last call filled the output buffer: zstd may hold more decoded bytes.
    draining: bool,
}

impl<R: Read> ZstdDriver<R> {
    fn read(&mut self, buf: &mut [u8]) -> Step {
        loop {
            let feed = if self.draining {
                0
            } else {
                let want = if self.want > ZSTD_BLOCK_HEADER {
                    self.want - ZSTD_BLOCK_HEADER
                } else {
                    self.want.max(1)
                };
                let buffered = self.input.available(want)?.len();
                if buffered == 0 {
                    return Ok(if self.in_frame {
                        Err(StreamEnd::Truncated)
                    } else {
                        Ok(0)
                    });
                }
                want.min(buffered)
            };
            let input = self.input.buffered();
            let mut src = zstd_safe::InBuffer::around(input.get(..feed).unwrap_or_default());
            let mut dst = zstd_safe::OutBuffer::around(&mut *buf);
            let result = self.dctx.decompress_stream(&mut dst, &mut src);
            let (consumed, produced) = (src.pos(), dst.pos());
            self.input.consume(consumed);
            self.draining = produced == buf.len();
            match result {
                Err(code) => {
                    return Ok(Err(StreamEnd::Corrupt(DecodeError::new(
                        zstd_safe::get_error_name(code),
                    ))));
                }
                Ok(hint) => {
                    self.in_frame = hint != 0;
                    self.want = if hint == 0 { ZSTD_FIRST_FEED } else { hint };
                }
            }
            if produced > 0 {
                return Ok(Ok(produced));
            }
        }
    }
}

/// A reader that remembers its own failures, so that the LZ4 decoder's errors can be told
/// apart from the underlying reader's, and follows the LZ4 frame layout of what it reads.
struct Tracked<R> {
    inner: R,
    failure: Option<io::Error>,
    framing: Lz4Framing,
}

impl<R: Read> Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.inner.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let report = io::Error::new(e.kind(), "the underlying reader failed");
                    self.failure = Some(e);
                    return Err(report);
                }
                Ok(n) => {
                    self.framing.observe(buf.get(..n).unwrap_or_default());
                    return Ok(n);
                }
            }
        }
    }
}

/// lz4_flex's frame decoder over our tracked, buffered source.
type Lz4Decoder<R> = lz4_flex::frame::FrameDecoder<BufReader<Tracked<R>>>;

fn lz4_read<R: Read>(slot: &mut Option<Box<Lz4Decoder<R>>>, buf: &mut [u8]) -> Step {
    loop {
        let Some(d) = slot.as_mut() else {
            return Ok(Err(StreamEnd::Corrupt(DecodeError::new(
                "the LZ4 decoder was lost",
            ))));
        };
        match d.read(buf) {
            Ok(0) => {
                // lz4_flex ends each frame, and a frame cut at a block boundary, with a
                // zero-length read. Only the end of the input ends the stream, cleanly if
                // it is between frames.
                let more = match d.get_mut().fill_buf() {
                    Ok(rest) => !rest.is_empty(),
                    Err(e) => return Err(lz4_failure(d, e)),
                };
                if !more {
                    let framing = &d.get_ref().get_ref().framing;
                    return Ok(if framing.between_frames() {
                        Ok(0)
                    } else {
                        Err(StreamEnd::Truncated)
                    });
                }
                // More input: the next frame gets a decoder of its own (lz4_flex sizes its
                // buffers for the first frame it sees), over the same buffered source.
                if let Some(done) = slot.take() {
                    *slot = Some(Box::new(Lz4Decoder::new(done.into_inner())));
                }
            }
            Ok(n) => return Ok(Ok(n)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                if let Some(failure) = d.get_mut().get_mut().failure.take() {
                    return Err(failure);
                }
                return Ok(Err(if e.kind() == io::ErrorKind::UnexpectedEof {
                    StreamEnd::Truncated
                } else {
                    StreamEnd::Corrupt(DecodeError::new(e))
                }));
            }
        }
    }
}

/// The underlying reader's own error, if that is what `e` is.
fn lz4_failure<R: Read>(d: &mut Lz4Decoder<R>, e: io::Error) -> io::Error {
    d.get_mut().get_mut().failure.take().unwrap_or(e)
}

/// LZ4 frame magic number.
const LZ4_MAGIC: u32 = 0x184D_2204;
/// Skippable frames: magic numbers `0x184D2A50` to `0x184D2A5F`.
const LZ4_SKIPPABLE: u32 = 0x184D_2A50;

/// Where an LZ4 byte stream is, frame-wise (magic, descriptor, blocks, end mark, content
/// checksum; skippable frames): enough to tell input that ends between frames from input
/// cut inside one. Anything it cannot follow (the legacy format, a bad magic number) makes
/// it give up and defer to the decoder, which reports bad input itself.
#[derive(Debug, Default)]
struct Lz4Framing {
    phase: Phase,
    field: [u8; 4],
    filled: usize,
    /// Bytes of the current phase still to pass over.
    skip: u64,
    block_checksum: bool,
    content_checksum: bool,
    gave_up: bool,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Phase {
    #[default]
    Magic,
    Descriptor,
    HeaderRest,
    BlockSize,
    BlockData,
    ContentChecksum,
    SkippableSize,
    SkippableData,
}

impl Lz4Framing {
    fn between_frames(&self) -> bool {
        self.gave_up || (self.phase == Phase::Magic && self.filled == 0)
    }

    /// Collects a little-endian field of `n` bytes; `Some` once complete.
    fn take_field(&mut self, bytes: &mut &[u8], n: usize) -> Option<u32> {
        let need = n - self.filled;
        let got = need.min(bytes.len());
        let (now, rest) = bytes.split_at(got);
        if let Some(dst) = self.field.get_mut(self.filled..self.filled + got) {
            dst.copy_from_slice(now);
        }
        self.filled += got;
        *bytes = rest;
        if self.filled < n {
            return None;
        }
        self.filled = 0;
        let mut le = [0u8; 4];
        if let (Some(dst), Some(src)) = (le.get_mut(..n), self.field.get(..n)) {
            dst.copy_from_slice(src);
        }
        Some(u32::from_le_bytes(le))
    }

    fn observe(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() && !self.gave_up {
            match self.phase {
                Phase::Magic => match self.take_field(&mut bytes, 4) {
                    Some(LZ4_MAGIC) => self.phase = Phase::Descriptor,
                    Some(m) if m & 0xFFFF_FFF0 == LZ4_SKIPPABLE => {
                        self.phase = Phase::SkippableSize;
                    }
                    Some(_) => self.gave_up = true,
                    None => {}
                },
                Phase::Descriptor => {
                    if let Some(fields) = self.take_field(&mut bytes, 2) {
                        let flg = fields & 0xFF;
                        self.block_checksum = flg & 0x10 != 0;
                        self.content_checksum = flg & 0x04 != 0;
                        let content_size = if flg & 0x08 != 0 { 8 } else { 0 };
                        let dict_id = if flg & 0x01 != 0 { 4 } else { 0 };
                        // The rest of the header: content size, dictionary id, checksum.
                        self.skip = content_size + dict_id + 1;
                        self.phase = Phase::HeaderRest;
                    }
                }
                Phase::BlockSize => {
                    if let Some(size) = self.take_field(&mut bytes, 4) {
                        if size == 0 {
                            self.skip = if self.content_checksum { 4 } else { 0 };
                            self.phase = Phase::ContentChecksum;
                        } else {
                            self.skip = u64::from(size & 0x7FFF_FFFF)
                                + if self.block_checksum { 4 } else { 0 };
                            self.phase = Phase::BlockData;
                        }
                    }
                }
                Phase::SkippableSize => {
                    if let Some(size) = self.take_field(&mut bytes, 4) {
                        self.skip = u64::from(size);
                        self.phase = Phase::SkippableData;
                    }
                }
                Phase::HeaderRest
                | Phase::BlockData
                | Phase::ContentChecksum
                | Phase::SkippableData => {
                    let n = usize::try_from(self.skip)
                        .unwrap_or(usize::MAX)
                        .min(bytes.len());
                    bytes = bytes.get(n..).unwrap_or_default();
                    self.skip -= n as u64;
                }
            }
            if self.skip == 0 {
                self.phase = match self.phase {
                    Phase::HeaderRest | Phase::BlockData => Phase::BlockSize,
                    Phase::ContentChecksum | Phase::SkippableData => Phase::Magic,
                    other => other,
                };
            }
        }
    }
}

/// Decodes `source` as `method` as far as it goes, handing the decoded bytes to `sink` in
/// order, and stops after `limit` bytes ([`StreamEnd::OverLimit`] if more follow). A
/// truncated or damaged stream is not an error: every byte before the damage is handed
/// over and [`Held::end`] says how it ended. Never panics, whatever the input.
///
/// ```
/// use pgwalrus_archive::compress::{Encoder, StreamEnd, decode};
/// use pgwalrus_wal::names::Compression;
///
/// let mut e = Encoder::new(Compression::Zstd, 3)?;
/// e.write(b"first half, ")?;
/// e.flush()?; // a sync point
/// let synced = e.output().len();
/// e.write(b"second half")?;
/// e.finish()?;
/// let file = e.output().clone();
///
/// let held = decode(Compression::Zstd, &file[..], u64::MAX, |_| {})?;
/// assert_eq!((held.bytes, held.end), (23, StreamEnd::Finished));
/// // A crash right after the sync point: everything written before it decodes.
/// let held = decode(Compression::Zstd, &file[..synced], u64::MAX, |_| {})?;
/// assert_eq!((held.bytes, held.end), (12, StreamEnd::Truncated));
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
///
/// `source`'s own errors; the decompression library could not set up its state.
pub fn decode<R: Read>(
    method: Compression,
    source: R,
    limit: u64,
    mut sink: impl FnMut(&[u8]),
) -> io::Result<Held> {
    let mut decoder = Decoder::new(method, source)?;
    let mut buf = vec![0u8; CHUNK];
    let mut bytes = 0u64;
    loop {
        let n = match decoder.read_classified(&mut buf)? {
            Ok(0) => {
                return Ok(Held {
                    bytes,
                    end: StreamEnd::Finished,
                });
            }
            Ok(n) => n,
            Err(end) => return Ok(Held { bytes, end }),
        };
        let room = limit - bytes;
        let got = buf.get(..n).unwrap_or_default();
        if n as u64 > room {
            let keep = usize::try_from(room).unwrap_or(n).min(n);
            sink(got.get(..keep).unwrap_or_default());
            return Ok(Held {
                bytes: limit,
                end: StreamEnd::OverLimit,
            });
        }
        sink(got);
        bytes += n as u64;
    }
}

/// How many bytes `source` holds once decoded (at most `limit`), and how it ends: [`decode`]
/// without keeping the bytes.
///
/// # Errors
///
/// As for [`decode`].
pub fn held_bytes<R: Read>(method: Compression, source: R, limit: u64) -> io::Result<Held> {
    decode(method, source, limit, |_| {})
}
