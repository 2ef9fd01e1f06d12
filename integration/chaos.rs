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
