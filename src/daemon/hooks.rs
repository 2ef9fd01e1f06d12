//! Runs the `[[vip]]` hooks: when the core says this node has been a
//! virtual router's only master for `settle` ([`Standing::Claimed`]), its
//! `on_master` command runs, without a shell, as the relay's own
//! (unprivileged) user, in its own process group, with a timeout; a
//! failure is retried with backoff for as long as the claim stands. At
//! most one command per virtual router runs at a time, and one that is
//! still running when the claim ends (another master, a split brain) is
//! killed, so a node that lost the role does not finish moving the
//! address after the new master did.

use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use crate::config::VipConfig;
use crate::core::PeerId;
use crate::core::vip::{Hold, Standing};
use crate::core::vrrp_watch::Family;
use crate::daemon::status::VipStatus;

/// The first retry comes this long after a failure, each next one twice
/// as long after, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// The end of a hook's standard error that is kept, for the error shown.
const STDERR_KEPT: usize = 4096;
/// How long stderr is still read after the command exited.
const STDERR_GRACE: Duration = Duration::from_millis(100);
/// What an error line shown in the status and the log is cut to.
const ERROR_SHOWN: usize = 300;

/// How one run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Succeeded,
    /// Exited non-zero or by a signal, with the last line of its stderr.
    Failed(String),
    TimedOut,
    /// Killed because the claim ended while it ran.
    Killed,
    /// Could not be started at all.
    NotStarted(String),
}

/// A finished run, as its task reports it.
pub(super) struct Finished {
    vip: usize,
    generation: u64,
    outcome: Outcome,
    took: Duration,
}

/// What the status shows of one hook, besides the core's standing.
#[derive(Clone, Debug, Default)]
pub(crate) struct HookState {
    /// Tries in the current claim (1 is the first).
    pub attempts: u32,
    /// When the current claim's hook succeeded (wall clock).
    pub done_at: Option<SystemTime>,
    /// The last failure in the current claim.
    pub last_error: Option<String>,
    /// When the next try goes, while failing.
    pub retry_at: Option<Instant>,
    /// When the last success of any claim was (wall clock).
    pub last_success: Option<SystemTime>,
    pub runs_ok: u64,
    pub runs_failed: u64,
    pub runs_timed_out: u64,
    pub runs_killed: u64,
}

struct Hook {
    cfg: VipConfig,
    standing: Standing,
    state: HookState,
    /// The running command's process group, to kill it.
    running: Option<Pid>,
    /// Bumped at each claim's start and end: a run of an older claim that
    /// reports late changes nothing.
    generation: u64,
}

/// The hooks, in configuration order (the core's rule numbers).
pub(super) struct Hooks {
    hooks: Vec<Hook>,
    node: String,
    interface: String,
    done_tx: mpsc::UnboundedSender<Finished>,
    done_rx: mpsc::UnboundedReceiver<Finished>,
}

pub(crate) fn family_env(f: Family) -> &'static str {
    match f {
        Family::V4 => "ipv4",
        Family::V6 => "ipv6",
    }
}

impl Hooks {
    pub(super) fn new(vips: &[VipConfig], node: &str, interface: &str) -> Hooks {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        Hooks {
            hooks: vips
                .iter()
                .map(|cfg| Hook {
                    cfg: cfg.clone(),
                    standing: Standing::NotMaster,
                    state: HookState::default(),
                    running: None,
                    generation: 0,
                })
                .collect(),
            node: node.to_string(),
            interface: interface.to_string(),
            done_tx,
            done_rx,
        }
    }

    /// Each hook: its configuration, the core's standing, the runs.
    #[cfg(test)]
    fn each(&self) -> impl Iterator<Item = (&VipConfig, Standing, &HookState)> {
        self.hooks.iter().map(|h| (&h.cfg, h.standing, &h.state))
    }

    /// What the status shows of each hook; `name_of` names a peer that
    /// reported a split brain.
    pub(super) fn status(&self, name_of: impl Fn(PeerId) -> String, now_ms: u64) -> Vec<VipStatus> {
        let now = Instant::now();
        self.hooks
            .iter()
            .map(|h| {
                let s = &h.state;
                let (state, detail) = match h.standing {
                    Standing::NotMaster => (
                        "not master",
                        "another node is master, or none is; the address is left where it is"
                            .to_string(),
                    ),
                    Standing::Settling { due, .. } => (
                        "settling",
                        format!(
                            "the only master; on_master runs in {:.1} s if it stays so",
                            due.saturating_sub(now_ms) as f64 / 1000.0
                        ),
                    ),
                    Standing::Held { why, .. } => ("held", hold_words(why, &name_of)),
                    Standing::Claimed { .. } if h.running.is_some() => {
                        ("running", format!("on_master try {} running", s.attempts))
                    }
                    Standing::Claimed { .. } if s.done_at.is_some() => (
                        "done",
                        format!(
                            "on_master succeeded at {}",
                            s.done_at.map(utc).unwrap_or_default()
                        ),
                    ),
                    Standing::Claimed { .. } => (
                        "failing",
                        format!(
                            "try {} failed: {}; next try in {:.0} s",
                            s.attempts,
                            s.last_error.as_deref().unwrap_or("?"),
                            s.retry_at
                                .map_or(0.0, |t| t.saturating_duration_since(now).as_secs_f64())
                        ),
                    ),
                };
                VipStatus {
                    vrid: h.cfg.vrid,
                    family: h.cfg.family.name().to_string(),
                    address: h.cfg.address.map(|a| a.to_string()),
                    state: state.to_string(),
                    detail,
                    attempts: s.attempts,
                    done_at: s.done_at.map(unix_secs),
                    last_error: s.last_error.clone(),
                    next_try_s: s
                        .retry_at
                        .map(|t| t.saturating_duration_since(now).as_secs_f64()),
                    last_success: s.last_success.map(unix_secs),
                    runs_ok: s.runs_ok,
                    runs_failed: s.runs_failed,
                    runs_timed_out: s.runs_timed_out,
                    runs_killed: s.runs_killed,
                }
            })
            .collect()
    }

    /// The core's standing for hook `vip` changed: a claim starts its
    /// hook; the end of one stops the retries and kills a run.
    pub(super) fn on_standing(
        &mut self,
        vip: usize,
        standing: Standing,
        name_of: impl Fn(PeerId) -> String,
    ) {
        // A run that ended but is not yet reported is not killed, and its
        // result is not thrown away with its claim.
        while let Ok(f) = self.done_rx.try_recv() {
            self.finish(f);
        }
        let Some(h) = self.hooks.get_mut(vip) else {
            return;
        };
        let (vrid, family) = (h.cfg.vrid, h.cfg.family.name());
        let was_claimed = matches!(h.standing, Standing::Claimed { .. });
        h.standing = standing;
        match standing {
            Standing::Claimed { .. } => {
                // A new claim straight after another (the standing between
                // them was not seen): the old one's run goes first.
                self.end_claim(vip, was_claimed);
                let Some(h) = self.hooks.get_mut(vip) else {
                    return;
                };
                h.generation += 1;
                h.state.attempts = 0;
                h.state.done_at = None;
                h.state.last_error = None;
                h.state.retry_at = None;
                tracing::info!(
                    vrid,
                    family,
                    "vip: this node has been the only master for settle; running on_master"
                );
                self.start(vip);
            }
            Standing::Held { why, .. } => {
                tracing::warn!(vrid, family, "vip: held: {}", hold_words(why, &name_of));
                self.end_claim(vip, was_claimed);
            }
            Standing::Settling { since, due } => {
                // Debug: an election or a flap passes through here at
                // each advert.
                tracing::debug!(
                    vrid,
                    family,
                    settle_ms = due - since,
                    "vip: this node is the only master; on_master runs if it stays so for settle"
                );
                self.end_claim(vip, was_claimed);
            }
            Standing::NotMaster => {
                if was_claimed {
                    tracing::info!(
                        vrid,
                        family,
                        "vip: no longer the only master; the address is left where it is"
                    );
                }
                self.end_claim(vip, was_claimed);
            }
        }
    }

    fn end_claim(&mut self, vip: usize, was_claimed: bool) {
        let Some(h) = self.hooks.get_mut(vip) else {
            return;
        };
        if !was_claimed {
            return;
        }
        h.generation += 1;
        h.state.retry_at = None;
        if let Some(pg) = h.running.take() {
            tracing::warn!(
                vrid = h.cfg.vrid,
                family = h.cfg.family.name(),
                "vip: killing on_master: this node is no longer the only master"
            );
            let _ = killpg(pg, Signal::SIGKILL);
            h.state.runs_killed += 1;
        }
    }

    fn start(&mut self, vip: usize) {
        let Some(h) = self.hooks.get_mut(vip) else {
            return;
        };
        if h.running.is_some() {
            return;
        }
        h.state.attempts += 1;
        h.state.retry_at = None;
        let attempt = h.state.attempts;
        let cfg = &h.cfg;
        let (vrid, family) = (cfg.vrid, cfg.family.name());
        tracing::info!(vrid, family, attempt, command = %cfg.on_master.join(" "), "vip: on_master try {attempt}");
        let mut cmd = Command::new(&cfg.on_master[0]);
        cmd.args(&cfg.on_master[1..])
            .env("MCAST_RELAY_VRID", cfg.vrid.to_string())
            .env("MCAST_RELAY_FAMILY", family_env(cfg.family))
            .env("MCAST_RELAY_NODE", &self.node)
            .env(
                "MCAST_RELAY_VIP",
                cfg.address.map(|a| a.to_string()).unwrap_or_default(),
            )
            .env("MCAST_RELAY_INTERFACE", &self.interface)
            .env("MCAST_RELAY_ATTEMPT", attempt.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // Its own group, so a timeout kills what it started too.
            .process_group(0)
            .kill_on_drop(true);
        // With node.realtime_priority the relay runs SCHED_RR; a hook (the
        // aws CLI's second of Python start-up) must not run ahead of
        // keepalived on a small VM, so it goes back to the normal policy.
        // SAFETY: between fork and exec only sched_setscheduler runs, which
        // is async-signal-safe, on a sched_param on this stack.
        unsafe {
            cmd.pre_exec(|| {
                let param = libc::sched_param { sched_priority: 0 };
                // Failing leaves the priority as it was: not worth
                // failing the hook for.
                let _ = libc::sched_setscheduler(0, libc::SCHED_OTHER, &param);
                Ok(())
            });
        }
        let started = Instant::now();
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                let outcome =
                    Outcome::NotStarted(format!("cannot start {}: {e}", cfg.on_master[0]));
                let generation = h.generation;
                self.finish(Finished {
                    vip,
                    generation,
                    outcome,
                    took: Duration::ZERO,
                });
                return;
            }
        };
        let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) else {
            return;
        };
        h.running = Some(Pid::from_raw(pid));
        let (generation, timeout, tx) = (h.generation, cfg.timeout, self.done_tx.clone());
        tokio::spawn(async move {
            let outcome = supervise(child, timeout).await;
            let _ = tx.send(Finished {
                vip,
                generation,
                outcome,
                took: started.elapsed(),
            });
        });
    }

    /// The next run that finished, for the loop to hand to [`Hooks::finish`].
    pub(super) async fn finished(&mut self) -> Option<Finished> {
        self.done_rx.recv().await
    }

    /// A run ended: done, or a retry scheduled while the claim stands.
    pub(super) fn finish(&mut self, f: Finished) {
        let Some(h) = self.hooks.get_mut(f.vip) else {
            return;
        };
        let (vrid, family) = (h.cfg.vrid, h.cfg.family.name());
        if f.generation != h.generation {
            // The claim it belonged to ended (and it was killed then).
            tracing::info!(vrid, family, outcome = ?f.outcome, "vip: on_master of an ended claim finished");
            return;
        }
        h.running = None;
        let took_ms = f.took.as_millis() as u64;
        let error = match f.outcome {
            Outcome::Succeeded => {
                let now = SystemTime::now();
                h.state.done_at = Some(now);
                h.state.last_success = Some(now);
                h.state.last_error = None;
                h.state.runs_ok += 1;
                tracing::info!(
                    vrid,
                    family,
                    attempt = h.state.attempts,
                    took_ms,
                    "vip: on_master succeeded; the address is on this node"
                );
                return;
            }
            Outcome::Failed(e) | Outcome::NotStarted(e) => {
                h.state.runs_failed += 1;
                e
            }
            Outcome::TimedOut => {
                h.state.runs_timed_out += 1;
                format!(
                    "killed after its timeout of {:.1} s",
                    h.cfg.timeout.as_secs_f64()
                )
            }
            Outcome::Killed => {
                h.state.runs_killed += 1;
                "killed".to_string()
            }
        };
        let shift = h.state.attempts.saturating_sub(1).min(6);
        let backoff = (FIRST_BACKOFF * (1 << shift)).min(MAX_BACKOFF);
        h.state.retry_at = Some(Instant::now() + backoff);
        tracing::warn!(
            vrid,
            family,
            attempt = h.state.attempts,
            took_ms,
            retry_in_s = backoff.as_secs(),
            "vip: on_master failed: {error}"
        );
        h.state.last_error = Some(error);
    }

    /// When the next retry is due.
    pub(super) fn next_retry(&self) -> Option<Instant> {
        self.hooks.iter().filter_map(|h| h.state.retry_at).min()
    }

    /// Starts the retries that are due.
    pub(super) fn retry_due(&mut self, now: Instant) {
        for k in 0..self.hooks.len() {
            let h = &self.hooks[k];
            if h.state.retry_at.is_some_and(|t| t <= now)
                && matches!(h.standing, Standing::Claimed { .. })
            {
                self.start(k);
            }
        }
    }
}

/// Waits for `child` for at most `timeout`, keeping the end of its stderr;
/// at the timeout its whole process group is killed.
async fn supervise(mut child: Child, timeout: Duration) -> Outcome {
    let mut stderr = child.stderr.take();
    let pgid = child
        .id()
        .and_then(|p| i32::try_from(p).ok())
        .map(Pid::from_raw);
    let mut kept: Vec<u8> = Vec::new();
    let read = async {
        let Some(err) = stderr.as_mut() else { return };
        let mut chunk = [0u8; 1024];
        while let Ok(n) = err.read(&mut chunk).await {
            if n == 0 {
                break;
            }
            kept.extend_from_slice(&chunk[..n]);
            if kept.len() > STDERR_KEPT {
                kept.drain(..kept.len() - STDERR_KEPT);
            }
        }
    };
    tokio::pin!(read);
    let run = async {
        let mut read_done = false;
        let status = loop {
            tokio::select! {
                s = child.wait() => break s,
                () = &mut read, if !read_done => read_done = true,
            }
        };
        // Something it left running may hold stderr open: its exit is
        // what counts, with what it wrote up to then.
        if !read_done {
            let _ = tokio::time::timeout(STDERR_GRACE, &mut read).await;
        }
        status
    };
    let ended = tokio::time::timeout(timeout, run).await;
    match ended {
        Ok(Ok(status)) => outcome_of(status, &kept),
        Ok(Err(e)) => Outcome::Failed(format!("waiting for it failed: {e}")),
        Err(_) => {
            if let Some(pg) = pgid {
                let _ = killpg(pg, Signal::SIGKILL);
            }
            let _ = child.wait().await;
            Outcome::TimedOut
        }
    }
}

fn outcome_of(status: ExitStatus, stderr: &[u8]) -> Outcome {
    if status.success() {
        return Outcome::Succeeded;
    }
    let text = String::from_utf8_lossy(stderr);
    let last = text.lines().rev().map(str::trim).find(|l| !l.is_empty());
    let how = match (
        status.code(),
        std::os::unix::process::ExitStatusExt::signal(&status),
    ) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(9)) => return Outcome::Killed,
        (None, Some(s)) => format!("killed by signal {s}"),
        (None, None) => "ended".to_string(),
    };
    let mut e = match last {
        Some(l) => format!("{how}: {l}"),
        None => format!("{how}, nothing on stderr"),
    };
    if e.len() > ERROR_SHOWN {
        let mut cut = ERROR_SHOWN;
        while !e.is_char_boundary(cut) {
            cut -= 1;
        }
        e.truncate(cut);
        e.push('…');
    }
    Outcome::Failed(e)
}

/// Why a claim is held, in words, for the status and the log.
pub(super) fn hold_words(why: Hold, name_of: &impl Fn(PeerId) -> String) -> String {
    match why {
        Hold::SplitBrain { by: None } => {
            "split brain seen here; on_master is not run while two nodes advertise".to_string()
        }
        Hold::SplitBrain { by: Some(p) } => format!(
            "split brain reported by {}; on_master is not run while two nodes advertise",
            name_of(p)
        ),
        Hold::NoMajority { reachable, cluster } => format!(
            "this relay reaches {reachable} of the cluster's {cluster} relays, not a majority; on_master is not run from a minority"
        ),
    }
}

/// Seconds since 1970 of `t`, for the status's JSON.
fn unix_secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `t` as UTC, `2026-12-02T18:30:05Z`, for the status's words.
fn utc(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Days to a civil date, after Howard Hinnant's public-domain method.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::vrrp_watch::Family;

    fn vip(argv: &[&str], timeout_ms: u64) -> VipConfig {
        VipConfig {
            vrid: 51,
            family: Family::V4,
            address: "10.0.1.100".parse().ok(),
            on_master: argv.iter().map(|s| s.to_string()).collect(),
            settle: None,
            timeout: Duration::from_millis(timeout_ms),
        }
    }

    async fn claim_and_wait(hooks: &mut Hooks) -> Outcome {
        hooks.on_standing(0, Standing::Claimed { at: 0 }, |_| String::new());
        let f = hooks.finished().await.expect("a run ends");
        let outcome = f.outcome.clone();
        hooks.finish(f);
        outcome
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    #[test]
    fn a_hook_gets_its_variables_and_success_is_recorded() {
        rt().block_on(async {
            let script = "test \"$MCAST_RELAY_VRID/$MCAST_RELAY_FAMILY/$MCAST_RELAY_NODE/$MCAST_RELAY_VIP/$MCAST_RELAY_INTERFACE/$MCAST_RELAY_ATTEMPT\" = 51/ipv4/h1/10.0.1.100/mcast0/1 || { echo \"got $MCAST_RELAY_VRID/$MCAST_RELAY_FAMILY/$MCAST_RELAY_NODE/$MCAST_RELAY_VIP\" >&2; exit 3; }";
            let mut hooks = Hooks::new(&[vip(&["/bin/sh", "-c", script], 5000)], "h1", "mcast0");
            assert_eq!(claim_and_wait(&mut hooks).await, Outcome::Succeeded);
            let (_, _, s) = hooks.each().next().expect("one hook");
            assert!(s.done_at.is_some() && s.last_error.is_none() && s.runs_ok == 1);
            assert_eq!(hooks.next_retry(), None);
        });
    }

    #[test]
    fn a_failure_keeps_the_last_stderr_line_and_schedules_a_retry() {
        rt().block_on(async {
            let mut hooks = Hooks::new(
                &[vip(
                    &[
                        "/bin/sh",
                        "-c",
                        "echo noise >&2; echo 'API said: no' >&2; exit 2",
                    ],
                    5000,
                )],
                "h1",
                "mcast0",
            );
            let o = claim_and_wait(&mut hooks).await;
            assert_eq!(
                o,
                Outcome::Failed("exit status 2: API said: no".to_string())
            );
            let (_, _, s) = hooks.each().next().expect("one hook");
            assert_eq!(s.last_error.as_deref(), Some("exit status 2: API said: no"));
            let retry = hooks.next_retry().expect("a retry");
            assert!(retry > Instant::now() + Duration::from_millis(500));
            // The retry runs as attempt 2 once due; a lost claim stops them.
            let before = Instant::now();
            hooks.retry_due(retry);
            let f = hooks.finished().await.expect("the retry ends");
            hooks.finish(f);
            assert_eq!(hooks.each().next().map(|(_, _, s)| s.attempts), Some(2));
            let second = hooks.next_retry().expect("another retry");
            assert!(second >= before + Duration::from_secs(2), "backoff doubles");
            hooks.on_standing(0, Standing::NotMaster, |_| String::new());
            assert_eq!(hooks.next_retry(), None);
        });
    }

    #[test]
    fn a_hanging_hook_is_killed_at_its_timeout_with_its_children() {
        rt().block_on(async {
            let marker =
                std::env::temp_dir().join(format!("mcast-relay-hook-{}", std::process::id()));
            let script = format!("sleep 30 & echo $! > {}; wait", marker.display());
            let mut hooks = Hooks::new(&[vip(&["/bin/sh", "-c", &script], 300)], "h1", "mcast0");
            let t = Instant::now();
            assert_eq!(claim_and_wait(&mut hooks).await, Outcome::TimedOut);
            assert!(t.elapsed() < Duration::from_secs(5));
            let pid = std::fs::read_to_string(&marker).unwrap_or_default();
            let _ = std::fs::remove_file(&marker);
            let pid: i32 = pid.trim().parse().expect("the child's pid");
            // The group was killed: the grandchild is gone (or a zombie
            // about to be reaped by init).
            std::thread::sleep(Duration::from_millis(100));
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            assert!(
                stat.is_empty() || stat.contains(") Z"),
                "sleep still runs: {stat}"
            );
            let (_, _, s) = hooks.each().next().expect("one hook");
            assert_eq!(s.runs_timed_out, 1);
            assert!(
                s.last_error
                    .as_deref()
                    .is_some_and(|e| e.contains("timeout"))
            );
        });
    }

    #[test]
    fn a_hook_that_leaves_a_child_holding_stderr_succeeds_when_it_exits() {
        rt().block_on(async {
            let t = Instant::now();
            let mut hooks = Hooks::new(
                &[vip(&["/bin/sh", "-c", "sleep 5 & exit 0"], 3000)],
                "h1",
                "mcast0",
            );
            assert_eq!(claim_and_wait(&mut hooks).await, Outcome::Succeeded);
            assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        });
    }

    /// Run from a SCHED_RR relay (node.realtime_priority), a hook gets the
    /// normal policy. Needs the privilege to set SCHED_RR on the test's
    /// thread (root); says so and checks nothing more without it.
    #[test]
    fn a_hook_does_not_inherit_real_time_priority() {
        let param = libc::sched_param { sched_priority: 1 };
        // SAFETY: a valid sched_param for the call; 0 is this thread.
        if unsafe { libc::sched_setscheduler(0, libc::SCHED_RR, &param) } != 0 {
            eprintln!(
                "SKIPPED a_hook_does_not_inherit_real_time_priority: cannot set SCHED_RR here"
            );
            return;
        }
        // Field 41 of /proc/self/stat is the policy (0 normal, 2 SCHED_RR).
        let script =
            "p=$(cut -d')' -f2 /proc/self/stat | cut -d' ' -f40); echo \"policy $p\" >&2; exit 1";
        let outcome = rt().block_on(async {
            let mut hooks = Hooks::new(&[vip(&["/bin/sh", "-c", script], 5000)], "h1", "mcast0");
            claim_and_wait(&mut hooks).await
        });
        let normal = libc::sched_param { sched_priority: 0 };
        // SAFETY: as above.
        unsafe { libc::sched_setscheduler(0, libc::SCHED_OTHER, &normal) };
        assert_eq!(
            outcome,
            Outcome::Failed("exit status 1: policy 0".to_string())
        );
    }

    #[test]
    fn a_claim_that_ends_kills_the_run_and_ignores_its_result() {
        rt().block_on(async {
            let mut hooks = Hooks::new(&[vip(&["/bin/sleep", "30"], 60_000)], "h1", "mcast0");
            hooks.on_standing(0, Standing::Claimed { at: 0 }, |_| String::new());
            assert!(hooks.hooks[0].running.is_some(), "running");
            hooks.on_standing(
                0,
                Standing::Held {
                    since: 1,
                    why: Hold::SplitBrain { by: None },
                },
                |_| String::new(),
            );
            let f = tokio::time::timeout(Duration::from_secs(5), hooks.finished())
                .await
                .expect("killed at once")
                .expect("a report");
            hooks.finish(f);
            let (_, _, s) = hooks.each().next().expect("one hook");
            assert!(hooks.hooks[0].running.is_none() && s.runs_killed == 1 && s.done_at.is_none());
            assert_eq!(hooks.next_retry(), None, "no retry outside a claim");
        });
    }

    #[test]
    fn utc_spells_the_date() {
        let t = UNIX_EPOCH + Duration::from_secs(1_796_236_205);
        assert_eq!(utc(t), "2026-12-02T18:30:05Z");
        assert_eq!(
            utc(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
    }

    #[test]
    fn a_missing_program_is_a_failure_not_a_panic() {
        rt().block_on(async {
            let mut hooks = Hooks::new(&[vip(&["/nonexistent/hook"], 1000)], "h1", "mcast0");
            hooks.on_standing(0, Standing::Claimed { at: 0 }, |_| String::new());
            let (_, _, s) = hooks.each().next().expect("one hook");
            assert!(
                s.last_error
                    .as_deref()
                    .is_some_and(|e| e.contains("cannot start /nonexistent/hook")),
                "{:?}",
                s.last_error
            );
            assert!(hooks.next_retry().is_some());
        });
    }
}
