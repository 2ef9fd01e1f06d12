//! What the relay costs when nothing happens, and how big it is. Not a
//! test: it prints figures.
//!
//! `cargo bench --bench lab -- idle` (as root):
//! * an idle 3-host cluster (relays only, keepalives every second): each
//!   relay's CPU time (from /proc/<pid>/schedstat) and wake-ups (context
//!   switches, from /proc/<pid>/status) over IDLE_SECONDS (default 60);
//! * one relay with 63 configured peers (h2 and 62 addresses on the lab's
//!   cloud that nobody holds, so hellos to them die there): CPU and
//!   wake-ups over IDLE_SECONDS / 2, then resident memory (VmRSS, VmHWM).

use crate::lab;

use std::time::{Duration, Instant};

use lab::{Lab, RelayOptions, status_field, switches};

pub fn main() {
    if !lab::bench_may_run("idle benchmark") {
        return;
    }
    let secs = lab::env_or("IDLE_SECONDS", 60);
    println!("relay binary: {}", lab::relay_bin().display());

    let mut lab = Lab::new(3);
    lab.start_relays(RelayOptions::default());
    // Past the start-up handshakes.
    std::thread::sleep(Duration::from_secs(2));
    let pids: Vec<u32> = lab.host_ids().map(|h| lab.relay_pid(h)).collect();
    let before: Vec<(u64, u64)> = pids
        .iter()
        .map(|p| (lab::cpu_ns(*p), switches(*p)))
        .collect();
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let elapsed = start.elapsed().as_secs_f64();
    println!("idle 3-host cluster, keepalive 1 s, {elapsed:.0} s:");
    for (h, (pid, (c0, s0))) in pids.iter().zip(&before).enumerate() {
        let cpu = lab::cpu_ns(*pid).saturating_sub(*c0) as f64 / 1e9;
        let wakeups = switches(*pid).saturating_sub(*s0) as f64;
        println!(
            "  h{}: CPU {:.4} % of a core ({:.1} ms), {:.1} wake-ups/s, VmRSS {} kB",
            h + 1,
            cpu / elapsed * 100.0,
            cpu * 1e3,
            wakeups / elapsed,
            status_field(*pid, "VmRSS:")
        );
    }
    drop(lab);

    // One relay, 64 peers: h1 of a lab whose members 3 to 64 exist only in
    // its configuration (a lab has at least two hosts).
    let mut lab = Lab::new(2);
    let members: Vec<usize> = (1..=64).collect();
    lab.set_members(&members);
    lab.start_relays(RelayOptions::default());
    std::thread::sleep(Duration::from_secs(2));
    let pid = lab.relay_pid(1);
    let (c0, s0) = (lab::cpu_ns(pid), switches(pid));
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs((secs / 2).max(5)));
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = lab::cpu_ns(pid).saturating_sub(c0) as f64 / 1e9;
    println!(
        "one relay with 63 peers (64 nodes, 62 of them never answer), {elapsed:.0} s: CPU {:.4} % of a core, {:.1} wake-ups/s, VmRSS {} kB, VmHWM {} kB",
        cpu / elapsed * 100.0,
        switches(pid).saturating_sub(s0) as f64 / elapsed,
        status_field(pid, "VmRSS:"),
        status_field(pid, "VmHWM:")
    );
}
