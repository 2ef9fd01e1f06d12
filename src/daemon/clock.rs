//! The clocks the core is given: a monotonic one for every timer, rate
//! limit and age (so a wall clock stepped back stalls nothing), and the
//! wall clock for what goes on the wire and for the per-start epoch. Read
//! in one place.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::core::relay::Now;

/// The relay's clock: monotonic milliseconds since it started.
#[derive(Clone, Copy, Debug)]
pub(super) struct Clock {
    started: Instant,
}

impl Clock {
    pub(super) fn since(started: Instant) -> Self {
        Clock { started }
    }

    pub(super) fn now(&self) -> Now {
        Now::new(self.started.elapsed().as_millis() as u64, wall_ms())
    }

    /// The moment of monotonic `mono_ms`, for the loop's timer.
    pub(super) fn instant(&self, mono_ms: u64) -> Instant {
        self.started + Duration::from_millis(mono_ms)
    }
}

/// Signed, so that a host whose clock reads before 1970 still has a time
/// that orders (the handshake's timestamps need one).
fn wall_ms() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(before) => -(before.duration().as_millis() as i64),
    }
}
