//! [`ConfigError`]: everything that can be wrong with connection settings, from a stray quote
//! in a connection string to an `sslmode` too weak for `sslrootcert=system`.
//!
//! Syntax errors carry the byte offset (0-based) of the offending token in the string that
//! was parsed; errors found while resolving carry the [`ParamSource`] of the bad value, which
//! for a value from a connection string is again its byte offset.

use super::{ParamSource, SslMode};

/// Why connection settings could not be parsed or resolved.
///
/// Messages follow libpq's wording where libpq has one, lower-case, with the position or
/// origin added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A keyword in a `key=value` string is not followed by `=` (this is also what a bare
    /// word such as a database name gives). `position` is where the keyword starts.
    #[error("missing \"=\" after \"{keyword}\" in connection info string (at byte {position})")]
    MissingEquals {
        /// The word that should have been a keyword.
        keyword: String,
        /// Byte offset of the word.
        position: usize,
    },
    /// A single-quoted value runs to the end of the string.
    #[error(
        "unterminated quoted string in connection info string (value of \"{keyword}\", quote at byte {position})"
    )]
    UnterminatedQuote {
        /// The keyword whose value is unterminated.
        keyword: String,
        /// Byte offset of the opening quote.
        position: usize,
    },
    /// A keyword libpq does not know.
    #[error("invalid connection option \"{keyword}\"{}", at_byte(*.position))]
    InvalidKeyword {
        /// The unknown keyword.
        keyword: String,
        /// Byte offset of the keyword, when it came from a string.
        position: Option<usize>,
    },
    /// A value contains a NUL character, which no libpq string can hold.
    #[error("value of connection option \"{keyword}\" contains a NUL character{}", at_byte(*.position))]
    NulInValue {
        /// The keyword whose value holds the NUL.
        keyword: String,
        /// Byte offset of the value, when it came from a string.
        position: Option<usize>,
    },
    /// A `[` opening an IPv6 host address in a URI has no matching `]`.
    #[error(
        "end of string reached when looking for matching \"]\" in IPv6 host address in URI (\"[\" at byte {position})"
    )]
    UriUnterminatedIpv6 {
        /// Byte offset of the `[`.
        position: usize,
    },
    /// `[]` in a URI.
    #[error("IPv6 host address may not be empty in URI (at byte {position})")]
    UriEmptyIpv6 {
        /// Byte offset of the `[`.
        position: usize,
    },
    /// Something other than `:`, `/`, `?` or `,` follows a bracketed IPv6 host.
    #[error(
        "unexpected character \"{character}\" at byte {position} in URI (expected \":\" or \"/\")"
    )]
    UriUnexpectedCharacter {
        /// The character found.
        character: char,
        /// Its byte offset.
        position: usize,
    },
    /// A URI query parameter without `=`.
    #[error(
        "missing key/value separator \"=\" in URI query parameter \"{parameter}\" (at byte {position})"
    )]
    UriMissingEquals {
        /// The parameter as written (not percent-decoded).
        parameter: String,
        /// Byte offset of the parameter.
        position: usize,
    },
    /// A URI query parameter with a second `=`.
    #[error(
        "extra key/value separator \"=\" in URI query parameter \"{parameter}\" (at byte {position})"
    )]
    UriExtraEquals {
        /// The keyword part, as written.
        parameter: String,
        /// Byte offset of the second `=`.
        position: usize,
    },
    /// A `%` in a URI not followed by two hexadecimal digits.
    #[error("invalid percent-encoded token in {part} of URI (at byte {position})")]
    InvalidPercentEncoding {
        /// Which part: `user`, `password`, `host`, `port`, `dbname`, or the query keyword.
        part: String,
        /// Byte offset of the `%`.
        position: usize,
    },
    /// `%00` in a URI.
    #[error("forbidden value %00 in percent-encoded {part} of URI (at byte {position})")]
    PercentEncodedNul {
        /// Which part of the URI.
        part: String,
        /// Byte offset of the `%`.
        position: usize,
    },
    /// Percent-decoding produced bytes that are not UTF-8.
    #[error("percent-decoded {part} of URI is not valid UTF-8 (at byte {position})")]
    UriNotUtf8 {
        /// Which part of the URI.
        part: String,
        /// Byte offset where that part starts.
        position: usize,
    },
    /// A value that is not one of the keyword's allowed values.
    #[error("invalid {keyword} value: \"{value}\" ({origin})")]
    InvalidValue {
        /// The keyword.
        keyword: &'static str,
        /// The rejected value (for list keywords such as `port`, the rejected element).
        value: String,
        /// Where the value came from.
        origin: ParamSource,
    },
    /// A value that should be an integer is not one.
    #[error("invalid integer value \"{value}\" for connection option \"{keyword}\" ({origin})")]
    InvalidInteger {
        /// The keyword.
        keyword: &'static str,
        /// The rejected value.
        value: String,
        /// Where the value came from.
        origin: ParamSource,
    },
    /// `host` and `hostaddr` list different numbers of hosts.
    #[error("could not match {hosts} host names to {hostaddrs} hostaddr values")]
    HostCountMismatch {
        /// Entries in `host`.
        hosts: usize,
        /// Entries in `hostaddr`.
        hostaddrs: usize,
    },
    /// `port` lists more than one port, but not one per host.
    #[error("could not match {ports} port numbers to {hosts} hosts ({origin})")]
    PortCountMismatch {
        /// Entries in `port`.
        ports: usize,
        /// Number of hosts.
        hosts: usize,
        /// Where the port list came from.
        origin: ParamSource,
    },
    /// `sslrootcert=system` with an `sslmode` other than `verify-full`.
    #[error(
        "weak sslmode \"{sslmode}\" may not be used with sslrootcert=system (use \"verify-full\")"
    )]
    WeakSslModeForSystemRoots {
        /// The mode in effect.
        sslmode: SslMode,
    },
    /// `sslnegotiation=direct` with an `sslmode` that would allow plaintext.
    #[error(
        "weak sslmode \"{sslmode}\" may not be used with sslnegotiation=direct (use \"require\", \"verify-ca\", or \"verify-full\")"
    )]
    WeakSslModeForDirect {
        /// The mode in effect.
        sslmode: SslMode,
    },
    /// `ssl_min_protocol_version` is above `ssl_max_protocol_version`.
    #[error("invalid SSL protocol version range")]
    InvalidSslProtocolRange,
    /// A libpq keyword pgwalrus recognises but cannot honour; ignoring it silently could
    /// weaken security or connect somewhere else, so it is refused.
    #[error("connection option \"{keyword}\" ({origin}) is not supported by pgwalrus: {reason}")]
    Unsupported {
        /// The keyword.
        keyword: &'static str,
        /// Where the value came from.
        origin: ParamSource,
        /// Why it cannot be honoured.
        reason: &'static str,
    },
    /// No user name was given and the operating-system user could not be determined.
    #[error("could not determine the local user name; set \"user\" or PGUSER")]
    NoUser,
}

impl ConfigError {
    /// Byte offset in the parsed string that the error points at, when there is one.
    pub fn position(&self) -> Option<usize> {
        match self {
            Self::MissingEquals { position, .. }
            | Self::UnterminatedQuote { position, .. }
            | Self::UriUnterminatedIpv6 { position }
            | Self::UriEmptyIpv6 { position }
            | Self::UriUnexpectedCharacter { position, .. }
            | Self::UriMissingEquals { position, .. }
            | Self::UriExtraEquals { position, .. }
            | Self::InvalidPercentEncoding { position, .. }
            | Self::PercentEncodedNul { position, .. }
            | Self::UriNotUtf8 { position, .. } => Some(*position),
            Self::InvalidKeyword { position, .. } | Self::NulInValue { position, .. } => *position,
            Self::InvalidValue { origin, .. }
            | Self::InvalidInteger { origin, .. }
            | Self::PortCountMismatch { origin, .. }
            | Self::Unsupported { origin, .. } => origin.position(),
            Self::HostCountMismatch { .. }
            | Self::WeakSslModeForSystemRoots { .. }
            | Self::WeakSslModeForDirect { .. }
            | Self::InvalidSslProtocolRange
            | Self::NoUser => None,
        }
    }

    /// The keyword (or URI part) the error is about, when there is one.
    pub fn keyword(&self) -> Option<&str> {
        match self {
            Self::MissingEquals { keyword, .. }
            | Self::UnterminatedQuote { keyword, .. }
            | Self::InvalidKeyword { keyword, .. }
            | Self::NulInValue { keyword, .. } => Some(keyword),
            Self::UriUnterminatedIpv6 { .. }
            | Self::UriEmptyIpv6 { .. }
            | Self::UriUnexpectedCharacter { .. } => Some("host"),
            Self::UriMissingEquals { parameter, .. } | Self::UriExtraEquals { parameter, .. } => {
                Some(parameter)
            }
            Self::InvalidPercentEncoding { part, .. }
            | Self::PercentEncodedNul { part, .. }
            | Self::UriNotUtf8 { part, .. } => Some(part),
            Self::InvalidValue { keyword, .. }
            | Self::InvalidInteger { keyword, .. }
            | Self::Unsupported { keyword, .. } => Some(keyword),
            Self::HostCountMismatch { .. } => Some("host"),
            Self::PortCountMismatch { .. } => Some("port"),
            Self::WeakSslModeForSystemRoots { .. } | Self::WeakSslModeForDirect { .. } => {
                Some("sslmode")
            }
            Self::InvalidSslProtocolRange => Some("ssl_min_protocol_version"),
            Self::NoUser => Some("user"),
        }
    }
}

fn at_byte(position: Option<usize>) -> String {
    match position {
        Some(p) => format!(" (at byte {p})"),
        None => String::new(),
    }
}
