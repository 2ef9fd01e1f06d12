//! Who holds the virtual IPs, and when they moved. `ip monitor address` in
//! every host reports address changes as the kernel makes them, so a
//! failover is timed from the kill to the netlink event, not to a poll.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::Lab;

pub const VIP4: &str = "10.77.0.100";
pub const VIP6: &str = "fd77::100";

/// The token `ip` prints before an address of this family.
fn token(vip: &str) -> String {
    if vip.contains(':') {
        format!("inet6 {vip}/")
    } else {
        format!("inet {vip}/")
    }
}

/// The hosts that hold `vip` on eth0 right now.
pub fn holders(lab: &Lab, vip: &str) -> Vec<usize> {
    holders_each(lab, &[vip]).remove(0)
}

/// For each of `vips`, the hosts that hold it on eth0 right now: one look
/// per host whatever the number of VIPs, so a sample of a big lab is quick
/// enough to be close to one instant.
pub fn holders_each(lab: &Lab, vips: &[&str]) -> Vec<Vec<usize>> {
    let tokens: Vec<String> = vips.iter().map(|v| token(v)).collect();
    let mut each = vec![Vec::new(); vips.len()];
    for h in lab.host_ids() {
        // `ip -n` only enters the namespace for its netlink socket; `ip
        // netns exec` also sets up a mount namespace (about 40 % more CPU
        // here), which polling 16 hosts takes from the daemons under test.
        let out = Command::new("ip")
            .args(["-n", &lab.ns(h), "-o", "addr", "show", "dev", "eth0"])
            .output()
            .expect("cannot run ip");
        let text = String::from_utf8_lossy(&out.stdout);
        for (t, held) in tokens.iter().zip(&mut each) {
            if text.contains(t.as_str()) {
                held.push(h);
            }
        }
    }
    each
}

/// Waits until exactly one host among `candidates` holds `vip` and keeps
/// holding it, alone, for `stable`; returns that host. VRRP may briefly show
/// two holders during a preemption, so a single sample is not enough.
pub fn converge(
    lab: &Lab,
    vip: &str,
    candidates: &[usize],
    stable: Duration,
    timeout: Duration,
) -> usize {
    let deadline = Instant::now() + timeout;
    let mut since: Option<(usize, Instant)> = None;
    loop {
        let now: Vec<usize> = holders(lab, vip)
            .into_iter()
            .filter(|h| candidates.contains(h))
            .collect();
        match (now.as_slice(), since) {
            ([one], Some((h, t))) if *one == h => {
                if t.elapsed() >= stable {
                    return h;
                }
            }
            ([one], _) => since = Some((*one, Instant::now())),
            _ => since = None,
        }
        assert!(
            Instant::now() < deadline,
            "no single stable holder of {vip} among {candidates:?} within {timeout:?}; last seen holders: {now:?}"
        );
        sleep(Duration::from_millis(100));
    }
}

/// Waits until `expected` is the only holder of `vip` among `candidates`
/// and stays so for `stable`. Unlike [`converge`] it does not settle for a
/// stable holder that is about to be preempted.
pub fn converge_on(
    lab: &Lab,
    vip: &str,
    candidates: &[usize],
    expected: usize,
    stable: Duration,
    timeout: Duration,
) {
    converge_on_each(lab, &[(vip, expected)], candidates, stable, timeout);
}

/// [`converge_on`] for several VIPs at once: each `(vip, host)` of
/// `wanted` has that host as its only holder among `candidates`, all of
/// them in the same samples, for `stable`.
pub fn converge_on_each(
    lab: &Lab,
    wanted: &[(&str, usize)],
    candidates: &[usize],
    stable: Duration,
    timeout: Duration,
) {
    let vips: Vec<&str> = wanted.iter().map(|(v, _)| *v).collect();
    let deadline = Instant::now() + timeout;
    let mut since: Option<Instant> = None;
    loop {
        let now: Vec<Vec<usize>> = holders_each(lab, &vips)
            .into_iter()
            .map(|held| {
                held.into_iter()
                    .filter(|h| candidates.contains(h))
                    .collect()
            })
            .collect();
        if now.iter().zip(wanted).all(|(held, (_, h))| held == &[*h]) {
            let t = *since.get_or_insert_with(Instant::now);
            if t.elapsed() >= stable {
                return;
            }
        } else {
            since = None;
        }
        assert!(
            Instant::now() < deadline,
            "not every VIP on its expected host alone among {candidates:?} within {timeout:?}; wanted (VIP, host) {wanted:?}, holders {now:?}"
        );
        sleep(Duration::from_millis(100));
    }
}

/// One address appearing in one host.
#[derive(Debug, Clone, Copy)]
pub struct Added {
    pub host: usize,
    pub at: Instant,
    /// Which of the watched VIPs (its index in [`Watch::start_each`]).
    pub vip: usize,
}

/// `ip monitor address` in every host of a lab.
pub struct Watch {
    rx: Receiver<Added>,
    children: Vec<Child>,
}

impl Watch {
    pub fn start(lab: &Lab, vip: &str) -> Watch {
        Watch::start_each(lab, &[vip])
    }

    /// Watches several VIPs with one monitor per host.
    pub fn start_each(lab: &Lab, vips: &[&str]) -> Watch {
        let tokens: Vec<String> = vips.iter().map(|v| token(v)).collect();
        let (tx, rx) = channel();
        let mut children = Vec::new();
        for h in lab.host_ids() {
            let mut child = Command::new("ip")
                .args(["-n", &lab.ns(h), "monitor", "address", "dev", "eth0"])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("cannot start ip monitor");
            let out = child.stdout.take().expect("piped stdout");
            spawn_reader(h, tokens.clone(), out, tx.clone());
            children.push(child);
        }
        // ip monitor subscribes right after it starts; give it that moment.
        sleep(Duration::from_millis(200));
        Watch { rx, children }
    }

    /// Forgets events seen so far.
    pub fn clear(&self) {
        while self.rx.try_recv().is_ok() {}
    }

    /// Every event seen so far, oldest first.
    pub fn drain(&self) -> Vec<Added> {
        self.rx.try_iter().collect()
    }

    /// The first host, not in `exclude`, that gains a watched VIP before
    /// `timeout`.
    pub fn next_added(&self, exclude: &[usize], timeout: Duration) -> Option<Added> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(a) if !exclude.contains(&a.host) => return Some(a),
                Ok(_) => continue,
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
            }
        }
    }
}

fn spawn_reader(
    host: usize,
    tokens: Vec<String>,
    out: std::process::ChildStdout,
    tx: Sender<Added>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if line.starts_with("Deleted") {
                continue;
            }
            let at = Instant::now();
            for vip in (0..tokens.len()).filter(|i| line.contains(tokens[*i].as_str())) {
                if tx.send(Added { host, at, vip }).is_err() {
                    return;
                }
            }
        }
    });
}

impl Drop for Watch {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
