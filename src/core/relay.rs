//! The sans-IO core's façade: bytes in, decisions out. No sockets, no clock
//! (time is passed in), no allocation per packet.
//!
//! * [`Relay::from_tun`] takes a packet the local failover tool sent on the
//!   interface and either seals it, once per copy and path of each target
//!   peer under that peer's session, into a caller-owned [`Datagrams`]
//!   batch with a [`Target`] (every peer, or the one peer it is addressed
//!   to), or drops it. Later rounds of copies are held back and come out
//!   of [`Relay::poll_later`] when due.
//! * [`Relay::from_net`] takes a datagram from the network and either names
//!   the byte range of the original packet to write into the interface,
//!   answers a handshake or keepalive, or drops it. The checks run cheapest
//!   first (length, version, sender, session index, replay window; for
//!   handshakes the MAC and the rate limits) so that junk costs no crypto;
//!   a session's window only moves after authentication under its key.
//! * [`Relay::poll_hello`] sends handshakes and keepalives;
//!   [`Relay::poll_timeout`] says when to wake without traffic and
//!   [`Relay::handle_timeout`] what to do then; [`Relay::poll_event`]
//!   tells what happened (peers confirmed or unreachable, split brains,
//!   quorum), since the core neither logs nor touches the interface.
//!
//! Time comes in as a [`Now`]: a monotonic part for every timer and a wall
//! part for handshake timestamps only. Peers are named by [`PeerId`], their
//! wire id.
//!
//! In tap mode ([`Link::Ethernet`]) the same rules apply to the IP packet
//! inside each frame, and the frame itself must agree: allowed EtherTypes,
//! the sender's own MAC, a destination MAC that fits the IP destination.
//!
//! The work is done by one module per concern: `peers` (the table),
//! `session` (a peer's sessions: seal, open, replay, renewal), `handshake`
//! (which Noise handshakes to start and accept), `keepalive` (pings and
//! reachability), `paths` (a peer's endpoints and their health), `copies`
//! (redundancy), `batch` (the datagrams of one packet), `policy` and `tap` (what
//! may be carried), `rate` (the injection budget), `timers`, `events`, and
//! the advert watch and quorum.

use std::net::SocketAddr;

use crate::core::allow::AllowList;
pub use crate::core::batch::Datagrams;
use crate::core::copies::Later;
pub use crate::core::copies::Redundancy;
use crate::core::counters::{Counters, DropReason};
pub use crate::core::events::Event;
use crate::core::events::Events;
use crate::core::handshake::Handshake;
pub use crate::core::paths::{PathHealth, PathStats};
use crate::core::peers::Peers;
pub use crate::core::peers::{Node, NodeAddrs, PeerId, PeerSpec, PeerStats};
use crate::core::policy::Policy;
use crate::core::quorum::Quorum;
use crate::core::session::{Plain, Slot, prefix};
use crate::core::tap::FrameIp;
pub use crate::core::time::Now;
use crate::core::vip::{self, Claims};
use crate::core::vrrp_watch::{self, Router, Watch};
use crate::proto::keys::{PrivateKey, PublicKey};
use crate::proto::overlay::broadcast_v4;
use crate::proto::wire::{
    FLAG_FRAME, FLAG_PLAINTEXT, HEADER_LEN, Header, KEEPALIVE_LEN, Kind, Prefix, TAG_LEN, WireError,
};

/// Bytes the relay adds to an inner packet (header and tag).
pub const OVERHEAD: usize = HEADER_LEN + TAG_LEN;

/// What the interface carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Link {
    /// tun: IP packets.
    #[default]
    Ip,
    /// tap: Ethernet frames.
    Ethernet,
}

/// Authentication mode.
#[derive(Clone, Debug)]
pub enum Security {
    /// This node's private key; peers' public keys are in their
    /// [`PeerSpec`]s.
    Authenticated(PrivateKey),
    /// `insecure = true`: plaintext with the same header.
    Insecure,
}

/// Everything the core needs to start.
#[derive(Clone, Debug)]
pub struct RelayParams {
    pub local: NodeAddrs,
    pub link: Link,
    /// The overlay IPv4 prefix length shared by all nodes.
    pub prefix_len: u8,
    pub peers: Vec<PeerSpec>,
    pub allow: AllowList,
    pub security: Security,
    /// Random per start: tells peers that this is a new run (their
    /// `PeerRestarted` event), and seeds session indices.
    pub run: u64,
    /// Largest accepted difference between a handshake's timestamp and
    /// our clock.
    pub max_clock_skew_ms: u64,
    /// Packets per second each peer may have written into the interface
    /// (bursts up to one second's worth); 0 means no limit.
    pub inject_rate_limit: u32,
    /// Keepalive interval to peers with a session, ms; 0: none.
    pub keepalive_ms: u64,
    /// `node.quorum`: tell when this node is, or stops being, part of a
    /// majority of the cluster's relays ([`Event::QuorumLost`]).
    pub quorum: bool,
    /// Copies per packet, their spacing, and the use of several paths.
    pub redundancy: Redundancy,
    /// `[[vip]]`: the virtual routers whose sole mastership is reported
    /// ([`Event::Vip`]).
    pub vips: Vec<vip::Rule>,
}

/// What a configuration reload may change in the core.
#[derive(Clone, Debug)]
pub struct Reload {
    pub peers: Vec<PeerSpec>,
    pub allow: AllowList,
    pub max_clock_skew_ms: u64,
    pub inject_rate_limit: u32,
    pub keepalive_ms: u64,
    pub redundancy: Redundancy,
}

/// Where a packet from the interface goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Every peer: multicast and broadcast.
    All,
    /// One peer: unicast to its overlay address.
    Peer(PeerId),
}

/// The decision for a packet read from the interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outbound {
    /// Send the datagrams now in the batch, one per peer of `target` that
    /// has a session and an endpoint (those without are counted).
    Send {
        target: Target,
    },
    Drop(DropReason),
}

/// The decision for a datagram read from the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inbound {
    /// Write `buf[start..start + len]` into the interface; it came from
    /// peer `peer`.
    Inject {
        start: usize,
        len: usize,
        peer: PeerId,
    },
    /// Send the first `len` bytes of the output buffer (a handshake
    /// response or a keepalive echo) to `to`, one of peer `peer`'s
    /// configured endpoints (the one the datagram came from, if it is
    /// one) — never to a source that is not configured, so a spoofed
    /// source cannot aim answers at a victim.
    Reply {
        len: usize,
        peer: PeerId,
        to: SocketAddr,
    },
    /// A handshake or keepalive message, fully handled.
    Handled,
    Drop(DropReason),
}

/// The relay's state machine.
pub struct Relay {
    pub(super) link: Link,
    pub(super) peers: Peers,
    pub(super) policy: Policy,
    pub(super) handshake: Handshake,
    /// Insecure mode's counter (the run is the handshake's).
    plain_counter: u64,
    pub(super) max_skew_ms: u64,
    inject_rate: u32,
    pub(super) keepalive_ms: u64,
    pub(super) counters: Counters,
    /// Who is master of which virtual router, from the adverts relayed.
    pub(super) watch: Watch,
    pub(super) events: Events,
    /// With `node.quorum`: the carrier decisions.
    pub(super) quorum: Option<Quorum>,
    /// A decision is due at once (see [`Timer::Recheck`](crate::core::Timer::Recheck)).
    pub(super) recheck: bool,
    pub(super) redundancy: Redundancy,
    /// The later rounds of copies, sealed, until they are due.
    pub(super) later: Later,
    /// `[[vip]]`: where this node stands with each, and the alarms its
    /// peers report.
    pub(super) claims: Claims,
    /// Counts the changes of this relay's own alarms, so each peer is told
    /// of the latest (its `view_sent`).
    pub(super) alarm_epoch: u64,
    /// Whether any of this relay's own alarms is raised now.
    pub(super) alarms_up: bool,
}

impl Relay {
    pub fn new(p: RelayParams) -> Self {
        let claims = Claims::new(&p.vips, p.peers.len());
        let vip_routers: Vec<_> = claims.routers().collect();
        let key = match p.security {
            Security::Authenticated(k) => Some(k),
            Security::Insecure => None,
        };
        Relay {
            link: p.link,
            peers: Peers::new(p.peers, p.inject_rate_limit),
            policy: Policy::new(p.local, broadcast_v4(p.local.v4, p.prefix_len), p.allow),
            handshake: Handshake::new(key, p.run),
            plain_counter: 0,
            max_skew_ms: p.max_clock_skew_ms,
            inject_rate: p.inject_rate_limit,
            keepalive_ms: p.keepalive_ms,
            counters: Counters::default(),
            watch: Watch::reserving(&vip_routers),
            events: Events::default(),
            quorum: p.quorum.then(Quorum::default),
            // The first quorum decision is due at once.
            recheck: p.quorum,
            redundancy: p.redundancy,
            later: Later::default(),
            claims,
            alarm_epoch: 0,
            alarms_up: false,
        }
    }

    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// The configured peers, in configuration order.
    pub fn peers(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.peers.ids()
    }

    /// Peer `id`'s name; `None` if it is not (or no longer) configured.
    pub fn peer_name(&self, id: PeerId) -> Option<&str> {
        self.peers.get(id).map(|p| p.spec.name.as_str())
    }

    pub fn peer_stats(&self, id: PeerId) -> Option<PeerStats> {
        self.peers.get(id).map(|p| p.stats)
    }

    /// Whether a session with peer `id` is in use (we can seal for it).
    pub fn has_session(&self, id: PeerId) -> bool {
        self.peers.get(id).is_some_and(|p| p.sessions.has_current())
    }

    /// This node's overlay addresses.
    pub fn local_addrs(&self) -> NodeAddrs {
        self.policy.local
    }

    /// This node's public key; `None` in insecure mode.
    pub fn public_key(&self) -> Option<PublicKey> {
        self.handshake.public()
    }

    /// Where peer `id`'s first path goes; `None` if not resolved (or
    /// unknown).
    pub fn endpoint(&self, id: PeerId) -> Option<SocketAddr> {
        self.path_addr(id, 0)
    }

    /// Records where peer `id`'s first path goes (after resolution); an id
    /// no longer configured is ignored.
    pub fn set_endpoint(&mut self, id: PeerId, addr: Option<SocketAddr>) {
        self.set_path(id, 0, addr);
    }

    /// Where path `k` of peer `id` goes.
    pub fn path_addr(&self, id: PeerId, k: usize) -> Option<SocketAddr> {
        self.peers.get(id).and_then(|p| p.paths.addr(k))
    }

    /// Records where path `k` (its `k`-th endpoint) of peer `id` goes. A
    /// new address starts the path's measurements afresh.
    pub fn set_path(&mut self, id: PeerId, k: usize, addr: Option<SocketAddr>) {
        if let Some(p) = self.peers.get_mut(id) {
            if addr.is_some() && p.paths.addr(k) != addr {
                p.hs.moved();
            }
            p.paths.set(k, addr);
        }
    }

    /// Keeps peer `id`'s first `n` paths (its endpoints after a reload).
    pub fn truncate_paths(&mut self, id: PeerId, n: usize) {
        if let Some(p) = self.peers.get_mut(id) {
            p.paths.truncate(n);
        }
    }

    /// Peer `id`'s paths: address, measurements and health now.
    pub fn paths(
        &self,
        id: PeerId,
        now: impl Into<Now>,
    ) -> impl Iterator<Item = (Option<SocketAddr>, PathStats, PathHealth)> + '_ {
        let now_ms = now.into().mono_ms;
        let (window, timeout) = (self.reachability_window(), self.ping_timeout_ms());
        self.peers.get(id).into_iter().flat_map(move |p| {
            (0..p.paths.len()).filter_map(move |k| {
                let path = p.paths.get(k)?;
                let health = p.paths.health(k, now_ms, window, timeout);
                Some((path.addr, path.stats, health))
            })
        })
    }

    /// The peer named `name`.
    pub fn peer_by_name(&self, name: &str) -> Option<PeerId> {
        self.peers.by_name(name)
    }

    /// Applies a reloaded configuration. A peer whose name and overlay
    /// addresses are unchanged keeps everything: its endpoint, sessions,
    /// replay windows and rate-limit bucket, so not one of its packets is
    /// lost; a new public key of its takes effect at its next handshake. A
    /// removed peer's sessions end at once; a new or readdressed one starts
    /// afresh with a handshake.
    pub fn reconfigure(&mut self, r: Reload) {
        let peers = std::mem::replace(&mut self.peers, Peers::new(Vec::new(), 0));
        self.peers = peers.reconfigured(r.peers, r.inject_rate_limit);
        self.handshake.cursor = 0;
        self.policy.allow = r.allow;
        self.max_skew_ms = r.max_clock_skew_ms;
        self.inject_rate = r.inject_rate_limit;
        self.keepalive_ms = r.keepalive_ms;
        self.redundancy = r.redundancy;
        let peers = &self.peers;
        self.later.forget(|id| peers.index_of(id).is_some());
        self.claims
            .reports
            .retain(|id| peers.index_of(id).is_some());
        self.claims.reports.reserve(self.peers.len());
        // The count and the window may have changed.
        self.recheck = true;
    }

    /// Changes how packets are copied and spread over paths, from the next
    /// packet on (copies already held still go).
    pub fn set_redundancy(&mut self, r: Redundancy) {
        self.redundancy = r;
    }

    /// The virtual routers seen in the adverts relayed, both ways.
    pub fn routers(&self) -> &[Router] {
        self.watch.routers()
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Counts a drop decided by the I/O layer (send or write failures).
    pub fn count_drop(&mut self, r: DropReason) {
        self.counters.drops.add(r);
    }

    /// Counts a datagram of `len` bytes handed to the kernel for peer `id`.
    pub fn count_sent(&mut self, id: PeerId, len: usize) {
        self.counters.sent += 1;
        if let Some(p) = self.peers.get_mut(id) {
            p.stats.sent += 1;
            p.stats.sent_bytes += len as u64;
        }
    }

    /// Decides what to do with a packet read from the interface; when it
    /// is to be sent, seals it once per target peer (each under that
    /// peer's session) into `out`.
    pub fn from_tun(
        &mut self,
        packet: &[u8],
        now: impl Into<Now>,
        out: &mut Datagrams,
    ) -> Outbound {
        let now = now.into();
        out.clear();
        self.observe_clock(now);
        let route = match self.link {
            Link::Ip => self
                .policy
                .route_local(&self.peers, packet)
                .map(|(t, inner)| (t, Some((0..packet.len(), inner)))),
            Link::Ethernet => self
                .policy
                .route_local_frame(&self.peers, packet, now.mono_ms),
        };
        let (target, ip) = match route {
            Ok(r) => r,
            Err(r) => return self.drop_out(r),
        };
        if packet.len() + OVERHEAD > out.slot_len() {
            return self.drop_out(DropReason::TooBig);
        }
        match target {
            Target::All => {
                for i in 0..self.peers.len() {
                    self.seal_for(i, packet, now.mono_ms, out);
                }
            }
            Target::Peer(id) => {
                if let Some(i) = self.peers.index_of(id) {
                    self.seal_for(i, packet, now.mono_ms, out);
                }
            }
        }
        self.counters.sealed += 1;
        self.watch_advert(Node::Me, packet, ip, now.mono_ms);
        Outbound::Send { target }
    }

    /// Seals `packet` for peer `i`: one copy per round of redundancy and
    /// path, the first round into the batch, the later ones held back
    /// (into the batch too without spacing, or when too many are held).
    /// Copies are sealed one after another, so copy `k`'s counter is the
    /// first one's plus `k`.
    fn seal_for(&mut self, i: usize, packet: &[u8], now_ms: u64, out: &mut Datagrams) {
        let frames = if self.link == Link::Ethernet {
            FLAG_FRAME
        } else {
            0
        };
        let me = self.policy.local.id();
        let authenticated = self.handshake.authenticated();
        let run = self.handshake.run as u32;
        let (window, timeout) = (self.reachability_window(), self.ping_timeout_ms());
        let red = self.redundancy;
        let peer = &mut self.peers[i];
        let paths = peer.paths.select(red.path_mode, now_ms, window, timeout);
        if paths.is_empty() {
            self.counters.drops.add(DropReason::PeerUnresolved);
            return;
        }
        let id = peer.spec.addrs.peer_id();
        let mut copy = 0u8;
        for round in 0..red.rounds() {
            for k in paths.iter() {
                let Some(to) = peer.paths.addr(k) else {
                    continue;
                };
                let held = if round > 0 && red.spacing_ms > 0 {
                    self.later.room(round, packet.len() + OVERHEAD)
                } else {
                    None
                };
                let (slot, room) = match held {
                    Some((slot, room)) => (Some(slot), room),
                    None => (None, out.next_slot()),
                };
                let flags = if authenticated {
                    frames
                } else {
                    frames | FLAG_PLAINTEXT
                };
                let pre = Prefix {
                    copy,
                    ..prefix(Kind::Data, flags, me)
                };
                let sealed = if authenticated {
                    peer.sessions.seal(pre, packet, now_ms, room)
                } else {
                    self.plain_counter += 1;
                    Plain::seal(pre, run, self.plain_counter, packet, room)
                };
                match (sealed, slot) {
                    (Ok(len), Some(slot)) => {
                        let due = now_ms + u64::from(round) * red.spacing_ms;
                        self.later.hold(round, slot, len, due, id, to);
                    }
                    (Ok(len), None) => out.commit(id, to, len),
                    (Err(r), slot) => {
                        if let Some(slot) = slot {
                            self.later.release(slot);
                        }
                        if r == DropReason::NoSession {
                            // No session yet (or any more): one is on its way.
                            peer.hs.want(now_ms);
                        }
                        self.counters.drops.add(r);
                        return;
                    }
                }
                peer.paths.count_sent(k);
                copy += 1;
            }
        }
    }

    /// The held copies due by `now`, into `out` (cleared first): call when
    /// [`Timer::Copies`](crate::core::Timer::Copies) fires. Returns
    /// whether there is anything to send.
    pub fn poll_later(&mut self, now: impl Into<Now>, out: &mut Datagrams) -> bool {
        out.clear();
        self.later.take_due(now.into().mono_ms, out);
        !out.is_empty()
    }

    /// Shows the advert watch a packet relayed from `node`, if an IP
    /// packet (`packet[ip.0]`) was in it.
    fn watch_advert(&mut self, node: Node, packet: &[u8], ip: FrameIp, now_ms: u64) {
        let Some((range, inner)) = ip else { return };
        let Some(a) = vrrp_watch::parse_inner(&packet[range], &inner) else {
            return;
        };
        if let Some(alarm) = self.watch.record(node, a, now_ms) {
            self.events.push(Event::SplitBrain(alarm));
            self.alarms_changed();
        }
        self.advert_seen(node, &a, now_ms);
    }

    fn drop_out(&mut self, r: DropReason) -> Outbound {
        self.counters.drops.add(r);
        Outbound::Drop(r)
    }

    /// Decides what to do with a datagram from `from`, opening it in place.
    /// A handshake response or keepalive echo is written into `out` (room
    /// for [`RESPONSE_LEN`](crate::proto::wire::RESPONSE_LEN) bytes).
    pub fn from_net(
        &mut self,
        buf: &mut [u8],
        from: SocketAddr,
        now: impl Into<Now>,
        out: &mut [u8],
    ) -> Inbound {
        match self.open(buf, from, now.into(), out) {
            Ok(inbound) => inbound,
            Err(r) => {
                self.counters.drops.add(r);
                Inbound::Drop(r)
            }
        }
    }

    /// The receive path, step by step: the prefix and who it claims to be
    /// from; handshakes to the handshake; for data and keepalives the
    /// checks that cost no crypto (session, replay), authentication, then
    /// keepalives to the keepalive and data to the rules.
    fn open(
        &mut self,
        buf: &mut [u8],
        from: SocketAddr,
        now: Now,
        out: &mut [u8],
    ) -> Result<Inbound, DropReason> {
        let (i, p) = self.screen(buf, from)?;
        if !p.kind.is_transport() {
            return self.on_handshake(i, &p, buf, from, now, out);
        }
        let h = Header::parse(p, buf);
        let now_ms = now.mono_ms;
        let data = h.prefix.kind == Kind::Data;
        let (plain_len, first) = if self.handshake.authenticated() {
            let peer = &mut self.peers[i];
            let slot = peer.sessions.screen(&h, now_ms)?;
            let len = peer.sessions.open(slot, &h, buf)?;
            // Authenticated: from here on the datagram may move the
            // peer's state.
            let first = !data || peer.sessions.first_copy(slot, &h)?;
            if slot == Slot::Next
                && let Some(run) = peer.sessions.promote_next()
            {
                self.session_up(i, run);
            }
            (len, first)
        } else {
            let plain = &mut self.peers[i].plain;
            plain.accept(&h)?;
            (buf.len() - HEADER_LEN, plain.first_copy(&h)?)
        };
        let stats = &mut self.peers[i].stats;
        stats.last_heard_ms = Some(now_ms);
        let body = &buf[HEADER_LEN..HEADER_LEN + plain_len];
        if h.prefix.kind == Kind::View {
            return self.on_view(i, body, now_ms);
        }
        if !data {
            let mut ping = [0u8; KEEPALIVE_LEN];
            let n = body.len().min(KEEPALIVE_LEN);
            ping[..n].copy_from_slice(&body[..n]);
            return self.on_keepalive(i, body.len(), ping, from, now_ms, out);
        }
        stats.copies_received += 1;
        if !first {
            return Err(DropReason::Duplicate);
        }
        stats.first_copies += 1;
        if h.prefix.copy > 0 {
            stats.saved_by_copies += 1;
        }
        let ip = self.admit(i, &h, body, now_ms)?;
        // Counted here, where the peer's place in the table is known,
        // rather than looked up again by its id.
        self.counters.injected += 1;
        let stats = &mut self.peers[i].stats;
        stats.injected += 1;
        stats.injected_bytes += plain_len as u64;
        let peer = self.peers.id_at(i);
        self.watch_advert(Node::Peer(peer), body, ip, now_ms);
        Ok(Inbound::Inject {
            start: HEADER_LEN,
            len: plain_len,
            peer,
        })
    }

    /// The prefix, its sender among our peers, the mode, and (in insecure
    /// mode, where nothing else vouches for it) the source address.
    fn screen(&self, buf: &[u8], from: SocketAddr) -> Result<(usize, Prefix), DropReason> {
        let p = Prefix::parse(buf).map_err(|e| match e {
            WireError::Malformed => DropReason::Malformed,
            WireError::UnknownVersion => DropReason::UnknownVersion,
        })?;
        let i = self
            .peers
            .by_sender(p.sender)
            .ok_or(DropReason::UnknownSender)?;
        let insecure = !self.handshake.authenticated();
        if p.is_plaintext() != insecure || (insecure && p.kind != Kind::Data) {
            return Err(DropReason::ModeMismatch);
        }
        if insecure && !self.peers[i].paths.has_ip(from.ip()) {
            return Err(DropReason::WrongEndpoint);
        }
        Ok((i, p))
    }

    /// Authenticated data of the peer's session: the link, the rules, the
    /// injection budget; in tap mode its source MAC is learned. Returns
    /// the IP packet in it, parsed.
    fn admit(
        &mut self,
        i: usize,
        h: &Header,
        inner: &[u8],
        now_ms: u64,
    ) -> Result<FrameIp, DropReason> {
        if h.prefix.carries_frames() != (self.link == Link::Ethernet) {
            return Err(DropReason::LinkMismatch);
        }
        let from = &self.peers[i].spec.addrs;
        let (sender_mac, ip) = match self.link {
            Link::Ip => (
                None,
                Some((0..inner.len(), self.policy.check(from, inner)?)),
            ),
            Link::Ethernet => {
                let (mac, ip) = self.policy.check_frame(from, inner)?;
                (Some(mac), ip)
            }
        };
        if !self.peers[i].bucket.take(self.inject_rate, now_ms) {
            // Counted per peer too: which peer floods matters.
            self.peers[i].stats.rate_limited += 1;
            return Err(DropReason::RateLimited);
        }
        if let Some(mac) = sender_mac {
            self.peers.learn(i, mac, now_ms);
        }
        Ok(ip)
    }

    /// Seals `payload` as `kind` for peer `peer` under its session with
    /// none of the local checks: what a member could send if it bypassed
    /// its own rules, for the tests and fuzz targets that play one.
    #[cfg(any(test, feature = "testing"))]
    pub fn seal_unchecked(
        &mut self,
        peer: PeerId,
        kind: Kind,
        payload: &[u8],
        now_ms: u64,
        out: &mut [u8],
    ) -> Result<usize, DropReason> {
        let frames = if self.link == Link::Ethernet {
            FLAG_FRAME
        } else {
            0
        };
        let me = self.policy.local.id();
        let i = self.peers.index_of(peer).ok_or(DropReason::UnknownSender)?;
        self.peers[i]
            .sessions
            .seal(prefix(kind, frames, me), payload, now_ms, out)
    }

    /// The verdict [`Relay::from_net`] gives an authenticated inner packet
    /// from peer `peer`: it must parse, come from that peer's own overlay
    /// address and go where this node and the allow rules accept it.
    /// Changes no state; public so the `classify` fuzz target can reach
    /// the receive-side classifier without sealing every input.
    pub fn classify_inbound(&self, peer: PeerId, packet: &[u8]) -> Result<(), DropReason> {
        let from = &self
            .peers
            .get(peer)
            .ok_or(DropReason::UnknownSender)?
            .spec
            .addrs;
        match self.link {
            Link::Ethernet => self.policy.check_frame(from, packet).map(|_| ()),
            Link::Ip => self.policy.check(from, packet).map(|_| ()),
        }
    }
}

#[cfg(test)]
mod tests {

    use crate::core::counters::DropReason;
    use crate::core::relay::*;
    use crate::testing::cluster::*;

    use crate::proto::overlay::link_local;
    use crate::proto::packet::PROTO_VRRP;
    use crate::proto::wire::HEADER_LEN;
    use crate::testing::packets as testpkt;

    #[test]
    fn multicast_goes_to_all_and_arrives_byte_exact() {
        let (mut a, mut b, mut c) = cluster3();
        let pkt = vrrp_from(1);
        let (d, target) = send(&mut a, &pkt, T0);
        assert_eq!(target, Target::All);
        assert_eq!(d.len(), 2, "one datagram per peer");
        for n in [2, 3] {
            let one = d.for_node(n);
            assert_eq!(one.len(), pkt.len() + OVERHEAD);
            assert!(
                !one.windows(pkt.len()).any(|w| w == pkt.as_slice()),
                "payload is encrypted"
            );
        }
        // Each peer's copy is sealed under its own session: neither can
        // open the other's.
        assert_ne!(d.for_node(2), d.for_node(3));
        assert_eq!(
            recv(&mut b, d.for_node(3), 1, T0),
            Err(DropReason::NoSession)
        );
        assert_eq!(recv(&mut b, &d, 1, T0).as_deref(), Ok(pkt.as_slice()));
        assert_eq!(recv(&mut c, &d, 1, T0).as_deref(), Ok(pkt.as_slice()));
        assert_eq!(b.counters().injected, 1);
        assert_eq!(
            b.peer_stats(peer_index(&b, "h1")).expect("peer").injected,
            1
        );
    }

    #[test]
    fn unicast_goes_to_its_peer_only() {
        let (mut a, mut b, mut c) = cluster3();
        let token = testpkt::v4_udp(overlay(1), overlay(3), 5405, b"token");
        let (d, target) = send(&mut a, &token, T0);
        assert_eq!(target, Target::Peer(peer_index(&a, "h3")));
        assert_eq!(d.len(), 1, "sealed for node 3 only");
        assert_eq!(recv(&mut c, &d, 1, T0).as_deref(), Ok(token.as_slice()));
        // Node 2 cannot open it, and would not inject a unicast packet
        // addressed to node 3 even if node 1 sealed it for node 2.
        assert_eq!(
            recv(&mut b, d.for_node(3), 1, T0),
            Err(DropReason::NoSession)
        );
        assert_eq!(
            b.classify_inbound(peer_index(&b, "h1"), &token),
            Err(DropReason::Disallowed)
        );
    }

    #[test]
    fn broadcast_and_ipv6_link_local_vrrp() {
        let (mut a, mut b, _) = cluster3();
        let bcast = testpkt::v4_udp(overlay(1), overlay(255), 694, b"hb");
        let (d, t) = send(&mut a, &bcast, T0);
        assert_eq!(t, Target::All);
        assert_eq!(recv(&mut b, &d, 1, T0).as_deref(), Ok(bcast.as_slice()));
        let ll = link_local(overlay(1));
        let adv6 = testpkt::v6(
            ll,
            "ff02::12".parse().expect("ip"),
            PROTO_VRRP,
            &[0x31, 1, 150, 1, 0, 100, 0, 0],
        );
        let (d, t) = send(&mut a, &adv6, T0);
        assert_eq!(t, Target::All);
        assert_eq!(recv(&mut b, &d, 1, T0).as_deref(), Ok(adv6.as_slice()));
    }

    #[test]
    fn unknown_sender_and_wrong_key() {
        let (mut a, mut b, _) = cluster3();
        let (d, _) = send(&mut a, &vrrp_from(1), T0);
        // A node not in the cluster file.
        assert_eq!(
            recv(&mut b, &relabel(d.for_node(2), 9), 9, T0),
            Err(DropReason::UnknownSender)
        );
        // Our own id echoed back is not a peer either.
        assert_eq!(
            recv(&mut b, &relabel(d.for_node(2), 2), 2, T0),
            Err(DropReason::UnknownSender)
        );
        // A relay claiming to be node 1 with another key cannot start a
        // session as node 1.
        let mut fresh = node(2);
        let mut imposter = node_with(1, 3, T0, Security::Authenticated(private_key(99)));
        meet(&mut [(1, &mut imposter), (2, &mut fresh)], T0);
        assert!(fresh.counters().drops.get(DropReason::WrongKey) > 0);
        assert!(!fresh.has_session(peer_index(&fresh, "h1")));
        assert!(!imposter.has_session(peer_index(&imposter, "h2")));
    }

    #[test]
    fn reconfigure_keeps_unchanged_peers_and_greets_new_ones() {
        let (mut a, mut b, mut c) = cluster3();
        let (seen, _) = send(&mut a, &vrrp_from(1), T0);
        assert!(recv(&mut b, &seen, 1, T0).is_ok());
        let allow = b.policy.allow.clone();
        // Node 3 leaves, node 4 joins; node 1 is untouched.
        b.reconfigure(Reload {
            peers: [1u8, 4]
                .iter()
                .map(|&n| PeerSpec {
                    name: format!("h{n}"),
                    addrs: addrs(n),
                    public_key: Some(public_key(n)),
                })
                .collect(),
            allow,
            max_clock_skew_ms: SKEW,
            inject_rate_limit: 5_000,
            keepalive_ms: 1000,
            redundancy: Redundancy::default(),
        });
        let h1 = b.peer_by_name("h1").expect("h1 kept");
        let h4 = b.peer_by_name("h4").expect("h4 added");
        assert_eq!(b.peer_by_name("h3"), None);
        assert_eq!(
            b.endpoint(h1),
            Some(endpoint(1)),
            "a kept peer keeps its endpoint"
        );
        // No handshake needed with node 1: its next packet goes straight in,
        // and the replay window remembers what it had seen.
        let (next, _) = send(&mut a, &vrrp_from(1), T0);
        assert!(recv(&mut b, &next, 1, T0).is_ok());
        assert_eq!(recv(&mut b, &seen, 1, T0), Err(DropReason::Replay));
        // Node 3 is a stranger now.
        let (from3, _) = send(&mut c, &vrrp_from(3), T0);
        assert_eq!(recv(&mut b, &from3, 3, T0), Err(DropReason::UnknownSender));
        // Node 4 gets a handshake once its endpoint is known.
        b.set_endpoint(h4, Some(endpoint(4)));
        let mut out = [0u8; 256];
        let (_, p, _) = b.poll_hello(T0, &mut out).expect("b greets node 4");
        assert_eq!(p, h4);
        assert!(b.poll_hello(T0, &mut out).is_none(), "only node 4 is new");
    }

    #[test]
    fn insecure_mode_is_plaintext_and_checks_endpoints() {
        let mut a = node_with(1, 3, T0, Security::Insecure);
        let mut b = node_with(2, 3, T0, Security::Insecure);
        let pkt = vrrp_from(1);
        let (d, _) = send(&mut a, &pkt, T0);
        let d = d.for_node(2).to_vec();
        assert_eq!(d.len(), HEADER_LEN + pkt.len());
        assert_eq!(&d[HEADER_LEN..], pkt.as_slice());
        assert_eq!(recv(&mut b, &d, 1, T0).as_deref(), Ok(pkt.as_slice()));
        assert_eq!(recv(&mut b, &d, 1, T0), Err(DropReason::Replay));
        let (d, _) = send(&mut a, &pkt, T0);
        assert_eq!(recv(&mut b, &d, 3, T0), Err(DropReason::WrongEndpoint));
        // Mixed modes never interoperate silently.
        let mut secure = node(2);
        assert_eq!(recv(&mut secure, &d, 1, T0), Err(DropReason::ModeMismatch));
        let (mut s1, _, _) = cluster3();
        let (sealed, _) = send(&mut s1, &pkt, T0);
        assert_eq!(recv(&mut b, &sealed, 1, T0), Err(DropReason::ModeMismatch));
        // Nor does a handshake reach an insecure relay.
        let mut init = [0u8; 512];
        let (len, _, _) = node(1).poll_hello(T0, &mut init).expect("an initiation");
        assert_eq!(
            recv(&mut b, &init[..len].to_vec(), 1, T0),
            Err(DropReason::ModeMismatch)
        );
    }

    /// Random bytes and random mutations of a valid datagram never panic
    /// and are never injected; random local packets never panic.
    #[test]
    fn random_and_mutated_input_is_never_injected() {
        let mut seed = 0x1234_5678_9abc_def1u64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let (mut a, mut b, _) = cluster3();
        let mut buf = vec![0u8; 2048];
        for _ in 0..20_000 {
            let len = (rnd() % 200) as usize;
            for x in buf.iter_mut().take(len) {
                *x = rnd() as u8;
            }
            // Half of them get a plausible header so deeper checks run.
            if rnd() % 2 == 0 && len >= HEADER_LEN {
                buf[0] = 2;
                buf[1] = 1 + (rnd() % 4) as u8;
                buf[2] = 0;
                buf[3] = 0;
                buf[4..8].copy_from_slice(&u32::from(overlay(1)).to_be_bytes());
            }
            let mut out = [0u8; 256];
            let got = b.from_net(&mut buf[..len], endpoint(1), T0, &mut out);
            assert!(matches!(got, Inbound::Drop(_)), "random datagram injected");
            let mut out = batch();
            let _ = a.from_tun(&buf[..len], T0, &mut out);
        }
        let (good, _) = send(&mut a, &vrrp_from(1), T0);
        let good = good.for_node(2).to_vec();
        for _ in 0..20_000 {
            let mut m = good.clone();
            let flips = 1 + rnd() % 4;
            for _ in 0..flips {
                let i = (rnd() as usize) % m.len();
                m[i] ^= 1 << (rnd() % 8);
            }
            if rnd() % 5 == 0 {
                m.truncate((rnd() as usize) % m.len());
            }
            if m == good {
                continue;
            }
            assert!(
                recv(&mut b, &m, 1, T0).is_err(),
                "mutated datagram injected"
            );
        }
        assert!(
            recv(&mut b, &good, 1, T0).is_ok(),
            "forgeries disturbed the real stream"
        );
        assert_eq!(b.counters().injected, 1);
    }
}
