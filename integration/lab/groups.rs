//! Several independent clusters in one lab, so that the rows of a
//! benchmark run at the same time under the very same cloud: each group of
//! hosts has a relay membership of its own (a cluster file listing only its
//! hosts, with its own `[node]` lines), or, for the native baseline, the
//! bridge lets multicast through among its hosts' ports and no others.
//! The lab's one-cluster configuration ([`Lab::configure_relays`]) is left
//! as it is; a group's file goes where [`Lab::start_relay`] reads it.

use std::process::Command;

use super::impair::Bridge;
use super::{Lab, nft, relay_bin};

/// One relay cluster among several in a lab.
#[derive(Clone, Debug, Default)]
pub struct Group {
    pub hosts: Vec<usize>,
    /// Lines appended to `[node]` (`redundancy = 2`, ...).
    pub node: Vec<String>,
    /// Each member has `endpoints` on both bridges (br0 first) instead of
    /// one `endpoint`; needs [`Lab::add_second_path`].
    pub two_paths: bool,
}

impl Lab {
    /// The cluster file of `group`, the same bytes for each of its hosts.
    pub fn group_config(&mut self, group: &Group) -> String {
        let mut s = format!(
            "[node]\nlisten = \"0.0.0.0:7112\"\nstatus_socket = \"{}\"\n",
            self.cluster_status_socket().display()
        );
        for line in &group.node {
            s += line;
            s += "\n";
        }
        s += "\n[interface]\nname = \"mcast0\"\nsubnet = \"10.250.0.0/24\"\nsubnet6 = \"fd00:250::/64\"\n";
        s += "\n[allow]\npresets = [\"vrrp\"]\n";
        for &p in &group.hosts {
            let first = format!("{}:7112", Bridge::Br0.address(p));
            let endpoint = if group.two_paths {
                let second = format!("{}:7112", Bridge::Br1.address(p));
                format!("endpoints = [\"{first}\", \"{second}\"]")
            } else {
                format!("endpoint = \"{first}\"")
            };
            s += &format!(
                "\n[[member]]\nname = \"h{p}\"\n{endpoint}\naddress = \"10.250.0.{p}\"\naddress6 = \"fd00:250::{p}\"\npublic_key = \"{}\"\n",
                self.public_key(p)
            );
        }
        s
    }

    /// Writes `group`'s cluster file as each of its hosts' relay config.
    pub fn write_group_config(&mut self, group: &Group) {
        let text = self.group_config(group);
        for &h in &group.hosts {
            std::fs::write(self.relay_config_path(h), &text)
                .expect("cannot write a group's cluster file");
        }
    }

    /// `None` if this relay binary accepts `group`'s configuration (on its
    /// first host), else what `check` said: a row that needs a key the
    /// binary does not know yet is skipped rather than failing the run.
    pub fn group_config_refused(&mut self, group: &Group) -> Option<String> {
        self.write_group_config(group);
        let h = group.hosts[0];
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns(h)])
            .arg(relay_bin())
            .arg("check")
            .arg("-c")
            .arg(self.relay_config_path(h))
            .arg("-k")
            .arg(self.key_path(h))
            .output()
            .expect("cannot run mcast-relay check");
        // `check` exits 1 for a finding about the host too (this one has
        // no keepalived.conf at /etc): only an error naming a line of the
        // file is a refusal of its keys.
        let file = format!("relay{h}.toml:");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        let refused = text
            .lines()
            .find(|l| l.to_lowercase().contains("error") && l.contains(&file))
            .map(|l| l.trim().to_string());
        if out.status.success() { None } else { refused }
    }

    /// Lets multicast through the cloud among `hosts`' eth0 ports only
    /// (a native cluster beside relayed ones), still dropping it from or
    /// to every other port, as [`Lab::close_bridge`] does for all.
    pub fn allow_multicast_among(&self, hosts: &[usize]) {
        let ports: Vec<String> = hosts
            .iter()
            .map(|h| format!("\"{}\"", Bridge::Br0.port(*h)))
            .collect();
        let set = ports.join(", ");
        self.open_bridge();
        nft(
            &self.cloud(),
            &format!(
                "table bridge mcast_relay_lab {{\n  chain forward {{\n    type filter hook forward priority 0; policy accept;\n    \
                 ether type arp accept\n    icmpv6 type {{ nd-neighbor-solicit, nd-neighbor-advert }} accept\n    \
                 iifname {{ {set} }} oifname {{ {set} }} accept\n    \
                 ether daddr & 01:00:00:00:00:00 == 01:00:00:00:00:00 counter drop\n  }}\n}}\n"
            ),
        );
    }
}
