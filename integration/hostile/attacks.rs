//! The attack lists: what a stranger throws at a relay (junk, forgeries,
//! handshakes it cannot sign, altered copies of captured datagrams), the
//! altered copies only authentication can refuse, and the first-fragment
//! attack of a key holder through each preset with port rules.

use super::*;

/// One attack: what it is, where it comes from, its datagrams, and the
/// drop reason each of them must be counted under.
pub(super) type Attack = (&'static str, From, Vec<Vec<u8>>, &'static str);

/// What a stranger throws at relay `h`: junk, forgeries, handshakes it
/// cannot sign, and copies of the datagrams h3 sent `h` (`a`, `b`) and
/// another member (`elsewhere`) in every altered form. `mac` is `h`'s
/// handshake MAC key, which anyone can compute from its public key.
pub(super) fn outsider_attacks(
    rng: &mut Rng,
    h: usize,
    a: &[Vec<u8>],
    b: &[Vec<u8>],
    elsewhere: &[Vec<u8>],
    mac: &MacKey,
) -> Vec<Attack> {
    let (index, _) = index_and_counter(&a[0]);
    let top = b.iter().map(|d| index_and_counter(d).1).max().unwrap_or(0);
    let each =
        |f: &mut dyn FnMut(&[u8]) -> Vec<u8>| -> Vec<Vec<u8>> { a.iter().map(|d| f(d)).collect() };
    let short = (0..JUNK)
        .map(|_| {
            let n = rng.range(1, HEADER_LEN);
            let mut d = rng.bytes(n);
            // The right version, so the length is what refuses it.
            d[0] = 2;
            d
        })
        .collect();
    let bad_version = (0..JUNK)
        .map(|_| {
            let n = rng.range(HEADER_LEN, 1400);
            let mut d = rng.bytes(n);
            d[0] = 3 + rng.below(253) as u8;
            if rng.below(4) == 0 {
                d[0] = 1; // the retired version 1
            }
            d
        })
        .collect();
    let strangers = (0..JUNK)
        .map(|i| {
            let sender = if i % 5 == 0 {
                overlay(h) // the receiver's own identity
            } else {
                Ipv4Addr::new(10, 250, 1 + rng.below(200) as u8, rng.below(256) as u8)
            };
            let mut d = vec![0u8; HEADER_LEN];
            let mut hdr = header(Kind::Data, 0, rng.next() as u32, rng.next() >> 8);
            hdr.prefix.sender = u32::from(sender);
            hdr.encode(&mut d);
            d.extend(rng.bytes(60));
            d
        })
        .collect();
    let mut forged = |base: u64| -> Vec<Vec<u8>> {
        (0..JUNK)
            .map(|i| {
                let mut d = vec![0u8; HEADER_LEN];
                header(Kind::Data, SENDER as u8, index, base + i as u64).encode(&mut d);
                let n = rng.range(TAG_LEN, 200);
                d.extend(rng.bytes(n));
                d
            })
            .collect()
    };
    let forged_here = forged(top + 1000);
    let forged_spoofed = forged(top + 2000);
    let random_index = (0..JUNK)
        .map(|_| {
            let mut d = vec![0u8; HEADER_LEN];
            let kind = if rng.below(2) == 0 {
                Kind::Data
            } else {
                Kind::Keepalive
            };
            header(kind, SENDER as u8, rng.next() as u32, rng.next() >> 8).encode(&mut d);
            let n = rng.range(TAG_LEN, 200);
            d.extend(rng.bytes(n));
            d
        })
        .collect();
    let junk_initiations = (0..JUNK)
        .map(|_| handshake_junk(rng, Kind::Initiation, SENDER, None))
        .collect();
    let junk_responses = (0..JUNK)
        .map(|_| handshake_junk(rng, Kind::Response, SENDER, None))
        .collect();
    // Claiming h4, whose own handshakes with h1 and h2 are rare, so that
    // its budget is this attack's alone.
    let signed_junk = (0..HS)
        .map(|_| handshake_junk(rng, Kind::Initiation, SPARE, Some(mac)))
        .collect();
    let forgery = "forged as h3: its session index here, fresh counter, random body and tag";
    vec![
        (
            "random bytes shorter than a header, version 2",
            From::Outsider,
            short,
            "malformed",
        ),
        (
            "random bytes, any length, another version",
            From::Outsider,
            bad_version,
            "unknown_version",
        ),
        (
            "well-formed header, unknown sender (or the receiver's own)",
            From::Outsider,
            strangers,
            "unknown_sender",
        ),
        (forgery, From::Outsider, forged_here, "bad_auth"),
        (forgery, From::Spoofed, forged_spoofed, "bad_auth"),
        (
            "data and keepalives as h3 with random session indices",
            From::Outsider,
            random_index,
            "no_session",
        ),
        (
            "captured, session index bit flipped",
            From::Outsider,
            each(&mut |d| with_header(d, |x| x.receiver ^= 1 << 17)),
            "no_session",
        ),
        (
            "captured on its way to another member (its session index there)",
            From::Outsider,
            elsewhere.to_vec(),
            "no_session",
        ),
        ("replayed as captured", From::Outsider, a.to_vec(), "replay"),
        ("replayed as captured", From::Spoofed, a.to_vec(), "replay"),
        (
            "replayed twice each",
            From::Outsider,
            [b, b].concat(),
            "replay",
        ),
        (
            "captured, one bit flipped after the header",
            From::Outsider,
            each(&mut |d| flip_bit(d, rng.range(HEADER_LEN, d.len()), rng.below(8) as u32)),
            "replay",
        ),
        (
            "captured, truncated after the header",
            From::Outsider,
            each(&mut |d| d[..rng.range(HEADER_LEN, d.len())].to_vec()),
            "replay",
        ),
        (
            "captured, truncated into the header",
            From::Outsider,
            each(&mut |d| d[..rng.range(0, HEADER_LEN)].to_vec()),
            "malformed",
        ),
        (
            "captured, counter bit flipped",
            From::Outsider,
            each(&mut |d| with_header(d, |x| x.counter ^= 1 << 40)),
            "bad_auth",
        ),
        (
            "captured, kind bit flipped",
            From::Outsider,
            // Bits 3 to 6 make a kind no relay knows (1 to 5 are taken):
            // bit 2 of a data datagram's kind made it a view (5), which
            // opens under the session and is dropped as a replay.
            each(&mut |d| flip_bit(d, 1, 3 + rng.below(4) as u32)),
            "malformed",
        ),
        (
            "captured, version bit flipped",
            From::Outsider,
            each(&mut |d| flip_bit(d, 0, rng.below(8) as u32)),
            "unknown_version",
        ),
        (
            "captured, sender bit flipped",
            From::Outsider,
            each(&mut |d| flip_bit(d, 7, 6)),
            "unknown_sender",
        ),
        (
            // Bits 2 to 7 of the flags; byte 3 is the copy number now.
            "captured, reserved flag bit flipped",
            From::Outsider,
            each(&mut |d| flip_bit(d, 2, 2 + rng.below(6) as u32)),
            "malformed",
        ),
        (
            // No sender makes more than 32 copies of a packet.
            "captured, copy number out of range",
            From::Outsider,
            each(&mut |d| {
                let mut out = d.to_vec();
                out[3] = (32 + rng.below(224)) as u8;
                out
            }),
            "malformed",
        ),
        (
            "captured, plaintext flag set",
            From::Outsider,
            each(&mut |d| flip_bit(d, 2, 0)),
            "mode_mismatch",
        ),
        (
            "initiations as h3, random bytes (no MAC for this receiver)",
            From::Outsider,
            junk_initiations,
            "bad_mac",
        ),
        (
            "responses as h3, random bytes (no MAC for this receiver)",
            From::Outsider,
            junk_responses,
            "bad_mac",
        ),
        (
            "initiations as h4 with the right MAC, random Noise bytes",
            From::Outsider,
            signed_junk,
            "bad_auth",
        ),
    ]
}

/// Altered copies of datagrams a relay has never received: only
/// authentication can refuse them.
pub(super) fn undelivered_copies(
    rng: &mut Rng,
    b: &[Vec<u8>],
) -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let mut each = |f: &mut dyn FnMut(&mut Rng, &[u8]) -> Vec<u8>| -> Vec<Vec<u8>> {
        b.iter().map(|d| f(rng, d)).collect()
    };
    vec![
        (
            "undelivered, one bit flipped in the body",
            each(&mut |r, d| {
                flip_bit(d, r.range(HEADER_LEN, d.len() - TAG_LEN), r.below(8) as u32)
            }),
        ),
        (
            "undelivered, one bit flipped in the tag",
            each(&mut |r, d| flip_bit(d, r.range(d.len() - TAG_LEN, d.len()), r.below(8) as u32)),
        ),
        (
            "undelivered, frame flag set (the header is authenticated)",
            each(&mut |_, d| flip_bit(d, 2, 1)),
        ),
        (
            "undelivered, truncated after the header",
            each(&mut |r, d| d[..r.range(HEADER_LEN, d.len())].to_vec()),
        ),
    ]
}

/// The IPv6 first-fragment attack through each preset with port rules;
/// returns the packets it had written into h2 on purpose (the positive
/// controls), which the capture check then allows.
pub(super) fn fragments_past_the_port_rules(
    lab: &mut Lab,
    evil: &Evil,
    atk: &mut Attacker,
) -> HashMap<Vec<u8>, usize> {
    let h = BACKUP;
    let v6_of = |n: usize| addrs(n).v6.expect("an overlay IPv6 address");
    let all_nodes: Ipv6Addr = "ff02::1".parse().expect("an IPv6 address");
    let targets = [
        ("its overlay IPv6", v6_of(SENDER), v6_of(h)),
        ("its link-local", link_local(SENDER), link_local(h)),
        ("ff02::1", link_local(SENDER), all_nodes),
    ];
    let mut written = Vec::new();
    for (preset, port) in [("heartbeat", 694u16), ("corosync", 5405), ("spread", 4803)] {
        lab.configure_relays(RelayOptions {
            presets: vec!["vrrp", preset],
            max_clock_skew: Some(600.0),
            ..RelayOptions::default()
        });
        let line = lab.reload_relay(h);
        assert!(
            line.contains("kept their state") && line.contains(preset),
            "h{h} did not take the {preset} preset: {line}"
        );
        let mut packets = Vec::new();
        for (_, src, dst) in targets {
            for dport in [53, 161, 111] {
                packets.push(first_fragment_v6(src, dst, port, dport, 8));
            }
        }
        let what = format!(
            "{preset} preset: IPv6 first fragments of UDP to ports 53, 161, 111 of h2's overlay IPv6, link-local and ff02::1"
        );
        let sealed = evil.seal_all(h, &packets);
        atk.attack(lab, h, From::Member, &what, &sealed, "disallowed");
        let v4 = v4_fragment(
            overlay(SENDER),
            overlay(h),
            17,
            0,
            true,
            &udp(port, 53, &[0x42; 24]),
        );
        let what = format!("{preset} preset: IPv4 first fragment of UDP to port 53 of h2");
        let sealed = evil.seal_all(h, &[v4]);
        atk.attack(lab, h, From::Member, &what, &sealed, "disallowed");
        let cut: Vec<Vec<u8>> = targets
            .iter()
            .map(|(_, src, dst)| first_fragment_v6(*src, *dst, port, 53, 4))
            .collect();
        let what = format!("{preset} preset: IPv6 first fragments cut inside the UDP header");
        let sealed = evil.seal_all(h, &cut);
        atk.attack(lab, h, From::Member, &what, &sealed, "bad_inner");
        // The positive control: the preset's own port gets through, so
        // the refusals above are the port rule's.
        let control = first_fragment_v6(link_local(SENDER), all_nodes, port, port, 8);
        let before = packets_in(lab, h, SENDER);
        let sealed = evil.seal_all(h, std::slice::from_ref(&control));
        blast(&evil.sock, h, &sealed);
        lab::wait_for(
            &format!("h{h} to inject a first fragment to the {preset} port"),
            Duration::from_secs(5),
            || (packets_in(lab, h, SENDER) == before + 1).then_some(()),
        );
        written.push(control);
    }
    lab.configure_relays(RelayOptions {
        max_clock_skew: Some(600.0),
        ..RelayOptions::default()
    });
    let line = lab.reload_relay(h);
    assert!(
        line.contains("kept their state"),
        "h{h} did not reload: {line}"
    );
    capture::multiset(&written)
}
