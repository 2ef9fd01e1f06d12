//! The underlay: the relay's UDP socket and resolution of peer endpoints,
//! including DNS names that may fail without affecting other peers.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::sync::mpsc;

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

/// Socket buffers sized for bursts of heartbeats to many peers.
const SOCKET_BUFFER: usize = 1 << 20;

/// Binds the relay's UDP socket. An IPv6 wildcard also accepts IPv4, so
/// one socket serves peers of both families.
pub fn bind(listen: SocketAddr) -> io::Result<std::net::UdpSocket> {
    let sock = Socket::new(
        Domain::for_address(listen),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    if listen.is_ipv6() {
        sock.set_only_v6(!listen.ip().is_unspecified())?;
    }
    // Best effort: the kernel caps these at net.core.[rw]mem_max.
    let _ = sock.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = sock.set_send_buffer_size(SOCKET_BUFFER);
    sock.set_nonblocking(true)?;
    sock.set_cloexec(true)?;
    sock.bind(&listen.into()).map_err(|e| {
        let hint = if e.kind() == io::ErrorKind::AddrInUse {
            " (another process uses this port: is another mcast-relay running? change node.listen otherwise)"
        } else if e.kind() == io::ErrorKind::AddrNotAvailable {
            " (no interface has this address; use 0.0.0.0 or [::])"
        } else {
            ""
        };
        io::Error::new(e.kind(), format!("binding UDP {listen}: {e}{hint}"))
    })?;
    Ok(sock.into())
}

/// Strips the IPv4-mapped form a dual-stack socket reports, so addresses
/// compare equal to configured IPv4 endpoints.
pub fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

/// Picks the address to use among resolved ones: one the socket can reach.
pub fn pick(addrs: impl Iterator<Item = SocketAddr>, listen: SocketAddr) -> Option<SocketAddr> {
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

/// A peer's endpoint that changed: the resolver generation (bumped at
/// every reload, so a stale lookup is ignored), the peer's name, the new
/// address.
pub type EndpointUpdate = (u64, String, SocketAddr);

/// Resolves `host:port` once, bounded in time.
pub async fn resolve(host: &str, port: u16, listen: SocketAddr) -> Result<SocketAddr, String> {
    let lookup = tokio::net::lookup_host((host, port));
    match tokio::time::timeout(Duration::from_secs(10), lookup).await {
        Err(_) => Err("lookup timed out after 10 s".to_string()),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(addrs)) => pick(addrs, listen)
            .ok_or_else(|| format!("no address of a family the socket on {listen} can reach")),
    }
}

/// Keeps a DNS-named peer's address current: resolves it now and again
/// every `interval`. A failure keeps the last good address and is logged
/// once until the name resolves again; other peers never wait on it.
pub async fn follow_name(
    generation: u64,
    name: String,
    host: String,
    port: u16,
    listen: SocketAddr,
    interval: Duration,
    tx: mpsc::Sender<EndpointUpdate>,
) {
    let mut last: Option<SocketAddr> = None;
    let mut failing = false;
    loop {
        match resolve(&host, port, listen).await {
            Ok(addr) => {
                if failing {
                    tracing::info!(peer = %name, %host, %addr, "peer name resolves again");
                }
                failing = false;
                if last != Some(addr) {
                    tracing::info!(peer = %name, %host, %addr, "peer endpoint resolved");
                    last = Some(addr);
                    if tx.send((generation, name.clone(), addr)).await.is_err() {
                        return;
                    }
                }
            }
            Err(e) if !failing => {
                failing = true;
                let kept = last.map_or("no address yet".to_string(), |a| format!("keeping {a}"));
                tracing::warn!(peer = %name, %host, error = %e, "cannot resolve peer endpoint ({kept}); retrying every {:?}; other peers are unaffected", interval);
            }
            Err(_) => {}
        }
        tokio::time::sleep(interval).await;
    }
}

/// Endpoints known without any lookup.
pub fn static_endpoint(e: &Endpoint) -> Option<SocketAddr> {
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

    #[test]
    fn bind_loopback_and_conflict() {
        let a = bind("127.0.0.1:0".parse().expect("a")).expect("binds");
        let taken = a.local_addr().expect("addr");
        let e = bind(taken).expect_err("port in use");
        assert!(e.to_string().contains("another process"), "{e}");
    }

    #[tokio::test]
    async fn resolve_localhost() {
        // Answered from /etc/hosts: tests send no DNS queries off the host.
        let any4: SocketAddr = "0.0.0.0:7112".parse().expect("a");
        let a = resolve("localhost", 7112, any4)
            .await
            .expect("localhost resolves");
        assert!(a.ip().is_loopback());
        assert_eq!(a.port(), 7112);
    }
}
