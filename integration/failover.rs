//! Failover of a resource, not just of a heartbeat: for each failover
//! system the relay was built for, a stock program moves an address (or a
//! Spread group carries messages) when a node or its service dies, through
//! the relay, with the shipped examples/ as they are; and, where the tool
//! can run without the relay, the same on the multicast-dropping cloud
//! fails. Needs root; skips visibly without it (and spread/wackamole skip
//! where their sources are absent).

use crate::lab;

use std::io::Write;
use std::time::{Duration, Instant};

use lab::Lab;
use lab::vip::{self, Watch};

const HOSTS: usize = 3;
/// Priorities of h1, h2, h3 for keepalived: h1 master, h2 next in line.
const PRIORITY: [u8; HOSTS] = [200, 150, 100];

/// A line that shows in the test output even when the test passes.
fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// examples/haproxy/keepalived.conf for host `h` on `interface`.
fn haproxy_keepalived_conf(h: usize, interface: &str) -> String {
    let example = lab::examples::text("haproxy/keepalived.conf");
    for must in [
        "router_id lb1",
        "priority 150",
        "interface mcast0",
        "track_script",
    ] {
        assert!(
            example.contains(must),
            "examples/haproxy/keepalived.conf lost `{must}`"
        );
    }
    example
        .replace("router_id lb1", &format!("router_id h{h}"))
        .replace("priority 150", &format!("priority {}", PRIORITY[h - 1]))
        .replace("interface mcast0", &format!("interface {interface}"))
}

/// The `vrrp_script` figures of examples/haproxy/keepalived.conf: interval,
/// fall and rise.
fn haproxy_check_figures() -> (f64, u32, u32) {
    let example = lab::examples::text("haproxy/keepalived.conf");
    let value = |key: &str| -> f64 {
        example
            .lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("examples/haproxy/keepalived.conf has no `{key}`"))
    };
    (
        value("interval "),
        value("fall ") as u32,
        value("rise ") as u32,
    )
}

fn example_vip(rel: &str) -> String {
    let text = lab::examples::text(rel);
    text.lines()
        .map(str::trim)
        .find(|l| l.ends_with("dev eth0"))
        .and_then(|l| l.split('/').next())
        .unwrap_or_else(|| panic!("examples/{rel} has no VIP on eth0"))
        .to_string()
}

/// HAProxy on 3 hosts, keepalived with a `vrrp_script` on it.
/// Without the relay several hosts hold the VIP; through it one does,
/// stopping HAProxy on the master moves the VIP, starting it brings it back.
#[test]
fn keepalived_haproxy_vip_follows_haproxy() {
    let name = "keepalived_haproxy_vip_follows_haproxy";
    if !lab::root_or_skip(name) {
        return;
    }
    lab::require_programs(lab::keepalived::PROGRAMS);
    lab::require_programs(lab::haproxy::PROGRAMS);
    let haproxy_cfg = lab::examples::text("haproxy/haproxy.cfg");
    let vip = example_vip("haproxy/keepalived.conf");
    let all: Vec<usize> = (1..=HOSTS).collect();
    {
        let mut lab = Lab::new(HOSTS);
        for h in lab.host_ids() {
            lab.start_haproxy(h, &haproxy_cfg);
            lab.start_keepalived_conf(h, &haproxy_keepalived_conf(h, "eth0"));
        }
        let held = lab::wait_for(
            "several VIP holders without the relay",
            Duration::from_secs(15),
            || {
                let now = vip::holders(&lab, &vip);
                (now.len() >= 2).then_some(now)
            },
        );
        report(&format!("{name}: without the relay {held:?} hold {vip}"));
    }

    let mut lab = Lab::new(HOSTS);
    lab.start_relays_from_example("haproxy/mcast-relay.toml");
    let mut haproxy: Vec<u32> = lab
        .host_ids()
        .map(|h| lab.start_haproxy(h, &haproxy_cfg))
        .collect();
    for h in lab.host_ids() {
        lab.start_keepalived_conf(h, &haproxy_keepalived_conf(h, "mcast0"));
    }
    let stable = Duration::from_secs(4);
    let timeout = Duration::from_secs(30);
    vip::converge_on(&lab, &vip, &all, 1, stable, timeout);

    let (interval, fall, rise) = haproxy_check_figures();
    let vrrp = lab::keepalived::Vrrp {
        version: 2,
        ..lab::keepalived::Vrrp::v3(1.0)
    };
    let watch = Watch::start(&lab, &vip);
    let stopped = Instant::now();
    lab.stop_haproxy(haproxy[0]);
    let moved = watch
        .next_added(&[1], Duration::from_secs(20))
        .unwrap_or_else(|| panic!("{vip} stayed on h1 after its HAProxy stopped"));
    let took = moved.at.duration_since(stopped);
    assert_eq!(moved.host, 2, "the next priority must take {vip}");
    // Detection takes up to `fall` checks after the stop, the last one up
    // to one interval (plus its timeout) late; then a master-down interval
    // at most, if no priority-0 advert hurries the backup.
    let detect = Duration::from_secs_f64(interval * f64::from(fall + 1));
    let bound = detect + vrrp.master_down(PRIORITY[1]);
    assert!(
        took <= bound,
        "the VIP moved after {took:?}, more than {bound:?}"
    );
    vip::converge_on(&lab, &vip, &all, 2, stable, timeout);

    watch.clear();
    let started = Instant::now();
    haproxy[0] = lab.start_haproxy(1, &haproxy_cfg);
    let back = watch
        .next_added(&[2, 3], Duration::from_secs(20))
        .unwrap_or_else(|| panic!("{vip} did not come back to h1 with its HAProxy"));
    let took_back = back.at.duration_since(started);
    assert_eq!(
        back.host, 1,
        "{vip} went to h{} instead of back to h1",
        back.host
    );
    let bound_back = Duration::from_secs_f64(interval * f64::from(rise + 1))
        + vrrp.master_down(PRIORITY[0]).mul_f64(1.2);
    assert!(
        took_back <= bound_back,
        "the VIP came back after {took_back:?}, more than {bound_back:?}"
    );
    vip::converge_on(&lab, &vip, &all, 1, stable, timeout);
    // Theory: the failing checks, then (keepalived sends a priority-0 advert
    // on entering FAULT) the backup's skew time; back: the passing checks,
    // then h1, a backup again, waits a master-down interval and preempts.
    let checks = |n: u32| Duration::from_secs_f64(interval * f64::from(n));
    let skew = vrrp.master_down(PRIORITY[1]) - Duration::from_secs_f64(3.0 * vrrp.advert);
    report(&format!(
        "{name}: HAProxy stopped on h1 -> {vip} on h2 in {} ms (theory: interval {interval} s x fall {fall} \
         + skew {} ms = at most {} ms; bound {} ms); HAProxy started -> back on h1 in {} ms \
         (theory: interval x rise {rise} + master-down {} ms = at most {} ms)",
        ms(took),
        ms(skew),
        ms(checks(fall) + skew),
        ms(bound),
        ms(took_back),
        ms(vrrp.master_down(PRIORITY[0])),
        ms(checks(rise) + vrrp.master_down(PRIORITY[0])),
    ));
}

/// The node names of a corosync.conf's nodelist, by node id (1-based).
fn corosync_node_names(conf: &str) -> Vec<String> {
    conf.lines()
        .map(str::trim)
        .filter_map(|l| l.strip_prefix("name:"))
        .map(|n| n.trim().to_string())
        .collect()
}

/// What the lab adds to examples/pacemaker/cluster.crm: no fencing device
/// exists in namespaces (production clusters need one; see the example).
const LAB_NO_FENCING: &str = "property cib-bootstrap-options: stonith-enabled=false\n";

/// Pacemaker on corosync udp, 3 nodes through the relay: quorate
/// with all online, the IPaddr2 VIP on exactly one node, and on another
/// after that node's corosync and Pacemaker are killed with -9. Without
/// the relay each node is alone, without quorum.
#[test]
fn pacemaker_ipaddr2_moves_on_crash() {
    let name = "pacemaker_ipaddr2_moves_on_crash";
    if !lab::root_or_skip(name) {
        return;
    }
    lab::require_programs(lab::pacemaker::PROGRAMS);
    let conf = lab::examples::text("pacemaker/corosync.conf");
    let resources = lab::examples::text("pacemaker/cluster.crm");
    let vip = resources
        .split_whitespace()
        .find_map(|w| w.strip_prefix("ip="))
        .expect("examples/pacemaker/cluster.crm has an ip=")
        .to_string();
    let names = corosync_node_names(&conf);
    assert_eq!(
        names.len(),
        HOSTS,
        "examples/pacemaker/corosync.conf nodes: {names:?}"
    );
    let all: Vec<usize> = (1..=HOSTS).collect();

    // Natively, on the cloud's own addresses: the ring never forms.
    {
        let mut lab = Lab::new(HOSTS);
        let native = conf
            .replace("bindnetaddr: 10.250.0.0", "bindnetaddr: 10.77.0.0")
            .replace("ring0_addr: 10.250.0.", "ring0_addr: 10.77.0.");
        let nodes: Vec<_> = lab
            .host_ids()
            .map(|h| lab.start_pacemaker(h, &names[h - 1], &native))
            .collect();
        // Longer than the ring takes to form through the relay (below).
        std::thread::sleep(Duration::from_secs(10));
        for n in &nodes {
            let (_, q) = lab.pacemaker_exec(n, &["corosync-quorumtool", "-s"]);
            let field = |k: &str| q.lines().find_map(|l| l.strip_prefix(k)).map(str::trim);
            assert_eq!(
                field("Quorate:"),
                Some("No"),
                "{} without the relay:\n{q}",
                n.name
            );
            assert_eq!(
                field("Total votes:"),
                Some("1"),
                "{} without the relay:\n{q}",
                n.name
            );
            let mon = lab.crm_mon(n);
            assert!(!mon.contains("partition with quorum"), "{}:\n{mon}", n.name);
        }
        report(&format!(
            "{name}: without the relay every node is alone (1 vote), without quorum"
        ));
    }

    let mut lab = Lab::new(HOSTS);
    lab.start_relays_from_example("pacemaker/mcast-relay.toml");
    let started = Instant::now();
    let mut nodes: Vec<Option<_>> = lab
        .host_ids()
        .map(|h| Some(lab.start_pacemaker(h, &names[h - 1], &conf)))
        .collect();
    let online: Vec<&str> = names.iter().map(String::as_str).collect();
    for n in nodes.iter().flatten() {
        // Usually about 23 s (Pacemaker waits dc-deadtime, 20 s, for a DC
        // before it elects one); twice that on a busy machine.
        lab.wait_pacemaker_online(n, &online, Duration::from_secs(120));
    }
    let formed = started.elapsed();
    let first = nodes[0].as_ref().expect("node 1");
    lab.crm_configure(first, "lab-no-fencing", LAB_NO_FENCING);
    lab.crm_configure(first, "cluster", &resources);
    let holder = vip::converge(
        &lab,
        &vip,
        &all,
        Duration::from_secs(3),
        Duration::from_secs(30),
    );

    let watch = Watch::start(&lab, &vip);
    let crashed = Instant::now();
    let dead = nodes[holder - 1].take().expect("the holder's node");
    lab.crash_pacemaker(dead);
    let moved = watch
        .next_added(&[holder], Duration::from_secs(30))
        .unwrap_or_else(|| panic!("{vip} did not leave crashed h{holder}"));
    let took = moved.at.duration_since(crashed);
    // corosync notices the crash after token (1 s + 0.65 s for a third
    // node) and consensus (1.2 x token), about 3.6 s; Pacemaker then
    // elects a DC if it lost it, and starts IPaddr2.
    assert!(
        took <= Duration::from_secs(15),
        "{vip} moved only after {took:?}"
    );
    let others: Vec<usize> = all.iter().copied().filter(|h| *h != holder).collect();
    let survivor = vip::converge(
        &lab,
        &vip,
        &others,
        Duration::from_secs(3),
        Duration::from_secs(30),
    );
    assert_eq!(survivor, moved.host);
    let left: Vec<&str> = others.iter().map(|h| names[h - 1].as_str()).collect();
    let survivor_node = nodes[survivor - 1].as_ref().expect("the survivor's node");
    let mon = lab.wait_pacemaker_online(survivor_node, &left, Duration::from_secs(10));
    assert!(
        mon.contains(&format!("OFFLINE: [ {} ]", names[holder - 1])),
        "the crashed node must be offline:\n{mon}"
    );
    report(&format!(
        "{name}: 3 nodes online and quorate after {:.1} s; {vip} on h{holder}; kill -9 of its corosync \
         and Pacemaker -> {vip} on h{} in {} ms (token 1000 ms + 650 ms for the third node, consensus 1.2 x token, \
         then election and IPaddr2 start)",
        formed.as_secs_f64(),
        moved.host,
        ms(took)
    ));
}

/// A file of examples/heartbeat-haresources/ with lab node names
/// (`haN` -> `hN`).
fn haresources_example(file: &str) -> String {
    let t = lab::examples::text(&format!("heartbeat-haresources/{file}"));
    t.replace("\nnode ha", "\nnode h")
        .replace("\nha1 ", "\nh1 ")
}

/// A number from a heartbeat ha.cf (`deadtime 10`).
fn ha_cf_value(ha_cf: &str, key: &str) -> u64 {
    ha_cf
        .lines()
        .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("ha.cf has no `{key}`"))
}

/// heartbeat's haresources moves an IPaddr2 VIP when its holder
/// is killed with -9, through the relay; without it both nodes take the
/// VIP. Two nodes: haresources is a two-node resource manager.
#[test]
fn heartbeat_haresources_ipaddr2_moves_on_kill() {
    let name = "heartbeat_haresources_ipaddr2_moves_on_kill";
    if !lab::root_or_skip(name) {
        return;
    }
    lab::require_programs(lab::heartbeat::PROGRAMS);
    let haresources = haresources_example("haresources");
    assert!(
        haresources.contains("\nh1 IPaddr2::"),
        "examples/heartbeat-haresources/haresources changed its owner"
    );
    let vip = haresources
        .split("IPaddr2::")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .expect("an IPaddr2 VIP")
        .to_string();
    let ha_cf = haresources_example("ha.cf") + "logfile /var/lib/heartbeat/ha-log\n";
    let deadtime = ha_cf_value(&ha_cf, "deadtime");
    let keepalive = Duration::from_secs(ha_cf_value(&ha_cf, "keepalive"));
    let both = [1, 2];

    // Natively on eth0, with short timers so that giving up on the other
    // takes seconds, not the example's initdead.
    {
        let mut lab = Lab::new(2);
        let native = ha_cf
            .replace("mcast mcast0 ", "mcast eth0 ")
            .replace(&format!("deadtime {deadtime}\n"), "deadtime 3\n")
            .replace("warntime 5\n", "warntime 2\n")
            .replace("initdead 30\n", "initdead 6\n");
        assert!(native.contains("deadtime 3\n") && native.contains("initdead 6\n"));
        for h in lab.host_ids() {
            lab.start_heartbeat_resources(h, &native, &haresources);
        }
        lab::wait_for(
            "both nodes to hold the VIP without the relay",
            Duration::from_secs(30),
            || (vip::holders(&lab, &vip) == both).then_some(()),
        );
        report(&format!("{name}: without the relay both nodes hold {vip}"));
    }

    let mut lab = Lab::new(2);
    lab.start_relays_from_example("heartbeat-haresources/mcast-relay.toml");
    let started = Instant::now();
    let mut nodes: Vec<Option<_>> = lab
        .host_ids()
        .map(|h| Some(lab.start_heartbeat_resources(h, &ha_cf, &haresources)))
        .collect();
    vip::converge_on(
        &lab,
        &vip,
        &both,
        1,
        Duration::from_secs(3),
        Duration::from_secs(60),
    );
    let acquired = started.elapsed();
    let watch = Watch::start(&lab, &vip);
    let killed = Instant::now();
    lab.crash_heartbeat(nodes[0].take().expect("h1's heartbeat"));
    let deadtime = Duration::from_secs(deadtime);
    let moved = watch
        .next_added(&[1], deadtime * 3)
        .unwrap_or_else(|| panic!("{vip} did not move to h2 after h1's heartbeat died"));
    let took = moved.at.duration_since(killed);
    // deadtime counts from h1's last heartbeat, up to one keepalive
    // before the kill.
    assert!(
        took + keepalive >= deadtime,
        "{vip} moved after {took:?}, before deadtime {deadtime:?} less a keepalive"
    );
    assert!(
        took <= deadtime * 2,
        "{vip} moved after {took:?}, more than twice deadtime"
    );
    // h1 is dead but still holds the address, as after a crash: h2 must
    // have taken it and keep it.
    assert_eq!(moved.host, 2);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(vip::holders(&lab, &vip), both, "h2 gave {vip} up");
    report(&format!(
        "{name}: h1 held {vip} after {:.1} s; kill -9 of h1's heartbeat -> {vip} on h2 in {} ms (deadtime {} ms)",
        acquired.as_secs_f64(),
        ms(took),
        ms(deadtime)
    ));
}

/// The names of the Spread daemons of a spread.conf, by host (the last
/// octet of each daemon's address).
fn spread_daemons(conf: &str) -> Vec<String> {
    let mut named: Vec<(usize, String)> = conf
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let (name, addr) = (w.next()?, w.next()?);
            let addr: std::net::Ipv4Addr = addr.parse().ok()?;
            let host = usize::from(addr.octets()[3]);
            Some((host, name.to_string()))
        })
        .collect();
    named.sort();
    assert_eq!(
        named.iter().map(|(h, _)| *h).collect::<Vec<_>>(),
        (1..=HOSTS).collect::<Vec<_>>(),
        "examples/spread/spread.conf daemons: {named:?}"
    );
    named.into_iter().map(|(_, n)| n).collect()
}

/// Spread daemons from `conf` and one `spuser` each, joined to `group`.
fn spread_with_users(
    lab: &mut Lab,
    tp: &lab::spread::Thirdparty,
    conf: &str,
    group: &str,
) -> (Vec<lab::spread::SpreadNode>, Vec<lab::spread::SpUser>) {
    let names = spread_daemons(conf);
    let nodes: Vec<_> = (1..=HOSTS)
        .map(|h| lab.start_spread(tp, h, &names[h - 1], conf))
        .collect();
    let users = nodes
        .iter()
        .map(|n| {
            lab.wait_spread_ready(n);
            let u = lab.start_spuser(tp, n, &format!("u{}", n.host));
            u.send(&[&format!("j {group}")]);
            u
        })
        .collect();
    (nodes, users)
}

/// Three Spread daemons with examples/spread/ as shipped form one
/// group of 3 through the relay and deliver a message to every member;
/// without the relay each daemon is alone.
#[test]
fn spread_group_of_three_through_the_relay() {
    let name = "spread_group_of_three_through_the_relay";
    if !lab::root_or_skip(name) {
        return;
    }
    let Some(tp) = lab::spread::built_or_skip(name) else {
        return;
    };
    let conf = lab::examples::text("spread/spread.conf");
    let group = "lab";
    {
        let mut lab = Lab::new(HOSTS);
        let native = conf.replace(" 10.250.0.", " 10.77.0.");
        let (_nodes, users) = spread_with_users(&mut lab, &tp, &native, group);
        // Longer than the group takes to form through the relay (below).
        std::thread::sleep(Duration::from_secs(8));
        for (h, u) in users.iter().enumerate() {
            assert_eq!(
                u.members(group),
                Some(1),
                "h{} without the relay:\n{}",
                h + 1,
                u.output()
            );
        }
        report(&format!(
            "{name}: without the relay each daemon's group has 1 member"
        ));
    }

    let mut lab = Lab::new(HOSTS);
    lab.start_relays_from_example("spread/mcast-relay.toml");
    let started = Instant::now();
    let (_nodes, users) = spread_with_users(&mut lab, &tp, &conf, group);
    lab::wait_for(
        "a group of 3 at every member",
        Duration::from_secs(30),
        || {
            users
                .iter()
                .all(|u| u.members(group) == Some(3))
                .then_some(())
        },
    );
    let formed = started.elapsed();
    let sent = Instant::now();
    for (i, u) in users.iter().enumerate() {
        u.send(&[&format!("s {group}"), &format!("hello from h{}", i + 1)]);
    }
    lab::wait_for(
        "every message at every member",
        Duration::from_secs(10),
        || {
            users
                .iter()
                .all(|u| (1..=HOSTS).all(|h| u.output().contains(&format!("hello from h{h}"))))
                .then_some(())
        },
    );
    report(&format!(
        "{name}: a group of {HOSTS} after {:.1} s; {HOSTS} SAFE messages at all {HOSTS} members in {} ms",
        formed.as_secs_f64(),
        ms(sent.elapsed())
    ));
}

/// wackamole on the three Spread daemons keeps one holder of the
/// VIP through the relay (without it every node holds it), and a crash of
/// the holder's Spread daemon and wackamole moves the VIP to a survivor.
#[test]
fn wackamole_vip_moves_on_crash() {
    let name = "wackamole_vip_moves_on_crash";
    if !lab::root_or_skip(name) {
        return;
    }
    let Some(tp) = lab::spread::built_or_skip(name) else {
        return;
    };
    let spread = lab::examples::text("spread/spread.conf");
    let wackamole = lab::examples::text("wackamole/wackamole.conf");
    let vip = wackamole
        .split("eth0:")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .expect("examples/wackamole/wackamole.conf has a VIP on eth0")
        .to_string();
    let all: Vec<usize> = (1..=HOSTS).collect();
    let start = |lab: &mut Lab, conf: &str| -> Vec<lab::spread::SpreadNode> {
        let names = spread_daemons(conf);
        let nodes: Vec<_> = (1..=HOSTS)
            .map(|h| lab.start_spread(&tp, h, &names[h - 1], conf))
            .collect();
        for n in &nodes {
            lab.wait_spread_ready(n);
            lab.start_wackamole(&tp, n, &wackamole);
        }
        nodes
    };
    {
        let mut lab = Lab::new(HOSTS);
        start(&mut lab, &spread.replace(" 10.250.0.", " 10.77.0."));
        lab::wait_for(
            "every node to hold the VIP without the relay",
            Duration::from_secs(30),
            || (vip::holders(&lab, &vip) == all).then_some(()),
        );
        report(&format!(
            "{name}: without the relay all of {all:?} hold {vip}"
        ));
    }

    let mut lab = Lab::new(HOSTS);
    lab.start_relays_from_example("spread/mcast-relay.toml");
    let mut nodes: Vec<Option<_>> = start(&mut lab, &spread).into_iter().map(Some).collect();
    let stable = Duration::from_secs(5);
    let holder = vip::converge(&lab, &vip, &all, stable, Duration::from_secs(40));
    let watch = Watch::start(&lab, &vip);
    let crashed = Instant::now();
    lab.crash_spread(nodes[holder - 1].take().expect("the holder's node"));
    let moved = watch
        .next_added(&[holder], Duration::from_secs(30))
        .unwrap_or_else(|| panic!("{vip} did not leave crashed h{holder}"));
    let took = moved.at.duration_since(crashed);
    // Spread's default timeouts notice a dead daemon within seconds, and
    // wackamole re-balances at once on the new membership.
    assert!(
        took <= Duration::from_secs(10),
        "{vip} moved only after {took:?}"
    );
    let others: Vec<usize> = all.iter().copied().filter(|h| *h != holder).collect();
    assert_eq!(
        vip::converge(&lab, &vip, &others, stable, Duration::from_secs(30)),
        moved.host
    );
    report(&format!(
        "{name}: one holder (h{holder}) of {vip} through the relay; kill -9 of its spread and wackamole -> \
         {vip} on h{} in {} ms",
        moved.host,
        ms(took)
    ));
}
