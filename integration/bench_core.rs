//! Micro-benchmarks of the sans-IO core, with criterion: what one packet
//! costs the relay's own logic, without system calls. No root needed.
//!
//! `cargo bench --bench core`:
//! * `seal`: a VRRP advert from the interface, classified and sealed
//!   (64- and 1400-byte payloads);
//! * `seal_open`: the same, then opened, checked and accepted by a peer;
//! * `classify_inbound`: the receive-side inner-packet check alone, for an
//!   IP packet (tun) and an Ethernet frame (tap);
//! * `decide_drop`: the forwarding decision for a local packet `[allow]`
//!   refuses (no crypto), and a junk datagram from the network;
//! * `fanout`: the system calls that send one 112-byte datagram to 15
//!   peers (UDP sockets on loopback, drained between rounds): one
//!   sendmmsg, as the daemon does, against one sendto per peer.

use criterion::{Criterion, criterion_group, criterion_main};
use mcast_relay::core::{Inbound, Link, Outbound};

use mcast_relay::testing::cluster::{T0, addrs, endpoint, meet, node_on};
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
        let mut a = node_on(1, Link::Ip);
        let mut b = node_on(2, Link::Ip);
        meet(&mut [(1, &mut a), (2, &mut b)], T0);
        let mut sealed = vec![0u8; 2048];
        let mut work = vec![0u8; 2048];
        let mut out = vec![0u8; 2048];
        // One packet a millisecond of the core's clock: inside the
        // injection rate limit however many iterations criterion runs.
        let mut now = T0;
        c.bench_function(&format!("seal/{size}"), |bench| {
            bench.iter(|| {
                now += 1;
                a.from_tun(&packet, now, &mut sealed)
            })
        });
        c.bench_function(&format!("seal_open/{size}"), |bench| {
            bench.iter(|| {
                now += 1;
                let Outbound::Send { len, .. } = a.from_tun(&packet, now, &mut sealed) else {
                    panic!("not sealed");
                };
                work[..len].copy_from_slice(&sealed[..len]);
                let r = b.from_net(&mut work[..len], endpoint(1), now, &mut out);
                assert!(matches!(r, Inbound::Inject { .. }), "{r:?}");
            })
        });
    }

    let packet = advert(64);
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
    let mut sealed = vec![0u8; 2048];
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
    let datagram = [0u8; 112];
    // Empties the listeners' queues so neither variant meets full buffers.
    let drain = || {
        let mut buf = [0u8; 256];
        for s in &rx {
            while s.recv(&mut buf).is_ok() {}
        }
    };
    let mut f = mcast_relay::io::Fanout::with_capacity(addrs.len());
    for (i, a) in addrs.iter().enumerate() {
        f.push(i, *a);
    }
    c.bench_function("fanout/15_peers_sendmmsg", |bench| {
        bench.iter_batched(
            drain,
            |()| f.send(tx.as_raw_fd(), &datagram, |_, _, r| assert!(r.is_ok())),
            criterion::BatchSize::PerIteration,
        )
    });
    c.bench_function("fanout/15_peers_sendto_each", |bench| {
        bench.iter_batched(
            drain,
            |()| {
                for a in &addrs {
                    tx.send_to(&datagram, a).expect("send on loopback");
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
