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

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub(super) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
