//! Everything before the event loop, as named steps in the order they must
//! happen: what needs root (the interface, the socket, the listeners) is
//! done first, then privileges are dropped, then the core is built.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::config::{Config, Endpoint, InterfaceConfig, Mode, NodeConfig};
use crate::core::MAX_PATHS;
use crate::core::relay::{PeerId, Relay, Security};
use crate::daemon::control::Control;
use crate::daemon::core_config;
use crate::daemon::error::Error;
use crate::daemon::event_loop::Io;
use crate::io::net;
use crate::io::notify::Notifier;
use crate::io::privilege::{self, RunAs};
use crate::io::realtime;
use crate::io::tun::{self, Tun, TunSpec};
use crate::proto::frame;
use crate::underlay;
use ring::rand::{SecureRandom, SystemRandom};

const FALLBACK_UNDERLAY_MTU: u32 = 1500;

/// A relay set up and ready to run.
pub(super) struct Ready {
    pub(super) cfg: Config,
    pub(super) relay: Relay,
    pub(super) io: Io,
    pub(super) control: Control,
    pub(super) signals: Signals,
    pub(super) notifier: Option<Notifier>,
    /// When the set-up finished, for the status's uptime.
    pub(super) started: Instant,
}

/// The signals the loop handles.
pub(super) struct Signals {
    pub(super) term: Signal,
    pub(super) int: Signal,
    pub(super) hup: Signal,
    pub(super) usr1: Signal,
}

/// Sets the relay up, from the key to the core, and logs that it is ready.
pub(super) async fn prepare(cfg: Config) -> Result<Ready, Error> {
    let run_as = privilege::lookup(&cfg.node.user)?;
    // First, while privileged: a relay that cannot have them stops before
    // it creates anything, and the threads started later inherit SCHED_RR.
    realtime(&cfg.node)?;
    // Connected now: the service manager's socket may not accept an
    // unprivileged sender later.
    let notifier = Notifier::from_env()?;
    let security = security(&cfg.node)?;
    let endpoints = first_resolution(&cfg).await;
    let mtu = choose_mtu(&cfg, &endpoints);
    let tun = open_tun(&cfg.interface, mtu)?;
    let sock = net::bind(cfg.node.listen).map_err(Error::Bind)?;
    let control = Control::bind(&cfg.node).await?;
    let started = Instant::now();
    // Readable only: the relay never waits to send (a full buffer drops
    // the datagram, counted), and with writable interest every send woke
    // the loop once more when the kernel freed the datagram's buffer.
    // SAFETY: the AsyncFd owns the socket, so the descriptor stays open
    // and the same for as long as it is registered.
    let sock = unsafe { AsyncFd::register_with_interest(sock, Interest::READABLE) }
        .map_err(std::io::Error::from)
        .map_err(Error::RegisterSocket)?;
    drop_privileges(&run_as)?;
    let relay = build_core(&cfg, security, &endpoints)?;
    let signals = install_signals()?;
    log_ready(&cfg, &relay, mtu);
    Ok(Ready {
        cfg,
        relay,
        io: Io { tun, sock },
        control,
        signals,
        notifier,
        started,
    })
}

/// The key, or a loud warning without one.
fn security(node: &NodeConfig) -> Result<Security, Error> {
    if node.insecure {
        tracing::warn!(
            "INSECURE MODE: insecure = true, datagrams are neither authenticated nor encrypted; anyone who can reach the relay port can inject heartbeats and steal the virtual IP. Use this in labs only."
        );
        Ok(Security::Insecure)
    } else {
        let key = node.key.as_ref().ok_or(Error::NoKeyFile)?;
        Ok(Security::Authenticated(key.clone()))
    }
}

/// Each peer's paths: given, or one quick attempt at each name before
/// sizing the MTU; later attempts run in the background and never hold up
/// the others.
async fn first_resolution(cfg: &Config) -> Vec<Vec<Option<SocketAddr>>> {
    let mut endpoints: Vec<Vec<Option<SocketAddr>>> = cfg
        .peers
        .iter()
        .map(|p| p.endpoints.iter().map(underlay::static_endpoint).collect())
        .collect();
    for (i, p) in cfg.peers.iter().enumerate() {
        for (k, e) in p.endpoints.iter().enumerate() {
            if let Endpoint::Name { host, port } = e {
                let quick = tokio::time::timeout(
                    Duration::from_secs(2),
                    net::resolve(host, *port, cfg.node.listen),
                );
                if let Ok(Ok(a)) = quick.await {
                    endpoints[i][k] = Some(a);
                }
            }
        }
    }
    endpoints
}

/// The interface MTU: configured, or the smallest route MTU towards the
/// peers minus what the relay adds, so no datagram is fragmented.
fn choose_mtu(cfg: &Config, endpoints: &[Vec<Option<SocketAddr>>]) -> u32 {
    let fitting = endpoints
        .iter()
        .flatten()
        .flatten()
        .filter_map(|ep| match tun::route_mtu(*ep) {
            Ok(m) => Some(underlay::inner_mtu(m, ep, cfg.interface.mode)),
            Err(e) => {
                tracing::debug!(endpoint = %ep, error = %e, "no route MTU");
                None
            }
        })
        .min();
    let fallback = underlay::inner_mtu(
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

/// Creates (or takes over) the interface and registers it with the loop.
fn open_tun(iface: &InterfaceConfig, mtu: u32) -> Result<tokio::io::unix::AsyncFd<Tun>, Error> {
    let spec = TunSpec {
        name: iface.name.clone(),
        mtu,
        address: iface.address,
        prefix_len: iface.prefix_len,
        broadcast: iface.broadcast(),
        address6: iface.address6,
        tap_mac: (iface.mode == Mode::Tap).then(|| frame::node_mac(iface.address)),
    };
    let tun = Tun::open(&spec).map_err(Error::Tun)?;
    tun.into_async().map_err(Error::RegisterTun)
}

/// `node.realtime_priority` and `node.lock_memory`, before privileges
/// are dropped; they stay in force after the drop.
fn realtime(node: &NodeConfig) -> Result<(), Error> {
    let applied = realtime::apply(node.realtime_priority, node.lock_memory)?;
    if let Some((priority, threads)) = applied.priority {
        tracing::info!(
            priority,
            threads,
            "real-time scheduling: SCHED_RR (node.realtime_priority)"
        );
    }
    if let Some((locked, limit)) = applied.locked {
        let limit = limit.map_or("unlimited".to_string(), |l| format!("{} MiB", l >> 20));
        tracing::info!(
            locked_mib = locked >> 20,
            memlock_limit = %limit,
            "memory locked, never swapped out (node.lock_memory)"
        );
    }
    Ok(())
}

/// Switches to `node.user` now that everything needing root is done.
fn drop_privileges(run_as: &RunAs) -> Result<(), Error> {
    match privilege::drop_to(run_as)? {
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
    Ok(())
}

/// The sans-IO core, with the endpoints resolved so far.
fn build_core(
    cfg: &Config,
    security: Security,
    endpoints: &[Vec<Option<SocketAddr>>],
) -> Result<Relay, Error> {
    let mut run = [0u8; 8];
    SystemRandom::new()
        .fill(&mut run)
        .map_err(|_| Error::Random)?;
    let mut relay = Relay::new(core_config::relay_params(
        cfg,
        security,
        u64::from_be_bytes(run),
    ));
    for (p, paths) in cfg.peers.iter().zip(endpoints) {
        for (k, ep) in paths.iter().enumerate() {
            relay.set_path(PeerId::from(p.address), k, *ep);
        }
    }
    Ok(relay)
}

fn install_signals() -> Result<Signals, Error> {
    let sig = |k: SignalKind| signal(k).map_err(Error::Signals);
    Ok(Signals {
        term: sig(SignalKind::terminate())?,
        int: sig(SignalKind::interrupt())?,
        hup: sig(SignalKind::hangup())?,
        usr1: sig(SignalKind::user_defined1())?,
    })
}

fn log_ready(cfg: &Config, relay: &Relay, mtu: u32) {
    let unresolved: Vec<&str> = relay
        .peers()
        .filter(|id| (0..MAX_PATHS).all(|k| relay.path_addr(*id, k).is_none()))
        .filter_map(|id| relay.peer_name(id))
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
}
