//! The control surfaces: the status socket `mcast-relay status` reads, the
//! Prometheus metrics over HTTP, and the service manager's readiness and
//! watchdog. Listeners are bound during set-up (before privileges are
//! dropped); clients are served off the loop, bounded in time, so none can
//! stall the packet path.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;
use std::{fmt, os};

use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

use crate::config::NodeConfig;
use crate::daemon::error::Error;
use crate::daemon::status;
use crate::io::notify::Notifier;

/// The bound listeners, each optional.
pub(super) struct Control {
    status: Option<UnixListener>,
    metrics: Option<TcpListener>,
}

impl Control {
    /// Binds the status socket (optional: the relay runs without it, with a
    /// warning) and the metrics listener if configured (its failure is
    /// fatal).
    pub(super) async fn bind(node: &NodeConfig) -> Result<Control, Error> {
        let status = match listen(&node.status_socket, &node.status_group)
            .and_then(|l| UnixListener::from_std(l).map_err(StatusSocketError::Register))
        {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::warn!("no status socket, `mcast-relay status` will not work: {e}");
                None
            }
        };
        let metrics = match node.metrics_listen {
            None => None,
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| Error::Metrics { addr, source })?,
            ),
        };
        Ok(Control { status, metrics })
    }

    /// The next status connection, or never without a socket.
    pub(super) async fn accept_status(&self) -> io::Result<UnixStream> {
        match &self.status {
            Some(l) => l.accept().await.map(|(conn, _)| conn),
            None => std::future::pending().await,
        }
    }

    /// The next metrics connection, or never without a listener.
    pub(super) async fn accept_metrics(&self) -> io::Result<TcpStream> {
        match &self.metrics {
            Some(l) => l.accept().await.map(|(conn, _)| conn),
            None => std::future::pending().await,
        }
    }
}

/// Why there is no status socket (the relay runs on without one).
#[derive(Debug)]
pub(super) enum StatusSocketError {
    CreateDir { dir: PathBuf, source: io::Error },
    RemoveStale { path: PathBuf, source: io::Error },
    Bind { path: PathBuf, source: io::Error },
    SetMode { path: PathBuf, source: io::Error },
    NonBlocking { path: PathBuf, source: io::Error },
    Register(io::Error),
}

impl fmt::Display for StatusSocketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatusSocketError::CreateDir { dir, source } => {
                write!(f, "cannot create {}: {source}", dir.display())
            }
            StatusSocketError::RemoveStale { path, source } => {
                write!(f, "cannot remove the old {}: {source}", path.display())
            }
            StatusSocketError::Bind { path, source } => {
                write!(f, "cannot bind {}: {source}", path.display())
            }
            StatusSocketError::SetMode { path, source } => {
                write!(f, "cannot set the mode of {}: {source}", path.display())
            }
            StatusSocketError::NonBlocking { path, source } => {
                write!(f, "{}: {source}", path.display())
            }
            StatusSocketError::Register(e) => write!(f, "{e}"),
        }
    }
}

/// Binds the status socket (replacing a stale one), readable and writable
/// by root and `group`. Done before privileges are dropped; connections
/// are accepted afterwards on the bound socket.
fn listen(path: &Path, group: &str) -> Result<os::unix::net::UnixListener, StatusSocketError> {
    use std::os::unix::fs::PermissionsExt;
    let at = || path.to_path_buf();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| StatusSocketError::CreateDir {
            dir: dir.to_path_buf(),
            source,
        })?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(StatusSocketError::RemoveStale { path: at(), source }),
    }
    let l = os::unix::net::UnixListener::bind(path)
        .map_err(|source| StatusSocketError::Bind { path: at(), source })?;
    let gid = nix::unistd::Group::from_name(group)
        .ok()
        .flatten()
        .map(|g| g.gid);
    let mode = if gid.is_some() { 0o660 } else { 0o600 };
    if let Some(gid) = gid {
        // Best effort: without it only root can read the status.
        let _ = nix::unistd::chown(path, None, Some(gid));
    } else {
        tracing::warn!(group, socket = %path.display(), "status group does not exist; only root can read the status (set node.status_group)");
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|source| StatusSocketError::SetMode { path: at(), source })?;
    l.set_nonblocking(true)
        .map_err(|source| StatusSocketError::NonBlocking { path: at(), source })?;
    Ok(l)
}

/// Writes a snapshot to a status client off the loop, so a slow reader
/// cannot stall the packet path.
pub(super) fn serve_status(mut conn: UnixStream, snap: &status::Status) {
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

/// The service manager, when started by one: told when the relay is
/// ready and when it stops, and pinged from the event loop itself, so if
/// the loop hangs the pings stop and the relay is restarted.
pub(super) struct Watchdog {
    notifier: Option<Notifier>,
    every: Option<Duration>,
    tick: tokio::time::Interval,
}

impl Watchdog {
    /// Tells the service manager the relay is ready.
    pub(super) fn ready(notifier: Option<Notifier>) -> Watchdog {
        let every = notifier.as_ref().and_then(Notifier::ping_every);
        let mut tick = tokio::time::interval(every.unwrap_or(Duration::from_secs(3600)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        if let Some(n) = &notifier {
            n.ready();
            if let Some(every) = every {
                tracing::info!(every = ?every, "service manager watchdog enabled");
            }
        }
        Watchdog {
            notifier,
            every,
            tick,
        }
    }

    /// The next ping due, or never without a watchdog.
    pub(super) async fn due(&mut self) {
        match self.every {
            Some(_) => {
                self.tick.tick().await;
            }
            None => std::future::pending().await,
        }
    }

    pub(super) fn ping(&self) {
        if let Some(n) = &self.notifier {
            n.ping();
        }
    }

    pub(super) fn stopping(&self) {
        if let Some(n) = &self.notifier {
            n.stopping();
        }
    }
}
