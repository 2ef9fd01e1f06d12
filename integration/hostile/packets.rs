//! The bytes the attacks are made of: inner packets as the failover tools
//! (or a member bypassing its own rules) would write them, and relay
//! datagrams altered field by field. Kept apart from the attacks so each
//! attack reads as what it sends, not how the bytes are laid out.

use super::*;

/// A VRRPv3-shaped payload for VRID 99, which is not the cluster's (51), so
/// keepalived ignores it; `batch` and `i` make every marker unique.
pub(super) fn marker(batch: u8, i: u16) -> Vec<u8> {
    let [hi, lo] = i.to_be_bytes();
    vec![0x31, 99, 1, 1, 0x00, 0x0a, 0, 0, 10, batch, hi, lo]
}

/// A VRRPv3 advert for the cluster's VRID 51 and its VIP, from `src` to
/// 224.0.0.18, with the checksum over the pseudo-header that keepalived
/// checks: priority 255 takes the VIP, priority 0 (a master resigning)
/// makes the backup take it at once. If one were injected, keepalived
/// would act on it.
pub(super) fn advert(src: Ipv4Addr, priority: u8) -> Vec<u8> {
    let group = Ipv4Addr::new(224, 0, 0, 18);
    let mut a = vec![0x31, 51, priority, 1, 0x00, 0x0a, 0, 0, 10, 77, 0, 100];
    let mut pseudo = Vec::with_capacity(12 + a.len());
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&group.octets());
    pseudo.extend_from_slice(&[0, 112, 0, a.len() as u8]);
    pseudo.extend_from_slice(&a);
    let c = checksum(&pseudo);
    a[6..8].copy_from_slice(&c.to_be_bytes());
    ipv4(src, group, 112, 255, &a)
}

pub(super) fn tcp_syn(dport: u16) -> Vec<u8> {
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&40000u16.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = 0x02;
    t[14..16].copy_from_slice(&1024u16.to_be_bytes());
    t
}

pub(super) fn icmp_echo() -> Vec<u8> {
    let mut e = vec![8, 0, 0, 0, 0x12, 0x34, 0, 1, b'h', b'i'];
    let c = checksum(&e);
    e[2..4].copy_from_slice(&c.to_be_bytes());
    e
}

// ------------------------------------------------------------ datagrams

pub(super) fn header_of(d: &[u8]) -> Header {
    let p = Prefix::parse(d).expect("a captured datagram has a valid prefix");
    Header::parse(p, d)
}

/// Re-encodes `d` with its header changed by `f` (the tag is left as is,
/// so only the header checks or authentication can tell).
pub(super) fn with_header(d: &[u8], f: impl FnOnce(&mut Header)) -> Vec<u8> {
    let mut h = header_of(d);
    f(&mut h);
    let mut out = d.to_vec();
    h.encode(&mut out);
    out
}

pub(super) fn flip_bit(d: &[u8], byte: usize, bit: u32) -> Vec<u8> {
    let mut out = d.to_vec();
    out[byte] ^= 1 << bit;
    out
}

/// A handshake message of `len` bytes claiming to be from host `from`:
/// random Noise bytes, and a MAC that is right for `mac`'s receiver (public
/// keys are no secret) or random without one.
pub(super) fn handshake_junk(
    rng: &mut Rng,
    kind: Kind,
    from: usize,
    mac: Option<&MacKey>,
) -> Vec<u8> {
    let len = if kind == Kind::Initiation {
        INITIATION_LEN
    } else {
        RESPONSE_LEN
    };
    let mut d = rng.bytes(len);
    Prefix {
        kind,
        flags: 0,
        copy: 0,
        sender: u32::from(overlay(from)),
    }
    .encode(&mut d);
    if let Some(mac) = mac {
        let at = len - MAC_LEN;
        let m = mac.sign(&d[..at]);
        d[at..].copy_from_slice(&m);
    }
    d
}

/// h3's (and every node's) link-local address on the overlay, as the
/// relay derives it from the overlay IPv4 address: `fe80::6d63:7270:` and
/// the IPv4 address.
pub(super) fn link_local(h: usize) -> Ipv6Addr {
    Ipv6Addr::from(
        (0xfe80u128 << 112) | (0x6d63_7270u128 << 32) | u128::from(u32::from(overlay(h))),
    )
}

/// The first fragment of a UDP datagram from `sport` to `dport` (64 bytes
/// of data in all, 24 of them in this fragment), `udp_bytes` of its UDP
/// header included (all 8, or fewer to cut the header short).
pub(super) fn first_fragment_v6(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    sport: u16,
    dport: u16,
    udp_bytes: usize,
) -> Vec<u8> {
    let mut u = udp(sport, dport, &[0x42; 64]);
    u.truncate(if udp_bytes < 8 { udp_bytes } else { 8 + 24 });
    v6_fragment(src, dst, 17, 0, true, &u)
}
