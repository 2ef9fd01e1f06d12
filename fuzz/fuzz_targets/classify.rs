//! Fuzzes the inner-packet classifier with arbitrary bytes as an IP packet,
//! in both directions: as read from the local interface (`from_tun`: parse,
//! kernel noise, own source, route, allow rules, seal) and as received from
//! each peer (`classify_inbound`, the check `from_net` makes after
//! authentication); plus the allow rules for every kind of destination and
//! the VRRP/CARP advert decoder the daemon runs on packets both ways
//! (`vrrp_watch`). Property: never a panic; what the send path relays
//! parses and comes from this node's address; what the receive path
//! accepts comes from that peer's address and is permitted by the allow
//! rules. The same bytes as an Ethernet frame go through a tap-mode relay:
//! what it relays or accepts must be a frame from the node's own MAC (or a
//! virtual-router MAC) whose IP packet or ARP claim speaks for that node.
#![no_main]

use libfuzzer_sys::fuzz_target;

use mcast_relay::core::{DestKind, Link, Node, Outbound, Security, Watch, parse_advert};
use mcast_relay::proto::frame::{self, Body};
use mcast_relay::proto::packet;

use mcast_relay::testing::cluster::*;

fuzz_target!(|data: &[u8]| {
    let rules = allow();
    let parsed = packet::parse(data);
    if let Ok(inner) = &parsed {
        let _ = inner.is_kernel_noise();
        for kind in [DestKind::Multicast, DestKind::Broadcast, DestKind::Unicast] {
            let _ = rules.permits(inner, kind);
        }
    }
    // Both ways, the core shows every packet it relays to the advert watch.
    let _ = parse_advert(data);
    let mut watch = Watch::default();
    let (h1, h2) = (Node::Peer(addrs(1).peer_id()), Node::Peer(addrs(2).peer_id()));
    for (i, node) in [Node::Me, h1, Node::Me, h2].into_iter().enumerate() {
        let _ = watch.observe(node, data, T0 + 10 * i as u64);
    }
    let _ = watch.tick(T0 + 60_000);
    // Insecure, so that every peer gets a datagram without handshakes:
    // this target is about what is relayed, not how it is sealed.
    let mut a = node_with(1, 3, T0, Security::Insecure);
    // From the interface.
    let mut out = batch();
    if let Outbound::Send { .. } = a.from_tun(data, T0, &mut out) {
        assert!(
            out.iter().all(|(_, _, d)| d.len() >= data.len()),
            "a sealed datagram is shorter than its packet"
        );
        let inner = parsed.expect("relayed a packet that does not parse");
        assert!(
            addrs(1).owns(inner.src),
            "relayed a packet from {}",
            inner.src
        );
    }
    // From each peer, as if authenticated.
    for p in a.peers() {
        if a.classify_inbound(p, data).is_ok() {
            let inner = parsed.expect("accepted a packet that does not parse");
            let n: u8 = a
                .peer_name(p)
                .and_then(|s| s.get(1..)?.parse().ok())
                .unwrap_or(0);
            assert!(
                addrs(n).owns(inner.src),
                "accepted from h{n} a packet from {}",
                inner.src
            );
            assert!(
                [DestKind::Multicast, DestKind::Broadcast, DestKind::Unicast]
                    .iter()
                    .any(|k| rules.permits(&inner, *k)),
                "accepted a packet no allow rule permits"
            );
        }
    }
    tap_mode(data);
});

/// The bytes as a frame on a tap: both directions.
fn tap_mode(data: &[u8]) {
    let mut a = node_link(1, 3, T0, Security::Insecure, 5_000, Link::Ethernet);
    let mut out = batch();
    if let Outbound::Send { .. } = a.from_tun(data, T0, &mut out) {
        speaks_for(1, data, "relayed");
    }
    for p in a.peers() {
        if a.classify_inbound(p, data).is_ok() {
            let n: u8 = a
                .peer_name(p)
                .and_then(|s| s.get(1..)?.parse().ok())
                .unwrap_or(0);
            speaks_for(n, data, "accepted");
        }
    }
}

/// `frame` is node `n`'s: its MAC (or a virtual-router MAC for IP), and
/// an IP source or ARP sender address of its own (or unspecified).
fn speaks_for(n: u8, data: &[u8], what: &str) {
    let f =
        frame::parse(data).unwrap_or_else(|e| panic!("{what} a frame that does not parse: {e:?}"));
    let own_mac = f.src == frame::node_mac(overlay(n));
    match f.body {
        Body::Ip { start, len } => {
            assert!(
                own_mac || frame::is_virtual_router(f.src),
                "{what} IP from MAC {:02x?}",
                f.src
            );
            let inner = packet::parse(&data[start..start + len])
                .unwrap_or_else(|_| panic!("{what} a frame whose IP does not parse"));
            assert!(
                addrs(n).owns(inner.src) || inner.src.is_unspecified(),
                "{what} as h{n} a packet from {}",
                inner.src
            );
        }
        Body::Arp(arp) => {
            assert!(
                own_mac && arp.sender_mac == f.src,
                "{what} ARP from MAC {:02x?}",
                f.src
            );
            assert!(
                arp.sender_ip == overlay(n) || arp.sender_ip.is_unspecified(),
                "{what} as h{n} an ARP claim for {}",
                arp.sender_ip
            );
        }
    }
}
