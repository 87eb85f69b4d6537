//! Turning a fresh byte stream into a [`Connection`]: TLS negotiation (SSLRequest or direct
//! TLS), the startup packet, authentication through the sans-IO state machine, and the
//! server-version check.

use std::sync::atomic::{AtomicBool, Ordering};

use bytes::BytesMut;
use pgwalrus_proto::auth::scram::SCRAM_NONCE_LEN;
use pgwalrus_proto::frontend::{self, StartupMessage};
use pgwalrus_proto::startup::{
    AuthSettings, ChannelBindingPolicy, Startup, StartupError, StartupOutcome, Step,
};
use pgwalrus_proto::{BackendMessage, ProtoError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;

use crate::config::{ChannelBinding, Config, HostSpec, SslMode, SslNegotiation};
use crate::connection::{Connection, TlsInfo};
use crate::error::Error;
use crate::framed::Framed;
use crate::tls;
use crate::transport::{AsyncStream, Stream, host_label};

/// The oldest server version pgwalrus talks to.
pub const MIN_SERVER_VERSION_NUM: u32 = 140_000;

/// How one attempt treats TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TlsAttempt {
    /// No TLS (`disable`, or the first try of `allow`).
    Plain,
    /// SSLRequest; continue without TLS if the server says no (`prefer`).
    Try,
    /// SSLRequest; fail if the server says no (`require`, `verify-*`, second try of `allow`).
    Require,
    /// TLS at once with ALPN `postgresql` (`sslnegotiation=direct`).
    Direct,
}

impl TlsAttempt {
    /// The first attempt for `config`'s TLS settings.
    pub(crate) fn first(config: &Config) -> TlsAttempt {
        match config.ssl.mode {
            SslMode::Disable | SslMode::Allow => TlsAttempt::Plain,
            SslMode::Prefer => TlsAttempt::Try,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                if config.ssl.negotiation == SslNegotiation::Direct {
                    TlsAttempt::Direct
                } else {
                    TlsAttempt::Require
                }
            }
        }
    }
}

/// A failed attempt, and whether TLS was in use when it failed (to decide on libpq's
/// `allow`/`prefer` retry).
pub(crate) struct AttemptError {
    pub(crate) error: Error,
    pub(crate) tls_used: bool,
}

impl Connection {
    /// Performs TLS negotiation (per `sslmode`/`sslnegotiation`), startup and
    /// authentication over a stream the caller has already connected to `host`.
    ///
    /// The stream can be anything bidirectional: a `TcpStream`, a `UnixStream`, a proxy
    /// tunnel. `host` names the server for TLS verification, `.pgpass` lookup and error
    /// messages; no connection is made to it here. `sslmode=allow` makes one plain attempt
    /// (the TLS retry needs a new stream, which [`crate::connect`] does). No
    /// `connect_timeout` is applied; wrap the call in `tokio::time::timeout` if needed.
    ///
    /// # Errors
    /// TLS configuration or handshake failures, a server that refuses TLS when it is
    /// required, authentication failures (with the server's message), channel-binding
    /// violations, servers older than 14, and I/O errors. Each names the target.
    pub async fn handshake<S: AsyncStream>(
        stream: S,
        config: &Config,
        host: &HostSpec,
    ) -> Result<Connection, Error> {
        let target = host_label(host);
        handshake_with(
            Box::new(stream),
            config,
            host,
            target,
            TlsAttempt::first(config),
        )
        .await
        .map_err(|e| e.error)
    }
}

impl Connection {
    /// Adopts a connection the caller has already set up and authenticated itself: `stream`
    /// has seen the startup packet (with `replication=true` for streaming), the whole
    /// authentication exchange and the server's `ReadyForQuery`, and nothing since. This is
    /// the situation of a backup tool that made its own connection and wants pgwalrus to
    /// stream WAL over it.
    ///
    /// What startup would have told us is asked with `SHOW server_version` (replication
    /// connections accept `SHOW`), and servers older than 14 are refused as in
    /// [`Connection::handshake`]. The startup's parameter status messages are not known, so
    /// [`Connection::parameter`] answers only `server_version`; [`Connection::tls`] is `None`
    /// (a TLS session the caller set up is its own) and [`Connection::auth_method`] is
    /// [`AuthMethod::None`](pgwalrus_proto::startup::AuthMethod::None). `host` names the
    /// server in error messages and status; no connection is made to it here.
    ///
    /// # Errors
    /// I/O errors, a server error (the stream was not ready for queries), or an unsupported
    /// server version. Each names the target.
    pub async fn adopt<S: AsyncStream>(stream: S, host: &HostSpec) -> Result<Connection, Error> {
        let target = host_label(host);
        let io = Framed::new(
            Stream::Plain(Box::new(stream)),
            target.clone(),
            BytesMut::new(),
        );
        let mut conn = Connection {
            io,
            server_version_num: 0,
            parameters: std::collections::BTreeMap::new(),
            host: host.clone(),
            tls: None,
            auth_method: pgwalrus_proto::startup::AuthMethod::None,
            backend_key: None,
            socket: None,
        };
        let version = conn.show("server_version").await?;
        match parse_server_version(&version) {
            Some(num) if num >= MIN_SERVER_VERSION_NUM => conn.server_version_num = num,
            Some(_) => return Err(Error::ServerTooOld { target, version }),
            None => return Err(Error::UnknownServerVersion { target, version }),
        }
        conn.parameters.insert("server_version".to_owned(), version);
        Ok(conn)
    }
}

/// [`Connection::handshake`] with an explicit TLS attempt kind and target label.
pub(crate) async fn handshake_with(
    stream: Box<dyn AsyncStream>,
    config: &Config,
    host: &HostSpec,
    target: String,
    attempt: TlsAttempt,
) -> Result<Connection, AttemptError> {
    let plain = |error| AttemptError {
        error,
        tls_used: false,
    };
    let direct = attempt == TlsAttempt::Direct;
    let params = match attempt {
        TlsAttempt::Plain => None,
        _ => tls::prepare(&config.ssl, host, direct).map_err(|source| {
            plain(Error::TlsConfig {
                target: target.clone(),
                source,
            })
        })?,
    };
    let (stream, tls_info, end_point) = match params {
        // No TLS wanted, or a Unix socket (where libpq never uses TLS).
        None => (Stream::Plain(stream), None, None),
        Some(params) => negotiate_tls(stream, params, &target, attempt)
            .await
            .map_err(plain)?,
    };
    let tls_used = tls_info.is_some();
    let fail = |error| AttemptError { error, tls_used };
    let mut io = Framed::new(stream, target, BytesMut::new());
    let outcome = startup(&mut io, config, host, tls_used, end_point)
        .await
        .map_err(fail)?;
    let mut conn = Connection {
        io,
        server_version_num: 0,
        parameters: outcome.parameters,
        host: host.clone(),
        tls: tls_info,
        auth_method: outcome.auth_method,
        backend_key: outcome.backend_key,
        socket: None,
    };
    if let Some(n) = &outcome.negotiation {
        tracing::debug!(server = %conn.target(), newest_minor = n.newest_minor, unrecognized = ?n.unrecognized, "server negotiated the protocol version");
    }
    let version = conn
        .parameter("server_version")
        .unwrap_or_default()
        .to_owned();
    let target = conn.target().to_owned();
    match parse_server_version(&version) {
        Some(num) if num >= MIN_SERVER_VERSION_NUM => conn.server_version_num = num,
        Some(_) => {
            let _ = conn.close().await;
            return Err(fail(Error::ServerTooOld { target, version }));
        }
        None => {
            let _ = conn.close().await;
            return Err(fail(Error::UnknownServerVersion { target, version }));
        }
    }
    Ok(conn)
}

/// SSLRequest (or direct TLS) and the TLS handshake. Returns the stream, the session
/// description when TLS is in use, and the `tls-server-end-point` hash.
async fn negotiate_tls(
    mut stream: Box<dyn AsyncStream>,
    params: tls::TlsParams,
    target: &str,
    attempt: TlsAttempt,
) -> Result<(Stream, Option<TlsInfo>, Option<Vec<u8>>), Error> {
    let io_err = |error| Error::Io {
        op: "send data to",
        target: target.to_owned(),
        error,
    };
    if attempt != TlsAttempt::Direct {
        let mut buf = BytesMut::new();
        frontend::ssl_request(&mut buf);
        stream.write_all(&buf).await.map_err(io_err)?;
        stream.flush().await.map_err(io_err)?;
        // Exactly one byte: anything the server sent after it must go through TLS, never be
        // taken as plaintext protocol (CVE-2021-23222).
        let mut answer = [0u8; 1];
        match stream.read_exact(&mut answer).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(Error::Closed {
                    target: target.to_owned(),
                    last_error: None,
                });
            }
            Err(error) => {
                return Err(Error::Io {
                    op: "receive data from",
                    target: target.to_owned(),
                    error,
                });
            }
        }
        match answer[0] {
            b'S' => {}
            b'N' if attempt == TlsAttempt::Try => return Ok((Stream::Plain(stream), None, None)),
            b'N' => {
                return Err(Error::TlsNotSupported {
                    target: target.to_owned(),
                });
            }
            b'E' => {
                // The server failed before it could negotiate (e.g. could not fork a backend);
                // its error message follows in the plain protocol.
                let mut io = Framed::new(
                    Stream::Plain(stream),
                    target.to_owned(),
                    BytesMut::from(&b"E"[..]),
                );
                return Err(match io.read_message().await? {
                    BackendMessage::ErrorResponse(e) => Error::Startup {
                        target: target.to_owned(),
                        source: StartupError::Server(Box::new(e)),
                    },
                    other => Error::Unexpected {
                        target: target.to_owned(),
                        message: other.name(),
                        during: "in response to SSLRequest",
                    },
                });
            }
            byte => {
                return Err(Error::TlsBadResponse {
                    target: target.to_owned(),
                    byte,
                });
            }
        }
    }
    let tls = TlsConnector::from(params.config)
        .connect(params.server_name, stream)
        .await
        .map_err(|source| Error::TlsHandshake {
            target: target.to_owned(),
            source,
        })?;
    let session = tls.get_ref().1;
    if attempt == TlsAttempt::Direct && session.alpn_protocol() != Some(tls::ALPN_POSTGRESQL) {
        return Err(Error::TlsNoAlpn {
            target: target.to_owned(),
        });
    }
    let info = TlsInfo {
        protocol: session
            .protocol_version()
            .and_then(|v| v.as_str())
            .unwrap_or("unknown")
            .to_owned(),
        cipher_suite: session
            .negotiated_cipher_suite()
            .and_then(|s| s.suite().as_str())
            .unwrap_or("unknown")
            .to_owned(),
        direct: attempt == TlsAttempt::Direct,
    };
    let end_point = session
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|cert| tls::channel_binding_hash(cert));
    Ok((Stream::Tls(Box::new(tls)), Some(info), end_point))
}

/// Sends the startup packet and runs authentication to `ReadyForQuery`.
async fn startup(
    io: &mut Framed,
    config: &Config,
    host: &HostSpec,
    tls_used: bool,
    end_point: Option<Vec<u8>>,
) -> Result<StartupOutcome, Error> {
    let target = io.target().to_owned();
    let startup_err = |source| Error::Startup {
        target: target.clone(),
        source,
    };
    let mut msg = StartupMessage::new(&config.user);
    if let Some(db) = &config.dbname {
        msg = msg.database(db);
    }
    if let Some(mode) = config.replication.startup_value() {
        msg = msg.replication(mode);
    }
    if let Some(name) = config
        .application_name
        .as_ref()
        .or(config.fallback_application_name.as_ref())
    {
        msg = msg.application_name(name);
    }
    if let Some(options) = &config.options {
        msg = msg.options(options);
    }
    msg.encode(io.write_buf())
        .map_err(|e: ProtoError| startup_err(StartupError::Encode(e)))?;
    io.flush().await?;

    let policy = match config.channel_binding {
        ChannelBinding::Disable => ChannelBindingPolicy::Disable,
        ChannelBinding::Prefer => ChannelBindingPolicy::Prefer,
        ChannelBinding::Require => ChannelBindingPolicy::Require,
    };
    let nonce = fresh_nonce().map_err(|error| Error::Io {
        op: "generate a SCRAM nonce for",
        target: target.clone(),
        error,
    })?;
    let mut settings = AuthSettings::new(&config.user, nonce).channel_binding(policy);
    if tls_used {
        settings = settings.tls(end_point);
    }
    let mut machine = Startup::new(settings);
    loop {
        let msg = io.read_message().await?;
        let mut step = machine.handle(msg).map_err(startup_err)?;
        loop {
            match step {
                Step::NeedPassword(_) => {
                    let password = password_for(config, host);
                    step = machine
                        .provide_password(password.as_deref())
                        .map_err(startup_err)?;
                }
                Step::Send(bytes) => {
                    io.write_buf().extend_from_slice(&bytes);
                    io.flush().await?;
                    break;
                }
                Step::Read => break,
                Step::Done(outcome) => return Ok(outcome),
            }
        }
    }
}

/// The password: `password=` / `PGPASSWORD`, else the password file — read only now that
/// the server asked, as libpq does.
fn password_for(config: &Config, host: &HostSpec) -> Option<String> {
    if let Some(p) = &config.password {
        return Some(p.clone());
    }
    let outcome = config.passfile_lookup(host);
    if let Some(warning) = outcome.warning {
        static WARNED: AtomicBool = AtomicBool::new(false);
        if !WARNED.swap(true, Ordering::Relaxed) {
            tracing::warn!("{}", crate::error::chain(&warning));
        }
    }
    outcome.password
}

/// Fresh random bytes for the SCRAM client nonce, from the TLS crypto provider's system
/// random source.
fn fresh_nonce() -> std::io::Result<[u8; SCRAM_NONCE_LEN]> {
    let mut nonce = [0u8; SCRAM_NONCE_LEN];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut nonce)
        .map_err(|_| std::io::Error::other("system random number generator failed"))?;
    Ok(nonce)
}

/// `server_version` as a number: `15.18 (Debian …)` → 150018, `17devel` → 170000,
/// `18beta1` → 180000, `9.6.24` → 90624.
pub(crate) fn parse_server_version(version: &str) -> Option<u32> {
    let word = version.split_whitespace().next()?;
    let mut parts = word.split('.');
    let leading_number = |s: &str| -> Option<u32> {
        let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    let major = leading_number(parts.next()?)?;
    let minor = parts.next().and_then(leading_number).unwrap_or(0);
    if major >= 10 {
        Some(major * 10_000 + minor)
    } else {
        let patch = parts.next().and_then(leading_number).unwrap_or(0);
        Some(major * 10_000 + minor * 100 + patch)
    }
}

#[cfg(test)]
mod tests {
    use pgwalrus_proto::{Authentication, ServerError};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::test_support::{against, frame, read_packet, ready};

    #[test]
    fn server_versions() {
        assert_eq!(
            parse_server_version("15.18 (Debian 15.18-0+deb12u1)"),
            Some(150_018)
        );
        assert_eq!(parse_server_version("14.0"), Some(140_000));
        assert_eq!(parse_server_version("17devel"), Some(170_000));
        assert_eq!(parse_server_version("18beta1"), Some(180_000));
        assert_eq!(parse_server_version("18rc1 (x)"), Some(180_000));
        assert_eq!(parse_server_version("13.16"), Some(130_016));
        assert_eq!(parse_server_version("9.6.24"), Some(90_624));
        assert_eq!(parse_server_version(""), None);
        assert_eq!(parse_server_version("devel"), None);
    }

    #[tokio::test]
    async fn refuses_servers_older_than_14() {
        let e = against(
            "host=db port=5432 user=u sslmode=disable",
            |mut s| async move {
                let startup = read_packet(&mut s).await;
                assert_eq!(&startup[..4], &[0, 3, 0, 0]);
                s.write_all(&ready("13.4")).await.unwrap();
                // The client says goodbye before giving up.
                assert_eq!(s.read_u8().await.unwrap(), b'X');
            },
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&e, Error::ServerTooOld { version, .. } if version == "13.4"),
            "{e}"
        );
        assert_eq!(
            e.to_string(),
            "connection to db:5432 failed: server version 13.4 is not supported; pgwalrus needs PostgreSQL 14 or later"
        );
    }

    #[tokio::test]
    async fn accepts_protocol_negotiation_and_reports_parameters() {
        let conn = against(
            "host=db port=5432 user=u sslmode=disable application_name=walrus",
            |mut s| async move {
                let startup = read_packet(&mut s).await;
                let text = String::from_utf8_lossy(&startup).into_owned();
                assert!(text.contains("application_name\0walrus\0"), "{text:?}");
                let mut out = frame(&[BackendMessage::NegotiateProtocolVersion {
                    newest_minor: 0,
                    unrecognized: vec![],
                }]);
                out.extend(ready("16.2"));
                s.write_all(&out).await.unwrap();
            },
        )
        .await
        .unwrap();
        assert_eq!(conn.server_version_num(), 160_002);
        assert_eq!(conn.parameter("server_version"), Some("16.2"));
        assert_eq!(conn.backend_key().unwrap().process_id, 42);
        assert_eq!(conn.target(), "db:5432");
        assert!(conn.tls().is_none());
    }

    #[tokio::test]
    async fn ssl_request_answers() {
        // 'N' when TLS is required.
        let e = against(
            "host=db port=1 user=u sslmode=require",
            |mut s| async move {
                assert_eq!(read_packet(&mut s).await, 80_877_103u32.to_be_bytes());
                s.write_all(b"N").await.unwrap();
            },
        )
        .await
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "connection to db:1 failed: server does not support SSL, but SSL was required"
        );
        // A byte that means nothing.
        let e = against(
            "host=db port=1 user=u sslmode=require",
            |mut s| async move {
                read_packet(&mut s).await;
                s.write_all(b"X").await.unwrap();
            },
        )
        .await
        .unwrap_err();
        assert!(matches!(e, Error::TlsBadResponse { byte: b'X', .. }), "{e}");
        // 'E': the server failed before negotiating; its message is reported.
        let e = against("host=db port=1 user=u sslmode=prefer", |mut s| async move {
            read_packet(&mut s).await;
            let err =
                ServerError::parse(b"SFATAL\0VFATAL\0C53300\0Msorry, too many clients already\0\0")
                    .unwrap();
            s.write_all(&frame(&[BackendMessage::ErrorResponse(err)]))
                .await
                .unwrap();
        })
        .await
        .unwrap_err();
        assert_eq!(
            crate::error::chain(&e).to_string(),
            "connection to db:1 failed: FATAL:  sorry, too many clients already"
        );
        assert!(e.is_transient());
        // prefer + 'N': go on without TLS on the same stream.
        let conn = against("host=db port=1 user=u sslmode=prefer", |mut s| async move {
            read_packet(&mut s).await;
            s.write_all(b"N").await.unwrap();
            read_packet(&mut s).await;
            s.write_all(&ready("15.1")).await.unwrap();
        })
        .await
        .unwrap();
        assert!(conn.tls().is_none());
    }

    #[tokio::test]
    async fn server_hanging_up_during_startup_is_closed() {
        let e = against(
            "host=db port=1 user=u sslmode=disable",
            |mut s| async move {
                read_packet(&mut s).await;
                drop(s);
            },
        )
        .await
        .unwrap_err();
        assert!(matches!(e, Error::Closed { .. }), "{e}");
        assert!(e.is_transient());
    }

    #[tokio::test]
    async fn password_comes_from_the_config_only_when_asked() {
        let conn = against(
            "host=db port=1 user=u password=secret sslmode=disable",
            |mut s| async move {
                read_packet(&mut s).await;
                s.write_all(&frame(&[BackendMessage::Authentication(
                    Authentication::CleartextPassword,
                )]))
                .await
                .unwrap();
                assert_eq!(s.read_u8().await.unwrap(), b'p');
                let len = s.read_u32().await.unwrap() as usize;
                let mut pw = vec![0; len - 4];
                s.read_exact(&mut pw).await.unwrap();
                assert_eq!(pw, b"secret\0");
                s.write_all(&ready("17.0")).await.unwrap();
            },
        )
        .await
        .unwrap();
        assert_eq!(
            conn.auth_method(),
            pgwalrus_proto::startup::AuthMethod::Cleartext
        );
    }
}
