//! Relays of a cluster of nodes 1..=n in one process, that meet, send and
//! receive without sockets: for the core's unit tests, the fuzz targets
//! (built afresh for every input, so a crash replays from the input
//! alone), the allocation test and the core benchmark. One copy, so every
//! one of them runs the same cluster: start time, key, addresses.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::core::allow::{AllowList, Preset};
use crate::core::counters::DropReason;
use crate::core::relay::{
    Inbound, Link, NodeAddrs, Now, Outbound, PeerId, PeerSpec, Relay, RelayParams, Security, Target,
};
use crate::proto::crypto::{ClusterKey, KeySchedule};
use crate::proto::packet::PROTO_VRRP;
use crate::proto::wire::{HEADER_LEN, HELLO_LEN, Header, Hello, Kind};
use crate::testing::packets as testpkt;

/// When the cluster starts (wall ms); also each node's epoch base.
pub const T0: u64 = 1_800_000_000_000;
pub const KEY: [u8; 32] = [0x42; 32];
pub const SKEW: u64 = 10_000;

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

/// Node `n`'s epoch when started at `T0`.
pub fn epoch_of(n: u8) -> u64 {
    T0 * 1_000_000 + u64::from(n)
}

pub fn allow() -> AllowList {
    AllowList::of_presets(&[
        Preset::Vrrp,
        Preset::Carp,
        Preset::Heartbeat,
        Preset::Corosync,
    ])
}

/// The cluster's key.
pub fn key() -> Security {
    Security::Authenticated(ClusterKey::from_bytes(KEY))
}

/// Node `me` of a three-node cluster on a tun, started at `T0`.
pub fn node(me: u8) -> Relay {
    node_with(me, 3, T0, key())
}

/// Node `me` of a three-node cluster with a tap (`Link::Ethernet`) or tun
/// interface.
pub fn node_on(me: u8, link: Link) -> Relay {
    node_link(me, 3, T0, key(), 5_000, link)
}

/// Node `me` of a cluster of nodes 1..=count, started at `start_ms`.
pub fn node_with(me: u8, count: u8, start_ms: u64, security: Security) -> Relay {
    node_full(me, count, start_ms, security, 5_000)
}

pub fn node_full(me: u8, count: u8, start_ms: u64, security: Security, rate: u32) -> Relay {
    node_link(me, count, start_ms, security, rate, Link::Ip)
}

pub fn node_link(
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
    let mut r = Relay::new(RelayParams {
        local: addrs(me),
        link,
        prefix_len: 24,
        peers,
        allow: allow(),
        security,
        epoch: start_ms * 1_000_000 + u64::from(me),
        max_clock_skew_ms: SKEW,
        inject_rate_limit: rate,
        keepalive_ms: 1000,
        quorum: false,
        challenge_secret: [me.wrapping_add(start_ms as u8); 32],
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

pub fn vrrp_from(n: u8) -> Vec<u8> {
    testpkt::v4(
        overlay(n),
        Ipv4Addr::new(224, 0, 0, 18),
        PROTO_VRRP,
        &[0x21, 1, 150, 1, 0, 1, 0, 0],
    )
}

pub fn send(r: &mut Relay, pkt: &[u8], now: u64) -> (Vec<u8>, Target) {
    let mut out = [0u8; 2048];
    match r.from_tun(pkt, now, &mut out) {
        Outbound::Send { len, target } => (out[..len].to_vec(), target),
        Outbound::Drop(d) => panic!("dropped on send: {d}"),
    }
}

pub fn recv(r: &mut Relay, dgram: &[u8], from: u8, now: u64) -> Result<Vec<u8>, DropReason> {
    let mut buf = dgram.to_vec();
    let mut out = [0u8; 256];
    match r.from_net(&mut buf, endpoint(from), now, &mut out) {
        Inbound::Inject { start, len, .. } => Ok(buf[start..start + len].to_vec()),
        Inbound::Drop(d) => Err(d),
        other => panic!("a data datagram produced {other:?}"),
    }
}

/// Runs the hello handshake among `nodes` (node number, relay) until
/// nobody has anything left to say; hellos to a node not in `nodes` are
/// lost. Returns the hellos exchanged as (from, to, bytes).
pub fn meet(nodes: &mut [(u8, &mut Relay)], now: u64) -> Vec<(u8, u8, Vec<u8>)> {
    let mut log = Vec::new();
    let mut queue: VecDeque<(u8, u8, Vec<u8>)> = VecDeque::new();
    for _round in 0..10 {
        for (n, r) in nodes.iter_mut() {
            let mut out = [0u8; 256];
            while let Some((len, p)) = r.poll_hello(now, &mut out) {
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
            let mut out = [0u8; 256];
            if let Inbound::Reply { len, peer } =
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

/// `from`'s (node `n`) due hellos: those to `to` (node `m`) delivered and
/// answered, the others lost.
pub fn exchange(from: &mut Relay, n: u8, to: &mut Relay, m: u8, now: impl Into<Now> + Copy) {
    let mut q = [0u8; 256];
    while let Some((len, p)) = from.poll_hello(now, &mut q) {
        if number(from, p) != m {
            continue;
        }
        let mut d = q[..len].to_vec();
        let mut r = [0u8; 256];
        if let Inbound::Reply { len, .. } = to.from_net(&mut d, endpoint(n), now, &mut r) {
            let mut back = r[..len].to_vec();
            let _ = from.from_net(&mut back, endpoint(m), now, &mut q);
        }
    }
}

pub fn peer_index(r: &Relay, name: &str) -> PeerId {
    r.peer_by_name(name).expect("peer")
}

/// A datagram with header `h` and `payload` sealed under `keys`: what
/// any key holder can send.
pub fn seal(keys: &KeySchedule, h: Header, payload: &[u8]) -> Vec<u8> {
    let mut d = vec![0u8; HEADER_LEN];
    h.encode(&mut d);
    let mut body = payload.to_vec();
    let tag = keys
        .stream_key(h.sender, h.epoch)
        .seal(h.counter, &d, &mut body);
    d.extend_from_slice(&body);
    d.extend_from_slice(&tag);
    d
}

/// The plaintext of datagram `d` if it opens under `keys`.
pub fn open(keys: &KeySchedule, d: &[u8]) -> Option<Vec<u8>> {
    let h = Header::parse(d).ok()?;
    let mut body = d.get(HEADER_LEN..)?.to_vec();
    let len = keys
        .stream_key(h.sender, h.epoch)
        .open(h.counter, &d[..HEADER_LEN], &mut body)
        .ok()?;
    body.truncate(len);
    Some(body)
}

/// A header of `kind` from `sender` (its overlay address) in `epoch`.
pub fn header(kind: Kind, sender: Ipv4Addr, epoch: u64, counter: u64, now: u64) -> Header {
    Header {
        kind,
        flags: 0,
        sender: u32::from(sender),
        epoch,
        counter,
        timestamp_ms: now,
    }
}

/// Seals `payload` as node `n` in `epoch`, with the cluster key.
pub fn forge(kind: Kind, n: u8, epoch: u64, counter: u64, payload: &[u8], now: u64) -> Vec<u8> {
    let h = header(kind, overlay(n), epoch, counter, now);
    seal(&KeySchedule::new(&ClusterKey::from_bytes(KEY)), h, payload)
}

pub fn hello_bytes(h: Hello) -> [u8; HELLO_LEN] {
    let mut b = [0u8; HELLO_LEN];
    h.encode(&mut b);
    b
}
