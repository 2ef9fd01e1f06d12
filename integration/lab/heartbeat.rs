//! Stock heartbeat 3 in a lab host. heartbeat keeps its state in fixed
//! paths (/etc/ha.d, /var/lib/heartbeat with a per-node uuid, /run) and
//! names itself after `uname -n`, so each node runs in a private mount and
//! UTS namespace with per-node copies bound over those paths.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use super::{Lab, sh, wait_for};

pub const PROGRAMS: &[(&str, &str)] = &[
    ("/usr/libexec/heartbeat/heartbeat", "heartbeat"),
    ("cl_status", "heartbeat"),
];

/// A heartbeat node: where its private /run is, to find its pid.
pub struct Heartbeat {
    pub host: usize,
    run: PathBuf,
    /// The shell heartbeat was started from, in the node's namespaces.
    pid: u32,
}

impl Lab {
    /// Starts heartbeat with `ha_cf` as its ha.cf and no resources; node
    /// names are `h<N>` (each node's hostname in its own UTS namespace).
    pub fn start_heartbeat_conf(&mut self, host: usize, ha_cf: &str) -> Heartbeat {
        self.start_heartbeat_resources(host, ha_cf, "")
    }

    /// Like [`Lab::start_heartbeat_conf`], with `haresources` as the
    /// resources heartbeat itself moves (its `crm no` mode).
    pub fn start_heartbeat_resources(
        &mut self,
        host: usize,
        ha_cf: &str,
        haresources: &str,
    ) -> Heartbeat {
        super::require_programs(PROGRAMS);
        let base = self.path(&format!("heartbeat{host}"));
        let (etc, lib, run) = (base.join("etc"), base.join("lib"), base.join("run"));
        for d in [&etc, &lib, &run] {
            fs::create_dir_all(d).expect("cannot create heartbeat dirs");
        }
        // Copies keep the package's ownership (hacluster) and layout.
        sh(&[
            "cp",
            "-a",
            "/var/lib/heartbeat/.",
            &lib.display().to_string(),
        ]);
        sh(&["cp", "-a", "/etc/ha.d/.", &etc.display().to_string()]);
        let rundir = run.join("heartbeat");
        for sub in ["ccm", "crm", "dopd"] {
            fs::create_dir_all(rundir.join(sub)).expect("cannot create heartbeat run dirs");
        }
        sh(&[
            "chown",
            "-R",
            "hacluster:haclient",
            &rundir.display().to_string(),
        ]);
        sh(&["chmod", "-R", "750", &rundir.display().to_string()]);
        fs::write(etc.join("ha.cf"), ha_cf).expect("cannot write ha.cf");
        fs::write(etc.join("haresources"), haresources).expect("cannot write haresources");
        let authkeys = etc.join("authkeys");
        fs::write(&authkeys, "auth 1\n1 sha1 lab-secret\n").expect("cannot write authkeys");
        sh(&["chmod", "600", &authkeys.display().to_string()]);
        let script = format!(
            "mount --bind {run} /run && mount --bind {lib} /var/lib/heartbeat && \
             mount --bind {etc} /etc/ha.d && hostname h{host} && \
             exec /usr/libexec/heartbeat/heartbeat",
            run = run.display(),
            lib = lib.display(),
            etc = etc.display(),
        );
        let log = self.path(&format!("heartbeat{host}.log"));
        let pid = self.spawn_private(host, "heartbeat", &script, true, &log);
        Heartbeat { host, run, pid }
    }

    /// What heartbeat on `hb`'s node says about node `other`
    /// (`active`, `dead`, ...), asked with cl_status inside its namespaces.
    pub fn heartbeat_status(&self, hb: &Heartbeat, other: usize) -> Option<String> {
        let pid = fs::read_to_string(hb.run.join("heartbeat.pid")).ok()?;
        let pid = pid.trim();
        let out = self.try_exec(
            hb.host,
            &[
                "nsenter",
                "-t",
                pid,
                "-m",
                "-u",
                "cl_status",
                "nodestatus",
                &format!("h{other}"),
            ],
        );
        Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Kills heartbeat on `hb`'s node like a crash: every heartbeat process
    /// at once with SIGKILL, the resources left where they were.
    pub fn crash_heartbeat(&mut self, hb: Heartbeat) {
        // The shell it was started from is gone: heartbeat daemonised.
        let master = fs::read_to_string(hb.run.join("heartbeat.pid"))
            .ok()
            .and_then(|p| p.trim().parse().ok())
            .expect("heartbeat's pid file");
        self.crash_private(hb.host, master, hb.pid);
    }

    /// Waits until heartbeat's pid file exists (it daemonises).
    pub fn heartbeat_started(&self, hb: &Heartbeat) {
        wait_for("heartbeat pid file", Duration::from_secs(10), || {
            hb.run.join("heartbeat.pid").exists().then_some(())
        });
    }
}
