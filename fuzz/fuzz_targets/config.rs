//! Fuzzes the config parser with arbitrary text. Property: never a panic;
//! every mistake comes back as an error value with a message.
#![no_main]

use libfuzzer_sys::fuzz_target;

use mcast_relay::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = Config::parse(std::path::Path::new("fuzz.toml"), text) {
        assert!(!e.to_string().is_empty(), "an error without a message");
    }
});
