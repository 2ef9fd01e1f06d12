//! Cloud VIP claims: for each `[[vip]]` virtual router, whether this node
//! is its only master right now and has been for `settle`, so that the
//! caller may move the address to it through the provider's API.
//!
//! The decision reads the advert watch, which sees every advert of the
//! cluster in both directions, and the split-brain alarms other relays
//! report ([`Reports`]): in an asymmetric partition the new master hears
//! nobody else, but a third relay hears both and says so. A claim is made
//! once per term of sole mastership; any other node's advert, an alarm
//! (here or reported) or our own adverts stopping ends the term, and the
//! next term waits the whole `settle` again. Nothing here ever gives an
//! address back: a node that stops being master only stops claiming.

use crate::core::peers::{Node, PeerId};
use crate::core::vrrp_watch::{Family, Router};

/// When `settle` is not configured: this many advert intervals, so that
/// two masters are told apart first (the watch needs eight turns, four
/// intervals of both advertising), and at least [`MIN_AUTO_SETTLE_MS`].
const AUTO_SETTLE_ADVERTS: u64 = 6;
const MIN_AUTO_SETTLE_MS: u64 = 1000;
/// Our own adverts older than this many intervals: keepalived (or ucarp)
/// stopped, we are not master any more even if no one else took over yet.
const STALE_ADVERTS: u64 = 3;
/// How often a relay repeats the alarms it sees to its peers, and how long
/// a report counts without being repeated (a peer that died mid-alarm).
pub const REPORT_EVERY_MS: u64 = 1000;
pub const REPORT_TTL_MS: u64 = 3500;

/// One `[[vip]]`: which virtual router, and how long to wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    pub family: Family,
    pub vrid: u8,
    /// `None`: [`AUTO_SETTLE_ADVERTS`] of the router's interval.
    pub settle_ms: Option<u64>,
}

impl Rule {
    fn settle(&self, interval_ms: u64) -> u64 {
        self.settle_ms
            .unwrap_or_else(|| (interval_ms * AUTO_SETTLE_ADVERTS).max(MIN_AUTO_SETTLE_MS))
    }
}

/// Where this node stands with one virtual router.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Another node advertises, nobody does, or our adverts stopped.
    NotMaster,
    /// The only master since `since`; the claim is due at `due`.
    Settling { since: u64, due: u64 },
    /// Master, but something forbids the claim; nothing runs while held.
    Held { since: u64, why: Hold },
    /// The only master for `settle`, since `at`: the hook's turn.
    Claimed { at: u64 },
}

/// Why a master may not claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hold {
    /// Two nodes advertise: seen here (`by: None`) or reported by peer
    /// `by`.
    SplitBrain { by: Option<PeerId> },
    /// This relay reaches `reachable` of the `cluster`'s relays (itself
    /// included), not a majority: it may be the one cut off.
    NoMajority { reachable: usize, cluster: usize },
}

/// The split-brain alarms peers report, per peer, with when each report
/// came. Bounded by the peer count; a report replaces the peer's last.
#[derive(Debug, Default)]
pub struct Reports {
    by_peer: Vec<Report>,
}

impl Reports {
    /// Room for `peers` reports, so recording one never allocates.
    fn with_capacity(peers: usize) -> Reports {
        Reports {
            by_peer: Vec::with_capacity(peers),
        }
    }
}

#[derive(Debug)]
struct Report {
    peer: PeerId,
    at_ms: u64,
    alarms: Bitmap,
}

/// A set of virtual routers: bit `family * 256 + vrid` (IPv4 0, IPv6 1),
/// least significant bit first in each byte; as a view carries it.
pub type Bitmap = [u8; 64];

fn bit(family: Family, vrid: u8) -> usize {
    usize::from(family == Family::V6) * 256 + usize::from(vrid)
}

/// The bitmap of `routers`.
pub fn bitmap(routers: impl Iterator<Item = (Family, u8)>) -> Bitmap {
    let mut set = [0u8; 64];
    for (f, v) in routers {
        let b = bit(f, v);
        set[b / 8] |= 1 << (b % 8);
    }
    set
}

impl Reports {
    /// Peer `peer` reports these alarms now (replacing what it said
    /// before).
    pub fn record(&mut self, peer: PeerId, alarms: &Bitmap, now_ms: u64) {
        match self.by_peer.iter_mut().find(|r| r.peer == peer) {
            Some(r) => {
                r.at_ms = now_ms;
                r.alarms = *alarms;
            }
            None => self.by_peer.push(Report {
                peer,
                at_ms: now_ms,
                alarms: *alarms,
            }),
        }
    }

    /// A peer that reports an alarm for this router, if a fresh report does.
    pub fn reporter(&self, family: Family, vrid: u8, now_ms: u64) -> Option<PeerId> {
        let b = bit(family, vrid);
        self.by_peer
            .iter()
            .find(|r| {
                now_ms.saturating_sub(r.at_ms) < REPORT_TTL_MS
                    && r.alarms[b / 8] & (1 << (b % 8)) != 0
            })
            .map(|r| r.peer)
    }

    /// When peer `peer`'s last report stops counting.
    fn expiry_of(&self, peer: PeerId) -> Option<u64> {
        self.by_peer
            .iter()
            .find(|r| r.peer == peer)
            .map(|r| r.at_ms + REPORT_TTL_MS)
    }

    /// Forgets peers no longer configured.
    pub fn retain(&mut self, keep: impl Fn(PeerId) -> bool) {
        self.by_peer.retain(|r| keep(r.peer));
    }

    /// Room for `peers` reports in all (after a reload).
    pub fn reserve(&mut self, peers: usize) {
        self.by_peer
            .reserve(peers.saturating_sub(self.by_peer.len()));
    }
}

/// One rule, where this node stands with it, and when this node's own
/// last advert for it went out (`None`: none, or it resigned).
#[derive(Debug)]
struct Claim {
    rule: Rule,
    standing: Standing,
    own_ms: Option<u64>,
    /// The current term of sole mastership: when it began, when its
    /// settle ends.
    sole: Option<(u64, u64)>,
}

/// Every rule and where this node stands with it.
#[derive(Debug, Default)]
pub struct Claims {
    rules: Vec<Claim>,
    pub(crate) reports: Reports,
}

/// A majority wanted and missing: how many relays answered (this one
/// included) of how many.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lacking {
    pub reachable: usize,
    pub cluster: usize,
}

impl Claims {
    pub fn new(rules: &[Rule], peers: usize) -> Claims {
        Claims {
            rules: rules
                .iter()
                .map(|r| Claim {
                    rule: *r,
                    standing: Standing::NotMaster,
                    own_ms: None,
                    sole: None,
                })
                .collect(),
            reports: Reports::with_capacity(peers),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn standings(&self) -> impl Iterator<Item = (&Rule, Standing)> {
        self.rules.iter().map(|c| (&c.rule, c.standing))
    }

    /// The (family, VRID) of every rule, for the watch to keep room for.
    pub fn routers(&self) -> impl Iterator<Item = (Family, u8)> + '_ {
        self.rules.iter().map(|c| (c.rule.family, c.rule.vrid))
    }

    /// Which rule a router's change concerns.
    pub fn rule_for(&self, family: Family, vrid: u8) -> Option<usize> {
        self.rules
            .iter()
            .position(|c| c.rule.family == family && c.rule.vrid == vrid)
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// This node sent an advert for rule `i` at `now_ms`; priority 0 (it
    /// resigns) ends its mastership at once.
    pub fn own_advert(&mut self, i: usize, priority: u8, now_ms: u64) {
        if let Some(c) = self.rules.get_mut(i) {
            c.own_ms = (priority != 0).then_some(now_ms);
        }
    }

    /// Decides rule `i` anew from its router (`None`: never heard) at
    /// `now_ms`. `lacking(t)`: whether a majority is wanted and has not
    /// answered since `t` (`None`: it has, or none is wanted). Returns the
    /// new standing if it changed.
    pub fn decide(
        &mut self,
        i: usize,
        router: Option<&Router>,
        lacking: &dyn Fn(u64) -> Option<Lacking>,
        now_ms: u64,
    ) -> Option<Standing> {
        let c = self.rules.get(i)?;
        let (rule, old) = (c.rule, c.standing);
        let ours = router.filter(|r| c.own_ms.is_some_and(|t| now_ms < stale_after(t, r)));
        let held_since = match old {
            Standing::Held { since, .. } => since,
            _ => now_ms,
        };
        let split = ours.and_then(|r| match r.split_since {
            Some(_) => Some(None),
            None => self
                .reports
                .reporter(rule.family, rule.vrid, now_ms)
                .map(Some),
        });
        let mut sole = c.sole;
        let new = match (ours, split) {
            (None, _) => {
                sole = None;
                Standing::NotMaster
            }
            (Some(_), Some(by)) => {
                sole = None;
                Standing::Held {
                    since: held_since,
                    why: Hold::SplitBrain { by },
                }
            }
            // Another node took over (it advertised last, no alarm).
            (Some(r), None) if r.master != Node::Me => {
                sole = None;
                Standing::NotMaster
            }
            (Some(r), None) => {
                let (since, due) =
                    *sole.get_or_insert((now_ms, now_ms + rule.settle(r.interval_ms)));
                match old {
                    Standing::Claimed { .. } => old,
                    _ if now_ms < due => Standing::Settling { since, due },
                    // Answers since the term began came after any cut that
                    // made this node master: a majority then is a majority
                    // of the cluster as it is now, not as it was.
                    _ => match lacking(since) {
                        None => Standing::Claimed { at: now_ms },
                        Some(l) => Standing::Held {
                            since: held_since,
                            why: Hold::NoMajority {
                                reachable: l.reachable,
                                cluster: l.cluster,
                            },
                        },
                    },
                }
            }
        };
        if let Some(c) = self.rules.get_mut(i) {
            c.standing = new;
            c.sole = sole;
        }
        (new != old).then_some(new)
    }

    /// When a decision must be made without a packet: a claim's settle
    /// ends, our own adverts go stale, or a report holding one expires.
    pub fn next_deadline(&self, router: impl Fn(&Rule) -> Option<Router>) -> Option<u64> {
        self.rules
            .iter()
            .filter_map(|c| {
                let stale = c
                    .own_ms
                    .zip(router(&c.rule))
                    .map(|(t, r)| stale_after(t, &r));
                let report = match c.standing {
                    Standing::Held {
                        why: Hold::SplitBrain { by: Some(p) },
                        ..
                    } => self.reports.expiry_of(p),
                    _ => None,
                };
                let due = match c.standing {
                    Standing::Settling { due, .. } => Some(due),
                    _ => None,
                };
                let own = match c.standing {
                    Standing::NotMaster => None,
                    _ => stale,
                };
                [due, own, report].into_iter().flatten().min()
            })
            .min()
    }
}

/// When our own advert of `at_ms` goes stale: keepalived (or ucarp)
/// stopped, so we are not master any more even if no one took over yet.
fn stale_after(at_ms: u64, r: &Router) -> u64 {
    at_ms + STALE_ADVERTS * r.interval_ms.max(100) + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::vrrp_watch::Watch;

    const H2: Node = Node::Peer(PeerId(2));

    /// A VRRPv3 advert for VRID 51 at 100 ms.
    fn advert(priority: u8) -> Vec<u8> {
        let mut p = vec![0x45, 0xc0, 0, 32, 0, 0, 0, 0, 255, 112, 0, 0];
        p.extend_from_slice(&[10, 250, 0, 1, 224, 0, 0, 18]);
        p.extend_from_slice(&[0x31, 51, priority, 1, 0x00, 10, 0, 0, 10, 77, 0, 100]);
        p
    }

    struct World {
        watch: Watch,
        claims: Claims,
        changes: Vec<(u64, Standing)>,
        lacking: Option<Lacking>,
    }

    impl World {
        fn new(settle_ms: Option<u64>) -> World {
            World {
                watch: Watch::default(),
                claims: Claims::new(
                    &[Rule {
                        family: Family::V4,
                        vrid: 51,
                        settle_ms,
                    }],
                    2,
                ),
                changes: Vec::new(),
                lacking: None,
            }
        }

        fn advert(&mut self, node: Node, priority: u8, now: u64) {
            self.watch.observe(node, &advert(priority), now);
            if node == Node::Me {
                self.claims.own_advert(0, priority, now);
            }
            self.decide(now);
        }

        fn decide(&mut self, now: u64) {
            let r = self.watch.routers().first().copied();
            let lacking = self.lacking;
            if let Some(s) = self.claims.decide(0, r.as_ref(), &|_| lacking, now) {
                self.changes.push((now, s));
            }
            // The property the event loop relies on: after a decision the
            // next deadline, if any, is later (else it would spin).
            let watch = &self.watch;
            if let Some(d) = self
                .claims
                .next_deadline(|_| watch.routers().first().copied())
            {
                assert!(d > now, "deadline {d} not after the decision at {now}");
            }
        }

        /// Runs the clock to `until` as the caller would: a decision at
        /// each deadline.
        fn run_to(&mut self, until: u64) {
            loop {
                let watch = &self.watch;
                let Some(t) = self
                    .claims
                    .next_deadline(|_| watch.routers().first().copied())
                    .filter(|t| *t <= until)
                else {
                    return;
                };
                self.decide(t);
            }
        }

        /// `rounds` advert intervals of us and H2 both advertising (a
        /// partition), from `t`; returns the time after.
        fn take_turns(&mut self, mut t: u64, rounds: usize) -> u64 {
            for _ in 0..rounds {
                self.advert(Node::Me, 200, t);
                self.advert(H2, 150, t + 50);
                t += 100;
            }
            t
        }

        fn claims(&self) -> usize {
            self.changes
                .iter()
                .filter(|(_, s)| matches!(s, Standing::Claimed { .. }))
                .count()
        }
    }

    #[test]
    fn sole_master_for_settle_claims_once() {
        let mut w = World::new(Some(2000));
        for t in 0..50 {
            w.advert(Node::Me, 200, t * 100);
        }
        assert_eq!(
            w.changes,
            [
                (
                    0,
                    Standing::Settling {
                        since: 0,
                        due: 2000
                    }
                ),
                (2000, Standing::Claimed { at: 2000 })
            ]
        );
    }

    #[test]
    fn the_claim_comes_at_settle_without_a_packet() {
        let mut w = World::new(Some(250));
        w.advert(Node::Me, 200, 0);
        w.advert(Node::Me, 200, 100);
        w.advert(Node::Me, 200, 200);
        w.run_to(260);
        assert_eq!(
            w.changes.last(),
            Some(&(250, Standing::Claimed { at: 250 }))
        );
    }

    #[test]
    fn flapping_twice_within_settle_claims_at_most_once() {
        let mut w = World::new(Some(2000));
        // Master, then h2 preempts, then us again, twice, each within settle.
        let mut t = 0;
        for round in 0..2 {
            for _ in 0..5 {
                w.advert(Node::Me, 200, t);
                t += 100;
            }
            for _ in 0..3 {
                w.advert(H2, 250, t);
                t += 100;
            }
            assert_eq!(w.claims(), 0, "round {round}: no term lasted settle");
        }
        // Then master for good.
        for _ in 0..30 {
            w.advert(Node::Me, 200, t);
            t += 100;
        }
        assert_eq!(w.claims(), 1);
        let last = w.changes.last().copied();
        assert!(
            matches!(last, Some((_, Standing::Claimed { .. }))),
            "{last:?}"
        );
    }

    #[test]
    fn split_brain_seen_here_holds_and_a_clear_restarts_settle() {
        let mut w = World::new(Some(1000));
        // Two masters taking turns (a partition): the watch raises.
        let mut t = w.take_turns(0, 20);
        assert_eq!(w.claims(), 0);
        assert!(
            w.changes.iter().any(|(_, s)| matches!(
                s,
                Standing::Held {
                    why: Hold::SplitBrain { by: None },
                    ..
                }
            )),
            "{:?}",
            w.changes
        );
        // Healed: only we advertise; the alarm clears after its window
        // (the caller decides again on the watch's tick).
        let healed = t;
        while t < healed + 3000 {
            w.advert(Node::Me, 200, t);
            while w.watch.tick(t).is_some() {}
            w.decide(t);
            t += 100;
        }
        let settling = w
            .changes
            .iter()
            .rev()
            .find_map(|(at, s)| matches!(s, Standing::Settling { .. }).then_some(*at))
            .expect("settling after the alarm cleared");
        let claimed = w
            .changes
            .iter()
            .find_map(|(at, s)| matches!(s, Standing::Claimed { .. }).then_some(*at))
            .expect("claimed after settle");
        assert!(settling > healed, "settle starts after the clear");
        assert_eq!(claimed, settling + 1000);
    }

    #[test]
    fn an_alarm_a_peer_reports_holds_until_it_clears_or_expires() {
        let mut w = World::new(Some(1000));
        let h3 = PeerId(3);
        w.advert(Node::Me, 150, 0);
        // h3 hears us and another master; we hear only ourselves.
        w.claims
            .reports
            .record(h3, &bitmap([(Family::V4, 51)].into_iter()), 400);
        w.advert(Node::Me, 150, 400);
        assert_eq!(
            w.changes.last(),
            Some(&(
                400,
                Standing::Held {
                    since: 400,
                    why: Hold::SplitBrain { by: Some(h3) }
                }
            ))
        );
        // Still reported each second: held throughout.
        let mut t = 500;
        while t < 5000 {
            if t % 1000 == 400 {
                w.claims
                    .reports
                    .record(h3, &bitmap([(Family::V4, 51)].into_iter()), t);
            }
            w.advert(Node::Me, 150, t);
            t += 100;
        }
        assert_eq!(w.claims(), 0);
        // h3 reports the alarm over: settle starts again, then the claim.
        w.claims
            .reports
            .record(h3, &bitmap(std::iter::empty()), 5000);
        for t in (5000..7000).step_by(100) {
            w.advert(Node::Me, 150, t);
        }
        assert_eq!(
            &w.changes[w.changes.len() - 2..],
            [
                (
                    5000,
                    Standing::Settling {
                        since: 5000,
                        due: 6000
                    }
                ),
                (6000, Standing::Claimed { at: 6000 })
            ]
        );
        // A report that is not repeated (h3 died mid-alarm) lapses.
        let mut w = World::new(Some(1000));
        w.claims
            .reports
            .record(h3, &bitmap([(Family::V4, 51)].into_iter()), 0);
        w.advert(Node::Me, 150, 0);
        for t in (100..6000).step_by(100) {
            w.advert(Node::Me, 150, t);
        }
        assert_eq!(w.claims(), 1);
        let at = w
            .changes
            .iter()
            .find_map(|(at, s)| matches!(s, Standing::Claimed { .. }).then_some(*at));
        assert_eq!(at, Some(REPORT_TTL_MS + 1000));
        // Another router's alarm does not hold this one.
        let mut w = World::new(Some(1000));
        w.claims.reports.record(
            h3,
            &bitmap([(Family::V4, 52), (Family::V6, 51)].into_iter()),
            0,
        );
        for t in (0..1100).step_by(100) {
            w.advert(Node::Me, 150, t);
        }
        assert_eq!(w.claims(), 1);
    }

    #[test]
    fn our_adverts_stopping_ends_the_term_without_a_claim() {
        let mut w = World::new(Some(2000));
        for t in 0..5 {
            w.advert(Node::Me, 200, t * 100);
        }
        // keepalived is killed: no advert from anyone.
        w.run_to(5000);
        assert_eq!(w.claims(), 0);
        assert_eq!(w.changes.last(), Some(&(701, Standing::NotMaster)));
    }

    #[test]
    fn our_resignation_ends_the_term_at_once() {
        let mut w = World::new(Some(2000));
        for t in 0..5 {
            w.advert(Node::Me, 200, t * 100);
        }
        // keepalived stopped cleanly: priority 0, then silence.
        w.advert(Node::Me, 0, 500);
        assert_eq!(w.changes.last(), Some(&(500, Standing::NotMaster)));
        w.run_to(5000);
        assert_eq!(w.claims(), 0);
    }

    #[test]
    fn without_a_majority_a_master_waits_and_claims_once_it_answers() {
        let mut w = World::new(Some(1000));
        // Cut off: no majority has answered since the term began.
        w.lacking = Some(Lacking {
            reachable: 1,
            cluster: 3,
        });
        for t in 0..30 {
            w.advert(Node::Me, 200, t * 100);
        }
        assert_eq!(w.claims(), 0);
        let held = Standing::Held {
            since: 1000,
            why: Hold::NoMajority {
                reachable: 1,
                cluster: 3,
            },
        };
        assert_eq!(
            w.changes,
            [
                (
                    0,
                    Standing::Settling {
                        since: 0,
                        due: 1000
                    }
                ),
                (1000, held)
            ]
        );
        // Its peers answer again: the term went on, its settle is over,
        // so it claims at once.
        w.lacking = None;
        for t in 30..50 {
            w.advert(Node::Me, 200, t * 100);
        }
        assert_eq!(&w.changes[2..], [(3000, Standing::Claimed { at: 3000 })]);
    }

    /// Two masters seen here: held once, for as long as it lasts, not
    /// flipping at each of the rival's adverts.
    #[test]
    fn a_split_brain_seen_here_is_one_steady_hold() {
        let mut w = World::new(Some(1000));
        w.take_turns(0, 40);
        let since_held: Vec<&(u64, Standing)> = w
            .changes
            .iter()
            .skip_while(|(_, s)| !matches!(s, Standing::Held { .. }))
            .collect();
        assert_eq!(since_held.len(), 1, "{:?}", w.changes);
    }

    /// A member advertising for every VRID fills the watch; the `[[vip]]`
    /// router still gets its place, and nothing else does.
    #[test]
    fn a_full_watch_keeps_room_for_the_vip_router() {
        let v6 = |vrid: u8| {
            let mut p = vec![0x60, 0, 0, 0, 0, 8, 112, 255];
            p.extend_from_slice(&[0; 32]);
            p.extend_from_slice(&[0x31, vrid, 100, 0, 0x00, 100, 0, 0]);
            p
        };
        let mut watch = Watch::reserving(&[(Family::V4, 51)]);
        for vrid in (1..=255u8).filter(|v| *v != 51) {
            let mut a = advert(100);
            a[21] = vrid;
            watch.observe(H2, &a, 0);
        }
        watch.observe(H2, &v6(1), 0);
        watch.observe(H2, &v6(2), 0);
        assert_eq!(watch.routers().len(), 256, "the watch is full");
        watch.observe(H2, &v6(3), 0);
        assert_eq!(watch.routers().len(), 256, "no room for another");
        watch.observe(Node::Me, &advert(200), 0);
        assert!(
            watch
                .router(Family::V4, 51)
                .is_some_and(|r| r.master == Node::Me)
        );
    }

    #[test]
    fn another_node_mastering_is_not_ours_and_auto_settle_scales() {
        let mut w = World::new(None);
        for t in 0..30 {
            w.advert(H2, 200, t * 100);
        }
        assert!(w.changes.is_empty());
        assert_eq!(
            w.claims.standings().next().map(|(_, s)| s),
            Some(Standing::NotMaster)
        );
        // Unset settle: six intervals, at least a second.
        let r = Rule {
            family: Family::V4,
            vrid: 1,
            settle_ms: None,
        };
        assert_eq!((r.settle(100), r.settle(1000)), (1000, 6000));
    }
}
