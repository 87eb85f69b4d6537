//! Errors for the domain newtypes ([`Lsn`](crate::Lsn), [`TimeLineId`](crate::TimeLineId),
//! [`SegNo`](crate::SegNo), [`WalSegSize`](crate::WalSegSize)) and the shared helper that
//! keeps offending input short enough to print.

/// A domain number could not be built from the given value or text.
///
/// Every variant carries the offending input (shortened to at most 80 characters) so the
/// message alone says what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// Text that is not an LSN in `X/Y` form.
    #[error(
        "invalid lsn {input:?}: expected two groups of 1 to 8 hex digits separated by '/', like 16/B374D848"
    )]
    Lsn {
        /// The rejected text.
        input: String,
    },
    /// A timeline id that is zero, out of range or not a number.
    #[error("invalid timeline id {input:?}: {reason}")]
    TimeLineId {
        /// The rejected text or number.
        input: String,
        /// What was wrong with it.
        reason: &'static str,
    },
    /// Text that is not a decimal segment number.
    #[error("invalid segment number {input:?}: expected a decimal number of at most 20 digits")]
    SegNo {
        /// The rejected text.
        input: String,
    },
    /// A segment size that PostgreSQL would not accept.
    #[error("invalid wal segment size {bytes} bytes: must be a power of two from 1MB to 1GB")]
    WalSegSize {
        /// The rejected size in bytes.
        bytes: u64,
    },
    /// Text that is not a segment size such as `16MB` or `16777216`.
    #[error(
        "invalid wal segment size {input:?}: expected a byte count with an optional unit B, kB, MB, GB or TB, like 16MB"
    )]
    WalSegSizeText {
        /// The rejected text.
        input: String,
    },
}

/// The longest piece of untrusted input copied into an error message.
const EXCERPT_CHARS: usize = 80;

/// Copies `input` for an error message, cut at [`EXCERPT_CHARS`] characters (on a character
/// boundary, so this never panics) with `…` marking the cut.
pub(crate) fn excerpt(input: &str) -> String {
    match input.char_indices().nth(EXCERPT_CHARS) {
        None => input.to_owned(),
        Some((cut, _)) => {
            let mut short = input.get(..cut).unwrap_or_default().to_owned();
            short.push('…');
            short
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_keeps_short_input_whole() {
        assert_eq!(excerpt("0/0"), "0/0");
        assert_eq!(excerpt(""), "");
    }

    #[test]
    fn excerpt_cuts_long_input_on_a_char_boundary() {
        let long = "é".repeat(200);
        let short = excerpt(&long);
        assert_eq!(short.chars().count(), EXCERPT_CHARS + 1);
        assert!(short.ends_with('…'));
    }

    #[test]
    fn messages_are_lower_case_and_name_the_input() {
        let e = ValueError::Lsn {
            input: "x/y".into(),
        };
        let msg = e.to_string();
        assert!(msg.starts_with("invalid lsn \"x/y\""), "{msg}");
        assert!(!msg.ends_with('.'));
    }
}
