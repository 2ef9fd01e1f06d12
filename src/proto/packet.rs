//! Reading the few fields of an inner IP packet that forwarding decisions
//! need: addresses, protocol, destination port. Zero-copy, no allocation.

use std::net::IpAddr;

use etherparse::{Ipv4HeaderSlice, Ipv6ExtensionsSlice, Ipv6HeaderSlice};

/// IP protocol numbers the relay treats specially.
pub(crate) const PROTO_IGMP: u8 = 2;
pub(crate) const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub(crate) const PROTO_ICMPV6: u8 = 58;
/// VRRP and CARP share IP protocol 112.
pub const PROTO_VRRP: u8 = 112;

/// The fields of an inner packet the relay looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inner {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Upper-layer protocol after any IPv6 extension headers.
    pub proto: u8,
    /// UDP/TCP destination port when the packet carries a transport header
    /// (absent in non-first fragments).
    pub dst_port: Option<u16>,
    /// Part of a fragmented datagram.
    pub fragment: bool,
    /// Where the upper-layer payload (after any IPv6 extension headers)
    /// starts in the packet.
    pub payload: usize,
}

impl Inner {
    /// The kernel's own group-membership and neighbour traffic (IGMP, MLD,
    /// router solicitations): expected on the interface, never relayed.
    pub fn is_kernel_noise(&self) -> bool {
        self.proto == PROTO_IGMP || self.proto == PROTO_ICMPV6
    }
}

/// The inner packet is not a well-formed IPv4 or IPv6 packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Malformed;

/// Parses an IP packet as read from, or to be written to, a tun device.
pub fn parse(packet: &[u8]) -> Result<Inner, Malformed> {
    match packet.first().map(|b| b >> 4) {
        Some(4) => parse_v4(packet),
        Some(6) => parse_v6(packet),
        _ => Err(Malformed),
    }
}

fn parse_v4(packet: &[u8]) -> Result<Inner, Malformed> {
    let h = Ipv4HeaderSlice::from_slice(packet).map_err(|_| Malformed)?;
    // The tun hands over exactly one packet, so its length must match.
    if usize::from(h.total_len()) != packet.len() {
        return Err(Malformed);
    }
    let offset = u16::from(h.fragments_offset());
    let fragment = h.is_fragmenting_payload();
    let start = h.slice().len();
    let payload = &packet[start..];
    let proto = h.protocol().0;
    let dst_port = if offset == 0 {
        port(proto, payload)
    } else {
        None
    };
    Ok(Inner {
        src: IpAddr::V4(h.source_addr()),
        dst: IpAddr::V4(h.destination_addr()),
        proto,
        dst_port,
        fragment,
        payload: start,
    })
}

fn parse_v6(packet: &[u8]) -> Result<Inner, Malformed> {
    let h = Ipv6HeaderSlice::from_slice(packet).map_err(|_| Malformed)?;
    let body = &packet[h.slice().len()..];
    if usize::from(h.payload_length()) != body.len() {
        return Err(Malformed);
    }
    let (exts, proto, payload) =
        Ipv6ExtensionsSlice::from_slice(h.next_header(), body).map_err(|_| Malformed)?;
    let fragment = exts.is_fragmenting_payload();
    // A fragment header with a non-zero offset leaves no transport header to
    // read; etherparse stops at the fragment header and reports protocol 44.
    let proto = proto.0;
    let dst_port = if fragment { None } else { port(proto, payload) };
    Ok(Inner {
        src: IpAddr::V6(h.source_addr()),
        dst: IpAddr::V6(h.destination_addr()),
        proto,
        dst_port,
        fragment,
        payload: packet.len() - payload.len(),
    })
}

fn port(proto: u8, payload: &[u8]) -> Option<u16> {
    if proto != PROTO_UDP && proto != PROTO_TCP {
        return None;
    }
    let b = payload.get(2..4)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::packets::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const A: Ipv4Addr = Ipv4Addr::new(10, 250, 0, 1);
    const VRRP4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);

    #[test]
    fn vrrp_v4() {
        let p = v4(A, VRRP4, PROTO_VRRP, &[0x31, 1, 100, 1, 0, 1, 0, 0]);
        let i = parse(&p).expect("parses");
        assert_eq!(i.src, IpAddr::V4(A));
        assert_eq!(i.dst, IpAddr::V4(VRRP4));
        assert_eq!(i.proto, PROTO_VRRP);
        assert_eq!(i.dst_port, None);
        assert!(!i.fragment);
    }

    #[test]
    fn udp_port() {
        let p = v4_udp(A, Ipv4Addr::new(225, 0, 0, 1), 694, b"hb");
        assert_eq!(parse(&p).expect("parses").dst_port, Some(694));
    }

    #[test]
    fn v6_vrrp_and_mld_noise() {
        let ll: Ipv6Addr = "fe80::1".parse().expect("ip");
        let grp: Ipv6Addr = "ff02::12".parse().expect("ip");
        let p = v6(ll, grp, PROTO_VRRP, &[0x31, 1, 100, 1, 0, 100, 0, 0]);
        let i = parse(&p).expect("parses");
        assert_eq!(i.proto, PROTO_VRRP);
        assert_eq!(i.dst, IpAddr::V6(grp));
        // MLD report: hop-by-hop header (router alert) then ICMPv6.
        let mut body = vec![PROTO_ICMPV6, 0, 5, 2, 0, 0, 1, 0];
        body.extend_from_slice(&[143, 0, 0, 0, 0, 0, 0, 0]);
        let p = v6(ll, "ff02::16".parse().expect("ip"), 0, &body);
        let i = parse(&p).expect("parses");
        assert_eq!(i.proto, PROTO_ICMPV6);
        assert!(i.is_kernel_noise());
    }

    #[test]
    fn igmp_is_noise() {
        let p = v4(
            A,
            Ipv4Addr::new(224, 0, 0, 22),
            PROTO_IGMP,
            &[0x22, 0, 0, 0],
        );
        assert!(parse(&p).expect("parses").is_kernel_noise());
    }

    #[test]
    fn fragments_have_no_port_after_the_first() {
        let mut p = v4_udp(A, Ipv4Addr::new(225, 0, 0, 1), 694, &[0u8; 16]);
        p[6] = 0x20; // more fragments, offset 0
        let i = parse(&p).expect("parses");
        assert!(i.fragment);
        assert_eq!(i.dst_port, Some(694));
        p[6] = 0x00;
        p[7] = 0x03; // offset 24 bytes, last fragment
        let i = parse(&p).expect("parses");
        assert!(i.fragment);
        assert_eq!(i.dst_port, None);
    }

    #[test]
    fn malformed_inputs() {
        assert_eq!(parse(&[]), Err(Malformed));
        assert_eq!(parse(&[0x45]), Err(Malformed));
        assert_eq!(parse(&[0x00; 40]), Err(Malformed));
        let p = v4(A, VRRP4, PROTO_VRRP, &[1, 2, 3, 4]);
        assert_eq!(parse(&p[..p.len() - 1]), Err(Malformed), "truncated");
        let mut longer = p.clone();
        longer.push(0);
        assert_eq!(parse(&longer), Err(Malformed), "trailing bytes");
        let mut bad_ihl = p.clone();
        bad_ihl[0] = 0x44;
        assert_eq!(parse(&bad_ihl), Err(Malformed));
        let v6p = v6(
            Ipv6Addr::LOCALHOST,
            Ipv6Addr::LOCALHOST,
            PROTO_VRRP,
            &[1, 2],
        );
        assert_eq!(parse(&v6p[..41]), Err(Malformed));
    }
}
