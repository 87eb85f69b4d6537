//! Hex digit helpers shared by the LSN and file-name parsers. Byte-based so that no input,
//! however malformed or non-ASCII, can cause a slicing panic.

/// Why a fixed-width upper-case hex field was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HexFieldError {
    /// Wrong number of characters.
    Length,
    /// Hex, but with lower-case letters (PostgreSQL only writes upper case).
    LowerCase,
    /// A character that is not a hex digit at all.
    NotHex,
}

impl HexFieldError {
    /// A lower-case description for error messages.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Self::Length => "expected exactly 8 hex digits per field",
            Self::LowerCase => "hex digits must be upper-case, as PostgreSQL writes them",
            Self::NotHex => "expected only hex digits 0-9 and A-F",
        }
    }
}

/// The value of one hex digit, accepting both cases.
pub(crate) fn digit_value(b: u8) -> Option<u32> {
    match b {
        b'0'..=b'9' => Some(u32::from(b - b'0')),
        b'A'..=b'F' => Some(u32::from(b - b'A' + 10)),
        b'a'..=b'f' => Some(u32::from(b - b'a' + 10)),
        _ => None,
    }
}

/// Parses exactly eight upper-case hex digits, the width of every numeric field in a WAL
/// file name (PostgreSQL's `%08X`).
pub(crate) fn parse_upper8(field: &[u8]) -> Result<u32, HexFieldError> {
    if field.len() != 8 {
        return Err(HexFieldError::Length);
    }
    let mut value: u32 = 0;
    for &b in field {
        let d = match b {
            b'0'..=b'9' | b'A'..=b'F' => digit_value(b).ok_or(HexFieldError::NotHex)?,
            b'a'..=b'f' => return Err(HexFieldError::LowerCase),
            _ => return Err(HexFieldError::NotHex),
        };
        // Eight digits are at most 32 bits, so the shift never loses bits.
        value = (value << 4) | d;
    }
    Ok(value)
}

/// Parses 1 to 8 hex digits of either case (one half of an LSN, as `pg_lsn` accepts it).
pub(crate) fn parse_half(field: &[u8]) -> Option<u32> {
    if field.is_empty() || field.len() > 8 {
        return None;
    }
    field
        .iter()
        .try_fold(0u32, |acc, &b| Some((acc << 4) | digit_value(b)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper8_accepts_only_eight_upper_case_digits() {
        assert_eq!(parse_upper8(b"0000000A"), Ok(10));
        assert_eq!(parse_upper8(b"FFFFFFFF"), Ok(u32::MAX));
        assert_eq!(parse_upper8(b"0000000a"), Err(HexFieldError::LowerCase));
        assert_eq!(parse_upper8(b"0000000G"), Err(HexFieldError::NotHex));
        assert_eq!(parse_upper8(b"000000000"), Err(HexFieldError::Length));
        assert_eq!(parse_upper8(b""), Err(HexFieldError::Length));
        assert_eq!(
            parse_upper8("0000000é".as_bytes()),
            Err(HexFieldError::Length)
        );
    }

    #[test]
    fn half_accepts_one_to_eight_digits_of_either_case() {
        assert_eq!(parse_half(b"a"), Some(10));
        assert_eq!(parse_half(b"0000A000"), Some(0xA000));
        assert_eq!(parse_half(b"ffffffff"), Some(u32::MAX));
        assert_eq!(parse_half(b""), None);
        assert_eq!(parse_half(b"000000001"), None);
        assert_eq!(parse_half(b"+1"), None);
        assert_eq!(parse_half(b"0x1"), None);
    }
}
