//! Redundant copies: how many of each packet go to each peer
//! (`node.redundancy`) and over which paths, and the later copies held
//! back a few milliseconds (`node.redundancy_spacing`) so that one short
//! burst of loss does not take every copy.
//!
//! Every copy is sealed at once, under the same session and with
//! consecutive counters, so the receiver knows the packet from the
//! authenticated copy number alone (see [`crate::proto::wire::Prefix`]).
//! The held ones wait here, sealed, each in a buffer of its own size that
//! is allocated as the high-water mark grows and then reused; when
//! [`HELD_MAX`] are waiting a new copy goes at once rather than not at all.

use std::collections::VecDeque;
use std::net::SocketAddr;

use crate::core::batch::Datagrams;
use crate::core::paths::PathMode;
use crate::core::peers::PeerId;

/// The most copies `node.redundancy` may ask for.
pub const MAX_REDUNDANCY: u8 = 4;
/// The most copies held back at once.
pub const HELD_MAX: usize = 4096;

/// How packets are copied and spread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Redundancy {
    /// Copies of each packet per path: 1 is none.
    pub copies: u8,
    /// Between one round of copies and the next, ms.
    pub spacing_ms: u64,
    pub path_mode: PathMode,
}

impl Default for Redundancy {
    fn default() -> Self {
        Redundancy {
            copies: 1,
            spacing_ms: 0,
            path_mode: PathMode::All,
        }
    }
}

impl Redundancy {
    /// The rounds of copies, at least one and at most [`MAX_REDUNDANCY`].
    pub(super) fn rounds(&self) -> u8 {
        self.copies.clamp(1, MAX_REDUNDANCY)
    }
}

/// A copy waiting for its time.
#[derive(Clone, Copy, Debug)]
struct Held {
    due_ms: u64,
    peer: PeerId,
    to: SocketAddr,
    slot: usize,
    len: usize,
}

/// The copies held back, sealed.
#[derive(Default)]
pub(super) struct Later {
    slots: Vec<Vec<u8>>,
    free: Vec<usize>,
    /// One queue per round after the first: each holds copies due in the
    /// order they were made, so only the fronts need looking at.
    rounds: [VecDeque<Held>; MAX_REDUNDANCY as usize - 1],
}

impl Later {
    #[cfg(test)]
    fn len(&self) -> usize {
        self.rounds.iter().map(VecDeque::len).sum()
    }

    /// A slot of `len` bytes to seal a copy of round `round` (1 or more)
    /// into, or `None` when it cannot be held (the caller sends it at
    /// once).
    pub(super) fn room(&mut self, round: u8, len: usize) -> Option<(usize, &mut [u8])> {
        if round == 0 || usize::from(round) > self.rounds.len() {
            return None;
        }
        let slot = match self.free.pop() {
            Some(s) => s,
            None if self.slots.len() < HELD_MAX => {
                self.slots.push(Vec::new());
                self.slots.len() - 1
            }
            None => return None,
        };
        let buf = &mut self.slots[slot];
        // Grows only past the largest copy this slot has held.
        buf.resize(len, 0);
        Some((slot, &mut buf[..]))
    }

    /// Keeps the `len` bytes sealed into `slot` until `due_ms`.
    pub(super) fn hold(
        &mut self,
        round: u8,
        slot: usize,
        len: usize,
        due_ms: u64,
        peer: PeerId,
        to: SocketAddr,
    ) {
        let Some(q) = usize::from(round)
            .checked_sub(1)
            .and_then(|r| self.rounds.get_mut(r))
        else {
            self.free.push(slot);
            return;
        };
        q.push_back(Held {
            due_ms,
            peer,
            to,
            slot,
            len,
        });
    }

    /// Gives back a slot from [`Later::room`] that was not held.
    pub(super) fn release(&mut self, slot: usize) {
        self.free.push(slot);
    }

    /// When the next held copy is due.
    pub(super) fn next_due(&self) -> Option<u64> {
        self.rounds
            .iter()
            .filter_map(|q| q.front().map(|h| h.due_ms))
            .min()
    }

    /// Moves every copy due by `now_ms` into `out`.
    pub(super) fn take_due(&mut self, now_ms: u64, out: &mut Datagrams) {
        for q in &mut self.rounds {
            while let Some(h) = q.front().copied().filter(|h| h.due_ms <= now_ms) {
                q.pop_front();
                let held = self.slots.get(h.slot).map_or(&[][..], |b| &b[..]);
                let room = out.next_slot();
                let n = h.len.min(room.len()).min(held.len());
                room[..n].copy_from_slice(&held[..n]);
                out.commit(h.peer, h.to, n);
                self.free.push(h.slot);
            }
        }
    }

    /// Forgets the held copies of `peer` (removed, or its sessions ended).
    pub(super) fn forget(&mut self, keep: impl Fn(PeerId) -> bool) {
        for q in &mut self.rounds {
            let free = &mut self.free;
            q.retain(|h| {
                let kept = keep(h.peer);
                if !kept {
                    free.push(h.slot);
                }
                kept
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to() -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 1], 7112))
    }

    fn hold(l: &mut Later, round: u8, due: u64, byte: u8) {
        let (slot, room) = l.room(round, 1).expect("room");
        room[0] = byte;
        l.hold(round, slot, 1, due, PeerId(7), to());
    }

    fn due(l: &mut Later, now: u64) -> Vec<u8> {
        let mut out = Datagrams::new(16, 4);
        l.take_due(now, &mut out);
        out.iter().map(|(_, _, b)| b[0]).collect()
    }

    #[test]
    fn copies_leave_when_due_and_slots_are_reused() {
        let mut l = Later::default();
        hold(&mut l, 1, 105, 1);
        hold(&mut l, 2, 110, 2);
        hold(&mut l, 1, 106, 3);
        assert_eq!(l.next_due(), Some(105));
        assert_eq!(due(&mut l, 104), Vec::<u8>::new());
        assert_eq!(due(&mut l, 106), vec![1, 3]);
        assert_eq!(l.next_due(), Some(110));
        assert_eq!(due(&mut l, 200), vec![2]);
        assert_eq!(l.len(), 0);
        assert_eq!(l.next_due(), None);
        // Three slots were made; the next three reuse them.
        for b in 0..3 {
            hold(&mut l, 1, 300, b);
        }
        assert_eq!(l.slots.len(), 3);
    }

    #[test]
    fn a_full_store_declines_and_round_zero_is_never_held() {
        let mut l = Later::default();
        assert!(l.room(0, 1).is_none());
        assert!(l.room(MAX_REDUNDANCY, 1).is_none());
        for _ in 0..HELD_MAX {
            let (slot, _) = l.room(1, 1).expect("room");
            l.hold(1, slot, 1, 5, PeerId(1), to());
        }
        assert!(l.room(1, 1).is_none());
        l.forget(|p| p != PeerId(1));
        assert_eq!(l.len(), 0);
        assert!(l.room(1, 1).is_some());
    }
}

/// Redundancy through the whole core: sealed copies, held ones, and the
/// receiver's duplicate suppression.
#[cfg(test)]
mod relay_tests {
    use super::*;
    use crate::core::counters::DropReason;
    use crate::core::relay::{Inbound, Relay, Security};
    use crate::core::timers::Timer;
    use crate::testing::cluster::*;

    fn copying(r: &mut Relay, copies: u8, spacing_ms: u64) {
        r.redundancy = Redundancy {
            copies,
            spacing_ms,
            path_mode: PathMode::All,
        };
    }

    /// Every datagram of `out` meant for node `n`, in order.
    fn for_node(r: &Relay, out: &Datagrams, n: u8) -> Vec<Vec<u8>> {
        out.iter()
            .filter(|(_, to, _)| *to == endpoint(n))
            .map(|(p, _, d)| {
                assert_eq!(r.endpoint(p), Some(endpoint(n)));
                d.to_vec()
            })
            .collect()
    }

    fn deliver(r: &mut Relay, d: &[u8], from: u8, now: u64) -> Result<(), DropReason> {
        let mut buf = d.to_vec();
        let mut out = [0u8; MAX_DATAGRAM];
        match r.from_net(&mut buf, endpoint(from), now, &mut out) {
            Inbound::Inject { .. } => Ok(()),
            Inbound::Drop(d) => Err(d),
            other => panic!("data produced {other:?}"),
        }
    }

    #[test]
    fn the_first_copy_is_injected_and_the_others_are_duplicates_not_replays() {
        let (mut a, mut b, _c) = cluster3();
        copying(&mut a, 3, 0);
        let mut out = batch();
        a.from_tun(&vrrp_from(1), T0, &mut out);
        let copies = for_node(&a, &out, 2);
        assert_eq!(copies.len(), 3, "three copies to each peer");
        assert_eq!(for_node(&a, &out, 3).len(), 3);
        assert_eq!(deliver(&mut b, &copies[0], 1, T0), Ok(()));
        for c in &copies[1..] {
            assert_eq!(deliver(&mut b, c, 1, T0), Err(DropReason::Duplicate));
        }
        // A capture played again is a replay, whichever copy it was.
        for c in &copies {
            assert_eq!(deliver(&mut b, c, 1, T0), Err(DropReason::Replay));
        }
        let s = b.peer_stats(peer_index(&b, "h1")).expect("stats");
        assert_eq!(
            (s.copies_received, s.first_copies, s.saved_by_copies),
            (3, 1, 0)
        );
        assert_eq!(b.counters().drops.get(DropReason::Duplicate), 2);
        assert_eq!(b.counters().injected, 1);
    }

    #[test]
    fn a_later_copy_stands_in_for_a_lost_first_one() {
        let (mut a, mut b, _c) = cluster3();
        copying(&mut a, 2, 0);
        let mut out = batch();
        for t in [T0, T0 + 100] {
            a.from_tun(&vrrp_from(1), t, &mut out);
            let copies = for_node(&a, &out, 2);
            // Copy 0 lost on the way.
            assert_eq!(deliver(&mut b, &copies[1], 1, t), Ok(()));
        }
        let s = b.peer_stats(peer_index(&b, "h1")).expect("stats");
        assert_eq!((s.first_copies, s.saved_by_copies), (2, 2));
    }

    #[test]
    fn the_copy_number_is_authenticated() {
        let (mut a, mut b, _c) = cluster3();
        copying(&mut a, 2, 0);
        let mut out = batch();
        a.from_tun(&vrrp_from(1), T0, &mut out);
        let copies = for_node(&a, &out, 2);
        // Rewritten to claim another packet's copy: refused, and the
        // genuine copies still count as what they are.
        let mut forged = copies[1].clone();
        forged[3] = 0;
        assert_eq!(deliver(&mut b, &forged, 1, T0), Err(DropReason::BadAuth));
        assert_eq!(deliver(&mut b, &copies[1], 1, T0), Ok(()));
        assert_eq!(
            deliver(&mut b, &copies[0], 1, T0),
            Err(DropReason::Duplicate)
        );
    }

    #[test]
    fn later_rounds_wait_for_their_spacing() {
        let (mut a, mut b, _c) = cluster3();
        copying(&mut a, 3, 5);
        let mut out = batch();
        a.from_tun(&vrrp_from(1), T0, &mut out);
        let first = for_node(&a, &out, 2);
        assert_eq!(first.len(), 1, "only the first round at once");
        assert_eq!(a.deadline(Timer::Copies), Some(T0 + 5));
        assert!(!a.poll_later(T0 + 4, &mut out));
        assert!(a.poll_later(T0 + 5, &mut out));
        let second = for_node(&a, &out, 2);
        assert_eq!((second.len(), out.len()), (1, 2), "round 2, to each peer");
        assert_eq!(a.deadline(Timer::Copies), Some(T0 + 10));
        assert!(a.poll_later(T0 + 20, &mut out));
        let third = for_node(&a, &out, 2);
        assert_eq!(a.deadline(Timer::Copies), None);
        assert_eq!(deliver(&mut b, &third[0], 1, T0 + 20), Ok(()));
        assert_eq!(
            deliver(&mut b, &first[0], 1, T0 + 20),
            Err(DropReason::Duplicate)
        );
        assert_eq!(
            deliver(&mut b, &second[0], 1, T0 + 20),
            Err(DropReason::Duplicate)
        );
    }

    #[test]
    fn insecure_mode_removes_duplicates_too() {
        let mut a = node_with(1, 2, T0, Security::Insecure);
        let mut b = node_with(2, 2, T0, Security::Insecure);
        copying(&mut a, 2, 0);
        let mut out = batch();
        a.from_tun(&vrrp_from(1), T0, &mut out);
        let copies = for_node(&a, &out, 2);
        assert_eq!(copies.len(), 2);
        assert_eq!(deliver(&mut b, &copies[0], 1, T0), Ok(()));
        assert_eq!(
            deliver(&mut b, &copies[1], 1, T0),
            Err(DropReason::Duplicate)
        );
    }

    #[test]
    fn keepalives_and_handshakes_are_never_copied() {
        let mut a = node(1);
        copying(&mut a, 4, 5);
        let mut out = [0u8; MAX_DATAGRAM];
        let mut greeted = Vec::new();
        while let Some((_, p, to)) = a.poll_hello(T0, &mut out) {
            greeted.push((p, to));
        }
        assert_eq!(greeted.len(), 2, "one initiation per peer");
        let (mut a, _b, _c) = cluster3();
        copying(&mut a, 4, 5);
        let mut pings = Vec::new();
        while let Some((_, p, to)) = a.poll_hello(T0 + 1000, &mut out) {
            pings.push((p, to));
        }
        assert_eq!(pings.len(), 2, "one keepalive per peer (one path each)");
        assert_eq!(a.deadline(Timer::Copies), None, "nothing held back");
    }

    /// Copies that fall due together (a loop that woke late) take their
    /// own length in the batch, not a slot of the largest frame each.
    #[test]
    fn copies_due_together_take_their_length_in_the_batch() {
        let (mut a, _b, _c) = cluster3();
        copying(&mut a, 2, 5);
        // The event loop's batch: a slot fits the largest frame.
        let mut out = Datagrams::new(65_535 + 14 + crate::core::relay::OVERHEAD, 2);
        for _ in 0..256 {
            a.from_tun(&vrrp_from(1), T0, &mut out);
        }
        assert!(a.poll_later(T0 + 5, &mut out));
        assert_eq!(out.len(), 512);
        assert!(
            out.capacity_bytes() < 1 << 20,
            "{} bytes for 512 small copies",
            out.capacity_bytes()
        );
    }
}
