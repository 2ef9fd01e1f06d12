//! Sending attacks and checking their counts: the stranger's sockets (its
//! own address and a spoofed peer's), the key holder's, and the list of
//! what was tried that the test reports at the end.

use super::*;

/// One line of the closing report.
pub(super) struct Tried {
    pub(super) attack: String,
    pub(super) target: usize,
    pub(super) sent: usize,
    pub(super) reason: String,
}

#[derive(Clone, Copy)]
pub(super) enum From {
    Outsider,
    /// The outsider, with h3's underlay address as source.
    Spoofed,
    /// The key holder on h3, from h3's own address and port.
    Member,
}

pub(super) fn bind_in(ns: &str, addr: SocketAddrV4) -> UdpSocket {
    in_netns(ns, move || {
        UdpSocket::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"))
    })
}

pub(super) fn blast(sock: &UdpSocket, to: usize, datagrams: &[Vec<u8>]) {
    for (i, d) in datagrams.iter().enumerate() {
        sock.send_to(d, underlay(to))
            .unwrap_or_else(|e| panic!("send to h{to}: {e}"));
        // A pause now and then so the socket buffer of a debug-build relay
        // never overflows: every datagram must reach the relay to be counted.
        if i % 50 == 49 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// Runs attacks against relays and checks the counters move exactly.
pub(super) struct Attacker {
    pub(super) outsider: UdpSocket,
    pub(super) spoofed: UdpSocket,
    /// The key holder's socket, once it has replaced h3's relay.
    pub(super) member: Option<Arc<UdpSocket>>,
    pub(super) tried: Vec<Tried>,
}

impl Attacker {
    pub(super) fn new(lab: &Lab) -> Attacker {
        let ns = lab.outsider_ns();
        Attacker {
            outsider: bind_in(&ns, SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, 99), 0)),
            spoofed: bind_in(&ns, SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, 3), 0)),
            member: None,
            tried: Vec::new(),
        }
    }

    pub(super) fn record(&mut self, h: usize, what: String, sent: usize, reason: &str) {
        self.tried.push(Tried {
            attack: what,
            target: h,
            sent,
            reason: reason.to_string(),
        });
    }

    /// Sends `datagrams` to `h`'s relay and asserts they all land under
    /// `reason`, and nothing else moved.
    pub(super) fn attack(
        &mut self,
        lab: &Lab,
        h: usize,
        from: From,
        what: &str,
        datagrams: &[Vec<u8>],
        reason: &str,
    ) {
        let before = net_drops(lab, h);
        {
            let sock: &UdpSocket = match from {
                From::Outsider => &self.outsider,
                From::Spoofed => &self.spoofed,
                From::Member => self.member.as_deref().expect("the key holder is on h3"),
            };
            blast(sock, h, datagrams);
        }
        expect(lab, h, &before, &[(reason, datagrams.len())], what);
        let attack = match from {
            From::Outsider => what.to_string(),
            From::Spoofed => format!("{what}, spoofed source 10.77.0.3"),
            From::Member => format!("key holder: {what}"),
        };
        self.record(h, attack, datagrams.len(), reason);
    }
}
