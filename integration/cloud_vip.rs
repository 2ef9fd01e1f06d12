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
    lab.start_keepalived_converged(&PRIORITY)
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
    // Each flap ends h1's term; the last return settles once: one call.
    assert_eq!(after, ["h1"], "one call after two flaps within settle");
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

/// Polls `what` every 100 ms for at most `limit`; the time it first held.
fn until(limit: Duration, mut what: impl FnMut() -> bool) -> Option<Instant> {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if what() {
            return Some(Instant::now());
        }
        sleep(Duration::from_millis(100));
    }
    None
}

/// The EC2 emulator (moto) in the lab's cloud namespace with three
/// instances, an Elastic IP and a route for the VIP, and the shipped AWS
/// hooks with Debian's aws CLI: both follow the master after kill -9 of
/// its keepalived; with the API refusing, the next master's hook fails,
/// is retried and shows `failing` in status; with the API stalled, a try
/// is killed at its timeout; once it answers again the hook succeeds.
#[test]
fn the_elastic_ip_and_route_follow_the_master_through_the_aws_hooks() {
    let name = "the_elastic_ip_and_route_follow_the_master_through_the_aws_hooks";
    if !lab::root_or_skip(name) {
        return;
    }
    lab::require_programs(lab::keepalived::PROGRAMS);
    lab::require_programs(lab::cloud::PROGRAMS);
    let mut lab = Lab::new(3);
    let ec2 = lab::cloud::Ec2::start(&mut lab);
    let hooks = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/hooks");
    // One [[vip]] per virtual router: a short script runs the three AWS
    // hooks (Elastic IP, route table, secondary private IP).
    // Each call's return is stamped (seconds since 1970) in `returns`.
    let both = lab.path("eip-and-route");
    let (_, returns) = recording_hook(&lab);
    fs::write(
        &both,
        format!(
            "#!/bin/sh\nset -eu\n{0}/aws-eip \"$1\"\necho \"$MCAST_RELAY_NODE eip $(date +%s.%N)\" >> {1}\n{0}/aws-route \"$2\"\necho \"$MCAST_RELAY_NODE route $(date +%s.%N)\" >> {1}\n{0}/aws-secondary-ip\necho \"$MCAST_RELAY_NODE secondary $(date +%s.%N)\" >> {1}\n",
            hooks.display(),
            returns.display()
        ),
    )
    .expect("cannot write the hook");
    fs::set_permissions(&both, fs::Permissions::from_mode(0o755)).expect("chmod");
    const TIMEOUT: f64 = 5.0;
    let table = vip_table(
        &[
            both.to_str().unwrap_or_default(),
            ec2.allocation_id(),
            ec2.route_table(),
        ],
        TIMEOUT,
    );
    let route = format!("{}/32", vip::VIP4);
    let (_vrrp, mut kas) = start(&mut lab, table, &|h| ec2.hook_env(h));
    // moto 5 leaves a reassigned secondary address on the old ENI too,
    // so only its arrival on the new one is checked.
    let on = |h: usize| {
        ec2.eip_eni().as_deref() == Some(ec2.eni(h))
            && ec2.route_eni(&route).as_deref() == Some(ec2.eni(h))
            && ec2.private_ips(h).iter().any(|a| a == vip::VIP4)
    };
    assert!(
        until(Duration::from_secs(30), || on(1)).is_some(),
        "the EIP and route never reached h1's ENI: EIP on {:?}, route to {:?}; h1: {}",
        ec2.eip_eni(),
        ec2.route_eni(&route),
        vip_state(&lab, 1)
    );

    // h2 stops hearing h1: two masters, and the assignment stays put.
    lab.drop_relay_traffic(2, 1);
    lab::wait_for("h2's claim to be held", Duration::from_secs(10), || {
        (vip_state(&lab, 2)["state"] == "held").then_some(())
    });
    sleep(Duration::from_secs_f64(SETTLE * 3.0));
    assert_eq!(vip::holders(&lab, vip::VIP4), vec![1, 2], "two masters");
    assert!(
        on(1),
        "the split brain moved the EIP or route: EIP on {:?}",
        ec2.eip_eni()
    );
    lab.allow_relay_traffic(2);
    lab::wait_for(
        "h1 to claim again after the heal",
        Duration::from_secs(15),
        || {
            (vip_state(&lab, 1)["state"] == "done" && vip::holders(&lab, vip::VIP4) == [1])
                .then_some(())
        },
    );
    assert!(on(1), "after the heal: EIP on {:?}", ec2.eip_eni());
    let partition_calls = fs::read_to_string(&returns).unwrap_or_default();
    assert!(
        !partition_calls.contains("h2 "),
        "h2 called: {partition_calls}"
    );

    // h3 is cut off from both others but still reaches the API: it
    // becomes master of its island and must not take the address.
    lab.partition(3);
    let cut_off = lab::wait_for("h3's claim to be held", Duration::from_secs(15), || {
        let v = vip_state(&lab, 3);
        (v["state"] == "held").then_some(v)
    });
    assert!(
        cut_off["detail"]
            .as_str()
            .is_some_and(|d| d.contains("not a majority")),
        "{cut_off}"
    );
    sleep(Duration::from_secs_f64(SETTLE * 3.0));
    assert_eq!(
        vip::holders(&lab, vip::VIP4),
        vec![1, 3],
        "h3 is master of its island"
    );
    assert!(
        on(1),
        "the cut-off node moved the EIP or route: EIP on {:?}",
        ec2.eip_eni()
    );
    lab.heal();
    lab::wait_for(
        "h3 to step down after the heal",
        Duration::from_secs(15),
        || (vip::holders(&lab, vip::VIP4) == [1]).then_some(()),
    );
    let island_calls = fs::read_to_string(&returns).unwrap_or_default();
    assert!(!island_calls.contains("h3 "), "h3 called: {island_calls}");

    // kill -9 of the master's keepalived: both follow to h2.
    let watch = vip::Watch::start(&lab, vip::VIP4);
    kas.remove(0).crash(&mut lab);
    let killed = Instant::now();
    let killed_wall = std::time::SystemTime::now();
    let added = watch
        .next_added(&[1], Duration::from_secs(5))
        .expect("the VIP did not move");
    assert_eq!(added.host, 2);
    let eip_at = until(Duration::from_secs(30), || {
        ec2.eip_eni().as_deref() == Some(ec2.eni(2))
    })
    .unwrap_or_else(|| panic!("the EIP did not follow to h2: {}", vip_state(&lab, 2)));
    let route_at = until(Duration::from_secs(10), || {
        ec2.route_eni(&route).as_deref() == Some(ec2.eni(2))
    })
    .expect("the route did not follow to h2");
    let secondary_at = until(Duration::from_secs(10), || {
        ec2.private_ips(2).iter().any(|a| a == vip::VIP4)
    })
    .expect("the secondary address did not reach h2's ENI");
    let h2 = vip_state(&lab, 2);
    assert_eq!(h2["state"], "done", "{h2}");
    assert_eq!(h2["attempts"], 1, "{h2}");
    assert_eq!(vip_state(&lab, 3)["state"], "not master");
    let ms = |t: Instant| t.duration_since(killed).as_millis();
    let kill_s = killed_wall
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let returned = |what: &str| {
        fs::read_to_string(&returns)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                (w.len() == 3 && w[0] == "h2" && w[1] == what).then(|| w[2].parse::<f64>().ok())?
            })
            .next()
            .map_or("?".to_string(), |t| format!("{:.0}", (t - kill_s) * 1e3))
    };
    report(&format!(
        "{name}: kill -9 of h1's keepalived -> VIP on h2's eth0 after {} ms; h2's associate-address returned after {} ms, its replace-route after {} ms, its assign-private-ip-addresses after {} ms; the emulator, looked at by one aws CLI call (~1.2 s) after another, showed the EIP on h2's ENI after {} ms, the route after {} ms and the secondary address after {} ms (settle {SETTLE} s)",
        ms(added.at),
        returned("eip"),
        returned("route"),
        returned("secondary"),
        ms(eip_at),
        ms(route_at),
        ms(secondary_at)
    ));

    // The API refuses: h3, the next master, fails, retries, says so.
    ec2.refuse();
    kas.remove(0).crash(&mut lab);
    let failing = lab::wait_for("h3's hook to fail twice", Duration::from_secs(20), || {
        let v = vip_state(&lab, 3);
        (v["state"] == "failing" && v["attempts"].as_u64() >= Some(2)).then_some(v)
    });
    let error = failing["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!error.is_empty(), "the error is shown: {failing}");
    let alarms = lab.relay_status(3)["alarms"].to_string();
    assert!(alarms.contains("failing"), "{alarms}");
    let text = lab.relay_status_text(3);
    assert!(text.contains("failing"), "{text}");

    // The API stalls: the next try hangs and is killed at its timeout.
    ec2.accept();
    ec2.stop();
    let timed_out = lab::wait_for(
        "a try to be killed at its timeout",
        Duration::from_secs(30),
        || {
            let v = vip_state(&lab, 3);
            (v["runs_timed_out"].as_u64() >= Some(1)).then_some(v)
        },
    );
    assert!(
        timed_out["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("timeout")),
        "{timed_out}"
    );

    // Back: the next retry succeeds and both are on h3.
    ec2.restart();
    let done = lab::wait_for("h3's hook to succeed", Duration::from_secs(60), || {
        let v = vip_state(&lab, 3);
        (v["state"] == "done").then_some(v)
    });
    assert!(
        until(Duration::from_secs(10), || on(3)).is_some(),
        "EIP on {:?}, route to {:?} after h3's hook succeeded",
        ec2.eip_eni(),
        ec2.route_eni(&route)
    );
    report(&format!(
        "{name}: asymmetric partition h1 -/-> h2 -> VIP on [1, 2], h2 held, EIP and route stayed on h1 for {:.0} s and after the heal; h3 cut off from both (API still reachable) -> master of its island, held (\"{}\"), EIP and route stayed on h1; API refusing -> h3 \"failing\" after {} tries ({error}); API stalled -> a try killed at its {TIMEOUT} s timeout; API back -> done after {} tries, EIP and route on h3",
        SETTLE * 3.0,
        cut_off["detail"].as_str().unwrap_or("?"),
        failing["attempts"],
        done["attempts"]
    ));
}

/// A stand-in for DigitalOcean's and Linode's HTTP APIs on loopback, with
/// state: which droplet holds each reserved IP, what each Linode shares.
/// Each request is logged as a JSON line (method, path, authorization,
/// body) to the file named by argv[2]; argv[1] is the token it accepts.
const FAKE_API: &str = r#"
import http.server, json, sys, threading
token, log = sys.argv[1], sys.argv[2]
owner = {"203.0.113.50": 1001}
shared = {}
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def reply(self, code, obj):
        b = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def handle_any(self, method):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode() if n else ""
        auth = self.headers.get("Authorization", "")
        with open(log, "a") as f:
            f.write(json.dumps({"m": method, "p": self.path, "a": auth, "b": body}) + "\n")
        if auth != "Bearer " + token:
            if self.path.startswith("/v4/"):
                return self.reply(401, {"errors": [{"reason": "Invalid Token"}]})
            return self.reply(401, {"id": "unauthorized", "message": "Unable to authenticate you"})
        p = self.path.split("/")
        if self.path.startswith("/v2/reserved_ips/"):
            ip = p[3]
            if ip not in owner:
                return self.reply(404, {"id": "not_found", "message": "The resource you requested could not be found."})
            if method == "GET" and len(p) == 4:
                d = owner[ip]
                return self.reply(200, {"reserved_ip": {"ip": ip, "droplet": {"id": d, "name": "x"} if d else None}})
            if method == "POST" and len(p) == 5 and p[4] == "actions":
                owner[ip] = json.loads(body)["droplet_id"]
                return self.reply(201, {"action": {"id": 77, "status": "in-progress", "type": "assign_ip"}})
            if method == "GET" and len(p) == 6:
                return self.reply(200, {"action": {"id": 77, "status": "completed"}})
        if self.path == "/v4/networking/ips/share" and method == "POST":
            req = json.loads(body)
            shared[req["linode_id"]] = req["ips"]
            return self.reply(200, {})
        if self.path == "/state":
            return self.reply(200, {"owner": owner, "shared": {str(k): v for k, v in shared.items()}})
        self.reply(404, {"message": "no such call in this fake"})
    def do_GET(self): self.handle_any("GET")
    def do_POST(self): self.handle_any("POST")
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

/// The DigitalOcean and Linode hooks as shipped, against [`FAKE_API`] on
/// loopback (no lab, no root): the reserved IP moves to this droplet and
/// waits for the action; a rerun makes no second POST; the Linode share
/// names this Linode and the IPs; the token goes in the Authorization
/// header of every call; a wrong token fails with the API's own words.
#[test]
fn the_digitalocean_and_linode_hooks_against_a_fake_api() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    // Loopback only, so no root needed; without root (no install-deps) a
    // missing program skips visibly, with root it is an error.
    let needs = [("python3", "python3"), ("curl", "curl")];
    if !lab::is_root()
        && needs
            .iter()
            .any(|(p, _)| Command::new(p).arg("--version").output().is_err())
    {
        report(
            "SKIPPED the_digitalocean_and_linode_hooks_against_a_fake_api: python3 or curl missing (./integration/install-deps)",
        );
        return;
    }
    lab::require_programs(&needs);
    let dir = std::env::temp_dir().join(format!("mcast-relay-fake-api-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("a temp dir");
    let (token, log) = ("s3cret-token-4711", dir.join("requests"));
    let mut server = Command::new("python3")
        .args(["-c", FAKE_API, token])
        .arg(&log)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    let _ = BufReader::new(server.stdout.take().expect("stdout")).read_line(&mut line);
    let port: u16 = line.trim().parse().expect("the fake API's port");
    let api = format!("http://127.0.0.1:{port}");
    let token_file = dir.join("token");
    fs::write(&token_file, format!("{token}\n")).expect("the token file");
    let hooks = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/hooks");
    let run = |hook: &str, args: &[&str], env: &[(&str, &str)]| {
        let out = Command::new(hooks.join(hook))
            .args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .envs(env.iter().copied())
            .output()
            .expect("the hook runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        )
    };
    let requests = || fs::read_to_string(&log).unwrap_or_default();
    let tf = token_file.to_str().unwrap_or_default();
    let state = || {
        let out = Command::new("curl")
            .args([
                "-s",
                "-H",
                &format!("Authorization: Bearer {token}"),
                &format!("{api}/state"),
            ])
            .output()
            .expect("curl");
        serde_json::from_slice::<Value>(&out.stdout).expect("the fake's state")
    };

    let do_env = [
        ("DIGITALOCEAN_API_URL", api.as_str()),
        ("DIGITALOCEAN_TOKEN_FILE", tf),
        ("DIGITALOCEAN_DROPLET_ID", "2002"),
        ("DIGITALOCEAN_WAIT", "5"),
    ];
    let (ok, err) = run("digitalocean-reserved-ip", &["203.0.113.50"], &do_env);
    assert!(ok, "digitalocean-reserved-ip failed: {err}");
    assert_eq!(
        state()["owner"]["203.0.113.50"],
        2002,
        "the reserved IP moved"
    );
    let posts = |r: &str| r.lines().filter(|l| l.contains("\"m\": \"POST\"")).count();
    let first = requests();
    assert_eq!(posts(&first), 1, "{first}");
    assert!(
        first.contains("\"type\\\":\\\"assign\\\",\\\"droplet_id\\\":2002"),
        "{first}"
    );
    assert!(
        first.contains("/actions/77"),
        "it waited for the action: {first}"
    );
    assert!(
        first
            .lines()
            .all(|l| l.contains(&format!("Bearer {token}"))),
        "{first}"
    );
    let (ok, err) = run("digitalocean-reserved-ip", &["203.0.113.50"], &do_env);
    assert!(ok, "the rerun failed: {err}");
    assert_eq!(
        posts(&requests()),
        1,
        "a rerun when it is already here makes no POST"
    );
    let wrong = dir.join("wrong");
    fs::write(&wrong, "nope\n").expect("a token file");
    let wf = wrong.to_str().unwrap_or_default();
    let (ok, err) = run(
        "digitalocean-reserved-ip",
        &["203.0.113.50"],
        &[
            do_env[0],
            ("DIGITALOCEAN_TOKEN_FILE", wf),
            do_env[2],
            do_env[3],
        ],
    );
    assert!(
        !ok && err.ends_with("HTTP 401: Unable to authenticate you"),
        "{err}"
    );
    let (ok, err) = run("digitalocean-reserved-ip", &["203.0.113.50/../x"], &do_env);
    assert!(!ok && err.contains("is not an IPv4 address"), "{err}");

    let li_env = [
        ("LINODE_API_URL", api.as_str()),
        ("LINODE_TOKEN_FILE", tf),
        ("LINODE_ID", "3003"),
    ];
    let (ok, err) = run("linode-ip-share", &["192.0.2.50", "192.0.2.51"], &li_env);
    assert!(ok, "linode-ip-share failed: {err}");
    assert_eq!(
        state()["shared"]["3003"],
        serde_json::json!(["192.0.2.50", "192.0.2.51"])
    );
    let (ok, err) = run(
        "linode-ip-share",
        &["192.0.2.50"],
        &[li_env[0], ("LINODE_TOKEN_FILE", wf), li_env[2]],
    );
    assert!(!ok && err.ends_with("HTTP 401: Invalid Token"), "{err}");
    let (ok, err) = run("linode-ip-share", &["192.0.2.50"], &li_env[..2]);
    assert!(!ok && err.contains("LINODE_ID"), "{err}");

    let _ = server.kill();
    let _ = server.wait();
    let _ = fs::remove_dir_all(&dir);
    report(
        "fake API: digitalocean-reserved-ip moved 203.0.113.50 to droplet 2002 and waited for the action, a rerun made no POST, a wrong token gave the API's words; linode-ip-share shared 2 IPs with Linode 3003",
    );
}
