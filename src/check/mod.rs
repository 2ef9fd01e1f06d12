//! `mcast-relay check`: validates the configuration and the host, and says
//! for each finding what to do about it.

mod finding;
mod hooks;
mod host;
pub(crate) mod toolconf;

pub use finding::Finding;

use std::fs;
use std::path::{Path, PathBuf};

use crate::check::host::{self as hostcheck, Resolution};
use crate::check::toolconf::Tool;
use crate::config::{Config, Endpoint, NodeConfig};
use crate::io::realtime;
use crate::io::{host as hostio, net, tun};
use crate::underlay;

/// Checks the configuration at `path` with this host's key (`key_override`,
/// else `node.key_file`), what the host needs to run it, and the failover
/// tools' configurations: `tool_configs`, or those found at their usual
/// paths.
pub fn check(
    path: &Path,
    key_override: Option<&Path>,
    is_root: bool,
    tool_configs: &[PathBuf],
) -> Vec<Finding> {
    let mut out = Vec::new();
    let cfg = match Config::load(path, key_override) {
        Ok(c) => c,
        Err(e) => {
            out.push(Finding::Error(e.to_string()));
            return out;
        }
    };
    let names: Vec<String> = cfg
        .peers
        .iter()
        .map(|p| {
            let paths: Vec<String> = p
                .endpoints
                .iter()
                .map(|e| match e {
                    Endpoint::Addr(a) => a.to_string(),
                    Endpoint::Name { .. } => format!("{e} (DNS name)"),
                })
                .collect();
            format!("{} at {}", p.name, paths.join(" and "))
        })
        .collect();
    out.push(Finding::Ok(format!(
        "{}: node {}, interface {} {}/{}, listening on {}, {} peer(s): {}; allowed: {}",
        path.display(),
        cfg.node.name,
        cfg.interface.name,
        cfg.interface.address,
        cfg.interface.prefix_len,
        cfg.node.listen,
        cfg.peers.len(),
        names.join(", "),
        cfg.allow
    )));
    out.extend(identity(&cfg));
    let user = crate::io::privilege::lookup(&cfg.node.user);
    if let Ok(u) = &user {
        for v in &cfg.vips {
            let what = format!("[[vip]] VRID {} ({})", v.vrid, v.family.name());
            let program = fs::metadata(&v.on_master[0]).map(|m| {
                use std::os::unix::fs::MetadataExt;
                hooks::Program {
                    is_file: m.is_file(),
                    mode: m.mode(),
                    uid: m.uid(),
                    gid: m.gid(),
                }
            });
            out.push(hooks::hook_finding(
                &what,
                &v.on_master[0],
                &program,
                &u.name,
                u.uid.as_raw(),
                u.gid.as_raw(),
            ));
        }
    }
    match user {
        Ok(u) if u.uid.is_root() => out.push(Finding::Warning(
            "node.user = \"root\": the relay keeps full privileges after set-up; use an unprivileged account such as \"nobody\"".into(),
        )),
        Ok(u) => out.push(Finding::Ok(format!(
            "after set-up the relay runs as {} (uid {}) with no capabilities",
            u.name, u.uid
        ))),
        Err(e) => out.push(Finding::Error(e.to_string())),
    }
    out.extend(realtime_findings(
        &cfg.node,
        is_root,
        realtime::memlock_limit().ok(),
    ));
    out.push(tun_finding(hostio::open_tun_device()));
    if !is_root {
        out.push(Finding::Warning(
            "not running as root: `run` needs root or CAP_NET_ADMIN to create and configure the interface".into(),
        ));
    }
    host(&cfg, &mut out);
    tools(&cfg, tool_configs, &mut out);
    out
}

/// Which member this host is and what it was found by; in insecure mode
/// the warning, and the members still without a key.
fn identity(cfg: &Config) -> Vec<Finding> {
    let me = format!(
        "this host is member `{}` ({})",
        cfg.node.name, cfg.interface.address
    );
    match (&cfg.node.public_key, &cfg.node.key_file) {
        (Some(k), Some(file)) if !cfg.node.insecure => vec![Finding::Ok(format!(
            "{me}, found by its key {} (readable and private): public_key = \"{k}\"",
            file.display()
        ))],
        _ => {
            let own = (cfg.node.name.as_str(), cfg.node.public_key);
            let keyless: Vec<&str> = std::iter::once(own)
                .chain(cfg.peers.iter().map(|p| (p.name.as_str(), p.public_key)))
                .filter(|(_, k)| k.is_none())
                .map(|(name, _)| name)
                .collect();
            let mut out = vec![
                Finding::Ok(me),
                Finding::Warning(format!(
                    "insecure = true: no authentication or encryption; anyone who can reach the relay port can inject heartbeats. Labs only: run `mcast-relay keygen` on each host, put each printed public_key in its [[member]] and remove `insecure`{}",
                    if cfg.key_override.is_some() {
                        " (the -k key file is not read in insecure mode)"
                    } else {
                        ""
                    }
                )),
            ];
            if !keyless.is_empty() {
                out.push(Finding::Warning(format!(
                    "members without public_key (each needs one once insecure is off): {}",
                    keyless.join(", ")
                )));
            }
            out
        }
    }
}

/// Whether the tun driver is there and this user may open it.
fn tun_finding(opened: std::io::Result<()>) -> Finding {
    match opened {
        Ok(()) => Finding::Ok("/dev/net/tun opens for reading and writing".into()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Finding::Error(
            "/dev/net/tun is missing: load the driver with `modprobe tun` (in a container, pass the device through)".into(),
        ),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Finding::Error(format!(
            "cannot open /dev/net/tun: {e}; run as root (systemd does), or in a container allow the device"
        )),
        Err(e) => Finding::Error(format!(
            "cannot open /dev/net/tun: {e}; is the tun driver loaded (`modprobe tun`)?"
        )),
    }
}

/// Routes and rp_filter, the listen port, each peer's name and MTU.
fn host(cfg: &Config, out: &mut Vec<Finding>) {
    let iface = &cfg.interface.name;
    let (addr, prefix) = (cfg.interface.address, cfg.interface.prefix_len);
    let relay_up = tun::exists(iface);
    if let Some(text) = hostio::proc_route() {
        let routes = hostcheck::parse_proc_route(&text);
        let conflicts = hostcheck::overlay_conflicts(&routes, iface, addr, prefix);
        let rp_iface = hostio::rp_filter(if relay_up { iface } else { "default" });
        out.push(hostcheck::routing_finding(
            &conflicts,
            iface,
            addr,
            prefix,
            hostio::rp_filter("all"),
            rp_iface,
        ));
    }
    let bound = net::bind(cfg.node.listen).map(|_| ());
    out.push(hostcheck::listen_finding(cfg.node.listen, &bound, relay_up));
    // Every path of every peer: each is resolved and routed on its own.
    for (p, e) in cfg
        .peers
        .iter()
        .flat_map(|p| p.endpoints.iter().map(move |e| (p, e)))
    {
        let endpoint = match e {
            Endpoint::Addr(a) => Some(*a),
            Endpoint::Name { host, port } => {
                let resolved = match net::lookup_now(host, *port) {
                    Ok(a) => underlay::pick(a.into_iter(), cfg.node.listen)
                        .map_or(Resolution::NoUsableFamily, Resolution::Resolved),
                    Err(e) => Resolution::Failed(e),
                };
                out.push(hostcheck::name_finding(&p.name, host, &resolved));
                resolved.addr()
            }
        };
        if let Some(ep) = endpoint {
            out.push(hostcheck::mtu_finding(
                &p.name,
                ep,
                &tun::route_mtu(ep),
                cfg.interface.mtu,
                cfg.interface.mode,
            ));
        }
    }
}

/// The failover tools' own configurations.
fn tools(cfg: &Config, given: &[PathBuf], out: &mut Vec<Finding>) {
    let others = sibling_relays(&cfg.path);
    let vips: Vec<(u8, Option<f64>)> = cfg
        .vips
        .iter()
        .map(|v| (v.vrid, v.settle.map(|s| s.as_secs_f64())))
        .collect();
    let relay = toolconf::Relay {
        iface: &cfg.interface.name,
        address: cfg.interface.address,
        prefix: cfg.interface.prefix_len,
        inject_rate_limit: cfg.node.inject_rate_limit,
        // IPv6 instances need this host's address6 on the interface.
        families: 1 + u32::from(cfg.interface.address6.is_some()),
        others: &others,
        vips: &vips,
    };
    let files: Vec<(PathBuf, Option<Tool>)> = if given.is_empty() {
        toolconf::carried_configs(&cfg.allow)
            .filter(|c| Path::new(c.path).exists())
            .map(|c| (PathBuf::from(c.path), Some(c.tool)))
            .collect()
    } else {
        given.iter().map(|p| (p.clone(), None)).collect()
    };
    for (path, tool) in files {
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                out.push(Finding::Error(format!(
                    "cannot read {}: {e}",
                    path.display()
                )));
                continue;
            }
        };
        match tool.or_else(|| toolconf::detect(&path, &text)) {
            Some(t) => out.extend(toolconf::findings(t, &path, &text, &relay)),
            None => out.push(Finding::Warning(format!(
                "{}: not a {} configuration as far as check can tell; not checked",
                path.display(),
                toolconf::tool_names()
            ))),
        }
    }
}

/// The directory a configuration file is in; `-c mcast0.toml` is in the
/// working directory, whose name `Path::parent` gives as empty.
fn config_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// The interfaces the other relay files beside `path` configure (as
/// mcast-relay@.service keeps one per instance in /etc/mcast-relay), so
/// that a tool's instances on them are not taken for mistakes. A file
/// that does not parse is not a relay's and is skipped: its own `check`
/// reports it. Where several files name one interface, the one named
/// after it (`mcast1.toml`, the template unit's) comes first.
fn sibling_relays(path: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = fs::read_dir(config_dir(path)) else {
        return Vec::new();
    };
    let mut out: Vec<(String, PathBuf)> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.file_name() != path.file_name())
        .filter_map(|p| {
            let text = fs::read_to_string(&p).ok()?;
            let v: toml::Table = text.parse().ok()?;
            let name = match v.get("interface")?.get("name") {
                Some(n) => n.as_str()?.to_string(),
                None => crate::config::DEFAULT_INTERFACE.to_string(),
            };
            Some((name, p))
        })
        .collect();
    let own_name = |(i, p): &(String, PathBuf)| p.file_stem() != Some(std::ffi::OsStr::new(i));
    out.sort_by(|a, b| (&a.0, own_name(a), &a.1).cmp(&(&b.0, own_name(b), &b.1)));
    out
}

/// What `run` will do about `node.realtime_priority` and
/// `node.lock_memory`, and what it needs for them; `memlock` is this
/// process's RLIMIT_MEMLOCK (`Some(None)`: unlimited), which under systemd
/// is the unit's, as `check` runs in ExecStartPre.
fn realtime_findings(
    node: &NodeConfig,
    is_root: bool,
    memlock: Option<Option<u64>>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    match node.realtime_priority {
        None => out.push(Finding::Ok(
            "node.realtime_priority not set: the relay runs at normal priority".into(),
        )),
        Some(p) if is_root => out.push(Finding::Ok(format!(
            "node.realtime_priority = {p}: the relay's threads run SCHED_RR {p}, set before privileges are dropped (needs CAP_SYS_NICE; under systemd RestrictRealtime=no); it refuses to start without it"
        ))),
        Some(p) => out.push(Finding::Warning(format!(
            "node.realtime_priority = {p}: not running as root; `run` needs root with CAP_SYS_NICE to set SCHED_RR and refuses to start without it"
        ))),
    }
    if node.lock_memory {
        out.push(match memlock {
            Some(None) => Finding::Ok(
                "node.lock_memory = true: memory is locked (mlockall) before privileges are dropped; RLIMIT_MEMLOCK is unlimited".into(),
            ),
            Some(Some(l)) => Finding::Warning(format!(
                "node.lock_memory = true: RLIMIT_MEMLOCK is {} KiB here; `run` raises it as root with CAP_SYS_RESOURCE and otherwise refuses to start below {} MiB: set LimitMEMLOCK=infinity in the unit",
                l >> 10,
                realtime::MEMLOCK_HEADROOM >> 20
            )),
            None => Finding::Warning(
                "node.lock_memory = true: cannot read RLIMIT_MEMLOCK; `run` needs it unlimited (LimitMEMLOCK=infinity) or CAP_SYS_RESOURCE".into(),
            ),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::keyfile;
    use crate::proto::keys::PrivateKey;
    use std::os::unix::fs::PermissionsExt;

    fn dir(name: &str) -> std::path::PathBuf {
        let d =
            std::env::temp_dir().join(format!("mcast-relay-check-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("tmp dir");
        d
    }

    #[test]
    fn sibling_relays_are_the_other_files_beside_the_config() {
        let d = dir("siblings");
        let w = |name: &str, text: &str| std::fs::write(d.join(name), text).expect("write");
        w("mcast0.toml", "[interface]\nname = \"mcast0\"\n");
        w("mcast1.toml", "[interface]\nname = \"mcast1\"\n");
        // The package's default file, left in place: no name is mcast0.
        w(
            "mcast-relay.toml",
            "[interface]\nsubnet = \"10.250.0.0/24\"\n",
        );
        w("broken.toml", "[interface\n");
        w("notes.txt", "[interface]\nname = \"mcast9\"\n");
        let found = sibling_relays(&d.join("mcast1.toml"));
        assert_eq!(
            found,
            [
                ("mcast0".to_string(), d.join("mcast0.toml")),
                ("mcast0".to_string(), d.join("mcast-relay.toml")),
            ]
        );
        assert_eq!(config_dir(Path::new("mcast0.toml")), Path::new("."));
        assert_eq!(
            config_dir(Path::new("/etc/mcast-relay/a.toml")),
            Path::new("/etc/mcast-relay")
        );
        std::fs::remove_dir_all(&d).expect("cleanup");
    }

    #[test]
    fn realtime_settings_are_reported() {
        let text = "[node]\ninsecure = true\nname = \"a\"\nrealtime_priority = 20\nlock_memory = true\n[interface]\nsubnet = \"10.250.0.0/24\"\n[allow]\npresets = [\"vrrp\"]\n[[member]]\nname = \"a\"\nendpoint = \"192.0.2.1\"\naddress = \"10.250.0.1\"\n[[member]]\nname = \"b\"\nendpoint = \"192.0.2.2\"\naddress = \"10.250.0.2\"\n";
        let c = Config::parse(Path::new("t.toml"), text, None);
        let Ok(mut cfg) = c else {
            panic!("test config: {c:?}");
        };
        let f = realtime_findings(&cfg.node, true, Some(None));
        assert!(
            matches!(&f[0], Finding::Ok(m) if m.contains("SCHED_RR 20")),
            "{f:?}"
        );
        assert!(
            matches!(&f[1], Finding::Ok(m) if m.contains("unlimited")),
            "{f:?}"
        );
        let f = realtime_findings(&cfg.node, false, Some(Some(8 << 20)));
        assert!(
            matches!(&f[0], Finding::Warning(m) if m.contains("root")),
            "{f:?}"
        );
        assert!(
            matches!(&f[1], Finding::Warning(m) if m.contains("8192 KiB") && m.contains("LimitMEMLOCK=infinity")),
            "{f:?}"
        );
        cfg.node.realtime_priority = None;
        cfg.node.lock_memory = false;
        let f = realtime_findings(&cfg.node, true, None);
        assert_eq!(f.len(), 1);
        assert!(
            matches!(&f[0], Finding::Ok(m) if m.contains("normal priority")),
            "{f:?}"
        );
    }

    /// Members `a` (holding `key`) and `b`; `key_file` names `key`.
    fn config(key: &Path) -> String {
        let public = keyfile::public_key(key).expect("test key");
        let other = PrivateKey::from_bytes([9; 32]).public();
        format!(
            "[node]\nkey_file = \"{}\"\n[interface]\nsubnet = \"10.250.0.0/24\"\n[allow]\npresets = [\"vrrp\"]\n[[member]]\nname = \"a\"\nendpoint = \"192.0.2.1\"\naddress = \"10.250.0.1\"\npublic_key = \"{public}\"\n[[member]]\nname = \"b\"\nendpoint = \"192.0.2.2\"\naddress = \"10.250.0.2\"\npublic_key = \"{other}\"\n",
            key.display()
        )
    }

    #[test]
    fn good_setup_passes() {
        let d = dir("good");
        let key = d.join("key");
        keyfile::write(&key, &PrivateKey::generate().expect("rng"), false).expect("key");
        let cfg = d.join("relay.toml");
        std::fs::write(&cfg, config(&key)).expect("write");
        let f = check(&cfg, None, true, &[]);
        assert!(!f.iter().any(Finding::is_error), "{f:?}");
        assert!(
            f[0].to_string()
                .contains("node a, interface mcast0 10.250.0.1/24"),
            "{}",
            f[0]
        );
        let public = keyfile::public_key(&key).expect("key");
        assert!(
            f.iter().any(|x| matches!(x, Finding::Ok(m)
                if m.contains("this host is member `a`") && m.contains(&public.to_string()))),
            "{f:?}"
        );
        let f = check(&cfg, None, false, &[]);
        assert!(
            f.iter()
                .any(|x| matches!(x, Finding::Warning(m) if m.contains("CAP_NET_ADMIN")))
        );
        std::fs::remove_dir_all(&d).expect("cleanup");
    }

    #[test]
    fn open_key_and_bad_config_fail() {
        let d = dir("bad");
        let key = d.join("key");
        keyfile::write(&key, &PrivateKey::generate().expect("rng"), false).expect("key");
        let cfg = d.join("relay.toml");
        let text = config(&key);
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        std::fs::write(&cfg, &text).expect("write");
        let f = check(&cfg, None, true, &[]);
        assert!(
            f.iter()
                .any(|x| matches!(x, Finding::Error(m) if m.contains("chmod 600"))),
            "{f:?}"
        );
        std::fs::write(&cfg, text.replace("presets", "preset")).expect("write");
        let f = check(&cfg, None, true, &[]);
        assert_eq!(f.len(), 1);
        assert!(
            f[0].is_error() && f[0].to_string().contains("relay.toml:6:1: allow.preset"),
            "{}",
            f[0]
        );
        let f = check(&d.join("missing.toml"), None, true, &[]);
        assert!(
            f[0].is_error() && f[0].to_string().contains("cannot read"),
            "{}",
            f[0]
        );
        std::fs::remove_dir_all(&d).expect("cleanup");
    }

    /// `-k` picks the member; a key that matches none, and a file in the
    /// old layout, are one clear error each.
    #[test]
    fn key_override_unknown_key_and_old_layout() {
        let d = dir("keys");
        let (key_a, key_b, stranger) = (d.join("a.key"), d.join("b.key"), d.join("x.key"));
        keyfile::write(&key_a, &PrivateKey::generate().expect("rng"), false).expect("key");
        keyfile::write(&key_b, &PrivateKey::from_bytes([9; 32]), false).expect("key");
        keyfile::write(&stranger, &PrivateKey::generate().expect("rng"), false).expect("key");
        let cfg = d.join("relay.toml");
        std::fs::write(&cfg, config(&key_a)).expect("write");
        let f = check(&cfg, Some(&key_b), true, &[]);
        assert!(!f.iter().any(Finding::is_error), "{f:?}");
        assert!(f[0].to_string().contains("node b,"), "{}", f[0]);
        let f = check(&cfg, Some(&stranger), true, &[]);
        assert_eq!(f.len(), 1, "{f:?}");
        let shown = f[0].to_string();
        let public = keyfile::public_key(&stranger).expect("key").to_string();
        assert!(f[0].is_error() && shown.contains(&public), "{shown}");
        assert!(
            shown.contains("x.key") && shown.contains("[[member]]"),
            "{shown}"
        );
        let old = "[node]\nname = \"a\"\nkey_file = \"/k\"\n[interface]\naddress = \"10.250.0.1/24\"\n[allow]\npresets = [\"vrrp\"]\n[[peer]]\nname = \"b\"\nendpoint = \"192.0.2.2\"\naddress = \"10.250.0.2\"\n";
        std::fs::write(&cfg, old).expect("write");
        let f = check(&cfg, None, true, &[]);
        assert_eq!(f.len(), 1, "{f:?}");
        let shown = f[0].to_string();
        assert!(
            f[0].is_error()
                && shown.contains("[[member]]")
                && shown.contains("keygen")
                && shown.contains("subnet"),
            "{shown}"
        );
        std::fs::remove_dir_all(&d).expect("cleanup");
    }

    #[test]
    fn insecure_names_the_member_and_the_keyless() {
        let d = dir("insecure");
        let cfg = d.join("relay.toml");
        let text = "[node]\ninsecure = true\nname = \"b\"\n[interface]\nsubnet = \"10.250.0.0/24\"\n[allow]\npresets = [\"vrrp\"]\n[[member]]\nname = \"a\"\nendpoint = \"192.0.2.1\"\naddress = \"10.250.0.1\"\n[[member]]\nname = \"b\"\nendpoint = \"192.0.2.2\"\naddress = \"10.250.0.2\"\n";
        std::fs::write(&cfg, text).expect("write");
        let f = check(&cfg, None, true, &[]);
        assert!(!f.iter().any(Finding::is_error), "{f:?}");
        assert!(
            f.iter()
                .any(|x| matches!(x, Finding::Ok(m) if m.contains("this host is member `b`"))),
            "{f:?}"
        );
        assert!(
            f.iter()
                .any(|x| matches!(x, Finding::Warning(m) if m.contains("insecure = true"))),
            "{f:?}"
        );
        assert!(f.iter().any(|x| matches!(x, Finding::Warning(m) if m.contains("without public_key") && m.ends_with(": b, a"))), "{f:?}");
        std::fs::remove_dir_all(&d).expect("cleanup");
    }

    #[test]
    fn tun_device_findings() {
        use std::io::{Error, ErrorKind};
        assert!(!tun_finding(Ok(())).is_error());
        let f = tun_finding(Err(Error::from(ErrorKind::NotFound)));
        assert!(f.to_string().contains("modprobe tun"), "{f}");
        let f = tun_finding(Err(Error::from(ErrorKind::PermissionDenied)));
        assert!(f.is_error() && f.to_string().contains("root"), "{f}");
    }
}
