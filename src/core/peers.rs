//! The peer table: who the configured peers are, what the core keeps per
//! peer, and how a datagram's wire sender id or a packet's destination
//! address finds its peer. Each concern's per-peer state lives in its own
//! module (session, handshake, rate, tap); this one only holds them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::core::handshake::PeerHandshake;
use crate::core::keepalive::Keepalive;
use crate::core::paths::Paths;
use crate::core::rate::Bucket;
use crate::core::session::{Plain, Sessions};
use crate::core::tap::Learned;
use crate::proto::frame::{self, Mac};
use crate::proto::keys::PublicKey;
use crate::proto::overlay::link_local;

/// A node's overlay addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeAddrs {
    pub v4: Ipv4Addr,
    pub v6: Option<Ipv6Addr>,
}

impl NodeAddrs {
    pub(crate) fn link_local(&self) -> Ipv6Addr {
        link_local(self.v4)
    }

    /// The node's MAC address in tap mode.
    pub(crate) fn mac(&self) -> Mac {
        frame::node_mac(self.v4)
    }

    /// Is `ip` one of this node's overlay addresses (IPv4, IPv6 or the
    /// derived link-local)?
    pub fn owns(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => a == self.v4,
            IpAddr::V6(a) => Some(a) == self.v6 || a == self.link_local(),
        }
    }

    /// The sender id on the wire: the overlay IPv4 address.
    pub fn id(&self) -> u32 {
        u32::from(self.v4)
    }

    /// The node as a peer of another.
    pub fn peer_id(&self) -> PeerId {
        PeerId(self.id())
    }
}

/// A peer, by the sender id it puts on the wire: its overlay IPv4
/// address. Unique in a cluster and the same across reloads and
/// restarts, unlike a position in the configuration's peer list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerId(pub u32);

impl PeerId {
    /// The overlay IPv4 address the id stands for.
    pub fn v4(self) -> Ipv4Addr {
        Ipv4Addr::from(self.0)
    }
}

impl From<Ipv4Addr> for PeerId {
    fn from(v4: Ipv4Addr) -> Self {
        PeerId(u32::from(v4))
    }
}

impl std::fmt::Display for PeerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.v4().fmt(f)
    }
}

/// A node of the cluster: this one or a peer. Names the senders of the
/// adverts the watch sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Node {
    Me,
    Peer(PeerId),
}

/// A configured peer as the core sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerSpec {
    pub name: String,
    pub addrs: NodeAddrs,
    /// Its static key from the cluster file; `None` only in insecure mode.
    pub public_key: Option<PublicKey>,
}

/// What a peer sent us most recently, per peer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerStats {
    pub injected: u64,
    pub injected_bytes: u64,
    /// Datagrams (and their bytes) handed to the kernel for this peer.
    pub sent: u64,
    pub sent_bytes: u64,
    /// Keepalives sent, and those echoed.
    pub pings_sent: u64,
    pub pings_answered: u64,
    /// The last 16 pings, newest in bit 0: 1 = answered.
    pub recent_answered: u16,
    /// How many of those 16 bits are real pings.
    pub recent_count: u8,
    /// Round trip of the last answered ping, ms.
    pub rtt_ms: Option<u64>,
    /// Our clock (ms) when the last answer arrived.
    pub last_answer_ms: Option<u64>,
    /// Our clock (ms) when its last authenticated datagram arrived.
    pub last_heard_ms: Option<u64>,
    /// Its current run (random per start, told in its handshakes), once a
    /// session with it is in use.
    pub epoch: Option<u64>,
    /// Sessions with it put in use so far (first, renewals, restarts).
    pub sessions: u64,
    pub rate_limited: u64,
    /// Data datagrams that authenticated, every copy counted.
    pub copies_received: u64,
    /// Packets whose first copy authenticated (the rest of
    /// `copies_received` were duplicates).
    pub first_copies: u64,
    /// Of those, the ones whose first copy to arrive was not copy 0: the
    /// packets a copy brought when the first was lost, or overtaken on
    /// another path (so at most what the redundancy saved).
    pub saved_by_copies: u64,
}

/// Everything the core keeps about one peer.
pub(super) struct Peer {
    pub(super) spec: PeerSpec,
    /// Where it is reachable: one path per endpoint.
    pub(super) paths: Paths,
    /// Our sessions with it: keys, counters, replay windows.
    pub(super) sessions: Sessions,
    /// Insecure mode: the run and counters it sends plaintext with.
    pub(super) plain: Plain,
    /// Our handshakes with it and what we accepted of its own.
    pub(super) hs: PeerHandshake,
    /// Our pings to it and its echoes.
    pub(super) ka: Keepalive,
    pub(super) bucket: Bucket,
    pub(super) stats: PeerStats,
    /// Tap mode: MACs it sent from other than its own.
    pub(super) learned: Learned,
    /// The last view of our alarms it was sent: the alarm epoch, when.
    pub(super) view_sent: Option<(u64, u64)>,
}

impl Peer {
    fn new(spec: PeerSpec, inject_rate_limit: u32) -> Peer {
        Peer {
            paths: Paths::default(),
            sessions: Sessions::default(),
            plain: Plain::default(),
            hs: PeerHandshake::new(spec.public_key.as_ref()),
            ka: Keepalive::new(),
            bucket: Bucket::full(inject_rate_limit),
            stats: PeerStats::default(),
            learned: Learned::default(),
            view_sent: None,
            spec,
        }
    }
}

/// The configured peers in configuration order, with an index by wire
/// sender id so that a datagram finds its peer by binary search.
pub(super) struct Peers {
    list: Vec<Peer>,
    /// (sender id, peer index), sorted by id.
    by_id: Vec<(u32, usize)>,
}

impl Peers {
    pub(super) fn new(specs: Vec<PeerSpec>, inject_rate_limit: u32) -> Peers {
        let list = specs
            .into_iter()
            .map(|spec| Peer::new(spec, inject_rate_limit))
            .collect();
        Peers::indexed(list)
    }

    fn indexed(list: Vec<Peer>) -> Peers {
        let mut by_id: Vec<(u32, usize)> = list
            .iter()
            .enumerate()
            .map(|(i, p)| (p.spec.addrs.id(), i))
            .collect();
        by_id.sort_unstable();
        Peers { list, by_id }
    }

    /// The table for a reloaded peer list. A peer whose name and overlay
    /// addresses are unchanged keeps everything: its endpoint, sessions,
    /// replay windows and rate-limit bucket, so not one of its packets is
    /// lost. Other peers start afresh. Its paths stay as they were: the
    /// caller sets them again for the new endpoints.
    ///
    /// A peer whose public key changed keeps its sessions too: they were
    /// made with the old key, and the new one is required from
    /// its next handshake on (a key rotation without a gap).
    pub(super) fn reconfigured(self, specs: Vec<PeerSpec>, inject_rate_limit: u32) -> Peers {
        let mut old: Vec<Option<Peer>> = self.list.into_iter().map(Some).collect();
        let list = specs
            .into_iter()
            .map(|spec| {
                let kept = old
                    .iter_mut()
                    .find(|p| {
                        p.as_ref()
                            .is_some_and(|p| p.spec.name == spec.name && p.spec.addrs == spec.addrs)
                    })
                    .and_then(Option::take);
                match kept {
                    Some(mut p) => {
                        if p.spec.public_key != spec.public_key {
                            p.hs.rekeyed(spec.public_key.as_ref());
                        }
                        p.spec = spec;
                        p
                    }
                    None => Peer::new(spec, inject_rate_limit),
                }
            })
            .collect();
        Peers::indexed(list)
    }

    pub(super) fn len(&self) -> usize {
        self.list.len()
    }

    pub(super) fn iter(&self) -> std::slice::Iter<'_, Peer> {
        self.list.iter()
    }

    pub(super) fn iter_mut(&mut self) -> std::slice::IterMut<'_, Peer> {
        self.list.iter_mut()
    }

    /// The peer whose wire sender id is `sender`.
    pub(super) fn by_sender(&self, sender: u32) -> Option<usize> {
        self.by_id
            .binary_search_by_key(&sender, |(id, _)| *id)
            .ok()
            .map(|pos| self.by_id[pos].1)
    }

    /// Position `i`'s id.
    pub(super) fn id_at(&self, i: usize) -> PeerId {
        self.list[i].spec.addrs.peer_id()
    }

    /// The position of peer `id` in the table, if it is configured.
    pub(super) fn index_of(&self, id: PeerId) -> Option<usize> {
        self.by_sender(id.0)
    }

    /// Peer `id`, if it is configured.
    pub(super) fn get(&self, id: PeerId) -> Option<&Peer> {
        self.index_of(id).map(|i| &self.list[i])
    }

    pub(super) fn get_mut(&mut self, id: PeerId) -> Option<&mut Peer> {
        self.index_of(id).map(|i| &mut self.list[i])
    }

    /// The ids in configuration order.
    pub(super) fn ids(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.list.iter().map(|p| p.spec.addrs.peer_id())
    }

    /// The peer that owns overlay address `ip`.
    pub(super) fn owner_of(&self, ip: IpAddr) -> Option<usize> {
        self.list.iter().position(|p| p.spec.addrs.owns(ip))
    }

    pub(super) fn by_name(&self, name: &str) -> Option<PeerId> {
        self.list
            .iter()
            .find(|p| p.spec.name == name)
            .map(|p| p.spec.addrs.peer_id())
    }
}

impl std::ops::Index<usize> for Peers {
    type Output = Peer;

    fn index(&self, i: usize) -> &Peer {
        &self.list[i]
    }
}

impl std::ops::IndexMut<usize> for Peers {
    fn index_mut(&mut self, i: usize) -> &mut Peer {
        &mut self.list[i]
    }
}
