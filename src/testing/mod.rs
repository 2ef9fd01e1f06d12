//! Fixtures for the tests, the benchmarks and the fuzz targets: packet and
//! frame builders and an in-process cluster. One copy, compiled for the
//! unit tests and, through the `testing` feature, for integration/, the
//! benches and fuzz/ — never into the daemon a release build makes.

pub mod cluster;
pub mod frames;
pub mod packets;
