//! Fuzzes the receive path of a relay (authenticated with a fixed test
//! key, peers h1 and h3, the vrrp/heartbeat/corosync presets) that has
//! completed the hello handshake with h1. The first input byte picks the
//! mode: even, the rest goes to `from_net` as raw bytes off the network
//! (and to `Header::parse`/`Hello::parse`); odd, the rest is sealed with
//! the real key as a genuine data or hello datagram of h1, so the fuzzer
//! also reaches everything behind authentication. A keepalive poll
//! follows each datagram.
//!
//! Properties: never a panic; nothing is injected that does not open under
//! the cluster key, and what is injected is exactly what was sealed, a
//! well-formed IP packet from h1's own overlay address to an allowed
//! group, the broadcast address or this node, permitted by the allow
//! rules; the same datagram twice is never injected twice.
#![no_main]

use libfuzzer_sys::fuzz_target;

use mcast_relay::core::{DestKind, Inbound};
use mcast_relay::proto::crypto::{ClusterKey, KeySchedule};
use mcast_relay::proto::packet;
use mcast_relay::proto::wire::{HEADER_LEN, Header, Hello, Kind, TAG_LEN};

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

/// The plaintext of `datagram` if it opens under the cluster key.
fn open_as_member(datagram: &[u8]) -> Option<Vec<u8>> {
    open(&KeySchedule::new(&ClusterKey::from_bytes(KEY)), datagram)
}

/// `payload` sealed as h1, whose datagrams h2 accepts.
fn seal_as_h1(kind: Kind, counter: u64, payload: &[u8]) -> Vec<u8> {
    forge(kind, 1, epoch_of(1), counter, payload, T0)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let _ = Header::parse(rest);
    let _ = Hello::parse(rest);
    let mut a = node(1);
    let mut b = node(2);
    meet(&mut [(1, &mut a), (2, &mut b)], T0);
    let mut out = [0u8; 256];
    let sealed = mode & 1 == 1;
    let mut buf = if sealed {
        let kind = if mode & 2 == 0 {
            Kind::Data
        } else {
            Kind::Hello
        };
        seal_as_h1(kind, 1000 + u64::from(mode >> 2), rest)
    } else {
        rest.to_vec()
    };
    let before = buf.clone();
    match b.from_net(&mut buf, endpoint(1), T0, &mut out) {
        Inbound::Inject { start, len, .. } => {
            let inner = &buf[start..start + len];
            let plain = open_as_member(&before).expect("injected a datagram that does not open");
            assert_eq!(inner, &plain[..], "injected something else than was sealed");
            assert_eq!(before.len(), HEADER_LEN + len + TAG_LEN);
            if sealed {
                assert_eq!(inner, rest, "the injected packet is not what was sealed");
            }
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
        while let Some((len, p)) = b.poll_hello(now, &mut out) {
            assert!(len <= out.len() && b.peer_name(p).is_some());
        }
    }
});
