//! Watches the VRRP and CARP adverts that pass through the relay, both
//! ways: per virtual router (VRID or VHID, and address family) who is
//! master, at what
//! priority and interval, and when it was last heard. Only masters
//! advertise, so two nodes taking turns advertising for one VRID are two
//! masters: a split brain, raised as an alarm until one of them stops.
//!
//! Allocation-free per packet: routers live in a vector reserved up front.
//! Nodes are named by identity ([`Node`]: this one, or a peer's wire id),
//! so a reload that reorders or removes peers leaves the watch valid.

use std::net::IpAddr;

pub use crate::core::peers::Node;
use crate::proto::packet::{self, Inner, PROTO_VRRP};

/// At most this many virtual routers are tracked.
pub const MAX_ROUTERS: usize = 256;
/// Sender changes within [`WINDOW_ADVERTS`] intervals that mean two masters:
/// a takeover changes the sender once, a preemption up to three times (the
/// old master's advert in flight), an election at start (every node
/// master for a moment) a few times; two masters twice an interval.
const SPLIT_SWITCHES: usize = 8;
const WINDOW_ADVERTS: u64 = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }
}

/// The fields of one advert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Advert {
    pub family: Family,
    /// 2 or 3 for VRRP; [`CARP`] for CARP (whose `priority` is 255 minus
    /// its advskew, so that higher is preferred as with VRRP).
    pub version: u8,
    pub vrid: u8,
    pub priority: u8,
    pub interval_ms: u64,
}

/// The `version` of a CARP advert.
pub const CARP: u8 = 0xca;
/// A CARP advert's length: header, counter and SHA-1 HMAC.
const CARP_LEN: usize = 36;

/// Decodes a VRRPv2, VRRPv3 or CARP advert from an IP packet, if it is one.
/// CARP shares IP protocol 112 and version 2 with VRRPv2; it is told apart
/// by its fixed length and its auth length of 7 words where VRRPv2 has an
/// address count.
pub fn parse(packet: &[u8]) -> Option<Advert> {
    let inner = packet::parse(packet).ok()?;
    parse_inner(packet, &inner)
}

/// [`parse`] of a packet already parsed as `inner`.
pub(crate) fn parse_inner(packet: &[u8], inner: &Inner) -> Option<Advert> {
    if inner.proto != PROTO_VRRP || inner.fragment {
        return None;
    }
    let family = match inner.src {
        IpAddr::V4(_) => Family::V4,
        IpAddr::V6(_) => Family::V6,
    };
    let payload = packet.get(inner.payload..)?;
    let b = payload.get(..8)?;
    let (version, kind) = (b[0] >> 4, b[0] & 0x0f);
    if kind != 1 {
        return None;
    }
    if version == 2 && payload.len() == CARP_LEN && b[3] == 7 {
        // vhid, advskew, authlen, demote, advbase (s): the interval is
        // advbase + advskew/256 s.
        return Some(Advert {
            family,
            version: CARP,
            vrid: b[1],
            priority: 255 - b[2],
            interval_ms: u64::from(b[5]) * 1000 + u64::from(b[2]) * 1000 / 256,
        });
    }
    let interval_ms = match version {
        2 => u64::from(b[5]) * 1000,
        3 => (u64::from(b[4] & 0x0f) << 8 | u64::from(b[5])) * 10,
        _ => return None,
    };
    Some(Advert {
        family,
        version,
        vrid: b[1],
        priority: b[2],
        interval_ms,
    })
}

/// One virtual router as seen so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Router {
    pub family: Family,
    pub vrid: u8,
    pub version: u8,
    /// The node that advertised last.
    pub master: Node,
    pub priority: u8,
    pub interval_ms: u64,
    pub last_ms: u64,
    /// The other node advertising while the alarm is raised.
    pub rival: Option<Node>,
    /// Since when two nodes advertise (our clock, ms).
    pub split_since: Option<u64>,
    /// When the advertising node last changed, newest first. (`None`, not
    /// 0, is "not yet": the daemon's monotonic clock starts at 0.)
    switches: [Option<u64>; SPLIT_SWITCHES],
}

impl Router {
    fn window_ms(&self) -> u64 {
        self.interval_ms.max(100) * WINDOW_ADVERTS
    }

    fn last_switch(&self) -> u64 {
        self.switches[0].unwrap_or(0)
    }

    /// When a raised alarm ends if no other node advertises by then.
    fn clears_at(&self) -> Option<u64> {
        self.split_since
            .map(|_| self.last_switch().saturating_add(self.window_ms() + 1))
    }
}

/// A split brain that began or ended, for the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alarm {
    Raised(Router),
    Cleared(Router),
}

#[derive(Debug)]
pub struct Watch {
    routers: Vec<Router>,
    /// Routers tracked even when [`MAX_ROUTERS`] others are (`[[vip]]`'s:
    /// a member advertising for many VRIDs must not make a claim
    /// impossible).
    reserved: Vec<(Family, u8)>,
}

impl Default for Watch {
    fn default() -> Self {
        Watch::reserving(&[])
    }
}

impl Watch {
    /// A watch with room for `reserved` beyond [`MAX_ROUTERS`].
    pub fn reserving(reserved: &[(Family, u8)]) -> Watch {
        Watch {
            routers: Vec::with_capacity(MAX_ROUTERS + reserved.len()),
            reserved: reserved.to_vec(),
        }
    }

    /// The router of `family` and `vrid`, if it was heard.
    pub fn router(&self, family: Family, vrid: u8) -> Option<&Router> {
        self.routers
            .iter()
            .find(|r| r.family == family && r.vrid == vrid)
    }

    /// Records `packet` if it is a VRRP advert sent by `node`.
    pub fn observe(&mut self, node: Node, packet: &[u8], now_ms: u64) -> Option<Alarm> {
        let a = parse(packet)?;
        self.record(node, a, now_ms)
    }

    /// Records advert `a`, sent by `node`.
    pub(crate) fn record(&mut self, node: Node, a: Advert, now_ms: u64) -> Option<Alarm> {
        // Priority 0: a master resigning, not one claiming the role.
        if a.priority == 0 {
            return None;
        }
        let pos = self
            .routers
            .iter()
            .position(|r| r.vrid == a.vrid && r.family == a.family);
        let r = match pos {
            Some(p) => &mut self.routers[p],
            None if self.routers.len() < MAX_ROUTERS
                || self.reserved.contains(&(a.family, a.vrid)) =>
            {
                self.routers.push(Router {
                    family: a.family,
                    vrid: a.vrid,
                    version: a.version,
                    master: node,
                    priority: a.priority,
                    interval_ms: a.interval_ms,
                    last_ms: now_ms,
                    rival: None,
                    split_since: None,
                    switches: [None; SPLIT_SWITCHES],
                });
                return None;
            }
            None => return None,
        };
        let mut alarm = None;
        if r.master != node {
            r.switches.rotate_right(1);
            r.switches[0] = Some(now_ms);
            let window = r.window_ms();
            let turns = r
                .switches
                .iter()
                .flatten()
                .filter(|t| now_ms.saturating_sub(**t) <= window)
                .count();
            if turns >= SPLIT_SWITCHES && r.split_since.is_none() {
                r.split_since = Some(now_ms);
                r.rival = Some(r.master);
                alarm = Some(());
            } else if r.split_since.is_some() {
                r.rival = Some(r.master);
            }
        }
        r.master = node;
        r.version = a.version;
        r.priority = a.priority;
        r.interval_ms = a.interval_ms;
        r.last_ms = now_ms;
        alarm.map(|()| Alarm::Raised(*r))
    }

    /// When [`Watch::tick`] next has an alarm to end: the earliest time a
    /// raised alarm's window passes with one master.
    pub(crate) fn next_expiry(&self) -> Option<u64> {
        self.routers.iter().filter_map(Router::clears_at).min()
    }

    /// Ends alarms whose routers have had one master for a whole window,
    /// one per call: call at [`Watch::next_expiry`] until `None`.
    pub fn tick(&mut self, now_ms: u64) -> Option<Alarm> {
        for r in &mut self.routers {
            if r.split_since.is_some() && now_ms.saturating_sub(r.last_switch()) > r.window_ms() {
                r.split_since = None;
                r.rival = None;
                return Some(Alarm::Cleared(*r));
            }
        }
        None
    }

    pub fn routers(&self) -> &[Router] {
        &self.routers
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::peers::PeerId;

    fn peer(n: u32) -> Node {
        Node::Peer(PeerId(n))
    }

    fn v4(priority: u8, vrid: u8, version: u8) -> Vec<u8> {
        let mut p = vec![0x45, 0xc0, 0, 32, 0, 0, 0, 0, 255, PROTO_VRRP, 0, 0];
        p.extend_from_slice(&[10, 250, 0, 1, 224, 0, 0, 18]);
        if version == 3 {
            p.extend_from_slice(&[0x31, vrid, priority, 1, 0x00, 10, 0, 0, 10, 77, 0, 100]);
        } else {
            p.extend_from_slice(&[0x21, vrid, priority, 1, 0, 1, 0, 0, 10, 77, 0, 100]);
        }
        p
    }

    #[test]
    fn decodes_v2_v3_and_v6() {
        let a = parse(&v4(200, 51, 3)).expect("v3");
        assert_eq!(
            (a.version, a.vrid, a.priority, a.interval_ms),
            (3, 51, 200, 100)
        );
        let a = parse(&v4(150, 7, 2)).expect("v2");
        assert_eq!(
            (a.version, a.vrid, a.priority, a.interval_ms),
            (2, 7, 150, 1000)
        );
        let mut six = vec![0x60, 0, 0, 0, 0, 8, PROTO_VRRP, 255];
        six.extend_from_slice(&[0; 32]);
        six.extend_from_slice(&[0x31, 9, 100, 0, 0x00, 100, 0, 0]);
        let a = parse(&six).expect("v6");
        assert_eq!((a.family, a.vrid, a.interval_ms), (Family::V6, 9, 1000));
        // CARP (as ucarp sends it): vhid 5, advskew 10, advbase 1.
        let mut carp = vec![0x45, 0x10, 0, 56, 0, 0, 0, 0, 255, PROTO_VRRP, 0, 0];
        carp.extend_from_slice(&[10, 250, 0, 1, 224, 0, 0, 18]);
        carp.extend_from_slice(&[0x21, 5, 10, 7, 0, 1, 0, 0]);
        carp.extend_from_slice(&[0; 28]);
        let a = parse(&carp).expect("carp");
        assert_eq!(
            (a.version, a.vrid, a.priority, a.interval_ms),
            (CARP, 5, 245, 1039)
        );
        let mut udp = v4(1, 1, 3);
        udp[9] = 17;
        assert_eq!(parse(&udp), None);
        assert_eq!(parse(&[0x45]), None);
    }

    #[test]
    fn takeover_is_not_split_brain_but_taking_turns_is() {
        let mut w = Watch::default();
        let (h1, h2) = (peer(1), peer(2));
        // h1 masters, then dies; h2 takes over; h1 returns and preempts.
        for t in 0..10 {
            assert_eq!(w.observe(h1, &v4(200, 51, 3), t * 100), None);
        }
        for t in 14..20 {
            assert_eq!(w.observe(h2, &v4(150, 51, 3), t * 100), None);
        }
        assert_eq!(w.observe(h1, &v4(200, 51, 3), 2000), None);
        assert_eq!(w.observe(h2, &v4(150, 51, 3), 2010), None);
        assert_eq!(w.observe(h1, &v4(200, 51, 3), 2100), None);
        assert_eq!(w.routers()[0].master, h1);
        assert!(w.routers()[0].split_since.is_none());
        // A partition: both advertise every 100 ms.
        let mut raised = None;
        for t in 40..50 {
            raised = raised.or(w.observe(h1, &v4(200, 51, 3), t * 100));
            raised = raised.or(w.observe(h2, &v4(150, 51, 3), t * 100 + 50));
        }
        // An election at start: three nodes master for a moment.
        let mut start = Watch::default();
        for (n, t) in [
            (1, 0),
            (2, 5),
            (3, 9),
            (1, 100),
            (2, 104),
            (1, 200),
            (1, 300),
        ] {
            assert_eq!(start.observe(peer(n), &v4(100 + n as u8, 51, 3), t), None);
        }
        let Some(Alarm::Raised(r)) = raised else {
            panic!("no alarm for two masters");
        };
        assert_eq!((r.vrid, r.family), (51, Family::V4));
        assert!(matches!(r.rival, Some(x) if x == h1 || x == h2));
        // Healed: only h1 from now on; the alarm clears after a window.
        assert_eq!(w.tick(5000), None);
        for t in 50..60 {
            w.observe(h1, &v4(200, 51, 3), t * 100);
        }
        assert!(matches!(w.tick(6100), Some(Alarm::Cleared(_))));
        assert!(w.routers()[0].split_since.is_none());
    }

    #[test]
    fn a_turn_at_time_zero_counts() {
        // The daemon's monotonic clock starts at 0: a turn then is a turn.
        let mut w = Watch::default();
        let (h1, h2) = (peer(1), peer(2));
        assert_eq!(w.observe(h2, &v4(150, 51, 3), 0), None);
        let mut raised_at = None;
        for k in 0..8u64 {
            let node = if k % 2 == 0 { h1 } else { h2 };
            if w.observe(node, &v4(150, 51, 3), k * 10).is_some() {
                raised_at = raised_at.or(Some(k * 10));
            }
        }
        assert_eq!(raised_at, Some(70), "eight turns, the first at 0");
    }

    #[test]
    fn resignation_and_other_vrids_are_separate() {
        let mut w = Watch::default();
        w.observe(peer(1), &v4(200, 51, 3), 0);
        w.observe(peer(2), &v4(0, 51, 3), 10);
        w.observe(peer(2), &v4(100, 52, 2), 20);
        assert_eq!(w.routers().len(), 2);
        assert_eq!(
            w.routers()[0].master,
            peer(1),
            "priority 0 does not claim the role"
        );
    }
}
