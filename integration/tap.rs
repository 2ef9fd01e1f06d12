//! Tap mode end to end: the relays carry Ethernet frames. Stock ucarp
//! (which only speaks Ethernet) elects one master on three hosts, fails
//! over when the master is killed and is preempted back; unicast between
//! overlay addresses resolves its neighbours over the relay (ARP and IPv6
//! neighbour discovery) and reaches only its peer.
//!
//! Needs root; without it each test prints a visible SKIPPED line.

use crate::lab;

use std::io::Write;
use std::time::{Duration, Instant};

use lab::ucarp::Carp;
use lab::vip::{self, Watch};
use lab::{Lab, RelayOptions};
use mcast_relay::core::DropReason;

const HOSTS: usize = 3;

fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Prints every UDP datagram that reaches port 5405 (IPv4 or IPv6) as
/// `<source> <text>`, one per line.
const LISTENER: &str = "
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(('::', 5405))
while True:
    d, a = s.recvfrom(200)
    print(a[0], d.decode(errors='replace'), flush=True)
";

/// h1 sends to h2's overlay addresses; neither host knows the other's MAC
/// until ARP / neighbour discovery has crossed the relay. h3 sees neither
/// datagram: unicast frames go to their owner only.
#[test]
fn overlay_unicast_resolves_neighbours_over_the_relay() {
    let name = "overlay_unicast_resolves_neighbours_over_the_relay";
    if !lab::root_or_skip(name) {
        return;
    }
    lab::require_programs(&[("python3", "python3")]);
    let mut lab = Lab::new(HOSTS);
    lab.start_relays(RelayOptions {
        tap: true,
        presets: vec!["vrrp", "corosync"],
        ..RelayOptions::default()
    });
    let logs: Vec<_> = lab
        .host_ids()
        .map(|h| lab.path(&format!("udp{h}.log")))
        .collect();
    for h in [2, 3] {
        lab.spawn(
            h,
            "udp listener",
            &["python3", "-c", LISTENER],
            &logs[h - 1],
        );
    }
    for (dst, text) in [("10.250.0.2", "over-ipv4"), ("fd00:250::2", "over-ipv6")] {
        let send = format!(
            "import socket\ns = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n\
             s.sendto(b'{text}', ('{}', 5405))\n",
            if dst.contains(':') {
                dst.to_string()
            } else {
                format!("::ffff:{dst}")
            }
        );
        // Retried: the listener and IPv6 duplicate address detection need
        // a moment after start.
        lab::wait_for(
            &format!("h2 to receive {text} from h1"),
            Duration::from_secs(15),
            || {
                lab.try_exec(1, &["python3", "-c", &send]);
                std::thread::sleep(Duration::from_millis(300));
                (lab::count_lines(&logs[1], text) > 0).then_some(())
            },
        );
    }
    let neigh = String::from_utf8_lossy(
        &lab.exec(1, &["ip", "neigh", "show", "dev", "mcast0"])
            .stdout,
    )
    .to_string();
    for addr in ["10.250.0.2 ", "fd00:250::2 "] {
        let line = neigh
            .lines()
            .find(|l| l.starts_with(addr))
            .unwrap_or_else(|| panic!("h1 has no neighbour entry for {addr}:\n{neigh}"));
        assert!(
            line.contains("lladdr 02:6d:0a:fa:00:02"),
            "h2's MAC must be its node MAC: {line}"
        );
    }
    let h2_log = std::fs::read_to_string(&logs[1]).unwrap_or_default();
    assert!(
        h2_log.contains("10.250.0.1 over-ipv4") && h2_log.contains("fd00:250::1 over-ipv6"),
        "sources must be h1's overlay addresses:\n{h2_log}"
    );
    assert_eq!(
        lab::count_lines(&logs[2], "over-ipv"),
        0,
        "h3 must not receive h2's unicast"
    );
    let c2 = lab.relay_counters(2);
    // Any datagram refused but the benign moment right after start.
    let refused = lab::refused(&c2, &[DropReason::NoSession]);
    assert_eq!(refused, 0, "h2's relay refused frames: {c2:?}");
    report(&format!(
        "{name}: ARP and neighbour discovery crossed the relay; h1's neighbours on mcast0:\n{}",
        neigh.trim_end()
    ));
}

/// advskew of h1, h2, h3: h1 is the preferred master, h2 next in line.
const ADVSKEW: [u8; HOSTS] = [0, 10, 20];

/// How long one holder must stay alone before we call it elected.
fn settle(carp: Carp) -> Duration {
    carp.master_down(ADVSKEW[HOSTS - 1]) + Duration::from_millis(500)
}

const ELECTION_TIMEOUT: Duration = Duration::from_secs(30);

/// The same ucarp on eth0 with the relay absent: the lab's cloud drops
/// multicast, so every node believes it is the master.
#[test]
fn ucarp_without_the_relay_splits() {
    let name = "ucarp_without_the_relay_splits";
    if !lab::root_or_skip(name) {
        return;
    }
    lab::require_programs(lab::ucarp::PROGRAMS);
    let mut lab = Lab::new(HOSTS);
    let carp = Carp {
        advbase: 1,
        interface: "eth0",
    };
    let _ucarps: Vec<_> = lab
        .host_ids()
        .map(|h| lab.start_ucarp(h, carp, ADVSKEW[h - 1]))
        .collect();
    let holders = lab::wait_for(
        "several masters on a network that drops multicast",
        Duration::from_secs(15),
        || {
            let now = vip::holders(&lab, vip::VIP4);
            (now.len() >= 2).then_some(now)
        },
    );
    report(&format!(
        "{name}: without the relay {} hosts hold the VIP: {holders:?}",
        holders.len()
    ));
}

/// ucarp on 3 hosts through the relays in tap mode, configured from
/// examples/ucarp/ as shipped: one master; kill -9 of the master moves the
/// VIP to the next in line within its master-down time; the returning
/// preferred node preempts.
#[test]
fn ucarp_elects_fails_over_and_preempts_through_the_relay() {
    let name = "ucarp_elects_fails_over_and_preempts_through_the_relay";
    if !lab::root_or_skip(name) {
        return;
    }
    lab::require_programs(lab::ucarp::PROGRAMS);
    let mut lab = Lab::new(HOSTS);
    lab.configure_relays_from_example("ucarp/mcast-relay.toml");
    for h in lab.host_ids() {
        lab.start_relay(h);
    }
    let carp = Carp {
        advbase: 1,
        interface: "mcast0",
    };
    let vip = vip::VIP4;
    let watch = Watch::start(&lab, vip);
    let mut ucarps: Vec<_> = lab
        .host_ids()
        .map(|h| Some(lab.start_ucarp(h, carp, ADVSKEW[h - 1])))
        .collect();
    let all: Vec<usize> = lab.host_ids().collect();
    let master = vip::converge(&lab, vip, &all, settle(carp), ELECTION_TIMEOUT);
    assert_eq!(master, 1, "the lowest advskew must win the election");

    watch.clear();
    ucarps[0].take().expect("h1 ucarp").crash(&mut lab);
    let killed = Instant::now();
    let theory = carp.master_down(ADVSKEW[1]);
    // The master's last advert went out before the kill, so the latest
    // takeover after it also bounds the takeover after the kill: ucarp
    // sees adverts up to its capture timeout late and checks its timer
    // only when its poll returns (see lab/ucarp.rs); 200 ms for the up
    // script and scheduling.
    let bound = carp.latest_takeover(ADVSKEW[1]) + Duration::from_millis(200);
    let added = watch
        .next_added(&[1], bound * 3)
        .unwrap_or_else(|| panic!("no node took {vip} over within {:?}", bound * 3));
    let took = added.at.duration_since(killed);
    report(&format!(
        "{name}: VIP moved h1 -> h{} in {:.0} ms (theory: 3 x advbase + advskew/256 = {:.0} ms after the last advert; bound {:.0} ms)",
        added.host,
        took.as_secs_f64() * 1e3,
        theory.as_secs_f64() * 1e3,
        bound.as_secs_f64() * 1e3
    ));
    assert_eq!(added.host, 2, "the next in line must take over");
    assert!(took <= bound, "failover took {took:?}, more than {bound:?}");
    assert_eq!(
        vip::converge(&lab, vip, &[2, 3], settle(carp), ELECTION_TIMEOUT),
        2
    );

    // h1 returns (without the stale VIP, as after a reboot) and preempts.
    lab.exec(
        1,
        &["ip", "addr", "del", &format!("{vip}/32"), "dev", "eth0"],
    );
    watch.clear();
    let back = Instant::now();
    ucarps[0] = Some(lab.start_ucarp(1, carp, ADVSKEW[0]));
    vip::converge_on(&lab, vip, &all, 1, settle(carp), ELECTION_TIMEOUT);
    let returned = watch
        .next_added(&[2, 3], Duration::ZERO)
        .map(|a| a.at.duration_since(back));
    report(&format!(
        "{name}: h1 preempted {:.0} ms after it restarted",
        returned.map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
    ));

    // What crossed the relays: CARP adverts and nothing refused. ucarp's
    // own gratuitous ARP for the VIP on the tap is kept off the overlay.
    for h in lab.host_ids() {
        let c = lab.relay_counters(h);
        let refused = lab::refused(&c, &[DropReason::NoSession]);
        assert_eq!(refused, 0, "h{h}'s relay refused frames: {c:?}");
        assert!(
            c.get("injected").copied().unwrap_or(0) > 0,
            "h{h} injected nothing"
        );
    }
}
