//! Background DNS for peers given by name: one task per such endpoint
//! (a member may list several, one per path) follows its name and reports
//! new addresses to the loop, keyed by the peer's `PeerId` and the path. A reload restarts them under a new generation, so a late
//! answer about the old peer list is recognised and ignored.

use std::net::SocketAddr;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::{Config, Endpoint};
use crate::core::relay::PeerId;
use crate::io::net;

/// The resolvers' generation, the peer and path whose endpoint changed,
/// and its new address.
///
/// The `PeerId` alone would not do: it survives a reload (same overlay
/// address, same peer), so an answer a previous config's resolver had
/// already queued could overwrite the endpoint the new config gives
/// that peer (a literal address, or another name). Aborting the old tasks
/// cannot recall what they have already sent; the generation can.
pub(super) type EndpointUpdate = ((u64, PeerId, usize), SocketAddr);

pub(super) struct Resolvers {
    tx: mpsc::Sender<EndpointUpdate>,
    generation: u64,
    tasks: Vec<JoinHandle<()>>,
}

impl Resolvers {
    /// Starts following `cfg`'s names; updates arrive on the receiver.
    pub(super) fn start(cfg: &Config) -> (Resolvers, mpsc::Receiver<EndpointUpdate>) {
        let (tx, updates) = mpsc::channel::<EndpointUpdate>(64);
        let mut r = Resolvers {
            tx,
            generation: 0,
            tasks: Vec::new(),
        };
        r.tasks = r.spawn(cfg);
        (r, updates)
    }

    /// Stops following the old names and follows `cfg`'s.
    pub(super) fn restart(&mut self, cfg: &Config) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
        self.generation += 1;
        self.tasks = self.spawn(cfg);
    }

    /// Whether an update of generation `g` is about the current peers.
    pub(super) fn is_current(&self, g: u64) -> bool {
        g == self.generation
    }

    /// One background lookup per endpoint given by a DNS name.
    fn spawn(&self, cfg: &Config) -> Vec<JoinHandle<()>> {
        cfg.peers
            .iter()
            .flat_map(|p| p.endpoints.iter().enumerate().map(move |(k, e)| (p, k, e)))
            .filter_map(|(p, k, e)| match e {
                Endpoint::Name { host, port } => Some(tokio::spawn(net::follow_name(
                    (self.generation, PeerId::from(p.address), k),
                    p.name.clone(),
                    host.clone(),
                    *port,
                    cfg.node.listen,
                    cfg.node.resolve_interval,
                    self.tx.clone(),
                ))),
                Endpoint::Addr(_) => None,
            })
            .collect()
    }
}
