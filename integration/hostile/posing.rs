//! The attacks of issue 15 by a key holder on another member, the master:
//! its adverts under the key holder's own session (relabelled or not),
//! the master's session index at the backup with counters above the
//! master's and at the top of the counter space, handshakes as the master
//! made with the key holder's own key, the master's and the backup's
//! captured handshakes replayed, and a flood of genuine initiations.
//! With one cluster key the first two made a split brain and silenced the
//! master at the backup; each must now be refused under its reason while
//! the master's own adverts keep arriving.

use super::*;

/// What a key holder may not carry even as itself, sealed under its own
/// session with `h`: other nodes' sources (the receiver's own included),
/// protocols, ports and destinations no rule allows, and bytes that are
/// not IP.
pub(super) fn break_the_rules(lab: &Lab, evil: &Evil, atk: &mut Attacker, rng: &mut Rng, h: usize) {
    let me = overlay(SENDER);
    let other = if h == MASTER { BACKUP } else { MASTER };
    let takeover = advert(overlay(other), 255);
    let attacks: Vec<(&str, Vec<Vec<u8>>, &str)> = vec![
        (
            "priority-255 advert from another node's overlay address",
            vec![takeover.clone(); N],
            "wrong_inner_source",
        ),
        (
            "priority-255 advert from the receiver's own overlay address",
            vec![advert(overlay(h), 255); N],
            "wrong_inner_source",
        ),
        (
            "TCP SYN to port 22 of the receiver",
            vec![ipv4(me, overlay(h), 6, 64, &tcp_syn(22)); N],
            "disallowed",
        ),
        (
            "UDP to port 694 of the receiver",
            vec![ipv4(me, overlay(h), 17, 64, &udp(694, 694, b"x")); N],
            "disallowed",
        ),
        (
            "ICMP echo to the receiver",
            vec![ipv4(me, overlay(h), 1, 64, &icmp_echo()); N],
            "disallowed",
        ),
        (
            "VRRP unicast to another node's overlay address",
            vec![ipv4(me, overlay(other), 112, 255, &takeover[20..]); N],
            "disallowed",
        ),
        (
            "VRRP to a group that is not allowed (224.0.0.19)",
            vec![ipv4(me, Ipv4Addr::new(224, 0, 0, 19), 112, 255, &takeover[20..]); N],
            "disallowed",
        ),
        (
            "random bytes as the inner packet",
            (0..N)
                .map(|_| {
                    let n = rng.range(1, 300);
                    let mut p = rng.bytes(n);
                    // IP version 0 to 3: not IP whatever follows.
                    p[0] &= 0x3f;
                    p
                })
                .collect(),
            "bad_inner",
        ),
    ];
    for (what, packets, reason) in attacks {
        let sealed = evil.seal_all(h, &packets);
        atk.attack(lab, h, From::Member, what, &sealed, reason);
    }
}

/// (1) to (3): posing as the master in sessions, at the backup. `h1h2`
/// captures the underlay between them.
pub(super) fn pose_in_the_masters_session(
    lab: &Lab,
    evil: &Evil,
    atk: &mut Attacker,
    h1h2: &Capture,
    vip: &str,
) {
    let resign = advert(overlay(MASTER), 0);
    // (1) h1's priority-0 adverts sealed under h3's own session with h2:
    // relabelled as h1 they name a session h1 does not have there; left
    // as h3's they carry a source that is not h3's.
    let own: Vec<Vec<u8>> = evil.seal_all(BACKUP, &vec![resign.clone(); POSE]);
    let relabelled: Vec<Vec<u8>> = own.iter().map(|d| relabel(d, MASTER as u8)).collect();
    atk.attack(
        lab,
        BACKUP,
        From::Member,
        "h1's priority-0 adverts under its own session with h2, relabelled as h1",
        &relabelled,
        "no_session",
    );
    atk.attack(
        lab,
        BACKUP,
        From::Member,
        "h1's priority-0 adverts under its own session with h2",
        &own,
        "wrong_inner_source",
    );
    // (2) h1's current session index at h2, as the underlay shows it, with
    // counters above h1's: sealed with a key the member has, which is not
    // the h1→h2 session's (no member but h1 and h2 has that).
    let (index, top) = relay_datagrams(&h1h2.packets())
        .iter()
        .filter(|s| (s.src, s.dst) == (MASTER, BACKUP) && kind_of(&s.bytes) == Some(Kind::Data))
        .map(|s| index_and_counter(&s.bytes))
        .next_back()
        .expect("h1's adverts to h2 on the underlay");
    let injected_before = injected(lab, BACKUP);
    let forged: Vec<Vec<u8>> = (0..POSE as u64)
        .map(|k| {
            forge(
                header(Kind::Data, MASTER as u8, index, top + 1000 + k),
                &resign,
            )
        })
        .collect();
    atk.attack(
        lab,
        BACKUP,
        From::Member,
        "h1's priority-0 adverts in h1's session at h2, counters above h1's",
        &forged,
        "bad_auth",
    );
    // (3) One at the top of the counter space: it must not move h1's
    // window at h2, so h1's adverts keep being written into h2.
    let top_of_space = forge(
        header(Kind::Data, MASTER as u8, index, u64::MAX - 1),
        &resign,
    );
    let after_top = lab.capture(
        BACKUP,
        "mcast0",
        "in",
        "src host 10.250.0.1 and ip proto 112",
        "after_top",
    );
    atk.attack(
        lab,
        BACKUP,
        From::Member,
        "h1's priority-0 advert in h1's session at h2, counter 2^64-2",
        &[top_of_space],
        "bad_auth",
    );
    std::thread::sleep(Duration::from_secs(2));
    let masters_adverts = after_top.stop().len();
    // keepalived sends ten adverts a second; a few may be lost at the
    // edges of the capture, none may be refused.
    assert!(
        masters_adverts >= 10,
        "after the counter-top forgery h2 wrote only {masters_adverts} of h1's adverts in 2 s"
    );
    let injected_meanwhile = injected(lab, BACKUP) - injected_before;
    report(&format!(
        "hostile: h1's adverts written into h2 in the 2 s after the counter-top forgery: {masters_adverts} (h2 injected {injected_meanwhile} since the forgeries began)"
    ));
    assert_eq!(vip::holders(lab, vip), vec![MASTER]);
}

/// (4) to (6): posing as the master, and flooding, in handshakes.
pub(super) fn pose_in_handshakes(
    lab: &Lab,
    evil: &mut Evil,
    atk: &mut Attacker,
    rng: &mut Rng,
    h1h2: &Capture,
    cluster: &Cluster,
) {
    // (4) A handshake as h1 (h2 as h1's peer), made with h3's key: the
    // static key inside is not h1's.
    refill_handshake_budget();
    let key3 = evil.key.clone();
    let as_h1: Vec<Vec<u8>> = (0..HS)
        .map(|_| evil.initiation(MASTER, &key3, BACKUP))
        .collect();
    atk.attack(
        lab,
        BACKUP,
        From::Member,
        "initiations as h1 made with h3's key",
        &as_h1,
        "wrong_key",
    );
    let as_h2: Vec<Vec<u8>> = (0..HS)
        .map(|_| evil.initiation(BACKUP, &key3, MASTER))
        .collect();
    atk.attack(
        lab,
        MASTER,
        From::Member,
        "initiations as h2 made with h3's key",
        &as_h2,
        "wrong_key",
    );
    let mac2 = cluster.mac_for(BACKUP);
    let responses_as_h1: Vec<Vec<u8>> = (0..HS)
        .map(|_| handshake_junk(rng, Kind::Response, MASTER, Some(&mac2)))
        .collect();
    atk.attack(
        lab,
        BACKUP,
        From::Member,
        "responses as h1 with the right MAC, answering nothing h2 asked",
        &responses_as_h1,
        "no_session",
    );

    // (5) The genuine handshakes between h1 and h2 from the underlay,
    // replayed: the initiations are not newer than the last accepted, the
    // responses answer no outstanding initiation. Each stale initiation
    // makes its receiver start a handshake of its own, which the replayer
    // cannot answer and the real peer does: one direction at a time.
    // Relays that start one after the other answer the later one's
    // initiation only: a replay of it makes its receiver start one the
    // other way, which the next round replays.
    let mut replayed: Vec<(usize, usize)> = Vec::new();
    for _ in 0..2 {
        refill_handshake_budget();
        let hs = handshakes(&relay_datagrams(&h1h2.packets()));
        let Some((from, to)) = [(MASTER, BACKUP), (BACKUP, MASTER)]
            .into_iter()
            .filter(|d| !replayed.contains(d))
            .find(|d| hs.answered.iter().any(|(f, t, _)| (*f, *t) == *d))
        else {
            break;
        };
        let inits: Vec<Vec<u8>> = hs
            .answered
            .iter()
            .filter(|(f, t, _)| (*f, *t) == (from, to))
            .map(|(_, _, d)| d.clone())
            .cycle()
            .take(HS)
            .collect();
        let what = format!("h{from}'s captured initiations to h{to}, replayed");
        atk.attack(lab, to, From::Member, &what, &inits, "stale_handshake");
        replayed.push((from, to));
        // The handshake the stale one makes `to` start, and its answer.
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(
        replayed.len(),
        2,
        "answered initiations between h1 and h2 in both directions: {replayed:?}"
    );
    let hs = handshakes(&relay_datagrams(&h1h2.packets()));
    std::thread::sleep(Duration::from_millis(500));
    for (from, to) in [(BACKUP, MASTER), (MASTER, BACKUP)] {
        let resps: Vec<Vec<u8>> = hs
            .responses
            .iter()
            .filter(|(f, t, _)| (*f, *t) == (from, to))
            .map(|(_, _, d)| d.clone())
            .collect();
        if resps.is_empty() {
            continue;
        }
        let what = format!("h{from}'s captured responses to h{to}, replayed");
        atk.attack(lab, to, From::Member, &what, &resps, "no_session");
    }

    // (6) A flood of genuine initiations as h3, each from a fresh core
    // with a newer timestamp than the last: the first of each second get
    // an answer, the rest are refused before any Diffie-Hellman, and h3's
    // budget is its own, so h1 and h2 keep their sessions with each other.
    refill_handshake_budget();
    let flood_targets = [MASTER, BACKUP];
    let befores: Vec<HashMap<String, u64>> =
        flood_targets.iter().map(|&h| net_drops(lab, h)).collect();
    let answers_before: Vec<usize> = flood_targets.iter().map(|&h| evil.responses(h)).collect();
    let flood_started = Instant::now();
    for _ in 0..HS_FLOOD {
        for &h in &flood_targets {
            let d = evil.initiation(SENDER, &key3, h);
            evil.sock
                .send_to(&d, underlay(h))
                .unwrap_or_else(|e| panic!("send to h{h}: {e}"));
        }
    }
    let flood_secs = flood_started.elapsed().as_secs_f64();
    for (k, &h) in flood_targets.iter().enumerate() {
        let g = settled_drops(lab, h, &befores[k]);
        let answered = evil.responses(h) - answers_before[k];
        let want: HashMap<String, u64> = [(
            "handshake_rate_limited".to_string(),
            (HS_FLOOD - answered) as u64,
        )]
        .into_iter()
        .collect();
        assert_eq!(
            g, want,
            "handshake flood at h{h}: {answered} answered; drops counted"
        );
        let budget = 10.0 + 10.0 * (flood_secs + 1.0);
        assert!(
            answered > 0 && answered as f64 <= budget,
            "handshake flood at h{h}: {answered} of {HS_FLOOD} answered in {flood_secs:.2} s"
        );
        atk.record(
            h,
            format!("key holder: genuine initiations as h3, fresh core each, in {flood_secs:.2} s ({answered} answered)"),
            HS_FLOOD,
            "handshake_rate_limited",
        );
    }
    for (h, peer) in [(MASTER, "h2"), (BACKUP, "h1")] {
        let st = lab.relay_status(h);
        let p = st["peers"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == peer))
            .unwrap_or_else(|| panic!("h{h}'s status has no peer {peer}: {st}"));
        assert!(
            p["reachable"] == true && p["confirmed"] == true,
            "after the handshake flood h{h} no longer reaches {peer}: {p}"
        );
    }
}
