//! Checks of the host a configuration will run on: routes that would
//! capture the overlay subnet (so rp_filter drops injected packets), the
//! MTU towards each peer, the listen port and peer names that do not
//! resolve. Each check is a pure function of facts read from the host, so
//! every finding is tested with made-up facts.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};

use crate::check::finding::Finding;
use crate::config::Mode;
use crate::proto::overlay::mask_v4;

/// One IPv4 route of the main table, as `/proc/net/route` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub iface: String,
    pub net: Ipv4Addr,
    pub prefix: u8,
}

/// Parses `/proc/net/route`: addresses are printed as the kernel holds
/// them in memory, so native byte order gives the address bytes back.
pub fn parse_proc_route(text: &str) -> Vec<Route> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let iface = f.first()?;
            let dest = u32::from_str_radix(f.get(1)?, 16).ok()?;
            let mask = u32::from_str_radix(f.get(7)?, 16).ok()?;
            Some(Route {
                iface: (*iface).to_string(),
                net: Ipv4Addr::from(dest.to_ne_bytes()),
                prefix: mask.count_ones() as u8,
            })
        })
        .collect()
}

fn overlaps(a: Ipv4Addr, a_len: u8, b: Ipv4Addr, b_len: u8) -> bool {
    let m = mask_v4(a_len.min(b_len));
    u32::from(a) & m == u32::from(b) & m
}

/// Routes on other interfaces (the default route aside) that cover part of
/// the overlay subnet: the kernel would send overlay traffic there, and
/// strict reverse-path filtering would drop what the relay injects.
pub fn overlay_conflicts<'a>(
    routes: &'a [Route],
    iface: &str,
    overlay: Ipv4Addr,
    prefix: u8,
) -> Vec<&'a Route> {
    routes
        .iter()
        .filter(|r| r.iface != iface && r.prefix > 0 && overlaps(r.net, r.prefix, overlay, prefix))
        .collect()
}

/// The overlay subnet against the host's routes and rp_filter settings
/// (`all` and the interface's own, the kernel uses the larger).
pub fn routing_finding(
    conflicts: &[&Route],
    iface: &str,
    overlay: Ipv4Addr,
    prefix: u8,
    rp_all: Option<u8>,
    rp_iface: Option<u8>,
) -> Finding {
    let net = Ipv4Addr::from(u32::from(overlay) & mask_v4(prefix));
    let rp = rp_all.max(rp_iface);
    if let Some(r) = conflicts.first() {
        let consequence = if rp == Some(1) {
            format!(
                "with rp_filter = 1 the kernel drops every packet the relay injects from peers in {net}/{prefix}"
            )
        } else {
            "overlay traffic would leave through the wrong interface".to_string()
        };
        return Finding::Error(format!(
            "the overlay subnet {net}/{prefix} overlaps the route {}/{} on {}: {consequence}; pick an overlay subnet that no interface of this host uses (interface.subnet)",
            r.net, r.prefix, r.iface
        ));
    }
    let rp = rp.map_or("unknown".to_string(), |v| v.to_string());
    Finding::Ok(format!(
        "no other route covers the overlay subnet {net}/{prefix}: injected packets pass reverse-path filtering on {iface} (rp_filter {rp})"
    ))
}

/// The interface MTU against the route towards one peer.
pub fn mtu_finding(
    peer: &str,
    endpoint: SocketAddr,
    route_mtu: &io::Result<u32>,
    configured: Option<u32>,
    mode: Mode,
) -> Finding {
    let route_mtu = match route_mtu {
        Ok(m) => *m,
        Err(e) => {
            return Finding::Warning(format!(
                "no route to peer {peer} at {endpoint}: {e}; check the host's routes (ip route get {})",
                endpoint.ip()
            ));
        }
    };
    let fits = crate::underlay::inner_mtu(route_mtu, &endpoint, mode);
    match configured {
        Some(m) if m > fits => Finding::Error(format!(
            "interface.mtu = {m} does not fit the route to peer {peer} (MTU {route_mtu}): every large packet would be fragmented, and clouds often drop fragments; set interface.mtu to {fits} or less, or leave it out"
        )),
        _ => Finding::Ok(format!(
            "route to peer {peer} at {endpoint}: MTU {route_mtu}, packets up to {fits} bytes fit in one datagram"
        )),
    }
}

/// Whether the listen address can be bound. `relay_up`: the relay's
/// interface exists, so the port may well be held by the relay itself.
pub fn listen_finding(listen: SocketAddr, bound: &io::Result<()>, relay_up: bool) -> Finding {
    match bound {
        Ok(()) => Finding::Ok(format!("UDP {listen} is free")),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse && relay_up => Finding::Warning(format!(
            "UDP {listen} is in use, probably by the running mcast-relay (its interface exists); if it is not running, another program holds the port"
        )),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => Finding::Error(format!(
            "UDP {listen} is already in use by another program; stop it or change node.listen"
        )),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Finding::Error(format!(
            "cannot bind UDP {listen}: {e}; ports below 1024 need root"
        )),
        Err(e) => Finding::Error(format!("cannot bind UDP {listen}: {e}")),
    }
}

/// What looking up a peer's DNS name gave.
#[derive(Debug)]
pub enum Resolution {
    Resolved(SocketAddr),
    Failed(io::Error),
    /// Addresses, but none of a family the relay's socket can reach.
    NoUsableFamily,
}

impl Resolution {
    /// The address to send to, if the name gave one.
    pub fn addr(&self) -> Option<SocketAddr> {
        match self {
            Resolution::Resolved(a) => Some(*a),
            _ => None,
        }
    }
}

/// Whether a peer's DNS name resolves now.
pub fn name_finding(peer: &str, host: &str, resolved: &Resolution) -> Finding {
    let why = match resolved {
        Resolution::Resolved(a) => {
            return Finding::Ok(format!("peer {peer}: {host} resolves to {}", a.ip()));
        }
        Resolution::Failed(e) => e.to_string(),
        Resolution::NoUsableFamily => "no address of a usable family".to_string(),
    };
    Finding::Warning(format!(
        "peer {peer}: {host} does not resolve ({why}); the relay will keep trying every node.resolve_interval, but until then this peer gets nothing; fix DNS or /etc/hosts"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(a: Ipv4Addr) -> String {
        format!("{:08X}", u32::from_ne_bytes(a.octets()))
    }

    fn route_file(routes: &[(&str, Ipv4Addr, u8)]) -> String {
        let mut s =
            "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n"
                .to_string();
        for (i, n, p) in routes {
            s += &format!(
                "{i}\t{}\t00000000\t0001\t0\t0\t0\t{}\t0\t0\t0\n",
                hex(*n),
                hex(Ipv4Addr::from(mask_v4(*p)))
            );
        }
        s
    }

    #[test]
    fn parses_proc_net_route() {
        let text = route_file(&[
            ("eth0", Ipv4Addr::UNSPECIFIED, 0),
            ("eth0", Ipv4Addr::new(192, 168, 1, 0), 24),
        ]);
        let r = parse_proc_route(&text);
        assert_eq!(r.len(), 2);
        assert_eq!(
            r[1],
            Route {
                iface: "eth0".into(),
                net: Ipv4Addr::new(192, 168, 1, 0),
                prefix: 24
            }
        );
    }

    #[test]
    fn overlapping_route_is_an_error_naming_rp_filter() {
        let routes = parse_proc_route(&route_file(&[
            ("eth0", Ipv4Addr::UNSPECIFIED, 0),
            ("eth0", Ipv4Addr::new(10, 0, 0, 0), 8),
            ("mcast0", Ipv4Addr::new(10, 250, 0, 0), 24),
        ]));
        let overlay = Ipv4Addr::new(10, 250, 0, 1);
        let c = overlay_conflicts(&routes, "mcast0", overlay, 24);
        assert_eq!(c.len(), 1, "{c:?}");
        let f = routing_finding(&c, "mcast0", overlay, 24, Some(0), Some(1));
        assert!(f.is_error());
        assert!(f.to_string().contains("10.0.0.0/8 on eth0"), "{f}");
        assert!(f.to_string().contains("rp_filter = 1"), "{f}");
    }

    #[test]
    fn separate_subnet_passes() {
        let routes = parse_proc_route(&route_file(&[
            ("eth0", Ipv4Addr::UNSPECIFIED, 0),
            ("eth0", Ipv4Addr::new(192, 168, 1, 0), 24),
        ]));
        let overlay = Ipv4Addr::new(10, 250, 0, 1);
        let c = overlay_conflicts(&routes, "mcast0", overlay, 24);
        let f = routing_finding(&c, "mcast0", overlay, 24, Some(1), None);
        assert!(matches!(f, Finding::Ok(_)), "{f}");
        assert!(f.to_string().contains("rp_filter 1"), "{f}");
    }

    #[test]
    fn mtu_too_big_for_the_route() {
        let ep: SocketAddr = "192.0.2.2:7112".parse().expect("addr");
        let f = mtu_finding("b", ep, &Ok(1500), Some(1500), Mode::Tun);
        assert!(
            f.is_error() && f.to_string().contains("1436 or less"),
            "{f}"
        );
        let f = mtu_finding("b", ep, &Ok(1500), None, Mode::Tun);
        assert!(
            matches!(f, Finding::Ok(_)) && f.to_string().contains("1436"),
            "{f}"
        );
        // A tap's frames carry 14 bytes of Ethernet header too.
        let f = mtu_finding("b", ep, &Ok(1500), Some(1436), Mode::Tap);
        assert!(
            f.is_error() && f.to_string().contains("1422 or less"),
            "{f}"
        );
        let f = mtu_finding(
            "b",
            ep,
            &Err(io::Error::other("unreachable")),
            None,
            Mode::Tun,
        );
        assert!(matches!(f, Finding::Warning(_)), "{f}");
    }

    #[test]
    fn port_and_names() {
        let l: SocketAddr = "0.0.0.0:7112".parse().expect("addr");
        let taken = Err(io::Error::from(io::ErrorKind::AddrInUse));
        assert!(
            listen_finding(l, &taken, false)
                .to_string()
                .contains("already in use")
        );
        assert!(!listen_finding(l, &taken, true).is_error());
        assert!(!listen_finding(l, &Ok(()), false).is_error());
        let f = name_finding(
            "b",
            "b.example",
            &Resolution::Failed(io::Error::other("no such host")),
        );
        assert!(matches!(f, Finding::Warning(_)) && f.to_string().contains("b.example"));
    }
}
