//! The crate's only clock read: wall-clock time for the status (when an error happened) and
//! for the names of conflict copies, which must not collide across runs.

use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock time.
#[allow(
    clippy::disallowed_methods,
    reason = "the object-storage archive reads the clock here and nowhere else"
)]
pub(crate) fn wall_clock() -> SystemTime {
    SystemTime::now()
}

/// Nanoseconds since the Unix epoch, for unique names.
pub(crate) fn unix_nanos() -> u128 {
    wall_clock()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
}
