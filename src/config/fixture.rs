//! The configuration the unit tests of `config` start from, and the helpers
//! that edit and parse it.
//!
//! One shared fixture, so each module's tests break the same known-good
//! file in one place and assert on the error that comes back. Its members'
//! keys are derived from fixed private keys (`key(n)`), and the host facts
//! are made up, so no test depends on the machine's name or addresses.

use std::net::IpAddr;
use std::path::Path;

use super::{Config, ConfigError, Credential, HostFacts};
use crate::proto::keys::PrivateKey;

/// `key(1)`, `key(2)`, `key(3)`'s public keys are those of h1, h2, h3.
pub(super) const GOOD: &str = r#"
[node]
# this host is the member whose public_key matches its private key
listen = "0.0.0.0:7112"
key_file = "/etc/mcast-relay/key"

[interface]
name = "mcast0"
mode = "tun"
subnet = "10.250.0.0/24"
subnet6 = "fd00:250::/64"

[allow]
presets = ["vrrp", "heartbeat"]

[[allow.rule]]
protocol = "udp"
ports = [9000, "9100-9101"]
destinations = ["225.0.0.1", "broadcast"]

[[member]]
name = "h1"
endpoint = "192.0.2.1:7112"
address = "10.250.0.1"
address6 = "fd00:250::1"
public_key = "pOCSkrZRwni5dyxWn1+puxPZBrRqtoyd+dwrRAn4ogk="

[[member]]
name = "h2"
endpoint = "192.0.2.2:7112"
address = "10.250.0.2"
address6 = "fd00:250::2"
public_key = "zo060cy2M+x7cMF4FKXHbs0CloUFDTRHRboFhw5YfVk="

[[member]]
name = "h3"
endpoint = "node3.example.net"
address = "10.250.0.3"
public_key = "Xf7dO2vUf2+ijuFdlp1bsOpTd01Ii9r53xxuASSz7yI="
"#;

/// The public key of `key(4)`, which no member of [`GOOD`] has.
pub(super) const STRANGER: &str = "rAGyIJ6GNU+4UyN7XeD0+rE8f8v0M6YcAZNpYX/s8Qs=";

pub(super) const PATH: &str = "/etc/mcast-relay/test.toml";

/// The fixed private key number `n`.
pub(super) fn key(n: u8) -> PrivateKey {
    PrivateKey::from_bytes([n; 32])
}

/// A host named `hostname` whose own addresses are `local`.
pub(super) struct Host {
    pub(super) hostname: &'static str,
    pub(super) local: Vec<IpAddr>,
}

/// No member's name, no member's address.
pub(super) fn stranger_host() -> Host {
    Host {
        hostname: "test-host",
        local: Vec::new(),
    }
}

/// `text` as read by a host holding `key` (h1's by [`parse`]), with the
/// key file's path recorded as the one asked for.
pub(super) fn parse_as(
    text: &str,
    key: Option<PrivateKey>,
    host: &Host,
) -> Result<Config, ConfigError> {
    let is_local = |ip: IpAddr| host.local.contains(&ip);
    let facts = HostFacts {
        hostname: host.hostname,
        is_local: &is_local,
    };
    Config::build(Path::new(PATH), text, None, &facts, |_| {
        key.map(Credential::Private)
            .ok_or_else(|| panic!("the test gave no key, but one was asked for"))
    })
}

/// `text` as read on h1.
pub(super) fn parse(text: &str) -> Result<Config, ConfigError> {
    parse_as(text, Some(key(1)), &stranger_host())
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
