//! Failover time of stock keepalived through mcast-relay against native
//! multicast (the lab's bridge opened), in the same run, several trials of
//! each. Not a test: it prints figures.
//!
//! `sudo cargo bench --bench failover` (FAILOVER_TRIALS=N, default 5).
//! A trial: h1 (priority 200) is the single master; its keepalived is
//! killed like a crash; the time until h2 (priority 150) adds the VIP is
//! taken from `ip monitor`; then h1 restarts and preempts again.

#[path = "lab/mod.rs"]
mod lab;

use std::time::{Duration, Instant};

use lab::keepalived::{Keepalived, Vrrp};
use lab::vip::{self, Watch};
use lab::{Lab, RelayOptions};

const PRIORITY: [u8; 3] = [200, 150, 100];

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` and `cargo test --benches` probes
    }
    if !lab::root_or_skip("failover benchmark") {
        return;
    }
    lab::require_programs(lab::keepalived::PROGRAMS);
    let trials: usize = std::env::var("FAILOVER_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(5);
    println!(
        "keepalived VRRPv3 failover (kill -9 of the master until the VIP is on the next node), {trials} trials each"
    );
    println!("relay binary: {}", lab::relay_bin().display());
    let mut lab = Lab::new(3);
    lab.start_relays(RelayOptions::default());
    let watch = Watch::start(&lab, vip::VIP4);
    let mut rows = Vec::new();
    for advert in [1.0, 0.1] {
        let relay = Vrrp::v3(advert);
        lab.close_bridge();
        let through_relay = run_trials(&mut lab, &watch, relay, trials);
        lab.open_bridge();
        let native = Vrrp {
            interface: "eth0",
            ..relay
        };
        let native_t = run_trials(&mut lab, &watch, native, trials);
        rows.push((
            advert,
            relay.master_down(PRIORITY[1]),
            through_relay,
            native_t,
        ));
    }
    println!();
    println!(
        "advert_int  master-down   relay median (min..max)      native median (min..max)     relay/native"
    );
    for (advert, mdi, r, n) in rows {
        println!(
            "{advert:>8.1} s  {:>8.0} ms  {:>7.0} ms ({:>5.0}..{:>5.0})        {:>7.0} ms ({:>5.0}..{:>5.0})        {:.2}",
            ms(mdi),
            ms(median(&r)),
            ms(r[0]),
            ms(r[r.len() - 1]),
            ms(median(&n)),
            ms(n[0]),
            ms(n[n.len() - 1]),
            median(&r).as_secs_f64() / median(&n).as_secs_f64()
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Sorted in place by the caller; the middle value (mean of the two middle).
fn median(sorted: &[Duration]) -> Duration {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    }
}

fn run_trials(lab: &mut Lab, watch: &Watch, vrrp: Vrrp, trials: usize) -> Vec<Duration> {
    let mode = if vrrp.interface == "mcast0" {
        "relay"
    } else {
        "native"
    };
    let all: Vec<usize> = lab.host_ids().collect();
    let settle = vrrp.master_down(PRIORITY[2]) + Duration::from_millis(500);
    let timeout = Duration::from_secs(30);
    let mut kas: Vec<Option<Keepalived>> = all
        .iter()
        .map(|h| Some(lab.start_keepalived(*h, vrrp, PRIORITY[h - 1])))
        .collect();
    let mut times = Vec::with_capacity(trials);
    for i in 0..trials {
        vip::converge_on(lab, vrrp.vip(), &all, 1, settle, timeout);
        watch.clear();
        kas[0].take().expect("h1 runs").crash(lab);
        let killed = Instant::now();
        let added = watch
            .next_added(&[1], timeout)
            .expect("no node took the VIP over");
        let took = added.at.duration_since(killed);
        println!(
            "  advert {:>3} s  {mode:<6} trial {}: h1 -> h{} in {:.0} ms",
            vrrp.advert,
            i + 1,
            added.host,
            ms(took)
        );
        times.push(took);
        lab.exec(
            1,
            &[
                "ip",
                "addr",
                "del",
                &format!("{}/24", vrrp.vip()),
                "dev",
                "eth0",
            ],
        );
        kas[0] = Some(lab.start_keepalived(1, vrrp, PRIORITY[0]));
    }
    vip::converge_on(lab, vrrp.vip(), &all, 1, settle, timeout);
    for ka in kas.into_iter().flatten() {
        ka.stop(lab);
    }
    lab::wait_for("keepalived to release the VIP", timeout, || {
        vip::holders(lab, vrrp.vip()).is_empty().then_some(())
    });
    times.sort();
    times
}
