//! Every system call and every `unsafe` block of the crate: the tun/tap
//! device, the UDP socket and its batched sends and receives, name resolution, systemd
//! notification, dropping privileges, real-time scheduling and locked
//! memory, the key file and the host queries of `check`.

pub(crate) mod fanout;
pub(crate) mod host;
pub mod keyfile;
pub(crate) mod net;
pub(crate) mod notify;
pub(crate) mod privilege;
pub(crate) mod realtime;
pub(crate) mod recv;
pub mod tun;
pub use fanout::Fanout;
