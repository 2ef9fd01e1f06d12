//! Reading the few fields of an inner IP packet that forwarding decisions
//! need: addresses, protocol, destination port. Zero-copy, no allocation.

use std::net::IpAddr;

use etherparse::{Ipv4HeaderSlice, Ipv6ExtensionSlice, Ipv6ExtensionsSlice, Ipv6HeaderSlice};

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
    /// (absent in non-first fragments; a first fragment without the whole
    /// header does not parse).
    pub dst_port: Option<u16>,
    /// Part of a fragmented datagram.
    pub fragment: bool,
    /// A fragment other than the first: no transport header, no port.
    pub later_fragment: bool,
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
    let start = h.slice().len();
    let proto = h.protocol().0;
    let place = Place::of(h.more_fragments(), h.fragments_offset().value());
    let dst_port = transport_port(proto, place, &packet[start..])?;
    Ok(Inner {
        src: IpAddr::V4(h.source_addr()),
        dst: IpAddr::V4(h.destination_addr()),
        proto,
        dst_port,
        fragment: place != Place::Whole,
        later_fragment: matches!(place, Place::Later { .. }),
        payload: start,
    })
}

fn parse_v6(packet: &[u8]) -> Result<Inner, Malformed> {
    let h = Ipv6HeaderSlice::from_slice(packet).map_err(|_| Malformed)?;
    let body = &packet[h.slice().len()..];
    if usize::from(h.payload_length()) != body.len() {
        return Err(Malformed);
    }
    // etherparse reads on past a fragment header: in a first fragment that
    // is the rest of the header chain and the transport header, whose port
    // the rules must see.
    let (exts, proto, payload) =
        Ipv6ExtensionsSlice::from_slice(h.next_header(), body).map_err(|_| Malformed)?;
    let mut frag = None;
    let mut at = h.slice().len();
    for ext in exts {
        at += ext_len(&ext);
        if let Ipv6ExtensionSlice::Fragment(f) = ext {
            // RFC 8200 allows one fragment header; two could be read two ways.
            if frag.is_some() {
                return Err(Malformed);
            }
            frag = Some((f, at));
        }
    }
    let place = frag.as_ref().map_or(Place::Whole, |(f, _)| {
        Place::of(f.more_fragments(), f.fragment_offset().value())
    });
    let (proto, payload) = match frag {
        // What follows a later fragment's fragment header is data, not
        // headers: its protocol is the one the fragment header names.
        Some((f, after)) if matches!(place, Place::Later { .. }) => {
            (f.next_header().0, &packet[after..])
        }
        _ => (proto.0, payload),
    };
    let dst_port = transport_port(proto, place, payload)?;
    Ok(Inner {
        src: IpAddr::V6(h.source_addr()),
        dst: IpAddr::V6(h.destination_addr()),
        proto,
        dst_port,
        fragment: place != Place::Whole,
        later_fragment: matches!(place, Place::Later { .. }),
        payload: packet.len() - payload.len(),
    })
}

fn ext_len(ext: &Ipv6ExtensionSlice<'_>) -> usize {
    match ext {
        Ipv6ExtensionSlice::HopByHop(e)
        | Ipv6ExtensionSlice::Routing(e)
        | Ipv6ExtensionSlice::DestinationOptions(e) => e.slice().len(),
        Ipv6ExtensionSlice::Fragment(e) => e.slice().len(),
        Ipv6ExtensionSlice::Authentication(e) => e.slice().len(),
    }
}

/// Where a packet lies in its datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    /// Not fragmented (an atomic fragment included).
    Whole,
    /// Offset 0, more to come: holds the transport header.
    First,
    /// Offset above 0: data only, no transport header.
    Later {
        /// Bytes into the datagram's fragmentable part.
        offset: usize,
    },
}

impl Place {
    /// From the more-fragments flag and the offset in 8-byte units.
    fn of(more: bool, offset_units: u16) -> Place {
        match (more, offset_units) {
            (false, 0) => Place::Whole,
            (true, 0) => Place::First,
            (_, n) => Place::Later {
                offset: usize::from(n) * 8,
            },
        }
    }
}

const UDP_HEADER_LEN: usize = 8;
const TCP_HEADER_LEN: usize = 20;

/// The UDP or TCP destination port, where the packet holds one. A first
/// fragment must hold the whole transport header (RFC 7112; RFC 1858 for
/// IPv4): one that does not leaves the port to a later fragment, where no
/// rule can see it. A later TCP fragment must not reach back into the
/// header (RFC 1858's tiny fragments). A whole packet too short for its
/// header is left without a port, which no port rule permits.
fn transport_port(proto: u8, place: Place, payload: &[u8]) -> Result<Option<u16>, Malformed> {
    let header = match proto {
        PROTO_UDP => UDP_HEADER_LEN,
        PROTO_TCP => TCP_HEADER_LEN,
        _ => return Ok(None),
    };
    match place {
        Place::First if payload.len() < header => Err(Malformed),
        Place::Later { offset } if offset < header => Err(Malformed),
        Place::Later { .. } => Ok(None),
        Place::Whole | Place::First => {
            Ok(payload.get(2..4).map(|b| u16::from_be_bytes([b[0], b[1]])))
        }
    }
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
    fn a_first_fragment_has_its_port_both_families() {
        let (src, dst): (Ipv6Addr, Ipv6Addr) = (
            "fd00::1".parse().expect("ip"),
            "ff02::1".parse().expect("ip"),
        );
        let first = v6_fragment(src, dst, PROTO_UDP, 0, true, &udp(5404, 53, &[0; 24]));
        let i = parse(&first).expect("parses");
        assert!(i.fragment);
        assert_eq!((i.proto, i.dst_port), (PROTO_UDP, Some(53)));
        assert_eq!(&first[i.payload..i.payload + 4], &[0x15, 0x1c, 0, 53]);
        let later = v6_fragment(src, dst, PROTO_UDP, 32, false, &[0xab; 16]);
        let i = parse(&later).expect("parses");
        assert!(i.fragment);
        assert_eq!((i.proto, i.dst_port), (PROTO_UDP, None));
        let first4 = v4_fragment(
            A,
            Ipv4Addr::new(225, 0, 0, 1),
            PROTO_UDP,
            0,
            true,
            &udp(5404, 161, &[0; 24]),
        );
        assert_eq!(parse(&first4).expect("parses").dst_port, Some(161));
    }

    /// A first fragment must hold its whole transport header (RFC 7112;
    /// RFC 1858 for IPv4), else the port rules could not see the port; a
    /// later TCP fragment must not reach back into the header.
    #[test]
    fn fragments_that_hide_a_transport_header_are_malformed() {
        let (src, dst): (Ipv6Addr, Ipv6Addr) = (
            "fd00::1".parse().expect("ip"),
            "fd00::2".parse().expect("ip"),
        );
        let g = Ipv4Addr::new(225, 0, 0, 1);
        let udp_hdr = udp(5404, 53, &[]);
        let tcp_hdr = [0u8; 20];
        for (proto, header) in [(PROTO_UDP, &udp_hdr[..]), (PROTO_TCP, &tcp_hdr[..])] {
            for cut in [0, 2, 4, header.len() - 1] {
                let part = &header[..cut];
                assert_eq!(
                    parse(&v6_fragment(src, dst, proto, 0, true, part)),
                    Err(Malformed),
                    "v6 {proto} {cut}"
                );
                assert_eq!(
                    parse(&v4_fragment(A, g, proto, 0, true, part)),
                    Err(Malformed),
                    "v4 {proto} {cut}"
                );
            }
            assert!(parse(&v6_fragment(src, dst, proto, 0, true, header)).is_ok());
            assert!(parse(&v4_fragment(A, g, proto, 0, true, header)).is_ok());
        }
        for offset in [8, 16] {
            assert_eq!(
                parse(&v6_fragment(src, dst, PROTO_TCP, offset, true, &[0; 8])),
                Err(Malformed)
            );
            assert_eq!(
                parse(&v4_fragment(A, g, PROTO_TCP, offset, true, &[0; 8])),
                Err(Malformed)
            );
        }
        assert!(parse(&v4_fragment(A, g, PROTO_TCP, 24, false, &[0; 8])).is_ok());
        // A whole packet too short for its header stays a packet without a port.
        let bare = v4(A, g, PROTO_UDP, &[0, 1]);
        assert_eq!(parse(&bare).expect("parses").dst_port, None);
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
