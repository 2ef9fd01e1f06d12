//! The live demo behind `./integration/demo` (as root): three hosts on a
//! simulated cloud network that drops multicast, stock keepalived first
//! without the relay (split brain), then through mcast-relay (one master),
//! the master killed, the VIP moving and the time it took.

mod lab;

use std::time::{Duration, Instant};

use lab::keepalived::Vrrp;
use lab::vip::{self, Watch};
use lab::{Lab, RelayOptions};

const PRIORITY: [u8; 3] = [200, 150, 100];

fn step(text: &str) {
    println!("\n==> {text}");
}

fn holders_line(lab: &Lab) -> String {
    let h = vip::holders(lab, vip::VIP4);
    if h.is_empty() {
        "nobody".to_string()
    } else {
        h.iter()
            .map(|h| format!("h{h}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn main() {
    if !lab::is_root() {
        eprintln!("the demo builds network namespaces and needs root: run it as root");
        std::process::exit(1);
    }
    lab::require_programs(lab::keepalived::PROGRAMS);
    let vrrp = Vrrp::v3(1.0);
    let settle = vrrp.master_down(PRIORITY[2]) + Duration::from_millis(500);
    let timeout = Duration::from_secs(30);

    step(
        "A lab: hosts h1, h2, h3 (10.77.0.1-3) on a cloud bridge that drops multicast and broadcast",
    );
    println!(
        "    keepalived VRRPv3, advert_int 1, priorities h1=200 h2=150 h3=100, VIP {}",
        vip::VIP4
    );
    {
        let mut lab = Lab::new(3);
        step("Without the relay: keepalived on eth0");
        let native = Vrrp {
            interface: "eth0",
            ..vrrp
        };
        for h in lab.host_ids() {
            lab.start_keepalived(h, native, PRIORITY[h - 1]);
        }
        std::thread::sleep(native.master_down(PRIORITY[2]) + Duration::from_secs(2));
        println!(
            "    VIP held by: {}  <- split brain: the adverts never arrive",
            holders_line(&lab)
        );
    }

    let mut lab = Lab::new(3);
    step("With mcast-relay: one relay per host, keepalived pointed at mcast0");
    lab.start_relays(RelayOptions::default());
    println!(
        "    the cluster file, the same bytes on every host: {}",
        lab.cluster_file().display()
    );
    let watch = Watch::start(&lab, vip::VIP4);
    let mut kas: Vec<_> = lab
        .host_ids()
        .map(|h| Some(lab.start_keepalived(h, vrrp, PRIORITY[h - 1])))
        .collect();
    let all: Vec<usize> = lab.host_ids().collect();
    let t = Instant::now();
    vip::converge_on(&lab, vip::VIP4, &all, 1, settle, timeout);
    println!(
        "    VIP held by: {}  (one master, stable {:.1} s after start)",
        holders_line(&lab),
        t.elapsed().as_secs_f64()
    );

    step("kill -9 keepalived on h1 (a crash: no goodbye advert)");
    watch.clear();
    kas[0].take().expect("h1 keepalived").crash(&mut lab);
    let killed = Instant::now();
    match watch.next_added(&[1], timeout) {
        Some(a) => println!(
            "    VIP moved to h{} in {:.0} ms (VRRP master-down interval for h2: {:.0} ms)",
            a.host,
            a.at.duration_since(killed).as_secs_f64() * 1e3,
            vrrp.master_down(PRIORITY[1]).as_secs_f64() * 1e3
        ),
        None => {
            lab.dump_logs();
            eprintln!("no node took the VIP over within {timeout:?}");
            std::process::exit(1);
        }
    }

    step("h1 comes back (stale VIP removed as by a reboot, keepalived restarted)");
    lab.exec(
        1,
        &[
            "ip",
            "addr",
            "del",
            &format!("{}/24", vip::VIP4),
            "dev",
            "eth0",
        ],
    );
    watch.clear();
    let restarted = Instant::now();
    kas[0] = Some(lab.start_keepalived(1, vrrp, PRIORITY[0]));
    vip::converge_on(
        &lab,
        vip::VIP4,
        &all,
        1,
        Duration::from_millis(500),
        timeout,
    );
    println!(
        "    VIP back on: {} after {:.1} s (h1 has the highest priority and preempts)",
        holders_line(&lab),
        restarted.elapsed().as_secs_f64()
    );

    step("What the relay on h2 logged");
    println!("{}", indent(&lab::tail(&lab.relay_log(2), 5)));
    println!("\nDone; the lab is removed. Run every test with: ./integration/run-tests");
}

fn indent(s: &str) -> String {
    s.lines()
        .map(|l| format!("      {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
