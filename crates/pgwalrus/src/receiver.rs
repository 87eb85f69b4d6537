//! The receive loop: [`core`] holds the sans-IO policy (feedback, fsync requests, stop);
//! the driver that carries it out over a connection and a writer thread comes with it.

pub mod core;
