//! More than 255 virtual routers per host, through one relay per interface
//! (as `mcast-relay@.service` runs them): 2 hosts, 2 relay instances each
//! (mcast0 on port 7112, mcast1 on 7113, each its own `mcast-relay run -c`),
//! keepalived with 300 VRRPv3 instances (VRIDs 1-250 on mcast0, 1-50 on
//! mcast1, advert 1 s). Every VIP ends on the preferred host alone; its
//! keepalived is killed and every VIP moves to the other host; no relay
//! instance refuses a datagram and both carry adverts. See lab/vrids.rs
//! and, for the figures at 1,000 instances, `cargo bench --bench lab --
//! vrids`. Needs root; skips visibly without it.

use crate::lab;

use std::io::Write;
use std::time::{Duration, Instant};

use lab::Lab;
use lab::vrids::{self, Vrids};
use mcast_relay::core::DropReason;

const INSTANCES: usize = 300;
const TIMEOUT: Duration = Duration::from_secs(60);

/// Datagrams relay instance `i` of host `h` refused (every drop reason
/// from the network but duplicates), and the packets it injected.
fn refused_and_injected(lab: &Lab, h: usize, i: usize) -> (u64, u64) {
    let st = lab.instance_status(h, i);
    let drops = &st["counters"]["drops"];
    let refused = DropReason::ALL
        .iter()
        .filter(|r| r.from_network() && **r != DropReason::Duplicate)
        .map(|r| drops[r.name()].as_u64().unwrap_or(0))
        .sum();
    (refused, st["counters"]["injected"].as_u64().unwrap_or(0))
}

#[test]
fn three_hundred_vrids_on_two_relay_instances_converge_and_all_fail_over() {
    if !lab::root_or_skip("three_hundred_vrids_on_two_relay_instances_converge_and_all_fail_over") {
        return;
    }
    let started = Instant::now();
    let mut lab = Lab::new(2);
    let mut v = Vrids::start(&mut lab, INSTANCES, 1.0);
    assert_eq!(v.interfaces(), 2);
    assert_eq!(vrids::PER_INTERFACE, 250);
    // Two relays per host, each its own process and port.
    let pids: Vec<u32> = (0..2).map(|i| lab.instance_pid(1, i)).collect();
    assert_ne!(pids[0], pids[1]);
    for h in lab.host_ids() {
        assert!(lab.has_link(h, "mcast0") && lab.has_link(h, "mcast1"));
    }
    // The same VRID on both interfaces: 300 routers, VRIDs up to 250.
    let conf = v.keepalived_conf(1);
    assert_eq!(conf.matches("virtual_router_id 1\n").count(), 2);
    assert_eq!(conf.matches("interface mcast1\n").count(), INSTANCES - 250);

    // h1 (the preferred host) first, then h2: all 300 VIPs on h1 alone.
    v.start_keepalived(&mut lab, 1);
    let t1 = v
        .wait_holders(&lab, TIMEOUT, |_| vec![1])
        .unwrap_or_else(|off| panic!("h1 alone did not take every VIP: {off:?}"));
    v.start_keepalived(&mut lab, 2);
    // Long enough for h2 to time out (3.2 s) had h1's adverts not reached
    // it on either interface.
    std::thread::sleep(v.master_down(2) + Duration::from_secs(1));
    v.wait_holders(&lab, TIMEOUT, |_| vec![1])
        .unwrap_or_else(|off| panic!("with h2 up, not every VIP on h1 alone: {off:?}"));

    // h1's keepalived crashes: every VIP moves to h2 (h1 keeps its stale
    // copies, as a crash leaves them).
    v.kas[0]
        .take()
        .expect("h1's keepalived runs")
        .crash(&mut lab);
    let moved = v
        .wait_holders(&lab, TIMEOUT, |_| vec![1, 2])
        .unwrap_or_else(|off| panic!("not every VIP moved to h2: {off:?}"));

    for h in lab.host_ids() {
        for i in 0..2 {
            let (refused, injected) = refused_and_injected(&lab, h, i);
            assert_eq!(refused, 0, "h{h} mcast{i} refused datagrams");
            assert!(injected > 0, "h{h} mcast{i} injected nothing");
        }
    }
    let _ = writeln!(
        std::io::stderr(),
        "vrids: {INSTANCES} VRRP instances on 2 relay instances per host: all on h1 {:.1} s after its keepalived \
         started; after kill -9 all on h2 within {:.1} s (polled); 0 refused; test took {:.1} s",
        t1.as_secs_f64(),
        moved.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}
