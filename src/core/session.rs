//! Sessions: sealing what we send (our epoch, the counter that is the
//! nonce) and opening what a peer sends (its confirmed epoch's key and
//! replay window, and the key of an epoch not yet confirmed). The order of
//! the receive checks matters: everything that costs no crypto comes
//! first, and the window only moves after authentication.

use crate::core::counters::DropReason;
use crate::core::relay::Link;
use crate::core::replay::ReplayWindow;
use crate::core::time::Now;
use crate::proto::crypto::{KeySchedule, StreamKey};
use crate::proto::wire::{FLAG_FRAME, FLAG_PLAINTEXT, HEADER_LEN, Header, Kind, TAG_LEN};

/// Our sending side: one stream per run, numbered by `counter`.
pub(super) struct TxSession {
    /// `None` in insecure mode: plaintext.
    key: Option<StreamKey>,
    sender: u32,
    epoch: u64,
    counter: u64,
    frames: bool,
}

impl TxSession {
    pub(super) fn new(schedule: Option<&KeySchedule>, sender: u32, epoch: u64, link: Link) -> Self {
        TxSession {
            key: schedule.map(|s| s.stream_key(sender, epoch)),
            sender,
            epoch,
            counter: 0,
            frames: link == Link::Ethernet,
        }
    }

    pub(super) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The counter the next sealed datagram will carry.
    pub(super) fn next_counter(&self) -> u64 {
        self.counter
    }

    /// Whether we seal (and so run the handshake) or send plaintext.
    pub(super) fn authenticated(&self) -> bool {
        self.key.is_some()
    }

    /// Header, copy, seal in place; returns the datagram length, or `None`
    /// if `out` cannot hold it.
    pub(super) fn seal(
        &mut self,
        kind: Kind,
        payload: &[u8],
        now: Now,
        out: &mut [u8],
    ) -> Option<usize> {
        let tag_len = if self.key.is_some() { TAG_LEN } else { 0 };
        let len = HEADER_LEN + payload.len() + tag_len;
        if len > out.len() {
            return None;
        }
        let mut flags = if self.key.is_some() {
            0
        } else {
            FLAG_PLAINTEXT
        };
        if self.frames {
            flags |= FLAG_FRAME;
        }
        let header = Header {
            kind,
            flags,
            sender: self.sender,
            epoch: self.epoch,
            counter: self.counter,
            timestamp_ms: now.wall_ms,
        };
        // The counter is the nonce: advance it before anything can fail
        // after use, so it is never used twice.
        self.counter += 1;
        let (head, body) = out.split_at_mut(HEADER_LEN);
        header.encode(head);
        body[..payload.len()].copy_from_slice(payload);
        if let Some(key) = &self.key {
            let tag = key.seal(header.counter, head, &mut body[..payload.len()]);
            body[payload.len()..payload.len() + TAG_LEN].copy_from_slice(&tag);
        }
        Some(len)
    }
}

/// A peer's confirmed run: its key and replay window.
struct RxStream {
    epoch: u64,
    key: Option<StreamKey>,
    window: ReplayWindow,
}

/// A peer's receiving side.
#[derive(Default)]
pub(super) struct RxState {
    stream: Option<RxStream>,
    /// Key for the last unverified new epoch seen, so a stream of
    /// datagrams claiming one new epoch derives its key once.
    candidate: Option<(u64, StreamKey)>,
}

impl RxState {
    pub(super) fn confirmed_epoch(&self) -> Option<u64> {
        self.stream.as_ref().map(|rx| rx.epoch)
    }

    /// The checks before authentication: a replay in the confirmed run, or
    /// an epoch that cannot be a live run. Returns whether the datagram
    /// belongs to the confirmed run.
    pub(super) fn screen(
        &self,
        h: &Header,
        wall_ms: u64,
        max_skew_ms: u64,
    ) -> Result<bool, DropReason> {
        let current = self.confirmed_epoch() == Some(h.epoch);
        if current {
            if let Some(rx) = &self.stream
                && !rx.window.check(h.counter)
            {
                return Err(DropReason::Replay);
            }
        } else {
            // Data from an older run is a replay; a hello from one may be a
            // peer whose clock stepped back, and only an answer to our own
            // question can confirm it, so hellos are let through to auth.
            if h.kind == Kind::Data && self.confirmed_epoch().is_some_and(|e| h.epoch < e) {
                return Err(DropReason::StaleEpoch);
            }
            // A run cannot have started in the future.
            if h.epoch / 1_000_000 > wall_ms.saturating_add(max_skew_ms) {
                return Err(DropReason::StaleEpoch);
            }
        }
        Ok(current)
    }

    /// Authenticates and decrypts `buf` (header, body, tag) in place with
    /// the confirmed run's key or the candidate's; returns the plaintext
    /// length. Without a schedule (insecure mode) the body is the plaintext.
    pub(super) fn open(
        &mut self,
        schedule: Option<&KeySchedule>,
        h: &Header,
        current: bool,
        buf: &mut [u8],
    ) -> Result<usize, DropReason> {
        let (aad, body) = buf.split_at_mut(HEADER_LEN);
        let Some(schedule) = schedule else {
            return Ok(body.len());
        };
        let key = if current {
            self.stream.as_ref().and_then(|rx| rx.key.as_ref())
        } else {
            if self.candidate.as_ref().map(|(e, _)| *e) != Some(h.epoch) {
                self.candidate = Some((h.epoch, schedule.stream_key(h.sender, h.epoch)));
            }
            self.candidate.as_ref().map(|(_, k)| k)
        };
        let key = key.ok_or(DropReason::BadAuth)?;
        key.open(h.counter, aad, body)
            .map_err(|_| DropReason::BadAuth)
    }

    /// Moves the confirmed run's window past an authenticated `counter`.
    pub(super) fn commit(&mut self, counter: u64) {
        if let Some(rx) = &mut self.stream {
            rx.window.commit(counter);
        }
    }

    /// The handshake confirmed run `epoch` with an answer sealed at
    /// `counter`: everything the peer sealed before that answer may
    /// predate our start, so only what follows it is accepted.
    pub(super) fn confirm(&mut self, epoch: u64, counter: u64) {
        let key = match self.candidate.take() {
            Some((e, k)) if e == epoch => Some(k),
            _ => None,
        };
        self.stream = Some(RxStream {
            epoch,
            key,
            window: ReplayWindow::after(counter),
        });
    }

    /// Insecure mode has no handshake: follow the newest epoch.
    pub(super) fn follow(&mut self, epoch: u64, counter: u64) -> Result<(), DropReason> {
        if self.confirmed_epoch().is_some_and(|e| epoch < e) {
            return Err(DropReason::StaleEpoch);
        }
        let mut window = ReplayWindow::new();
        window.commit(counter);
        self.stream = Some(RxStream {
            epoch,
            key: None,
            window,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {

    use crate::core::counters::DropReason;
    use crate::core::relay::*;
    use crate::proto::crypto::ClusterKey;
    use crate::testing::cluster::*;

    use crate::proto::wire::HEADER_LEN;

    #[test]
    fn replay_and_tampering_are_dropped() {
        let (mut a, mut b, _) = cluster3();
        let (d, _) = send(&mut a, &vrrp_from(1), T0);
        assert!(recv(&mut b, &d, 1, T0).is_ok());
        assert_eq!(recv(&mut b, &d, 1, T0), Err(DropReason::Replay));
        let (d2, _) = send(&mut a, &vrrp_from(1), T0);
        for i in 0..d2.len() {
            let mut bad = d2.clone();
            bad[i] ^= 0x04;
            let got = recv(&mut b, &bad, 1, T0);
            assert!(got.is_err(), "bit flip at {i} was injected");
        }
        // The untouched datagram still goes through: forgeries moved nothing.
        assert!(recv(&mut b, &d2, 1, T0).is_ok());
        let (d3, _) = send(&mut a, &vrrp_from(1), T0);
        assert_eq!(
            recv(&mut b, &d3[..HEADER_LEN + 3], 1, T0),
            Err(DropReason::BadAuth)
        );
        assert_eq!(
            recv(&mut b, &d3[..d3.len() - 1], 1, T0),
            Err(DropReason::BadAuth)
        );
        assert_eq!(recv(&mut b, &d3[..10], 1, T0), Err(DropReason::Malformed));
        assert!(
            recv(&mut b, &d3, 1, T0).is_ok(),
            "truncated copies moved the window"
        );
    }

    #[test]
    fn sender_restart_new_epoch_old_datagrams_stay_out() {
        let (mut a, mut b, _) = cluster3();
        let (old, _) = send(&mut a, &vrrp_from(1), T0);
        let (old2, _) = send(&mut a, &vrrp_from(1), T0);
        assert!(recv(&mut b, &old, 1, T0).is_ok());
        // Node 1 restarts one second later: new epoch, counter from zero.
        let t1 = T0 + 1000;
        let key = Security::Authenticated(ClusterKey::from_bytes(KEY));
        let mut a2 = node_with(1, 3, t1, key);
        let (early, _) = send(&mut a2, &vrrp_from(1), t1);
        // Unconfirmed until a handshake, which b now asks for.
        assert_eq!(
            recv(&mut b, &early, 1, t1),
            Err(DropReason::UnconfirmedEpoch)
        );
        let mut out = [0u8; 256];
        assert!(
            b.poll_hello(t1, &mut out).is_some(),
            "b must greet the restarted a"
        );
        meet(&mut [(1, &mut a2), (2, &mut b)], t1);
        let (new, _) = send(&mut a2, &vrrp_from(1), t1);
        assert!(recv(&mut b, &new, 1, t1).is_ok());
        assert_eq!(recv(&mut b, &old2, 1, t1), Err(DropReason::StaleEpoch));
        assert_eq!(recv(&mut b, &old, 1, t1), Err(DropReason::StaleEpoch));
        assert_eq!(recv(&mut b, &new, 1, t1), Err(DropReason::Replay));
        // Sealed before the handshake answered: may predate it, refused.
        assert_eq!(recv(&mut b, &early, 1, t1), Err(DropReason::Replay));
    }

    #[test]
    fn receiver_restart_never_accepts_earlier_captures() {
        let (mut a, mut b, _) = cluster3();
        let (seen, _) = send(&mut a, &vrrp_from(1), T0);
        assert!(recv(&mut b, &seen, 1, T0).is_ok());
        let (unseen, _) = send(&mut a, &vrrp_from(1), T0);
        // b restarts a millisecond later, well within any clock skew.
        let t1 = T0 + 1;
        let key = Security::Authenticated(ClusterKey::from_bytes(KEY));
        let mut b2 = node_with(2, 3, t1, key);
        assert_eq!(
            recv(&mut b2, &seen, 1, t1),
            Err(DropReason::UnconfirmedEpoch)
        );
        meet(&mut [(1, &mut a), (2, &mut b2)], t1);
        // Both captures predate b2's question: refused, whatever the clocks.
        assert_eq!(recv(&mut b2, &seen, 1, t1), Err(DropReason::Replay));
        assert_eq!(recv(&mut b2, &unseen, 1, t1), Err(DropReason::Replay));
        let (fresh, _) = send(&mut a, &vrrp_from(1), t1);
        assert!(recv(&mut b2, &fresh, 1, t1).is_ok());
    }

    #[test]
    fn future_epoch_and_future_timestamp_are_refused() {
        let key = || Security::Authenticated(ClusterKey::from_bytes(KEY));
        let mut b = node(2);
        let mut from_future = node_with(1, 3, T0 + 3_600_000, key());
        let (d, _) = send(&mut from_future, &vrrp_from(1), T0);
        // Its timestamp is fine (passed as T0) but its epoch is an hour ahead.
        assert_eq!(recv(&mut b, &d, 1, T0), Err(DropReason::StaleEpoch));
        let mut a = node(1);
        let (d, _) = send(&mut a, &vrrp_from(1), T0 + SKEW + 1);
        assert_eq!(recv(&mut b, &d, 1, T0), Err(DropReason::ClockSkew));
        // A refused epoch did not lock out the real one.
        meet(&mut [(1, &mut a), (2, &mut b)], T0);
        let (d, _) = send(&mut a, &vrrp_from(1), T0);
        assert!(recv(&mut b, &d, 1, T0).is_ok());
    }
}
