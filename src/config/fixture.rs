//! The configuration the unit tests of `config` start from, and the helpers
//! that edit and parse it.
//!
//! One shared fixture, so each module's tests break the same known-good
//! file in one place and assert on the error that comes back.

use std::path::Path;

use super::{Config, ConfigError};

pub(super) const GOOD: &str = r#"
[node]
name = "h1"
listen = "0.0.0.0:7112"
key_file = "/etc/mcast-relay/key"

[interface]
name = "mcast0"
mode = "tun"
address = "10.250.0.1/24"
address6 = "fd00:250::1/64"

[allow]
presets = ["vrrp", "heartbeat"]

[[allow.rule]]
protocol = "udp"
ports = [9000, "9100-9101"]
destinations = ["225.0.0.1", "broadcast"]

[[peer]]
name = "h2"
endpoint = "192.0.2.2:7112"
address = "10.250.0.2"
address6 = "fd00:250::2"

[[peer]]
name = "h3"
endpoint = "node3.example.net"
address = "10.250.0.3"
"#;

pub(super) fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(Path::new("/etc/mcast-relay/test.toml"), text)
}

pub(super) fn err(text: &str) -> ConfigError {
    match parse(text) {
        Ok(_) => panic!("config was accepted:\n{text}"),
        Err(e) => e,
    }
}

pub(super) fn with(from: &str, to: &str) -> String {
    assert!(
        GOOD.contains(from),
        "test edits text that is not there: {from}"
    );
    GOOD.replacen(from, to, 1)
}
