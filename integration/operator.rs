//! The operator's view, with stock keepalived (VRRPv3, advert_int 0.1) on
//! 3 hosts: `mcast-relay status --json` on every node names the same
//! master and every peer reachable with a round-trip time, and follows a
//! failover; an asymmetric partition makes two masters, which the relays
//! that see both report as a split brain until it heals. Needs root;
//! skips visibly without it.

use crate::lab;

use std::io::Write;
use std::time::{Duration, Instant};

use lab::keepalived::{Keepalived, Vrrp};
use lab::vip::{self, Watch};
use lab::{Lab, RelayOptions};
use serde_json::Value;

const PRIORITY: [u8; 3] = [200, 150, 100];

fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// The status entry of VRID 51 over IPv4.
fn router(status: &Value) -> Option<&Value> {
    status["routers"]
        .as_array()?
        .iter()
        .find(|r| r["vrid"] == 51 && r["family"] == "IPv4")
}

fn master(status: &Value) -> Option<String> {
    router(status)?["master"].as_str().map(str::to_string)
}

fn cluster(lab: &mut Lab) -> (Vrrp, Vec<Keepalived>) {
    lab.start_relays(RelayOptions {
        metrics: true,
        ..RelayOptions::default()
    });
    lab.start_keepalived_converged(&PRIORITY)
}

#[test]
fn status_names_the_master_and_each_peers_health() {
    if !lab::root_or_skip("status_names_the_master_and_each_peers_health") {
        return;
    }
    lab::require_programs(lab::keepalived::PROGRAMS);
    let mut lab = Lab::new(3);
    let (vrrp, mut kas) = cluster(&mut lab);
    // Keepalives go out each second: wait for a couple of answers.
    let mut rtts = Vec::new();
    for h in lab.host_ids() {
        let st = lab::wait_for(
            &format!("h{h}'s status to show every peer reachable"),
            Duration::from_secs(10),
            || {
                let st = lab.relay_status(h);
                let peers = st["peers"].as_array()?;
                (peers.len() == 2
                    && peers
                        .iter()
                        .all(|p| p["reachable"] == true && p["rtt_ms"].is_u64()))
                .then_some(st)
            },
        );
        let r = router(&st).unwrap_or_else(|| panic!("h{h} sees no VRID 51: {st}"));
        assert_eq!(r["master"], "h1", "h{h}: {r}");
        assert_eq!(r["priority"], 200, "h{h}: {r}");
        assert_eq!(r["interval_ms"], 100, "h{h}: {r}");
        assert_eq!(r["split_brain"], false, "h{h}: {r}");
        assert_eq!(st["alarms"].as_array().map(Vec::len), Some(0), "h{h}: {st}");
        for p in st["peers"].as_array().into_iter().flatten() {
            rtts.push(format!(
                "h{h}->{}: {} ms",
                p["name"].as_str().unwrap_or("?"),
                p["rtt_ms"]
            ));
        }
    }

    let table = lab.relay_status_text(3);
    assert!(
        !table.contains("SPLIT BRAIN") && table.contains(" up "),
        "{table}"
    );
    for line in table.lines() {
        report(&format!("status h3| {line}"));
    }

    // The master dies; every surviving node's status follows.
    let watch = Watch::start(&lab, vrrp.vip());
    let killed = Instant::now();
    kas.remove(0).crash(&mut lab);
    let added = watch
        .next_added(&[1], Duration::from_secs(5))
        .expect("the VIP did not move");
    assert_eq!(added.host, 2);
    let mut followed = Vec::new();
    for h in [2, 3] {
        lab::wait_for(
            &format!("h{h}'s status to name h2 master"),
            Duration::from_secs(2),
            || (master(&lab.relay_status(h)).as_deref() == Some("h2")).then_some(()),
        );
        followed.push(format!("h{h} {} ms", killed.elapsed().as_millis()));
    }
    report(&format!(
        "status: all 3 nodes name h1 master of VRID 51 with every peer reachable ({}); after kill -9 of h1's keepalived the VIP moved in {} ms and status named h2 by: {}",
        rtts.join(", "),
        added.at.duration_since(killed).as_millis(),
        followed.join(", ")
    ));
}

#[test]
fn an_asymmetric_partition_raises_a_split_brain_alarm() {
    if !lab::root_or_skip("an_asymmetric_partition_raises_a_split_brain_alarm") {
        return;
    }
    lab::require_programs(lab::keepalived::PROGRAMS);
    let mut lab = Lab::new(3);
    let (vrrp, _kas) = cluster(&mut lab);

    // h2 stops hearing h1 (only that direction): h2 becomes master too.
    let warned_before = lab::count_lines(&lab.relay_log(3), "split brain: two nodes advertise");
    lab.drop_relay_traffic(2, 1);
    let cut = Instant::now();
    let alarm = lab::wait_for(
        "h3's status to report a split brain",
        Duration::from_secs(10),
        || {
            let st = lab.relay_status(3);
            let a = st["alarms"].as_array()?.iter().find_map(|a| {
                let a = a.as_str()?;
                a.starts_with("split brain: VRID 51").then(|| a.to_string())
            })?;
            Some(a)
        },
    );
    let raised_after = cut.elapsed();
    let holders = vip::holders(&lab, vrrp.vip());
    assert_eq!(
        holders,
        vec![1, 2],
        "two masters expected, VIP on {holders:?}"
    );
    assert!(
        alarm.contains("h1") && alarm.contains("h2"),
        "the alarm should name both masters: {alarm}"
    );
    assert_eq!(
        lab::count_lines(&lab.relay_log(3), "split brain: two nodes advertise"),
        warned_before + 1,
        "h3 should have warned once"
    );
    // h2's relay also sees that h1 no longer answers its keepalives.
    lab::wait_for(
        "h2's status to report h1 silent",
        Duration::from_secs(10),
        || {
            let st = lab.relay_status(2);
            st["alarms"]
                .as_array()?
                .iter()
                .any(|a| a == "peer h1 does not answer keepalives")
                .then_some(())
        },
    );

    // Healed: h2 hears h1 again and steps down; the alarm clears.
    lab.allow_relay_traffic(2);
    let healed = Instant::now();
    lab::wait_for(
        "h3's split-brain alarm to clear",
        Duration::from_secs(10),
        || {
            let st = lab.relay_status(3);
            (st["alarms"].as_array()?.is_empty() && master(&st).as_deref() == Some("h1"))
                .then_some(())
        },
    );
    let cleared_after = healed.elapsed();
    assert_eq!(vip::holders(&lab, vrrp.vip()), vec![1]);
    assert!(lab::count_lines(&lab.relay_log(3), "split brain over") >= 1);
    report(&format!(
        "split brain: h2 cut off from h1 -> VIP on {holders:?}; h3's status raised \"{alarm}\" after {} ms; healed -> cleared after {} ms, VIP on h1 only",
        raised_after.as_millis(),
        cleared_after.as_millis()
    ));
}

/// GET /metrics from the relay of host `h` (127.0.0.1:9712 in its namespace).
fn scrape(lab: &Lab, h: usize) -> String {
    lab::in_netns(&lab.ns(h), || {
        use std::io::Read;
        let mut c = std::net::TcpStream::connect("127.0.0.1:9712").expect("connect to metrics");
        c.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("request");
        let mut r = String::new();
        c.read_to_string(&mut r).expect("response");
        r
    })
}

/// Parses an OpenMetrics exposition with Debian's python3-prometheus-client
/// and returns "name{labels} value" per sample.
fn parse_with_python(body: &str) -> Vec<String> {
    let script = "import sys\n\
        from prometheus_client.openmetrics.parser import text_string_to_metric_families as f\n\
        for fam in f(sys.stdin.read()):\n\
        \x20   for s in fam.samples:\n\
        \x20       l = ','.join(f'{k}=\"{v}\"' for k, v in sorted(s.labels.items()))\n\
        \x20       print(f'{s.name}{{{l}}} {s.value}')\n";
    let mut child = std::process::Command::new("/usr/bin/python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 (install-deps installs python3-prometheus-client)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(body.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("python3");
    assert!(
        out.status.success(),
        "the exposition does not parse: {}\n{body}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn metrics_parse_and_show_peers_master_and_drops() {
    if !lab::root_or_skip("metrics_parse_and_show_peers_master_and_drops") {
        return;
    }
    lab::require_programs(lab::keepalived::PROGRAMS);
    lab::require_programs(&[("/usr/bin/python3", "python3-prometheus-client")]);
    let mut lab = Lab::new(3);
    let _cluster = cluster(&mut lab);
    let samples = lab::wait_for(
        "h3's metrics to show both peers up",
        Duration::from_secs(10),
        || {
            let resp = scrape(&lab, 3);
            let (head, body) = resp.split_once("\r\n\r\n")?;
            assert!(head.starts_with("HTTP/1.1 200"), "{head}");
            assert!(head.contains("application/openmetrics-text"), "{head}");
            let samples = parse_with_python(body);
            let up = |p: &str| samples.contains(&format!("mcast_relay_peer_up{{peer=\"{p}\"}} 1"));
            (up("h1") && up("h2")).then_some(samples)
        },
    );
    for want in [
        "mcast_relay_vrrp_master{family=\"IPv4\",node=\"h1\",vrid=\"51\"} 1",
        "mcast_relay_vrrp_priority{family=\"IPv4\",vrid=\"51\"} 200",
        "mcast_relay_split_brain{family=\"IPv4\",vrid=\"51\"} 0",
        "mcast_relay_drops_total{reason=\"bad_auth\"} 0",
    ] {
        assert!(
            samples.iter().any(|s| s == want),
            "no {want} in:\n{}",
            samples.join("\n")
        );
    }
    let injected = samples
        .iter()
        .find(|s| s.starts_with("mcast_relay_peer_packets_total{direction=\"in\",peer=\"h1\"}"))
        .expect("h1's packets");
    let resp = scrape(&lab, 3);
    assert!(
        resp.starts_with("HTTP/1.1 200"),
        "a second scrape works too"
    );
    report(&format!(
        "metrics: h3's /metrics parsed by python3-prometheus-client: {} samples; both peers up, h1 master of VRID 51 at priority 200, {injected}",
        samples.len()
    ));
}

/// Cuts h1 (the master) off from h2 and h3 for 8 s with keepalived at
/// advert_int 1 (h2 takes over after 3.4 s of silence), sampling the VIP's
/// holders every 50 ms; then heals. Returns the most hosts seen holding
/// the VIP at once, the holders at the end of the partition, and the
/// moment (since the cut) h1 let go of it, if it did.
fn partition_run(quorum: bool) -> (usize, Vec<usize>, Option<Duration>) {
    let mut lab = Lab::new(3);
    lab.start_relays(RelayOptions {
        quorum,
        keepalive: Some(0.2),
        ..RelayOptions::default()
    });
    let vrrp = Vrrp::v3(1.0);
    let _kas: Vec<Keepalived> = lab
        .host_ids()
        .map(|h| lab.start_keepalived(h, vrrp, PRIORITY[h - 1]))
        .collect();
    let all: Vec<usize> = lab.host_ids().collect();
    let stable = vrrp.master_down(PRIORITY[2]) + Duration::from_millis(500);
    vip::converge_on(&lab, vrrp.vip(), &all, 1, stable, Duration::from_secs(30));

    lab.partition(1);
    let cut = Instant::now();
    let mut most = 0;
    let mut h1_gone = None;
    let mut last = Vec::new();
    while cut.elapsed() < Duration::from_secs(8) {
        last = vip::holders(&lab, vrrp.vip());
        most = most.max(last.len());
        if h1_gone.is_none() && !last.contains(&1) {
            h1_gone = Some(cut.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    lab.heal();
    vip::converge_on(&lab, vrrp.vip(), &all, 1, stable, Duration::from_secs(30));
    (most, last, h1_gone)
}

#[test]
fn quorum_turns_a_partition_into_one_master() {
    if !lab::root_or_skip("quorum_turns_a_partition_into_one_master") {
        return;
    }
    lab::require_programs(lab::keepalived::PROGRAMS);
    let (most, holders, _) = partition_run(false);
    assert_eq!(
        holders,
        vec![1, 2],
        "without quorum a partitioned master keeps the VIP while h2 takes it too"
    );
    let (most_q, holders_q, gone) = partition_run(true);
    assert_eq!(most_q, 1, "with quorum two hosts held the VIP at once");
    assert_eq!(
        holders_q,
        vec![2],
        "with quorum h2 alone should hold the VIP"
    );
    report(&format!(
        "quorum: h1 partitioned for 8 s (VRRPv3 advert_int 1, keepalive 0.2 s): without quorum up to {most} holders, at the end {holders:?}; \
         with quorum = true at most {most_q} holder, h1 let go after {} ms, at the end {holders_q:?}; healed, h1 master again in both",
        gone.map_or(0, |d| d.as_millis())
    ));
}
