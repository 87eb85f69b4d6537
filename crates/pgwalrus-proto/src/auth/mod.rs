//! Password authentication methods: cleartext needs nothing, [`md5_response`] hashes for
//! MD5, and [`scram`] implements SCRAM-SHA-256(-PLUS). The state machine that decides which
//! one to run lives in [`crate::startup`].

mod md5;
pub mod scram;

pub use md5::md5_response;
