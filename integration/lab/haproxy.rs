//! Stock HAProxy in a lab host, in the foreground with its own config and
//! log: the service keepalived's `vrrp_script` watches. Stopping it is what
//! `systemctl stop haproxy` does (SIGTERM).

use std::fs;

use super::{Lab, signal};

pub const PROGRAMS: &[(&str, &str)] = &[("haproxy", "haproxy"), ("bash", "bash")];

impl Lab {
    /// Starts HAProxy with `cfg` as its configuration; returns its pid.
    pub fn start_haproxy(&mut self, host: usize, cfg: &str) -> u32 {
        super::require_programs(PROGRAMS);
        let conf = self.path(&format!("haproxy{host}.cfg"));
        fs::write(&conf, cfg).expect("cannot write haproxy.cfg");
        let log = self.path(&format!("haproxy{host}.log"));
        let c = conf.display().to_string();
        // -db: no daemon, no fork, so the pid is HAProxy's own.
        self.spawn(host, "haproxy", &["haproxy", "-db", "-f", &c], &log)
    }

    /// Stops HAProxy started with [`Lab::start_haproxy`] and reaps it.
    pub fn stop_haproxy(&mut self, pid: u32) {
        signal(pid, libc::SIGTERM);
        self.reap(pid);
    }
}
