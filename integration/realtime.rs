//! `node.realtime_priority` and `node.lock_memory` in real relays: set as
//! root before privileges are dropped and still in force once the relay
//! runs as `nobody`, on every thread; with memory locked the relay keeps
//! working (allocating). Where RLIMIT_MEMLOCK cannot be raised (no
//! CAP_SYS_RESOURCE, a finite hard limit, as in some containers) the relay
//! must refuse to start with the key's error instead. Needs root; skips
//! visibly without it.

use crate::lab;

use std::fs;
use std::process::Command;
use std::time::Duration;

use lab::{Lab, RelayOptions};

/// `(policy, rt_priority)` of a thread, from its /proc stat line (fields
/// 41 and 40, counted after the command name, which may hold spaces).
fn sched(stat: &str) -> Option<(u32, u32)> {
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3.
    let rt = fields.get(40 - 3)?.parse().ok()?;
    let policy = fields.get(41 - 3)?.parse().ok()?;
    Some((policy, rt))
}

fn assert_every_thread_rr(pid: u32, priority: u32) {
    let tasks: Vec<String> = fs::read_dir(format!("/proc/{pid}/task"))
        .expect("the relay's threads")
        .filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
        .collect();
    assert!(!tasks.is_empty());
    for tid in &tasks {
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")) else {
            continue; // ended since the listing
        };
        assert_eq!(
            sched(&stat),
            Some((libc::SCHED_RR as u32, priority)),
            "thread {tid} of relay {pid}: {stat}"
        );
    }
}

/// Whether this process could give the relay an unlimited RLIMIT_MEMLOCK:
/// the hard limit is unlimited already, or it may be raised.
fn memlock_can_be_unlimited() -> bool {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `l` is writable for the call's duration.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut l) } != 0 {
        return false;
    }
    if l.rlim_max == libc::RLIM_INFINITY {
        return true;
    }
    // CAP_SYS_RESOURCE is bit 24 of the effective set.
    let caps = fs::read_to_string("/proc/self/status").unwrap_or_default();
    caps.lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        .is_some_and(|c| c & (1 << 24) != 0)
}

#[test]
fn realtime_priority_and_locked_memory_take_effect() {
    if !lab::root_or_skip("realtime_priority_and_locked_memory_take_effect") {
        return;
    }
    let mut lab = Lab::new(2);
    let lock = memlock_can_be_unlimited();
    let opts = RelayOptions {
        realtime_priority: Some(10),
        lock_memory: lock,
        ..RelayOptions::default()
    };
    if !lock {
        // This host's RLIMIT_MEMLOCK stays finite: lock_memory must be
        // refused at start, before the relay creates anything.
        let mut refused = opts.clone();
        refused.lock_memory = true;
        lab.configure_relays(refused);
        let out = Command::new("ip")
            .args(["netns", "exec", &lab.ns(1)])
            .arg(lab::relay_bin())
            .args(["run", "-c"])
            .arg(lab.relay_config_path(1))
            .arg("-k")
            .arg(lab.key_path(1))
            .output()
            .expect("run the relay");
        let err = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(
            !out.status.success(),
            "started without locked memory: {err}"
        );
        assert!(
            err.contains("node.lock_memory = true: RLIMIT_MEMLOCK")
                && err.contains("LimitMEMLOCK=infinity"),
            "{err}"
        );
        eprintln!(
            "NOTE realtime: RLIMIT_MEMLOCK cannot be raised here; checked that lock_memory is refused, and SCHED_RR alone"
        );
    }
    lab.start_relays(opts);
    // Running, so past the privilege drop, and still working: every peer
    // confirmed.
    lab.wait_relays_confirmed(Duration::from_secs(10));
    for h in lab.host_ids() {
        let pid = lab.relay_pid(h);
        assert_ne!(lab::status_field(pid, "Uid:"), 0, "h{h} still runs as root");
        assert_every_thread_rr(pid, 10);
        let log = fs::read_to_string(lab.relay_log(h)).unwrap_or_default();
        assert!(log.contains("SCHED_RR"), "h{h}'s log:\n{log}");
        if lock {
            let locked_kb = lab::status_field(pid, "VmLck:");
            let size_kb = lab::status_field(pid, "VmSize:");
            assert!(
                locked_kb > 0 && locked_kb * 2 >= size_kb,
                "h{h}: VmLck {locked_kb} kB of VmSize {size_kb} kB"
            );
            assert!(log.contains("memory locked"), "h{h}'s log:\n{log}");
        }
    }
}
