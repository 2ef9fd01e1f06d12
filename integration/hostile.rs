//! The relay on a hostile network: stock keepalived (VRRPv3, advert_int 0.1)
//! with a stable master, while a stranger on the cloud network, and then a
//! cluster member holding its own node key, throw everything at the relays.
//!
//! Each attack's datagrams must be dropped under the right reason (exact
//! counter deltas), tcpdump on every `mcast0` must show that nothing but
//! the peers' own packets was ever written into a host, and the VIP must
//! never move. The member's attacks are the ones of issue 15: posing as
//! another member through its own session, another member's session index
//! with counters above it (up to the top of the counter space), a
//! handshake as another member made with its own key, replayed handshakes
//! and a flood of genuine ones. Needs root; skips visibly without it.

use crate::lab;

use std::collections::HashMap;
use std::io::Write;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use lab::capture::{self, Capture};
use lab::keepalived::Vrrp;
use lab::vip::{self, Watch};
use lab::{Lab, RelayOptions, in_netns};
use mcast_relay::core::{
    DropReason, Inbound, Link, NodeAddrs, Now, PeerId, PeerSpec, Relay, RelayParams, Security,
};
use mcast_relay::proto::crypto::MacKey;
use mcast_relay::proto::keys::{PrivateKey, PublicKey};
use mcast_relay::proto::wire::{
    HEADER_LEN, HandshakeIds, Header, INITIATION_LEN, Kind, MAC_LEN, Prefix, RESPONSE_LEN, TAG_LEN,
};
use mcast_relay::testing::cluster::{self as fixture, forge, header, index_and_counter, relabel};
use mcast_relay::testing::packets::{checksum, ipv4, udp, v4_fragment, v6_fragment};

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
/// Datagrams per attack of the key holder on another member.
const POSE: usize = 300;
/// Handshake initiations per attack that must get past the per-member
/// rate limit (10 a second, bursts of 10) to be judged on their merits.
const HS: usize = 8;
/// Genuine initiations in the handshake flood, per target.
const HS_FLOOD: usize = 300;
const PORT: u16 = 7112;

fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn overlay(h: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 250, 0, h as u8)
}

fn addrs(h: usize) -> NodeAddrs {
    NodeAddrs {
        v4: overlay(h),
        v6: Some(format!("fd00:250::{h}").parse().expect("an IPv6 address")),
    }
}

fn peer_of(h: usize) -> PeerId {
    PeerId::from(overlay(h))
}

fn underlay(h: usize) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, h as u8), PORT)
}

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
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

/// A VRRPv3 advert for the cluster's VRID 51 and its VIP, from `src` to
/// 224.0.0.18, with the checksum over the pseudo-header that keepalived
/// checks: priority 255 takes the VIP, priority 0 (a master resigning)
/// makes the backup take it at once. If one were injected, keepalived
/// would act on it.
fn advert(src: Ipv4Addr, priority: u8) -> Vec<u8> {
    let group = Ipv4Addr::new(224, 0, 0, 18);
    let mut a = vec![0x31, 51, priority, 1, 0x00, 0x0a, 0, 0, 10, 77, 0, 100];
    let mut pseudo = Vec::with_capacity(12 + a.len());
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&group.octets());
    pseudo.extend_from_slice(&[0, 112, 0, a.len() as u8]);
    pseudo.extend_from_slice(&a);
    let c = checksum(&pseudo);
    a[6..8].copy_from_slice(&c.to_be_bytes());
    ipv4(src, group, 112, 255, &a)
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
    let p = Prefix::parse(d).expect("a captured datagram has a valid prefix");
    Header::parse(p, d)
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

/// A handshake message of `len` bytes claiming to be from host `from`:
/// random Noise bytes, and a MAC that is right for `mac`'s receiver (public
/// keys are no secret) or random without one.
fn handshake_junk(rng: &mut Rng, kind: Kind, from: usize, mac: Option<&MacKey>) -> Vec<u8> {
    let len = if kind == Kind::Initiation {
        INITIATION_LEN
    } else {
        RESPONSE_LEN
    };
    let mut d = rng.bytes(len);
    Prefix {
        kind,
        flags: 0,
        sender: u32::from(overlay(from)),
    }
    .encode(&mut d);
    if let Some(mac) = mac {
        let at = len - MAC_LEN;
        let m = mac.sign(&d[..at]);
        d[at..].copy_from_slice(&m);
    }
    d
}

// ------------------------------------------------------------- the wire

/// A relay datagram seen on an underlay interface, with the hosts it went
/// between.
struct Seen {
    src: usize,
    dst: usize,
    bytes: Vec<u8>,
}

/// The relay datagrams among captured Ethernet frames.
fn relay_datagrams(frames: &[Vec<u8>]) -> Vec<Seen> {
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

fn kind_of(d: &[u8]) -> Option<Kind> {
    Prefix::parse(d).ok().map(|p| p.kind)
}

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

/// What h3 sends to each peer on the wire, as an eavesdropper captures it.
/// Every peer gets its own copy of each marker, sealed under its own
/// session with h3.
struct Wire {
    cap: Capture,
    seen: usize,
}

/// The length of a data datagram carrying a marker (IPv4 header, marker,
/// transport header and tag).
const MARKER_DATAGRAM: usize = HEADER_LEN + 20 + 12 + TAG_LEN;

impl Wire {
    /// The `N` data datagrams to each of `to` that carried marker batch
    /// `batch`, in order.
    fn take_batch(&mut self, batch: u8, to: &[usize]) -> HashMap<usize, Vec<Vec<u8>>> {
        let got = lab::wait_for(
            &format!("h3's datagrams of marker batch {batch}"),
            Duration::from_secs(10),
            || {
                let all = relay_datagrams(&self.cap.packets());
                let mut per: HashMap<usize, Vec<(usize, Vec<u8>)>> = HashMap::new();
                for (i, s) in all.into_iter().enumerate().skip(self.seen) {
                    if kind_of(&s.bytes) == Some(Kind::Data) && to.contains(&s.dst) {
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

// ------------------------------------------------------------ counters

/// The network drop counters of host `h`'s relay, every reason included
/// (`no_session` too: several attacks must land there).
fn net_drops(lab: &Lab, h: usize) -> HashMap<String, u64> {
    let all = lab.relay_counters(h);
    DropReason::ALL
        .iter()
        .filter(|r| r.from_network())
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

fn injected(lab: &Lab, h: usize) -> u64 {
    lab.relay_counters(h).get("injected").copied().unwrap_or(0)
}

/// The packets host `h`'s relay has written into its interface from peer
/// `from`, as its status tells.
fn packets_in(lab: &Lab, h: usize, from: usize) -> u64 {
    let st = lab.relay_status(h);
    let name = format!("h{from}");
    st["peers"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name.as_str()))
        .and_then(|p| p["packets_in"].as_u64())
        .unwrap_or_else(|| panic!("h{h}'s status has no packets_in for {name}: {st}"))
}

/// Lets every member's initiation budget at every relay fill up again
/// (10 a second, bursts of 10), so that the next handshake attack is
/// judged on its merits, not refused by the rate limit.
fn refill_handshake_budget() {
    std::thread::sleep(Duration::from_millis(1100));
}

// ------------------------------------------------------------ attackers

/// One line of the closing report.
struct Tried {
    attack: String,
    target: usize,
    sent: usize,
    reason: String,
}

#[derive(Clone, Copy)]
enum From {
    Outsider,
    /// The outsider, with h3's underlay address as source.
    Spoofed,
    /// The key holder on h3, from h3's own address and port.
    Member,
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

/// Runs attacks against relays and checks the counters move exactly.
struct Attacker {
    outsider: UdpSocket,
    spoofed: UdpSocket,
    /// The key holder's socket, once it has replaced h3's relay.
    member: Option<Arc<UdpSocket>>,
    tried: Vec<Tried>,
}

impl Attacker {
    fn new(lab: &Lab) -> Attacker {
        let ns = lab.outsider_ns();
        Attacker {
            outsider: bind_in(&ns, SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, 99), 0)),
            spoofed: bind_in(&ns, SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, 3), 0)),
            member: None,
            tried: Vec::new(),
        }
    }

    fn record(&mut self, h: usize, what: String, sent: usize, reason: &str) {
        self.tried.push(Tried {
            attack: what,
            target: h,
            sent,
            reason: reason.to_string(),
        });
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
        self.attack_split(lab, h, from, what, datagrams, &[(reason, datagrams.len())]);
    }

    /// Like [`Attacker::attack`], with the datagrams expected under
    /// several reasons.
    fn attack_split(
        &mut self,
        lab: &Lab,
        h: usize,
        from: From,
        what: &str,
        datagrams: &[Vec<u8>],
        expected: &[(&str, usize)],
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
        expect(lab, h, &before, expected, what);
        let src = match from {
            From::Outsider => "",
            From::Spoofed => ", spoofed source 10.77.0.3",
            From::Member => "key holder: ",
        };
        let reasons: Vec<String> = expected
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(r, n)| {
                if expected.len() > 1 {
                    format!("{r} ({n})")
                } else {
                    r.to_string()
                }
            })
            .collect();
        let attack = match from {
            From::Member => format!("{src}{what}"),
            _ => format!("{what}{src}"),
        };
        self.record(h, attack, datagrams.len(), &reasons.join(" + "));
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

/// The two clocks a core is told, read off this process.
#[derive(Clone, Copy)]
struct Clock(Instant);

impl Clock {
    fn now(&self) -> Now {
        Now::new(self.0.elapsed().as_millis() as u64, wall_ms())
    }
}

/// The cluster as a member knows it from the cluster file: everyone's
/// public key.
#[derive(Clone)]
struct Cluster {
    publics: HashMap<usize, PublicKey>,
}

impl Cluster {
    fn read(lab: &mut Lab) -> Cluster {
        let publics = lab
            .host_ids()
            .map(|h| {
                let text = lab.public_key(h);
                let key = PublicKey::parse(&text)
                    .unwrap_or_else(|e| panic!("h{h}'s public key {text:?}: {e}"));
                (h, key)
            })
            .collect();
        Cluster { publics }
    }

    /// A relay core that calls itself host `me`, holds `key` and knows
    /// `peers` with their real public keys and endpoints.
    fn relay_as(&self, me: usize, key: PrivateKey, peers: &[usize], run: u64) -> Relay {
        let mut r = Relay::new(RelayParams {
            local: addrs(me),
            link: Link::Ip,
            prefix_len: 24,
            peers: peers
                .iter()
                .map(|&p| PeerSpec {
                    name: format!("h{p}"),
                    addrs: addrs(p),
                    public_key: Some(self.publics[&p]),
                })
                .collect(),
            allow: fixture::allow(),
            security: Security::Authenticated(key),
            run,
            max_clock_skew_ms: 10_000,
            inject_rate_limit: 0,
            keepalive_ms: 1000,
            quorum: false,
        });
        for &p in peers {
            r.set_endpoint(peer_of(p), Some(SocketAddr::V4(underlay(p))));
        }
        r
    }

    fn mac_for(&self, h: usize) -> MacKey {
        MacKey::for_receiver(&self.publics[&h])
    }
}

/// What the key holder's receive thread shares with the attacks.
struct EvilState {
    relay: Relay,
    /// Handshake responses received, by the host that sent them.
    responses: HashMap<usize, usize>,
}

/// A process on h3 that holds h3's own node key and runs the protocol
/// itself in place of h3's relay: a real core, with real sessions with
/// every peer, that seals whatever it is told under them. A thread answers
/// the peers' handshakes and keepalives, so the sessions stay up.
struct Evil {
    sock: Arc<UdpSocket>,
    state: Arc<Mutex<EvilState>>,
    stop: Arc<AtomicBool>,
    pump: Option<JoinHandle<()>>,
    clock: Clock,
    key: PrivateKey,
    cluster: Cluster,
    /// The wall clock of the last initiation made by a fresh core: each
    /// must be newer than the one before to be more than stale.
    last_wall: i64,
}

fn run_id() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        | 1
}

impl Evil {
    fn start(lab: &Lab, cluster: &Cluster, peers: &[usize]) -> Evil {
        let key = mcast_relay::io::keyfile::load(&lab.key_path(SENDER))
            .unwrap_or_else(|e| panic!("h3's key file: {e}"));
        let relay = cluster.relay_as(SENDER, key.clone(), peers, run_id());
        let sock = Arc::new(bind_in(&lab.ns(SENDER), underlay(SENDER)));
        sock.set_read_timeout(Some(Duration::from_millis(5)))
            .expect("SO_RCVTIMEO");
        let state = Arc::new(Mutex::new(EvilState {
            relay,
            responses: HashMap::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let clock = Clock(Instant::now());
        let pump = {
            let (sock, state, stop) = (sock.clone(), state.clone(), stop.clone());
            std::thread::spawn(move || pump(&sock, &state, &stop, clock))
        };
        Evil {
            sock,
            state,
            stop,
            pump: Some(pump),
            clock,
            key,
            cluster: cluster.clone(),
            last_wall: 0,
        }
    }

    fn lock(&self) -> MutexGuard<'_, EvilState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn has_sessions(&self, peers: &[usize]) -> bool {
        let s = self.lock();
        peers.iter().all(|&p| s.relay.has_session(peer_of(p)))
    }

    /// Seals `payload` as `kind` under h3's own session with `to`, with
    /// none of the checks h3's relay would make.
    fn seal(&self, to: usize, kind: Kind, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; payload.len() + HEADER_LEN + TAG_LEN];
        let now = self.clock.now();
        let len = self
            .lock()
            .relay
            .seal_unchecked(peer_of(to), kind, payload, now.mono_ms, &mut out)
            .unwrap_or_else(|r| panic!("the key holder cannot seal for h{to}: {r}"));
        out.truncate(len);
        out
    }

    fn seal_all(&self, to: usize, packets: &[Vec<u8>]) -> Vec<Vec<u8>> {
        packets
            .iter()
            .map(|p| self.seal(to, Kind::Data, p))
            .collect()
    }

    /// Seals `packets` as data for `to` and sends them, holding the core
    /// all the while: no keepalive is sealed in between, whose newer
    /// counter would leave the rest behind the replay window. Returns how
    /// long the sending took.
    fn send_inner(&self, to: usize, packets: &[Vec<u8>]) -> Duration {
        let mut s = self.lock();
        let now = self.clock.now();
        let sealed: Vec<Vec<u8>> = packets
            .iter()
            .map(|p| {
                let mut out = vec![0u8; p.len() + HEADER_LEN + TAG_LEN];
                let len = s
                    .relay
                    .seal_unchecked(peer_of(to), Kind::Data, p, now.mono_ms, &mut out)
                    .unwrap_or_else(|r| panic!("the key holder cannot seal for h{to}: {r}"));
                out.truncate(len);
                out
            })
            .collect();
        let started = Instant::now();
        blast(&self.sock, to, &sealed);
        let took = started.elapsed();
        drop(s);
        took
    }

    fn responses(&self, from: usize) -> usize {
        self.lock().responses.get(&from).copied().unwrap_or(0)
    }

    /// A genuine handshake initiation to `to` from a fresh core that calls
    /// itself `me` and holds `key`, with a timestamp newer than the last
    /// one made here.
    fn initiation(&mut self, me: usize, key: &PrivateKey, to: usize) -> Vec<u8> {
        let wall = wall_ms().max(self.last_wall + 1);
        self.last_wall = wall;
        let mut r = self.cluster.relay_as(me, key.clone(), &[to], run_id());
        let mut out = [0u8; 512];
        let (len, peer) = r
            .poll_hello(Now::new(0, wall), &mut out)
            .expect("a fresh core starts a handshake");
        assert_eq!(peer, peer_of(to));
        assert_eq!(len, INITIATION_LEN);
        out[..len].to_vec()
    }
}

impl Drop for Evil {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.pump.take() {
            let _ = t.join();
        }
    }
}

/// The key holder's receive loop: every datagram into its core, every
/// answer and due handshake or keepalive out, to the peer's endpoint.
fn pump(sock: &UdpSocket, state: &Mutex<EvilState>, stop: &AtomicBool, clock: Clock) {
    let mut buf = [0u8; 2048];
    let mut out = [0u8; 2048];
    let send = |d: &[u8], to: Option<SocketAddr>| {
        if let Some(to) = to {
            let _ = sock.send_to(d, to);
        }
    };
    while !stop.load(Ordering::Relaxed) {
        let got = sock.recv_from(&mut buf).ok();
        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
        let now = clock.now();
        if let Some((n, from)) = got {
            if let Ok(p) = Prefix::parse(&buf[..n])
                && p.kind == Kind::Response
            {
                let host = (p.sender & 0xff) as usize;
                *s.responses.entry(host).or_default() += 1;
            }
            if let Inbound::Reply { len, peer } =
                s.relay.from_net(&mut buf[..n], from, now, &mut out)
            {
                send(&out[..len], s.relay.endpoint(peer));
            }
        }
        if s.relay.poll_timeout().is_some_and(|t| t <= now.mono_ms) {
            s.relay.handle_timeout(now);
        }
        while let Some((len, peer)) = s.relay.poll_hello(now, &mut out) {
            send(&out[..len], s.relay.endpoint(peer));
        }
        while s.relay.poll_event().is_some() {}
    }
}

// ------------------------------------------------------- the attack lists

/// One attack: what it is, where it comes from, its datagrams, and the
/// drop reason each of them must be counted under.
type Attack = (&'static str, From, Vec<Vec<u8>>, &'static str);

/// What a stranger throws at relay `h`: junk, forgeries, handshakes it
/// cannot sign, and copies of the datagrams h3 sent `h` (`a`, `b`) and
/// another member (`elsewhere`) in every altered form. `mac` is `h`'s
/// handshake MAC key, which anyone can compute from its public key.
fn outsider_attacks(
    rng: &mut Rng,
    h: usize,
    a: &[Vec<u8>],
    b: &[Vec<u8>],
    elsewhere: &[Vec<u8>],
    mac: &MacKey,
) -> Vec<Attack> {
    let (index, _) = index_and_counter(&a[0]);
    let top = b.iter().map(|d| index_and_counter(d).1).max().unwrap_or(0);
    let each =
        |f: &mut dyn FnMut(&[u8]) -> Vec<u8>| -> Vec<Vec<u8>> { a.iter().map(|d| f(d)).collect() };
    let short = (0..JUNK)
        .map(|_| {
            let n = rng.range(1, HEADER_LEN);
            let mut d = rng.bytes(n);
            // The right version, so the length is what refuses it.
            d[0] = 2;
            d
        })
        .collect();
    let bad_version = (0..JUNK)
        .map(|_| {
            let n = rng.range(HEADER_LEN, 1400);
            let mut d = rng.bytes(n);
            d[0] = 3 + rng.below(253) as u8;
            if rng.below(4) == 0 {
                d[0] = 1; // the retired version 1
            }
            d
        })
        .collect();
    let strangers = (0..JUNK)
        .map(|i| {
            let sender = if i % 5 == 0 {
                overlay(h) // the receiver's own identity
            } else {
                Ipv4Addr::new(10, 250, 1 + rng.below(200) as u8, rng.below(256) as u8)
            };
            let mut d = vec![0u8; HEADER_LEN];
            let mut hdr = header(Kind::Data, 0, rng.next() as u32, rng.next() >> 8);
            hdr.prefix.sender = u32::from(sender);
            hdr.encode(&mut d);
            d.extend(rng.bytes(60));
            d
        })
        .collect();
    let mut forged = |base: u64| -> Vec<Vec<u8>> {
        (0..JUNK)
            .map(|i| {
                let mut d = vec![0u8; HEADER_LEN];
                header(Kind::Data, SENDER as u8, index, base + i as u64).encode(&mut d);
                let n = rng.range(TAG_LEN, 200);
                d.extend(rng.bytes(n));
                d
            })
            .collect()
    };
    let forged_here = forged(top + 1000);
    let forged_spoofed = forged(top + 2000);
    let random_index = (0..JUNK)
        .map(|_| {
            let mut d = vec![0u8; HEADER_LEN];
            let kind = if rng.below(2) == 0 {
                Kind::Data
            } else {
                Kind::Keepalive
            };
            header(kind, SENDER as u8, rng.next() as u32, rng.next() >> 8).encode(&mut d);
            let n = rng.range(TAG_LEN, 200);
            d.extend(rng.bytes(n));
            d
        })
        .collect();
    let junk_initiations = (0..JUNK)
        .map(|_| handshake_junk(rng, Kind::Initiation, SENDER, None))
        .collect();
    let junk_responses = (0..JUNK)
        .map(|_| handshake_junk(rng, Kind::Response, SENDER, None))
        .collect();
    // Claiming h4, whose own handshakes with h1 and h2 are rare, so that
    // its budget is this attack's alone.
    let signed_junk = (0..HS)
        .map(|_| handshake_junk(rng, Kind::Initiation, SPARE, Some(mac)))
        .collect();
    let forgery = "forged as h3: its session index here, fresh counter, random body and tag";
    vec![
        (
            "random bytes shorter than a header, version 2",
            From::Outsider,
            short,
            "malformed",
        ),
        (
            "random bytes, any length, another version",
            From::Outsider,
            bad_version,
            "unknown_version",
        ),
        (
            "well-formed header, unknown sender (or the receiver's own)",
            From::Outsider,
            strangers,
            "unknown_sender",
        ),
        (forgery, From::Outsider, forged_here, "bad_auth"),
        (forgery, From::Spoofed, forged_spoofed, "bad_auth"),
        (
            "data and keepalives as h3 with random session indices",
            From::Outsider,
            random_index,
            "no_session",
        ),
        (
            "captured, session index bit flipped",
            From::Outsider,
            each(&mut |d| with_header(d, |x| x.receiver ^= 1 << 17)),
            "no_session",
        ),
        (
            "captured on its way to another member (its session index there)",
            From::Outsider,
            elsewhere.to_vec(),
            "no_session",
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
            "captured, kind bit flipped",
            From::Outsider,
            each(&mut |d| flip_bit(d, 1, 1 + rng.below(2) as u32)),
            "malformed",
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
        (
            "initiations as h3, random bytes (no MAC for this receiver)",
            From::Outsider,
            junk_initiations,
            "bad_mac",
        ),
        (
            "responses as h3, random bytes (no MAC for this receiver)",
            From::Outsider,
            junk_responses,
            "bad_mac",
        ),
        (
            "initiations as h4 with the right MAC, random Noise bytes",
            From::Outsider,
            signed_junk,
            "bad_auth",
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
            "undelivered, frame flag set (the header is authenticated)",
            each(&mut |_, d| flip_bit(d, 2, 1)),
        ),
        (
            "undelivered, truncated after the header",
            each(&mut |r, d| d[..r.range(HEADER_LEN, d.len())].to_vec()),
        ),
    ]
}

/// The handshake messages captured between two relays: initiations each
/// side answered, and the responses.
struct Handshakes {
    /// (from, to, bytes) of every initiation.
    initiations: Vec<(usize, usize, Vec<u8>)>,
    /// Those answered by their receiver.
    answered: Vec<(usize, usize, Vec<u8>)>,
    responses: Vec<(usize, usize, Vec<u8>)>,
}

fn handshakes(seen: &[Seen]) -> Handshakes {
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
            let asked = HandshakeIds::parse(&i.bytes).sender_index;
            resps.iter().any(|r| {
                r.src == i.dst
                    && r.dst == i.src
                    && HandshakeIds::parse(&r.bytes).receiver_index == asked
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

/// h3's (and every node's) link-local address on the overlay, as the
/// relay derives it from the overlay IPv4 address: `fe80::6d63:7270:` and
/// the IPv4 address.
fn link_local(h: usize) -> Ipv6Addr {
    Ipv6Addr::from(
        (0xfe80u128 << 112) | (0x6d63_7270u128 << 32) | u128::from(u32::from(overlay(h))),
    )
}

/// The first fragment of a UDP datagram from `sport` to `dport` (64 bytes
/// of data in all, 24 of them in this fragment), `udp_bytes` of its UDP
/// header included (all 8, or fewer to cut the header short).
fn first_fragment_v6(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    sport: u16,
    dport: u16,
    udp_bytes: usize,
) -> Vec<u8> {
    let mut u = udp(sport, dport, &[0x42; 64]);
    u.truncate(if udp_bytes < 8 { udp_bytes } else { 8 + 24 });
    v6_fragment(src, dst, 17, 0, true, &u)
}

/// The IPv6 first-fragment attack through each preset with port rules;
/// returns the packets it had written into h2 on purpose (the positive
/// controls), which the capture check then allows.
fn fragments_past_the_port_rules(
    lab: &mut Lab,
    evil: &Evil,
    atk: &mut Attacker,
) -> HashMap<Vec<u8>, usize> {
    let h = BACKUP;
    let v6_of = |n: usize| addrs(n).v6.expect("an overlay IPv6 address");
    let all_nodes: Ipv6Addr = "ff02::1".parse().expect("an IPv6 address");
    let targets = [
        ("its overlay IPv6", v6_of(SENDER), v6_of(h)),
        ("its link-local", link_local(SENDER), link_local(h)),
        ("ff02::1", link_local(SENDER), all_nodes),
    ];
    let mut written = Vec::new();
    for (preset, port) in [("heartbeat", 694u16), ("corosync", 5405), ("spread", 4803)] {
        lab.configure_relays(RelayOptions {
            presets: vec!["vrrp", preset],
            max_clock_skew: Some(600.0),
            ..RelayOptions::default()
        });
        let line = lab.reload_relay(h);
        assert!(
            line.contains("kept their state") && line.contains(preset),
            "h{h} did not take the {preset} preset: {line}"
        );
        let mut packets = Vec::new();
        for (_, src, dst) in targets {
            for dport in [53, 161, 111] {
                packets.push(first_fragment_v6(src, dst, port, dport, 8));
            }
        }
        let what = format!(
            "{preset} preset: IPv6 first fragments of UDP to ports 53, 161, 111 of h2's overlay IPv6, link-local and ff02::1"
        );
        let sealed = evil.seal_all(h, &packets);
        atk.attack(lab, h, From::Member, &what, &sealed, "disallowed");
        let v4 = v4_fragment(
            overlay(SENDER),
            overlay(h),
            17,
            0,
            true,
            &udp(port, 53, &[0x42; 24]),
        );
        let what = format!("{preset} preset: IPv4 first fragment of UDP to port 53 of h2");
        let sealed = evil.seal_all(h, &[v4]);
        atk.attack(lab, h, From::Member, &what, &sealed, "disallowed");
        let cut: Vec<Vec<u8>> = targets
            .iter()
            .map(|(_, src, dst)| first_fragment_v6(*src, *dst, port, 53, 4))
            .collect();
        let what = format!("{preset} preset: IPv6 first fragments cut inside the UDP header");
        let sealed = evil.seal_all(h, &cut);
        atk.attack(lab, h, From::Member, &what, &sealed, "bad_inner");
        // The positive control: the preset's own port gets through, so
        // the refusals above are the port rule's.
        let control = first_fragment_v6(link_local(SENDER), all_nodes, port, port, 8);
        let before = packets_in(lab, h, SENDER);
        let sealed = evil.seal_all(h, std::slice::from_ref(&control));
        blast(&evil.sock, h, &sealed);
        lab::wait_for(
            &format!("h{h} to inject a first fragment to the {preset} port"),
            Duration::from_secs(5),
            || (packets_in(lab, h, SENDER) == before + 1).then_some(()),
        );
        written.push(control);
    }
    lab.configure_relays(RelayOptions {
        max_clock_skew: Some(600.0),
        ..RelayOptions::default()
    });
    let line = lab.reload_relay(h);
    assert!(
        line.contains("kept their state"),
        "h{h} did not reload: {line}"
    );
    capture::multiset(&written)
}

// ------------------------------------------------------------ the test

#[test]
fn nothing_forged_replayed_or_disallowed_reaches_the_host() {
    if !lab::root_or_skip("nothing_forged_replayed_or_disallowed_reaches_the_host") {
        return;
    }
    lab::require_programs(lab::keepalived::PROGRAMS);
    lab::require_programs(capture::PROGRAMS);
    let started = Instant::now();
    let seed = wall_ms() as u64 | 1;
    report(&format!("hostile: random seed {seed}"));
    let mut rng = Rng(seed);

    let mut lab = Lab::new(HOSTS);
    lab.add_outsider("10.77.0.3");
    let cluster = Cluster::read(&mut lab);
    // The underlay between the master and the backup from before their
    // relays start, so the first handshakes are in it; and what h3 sends.
    let h1h2 = lab.capture(
        BACKUP,
        "eth0",
        "inout",
        "udp and port 7112 and host 10.77.0.1",
        "h1h2",
    );
    let mut wire = Wire {
        cap: lab.capture(SENDER, "eth0", "out", "udp and dst port 7112", "wire3"),
        seen: 0,
    };
    // A long clock-skew allowance, so every replay below is stopped by a
    // session, a replay window or a handshake timestamp, never by the
    // clock check a freshly started relay makes of a first handshake.
    lab.start_relays(RelayOptions {
        max_clock_skew: Some(600.0),
        ..RelayOptions::default()
    });
    lab.wait_relays_confirmed(Duration::from_secs(10));

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
    let mut atk = Attacker::new(&lab);
    let receivers = [MASTER, BACKUP, SPARE];

    // Batch 1: delivered everywhere. Batch 2: h4 drops it at its firewall,
    // so h4's relay has never seen those datagrams.
    send_markers(&lab, 1);
    let a = wire.take_batch(1, &receivers);
    lab.drop_relay_traffic(SPARE, SENDER);
    send_markers(&lab, 2);
    let b = wire.take_batch(2, &receivers);
    std::thread::sleep(Duration::from_millis(200));
    lab.allow_relay_traffic(SPARE);

    // --- a stranger, against the master and a backup -------------------
    for h in [MASTER, BACKUP] {
        let other = if h == MASTER { BACKUP } else { MASTER };
        let mac = cluster.mac_for(h);
        for (what, from, datagrams, reason) in
            outsider_attacks(&mut rng, h, &a[&h], &b[&h], &a[&other], &mac)
        {
            atk.attack(&lab, h, from, what, &datagrams, reason);
        }
    }

    // --- copies of datagrams h4 never received -------------------------
    for (what, datagrams) in undelivered_copies(&mut rng, &b[&SPARE]) {
        atk.attack(&lab, SPARE, From::Outsider, what, &datagrams, "bad_auth");
    }
    // A genuine initiation, but signed for another receiver.
    let hs = handshakes(&relay_datagrams(&h1h2.packets()));
    let (from, to, first) = hs
        .initiations
        .first()
        .cloned()
        .expect("an initiation between h1 and h2 on the underlay");
    atk.attack(
        &lab,
        SPARE,
        From::Outsider,
        &format!("h{from}'s captured initiation to h{to} (MAC keyed to h{to})"),
        &[first],
        "bad_mac",
    );

    // --- replays after the receiving relay restarts ---------------------
    send_markers(&lab, 3);
    let c = wire.take_batch(3, &receivers);
    let before = logged(&lab, &[SPARE], "peer confirmed");
    lab.stop_relay(SPARE);
    lab.start_relay(SPARE);
    wait_logged(&lab, &[SPARE], "peer confirmed", &before);
    // Settle: datagrams sealed under the sessions h4 had before its
    // restart, in flight meanwhile, are counted before the attacks.
    let _ = settled_drops(&lab, SPARE, &net_drops(&lab, SPARE));
    // Every session h4 had ended with its old process: nothing captured
    // from them opens in the new ones.
    atk.attack(
        &lab,
        SPARE,
        From::Outsider,
        "replayed after the receiving relay restarted",
        &c[&SPARE],
        "no_session",
    );
    // Batch 2 never reached h4 at all, before or after its restart.
    atk.attack(
        &lab,
        SPARE,
        From::Outsider,
        "undelivered, replayed after the receiving relay restarted",
        &b[&SPARE],
        "no_session",
    );

    // --- replays after the sending relay restarts -----------------------
    send_markers(&lab, 4);
    let d4 = wire.take_batch(4, &receivers);
    // h3's handshakes of the run about to end, as the wire showed them.
    let old_run = relay_datagrams(&wire.cap.packets());
    let before = logged(&lab, &receivers, "new run confirmed");
    lab.stop_relay(SENDER);
    lab.start_relay(SENDER);
    wait_logged(&lab, &receivers, "new run confirmed", &before);
    for h in receivers {
        let _ = settled_drops(&lab, h, &net_drops(&lab, h));
    }
    // The sender's sessions of its old run are at most `previous` now
    // (kept for datagrams in flight), and every one of these was seen.
    for h in [MASTER, BACKUP] {
        let old: Vec<Vec<u8>> = [&a, &b, &c, &d4]
            .iter()
            .flat_map(|x| x[&h].iter().cloned())
            .collect();
        atk.attack(
            &lab,
            h,
            From::Outsider,
            "replayed after the sending relay restarted",
            &old,
            "replay",
        );
    }
    // h4: batches 1 to 3 are from sessions its restart ended; batch 4
    // from the one h3's restart made `previous`, and seen.
    let older: Vec<Vec<u8>> = [&a, &b, &c]
        .iter()
        .flat_map(|x| x[&SPARE].iter().cloned())
        .collect();
    atk.attack(
        &lab,
        SPARE,
        From::Outsider,
        "replayed after the sending relay restarted (and h4's, before)",
        &older,
        "no_session",
    );
    atk.attack(
        &lab,
        SPARE,
        From::Outsider,
        "replayed after the sending relay restarted",
        &d4[&SPARE],
        "replay",
    );
    // Each peer accepted the new run's initiation: the old run's are
    // older, whether they were answered then or not. (Last: each stale
    // one makes its receiver start a handshake with h3, whose session
    // then pushes out the old run's.)
    refill_handshake_budget();
    for h in receivers {
        let inits: Vec<Vec<u8>> = old_run
            .iter()
            .filter(|s| s.dst == h && kind_of(&s.bytes) == Some(Kind::Initiation))
            .map(|s| s.bytes.clone())
            .cycle()
            .take(HS)
            .collect();
        assert!(!inits.is_empty(), "no initiation of h3's first run to h{h}");
        atk.attack(
            &lab,
            h,
            From::Outsider,
            "h3's initiations of its previous run, replayed after it restarted",
            &inits,
            "stale_handshake",
        );
    }
    // The restarted sender's own traffic still flows: the positive control.
    send_markers(&lab, 5);
    let _e = wire.take_batch(5, &receivers);

    // --- a cluster member holding its own key ---------------------------
    lab.stop_relay(SENDER);
    let before = logged(&lab, &receivers, "new run confirmed");
    let mut evil = Evil::start(&lab, &cluster, &receivers);
    wait_logged(&lab, &receivers, "new run confirmed", &before);
    lab::wait_for(
        "the key holder's sessions with every peer",
        Duration::from_secs(10),
        || evil.has_sessions(&receivers).then_some(()),
    );
    for h in receivers {
        let _ = settled_drops(&lab, h, &net_drops(&lab, h));
    }
    atk.member = Some(evil.sock.clone());
    let me = overlay(SENDER);
    let group = Ipv4Addr::new(224, 0, 0, 18);
    for h in [MASTER, BACKUP] {
        let other = if h == MASTER { BACKUP } else { MASTER };
        let takeover = advert(overlay(other), 255);
        let attacks: Vec<(&str, Vec<Vec<u8>>, &str)> = vec![
            (
                "priority-255 advert from another node's overlay address",
                vec![takeover.clone(); N],
                "wrong_inner_source",
            ),
            (
                "priority-255 advert from the receiver's own overlay address",
                vec![advert(overlay(h), 255); N],
                "wrong_inner_source",
            ),
            (
                "TCP SYN to port 22 of the receiver",
                vec![ipv4(me, overlay(h), 6, 64, &tcp_syn(22)); N],
                "disallowed",
            ),
            (
                "UDP to port 694 of the receiver",
                vec![ipv4(me, overlay(h), 17, 64, &udp(694, 694, b"x")); N],
                "disallowed",
            ),
            (
                "ICMP echo to the receiver",
                vec![ipv4(me, overlay(h), 1, 64, &icmp_echo()); N],
                "disallowed",
            ),
            (
                "VRRP unicast to another node's overlay address",
                vec![ipv4(me, overlay(other), 112, 255, &takeover[20..]); N],
                "disallowed",
            ),
            (
                "VRRP to a group that is not allowed (224.0.0.19)",
                vec![ipv4(me, Ipv4Addr::new(224, 0, 0, 19), 112, 255, &takeover[20..]); N],
                "disallowed",
            ),
            (
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
            ),
        ];
        for (what, packets, reason) in attacks {
            let sealed = evil.seal_all(h, &packets);
            atk.attack(&lab, h, From::Member, what, &sealed, reason);
        }
    }

    // --- the attacks: posing as the master at the backup ---------
    let resign = advert(overlay(MASTER), 0);
    // (1) h1's priority-0 adverts sealed under h3's own session with h2:
    // relabelled as h1 they name a session h1 does not have there; left
    // as h3's they carry a source that is not h3's.
    let own: Vec<Vec<u8>> = evil.seal_all(BACKUP, &vec![resign.clone(); POSE]);
    let relabelled: Vec<Vec<u8>> = own.iter().map(|d| relabel(d, MASTER as u8)).collect();
    atk.attack(
        &lab,
        BACKUP,
        From::Member,
        "h1's priority-0 adverts under its own session with h2, relabelled as h1",
        &relabelled,
        "no_session",
    );
    atk.attack(
        &lab,
        BACKUP,
        From::Member,
        "h1's priority-0 adverts under its own session with h2",
        &own,
        "wrong_inner_source",
    );
    // (2) h1's current session index at h2, as the underlay shows it, with
    // counters above h1's: sealed with a key the member has, which is not
    // the h1→h2 session's (no member but h1 and h2 has that).
    let (index, top) = relay_datagrams(&h1h2.packets())
        .iter()
        .filter(|s| (s.src, s.dst) == (MASTER, BACKUP) && kind_of(&s.bytes) == Some(Kind::Data))
        .map(|s| index_and_counter(&s.bytes))
        .next_back()
        .expect("h1's adverts to h2 on the underlay");
    let injected_before = injected(&lab, BACKUP);
    let forged: Vec<Vec<u8>> = (0..POSE as u64)
        .map(|k| {
            forge(
                header(Kind::Data, MASTER as u8, index, top + 1000 + k),
                &resign,
            )
        })
        .collect();
    atk.attack(
        &lab,
        BACKUP,
        From::Member,
        "h1's priority-0 adverts in h1's session at h2, counters above h1's",
        &forged,
        "bad_auth",
    );
    // (3) One at the top of the counter space: it must not move h1's
    // window at h2, so h1's adverts keep being written into h2.
    let top_of_space = forge(
        header(Kind::Data, MASTER as u8, index, u64::MAX - 1),
        &resign,
    );
    let after_top = lab.capture(
        BACKUP,
        "mcast0",
        "in",
        "src host 10.250.0.1 and ip proto 112",
        "after_top",
    );
    atk.attack(
        &lab,
        BACKUP,
        From::Member,
        "h1's priority-0 advert in h1's session at h2, counter 2^64-2",
        &[top_of_space],
        "bad_auth",
    );
    std::thread::sleep(Duration::from_secs(2));
    let masters_adverts = after_top.stop().len();
    // keepalived sends ten adverts a second; a few may be lost at the
    // edges of the capture, none may be refused.
    assert!(
        masters_adverts >= 10,
        "after the counter-top forgery h2 wrote only {masters_adverts} of h1's adverts in 2 s"
    );
    let injected_meanwhile = injected(&lab, BACKUP) - injected_before;
    report(&format!(
        "hostile: h1's adverts written into h2 in the 2 s after the counter-top forgery: {masters_adverts} (h2 injected {injected_meanwhile} since the forgeries began)"
    ));
    assert_eq!(vip::holders(&lab, vrrp.vip()), vec![MASTER]);

    // (4) A handshake as h1 (h2 as h1's peer), made with h3's key: the
    // static key inside is not h1's.
    refill_handshake_budget();
    let key3 = evil.key.clone();
    let as_h1: Vec<Vec<u8>> = (0..HS)
        .map(|_| evil.initiation(MASTER, &key3, BACKUP))
        .collect();
    atk.attack(
        &lab,
        BACKUP,
        From::Member,
        "initiations as h1 made with h3's key",
        &as_h1,
        "wrong_key",
    );
    let as_h2: Vec<Vec<u8>> = (0..HS)
        .map(|_| evil.initiation(BACKUP, &key3, MASTER))
        .collect();
    atk.attack(
        &lab,
        MASTER,
        From::Member,
        "initiations as h2 made with h3's key",
        &as_h2,
        "wrong_key",
    );
    let mac2 = cluster.mac_for(BACKUP);
    let responses_as_h1: Vec<Vec<u8>> = (0..HS)
        .map(|_| handshake_junk(&mut rng, Kind::Response, MASTER, Some(&mac2)))
        .collect();
    atk.attack(
        &lab,
        BACKUP,
        From::Member,
        "responses as h1 with the right MAC, answering nothing h2 asked",
        &responses_as_h1,
        "no_session",
    );

    // (5) The genuine handshakes between h1 and h2 from the underlay,
    // replayed: the initiations are not newer than the last accepted, the
    // responses answer no outstanding initiation. Each stale initiation
    // makes its receiver start a handshake of its own, which the replayer
    // cannot answer and the real peer does: one direction at a time.
    // Relays that start one after the other answer the later one's
    // initiation only: a replay of it makes its receiver start one the
    // other way, which the next round replays.
    let mut replayed: Vec<(usize, usize)> = Vec::new();
    for _ in 0..2 {
        refill_handshake_budget();
        let hs = handshakes(&relay_datagrams(&h1h2.packets()));
        let Some((from, to)) = [(MASTER, BACKUP), (BACKUP, MASTER)]
            .into_iter()
            .filter(|d| !replayed.contains(d))
            .find(|d| hs.answered.iter().any(|(f, t, _)| (*f, *t) == *d))
        else {
            break;
        };
        let inits: Vec<Vec<u8>> = hs
            .answered
            .iter()
            .filter(|(f, t, _)| (*f, *t) == (from, to))
            .map(|(_, _, d)| d.clone())
            .cycle()
            .take(HS)
            .collect();
        let what = format!("h{from}'s captured initiations to h{to}, replayed");
        atk.attack(&lab, to, From::Member, &what, &inits, "stale_handshake");
        replayed.push((from, to));
        // The handshake the stale one makes `to` start, and its answer.
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(
        replayed.len(),
        2,
        "answered initiations between h1 and h2 in both directions: {replayed:?}"
    );
    let hs = handshakes(&relay_datagrams(&h1h2.packets()));
    std::thread::sleep(Duration::from_millis(500));
    for (from, to) in [(BACKUP, MASTER), (MASTER, BACKUP)] {
        let resps: Vec<Vec<u8>> = hs
            .responses
            .iter()
            .filter(|(f, t, _)| (*f, *t) == (from, to))
            .map(|(_, _, d)| d.clone())
            .collect();
        if resps.is_empty() {
            continue;
        }
        let what = format!("h{from}'s captured responses to h{to}, replayed");
        atk.attack(&lab, to, From::Member, &what, &resps, "no_session");
    }

    // (6) A flood of genuine initiations as h3, each from a fresh core
    // with a newer timestamp than the last: the first of each second get
    // an answer, the rest are refused before any Diffie-Hellman, and h3's
    // budget is its own, so h1 and h2 keep their sessions with each other.
    refill_handshake_budget();
    let flood_targets = [MASTER, BACKUP];
    let befores: Vec<HashMap<String, u64>> =
        flood_targets.iter().map(|&h| net_drops(&lab, h)).collect();
    let answers_before: Vec<usize> = flood_targets.iter().map(|&h| evil.responses(h)).collect();
    let flood_started = Instant::now();
    for _ in 0..HS_FLOOD {
        for &h in &flood_targets {
            let d = evil.initiation(SENDER, &key3, h);
            evil.sock
                .send_to(&d, underlay(h))
                .unwrap_or_else(|e| panic!("send to h{h}: {e}"));
        }
    }
    let flood_secs = flood_started.elapsed().as_secs_f64();
    for (k, &h) in flood_targets.iter().enumerate() {
        let g = settled_drops(&lab, h, &befores[k]);
        let answered = evil.responses(h) - answers_before[k];
        let want: HashMap<String, u64> = [(
            "handshake_rate_limited".to_string(),
            (HS_FLOOD - answered) as u64,
        )]
        .into_iter()
        .collect();
        assert_eq!(
            g, want,
            "handshake flood at h{h}: {answered} answered; drops counted"
        );
        let budget = 10.0 + 10.0 * (flood_secs + 1.0);
        assert!(
            answered > 0 && answered as f64 <= budget,
            "handshake flood at h{h}: {answered} of {HS_FLOOD} answered in {flood_secs:.2} s"
        );
        atk.record(
            h,
            format!("key holder: genuine initiations as h3, fresh core each, in {flood_secs:.2} s ({answered} answered)"),
            HS_FLOOD,
            "handshake_rate_limited",
        );
    }
    for (h, peer) in [(MASTER, "h2"), (BACKUP, "h1")] {
        let st = lab.relay_status(h);
        let p = st["peers"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == peer))
            .unwrap_or_else(|| panic!("h{h}'s status has no peer {peer}: {st}"));
        assert!(
            p["reachable"] == true && p["confirmed"] == true,
            "after the handshake flood h{h} no longer reaches {peer}: {p}"
        );
    }

    // --- first fragments past the port rules ----------------------------
    // Under each preset with port rules, the first fragment of UDP to a
    // port none of them permits, at h2's overlay IPv6, its link-local and
    // ff02::1: the kernel would reassemble and deliver it. The allow list
    // changes by a live reload of h2's cluster file; sessions stay.
    let written_by_key_holder = fragments_past_the_port_rules(&mut lab, &evil, &mut atk);

    // An allowed packet kind, as fast as the key holder can: the injection
    // rate limit caps what reaches the host.
    let flood: Vec<Vec<u8>> = (0..8000u16)
        .map(|i| ipv4(me, group, 112, 255, &marker(200, i)))
        .collect();
    let before = net_drops(&lab, SPARE);
    let injected_before = injected(&lab, SPARE);
    let flood_secs = evil.send_inner(SPARE, &flood).as_secs_f64();
    let g = settled_drops(&lab, SPARE, &before);
    // Includes h1's adverts (10 a second) that arrived meanwhile.
    let injected_flood = injected(&lab, SPARE) - injected_before;
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
    drop(h1h2);
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
            let from_key_holder = match h {
                SPARE => flood_set.get(&p).copied().unwrap_or(0),
                BACKUP => written_by_key_holder.get(&p).copied().unwrap_or(0),
                _ => 0,
            };
            if from_key_holder > 0 && h == SPARE {
                flood_injected += n;
            }
            assert!(
                n <= legit + from_key_holder,
                "h{h}'s relay wrote a packet {n} times that peers sent {legit} times: {p:02x?}"
            );
        }
        if h == BACKUP {
            let got = capture::multiset(&inbound[h - 1]);
            for p in written_by_key_holder.keys() {
                assert_eq!(
                    got.get(p).copied().unwrap_or(0),
                    1,
                    "the allowed first fragment was not written into h{h} once: {p:02x?}"
                );
            }
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
        (injected_flood as f64) <= cap && flood_injected as u64 <= injected_flood,
        "{injected_flood} packets injected ({flood_injected} captured) in {flood_secs:.2} s: above the rate limit"
    );
    assert!(
        limited > 0 && injected_flood + limited <= flood.len() as u64 + 100,
        "rate limit: {injected_flood} injected, {limited} dropped of {}",
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
        "hostile: {} attacks, {total} datagrams, 0 written into any mcast0; VIP stayed on h{MASTER}; {:.0} s",
        atk.tried.len(),
        started.elapsed().as_secs_f64()
    ));
    for t in &atk.tried {
        report(&format!(
            "hostile:   h{} {:>4} x {:<78} -> {} (injected 0)",
            t.target, t.sent, t.attack, t.reason
        ));
    }
    report(&format!(
        "hostile:   h{SPARE} {} x key holder: allowed VRRP flood in {flood_secs:.2} s -> {injected_flood} injected (relay's count, {flood_injected} seen by tcpdump), {limited} rate_limited",
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
