//! The wall clock of the binary's reports: when a daemon's server was parked, how far
//! behind it is, how old an archive's segments are for retention. The receive engine keeps
//! its own clock; nothing here decides streaming.

use std::time::SystemTime;

/// Now, on the wall clock.
#[allow(
    clippy::disallowed_methods,
    reason = "reports and retention need the wall clock; the receive loop never reads it here"
)]
pub fn now() -> SystemTime {
    SystemTime::now()
}
