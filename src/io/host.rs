//! The host's network state as `mcast-relay check` and the configuration
//! read it: the routing table, reverse-path filtering, whether the tun
//! driver opens, whether an address is this host's. Only the reading is
//! here; what the facts mean is judged by `check::host` and
//! `config::validate`, which are pure and tested with made-up facts.

use std::fs;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};

/// The text of `/proc/net/route` (IPv4 main table), if readable.
pub fn proc_route() -> Option<String> {
    fs::read_to_string("/proc/net/route").ok()
}

/// The `rp_filter` setting of `iface` (or `all`, `default`), if readable.
pub fn rp_filter(iface: &str) -> Option<u8> {
    fs::read_to_string(format!("/proc/sys/net/ipv4/conf/{iface}/rp_filter"))
        .ok()
        .and_then(|v| v.trim().parse().ok())
}

/// Opens `/dev/net/tun` for reading and writing, as `run` will, and
/// closes it again.
pub fn open_tun_device() -> io::Result<()> {
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .map(|_| ())
}

/// Whether `ip` is assigned to this host (in its network namespace): the
/// kernel lets a socket bind only to its own addresses. Used in insecure
/// mode to find this host's member by its endpoint.
pub fn is_local_address(ip: IpAddr) -> bool {
    !ip.is_unspecified() && !ip.is_multicast() && UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_local_and_a_documentation_address_is_not() {
        assert!(is_local_address(IpAddr::from([127, 0, 0, 1])));
        assert!(!is_local_address(IpAddr::from([192, 0, 2, 213])));
        assert!(!is_local_address(IpAddr::from([0, 0, 0, 0])));
    }
}
