//! `mcast-relay check`: validates the configuration and the host, and says
//! for each finding what to do about it.

use std::path::Path;

use crate::config::{Config, Endpoint};
use crate::keyfile;

/// One finding of `check`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    Ok(String),
    Warning(String),
    Error(String),
}

impl Finding {
    pub fn is_error(&self) -> bool {
        matches!(self, Finding::Error(_))
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::Ok(m) => write!(f, "ok:      {m}"),
            Finding::Warning(m) => write!(f, "warning: {m}"),
            Finding::Error(m) => write!(f, "error:   {m}"),
        }
    }
}

/// Checks the configuration at `path` and what the host needs to run it.
pub fn check(path: &Path, is_root: bool) -> Vec<Finding> {
    let mut out = Vec::new();
    let cfg = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            out.push(Finding::Error(e.to_string()));
            return out;
        }
    };
    let names: Vec<String> = cfg
        .peers
        .iter()
        .map(|p| match &p.endpoint {
            Endpoint::Addr(a) => format!("{} at {a}", p.name),
            Endpoint::Name { .. } => format!("{} at {} (DNS name)", p.name, p.endpoint),
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
    match (&cfg.node.key_file, cfg.node.insecure) {
        (_, true) => out.push(Finding::Warning(
            "insecure = true: no authentication or encryption; anyone who can reach the relay port can inject heartbeats. Labs only: create a key with `mcast-relay keygen -o /etc/mcast-relay/key` and set key_file".into(),
        )),
        (Some(k), false) => match keyfile::load(k) {
            Ok(_) => out.push(Finding::Ok(format!("key file {} is readable and private", k.display()))),
            Err(e) => out.push(Finding::Error(e)),
        },
        (None, false) => out.push(Finding::Error("no key_file configured".into())),
    }
    match crate::privilege::lookup(&cfg.node.user) {
        Ok(u) if u.uid.is_root() => out.push(Finding::Warning(
            "node.user = \"root\": the relay keeps full privileges after set-up; use an unprivileged account such as \"nobody\"".into(),
        )),
        Ok(u) => out.push(Finding::Ok(format!(
            "after set-up the relay runs as {} (uid {}) with no capabilities",
            u.name, u.uid
        ))),
        Err(e) => out.push(Finding::Error(e)),
    }
    if Path::new("/dev/net/tun").exists() {
        out.push(Finding::Ok("/dev/net/tun is present".into()));
    } else {
        out.push(Finding::Error(
            "/dev/net/tun is missing: load the driver with `modprobe tun` (in a container, pass the device through)".into(),
        ));
    }
    if !is_root {
        out.push(Finding::Warning(
            "not running as root: `run` needs root or CAP_NET_ADMIN to create and configure the interface".into(),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn dir(name: &str) -> std::path::PathBuf {
        let d =
            std::env::temp_dir().join(format!("mcast-relay-check-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("tmp dir");
        d
    }

    fn config(key: &Path) -> String {
        format!(
            "[node]\nname = \"a\"\nkey_file = \"{}\"\n[interface]\naddress = \"10.250.0.1/24\"\n[allow]\npresets = [\"vrrp\"]\n[[peer]]\nname = \"b\"\nendpoint = \"192.0.2.2\"\naddress = \"10.250.0.2\"\n",
            key.display()
        )
    }

    #[test]
    fn good_setup_passes() {
        let d = dir("good");
        let key = d.join("key");
        keyfile::write(
            &key,
            &crate::crypto::ClusterKey::generate().expect("rng"),
            false,
        )
        .expect("key");
        let cfg = d.join("relay.toml");
        std::fs::write(&cfg, config(&key)).expect("write");
        let f = check(&cfg, true);
        assert!(!f.iter().any(Finding::is_error), "{f:?}");
        assert!(
            f[0].to_string()
                .contains("node a, interface mcast0 10.250.0.1/24"),
            "{}",
            f[0]
        );
        let f = check(&cfg, false);
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
        keyfile::write(
            &key,
            &crate::crypto::ClusterKey::generate().expect("rng"),
            false,
        )
        .expect("key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        let cfg = d.join("relay.toml");
        std::fs::write(&cfg, config(&key)).expect("write");
        let f = check(&cfg, true);
        assert!(
            f.iter()
                .any(|x| matches!(x, Finding::Error(m) if m.contains("chmod 600"))),
            "{f:?}"
        );
        std::fs::write(&cfg, config(&key).replace("presets", "preset")).expect("write");
        let f = check(&cfg, true);
        assert_eq!(f.len(), 1);
        assert!(
            f[0].is_error() && f[0].to_string().contains("relay.toml:7:1: allow.preset"),
            "{}",
            f[0]
        );
        let f = check(&d.join("missing.toml"), true);
        assert!(
            f[0].is_error() && f[0].to_string().contains("cannot read"),
            "{}",
            f[0]
        );
        std::fs::remove_dir_all(&d).expect("cleanup");
    }
}
