//! The lab every end-to-end test, the demo and the benchmark run in: N hosts
//! (network namespaces `h1..hN`) whose `eth0` hangs off a bridge in a
//! namespace `cloud` that, like a cloud network, drops every frame with a
//! multicast or broadcast destination MAC except ARP and IPv6 neighbour
//! discovery. Unicast between hosts works; nothing leaves the namespaces.
//!
//! Underlay: 10.77.0.i/24 and fd77::i/64 on eth0; the VIPs keepalived moves
//! are 10.77.0.100 and fd77::100 (and 10.77.0.101 up for the clusters of
//! [`vrrp_cluster`]). Overlay (mcast0): 10.250.0.i/24 and fd00:250::i/64.
//! The IPv6 addresses spell i with its decimal digits (fd77::16 for h16):
//! not i's value, but unique and readable. Host addresses stop at
//! [`MAX_HOSTS`]; the lab's other addresses on the cloud lie above them.
//!
//! Labs are serialised (a process-wide mutex and a flock), named uniquely
//! and torn down on drop, including every process left in their
//! namespaces, so a failing test cleans up after itself too.
//!
//! The relays are configured as a real cluster is: one key pair per host
//! (`mcast-relay keygen -o <lab>/hN.key`), one cluster file listing every
//! member, copied byte for byte to each host (`<lab>/relayN.toml`), and
//! each relay started with `run -c <its copy> -k <its key>`. The hosts share
//! one filesystem, so each relay runs in a mount namespace of its own where
//! `<lab>/hN/` is bound over `<lab>/run/`: the status socket the one file
//! names (`<lab>/run/status.sock`) is then each host's own, as `/run` is on
//! real hosts.

#![allow(dead_code)] // each target (test, demo, bench) uses a different part

pub mod capture;
pub mod chaos;
pub mod cloud;
pub mod corosync;
pub mod examples;
pub mod flood;
pub mod groups;
pub mod haproxy;
pub mod heartbeat;
pub mod holders;
pub mod impair;
pub mod keepalived;
pub mod pacemaker;
pub mod spread;
pub mod ucarp;
pub mod vip;
pub mod vrids;
pub mod vrrp_cluster;

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// The bridge's drop rule, in its own table so opening the bridge (for the
/// native-multicast baseline) is one `delete table`.
const CLOUD_RULES: &str = "table bridge mcast_relay_lab {
  chain forward {
    type filter hook forward priority 0; policy accept;
    ether type arp accept
    icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
    ether daddr & 01:00:00:00:00:00 == 01:00:00:00:00:00 counter drop
  }
}
";

/// Every namespace a lab creates starts with this, followed by the pid of
/// the process that owns it, so stale labs of dead processes can be swept.
const NS_PREFIX: &str = "mrlab";
const LOCK_FILE: &str = "/run/lock/mcast-relay-lab.lock";

static IN_PROCESS: Mutex<()> = Mutex::new(());
static SEQ: AtomicU32 = AtomicU32::new(0);

/// The most hosts a lab can have. Host h owns 10.77.0.h and 10.250.0.h;
/// the lab's own addresses on the cloud start just above: 10.77.0.97 (a
/// test's spare address for a host), .98 and .99 (the outsider), .100 and
/// up (VIPs). Names, namespaces, bridge ports and configs have no other
/// bound; how many hosts a 2-core machine runs well is another matter
/// (16 with keepalived: `integration/scale.rs`).
pub const MAX_HOSTS: usize = 96;

/// The programs the lab needs, with the Debian package each comes from.
pub const BASE_PROGRAMS: &[(&str, &str)] = &[
    ("ip", "iproute2"),
    ("nft", "nftables"),
    ("unshare", "util-linux"),
    ("nsenter", "util-linux"),
    ("mount", "mount"),
];

/// True when the caller may build a lab; otherwise prints a visible skip
/// line (past the test harness's output capture) and returns false.
pub fn root_or_skip(what: &str) -> bool {
    if is_root() {
        return true;
    }
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {what}: needs root (network namespaces); run `sudo ./integration/run-tests`"
    );
    false
}

/// The start of every lab benchmark: false (nothing to do) when cargo
/// only probes it (`cargo bench -- --list`, which bench_lab.rs answers
/// with the names before any benchmark starts; `cargo test --benches`) or
/// without root.
pub fn bench_may_run(what: &str) -> bool {
    if std::env::args().any(|a| a == "--list") {
        return false;
    }
    root_or_skip(what)
}

pub fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// Panics naming the Debian package of any program that is missing: as
/// root a missing program is a broken set-up, not a reason to skip.
pub fn require_programs(programs: &[(&str, &str)]) {
    let path = std::env::var("PATH").unwrap_or_default();
    let dirs: Vec<&str> = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/libexec/heartbeat"])
        .collect();
    let missing: Vec<String> = programs
        .iter()
        .filter(|(prog, _)| {
            let found = if Path::new(prog).is_absolute() {
                Path::new(prog).exists()
            } else {
                dirs.iter().any(|d| Path::new(d).join(prog).exists())
            };
            !found
        })
        .map(|(prog, pkg)| format!("{prog} (apt-get install {pkg})"))
        .collect();
    assert!(
        missing.is_empty(),
        "missing programs: {}; ./integration/install-deps installs them all",
        missing.join(", ")
    );
}

/// The relay binary under test: the one cargo built for this target, or
/// `MCAST_RELAY_BIN`, or the sibling of the running executable's directory.
pub fn relay_bin() -> PathBuf {
    if let Ok(p) = std::env::var("MCAST_RELAY_BIN") {
        return PathBuf::from(p);
    }
    if let Some(p) = option_env!("CARGO_BIN_EXE_mcast-relay") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("cannot find the running executable");
    // target/<profile>/examples/x or target/<profile>/deps/x
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("executable has no grandparent directory");
    profile_dir.join("mcast-relay")
}

/// How the relays of a lab are configured.
#[derive(Clone, Debug)]
pub struct RelayOptions {
    pub presets: Vec<&'static str>,
    /// Peers' endpoints by their IPv6 underlay address, listening on `[::]`.
    pub underlay_v6: bool,
    pub mtu: Option<u32>,
    /// `node.max_clock_skew` in seconds; `None` keeps the default.
    pub max_clock_skew: Option<f64>,
    /// Peers' endpoints as names (`h<N>.lab`), resolved through each
    /// host's own hosts file (see [`Lab::set_host_entry`]).
    pub endpoint_names: bool,
    /// `node.resolve_interval` in seconds; `None` keeps the default.
    pub resolve_interval: Option<f64>,
    /// Serve metrics on 127.0.0.1:9712 inside each host.
    pub metrics: bool,
    /// `node.quorum`.
    pub quorum: bool,
    /// `node.keepalive` in seconds; `None` keeps the default.
    pub keepalive: Option<f64>,
    /// `interface.mode = "tap"`: Ethernet frames (ucarp).
    pub tap: bool,
    /// `insecure = true` instead of keys (benchmarks' baseline): each relay
    /// then finds its member by its endpoint's address, local in its host.
    pub insecure: bool,
    /// `node.inject_rate_limit`; `None` keeps the default.
    pub inject_rate_limit: Option<u32>,
    /// `node.realtime_priority`; `None` leaves it out (normal priority).
    pub realtime_priority: Option<u8>,
    /// `node.lock_memory`.
    pub lock_memory: bool,
    /// `node.redundancy`; `None` keeps the default.
    pub redundancy: Option<u8>,
    /// `node.path_mode` ("all" or "best"); `None` keeps the default.
    pub path_mode: Option<&'static str>,
    /// More tables at the end of the cluster file (`[[vip]]`).
    pub tables: String,
}

impl Default for RelayOptions {
    fn default() -> Self {
        RelayOptions {
            presets: vec!["vrrp"],
            underlay_v6: false,
            mtu: None,
            max_clock_skew: None,
            endpoint_names: false,
            resolve_interval: None,
            metrics: false,
            quorum: false,
            keepalive: None,
            tap: false,
            insecure: false,
            inject_rate_limit: None,
            realtime_priority: None,
            lock_memory: false,
            redundancy: None,
            path_mode: None,
            tables: String::new(),
        }
    }
}

/// A process the lab started and must stop.
struct Proc {
    what: String,
    child: Child,
}

pub struct Lab {
    pub id: String,
    pub dir: PathBuf,
    pub hosts: usize,
    relays: Vec<Option<Child>>,
    /// The further relay instances of [`Lab::start_relay_instances`]:
    /// (host, instance) and its process; instance 0 is `relays`.
    instances: Vec<((usize, usize), Child)>,
    relay_opts: RelayOptions,
    /// The hosts the cluster file lists as members (all, unless changed).
    members: Vec<usize>,
    /// Each member's public key, as `keygen` printed it, by host number.
    public_keys: HashMap<usize, String>,
    outsider: bool,
    procs: Vec<Proc>,
    _lock_file: File,
    _guard: MutexGuard<'static, ()>,
}

impl Lab {
    /// Builds the namespaces and the blocking cloud bridge.
    pub fn new(hosts: usize) -> Lab {
        assert!(
            (2..=MAX_HOSTS).contains(&hosts),
            "a lab has 2 to {MAX_HOSTS} hosts"
        );
        require_programs(BASE_PROGRAMS);
        let guard = IN_PROCESS.lock().unwrap_or_else(|e| e.into_inner());
        let lock_file = File::create(LOCK_FILE)
            .or_else(|_| File::create("/tmp/mcast-relay-lab.lock"))
            .expect("cannot create the lab lock file");
        // SAFETY: flock on a file descriptor we own; blocks until other
        // processes' labs are gone.
        let rc = unsafe { libc::flock(lock_file.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock {LOCK_FILE} failed");
        sweep_stale();

        let id = format!(
            "{NS_PREFIX}{}x{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join(&id);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("cannot create the lab directory");
        let mut lab = Lab {
            id,
            dir,
            hosts,
            relays: (0..hosts).map(|_| None).collect(),
            instances: Vec::new(),
            relay_opts: RelayOptions::default(),
            members: (1..=hosts).collect(),
            public_keys: HashMap::new(),
            outsider: false,
            procs: Vec::new(),
            _lock_file: lock_file,
            _guard: guard,
        };
        lab.build();
        lab
    }

    pub fn ns(&self, host: usize) -> String {
        format!("{}-h{host}", self.id)
    }

    fn cloud(&self) -> String {
        format!("{}-cloud", self.id)
    }

    /// The namespace of the outsider (see [`Lab::add_outsider`]).
    pub fn outsider_ns(&self) -> String {
        format!("{}-x", self.id)
    }

    /// Adds a stranger on the cloud network: 10.77.0.99 on its eth0, no
    /// relay, no key. It also holds `spoofed` (another host's underlay
    /// address) to send from, but never answers ARP for it, so the real
    /// owner's traffic is not diverted.
    pub fn add_outsider(&mut self, spoofed: &str) -> String {
        let ns = self.outsider_ns();
        let cloud = self.cloud();
        sh(&["ip", "netns", "add", &ns]);
        self.outsider = true;
        sh(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
        in_ns(
            &ns,
            &[
                "sysctl",
                "-qw",
                "net.ipv4.conf.all.arp_ignore=8",
                "net.ipv4.conf.default.arp_ignore=8",
                "net.ipv4.conf.all.arp_announce=2",
            ],
        );
        sh(&[
            "ip", "-n", &cloud, "link", "add", "vx", "type", "veth", "peer", "name", "eth0",
            "netns", &ns,
        ]);
        sh(&[
            "ip", "-n", &cloud, "link", "set", "vx", "master", "br0", "up",
        ]);
        add_address(&ns, "10.77.0.99/24", &[]);
        add_address(&ns, &format!("{spoofed}/32"), &[]);
        sh(&["ip", "-n", &ns, "link", "set", "eth0", "up"]);
        ns
    }

    pub fn host_ids(&self) -> impl Iterator<Item = usize> + use<> {
        1..=self.hosts
    }

    fn build(&mut self) {
        let cloud = self.cloud();
        sh(&["ip", "netns", "add", &cloud]);
        // IPv6 off in the cloud itself so the bridge never speaks on its own.
        in_ns(
            &cloud,
            &[
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ],
        );
        sh(&["ip", "-n", &cloud, "link", "set", "lo", "up"]);
        sh(&[
            "ip",
            "-n",
            &cloud,
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ]);
        sh(&["ip", "-n", &cloud, "link", "set", "br0", "up"]);
        self.close_bridge();
        for h in self.host_ids() {
            let ns = self.ns(h);
            sh(&["ip", "netns", "add", &ns]);
            sh(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
            in_ns(
                &ns,
                &[
                    "sysctl",
                    "-qw",
                    "net.ipv4.conf.all.rp_filter=1",
                    "net.ipv4.conf.default.rp_filter=1",
                ],
            );
            let port = format!("v{h}");
            sh(&[
                "ip", "-n", &cloud, "link", "add", &port, "type", "veth", "peer", "name", "eth0",
                "netns", &ns,
            ]);
            sh(&[
                "ip", "-n", &cloud, "link", "set", &port, "master", "br0", "up",
            ]);
            add_address(&ns, &format!("10.77.0.{h}/24"), &[]);
            add_address(&ns, &format!("fd77::{h}/64"), &["nodad"]);
            sh(&["ip", "-n", &ns, "link", "set", "eth0", "up"]);
        }
    }

    /// Makes the cloud drop multicast and broadcast (the default).
    pub fn close_bridge(&self) {
        nft(&self.cloud(), CLOUD_RULES);
    }

    /// Cuts host `h` off from all others in the cloud, both directions.
    pub fn partition(&self, h: usize) {
        let port = format!("v{h}");
        nft(
            &self.cloud(),
            &format!(
                "table bridge lab_partition {{\n chain forward {{\n  type filter hook forward priority -200;\n  \
                 iifname \"{port}\" drop\n  oifname \"{port}\" drop\n }}\n}}\n"
            ),
        );
    }

    /// Undoes [`Lab::partition`].
    pub fn heal(&self) {
        in_ns(
            &self.cloud(),
            &["nft", "delete", "table", "bridge", "lab_partition"],
        );
    }

    /// Lets multicast and broadcast through, as on a LAN: the baseline.
    pub fn open_bridge(&self) {
        in_ns(
            &self.cloud(),
            &["nft", "delete", "table", "bridge", "mcast_relay_lab"],
        );
    }

    /// Frames the bridge has dropped so far.
    pub fn bridge_drops(&self) -> u64 {
        let out = in_ns(
            &self.cloud(),
            &["nft", "list", "table", "bridge", "mcast_relay_lab"],
        );
        let text = String::from_utf8_lossy(&out.stdout);
        text.split_whitespace()
            .skip_while(|w| *w != "packets")
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// Reads a sysctl inside a host.
    pub fn sysctl(&self, host: usize, key: &str) -> String {
        let out = in_ns(&self.ns(host), &["sysctl", "-n", key]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Runs a command in a host; panics if it fails.
    pub fn exec(&self, host: usize, args: &[&str]) -> Output {
        in_ns(&self.ns(host), args)
    }

    /// Runs a command in a host and returns its output, failing or not.
    pub fn try_exec(&self, host: usize, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.ns(host)])
            .args(args)
            .output()
            .expect("cannot run ip netns exec")
    }

    /// Starts `script` (sh) in a host inside a private mount namespace (and
    /// UTS namespace with `uts`), for daemons with fixed state paths.
    pub(crate) fn spawn_private(
        &mut self,
        host: usize,
        what: &str,
        script: &str,
        uts: bool,
        log: &Path,
    ) -> u32 {
        let mut args = vec!["unshare", "-m"];
        if uts {
            args.push("-u");
        }
        args.extend(["--propagation", "private", "sh", "-c", script]);
        self.spawn(host, what, &args, log)
    }

    /// Kills with SIGKILL `pid`, a process in host `host` under
    /// [`Lab::spawn_private`], and then every other process in its mount
    /// namespace: a daemon and all it forked, even what left its process
    /// group, die at once as in a crash, the daemon first; the relay and
    /// the lab's monitors in that host live on. The process the lab
    /// spawned (`spawned`) is reaped.
    pub fn crash_private(&mut self, host: usize, pid: u32, spawned: u32) {
        let mnt = |p: u32| fs::read_link(format!("/proc/{p}/ns/mnt")).ok();
        let private = mnt(pid).unwrap_or_else(|| panic!("h{host}: process {pid} is not running"));
        signal(pid, libc::SIGKILL);
        let ns = self.ns(host);
        wait_for(
            &format!("h{host}'s processes in the mount namespace of {pid} to die"),
            Duration::from_secs(5),
            || {
                let pids: Vec<u32> = namespace_pids(&ns)
                    .into_iter()
                    .filter(|p| mnt(*p).as_ref() == Some(&private))
                    .collect();
                for p in &pids {
                    signal(*p, libc::SIGKILL);
                }
                pids.is_empty().then_some(())
            },
        );
        self.reap(spawned);
    }

    /// Starts a long-running process in a host, its output in `log`.
    pub fn spawn(&mut self, host: usize, what: &str, args: &[&str], log: &Path) -> u32 {
        let child = self.spawn_child(host, args, log);
        let pid = child.id();
        self.procs.push(Proc {
            what: format!("h{host} {what}"),
            child,
        });
        pid
    }

    /// Waits for a process started with [`Lab::spawn`] that was killed.
    pub fn reap(&mut self, pid: u32) {
        if let Some(i) = self.procs.iter().position(|p| p.child.id() == pid) {
            let mut p = self.procs.swap_remove(i);
            let _ = p.child.wait();
        }
    }

    pub(crate) fn spawn_child(&self, host: usize, args: &[&str], log: &Path) -> Child {
        let out = File::create(log).expect("cannot create a log file");
        let err = out.try_clone().expect("cannot clone a log file handle");
        Command::new("ip")
            .args(["netns", "exec", &self.ns(host)])
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {args:?}: {e}"))
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes the keys of the members that have none yet, and the cluster
    /// file, the same bytes for every host.
    pub fn configure_relays(&mut self, opts: RelayOptions) {
        if opts.endpoint_names {
            for h in self.host_ids() {
                for p in self.host_ids() {
                    self.set_host_entry(h, &format!("h{p}.lab"), Some(&format!("10.77.0.{p}")));
                }
            }
        }
        self.relay_opts = opts;
        let cfg = self.cluster_config();
        self.write_cluster_file(&cfg);
    }

    /// The private key file of host `h` (`run -k`, `check -k`).
    pub fn key_path(&self, h: usize) -> PathBuf {
        self.path(&format!("h{h}.key"))
    }

    /// The public key of host `h` (base64), its key pair made with
    /// `mcast-relay keygen -o` the first time it is asked for.
    pub fn public_key(&mut self, h: usize) -> String {
        if let Some(k) = self.public_keys.get(&h) {
            return k.clone();
        }
        let key = self.key_path(h);
        let out = if key.exists() {
            Command::new(relay_bin())
                .args(["pubkey", "-k"])
                .arg(&key)
                .output()
                .expect("cannot run mcast-relay pubkey")
        } else {
            Command::new(relay_bin())
                .args(["keygen", "-o"])
                .arg(&key)
                .output()
                .expect("cannot run mcast-relay keygen")
        };
        assert!(
            out.status.success(),
            "keygen/pubkey for h{h} failed: {out:?}"
        );
        let printed = String::from_utf8_lossy(&out.stdout);
        let k = public_key_line(&printed).unwrap_or_else(|| {
            panic!("no `public_key = \"...\"` line in what keygen/pubkey printed: {printed}")
        });
        self.public_keys.insert(h, k.clone());
        k
    }

    /// A new key pair for host `h`, written beside its key file (the
    /// running relay still has the old one): returns the new file, whose
    /// public key the cluster files written from now on list for `h`.
    pub fn rotate_key(&mut self, h: usize) -> PathBuf {
        let new = self.path(&format!("h{h}.key.new"));
        let out = Command::new(relay_bin())
            .args(["keygen", "-o"])
            .arg(&new)
            .output()
            .expect("cannot run mcast-relay keygen");
        assert!(out.status.success(), "keygen for h{h} failed: {out:?}");
        let printed = String::from_utf8_lossy(&out.stdout);
        let k = public_key_line(&printed)
            .unwrap_or_else(|| panic!("no `public_key` line in what keygen printed: {printed}"));
        self.public_keys.insert(h, k);
        new
    }

    /// The cluster file as the lab wrote it; each host has a copy of it.
    pub fn cluster_file(&self) -> PathBuf {
        self.path("cluster.toml")
    }

    /// Host `h`'s copy of the cluster file, the one its relay reads.
    pub fn relay_config_path(&self, h: usize) -> PathBuf {
        self.path(&format!("relay{h}.toml"))
    }

    /// Writes `text` as the cluster file and copies it to every host.
    pub fn write_cluster_file(&self, text: &str) {
        let file = self.cluster_file();
        fs::write(&file, text).expect("cannot write the cluster file");
        for h in self.host_ids() {
            fs::copy(&file, self.relay_config_path(h)).expect("cannot copy the cluster file");
        }
    }

    /// Checks that every host's copy of the cluster file has the bytes of
    /// the one the lab wrote, by SHA-256; returns that hash in hex.
    pub fn assert_cluster_files_identical(&self) -> String {
        let hash = |p: &Path| {
            let bytes = fs::read(p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
            ring::digest::digest(&ring::digest::SHA256, &bytes)
                .as_ref()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        let want = hash(&self.cluster_file());
        for h in self.host_ids() {
            assert_eq!(
                hash(&self.relay_config_path(h)),
                want,
                "h{h}'s cluster file differs from the one written for the cluster"
            );
        }
        want
    }

    /// The directory each relay sees its own `<lab>/hN/` at, and so the
    /// directory of the status socket the cluster file names.
    fn run_dir(&self) -> PathBuf {
        self.path("run")
    }

    /// Host `h`'s own run directory, bound over [`Lab::run_dir`] for its
    /// relay.
    fn host_run_dir(&self, h: usize) -> PathBuf {
        self.path(&format!("h{h}"))
    }

    /// `node.status_socket` in the cluster file: the same path on every
    /// host, each relay's own through its mount namespace.
    pub fn cluster_status_socket(&self) -> PathBuf {
        self.run_dir().join("status.sock")
    }

    fn cluster_config(&mut self) -> String {
        let o = self.relay_opts.clone();
        let listen = if o.underlay_v6 {
            "[::]:7112"
        } else {
            "0.0.0.0:7112"
        };
        let presets: Vec<String> = o.presets.iter().map(|p| format!("\"{p}\"")).collect();
        let mut node_extra = o
            .max_clock_skew
            .map(|s| format!("max_clock_skew = {s:?}\n"))
            .unwrap_or_default();
        if let Some(r) = o.resolve_interval {
            node_extra += &format!("resolve_interval = {r:?}\n");
        }
        if o.metrics {
            node_extra += "metrics_listen = \"127.0.0.1:9712\"\n";
        }
        if o.quorum {
            node_extra += "quorum = true\n";
        }
        if let Some(k) = o.keepalive {
            node_extra += &format!("keepalive = {k:?}\n");
        }
        if let Some(r) = o.inject_rate_limit {
            node_extra += &format!("inject_rate_limit = {r}\n");
        }
        if let Some(p) = o.realtime_priority {
            node_extra += &format!("realtime_priority = {p}\n");
        }
        if o.lock_memory {
            node_extra += "lock_memory = true\n";
        }
        if let Some(r) = o.redundancy {
            node_extra += &format!("redundancy = {r}\n");
        }
        if let Some(m) = o.path_mode {
            node_extra += &format!("path_mode = \"{m}\"\n");
        }
        node_extra += &format!(
            "status_socket = \"{}\"\n",
            self.cluster_status_socket().display()
        );
        // No key_file: each relay is given its own with `run -k`.
        let auth = if o.insecure { "insecure = true\n" } else { "" };
        let mut s = format!(
            "[node]\nlisten = \"{listen}\"\n{auth}{node_extra}\n\
             [interface]\nname = \"mcast0\"\nsubnet = \"10.250.0.0/24\"\nsubnet6 = \"fd00:250::/64\"\n"
        );
        if let Some(mtu) = o.mtu {
            s += &format!("mtu = {mtu}\n");
        }
        if o.tap {
            s += "mode = \"tap\"\n";
        }
        s += &format!("\n[allow]\npresets = [{}]\n", presets.join(", "));
        for p in self.members.clone() {
            let endpoint = if o.endpoint_names {
                format!("h{p}.lab:7112")
            } else if o.underlay_v6 {
                format!("[fd77::{p}]:7112")
            } else {
                format!("10.77.0.{p}:7112")
            };
            s += &format!(
                "\n[[member]]\nname = \"h{p}\"\nendpoint = \"{endpoint}\"\naddress = \"10.250.0.{p}\"\naddress6 = \"fd00:250::{p}\"\n"
            );
            if !o.insecure {
                s += &format!("public_key = \"{}\"\n", self.public_key(p));
            }
        }
        s + &o.tables
    }

    /// The hosts file that programs started in host `h` with `ip netns
    /// exec` see: `/etc/netns/<namespace>/hosts`, bind-mounted over
    /// `/etc/hosts`. Sets (or with `None` removes) the line for `name`,
    /// rewriting the file in place so running programs see the change.
    pub fn set_host_entry(&self, h: usize, name: &str, addr: Option<&str>) {
        let dir = PathBuf::from(format!("/etc/netns/{}", self.ns(h)));
        fs::create_dir_all(&dir).expect("cannot create /etc/netns/<namespace>");
        let file = dir.join("hosts");
        let old = fs::read_to_string(&file).unwrap_or_else(|_| "127.0.0.1 localhost\n".into());
        let mut lines: Vec<String> = old
            .lines()
            .filter(|l| l.split_whitespace().nth(1) != Some(name))
            .map(str::to_string)
            .collect();
        if let Some(a) = addr {
            lines.push(format!("{a} {name}"));
        }
        let mut f = fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&file)
            .expect("cannot write the namespace's hosts file");
        f.write_all((lines.join("\n") + "\n").as_bytes())
            .expect("cannot write the namespace's hosts file");
    }

    /// Points host `h`'s resolver at loopback (`/etc/netns/<ns>/resolv.conf`),
    /// so a name missing from its hosts file fails at once and no query
    /// ever leaves the machine.
    pub fn isolate_dns(&self, h: usize) {
        let dir = PathBuf::from(format!("/etc/netns/{}", self.ns(h)));
        fs::create_dir_all(&dir).expect("cannot create /etc/netns/<namespace>");
        fs::write(
            dir.join("resolv.conf"),
            "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
        )
        .expect("cannot write the namespace's resolv.conf");
    }

    /// Makes host `h` drop relay datagrams from host `from`'s underlay
    /// address before they reach its relay (one direction only).
    pub fn drop_relay_traffic(&self, h: usize, from: usize) {
        nft(
            &self.ns(h),
            &format!(
                "table ip lab_drop {{\n chain in {{\n  type filter hook input priority -300;\n  \
                 ip saddr 10.77.0.{from} udp dport 7112 drop\n }}\n}}\n"
            ),
        );
    }

    /// Undoes [`Lab::drop_relay_traffic`] on host `h`.
    pub fn allow_relay_traffic(&self, h: usize) {
        self.exec(h, &["nft", "delete", "table", "ip", "lab_drop"]);
    }

    /// Which hosts the cluster files written from now on list as members.
    pub fn set_members(&mut self, members: &[usize]) {
        self.members = members.to_vec();
    }

    /// Sends SIGHUP to the relay of host `h` and returns the log line that
    /// says what became of the reload.
    pub fn reload_relay(&self, h: usize) -> String {
        self.signal_relay_for_line(h, libc::SIGHUP, "SIGHUP: ")
    }

    /// Sends `sig` to the relay of host `h` and returns the first log line
    /// containing `needle` that it writes afterwards.
    fn signal_relay_for_line(&self, h: usize, sig: i32, needle: &str) -> String {
        let log = self.relay_log(h);
        let before = count_lines(&log, needle);
        signal(self.relay_pid(h), sig);
        wait_for(
            &format!("relay h{h} to log \"{needle}\""),
            Duration::from_secs(5),
            || {
                fs::read_to_string(&log)
                    .ok()?
                    .lines()
                    .filter(|l| l.contains(needle))
                    .nth(before)
                    .map(str::to_string)
            },
        )
    }

    /// Starts every relay and waits until each says it is ready.
    pub fn start_relays(&mut self, opts: RelayOptions) {
        self.configure_relays(opts);
        for h in self.host_ids() {
            self.start_relay(h);
        }
    }

    /// Waits until every running relay has confirmed every peer it lists:
    /// from then on no data packet meets an unconfirmed sender, so a
    /// refusal counted afterwards is a real one.
    pub fn wait_relays_confirmed(&self, timeout: Duration) {
        for h in self.host_ids().filter(|h| self.relays[h - 1].is_some()) {
            wait_for(
                &format!("h{h}'s relay to confirm all its peers"),
                timeout,
                || {
                    let st = self.relay_status(h);
                    let peers = st["peers"].as_array()?;
                    peers.iter().all(|p| p["confirmed"] == true).then_some(())
                },
            );
        }
    }

    /// Where the relay of host `h` answers `mcast-relay status`, seen from
    /// outside its mount namespace.
    pub fn status_socket(&self, h: usize) -> PathBuf {
        self.host_run_dir(h).join("status.sock")
    }

    /// `mcast-relay status --json` against the relay of host `h`.
    pub fn relay_status(&self, h: usize) -> serde_json::Value {
        status_json(&self.status_socket(h), &format!("h{h}"))
    }

    /// `mcast-relay status` (the tables) against the relay of host `h`.
    pub fn relay_status_text(&self, h: usize) -> String {
        let out = Command::new(relay_bin())
            .args(["status", "--socket"])
            .arg(self.status_socket(h))
            .output()
            .expect("cannot run mcast-relay status");
        assert!(out.status.success(), "mcast-relay status failed for h{h}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn relay_log(&self, h: usize) -> PathBuf {
        self.path(&format!("relay{h}.log"))
    }

    /// Starts the relay of host `h` (again) and waits for its ready line.
    pub fn start_relay(&mut self, h: usize) {
        self.start_relay_env(h, &[]);
    }

    /// Like [`Lab::start_relay`], with extra environment variables.
    pub fn start_relay_env(&mut self, h: usize, env: &[(&str, &str)]) {
        assert!(self.relays[h - 1].is_none(), "relay h{h} already runs");
        let child = self.spawn_relay(h, &self.relay_config_path(h), &self.relay_log(h), env);
        self.relays[h - 1] = Some(child);
    }

    /// Starts `mcast-relay run -c <cfg>` in host `h` (its own mount
    /// namespace, `<lab>/hN/` bound over `<lab>/run/`) and waits for its
    /// ready line in `log`.
    fn spawn_relay(&self, h: usize, cfg: &Path, log: &Path, env: &[(&str, &str)]) -> Child {
        let bin = relay_bin();
        let (run, own) = (self.run_dir(), self.host_run_dir(h));
        for d in [&run, &own] {
            fs::create_dir_all(d).expect("cannot create a run directory");
        }
        // Append so a restart keeps the first run's log for diagnosis.
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("cannot open the relay log");
        let err = out.try_clone().expect("cannot clone a log file handle");
        // Counted before the spawn: a relay that starts quickly may log
        // "relay ready" before a count taken after it, and would then
        // never be seen as ready.
        let ready_count = count_lines(log, "relay ready");
        // sh binds the host's own run directory and then becomes the relay
        // (exec, as ip and unshare do), so the child's pid is the relay's.
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns(h)])
            .args(["unshare", "-m", "--propagation", "private"])
            .args([
                "sh",
                "-c",
                "mount --bind \"$1\" \"$2\" && shift 2 && exec \"$@\"",
                "sh",
            ])
            .arg(&own)
            .arg(&run)
            .arg(&bin)
            .args(["run", "-c"])
            .arg(cfg);
        if !self.relay_opts.insecure {
            cmd.arg("-k").arg(self.key_path(h));
        }
        let mut child = cmd
            .env("MCAST_RELAY_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if count_lines(log, "relay ready") > ready_count {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "relay h{h} ({}) exited ({status}) before it was ready:\n{}",
                    cfg.display(),
                    tail(log, 20)
                );
            }
            assert!(
                Instant::now() < deadline,
                "relay h{h} ({}) not ready after 10 s:\n{}",
                cfg.display(),
                tail(log, 20)
            );
            sleep(Duration::from_millis(20));
        }
        child
    }

    /// Starts `k` relay instances on every host, as the systemd template
    /// unit `mcast-relay@NAME.service` runs them: each a process of its
    /// own (`run -c <its file>`) with its own interface, port, subnets and
    /// status socket ([`Lab::instance_names`]); instance 0 is the lab's
    /// usual relay (mcast0, port 7112, `relayN.toml`). All use the hosts'
    /// one key pair, each instance's cluster file the same on every host.
    pub fn start_relay_instances(&mut self, k: usize, opts: RelayOptions) {
        assert!(
            (1..=6).contains(&k),
            "1 to 6 relay instances (subnets 10.250 to 10.255)"
        );
        self.start_relays(opts);
        for i in 1..k {
            let text = self.instance_config(i);
            fs::write(self.instance_cluster_file(i), &text)
                .expect("cannot write an instance's cluster file");
            for h in self.host_ids() {
                let cfg = self.instance_config_path(h, i);
                fs::write(&cfg, &text).expect("cannot write an instance's cluster file");
                let child = self.spawn_relay(h, &cfg, &self.instance_log(h, i), &[]);
                self.instances.push(((h, i), child));
            }
        }
    }

    /// Instance `i`'s interface, UDP port and IPv4 overlay subnet prefix
    /// (`10.<250+i>.0`): mcast0, 7112, 10.250.0 for instance 0.
    pub fn instance_names(i: usize) -> (String, u16, String) {
        (
            format!("mcast{i}"),
            7112 + i as u16,
            format!("10.{}.0", 250 + i),
        )
    }

    /// The cluster file of instance `i` as the lab wrote it (instance 0:
    /// [`Lab::cluster_file`]).
    pub fn instance_cluster_file(&self, i: usize) -> PathBuf {
        if i == 0 {
            return self.cluster_file();
        }
        self.path(&format!("cluster-{i}.toml"))
    }

    /// Host `h`'s copy of instance `i`'s cluster file.
    pub fn instance_config_path(&self, h: usize, i: usize) -> PathBuf {
        if i == 0 {
            return self.relay_config_path(h);
        }
        self.path(&format!("relay{h}-{i}.toml"))
    }

    pub fn instance_log(&self, h: usize, i: usize) -> PathBuf {
        if i == 0 {
            return self.relay_log(h);
        }
        self.path(&format!("relay{h}-{i}.log"))
    }

    /// The pid of relay instance `i` of host `h`.
    pub fn instance_pid(&self, h: usize, i: usize) -> u32 {
        if i == 0 {
            return self.relay_pid(h);
        }
        self.instances
            .iter()
            .find(|(hi, _)| *hi == (h, i))
            .map(|(_, c)| c.id())
            .unwrap_or_else(|| panic!("relay instance {i} of h{h} is not running"))
    }

    /// Where relay instance `i` of host `h` answers `mcast-relay status`,
    /// seen from outside its mount namespace.
    pub fn instance_status_socket(&self, h: usize, i: usize) -> PathBuf {
        if i == 0 {
            return self.status_socket(h);
        }
        self.host_run_dir(h).join(format!("status{i}.sock"))
    }

    /// `mcast-relay status --json --socket <instance's socket>`.
    pub fn instance_status(&self, h: usize, i: usize) -> serde_json::Value {
        status_json(
            &self.instance_status_socket(h, i),
            &format!("h{h} instance {i}"),
        )
    }

    /// The cluster file of relay instance `i`: the lab's usual one with
    /// interface, port, subnets and status socket of its own.
    fn instance_config(&mut self, i: usize) -> String {
        let (iface, port, net) = Lab::instance_names(i);
        let base = self.cluster_config();
        let sock = self.cluster_status_socket();
        let own_sock = self.run_dir().join(format!("status{i}.sock"));
        base.replace(
            &format!("status_socket = \"{}\"", sock.display()),
            &format!("status_socket = \"{}\"", own_sock.display()),
        )
        .replace("name = \"mcast0\"", &format!("name = \"{iface}\""))
        .replace("10.250.0.", &format!("{net}."))
        .replace("fd00:250::", &format!("fd00:{}::", 250 + i))
        .replace(":7112\"", &format!(":{port}\""))
    }

    /// Kills the relay of host `h` with SIGKILL, as a service manager does
    /// with a hung process, and reaps it.
    pub fn kill_relay(&mut self, h: usize) {
        let mut child = self.relays[h - 1]
            .take()
            .unwrap_or_else(|| panic!("relay h{h} is not running"));
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Sends SIGTERM to the relay of host `h` and waits for it to exit;
    /// returns whether it exited successfully.
    pub fn stop_relay(&mut self, h: usize) -> bool {
        let mut child = self.relays[h - 1]
            .take()
            .unwrap_or_else(|| panic!("relay h{h} is not running"));
        signal(child.id(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
            sleep(Duration::from_millis(10));
        }
    }

    /// The relay's counters for its current run (`kill -USR1` makes it log
    /// them): totals and drops by reason, by name.
    pub fn relay_counters(&self, h: usize) -> std::collections::HashMap<String, u64> {
        let line = self.signal_relay_for_line(h, libc::SIGUSR1, "counters: ");
        let tail = line.split("counters: ").nth(1).unwrap_or_default();
        tail.split_whitespace()
            .filter_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                Some((k.to_string(), v.parse().ok()?))
            })
            .collect()
    }

    /// The pid of the relay of host `h`.
    pub fn relay_pid(&self, h: usize) -> u32 {
        self.relays[h - 1]
            .as_ref()
            .unwrap_or_else(|| panic!("relay h{h} is not running"))
            .id()
    }

    /// `/proc/<pid>/status` of the relay of host `h`.
    pub fn relay_proc_status(&self, h: usize) -> String {
        let pid = self.relay_pid(h);
        fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default()
    }

    /// Whether `dev` exists in host `h`.
    pub fn has_link(&self, h: usize, dev: &str) -> bool {
        self.try_exec(h, &["ip", "link", "show", "dev", dev])
            .status
            .success()
    }

    /// Prints the tail of every log in the lab directory (on failure).
    pub fn dump_logs(&self) {
        let mut entries: Vec<PathBuf> = fs::read_dir(&self.dir)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        entries.sort();
        for p in entries
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "log") || p.ends_with("stdout"))
        {
            eprintln!("---- {} ----\n{}", p.display(), tail(p, 25));
        }
    }

    fn teardown(&mut self) {
        // Reap our own children first so no zombie lingers in a namespace.
        for c in self
            .relays
            .iter_mut()
            .flatten()
            .chain(self.instances.iter_mut().map(|(_, c)| c))
        {
            let _ = c.kill();
            let _ = c.wait();
        }
        for p in &mut self.procs {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
        let mut all: Vec<String> = self.host_ids().map(|h| self.ns(h)).collect();
        if self.outsider {
            all.push(self.outsider_ns());
        }
        all.push(self.cloud());
        for ns in &all {
            kill_namespace_processes(ns);
        }
        for ns in &all {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
            let _ = fs::remove_dir_all(format!("/etc/netns/{ns}"));
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let failed = std::thread::panicking();
        if failed {
            self.dump_logs();
        }
        self.teardown();
        if failed || std::env::var_os("LAB_KEEP").is_some() {
            eprintln!("lab files kept in {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// The base64 key of a `public_key = "..."` line, as `mcast-relay keygen`
/// and `pubkey` print it.
fn public_key_line(printed: &str) -> Option<String> {
    printed.lines().find_map(|l| {
        let v = l.trim().strip_prefix("public_key")?.trim_start();
        let v = v.strip_prefix('=')?.trim();
        Some(v.strip_prefix('"')?.strip_suffix('"')?.to_string())
    })
}

/// Kills (SIGKILL) every process inside a namespace: daemons that fork
/// (heartbeat) or children of killed parents never outlive the lab.
fn kill_namespace_processes(ns: &str) {
    for _ in 0..50 {
        let pids = namespace_pids(ns);
        if pids.is_empty() {
            return;
        }
        for p in pids {
            signal(p, libc::SIGKILL);
        }
        sleep(Duration::from_millis(20));
    }
}

/// Every process in network namespace `ns` (`ip netns pids`).
pub fn namespace_pids(ns: &str) -> Vec<u32> {
    Command::new("ip")
        .args(["netns", "pids", ns])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Removes namespaces of labs whose process has died (a killed test run).
fn sweep_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(rest) = name.strip_prefix(NS_PREFIX) else {
            continue;
        };
        let pid: Option<u32> = rest.split('x').next().and_then(|p| p.parse().ok());
        let alive = pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists())
            && pid != Some(std::process::id());
        if !alive {
            kill_namespace_processes(name);
            let _ = Command::new("ip").args(["netns", "del", name]).output();
            let _ = fs::remove_dir_all(format!("/etc/netns/{name}"));
        }
    }
}

/// Runs `f` on a thread inside network namespace `ns`; sockets it creates
/// stay in that namespace wherever they are used afterwards.
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = File::open(&path).unwrap_or_else(|e| panic!("cannot open {path}: {e}"));
        // SAFETY: setns on a descriptor we own, affecting only this thread.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("namespace thread panicked")
}

/// A positive number from the environment (a benchmark's setting), or
/// `default`.
pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

/// Datagrams a relay refused, from its counters ([`Lab::relay_counters`]):
/// every network drop reason but those in `except`. Duplicates are the
/// peers' redundant copies, not refusals, and never count.
pub fn refused(
    c: &std::collections::HashMap<String, u64>,
    except: &[mcast_relay::core::DropReason],
) -> u64 {
    use mcast_relay::core::DropReason;
    DropReason::ALL
        .iter()
        .filter(|r| r.from_network() && **r != DropReason::Duplicate && !except.contains(r))
        .map(|r| c.get(r.name()).copied().unwrap_or(0))
        .sum()
}

/// CPU time (ns) a process has used, from /proc/<pid>/schedstat; 0 if it
/// is gone.
pub fn cpu_ns(pid: u32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// A `/proc/<pid>/status` field as a number (kB for memory); 0 if the
/// process or the field is gone.
pub fn status_field(pid: u32, key: &str) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l[key.len()..].split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// Context switches of a process so far, voluntary or not: how often it
/// went to sleep or was put off the CPU, i.e. its wake-ups.
pub fn switches(pid: u32) -> u64 {
    status_field(pid, "voluntary_ctxt_switches:") + status_field(pid, "nonvoluntary_ctxt_switches:")
}

/// Sends a signal; the lab only signals processes it started.
pub fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) has no memory effects; a stale pid only yields ESRCH.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

/// Loads an nftables ruleset into namespace `ns`; panics if nft refuses it.
fn nft(ns: &str, rules: &str) {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin
                .take()
                .expect("piped stdin")
                .write_all(rules.as_bytes())?;
            c.wait_with_output()
        })
        .expect("cannot run nft");
    assert!(
        out.status.success(),
        "nft failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Adds `addr` to eth0 in namespace `ns`.
fn add_address(ns: &str, addr: &str, extra: &[&str]) {
    let mut args = vec!["ip", "-n", ns, "addr", "add", addr, "dev", "eth0"];
    args.extend_from_slice(extra);
    sh(&args);
}

/// Runs a command in the root namespace; panics if it fails.
pub fn sh(args: &[&str]) -> Output {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs a command inside a namespace; panics if it fails.
pub fn in_ns(ns: &str, args: &[&str]) -> Output {
    let mut full = vec!["ip", "netns", "exec", ns];
    full.extend_from_slice(args);
    sh(&full)
}

pub fn count_lines(path: &Path, needle: &str) -> usize {
    fs::File::open(path)
        .map(|f| {
            BufReader::new(f)
                .lines()
                .map_while(Result::ok)
                .filter(|l| l.contains(needle))
                .count()
        })
        .unwrap_or(0)
}

pub fn tail(path: &Path, n: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Polls `f` until it returns `Some`, or panics with `what` at the deadline.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?}: {what}"
        );
        sleep(Duration::from_millis(100));
    }
}

/// Polls `f` until it returns `Some` or `timeout` passes.
pub fn wait_for_or_none<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        sleep(Duration::from_millis(200));
    }
}

/// `mcast-relay status --json` against the status socket `socket` of the
/// relay called `who` in failure messages.
fn status_json(socket: &Path, who: &str) -> serde_json::Value {
    let out = Command::new(relay_bin())
        .args(["status", "--json", "--socket"])
        .arg(socket)
        .output()
        .expect("cannot run mcast-relay status");
    assert!(
        out.status.success(),
        "mcast-relay status failed for {who}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("status --json printed JSON")
}
