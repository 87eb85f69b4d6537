//! Integration tests of the replication client against real PostgreSQL servers.
//!
//! Every test starts its own cluster(s) through `pgwalrus-testkit`, from the installation
//! `PGWALRUS_PG_BINDIR` selects (PostgreSQL 15 from Debian by default), and checks what
//! the client does against what the server itself reports (`pg_control_system()`,
//! `pg_replication_slots`, the files in `pg_wal`).
//!
//! Themes: [`auth`] (methods, wrong passwords, `.pgpass`, channel binding), [`tls`]
//! (`sslmode`, verification, client certificates, direct TLS), [`hosts`] (host lists,
//! refused/timeout errors, `target_session_attrs`, unix sockets, caller-supplied streams),
//! [`commands`] (simple queries and replication commands), [`replication`] (the stream,
//! timelines).

mod auth;
mod commands;
mod hosts;
mod replication;
mod support;
mod tls;
