//! Prometheus metrics from a status snapshot, in the OpenMetrics text
//! format as prometheus-client encodes it, and the minimal HTTP exchange
//! that serves them on `node.metrics_listen`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use crate::core::counters::DropReason;
use crate::daemon::status::{Status, path_is_up};

pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Peer {
    peer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerDirection {
    peer: String,
    direction: String,
}

/// One path of a peer, by its place in the member's `endpoints` (so two
/// unresolved paths, or two names of one address, stay two series). An
/// unresolved path is `endpoint="unresolved"`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerPath {
    peer: String,
    path: String,
    endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Router {
    vrid: String,
    family: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VipState {
    vrid: String,
    family: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VipRun {
    vrid: String,
    family: String,
    result: String,
}

/// Every state a `[[vip]]` can be in, so each series exists (0 or 1)
/// and an alert on one needs no `absent()`.
const VIP_STATES: [&str; 6] = [
    "not master",
    "settling",
    "held",
    "running",
    "done",
    "failing",
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Master {
    vrid: String,
    family: String,
    node: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// What the metrics endpoint itself has seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HttpStats {
    /// Connections closed unanswered: every slot was taken.
    pub refused: u64,
}

/// The snapshot, and the endpoint's own counts, as an OpenMetrics
/// exposition.
pub fn render(s: &Status, http: &HttpStats) -> String {
    let mut reg = Registry::with_prefix("mcast_relay");
    let uptime = FloatGauge::default();
    uptime.set(s.uptime_s);
    reg.register("uptime_seconds", "Seconds since the relay started", uptime);

    let up = Family::<Peer, Gauge>::default();
    let rtt = Family::<Peer, FloatGauge>::default();
    let loss = Family::<Peer, FloatGauge>::default();
    let packets = Family::<PeerDirection, Counter>::default();
    let bytes = Family::<PeerDirection, Counter>::default();
    for p in &s.peers {
        let peer = Peer {
            peer: p.name.clone(),
        };
        up.get_or_create(&peer).set(i64::from(p.reachable));
        if let Some(ms) = p.rtt_ms {
            rtt.get_or_create(&peer).set(ms as f64 / 1000.0);
        }
        if let Some(l) = p.loss_pct {
            loss.get_or_create(&peer).set(l / 100.0);
        }
        for (dir, n, b) in [
            ("in", p.packets_in, p.bytes_in),
            ("out", p.packets_out, p.bytes_out),
        ] {
            let l = PeerDirection {
                peer: p.name.clone(),
                direction: dir.to_string(),
            };
            packets.get_or_create(&l).inc_by(n);
            bytes.get_or_create(&l).inc_by(b);
        }
    }
    reg.register(
        "peer_up",
        "1 if the peer answered a keepalive within three intervals",
        up,
    );
    reg.register(
        "peer_rtt_seconds",
        "Round trip of the peer's last answered keepalive",
        rtt,
    );
    reg.register(
        "peer_loss_ratio",
        "Unanswered share of the peer's last 16 keepalives",
        loss,
    );
    reg.register(
        "peer_packets",
        "Packets injected from (in) and datagrams sent to (out) the peer",
        packets,
    );
    reg.register(
        "peer_bytes",
        "Bytes injected from (in) and sent to (out) the peer",
        bytes,
    );
    register_copies(&mut reg, s);
    register_paths(&mut reg, s);

    let totals = [
        (
            "sealed",
            s.counters.sealed,
            "Packets read from the interface and sealed",
        ),
        (
            "sent",
            s.counters.sent,
            "Datagrams handed to the kernel, one per peer",
        ),
        (
            "injected",
            s.counters.injected,
            "Packets written into the interface",
        ),
    ];
    let handshakes = [
        (
            "sent",
            s.counters.handshakes_sent,
            "Handshake initiations sent to peers",
        ),
        (
            "answered",
            s.counters.handshakes_answered,
            "Handshake initiations of peers answered",
        ),
    ];
    for (name, v, help) in handshakes {
        let c = Counter::<u64>::default();
        c.inc_by(v);
        reg.register(format!("handshakes_{name}"), help, c);
    }
    let jumps = Counter::<u64>::default();
    jumps.inc_by(s.counters.clock_jumps);
    reg.register(
        "clock_jumps",
        "Wall-clock leaps ahead of the monotonic clock that ended every session (a restored snapshot)",
        jumps,
    );
    for (name, v, help) in totals {
        let c = Counter::<u64>::default();
        c.inc_by(v);
        reg.register(format!("packets_{name}"), help, c);
    }
    let drops = Family::<Reason, Counter>::default();
    for r in DropReason::ALL {
        let n = s.counters.drops.get(r.name()).copied().unwrap_or(0);
        drops
            .get_or_create(&Reason {
                reason: r.name().to_string(),
            })
            .inc_by(n);
    }
    reg.register("drops", "Packets dropped, by reason", drops);

    let master = Family::<Master, Gauge>::default();
    let priority = Family::<Router, Gauge>::default();
    let split = Family::<Router, Gauge>::default();
    for r in &s.routers {
        let router = Router {
            vrid: r.vrid.to_string(),
            family: r.family.clone(),
        };
        master
            .get_or_create(&Master {
                vrid: router.vrid.clone(),
                family: router.family.clone(),
                node: r.master.clone(),
            })
            .set(1);
        priority.get_or_create(&router).set(i64::from(r.priority));
        split.get_or_create(&router).set(i64::from(r.split_brain));
    }
    reg.register(
        "vrrp_master",
        "1 for the node that advertises as master of the virtual router",
        master,
    );
    reg.register(
        "vrrp_priority",
        "Priority in the master's last advert",
        priority,
    );
    reg.register(
        "split_brain",
        "1 while two nodes advertise as master of the virtual router",
        split,
    );
    if !s.vips.is_empty() {
        let state = Family::<VipState, Gauge>::default();
        let runs = Family::<VipRun, Counter>::default();
        let success = Family::<Router, FloatGauge>::default();
        for v in &s.vips {
            let router = Router {
                vrid: v.vrid.to_string(),
                family: v.family.clone(),
            };
            for st in VIP_STATES {
                state
                    .get_or_create(&VipState {
                        vrid: router.vrid.clone(),
                        family: router.family.clone(),
                        state: st.to_string(),
                    })
                    .set(i64::from(v.state == st));
            }
            for (result, n) in [
                ("ok", v.runs_ok),
                ("failed", v.runs_failed),
                ("timed_out", v.runs_timed_out),
                ("killed", v.runs_killed),
            ] {
                runs.get_or_create(&VipRun {
                    vrid: router.vrid.clone(),
                    family: router.family.clone(),
                    result: result.to_string(),
                })
                .inc_by(n);
            }
            if let Some(t) = v.last_success {
                success.get_or_create(&router).set(t);
            }
        }
        reg.register(
            "vip_state",
            "1 for the state of this node's [[vip]] claim: not master, settling, held (split brain), running, done or failing",
            state,
        );
        reg.register(
            "vip_hook_runs",
            "Runs of the [[vip]] on_master command, by how they ended",
            runs,
        );
        reg.register(
            "vip_hook_last_success_timestamp_seconds",
            "When the [[vip]] on_master command last succeeded (Unix time)",
            success,
        );
    }
    if let Some(q) = s.quorum {
        let g = Gauge::<i64>::default();
        g.set(i64::from(q));
        reg.register(
            "quorum",
            "With node.quorum: 1 while a majority is reachable (carrier up)",
            g,
        );
    }

    let refused = Counter::<u64>::default();
    refused.inc_by(http.refused);
    reg.register(
        "metrics_connections_refused",
        "Metrics connections closed unanswered because the most allowed at once were open",
        refused,
    );

    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut out, &reg);
    out
}

/// The redundancy's counters, one counter each rather than a `kind` label:
/// first copies are a part of those received and saved ones a part of
/// those, so a sum over such a label would mean nothing.
fn register_copies(reg: &mut Registry, s: &Status) {
    let families = [
        (
            "peer_copies_received",
            "Data datagrams from the peer that authenticated, every copy counted",
            Family::<Peer, Counter>::default(),
        ),
        (
            "peer_first_copies",
            "Packets from the peer whose first copy authenticated",
            Family::<Peer, Counter>::default(),
        ),
        (
            "peer_saved_by_copies",
            "Packets from the peer whose first copy to arrive was not copy 0 (at most what redundancy saved)",
            Family::<Peer, Counter>::default(),
        ),
    ];
    for p in &s.peers {
        let peer = Peer {
            peer: p.name.clone(),
        };
        for ((_, _, f), n) in
            families
                .iter()
                .zip([p.copies_received, p.first_copies, p.saved_by_copies])
        {
            f.get_or_create(&peer).inc_by(n);
        }
    }
    for (name, help, f) in families {
        reg.register(name, help, f);
    }
}

/// Each path's health and probes. Pings sent and answered are two
/// counters, as the handshakes are: answered ones are a part of those sent.
fn register_paths(reg: &mut Registry, s: &Status) {
    let up = Family::<PeerPath, Gauge>::default();
    let rtt = Family::<PeerPath, FloatGauge>::default();
    let loss = Family::<PeerPath, FloatGauge>::default();
    let sent = Family::<PeerPath, Counter>::default();
    let answered = Family::<PeerPath, Counter>::default();
    let packets = Family::<PeerPath, Counter>::default();
    for p in &s.peers {
        for (k, path) in p.paths.iter().enumerate() {
            let l = PeerPath {
                peer: p.name.clone(),
                path: k.to_string(),
                endpoint: path.endpoint.as_deref().unwrap_or("unresolved").to_string(),
            };
            up.get_or_create(&l).set(i64::from(path_is_up(&path.state)));
            if let Some(ms) = path.rtt_ms {
                rtt.get_or_create(&l).set(ms as f64 / 1000.0);
            }
            if let Some(pct) = path.loss_pct {
                loss.get_or_create(&l).set(pct / 100.0);
            }
            sent.get_or_create(&l).inc_by(path.pings_sent);
            answered.get_or_create(&l).inc_by(path.pings_answered);
            packets.get_or_create(&l).inc_by(path.packets_out);
        }
    }
    reg.register(
        "path_up",
        "1 if the path answered a keepalive within three and a half intervals (healthy or suspect)",
        up,
    );
    reg.register(
        "path_rtt_seconds",
        "Round trip of the path's last answered keepalive",
        rtt,
    );
    reg.register(
        "path_loss_ratio",
        "Unanswered share of the path's last 16 keepalives",
        loss,
    );
    reg.register("path_pings_sent", "Keepalives sent over the path", sent);
    reg.register(
        "path_pings_answered",
        "Keepalives sent over the path that were answered",
        answered,
    );
    reg.register(
        "path_packets_sent",
        "Data datagrams (copies included) sent over the path",
        packets,
    );
}

/// The HTTP response for a request whose first line is `request_line`.
pub fn respond(request_line: &str, body: &str) -> String {
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, kind, body) = match (method, path) {
        ("GET", "/metrics") => ("200 OK", CONTENT_TYPE, body),
        ("GET", _) => (
            "404 Not Found",
            "text/plain",
            "only /metrics is served here\n",
        ),
        _ => ("405 Method Not Allowed", "text/plain", "GET /metrics\n"),
    };
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::status::{CounterStatus, PathStatus, PeerStatus, RouterStatus, sample_vip};

    fn path(endpoint: Option<&str>, state: &str, rtt_ms: Option<u64>) -> PathStatus {
        PathStatus {
            endpoint: endpoint.map(str::to_string),
            state: state.into(),
            rtt_ms,
            loss_pct: rtt_ms.map(|_| 50.0),
            pings_sent: 4,
            pings_answered: u64::from(rtt_ms.is_some()) * 2,
            packets_out: 11,
            last_answer_s: None,
        }
    }

    fn status() -> Status {
        Status {
            node: "h1".into(),
            version: "0".into(),
            uptime_s: 3.5,
            interface: "mcast0".into(),
            peers: vec![PeerStatus {
                name: "h2".into(),
                endpoint: None,
                confirmed: true,
                reachable: true,
                rtt_ms: Some(2),
                loss_pct: Some(25.0),
                last_heard_s: None,
                packets_in: 5,
                bytes_in: 50,
                packets_out: 6,
                bytes_out: 60,
                rate_limited: 0,
                copies_received: 10,
                first_copies: 5,
                saved_by_copies: 1,
                duplicates: 5,
                paths: vec![
                    path(Some("192.0.2.2:7112"), "healthy", Some(3)),
                    path(Some("198.51.100.2:7112"), "suspect", Some(4)),
                    path(Some("[2001:db8::2]:7112"), "unreachable", None),
                    path(None, "unresolved", None),
                ],
            }],
            routers: vec![RouterStatus {
                vrid: 51,
                family: "IPv4".into(),
                protocol: "VRRPv3".into(),
                master: "h2".into(),
                priority: 150,
                interval_ms: 100,
                last_seen_s: 0.0,
                split_brain: false,
                rival: None,
            }],
            alarms: vec![],
            counters: CounterStatus {
                sealed: 1,
                sent: 2,
                injected: 3,
                handshakes_sent: 8,
                handshakes_answered: 9,
                clock_jumps: 1,
                drops: [("replay".to_string(), 4)].into(),
            },
            quorum: Some(true),
            vips: vec![sample_vip()],
        }
    }

    #[test]
    fn exposition_has_the_series() {
        let t = render(&status(), &HttpStats { refused: 7 });
        for want in [
            "mcast_relay_peer_up{peer=\"h2\"} 1",
            "mcast_relay_peer_rtt_seconds{peer=\"h2\"} 0.002",
            "mcast_relay_peer_loss_ratio{peer=\"h2\"} 0.25",
            "mcast_relay_peer_packets_total{peer=\"h2\",direction=\"in\"} 5",
            "mcast_relay_peer_copies_received_total{peer=\"h2\"} 10",
            "mcast_relay_peer_first_copies_total{peer=\"h2\"} 5",
            "mcast_relay_peer_saved_by_copies_total{peer=\"h2\"} 1",
            "mcast_relay_path_up{peer=\"h2\",path=\"0\",endpoint=\"192.0.2.2:7112\"} 1",
            "mcast_relay_path_up{peer=\"h2\",path=\"1\",endpoint=\"198.51.100.2:7112\"} 1",
            "mcast_relay_path_up{peer=\"h2\",path=\"2\",endpoint=\"[2001:db8::2]:7112\"} 0",
            "mcast_relay_path_up{peer=\"h2\",path=\"3\",endpoint=\"unresolved\"} 0",
            "mcast_relay_path_rtt_seconds{peer=\"h2\",path=\"1\",endpoint=\"198.51.100.2:7112\"} 0.004",
            "mcast_relay_path_loss_ratio{peer=\"h2\",path=\"0\",endpoint=\"192.0.2.2:7112\"} 0.5",
            "mcast_relay_path_pings_sent_total{peer=\"h2\",path=\"0\",endpoint=\"192.0.2.2:7112\"} 4",
            "mcast_relay_path_pings_answered_total{peer=\"h2\",path=\"0\",endpoint=\"192.0.2.2:7112\"} 2",
            "mcast_relay_path_pings_answered_total{peer=\"h2\",path=\"2\",endpoint=\"[2001:db8::2]:7112\"} 0",
            "mcast_relay_path_packets_sent_total{peer=\"h2\",path=\"0\",endpoint=\"192.0.2.2:7112\"} 11",
            "mcast_relay_drops_total{reason=\"duplicate\"} 0",
            "mcast_relay_vip_state{vrid=\"51\",family=\"IPv4\",state=\"failing\"} 1",
            "mcast_relay_vip_state{vrid=\"51\",family=\"IPv4\",state=\"done\"} 0",
            "mcast_relay_vip_hook_runs_total{vrid=\"51\",family=\"IPv4\",result=\"failed\"} 2",
            "mcast_relay_vip_hook_last_success_timestamp_seconds{vrid=\"51\",family=\"IPv4\"} 1796236205",
            "mcast_relay_drops_total{reason=\"replay\"} 4",
            "mcast_relay_drops_total{reason=\"bad_auth\"} 0",
            "mcast_relay_vrrp_master{vrid=\"51\",family=\"IPv4\",node=\"h2\"} 1",
            "mcast_relay_split_brain{vrid=\"51\",family=\"IPv4\"} 0",
            "mcast_relay_quorum 1",
            "mcast_relay_metrics_connections_refused_total 7",
            "mcast_relay_handshakes_sent_total 8",
            "mcast_relay_handshakes_answered_total 9",
            "mcast_relay_clock_jumps_total 1",
            "# EOF",
        ] {
            assert!(t.contains(want), "missing {want:?} in:\n{t}");
        }
        // No round trip measured, no sample.
        assert!(!t.contains(
            "mcast_relay_path_rtt_seconds{peer=\"h2\",path=\"3\",endpoint=\"unresolved\"}"
        ));
    }

    #[test]
    fn http_exchange() {
        let r = respond("GET /metrics HTTP/1.1", "x 1\n");
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n") && r.ends_with("\r\n\r\nx 1\n"));
        assert!(r.contains("Content-Length: 4\r\n"));
        assert!(respond("GET / HTTP/1.1", "").starts_with("HTTP/1.1 404"));
        assert!(respond("POST /metrics HTTP/1.1", "").starts_with("HTTP/1.1 405"));
    }
}
