//! Rate-limited reporting of what the packet path drops or fails to send:
//! the first of each kind is logged with what it means, the rest summed up
//! once a window, so a flood of bad datagrams cannot flood the log.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::core::counters::{DropCounters, DropReason};
use crate::core::relay::Relay;

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
pub(super) struct SendLog {
    last_warn: Vec<Option<Instant>>,
}

impl SendLog {
    /// No warning yet for any of `peers` peers; also after a reload, as
    /// the peers' positions may have changed.
    pub(super) fn new(peers: usize) -> Self {
        SendLog {
            last_warn: vec![None; peers],
        }
    }

    pub(super) fn failed(&mut self, relay: &Relay, peer: usize, to: SocketAddr, e: &io::Error) {
        let now = Instant::now();
        let slot = &mut self.last_warn[peer];
        if slot.is_some_and(|t| now.duration_since(t) < REPORT_EVERY) {
            return;
        }
        *slot = Some(now);
        tracing::warn!(peer = %relay.peer_name(peer), endpoint = %to, error = %e, "cannot send to peer; other peers are unaffected");
    }
}
