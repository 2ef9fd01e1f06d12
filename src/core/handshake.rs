//! The handshake state machine: when to start a Noise handshake with a
//! peer (no session yet, the session is due for renewal, the peer stopped
//! answering, or it was refused as stale), and which handshake messages to
//! accept. The messages themselves are `proto::noise`'s.
//!
//! The rules, cheapest first, so a flood costs no Diffie-Hellman:
//! * a handshake must carry the MAC keyed by our public key;
//! * handshakes are rate-limited per claimed member, apart for those that
//!   come from the member's configured endpoint address and those that do
//!   not (and the latter in all), so a flood from elsewhere cannot starve a
//!   member's own handshakes;
//! * the static key inside must be the claimed member's own (a member can
//!   start a session only as itself);
//! * its timestamp must be newer than the last one accepted from that
//!   member, so a replayed initiation is refused; and even one that gets
//!   through (to a relay that just restarted) only makes a `next` session
//!   that nobody can complete, while the current one carries on;
//! * a response must answer our own outstanding initiation, and a forged
//!   one does not cancel it;
//! * the session indices in clear must be the ones inside the encrypted
//!   payloads, so nobody can rewrite them.
//!
//! Every member's state is its own: one member's flood cannot push out
//! another's handshake or session.

use std::net::SocketAddr;

use crate::core::counters::DropReason;
use crate::core::events::Event;
use crate::core::rate::Bucket;
use crate::core::relay::{Inbound, Link, Relay};
use crate::core::session::{Session, prefix};
use crate::core::time::Now;
use crate::proto::crypto::MacKey;
use crate::proto::keys::{PrivateKey, PublicKey};
use crate::proto::noise::Noise;
use crate::proto::wire::{
    FLAG_FRAME, HandshakeIds, INIT_NOISE_LEN, INIT_PAYLOAD_LEN, INITIATION_LEN, Kind, MAC_LEN,
    PREFIX_LEN, Prefix, RESP_NOISE_LEN, RESP_PAYLOAD_LEN, RESPONSE_LEN, Timestamp, be_u32, be_u64,
};

/// How long an initiation waits for its response before another goes.
pub(super) const RETRY_MS: u64 = 1_000;
/// Initiations to a peer that has answered none since this relay started
/// go every RETRY_MS this many times, then twice as far apart each time up
/// to MAX_RETRY_MS: a member that is down (or not built yet) costs a
/// Diffie-Hellman every 8 s, not every second, and when it starts, its
/// own initiation makes the session at once. A peer met once keeps the
/// 1 s pace: after a partition that outlived the sessions, the pair must
/// find each other as soon as the network heals.
const FAST_RETRIES: u32 = 10;
const MAX_RETRY_MS: u64 = 8_000;
/// Closest spacing of initiations to one peer.
const SPACING_MS: u64 = 100;
/// Handshakes from one claimed member processed per second (and burst),
/// for each of: from its configured endpoint address, from anywhere else.
const PER_MEMBER_RATE: u32 = 10;
/// Handshakes processed per second from addresses that are no member's
/// endpoint, all together: bounds the Diffie-Hellman work a flood with
/// valid MACs can cause.
const TOTAL_RATE: u32 = 100;
/// At most this often a refused stale initiation makes us start a
/// handshake of our own while we hold a session with its member: a
/// replayed capture cannot make a pair renew its keys at will.
const STALE_ANSWER_MS: u64 = 5_000;
/// A step of the wall clock against the monotonic one larger than this
/// ends every session (see [`Relay::observe_clock`]).
const CLOCK_JUMP_MS: i64 = 5_000;

/// This node's keys, in authenticated mode.
pub(super) struct Local {
    key: PrivateKey,
    /// Verifies the MAC of handshakes addressed to us.
    mac: MacKey,
}

/// The relay-wide part.
pub(super) struct Handshake {
    /// `None` in insecure mode.
    local: Option<Local>,
    /// This start's run, told to peers in every handshake.
    pub(super) run: u64,
    /// The last timestamp we put in an initiation: ours only go forward.
    last_sent: Timestamp,
    /// Handshakes processed from no member's endpoint, for [`TOTAL_RATE`].
    total: Bucket,
    /// Round-robin start for [`Relay::poll_hello`].
    pub(super) cursor: usize,
    /// Wall minus monotonic ms when last looked: a jump of it is a clock
    /// step or a restored snapshot.
    clock_offset: Option<i64>,
    /// Session indices handed out so far, mixed into the next one.
    issued: u32,
    index_seed: u32,
}

impl Handshake {
    pub(super) fn new(key: Option<PrivateKey>, run: u64) -> Handshake {
        Handshake {
            local: key.map(|key| Local {
                mac: MacKey::for_receiver(&key.public()),
                key,
            }),
            run,
            last_sent: Timestamp([0; 12]),
            total: Bucket::full(TOTAL_RATE),
            cursor: 0,
            clock_offset: None,
            issued: 0,
            // Indices need only be unique among ours, not secret.
            index_seed: (run as u32) ^ ((run >> 32) as u32),
        }
    }

    pub(super) fn authenticated(&self) -> bool {
        self.local.is_some()
    }

    pub(super) fn public(&self) -> Option<PublicKey> {
        self.local.as_ref().map(|l| l.key.public())
    }

    /// A fresh local session index: a permutation of a counter, so no two
    /// sessions of this run share one.
    fn new_index(&mut self) -> u32 {
        self.issued = self.issued.wrapping_add(1);
        // An odd multiplier is a bijection on u32.
        (self.issued ^ self.index_seed).wrapping_mul(0x9e37_79b1) ^ self.index_seed
    }
}

/// A handshake we started.
struct Pending {
    noise: Noise,
    local: u32,
    sent_ms: u64,
}

/// The per-peer part.
pub(super) struct PeerHandshake {
    pending: Option<Pending>,
    /// The index of our initiation abandoned for the peer's own (both
    /// started at once): its response is expected, and ignored.
    abandoned: Option<u32>,
    /// A handshake is wanted as soon as spacing allows.
    wanted: bool,
    /// When the next initiation to this peer may go out.
    next_ms: u64,
    /// The newest initiation timestamp accepted from this peer.
    last_accepted: Option<Timestamp>,
    /// When a stale initiation of this peer last made us start one.
    last_stale_answer_ms: Option<u64>,
    /// Initiations sent while the peer has completed none with us.
    unanswered: u32,
    /// The peer has completed a handshake with us since we started.
    met: bool,
    /// Handshakes processed claiming this member: from its configured
    /// endpoint address, and from anywhere else.
    from_endpoint: Bucket,
    from_elsewhere: Bucket,
    /// Signs handshakes to this peer; `None` without its public key.
    mac: Option<MacKey>,
}

impl PeerHandshake {
    pub(super) fn new(public_key: Option<&PublicKey>) -> PeerHandshake {
        PeerHandshake {
            pending: None,
            abandoned: None,
            // A new peer has no session: greet it.
            wanted: true,
            next_ms: 0,
            last_accepted: None,
            last_stale_answer_ms: None,
            unanswered: 0,
            met: false,
            from_endpoint: Bucket::full(PER_MEMBER_RATE),
            from_elsewhere: Bucket::full(PER_MEMBER_RATE),
            mac: public_key.map(MacKey::for_receiver),
        }
    }

    /// The peer's public key changed in the cluster file: handshakes from
    /// now on use the new one; an initiation made for the old one is
    /// abandoned. The timestamps it sent stay valid (same member).
    pub(super) fn rekeyed(&mut self, public_key: Option<&PublicKey>) {
        self.mac = public_key.map(MacKey::for_receiver);
        self.pending = None;
        // A wrong key is why a member was never met: the right one gets
        // the fast retries again.
        self.unanswered = 0;
    }

    /// The peer has a new address: an initiation waiting for its answer
    /// (sent to the old one) is retried there as soon as spacing allows,
    /// and at the fast pace, not when the backoff for the old one says.
    pub(super) fn moved(&mut self) {
        if self.pending.take().is_some() {
            self.wanted = true;
        }
        self.unanswered = 0;
    }

    /// Asks for a handshake with this peer as soon as spacing allows.
    pub(super) fn want(&mut self, now_ms: u64) {
        if !self.wanted {
            self.wanted = true;
            self.next_ms = self.next_ms.max(now_ms);
        }
    }

    /// When an initiation to this peer is next due, given whether its
    /// session needs renewing; `None`: none is wanted.
    pub(super) fn due_ms(&self, rekey: bool) -> Option<u64> {
        if !(self.wanted || rekey) {
            return None;
        }
        let retry = self
            .pending
            .as_ref()
            .map_or(0, |p| p.sent_ms + self.retry_ms());
        Some(self.next_ms.max(retry))
    }

    /// How long the outstanding initiation waits before the next.
    fn retry_ms(&self) -> u64 {
        if self.met {
            return RETRY_MS;
        }
        let doublings = self.unanswered.saturating_sub(FAST_RETRIES).min(3);
        (RETRY_MS << doublings).min(MAX_RETRY_MS)
    }

    /// The peer completed a handshake with us: from now on it is greeted
    /// at the normal pace whenever it needs a handshake.
    fn answered(&mut self) {
        self.met = true;
        self.unanswered = 0;
    }
}

fn link_flags(link: Link) -> u8 {
    if link == Link::Ethernet {
        FLAG_FRAME
    } else {
        0
    }
}

impl Relay {
    /// Notices the wall clock leaping ahead of the monotonic one: what a
    /// VM restored from a snapshot (or resumed) sees once its clock is
    /// corrected. After a restore, the snapshot's sessions would seal new
    /// plaintexts under counters already used: so every session stops
    /// sealing and each peer gets a fresh handshake; datagrams in flight
    /// still open. A step back (NTP) cannot mean a restore and is let be.
    pub(super) fn observe_clock(&mut self, now: Now) {
        let offset = now.wall_ms.saturating_sub(now.mono_ms as i64);
        let hs = &mut self.handshake;
        let jumped = hs
            .clock_offset
            .is_some_and(|o| offset.saturating_sub(o) > CLOCK_JUMP_MS);
        hs.clock_offset = Some(offset);
        if !jumped || !hs.authenticated() {
            return;
        }
        self.counters.clock_jumps += 1;
        for p in self.peers.iter_mut() {
            p.sessions.retire();
            p.hs.pending = None;
            p.hs.unanswered = 0;
            p.hs.wanted = true;
            p.hs.next_ms = now.mono_ms;
        }
    }

    /// The initiation to peer `i`, written into `out`, if one is due.
    pub(super) fn initiation_due(
        &mut self,
        i: usize,
        now: Now,
        out: &mut [u8],
    ) -> Option<(usize, SocketAddr)> {
        let now_ms = now.mono_ms;
        let p = &self.peers[i];
        let due = p.hs.due_ms(p.sessions.needs_rekey(now_ms))?;
        if now_ms < due || !p.paths.any() || out.len() < INITIATION_LEN {
            return None;
        }
        let remote = p.spec.public_key?;
        let local = self.handshake.local.as_ref()?;
        let mut noise = Noise::initiator(&local.key, &remote).ok()?;
        let ts = Timestamp::from_unix_nanos(i128::from(now.wall_ms) * 1_000_000)
            .max(self.handshake.last_sent.next());
        self.handshake.last_sent = ts;
        let index = self.handshake.new_index();
        let mut payload = [0u8; INIT_PAYLOAD_LEN];
        payload[..12].copy_from_slice(&ts.0);
        payload[12..20].copy_from_slice(&self.handshake.run.to_be_bytes());
        payload[20] = link_flags(self.link);
        // Inside the encryption too: nobody can rewrite the clear copy.
        payload[21..25].copy_from_slice(&index.to_be_bytes());
        let msg = &mut out[..INITIATION_LEN];
        prefix(Kind::Initiation, 0, self.policy.local.id()).encode(msg);
        msg[8..12].copy_from_slice(&index.to_be_bytes());
        let body = PREFIX_LEN + 4;
        noise
            .write(&payload, &mut msg[body..body + INIT_NOISE_LEN])
            .ok()?;
        let mac_at = INITIATION_LEN - MAC_LEN;
        let mac = self.peers[i].hs.mac.as_ref()?.sign(&msg[..mac_at]);
        msg[mac_at..].copy_from_slice(&mac);
        let hs = &mut self.peers[i].hs;
        hs.pending = Some(Pending {
            noise,
            local: index,
            sent_ms: now_ms,
        });
        hs.wanted = false;
        hs.next_ms = now_ms + SPACING_MS;
        hs.unanswered = hs.unanswered.saturating_add(1);
        self.counters.handshakes_sent += 1;
        let (window, timeout) = (self.reachability_window(), self.ping_timeout_ms());
        let paths = &mut self.peers[i].paths;
        let to = paths
            .hello_path(now_ms, window, timeout)
            .and_then(|k| paths.addr(k))?;
        Some((INITIATION_LEN, to))
    }

    /// The budget a handshake claiming peer `i` and coming from `from`
    /// spends: the member's own for its configured endpoint address, else
    /// the member's other one and the shared one. `false`: over budget.
    fn handshake_budget(&mut self, i: usize, from: SocketAddr, now_ms: u64) -> bool {
        let peer = &mut self.peers[i];
        if peer.paths.has_ip(from.ip()) {
            peer.hs.from_endpoint.take(PER_MEMBER_RATE, now_ms)
        } else {
            peer.hs.from_elsewhere.take(PER_MEMBER_RATE, now_ms)
                && self.handshake.total.take(TOTAL_RATE, now_ms)
        }
    }

    /// An initiation from peer `i` (as its prefix claims), from `from`:
    /// answered with a response in `out` if every rule holds.
    pub(super) fn on_initiation(
        &mut self,
        i: usize,
        buf: &[u8],
        from: SocketAddr,
        now: Now,
        out: &mut [u8],
    ) -> Result<Inbound, DropReason> {
        let now_ms = now.mono_ms;
        let local = self
            .handshake
            .local
            .as_ref()
            .ok_or(DropReason::ModeMismatch)?;
        let mac_at = INITIATION_LEN - MAC_LEN;
        if !local.mac.verify(&buf[..mac_at], &buf[mac_at..]) {
            return Err(DropReason::BadMac);
        }
        let expected = self.peers[i]
            .spec
            .public_key
            .ok_or(DropReason::UnknownSender)?;
        if !self.handshake_budget(i, from, now_ms) {
            return Err(DropReason::HandshakeRateLimited);
        }
        // No answer could go anywhere: no session is made either.
        if !self.peers[i].paths.any() {
            return Err(DropReason::PeerUnresolved);
        }
        let local = self
            .handshake
            .local
            .as_ref()
            .ok_or(DropReason::ModeMismatch)?;
        let mut noise = Noise::responder(&local.key).map_err(|_| DropReason::BadAuth)?;
        let ids = HandshakeIds::parse(Kind::Initiation, buf);
        let body = PREFIX_LEN + 4;
        let mut payload = [0u8; INIT_PAYLOAD_LEN + 16];
        let n = noise
            .read(&buf[body..body + INIT_NOISE_LEN], &mut payload)
            .map_err(|_| DropReason::BadAuth)?;
        if noise.remote_static() != Some(expected) {
            // Sealed by another member's key: a member posing as another.
            return Err(DropReason::WrongKey);
        }
        if n != INIT_PAYLOAD_LEN {
            return Err(DropReason::Malformed);
        }
        if be_u32(&payload[21..25]) != ids.sender_index {
            // The clear index was rewritten on the way.
            return Err(DropReason::BadAuth);
        }
        let mut ts = [0u8; 12];
        ts.copy_from_slice(&payload[..12]);
        let ts = Timestamp(ts);
        let run = be_u64(&payload[12..20]);
        self.check_link(payload[20])?;
        let has_session = self.peers[i].sessions.has_current();
        let peer = &mut self.peers[i];
        if peer.hs.last_accepted.is_some_and(|last| ts <= last) {
            // A replay, or a genuine restart with its clock set back: only
            // a handshake of ours can tell, and a replayer cannot answer
            // it. Without a session, at once; with one, now and then, so
            // replays cannot make the pair renew its keys at will.
            let recently = peer
                .hs
                .last_stale_answer_ms
                .is_some_and(|t| now_ms < t + STALE_ANSWER_MS);
            if !has_session || !recently {
                peer.hs.last_stale_answer_ms = Some(now_ms);
                peer.hs.want(now_ms);
            }
            return Err(DropReason::StaleHandshake);
        }
        // A relay that has accepted nothing from this member yet (it just
        // started) has no timestamp to compare with: it bounds replays of
        // old captures by its clock instead. Later only order counts, so a
        // clock stepped on both sides stalls nothing.
        if peer.hs.last_accepted.is_none()
            && ts.unix_ms().abs_diff(i128::from(now.wall_ms)) > u128::from(self.max_skew_ms)
        {
            return Err(DropReason::ClockSkew);
        }
        peer.hs.last_accepted = Some(ts);
        // Both sides started at once: the initiation of the member with
        // the higher key wins, so the two settle on one session.
        if peer.hs.pending.is_some() && self.handshake.public() < Some(expected) {
            peer.hs.abandoned = peer.hs.pending.take().map(|p| p.local);
        }
        // The peer is about to confirm this session: our own initiation
        // can wait a retry interval.
        peer.hs.next_ms = peer.hs.next_ms.max(now_ms + RETRY_MS);
        peer.hs.answered();
        let index = self.handshake.new_index();
        let mut reply = [0u8; RESP_PAYLOAD_LEN];
        reply[..8].copy_from_slice(&self.handshake.run.to_be_bytes());
        reply[8] = link_flags(self.link);
        reply[9..13].copy_from_slice(&index.to_be_bytes());
        reply[13..17].copy_from_slice(&ids.sender_index.to_be_bytes());
        if out.len() < RESPONSE_LEN {
            return Err(DropReason::TooBig);
        }
        let msg = &mut out[..RESPONSE_LEN];
        prefix(Kind::Response, 0, self.policy.local.id()).encode(msg);
        msg[8..12].copy_from_slice(&index.to_be_bytes());
        msg[12..16].copy_from_slice(&ids.sender_index.to_be_bytes());
        let body = PREFIX_LEN + 8;
        let peer = &mut self.peers[i];
        noise
            .write(&reply, &mut msg[body..body + RESP_NOISE_LEN])
            .map_err(|_| DropReason::BadAuth)?;
        let keys = noise.split().map_err(|_| DropReason::BadAuth)?;
        let mac_at = RESPONSE_LEN - MAC_LEN;
        let mac = peer
            .hs
            .mac
            .as_ref()
            .ok_or(DropReason::UnknownSender)?
            .sign(&msg[..mac_at]);
        msg[mac_at..].copy_from_slice(&mac);
        peer.sessions.install_responded(Session::new(
            keys,
            index,
            ids.sender_index,
            false,
            run,
            now_ms,
        ));
        self.counters.handshakes_answered += 1;
        let paths = &self.peers[i].paths;
        let to = paths
            .reply_path(from)
            .and_then(|k| paths.addr(k))
            .ok_or(DropReason::PeerUnresolved)?;
        Ok(Inbound::Reply {
            len: RESPONSE_LEN,
            peer: self.peers.id_at(i),
            to,
        })
    }

    /// A response from peer `i`, from `from`: completes our outstanding
    /// initiation. One that does not read leaves the initiation waiting
    /// for the genuine response (snow restores its state after a failed
    /// read), so a forged response cannot cancel a handshake.
    pub(super) fn on_response(
        &mut self,
        i: usize,
        buf: &[u8],
        from: SocketAddr,
        now: Now,
    ) -> Result<Inbound, DropReason> {
        let local = self
            .handshake
            .local
            .as_ref()
            .ok_or(DropReason::ModeMismatch)?;
        let mac_at = RESPONSE_LEN - MAC_LEN;
        if !local.mac.verify(&buf[..mac_at], &buf[mac_at..]) {
            return Err(DropReason::BadMac);
        }
        let ids = HandshakeIds::parse(Kind::Response, buf);
        let peer = &mut self.peers[i];
        if peer.hs.abandoned == Some(ids.receiver_index) {
            peer.hs.abandoned = None;
            return Ok(Inbound::Handled);
        }
        if peer.hs.pending.as_ref().map(|p| p.local) != Some(ids.receiver_index) {
            return Err(DropReason::NoSession);
        }
        // Each read costs two Diffie-Hellmans: forged responses spend the
        // same budget as initiations.
        if !self.handshake_budget(i, from, now.mono_ms) {
            return Err(DropReason::HandshakeRateLimited);
        }
        let peer = &mut self.peers[i];
        let Some(pending) = peer.hs.pending.as_mut() else {
            return Err(DropReason::NoSession);
        };
        let body = PREFIX_LEN + 8;
        let mut payload = [0u8; RESP_PAYLOAD_LEN + 16];
        let n = pending
            .noise
            .read(&buf[body..body + RESP_NOISE_LEN], &mut payload)
            .map_err(|_| DropReason::BadAuth)?;
        // Authenticated by the responder's static key from here on.
        let Some(pending) = peer.hs.pending.take() else {
            return Err(DropReason::NoSession);
        };
        if n != RESP_PAYLOAD_LEN
            || be_u32(&payload[9..13]) != ids.sender_index
            || be_u32(&payload[13..17]) != ids.receiver_index
        {
            // Malformed, or a clear index rewritten on the way: this
            // handshake is spoilt, another goes soon.
            peer.hs.want(now.mono_ms);
            return Err(DropReason::BadAuth);
        }
        let run = be_u64(&payload[..8]);
        let flags = payload[8];
        let keys = pending.noise.split().map_err(|_| DropReason::BadAuth)?;
        self.check_link(flags)?;
        let peer = &mut self.peers[i];
        peer.hs.answered();
        peer.sessions.install_initiated(Session::new(
            keys,
            pending.local,
            ids.sender_index,
            true,
            run,
            now.mono_ms,
        ));
        // The first keepalive under the new session goes at once, and
        // again until answered: it shows the peer we hold the session
        // (until then the peer seals with its old one) and measures the
        // round trip.
        peer.ka.ask_now();
        self.session_up(i, run);
        Ok(Inbound::Handled)
    }

    fn check_link(&self, flags: u8) -> Result<(), DropReason> {
        if (flags & FLAG_FRAME != 0) != (self.link == Link::Ethernet) {
            return Err(DropReason::LinkMismatch);
        }
        Ok(())
    }

    /// A session with peer `i` is in use from now on: tell it if it is the
    /// first with this run of the peer.
    pub(super) fn session_up(&mut self, i: usize, run: u64) {
        let peer = &mut self.peers[i];
        let id = peer.spec.addrs.peer_id();
        match peer.stats.epoch {
            Some(old) if old == run => {}
            Some(old) => self.events.push(Event::PeerRestarted {
                peer: id,
                old,
                new: run,
            }),
            None => self.events.push(Event::PeerConfirmed {
                peer: id,
                epoch: run,
            }),
        }
        peer.stats.epoch = Some(run);
        peer.stats.sessions += 1;
    }

    /// A handshake message claiming peer `i` (its prefix parsed as `p`),
    /// from `from`.
    pub(super) fn on_handshake(
        &mut self,
        i: usize,
        p: &Prefix,
        buf: &[u8],
        from: SocketAddr,
        now: Now,
        out: &mut [u8],
    ) -> Result<Inbound, DropReason> {
        match p.kind {
            Kind::Initiation => self.on_initiation(i, buf, from, now, out),
            _ => self.on_response(i, buf, from, now),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::core::counters::DropReason;
    use crate::core::relay::*;
    use crate::core::session::REKEY_AFTER_MS;
    use crate::proto::wire::{INITIATION_LEN, Kind, MAC_LEN};
    use crate::testing::cluster::*;

    /// The first review finding, as a key-holding member would try it:
    /// node 3 knows node 1's session index and counter at node 2 (assume
    /// the worst) and holds a key of the cluster, its own.
    #[test]
    fn a_member_cannot_pose_as_another_or_silence_it() {
        let (mut a, mut b, mut c) = cluster3();
        let (genuine, _) = send(&mut a, &vrrp_from(1), T0);
        let (index, counter) = index_and_counter(genuine.for_node(2));
        assert!(recv(&mut b, &genuine, 1, T0).is_ok());
        // Its own session with node 2, carrying node 1's advert, relabelled
        // as node 1's.
        let mut own = [0u8; MAX_DATAGRAM];
        let h2 = peer_index(&c, "h2");
        let len = c
            .seal_unchecked(h2, Kind::Data, &vrrp_from(1), T0, &mut own)
            .expect("sealed");
        assert_eq!(
            recv(&mut b, &relabel(&own[..len], 1), 1, T0),
            Err(DropReason::NoSession)
        );
        // Unrelabelled, node 2 knows it for node 3's, and node 3 may
        // speak only for itself.
        assert_eq!(
            recv(&mut b, &own[..len].to_vec(), 3, T0),
            Err(DropReason::WrongSource)
        );
        // 300 priority-0 adverts in node 1's session, counters above its
        // own, sealed with the only keys node 3 has.
        let mut zero = vrrp_from(1);
        zero[22] = 0;
        for k in 1..=300 {
            let d = forge(header(Kind::Data, 1, index, counter + k), &zero);
            assert_eq!(recv(&mut b, &d, 1, T0), Err(DropReason::BadAuth));
        }
        // One at the top of the counter space moves no window.
        let top = forge(header(Kind::Data, 1, index, u64::MAX - 1), &zero);
        assert_eq!(recv(&mut b, &top, 1, T0), Err(DropReason::BadAuth));
        assert_eq!(b.counters().injected, 1);
        let (next, _) = send(&mut a, &vrrp_from(1), T0 + 1);
        assert!(
            recv(&mut b, &next, 1, T0 + 1).is_ok(),
            "node 1 was silenced at node 2"
        );
        assert_eq!(b.counters().drops.get(DropReason::BadAuth), 301);
    }

    #[test]
    fn a_member_cannot_start_a_session_as_another() {
        let (mut a, mut b, _) = cluster3();
        // Node 3's key in a relay that claims node 1's id.
        let mut fake = node_with(1, 3, T0 + 10, key(3));
        let mut out = [0u8; MAX_DATAGRAM];
        let mut sent = 0;
        while let Some((len, p, _)) = fake.poll_hello(T0 + 10, &mut out) {
            if fake.peer_name(p) == Some("h2") {
                let mut d = out[..len].to_vec();
                let mut reply = [0u8; MAX_DATAGRAM];
                let got = b.from_net(&mut d, endpoint(1), T0 + 10, &mut reply);
                assert_eq!(got, Inbound::Drop(DropReason::WrongKey));
                sent += 1;
            }
        }
        assert_eq!(sent, 1);
        // Node 1's real session carries on.
        let (d, _) = send(&mut a, &vrrp_from(1), T0 + 20);
        assert!(recv(&mut b, &d, 1, T0 + 20).is_ok());
    }

    #[test]
    fn replayed_handshakes_disturb_nothing() {
        let (mut a, mut b) = (node_with(1, 2, T0, key(1)), node_with(2, 2, T0, key(2)));
        let log = meet(&mut [(1, &mut a), (2, &mut b)], T0);
        let initiations: Vec<_> = log
            .iter()
            .filter(|(_, _, d)| d[1] == Kind::Initiation as u8)
            .cloned()
            .collect();
        assert!(!initiations.is_empty());
        let mut out = [0u8; MAX_DATAGRAM];
        // Every handshake message replayed, to both sides.
        for (from, to, d) in &log {
            let r = if *to == 2 { &mut b } else { &mut a };
            let mut d = d.clone();
            let got = r.from_net(&mut d, endpoint(*from), T0 + 5, &mut out);
            assert!(
                !matches!(got, Inbound::Inject { .. } | Inbound::Reply { .. }),
                "{got:?}"
            );
        }
        assert!(b.counters().drops.get(DropReason::StaleHandshake) > 0);
        let (d, _) = send(&mut a, &vrrp_from(1), T0 + 6);
        assert!(recv(&mut b, &d, 1, T0 + 6).is_ok());
        let (d, _) = send(&mut b, &vrrp_from(2), T0 + 6);
        assert!(recv(&mut a, &d, 2, T0 + 6).is_ok());
        // A relay that restarted has no memory of timestamps: the replayed
        // initiation is answered, but it only makes a session nobody can
        // complete; the old session's captures never open in the new run.
        let (old, _) = send(&mut a, &vrrp_from(1), T0 + 7);
        let mut b2 = node_with(2, 2, T0 + 8, key(2));
        for (from, _, d) in initiations.iter().filter(|(_, to, _)| *to == 2) {
            let mut d = d.clone();
            let _ = b2.from_net(&mut d, endpoint(*from), T0 + 8, &mut out);
        }
        assert_eq!(recv(&mut b2, &old, 1, T0 + 8), Err(DropReason::NoSession));
        assert!(!b2.has_session(peer_index(&b2, "h1")));
        // The real handshake still works: b2's own, which the answer to
        // the replay put off by one retry interval.
        let t = T0 + 8 + super::RETRY_MS;
        meet(&mut [(1, &mut a), (2, &mut b2)], t);
        let (d, _) = send(&mut a, &vrrp_from(1), t);
        assert!(recv(&mut b2, &d, 1, t).is_ok());
        assert_eq!(recv(&mut b2, &old, 1, t), Err(DropReason::NoSession));
    }

    #[test]
    fn a_flood_of_initiations_from_one_member_spares_the_others() {
        let (mut a, mut b, _) = cluster3();
        let mut out = [0u8; MAX_DATAGRAM];
        let mut answered = 0;
        // Node 3 restarts a thousand times in one second: each initiation
        // genuine, with a newer timestamp.
        for k in 0..1000u64 {
            let t = T0 + 10 + k;
            let mut c = node_with(3, 3, t, key(3));
            while let Some((len, p, _)) = c.poll_hello(t, &mut out) {
                if c.peer_name(p) != Some("h2") {
                    continue;
                }
                let mut d = out[..len].to_vec();
                let mut reply = [0u8; MAX_DATAGRAM];
                match b.from_net(&mut d, endpoint(3), t, &mut reply) {
                    Inbound::Reply { .. } => answered += 1,
                    Inbound::Drop(r) => assert_eq!(r, DropReason::HandshakeRateLimited),
                    other => panic!("{other:?}"),
                }
            }
        }
        assert!(
            answered <= 20,
            "{answered} initiations answered in one second"
        );
        assert!(b.counters().drops.get(DropReason::HandshakeRateLimited) >= 980);
        // Node 1 is untouched: its session, its keepalives.
        let (d, _) = send(&mut a, &vrrp_from(1), T0 + 1010);
        assert!(recv(&mut b, &d, 1, T0 + 1010).is_ok());
        let h2 = peer_index(&a, "h2");
        let before = a.peer_stats(h2).expect("h2").pings_answered;
        exchange(&mut a, 1, &mut b, 2, T0 + 1010);
        assert!(a.peer_stats(h2).expect("h2").pings_answered > before);
    }

    #[test]
    fn relays_starting_together_settle_on_one_session_without_a_drop() {
        let mut nodes: Vec<Relay> = (1..=5).map(|n| node_with(n, 5, T0, key(n))).collect();
        let mut all: Vec<(u8, &mut Relay)> = nodes
            .iter_mut()
            .enumerate()
            .map(|(i, r)| (i as u8 + 1, r))
            .collect();
        meet(&mut all, T0);
        for (n, r) in all {
            assert_eq!(r.counters().drops.total(), 0, "node {n}: {}", r.counters());
            for p in r.peers().collect::<Vec<_>>() {
                assert!(r.has_session(p), "node {n} has no session with {p}");
            }
        }
    }

    /// An outsider with the cluster file (public keys are no secret) can
    /// make handshakes with a valid MAC claiming any member: a flood of
    /// them from its own address must not starve that member's genuine
    /// handshakes from its configured endpoint.
    #[test]
    fn a_flood_claiming_a_member_does_not_starve_its_handshakes() {
        let mut b = node(2);
        let mut junk = vec![0x77u8; INITIATION_LEN];
        junk[..8].copy_from_slice(&[2, 2, 0, 0, 10, 250, 0, 1]);
        resign(&mut junk, 2);
        let elsewhere: std::net::SocketAddr = "198.51.100.9:7112".parse().expect("addr");
        let mut out = [0u8; MAX_DATAGRAM];
        for _ in 0..1000 {
            let mut d = junk.clone();
            let got = b.from_net(&mut d, elsewhere, T0, &mut out);
            assert!(matches!(got, Inbound::Drop(_)), "{got:?}");
        }
        assert!(b.counters().drops.get(DropReason::HandshakeRateLimited) >= 980);
        // Node 1's genuine initiation, from its endpoint, at the same time.
        let mut a = node(1);
        let (len, _, _) = a.poll_hello(T0, &mut out).expect("initiation");
        let mut init = out[..len].to_vec();
        let mut reply = [0u8; MAX_DATAGRAM];
        assert!(matches!(
            b.from_net(&mut init, endpoint(1), T0, &mut reply),
            Inbound::Reply { .. }
        ));
    }

    /// Node 1's (`a`'s) first initiation, answered by node 2 (`b`) at T0:
    /// the response is in `resp`, its length returned.
    fn answered_initiation(a: &mut Relay, b: &mut Relay, resp: &mut [u8]) -> usize {
        let mut out = [0u8; MAX_DATAGRAM];
        let (len, _, _) = a.poll_hello(T0, &mut out).expect("initiation");
        let mut init = out[..len].to_vec();
        let Inbound::Reply { len, .. } = b.from_net(&mut init, endpoint(1), T0, resp) else {
            panic!("not answered");
        };
        len
    }

    #[test]
    fn a_forged_response_does_not_cancel_a_handshake() {
        let (mut a, mut b) = (node_with(1, 2, T0, key(1)), node_with(2, 2, T0, key(2)));
        let mut out = [0u8; MAX_DATAGRAM];
        let mut resp = [0u8; MAX_DATAGRAM];
        let len = answered_initiation(&mut a, &mut b, &mut resp);
        // Someone who saw the initiation races a response with its index
        // and a valid MAC, but Noise bytes of its own.
        let mut forged = resp[..len].to_vec();
        for x in &mut forged[16..40] {
            *x ^= 0x5a;
        }
        resign(&mut forged, 1);
        assert_eq!(
            a.from_net(&mut forged, endpoint(2), T0, &mut out),
            Inbound::Drop(DropReason::BadAuth)
        );
        // The genuine response still completes the handshake.
        let mut genuine = resp[..len].to_vec();
        assert_eq!(
            a.from_net(&mut genuine, endpoint(2), T0, &mut out),
            Inbound::Handled
        );
        assert!(a.has_session(peer_index(&a, "h2")));
    }

    /// Polls `r` every 10 ms from `*t` until `until` (or until `stop` says
    /// so of what came so far): when each initiation went, and where.
    fn initiations(
        r: &mut Relay,
        t: &mut u64,
        until: u64,
        stop: impl Fn(&[(u64, std::net::SocketAddr)]) -> bool,
    ) -> Vec<(u64, std::net::SocketAddr)> {
        let mut out = [0u8; MAX_DATAGRAM];
        let mut sent = Vec::new();
        while *t < until && !stop(&sent) {
            while let Some((_, _, to)) = r.poll_hello(*t, &mut out) {
                if out[1] == Kind::Initiation as u8 {
                    sent.push((*t, to));
                }
            }
            *t += 10;
        }
        sent
    }

    fn spacing(sent: &[(u64, std::net::SocketAddr)]) -> Vec<u64> {
        sent.windows(2).map(|w| w[1].0 - w[0].0).collect()
    }

    /// A member that is down costs one initiation every 8 s once ten have
    /// gone unanswered; when it comes back, its own initiation makes the
    /// session at once, whatever the backoff; and once met, it is greeted
    /// every second again when it needs a handshake.
    #[test]
    fn a_silent_peer_is_greeted_less_often_and_a_returning_one_at_once() {
        let mut a = node_with(1, 2, T0, key(1));
        let mut t = T0;
        let gaps = spacing(&initiations(&mut a, &mut t, T0 + 60_000, |_| false));
        assert_eq!(gaps[..10], [1_000; 10], "{gaps:?}");
        assert_eq!(gaps[10..13], [2_000, 4_000, 8_000], "{gaps:?}");
        assert!(gaps[13..].iter().all(|g| *g == 8_000), "{gaps:?}");
        let mut b = node_with(2, 2, t, key(2));
        meet(&mut [(1, &mut a), (2, &mut b)], t);
        let h2 = peer_index(&a, "h2");
        assert!(a.has_session(h2));
        assert!(b.has_session(peer_index(&b, "h1")));
        // h2 goes away for good (a's keepalives go unanswered): the
        // initiations that follow, into and past the session's lifetime,
        // are a second apart, for as long as it takes.
        let until = t + 600_000;
        let again = initiations(&mut a, &mut t, until, |_| false);
        let gaps = spacing(&again);
        assert!(gaps.len() > 100, "{} initiations", again.len());
        assert!(gaps.iter().all(|g| *g <= 1_000), "{gaps:?}");
    }

    /// A new address for a member in backoff (DNS moved it) is tried at
    /// once, not when the backoff for the old one says.
    #[test]
    fn a_member_that_moves_is_greeted_at_its_new_address_at_once() {
        let mut a = node_with(1, 2, T0, key(1));
        let mut t = T0;
        // Initiations went at 32 s and go next at 40 s.
        initiations(&mut a, &mut t, T0 + 36_000, |_| false);
        let moved: std::net::SocketAddr = "192.0.2.77:7112".parse().expect("addr");
        let h2 = peer_index(&a, "h2");
        a.set_path(h2, 0, Some(moved));
        let first = initiations(&mut a, &mut t, T0 + 37_000, |s| !s.is_empty());
        let &(at, to) = first
            .first()
            .expect("an initiation within a second of the move");
        assert_eq!(to, moved);
        assert!(
            at <= T0 + 36_000 + 100,
            "sent {} ms after the move",
            at - T0 - 36_000
        );
    }

    #[test]
    fn rewritten_session_indices_are_refused() {
        let (mut a, mut b) = (node_with(1, 2, T0, key(1)), node_with(2, 2, T0, key(2)));
        let mut out = [0u8; MAX_DATAGRAM];
        let (len, _, _) = a.poll_hello(T0, &mut out).expect("initiation");
        let mut init = out[..len].to_vec();
        init[8] ^= 1;
        resign(&mut init, 2);
        let mut resp = [0u8; MAX_DATAGRAM];
        assert_eq!(
            b.from_net(&mut init, endpoint(1), T0, &mut resp),
            Inbound::Drop(DropReason::BadAuth)
        );
        // And in a response.
        let (len, _, _) = a.poll_hello(T0 + super::RETRY_MS, &mut out).expect("retry");
        let mut init = out[..len].to_vec();
        let Inbound::Reply { len, .. } =
            b.from_net(&mut init, endpoint(1), T0 + super::RETRY_MS, &mut resp)
        else {
            panic!("not answered");
        };
        let mut r = resp[..len].to_vec();
        r[9] ^= 1;
        resign(&mut r, 1);
        assert_eq!(
            a.from_net(&mut r, endpoint(2), T0 + super::RETRY_MS, &mut out),
            Inbound::Drop(DropReason::BadAuth)
        );
        assert!(!a.has_session(peer_index(&a, "h2")));
    }

    #[test]
    fn replayed_stale_initiations_do_not_make_the_pair_renew_at_will() {
        let (mut a, mut b) = (node_with(1, 2, T0, key(1)), node_with(2, 2, T0, key(2)));
        let log = meet(&mut [(1, &mut a), (2, &mut b)], T0);
        let (_, _, init) = log
            .iter()
            .find(|(from, _, d)| *from == 1 && d[1] == Kind::Initiation as u8)
            .expect("node 1's initiation")
            .clone();
        let mut out = [0u8; MAX_DATAGRAM];
        let mut started = 0;
        // Ten seconds of one replay every 100 ms.
        for k in 1..=100u64 {
            let t = T0 + k * 100;
            let mut d = init.clone();
            assert_eq!(
                b.from_net(&mut d, endpoint(1), t, &mut out),
                Inbound::Drop(DropReason::StaleHandshake)
            );
            while let Some((len, _, _)) = b.poll_hello(t, &mut out) {
                if out[1] == Kind::Initiation as u8 {
                    started += 1;
                    let mut m = out[..len].to_vec();
                    let mut r = [0u8; MAX_DATAGRAM];
                    if let Inbound::Reply { len, .. } = a.from_net(&mut m, endpoint(2), t, &mut r) {
                        let mut back = r[..len].to_vec();
                        let _ = b.from_net(&mut back, endpoint(1), t, &mut out);
                    }
                }
            }
        }
        assert!(started <= 2, "{started} handshakes in 10 s of replays");
    }

    #[test]
    fn a_lost_confirmation_is_repeated() {
        let (mut a, mut b) = (node_with(1, 2, T0, key(1)), node_with(2, 2, T0, key(2)));
        let mut out = [0u8; MAX_DATAGRAM];
        let mut resp = [0u8; MAX_DATAGRAM];
        let len = answered_initiation(&mut a, &mut b, &mut resp);
        let mut r = resp[..len].to_vec();
        assert_eq!(
            a.from_net(&mut r, endpoint(2), T0, &mut out),
            Inbound::Handled
        );
        // The first keepalive under the new session is lost.
        let (_, p, _) = a
            .poll_hello(T0, &mut out)
            .expect("the confirming keepalive");
        assert_eq!(a.peer_name(p), Some("h2"));
        // It goes again well within a keepalive interval.
        let again = a.poll_timeout().expect("a deadline");
        assert!(again <= T0 + 200, "repeated at {}", again - T0);
        let (len, _, _) = a.poll_hello(again, &mut out).expect("repeated");
        let mut k = out[..len].to_vec();
        assert!(matches!(
            b.from_net(&mut k, endpoint(1), again, &mut resp),
            Inbound::Reply { .. }
        ));
        assert!(
            b.has_session(peer_index(&b, "h1")),
            "b promoted the session"
        );
    }

    #[test]
    fn an_unanswered_renewal_does_not_spin_the_loop() {
        let (mut a, mut b) = (node_with(1, 2, T0, key(1)), node_with(2, 2, T0, key(2)));
        meet(&mut [(1, &mut a), (2, &mut b)], T0);
        let mut out = [0u8; MAX_DATAGRAM];
        // Past renewal time; node 2 has gone away.
        let t = T0 + crate::core::session::REKEY_AFTER_MS + 1;
        a.handle_timeout(t);
        let mut initiations = 0;
        while let Some((_, _, _)) = a.poll_hello(t, &mut out) {
            if out[1] == Kind::Initiation as u8 {
                initiations += 1;
            }
        }
        assert!(initiations <= 1);
        let next = a.poll_timeout().expect("a deadline");
        assert!(next > t, "the loop would wake at once again: {next} <= {t}");
    }

    #[test]
    fn a_datagram_held_back_from_before_a_restart_never_opens() {
        let (mut a, mut b) = (node_with(1, 2, T0, key(1)), node_with(2, 2, T0, key(2)));
        meet(&mut [(1, &mut a), (2, &mut b)], T0);
        let (held, _) = send(&mut a, &vrrp_from(1), T0 + 1);
        // Node 1 restarts; b meets its new run.
        let mut a2 = node_with(1, 2, T0 + 5_000, key(1));
        meet(&mut [(1, &mut a2), (2, &mut b)], T0 + 5_000);
        let (d, _) = send(&mut a2, &vrrp_from(1), T0 + 5_001);
        assert!(recv(&mut b, &d, 1, T0 + 5_001).is_ok());
        assert_eq!(
            recv(&mut b, &held, 1, T0 + 5_002),
            Err(DropReason::NoSession)
        );
    }

    #[test]
    fn junk_without_the_mac_costs_no_diffie_hellman() {
        let mut b = node(2);
        let mut d = vec![0u8; INITIATION_LEN];
        d[..8].copy_from_slice(&[2, 2, 0, 0, 10, 250, 0, 1]);
        let mut out = [0u8; MAX_DATAGRAM];
        for _ in 0..100 {
            let mut m = d.clone();
            assert_eq!(
                b.from_net(&mut m, endpoint(1), T0, &mut out),
                Inbound::Drop(DropReason::BadMac)
            );
        }
        // Refused before the rate limit too: a genuine one still gets in.
        let mut a = node(1);
        let (len, _, _) = a.poll_hello(T0, &mut out).expect("initiation");
        let mut m = out[..len].to_vec();
        assert_eq!(m.len(), INITIATION_LEN);
        let mut reply = [0u8; MAX_DATAGRAM];
        assert!(matches!(
            b.from_net(&mut m, endpoint(1), T0, &mut reply),
            Inbound::Reply { .. }
        ));
        // The MAC is for this receiver only.
        let mut c = node(3);
        let mut m = out[..len].to_vec();
        m[len - MAC_LEN] ^= 1;
        assert_eq!(
            c.from_net(&mut m, endpoint(1), T0, &mut reply),
            Inbound::Drop(DropReason::BadMac)
        );
    }

    #[test]
    fn sessions_renew_without_losing_a_packet() {
        let (mut a, mut b) = (node_with(1, 2, T0, key(1)), node_with(2, 2, T0, key(2)));
        meet(&mut [(1, &mut a), (2, &mut b)], T0);
        let h2 = peer_index(&a, "h2");
        let first = a.peer_stats(h2).expect("h2").sessions;
        // Heartbeats every 100 ms for 5 minutes, keepalives each second.
        let mut lost = 0;
        let mut in_flight = Vec::new();
        for step in 1..=3000u64 {
            let t = T0 + step * 100;
            let (d, _) = send(&mut a, &vrrp_from(1), t);
            // The previous one arrives now: across a renewal too.
            if let Some(prev) = in_flight.pop()
                && recv(&mut b, &prev, 1, t).is_err()
            {
                lost += 1;
            }
            in_flight.push(d);
            if step % 10 == 0 {
                a.handle_timeout(t);
                b.handle_timeout(t);
                exchange(&mut a, 1, &mut b, 2, t);
                exchange(&mut b, 2, &mut a, 1, t);
            }
        }
        assert_eq!(lost, 0);
        let renewed = a.peer_stats(h2).expect("h2").sessions - first;
        assert!(
            (2..=3).contains(&renewed),
            "{renewed} renewals in {} s",
            300_000 / REKEY_AFTER_MS
        );
        assert_eq!(b.counters().drops.get(DropReason::NoSession), 0);
    }

    #[test]
    fn a_restarted_peer_is_heard_after_one_round_trip() {
        let (mut a, mut b) = (node_with(1, 2, T0, key(1)), node_with(2, 2, T0, key(2)));
        meet(&mut [(1, &mut a), (2, &mut b)], T0);
        let t = T0 + 5_000;
        let mut b2 = node_with(2, 2, t, key(2));
        // b2's initiation, a's response: one round trip.
        let mut out = [0u8; MAX_DATAGRAM];
        let (len, _, _) = b2.poll_hello(t, &mut out).expect("b2 initiates at once");
        let mut init = out[..len].to_vec();
        let mut resp = [0u8; MAX_DATAGRAM];
        let Inbound::Reply { len, .. } = a.from_net(&mut init, endpoint(2), t, &mut resp) else {
            panic!("a does not answer the restarted peer");
        };
        let mut resp = resp[..len].to_vec();
        assert_eq!(
            b2.from_net(&mut resp, endpoint(1), t, &mut out),
            Inbound::Handled
        );
        // b2's first advert is injected at a: a opens it on the new session.
        let (d, _) = send(&mut b2, &vrrp_from(2), t);
        assert!(recv(&mut a, &d, 2, t).is_ok());
        // And a's adverts reach b2 from then on.
        let (d, _) = send(&mut a, &vrrp_from(1), t);
        assert!(recv(&mut b2, &d, 1, t).is_ok());
    }

    #[test]
    fn a_peer_restarted_with_its_clock_behind_is_heard_again() {
        let (mut a, mut b) = (node_with(1, 2, T0, key(1)), node_with(2, 2, T0, key(2)));
        meet(&mut [(1, &mut a), (2, &mut b)], T0);
        // b restarts with its wall clock 5 s behind a's last look at it:
        // its initiations are older than the last a accepted.
        let mono = T0 + 1_000;
        let behind = Now::new(mono, (T0 - 5_000) as i64);
        let mut b2 = node_with(2, 2, T0 - 5_000, key(2));
        let mut out = [0u8; MAX_DATAGRAM];
        let (len, _, _) = b2.poll_hello(behind, &mut out).expect("initiation");
        let mut init = out[..len].to_vec();
        let mut resp = [0u8; MAX_DATAGRAM];
        assert_eq!(
            a.from_net(&mut init, endpoint(2), mono, &mut resp),
            Inbound::Drop(DropReason::StaleHandshake)
        );
        // a starts a handshake of its own, which b2 can answer.
        let (len, p, _) = a.poll_hello(mono, &mut out).expect("a initiates");
        assert_eq!(a.peer_name(p), Some("h2"));
        let mut init = out[..len].to_vec();
        let Inbound::Reply { len, .. } = b2.from_net(&mut init, endpoint(1), behind, &mut resp)
        else {
            panic!("b2 does not answer");
        };
        let mut r = resp[..len].to_vec();
        assert_eq!(
            a.from_net(&mut r, endpoint(2), mono, &mut out),
            Inbound::Handled
        );
        let (d, _) = send(&mut a, &vrrp_from(1), mono);
        assert!(recv(&mut b2, &d, 1, mono).is_ok());
    }

    #[test]
    fn a_clock_leaping_ahead_ends_every_session() {
        let (mut a, mut b) = (node_with(1, 2, T0, key(1)), node_with(2, 2, T0, key(2)));
        meet(&mut [(1, &mut a), (2, &mut b)], T0);
        let (in_flight, _) = send(&mut a, &vrrp_from(1), T0);
        // A snapshot of a restored: its monotonic clock went on from the
        // snapshot, its wall clock is an hour later.
        let now = Now::new(T0 + 10, (T0 + 3_600_000) as i64);
        let mut sealed = batch();
        a.from_tun(&vrrp_from(1), now, &mut sealed);
        assert!(sealed.is_empty(), "sealed under a session of the snapshot");
        assert_eq!(a.counters().clock_jumps, 1);
        // What was in flight still opens; a new handshake is due at once.
        assert!(recv(&mut b, &in_flight, 1, T0 + 10).is_ok());
        let mut out = [0u8; MAX_DATAGRAM];
        let (len, _, _) = a.poll_hello(now, &mut out).expect("a new handshake");
        assert_eq!(out[1], Kind::Initiation as u8);
        assert_eq!(len, INITIATION_LEN);
    }

    #[test]
    fn a_key_rotates_with_no_gap() {
        let (mut a, mut b) = (node_with(1, 2, T0, key(1)), node_with(2, 2, T0, key(2)));
        meet(&mut [(1, &mut a), (2, &mut b)], T0);
        // Node 1 gets a new key; node 2's cluster file is reloaded with it
        // first: the current session carries on.
        let mut specs = peer_specs(2, 2, true);
        specs[0].public_key = Some(public_key(11));
        let allow = b.policy.allow.clone();
        b.reconfigure(Reload {
            peers: specs,
            allow,
            max_clock_skew_ms: SKEW,
            inject_rate_limit: 5_000,
            keepalive_ms: 1000,
            redundancy: Redundancy::default(),
        });
        let h1 = peer_index(&b, "h1");
        assert!(b.has_session(h1), "the reload ended the session");
        let (d, _) = send(&mut a, &vrrp_from(1), T0 + 1);
        assert!(recv(&mut b, &d, 1, T0 + 1).is_ok());
        // The old key can no longer start a session.
        let mut old = node_with(1, 2, T0 + 10, key(1));
        let mut out = [0u8; MAX_DATAGRAM];
        let (len, _, _) = old.poll_hello(T0 + 10, &mut out).expect("initiation");
        let mut init = out[..len].to_vec();
        let mut reply = [0u8; MAX_DATAGRAM];
        assert_eq!(
            b.from_net(&mut init, endpoint(1), T0 + 10, &mut reply),
            Inbound::Drop(DropReason::WrongKey)
        );
        // Node 1 restarts with its new key: heard again after one
        // handshake.
        let mut a2 = node_with(1, 2, T0 + 20, Security::Authenticated(private_key(11)));
        meet(&mut [(1, &mut a2), (2, &mut b)], T0 + 20);
        let (after, _) = send(&mut a2, &vrrp_from(1), T0 + 21);
        assert!(recv(&mut b, &after, 1, T0 + 21).is_ok());
        assert!(b.peer_stats(h1).expect("h1").sessions >= 2);
        assert_eq!(
            b.counters().drops.get(DropReason::WrongKey),
            1,
            "only the old key's"
        );
    }

    #[test]
    fn a_removed_member_is_cut_off_at_once() {
        let (mut a, mut b, mut c) = cluster3();
        let specs: Vec<_> = peer_specs(2, 3, true)
            .into_iter()
            .filter(|p| p.name != "h3")
            .collect();
        let allow = b.policy.allow.clone();
        b.reconfigure(Reload {
            peers: specs,
            allow,
            max_clock_skew_ms: SKEW,
            inject_rate_limit: 5_000,
            keepalive_ms: 1000,
            redundancy: Redundancy::default(),
        });
        let (d, _) = send(&mut c, &vrrp_from(3), T0 + 1);
        assert_eq!(recv(&mut b, &d, 3, T0 + 1), Err(DropReason::UnknownSender));
        let (d, _) = send(&mut a, &vrrp_from(1), T0 + 1);
        assert!(recv(&mut b, &d, 1, T0 + 1).is_ok());
    }
}
