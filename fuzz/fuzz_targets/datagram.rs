//! Fuzzes the receive path: arbitrary bytes as a datagram from the network
//! into a relay that has met its peer, and arbitrary bytes as an inner
//! packet correctly sealed by that peer, so the fuzzer reaches the checks
//! behind authentication too. Property: never a panic, and whatever is
//! injected is a well-formed IP packet from the sending peer's own overlay
//! address to an allowed multicast group, the broadcast address or the
//! receiver's own address.
#![no_main]

use libfuzzer_sys::fuzz_target;

use mcast_relay::allow::DestKind;
use mcast_relay::crypto::KeySchedule;
use mcast_relay::packet;
use mcast_relay::relay::Inbound;
use mcast_relay::wire::{HEADER_LEN, Header, Hello, Kind};

#[path = "../../integration/inproc.rs"]
mod inproc;
use inproc::*;

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
    let _ = Header::parse(rest);
    let _ = Hello::parse(rest);
    let mut a = node(1);
    let mut b = node(2);
    meet(&mut a, &mut b);
    let mut out = [0u8; 256];
    let mut buf = if mode & 1 == 0 {
        // Raw bytes off the network.
        rest.to_vec()
    } else {
        // A genuine datagram from h1 carrying arbitrary bytes.
        let h = Header {
            kind: if mode & 2 == 0 {
                Kind::Data
            } else {
                Kind::Hello
            },
            flags: 0,
            sender: addrs(1).id(),
            epoch: epoch_of(1),
            counter: 1000 + u64::from(mode >> 2),
            timestamp_ms: T0,
        };
        let mut d = vec![0u8; HEADER_LEN];
        h.encode(&mut d);
        let mut body = rest.to_vec();
        let tag = KeySchedule::new(&mcast_relay::crypto::ClusterKey::from_bytes(KEY))
            .stream_key(h.sender, h.epoch)
            .seal(h.counter, &d, &mut body);
        d.extend_from_slice(&body);
        d.extend_from_slice(&tag);
        d
    };
    let before = buf.clone();
    match b.from_net(&mut buf, endpoint(1), T0, &mut out) {
        Inbound::Inject { start, len, .. } => {
            assert!(mode & 1 == 1, "raw bytes were injected without the key");
            let inner = &buf[start..start + len];
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
});
