//! The sans-IO core: the relay's state machine and everything it decides
//! with. No sockets, files, tokio, libc or clocks here: bytes and the time
//! come in as arguments, decisions (send these bytes to these peers, write
//! this packet, drop it and why) go out as values.
//!
//! [`relay`] is the façade; the modules behind it hold one concern each.

pub mod allow;
pub mod counters;
mod events;
mod handshake;
mod peers;
mod policy;
pub mod quorum;
mod rate;
pub mod relay;
pub mod replay;
mod session;
mod tap;
mod time;
mod timers;
pub mod vrrp_watch;
