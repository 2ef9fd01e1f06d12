//! The relay on a hostile network: stock keepalived (VRRPv3, advert_int 0.1)
//! with a stable master, while a stranger on the cloud network, and then a
//! cluster member holding the key, throw everything at the relays.
//!
//! Each attack's datagrams must be dropped under the right reason (exact
//! counter deltas), tcpdump on every `mcast0` must show that nothing but
//! the peers' own packets was ever written into a host, and the VIP must
//! never move. Needs root; skips visibly without it.

use crate::lab;

use std::collections::HashMap;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use lab::capture::{self, Capture};
use lab::keepalived::Vrrp;
use lab::vip::{self, Watch};
use lab::{Lab, RelayOptions, in_netns};
use mcast_relay::core::DropReason;
use mcast_relay::proto::crypto::{ClusterKey, KeySchedule};
use mcast_relay::proto::wire::{
    HEADER_LEN, HELLO_LEN, HELLO_WANT_REPLY, Header, Hello, Kind, TAG_LEN,
};
use mcast_relay::testing::cluster::{header, open, seal};
use mcast_relay::testing::packets::{checksum, ipv4, udp};

const HOSTS: usize = 4;
/// keepalived runs on h1 (master) and h2 (backup); h3 is the peer whose
/// datagrams get captured and replayed (and later compromised); h4 is a
/// receiver whose relay gets restarted. Neither h3 nor h4 runs keepalived,
/// so restarting their relays cannot cause a failover of its own.
const MASTER: usize = 1;
const BACKUP: usize = 2;
const SENDER: usize = 3;
const SPARE: usize = 4;
const PRIORITY: [u8; 2] = [200, 150];
/// Marker packets per batch.
const N: usize = 20;
/// Random junk datagrams per junk attack.
const JUNK: usize = 50;
const PORT: u16 = 7112;

fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn overlay(h: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 250, 0, h as u8)
}

fn underlay(h: usize) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, h as u8), PORT)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// xorshift64*: reproducible test data from a printed seed (not crypto).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo)
    }
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

// ---------------------------------------------------------------- packets

/// A VRRPv3-shaped payload for VRID 99, which is not the cluster's (51), so
/// keepalived ignores it; `batch` and `i` make every marker unique.
fn marker(batch: u8, i: u16) -> Vec<u8> {
    let [hi, lo] = i.to_be_bytes();
    vec![0x31, 99, 1, 1, 0x00, 0x0a, 0, 0, 10, batch, hi, lo]
}

/// VRRPv3 advert for the cluster's VRID 51 at priority 255: if one were
/// injected, keepalived would hand the VIP to its claimed source.
fn takeover_advert() -> Vec<u8> {
    let mut a = vec![0x31, 51, 255, 1, 0x00, 0x0a, 0, 0, 10, 77, 0, 100];
    let c = checksum(&a);
    a[6..8].copy_from_slice(&c.to_be_bytes());
    a
}

fn tcp_syn(dport: u16) -> Vec<u8> {
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&40000u16.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = 0x02;
    t[14..16].copy_from_slice(&1024u16.to_be_bytes());
    t
}

fn icmp_echo() -> Vec<u8> {
    let mut e = vec![8, 0, 0, 0, 0x12, 0x34, 0, 1, b'h', b'i'];
    let c = checksum(&e);
    e[2..4].copy_from_slice(&c.to_be_bytes());
    e
}

// ------------------------------------------------------------ datagrams

fn header_of(d: &[u8]) -> Header {
    Header::parse(d).expect("a captured datagram has a valid header")
}

/// Re-encodes `d` with its header changed by `f` (the tag is left as is,
/// so only the header checks or authentication can tell).
fn with_header(d: &[u8], f: impl FnOnce(&mut Header)) -> Vec<u8> {
    let mut h = header_of(d);
    f(&mut h);
    let mut out = d.to_vec();
    h.encode(&mut out);
    out
}

fn flip_bit(d: &[u8], byte: usize, bit: u32) -> Vec<u8> {
    let mut out = d.to_vec();
    out[byte] ^= 1 << bit;
    out
}

// ------------------------------------------------------------- the lab

/// Sends `N` markers from h3's overlay address to the VRRP group on h3's
/// `mcast0`, as a failover tool would; h3's relay carries them.
fn send_markers(lab: &Lab, batch: u8) {
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

/// What h3 sends to h2 on the wire, as an eavesdropper captures it.
struct Wire {
    cap: Capture,
    seen: usize,
}

impl Wire {
    /// The `N` data datagrams that carried marker batch `batch`, checked by
    /// opening them with the key.
    fn take_batch(&mut self, keys: &KeySchedule, batch: u8) -> Vec<Vec<u8>> {
        let got = lab::wait_for(
            &format!("h3's datagrams of marker batch {batch}"),
            Duration::from_secs(10),
            || {
                let all = self.cap.packets();
                let data: Vec<(usize, Vec<u8>)> = all
                    .iter()
                    .enumerate()
                    .skip(self.seen)
                    .filter_map(|(i, f)| Some((i, capture::udp_payload(f)?.to_vec())))
                    .filter(|(_, d)| Header::parse(d).is_ok_and(|h| h.kind == Kind::Data))
                    .collect();
                (data.len() >= N).then_some(data)
            },
        );
        assert_eq!(got.len(), N, "h3 sent data other than the markers");
        self.seen = got.last().map_or(self.seen, |(i, _)| i + 1);
        let datagrams: Vec<Vec<u8>> = got.into_iter().map(|(_, d)| d).collect();
        for (i, d) in datagrams.iter().enumerate() {
            let inner = open(keys, d).expect("a captured datagram opens with the key");
            assert_eq!(
                inner.get(20..),
                Some(marker(batch, i as u16).as_slice()),
                "datagram {i} of batch {batch} does not carry its marker"
            );
            assert_eq!(header_of(d).sender, u32::from(overlay(SENDER)));
        }
        datagrams
    }
}

/// The network drop counters of host `h`'s relay.
fn net_drops(lab: &Lab, h: usize) -> HashMap<String, u64> {
    let all = lab.relay_counters(h);
    // unconfirmed_epoch is left out: it is normal right after a restart.
    DropReason::ALL
        .iter()
        .filter(|r| r.from_network() && !r.is_benign())
        .map(|r| {
            (
                r.name().to_string(),
                all.get(r.name()).copied().unwrap_or(0),
            )
        })
        .collect()
}

fn grown(now: &HashMap<String, u64>, before: &HashMap<String, u64>) -> HashMap<String, u64> {
    now.iter()
        .filter_map(|(k, v)| {
            let d = v.saturating_sub(before.get(k).copied().unwrap_or(0));
            (d > 0).then(|| (k.clone(), d))
        })
        .collect()
}

/// One line of the closing report.
struct Tried {
    attack: String,
    target: usize,
    sent: usize,
    reason: String,
}

/// Runs attacks against relays and checks the counters move exactly.
struct Attacker {
    outsider: UdpSocket,
    spoofed: UdpSocket,
    tried: Vec<Tried>,
}

#[derive(Clone, Copy)]
enum From {
    Outsider,
    /// The outsider, with h3's underlay address as source.
    Spoofed,
}

fn bind_in(ns: &str, addr: SocketAddrV4) -> UdpSocket {
    in_netns(ns, move || {
        UdpSocket::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"))
    })
}

fn blast(sock: &UdpSocket, to: usize, datagrams: &[Vec<u8>]) {
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

/// Waits until `h`'s network drops grew by `total`, then a little longer
/// for stragglers; returns the growth.
fn drops_after(
    lab: &Lab,
    h: usize,
    before: &HashMap<String, u64>,
    total: u64,
) -> HashMap<String, u64> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let g = grown(&net_drops(lab, h), before);
        if g.values().sum::<u64>() >= total || Instant::now() > deadline {
            std::thread::sleep(Duration::from_millis(100));
            return grown(&net_drops(lab, h), before);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The growth of `h`'s network drops once it stops changing.
fn settled_drops(lab: &Lab, h: usize, before: &HashMap<String, u64>) -> HashMap<String, u64> {
    let mut last = grown(&net_drops(lab, h), before);
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(200));
        let now = grown(&net_drops(lab, h), before);
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

fn expect(
    lab: &Lab,
    h: usize,
    before: &HashMap<String, u64>,
    expected: &[(&str, usize)],
    what: &str,
) {
    let want: HashMap<String, u64> = expected
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(r, n)| (r.to_string(), *n as u64))
        .collect();
    let got = drops_after(lab, h, before, want.values().sum());
    assert_eq!(got, want, "{what}: drops counted by h{h}'s relay");
}

impl Attacker {
    fn new(lab: &Lab) -> Attacker {
        let ns = lab.outsider_ns();
        Attacker {
            outsider: bind_in(&ns, SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, 99), 0)),
            spoofed: bind_in(&ns, SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, 3), 0)),
            tried: Vec::new(),
        }
    }

    /// Sends `datagrams` to `h`'s relay and asserts they all land under
    /// `reason`, and nothing else moved.
    fn attack(
        &mut self,
        lab: &Lab,
        h: usize,
        from: From,
        what: &str,
        datagrams: &[Vec<u8>],
        reason: &str,
    ) {
        let before = net_drops(lab, h);
        let sock = match from {
            From::Outsider => &self.outsider,
            From::Spoofed => &self.spoofed,
        };
        blast(sock, h, datagrams);
        expect(lab, h, &before, &[(reason, datagrams.len())], what);
        let src = match from {
            From::Outsider => "",
            From::Spoofed => ", spoofed source 10.77.0.3",
        };
        self.tried.push(Tried {
            attack: format!("{what}{src}"),
            target: h,
            sent: datagrams.len(),
            reason: reason.to_string(),
        });
    }
}

/// Lines containing both needles.
fn count_lines2(path: &std::path::Path, a: &str, b: &str) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(a) && l.contains(b))
        .count()
}

/// Waits until each relay in `hosts` logged `needle` about peer h3 once
/// more than `before` says.
fn wait_logged(lab: &Lab, hosts: &[usize], needle: &str, before: &[usize]) {
    for (i, &h) in hosts.iter().enumerate() {
        let log = lab.relay_log(h);
        lab::wait_for(
            &format!("h{h}'s relay to log \"{needle}\" for h3"),
            Duration::from_secs(10),
            || (count_lines2(&log, needle, "peer=h3") > before[i]).then_some(()),
        );
    }
}

fn logged(lab: &Lab, hosts: &[usize], needle: &str) -> Vec<usize> {
    hosts
        .iter()
        .map(|&h| count_lines2(&lab.relay_log(h), needle, "peer=h3"))
        .collect()
}

// ------------------------------------------------------- compromised peer

/// A process on h3 that holds the cluster key and speaks the protocol
/// itself, in place of h3's relay: it can seal anything as h3.
struct Evil {
    sock: UdpSocket,
    keys: KeySchedule,
    epoch: u64,
    counter: u64,
    /// The last header each peer sent us: its epoch and counter, in clear.
    last_from: HashMap<usize, Header>,
}

impl Evil {
    fn new(lab: &Lab, key: &ClusterKey) -> Evil {
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        let sock = bind_in(&lab.ns(SENDER), underlay(SENDER));
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("SO_RCVTIMEO");
        Evil {
            sock,
            keys: KeySchedule::new(key),
            epoch,
            counter: 0,
            last_from: HashMap::new(),
        }
    }

    /// Seals as h3, in this process's own run.
    fn seal(&mut self, kind: Kind, payload: &[u8]) -> Vec<u8> {
        self.counter += 1;
        self.seal_as(SENDER, self.epoch, self.counter - 1, kind, payload)
    }

    /// A hello to `to`: a question (its challenge is ours to make up, as
    /// nobody checks it but us), or an answer echoing `echo`'s header and
    /// challenge.
    fn hello(&mut self, to: usize, echo: Option<(&Header, u64)>, want_reply: bool) {
        let hello = Hello {
            echo_epoch: echo.map_or(0, |(h, _)| h.epoch),
            echo_counter: echo.map_or(0, |(h, _)| h.counter),
            echo_challenge: echo.map_or(0, |(_, c)| c),
            challenge: if want_reply { self.counter ^ 0x5eed } else { 0 },
            flags: if want_reply { HELLO_WANT_REPLY } else { 0 },
        };
        let mut payload = [0u8; HELLO_LEN];
        hello.encode(&mut payload);
        let d = self.seal(Kind::Hello, &payload);
        self.sock.send_to(&d, underlay(to)).expect("send a hello");
    }

    /// Runs the handshake with `peers` until each relay has confirmed this
    /// new "run" of h3, answering every question they ask.
    fn handshake(&mut self, lab: &Lab, peers: &[usize]) {
        let before = logged(lab, peers, "new run confirmed");
        for &p in peers {
            self.hello(p, None, true);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 2048];
        loop {
            let done = logged(lab, peers, "new run confirmed");
            if done.iter().zip(&before).all(|(d, b)| d > b) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the peers did not confirm the key holder's epoch"
            );
            let Ok((n, _)) = self.sock.recv_from(&mut buf) else {
                continue;
            };
            let d = &buf[..n];
            let Ok(h) = Header::parse(d) else { continue };
            self.last_from.insert((h.sender & 0xff) as usize, h);
            if h.kind != Kind::Hello {
                continue;
            }
            let Some(plain) = open(&self.keys, d) else {
                continue;
            };
            let Ok(hello) = Hello::parse(&plain) else {
                continue;
            };
            let from = (h.sender & 0xff) as usize;
            if hello.wants_reply() && peers.contains(&from) {
                self.hello(from, Some((&h, hello.challenge)), false);
            }
        }
    }

    /// Seals as node `n` in `epoch`: the cluster key allows it.
    fn seal_as(&self, n: usize, epoch: u64, counter: u64, kind: Kind, payload: &[u8]) -> Vec<u8> {
        let h = header(kind, overlay(n), epoch, counter, now_ms());
        seal(&self.keys, h, payload)
    }

    fn send_inner(&mut self, to: usize, packets: &[Vec<u8>]) {
        for (i, p) in packets.iter().enumerate() {
            let d = self.seal(Kind::Data, p);
            self.sock.send_to(&d, underlay(to)).expect("send data");
            if i % 50 == 49 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
}

/// One attack: what it is, where it comes from, its datagrams, and the
/// drop reason each of them must be counted under.
type Attack = (&'static str, From, Vec<Vec<u8>>, &'static str);

/// What a stranger throws at relay `h`: junk, forgeries, and copies of the
/// datagrams `a` (which `h` has received) and `b` in every altered form.
/// `top` is the highest counter h3 has used.
fn outsider_attacks(
    rng: &mut Rng,
    h: usize,
    a: &[Vec<u8>],
    b: &[Vec<u8>],
    top: u64,
) -> Vec<Attack> {
    let h3 = header_of(&a[0]);
    let each =
        |f: &mut dyn FnMut(&[u8]) -> Vec<u8>| -> Vec<Vec<u8>> { a.iter().map(|d| f(d)).collect() };
    let short = (0..JUNK)
        .map(|_| {
            let n = rng.range(1, HEADER_LEN);
            rng.bytes(n)
        })
        .collect();
    let bad_version = (0..JUNK)
        .map(|_| {
            let n = rng.range(HEADER_LEN, 1400);
            let mut d = rng.bytes(n);
            d[0] = 2 + rng.below(254) as u8;
            d
        })
        .collect();
    let strangers = (0..JUNK)
        .map(|i| {
            let sender = if i % 5 == 0 {
                u32::from(overlay(h)) // the receiver's own identity
            } else {
                u32::from(Ipv4Addr::new(
                    10,
                    250,
                    1 + rng.below(200) as u8,
                    rng.below(256) as u8,
                ))
            };
            let hdr = Header {
                kind: Kind::Data,
                flags: 0,
                sender,
                epoch: h3.epoch,
                counter: rng.next() >> 8,
                timestamp_ms: now_ms(),
            };
            let mut d = vec![0u8; HEADER_LEN];
            hdr.encode(&mut d);
            d.extend(rng.bytes(60));
            d
        })
        .collect();
    let mut forged = |base: u64| -> Vec<Vec<u8>> {
        (0..JUNK)
            .map(|i| {
                let hdr = Header {
                    counter: base + i as u64,
                    timestamp_ms: now_ms(),
                    ..h3
                };
                let mut d = vec![0u8; HEADER_LEN];
                hdr.encode(&mut d);
                let n = rng.range(TAG_LEN, 200);
                d.extend(rng.bytes(n));
                d
            })
            .collect()
    };
    let forged_here = forged(top + 1000);
    let forged_spoofed = forged(top + 2000);
    let forgery = "forged as h3: current epoch, fresh counter, random body and tag";
    vec![
        (
            "random bytes shorter than a header",
            From::Outsider,
            short,
            "malformed",
        ),
        (
            "random bytes, any length",
            From::Outsider,
            bad_version,
            "unknown_version",
        ),
        (
            "well-formed header, unknown sender",
            From::Outsider,
            strangers,
            "unknown_sender",
        ),
        (forgery, From::Outsider, forged_here, "bad_auth"),
        (forgery, From::Spoofed, forged_spoofed, "bad_auth"),
        (
            "captured, epoch moved an hour ahead",
            From::Outsider,
            each(&mut |d| with_header(d, |x| x.epoch += 3_600 * 1_000_000_000)),
            "stale_epoch",
        ),
        (
            "captured, epoch moved back",
            From::Outsider,
            each(&mut |d| with_header(d, |x| x.epoch -= 1)),
            "stale_epoch",
        ),
        ("replayed as captured", From::Outsider, a.to_vec(), "replay"),
        ("replayed as captured", From::Spoofed, a.to_vec(), "replay"),
        (
            "replayed twice each",
            From::Outsider,
            [b, b].concat(),
            "replay",
        ),
        (
            "captured, one bit flipped after the header",
            From::Outsider,
            each(&mut |d| flip_bit(d, rng.range(HEADER_LEN, d.len()), rng.below(8) as u32)),
            "replay",
        ),
        (
            "captured, truncated after the header",
            From::Outsider,
            each(&mut |d| d[..rng.range(HEADER_LEN, d.len())].to_vec()),
            "replay",
        ),
        (
            "captured, truncated into the header",
            From::Outsider,
            each(&mut |d| d[..rng.range(0, HEADER_LEN)].to_vec()),
            "malformed",
        ),
        (
            "captured, counter bit flipped",
            From::Outsider,
            each(&mut |d| with_header(d, |x| x.counter ^= 1 << 40)),
            "bad_auth",
        ),
        (
            "captured, timestamp bit flipped",
            From::Outsider,
            each(&mut |d| with_header(d, |x| x.timestamp_ms ^= 1 << 45)),
            "clock_skew",
        ),
        (
            "captured, version bit flipped",
            From::Outsider,
            each(&mut |d| flip_bit(d, 0, rng.below(8) as u32)),
            "unknown_version",
        ),
        (
            "captured, sender bit flipped",
            From::Outsider,
            each(&mut |d| flip_bit(d, 7, 6)),
            "unknown_sender",
        ),
        (
            "captured, reserved bit flipped",
            From::Outsider,
            each(&mut |d| flip_bit(d, 3, rng.below(8) as u32)),
            "malformed",
        ),
        (
            "captured, plaintext flag set",
            From::Outsider,
            each(&mut |d| flip_bit(d, 2, 0)),
            "mode_mismatch",
        ),
    ]
}

/// Altered copies of datagrams a relay has never received: only
/// authentication can refuse them.
fn undelivered_copies(rng: &mut Rng, b: &[Vec<u8>]) -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let mut each = |f: &mut dyn FnMut(&mut Rng, &[u8]) -> Vec<u8>| -> Vec<Vec<u8>> {
        b.iter().map(|d| f(rng, d)).collect()
    };
    vec![
        (
            "undelivered, one bit flipped in the body",
            each(&mut |r, d| {
                flip_bit(d, r.range(HEADER_LEN, d.len() - TAG_LEN), r.below(8) as u32)
            }),
        ),
        (
            "undelivered, one bit flipped in the tag",
            each(&mut |r, d| flip_bit(d, r.range(d.len() - TAG_LEN, d.len()), r.below(8) as u32)),
        ),
        (
            "undelivered, timestamp's low bit flipped",
            each(&mut |_, d| flip_bit(d, 31, 0)),
        ),
        (
            "undelivered, truncated after the header",
            each(&mut |r, d| d[..r.range(HEADER_LEN, d.len())].to_vec()),
        ),
    ]
}

// ------------------------------------------------------------ the test

#[test]
fn nothing_forged_replayed_or_disallowed_reaches_the_host() {
    if !lab::root_or_skip("nothing_forged_replayed_or_disallowed_reaches_the_host") {
        return;
    }
    lab::require_programs(lab::keepalived::PROGRAMS);
    lab::require_programs(capture::PROGRAMS);
    let seed = now_ms() | 1;
    report(&format!("hostile: random seed {seed}"));
    let mut rng = Rng(seed);

    let mut lab = Lab::new(HOSTS);
    lab.add_outsider("10.77.0.3");
    // A long clock-skew allowance, so every replay below is stopped by the
    // replay window or the epoch handshake, never by the timestamp check
    // that would otherwise also catch replays older than 10 s.
    lab.start_relays(RelayOptions {
        max_clock_skew: Some(600.0),
        ..RelayOptions::default()
    });
    let key = mcast_relay::io::keyfile::load(&lab.path("key")).expect("the lab's key");
    let keys = KeySchedule::new(&key);

    let vrrp = Vrrp::v3(0.1);
    lab.start_keepalived(MASTER, vrrp, PRIORITY[0]);
    lab.start_keepalived(BACKUP, vrrp, PRIORITY[1]);
    vip::converge_on(
        &lab,
        vrrp.vip(),
        &[MASTER, BACKUP],
        MASTER,
        vrrp.master_down(PRIORITY[1]) + Duration::from_millis(500),
        Duration::from_secs(30),
    );
    let watch = Watch::start(&lab, vrrp.vip());

    // Everything each host's failover side sends into mcast0, then
    // everything the relays write into it.
    let outs: Vec<Capture> = lab
        .host_ids()
        .map(|h| lab.capture(h, "mcast0", "out", "", &format!("out{h}")))
        .collect();
    let ins: Vec<Capture> = lab
        .host_ids()
        .map(|h| lab.capture(h, "mcast0", "in", "", &format!("in{h}")))
        .collect();
    let mut wire = Wire {
        cap: lab.capture(
            SENDER,
            "eth0",
            "out",
            "udp and dst host 10.77.0.2 and dst port 7112",
            "wire3",
        ),
        seen: 0,
    };
    let mut atk = Attacker::new(&lab);

    // Batch 1: delivered everywhere. Batch 2: h4 drops it at its firewall,
    // so h4's relay has never seen those datagrams.
    send_markers(&lab, 1);
    let a = wire.take_batch(&keys, 1);
    lab.drop_relay_traffic(SPARE, SENDER);
    send_markers(&lab, 2);
    let b = wire.take_batch(&keys, 2);
    std::thread::sleep(Duration::from_millis(200));
    lab.allow_relay_traffic(SPARE);

    let top = b.iter().map(|d| header_of(d).counter).max().unwrap_or(0);

    // --- a stranger, against the master and a backup -------------------
    for h in [MASTER, BACKUP] {
        for (what, from, datagrams, reason) in outsider_attacks(&mut rng, h, &a, &b, top) {
            atk.attack(&lab, h, from, what, &datagrams, reason);
        }
    }

    // --- copies of datagrams h4 never received -------------------------
    for (what, datagrams) in undelivered_copies(&mut rng, &b) {
        atk.attack(&lab, SPARE, From::Outsider, what, &datagrams, "bad_auth");
    }

    // --- replays after the receiving relay restarts ---------------------
    send_markers(&lab, 3);
    let c = wire.take_batch(&keys, 3);
    let before = logged(&lab, &[SPARE], "peer confirmed");
    lab.stop_relay(SPARE);
    lab.start_relay(SPARE);
    wait_logged(&lab, &[SPARE], "peer confirmed", &before);
    atk.attack(
        &lab,
        SPARE,
        From::Outsider,
        "replayed after the receiving relay restarted",
        &c,
        "replay",
    );
    // Batch 2 never reached h4 at all, before or after its restart.
    atk.attack(
        &lab,
        SPARE,
        From::Outsider,
        "undelivered, replayed after the receiving relay restarted",
        &b,
        "replay",
    );

    // --- replays after the sending relay restarts -----------------------
    send_markers(&lab, 4);
    let d4 = wire.take_batch(&keys, 4);
    let receivers = [MASTER, BACKUP, SPARE];
    let before = logged(&lab, &receivers, "new run confirmed");
    lab.stop_relay(SENDER);
    lab.start_relay(SENDER);
    wait_logged(&lab, &receivers, "new run confirmed", &before);
    let old: Vec<Vec<u8>> = a.iter().chain(&b).chain(&c).chain(&d4).cloned().collect();
    for h in receivers {
        atk.attack(
            &lab,
            h,
            From::Outsider,
            "replayed after the sending relay restarted",
            &old,
            "stale_epoch",
        );
    }
    // The restarted sender's own traffic still flows: the positive control.
    send_markers(&lab, 5);
    let _e = wire.take_batch(&keys, 5);

    // --- a cluster member holding the key --------------------------------
    lab.stop_relay(SENDER);
    let mut evil = Evil::new(&lab, &key);
    evil.handshake(&lab, &receivers);
    let me = overlay(SENDER);
    let group = Ipv4Addr::new(224, 0, 0, 18);
    let mut key_holder = |lab: &Lab, h: usize, what: &str, packets: Vec<Vec<u8>>, reason: &str| {
        let before = net_drops(lab, h);
        evil.send_inner(h, &packets);
        expect(lab, h, &before, &[(reason, packets.len())], what);
        atk.tried.push(Tried {
            attack: format!("key holder: {what}"),
            target: h,
            sent: packets.len(),
            reason: reason.to_string(),
        });
    };
    let advert = takeover_advert();
    for h in [MASTER, BACKUP] {
        let other = if h == MASTER { BACKUP } else { MASTER };
        key_holder(
            &lab,
            h,
            "priority-255 advert from another node's overlay address",
            vec![ipv4(overlay(other), group, 112, 255, &advert); N],
            "wrong_inner_source",
        );
        key_holder(
            &lab,
            h,
            "priority-255 advert from the receiver's own overlay address",
            vec![ipv4(overlay(h), group, 112, 255, &advert); N],
            "wrong_inner_source",
        );
        key_holder(
            &lab,
            h,
            "TCP SYN to port 22 of the receiver",
            vec![ipv4(me, overlay(h), 6, 64, &tcp_syn(22)); N],
            "disallowed",
        );
        key_holder(
            &lab,
            h,
            "UDP to port 694 of the receiver",
            vec![ipv4(me, overlay(h), 17, 64, &udp(694, 694, b"x")); N],
            "disallowed",
        );
        key_holder(
            &lab,
            h,
            "ICMP echo to the receiver",
            vec![ipv4(me, overlay(h), 1, 64, &icmp_echo()); N],
            "disallowed",
        );
        key_holder(
            &lab,
            h,
            "VRRP unicast to another node's overlay address",
            vec![ipv4(me, overlay(other), 112, 255, &advert); N],
            "disallowed",
        );
        key_holder(
            &lab,
            h,
            "VRRP to a group that is not allowed (224.0.0.19)",
            vec![ipv4(me, Ipv4Addr::new(224, 0, 0, 19), 112, 255, &advert); N],
            "disallowed",
        );
        key_holder(
            &lab,
            h,
            "random bytes as the inner packet",
            (0..N)
                .map(|_| {
                    let n = rng.range(1, 300);
                    let mut p = rng.bytes(n);
                    // IP version 0 to 3: not IP whatever follows.
                    p[0] &= 0x3f;
                    p
                })
                .collect(),
            "bad_inner",
        );
    }
    // Posing as the master towards the backup: data from a new "run" of
    // h1, then answers to h2's question guessing its counter (h2's
    // datagrams to h3 show roughly where it is) and its challenge. The
    // question itself went to h1's endpoint, which h3 cannot read.
    {
        let seen = *evil
            .last_from
            .get(&BACKUP)
            .expect("h2 spoke to the key holder during the handshake");
        let fake = seen.epoch + 1_000_000;
        let unconfirmed = |lab: &Lab| {
            lab.relay_counters(BACKUP)
                .get("unconfirmed_epoch")
                .copied()
                .unwrap_or(0)
        };
        let before = net_drops(&lab, BACKUP);
        let before_unconfirmed = unconfirmed(&lab);
        let steal = ipv4(overlay(MASTER), group, 112, 255, &advert);
        // The real h1 would answer h2's question within a millisecond and
        // use it up; silence it, as if its relay were down, so that the
        // guesses are the only answers h2 gets.
        lab.drop_relay_traffic(MASTER, BACKUP);
        let first = evil.seal_as(MASTER, fake, 0, Kind::Data, &steal);
        evil.sock.send_to(&first, underlay(BACKUP)).expect("send");
        std::thread::sleep(Duration::from_millis(50));
        let guesses: Vec<Vec<u8>> = (0..400u64)
            .map(|g| {
                let answer = Hello {
                    echo_epoch: seen.epoch,
                    echo_counter: seen.counter.saturating_sub(100) + g,
                    echo_challenge: rng.next(),
                    challenge: 0,
                    flags: 0,
                };
                let mut payload = [0u8; HELLO_LEN];
                answer.encode(&mut payload);
                evil.seal_as(MASTER, fake, 1 + g, Kind::Hello, &payload)
            })
            .collect();
        blast(&evil.sock, BACKUP, &guesses);
        std::thread::sleep(Duration::from_millis(100));
        let data: Vec<Vec<u8>> = (0..N as u64)
            .map(|k| evil.seal_as(MASTER, fake, 1000 + k, Kind::Data, &steal))
            .collect();
        blast(&evil.sock, BACKUP, &data);
        expect(&lab, BACKUP, &before, &[], "posing as h1");
        lab.allow_relay_traffic(MASTER);
        let refused = unconfirmed(&lab) - before_unconfirmed;
        assert!(
            refused > N as u64,
            "posing as h1: {refused} datagrams held back as unconfirmed, expected all {}",
            N + 1
        );
        atk.tried.push(Tried {
            attack: format!(
                "key holder posing as h1: 1 + {N} priority-255 adverts from 10.250.0.1, {} guessed answers",
                guesses.len()
            ),
            target: BACKUP,
            sent: N + 1 + guesses.len(),
            reason: "unconfirmed_epoch (adverts); answers confirm nothing".to_string(),
        });
    }

    // An allowed packet kind, as fast as the key holder can: the injection
    // rate limit caps what reaches the host.
    let flood: Vec<Vec<u8>> = (0..8000u16)
        .map(|i| ipv4(me, group, 112, 255, &marker(200, i)))
        .collect();
    let before = net_drops(&lab, SPARE);
    let injected_before = lab.relay_counters(SPARE)["injected"];
    let started = Instant::now();
    evil.send_inner(SPARE, &flood);
    let flood_secs = started.elapsed().as_secs_f64();
    let g = settled_drops(&lab, SPARE, &before);
    // Includes h1's adverts (10 a second) that arrived meanwhile.
    let injected = lab.relay_counters(SPARE)["injected"] - injected_before;
    let limited = g.get("rate_limited").copied().unwrap_or(0);
    assert_eq!(
        g.keys().filter(|k| *k != "rate_limited").count(),
        0,
        "the flood of allowed packets was dropped for other reasons: {g:?}"
    );
    drop(evil);

    // --- what was written into each host -------------------------------
    std::thread::sleep(Duration::from_millis(300));
    let inbound: Vec<Vec<Vec<u8>>> = ins.into_iter().map(Capture::stop).collect();
    // The senders' captures run on a while, so everything written into a
    // host before its capture stopped was certainly captured where it was sent.
    std::thread::sleep(Duration::from_secs(1));
    let outbound: Vec<Vec<Vec<u8>>> = outs.into_iter().map(Capture::stop).collect();
    let flood_set = capture::multiset(&flood);
    let mut flood_injected = 0usize;
    for h in lab.host_ids() {
        let mut allowed: HashMap<Vec<u8>, usize> = HashMap::new();
        for g in lab.host_ids().filter(|g| *g != h) {
            for (p, n) in capture::multiset(&outbound[g - 1]) {
                *allowed.entry(p).or_insert(0) += n;
            }
        }
        for (p, n) in capture::multiset(&inbound[h - 1]) {
            let legit = allowed.get(&p).copied().unwrap_or(0);
            let from_key_holder = if h == SPARE {
                flood_set.get(&p).copied().unwrap_or(0)
            } else {
                0
            };
            if from_key_holder > 0 {
                flood_injected += n;
            }
            assert!(
                n <= legit + from_key_holder,
                "h{h}'s relay wrote a packet {n} times that peers sent {legit} times: {p:02x?}"
            );
        }
        // Positive control: every marker of the sender reached this host
        // (batch 2 not h4, which dropped it at its firewall).
        if h != SENDER {
            let got = capture::multiset(&inbound[h - 1]);
            for batch in [1u8, 2, 3, 4, 5] {
                if batch == 2 && h == SPARE {
                    continue;
                }
                for i in 0..N as u16 {
                    let seen = got
                        .keys()
                        .filter(|k| k.get(20..) == Some(marker(batch, i).as_slice()))
                        .map(|k| got[k])
                        .sum::<usize>();
                    assert_eq!(seen, 1, "marker {batch}/{i} written into h{h} {seen} times");
                }
            }
        }
    }
    // The default limit, 5000 a second with a burst of a second's worth,
    // plus the master's adverts over the same time.
    let cap = (5000.0 + 20.0) * (flood_secs + 1.0) + 20.0;
    assert!(
        flood_injected > 0,
        "none of the key holder's allowed packets arrived"
    );
    assert!(
        (injected as f64) <= cap && flood_injected as u64 <= injected,
        "{injected} packets injected ({flood_injected} captured) in {flood_secs:.2} s: above the rate limit"
    );
    assert!(
        limited > 0 && injected + limited <= flood.len() as u64 + 100,
        "rate limit: {injected} injected, {limited} dropped of {}",
        flood.len()
    );

    // --- and the VIP never moved ----------------------------------------
    assert!(
        watch.next_added(&[], Duration::ZERO).is_none(),
        "the VIP was added somewhere during the attacks"
    );
    assert_eq!(vip::holders(&lab, vrrp.vip()), vec![MASTER]);

    let total: usize = atk.tried.iter().map(|t| t.sent).sum();
    report(&format!(
        "hostile: {} attacks, {total} datagrams, 0 written into any mcast0; VIP stayed on h{MASTER}",
        atk.tried.len()
    ));
    for t in &atk.tried {
        report(&format!(
            "hostile:   h{} {:>4} x {:<70} -> {} (injected 0)",
            t.target, t.sent, t.attack, t.reason
        ));
    }
    report(&format!(
        "hostile:   h{SPARE} {} x key holder: allowed VRRP flood in {flood_secs:.2} s -> {injected} injected (relay's count, {flood_injected} seen by tcpdump), {limited} rate_limited",
        flood.len()
    ));
}

/// Random datagrams at the relay ports of the master and a backup for
/// 30 s, with keepalived at advert_int 0.1 (a backup takes over after
/// 0.35 s of silence): no failover may happen. The senders aim at 100,000
/// a second each; what they reach on this machine is reported.
#[test]
fn a_flood_of_junk_never_moves_the_vip() {
    if !lab::root_or_skip("a_flood_of_junk_never_moves_the_vip") {
        return;
    }
    lab::require_programs(lab::keepalived::PROGRAMS);
    let o = lab::flood::junk_flood_against_keepalived(0.1, lab::flood::Junk::Random, 100_000, 30);
    for line in lab::flood::describe(&o) {
        report(&format!("flood: {line}"));
    }
    assert!(
        o.vip_added.is_none(),
        "the VIP moved during the flood: {:?}",
        o.vip_added
    );
    assert_eq!(o.holders_after, vec![MASTER], "the master changed");
    let total: f64 = o
        .hosts
        .iter()
        .filter_map(|f| f.sent)
        .map(|s| s.rate())
        .sum();
    // The flood must have been real for the test to mean anything.
    assert!(
        total >= 50_000.0,
        "the flood reached only {total:.0} datagrams/s"
    );
    for f in &o.hosts {
        let Some(s) = f.sent else { continue };
        assert!(
            f.counted_total() + f.kernel_dropped >= s.datagrams * 9 / 10,
            "h{}: {} datagrams sent, only {} counted by the relay and {} dropped by the kernel",
            f.host,
            s.datagrams,
            f.counted_total(),
            f.kernel_dropped
        );
    }
}
