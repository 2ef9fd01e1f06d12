//! The shipped configurations in examples/, made to run in the lab: each
//! example relay config is node 1 of a 3-node cluster, so node N's config
//! is derived from it (its own name and addresses, the others as peers at
//! their lab endpoints, the lab's key); the failover tools' examples are
//! used as they are but for node names and priorities. The tests that use
//! them are what keeps the examples from rotting.

use std::fs;
use std::path::Path;

use toml::Value;

use super::Lab;

/// The text of `examples/<rel>`.
pub fn text(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(rel);
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

/// One node as an example relay config describes it.
struct Node {
    name: String,
    v4: String,
    v6: Option<String>,
}

fn last_octet(v4: &str) -> usize {
    v4.rsplit('.')
        .next()
        .and_then(|o| o.parse().ok())
        .unwrap_or_else(|| panic!("not an IPv4 address: {v4}"))
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

impl Lab {
    /// Configures every relay from the example relay config `rel` (see
    /// [`Lab::configure_relays_from_example`]) and starts them all.
    pub fn start_relays_from_example(&mut self, rel: &str) {
        self.configure_relays_from_example(rel);
        for h in self.host_ids() {
            self.start_relay(h);
        }
    }

    /// Writes relay{N}.toml for every host from the example relay config
    /// `rel` (node 1 of 3) and the lab's key.
    pub fn configure_relays_from_example(&mut self, rel: &str) {
        // Writes the key (and default configs, overwritten below).
        self.configure_relays(super::RelayOptions::default());
        let example = Value::Table(
            toml::from_str::<toml::Table>(&text(rel))
                .unwrap_or_else(|e| panic!("examples/{rel}: {e}")),
        );
        let (own, prefix) = str_at(&example, &["interface", "address"])
            .and_then(|a| a.split_once('/'))
            .expect("the example has interface.address");
        let own6 = str_at(&example, &["interface", "address6"]).and_then(|a| a.split_once('/'));
        let mut nodes = vec![Node {
            name: str_at(&example, &["node", "name"])
                .expect("the example has node.name")
                .to_string(),
            v4: own.to_string(),
            v6: own6.map(|(a, _)| a.to_string()),
        }];
        for p in example
            .get("peer")
            .and_then(Value::as_array)
            .expect("the example has peers")
        {
            nodes.push(Node {
                name: str_at(p, &["name"]).expect("peer.name").to_string(),
                v4: str_at(p, &["address"]).expect("peer.address").to_string(),
                v6: str_at(p, &["address6"]).map(str::to_string),
            });
        }
        assert_eq!(
            nodes.len(),
            self.hosts,
            "examples/{rel} describes {} nodes",
            nodes.len()
        );
        for h in self.host_ids() {
            let me = nodes
                .iter()
                .find(|n| last_octet(&n.v4) == h)
                .unwrap_or_else(|| panic!("examples/{rel} has no node .{h}"));
            let mut cfg = example.clone();
            let node = cfg["node"].as_table_mut().expect("[node]");
            node.insert("name".into(), me.name.clone().into());
            node.insert(
                "key_file".into(),
                self.path("key").display().to_string().into(),
            );
            node.insert(
                "status_socket".into(),
                self.status_socket(h).display().to_string().into(),
            );
            let iface = cfg["interface"].as_table_mut().expect("[interface]");
            iface.insert("address".into(), format!("{}/{prefix}", me.v4).into());
            if let (Some(v6), Some((_, p6))) = (&me.v6, own6) {
                iface.insert("address6".into(), format!("{v6}/{p6}").into());
            }
            let peers: Vec<Value> = nodes
                .iter()
                .filter(|n| n.v4 != me.v4)
                .map(|n| {
                    let mut t = toml::Table::new();
                    t.insert("name".into(), n.name.clone().into());
                    t.insert(
                        "endpoint".into(),
                        format!("10.77.0.{}:7112", last_octet(&n.v4)).into(),
                    );
                    t.insert("address".into(), n.v4.clone().into());
                    if let Some(v6) = &n.v6 {
                        t.insert("address6".into(), v6.clone().into());
                    }
                    Value::Table(t)
                })
                .collect();
            cfg.as_table_mut()
                .expect("a table")
                .insert("peer".into(), Value::Array(peers));
            let out = toml::to_string(&cfg).expect("serialise a relay config");
            fs::write(self.path(&format!("relay{h}.toml")), out).expect("write a relay config");
        }
    }
}

/// The example's heartbeat ha.cf with lab node names (`haN` -> `hN`), a
/// log file, and `bcast` true for the broadcast medium the example offers
/// in a comment instead of its multicast line.
pub fn heartbeat_ha_cf(bcast: bool) -> String {
    let t = text("heartbeat/ha.cf");
    let mcast = "mcast mcast0 225.0.0.1 694 1 0";
    assert!(
        t.contains(mcast),
        "examples/heartbeat/ha.cf changed its medium"
    );
    assert!(
        t.contains("# bcast mcast0"),
        "examples/heartbeat/ha.cf lost its bcast line"
    );
    let mut t = t.replace("node ha", "node h");
    if bcast {
        t = t.replace(mcast, "bcast mcast0");
    }
    t + "logfile /var/lib/heartbeat/ha-log\n"
}
