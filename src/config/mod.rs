//! The configuration file: schema, defaults, validation, and errors that
//! name the file, line, column and key and say what would be right.
//!
//! Parsing happens in two passes: serde reads the TOML into `Raw*` structs
//! (unknown keys are errors), then `validate` checks meaning (addresses in
//! the overlay subnet, unique peers...) using the spans serde kept.
//!
//! This file holds what callers use: the validated types, their defaults
//! and `Config::load`. The parts, one job each:
//! * `raw`: the serde schema as read;
//! * `validate`: the meaning checks, one file per table;
//! * `endpoint`: the `listen` and `endpoint` address forms;
//! * `error`: [`ConfigError`] and the span-to-position logic.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::core::allow::AllowList;
use crate::proto::overlay::broadcast_v4;

mod endpoint;
mod error;
#[cfg(test)]
mod fixture;
mod raw;
mod validate;

pub use endpoint::{InvalidEndpoint, InvalidListen};
pub use error::ConfigError;

use error::Ctx;
use raw::RawConfig;

pub(crate) const DEFAULT_PATH: &str = "/etc/mcast-relay/mcast-relay.toml";
/// This host's private key, unless `node.key_file` or `-k` says otherwise.
pub(crate) const DEFAULT_KEY_FILE: &str = "/etc/mcast-relay/node.key";
pub(crate) const DEFAULT_PORT: u16 = 7112;
pub(crate) const DEFAULT_INTERFACE: &str = "mcast0";
pub(crate) const DEFAULT_CLOCK_SKEW_SECS: f64 = 10.0;
/// Packets per second a peer may inject: far above any heartbeat load
/// (1,000 VRRP instances at advert_int 1 s are 1,000/s), far below a flood.
pub(crate) const DEFAULT_INJECT_RATE_LIMIT: u32 = 5_000;
pub(crate) const DEFAULT_RESOLVE_INTERVAL_SECS: f64 = 30.0;
/// How often a relay asks each peer for a sign of life, by default.
pub(crate) const DEFAULT_KEEPALIVE_SECS: f64 = 1.0;
/// Where the running relay answers `mcast-relay status`.
pub(crate) const DEFAULT_STATUS_SOCKET: &str = "/run/mcast-relay/status.sock";
/// The group that may read the status socket, by default.
pub(crate) const DEFAULT_STATUS_GROUP: &str = "adm";
/// Unprivileged account the relay runs as after set-up.
pub(crate) const DEFAULT_USER: &str = "nobody";

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
    pub(crate) fn link_header(self) -> u32 {
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
        validate::validate(&ctx, raw, &hostname())
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use fixture::{GOOD, parse};

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
}
