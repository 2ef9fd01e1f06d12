//! mcast-relay: carries the multicast and broadcast heartbeats of stock
//! failover tools (keepalived, ucarp, heartbeat, corosync, spread) between hosts
//! over authenticated, encrypted unicast UDP, for networks that drop
//! multicast.
//!
//! The packet logic is a sans-IO core ([`relay`]) built from small pure
//! parts; the daemon wraps it with a tun (IP packets) or tap (Ethernet
//! frames) device and a UDP socket.

pub mod allow;
pub mod check;
pub mod cli;
pub mod config;
pub mod counters;
pub mod crypto;
pub mod daemon;
pub mod fanout;
pub mod frame;
pub mod hostcheck;
pub mod keyfile;
pub mod metrics;
pub mod net;
pub mod notify;
pub mod overlay;
pub mod packet;
pub mod privilege;
pub mod quorum;
pub mod relay;
pub mod reload;
pub mod replay;
pub mod status;
pub mod toolconf;
pub mod tun;
pub mod vrrp_watch;
pub mod wire;
