//! The sans-IO core: bytes in, decisions out. No sockets, no clock (time is
//! passed in), no allocation per packet.
//!
//! * [`Relay::from_tun`] takes a packet the local failover tool sent on the
//!   interface and either seals it into a caller-owned buffer with a
//!   [`Target`] (every peer, or the one peer it is addressed to) or drops it.
//! * [`Relay::from_net`] takes a datagram from the network and either names
//!   the byte range of the original packet to write into the interface, or
//!   drops it. The checks run cheapest first (length, version, sender,
//!   clock, replay window) so that junk costs no crypto; the replay window
//!   and a peer's epoch only move after authentication.
//!
//! In tap mode ([`Link::Ethernet`]) the same rules apply to the IP packet
//! inside each frame, and the frame itself must agree: allowed EtherTypes,
//! the sender's own MAC, a destination MAC that fits the IP destination.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::core::allow::{AllowList, DestKind};
use crate::core::counters::{Counters, DropReason};
use crate::core::replay::ReplayWindow;
use crate::proto::crypto::{Challenger, ClusterKey, KeySchedule, StreamKey};
use crate::proto::frame::{self, Body, Frame, FrameError, Mac};
use crate::proto::overlay::{broadcast_v4, is_broadcast, link_local};
use crate::proto::packet::{self, Inner};
use crate::proto::wire::{
    FLAG_FRAME, FLAG_PLAINTEXT, HEADER_LEN, HELLO_LEN, HELLO_WANT_REPLY, Header, Hello, Kind,
    TAG_LEN, WireError,
};

/// Bytes the relay adds to an inner packet (header and tag).
pub const OVERHEAD: usize = HEADER_LEN + TAG_LEN;
/// Bytes a hello takes on the wire; `out` buffers must hold at least this.
pub const HELLO_DATAGRAM: usize = HEADER_LEN + HELLO_LEN + TAG_LEN;
/// How often an unanswered hello is repeated.
const HELLO_RETRY_MS: u64 = 1_000;
/// Closest spacing of hellos to one peer, and of answers to one peer, so a
/// key holder's flood of new epochs cannot make us flood back.
const HELLO_SPACING_MS: u64 = 100;
/// Hellos to one peer that may be awaiting an answer at once (retries).
const AWAITING: usize = 4;
/// MAC addresses other than its own a peer may be learned to send from
/// (virtual-router MACs: one per VRID/VHID it is master of).
const LEARNED_PER_PEER: usize = 4;
/// A learned MAC not heard from for this long is forgotten, and unicast
/// to it goes to every peer again.
const LEARNED_TTL_MS: u64 = 300_000;

/// What the interface carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Link {
    /// tun: IP packets.
    #[default]
    Ip,
    /// tap: Ethernet frames.
    Ethernet,
}

/// A node's overlay addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeAddrs {
    pub v4: Ipv4Addr,
    pub v6: Option<Ipv6Addr>,
}

impl NodeAddrs {
    pub fn link_local(&self) -> Ipv6Addr {
        link_local(self.v4)
    }

    /// The node's MAC address in tap mode.
    pub fn mac(&self) -> Mac {
        frame::node_mac(self.v4)
    }

    /// Is `ip` one of this node's overlay addresses (IPv4, IPv6 or the
    /// derived link-local)?
    pub fn owns(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => a == self.v4,
            IpAddr::V6(a) => Some(a) == self.v6 || a == self.link_local(),
        }
    }

    /// The sender id on the wire: the overlay IPv4 address.
    pub fn id(&self) -> u32 {
        u32::from(self.v4)
    }
}

/// A configured peer as the core sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerSpec {
    pub name: String,
    pub addrs: NodeAddrs,
}

/// Authentication mode.
#[derive(Clone, Debug)]
pub enum Security {
    Authenticated(ClusterKey),
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
    /// Unique per start; wall-clock nanoseconds at start.
    pub epoch: u64,
    /// Largest accepted difference between a sender's timestamp and ours.
    pub max_clock_skew_ms: u64,
    /// Packets per second each peer may have written into the interface
    /// (bursts up to one second's worth); 0 means no limit.
    pub inject_rate_limit: u32,
    /// Keepalive interval to confirmed peers, ms; 0: none.
    pub keepalive_ms: u64,
    /// Random per start ([`Challenger::random_secret`]): makes this run's
    /// handshake questions unpredictable.
    pub challenge_secret: [u8; 32],
}

/// What a configuration reload may change in the core.
#[derive(Clone, Debug)]
pub struct Reload {
    pub peers: Vec<PeerSpec>,
    pub allow: AllowList,
    pub max_clock_skew_ms: u64,
    pub inject_rate_limit: u32,
    pub keepalive_ms: u64,
}

/// (sender id, peer index), sorted by id for binary search.
fn index_by_id(peers: &[PeerSpec]) -> Vec<(u32, usize)> {
    let mut by_id: Vec<(u32, usize)> = peers
        .iter()
        .enumerate()
        .map(|(i, s)| (s.addrs.id(), i))
        .collect();
    by_id.sort_unstable();
    by_id
}

/// Where a sealed datagram goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Every peer: multicast and broadcast.
    All,
    /// One peer, by index: unicast to its overlay address.
    Peer(usize),
}

/// The decision for a packet read from the interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outbound {
    /// Send the first `len` bytes of the output buffer to `target`.
    Send {
        len: usize,
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
        peer: usize,
    },
    /// Send the first `len` bytes of the output buffer (a hello) to peer
    /// `peer`'s configured endpoint — never to the datagram's source, so a
    /// spoofed source cannot aim answers at a victim.
    Reply {
        len: usize,
        peer: usize,
    },
    /// A handshake message, fully handled.
    Handled,
    Drop(DropReason),
}

/// What a peer sent us most recently, per peer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerStats {
    pub injected: u64,
    pub injected_bytes: u64,
    /// Datagrams (and their bytes) handed to the kernel for this peer.
    pub sent: u64,
    pub sent_bytes: u64,
    /// Handshake questions and keepalives sent, and those answered.
    pub pings_sent: u64,
    pub pings_answered: u64,
    /// The last 16 pings, newest in bit 0: 1 = answered.
    pub recent_answered: u16,
    /// How many of those 16 bits are real pings.
    pub recent_count: u8,
    /// Round trip of the last answered ping, ms.
    pub rtt_ms: Option<u64>,
    /// Our clock (ms) when the last answer arrived.
    pub last_answer_ms: Option<u64>,
    /// Our clock (ms) when its last authenticated datagram arrived.
    pub last_heard_ms: Option<u64>,
    /// Its current epoch, once confirmed.
    pub epoch: Option<u64>,
    pub rate_limited: u64,
}

/// A token bucket in thousandths of a packet, refilled by our clock.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    milli: u64,
    at_ms: u64,
}

impl Bucket {
    /// Takes one packet's token if the peer is within `rate` per second.
    fn take(&mut self, rate: u32, now_ms: u64) -> bool {
        if rate == 0 {
            return true;
        }
        let cap = u64::from(rate) * 1000;
        let refill = now_ms
            .saturating_sub(self.at_ms)
            .saturating_mul(u64::from(rate));
        self.milli = self.milli.saturating_add(refill).min(cap);
        self.at_ms = self.at_ms.max(now_ms);
        if self.milli >= 1000 {
            self.milli -= 1000;
            true
        } else {
            false
        }
    }
}

struct RxStream {
    epoch: u64,
    key: Option<StreamKey>,
    window: ReplayWindow,
}

struct Peer {
    spec: PeerSpec,
    endpoint: Option<SocketAddr>,
    rx: Option<RxStream>,
    /// Key for the last unverified new epoch seen, so a stream of
    /// datagrams claiming one new epoch derives its key once.
    candidate: Option<(u64, StreamKey)>,
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
    bucket: Bucket,
    stats: PeerStats,
    /// Tap mode: MACs this peer sent authenticated frames from, other than
    /// its own, and when last (our clock, ms).
    learned: [Option<(Mac, u64)>; LEARNED_PER_PEER],
}

impl Peer {
    fn new(spec: PeerSpec, inject_rate_limit: u32) -> Peer {
        Peer {
            spec,
            endpoint: None,
            rx: None,
            candidate: None,
            awaiting: [None; AWAITING],
            pings: 0,
            next_keepalive_ms: 0,
            next_hello_ms: 0,
            // A new peer is unconfirmed: greet it.
            hello_wanted: true,
            last_answer: None,
            bucket: Bucket {
                milli: u64::from(inject_rate_limit) * 1000,
                at_ms: 0,
            },
            stats: PeerStats::default(),
            learned: [None; LEARNED_PER_PEER],
        }
    }

    fn confirmed_epoch(&self) -> Option<u64> {
        self.rx.as_ref().map(|rx| rx.epoch)
    }

    /// Asks for a hello to this peer as soon as spacing allows.
    fn want_hello(&mut self, now_ms: u64) {
        if !self.hello_wanted {
            self.hello_wanted = true;
            self.next_hello_ms = self.next_hello_ms.max(now_ms);
        }
    }
}

/// The relay's state machine.
pub struct Relay {
    local: NodeAddrs,
    link: Link,
    broadcast: Ipv4Addr,
    peers: Vec<Peer>,
    /// (sender id, peer index), sorted by id for binary search.
    by_id: Vec<(u32, usize)>,
    allow: AllowList,
    schedule: Option<KeySchedule>,
    tx_key: Option<StreamKey>,
    epoch: u64,
    counter: u64,
    max_skew_ms: u64,
    inject_rate: u32,
    keepalive_ms: u64,
    challenger: Challenger,
    /// Round-robin start for [`Relay::poll_hello`].
    hello_cursor: usize,
    counters: Counters,
}

impl Relay {
    pub fn new(p: RelayParams) -> Self {
        let schedule = match &p.security {
            Security::Authenticated(k) => Some(KeySchedule::new(k)),
            Security::Insecure => None,
        };
        let tx_key = schedule
            .as_ref()
            .map(|s| s.stream_key(p.local.id(), p.epoch));
        let by_id = index_by_id(&p.peers);
        Relay {
            local: p.local,
            link: p.link,
            broadcast: broadcast_v4(p.local.v4, p.prefix_len),
            peers: p
                .peers
                .into_iter()
                .map(|spec| Peer::new(spec, p.inject_rate_limit))
                .collect(),
            by_id,
            allow: p.allow,
            schedule,
            tx_key,
            epoch: p.epoch,
            counter: 0,
            max_skew_ms: p.max_clock_skew_ms,
            inject_rate: p.inject_rate_limit,
            keepalive_ms: p.keepalive_ms,
            challenger: Challenger::new(&p.challenge_secret),
            hello_cursor: 0,
            counters: Counters::default(),
        }
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    pub fn peer_name(&self, i: usize) -> &str {
        &self.peers[i].spec.name
    }

    pub fn peer_stats(&self, i: usize) -> PeerStats {
        self.peers[i].stats
    }

    pub fn endpoint(&self, i: usize) -> Option<SocketAddr> {
        self.peers[i].endpoint
    }

    /// Records where peer `i` is reachable (after resolution).
    pub fn set_endpoint(&mut self, i: usize, addr: Option<SocketAddr>) {
        self.peers[i].endpoint = addr;
    }

    /// The index of the peer named `name`.
    pub fn peer_by_name(&self, name: &str) -> Option<usize> {
        self.peers.iter().position(|p| p.spec.name == name)
    }

    /// Applies a reloaded configuration. A peer whose name and overlay
    /// addresses are unchanged keeps everything: its endpoint, confirmed
    /// epoch, replay window and rate-limit bucket, so not one of its
    /// packets is lost. Other peers start afresh with a handshake.
    pub fn reconfigure(&mut self, r: Reload) {
        let mut old: Vec<Option<Peer>> = std::mem::take(&mut self.peers)
            .into_iter()
            .map(Some)
            .collect();
        self.peers = r
            .peers
            .into_iter()
            .map(|spec| {
                let kept = old
                    .iter_mut()
                    .find(|p| p.as_ref().is_some_and(|p| p.spec == spec))
                    .and_then(Option::take);
                kept.unwrap_or_else(|| Peer::new(spec, r.inject_rate_limit))
            })
            .collect();
        let specs: Vec<PeerSpec> = self.peers.iter().map(|p| p.spec.clone()).collect();
        self.by_id = index_by_id(&specs);
        self.hello_cursor = 0;
        self.allow = r.allow;
        self.max_skew_ms = r.max_clock_skew_ms;
        self.inject_rate = r.inject_rate_limit;
        self.keepalive_ms = r.keepalive_ms;
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Counts a drop decided by the I/O layer (send or write failures).
    pub fn count_drop(&mut self, r: DropReason) {
        self.counters.drops.add(r);
    }

    /// Counts a datagram of `len` bytes handed to the kernel for peer `i`.
    pub fn count_sent(&mut self, i: usize, len: usize) {
        self.counters.sent += 1;
        let s = &mut self.peers[i].stats;
        s.sent += 1;
        s.sent_bytes += len as u64;
    }

    /// Interval of keepalives to confirmed peers, ms (0: none).
    pub fn keepalive_ms(&self) -> u64 {
        self.keepalive_ms
    }

    /// Whether peer `i` answered a keepalive (or handshake question) in
    /// the last three and a half keepalive intervals.
    pub fn peer_reachable(&self, i: usize, now_ms: u64) -> bool {
        let window = self.keepalive_ms.max(100) * 7 / 2;
        self.peers[i]
            .stats
            .last_answer_ms
            .is_some_and(|t| now_ms.saturating_sub(t) <= window)
    }

    /// How many peers are reachable now.
    pub fn reachable_peers(&self, now_ms: u64) -> usize {
        (0..self.peers.len())
            .filter(|i| self.peer_reachable(*i, now_ms))
            .count()
    }

    /// Decides what to do with a packet read from the interface, sealing
    /// it into `out` when it is to be sent.
    pub fn from_tun(&mut self, packet: &[u8], now_ms: u64, out: &mut [u8]) -> Outbound {
        let route = match self.link {
            Link::Ip => self.route_local(packet),
            Link::Ethernet => self.route_local_frame(packet, now_ms),
        };
        match route {
            Ok(target) => match self.seal(Kind::Data, packet, now_ms, out) {
                Some(len) => {
                    self.counters.sealed += 1;
                    Outbound::Send { len, target }
                }
                None => self.drop_out(DropReason::TooBig),
            },
            Err(r) => self.drop_out(r),
        }
    }

    fn drop_out(&mut self, r: DropReason) -> Outbound {
        self.counters.drops.add(r);
        Outbound::Drop(r)
    }

    fn route_local(&self, packet: &[u8]) -> Result<Target, DropReason> {
        let inner = packet::parse(packet).map_err(|_| DropReason::LocalMalformed)?;
        self.route_local_inner(&inner)
    }

    fn route_local_inner(&self, inner: &Inner) -> Result<Target, DropReason> {
        if inner.is_kernel_noise() {
            return Err(DropReason::KernelNoise);
        }
        if !self.local.owns(inner.src) {
            return Err(DropReason::LocalForeignSource);
        }
        let (kind, target) = if self.is_group(inner.dst) {
            (self.dest_kind(inner.dst), Target::All)
        } else {
            let i = self
                .peers
                .iter()
                .position(|p| p.spec.addrs.owns(inner.dst))
                .ok_or(DropReason::NoRoute)?;
            (DestKind::Unicast, Target::Peer(i))
        };
        if !self.allow.permits(inner, kind) {
            return Err(DropReason::LocalDisallowed);
        }
        Ok(target)
    }

    /// Tap mode: the IP rules for the packet inside, then the frame's own:
    /// sent from this node's MAC (or a virtual-router MAC, as ucarp does),
    /// to a group MAC for a group destination, and to the MAC's owner for
    /// unicast. ARP speaks for this node's overlay address only.
    fn route_local_frame(&self, packet: &[u8], now_ms: u64) -> Result<Target, DropReason> {
        let f = frame::parse(packet).map_err(|e| match e {
            FrameError::Malformed => DropReason::LocalMalformed,
            FrameError::EtherType => DropReason::LocalDisallowed,
        })?;
        let own_mac = f.src == self.local.mac();
        match f.body {
            Body::Ip { start, len } => {
                if !own_mac && !frame::is_virtual_router(f.src) {
                    return Err(DropReason::LocalForeignSource);
                }
                let ip = &packet[start..start + len];
                let inner = packet::parse(ip).map_err(|_| DropReason::LocalMalformed)?;
                let by_ip = if frame::is_neighbour_discovery(ip, &inner) {
                    self.route_local_nd(&inner)?
                } else {
                    self.route_local_inner(&inner)?
                };
                match by_ip {
                    Target::All if frame::is_group(f.dst) => Ok(Target::All),
                    Target::Peer(_) if !frame::is_group(f.dst) => {
                        Ok(self.mac_target(f.dst, now_ms))
                    }
                    _ => Err(DropReason::LocalMalformed),
                }
            }
            Body::Arp(a) => {
                // ucarp announces its VIP on the tap too: that ARP is for
                // the real interface (its up script does it there), so it
                // stops here.
                let speaks_for_us =
                    a.sender_ip == self.local.v4 || a.sender_ip == Ipv4Addr::UNSPECIFIED;
                if !own_mac || a.sender_mac != f.src || !speaks_for_us {
                    return Err(DropReason::LocalForeignSource);
                }
                if frame::is_group(f.dst) {
                    Ok(Target::All)
                } else {
                    Ok(self.mac_target(f.dst, now_ms))
                }
            }
        }
    }

    /// Neighbour discovery from the local kernel: from one of this node's
    /// addresses (or unspecified, for duplicate address detection), to a
    /// group or a peer.
    fn route_local_nd(&self, inner: &Inner) -> Result<Target, DropReason> {
        let unspecified = inner.src == IpAddr::V6(Ipv6Addr::UNSPECIFIED);
        if !self.local.owns(inner.src) && !unspecified {
            return Err(DropReason::LocalForeignSource);
        }
        if inner.dst.is_multicast() {
            return Ok(Target::All);
        }
        self.peers
            .iter()
            .position(|p| p.spec.addrs.owns(inner.dst))
            .map(Target::Peer)
            .ok_or(DropReason::NoRoute)
    }

    /// The peer a unicast MAC belongs to: a node MAC names its node; other
    /// MACs are looked up among those learned from authenticated frames;
    /// an unknown one goes to every peer, as a switch floods.
    fn mac_target(&self, mac: Mac, now_ms: u64) -> Target {
        if let Some(v4) = frame::node_of_mac(mac) {
            if let Some(i) = self.peer_index(u32::from(v4)) {
                return Target::Peer(i);
            }
        }
        for (i, p) in self.peers.iter().enumerate() {
            let fresh = |(m, at): &(Mac, u64)| *m == mac && now_ms < at + LEARNED_TTL_MS;
            if p.learned.iter().flatten().any(fresh) {
                return Target::Peer(i);
            }
        }
        Target::All
    }

    /// Records that peer `i` sent an authenticated, accepted frame from
    /// `mac`. A MAC belongs to one peer at a time (a virtual-router MAC
    /// moves with mastership); each peer keeps its most recent few.
    fn learn(&mut self, i: usize, mac: Mac, now_ms: u64) {
        if frame::node_of_mac(mac).is_some() {
            return; // known from the configuration
        }
        let slots = &mut self.peers[i].learned;
        if let Some(slot) = slots.iter_mut().flatten().find(|(m, _)| *m == mac) {
            slot.1 = now_ms;
            return;
        }
        let oldest = slots
            .iter()
            .enumerate()
            .min_by_key(|(_, s)| s.map_or(0, |(_, at)| at.saturating_add(1)))
            .map_or(0, |(k, _)| k);
        slots[oldest] = Some((mac, now_ms));
        for (j, p) in self.peers.iter_mut().enumerate() {
            if j != i {
                for s in p.learned.iter_mut() {
                    if s.is_some_and(|(m, _)| m == mac) {
                        *s = None;
                    }
                }
            }
        }
    }

    /// Which peer a MAC was learned from, for status and tests.
    pub fn learned_owner(&self, mac: Mac, now_ms: u64) -> Option<usize> {
        match self.mac_target(mac, now_ms) {
            Target::Peer(i) if frame::node_of_mac(mac).is_none() => Some(i),
            _ => None,
        }
    }

    /// The IP packet in what the interface carries: the packet itself in
    /// tun mode, the one inside the frame in tap mode (empty for ARP).
    pub fn ip_packet<'a>(&self, packet: &'a [u8]) -> &'a [u8] {
        match self.link {
            Link::Ip => packet,
            Link::Ethernet => match frame::parse(packet) {
                Ok(Frame {
                    body: Body::Ip { start, len },
                    ..
                }) => &packet[start..start + len],
                _ => &[],
            },
        }
    }

    /// Multicast or broadcast: goes to every node.
    fn is_group(&self, dst: IpAddr) -> bool {
        match dst {
            IpAddr::V4(a) => a.is_multicast() || is_broadcast(a, self.broadcast),
            IpAddr::V6(a) => a.is_multicast(),
        }
    }

    fn dest_kind(&self, dst: IpAddr) -> DestKind {
        match dst {
            IpAddr::V4(a) if is_broadcast(a, self.broadcast) => DestKind::Broadcast,
            _ if dst.is_multicast() => DestKind::Multicast,
            _ => DestKind::Unicast,
        }
    }

    /// Header, copy, seal in place; returns the datagram length, or `None`
    /// if `out` cannot hold it.
    fn seal(&mut self, kind: Kind, payload: &[u8], now_ms: u64, out: &mut [u8]) -> Option<usize> {
        let tag_len = if self.tx_key.is_some() { TAG_LEN } else { 0 };
        let len = HEADER_LEN + payload.len() + tag_len;
        if len > out.len() {
            return None;
        }
        let mut flags = if self.tx_key.is_some() {
            0
        } else {
            FLAG_PLAINTEXT
        };
        if self.link == Link::Ethernet {
            flags |= FLAG_FRAME;
        }
        let header = Header {
            kind,
            flags,
            sender: self.local.id(),
            epoch: self.epoch,
            counter: self.counter,
            timestamp_ms: now_ms,
        };
        // The counter is the nonce: advance it before anything can fail
        // after use, so it is never used twice.
        self.counter += 1;
        let (head, body) = out.split_at_mut(HEADER_LEN);
        header.encode(head);
        body[..payload.len()].copy_from_slice(payload);
        if let Some(key) = &self.tx_key {
            let tag = key.seal(header.counter, head, &mut body[..payload.len()]);
            body[payload.len()..payload.len() + TAG_LEN].copy_from_slice(&tag);
        }
        Some(len)
    }

    /// Seals a hello to peer `i` into `out`.
    fn seal_hello(&mut self, i: usize, hello: Hello, now_ms: u64, out: &mut [u8]) -> Option<usize> {
        let counter = self.counter;
        let mut hello = hello;
        if hello.wants_reply() {
            hello.challenge = self.challenger.challenge(counter);
        }
        let mut payload = [0u8; HELLO_LEN];
        hello.encode(&mut payload);
        let len = self.seal(Kind::Hello, &payload, now_ms, out)?;
        let peer = &mut self.peers[i];
        if hello.wants_reply() {
            peer.awaiting.rotate_right(1);
            peer.awaiting[0] = Some((counter, now_ms, peer.pings));
            peer.pings += 1;
            let s = &mut peer.stats;
            s.pings_sent += 1;
            s.recent_answered <<= 1;
            s.recent_count = (s.recent_count + 1).min(16);
        }
        Some(len)
    }

    /// The next hello that is due, sealed into `out`: returns its length
    /// and the peer it goes to. Call after receiving and on a timer
    /// (a few times a second) until it returns `None`.
    ///
    /// A hello goes to every peer whose current epoch is not confirmed:
    /// at start, after a peer restarts, and every second until answered;
    /// and, as a keepalive that measures reachability and round trip, to
    /// every confirmed peer each `keepalive_ms`.
    pub fn poll_hello(&mut self, now_ms: u64, out: &mut [u8]) -> Option<(usize, usize)> {
        // Insecure mode has no handshake.
        self.tx_key.as_ref()?;
        let n = self.peers.len();
        let keepalive = self.keepalive_ms;
        for k in 0..n {
            let i = (self.hello_cursor + k) % n;
            let p = &self.peers[i];
            let handshake_due = p.hello_wanted && now_ms >= p.next_hello_ms;
            let keepalive_due =
                keepalive > 0 && !p.hello_wanted && p.rx.is_some() && now_ms >= p.next_keepalive_ms;
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
            let len = self.seal_hello(i, hello, now_ms, out)?;
            let p = &mut self.peers[i];
            if handshake_due {
                p.next_hello_ms = now_ms + HELLO_RETRY_MS;
            }
            p.next_keepalive_ms = now_ms + keepalive;
            self.hello_cursor = (i + 1) % n;
            return Some((len, i));
        }
        None
    }

    /// When [`Relay::poll_hello`] next has something to send (our clock,
    /// ms): the earliest handshake retry or keepalive; `None` when nothing
    /// is scheduled (insecure mode, or no peer with an endpoint). Lets the
    /// caller sleep until then instead of polling.
    pub fn next_hello_ms(&self) -> Option<u64> {
        self.tx_key.as_ref()?;
        self.peers
            .iter()
            .filter(|p| p.endpoint.is_some())
            .filter_map(|p| {
                if p.hello_wanted {
                    Some(p.next_hello_ms)
                } else if self.keepalive_ms > 0 && p.rx.is_some() {
                    Some(p.next_keepalive_ms)
                } else {
                    None
                }
            })
            .min()
    }

    /// Decides what to do with a datagram from `from`, opening it in place.
    /// A hello that needs an answer gets it sealed into `out` (at least
    /// [`HELLO_DATAGRAM`] bytes).
    pub fn from_net(
        &mut self,
        buf: &mut [u8],
        from: SocketAddr,
        now_ms: u64,
        out: &mut [u8],
    ) -> Inbound {
        let result = self.open(buf, from, now_ms, out);
        match result {
            Ok(Inbound::Inject { start, len, peer }) => {
                self.counters.injected += 1;
                let s = &mut self.peers[peer].stats;
                s.injected += 1;
                s.injected_bytes += len as u64;
                Inbound::Inject { start, len, peer }
            }
            Ok(other) => other,
            Err(r) => {
                self.counters.drops.add(r);
                if r == DropReason::RateLimited {
                    // Counted per peer too: which peer floods matters.
                    if let Some(i) = self.peer_of(buf) {
                        self.peers[i].stats.rate_limited += 1;
                    }
                }
                Inbound::Drop(r)
            }
        }
    }

    fn peer_of(&self, buf: &[u8]) -> Option<usize> {
        let h = Header::parse(buf).ok()?;
        self.peer_index(h.sender)
    }

    fn peer_index(&self, sender: u32) -> Option<usize> {
        self.by_id
            .binary_search_by_key(&sender, |(id, _)| *id)
            .ok()
            .map(|pos| self.by_id[pos].1)
    }

    fn open(
        &mut self,
        buf: &mut [u8],
        from: SocketAddr,
        now_ms: u64,
        out: &mut [u8],
    ) -> Result<Inbound, DropReason> {
        // Cheap checks first: none of these costs any crypto.
        let h = Header::parse(buf).map_err(|e| match e {
            WireError::Malformed => DropReason::Malformed,
            WireError::UnknownVersion => DropReason::UnknownVersion,
        })?;
        let i = self.peer_index(h.sender).ok_or(DropReason::UnknownSender)?;
        if h.is_plaintext() != self.schedule.is_none() {
            return Err(DropReason::ModeMismatch);
        }
        if h.timestamp_ms.abs_diff(now_ms) > self.max_skew_ms {
            return Err(DropReason::ClockSkew);
        }
        let authenticated = self.schedule.is_some();
        let peer = &mut self.peers[i];
        if !authenticated && peer.endpoint.map(|e| e.ip()) != Some(from.ip()) {
            return Err(DropReason::WrongEndpoint);
        }
        let current = peer.confirmed_epoch() == Some(h.epoch);
        if current {
            if let Some(rx) = &peer.rx
                && !rx.window.check(h.counter)
            {
                return Err(DropReason::Replay);
            }
        } else {
            // Data from an older run is a replay; a hello from one may be a
            // peer whose clock stepped back, and only an answer to our own
            // question can confirm it, so hellos are let through to auth.
            if h.kind == Kind::Data && peer.confirmed_epoch().is_some_and(|e| h.epoch < e) {
                return Err(DropReason::StaleEpoch);
            }
            // A run cannot have started in the future.
            if h.epoch / 1_000_000 > now_ms.saturating_add(self.max_skew_ms) {
                return Err(DropReason::StaleEpoch);
            }
        }

        let (aad, body) = buf.split_at_mut(HEADER_LEN);
        let plain_len = match &self.schedule {
            None => body.len(),
            Some(schedule) => {
                let key = if current {
                    peer.rx.as_ref().and_then(|rx| rx.key.as_ref())
                } else {
                    if peer.candidate.as_ref().map(|(e, _)| *e) != Some(h.epoch) {
                        peer.candidate = Some((h.epoch, schedule.stream_key(h.sender, h.epoch)));
                    }
                    peer.candidate.as_ref().map(|(_, k)| k)
                };
                let key = key.ok_or(DropReason::BadAuth)?;
                key.open(h.counter, aad, body)
                    .map_err(|_| DropReason::BadAuth)?
            }
        };

        // Authenticated: from here on the datagram may move the peer's state.
        peer.stats.last_heard_ms = Some(now_ms);
        if current {
            if let Some(rx) = &mut peer.rx {
                rx.window.commit(h.counter);
            }
        }
        if h.kind == Kind::Hello {
            let hello = Hello::parse(&body[..plain_len]).map_err(|_| DropReason::Malformed)?;
            return self.on_hello(i, &h, hello, now_ms, out);
        }
        if !current {
            if authenticated {
                // Maybe a fresh run of the peer, maybe a capture from before
                // we started: only a handshake can tell.
                peer.want_hello(now_ms);
                return Err(DropReason::UnconfirmedEpoch);
            }
            // Insecure mode has no handshake: follow the newest epoch.
            if peer.confirmed_epoch().is_some_and(|e| h.epoch < e) {
                return Err(DropReason::StaleEpoch);
            }
            let mut window = ReplayWindow::new();
            window.commit(h.counter);
            peer.rx = Some(RxStream {
                epoch: h.epoch,
                key: None,
                window,
            });
            peer.stats.epoch = Some(h.epoch);
        }

        if h.carries_frames() != (self.link == Link::Ethernet) {
            return Err(DropReason::LinkMismatch);
        }
        let inner = &body[..plain_len];
        let sender_mac = match self.link {
            Link::Ip => {
                self.classify_inbound(i, inner)?;
                None
            }
            Link::Ethernet => Some(self.classify_inbound_frame(i, inner)?),
        };
        if !self.peers[i].bucket.take(self.inject_rate, now_ms) {
            return Err(DropReason::RateLimited);
        }
        if let Some(mac) = sender_mac {
            self.learn(i, mac, now_ms);
        }
        Ok(Inbound::Inject {
            start: HEADER_LEN,
            len: plain_len,
            peer: i,
        })
    }

    /// An authenticated hello from peer `i`: confirms the peer's epoch if
    /// it answers one of our outstanding hellos, and answers it if asked.
    fn on_hello(
        &mut self,
        i: usize,
        h: &Header,
        hello: Hello,
        now_ms: u64,
        out: &mut [u8],
    ) -> Result<Inbound, DropReason> {
        let my_epoch = self.epoch;
        // The challenge proves the answerer read our question, which went
        // encrypted to this peer's endpoint only.
        let challenge_met = hello.echo_challenge == self.challenger.challenge(hello.echo_counter);
        let peer = &mut self.peers[i];
        let asked = peer
            .awaiting
            .iter()
            .flatten()
            .find(|(c, _, _)| *c == hello.echo_counter)
            .copied();
        let answers_us = hello.echo_epoch == my_epoch && challenge_met && asked.is_some();
        if let Some((_, asked_ms, ping)) = asked.filter(|_| answers_us) {
            // Each question is answered once: a replayed answer confirms
            // nothing.
            for a in peer.awaiting.iter_mut() {
                *a = None;
            }
            let s = &mut peer.stats;
            s.pings_answered += 1;
            s.rtt_ms = Some(now_ms.saturating_sub(asked_ms));
            s.last_answer_ms = Some(now_ms);
            let age = peer.pings.saturating_sub(ping + 1);
            if age < 16 {
                s.recent_answered |= 1 << age;
            }
            if peer.confirmed_epoch() != Some(h.epoch) {
                let key = match peer.candidate.take() {
                    Some((e, k)) if e == h.epoch => Some(k),
                    _ => None,
                };
                match peer.confirmed_epoch() {
                    Some(old) => {
                        tracing::info!(peer = %peer.spec.name, old_epoch = old, new_epoch = h.epoch, "peer restarted; new run confirmed")
                    }
                    None => {
                        tracing::info!(peer = %peer.spec.name, epoch = h.epoch, "peer confirmed")
                    }
                }
                // Everything the peer sealed before this answer may predate
                // our start, so only what follows it is accepted.
                peer.rx = Some(RxStream {
                    epoch: h.epoch,
                    key,
                    window: ReplayWindow::after(h.counter),
                });
                peer.stats.epoch = Some(h.epoch);
            }
            peer.hello_wanted = false;
        } else if peer.confirmed_epoch() != Some(h.epoch) {
            // A peer we have not confirmed in this run is talking: ask it.
            peer.want_hello(now_ms);
        }
        if !hello.wants_reply() {
            return Ok(Inbound::Handled);
        }
        // Spaced per run of the peer: a fresh run is answered at once.
        if peer
            .last_answer
            .is_some_and(|(e, t)| e == h.epoch && now_ms < t + HELLO_SPACING_MS)
        {
            return Ok(Inbound::Handled);
        }
        peer.last_answer = Some((h.epoch, now_ms));
        // Ask back in the same message while this peer is unconfirmed.
        let ask = peer.confirmed_epoch() != Some(h.epoch);
        let answer = Hello {
            echo_epoch: h.epoch,
            echo_counter: h.counter,
            echo_challenge: hello.challenge,
            challenge: 0, // set when sealed, if asking back
            flags: if ask { HELLO_WANT_REPLY } else { 0 },
        };
        let len = self
            .seal_hello(i, answer, now_ms, out)
            .ok_or(DropReason::TooBig)?;
        if ask {
            let p = &mut self.peers[i];
            p.next_hello_ms = now_ms + HELLO_RETRY_MS;
        }
        Ok(Inbound::Reply { len, peer: i })
    }

    /// The verdict [`Relay::from_net`] gives an authenticated inner packet
    /// from peer `peer` (an index below [`Relay::peer_count`]): it must
    /// parse, come from that peer's own overlay address and go where this
    /// node and the allow rules accept it. Changes no state; public so the
    /// `classify` fuzz target can reach the receive-side classifier
    /// without sealing every input.
    pub fn classify_inbound(&self, peer: usize, packet: &[u8]) -> Result<(), DropReason> {
        if self.link == Link::Ethernet {
            return self.classify_inbound_frame(peer, packet).map(|_| ());
        }
        let parsed = packet::parse(packet).map_err(|_| DropReason::BadInner)?;
        self.check_inner(peer, &parsed)
    }

    /// Tap mode: the IP rules for the packet inside, and a frame that is
    /// the peer's own (its MAC, or a virtual-router MAC for IP) addressed
    /// to this node's MAC, a virtual-router MAC or a group; a group MAC
    /// exactly when the IP destination is a group. ARP must speak for the
    /// peer's overlay address with the peer's MAC. Returns the frame's
    /// source MAC, for learning.
    fn classify_inbound_frame(&self, peer: usize, packet: &[u8]) -> Result<Mac, DropReason> {
        let f = frame::parse(packet).map_err(|e| match e {
            FrameError::Malformed => DropReason::BadInner,
            FrameError::EtherType => DropReason::Disallowed,
        })?;
        let addrs = &self.peers[peer].spec.addrs;
        let peer_mac = f.src == addrs.mac();
        let to_us = f.dst == self.local.mac() || frame::is_virtual_router(f.dst);
        if !frame::is_group(f.dst) && !to_us {
            return Err(DropReason::Disallowed);
        }
        match f.body {
            Body::Ip { start, len } => {
                if !peer_mac && !frame::is_virtual_router(f.src) {
                    return Err(DropReason::WrongSource);
                }
                let ip = &packet[start..start + len];
                let inner = packet::parse(ip).map_err(|_| DropReason::BadInner)?;
                if frame::is_neighbour_discovery(ip, &inner) {
                    self.check_nd(peer, &inner)?;
                } else {
                    self.check_inner(peer, &inner)?;
                }
                if frame::is_group(f.dst) != self.is_group(inner.dst) {
                    return Err(DropReason::Disallowed);
                }
                Ok(f.src)
            }
            Body::Arp(a) => {
                let claim_ok =
                    a.sender_ip == addrs.v4 || (a.sender_ip == Ipv4Addr::UNSPECIFIED && a.op == 1);
                if !peer_mac || a.sender_mac != f.src || !claim_ok {
                    return Err(DropReason::WrongSource);
                }
                Ok(f.src)
            }
        }
    }

    /// Neighbour discovery from a peer: from its own address (or
    /// unspecified, for duplicate address detection), to a group or us.
    fn check_nd(&self, peer: usize, inner: &Inner) -> Result<(), DropReason> {
        let unspecified = inner.src == IpAddr::V6(Ipv6Addr::UNSPECIFIED);
        if !self.peers[peer].spec.addrs.owns(inner.src) && !unspecified {
            return Err(DropReason::WrongSource);
        }
        if inner.dst.is_multicast() || self.local.owns(inner.dst) {
            Ok(())
        } else {
            Err(DropReason::Disallowed)
        }
    }

    /// The receive-side rules: the packet speaks for its sender only and
    /// goes only where this node accepts it.
    fn check_inner(&self, peer: usize, inner: &Inner) -> Result<(), DropReason> {
        if !self.peers[peer].spec.addrs.owns(inner.src) {
            return Err(DropReason::WrongSource);
        }
        let kind = if self.is_group(inner.dst) {
            self.dest_kind(inner.dst)
        } else if self.local.owns(inner.dst) {
            DestKind::Unicast
        } else {
            return Err(DropReason::Disallowed);
        };
        if !self.allow.permits(inner, kind) {
            return Err(DropReason::Disallowed);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::allow::{Preset, Rule};
    use crate::proto::packet::{PROTO_IGMP, PROTO_TCP, PROTO_VRRP, testpkt};

    const KEY: [u8; 32] = [0x42; 32];
    const T0: u64 = 1_800_000_000_000; // ms
    const SKEW: u64 = 10_000;

    fn v4(n: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 250, 0, n)
    }

    fn v6(n: u16) -> Ipv6Addr {
        Ipv6Addr::new(0xfd00, 0x250, 0, 0, 0, 0, 0, n)
    }

    fn addrs(n: u8) -> NodeAddrs {
        NodeAddrs {
            v4: v4(n),
            v6: Some(v6(u16::from(n))),
        }
    }

    fn ep(n: u8) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, n], 7112))
    }

    /// Node `me` of a cluster of nodes 1..=count, started at `start_ms`.
    fn node_with(me: u8, count: u8, start_ms: u64, security: Security) -> Relay {
        node_full(me, count, start_ms, security, 5_000)
    }

    fn node_full(me: u8, count: u8, start_ms: u64, security: Security, rate: u32) -> Relay {
        node_link(me, count, start_ms, security, rate, Link::Ip)
    }

    fn node_link(
        me: u8,
        count: u8,
        start_ms: u64,
        security: Security,
        rate: u32,
        link: Link,
    ) -> Relay {
        let peers = (1..=count)
            .filter(|n| *n != me)
            .map(|n| PeerSpec {
                name: format!("h{n}"),
                addrs: addrs(n),
            })
            .collect();
        let allow = AllowList::of_presets(&[
            Preset::Vrrp,
            Preset::Carp,
            Preset::Heartbeat,
            Preset::Corosync,
        ]);
        let mut r = Relay::new(RelayParams {
            local: addrs(me),
            link,
            prefix_len: 24,
            peers,
            allow,
            security,
            epoch: start_ms * 1_000_000 + u64::from(me),
            max_clock_skew_ms: SKEW,
            inject_rate_limit: rate,
            keepalive_ms: 1000,
            challenge_secret: [me.wrapping_add(start_ms as u8); 32],
        });
        for i in 0..r.peer_count() {
            let n: u8 = r.peer_name(i)[1..].parse().expect("name");
            r.set_endpoint(i, Some(ep(n)));
        }
        r
    }

    fn node(me: u8) -> Relay {
        node_with(
            me,
            3,
            T0,
            Security::Authenticated(ClusterKey::from_bytes(KEY)),
        )
    }

    fn vrrp_from(n: u8) -> Vec<u8> {
        testpkt::v4(
            v4(n),
            Ipv4Addr::new(224, 0, 0, 18),
            PROTO_VRRP,
            &[0x21, 1, 150, 1, 0, 1, 0, 0],
        )
    }

    fn send(r: &mut Relay, pkt: &[u8], now: u64) -> (Vec<u8>, Target) {
        let mut out = [0u8; 2048];
        match r.from_tun(pkt, now, &mut out) {
            Outbound::Send { len, target } => (out[..len].to_vec(), target),
            Outbound::Drop(d) => panic!("dropped on send: {d}"),
        }
    }

    fn recv(r: &mut Relay, dgram: &[u8], from: u8, now: u64) -> Result<Vec<u8>, DropReason> {
        let mut buf = dgram.to_vec();
        let mut out = [0u8; 256];
        match r.from_net(&mut buf, ep(from), now, &mut out) {
            Inbound::Inject { start, len, .. } => Ok(buf[start..start + len].to_vec()),
            Inbound::Drop(d) => Err(d),
            other => panic!("a data datagram produced {other:?}"),
        }
    }

    /// Runs the hello handshake among `nodes` (node number, relay) until
    /// nobody has anything left to say; returns the hellos exchanged as
    /// (from, to, bytes).
    fn meet(nodes: &mut [(u8, &mut Relay)], now: u64) -> Vec<(u8, u8, Vec<u8>)> {
        let mut log = Vec::new();
        let mut queue: std::collections::VecDeque<(u8, u8, Vec<u8>)> = Default::default();
        for _round in 0..10 {
            for (n, r) in nodes.iter_mut() {
                let mut out = [0u8; 256];
                while let Some((len, p)) = r.poll_hello(now, &mut out) {
                    let to: u8 = r.peer_name(p)[1..].parse().expect("name");
                    queue.push_back((*n, to, out[..len].to_vec()));
                }
            }
            if queue.is_empty() {
                return log;
            }
            while let Some((from, to, d)) = queue.pop_front() {
                log.push((from, to, d.clone()));
                let Some((_, r)) = nodes.iter_mut().find(|(n, _)| *n == to) else {
                    continue;
                };
                let mut buf = d;
                let mut out = [0u8; 256];
                if let Inbound::Reply { len, peer } = r.from_net(&mut buf, ep(from), now, &mut out)
                {
                    let back: u8 = r.peer_name(peer)[1..].parse().expect("name");
                    queue.push_back((to, back, out[..len].to_vec()));
                }
            }
        }
        panic!("the handshake did not settle");
    }

    /// Three nodes that have met.
    fn cluster3() -> (Relay, Relay, Relay) {
        let (mut a, mut b, mut c) = (node(1), node(2), node(3));
        meet(&mut [(1, &mut a), (2, &mut b), (3, &mut c)], T0);
        (a, b, c)
    }

    fn peer_index(r: &Relay, name: &str) -> usize {
        (0..r.peer_count())
            .find(|i| r.peer_name(*i) == name)
            .expect("peer")
    }

    #[test]
    fn multicast_goes_to_all_and_arrives_byte_exact() {
        let (mut a, mut b, mut c) = cluster3();
        let pkt = vrrp_from(1);
        let (d, target) = send(&mut a, &pkt, T0);
        assert_eq!(target, Target::All);
        assert_eq!(d.len(), pkt.len() + OVERHEAD);
        assert!(
            !d.windows(pkt.len()).any(|w| w == pkt.as_slice()),
            "payload is encrypted"
        );
        // One seal serves every peer: the same bytes are sent to each.
        assert_eq!(recv(&mut b, &d, 1, T0).as_deref(), Ok(pkt.as_slice()));
        assert_eq!(recv(&mut c, &d, 1, T0).as_deref(), Ok(pkt.as_slice()));
        assert_eq!(b.counters().injected, 1);
        assert_eq!(b.peer_stats(peer_index(&b, "h1")).injected, 1);
    }

    #[test]
    fn unicast_goes_to_its_peer_only() {
        let (mut a, mut b, mut c) = cluster3();
        let token = testpkt::v4_udp(v4(1), v4(3), 5405, b"token");
        let (d, target) = send(&mut a, &token, T0);
        assert_eq!(target, Target::Peer(peer_index(&a, "h3")));
        assert_eq!(recv(&mut c, &d, 1, T0).as_deref(), Ok(token.as_slice()));
        // Node 2 must not inject a unicast packet addressed to node 3.
        assert_eq!(recv(&mut b, &d, 1, T0), Err(DropReason::Disallowed));
    }

    #[test]
    fn broadcast_and_ipv6_link_local_vrrp() {
        let (mut a, mut b, _) = cluster3();
        let bcast = testpkt::v4_udp(v4(1), v4(255), 694, b"hb");
        let (d, t) = send(&mut a, &bcast, T0);
        assert_eq!(t, Target::All);
        assert_eq!(recv(&mut b, &d, 1, T0).as_deref(), Ok(bcast.as_slice()));
        let ll = link_local(v4(1));
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
    fn local_side_drops() {
        let mut a = node(1);
        let mut out = [0u8; 2048];
        let mut check = |a: &mut Relay, pkt: &[u8], want: DropReason| {
            assert_eq!(a.from_tun(pkt, T0, &mut out), Outbound::Drop(want));
        };
        check(&mut a, &[0x45, 0, 0], DropReason::LocalMalformed);
        let igmp = testpkt::v4(
            v4(1),
            Ipv4Addr::new(224, 0, 0, 22),
            PROTO_IGMP,
            &[0x22, 0, 0, 0],
        );
        check(&mut a, &igmp, DropReason::KernelNoise);
        check(&mut a, &vrrp_from(7), DropReason::LocalForeignSource);
        let elsewhere = testpkt::v4_udp(v4(1), Ipv4Addr::new(8, 8, 8, 8), 5405, b"x");
        check(&mut a, &elsewhere, DropReason::NoRoute);
        let ssh = testpkt::v4(v4(1), v4(2), PROTO_TCP, &[0, 1, 0, 22, 0, 0, 0, 0]);
        check(&mut a, &ssh, DropReason::LocalDisallowed);
        let mut tiny = [0u8; 40];
        assert_eq!(
            a.from_tun(&vrrp_from(1), T0, &mut tiny),
            Outbound::Drop(DropReason::TooBig)
        );
        assert_eq!(a.counters().drops.total(), 6);
        assert_eq!(a.counters().sealed, 0);
    }

    #[test]
    fn replay_and_tampering_are_dropped() {
        let (mut a, mut b, _) = cluster3();
        let (d, _) = send(&mut a, &vrrp_from(1), T0);
        assert!(recv(&mut b, &d, 1, T0).is_ok());
        assert_eq!(recv(&mut b, &d, 1, T0), Err(DropReason::Replay));
        let (d2, _) = send(&mut a, &vrrp_from(1), T0);
        for i in 0..d2.len() {
            let mut bad = d2.clone();
            bad[i] ^= 0x04;
            let got = recv(&mut b, &bad, 1, T0);
            assert!(got.is_err(), "bit flip at {i} was injected");
        }
        // The untouched datagram still goes through: forgeries moved nothing.
        assert!(recv(&mut b, &d2, 1, T0).is_ok());
        let (d3, _) = send(&mut a, &vrrp_from(1), T0);
        assert_eq!(
            recv(&mut b, &d3[..HEADER_LEN + 3], 1, T0),
            Err(DropReason::BadAuth)
        );
        assert_eq!(
            recv(&mut b, &d3[..d3.len() - 1], 1, T0),
            Err(DropReason::BadAuth)
        );
        assert_eq!(recv(&mut b, &d3[..10], 1, T0), Err(DropReason::Malformed));
        assert!(
            recv(&mut b, &d3, 1, T0).is_ok(),
            "truncated copies moved the window"
        );
    }

    #[test]
    fn unknown_sender_and_wrong_key() {
        let mut b = node(2);
        let mut stranger = node_with(
            9,
            9,
            T0,
            Security::Authenticated(ClusterKey::from_bytes(KEY)),
        );
        let (d, _) = send(&mut stranger, &vrrp_from(9), T0);
        assert_eq!(recv(&mut b, &d, 9, T0), Err(DropReason::UnknownSender));
        let mut imposter = node_with(
            1,
            3,
            T0,
            Security::Authenticated(ClusterKey::from_bytes([1; 32])),
        );
        let (d, _) = send(&mut imposter, &vrrp_from(1), T0);
        assert_eq!(recv(&mut b, &d, 1, T0), Err(DropReason::BadAuth));
        // Our own id echoed back is not a peer either.
        let mut me_again = node(2);
        let (d, _) = send(&mut me_again, &vrrp_from(2), T0);
        assert_eq!(recv(&mut b, &d, 2, T0), Err(DropReason::UnknownSender));
    }

    #[test]
    fn a_key_holder_speaks_only_for_itself() {
        let (mut a, mut b, _) = cluster3();
        // Forge with node 1's key, bypassing its own local checks.
        let mut forge = |pkt: &[u8]| {
            let mut out = [0u8; 2048];
            let len = a.seal(Kind::Data, pkt, T0, &mut out).expect("fits");
            out[..len].to_vec()
        };
        let as_node3 = forge(&vrrp_from(3));
        assert_eq!(recv(&mut b, &as_node3, 1, T0), Err(DropReason::WrongSource));
        let ssh = forge(&testpkt::v4(
            v4(1),
            v4(2),
            PROTO_TCP,
            &[0, 1, 0, 22, 0, 0, 0, 0],
        ));
        assert_eq!(recv(&mut b, &ssh, 1, T0), Err(DropReason::Disallowed));
        let other_group = forge(&testpkt::v4(
            v4(1),
            Ipv4Addr::new(224, 0, 0, 5),
            PROTO_VRRP,
            &[0; 8],
        ));
        assert_eq!(
            recv(&mut b, &other_group, 1, T0),
            Err(DropReason::Disallowed)
        );
        let garbage = forge(&[0x45, 1, 2, 3]);
        assert_eq!(recv(&mut b, &garbage, 1, T0), Err(DropReason::BadInner));
        let ok = forge(&vrrp_from(1));
        assert!(recv(&mut b, &ok, 1, T0).is_ok());
    }

    #[test]
    fn sender_restart_new_epoch_old_datagrams_stay_out() {
        let (mut a, mut b, _) = cluster3();
        let (old, _) = send(&mut a, &vrrp_from(1), T0);
        let (old2, _) = send(&mut a, &vrrp_from(1), T0);
        assert!(recv(&mut b, &old, 1, T0).is_ok());
        // Node 1 restarts one second later: new epoch, counter from zero.
        let t1 = T0 + 1000;
        let key = Security::Authenticated(ClusterKey::from_bytes(KEY));
        let mut a2 = node_with(1, 3, t1, key);
        let (early, _) = send(&mut a2, &vrrp_from(1), t1);
        // Unconfirmed until a handshake, which b now asks for.
        assert_eq!(
            recv(&mut b, &early, 1, t1),
            Err(DropReason::UnconfirmedEpoch)
        );
        let mut out = [0u8; 256];
        assert!(
            b.poll_hello(t1, &mut out).is_some(),
            "b must greet the restarted a"
        );
        meet(&mut [(1, &mut a2), (2, &mut b)], t1);
        let (new, _) = send(&mut a2, &vrrp_from(1), t1);
        assert!(recv(&mut b, &new, 1, t1).is_ok());
        assert_eq!(recv(&mut b, &old2, 1, t1), Err(DropReason::StaleEpoch));
        assert_eq!(recv(&mut b, &old, 1, t1), Err(DropReason::StaleEpoch));
        assert_eq!(recv(&mut b, &new, 1, t1), Err(DropReason::Replay));
        // Sealed before the handshake answered: may predate it, refused.
        assert_eq!(recv(&mut b, &early, 1, t1), Err(DropReason::Replay));
    }

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

    /// Seals `payload` as node `n` in `epoch`, with the cluster key: what
    /// any key holder can do.
    fn forge(kind: Kind, n: u8, epoch: u64, counter: u64, payload: &[u8], now: u64) -> Vec<u8> {
        let h = Header {
            kind,
            flags: 0,
            sender: u32::from(v4(n)),
            epoch,
            counter,
            timestamp_ms: now,
        };
        let mut d = vec![0u8; HEADER_LEN];
        h.encode(&mut d);
        let mut body = payload.to_vec();
        let tag = KeySchedule::new(&ClusterKey::from_bytes(KEY))
            .stream_key(h.sender, epoch)
            .seal(counter, &d, &mut body);
        d.extend_from_slice(&body);
        d.extend_from_slice(&tag);
        d
    }

    fn hello_bytes(h: Hello) -> [u8; HELLO_LEN] {
        let mut b = [0u8; HELLO_LEN];
        h.encode(&mut b);
        b
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
        assert_eq!(b.peer_name(p), "h1");
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
            let _ = b.from_net(&mut buf, ep(1), t, &mut out);
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
        let _ = b.from_net(&mut buf, ep(1), t, &mut out);
        let after = forge(Kind::Data, 1, fake, 2001, &vrrp_from(1), t);
        assert!(recv(&mut b, &after, 1, t).is_ok());
    }

    #[test]
    fn reconfigure_keeps_unchanged_peers_and_greets_new_ones() {
        let (mut a, mut b, mut c) = cluster3();
        let (seen, _) = send(&mut a, &vrrp_from(1), T0);
        assert!(recv(&mut b, &seen, 1, T0).is_ok());
        let allow = b.allow.clone();
        // Node 3 leaves, node 4 joins; node 1 is untouched.
        b.reconfigure(Reload {
            peers: [1u8, 4]
                .iter()
                .map(|&n| PeerSpec {
                    name: format!("h{n}"),
                    addrs: addrs(n),
                })
                .collect(),
            allow,
            max_clock_skew_ms: SKEW,
            inject_rate_limit: 5_000,
            keepalive_ms: 1000,
        });
        let h1 = b.peer_by_name("h1").expect("h1 kept");
        let h4 = b.peer_by_name("h4").expect("h4 added");
        assert_eq!(b.peer_by_name("h3"), None);
        assert_eq!(
            b.endpoint(h1),
            Some(ep(1)),
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
        // Node 4 gets a hello once its endpoint is known.
        b.set_endpoint(h4, Some(ep(4)));
        let mut out = [0u8; 256];
        let (_, p) = b.poll_hello(T0, &mut out).expect("b greets node 4");
        assert_eq!(p, h4);
        assert!(b.poll_hello(T0, &mut out).is_none(), "only node 4 is new");
    }

    #[test]
    fn receiver_restart_never_accepts_earlier_captures() {
        let (mut a, mut b, _) = cluster3();
        let (seen, _) = send(&mut a, &vrrp_from(1), T0);
        assert!(recv(&mut b, &seen, 1, T0).is_ok());
        let (unseen, _) = send(&mut a, &vrrp_from(1), T0);
        // b restarts a millisecond later, well within any clock skew.
        let t1 = T0 + 1;
        let key = Security::Authenticated(ClusterKey::from_bytes(KEY));
        let mut b2 = node_with(2, 3, t1, key);
        assert_eq!(
            recv(&mut b2, &seen, 1, t1),
            Err(DropReason::UnconfirmedEpoch)
        );
        meet(&mut [(1, &mut a), (2, &mut b2)], t1);
        // Both captures predate b2's question: refused, whatever the clocks.
        assert_eq!(recv(&mut b2, &seen, 1, t1), Err(DropReason::Replay));
        assert_eq!(recv(&mut b2, &unseen, 1, t1), Err(DropReason::Replay));
        let (fresh, _) = send(&mut a, &vrrp_from(1), t1);
        assert!(recv(&mut b2, &fresh, 1, t1).is_ok());
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
                let _ = b2.from_net(&mut buf, ep(*from), t1, &mut out);
            }
        }
        let (d, _) = send(&mut a, &vrrp_from(1), t1);
        assert_eq!(recv(&mut b2, &d, 1, t1), Err(DropReason::UnconfirmedEpoch));
        assert_eq!(b2.peer_stats(peer_index(&b2, "h1")).epoch, None);
    }

    #[test]
    fn injection_is_rate_limited_per_peer() {
        let key = || Security::Authenticated(ClusterKey::from_bytes(KEY));
        let mut a = node(1);
        let mut c = node(3);
        let mut b = node_full(2, 3, T0, key(), 10);
        meet(&mut [(1, &mut a), (2, &mut b), (3, &mut c)], T0);
        let mut ok = 0;
        for _ in 0..30 {
            let (d, _) = send(&mut a, &vrrp_from(1), T0);
            match recv(&mut b, &d, 1, T0) {
                Ok(_) => ok += 1,
                Err(r) => assert_eq!(r, DropReason::RateLimited),
            }
        }
        assert_eq!(ok, 10, "a burst of one second's worth");
        assert_eq!(b.peer_stats(peer_index(&b, "h1")).rate_limited, 20);
        // Another peer is not affected by the first one's flood.
        let (d, _) = send(&mut c, &vrrp_from(3), T0);
        assert!(recv(&mut b, &d, 3, T0).is_ok());
        // Tokens come back with time: 100 ms is one packet at 10/s.
        let (d, _) = send(&mut a, &vrrp_from(1), T0 + 100);
        assert!(recv(&mut b, &d, 1, T0 + 100).is_ok());
        let (d, _) = send(&mut a, &vrrp_from(1), T0 + 100);
        assert_eq!(recv(&mut b, &d, 1, T0 + 100), Err(DropReason::RateLimited));
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
            later.push(a.peer_name(p).to_string());
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
        let before = a.peer_stats(h2);
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
            match b.from_net(&mut q, ep(1), t, &mut out) {
                Inbound::Reply { len, .. } => out[..len].to_vec(),
                other => panic!("no answer to a keepalive: {other:?}"),
            }
        };
        // Answered after 30 ms.
        let q = poll(&mut a, T0 + 1000);
        let mut r = answer(&mut b, q, T0 + 1010);
        assert!(matches!(
            a.from_net(&mut r, ep(2), T0 + 1030, &mut out),
            Inbound::Handled
        ));
        let s = a.peer_stats(h2);
        assert_eq!(s.rtt_ms, Some(30));
        assert_eq!(s.last_answer_ms, Some(T0 + 1030));
        assert_eq!(s.pings_sent - before.pings_sent, 1);
        assert_eq!(s.pings_answered - before.pings_answered, 1);
        // Lost, then answered after 5 ms.
        let _lost = poll(&mut a, T0 + 2030);
        let q = poll(&mut a, T0 + 3030);
        let mut r = answer(&mut b, q, T0 + 3032);
        a.from_net(&mut r, ep(2), T0 + 3035, &mut out);
        let s = a.peer_stats(h2);
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

    #[test]
    fn future_epoch_and_future_timestamp_are_refused() {
        let key = || Security::Authenticated(ClusterKey::from_bytes(KEY));
        let mut b = node(2);
        let mut from_future = node_with(1, 3, T0 + 3_600_000, key());
        let (d, _) = send(&mut from_future, &vrrp_from(1), T0);
        // Its timestamp is fine (passed as T0) but its epoch is an hour ahead.
        assert_eq!(recv(&mut b, &d, 1, T0), Err(DropReason::StaleEpoch));
        let mut a = node(1);
        let (d, _) = send(&mut a, &vrrp_from(1), T0 + SKEW + 1);
        assert_eq!(recv(&mut b, &d, 1, T0), Err(DropReason::ClockSkew));
        // A refused epoch did not lock out the real one.
        meet(&mut [(1, &mut a), (2, &mut b)], T0);
        let (d, _) = send(&mut a, &vrrp_from(1), T0);
        assert!(recv(&mut b, &d, 1, T0).is_ok());
    }

    #[test]
    fn insecure_mode_is_plaintext_and_checks_endpoints() {
        let mut a = node_with(1, 3, T0, Security::Insecure);
        let mut b = node_with(2, 3, T0, Security::Insecure);
        let pkt = vrrp_from(1);
        let (d, _) = send(&mut a, &pkt, T0);
        assert_eq!(d.len(), HEADER_LEN + pkt.len());
        assert_eq!(&d[HEADER_LEN..], pkt.as_slice());
        assert_eq!(recv(&mut b, &d, 1, T0).as_deref(), Ok(pkt.as_slice()));
        let (d, _) = send(&mut a, &pkt, T0);
        assert_eq!(recv(&mut b, &d, 3, T0), Err(DropReason::WrongEndpoint));
        // Mixed modes never interoperate silently.
        let mut secure = node(2);
        assert_eq!(recv(&mut secure, &d, 1, T0), Err(DropReason::ModeMismatch));
        let mut s1 = node(1);
        let (sealed, _) = send(&mut s1, &pkt, T0);
        assert_eq!(recv(&mut b, &sealed, 1, T0), Err(DropReason::ModeMismatch));
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
                buf[0] = 1;
                buf[1] = 1;
                buf[2] = 0;
                buf[3] = 0;
                buf[4..8].copy_from_slice(&u32::from(v4(1)).to_be_bytes());
                buf[24..32].copy_from_slice(&T0.to_be_bytes());
            }
            let mut out = [0u8; 256];
            let got = b.from_net(&mut buf[..len], ep(1), T0, &mut out);
            assert!(matches!(got, Inbound::Drop(_)), "random datagram injected");
            let mut out = [0u8; 2048];
            let _ = a.from_tun(&buf[..len], T0, &mut out);
        }
        let (good, _) = send(&mut a, &vrrp_from(1), T0);
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

    #[test]
    fn custom_rules_apply_both_ways() {
        let key = Security::Authenticated(ClusterKey::from_bytes(KEY));
        let mut a = node_with(1, 2, T0, key.clone());
        let mut b = node_with(2, 2, T0, key);
        meet(&mut [(1, &mut a), (2, &mut b)], T0);
        let rule = Rule {
            label: "rule 1".into(),
            proto: crate::proto::packet::PROTO_UDP,
            ports: vec![(9999, 9999)],
            dests: {
                let mut d = crate::core::allow::Destinations::default();
                d.add("239.1.1.1").expect("group");
                d
            },
        };
        a.allow = AllowList::new(vec![rule.clone()]);
        b.allow = AllowList::new(vec![rule]);
        let ok = testpkt::v4_udp(v4(1), Ipv4Addr::new(239, 1, 1, 1), 9999, b"x");
        let (d, _) = send(&mut a, &ok, T0);
        assert!(recv(&mut b, &d, 1, T0).is_ok());
        let mut out = [0u8; 2048];
        let vrrp = vrrp_from(1);
        assert_eq!(
            a.from_tun(&vrrp, T0, &mut out),
            Outbound::Drop(DropReason::LocalDisallowed)
        );
    }

    // --- tap mode ---

    use crate::proto::frame::testframe::{arp, ethernet};
    use crate::proto::frame::{BROADCAST, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, node_mac};
    use crate::proto::packet::PROTO_ICMPV6;

    const CARP_MCAST: Mac = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x12];
    /// ucarp sends its adverts from 00:00:5e:00:00:<vhid>.
    const UCARP_VHID1: Mac = [0x00, 0x00, 0x5e, 0x00, 0x00, 0x01];

    fn tap_cluster3() -> (Relay, Relay, Relay) {
        let key = || Security::Authenticated(ClusterKey::from_bytes(KEY));
        let mut a = node_link(1, 3, T0, key(), 5_000, Link::Ethernet);
        let mut b = node_link(2, 3, T0, key(), 5_000, Link::Ethernet);
        let mut c = node_link(3, 3, T0, key(), 5_000, Link::Ethernet);
        meet(&mut [(1, &mut a), (2, &mut b), (3, &mut c)], T0);
        (a, b, c)
    }

    /// A CARP advert from node `n` as ucarp writes it.
    fn carp_frame(n: u8) -> Vec<u8> {
        let ip = testpkt::v4(v4(n), Ipv4Addr::new(224, 0, 0, 18), PROTO_VRRP, &[0x21; 36]);
        ethernet(CARP_MCAST, UCARP_VHID1, ETHERTYPE_IPV4, &ip)
    }

    fn send_drop(r: &mut Relay, pkt: &[u8]) -> DropReason {
        let mut out = [0u8; 2048];
        match r.from_tun(pkt, T0, &mut out) {
            Outbound::Drop(d) => d,
            other => panic!("sent: {other:?}"),
        }
    }

    /// Node 1 with no local checks: seals `frame` as is and delivers it.
    fn forged_by_h1(h1: &mut Relay, to: &mut Relay, frame: &[u8]) -> Result<Vec<u8>, DropReason> {
        let mut out = [0u8; 2048];
        let len = h1.seal(Kind::Data, frame, T0, &mut out).expect("fits");
        recv(to, &out[..len], 1, T0)
    }

    #[test]
    fn tap_carp_advert_goes_to_all_byte_exact() {
        let (mut a, mut b, mut c) = tap_cluster3();
        let f = carp_frame(1);
        let (d, target) = send(&mut a, &f, T0);
        assert_eq!(target, Target::All);
        assert_eq!(recv(&mut b, &d, 1, T0).as_deref(), Ok(f.as_slice()));
        assert_eq!(recv(&mut c, &d, 1, T0).as_deref(), Ok(f.as_slice()));
        // The advert watch sees the IP packet inside.
        assert_eq!(b.ip_packet(&f), &f[14..]);
        // ucarp's broadcast mode (--nomcast) too.
        let mut bcast = carp_frame(1);
        bcast[..6].copy_from_slice(&BROADCAST);
        let (d, target) = send(&mut a, &bcast, T0);
        assert_eq!(target, Target::All);
        assert_eq!(recv(&mut b, &d, 1, T0).as_deref(), Ok(bcast.as_slice()));
    }

    #[test]
    fn tap_local_frame_rules() {
        let (mut a, _, _) = tap_cluster3();
        // Another node's overlay source, whatever the MAC.
        assert_eq!(
            send_drop(&mut a, &carp_frame(2)),
            DropReason::LocalForeignSource
        );
        // A MAC that is neither ours nor a virtual router's.
        let mut f = carp_frame(1);
        f[6..12].copy_from_slice(&node_mac(v4(2)));
        assert_eq!(send_drop(&mut a, &f), DropReason::LocalForeignSource);
        // A group IP destination in a unicast frame.
        let mut f = carp_frame(1);
        f[..6].copy_from_slice(&node_mac(v4(2)));
        assert_eq!(send_drop(&mut a, &f), DropReason::LocalMalformed);
        // VLAN tags, LLDP: not carried.
        let f = ethernet(BROADCAST, node_mac(v4(1)), 0x8100, &[0u8; 46]);
        assert_eq!(send_drop(&mut a, &f), DropReason::LocalDisallowed);
        // TCP to a peer is not in [allow].
        let tcp = testpkt::v4(v4(1), v4(2), PROTO_TCP, &[0u8; 20]);
        let f = ethernet(node_mac(v4(2)), node_mac(v4(1)), ETHERTYPE_IPV4, &tcp);
        assert_eq!(send_drop(&mut a, &f), DropReason::LocalDisallowed);
        // ucarp's gratuitous ARP for the VIP on the tap stays here: the VIP
        // is announced on the real interface.
        let vip = Ipv4Addr::new(10, 77, 0, 100);
        let garp = ethernet(
            BROADCAST,
            node_mac(v4(1)),
            ETHERTYPE_ARP,
            &arp(1, node_mac(v4(1)), vip, vip),
        );
        assert_eq!(send_drop(&mut a, &garp), DropReason::LocalForeignSource);
        assert_eq!(send_drop(&mut a, &[0u8; 10]), DropReason::LocalMalformed);
    }

    #[test]
    fn tap_arp_and_unicast_reach_only_their_peer() {
        let (mut a, mut b, mut c) = tap_cluster3();
        let req = ethernet(
            BROADCAST,
            node_mac(v4(1)),
            ETHERTYPE_ARP,
            &arp(1, node_mac(v4(1)), v4(1), v4(2)),
        );
        let (d, target) = send(&mut a, &req, T0);
        assert_eq!(target, Target::All);
        assert_eq!(recv(&mut b, &d, 1, T0).as_deref(), Ok(req.as_slice()));
        assert_eq!(recv(&mut c, &d, 1, T0).as_deref(), Ok(req.as_slice()));
        // The reply goes to node 1's MAC: node 1 only.
        let reply = ethernet(
            node_mac(v4(1)),
            node_mac(v4(2)),
            ETHERTYPE_ARP,
            &arp(2, node_mac(v4(2)), v4(2), v4(1)),
        );
        let (d, target) = send(&mut b, &reply, T0);
        assert_eq!(target, Target::Peer(peer_index(&b, "h1")));
        assert_eq!(recv(&mut a, &d, 2, T0).as_deref(), Ok(reply.as_slice()));
        assert_eq!(recv(&mut c, &d, 2, T0), Err(DropReason::Disallowed));
        // Unicast IP (corosync's token) by MAC.
        let token = testpkt::v4_udp(v4(1), v4(3), 5405, b"token");
        let f = ethernet(node_mac(v4(3)), node_mac(v4(1)), ETHERTYPE_IPV4, &token);
        let (d, target) = send(&mut a, &f, T0);
        assert_eq!(target, Target::Peer(peer_index(&a, "h3")));
        assert_eq!(recv(&mut c, &d, 1, T0).as_deref(), Ok(f.as_slice()));
    }

    #[test]
    fn tap_neighbour_discovery_is_carried() {
        let (mut a, mut b, _) = tap_cluster3();
        let ll1 = link_local(v4(1));
        let solicited = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00, 2);
        let ns = testpkt::v6(ll1, solicited, PROTO_ICMPV6, &[135, 0, 0, 0, 0, 0, 0, 0]);
        let group = [0x33, 0x33, 0xff, 0, 0, 2];
        let f = ethernet(group, node_mac(v4(1)), ETHERTYPE_IPV6, &ns);
        let (d, target) = send(&mut a, &f, T0);
        assert_eq!(target, Target::All);
        assert_eq!(recv(&mut b, &d, 1, T0).as_deref(), Ok(f.as_slice()));
        // Duplicate address detection: from the unspecified address.
        let dad = testpkt::v6(
            Ipv6Addr::UNSPECIFIED,
            solicited,
            PROTO_ICMPV6,
            &[135, 0, 0, 0, 0, 0, 0, 0],
        );
        let f = ethernet(group, node_mac(v4(1)), ETHERTYPE_IPV6, &dad);
        let (d, _) = send(&mut a, &f, T0);
        assert_eq!(recv(&mut b, &d, 1, T0).as_deref(), Ok(f.as_slice()));
        // MLD reports stay kernel noise.
        let mld = testpkt::v6(ll1, solicited, PROTO_ICMPV6, &[143, 0, 0, 0, 0, 0, 0, 0]);
        let f = ethernet(group, node_mac(v4(1)), ETHERTYPE_IPV6, &mld);
        assert_eq!(send_drop(&mut a, &f), DropReason::KernelNoise);
    }

    #[test]
    fn tap_receive_side_refuses_what_a_key_holder_forges() {
        let (mut a, mut b, _) = tap_cluster3();
        let vip = Ipv4Addr::new(10, 77, 0, 100);
        let cases: Vec<(&str, Vec<u8>, DropReason)> = vec![
            (
                "another node's MAC",
                {
                    let ip =
                        testpkt::v4(v4(1), Ipv4Addr::new(224, 0, 0, 18), PROTO_VRRP, &[0x21; 36]);
                    ethernet(CARP_MCAST, node_mac(v4(3)), ETHERTYPE_IPV4, &ip)
                },
                DropReason::WrongSource,
            ),
            (
                "another node's overlay source",
                carp_frame(3),
                DropReason::WrongSource,
            ),
            (
                "ARP claiming the VIP",
                ethernet(
                    BROADCAST,
                    node_mac(v4(1)),
                    ETHERTYPE_ARP,
                    &arp(1, node_mac(v4(1)), vip, vip),
                ),
                DropReason::WrongSource,
            ),
            (
                "ARP claiming node 3",
                ethernet(
                    BROADCAST,
                    node_mac(v4(1)),
                    ETHERTYPE_ARP,
                    &arp(2, node_mac(v4(1)), v4(3), v4(2)),
                ),
                DropReason::WrongSource,
            ),
            (
                "ARP from a virtual-router MAC",
                ethernet(
                    BROADCAST,
                    UCARP_VHID1,
                    ETHERTYPE_ARP,
                    &arp(1, UCARP_VHID1, v4(1), v4(2)),
                ),
                DropReason::WrongSource,
            ),
            (
                "ARP sender MAC not the frame's",
                ethernet(
                    BROADCAST,
                    node_mac(v4(1)),
                    ETHERTYPE_ARP,
                    &arp(1, node_mac(v4(3)), v4(1), v4(2)),
                ),
                DropReason::WrongSource,
            ),
            (
                "unicast frame for node 3",
                {
                    let tok = testpkt::v4_udp(v4(1), v4(2), 5405, b"t");
                    ethernet(node_mac(v4(3)), node_mac(v4(1)), ETHERTYPE_IPV4, &tok)
                },
                DropReason::Disallowed,
            ),
            (
                "group IP in a unicast frame",
                {
                    let ip =
                        testpkt::v4(v4(1), Ipv4Addr::new(224, 0, 0, 18), PROTO_VRRP, &[0x21; 36]);
                    ethernet(node_mac(v4(2)), node_mac(v4(1)), ETHERTYPE_IPV4, &ip)
                },
                DropReason::Disallowed,
            ),
            (
                "unicast IP in a group frame",
                {
                    let tok = testpkt::v4_udp(v4(1), v4(2), 5405, b"t");
                    ethernet(BROADCAST, node_mac(v4(1)), ETHERTYPE_IPV4, &tok)
                },
                DropReason::Disallowed,
            ),
            (
                "TCP to node 2",
                {
                    let tcp = testpkt::v4(v4(1), v4(2), PROTO_TCP, &[0u8; 20]);
                    ethernet(node_mac(v4(2)), node_mac(v4(1)), ETHERTYPE_IPV4, &tcp)
                },
                DropReason::Disallowed,
            ),
            (
                "a VLAN-tagged frame",
                ethernet(BROADCAST, node_mac(v4(1)), 0x8100, &[0u8; 46]),
                DropReason::Disallowed,
            ),
            // Read as a frame, an IP header's bytes make no allowed EtherType.
            ("a bare IP packet", vrrp_from(1), DropReason::Disallowed),
            ("a truncated frame", vec![0xff; 13], DropReason::BadInner),
        ];
        for (what, frame, want) in cases {
            assert_eq!(forged_by_h1(&mut a, &mut b, &frame), Err(want), "{what}");
        }
        assert_eq!(b.counters().injected, 0);
        // The same path injects what is well-formed.
        let good = carp_frame(1);
        assert_eq!(forged_by_h1(&mut a, &mut b, &good), Ok(good));
    }

    #[test]
    fn tap_and_tun_nodes_do_not_mix() {
        let key = || Security::Authenticated(ClusterKey::from_bytes(KEY));
        let mut tap = node_link(1, 2, T0, key(), 5_000, Link::Ethernet);
        let mut tun = node_link(2, 2, T0, key(), 5_000, Link::Ip);
        meet(&mut [(1, &mut tap), (2, &mut tun)], T0);
        let (d, _) = send(&mut tap, &carp_frame(1), T0);
        assert_eq!(recv(&mut tun, &d, 1, T0), Err(DropReason::LinkMismatch));
        let (d, _) = send(&mut tun, &vrrp_from(2), T0);
        assert_eq!(recv(&mut tap, &d, 2, T0), Err(DropReason::LinkMismatch));
    }

    #[test]
    fn tap_learns_virtual_router_macs_and_follows_them() {
        let (mut a, mut b, mut c) = tap_cluster3();
        let vmac = UCARP_VHID1;
        // Unknown: unicast to it goes to every peer, like a switch floods.
        let tok = testpkt::v4_udp(v4(2), v4(1), 5405, b"t");
        let to_vmac = ethernet(vmac, node_mac(v4(2)), ETHERTYPE_IPV4, &tok);
        let (_, target) = send(&mut b, &to_vmac, T0);
        assert_eq!(target, Target::All);
        // Node 1 (master) advertises from the vMAC: node 2 learns it.
        let (d, _) = send(&mut a, &carp_frame(1), T0);
        assert!(recv(&mut b, &d, 1, T0).is_ok());
        let h1 = peer_index(&b, "h1");
        assert_eq!(b.learned_owner(vmac, T0), Some(h1));
        let (_, target) = send(&mut b, &to_vmac, T0);
        assert_eq!(target, Target::Peer(h1));
        // Node 3 takes over: the vMAC moves with it, one owner at a time.
        let (d, _) = send(&mut c, &carp_frame(3), T0 + 1);
        assert!(recv(&mut b, &d, 3, T0 + 1).is_ok());
        assert_eq!(b.learned_owner(vmac, T0 + 1), Some(peer_index(&b, "h3")));
        // Forgotten after the TTL.
        assert_eq!(b.learned_owner(vmac, T0 + 1 + LEARNED_TTL_MS), None);
        // Node MACs are known from the configuration, not learned.
        assert_eq!(b.learned_owner(node_mac(v4(1)), T0), None);
    }

    #[test]
    fn tap_learning_is_bounded_per_peer() {
        let (mut a, mut b, _) = tap_cluster3();
        let h1 = peer_index(&b, "h1");
        // Node 1 masters six VHIDs in turn; only its four latest are kept.
        for vhid in 1..=6u8 {
            let mut f = carp_frame(1);
            f[11] = vhid;
            let now = T0 + u64::from(vhid);
            let (d, _) = send(&mut a, &f, now);
            assert!(recv(&mut b, &d, 1, now).is_ok());
        }
        let now = T0 + 10;
        let owned: Vec<u8> = (1..=6u8)
            .filter(|v| b.learned_owner([0, 0, 0x5e, 0, 0, *v], now) == Some(h1))
            .collect();
        assert_eq!(owned, vec![3, 4, 5, 6]);
        assert_eq!(LEARNED_PER_PEER, 4);
    }
}
