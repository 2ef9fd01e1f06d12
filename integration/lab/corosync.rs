//! Stock corosync 3 (`transport: udp`) in a lab host, in a private mount
//! namespace so each node has its own /etc/corosync, /var/lib/corosync,
//! /run and /var/log.

use std::fs;

use super::Lab;

pub const PROGRAMS: &[(&str, &str)] = &[
    ("corosync", "corosync"),
    ("corosync-quorumtool", "corosync"),
];

pub struct Corosync {
    pub host: usize,
    pub pid: u32,
}

impl Lab {
    /// Starts corosync in the foreground with a 3-node udp ring on the
    /// overlay subnet; `netmtu` must match mcast0's MTU.
    pub fn start_corosync(&mut self, host: usize, netmtu: u32) -> Corosync {
        super::require_programs(PROGRAMS);
        let base = self.path(&format!("corosync{host}"));
        let dirs = ["etc", "lib", "run", "log"].map(|d| base.join(d));
        for d in &dirs {
            fs::create_dir_all(d).expect("cannot create corosync dirs");
        }
        let nodes: String = self
            .host_ids()
            .map(|h| {
                format!("  node {{\n    name: h{h}\n    nodeid: {h}\n    ring0_addr: 10.250.0.{h}\n  }}\n")
            })
            .collect();
        let conf = format!(
            "totem {{\n  version: 2\n  cluster_name: lab\n  transport: udp\n  \
             crypto_cipher: none\n  crypto_hash: none\n  netmtu: {netmtu}\n  \
             interface {{\n    linknumber: 0\n    bindnetaddr: 10.250.0.0\n    \
             mcastaddr: 239.192.250.1\n    mcastport: 5405\n    ttl: 1\n  }}\n}}\n\
             nodelist {{\n{nodes}}}\n\
             quorum {{\n  provider: corosync_votequorum\n}}\n\
             logging {{\n  to_stderr: yes\n  to_syslog: no\n  timestamp: on\n}}\n"
        );
        fs::write(dirs[0].join("corosync.conf"), conf).expect("cannot write corosync.conf");
        let script = format!(
            "mount --bind {etc} /etc/corosync && mount --bind {lib} /var/lib/corosync && \
             mount --bind {run} /run && mount --bind {log} /var/log && exec corosync -f",
            etc = dirs[0].display(),
            lib = dirs[1].display(),
            run = dirs[2].display(),
            log = dirs[3].display(),
        );
        let log = self.path(&format!("corosync{host}.log"));
        let pid = self.spawn(
            host,
            "corosync",
            &[
                "unshare",
                "-m",
                "--propagation",
                "private",
                "sh",
                "-c",
                &script,
            ],
            &log,
        );
        Corosync { host, pid }
    }

    /// `corosync-quorumtool -s` as seen by the node's corosync.
    pub fn corosync_quorum(&self, c: &Corosync) -> String {
        let pid = c.pid.to_string();
        let out = self.try_exec(
            c.host,
            &["nsenter", "-t", &pid, "-m", "corosync-quorumtool", "-s"],
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }
}
