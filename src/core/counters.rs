//! Why packets are dropped, and the counters that record it. Drops are
//! counted, never logged one by one: a flood must not become a log flood.

use std::fmt;

/// Every reason the relay drops a packet, in either direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    // --- datagrams from the network ---
    /// Too short, bad reserved bits, unknown kind.
    Malformed,
    /// A wire version this build does not speak.
    UnknownVersion,
    /// The header names no configured peer (or names this node).
    UnknownSender,
    /// Plaintext datagram while authentication is on, or the reverse.
    ModeMismatch,
    /// A handshake's timestamp is further from our clock than allowed.
    ClockSkew,
    /// An initiation not newer than the last one accepted from its member:
    /// a replay (or a restart with the clock set back; we then start a
    /// handshake ourselves).
    StaleHandshake,
    /// A counter already seen, or too old for the window.
    Replay,
    /// A later copy of a packet whose first copy was injected already
    /// (`node.redundancy`, several paths): the redundancy at work.
    Duplicate,
    /// Authentication failed: forged, corrupted or another key.
    BadAuth,
    /// A handshake without a valid MAC for this receiver: refused before
    /// any Diffie-Hellman.
    BadMac,
    /// A handshake that names one member but is sealed with another
    /// member's key: a member posing as another.
    WrongKey,
    /// More initiations than a member (or everyone together) may make.
    HandshakeRateLimited,
    /// Authenticated, but the inner packet is not well-formed IP.
    BadInner,
    /// The inner packet's source is not the sending peer's overlay address.
    WrongSource,
    /// The inner packet's protocol, port or destination is not allowed.
    Disallowed,
    /// In insecure mode: the datagram did not come from the peer's endpoint.
    WrongEndpoint,
    /// No session with that index: a moment after either side starts or
    /// renews its session, or a datagram of a session that has ended (a
    /// capture replayed from an earlier session).
    NoSession,
    /// The peer exceeded its injection rate limit.
    RateLimited,
    /// The peer's interface mode differs: it sends Ethernet frames (tap)
    /// and this node is in tun mode, or the reverse.
    LinkMismatch,
    // --- packets from the local interface ---
    /// IGMP/MLD/router solicitations the kernel sends on its own.
    KernelNoise,
    /// Not IP, or not well-formed.
    LocalMalformed,
    /// Source is not this node's overlay address.
    LocalForeignSource,
    /// Unicast to an address that is no peer's.
    NoRoute,
    /// Not permitted by `[allow]`.
    LocalDisallowed,
    /// Larger than fits in one datagram.
    TooBig,
    // --- I/O ---
    /// The peer's endpoint has not resolved (yet).
    PeerUnresolved,
    /// The kernel refused to send (buffer full, unreachable...).
    SendFailed,
    /// The kernel refused the write into the interface.
    InjectFailed,
}

impl DropReason {
    pub const ALL: [DropReason; 28] = [
        DropReason::Malformed,
        DropReason::UnknownVersion,
        DropReason::UnknownSender,
        DropReason::ModeMismatch,
        DropReason::ClockSkew,
        DropReason::StaleHandshake,
        DropReason::Replay,
        DropReason::Duplicate,
        DropReason::BadAuth,
        DropReason::BadMac,
        DropReason::WrongKey,
        DropReason::HandshakeRateLimited,
        DropReason::BadInner,
        DropReason::WrongSource,
        DropReason::Disallowed,
        DropReason::WrongEndpoint,
        DropReason::NoSession,
        DropReason::RateLimited,
        DropReason::LinkMismatch,
        DropReason::KernelNoise,
        DropReason::LocalMalformed,
        DropReason::LocalForeignSource,
        DropReason::NoRoute,
        DropReason::LocalDisallowed,
        DropReason::TooBig,
        DropReason::PeerUnresolved,
        DropReason::SendFailed,
        DropReason::InjectFailed,
    ];

    /// Stable snake_case name, for logs, status output and metrics.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::UnknownVersion => "unknown_version",
            DropReason::UnknownSender => "unknown_sender",
            DropReason::ModeMismatch => "mode_mismatch",
            DropReason::ClockSkew => "clock_skew",
            DropReason::StaleHandshake => "stale_handshake",
            DropReason::Replay => "replay",
            DropReason::Duplicate => "duplicate",
            DropReason::BadAuth => "bad_auth",
            DropReason::BadMac => "bad_mac",
            DropReason::WrongKey => "wrong_key",
            DropReason::HandshakeRateLimited => "handshake_rate_limited",
            DropReason::BadInner => "bad_inner",
            DropReason::WrongSource => "wrong_inner_source",
            DropReason::Disallowed => "disallowed",
            DropReason::WrongEndpoint => "wrong_endpoint",
            DropReason::NoSession => "no_session",
            DropReason::RateLimited => "rate_limited",
            DropReason::LinkMismatch => "link_mismatch",
            DropReason::KernelNoise => "kernel_noise",
            DropReason::LocalMalformed => "local_malformed",
            DropReason::LocalForeignSource => "local_foreign_source",
            DropReason::NoRoute => "no_route",
            DropReason::LocalDisallowed => "local_disallowed",
            DropReason::TooBig => "too_big",
            DropReason::PeerUnresolved => "peer_unresolved",
            DropReason::SendFailed => "send_failed",
            DropReason::InjectFailed => "inject_failed",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// What the drop usually means and what to check, for the operator.
    pub(crate) fn explain(self) -> &'static str {
        match self {
            DropReason::Malformed => {
                "a datagram that is not mcast-relay wire format reached the relay port"
            }
            DropReason::UnknownVersion => {
                "a relay speaking another wire version; run the same mcast-relay version on every node"
            }
            DropReason::UnknownSender => {
                "the sender is not a [[member]] of the cluster file (its overlay address is unknown here)"
            }
            DropReason::ModeMismatch => {
                "one node has `insecure = true` and another uses keys; every host must have the same cluster file"
            }
            DropReason::ClockSkew => {
                "a handshake whose timestamp differs from our clock by more than node.max_clock_skew (or an old one replayed); check NTP on both hosts"
            }
            DropReason::StaleHandshake => {
                "a handshake initiation older than the last one accepted from that member: replayed (harmless), or the member restarted with its clock set back (a handshake from us follows)"
            }
            DropReason::Replay => "a datagram seen before (replayed or duplicated by the network)",
            DropReason::Duplicate => {
                "a later copy of a packet already injected (node.redundancy or several paths): expected"
            }
            DropReason::BadAuth => {
                "authentication failed: forged or corrupted, or sealed under a session or key this node does not share with the sender"
            }
            DropReason::BadMac => {
                "a handshake not addressed to this node's public key: junk, or the sender's cluster file lists another public_key for this host"
            }
            DropReason::WrongKey => {
                "a handshake naming one member but made with another key: a member posing as another, or a member whose public_key in the cluster file is out of date"
            }
            DropReason::HandshakeRateLimited => {
                "more handshake initiations than allowed (10/s per member, 100/s in all): a flood"
            }
            DropReason::BadInner => {
                "an authenticated datagram whose inner packet is not valid IP (or, in tap mode, not an IPv4, IPv6 or ARP frame)"
            }
            DropReason::WrongSource => {
                "a peer sent a packet with a source that is not its own overlay address (or, in tap mode, not its own MAC address)"
            }
            DropReason::Disallowed => {
                "a peer sent a packet that [allow] does not permit here, or unicast for another node"
            }
            DropReason::WrongEndpoint => {
                "insecure mode: a datagram naming a peer came from another address than that peer's endpoint"
            }
            DropReason::NoSession => {
                "no session with that peer (yet): normal for a moment after a relay starts or renews keys; if it persists, the handshake fails: check the peer's endpoint, firewall and public_key"
            }
            DropReason::RateLimited => {
                "a peer sent more packets than node.inject_rate_limit allows (a flood, or raise the limit)"
            }
            DropReason::LinkMismatch => {
                "a peer runs its interface in the other mode (one node has `mode = \"tap\"`, another `mode = \"tun\"`); configure every node the same way"
            }
            DropReason::KernelNoise => {
                "the kernel's own IGMP/MLD/ICMPv6 traffic on the interface (normal)"
            }
            DropReason::LocalMalformed => "the interface delivered a packet that is not valid IP",
            DropReason::LocalForeignSource => {
                "a local packet whose source is not this node's overlay address"
            }
            DropReason::NoRoute => {
                "a local unicast packet to an address that is no peer's overlay address"
            }
            DropReason::LocalDisallowed => {
                "a local packet that [allow] does not permit (add a preset or rule if it is wanted)"
            }
            DropReason::TooBig => {
                "a local packet too large for one datagram; lower the tool's packet size"
            }
            DropReason::PeerUnresolved => "a peer's endpoint name has not resolved yet",
            DropReason::SendFailed => {
                "the kernel refused to send to a peer (no route, firewall, buffer full)"
            }
            DropReason::InjectFailed => {
                "the kernel refused the write into the interface (is it down?)"
            }
        }
    }

    /// A datagram from the network was dropped (not a local packet, not
    /// an I/O failure).
    pub fn from_network(self) -> bool {
        !matches!(
            self,
            DropReason::KernelNoise
                | DropReason::LocalMalformed
                | DropReason::LocalForeignSource
                | DropReason::NoRoute
                | DropReason::LocalDisallowed
                | DropReason::TooBig
                | DropReason::PeerUnresolved
                | DropReason::SendFailed
                | DropReason::InjectFailed
        )
    }

    /// Expected in normal operation; not worth a warning.
    pub fn is_benign(self) -> bool {
        matches!(
            self,
            DropReason::KernelNoise | DropReason::NoSession | DropReason::Duplicate
        )
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Drop counts by reason: a fixed array, so counting never allocates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DropCounters([u64; DropReason::ALL.len()]);

impl DropCounters {
    pub fn add(&mut self, r: DropReason) {
        self.0[r.index()] += 1;
    }

    pub fn get(&self, r: DropReason) -> u64 {
        self.0[r.index()]
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Non-zero counts that grew since `earlier`, with the increase.
    pub(crate) fn grown_since<'a>(
        &'a self,
        earlier: &'a DropCounters,
    ) -> impl Iterator<Item = (DropReason, u64)> + 'a {
        DropReason::ALL.into_iter().filter_map(move |r| {
            let d = self.get(r).saturating_sub(earlier.get(r));
            (d > 0).then_some((r, d))
        })
    }
}

/// Traffic and drops for the whole relay.
#[derive(Clone, Debug, Default)]
pub struct Counters {
    pub drops: DropCounters,
    /// Inner packets read from the interface and sealed.
    pub sealed: u64,
    /// Datagrams handed to the kernel for sending (one per peer).
    pub sent: u64,
    /// Inner packets written into the interface.
    pub injected: u64,
    /// Handshake initiations we sent, and those of peers we answered.
    pub handshakes_sent: u64,
    pub handshakes_answered: u64,
    /// Steps of the wall clock against the monotonic one that ended every
    /// session (NTP steps, restored snapshots).
    pub clock_jumps: u64,
}

impl fmt::Display for Counters {
    /// `sealed=N sent=N injected=N` then every non-zero drop reason as
    /// `reason=N`: one greppable line for logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sealed={} sent={} injected={}",
            self.sealed, self.sent, self.injected
        )?;
        for r in DropReason::ALL {
            let n = self.drops.get(r);
            if n > 0 {
                write!(f, " {r}={n}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_lists_totals_and_nonzero_drops() {
        let mut c = Counters {
            sealed: 3,
            ..Counters::default()
        };
        c.drops.add(DropReason::Replay);
        c.drops.add(DropReason::Replay);
        assert_eq!(c.to_string(), "sealed=3 sent=0 injected=0 replay=2");
    }

    #[test]
    fn names_are_unique_and_indexes_dense() {
        let mut names: Vec<&str> = DropReason::ALL.iter().map(|r| r.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DropReason::ALL.len());
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i, "{r} is out of order in ALL");
        }
    }

    #[test]
    fn network_reasons() {
        let net: Vec<&str> = DropReason::ALL
            .iter()
            .filter(|r| r.from_network())
            .map(|r| r.name())
            .collect();
        assert_eq!(net.len(), 19);
        assert!(net.contains(&"rate_limited") && net.contains(&"no_session"));
        assert!(net.contains(&"duplicate"));
        assert!(!net.contains(&"kernel_noise") && !net.contains(&"send_failed"));
    }

    #[test]
    fn counting_and_growth() {
        let mut c = DropCounters::default();
        c.add(DropReason::Replay);
        let before = c.clone();
        c.add(DropReason::Replay);
        c.add(DropReason::BadAuth);
        assert_eq!(c.get(DropReason::Replay), 2);
        assert_eq!(c.total(), 3);
        let grown: Vec<_> = c.grown_since(&before).collect();
        assert_eq!(
            grown,
            vec![(DropReason::Replay, 1), (DropReason::BadAuth, 1)]
        );
    }
}
