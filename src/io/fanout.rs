//! The datagrams of one packet, one per target peer, in a single
//! sendmmsg(2) instead of a sendto(2) each. Each peer's datagram is sealed
//! under its own session, so each message points at its own bytes.
//!
//! The address list, the iovecs and the message headers are reused, so
//! once they have grown to the number of peers, sending allocates nothing.

use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;

use socket2::SockAddr;

/// The reused buffers; each datagram's target is named by the caller's
/// `P` (a peer id) so outcomes can be told per peer.
pub struct Fanout<P> {
    /// Each datagram's peer, address and length.
    peers: Vec<(P, SocketAddr, usize)>,
    addrs: Vec<SockAddr>,
    iovs: Vec<libc::iovec>,
    msgs: Vec<libc::mmsghdr>,
}

impl<P: Copy> Fanout<P> {
    pub fn with_capacity(peers: usize) -> Fanout<P> {
        Fanout {
            peers: Vec::with_capacity(peers),
            addrs: Vec::with_capacity(peers),
            iovs: Vec::with_capacity(peers),
            msgs: Vec::with_capacity(peers),
        }
    }

    /// Sends each `(peer, address, bytes)` of `datagrams` on the
    /// non-blocking socket `fd` and reports each outcome:
    /// `done(peer, address, result)`, the result holding the bytes sent. A failure for one peer (the kernel
    /// stops a batch at the first) is reported and the rest are still sent.
    pub fn send<'b>(
        &mut self,
        fd: RawFd,
        datagrams: impl Iterator<Item = (P, SocketAddr, &'b [u8])>,
        mut done: impl FnMut(P, SocketAddr, io::Result<usize>),
    ) {
        self.peers.clear();
        self.addrs.clear();
        self.iovs.clear();
        for (peer, to, bytes) in datagrams {
            self.peers.push((peer, to, bytes.len()));
            self.addrs.push(SockAddr::from(to));
            self.iovs.push(libc::iovec {
                iov_base: bytes.as_ptr() as *mut libc::c_void,
                iov_len: bytes.len(),
            });
        }
        self.msgs.clear();
        for (a, iov) in self.addrs.iter().zip(self.iovs.iter_mut()) {
            // SAFETY: all-zero is a valid mmsghdr (no name, no data, no
            // control); the pointers set below stay valid during the calls.
            let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
            m.msg_hdr.msg_name = a.as_ptr() as *mut libc::c_void;
            m.msg_hdr.msg_namelen = a.len();
            m.msg_hdr.msg_iov = iov;
            m.msg_hdr.msg_iovlen = 1;
            self.msgs.push(m);
        }
        let mut start = 0;
        while start < self.msgs.len() {
            let left = self.msgs.len() - start;
            // SAFETY: msgs[start..] are `left` initialised headers whose
            // name and iovec point at self.addrs, self.iovs and the bytes
            // borrowed for 'b, all alive and unmoved during the call.
            let sent = unsafe {
                libc::sendmmsg(
                    fd,
                    self.msgs.as_mut_ptr().add(start),
                    left as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if sent > 0 {
                for &(peer, to, len) in &self.peers[start..start + sent as usize] {
                    done(peer, to, Ok(len));
                }
                start += sent as usize;
                continue;
            }
            let e = if sent == 0 {
                io::Error::other("sendmmsg sent nothing")
            } else {
                io::Error::last_os_error()
            };
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            // The first message of this batch failed: report it, go on
            // with the next peer.
            let (peer, to, _) = self.peers[start];
            done(peer, to, Err(e));
            start += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;
    use std::time::Duration;

    fn listener() -> UdpSocket {
        let s = UdpSocket::bind("127.0.0.1:0").expect("bind on loopback");
        s.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        s
    }

    #[test]
    fn every_target_gets_its_own_bytes_and_a_failure_spares_the_others() {
        let tx = UdpSocket::bind("127.0.0.1:0").expect("bind on loopback");
        let (a, b) = (listener(), listener());
        let mut f = Fanout::with_capacity(3);
        // An IPv6 address on an IPv4 socket fails for this peer alone.
        let bad: SocketAddr = "[::1]:9".parse().expect("addr");
        let batch: [(u8, SocketAddr, &[u8]); 3] = [
            (0, a.local_addr().expect("addr"), b"to a"),
            (1, bad, b"to nobody"),
            (2, b.local_addr().expect("addr"), b"to b"),
        ];
        let mut outcomes = Vec::new();
        f.send(tx.as_raw_fd(), batch.into_iter(), |peer, _, r| {
            outcomes.push((peer, r.is_ok()))
        });
        assert_eq!(outcomes, vec![(0, true), (1, false), (2, true)]);
        for (s, want) in [(&a, b"to a"), (&b, b"to b")] {
            let mut buf = [0u8; 64];
            let n = s.recv(&mut buf).expect("the datagram arrives");
            assert_eq!(&buf[..n], want, "each peer gets its own bytes");
        }
    }

    #[test]
    fn the_failed_peer_is_reported_with_its_address() {
        let tx = UdpSocket::bind("127.0.0.1:0").expect("bind on loopback");
        let mut f = Fanout::with_capacity(1);
        let bad: SocketAddr = "[::1]:9".parse().expect("addr");
        let one: [(u8, SocketAddr, &[u8]); 1] = [(7, bad, b"x")];
        let mut seen = None;
        f.send(tx.as_raw_fd(), one.into_iter(), |peer, to, r| {
            seen = Some((peer, to, r.is_err()))
        });
        assert_eq!(seen, Some((7, bad, true)));
    }
}
