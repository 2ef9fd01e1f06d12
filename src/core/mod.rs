//! The sans-IO core: the relay's state machine and everything it decides
//! with. No sockets, files, tokio, libc or clocks here: bytes and the time
//! come in as arguments, decisions (send these bytes to these peers, write
//! this packet, drop it and why) go out as values.
//!
//! [`Relay`] is the façade; the modules behind it hold one concern each.

pub(crate) mod allow;
mod batch;
mod copies;
pub(crate) mod counters;
mod events;
mod handshake;
mod keepalive;
mod paths;
mod peers;
mod policy;
mod quorum;
mod rate;
pub(crate) mod relay;
mod replay;
mod session;
mod tap;
mod time;
mod timers;
mod views;
pub mod vip;
pub(crate) mod vrrp_watch;

pub use allow::{AllowList, DestKind, Preset};
pub use copies::{MAX_REDUNDANCY, Redundancy};
pub use counters::{Counters, DropCounters, DropReason};
pub use events::Event;
pub use paths::{MAX_PATHS, PathHealth, PathMode, PathSet, PathStats};
pub use peers::{Node, NodeAddrs, PeerId, PeerSpec, PeerStats};
pub use relay::{Datagrams, Inbound, Link, Outbound, Relay, RelayParams, Reload, Security, Target};
pub use time::Now;
pub use timers::Timer;
pub use vrrp_watch::{Alarm, Family, Router, Watch, parse as parse_advert};
