//! The packet path allocates nothing: a counting global allocator around
//! the sans-IO core, two relays that have met, and thousands of packets
//! through sealing, opening, classifying and every common kind of drop.
//! Counting is per thread, so neither the test harness's own threads nor
//! the other suites of this binary running beside it count: the one
//! allocator serves them all, but each test reads its own thread's count.

use mcast_relay::core::{Inbound, Link, Outbound, Relay};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded to the system allocator unchanged; the
// counter is a const-initialised thread-local, which does not allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

fn allocations<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let before = ALLOCS.with(Cell::get);
    let r = f();
    (r, ALLOCS.with(Cell::get) - before)
}

use mcast_relay::testing::cluster::{
    T0, addrs, batch, endpoint as ep, meet, node, node_on, relabel,
};
use mcast_relay::testing::packets;

/// A VRRPv3 advert from node 1's overlay address.
fn advert() -> Vec<u8> {
    packets::vrrp_advert_from_node1(&[0x31u8, 51, 200, 1, 0, 10, 0, 0, 10, 77, 0, 100])
}

/// Allocations while `a` seals `packet` (from its interface) and `b`
/// opens and injects it, `n` times one millisecond apart (within the
/// injection rate limit); buffers are the daemon's, allocated up front.
fn allocations_relaying(a: &mut Relay, b: &mut Relay, packet: &[u8], n: usize) -> u64 {
    let mut sealed = batch();
    let mut work = vec![0u8; 2048];
    let mut out = vec![0u8; 2048];
    let ((), count) = allocations(|| {
        for i in 0..n {
            let now = T0 + i as u64;
            let Outbound::Send { .. } = a.from_tun(packet, now, &mut sealed) else {
                panic!("packet {i} was not sealed");
            };
            let Some((_, _, d)) = sealed.get(0) else {
                panic!("packet {i} was not sealed for b");
            };
            let len = d.len();
            work[..len].copy_from_slice(d);
            let r = b.from_net(&mut work[..len], ep(1), now, &mut out);
            assert!(matches!(r, Inbound::Inject { .. }), "packet {i}: {r:?}");
        }
    });
    count
}

#[test]
fn the_packet_path_does_not_allocate() {
    let mut a = node(1);
    let mut b = node(2);
    meet(&mut [(1, &mut a), (2, &mut b)], T0);
    let packet = advert();
    const N: usize = 10_000;
    let n = allocations_relaying(&mut a, &mut b, &packet, N);
    assert_eq!(
        n, 0,
        "{n} allocations for {N} packets sealed, opened and injected"
    );

    // Drops: a replay, a forgery, junk, an unknown sender, a local packet
    // that is not allowed.
    let mut sealed = batch();
    let mut work = vec![0u8; 2048];
    let mut out = vec![0u8; 2048];
    let later = T0 + N as u64;
    let Outbound::Send { .. } = a.from_tun(&packet, later, &mut sealed) else {
        panic!("the advert was not sealed");
    };
    let good = sealed.get(0).expect("sealed for b").2.to_vec();
    let len = good.len();
    let mut forged = good.clone();
    forged[len - 1] ^= 1;
    let stranger = relabel(&good, 77);
    // An initiation without the MAC for b: refused before any DH.
    let mut bad_mac = vec![0u8; mcast_relay::proto::wire::INITIATION_LEN];
    bad_mac[..8].copy_from_slice(&[2, 2, 0, 0, 10, 250, 0, 1]);
    let junk = vec![0xa5u8; 300];
    let mut tcp = packet.clone();
    tcp[9] = 6;
    let ((), n) = allocations(|| {
        work[..len].copy_from_slice(&good);
        assert!(matches!(
            b.from_net(&mut work[..len], ep(1), later, &mut out),
            Inbound::Inject { .. }
        ));
        for _ in 0..N {
            for d in [&good, &forged, &stranger, &junk, &bad_mac] {
                work[..d.len()].copy_from_slice(d);
                let r = b.from_net(&mut work[..d.len()], ep(1), later, &mut out);
                assert!(matches!(r, Inbound::Drop(_)), "{r:?}");
            }
            assert!(matches!(
                a.from_tun(&tcp, later, &mut sealed),
                Outbound::Drop(_)
            ));
        }
    });
    assert_eq!(n, 0, "{n} allocations for {} dropped packets", N * 6);
    let c = b.counters();
    eprintln!(
        "no_alloc: {N} packets sealed+opened+injected and {} dropped (replay, bad_auth, unknown_sender, unknown_version, bad_mac, local_disallowed): 0 allocations; b injected {}",
        N * 6,
        c.injected
    );
}

/// Redundancy: three copies over two paths, the later rounds held back
/// and sent when due, the receiver removing the duplicates. Once the
/// store of held copies has grown to its high-water mark, nothing
/// allocates.
#[test]
fn copies_and_paths_do_not_allocate() {
    use mcast_relay::core::{PathMode, Redundancy};
    let mut a = node(1);
    let mut b = node(2);
    meet(&mut [(1, &mut a), (2, &mut b)], T0);
    let id = a.peer_by_name("h2").expect("h2");
    a.set_path(id, 1, Some("198.51.100.2:7112".parse().expect("addr")));
    a.set_redundancy(Redundancy {
        copies: 3,
        spacing_ms: 2,
        path_mode: PathMode::All,
    });
    let packet = advert();
    let mut sealed = batch();
    let mut work = vec![0u8; 2048];
    let mut out = vec![0u8; 2048];
    let mut run = |from: usize, to: usize| {
        let mut injected = 0;
        let mut duplicates = 0;
        for i in from..to {
            let now = T0 + i as u64;
            let mut deliver = |sealed: &mcast_relay::core::Datagrams| {
                for (p, _, d) in sealed.iter() {
                    if p != id {
                        continue;
                    }
                    work[..d.len()].copy_from_slice(d);
                    match b.from_net(&mut work[..d.len()], ep(1), now, &mut out) {
                        Inbound::Inject { .. } => injected += 1,
                        Inbound::Drop(mcast_relay::core::DropReason::Duplicate) => duplicates += 1,
                        r => panic!("packet {i}: {r:?}"),
                    }
                }
            };
            let Outbound::Send { .. } = a.from_tun(&packet, now, &mut sealed) else {
                panic!("packet {i} was not sealed");
            };
            deliver(&sealed);
            if a.poll_later(now, &mut sealed) {
                deliver(&sealed);
            }
        }
        (injected, duplicates)
    };
    // No keepalives run here: from 3.5 s on neither path counts as
    // reachable, so every packet goes over both, six copies in all.
    let _ = run(0, 4000);
    const N: usize = 10_000;
    let ((injected, duplicates), n) = allocations(|| run(4000, 4000 + N));
    assert_eq!(n, 0, "{n} allocations for {N} packets in six copies each");
    // Every packet once; its other copies (bar the last ones still held)
    // removed.
    assert_eq!(injected, N);
    assert!(duplicates >= 5 * (N - 5), "{duplicates} duplicates");
    eprintln!(
        "no_alloc: {N} packets x 6 copies (3 rounds, 2 paths), {injected} injected, {duplicates} duplicates: 0 allocations"
    );
}

/// Tap mode: the frame checks, the MAC lookup and the learning of ucarp's
/// virtual-router MAC, on every packet.
#[test]
fn the_tap_packet_path_does_not_allocate() {
    let mut a = node_on(1, Link::Ethernet);
    let mut b = node_on(2, Link::Ethernet);
    meet(&mut [(1, &mut a), (2, &mut b)], T0);
    // A CARP advert as ucarp writes it: from 00:00:5e:00:00:01.
    let frame = [
        &[
            0x01, 0x00, 0x5e, 0x00, 0x00, 0x12, 0x00, 0x00, 0x5e, 0x00, 0x00, 0x01, 0x08, 0x00,
        ][..],
        &advert(),
    ]
    .concat();
    const N: usize = 10_000;
    let n = allocations_relaying(&mut a, &mut b, &frame, N);
    assert_eq!(
        n, 0,
        "{n} allocations for {N} frames sealed, opened and injected"
    );
    assert_eq!(
        b.learned_owner([0, 0, 0x5e, 0, 0, 1], T0 + N as u64),
        Some(addrs(1).peer_id())
    );
    eprintln!("no_alloc: {N} tap frames sealed+opened+injected (with MAC learning): 0 allocations");
}
