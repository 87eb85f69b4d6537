//! The client's error type.
//!
//! [`Error`] keeps its sources and carries the connection target (`127.0.0.1:5432`, or a
//! socket path) where one is known. The predicates ([`Error::is_auth_failure`],
//! [`Error::is_transient`]…) decide from `io::ErrorKind` and SQLSTATE, never from message
//! text.
//!
//! A message never repeats its source: print an error with [`chain`] (`error: source:
//! source…`) to show the whole of it. The socket errors of [`Error::Resolve`],
//! [`Error::Connect`] and [`Error::Io`] are the exception the other way round: their
//! message words the operating system's error as libpq does, so it is kept in a field and
//! is not a `source()`.

use std::fmt;
use std::io;
use std::time::Duration;

use pgwalrus_proto::query::QueryError;
use pgwalrus_proto::startup::StartupError;
use pgwalrus_proto::{ProtoError, ServerError, SqlState};

use crate::tls::TlsError;

/// Something went wrong talking to a server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A host name could not be resolved.
    #[error(
        "could not translate host name \"{host}\" to address: {}",
        describe_io(error)
    )]
    Resolve {
        /// The host name.
        host: String,
        /// Why (worded in the message; not a `source()`).
        error: io::Error,
    },
    /// The TCP or Unix-socket connection could not be made.
    #[error("connection to {target} failed: {}", describe_io(error))]
    Connect {
        /// `address:port` or the socket path.
        target: String,
        /// Why (worded in the message; not a `source()`).
        error: io::Error,
    },
    /// `connect_timeout` expired before the connection was ready for queries.
    #[error("connection to {target} failed: timeout after {}s", timeout.as_secs())]
    Timeout {
        /// `address:port` or the socket path.
        target: String,
        /// The limit that expired.
        timeout: Duration,
    },
    /// The TLS settings could not be turned into a TLS configuration.
    #[error("connection to {target} failed")]
    TlsConfig {
        /// `address:port`.
        target: String,
        /// Why.
        #[source]
        source: TlsError,
    },
    /// The TLS handshake failed (certificate not trusted, name mismatch, protocol…, or the
    /// connection was lost during it: then [`Error::is_transient`]).
    #[error("connection to {target} failed: TLS handshake")]
    TlsHandshake {
        /// `address:port`.
        target: String,
        /// What rustls reported.
        #[source]
        source: io::Error,
    },
    /// The server answered the SSLRequest with "no", and the `sslmode` requires TLS.
    #[error("connection to {target} failed: server does not support SSL, but SSL was required")]
    TlsNotSupported {
        /// `address:port`.
        target: String,
    },
    /// The server answered the SSLRequest with something other than `S`, `N` or an error.
    #[error(
        "connection to {target} failed: received invalid response to SSL negotiation: 0x{byte:02x}"
    )]
    TlsBadResponse {
        /// `address:port`.
        target: String,
        /// The byte received.
        byte: u8,
    },
    /// A direct TLS connection was made without ALPN `postgresql` being selected.
    #[error(
        "connection to {target} failed: direct SSL connection was established without ALPN protocol negotiation extension"
    )]
    TlsNoAlpn {
        /// `address:port`.
        target: String,
    },
    /// Startup or authentication failed: the server's error (wrong password, no
    /// `pg_hba.conf` entry, not allowed to replicate…), a channel-binding violation, or a
    /// SCRAM failure.
    #[error("connection to {target} failed")]
    Startup {
        /// `address:port` or the socket path.
        target: String,
        /// What happened.
        #[source]
        source: StartupError,
    },
    /// The server is older than PostgreSQL 14.
    #[error(
        "connection to {target} failed: server version {version} is not supported; pgwalrus needs PostgreSQL 14 or later"
    )]
    ServerTooOld {
        /// `address:port` or the socket path.
        target: String,
        /// The server's `server_version`.
        version: String,
    },
    /// The server did not report a usable `server_version`.
    #[error(
        "connection to {target} failed: could not determine the server version from {version:?}"
    )]
    UnknownServerVersion {
        /// `address:port` or the socket path.
        target: String,
        /// What it reported (empty when nothing).
        version: String,
    },
    /// The server does not have the session attributes `target_session_attrs` asks for.
    #[error("connection to {target} failed: {reason}")]
    SessionAttrs {
        /// `address:port` or the socket path.
        target: String,
        /// libpq's wording: `session is read-only`, `server is in hot standby mode`…
        reason: &'static str,
    },
    /// Every host (and every address of every host) failed; each failure is listed.
    #[error("could not connect to any server: {}", ListFailures(attempts))]
    AllFailed {
        /// One error per attempt, in order.
        attempts: Vec<Error>,
    },
    /// The configuration lists no host.
    #[error("no host to connect to")]
    NoHosts,
    /// The server reported an error for a command; the connection is still usable.
    #[error("{0}")]
    Server(Box<ServerError>),
    /// Reading from or writing to an established connection failed.
    #[error("could not {op} {target}: {}", describe_io(error))]
    Io {
        /// `receive data from` or `send data to`.
        op: &'static str,
        /// `address:port` or the socket path.
        target: String,
        /// Why (worded in the message; not a `source()`).
        error: io::Error,
    },
    /// The server closed the connection.
    #[error("server {target} closed the connection unexpectedly")]
    Closed {
        /// `address:port` or the socket path.
        target: String,
        /// The server's last error, if it sent one before closing (e.g. a `FATAL` on
        /// shutdown).
        #[source]
        last_error: Option<Box<ServerError>>,
    },
    /// The server ended the connection on purpose: a walsender whose server shuts down
    /// ends streaming (a bare `CommandComplete`, or after `CopyDone`) and closes, and a
    /// session an administrator ends gets FATAL with SQLSTATE `57P01` (admin_shutdown),
    /// which a fast shutdown sends too. Decided by the messages that came before the end of
    /// the stream and by the SQLSTATE constant, never by the server's wording. Transient,
    /// like [`Error::Closed`].
    #[error(
        "server {target} ended the connection: it is shutting down (or an administrator ended the session)"
    )]
    ShutDown {
        /// `address:port` or the socket path.
        target: String,
        /// The server's error, when it sent one (`57P01`).
        #[source]
        last_error: Option<Box<ServerError>>,
    },
    /// A request could not be encoded (a NUL byte in a query, a slot name with `"`…);
    /// nothing was sent.
    #[error("invalid request")]
    Encode {
        /// What was wrong.
        #[source]
        source: ProtoError,
    },
    /// The server sent bytes that do not decode.
    #[error("protocol error from {target}")]
    Protocol {
        /// `address:port` or the socket path.
        target: String,
        /// What was wrong.
        #[source]
        source: ProtoError,
    },
    /// The server sent a message that makes no sense at this point.
    #[error("protocol error from {target}: unexpected {message} {during}")]
    Unexpected {
        /// `address:port` or the socket path.
        target: String,
        /// The message.
        message: &'static str,
        /// What we were doing.
        during: &'static str,
    },
    /// A command this server version does not have.
    #[error(
        "{command} is not supported by server version {server_version_num} (needs {min_version_num} or later)"
    )]
    Unsupported {
        /// The command.
        command: &'static str,
        /// The server's version number.
        server_version_num: u32,
        /// The first version that has it.
        min_version_num: u32,
    },
    /// The operation needs the replication stream to still be in copy mode (or to have
    /// ended, for [`crate::ReplicationStream::into_connection`]).
    #[error("replication stream is {state}")]
    StreamState {
        /// Where the stream is.
        state: &'static str,
    },
}

impl Error {
    /// Whether the server refused our credentials (SQLSTATE `28P01`/`28000`), or the server
    /// wanted a password and none was available. For [`Error::AllFailed`], whether any
    /// attempt failed so.
    pub fn is_auth_failure(&self) -> bool {
        match self {
            Error::Startup { source, .. } => source.is_auth_failure(),
            Error::Server(e) => e.is_auth_failure(),
            Error::AllFailed { attempts } => attempts.iter().any(Error::is_auth_failure),
            _ => false,
        }
    }

    /// The server's error report, if this is one (for [`Error::AllFailed`], the last
    /// attempt's).
    pub fn server_error(&self) -> Option<&ServerError> {
        match self {
            Error::Server(e) => Some(e),
            Error::Startup { source, .. } => source.server_error(),
            Error::Closed { last_error, .. } | Error::ShutDown { last_error, .. } => {
                last_error.as_deref()
            }
            Error::AllFailed { attempts } => attempts.iter().rev().find_map(Error::server_error),
            _ => None,
        }
    }

    /// Whether the connection was refused (nothing listening). For [`Error::AllFailed`],
    /// whether every attempt was.
    pub fn is_connection_refused(&self) -> bool {
        match self {
            Error::Connect { error, .. } => error.kind() == io::ErrorKind::ConnectionRefused,
            Error::AllFailed { attempts } => {
                !attempts.is_empty() && attempts.iter().all(Error::is_connection_refused)
            }
            _ => false,
        }
    }

    /// Whether a time limit expired (`connect_timeout`, or the OS's connect timeout). For
    /// [`Error::AllFailed`], whether every attempt did.
    pub fn is_timeout(&self) -> bool {
        match self {
            Error::Timeout { .. } => true,
            Error::Connect { error, .. } | Error::Io { error, .. } => {
                error.kind() == io::ErrorKind::TimedOut
            }
            Error::AllFailed { attempts } => {
                !attempts.is_empty() && attempts.iter().all(Error::is_timeout)
            }
            _ => false,
        }
    }

    /// Whether trying again later may succeed: network failures and time-outs, a server that
    /// closed the connection, shutting down or starting up, too many connections, a standby
    /// where a primary was wanted. Decided by `io::ErrorKind` and SQLSTATE. For
    /// [`Error::AllFailed`], whether every attempt was transient.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Resolve { error, .. }
            | Error::Connect { error, .. }
            | Error::Io { error, .. } => io_is_transient(error),
            // The connection dropped in the middle of the handshake (rustls reports an end of
            // file or a reset as such); what the handshake itself refuses — a certificate, a
            // protocol version, an alert — comes as `InvalidData` and stays permanent.
            Error::TlsHandshake { source, .. } => io_is_transient(source),
            Error::Timeout { .. }
            | Error::Closed { .. }
            | Error::ShutDown { .. }
            | Error::SessionAttrs { .. } => true,
            Error::Startup { source, .. } => {
                source.server_error().is_some_and(ServerError::is_transient)
            }
            Error::Server(e) => e.is_transient(),
            Error::AllFailed { attempts } => {
                !attempts.is_empty() && attempts.iter().all(Error::is_transient)
            }
            _ => false,
        }
    }

    /// Whether retrying with the same settings cannot help: authentication refused, a missing
    /// privilege (SQLSTATE `42501`), an authorization error (class `28`), a database that
    /// does not exist (`3D000`), TLS settings or certificate checks, an unsupported server
    /// or request. The opposite of [`Error::is_transient`] for everything a retry loop sees;
    /// an error neither transient nor listed here (a protocol violation, say) is retried. For
    /// [`Error::AllFailed`], whether any attempt failed permanently: retrying will not fix
    /// that host.
    pub fn is_permanent(&self) -> bool {
        if let Error::AllFailed { attempts } = self {
            return attempts.iter().any(Error::is_permanent);
        }
        if self.is_auth_failure() {
            return true;
        }
        if let Some(server) = self.server_error() {
            let code = server.code();
            if code == SqlState::INSUFFICIENT_PRIVILEGE
                || code.class() == SqlState::INVALID_AUTHORIZATION_SPECIFICATION.class()
                || code == SqlState::INVALID_CATALOG_NAME
            {
                return true;
            }
        }
        if self.is_transient() {
            return false;
        }
        matches!(
            self,
            Error::ServerTooOld { .. }
                | Error::TlsConfig { .. }
                | Error::TlsHandshake { .. }
                | Error::TlsNotSupported { .. }
                | Error::TlsNoAlpn { .. }
                | Error::Startup { .. }
                | Error::Encode { .. }
                | Error::Unsupported { .. }
                | Error::NoHosts
        )
    }

    /// The SQLSTATE of the server's error report, if this is one.
    pub fn sqlstate(&self) -> Option<SqlState> {
        self.server_error().map(ServerError::code)
    }

    /// The connection target (`127.0.0.1:5432`, a socket path) this error is about, if any.
    pub fn target(&self) -> Option<&str> {
        match self {
            Error::Connect { target, .. }
            | Error::Timeout { target, .. }
            | Error::TlsConfig { target, .. }
            | Error::TlsHandshake { target, .. }
            | Error::TlsNotSupported { target }
            | Error::TlsBadResponse { target, .. }
            | Error::TlsNoAlpn { target }
            | Error::Startup { target, .. }
            | Error::ServerTooOld { target, .. }
            | Error::UnknownServerVersion { target, .. }
            | Error::SessionAttrs { target, .. }
            | Error::Io { target, .. }
            | Error::Closed { target, .. }
            | Error::ShutDown { target, .. }
            | Error::Protocol { target, .. }
            | Error::Unexpected { target, .. } => Some(target),
            Error::Resolve { host, .. } => Some(host),
            _ => None,
        }
    }

    pub(crate) fn from_query(target: &str, e: QueryError) -> Error {
        match e {
            QueryError::Server(e) => Error::Server(e),
            QueryError::Unexpected { message } => Error::Unexpected {
                target: target.to_owned(),
                message,
                during: "in a query response",
            },
            _ => Error::Unexpected {
                target: target.to_owned(),
                message: "message",
                during: "in a query response",
            },
        }
    }
}

fn io_is_transient(e: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused
            | ConnectionReset
            | ConnectionAborted
            | NotConnected
            | BrokenPipe
            | TimedOut
            | UnexpectedEof
            | Interrupted
            | WouldBlock
            | AddrNotAvailable
            | HostUnreachable
            | NetworkUnreachable
            | NetworkDown
    )
}

/// Lower-case words for the common socket errors, without the `(os error N)` suffix; other
/// errors are shown as the OS reports them.
fn describe_io(e: &io::Error) -> String {
    use io::ErrorKind::*;
    let words = match e.kind() {
        ConnectionRefused => "connection refused",
        ConnectionReset => "connection reset by peer",
        ConnectionAborted => "connection aborted",
        TimedOut => "timeout",
        HostUnreachable => "no route to host",
        NetworkUnreachable => "network is unreachable",
        AddrNotAvailable => "address not available",
        NotFound => "no such file or directory",
        PermissionDenied => "permission denied",
        BrokenPipe => "broken pipe",
        UnexpectedEof => "unexpected end of stream",
        _ => return e.to_string(),
    };
    words.to_owned()
}

/// Displays `e` and its sources, `error: source: source…`: the whole of an error whose
/// message does not repeat its source (none of this workspace's errors does). Use it
/// wherever an error is shown to people (a log line, a message that embeds it); an error
/// handed on whole to `anyhow` is shown the same way by `{:#}`.
///
/// ```
/// use std::io;
/// use pgwalrus_client::error_chain;
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("could not read the map")]
/// struct NoMap(#[source] io::Error);
///
/// let e = NoMap(io::Error::other("the dog ate it"));
/// assert_eq!(e.to_string(), "could not read the map");
/// assert_eq!(error_chain(&e).to_string(), "could not read the map: the dog ate it");
/// ```
pub fn chain<'a>(e: &'a (dyn std::error::Error + 'static)) -> impl fmt::Display + 'a {
    Chain(e)
}

/// [`chain`]'s display.
struct Chain<'a>(&'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(e) = source {
            write!(f, ": {e}")?;
            source = e.source();
        }
        Ok(())
    }
}

struct ListFailures<'a>(&'a [Error]);

impl fmt::Display for ListFailures<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            // Multi-line server messages (DETAIL/HINT) stay readable inline. Every attempt is
            // listed, a repeated one too: libpq reports the TLS and the plain attempt of
            // `sslmode=prefer` separately, and so do we.
            write!(f, "{}", chain(e).to_string().replace('\n', " "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(target: &str) -> Error {
        Error::Connect {
            target: target.into(),
            error: io::Error::from(io::ErrorKind::ConnectionRefused),
        }
    }

    #[test]
    fn messages_are_lower_case_and_name_the_target() {
        let e = refused("127.0.0.1:5999");
        assert_eq!(
            e.to_string(),
            "connection to 127.0.0.1:5999 failed: connection refused"
        );
        assert!(e.is_connection_refused() && e.is_transient() && !e.is_auth_failure());
        let t = Error::Timeout {
            target: "db:5432".into(),
            timeout: Duration::from_secs(3),
        };
        assert_eq!(
            t.to_string(),
            "connection to db:5432 failed: timeout after 3s"
        );
        assert!(t.is_timeout());
    }

    #[test]
    fn all_failed_lists_every_attempt() {
        let server = ServerError::parse(
            b"SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed for user \"u\"\0\0",
        )
        .unwrap();
        let e = Error::AllFailed {
            attempts: vec![
                refused("127.0.0.1:1"),
                Error::Startup {
                    target: "127.0.0.1:2".into(),
                    source: StartupError::Server(Box::new(server)),
                },
            ],
        };
        assert_eq!(
            e.to_string(),
            "could not connect to any server: connection to 127.0.0.1:1 failed: connection refused; connection to 127.0.0.1:2 failed: FATAL:  password authentication failed for user \"u\""
        );
        assert!(e.is_auth_failure());
        assert!(!e.is_connection_refused());
        assert!(!e.is_transient());
        assert_eq!(e.server_error().unwrap().code().code(), "28P01");
        let all_refused = Error::AllFailed {
            attempts: vec![refused("a:1"), refused("b:2")],
        };
        assert!(all_refused.is_connection_refused() && all_refused.is_transient());
    }

    #[test]
    fn the_chain_shows_each_cause_once() {
        let server =
            ServerError::parse(b"SFATAL\0VFATAL\0C53300\0Msorry, too many clients already\0\0")
                .unwrap();
        let startup = Error::Startup {
            target: "h:1".into(),
            source: StartupError::Server(Box::new(server)),
        };
        assert_eq!(startup.to_string(), "connection to h:1 failed");
        assert_eq!(
            chain(&startup).to_string(),
            "connection to h:1 failed: FATAL:  sorry, too many clients already"
        );
        // The socket errors are worded in the message, as libpq does, and not repeated.
        let refused = refused("h:1");
        assert!(std::error::Error::source(&refused).is_none());
        assert_eq!(
            chain(&refused).to_string(),
            "connection to h:1 failed: connection refused"
        );
        let protocol = Error::Protocol {
            target: "h:1".into(),
            source: ProtoError::invalid("DataRow", "too short"),
        };
        let cause = std::error::Error::source(&protocol).unwrap().to_string();
        assert!(!protocol.to_string().contains(&cause), "{protocol}");
        assert_eq!(
            chain(&protocol).to_string(),
            format!("protocol error from h:1: {cause}")
        );
    }

    #[test]
    fn transient_by_sqlstate() {
        let shutdown = ServerError::parse(
            b"SFATAL\0C57P01\0Mterminating connection due to administrator command\0\0",
        )
        .unwrap();
        assert!(Error::Server(Box::new(shutdown)).is_transient());
        let perm = ServerError::parse(
            b"SFATAL\0C42501\0Mmust be superuser or replication role to start walsender\0\0",
        )
        .unwrap();
        assert!(!Error::Server(Box::new(perm)).is_transient());
    }

    /// A handshake the network cut short is retried; one the TLS layer refused is not.
    #[test]
    fn a_tls_handshake_cut_short_is_transient_a_refused_one_permanent() {
        let handshake = |source: io::Error| Error::TlsHandshake {
            target: "db1:5432".to_owned(),
            source,
        };
        for kind in [io::ErrorKind::UnexpectedEof, io::ErrorKind::ConnectionReset] {
            let e = handshake(io::Error::new(kind, "tls handshake eof"));
            assert!(e.is_transient() && !e.is_permanent(), "{kind:?}");
        }
        let refused = handshake(io::Error::new(
            io::ErrorKind::InvalidData,
            "invalid peer certificate: UnknownIssuer",
        ));
        assert!(!refused.is_transient() && refused.is_permanent());
    }
}
