//! Scale: 16 hosts, each with the relay and a keepalived running four VRRP
//! instances (four VRIDs, four VIPs, each preferring another host; see
//! lab/vrrp_cluster.rs). Every VRID elects exactly its preferred master
//! and every relay names it; a crashed master's VRID moves to the next in
//! line while the other three stay put; no relay refuses a single datagram;
//! every host's cluster file has the same SHA-256.
//! Needs root; skips visibly without it.

use crate::lab;

use std::io::Write;
use std::time::{Duration, Instant};

use lab::Lab;
use lab::vrrp_cluster::VrrpCluster;

const HOSTS: usize = 16;
const INSTANCES: usize = 4;
/// keepalived's advert interval, s. At 1 s neighbours in the line of
/// succession time out 58 ms apart (priorities 15 apart), which a loaded
/// 2-core machine cannot blur; at 0.1 s it would be under 6 ms.
const ADVERT: f64 = 1.0;
const TIMEOUT: Duration = Duration::from_secs(30);

/// A line that shows in the test output even when the test passes.
fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Every relay's status names `master(vrid)` for each VRID, with no
/// split-brain alarm: the relays' own view of the elections agrees.
fn assert_status_names(lab: &Lab, cluster: &VrrpCluster) {
    for h in lab.host_ids() {
        lab::wait_for(
            &format!("h{h}'s status to name the expected master of every VRID"),
            Duration::from_secs(5),
            || {
                let st = lab.relay_status(h);
                let routers = st["routers"].as_array()?;
                let all_named = (0..cluster.instances()).all(|i| {
                    routers.iter().any(|r| {
                        r["vrid"] == cluster.vrid(i)
                            && r["master"] == format!("h{}", cluster.master(i))
                            && r["split_brain"] == false
                    })
                });
                (all_named && st["alarms"].as_array().is_some_and(Vec::is_empty)).then_some(())
            },
        );
    }
}

#[test]
fn sixteen_hosts_four_vrids_one_master_each_and_a_crash_moves_only_its_own() {
    if !lab::root_or_skip("sixteen_hosts_four_vrids_one_master_each_and_a_crash_moves_only_its_own")
    {
        return;
    }
    let started = Instant::now();
    let mut lab = Lab::new(HOSTS);
    let built = started.elapsed();
    let mut cluster = VrrpCluster::start(&mut lab, INSTANCES, ADVERT);
    // One cluster file, the same bytes on all 16 hosts.
    let hash = lab.assert_cluster_files_identical();
    cluster.converge(&lab, TIMEOUT);
    let masters: Vec<usize> = (0..INSTANCES).map(|i| cluster.master(i)).collect();
    assert_eq!(
        masters,
        (0..INSTANCES)
            .map(|i| cluster.preferred(i))
            .collect::<Vec<_>>(),
        "with every keepalived running each VRID's preferred host is master"
    );
    assert_eq!(
        masters
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len(),
        INSTANCES,
        "each VRID has a different master: {masters:?}"
    );
    assert_status_names(&lab, &cluster);
    let elected = started.elapsed();

    // The master of the first VRID crashes.
    let victim = 0;
    let from = cluster.master(victim);
    let next = from % HOSTS + 1;
    let f = cluster.crash_master(&mut lab, victim, TIMEOUT);
    assert_eq!(
        (f.first.vip, f.first.host),
        (victim, next),
        "the first VIP to move must be the crashed master's, to the next in line"
    );
    assert!(
        f.others.is_empty(),
        "only the crashed master's VIP may move, once; afterwards: {:?}",
        f.others
    );
    let bound = cluster
        .vrrp
        .master_down(cluster.priority(victim, next))
        .mul_f64(1.2);
    assert!(
        f.took <= bound,
        "takeover in {:?}, beyond the master-down interval + 20 % ({bound:?})",
        f.took
    );
    assert_eq!(cluster.master(victim), next);
    cluster.converge(&lab, TIMEOUT);
    assert_status_names(&lab, &cluster);

    // Not one datagram refused anywhere, and every relay carried adverts.
    let mut injected = Vec::new();
    for h in lab.host_ids() {
        let c = lab.relay_counters(h);
        assert_eq!(lab::refused(&c, &[]), 0, "h{h} refused datagrams: {c:?}");
        let n = c.get("injected").copied().unwrap_or(0);
        assert!(n > 0, "h{h} injected nothing: {c:?}");
        injected.push(n);
    }
    report(&format!(
        "scale: {HOSTS} hosts (lab built in {:.1} s), {INSTANCES} VRIDs, masters {masters:?} elected {:.1} s after start; \
         kill -9 of h{from}: VRID {} moved to h{next} in {} ms (bound {} ms), the other VRIDs stayed; \
         0 refused, injected per relay {}..{}; one cluster file on every host (SHA-256 {hash}); test took {:.1} s",
        built.as_secs_f64(),
        elected.as_secs_f64(),
        cluster.vrid(victim),
        f.took.as_millis(),
        bound.as_millis(),
        injected.iter().min().copied().unwrap_or(0),
        injected.iter().max().copied().unwrap_or(0),
        started.elapsed().as_secs_f64()
    ));
}
