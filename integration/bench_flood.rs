//! A flood of random datagrams at the relay ports of a keepalived master
//! and a backup (VRRPv3, advert_int 0.1), with the release build of the
//! relay: the send rate reached, what the relays counted, what the kernel
//! dropped, the relays' CPU use, and whether the VIP moved. Not a test: it
//! prints figures (the same scenario runs as a test in hostile/).
//!
//! `sudo cargo bench --bench lab -- flood` (FLOOD_SECS=N, default 30;
//! FLOOD_RATE=N per target, default 100000; FLOOD_KIND=forged for
//! handshake initiations claiming a real member, with the MAC right for
//! the target: a MAC and a rate-limit check each, and a Diffie-Hellman
//! for the few the limit lets through).

use crate::lab;

pub fn main() {
    if !lab::bench_may_run("flood benchmark") {
        return;
    }
    lab::require_programs(lab::keepalived::PROGRAMS);
    let secs = lab::env_or("FLOOD_SECS", 30);
    let rate = lab::env_or("FLOOD_RATE", 100_000);
    let (junk, what) = match std::env::var("FLOOD_KIND").as_deref() {
        Ok("forged") => (
            lab::flood::Junk::ForgedHeaders,
            "handshake initiations claiming h3, MAC right for each target",
        ),
        _ => (lab::flood::Junk::Random, "random bytes (1-512)"),
    };
    println!(
        "{what} at h1 (master) and h2 (backup), aiming at {rate}/s each for {secs} s; keepalived VRRPv3 advert_int 0.1"
    );
    println!("relay binary: {}", lab::relay_bin().display());
    let o = lab::flood::junk_flood_against_keepalived(0.1, junk, rate, secs);
    for line in lab::flood::describe(&o) {
        println!("{line}");
    }
    if o.vip_added.is_some() || o.holders_after != [1] {
        eprintln!("FAILOVER during the flood");
        std::process::exit(1);
    }
}
