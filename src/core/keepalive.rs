//! Keepalives: pings under each peer's current session that measure round
//! trip, loss and reachability, their echoes, and the schedule that sends
//! them together with the handshakes ([`Relay::poll_hello`]). A peer that
//! stops answering gets a new handshake: it may have restarted.

use crate::core::counters::DropReason;
use crate::core::events::Event;
use crate::core::peers::PeerId;
use crate::core::relay::{Inbound, Relay};
use crate::core::session::prefix;
use crate::core::time::Now;
use crate::proto::wire::{KEEPALIVE_LEN, KEEPALIVE_WANT_REPLY, Kind, be_u64};

/// Pings to one peer that may be awaiting an echo at once.
const AWAITING: usize = 4;
/// Closest spacing of our echoes to one peer, so a member flooding pings
/// cannot make us flood back.
const ECHO_SPACING_MS: u64 = 100;
/// How often a new session's first keepalive is repeated until the peer
/// shows it holds the session: the peer seals with its old one until
/// then, and a restarted peer no longer has that one.
const CONFIRM_RETRY_MS: u64 = 200;

/// The per-peer part.
pub(super) struct Keepalive {
    /// Our pings that may still be echoed: number, when sent (our clock).
    awaiting: [Option<(u64, u64)>; AWAITING],
    /// Pings sent to this peer so far: numbers them for the loss window.
    pings: u64,
    /// When the last ping went; `None`: one is due at once.
    last_ms: Option<u64>,
    /// When we last echoed one of its pings.
    last_echo_ms: Option<u64>,
    /// Reachable as last told in an event (and counted for quorum).
    pub(super) reachable: bool,
}

impl Keepalive {
    pub(super) fn new() -> Keepalive {
        Keepalive {
            awaiting: [None; AWAITING],
            pings: 0,
            last_ms: None,
            last_echo_ms: None,
            reachable: false,
        }
    }

    /// Makes a ping due at once.
    pub(super) fn ask_now(&mut self) {
        self.last_ms = None;
    }

    /// When the next ping is due: a keepalive interval after the last,
    /// or sooner while a new session waits for the peer to confirm it.
    fn due_ms(&self, keepalive: u64, confirming: bool) -> u64 {
        let interval = if confirming && (keepalive == 0 || keepalive > CONFIRM_RETRY_MS) {
            CONFIRM_RETRY_MS
        } else {
            keepalive
        };
        self.last_ms.map_or(0, |t| t + interval)
    }

    fn asked(&mut self, ping: u64) -> Option<u64> {
        let slot = self
            .awaiting
            .iter_mut()
            .find(|a| a.is_some_and(|(n, _)| n == ping))?;
        slot.take().map(|(_, at)| at)
    }
}

impl Relay {
    /// The next handshake or keepalive that is due, written into `out`:
    /// returns its length and the peer it goes to. Call after receiving
    /// and after [`Relay::handle_timeout`], until it returns `None`.
    ///
    /// An initiation goes to every peer without a session, to a peer whose
    /// session is due for renewal, and again every second until answered;
    /// a keepalive goes to every peer with a session each `keepalive_ms`.
    pub fn poll_hello(&mut self, now: impl Into<Now>, out: &mut [u8]) -> Option<(usize, PeerId)> {
        let now = now.into();
        if !self.handshake.authenticated() {
            return None;
        }
        self.observe_clock(now);
        let n = self.peers.len();
        for k in 0..n {
            let i = (self.handshake.cursor + k) % n;
            let sent = self
                .initiation_due(i, now, out)
                .or_else(|| self.keepalive_due(i, now.mono_ms, out));
            if let Some(len) = sent {
                self.handshake.cursor = (i + 1) % n;
                return Some((len, self.peers.id_at(i)));
            }
        }
        None
    }

    fn keepalive_due(&mut self, i: usize, now_ms: u64, out: &mut [u8]) -> Option<usize> {
        let keepalive = self.keepalive_ms;
        let p = &mut self.peers[i];
        let confirming = p.sessions.unconfirmed();
        if (keepalive == 0 && !confirming)
            || p.endpoint.is_none()
            || !p.sessions.has_current()
            || now_ms < p.ka.due_ms(keepalive, confirming)
        {
            return None;
        }
        let ka = &mut p.ka;
        let mut body = [0u8; KEEPALIVE_LEN];
        body[0] = KEEPALIVE_WANT_REPLY;
        body[1..].copy_from_slice(&ka.pings.to_be_bytes());
        let pre = prefix(Kind::Keepalive, 0, self.policy.local.id());
        let len = p.sessions.seal(pre, &body, now_ms, out).ok()?;
        let ka = &mut p.ka;
        ka.awaiting.rotate_right(1);
        ka.awaiting[0] = Some((ka.pings, now_ms));
        ka.pings += 1;
        ka.last_ms = Some(now_ms);
        let s = &mut p.stats;
        s.pings_sent += 1;
        s.recent_answered <<= 1;
        s.recent_count = (s.recent_count + 1).min(16);
        Some(len)
    }

    /// When [`Relay::poll_hello`] next has something to send (monotonic
    /// ms): the earliest handshake or keepalive; `None` when nothing is
    /// scheduled (insecure mode, or no peer with an endpoint). The
    /// [`Timer::Hello`](crate::core::Timer::Hello) deadline.
    pub(crate) fn next_hello_ms(&self) -> Option<u64> {
        if !self.handshake.authenticated() {
            return None;
        }
        self.peers
            .iter()
            .filter(|p| p.endpoint.is_some() && p.spec.public_key.is_some())
            .filter_map(|p| {
                // The same rules as `initiation_due`: wanted now, or when
                // the session is due for renewal, and never before the
                // spacing and retry times (else a renewal that goes
                // unanswered would wake the loop without end).
                let earliest = p.hs.due_ms(true);
                let handshake = match (p.hs.due_ms(false), p.sessions.rekey_at()) {
                    (Some(wanted), _) => Some(wanted),
                    (None, Some(rekey)) => earliest.map(|e| e.max(rekey)),
                    (None, None) => earliest,
                };
                let confirming = p.sessions.unconfirmed();
                let keepalive = ((self.keepalive_ms > 0 || confirming) && p.sessions.has_current())
                    .then(|| p.ka.due_ms(self.keepalive_ms, confirming));
                [handshake, keepalive].into_iter().flatten().min()
            })
            .min()
    }

    /// A keepalive from peer `i`, opened (`body`): echoes a ping, records
    /// an echo of ours.
    pub(super) fn on_keepalive(
        &mut self,
        i: usize,
        body_len: usize,
        ping: [u8; KEEPALIVE_LEN],
        now_ms: u64,
        out: &mut [u8],
    ) -> Result<Inbound, DropReason> {
        if body_len != KEEPALIVE_LEN || ping[0] & !KEEPALIVE_WANT_REPLY != 0 {
            return Err(DropReason::Malformed);
        }
        let number = be_u64(&ping[1..]);
        if ping[0] & KEEPALIVE_WANT_REPLY == 0 {
            if let Some(asked_ms) = self.peers[i].ka.asked(number) {
                self.record_answer(i, asked_ms, number, now_ms);
                self.update_reachability(now_ms);
                self.update_quorum();
            }
            return Ok(Inbound::Handled);
        }
        let p = &mut self.peers[i];
        if p.ka
            .last_echo_ms
            .is_some_and(|t| now_ms < t + ECHO_SPACING_MS)
        {
            return Ok(Inbound::Handled);
        }
        p.ka.last_echo_ms = Some(now_ms);
        let mut echo = ping;
        echo[0] = 0;
        let pre = prefix(Kind::Keepalive, 0, self.policy.local.id());
        let len = p.sessions.seal(pre, &echo, now_ms, out)?;
        Ok(Inbound::Reply {
            len,
            peer: self.peers.id_at(i),
        })
    }

    /// The ping statistics of an echo of ping `ping`, sent at `asked_ms`.
    fn record_answer(&mut self, i: usize, asked_ms: u64, ping: u64, now_ms: u64) {
        let peer = &mut self.peers[i];
        let s = &mut peer.stats;
        s.pings_answered += 1;
        s.rtt_ms = Some(now_ms.saturating_sub(asked_ms));
        s.last_answer_ms = Some(now_ms);
        let age = peer.ka.pings.saturating_sub(ping + 1);
        if age < 16 {
            s.recent_answered |= 1 << age;
        }
    }

    /// Whether `peer` echoed a keepalive in the last three and a half
    /// keepalive intervals.
    pub fn peer_reachable(&self, peer: PeerId, now: impl Into<Now>) -> bool {
        let now_ms = now.into().mono_ms;
        self.peers
            .index_of(peer)
            .is_some_and(|i| self.reachable_at(i, now_ms))
    }

    fn reachable_at(&self, i: usize, now_ms: u64) -> bool {
        let window = self.reachability_window();
        self.peers[i]
            .stats
            .last_answer_ms
            .is_some_and(|t| now_ms.saturating_sub(t) <= window)
    }

    /// How long a peer stays reachable after an echo: three and a half
    /// keepalive intervals, so one lost echo or two do not count.
    fn reachability_window(&self) -> u64 {
        self.keepalive_ms.max(100) * 7 / 2
    }

    /// When the first peer now reachable stops being so without another
    /// echo (monotonic ms).
    pub(super) fn reachability_deadline(&self) -> Option<u64> {
        let window = self.reachability_window();
        self.peers
            .iter()
            .filter(|p| p.ka.reachable)
            .filter_map(|p| p.stats.last_answer_ms)
            .map(|t| t.saturating_add(window + 1))
            .min()
    }

    /// Brings each peer's told reachability up to date at `now_ms`,
    /// telling each change. A peer that stops answering gets a new
    /// handshake: if it restarted, our session is dead on its side.
    pub(super) fn update_reachability(&mut self, now_ms: u64) {
        for i in 0..self.peers.len() {
            let reachable = self.reachable_at(i, now_ms);
            let id = self.peers.id_at(i);
            let p = &mut self.peers[i];
            if p.ka.reachable != reachable {
                p.ka.reachable = reachable;
                if !reachable {
                    p.hs.want(now_ms);
                }
                self.events.push(if reachable {
                    Event::PeerReachable { peer: id }
                } else {
                    Event::PeerUnreachable { peer: id }
                });
            }
        }
    }

    /// How many peers are reachable now.
    pub fn reachable_peers(&self, now: impl Into<Now>) -> usize {
        let now_ms = now.into().mono_ms;
        (0..self.peers.len())
            .filter(|i| self.reachable_at(*i, now_ms))
            .count()
    }
}
