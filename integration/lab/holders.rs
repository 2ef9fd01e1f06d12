//! Who held which VIP when, from the kernel's own address events: `ip
//! monitor address` in each host reports every VIP added and deleted as it
//! happens, so the holders at any moment, the takeovers and the gaps with
//! not exactly one holder come from one cheap stream instead of polling
//! every host many times a second (which would load the daemons measured).
//! Started before any VIP exists, the history is complete.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::Lab;

/// One VIP added to or deleted from one host.
#[derive(Clone, Copy, Debug)]
pub struct Change {
    pub at: Instant,
    pub host: usize,
    /// Index of the VIP in [`Timeline::start`]'s list.
    pub vip: usize,
    pub added: bool,
}

/// What a VIP's holders did in a window (see [`Timeline::window`]).
#[derive(Clone, Debug, Default)]
pub struct WindowStats {
    /// Hosts other than the master that gained the VIP.
    pub takeovers: u64,
    /// The longest stretch with no holder or more than one.
    pub longest_not_one: Duration,
    /// Those stretches, counted.
    pub not_one_spells: u64,
    /// Holders at the end of the window.
    pub holders_at_end: Vec<usize>,
}

/// The address events of a set of hosts, recorded from the start.
pub struct Timeline {
    changes: Arc<Mutex<Vec<Change>>>,
    children: Vec<Child>,
}

fn token(vip: &str) -> String {
    if vip.contains(':') {
        format!("inet6 {vip}/")
    } else {
        format!("inet {vip}/")
    }
}

impl Timeline {
    /// Monitors eth0 of `hosts` for `vips`.
    pub fn start(lab: &Lab, hosts: &[usize], vips: &[String]) -> Timeline {
        let tokens: Vec<String> = vips.iter().map(|v| token(v)).collect();
        let changes = Arc::new(Mutex::new(Vec::new()));
        let mut children = Vec::new();
        for &h in hosts {
            let mut child = Command::new("ip")
                .args(["-n", &lab.ns(h), "monitor", "address", "dev", "eth0"])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("cannot start ip monitor");
            let out = child.stdout.take().expect("piped stdout");
            let (tokens, changes) = (tokens.clone(), changes.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    let at = Instant::now();
                    let added = !line.starts_with("Deleted");
                    for vip in (0..tokens.len()).filter(|i| line.contains(tokens[*i].as_str())) {
                        let mut c = changes.lock().unwrap_or_else(|e| e.into_inner());
                        c.push(Change {
                            at,
                            host: h,
                            vip,
                            added,
                        });
                    }
                }
            });
            children.push(child);
        }
        // ip monitor subscribes right after it starts; give it that moment.
        sleep(Duration::from_millis(300));
        Timeline { changes, children }
    }

    /// Every change so far, in the order seen.
    pub fn changes(&self) -> Vec<Change> {
        self.changes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The holders of `vip` now.
    pub fn holders(&self, vip: usize) -> Vec<usize> {
        holders_at(&self.changes(), vip, Instant::now())
    }

    /// Waits until `master` alone has held `vip` for `stable`, for every
    /// `(vip, master)` of `wanted` at once; false at `timeout`.
    pub fn settled(&self, wanted: &[(usize, usize)], stable: Duration, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let now = Instant::now();
            let changes = self.changes();
            let ok = wanted.iter().all(|&(vip, master)| {
                holders_at(&changes, vip, now) == [master]
                    && changes
                        .iter()
                        .rev()
                        .find(|c| c.vip == vip)
                        .is_some_and(|c| now.duration_since(c.at) >= stable)
            });
            if ok {
                return true;
            }
            if now >= deadline {
                return false;
            }
            sleep(Duration::from_millis(100));
        }
    }

    /// What `vip`'s holders did from `from` to `to`, `master` being the
    /// host that should hold it throughout.
    pub fn window(&self, vip: usize, master: usize, from: Instant, to: Instant) -> WindowStats {
        window(&self.changes(), vip, master, from, to)
    }
}

impl Drop for Timeline {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The holders of `vip` just after `at`, replaying `changes` from empty.
pub fn holders_at(changes: &[Change], vip: usize, at: Instant) -> Vec<usize> {
    let mut held = BTreeSet::new();
    for c in changes.iter().filter(|c| c.vip == vip && c.at <= at) {
        if c.added {
            held.insert(c.host);
        } else {
            held.remove(&c.host);
        }
    }
    held.into_iter().collect()
}

/// [`Timeline::window`] on a list of changes.
pub fn window(
    changes: &[Change],
    vip: usize,
    master: usize,
    from: Instant,
    to: Instant,
) -> WindowStats {
    let mut held: BTreeSet<usize> = holders_at(changes, vip, from).into_iter().collect();
    let mut stats = WindowStats::default();
    // Since when the count has not been one, if it is not now.
    let mut off_since = (held.len() != 1).then_some(from);
    let close = |since: Instant, until: Instant, s: &mut WindowStats| {
        s.not_one_spells += 1;
        s.longest_not_one = s.longest_not_one.max(until.duration_since(since));
    };
    for c in changes
        .iter()
        .filter(|c| c.vip == vip && c.at > from && c.at <= to)
    {
        let changed = if c.added {
            let new = held.insert(c.host);
            if new && c.host != master {
                stats.takeovers += 1;
            }
            new
        } else {
            held.remove(&c.host)
        };
        if !changed {
            continue;
        }
        match (off_since, held.len() == 1) {
            (Some(since), true) => {
                close(since, c.at, &mut stats);
                off_since = None;
            }
            (None, false) => off_since = Some(c.at),
            _ => {}
        }
    }
    if let Some(since) = off_since {
        close(since, to, &mut stats);
    }
    stats.holders_at_end = held.into_iter().collect();
    stats
}
