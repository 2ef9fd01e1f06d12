//! Stock Pacemaker on corosync (`transport: udp`) in a lab host. Both keep
//! state in fixed paths and Pacemaker knows a node by its hostname, so each
//! node runs in a private mount and UTS namespace with per-node copies of
//! /run, /dev/shm (libqb's IPC files), /var/lib/pacemaker (owned by
//! hacluster:haclient), /var/lib/corosync, /etc/corosync and
//! /var/log/pacemaker. Pacemaker's helpers leave the process group they
//! start in: the lab's teardown ends every process of the network
//! namespace, and [`Lab::crash_pacemaker`] every process of the node's
//! mount namespace (the relay, outside it, lives on).

use std::fs;
use std::time::Duration;

use super::{Lab, sh};

pub const PROGRAMS: &[(&str, &str)] = &[
    ("corosync", "corosync"),
    ("pacemakerd", "pacemaker"),
    ("crm_mon", "pacemaker-cli-utils"),
    ("crm", "crmsh"),
    (
        "/usr/lib/ocf/resource.d/heartbeat/IPaddr2",
        "resource-agents",
    ),
];

/// A Pacemaker node: `pid` is pacemakerd (the start-up shell exec'd it),
/// whose mount and UTS namespaces the node's commands enter.
pub struct PacemakerNode {
    pub host: usize,
    pub name: String,
    pid: u32,
}

impl Lab {
    /// Starts corosync with `corosync_conf` and then Pacemaker on host
    /// `host`, as node `name` (its hostname).
    pub fn start_pacemaker(
        &mut self,
        host: usize,
        name: &str,
        corosync_conf: &str,
    ) -> PacemakerNode {
        super::require_programs(PROGRAMS);
        let base = self.path(&format!("pacemaker{host}"));
        let dirs =
            ["run", "shm", "lib", "corosync-lib", "corosync-etc", "log"].map(|d| base.join(d));
        for d in &dirs {
            fs::create_dir_all(d).expect("cannot create pacemaker dirs");
        }
        let [run, shm, lib, clib, etc, log] = dirs.map(|d| d.display().to_string());
        // Copies keep the package's ownership (hacluster) and layout.
        sh(&["cp", "-a", "/var/lib/pacemaker/.", &lib]);
        sh(&["cp", "-a", "/var/log/pacemaker/.", &log]);
        sh(&["chmod", "1777", &shm]);
        fs::write(base.join("corosync-etc/corosync.conf"), corosync_conf)
            .expect("cannot write corosync.conf");
        // corosync first (pacemakerd needs it), in the background of the
        // shell that then becomes pacemakerd.
        let script = format!(
            "mount --bind {run} /run && mount --bind {shm} /dev/shm && \
             mount --bind {lib} /var/lib/pacemaker && mount --bind {clib} /var/lib/corosync && \
             mount --bind {etc} /etc/corosync && mount --bind {log} /var/log/pacemaker && \
             hostname {name} && {{ corosync -f & }} && \
             for i in $(seq 100); do corosync-cfgtool -s >/dev/null 2>&1 && break; sleep 0.1; done && \
             exec pacemakerd"
        );
        let log = self.path(&format!("pacemaker{host}.log"));
        let pid = self.spawn_private(host, "pacemaker", &script, true, &log);
        PacemakerNode {
            host,
            name: name.to_string(),
            pid,
        }
    }

    /// Runs `args` inside node `n`'s namespaces: whether it succeeded, and
    /// its stdout and stderr.
    pub fn pacemaker_exec(&self, n: &PacemakerNode, args: &[&str]) -> (bool, String) {
        let pid = n.pid.to_string();
        let mut full = vec!["nsenter", "-t", &pid, "-m", "-u"];
        full.extend_from_slice(args);
        let out = self.try_exec(n.host, &full);
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    }

    /// `crm_mon -1` as node `n` sees the cluster.
    pub fn crm_mon(&self, n: &PacemakerNode) -> String {
        self.pacemaker_exec(n, &["crm_mon", "-1"]).1
    }

    /// Waits until node `n` sees a quorate partition with all of `online`
    /// online; returns the last `crm_mon` output.
    pub fn wait_pacemaker_online(
        &self,
        n: &PacemakerNode,
        online: &[&str],
        timeout: Duration,
    ) -> String {
        let want = format!("Online: [ {} ]", online.join(" "));
        let mut last = String::new();
        let seen = super::wait_for_or_none(timeout, || {
            last = self.crm_mon(n);
            (last.contains("partition with quorum") && last.contains(&want)).then_some(())
        });
        assert!(
            seen.is_some(),
            "{} never saw {want} with quorum:\n{last}",
            n.name
        );
        last
    }

    /// Loads crmsh configuration `text` (`crm configure load update`) on
    /// node `n`, from the lab file `<label>.crm`.
    pub fn crm_configure(&self, n: &PacemakerNode, label: &str, text: &str) {
        let file = self.path(&format!("{label}.crm"));
        fs::write(&file, text).expect("cannot write a crm file");
        let f = file.display().to_string();
        let (ok, out) = self.pacemaker_exec(n, &["crm", "configure", "load", "update", &f]);
        assert!(ok, "crm configure load update failed on {}:\n{out}", n.name);
    }

    /// Kills node `n` like a crash: corosync and every Pacemaker daemon
    /// at once with SIGKILL; what they managed (the VIP) stays where it was.
    pub fn crash_pacemaker(&mut self, n: PacemakerNode) {
        self.crash_private(n.host, n.pid, n.pid);
    }
}
