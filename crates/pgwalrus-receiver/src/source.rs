//! Where the engine's connections come from. A [`ConnectionSource`] is a factory: the engine
//! asks it for a new authenticated replication connection at the start of every session,
//! so a reconnect goes through the same path as the first connection and the caller decides
//! how connections are made.
//!
//! Three ready-made sources, from most to least done by pgwalrus:
//! * [`FromConfig`] — pgwalrus connects: libpq-compatible settings, host lists, TLS,
//!   authentication ([`pgwalrus_client::connect`]).
//! * [`FromStreams`] — the caller opens the byte stream (a `TcpStream`, a `UnixStream`, a
//!   tunnel); pgwalrus does TLS, startup and authentication over it
//!   ([`Connection::handshake`]).
//! * [`FromFn`] — the caller hands over connections it made itself, for example one it
//!   authenticated on its own and adopted with [`Connection::adopt`].

use std::future::Future;
use std::io;

use pgwalrus_client::config::{Config, HostSpec};
use pgwalrus_client::{AsyncStream, Connection, Error as ClientError, SlotRow};

/// A factory of authenticated replication connections.
pub trait ConnectionSource: Send + 'static {
    /// A new connection in physical replication mode that finished startup and
    /// authentication and is ready for replication commands.
    fn connect(&mut self) -> impl Future<Output = Result<Connection, ClientError>> + Send;

    /// Slot `slot`'s row of `pg_replication_slots` on `host`, over an ordinary connection.
    /// Before PostgreSQL 15 it is the only source of a slot's restart position; `None`
    /// (the default) says this source cannot make such a connection, and an empty archive
    /// then starts at the server's position (with a warning about what the slot kept).
    fn slot_row(
        &mut self,
        host: &HostSpec,
        slot: &str,
    ) -> impl Future<Output = Option<Result<Option<SlotRow>, ClientError>>> + Send {
        let _ = (host, slot);
        async { None }
    }

    /// The connection settings with any password masked, for status output; `None` when
    /// the source does not know them.
    fn conninfo(&self) -> Option<String> {
        None
    }
}

/// pgwalrus makes every connection from libpq-compatible settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FromConfig {
    config: Config,
}

impl FromConfig {
    /// Connections made with `config` (which should ask for `replication=true`).
    pub fn new(config: Config) -> Self {
        Self { config }
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }
}

impl ConnectionSource for FromConfig {
    fn connect(&mut self) -> impl Future<Output = Result<Connection, ClientError>> + Send {
        pgwalrus_client::connect(&self.config)
    }

    fn slot_row(
        &mut self,
        host: &HostSpec,
        slot: &str,
    ) -> impl Future<Output = Option<Result<Option<SlotRow>, ClientError>>> + Send {
        slot_row_over_sql(&self.config, host, slot)
    }

    fn conninfo(&self) -> Option<String> {
        Some(masked_conninfo(&self.config))
    }
}

/// The caller opens each byte stream (`open`); pgwalrus negotiates TLS, sends the startup
/// packet and authenticates over it with `config` (whose host list is not used: `host` names
/// the server for TLS verification, `.pgpass` and messages).
pub struct FromStreams<F> {
    config: Config,
    host: HostSpec,
    open: F,
}

impl<F> std::fmt::Debug for FromStreams<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FromStreams")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

impl<F, Fut, S> FromStreams<F>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = io::Result<S>> + Send,
    S: AsyncStream,
{
    /// Streams from `open`, authenticated with `config` as `host`.
    pub fn new(config: Config, host: HostSpec, open: F) -> Self {
        Self { config, host, open }
    }
}

impl<F, Fut, S> ConnectionSource for FromStreams<F>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = io::Result<S>> + Send,
    S: AsyncStream,
{
    fn connect(&mut self) -> impl Future<Output = Result<Connection, ClientError>> + Send {
        let opened = (self.open)();
        let (config, host) = (self.config.clone(), self.host.clone());
        async move {
            let stream = opened.await.map_err(|error| ClientError::Connect {
                target: host.label(),
                error,
            })?;
            Connection::handshake(stream, &config, &host).await
        }
    }

    fn slot_row(
        &mut self,
        host: &HostSpec,
        slot: &str,
    ) -> impl Future<Output = Option<Result<Option<SlotRow>, ClientError>>> + Send {
        // pgwalrus may connect on its own here: the same settings, pinned to the host.
        slot_row_over_sql(&self.config, host, slot)
    }

    fn conninfo(&self) -> Option<String> {
        let mut shown = self.config.clone();
        shown.hosts = vec![self.host.clone()];
        Some(masked_conninfo(&shown))
    }
}

/// The caller makes every connection (`connect`), however it likes: its own startup and
/// authentication followed by [`Connection::adopt`], say. pgwalrus makes no connection of
/// its own (before PostgreSQL 15 an empty archive therefore starts at the server's position).
pub struct FromFn<F> {
    connect: F,
}

impl<F> std::fmt::Debug for FromFn<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FromFn").finish_non_exhaustive()
    }
}

impl<F, Fut> FromFn<F>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<Connection, ClientError>> + Send,
{
    /// Connections from `connect`.
    pub fn new(connect: F) -> Self {
        Self { connect }
    }
}

impl<F, Fut> ConnectionSource for FromFn<F>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<Connection, ClientError>> + Send,
{
    fn connect(&mut self) -> impl Future<Output = Result<Connection, ClientError>> + Send {
        (self.connect)()
    }
}

/// The slot's row over an ordinary connection made with `config`, pinned to `host`.
fn slot_row_over_sql(
    config: &Config,
    host: &HostSpec,
    slot: &str,
) -> impl Future<Output = Option<Result<Option<SlotRow>, ClientError>>> + Send + use<> {
    let (config, host, slot) = (config.clone(), host.clone(), slot.to_owned());
    async move { Some(pgwalrus_client::slot_row(&config, &host, &slot).await) }
}

/// `config` as a `key=value` conninfo with the password shown as `********`, the way
/// `pg_stat_wal_receiver.conninfo` shows it.
pub fn masked_conninfo(config: &Config) -> String {
    use pgwalrus_client::config::Host;
    let mut parts = Vec::new();
    let hosts: Vec<String> = config
        .hosts
        .iter()
        .map(|h| match &h.host {
            Host::Unix(dir) => dir.display().to_string(),
            Host::Tcp(name) => name.clone(),
        })
        .collect();
    if !hosts.is_empty() {
        parts.push(format!("host={}", quote(&hosts.join(","))));
        let ports: Vec<String> = config.hosts.iter().map(|h| h.port.to_string()).collect();
        parts.push(format!("port={}", ports.join(",")));
    }
    parts.push(format!("user={}", quote(&config.user)));
    if config.password.is_some() {
        parts.push("password=********".to_owned());
    }
    if let Some(db) = &config.dbname {
        parts.push(format!("dbname={}", quote(db)));
    }
    if let Some(app) = &config.application_name {
        parts.push(format!("application_name={}", quote(app)));
    }
    parts.join(" ")
}

/// Quotes a conninfo value when it needs it (empty, spaces, quotes, backslashes).
fn quote(value: &str) -> String {
    if !value.is_empty() && !value.contains([' ', '\'', '\\']) {
        return value.to_owned();
    }
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_never_shows_in_the_conninfo() {
        let mut config = Config::from_conninfo(
            "host=db1 port=5433 user=archiver password=s3cret dbname=replication replication=true",
        )
        .unwrap();
        let shown = masked_conninfo(&config);
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("password=********"), "{shown}");
        assert!(
            shown.contains("host=db1 port=5433 user=archiver"),
            "{shown}"
        );
        config.password = None;
        assert!(!masked_conninfo(&config).contains("password"));
        config.user = "o'brien x".to_owned();
        assert!(masked_conninfo(&config).contains(r"user='o\'brien x'"));
    }
}
