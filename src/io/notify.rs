//! systemd's notify protocol: `READY=1` once the relay serves, `WATCHDOG=1`
//! from the event loop itself, `STOPPING=1` on the way out. A relay whose
//! loop hangs keeps its tun open, so the failover tool's interface stays up
//! while its adverts stop going out: two masters. The watchdog turns that
//! hang into a restart (and, meanwhile, the interface loses its carrier).

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;
use std::{env, fmt, io};

/// A connection to the service manager's notify socket.
#[derive(Debug)]
pub struct Notifier {
    sock: UnixDatagram,
    watchdog: Option<Duration>,
}

/// `NOTIFY_SOCKET` is set but unusable: the service manager waits for a
/// `READY=1` that would never come, so the relay stops instead.
#[derive(Debug)]
pub enum NotifyError {
    BadAddress { path: String, source: io::Error },
    Connect { path: String, source: io::Error },
}

impl fmt::Display for NotifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotifyError::BadAddress { path, source } => write!(f, "NOTIFY_SOCKET={path}: {source}"),
            NotifyError::Connect { path, source } => {
                write!(f, "cannot connect to NOTIFY_SOCKET={path}: {source}")
            }
        }
    }
}

impl std::error::Error for NotifyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NotifyError::BadAddress { source, .. } | NotifyError::Connect { source, .. } => {
                Some(source)
            }
        }
    }
}

/// The watchdog interval systemd asks for, if it is meant for `pid`.
fn watchdog_from(usec: Option<&str>, for_pid: Option<&str>, pid: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok().filter(|u| *u > 0)?;
    if let Some(p) = for_pid
        && p.trim().parse::<u32>().ok() != Some(pid)
    {
        return None;
    }
    Some(Duration::from_micros(usec))
}

impl Notifier {
    /// From `NOTIFY_SOCKET` (and `WATCHDOG_USEC`, `WATCHDOG_PID`); `None`
    /// when not started by a service manager that wants notifications.
    /// Connects at once, so it keeps working after privileges are dropped.
    pub fn from_env() -> Result<Option<Notifier>, NotifyError> {
        let Some(path) = env::var_os("NOTIFY_SOCKET") else {
            return Ok(None);
        };
        let path = path.to_string_lossy().into_owned();
        let addr = match path.strip_prefix('@') {
            Some(name) => SocketAddr::from_abstract_name(name.as_bytes()),
            None => SocketAddr::from_pathname(&path),
        }
        .map_err(|source| NotifyError::BadAddress {
            path: path.clone(),
            source,
        })?;
        let sock = UnixDatagram::unbound()
            .and_then(|s| s.connect_addr(&addr).map(|()| s))
            .map_err(|source| NotifyError::Connect { path, source })?;
        let watchdog = watchdog_from(
            env::var("WATCHDOG_USEC").ok().as_deref(),
            env::var("WATCHDOG_PID").ok().as_deref(),
            std::process::id(),
        );
        Ok(Some(Notifier { sock, watchdog }))
    }

    /// How often to ping: half the service manager's timeout.
    pub fn ping_every(&self) -> Option<Duration> {
        self.watchdog.map(|w| w / 2)
    }

    fn send(&self, msg: &str) {
        // The service manager going away must not stop the relay.
        if let Err(e) = self.sock.send(msg.as_bytes()) {
            tracing::debug!(error = %e, msg, "notify socket");
        }
    }

    pub fn ready(&self) {
        self.send("READY=1\nSTATUS=relaying");
    }

    pub fn ping(&self) {
        self.send("WATCHDOG=1");
    }

    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_interval_and_pid() {
        assert_eq!(
            watchdog_from(Some("2000000"), None, 7),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            watchdog_from(Some("2000000"), Some("7"), 7),
            Some(Duration::from_secs(2))
        );
        assert_eq!(watchdog_from(Some("2000000"), Some("8"), 7), None);
        assert_eq!(watchdog_from(Some("0"), None, 7), None);
        assert_eq!(watchdog_from(Some("soon"), None, 7), None);
        assert_eq!(watchdog_from(None, None, 7), None);
    }

    #[test]
    fn messages_reach_the_socket() {
        let dir = std::env::temp_dir().join(format!("mcast-relay-notify-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let path = dir.join("notify.sock");
        let server = UnixDatagram::bind(&path).expect("bind");
        let n = Notifier {
            sock: {
                let s = UnixDatagram::unbound().expect("socket");
                s.connect(&path).expect("connect");
                s
            },
            watchdog: Some(Duration::from_millis(500)),
        };
        assert_eq!(n.ping_every(), Some(Duration::from_millis(250)));
        n.ready();
        n.ping();
        n.stopping();
        let mut buf = [0u8; 128];
        let mut got = Vec::new();
        for _ in 0..3 {
            let len = server.recv(&mut buf).expect("recv");
            got.push(String::from_utf8_lossy(&buf[..len]).into_owned());
        }
        assert_eq!(
            got,
            ["READY=1\nSTATUS=relaying", "WATCHDOG=1", "STOPPING=1"]
        );
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
