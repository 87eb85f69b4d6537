//! The engine's only clock reads. Everything else takes time as an argument, so the policy
//! and the status are testable on paused time.

use std::time::{Instant, SystemTime};

/// Monotonic time, for timers and rates: tokio's, so that the timers it sets and the
/// deadlines it computes agree on paused time in tests.
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Wall-clock time, for the status updates sent to the server and the status snapshot.
#[allow(
    clippy::disallowed_methods,
    reason = "the engine reads the clock here and nowhere else"
)]
pub(crate) fn wall_clock() -> SystemTime {
    SystemTime::now()
}
