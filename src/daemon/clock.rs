//! The wall clock as the core takes it today: milliseconds for its
//! timestamps and timers, nanoseconds for the per-start epoch. Read in one
//! place so the move to a monotonic clock touches one file.

use std::time::{SystemTime, UNIX_EPOCH};

pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub(super) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
