//! A peer's paths: the endpoints it is reachable at (`endpoints` in the
//! cluster file: a private and a public address, IPv4 and IPv6, two
//! interfaces), each probed by its own keepalives, with its own
//! reachability, round trip and loss; and which of them the next packet
//! goes over (`node.path_mode`).
//!
//! * `all`: every copy over every reachable path; the copies are what
//!   survives a path that loses packets.
//! * `best`: the healthiest path only. A ping left unanswered for the ping
//!   timeout makes its path suspect: packets then go over every reachable
//!   path until another path is chosen or the suspect one answers again,
//!   so a path that fails costs at most one keepalive interval plus that
//!   timeout.
//!
//! While no path has answered yet (start-up, or all silent) packets go
//! over every path that has an address: nothing is known, so nothing is
//! left out.

use std::net::{IpAddr, SocketAddr};

/// The most endpoints a member may list.
pub const MAX_PATHS: usize = 8;

/// A set of paths of one peer, by position in its `endpoints`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PathSet(u8);

impl PathSet {
    pub fn contains(self, k: usize) -> bool {
        k < MAX_PATHS && self.0 & (1 << k) != 0
    }

    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    fn with(self, k: usize) -> PathSet {
        PathSet(self.0 | (1 << k))
    }

    pub(super) fn without(self, k: usize) -> PathSet {
        PathSet(self.0 & !(1 << k))
    }

    /// The paths in order.
    pub fn iter(self) -> impl Iterator<Item = usize> {
        (0..MAX_PATHS).filter(move |k| self.contains(*k))
    }
}

/// How packets are spread over a peer's paths.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PathMode {
    /// Over every reachable path.
    #[default]
    All,
    /// Over the healthiest path.
    Best,
}

/// What is known of one path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PathStats {
    pub pings_sent: u64,
    pub pings_answered: u64,
    /// The last 16 pings over it, newest in bit 0: 1 = answered.
    pub recent_answered: u16,
    /// How many of those 16 bits are real pings.
    pub recent_count: u8,
    /// Round trip of its last answered ping, ms.
    pub rtt_ms: Option<u64>,
    /// Our clock (ms) when its last echo arrived.
    pub last_answer_ms: Option<u64>,
    /// Data datagrams (copies included) sent over it.
    pub sent: u64,
}

impl PathStats {
    /// Pings of the last 16 that went unanswered (the newest one counts
    /// while it is on its way).
    pub fn recent_lost(&self) -> u32 {
        let n = u32::from(self.recent_count.min(16));
        let mask = if n == 16 { u16::MAX } else { (1u16 << n) - 1 };
        n - (self.recent_answered & mask).count_ones()
    }
}

/// One path: where, and its probes.
#[derive(Clone, Debug, Default)]
pub(super) struct Path {
    pub(super) addr: Option<SocketAddr>,
    pub(super) stats: PathStats,
    /// When the newest ping over it went, while it is unanswered.
    outstanding_ms: Option<u64>,
}

/// A path's state as the selection sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathHealth {
    /// No address (unresolved).
    Unresolved,
    /// Never answered, or not within the reachability window.
    Unreachable,
    /// Answered recently, but its newest ping is overdue.
    Suspect,
    Healthy,
}

/// The paths of one peer.
#[derive(Clone, Debug)]
pub(super) struct Paths {
    list: Vec<Path>,
    /// `best` mode's current choice.
    best: usize,
    /// Initiations sent while no path is known to work: they take the
    /// paths in turn.
    hello_turn: usize,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            list: vec![Path::default()],
            best: 0,
            hello_turn: 0,
        }
    }
}

impl Paths {
    pub(super) fn len(&self) -> usize {
        self.list.len()
    }

    pub(super) fn get(&self, k: usize) -> Option<&Path> {
        self.list.get(k)
    }

    pub(super) fn addr(&self, k: usize) -> Option<SocketAddr> {
        self.list.get(k).and_then(|p| p.addr)
    }

    /// Sets path `k`'s address, adding paths up to it (never past
    /// [`MAX_PATHS`]). A changed address forgets what was measured.
    pub(super) fn set(&mut self, k: usize, addr: Option<SocketAddr>) {
        if k >= MAX_PATHS {
            return;
        }
        if self.list.len() <= k {
            self.list.resize_with(k + 1, Path::default);
        }
        let p = &mut self.list[k];
        if p.addr != addr {
            *p = Path {
                addr,
                ..Path::default()
            };
        }
    }

    /// Keeps the first `n` paths (at least one).
    pub(super) fn truncate(&mut self, n: usize) {
        self.list.truncate(n.clamp(1, MAX_PATHS));
        if self.best >= self.list.len() {
            self.best = 0;
        }
    }

    /// Whether any path has an address.
    pub(super) fn any(&self) -> bool {
        self.list.iter().any(|p| p.addr.is_some())
    }

    /// The paths with an address.
    pub(super) fn usable(&self) -> PathSet {
        self.list
            .iter()
            .enumerate()
            .filter(|(_, p)| p.addr.is_some())
            .fold(PathSet::default(), |s, (k, _)| s.with(k))
    }

    /// Whether `ip` is the address of one of the paths.
    pub(super) fn has_ip(&self, ip: IpAddr) -> bool {
        self.list.iter().any(|p| p.addr.map(|a| a.ip()) == Some(ip))
    }

    pub(super) fn health(
        &self,
        k: usize,
        now_ms: u64,
        window_ms: u64,
        timeout_ms: u64,
    ) -> PathHealth {
        let Some(p) = self.list.get(k) else {
            return PathHealth::Unresolved;
        };
        if p.addr.is_none() {
            return PathHealth::Unresolved;
        }
        let answered = p
            .stats
            .last_answer_ms
            .is_some_and(|t| now_ms.saturating_sub(t) <= window_ms);
        if !answered {
            return PathHealth::Unreachable;
        }
        let overdue = p
            .outstanding_ms
            .is_some_and(|t| now_ms.saturating_sub(t) > ping_timeout(p, timeout_ms));
        if overdue {
            PathHealth::Suspect
        } else {
            PathHealth::Healthy
        }
    }

    /// The reachable paths (healthy or suspect) and, of those, the sound
    /// ones (healthy), in one look at each path: this runs per packet.
    fn reachable_and_sound(
        &self,
        now_ms: u64,
        window_ms: u64,
        timeout_ms: u64,
    ) -> (PathSet, PathSet) {
        let mut sets = (PathSet::default(), PathSet::default());
        for k in 0..self.list.len() {
            match self.health(k, now_ms, window_ms, timeout_ms) {
                PathHealth::Healthy => sets = (sets.0.with(k), sets.1.with(k)),
                PathHealth::Suspect => sets.0 = sets.0.with(k),
                PathHealth::Unreachable | PathHealth::Unresolved => {}
            }
        }
        sets
    }

    /// The paths the next packet goes over. `window_ms`: how long an
    /// echo keeps a path reachable; `timeout_ms`: the longest a ping may
    /// stay unanswered before its path is suspect.
    pub(super) fn select(
        &mut self,
        mode: PathMode,
        now_ms: u64,
        window_ms: u64,
        timeout_ms: u64,
    ) -> PathSet {
        let (reachable, sound) = self.reachable_and_sound(now_ms, window_ms, timeout_ms);
        if reachable.is_empty() {
            return self.usable();
        }
        if mode == PathMode::All || self.list.len() == 1 {
            return reachable;
        }
        if sound.is_empty() {
            return reachable;
        }
        let lost = |k: usize| self.list[k].stats.recent_lost();
        let Some(healthiest) = sound.iter().min_by_key(|k| (lost(*k), *k)) else {
            return reachable;
        };
        // Stays on its path unless that one fails or another is clearly
        // better, so two equal paths do not take turns.
        if !sound.contains(self.best) || lost(healthiest) + 2 <= lost(self.best) {
            self.best = healthiest;
        }
        PathSet::default().with(self.best)
    }

    /// Where an initiation goes: the first healthy path, else each path
    /// with an address in turn, so one dead path cannot keep a session
    /// from forming.
    pub(super) fn hello_path(
        &mut self,
        now_ms: u64,
        window_ms: u64,
        timeout_ms: u64,
    ) -> Option<usize> {
        let (_, sound) = self.reachable_and_sound(now_ms, window_ms, timeout_ms);
        if let Some(k) = sound.iter().next() {
            return Some(k);
        }
        let usable = self.usable();
        if usable.is_empty() {
            return None;
        }
        let k = usable.iter().nth(self.hello_turn % usable.len())?;
        self.hello_turn = self.hello_turn.wrapping_add(1);
        Some(k)
    }

    /// Where an answer to a datagram from `from` goes: the path with that
    /// address, else one with that IP address, else the first path with
    /// an address. Never `from` itself unless it is configured, so a
    /// spoofed source cannot aim answers at a victim.
    pub(super) fn reply_path(&self, from: SocketAddr) -> Option<usize> {
        let exact = self.list.iter().position(|p| p.addr == Some(from));
        exact
            .or_else(|| {
                self.list
                    .iter()
                    .position(|p| p.addr.map(|a| a.ip()) == Some(from.ip()))
            })
            .or_else(|| self.list.iter().position(|p| p.addr.is_some()))
    }

    /// A ping went over path `k`.
    pub(super) fn pinged(&mut self, k: usize, now_ms: u64) {
        if let Some(p) = self.list.get_mut(k) {
            let s = &mut p.stats;
            s.pings_sent += 1;
            s.recent_answered <<= 1;
            s.recent_count = (s.recent_count + 1).min(16);
            p.outstanding_ms = Some(now_ms);
        }
    }

    /// The echo of a ping sent over path `k` at `asked_ms`, `age` pings
    /// over that path ago (0: the newest).
    pub(super) fn answered(&mut self, k: usize, asked_ms: u64, age: u64, now_ms: u64) {
        if let Some(p) = self.list.get_mut(k) {
            let s = &mut p.stats;
            s.pings_answered += 1;
            s.rtt_ms = Some(now_ms.saturating_sub(asked_ms));
            s.last_answer_ms = Some(now_ms);
            if age < 16 {
                s.recent_answered |= 1 << age;
            }
            if age == 0 {
                p.outstanding_ms = None;
            }
        }
    }

    /// Counts a data datagram sent over path `k`.
    pub(super) fn count_sent(&mut self, k: usize) {
        if let Some(p) = self.list.get_mut(k) {
            p.stats.sent += 1;
        }
    }
}

/// How long a ping over `p` may go unanswered: three round trips and some
/// slack, but never less than 50 ms nor more than `cap_ms`.
fn ping_timeout(p: &Path, cap_ms: u64) -> u64 {
    let rtt = p.stats.rtt_ms.unwrap_or(cap_ms);
    (rtt * 3 + 20).clamp(50, cap_ms.max(50))
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: u64 = 3500;
    const TIMEOUT: u64 = 1000;

    fn addr(n: u8) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, n], 7112))
    }

    fn two_paths() -> Paths {
        let mut p = Paths::default();
        p.set(0, Some(addr(1)));
        p.set(1, Some(addr(2)));
        p
    }

    /// A round of pings over both paths at `t`; the ones in `answer` echo
    /// 1 ms later.
    fn round(p: &mut Paths, t: u64, answer: &[usize]) {
        for k in 0..p.len() {
            p.pinged(k, t);
        }
        for &k in answer {
            p.answered(k, t, 0, t + 1);
        }
    }

    fn set(ks: &[usize]) -> PathSet {
        ks.iter().fold(PathSet::default(), |s, k| s.with(*k))
    }

    #[test]
    fn nothing_known_means_every_path_with_an_address() {
        let mut p = Paths::default();
        p.set(0, Some(addr(1)));
        p.set(2, Some(addr(3)));
        assert_eq!(p.len(), 3);
        for mode in [PathMode::All, PathMode::Best] {
            assert_eq!(p.select(mode, 0, WINDOW, TIMEOUT), set(&[0, 2]));
        }
    }

    #[test]
    fn all_mode_leaves_out_only_unreachable_paths() {
        let mut p = two_paths();
        round(&mut p, 0, &[0, 1]);
        assert_eq!(p.select(PathMode::All, 10, WINDOW, TIMEOUT), set(&[0, 1]));
        // Path 1 stops answering: still used while within the window.
        for t in (1000..=3000).step_by(1000) {
            round(&mut p, t, &[0]);
        }
        assert_eq!(p.select(PathMode::All, 3400, WINDOW, TIMEOUT), set(&[0, 1]));
        round(&mut p, 4000, &[0]);
        assert_eq!(p.select(PathMode::All, 4000, WINDOW, TIMEOUT), set(&[0]));
        // It answers again: back at once.
        round(&mut p, 5000, &[0, 1]);
        assert_eq!(p.select(PathMode::All, 5000, WINDOW, TIMEOUT), set(&[0, 1]));
    }

    #[test]
    fn best_mode_moves_off_a_failing_path_at_its_first_overdue_ping() {
        let mut p = two_paths();
        for t in [0, 1000] {
            round(&mut p, t, &[0, 1]);
        }
        assert_eq!(p.select(PathMode::Best, 1010, WINDOW, TIMEOUT), set(&[0]));
        // Path 0 dies just after the round at 1000. The ping at 2000 is
        // unanswered; the timeout is 3 round trips + 20 ms, at least 50.
        round(&mut p, 2000, &[1]);
        assert_eq!(
            p.select(PathMode::Best, 2040, WINDOW, TIMEOUT),
            set(&[0]),
            "not yet overdue"
        );
        assert_eq!(
            p.select(PathMode::Best, 2051, WINDOW, TIMEOUT),
            set(&[1]),
            "moved within one interval plus the ping timeout"
        );
        // Path 0 comes back: no flapping back while path 1 is as good.
        for t in (3000..=8000).step_by(1000) {
            round(&mut p, t, &[0, 1]);
        }
        assert_eq!(p.select(PathMode::Best, 8010, WINDOW, TIMEOUT), set(&[1]));
    }

    #[test]
    fn best_mode_prefers_the_path_that_loses_less() {
        let mut p = two_paths();
        // Path 0 answers one ping in two, path 1 all.
        for n in 0..16u64 {
            let answer: &[usize] = if n % 2 == 0 { &[0, 1] } else { &[1] };
            round(&mut p, n * 1000, answer);
        }
        assert_eq!(p.get(0).map(|x| x.stats.recent_lost()), Some(8));
        assert_eq!(p.select(PathMode::Best, 15_010, WINDOW, TIMEOUT), set(&[1]));
    }

    #[test]
    fn best_mode_with_only_suspect_paths_uses_them_all() {
        let mut p = two_paths();
        round(&mut p, 0, &[0, 1]);
        round(&mut p, 1000, &[]);
        assert_eq!(
            p.select(PathMode::Best, 1100, WINDOW, TIMEOUT),
            set(&[0, 1])
        );
    }

    #[test]
    fn hellos_take_the_paths_in_turn_until_one_works() {
        let mut p = two_paths();
        let turns: Vec<_> = (0..4)
            .filter_map(|_| p.hello_path(0, WINDOW, TIMEOUT))
            .collect();
        assert_eq!(turns, vec![0, 1, 0, 1]);
        round(&mut p, 0, &[1]);
        assert_eq!(p.hello_path(10, WINDOW, TIMEOUT), Some(1));
    }

    #[test]
    fn replies_go_to_a_configured_path_only() {
        let p = two_paths();
        assert_eq!(p.reply_path(addr(2)), Some(1));
        // Same host, another port (a NAT): that path.
        assert_eq!(
            p.reply_path(SocketAddr::from(([192, 0, 2, 2], 40000))),
            Some(1)
        );
        // A stranger's address: the first path, never the stranger.
        assert_eq!(p.reply_path(addr(9)), Some(0));
        assert_eq!(Paths::default().reply_path(addr(1)), None);
    }

    #[test]
    fn a_new_address_forgets_what_was_measured() {
        let mut p = two_paths();
        round(&mut p, 0, &[0, 1]);
        p.set(1, Some(addr(2)));
        assert_eq!(p.get(1).map(|x| x.stats.pings_answered), Some(1));
        p.set(1, Some(addr(7)));
        assert_eq!(p.get(1).map(|x| x.stats.pings_answered), Some(0));
        p.truncate(1);
        assert_eq!(p.len(), 1);
        p.set(MAX_PATHS, Some(addr(3)));
        assert_eq!(p.len(), 1, "past the limit: ignored");
    }
}

/// Paths through the whole core: keepalives over each, data over the
/// ones the mode picks, and failover when one dies.
#[cfg(test)]
mod relay_tests {
    use super::*;
    use crate::core::copies::Redundancy;
    use crate::core::relay::{Inbound, Relay};
    use crate::testing::cluster::*;

    /// Node 2's second address.
    fn alt() -> SocketAddr {
        SocketAddr::from(([198, 51, 100, 2], 7112))
    }

    /// Nodes 1 and 2 with a session; node 1 knows two paths to node 2.
    fn pair(mode: PathMode) -> (Relay, Relay) {
        let mut a = node_with(1, 2, T0, key(1));
        let mut b = node_with(2, 2, T0, key(2));
        let id = peer_index(&a, "h2");
        a.set_path(id, 1, Some(alt()));
        a.redundancy = Redundancy {
            path_mode: mode,
            ..Redundancy::default()
        };
        meet(&mut [(1, &mut a), (2, &mut b)], T0);
        (a, b)
    }

    /// Node 1's due keepalives; those over a path in `alive` reach node 2
    /// and its echoes come back.
    fn pings(a: &mut Relay, b: &mut Relay, now: u64, alive: &[SocketAddr]) -> Vec<SocketAddr> {
        let mut out = [0u8; MAX_DATAGRAM];
        let mut went = Vec::new();
        while let Some((len, _, to)) = a.poll_hello(now, &mut out) {
            went.push(to);
            if !alive.contains(&to) {
                continue;
            }
            let mut d = out[..len].to_vec();
            let mut r = [0u8; MAX_DATAGRAM];
            if let Inbound::Reply { len, to: back, .. } =
                b.from_net(&mut d, endpoint(1), now, &mut r)
            {
                assert_eq!(back, endpoint(1));
                let mut echo = r[..len].to_vec();
                let mut sink = [0u8; MAX_DATAGRAM];
                let _ = a.from_net(&mut echo, to, now, &mut sink);
            }
        }
        went
    }

    /// Where a packet from node 1's interface goes at `now`.
    fn data_to(a: &mut Relay, now: u64) -> Vec<SocketAddr> {
        let mut out = batch();
        a.from_tun(&vrrp_from(1), now, &mut out);
        out.iter().map(|(_, to, _)| to).collect()
    }

    #[test]
    fn every_path_is_pinged_and_measured_on_its_own() {
        let (mut a, mut b) = pair(PathMode::All);
        let went = pings(&mut a, &mut b, T0 + 1000, &[endpoint(2)]);
        assert_eq!(
            went,
            vec![endpoint(2), alt()],
            "one ping per path per round"
        );
        let id = peer_index(&a, "h2");
        let paths: Vec<_> = a.paths(id, T0 + 1000).collect();
        assert_eq!(paths.len(), 2);
        assert_eq!(paths[0].0, Some(endpoint(2)));
        assert!(paths[0].1.pings_answered >= 1);
        assert_eq!(paths[1].1.recent_lost(), 1, "the ping over the dead path");
    }

    #[test]
    fn all_mode_sends_over_every_path_until_one_is_unreachable() {
        let (mut a, mut b) = pair(PathMode::All);
        pings(&mut a, &mut b, T0 + 1000, &[endpoint(2), alt()]);
        assert_eq!(data_to(&mut a, T0 + 1001), vec![endpoint(2), alt()]);
        // The second path dies: used until its reachability window ends.
        let mut t = T0 + 1000;
        while t < T0 + 6000 {
            t += 1000;
            pings(&mut a, &mut b, t, &[endpoint(2)]);
        }
        assert_eq!(data_to(&mut a, t + 1), vec![endpoint(2)]);
        // Back: used again from its first echo.
        t += 1000;
        pings(&mut a, &mut b, t, &[endpoint(2), alt()]);
        assert_eq!(data_to(&mut a, t + 1), vec![endpoint(2), alt()]);
    }

    #[test]
    fn best_mode_fails_over_within_a_keepalive_interval() {
        let (mut a, mut b) = pair(PathMode::Best);
        pings(&mut a, &mut b, T0 + 1000, &[endpoint(2), alt()]);
        assert_eq!(data_to(&mut a, T0 + 1001), vec![endpoint(2)]);
        // The first path dies; its next ping goes unanswered.
        pings(&mut a, &mut b, T0 + 2000, &[alt()]);
        assert_eq!(
            data_to(&mut a, T0 + 2010),
            vec![endpoint(2)],
            "not overdue yet"
        );
        assert_eq!(
            data_to(&mut a, T0 + 2051),
            vec![alt()],
            "on the other path 51 ms after the unanswered ping"
        );
        let health: Vec<_> = a
            .paths(peer_index(&a, "h2"), T0 + 2051)
            .map(|(_, _, h)| h)
            .collect();
        assert_eq!(health, vec![PathHealth::Suspect, PathHealth::Healthy]);
    }

    /// An echo of a ping sent to a path's old address does not vouch for
    /// the address the path was given since (a reload, a DNS change).
    #[test]
    fn an_echo_from_the_old_address_does_not_make_a_new_one_healthy() {
        let (mut a, mut b) = pair(PathMode::All);
        let id = peer_index(&a, "h2");
        let t = T0 + 1000;
        let mut q = [0u8; MAX_DATAGRAM];
        let mut echo = None;
        while let Some((len, _, to)) = a.poll_hello(t, &mut q) {
            if to != endpoint(2) {
                continue;
            }
            let mut d = q[..len].to_vec();
            let mut r = [0u8; MAX_DATAGRAM];
            if let Inbound::Reply { len, .. } = b.from_net(&mut d, endpoint(1), t, &mut r) {
                echo = Some(r[..len].to_vec());
            }
        }
        let mut echo = echo.expect("b echoed a's ping");
        let moved = SocketAddr::from(([203, 0, 113, 9], 7112));
        a.set_path(id, 0, Some(moved));
        let _ = a.from_net(&mut echo, endpoint(2), t + 1, &mut q);
        let (addr, _, health) = a.paths(id, t + 2).next().expect("path 0");
        assert_eq!(addr, Some(moved));
        assert_eq!(health, PathHealth::Unreachable, "never probed at {moved}");
    }

    #[test]
    fn a_dead_first_path_does_not_keep_a_session_from_forming() {
        let mut a = node_with(1, 2, T0, key(1));
        let mut b = node_with(2, 2, T0, key(2));
        let id = peer_index(&a, "h2");
        a.set_path(id, 0, Some(SocketAddr::from(([203, 0, 113, 2], 7112))));
        a.set_path(id, 1, Some(endpoint(2)));
        let mut out = [0u8; MAX_DATAGRAM];
        let mut t = T0;
        for _ in 0..4 {
            while let Some((len, _, to)) = a.poll_hello(t, &mut out) {
                if to != endpoint(2) {
                    continue;
                }
                let mut d = out[..len].to_vec();
                let mut r = [0u8; MAX_DATAGRAM];
                if let Inbound::Reply { len, .. } = b.from_net(&mut d, endpoint(1), t, &mut r) {
                    let mut resp = r[..len].to_vec();
                    let _ = a.from_net(&mut resp, endpoint(2), t, &mut out);
                }
            }
            t += 1000;
        }
        assert!(a.has_session(id), "the second path carried the handshake");
    }
}

/// Two relays, two paths each, the first dead, the second losing 20 % of
/// datagrams each way: adverts every 100 ms both ways for five simulated
/// minutes, with handshakes, renewals and keepalives running as in the
/// daemon. No gap of adverts may be longer than chance allows.
#[cfg(test)]
mod lossy_tests {
    use super::*;
    use crate::core::copies::Redundancy;
    use crate::core::relay::{Datagrams, Inbound, Relay};
    use crate::testing::cluster::*;

    fn alt(n: u8) -> SocketAddr {
        SocketAddr::from(([198, 51, 100, n], 7112))
    }

    struct Net {
        seed: u64,
        loss_per_mille: u64,
    }

    impl Net {
        fn lost(&mut self) -> bool {
            self.seed ^= self.seed << 13;
            self.seed ^= self.seed >> 7;
            self.seed ^= self.seed << 17;
            self.seed % 1000 < self.loss_per_mille
        }
    }

    /// Node n's relay with both paths to the other node m.
    fn relay(n: u8, m: u8) -> Relay {
        let mut r = node_with(n, 2, T0, key(n));
        let id = peer_index(&r, &format!("h{m}"));
        r.set_path(id, 1, Some(alt(m)));
        r.set_redundancy(Redundancy {
            copies: 2,
            spacing_ms: 5,
            path_mode: PathMode::All,
        });
        r
    }

    /// Delivers `d`, sent by node `n` to `to`, to the other relay `r`; what
    /// it answers goes back the same way. Returns whether data was
    /// injected.
    fn deliver(
        net: &mut Net,
        n: u8,
        to: SocketAddr,
        d: &[u8],
        r: &mut Relay,
        back: &mut Relay,
        now: u64,
    ) -> bool {
        if to.ip() != alt(3 - n).ip() || net.lost() {
            return false;
        }
        let mut buf = d.to_vec();
        let mut out = [0u8; MAX_DATAGRAM];
        match r.from_net(&mut buf, alt(n), now, &mut out) {
            Inbound::Inject { .. } => true,
            Inbound::Reply { len, to, .. } => {
                let reply = out[..len].to_vec();
                deliver(net, 3 - n, to, &reply, back, r, now);
                false
            }
            _ => false,
        }
    }

    #[test]
    fn one_dead_path_and_a_lossy_one_keep_the_adverts_flowing() {
        let mut net = Net {
            seed: 0x2545_f491_4f6c_dd1d,
            loss_per_mille: 200,
        };
        let (mut a, mut b) = (relay(1, 2), relay(2, 1));
        let mut batch = Datagrams::new(MAX_DATAGRAM + crate::core::relay::OVERHEAD, 4);
        let mut out = [0u8; MAX_DATAGRAM];
        let mut last_heard = [T0; 2];
        let mut worst = [0u64; 2];
        for step in 0..30_000u64 {
            let now = T0 + step * 10;
            for k in 0..2 {
                let (me, other) = if k == 0 {
                    (&mut a, &mut b)
                } else {
                    (&mut b, &mut a)
                };
                let n = k as u8 + 1;
                if me.poll_timeout().is_some_and(|t| t <= now) {
                    me.handle_timeout(now);
                }
                let mut sent = Vec::new();
                if me.poll_later(now, &mut batch) {
                    sent.extend(batch.iter().map(|(_, to, d)| (to, d.to_vec())));
                }
                while let Some((len, _, to)) = me.poll_hello(now, &mut out) {
                    sent.push((to, out[..len].to_vec()));
                }
                if step % 10 == 0 {
                    me.from_tun(&vrrp_from(n), now, &mut batch);
                    sent.extend(batch.iter().map(|(_, to, d)| (to, d.to_vec())));
                }
                for (to, d) in sent {
                    if deliver(&mut net, n, to, &d, other, me, now) {
                        let heard = &mut last_heard[1 - k];
                        worst[1 - k] = worst[1 - k].max(now - *heard);
                        *heard = now;
                    }
                }
            }
            // The first handshakes may take a few tries over the paths.
            if step == 500 {
                worst = [0; 2];
            }
        }
        assert!(
            worst.iter().all(|w| *w <= 600),
            "longest gaps between adverts heard (ms): {worst:?}"
        );
    }
}
