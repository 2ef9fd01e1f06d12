//! Spurious failovers in a lossy, starved cloud: native multicast against
//! the relay with 1, 2 and 3 copies per packet, with two paths (the first
//! dead all along), and with real-time priority. Not a test: it prints one
//! table of figures.
//!
//! `sudo cargo bench --bench lossy` (LOSSY_SECS per cell, default 150;
//! LOSSY_SEED for the burst outages' times). `-- chaos` runs the chaos
//! schedule of `integration/lab/chaos.rs` instead, for CHAOS_SECS (default
//! 1800; CHAOS_SEED replays a schedule).
//!
//! keepalived VRRPv3 on 3 hosts per row, priorities 200, 150 and 100; the
//! master (200) is never killed, so every VIP another host gains is a
//! spurious takeover, counted from the kernel's address events. The rows
//! of one column run at the same time in one lab, one group of 3 hosts
//! each (their own relay membership, VRID and VIP; the native group's
//! multicast allowed through the bridge among its own ports only), so they
//! see the same loss and the same outages; the column with no impairment
//! shows what that concurrency costs by itself. Impairments hit every frame
//! the cloud forwards: random loss on each bridge, burst outages of 50 to
//! 500 ms every 2 to 8 s (each bridge its own), or a busy loop on every
//! core at normal priority. A row whose keys this relay binary refuses is
//! left out and says so.

mod lab;

use std::time::{Duration, Instant};

use lab::Lab;
use lab::groups::Group;
use lab::holders::{Timeline, WindowStats};
use lab::impair::{Bridge, Starve};
use lab::keepalived::{self, Keepalived, Vrrp};

const PRIORITY: [u8; 3] = [200, 150, 100];
/// Row i's VIP is 10.77.0.(VIP_BASE + i) and its VRID VIP_BASE + i, above
/// the lab's own VIPs.
const VIP_BASE: usize = 110;

/// One way of running the cluster, on its own 3 hosts.
struct Row {
    label: String,
    native: bool,
    node: Vec<&'static str>,
    two_paths: bool,
    /// Run it without its `[node]` lines if the binary refuses them (the
    /// relay of before redundancy sends one copy).
    fallback: bool,
    hosts: Vec<usize>,
    /// Why it does not run, if it does not.
    skipped: Option<String>,
}

fn rows() -> Vec<Row> {
    let row = |label: &str, node: &[&'static str], two_paths, fallback| Row {
        label: label.to_string(),
        native: false,
        node: node.to_vec(),
        two_paths,
        fallback,
        hosts: Vec::new(),
        skipped: None,
    };
    let mut rows = vec![
        Row {
            native: true,
            ..row("native multicast", &[], false, false)
        },
        row("relay redundancy 1", &["redundancy = 1"], false, true),
        row("relay redundancy 2", &["redundancy = 2"], false, false),
        row("relay redundancy 3", &["redundancy = 3"], false, false),
        row(
            "relay 2 paths, 1st dead",
            &["redundancy = 2", "path_mode = \"all\""],
            true,
            false,
        ),
        row(
            "relay red. 2, rt prio 50",
            &[
                "redundancy = 2",
                "realtime_priority = 50",
                "lock_memory = true",
            ],
            false,
            false,
        ),
    ];
    for (i, r) in rows.iter_mut().enumerate() {
        r.hosts = (1..=3).map(|k| 3 * i + k).collect();
    }
    rows
}

#[derive(Clone, Copy, PartialEq)]
enum Condition {
    Clean,
    Loss(u32),
    Bursts,
    Starved,
}

impl Condition {
    fn label(self) -> String {
        match self {
            Condition::Clean => "no impairment".into(),
            Condition::Loss(pm) => format!("{} % loss", pm / 10),
            Condition::Bursts => "burst outages".into(),
            Condition::Starved => "CPU starvation".into(),
        }
    }
}

const CONDITIONS: [Condition; 5] = [
    Condition::Clean,
    Condition::Loss(100),
    Condition::Loss(200),
    Condition::Bursts,
    Condition::Starved,
];
const ADVERTS: [f64; 2] = [0.1, 1.0];

/// One cell of the table, for one row.
struct Cell {
    advert: f64,
    condition: Condition,
    row: usize,
    secs: f64,
    stats: WindowStats,
    /// Outages in the run, or frames the loss rule dropped on br0.
    impairment: String,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        println!("lossy: benchmark");
        println!("chaos: benchmark");
        return;
    }
    let names: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if names.contains(&"chaos") {
        if lab::bench_may_run("chaos benchmark") {
            lab::chaos::main(lab::env_or("CHAOS_SECS", 1800));
        }
        return;
    }
    if !names.is_empty() && !names.contains(&"lossy") {
        eprintln!(
            "lossy benchmarks: none named {}; they are lossy, chaos",
            names.join(", ")
        );
        return;
    }
    if lab::bench_may_run("lossy benchmark") {
        lossy();
    }
}

fn lossy() {
    lab::require_programs(keepalived::PROGRAMS);
    let secs = lab::env_or("LOSSY_SECS", 150);
    let seed = lab::env_or("LOSSY_SEED", 16);
    let mut rows = rows();
    let cells = ADVERTS.len() * CONDITIONS.len();
    println!(
        "lossy: spurious takeovers, keepalived VRRPv3 on 3 hosts per row, {} rows at once, {cells} cells of {secs} s (about {} min), burst seed {seed}",
        rows.len(),
        (cells as u64 * (secs + 20) + 60) / 60
    );
    println!("relay binary: {}", lab::relay_bin().display());
    // What the systemd unit's LimitMEMLOCK=infinity gives a relay with
    // lock_memory: the relays inherit this process's limit.
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit reads the struct we pass and changes only limits.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) } != 0 {
        // This machine may deny even root CAP_SYS_RESOURCE: the real-time
        // row then runs without locked memory rather than not at all.
        println!(
            "cannot lift RLIMIT_MEMLOCK ({}): the real-time row runs without lock_memory",
            std::io::Error::last_os_error()
        );
        for r in rows.iter_mut() {
            if r.node.contains(&"lock_memory = true") {
                r.node.retain(|l| *l != "lock_memory = true");
                r.label += " (no mlock)";
            }
        }
    }
    let mut lab = Lab::new(3 * rows.len());
    let two_path_hosts: Vec<usize> = rows
        .iter()
        .filter(|r| r.two_paths)
        .flat_map(|r| r.hosts.clone())
        .collect();
    lab.add_second_path(&two_path_hosts);
    for r in rows.iter_mut().filter(|r| !r.native) {
        let mut group = Group {
            hosts: r.hosts.clone(),
            node: r.node.iter().map(|l| l.to_string()).collect(),
            two_paths: r.two_paths,
        };
        if let Some(why) = lab.group_config_refused(&group) {
            if r.fallback {
                r.label += " (no key: today's)";
                group.node.clear();
            } else {
                println!(
                    "  {}: left out, this relay refuses its keys: {why}",
                    r.label
                );
                r.skipped = Some(why);
                continue;
            }
        }
        lab.write_group_config(&group);
        for &h in &r.hosts {
            lab.start_relay(h);
        }
    }
    let native: Vec<usize> = rows
        .iter()
        .filter(|r| r.native)
        .flat_map(|r| r.hosts.clone())
        .collect();
    lab.allow_multicast_among(&native);
    lab.wait_relays_confirmed(Duration::from_secs(30));
    let dead_path: Vec<usize> = rows
        .iter()
        .filter(|r| r.two_paths && r.skipped.is_none())
        .flat_map(|r| r.hosts.clone())
        .collect();
    if !dead_path.is_empty() {
        lab.blackout(Bridge::Br0, &dead_path);
    }

    let active: Vec<usize> = (0..rows.len())
        .filter(|i| rows[*i].skipped.is_none())
        .collect();
    let vips: Vec<String> = (0..rows.len())
        .map(|i| format!("10.77.0.{}", VIP_BASE + i))
        .collect();
    let all: Vec<usize> = lab.host_ids().collect();
    let timeline = Timeline::start(&lab, &all, &vips);
    let wanted: Vec<(usize, usize)> = active.iter().map(|&i| (i, rows[i].hosts[0])).collect();
    let mut table = Vec::new();
    for (a, advert) in ADVERTS.into_iter().enumerate() {
        let vrrp = Vrrp::v3(advert);
        let mut kas = Vec::new();
        for &i in &active {
            kas.extend(start_row(&mut lab, &rows[i], i, vrrp, &vips[i]));
        }
        let settle = vrrp.master_down(PRIORITY[2]) + Duration::from_millis(500);
        for (c, condition) in CONDITIONS.into_iter().enumerate() {
            if !timeline.settled(&wanted, settle, Duration::from_secs(60)) {
                eprintln!(
                    "  advert {advert}: not every row settled on its master within 60 s; holders {:?}",
                    wanted
                        .iter()
                        .map(|(v, _)| timeline.holders(*v))
                        .collect::<Vec<_>>()
                );
            }
            let cell_seed = seed
                .wrapping_mul(31)
                .wrapping_add((a * CONDITIONS.len() + c) as u64);
            let (from, to, impairment) = run_cell(&lab, condition, secs, cell_seed);
            for &i in &active {
                let stats = timeline.window(i, rows[i].hosts[0], from, to);
                let cell = Cell {
                    advert,
                    condition,
                    row: i,
                    secs: to.duration_since(from).as_secs_f64(),
                    stats,
                    impairment: impairment.clone(),
                };
                eprintln!("  {}", line(&cell, &rows));
                table.push(cell);
            }
        }
        for ka in kas {
            ka.stop(&mut lab);
        }
    }
    print_table(&table, &rows);
}

/// keepalived on the 3 hosts of row `i`, adverts through the relay or, for
/// the native row, on eth0.
fn start_row(lab: &mut Lab, row: &Row, i: usize, vrrp: Vrrp, vip: &str) -> Vec<Keepalived> {
    let vrrp = Vrrp {
        interface: if row.native { "eth0" } else { "mcast0" },
        ..vrrp
    };
    let vrid = u8::try_from(VIP_BASE + i).expect("VRIDs fit in a u8");
    row.hosts
        .iter()
        .enumerate()
        .map(|(k, &h)| {
            let conf = keepalived::global_defs(h)
                + &vrrp.instance(&format!("r{i}"), vrid, PRIORITY[k], vip);
            lab.start_keepalived_conf(h, &conf)
        })
        .collect()
}

/// Runs one condition for `secs`; its start, its end, and what the
/// impairment did.
fn run_cell(lab: &Lab, condition: Condition, secs: u64, seed: u64) -> (Instant, Instant, String) {
    let length = Duration::from_secs(secs);
    match condition {
        Condition::Clean => {
            let from = Instant::now();
            std::thread::sleep(length);
            (from, Instant::now(), String::new())
        }
        Condition::Loss(pm) => {
            lab.set_loss(Bridge::Br0, pm);
            lab.set_loss(Bridge::Br1, pm);
            let from = Instant::now();
            std::thread::sleep(length);
            let to = Instant::now();
            let dropped = lab.loss_drops(Bridge::Br0);
            lab.clear_loss(Bridge::Br0);
            lab.clear_loss(Bridge::Br1);
            (from, to, format!("{dropped} frames dropped on br0"))
        }
        Condition::Bursts => {
            let outages = (2000, 8000);
            let length_ms = (50, 500);
            let b0 = lab.start_bursts(Bridge::Br0, seed, outages, length_ms);
            let b1 = lab.start_bursts(Bridge::Br1, seed ^ 0xb1, outages, length_ms);
            let from = Instant::now();
            std::thread::sleep(length);
            let to = Instant::now();
            let (s0, s1) = (b0.stop(), b1.stop());
            (
                from,
                to,
                format!(
                    "{} outages on br0 ({:.1} s), {} on br1 ({:.1} s)",
                    s0.outages,
                    s0.down.as_secs_f64(),
                    s1.outages,
                    s1.down.as_secs_f64()
                ),
            )
        }
        Condition::Starved => {
            let starve = Starve::start(lab);
            let from = Instant::now();
            std::thread::sleep(length);
            let to = Instant::now();
            let cores = starve.cores();
            drop(starve);
            (from, to, format!("{cores} busy loops"))
        }
    }
}

fn per_hour(n: u64, secs: f64) -> f64 {
    n as f64 * 3600.0 / secs.max(1e-9)
}

fn line(c: &Cell, rows: &[Row]) -> String {
    format!(
        "{:>6} {:<15} {:>6.0} {:<38} {:>9} {:>10.0} {:>9.0} {:>6}  {}",
        c.advert,
        c.condition.label(),
        c.secs,
        rows[c.row].label,
        c.stats.takeovers,
        per_hour(c.stats.takeovers, c.secs),
        c.stats.longest_not_one.as_secs_f64() * 1e3,
        c.stats.not_one_spells,
        c.impairment
    )
}

fn print_table(table: &[Cell], rows: &[Row]) {
    println!();
    println!(
        "{:>6} {:<15} {:>6} {:<38} {:>9} {:>10} {:>9} {:>6}  impairment",
        "advert", "condition", "secs", "row", "takeovers", "per hour", "max !1 ms", "spells"
    );
    for c in table {
        println!("{}", line(c, rows));
    }
    println!(
        "(takeovers: VIPs gained by a host that is not the master; max !1: the longest time with no holder or more than one; spells: how many such times)"
    );
    let clean: u64 = table
        .iter()
        .filter(|c| c.condition == Condition::Clean)
        .map(|c| c.stats.takeovers)
        .sum();
    println!(
        "with no impairment, all rows at once: {clean} takeovers{}",
        if clean == 0 {
            " (the concurrency causes none)"
        } else {
            " (WARNING: the set-up itself causes takeovers; the other cells overstate)"
        }
    );
    let find = |advert: f64, condition: Condition, label: &str| {
        table.iter().find(|c| {
            c.advert == advert && c.condition == condition && rows[c.row].label.starts_with(label)
        })
    };
    let at20 = Condition::Loss(200);
    match (
        find(0.1, at20, "native"),
        find(0.1, at20, "relay redundancy 2"),
    ) {
        (Some(n), Some(r)) => {
            let (rn, rr) = (
                per_hour(n.stats.takeovers, n.secs),
                per_hour(r.stats.takeovers, r.secs),
            );
            let ratio = if r.stats.takeovers == 0 {
                format!(
                    "more than {:.0}x (relay none: under one in the same time)",
                    rn / per_hour(1, r.secs)
                )
            } else {
                format!("{:.1}x", rn / rr)
            };
            println!(
                "20 % loss, advert 0.1: native {} takeovers, relay redundancy 2 {}: native/relay {ratio} (target >= 10x)",
                n.stats.takeovers, r.stats.takeovers
            );
        }
        _ => {
            println!("20 % loss, advert 0.1: native/relay redundancy 2 not measured (row left out)")
        }
    }
    let two: Vec<String> = table
        .iter()
        .filter(|c| rows[c.row].two_paths && c.condition != Condition::Clean)
        .map(|c| {
            format!(
                "{} {}: {}",
                c.advert,
                c.condition.label(),
                c.stats.takeovers
            )
        })
        .collect();
    if two.is_empty() {
        println!("two paths, first dead: not measured (row left out)");
    } else {
        println!(
            "two paths, first dead, takeovers (target 0): {}",
            two.join("; ")
        );
    }
}
