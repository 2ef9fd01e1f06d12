//! More than 255 virtual routers per host: one relay per interface. Not a
//! test: it prints figures.
//!
//! `sudo cargo bench --bench lab -- vrids`: 3 hosts, each with
//! ceil(INSTANCES / 250) relay instances (mcastK, port 7112 + K, each its
//! own `mcast-relay run -c`, as `mcast-relay@NAME.service` runs them) and
//! one keepalived with INSTANCES (default 1000) VRRPv3 instances at
//! ADVERT_MS (default 1000), h1 the preferred master of all (see
//! lab/vrids.rs). Once every VIP is on h1 alone, for STEADY_SECS (default
//! 300) it samples every ~250 ms who holds each VIP and counts every
//! sample in which a VIP is on no host, on two, or on another host than
//! h1 (a spurious takeover); meanwhile each relay's and keepalived's CPU
//! (/proc/<pid>/schedstat), wake-ups (context switches) and RSS, and the
//! machine's user/system/softirq time (/proc/stat). Then h1's keepalived
//! is killed (`kill -9`) and the VIPs are polled as fast as `ip addr`
//! allows until each is on exactly one of h2/h3: the time from the kill to
//! the first and to the last VIP moved. Last, every relay's counters
//! (`mcast-relay status --json` on each instance's socket): drops by
//! reason and rate-limited packets.

use crate::lab;

use std::collections::BTreeMap;
use std::fs;
use std::thread::sleep;
use std::time::{Duration, Instant};

use lab::vrids::Vrids;
use lab::{Lab, cpu_ns, status_field, switches};

/// The machine's CPU time so far, in clock ticks: (user+nice, system,
/// softirq+irq, idle+iowait, total).
fn proc_stat() -> [u64; 5] {
    let text = fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<u64> = text
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|w| w.parse().ok())
        .collect();
    let g = |i: usize| f.get(i).copied().unwrap_or(0);
    [
        g(0) + g(1),
        g(2),
        g(5) + g(6),
        g(3) + g(4),
        f.iter().take(8).sum(),
    ]
}

/// Each relay instance's (host, instance, pid).
fn relays(lab: &Lab, v: &Vrids) -> Vec<(usize, usize, u32)> {
    let mut all = Vec::new();
    for h in lab.host_ids() {
        for i in 0..v.interfaces() {
            all.push((h, i, lab.instance_pid(h, i)));
        }
    }
    all
}

/// A relay instance's counters: drops by reason (duplicates left out),
/// packets the peers' rate limits refused, and injected/sealed/sent.
struct Counters {
    drops: BTreeMap<String, u64>,
    rate_limited: u64,
    injected: u64,
    sealed: u64,
    sent: u64,
}

fn counters(lab: &Lab, h: usize, i: usize) -> Counters {
    let st = lab.instance_status(h, i);
    let c = &st["counters"];
    let drops = c["drops"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| *k != "duplicate")
                .map(|(k, n)| (k.clone(), n.as_u64().unwrap_or(0)))
                .filter(|(_, n)| *n > 0)
                .collect()
        })
        .unwrap_or_default();
    let rate_limited = st["peers"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| p["rate_limited"].as_u64().unwrap_or(0))
                .sum()
        })
        .unwrap_or(0);
    let n = |k: &str| c[k].as_u64().unwrap_or(0);
    Counters {
        drops,
        rate_limited,
        injected: n("injected"),
        sealed: n("sealed"),
        sent: n("sent"),
    }
}

pub fn main() {
    if !lab::bench_may_run("vrids benchmark") {
        return;
    }
    let instances = lab::env_or("INSTANCES", 1000) as usize;
    let advert_ms = lab::env_or("ADVERT_MS", 1000);
    let steady = lab::env_or("STEADY_SECS", 300);
    let advert = advert_ms as f64 / 1000.0;
    println!("relay binary: {}", lab::relay_bin().display());
    let t0 = Instant::now();
    let mut lab = Lab::new(3);
    let mut v = Vrids::start(&mut lab, instances, advert);
    let k = v.interfaces();
    println!(
        "3 hosts, {k} relay instances per host (mcast0..mcast{}), {instances} VRRPv3 instances \
         at advert {advert_ms} ms, h1 priority {} / h2 {} / h3 {}; started in {:.1} s",
        k - 1,
        Vrids::priority(1),
        Vrids::priority(2),
        Vrids::priority(3),
        t0.elapsed().as_secs_f64()
    );

    // All three keepalived started at once elect for minutes (see
    // vrids-results.md: keepalived's timers run seconds late while it adds
    // and removes hundreds of VIPs); so h1 first, alone, until it holds
    // every VIP, then the backups (SIMULTANEOUS=1 starts all at once).
    let simultaneous = std::env::var_os("SIMULTANEOUS").is_some();
    let order: Vec<Vec<usize>> = if simultaneous {
        vec![vec![1, 2, 3]]
    } else {
        vec![vec![1], vec![2, 3]]
    };
    for hosts in order {
        for h in &hosts {
            v.start_keepalived(&mut lab, *h);
        }
        match v.wait_holders(&lab, Duration::from_secs(180), |_| vec![1]) {
            Ok(t) => println!(
                "keepalived started on {hosts:?}: every VIP on h1 alone after {:.1} s",
                t.as_secs_f64()
            ),
            Err(off) => {
                lab.dump_logs();
                panic!(
                    "keepalived started on {hosts:?}: not every VIP on h1 alone after 180 s; e.g. {off:?}"
                );
            }
        }
    }

    // Steady state.
    let rs = relays(&lab, &v);
    let kas: Vec<(usize, Vec<u32>)> = lab.host_ids().map(|h| (h, v.keepalived_pids(h))).collect();
    let c_before: Vec<Counters> = rs.iter().map(|(h, i, _)| counters(&lab, *h, *i)).collect();
    // Each relay's (CPU ns, context switches) and each host's keepalived CPU ns.
    let cpu = || -> (Vec<(u64, u64)>, Vec<u64>) {
        let r = rs
            .iter()
            .map(|(_, _, p)| (cpu_ns(*p), switches(*p)))
            .collect();
        let k = kas
            .iter()
            .map(|(_, ps)| ps.iter().map(|p| cpu_ns(*p)).sum())
            .collect();
        (r, k)
    };
    let (r_before, k_before) = cpu();
    let s_before = proc_stat();
    let start = Instant::now();
    let (mut samples, mut bad_samples, mut bad_vip_samples) = (0u64, 0u64, 0u64);
    let (mut none, mut two, mut elsewhere) = (0u64, 0u64, 0u64);
    let mut bad_vips = std::collections::BTreeSet::new();
    let mut first_bad: Option<String> = None;
    let mut longest_sample = Duration::ZERO;
    let mut rss_max: BTreeMap<(usize, usize), u64> = BTreeMap::new();
    while start.elapsed() < Duration::from_secs(steady) {
        let t = Instant::now();
        let held = v.holders(&lab);
        longest_sample = longest_sample.max(t.elapsed());
        samples += 1;
        let mut bad = false;
        for (i, h) in held.iter().enumerate() {
            if h == &[1] {
                continue;
            }
            bad = true;
            bad_vip_samples += 1;
            bad_vips.insert(i);
            match h.len() {
                0 => none += 1,
                1 => elsewhere += 1,
                _ => two += 1,
            }
            if first_bad.is_none() {
                first_bad = Some(format!(
                    "{} on {h:?} at {:.1} s",
                    Vrids::vip(i),
                    start.elapsed().as_secs_f64()
                ));
            }
        }
        if bad {
            bad_samples += 1;
        }
        for (h, i, p) in &rs {
            let e = rss_max.entry((*h, *i)).or_default();
            *e = (*e).max(status_field(*p, "VmRSS:"));
        }
        let spent = t.elapsed();
        if spent < Duration::from_millis(250) {
            sleep(Duration::from_millis(250) - spent);
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let (r_after, k_after) = cpu();
    let s_after = proc_stat();
    let c_after: Vec<Counters> = rs.iter().map(|(h, i, _)| counters(&lab, *h, *i)).collect();

    println!(
        "\nsteady state, {elapsed:.0} s, {samples} samples (one `ip -o addr` per host each, every \
         {:.0} ms on average, longest sample {:.0} ms):",
        elapsed * 1e3 / samples.max(1) as f64,
        longest_sample.as_secs_f64() * 1e3
    );
    println!(
        "  samples with a VIP not on h1 alone: {bad_samples} of {samples}; VIP-samples off {bad_vip_samples}: on no host \
         {none}, on 2+ hosts {two}, on another host alone (spurious takeover) {elsewhere}; \
         distinct VIPs ever off: {}{}",
        bad_vips.len(),
        first_bad
            .map(|f| format!(" (first: {f})"))
            .unwrap_or_default()
    );
    println!(
        "\n{:<5} {:<7} {:>7} {:>11} {:>10} {:>8} {:>11} {:>9} {:>9}",
        "host",
        "relay",
        "CPU %",
        "wake-ups/s",
        "sealed/s",
        "sent/s",
        "injected/s",
        "VmRSS kB",
        "RSS max"
    );
    let mut relay_cpu_host = [0f64; 4];
    for (n, (h, i, p)) in rs.iter().enumerate() {
        let ((c0, w0), (c1, w1)) = (r_before[n], r_after[n]);
        let cpu = c1.saturating_sub(c0) as f64 / 1e9 / elapsed * 100.0;
        relay_cpu_host[*h] += cpu;
        let (a, b) = (&c_before[n], &c_after[n]);
        let rate = |x: u64, y: u64| y.saturating_sub(x) as f64 / elapsed;
        println!(
            "{:<5} {:<7} {:>7.2} {:>11.1} {:>10.1} {:>8.1} {:>11.1} {:>9} {:>9}",
            format!("h{h}"),
            format!("mcast{i}"),
            cpu,
            w1.saturating_sub(w0) as f64 / elapsed,
            rate(a.sealed, b.sealed),
            rate(a.sent, b.sent),
            rate(a.injected, b.injected),
            status_field(*p, "VmRSS:"),
            rss_max.get(&(*h, *i)).copied().unwrap_or(0)
        );
    }
    println!(
        "\n{:<5} {:>16} {:>18}",
        "host", "relays CPU % sum", "keepalived CPU %"
    );
    for (n, (h, _)) in kas.iter().enumerate() {
        println!(
            "{:<5} {:>16.2} {:>18.2}",
            format!("h{h}"),
            relay_cpu_host[*h],
            k_after[n].saturating_sub(k_before[n]) as f64 / 1e9 / elapsed * 100.0
        );
    }
    let total = s_after[4].saturating_sub(s_before[4]).max(1) as f64;
    let pct = |i: usize| s_after[i].saturating_sub(s_before[i]) as f64 / total * 100.0;
    println!(
        "machine ({} CPUs, % of all): user {:.1}, system {:.1}, irq+softirq {:.1}, idle {:.1}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        pct(0),
        pct(1),
        pct(2),
        pct(3)
    );

    // Failover: h1's keepalived crashes.
    let down = v.master_down(2);
    let vips: Vec<String> = (0..instances).map(Vrids::vip).collect();
    let vip_refs: Vec<&str> = vips.iter().map(String::as_str).collect();
    // `ip monitor address` in each host: the kernel's own moment of each
    // VIP added, which a dump (`ip addr`) waiting on the RTNL lock while
    // keepalived adds hundreds of addresses may see seconds late.
    let watch = lab::vip::Watch::start_each(&lab, &vip_refs);
    let mut added: Vec<Option<(Duration, usize)>> = vec![None; instances];
    let ka = v.kas[0].take().expect("h1's keepalived runs");
    ka.crash(&mut lab);
    let killed = Instant::now();
    let mut moved: Vec<Option<(Duration, usize)>> = vec![None; instances];
    // Each VIP's holders among h2/h3 as last seen, and when they last
    // changed: a VIP that went to h3 first and was then preempted by h2
    // moved twice.
    let mut seen: Vec<Vec<usize>> = vec![Vec::new(); instances];
    let mut changed: Vec<Duration> = vec![Duration::ZERO; instances];
    let mut changes = vec![0u32; instances];
    let (mut polls, mut longest_poll) = (0u64, Duration::ZERO);
    let deadline = killed + Duration::from_secs(60) + down * 3;
    let mut all_moved: Option<Instant> = None;
    // Polls until every VIP moved, then 2 master-down intervals of h3
    // more, so second moves (preemption by h2) are seen too.
    let settle = v.master_down(3) * 2;
    while Instant::now() < deadline && all_moved.is_none_or(|t| t.elapsed() < settle) {
        let t = Instant::now();
        let held = v.holders(&lab);
        longest_poll = longest_poll.max(t.elapsed());
        polls += 1;
        let at = killed.elapsed();
        for (i, h) in held.iter().enumerate() {
            let h: Vec<usize> = h.iter().copied().filter(|h| *h != 1).collect();
            if moved[i].is_none() && h.len() == 1 {
                moved[i] = Some((at, h[0]));
            }
            if h != seen[i] {
                seen[i] = h;
                changed[i] = at;
                changes[i] += 1;
            }
        }
        for a in watch.drain() {
            if a.host != 1 && added[a.vip].is_none() {
                added[a.vip] = Some((a.at.saturating_duration_since(killed), a.host));
            }
        }
        if all_moved.is_none()
            && moved.iter().all(Option::is_some)
            && added.iter().all(Option::is_some)
        {
            all_moved = Some(Instant::now());
        }
    }
    let took = killed.elapsed();
    for a in watch.drain() {
        if a.host != 1 && added[a.vip].is_none() {
            added[a.vip] = Some((a.at.saturating_duration_since(killed), a.host));
        }
    }
    drop(watch);
    let seen_added: Vec<(Duration, usize)> = added.iter().flatten().copied().collect();
    let w_first = seen_added.iter().map(|d| d.0).min().unwrap_or_default();
    let w_last = seen_added.iter().map(|d| d.0).max().unwrap_or_default();
    let w_on2 = seen_added.iter().filter(|d| d.1 == 2).count();
    let done: Vec<(Duration, usize)> = moved.iter().flatten().copied().collect();
    let first = done.iter().map(|d| d.0).min().unwrap_or_default();
    let lastm = done.iter().map(|d| d.0).max().unwrap_or_default();
    let on2 = done.iter().filter(|d| d.1 == 2).count();
    let final_on = |h: usize| seen.iter().filter(|s| s == &&vec![h]).count();
    let not_one = seen.iter().filter(|s| s.len() != 1).count();
    let twice = changes.iter().filter(|c| **c > 1).count();
    let last_change = changed.iter().max().copied().unwrap_or_default();
    println!(
        "\nfailover: kill -9 of h1's keepalived; polled {polls} times in {:.2} s (one `ip -o addr` \
         per host each: every {:.1} ms on average, longest {:.1} ms)",
        took.as_secs_f64(),
        took.as_secs_f64() * 1e3 / polls.max(1) as f64,
        longest_poll.as_secs_f64() * 1e3
    );
    println!(
        "  ip monitor (netlink events): {} of {instances} VIPs added on h2/h3 ({w_on2} first on h2); \
         first after {:.0} ms, last after {:.0} ms",
        seen_added.len(),
        w_first.as_secs_f64() * 1e3,
        w_last.as_secs_f64() * 1e3
    );
    println!(
        "  polls: {} of {instances} moved ({on2} to h2, {} to h3); first after {:.0} ms, last after {:.0} ms; \
         h2's master-down interval 3 x {advert_ms} + skew = {:.0} ms (h3's {:.0} ms)",
        done.len(),
        done.len() - on2,
        first.as_secs_f64() * 1e3,
        lastm.as_secs_f64() * 1e3,
        down.as_secs_f64() * 1e3,
        v.master_down(3).as_secs_f64() * 1e3
    );
    println!(
        "  at the end ({:.1} s after the kill): {} on h2 alone, {} on h3 alone, {not_one} not on exactly one; \
         {twice} VIPs changed holders more than once (e.g. h3 then h2); last change after {:.0} ms",
        took.as_secs_f64(),
        final_on(2),
        final_on(3),
        last_change.as_secs_f64() * 1e3
    );

    println!("\nrelay counters since start (drops by reason but duplicates; rate-limited):");
    for (h, i, _) in &rs {
        let c = counters(&lab, *h, *i);
        println!(
            "  h{h} mcast{i}: injected {} sealed {} sent {} rate_limited {} drops {:?}",
            c.injected, c.sealed, c.sent, c.rate_limited, c.drops
        );
    }
}
