//! Ethernet frames in tap mode: the 14-byte header, each node's MAC address
//! (derived from its overlay address, so every node knows every other
//! node's MAC from the configuration alone), and the fields of ARP and IPv6
//! neighbour discovery the relay checks. Zero-copy, no allocation.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::proto::packet::{Inner, PROTO_ICMPV6};

pub const HEADER_LEN: usize = 14;
/// Shortest Ethernet frame without its checksum: shorter payloads are
/// padded up to it, so a small packet may be followed by padding.
const MIN_FRAME: usize = 60;

pub(crate) const ETHERTYPE_IPV4: u16 = 0x0800;
pub(crate) const ETHERTYPE_ARP: u16 = 0x0806;
pub(crate) const ETHERTYPE_IPV6: u16 = 0x86dd;

pub type Mac = [u8; 6];

// Only the tests build broadcast frames; the code asks `is_group`.
#[cfg(test)]
pub(crate) const BROADCAST: Mac = [0xff; 6];

/// First two bytes of a node's MAC: locally administered, unicast (0x02),
/// then 0x6d ('m'); the overlay IPv4 address fills the other four.
const NODE_MAC_PREFIX: [u8; 2] = [0x02, 0x6d];

/// The MAC address of the node with overlay address `v4`.
pub fn node_mac(v4: Ipv4Addr) -> Mac {
    let o = v4.octets();
    [
        NODE_MAC_PREFIX[0],
        NODE_MAC_PREFIX[1],
        o[0],
        o[1],
        o[2],
        o[3],
    ]
}

/// The overlay address a node MAC was derived from.
pub(crate) fn node_of_mac(mac: Mac) -> Option<Ipv4Addr> {
    (mac[..2] == NODE_MAC_PREFIX).then(|| Ipv4Addr::new(mac[2], mac[3], mac[4], mac[5]))
}

/// Multicast or broadcast: the group bit of the first byte.
pub(crate) fn is_group(mac: Mac) -> bool {
    mac[0] & 1 == 1
}

/// The IANA block 00:00:5e:00:00:00–00:00:5e:00:02:ff that virtual-router
/// protocols send from instead of the interface's own MAC: ucarp's
/// adverts come from 00:00:5e:00:00:<vhid>, VRRP virtual MACs are
/// 00:00:5e:00:01:<vrid> (IPv4) and 00:00:5e:00:02:<vrid> (IPv6). Every
/// node of a cluster may send from the same one.
pub fn is_virtual_router(mac: Mac) -> bool {
    mac[..4] == [0x00, 0x00, 0x5e, 0x00] && mac[4] <= 0x02
}

/// What a frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    /// An IP packet at `frame[start..start + len]` (padding excluded).
    Ip {
        start: usize,
        len: usize,
    },
    Arp(Arp),
}

/// The header and body of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    pub dst: Mac,
    pub src: Mac,
    pub body: Body,
}

/// An ARP message for IPv4 over Ethernet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arp {
    /// 1 request, 2 reply.
    pub op: u16,
    pub sender_mac: Mac,
    pub sender_ip: Ipv4Addr,
    pub target_ip: Ipv4Addr,
}

/// Why a frame was refused before any rule looked at it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Too short, inconsistent lengths, or not ARP for IPv4 over Ethernet.
    Malformed,
    /// An EtherType other than IPv4, IPv6 and ARP (VLAN tags, LLDP...).
    EtherType,
}

fn mac_at(b: &[u8]) -> Mac {
    let mut m = [0u8; 6];
    m.copy_from_slice(&b[..6]);
    m
}

fn ipv4_at(b: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

/// Parses a frame as read from, or to be written to, a tap device.
pub fn parse(frame: &[u8]) -> Result<Frame, FrameError> {
    if frame.len() < HEADER_LEN {
        return Err(FrameError::Malformed);
    }
    let dst = mac_at(&frame[0..6]);
    let src = mac_at(&frame[6..12]);
    let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
    let payload = &frame[HEADER_LEN..];
    let body = match ethertype {
        ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => {
            let version = if ethertype == ETHERTYPE_IPV4 { 4 } else { 6 };
            if payload.first().map(|b| b >> 4) != Some(version) {
                return Err(FrameError::Malformed);
            }
            let stated = ip_length(payload).ok_or(FrameError::Malformed)?;
            // Only a minimum-size frame may carry bytes after the packet.
            let len = if stated < payload.len() && frame.len() <= MIN_FRAME {
                stated
            } else {
                payload.len()
            };
            Body::Ip {
                start: HEADER_LEN,
                len,
            }
        }
        ETHERTYPE_ARP => Body::Arp(parse_arp(payload)?),
        _ => return Err(FrameError::EtherType),
    };
    Ok(Frame { dst, src, body })
}

/// The length an IP header says its packet has.
fn ip_length(p: &[u8]) -> Option<usize> {
    match p.first()? >> 4 {
        4 => p
            .get(2..4)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]]))),
        _ => p
            .get(4..6)
            .map(|b| 40 + usize::from(u16::from_be_bytes([b[0], b[1]]))),
    }
}

const ARP_LEN: usize = 28;

fn parse_arp(p: &[u8]) -> Result<Arp, FrameError> {
    let a = p.get(..ARP_LEN).ok_or(FrameError::Malformed)?;
    // Ethernet (1), IPv4, 6-byte MACs, 4-byte addresses; request or reply.
    let op = u16::from_be_bytes([a[6], a[7]]);
    if a[0..6] != [0, 1, 0x08, 0x00, 6, 4] || !(op == 1 || op == 2) {
        return Err(FrameError::Malformed);
    }
    if p.len() > ARP_LEN && HEADER_LEN + p.len() > MIN_FRAME {
        return Err(FrameError::Malformed);
    }
    Ok(Arp {
        op,
        sender_mac: mac_at(&a[8..14]),
        sender_ip: ipv4_at(&a[14..18]),
        target_ip: ipv4_at(&a[24..28]),
    })
}

/// IPv6 neighbour solicitation (135) or advertisement (136) with hop limit
/// 255: what a host needs to reach another over the link, so tap mode
/// carries it whatever `[allow]` says. Never a fragment: a node ignores a
/// fragmented one (RFC 6980), and a later fragment's data could pass for
/// a message of its own.
pub(crate) fn is_neighbour_discovery(ip: &[u8], inner: &Inner) -> bool {
    inner.proto == PROTO_ICMPV6
        && !inner.fragment
        && ip.first().map(|b| b >> 4) == Some(6)
        && ip.get(7) == Some(&255)
        && matches!(
            ip.get(inner.payload),
            Some(&NEIGHBOUR_SOLICITATION | &NEIGHBOUR_ADVERTISEMENT)
        )
}

/// ICMPv6 types of neighbour discovery the relay carries.
const NEIGHBOUR_SOLICITATION: u8 = 135;
const NEIGHBOUR_ADVERTISEMENT: u8 = 136;
/// Type, code, checksum, reserved or flags, target address.
const NEIGHBOUR_FIXED_LEN: usize = 24;
/// Source and target link-layer address options (RFC 4861 §4.6.1).
const SOURCE_LLADDR: u8 = 1;
const TARGET_LLADDR: u8 = 2;

/// The claims of a neighbour solicitation or advertisement: the address
/// it is about and the MACs it gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Neighbour<'a> {
    pub(crate) advert: bool,
    pub(crate) target: Ipv6Addr,
    options: &'a [u8],
}

impl Neighbour<'_> {
    /// Does every link-layer address option (source or target) name
    /// `mac`? Options are well-formed, [`parse_neighbour`] checked.
    pub(crate) fn link_layer_addrs_are(&self, mac: Mac) -> bool {
        let mut rest = self.options;
        while let [kind, units, ..] = *rest {
            let len = usize::from(units) * 8;
            if (kind == SOURCE_LLADDR || kind == TARGET_LLADDR) && rest[2..8] != mac {
                return false;
            }
            rest = &rest[len..];
        }
        true
    }
}

/// Reads a neighbour solicitation or advertisement (`icmp`: the ICMPv6
/// message) as RFC 4861 §7.1.1 and §7.1.2 have a node validate it: the
/// whole fixed part, options of non-zero length that fit, and link-layer
/// address options of one Ethernet address.
pub(crate) fn parse_neighbour(icmp: &[u8]) -> Result<Neighbour<'_>, FrameError> {
    let fixed = icmp
        .get(..NEIGHBOUR_FIXED_LEN)
        .ok_or(FrameError::Malformed)?;
    let advert = match fixed[0] {
        NEIGHBOUR_SOLICITATION => false,
        NEIGHBOUR_ADVERTISEMENT => true,
        _ => return Err(FrameError::Malformed),
    };
    let mut target = [0u8; 16];
    target.copy_from_slice(&fixed[8..24]);
    let options = &icmp[NEIGHBOUR_FIXED_LEN..];
    let mut rest = options;
    while !rest.is_empty() {
        let (kind, units) = match *rest {
            [kind, units, ..] => (kind, units),
            _ => return Err(FrameError::Malformed),
        };
        let len = usize::from(units) * 8;
        let lladdr = kind == SOURCE_LLADDR || kind == TARGET_LLADDR;
        if len == 0 || len > rest.len() || (lladdr && units != 1) {
            return Err(FrameError::Malformed);
        }
        rest = &rest[len..];
    }
    Ok(Neighbour {
        advert,
        target: Ipv6Addr::from(target),
        options,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::packet::{self, PROTO_VRRP};
    use crate::testing::frames::*;
    use crate::testing::packets as testpkt;

    const A: Ipv4Addr = Ipv4Addr::new(10, 250, 0, 1);
    const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
    const CARP_MCAST: Mac = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x12];

    #[test]
    fn node_macs_round_trip_and_are_local_unicast() {
        let m = node_mac(A);
        assert_eq!(m, [0x02, 0x6d, 10, 250, 0, 1]);
        assert_eq!(node_of_mac(m), Some(A));
        assert!(!is_group(m));
        assert_eq!(m[0] & 2, 2, "locally administered");
        assert_eq!(node_of_mac([0x02, 0x6e, 10, 250, 0, 1]), None);
    }

    #[test]
    fn virtual_router_macs() {
        assert!(is_virtual_router([0, 0, 0x5e, 0, 0, 7])); // ucarp vhid 7
        assert!(is_virtual_router([0, 0, 0x5e, 0, 1, 51])); // VRRP v4
        assert!(is_virtual_router([0, 0, 0x5e, 0, 2, 51])); // VRRP v6
        assert!(!is_virtual_router([0, 0, 0x5e, 0, 3, 1]));
        assert!(!is_virtual_router(node_mac(A)));
        assert!(is_group(BROADCAST) && is_group(CARP_MCAST));
    }

    #[test]
    fn ipv4_frame() {
        let ip = testpkt::v4(A, GROUP, PROTO_VRRP, &[0u8; 36]);
        let f = ethernet(CARP_MCAST, [0, 0, 0x5e, 0, 0, 1], ETHERTYPE_IPV4, &ip);
        let p = parse(&f).expect("valid");
        assert_eq!(p.dst, CARP_MCAST);
        assert_eq!(
            p.body,
            Body::Ip {
                start: 14,
                len: ip.len()
            }
        );
    }

    #[test]
    fn padding_only_in_minimum_frames() {
        let ip = testpkt::v4(A, GROUP, PROTO_VRRP, &[0u8; 8]); // 28 bytes
        let mut f = ethernet(CARP_MCAST, node_mac(A), ETHERTYPE_IPV4, &ip);
        f.resize(MIN_FRAME, 0);
        let Body::Ip { start, len } = parse(&f).expect("padded").body else {
            panic!("not IP")
        };
        assert_eq!(&f[start..start + len], &ip[..]);
        assert!(packet::parse(&f[start..start + len]).is_ok());
        // Extra bytes behind a larger packet are not padding.
        let ip = testpkt::v4(A, GROUP, PROTO_VRRP, &[0u8; 100]);
        let mut f = ethernet(CARP_MCAST, node_mac(A), ETHERTYPE_IPV4, &ip);
        f.push(0);
        let Body::Ip { start, len } = parse(&f).expect("parses").body else {
            panic!("not IP")
        };
        assert!(packet::parse(&f[start..start + len]).is_err());
    }

    #[test]
    fn ethertype_and_version_must_agree() {
        let ip = testpkt::v4(A, GROUP, PROTO_VRRP, &[0u8; 36]);
        let f = ethernet(CARP_MCAST, node_mac(A), ETHERTYPE_IPV6, &ip);
        assert_eq!(parse(&f), Err(FrameError::Malformed));
        let f = ethernet(CARP_MCAST, node_mac(A), 0x8100, &ip);
        assert_eq!(parse(&f), Err(FrameError::EtherType));
        let f = ethernet(CARP_MCAST, node_mac(A), 0x88cc, &[0u8; 46]);
        assert_eq!(parse(&f), Err(FrameError::EtherType));
        assert_eq!(parse(&f[..13]), Err(FrameError::Malformed));
        assert_eq!(
            parse(&ethernet(BROADCAST, node_mac(A), ETHERTYPE_IPV4, &[])),
            Err(FrameError::Malformed)
        );
    }

    #[test]
    fn arp_request_and_reply() {
        let target = Ipv4Addr::new(10, 250, 0, 2);
        let f = ethernet(
            BROADCAST,
            node_mac(A),
            ETHERTYPE_ARP,
            &arp(1, node_mac(A), A, target),
        );
        let p = parse(&f).expect("arp");
        assert_eq!(
            p.body,
            Body::Arp(Arp {
                op: 1,
                sender_mac: node_mac(A),
                sender_ip: A,
                target_ip: target
            })
        );
        // Padded to the minimum frame: fine.
        let mut padded = f.clone();
        padded.resize(MIN_FRAME, 0);
        assert!(parse(&padded).is_ok());
        // Not IPv4-over-Ethernet, or an unknown operation: refused.
        let mut bad = f.clone();
        bad[HEADER_LEN + 3] = 0xdd;
        assert_eq!(parse(&bad), Err(FrameError::Malformed));
        let mut bad = f.clone();
        bad[HEADER_LEN + 7] = 3;
        assert_eq!(parse(&bad), Err(FrameError::Malformed));
        assert_eq!(parse(&f[..f.len() - 1]), Err(FrameError::Malformed));
        let mut long = f;
        long.resize(100, 0);
        assert_eq!(parse(&long), Err(FrameError::Malformed));
    }

    #[test]
    fn neighbour_messages_and_their_options() {
        let me = node_mac(A);
        let target = Ipv6Addr::new(0xfd00, 0x250, 0, 0, 0, 0, 0, 1);
        let na = neighbour(136, 0x20, target, Some((2, me)));
        let n = parse_neighbour(&na).expect("advert");
        assert!(n.advert && n.target == target);
        assert!(n.link_layer_addrs_are(me));
        assert!(!n.link_layer_addrs_are(node_mac(Ipv4Addr::new(10, 250, 0, 3))));
        // Other options are skipped; a nonce option (14) first.
        let mut with_nonce = neighbour(135, 0, target, None);
        with_nonce.extend_from_slice(&[14, 1, 1, 2, 3, 4, 5, 6, 1, 1]);
        with_nonce.extend_from_slice(&me);
        let n = parse_neighbour(&with_nonce).expect("solicitation");
        assert!(!n.advert && n.link_layer_addrs_are(me));
        let mut zero_len = neighbour(136, 0, target, None);
        zero_len.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 0]);
        let mut overrun = neighbour(136, 0, target, None);
        overrun.extend_from_slice(&[2, 2, 0, 0, 0, 0, 0, 0]);
        let mut long_lladdr = neighbour(136, 0, target, None);
        long_lladdr.extend_from_slice(&[2, 2]);
        long_lladdr.extend_from_slice(&[0; 14]);
        let mut stub = neighbour(136, 0, target, None);
        stub.push(2);
        for bad in [&na[..23], &zero_len, &overrun, &long_lladdr, &stub] {
            assert_eq!(parse_neighbour(bad), Err(FrameError::Malformed));
        }
        assert_eq!(parse_neighbour(&[143; 24]), Err(FrameError::Malformed));
    }

    #[test]
    fn neighbour_discovery() {
        let src = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
        let dst = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00, 2);
        let ns = testpkt::v6(src, dst, PROTO_ICMPV6, &[135, 0, 0, 0, 0, 0, 0, 0]);
        let inner = packet::parse(&ns).expect("v6");
        assert!(is_neighbour_discovery(&ns, &inner));
        let mld = testpkt::v6(src, dst, PROTO_ICMPV6, &[143, 0, 0, 0, 0, 0, 0, 0]);
        assert!(!is_neighbour_discovery(
            &mld,
            &packet::parse(&mld).expect("v6")
        ));
        let mut low_hops = ns.clone();
        low_hops[7] = 64;
        assert!(!is_neighbour_discovery(&low_hops, &inner));
    }
}
