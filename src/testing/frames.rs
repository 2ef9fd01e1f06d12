//! Builders of Ethernet frames, ARP bodies and IPv6 neighbour discovery
//! messages, as a tap carries them.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::proto::frame::{HEADER_LEN, Mac};

/// An Ethernet frame: `dst`, `src`, `ethertype`, then `payload`.
pub fn ethernet(dst: Mac, src: Mac, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(HEADER_LEN + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An ARP body for IPv4 over Ethernet (`op` 1 request, 2 reply).
pub fn arp(op: u16, sender: Mac, sender_ip: Ipv4Addr, target_ip: Ipv4Addr) -> Vec<u8> {
    let mut a = vec![0, 1, 0x08, 0x00, 6, 4];
    a.extend_from_slice(&op.to_be_bytes());
    a.extend_from_slice(&sender);
    a.extend_from_slice(&sender_ip.octets());
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&target_ip.octets());
    a
}

/// An ICMPv6 neighbour solicitation (`icmp_type` 135) or advertisement
/// (136) for `target`: `flags` is the byte after the checksum (an
/// advert's router, solicited and override bits: 0x80, 0x40, 0x20), then
/// a link-layer address option (1 source, 2 target) when given. The
/// checksum is left zero: the relay does not read it.
pub fn neighbour(icmp_type: u8, flags: u8, target: Ipv6Addr, lladdr: Option<(u8, Mac)>) -> Vec<u8> {
    let mut m = vec![icmp_type, 0, 0, 0, flags, 0, 0, 0];
    m.extend_from_slice(&target.octets());
    if let Some((option, mac)) = lladdr {
        m.extend_from_slice(&[option, 1]);
        m.extend_from_slice(&mac);
    }
    m
}
