//! The sans-IO core: the relay's state machine and everything it decides
//! with. No sockets, files, tokio, libc or clocks here: bytes and the time
//! come in as arguments, decisions (send these bytes to these peers, write
//! this packet, drop it and why) go out as values.

pub mod allow;
pub mod counters;
pub mod quorum;
pub mod relay;
pub mod replay;
pub mod vrrp_watch;
