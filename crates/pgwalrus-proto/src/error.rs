//! Wire-level decode and encode errors.
//!
//! Every failure names the field (or message) that was short or malformed, so a bad byte
//! stream from a server produces an error a human can act on rather than a panic or a bare
//! "invalid message".

use std::fmt;

/// A message could not be decoded or encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtoError {
    /// The input ended before `field` was complete.
    #[error("{field}: message ends early (needs {needed} bytes, {available} left)")]
    Short {
        /// The field being read.
        field: &'static str,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes that were left.
        available: usize,
    },
    /// A NUL-terminated string had no terminator.
    #[error("{field}: string has no nul terminator")]
    Unterminated {
        /// The field being read.
        field: &'static str,
    },
    /// A field held a value outside its domain.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field being read.
        field: &'static str,
        /// What was wrong with it.
        reason: String,
    },
    /// A text field was not valid UTF-8.
    #[error("{field}: not valid utf-8")]
    InvalidUtf8 {
        /// The field being read.
        field: &'static str,
    },
    /// A message had bytes left over after its last field.
    #[error("{message}: {count} unexpected trailing bytes")]
    TrailingBytes {
        /// The message being decoded.
        message: &'static str,
        /// How many bytes were left.
        count: usize,
    },
    /// A message header declared a length below the minimum of 4.
    #[error("message of type {tag} declares invalid length {len}")]
    BadLength {
        /// The message type byte.
        tag: Tag,
        /// The declared length (including itself).
        len: u32,
    },
    /// A message header declared a length above the configured limit.
    #[error("message of type {tag} declares length {len}, over the limit of {max} bytes")]
    TooLong {
        /// The message type byte.
        tag: Tag,
        /// The declared length (including itself).
        len: u32,
        /// The limit in force.
        max: usize,
    },
    /// The backend sent a message type this crate does not know.
    #[error("unknown backend message type {tag}")]
    UnknownTag {
        /// The message type byte.
        tag: Tag,
    },
    /// A string to be sent contains a NUL byte, which the protocol cannot carry.
    #[error("{field}: contains a nul byte")]
    InteriorNul {
        /// The field being encoded.
        field: &'static str,
    },
    /// A message to be sent is too large for the protocol's 32-bit length.
    #[error("{message}: too large to encode ({len} bytes)")]
    EncodeTooLong {
        /// The message being encoded.
        message: &'static str,
        /// Its length in bytes.
        len: usize,
    },
}

impl ProtoError {
    /// Shorthand for [`ProtoError::Invalid`].
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        ProtoError::Invalid {
            field,
            reason: reason.into(),
        }
    }
}

/// A message type byte, displayed as a quoted character when printable (`'W'`) and in hex
/// otherwise (`0x00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tag(pub u8);

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_ascii_graphic() {
            write!(f, "'{}'", self.0 as char)
        } else {
            write!(f, "0x{:02x}", self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_display() {
        assert_eq!(Tag(b'W').to_string(), "'W'");
        assert_eq!(Tag(0).to_string(), "0x00");
        assert_eq!(Tag(0xff).to_string(), "0xff");
    }

    #[test]
    fn messages_name_the_field() {
        let e = ProtoError::Short {
            field: "XLogData.start",
            needed: 8,
            available: 3,
        };
        assert_eq!(
            e.to_string(),
            "XLogData.start: message ends early (needs 8 bytes, 3 left)"
        );
    }
}
