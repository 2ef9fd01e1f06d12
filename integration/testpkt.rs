//! Builders of well-formed packets for the tests outside the crate (the
//! hostile-network test, the allocation test, the fuzz seeds).
#![allow(dead_code)] // each user takes part of it

use std::net::Ipv4Addr;

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

/// An IPv4 packet (DSCP CS6, as VRRP uses; don't fragment) with a correct
/// header checksum.
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
