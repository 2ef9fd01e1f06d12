//! Day-2 operations with stock keepalived running. Live reload (SIGHUP): a
//! fourth host joins a running 3-host cluster and leaves again by config
//! edits and SIGHUP, with no master change and no packet lost between
//! unchanged peers; a broken config, and one that changes what needs a
//! restart, are refused while the relay keeps running. DNS names: a peer's
//! name moves to another address and the traffic follows; a name that stops
//! resolving keeps the last address. `check` on a host built to fail each
//! of its findings. The systemd watchdog, with the test as the service
//! manager. Needs root; skips visibly without it.

use crate::lab;

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use lab::keepalived::Vrrp;
use lab::vip::{self, Watch};
use lab::{Lab, RelayOptions};

const PRIORITY: [u8; 4] = [200, 150, 100, 50];

fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Network drops, `unconfirmed_epoch` included: anything that would mean
/// a peer's packet was refused.
fn refused(c: &HashMap<String, u64>) -> u64 {
    lab::refused(c, &[])
}

fn reload_all(lab: &Lab, hosts: &[usize], expect: &str) {
    for &h in hosts {
        let line = lab.reload_relay(h);
        assert!(
            line.contains("reloaded") && line.contains(expect),
            "h{h}: unexpected reload outcome: {line}"
        );
    }
}

#[test]
fn sighup_adds_and_removes_a_peer_without_a_master_change() {
    if !lab::root_or_skip("sighup_adds_and_removes_a_peer_without_a_master_change") {
        return;
    }
    lab::require_programs(lab::keepalived::PROGRAMS);
    let mut lab = Lab::new(4);
    let three = [1, 2, 3];
    lab.set_members(&three);
    lab.configure_relays(RelayOptions::default());
    for h in three {
        lab.start_relay(h);
    }
    let vrrp = Vrrp::v3(0.1);
    for h in three {
        lab.start_keepalived(h, vrrp, PRIORITY[h - 1]);
    }
    let settle = vrrp.master_down(PRIORITY[2]) + Duration::from_millis(500);
    vip::converge_on(&lab, vrrp.vip(), &three, 1, settle, Duration::from_secs(30));
    let watch = Watch::start(&lab, vrrp.vip());

    // --- h4 joins --------------------------------------------------------
    let sealed_before = lab.relay_counters(1)["sealed"];
    let h2_before = lab.relay_counters(2);
    // h4's [[member]] goes into the one cluster file, copied to every host.
    lab.set_members(&[1, 2, 3, 4]);
    lab.configure_relays(RelayOptions::default());
    lab.assert_cluster_files_identical();
    // The running nodes learn of h4 first, then h4 starts: no node ever
    // hears from a peer it does not know.
    reload_all(&lab, &three, "added=h4");
    lab.start_relay(4);
    for h in three {
        let log = lab.relay_log(h);
        lab::wait_for(
            &format!("h{h}'s relay to confirm h4"),
            Duration::from_secs(10),
            || {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                text.lines()
                    .any(|l| l.contains("peer confirmed") && l.contains("peer=h4"))
                    .then_some(())
            },
        );
    }
    let k4 = lab.start_keepalived(4, vrrp, PRIORITY[3]);
    // Long enough for h4 to take the VIP if it did not hear the master.
    std::thread::sleep(vrrp.master_down(PRIORITY[3]) * 5);
    let sealed = lab.relay_counters(1)["sealed"] - sealed_before;
    let h2_after = lab.relay_counters(2);
    let h2_injected = h2_after["injected"] - h2_before["injected"];
    let h4 = lab.relay_counters(4);
    assert!(
        h4["injected"] > 0,
        "h4 heard nothing through the relay: {h4:?}"
    );
    assert_eq!(
        refused(&h2_after),
        refused(&h2_before),
        "h2 refused datagrams around the reload: {h2_before:?} -> {h2_after:?}"
    );
    // Every advert h1 sealed reached h2 (a few may be in flight between
    // the two counter readings).
    assert!(
        h2_injected + 3 >= sealed && h2_injected <= sealed + 3,
        "h1 sealed {sealed} adverts, h2 injected {h2_injected}"
    );
    report(&format!(
        "reload: h4 joined by SIGHUP on h1-h3; across it h1 sealed {sealed} adverts, h2 injected {h2_injected}, refused 0; h4 injected {}",
        h4["injected"]
    ));

    // --- h4 leaves -------------------------------------------------------
    k4.stop(&mut lab);
    lab.stop_relay(4);
    lab.set_members(&three);
    lab.configure_relays(RelayOptions::default());
    lab.assert_cluster_files_identical();
    reload_all(&lab, &three, "removed=h4");

    // --- a broken file and a change that needs a restart ----------------
    // Only h1's copy is broken (and then restored): h1 alone reloads it.
    let cfg1 = lab.relay_config_path(1);
    let good = std::fs::read_to_string(&cfg1).expect("relay1.toml");
    std::fs::write(&cfg1, format!("{good}\n[[member]\nname = broken\n")).expect("write");
    let line = lab.reload_relay(1);
    assert!(
        line.contains("rejected") && line.contains("relay1.toml"),
        "a broken config was not refused clearly: {line}"
    );
    std::fs::write(&cfg1, good.replace("0.0.0.0:7112", "0.0.0.0:7113")).expect("write");
    let line = lab.reload_relay(1);
    assert!(
        line.contains("rejected") && line.contains("node.listen") && line.contains("restart"),
        "a listen change was not refused: {line}"
    );
    std::fs::write(&cfg1, &good).expect("write");
    // Still relaying on the old configuration.
    let before = lab.relay_counters(2)["injected"];
    std::thread::sleep(Duration::from_secs(1));
    let after = lab.relay_counters(2)["injected"];
    assert!(
        after >= before + 5,
        "h2 stopped receiving adverts: {before} -> {after}"
    );

    let moved = watch.next_added(&[], Duration::ZERO);
    assert!(moved.is_none(), "the VIP moved: {moved:?}");
    assert_eq!(vip::holders(&lab, vrrp.vip()), vec![1]);
    report(
        "reload: h4 left by SIGHUP; a broken file and a listen change were refused with the old config kept; VIP stayed on h1 throughout (0 master changes)",
    );
}

#[test]
fn peers_by_dns_name_follow_a_moved_address() {
    if !lab::root_or_skip("peers_by_dns_name_follow_a_moved_address") {
        return;
    }
    lab::require_programs(lab::keepalived::PROGRAMS);
    let mut lab = Lab::new(3);
    let interval = 0.5;
    lab.start_relays(RelayOptions {
        endpoint_names: true,
        resolve_interval: Some(interval),
        ..RelayOptions::default()
    });
    let vrrp = Vrrp::v3(0.1);
    for h in lab.host_ids() {
        lab.start_keepalived(h, vrrp, PRIORITY[h - 1]);
    }
    let all: Vec<usize> = lab.host_ids().collect();
    let settle = vrrp.master_down(PRIORITY[2]) + Duration::from_millis(500);
    vip::converge_on(&lab, vrrp.vip(), &all, 1, settle, Duration::from_secs(30));
    let watch = Watch::start(&lab, vrrp.vip());

    // h2 gets a new underlay address; h1's and h3's hosts files move the
    // name there; then the old address goes away.
    // Keep the new address when the old (primary) one is deleted.
    lab.exec(
        2,
        &["sysctl", "-qw", "net.ipv4.conf.eth0.promote_secondaries=1"],
    );
    lab.exec(2, &["ip", "addr", "add", "10.77.0.97/24", "dev", "eth0"]);
    for h in [1, 3] {
        lab.set_host_entry(h, "h2.lab", Some("10.77.0.97"));
    }
    for h in [1, 3] {
        let log = lab.relay_log(h);
        lab::wait_for(
            &format!("h{h}'s relay to follow h2.lab to 10.77.0.97"),
            Duration::from_secs(10),
            || {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                text.lines()
                    .any(|l| l.contains("peer endpoint resolved") && l.contains("10.77.0.97"))
                    .then_some(())
            },
        );
    }
    lab.exec(2, &["ip", "addr", "del", "10.77.0.2/24", "dev", "eth0"]);
    let before = lab.relay_counters(2)["injected"];
    std::thread::sleep(Duration::from_secs(2));
    let followed = lab.relay_counters(2)["injected"] - before;
    // h1 adverts 10 times a second.
    assert!(
        followed >= 15,
        "h2 got {followed} packets in 2 s at its new address"
    );

    // The name stops resolving: the last address stays in use, one warning.
    lab.set_host_entry(1, "h2.lab", None);
    std::thread::sleep(Duration::from_secs_f64(interval * 8.0));
    let warned = lab::count_lines(&lab.relay_log(1), "cannot resolve peer endpoint");
    assert_eq!(
        warned, 1,
        "a failing name must be warned about exactly once"
    );
    let before = lab.relay_counters(2)["injected"];
    std::thread::sleep(Duration::from_secs(1));
    let kept = lab.relay_counters(2)["injected"] - before;
    assert!(
        kept >= 5,
        "h2 got {kept} packets after its name stopped resolving"
    );

    let moved = watch.next_added(&[], Duration::ZERO);
    assert!(moved.is_none(), "the VIP moved: {moved:?}");
    assert_eq!(vip::holders(&lab, vrrp.vip()), vec![1]);
    report(&format!(
        "dns: h2.lab moved to 10.77.0.97 and the old address went away: h2 kept receiving ({followed} packets in 2 s); \
         the name stopped resolving: 1 warning, last address kept ({kept} packets in 1 s); 0 master changes"
    ));
}

/// `mcast-relay check` in a lab host, with that host's key and `tools` as
/// `--tool-config` (none: check's defaults); returns exit status and
/// output.
fn run_check(lab: &Lab, h: usize, cfg: &str, tools: &[&std::path::Path]) -> (bool, String) {
    let file = lab.path(&format!("check{h}.toml"));
    std::fs::write(&file, cfg).expect("write the config");
    let mut args = vec![
        lab::relay_bin().display().to_string(),
        "check".into(),
        "-c".into(),
        file.display().to_string(),
        "-k".into(),
        lab.key_path(h).display().to_string(),
    ];
    for t in tools {
        args.push("--tool-config".into());
        args.push(t.display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = lab.try_exec(h, &args);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn lines_with<'a>(out: &'a str, level: &str, needles: &[&str]) -> Vec<&'a str> {
    out.lines()
        .filter(|l| l.starts_with(level) && needles.iter().all(|n| l.contains(n)))
        .collect()
}

#[test]
fn check_diagnoses_a_host_built_to_fail() {
    if !lab::root_or_skip("check_diagnoses_a_host_built_to_fail") {
        return;
    }
    let mut lab = Lab::new(2);
    lab.configure_relays(RelayOptions::default());
    lab.isolate_dns(1);
    let keys: Vec<String> = (1..=3).map(|h| lab.public_key(h)).collect();
    let good_ka = lab.path("good-keepalived.conf");
    std::fs::write(
        &good_ka,
        "vrrp_instance VI_1 {\n  interface mcast0\n  virtual_router_id 51\n  priority 100\n}\n",
    )
    .expect("write");
    let bad_ka = lab.path("bad-keepalived.conf");
    std::fs::write(
        &bad_ka,
        "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n  priority 100\n}\n",
    )
    .expect("write");
    // h1 finds itself in it by its key (`check -k`).
    let config = |subnet: &str, mtu: &str, endpoint: &str| {
        format!(
            "[node]\n\n[interface]\nsubnet = \"{subnet}\"\n{mtu}\n\n\
             [allow]\npresets = [\"vrrp\"]\n\n\
             [[member]]\nname = \"h1\"\nendpoint = \"10.77.0.1:7112\"\naddress = \"10.250.0.1\"\npublic_key = \"{}\"\n\n\
             [[member]]\nname = \"h2\"\nendpoint = \"{endpoint}\"\naddress = \"10.250.0.2\"\npublic_key = \"{}\"\n",
            keys[0], keys[1]
        )
    };

    // A sound host and config: exit 0, nothing but ok lines.
    let (ok, out) = run_check(
        &lab,
        1,
        &config("10.250.0.0/24", "", "10.77.0.2:7112"),
        &[&good_ka],
    );
    assert!(ok, "check failed on a sound host:\n{out}");
    assert!(
        out.lines().all(|l| l.starts_with("ok:")),
        "unexpected findings on a sound host:\n{out}"
    );

    // Now every mistake at once: the overlay subnet is eth0's, the MTU is
    // the underlay's, the port is taken, a peer's name does not resolve,
    // keepalived advertises on eth0.
    let _holder = lab::in_netns(&lab.ns(1), || {
        std::net::UdpSocket::bind("0.0.0.0:7112").expect("hold the port")
    });
    let bad = (config("10.77.0.0/24", "mtu = 1500", "nowhere.lab:7112")
        + &format!(
            "\n[[member]]\nname = \"h3\"\nendpoint = \"10.77.0.2:7112\"\naddress = \"10.250.0.3\"\npublic_key = \"{}\"\n",
            keys[2]
        ))
        .replace("10.250.0.", "10.77.0.1");
    let (ok, out) = run_check(&lab, 1, &bad, &[&bad_ka]);
    assert!(!ok, "check passed a broken host:\n{out}");
    let expected: [(&str, &[&str]); 5] = [
        (
            "error:",
            &["overlaps the route 10.77.0.0/24 on eth0", "rp_filter = 1"],
        ),
        (
            "error:",
            &["interface.mtu = 1500", "set interface.mtu to 1436"],
        ),
        ("error:", &["UDP 0.0.0.0:7112 is already in use"]),
        ("warning:", &["nowhere.lab does not resolve"]),
        ("warning:", &["uses interface eth0, not the relay's mcast0"]),
    ];
    for (level, needles) in expected {
        assert_eq!(
            lines_with(&out, level, needles).len(),
            1,
            "expected one {level} line with {needles:?} in:\n{out}"
        );
    }
    for l in out.lines().filter(|l| !l.starts_with("ok:")) {
        report(&format!("check:   {l}"));
    }
    report(&format!(
        "check: a sound host passes; a broken one gets {} errors and {} warnings, each with its fix",
        out.lines().filter(|l| l.starts_with("error:")).count(),
        out.lines().filter(|l| l.starts_with("warning:")).count()
    ));
}

/// By default check reads a tool's configuration at its usual path only
/// when `[allow]` carries that tool: the corosync package's own
/// /etc/corosync/corosync.conf is none of a VRRP-only relay's business.
#[test]
fn check_reads_only_the_carried_tools_configurations() {
    let name = "check_reads_only_the_carried_tools_configurations";
    if !lab::root_or_skip(name) {
        return;
    }
    lab::require_programs(lab::corosync::PROGRAMS);
    let corosync_conf = "/etc/corosync/corosync.conf";
    assert!(
        std::path::Path::new(corosync_conf).exists(),
        "the corosync package installs {corosync_conf}"
    );
    let mut lab = Lab::new(2);
    lab.configure_relays(RelayOptions::default());
    let cfg = std::fs::read_to_string(lab.relay_config_path(1)).expect("h1's cluster file");
    assert!(cfg.contains("presets = [\"vrrp\"]"), "{cfg}");
    let (_, vrrp_only) = run_check(&lab, 1, &cfg, &[]);
    assert!(
        !vrrp_only.contains(corosync_conf),
        "with only vrrp allowed check read {corosync_conf}:\n{vrrp_only}"
    );
    let with_corosync = cfg.replace("presets = [\"vrrp\"]", "presets = [\"vrrp\", \"corosync\"]");
    let (_, carried) = run_check(&lab, 1, &with_corosync, &[]);
    assert!(
        carried.contains(corosync_conf),
        "with corosync allowed check did not read {corosync_conf}:\n{carried}"
    );
    report(&format!(
        "check: {corosync_conf} not read with [allow] vrrp; read with vrrp and corosync"
    ));
}

/// Messages on a fake notify socket: until `quiet` passes without one, or
/// ten have come.
fn notifications(
    sock: &std::os::unix::net::UnixDatagram,
    quiet: Duration,
) -> Vec<(std::time::Instant, String)> {
    sock.set_read_timeout(Some(quiet)).expect("timeout");
    let mut buf = [0u8; 256];
    let mut got = Vec::new();
    while let Ok(n) = sock.recv(&mut buf) {
        got.push((
            std::time::Instant::now(),
            String::from_utf8_lossy(&buf[..n]).into_owned(),
        ));
        if got.len() >= 10 {
            break;
        }
    }
    got
}

/// The test plays systemd: a notify socket, WATCHDOG_USEC = 400 ms. The
/// relay says READY=1 and pings every 200 ms from its event loop; frozen
/// with SIGSTOP, it stops pinging, so the "service manager" kills and
/// restarts it, and the new one is ready and pinging again.
#[test]
fn a_hung_relay_stops_pinging_the_watchdog_and_is_restarted() {
    if !lab::root_or_skip("a_hung_relay_stops_pinging_the_watchdog_and_is_restarted") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let mut lab = Lab::new(2);
    lab.configure_relays(RelayOptions::default());
    let path = lab.path("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&path).expect("bind the notify socket");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let p = path.display().to_string();
    let env = [("NOTIFY_SOCKET", p.as_str()), ("WATCHDOG_USEC", "400000")];
    let timeout = Duration::from_millis(400);

    lab.start_relay_env(1, &env);
    let first = notifications(&sock, Duration::from_secs(1));
    let msgs: Vec<&str> = first.iter().map(|(_, m)| m.as_str()).collect();
    assert!(
        msgs.first().is_some_and(|m| m.starts_with("READY=1")),
        "no READY=1 first: {msgs:?}"
    );
    // systemd kills a service whose pings are further apart than that.
    let pings: Vec<std::time::Instant> = first
        .iter()
        .filter(|(_, m)| m == "WATCHDOG=1")
        .map(|(t, _)| *t)
        .collect();
    assert!(pings.len() >= 3, "too few pings: {msgs:?}");
    let worst = pings
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    assert!(
        worst < timeout,
        "a gap of {worst:?} between pings exceeds the watchdog timeout"
    );

    // Hang the relay: no more pings within the timeout -> kill, restart.
    lab::signal(lab.relay_pid(1), libc::SIGSTOP);
    while sock.recv(&mut [0u8; 64]).is_ok() {} // drain what was queued
    let silent = notifications(&sock, timeout * 2);
    assert!(
        silent.is_empty(),
        "a stopped relay still pinged: {silent:?}"
    );
    lab.kill_relay(1);
    lab.start_relay_env(1, &env);
    let again = notifications(&sock, Duration::from_secs(1));
    let msgs: Vec<&str> = again.iter().map(|(_, m)| m.as_str()).collect();
    assert!(
        msgs.first().is_some_and(|m| m.starts_with("READY=1"))
            && msgs.iter().filter(|m| **m == "WATCHDOG=1").count() >= 3,
        "the restarted relay is not ready and pinging: {msgs:?}"
    );
    report(&format!(
        "watchdog: READY=1 then pings at most {} ms apart (timeout {} ms); SIGSTOP: no ping for {} ms, killed and restarted, READY=1 and pinging again",
        worst.as_millis(),
        timeout.as_millis(),
        (timeout * 2).as_millis()
    ));
}

/// Per-member keys on a running cluster (keepalived VRRPv3, advert 0.1):
/// a backup's relay restarts and is heard again at once (measured: from
/// its ready line to the first advert it injects); a backup's key is
/// rotated (the cluster file first, then its relay restarts with the new
/// key) and another backup is revoked, with no master change anywhere.
#[test]
fn keys_rotate_and_a_member_is_revoked_without_a_master_change() {
    if !lab::root_or_skip("keys_rotate_and_a_member_is_revoked_without_a_master_change") {
        return;
    }
    lab::require_programs(lab::keepalived::PROGRAMS);
    let mut lab = Lab::new(3);
    let all = [1, 2, 3];
    lab.start_relays(RelayOptions::default());
    let vrrp = Vrrp::v3(0.1);
    let mut keepalived: Vec<_> = all
        .iter()
        .map(|&h| lab.start_keepalived(h, vrrp, PRIORITY[h - 1]))
        .collect();
    let settle = vrrp.master_down(PRIORITY[2]) + Duration::from_millis(500);
    vip::converge_on(&lab, vrrp.vip(), &all, 1, settle, Duration::from_secs(30));
    let watch = Watch::start(&lab, vrrp.vip());
    let injected = |lab: &Lab, h: usize| lab.relay_status(h)["counters"]["injected"].as_u64();

    // --- a backup's relay restarts -------------------------------------
    lab.kill_relay(3);
    lab.start_relay(3);
    let ready = std::time::Instant::now();
    let first = lab::wait_for(
        "the restarted relay to inject an advert",
        Duration::from_secs(10),
        || {
            injected(&lab, 3)
                .filter(|n| *n > 0)
                .map(|_| ready.elapsed())
        },
    );
    let keepalive = Duration::from_secs(1);
    assert!(
        first < keepalive + Duration::from_millis(500),
        "first advert injected {first:?} after the restarted relay was ready"
    );
    report(&format!(
        "keys: h3's relay restarted; first advert injected {:.1} ms after its ready line (bound: one round trip plus a keepalive interval, {} ms; adverts every 100 ms)",
        first.as_secs_f64() * 1000.0,
        keepalive.as_millis()
    ));

    // --- a backup's key is rotated --------------------------------------
    // The relay runs unprivileged and cannot read a new key file: the
    // rotated node's relay restarts, the others reload the cluster file.
    let new_key = lab.rotate_key(2);
    lab.configure_relays(RelayOptions::default());
    let hash = lab.assert_cluster_files_identical();
    // The others first: their sessions with h2 carry on, and they expect
    // the new key at h2's next handshake.
    reload_all(&lab, &[1, 3], "changed=h2");
    let answered = |lab: &Lab| lab.relay_status(1)["counters"]["handshakes_answered"].as_u64();
    let h1_answered = answered(&lab);
    std::fs::rename(&new_key, lab.key_path(2)).expect("install the new key");
    lab.kill_relay(2);
    lab.start_relay(2);
    let ready = std::time::Instant::now();
    let back = lab::wait_for(
        "h2's relay, with its new key, to inject an advert",
        Duration::from_secs(10),
        || {
            injected(&lab, 2)
                .filter(|n| *n > 0)
                .map(|_| ready.elapsed())
        },
    );
    assert!(
        answered(&lab) > h1_answered,
        "h1 made no session with h2's new key"
    );
    std::thread::sleep(Duration::from_secs(1));
    for h in all {
        let c = lab.relay_counters(h);
        assert_eq!(
            c.get("wrong_key").copied().unwrap_or(0) + c.get("bad_mac").copied().unwrap_or(0),
            0,
            "h{h} refused a handshake during the rotation: {c:?}"
        );
    }
    report(&format!(
        "keys: h2 rotated its key (cluster file {}... on every host, SIGHUP on h1 and h3, h2's relay restarted with the new key); heard again {:.1} ms after its ready line, no handshake refused",
        &hash[..12],
        back.as_secs_f64() * 1000.0
    ));

    // --- a backup is revoked ---------------------------------------------
    // h3 is taken to be compromised: it keeps running with the old file
    // (it is not reloaded), and its keepalived claims the VIP at priority
    // 255 once it hears nobody.
    keepalived.pop().expect("h3's keepalived").stop(&mut lab);
    lab.set_members(&[1, 2]);
    lab.configure_relays(RelayOptions::default());
    reload_all(&lab, &[1, 2], "removed=h3");
    let rogue = lab.start_keepalived(3, vrrp, 255);
    let refused_before: Vec<_> = [1, 2]
        .iter()
        .map(|&h| {
            lab.relay_counters(h)
                .get("unknown_sender")
                .copied()
                .unwrap_or(0)
        })
        .collect();
    std::thread::sleep(vrrp.master_down(255) * 10);
    for (i, h) in [1, 2].into_iter().enumerate() {
        let now = lab
            .relay_counters(h)
            .get("unknown_sender")
            .copied()
            .unwrap_or(0);
        assert!(
            now > refused_before[i],
            "h{h} never saw the revoked member's traffic to refuse"
        );
    }
    let moved = watch.next_added(&[3], Duration::ZERO);
    assert!(moved.is_none(), "the VIP moved: {moved:?}");
    let holders = vip::holders(&lab, vrrp.vip());
    assert!(
        holders.contains(&1) && !holders.contains(&2),
        "VIP holders: {holders:?}"
    );
    rogue.stop(&mut lab);
    report(
        "keys: h3 revoked by deleting its [[member]] on h1 and h2 and reloading; its adverts at priority 255 refused as unknown_sender; VIP stayed on h1 (0 master changes among members)",
    );
}
