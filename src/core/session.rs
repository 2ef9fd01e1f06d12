//! Sessions: the transport state of one pair of relays, per peer. A
//! handshake makes a session (two keys, our send counter, a replay window
//! for the peer's counter); a peer holds up to three:
//!
//! * `current`: what we seal with and open;
//! * `next`: made by a handshake the peer started, opened but not sealed
//!   with until the peer's first datagram under it proves the peer holds it
//!   (a replayed initiation makes a `next` nobody can use, and the current
//!   session never notices);
//! * `previous`: the one `current` replaced, still opened for datagrams in
//!   flight, until it expires.
//!
//! Each session's window moves only after a datagram authenticated under
//! that session's key, so nothing forged or sealed under another session
//! moves it. A second window, over packet numbers (a datagram's counter
//! less its authenticated copy number), tells the first copy of a packet
//! from the later ones, so redundant copies are duplicates, not replays.
//! Insecure mode has no sessions: see [`Plain`].

use crate::core::counters::DropReason;
use crate::core::replay::ReplayWindow;
use crate::proto::crypto::StreamKey;
use crate::proto::noise::Keys;
use crate::proto::wire::{HEADER_LEN, Header, Kind, Prefix, TAG_LEN};

/// After this many datagrams a session seals no more (far below where
/// the counter, the nonce, could wrap).
pub(super) const REJECT_AFTER_MESSAGES: u64 = 1 << 60;
/// The initiator of a session starts a new handshake when it is this old.
pub(super) const REKEY_AFTER_MS: u64 = 120_000;
/// Nobody seals with or opens a session older than this.
pub(super) const REJECT_AFTER_MS: u64 = 180_000;

/// One session with one peer.
pub(super) struct Session {
    /// Our index: the peer puts it in every datagram it seals for us.
    pub(super) local: u32,
    /// The peer's index, which we put in ours.
    pub(super) remote: u32,
    send: StreamKey,
    recv: StreamKey,
    counter: u64,
    window: ReplayWindow,
    /// The packets (not datagrams) of the peer's already injected or
    /// refused: a later copy of one is a duplicate.
    packets: ReplayWindow,
    pub(super) born_ms: u64,
    /// We started the handshake that made it.
    pub(super) initiator: bool,
    /// The peer's run, as its handshake said.
    pub(super) run: u64,
    /// A datagram of the peer's authenticated under it: the peer holds it.
    /// Until then an initiator keeps showing it the session.
    confirmed: bool,
}

impl Session {
    pub(super) fn new(
        keys: Keys,
        local: u32,
        remote: u32,
        initiator: bool,
        run: u64,
        now_ms: u64,
    ) -> Session {
        Session {
            local,
            remote,
            send: keys.send,
            recv: keys.recv,
            counter: 0,
            window: ReplayWindow::new(),
            packets: ReplayWindow::new(),
            born_ms: now_ms,
            initiator,
            run,
            // The responder's proof is the datagram that promotes it.
            confirmed: !initiator,
        }
    }

    fn expired(&self, now_ms: u64) -> bool {
        now_ms.saturating_sub(self.born_ms) >= REJECT_AFTER_MS
    }
}

/// Which of a peer's sessions a datagram names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Slot {
    Current,
    Next,
    Previous,
}

/// The sessions of one peer.
#[derive(Default)]
pub(super) struct Sessions {
    pub(super) current: Option<Session>,
    pub(super) next: Option<Session>,
    pub(super) previous: Option<Session>,
}

impl Sessions {
    /// Seals `payload` as `kind` under the current session into `out`:
    /// header, ciphertext, tag. Returns the datagram's length.
    pub(super) fn seal(
        &mut self,
        prefix: Prefix,
        payload: &[u8],
        now_ms: u64,
        out: &mut [u8],
    ) -> Result<usize, DropReason> {
        let s = self
            .current
            .as_mut()
            .filter(|s| !s.expired(now_ms) && s.counter < REJECT_AFTER_MESSAGES)
            .ok_or(DropReason::NoSession)?;
        let len = HEADER_LEN + payload.len() + TAG_LEN;
        if len > out.len() {
            return Err(DropReason::TooBig);
        }
        let header = Header {
            prefix,
            receiver: s.remote,
            counter: s.counter,
        };
        // The counter is the nonce: advance it before anything can fail
        // after use, so it is never used twice.
        s.counter += 1;
        let (head, body) = out.split_at_mut(HEADER_LEN);
        header.encode(head);
        body[..payload.len()].copy_from_slice(payload);
        let tag = s
            .send
            .seal(header.counter, head, &mut body[..payload.len()]);
        body[payload.len()..payload.len() + TAG_LEN].copy_from_slice(&tag);
        Ok(len)
    }

    /// The session `h` names, and the checks that cost no crypto: an
    /// index we know, a live session, a counter its window has not seen.
    pub(super) fn screen(&self, h: &Header, now_ms: u64) -> Result<Slot, DropReason> {
        let slot = [
            (Slot::Current, &self.current),
            (Slot::Next, &self.next),
            (Slot::Previous, &self.previous),
        ]
        .into_iter()
        .find(|(_, s)| s.as_ref().is_some_and(|s| s.local == h.receiver))
        .map(|(slot, _)| slot)
        .ok_or(DropReason::NoSession)?;
        let s = self.get(slot).ok_or(DropReason::NoSession)?;
        if s.expired(now_ms) {
            return Err(DropReason::NoSession);
        }
        if !s.window.check(h.counter) {
            return Err(DropReason::Replay);
        }
        Ok(slot)
    }

    fn get(&self, slot: Slot) -> Option<&Session> {
        match slot {
            Slot::Current => self.current.as_ref(),
            Slot::Next => self.next.as_ref(),
            Slot::Previous => self.previous.as_ref(),
        }
    }

    fn get_mut(&mut self, slot: Slot) -> Option<&mut Session> {
        match slot {
            Slot::Current => self.current.as_mut(),
            Slot::Next => self.next.as_mut(),
            Slot::Previous => self.previous.as_mut(),
        }
    }

    /// Authenticates and decrypts `buf` (header, ciphertext, tag) in place
    /// under `slot`'s key, then moves that session's window. Returns the
    /// plaintext length.
    pub(super) fn open(
        &mut self,
        slot: Slot,
        h: &Header,
        buf: &mut [u8],
    ) -> Result<usize, DropReason> {
        let s = self.get_mut(slot).ok_or(DropReason::NoSession)?;
        let (aad, body) = buf.split_at_mut(HEADER_LEN);
        let len = s
            .recv
            .open(h.counter, aad, body)
            .map_err(|_| DropReason::BadAuth)?;
        s.window.commit(h.counter);
        s.confirmed = true;
        Ok(len)
    }

    /// Whether the datagram `h`, which authenticated under `slot`, is the
    /// first copy of its packet to do so; records the packet either way.
    /// A copy number the counter cannot hold is no copy of anything.
    pub(super) fn first_copy(&mut self, slot: Slot, h: &Header) -> Result<bool, DropReason> {
        let s = self.get_mut(slot).ok_or(DropReason::NoSession)?;
        let packet = h.packet_number().ok_or(DropReason::Malformed)?;
        Ok(first(&mut s.packets, packet))
    }

    /// The peer proved it holds `next` (its first datagram under it
    /// authenticated): it becomes current. Returns the peer's run in it.
    pub(super) fn promote_next(&mut self) -> Option<u64> {
        let next = self.next.take()?;
        let run = next.run;
        self.previous = self.current.replace(next);
        self.forget_other_runs();
        Some(run)
    }

    /// A handshake we started completed: its session is current at once
    /// (the peer made it `next` on its side).
    pub(super) fn install_initiated(&mut self, s: Session) {
        self.previous = self.current.replace(s);
        self.forget_other_runs();
    }

    /// A session of a new run of the peer is current: the peer restarted,
    /// and its previous run's session must not open a datagram held back
    /// from before the restart.
    fn forget_other_runs(&mut self) {
        let run = self.current.as_ref().map(|s| s.run);
        if self.previous.as_ref().map(|s| s.run) != run {
            self.previous = None;
        }
    }

    /// Whether the current session is ours and the peer has not shown yet
    /// that it holds it.
    pub(super) fn unconfirmed(&self) -> bool {
        self.current
            .as_ref()
            .is_some_and(|s| s.initiator && !s.confirmed)
    }

    /// A handshake the peer started: the session waits as `next`.
    pub(super) fn install_responded(&mut self, s: Session) {
        self.next = Some(s);
    }

    /// Drops the sessions too old to use.
    pub(super) fn expire(&mut self, now_ms: u64) {
        for s in [&mut self.current, &mut self.next, &mut self.previous] {
            if s.as_ref().is_some_and(|x| x.expired(now_ms)) {
                *s = None;
            }
        }
    }

    /// When the oldest session expires (monotonic ms).
    pub(super) fn next_expiry(&self) -> Option<u64> {
        [&self.current, &self.next, &self.previous]
            .into_iter()
            .flatten()
            .map(|s| s.born_ms + REJECT_AFTER_MS)
            .min()
    }

    /// Stops sealing with every session (the clock jumped: maybe a restored
    /// snapshot about to repeat counters); what is in flight still opens.
    pub(super) fn retire(&mut self) {
        if let Some(c) = self.current.take() {
            self.previous = Some(c);
        }
        self.next = None;
    }

    /// Whether the current session is ours to renew now.
    pub(super) fn needs_rekey(&self, now_ms: u64) -> bool {
        match &self.current {
            None => true,
            Some(s) => {
                let age = now_ms.saturating_sub(s.born_ms);
                // The initiator renews first; the responder only if the
                // initiator did not, so they rarely cross.
                let due = if s.initiator {
                    REKEY_AFTER_MS
                } else {
                    REKEY_AFTER_MS + 10_000
                };
                age >= due || s.counter >= REJECT_AFTER_MESSAGES / 2
            }
        }
    }

    /// When [`Sessions::needs_rekey`] becomes true; `None` if it is now.
    pub(super) fn rekey_at(&self) -> Option<u64> {
        self.current.as_ref().map(|s| {
            s.born_ms
                + if s.initiator {
                    REKEY_AFTER_MS
                } else {
                    REKEY_AFTER_MS + 10_000
                }
        })
    }

    pub(super) fn has_current(&self) -> bool {
        self.current.is_some()
    }
}

/// Insecure mode: plaintext, no handshake. The sender's run travels where
/// the receiver index would be and a new run resets the window, so
/// duplicates are still recognised; nothing here is proof of anything.
#[derive(Default)]
pub(super) struct Plain {
    run: Option<u32>,
    window: ReplayWindow,
    packets: ReplayWindow,
}

impl Plain {
    pub(super) fn seal(
        prefix: Prefix,
        run: u32,
        counter: u64,
        payload: &[u8],
        out: &mut [u8],
    ) -> Result<usize, DropReason> {
        let len = HEADER_LEN + payload.len();
        if len > out.len() {
            return Err(DropReason::TooBig);
        }
        Header {
            prefix,
            receiver: run,
            counter,
        }
        .encode(out);
        out[HEADER_LEN..len].copy_from_slice(payload);
        Ok(len)
    }

    /// Accepts `h` unless it repeats a counter of the run it follows.
    pub(super) fn accept(&mut self, h: &Header) -> Result<(), DropReason> {
        if self.run != Some(h.receiver) {
            self.run = Some(h.receiver);
            self.window = ReplayWindow::new();
            self.packets = ReplayWindow::new();
        }
        if !self.window.check(h.counter) {
            return Err(DropReason::Replay);
        }
        self.window.commit(h.counter);
        Ok(())
    }

    /// As [`Sessions::first_copy`], for the run `h` (accepted) follows.
    pub(super) fn first_copy(&mut self, h: &Header) -> Result<bool, DropReason> {
        let packet = h.packet_number().ok_or(DropReason::Malformed)?;
        Ok(first(&mut self.packets, packet))
    }
}

/// Records `packet` in `seen`; true if it was not there.
fn first(seen: &mut ReplayWindow, packet: u64) -> bool {
    if !seen.check(packet) {
        return false;
    }
    seen.commit(packet);
    true
}

/// The prefix of a datagram of `kind` from `sender`.
pub(super) fn prefix(kind: Kind, flags: u8, sender: u32) -> Prefix {
    Prefix {
        kind,
        flags,
        copy: 0,
        sender,
    }
}
