//! Relays of a cluster of nodes 1..=n in one process, that meet, send and
//! receive without sockets: for the core's unit tests, the fuzz targets
//! (built afresh for every input, so a crash replays from the input
//! alone), the allocation test and the core benchmark. One copy, so every
//! one of them runs the same cluster: start time, keys, addresses.
//!
//! Node `n`'s private key is 32 bytes of `n`: fixed, so a test (or a fuzz
//! input) replays; every node has its own, as in a real cluster.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::core::Redundancy;
use crate::core::allow::{AllowList, Preset};
use crate::core::counters::DropReason;
use crate::core::relay::{
    Datagrams, Inbound, Link, NodeAddrs, Now, OVERHEAD, Outbound, PeerId, PeerSpec, Relay,
    RelayParams, Security, Target,
};
use crate::proto::crypto::StreamKey;
use crate::proto::keys::{PrivateKey, PublicKey};
use crate::proto::packet::PROTO_VRRP;
use crate::proto::wire::{HEADER_LEN, Header, Kind, Prefix};
use crate::testing::packets as testpkt;

/// When the cluster starts (wall ms).
pub const T0: u64 = 1_800_000_000_000;
pub const SKEW: u64 = 10_000;
/// Room for any datagram the tests send.
pub const MAX_DATAGRAM: usize = 2048;

/// Node `n`'s overlay IPv4 address, which is also its `PeerId`.
pub fn overlay(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 250, 0, n)
}

pub fn v6(n: u16) -> Ipv6Addr {
    Ipv6Addr::new(0xfd00, 0x250, 0, 0, 0, 0, 0, n)
}

pub fn addrs(n: u8) -> NodeAddrs {
    NodeAddrs {
        v4: overlay(n),
        v6: Some(v6(u16::from(n))),
    }
}

/// Node `n`'s underlay endpoint.
pub fn endpoint(n: u8) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, n)), 7112)
}

/// Node `n`'s private key.
pub fn private_key(n: u8) -> PrivateKey {
    PrivateKey::from_bytes([n; 32])
}

pub fn public_key(n: u8) -> PublicKey {
    private_key(n).public()
}

/// Node `n`'s own key, as its relay holds it.
pub fn key(n: u8) -> Security {
    Security::Authenticated(private_key(n))
}

/// Node `n`'s run when started at `start_ms`.
pub fn run_of(n: u8, start_ms: u64) -> u64 {
    start_ms * 1000 + u64::from(n)
}

pub fn allow() -> AllowList {
    AllowList::of_presets(&[
        Preset::Vrrp,
        Preset::Carp,
        Preset::Heartbeat,
        Preset::Corosync,
    ])
}

/// Node `me` of a three-node cluster on a tun, started at `T0`.
pub fn node(me: u8) -> Relay {
    node_with(me, 3, T0, key(me))
}

/// Node `me` of a three-node cluster with a tap (`Link::Ethernet`) or tun
/// interface.
pub fn node_on(me: u8, link: Link) -> Relay {
    node_link(me, 3, T0, key(me), 5_000, link)
}

/// Node `me` of a cluster of nodes 1..=count, started at `start_ms`.
pub fn node_with(me: u8, count: u8, start_ms: u64, security: Security) -> Relay {
    node_full(me, count, start_ms, security, 5_000)
}

pub fn node_full(me: u8, count: u8, start_ms: u64, security: Security, rate: u32) -> Relay {
    node_link(me, count, start_ms, security, rate, Link::Ip)
}

/// The other members as node `me` knows them from the cluster file.
pub fn peer_specs(me: u8, count: u8, with_keys: bool) -> Vec<PeerSpec> {
    (1..=count)
        .filter(|n| *n != me)
        .map(|n| PeerSpec {
            name: format!("h{n}"),
            addrs: addrs(n),
            public_key: with_keys.then(|| public_key(n)),
        })
        .collect()
}

pub fn node_link(
    me: u8,
    count: u8,
    start_ms: u64,
    security: Security,
    rate: u32,
    link: Link,
) -> Relay {
    let with_keys = matches!(security, Security::Authenticated(_));
    let mut r = Relay::new(RelayParams {
        local: addrs(me),
        link,
        prefix_len: 24,
        peers: peer_specs(me, count, with_keys),
        allow: allow(),
        security,
        run: run_of(me, start_ms),
        max_clock_skew_ms: SKEW,
        inject_rate_limit: rate,
        keepalive_ms: 1000,
        quorum: false,
        redundancy: Redundancy::default(),
        vips: Vec::new(),
    });
    for n in (1..=count).filter(|n| *n != me) {
        r.set_endpoint(addrs(n).peer_id(), Some(endpoint(n)));
    }
    r
}

/// The node number of peer `p`, from its name `h<n>`.
fn number(r: &Relay, p: PeerId) -> u8 {
    r.peer_name(p)
        .and_then(|name| name.strip_prefix('h'))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The node number of relay `r` itself (its overlay address's last byte).
pub fn me(r: &Relay) -> u8 {
    r.local_addrs().v4.octets()[3]
}

pub fn vrrp_from(n: u8) -> Vec<u8> {
    testpkt::v4(
        overlay(n),
        Ipv4Addr::new(224, 0, 0, 18),
        PROTO_VRRP,
        &[0x21, 1, 150, 1, 0, 1, 0, 0],
    )
}

/// What one packet from the interface became: a datagram per node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sent {
    pub to: Vec<(u8, Vec<u8>)>,
}

impl Sent {
    /// The datagram for node `n`; empty if none went to it.
    pub fn for_node(&self, n: u8) -> &[u8] {
        self.to
            .iter()
            .find(|(m, _)| *m == n)
            .map_or(&[][..], |(_, d)| d.as_slice())
    }

    pub fn len(&self) -> usize {
        self.to.len()
    }

    pub fn is_empty(&self) -> bool {
        self.to.is_empty()
    }
}

/// Bytes that a node receives: a raw datagram, or its own one of a
/// [`Sent`].
pub trait Datagram {
    fn for_node(&self, n: u8) -> &[u8];
}

impl Datagram for Sent {
    fn for_node(&self, n: u8) -> &[u8] {
        Sent::for_node(self, n)
    }
}

impl Datagram for Vec<u8> {
    fn for_node(&self, _: u8) -> &[u8] {
        self
    }
}

impl Datagram for [u8] {
    fn for_node(&self, _: u8) -> &[u8] {
        self
    }
}

impl<const N: usize> Datagram for [u8; N] {
    fn for_node(&self, _: u8) -> &[u8] {
        self
    }
}

/// A batch with room for any test cluster.
pub fn batch() -> Datagrams {
    Datagrams::new(MAX_DATAGRAM + OVERHEAD, 16)
}

pub fn send(r: &mut Relay, pkt: &[u8], now: u64) -> (Sent, Target) {
    let mut out = batch();
    match r.from_tun(pkt, now, &mut out) {
        Outbound::Send { target } => {
            let to = out
                .iter()
                .map(|(p, _, d)| (number(r, p), d.to_vec()))
                .collect();
            (Sent { to }, target)
        }
        Outbound::Drop(d) => panic!("dropped on send: {d}"),
    }
}

pub fn recv<D: Datagram + ?Sized>(
    r: &mut Relay,
    dgram: &D,
    from: u8,
    now: u64,
) -> Result<Vec<u8>, DropReason> {
    let mut buf = dgram.for_node(me(r)).to_vec();
    let mut out = [0u8; MAX_DATAGRAM];
    match r.from_net(&mut buf, endpoint(from), now, &mut out) {
        Inbound::Inject { start, len, .. } => Ok(buf[start..start + len].to_vec()),
        Inbound::Drop(d) => Err(d),
        other => panic!("a data datagram produced {other:?}"),
    }
}

/// Runs the handshakes and keepalives among `nodes` (node number, relay)
/// until nobody has anything left to say; messages to a node not in
/// `nodes` are lost. Returns the messages exchanged as (from, to, bytes).
pub fn meet(nodes: &mut [(u8, &mut Relay)], now: u64) -> Vec<(u8, u8, Vec<u8>)> {
    let mut log = Vec::new();
    let mut queue: VecDeque<(u8, u8, Vec<u8>)> = VecDeque::new();
    for _round in 0..20 {
        for (n, r) in nodes.iter_mut() {
            let mut out = [0u8; MAX_DATAGRAM];
            while let Some((len, p, _)) = r.poll_hello(now, &mut out) {
                let to = number(r, p);
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
            let mut out = [0u8; MAX_DATAGRAM];
            if let Inbound::Reply { len, peer, .. } =
                r.from_net(&mut buf, endpoint(from), now, &mut out)
            {
                let back = number(r, peer);
                queue.push_back((to, back, out[..len].to_vec()));
            }
        }
    }
    panic!("the handshake did not settle");
}

/// Three nodes that have met.
pub fn cluster3() -> (Relay, Relay, Relay) {
    let (mut a, mut b, mut c) = (node(1), node(2), node(3));
    meet(&mut [(1, &mut a), (2, &mut b), (3, &mut c)], T0);
    (a, b, c)
}

/// `from`'s (node `n`) due handshakes and keepalives: those to `to` (node
/// `m`) delivered and answered, the others lost.
pub fn exchange(from: &mut Relay, n: u8, to: &mut Relay, m: u8, now: impl Into<Now> + Copy) {
    let mut q = [0u8; MAX_DATAGRAM];
    while let Some((len, p, _)) = from.poll_hello(now, &mut q) {
        if number(from, p) != m {
            continue;
        }
        let mut d = q[..len].to_vec();
        let mut r = [0u8; MAX_DATAGRAM];
        if let Inbound::Reply { len, .. } = to.from_net(&mut d, endpoint(n), now, &mut r) {
            let mut back = r[..len].to_vec();
            let _ = from.from_net(&mut back, endpoint(m), now, &mut q);
        }
    }
}

pub fn peer_index(r: &Relay, name: &str) -> PeerId {
    r.peer_by_name(name).expect("peer")
}

/// A transport header of `kind` claiming to come from node `n`.
pub fn header(kind: Kind, n: u8, receiver: u32, counter: u64) -> Header {
    Header {
        prefix: Prefix {
            kind,
            flags: 0,
            copy: 0,
            sender: u32::from(overlay(n)),
        },
        receiver,
        counter,
    }
}

/// The session index and counter in a transport datagram.
pub fn index_and_counter(d: &[u8]) -> (u32, u64) {
    let p = Prefix::parse(d).expect("a transport datagram");
    let h = Header::parse(p, d);
    (h.receiver, h.counter)
}

/// A datagram with header `h` and `payload` sealed under a key nobody in
/// the cluster holds: what anyone, member or not, can make of another
/// member's session without its keys.
pub fn forge(h: Header, payload: &[u8]) -> Vec<u8> {
    let mut d = vec![0u8; HEADER_LEN];
    h.encode(&mut d);
    let mut body = payload.to_vec();
    let tag = StreamKey::new(&[0x5a; 32]).seal(h.counter, &d, &mut body);
    d.extend_from_slice(&body);
    d.extend_from_slice(&tag);
    d
}

/// `d` with its sender id replaced by node `n`'s: a member relabelling its
/// own datagram as another's.
pub fn relabel(d: &[u8], n: u8) -> Vec<u8> {
    let mut d = d.to_vec();
    d[4..8].copy_from_slice(&u32::from(overlay(n)).to_be_bytes());
    d
}

/// Rewrites the MAC at the end of handshake message `msg` for node `n`'s
/// public key: what anyone with the cluster file can do after changing
/// the message, so tests reach the checks behind the MAC.
pub fn resign(msg: &mut [u8], n: u8) {
    let at = msg.len() - crate::proto::wire::MAC_LEN;
    let mac = crate::proto::crypto::MacKey::for_receiver(&public_key(n)).sign(&msg[..at]);
    msg[at..].copy_from_slice(&mac);
}
