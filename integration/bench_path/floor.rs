//! The floor: the least a user-space relay must do, with nothing else.
//! Each host gets a tun (`floor0`, 10.98.0.h) and two threads with blocking
//! system calls: one reads a packet from the tun and sends it by UDP to
//! every other host, one receives and writes into the tun. No event loop,
//! no header, no checks, no crypto: the distance between this and
//! mcast-relay is what the relay's own design costs; the distance between
//! this and VXLAN is what any relay in user space costs (two more
//! wake-ups per packet).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::mpsc;

use mcast_relay::config::Mode;
use mcast_relay::io::tun::{Tun, TunSpec};
use mcast_relay::underlay;

use crate::lab::{self, Lab};

const PORT: u16 = 7_000;

/// Thread ids of the forwarders that carry the benchmark's packets, for
/// their CPU time: the sender's tun reader and a receiver's socket reader.
pub struct Floor {
    pub sender_tid: u32,
    pub receiver_tid: u32,
}

/// The relay's interface MTU on the lab's 1500-byte network.
pub fn mtu() -> u32 {
    underlay::inner_mtu(1_500, &SocketAddr::from(([10, 77, 0, 1], PORT)), Mode::Tun)
}

pub fn gettid() -> u32 {
    // SAFETY: gettid has no arguments and cannot fail.
    unsafe { libc::gettid() as u32 }
}

/// Host `h`'s tun `name` (10.`net`.0.h/24, the relay's MTU on the lab's
/// 1500-byte network, so every floor forwards the same packets as the
/// relay) and its UDP socket on the lab's network at `port`.
pub fn open(lab: &Lab, h: usize, name: &'static str, net: u8, port: u16) -> (Tun, UdpSocket) {
    lab::in_netns(&lab.ns(h), move || {
        let tun = Tun::open(&TunSpec {
            name: name.into(),
            mtu: mtu(),
            address: Ipv4Addr::new(10, net, 0, h as u8),
            prefix_len: 24,
            broadcast: Ipv4Addr::new(10, net, 0, 255),
            address6: None,
            tap_mac: None,
        })
        .unwrap_or_else(|e| panic!("{name} tun: {e}"));
        let sock = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, h as u8), port))
            .unwrap_or_else(|e| panic!("{name} socket: {e}"));
        (tun, sock)
    })
}

/// Every host's socket at `port` but `h`'s.
pub fn peers(hosts: &[usize], h: usize, port: u16) -> Vec<SocketAddrV4> {
    hosts
        .iter()
        .filter(|p| **p != h)
        .map(|p| SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, *p as u8), port))
        .collect()
}

/// Starts the forwarders in every host; they run until the process ends
/// (blocked in a read when idle, so they cost nothing between runs).
pub fn start(lab: &Lab, sender: usize, receiver: usize) -> Floor {
    let hosts: Vec<usize> = lab.host_ids().collect();
    let mut floor = Floor {
        sender_tid: 0,
        receiver_tid: 0,
    };
    for &h in &hosts {
        let (tun, sock) = open(lab, h, "floor0", 98, PORT);
        // SAFETY: fcntl on a descriptor the tun owns: blocking reads.
        unsafe { libc::fcntl(tun.as_raw_fd(), libc::F_SETFL, 0) };
        let tun = std::sync::Arc::new(tun);
        let peers = peers(&hosts, h, PORT);
        let out = sock.try_clone().expect("clone floor socket");
        let (tids, ids) = mpsc::channel();
        let reader = tun.clone();
        let tx = tids.clone();
        std::thread::spawn(move || {
            let _ = tx.send(("tun", gettid()));
            let mut buf = vec![0u8; 65_536];
            while let Ok(n) = reader.read(&mut buf) {
                for p in &peers {
                    let _ = out.send_to(&buf[..n], p);
                }
            }
        });
        std::thread::spawn(move || {
            let _ = tids.send(("net", gettid()));
            let mut buf = vec![0u8; 65_536];
            while let Ok(n) = sock.recv(&mut buf) {
                let _ = tun.write(&buf[..n]);
            }
        });
        for (kind, tid) in ids.iter().take(2) {
            match (kind, h) {
                ("tun", h) if h == sender => floor.sender_tid = tid,
                ("net", h) if h == receiver => floor.receiver_tid = tid,
                _ => {}
            }
        }
    }
    floor
}
