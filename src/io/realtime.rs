//! Heartbeats before everything else on the host: real-time scheduling
//! (`node.realtime_priority`) and locked memory (`node.lock_memory`), like
//! keepalived's `vrrp_rt_priority` and `vrrp_no_swap`.
//!
//! Both need privileges the relay gives up after set-up, so they are
//! applied once, before the drop, and stay in force for the unprivileged
//! relay: threads created later inherit SCHED_RR, and the memory limit is
//! raised first so that allocations after the drop (which `MCL_FUTURE`
//! locks too, within `RLIMIT_MEMLOCK`) still succeed. Any failure is an
//! error naming the key: a relay asked for real-time priority does not run
//! silently without it.

use std::fmt;
use std::io;

/// Memory the unprivileged relay may still lock (allocate) beyond what it
/// holds when `mlockall` returns: far above what it ever grows by (status
/// clients, metrics renders, peers added on reload).
pub(crate) const MEMLOCK_HEADROOM: u64 = 64 << 20;

/// What [`apply`] did, for the start-up log and `check`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Applied {
    /// The SCHED_RR priority and how many threads were moved to it.
    pub(crate) priority: Option<(u8, usize)>,
    /// Bytes locked right after `mlockall`, and `RLIMIT_MEMLOCK`'s soft
    /// limit (`None`: unlimited); `None` when memory is not locked.
    pub(crate) locked: Option<(u64, Option<u64>)>,
}

/// Real-time scheduling or locked memory could not be set up.
#[derive(Debug)]
pub enum RealtimeError {
    /// The threads of the process could not be listed.
    Threads(io::Error),
    Schedule {
        priority: u8,
        source: io::Error,
    },
    /// `RLIMIT_MEMLOCK` is too low and could not be raised.
    MemlockLimit {
        limit: u64,
        needed: u64,
        source: Option<io::Error>,
    },
    Lock(io::Error),
}

impl fmt::Display for RealtimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RealtimeError::Threads(e) => write!(
                f,
                "node.realtime_priority: listing the relay's threads in /proc/self/task: {e}"
            ),
            RealtimeError::Schedule { priority, source } => {
                write!(
                    f,
                    "node.realtime_priority = {priority}: sched_setscheduler(SCHED_RR): {source}"
                )?;
                if source.kind() == io::ErrorKind::PermissionDenied {
                    f.write_str(" (the relay needs root with CAP_SYS_NICE; under systemd, CAP_SYS_NICE in CapabilityBoundingSet and RestrictRealtime=no, and a cgroup that allows real-time tasks; or leave realtime_priority out)")?;
                }
                Ok(())
            }
            RealtimeError::MemlockLimit {
                limit,
                needed,
                source,
            } => {
                write!(
                    f,
                    "node.lock_memory = true: RLIMIT_MEMLOCK is {limit} bytes, but the relay needs at least {needed} to keep allocating once unprivileged"
                )?;
                if let Some(e) = source {
                    write!(f, ", and raising it failed: {e}")?;
                }
                f.write_str(" (set LimitMEMLOCK=infinity in the unit, or run as root with CAP_SYS_RESOURCE; or leave lock_memory out)")
            }
            RealtimeError::Lock(e) => {
                write!(f, "node.lock_memory = true: mlockall: {e}")?;
                f.write_str(" (the relay needs CAP_IPC_LOCK or a large enough RLIMIT_MEMLOCK: LimitMEMLOCK=infinity in the unit; or leave lock_memory out)")
            }
        }
    }
}

impl std::error::Error for RealtimeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RealtimeError::Threads(e)
            | RealtimeError::Schedule { source: e, .. }
            | RealtimeError::Lock(e) => Some(e),
            RealtimeError::MemlockLimit { source, .. } => source
                .as_ref()
                .map(|e| e as &(dyn std::error::Error + 'static)),
        }
    }
}

/// Applies `priority` (SCHED_RR, every thread of the process) and
/// `lock_memory`; to be called while still privileged. Neither asked for:
/// nothing is done.
pub(crate) fn apply(priority: Option<u8>, lock_memory: bool) -> Result<Applied, RealtimeError> {
    let priority = priority
        .map(|p| schedule_all(p).map(|threads| (p, threads)))
        .transpose()?;
    let locked = lock_memory.then(lock_all).transpose()?;
    Ok(Applied { priority, locked })
}

/// Every thread that exists now: `sched_setscheduler` moves one thread,
/// and threads the runtime started already (the DNS lookups' blocking
/// pool) would not inherit it. Returns how many were moved.
fn schedule_all(priority: u8) -> Result<usize, RealtimeError> {
    let param = libc::sched_param {
        sched_priority: i32::from(priority),
    };
    let mut moved = 0;
    for entry in std::fs::read_dir("/proc/self/task").map_err(RealtimeError::Threads)? {
        let entry = entry.map_err(RealtimeError::Threads)?;
        let Some(tid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        // SAFETY: `param` is a valid sched_param for the call's duration.
        let r = unsafe { libc::sched_setscheduler(tid, libc::SCHED_RR, &param) };
        if r != 0 {
            let source = io::Error::last_os_error();
            // A thread that ended since the listing needs nothing.
            if source.raw_os_error() == Some(libc::ESRCH) {
                continue;
            }
            return Err(RealtimeError::Schedule { priority, source });
        }
        moved += 1;
    }
    Ok(moved)
}

/// Raises `RLIMIT_MEMLOCK` (to unlimited if allowed, else to its hard
/// limit), locks every page now and later, and checks that the limit
/// leaves [`MEMLOCK_HEADROOM`] to allocate once unprivileged.
fn lock_all() -> Result<(u64, Option<u64>), RealtimeError> {
    let raise_failed = raise_memlock().err();
    let limit = memlock_limit().map_err(RealtimeError::Lock)?;
    // SAFETY: no pointers; affects only this process's address space.
    if unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) } != 0 {
        let e = io::Error::last_os_error();
        if let (Some(limit), Some(source)) = (limit, raise_failed) {
            return Err(RealtimeError::MemlockLimit {
                limit,
                needed: MEMLOCK_HEADROOM,
                source: Some(source),
            });
        }
        return Err(RealtimeError::Lock(e));
    }
    let locked = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| vm_locked(&s))
        .unwrap_or(0);
    if let Some(limit) = limit {
        let needed = locked.saturating_add(MEMLOCK_HEADROOM);
        if limit < needed {
            // Unlocked again: the relay stops, and nothing should stay
            // pinned for the short rest of its life.
            // SAFETY: no arguments.
            unsafe { libc::munlockall() };
            return Err(RealtimeError::MemlockLimit {
                limit,
                needed,
                source: raise_failed,
            });
        }
    }
    Ok((locked, limit))
}

/// Unlimited if this process may raise the hard limit (CAP_SYS_RESOURCE),
/// else the soft limit up to the hard one (systemd's LimitMEMLOCK=).
fn raise_memlock() -> io::Result<()> {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: `unlimited` is a valid rlimit for the call's duration.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) } == 0 {
        return Ok(());
    }
    let denied = io::Error::last_os_error();
    let mut now = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `now` is writable for the call's duration.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut now) } != 0 {
        return Err(io::Error::last_os_error());
    }
    now.rlim_cur = now.rlim_max;
    // SAFETY: as above.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &now) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if now.rlim_max == libc::RLIM_INFINITY {
        Ok(())
    } else {
        Err(denied)
    }
}

/// The soft limit in bytes; `None`: unlimited.
pub(crate) fn memlock_limit() -> io::Result<Option<u64>> {
    let mut now = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `now` is writable for the call's duration.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut now) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((now.rlim_cur != libc::RLIM_INFINITY).then_some(now.rlim_cur))
}

/// `VmLck` of a /proc/PID/status text, in bytes.
pub(crate) fn vm_locked(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmLck:"))?;
    let kb = line
        .trim_start_matches("VmLck:")
        .trim()
        .trim_end_matches("kB")
        .trim();
    kb.parse::<u64>().ok().map(|k| k * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_locked_reads_proc_status() {
        let status = "Name:\tmcast-relay\nVmPeak:\t  100 kB\nVmLck:\t    2048 kB\nVmPin:\t0 kB\n";
        assert_eq!(vm_locked(status), Some(2048 * 1024));
        assert_eq!(vm_locked("VmLck:\t0 kB\n"), Some(0));
        assert_eq!(vm_locked("Name: x\n"), None);
        assert_eq!(vm_locked("VmLck: lots kB\n"), None);
    }

    #[test]
    fn nothing_asked_nothing_done() {
        assert_eq!(
            apply(None, false).expect("nothing to fail"),
            Applied {
                priority: None,
                locked: None,
            }
        );
    }

    /// The errors name the key and its value and say what the unit needs.
    #[test]
    fn errors_name_the_key_and_the_fix() {
        let e = RealtimeError::Schedule {
            priority: 50,
            source: io::Error::from_raw_os_error(libc::EPERM),
        }
        .to_string();
        assert!(
            e.starts_with("node.realtime_priority = 50: sched_setscheduler"),
            "{e}"
        );
        assert!(e.contains("Operation not permitted"), "{e}");
        assert!(
            e.contains("CAP_SYS_NICE") && e.contains("RestrictRealtime=no"),
            "{e}"
        );
        let e = RealtimeError::MemlockLimit {
            limit: 8 << 20,
            needed: 90 << 20,
            source: Some(io::Error::from_raw_os_error(libc::EPERM)),
        }
        .to_string();
        assert!(
            e.starts_with("node.lock_memory = true: RLIMIT_MEMLOCK"),
            "{e}"
        );
        assert!(e.contains("LimitMEMLOCK=infinity"), "{e}");
        let e = RealtimeError::Lock(io::Error::from_raw_os_error(libc::ENOMEM)).to_string();
        assert!(e.starts_with("node.lock_memory = true: mlockall"), "{e}");
        assert!(e.contains("CAP_IPC_LOCK"), "{e}");
    }

    /// Without privilege (as the unit tests run when not root), asking
    /// for real-time priority fails with the typed error rather than
    /// running without it. As root it is applied, then undone.
    #[test]
    fn realtime_priority_is_applied_or_refused() {
        if nix::unistd::getuid().is_root() {
            return;
        }
        match apply(Some(10), false) {
            Err(RealtimeError::Schedule { priority: 10, .. }) => {}
            // RLIMIT_RTPRIO may allow it to an unprivileged user.
            Ok(a) => assert_eq!(a.priority.map(|(p, _)| p), Some(10)),
            Err(e) => panic!("{e}"),
        }
    }
}
