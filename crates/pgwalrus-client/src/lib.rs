//! Tokio client for PostgreSQL physical replication.
//!
//! # Layout
//! - [`config`]: the resolved, libpq-compatible connection settings.

pub mod config;
