//! The relays' shared view of split brains, and the `[[vip]]` claims made
//! from it: each relay tells every peer which virtual routers its advert
//! watch holds in a split-brain alarm (a view datagram, sealed like a
//! keepalive), when that changes and each second while any is raised;
//! each decides its own claims from its watch and the views it holds
//! ([`crate::core::vip`]). The wire layout is in `docs/wire-format.md`.

use std::net::SocketAddr;

use crate::core::counters::DropReason;
use crate::core::events::Event;
use crate::core::peers::{Node, Peers};
use crate::core::relay::{Inbound, Relay};
use crate::core::session::prefix;
use crate::core::vip::{self, Bitmap, Lacking, REPORT_EVERY_MS};
use crate::core::vrrp_watch::Advert;
use crate::proto::wire::{Kind, VIEW_LEN};

impl Relay {
    /// The alarms this relay sees changed (one raised or cleared): every
    /// peer is told at once.
    pub(super) fn alarms_changed(&mut self) {
        self.alarm_epoch += 1;
        // Kept, not looked up: `view_due_ms` runs for every peer whenever
        // the loop computes its next wake.
        self.alarms_up = self.watch.routers().iter().any(|r| r.split_since.is_some());
    }

    /// When a view is next due to peer `i`: at once after a change, each
    /// [`REPORT_EVERY_MS`] while an alarm is raised, else never.
    pub(super) fn view_due_ms(&self, i: usize) -> Option<u64> {
        let p = &self.peers[i];
        if !p.sessions.has_current() || !p.paths.any() {
            return None;
        }
        match p.view_sent {
            Some((epoch, _)) if epoch != self.alarm_epoch => Some(0),
            None if self.alarm_epoch > 0 => Some(0),
            Some((_, at)) if self.alarms_up => Some(at + REPORT_EVERY_MS),
            _ => None,
        }
    }

    /// Writes the view due to peer `i`, if one is, into `out`.
    pub(super) fn view_due(
        &mut self,
        i: usize,
        now_ms: u64,
        out: &mut [u8],
    ) -> Option<(usize, SocketAddr)> {
        if self.view_due_ms(i)? > now_ms {
            return None;
        }
        let mut body = [0u8; VIEW_LEN];
        body[1..].copy_from_slice(&vip::bitmap(
            self.watch
                .routers()
                .iter()
                .filter(|r| r.split_since.is_some())
                .map(|r| (r.family, r.vrid)),
        ));
        let epoch = self.alarm_epoch;
        let me = self.policy.local.id();
        let (window, timeout) = (self.reachability_window(), self.ping_timeout_ms());
        let p = &mut self.peers[i];
        // As a handshake goes: a healthy path, else each in turn, so a
        // dead first path does not swallow every view.
        let to = p
            .paths
            .hello_path(now_ms, window, timeout)
            .and_then(|k| p.paths.addr(k))?;
        let len = p
            .sessions
            .seal(prefix(Kind::View, 0, me), &body, now_ms, out)
            .ok()?;
        p.view_sent = Some((epoch, now_ms));
        Some((len, to))
    }

    /// A view from peer `i`, opened: its alarms replace what it said before.
    pub(super) fn on_view(
        &mut self,
        i: usize,
        body: &[u8],
        now_ms: u64,
    ) -> Result<Inbound, DropReason> {
        if body.len() != VIEW_LEN || body[0] != 0 {
            return Err(DropReason::Malformed);
        }
        let mut alarms: Bitmap = [0; 64];
        alarms.copy_from_slice(&body[1..]);
        let peer = self.peers.id_at(i);
        self.claims.reports.record(peer, &alarms, now_ms);
        self.decide_claims(now_ms);
        Ok(Inbound::Handled)
    }

    /// Decides every claim anew, queueing what changed.
    pub(super) fn decide_claims(&mut self, now_ms: u64) {
        for k in 0..self.claims.len() {
            self.decide_claim(k, now_ms);
        }
    }

    /// Decides claim `k`, queueing it if it changed.
    fn decide_claim(&mut self, k: usize, now_ms: u64) {
        let Some((family, vrid)) = self.claims.routers().nth(k) else {
            return;
        };
        let router = self.watch.router(family, vrid).copied();
        let counted = self.handshake.authenticated() && self.keepalive_ms > 0;
        let peers = &self.peers;
        let lacking = |since| lacking_majority(peers, counted, since);
        if let Some(standing) = self.claims.decide(k, router.as_ref(), &lacking, now_ms) {
            self.events.push(Event::Vip { vip: k, standing });
        }
    }

    /// After an advert for `a`'s router by `node` was recorded: the claim
    /// on that router, if one is configured, follows.
    pub(super) fn advert_seen(&mut self, node: Node, a: &Advert, now_ms: u64) {
        if let Some(k) = self.claims.rule_for(a.family, a.vrid) {
            if node == Node::Me {
                self.claims.own_advert(k, a.priority, now_ms);
            }
            self.decide_claim(k, now_ms);
        }
    }

    /// When a claim must be decided without a packet.
    pub(crate) fn claims_deadline(&self) -> Option<u64> {
        if self.claims.is_empty() {
            return None;
        }
        let watch = &self.watch;
        self.claims
            .next_deadline(|rule| watch.router(rule.family, rule.vrid).copied())
    }
}

/// Whether a claim must wait for a majority that has not answered a
/// keepalive since `since` (this relay counted): with three relays or
/// more, when answers are `counted` (authenticated mode, keepalives on).
/// Two relays cannot tell a dead peer from a cut one, so a pair claims
/// alone, as keepalived fails over alone.
fn lacking_majority(peers: &Peers, counted: bool, since: u64) -> Option<Lacking> {
    let cluster = peers.len() + 1;
    if cluster < 3 || !counted {
        return None;
    }
    let reachable = peers
        .iter()
        .filter(|p| p.stats.last_answer_ms.is_some_and(|t| t >= since))
        .count()
        + 1;
    (reachable * 2 <= cluster).then_some(Lacking { reachable, cluster })
}

#[cfg(test)]
impl Relay {
    /// This relay with `[[vip]]` rules (the test cluster is built without).
    pub(crate) fn claiming(mut self, rules: &[crate::core::vip::Rule]) -> Relay {
        self.claims = crate::core::vip::Claims::new(rules, self.peers.len());
        let keys: Vec<_> = self.claims.routers().collect();
        self.watch = crate::core::vrrp_watch::Watch::reserving(&keys);
        self
    }

    /// Seals `body` as a view for `peer`, whatever it holds.
    pub(crate) fn seal_view_for_test(
        &mut self,
        peer: crate::core::PeerId,
        body: &mut [u8],
        now_ms: u64,
        out: &mut [u8],
    ) -> usize {
        let me = self.policy.local.id();
        let i = self.peers.index_of(peer).expect("a peer");
        self.peers[i]
            .sessions
            .seal(prefix(Kind::View, 0, me), body, now_ms, out)
            .expect("a session")
    }
}

#[cfg(test)]
mod tests {
    use crate::core::events::Event;
    use crate::core::relay::Relay;
    use crate::core::vip::{Hold, Rule, Standing};
    use crate::core::vrrp_watch::Family;
    use crate::proto::wire::VIEW_LEN;
    use crate::testing::cluster::*;

    const RULE: Rule = Rule {
        family: Family::V4,
        vrid: 1,
        settle_ms: None,
    };

    fn standings(r: &mut Relay) -> Vec<Standing> {
        std::iter::from_fn(|| r.poll_event())
            .filter_map(|e| match e {
                Event::Vip { standing, .. } => Some(standing),
                _ => None,
            })
            .collect()
    }

    /// What node `from` has to say now (views, keepalives), delivered
    /// to `to` only when `deliver`.
    fn hellos(from: &mut Relay, to: &mut Relay, n: u8, now: u64, deliver: bool) -> usize {
        let mut out = [0u8; MAX_DATAGRAM];
        let mut views = 0;
        while let Some((len, p, _)) = from.poll_hello(now, &mut out) {
            if p != to.local_addrs().peer_id() {
                continue;
            }
            views += usize::from(out[1] == crate::proto::wire::Kind::View as u8);
            if deliver {
                let mut d = out[..len].to_vec();
                let mut reply = [0u8; MAX_DATAGRAM];
                let _ = to.from_net(&mut d, endpoint(n), now, &mut reply);
            }
        }
        views
    }

    /// h2 stops hearing h1 and becomes master too; h3 hears both. With
    /// h3's views h2 holds its claim; without them it would claim.
    fn partition(views_reach_h2: bool) -> (Vec<Standing>, usize) {
        let (mut a, b, mut c) = cluster3();
        let mut b = b.claiming(&[RULE]);
        let mut views = 0;
        for k in 0..40u64 {
            let now = T0 + k * 500;
            if k % 2 == 0 {
                let (sent, _) = send(&mut a, &vrrp_from(1), now);
                let _ = recv(&mut c, &sent, 1, now);
            } else {
                let (sent, _) = send(&mut b, &vrrp_from(2), now);
                let _ = recv(&mut c, &sent, 2, now);
                let _ = recv(&mut a, &sent, 2, now);
            }
            c.handle_timeout(now);
            b.handle_timeout(now);
            // h2's keepalives reach h3 and are answered: it has a
            // majority (h3 and itself), as in the lab.
            exchange(&mut b, 2, &mut c, 3, now);
            views += hellos(&mut c, &mut b, 3, now, views_reach_h2);
        }
        (standings(&mut b), views)
    }

    #[test]
    fn a_split_brain_another_relay_sees_holds_the_claim() {
        let (held, views) = partition(true);
        assert!(
            views >= 2,
            "h3 told h2 of the alarm, and again each second: {views}"
        );
        assert!(
            held.iter()
                .any(|s| matches!(s, Standing::Held { why: Hold::SplitBrain { by: Some(p) }, .. } if *p == peer_index_of(3))),
            "{held:?}"
        );
        assert!(
            !held.iter().any(|s| matches!(s, Standing::Claimed { .. })),
            "h2 claimed during a split brain: {held:?}"
        );
        // The control: the same partition, h3's views lost.
        let (alone, _) = partition(false);
        assert!(
            alone.iter().any(|s| matches!(s, Standing::Claimed { .. })),
            "{alone:?}"
        );
    }

    fn peer_index_of(n: u8) -> crate::core::PeerId {
        addrs(n).peer_id()
    }

    #[test]
    fn a_malformed_view_is_dropped() {
        use crate::core::counters::DropReason;
        use crate::proto::wire::Kind;
        let (mut a, mut b, _) = cluster3();
        // A view from a with a bad family byte, sealed under a's session.
        let mut out = [0u8; MAX_DATAGRAM];
        a.alarms_changed();
        let mut sealed = None;
        while let Some((len, p, _)) = a.poll_hello(T0, &mut out) {
            if p == b.local_addrs().peer_id() && out[1] == Kind::View as u8 {
                sealed = Some(out[..len].to_vec());
            }
        }
        let mut good = sealed.expect("a view after a change");
        let mut reply = [0u8; MAX_DATAGRAM];
        assert_eq!(
            b.from_net(&mut good, endpoint(1), T0, &mut reply),
            crate::core::relay::Inbound::Handled,
            "an empty view"
        );
        // Short, long, empty, and a flag set: each dropped as malformed,
        // counted, and nothing recorded.
        let flagged = {
            let mut f = [0u8; VIEW_LEN];
            f[0] = 1;
            f[8] = 0xff;
            f
        };
        let bodies: [&[u8]; 4] = [&[0u8; VIEW_LEN - 1], &[0u8; VIEW_LEN + 1], &[], &flagged];
        let before = b.counters().drops.get(DropReason::Malformed);
        for body in bodies {
            let mut body = body.to_vec();
            let mut bad = vec![0u8; MAX_DATAGRAM];
            let len = a.seal_view_for_test(b.local_addrs().peer_id(), &mut body, T0, &mut bad);
            assert_eq!(
                b.from_net(&mut bad[..len], endpoint(1), T0, &mut reply),
                crate::core::relay::Inbound::Drop(DropReason::Malformed),
                "a body of {} bytes",
                body.len()
            );
        }
        assert_eq!(b.counters().drops.get(DropReason::Malformed), before + 4);
        assert_eq!(b.claims.reports.reporter(Family::V4, 64, T0), None);
    }
}
