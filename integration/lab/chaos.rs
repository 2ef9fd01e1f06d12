//! The chaos run: keepalived on 3 hosts through relays with `quorum =
//! true`, and a random schedule, from a seed, of random loss, burst
//! outages, a host partitioned off, a relay killed with -9 and restarted, a
//! relay frozen with SIGSTOP under a watchdog, reloads and floods of junk.
//! A sampler looks at the VIP's holders every 50 ms; the run then judges
//! what it saw against bounds computed from the settings. The integration
//! test (`integration/chaos.rs`) runs it briefly; `cargo bench --bench lossy
//! -- chaos` runs it long. CHAOS_SEED replays a schedule.
//!
//! The lab has no systemd, so the run plays it: each relay gets its own
//! notify socket and `WATCHDOG_USEC` (2 s), and a relay that has not sent
//! `WATCHDOG=1` for that long is killed with SIGKILL and started again.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::flood::Junk;
use super::impair::{Bridge, Bursts, Rng};
use super::keepalived::{Keepalived, Vrrp};
use super::vip::VIP4;
use super::{Lab, RelayOptions, count_lines, signal, status_field};

const PRIORITY: [u8; 3] = [200, 150, 100];
const SAMPLE: Duration = Duration::from_millis(50);
/// `node.keepalive`: quorum must notice a loss well before keepalived's
/// master-down interval (README, quorum).
const KEEPALIVE: f64 = 0.2;
const ADVERT: f64 = 1.0;
/// What systemd would be told (`WatchdogSec=2`).
const WATCHDOG: Duration = Duration::from_secs(2);
/// How long after the faults end one holder must be back: a relay
/// restarted at the very end (its handshakes and confirmation), then a
/// master-down interval and an election.
const RECOVERY: Duration = Duration::from_secs(20);
/// RSS growth allowed for a relay never restarted.
const RSS_SLACK_KB: u64 = 400;

/// One fault of the schedule.
#[derive(Clone, Copy, Debug)]
pub enum Fault {
    /// Random loss, per mille, on the cloud bridge.
    Loss(u32),
    Bursts,
    Partition(usize),
    /// SIGKILL, down for the episode, then started again.
    Kill(usize),
    /// SIGSTOP; the watchdog does the rest.
    Freeze(usize),
    /// SIGHUP with the same file.
    Reload(usize),
    /// Random junk from the outsider at every relay's port.
    Flood,
}

/// One step of the schedule: `fault` from `at` (since the faults began)
/// for `lasts`, with random loss underneath if `loss` says so.
#[derive(Clone, Copy, Debug)]
pub struct Episode {
    pub at: Duration,
    pub lasts: Duration,
    pub fault: Fault,
    pub loss: Option<u32>,
}

impl fmt::Display for Episode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:>7.1} s +{:.1} s {:?}",
            self.at.as_secs_f64(),
            self.lasts.as_secs_f64(),
            self.fault
        )?;
        if let Some(pm) = self.loss {
            write!(f, " with {} % loss", f64::from(pm) / 10.0)?;
        }
        Ok(())
    }
}

/// The schedule of `secs` of faults from `seed`; `steady` is never killed
/// or frozen, so one relay's memory can be compared start to end.
pub fn schedule(seed: u64, secs: u64, steady: usize) -> Vec<Episode> {
    let mut rng = Rng::new(seed);
    let mut at = Duration::from_millis(500);
    let mut out = Vec::new();
    let others: Vec<usize> = (1..=3).filter(|h| *h != steady).collect();
    while at < Duration::from_secs(secs) {
        let host = 1 + rng.range(0, 2) as usize;
        let other = others[rng.range(0, 1) as usize];
        let (fault, lasts) = match rng.range(0, 6) {
            0 => (
                Fault::Loss(rng.range(50, 250) as u32),
                rng.millis(3000, 10000),
            ),
            1 => (Fault::Bursts, rng.millis(3000, 10000)),
            2 => (Fault::Partition(host), rng.millis(2000, 8000)),
            3 => (Fault::Kill(other), rng.millis(300, 3000)),
            4 => (Fault::Freeze(other), WATCHDOG),
            5 => (Fault::Reload(host), rng.millis(500, 2000)),
            _ => (Fault::Flood, rng.millis(2000, 6000)),
        };
        let loss = (!matches!(fault, Fault::Loss(_)) && rng.range(0, 2) == 0)
            .then(|| rng.range(20, 150) as u32);
        out.push(Episode {
            at,
            lasts,
            fault,
            loss,
        });
        at += lasts + rng.millis(1000, 4000);
    }
    out
}

/// The seed: CHAOS_SEED, or one from the clock (printed either way).
pub fn seed() -> u64 {
    std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
}

/// The bounds the run is judged by, from the settings.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    pub master_down: Duration,
    pub quorum_detection: Duration,
    /// The longest two holders may last: one master-down interval plus
    /// the quorum detection time (plus a sample either side).
    pub two_holders: Duration,
}

impl Bounds {
    pub fn new() -> Bounds {
        let vrrp = Vrrp::v3(ADVERT);
        // The slowest backup's Master_Down_Interval: the longest any host
        // can hold the VIP beside another before adverts settle it.
        let master_down = vrrp.master_down(PRIORITY[2]);
        // A peer counts as unreachable 3.5 keepalives after its last echo
        // (src/core/keepalive.rs); the cut may come up to one keepalive
        // after that echo was due.
        let quorum_detection = Duration::from_secs_f64(KEEPALIVE * 4.5);
        Bounds {
            master_down,
            quorum_detection,
            two_holders: master_down + quorum_detection + 2 * SAMPLE,
        }
    }
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds::new()
    }
}

/// What a run saw.
#[derive(Debug, Default)]
pub struct Outcome {
    pub seed: u64,
    pub schedule: Vec<Episode>,
    /// Holders each time they changed, since the faults began.
    pub timeline: Vec<(Duration, Vec<usize>)>,
    pub samples: usize,
    pub longest_two: Duration,
    pub longest_none: Duration,
    /// From the end of the faults to one stable holder, if it came.
    pub recovered_after: Option<Duration>,
    pub holder_at_end: Vec<usize>,
    pub watchdog_restarts: usize,
    pub freezes: usize,
    /// Relays the watchdog restarted without their having been frozen.
    pub unfrozen_restarts: Vec<usize>,
    /// Frozen relays the watchdog never restarted.
    pub never_restarted: Vec<usize>,
    pub kills: usize,
    pub reloads: Vec<String>,
    /// (host, RSS kB at the start, at the end) of relays never restarted.
    pub rss: Vec<(usize, u64, u64)>,
    pub panicked: Vec<usize>,
    pub not_running: Vec<usize>,
    pub faults_secs: f64,
    pub failures: Vec<String>,
}

impl Outcome {
    fn judge(&mut self, bounds: &Bounds) {
        if self.longest_two > bounds.two_holders {
            self.failures.push(format!(
                "two holders for {:?}, more than {:?} (master-down {:?} + quorum detection {:?} + two samples)",
                self.longest_two, bounds.two_holders, bounds.master_down, bounds.quorum_detection
            ));
        }
        match self.recovered_after {
            Some(_) => {}
            None => self.failures.push(format!(
                "no single stable holder within {RECOVERY:?} of the faults' end; at the end {:?}",
                self.holder_at_end
            )),
        }
        if !self.unfrozen_restarts.is_empty() {
            self.failures.push(format!(
                "the watchdog restarted relays that were not frozen (they missed pings): {:?}",
                self.unfrozen_restarts
            ));
        }
        if !self.never_restarted.is_empty() {
            self.failures.push(format!(
                "frozen relays the watchdog never restarted: {:?}",
                self.never_restarted
            ));
        }
        if !self.panicked.is_empty() {
            self.failures
                .push(format!("relays that panicked: {:?}", self.panicked));
        }
        if !self.not_running.is_empty() {
            self.failures.push(format!(
                "relays not running at the end: {:?}",
                self.not_running
            ));
        }
        for &(h, start, end) in &self.rss {
            if end > start + RSS_SLACK_KB {
                self.failures.push(format!(
                    "h{h}'s relay grew from {start} kB to {end} kB RSS (more than {RSS_SLACK_KB} kB)"
                ));
            }
        }
    }

    /// The seed, the schedule and the holders' timeline: what a failure
    /// needs to be understood and replayed.
    pub fn explain(&self) -> String {
        let mut s = format!(
            "chaos seed {} (CHAOS_SEED={} replays it)\nschedule:\n",
            self.seed, self.seed
        );
        for e in &self.schedule {
            s += &format!("  {e}\n");
        }
        s += "VIP holders (since the faults began):\n";
        for (t, h) in &self.timeline {
            s += &format!("  {:>8.2} s {h:?}\n", t.as_secs_f64());
        }
        s
    }

    pub fn summary(&self, bounds: &Bounds) -> String {
        let rss: Vec<String> = self
            .rss
            .iter()
            .map(|(h, a, b)| format!("h{h} {a}->{b} kB"))
            .collect();
        format!(
            "chaos seed {}: {} episodes over {:.0} s, {} samples of the holders; longest two holders {} ms (bound {} ms = master-down {} ms + quorum detection {} ms + 2 samples), longest none {} ms; \
             one holder {:?} {} after the faults; {} kills, {} freezes and {} watchdog restarts, {} reloads; RSS of relays never restarted: {}",
            self.seed,
            self.schedule.len(),
            self.faults_secs,
            self.samples,
            self.longest_two.as_millis(),
            bounds.two_holders.as_millis(),
            bounds.master_down.as_millis(),
            bounds.quorum_detection.as_millis(),
            self.longest_none.as_millis(),
            self.holder_at_end,
            self.recovered_after
                .map_or("never".to_string(), |d| format!("{} ms", d.as_millis())),
            self.kills,
            self.freezes,
            self.watchdog_restarts,
            self.reloads.len(),
            rss.join(", ")
        )
    }

    pub fn failed(&self) -> bool {
        !self.failures.is_empty()
    }
}

/// The holders at each sample, in order.
type Samples = Vec<(Instant, Vec<usize>)>;

/// Samples the VIP's holders every [`SAMPLE`] from a thread of its own,
/// so a relay being restarted never delays a sample.
struct Sampler {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Samples>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    fn start(lab: &Lab) -> Sampler {
        let namespaces: Vec<String> = lab.host_ids().map(|h| lab.ns(h)).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (s, out) = (stop.clone(), samples.clone());
        let token = format!("inet {VIP4}/");
        let thread = std::thread::spawn(move || {
            let mut next = Instant::now();
            while !s.load(Ordering::Relaxed) {
                let held: Vec<usize> = namespaces
                    .iter()
                    .enumerate()
                    .filter(|(_, ns)| {
                        Command::new("ip")
                            .args(["-n", ns, "-o", "addr", "show", "dev", "eth0"])
                            .output()
                            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(&token))
                    })
                    .map(|(i, _)| i + 1)
                    .collect();
                out.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((Instant::now(), held));
                next += SAMPLE;
                let now = Instant::now();
                if next > now {
                    sleep(next - now);
                } else {
                    next = now;
                }
            }
        });
        Sampler {
            stop,
            samples,
            thread: Some(thread),
        }
    }

    fn samples(&self) -> Samples {
        self.samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Plays systemd's watchdog for the lab's relays.
struct Watchdog {
    sockets: Vec<UnixDatagram>,
    paths: Vec<String>,
    last_ping: Vec<Instant>,
    restarts: usize,
}

impl Watchdog {
    fn new(lab: &Lab) -> Watchdog {
        use std::os::unix::fs::PermissionsExt;
        let mut sockets = Vec::new();
        let mut paths = Vec::new();
        for h in lab.host_ids() {
            let path = lab.path(&format!("notify{h}.sock"));
            let sock = UnixDatagram::bind(&path).expect("bind a notify socket");
            sock.set_nonblocking(true)
                .expect("non-blocking notify socket");
            // The relay may have given up root by the time it pings.
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777))
                .expect("chmod the notify socket");
            sockets.push(sock);
            paths.push(path.display().to_string());
        }
        Watchdog {
            sockets,
            paths,
            last_ping: lab.host_ids().map(|_| Instant::now()).collect(),
            restarts: 0,
        }
    }

    fn start(&mut self, lab: &mut Lab, h: usize) {
        let usec = WATCHDOG.as_micros().to_string();
        let env = [
            ("NOTIFY_SOCKET", self.paths[h - 1].as_str()),
            ("WATCHDOG_USEC", usec.as_str()),
        ];
        lab.start_relay_env(h, &env);
        self.last_ping[h - 1] = Instant::now();
    }

    /// Reads the pings; kills and restarts every relay among `running`
    /// that has been silent for [`WATCHDOG`]; returns those hosts.
    fn poll(&mut self, lab: &mut Lab, running: &[bool]) -> Vec<usize> {
        let mut restarted = Vec::new();
        let mut buf = [0u8; 256];
        for (i, sock) in self.sockets.iter().enumerate() {
            while let Ok(n) = sock.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]);
                if msg.contains("WATCHDOG=1") || msg.contains("READY=1") {
                    self.last_ping[i] = Instant::now();
                }
            }
        }
        for h in lab.host_ids() {
            if running[h - 1] && self.last_ping[h - 1].elapsed() > WATCHDOG {
                lab.kill_relay(h);
                self.start(lab, h);
                self.restarts += 1;
                restarted.push(h);
            }
        }
        restarted
    }
}

/// Runs `secs` of faults from `seed` and judges them; the lab is gone
/// when it returns.
pub fn run(secs: u64, seed: u64) -> Outcome {
    super::require_programs(super::keepalived::PROGRAMS);
    let bounds = Bounds::new();
    let steady = 1 + (seed % 3) as usize;
    let mut out = Outcome {
        seed,
        schedule: schedule(seed, secs, steady),
        ..Outcome::default()
    };
    let mut lab = Lab::new(3);
    lab.add_outsider("10.77.0.98");
    lab.configure_relays(RelayOptions {
        quorum: true,
        keepalive: Some(KEEPALIVE),
        ..RelayOptions::default()
    });
    let mut dog = Watchdog::new(&lab);
    for h in lab.host_ids() {
        dog.start(&mut lab, h);
    }
    lab.wait_relays_confirmed(Duration::from_secs(20));
    let vrrp = Vrrp::v3(ADVERT);
    let _kas: Vec<Keepalived> = lab
        .host_ids()
        .map(|h| lab.start_keepalived(h, vrrp, PRIORITY[h - 1]))
        .collect();
    let all: Vec<usize> = lab.host_ids().collect();
    let settle = vrrp.master_down(PRIORITY[2]) + Duration::from_millis(500);
    super::vip::converge_on(&lab, VIP4, &all, 1, settle, Duration::from_secs(30));
    let rss_start: Vec<u64> = lab
        .host_ids()
        .map(|h| status_field(lab.relay_pid(h), "VmRSS:"))
        .collect();
    let panics_before: Vec<usize> = lab
        .host_ids()
        .map(|h| count_lines(&lab.relay_log(h), "panicked"))
        .collect();

    let mut restarted = [false; 3];
    let mut running = [true; 3];
    let mut sampler = Sampler::start(&lab);
    let began = Instant::now();
    let targets: Vec<SocketAddrV4> = lab
        .host_ids()
        .map(|h| SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, h as u8), 7112))
        .collect();
    let mut rng = Rng::new(seed ^ 0x5eed);
    // Hosts whose relay is frozen, waiting for the watchdog; a watchdog
    // restart of any other relay means one hung without being told to.
    let mut frozen = [false; 3];
    let mut unfrozen_restarts = Vec::new();
    let mut wait = |dog: &mut Watchdog,
                    lab: &mut Lab,
                    until: Instant,
                    running: &[bool],
                    frozen: &mut [bool; 3]| {
        while Instant::now() < until {
            for h in dog.poll(lab, running) {
                if !std::mem::replace(&mut frozen[h - 1], false) {
                    unfrozen_restarts.push(h);
                }
            }
            sleep(SAMPLE);
        }
    };
    for e in out.schedule.clone() {
        wait(&mut dog, &mut lab, began + e.at, &running, &mut frozen);
        if let Some(pm) = e.loss {
            lab.set_loss(Bridge::Br0, pm);
        }
        let end = Instant::now() + e.lasts;
        let mut bursts: Option<Bursts> = None;
        let mut flood = None;
        match e.fault {
            Fault::Loss(pm) => lab.set_loss(Bridge::Br0, pm),
            Fault::Bursts => {
                bursts = Some(lab.start_bursts(Bridge::Br0, rng.next_u64(), (300, 2000), (50, 500)))
            }
            Fault::Partition(h) => lab.partition(h),
            Fault::Kill(h) => {
                lab.kill_relay(h);
                running[h - 1] = false;
                restarted[h - 1] = true;
                out.kills += 1;
            }
            Fault::Freeze(h) => {
                signal(lab.relay_pid(h), libc::SIGSTOP);
                restarted[h - 1] = true;
                frozen[h - 1] = true;
                out.freezes += 1;
            }
            Fault::Reload(h) => out.reloads.push(format!("h{h}: {}", lab.reload_relay(h))),
            Fault::Flood => flood = Some(lab.flood(&targets, 500, Junk::Random, rng.next_u64())),
        }
        wait(&mut dog, &mut lab, end, &running, &mut frozen);
        match e.fault {
            Fault::Partition(_) => lab.heal(),
            Fault::Kill(h) => {
                dog.start(&mut lab, h);
                running[h - 1] = true;
            }
            Fault::Freeze(_) => {
                // The watchdog's kill comes WATCHDOG after the last ping,
                // which may be a little after the freeze.
                wait(
                    &mut dog,
                    &mut lab,
                    end + WATCHDOG / 2,
                    &running,
                    &mut frozen,
                );
            }
            _ => {}
        }
        if let Some(b) = bursts {
            b.stop();
        }
        if let Some(f) = flood {
            f.stop();
        }
        lab.clear_loss(Bridge::Br0);
    }
    let faults_end = Instant::now();
    out.faults_secs = faults_end.duration_since(began).as_secs_f64();
    wait(
        &mut dog,
        &mut lab,
        faults_end + RECOVERY,
        &running,
        &mut frozen,
    );
    sampler.stop();
    out.watchdog_restarts = dog.restarts;
    out.unfrozen_restarts = unfrozen_restarts;
    out.never_restarted = (1..=3).filter(|h| frozen[h - 1]).collect();

    let samples = sampler.samples();
    out.samples = samples.len();
    analyse(&mut out, &samples, began, faults_end, settle);
    for h in lab.host_ids() {
        let status = lab.relay_proc_status(h);
        if status.is_empty() || status.contains("State:\tZ") {
            out.not_running.push(h);
        }
        if count_lines(&lab.relay_log(h), "panicked") > panics_before[h - 1] {
            out.panicked.push(h);
        }
        if !restarted[h - 1] {
            let pid = lab.relay_pid(h);
            out.rss
                .push((h, rss_start[h - 1], status_field(pid, "VmRSS:")));
        }
    }
    out.judge(&bounds);
    if out.failed() {
        lab.dump_logs();
    }
    out
}

/// Longest spells of two holders and of none, the holders' timeline, and
/// when after `faults_end` one holder stayed alone for `settle`.
fn analyse(
    out: &mut Outcome,
    samples: &[(Instant, Vec<usize>)],
    began: Instant,
    faults_end: Instant,
    settle: Duration,
) {
    let mut two_since: Option<Instant> = None;
    let mut none_since: Option<Instant> = None;
    let mut last: Option<&Vec<usize>> = None;
    let mut one_since: Option<Instant> = None;
    for (at, held) in samples {
        if last != Some(held) {
            out.timeline
                .push((at.saturating_duration_since(began), held.clone()));
            last = Some(held);
        }
        match (held.len() >= 2, two_since) {
            (true, None) => two_since = Some(*at),
            (false, Some(t)) => {
                out.longest_two = out.longest_two.max(at.duration_since(t));
                two_since = None;
            }
            _ => {}
        }
        match (held.is_empty(), none_since) {
            (true, None) => none_since = Some(*at),
            (false, Some(t)) => {
                out.longest_none = out.longest_none.max(at.duration_since(t));
                none_since = None;
            }
            _ => {}
        }
        if *at >= faults_end && out.recovered_after.is_none() {
            if held.len() == 1 {
                let t = *one_since.get_or_insert(*at);
                if at.duration_since(t) >= settle {
                    out.recovered_after = Some(t.duration_since(faults_end));
                }
            } else {
                one_since = None;
            }
        }
    }
    if let (Some(t), Some((end, _))) = (two_since, samples.last()) {
        out.longest_two = out.longest_two.max(end.duration_since(t));
    }
    if let (Some(t), Some((end, _))) = (none_since, samples.last()) {
        out.longest_none = out.longest_none.max(end.duration_since(t));
    }
    out.holder_at_end = samples.last().map(|(_, h)| h.clone()).unwrap_or_default();
}

/// The long run, for the benchmark: prints the outcome rather than
/// asserting.
pub fn main(secs: u64) {
    let seed = seed();
    println!("chaos: {secs} s of faults, seed {seed} (CHAOS_SEED={seed} replays it)");
    let out = run(secs, seed);
    let bounds = Bounds::new();
    println!("{}", out.summary(&bounds));
    if out.failed() {
        println!(
            "FAILED:\n  {}\n{}",
            out.failures.join("\n  "),
            out.explain()
        );
    } else {
        println!("all checks held");
    }
}
