//! The event loop: one thread owns the core, the buffers (allocated once)
//! and both file descriptors, and moves packets between the interface and
//! the socket through the core; it also handles signals (SIGHUP reloads
//! the configuration), endpoint updates, timers and the control surfaces.
//! One thread is plenty for heartbeat traffic and keeps the packet path
//! free of locks and channel hops.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use tokio::io::unix::AsyncFd;

use crate::config::Config;
use crate::core::counters::DropReason;
use crate::core::relay::{Datagrams, Event, Inbound, Node, Now, OVERHEAD, Outbound, PeerId, Relay};
use crate::core::vrrp_watch::Alarm;
use crate::daemon::clock::Clock;
use crate::daemon::control::{self, Watchdog};
use crate::daemon::core_config;
use crate::daemon::error::Error;
use crate::daemon::hooks::Hooks;
use crate::daemon::logs::{DropLog, REPORT_EVERY, SendLog};
use crate::daemon::metrics_server::{self, MetricsServer};
use crate::daemon::resolve::Resolvers;
use crate::daemon::setup::Ready;
use crate::daemon::{metrics, reload, status};
use crate::io::fanout::Fanout;
use crate::io::recv::{PER_CALL, Recv};
use crate::io::tun::Tun;
use crate::proto::frame;
use crate::underlay;

/// Packets handled per readiness event before the loop looks at the other
/// source, so neither direction can starve the other.
const BATCH: usize = 64;
/// Largest IP packet, in an Ethernet frame in tap mode.
const MAX_FRAME: usize = 65_535 + frame::HEADER_LEN;
/// How long the loop sleeps when the core has nothing scheduled (insecure
/// mode, no peers): a wake-up that finds nothing to do.
const NOTHING_DUE: Duration = Duration::from_secs(3600);

/// Runs the loop until SIGTERM or SIGINT.
pub(super) async fn run(ready: Ready) -> Result<(), Error> {
    let Ready {
        mut cfg,
        relay,
        io,
        control,
        mut signals,
        notifier,
        started,
    } = ready;
    let (mut resolvers, mut updates) = Resolvers::start(&cfg);
    let mut report =
        tokio::time::interval_at(tokio::time::Instant::now() + REPORT_EVERY, REPORT_EVERY);
    // Wakes the loop when the core's next deadline comes (a hello or
    // keepalive, a reachability window's end, a split brain's end), rather
    // than on a fixed tick: an idle relay sleeps.
    let timer = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(timer);
    let mut watchdog = Watchdog::ready(notifier);
    let mut st = State::new(relay, &cfg, Clock::since(started));
    let mut metrics_http = MetricsServer::new(metrics_server::LIMITS);

    loop {
        // Only ever brought forward here (a new peer to greet); moved
        // later when it fires, so the packet path rarely touches it.
        let due = st.next_wake();
        if due < timer.deadline() {
            timer.as_mut().reset(due);
        }
        tokio::select! {
            _ = signals.term.recv() => { tracing::info!("SIGTERM received"); break; }
            _ = signals.int.recv() => { tracing::info!("SIGINT received"); break; }
            _ = signals.hup.recv() => on_sighup(&mut cfg, &mut st, &mut resolvers, &io.sock),
            // Counters into the log on demand (kill -USR1).
            _ = signals.usr1.recv() => tracing::info!("counters: {}", st.relay.counters()),
            Some(((g, id, path), addr)) = updates.recv() => {
                if resolvers.is_current(g) && st.relay.peer_name(id).is_some() {
                    st.relay.set_path(id, path, Some(addr));
                    st.send_hellos(&io.sock);
                }
            }
            _ = report.tick() => st.drops.report(&st.relay.counters().drops),
            () = &mut timer => {
                st.on_timer(&io);
                timer.as_mut().reset(st.next_wake());
            }
            Some(done) = st.hooks.finished() => {
                st.hooks.finish(done);
                timer.as_mut().reset(st.next_wake());
            }
            Ok(conn) = control.accept_status() => {
                control::serve_status(conn, &st.snapshot(&cfg, started));
            }
            Ok(conn) = control.accept_metrics() => {
                let snapshot = |http: &_| metrics::render(&st.snapshot(&cfg, started), http);
                metrics_http.accept(conn, Instant::now(), snapshot);
            }
            () = watchdog.due() => watchdog.ping(),
            r = io.tun.readable() => {
                let guard = r.map_err(Error::WaitTun)?;
                st.tun_ready(&io, guard)?;
            }
            r = io.sock.readable() => {
                let guard = r.map_err(Error::WaitSocket)?;
                st.sock_ready(&io, guard);
            }
        }
    }
    watchdog.stopping();
    tracing::info!(
        "stopped; interface {} stays in place (persistent), so the failover tool keeps running until the relay is back; counters: {}",
        cfg.interface.name,
        st.relay.counters()
    );
    Ok(())
}

/// The relay's UDP socket, registered for readability only.
pub(super) type UdpSocket = AsyncFd<std::net::UdpSocket>;

/// The two file descriptors; borrowed immutably while waiting on both.
pub(super) struct Io {
    pub(super) tun: AsyncFd<Tun>,
    pub(super) sock: UdpSocket,
}

/// Everything the packet path mutates, owned by the loop.
struct State {
    relay: Relay,
    tun_buf: Vec<u8>,
    /// Handshake messages and keepalives, one at a time.
    out_buf: Vec<u8>,
    /// A packet from the interface, sealed once per peer.
    batch: Datagrams,
    net: Recv,
    drops: DropLog,
    sends: SendLog,
    fanout: Fanout<PeerId>,
    inject_warned: Option<Instant>,
    /// This node's name, for the advert watch's reports.
    me: String,
    clock: Clock,
    hooks: Hooks,
}

impl State {
    fn new(relay: Relay, cfg: &Config, clock: Clock) -> State {
        let peer_count = relay.peer_count();
        State {
            relay,
            tun_buf: vec![0u8; MAX_FRAME],
            out_buf: vec![0u8; MAX_FRAME + OVERHEAD],
            batch: Datagrams::new(MAX_FRAME + OVERHEAD, peer_count),
            net: Recv::new(MAX_FRAME + OVERHEAD),
            drops: DropLog::new(),
            sends: SendLog::new(),
            fanout: Fanout::with_capacity(peer_count),
            inject_warned: None,
            me: cfg.node.name.clone(),
            clock,
            hooks: Hooks::new(&cfg.vips, &cfg.node.name, &cfg.interface.name),
        }
    }

    /// The loop's timer fired: what the core has due (reachability, quorum,
    /// the advert watch), then the hellos and keepalives due.
    fn on_timer(&mut self, io: &Io) {
        let now = self.clock.now();
        self.relay.handle_timeout(now);
        if self.relay.poll_later(now, &mut self.batch) {
            self.send_batch(&io.sock);
        }
        self.send_hellos(&io.sock);
        self.on_events(io.tun.get_ref());
        self.hooks.retry_due(Instant::now());
    }

    fn on_tun_packet(&mut self, n: usize, now: Now, sock: &UdpSocket) {
        match self
            .relay
            .from_tun(&self.tun_buf[..n], now, &mut self.batch)
        {
            Outbound::Send { .. } => self.send_batch(sock),
            Outbound::Drop(r) => self.drops.note(r, None),
        }
    }

    fn snapshot(&self, cfg: &Config, started: Instant) -> status::Status {
        status::snapshot(
            &self.relay,
            &status::Context {
                node: &cfg.node.name,
                interface: &cfg.interface.name,
                uptime_s: started.elapsed().as_secs_f64(),
                now: self.clock.now(),
                vips: self
                    .hooks
                    .status(|p| self.peer_name(p), self.clock.now().mono_ms),
            },
        )
    }

    /// Acts on what happened in the core: the log lines, and with
    /// `node.quorum` the interface's carrier as the majority comes and goes.
    fn on_events(&mut self, tun: &Tun) {
        while let Some(e) = self.relay.poll_event() {
            match e {
                Event::PeerConfirmed { peer, epoch } => {
                    tracing::info!(peer = %self.peer_name(peer), epoch, "peer confirmed")
                }
                Event::PeerRestarted { peer, old, new } => {
                    tracing::info!(peer = %self.peer_name(peer), old_epoch = old, new_epoch = new, "peer restarted; new run confirmed")
                }
                Event::PeerReachable { peer } => {
                    tracing::debug!(peer = %self.peer_name(peer), "peer reachable")
                }
                Event::PeerUnreachable { peer } => {
                    tracing::debug!(peer = %self.peer_name(peer), "peer unreachable: no answer to keepalives")
                }
                Event::SplitBrain(alarm) => self.log_alarm(alarm),
                Event::QuorumLost { reachable, cluster } => {
                    Self::set_carrier(tun, false, reachable, cluster)
                }
                Event::QuorumRegained { reachable, cluster } => {
                    Self::set_carrier(tun, true, reachable, cluster)
                }
                Event::Vip { vip, standing } => {
                    let (relay, me) = (&self.relay, self.me.as_str());
                    self.hooks.on_standing(vip, standing, |p| {
                        status::node_name(relay, me, Node::Peer(p))
                    });
                }
            }
        }
    }

    fn set_carrier(tun: &Tun, up: bool, reachable: usize, cluster: usize) {
        if let Err(e) = tun.set_carrier(up) {
            tracing::error!("quorum: {e}");
        } else if up {
            tracing::info!(
                "quorum: {} of {} nodes reachable; carrier of {} up",
                reachable,
                cluster,
                tun.name()
            );
        } else {
            tracing::warn!(
                "quorum lost: {} of {} nodes reachable; carrier of {} down so the failover tool steps down",
                reachable,
                cluster,
                tun.name()
            );
        }
    }

    fn peer_name(&self, peer: PeerId) -> String {
        status::node_name(&self.relay, &self.me, Node::Peer(peer))
    }

    fn node_name(&self, n: Node) -> String {
        status::node_name(&self.relay, &self.me, n)
    }

    fn log_alarm(&self, alarm: Alarm) {
        match alarm {
            Alarm::Raised(r) => tracing::warn!(
                vrid = r.vrid,
                family = r.family.name(),
                "split brain: two nodes advertise as VRRP master: {} and {}; check the network between them",
                self.node_name(r.master),
                r.rival.map_or("?".to_string(), |n| self.node_name(n))
            ),
            Alarm::Cleared(r) => tracing::info!(
                vrid = r.vrid,
                family = r.family.name(),
                master = %self.node_name(r.master),
                "split brain over: one master again"
            ),
        }
    }

    /// The datagrams of one packet, each sealed for its peer, in one
    /// system call.
    fn send_batch(&mut self, sock: &UdpSocket) {
        if self.batch.is_empty() {
            return;
        }
        let (relay, sends) = (&mut self.relay, &mut self.sends);
        self.fanout
            .send(sock.as_raw_fd(), self.batch.iter(), |i, ep, r| match r {
                Ok(len) => relay.count_sent(i, len),
                Err(e) => {
                    relay.count_drop(DropReason::SendFailed);
                    sends.failed(relay, i, ep, &e);
                }
            });
    }

    /// A handshake message or keepalive (the first `len` bytes of the
    /// output buffer) to `to`, one of peer `peer`'s configured endpoints.
    fn send_one(&mut self, len: usize, peer: PeerId, to: SocketAddr, sock: &UdpSocket) {
        let one = std::iter::once((peer, to, &self.out_buf[..len]));
        let (relay, sends) = (&mut self.relay, &mut self.sends);
        self.fanout.send(sock.as_raw_fd(), one, |i, ep, r| match r {
            Ok(len) => relay.count_sent(i, len),
            Err(e) => {
                relay.count_drop(DropReason::SendFailed);
                sends.failed(relay, i, ep, &e);
            }
        });
    }

    /// When the loop must next wake without traffic: the core's next
    /// deadline, exactly.
    fn next_wake(&self) -> tokio::time::Instant {
        let core = self.relay.poll_timeout().map(|at| self.clock.instant(at));
        match core.into_iter().chain(self.hooks.next_retry()).min() {
            Some(at) => tokio::time::Instant::from_std(at),
            None => tokio::time::Instant::now() + NOTHING_DUE,
        }
    }

    /// Sends every hello the core wants out now.
    fn send_hellos(&mut self, sock: &UdpSocket) {
        let now = self.clock.now();
        while let Some((len, peer, to)) = self.relay.poll_hello(now, &mut self.out_buf) {
            self.send_one(len, peer, to, sock);
        }
    }

    /// Datagram `k` of the last receive.
    fn on_datagram(&mut self, k: usize, now: Now, io: &Io) {
        let tun = io.tun.get_ref();
        let (buf, from) = self.net.datagram(k);
        let Some(from) = from.map(underlay::canonical) else {
            // Not an IP sender: nothing on the underlay sends that.
            self.relay.count_drop(DropReason::Malformed);
            return;
        };
        match self.relay.from_net(buf, from, now, &mut self.out_buf) {
            Inbound::Reply { len, peer, to } => self.send_one(len, peer, to, &io.sock),
            Inbound::Handled => {}
            Inbound::Inject { start, len, .. } => {
                if let Err(e) = tun.write(&buf[start..start + len]) {
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
    ) -> Result<(), Error> {
        // One reading of the clocks per batch: a batch takes well under a
        // millisecond, the clocks' resolution here.
        let now = self.clock.now();
        for _ in 0..BATCH {
            let buf = &mut self.tun_buf;
            match guard.try_io(|t| t.get_ref().read(buf)) {
                Ok(Ok(n)) => self.on_tun_packet(n, now, &io.sock),
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(Err(e)) => return Err(Error::ReadTun(e)),
                Err(_would_block) => break,
            }
        }
        self.on_events(io.tun.get_ref());
        Ok(())
    }

    fn sock_ready(
        &mut self,
        io: &Io,
        mut guard: tokio::io::unix::AsyncFdReadyGuard<'_, std::net::UdpSocket>,
    ) {
        // As in tun_ready: one reading of the clocks per batch.
        let now = self.clock.now();
        let mut taken = 0;
        while taken < BATCH {
            match self.net.recv(io.sock.as_raw_fd()) {
                Ok(n) => {
                    for k in 0..n {
                        self.on_datagram(k, now, io);
                    }
                    taken += n;
                    if n < PER_CALL {
                        // The queue was empty as the kernel looked, and a
                        // datagram arriving since has woken epoll again:
                        // no empty read needed to find out.
                        guard.clear_ready();
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    guard.clear_ready();
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // ICMP errors from earlier sends surface here; they concern
                // one peer and must not stop the loop.
                Err(e) => {
                    tracing::debug!(error = %e, "receive error");
                    break;
                }
            }
        }
        self.send_hellos(&io.sock);
        self.on_events(io.tun.get_ref());
    }
}

/// SIGHUP: applies the file if it can be, then follows the new peers'
/// names and greets the new peers.
fn on_sighup(cfg: &mut Config, st: &mut State, resolvers: &mut Resolvers, sock: &UdpSocket) {
    if let Some(new) = apply_reload(cfg, st) {
        resolvers.restart(&new);
        *cfg = new;
        st.send_hellos(sock);
    }
}

/// Each new peer's paths: given, or, if the same member had the same
/// endpoint at the same place before, the address it resolved to while
/// running.
fn kept_endpoints(cfg: &Config, new: &Config, relay: &Relay) -> Vec<Vec<Option<SocketAddr>>> {
    new.peers
        .iter()
        .map(|p| {
            p.endpoints
                .iter()
                .enumerate()
                .map(|(k, e)| {
                    underlay::static_endpoint(e).or_else(|| {
                        let old = cfg
                            .peers
                            .iter()
                            .find(|o| o.name == p.name && o.endpoints.get(k) == Some(e))?;
                        relay.path_addr(relay.peer_by_name(&old.name)?, k)
                    })
                })
                .collect()
        })
        .collect()
}

/// Reads the configuration file again and applies what can change
/// while running; returns the new configuration if it was applied. A file
/// that does not parse, or that changes what needs a restart, is refused
/// and the running configuration stays.
fn apply_reload(cfg: &Config, st: &mut State) -> Option<Config> {
    let shown = cfg.path.display();
    let new = match cfg.reload() {
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
    let endpoints = kept_endpoints(cfg, &new, &st.relay);
    st.relay.reconfigure(core_config::reload(&new));
    for (p, paths) in new.peers.iter().zip(endpoints) {
        let id = PeerId::from(p.address);
        st.relay.truncate_paths(id, paths.len());
        for (k, ep) in paths.into_iter().enumerate() {
            st.relay.set_path(id, k, ep);
        }
    }
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
