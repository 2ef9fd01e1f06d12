//! A cluster member gone bad: a real relay core holding h3's own node key
//! and the cluster's public keys, on h3's underlay address in place of
//! h3's relay, with sessions with every peer that a thread keeps up. It
//! seals whatever it is told under those sessions, and makes fresh cores
//! for handshakes as itself or as another member with its own key: what
//! a key holder can do, no more.

use super::*;

/// The two clocks a core is told, read off this process.
#[derive(Clone, Copy)]
pub(super) struct Clock(Instant);

impl Clock {
    pub(super) fn now(&self) -> Now {
        Now::new(self.0.elapsed().as_millis() as u64, wall_ms())
    }
}

/// The cluster as a member knows it from the cluster file: everyone's
/// public key.
#[derive(Clone)]
pub(super) struct Cluster {
    pub(super) publics: HashMap<usize, PublicKey>,
}

impl Cluster {
    pub(super) fn read(lab: &mut Lab) -> Cluster {
        let publics = lab
            .host_ids()
            .map(|h| {
                let text = lab.public_key(h);
                let key = PublicKey::parse(&text)
                    .unwrap_or_else(|e| panic!("h{h}'s public key {text:?}: {e}"));
                (h, key)
            })
            .collect();
        Cluster { publics }
    }

    /// A relay core that calls itself host `me`, holds `key` and knows
    /// `peers` with their real public keys and endpoints.
    pub(super) fn relay_as(&self, me: usize, key: PrivateKey, peers: &[usize], run: u64) -> Relay {
        let mut r = Relay::new(RelayParams {
            local: addrs(me),
            link: Link::Ip,
            prefix_len: 24,
            peers: peers
                .iter()
                .map(|&p| PeerSpec {
                    name: format!("h{p}"),
                    addrs: addrs(p),
                    public_key: Some(self.publics[&p]),
                })
                .collect(),
            allow: fixture::allow(),
            security: Security::Authenticated(key),
            run,
            max_clock_skew_ms: 10_000,
            inject_rate_limit: 0,
            keepalive_ms: 1000,
            quorum: false,
            redundancy: mcast_relay::core::Redundancy::default(),
            vips: Vec::new(),
        });
        for &p in peers {
            r.set_endpoint(peer_of(p), Some(SocketAddr::V4(underlay(p))));
        }
        r
    }

    pub(super) fn mac_for(&self, h: usize) -> MacKey {
        MacKey::for_receiver(&self.publics[&h])
    }
}

/// What the key holder's receive thread shares with the attacks.
pub(super) struct EvilState {
    pub(super) relay: Relay,
    /// Handshake responses received, by the host that sent them.
    pub(super) responses: HashMap<usize, usize>,
}

/// A process on h3 that holds h3's own node key and runs the protocol
/// itself in place of h3's relay: a real core, with real sessions with
/// every peer, that seals whatever it is told under them. A thread answers
/// the peers' handshakes and keepalives, so the sessions stay up.
pub(super) struct Evil {
    pub(super) sock: Arc<UdpSocket>,
    pub(super) state: Arc<Mutex<EvilState>>,
    pub(super) stop: Arc<AtomicBool>,
    pub(super) pump: Option<JoinHandle<()>>,
    pub(super) clock: Clock,
    pub(super) key: PrivateKey,
    pub(super) cluster: Cluster,
    /// The wall clock of the last initiation made by a fresh core: each
    /// must be newer than the one before to be more than stale.
    pub(super) last_wall: i64,
}

pub(super) fn run_id() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        | 1
}

impl Evil {
    pub(super) fn start(lab: &Lab, cluster: &Cluster, peers: &[usize]) -> Evil {
        let key = mcast_relay::io::keyfile::load(&lab.key_path(SENDER))
            .unwrap_or_else(|e| panic!("h3's key file: {e}"));
        let relay = cluster.relay_as(SENDER, key.clone(), peers, run_id());
        let sock = Arc::new(bind_in(&lab.ns(SENDER), underlay(SENDER)));
        sock.set_read_timeout(Some(Duration::from_millis(5)))
            .expect("SO_RCVTIMEO");
        let state = Arc::new(Mutex::new(EvilState {
            relay,
            responses: HashMap::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let clock = Clock(Instant::now());
        let pump = {
            let (sock, state, stop) = (sock.clone(), state.clone(), stop.clone());
            std::thread::spawn(move || pump(&sock, &state, &stop, clock))
        };
        Evil {
            sock,
            state,
            stop,
            pump: Some(pump),
            clock,
            key,
            cluster: cluster.clone(),
            last_wall: 0,
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, EvilState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn has_sessions(&self, peers: &[usize]) -> bool {
        let s = self.lock();
        peers.iter().all(|&p| s.relay.has_session(peer_of(p)))
    }

    /// Seals `payload` as `kind` under h3's own session with `to`, with
    /// none of the checks h3's relay would make.
    pub(super) fn seal(&self, to: usize, kind: Kind, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; payload.len() + HEADER_LEN + TAG_LEN];
        let now = self.clock.now();
        let len = self
            .lock()
            .relay
            .seal_unchecked(peer_of(to), kind, payload, now.mono_ms, &mut out)
            .unwrap_or_else(|r| panic!("the key holder cannot seal for h{to}: {r}"));
        out.truncate(len);
        out
    }

    pub(super) fn seal_all(&self, to: usize, packets: &[Vec<u8>]) -> Vec<Vec<u8>> {
        packets
            .iter()
            .map(|p| self.seal(to, Kind::Data, p))
            .collect()
    }

    /// Seals `packets` as data for `to` and sends them, holding the core
    /// all the while: no keepalive is sealed in between, whose newer
    /// counter would leave the rest behind the replay window. Returns how
    /// long the sending took.
    pub(super) fn send_inner(&self, to: usize, packets: &[Vec<u8>]) -> Duration {
        let mut s = self.lock();
        let now = self.clock.now();
        let sealed: Vec<Vec<u8>> = packets
            .iter()
            .map(|p| {
                let mut out = vec![0u8; p.len() + HEADER_LEN + TAG_LEN];
                let len = s
                    .relay
                    .seal_unchecked(peer_of(to), Kind::Data, p, now.mono_ms, &mut out)
                    .unwrap_or_else(|r| panic!("the key holder cannot seal for h{to}: {r}"));
                out.truncate(len);
                out
            })
            .collect();
        let started = Instant::now();
        blast(&self.sock, to, &sealed);
        let took = started.elapsed();
        drop(s);
        took
    }

    pub(super) fn responses(&self, from: usize) -> usize {
        self.lock().responses.get(&from).copied().unwrap_or(0)
    }

    /// A genuine handshake initiation to `to` from a fresh core that calls
    /// itself `me` and holds `key`, with a timestamp newer than the last
    /// one made here.
    pub(super) fn initiation(&mut self, me: usize, key: &PrivateKey, to: usize) -> Vec<u8> {
        let wall = wall_ms().max(self.last_wall + 1);
        self.last_wall = wall;
        let mut r = self.cluster.relay_as(me, key.clone(), &[to], run_id());
        let mut out = [0u8; 512];
        let (len, peer, _) = r
            .poll_hello(Now::new(0, wall), &mut out)
            .expect("a fresh core starts a handshake");
        assert_eq!(peer, peer_of(to));
        assert_eq!(len, INITIATION_LEN);
        out[..len].to_vec()
    }
}

impl Drop for Evil {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.pump.take() {
            let _ = t.join();
        }
    }
}

/// The key holder's receive loop: every datagram into its core, every
/// answer and due handshake or keepalive out, to the peer's endpoint.
pub(super) fn pump(sock: &UdpSocket, state: &Mutex<EvilState>, stop: &AtomicBool, clock: Clock) {
    let mut buf = [0u8; 2048];
    let mut out = [0u8; 2048];
    let send = |d: &[u8], to: Option<SocketAddr>| {
        if let Some(to) = to {
            let _ = sock.send_to(d, to);
        }
    };
    while !stop.load(Ordering::Relaxed) {
        let got = sock.recv_from(&mut buf).ok();
        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
        let now = clock.now();
        if let Some((n, from)) = got {
            if let Ok(p) = Prefix::parse(&buf[..n])
                && p.kind == Kind::Response
            {
                let host = (p.sender & 0xff) as usize;
                *s.responses.entry(host).or_default() += 1;
            }
            if let Inbound::Reply { len, peer, .. } =
                s.relay.from_net(&mut buf[..n], from, now, &mut out)
            {
                send(&out[..len], s.relay.endpoint(peer));
            }
        }
        if s.relay.poll_timeout().is_some_and(|t| t <= now.mono_ms) {
            s.relay.handle_timeout(now);
        }
        while let Some((len, peer, _)) = s.relay.poll_hello(now, &mut out) {
            send(&out[..len], s.relay.endpoint(peer));
        }
        while s.relay.poll_event().is_some() {}
    }
}
