//! Every end-to-end suite in one test binary (one link instead of seven),
//! with the lab they run in as a support module. The lab suites need root
//! and skip visibly without it; `no_alloc` needs nothing. One suite:
//! `cargo test --test integration e2e::` (the module path is the filter).

mod lab;

mod chaos;
mod cloud_vip;
mod day2;
mod e2e;
mod failover;
mod hostile;
mod no_alloc;
mod operator;
mod paths;
mod realtime;
mod scale;
mod tap;
mod vrids;
