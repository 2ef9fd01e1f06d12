//! What the relay carries, as pairs of rules: each rule for a packet the
//! local tool sent (`route_local_*`: may it leave, and to whom?) sits
//! directly above its twin for a packet a peer sent (`check_*`: may it be
//! written into this host?), so a change to one is made beside the other.
//! The frame rules of tap mode are in [`crate::core::tap`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::core::allow::{AllowList, DestKind};
use crate::core::counters::DropReason;
use crate::core::peers::{NodeAddrs, Peers};
use crate::core::relay::Target;
use crate::proto::overlay::is_broadcast;
use crate::proto::packet::{self, Inner};

/// This node's addresses and the allow rules.
pub(super) struct Policy {
    pub(super) local: NodeAddrs,
    broadcast: Ipv4Addr,
    pub(super) allow: AllowList,
}

impl Policy {
    pub(super) fn new(local: NodeAddrs, broadcast: Ipv4Addr, allow: AllowList) -> Self {
        Policy {
            local,
            broadcast,
            allow,
        }
    }

    /// Multicast or broadcast: goes to every node.
    pub(super) fn is_group(&self, dst: IpAddr) -> bool {
        match dst {
            IpAddr::V4(a) => a.is_multicast() || is_broadcast(a, self.broadcast),
            IpAddr::V6(a) => a.is_multicast(),
        }
    }

    fn dest_kind(&self, dst: IpAddr) -> DestKind {
        match dst {
            IpAddr::V4(a) if is_broadcast(a, self.broadcast) => DestKind::Broadcast,
            _ if dst.is_multicast() => DestKind::Multicast,
            _ => DestKind::Unicast,
        }
    }

    /// Send side, tun mode: the packet must parse. Returns it parsed too,
    /// for the advert watch.
    pub(super) fn route_local(
        &self,
        peers: &Peers,
        packet: &[u8],
    ) -> Result<(Target, Inner), DropReason> {
        let inner = packet::parse(packet).map_err(|_| DropReason::LocalMalformed)?;
        Ok((self.route_local_inner(peers, &inner)?, inner))
    }

    /// Receive side, tun mode: the packet must parse. Returns it parsed.
    pub(super) fn check(&self, from: &NodeAddrs, packet: &[u8]) -> Result<Inner, DropReason> {
        let parsed = packet::parse(packet).map_err(|_| DropReason::BadInner)?;
        self.check_inner(from, &parsed)?;
        Ok(parsed)
    }

    /// The send-side rules: no kernel noise, sent from one of this node's
    /// addresses, to a group (every peer) or a peer's address (that peer),
    /// and allowed.
    pub(super) fn route_local_inner(
        &self,
        peers: &Peers,
        inner: &Inner,
    ) -> Result<Target, DropReason> {
        if inner.is_kernel_noise() {
            return Err(DropReason::KernelNoise);
        }
        if !self.local.owns(inner.src) {
            return Err(DropReason::LocalForeignSource);
        }
        let (kind, target) = if self.is_group(inner.dst) {
            (self.dest_kind(inner.dst), Target::All)
        } else {
            let i = peers.owner_of(inner.dst).ok_or(DropReason::NoRoute)?;
            (DestKind::Unicast, Target::Peer(peers.id_at(i)))
        };
        if !self.allow.permits(inner, kind) {
            return Err(DropReason::LocalDisallowed);
        }
        Ok(target)
    }

    /// The receive-side rules: the packet speaks for its sender only and
    /// goes only where this node accepts it.
    pub(super) fn check_inner(&self, from: &NodeAddrs, inner: &Inner) -> Result<(), DropReason> {
        if !from.owns(inner.src) {
            return Err(DropReason::WrongSource);
        }
        let kind = if self.is_group(inner.dst) {
            self.dest_kind(inner.dst)
        } else if self.local.owns(inner.dst) {
            DestKind::Unicast
        } else {
            return Err(DropReason::Disallowed);
        };
        if !self.allow.permits(inner, kind) {
            return Err(DropReason::Disallowed);
        }
        Ok(())
    }

    /// Neighbour discovery from the local kernel: from one of this node's
    /// addresses (or unspecified, for duplicate address detection), to a
    /// group or a peer.
    pub(super) fn route_local_nd(
        &self,
        peers: &Peers,
        inner: &Inner,
    ) -> Result<Target, DropReason> {
        let unspecified = inner.src == IpAddr::V6(Ipv6Addr::UNSPECIFIED);
        if !self.local.owns(inner.src) && !unspecified {
            return Err(DropReason::LocalForeignSource);
        }
        if inner.dst.is_multicast() {
            return Ok(Target::All);
        }
        peers
            .owner_of(inner.dst)
            .map(|i| Target::Peer(peers.id_at(i)))
            .ok_or(DropReason::NoRoute)
    }

    /// Neighbour discovery from a peer: from its own address (or
    /// unspecified, for duplicate address detection), to a group or us.
    pub(super) fn check_nd(&self, from: &NodeAddrs, inner: &Inner) -> Result<(), DropReason> {
        let unspecified = inner.src == IpAddr::V6(Ipv6Addr::UNSPECIFIED);
        if !from.owns(inner.src) && !unspecified {
            return Err(DropReason::WrongSource);
        }
        if inner.dst.is_multicast() || self.local.owns(inner.dst) {
            Ok(())
        } else {
            Err(DropReason::Disallowed)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use crate::core::allow::{AllowList, Rule};
    use crate::core::counters::DropReason;
    use crate::core::relay::*;
    use crate::testing::cluster::*;

    use crate::core::session::prefix;
    use crate::proto::packet::{PROTO_IGMP, PROTO_TCP, PROTO_VRRP};
    use crate::proto::wire::Kind;
    use crate::testing::packets as testpkt;

    #[test]
    fn local_side_drops() {
        let mut a = node(1);
        let mut out = batch();
        let mut check = |a: &mut Relay, pkt: &[u8], want: DropReason| {
            assert_eq!(a.from_tun(pkt, T0, &mut out), Outbound::Drop(want));
        };
        check(&mut a, &[0x45, 0, 0], DropReason::LocalMalformed);
        let igmp = testpkt::v4(
            overlay(1),
            Ipv4Addr::new(224, 0, 0, 22),
            PROTO_IGMP,
            &[0x22, 0, 0, 0],
        );
        check(&mut a, &igmp, DropReason::KernelNoise);
        check(&mut a, &vrrp_from(7), DropReason::LocalForeignSource);
        let elsewhere = testpkt::v4_udp(overlay(1), Ipv4Addr::new(8, 8, 8, 8), 5405, b"x");
        check(&mut a, &elsewhere, DropReason::NoRoute);
        let ssh = testpkt::v4(
            overlay(1),
            overlay(2),
            PROTO_TCP,
            &[0, 1, 0, 22, 0, 0, 0, 0],
        );
        check(&mut a, &ssh, DropReason::LocalDisallowed);
        let mut tiny = Datagrams::new(40, 1);
        assert_eq!(
            a.from_tun(&vrrp_from(1), T0, &mut tiny),
            Outbound::Drop(DropReason::TooBig)
        );
        assert_eq!(a.counters().drops.total(), 6);
        assert_eq!(a.counters().sealed, 0);
    }

    #[test]
    fn a_key_holder_speaks_only_for_itself() {
        let (mut a, mut b, _) = cluster3();
        // Sealed under node 1's own session with node 2, bypassing its
        // local checks: what node 1 could send if it wanted.
        let to_b = a.peers.index_of(peer_index(&a, "h2")).expect("h2");
        let mut forge = |pkt: &[u8]| {
            let mut out = [0u8; 2048];
            let len = a.peers[to_b]
                .sessions
                .seal(
                    prefix(Kind::Data, 0, u32::from(overlay(1))),
                    pkt,
                    T0,
                    &mut out,
                )
                .expect("fits");
            out[..len].to_vec()
        };
        let as_node3 = forge(&vrrp_from(3));
        assert_eq!(recv(&mut b, &as_node3, 1, T0), Err(DropReason::WrongSource));
        let ssh = forge(&testpkt::v4(
            overlay(1),
            overlay(2),
            PROTO_TCP,
            &[0, 1, 0, 22, 0, 0, 0, 0],
        ));
        assert_eq!(recv(&mut b, &ssh, 1, T0), Err(DropReason::Disallowed));
        let other_group = forge(&testpkt::v4(
            overlay(1),
            Ipv4Addr::new(224, 0, 0, 5),
            PROTO_VRRP,
            &[0; 8],
        ));
        assert_eq!(
            recv(&mut b, &other_group, 1, T0),
            Err(DropReason::Disallowed)
        );
        let garbage = forge(&[0x45, 1, 2, 3]);
        assert_eq!(recv(&mut b, &garbage, 1, T0), Err(DropReason::BadInner));
        let ok = forge(&vrrp_from(1));
        assert!(recv(&mut b, &ok, 1, T0).is_ok());
    }

    #[test]
    fn custom_rules_apply_both_ways() {
        let mut a = node_with(1, 2, T0, key(1));
        let mut b = node_with(2, 2, T0, key(2));
        meet(&mut [(1, &mut a), (2, &mut b)], T0);
        let rule = Rule {
            label: "rule 1".into(),
            proto: crate::proto::packet::PROTO_UDP,
            ports: vec![(9999, 9999)],
            dests: {
                let mut d = crate::core::allow::Destinations::default();
                d.add("239.1.1.1").expect("group");
                d
            },
        };
        a.policy.allow = AllowList::new(vec![rule.clone()]);
        b.policy.allow = AllowList::new(vec![rule]);
        let ok = testpkt::v4_udp(overlay(1), Ipv4Addr::new(239, 1, 1, 1), 9999, b"x");
        let (d, _) = send(&mut a, &ok, T0);
        assert!(recv(&mut b, &d, 1, T0).is_ok());
        let mut out = batch();
        let vrrp = vrrp_from(1);
        assert_eq!(
            a.from_tun(&vrrp, T0, &mut out),
            Outbound::Drop(DropReason::LocalDisallowed)
        );
    }
}
