//! Writes the seed inputs of the four fuzz targets into `corpus/<target>/`
//! (the corpora themselves are not committed): `cargo run --example seeds`
//! from `fuzz/`. The datagram seeds are real: packets sealed by the same
//! in-process cluster the target builds, so the fuzzer starts from inputs
//! that pass authentication. (Sessions get fresh ephemeral keys at every
//! handshake, so the `wire-` seeds no longer open in a later run: they
//! seed the parsers; the odd modes, sealed by the target itself, reach
//! behind authentication.)

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use mcast_relay::core::Outbound;
use mcast_relay::proto::frame;
use mcast_relay::proto::wire::{
    HEADER_LEN, INITIATION_LEN, KEEPALIVE_LEN, KEEPALIVE_WANT_REPLY, Kind,
};

use mcast_relay::testing::cluster::*;
use mcast_relay::testing::frames::{arp, ethernet};
use mcast_relay::testing::packets::{checksum, ipv4, udp, v6};

const PROTO_UDP: u8 = 17;
const PROTO_VRRP: u8 = 112;



fn v4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload: &[u8]) -> Vec<u8> {
    ipv4(src, dst, proto, 255, payload)
}

/// A VRRPv3 advert for VRID 51, priority 100, one address.
fn vrrp(vip: &[u8]) -> Vec<u8> {
    let mut a = vec![0x31, 51, 100, 1, 0x00, 0x64, 0, 0];
    a.extend_from_slice(vip);
    let c = checksum(&a);
    a[6..8].copy_from_slice(&c.to_be_bytes());
    a
}

/// The inner packets every target starts from, all from node 1.
fn packets() -> Vec<(&'static str, Vec<u8>)> {
    let me = overlay(1);
    let me6 = addrs(1).v6.unwrap_or(Ipv6Addr::LOCALHOST);
    let vip6 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
    vec![
        (
            "vrrp4",
            v4(
                me,
                Ipv4Addr::new(224, 0, 0, 18),
                PROTO_VRRP,
                &vrrp(&[192, 0, 2, 100]),
            ),
        ),
        (
            "vrrp6",
            v6(
                me6,
                Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12),
                PROTO_VRRP,
                &vrrp(&vip6.octets()),
            ),
        ),
        (
            "heartbeat-bcast",
            v4(
                me,
                Ipv4Addr::new(10, 250, 0, 255),
                PROTO_UDP,
                &udp(694, 694, b"t=status\nst=active\n"),
            ),
        ),
        (
            "corosync-mcast",
            v4(
                me,
                Ipv4Addr::new(239, 192, 0, 1),
                PROTO_UDP,
                &udp(5405, 5405, &[0u8; 24]),
            ),
        ),
        (
            "corosync-unicast",
            v4(me, overlay(2), PROTO_UDP, &udp(5404, 5404, &[1u8; 24])),
        ),
    ]
}

/// The same packets in Ethernet frames as a tap carries them, plus ARP: a
/// CARP advert from ucarp's virtual-router MAC, the others from node 1's
/// MAC.
fn frames() -> Vec<(String, Vec<u8>)> {
    let me = frame::node_mac(overlay(1));
    let mut out: Vec<(String, Vec<u8>)> = packets()
        .into_iter()
        .map(|(name, p)| {
            let (ethertype, dst) = if p[0] >> 4 == 6 {
                (0x86dd, [0x33, 0x33, 0, 0, 0, 0x12])
            } else if name == "corosync-unicast" {
                (0x0800, frame::node_mac(overlay(2)))
            } else {
                (0x0800, [0x01, 0, 0x5e, 0, 0, 0x12])
            };
            (format!("frame-{name}"), ethernet(dst, me, ethertype, &p))
        })
        .collect();
    let carp = v4(
        overlay(1),
        Ipv4Addr::new(224, 0, 0, 18),
        PROTO_VRRP,
        &[0x21; 36],
    );
    out.push((
        "frame-carp".into(),
        ethernet(
            [0x01, 0, 0x5e, 0, 0, 0x12],
            [0, 0, 0x5e, 0, 0, 1],
            0x0800,
            &carp,
        ),
    ));
    let arp = arp(1, me, overlay(1), overlay(2));
    out.push(("frame-arp".into(), ethernet([0xff; 6], me, 0x0806, &arp)));
    out
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).expect("corpus directory");
    std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("seed file");
}

fn main() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let datagram = corpus.join("datagram");
    let classify = corpus.join("classify");
    for (name, f) in frames() {
        write(&classify, &name, &f);
    }
    for (name, p) in packets() {
        write(&classify, name, &p);
        // Mode 1: the target seals it as a data datagram of h1.
        write(
            &datagram,
            &format!("sealed-{name}"),
            &[&[1u8][..], &p].concat(),
        );
    }

    // Mode 0: genuine datagrams off the wire, sealed by node 1 after the
    // same handshake the target performs.
    let mut a = node(1);
    let mut b = node(2);
    meet(&mut [(1, &mut a), (2, &mut b)], T0);
    let mut sealed = batch();
    let mut out = [0u8; 2048];
    for (name, p) in packets() {
        if let Outbound::Send { .. } = a.from_tun(&p, T0, &mut sealed)
            && let Some((_, _, d)) = sealed.get(0)
        {
            write(
                &datagram,
                &format!("wire-{name}"),
                &[&[0u8][..], d].concat(),
            );
        }
    }
    if let Some((len, _, _)) = a.poll_hello(T0 + 1_500, &mut out) {
        write(
            &datagram,
            "wire-keepalive",
            &[&[0u8][..], &out[..len]].concat(),
        );
    }
    // Mode 3: a keepalive payload sealed by the target; and a bare header.
    let mut ping = [0u8; KEEPALIVE_LEN];
    ping[0] = KEEPALIVE_WANT_REPLY;
    write(&datagram, "sealed-keepalive", &[&[3u8][..], &ping].concat());
    let mut header = [0u8; 1 + HEADER_LEN];
    // From h1 to session 7, counter 1000.
    mcast_relay::testing::cluster::header(Kind::Data, 1, 7, 1000).encode(&mut header[1..]);
    write(&datagram, "wire-header", &header);

    // The handshake target: a genuine initiation of h3 (mode 0x80, the
    // input XORed into it: zeros keep it genuine), and message bodies.
    let handshake = corpus.join("handshake");
    write(&handshake, "genuine-initiation", &[0x80u8]);
    let mut c = node(3);
    if let Some((len, _, _)) = c.poll_hello(T0, &mut out) {
        write(&handshake, "initiation-body-h3", &[&[2u8][..], &out[8..len]].concat());
    }
    write(&handshake, "initiation-zeros-h1", &[0u8; INITIATION_LEN]);
    write(&handshake, "response-zeros-h1", &[1u8; 2]);

    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut configs = vec![examples.join("mcast-relay.toml")];
    for tool in ["keepalived", "heartbeat", "corosync", "spread"] {
        configs.push(examples.join(tool).join("mcast-relay.toml"));
    }
    for (i, path) in configs.iter().enumerate() {
        if let Ok(text) = std::fs::read(path) {
            write(&corpus.join("config"), &format!("example{i}"), &text);
        }
    }
    println!("seeds written under {}", corpus.display());
}
