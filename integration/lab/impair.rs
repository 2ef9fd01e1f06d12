//! A bad cloud, made on purpose: this kernel has no netem, so loss and
//! outages are nftables rules in the cloud namespace (random loss with
//! `numgen`, burst outages by toggling a drop-everything rule from a
//! thread), a second path is a second bridge `br1` with an `eth1` in each
//! host (10.78.0.h/24), a dead path is a blackout of some hosts' ports on
//! one bridge, and a starved host is a busy loop on every core at normal
//! priority. Each impairment has its own nftables table, so setting one
//! never disturbs another and clearing one is one `delete table`.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{JoinHandle, sleep};
use std::time::{Duration, Instant};

use super::{Lab, nft, sh};

/// One of the cloud's bridges: `br0` (eth0, 10.77.0.h, every lab) or
/// `br1` (eth1, 10.78.0.h, after [`Lab::add_second_path`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bridge {
    Br0,
    Br1,
}

impl Bridge {
    pub fn name(self) -> &'static str {
        match self {
            Bridge::Br0 => "br0",
            Bridge::Br1 => "br1",
        }
    }

    /// The cloud-side name of host `h`'s port on this bridge.
    pub fn port(self, h: usize) -> String {
        match self {
            Bridge::Br0 => format!("v{h}"),
            Bridge::Br1 => format!("w{h}"),
        }
    }

    /// Every port of this bridge, as an nft name pattern: this kernel's
    /// bridge hooks cannot match `meta ibrname`, but each bridge's ports
    /// have their own first letter (`v1`.., `vx` on br0; `w1`.. on br1).
    fn ports(self) -> &'static str {
        match self {
            Bridge::Br0 => "\"v*\"",
            Bridge::Br1 => "\"w*\"",
        }
    }

    /// Host `h`'s underlay address on this bridge's network.
    pub fn address(self, h: usize) -> String {
        match self {
            Bridge::Br0 => format!("10.77.0.{h}"),
            Bridge::Br1 => format!("10.78.0.{h}"),
        }
    }
}

/// xorshift64*: a seeded, replayable schedule; no statistical claims.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // Any seed, 0 included, gives a non-zero state.
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `lo..=hi` (for the small ranges schedules use).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// A duration uniform in `lo..=hi`, to the millisecond.
    pub fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(self.range(lo, hi))
    }
}

/// The table of one impairment on one bridge.
fn table(what: &str, bridge: Bridge) -> String {
    format!("lab_{what}_{}", bridge.name())
}

impl Lab {
    /// Adds the second path: bridge `br1` in the cloud and, in each of
    /// `hosts`, `eth1` with 10.78.0.h/24 on it. Unlike `br0` it carries
    /// only what the relays send there, so it needs no multicast rule.
    pub fn add_second_path(&self, hosts: &[usize]) {
        let cloud = self.cloud();
        sh(&[
            "ip",
            "-n",
            &cloud,
            "link",
            "add",
            "br1",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ]);
        sh(&["ip", "-n", &cloud, "link", "set", "br1", "up"]);
        for &h in hosts {
            let ns = self.ns(h);
            let port = Bridge::Br1.port(h);
            sh(&[
                "ip", "-n", &cloud, "link", "add", &port, "type", "veth", "peer", "name", "eth1",
                "netns", &ns,
            ]);
            sh(&[
                "ip", "-n", &cloud, "link", "set", &port, "master", "br1", "up",
            ]);
            let addr = format!("{}/24", Bridge::Br1.address(h));
            sh(&["ip", "-n", &ns, "addr", "add", &addr, "dev", "eth1"]);
            sh(&["ip", "-n", &ns, "link", "set", "eth1", "up"]);
        }
    }

    /// Drops `per_mille` of the frames `bridge` forwards, each frame on
    /// its own chance (a flooded frame once per port it goes out of);
    /// replaces the bridge's previous loss.
    pub fn set_loss(&self, bridge: Bridge, per_mille: u32) {
        self.clear_loss(bridge);
        if per_mille == 0 {
            return;
        }
        let t = table("loss", bridge);
        nft(
            &self.cloud(),
            &format!(
                "table bridge {t} {{\n chain forward {{\n  type filter hook forward priority -150;\n  \
                 iifname {p} numgen random mod 1000 < {per_mille} counter drop\n }}\n}}\n",
                p = bridge.ports()
            ),
        );
    }

    /// Ends [`Lab::set_loss`] on `bridge` (nothing if there was none).
    pub fn clear_loss(&self, bridge: Bridge) {
        self.delete_table(&table("loss", bridge));
    }

    /// Frames [`Lab::set_loss`] dropped on `bridge` since it was set.
    pub fn loss_drops(&self, bridge: Bridge) -> u64 {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.cloud(), "nft", "list", "table"])
            .args(["bridge", &table("loss", bridge)])
            .output();
        out.map(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.split_whitespace()
                .skip_while(|w| *w != "packets")
                .nth(1)
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        })
        .unwrap_or(0)
    }

    /// Drops every frame from or to `hosts` on `bridge` until
    /// [`Lab::end_blackout`]: that path is dead for those hosts, the other
    /// bridge and the other hosts unaffected.
    pub fn blackout(&self, bridge: Bridge, hosts: &[usize]) {
        let t = table("blackout", bridge);
        self.delete_table(&t);
        let ports: Vec<String> = hosts
            .iter()
            .map(|h| format!("\"{}\"", bridge.port(*h)))
            .collect();
        let set = ports.join(", ");
        nft(
            &self.cloud(),
            &format!(
                "table bridge {t} {{\n chain forward {{\n  type filter hook forward priority -190;\n  \
                 iifname {{ {set} }} drop\n  oifname {{ {set} }} drop\n }}\n}}\n"
            ),
        );
    }

    /// Undoes [`Lab::blackout`] on `bridge`.
    pub fn end_blackout(&self, bridge: Bridge) {
        self.delete_table(&table("blackout", bridge));
    }

    /// Starts burst outages on `bridge`: from a thread, after a gap drawn
    /// from `gap` (ms, inclusive), everything the bridge forwards is
    /// dropped for a time drawn from `outage` (ms), again and again, the
    /// times from `seed`, until the returned [`Bursts`] is stopped or
    /// dropped.
    pub fn start_bursts(
        &self,
        bridge: Bridge,
        seed: u64,
        gap: (u64, u64),
        outage: (u64, u64),
    ) -> Bursts {
        let cloud = self.cloud();
        let t = table("burst", bridge);
        let stop = Arc::new(AtomicBool::new(false));
        let count = Arc::new(AtomicU64::new(0));
        let (s, c) = (stop.clone(), count.clone());
        let thread = std::thread::spawn(move || {
            let mut rng = Rng::new(seed);
            let mut down = Duration::ZERO;
            let rule = format!(
                "table bridge {t} {{\n chain forward {{\n  type filter hook forward priority -180;\n  \
                 iifname {} counter drop\n }}\n}}\n",
                bridge.ports()
            );
            while !s.load(Ordering::Relaxed) {
                if !sleep_unless(&s, rng.millis(gap.0, gap.1)) {
                    break;
                }
                let length = rng.millis(outage.0, outage.1);
                nft(&cloud, &rule);
                let began = Instant::now();
                // The outage runs to its end even when stopped meanwhile,
                // so every counted outage has its drawn length.
                sleep(length);
                delete_table_in(&cloud, &t);
                down += began.elapsed();
                c.fetch_add(1, Ordering::Relaxed);
            }
            down
        });
        Bursts {
            stop,
            count,
            thread: Some(thread),
        }
    }

    fn delete_table(&self, t: &str) {
        delete_table_in(&self.cloud(), t);
    }
}

/// Deletes bridge table `t` in `ns` if it exists.
fn delete_table_in(ns: &str, t: &str) {
    // `destroy` would not fail on a missing table, but nft 1.0.6 lacks it;
    // a failed delete of a table that is not there is the same.
    let _ = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "delete", "table", "bridge", t])
        .stderr(Stdio::null())
        .output();
}

/// Sleeps `d` in small steps; false if `stop` was set meanwhile.
fn sleep_unless(stop: &AtomicBool, d: Duration) -> bool {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        sleep((end - Instant::now()).min(Duration::from_millis(20)));
    }
    !stop.load(Ordering::Relaxed)
}

/// Running burst outages (see [`Lab::start_bursts`]).
pub struct Bursts {
    stop: Arc<AtomicBool>,
    count: Arc<AtomicU64>,
    thread: Option<JoinHandle<Duration>>,
}

/// What a run of burst outages did.
#[derive(Clone, Copy, Debug, Default)]
pub struct BurstStats {
    pub outages: u64,
    /// Their total length.
    pub down: Duration,
}

impl Bursts {
    /// Outages so far.
    pub fn outages(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Stops after the current outage, if any, and says what ran.
    pub fn stop(mut self) -> BurstStats {
        self.finish()
    }

    fn finish(&mut self) -> BurstStats {
        self.stop.store(true, Ordering::Relaxed);
        let down = self
            .thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        BurstStats {
            outages: self.outages(),
            down,
        }
    }
}

impl Drop for Bursts {
    fn drop(&mut self) {
        self.finish();
    }
}

/// CPU starvation: one busy loop per core at normal priority (SCHED_OTHER,
/// nice 0), so every other process on the machine, the lab's daemons
/// included, gets its fair share and no more. Starvation is host-wide
/// whatever the namespace; the loops run in the cloud namespace so the
/// lab's teardown (and the sweep of a killed run's labs) kills them too,
/// and each ends by itself once the process that started it is gone.
pub struct Starve {
    loops: Vec<Child>,
}

impl Starve {
    pub fn start(lab: &Lab) -> Starve {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let loops = (0..cores)
            .map(|_| {
                Command::new("ip")
                    .args(["netns", "exec", &lab.cloud(), "sh", "-c"])
                    .arg("while kill -0 $PPID 2>/dev/null; do :; done")
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("cannot start a busy loop")
            })
            .collect();
        Starve { loops }
    }

    pub fn cores(&self) -> usize {
        self.loops.len()
    }
}

impl Drop for Starve {
    fn drop(&mut self) {
        for c in &mut self.loops {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
