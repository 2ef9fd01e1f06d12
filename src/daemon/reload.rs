//! What a new configuration may change while the relay runs (SIGHUP), and
//! what needs a restart: the interface, the socket, this host's key and
//! member entry, and the user are set up once, before privileges are
//! dropped, so changes to them are refused and the running configuration
//! stays in force. The other members are the peers: added, removed or
//! changed (endpoint, addresses, public key) live.

use std::fmt;

use crate::config::{Config, InterfaceConfig, NodeConfig, PeerConfig};

/// The difference between the running and a new configuration.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Same name, another overlay address, endpoint or public key.
    pub changed: Vec<String>,
    /// `[allow]`, `max_clock_skew`, `inject_rate_limit`, `resolve_interval`,
    /// `keepalive`, `redundancy`, `redundancy_spacing`, `path_mode`.
    pub settings_changed: bool,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
            && !self.settings_changed
    }
}

/// Every configuration key, sorted into those whose change needs a
/// restart and those the running relay takes over.
struct Sorted {
    /// Restart keys that changed, in the order they are reported.
    restart: Vec<&'static str>,
    /// A reloadable setting (not a peer) changed.
    settings_changed: bool,
}

/// Destructures the new configuration without `..`: a key added to the
/// configuration does not compile until it is sorted here, so none can be
/// silently left unapplied on reload.
fn sort_keys(old: &Config, new: &Config) -> Sorted {
    let Config {
        // The file and key file reloaded are the ones the relay started with.
        path: _,
        key_override: _,
        node:
            NodeConfig {
                name,
                listen,
                key_file,
                // Compared by its public key, which says the same and can
                // be compared.
                key: _,
                public_key,
                insecure,
                max_clock_skew,
                resolve_interval,
                keepalive,
                inject_rate_limit,
                user,
                status_socket,
                status_group,
                metrics_listen,
                quorum,
                redundancy,
                redundancy_spacing_ms,
                path_mode,
                realtime_priority,
                lock_memory,
            },
        interface:
            InterfaceConfig {
                name: if_name,
                mode,
                address,
                prefix_len,
                address6,
                mtu,
            },
        allow,
        // Compared peer by peer in `plan`.
        peers: _,
        vips,
    } = new;
    let (o, oi) = (&old.node, &old.interface);
    let restart = [
        ("this host's member name", o.name != *name),
        ("node.listen", o.listen != *listen),
        ("node.key_file", o.key_file != *key_file),
        (
            "this host's key (its member's public_key)",
            o.public_key != *public_key,
        ),
        ("node.insecure", o.insecure != *insecure),
        ("node.user", o.user != *user),
        ("node.status_socket", o.status_socket != *status_socket),
        ("node.status_group", o.status_group != *status_group),
        ("node.metrics_listen", o.metrics_listen != *metrics_listen),
        ("node.quorum", o.quorum != *quorum),
        // Applied to the process before privileges are dropped; the
        // unprivileged relay could not change them.
        (
            "node.realtime_priority",
            o.realtime_priority != *realtime_priority,
        ),
        ("node.lock_memory", o.lock_memory != *lock_memory),
        ("interface.name", oi.name != *if_name),
        ("interface.mode", oi.mode != *mode),
        (
            "this host's member address or interface.subnet",
            (oi.address, oi.prefix_len) != (*address, *prefix_len),
        ),
        (
            "this host's member address6 or interface.subnet6",
            oi.address6 != *address6,
        ),
        ("interface.mtu", oi.mtu != *mtu),
        // The hooks' state (a claim, a run, its retries) is per table.
        ("[[vip]]", old.vips != *vips),
    ]
    .into_iter()
    .filter_map(|(k, changed)| changed.then_some(k))
    .collect();
    let settings_changed = old.allow != *allow
        || o.max_clock_skew != *max_clock_skew
        || o.inject_rate_limit != *inject_rate_limit
        || o.resolve_interval != *resolve_interval
        || o.keepalive != *keepalive
        || o.redundancy != *redundancy
        || o.redundancy_spacing_ms != *redundancy_spacing_ms
        || o.path_mode != *path_mode;
    Sorted {
        restart,
        settings_changed,
    }
}

/// Whether a peer kept under its name now differs. Destructured without
/// `..` for the same reason as [`sort_keys`].
fn peer_changed(old: &PeerConfig, new: &PeerConfig) -> bool {
    let PeerConfig {
        // The name is what pairs the two.
        name: _,
        // Any path added, removed, moved or reordered.
        endpoints,
        address,
        address6,
        // A new key takes effect at the member's next handshake.
        public_key,
    } = new;
    (old.address, old.address6, &old.endpoints, old.public_key)
        != (*address, *address6, endpoints, *public_key)
}

/// A new configuration changes keys that only a restart applies.
#[derive(Debug, PartialEq, Eq)]
pub struct NeedsRestart {
    /// The keys that changed, in the order they are reported.
    pub keys: Vec<&'static str>,
}

impl fmt::Display for NeedsRestart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} changed, which needs a restart (systemctl restart mcast-relay)",
            self.keys.join(", ")
        )
    }
}

impl std::error::Error for NeedsRestart {}

/// What applying `new` over `old` would do, or why it cannot be applied
/// without a restart.
pub fn plan(old: &Config, new: &Config) -> Result<Plan, NeedsRestart> {
    let sorted = sort_keys(old, new);
    if !sorted.restart.is_empty() {
        return Err(NeedsRestart {
            keys: sorted.restart,
        });
    }
    let mut p = Plan::default();
    for n in &new.peers {
        match old.peers.iter().find(|o| o.name == n.name) {
            None => p.added.push(n.name.clone()),
            Some(o) => {
                if peer_changed(o, n) {
                    p.changed.push(n.name.clone());
                }
            }
        }
    }
    for o in &old.peers {
        if !new.peers.iter().any(|n| n.name == o.name) {
            p.removed.push(o.name.clone());
        }
    }
    p.settings_changed = sorted.settings_changed;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::keys::PrivateKey;
    use std::path::Path;

    /// Member `a` (this host, found by `node.name` in insecure mode) and
    /// `peers`.
    fn cfg(extra_node: &str, peers: &[(&str, &str, &str)], presets: &str) -> Config {
        let mut s = format!(
            "[node]\nname = \"a\"\ninsecure = true\n{extra_node}\n\
             [interface]\nsubnet = \"10.250.0.0/24\"\n\n[allow]\npresets = [{presets}]\n\
             \n[[member]]\nname = \"a\"\nendpoint = \"192.0.2.1:7112\"\naddress = \"10.250.0.1\"\n"
        );
        for (name, endpoint, address) in peers {
            s += &format!(
                "\n[[member]]\nname = \"{name}\"\nendpoint = \"{endpoint}\"\naddress = \"{address}\"\n"
            );
        }
        Config::parse(Path::new("t.toml"), &s, None).expect("valid test config")
    }

    /// Members `a` (this host, holding key `own`) and `b` with key `b`.
    fn keyed(own: u8, a: u8, b: u8) -> Config {
        let public = |n: u8| PrivateKey::from_bytes([n; 32]).public();
        let s = format!(
            "[node]\n[interface]\nsubnet = \"10.250.0.0/24\"\n[allow]\npresets = [\"vrrp\"]\n\
             [[member]]\nname = \"a\"\nendpoint = \"192.0.2.1:7112\"\naddress = \"10.250.0.1\"\npublic_key = \"{}\"\n\
             [[member]]\nname = \"b\"\nendpoint = \"192.0.2.2:7112\"\naddress = \"10.250.0.2\"\npublic_key = \"{}\"\n",
            public(a),
            public(b)
        );
        Config::parse(
            Path::new("t.toml"),
            &s,
            Some(&PrivateKey::from_bytes([own; 32])),
        )
        .expect("valid test config")
    }

    const B: (&str, &str, &str) = ("b", "192.0.2.2:7112", "10.250.0.2");
    const C: (&str, &str, &str) = ("c", "192.0.2.3:7112", "10.250.0.3");

    #[test]
    fn peers_added_removed_changed() {
        let old = cfg("", &[B, C], "\"vrrp\"");
        let moved = ("c", "192.0.2.33:7112", "10.250.0.3");
        let d = ("d", "d.example:7112", "10.250.0.4");
        let new = cfg("", &[moved, d], "\"vrrp\"");
        let p = plan(&old, &new).expect("reloadable");
        assert_eq!(p.added, ["d"]);
        assert_eq!(p.removed, ["b"]);
        assert_eq!(p.changed, ["c"]);
        assert!(!p.settings_changed);
        assert!(plan(&old, &old).expect("same").is_empty());
    }

    /// A path added to a member, or the same paths in another order (the
    /// first is the one used before any is known healthy), change it.
    #[test]
    fn a_members_new_path_changes_it() {
        let old = cfg("", &[B, C], "\"vrrp\"");
        let mut new = old.clone();
        let path = crate::config::Endpoint::Addr("198.51.100.2:7112".parse().expect("addr"));
        new.peers[0].endpoints.push(path);
        let p = plan(&old, &new).expect("reloadable");
        assert_eq!(p.changed, ["b"]);
        let mut reordered = new.clone();
        reordered.peers[0].endpoints.reverse();
        assert_eq!(plan(&new, &reordered).expect("reloadable").changed, ["b"]);
    }

    #[test]
    fn settings_are_reloadable() {
        let old = cfg("", &[B], "\"vrrp\"");
        let new = cfg("inject_rate_limit = 100", &[B], "\"vrrp\", \"heartbeat\"");
        let p = plan(&old, &new).expect("reloadable");
        assert!(p.settings_changed);
        assert!(p.added.is_empty() && p.changed.is_empty());
    }

    #[test]
    fn redundancy_and_path_mode_are_reloadable() {
        let old = cfg("", &[B], "\"vrrp\"");
        for change in [
            "redundancy = 3",
            "redundancy_spacing = 0.02",
            "path_mode = \"best\"",
        ] {
            let p = plan(&old, &cfg(change, &[B], "\"vrrp\"")).expect(change);
            assert!(p.settings_changed, "{change}");
            assert!(p.added.is_empty() && p.changed.is_empty(), "{change}");
        }
    }

    #[test]
    fn realtime_priority_and_lock_memory_need_a_restart() {
        let old = cfg("", &[B], "\"vrrp\"");
        let new = cfg(
            "realtime_priority = 10\nlock_memory = true",
            &[B],
            "\"vrrp\"",
        );
        let e = plan(&old, &new).expect_err("needs a restart");
        assert_eq!(e.keys, ["node.realtime_priority", "node.lock_memory"]);
        let running = cfg("realtime_priority = 10", &[B], "\"vrrp\"");
        let e = plan(&running, &cfg("realtime_priority = 20", &[B], "\"vrrp\""))
            .expect_err("another priority");
        assert_eq!(e.keys, ["node.realtime_priority"]);
        assert!(plan(&running, &running).expect("same").is_empty());
    }

    #[test]
    fn interface_and_socket_changes_need_a_restart() {
        let old = cfg("", &[B], "\"vrrp\"");
        let new = cfg(
            "listen = \"0.0.0.0:7113\"\nuser = \"daemon\"",
            &[B],
            "\"vrrp\"",
        );
        let e = plan(&old, &new).expect_err("needs a restart");
        assert_eq!(e.keys, ["node.listen", "node.user"]);
        let e = e.to_string();
        assert!(e.contains("node.listen, node.user changed"), "{e}");
        assert!(e.contains("restart"), "{e}");
    }

    #[test]
    fn a_members_new_key_reloads_but_this_hosts_needs_a_restart() {
        let old = keyed(1, 1, 2);
        let p = plan(&old, &keyed(1, 1, 3)).expect("a peer's key reloads");
        assert_eq!(p.changed, ["b"]);
        assert!(p.added.is_empty() && p.removed.is_empty());
        let e = plan(&old, &keyed(4, 4, 2)).expect_err("this host's key");
        assert_eq!(e.keys, ["this host's key (its member's public_key)"]);
    }
}
