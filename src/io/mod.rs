//! Every system call and every `unsafe` block of the crate: the tun/tap
//! device, the UDP socket and its batched sends, name resolution, systemd
//! notification, dropping privileges, the key file and the host queries of
//! `check`.

pub mod fanout;
pub mod host;
pub mod keyfile;
pub mod net;
pub mod notify;
pub mod privilege;
pub mod tun;
