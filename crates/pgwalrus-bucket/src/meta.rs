//! What every object we write says about itself, in its user metadata (`x-amz-meta-*`): the
//! SHA-256 and size of the WAL it holds (decompressed, so two archivers compressing
//! differently still agree it is the same WAL), its compression, its LSN range, and the
//! SHA-256 and size of the stored bytes (so `verify` reads each object once). The content
//! check of an unclear answer compares [`Stamp::wal_sha256`].

use std::io;

use object_store::{Attribute, Attributes};
use pgwalrus_archive::compress::{self, Compression, StreamEnd};
use pgwalrus_wal::Lsn;
use sha2::{Digest as _, Sha256};

const WAL_SHA256: &str = "pgwalrus-wal-sha256";
const WAL_SIZE: &str = "pgwalrus-wal-size";
const STORED_SHA256: &str = "pgwalrus-sha256";
const COMPRESSION: &str = "pgwalrus-compression";
const START_LSN: &str = "pgwalrus-start-lsn";
const END_LSN: &str = "pgwalrus-end-lsn";

/// A SHA-256.
pub type Sha = [u8; 32];

/// The facts an object carries about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    /// SHA-256 of the WAL content, decompressed.
    pub wal_sha256: Sha,
    /// Size of the WAL content, decompressed.
    pub wal_size: u64,
    /// SHA-256 of the object's bytes as stored.
    pub stored_sha256: Sha,
    /// How the stored bytes are compressed.
    pub compression: Option<Compression>,
    /// First LSN the object holds (segments and chunks).
    pub start_lsn: Option<Lsn>,
    /// LSN just past the last byte the object holds (segments and chunks).
    pub end_lsn: Option<Lsn>,
}

impl Stamp {
    /// The stamp of `stored` bytes, compressed with `compression`, decompressing to check
    /// that they are one whole stream.
    ///
    /// # Errors
    /// The bytes do not decompress as one finished stream (the message says how not).
    pub fn of(stored: &[u8], compression: Option<Compression>) -> Result<Stamp, String> {
        let (wal_sha256, wal_size) = wal_hash(stored, compression)?;
        // Uncompressed, the stored bytes are the WAL: one hash serves both.
        let stored_sha256 = match compression {
            None => wal_sha256,
            Some(_) => Sha256::digest(stored).into(),
        };
        Ok(Stamp {
            wal_sha256,
            wal_size,
            stored_sha256,
            compression,
            start_lsn: None,
            end_lsn: None,
        })
    }

    /// Whether `stored` are the bytes this stamp describes (size and SHA-256).
    ///
    /// # Errors
    /// What differs.
    pub fn check_stored(&self, stored: &[u8]) -> Result<(), String> {
        let sha: Sha = Sha256::digest(stored).into();
        if sha == self.stored_sha256 {
            return Ok(());
        }
        Err(format!(
            "its {} bytes hash to sha256 {}, its metadata says {}",
            stored.len(),
            hex(&sha),
            hex(&self.stored_sha256)
        ))
    }

    /// With the LSN range it holds.
    pub fn with_range(mut self, start: Lsn, end: Lsn) -> Self {
        self.start_lsn = Some(start);
        self.end_lsn = Some(end);
        self
    }

    /// As object attributes.
    pub fn attributes(&self) -> Attributes {
        let mut a = Attributes::new();
        let mut put = |k: &'static str, v: String| {
            a.insert(Attribute::Metadata(k.into()), v.into());
        };
        put(WAL_SHA256, hex(&self.wal_sha256));
        put(WAL_SIZE, self.wal_size.to_string());
        put(STORED_SHA256, hex(&self.stored_sha256));
        put(
            COMPRESSION,
            self.compression
                .map_or("none", Compression::as_str)
                .to_owned(),
        );
        if let Some(lsn) = self.start_lsn {
            put(START_LSN, lsn.to_string());
        }
        if let Some(lsn) = self.end_lsn {
            put(END_LSN, lsn.to_string());
        }
        a
    }

    /// Read back from object attributes; `None` when the object was not written by us (or
    /// its metadata is damaged).
    pub fn from_attributes(a: &Attributes) -> Option<Stamp> {
        let get = |k: &'static str| a.get(&Attribute::Metadata(k.into())).map(|v| v.as_ref());
        let compression = match get(COMPRESSION)? {
            "none" => None,
            name => Some(Compression::ALL.into_iter().find(|c| c.as_str() == name)?),
        };
        Some(Stamp {
            wal_sha256: unhex(get(WAL_SHA256)?)?,
            wal_size: get(WAL_SIZE)?.parse().ok()?,
            stored_sha256: unhex(get(STORED_SHA256)?)?,
            compression,
            start_lsn: get(START_LSN).and_then(|v| v.parse().ok()),
            end_lsn: get(END_LSN).and_then(|v| v.parse().ok()),
        })
    }
}

/// The compression of stored bytes, from their magic number (for objects another tool wrote).
pub fn sniff(stored: &[u8]) -> Option<Compression> {
    match stored {
        [0x1f, 0x8b, ..] => Some(Compression::Gzip),
        [0x04, 0x22, 0x4d, 0x18, ..] => Some(Compression::Lz4),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Some(Compression::Zstd),
        _ => None,
    }
}

/// SHA-256 and size of the WAL in `stored`, decompressed.
///
/// # Errors
/// The bytes are not one finished compressed stream.
pub fn wal_hash(stored: &[u8], compression: Option<Compression>) -> Result<(Sha, u64), String> {
    let Some(method) = compression else {
        return Ok((Sha256::digest(stored).into(), stored.len() as u64));
    };
    let mut hasher = Sha256::new();
    let held = compress::decode(method, stored, u64::MAX, |chunk| hasher.update(chunk))
        .map_err(|e: io::Error| e.to_string())?;
    match held.end {
        StreamEnd::Finished => Ok((hasher.finalize().into(), held.bytes)),
        end => Err(format!("{} data: {end}", method.as_str())),
    }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn unhex(text: &str) -> Option<Sha> {
    let mut out = [0u8; 32];
    if text.len() != 64 {
        return None;
    }
    for (slot, pair) in out.iter_mut().zip(text.as_bytes().chunks(2)) {
        let s = std::str::from_utf8(pair).ok()?;
        *slot = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use pgwalrus_archive::compress::Encoder;

    use super::*;

    fn zstd(data: &[u8]) -> Vec<u8> {
        let mut e = Encoder::new(Compression::Zstd, 3).unwrap();
        e.write(data).unwrap();
        e.finish().unwrap();
        e.output().clone()
    }

    #[test]
    fn a_stamp_round_trips_through_attributes() {
        let stamp = Stamp::of(b"wal bytes", None)
            .unwrap()
            .with_range(Lsn(0x100_0000), Lsn(0x200_0000));
        assert_eq!(Stamp::from_attributes(&stamp.attributes()), Some(stamp));
        assert_eq!(Stamp::from_attributes(&Attributes::new()), None);
    }

    #[test]
    fn the_same_wal_compressed_or_not_has_the_same_wal_hash() {
        let data = vec![7u8; 100_000];
        let packed = zstd(&data);
        let plain = Stamp::of(&data, None).unwrap();
        let z = Stamp::of(&packed, sniff(&packed)).unwrap();
        assert_eq!(sniff(&packed), Some(Compression::Zstd));
        assert_eq!(
            (plain.wal_sha256, plain.wal_size),
            (z.wal_sha256, z.wal_size)
        );
        assert_ne!(plain.stored_sha256, z.stored_sha256);
    }

    #[test]
    fn a_truncated_stream_is_not_stamped() {
        let packed = zstd(&[1u8; 10_000]);
        let err = Stamp::of(&packed[..packed.len() - 3], Some(Compression::Zstd)).unwrap_err();
        assert!(err.contains("zstd"), "{err}");
    }
}
