//! Builders of well-formed inner packets (IPv4, IPv6, UDP), as the
//! failover tools write them into the interface; every test, benchmark and
//! fuzz seed builds its packets here so a header is got right once.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::proto::packet::PROTO_UDP;

/// The Internet checksum (RFC 1071) of `data`.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv4 packet with TTL 255 and a valid header checksum (no DSCP, no
/// flags): the unit tests' plain packet.
pub fn v4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload: &[u8]) -> Vec<u8> {
    let total = 20 + payload.len();
    let mut p = vec![0u8; total];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[8] = 255;
    p[9] = proto;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    let c = checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[20..].copy_from_slice(payload);
    p
}

/// An IPv4 UDP packet from port 5404 to `dport` (checksum left zero, as
/// allowed).
pub fn v4_udp(src: Ipv4Addr, dst: Ipv4Addr, dport: u16, data: &[u8]) -> Vec<u8> {
    v4(src, dst, PROTO_UDP, &udp(5404, dport, data))
}

/// An IPv6 packet with hop limit 255 and no extension headers.
pub fn v6(src: Ipv6Addr, dst: Ipv6Addr, next: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 40 + payload.len()];
    p[0] = 0x60;
    p[4..6].copy_from_slice(&(payload.len() as u16).to_be_bytes());
    p[6] = next;
    p[7] = 255;
    p[8..24].copy_from_slice(&src.octets());
    p[24..40].copy_from_slice(&dst.octets());
    p[40..].copy_from_slice(payload);
    p
}

/// An IPv4 packet as keepalived sends it (DSCP CS6; don't fragment) with
/// a correct header checksum.
pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, ttl: u8, payload: &[u8]) -> Vec<u8> {
    let len = (20 + payload.len()) as u16;
    let mut p = vec![0x45, 0xc0, 0, 0, 0, 0, 0x40, 0, ttl, proto, 0, 0];
    p[2..4].copy_from_slice(&len.to_be_bytes());
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    let c = checksum(&p);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// A VRRP advert (protocol 112, TTL 255) from node 1's overlay address
/// 10.250.0.1 to 224.0.0.18 with `body` as the VRRP message.
pub fn vrrp_advert_from_node1(body: &[u8]) -> Vec<u8> {
    ipv4(
        Ipv4Addr::new(10, 250, 0, 1),
        Ipv4Addr::new(224, 0, 0, 18),
        112,
        255,
        body,
    )
}

/// A UDP header and `data` (checksum 0: none, as IPv4 allows).
pub fn udp(sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let mut u = Vec::with_capacity(8 + data.len());
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(data);
    u
}

/// An IPv4 fragment (hop limit 255, id 1, valid header checksum) whose
/// payload lies `offset` bytes (a multiple of 8) into its datagram;
/// `more` sets the more-fragments flag.
pub fn v4_fragment(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    offset: u16,
    more: bool,
    payload: &[u8],
) -> Vec<u8> {
    let mut p = v4(src, dst, proto, payload);
    let flags_offset = (offset / 8) | if more { 0x2000 } else { 0 };
    p[4..6].copy_from_slice(&1u16.to_be_bytes());
    p[6..8].copy_from_slice(&flags_offset.to_be_bytes());
    p[10..12].copy_from_slice(&[0, 0]);
    let c = checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p
}

/// An IPv6 fragment: the fixed header (hop limit 255), a fragment header
/// naming `next` (id 1), then `payload`, which lies `offset` bytes (a
/// multiple of 8) into the datagram's fragmentable part; `more` sets the
/// more-fragments flag.
pub fn v6_fragment(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next: u8,
    offset: u16,
    more: bool,
    payload: &[u8],
) -> Vec<u8> {
    let mut body = vec![next, 0];
    let offset_flags = (offset & !7) | u16::from(more);
    body.extend_from_slice(&offset_flags.to_be_bytes());
    body.extend_from_slice(&1u32.to_be_bytes());
    body.extend_from_slice(payload);
    v6(src, dst, PROTO_IPV6_FRAGMENT, &body)
}

/// The IPv6 fragment header's protocol number.
const PROTO_IPV6_FRAGMENT: u8 = 44;
