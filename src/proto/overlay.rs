//! Overlay addressing: the subnet every node's interface shares, prefixes,
//! and the deterministic IPv6 link-local address derived from a node's
//! overlay IPv4 address (so peers can check VRRPv3-over-IPv6 sources, which
//! are always link-local).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An address prefix, IPv4 or IPv6, e.g. `239.192.0.0/16` or `ff02::12/128`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefix {
    pub addr: IpAddr,
    pub len: u8,
}

impl Prefix {
    pub fn host(addr: IpAddr) -> Self {
        let len = if addr.is_ipv4() { 32 } else { 128 };
        Prefix { addr, len }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = mask_v4(self.len);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = mask_v6(self.len);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Why a prefix did not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrefixError {
    /// The part before `/` (as written) is no address.
    Address(String),
    /// The length (as written) is no number up to `max`.
    Length { len: String, max: u8 },
}

impl fmt::Display for PrefixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrefixError::Address(a) => write!(f, "`{a}` is not an IPv4 or IPv6 address"),
            PrefixError::Length { len, max } => {
                write!(f, "prefix length `{len}` must be a number from 0 to {max}")
            }
        }
    }
}

impl std::error::Error for PrefixError {}

impl FromStr for Prefix {
    type Err = PrefixError;

    /// Accepts `addr` or `addr/len`.
    fn from_str(s: &str) -> Result<Self, PrefixError> {
        let (a, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| PrefixError::Address(a.to_string()))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(l) => l
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|l| *l <= max)
                .ok_or_else(|| PrefixError::Length {
                    len: l.to_string(),
                    max,
                })?,
        };
        Ok(Prefix { addr, len })
    }
}

pub fn mask_v4(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    }
}

pub fn mask_v6(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    }
}

/// The subnet broadcast address of `addr/len`.
pub fn broadcast_v4(addr: Ipv4Addr, len: u8) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(addr) | !mask_v4(len))
}

/// Interface identifier marker: ASCII "mcrp", so a derived link-local is
/// recognisable in captures (`fe80::6d63:7270:a.b.c.d`).
const LINK_LOCAL_MARK: u128 = 0x6d63_7270;

/// The IPv6 link-local address the relay gives a node's interface, derived
/// from its overlay IPv4 address.
pub fn link_local(v4: Ipv4Addr) -> Ipv6Addr {
    let bits = (0xfe80u128 << 112) | (LINK_LOCAL_MARK << 32) | u128::from(u32::from(v4));
    Ipv6Addr::from(bits)
}

/// IPv4 broadcast destinations a node treats as "everyone on the overlay":
/// the limited broadcast and the subnet broadcast.
pub fn is_broadcast(dst: Ipv4Addr, subnet_broadcast: Ipv4Addr) -> bool {
    dst == Ipv4Addr::BROADCAST || dst == subnet_broadcast
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        let p: Prefix = "239.192.0.0/16".parse().expect("parses");
        assert!(p.contains("239.192.44.1".parse().expect("ip")));
        assert!(!p.contains("239.193.0.1".parse().expect("ip")));
        assert!(!p.contains("ff02::1".parse().expect("ip")));
        let h: Prefix = "ff02::12".parse().expect("parses");
        assert_eq!(h.len, 128);
        assert!(h.contains("ff02::12".parse().expect("ip")));
        assert!(!h.contains("ff02::13".parse().expect("ip")));
        let all: Prefix = "0.0.0.0/0".parse().expect("parses");
        assert!(all.contains("1.2.3.4".parse().expect("ip")));
        assert!("10.0.0.0/33".parse::<Prefix>().is_err());
        assert!("foo/8".parse::<Prefix>().is_err());
    }

    #[test]
    fn broadcast_address() {
        let a = Ipv4Addr::new(10, 250, 0, 1);
        assert_eq!(broadcast_v4(a, 24), Ipv4Addr::new(10, 250, 0, 255));
        assert_eq!(broadcast_v4(a, 16), Ipv4Addr::new(10, 250, 255, 255));
        assert!(is_broadcast(Ipv4Addr::BROADCAST, broadcast_v4(a, 24)));
        assert!(!is_broadcast(
            Ipv4Addr::new(10, 250, 0, 254),
            broadcast_v4(a, 24)
        ));
    }

    #[test]
    fn link_local_is_deterministic_and_distinct() {
        let a = link_local(Ipv4Addr::new(10, 250, 0, 1));
        assert_eq!(a, "fe80::6d63:7270:afa:1".parse::<Ipv6Addr>().expect("ip"));
        assert_eq!(a, link_local(Ipv4Addr::new(10, 250, 0, 1)));
        assert_ne!(a, link_local(Ipv4Addr::new(10, 250, 0, 2)));
        assert!(
            Prefix::from_str("fe80::/64")
                .expect("p")
                .contains(IpAddr::V6(a))
        );
    }
}
