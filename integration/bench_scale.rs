//! What the relay costs in a big cluster with several virtual routers. Not
//! a test: it prints figures.
//!
//! `cargo bench --bench lab -- scale` (as root): the cluster of the scale test
//! (lab/vrrp_cluster.rs: SCALE_HOSTS hosts, default 16, each with the
//! relay and keepalived running SCALE_VRIDS VRRP instances, default 4,
//! advertising every SCALE_ADVERT_MS, default 1000) is built and left to
//! elect one master per VRID; then, over SCALE_SECONDS (default 60), each
//! relay's CPU time (/proc/<pid>/schedstat), wake-ups (context switches),
//! the packets it relayed (sealed from mcast0), the datagrams it sent
//! (each relayed packet once per peer, plus keepalives and their answers)
//! and the packets it injected into mcast0, and its resident memory; last,
//! the master of the first VRID is killed (`kill -9`) and the time until
//! its VIP is on the next host in line is taken from `ip monitor`.

use crate::lab;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use lab::vrrp_cluster::VrrpCluster;
use lab::{Lab, status_field, switches};

/// A relay's CPU time (ns) and context switches so far.
fn usage(lab: &Lab, h: usize) -> (u64, u64) {
    let pid = lab.relay_pid(h);
    (lab::cpu_ns(pid), switches(pid))
}

fn counter(c: &HashMap<String, u64>, name: &str) -> u64 {
    c.get(name).copied().unwrap_or(0)
}

pub fn main() {
    if !lab::bench_may_run("scale benchmark") {
        return;
    }
    let hosts = lab::env_or("SCALE_HOSTS", 16) as usize;
    let instances = lab::env_or("SCALE_VRIDS", 4) as usize;
    let advert_ms = lab::env_or("SCALE_ADVERT_MS", 1000);
    let secs = lab::env_or("SCALE_SECONDS", 60);
    println!("relay binary: {}", lab::relay_bin().display());

    let mut lab = Lab::new(hosts);
    let mut cluster = VrrpCluster::start(&mut lab, instances, advert_ms as f64 / 1000.0);
    cluster.converge(&lab, Duration::from_secs(60));
    let masters: Vec<String> = (0..instances)
        .map(|i| {
            let m = cluster.master(i);
            assert_eq!(m, cluster.preferred(i), "VRID {}", cluster.vrid(i));
            format!("VRID {} h{m}", cluster.vrid(i))
        })
        .collect();
    println!(
        "{hosts} hosts, {instances} VRRP instances (VRRPv3, advert {advert_ms} ms), one master each: {}",
        masters.join(", ")
    );

    // Counters outside the CPU window: asking for them (SIGUSR1) wakes
    // the relays, which must not count as their work. Reading them takes a
    // while per relay, so each relay's rates use its own reading times.
    let counters = |lab: &Lab| -> Vec<(Instant, HashMap<String, u64>)> {
        lab.host_ids()
            .map(|h| (Instant::now(), lab.relay_counters(h)))
            .collect()
    };
    let counters_before = counters(&lab);
    let before: Vec<(u64, u64)> = lab.host_ids().map(|h| usage(&lab, h)).collect();
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let after: Vec<(u64, u64)> = lab.host_ids().map(|h| usage(&lab, h)).collect();
    let elapsed = start.elapsed().as_secs_f64();
    let counters_after = counters(&lab);

    println!("\nover {elapsed:.0} s, per relay:");
    println!(
        "{:<5} {:>8} {:>11} {:>10} {:>8} {:>11} {:>9}",
        "node", "CPU %", "wake-ups/s", "relayed/s", "sent/s", "injected/s", "VmRSS kB"
    );
    let mut total = [0f64; 6];
    let mut refused = 0;
    for (i, h) in lab.host_ids().enumerate() {
        let ((cpu0, sw0), (cpu1, sw1)) = (before[i], after[i]);
        let ((t0, c0), (t1, c)) = (&counters_before[i], &counters_after[i]);
        let window = t1.duration_since(*t0).as_secs_f64();
        let rate = |name: &str| counter(c, name).saturating_sub(counter(c0, name)) as f64 / window;
        let row = [
            cpu1.saturating_sub(cpu0) as f64 / 1e9 / elapsed * 100.0,
            sw1.saturating_sub(sw0) as f64 / elapsed,
            rate("sealed"),
            rate("sent"),
            rate("injected"),
            status_field(lab.relay_pid(h), "VmRSS:") as f64,
        ];
        println!(
            "{:<5} {:>8.3} {:>11.1} {:>10.2} {:>8.1} {:>11.2} {:>9.0}",
            format!("h{h}"),
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            row[5]
        );
        for (t, r) in total.iter_mut().zip(row) {
            *t += r;
        }
        refused += lab::refused(c, &[]);
    }
    println!(
        "{:<5} {:>8.3} {:>11.1} {:>10.2} {:>8.1} {:>11.2} {:>9.0}",
        "total", total[0], total[1], total[2], total[3], total[4], total[5]
    );
    let n = hosts as f64;
    println!(
        "{:<5} {:>8.3} {:>11.1} {:>10.2} {:>8.1} {:>11.2} {:>9.0}",
        "mean",
        total[0] / n,
        total[1] / n,
        total[2] / n,
        total[3] / n,
        total[4] / n,
        total[5] / n
    );
    // Every datagram sent is received once, by its peer: each costs its
    // sender a seal and a sendto, its receiver a recvfrom, an open and,
    // for a relayed packet, a write into mcast0.
    println!(
        "relay CPU per datagram, sender and receiver together: {:.1} µs ({:.0} datagrams/s in the cluster, {:.0} of them keepalives and answers)",
        total[0] / 100.0 * 1e6 / total[3].max(1e-9),
        total[3],
        total[3] - total[2] * (n - 1.0)
    );
    println!("datagrams refused by the relays since they started: {refused}");

    let victim = 0;
    let f = cluster.crash_master(&mut lab, victim, Duration::from_secs(30));
    let next = cluster.master(victim);
    println!(
        "\nfailover: kill -9 of h{}'s keepalived (master of VRID {}): VIP on h{} after {:.0} ms \
         (that host's master-down interval {:.0} ms); VIPs appearing elsewhere meanwhile: {:?}",
        f.from,
        cluster.vrid(victim),
        f.first.host,
        f.took.as_secs_f64() * 1e3,
        cluster
            .vrrp
            .master_down(cluster.priority(victim, next))
            .as_secs_f64()
            * 1e3,
        f.others
            .iter()
            .map(|a| format!("{} on h{}", cluster.vips[a.vip], a.host))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        (f.first.vip, f.first.host),
        (victim, next),
        "the crashed master's VIP must move first, to the next in line"
    );
}
