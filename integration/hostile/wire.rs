//! What the underlay shows an eavesdropper: relay datagrams in tcpdump's
//! captures, h3's markers as sealed for each peer, and the handshakes
//! between two relays. Every replay and every forgery that needs a real
//! session index or counter takes it from here, as an attacker would.

use super::*;

/// A relay datagram seen on an underlay interface, with the hosts it went
/// between.
pub(super) struct Seen {
    pub(super) src: usize,
    pub(super) dst: usize,
    pub(super) bytes: Vec<u8>,
}

/// The relay datagrams among captured Ethernet frames.
pub(super) fn relay_datagrams(frames: &[Vec<u8>]) -> Vec<Seen> {
    frames
        .iter()
        .filter_map(|f| {
            let ip = f.get(14..34)?;
            let host = |a: &[u8]| usize::from(a[3]);
            Some(Seen {
                src: host(&ip[12..16]),
                dst: host(&ip[16..20]),
                bytes: capture::udp_payload(f)?.to_vec(),
            })
        })
        .collect()
}

pub(super) fn kind_of(d: &[u8]) -> Option<Kind> {
    Prefix::parse(d).ok().map(|p| p.kind)
}

/// Sends `N` markers from h3's overlay address to the VRRP group on h3's
/// `mcast0`, as a failover tool would; h3's relay carries them.
pub(super) fn send_markers(lab: &Lab, batch: u8) {
    in_netns(&lab.ns(SENDER), move || {
        let s =
            Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(112))).expect("raw socket");
        s.set_multicast_if_v4(&overlay(SENDER))
            .expect("IP_MULTICAST_IF");
        s.set_multicast_ttl_v4(255).expect("IP_MULTICAST_TTL");
        let to = SockAddr::from(SocketAddrV4::new(Ipv4Addr::new(224, 0, 0, 18), 0));
        for i in 0..N {
            s.send_to(&marker(batch, i as u16), &to)
                .expect("send a marker");
            std::thread::sleep(Duration::from_millis(2));
        }
    });
}

/// What h3 sends to each peer on the wire, as an eavesdropper captures it.
/// Every peer gets its own copy of each marker, sealed under its own
/// session with h3.
pub(super) struct Wire {
    pub(super) cap: Capture,
    pub(super) seen: usize,
}

/// The length of a data datagram carrying a marker (IPv4 header, marker,
/// transport header and tag).
pub(super) const MARKER_DATAGRAM: usize = HEADER_LEN + 20 + 12 + TAG_LEN;

impl Wire {
    /// The `N` data datagrams to each of `to` that carried marker batch
    /// `batch`, in order.
    pub(super) fn take_batch(&mut self, batch: u8, to: &[usize]) -> HashMap<usize, Vec<Vec<u8>>> {
        let got = lab::wait_for(
            &format!("h3's datagrams of marker batch {batch}"),
            Duration::from_secs(10),
            || {
                let all = relay_datagrams(&self.cap.packets());
                let mut per: HashMap<usize, Vec<(usize, Vec<u8>)>> = HashMap::new();
                for (i, s) in all.into_iter().enumerate().skip(self.seen) {
                    // Copy 0 of each marker only: the later copies
                    // (node.redundancy) of one batch would otherwise be
                    // taken as the next batch's, and a copy delivered
                    // before h4's firewall closed counted as undelivered.
                    let first_copy = s.bytes.get(3) == Some(&0);
                    if kind_of(&s.bytes) == Some(Kind::Data) && first_copy && to.contains(&s.dst) {
                        per.entry(s.dst).or_default().push((i, s.bytes));
                    }
                }
                to.iter()
                    .all(|h| per.get(h).is_some_and(|v| v.len() >= N))
                    .then_some(per)
            },
        );
        let mut out = HashMap::new();
        for (h, mut v) in got {
            v.truncate(N);
            self.seen = self.seen.max(v.last().map_or(0, |(i, _)| i + 1));
            for (_, d) in &v {
                assert_eq!(
                    d.len(),
                    MARKER_DATAGRAM,
                    "h3 sent h{h} data other than the markers of batch {batch}"
                );
                assert_eq!(header_of(d).prefix.sender, u32::from(overlay(SENDER)));
            }
            out.insert(h, v.into_iter().map(|(_, d)| d).collect());
        }
        out
    }
}

/// The handshake messages captured between two relays: initiations each
/// side answered, and the responses.
pub(super) struct Handshakes {
    /// (from, to, bytes) of every initiation.
    pub(super) initiations: Vec<(usize, usize, Vec<u8>)>,
    /// Those answered by their receiver.
    pub(super) answered: Vec<(usize, usize, Vec<u8>)>,
    pub(super) responses: Vec<(usize, usize, Vec<u8>)>,
}

pub(super) fn handshakes(seen: &[Seen]) -> Handshakes {
    let of = |k: Kind| -> Vec<&Seen> {
        seen.iter()
            .filter(|s| kind_of(&s.bytes) == Some(k))
            .collect()
    };
    let inits = of(Kind::Initiation);
    let resps = of(Kind::Response);
    let answered = inits
        .iter()
        .filter(|i| {
            let asked = HandshakeIds::parse(Kind::Initiation, &i.bytes).sender_index;
            resps.iter().any(|r| {
                r.src == i.dst
                    && r.dst == i.src
                    && HandshakeIds::parse(Kind::Response, &r.bytes).receiver_index == asked
            })
        })
        .map(|i| (i.src, i.dst, i.bytes.clone()))
        .collect();
    Handshakes {
        initiations: inits
            .iter()
            .map(|i| (i.src, i.dst, i.bytes.clone()))
            .collect(),
        answered,
        responses: resps
            .iter()
            .map(|r| (r.src, r.dst, r.bytes.clone()))
            .collect(),
    }
}
