//! Several paths per member through the real daemon: every member lists
//! an endpoint on each of two bridges, `path_mode = "best"`; the first
//! bridge dies for everyone and comes back. keepalived (VRRPv3, advert 1 s)
//! must keep one master throughout, and `status` must show each path's
//! health as it goes.

use std::time::{Duration, Instant};

use crate::lab::{self, Lab};
use lab::groups::Group;
use lab::holders::Timeline;
use lab::impair::Bridge;
use lab::keepalived::Vrrp;

/// Each peer's path states in host `h`'s status, in order.
fn path_states(lab: &Lab, h: usize) -> Vec<Vec<String>> {
    let s = lab.relay_status(h);
    s["peers"]
        .as_array()
        .expect("peers")
        .iter()
        .map(|p| {
            p["paths"]
                .as_array()
                .expect("paths")
                .iter()
                .map(|x| x["state"].as_str().unwrap_or("?").to_string())
                .collect()
        })
        .collect()
}

#[test]
fn a_dead_path_moves_the_heartbeats_to_the_other_without_a_takeover() {
    if !lab::root_or_skip("a_dead_path_moves_the_heartbeats_to_the_other_without_a_takeover") {
        return;
    }
    lab::require_programs(lab::keepalived::PROGRAMS);
    let mut lab = Lab::new(3);
    let hosts = [1, 2, 3];
    lab.add_second_path(&hosts);
    let group = Group {
        hosts: hosts.to_vec(),
        node: vec!["path_mode = \"best\"".into(), "keepalive = 0.2".into()],
        two_paths: true,
    };
    lab.write_group_config(&group);
    for h in hosts {
        lab.start_relay(h);
    }
    lab.wait_relays_confirmed(Duration::from_secs(30));
    let vrrp = Vrrp::v3(1.0);
    let vips = vec![vrrp.vip().to_string()];
    let timeline = Timeline::start(&lab, &hosts, &vips);
    let _k: Vec<_> = [(1, 200), (2, 150), (3, 100)]
        .into_iter()
        .map(|(h, prio)| lab.start_keepalived(h, vrrp, prio))
        .collect();
    assert!(
        timeline.settled(&[(0, 1)], Duration::from_secs(2), Duration::from_secs(30)),
        "no single master before the fault"
    );
    let healthy = || vec![vec!["healthy".to_string(); 2]; 2];
    lab::wait_for("both paths healthy", Duration::from_secs(10), || {
        (path_states(&lab, 1) == healthy()).then_some(())
    });

    let from = Instant::now();
    lab.blackout(Bridge::Br0, &hosts);
    // Unreachable 3.5 keepalives after its last echo.
    std::thread::sleep(Duration::from_secs(3));
    for h in hosts {
        let states = path_states(&lab, h);
        for peer in &states {
            assert_eq!(peer[1], "healthy", "h{h}: the second path: {states:?}");
            assert_ne!(peer[0], "healthy", "h{h}: the dead path: {states:?}");
        }
    }
    std::thread::sleep(Duration::from_secs(5));
    lab.end_blackout(Bridge::Br0);
    lab::wait_for(
        "the first path healthy again",
        Duration::from_secs(10),
        || (path_states(&lab, 1) == healthy()).then_some(()),
    );
    std::thread::sleep(Duration::from_secs(2));
    let w = timeline.window(0, 1, from, Instant::now());
    assert_eq!(w.takeovers, 0, "a path died and the VIP moved: {w:?}");
    assert_eq!(w.holders_at_end, vec![1]);
    assert_eq!(w.not_one_spells, 0, "{w:?}");
    eprintln!(
        "paths: first path dead for 8 s under path_mode best: no takeover, {} spells without one holder",
        w.not_one_spells
    );
}
