//! The configuration file: schema, defaults, validation, and errors that
//! name the file, line, column and key and say what would be right.
//!
//! One cluster file, the same bytes on every host: `[[member]]` lists every
//! relay, this host included, and the host finds itself among them by its
//! private key (or, in insecure mode, by name or address). The validated
//! [`Config`] is this host's view: its own member as `node`/`interface`,
//! every other member as a peer.
//!
//! Parsing happens in two passes: serde reads the TOML into `Raw*` structs
//! (unknown keys are errors), then `validate` checks meaning (addresses in
//! the overlay subnet, unique members...) using the spans serde kept.
//!
//! This file holds what callers use: the validated types, their defaults
//! and `Config::load`. The parts, one job each:
//! * `raw`: the serde schema as read;
//! * `validate`: the meaning checks, one file per table, and which member
//!   this host is;
//! * `endpoint`: the `listen` and `endpoint` address forms;
//! * `error`: [`ConfigError`], [`LoadError`] and the span-to-position logic.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::core::allow::AllowList;
use crate::core::vrrp_watch::Family;
use crate::io::{host as hostio, keyfile};
use crate::proto::keys::{PrivateKey, PublicKey};
use crate::proto::overlay::broadcast_v4;

mod endpoint;
mod error;
#[cfg(test)]
mod fixture;
mod raw;
mod validate;

pub use endpoint::{InvalidEndpoint, InvalidListen};
pub use error::{ConfigError, LoadError};

use error::Ctx;
use raw::RawConfig;
use validate::{Credential, HostFacts};

pub(crate) const DEFAULT_PATH: &str = "/etc/mcast-relay/mcast-relay.toml";
/// This host's private key, unless `node.key_file` or `-k` says otherwise.
pub(crate) const DEFAULT_KEY_FILE: &str = "/etc/mcast-relay/node.key";
pub(crate) const DEFAULT_PORT: u16 = 7112;
pub(crate) const DEFAULT_INTERFACE: &str = "mcast0";
pub(crate) const DEFAULT_CLOCK_SKEW_SECS: f64 = 10.0;
/// One interface carries at most this many virtual routers per address
/// family (a VRID is 1-255), so one peer can master no more through it.
pub(crate) const VRIDS_PER_FAMILY: u32 = 255;
/// Adverts per second per virtual router the default leaves room for:
/// advert_int 0.05 s, twice as fast as the fastest commonly configured.
pub(crate) const ADVERTS_PER_ROUTER: u32 = 20;

/// The default `node.inject_rate_limit` for an interface carrying
/// `families` address families (1 or 2): every virtual router the
/// interface can carry, all mastered by one peer at advert_int 0.05 s, is
/// never dropped, and the other heartbeat tools send far less. Still a
/// bound: a member that floods gets this much, not what it sends.
pub(crate) fn default_inject_rate_limit(families: u32) -> u32 {
    VRIDS_PER_FAMILY * families.max(1) * ADVERTS_PER_ROUTER
}
pub(crate) const DEFAULT_RESOLVE_INTERVAL_SECS: f64 = 30.0;
/// How often a relay asks each peer for a sign of life, by default.
pub(crate) const DEFAULT_KEEPALIVE_SECS: f64 = 1.0;
/// Where the running relay answers `mcast-relay status`.
pub(crate) const DEFAULT_STATUS_SOCKET: &str = "/run/mcast-relay/status.sock";
/// The group that may read the status socket, by default.
pub(crate) const DEFAULT_STATUS_GROUP: &str = "adm";
/// Unprivileged account the relay runs as after set-up.
pub(crate) const DEFAULT_USER: &str = "nobody";
/// Copies of each data packet sent to each peer: for heartbeat-sized
/// packets a second copy costs almost nothing and survives the loss of one.
pub(crate) const DEFAULT_REDUNDANCY: u8 = 2;
pub(crate) const MAX_REDUNDANCY: u8 = 4;
/// Seconds between the copies after the first: a few milliseconds, so one
/// short burst of loss does not take every copy.
pub(crate) const DEFAULT_REDUNDANCY_SPACING_SECS: f64 = 0.005;
pub(crate) const MAX_REDUNDANCY_SPACING_SECS: f64 = 0.1;
/// Paths one member may list in `endpoints`, as many as corosync's knet
/// links: more would only multiply the keepalives.
pub(crate) const MAX_ENDPOINTS: usize = 8;

/// A validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub path: PathBuf,
    /// The key file given on the command line (`-k`) in place of
    /// `node.key_file`; a reload reads the same one.
    pub key_override: Option<PathBuf>,
    /// This host: its own member's name, the key it was found by.
    pub node: NodeConfig,
    pub interface: InterfaceConfig,
    pub allow: AllowList,
    pub peers: Vec<PeerConfig>,
    /// `[[vip]]`: what to run when this node becomes a virtual router's
    /// only master (cloud address moves), in the file's order.
    pub vips: Vec<VipConfig>,
}

/// One `[[vip]]` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VipConfig {
    pub vrid: u8,
    pub family: Family,
    /// The virtual address, handed to the hook (`MCAST_RELAY_VIP`).
    pub address: Option<IpAddr>,
    /// The command and its arguments, run without a shell; the first is
    /// an absolute path.
    pub on_master: Vec<String>,
    /// `None`: six advert intervals, at least a second (the core's).
    pub settle: Option<Duration>,
    pub timeout: Duration,
}

/// How long a hook may run when `timeout` is left out.
pub(crate) const DEFAULT_HOOK_TIMEOUT_SECS: f64 = 30.0;

#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The name of this host's `[[member]]`.
    pub name: String,
    /// `node.listen`, by default the wildcard address with the port of this
    /// host's member endpoint.
    pub listen: SocketAddr,
    /// Where this host's private key was read: `-k`, `node.key_file` or
    /// the default. `None` only with `insecure = true`.
    pub key_file: Option<PathBuf>,
    /// This host's private key; `None` only with `insecure = true`.
    pub key: Option<PrivateKey>,
    /// The `public_key` of this host's member: its private key's public key
    /// (in insecure mode, as listed, if it is).
    pub public_key: Option<PublicKey>,
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
    /// `node.redundancy`: how many times each data packet goes to each
    /// peer (1 to 4).
    pub redundancy: u8,
    /// `node.redundancy_spacing`, in milliseconds: the gap between the
    /// copies after the first.
    pub redundancy_spacing_ms: u64,
    /// `node.path_mode`: which of a peer's paths carry the copies.
    pub path_mode: PathMode,
    /// `node.realtime_priority`: the SCHED_RR priority (1 to 99) the relay
    /// runs at; `None`: the normal scheduler.
    pub realtime_priority: Option<u8>,
    /// `node.lock_memory`: lock the relay's memory (mlockall) so it is
    /// never swapped out.
    pub lock_memory: bool,
}

/// Which of a peer's paths (`endpoints`) the data packets take.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PathMode {
    /// Every copy over every healthy path.
    #[default]
    All,
    /// Only the healthiest path, moving on when it fails.
    Best,
}

impl fmt::Display for PathMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathMode::All => "all",
            PathMode::Best => "best",
        })
    }
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
    /// This host's member `address`, with `interface.subnet`'s prefix length.
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    /// This host's member `address6`, with `interface.subnet6`'s length.
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

impl Endpoint {
    pub fn port(&self) -> u16 {
        match self {
            Endpoint::Addr(a) => a.port(),
            Endpoint::Name { port, .. } => *port,
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Addr(a) => write!(f, "{a}"),
            Endpoint::Name { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

/// Another member of the cluster, as this host sees it.
#[derive(Clone, Debug)]
pub struct PeerConfig {
    pub name: String,
    /// Where its relay listens, one entry per path (`endpoint`, or each
    /// of `endpoints` in the file's order); never empty, no entry twice.
    pub endpoints: Vec<Endpoint>,
    pub address: Ipv4Addr,
    pub address6: Option<Ipv6Addr>,
    /// `None` only with `insecure = true` (where it may be left out).
    pub public_key: Option<PublicKey>,
}

impl Config {
    /// Reads and validates the file at `path`, reads this host's private
    /// key (`key_override`, else `node.key_file`, else the default) unless
    /// insecure, and finds the member this host is.
    pub fn load(path: &Path, key_override: Option<&Path>) -> Result<Config, LoadError> {
        let text = read_text(path)?;
        let hostname = hostname();
        let facts = HostFacts {
            hostname: &hostname,
            is_local: &hostio::is_local_address,
        };
        Config::build(path, &text, key_override, &facts, load_key)
    }

    /// The same file read again, for a reload, with the running key: by now
    /// the relay runs unprivileged and may not read its key file, and this
    /// host's key only changes with a restart anyway (a changed
    /// `node.key_file` still shows in the new configuration, which the
    /// reload then refuses).
    pub fn reload(&self) -> Result<Config, LoadError> {
        let text = read_text(&self.path)?;
        let hostname = hostname();
        let facts = HostFacts {
            hostname: &hostname,
            is_local: &hostio::is_local_address,
        };
        let running = self.node.key.clone();
        Config::build(
            &self.path,
            &text,
            self.key_override.as_deref(),
            &facts,
            |p| match running {
                Some(k) => Ok(Credential::Private(k)),
                None => load_key(p),
            },
        )
    }

    /// Validates `text` as if read from `path` (used in errors), with `key`
    /// as this host's private key; without one, a file that is not
    /// insecure is refused once it is otherwise valid.
    pub fn parse(path: &Path, text: &str, key: Option<&PrivateKey>) -> Result<Config, ConfigError> {
        let hostname = hostname();
        let facts = HostFacts {
            hostname: &hostname,
            is_local: &hostio::is_local_address,
        };
        Config::build(path, text, None, &facts, |file| {
            key.cloned().map(Credential::Private).ok_or_else(|| ConfigError {
                file: path.to_path_buf(),
                line: 0,
                column: 0,
                key: "node.key_file".into(),
                message: format!(
                    "no private key was given to find this host among the members (the file names {})",
                    file.display()
                ),
            })
        })
    }

    fn build<E: From<ConfigError>>(
        path: &Path,
        text: &str,
        key_override: Option<&Path>,
        facts: &HostFacts,
        load_key: impl FnOnce(&Path) -> Result<Credential, E>,
    ) -> Result<Config, E> {
        let ctx = Ctx { path, text };
        validate::refuse_old_layout(&ctx)?;
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            ctx.err_guess_key(span, e.message().to_string())
        })?;
        validate::validate(&ctx, raw, key_override, facts, load_key)
    }
}

fn read_text(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        line: 0,
        column: 0,
        key: String::new(),
        message: format!("cannot read the configuration file: {e}"),
    })
}

fn load_key(path: &Path) -> Result<Credential, LoadError> {
    keyfile::load(path)
        .map(Credential::Private)
        .map_err(LoadError::Key)
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
    use fixture::{GOOD, key, parse};

    #[test]
    fn good_config() {
        let c = parse(GOOD).expect("valid");
        assert_eq!(c.node.name, "h1");
        assert_eq!(c.node.listen, "0.0.0.0:7112".parse().expect("addr"));
        assert_eq!(
            c.node.key_file.as_deref(),
            Some(Path::new("/etc/mcast-relay/key"))
        );
        assert_eq!(c.node.public_key, Some(key(1).public()));
        assert_eq!(
            c.node.key.as_ref().map(PrivateKey::public),
            Some(key(1).public())
        );
        assert!(!c.node.insecure);
        assert_eq!(c.node.max_clock_skew, Duration::from_secs(10));
        // Dual-stack: every VRID of both families at 20 adverts/s.
        assert_eq!(c.node.inject_rate_limit, 10_200);
        assert_eq!(c.interface.address, Ipv4Addr::new(10, 250, 0, 1));
        assert_eq!(c.interface.prefix_len, 24);
        assert_eq!(c.interface.broadcast(), Ipv4Addr::new(10, 250, 0, 255));
        assert_eq!(
            c.interface.address6,
            Some(("fd00:250::1".parse().expect("ip"), 64))
        );
        assert_eq!(c.allow.rules().len(), 3);
        assert_eq!(c.allow.rules()[2].ports, vec![(9000, 9000), (9100, 9101)]);
        assert_eq!(c.peers.len(), 2);
        assert_eq!(c.peers[0].name, "h2");
        assert_eq!(c.peers[0].public_key, Some(key(2).public()));
        assert_eq!(
            c.peers[1].endpoints,
            [Endpoint::Name {
                host: "node3.example.net".into(),
                port: 7112
            }]
        );
    }

    /// The default injection limit leaves room for every virtual router the
    /// interface can carry (255 per family) at 20 adverts/s; a limit the
    /// file sets is kept as it is.
    #[test]
    fn the_default_rate_limit_follows_the_interface_families() {
        let v4_only: String = GOOD
            .lines()
            .filter(|l| !l.starts_with("subnet6") && !l.starts_with("address6"))
            .map(|l| format!("{l}\n"))
            .collect();
        let c = parse(&v4_only).expect("valid without IPv6");
        assert_eq!(c.interface.address6, None);
        assert_eq!(c.node.inject_rate_limit, 5_100);
        let set = GOOD.replace(
            "listen = \"0.0.0.0:7112\"\n",
            "listen = \"0.0.0.0:7112\"\ninject_rate_limit = 700\n",
        );
        assert_eq!(parse(&set).expect("valid").node.inject_rate_limit, 700);
    }

    /// The fixture's public keys are those of its fixed private keys.
    #[test]
    fn fixture_keys_match() {
        for n in 1..=3 {
            assert!(GOOD.contains(&key(n).public().to_string()), "key({n})");
        }
        assert_eq!(key(4).public().to_string(), fixture::STRANGER);
    }

    /// The same file on h2 and h3: each finds itself by its own key and
    /// sees the others as peers.
    #[test]
    fn every_member_reads_the_same_file() {
        for (n, name, addr) in [(2, "h2", "10.250.0.2"), (3, "h3", "10.250.0.3")] {
            let c = fixture::parse_as(GOOD, Some(key(n)), &fixture::stranger_host())
                .expect("valid on every member");
            assert_eq!(c.node.name, name);
            assert_eq!(c.interface.address.to_string(), addr);
            assert_eq!(c.peers.len(), 2);
            assert!(c.peers.iter().all(|p| p.name != name));
        }
        let h3 = fixture::parse_as(GOOD, Some(key(3)), &fixture::stranger_host()).expect("h3");
        assert_eq!(h3.interface.address6, None, "h3 has no address6");
        assert_eq!(h3.peers[0].name, "h1", "peers keep the file's order");
        // The default listen port is the one of this host's own endpoint.
        let moved = GOOD
            .replace("listen = \"0.0.0.0:7112\"\n", "")
            .replace("192.0.2.2:7112", "192.0.2.2:7200");
        let h2 = fixture::parse_as(&moved, Some(key(2)), &fixture::stranger_host()).expect("h2");
        assert_eq!(h2.node.listen, "0.0.0.0:7200".parse().expect("addr"));
    }

    /// `load` reads the key file the file names, or the one `-k` gives, and
    /// a reload reads the `-k` file again.
    #[test]
    fn load_reads_the_key_file_and_its_override() {
        let dir = std::env::temp_dir().join(format!("mcast-relay-config-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let (k1, k2) = (dir.join("h1.key"), dir.join("h2.key"));
        keyfile::write(&k1, &key(1), false).expect("key");
        keyfile::write(&k2, &key(2), false).expect("key");
        let file = dir.join("cluster.toml");
        let text = GOOD.replace("/etc/mcast-relay/key", &k1.display().to_string());
        std::fs::write(&file, text).expect("write");
        let c = Config::load(&file, None).expect("h1");
        assert_eq!(c.node.name, "h1");
        assert_eq!(c.node.key_file.as_deref(), Some(k1.as_path()));
        let c = Config::load(&file, Some(&k2)).expect("h2 by -k");
        assert_eq!(c.node.name, "h2");
        assert_eq!(c.node.key_file.as_deref(), Some(k2.as_path()));
        assert_eq!(c.key_override.as_deref(), Some(k2.as_path()));
        assert_eq!(c.reload().expect("again").node.name, "h2");
        // A reload does not read the key file again: the relay runs
        // unprivileged by then and may not.
        std::fs::remove_file(&k2).expect("rm");
        let again = c.reload().expect("reloads with the running key");
        assert_eq!(again.node.name, "h2");
        assert_eq!(again.node.public_key, Some(key(2).public()));
        let e = Config::load(&file, Some(&dir.join("missing.key"))).expect_err("no key");
        assert!(matches!(e, LoadError::Key(_)), "{e:?}");
        assert!(e.to_string().contains("keygen"), "{e}");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    /// Every relay configuration shipped in examples/ must stay valid, on
    /// every member it lists: each is read as each of its members would
    /// (by its public key, or in insecure mode by its name as hostname).
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
        let mut parsed = Vec::new();
        for f in &files {
            let text = std::fs::read_to_string(f).expect("readable");
            let table: toml::Table = text.parse().expect("TOML");
            let members = table
                .get("member")
                .and_then(|m| m.as_array())
                .cloned()
                .unwrap_or_default();
            assert!(members.len() >= 2, "{}: fewer than 2 members", f.display());
            for m in &members {
                let name = m.get("name").and_then(|n| n.as_str()).unwrap_or_default();
                let public = m
                    .get("public_key")
                    .and_then(|k| k.as_str())
                    .map(|k| PublicKey::parse(k).expect("a valid public_key"));
                let is_local = |_: std::net::IpAddr| false;
                let facts = HostFacts {
                    hostname: name,
                    is_local: &is_local,
                };
                let c = Config::build::<ConfigError>(f, &text, None, &facts, |_| {
                    public
                        .map(Credential::PublicOnly)
                        .ok_or_else(|| panic!("{}: `{name}` has no public_key", f.display()))
                });
                match c {
                    Ok(c) => {
                        if !c.node.insecure {
                            assert_eq!(c.node.name, name, "{}", f.display());
                        }
                        parsed.push((f.clone(), c));
                    }
                    Err(e) => panic!("example does not parse as `{name}`: {e}"),
                }
            }
        }
        let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        // mcast-relay.toml and one per set-up: keepalived, keepalived with
        // HAProxy, heartbeat, heartbeat with haresources, corosync,
        // Pacemaker, spread, ucarp (tap mode), cloud-vip ([[vip]] hooks);
        // and the two relay instances of many-vrids.
        assert_eq!(files.len(), 12, "examples found: {names:?}");
        let instance = |n: &str| {
            parsed
                .iter()
                .find(|(f, _)| f.ends_with(format!("many-vrids/{n}.toml")))
                .map(|(_, c)| c)
                .expect("examples/many-vrids")
        };
        let (a, b) = (instance("mcast0"), instance("mcast1"));
        // Two relays on one host must not share any of these.
        assert_ne!(a.interface.name, b.interface.name);
        assert_ne!(a.interface.address, b.interface.address);
        assert_ne!(a.node.listen, b.node.listen);
        assert_ne!(a.node.status_socket, b.node.status_socket);
        assert_eq!(a.interface.name, "mcast0");
        assert_eq!(b.interface.name, "mcast1");
        let ucarp = parsed
            .iter()
            .find(|(f, _)| f.ends_with("ucarp/mcast-relay.toml"))
            .map(|(_, c)| c)
            .expect("examples/ucarp/mcast-relay.toml");
        assert_eq!(ucarp.interface.mode, Mode::Tap);
    }
}
