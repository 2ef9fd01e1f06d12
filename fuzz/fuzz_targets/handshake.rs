//! Fuzzes the handshake: node 2 (its own key, peers h1 and h3, a session
//! with h1 already up) receives initiations and responses made from the
//! input. The first byte picks the kind (initiation or response) and the
//! claimed sender (h1, h3, or a stranger); the rest fills the message to
//! its exact length, and the MAC for node 2 is appended, so the fuzzer gets
//! past the cheap refusal into Noise itself. A genuine initiation of h3,
//! mutated by the input, is the other half of the corpus.
//!
//! Properties: never a panic; a handshake message is never injected;
//! a response node 2 sends is a well-formed response to the claimed
//! member's configured endpoint; and whatever came in, h1's established
//! session is undisturbed: h1's next datagram is injected, and node 2's
//! next keepalive to h1 is answered.
#![no_main]

use libfuzzer_sys::fuzz_target;

use mcast_relay::core::Inbound;
use mcast_relay::proto::crypto::MacKey;
use mcast_relay::proto::wire::{INITIATION_LEN, Kind, MAC_LEN, Prefix, RESPONSE_LEN};

use mcast_relay::testing::cluster::*;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut a = node(1);
    let mut b = node(2);
    let mut c = node(3);
    meet(&mut [(1, &mut a), (2, &mut b)], T0);
    let (kind, len) = if mode & 1 == 0 {
        (Kind::Initiation, INITIATION_LEN)
    } else {
        (Kind::Response, RESPONSE_LEN)
    };
    let claimed = [1u8, 3, 9][usize::from(mode >> 1) % 3];
    let mut msg = if mode & 0x80 != 0 {
        // A genuine initiation of h3 to node 2, with the input XORed in.
        let mut out = [0u8; MAX_DATAGRAM];
        let mut m = loop {
            let Some((n, p, _)) = c.poll_hello(T0, &mut out) else {
                return;
            };
            if c.peer_name(p) == Some("h2") {
                break out[..n].to_vec();
            }
        };
        for (x, y) in m.iter_mut().zip(rest) {
            *x ^= y;
        }
        m
    } else {
        let mut m = vec![0u8; len];
        Prefix {
            kind,
            flags: 0,
            copy: 0,
            sender: u32::from(overlay(claimed)),
        }
        .encode(&mut m);
        let body = len - MAC_LEN;
        for (x, y) in m[8..body].iter_mut().zip(rest) {
            *x = *y;
        }
        let mac = MacKey::for_receiver(&public_key(2)).sign(&m[..body]);
        m[body..].copy_from_slice(&mac);
        m
    };
    let mut out = [0u8; MAX_DATAGRAM];
    match b.from_net(&mut msg, endpoint(claimed), T0 + 10, &mut out) {
        Inbound::Inject { .. } => panic!("a handshake message was injected"),
        Inbound::Reply { len, peer, .. } => {
            assert_eq!(len, RESPONSE_LEN, "a reply that is not a response");
            let p = Prefix::parse(&out[..len]).expect("a well-formed response");
            assert_eq!(p.kind, Kind::Response);
            assert!(b.endpoint(peer).is_some(), "a reply to nowhere");
        }
        _ => {}
    }
    // h1's session carries on, both ways.
    let (d, _) = send(&mut a, &vrrp_from(1), T0 + 20);
    assert!(
        recv(&mut b, &d, 1, T0 + 20).is_ok(),
        "a handshake message disturbed h1's session"
    );
    let h1 = b.peer_by_name("h1").expect("h1");
    let answered = b.peer_stats(h1).expect("h1").pings_answered;
    exchange(&mut b, 2, &mut a, 1, T0 + 1_000);
    assert!(
        b.peer_stats(h1).expect("h1").pings_answered > answered,
        "h1 no longer answers node 2's keepalives"
    );
});
