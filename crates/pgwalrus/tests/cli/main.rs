//! Integration tests of the pgwalrus command line against real PostgreSQL servers.
//!
//! Each test runs the built `pgwalrus` binary with a scrubbed environment (no `PG*`
//! variables, a private `HOME`) against clusters from `pgwalrus-testkit`, and checks exit
//! codes, stdout and stderr the way an operator would see them.
//!
//! Themes: [`check`] (`pgwalrus check`).

mod check;
mod support;
