//! The relay's data path side by side with native multicast, a kernel
//! VXLAN overlay and the floor of any user-space relay, in one lab. Not a
//! test: it prints a table.
//!
//! `cargo bench --bench lab -- path` (as root; RUNS, default 3, whole runs, the
//! table gives each figure's median). A sender in h1 multicasts UDP to
//! 239.192.0.1:5405 (the corosync preset allows it) over each path;
//! receivers in h2 and h3 take the one-way latency from a CLOCK_MONOTONIC
//! timestamp in the payload (namespaces share the clock). For 64-byte
//! payloads and the largest that fits the relay's interface unfragmented
//! (1,408 bytes on the lab's 1500-byte network), and each path:
//! * latency p50/p99/p99.9 at 1,000 packets/s (LATENCY_PACKETS, default
//!   5,000); the sender sleeps between packets, as a heartbeat daemon does,
//!   rather than spinning on one of the machine's cores;
//! * the highest rate both receivers get with under 0.1 % loss, searched
//!   over one-second bursts (sendmmsg batches every 100 µs above 10,000/s);
//! * CPU time per packet during the latency run: the sending thread (for
//!   native multicast and VXLAN the whole path runs in its system calls),
//!   the forwarder on the sending host and on one receiving host.
//!
//! Paths: native (the lab's bridge opened), VXLAN (unicast head-end
//! replication to static FDB entries, bridge closed), the floor (see
//! bench_path/floor.rs), the floor with the relay's way of waiting (an
//! epoll loop, bench_path/evented.rs) and the same sealing each packet
//! with the relay's cipher, the relay encrypted with one copy per packet
//! (`redundancy = 1`, what the floor sends) and with the default two, and
//! with `insecure = true` and one copy. Ratios are to the floor (the
//! relay's limit) and to VXLAN (for reference).

use crate::lab;

mod evented;
mod floor;

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
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
    Floor,
    /// The floor's work, waited for the relay's way (bench_path/evented.rs).
    FloorEvented,
    /// ... with each packet sealed and opened by the relay's cipher.
    FloorSealed,
    /// Encrypted, `redundancy = 1`: one datagram per peer, as the floor.
    RelayOne,
    /// Encrypted, the default `redundancy = 2`: every packet twice.
    Relay,
    RelayInsecure,
}

impl Path {
    fn name(self) -> &'static str {
        match self {
            Path::Native => "native multicast",
            Path::Vxlan => "kernel VXLAN",
            Path::Floor => "user-space floor",
            Path::FloorEvented => "floor with an event loop",
            Path::FloorSealed => "floor, event loop, sealed",
            Path::RelayOne => "mcast-relay (encrypted, 1 copy)",
            Path::Relay => "mcast-relay (encrypted, 2 copies)",
            Path::RelayInsecure => "mcast-relay (insecure, 1 copy)",
        }
    }

    /// Host `h`'s address on the path's interface.
    fn addr(self, h: usize) -> Ipv4Addr {
        let h = h as u8;
        match self {
            Path::Native => Ipv4Addr::new(10, 77, 0, h),
            Path::Vxlan => Ipv4Addr::new(10, 99, 0, h),
            Path::Floor => Ipv4Addr::new(10, 98, 0, h),
            Path::FloorEvented => Ipv4Addr::new(10, 97, 0, h),
            Path::FloorSealed => Ipv4Addr::new(10, 96, 0, h),
            Path::RelayOne | Path::Relay | Path::RelayInsecure => Ipv4Addr::new(10, 250, 0, h),
        }
    }
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn now_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// CPU time of the calling thread: for the sender, its system calls and
/// whatever the kernel does for them in its context — for native
/// multicast and VXLAN that is the whole path up to the receivers'
/// sockets (veth, bridge, encapsulation), for the relay the tun.
fn thread_cpu_ns() -> u64 {
    clock_ns(libc::CLOCK_THREAD_CPUTIME_ID)
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

/// Packets a receiver takes per system call at most.
const RX_BATCH: usize = 64;

/// Receives until `n` packets of this run arrived or 600 ms passed in
/// silence; one `recvmmsg` per wake-up, so at high rates the receivers
/// stay cheaper than any path they measure.
fn receive(rx: UdpSocket, run_id: u64, n: u64) -> Seen {
    let mut bufs = vec![[0u8; 2048]; RX_BATCH];
    let mut iovs: Vec<libc::iovec> = bufs
        .iter_mut()
        .map(|b| libc::iovec {
            iov_base: b.as_mut_ptr().cast(),
            iov_len: b.len(),
        })
        .collect();
    // SAFETY: an all-zero mmsghdr is valid (no name, no control).
    let mut msgs: Vec<libc::mmsghdr> = iovs
        .iter_mut()
        .map(|iov| {
            let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
            m.msg_hdr.msg_iov = iov;
            m.msg_hdr.msg_iovlen = 1;
            m
        })
        .collect();
    let mut seen = Seen {
        latencies: Vec::with_capacity(n as usize),
        count: 0,
    };
    let mut quiet_since: Option<Instant> = None;
    while seen.count < n {
        // SAFETY: msgs points at RX_BATCH headers whose iovecs point at
        // buffers that outlive the call; the socket has a read timeout.
        let got = unsafe {
            libc::recvmmsg(
                rx.as_raw_fd(),
                msgs.as_mut_ptr(),
                RX_BATCH as u32,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        let at = now_ns();
        if got <= 0 {
            let q = *quiet_since.get_or_insert_with(Instant::now);
            if q.elapsed() > Duration::from_millis(600) {
                break;
            }
            continue;
        }
        quiet_since = None;
        for (m, buf) in msgs.iter().zip(&bufs).take(got as usize) {
            if m.msg_len < 16 {
                continue;
            }
            let id = u64::from_be_bytes(buf[0..8].try_into().expect("8"));
            if id != run_id {
                continue; // a straggler of an earlier run
            }
            let sent = u64::from_be_bytes(buf[8..16].try_into().expect("8"));
            seen.latencies.push(at.saturating_sub(sent));
            seen.count += 1;
        }
    }
    seen
}

/// Sleeps until `deadline` (CLOCK_MONOTONIC, ns) without spinning: the
/// sender must not take a core from the path it measures.
fn sleep_until(deadline: u64) {
    let ts = libc::timespec {
        tv_sec: (deadline / 1_000_000_000) as libc::time_t,
        tv_nsec: (deadline % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: clock_nanosleep reads the timespec we own; EINTR just
    // means an early wake-up, which the caller tolerates.
    unsafe {
        libc::clock_nanosleep(
            libc::CLOCK_MONOTONIC,
            libc::TIMER_ABSTIME,
            &ts,
            std::ptr::null_mut(),
        )
    };
}

/// Sends `n` packets of `size` bytes at `rate` per second, with receivers
/// running; returns what each receiver saw and the rate the sender
/// actually reached. Up to 1,000 packets/s one packet per tick; above,
/// ticks of 100 µs with one `sendmmsg` of several packets each, so the
/// sender can outrun every path.
fn run(lab: &Lab, path: Path, size: usize, rate: u64, n: u64) -> (Vec<Seen>, f64, u64) {
    let tx = sender(lab, path);
    let rxs: Vec<UdpSocket> = RECEIVERS.iter().map(|h| receiver(lab, *h, path)).collect();
    let run_id = now_ns();
    let handles: Vec<_> = rxs
        .into_iter()
        .map(|rx| std::thread::spawn(move || receive(rx, run_id, n)))
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    // Precise sleeps: the default 50 µs timer slack would add jitter to
    // every path alike.
    // SAFETY: prctl with an integer argument, this thread only.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) };
    let per_tick = rate.div_ceil(10_000).max(1);
    let ticks = n.div_ceil(per_tick);
    let tick_ns = per_tick * 1_000_000_000 / rate;
    let mut payload = vec![0u8; size.max(16)];
    payload[0..8].copy_from_slice(&run_id.to_be_bytes());
    let dst: socket2::SockAddr = SocketAddrV4::new(GROUP, PORT).into();
    let mut iov = libc::iovec {
        iov_base: payload.as_mut_ptr().cast(),
        iov_len: payload.len(),
    };
    let mut msgs: Vec<libc::mmsghdr> = (0..per_tick)
        .map(|_| {
            // SAFETY: an all-zero mmsghdr is valid; the fields set below
            // point at the payload and address, which outlive the sends.
            let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
            m.msg_hdr.msg_name = dst.as_ptr() as *mut libc::c_void;
            m.msg_hdr.msg_namelen = dst.len();
            m.msg_hdr.msg_iov = &mut iov;
            m.msg_hdr.msg_iovlen = 1;
            m
        })
        .collect();
    let cpu_before = thread_cpu_ns();
    let start = now_ns();
    let mut sent = 0u64;
    for t in 0..ticks {
        sleep_until(start + t * tick_ns);
        let batch = per_tick.min(n - sent) as usize;
        // One timestamp per tick: at latency rates a tick is one packet.
        payload[8..16].copy_from_slice(&now_ns().to_be_bytes());
        // SAFETY: msgs holds `batch` valid headers (see above). A full
        // buffer is loss at the sender, as it would be for the tool.
        let _ = unsafe { libc::sendmmsg(tx.as_raw_fd(), msgs.as_mut_ptr(), batch as u32, 0) };
        sent += batch as u64;
    }
    let reached = n as f64 / ((now_ns() - start) as f64 / 1e9);
    let cpu = thread_cpu_ns() - cpu_before;
    let seen = handles
        .into_iter()
        .map(|h| h.join().expect("receiver thread"))
        .collect();
    (seen, reached, cpu)
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
    /// The sending thread could not go faster and nothing was lost yet:
    /// the path did at least `rate`. For native multicast and VXLAN that
    /// thread also does the path's work (it all runs in its system
    /// calls), so this is what one thread of kernel path can carry.
    sender_bound: bool,
    /// CPU per packet (µs) of the sending application's thread.
    cpu_app: f64,
    /// ... of the forwarder on the sending host and on one receiver.
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
        let (seen, reached, _) = run(lab, path, size, rate, rate);
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
        let (seen, _, _) = run(lab, path, size, mid, mid);
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

/// One row; `pids`: the forwarding tasks on the sending host and on a
/// receiving host, for their CPU time.
fn measure(lab: &Lab, path: Path, size: usize, packets: u64, pids: Option<(u32, u32)>) -> Row {
    let before = pids.map(|(a, b)| (lab::cpu_ns(a), lab::cpu_ns(b)));
    let (seen, _, app_cpu) = run(lab, path, size, 1_000, packets);
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
        cpu_app: app_cpu as f64 / packets as f64 / 1000.0,
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

/// 64 bytes, and the largest UDP payload whose IP packet fits the relay's
/// interface on the lab's 1500-byte network (the floor has the same MTU),
/// so that no path fragments.
fn sizes() -> [usize; 2] {
    [64, floor::mtu() as usize - 28]
}

/// Every path once, in one lab: one row per path and payload.
fn one_run(
    lab: &mut Lab,
    floor: &floor::Floor,
    evented: &floor::Floor,
    sealed: &floor::Floor,
    packets: u64,
) -> Vec<Row> {
    let mut rows = Vec::new();
    let relays = [
        (Path::RelayOne, false, 1),
        (Path::Relay, false, 2),
        (Path::RelayInsecure, true, 1),
    ];
    for (path, insecure, redundancy) in relays {
        // No injection rate limit: the default (10,200/s here) would cap the
        // throughput search, not the relay.
        lab.start_relays(RelayOptions {
            presets: vec!["corosync"],
            insecure,
            inject_rate_limit: Some(0),
            redundancy: Some(redundancy),
            ..RelayOptions::default()
        });
        // Let the handshakes finish.
        std::thread::sleep(Duration::from_secs(1));
        let pids = (lab.relay_pid(1), lab.relay_pid(RECEIVERS[0]));
        for size in sizes() {
            rows.push(measure(lab, path, size, packets, Some(pids)));
        }
        for h in lab.host_ids() {
            lab.stop_relay(h);
        }
    }
    for size in sizes() {
        let tids = (floor.sender_tid, floor.receiver_tid);
        rows.push(measure(lab, Path::Floor, size, packets, Some(tids)));
    }
    for size in sizes() {
        let tids = (evented.sender_tid, evented.receiver_tid);
        rows.push(measure(lab, Path::FloorEvented, size, packets, Some(tids)));
    }
    for size in sizes() {
        let tids = (sealed.sender_tid, sealed.receiver_tid);
        rows.push(measure(lab, Path::FloorSealed, size, packets, Some(tids)));
    }
    for size in sizes() {
        rows.push(measure(lab, Path::Vxlan, size, packets, None));
    }
    lab.open_bridge();
    for size in sizes() {
        rows.push(measure(lab, Path::Native, size, packets, None));
    }
    lab.close_bridge();
    rows
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Each figure of a row is the median over the runs (rates too); a rate
/// is a lower bound (the sending thread saturated) when most runs found
/// it so.
fn combine(runs: &[Vec<Row>], path: Path, size: usize) -> Row {
    let same: Vec<&Row> = runs
        .iter()
        .flatten()
        .filter(|r| r.path == path && r.size == size)
        .collect();
    let of = |f: &dyn Fn(&Row) -> f64| median(same.iter().map(|r| f(r)).collect());
    let opt = |f: &dyn Fn(&Row) -> Option<f64>| {
        let v: Vec<f64> = same.iter().filter_map(|r| f(r)).collect();
        (!v.is_empty()).then(|| median(v))
    };
    Row {
        path,
        size,
        p50: of(&|r| r.p50),
        p99: of(&|r| r.p99),
        p999: of(&|r| r.p999),
        rate: of(&|r| r.rate as f64) as u64,
        sender_bound: same.iter().filter(|r| r.sender_bound).count() * 2 > same.len(),
        cpu_app: of(&|r| r.cpu_app),
        cpu_tx: opt(&|r| r.cpu_tx),
        cpu_rx: opt(&|r| r.cpu_rx),
    }
}

pub fn main() {
    if !lab::bench_may_run("path benchmark") {
        return;
    }
    let packets = lab::env_or("LATENCY_PACKETS", 5_000);
    let runs = lab::env_or("RUNS", 3);
    println!("relay binary: {}", lab::relay_bin().display());
    let mut lab = Lab::new(3);
    add_vxlan(&lab);
    let floor = floor::start(&lab, 1, RECEIVERS[0]);
    let evented = evented::start(&lab, 1, RECEIVERS[0], false);
    let sealed = evented::start(&lab, 1, RECEIVERS[0], true);
    let all: Vec<Vec<Row>> = (1..=runs)
        .map(|i| {
            println!("run {i} of {runs}");
            one_run(&mut lab, &floor, &evented, &sealed, packets)
        })
        .collect();
    let order = [
        Path::Native,
        Path::Vxlan,
        Path::Floor,
        Path::FloorEvented,
        Path::FloorSealed,
        Path::RelayOne,
        Path::Relay,
        Path::RelayInsecure,
    ];
    let rows: Vec<Row> = order
        .iter()
        .flat_map(|p| sizes().map(|size| combine(&all, *p, size)))
        .collect();

    let vx_bound = |size: usize| {
        rows.iter()
            .any(|r| r.path == Path::Vxlan && r.size == size && r.sender_bound)
    };
    let of = |path: Path, size: usize| {
        rows.iter()
            .find(|r| r.path == path && r.size == size)
            .map(|r| (r.p50, r.p99, r.rate as f64))
            .expect("a row per path and size")
    };
    println!();
    println!("median of {runs} runs");
    println!(
        "| path | payload | p50 | p99 | p99.9 | loss-free rate (<0.1 %, 2 receivers) | CPU/packet: sending thread | forwarders (sender, receiver) | path total | p50 / floor | p99 / floor | rate / floor | p50 / VXLAN | p99 / VXLAN | rate / VXLAN |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let (v50, v99, vrate) = of(Path::Vxlan, r.size);
        let (f50, f99, frate) = of(Path::Floor, r.size);
        let fwd = match (r.cpu_tx, r.cpu_rx) {
            (Some(t), Some(x)) => format!("{t:.1} us, {x:.1} us"),
            _ => "-".into(),
        };
        // The sending thread, the sending host's forwarder and one per
        // receiver: everything the path costs but the receivers' reads.
        let total = r.cpu_app + r.cpu_tx.unwrap_or(0.0) + 2.0 * r.cpu_rx.unwrap_or(0.0);
        println!(
            "| {} | {} B | {:.1} us | {:.1} us | {:.1} us | {}{}/s{} | {:.1} us | {} | {:.1} us | {:.2} | {:.2} | {}{:.2} | {:.2} | {:.2} | {}{:.2} |",
            r.path.name(),
            r.size,
            r.p50,
            r.p99,
            r.p999,
            if r.sender_bound { ">= " } else { "" },
            r.rate,
            if r.sender_bound {
                " (sending thread saturated)"
            } else {
                ""
            },
            r.cpu_app,
            fwd,
            total,
            r.p50 / f50,
            r.p99 / f99,
            if r.sender_bound { ">= " } else { "" },
            r.rate as f64 / frate,
            r.p50 / v50,
            r.p99 / v99,
            if vx_bound(r.size) { "<= " } else { "" },
            r.rate as f64 / vrate
        );
    }
}
