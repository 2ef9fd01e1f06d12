//! The relays' shared view of split brains, and the `[[vip]]` claims made
//! from it: each relay tells every peer which virtual routers its advert
//! watch holds in a split-brain alarm (a view datagram, sealed like a
//! keepalive), when that changes and each second while any is raised;
//! each decides its own claims from its watch and the views it holds
//! ([`crate::core::vip`]). The wire layout is in `docs/wire-format.md`.

use std::net::SocketAddr;

use crate::core::counters::DropReason;
use crate::core::events::Event;
use crate::core::relay::{Inbound, Relay};
use crate::core::session::prefix;
use crate::core::vip::{MAX_REPORTED, REPORT_EVERY_MS};
use crate::core::vrrp_watch::Family;
use crate::proto::wire::{Kind, VIEW_HEADER_LEN};

/// The largest view's plaintext.
const VIEW_MAX: usize = VIEW_HEADER_LEN + 2 * MAX_REPORTED;

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
        let mut body = [0u8; VIEW_MAX];
        let mut n = 0;
        for r in self
            .watch
            .routers()
            .iter()
            .filter(|r| r.split_since.is_some())
        {
            if n == MAX_REPORTED {
                break;
            }
            let at = VIEW_HEADER_LEN + 2 * n;
            body[at] = match r.family {
                Family::V4 => 4,
                Family::V6 => 6,
            };
            body[at + 1] = r.vrid;
            n += 1;
        }
        // n ≤ MAX_REPORTED, which fits the count byte.
        body[1] = n as u8;
        let epoch = self.alarm_epoch;
        let me = self.policy.local.id();
        let p = &mut self.peers[i];
        let to = p.paths.addr(p.paths.usable().iter().next()?)?;
        let len = p
            .sessions
            .seal(
                prefix(Kind::View, 0, me),
                &body[..VIEW_HEADER_LEN + 2 * n],
                now_ms,
                out,
            )
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
        let (head, pairs) = body
            .split_at_checked(VIEW_HEADER_LEN)
            .ok_or(DropReason::Malformed)?;
        let n = usize::from(head[1]);
        if head[0] != 0 || n > MAX_REPORTED || pairs.len() != 2 * n {
            return Err(DropReason::Malformed);
        }
        if pairs.chunks_exact(2).any(|c| c[0] != 4 && c[0] != 6) {
            return Err(DropReason::Malformed);
        }
        let peer = self.peers.id_at(i);
        let alarms = pairs.chunks_exact(2).map(|c| {
            let family = if c[0] == 4 { Family::V4 } else { Family::V6 };
            (family, c[1])
        });
        self.claims.reports.record(peer, alarms, now_ms);
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
        let Some((rule, _)) = self.claims.standings().nth(k) else {
            return;
        };
        let (family, vrid) = (rule.family, rule.vrid);
        let router = self
            .watch
            .routers()
            .iter()
            .find(|r| r.family == family && r.vrid == vrid)
            .copied();
        if let Some(standing) = self.claims.decide(k, router.as_ref(), now_ms) {
            self.events.push(Event::Vip { vip: k, standing });
        }
    }

    /// After an advert for (`family`, `vrid`) was recorded: the claim on
    /// that router, if one is configured, follows.
    pub(super) fn advert_seen(&mut self, family: Family, vrid: u8, now_ms: u64) {
        if let Some(k) = self.claims.rule_for(family, vrid) {
            self.decide_claim(k, now_ms);
        }
    }

    /// When a claim must be decided without a packet.
    pub(crate) fn claims_deadline(&self) -> Option<u64> {
        if self.claims.is_empty() {
            return None;
        }
        let routers = self.watch.routers();
        self.claims.next_deadline(|rule| {
            routers
                .iter()
                .find(|r| r.family == rule.family && r.vrid == rule.vrid)
                .copied()
        })
    }
}

#[cfg(test)]
impl Relay {
    /// This relay with `[[vip]]` rules (the test cluster is built without).
    pub(crate) fn claiming(mut self, rules: &[crate::core::vip::Rule]) -> Relay {
        self.claims = crate::core::vip::Claims::new(rules);
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
    use crate::core::vip::{Rule, Standing};
    use crate::core::vrrp_watch::Family;
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
                .any(|s| matches!(s, Standing::Held { by: Some(p), .. } if *p == peer_index_of(3))),
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
        let mut body = [0u8, 1, 5, 51];
        let mut bad = vec![0u8; MAX_DATAGRAM];
        let len = a.seal_view_for_test(b.local_addrs().peer_id(), &mut body, T0, &mut bad);
        assert_eq!(
            b.from_net(&mut bad[..len], endpoint(1), T0, &mut reply),
            crate::core::relay::Inbound::Drop(DropReason::Malformed)
        );
    }
}
