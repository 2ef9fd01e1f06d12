//! The handshake and keepalives: hellos that ask a peer to prove its
//! current run by answering our question (a challenge only the addressee
//! could read), retries until answered, keepalives to confirmed peers that
//! measure round trip, loss and reachability, and spacing of our answers so
//! a key holder's flood of new epochs cannot make us flood back.

use crate::core::counters::DropReason;
use crate::core::events::Event;
use crate::core::peers::PeerId;
use crate::core::relay::{Inbound, Relay};
use crate::core::time::Now;
use crate::proto::crypto::Challenger;
use crate::proto::wire::{HELLO_LEN, HELLO_WANT_REPLY, Header, Hello, Kind};

/// How often an unanswered hello is repeated.
const HELLO_RETRY_MS: u64 = 1_000;
/// Closest spacing of hellos to one peer, and of answers to one peer, so a
/// key holder's flood of new epochs cannot make us flood back.
const HELLO_SPACING_MS: u64 = 100;
/// Hellos to one peer that may be awaiting an answer at once (retries).
const AWAITING: usize = 4;

/// The relay-wide part: this run's question maker and the schedule.
pub(super) struct Handshake {
    challenger: Challenger,
    /// Round-robin start for [`Relay::poll_hello`].
    cursor: usize,
    /// Keepalive interval to confirmed peers, ms; 0: none.
    pub(super) keepalive_ms: u64,
}

impl Handshake {
    pub(super) fn new(challenge_secret: &[u8; 32], keepalive_ms: u64) -> Self {
        Handshake {
            challenger: Challenger::new(challenge_secret),
            cursor: 0,
            keepalive_ms,
        }
    }

    /// After the peer list changed: positions mean other peers now.
    pub(super) fn restart_round(&mut self) {
        self.cursor = 0;
    }
}

/// The per-peer part.
pub(super) struct HandshakeState {
    /// Our hellos to this peer that may still be answered: counter, when
    /// it was sent (our clock, ms) and its ping number.
    awaiting: [Option<(u64, u64, u64)>; AWAITING],
    /// Pings sent to this peer so far: numbers them for the loss window.
    pings: u64,
    /// When the next keepalive to this (confirmed) peer is due.
    next_keepalive_ms: u64,
    /// When the next hello to this peer may go out (our clock, ms).
    next_hello_ms: u64,
    /// Whether a hello to this peer is wanted at `next_hello_ms`.
    hello_wanted: bool,
    /// The epoch and time of our last answer, for answer spacing.
    last_answer: Option<(u64, u64)>,
    /// Reachable as last told in an event (and counted for quorum).
    pub(super) reachable: bool,
}

impl HandshakeState {
    pub(super) fn new() -> Self {
        HandshakeState {
            awaiting: [None; AWAITING],
            pings: 0,
            next_keepalive_ms: 0,
            next_hello_ms: 0,
            // A new peer is unconfirmed: greet it.
            hello_wanted: true,
            last_answer: None,
            reachable: false,
        }
    }

    /// Asks for a hello to this peer as soon as spacing allows.
    pub(super) fn want_hello(&mut self, now_ms: u64) {
        if !self.hello_wanted {
            self.hello_wanted = true;
            self.next_hello_ms = self.next_hello_ms.max(now_ms);
        }
    }

    /// The question sealed at `counter` (ours) that `echo_counter` answers,
    /// as (sent at, ping number).
    fn asked(&self, echo_counter: u64) -> Option<(u64, u64)> {
        self.awaiting
            .iter()
            .flatten()
            .find(|(c, _, _)| *c == echo_counter)
            .map(|(_, at, ping)| (*at, *ping))
    }
}

impl Relay {
    /// Seals a hello to peer `i` into `out`.
    fn seal_hello(&mut self, i: usize, hello: Hello, now: Now, out: &mut [u8]) -> Option<usize> {
        let counter = self.tx.next_counter();
        let mut hello = hello;
        if hello.wants_reply() {
            hello.challenge = self.handshake.challenger.challenge(counter);
        }
        let mut payload = [0u8; HELLO_LEN];
        hello.encode(&mut payload);
        let len = self.tx.seal(Kind::Hello, &payload, now, out)?;
        let peer = &mut self.peers[i];
        if hello.wants_reply() {
            let hs = &mut peer.hs;
            hs.awaiting.rotate_right(1);
            hs.awaiting[0] = Some((counter, now.mono_ms, hs.pings));
            hs.pings += 1;
            let s = &mut peer.stats;
            s.pings_sent += 1;
            s.recent_answered <<= 1;
            s.recent_count = (s.recent_count + 1).min(16);
        }
        Some(len)
    }

    /// The next hello that is due, sealed into `out`: returns its length
    /// and the peer it goes to. Call after receiving and after
    /// [`Relay::handle_timeout`], until it returns `None`.
    ///
    /// A hello goes to every peer whose current epoch is not confirmed:
    /// at start, after a peer restarts, and every second until answered;
    /// and, as a keepalive that measures reachability and round trip, to
    /// every confirmed peer each `keepalive_ms`.
    pub fn poll_hello(&mut self, now: impl Into<Now>, out: &mut [u8]) -> Option<(usize, PeerId)> {
        let now = now.into();
        let now_ms = now.mono_ms;
        // Insecure mode has no handshake.
        if !self.tx.authenticated() {
            return None;
        }
        let n = self.peers.len();
        let keepalive = self.handshake.keepalive_ms;
        for k in 0..n {
            let i = (self.handshake.cursor + k) % n;
            let p = &self.peers[i];
            let hs = &p.hs;
            let handshake_due = hs.hello_wanted && now_ms >= hs.next_hello_ms;
            let keepalive_due = keepalive > 0
                && !hs.hello_wanted
                && p.rx.confirmed_epoch().is_some()
                && now_ms >= hs.next_keepalive_ms;
            if p.endpoint.is_none() || !(handshake_due || keepalive_due) {
                continue;
            }
            let hello = Hello {
                echo_epoch: 0,
                echo_counter: 0,
                echo_challenge: 0,
                challenge: 0, // set when sealed
                flags: HELLO_WANT_REPLY,
            };
            let len = self.seal_hello(i, hello, now, out)?;
            let hs = &mut self.peers[i].hs;
            if handshake_due {
                hs.next_hello_ms = now_ms + HELLO_RETRY_MS;
            }
            hs.next_keepalive_ms = now_ms + keepalive;
            self.handshake.cursor = (i + 1) % n;
            return Some((len, self.peers.id_at(i)));
        }
        None
    }

    /// When [`Relay::poll_hello`] next has something to send (monotonic
    /// ms): the earliest handshake retry or keepalive; `None` when nothing
    /// is scheduled (insecure mode, or no peer with an endpoint). The
    /// [`Timer::Hello`](crate::core::Timer::Hello) deadline.
    pub(crate) fn next_hello_ms(&self) -> Option<u64> {
        if !self.tx.authenticated() {
            return None;
        }
        self.peers
            .iter()
            .filter(|p| p.endpoint.is_some())
            .filter_map(|p| {
                if p.hs.hello_wanted {
                    Some(p.hs.next_hello_ms)
                } else if self.handshake.keepalive_ms > 0 && p.rx.confirmed_epoch().is_some() {
                    Some(p.hs.next_keepalive_ms)
                } else {
                    None
                }
            })
            .min()
    }

    /// Whether `peer` answered a keepalive (or handshake question) in
    /// the last three and a half keepalive intervals.
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

    /// How long a peer stays reachable after an answer: three and a half
    /// keepalive intervals, so one lost answer or two do not count.
    fn reachability_window(&self) -> u64 {
        self.handshake.keepalive_ms.max(100) * 7 / 2
    }

    /// When the first peer now reachable stops being so without another
    /// answer (monotonic ms).
    pub(super) fn reachability_deadline(&self) -> Option<u64> {
        let window = self.reachability_window();
        self.peers
            .iter()
            .filter(|p| p.hs.reachable)
            .filter_map(|p| p.stats.last_answer_ms)
            .map(|t| t.saturating_add(window + 1))
            .min()
    }

    /// Brings each peer's told reachability up to date at `now_ms`,
    /// telling each change.
    pub(super) fn update_reachability(&mut self, now_ms: u64) {
        for i in 0..self.peers.len() {
            let reachable = self.reachable_at(i, now_ms);
            let id = self.peers.id_at(i);
            let hs = &mut self.peers[i].hs;
            if hs.reachable != reachable {
                hs.reachable = reachable;
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

    /// An authenticated hello from peer `i`: confirms the peer's epoch if
    /// it answers one of our outstanding hellos, and answers it if asked.
    pub(super) fn on_hello(
        &mut self,
        i: usize,
        h: &Header,
        hello: Hello,
        now: Now,
        out: &mut [u8],
    ) -> Result<Inbound, DropReason> {
        let now_ms = now.mono_ms;
        if let Some((asked_ms, ping)) = self.answered_question(i, &hello) {
            self.record_answer(i, asked_ms, ping, now_ms);
            self.update_reachability(now_ms);
            self.update_quorum();
            self.confirm_run(i, h);
            self.peers[i].hs.hello_wanted = false;
        } else if self.peers[i].rx.confirmed_epoch() != Some(h.epoch) {
            // A peer we have not confirmed in this run is talking: ask it.
            self.peers[i].hs.want_hello(now_ms);
        }
        if !hello.wants_reply() {
            return Ok(Inbound::Handled);
        }
        self.answer(i, h, &hello, now, out)
    }

    /// The question of ours that `hello` answers, as (sent at, ping
    /// number), if it really answers one: our epoch, a challenge only the
    /// addressee could read (it went encrypted to this peer's endpoint
    /// only), a question still outstanding. Each question is answered
    /// once: a replayed answer confirms nothing.
    fn answered_question(&mut self, i: usize, hello: &Hello) -> Option<(u64, u64)> {
        let challenge_met =
            hello.echo_challenge == self.handshake.challenger.challenge(hello.echo_counter);
        let hs = &mut self.peers[i].hs;
        let asked = hs.asked(hello.echo_counter);
        if hello.echo_epoch != self.tx.epoch() || !challenge_met {
            return None;
        }
        let asked = asked?;
        hs.awaiting = [None; AWAITING];
        Some(asked)
    }

    /// The ping statistics of an answer to the question sent at `asked_ms`.
    fn record_answer(&mut self, i: usize, asked_ms: u64, ping: u64, now_ms: u64) {
        let peer = &mut self.peers[i];
        let s = &mut peer.stats;
        s.pings_answered += 1;
        s.rtt_ms = Some(now_ms.saturating_sub(asked_ms));
        s.last_answer_ms = Some(now_ms);
        let age = peer.hs.pings.saturating_sub(ping + 1);
        if age < 16 {
            s.recent_answered |= 1 << age;
        }
    }

    /// An answer proved the run of `h.epoch`: from now on it is the peer's.
    fn confirm_run(&mut self, i: usize, h: &Header) {
        let peer = &mut self.peers[i];
        if peer.rx.confirmed_epoch() == Some(h.epoch) {
            return;
        }
        let id = peer.spec.addrs.peer_id();
        self.events.push(match peer.rx.confirmed_epoch() {
            Some(old) => Event::PeerRestarted {
                peer: id,
                old,
                new: h.epoch,
            },
            None => Event::PeerConfirmed {
                peer: id,
                epoch: h.epoch,
            },
        });
        peer.rx.confirm(h.epoch, h.counter);
        peer.stats.epoch = Some(h.epoch);
    }

    /// Our answer to `hello`, asking back while the peer is unconfirmed;
    /// spaced per run of the peer, so a fresh run is answered at once.
    fn answer(
        &mut self,
        i: usize,
        h: &Header,
        hello: &Hello,
        now: Now,
        out: &mut [u8],
    ) -> Result<Inbound, DropReason> {
        let now_ms = now.mono_ms;
        let peer = &mut self.peers[i];
        if peer
            .hs
            .last_answer
            .is_some_and(|(e, t)| e == h.epoch && now_ms < t + HELLO_SPACING_MS)
        {
            return Ok(Inbound::Handled);
        }
        peer.hs.last_answer = Some((h.epoch, now_ms));
        let ask = peer.rx.confirmed_epoch() != Some(h.epoch);
        let answer = Hello {
            echo_epoch: h.epoch,
            echo_counter: h.counter,
            echo_challenge: hello.challenge,
            challenge: 0, // set when sealed, if asking back
            flags: if ask { HELLO_WANT_REPLY } else { 0 },
        };
        let len = self
            .seal_hello(i, answer, now, out)
            .ok_or(DropReason::TooBig)?;
        if ask {
            self.peers[i].hs.next_hello_ms = now_ms + HELLO_RETRY_MS;
        }
        Ok(Inbound::Reply {
            len,
            peer: self.peers.id_at(i),
        })
    }
}

#[cfg(test)]
mod tests {

    use crate::core::counters::DropReason;
    use crate::core::relay::*;
    use crate::proto::crypto::{ClusterKey, KeySchedule};
    use crate::testing::cluster::*;

    use crate::proto::wire::{HEADER_LEN, Header, Hello, Kind};

    #[test]
    fn sender_restart_with_clock_stepped_back_is_reconfirmed() {
        let (mut a, mut b, _) = cluster3();
        let (old, _) = send(&mut a, &vrrp_from(1), T0);
        let (unseen, _) = send(&mut a, &vrrp_from(1), T0);
        assert!(recv(&mut b, &old, 1, T0).is_ok());
        // Node 1 restarts with its clock 5 s behind: its new epoch is
        // lower than the one b has confirmed.
        let back = T0 - 5000;
        let key = Security::Authenticated(ClusterKey::from_bytes(KEY));
        let mut a2 = node_with(1, 3, back, key);
        meet(&mut [(1, &mut a2), (2, &mut b)], T0);
        let (new, _) = send(&mut a2, &vrrp_from(1), back);
        assert!(
            recv(&mut b, &new, 1, T0).is_ok(),
            "the restarted node must be heard again"
        );
        // The previous run's datagrams authenticate, but that run can never
        // again be confirmed: nothing of it is injected.
        assert_eq!(
            recv(&mut b, &unseen, 1, T0),
            Err(DropReason::UnconfirmedEpoch)
        );
        assert_eq!(recv(&mut b, &old, 1, T0), Err(DropReason::UnconfirmedEpoch));
    }

    #[test]
    fn a_key_holder_that_cannot_see_the_question_cannot_pose_as_another_node() {
        let (_a, mut b, _c) = cluster3();
        // Later than the handshake's own hello spacing.
        let t = T0 + 2000;
        // Node 3 holds the key and poses as node 1 with a new epoch.
        let fake = T0 * 1_000_000 + 999_999;
        let data = forge(Kind::Data, 1, fake, 5, &vrrp_from(1), t);
        assert_eq!(recv(&mut b, &data, 1, t), Err(DropReason::UnconfirmedEpoch));
        // b asks node 1 — at node 1's endpoint, which node 3 cannot read.
        let mut out = [0u8; 256];
        let (len, p) = b.poll_hello(t, &mut out).expect("b asks node 1");
        assert_eq!(b.peer_name(p).expect("peer"), "h1");
        let question = out[..len].to_vec();
        let q = Header::parse(&question).expect("header");
        // Node 3 knows b's epoch and roughly its counter (b's datagrams to
        // node 3 show them) and tries every nearby counter, with guesses.
        for (i, c) in (q.counter.saturating_sub(50)..q.counter + 50).enumerate() {
            let answer = hello_bytes(Hello {
                echo_epoch: q.epoch,
                echo_counter: c,
                echo_challenge: c ^ 0x5555,
                challenge: 0,
                flags: 0,
            });
            let d = forge(Kind::Hello, 1, fake, 10 + i as u64, &answer, t);
            let mut buf = d;
            let _ = b.from_net(&mut buf, endpoint(1), t, &mut out);
        }
        let later = forge(Kind::Data, 1, fake, 1000, &vrrp_from(1), t);
        assert_eq!(
            recv(&mut b, &later, 1, t),
            Err(DropReason::UnconfirmedEpoch),
            "a guessed answer confirmed a forged run"
        );
        // The limit, as documented: a key holder that reads the question
        // (captures traffic to node 1) can answer it.
        let mut opened = question.clone();
        let plain = KeySchedule::new(&ClusterKey::from_bytes(KEY))
            .stream_key(q.sender, q.epoch)
            .open(
                q.counter,
                &question[..HEADER_LEN],
                &mut opened[HEADER_LEN..],
            )
            .expect("the key opens the question");
        let asked = Hello::parse(&opened[HEADER_LEN..HEADER_LEN + plain]).expect("hello");
        let answer = hello_bytes(Hello {
            echo_epoch: q.epoch,
            echo_counter: q.counter,
            echo_challenge: asked.challenge,
            challenge: 0,
            flags: 0,
        });
        let mut buf = forge(Kind::Hello, 1, fake, 2000, &answer, t);
        let _ = b.from_net(&mut buf, endpoint(1), t, &mut out);
        let after = forge(Kind::Data, 1, fake, 2001, &vrrp_from(1), t);
        assert!(recv(&mut b, &after, 1, t).is_ok());
    }

    #[test]
    fn replayed_hellos_confirm_nothing() {
        let (mut a, mut b) = (node(1), node(2));
        let log = meet(&mut [(1, &mut a), (2, &mut b)], T0);
        assert!(!log.is_empty());
        // b restarts; every hello from b's previous run is replayed to it.
        let key = Security::Authenticated(ClusterKey::from_bytes(KEY));
        let t1 = T0 + 5;
        let mut b2 = node_with(2, 3, t1, key);
        for (from, to, d) in &log {
            if *to == 2 {
                let mut buf = d.clone();
                let mut out = [0u8; 256];
                let _ = b2.from_net(&mut buf, endpoint(*from), t1, &mut out);
            }
        }
        let (d, _) = send(&mut a, &vrrp_from(1), t1);
        assert_eq!(recv(&mut b2, &d, 1, t1), Err(DropReason::UnconfirmedEpoch));
        assert_eq!(
            b2.peer_stats(peer_index(&b2, "h1")).expect("peer").epoch,
            None
        );
    }

    #[test]
    fn next_hello_time_is_when_poll_hello_has_something() {
        let (mut a, _, _) = cluster3();
        let mut out = [0u8; 256];
        // Met at T0: the next things due are the keepalives, 1 s later.
        let due = a.next_hello_ms().expect("keepalives are scheduled");
        assert_eq!(due, T0 + 1000);
        assert_eq!(a.poll_hello(due - 1, &mut out), None);
        assert!(a.poll_hello(due, &mut out).is_some());
        assert!(a.poll_hello(due, &mut out).is_some());
        assert_eq!(a.poll_hello(due, &mut out), None);
        assert_eq!(a.next_hello_ms(), Some(due + 1000));
        // Insecure mode has no handshake and no keepalives.
        let b = node_with(2, 3, T0, Security::Insecure);
        assert_eq!(b.next_hello_ms(), None);
    }

    #[test]
    fn hellos_go_only_to_unconfirmed_peers_and_are_spaced() {
        let (mut a, mut b) = (node(1), node(2));
        let mut out = [0u8; 256];
        // At start: one hello per peer, then nothing until the retry time.
        let mut first = Vec::new();
        while let Some((_, p)) = a.poll_hello(T0, &mut out) {
            first.push(p);
        }
        assert_eq!(first.len(), 2);
        assert!(a.poll_hello(T0 + 999, &mut out).is_none());
        assert!(a.poll_hello(T0 + 1000, &mut out).is_some());
        meet(&mut [(1, &mut a), (2, &mut b)], T0 + 1000);
        // h2 confirmed: only h3 (never answering) is greeted again, and
        // h2 only with keepalives, one per keepalive interval.
        assert!(a.poll_hello(T0 + 1999, &mut out).is_none());
        let mut later = Vec::new();
        while let Some((_, p)) = a.poll_hello(T0 + 2000, &mut out) {
            later.push(a.peer_name(p).expect("peer").to_string());
        }
        later.sort();
        assert_eq!(later, ["h2", "h3"]);
        assert!(a.poll_hello(T0 + 2999, &mut out).is_none());
        // Insecure mode has no handshake at all.
        let mut ins = node_with(1, 3, T0, Security::Insecure);
        assert!(ins.poll_hello(T0, &mut out).is_none());
    }

    #[test]
    fn keepalives_measure_round_trip_and_loss() {
        let (mut a, mut b) = (node(1), node(2));
        meet(&mut [(1, &mut a), (2, &mut b)], T0);
        let h2 = peer_index(&a, "h2");
        let before = a.peer_stats(h2).expect("peer");
        let mut out = [0u8; 256];
        // Sends every due hello of `a` at `t`; returns the one to h2.
        let poll = |a: &mut Relay, t: u64| -> Vec<u8> {
            let mut out = [0u8; 256];
            let mut to_b = Vec::new();
            while let Some((len, p)) = a.poll_hello(t, &mut out) {
                if p == h2 {
                    to_b = out[..len].to_vec();
                }
            }
            to_b
        };
        let answer = |b: &mut Relay, q: Vec<u8>, t: u64| -> Vec<u8> {
            let mut q = q;
            let mut out = [0u8; 256];
            match b.from_net(&mut q, endpoint(1), t, &mut out) {
                Inbound::Reply { len, .. } => out[..len].to_vec(),
                other => panic!("no answer to a keepalive: {other:?}"),
            }
        };
        // Answered after 30 ms.
        let q = poll(&mut a, T0 + 1000);
        let mut r = answer(&mut b, q, T0 + 1010);
        assert!(matches!(
            a.from_net(&mut r, endpoint(2), T0 + 1030, &mut out),
            Inbound::Handled
        ));
        let s = a.peer_stats(h2).expect("peer");
        assert_eq!(s.rtt_ms, Some(30));
        assert_eq!(s.last_answer_ms, Some(T0 + 1030));
        assert_eq!(s.pings_sent - before.pings_sent, 1);
        assert_eq!(s.pings_answered - before.pings_answered, 1);
        // Lost, then answered after 5 ms.
        let _lost = poll(&mut a, T0 + 2030);
        let q = poll(&mut a, T0 + 3030);
        let mut r = answer(&mut b, q, T0 + 3032);
        a.from_net(&mut r, endpoint(2), T0 + 3035, &mut out);
        let s = a.peer_stats(h2).expect("peer");
        assert_eq!(s.rtt_ms, Some(5));
        assert_eq!(
            s.recent_answered & 0b111,
            0b101,
            "newest answered, one lost, one answered"
        );
        // The confirmed epoch is untouched by keepalives.
        let (data, _) = send(&mut b, &vrrp_from(2), T0 + 3040);
        assert!(recv(&mut a, &data, 2, T0 + 3040).is_ok());
    }
}
