//! The receive loop: [`core`] holds the sans-IO policy (feedback, fsync requests, stop),
//! [`writer`] the blocking file work (a thread, or inline in synchronous mode), [`driver`]
//! the async glue (connection, start point, reconnects, signals), [`inspect`] the streaming
//! CRC verification, [`progress`] the live line and per-segment log, [`timelines`] the
//! rules for a server on another timeline than the archive.

pub mod core;
pub mod driver;
pub mod inspect;
pub mod progress;
pub mod timelines;
pub mod writer;
