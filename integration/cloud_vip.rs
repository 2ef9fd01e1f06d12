//! `[[vip]]` hooks end to end, with stock keepalived (VRRPv3, advert_int
//! 0.1) on 3 hosts through the relay: the hook runs on the only master
//! once it has been so for `settle`; an asymmetric partition (two
//! masters, one of which hears nobody else) runs no hook anywhere while
//! the alarm is up; a master that flaps twice within settle makes at most
//! one call; with the EC2 emulator (moto) and the shipped AWS hooks, the
//! Elastic IP and the route follow the master after kill -9, and a hook
//! that fails or hangs is retried, shown in status and killed at its
//! timeout. Needs root; skips visibly without it.

use crate::lab;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use lab::keepalived::{Keepalived, Vrrp};
use lab::vip;
use lab::{Lab, RelayOptions};
use serde_json::Value;

const PRIORITY: [u8; 3] = [200, 150, 100];
const SETTLE: f64 = 2.0;

fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// A hook that appends "<node> <seconds since 1970>" to `calls`, which
/// the unprivileged relay may write.
fn recording_hook(lab: &Lab) -> (PathBuf, PathBuf) {
    let calls = lab.path("hook-calls");
    fs::write(&calls, "").expect("cannot create the calls file");
    fs::set_permissions(&calls, fs::Permissions::from_mode(0o666)).expect("chmod");
    let hook = lab.path("record-hook");
    fs::write(
        &hook,
        "#!/bin/sh\nset -eu\necho \"$MCAST_RELAY_NODE $(date +%s.%N) $MCAST_RELAY_VRID $MCAST_RELAY_FAMILY $MCAST_RELAY_VIP\" >> \"$1\"\n",
    )
    .expect("cannot write the hook");
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).expect("chmod");
    (hook, calls)
}

fn calls(file: &Path) -> Vec<String> {
    fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

fn vip_table(argv: &[&str], timeout: f64) -> String {
    let argv: Vec<String> = argv.iter().map(|a| format!("{a:?}")).collect();
    format!(
        "\n[[vip]]\nvrid = 51\naddress = \"{}\"\non_master = [{}]\nsettle = {SETTLE:?}\ntimeout = {timeout:?}\n",
        vip::VIP4,
        argv.join(", ")
    )
}

/// The status entry of `[[vip]]` VRID 51 on host `h`.
fn vip_state(lab: &Lab, h: usize) -> Value {
    let st = lab.relay_status(h);
    st["vips"]
        .as_array()
        .and_then(|v| v.first().cloned())
        .unwrap_or(Value::Null)
}

fn start(
    lab: &mut Lab,
    tables: String,
    env: &dyn Fn(usize) -> Vec<(String, String)>,
) -> (Vrrp, Vec<Keepalived>) {
    lab.configure_relays(RelayOptions {
        tables,
        ..RelayOptions::default()
    });
    for h in lab.host_ids() {
        let e = env(h);
        let e: Vec<(&str, &str)> = e.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        lab.start_relay_env(h, &e);
    }
    let vrrp = Vrrp::v3(0.1);
    let kas = lab
        .host_ids()
        .map(|h| lab.start_keepalived(h, vrrp, PRIORITY[h - 1]))
        .collect();
    let all: Vec<usize> = lab.host_ids().collect();
    let stable = vrrp.master_down(PRIORITY[2]) + Duration::from_millis(500);
    vip::converge_on(lab, vrrp.vip(), &all, 1, stable, Duration::from_secs(30));
    (vrrp, kas)
}

#[test]
fn a_partition_runs_no_hook_and_a_flapping_master_one() {
    if !lab::root_or_skip("a_partition_runs_no_hook_and_a_flapping_master_one") {
        return;
    }
    lab::require_programs(lab::keepalived::PROGRAMS);
    let mut lab = Lab::new(3);
    let (hook, file) = recording_hook(&lab);
    let table = vip_table(
        &[
            hook.to_str().unwrap_or_default(),
            file.to_str().unwrap_or_default(),
        ],
        10.0,
    );
    let (_vrrp, kas) = start(&mut lab, table, &|_| Vec::new());

    // The master's hook runs once it has been the only master for settle.
    let first = lab::wait_for("h1's hook to run", Duration::from_secs(10), || {
        let c = calls(&file);
        (!c.is_empty()).then_some(c)
    });
    assert_eq!(first, ["h1"], "only the master calls");
    let line = fs::read_to_string(&file).unwrap_or_default();
    assert!(
        line.contains(" 51 ipv4 10.77.0.100"),
        "the hook's variables: {line}"
    );
    lab::wait_for("h1's status to say done", Duration::from_secs(5), || {
        (vip_state(&lab, 1)["state"] == "done").then_some(())
    });
    for h in [2, 3] {
        assert_eq!(vip_state(&lab, h)["state"], "not master", "h{h}");
    }

    // h2 stops hearing h1: two masters. h2 hears only itself, h3 both.
    lab.drop_relay_traffic(2, 1);
    let cut = Instant::now();
    let held = lab::wait_for("h2's claim to be held", Duration::from_secs(10), || {
        let v = vip_state(&lab, 2);
        (v["state"] == "held").then_some(v)
    });
    let held_after = cut.elapsed();
    assert!(
        held["detail"]
            .as_str()
            .is_some_and(|d| d.contains("reported by h")),
        "h2 learns of the split brain from another relay: {held}"
    );
    // Well past settle: still nobody calls.
    sleep(Duration::from_secs_f64(SETTLE * 3.0));
    assert_eq!(vip::holders(&lab, vip::VIP4), vec![1, 2], "two masters");
    assert_eq!(calls(&file), ["h1"], "no hook ran during the split brain");
    assert_eq!(vip_state(&lab, 2)["state"], "held");
    let alarms = lab.relay_status(2)["alarms"].to_string();
    assert!(alarms.contains("vip VRID 51 (IPv4): held"), "{alarms}");

    // Healed: h2 steps down; h1 is the only master again and claims anew.
    lab.allow_relay_traffic(2);
    let healed = Instant::now();
    lab::wait_for(
        "h1 to claim again after the heal",
        Duration::from_secs(15),
        || (calls(&file).len() == 2).then_some(()),
    );
    let reclaimed_after = healed.elapsed();
    assert_eq!(
        calls(&file),
        ["h1", "h1"],
        "the address ends on the only master"
    );

    // h1 flaps: frozen twice for 1 s (h2 masters for ~0.6 s each time),
    // both within settle.
    let vrrp_child = kas[0].vrrp_pid();
    let before = calls(&file).len();
    for _ in 0..2 {
        lab::signal(vrrp_child, libc::SIGSTOP);
        sleep(Duration::from_secs(1));
        lab::signal(vrrp_child, libc::SIGCONT);
        sleep(Duration::from_millis(300));
    }
    sleep(Duration::from_secs_f64(SETTLE + 2.0));
    let after: Vec<String> = calls(&file)[before..].to_vec();
    assert!(
        !after.contains(&"h2".to_string()),
        "h2 was never master for settle: {after:?}"
    );
    assert!(
        after.len() <= 1,
        "at most one call after two flaps: {after:?}"
    );
    assert_eq!(vip::holders(&lab, vip::VIP4), vec![1]);
    report(&format!(
        "vip hooks: h1 called once at start; asymmetric partition -> VIP on [1, 2], h2 held after {} ms ({}), no call for {:.0} s; healed -> h1 claimed again after {} ms; two 1 s flaps of h1 -> calls after: {after:?}",
        held_after.as_millis(),
        held["detail"].as_str().unwrap_or("?"),
        SETTLE * 3.0,
        reclaimed_after.as_millis()
    ));
    drop(kas);
}

/// ucarp: the relay watches CARP adverts (VHID as `vrid`) as it watches
/// VRRP's, so the same `[[vip]]` works without touching ucarp's scripts.
/// Configured from examples/ucarp/ as shipped plus one `[[vip]]`: the
/// master calls; after kill -9 of its ucarp the next in line calls once,
/// the third never.
#[test]
fn ucarp_masters_call_the_hook_through_the_carp_watch() {
    let name = "ucarp_masters_call_the_hook_through_the_carp_watch";
    if !lab::root_or_skip(name) {
        return;
    }
    lab::require_programs(lab::ucarp::PROGRAMS);
    let mut lab = Lab::new(3);
    lab.configure_relays_from_example("ucarp/mcast-relay.toml");
    let (hook, file) = recording_hook(&lab);
    let table = vip_table(
        &[
            hook.to_str().unwrap_or_default(),
            file.to_str().unwrap_or_default(),
        ],
        10.0,
    );
    let text = fs::read_to_string(lab.cluster_file()).expect("the cluster file");
    lab.write_cluster_file(&(text + &table.replace("vrid = 51", "vrid = 1")));
    for h in lab.host_ids() {
        lab.start_relay(h);
    }
    let carp = lab::ucarp::Carp {
        advbase: 1,
        interface: "mcast0",
    };
    let advskew = [0u8, 10, 20];
    let mut ucarps: Vec<_> = lab
        .host_ids()
        .map(|h| Some(lab.start_ucarp(h, carp, advskew[h - 1])))
        .collect();
    lab::wait_for("h1's hook to run", Duration::from_secs(30), || {
        (!calls(&file).is_empty()).then_some(())
    });
    assert_eq!(
        calls(&file),
        ["lb1"],
        "the example names its members lb1..lb3"
    );
    let watch = vip::Watch::start(&lab, vip::VIP4);
    ucarps[0].take().expect("h1's ucarp").crash(&mut lab);
    let killed = Instant::now();
    let moved = watch.next_added(&[1], Duration::from_secs(15));
    lab::wait_for("h2's hook to run", Duration::from_secs(30), || {
        (calls(&file).len() >= 2).then_some(())
    });
    let called = killed.elapsed();
    sleep(Duration::from_secs(3));
    assert_eq!(calls(&file), ["lb1", "lb2"], "one call per new master");
    let log = fs::read_to_string(lab.relay_log(1)).unwrap_or_default();
    for l in log.lines().filter(|l| l.contains("vip:")) {
        report(&format!("relay h1| {l}"));
    }
    report(&format!(
        "{name}: h1 called at start; kill -9 of its ucarp -> VIP on h{} after {} ms, h2's hook ran {} ms after the kill (settle {SETTLE} s)",
        moved.as_ref().map_or(0, |a| a.host),
        moved.map_or(0, |a| a.at.duration_since(killed).as_millis()),
        called.as_millis()
    ));
}
