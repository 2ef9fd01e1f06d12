//! The core's timers: every deadline the caller must wake for when no
//! packet comes, so that an idle relay sleeps exactly until then instead
//! of waking on fixed ticks. [`Relay::poll_timeout`] names the earliest;
//! [`Relay::handle_timeout`] does what is due.

use crate::core::events::Event;
use crate::core::quorum::Quorum;
use crate::core::relay::Relay;
use crate::core::time::Now;

/// The things that happen at a time rather than on a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timer {
    /// A handshake retry or a keepalive is due
    /// ([`Relay::poll_hello`] has something).
    Hello,
    /// A peer's reachability window ends (and with quorum, perhaps the
    /// majority with it).
    Reachability,
    /// A split-brain alarm ends: one master for a whole window.
    SplitBrainOver,
    /// A session reaches its end of life and is dropped.
    SessionExpiry,
    /// A held copy of a packet is due ([`Relay::poll_later`] has it).
    Copies,
    /// A `[[vip]]` claim's settle ends, our own adverts go stale, or a
    /// peer's report of a split brain lapses.
    Vip,
    /// Something must be decided at once: the first quorum decision, or
    /// the count after a reload changed the peers or the window.
    Recheck,
}

impl Timer {
    pub const ALL: [Timer; 7] = [
        Timer::Hello,
        Timer::Copies,
        Timer::Reachability,
        Timer::SplitBrainOver,
        Timer::SessionExpiry,
        Timer::Vip,
        Timer::Recheck,
    ];
}

impl Relay {
    /// When `timer` next fires (monotonic ms), if it is set.
    pub fn deadline(&self, timer: Timer) -> Option<u64> {
        match timer {
            Timer::Hello => self.next_hello_ms(),
            Timer::Reachability => self.reachability_deadline(),
            Timer::SplitBrainOver => self.watch.next_expiry(),
            Timer::SessionExpiry => self
                .peers
                .iter()
                .filter_map(|p| p.sessions.next_expiry())
                .min(),
            Timer::Copies => self.later.next_due(),
            Timer::Vip => self.claims_deadline(),
            Timer::Recheck => self.recheck.then_some(0),
        }
    }

    /// The earliest deadline (monotonic ms): call [`Relay::handle_timeout`]
    /// then. `None`: nothing is scheduled, sleep until a packet comes.
    pub fn poll_timeout(&self) -> Option<u64> {
        Timer::ALL.iter().filter_map(|t| self.deadline(*t)).min()
    }

    /// Does what is due at `now`: reachability and quorum follow the
    /// keepalives' answers, split-brain alarms end. Then the caller sends
    /// what [`Relay::poll_hello`] has and acts on [`Relay::poll_event`].
    pub fn handle_timeout(&mut self, now: impl Into<Now>) {
        let now = now.into();
        self.recheck = false;
        self.observe_clock(now);
        for p in self.peers.iter_mut() {
            p.sessions.expire(now.mono_ms);
        }
        self.update_reachability(now.mono_ms);
        self.update_quorum();
        while let Some(alarm) = self.watch.tick(now.mono_ms) {
            self.events.push(Event::SplitBrain(alarm));
            self.alarms_changed();
        }
        self.decide_claims(now.mono_ms);
    }

    /// The next thing that happened, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop()
    }

    /// Whether this node has quorum; `None` without quorum or before the
    /// first decision.
    pub fn quorum(&self) -> Option<bool> {
        self.quorum.as_ref().and_then(Quorum::is_up)
    }

    /// Feeds the reachable count to the quorum, telling a change.
    pub(super) fn update_quorum(&mut self) {
        let Some(q) = &mut self.quorum else { return };
        let reachable = self.peers.iter().filter(|p| p.ka.reachable).count();
        if let Some(c) = q.update(reachable, self.peers.len()) {
            let (reachable, cluster) = (c.reachable, c.cluster);
            self.events.push(if c.up {
                Event::QuorumRegained { reachable, cluster }
            } else {
                Event::QuorumLost { reachable, cluster }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Timer;
    use crate::core::events::Event;
    use crate::core::peers::{Node, PeerId};
    use crate::core::quorum::Quorum;
    use crate::core::relay::Relay;
    use crate::core::vrrp_watch::Alarm;
    use crate::testing::cluster::*;

    fn drain(r: &mut Relay) -> Vec<Event> {
        std::iter::from_fn(|| r.poll_event()).collect()
    }

    fn id(n: u8) -> PeerId {
        PeerId::from(overlay(n))
    }

    #[test]
    fn the_next_deadline_is_the_earliest_timer() {
        let a = node(1);
        // A new node greets its peers at once.
        assert_eq!(a.poll_timeout(), Some(0));
        let (mut a, _b, _c) = cluster3();
        // Met at T0: keepalives in a second; reachable until T0 + 3.5 s.
        assert_eq!(a.deadline(Timer::Hello), Some(T0 + 1000));
        assert_eq!(a.deadline(Timer::Reachability), Some(T0 + 3501));
        assert_eq!(a.deadline(Timer::SplitBrainOver), None);
        assert_eq!(a.deadline(Timer::Recheck), None);
        assert_eq!(a.poll_timeout(), Some(T0 + 1000));
        // Quorum wants its first decision at once.
        a.quorum = Some(Quorum::default());
        a.recheck = true;
        assert_eq!(a.poll_timeout(), Some(0));
        a.handle_timeout(T0);
        assert_eq!(a.poll_timeout(), Some(T0 + 1000));
    }

    #[test]
    fn confirmations_and_restarts_are_events_not_log_lines() {
        let (mut a, mut b) = (node(1), node(2));
        meet(&mut [(1, &mut a), (2, &mut b)], T0);
        let epoch_b = run_of(2, T0);
        let events = drain(&mut a);
        assert!(events.contains(&Event::PeerConfirmed {
            peer: id(2),
            epoch: epoch_b
        }));
        assert!(events.contains(&Event::PeerReachable { peer: id(2) }));
        // b restarts: a new run, confirmed by a new handshake.
        let mut b2 = node_with(2, 2, T0 + 5000, key(2));
        meet(&mut [(1, &mut a), (2, &mut b2)], T0 + 5000);
        let restarted = Event::PeerRestarted {
            peer: id(2),
            old: epoch_b,
            new: run_of(2, T0 + 5000),
        };
        assert!(drain(&mut a).contains(&restarted));
    }

    #[test]
    fn reachability_and_quorum_follow_the_keepalives() {
        let (mut a, mut b, mut c) = cluster3();
        a.quorum = Some(Quorum::default());
        a.recheck = true;
        drain(&mut a);
        a.handle_timeout(T0);
        assert_eq!(
            drain(&mut a),
            vec![Event::QuorumRegained {
                reachable: 3,
                cluster: 3
            }]
        );
        assert_eq!(a.quorum(), Some(true));
        // No answers from now on: at the end of the window both peers go
        // and the majority with them, in one wake-up.
        let end = a.deadline(Timer::Reachability).expect("reachable peers");
        assert_eq!(end, T0 + 3501);
        a.handle_timeout(end - 1);
        assert_eq!(drain(&mut a), vec![]);
        a.handle_timeout(end);
        assert_eq!(
            drain(&mut a),
            vec![
                Event::PeerUnreachable { peer: id(2) },
                Event::PeerUnreachable { peer: id(3) },
                Event::QuorumLost {
                    reachable: 1,
                    cluster: 3
                },
            ]
        );
        assert_eq!(a.deadline(Timer::Reachability), None);
        // One answer brings the majority back at once, not on a tick.
        let t = end + 500;
        exchange(&mut a, 1, &mut b, 2, t);
        let events = drain(&mut a);
        assert!(events.contains(&Event::PeerReachable { peer: id(2) }));
        assert!(events.contains(&Event::QuorumRegained {
            reachable: 2,
            cluster: 3
        }));
        // c's keepalive went out (and was lost) with b's; the next one.
        exchange(&mut a, 1, &mut c, 3, t + 1000);
        assert_eq!(drain(&mut a), vec![Event::PeerReachable { peer: id(3) }]);
    }

    /// Seventy relays meet at once: the answers queue more events than
    /// are held before the caller drains them, and the quorum change the
    /// carrier follows must be among those it gets.
    #[test]
    fn a_large_cluster_meeting_at_once_tells_the_quorum_regained() {
        const N: u8 = 70;
        let mut nodes: Vec<Relay> = (1..=N).map(|n| node_with(n, N, T0, key(n))).collect();
        let a = &mut nodes[0];
        a.quorum = Some(Quorum::default());
        a.recheck = true;
        a.handle_timeout(T0);
        assert_eq!(
            drain(a),
            vec![Event::QuorumLost {
                reachable: 1,
                cluster: 70
            }]
        );
        let mut all: Vec<(u8, &mut Relay)> = (1..=N).zip(nodes.iter_mut()).collect();
        meet(&mut all, T0);
        let a = &mut nodes[0];
        assert_eq!(a.quorum(), Some(true));
        assert!(drain(a).contains(&Event::QuorumRegained {
            reachable: 36,
            cluster: 70
        }));
    }

    #[test]
    fn the_core_watches_adverts_both_ways_and_ends_the_alarm_on_time() {
        let (mut a, mut b) = (node(1), node(2));
        meet(&mut [(1, &mut a), (2, &mut b)], T0);
        drain(&mut b);
        // Both claim VRID 1 (interval 1 s, window 5 s) in turns.
        let mut raised = None;
        let mut t = T0;
        for _ in 0..6 {
            t += 100;
            let (d, _) = send(&mut a, &vrrp_from(1), t);
            assert!(recv(&mut b, &d, 1, t).is_ok());
            send(&mut b, &vrrp_from(2), t + 50);
            for e in drain(&mut b) {
                if let Event::SplitBrain(Alarm::Raised(r)) = e {
                    raised = Some(r);
                }
            }
        }
        let r = raised.expect("two masters raise the alarm");
        assert_eq!(r.vrid, 1);
        let pair = [Some(r.master), r.rival];
        assert!(pair.contains(&Some(Node::Me)) && pair.contains(&Some(Node::Peer(id(1)))));
        assert_eq!(
            b.routers()[0].split_since,
            Some(r.split_since.expect("since"))
        );
        // Only b from now on: the alarm ends one window after the last turn.
        let last_turn = t + 50;
        send(&mut b, &vrrp_from(2), t + 1000);
        let end = b.deadline(Timer::SplitBrainOver).expect("an alarm to end");
        assert_eq!(end, last_turn + 5001);
        // (The peer's reachability ends meanwhile: no keepalives here.)
        let alarms = |b: &mut Relay| -> Vec<Event> {
            drain(b)
                .into_iter()
                .filter(|e| matches!(e, Event::SplitBrain(_)))
                .collect()
        };
        b.handle_timeout(end - 1);
        assert_eq!(alarms(&mut b), vec![]);
        b.handle_timeout(end);
        let cleared = alarms(&mut b);
        assert!(
            matches!(cleared[..], [Event::SplitBrain(Alarm::Cleared(r))] if r.master == Node::Me)
        );
        assert_eq!(b.deadline(Timer::SplitBrainOver), None);
    }
}
