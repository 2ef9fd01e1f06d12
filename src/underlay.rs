//! The underlay's arithmetic, apart from the sockets that use it: how large
//! an inner packet fits in one datagram, which of a name's addresses the
//! relay's socket can reach, and peer addresses in the one form the daemon
//! compares. Pure, so the daemon, `check` and the benchmarks share it and
//! it is tested without a network.

use std::net::SocketAddr;

use crate::config::{Endpoint, Mode};

/// IPv4/IPv6 + UDP header bytes in front of every datagram on the underlay.
const UNDERLAY_V4: u32 = 20 + 8;
const UNDERLAY_V6: u32 = 40 + 8;

/// The largest inner IP packet that fits in one datagram to `endpoint` over
/// a route with MTU `route_mtu`, with `mode`'s link header in front of it.
pub fn inner_mtu(route_mtu: u32, endpoint: &SocketAddr, mode: Mode) -> u32 {
    let underlay = if endpoint.is_ipv4() {
        UNDERLAY_V4
    } else {
        UNDERLAY_V6
    };
    route_mtu.saturating_sub(underlay + crate::core::relay::OVERHEAD as u32 + mode.link_header())
}

/// Strips the IPv4-mapped form a dual-stack socket reports, so addresses
/// compare equal to configured IPv4 endpoints.
pub(crate) fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

/// Picks the address to use among resolved ones: one the socket can reach.
pub(crate) fn pick(
    addrs: impl Iterator<Item = SocketAddr>,
    listen: SocketAddr,
) -> Option<SocketAddr> {
    let usable: Vec<SocketAddr> = addrs
        .filter(|a| match listen {
            SocketAddr::V4(_) => a.is_ipv4(),
            SocketAddr::V6(l) => l.ip().is_unspecified() || a.is_ipv6(),
        })
        .collect();
    // Prefer IPv4 on a dual-stack socket: stable across resolver orderings.
    usable
        .iter()
        .find(|a| a.is_ipv4())
        .or(usable.first())
        .copied()
}

/// Endpoints known without any lookup.
pub(crate) fn static_endpoint(e: &Endpoint) -> Option<SocketAddr> {
    match e {
        Endpoint::Addr(a) => Some(*a),
        Endpoint::Name { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pick_matches_socket_family() {
        let v4: SocketAddr = "192.0.2.1:7112".parse().expect("a");
        let v6: SocketAddr = "[2001:db8::1]:7112".parse().expect("a");
        let any4: SocketAddr = "0.0.0.0:7112".parse().expect("a");
        let any6: SocketAddr = "[::]:7112".parse().expect("a");
        let only6: SocketAddr = "[2001:db8::9]:7112".parse().expect("a");
        assert_eq!(pick([v6, v4].into_iter(), any4), Some(v4));
        assert_eq!(pick([v6].into_iter(), any4), None);
        assert_eq!(pick([v6, v4].into_iter(), any6), Some(v4));
        assert_eq!(pick([v6, v4].into_iter(), only6), Some(v6));
    }

    #[test]
    fn canonical_unmaps() {
        let m: SocketAddr = "[::ffff:192.0.2.1]:9".parse().expect("a");
        assert_eq!(
            canonical(m),
            "192.0.2.1:9".parse::<SocketAddr>().expect("a")
        );
    }
}
