//! A big-endian writer that frames protocol messages.
//!
//! [`Writer::message`] writes the type byte, reserves the length word, runs the body closure
//! and back-patches the length, so no encoder computes a length by hand.

use bytes::{BufMut, BytesMut};

use crate::error::ProtoError;

/// Appends big-endian values and framed messages to a [`BytesMut`].
///
/// ```
/// use bytes::BytesMut;
/// use pgwalrus_proto::Writer;
///
/// let mut buf = BytesMut::new();
/// Writer::new(&mut buf).message(Some(b'Q'), "Query", |w| w.cstr("Query.sql", "SELECT 1")).unwrap();
/// assert_eq!(&buf[..], b"Q\x00\x00\x00\x0dSELECT 1\x00");
/// ```
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut BytesMut,
}

impl<'a> Writer<'a> {
    /// Writes at the end of `buf`.
    pub fn new(buf: &'a mut BytesMut) -> Self {
        Self { buf }
    }

    /// Appends one byte.
    pub fn u8(&mut self, v: u8) {
        self.buf.put_u8(v);
    }

    /// Appends a big-endian `i16`.
    pub fn i16(&mut self, v: i16) {
        self.buf.put_i16(v);
    }

    /// Appends a big-endian `i32`.
    pub fn i32(&mut self, v: i32) {
        self.buf.put_i32(v);
    }

    /// Appends a big-endian `u32`.
    pub fn u32(&mut self, v: u32) {
        self.buf.put_u32(v);
    }

    /// Appends a big-endian `i64`.
    pub fn i64(&mut self, v: i64) {
        self.buf.put_i64(v);
    }

    /// Appends a big-endian `u64`.
    pub fn u64(&mut self, v: u64) {
        self.buf.put_u64(v);
    }

    /// Appends raw bytes.
    pub fn bytes(&mut self, v: &[u8]) {
        self.buf.put_slice(v);
    }

    /// Appends a string and its NUL terminator.
    ///
    /// # Errors
    /// [`ProtoError::InteriorNul`] naming `field` if `s` contains a NUL byte (nothing is
    /// written then).
    pub fn cstr(&mut self, field: &'static str, s: &str) -> Result<(), ProtoError> {
        self.cbytes(field, s.as_bytes())
    }

    /// Appends a byte string and its NUL terminator.
    ///
    /// # Errors
    /// [`ProtoError::InteriorNul`] naming `field` if `s` contains a NUL byte.
    pub fn cbytes(&mut self, field: &'static str, s: &[u8]) -> Result<(), ProtoError> {
        if s.contains(&0) {
            return Err(ProtoError::InteriorNul { field });
        }
        self.buf.put_slice(s);
        self.buf.put_u8(0);
        Ok(())
    }

    /// Writes one framed message: the type byte (none for startup-phase packets), a length
    /// word covering itself and the body, then the body written by `body`.
    ///
    /// On error the buffer is restored to its previous length.
    ///
    /// # Errors
    /// Whatever `body` returns, or [`ProtoError::EncodeTooLong`] naming `message` if the
    /// body exceeds the 32-bit length.
    pub fn message<F>(
        &mut self,
        tag: Option<u8>,
        message: &'static str,
        body: F,
    ) -> Result<(), ProtoError>
    where
        F: FnOnce(&mut Writer<'_>) -> Result<(), ProtoError>,
    {
        let start = self.buf.len();
        if let Some(tag) = tag {
            self.buf.put_u8(tag);
        }
        let len_at = self.buf.len();
        self.buf.put_i32(0);
        if let Err(e) = body(&mut Writer { buf: self.buf }) {
            self.buf.truncate(start);
            return Err(e);
        }
        let len = self.buf.len() - len_at;
        let Ok(len32) = i32::try_from(len) else {
            self.buf.truncate(start);
            return Err(ProtoError::EncodeTooLong { message, len });
        };
        self.buf[len_at..len_at + 4].copy_from_slice(&len32.to_be_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_backpatches_length() {
        let mut buf = BytesMut::new();
        let mut w = Writer::new(&mut buf);
        w.message(Some(b'c'), "CopyDone", |_| Ok(())).unwrap();
        w.message(None, "SSLRequest", |w| {
            w.i32(80_877_103);
            Ok(())
        })
        .unwrap();
        assert_eq!(
            &buf[..],
            b"c\x00\x00\x00\x04\x00\x00\x00\x08\x04\xd2\x16\x2f"
        );
    }

    #[test]
    fn failed_body_leaves_buffer_untouched() {
        let mut buf = BytesMut::from(&b"xy"[..]);
        let err = Writer::new(&mut buf)
            .message(Some(b'Q'), "Query", |w| w.cstr("Query.sql", "a\0b"))
            .unwrap_err();
        assert_eq!(err, ProtoError::InteriorNul { field: "Query.sql" });
        assert_eq!(&buf[..], b"xy");
    }
}
