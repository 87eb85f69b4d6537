//! Integration tests of the receive engine against real PostgreSQL servers: the examples
//! (a caller's own streams, a caller's own authentication), several engines in one process,
//! and the engine over the crash-simulating file system with the power cut at every sync
//! point. Every completed segment is compared byte for byte with the server's `pg_wal`.

mod examples;
mod flush_interval;
mod power_cut;
mod silent_peer;
mod support;
mod two_engines;
