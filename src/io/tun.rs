//! The tun (or tap) device and the host-network queries around it: ioctls
//! on `/dev/net/tun` and on a control socket, and `getsockopt(IP_MTU)`.
//! Most of the crate's `unsafe` is here; `fanout` holds the rest (sendmmsg).
//!
//! The device is created persistent so a relay restart never removes the
//! interface from under keepalived (which exits when its interface goes
//! away). Set-up is idempotent: attaching to an existing device with the
//! same configuration changes nothing. A tap gets the node's MAC address
//! (derived from its overlay address) so peers can check it.

use std::fs::{File, OpenOptions};
use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;

use crate::proto::overlay::{link_local, mask_v4};

/// What the interface should look like.
#[derive(Clone, Debug)]
pub struct TunSpec {
    pub name: String,
    pub mtu: u32,
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    pub broadcast: Ipv4Addr,
    pub address6: Option<(Ipv6Addr, u8)>,
    /// `Some(mac)`: a tap device with this MAC address; `None`: a tun.
    pub tap_mac: Option<[u8; 6]>,
}

impl TunSpec {
    fn kind(&self) -> &'static str {
        if self.tap_mac.is_some() { "tap" } else { "tun" }
    }
}

/// An open, configured tun device (non-blocking).
#[derive(Debug)]
pub struct Tun {
    file: File,
    name: String,
}

impl AsRawFd for Tun {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

/// An error with the step that failed and, where known, what to do.
fn ctx(step: &str, e: io::Error) -> io::Error {
    let hint = match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => {
            " (needs root or CAP_NET_ADMIN; under systemd keep AmbientCapabilities=CAP_NET_ADMIN)"
        }
        Some(libc::ENOENT) if step.contains("/dev/net/tun") => {
            " (the tun driver is missing: `modprobe tun`; in a container, pass /dev/net/tun through)"
        }
        _ => "",
    };
    io::Error::new(e.kind(), format!("{step}: {e}{hint}"))
}

fn ifreq(name: &str) -> io::Result<libc::ifreq> {
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { mem::zeroed() };
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= req.ifr_name.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad interface name `{name}`"),
        ));
    }
    for (d, s) in req.ifr_name.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    Ok(req)
}

fn sockaddr_v4(a: Ipv4Addr) -> libc::sockaddr {
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(a).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: sockaddr_in and sockaddr have the same size on Linux and
    // sockaddr is only a byte container here.
    unsafe { mem::transmute::<libc::sockaddr_in, libc::sockaddr>(sin) }
}

fn v4_of(sa: &libc::sockaddr) -> Ipv4Addr {
    // SAFETY: same size, plain data; the kernel filled an AF_INET address.
    let sin: libc::sockaddr_in = unsafe { mem::transmute_copy(sa) };
    Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))
}

/// A datagram socket used only to issue interface ioctls.
struct Ctl(OwnedFd);

impl Ctl {
    fn new(family: libc::c_int) -> io::Result<Ctl> {
        // SAFETY: plain socket(2) call; the fd is owned right away.
        let fd = unsafe { libc::socket(family, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh, valid descriptor we own.
        Ok(Ctl(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    fn ioctl<T>(&self, req: libc::Ioctl, arg: &mut T) -> io::Result<()> {
        // SAFETY: every caller passes the struct type the request expects.
        let r = unsafe { libc::ioctl(self.0.as_raw_fd(), req, arg as *mut T) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

impl Tun {
    /// Creates (or attaches to) the persistent tun device and configures
    /// addresses, MTU and flags as `spec` says, bringing it up.
    pub fn open(spec: &TunSpec) -> io::Result<Tun> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")
            .map_err(|e| ctx("opening /dev/net/tun", e))?;
        let mut req = ifreq(&spec.name)?;
        let kind_flag = if spec.tap_mac.is_some() {
            libc::IFF_TAP
        } else {
            libc::IFF_TUN
        };
        req.ifr_ifru.ifru_flags = (kind_flag | libc::IFF_NO_PI) as libc::c_short;
        // SAFETY: TUNSETIFF takes a pointer to ifreq.
        let r = unsafe {
            libc::ioctl(
                file.as_raw_fd(),
                libc::TUNSETIFF,
                &mut req as *mut libc::ifreq,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            let why = match e.raw_os_error() {
                Some(libc::EBUSY) => format!(
                    "interface {} is in use by another process (is another mcast-relay running?)",
                    spec.name
                ),
                Some(libc::EINVAL) => format!(
                    "interface {} exists but is not a {} device (the other mode, or another kind of link); remove it with `ip link del {}` or choose another [interface] name",
                    spec.name,
                    spec.kind(),
                    spec.name
                ),
                _ => format!("creating {} device {}", spec.kind(), spec.name),
            };
            return Err(ctx(&why, e));
        }
        // SAFETY: TUNSETPERSIST takes an integer argument.
        let r = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETPERSIST, 1 as libc::c_ulong) };
        if r < 0 {
            return Err(ctx(
                &format!("making the {} device persistent", spec.kind()),
                io::Error::last_os_error(),
            ));
        }
        let tun = Tun {
            file,
            name: spec.name.clone(),
        };
        tun.configure(spec)?;
        Ok(tun)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Registers the device with the tokio reactor for read readiness.
    pub(crate) fn into_async(self) -> io::Result<tokio::io::unix::AsyncFd<Tun>> {
        // SAFETY: Tun owns its File, so the descriptor stays open and the
        // same for as long as the AsyncFd (which owns the Tun) lives.
        unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(self, tokio::io::Interest::READABLE)
        }
        .map_err(io::Error::from)
    }

    fn configure(&self, spec: &TunSpec) -> io::Result<()> {
        let ctl = Ctl::new(libc::AF_INET).map_err(|e| ctx("opening a control socket", e))?;
        let name = &spec.name;
        // No random link-local: the relay sets a deterministic one that
        // peers can check. Must be set before the interface comes up.
        let ipv6_conf = format!("/proc/sys/net/ipv6/conf/{name}");
        let have_ipv6 = std::path::Path::new(&ipv6_conf).exists();
        if have_ipv6 {
            write_sysctl(&format!("{ipv6_conf}/addr_gen_mode"), "1")?;
            if spec.address6.is_some() {
                write_sysctl(&format!("{ipv6_conf}/disable_ipv6"), "0")?;
            }
        } else if spec.address6.is_some() {
            return Err(io::Error::other(format!(
                "IPv6 is disabled on this host ({ipv6_conf} is missing) but [interface] address6 is set; enable IPv6 or remove address6"
            )));
        }

        if let Some(mac) = spec.tap_mac {
            set_mac(&ctl, name, mac)?;
        }

        let mut req = ifreq(name)?;
        req.ifr_ifru.ifru_mtu = spec.mtu as libc::c_int;
        ctl.ioctl(libc::SIOCSIFMTU, &mut req)
            .map_err(|e| ctx(&format!("setting MTU {} on {name}", spec.mtu), e))?;

        // IPv4: address, then netmask (which adds the subnet route that
        // makes injected packets pass reverse-path filtering), then the
        // broadcast address (heartbeat's `bcast` needs it on a tun).
        let mut req = ifreq(name)?;
        let current = match ctl.ioctl(libc::SIOCGIFADDR, &mut req) {
            // SAFETY: SIOCGIFADDR filled ifru_addr.
            Ok(()) => Some(v4_of(unsafe { &req.ifr_ifru.ifru_addr })),
            Err(_) => None,
        };
        if current != Some(spec.address) {
            let mut req = ifreq(name)?;
            req.ifr_ifru.ifru_addr = sockaddr_v4(spec.address);
            ctl.ioctl(libc::SIOCSIFADDR, &mut req)
                .map_err(|e| ctx(&format!("setting address {} on {name}", spec.address), e))?;
        }
        let mut req = ifreq(name)?;
        req.ifr_ifru.ifru_netmask = sockaddr_v4(Ipv4Addr::from(mask_v4(spec.prefix_len)));
        ctl.ioctl(libc::SIOCSIFNETMASK, &mut req).map_err(|e| {
            ctx(
                &format!("setting netmask /{} on {name}", spec.prefix_len),
                e,
            )
        })?;
        let mut req = ifreq(name)?;
        req.ifr_ifru.ifru_broadaddr = sockaddr_v4(spec.broadcast);
        ctl.ioctl(libc::SIOCSIFBRDADDR, &mut req).map_err(|e| {
            ctx(
                &format!("setting broadcast {} on {name}", spec.broadcast),
                e,
            )
        })?;

        // Up before any write: writes to a down tun fail with EIO.
        let mut req = ifreq(name)?;
        ctl.ioctl(libc::SIOCGIFFLAGS, &mut req)
            .map_err(|e| ctx(&format!("reading flags of {name}"), e))?;
        // SAFETY: SIOCGIFFLAGS filled ifru_flags.
        let flags = unsafe { req.ifr_ifru.ifru_flags };
        let want =
            flags | (libc::IFF_UP | libc::IFF_RUNNING | libc::IFF_MULTICAST) as libc::c_short;
        if want != flags {
            req.ifr_ifru.ifru_flags = want;
            ctl.ioctl(libc::SIOCSIFFLAGS, &mut req)
                .map_err(|e| ctx(&format!("bringing {name} up"), e))?;
        }

        if have_ipv6 {
            self.configure_v6(spec)?;
        }
        Ok(())
    }

    fn configure_v6(&self, spec: &TunSpec) -> io::Result<()> {
        let name = &spec.name;
        let index = if_index(name)?;
        let ll = link_local(spec.address);
        let existing = ipv6_addresses(index);
        // Remove link-locals the kernel generated before addr_gen_mode was
        // set (an interface from an older run, or created by someone else).
        for (addr, len) in &existing {
            if addr.is_unicast_link_local() && *addr != ll {
                let _ = v6_addr(libc::SIOCDIFADDR, index, *addr, *len);
            }
        }
        let Some((a6, len6)) = spec.address6 else {
            return Ok(());
        };
        for (addr, len) in [(ll, 64u8), (a6, len6)] {
            if existing.iter().any(|(a, l)| *a == addr && *l == len) {
                continue;
            }
            match v6_addr(libc::SIOCSIFADDR, index, addr, len) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                Err(e) => return Err(ctx(&format!("adding {addr}/{len} to {name}"), e)),
            }
        }
        Ok(())
    }

    /// Raises or drops the interface's carrier, as a cable would: the
    /// failover tools watching the link see it go down (keepalived then
    /// enters FAULT and releases its VIP) and come back.
    pub(crate) fn set_carrier(&self, up: bool) -> io::Result<()> {
        let mut on: libc::c_int = up.into();
        // SAFETY: TUNSETCARRIER takes a pointer to an int.
        let r = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                libc::TUNSETCARRIER,
                &mut on as *mut libc::c_int,
            )
        };
        if r < 0 {
            return Err(ctx(
                &format!("setting the carrier of {}", self.name),
                io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    /// Reads one packet; `WouldBlock` when none is queued.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: buf is valid for writes of buf.len() bytes.
        let n = unsafe { libc::read(self.file.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    /// Writes one packet, unchanged.
    pub fn write(&self, packet: &[u8]) -> io::Result<usize> {
        // SAFETY: packet is valid for reads of packet.len() bytes.
        let n = unsafe { libc::write(self.file.as_raw_fd(), packet.as_ptr().cast(), packet.len()) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }
}

/// The interface's hardware address.
fn mac_of(ctl: &Ctl, name: &str) -> io::Result<[u8; 6]> {
    let mut req = ifreq(name)?;
    ctl.ioctl(libc::SIOCGIFHWADDR, &mut req)
        .map_err(|e| ctx(&format!("reading the MAC address of {name}"), e))?;
    // SAFETY: SIOCGIFHWADDR filled ifru_hwaddr.
    let hw = unsafe { req.ifr_ifru.ifru_hwaddr };
    let mut mac = [0u8; 6];
    for (d, s) in mac.iter_mut().zip(hw.sa_data) {
        *d = s as u8;
    }
    Ok(mac)
}

/// Gives a tap its node MAC unless it has it already (a restart).
fn set_mac(ctl: &Ctl, name: &str, mac: [u8; 6]) -> io::Result<()> {
    if mac_of(ctl, name)? == mac {
        return Ok(());
    }
    let mut req = ifreq(name)?;
    // SAFETY: a sockaddr is plain data; all-zero is valid.
    let mut hw: libc::sockaddr = unsafe { mem::zeroed() };
    hw.sa_family = libc::ARPHRD_ETHER;
    for (d, s) in hw.sa_data.iter_mut().zip(mac) {
        *d = s as libc::c_char;
    }
    req.ifr_ifru.ifru_hwaddr = hw;
    let shown: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
    ctl.ioctl(libc::SIOCSIFHWADDR, &mut req).map_err(|e| {
        ctx(
            &format!("setting MAC address {} on {name}", shown.join(":")),
            e,
        )
    })
}

fn write_sysctl(path: &str, value: &str) -> io::Result<()> {
    std::fs::write(path, value).map_err(|e| ctx(&format!("writing {value} to {path}"), e))
}

fn if_index(name: &str) -> io::Result<libc::c_int> {
    let ctl = Ctl::new(libc::AF_INET)?;
    let mut req = ifreq(name)?;
    ctl.ioctl(libc::SIOCGIFINDEX, &mut req)
        .map_err(|e| ctx(&format!("looking up {name}"), e))?;
    // SAFETY: SIOCGIFINDEX filled ifru_ifindex.
    Ok(unsafe { req.ifr_ifru.ifru_ifindex })
}

fn v6_addr(req: libc::Ioctl, index: libc::c_int, addr: Ipv6Addr, len: u8) -> io::Result<()> {
    let ctl = Ctl::new(libc::AF_INET6)?;
    let mut r = libc::in6_ifreq {
        ifr6_addr: libc::in6_addr {
            s6_addr: addr.octets(),
        },
        ifr6_prefixlen: u32::from(len),
        ifr6_ifindex: index,
    };
    ctl.ioctl(req, &mut r)
}

/// The IPv6 addresses on interface `index`. `thread-self`, because
/// `/proc/net` follows the main thread's network namespace.
fn ipv6_addresses(index: libc::c_int) -> Vec<(Ipv6Addr, u8)> {
    let Ok(text) = std::fs::read_to_string("/proc/thread-self/net/if_inet6") else {
        return Vec::new();
    };
    crate::proto::procfs::if_inet6(&text, index)
}

/// Does an interface with this name exist in this thread's network namespace?
pub fn exists(name: &str) -> bool {
    if_index(name).is_ok()
}

/// The MTU of the route the kernel would use to reach `peer` (no packet is
/// sent: connecting a UDP socket only looks the route up).
pub(crate) fn route_mtu(peer: SocketAddr) -> io::Result<u32> {
    let domain = if peer.is_ipv4() {
        socket2::Domain::IPV4
    } else {
        socket2::Domain::IPV6
    };
    let sock = socket2::Socket::new(domain, socket2::Type::DGRAM, None)?;
    sock.connect(&peer.into())?;
    let (level, opt) = if peer.is_ipv4() {
        (libc::IPPROTO_IP, libc::IP_MTU)
    } else {
        (libc::IPPROTO_IPV6, libc::IPV6_MTU)
    };
    let mut mtu: libc::c_int = 0;
    let mut len = mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: mtu and len are valid for the sizes given.
    let r = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            level,
            opt,
            (&mut mtu as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(mtu as u32)
}

/// The effective user is root (or the tests should skip).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The interface's current MTU: what the set-up tests check.
    fn mtu(name: &str) -> io::Result<u32> {
        let ctl = Ctl::new(libc::AF_INET)?;
        let mut req = ifreq(name)?;
        ctl.ioctl(libc::SIOCGIFMTU, &mut req)
            .map_err(|e| ctx(&format!("reading MTU of {name}"), e))?;
        // SAFETY: SIOCGIFMTU filled ifru_mtu.
        Ok(unsafe { req.ifr_ifru.ifru_mtu } as u32)
    }

    #[test]
    fn ifreq_rejects_bad_names() {
        assert!(ifreq("").is_err());
        assert!(ifreq("0123456789abcdef").is_err());
        assert!(ifreq("mcast0").is_ok());
    }

    #[test]
    fn sockaddr_round_trip() {
        let a = Ipv4Addr::new(10, 250, 0, 7);
        assert_eq!(v4_of(&sockaddr_v4(a)), a);
    }

    #[test]
    fn loopback_route_mtu() {
        let mtu = route_mtu("127.0.0.1:7112".parse().expect("addr")).expect("route to loopback");
        assert!(mtu >= 1500, "loopback MTU {mtu}");
    }

    /// Runs `body` in a thread inside a fresh network namespace, so no
    /// device appears on the host; skips (visibly) without root.
    fn in_fresh_netns(test: &str, body: fn() -> Result<(), String>) {
        if !is_root() {
            eprintln!("SKIPPED tun::{test}: needs root (creates a device)");
            return;
        }
        let out = std::process::Command::new("unshare")
            .args(["-n", "--", "true"])
            .status();
        if !matches!(out, Ok(s) if s.success()) {
            eprintln!("SKIPPED tun::{test}: cannot create a network namespace here");
            return;
        }
        let h = std::thread::spawn(move || -> Result<(), String> {
            // SAFETY: unshare affects only this thread's network namespace.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                return Err(format!("unshare: {}", io::Error::last_os_error()));
            }
            body()
        });
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("{e}"),
            Err(_) => panic!("{test} thread panicked"),
        }
    }

    /// A VRRP advert from another node, as a peer's relay would inject it.
    fn advert_from_node2() -> Vec<u8> {
        crate::testing::packets::v4(
            Ipv4Addr::new(10, 250, 0, 2),
            Ipv4Addr::new(224, 0, 0, 18),
            crate::proto::packet::PROTO_VRRP,
            &[0x21, 1, 100, 1, 0, 1, 0, 0],
        )
    }

    fn spec_of(name: &str, tap_mac: Option<[u8; 6]>) -> Result<TunSpec, String> {
        Ok(TunSpec {
            name: name.into(),
            mtu: 1400,
            address: Ipv4Addr::new(10, 250, 0, 1),
            prefix_len: 24,
            broadcast: Ipv4Addr::new(10, 250, 0, 255),
            address6: Some(("fd00:250::1".parse().map_err(|_| "ip")?, 64)),
            tap_mac,
        })
    }

    /// Creates a real tun in a throwaway network namespace; needs root.
    #[test]
    fn tun_set_up_is_idempotent() {
        in_fresh_netns("tun_set_up_is_idempotent", || {
            let spec = spec_of("mrtest0", None)?;
            let t = Tun::open(&spec).map_err(|e| e.to_string())?;
            drop(t);
            // Persistent: still there after the fd closed; reopening works.
            if !exists("mrtest0") {
                return Err("device vanished after close".into());
            }
            let t = Tun::open(&spec).map_err(|e| format!("reattach: {e}"))?;
            let idx = if_index("mrtest0").map_err(|e| e.to_string())?;
            let v6 = ipv6_addresses(idx);
            let ll = link_local(spec.address);
            if !v6.contains(&(ll, 64)) || !v6.iter().any(|(a, _)| a.to_string() == "fd00:250::1") {
                return Err(format!("IPv6 addresses: {v6:?}"));
            }
            if v6.iter().filter(|(a, _)| a.is_unicast_link_local()).count() != 1 {
                return Err(format!("expected only the derived link-local: {v6:?}"));
            }
            let mtu = mtu("mrtest0").map_err(|e| e.to_string())?;
            if mtu != 1400 {
                return Err(format!("mtu {mtu}"));
            }
            // A packet written into the device is accepted (interface up).
            let pkt = advert_from_node2();
            t.write(&pkt).map_err(|e| format!("write: {e}"))?;
            // The other mode on the same name is refused with a way out.
            let err = Tun::open(&spec_of("mrtest0", Some([2, 0x6d, 10, 250, 0, 1]))?)
                .err()
                .ok_or("a tap opened on a tun's name")?;
            if !err.to_string().contains("is not a tap device") {
                return Err(format!("mode clash message: {err}"));
            }
            Ok(())
        });
    }

    /// A tap gets the node MAC, keeps it across a reattach, and passes
    /// frames.
    #[test]
    fn tap_set_up_with_node_mac() {
        in_fresh_netns("tap_set_up_with_node_mac", || {
            let mac = crate::proto::frame::node_mac(Ipv4Addr::new(10, 250, 0, 1));
            let spec = spec_of("mrtest1", Some(mac))?;
            drop(Tun::open(&spec).map_err(|e| e.to_string())?);
            let t = Tun::open(&spec).map_err(|e| format!("reattach: {e}"))?;
            // /sys shows the host's namespace, so ask the kernel directly.
            let ctl = Ctl::new(libc::AF_INET).map_err(|e| e.to_string())?;
            let got = mac_of(&ctl, "mrtest1").map_err(|e| e.to_string())?;
            if got != [0x02, 0x6d, 10, 250, 0, 1] {
                return Err(format!("MAC {got:02x?}"));
            }
            let mtu = mtu("mrtest1").map_err(|e| e.to_string())?;
            if mtu != 1400 {
                return Err(format!("mtu {mtu}"));
            }
            let pkt = advert_from_node2();
            let mut f = vec![0x01, 0, 0x5e, 0, 0, 0x12, 2, 0x6d, 10, 250, 0, 2, 0x08, 0];
            f.extend_from_slice(&pkt);
            let n = t.write(&f).map_err(|e| format!("write: {e}"))?;
            if n != f.len() {
                return Err(format!("short write {n}"));
            }
            Ok(())
        });
    }
}
