//! An established connection: what the server told us at startup, message I/O with the
//! server's asynchronous messages handled in one place, and the simple query protocol.

use std::collections::BTreeMap;

use pgwalrus_proto::query::{QueryOutcome, QueryStep, ResultSet, SimpleQuery};
use pgwalrus_proto::startup::{AuthMethod, BackendKey};
use pgwalrus_proto::{BackendMessage, Severity, SqlState, frontend};

use crate::config::HostSpec;
use crate::error::Error;
use crate::framed::Framed;

/// The TLS session of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// Protocol version, e.g. `TLSv1_3`.
    pub protocol: String,
    /// Negotiated cipher suite, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher_suite: String,
    /// Whether the connection was made with direct TLS (`sslnegotiation=direct`).
    pub direct: bool,
}

/// One statement's result from [`Connection::simple_query`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueryResult {
    /// Column names (empty for a command without a result set).
    pub columns: Vec<String>,
    /// Rows of text values; `None` is SQL NULL.
    pub rows: Vec<Vec<Option<String>>>,
    /// The command tag, e.g. `SELECT 1`.
    pub command_tag: Option<String>,
}

/// A connection to a PostgreSQL server that finished startup and authentication.
///
/// Made by [`crate::connect`] or [`Connection::handshake`]. Queries run one at a time
/// (`&mut self`); [`Connection::start_physical`] turns it into a
/// [`ReplicationStream`](crate::ReplicationStream), which gives it back when streaming ends.
#[derive(Debug)]
pub struct Connection {
    pub(crate) io: Framed,
    pub(crate) parameters: BTreeMap<String, String>,
    pub(crate) server_version_num: u32,
    pub(crate) host: HostSpec,
    pub(crate) tls: Option<TlsInfo>,
    pub(crate) auth_method: AuthMethod,
    pub(crate) backend_key: Option<BackendKey>,
    /// The TCP socket under `io` when this crate opened it (a caller's stream is opaque).
    pub(crate) socket: Option<std::os::fd::RawFd>,
}

/// What the server answered to a query.
pub(crate) enum Answer {
    Done(QueryOutcome),
    CopyBoth,
}

impl Connection {
    /// Asks the kernel not to report the socket readable until `bytes` bytes are waiting
    /// (`SO_RCVLOWAT`; 1 is the default). A receiver that pauses between reads uses it so
    /// that WAL arriving during the pause does not wake its thread for nothing. A no-op
    /// for a connection over a caller's stream or a Unix socket.
    ///
    /// # Errors
    /// The socket option could not be set.
    pub fn set_receive_low_water(&self, bytes: u32) -> std::io::Result<()> {
        match self.socket {
            Some(fd) => crate::transport::set_receive_low_water(fd, bytes),
            None => Ok(()),
        }
    }

    /// The server's version as a number, e.g. `150018` for 15.18 or `180000` for 18beta1.
    pub fn server_version_num(&self) -> u32 {
        self.server_version_num
    }

    /// The current value of a run-time parameter the server reports (`server_version`,
    /// `in_hot_standby`, `default_transaction_read_only`, `application_name`, …).
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters.get(name).map(String::as_str)
    }

    /// Every reported parameter.
    pub fn parameters(&self) -> &BTreeMap<String, String> {
        &self.parameters
    }

    /// The host this connection went to.
    pub fn host(&self) -> &HostSpec {
        &self.host
    }

    /// The address (or socket path) used, as it appears in error messages.
    pub fn target(&self) -> &str {
        self.io.target()
    }

    /// The TLS session, or `None` for a plain connection.
    pub fn tls(&self) -> Option<&TlsInfo> {
        self.tls.as_ref()
    }

    /// How the server authenticated us.
    pub fn auth_method(&self) -> AuthMethod {
        self.auth_method
    }

    /// The cancellation key the server sent.
    pub fn backend_key(&self) -> Option<&BackendKey> {
        self.backend_key.as_ref()
    }

    /// Runs `sql` with the simple query protocol (several statements allowed) and returns
    /// one [`QueryResult`] per statement, values as text.
    ///
    /// # Errors
    /// [`Error::Server`] when the server rejects the query (the connection stays usable);
    /// I/O, protocol or closed-connection errors otherwise. A query that starts a copy is
    /// refused with [`Error::Unexpected`] (use [`Connection::start_physical`] for streaming).
    pub async fn simple_query(&mut self, sql: &str) -> Result<Vec<QueryResult>, Error> {
        let outcome = self.query(sql).await?;
        outcome
            .results
            .into_iter()
            .map(|rs| {
                let rows = rs.text_rows().map_err(|source| self.protocol(source))?;
                Ok(QueryResult {
                    columns: rs.columns.into_iter().map(|c| c.name).collect(),
                    rows,
                    command_tag: rs.command_tag,
                })
            })
            .collect()
    }

    /// Sends `Terminate` and closes the connection.
    ///
    /// # Errors
    /// Only if `Terminate` could not be sent; the connection is dropped either way.
    pub async fn close(mut self) -> Result<(), Error> {
        frontend::terminate(self.io.write_buf());
        let result = self.io.flush().await;
        self.io.shutdown().await;
        result
    }

    /// Runs a query that must not start a copy.
    pub(crate) async fn query(&mut self, sql: &str) -> Result<QueryOutcome, Error> {
        match self.query_or_copy(sql).await? {
            Answer::Done(outcome) => Ok(outcome),
            Answer::CopyBoth => Err(Error::Unexpected {
                target: self.target().to_owned(),
                message: "CopyBothResponse",
                during: "in the response to a query that does not stream",
            }),
        }
    }

    /// Runs a query expected to give exactly one result set.
    pub(crate) async fn query_one(&mut self, sql: &str) -> Result<ResultSet, Error> {
        let mut outcome = self.query(sql).await?;
        match outcome.results.len() {
            1 => Ok(outcome.results.remove(0)),
            n => Err(self.protocol(pgwalrus_proto::ProtoError::invalid(
                "query result",
                format!("expected 1 result set, got {n}"),
            ))),
        }
    }

    /// Sends `sql` and collects the answer up to `ReadyForQuery`, or up to the
    /// `CopyBothResponse` if the server starts streaming.
    pub(crate) async fn query_or_copy(&mut self, sql: &str) -> Result<Answer, Error> {
        frontend::query(sql, self.io.write_buf()).map_err(|source| Error::Encode { source })?;
        self.io.flush().await?;
        self.collect(SimpleQuery::new()).await
    }

    /// Feeds messages to `q` until it is done.
    pub(crate) async fn collect(&mut self, mut q: SimpleQuery) -> Result<Answer, Error> {
        loop {
            let msg = match self.next_message().await {
                Ok(m) => m,
                Err(Error::Closed { target, .. }) => {
                    let last_error = q.take_error().map(Box::new);
                    // admin_shutdown before the close: the server is shutting down (as
                    // for a stream, see `ReplicationStream`), decided by SQLSTATE.
                    let shut_down = last_error
                        .as_deref()
                        .is_some_and(|e| e.code == SqlState::ADMIN_SHUTDOWN);
                    return Err(if shut_down {
                        Error::ShutDown { target, last_error }
                    } else {
                        Error::Closed { target, last_error }
                    });
                }
                Err(e) => return Err(e),
            };
            match q.handle(msg) {
                Ok(QueryStep::Read) => {}
                Ok(QueryStep::Done(outcome)) => {
                    self.apply_parameter_changes(&outcome);
                    return Ok(Answer::Done(outcome));
                }
                Ok(QueryStep::CopyBoth(_)) => return Ok(Answer::CopyBoth),
                Err(e) => return Err(Error::from_query(self.target(), e)),
            }
        }
    }

    /// The next message that is not a notice or a parameter report (those are logged and
    /// recorded here).
    pub(crate) async fn next_message(&mut self) -> Result<BackendMessage, Error> {
        loop {
            match self.io.read_message().await? {
                BackendMessage::NoticeResponse(n) => match n.severity {
                    Severity::Warning => {
                        tracing::warn!(target: "pgwalrus_client::server", server = %self.target(), "{n}")
                    }
                    _ => {
                        tracing::info!(target: "pgwalrus_client::server", server = %self.target(), "{n}")
                    }
                },
                BackendMessage::ParameterStatus { name, value } => {
                    self.parameters.insert(name, value);
                }
                BackendMessage::NotificationResponse { .. } => {}
                other => return Ok(other),
            }
        }
    }

    fn apply_parameter_changes(&mut self, outcome: &QueryOutcome) {
        for (name, value) in &outcome.parameter_changes {
            self.parameters.insert(name.clone(), value.clone());
        }
    }

    pub(crate) fn protocol(&self, source: pgwalrus_proto::ProtoError) -> Error {
        Error::Protocol {
            target: self.target().to_owned(),
            source,
        }
    }
}
