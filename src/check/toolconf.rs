//! Reads the failover tools' own configurations (keepalived.conf, ha.cf,
//! corosync.conf) just far enough to warn when they do not use the relay:
//! the wrong interface, a transport that does not multicast, addresses
//! outside the overlay subnet, more virtual routers or adverts than one
//! relay carries. Not a validator of those files.

use std::net::Ipv4Addr;
use std::path::Path;

use crate::check::finding::Finding;
use crate::config::VRIDS_PER_FAMILY;
use crate::core::allow::{AllowList, PRESETS, ToolConfig};
use crate::proto::overlay::mask_v4;

pub use crate::core::allow::Tool;

/// Each tool configuration the presets name, with where Debian's package
/// keeps it.
pub fn default_configs() -> impl Iterator<Item = ToolConfig> {
    PRESETS.iter().filter_map(|p| p.tool_config)
}

/// The tool configurations of the presets `allow` carries (the preset, or
/// a custom rule with the same traffic): the ones `check` reads by
/// default. A tool the relay does not carry is not set up for it
/// (corosync's package installs a corosync.conf whether it is used or
/// not), so its file is none of the relay's business.
pub fn carried_configs(allow: &AllowList) -> impl Iterator<Item = ToolConfig> + '_ {
    PRESETS
        .iter()
        .filter(|p| {
            let preset = p.preset.rule();
            allow.rules().iter().any(|r| {
                r.proto == preset.proto && r.ports == preset.ports && r.dests == preset.dests
            })
        })
        .filter_map(|p| p.tool_config)
}

/// The tools whose configuration `check` reads, for messages:
/// `keepalived, heartbeat or corosync`.
pub fn tool_names() -> String {
    let names: Vec<&str> = PRESETS
        .iter()
        .filter(|p| p.tool_config.is_some())
        .map(|p| p.tool)
        .collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => names.concat(),
    }
}

/// The file names of the default configurations, for `--help`:
/// `keepalived.conf, ha.cf, corosync.conf`.
pub fn default_file_names() -> String {
    let names: Vec<&str> = default_configs()
        .map(|c| c.path.rsplit('/').next().unwrap_or(c.path))
        .collect();
    names.join(", ")
}

/// What the relay offers the tools.
pub struct Relay<'a> {
    pub iface: &'a str,
    pub address: Ipv4Addr,
    pub prefix: u8,
    /// `node.inject_rate_limit`, packets/s a peer may inject; 0: no limit.
    pub inject_rate_limit: u32,
    /// Address families the interface carries (1, or 2 with `subnet6`).
    pub families: u32,
    /// The interfaces of this host's other relay instances (one per
    /// interface beyond 255 virtual routers), with their files.
    pub others: &'a [(String, std::path::PathBuf)],
    /// `[[vip]]`: each VRID and its `settle` in seconds, if set.
    pub vips: &'a [(u8, Option<f64>)],
}

impl Relay<'_> {
    fn subnet(&self) -> String {
        let net = Ipv4Addr::from(u32::from(self.address) & mask_v4(self.prefix));
        format!("{net}/{}", self.prefix)
    }

    fn in_subnet(&self, a: Ipv4Addr) -> bool {
        let m = mask_v4(self.prefix);
        u32::from(a) & m == u32::from(self.address) & m
    }
}

/// Which tool a file belongs to, by its name, else by what it contains.
pub fn detect(path: &Path, text: &str) -> Option<Tool> {
    let name = path.file_name()?.to_string_lossy();
    if name.contains("keepalived") || text.contains("vrrp_instance") {
        Some(Tool::Keepalived)
    } else if name.contains("corosync") || text.contains("totem") {
        Some(Tool::Corosync)
    } else if name == "ha.cf"
        || text
            .lines()
            .any(|l| l.trim_start().starts_with("mcast ") || l.trim_start().starts_with("bcast "))
    {
        Some(Tool::Heartbeat)
    } else {
        None
    }
}

pub fn findings(tool: Tool, path: &Path, text: &str, relay: &Relay) -> Vec<Finding> {
    match tool {
        Tool::Keepalived => keepalived(path, text, relay),
        Tool::Heartbeat => heartbeat(path, text, relay),
        Tool::Corosync => corosync(path, text, relay),
    }
}

/// Words and braces, comments (`#`, `!`) removed.
fn tokens(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split(['#', '!']).next().unwrap_or(""))
        .flat_map(|l| {
            l.replace('{', " { ")
                .replace('}', " } ")
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// keepalived's VRRP version for instances that do not set theirs:
/// `global_defs { vrrp_version N }`, else 2.
fn default_vrrp_version(t: &[String]) -> u8 {
    t.windows(2)
        .find(|w| w[0] == "vrrp_version")
        .and_then(|w| w[1].parse().ok())
        .unwrap_or(2)
}

/// Adverts a second of an instance at `advert_int` (seconds, as written)
/// the way keepalived rounds it: VRRPv2 to whole seconds, at least one;
/// VRRPv3 to centiseconds, 0.01 to 40.95 s.
fn adverts_per_sec(advert_int: f64, version: u8) -> f64 {
    if version == 3 {
        100.0 / (advert_int * 100.0).round().clamp(1.0, 4095.0)
    } else {
        1.0 / advert_int.round().clamp(1.0, 255.0)
    }
}

/// A `[[vip]]` `settle` too short for the instance's advert interval: two
/// masters are recognised after about four intervals of both advertising,
/// so a claim could be made before.
fn settle_finding(
    path: &Path,
    name: &str,
    vrid: u8,
    advert_int: f64,
    version: u8,
    relay: &Relay,
) -> Option<Finding> {
    let (_, settle) = relay.vips.iter().find(|(v, _)| *v == vrid)?;
    let interval = 1.0 / adverts_per_sec(advert_int, version);
    let settle = (*settle)?;
    (settle + 1e-9 < 5.0 * interval).then(|| {
        Finding::Warning(format!(
            "{}: [[vip]] VRID {vrid} has settle = {settle} s, less than five advert intervals of vrrp_instance {name} ({:.2} s): a split brain is recognised after about four, so its hook could run during one; raise settle or leave it out (six intervals)",
            path.display(),
            5.0 * interval
        ))
    })
}

fn keepalived(path: &Path, text: &str, relay: &Relay) -> Vec<Finding> {
    let t = tokens(text);
    let default_version = default_vrrp_version(&t);
    let mut out = Vec::new();
    let mut instances = 0;
    // Of the instances on the relay's interface: how many, and the adverts
    // a second they send when this host masters them all.
    let mut relayed = 0u32;
    let mut load = 0.0;
    let mut seen_vrids: Vec<u8> = Vec::new();
    let mut i = 0;
    while i < t.len() {
        if t[i] != "vrrp_instance" {
            i += 1;
            continue;
        }
        instances += 1;
        let name = t.get(i + 1).cloned().unwrap_or_default();
        // Only the instance's own keys (depth 1), not nested blocks such as
        // track_interface, whose members are interfaces too.
        let mut depth = 0;
        let mut iface: Option<String> = None;
        let mut unicast = false;
        // keepalived's defaults.
        let mut advert_int = 1.0;
        let mut version = default_version;
        let mut vrid: Option<u8> = None;
        let mut j = i + 2;
        while j < t.len() {
            match t[j].as_str() {
                "{" => depth += 1,
                "}" => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                "interface" if depth == 1 => iface = t.get(j + 1).cloned(),
                "unicast_peer" if depth == 1 => unicast = true,
                "virtual_router_id" if depth == 1 => {
                    vrid = t.get(j + 1).and_then(|v| v.parse().ok());
                }
                "advert_int" if depth == 1 => {
                    if let Some(x) = t.get(j + 1).and_then(|v| v.parse::<f64>().ok()) {
                        if x.is_finite() && x > 0.0 {
                            advert_int = x;
                        }
                    }
                }
                "version" if depth == 1 => {
                    if let Some(v) = t.get(j + 1).and_then(|v| v.parse().ok()) {
                        version = v;
                    }
                }
                _ => {}
            }
            j += 1;
        }
        if iface.as_deref() == Some(relay.iface) {
            relayed += 1;
            load += adverts_per_sec(advert_int, version);
            if let Some(v) = vrid {
                seen_vrids.push(v);
                out.extend(settle_finding(path, &name, v, advert_int, version, relay));
            }
        }
        let other = relay.others.iter().find(|(i, _)| Some(i) == iface.as_ref());
        match iface {
            Some(x) if x == relay.iface => out.push(Finding::Ok(format!(
                "{}: vrrp_instance {name} sends its adverts on {x}",
                path.display()
            ))),
            Some(x) if other.is_some() => out.push(Finding::Ok(format!(
                "{}: vrrp_instance {name} sends its adverts on {x}, the interface of the relay configured in {}",
                path.display(),
                other.map_or(String::new(), |(_, f)| f.display().to_string())
            ))),
            Some(x) => out.push(Finding::Warning(format!(
                "{}: vrrp_instance {name} uses interface {x}, not the relay's {}: its adverts will not be relayed; set `interface {}` (the VIP can stay on {x} with `dev {x}` in virtual_ipaddress)",
                path.display(),
                relay.iface,
                relay.iface
            ))),
            None => out.push(Finding::Warning(format!(
                "{}: vrrp_instance {name} names no interface; set `interface {}`",
                path.display(),
                relay.iface
            ))),
        }
        if unicast {
            out.push(Finding::Warning(format!(
                "{}: vrrp_instance {name} has unicast_peer: keepalived then sends unicast itself and the relay carries nothing for it; remove unicast_peer to use the relay",
                path.display()
            )));
        }
        i = j;
    }
    if instances == 0 {
        out.push(Finding::Warning(format!(
            "{}: no vrrp_instance found",
            path.display()
        )));
    }
    for (v, _) in relay.vips {
        if !seen_vrids.contains(v) {
            out.push(Finding::Warning(format!(
                "{}: no vrrp_instance on {} has virtual_router_id {v}, so the [[vip]] for VRID {v} never runs; fix its vrid",
                path.display(),
                relay.iface
            )));
        }
    }
    let carried = VRIDS_PER_FAMILY * relay.families.max(1);
    if relayed > carried {
        out.push(Finding::Warning(format!(
            "{}: {relayed} vrrp_instances on {}, more than the {carried} VRIDs it carries ({VRIDS_PER_FAMILY} per address family); give the others a second relay instance with its own interface (README: \"More than 255 virtual routers\")",
            path.display(),
            relay.iface
        )));
    }
    // A load exactly at the limit passes: the bucket refills as fast.
    if relay.inject_rate_limit > 0 && load > f64::from(relay.inject_rate_limit) + 1e-6 {
        out.push(Finding::Warning(format!(
            "{}: the {relayed} vrrp_instances on {} send {load:.0} adverts/s from the host that masters them all, above node.inject_rate_limit ({}/s): the peers would drop some of them; raise inject_rate_limit above {load:.0} or lengthen advert_int",
            path.display(),
            relay.iface,
            relay.inject_rate_limit
        )));
    }
    out
}

fn heartbeat(path: &Path, text: &str, relay: &Relay) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut media = 0;
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut w = line.split_whitespace();
        let Some(kind @ ("mcast" | "bcast")) = w.next() else {
            continue;
        };
        for dev in w.take(if kind == "mcast" { 1 } else { usize::MAX }) {
            media += 1;
            if dev == relay.iface {
                out.push(Finding::Ok(format!(
                    "{}: heartbeat {kind} on {dev}",
                    path.display()
                )));
            } else {
                out.push(Finding::Warning(format!(
                    "{}: heartbeat {kind} on {dev}, not the relay's {}: that medium is not relayed; use `{kind} {}`",
                    path.display(),
                    relay.iface,
                    relay.iface
                )));
            }
        }
    }
    if media == 0 {
        out.push(Finding::Warning(format!(
            "{}: no mcast or bcast line: heartbeat does not use the relay",
            path.display()
        )));
    }
    out
}

fn corosync(path: &Path, text: &str, relay: &Relay) -> Vec<Finding> {
    let t = tokens(text);
    let mut out = Vec::new();
    let value = |key: &str| -> Vec<String> {
        t.iter()
            .enumerate()
            .filter(|(_, k)| k.as_str() == key)
            .filter_map(|(i, _)| t.get(i + 1).cloned())
            .collect()
    };
    let transport = value("transport:").into_iter().next();
    match transport.as_deref() {
        Some("udp") => out.push(Finding::Ok(format!(
            "{}: corosync transport udp (multicast)",
            path.display()
        ))),
        other => out.push(Finding::Warning(format!(
            "{}: corosync transport {} does not multicast, so the relay carries nothing for it; set `transport: udp` in totem",
            path.display(),
            other.unwrap_or("knet (the default)")
        ))),
    }
    for key in ["bindnetaddr:", "ring0_addr:"] {
        for v in value(key) {
            match v.parse::<Ipv4Addr>() {
                Ok(a) if relay.in_subnet(a) => {}
                Ok(a) => out.push(Finding::Warning(format!(
                    "{}: {key} {a} is outside the relay's subnet {}: corosync will not use {}; use the nodes' overlay addresses",
                    path.display(),
                    relay.subnet(),
                    relay.iface
                ))),
                // Names and IPv6: not checked.
                Err(_) => {}
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    const RELAY: Relay = Relay {
        iface: "mcast0",
        address: Ipv4Addr::new(10, 250, 0, 1),
        prefix: 24,
        inject_rate_limit: 5_100,
        families: 1,
        others: &[],
        vips: &[],
    };

    fn warnings(f: &[Finding]) -> Vec<String> {
        f.iter()
            .filter(|x| matches!(x, Finding::Warning(_)))
            .map(ToString::to_string)
            .collect()
    }

    fn example(path: &str) -> (std::path::PathBuf, String) {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
        let text = std::fs::read_to_string(&p).expect("example file");
        (p, text)
    }

    #[test]
    fn names_from_the_preset_table() {
        assert_eq!(tool_names(), "keepalived, heartbeat or corosync");
        assert_eq!(
            default_file_names(),
            "keepalived.conf, ha.cf, corosync.conf"
        );
        let paths: Vec<(Tool, &str)> = default_configs().map(|c| (c.tool, c.path)).collect();
        assert_eq!(
            paths,
            [
                (Tool::Keepalived, "/etc/keepalived/keepalived.conf"),
                (Tool::Heartbeat, "/etc/ha.d/ha.cf"),
                (Tool::Corosync, "/etc/corosync/corosync.conf"),
            ]
        );
    }

    #[test]
    fn only_the_carried_tools_configurations_by_default() {
        use crate::core::allow::Preset;
        let tools = |presets: &[Preset]| -> Vec<Tool> {
            carried_configs(&AllowList::of_presets(presets))
                .map(|c| c.tool)
                .collect()
        };
        assert_eq!(tools(&[Preset::Vrrp]), [Tool::Keepalived]);
        assert_eq!(
            tools(&[Preset::Corosync, Preset::Heartbeat]),
            [Tool::Heartbeat, Tool::Corosync]
        );
        assert!(tools(&[Preset::Spread]).is_empty());
        // The same traffic as a custom rule counts; other ports do not.
        let mut same = Preset::Vrrp.rule();
        same.label = "rule 1".into();
        let mut other = Preset::Corosync.rule();
        other.ports = vec![(5420, 5420)];
        let custom = AllowList::new(vec![same, other]);
        let custom: Vec<Tool> = carried_configs(&custom).map(|c| c.tool).collect();
        assert_eq!(custom, [Tool::Keepalived]);
    }

    #[test]
    fn the_examples_use_the_relay() {
        for (file, tool) in [
            ("examples/keepalived/keepalived.conf", Tool::Keepalived),
            ("examples/heartbeat/ha.cf", Tool::Heartbeat),
            ("examples/corosync/corosync.conf", Tool::Corosync),
        ] {
            let (p, text) = example(file);
            assert_eq!(detect(&p, &text), Some(tool), "{file}");
            let f = findings(tool, &p, &text, &RELAY);
            assert!(warnings(&f).is_empty(), "{file}: {f:?}");
            assert!(!f.is_empty(), "{file}: no finding at all");
        }
    }

    #[test]
    fn keepalived_on_the_wrong_interface() {
        let text = "vrrp_instance VI_1 {\n  state BACKUP\n  interface eth0 # the LAN\n  track_interface {\n    mcast0\n  }\n  virtual_router_id 51\n  unicast_peer {\n    10.0.0.2\n  }\n}\n";
        let w = warnings(&findings(
            Tool::Keepalived,
            Path::new("k.conf"),
            text,
            &RELAY,
        ));
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("VI_1 uses interface eth0"), "{}", w[0]);
        assert!(w[1].contains("unicast_peer"), "{}", w[1]);
        let none = warnings(&findings(
            Tool::Keepalived,
            Path::new("k.conf"),
            "global_defs {}\n",
            &RELAY,
        ));
        assert!(none[0].contains("no vrrp_instance"));
    }

    /// `n` VRRPv3 instances on `iface` at `advert_int`.
    fn instances(n: u32, iface: &str, advert_int: &str) -> String {
        (1..=n)
            .map(|i| {
                format!(
                    "vrrp_instance V{i} {{\n  interface {iface}\n  version 3\n  virtual_router_id {}\n  advert_int {advert_int}\n}}\n",
                    (i - 1) % 255 + 1
                )
            })
            .collect()
    }

    #[test]
    fn keepalived_adverts_above_the_injection_limit() {
        let check = |text: &str, relay: &Relay| {
            warnings(&findings(
                Tool::Keepalived,
                Path::new("k.conf"),
                text,
                relay,
            ))
        };
        // 255 at 0.05 s: 5,100/s, exactly the default for one family.
        assert!(check(&instances(255, "mcast0", "0.05"), &RELAY).is_empty());
        let w = check(&instances(255, "mcast0", "0.04"), &RELAY);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("send 6375 adverts/s"), "{}", w[0]);
        assert!(w[0].contains("inject_rate_limit (5100/s)"), "{}", w[0]);
        // Those on another interface are not the relay's load (each warns
        // for its interface instead).
        let elsewhere = instances(255, "mcast1", "0.01");
        assert!(
            check(&elsewhere, &RELAY)
                .iter()
                .all(|w| !w.contains("adverts/s"))
        );
        let unlimited = Relay {
            inject_rate_limit: 0,
            ..RELAY
        };
        assert!(check(&instances(255, "mcast0", "0.01"), &unlimited).is_empty());
        // keepalived's default advert_int is 1 s.
        let plain = "vrrp_instance A {\n  interface mcast0\n}\n";
        let tight = Relay {
            inject_rate_limit: 1,
            ..RELAY
        };
        assert!(check(plain, &tight).is_empty());
        assert_eq!(
            check(&format!("{plain}{}", plain.replace(" A ", " B ")), &tight).len(),
            1
        );
        // VRRPv2 (keepalived's default) rounds advert_int to whole seconds.
        let v2 = instances(255, "mcast0", "0.01").replace("  version 3\n", "");
        assert!(check(&v2, &RELAY).is_empty(), "v2 sends 255/s");
        let global = format!("global_defs {{\n  vrrp_version 3\n}}\n{v2}");
        let w = check(&global, &RELAY);
        assert!(
            w.iter().any(|w| w.contains("send 25500 adverts/s")),
            "{w:?}"
        );
        // Out of keepalived's range: taken at its bounds, not as written.
        let tiny = instances(255, "mcast0", "1e-300");
        assert!(check(&tiny, &RELAY)[0].contains("send 25500 adverts/s"));
    }

    #[test]
    fn keepalived_more_instances_than_one_interface_carries() {
        let count = |n: u32, relay: &Relay| {
            warnings(&findings(
                Tool::Keepalived,
                Path::new("k.conf"),
                &instances(n, "mcast0", "1"),
                relay,
            ))
        };
        assert!(count(255, &RELAY).is_empty());
        let w = count(256, &RELAY);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("256 vrrp_instances on mcast0"), "{}", w[0]);
        assert!(w[0].contains("more than the 255 VRIDs"), "{}", w[0]);
        let dual = Relay {
            families: 2,
            ..RELAY
        };
        assert!(count(510, &dual).is_empty());
        assert!(count(511, &dual)[0].contains("more than the 510 VRIDs"));
    }

    /// The instances on another relay instance's interface are that
    /// relay's: not a mistake, and not this relay's load.
    #[test]
    fn keepalived_on_a_sibling_relay_interface() {
        let others = [(
            "mcast1".to_string(),
            PathBuf::from("/etc/mcast-relay/mcast1.toml"),
        )];
        let relay = Relay {
            others: &others,
            ..RELAY
        };
        let text = format!(
            "{}{}{}",
            instances(255, "mcast0", "1"),
            instances(255, "mcast1", "0.01"),
            instances(1, "eth0", "1")
        );
        let f = findings(Tool::Keepalived, Path::new("k.conf"), &text, &relay);
        let w = warnings(&f);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("uses interface eth0"), "{}", w[0]);
        assert!(
            f.iter().any(|x| x
                .to_string()
                .contains("relay configured in /etc/mcast-relay/mcast1.toml")),
            "{f:?}"
        );
        let (p, text) = example("examples/many-vrids/keepalived.conf");
        let f = findings(Tool::Keepalived, &p, &text, &relay);
        assert!(warnings(&f).is_empty(), "{f:?}");
    }

    /// A `[[vip]]` whose settle is under five advert intervals, or whose
    /// VRID no instance on the interface has, is said; the default settle
    /// and a long one are not.
    #[test]
    fn keepalived_and_the_vip_tables() {
        let text = "vrrp_instance A {\n  interface mcast0\n  virtual_router_id 51\n  version 3\n  advert_int 0.5\n}\n";
        let check = |vips: &[(u8, Option<f64>)]| {
            let relay = Relay { vips, ..RELAY };
            warnings(&findings(
                Tool::Keepalived,
                Path::new("k.conf"),
                text,
                &relay,
            ))
        };
        assert!(check(&[(51, None)]).is_empty());
        assert!(
            check(&[(51, Some(2.5))]).is_empty(),
            "exactly five intervals"
        );
        let w = check(&[(51, Some(2.0))]);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains(
                "settle = 2 s, less than five advert intervals of vrrp_instance A (2.50 s)"
            ),
            "{}",
            w[0]
        );
        let w = check(&[(51, None), (52, Some(9.0))]);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("no vrrp_instance on mcast0 has virtual_router_id 52"),
            "{}",
            w[0]
        );
        // VRRPv2 rounds 0.5 s up to 1 s: five intervals are 5 s.
        let v2 = text.replace("  version 3\n", "");
        let relay = Relay {
            vips: &[(51, Some(4.0))],
            ..RELAY
        };
        let w = warnings(&findings(
            Tool::Keepalived,
            Path::new("k.conf"),
            &v2,
            &relay,
        ));
        assert!(w.len() == 1 && w[0].contains("(5.00 s)"), "{w:?}");
    }

    #[test]
    fn heartbeat_media() {
        let text = "mcast eth0 225.0.0.1 694 1 0\nbcast mcast0 eth1\nnode a\n";
        let f = findings(Tool::Heartbeat, Path::new("ha.cf"), text, &RELAY);
        let w = warnings(&f);
        assert_eq!(w.len(), 2, "{f:?}");
        assert!(w[0].contains("mcast on eth0") && w[1].contains("bcast on eth1"));
        let w = warnings(&findings(
            Tool::Heartbeat,
            Path::new("ha.cf"),
            "ucast eth0 10.0.0.2\n",
            &RELAY,
        ));
        assert!(w[0].contains("no mcast or bcast"));
    }

    #[test]
    fn corosync_transport_and_addresses() {
        let text = "totem {\n  version: 2\n  transport: knet\n}\nnodelist {\n  node {\n    ring0_addr: 192.168.1.5\n  }\n  node {\n    ring0_addr: 10.250.0.2\n  }\n}\n";
        let w = warnings(&findings(
            Tool::Corosync,
            Path::new("corosync.conf"),
            text,
            &RELAY,
        ));
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("transport knet"));
        assert!(w[1].contains("192.168.1.5 is outside the relay's subnet 10.250.0.0/24"));
    }
}
