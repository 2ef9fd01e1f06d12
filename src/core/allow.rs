//! What the relay is allowed to carry: presets for the supported failover
//! tools (one table, [`PRESETS`], that config, check and the CLI read too)
//! and custom rules, matched against an inner packet's protocol,
//! destination port and kind of destination. Both directions use the same
//! list: the sender does not waste bandwidth on what every receiver drops.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::proto::overlay::{Prefix, PrefixError};
use crate::proto::packet::{Inner, PROTO_TCP, PROTO_UDP, PROTO_VRRP};

/// How an inner packet is addressed, as decided by the relay from the
/// overlay configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DestKind {
    /// An IPv4 (224.0.0.0/4) or IPv6 (ff00::/8) group.
    Multicast,
    /// The limited or the overlay subnet broadcast address.
    Broadcast,
    /// A node's own overlay address.
    Unicast,
}

/// Which destinations a rule covers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Destinations {
    /// Any multicast group.
    pub any_multicast: bool,
    /// Only these groups (or group prefixes).
    pub groups: Vec<Prefix>,
    pub broadcast: bool,
    pub unicast: bool,
}

impl Destinations {
    /// Every kind of destination: what a rule without `destinations` means.
    pub fn all() -> Self {
        Destinations {
            any_multicast: true,
            groups: Vec::new(),
            broadcast: true,
            unicast: true,
        }
    }

    fn permits(&self, dst: IpAddr, kind: DestKind) -> bool {
        match kind {
            DestKind::Multicast => {
                self.any_multicast || self.groups.iter().any(|g| g.contains(dst))
            }
            DestKind::Broadcast => self.broadcast,
            DestKind::Unicast => self.unicast,
        }
    }

    /// Parses one `destinations` entry: `multicast`, `broadcast`, `unicast`
    /// or a multicast group/prefix.
    pub fn add(&mut self, entry: &str) -> Result<(), DestinationError> {
        match entry.trim() {
            "multicast" => self.any_multicast = true,
            "broadcast" => self.broadcast = true,
            "unicast" => self.unicast = true,
            other => {
                let p: Prefix = other.parse().map_err(DestinationError::Prefix)?;
                let is_mcast = match p.addr {
                    IpAddr::V4(a) => a.is_multicast() && p.len >= 4,
                    IpAddr::V6(a) => a.is_multicast() && p.len >= 8,
                };
                if !is_mcast {
                    return Err(DestinationError::NotMulticast(other.to_string()));
                }
                self.groups.push(p);
            }
        }
        Ok(())
    }
}

/// Why a `destinations` entry was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DestinationError {
    /// Not a keyword, and not an address or prefix either.
    Prefix(PrefixError),
    /// An address or prefix (as written) that is not multicast.
    NotMulticast(String),
}

impl fmt::Display for DestinationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DestinationError::Prefix(e) => write!(
                f,
                "{e}; expected a multicast group such as \"225.0.0.1\", or one of \"multicast\", \"broadcast\", \"unicast\""
            ),
            DestinationError::NotMulticast(entry) => write!(
                f,
                "`{entry}` is not a multicast group or group prefix; use \"broadcast\" for broadcast and \"unicast\" for traffic to the nodes' overlay addresses"
            ),
        }
    }
}

impl std::error::Error for DestinationError {}

/// One permission: a protocol, optionally a set of destination ports, and
/// the destinations it may go to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Where the rule came from, for logs: a preset name or `rule N`.
    pub label: String,
    pub proto: u8,
    /// Inclusive destination port ranges; empty means any port.
    pub ports: Vec<(u16, u16)>,
    pub dests: Destinations,
}

impl Rule {
    fn permits(&self, inner: &Inner, kind: DestKind) -> bool {
        if inner.proto != self.proto || !self.dests.permits(inner.dst, kind) {
            return false;
        }
        if self.ports.is_empty() {
            return true;
        }
        match inner.dst_port {
            Some(p) => self.ports.iter().any(|(lo, hi)| (*lo..=*hi).contains(&p)),
            // A later fragment carries no port, so only its protocol and
            // destination can be checked. That is enough: the kernel
            // delivers a datagram only once it is whole, where it goes is
            // the first fragment's to say (offset 0: it holds the whole
            // transport header, or it does not parse), and the only first
            // fragments from this peer's address that the relay writes
            // were held to these ports. Overlapping fragments are discarded
            // (RFC 5722; Linux does so for IPv4 too), and later fragments
            // without a first one are dropped when reassembly times out. A
            // first fragment forged on another interface could have been
            // sent whole there: the relay opens nothing new for it.
            None => inner.later_fragment,
        }
    }
}

/// The supported tools' traffic, by name: the key of [`PRESETS`], in its
/// order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    Vrrp,
    Carp,
    Heartbeat,
    Corosync,
    Spread,
}

/// Where a preset's traffic may go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PresetDests {
    /// Every kind of destination (multicast, broadcast, unicast).
    All,
    /// These multicast groups only.
    Groups(&'static [Prefix]),
}

/// A failover tool whose own configuration `check` reads (check::toolconf
/// has a reader for each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    Keepalived,
    Heartbeat,
    Corosync,
}

/// A tool configuration file `check` looks at by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ToolConfig {
    pub tool: Tool,
    /// Where Debian's package keeps it.
    pub path: &'static str,
}

/// One row of [`PRESETS`]: everything that differs from one preset to
/// the next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PresetSpec {
    pub preset: Preset,
    /// As written in `[allow] presets`.
    pub name: &'static str,
    /// The failover tool whose traffic it carries.
    pub tool: &'static str,
    /// What it lets through, for `--help`.
    pub help: &'static str,
    pub proto: u8,
    /// Inclusive destination port ranges; empty means any port.
    pub ports: &'static [(u16, u16)],
    pub dests: PresetDests,
    /// The tool's configuration that `check` compares with the relay's.
    pub tool_config: Option<ToolConfig>,
}

/// VRRP (keepalived) and CARP (ucarp) adverts go to the all-VRRP-routers
/// groups only.
const VRRP_GROUPS: &[Prefix] = &[
    Prefix {
        addr: IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18)),
        len: 32,
    },
    Prefix {
        addr: IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12)),
        len: 128,
    },
];

/// Every preset: its rule, its name, its help and the tool configuration
/// `check` reads. Adding a preset is a `Preset` variant and a row here (and
/// a reader in check::toolconf if its tool's configuration is new).
pub const PRESETS: [PresetSpec; 5] = [
    PresetSpec {
        preset: Preset::Vrrp,
        name: "vrrp",
        tool: "keepalived",
        help: "keepalived's VRRP adverts (IP protocol 112 to 224.0.0.18 and ff02::12)",
        proto: PROTO_VRRP,
        ports: &[],
        dests: PresetDests::Groups(VRRP_GROUPS),
        tool_config: Some(ToolConfig {
            tool: Tool::Keepalived,
            path: "/etc/keepalived/keepalived.conf",
        }),
    },
    PresetSpec {
        preset: Preset::Carp,
        name: "carp",
        tool: "ucarp",
        help: "ucarp's CARP adverts (IP protocol 112 to 224.0.0.18 and ff02::12)",
        proto: PROTO_VRRP,
        ports: &[],
        dests: PresetDests::Groups(VRRP_GROUPS),
        tool_config: None,
    },
    PresetSpec {
        preset: Preset::Heartbeat,
        name: "heartbeat",
        tool: "heartbeat",
        help: "heartbeat's mcast, bcast and ucast media (UDP 694)",
        proto: PROTO_UDP,
        ports: &[(694, 694)],
        dests: PresetDests::All,
        tool_config: Some(ToolConfig {
            tool: Tool::Heartbeat,
            path: "/etc/ha.d/ha.cf",
        }),
    },
    // corosync `udp` transport: mcastport (5405) and mcastport - 1,
    // multicast for membership, unicast for the token.
    PresetSpec {
        preset: Preset::Corosync,
        name: "corosync",
        tool: "corosync",
        help: "corosync's udp transport (UDP 5404-5405, multicast and the unicast token)",
        proto: PROTO_UDP,
        ports: &[(5404, 5405)],
        dests: PresetDests::All,
        tool_config: Some(ToolConfig {
            tool: Tool::Corosync,
            path: "/etc/corosync/corosync.conf",
        }),
    },
    PresetSpec {
        preset: Preset::Spread,
        name: "spread",
        tool: "spread",
        help: "spread's daemon and token ports (UDP 4803-4804)",
        proto: PROTO_UDP,
        ports: &[(4803, 4804)],
        dests: PresetDests::All,
        tool_config: None,
    },
];

// `Preset::spec` indexes the table by variant.
const _: () = {
    let mut i = 0;
    while i < PRESETS.len() {
        assert!(
            PRESETS[i].preset as usize == i,
            "PRESETS rows must be in Preset's order"
        );
        i += 1;
    }
};

impl Preset {
    /// The preset's row of [`PRESETS`].
    pub(crate) fn spec(self) -> &'static PresetSpec {
        &PRESETS[self as usize]
    }

    pub fn name(self) -> &'static str {
        self.spec().name
    }

    pub(crate) fn from_name(name: &str) -> Option<Preset> {
        PRESETS.iter().find(|p| p.name == name).map(|p| p.preset)
    }

    /// The rule the preset stands for.
    pub fn rule(self) -> Rule {
        let spec = self.spec();
        Rule {
            label: spec.name.to_string(),
            proto: spec.proto,
            ports: spec.ports.to_vec(),
            dests: match spec.dests {
                PresetDests::All => Destinations::all(),
                PresetDests::Groups(groups) => Destinations {
                    groups: groups.to_vec(),
                    ..Destinations::default()
                },
            },
        }
    }
}

/// The presets' names, for messages: `vrrp, carp, heartbeat, ...`.
pub(crate) fn preset_names() -> String {
    let names: Vec<&str> = PRESETS.iter().map(|p| p.name).collect();
    names.join(", ")
}

/// Parses a custom rule's `protocol` value.
pub(crate) fn parse_protocol(s: &str) -> Result<u8, UnknownProtocol> {
    match s.trim().to_ascii_lowercase().as_str() {
        "udp" => Ok(PROTO_UDP),
        "tcp" => Ok(PROTO_TCP),
        "vrrp" | "carp" => Ok(PROTO_VRRP),
        other => other
            .parse::<u8>()
            .map_err(|_| UnknownProtocol(s.to_string())),
    }
}

/// A `protocol` value (as written) that is neither a known name nor a
/// number 0-255.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownProtocol(pub String);

impl fmt::Display for UnknownProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown protocol `{}`; expected \"udp\", \"tcp\", \"vrrp\", \"carp\" or an IP protocol number 0-255",
            self.0
        )
    }
}

impl std::error::Error for UnknownProtocol {}

/// Every rule in force.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowList {
    rules: Vec<Rule>,
}

impl AllowList {
    pub fn new(rules: Vec<Rule>) -> Self {
        AllowList { rules }
    }

    /// The rules of these presets and nothing else: the fixtures' policy
    /// (the configuration builds its list rule by rule, with `new`).
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn of_presets(presets: &[Preset]) -> Self {
        AllowList::new(presets.iter().map(|p| p.rule()).collect())
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Does any rule permit this packet to this kind of destination?
    pub fn permits(&self, inner: &Inner, kind: DestKind) -> bool {
        self.rules.iter().any(|r| r.permits(inner, kind))
    }
}

impl fmt::Display for AllowList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.rules.iter().map(|r| r.label.as_str()).collect();
        f.write_str(&names.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::packet::{PROTO_ICMPV6, parse};
    use crate::testing::packets as testpkt;
    use std::net::Ipv4Addr;

    const A: Ipv4Addr = Ipv4Addr::new(10, 250, 0, 1);

    fn udp_to(dst: Ipv4Addr, port: u16) -> Inner {
        parse(&testpkt::v4_udp(A, dst, port, b"x")).expect("parses")
    }

    #[test]
    fn vrrp_preset_only_vrrp_groups() {
        let l = AllowList::of_presets(&[Preset::Vrrp]);
        let adv = parse(&testpkt::v4(
            A,
            Ipv4Addr::new(224, 0, 0, 18),
            PROTO_VRRP,
            &[0; 8],
        ))
        .expect("parses");
        assert!(l.permits(&adv, DestKind::Multicast));
        let other_group = parse(&testpkt::v4(
            A,
            Ipv4Addr::new(224, 0, 0, 19),
            PROTO_VRRP,
            &[0; 8],
        ))
        .expect("p");
        assert!(!l.permits(&other_group, DestKind::Multicast));
        assert!(!l.permits(&adv, DestKind::Unicast));
        assert!(!l.permits(
            &udp_to(Ipv4Addr::new(224, 0, 0, 18), 694),
            DestKind::Multicast
        ));
    }

    #[test]
    fn heartbeat_and_corosync_ports() {
        let l = AllowList::of_presets(&[Preset::Heartbeat, Preset::Corosync]);
        let g = Ipv4Addr::new(239, 192, 1, 1);
        assert!(l.permits(&udp_to(g, 694), DestKind::Multicast));
        assert!(l.permits(&udp_to(g, 5404), DestKind::Multicast));
        assert!(l.permits(&udp_to(g, 5405), DestKind::Broadcast));
        assert!(l.permits(
            &udp_to(Ipv4Addr::new(10, 250, 0, 2), 5405),
            DestKind::Unicast
        ));
        assert!(!l.permits(&udp_to(g, 5406), DestKind::Multicast));
        assert!(!l.permits(&udp_to(g, 22), DestKind::Multicast));
        let tcp22 = parse(&testpkt::v4(
            A,
            Ipv4Addr::new(10, 250, 0, 2),
            PROTO_TCP,
            &[0, 1, 0, 22],
        ))
        .expect("parses");
        assert!(!l.permits(&tcp22, DestKind::Unicast));
    }

    #[test]
    fn custom_rule_destinations() {
        let mut d = Destinations::default();
        d.add("225.0.0.1").expect("group");
        d.add("ff05::/16").expect("v6 prefix");
        assert!(d.add("10.0.0.1").is_err());
        assert!(d.add("255.255.255.255").is_err());
        assert!(d.add("nonsense").is_err());
        let l = AllowList::new(vec![Rule {
            label: "rule 1".into(),
            proto: PROTO_UDP,
            ports: vec![(694, 694)],
            dests: d,
        }]);
        assert!(l.permits(
            &udp_to(Ipv4Addr::new(225, 0, 0, 1), 694),
            DestKind::Multicast
        ));
        assert!(!l.permits(
            &udp_to(Ipv4Addr::new(225, 0, 0, 2), 694),
            DestKind::Multicast
        ));
        assert!(!l.permits(
            &udp_to(Ipv4Addr::new(225, 0, 0, 1), 694),
            DestKind::Broadcast
        ));
    }

    #[test]
    fn later_fragments_match_on_protocol_and_destination() {
        let l = AllowList::of_presets(&[Preset::Heartbeat]);
        let mut p = testpkt::v4_udp(A, Ipv4Addr::new(225, 0, 0, 1), 694, &[0u8; 16]);
        p[7] = 0x03; // offset 24: no UDP header in this fragment
        let frag = parse(&p).expect("parses");
        assert!(l.permits(&frag, DestKind::Multicast));
        let mut other = frag;
        other.proto = PROTO_ICMPV6;
        assert!(!l.permits(&other, DestKind::Multicast));
    }

    #[test]
    fn protocol_names() {
        assert_eq!(parse_protocol("UDP"), Ok(PROTO_UDP));
        assert_eq!(parse_protocol("carp"), Ok(PROTO_VRRP));
        assert_eq!(parse_protocol("47"), Ok(47));
        assert!(parse_protocol("gre").is_err());
        assert_eq!(Preset::from_name("corosync"), Some(Preset::Corosync));
        assert_eq!(Preset::from_name("nope"), None);
    }

    #[test]
    fn preset_rules_from_the_table() {
        let group = |s: &str| s.parse::<Prefix>().expect("literal");
        let vrrp = Preset::Vrrp.rule();
        assert_eq!(vrrp.label, "vrrp");
        assert_eq!(vrrp.proto, PROTO_VRRP);
        assert!(vrrp.ports.is_empty());
        assert_eq!(
            vrrp.dests,
            Destinations {
                groups: vec![group("224.0.0.18"), group("ff02::12")],
                ..Destinations::default()
            }
        );
        assert_eq!(Preset::Carp.rule().dests, vrrp.dests);
        let corosync = Preset::Corosync.rule();
        assert_eq!(
            (corosync.proto, corosync.ports, corosync.dests),
            (PROTO_UDP, vec![(5404, 5405)], Destinations::all())
        );
        assert_eq!(preset_names(), "vrrp, carp, heartbeat, corosync, spread");
    }
}
