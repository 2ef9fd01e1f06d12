//! The shipped configurations in examples/, made to run in the lab: each
//! example relay config is the cluster file of a 3-node cluster, so the
//! lab's file is the example with each member's endpoint and public key
//! replaced by its lab host's (found by the member's overlay address:
//! 10.250.0.N is host N) and the lab's status socket, the same bytes for
//! every host; the failover tools' examples are used as they are but for
//! node names and priorities. The tests that use them are what keeps the
//! examples from rotting.

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

fn last_octet(v4: &str) -> usize {
    v4.rsplit('.')
        .next()
        .and_then(|o| o.parse().ok())
        .unwrap_or_else(|| panic!("not an IPv4 address: {v4}"))
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

    /// Writes the cluster file (and every host's copy) from the example
    /// relay config `rel`, with the lab's endpoints and keys.
    pub fn configure_relays_from_example(&mut self, rel: &str) {
        // Makes the keys (and a default cluster file, overwritten below).
        self.configure_relays(super::RelayOptions::default());
        let mut cfg = Value::Table(
            toml::from_str::<toml::Table>(&text(rel))
                .unwrap_or_else(|e| panic!("examples/{rel}: {e}")),
        );
        cfg["node"].as_table_mut().expect("[node]").insert(
            "status_socket".into(),
            self.cluster_status_socket().display().to_string().into(),
        );
        let members = cfg
            .get_mut("member")
            .and_then(Value::as_array_mut)
            .unwrap_or_else(|| panic!("examples/{rel} has no [[member]]"));
        let mut hosts: Vec<usize> = Vec::new();
        for m in members.iter_mut() {
            let m = m.as_table_mut().expect("a [[member]] table");
            let h = last_octet(
                m.get("address")
                    .and_then(Value::as_str)
                    .expect("member.address"),
            );
            assert!(
                self.host_ids().any(|id| id == h) && !hosts.contains(&h),
                "examples/{rel}: member address 10.250.0.{h} is not one lab host's"
            );
            hosts.push(h);
            m.insert("endpoint".into(), format!("10.77.0.{h}:7112").into());
            m.insert("public_key".into(), self.public_key(h).into());
        }
        assert_eq!(
            hosts.len(),
            self.hosts,
            "examples/{rel} describes {} members",
            hosts.len()
        );
        let out = toml::to_string(&cfg).expect("serialise a relay config");
        self.write_cluster_file(&out);
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
