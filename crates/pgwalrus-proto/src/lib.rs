//! PostgreSQL's wire protocol and physical replication protocol, sans-IO.
//!
//! This crate turns bytes into typed messages and typed intentions into bytes. It never
//! touches a socket, TLS or the clock: the caller (`pgwalrus-client`, or another tool with
//! its own transport) reads and writes, and passes time in as an argument.
//!
//! # Layout
//!
//! - [`Reader`] / [`Writer`] (`reader.rs`, `writer.rs`): bounds-checked big-endian decoding
//!   whose errors name the field, and framing with back-patched lengths.
//! - [`ProtoError`] (`error.rs`): every decode/encode failure.
//! - [`backend`]: [`BackendMessage::parse`], check-then-parse framing with `Ok(None)` for
//!   "need more bytes"; bodies stay [`bytes::Bytes`] slices of the read buffer.
//! - [`frontend`]: encoders for the startup packet, `SSLRequest`, `Query`, password and
//!   SASL responses, `CopyData`/`CopyDone`, `Terminate`.
//! - [`server_error`]: [`ServerError`] (severity, SQLSTATE, message, detail, hint…).
//! - [`auth`]: MD5 and SCRAM-SHA-256(-PLUS) with an injectable nonce.
//! - [`startup`]: the startup/authentication state machine, with libpq's channel-binding
//!   rules and lazy password lookup.
//! - [`query`]: collecting the result sets of a simple query.
//! - [`fuzz`]: arbitrary-bytes entry points for the fuzz targets and their corpora.
//! - [`replication`]: replication command text with correct quoting, the `w`/`k`/`r`/`h`
//!   payloads of the copy stream, and typed command results.
//!
//! # Example
//!
//! Parse what a walsender sends, one frame at a time:
//!
//! ```
//! use bytes::BytesMut;
//! use pgwalrus_proto::replication::WalSenderMessage;
//! use pgwalrus_proto::BackendMessage;
//!
//! // A keepalive inside a CopyData frame: end of WAL 0/1501480, reply requested.
//! let mut buf = BytesMut::from(
//!     &b"d\x00\x00\x00\x16k\x00\x00\x00\x00\x01\x50\x14\x80\x00\x03\x03\xc5\x1d\x66\xaf\x5d\x01"[..],
//! );
//! let Some(BackendMessage::CopyData(payload)) = BackendMessage::parse(&mut buf)? else { unreachable!() };
//! let WalSenderMessage::Keepalive(k) = WalSenderMessage::parse(&payload)? else { unreachable!() };
//! assert_eq!(k.wal_end.to_string(), "0/1501480");
//! assert!(k.reply_requested);
//! # Ok::<(), pgwalrus_proto::ProtoError>(())
//! ```

pub mod auth;
pub mod backend;
mod error;
pub mod frontend;
pub mod fuzz;
pub mod query;
mod reader;
pub mod replication;
pub mod server_error;
pub mod startup;
mod writer;

#[cfg(test)]
mod testdata;

pub use backend::{
    Authentication, BackendMessage, CopyResponse, DEFAULT_MAX_MESSAGE_LEN, DataRow,
    FieldDescription, TransactionStatus,
};
pub use error::{ProtoError, Tag};
pub use reader::Reader;
pub use server_error::{Notice, ServerError, Severity, SqlState};
pub use writer::Writer;
