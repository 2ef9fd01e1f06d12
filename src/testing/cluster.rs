//! Relays of a three-node cluster in one process, and the hello handshake
//! between two of them: for the fuzz targets (built afresh for every input,
//! so a crash replays from the input alone), the allocation test and the
//! core benchmark, which need a relay that has met its peer without a
//! network.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::core::allow::{AllowList, Preset};
use crate::core::relay::{Inbound, Link, NodeAddrs, PeerSpec, Relay, RelayParams, Security};
use crate::proto::crypto::ClusterKey;

pub const T0: u64 = 1_790_000_000_000;
pub const KEY: [u8; 32] = [7; 32];

pub fn overlay(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 250, 0, n)
}

pub fn addrs(n: u8) -> NodeAddrs {
    NodeAddrs {
        v4: overlay(n),
        v6: Some(
            format!("fd00:250::{n}")
                .parse()
                .unwrap_or(std::net::Ipv6Addr::LOCALHOST),
        ),
    }
}

pub fn endpoint(n: u8) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 77, 0, n)), 7112)
}

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

pub fn node(me: u8) -> Relay {
    node_on(me, Link::Ip)
}

/// Node `me` with a tap (`Link::Ethernet`) or tun interface.
pub fn node_on(me: u8, link: Link) -> Relay {
    let peers = (1..=3)
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
        security: Security::Authenticated(ClusterKey::from_bytes(KEY)),
        epoch: epoch_of(me),
        max_clock_skew_ms: 10_000,
        inject_rate_limit: 5_000,
        keepalive_ms: 1000,
        quorum: false,
        challenge_secret: [me; 32],
    });
    for n in 1..=3 {
        r.set_endpoint(addrs(n).peer_id(), Some(endpoint(n)));
    }
    r
}

/// Runs the hello handshake between `a` (node 1) and `b` (node 2) until
/// neither has anything left to say; node 3 never answers.
pub fn meet(a: &mut Relay, b: &mut Relay) {
    let mut queue: Vec<(u8, Vec<u8>)> = Vec::new();
    for _ in 0..8 {
        let mut out = [0u8; 256];
        for (n, r) in [(1u8, &mut *a), (2u8, &mut *b)] {
            while let Some((len, p)) = r.poll_hello(T0, &mut out) {
                if r.peer_name(p) != Some("h3") {
                    queue.push((n, out[..len].to_vec()));
                }
            }
        }
        if queue.is_empty() {
            return;
        }
        for (from, mut d) in std::mem::take(&mut queue) {
            let to = if from == 1 { &mut *b } else { &mut *a };
            if let Inbound::Reply { len, .. } = to.from_net(&mut d, endpoint(from), T0, &mut out) {
                queue.push((3 - from, out[..len].to_vec()));
            }
        }
    }
}
