//! The host's network state as `mcast-relay check` reads it: the routing
//! table, reverse-path filtering, whether the tun driver opens. Only the
//! reading is here; what the facts mean is judged by `check::host`, which
//! is pure and tested with made-up facts.

use std::fs;
use std::io;

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
