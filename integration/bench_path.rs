//! The relay's data path side by side with native multicast and a kernel
//! VXLAN overlay, in one lab and one run. Not a test: it prints a table.
//!
//! `cargo bench --bench path` (as root). A sender in h1 multicasts UDP to
//! 239.192.0.1:5405 (the corosync preset allows it) over each path;
//! receivers in h2 and h3 take the one-way latency from a CLOCK_MONOTONIC
//! timestamp in the payload (namespaces share the clock). For 64- and
//! 1,400-byte payloads and each path:
//! * latency p50/p99/p99.9 at 1,000 packets/s (LATENCY_PACKETS, default
//!   5,000);
//! * the highest rate both receivers get with under 0.1 % loss, searched
//!   over one-second bursts;
//! * the relays' CPU time per packet (sender's and a receiver's relay,
//!   from /proc/<pid>/schedstat) during the latency run.
//!
//! Paths: native (the lab's bridge opened), VXLAN (unicast head-end
//! replication to static FDB entries, bridge closed), the relay with
//! encryption, and with `insecure = true`.

#[path = "lab/mod.rs"]
mod lab;

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use lab::{Lab, RelayOptions};
use socket2::{Domain, Protocol, Socket, Type};

const GROUP: Ipv4Addr = Ipv4Addr::new(239, 192, 0, 1);
const PORT: u16 = 5405;
const RECEIVERS: [usize; 2] = [2, 3];
const LOSS_LIMIT: f64 = 0.001;

#[derive(Clone, Copy, PartialEq)]
enum Path {
    Native,
    Vxlan,
    Relay,
    RelayInsecure,
}

impl Path {
    fn name(self) -> &'static str {
        match self {
            Path::Native => "native multicast",
            Path::Vxlan => "kernel VXLAN",
            Path::Relay => "mcast-relay (encrypted)",
            Path::RelayInsecure => "mcast-relay (insecure)",
        }
    }

    /// Host `h`'s address on the path's interface.
    fn addr(self, h: usize) -> Ipv4Addr {
        let h = h as u8;
        match self {
            Path::Native => Ipv4Addr::new(10, 77, 0, h),
            Path::Vxlan => Ipv4Addr::new(10, 99, 0, h),
            Path::Relay | Path::RelayInsecure => Ipv4Addr::new(10, 250, 0, h),
        }
    }
}

fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn sender(lab: &Lab, path: Path) -> UdpSocket {
    let local = path.addr(1);
    lab::in_netns(&lab.ns(1), move || {
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).expect("socket");
        s.set_multicast_if_v4(&local).expect("IP_MULTICAST_IF");
        s.set_multicast_loop_v4(false).expect("IP_MULTICAST_LOOP");
        s.set_send_buffer_size(4 << 20).expect("SO_SNDBUF");
        s.bind(&SocketAddrV4::new(local, 0).into()).expect("bind");
        s.into()
    })
}

fn receiver(lab: &Lab, h: usize, path: Path) -> UdpSocket {
    let iface = path.addr(h);
    lab::in_netns(&lab.ns(h), move || {
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).expect("socket");
        s.set_reuse_address(true).expect("SO_REUSEADDR");
        s.set_recv_buffer_size(8 << 20).expect("SO_RCVBUF");
        s.bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, PORT).into())
            .expect("bind");
        s.join_multicast_v4(&GROUP, &iface).expect("join");
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        s.into()
    })
}

/// What a receiver saw: per-packet latencies (ns) and how many arrived.
struct Seen {
    latencies: Vec<u64>,
    count: u64,
}

/// Sends `n` packets of `size` bytes at `rate` per second, with receivers
/// running; returns what each receiver saw and the rate the sender
/// actually reached (one process sending one packet per system call).
fn run(lab: &Lab, path: Path, size: usize, rate: u64, n: u64) -> (Vec<Seen>, f64) {
    let tx = sender(lab, path);
    let rxs: Vec<UdpSocket> = RECEIVERS.iter().map(|h| receiver(lab, *h, path)).collect();
    let run_id = now_ns();
    let handles: Vec<_> = rxs
        .into_iter()
        .map(|rx| {
            std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                let mut seen = Seen {
                    latencies: Vec::with_capacity(n as usize),
                    count: 0,
                };
                let mut quiet_since: Option<Instant> = None;
                loop {
                    match rx.recv(&mut buf) {
                        Ok(len) if len >= 16 => {
                            let at = now_ns();
                            let id = u64::from_be_bytes(buf[0..8].try_into().expect("8"));
                            if id != run_id {
                                continue; // a straggler of an earlier run
                            }
                            let sent = u64::from_be_bytes(buf[8..16].try_into().expect("8"));
                            seen.latencies.push(at.saturating_sub(sent));
                            seen.count += 1;
                            quiet_since = None;
                            if seen.count == n {
                                break;
                            }
                        }
                        Ok(_) => {}
                        Err(_) => {
                            let q = *quiet_since.get_or_insert_with(Instant::now);
                            if q.elapsed() > Duration::from_millis(600) {
                                break;
                            }
                        }
                    }
                }
                seen
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let dst = SocketAddrV4::new(GROUP, PORT);
    let mut payload = vec![0u8; size.max(16)];
    payload[0..8].copy_from_slice(&run_id.to_be_bytes());
    let start = Instant::now();
    for i in 0..n {
        let due = start + Duration::from_nanos(i * 1_000_000_000 / rate);
        while Instant::now() < due {
            std::hint::spin_loop();
        }
        payload[8..16].copy_from_slice(&now_ns().to_be_bytes());
        // A full buffer is loss at the sender, as it would be for the tool.
        let _ = tx.send_to(&payload, dst);
    }
    let reached = n as f64 / start.elapsed().as_secs_f64();
    let seen = handles
        .into_iter()
        .map(|h| h.join().expect("receiver thread"))
        .collect();
    (seen, reached)
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

struct Row {
    path: Path,
    size: usize,
    p50: f64,
    p99: f64,
    p999: f64,
    rate: u64,
    /// The sender, not the path, ran out first: the path did at least
    /// `rate` without loss.
    sender_bound: bool,
    cpu_tx: Option<f64>,
    cpu_rx: Option<f64>,
}

/// The highest rate with under 0.1 % loss at both receivers, from
/// one-second bursts (doubling, then bisecting to 10 %); and whether the
/// sender could not go faster while the path still lost nothing.
fn loss_free(lab: &Lab, path: Path, size: usize) -> (u64, bool) {
    let mut good = 0u64;
    let mut rate = 5_000;
    let mut bad = loop {
        let (seen, reached) = run(lab, path, size, rate, rate);
        let lossless = seen
            .iter()
            .all(|s| (rate - s.count.min(rate)) as f64 <= rate as f64 * LOSS_LIMIT);
        if !lossless {
            break rate;
        }
        if reached < rate as f64 * 0.95 {
            return (reached as u64, true);
        }
        good = rate;
        rate *= 2;
    };
    while bad - good > good / 10 + 1 {
        let mid = (good + bad) / 2;
        let (seen, _) = run(lab, path, size, mid, mid);
        if seen
            .iter()
            .all(|s| (mid - s.count.min(mid)) as f64 <= mid as f64 * LOSS_LIMIT)
        {
            good = mid;
        } else {
            bad = mid;
        }
    }
    (good, false)
}

fn measure(lab: &Lab, path: Path, size: usize, packets: u64) -> Row {
    let relayed = matches!(path, Path::Relay | Path::RelayInsecure);
    let pids = relayed.then(|| (lab.relay_pid(1), lab.relay_pid(2)));
    let before = pids.map(|(a, b)| (lab::cpu_ns(a), lab::cpu_ns(b)));
    let (seen, _) = run(lab, path, size, 1_000, packets);
    let after = pids.map(|(a, b)| (lab::cpu_ns(a), lab::cpu_ns(b)));
    let mut all: Vec<u64> = seen
        .iter()
        .flat_map(|s| s.latencies.iter().copied())
        .collect();
    all.sort_unstable();
    let lost: u64 = seen.iter().map(|s| packets - s.count.min(packets)).sum();
    if lost > 0 {
        println!(
            "  {} {size} B: {lost} of {} lost at 1000/s",
            path.name(),
            packets * 2
        );
    }
    let per_packet = |a: u64, b: u64| (b.saturating_sub(a)) as f64 / packets as f64 / 1000.0;
    let (cpu_tx, cpu_rx) = match (before, after) {
        (Some((a0, b0)), Some((a1, b1))) => (Some(per_packet(a0, a1)), Some(per_packet(b0, b1))),
        _ => (None, None),
    };
    let (rate, sender_bound) = loss_free(lab, path, size);
    let row = Row {
        path,
        size,
        p50: percentile(&all, 0.5),
        p99: percentile(&all, 0.99),
        p999: percentile(&all, 0.999),
        rate,
        sender_bound,
        cpu_tx,
        cpu_rx,
    };
    println!(
        "  {:<24} {:>5} B  p50 {:>7.1} us  p99 {:>7.1} us  p99.9 {:>7.1} us  loss-free {}{:>7}/s",
        path.name(),
        size,
        row.p50,
        row.p99,
        row.p999,
        if row.sender_bound { ">= " } else { "" },
        row.rate
    );
    row
}

/// VXLAN id 42 on every host over eth0, flooding to each other host by
/// static all-zero FDB entries (head-end replication, no multicast).
fn add_vxlan(lab: &Lab) {
    for h in lab.host_ids() {
        let local = format!("10.77.0.{h}");
        lab.exec(
            h,
            &[
                "ip",
                "link",
                "add",
                "vxlan0",
                "type",
                "vxlan",
                "id",
                "42",
                "dstport",
                "4789",
                "local",
                &local,
                "dev",
                "eth0",
                "nolearning",
            ],
        );
        for p in lab.host_ids().filter(|p| *p != h) {
            let dst = format!("10.77.0.{p}");
            lab.exec(
                h,
                &[
                    "bridge",
                    "fdb",
                    "append",
                    "00:00:00:00:00:00",
                    "dev",
                    "vxlan0",
                    "dst",
                    &dst,
                ],
            );
        }
        let addr = format!("10.99.0.{h}/24");
        lab.exec(h, &["ip", "addr", "add", &addr, "dev", "vxlan0"]);
        lab.exec(h, &["ip", "link", "set", "vxlan0", "up"]);
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if !lab::root_or_skip("path benchmark") {
        return;
    }
    let packets = lab::env_or("LATENCY_PACKETS", 5_000);
    println!("relay binary: {}", lab::relay_bin().display());
    let mut lab = Lab::new(3);
    add_vxlan(&lab);
    let mut rows = Vec::new();
    for insecure in [false, true] {
        // No injection rate limit: the default 5000/s would cap the
        // throughput search, not the relay.
        lab.start_relays(RelayOptions {
            presets: vec!["corosync"],
            insecure,
            inject_rate_limit: Some(0),
            ..RelayOptions::default()
        });
        // Let the handshakes finish.
        std::thread::sleep(Duration::from_secs(1));
        let path = if insecure {
            Path::RelayInsecure
        } else {
            Path::Relay
        };
        for size in [64, 1400] {
            rows.push(measure(&lab, path, size, packets));
        }
        for h in lab.host_ids() {
            lab.stop_relay(h);
        }
    }
    for size in [64, 1400] {
        rows.push(measure(&lab, Path::Vxlan, size, packets));
    }
    lab.open_bridge();
    for size in [64, 1400] {
        rows.push(measure(&lab, Path::Native, size, packets));
    }
    lab.close_bridge();

    let vx_bound = |size: usize| {
        rows.iter()
            .any(|r| r.path == Path::Vxlan && r.size == size && r.sender_bound)
    };
    let vx = |size: usize| {
        rows.iter()
            .find(|r| r.path == Path::Vxlan && r.size == size)
            .map(|r| (r.p50, r.p99, r.rate as f64))
            .expect("VXLAN row")
    };
    println!();
    println!(
        "| path | payload | p50 | p99 | p99.9 | loss-free rate (<0.1 %, 2 receivers) | relay CPU/packet (sender, receiver) | p50 / VXLAN | p99 / VXLAN | rate / VXLAN |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for order in [Path::Native, Path::Vxlan, Path::Relay, Path::RelayInsecure] {
        for r in rows.iter().filter(|r| r.path == order) {
            let (v50, v99, vrate) = vx(r.size);
            let cpu = match (r.cpu_tx, r.cpu_rx) {
                (Some(t), Some(x)) => format!("{t:.1} us, {x:.1} us"),
                _ => "-".into(),
            };
            println!(
                "| {} | {} B | {:.1} us | {:.1} us | {:.1} us | {}{}/s{} | {} | {:.2} | {:.2} | {}{:.2} |",
                r.path.name(),
                r.size,
                r.p50,
                r.p99,
                r.p999,
                if r.sender_bound { ">= " } else { "" },
                r.rate,
                if r.sender_bound {
                    " (sender-bound)"
                } else {
                    ""
                },
                cpu,
                r.p50 / v50,
                r.p99 / v99,
                if vx_bound(r.size) { "<= " } else { "" },
                r.rate as f64 / vrate
            );
        }
    }
}
