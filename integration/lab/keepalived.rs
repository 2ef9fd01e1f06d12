//! Stock keepalived in a lab host: one VRRP instance whose adverts go out
//! on `mcast0` (through the relay) or on `eth0` (native), moving a VIP on
//! eth0. Each instance has its own config, pid files and log.

use std::fs;
use std::time::Duration;

use super::{Lab, signal, wait_for};

pub const PROGRAMS: &[(&str, &str)] = &[("keepalived", "keepalived")];

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Vrrp {
    /// 2 or 3.
    pub version: u8,
    /// Seconds between adverts (VRRPv3 allows centiseconds).
    pub advert: f64,
    pub ipv6: bool,
    /// `mcast0` through the relay, `eth0` for native multicast.
    pub interface: &'static str,
}

impl Vrrp {
    pub fn v3(advert: f64) -> Vrrp {
        Vrrp {
            version: 3,
            advert,
            ipv6: false,
            interface: "mcast0",
        }
    }

    pub fn vip(&self) -> &'static str {
        if self.ipv6 {
            super::vip::VIP6
        } else {
            super::vip::VIP4
        }
    }

    /// RFC 5798 / 3768 Master_Down_Interval of a backup with `priority`:
    /// 3 adverts plus a skew that lets higher priorities take over first.
    pub fn master_down(&self, priority: u8) -> Duration {
        let skew = (256.0 - f64::from(priority)) / 256.0;
        let skew = if self.version == 3 {
            skew * self.advert
        } else {
            skew
        };
        Duration::from_secs_f64(3.0 * self.advert + skew)
    }

    fn config(&self, host: usize, priority: u8) -> String {
        global_defs(host) + &self.instance("lab", 51, priority, self.vip())
    }

    /// One `vrrp_instance` block: virtual router `vrid` at `priority`,
    /// adverts on this [`Vrrp`]'s interface, moving `vip` on eth0.
    pub fn instance(&self, name: &str, vrid: u8, priority: u8, vip: &str) -> String {
        // The VIPs share eth0's underlay subnet, so they take its prefix.
        let prefix = if self.ipv6 { 64 } else { 24 };
        format!(
            "vrrp_instance {name} {{\n  state BACKUP\n  interface {iface}\n  virtual_router_id {vrid}\n  \
             version {ver}\n  priority {priority}\n  advert_int {adv}\n  \
             virtual_ipaddress {{\n    {vip}/{prefix} dev eth0\n  }}\n}}\n",
            iface = self.interface,
            ver = self.version,
            adv = self.advert,
        )
    }
}

/// The `global_defs` every lab keepalived starts with.
pub fn global_defs(host: usize) -> String {
    format!("global_defs {{\n  router_id h{host}\n  enable_script_security\n}}\n")
}

/// A running keepalived: the parent and, once started, its VRRP child.
pub struct Keepalived {
    pub host: usize,
    pub parent: u32,
    vrrp_pid_file: std::path::PathBuf,
}

impl Lab {
    /// keepalived (VRRPv3, advert_int 0.1) on every host at `priorities`
    /// (host h at `priorities[h - 1]`), once the relays run; returns when
    /// host 1 alone has held the VIP for a master-down time.
    pub fn start_keepalived_converged(&mut self, priorities: &[u8]) -> (Vrrp, Vec<Keepalived>) {
        let vrrp = Vrrp::v3(0.1);
        let kas = self
            .host_ids()
            .map(|h| self.start_keepalived(h, vrrp, priorities[h - 1]))
            .collect();
        let all: Vec<usize> = self.host_ids().collect();
        let lowest = priorities.iter().copied().min().unwrap_or(1);
        let stable = vrrp.master_down(lowest) + Duration::from_millis(500);
        super::vip::converge_on(self, vrrp.vip(), &all, 1, stable, Duration::from_secs(30));
        (vrrp, kas)
    }

    /// Starts keepalived (VRRP only, no fork, logging to its own file).
    pub fn start_keepalived(&mut self, host: usize, vrrp: Vrrp, priority: u8) -> Keepalived {
        self.start_keepalived_conf(host, &vrrp.config(host, priority))
    }

    /// Starts keepalived with the configuration `text`.
    pub fn start_keepalived_conf(&mut self, host: usize, text: &str) -> Keepalived {
        super::require_programs(PROGRAMS);
        let conf = self.path(&format!("keepalived{host}.conf"));
        fs::write(&conf, text).expect("cannot write keepalived.conf");
        let pid = self.path(&format!("keepalived{host}.pid"));
        let vrrp_pid = self.path(&format!("keepalived{host}.vrrp.pid"));
        let _ = fs::remove_file(&vrrp_pid);
        let log = self.path(&format!("keepalived{host}.log"));
        let (c, p, v) = (
            conf.display().to_string(),
            pid.display().to_string(),
            vrrp_pid.display().to_string(),
        );
        let parent = self.spawn(
            host,
            "keepalived",
            &[
                "keepalived",
                "-n",
                "-l",
                "-D",
                "--vrrp",
                "-f",
                &c,
                "-p",
                &p,
                "-r",
                &v,
            ],
            &log,
        );
        Keepalived {
            host,
            parent,
            vrrp_pid_file: vrrp_pid,
        }
    }
}

impl Keepalived {
    /// The pid of keepalived's VRRP child, once it has written it.
    pub fn vrrp_pid(&self) -> u32 {
        self.vrrp_child()
    }

    fn vrrp_child(&self) -> u32 {
        wait_for(
            "keepalived's VRRP child pid file",
            Duration::from_secs(5),
            || {
                fs::read_to_string(&self.vrrp_pid_file)
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
            },
        )
    }

    /// Kills keepalived like a crash: the parent frozen first so it cannot
    /// clean up or respawn, then the VRRP child and the parent SIGKILLed.
    /// No priority-0 advert goes out and the VIP stays on the dead host.
    pub fn crash(self, lab: &mut Lab) {
        let child = self.vrrp_child();
        signal(self.parent, libc::SIGSTOP);
        signal(child, libc::SIGKILL);
        signal(self.parent, libc::SIGKILL);
        // Reaped, or its pid would look alive to the next keepalived.
        lab.reap(self.parent);
    }

    /// Stops keepalived the normal way (SIGTERM: it releases the VIP).
    pub fn stop(self, lab: &mut Lab) {
        signal(self.parent, libc::SIGTERM);
        lab.reap(self.parent);
    }
}
