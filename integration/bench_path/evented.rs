//! The floor with an event loop: the floor's work (no header, no checks,
//! no crypto) done the way the relay waits. Each host gets a tun
//! (`floor1`, 10.97.0.h) and one thread that sleeps in `epoll_wait` on the
//! tun and the socket (edge-triggered, with a timeout as the relay's timers
//! give it), then reads each until it is empty: so per packet one
//! `epoll_wait` and one empty read more than the floor. Between this and
//! the floor is what that way of waiting costs; between this and the relay
//! is what the relay's runtime and logic cost.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::mpsc;

use mcast_relay::io::tun::{Tun, TunSpec};

use super::floor::{Floor, gettid, mtu};
use crate::lab::{self, Lab};

const PORT: u16 = 7_001;
/// The relay's loop always has a timer due (keepalives every second).
const TIMEOUT_MS: i32 = 1_000;

/// Starts one evented forwarder in every host; like the floor's, they run
/// until the process ends.
pub fn start(lab: &Lab, sender: usize, receiver: usize) -> Floor {
    let hosts: Vec<usize> = lab.host_ids().collect();
    let mut floor = Floor {
        sender_tid: 0,
        receiver_tid: 0,
    };
    for &h in &hosts {
        let (tun, sock) = lab::in_netns(&lab.ns(h), move || {
            let tun = Tun::open(&TunSpec {
                name: "floor1".into(),
                mtu: mtu(),
                address: Ipv4Addr::new(10, 97, 0, h as u8),
                prefix_len: 24,
                broadcast: Ipv4Addr::new(10, 97, 0, 255),
                address6: None,
                tap_mac: None,
            })
            .expect("evented floor tun");
            let sock = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, h as u8), PORT))
                .expect("evented floor socket");
            (tun, sock)
        });
        sock.set_nonblocking(true).expect("non-blocking socket");
        let peers: Vec<SocketAddrV4> = hosts
            .iter()
            .filter(|p| **p != h)
            .map(|p| SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, *p as u8), PORT))
            .collect();
        let (tids, ids) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tids.send(gettid());
            forward(&tun, &sock, &peers);
        });
        let tid = ids.recv().expect("evented forwarder started");
        if h == sender {
            floor.sender_tid = tid;
        }
        if h == receiver {
            floor.receiver_tid = tid;
        }
    }
    floor
}

fn forward(tun: &Tun, sock: &UdpSocket, peers: &[SocketAddrV4]) {
    // SAFETY: a new epoll instance; its descriptor is this thread's.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    assert!(ep >= 0, "epoll_create1: {}", io::Error::last_os_error());
    for (fd, token) in [(tun.as_raw_fd(), 0u64), (sock.as_raw_fd(), 1)] {
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLET) as u32,
            u64: token,
        };
        // SAFETY: both descriptors outlive the loop, which never returns.
        let r = unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) };
        assert!(r == 0, "epoll_ctl: {}", io::Error::last_os_error());
    }
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 8];
    let mut buf = vec![0u8; 65_536];
    loop {
        // SAFETY: `events` is writable for its length.
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), 8, TIMEOUT_MS) };
        for ev in events.iter().take(n.max(0) as usize) {
            if ev.u64 == 0 {
                while let Ok(len) = tun.read(&mut buf) {
                    for p in peers {
                        let _ = sock.send_to(&buf[..len], p);
                    }
                }
            } else {
                while let Ok(len) = sock.recv(&mut buf) {
                    let _ = tun.write(&buf[..len]);
                }
            }
        }
    }
}
