//! Fuzzes the inner-packet classifier: arbitrary bytes as an IP packet,
//! through the parser and the allow rules for every kind of destination,
//! and through the send path as if read from the interface. Property:
//! never a panic; what the send path relays parses and is permitted.
#![no_main]

use libfuzzer_sys::fuzz_target;

use mcast_relay::allow::DestKind;
use mcast_relay::packet;
use mcast_relay::relay::Outbound;

#[path = "../../integration/inproc.rs"]
mod inproc;
use inproc::*;

fuzz_target!(|data: &[u8]| {
    let rules = allow();
    let parsed = packet::parse(data);
    if let Ok(inner) = &parsed {
        let _ = inner.is_kernel_noise();
        for kind in [DestKind::Multicast, DestKind::Broadcast, DestKind::Unicast] {
            let _ = rules.permits(inner, kind);
        }
    }
    let mut a = node(1);
    let mut out = [0u8; 2048];
    if let Outbound::Send { len, .. } = a.from_tun(data, T0, &mut out) {
        assert!(
            len >= data.len(),
            "a sealed datagram is shorter than its packet"
        );
        let inner = parsed.expect("relayed a packet that does not parse");
        assert!(
            addrs(1).owns(inner.src),
            "relayed a packet from {}",
            inner.src
        );
    }
});
