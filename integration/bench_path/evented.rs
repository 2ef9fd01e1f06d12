//! The floor with an event loop: the floor's work (no header, no checks,
//! no crypto) done the way the relay waits. Each host gets a tun
//! (`floor1`, 10.97.0.h) and one thread that sleeps in `epoll_wait` on the
//! tun and the socket (edge-triggered, with a timeout as the relay's timers
//! give it), then reads each until it is empty: so per packet one
//! `epoll_wait` and one empty read more than the floor. Between this and
//! the floor is what that way of waiting costs (its receiving side reads
//! once more, empty, where the relay's `recvmmsg` of two does not; sends
//! that would block are dropped, not waited for); between this and the relay
//! is what the relay's runtime and logic cost. Sealed, each packet also
//! goes through the relay's cipher (ChaCha20-Poly1305, ring, an 8-byte
//! counter in front): what encryption costs the path, alone.

use std::io;
use std::net::{SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::mpsc;

use mcast_relay::io::tun::Tun;
use mcast_relay::proto::crypto::StreamKey;

use super::floor::{self, Floor, gettid};
use crate::lab::Lab;

/// Ports of the plain and the sealed variant.
const PORT: u16 = 7_001;
const SEALED_PORT: u16 = 7_002;
/// The relay's loop always has a timer due (keepalives every second).
const TIMEOUT_MS: i32 = 1_000;

/// Starts one evented forwarder in every host, on `floor1` (10.97.0.h),
/// or sealed on `floor2` (10.96.0.h); like the floor's, they run until
/// the process ends.
pub fn start(lab: &Lab, sender: usize, receiver: usize, sealed: bool) -> Floor {
    let (name, net, port) = if sealed {
        ("floor2", 96, SEALED_PORT)
    } else {
        ("floor1", 97, PORT)
    };
    let hosts: Vec<usize> = lab.host_ids().collect();
    let mut floor = Floor {
        sender_tid: 0,
        receiver_tid: 0,
    };
    for &h in &hosts {
        let (tun, sock) = floor::open(lab, h, name, net, port);
        sock.set_nonblocking(true).expect("non-blocking socket");
        let peers = floor::peers(&hosts, h, port);
        let (tids, ids) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tids.send(gettid());
            // One key for the whole lab: what is measured is the work.
            let key = sealed.then(|| StreamKey::new(&[7; 32]));
            forward(&tun, &sock, &peers, key.as_ref());
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

fn forward(tun: &Tun, sock: &UdpSocket, peers: &[SocketAddrV4], key: Option<&StreamKey>) {
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
    let mut counter = 0u64;
    loop {
        // SAFETY: `events` is writable for its length.
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), 8, TIMEOUT_MS) };
        for ev in events.iter().take(n.max(0) as usize) {
            if ev.u64 == 0 {
                while let Ok(len) = tun.read(&mut buf[8..65_536 - 16]) {
                    let end = match key {
                        Some(k) => {
                            counter += 1;
                            buf[..8].copy_from_slice(&counter.to_be_bytes());
                            let tag = k.seal(counter, &[], &mut buf[8..8 + len]);
                            buf[8 + len..8 + len + 16].copy_from_slice(&tag);
                            8 + len + 16
                        }
                        None => 8 + len,
                    };
                    // Plain: the packet alone, as the floor sends it.
                    let out = if key.is_some() {
                        &buf[..end]
                    } else {
                        &buf[8..end]
                    };
                    for p in peers {
                        let _ = sock.send_to(out, p);
                    }
                }
            } else {
                while let Ok(len) = sock.recv(&mut buf) {
                    let packet = match key {
                        Some(k) if len >= 24 => {
                            let c = u64::from_be_bytes(buf[..8].try_into().unwrap_or([0; 8]));
                            match k.open(c, &[], &mut buf[8..len]) {
                                Ok(n) => &buf[8..8 + n],
                                Err(_) => continue,
                            }
                        }
                        Some(_) => continue,
                        None => &buf[..len],
                    };
                    let _ = tun.write(packet);
                }
            }
        }
    }
}
