//! Tap mode: the rules for the Ethernet frame around the IP packet (each
//! send-side rule beside its receive-side twin, as in
//! [`crate::core::policy`]), and the MAC addresses learned from peers'
//! authenticated frames, so unicast to a virtual-router MAC goes to the
//! peer that is master rather than to everyone.

use std::net::Ipv4Addr;
use std::ops::Range;

use crate::core::counters::DropReason;
use crate::core::peers::{NodeAddrs, PeerId, Peers};
use crate::core::policy::Policy;
use crate::core::relay::{Relay, Target};
use crate::core::time::Now;
use crate::proto::frame::{self, Body, FrameError, Mac};
use crate::proto::packet::{self, Inner};

/// MAC addresses other than its own a peer may be learned to send from
/// (virtual-router MACs: one per VRID/VHID it is master of).
pub(super) const LEARNED_PER_PEER: usize = 4;
/// A learned MAC not heard from for this long is forgotten, and unicast
/// to it goes to every peer again.
pub(super) const LEARNED_TTL_MS: u64 = 300_000;

/// The IP packet of an accepted frame, parsed: where it lies in the
/// frame (padding excluded), and its fields. `None` for ARP.
pub(super) type FrameIp = Option<(Range<usize>, Inner)>;

/// A peer's learned MACs and when each was last heard (our clock, ms).
#[derive(Default)]
pub(super) struct Learned([Option<(Mac, u64)>; LEARNED_PER_PEER]);

impl Policy {
    /// Send side: the IP rules for the packet inside, then the frame's own:
    /// sent from this node's MAC (or a virtual-router MAC, as ucarp does),
    /// to a group MAC for a group destination, and to the MAC's owner for
    /// unicast. ARP speaks for this node's overlay address only.
    pub(super) fn route_local_frame(
        &self,
        peers: &Peers,
        packet: &[u8],
        now_ms: u64,
    ) -> Result<(Target, FrameIp), DropReason> {
        let f = frame::parse(packet).map_err(|e| match e {
            FrameError::Malformed => DropReason::LocalMalformed,
            FrameError::EtherType => DropReason::LocalDisallowed,
        })?;
        let own_mac = f.src == self.local.mac();
        match f.body {
            Body::Ip { start, len } => {
                if !own_mac && !frame::is_virtual_router(f.src) {
                    return Err(DropReason::LocalForeignSource);
                }
                let ip = &packet[start..start + len];
                let inner = packet::parse(ip).map_err(|_| DropReason::LocalMalformed)?;
                let by_ip = if frame::is_neighbour_discovery(ip, &inner) {
                    self.route_local_nd(peers, &inner)?
                } else {
                    self.route_local_inner(peers, &inner)?
                };
                let target = match by_ip {
                    Target::All if frame::is_group(f.dst) => Target::All,
                    Target::Peer(_) if !frame::is_group(f.dst) => peers.mac_target(f.dst, now_ms),
                    _ => return Err(DropReason::LocalMalformed),
                };
                Ok((target, Some((start..start + len, inner))))
            }
            Body::Arp(a) => {
                // ucarp announces its VIP on the tap too: that ARP is for
                // the real interface (its up script does it there), so it
                // stops here.
                let speaks_for_us =
                    a.sender_ip == self.local.v4 || a.sender_ip == Ipv4Addr::UNSPECIFIED;
                if !own_mac || a.sender_mac != f.src || !speaks_for_us {
                    return Err(DropReason::LocalForeignSource);
                }
                if frame::is_group(f.dst) {
                    Ok((Target::All, None))
                } else {
                    Ok((peers.mac_target(f.dst, now_ms), None))
                }
            }
        }
    }

    /// Receive side: the IP rules for the packet inside, and a frame that
    /// is the peer's own (its MAC, or a virtual-router MAC for IP)
    /// addressed to this node's MAC, a virtual-router MAC or a group; a
    /// group MAC exactly when the IP destination is a group. ARP must speak
    /// for the peer's overlay address with the peer's MAC. Returns the
    /// frame's source MAC, for learning, and the IP packet parsed.
    pub(super) fn check_frame(
        &self,
        from: &NodeAddrs,
        packet: &[u8],
    ) -> Result<(Mac, FrameIp), DropReason> {
        let f = frame::parse(packet).map_err(|e| match e {
            FrameError::Malformed => DropReason::BadInner,
            FrameError::EtherType => DropReason::Disallowed,
        })?;
        let peer_mac = f.src == from.mac();
        let to_us = f.dst == self.local.mac() || frame::is_virtual_router(f.dst);
        if !frame::is_group(f.dst) && !to_us {
            return Err(DropReason::Disallowed);
        }
        match f.body {
            Body::Ip { start, len } => {
                if !peer_mac && !frame::is_virtual_router(f.src) {
                    return Err(DropReason::WrongSource);
                }
                let ip = &packet[start..start + len];
                let inner = packet::parse(ip).map_err(|_| DropReason::BadInner)?;
                if frame::is_neighbour_discovery(ip, &inner) {
                    self.check_nd(from, &inner)?;
                } else {
                    self.check_inner(from, &inner)?;
                }
                if frame::is_group(f.dst) != self.is_group(inner.dst) {
                    return Err(DropReason::Disallowed);
                }
                Ok((f.src, Some((start..start + len, inner))))
            }
            Body::Arp(a) => {
                let claim_ok =
                    a.sender_ip == from.v4 || (a.sender_ip == Ipv4Addr::UNSPECIFIED && a.op == 1);
                if !peer_mac || a.sender_mac != f.src || !claim_ok {
                    return Err(DropReason::WrongSource);
                }
                Ok((f.src, None))
            }
        }
    }
}

impl Peers {
    /// The peer a unicast MAC belongs to: a node MAC names its node; other
    /// MACs are looked up among those learned from authenticated frames;
    /// an unknown one goes to every peer, as a switch floods.
    pub(super) fn mac_target(&self, mac: Mac, now_ms: u64) -> Target {
        if let Some(v4) = frame::node_of_mac(mac) {
            if let Some(i) = self.by_sender(u32::from(v4)) {
                return Target::Peer(self.id_at(i));
            }
        }
        for p in self.iter() {
            let fresh = |(m, at): &(Mac, u64)| *m == mac && now_ms < at + LEARNED_TTL_MS;
            if p.learned.0.iter().flatten().any(fresh) {
                return Target::Peer(p.spec.addrs.peer_id());
            }
        }
        Target::All
    }

    /// Records that peer `i` sent an authenticated, accepted frame from
    /// `mac`. A MAC belongs to one peer at a time (a virtual-router MAC
    /// moves with mastership); each peer keeps its most recent few.
    pub(super) fn learn(&mut self, i: usize, mac: Mac, now_ms: u64) {
        if frame::node_of_mac(mac).is_some() {
            return; // known from the configuration
        }
        let slots = &mut self[i].learned.0;
        if let Some(slot) = slots.iter_mut().flatten().find(|(m, _)| *m == mac) {
            slot.1 = now_ms;
            return;
        }
        let oldest = slots
            .iter()
            .enumerate()
            .min_by_key(|(_, s)| s.map_or(0, |(_, at)| at.saturating_add(1)))
            .map_or(0, |(k, _)| k);
        slots[oldest] = Some((mac, now_ms));
        for (j, p) in self.iter_mut().enumerate() {
            if j != i {
                for s in p.learned.0.iter_mut() {
                    if s.is_some_and(|(m, _)| m == mac) {
                        *s = None;
                    }
                }
            }
        }
    }
}

impl Relay {
    /// Which peer a MAC was learned from, for status and tests.
    pub fn learned_owner(&self, mac: Mac, now: impl Into<Now>) -> Option<PeerId> {
        match self.peers.mac_target(mac, now.into().mono_ms) {
            Target::Peer(i) if frame::node_of_mac(mac).is_none() => Some(i),
            _ => None,
        }
    }

    /// The IP packet in what the interface carries: the packet itself in
    /// tun mode, the one inside the frame in tap mode (empty for ARP). Only
    /// the tests ask; the paths find it while classifying.
    #[cfg(test)]
    pub(crate) fn ip_packet<'a>(&self, packet: &'a [u8]) -> &'a [u8] {
        use crate::core::relay::Link;
        match self.link {
            Link::Ip => packet,
            Link::Ethernet => match frame::parse(packet) {
                Ok(frame::Frame {
                    body: Body::Ip { start, len },
                    ..
                }) => &packet[start..start + len],
                _ => &[],
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::{LEARNED_PER_PEER, LEARNED_TTL_MS};
    use crate::core::counters::DropReason;
    use crate::core::relay::*;
    use crate::core::session::prefix;
    use crate::proto::frame::{
        BROADCAST, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, Mac, node_mac,
    };
    use crate::proto::overlay::link_local;
    use crate::proto::packet::{PROTO_ICMPV6, PROTO_TCP, PROTO_VRRP};
    use crate::proto::wire::Kind;
    use crate::testing::cluster::*;
    use crate::testing::frames::{arp, ethernet};
    use crate::testing::packets as testpkt;

    const CARP_MCAST: Mac = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x12];

    /// ucarp sends its adverts from 00:00:5e:00:00:<vhid>.
    const UCARP_VHID1: Mac = [0x00, 0x00, 0x5e, 0x00, 0x00, 0x01];

    fn tap_cluster3() -> (Relay, Relay, Relay) {
        let mut a = node_link(1, 3, T0, key(1), 5_000, Link::Ethernet);
        let mut b = node_link(2, 3, T0, key(2), 5_000, Link::Ethernet);
        let mut c = node_link(3, 3, T0, key(3), 5_000, Link::Ethernet);
        meet(&mut [(1, &mut a), (2, &mut b), (3, &mut c)], T0);
        (a, b, c)
    }

    /// A CARP advert from node `n` as ucarp writes it.
    fn carp_frame(n: u8) -> Vec<u8> {
        let ip = testpkt::v4(
            overlay(n),
            Ipv4Addr::new(224, 0, 0, 18),
            PROTO_VRRP,
            &[0x21; 36],
        );
        ethernet(CARP_MCAST, UCARP_VHID1, ETHERTYPE_IPV4, &ip)
    }

    fn send_drop(r: &mut Relay, pkt: &[u8]) -> DropReason {
        let mut out = batch();
        match r.from_tun(pkt, T0, &mut out) {
            Outbound::Drop(d) => d,
            other => panic!("sent: {other:?}"),
        }
    }

    /// Node 1 with no local checks: seals `frame` as is under its session
    /// with `to` and delivers it.
    fn forged_by_h1(h1: &mut Relay, to: &mut Relay, frame: &[u8]) -> Result<Vec<u8>, DropReason> {
        let mut out = [0u8; 2048];
        let i = h1.peers.index_of(to.local_addrs().peer_id()).expect("peer");
        let pre = prefix(
            Kind::Data,
            crate::proto::wire::FLAG_FRAME,
            u32::from(overlay(1)),
        );
        let len = h1.peers[i]
            .sessions
            .seal(pre, frame, T0, &mut out)
            .expect("fits");
        recv(to, &out[..len].to_vec(), 1, T0)
    }

    #[test]
    fn tap_carp_advert_goes_to_all_byte_exact() {
        let (mut a, mut b, mut c) = tap_cluster3();
        let f = carp_frame(1);
        let (d, target) = send(&mut a, &f, T0);
        assert_eq!(target, Target::All);
        assert_eq!(recv(&mut b, &d, 1, T0).as_deref(), Ok(f.as_slice()));
        assert_eq!(recv(&mut c, &d, 1, T0).as_deref(), Ok(f.as_slice()));
        // The advert watch sees the IP packet inside.
        assert_eq!(b.ip_packet(&f), &f[14..]);
        // ucarp's broadcast mode (--nomcast) too.
        let mut bcast = carp_frame(1);
        bcast[..6].copy_from_slice(&BROADCAST);
        let (d, target) = send(&mut a, &bcast, T0);
        assert_eq!(target, Target::All);
        assert_eq!(recv(&mut b, &d, 1, T0).as_deref(), Ok(bcast.as_slice()));
    }

    #[test]
    fn tap_local_frame_rules() {
        let (mut a, _, _) = tap_cluster3();
        // Another node's overlay source, whatever the MAC.
        assert_eq!(
            send_drop(&mut a, &carp_frame(2)),
            DropReason::LocalForeignSource
        );
        // A MAC that is neither ours nor a virtual router's.
        let mut f = carp_frame(1);
        f[6..12].copy_from_slice(&node_mac(overlay(2)));
        assert_eq!(send_drop(&mut a, &f), DropReason::LocalForeignSource);
        // A group IP destination in a unicast frame.
        let mut f = carp_frame(1);
        f[..6].copy_from_slice(&node_mac(overlay(2)));
        assert_eq!(send_drop(&mut a, &f), DropReason::LocalMalformed);
        // VLAN tags, LLDP: not carried.
        let f = ethernet(BROADCAST, node_mac(overlay(1)), 0x8100, &[0u8; 46]);
        assert_eq!(send_drop(&mut a, &f), DropReason::LocalDisallowed);
        // TCP to a peer is not in [allow].
        let tcp = testpkt::v4(overlay(1), overlay(2), PROTO_TCP, &[0u8; 20]);
        let f = ethernet(
            node_mac(overlay(2)),
            node_mac(overlay(1)),
            ETHERTYPE_IPV4,
            &tcp,
        );
        assert_eq!(send_drop(&mut a, &f), DropReason::LocalDisallowed);
        // ucarp's gratuitous ARP for the VIP on the tap stays here: the VIP
        // is announced on the real interface.
        let vip = Ipv4Addr::new(10, 77, 0, 100);
        let garp = ethernet(
            BROADCAST,
            node_mac(overlay(1)),
            ETHERTYPE_ARP,
            &arp(1, node_mac(overlay(1)), vip, vip),
        );
        assert_eq!(send_drop(&mut a, &garp), DropReason::LocalForeignSource);
        assert_eq!(send_drop(&mut a, &[0u8; 10]), DropReason::LocalMalformed);
    }

    #[test]
    fn tap_arp_and_unicast_reach_only_their_peer() {
        let (mut a, mut b, mut c) = tap_cluster3();
        let req = ethernet(
            BROADCAST,
            node_mac(overlay(1)),
            ETHERTYPE_ARP,
            &arp(1, node_mac(overlay(1)), overlay(1), overlay(2)),
        );
        let (d, target) = send(&mut a, &req, T0);
        assert_eq!(target, Target::All);
        assert_eq!(recv(&mut b, &d, 1, T0).as_deref(), Ok(req.as_slice()));
        assert_eq!(recv(&mut c, &d, 1, T0).as_deref(), Ok(req.as_slice()));
        // The reply goes to node 1's MAC: node 1 only.
        let reply = ethernet(
            node_mac(overlay(1)),
            node_mac(overlay(2)),
            ETHERTYPE_ARP,
            &arp(2, node_mac(overlay(2)), overlay(2), overlay(1)),
        );
        let (d, target) = send(&mut b, &reply, T0);
        assert_eq!(target, Target::Peer(peer_index(&b, "h1")));
        assert_eq!(recv(&mut a, &d, 2, T0).as_deref(), Ok(reply.as_slice()));
        // Node 3 cannot open it, and would not inject it if it could.
        assert_eq!(
            recv(&mut c, d.for_node(1), 2, T0),
            Err(DropReason::NoSession)
        );
        assert_eq!(
            c.classify_inbound(peer_index(&c, "h2"), &reply),
            Err(DropReason::Disallowed)
        );
        // Unicast IP (corosync's token) by MAC.
        let token = testpkt::v4_udp(overlay(1), overlay(3), 5405, b"token");
        let f = ethernet(
            node_mac(overlay(3)),
            node_mac(overlay(1)),
            ETHERTYPE_IPV4,
            &token,
        );
        let (d, target) = send(&mut a, &f, T0);
        assert_eq!(target, Target::Peer(peer_index(&a, "h3")));
        assert_eq!(recv(&mut c, &d, 1, T0).as_deref(), Ok(f.as_slice()));
    }

    #[test]
    fn tap_neighbour_discovery_is_carried() {
        let (mut a, mut b, _) = tap_cluster3();
        let ll1 = link_local(overlay(1));
        let solicited = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00, 2);
        let ns = testpkt::v6(ll1, solicited, PROTO_ICMPV6, &[135, 0, 0, 0, 0, 0, 0, 0]);
        let group = [0x33, 0x33, 0xff, 0, 0, 2];
        let f = ethernet(group, node_mac(overlay(1)), ETHERTYPE_IPV6, &ns);
        let (d, target) = send(&mut a, &f, T0);
        assert_eq!(target, Target::All);
        assert_eq!(recv(&mut b, &d, 1, T0).as_deref(), Ok(f.as_slice()));
        // Duplicate address detection: from the unspecified address.
        let dad = testpkt::v6(
            Ipv6Addr::UNSPECIFIED,
            solicited,
            PROTO_ICMPV6,
            &[135, 0, 0, 0, 0, 0, 0, 0],
        );
        let f = ethernet(group, node_mac(overlay(1)), ETHERTYPE_IPV6, &dad);
        let (d, _) = send(&mut a, &f, T0);
        assert_eq!(recv(&mut b, &d, 1, T0).as_deref(), Ok(f.as_slice()));
        // MLD reports stay kernel noise.
        let mld = testpkt::v6(ll1, solicited, PROTO_ICMPV6, &[143, 0, 0, 0, 0, 0, 0, 0]);
        let f = ethernet(group, node_mac(overlay(1)), ETHERTYPE_IPV6, &mld);
        assert_eq!(send_drop(&mut a, &f), DropReason::KernelNoise);
    }

    #[test]
    fn tap_receive_side_refuses_what_a_key_holder_forges() {
        let (mut a, mut b, _) = tap_cluster3();
        let vip = Ipv4Addr::new(10, 77, 0, 100);
        let cases: Vec<(&str, Vec<u8>, DropReason)> = vec![
            (
                "another node's MAC",
                {
                    let ip = testpkt::v4(
                        overlay(1),
                        Ipv4Addr::new(224, 0, 0, 18),
                        PROTO_VRRP,
                        &[0x21; 36],
                    );
                    ethernet(CARP_MCAST, node_mac(overlay(3)), ETHERTYPE_IPV4, &ip)
                },
                DropReason::WrongSource,
            ),
            (
                "another node's overlay source",
                carp_frame(3),
                DropReason::WrongSource,
            ),
            (
                "ARP claiming the VIP",
                ethernet(
                    BROADCAST,
                    node_mac(overlay(1)),
                    ETHERTYPE_ARP,
                    &arp(1, node_mac(overlay(1)), vip, vip),
                ),
                DropReason::WrongSource,
            ),
            (
                "ARP claiming node 3",
                ethernet(
                    BROADCAST,
                    node_mac(overlay(1)),
                    ETHERTYPE_ARP,
                    &arp(2, node_mac(overlay(1)), overlay(3), overlay(2)),
                ),
                DropReason::WrongSource,
            ),
            (
                "ARP from a virtual-router MAC",
                ethernet(
                    BROADCAST,
                    UCARP_VHID1,
                    ETHERTYPE_ARP,
                    &arp(1, UCARP_VHID1, overlay(1), overlay(2)),
                ),
                DropReason::WrongSource,
            ),
            (
                "ARP sender MAC not the frame's",
                ethernet(
                    BROADCAST,
                    node_mac(overlay(1)),
                    ETHERTYPE_ARP,
                    &arp(1, node_mac(overlay(3)), overlay(1), overlay(2)),
                ),
                DropReason::WrongSource,
            ),
            (
                "unicast frame for node 3",
                {
                    let tok = testpkt::v4_udp(overlay(1), overlay(2), 5405, b"t");
                    ethernet(
                        node_mac(overlay(3)),
                        node_mac(overlay(1)),
                        ETHERTYPE_IPV4,
                        &tok,
                    )
                },
                DropReason::Disallowed,
            ),
            (
                "group IP in a unicast frame",
                {
                    let ip = testpkt::v4(
                        overlay(1),
                        Ipv4Addr::new(224, 0, 0, 18),
                        PROTO_VRRP,
                        &[0x21; 36],
                    );
                    ethernet(
                        node_mac(overlay(2)),
                        node_mac(overlay(1)),
                        ETHERTYPE_IPV4,
                        &ip,
                    )
                },
                DropReason::Disallowed,
            ),
            (
                "unicast IP in a group frame",
                {
                    let tok = testpkt::v4_udp(overlay(1), overlay(2), 5405, b"t");
                    ethernet(BROADCAST, node_mac(overlay(1)), ETHERTYPE_IPV4, &tok)
                },
                DropReason::Disallowed,
            ),
            (
                "TCP to node 2",
                {
                    let tcp = testpkt::v4(overlay(1), overlay(2), PROTO_TCP, &[0u8; 20]);
                    ethernet(
                        node_mac(overlay(2)),
                        node_mac(overlay(1)),
                        ETHERTYPE_IPV4,
                        &tcp,
                    )
                },
                DropReason::Disallowed,
            ),
            (
                "a VLAN-tagged frame",
                ethernet(BROADCAST, node_mac(overlay(1)), 0x8100, &[0u8; 46]),
                DropReason::Disallowed,
            ),
            // Read as a frame, an IP header's bytes make no allowed EtherType.
            ("a bare IP packet", vrrp_from(1), DropReason::Disallowed),
            ("a truncated frame", vec![0xff; 13], DropReason::BadInner),
        ];
        for (what, frame, want) in cases {
            assert_eq!(forged_by_h1(&mut a, &mut b, &frame), Err(want), "{what}");
        }
        assert_eq!(b.counters().injected, 0);
        // The same path injects what is well-formed.
        let good = carp_frame(1);
        assert_eq!(forged_by_h1(&mut a, &mut b, &good), Ok(good));
    }

    #[test]
    fn tap_and_tun_nodes_do_not_mix() {
        let mut tap = node_link(1, 2, T0, key(1), 5_000, Link::Ethernet);
        let mut tun = node_link(2, 2, T0, key(2), 5_000, Link::Ip);
        meet(&mut [(1, &mut tap), (2, &mut tun)], T0);
        // The handshakes say which mode each side is in: no session forms.
        assert!(tun.counters().drops.get(DropReason::LinkMismatch) > 0);
        assert!(tap.counters().drops.get(DropReason::LinkMismatch) > 0);
        assert!(!tun.has_session(peer_index(&tun, "h1")));
        assert!(!tap.has_session(peer_index(&tap, "h2")));
    }

    #[test]
    fn tap_learns_virtual_router_macs_and_follows_them() {
        let (mut a, mut b, mut c) = tap_cluster3();
        let vmac = UCARP_VHID1;
        // Unknown: unicast to it goes to every peer, like a switch floods.
        let tok = testpkt::v4_udp(overlay(2), overlay(1), 5405, b"t");
        let to_vmac = ethernet(vmac, node_mac(overlay(2)), ETHERTYPE_IPV4, &tok);
        let (_, target) = send(&mut b, &to_vmac, T0);
        assert_eq!(target, Target::All);
        // Node 1 (master) advertises from the vMAC: node 2 learns it.
        let (d, _) = send(&mut a, &carp_frame(1), T0);
        assert!(recv(&mut b, &d, 1, T0).is_ok());
        let h1 = peer_index(&b, "h1");
        assert_eq!(b.learned_owner(vmac, T0), Some(h1));
        let (_, target) = send(&mut b, &to_vmac, T0);
        assert_eq!(target, Target::Peer(h1));
        // Node 3 takes over: the vMAC moves with it, one owner at a time.
        let (d, _) = send(&mut c, &carp_frame(3), T0 + 1);
        assert!(recv(&mut b, &d, 3, T0 + 1).is_ok());
        assert_eq!(b.learned_owner(vmac, T0 + 1), Some(peer_index(&b, "h3")));
        // Forgotten after the TTL.
        assert_eq!(b.learned_owner(vmac, T0 + 1 + LEARNED_TTL_MS), None);
        // Node MACs are known from the configuration, not learned.
        assert_eq!(b.learned_owner(node_mac(overlay(1)), T0), None);
    }

    #[test]
    fn tap_learning_is_bounded_per_peer() {
        let (mut a, mut b, _) = tap_cluster3();
        let h1 = peer_index(&b, "h1");
        // Node 1 masters six VHIDs in turn; only its four latest are kept.
        for vhid in 1..=6u8 {
            let mut f = carp_frame(1);
            f[11] = vhid;
            let now = T0 + u64::from(vhid);
            let (d, _) = send(&mut a, &f, now);
            assert!(recv(&mut b, &d, 1, now).is_ok());
        }
        let now = T0 + 10;
        let owned: Vec<u8> = (1..=6u8)
            .filter(|v| b.learned_owner([0, 0, 0x5e, 0, 0, *v], now) == Some(h1))
            .collect();
        assert_eq!(owned, vec![3, 4, 5, 6]);
        assert_eq!(LEARNED_PER_PEER, 4);
    }

    /// The advert watch reads the IP packet of a frame, not the frame's
    /// padding: a VRRP packet too short to be an advert, padded to the
    /// minimum frame with bytes that look like one, is no router, on the
    /// side that sends it and on the side that receives it.
    #[test]
    fn the_advert_watch_does_not_read_a_frames_padding() {
        let (mut a, mut b, _) = tap_cluster3();
        let ip = testpkt::v4(overlay(1), Ipv4Addr::new(224, 0, 0, 18), PROTO_VRRP, &[]);
        let mut f = ethernet(CARP_MCAST, addrs(1).mac(), ETHERTYPE_IPV4, &ip);
        // A VRRPv3 advert for VRID 7, priority 200, in the padding.
        f.extend_from_slice(&[0x31, 7, 200, 1, 0, 100, 0, 0]);
        f.resize(60, 0);
        let (d, _) = send(&mut a, &f, T0);
        assert!(a.routers().is_empty(), "{:?}", a.routers());
        assert_eq!(recv(&mut b, &d, 1, T0).as_deref(), Ok(f.as_slice()));
        assert!(b.routers().is_empty(), "{:?}", b.routers());
    }
}
