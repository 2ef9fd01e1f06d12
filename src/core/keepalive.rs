//! Keepalives: pings under each peer's current session that measure round
//! trip, loss and reachability, their echoes, and the schedule that sends
//! them together with the handshakes ([`Relay::poll_hello`]). Each round
//! pings every path of the peer, and each echo is credited to the path
//! its ping went over, so every path has its own health. A peer that
//! stops answering on every path gets a new handshake: it may have
//! restarted.

use std::net::SocketAddr;

use crate::core::counters::DropReason;
use crate::core::events::Event;
use crate::core::paths::{MAX_PATHS, PathSet};
use crate::core::peers::PeerId;
use crate::core::relay::{Inbound, Relay};
use crate::core::session::prefix;
use crate::core::time::Now;
use crate::proto::wire::{KEEPALIVE_LEN, KEEPALIVE_WANT_REPLY, Kind, be_u64};

/// Pings to one peer that may be awaiting an echo at once: a few rounds
/// over every path.
const AWAITING: usize = 2 * MAX_PATHS;
/// Our echoes to one peer come at most [`MAX_PATHS`] (a round over every
/// path of it) per this window, so a member flooding pings cannot make us
/// flood back.
const ECHO_SPACING_MS: u64 = 100;
/// How often a new session's first keepalive is repeated until the peer
/// shows it holds the session: the peer seals with its old one until
/// then, and a restarted peer no longer has that one.
const CONFIRM_RETRY_MS: u64 = 200;

/// A ping that may still be echoed.
#[derive(Clone, Copy, Debug)]
struct Asked {
    number: u64,
    /// When it went (our clock).
    at_ms: u64,
    path: usize,
    /// Where the path went then: an echo of a ping to an address the path
    /// no longer has (a reload, a DNS change) says nothing of the new one.
    to: SocketAddr,
    /// Pings over that path before it.
    on_path: u64,
}

/// The per-peer part.
pub(super) struct Keepalive {
    awaiting: [Option<Asked>; AWAITING],
    /// Paths still to ping in the current round.
    round: PathSet,
    /// Pings sent to this peer so far: numbers them for the loss window.
    pings: u64,
    /// When the last ping went; `None`: one is due at once.
    last_ms: Option<u64>,
    /// When the current echo window began, and the echoes sent in it.
    echo_window: Option<(u64, usize)>,
    /// Reachable as last told in an event (and counted for quorum).
    pub(super) reachable: bool,
}

impl Keepalive {
    pub(super) fn new() -> Keepalive {
        Keepalive {
            awaiting: [None; AWAITING],
            round: PathSet::default(),
            pings: 0,
            last_ms: None,
            echo_window: None,
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
        if !self.round.is_empty() {
            // The rest of a round goes at once.
            return self.last_ms.unwrap_or(0);
        }
        let interval = if confirming && (keepalive == 0 || keepalive > CONFIRM_RETRY_MS) {
            CONFIRM_RETRY_MS
        } else {
            keepalive
        };
        self.last_ms.map_or(0, |t| t + interval)
    }

    fn asked(&mut self, ping: u64) -> Option<Asked> {
        let slot = self
            .awaiting
            .iter_mut()
            .find(|a| a.is_some_and(|a| a.number == ping))?;
        slot.take()
    }
}

impl Relay {
    /// The next handshake or keepalive that is due, written into `out`:
    /// returns its length and the peer it goes to. Call after receiving
    /// and after [`Relay::handle_timeout`], until it returns `None`.
    ///
    /// An initiation goes to every peer without a session, to a peer whose
    /// session is due for renewal, and again every second until answered
    /// (to a peer never met, after ten, up to 8 s apart);
    /// a keepalive goes over every path of every peer with a session each
    /// `keepalive_ms`. Returns the length, the peer and its address.
    pub fn poll_hello(
        &mut self,
        now: impl Into<Now>,
        out: &mut [u8],
    ) -> Option<(usize, PeerId, SocketAddr)> {
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
                .or_else(|| self.keepalive_due(i, now.mono_ms, out))
                .or_else(|| self.view_due(i, now.mono_ms, out));
            if let Some((len, to)) = sent {
                self.handshake.cursor = (i + 1) % n;
                return Some((len, self.peers.id_at(i), to));
            }
        }
        None
    }

    fn keepalive_due(
        &mut self,
        i: usize,
        now_ms: u64,
        out: &mut [u8],
    ) -> Option<(usize, SocketAddr)> {
        let keepalive = self.keepalive_ms;
        let p = &mut self.peers[i];
        let confirming = p.sessions.unconfirmed();
        if (keepalive == 0 && !confirming)
            || !p.paths.any()
            || !p.sessions.has_current()
            || now_ms < p.ka.due_ms(keepalive, confirming)
        {
            return None;
        }
        if p.ka.round.is_empty() {
            // Every path, also while a new session waits for its
            // confirmation: a dead path must not hold it up.
            p.ka.round = p.paths.usable();
            p.ka.last_ms = Some(now_ms);
        }
        let path = p.ka.round.iter().next()?;
        p.ka.round = p.ka.round.without(path);
        let to = p.paths.addr(path)?;
        let ka = &mut p.ka;
        let mut body = [0u8; KEEPALIVE_LEN];
        body[0] = KEEPALIVE_WANT_REPLY;
        body[1..].copy_from_slice(&ka.pings.to_be_bytes());
        let pre = prefix(Kind::Keepalive, 0, self.policy.local.id());
        let len = p.sessions.seal(pre, &body, now_ms, out).ok()?;
        let on_path = p.paths.get(path).map_or(0, |x| x.stats.pings_sent);
        p.paths.pinged(path, now_ms);
        let ka = &mut p.ka;
        ka.awaiting.rotate_right(1);
        ka.awaiting[0] = Some(Asked {
            number: ka.pings,
            at_ms: now_ms,
            path,
            to,
            on_path,
        });
        ka.pings += 1;
        let s = &mut p.stats;
        s.pings_sent += 1;
        s.recent_answered <<= 1;
        s.recent_count = (s.recent_count + 1).min(16);
        Some((len, to))
    }

    /// When [`Relay::poll_hello`] next has something to send (monotonic
    /// ms): the earliest handshake or keepalive; `None` when nothing is
    /// scheduled (insecure mode, or no peer with an endpoint). The
    /// [`Timer::Hello`](crate::core::Timer::Hello) deadline.
    pub(crate) fn next_hello_ms(&self) -> Option<u64> {
        if !self.handshake.authenticated() {
            return None;
        }
        let views = (0..self.peers.len())
            .filter_map(|i| self.view_due_ms(i))
            .min();
        self.peers
            .iter()
            .filter(|p| p.paths.any() && p.spec.public_key.is_some())
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
            .into_iter()
            .chain(views)
            .min()
    }

    /// A keepalive from peer `i`, opened (`body`), from `from`: echoes a
    /// ping over the path it came by, records an echo of ours.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_keepalive(
        &mut self,
        i: usize,
        body_len: usize,
        ping: [u8; KEEPALIVE_LEN],
        from: SocketAddr,
        now_ms: u64,
        out: &mut [u8],
    ) -> Result<Inbound, DropReason> {
        if body_len != KEEPALIVE_LEN || ping[0] & !KEEPALIVE_WANT_REPLY != 0 {
            return Err(DropReason::Malformed);
        }
        let number = be_u64(&ping[1..]);
        if ping[0] & KEEPALIVE_WANT_REPLY == 0 {
            if let Some(asked) = self.peers[i].ka.asked(number) {
                self.record_answer(i, asked, now_ms);
                self.update_reachability(now_ms);
                self.update_quorum();
            }
            return Ok(Inbound::Handled);
        }
        let p = &mut self.peers[i];
        let window = match p.ka.echo_window {
            Some((start, n)) if now_ms < start + ECHO_SPACING_MS => (start, n),
            _ => (now_ms, 0),
        };
        if window.1 >= MAX_PATHS {
            return Ok(Inbound::Handled);
        }
        p.ka.echo_window = Some((window.0, window.1 + 1));
        let mut echo = ping;
        echo[0] = 0;
        let pre = prefix(Kind::Keepalive, 0, self.policy.local.id());
        let to = p
            .paths
            .reply_path(from)
            .and_then(|k| p.paths.addr(k))
            .ok_or(DropReason::PeerUnresolved)?;
        let len = p.sessions.seal(pre, &echo, now_ms, out)?;
        Ok(Inbound::Reply {
            len,
            peer: self.peers.id_at(i),
            to,
        })
    }

    /// The ping statistics of an echo of ping `asked`, the peer's and its
    /// path's.
    fn record_answer(&mut self, i: usize, asked: Asked, now_ms: u64) {
        let peer = &mut self.peers[i];
        let s = &mut peer.stats;
        s.pings_answered += 1;
        s.rtt_ms = Some(now_ms.saturating_sub(asked.at_ms));
        s.last_answer_ms = Some(now_ms);
        let age = peer.ka.pings.saturating_sub(asked.number + 1);
        if age < 16 {
            s.recent_answered |= 1 << age;
        }
        if peer.paths.addr(asked.path) != Some(asked.to) {
            return;
        }
        let on_path = peer.paths.get(asked.path).map_or(0, |p| p.stats.pings_sent);
        let path_age = on_path.saturating_sub(asked.on_path + 1);
        peer.paths
            .answered(asked.path, asked.at_ms, path_age, now_ms);
    }

    /// How long a ping may stay unanswered before its path is suspect: at
    /// most one keepalive interval.
    pub(super) fn ping_timeout_ms(&self) -> u64 {
        self.keepalive_ms.max(100)
    }

    /// Whether `peer` echoed a keepalive in the last three and a half
    /// keepalive intervals.
    pub fn peer_reachable(&self, peer: PeerId, now: impl Into<Now>) -> bool {
        let now_ms = now.into().mono_ms;
        self.peers
            .index_of(peer)
            .is_some_and(|i| self.reachable_at(i, now_ms))
    }

    pub(super) fn reachable_at(&self, i: usize, now_ms: u64) -> bool {
        let window = self.reachability_window();
        self.peers[i]
            .stats
            .last_answer_ms
            .is_some_and(|t| now_ms.saturating_sub(t) <= window)
    }

    /// How long a peer stays reachable after an echo: three and a half
    /// keepalive intervals, so one lost echo or two do not count.
    pub(super) fn reachability_window(&self) -> u64 {
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
