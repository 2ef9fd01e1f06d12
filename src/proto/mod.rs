//! The pure codecs: the relay's wire header, the fields of inner IP packets
//! and Ethernet frames the policy reads, overlay addressing, the AEAD
//! primitives and the `/proc` tables the interface set-up reads. No state,
//! no I/O, no clock: each function maps bytes to values or values to bytes.

pub mod crypto;
pub mod frame;
pub mod keys;
pub mod noise;
pub(crate) mod overlay;
pub mod packet;
pub(crate) mod procfs;
pub mod wire;
