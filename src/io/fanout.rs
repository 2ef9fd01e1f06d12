//! The copies of one sealed datagram, one per target peer, in a single
//! sendmmsg(2) instead of a sendto(2) each: the bytes are the same for
//! every peer (one seal per packet), only the address differs.
//!
//! The address list and message headers are reused, so once they have
//! grown to the number of peers, sending allocates nothing.

use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;

use socket2::SockAddr;

/// The targets of one datagram, each named by the caller's `P` (a peer
/// id) so outcomes can be told per peer.
pub struct Fanout<P> {
    peers: Vec<(P, SocketAddr)>,
    addrs: Vec<SockAddr>,
    msgs: Vec<libc::mmsghdr>,
}

impl<P: Copy> Fanout<P> {
    pub fn with_capacity(peers: usize) -> Fanout<P> {
        Fanout {
            peers: Vec::with_capacity(peers),
            addrs: Vec::with_capacity(peers),
            msgs: Vec::with_capacity(peers),
        }
    }

    /// Forgets the previous datagram's targets.
    pub fn clear(&mut self) {
        self.peers.clear();
        self.addrs.clear();
    }

    /// Adds peer `peer`, reachable at `to`, to the targets.
    pub fn push(&mut self, peer: P, to: SocketAddr) {
        self.peers.push((peer, to));
        self.addrs.push(SockAddr::from(to));
    }

    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// Sends `bytes` to every target on the non-blocking socket `fd` and
    /// reports each outcome: `done(peer, address, result)`. A failure for
    /// one peer (the kernel stops a batch at the first) is reported and the
    /// rest are still sent.
    pub fn send(
        &mut self,
        fd: RawFd,
        bytes: &[u8],
        mut done: impl FnMut(P, SocketAddr, io::Result<()>),
    ) {
        let mut iov = libc::iovec {
            iov_base: bytes.as_ptr() as *mut libc::c_void,
            iov_len: bytes.len(),
        };
        self.msgs.clear();
        for a in &self.addrs {
            // SAFETY: all-zero is a valid mmsghdr (no name, no data, no
            // control); the pointers set below stay valid during the calls.
            let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
            m.msg_hdr.msg_name = a.as_ptr() as *mut libc::c_void;
            m.msg_hdr.msg_namelen = a.len();
            m.msg_hdr.msg_iov = &mut iov;
            m.msg_hdr.msg_iovlen = 1;
            self.msgs.push(m);
        }
        let mut start = 0;
        while start < self.msgs.len() {
            let left = self.msgs.len() - start;
            // SAFETY: msgs[start..] are `left` initialised headers whose
            // name and iovec point at self.addrs and `bytes`, both alive
            // and unmoved for the duration of the call.
            let sent = unsafe {
                libc::sendmmsg(
                    fd,
                    self.msgs.as_mut_ptr().add(start),
                    left as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if sent > 0 {
                for &(peer, to) in &self.peers[start..start + sent as usize] {
                    done(peer, to, Ok(()));
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
            let (peer, to) = self.peers[start];
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
    fn every_target_gets_the_same_bytes_and_a_failure_spares_the_others() {
        let tx = UdpSocket::bind("127.0.0.1:0").expect("bind on loopback");
        let (a, b) = (listener(), listener());
        let mut f = Fanout::with_capacity(3);
        f.push(0, a.local_addr().expect("addr"));
        // An IPv6 address on an IPv4 socket fails for this peer alone.
        f.push(1, "[::1]:9".parse().expect("addr"));
        f.push(2, b.local_addr().expect("addr"));
        let mut outcomes = Vec::new();
        f.send(tx.as_raw_fd(), b"heartbeat", |peer, _, r| {
            outcomes.push((peer, r.is_ok()))
        });
        assert_eq!(outcomes, vec![(0, true), (1, false), (2, true)]);
        for s in [&a, &b] {
            let mut buf = [0u8; 64];
            let n = s.recv(&mut buf).expect("the datagram arrives");
            assert_eq!(&buf[..n], b"heartbeat");
        }
        f.clear();
        assert!(f.is_empty());
    }

    #[test]
    fn the_failed_peer_is_reported_with_its_address() {
        let tx = UdpSocket::bind("127.0.0.1:0").expect("bind on loopback");
        let mut f = Fanout::with_capacity(1);
        let bad: SocketAddr = "[::1]:9".parse().expect("addr");
        f.push(7, bad);
        let mut seen = None;
        f.send(tx.as_raw_fd(), b"x", |peer, to, r| {
            seen = Some((peer, to, r.is_err()))
        });
        assert_eq!(seen, Some((7, bad, true)));
    }
}
