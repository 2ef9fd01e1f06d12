//! Serving the metrics so that scrapers, however many and however slow,
//! cost the packet path next to nothing: at most a few connections at a
//! time (more are closed at once, and counted), each with a deadline, and
//! the exposition rendered by the loop at most once per interval into a
//! shared buffer that every connection's task copies from. Without these,
//! every connection cost the loop a snapshot and a render, and silent
//! connections could use up the relay's file descriptors.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::daemon::metrics::{self, HttpStats};

/// How the endpoint is bounded.
#[derive(Clone, Copy, Debug)]
pub(super) struct Limits {
    /// Connections served at once; more are closed as soon as accepted.
    pub(super) connections: usize,
    /// The longest a connection may take, request and answer together.
    pub(super) deadline: Duration,
    /// The exposition is rendered again at most this often.
    pub(super) render_every: Duration,
}

/// A Prometheus server scrapes every 15 s or so; a few scrapers at once
/// are plenty, and an answer at most a quarter of a second old is fresh.
pub(super) const LIMITS: Limits = Limits {
    connections: 16,
    deadline: Duration::from_secs(2),
    render_every: Duration::from_millis(250),
};

/// The endpoint's state, owned by the event loop.
pub(super) struct MetricsServer {
    limits: Limits,
    slots: Arc<Semaphore>,
    /// The last exposition and when it was rendered.
    latest: Option<(Instant, Arc<str>)>,
    stats: HttpStats,
    renders: u64,
}

impl MetricsServer {
    pub(super) fn new(limits: Limits) -> MetricsServer {
        MetricsServer {
            limits,
            slots: Arc::new(Semaphore::new(limits.connections)),
            latest: None,
            stats: HttpStats::default(),
            renders: 0,
        }
    }

    /// Takes an accepted connection: answered off the loop from the
    /// latest exposition (rendered first by `render` if it is older than
    /// the interval), or closed at once, and counted, when every slot is
    /// taken.
    pub(super) fn accept(
        &mut self,
        conn: TcpStream,
        now: Instant,
        render: impl FnOnce(&HttpStats) -> String,
    ) {
        let Ok(slot) = Arc::clone(&self.slots).try_acquire_owned() else {
            self.stats.refused += 1;
            drop(conn);
            return;
        };
        let body = self.exposition(now, render);
        tokio::spawn(serve(conn, body, slot, self.limits.deadline));
    }

    /// The exposition as of at most one interval ago.
    fn exposition(&mut self, now: Instant, render: impl FnOnce(&HttpStats) -> String) -> Arc<str> {
        match &self.latest {
            Some((at, body)) if now.saturating_duration_since(*at) < self.limits.render_every => {
                Arc::clone(body)
            }
            _ => {
                self.renders += 1;
                let body: Arc<str> = render(&self.stats).into();
                self.latest = Some((now, Arc::clone(&body)));
                body
            }
        }
    }
}

/// One HTTP exchange within `deadline`; the slot is given back when it
/// ends, however it ends.
async fn serve(
    mut conn: TcpStream,
    body: Arc<str>,
    slot: OwnedSemaphorePermit,
    deadline: Duration,
) {
    let exchange = async {
        let mut req = [0u8; 1024];
        let n = conn.read(&mut req).await?;
        let text = String::from_utf8_lossy(&req[..n]);
        let first = text.lines().next().unwrap_or("");
        conn.write_all(metrics::respond(first, &body).as_bytes())
            .await?;
        conn.shutdown().await
    };
    if let Err(e) = tokio::time::timeout(deadline, exchange)
        .await
        .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
    {
        tracing::debug!(error = %e, "metrics client");
    }
    drop(slot);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    const TEST_LIMITS: Limits = Limits {
        connections: 16,
        deadline: Duration::from_millis(500),
        render_every: Duration::from_millis(250),
    };

    /// A thousand requests a second cost four renders a second.
    #[test]
    fn renders_are_rate_limited() {
        let mut server = MetricsServer::new(LIMITS);
        let t0 = Instant::now();
        let mut calls = 0;
        for ms in 0..1000 {
            let body = server.exposition(t0 + Duration::from_millis(ms), |_| {
                calls += 1;
                format!("render {calls}\n")
            });
            assert_eq!(&*body, format!("render {}\n", ms / 250 + 1));
        }
        assert_eq!((calls, server.renders), (4, 4));
    }

    fn open_fds() -> usize {
        std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
    }

    /// Reads until the server closes; `None` if it has not within `wait`.
    async fn answer(conn: &mut TcpStream, wait: Duration) -> Option<String> {
        let mut got = Vec::new();
        match tokio::time::timeout(wait, conn.read_to_end(&mut got)).await {
            Ok(_) => Some(String::from_utf8_lossy(&got).into_owned()),
            Err(_) => None,
        }
    }

    /// Silent connections beyond the cap are closed at once rather than
    /// held, so the relay's descriptors stay bounded; a request meanwhile
    /// is refused at once, not left hanging; the silent ones are cut off
    /// at the deadline and a request is then answered.
    #[tokio::test]
    async fn silent_connections_are_capped_and_cut_off() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (refused_tx, mut refused_rx) = tokio::sync::watch::channel(0u64);
        tokio::spawn(async move {
            let mut server = MetricsServer::new(TEST_LIMITS);
            while let Ok((conn, _)) = listener.accept().await {
                server.accept(conn, Instant::now(), |http| {
                    format!("refused {}\n", http.refused)
                });
                let _ = refused_tx.send(server.stats.refused);
            }
        });
        let before = open_fds();
        let silent = 100;
        let mut idle = Vec::new();
        for _ in 0..silent {
            idle.push(TcpStream::connect(addr).await.expect("connect"));
        }
        let refused = u64::try_from(silent - TEST_LIMITS.connections).expect("small");
        tokio::time::timeout(
            Duration::from_secs(5),
            refused_rx.wait_for(|n| *n >= refused),
        )
        .await
        .expect("the connections beyond the cap were refused")
        .expect("server running");
        // Ours: one per client socket, one per connection the server holds.
        let grown = open_fds().saturating_sub(before);
        assert!(
            grown < silent + TEST_LIMITS.connections + 20,
            "{grown} more descriptors for {silent} silent connections"
        );
        let start = Instant::now();
        let mut late = TcpStream::connect(addr).await.expect("connect");
        late.write_all(b"GET /metrics HTTP/1.1\r\n\r\n")
            .await
            .expect("write");
        let got = answer(&mut late, Duration::from_millis(300)).await;
        assert_eq!(got.as_deref(), Some(""), "refused at once, with no answer");
        assert!(start.elapsed() < Duration::from_millis(300));
        // The silent ones are cut off at the deadline...
        for conn in idle.iter_mut().take(TEST_LIMITS.connections) {
            let got = answer(conn, TEST_LIMITS.deadline * 3).await;
            assert!(got.is_some(), "a silent connection outlived its deadline");
        }
        // ...and then a request is answered, the refusals counted in it.
        let mut conn = TcpStream::connect(addr).await.expect("connect");
        conn.write_all(b"GET /metrics HTTP/1.1\r\n\r\n")
            .await
            .expect("write");
        let got = answer(&mut conn, Duration::from_secs(2))
            .await
            .expect("answered");
        assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got}");
        assert!(
            got.ends_with(&format!("refused {}\n", refused + 1)),
            "{got}"
        );
    }
}
