//! The running relay: sets up the interface and socket, then one event loop
//! moves packets between them through the sans-IO core, handles signals
//! (SIGHUP reloads the configuration), endpoint updates and periodic drop
//! summaries.
//!
//! One thread is plenty for heartbeat traffic and keeps the packet path
//! free of locks and channel hops: the loop owns the core, the buffers
//! (allocated once) and both file descriptors.

pub mod metrics;
pub mod reload;
pub mod status;

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::unix::AsyncFd;
use tokio::net::UdpSocket;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use crate::config::{Config, Endpoint, Mode};
use crate::core::counters::{DropCounters, DropReason};
use crate::core::quorum::Quorum;
use crate::core::relay::{
    Inbound, Link, NodeAddrs, OVERHEAD, Outbound, PeerSpec, Relay, RelayParams, Reload, Security,
    Target,
};
use crate::core::vrrp_watch::{Alarm, Watch};
use crate::io::fanout::Fanout;
use crate::io::keyfile;
use crate::io::net::{self, EndpointUpdate};
use crate::io::notify::Notifier;
use crate::io::privilege;
use crate::io::tun::{self, Tun, TunSpec};
use crate::proto::crypto::Challenger;
use crate::proto::frame;

/// Packets handled per readiness event before the loop looks at the other
/// source, so neither direction can starve the other.
const BATCH: usize = 64;
/// Largest IP packet, in an Ethernet frame in tap mode.
const MAX_FRAME: usize = 65_535 + frame::HEADER_LEN;
/// The longest the loop sleeps when nothing is due: how late, at most, the
/// advert watch clears a split-brain alarm.
const IDLE_WAKE: Duration = Duration::from_secs(1);
/// With `node.quorum`: how closely the carrier follows reachability.
const QUORUM_TICK: Duration = Duration::from_millis(100);
/// How often drop counts are summarised in the log.
const REPORT_EVERY: Duration = Duration::from_secs(60);
const FALLBACK_UNDERLAY_MTU: u32 = 1500;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Runs the relay until SIGTERM or SIGINT.
pub fn run(cfg: Config) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the event loop: {e}"))?;
    rt.block_on(run_async(cfg))
}

/// The interface MTU: configured, or the smallest route MTU towards the
/// peers minus what the relay adds, so no datagram is fragmented.
fn choose_mtu(cfg: &Config, endpoints: &[Option<SocketAddr>]) -> u32 {
    let fitting = endpoints
        .iter()
        .flatten()
        .filter_map(|ep| match tun::route_mtu(*ep) {
            Ok(m) => Some(net::inner_mtu(m, ep, cfg.interface.mode)),
            Err(e) => {
                tracing::debug!(endpoint = %ep, error = %e, "no route MTU");
                None
            }
        })
        .min();
    let fallback = net::inner_mtu(
        FALLBACK_UNDERLAY_MTU,
        &SocketAddr::from(([0, 0, 0, 0], 0)),
        cfg.interface.mode,
    );
    let computed = fitting.unwrap_or(fallback);
    let min = if cfg.interface.address6.is_some() {
        1280
    } else {
        576
    };
    match cfg.interface.mtu {
        Some(m) => {
            if fitting.is_some_and(|f| m > f) {
                tracing::warn!(
                    mtu = m,
                    fits = computed,
                    "interface.mtu is larger than what fits in one underlay packet: large packets will be fragmented on the way, and cloud networks often drop fragments"
                );
            }
            m
        }
        None if computed < min => {
            tracing::warn!(
                computed,
                min,
                "the underlay MTU leaves less than {min} bytes; using {min}, packets may be fragmented"
            );
            min
        }
        None => computed,
    }
}

/// Rate-limited reporting: the first drop of each reason in a window is
/// logged with what it means; the rest are summed up when the window ends.
struct DropLog {
    warned: [bool; DropReason::ALL.len()],
    at_last_report: DropCounters,
}

impl DropLog {
    fn new() -> Self {
        DropLog {
            warned: [false; DropReason::ALL.len()],
            at_last_report: DropCounters::default(),
        }
    }

    fn note(&mut self, r: DropReason, from: Option<SocketAddr>) {
        let i = DropReason::ALL.iter().position(|x| *x == r).unwrap_or(0);
        if r.is_benign() || self.warned[i] {
            return;
        }
        self.warned[i] = true;
        match from {
            Some(from) => {
                tracing::warn!(reason = %r, %from, "dropped a datagram: {}; further drops of this kind are summarised every {}s", r.explain(), REPORT_EVERY.as_secs())
            }
            None => {
                tracing::warn!(reason = %r, "dropped a packet: {}; further drops of this kind are summarised every {}s", r.explain(), REPORT_EVERY.as_secs())
            }
        }
    }

    fn report(&mut self, now: &DropCounters) {
        let grown: Vec<String> = now
            .grown_since(&self.at_last_report)
            .filter(|(r, _)| !r.is_benign())
            .map(|(r, n)| format!("{r}={n}"))
            .collect();
        if !grown.is_empty() {
            tracing::warn!(
                "dropped in the last {}s: {}",
                REPORT_EVERY.as_secs(),
                grown.join(" ")
            );
        }
        self.at_last_report = now.clone();
        self.warned = [false; DropReason::ALL.len()];
    }
}

/// Per-peer send failures, warned about at most once a window each.
struct SendLog {
    last_warn: Vec<Option<Instant>>,
}

impl SendLog {
    fn failed(&mut self, relay: &Relay, peer: usize, to: SocketAddr, e: &io::Error) {
        let now = Instant::now();
        let slot = &mut self.last_warn[peer];
        if slot.is_some_and(|t| now.duration_since(t) < REPORT_EVERY) {
            return;
        }
        *slot = Some(now);
        tracing::warn!(peer = %relay.peer_name(peer), endpoint = %to, error = %e, "cannot send to peer; other peers are unaffected");
    }
}

/// The two file descriptors; borrowed immutably while waiting on both.
struct Io {
    tun: AsyncFd<Tun>,
    sock: UdpSocket,
}

/// Everything the packet path mutates, owned by the loop.
struct State {
    relay: Relay,
    tun_buf: Vec<u8>,
    out_buf: Vec<u8>,
    net_buf: Vec<u8>,
    drops: DropLog,
    sends: SendLog,
    fanout: Fanout,
    inject_warned: Option<Instant>,
    /// Who is master of which virtual router, from the adverts relayed.
    watch: Watch,
    /// This node's name, for the watch's reports.
    me: String,
    /// With `node.quorum`: the carrier decisions.
    quorum: Option<Quorum>,
}

impl State {
    fn on_tun_packet(&mut self, n: usize, sock: &UdpSocket) {
        let now = now_ms();
        match self
            .relay
            .from_tun(&self.tun_buf[..n], now, &mut self.out_buf)
        {
            Outbound::Send { len, target } => {
                let ip = self.relay.ip_packet(&self.tun_buf[..n]);
                let alarm = self.watch.observe(0, ip, now);
                self.log_alarm(alarm);
                self.send(len, target, sock);
            }
            Outbound::Drop(r) => self.drops.note(r, None),
        }
    }

    fn snapshot(&self, cfg: &Config, started: Instant) -> status::Status {
        status::snapshot(
            &self.relay,
            &self.watch,
            &status::Context {
                node: &cfg.node.name,
                interface: &cfg.interface.name,
                uptime_s: started.elapsed().as_secs_f64(),
                now_ms: now_ms(),
                quorum: self.quorum.as_ref().and_then(Quorum::is_up),
            },
        )
    }

    /// With `node.quorum`: raises or drops the interface's carrier as the
    /// majority comes and goes.
    fn check_quorum(&mut self, tun: &Tun) {
        let Some(q) = &mut self.quorum else { return };
        let reachable = self.relay.reachable_peers(now_ms());
        let Some(c) = q.update(reachable, self.relay.peer_count()) else {
            return;
        };
        if let Err(e) = tun.set_carrier(c.up) {
            tracing::error!("quorum: {e}");
        } else if c.up {
            tracing::info!(
                "quorum: {} of {} nodes reachable; carrier of {} up",
                c.reachable,
                c.cluster,
                tun.name()
            );
        } else {
            tracing::warn!(
                "quorum lost: {} of {} nodes reachable; carrier of {} down so the failover tool steps down",
                c.reachable,
                c.cluster,
                tun.name()
            );
        }
    }

    fn node_name(&self, n: usize) -> String {
        status::node_name(&self.relay, &self.me, n)
    }

    fn log_alarm(&self, alarm: Option<Alarm>) {
        match alarm {
            Some(Alarm::Raised(r)) => tracing::warn!(
                vrid = r.vrid,
                family = r.family.name(),
                "split brain: two nodes advertise as VRRP master: {} and {}; check the network between them",
                self.node_name(r.master),
                r.rival.map_or("?".to_string(), |n| self.node_name(n))
            ),
            Some(Alarm::Cleared(r)) => tracing::info!(
                vrid = r.vrid,
                family = r.family.name(),
                master = %self.node_name(r.master),
                "split brain over: one master again"
            ),
            None => {}
        }
    }

    /// One sealed datagram, the same bytes to each target peer, in one
    /// system call.
    fn send(&mut self, len: usize, target: Target, sock: &UdpSocket) {
        let (first, end) = match target {
            Target::All => (0, self.relay.peer_count()),
            Target::Peer(i) => (i, i + 1),
        };
        self.fanout.clear();
        for i in first..end {
            match self.relay.endpoint(i) {
                Some(ep) => self.fanout.push(i, ep),
                None => self.relay.count_drop(DropReason::PeerUnresolved),
            }
        }
        if self.fanout.is_empty() {
            return;
        }
        let (relay, sends) = (&mut self.relay, &mut self.sends);
        self.fanout
            .send(sock.as_raw_fd(), &self.out_buf[..len], |i, ep, r| match r {
                Ok(()) => relay.count_sent(i, len),
                Err(e) => {
                    relay.count_drop(DropReason::SendFailed);
                    sends.failed(relay, i, ep, &e);
                }
            });
    }

    /// When the loop must next wake without traffic: the next hello or
    /// keepalive, and at least every [`IDLE_WAKE`] ([`QUORUM_TICK`] with
    /// `node.quorum`).
    fn next_wake(&self) -> tokio::time::Instant {
        let cap = if self.quorum.is_some() {
            QUORUM_TICK
        } else {
            IDLE_WAKE
        };
        let wait = self.relay.next_hello_ms().map_or(cap, |at| {
            Duration::from_millis(at.saturating_sub(now_ms())).min(cap)
        });
        tokio::time::Instant::now() + wait
    }

    /// Sends every hello the core wants out now.
    fn send_hellos(&mut self, sock: &UdpSocket) {
        while let Some((len, peer)) = self.relay.poll_hello(now_ms(), &mut self.out_buf) {
            self.send(len, Target::Peer(peer), sock);
        }
    }

    fn on_datagram(&mut self, n: usize, from: SocketAddr, io: &Io) {
        let tun = io.tun.get_ref();
        let from = net::canonical(from);
        let now = now_ms();
        match self
            .relay
            .from_net(&mut self.net_buf[..n], from, now, &mut self.out_buf)
        {
            Inbound::Reply { len, peer } => self.send(len, Target::Peer(peer), &io.sock),
            Inbound::Handled => {}
            Inbound::Inject { start, len, peer } => {
                let ip = self.relay.ip_packet(&self.net_buf[start..start + len]);
                let alarm = self.watch.observe(peer + 1, ip, now);
                self.log_alarm(alarm);
                if let Err(e) = tun.write(&self.net_buf[start..start + len]) {
                    self.relay.count_drop(DropReason::InjectFailed);
                    let now = Instant::now();
                    if self
                        .inject_warned
                        .is_none_or(|t| now.duration_since(t) >= REPORT_EVERY)
                    {
                        self.inject_warned = Some(now);
                        tracing::warn!(interface = %tun.name(), error = %e, "cannot write into the interface (is it down? `ip link set {} up`)", tun.name());
                    }
                }
            }
            Inbound::Drop(r) => self.drops.note(r, Some(from)),
        }
    }

    /// Drains the tun; an error other than "nothing queued" is fatal: the
    /// device is gone and a restart (by systemd) will recreate it.
    fn tun_ready(
        &mut self,
        io: &Io,
        mut guard: tokio::io::unix::AsyncFdReadyGuard<'_, Tun>,
    ) -> Result<(), String> {
        for _ in 0..BATCH {
            let buf = &mut self.tun_buf;
            match guard.try_io(|t| t.get_ref().read(buf)) {
                Ok(Ok(n)) => self.on_tun_packet(n, &io.sock),
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(Err(e)) => return Err(format!("reading from the interface failed: {e}")),
                Err(_would_block) => break,
            }
        }
        Ok(())
    }

    fn sock_ready(&mut self, io: &Io) {
        for _ in 0..BATCH {
            match io.sock.try_recv_from(&mut self.net_buf) {
                Ok((n, from)) => self.on_datagram(n, from, io),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // ICMP errors from earlier sends surface here; they concern
                // one peer and must not stop the loop.
                Err(e) => {
                    tracing::debug!(error = %e, "receive error");
                    break;
                }
            }
        }
        self.send_hellos(&io.sock);
    }
}

/// The next status connection, or never without a socket.
async fn accept(
    l: Option<&tokio::net::UnixListener>,
) -> io::Result<(tokio::net::UnixStream, tokio::net::unix::SocketAddr)> {
    match l {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// The next metrics connection, or never without a listener.
async fn accept_tcp(
    l: Option<&tokio::net::TcpListener>,
) -> io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match l {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// Answers one HTTP request for the metrics, off the loop and bounded in
/// time, so a slow or silent client cannot stall the packet path.
fn serve_metrics(mut conn: tokio::net::TcpStream, body: String) {
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let exchange = async {
            let mut req = [0u8; 1024];
            let n = conn.read(&mut req).await?;
            let text = String::from_utf8_lossy(&req[..n]);
            let first = text.lines().next().unwrap_or("");
            conn.write_all(metrics::respond(first, &body).as_bytes())
                .await?;
            conn.shutdown().await
        };
        if let Err(e) = tokio::time::timeout(Duration::from_secs(5), exchange)
            .await
            .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
        {
            tracing::debug!(error = %e, "metrics client");
        }
    });
}

/// Writes a snapshot to a status client off the loop, so a slow reader
/// cannot stall the packet path.
fn serve_status(mut conn: tokio::net::UnixStream, snap: &status::Status) {
    let body = serde_json::to_vec_pretty(snap).unwrap_or_default();
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let write = async {
            conn.write_all(&body).await?;
            conn.shutdown().await
        };
        if let Err(e) = tokio::time::timeout(Duration::from_secs(5), write)
            .await
            .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
        {
            tracing::debug!(error = %e, "status client");
        }
    });
}

/// One background lookup per peer given by a DNS name.
fn spawn_resolvers(
    cfg: &Config,
    generation: u64,
    tx: &mpsc::Sender<EndpointUpdate>,
) -> Vec<tokio::task::JoinHandle<()>> {
    cfg.peers
        .iter()
        .filter_map(|p| match &p.endpoint {
            Endpoint::Name { host, port } => Some(tokio::spawn(net::follow_name(
                generation,
                p.name.clone(),
                host.clone(),
                *port,
                cfg.node.listen,
                cfg.node.resolve_interval,
                tx.clone(),
            ))),
            Endpoint::Addr(_) => None,
        })
        .collect()
}

fn peer_specs(cfg: &Config) -> Vec<PeerSpec> {
    cfg.peers
        .iter()
        .map(|p| PeerSpec {
            name: p.name.clone(),
            addrs: NodeAddrs {
                v4: p.address,
                v6: p.address6,
            },
        })
        .collect()
}

/// SIGHUP: reads the configuration file again and applies what can change
/// while running; returns the new configuration if it was applied. A file
/// that does not parse, or that changes what needs a restart, is refused
/// and the running configuration stays.
fn apply_reload(cfg: &Config, st: &mut State) -> Option<Config> {
    let shown = cfg.path.display();
    let new = match Config::load(&cfg.path) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(
                "SIGHUP: reload of {shown} rejected, the running configuration stays: {e}"
            );
            return None;
        }
    };
    let plan = match reload::plan(cfg, &new) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(
                "SIGHUP: reload of {shown} rejected, the running configuration stays: {e}"
            );
            return None;
        }
    };
    if plan.is_empty() {
        tracing::info!("SIGHUP: {shown} reloaded; nothing changed");
        return None;
    }
    // A peer whose endpoint is unchanged keeps the address it resolved to.
    let endpoints: Vec<Option<SocketAddr>> = new
        .peers
        .iter()
        .map(|p| {
            net::static_endpoint(&p.endpoint).or_else(|| {
                let old = cfg
                    .peers
                    .iter()
                    .find(|o| o.name == p.name && o.endpoint == p.endpoint)?;
                st.relay.endpoint(st.relay.peer_by_name(&old.name)?)
            })
        })
        .collect();
    st.relay.reconfigure(Reload {
        peers: peer_specs(&new),
        allow: new.allow.clone(),
        max_clock_skew_ms: new.node.max_clock_skew.as_millis() as u64,
        inject_rate_limit: new.node.inject_rate_limit,
        keepalive_ms: new.node.keepalive.as_millis() as u64,
    });
    for (i, ep) in endpoints.into_iter().enumerate() {
        st.relay.set_endpoint(i, ep);
    }
    st.sends.last_warn = vec![None; st.relay.peer_count()];
    let list = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    tracing::info!(
        added = %list(&plan.added),
        removed = %list(&plan.removed),
        changed = %list(&plan.changed),
        peers = st.relay.peer_count(),
        allow = %new.allow,
        "SIGHUP: {shown} reloaded; unchanged peers kept their state"
    );
    Some(new)
}

async fn run_async(mut cfg: Config) -> Result<(), String> {
    let run_as = privilege::lookup(&cfg.node.user)?;
    // Connected now: the service manager's socket may not accept an
    // unprivileged sender later.
    let notifier = Notifier::from_env()?;
    let security = if cfg.node.insecure {
        tracing::warn!(
            "INSECURE MODE: insecure = true, datagrams are neither authenticated nor encrypted; anyone who can reach the relay port can inject heartbeats and steal the virtual IP. Use this in labs only."
        );
        Security::Insecure
    } else {
        let path = cfg.node.key_file.as_ref().ok_or("no key_file configured")?;
        Security::Authenticated(keyfile::load(path)?)
    };

    let mut endpoints: Vec<Option<SocketAddr>> = cfg
        .peers
        .iter()
        .map(|p| net::static_endpoint(&p.endpoint))
        .collect();
    // One quick attempt at names before sizing the MTU; later attempts run
    // in the background and never hold up the others.
    for (i, p) in cfg.peers.iter().enumerate() {
        if let Endpoint::Name { host, port } = &p.endpoint {
            let quick = tokio::time::timeout(
                Duration::from_secs(2),
                net::resolve(host, *port, cfg.node.listen),
            );
            if let Ok(Ok(a)) = quick.await {
                endpoints[i] = Some(a);
            }
        }
    }

    let mtu = choose_mtu(&cfg, &endpoints);
    let spec = TunSpec {
        name: cfg.interface.name.clone(),
        mtu,
        address: cfg.interface.address,
        prefix_len: cfg.interface.prefix_len,
        broadcast: cfg.interface.broadcast(),
        address6: cfg.interface.address6,
        tap_mac: (cfg.interface.mode == Mode::Tap).then(|| frame::node_mac(cfg.interface.address)),
    };
    let tun = Tun::open(&spec).map_err(|e| e.to_string())?;
    let tun = tun
        .into_async()
        .map_err(|e| format!("registering the interface: {e}"))?;
    let sock = net::bind(cfg.node.listen).map_err(|e| e.to_string())?;
    // The status socket is optional: the relay runs without it.
    let status_listener = match status::listen(&cfg.node.status_socket, &cfg.node.status_group)
        .and_then(|l| tokio::net::UnixListener::from_std(l).map_err(|e| e.to_string()))
    {
        Ok(l) => Some(l),
        Err(e) => {
            tracing::warn!("no status socket, `mcast-relay status` will not work: {e}");
            None
        }
    };
    let metrics_listener = match cfg.node.metrics_listen {
        None => None,
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("binding node.metrics_listen {addr}: {e}"))?,
        ),
    };
    let started = Instant::now();
    let sock = UdpSocket::from_std(sock).map_err(|e| format!("registering the UDP socket: {e}"))?;
    match privilege::drop_to(&run_as)? {
        privilege::Outcome::Dropped => {
            tracing::info!(user = %run_as.name, uid = %run_as.uid, "set-up done; running unprivileged with no capabilities")
        }
        privilege::Outcome::NotRoot => {
            tracing::info!(uid = %nix::unistd::getuid(), "not started as root; node.user not applied")
        }
        privilege::Outcome::KeptRoot => tracing::warn!(
            "node.user = \"root\": the relay keeps full privileges after set-up; an unprivileged user such as \"nobody\" is safer"
        ),
    }

    let peers = peer_specs(&cfg);
    let challenge_secret = Challenger::random_secret()
        .map_err(|_| "the system's random number generator failed".to_string())?;
    let mut relay = Relay::new(RelayParams {
        local: NodeAddrs {
            v4: cfg.interface.address,
            v6: cfg.interface.address6.map(|(a, _)| a),
        },
        link: match cfg.interface.mode {
            Mode::Tun => Link::Ip,
            Mode::Tap => Link::Ethernet,
        },
        prefix_len: cfg.interface.prefix_len,
        peers,
        allow: cfg.allow.clone(),
        security,
        epoch: now_ns(),
        max_clock_skew_ms: cfg.node.max_clock_skew.as_millis() as u64,
        inject_rate_limit: cfg.node.inject_rate_limit,
        keepalive_ms: cfg.node.keepalive.as_millis() as u64,
        challenge_secret,
    });
    for (i, ep) in endpoints.iter().enumerate() {
        relay.set_endpoint(i, *ep);
    }

    let (tx, mut updates) = mpsc::channel::<EndpointUpdate>(64);
    let mut generation = 0u64;
    let mut resolvers = spawn_resolvers(&cfg, generation, &tx);

    let sig = |k: SignalKind| signal(k).map_err(|e| format!("installing signal handlers: {e}"));
    let (mut term, mut int, mut hup, mut usr1) = (
        sig(SignalKind::terminate())?,
        sig(SignalKind::interrupt())?,
        sig(SignalKind::hangup())?,
        sig(SignalKind::user_defined1())?,
    );
    let mut report =
        tokio::time::interval_at(tokio::time::Instant::now() + REPORT_EVERY, REPORT_EVERY);
    // Wakes the loop when a hello or keepalive is due (and for the
    // periodic checks), rather than on a fixed tick: an idle relay sleeps.
    let timer = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(timer);

    let unresolved: Vec<&str> = (0..relay.peer_count())
        .filter(|i| relay.endpoint(*i).is_none())
        .map(|i| relay.peer_name(i))
        .collect();
    tracing::info!(
        node = %cfg.node.name,
        interface = %cfg.interface.name,
        mode = match cfg.interface.mode { Mode::Tun => "tun", Mode::Tap => "tap" },
        address = %format!("{}/{}", cfg.interface.address, cfg.interface.prefix_len),
        mtu,
        listen = %cfg.node.listen,
        peers = relay.peer_count(),
        allow = %cfg.allow,
        "relay ready{}",
        if unresolved.is_empty() { String::new() } else { format!(" (not yet resolved: {})", unresolved.join(", ")) }
    );

    let peer_count = relay.peer_count();
    let io = Io { tun, sock };
    // Pinged from the event loop itself: if the loop hangs, the pings stop
    // and the service manager restarts the relay.
    let ping_every = notifier.as_ref().and_then(Notifier::ping_every);
    let mut watchdog = tokio::time::interval(ping_every.unwrap_or(Duration::from_secs(3600)));
    watchdog.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    if let Some(n) = &notifier {
        n.ready();
        if let Some(every) = ping_every {
            tracing::info!(every = ?every, "service manager watchdog enabled");
        }
    }
    let mut st = State {
        relay,
        tun_buf: vec![0u8; MAX_FRAME],
        out_buf: vec![0u8; MAX_FRAME + OVERHEAD],
        net_buf: vec![0u8; MAX_FRAME + OVERHEAD],
        drops: DropLog::new(),
        sends: SendLog {
            last_warn: vec![None; peer_count],
        },
        fanout: Fanout::with_capacity(peer_count),
        inject_warned: None,
        watch: Watch::default(),
        me: cfg.node.name.clone(),
        quorum: cfg.node.quorum.then(Quorum::default),
    };

    loop {
        // Only ever brought forward here (a new peer to greet); moved
        // later when it fires, so the packet path rarely touches it.
        let due = st.next_wake();
        if due < timer.deadline() {
            timer.as_mut().reset(due);
        }
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM received"); break; }
            _ = int.recv() => { tracing::info!("SIGINT received"); break; }
            _ = hup.recv() => {
                if let Some(new) = apply_reload(&cfg, &mut st) {
                    for r in resolvers.drain(..) {
                        r.abort();
                    }
                    generation += 1;
                    resolvers = spawn_resolvers(&new, generation, &tx);
                    // Node numbers in the watch may name other peers now.
                    st.watch = Watch::default();
                    cfg = new;
                    st.send_hellos(&io.sock);
                }
            }
            // Until `status` exists: counters on demand (kill -USR1).
            _ = usr1.recv() => tracing::info!("counters: {}", st.relay.counters()),
            Some((g, name, addr)) = updates.recv() => {
                if let Some(i) = st.relay.peer_by_name(&name).filter(|_| g == generation) {
                    st.relay.set_endpoint(i, Some(addr));
                    st.send_hellos(&io.sock);
                }
            }
            _ = report.tick() => st.drops.report(&st.relay.counters().drops),
            () = &mut timer => {
                st.send_hellos(&io.sock);
                st.check_quorum(io.tun.get_ref());
                let alarm = st.watch.tick(now_ms());
                st.log_alarm(alarm);
                timer.as_mut().reset(st.next_wake());
            }
            Ok((conn, _)) = accept(status_listener.as_ref()) => {
                serve_status(conn, &st.snapshot(&cfg, started));
            }
            Ok((conn, _)) = accept_tcp(metrics_listener.as_ref()) => {
                serve_metrics(conn, metrics::render(&st.snapshot(&cfg, started)));
            }
            _ = watchdog.tick(), if ping_every.is_some() => {
                if let Some(n) = &notifier {
                    n.ping();
                }
            }
            r = io.tun.readable() => {
                let guard = r.map_err(|e| format!("waiting on the interface: {e}"))?;
                st.tun_ready(&io, guard)?;
            }
            r = io.sock.readable() => {
                r.map_err(|e| format!("waiting on the UDP socket: {e}"))?;
                st.sock_ready(&io);
            }
        }
    }
    if let Some(n) = &notifier {
        n.stopping();
    }
    tracing::info!(
        "stopped; interface {} stays in place (persistent), so the failover tool keeps running until the relay is back; counters: {}",
        cfg.interface.name,
        st.relay.counters()
    );
    Ok(())
}
