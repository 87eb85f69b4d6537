//! Tokio client for PostgreSQL physical replication.
//!
//! # Layout
//! - [`config`]: the resolved, libpq-compatible connection settings.
//! - [`tls`]: rustls configuration from `sslmode` and friends; channel-binding data.

pub mod config;
pub mod tls;
