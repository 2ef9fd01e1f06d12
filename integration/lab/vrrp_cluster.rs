//! A big cluster with several virtual routers: the relay on every host of
//! a lab and one keepalived per host running `instances` VRRP instances,
//! each with its own VRID and VIP on eth0. Priorities are rotated so each
//! instance prefers a different host, its backups lining up behind it host
//! after host (h5, h6, ... h16, h1, ... h4 for an instance preferring h5):
//! the next in line is always known. The scale test and the scale
//! benchmark build the same cluster from here.

use std::thread::sleep;
use std::time::{Duration, Instant};

use super::keepalived::{self, Keepalived, Vrrp};
use super::vip::{self, Added, Watch};
use super::{Lab, RelayOptions};

/// VRID of instance 0; instance i has `FIRST_VRID + i`.
const FIRST_VRID: u8 = 61;
/// VIP of instance i: 10.77.0.(FIRST_VIP_OCTET + i), above the hosts'
/// addresses and the lab's single VIP (see [`super::MAX_HOSTS`]).
const FIRST_VIP_OCTET: usize = 101;
/// The preferred master's priority; below 255, which VRRP reserves for
/// the owner of the address.
const TOP_PRIORITY: usize = 250;

/// What one crash of a master did (see [`VrrpCluster::crash_master`]).
#[derive(Debug)]
pub struct Failover {
    /// The instance whose master was killed.
    pub instance: usize,
    /// The host whose keepalived was killed.
    pub from: usize,
    /// The first VIP that appeared on a host afterwards.
    pub first: Added,
    /// From the kill to `first`.
    pub took: Duration,
    /// Every VIP that appeared after `first` until the cluster had time to
    /// settle: a flapping or moving instance. Empty when only the crashed
    /// instance moved, once.
    pub others: Vec<Added>,
}

pub struct VrrpCluster {
    pub vrrp: Vrrp,
    pub hosts: usize,
    /// The VIP of each instance.
    pub vips: Vec<String>,
    /// keepalived of host h at h - 1; `None` once crashed.
    kas: Vec<Option<Keepalived>>,
}

impl VrrpCluster {
    /// Starts the relays (preset `vrrp`, as the keepalived tests use
    /// them) on every host of `lab`, waits until each has confirmed every
    /// peer, then keepalived on every host with `instances` VRRP instances
    /// advertising every `advert` seconds through the relay.
    pub fn start(lab: &mut Lab, instances: usize, advert: f64) -> VrrpCluster {
        assert!(
            (1..=lab.hosts).contains(&instances) && FIRST_VIP_OCTET + instances <= 255,
            "{instances} instances on {} hosts: each instance needs its own preferred host and VIP",
            lab.hosts
        );
        super::require_programs(keepalived::PROGRAMS);
        lab.start_relays(RelayOptions::default());
        lab.wait_relays_confirmed(Duration::from_secs(20));
        let mut cluster = VrrpCluster {
            vrrp: Vrrp::v3(advert),
            hosts: lab.hosts,
            vips: (0..instances)
                .map(|i| format!("10.77.0.{}", FIRST_VIP_OCTET + i))
                .collect(),
            kas: Vec::new(),
        };
        for h in lab.host_ids() {
            let conf = cluster.keepalived_conf(h);
            let ka = lab.start_keepalived_conf(h, &conf);
            cluster.kas.push(Some(ka));
        }
        cluster
    }

    pub fn instances(&self) -> usize {
        self.vips.len()
    }

    pub fn vrid(&self, instance: usize) -> u8 {
        FIRST_VRID + instance as u8
    }

    /// The host instance `instance` prefers: the instances spread evenly
    /// over the hosts.
    pub fn preferred(&self, instance: usize) -> usize {
        1 + instance * self.hosts / self.instances()
    }

    /// Host `h`'s priority in `instance`: the preferred host highest, then
    /// each following host one step lower. The step keeps every priority
    /// distinct and at least 10 apart up to 24 hosts, so that backups'
    /// master-down intervals differ by 10/256 of an advert interval or more
    /// and the next in line wins a takeover clearly.
    pub fn priority(&self, instance: usize, h: usize) -> u8 {
        let step = (240 / self.hosts).min(50);
        let rank = (h + self.hosts - self.preferred(instance)) % self.hosts;
        u8::try_from(TOP_PRIORITY - step * rank).expect("priorities fit in a u8")
    }

    /// The host that should be master of `instance` now: the live host
    /// with the highest priority.
    pub fn master(&self, instance: usize) -> usize {
        (1..=self.hosts)
            .filter(|h| self.kas[h - 1].is_some())
            .max_by_key(|h| self.priority(instance, *h))
            .expect("a cluster with no keepalived left")
    }

    /// How long every VIP must stay on one host before the cluster counts
    /// as settled: the slowest backup's master-down interval and a margin.
    pub fn settle(&self) -> Duration {
        let lowest = TOP_PRIORITY - (240 / self.hosts).min(50) * (self.hosts - 1);
        self.vrrp
            .master_down(u8::try_from(lowest).expect("priorities fit in a u8"))
            + Duration::from_millis(500)
    }

    /// Waits until every instance's VIP is on [`VrrpCluster::master`] and
    /// nowhere else, all at once, for [`VrrpCluster::settle`].
    pub fn converge(&self, lab: &Lab, timeout: Duration) {
        let wanted: Vec<(&str, usize)> = (0..self.instances())
            .map(|i| (self.vips[i].as_str(), self.master(i)))
            .collect();
        let all: Vec<usize> = lab.host_ids().collect();
        vip::converge_on_each(lab, &wanted, &all, self.settle(), timeout);
    }

    /// The hosts holding each instance's VIP now.
    pub fn holders(&self, lab: &Lab) -> Vec<Vec<usize>> {
        let vips: Vec<&str> = self.vips.iter().map(String::as_str).collect();
        vip::holders_each(lab, &vips)
    }

    /// Kills the keepalived of `instance`'s master like a crash (`kill -9`,
    /// see [`Keepalived::crash`]) and times the first VIP to appear
    /// elsewhere; then watches for [`VrrpCluster::settle`] more for any
    /// other VIP moving. The dead host's VIP, which a crash leaves behind,
    /// is removed as its reboot would.
    pub fn crash_master(&mut self, lab: &mut Lab, instance: usize, timeout: Duration) -> Failover {
        let from = self.master(instance);
        let vips: Vec<&str> = self.vips.iter().map(String::as_str).collect();
        let watch = Watch::start_each(lab, &vips);
        let ka = self.kas[from - 1]
            .take()
            .expect("the master's keepalived runs");
        ka.crash(lab);
        let killed = Instant::now();
        let first = watch.next_added(&[from], timeout).unwrap_or_else(|| {
            panic!("no host took over any VIP within {timeout:?} of h{from}'s crash")
        });
        sleep(self.settle());
        let others = watch.drain();
        let stale = format!("{}/24", self.vips[instance]);
        lab.exec(from, &["ip", "addr", "del", &stale, "dev", "eth0"]);
        Failover {
            instance,
            from,
            first,
            took: first.at.duration_since(killed),
            others,
        }
    }

    /// keepalived.conf of host `h`: every instance, adverts on mcast0.
    fn keepalived_conf(&self, h: usize) -> String {
        let mut conf = keepalived::global_defs(h);
        for (i, vip) in self.vips.iter().enumerate() {
            let vrid = self.vrid(i);
            conf += &self
                .vrrp
                .instance(&format!("vr{vrid}"), vrid, self.priority(i, h), vip);
        }
        conf
    }
}
