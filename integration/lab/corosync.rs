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
    /// Starts corosync in the foreground with `conf` as its corosync.conf.
    pub fn start_corosync_conf(&mut self, host: usize, conf: &str) -> Corosync {
        super::require_programs(PROGRAMS);
        let base = self.path(&format!("corosync{host}"));
        let dirs = ["etc", "lib", "run", "log"].map(|d| base.join(d));
        for d in &dirs {
            fs::create_dir_all(d).expect("cannot create corosync dirs");
        }
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
        let pid = self.spawn_private(host, "corosync", &script, false, &log);
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
