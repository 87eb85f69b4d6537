//! Tokio client for PostgreSQL physical replication.
//!
//! # Layout
//! - [`config`]: the resolved, libpq-compatible connection settings.
//! - [`tls`]: rustls configuration from `sslmode` and friends; channel-binding data.
//! - [`connect`] (`connect.rs`): the host-list walk, `connect_timeout`, `sslmode`
//!   allow/prefer retries, `target_session_attrs`.
//! - [`Connection`] (`connection.rs`, `handshake.rs`, `commands.rs`): TLS negotiation,
//!   startup and authentication over any stream ([`Connection::handshake`]), adopting a
//!   connection the caller authenticated itself ([`Connection::adopt`]), simple
//!   queries, and the typed replication commands (`identify_system`, `show`,
//!   `wal_segment_size`, `timeline_history`, slot create/read/drop).
//! - [`ReplicationStream`] (`replication.rs`): `START_REPLICATION` and the CopyBoth stream.
//! - [`slot_row`] (`slots.rs`): a slot's row of `pg_replication_slots` over an ordinary
//!   connection.
//! - [`Error`] (`error.rs`): one error type with `is_auth_failure`, `is_transient`, … ;
//!   [`error_chain`] prints any error with its sources.
//! - [`fuzz`]: arbitrary-bytes entry points for the fuzz targets and their corpora.
//! - `transport.rs`, `framed.rs`: sockets, keepalive, the plain/TLS stream, message I/O.
//!
//! # Example
//!
//! ```no_run
//! use pgwalrus_client::config::Config;
//! use pgwalrus_client::{ReplicationMessage, connect};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config =
//!     Config::from_conninfo("host=db.example user=archiver replication=true dbname=replication")?;
//! let mut conn = connect(&config).await?;
//! let id = conn.identify_system().await?;
//! let seg_size = conn.wal_segment_size().await?;
//! let start = id.xlogpos.segment_start(seg_size);
//! let mut stream = conn.start_physical(None, start, id.timeline).await?;
//! while let Some(msg) = stream.next().await? {
//!     if let ReplicationMessage::XLogData { start, data, .. } = msg {
//!         println!("{} bytes at {start}", data.len());
//!     }
//! }
//! # Ok(())
//! # }
//! ```

mod commands;
pub mod config;
mod connect;
mod connection;
mod error;
mod framed;
pub mod fuzz;
mod handshake;
mod replication;
mod slots;
#[cfg(test)]
mod test_support;
pub mod tls;
mod transport;

pub use connect::connect;
pub use connection::{Connection, QueryResult, TlsInfo};
pub use error::{Error, chain as error_chain};
pub use handshake::MIN_SERVER_VERSION_NUM;
pub use pgwalrus_proto::replication::{
    CreatedSlot, EndOfTimeline, PgTimestamp, SlotInfo, SystemIdentity, TimelineHistoryFile,
};
pub use pgwalrus_proto::startup::{AuthMethod, BackendKey};
pub use pgwalrus_proto::{ServerError, Severity, SqlState};
pub use replication::{ReplicationMessage, ReplicationStream};
pub use slots::{SlotRow, slot_row};
pub use transport::AsyncStream;
