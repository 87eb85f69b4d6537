//! Streaming compression of archive files: the `-Z` / `--compress` specification
//! ([`CompressionSpec`], pg_receivewal's syntax), a compressor that can end its output at a
//! decodable boundary at every sync point ([`Encoder`]), and decoders that say how much a
//! possibly torn file holds ([`decode()`], [`held_bytes`], [`Decoder`]).
//!
//! The formats are the standard ones, so the usual tools read the archive: one gzip member
//! per file (`gzip -d`; pg_receivewal reads its ISIZE trailer), one LZ4 frame (`lz4 -d`;
//! pg_receivewal decompresses it to count), one zstd frame (`zstd -d`). How compressed
//! segments are written, synced, completed and resumed is the writer's business (the
//! project's `docs/durability.md`, section "Compression").
//!
//! # Layout
//!
//! * [`spec`] — [`CompressionSpec`] and its grammar, [`SpecError`].
//! * [`encode`] — [`Encoder`]: gzip (zlib's deflate via flate2 over zlib-rs), LZ4 frames
//!   (lz4_flex), zstd (libzstd); `flush` = a sync flush, `finish` = the stream's trailer.
//! * [`decode`](mod@decode) — [`Decoder`], [`decode()`], [`held_bytes`], [`StreamEnd`]:
//!   tolerant of truncated and damaged tails, never panicking on any input.
//! * `file` — the same questions asked of files on an [`ArchiveFs`](crate::ArchiveFs)
//!   (crate-internal).

pub mod decode;
pub mod encode;
pub(crate) mod file;
pub mod spec;

#[cfg(test)]
mod tests;

pub use decode::{DecodeError, Decoder, Held, StreamEnd, decode, held_bytes};
pub use encode::Encoder;
pub use pgwalrus_wal::names::Compression;
pub use spec::{CompressionSpec, SpecError};
