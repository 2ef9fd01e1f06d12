//! In-process relays for the core's unit tests: a cluster of nodes
//! numbered 1..=n that can meet, send and receive without sockets.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::core::allow::{AllowList, Preset};
use crate::core::counters::DropReason;
use crate::core::relay::*;
use crate::proto::crypto::{ClusterKey, KeySchedule};
use crate::proto::packet::PROTO_VRRP;
use crate::proto::wire::{HEADER_LEN, HELLO_LEN, Header, Hello, Kind};
use crate::testing::packets as testpkt;

pub(super) const KEY: [u8; 32] = [0x42; 32];
pub(super) const T0: u64 = 1_800_000_000_000; // ms
pub(super) const SKEW: u64 = 10_000;

pub(super) fn v4(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 250, 0, n)
}

pub(super) fn v6(n: u16) -> Ipv6Addr {
    Ipv6Addr::new(0xfd00, 0x250, 0, 0, 0, 0, 0, n)
}

pub(super) fn addrs(n: u8) -> NodeAddrs {
    NodeAddrs {
        v4: v4(n),
        v6: Some(v6(u16::from(n))),
    }
}

pub(super) fn ep(n: u8) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, n], 7112))
}

/// Node `me` of a cluster of nodes 1..=count, started at `start_ms`.
pub(super) fn node_with(me: u8, count: u8, start_ms: u64, security: Security) -> Relay {
    node_full(me, count, start_ms, security, 5_000)
}

pub(super) fn node_full(me: u8, count: u8, start_ms: u64, security: Security, rate: u32) -> Relay {
    node_link(me, count, start_ms, security, rate, Link::Ip)
}

pub(super) fn node_link(
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
        quorum: false,
        challenge_secret: [me.wrapping_add(start_ms as u8); 32],
    });
    let ids: Vec<PeerId> = r.peers().collect();
    for id in ids {
        let n: u8 = r.peer_name(id).expect("peer")[1..].parse().expect("name");
        r.set_endpoint(id, Some(ep(n)));
    }
    r
}

pub(super) fn node(me: u8) -> Relay {
    node_with(
        me,
        3,
        T0,
        Security::Authenticated(ClusterKey::from_bytes(KEY)),
    )
}

pub(super) fn vrrp_from(n: u8) -> Vec<u8> {
    testpkt::v4(
        v4(n),
        Ipv4Addr::new(224, 0, 0, 18),
        PROTO_VRRP,
        &[0x21, 1, 150, 1, 0, 1, 0, 0],
    )
}

pub(super) fn send(r: &mut Relay, pkt: &[u8], now: u64) -> (Vec<u8>, Target) {
    let mut out = [0u8; 2048];
    match r.from_tun(pkt, now, &mut out) {
        Outbound::Send { len, target } => (out[..len].to_vec(), target),
        Outbound::Drop(d) => panic!("dropped on send: {d}"),
    }
}

pub(super) fn recv(r: &mut Relay, dgram: &[u8], from: u8, now: u64) -> Result<Vec<u8>, DropReason> {
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
pub(super) fn meet(nodes: &mut [(u8, &mut Relay)], now: u64) -> Vec<(u8, u8, Vec<u8>)> {
    let mut log = Vec::new();
    let mut queue: std::collections::VecDeque<(u8, u8, Vec<u8>)> = Default::default();
    for _round in 0..10 {
        for (n, r) in nodes.iter_mut() {
            let mut out = [0u8; 256];
            while let Some((len, p)) = r.poll_hello(now, &mut out) {
                let to: u8 = r.peer_name(p).expect("peer")[1..].parse().expect("name");
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
            if let Inbound::Reply { len, peer } = r.from_net(&mut buf, ep(from), now, &mut out) {
                let back: u8 = r.peer_name(peer).expect("peer")[1..].parse().expect("name");
                queue.push_back((to, back, out[..len].to_vec()));
            }
        }
    }
    panic!("the handshake did not settle");
}

/// Three nodes that have met.
pub(super) fn cluster3() -> (Relay, Relay, Relay) {
    let (mut a, mut b, mut c) = (node(1), node(2), node(3));
    meet(&mut [(1, &mut a), (2, &mut b), (3, &mut c)], T0);
    (a, b, c)
}

pub(super) fn peer_index(r: &Relay, name: &str) -> PeerId {
    r.peer_by_name(name).expect("peer")
}

/// Seals `payload` as node `n` in `epoch`, with the cluster key: what
/// any key holder can do.
pub(super) fn forge(
    kind: Kind,
    n: u8,
    epoch: u64,
    counter: u64,
    payload: &[u8],
    now: u64,
) -> Vec<u8> {
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

pub(super) fn hello_bytes(h: Hello) -> [u8; HELLO_LEN] {
    let mut b = [0u8; HELLO_LEN];
    h.encode(&mut b);
    b
}

/// The cluster's key.
pub(super) fn key() -> Security {
    Security::Authenticated(ClusterKey::from_bytes(KEY))
}
