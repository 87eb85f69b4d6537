//! Integration tests of the receive engine against real PostgreSQL servers: the examples
//! (a caller's own streams, a caller's own authentication), several engines in one process,
//! the engine over the crash-simulating file system with the power cut at every sync
//! point, and the engine against a fake server that lies ([`lies`]). Every completed
//! segment is compared byte for byte with the server's `pg_wal` (or with what the fake
//! server sent).

mod examples;
mod flush_interval;
mod lies;
mod power_cut;
mod silent_peer;
mod support;
mod two_engines;
