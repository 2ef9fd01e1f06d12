//! The per-peer injection budget: a token bucket, so that one key holder
//! flooding valid datagrams cannot fill another host's interface. Kept
//! apart because it is the only rule that depends on how fast packets
//! come rather than on what they say.

/// A token bucket in thousandths of a packet, refilled by our clock.
#[derive(Clone, Copy, Debug)]
pub(super) struct Bucket {
    milli: u64,
    at_ms: u64,
}

impl Bucket {
    /// A bucket holding one second's worth of packets at `rate` per second.
    pub(super) fn full(rate: u32) -> Bucket {
        Bucket {
            milli: u64::from(rate) * 1000,
            at_ms: 0,
        }
    }

    /// Takes one packet's token if the peer is within `rate` per second.
    pub(super) fn take(&mut self, rate: u32, now_ms: u64) -> bool {
        if rate == 0 {
            return true;
        }
        let cap = u64::from(rate) * 1000;
        let refill = now_ms
            .saturating_sub(self.at_ms)
            .saturating_mul(u64::from(rate));
        self.milli = self.milli.saturating_add(refill).min(cap);
        self.at_ms = self.at_ms.max(now_ms);
        if self.milli >= 1000 {
            self.milli -= 1000;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {

    use crate::core::counters::DropReason;
    use crate::testing::cluster::*;

    #[test]
    fn injection_is_rate_limited_per_peer() {
        let mut a = node(1);
        let mut c = node(3);
        let mut b = node_full(2, 3, T0, key(2), 10);
        meet(&mut [(1, &mut a), (2, &mut b), (3, &mut c)], T0);
        let mut ok = 0;
        for _ in 0..30 {
            let (d, _) = send(&mut a, &vrrp_from(1), T0);
            match recv(&mut b, &d, 1, T0) {
                Ok(_) => ok += 1,
                Err(r) => assert_eq!(r, DropReason::RateLimited),
            }
        }
        assert_eq!(ok, 10, "a burst of one second's worth");
        assert_eq!(
            b.peer_stats(peer_index(&b, "h1"))
                .expect("peer")
                .rate_limited,
            20
        );
        // Another peer is not affected by the first one's flood.
        let (d, _) = send(&mut c, &vrrp_from(3), T0);
        assert!(recv(&mut b, &d, 3, T0).is_ok());
        // Tokens come back with time: 100 ms is one packet at 10/s.
        let (d, _) = send(&mut a, &vrrp_from(1), T0 + 100);
        assert!(recv(&mut b, &d, 1, T0 + 100).is_ok());
        let (d, _) = send(&mut a, &vrrp_from(1), T0 + 100);
        assert_eq!(recv(&mut b, &d, 1, T0 + 100), Err(DropReason::RateLimited));
    }
}
