//! What `mcast-relay status` shows: a snapshot of the running relay (peers
//! and their health, virtual routers and their masters, alarms, counters)
//! that the daemon writes as JSON to each connection on its unix socket,
//! and the table the command prints from it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::core::PathHealth;
use crate::core::counters::DropReason;
use crate::core::relay::{Node, Now, Relay};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Status {
    pub node: String,
    pub version: String,
    pub uptime_s: f64,
    pub interface: String,
    pub peers: Vec<PeerStatus>,
    pub routers: Vec<RouterStatus>,
    pub alarms: Vec<String>,
    pub counters: CounterStatus,
    /// With `node.quorum`: whether this node has it (its carrier is up).
    #[serde(default)]
    pub quorum: Option<bool>,
    /// `[[vip]]`: each virtual router whose address this node moves.
    #[serde(default)]
    pub vips: Vec<VipStatus>,
}

/// One `[[vip]]`: where this node stands and what its hook did.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct VipStatus {
    pub vrid: u8,
    pub family: String,
    pub address: Option<String>,
    /// "not master", "settling", "held" (split brain), "running", "done",
    /// "failing". A string, so an older client reads a newer state.
    pub state: String,
    /// Why, in words: who reported the split brain, the last error...
    pub detail: String,
    /// Tries of the hook in the current claim.
    pub attempts: u32,
    /// When the current claim's hook succeeded, seconds since 1970.
    pub done_at: Option<f64>,
    pub last_error: Option<String>,
    /// While failing: seconds until the next try.
    pub next_try_s: Option<f64>,
    /// The last success of any claim, seconds since 1970.
    pub last_success: Option<f64>,
    pub runs_ok: u64,
    pub runs_failed: u64,
    pub runs_timed_out: u64,
    pub runs_killed: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PeerStatus {
    pub name: String,
    pub endpoint: Option<String>,
    /// Its current run is confirmed by the handshake.
    pub confirmed: bool,
    /// A keepalive was answered within the last three and a half intervals.
    pub reachable: bool,
    pub rtt_ms: Option<u64>,
    /// Unanswered share of the last (up to 16) keepalives, percent.
    pub loss_pct: Option<f64>,
    pub last_heard_s: Option<f64>,
    pub packets_in: u64,
    pub bytes_in: u64,
    pub packets_out: u64,
    pub bytes_out: u64,
    pub rate_limited: u64,
    /// Data datagrams from it that authenticated, every copy counted
    /// (`node.redundancy` sends each packet several times).
    #[serde(default)]
    pub copies_received: u64,
    /// Packets whose first copy authenticated.
    #[serde(default)]
    pub first_copies: u64,
    /// Of those, the packets whose first copy to arrive was not copy 0:
    /// at most what the redundancy saved.
    #[serde(default)]
    pub saved_by_copies: u64,
    /// Copies dropped because one of the same packet came first.
    #[serde(default)]
    pub duplicates: u64,
    /// One per endpoint it is configured with, in order.
    #[serde(default)]
    pub paths: Vec<PathStatus>,
}

/// One path to a peer: one of its endpoints, probed by its own keepalives.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PathStatus {
    /// `None` while its name does not resolve.
    pub endpoint: Option<String>,
    /// "healthy", "suspect" (its newest keepalive is overdue),
    /// "unreachable" or "unresolved". A string, not an enum, so a client
    /// older than the daemon still reads a state it does not know.
    pub state: String,
    pub rtt_ms: Option<u64>,
    /// Unanswered share of its last (up to 16) keepalives, percent.
    pub loss_pct: Option<f64>,
    pub pings_sent: u64,
    pub pings_answered: u64,
    /// Data datagrams (copies included) sent over it.
    pub packets_out: u64,
    pub last_answer_s: Option<f64>,
}

/// How a path's health is spelled in the status and the metrics.
pub fn health_name(h: PathHealth) -> &'static str {
    match h {
        PathHealth::Healthy => "healthy",
        PathHealth::Suspect => "suspect",
        PathHealth::Unreachable => "unreachable",
        PathHealth::Unresolved => "unresolved",
    }
}

/// Whether a path in state `state` (as [`health_name`] spells it) carries
/// packets: it answered within the reachability window.
pub fn path_is_up(state: &str) -> bool {
    matches!(state, "healthy" | "suspect")
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RouterStatus {
    pub vrid: u8,
    pub family: String,
    /// "VRRPv2", "VRRPv3" or "CARP".
    pub protocol: String,
    pub master: String,
    pub priority: u8,
    pub interval_ms: u64,
    pub last_seen_s: f64,
    pub split_brain: bool,
    /// The other node advertising while `split_brain`.
    pub rival: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CounterStatus {
    pub sealed: u64,
    pub sent: u64,
    pub injected: u64,
    /// Handshake initiations sent, and those of peers answered.
    #[serde(default)]
    pub handshakes_sent: u64,
    #[serde(default)]
    pub handshakes_answered: u64,
    /// Wall-clock leaps that ended every session (restored snapshots).
    #[serde(default)]
    pub clock_jumps: u64,
    pub drops: BTreeMap<String, u64>,
}

/// Everything the snapshot needs besides the core.
pub(crate) struct Context<'a> {
    pub node: &'a str,
    pub interface: &'a str,
    pub uptime_s: f64,
    /// The core's clocks: the ages shown are on the monotonic one.
    pub now: Now,
    /// The `[[vip]]` hooks, made by the loop, which runs them.
    pub vips: Vec<VipStatus>,
}

fn secs_since(now_ms: u64, then_ms: u64) -> f64 {
    now_ms.saturating_sub(then_ms) as f64 / 1000.0
}

/// The unanswered share, percent, of the keepalives in `recent` (the last
/// up to 16, newest in bit 0, `count` of them real); `None` before the
/// first. The newest may simply not be answered yet, so an unanswered
/// newest one is left out (unless it is the only one).
fn loss_pct(recent: u16, count: u8) -> Option<f64> {
    let count = u32::from(count.min(16));
    (count > 0).then(|| {
        let window = if count >= 16 {
            u16::MAX
        } else {
            (1u16 << count) - 1
        };
        let answered = (recent & window).count_ones();
        let pending = u32::from(recent & 1 == 0 && count > 1);
        let asked = count - pending;
        100.0 * f64::from(asked - answered.min(asked)) / f64::from(asked.max(1))
    })
}

/// The name of node `n` as the advert watch names them: this node is
/// `me`; a peer no longer configured is shown by its address.
pub(crate) fn node_name(relay: &Relay, me: &str, n: Node) -> String {
    match n {
        Node::Me => me.to_string(),
        Node::Peer(id) => relay
            .peer_name(id)
            .map_or_else(|| format!("node {id}"), str::to_string),
    }
}

/// The relay as it is now.
pub(crate) fn snapshot(relay: &Relay, cx: &Context) -> Status {
    let now = cx.now.mono_ms;
    let peers: Vec<PeerStatus> = relay
        .peers()
        .filter_map(|id| Some((id, relay.peer_name(id)?, relay.peer_stats(id)?)))
        .map(|(id, name, s)| PeerStatus {
            name: name.to_string(),
            endpoint: relay.endpoint(id).map(|e| e.to_string()),
            confirmed: s.epoch.is_some(),
            reachable: relay.peer_reachable(id, cx.now),
            rtt_ms: s.rtt_ms,
            loss_pct: loss_pct(s.recent_answered, s.recent_count),
            last_heard_s: s.last_heard_ms.map(|t| secs_since(now, t)),
            packets_in: s.injected,
            bytes_in: s.injected_bytes,
            packets_out: s.sent,
            bytes_out: s.sent_bytes,
            rate_limited: s.rate_limited,
            copies_received: s.copies_received,
            first_copies: s.first_copies,
            saved_by_copies: s.saved_by_copies,
            duplicates: s.copies_received.saturating_sub(s.first_copies),
            paths: relay
                .paths(id, cx.now)
                .map(|(addr, p, health)| PathStatus {
                    endpoint: addr.map(|a| a.to_string()),
                    state: health_name(health).to_string(),
                    rtt_ms: p.rtt_ms,
                    loss_pct: loss_pct(p.recent_answered, p.recent_count),
                    pings_sent: p.pings_sent,
                    pings_answered: p.pings_answered,
                    packets_out: p.sent,
                    last_answer_s: p.last_answer_ms.map(|t| secs_since(now, t)),
                })
                .collect(),
        })
        .collect();
    let name_of = |n: Node| node_name(relay, cx.node, n);
    let routers: Vec<RouterStatus> = relay
        .routers()
        .iter()
        .map(|r| RouterStatus {
            vrid: r.vrid,
            family: r.family.name().to_string(),
            protocol: match r.version {
                crate::core::vrrp_watch::CARP => "CARP".to_string(),
                v => format!("VRRPv{v}"),
            },
            master: name_of(r.master),
            priority: r.priority,
            interval_ms: r.interval_ms,
            last_seen_s: secs_since(now, r.last_ms),
            split_brain: r.split_since.is_some(),
            rival: r.rival.map(name_of),
        })
        .collect();
    let mut alarms: Vec<String> = routers
        .iter()
        .filter(|r| r.split_brain)
        .map(|r| {
            format!(
                "split brain: VRID {} ({}) has two masters: {} and {}",
                r.vrid,
                r.family,
                r.master,
                r.rival.as_deref().unwrap_or("another node")
            )
        })
        .collect();
    alarms.extend(
        peers
            .iter()
            .filter(|p| p.confirmed && !p.reachable)
            .map(|p| format!("peer {} does not answer keepalives", p.name)),
    );
    for v in &cx.vips {
        if matches!(v.state.as_str(), "held" | "failing") {
            alarms.push(format!(
                "vip VRID {} ({}): {}: {}",
                v.vrid, v.family, v.state, v.detail
            ));
        }
    }
    if relay.quorum() == Some(false) {
        alarms.push(format!(
            "no quorum: {} of {} nodes reachable; the carrier of {} is down so the failover tool steps down",
            relay.reachable_peers(cx.now) + 1,
            relay.peer_count() + 1,
            cx.interface
        ));
    }
    let c = relay.counters();
    Status {
        node: cx.node.to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        uptime_s: cx.uptime_s,
        interface: cx.interface.to_string(),
        peers,
        routers,
        alarms,
        counters: CounterStatus {
            sealed: c.sealed,
            sent: c.sent,
            injected: c.injected,
            handshakes_sent: c.handshakes_sent,
            handshakes_answered: c.handshakes_answered,
            clock_jumps: c.clock_jumps,
            drops: DropReason::ALL
                .iter()
                .filter(|r| c.drops.get(**r) > 0)
                .map(|r| (r.name().to_string(), c.drops.get(*r)))
                .collect(),
        },
        quorum: relay.quorum(),
        vips: cx.vips.clone(),
    }
}

fn opt<T: std::fmt::Display>(v: &Option<T>, unit: &str) -> String {
    v.as_ref().map_or("-".to_string(), |x| format!("{x}{unit}"))
}

/// The human-readable form of a snapshot.
pub fn render(s: &Status) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "node {} (mcast-relay {}), interface {}, up {:.0} s",
        s.node, s.version, s.interface, s.uptime_s
    );
    let _ = writeln!(
        o,
        "\n{:<12} {:<22} {:<11} {:>8} {:>7} {:>10} {:>10} {:>10} {:>15} {:>7}",
        "PEER",
        "ENDPOINT",
        "STATE",
        "RTT",
        "LOSS",
        "HEARD",
        "PKTS IN",
        "PKTS OUT",
        "COPIES IN/FIRST",
        "SAVED"
    );
    for p in &s.peers {
        let state = match (p.confirmed, p.reachable) {
            (true, true) => "up",
            (true, false) => "silent",
            (false, _) => "unconfirmed",
        };
        let _ = writeln!(
            o,
            "{:<12} {:<22} {:<11} {:>8} {:>7} {:>10} {:>10} {:>10} {:>15} {:>7}",
            p.name,
            p.endpoint.as_deref().unwrap_or("unresolved"),
            state,
            opt(&p.rtt_ms, " ms"),
            opt(&p.loss_pct.map(|l| format!("{l:.0}")), "%"),
            opt(&p.last_heard_s.map(|t| format!("{t:.1}")), " s"),
            p.packets_in,
            p.packets_out,
            format!("{}/{}", p.copies_received, p.first_copies),
            p.saved_by_copies
        );
        // One path is the peer's line itself; several get one line each,
        // in the peer's columns (HEARD: its last answer).
        if p.paths.len() > 1 {
            for (k, path) in p.paths.iter().enumerate() {
                let line = format!(
                    "{:<12} {:<22} {:<11} {:>8} {:>7} {:>10} {:>10} {:>10}",
                    format!("  path {k}"),
                    path.endpoint.as_deref().unwrap_or("unresolved"),
                    path.state,
                    opt(&path.rtt_ms, " ms"),
                    opt(&path.loss_pct.map(|l| format!("{l:.0}")), "%"),
                    opt(&path.last_answer_s.map(|t| format!("{t:.1}")), " s"),
                    "",
                    path.packets_out
                );
                let _ = writeln!(o, "{}", line.trim_end());
            }
        }
    }
    let _ = writeln!(
        o,
        "\n{:<6} {:<6} {:<8} {:<12} {:>8} {:>10} {:>10}  STATE",
        "VRID", "FAMILY", "PROTOCOL", "MASTER", "PRIORITY", "INTERVAL", "SEEN"
    );
    for r in &s.routers {
        let state = if r.split_brain {
            format!("SPLIT BRAIN with {}", r.rival.as_deref().unwrap_or("?"))
        } else {
            "ok".to_string()
        };
        let _ = writeln!(
            o,
            "{:<6} {:<6} {:<8} {:<12} {:>8} {:>7} ms {:>8.1} s  {state}",
            r.vrid, r.family, r.protocol, r.master, r.priority, r.interval_ms, r.last_seen_s
        );
    }
    if s.routers.is_empty() {
        let _ = writeln!(o, "(no VRRP adverts seen)");
    }
    if !s.vips.is_empty() {
        let _ = writeln!(
            o,
            "\n{:<6} {:<6} {:<16} {:<10} {:>8}  DETAIL",
            "VIP", "FAMILY", "ADDRESS", "STATE", "TRIES"
        );
        for v in &s.vips {
            let _ = writeln!(
                o,
                "{:<6} {:<6} {:<16} {:<10} {:>8}  {}",
                v.vrid,
                v.family,
                v.address.as_deref().unwrap_or("-"),
                v.state,
                v.attempts,
                v.detail
            );
        }
    }
    let _ = writeln!(
        o,
        "\nalarms: {}",
        if s.alarms.is_empty() {
            "none".to_string()
        } else {
            s.alarms.join("; ")
        }
    );
    let drops: Vec<String> = s
        .counters
        .drops
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let _ = writeln!(
        o,
        "counters: sealed={} sent={} injected={}{}{}",
        s.counters.sealed,
        s.counters.sent,
        s.counters.injected,
        if drops.is_empty() { "" } else { " " },
        drops.join(" ")
    );
    o
}

/// A failing `[[vip]]`, for the status and metrics tests.
#[cfg(test)]
pub(crate) fn sample_vip() -> VipStatus {
    VipStatus {
        vrid: 51,
        family: "IPv4".into(),
        address: Some("10.0.1.100".into()),
        state: "failing".into(),
        detail: "try 2 failed: exit status 255: could not connect".into(),
        attempts: 2,
        done_at: None,
        last_error: Some("exit status 255: could not connect".into()),
        next_try_s: Some(1.5),
        last_success: Some(1_796_236_205.0),
        runs_ok: 1,
        runs_failed: 2,
        runs_timed_out: 0,
        runs_killed: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Inbound, PathMode, Redundancy, Reload};
    use crate::testing::cluster::*;
    use std::net::SocketAddr;

    fn path(endpoint: &str, state: &str) -> PathStatus {
        PathStatus {
            endpoint: Some(endpoint.into()),
            state: state.into(),
            rtt_ms: Some(3),
            loss_pct: Some(0.0),
            pings_sent: 10,
            pings_answered: 10,
            packets_out: 9,
            last_answer_s: Some(0.4),
        }
    }

    #[test]
    fn loss_leaves_out_a_newest_ping_still_on_its_way() {
        assert_eq!(loss_pct(0, 0), None, "no ping yet");
        assert_eq!(loss_pct(0, 1), Some(100.0), "the only one, unanswered");
        assert_eq!(loss_pct(0b1110, 4), Some(0.0), "newest pending");
        assert_eq!(loss_pct(0b1011, 4), Some(25.0));
        assert_eq!(loss_pct(0b0101, 4), Some(50.0));
        assert_eq!(loss_pct(0, 16), Some(100.0));
        assert_eq!(loss_pct(u16::MAX, 16), Some(0.0));
        // Bits beyond the count are not pings.
        assert_eq!(loss_pct(0xff00, 8), Some(100.0));
    }

    #[test]
    fn the_status_of_an_older_daemon_still_parses() {
        let old = r#"{"node":"h1","version":"0.1.0","uptime_s":1.0,"interface":"mcast0",
            "peers":[{"name":"h2","endpoint":"10.77.0.2:7112","confirmed":true,
              "reachable":true,"rtt_ms":1,"loss_pct":0.0,"last_heard_s":0.1,
              "packets_in":1,"bytes_in":2,"packets_out":3,"bytes_out":4,"rate_limited":0}],
            "routers":[],"alarms":[],
            "counters":{"sealed":0,"sent":8,"injected":10,"drops":{}}}"#;
        let s: Status = serde_json::from_str(old).expect("an older daemon's status");
        let p = &s.peers[0];
        assert_eq!(
            (
                p.copies_received,
                p.first_copies,
                p.saved_by_copies,
                p.duplicates
            ),
            (0, 0, 0, 0)
        );
        assert!(p.paths.is_empty());
        let t = render(&s);
        assert!(t.contains("h2           10.77.0.2:7112"), "{t}");
        assert!(t.contains(" 0/0 ") && !t.contains("path 0"), "{t}");
    }

    /// Node 2's second address for node 1.
    fn alt() -> SocketAddr {
        SocketAddr::from(([198, 51, 100, 1], 7112))
    }

    #[test]
    fn snapshot_shows_copies_and_each_path() {
        let mut a = node_with(1, 2, T0, key(1));
        let mut b = node_with(2, 2, T0, key(2));
        let h1 = peer_index(&b, "h1");
        meet(&mut [(1, &mut a), (2, &mut b)], T0);
        // Added after the handshake, which pings over every path.
        b.set_path(h1, 1, Some(alt()));
        a.reconfigure(Reload {
            peers: peer_specs(1, 2, true),
            allow: allow(),
            max_clock_skew_ms: SKEW,
            inject_rate_limit: 5_000,
            keepalive_ms: 1000,
            redundancy: Redundancy {
                copies: 2,
                spacing_ms: 0,
                path_mode: PathMode::All,
            },
        });
        // Node 2 pings node 1 over both paths; only the first one works.
        let now = T0 + 1000;
        let mut out = [0u8; MAX_DATAGRAM];
        while let Some((len, _, to)) = b.poll_hello(now, &mut out) {
            if to != endpoint(1) {
                continue;
            }
            let mut d = out[..len].to_vec();
            let mut r = [0u8; MAX_DATAGRAM];
            if let Inbound::Reply { len, .. } = a.from_net(&mut d, endpoint(2), now, &mut r) {
                let mut echo = r[..len].to_vec();
                let _ = b.from_net(&mut echo, endpoint(1), now + 2, &mut out);
            }
        }
        // Node 1 sends a packet twice: one is injected, one a duplicate.
        let mut sent = batch();
        a.from_tun(&vrrp_from(1), now, &mut sent);
        for (_, _, d) in sent.iter() {
            let mut d = d.to_vec();
            let mut r = [0u8; MAX_DATAGRAM];
            let _ = b.from_net(&mut d, endpoint(1), now + 3, &mut r);
        }
        let s = snapshot(
            &b,
            &Context {
                node: "h2",
                interface: "mcast0",
                uptime_s: 1.0,
                now: Now::from(now + 10),
                vips: Vec::new(),
            },
        );
        let p = &s.peers[0];
        assert_eq!(
            (
                p.copies_received,
                p.first_copies,
                p.saved_by_copies,
                p.duplicates
            ),
            (2, 1, 0, 1)
        );
        assert_eq!(p.packets_in, 1);
        assert_eq!(s.counters.drops.get("duplicate"), Some(&1));
        let first = &p.paths[0];
        assert_eq!(first.endpoint.as_deref(), Some("192.0.2.1:7112"));
        assert_eq!(first.state, "healthy");
        assert_eq!(first.rtt_ms, Some(2));
        assert_eq!(first.loss_pct, Some(0.0));
        assert!(first.pings_answered >= 1 && first.pings_answered == first.pings_sent);
        assert_eq!(first.last_answer_s, Some(0.008));
        let second = &p.paths[1];
        assert_eq!(second.endpoint.as_deref(), Some("198.51.100.1:7112"));
        assert_eq!(second.state, "unreachable");
        assert!(second.pings_sent >= 1 && second.pings_answered == 0);
        assert_eq!(second.loss_pct, Some(100.0));
        assert_eq!(second.rtt_ms, None);
        assert_eq!(p.paths.len(), 2);
        let t = render(&s);
        assert!(
            t.contains("  path 1     198.51.100.1:7112      unreachable"),
            "{t}"
        );
        let json = serde_json::to_string(&s).expect("serialise");
        assert_eq!(serde_json::from_str::<Status>(&json).expect("parse"), s);
    }

    #[test]
    fn render_shows_peers_routers_and_alarms() {
        let s = Status {
            node: "h1".into(),
            version: "0.1.0".into(),
            uptime_s: 12.0,
            interface: "mcast0".into(),
            peers: vec![PeerStatus {
                name: "h2".into(),
                endpoint: Some("10.77.0.2:7112".into()),
                confirmed: true,
                reachable: false,
                rtt_ms: Some(3),
                loss_pct: Some(50.0),
                last_heard_s: Some(4.2),
                packets_in: 7,
                bytes_in: 300,
                packets_out: 9,
                bytes_out: 400,
                rate_limited: 0,
                copies_received: 14,
                first_copies: 7,
                saved_by_copies: 2,
                duplicates: 7,
                paths: vec![
                    path("10.77.0.2:7112", "healthy"),
                    PathStatus {
                        endpoint: None,
                        rtt_ms: None,
                        loss_pct: None,
                        last_answer_s: None,
                        packets_out: 0,
                        ..path("", "unresolved")
                    },
                ],
            }],
            routers: vec![RouterStatus {
                vrid: 51,
                family: "IPv4".into(),
                protocol: "VRRPv3".into(),
                master: "h1".into(),
                priority: 200,
                interval_ms: 100,
                last_seen_s: 0.05,
                split_brain: true,
                rival: Some("h2".into()),
            }],
            alarms: vec!["split brain: VRID 51 (IPv4) has two masters: h1 and h2".into()],
            counters: CounterStatus {
                sealed: 1,
                sent: 2,
                injected: 7,
                handshakes_sent: 0,
                handshakes_answered: 0,
                clock_jumps: 0,
                drops: [("replay".to_string(), 3)].into(),
            },
            quorum: None,
            vips: vec![sample_vip()],
        };
        let t = render(&s);
        for want in [
            "node h1 (mcast-relay 0.1.0)",
            "h2           10.77.0.2:7112         silent",
            "3 ms",
            "50%",
            "COPIES IN/FIRST   SAVED",
            "          14/7       2",
            "\n  path 0     10.77.0.2:7112         healthy         3 ms      0%      0.4 s                     9\n",
            "\n  path 1     unresolved             unresolved         -       -          -                     0\n",
            "SPLIT BRAIN with h2",
            "alarms: split brain: VRID 51",
            "injected=7 replay=3",
            "51     IPv4   10.0.1.100       failing           2  try 2 failed: exit status 255: could not connect",
        ] {
            assert!(t.contains(want), "missing {want:?} in:\n{t}");
        }
        let json = serde_json::to_string(&s).expect("serialise");
        assert_eq!(serde_json::from_str::<Status>(&json).expect("parse"), s);
    }
}
