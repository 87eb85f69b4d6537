//! Integration tests of the receive engine against real PostgreSQL servers: the examples
//! (a caller's own streams, a caller's own authentication), and several engines in one
//! process. Every completed segment is compared byte for byte with the server's `pg_wal`.

mod examples;
mod support;
mod two_engines;
