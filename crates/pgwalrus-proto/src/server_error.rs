//! Typed server errors and notices (`ErrorResponse` / `NoticeResponse` bodies).
//!
//! The server sends each report as a list of one-byte-coded fields. We keep the ones a
//! program or an operator can use — severity (localized and not), SQLSTATE, message,
//! detail, hint, position, context, source location — and display them the way `psql`
//! does by default: `FATAL:  message` followed by `DETAIL:` and `HINT:` lines.

use std::fmt;

use crate::error::ProtoError;
use crate::reader::Reader;

/// A five-character SQLSTATE code, such as `28P01`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SqlState([u8; 5]);

impl SqlState {
    /// `00000` successful completion; also used when a server omitted the code.
    pub const SUCCESSFUL_COMPLETION: SqlState = SqlState(*b"00000");
    /// `28000` invalid authorization specification (e.g. no `pg_hba.conf` entry).
    pub const INVALID_AUTHORIZATION_SPECIFICATION: SqlState = SqlState(*b"28000");
    /// `28P01` invalid password.
    pub const INVALID_PASSWORD: SqlState = SqlState(*b"28P01");
    /// `3D000` invalid catalog name (the database does not exist).
    pub const INVALID_CATALOG_NAME: SqlState = SqlState(*b"3D000");
    /// `42501` insufficient privilege (e.g. a role without `REPLICATION`).
    pub const INSUFFICIENT_PRIVILEGE: SqlState = SqlState(*b"42501");
    /// `42704` undefined object (e.g. a replication slot that does not exist).
    pub const UNDEFINED_OBJECT: SqlState = SqlState(*b"42704");
    /// `42710` duplicate object (e.g. a replication slot that already exists).
    pub const DUPLICATE_OBJECT: SqlState = SqlState(*b"42710");
    /// `55006` object in use (e.g. a replication slot active for another process).
    pub const OBJECT_IN_USE: SqlState = SqlState(*b"55006");
    /// `55000` object not in prerequisite state.
    pub const OBJECT_NOT_IN_PREREQUISITE_STATE: SqlState = SqlState(*b"55000");
    /// `0A000` feature not supported.
    pub const FEATURE_NOT_SUPPORTED: SqlState = SqlState(*b"0A000");
    /// `08P01` protocol violation.
    pub const PROTOCOL_VIOLATION: SqlState = SqlState(*b"08P01");
    /// `53300` too many connections.
    pub const TOO_MANY_CONNECTIONS: SqlState = SqlState(*b"53300");
    /// `57P01` admin shutdown (the server is shutting down).
    pub const ADMIN_SHUTDOWN: SqlState = SqlState(*b"57P01");
    /// `57P02` crash shutdown.
    pub const CRASH_SHUTDOWN: SqlState = SqlState(*b"57P02");
    /// `57P03` cannot connect now (starting up, shutting down, in recovery).
    pub const CANNOT_CONNECT_NOW: SqlState = SqlState(*b"57P03");
    /// `58P01` undefined file (e.g. requested WAL segment already removed).
    pub const UNDEFINED_FILE: SqlState = SqlState(*b"58P01");
    /// `40001` serialization failure.
    pub const SERIALIZATION_FAILURE: SqlState = SqlState(*b"40001");
    /// `40P01` deadlock detected.
    pub const DEADLOCK_DETECTED: SqlState = SqlState(*b"40P01");

    /// Parses a code; it must be five ASCII digits or upper-case letters.
    pub fn from_code(code: &str) -> Option<SqlState> {
        let bytes: [u8; 5] = code.as_bytes().try_into().ok()?;
        bytes
            .iter()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
            .then_some(SqlState(bytes))
    }

    /// The code as text.
    pub fn code(&self) -> &str {
        // Constructed only from ASCII.
        std::str::from_utf8(&self.0).unwrap_or("?????")
    }

    /// The two-character class (`28` for every authorization failure).
    pub fn class(&self) -> &str {
        &self.code()[..2]
    }
}

impl fmt::Display for SqlState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// How serious a server report is (the non-localized `V` field, or `S` when `V` is missing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Severity {
    /// `ERROR`: the command failed; the session goes on.
    Error,
    /// `FATAL`: the session ends.
    Fatal,
    /// `PANIC`: every session ends.
    Panic,
    /// `WARNING`.
    Warning,
    /// `NOTICE`.
    Notice,
    /// `DEBUG`.
    Debug,
    /// `INFO`.
    Info,
    /// `LOG`.
    Log,
    /// Anything else (a localized severity without a `V` field).
    Other,
}

impl Severity {
    fn parse(s: &str) -> Severity {
        match s {
            "ERROR" => Severity::Error,
            "FATAL" => Severity::Fatal,
            "PANIC" => Severity::Panic,
            "WARNING" => Severity::Warning,
            "NOTICE" => Severity::Notice,
            "DEBUG" => Severity::Debug,
            "INFO" => Severity::Info,
            "LOG" => Severity::Log,
            _ => Severity::Other,
        }
    }
}

/// An `ErrorResponse` or `NoticeResponse` from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    /// Severity for programs (`V`, 9.6+; falls back to `S`).
    pub severity: Severity,
    /// Severity as the server printed it, possibly translated (`S`).
    pub localized_severity: String,
    /// SQLSTATE (`C`); `00000` when the server sent none or an unparsable one.
    pub code: SqlState,
    /// Primary message (`M`).
    pub message: String,
    /// Detail (`D`).
    pub detail: Option<String>,
    /// Hint (`H`).
    pub hint: Option<String>,
    /// Cursor position in the query, 1-based characters (`P`).
    pub position: Option<u32>,
    /// Context, one line per level (`W`).
    pub where_: Option<String>,
    /// Source file (`F`).
    pub file: Option<String>,
    /// Source line (`L`).
    pub line: Option<u32>,
    /// Source routine (`R`).
    pub routine: Option<String>,
}

/// A `NoticeResponse` has the same fields as an error.
pub type Notice = ServerError;

impl ServerError {
    /// Decodes the field list of an `ErrorResponse`/`NoticeResponse` body.
    ///
    /// Text is decoded leniently (invalid UTF-8 replaced): a server running in a non-UTF-8
    /// encoding must still be able to tell us what went wrong.
    ///
    /// # Errors
    /// [`ProtoError`] naming the field when the list is not terminated.
    pub fn parse(body: &[u8]) -> Result<ServerError, ProtoError> {
        let mut r = Reader::new(body);
        let mut out = ServerError {
            severity: Severity::Other,
            localized_severity: String::new(),
            code: SqlState::SUCCESSFUL_COMPLETION,
            message: String::new(),
            detail: None,
            hint: None,
            position: None,
            where_: None,
            file: None,
            line: None,
            routine: None,
        };
        let mut nonlocalized = None;
        loop {
            let kind = r.u8("ErrorResponse.field_type")?;
            if kind == 0 {
                break;
            }
            let value = r.lossy_string("ErrorResponse.field_value")?;
            match kind {
                b'S' => out.localized_severity = value,
                b'V' => nonlocalized = Some(value),
                b'C' => {
                    out.code =
                        SqlState::from_code(&value).unwrap_or(SqlState::SUCCESSFUL_COMPLETION)
                }
                b'M' => out.message = value,
                b'D' => out.detail = Some(value),
                b'H' => out.hint = Some(value),
                b'P' => out.position = value.parse().ok(),
                b'W' => out.where_ = Some(value),
                b'F' => out.file = Some(value),
                b'L' => out.line = value.parse().ok(),
                b'R' => out.routine = Some(value),
                // Schema, table, column, type, constraint, internal query/position and
                // fields added by future servers: not needed here.
                _ => {}
            }
        }
        r.finish("ErrorResponse")?;
        out.severity = Severity::parse(nonlocalized.as_deref().unwrap_or(&out.localized_severity));
        if out.localized_severity.is_empty() {
            out.localized_severity = nonlocalized.unwrap_or_default();
        }
        Ok(out)
    }

    /// The SQLSTATE.
    pub fn code(&self) -> SqlState {
        self.code
    }

    /// Whether this reports failed authentication: `28P01` (wrong password) or `28000`
    /// (rejected by `pg_hba.conf`, unknown role, missing client certificate…).
    pub fn is_auth_failure(&self) -> bool {
        self.code == SqlState::INVALID_PASSWORD
            || self.code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
    }

    /// Whether retrying later may succeed: connection exceptions (class `08`), insufficient
    /// resources (class `53`), operator intervention that ends sessions (`57P01`–`57P03`,
    /// `57P05`), serialization failures and deadlocks. Decided by SQLSTATE only.
    pub fn is_transient(&self) -> bool {
        matches!(self.code.class(), "08" | "53")
            || matches!(
                self.code.code(),
                "57P01" | "57P02" | "57P03" | "57P05" | "40001" | "40P01"
            )
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = if self.localized_severity.is_empty() {
            "ERROR"
        } else {
            &self.localized_severity
        };
        write!(f, "{severity}:  {}", self.message)?;
        if let Some(detail) = &self.detail {
            write!(f, "\nDETAIL:  {detail}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\nHINT:  {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ServerError {}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Encodes a field list the way the server does (for tests and property tests).
    pub(crate) fn encode_fields(fields: &[(u8, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, v) in fields {
            out.push(*k);
            out.extend_from_slice(v.as_bytes());
            out.push(0);
        }
        out.push(0);
        out
    }

    #[test]
    fn parse_and_display_auth_failure() {
        let body = encode_fields(&[
            (b'S', "FATAL"),
            (b'V', "FATAL"),
            (b'C', "28P01"),
            (b'M', "password authentication failed for user \"x\""),
            (b'F', "auth.c"),
            (b'L', "326"),
            (b'R', "auth_failed"),
        ]);
        let e = ServerError::parse(&body).unwrap();
        assert_eq!(e.severity, Severity::Fatal);
        assert_eq!(e.code(), SqlState::INVALID_PASSWORD);
        assert!(e.is_auth_failure());
        assert!(!e.is_transient());
        assert_eq!(e.line, Some(326));
        assert_eq!(e.routine.as_deref(), Some("auth_failed"));
        assert_eq!(
            e.to_string(),
            "FATAL:  password authentication failed for user \"x\""
        );
    }

    #[test]
    fn localized_severity_is_shown_but_v_decides() {
        let body = encode_fields(&[
            (b'S', "FATAL"),
            (b'V', "FATAL"),
            (b'S', "FATAL"),
            (b'C', "57P03"),
            (b'M', "the database system is starting up"),
            (b'D', "d"),
            (b'H', "h"),
        ]);
        let mut e = ServerError::parse(&body).unwrap();
        assert!(e.is_transient());
        assert_eq!(
            e.to_string(),
            "FATAL:  the database system is starting up\nDETAIL:  d\nHINT:  h"
        );
        e.localized_severity = "SCHWERWIEGEND".into();
        assert!(e.to_string().starts_with("SCHWERWIEGEND:  "));
        let body = encode_fields(&[(b'S', "FEHLER"), (b'V', "ERROR"), (b'M', "m")]);
        let e = ServerError::parse(&body).unwrap();
        assert_eq!(e.severity, Severity::Error);
        assert_eq!(e.code(), SqlState::SUCCESSFUL_COMPLETION);
    }

    #[test]
    fn unknown_fields_ignored_and_garbage_rejected() {
        let body = encode_fields(&[(b'V', "ERROR"), (b'Z', "future"), (b'M', "m")]);
        assert_eq!(ServerError::parse(&body).unwrap().message, "m");
        assert!(ServerError::parse(b"Mabc").is_err());
        assert!(ServerError::parse(b"").is_err());
        assert!(ServerError::parse(b"\0extra").is_err());
    }

    #[test]
    fn sqlstate_validation() {
        assert_eq!(
            SqlState::from_code("28P01"),
            Some(SqlState::INVALID_PASSWORD)
        );
        assert_eq!(SqlState::from_code("28p01"), None);
        assert_eq!(SqlState::from_code("2801"), None);
        assert_eq!(SqlState::INVALID_PASSWORD.class(), "28");
    }
}
