//! Rate-limited reporting of what the packet path drops or fails to send:
//! the first of each kind is logged with what it means, the rest summed up
//! once a window, so a flood of bad datagrams cannot flood the log.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::core::counters::{DropCounters, DropReason};
use crate::core::relay::{PeerId, Relay};

/// How often drop counts are summarised in the log.
pub(super) const REPORT_EVERY: Duration = Duration::from_secs(60);

/// Rate-limited reporting: the first drop of each reason in a window is
/// logged with what it means; the rest are summed up when the window ends.
pub(super) struct DropLog {
    warned: [bool; DropReason::ALL.len()],
    at_last_report: DropCounters,
}

impl DropLog {
    pub(super) fn new() -> Self {
        DropLog {
            warned: [false; DropReason::ALL.len()],
            at_last_report: DropCounters::default(),
        }
    }

    pub(super) fn note(&mut self, r: DropReason, from: Option<SocketAddr>) {
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

    pub(super) fn report(&mut self, now: &DropCounters) {
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
/// Keyed by peer id, so a reload that reorders the peers keeps it valid.
pub(super) struct SendLog {
    last_warn: Vec<(PeerId, Instant)>,
}

impl SendLog {
    pub(super) fn new() -> Self {
        SendLog {
            last_warn: Vec::new(),
        }
    }

    pub(super) fn failed(&mut self, relay: &Relay, peer: PeerId, to: SocketAddr, e: &io::Error) {
        let now = Instant::now();
        match self.last_warn.iter_mut().find(|(p, _)| *p == peer) {
            Some((_, t)) if now.duration_since(*t) < REPORT_EVERY => return,
            Some((_, t)) => *t = now,
            None => self.last_warn.push((peer, now)),
        }
        let name = relay
            .peer_name(peer)
            .map_or_else(|| peer.to_string(), str::to_string);
        tracing::warn!(peer = %name, endpoint = %to, error = %e, "cannot send to peer; other peers are unaffected");
    }
}
