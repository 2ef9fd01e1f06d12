//! Tap mode end to end: the relays carry Ethernet frames. Stock ucarp
//! (which only speaks Ethernet) elects one master on three hosts, fails
//! over when the master is killed and is preempted back; unicast between
//! overlay addresses resolves its neighbours over the relay (ARP and IPv6
//! neighbour discovery) and reaches only its peer.
//!
//! Needs root; without it each test prints a visible SKIPPED line.

mod lab;

use std::io::Write;
use std::time::Duration;

use lab::{Lab, RelayOptions};
use mcast_relay::counters::DropReason;

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
    let refused: u64 = DropReason::ALL
        .iter()
        .filter(|r| r.from_network() && **r != DropReason::UnconfirmedEpoch)
        .map(|r| c2.get(r.name()).copied().unwrap_or(0))
        .sum();
    assert_eq!(refused, 0, "h2's relay refused frames: {c2:?}");
    report(&format!(
        "{name}: ARP and neighbour discovery crossed the relay; h1's neighbours on mcast0:\n{}",
        neigh.trim_end()
    ));
}
