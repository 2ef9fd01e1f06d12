//! The time as the core is told it: two clocks, because they answer
//! different questions. The monotonic part (ms since the caller started
//! counting, never stepping back) drives every timer, rate limit, window,
//! round trip and age; the wall part (ms since the Unix epoch) goes only
//! into handshake timestamps, and its drift against the monotonic part
//! tells a restored snapshot. A wall clock stepped back then cannot stall
//! a token bucket or a keepalive.

/// One instant on both clocks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Now {
    /// Monotonic ms (`std::time::Instant` since the relay started, in the
    /// daemon).
    pub mono_ms: u64,
    /// Wall-clock ms since the Unix epoch (negative before it: a host
    /// whose clock was never set).
    pub wall_ms: i64,
}

impl Now {
    pub fn new(mono_ms: u64, wall_ms: i64) -> Self {
        Now { mono_ms, wall_ms }
    }
}

/// Both clocks at one reading: a simulated cluster (the unit tests, the
/// in-process tests, benchmarks and fuzz targets) whose clocks never
/// disagree. Not in the binary, so the daemon cannot pass one clock as both.
#[cfg(any(test, feature = "testing"))]
impl From<u64> for Now {
    fn from(ms: u64) -> Self {
        Now {
            mono_ms: ms,
            wall_ms: ms as i64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Now;
    use crate::core::counters::DropReason;
    use crate::core::relay::{Inbound, Outbound};
    use crate::testing::cluster::*;

    /// The review's finding: the host's wall clock stepped back by 1000 s
    /// (on every node, so the clocks still agree) while time goes on.
    /// Injection and keepalives run on the monotonic clock and carry on;
    /// with one wall clock for everything the token bucket stayed empty
    /// until the clock caught up (heartbeats dropped as `rate_limited`)
    /// and no keepalive was due for 1000 s (the peer unreachable).
    #[test]
    fn a_wall_clock_stepped_back_stalls_neither_injection_nor_keepalives() {
        let mut a = node_full(1, 2, T0, key(1), 10);
        let mut b = node_full(2, 2, T0, key(2), 10);
        meet(&mut [(1, &mut a), (2, &mut b)], T0);
        let h2 = peer_index(&a, "h2");
        let mut out = batch();
        // Ten heartbeats a second, exactly the rate allowed: 5 s with the
        // clocks together, then 10 s with the wall clock 1000 s behind.
        for step in 1..=150u64 {
            let mono = T0 + step * 100;
            let wall = if step <= 50 { mono } else { mono - 1_000_000 };
            let now = Now::new(mono, wall as i64);
            let Outbound::Send { .. } = a.from_tun(&vrrp_from(1), now, &mut out) else {
                panic!("not sent");
            };
            let mut d = out.get(0).expect("sealed for h2").2.to_vec();
            let mut reply = [0u8; 256];
            match b.from_net(&mut d, endpoint(1), now, &mut reply) {
                Inbound::Inject { .. } => {}
                other => panic!("heartbeat {step} not injected: {other:?}"),
            }
            // Keepalives both ways, answered at once.
            exchange(&mut a, 1, &mut b, 2, now);
            exchange(&mut b, 2, &mut a, 1, now);
            assert!(a.peer_reachable(h2, now), "h2 unreachable at step {step}");
        }
        assert_eq!(b.counters().drops.get(DropReason::RateLimited), 0);
        assert!(
            a.peer_stats(h2).expect("peer").pings_answered >= 10,
            "keepalives stopped"
        );
    }
}
