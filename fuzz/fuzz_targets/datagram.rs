//! Fuzzes the receive path of a relay (node 2, with its own key; peers h1
//! and h3; the vrrp/heartbeat/corosync presets) that has a session with
//! h1. The first input byte picks the mode: even, the rest goes to
//! `from_net` as raw bytes off the network (and to the header parsers);
//! odd, the rest is sealed by h1 under its real session with node 2, as
//! data or a keepalive with none of h1's local checks, so the fuzzer also
//! reaches everything behind authentication. Timers and keepalives follow
//! each datagram.
//!
//! Properties: never a panic; nothing raw is ever injected (only a session
//! key opens a datagram); what is injected is exactly what h1 sealed, a
//! well-formed IP packet from h1's own overlay address to an allowed
//! group, the broadcast address or this node, permitted by the allow
//! rules; the same datagram twice is never injected twice; and whatever
//! came in, h1's next genuine datagram is still injected.
#![no_main]

use libfuzzer_sys::fuzz_target;

use mcast_relay::core::{DestKind, Inbound};
use mcast_relay::proto::packet;
use mcast_relay::proto::wire::{HEADER_LEN, Header, Kind, Prefix, TAG_LEN};

use mcast_relay::testing::cluster::*;

/// An independent look at an injected packet (not the relay's own code).
fn check_injected(inner_bytes: &[u8]) {
    let inner = packet::parse(inner_bytes).expect("injected a packet that does not parse");
    assert!(
        addrs(1).owns(inner.src),
        "injected a packet from {} for peer h1",
        inner.src
    );
    let kind = match inner.dst {
        std::net::IpAddr::V4(d)
            if d == std::net::Ipv4Addr::new(10, 250, 0, 255) || d.is_broadcast() =>
        {
            DestKind::Broadcast
        }
        d if d.is_multicast() => DestKind::Multicast,
        d => {
            assert!(addrs(2).owns(d), "injected unicast for {d}, not this node");
            DestKind::Unicast
        }
    };
    assert!(
        allow().permits(&inner, kind),
        "injected a packet [allow] does not permit"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if let Ok(p) = Prefix::parse(rest)
        && p.kind.is_transport()
    {
        let _ = Header::parse(p, rest);
    }
    let mut a = node(1);
    let mut b = node(2);
    meet(&mut [(1, &mut a), (2, &mut b)], T0);
    let h2 = addrs(2).peer_id();
    let mut out = [0u8; MAX_DATAGRAM];
    let sealed = mode & 1 == 1;
    let mut buf = if sealed {
        let kind = if mode & 2 == 0 {
            Kind::Data
        } else {
            Kind::Keepalive
        };
        let mut d = vec![0u8; rest.len() + HEADER_LEN + TAG_LEN];
        match a.seal_unchecked(h2, kind, rest, T0, &mut d) {
            Ok(len) => d.truncate(len),
            Err(_) => return,
        }
        d
    } else {
        rest.to_vec()
    };
    let before = buf.clone();
    match b.from_net(&mut buf, endpoint(1), T0, &mut out) {
        Inbound::Inject { start, len, .. } => {
            assert!(sealed, "injected a datagram nobody sealed");
            let inner = &buf[start..start + len];
            assert_eq!(before.len(), HEADER_LEN + len + TAG_LEN);
            assert_eq!(inner, rest, "the injected packet is not what was sealed");
            check_injected(inner);
        }
        Inbound::Reply { len, .. } => assert!(len <= out.len()),
        _ => {}
    }
    // The same datagram again is never injected.
    let mut again = before;
    assert!(!matches!(
        b.from_net(&mut again, endpoint(1), T0, &mut out),
        Inbound::Inject { .. }
    ));
    // Whatever state the datagram left, the timers still work.
    for now in [T0 + 50, T0 + 1_500] {
        while let Some((len, p, _)) = b.poll_hello(now, &mut out) {
            assert!(len <= out.len() && b.peer_name(p).is_some());
        }
    }
    // And h1's session is intact.
    let (d, _) = send(&mut a, &vrrp_from(1), T0 + 1_500);
    assert!(
        recv(&mut b, &d, 1, T0 + 1_500).is_ok(),
        "a datagram disturbed h1's session"
    );
});
