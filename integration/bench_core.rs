//! Micro-benchmarks of the sans-IO core, with criterion: what one packet
//! costs the relay's own logic, without system calls. No root needed.
//!
//! `cargo bench --bench core`:
//! * `seal`: a VRRP advert from the interface, classified and sealed
//!   (64- and 1400-byte payloads) for one peer, and for the 15 peers of a
//!   16-host cluster (one seal per peer, each under its own session);
//! * `seal_open`: the same, then opened, checked and accepted by a peer;
//! * `classify_inbound`: the receive-side inner-packet check alone, for an
//!   IP packet (tun) and an Ethernet frame (tap);
//! * `decide_drop`: the forwarding decision for a local packet `[allow]`
//!   refuses (no crypto), and a junk datagram from the network;
//! * `handshake`: one Noise IK handshake, initiation written, read and
//!   answered, response read (what a rekey or a restart costs both ends);
//! * `fanout`: the system calls that send one 112-byte datagram to 15
//!   peers (UDP sockets on loopback, drained between rounds): one
//!   sendmmsg, as the daemon does, against one sendto per peer.

use criterion::{Criterion, criterion_group, criterion_main};
use mcast_relay::core::{Inbound, Link, Outbound, PathMode, Redundancy};

use mcast_relay::testing::cluster::{
    T0, addrs, batch, endpoint, key, meet, node, node_link, node_on,
};
use mcast_relay::testing::packets;

/// An IPv4 packet from node 1's overlay address to the VRRP group,
/// `payload` bytes of upper-layer data.
fn advert(payload: usize) -> Vec<u8> {
    let mut body = vec![0u8; payload];
    body[..4].copy_from_slice(&[0x31, 51, 200, 1]);
    packets::vrrp_advert_from_node1(&body)
}

fn frame(packet: &[u8]) -> Vec<u8> {
    let head = [
        0x01, 0x00, 0x5e, 0x00, 0x00, 0x12, 0x02, 0x6d, 10, 250, 0, 1, 0x08, 0x00,
    ];
    [&head[..], packet].concat()
}

fn core(c: &mut Criterion) {
    for size in [64usize, 1400] {
        let packet = advert(size);
        // No injection rate limit and a clock that stands still: however
        // many iterations criterion runs, the session neither expires nor
        // runs out of budget (a moving clock would end it after 180 s of
        // simulated time, and every later iteration would measure the
        // no-session drop instead).
        let mut a = node_link(1, 2, T0, key(1), 0, Link::Ip);
        let mut b = node_link(2, 2, T0, key(2), 0, Link::Ip);
        meet(&mut [(1, &mut a), (2, &mut b)], T0);
        let mut sealed = batch();
        let mut work = vec![0u8; 2048];
        let mut out = vec![0u8; 2048];
        let now = T0;
        c.bench_function(&format!("seal/{size}"), |bench| {
            bench.iter(|| {
                let r = a.from_tun(&packet, now, &mut sealed);
                assert_eq!(sealed.len(), 1, "{r:?}");
            })
        });
        c.bench_function(&format!("seal_open/{size}"), |bench| {
            bench.iter(|| {
                let Outbound::Send { .. } = a.from_tun(&packet, now, &mut sealed) else {
                    panic!("not sealed");
                };
                let Some((_, _, d)) = sealed.get(0) else {
                    panic!("nothing sealed for node 2");
                };
                let len = d.len();
                work[..len].copy_from_slice(d);
                let r = b.from_net(&mut work[..len], endpoint(1), now, &mut out);
                assert!(matches!(r, Inbound::Inject { .. }), "{r:?}");
            })
        });
    }

    // node.redundancy = 2 (no spacing, so both copies are in the batch):
    // the cost of the second seal and of recognising the duplicate.
    let packet = advert(64);
    let mut a = node_link(1, 2, T0, key(1), 0, Link::Ip);
    let mut b = node_link(2, 2, T0, key(2), 0, Link::Ip);
    meet(&mut [(1, &mut a), (2, &mut b)], T0);
    a.set_redundancy(Redundancy {
        copies: 2,
        spacing_ms: 0,
        path_mode: PathMode::All,
    });
    let mut sealed = batch();
    let mut work = vec![0u8; 2048];
    let mut out = vec![0u8; 2048];
    c.bench_function("seal_open/64_redundancy_2", |bench| {
        bench.iter(|| {
            a.from_tun(&packet, T0, &mut sealed);
            assert_eq!(sealed.len(), 2);
            for (k, (_, _, d)) in sealed.iter().enumerate() {
                let len = d.len();
                work[..len].copy_from_slice(d);
                let r = b.from_net(&mut work[..len], endpoint(1), T0, &mut out);
                let first = matches!(r, Inbound::Inject { .. });
                assert_eq!(first, k == 0, "{r:?}");
            }
        })
    });

    let mut cluster: Vec<_> = (1..=16)
        .map(|n| node_link(n, 16, T0, key(n), 0, Link::Ip))
        .collect();
    {
        let mut all: Vec<(u8, &mut _)> = cluster
            .iter_mut()
            .enumerate()
            .map(|(i, r)| (i as u8 + 1, r))
            .collect();
        meet(&mut all, T0);
    }
    let mut sealed = batch();
    c.bench_function("seal/64_to_15_peers", |bench| {
        bench.iter(|| {
            let r = cluster[0].from_tun(&packet, T0, &mut sealed);
            assert_eq!(sealed.len(), 15, "{r:?}");
        })
    });

    let mut out = vec![0u8; 2048];
    let mut reply = vec![0u8; 2048];
    c.bench_function("handshake/ik_both_ends", |bench| {
        bench.iter_batched(
            || (node(1), node(2)),
            |(mut a, mut b)| {
                let (len, _, _) = a.poll_hello(T0, &mut out).expect("an initiation");
                let Inbound::Reply { len, .. } =
                    b.from_net(&mut out[..len], endpoint(1), T0, &mut reply)
                else {
                    panic!("not answered");
                };
                let r = a.from_net(&mut reply[..len], endpoint(2), T0, &mut out);
                assert_eq!(r, Inbound::Handled);
            },
            criterion::BatchSize::SmallInput,
        )
    });

    let tun = node_on(2, Link::Ip);
    // Node 2's first peer: node 1.
    let h1 = addrs(1).peer_id();
    c.bench_function("classify_inbound/ip", |bench| {
        bench.iter(|| tun.classify_inbound(h1, &packet))
    });
    let f = frame(&packet);
    let tap = node_on(2, Link::Ethernet);
    c.bench_function("classify_inbound/frame", |bench| {
        bench.iter(|| tap.classify_inbound(h1, &f))
    });

    let mut a = node_on(1, Link::Ip);
    let mut tcp = packet.clone();
    tcp[9] = 6;
    let mut sealed = batch();
    c.bench_function("decide_drop/local_disallowed", |bench| {
        bench.iter(|| a.from_tun(&tcp, T0, &mut sealed))
    });
    let junk = vec![0xa5u8; 300];
    let mut work = junk.clone();
    let mut out = vec![0u8; 2048];
    c.bench_function("decide_drop/junk_datagram", |bench| {
        bench.iter(|| a.from_net(&mut work, endpoint(3), T0, &mut out))
    });
}

/// One datagram to 15 listeners on loopback: the daemon's sendmmsg
/// against a sendto per peer.
fn fanout(c: &mut Criterion) {
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;
    let tx = UdpSocket::bind("127.0.0.1:0").expect("bind on loopback");
    let rx: Vec<UdpSocket> = (0..15)
        .map(|_| {
            let s = UdpSocket::bind("127.0.0.1:0").expect("bind on loopback");
            s.set_nonblocking(true).expect("nonblocking");
            s
        })
        .collect();
    let addrs: Vec<_> = rx
        .iter()
        .map(|s| s.local_addr().expect("address"))
        .collect();
    let datagrams: Vec<[u8; 112]> = (0..15).map(|i| [i as u8; 112]).collect();
    // Empties the listeners' queues so neither variant meets full buffers.
    let drain = || {
        let mut buf = [0u8; 256];
        for s in &rx {
            while s.recv(&mut buf).is_ok() {}
        }
    };
    let mut f = mcast_relay::io::Fanout::with_capacity(addrs.len());
    c.bench_function("fanout/15_peers_sendmmsg", |bench| {
        bench.iter_batched(
            drain,
            |()| {
                let each = addrs
                    .iter()
                    .zip(&datagrams)
                    .enumerate()
                    .map(|(i, (a, d))| (i, *a, &d[..]));
                f.send(tx.as_raw_fd(), each, |_, _, r| assert!(r.is_ok()))
            },
            criterion::BatchSize::PerIteration,
        )
    });
    c.bench_function("fanout/15_peers_sendto_each", |bench| {
        bench.iter_batched(
            drain,
            |()| {
                for (a, d) in addrs.iter().zip(&datagrams) {
                    tx.send_to(d, a).expect("send on loopback");
                }
            },
            criterion::BatchSize::PerIteration,
        )
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = core, fanout
}
criterion_main!(benches);
