//! The underlay: the relay's UDP socket and resolution of peer endpoints,
//! including DNS names that may fail without affecting other peers. The
//! arithmetic around them is in [`crate::underlay`].

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;
use std::{fmt, io};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::sync::mpsc;

use crate::underlay::pick;

/// Why a peer's name gave no address to send to.
#[derive(Debug)]
pub enum ResolveError {
    TimedOut,
    Lookup(io::Error),
    /// Only addresses of a family the socket bound to `listen` cannot reach.
    NoUsableAddress {
        listen: SocketAddr,
    },
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResolveError::TimedOut => f.write_str("lookup timed out after 10 s"),
            ResolveError::Lookup(e) => write!(f, "{e}"),
            ResolveError::NoUsableAddress { listen } => {
                write!(f, "no address of a family the socket on {listen} can reach")
            }
        }
    }
}

impl std::error::Error for ResolveError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ResolveError::Lookup(e) => Some(e),
            _ => None,
        }
    }
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

/// Resolves `host:port` once, bounded in time.
pub async fn resolve(
    host: &str,
    port: u16,
    listen: SocketAddr,
) -> Result<SocketAddr, ResolveError> {
    let lookup = tokio::net::lookup_host((host, port));
    match tokio::time::timeout(Duration::from_secs(10), lookup).await {
        Err(_) => Err(ResolveError::TimedOut),
        Ok(Err(e)) => Err(ResolveError::Lookup(e)),
        Ok(Ok(addrs)) => pick(addrs, listen).ok_or(ResolveError::NoUsableAddress { listen }),
    }
}

/// Every address of `host:port`, looked up now and blocking: for `check`,
/// which asks once and has no event loop.
pub fn lookup_now(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    (host, port).to_socket_addrs().map(Iterator::collect)
}

/// Keeps a DNS-named peer's address current: resolves it now and again
/// every `interval`, sending `(peer, address)` on `tx` when the address
/// changes; `peer` is the caller's key for the peer, `name` is for the log.
/// A failure keeps the last good address and is logged once until the
/// name resolves again; other peers never wait on it.
pub async fn follow_name<K: Copy>(
    peer: K,
    name: String,
    host: String,
    port: u16,
    listen: SocketAddr,
    interval: Duration,
    tx: mpsc::Sender<(K, SocketAddr)>,
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
                    if tx.send((peer, addr)).await.is_err() {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The default listen address is `[::]` once any path is IPv6: it must
    /// still receive from, and answer, IPv4 peers.
    #[test]
    fn the_ipv6_wildcard_serves_ipv4_too() {
        let dual = bind("[::]:0".parse().expect("a")).expect("binds");
        let port = dual.local_addr().expect("addr").port();
        let v4 = std::net::UdpSocket::bind("127.0.0.1:0").expect("v4");
        v4.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        v4.send_to(b"ping", ("127.0.0.1", port)).expect("send");
        dual.set_nonblocking(false).expect("blocking");
        dual.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        let mut buf = [0u8; 8];
        let (n, from) = dual.recv_from(&mut buf).expect("an IPv4 datagram");
        assert_eq!(&buf[..n], b"ping");
        // Answered to the address as the core keeps it, unmapped.
        let from = crate::underlay::canonical(from);
        assert!(from.is_ipv4(), "{from}");
        dual.send_to(b"pong", from).expect("send to IPv4");
        let (n, _) = v4.recv_from(&mut buf).expect("the answer");
        assert_eq!(&buf[..n], b"pong");
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
