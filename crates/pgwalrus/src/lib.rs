//! The pgwalrus application: command-line parsing and the commands; the receive loop is the
//! `pgwalrus-receiver` engine.
//! `main.rs` only parses, dispatches and maps outcomes to exit codes.
//!
//! # Layout
//! - [`check`]: `pgwalrus check`, the first thing an operator runs.
//! - [`clock`]: the wall clock of reports and retention.
//! - [`cli`]: clap syntax and its resolution into validated settings.
//! - [`connection`]: connection settings from flags; client errors to exit codes.
//! - [`daemon`]: `pgwalrus daemon`, every server of a configuration file in one process.
//! - [`dump`]: `pgwalrus dump`, records in pg_waldump's layout.
//! - [`exit`]: the exit-code table.
//! - [`failure`]: an error paired with the exit code it maps to.
//! - [`logging`]: log output.
//! - [`progress`]: the live progress line of `receive`, a reader of the engine's status.
//! - [`prune`]: `pgwalrus prune`, retention by age and size.
//! - [`receive`]: `pgwalrus receive`: settings from flags, slot dropping, signals, and the
//!   receive engine (`pgwalrus-receiver`) on its thread; stop reasons to exit codes.
//! - [`restore`]: `pgwalrus restore`, the `restore_command`: checked, atomic, prefetching.
//! - [`status`]: `pgwalrus status`, a running daemon's servers.
//! - [`units`]: sizes and durations with PostgreSQL's units.
//! - [`verify`]: `pgwalrus verify`, the archive checker.
//! - [`walk`]: the archive walk along a timeline's history that `verify` and `dump` share.

pub mod archiver;
pub mod check;
pub mod cli;
pub mod clock;
pub mod connection;
pub mod daemon;
pub mod dump;
pub mod exit;
pub mod failure;
pub mod logging;
pub mod progress;
pub mod prune;
pub mod receive;
pub mod restore;
pub mod status;
pub mod units;
pub mod verify;
pub mod verify_bucket;
pub mod walk;

#[cfg(test)]
mod test_support;
