//! Spread 5.0.1 (and wackamole on it) in lab hosts. Debian does not package
//! either: `integration/build-thirdparty` builds them from the sources in
//! ../shared/thirdparty into target/thirdparty once; where the sources are
//! absent (a fresh clone) the tests say SKIPPED with that reason.
//!
//! Each daemon runs in a private mount and UTS namespace (its own /run for
//! `RuntimeDir`, its own /tmp for the unix socket every client would
//! otherwise share, its own hostname for wackamole); clients enter those
//! namespaces and reach the daemon by TCP on the host's loopback.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::Lab;

/// Where the built Spread and wackamole are.
pub struct Thirdparty {
    pub spread: PathBuf,
    pub wackamole: PathBuf,
}

impl Thirdparty {
    fn lib(&self) -> String {
        self.spread.join("lib").display().to_string()
    }
}

/// Builds (or finds built) Spread and wackamole; `None` after a visible
/// SKIPPED line when their sources are absent. A failed build panics.
pub fn built_or_skip(what: &str) -> Option<Thirdparty> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(root.join("integration/build-thirdparty"))
        .output()
        .expect("cannot run integration/build-thirdparty");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(3) {
        let _ = writeln!(std::io::stderr(), "SKIPPED {what}: {}", stderr.trim());
        return None;
    }
    assert!(
        out.status.success(),
        "integration/build-thirdparty failed: {stderr}"
    );
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    Some(Thirdparty {
        spread: dir.join("spread"),
        wackamole: dir.join("wackamole"),
    })
}

/// A Spread daemon: the process whose namespaces its clients enter.
pub struct SpreadNode {
    pub host: usize,
    pub name: String,
    pub pid: u32,
    /// What the node sees as /run.
    run: PathBuf,
}

/// An `spuser` client: commands go in by appending to `commands`, what it
/// prints comes out in `log`.
pub struct SpUser {
    commands: PathBuf,
    pub log: PathBuf,
}

impl SpUser {
    /// Sends spuser command lines (`j group`, `s group` then the text).
    pub fn send(&self, lines: &[&str]) {
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(&self.commands)
            .expect("cannot open the spuser command file");
        for l in lines {
            writeln!(f, "{l}").expect("cannot write a spuser command");
        }
    }

    pub fn output(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The member count of the last membership of `group` it saw.
    pub fn members(&self, group: &str) -> Option<usize> {
        let needle = format!("membership for group {group} with ");
        self.output().lines().rev().find_map(|l| {
            l.split(&needle)
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
    }
}

impl Lab {
    /// Starts the Spread daemon `name` of `conf` on host `host`.
    pub fn start_spread(
        &mut self,
        tp: &Thirdparty,
        host: usize,
        name: &str,
        conf: &str,
    ) -> SpreadNode {
        let base = self.path(&format!("spread{host}"));
        let (run, tmp) = (base.join("run"), base.join("tmp"));
        for d in [&run, &tmp] {
            fs::create_dir_all(d).expect("cannot create spread dirs");
        }
        fs::create_dir_all(run.join("spread")).expect("cannot create spread's RuntimeDir");
        // Inside, the node's files are under its own /run (the lab's
        // directory is under /tmp, which the node does not see).
        fs::write(run.join("spread.conf"), conf).expect("cannot write spread.conf");
        // wackamole knows itself by its hostname's address.
        self.set_host_entry(host, name, Some(&format!("10.77.0.{host}")));
        let script = format!(
            "chmod 1777 {tmp} && mount --bind {run} /run && mount --bind {tmp} /tmp && \
             hostname {name} && exec {spread} -n {name} -c /run/spread.conf",
            run = run.display(),
            tmp = tmp.display(),
            spread = tp.spread.join("sbin/spread").display(),
        );
        let log = self.path(&format!("spread{host}.log"));
        let pid = self.spawn_private(host, "spread", &script, true, &log);
        SpreadNode {
            host,
            name: name.to_string(),
            pid,
            run,
        }
    }

    /// Waits until the daemon of `node` takes clients (TCP 4803).
    pub fn wait_spread_ready(&self, node: &SpreadNode) {
        super::wait_for(
            &format!("spread {} to listen on 4803", node.name),
            Duration::from_secs(10),
            || {
                let out = self.try_exec(node.host, &["ss", "-Hltn", "sport = :4803"]);
                (!out.stdout.is_empty()).then_some(())
            },
        );
    }

    /// Starts `spuser -u user` against the daemon of `node`.
    pub fn start_spuser(&mut self, tp: &Thirdparty, node: &SpreadNode, user: &str) -> SpUser {
        let file = format!("spuser-{user}.in");
        let commands = node.run.join(&file);
        fs::write(&commands, "").expect("cannot create the spuser command file");
        let log = self.path(&format!("spuser-{user}.log"));
        // Line-buffered so the log shows each message as it arrives; tail
        // keeps spuser's stdin open (it quits at end of input).
        let script = format!(
            "tail -f -s 0.1 /run/{file} | LD_LIBRARY_PATH={lib} stdbuf -oL {spuser} -u {user} -s 4803@127.0.0.1",
            lib = tp.lib(),
            spuser = tp.spread.join("bin/spuser").display(),
        );
        let pid = node.pid.to_string();
        self.spawn(
            node.host,
            "spuser",
            &["nsenter", "-t", &pid, "-m", "-u", "sh", "-c", &script],
            &log,
        );
        SpUser { commands, log }
    }
}

impl Lab {
    /// Starts wackamole (in the foreground) with `conf` against the Spread
    /// daemon of `node`, in its namespaces; returns its pid.
    pub fn start_wackamole(&mut self, tp: &Thirdparty, node: &SpreadNode, conf: &str) -> u32 {
        fs::write(node.run.join("wackamole.conf"), conf).expect("cannot write wackamole.conf");
        fs::create_dir_all(node.run.join("wackamole")).expect("cannot create wackamole's run dir");
        let log = self.path(&format!("wackamole{}.log", node.host));
        let pid = node.pid.to_string();
        let lib = format!("LD_LIBRARY_PATH={}", tp.lib());
        let bin = tp.wackamole.join("sbin/wackamole").display().to_string();
        self.spawn(
            node.host,
            "wackamole",
            &[
                "nsenter",
                "-t",
                &pid,
                "-m",
                "-u",
                "env",
                &lib,
                &bin,
                "-d",
                "-c",
                "/run/wackamole.conf",
            ],
            &log,
        )
    }

    /// Crashes node `node`: its Spread daemon first (a client that dies
    /// before its daemon is a clean leave, not a crash), then everything
    /// else in its namespaces, wackamole included, all with SIGKILL.
    pub fn crash_spread(&mut self, node: SpreadNode) {
        self.crash_private(node.host, node.pid, node.pid);
    }
}
