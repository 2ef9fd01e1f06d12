//! End-to-end tests: the built relay binary with stock keepalived,
//! heartbeat and corosync from Debian, in a lab of network namespaces whose
//! "cloud" bridge drops multicast and broadcast (see lab/mod.rs).
//!
//! They need root; without it each test prints a visible SKIPPED line and
//! passes, so `cargo test` works for everyone. As root, a missing program
//! fails the test naming its package.

use crate::lab;

use std::io::Write;
use std::time::{Duration, Instant};

use lab::keepalived::Vrrp;
use lab::vip::{self, Watch};
use lab::{Lab, RelayOptions};

const HOSTS: usize = 3;
/// Priorities of h1, h2, h3: h1 is master, h2 next in line.
const PRIORITY: [u8; HOSTS] = [200, 150, 100];

/// A line that shows in the test output even when the test passes.
fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn assert_rp_filter(lab: &Lab) {
    for h in lab.host_ids() {
        assert_eq!(lab.sysctl(h, "net.ipv4.conf.all.rp_filter"), "1", "h{h}");
        assert_eq!(lab.sysctl(h, "net.ipv4.conf.mcast0.rp_filter"), "1", "h{h}");
    }
}

/// How long a single holder must stay alone before we call it elected.
fn settle(vrrp: Vrrp) -> Duration {
    vrrp.master_down(PRIORITY[HOSTS - 1]) + Duration::from_millis(500)
}

const ELECTION_TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn lab_blocks_multicast_without_the_relay() {
    if !lab::root_or_skip("lab_blocks_multicast_without_the_relay") {
        return;
    }
    lab::require_programs(lab::keepalived::PROGRAMS);
    let mut lab = Lab::new(HOSTS);
    // Unicast crosses the cloud...
    lab.exec(1, &["ping", "-c", "1", "-W", "2", "10.77.0.2"]);
    // ...VRRP multicast on eth0 does not: every node elects itself.
    let vrrp = Vrrp {
        interface: "eth0",
        ..Vrrp::v3(1.0)
    };
    for h in lab.host_ids() {
        lab.start_keepalived(h, vrrp, PRIORITY[h - 1]);
    }
    let holders = lab::wait_for(
        "several masters on a network that drops multicast",
        Duration::from_secs(15),
        || {
            let now = vip::holders(&lab, vrrp.vip());
            (now.len() >= 2).then_some(now)
        },
    );
    assert!(lab.bridge_drops() > 0, "the bridge dropped nothing");
    report(&format!(
        "lab blocks multicast: without the relay {} hosts hold the VIP: {holders:?}; bridge dropped {} frames",
        holders.len(),
        lab.bridge_drops()
    ));
}

/// Election, crash failover within one master-down interval plus 20 %, and
/// preemption by the restarted master, all through the relay.
fn failover_cycle(name: &str, vrrp: Vrrp, opts: RelayOptions) {
    if !lab::root_or_skip(name) {
        return;
    }
    lab::require_programs(lab::keepalived::PROGRAMS);
    let mut lab = Lab::new(HOSTS);
    lab.start_relays(opts);
    // One cluster file, the same bytes on every host.
    let hash = lab.assert_cluster_files_identical();
    report(&format!(
        "{name}: every host's cluster file has SHA-256 {hash}"
    ));
    assert_rp_filter(&lab);
    let vip = vrrp.vip();
    let watch = Watch::start(&lab, vip);
    let mut kas: Vec<_> = lab
        .host_ids()
        .map(|h| Some(lab.start_keepalived(h, vrrp, PRIORITY[h - 1])))
        .collect();
    let all: Vec<usize> = lab.host_ids().collect();
    let master = vip::converge(&lab, vip, &all, settle(vrrp), ELECTION_TIMEOUT);
    assert_eq!(master, 1, "the highest priority must win the election");

    watch.clear();
    kas[0].take().expect("h1 keepalived").crash(&mut lab);
    let killed = Instant::now();
    let bound = vrrp.master_down(PRIORITY[1]).mul_f64(1.2);
    let added = watch
        .next_added(&[1], bound * 3)
        .unwrap_or_else(|| panic!("no node took {vip} over within {:?}", bound * 3));
    let took = added.at.duration_since(killed);
    report(&format!(
        "{name}: VIP moved h1 -> h{} in {:.0} ms (bound: master-down + 20 % = {:.0} ms)",
        added.host,
        took.as_secs_f64() * 1e3,
        bound.as_secs_f64() * 1e3
    ));
    assert_eq!(added.host, 2, "the next priority must take over");
    assert!(took <= bound, "failover took {took:?}, more than {bound:?}");
    let survivor = vip::converge(&lab, vip, &[2, 3], settle(vrrp), ELECTION_TIMEOUT);
    assert_eq!(survivor, 2);

    // The crashed host comes back (without the stale VIP, as after a reboot)
    // and, having the highest priority, preempts.
    let prefix = if vrrp.ipv6 { "64" } else { "24" };
    lab.exec(
        1,
        &[
            "ip",
            "addr",
            "del",
            &format!("{vip}/{prefix}"),
            "dev",
            "eth0",
        ],
    );
    kas[0] = Some(lab.start_keepalived(1, vrrp, PRIORITY[0]));
    // The restarted master must take the VIP back.
    vip::converge_on(&lab, vip, &all, 1, settle(vrrp), ELECTION_TIMEOUT);
}

#[test]
fn keepalived_vrrp2_ipv4() {
    let vrrp = Vrrp {
        version: 2,
        ..Vrrp::v3(1.0)
    };
    failover_cycle("keepalived_vrrp2_ipv4", vrrp, RelayOptions::default());
}

#[test]
fn keepalived_vrrp3_ipv4_advert_1s() {
    failover_cycle(
        "keepalived_vrrp3_ipv4_advert_1s",
        Vrrp::v3(1.0),
        RelayOptions::default(),
    );
}

#[test]
fn keepalived_vrrp3_ipv4_advert_100ms() {
    failover_cycle(
        "keepalived_vrrp3_ipv4_advert_100ms",
        Vrrp::v3(0.1),
        RelayOptions::default(),
    );
}

/// VRRPv3 over IPv6 (ff02::12 from the derived link-local), with the relays
/// also talking to each other over an IPv6 underlay.
#[test]
fn keepalived_vrrp3_ipv6_over_ipv6_underlay() {
    let vrrp = Vrrp {
        ipv6: true,
        ..Vrrp::v3(1.0)
    };
    let opts = RelayOptions {
        underlay_v6: true,
        ..RelayOptions::default()
    };
    failover_cycle("keepalived_vrrp3_ipv6_over_ipv6_underlay", vrrp, opts);
}

/// The same VRRP cycle with the relays in tap mode: keepalived speaks on an
/// Ethernet device and the relay carries whole frames.
#[test]
fn keepalived_vrrp3_tap_mode() {
    let opts = RelayOptions {
        tap: true,
        ..RelayOptions::default()
    };
    failover_cycle("keepalived_vrrp3_tap_mode", Vrrp::v3(1.0), opts);
}

#[test]
fn relay_restart_keeps_the_interface_and_the_cluster_converges() {
    let name = "relay_restart_keeps_the_interface_and_the_cluster_converges";
    if !lab::root_or_skip(name) {
        return;
    }
    lab::require_programs(lab::keepalived::PROGRAMS);
    let mut lab = Lab::new(HOSTS);
    lab.start_relays(RelayOptions::default());
    // Started as root, each relay runs unprivileged once set up.
    for h in lab.host_ids() {
        let status = lab.relay_proc_status(h);
        let field = |k: &str| {
            status
                .lines()
                .find(|l| l.starts_with(k))
                .map(|l| {
                    l[k.len()..]
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default()
        };
        assert_eq!(field("Uid:"), "65534 65534 65534 65534", "h{h} uid");
        assert_eq!(field("CapEff:"), "0000000000000000", "h{h} capabilities");
        assert_eq!(field("CapPrm:"), "0000000000000000", "h{h} capabilities");
        assert_eq!(field("NoNewPrivs:"), "1", "h{h} no_new_privs");
    }
    let vrrp = Vrrp::v3(1.0);
    for h in lab.host_ids() {
        lab.start_keepalived(h, vrrp, PRIORITY[h - 1]);
    }
    let all: Vec<usize> = lab.host_ids().collect();
    let vip = vrrp.vip();
    assert_eq!(
        vip::converge(&lab, vip, &all, settle(vrrp), ELECTION_TIMEOUT),
        1
    );

    assert!(lab.stop_relay(1), "the relay must exit 0 on SIGTERM");
    assert!(lab.has_link(1, "mcast0"), "mcast0 must survive the relay");
    let log = lab.relay_log(1);
    assert_eq!(
        lab::count_lines(&log, "panicked"),
        0,
        "{}",
        lab::tail(&log, 20)
    );
    // Without its relay h1 hears nobody; keepalived on h1 goes FAULT
    // (carrier down) and the others elect h2.
    assert_eq!(
        vip::converge(&lab, vip, &[2, 3], settle(vrrp), ELECTION_TIMEOUT),
        2
    );

    lab.start_relay(1);
    // After the relay restart h1 must be the one master again.
    vip::converge_on(&lab, vip, &all, 1, settle(vrrp), ELECTION_TIMEOUT);
}

fn heartbeat_all_active(name: &str, bcast: bool) {
    if !lab::root_or_skip(name) {
        return;
    }
    lab::require_programs(lab::heartbeat::PROGRAMS);
    let mut lab = Lab::new(HOSTS);
    // The shipped examples, as they are (but for node names).
    lab.configure_relays_from_example("heartbeat/mcast-relay.toml");
    for h in lab.host_ids() {
        lab.start_relay(h);
    }
    assert_rp_filter(&lab);
    let ha_cf = lab::examples::heartbeat_ha_cf(bcast);
    let nodes: Vec<_> = lab
        .host_ids()
        .map(|h| lab.start_heartbeat_conf(h, &ha_cf))
        .collect();
    for hb in &nodes {
        lab.heartbeat_started(hb);
    }
    let started = Instant::now();
    lab::wait_for(
        "every heartbeat node to see every node active",
        Duration::from_secs(45),
        || {
            nodes
                .iter()
                .all(|hb| {
                    lab.host_ids()
                        .all(|o| lab.heartbeat_status(hb, o).as_deref() == Some("active"))
                })
                .then_some(())
        },
    );
    report(&format!(
        "{name}: all {HOSTS} nodes see all {HOSTS} active after {:.1} s",
        started.elapsed().as_secs_f64()
    ));
}

#[test]
fn heartbeat_mcast() {
    heartbeat_all_active("heartbeat_mcast", false);
}

#[test]
fn heartbeat_bcast() {
    heartbeat_all_active("heartbeat_bcast", true);
}

#[test]
fn corosync_udp_ring_is_quorate() {
    let name = "corosync_udp_ring_is_quorate";
    if !lab::root_or_skip(name) {
        return;
    }
    lab::require_programs(lab::corosync::PROGRAMS);
    let mut lab = Lab::new(HOSTS);
    // The shipped examples, as they are; their MTUs must agree.
    let conf = lab::examples::text("corosync/corosync.conf");
    let relay = lab::examples::text("corosync/mcast-relay.toml");
    let mtu_of = |t: &str, key: &str| -> Option<u32> {
        t.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim_start_matches([' ', ':', '=']).trim().parse().ok())
    };
    let (netmtu, mtu) = (mtu_of(&conf, "netmtu"), mtu_of(&relay, "mtu"));
    assert!(
        netmtu.is_some() && netmtu == mtu,
        "examples/corosync: totem.netmtu {netmtu:?} must equal the relay's interface.mtu {mtu:?}"
    );
    lab.configure_relays_from_example("corosync/mcast-relay.toml");
    for h in lab.host_ids() {
        lab.start_relay(h);
    }
    assert_rp_filter(&lab);
    let nodes: Vec<_> = lab
        .host_ids()
        .map(|h| lab.start_corosync_conf(h, &conf))
        .collect();
    let started = Instant::now();
    let mut last = String::new();
    let quorate = lab::wait_for_or_none(Duration::from_secs(40), || {
        let all = nodes.iter().all(|c| {
            last = lab.corosync_quorum(c);
            let fields = |k: &str| {
                last.lines()
                    .find(|l| l.starts_with(k))
                    .map(|l| l[k.len()..].trim().to_string())
            };
            fields("Quorate:").as_deref() == Some("Yes")
                && fields("Total votes:").as_deref() == Some("3")
        });
        all.then_some(())
    });
    assert!(
        quorate.is_some(),
        "corosync never became quorate with 3 votes; last:\n{last}"
    );
    report(&format!(
        "{name}: quorate ring with {HOSTS} votes after {:.1} s",
        started.elapsed().as_secs_f64()
    ));
}

/// examples/keepalived/ as shipped (VRRPv2, VRRPv3 at 100 ms, VRRPv3 over
/// IPv6) with the relay config derived from examples/keepalived/: each
/// instance elects h1, and each VIP moves to h2 when h1's keepalived dies.
#[test]
fn keepalived_example_configs() {
    let name = "keepalived_example_configs";
    if !lab::root_or_skip(name) {
        return;
    }
    lab::require_programs(lab::keepalived::PROGRAMS);
    let example = lab::examples::text("keepalived/keepalived.conf");
    let vips: Vec<String> = example
        .lines()
        .filter(|l| l.trim_end().ends_with("dev eth0"))
        .filter_map(|l| {
            l.split_whitespace()
                .next()?
                .split('/')
                .next()
                .map(str::to_string)
        })
        .collect();
    assert_eq!(
        vips.len(),
        3,
        "examples/keepalived/keepalived.conf VIPs: {vips:?}"
    );
    assert!(example.contains("priority 150") && example.contains("router_id lb1"));
    let mut lab = Lab::new(HOSTS);
    lab.configure_relays_from_example("keepalived/mcast-relay.toml");
    for h in lab.host_ids() {
        lab.start_relay(h);
    }
    let all: Vec<usize> = lab.host_ids().collect();
    let mut kas: Vec<_> = lab
        .host_ids()
        .map(|h| {
            let conf = example
                .replace("router_id lb1", &format!("router_id h{h}"))
                .replace("priority 150", &format!("priority {}", PRIORITY[h - 1]));
            lab.start_keepalived_conf(h, &conf)
        })
        .collect();
    // The slowest instance (advert_int 1) needs 3.6 s of silence to elect.
    let stable = Duration::from_secs(4);
    for vip in &vips {
        vip::converge_on(&lab, vip, &all, 1, stable, ELECTION_TIMEOUT);
    }
    let watches: Vec<Watch> = vips.iter().map(|v| Watch::start(&lab, v)).collect();
    let killed = Instant::now();
    kas.remove(0).crash(&mut lab);
    let mut moved = Vec::new();
    for (vip, w) in vips.iter().zip(&watches) {
        let a = w
            .next_added(&[1], Duration::from_secs(15))
            .unwrap_or_else(|| panic!("{vip} did not move after h1 died"));
        assert_eq!(a.host, 2, "{vip} moved to h{} instead of h2", a.host);
        moved.push(format!(
            "{vip} in {} ms",
            a.at.duration_since(killed).as_millis()
        ));
    }
    report(&format!(
        "{name}: 3 instances elected h1; after kill -9: {}",
        moved.join(", ")
    ));
}
