//! The chaos test: a bounded run of `lab::chaos` (random loss, burst
//! outages, a partition, kill -9 and SIGSTOP of relays under a watchdog,
//! reloads, junk floods; keepalived with quorum on 3 hosts), about three
//! minutes; CHAOS_SECS runs it longer, CHAOS_SEED replays a schedule. On
//! failure it prints the seed, the schedule and the holders' timeline.

use std::io::Write;

use crate::lab;
use lab::chaos::{self, Bounds};

/// Seconds of faults in CI; with set-up and recovery about 3 minutes.
const CI_SECS: u64 = 140;

#[test]
fn chaos_keeps_one_vip_holder_and_the_relays_alive() {
    if !lab::root_or_skip("chaos_keeps_one_vip_holder_and_the_relays_alive") {
        return;
    }
    let secs = lab::env_or("CHAOS_SECS", CI_SECS);
    let seed = chaos::seed();
    let _ = writeln!(
        std::io::stderr(),
        "chaos: seed {seed} (CHAOS_SEED={seed} replays it), {secs} s of faults"
    );
    let out = chaos::run(secs, seed);
    let summary = out.summary(&Bounds::new());
    assert!(
        !out.failed(),
        "chaos failed:\n  {}\n{}\n{summary}",
        out.failures.join("\n  "),
        out.explain()
    );
    let _ = writeln!(std::io::stderr(), "REPORT {summary}");
}

mod timeline {
    use std::time::{Duration, Instant};

    use crate::lab::holders::{Change, window};

    #[test]
    fn a_takeover_and_its_double_holding_are_counted_once() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let ch = |ms, host, added| Change {
            at: at(ms),
            host,
            vip: 0,
            added,
        };
        let changes = vec![
            ch(0, 1, true),
            ch(100, 2, true),
            ch(100, 2, true), // the same add seen twice
            ch(400, 2, false),
            ch(900, 1, false),
            ch(1000, 3, true),
        ];
        let s = window(&changes, 0, 1, at(50), at(2000));
        assert_eq!(s.takeovers, 2);
        assert_eq!(s.not_one_spells, 2);
        assert_eq!(s.longest_not_one, Duration::from_millis(300));
        assert_eq!(s.holders_at_end, vec![3]);
    }
}

/// The impairments the chaos test and the lossy bench rely on do what
/// they say, measured with ping: the second path carries traffic, a
/// blackout kills one path and not the other, random loss loses about
/// its share, and the busy loops end with their owner.
#[test]
fn impairments_do_what_they_say() {
    if !lab::root_or_skip("impairments_do_what_they_say") {
        return;
    }
    use lab::impair::{Bridge, Starve};
    let lab = lab::Lab::new(2);
    lab.add_second_path(&[1, 2]);
    let received = |to: &str, count: u32| -> u32 {
        let c = count.to_string();
        let out = lab.try_exec(
            1,
            &["ping", "-n", "-q", "-c", &c, "-i", "0.01", "-W", "1", to],
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.split(',')
            .find_map(|p| p.trim().strip_suffix(" received")?.parse().ok())
            .unwrap_or(0)
    };
    assert_eq!(received("10.77.0.2", 20), 20, "br0 works");
    assert_eq!(received("10.78.0.2", 20), 20, "br1, the second path, works");
    lab.blackout(Bridge::Br0, &[2]);
    assert_eq!(received("10.77.0.2", 10), 0, "a blacked-out path is dead");
    assert_eq!(received("10.78.0.2", 20), 20, "the other path lives on");
    lab.end_blackout(Bridge::Br0);
    assert_eq!(received("10.77.0.2", 20), 20, "a blackout ends");
    // 30 % of each frame, request and reply: about half the pings lost.
    lab.set_loss(Bridge::Br0, 300);
    let got = received("10.77.0.2", 400);
    let dropped = lab.loss_drops(Bridge::Br0);
    lab.clear_loss(Bridge::Br0);
    assert!(
        (150..=300).contains(&got),
        "30 % loss each way: {got} of 400 pings came back (expected about 196)"
    );
    assert!(dropped > 100, "the loss rule counted {dropped} drops");
    assert_eq!(received("10.77.0.2", 20), 20, "loss cleared");
    let bursts = lab.start_bursts(Bridge::Br0, 7, (100, 200), (100, 200));
    std::thread::sleep(std::time::Duration::from_secs(2));
    let stats = bursts.stop();
    assert!(
        stats.outages >= 4 && stats.down >= std::time::Duration::from_millis(400),
        "bursts: {stats:?}"
    );
    assert_eq!(received("10.77.0.2", 20), 20, "no outage left behind");
    let starve = Starve::start(&lab);
    let cores = starve.cores();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let busy = lab::namespace_pids(&format!("{}-cloud", lab.id)).len();
    drop(starve);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let after = lab::namespace_pids(&format!("{}-cloud", lab.id)).len();
    assert!(
        busy >= cores && after == 0,
        "busy loops: {busy} while starving ({cores} cores), {after} after"
    );
    let _ = writeln!(
        std::io::stderr(),
        "REPORT impairments: 30 % loss each way, {got} of 400 pings back ({dropped} frames dropped); {} bursts, {} ms down in 2 s; {cores} busy loops, gone after",
        stats.outages,
        stats.down.as_millis()
    );
}
