//! The configuration file: schema, defaults, validation, and errors that
//! name the file, line, column and key and say what would be right.
//!
//! Parsing happens in two passes: serde reads the TOML into `Raw*` structs
//! (unknown keys are errors), then `validate` checks meaning (addresses in
//! the overlay subnet, unique peers...) using the spans serde kept.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::core::allow::{AllowList, Destinations, Preset, Rule, parse_protocol, preset_names};
use crate::proto::overlay::{Prefix, broadcast_v4, mask_v4, mask_v6};
use crate::proto::packet::{PROTO_TCP, PROTO_UDP};

pub const DEFAULT_PATH: &str = "/etc/mcast-relay/mcast-relay.toml";
pub const DEFAULT_PORT: u16 = 7112;
pub const DEFAULT_INTERFACE: &str = "mcast0";
pub const DEFAULT_CLOCK_SKEW_SECS: f64 = 10.0;
/// Packets per second a peer may inject: far above any heartbeat load
/// (1,000 VRRP instances at advert_int 1 s are 1,000/s), far below a flood.
pub const DEFAULT_INJECT_RATE_LIMIT: u32 = 5_000;
pub const DEFAULT_RESOLVE_INTERVAL_SECS: f64 = 30.0;
/// How often a relay asks each peer for a sign of life, by default.
pub const DEFAULT_KEEPALIVE_SECS: f64 = 1.0;
/// Where the running relay answers `mcast-relay status`.
pub const DEFAULT_STATUS_SOCKET: &str = "/run/mcast-relay/status.sock";
/// The group that may read the status socket, by default.
pub const DEFAULT_STATUS_GROUP: &str = "adm";
/// Unprivileged account the relay runs as after set-up.
pub const DEFAULT_USER: &str = "nobody";

/// A validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub path: PathBuf,
    pub node: NodeConfig,
    pub interface: InterfaceConfig,
    pub allow: AllowList,
    pub peers: Vec<PeerConfig>,
}

#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub name: String,
    pub listen: SocketAddr,
    /// `None` only with `insecure = true`.
    pub key_file: Option<PathBuf>,
    pub insecure: bool,
    pub max_clock_skew: Duration,
    /// How often endpoints given as DNS names are resolved again (a failed
    /// lookup keeps the last good address).
    pub resolve_interval: Duration,
    /// How often each peer is asked for a sign of life (reachability, RTT).
    pub keepalive: Duration,
    /// Packets per second each peer may have written into the interface; 0: no limit.
    pub inject_rate_limit: u32,
    /// The account the relay switches to after set-up when started as root.
    pub user: String,
    /// The unix socket `mcast-relay status` reads.
    pub status_socket: PathBuf,
    /// The group allowed to read it (besides root).
    pub status_group: String,
    /// Where Prometheus metrics are served over HTTP, if anywhere.
    pub metrics_listen: Option<SocketAddr>,
    /// Take the interface's carrier down while fewer than a majority of
    /// the cluster's relays (this one included) answer keepalives.
    pub quorum: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Tun,
    Tap,
}

impl Mode {
    /// Bytes in front of each IP packet on the interface: a tap's MTU
    /// counts the packet, the frame adds its Ethernet header.
    pub fn link_header(self) -> u32 {
        match self {
            Mode::Tun => 0,
            Mode::Tap => crate::proto::frame::HEADER_LEN as u32,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceConfig {
    pub name: String,
    pub mode: Mode,
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    pub address6: Option<(Ipv6Addr, u8)>,
    pub mtu: Option<u32>,
}

impl InterfaceConfig {
    pub fn broadcast(&self) -> Ipv4Addr {
        broadcast_v4(self.address, self.prefix_len)
    }
}

/// Where a peer's relay listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Addr(SocketAddr),
    /// A DNS name, resolved by the daemon (and again while it fails).
    Name {
        host: String,
        port: u16,
    },
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Addr(a) => write!(f, "{a}"),
            Endpoint::Name { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct PeerConfig {
    pub name: String,
    pub endpoint: Endpoint,
    pub address: Ipv4Addr,
    pub address6: Option<Ipv6Addr>,
}

/// A configuration problem, located in its file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based; 0 when the problem is not at a place in the file.
    pub line: usize,
    pub column: usize,
    /// Dotted key path, e.g. `interface.address`; empty when not known.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

// ---------------------------------------------------------------- raw schema

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    node: Spanned<RawNode>,
    interface: Spanned<RawInterface>,
    allow: Option<Spanned<RawAllow>>,
    #[serde(default)]
    peer: Vec<Spanned<RawPeer>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    name: Option<Spanned<String>>,
    listen: Option<Spanned<String>>,
    key_file: Option<Spanned<PathBuf>>,
    insecure: Option<Spanned<bool>>,
    max_clock_skew: Option<Spanned<f64>>,
    resolve_interval: Option<Spanned<f64>>,
    keepalive: Option<Spanned<f64>>,
    inject_rate_limit: Option<Spanned<i64>>,
    user: Option<Spanned<String>>,
    status_socket: Option<Spanned<String>>,
    status_group: Option<Spanned<String>>,
    metrics_listen: Option<Spanned<String>>,
    quorum: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInterface {
    name: Option<Spanned<String>>,
    mode: Option<Spanned<String>>,
    address: Spanned<String>,
    address6: Option<Spanned<String>>,
    mtu: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAllow {
    #[serde(default)]
    presets: Vec<Spanned<String>>,
    #[serde(default)]
    rule: Vec<Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawScalar {
    Int(i64),
    Text(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    protocol: Spanned<RawScalar>,
    #[serde(default)]
    ports: Vec<Spanned<RawScalar>>,
    destinations: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPeer {
    name: Spanned<String>,
    endpoint: Spanned<String>,
    address: Spanned<String>,
    address6: Option<Spanned<String>>,
}

// ---------------------------------------------------------------- loading

impl Config {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            key: String::new(),
            message: format!("cannot read the configuration file: {e}"),
        })?;
        Config::parse(path, &text)
    }

    /// Validates `text` as if read from `path` (used in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let ctx = Ctx { path, text };
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            ctx.err_guess_key(span, e.message().to_string())
        })?;
        validate(&ctx, raw, &hostname())
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

struct Ctx<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Ctx<'_> {
    fn line_col(&self, offset: usize) -> (usize, usize) {
        // An offset inside a multi-byte character (the parser should never
        // give one) moves back to the character's start instead of panicking.
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = self.text.get(..offset).unwrap_or_default();
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }

    fn err(&self, span: Range<usize>, key: &str, message: impl Into<String>) -> ConfigError {
        let (line, column) = self.line_col(span.start);
        ConfigError {
            file: self.path.to_path_buf(),
            line,
            column,
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// For serde's errors, which carry a span but no key: the key is the
    /// one assigned on that line, inside the nearest table header above.
    fn err_guess_key(&self, span: Range<usize>, message: String) -> ConfigError {
        let (line, _) = self.line_col(span.start);
        let lines: Vec<&str> = self.text.lines().collect();
        let here = lines.get(line.saturating_sub(1)).map_or("", |l| l.trim());
        let table = |l: &str| l.trim_matches(|c| c == '[' || c == ']').trim().to_string();
        let key = if here.starts_with('[') {
            table(here)
        } else {
            let section = lines[..line.saturating_sub(1).min(lines.len())]
                .iter()
                .rev()
                .map(|l| l.trim())
                .find(|l| l.starts_with('['))
                .map(table);
            let name = here.split('=').next().unwrap_or("").trim().to_string();
            match section {
                Some(s) if !name.is_empty() => format!("{s}.{name}"),
                Some(s) => s,
                None => name,
            }
        };
        self.err(span, &key, message)
    }
}

fn validate(ctx: &Ctx, raw: RawConfig, default_name: &str) -> Result<Config, ConfigError> {
    let node_span = raw.node.span();
    let raw_node = raw.node.into_inner();
    let interface = validate_interface(ctx, raw.interface)?;

    let insecure = raw_node.insecure.as_ref().is_some_and(|b| *b.get_ref());
    let key_file = match (&raw_node.key_file, insecure) {
        (Some(k), true) => {
            return Err(ctx.err(
                k.span(),
                "node.key_file",
                "`key_file` and `insecure = true` are both set: remove `insecure` to authenticate (recommended), or remove `key_file`",
            ));
        }
        (Some(k), false) => {
            if k.get_ref().as_os_str().is_empty() {
                return Err(ctx.err(
                    k.span(),
                    "node.key_file",
                    "empty path; give the file written by `mcast-relay keygen -o FILE`",
                ));
            }
            Some(k.get_ref().clone())
        }
        (None, true) => None,
        (None, false) => {
            return Err(ctx.err(
                node_span,
                "node.key_file",
                "missing: authentication needs a cluster key; create one with `mcast-relay keygen -o /etc/mcast-relay/key`, copy it to every node and set `key_file` (or set `insecure = true` for a lab without authentication)",
            ));
        }
    };

    let listen = match &raw_node.listen {
        None => SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)),
        Some(s) => parse_listen(s.get_ref())
            .map_err(|m| ctx.err(s.span(), "node.listen", m.to_string()))?,
    };

    let metrics_listen = match &raw_node.metrics_listen {
        None => None,
        Some(s) => Some(s.get_ref().trim().parse::<SocketAddr>().map_err(|_| {
            ctx.err(
                s.span(),
                "node.metrics_listen",
                "must be an address and port such as \"127.0.0.1:9712\" (leave it out for no metrics)",
            )
        })?),
    };

    let name = match &raw_node.name {
        None => default_name.to_string(),
        Some(s) => {
            let v = s.get_ref().trim();
            if v.is_empty() {
                return Err(ctx.err(
                    s.span(),
                    "node.name",
                    "must not be empty (leave it out to use the hostname)",
                ));
            }
            v.to_string()
        }
    };

    let seconds = |v: &Option<Spanned<f64>>, key: &str, default: f64, max: f64| {
        let Some(s) = v else {
            return Ok(Duration::from_secs_f64(default));
        };
        let x = *s.get_ref();
        if !(x > 0.0 && x <= max) {
            return Err(ctx.err(
                s.span(),
                key,
                format!("must be a number of seconds above 0 and at most {max}"),
            ));
        }
        Ok(Duration::from_secs_f64(x))
    };
    let max_clock_skew = seconds(
        &raw_node.max_clock_skew,
        "node.max_clock_skew",
        DEFAULT_CLOCK_SKEW_SECS,
        3600.0,
    )?;
    let keepalive = seconds(
        &raw_node.keepalive,
        "node.keepalive",
        DEFAULT_KEEPALIVE_SECS,
        60.0,
    )?;
    let resolve_interval = seconds(
        &raw_node.resolve_interval,
        "node.resolve_interval",
        DEFAULT_RESOLVE_INTERVAL_SECS,
        86400.0,
    )?;

    let inject_rate_limit = match &raw_node.inject_rate_limit {
        None => DEFAULT_INJECT_RATE_LIMIT,
        Some(s) => u32::try_from(*s.get_ref())
            .ok()
            .filter(|n| *n <= 1_000_000)
            .ok_or_else(|| {
                ctx.err(
                    s.span(),
                    "node.inject_rate_limit",
                    format!("must be a number of packets per second from 0 (no limit) to 1000000; the default is {DEFAULT_INJECT_RATE_LIMIT}"),
                )
            })?,
    };

    let user = match &raw_node.user {
        None => DEFAULT_USER.to_string(),
        Some(s) if s.get_ref().trim().is_empty() || s.get_ref().contains(char::is_whitespace) => {
            return Err(ctx.err(
                s.span(),
                "node.user",
                format!("must be a user name; the default is \"{DEFAULT_USER}\""),
            ));
        }
        Some(s) => s.get_ref().clone(),
    };

    let allow = validate_allow(ctx, raw.allow)?;
    let peers = validate_peers(ctx, raw.peer, &interface, &name, listen)?;

    Ok(Config {
        path: ctx.path.to_path_buf(),
        node: NodeConfig {
            name,
            listen,
            key_file,
            insecure,
            max_clock_skew,
            resolve_interval,
            keepalive,
            inject_rate_limit,
            user,
            status_socket: raw_node
                .status_socket
                .as_ref()
                .map_or(PathBuf::from(DEFAULT_STATUS_SOCKET), |s| {
                    PathBuf::from(s.get_ref())
                }),
            status_group: raw_node
                .status_group
                .as_ref()
                .map_or(DEFAULT_STATUS_GROUP.to_string(), |s| s.get_ref().clone()),
            metrics_listen,
            quorum: raw_node.quorum.unwrap_or(false),
        },
        interface,
        allow,
        peers,
    })
}

/// A `node.listen` value that is not an address (with or without port).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidListen(pub String);

impl fmt::Display for InvalidListen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not an address to listen on; expected \"0.0.0.0:{DEFAULT_PORT}\", \"[::]:{DEFAULT_PORT}\" (IPv6 and IPv4) or a local address",
            self.0
        )
    }
}

impl std::error::Error for InvalidListen {}

fn parse_listen(s: &str) -> Result<SocketAddr, InvalidListen> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    let bare = s.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, DEFAULT_PORT))
        .map_err(|_| InvalidListen(s.to_string()))
}

fn validate_interface(
    ctx: &Ctx,
    raw: Spanned<RawInterface>,
) -> Result<InterfaceConfig, ConfigError> {
    let raw = raw.into_inner();
    let name = match &raw.name {
        None => DEFAULT_INTERFACE.to_string(),
        Some(s) => {
            let n = s.get_ref();
            let ok = !n.is_empty()
                && n.len() <= 15
                && n != "."
                && n != ".."
                && n.chars()
                    .all(|c| c.is_ascii_graphic() && c != '/' && c != ':');
            if !ok {
                return Err(ctx.err(s.span(), "interface.name", format!("`{n}` is not a valid interface name: 1 to 15 characters, no spaces, `/` or `:`")));
            }
            n.clone()
        }
    };
    let mode = match &raw.mode {
        None => Mode::Tun,
        Some(s) => match s.get_ref().as_str() {
            "tun" => Mode::Tun,
            "tap" => Mode::Tap,
            other => {
                return Err(ctx.err(
                    s.span(),
                    "interface.mode",
                    format!("unknown mode `{other}`; expected \"tun\" or \"tap\""),
                ));
            }
        },
    };

    let a = &raw.address;
    let p: Prefix = a.get_ref().parse().map_err(|m| {
        ctx.err(
            a.span(),
            "interface.address",
            format!(
                "{m}; expected this node's overlay address with its prefix, e.g. \"10.250.0.1/24\""
            ),
        )
    })?;
    let IpAddr::V4(address) = p.addr else {
        return Err(ctx.err(a.span(), "interface.address", "must be an IPv4 address with prefix, e.g. \"10.250.0.1/24\"; put an IPv6 overlay address in `address6`"));
    };
    if !a.get_ref().contains('/') {
        return Err(ctx.err(
            a.span(),
            "interface.address",
            format!("needs a prefix length shared by all nodes, e.g. \"{address}/24\""),
        ));
    }
    if !(8..=30).contains(&p.len) {
        return Err(ctx.err(a.span(), "interface.address", "prefix length must be between 8 and 30 so the subnet has a broadcast address and room for the nodes"));
    }
    let host = u32::from(address) & !mask_v4(p.len);
    if host == 0 || host == !mask_v4(p.len) {
        return Err(ctx.err(
            a.span(),
            "interface.address",
            format!(
                "{address} is the network or broadcast address of its subnet; pick a host address"
            ),
        ));
    }

    let address6 = match &raw.address6 {
        None => None,
        Some(s) => {
            let p: Prefix = s.get_ref().parse().map_err(|m| {
                ctx.err(
                    s.span(),
                    "interface.address6",
                    format!("{m}; expected e.g. \"fd00:250::1/64\""),
                )
            })?;
            let IpAddr::V6(a6) = p.addr else {
                return Err(ctx.err(
                    s.span(),
                    "interface.address6",
                    "must be an IPv6 address with prefix, e.g. \"fd00:250::1/64\"",
                ));
            };
            if !s.get_ref().contains('/') || p.len == 0 || p.len > 127 {
                return Err(ctx.err(s.span(), "interface.address6", "needs a prefix length from 1 to 127 shared by all nodes, e.g. \"fd00:250::1/64\""));
            }
            if a6.is_multicast()
                || a6.is_unicast_link_local()
                || a6.is_loopback()
                || a6.is_unspecified()
            {
                return Err(ctx.err(s.span(), "interface.address6", "must be a unicast address outside fe80::/10 (the relay derives the link-local address itself), e.g. \"fd00:250::1/64\""));
            }
            Some((a6, p.len))
        }
    };

    let mtu = match &raw.mtu {
        None => None,
        Some(s) => {
            let min = if address6.is_some() { 1280 } else { 576 };
            let v = *s.get_ref();
            if !(min..=65_535).contains(&v) {
                return Err(ctx.err(s.span(), "interface.mtu", format!("must be between {min} and 65535 (IPv6 needs at least 1280); leave it out to use the underlay MTU minus the relay's overhead")));
            }
            Some(v as u32)
        }
    };
    Ok(InterfaceConfig {
        name,
        mode,
        address,
        prefix_len: p.len,
        address6,
        mtu,
    })
}

fn validate_allow(ctx: &Ctx, raw: Option<Spanned<RawAllow>>) -> Result<AllowList, ConfigError> {
    let nothing = format!(
        "[allow] permits nothing, so nothing would be relayed; add e.g. `presets = [\"vrrp\"]` (presets: {}) or an [[allow.rule]]",
        preset_names()
    );
    let Some(raw) = raw else {
        return Err(ctx.err(0..0, "allow", nothing));
    };
    let span = raw.span();
    let raw = raw.into_inner();
    let mut rules = Vec::new();
    for p in &raw.presets {
        let preset = Preset::from_name(p.get_ref()).ok_or_else(|| {
            ctx.err(
                p.span(),
                "allow.presets",
                format!(
                    "unknown preset `{}`; expected one of {}",
                    p.get_ref(),
                    preset_names()
                ),
            )
        })?;
        if !rules.iter().any(|r: &Rule| r.label == preset.name()) {
            rules.push(preset.rule());
        }
    }
    for (n, r) in raw.rule.into_iter().enumerate() {
        rules.push(validate_rule(ctx, r.into_inner(), n + 1)?);
    }
    if rules.is_empty() {
        return Err(ctx.err(span, "allow", nothing));
    }
    Ok(AllowList::new(rules))
}

fn validate_rule(ctx: &Ctx, raw: RawRule, n: usize) -> Result<Rule, ConfigError> {
    let ps = raw.protocol.span();
    let proto = match raw.protocol.into_inner() {
        RawScalar::Text(s) => parse_protocol(&s),
        RawScalar::Int(i) => {
            u8::try_from(i).map_err(|_| format!("protocol number {i} is out of range 0-255"))
        }
    }
    .map_err(|m| ctx.err(ps.clone(), "allow.rule.protocol", m))?;
    let mut ports = Vec::new();
    for p in &raw.ports {
        if proto != PROTO_UDP && proto != PROTO_TCP {
            return Err(ctx.err(
                p.span(),
                "allow.rule.ports",
                "ports only apply to protocol \"udp\" or \"tcp\"",
            ));
        }
        let bad = |v: &str| {
            ctx.err(
                p.span(),
                "allow.rule.ports",
                format!("`{v}` is not a port; expected a number 1-65535 or a range \"5404-5405\""),
            )
        };
        let port = |s: &str| s.trim().parse::<u16>().ok().filter(|p| *p > 0);
        let range = match p.get_ref() {
            RawScalar::Int(i) => {
                let v = u16::try_from(*i)
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| bad(&i.to_string()))?;
                (v, v)
            }
            RawScalar::Text(s) => match s.split_once('-') {
                Some((lo, hi)) => match (port(lo), port(hi)) {
                    (Some(lo), Some(hi)) if lo <= hi => (lo, hi),
                    _ => return Err(bad(s)),
                },
                None => {
                    let v = port(s).ok_or_else(|| bad(s))?;
                    (v, v)
                }
            },
        };
        ports.push(range);
    }
    let dests = match &raw.destinations {
        None => Destinations::all(),
        Some(list) => {
            let mut d = Destinations::default();
            for e in list {
                d.add(e.get_ref())
                    .map_err(|m| ctx.err(e.span(), "allow.rule.destinations", m))?;
            }
            if list.is_empty() {
                return Err(ctx.err(
                    ps,
                    "allow.rule.destinations",
                    "is empty, so the rule allows nothing; leave it out to allow every destination",
                ));
            }
            d
        }
    };
    Ok(Rule {
        label: format!("rule {n}"),
        proto,
        ports,
        dests,
    })
}

fn validate_peers(
    ctx: &Ctx,
    raw: Vec<Spanned<RawPeer>>,
    iface: &InterfaceConfig,
    node_name: &str,
    listen: SocketAddr,
) -> Result<Vec<PeerConfig>, ConfigError> {
    if raw.is_empty() {
        return Err(ctx.err(ctx.text.len()..ctx.text.len(), "peer", "no [[peer]] configured; add one [[peer]] table (name, endpoint, address) for every other node of the cluster"));
    }
    let mut peers: Vec<PeerConfig> = Vec::new();
    let subnet = Prefix {
        addr: IpAddr::V4(iface.address),
        len: iface.prefix_len,
    };
    for rp in raw {
        let rp = rp.into_inner();
        let name = rp.name.get_ref().trim().to_string();
        if name.is_empty() {
            return Err(ctx.err(rp.name.span(), "peer.name", "must not be empty"));
        }
        if name == node_name || peers.iter().any(|p| p.name == name) {
            return Err(ctx.err(
                rp.name.span(),
                "peer.name",
                format!("`{name}` is used twice (node and peer names must be unique)"),
            ));
        }
        let endpoint = parse_endpoint(rp.endpoint.get_ref())
            .map_err(|m| ctx.err(rp.endpoint.span(), "peer.endpoint", m.to_string()))?;
        if let Endpoint::Addr(a) = &endpoint {
            if a.is_ipv6() && listen.is_ipv4() {
                return Err(ctx.err(rp.endpoint.span(), "peer.endpoint", format!("peer `{name}` has an IPv6 endpoint but node.listen is IPv4; set `listen = \"[::]:{}\"`", listen.port())));
            }
            if a.is_ipv4() && listen.is_ipv6() && !listen.ip().is_unspecified() {
                return Err(ctx.err(rp.endpoint.span(), "peer.endpoint", format!("peer `{name}` has an IPv4 endpoint but node.listen is a specific IPv6 address; use `listen = \"[::]:{}\"` or an IPv4 listen address", listen.port())));
            }
        }

        let s = &rp.address;
        let address: Ipv4Addr = s.get_ref().trim().parse().map_err(|_| {
            ctx.err(s.span(), "peer.address", format!("`{}` is not an IPv4 address; expected the peer's overlay address without prefix, e.g. \"10.250.0.2\"", s.get_ref()))
        })?;
        let host = u32::from(address) & !mask_v4(iface.prefix_len);
        if !subnet.contains(IpAddr::V4(address)) || host == 0 || address == iface.broadcast() {
            return Err(ctx.err(s.span(), "peer.address", format!("{address} is not a host address in this node's overlay subnet {}/{}; all nodes share one subnet", Ipv4Addr::from(u32::from(iface.address) & mask_v4(iface.prefix_len)), iface.prefix_len)));
        }
        if address == iface.address || peers.iter().any(|p| p.address == address) {
            return Err(ctx.err(s.span(), "peer.address", format!("{address} is already used by this node or another peer; every node needs its own overlay address")));
        }

        let address6 = match &rp.address6 {
            None => None,
            Some(s) => {
                let a: Ipv6Addr = s.get_ref().trim().parse().map_err(|_| {
                    ctx.err(s.span(), "peer.address6", format!("`{}` is not an IPv6 address; expected the peer's overlay IPv6 address without prefix, e.g. \"fd00:250::2\"", s.get_ref()))
                })?;
                let Some((own, len)) = iface.address6 else {
                    return Err(ctx.err(
                        s.span(),
                        "peer.address6",
                        "set [interface] address6 on this node too, or remove the peer's address6",
                    ));
                };
                let mask = mask_v6(len);
                if u128::from(a) & mask != u128::from(own) & mask {
                    return Err(ctx.err(
                        s.span(),
                        "peer.address6",
                        format!("{a} is not in this node's overlay prefix {own}/{len}"),
                    ));
                }
                if a == own || peers.iter().any(|p| p.address6 == Some(a)) {
                    return Err(ctx.err(
                        s.span(),
                        "peer.address6",
                        format!("{a} is already used by this node or another peer"),
                    ));
                }
                Some(a)
            }
        };
        peers.push(PeerConfig {
            name,
            endpoint,
            address,
            address6,
        });
    }
    Ok(peers)
}

/// A peer endpoint that is neither an address nor a host name, with or
/// without port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidEndpoint(pub String);

impl fmt::Display for InvalidEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not host:port; expected e.g. \"203.0.113.12:{DEFAULT_PORT}\", \"[2001:db8::2]:{DEFAULT_PORT}\" or \"node2.example.net:{DEFAULT_PORT}\"",
            self.0
        )
    }
}

impl std::error::Error for InvalidEndpoint {}

/// `host:port`, `[v6]:port`, or either without the port (default 7112).
pub fn parse_endpoint(s: &str) -> Result<Endpoint, InvalidEndpoint> {
    let s = s.trim();
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(Endpoint::Addr(a));
    }
    let bare = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(Endpoint::Addr(SocketAddr::new(ip, DEFAULT_PORT)));
    }
    let invalid = || InvalidEndpoint(s.to_string());
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(invalid)?,
        ),
        None => (s, DEFAULT_PORT),
    };
    let valid_host = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    if !valid_host {
        return Err(invalid());
    }
    Ok(Endpoint::Name {
        host: host.to_string(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[node]
name = "h1"
listen = "0.0.0.0:7112"
key_file = "/etc/mcast-relay/key"

[interface]
name = "mcast0"
mode = "tun"
address = "10.250.0.1/24"
address6 = "fd00:250::1/64"

[allow]
presets = ["vrrp", "heartbeat"]

[[allow.rule]]
protocol = "udp"
ports = [9000, "9100-9101"]
destinations = ["225.0.0.1", "broadcast"]

[[peer]]
name = "h2"
endpoint = "192.0.2.2:7112"
address = "10.250.0.2"
address6 = "fd00:250::2"

[[peer]]
name = "h3"
endpoint = "node3.example.net"
address = "10.250.0.3"
"#;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/etc/mcast-relay/test.toml"), text)
    }

    fn err(text: &str) -> ConfigError {
        match parse(text) {
            Ok(_) => panic!("config was accepted:\n{text}"),
            Err(e) => e,
        }
    }

    fn with(from: &str, to: &str) -> String {
        assert!(
            GOOD.contains(from),
            "test edits text that is not there: {from}"
        );
        GOOD.replacen(from, to, 1)
    }

    #[test]
    fn good_config() {
        let c = parse(GOOD).expect("valid");
        assert_eq!(c.node.name, "h1");
        assert_eq!(c.node.listen, "0.0.0.0:7112".parse().expect("addr"));
        assert_eq!(
            c.node.key_file.as_deref(),
            Some(Path::new("/etc/mcast-relay/key"))
        );
        assert!(!c.node.insecure);
        assert_eq!(c.node.max_clock_skew, Duration::from_secs(10));
        assert_eq!(c.node.inject_rate_limit, DEFAULT_INJECT_RATE_LIMIT);
        assert_eq!(c.interface.prefix_len, 24);
        assert_eq!(c.interface.broadcast(), Ipv4Addr::new(10, 250, 0, 255));
        assert_eq!(
            c.interface.address6,
            Some(("fd00:250::1".parse().expect("ip"), 64))
        );
        assert_eq!(c.allow.rules().len(), 3);
        assert_eq!(c.allow.rules()[2].ports, vec![(9000, 9000), (9100, 9101)]);
        assert_eq!(c.peers.len(), 2);
        assert_eq!(
            c.peers[1].endpoint,
            Endpoint::Name {
                host: "node3.example.net".into(),
                port: 7112
            }
        );
    }

    #[test]
    fn unknown_key_names_line_column_and_key() {
        let e = err(&with("listen = ", "lisen = "));
        assert_eq!((e.line, e.column), (4, 1));
        assert_eq!(e.key, "node.lisen");
        assert!(e.message.contains("unknown field `lisen`"), "{}", e.message);
        assert!(
            e.message.contains("`listen`"),
            "suggests the right key: {}",
            e.message
        );
        let shown = e.to_string();
        assert!(
            shown.starts_with("/etc/mcast-relay/test.toml:4:1: node.lisen: "),
            "{shown}"
        );
    }

    #[test]
    fn wrong_type_names_key() {
        let e = err(&with("mode = \"tun\"", "mode = \"tun\"\nmtu = \"big\""));
        assert_eq!(e.key, "interface.mtu");
        assert_eq!(e.line, 10);
    }

    #[test]
    fn semantic_errors_point_at_the_value() {
        let e = err(&with(
            "address = \"10.250.0.3\"",
            "address = \"10.251.0.3\"",
        ));
        assert_eq!(e.key, "peer.address");
        assert!(e.message.contains("10.250.0.0/24"), "{}", e.message);
        let line = GOOD
            .lines()
            .position(|l| l.contains("10.250.0.3"))
            .expect("line")
            + 1;
        assert_eq!(e.line, line);
        assert_eq!(e.column, 11);
    }

    #[test]
    fn rejects_bad_values() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "address = \"10.250.0.1/24\"",
                "address = \"10.250.0.1\"",
                "interface.address",
            ),
            (
                "address = \"10.250.0.1/24\"",
                "address = \"10.250.0.0/24\"",
                "interface.address",
            ),
            (
                "address = \"10.250.0.1/24\"",
                "address = \"fd00::1/64\"",
                "interface.address",
            ),
            (
                "address6 = \"fd00:250::1/64\"",
                "address6 = \"fe80::1/64\"",
                "interface.address6",
            ),
            ("mode = \"tun\"", "mode = \"tunnel\"", "interface.mode"),
            (
                "name = \"mcast0\"",
                "name = \"a-very-long-interface\"",
                "interface.name",
            ),
            (
                "presets = [\"vrrp\", \"heartbeat\"]",
                "presets = [\"vrrp\", \"hearbeat\"]",
                "allow.presets",
            ),
            (
                "protocol = \"udp\"",
                "protocol = \"gre\"",
                "allow.rule.protocol",
            ),
            (
                "ports = [9000, \"9100-9101\"]",
                "ports = [0]",
                "allow.rule.ports",
            ),
            (
                "ports = [9000, \"9100-9101\"]",
                "ports = [\"9-2\"]",
                "allow.rule.ports",
            ),
            (
                "destinations = [\"225.0.0.1\", \"broadcast\"]",
                "destinations = [\"10.0.0.1\"]",
                "allow.rule.destinations",
            ),
            ("name = \"h2\"", "name = \"h1\"", "peer.name"),
            ("name = \"h3\"", "name = \"h2\"", "peer.name"),
            (
                "endpoint = \"192.0.2.2:7112\"",
                "endpoint = \"2001:db8::2:7112\"",
                "peer.endpoint",
            ),
            (
                "endpoint = \"192.0.2.2:7112\"",
                "endpoint = \"[2001:db8::2]:7112\"",
                "peer.endpoint",
            ),
            (
                "endpoint = \"192.0.2.2:7112\"",
                "endpoint = \"bad host:1\"",
                "peer.endpoint",
            ),
            (
                "address = \"10.250.0.3\"",
                "address = \"10.250.0.2\"",
                "peer.address",
            ),
            (
                "address = \"10.250.0.3\"",
                "address = \"10.250.0.255\"",
                "peer.address",
            ),
            (
                "address6 = \"fd00:250::2\"",
                "address6 = \"fd00:251::2\"",
                "peer.address6",
            ),
            (
                "listen = \"0.0.0.0:7112\"",
                "listen = \"everywhere\"",
                "node.listen",
            ),
            (
                "listen = \"0.0.0.0:7112\"",
                "listen = \"0.0.0.0:7112\"\ninject_rate_limit = -5",
                "node.inject_rate_limit",
            ),
            (
                "key_file = \"/etc/mcast-relay/key\"",
                "key_file = \"/k\"\ninsecure = true",
                "node.key_file",
            ),
            ("key_file = \"/etc/mcast-relay/key\"", "", "node.key_file"),
            (
                "listen = \"0.0.0.0:7112\"",
                "max_clock_skew = -1",
                "node.max_clock_skew",
            ),
        ];
        for (from, to, key) in cases {
            let e = err(&with(from, to));
            assert_eq!(&e.key, key, "for `{to}`: {e}");
            assert!(e.line > 0, "no line for `{to}`: {e}");
            assert!(e.message.len() > 20, "terse message for `{to}`: {e}");
        }
    }

    #[test]
    fn missing_sections_and_empty_allow() {
        // The custom rule alone still permits something.
        let c = parse(&with(
            "[allow]\npresets = [\"vrrp\", \"heartbeat\"]",
            "[allow]\npresets = []",
        ))
        .expect("a custom rule is enough");
        assert_eq!(c.allow.rules().len(), 1);
        let no_rules = GOOD
            .split("[[allow.rule]]")
            .next()
            .expect("head")
            .to_string();
        let peers = GOOD
            .split("[[peer]]")
            .skip(1)
            .map(|p| format!("[[peer]]{p}"))
            .collect::<String>();
        let empty_allow =
            no_rules.replace("presets = [\"vrrp\", \"heartbeat\"]", "presets = []") + &peers;
        let e = err(&empty_allow);
        assert_eq!(e.key, "allow");
        assert!(e.message.contains("presets"), "{e}");
        let no_peers = GOOD.split("[[peer]]").next().expect("head");
        assert_eq!(err(no_peers).key, "peer");
        let e = err("[node]\nkey_file = \"/k\"\n");
        assert!(e.message.contains("interface"), "{e}");
    }

    #[test]
    fn insecure_needs_no_key_and_defaults_apply() {
        let text = r#"
[node]
insecure = true
[interface]
address = "10.250.0.1/24"
[allow]
presets = ["corosync"]
[[peer]]
name = "b"
endpoint = "[2001:db8::2]"
address = "10.250.0.2"
"#;
        // An IPv6 endpoint needs an IPv6 listen socket...
        assert_eq!(err(text).key, "peer.endpoint");
        let c = parse(&text.replace("insecure = true", "insecure = true\nlisten = \"[::]:7112\""))
            .expect("valid");
        assert!(c.node.insecure);
        assert_eq!(c.node.key_file, None);
        assert_eq!(c.interface.name, "mcast0");
        assert_eq!(c.interface.mode, Mode::Tun);
        assert_eq!(
            c.peers[0].endpoint,
            Endpoint::Addr("[2001:db8::2]:7112".parse().expect("addr"))
        );
        assert!(!c.node.name.is_empty(), "defaults to the hostname");
    }

    #[test]
    fn endpoints() {
        assert_eq!(
            parse_endpoint("1.2.3.4"),
            Ok(Endpoint::Addr("1.2.3.4:7112".parse().expect("a")))
        );
        assert_eq!(
            parse_endpoint("[::1]:9"),
            Ok(Endpoint::Addr("[::1]:9".parse().expect("a")))
        );
        assert_eq!(
            parse_endpoint("h-2.lan:99"),
            Ok(Endpoint::Name {
                host: "h-2.lan".into(),
                port: 99
            })
        );
        assert!(parse_endpoint("host:0").is_err());
        assert!(parse_endpoint("-bad").is_err());
        assert!(parse_endpoint("").is_err());
        assert_eq!(
            parse_endpoint(" host:0 "),
            Err(InvalidEndpoint("host:0".into()))
        );
        assert_eq!(parse_listen("x"), Err(InvalidListen("x".into())));
    }

    #[test]
    fn positions_inside_a_character_do_not_panic() {
        let cx = Ctx {
            path: Path::new("x.toml"),
            text: "a = \"é\"\nb",
        };
        // Byte 6 is inside the two-byte é.
        assert_eq!(cx.line_col(6), (1, 6));
        assert_eq!(cx.line_col(100), (2, 2));
    }

    /// Every relay configuration shipped in examples/ must stay valid.
    #[test]
    fn every_example_parses() {
        fn tomls(dir: &Path, out: &mut Vec<PathBuf>) {
            let entries = std::fs::read_dir(dir).expect("examples/ is readable");
            for e in entries {
                let p = e.expect("dir entry").path();
                if p.is_dir() {
                    tomls(&p, out);
                } else if p.extension().is_some_and(|x| x == "toml") {
                    out.push(p);
                }
            }
        }
        let mut files = Vec::new();
        tomls(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples"),
            &mut files,
        );
        files.sort();
        for f in &files {
            if let Err(e) = Config::load(f) {
                panic!("example does not parse: {e}");
            }
        }
        let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        // mcast-relay.toml and one per set-up: keepalived, keepalived with
        // HAProxy, heartbeat, heartbeat with haresources, corosync,
        // Pacemaker, spread, ucarp (tap mode).
        assert_eq!(files.len(), 9, "examples found: {names:?}");
        let ucarp = files
            .iter()
            .find(|f| f.ends_with("ucarp/mcast-relay.toml"))
            .and_then(|f| Config::load(f).ok())
            .expect("examples/ucarp/mcast-relay.toml");
        assert_eq!(ucarp.interface.mode, Mode::Tap);
    }

    #[test]
    fn syntax_error_has_a_place() {
        let e = err("[node\n");
        assert_eq!(e.line, 1);
        assert!(e.to_string().contains("test.toml:1:"), "{e}");
    }
}
