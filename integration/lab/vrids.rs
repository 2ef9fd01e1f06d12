//! More virtual routers than one interface can carry: a VRID is 1-255 per
//! interface and address family, so past 250 VRRP instances a host runs
//! several relay instances ([`Lab::start_relay_instances`], as the systemd
//! template unit `mcast-relay@NAME.service` does), each with its own
//! interface `mcastK`, port 7112 + K and overlay 10.(250+K).0.0/24.
//!
//! Instance i of keepalived advertises on mcast(i / 250) with VRID
//! (i % 250) + 1 and moves one VIP, 10.90.(i / 250).(i % 250 + 1)/32 on
//! eth0 (a range the lab uses for nothing else, inside the namespaces).
//! Host 1 has the highest priority in every instance, host 2 the next, and
//! so on. One keepalived per host runs all instances.

use std::process::Command;

use super::keepalived::{self, Keepalived, Vrrp};
use super::{Lab, RelayOptions};

/// VRIDs per relay instance (interface).
pub const PER_INTERFACE: usize = 250;
/// Host 1's priority; host h has `TOP_PRIORITY - 50 (h - 1)`.
const TOP_PRIORITY: usize = 250;

pub struct Vrids {
    pub advert: f64,
    pub instances: usize,
    pub hosts: usize,
    /// keepalived of host h at h - 1; `None` once crashed.
    pub kas: Vec<Option<Keepalived>>,
}

/// Relay instances (interfaces) `instances` VRRP instances need.
pub fn interfaces(instances: usize) -> usize {
    instances.div_ceil(PER_INTERFACE)
}

impl Vrids {
    /// Starts `interfaces(instances)` relay instances on every host of
    /// `lab` and waits until each has confirmed its peers; keepalived
    /// (`instances` VRRPv3 instances at `advert` seconds) is started host
    /// by host with [`Vrids::start_keepalived`].
    pub fn start(lab: &mut Lab, instances: usize, advert: f64) -> Vrids {
        assert!(lab.hosts <= 5, "priorities 50 apart: 5 hosts at most");
        super::require_programs(keepalived::PROGRAMS);
        let k = interfaces(instances);
        lab.start_relay_instances(k, RelayOptions::default());
        for i in 0..k {
            for h in lab.host_ids() {
                super::wait_for(
                    &format!("h{h}'s relay instance {i} to confirm all its peers"),
                    std::time::Duration::from_secs(30),
                    || {
                        let st = lab.instance_status(h, i);
                        let peers = st["peers"].as_array()?;
                        peers.iter().all(|p| p["confirmed"] == true).then_some(())
                    },
                );
            }
        }
        Vrids {
            advert,
            instances,
            hosts: lab.hosts,
            kas: lab.host_ids().map(|_| None).collect(),
        }
    }

    /// Starts host `h`'s keepalived with every instance.
    pub fn start_keepalived(&mut self, lab: &mut Lab, h: usize) {
        assert!(self.kas[h - 1].is_none(), "h{h}'s keepalived runs");
        let conf = self.keepalived_conf(h);
        self.kas[h - 1] = Some(lab.start_keepalived_conf(h, &conf));
    }

    /// Waits until, in 3 samples in a row, each VIP is on exactly the
    /// hosts `want(instance)` names; returns how long that took, or the
    /// first VIPs elsewhere at `timeout`.
    pub fn wait_holders(
        &self,
        lab: &Lab,
        timeout: std::time::Duration,
        want: impl Fn(usize) -> Vec<usize>,
    ) -> Result<std::time::Duration, Vec<String>> {
        let started = std::time::Instant::now();
        let mut good = 0;
        loop {
            let held = self.holders(lab);
            let off: Vec<String> = held
                .iter()
                .enumerate()
                .filter(|(i, h)| **h != want(*i))
                .map(|(i, h)| format!("{} on {h:?}", Self::vip(i)))
                .collect();
            good = if off.is_empty() { good + 1 } else { 0 };
            if good >= 3 {
                return Ok(started.elapsed());
            }
            if started.elapsed() > timeout {
                return Err(off.into_iter().take(10).collect());
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
    }

    pub fn interfaces(&self) -> usize {
        interfaces(self.instances)
    }

    pub fn vrid(i: usize) -> usize {
        i % PER_INTERFACE + 1
    }

    pub fn vip(i: usize) -> String {
        format!("10.90.{}.{}", i / PER_INTERFACE, i % PER_INTERFACE + 1)
    }

    pub fn priority(h: usize) -> u8 {
        u8::try_from(TOP_PRIORITY - 50 * (h - 1)).expect("priorities fit in a u8")
    }

    /// RFC 5798 Master_Down_Interval of host `h` as a backup.
    pub fn master_down(&self, h: usize) -> std::time::Duration {
        Vrrp::v3(self.advert).master_down(Self::priority(h))
    }

    /// keepalived.conf of host `h`: every instance, no scripts, one
    /// gratuitous ARP per VIP on becoming master (1,000 VIPs at once).
    pub fn keepalived_conf(&self, h: usize) -> String {
        let mut conf = format!(
            "global_defs {{\n  router_id h{h}\n  enable_script_security\n  \
             vrrp_garp_master_delay 0\n  vrrp_garp_master_repeat 1\n}}\n"
        );
        for i in 0..self.instances {
            let (iface, _, _) = Lab::instance_names(i / PER_INTERFACE);
            conf += &format!(
                "vrrp_instance vr{i} {{\n  state BACKUP\n  interface {iface}\n  \
                 virtual_router_id {vrid}\n  version 3\n  priority {prio}\n  advert_int {adv}\n  \
                 virtual_ipaddress {{\n    {vip}/32 dev eth0\n  }}\n}}\n",
                vrid = Self::vrid(i),
                prio = Self::priority(h),
                adv = self.advert,
                vip = Self::vip(i),
            );
        }
        conf
    }

    /// For each instance, the hosts holding its VIP now: one `ip -o addr`
    /// per host.
    pub fn holders(&self, lab: &Lab) -> Vec<Vec<usize>> {
        let mut each = vec![Vec::new(); self.instances];
        for h in lab.host_ids() {
            let out = Command::new("ip")
                .args(["-n", &lab.ns(h), "-o", "-4", "addr", "show", "dev", "eth0"])
                .output()
                .expect("cannot run ip");
            for i in held_instances(&String::from_utf8_lossy(&out.stdout)) {
                if i < self.instances {
                    each[i].push(h);
                }
            }
        }
        each
    }

    /// The pids of host `h`'s keepalived: parent and VRRP child.
    pub fn keepalived_pids(&self, h: usize) -> Vec<u32> {
        self.kas[h - 1]
            .as_ref()
            .map(|k| vec![k.parent, k.vrrp_pid()])
            .unwrap_or_default()
    }
}

/// The instances whose VIP (10.90.a.b) an `ip -o addr` listing holds.
fn held_instances(text: &str) -> Vec<usize> {
    text.split_whitespace()
        .filter_map(|w| {
            let rest = w.strip_prefix("10.90.")?.strip_suffix("/32")?;
            let (a, b) = rest.split_once('.')?;
            let (a, b): (usize, usize) = (a.parse().ok()?, b.parse().ok()?);
            (1..=PER_INTERFACE)
                .contains(&b)
                .then_some(a * PER_INTERFACE + b - 1)
        })
        .collect()
}
