//! mcast-relay: carries the multicast and broadcast heartbeats of stock
//! failover tools (keepalived, ucarp, heartbeat, corosync, spread) between hosts
//! over authenticated, encrypted unicast UDP, for networks that drop
//! multicast.
//!
//! The folders are the layers, each using only those above it:
//!
//! * [`proto`]: pure codecs (wire header, inner packets, frames, overlay
//!   addresses, AEAD primitives).
//! * [`core`]: the sans-IO state machine; bytes and time in, decisions out.
//! * [`io`]: every system call and `unsafe` (tun/tap, sockets, DNS,
//!   systemd, privileges, the key file).
//! * [`daemon`]: set-up, the event loop, reload, the status socket and
//!   metrics.
//! * [`check`]: `mcast-relay check`, the configuration and the host.
//! * [`config`] and [`cli`]: the file and command-line contract.
//! * [`underlay`]: the arithmetic of datagrams and peer addresses that the
//!   daemon and `check` share.
//! * `testing` (unit tests and the `testing` feature only): packet and
//!   frame builders and an in-process cluster for the tests, benches and
//!   fuzz targets.
//!
//! Inside a layer the modules are private or `pub(crate)`: its `mod.rs`
//! re-exports what the binary, `integration/`, the benches and `fuzz/` use
//! (the core's types as `core::Relay`, `core::PeerId`, ...; the codecs as
//! `proto::{wire, frame, packet, crypto}`), so the compiler reports
//! anything else nobody calls.

pub mod check;
pub mod cli;
pub mod config;
pub mod core;
pub mod daemon;
pub mod io;
pub mod proto;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod underlay;
