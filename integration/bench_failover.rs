//! Failover time of stock keepalived (relays in tun mode) and stock ucarp
//! (relays in tap mode) through mcast-relay against native multicast (the
//! lab's bridge opened), in the same run, several trials of each. Not a
//! test: it prints figures.
//!
//! `sudo cargo bench --bench lab -- failover` (FAILOVER_TRIALS=N, default 5).
//! A trial: h1 (keepalived priority 200, ucarp advskew 0) is the single
//! master; it is killed like a crash; the time until h2 (priority 150,
//! advskew 10) adds the VIP is taken from `ip monitor`; then h1 restarts
//! and preempts again.

use crate::lab;

use std::time::{Duration, Instant};

use lab::keepalived::{Keepalived, Vrrp};
use lab::ucarp::{Carp, Ucarp};
use lab::vip::{self, Watch};
use lab::{Lab, RelayOptions};

const PRIORITY: [u8; 3] = [200, 150, 100];
const ADVSKEW: [u8; 3] = [0, 10, 20];

/// One failover tool as the trials drive it.
#[derive(Clone, Copy)]
enum Tool {
    Keepalived(Vrrp),
    Ucarp(Carp),
}

enum Running {
    Keepalived(Keepalived),
    Ucarp(Ucarp),
}

impl Tool {
    fn start(self, lab: &mut Lab, h: usize) -> Running {
        match self {
            Tool::Keepalived(v) => Running::Keepalived(lab.start_keepalived(h, v, PRIORITY[h - 1])),
            Tool::Ucarp(c) => Running::Ucarp(lab.start_ucarp(h, c, ADVSKEW[h - 1])),
        }
    }

    fn relayed(self) -> bool {
        match self {
            Tool::Keepalived(v) => v.interface == "mcast0",
            Tool::Ucarp(c) => c.interface == "mcast0",
        }
    }

    /// h2's master-down time: the theory a failover is measured against.
    fn master_down(self) -> Duration {
        match self {
            Tool::Keepalived(v) => v.master_down(PRIORITY[1]),
            Tool::Ucarp(c) => c.master_down(ADVSKEW[1]),
        }
    }

    /// How long one holder must stay alone before it counts as elected.
    fn settle(self) -> Duration {
        let slowest = match self {
            Tool::Keepalived(v) => v.master_down(PRIORITY[2]),
            Tool::Ucarp(c) => c.master_down(ADVSKEW[2]),
        };
        slowest + Duration::from_millis(500)
    }

    fn vip_prefix(self) -> &'static str {
        match self {
            Tool::Keepalived(_) => "24",
            Tool::Ucarp(_) => "32",
        }
    }

    fn label(self) -> String {
        match self {
            Tool::Keepalived(v) => format!("keepalived VRRPv3 advert_int {} s", v.advert),
            Tool::Ucarp(c) => format!("ucarp advbase {} s", c.advbase),
        }
    }
}

impl Running {
    fn crash(self, lab: &mut Lab) {
        match self {
            Running::Keepalived(k) => k.crash(lab),
            Running::Ucarp(u) => u.crash(lab),
        }
    }

    fn stop(self, lab: &mut Lab) {
        match self {
            Running::Keepalived(k) => k.stop(lab),
            Running::Ucarp(u) => u.stop(lab),
        }
    }
}

pub fn main() {
    if !lab::bench_may_run("failover benchmark") {
        return;
    }
    lab::require_programs(lab::keepalived::PROGRAMS);
    lab::require_programs(lab::ucarp::PROGRAMS);
    let trials = lab::env_or("FAILOVER_TRIALS", 5) as usize;
    println!(
        "failover (kill -9 of the master until the VIP is on the next node), {trials} trials each"
    );
    println!("relay binary: {}", lab::relay_bin().display());
    let mut rows = Vec::new();
    {
        let mut lab = Lab::new(3);
        lab.start_relays(RelayOptions::default());
        for advert in [1.0, 0.1] {
            let relay = Vrrp::v3(advert);
            let native = Vrrp {
                interface: "eth0",
                ..relay
            };
            rows.push(compare(
                &mut lab,
                Tool::Keepalived(relay),
                Tool::Keepalived(native),
                trials,
            ));
        }
    }
    {
        let mut lab = Lab::new(3);
        lab.start_relays(RelayOptions {
            tap: true,
            presets: vec!["carp"],
            ..RelayOptions::default()
        });
        let relay = Carp {
            advbase: 1,
            interface: "mcast0",
        };
        let native = Carp {
            interface: "eth0",
            ..relay
        };
        rows.push(compare(
            &mut lab,
            Tool::Ucarp(relay),
            Tool::Ucarp(native),
            trials,
        ));
    }
    println!();
    println!(
        "{:<34} {:>11}   {:<28} {:<28} relay/native",
        "tool", "master-down", "relay median (min..max)", "native median (min..max)"
    );
    for (tool, r, n) in rows {
        println!(
            "{:<34} {:>8.0} ms   {:>7.0} ms ({:>5.0}..{:>5.0})      {:>7.0} ms ({:>5.0}..{:>5.0})      {:.2}",
            tool.label(),
            ms(tool.master_down()),
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

/// Trials through the relay (bridge closed), then native (bridge open).
fn compare(
    lab: &mut Lab,
    relay: Tool,
    native: Tool,
    trials: usize,
) -> (Tool, Vec<Duration>, Vec<Duration>) {
    let watch = Watch::start(lab, vip::VIP4);
    lab.close_bridge();
    let r = run_trials(lab, &watch, relay, trials);
    lab.open_bridge();
    let n = run_trials(lab, &watch, native, trials);
    (relay, r, n)
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

fn run_trials(lab: &mut Lab, watch: &Watch, tool: Tool, trials: usize) -> Vec<Duration> {
    let mode = if tool.relayed() { "relay" } else { "native" };
    let all: Vec<usize> = lab.host_ids().collect();
    let timeout = Duration::from_secs(30);
    let mut running: Vec<Option<Running>> = all.iter().map(|h| Some(tool.start(lab, *h))).collect();
    let mut times = Vec::with_capacity(trials);
    for i in 0..trials {
        vip::converge_on(lab, vip::VIP4, &all, 1, tool.settle(), timeout);
        watch.clear();
        running[0].take().expect("h1 runs").crash(lab);
        let killed = Instant::now();
        let added = watch
            .next_added(&[1], timeout)
            .expect("no node took the VIP over");
        let took = added.at.duration_since(killed);
        println!(
            "  {} {mode:<6} trial {}: h1 -> h{} in {:.0} ms",
            tool.label(),
            i + 1,
            added.host,
            ms(took)
        );
        times.push(took);
        let stale = format!("{}/{}", vip::VIP4, tool.vip_prefix());
        lab.exec(1, &["ip", "addr", "del", &stale, "dev", "eth0"]);
        running[0] = Some(tool.start(lab, 1));
    }
    vip::converge_on(lab, vip::VIP4, &all, 1, tool.settle(), timeout);
    for r in running.into_iter().flatten() {
        r.stop(lab);
    }
    lab::wait_for("the tool to release the VIP", timeout, || {
        vip::holders(lab, vip::VIP4).is_empty().then_some(())
    });
    times.sort();
    times
}
