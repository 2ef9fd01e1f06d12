//! Stock ucarp in a lab host: one virtual host (VHID 1) whose CARP adverts
//! go out on `mcast0` (the relay's tap) or `eth0` (native), moving the VIP
//! on eth0 with the up/down scripts of examples/ucarp/ as shipped. ucarp
//! runs in the foreground, which makes it log to stdout/stderr (its log).
//!
//! Timing, from ucarp 1.5.2's carp.c and measured natively: a backup sees
//! an advert only when libpcap's ring block retires (ucarp's 1000 ms
//! capture timeout), restarts its master-down timer then, and looks at that
//! timer only when its poll returns. So adverts are seen up to a second
//! late, and at a failover the next two in line usually both take the VIP
//! for up to a second before the one with the lower advskew wins.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Lab, signal};

/// What [`Lab::start_ucarp`] runs: ucarp, the scripts' arping, and stdbuf.
pub const PROGRAMS: &[(&str, &str)] = &[
    ("ucarp", "ucarp"),
    ("arping", "iputils-arping"),
    ("stdbuf", "coreutils"),
];

/// How every node of a test runs ucarp.
#[derive(Clone, Copy, Debug)]
pub struct Carp {
    /// Seconds between adverts (ucarp takes whole seconds).
    pub advbase: u32,
    /// `mcast0` through the relay, `eth0` for native multicast.
    pub interface: &'static str,
}

impl Carp {
    /// How long a backup with `advskew` waits after the master's last
    /// advert before it takes over. ucarp (carp.c, carp_setrun in BACKUP)
    /// arms its master-down timer at dead_ratio x advbase + advskew/256 s,
    /// dead_ratio being 3 unless --deadratio says otherwise.
    pub fn master_down(&self, advskew: u8) -> Duration {
        Duration::from_secs(3 * u64::from(self.advbase)) + skew(advskew)
    }

    /// How long a backup's poll sleeps (carp.c, docarp), in whole
    /// milliseconds as ucarp computes it: ucarp looks at its master-down
    /// timer only when the poll returns, so a takeover can come up to this
    /// much after the timer expired.
    pub fn poll_interval(&self, advskew: u8) -> Duration {
        Duration::from_millis(u64::from(self.advbase) * 1000 + u64::from(advskew) * 1000 / 256)
    }

    /// The latest a backup with `advskew` takes over after the master's
    /// last advert: the advert is seen up to [`CAPTURE_TIMEOUT`] late, its
    /// master-down timer runs from then, and the poll (restarted when the
    /// advert was seen) wakes at whole multiples of [`Carp::poll_interval`].
    /// For advbase 1 and advskew 10 that is 4.117 s; natively, 3.49 to
    /// 4.08 s were measured. The up script's run comes on top.
    pub fn latest_takeover(&self, advskew: u8) -> Duration {
        let down = self.master_down(advskew);
        let poll = self.poll_interval(advskew);
        let polls = down.as_nanos().div_ceil(poll.as_nanos());
        CAPTURE_TIMEOUT + poll * u32::try_from(polls).expect("a handful of polls")
    }
}

/// ucarp's pcap timeout (ucarp.h CAPTURE_TIMEOUT), which libpcap's
/// TPACKET_V3 ring uses as its block-retire timeout: the longest an advert
/// waits before ucarp sees it.
pub const CAPTURE_TIMEOUT: Duration = Duration::from_millis(1000);

fn skew(advskew: u8) -> Duration {
    Duration::from_micros(u64::from(advskew) * 1_000_000 / 256)
}

/// A running ucarp.
pub struct Ucarp {
    pub host: usize,
    pub pid: u32,
    pub log: PathBuf,
}

fn script(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/ucarp")
        .join(name)
        .display()
        .to_string()
}

impl Lab {
    /// Starts ucarp on `host` with `advskew` (lower wins), preemption on
    /// and --shutdown, as examples/ucarp/ucarp.service runs it.
    pub fn start_ucarp(&mut self, host: usize, carp: Carp, advskew: u8) -> Ucarp {
        super::require_programs(PROGRAMS);
        // The relay carries only the node's own overlay address.
        let srcip = if carp.interface == "mcast0" {
            format!("10.250.0.{host}")
        } else {
            format!("10.77.0.{host}")
        };
        let pass = self.path("ucarp.pass");
        if !pass.exists() {
            fs::write(&pass, "lab-secret\n").expect("cannot write ucarp.pass");
        }
        let log = self.path(&format!("ucarp{host}.log"));
        let (up, down) = (script("vip-up.sh"), script("vip-down.sh"));
        // stdbuf: ucarp writes INFO lines (and its SIGUSR1 state report) to
        // stdout, which a log file would otherwise buffer past a kill -9.
        // --facility=none: the lab shares the host's /dev/log, and the log
        // file already has every line.
        let args = [
            "stdbuf".to_string(),
            "-oL".into(),
            "ucarp".into(),
            format!("--interface={}", carp.interface),
            format!("--srcip={srcip}"),
            "--vhid=1".into(),
            format!("--passfile={}", pass.display()),
            format!("--addr={}", super::vip::VIP4),
            format!("--advbase={}", carp.advbase),
            format!("--advskew={advskew}"),
            "--preempt".into(),
            "--shutdown".into(),
            "--xparam=eth0".into(),
            format!("--upscript={up}"),
            format!("--downscript={down}"),
            "--facility=none".into(),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let pid = self.spawn(host, "ucarp", &args, &log);
        Ucarp { host, pid, log }
    }
}

impl Ucarp {
    /// SIGTERM: with --shutdown ucarp runs its down script (the VIP goes).
    pub fn stop(self, lab: &mut Lab) {
        signal(self.pid, libc::SIGTERM);
        lab.reap(self.pid);
    }

    /// kill -9: no last advert, no down script; the VIP stays behind on
    /// the dead host's eth0, as after a crash.
    pub fn crash(self, lab: &mut Lab) {
        signal(self.pid, libc::SIGKILL);
        lab.reap(self.pid);
    }
}
