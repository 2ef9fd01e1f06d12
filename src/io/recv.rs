//! Receiving from the relay's UDP socket two datagrams at a time with one
//! recvmmsg(2). When it returns fewer than two the queue was empty as the
//! kernel looked, so the event loop can go back to waiting without the
//! extra, empty `recvfrom` that would otherwise tell it so: at heartbeat
//! rates every datagram arrives alone, and that empty read was a third of
//! the receive path's system calls.
//!
//! The buffers are allocated once; receiving allocates nothing.

use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;

use socket2::{SockAddr, SockAddrStorage};

/// Datagrams taken per call. Two is enough to know the queue is empty
/// after one; more would only save calls in a burst, which the loop's
/// batch handles anyway.
pub const PER_CALL: usize = 2;

/// The buffers of one call and what the kernel wrote into them.
pub struct Recv {
    bufs: [Vec<u8>; PER_CALL],
    lens: [usize; PER_CALL],
    froms: [Option<SocketAddr>; PER_CALL],
    // SAFETY of the pointers: rebuilt on every call from `bufs` and
    // `names`, which are not moved or resized while the call runs.
    names: [SockAddrStorage; PER_CALL],
    iovs: [libc::iovec; PER_CALL],
    msgs: [libc::mmsghdr; PER_CALL],
}

impl Recv {
    /// Buffers of `size` bytes each, the largest datagram accepted.
    pub fn new(size: usize) -> Recv {
        // SAFETY: all-zero is a valid mmsghdr (no name, no data, no
        // control) and a valid iovec (null, length 0).
        let (iovs, msgs) = unsafe { (std::mem::zeroed(), std::mem::zeroed()) };
        let names = std::array::from_fn(|_| SockAddrStorage::zeroed());
        Recv {
            bufs: std::array::from_fn(|_| vec![0u8; size]),
            lens: [0; PER_CALL],
            froms: [None; PER_CALL],
            names,
            iovs,
            msgs,
        }
    }

    /// Receives what is queued on the non-blocking socket `fd`, up to
    /// [`PER_CALL`] datagrams; `Ok(n)` with `n` at least one. A datagram
    /// whose sender address cannot be read is still returned, with no
    /// sender (see [`Recv::datagram`]), so it is counted and dropped.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        for k in 0..PER_CALL {
            self.iovs[k] = libc::iovec {
                iov_base: self.bufs[k].as_mut_ptr().cast(),
                iov_len: self.bufs[k].len(),
            };
            // SAFETY: as in `new`, all-zero is a valid header.
            self.msgs[k] = unsafe { std::mem::zeroed() };
            let h = &mut self.msgs[k].msg_hdr;
            h.msg_name = (&mut self.names[k] as *mut SockAddrStorage).cast();
            h.msg_namelen = self.names[k].size_of();
            h.msg_iov = &mut self.iovs[k];
            h.msg_iovlen = 1;
        }
        // SAFETY: `msgs` holds PER_CALL initialised headers pointing at
        // `names`, `iovs` and `bufs`, all alive and unmoved during the call.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.msgs.as_mut_ptr(),
                PER_CALL as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        for k in 0..n {
            let h = &self.msgs[k].msg_hdr;
            self.lens[k] = self.msgs[k].msg_len as usize;
            // SAFETY: the kernel wrote a socket address of `msg_namelen`
            // bytes into names[k], a whole sockaddr_storage.
            let addr = unsafe {
                SockAddr::new(
                    std::mem::replace(&mut self.names[k], SockAddrStorage::zeroed()),
                    h.msg_namelen,
                )
            };
            self.froms[k] = addr.as_socket();
        }
        Ok(n)
    }

    /// Datagram `k` of the last call: its bytes (writable, the core opens
    /// in place) and its sender.
    pub fn datagram(&mut self, k: usize) -> (&mut [u8], Option<SocketAddr>) {
        let len = self.lens[k].min(self.bufs[k].len());
        (&mut self.bufs[k][..len], self.froms[k])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    fn pair() -> (UdpSocket, UdpSocket) {
        let rx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        rx.set_nonblocking(true).expect("nonblocking");
        let tx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        tx.connect(rx.local_addr().expect("addr")).expect("connect");
        (rx, tx)
    }

    #[test]
    fn empty_queue_is_would_block() {
        let (rx, _tx) = pair();
        let mut r = Recv::new(2048);
        let e = r.recv(rx.as_raw_fd()).expect_err("nothing queued");
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn one_queued_is_one_and_tells_the_queue_is_empty() {
        let (rx, tx) = pair();
        tx.send(b"hello").expect("send");
        let mut r = Recv::new(2048);
        assert_eq!(r.recv(rx.as_raw_fd()).expect("one"), 1);
        let (bytes, from) = r.datagram(0);
        assert_eq!(bytes, b"hello");
        assert_eq!(from, Some(tx.local_addr().expect("addr")));
    }

    #[test]
    fn three_queued_come_two_then_one_in_order() {
        let (rx, tx) = pair();
        for m in [&b"a"[..], b"bb", b"ccc"] {
            tx.send(m).expect("send");
        }
        let mut r = Recv::new(2048);
        assert_eq!(r.recv(rx.as_raw_fd()).expect("two"), 2);
        assert_eq!(r.datagram(0).0, b"a");
        assert_eq!(r.datagram(1).0, b"bb");
        assert_eq!(r.recv(rx.as_raw_fd()).expect("one"), 1);
        assert_eq!(r.datagram(0).0, b"ccc");
    }

    #[test]
    fn a_datagram_longer_than_the_buffer_is_cut_not_overrun() {
        let (rx, tx) = pair();
        tx.send(&[7u8; 100]).expect("send");
        let mut r = Recv::new(10);
        assert_eq!(r.recv(rx.as_raw_fd()).expect("one"), 1);
        assert_eq!(r.datagram(0).0, &[7u8; 10]);
    }
}
