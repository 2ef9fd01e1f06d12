//! The datagrams one packet from the interface becomes: one per target
//! peer, copy and path, each sealed under that peer's own session, back to
//! back in one buffer so the I/O layer sends them all with one
//! sendmmsg(2).
//!
//! Each datagram takes its own length, not a whole slot: the room offered
//! for the next one is a slot (the largest datagram), but only what was
//! written is kept. The buffer grows to the largest batch seen plus one
//! slot and is reused: after the first packets, sealing allocates nothing.

use std::net::SocketAddr;

use crate::core::peers::PeerId;

/// The datagram size a new batch has room for, per peer, before it grows.
pub const RESERVED_LEN: usize = 2048;

/// A batch of sealed datagrams, each for one peer at its endpoint.
pub struct Datagrams {
    buf: Vec<u8>,
    slot: usize,
    /// Bytes of `buf` the datagrams so far take.
    used: usize,
    /// Peer, address, offset in `buf`, length.
    items: Vec<(PeerId, SocketAddr, usize, usize)>,
}

impl Datagrams {
    /// A batch whose datagrams may each be up to `slot` bytes, with room
    /// reserved for `peers` of them of up to [`RESERVED_LEN`] bytes (any
    /// heartbeat), so that it grows only for larger or more datagrams.
    pub fn new(slot: usize, peers: usize) -> Datagrams {
        let peers = peers.max(1);
        Datagrams {
            buf: vec![0; slot + (peers - 1) * slot.min(RESERVED_LEN)],
            slot,
            used: 0,
            items: Vec::with_capacity(peers),
        }
    }

    /// The largest datagram a slot holds.
    pub fn slot_len(&self) -> usize {
        self.slot
    }

    pub fn clear(&mut self) {
        self.items.clear();
        self.used = 0;
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Datagram `k`: its peer, where it goes, and its bytes.
    pub fn get(&self, k: usize) -> Option<(PeerId, SocketAddr, &[u8])> {
        let (peer, to, at, len) = *self.items.get(k)?;
        Some((peer, to, &self.buf[at..at + len]))
    }

    pub fn iter(&self) -> impl Iterator<Item = (PeerId, SocketAddr, &[u8])> + '_ {
        (0..self.items.len()).filter_map(|k| self.get(k))
    }

    /// The room for the next datagram: one slot after the last one.
    pub(crate) fn next_slot(&mut self) -> &mut [u8] {
        let at = self.used;
        if self.buf.len() < at + self.slot {
            // Only past the largest batch so far.
            self.buf.resize(at + self.slot, 0);
        }
        &mut self.buf[at..at + self.slot]
    }

    /// Keeps the `len` bytes written into the room of
    /// [`Datagrams::next_slot`] as the datagram for `peer` at `to`.
    pub(crate) fn commit(&mut self, peer: PeerId, to: SocketAddr, len: usize) {
        let len = len.min(self.slot);
        self.items.push((peer, to, self.used, len));
        self.used += len;
    }

    /// Bytes the buffer holds (the largest batch so far plus one slot).
    #[cfg(test)]
    pub(crate) fn capacity_bytes(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_hold_their_own_bytes() {
        let to: SocketAddr = "192.0.2.1:7112".parse().expect("addr");
        let mut d = Datagrams::new(8, 1);
        d.next_slot()[..3].copy_from_slice(b"abc");
        d.commit(PeerId(1), to, 3);
        // Past the reservation: grows once.
        d.next_slot()[..2].copy_from_slice(b"xy");
        d.commit(PeerId(2), to, 2);
        let all: Vec<_> = d.iter().map(|(p, _, b)| (p, b.to_vec())).collect();
        assert_eq!(
            all,
            vec![(PeerId(1), b"abc".to_vec()), (PeerId(2), b"xy".to_vec())]
        );
        d.clear();
        assert!(d.is_empty());
        assert_eq!(d.get(0), None);
    }

    #[test]
    fn small_datagrams_take_their_length_not_a_slot() {
        let to: SocketAddr = "192.0.2.1:7112".parse().expect("addr");
        let mut d = Datagrams::new(65_536, 1);
        for k in 0..512u32 {
            let room = d.next_slot();
            room[..4].copy_from_slice(&k.to_be_bytes());
            d.commit(PeerId(k), to, 70);
        }
        // The 511 before the last, and the room the last was written in.
        assert_eq!(d.capacity_bytes(), 511 * 70 + 65_536);
        assert_eq!(
            d.get(511).map(|(p, _, b)| (p, b.len(), b[3])),
            Some((PeerId(511), 70, 255))
        );
    }
}
