//! A flood of random datagrams from the outsider's namespace at relay
//! ports, and the figures that tell what it cost: the relay's CPU time and
//! the datagrams the kernel dropped because the relay's socket was full.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use std::collections::HashMap;

use mcast_relay::core::DropReason;
use mcast_relay::proto::crypto::MacKey;
use mcast_relay::proto::keys::{PrivateKey, PublicKey};
use mcast_relay::proto::wire::{INITIATION_LEN, MAC_LEN};

use super::keepalived::Vrrp;
use super::vip::{self, Added, Watch};
use super::{Lab, RelayOptions, in_netns, in_ns};

/// What one sender thread managed.
#[derive(Debug, Clone, Copy)]
pub struct Sent {
    pub target: SocketAddrV4,
    pub datagrams: u64,
    /// Sends the kernel refused (buffer full).
    pub refused: u64,
    pub secs: f64,
}

impl Sent {
    pub fn rate(&self) -> f64 {
        self.datagrams as f64 / self.secs.max(1e-9)
    }
}

/// Running sender threads, one per target.
pub struct Flood {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Sent>>,
}

/// What the flood is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Junk {
    /// Random bytes, 1 to 512 long.
    Random,
    /// Handshake initiations claiming to come from a real member (h3),
    /// each with the right MAC for its target (public keys are no secret)
    /// and random Noise bytes: the most a stranger can make the relay
    /// work, a MAC and a rate-limit check per datagram, and a
    /// Diffie-Hellman for the ten a second the limit lets through.
    ForgedHeaders,
}

/// xorshift64*: random bytes cheap enough not to limit the send rate.
fn junk_pool(seed: u64, count: usize, junk: Junk, target: Option<&PublicKey>) -> Vec<Vec<u8>> {
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let mac = target.map(MacKey::for_receiver);
    (0..count)
        .map(|_| {
            let len = 1 + (next() as usize) % 512;
            let mut d: Vec<u8> = (0..len.max(INITIATION_LEN)).map(|_| next() as u8).collect();
            match (&mac, junk) {
                (Some(mac), Junk::ForgedHeaders) => {
                    d.truncate(INITIATION_LEN);
                    d[..8].copy_from_slice(&[2, 2, 0, 0, 10, 250, 0, 3]);
                    let at = INITIATION_LEN - MAC_LEN;
                    let m = mac.sign(&d[..at]);
                    d[at..].copy_from_slice(&m);
                }
                _ => d.truncate(len),
            }
            d
        })
        .collect()
}

impl Lab {
    /// Sends `junk` datagrams (from a pool of 4096) from the outsider (see [`Lab::add_outsider`]) to each target at
    /// `rate` datagrams a second, until stopped.
    pub fn flood(&self, targets: &[SocketAddrV4], rate: u64, junk: Junk, seed: u64) -> Flood {
        let stop = Arc::new(AtomicBool::new(false));
        let ns = self.outsider_ns();
        let threads = targets
            .iter()
            .enumerate()
            .map(|(i, &target)| {
                let sock = in_netns(&ns, move || {
                    let s = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, 99), 0))
                        .expect("bind the flood socket");
                    s.connect(target).expect("connect the flood socket");
                    s
                });
                // The target's public key, for the handshakes' MAC.
                let h = usize::from(target.ip().octets()[3]);
                let key = std::fs::read_to_string(self.key_path(h))
                    .ok()
                    .and_then(|t| PrivateKey::parse(&t).ok())
                    .map(|k| k.public());
                let pool = junk_pool(seed.wrapping_add(i as u64), 4096, junk, key.as_ref());
                let stop = stop.clone();
                std::thread::spawn(move || send_loop(&sock, target, pool, rate, &stop))
            })
            .collect();
        Flood { stop, threads }
    }

    /// `/proc/<pid>/stat` utime + stime of the relay of host `h`, seconds.
    pub fn relay_cpu_secs(&self, h: usize) -> f64 {
        let pid = self.relay_pid(h);
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the command name, which is in parentheses and may
        // contain spaces: state is field 3, utime 14, stime 15.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<u64> = rest
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
        // SAFETY: sysconf has no memory effects.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        ticks as f64 / hz
    }

    /// UDP datagrams host `h`'s kernel dropped for a full socket buffer.
    pub fn udp_rcvbuf_errors(&self, h: usize) -> u64 {
        let out = in_ns(&self.ns(h), &["cat", "/proc/net/snmp"]);
        let text = String::from_utf8_lossy(&out.stdout);
        let udp: Vec<&str> = text.lines().filter(|l| l.starts_with("Udp:")).collect();
        let [names, values] = udp.as_slice() else {
            return 0;
        };
        names
            .split_whitespace()
            .zip(values.split_whitespace())
            .find(|(n, _)| *n == "RcvbufErrors")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0)
    }
}

fn send_loop(
    sock: &UdpSocket,
    target: SocketAddrV4,
    mut pool: Vec<Vec<u8>>,
    rate: u64,
    stop: &AtomicBool,
) -> Sent {
    let start = Instant::now();
    let mut sent = 0u64;
    let mut refused = 0u64;
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) {
        // Keep to the schedule: send what is due, then wait a moment.
        let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
        if sent + refused >= due {
            std::thread::sleep(Duration::from_micros(200));
            continue;
        }
        for _ in 0..(due - sent - refused).min(256) {
            let n = pool.len();
            let d = &mut pool[i % n];
            match sock.send(d) {
                Ok(_) => sent += 1,
                Err(_) => refused += 1,
            }
            i += 1;
        }
    }
    Sent {
        target,
        datagrams: sent,
        refused,
        secs: start.elapsed().as_secs_f64(),
    }
}

impl Flood {
    pub fn stop(self) -> Vec<Sent> {
        self.stop.store(true, Ordering::Relaxed);
        self.threads
            .into_iter()
            .map(|t| t.join().expect("a flood thread panicked"))
            .collect()
    }
}

fn net_drops(lab: &Lab, h: usize) -> HashMap<String, u64> {
    lab.relay_counters(h)
        .into_iter()
        .filter(|(k, _)| {
            DropReason::ALL
                .iter()
                .any(|r| r.from_network() && *r != DropReason::Duplicate && r.name() == k)
        })
        .collect()
}

/// What a flooded (or bystander) relay went through.
#[derive(Debug)]
pub struct HostFigures {
    pub host: usize,
    pub sent: Option<Sent>,
    /// Network drops the relay counted during the flood, by reason.
    pub counted: HashMap<String, u64>,
    /// Datagrams the host's kernel dropped because the socket was full.
    pub kernel_dropped: u64,
    /// The relay's CPU time over the flood, percent of one core.
    pub cpu_percent: f64,
}

impl HostFigures {
    pub fn counted_total(&self) -> u64 {
        self.counted.values().sum()
    }
}

pub struct FloodOutcome {
    pub hosts: Vec<HostFigures>,
    /// The first VIP addition anywhere during the flood: a failover.
    pub vip_added: Option<Added>,
    pub holders_after: Vec<usize>,
}

/// Three hosts, stock keepalived VRRPv3 with `advert` seconds, h1 the
/// stable master; `junk` datagrams at `rate` a second each at the relay
/// ports of h1 (master) and h2 (backup) for `secs`.
pub fn junk_flood_against_keepalived(
    advert: f64,
    junk: Junk,
    rate: u64,
    secs: u64,
) -> FloodOutcome {
    let priorities = [200u8, 150, 100];
    let mut lab = Lab::new(3);
    lab.add_outsider("10.77.0.98");
    lab.start_relays(RelayOptions::default());
    let vrrp = Vrrp::v3(advert);
    for h in lab.host_ids() {
        lab.start_keepalived(h, vrrp, priorities[h - 1]);
    }
    let all: Vec<usize> = lab.host_ids().collect();
    vip::converge_on(
        &lab,
        vrrp.vip(),
        &all,
        1,
        vrrp.master_down(priorities[2]) + Duration::from_millis(500),
        Duration::from_secs(30),
    );
    let watch = Watch::start(&lab, vrrp.vip());
    let targets = [1usize, 2];
    let port = |h: usize| SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, h as u8), 7112);

    let drops_before: Vec<_> = all.iter().map(|&h| net_drops(&lab, h)).collect();
    let cpu_before: Vec<f64> = all.iter().map(|&h| lab.relay_cpu_secs(h)).collect();
    let kernel_before: Vec<u64> = all.iter().map(|&h| lab.udp_rcvbuf_errors(h)).collect();
    let started = Instant::now();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let flood = lab.flood(&targets.map(port), rate, junk, seed);
    std::thread::sleep(Duration::from_secs(secs));
    let sent = flood.stop();
    let wall = started.elapsed().as_secs_f64();
    let cpu: Vec<f64> = all
        .iter()
        .map(|&h| (lab.relay_cpu_secs(h) - cpu_before[h - 1]) / wall * 100.0)
        .collect();
    let kernel: Vec<u64> = all
        .iter()
        .map(|&h| lab.udp_rcvbuf_errors(h) - kernel_before[h - 1])
        .collect();
    // Let the relays drain their sockets before reading the counters.
    std::thread::sleep(Duration::from_millis(500));
    let hosts = all
        .iter()
        .map(|&h| HostFigures {
            host: h,
            sent: targets.iter().position(|t| *t == h).map(|i| sent[i]),
            counted: net_drops(&lab, h)
                .into_iter()
                .filter_map(|(k, v)| {
                    let d = v.saturating_sub(drops_before[h - 1].get(&k).copied().unwrap_or(0));
                    (d > 0).then_some((k, d))
                })
                .collect(),
            kernel_dropped: kernel[h - 1],
            cpu_percent: cpu[h - 1],
        })
        .collect();
    FloodOutcome {
        hosts,
        vip_added: watch.next_added(&[], Duration::ZERO),
        holders_after: vip::holders(&lab, vrrp.vip()),
    }
}

/// One line per host, for test output and the benchmark alike.
pub fn describe(o: &FloodOutcome) -> Vec<String> {
    let mut lines: Vec<String> = o
        .hosts
        .iter()
        .map(|f| {
            let role = if f.host == 1 { "master" } else { "backup" };
            match f.sent {
                Some(s) => format!(
                    "h{} ({role}): {} datagrams in {:.1} s = {:.0}/s; relay counted {} drops {:?}; \
                     kernel dropped {} (socket full); relay CPU {:.0}% of one core",
                    f.host,
                    s.datagrams,
                    s.secs,
                    s.rate(),
                    f.counted_total(),
                    f.counted,
                    f.kernel_dropped,
                    f.cpu_percent
                ),
                None => format!(
                    "h{} ({role}, not flooded): relay CPU {:.1}% of one core",
                    f.host, f.cpu_percent
                ),
            }
        })
        .collect();
    lines.push(format!(
        "VIP holders after the flood: {:?}; VIP moves during it: {}",
        o.holders_after,
        usize::from(o.vip_added.is_some())
    ));
    lines
}
