//! The datagrams one packet from the interface becomes: one per target
//! peer, each sealed under that peer's own session, side by side in one
//! buffer so the I/O layer sends them all with one sendmmsg(2).
//!
//! The buffer grows to (peers × slot) once and is reused: after the first
//! packets, sealing allocates nothing.

use std::net::SocketAddr;

use crate::core::peers::PeerId;

/// A batch of sealed datagrams, each for one peer at its endpoint.
pub struct Datagrams {
    buf: Vec<u8>,
    slot: usize,
    items: Vec<(PeerId, SocketAddr, usize)>,
}

impl Datagrams {
    /// A batch whose datagrams may each be up to `slot` bytes, with room
    /// reserved for `peers` of them.
    pub fn new(slot: usize, peers: usize) -> Datagrams {
        Datagrams {
            buf: vec![0; slot * peers.max(1)],
            slot,
            items: Vec::with_capacity(peers.max(1)),
        }
    }

    /// The largest datagram a slot holds.
    pub fn slot_len(&self) -> usize {
        self.slot
    }

    pub fn clear(&mut self) {
        self.items.clear();
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Datagram `k`: its peer, where it goes, and its bytes.
    pub fn get(&self, k: usize) -> Option<(PeerId, SocketAddr, &[u8])> {
        let (peer, to, len) = *self.items.get(k)?;
        let at = k * self.slot;
        Some((peer, to, &self.buf[at..at + len]))
    }

    pub fn iter(&self) -> impl Iterator<Item = (PeerId, SocketAddr, &[u8])> + '_ {
        (0..self.items.len()).filter_map(|k| self.get(k))
    }

    /// The room for the next datagram.
    pub(crate) fn next_slot(&mut self) -> &mut [u8] {
        let at = self.items.len() * self.slot;
        if self.buf.len() < at + self.slot {
            // Only when the peer list grew past what was reserved.
            self.buf.resize(at + self.slot, 0);
        }
        &mut self.buf[at..at + self.slot]
    }

    /// Keeps the `len` bytes written into the room of
    /// [`Datagrams::next_slot`] as the datagram for `peer` at `to`.
    pub(crate) fn commit(&mut self, peer: PeerId, to: SocketAddr, len: usize) {
        self.items.push((peer, to, len.min(self.slot)));
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
}
