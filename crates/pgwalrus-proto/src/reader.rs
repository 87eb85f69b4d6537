//! A bounds-checked big-endian reader over one message body.
//!
//! Every read names the field it is reading; running out of bytes or meeting a malformed
//! value yields a [`ProtoError`] carrying that name. Nothing here can panic on any input.

use crate::error::ProtoError;

/// Reads big-endian integers, byte runs and NUL-terminated strings from a byte slice.
///
/// ```
/// use pgwalrus_proto::Reader;
///
/// let mut r = Reader::new(b"\x00\x00\x00\x2aabc\x00");
/// assert_eq!(r.i32("count").unwrap(), 42);
/// assert_eq!(r.cstr("name").unwrap(), b"abc");
/// assert!(r.is_empty());
/// assert!(r.u8("missing").is_err());
/// ```
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading at the beginning of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// How many bytes have been consumed.
    pub fn offset(&self) -> usize {
        self.pos
    }

    /// How many bytes are left.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Whether every byte has been consumed.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Takes the next `n` bytes.
    ///
    /// # Errors
    /// [`ProtoError::Short`] naming `field` when fewer than `n` bytes are left.
    pub fn bytes(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], ProtoError> {
        let available = self.remaining();
        if n > available {
            return Err(ProtoError::Short {
                field,
                needed: n,
                available,
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Takes the next `N` bytes as an array.
    ///
    /// # Errors
    /// [`ProtoError::Short`] naming `field`.
    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], ProtoError> {
        let b = self.bytes(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    /// Takes every remaining byte.
    pub fn rest(&mut self) -> &'a [u8] {
        let out = &self.buf[self.pos..];
        self.pos = self.buf.len();
        out
    }

    /// Reads one byte.
    ///
    /// # Errors
    /// [`ProtoError::Short`] naming `field`.
    pub fn u8(&mut self, field: &'static str) -> Result<u8, ProtoError> {
        Ok(self.array::<1>(field)?[0])
    }

    /// Reads a big-endian `i16`.
    ///
    /// # Errors
    /// [`ProtoError::Short`] naming `field`.
    pub fn i16(&mut self, field: &'static str) -> Result<i16, ProtoError> {
        Ok(i16::from_be_bytes(self.array(field)?))
    }

    /// Reads a big-endian `i16` that must not be negative (a count).
    ///
    /// # Errors
    /// [`ProtoError::Short`] or [`ProtoError::Invalid`] naming `field`.
    pub fn count16(&mut self, field: &'static str) -> Result<usize, ProtoError> {
        let v = self.i16(field)?;
        usize::try_from(v).map_err(|_| ProtoError::invalid(field, format!("negative count {v}")))
    }

    /// Reads a big-endian `i32`.
    ///
    /// # Errors
    /// [`ProtoError::Short`] naming `field`.
    pub fn i32(&mut self, field: &'static str) -> Result<i32, ProtoError> {
        Ok(i32::from_be_bytes(self.array(field)?))
    }

    /// Reads a big-endian `u32`.
    ///
    /// # Errors
    /// [`ProtoError::Short`] naming `field`.
    pub fn u32(&mut self, field: &'static str) -> Result<u32, ProtoError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    /// Reads a big-endian `i64`.
    ///
    /// # Errors
    /// [`ProtoError::Short`] naming `field`.
    pub fn i64(&mut self, field: &'static str) -> Result<i64, ProtoError> {
        Ok(i64::from_be_bytes(self.array(field)?))
    }

    /// Reads a big-endian `u64`.
    ///
    /// # Errors
    /// [`ProtoError::Short`] naming `field`.
    pub fn u64(&mut self, field: &'static str) -> Result<u64, ProtoError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    /// Reads a NUL-terminated string and returns it without the terminator.
    ///
    /// # Errors
    /// [`ProtoError::Unterminated`] naming `field` when no NUL is left.
    pub fn cstr(&mut self, field: &'static str) -> Result<&'a [u8], ProtoError> {
        let rest = &self.buf[self.pos..];
        let Some(end) = rest.iter().position(|&b| b == 0) else {
            return Err(ProtoError::Unterminated { field });
        };
        self.pos += end + 1;
        Ok(&rest[..end])
    }

    /// Reads a NUL-terminated UTF-8 string.
    ///
    /// # Errors
    /// [`ProtoError::Unterminated`] or [`ProtoError::InvalidUtf8`] naming `field`.
    pub fn str(&mut self, field: &'static str) -> Result<&'a str, ProtoError> {
        let raw = self.cstr(field)?;
        std::str::from_utf8(raw).map_err(|_| ProtoError::InvalidUtf8 { field })
    }

    /// Reads a NUL-terminated string, replacing invalid UTF-8 (for text that is only shown
    /// to people, such as server messages in a non-UTF-8 server encoding).
    ///
    /// # Errors
    /// [`ProtoError::Unterminated`] naming `field`.
    pub fn lossy_string(&mut self, field: &'static str) -> Result<String, ProtoError> {
        Ok(String::from_utf8_lossy(self.cstr(field)?).into_owned())
    }

    /// Checks that every byte has been consumed.
    ///
    /// # Errors
    /// [`ProtoError::TrailingBytes`] naming `message`.
    pub fn finish(&self, message: &'static str) -> Result<(), ProtoError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(ProtoError::TrailingBytes { message, count }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn integers_are_big_endian() {
        let mut r = Reader::new(&[0x01, 0x02, 0xff, 0xfe, 0, 0, 0, 0, 0, 0, 0, 7]);
        assert_eq!(r.i16("a").unwrap(), 0x0102);
        assert_eq!(r.i16("b").unwrap(), -2);
        assert_eq!(r.u64("c").unwrap(), 7);
        assert!(r.is_empty());
        r.finish("m").unwrap();
    }

    #[test]
    fn short_read_names_field_and_consumes_nothing() {
        let mut r = Reader::new(&[1, 2, 3]);
        let err = r.i32("Keepalive.wal_end").unwrap_err();
        assert_eq!(
            err,
            ProtoError::Short {
                field: "Keepalive.wal_end",
                needed: 4,
                available: 3
            }
        );
        assert_eq!(r.offset(), 0);
    }

    #[test]
    fn cstr_needs_terminator() {
        let mut r = Reader::new(b"abc");
        assert_eq!(
            r.cstr("name").unwrap_err(),
            ProtoError::Unterminated { field: "name" }
        );
        let mut r = Reader::new(b"\0x\0");
        assert_eq!(r.cstr("a").unwrap(), b"");
        assert_eq!(r.str("b").unwrap(), "x");
    }

    #[test]
    fn negative_count_is_invalid() {
        let mut r = Reader::new(&[0xff, 0xff]);
        assert!(matches!(
            r.count16("n"),
            Err(ProtoError::Invalid { field: "n", .. })
        ));
    }

    #[test]
    fn invalid_utf8_named() {
        let mut r = Reader::new(b"\xff\0");
        assert_eq!(
            r.str("s").unwrap_err(),
            ProtoError::InvalidUtf8 { field: "s" }
        );
        let mut r = Reader::new(b"\xff\0");
        assert_eq!(r.lossy_string("s").unwrap(), "\u{fffd}");
    }

    #[test]
    fn trailing_bytes() {
        let mut r = Reader::new(&[1, 2]);
        r.u8("a").unwrap();
        assert_eq!(
            r.finish("M").unwrap_err(),
            ProtoError::TrailingBytes {
                message: "M",
                count: 1
            }
        );
    }

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..64), ops in proptest::collection::vec(0u8..8, 0..32)) {
            let mut r = Reader::new(&data);
            for op in ops {
                let _ = match op {
                    0 => r.u8("f").map(|_| ()),
                    1 => r.i16("f").map(|_| ()),
                    2 => r.i32("f").map(|_| ()),
                    3 => r.i64("f").map(|_| ()),
                    4 => r.cstr("f").map(|_| ()),
                    5 => r.bytes(5, "f").map(|_| ()),
                    6 => r.count16("f").map(|_| ()),
                    _ => { r.rest(); Ok(()) }
                };
                prop_assert!(r.offset() <= data.len());
            }
        }
    }
}
