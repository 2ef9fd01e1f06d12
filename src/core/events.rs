//! What happened in the core that its caller acts on or logs: a peer's run
//! confirmed, a peer reachable or not, a split brain raised or cleared,
//! quorum lost or regained. The core has no logger and no interface to
//! set a carrier on; it queues these and the caller drains them with
//! [`Relay::poll_event`](crate::core::relay::Relay::poll_event).

use std::collections::VecDeque;

use crate::core::peers::PeerId;
use crate::core::vip::Standing;
use crate::core::vrrp_watch::Alarm;

/// One thing that happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The handshake confirmed a peer's run; the first since we started.
    PeerConfirmed { peer: PeerId, epoch: u64 },
    /// The handshake confirmed a new run of a peer: it restarted.
    PeerRestarted { peer: PeerId, old: u64, new: u64 },
    /// A peer answered a keepalive after not answering (or for the first
    /// time).
    PeerReachable { peer: PeerId },
    /// A peer has answered no keepalive for the reachability window.
    PeerUnreachable { peer: PeerId },
    /// Two nodes advertise as master of one virtual router, or no longer.
    SplitBrain(Alarm),
    /// With quorum: fewer than a majority of the cluster's relays
    /// (`reachable` of `cluster`, this one included) reach each other.
    QuorumLost { reachable: usize, cluster: usize },
    /// With quorum: a majority again; also the first decision when it is
    /// one.
    QuorumRegained { reachable: usize, cluster: usize },
    /// Where this node stands with `[[vip]]` number `vip` changed; at
    /// [`Standing::Claimed`] its hook is due.
    Vip { vip: usize, standing: Standing },
}

impl Event {
    /// Never dropped from a full queue: the caller acts on these (the
    /// carrier, a hook) and is told of no other.
    fn is_kept(&self) -> bool {
        matches!(
            self,
            Event::QuorumLost { .. } | Event::QuorumRegained { .. } | Event::Vip { .. }
        )
    }
}

/// Events not yet drained: at most this many are held, so a caller that
/// never drains them costs bounded memory and no allocation after start.
const HELD: usize = 64;

/// The queue, reserved up front.
pub(super) struct Events {
    queue: VecDeque<Event>,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            queue: VecDeque::with_capacity(HELD),
        }
    }
}

impl Events {
    /// Queues `e`; when full the oldest goes, since the newest says more
    /// about the state now, except a quorum change or a claim's: the caller
    /// sets the carrier or runs a hook on it and is told of no other, so
    /// losing one would leave either wrong (a batch of answers from a
    /// cluster of 64 peers or more queues more than `HELD` events after
    /// the majority's).
    pub(super) fn push(&mut self, e: Event) {
        // Only a claim's newest standing matters to the caller: one per
        // `[[vip]]` is held, so claims cannot crowd out a quorum change.
        if let Event::Vip { vip, .. } = e {
            self.queue
                .retain(|q| !matches!(q, Event::Vip { vip: v, .. } if *v == vip));
        }
        if self.queue.len() == HELD {
            let oldest_other = self.queue.iter().position(|e| !e.is_kept());
            self.queue.remove(oldest_other.unwrap_or(0));
        }
        self.queue.push_back(e);
    }

    pub(super) fn pop(&mut self) -> Option<Event> {
        self.queue.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::{Event, Events, HELD};
    use crate::core::peers::PeerId;

    /// More events than are held between two drains: the quorum change
    /// the carrier follows survives, the oldest others go.
    #[test]
    fn a_full_queue_keeps_the_quorum_change() {
        let mut q = Events::default();
        let regained = Event::QuorumRegained {
            reachable: 33,
            cluster: 65,
        };
        q.push(Event::PeerReachable { peer: PeerId(0) });
        q.push(regained);
        for n in 1..=HELD as u32 {
            q.push(Event::PeerReachable { peer: PeerId(n) });
        }
        let drained: Vec<Event> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(drained.len(), HELD);
        assert_eq!(drained[0], regained);
        assert_eq!(
            drained.last(),
            Some(&Event::PeerReachable {
                peer: PeerId(HELD as u32)
            })
        );
        assert!(!drained.contains(&Event::PeerReachable { peer: PeerId(0) }));
    }
}
