//! The lab benchmarks, as modules of one harness-less bench binary (one
//! link instead of five). Each prints figures rather than asserting.
//!
//! `sudo cargo bench --bench lab -- path` runs one (several names run
//! those); without a name, as under a plain `cargo bench`, all run in
//! turn. `-- --list` names them and runs none. A name that is none of
//! them (a criterion filter meant for `core`) runs nothing here.

mod lab;

mod bench_failover;
mod bench_flood;
mod bench_idle;
mod bench_path;
mod bench_scale;
mod bench_vrids;

/// Name and entry of every benchmark, in the order a plain run takes.
const BENCHES: [(&str, fn()); 6] = [
    ("failover", bench_failover::main),
    ("flood", bench_flood::main),
    ("path", bench_path::main),
    ("idle", bench_idle::main),
    ("scale", bench_scale::main),
    ("vrids", bench_vrids::main),
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        for (name, _) in BENCHES {
            println!("{name}: benchmark");
        }
        return;
    }
    // cargo adds `--bench`; every other word is a name.
    let names: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let chosen: Vec<_> = BENCHES
        .iter()
        .filter(|(name, _)| names.is_empty() || names.contains(name))
        .collect();
    if chosen.is_empty() {
        let all: Vec<&str> = BENCHES.iter().map(|(name, _)| *name).collect();
        eprintln!(
            "lab benchmarks: none named {}; they are {}",
            names.join(", "),
            all.join(", ")
        );
    }
    for (_, run) in chosen {
        run();
    }
}
