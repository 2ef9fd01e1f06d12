//! The serde schema of the file as read, before any meaning is checked.
//!
//! Kept apart from validation so the shape of the file (every key, its
//! TOML type, which are optional) is one screen to read. Every table
//! denies unknown keys, so a typo is an error at its line, and values keep
//! their spans for the errors of the validation pass.

use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) node: Spanned<RawNode>,
    pub(super) interface: Spanned<RawInterface>,
    pub(super) allow: Option<Spanned<RawAllow>>,
    #[serde(default)]
    pub(super) member: Vec<Spanned<RawMember>>,
    #[serde(default)]
    pub(super) vip: Vec<Spanned<RawVip>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNode {
    pub(super) name: Option<Spanned<String>>,
    pub(super) listen: Option<Spanned<String>>,
    pub(super) key_file: Option<Spanned<PathBuf>>,
    pub(super) insecure: Option<Spanned<bool>>,
    pub(super) max_clock_skew: Option<Spanned<f64>>,
    pub(super) resolve_interval: Option<Spanned<f64>>,
    pub(super) keepalive: Option<Spanned<f64>>,
    pub(super) inject_rate_limit: Option<Spanned<i64>>,
    pub(super) user: Option<Spanned<String>>,
    pub(super) status_socket: Option<Spanned<String>>,
    pub(super) status_group: Option<Spanned<String>>,
    pub(super) metrics_listen: Option<Spanned<String>>,
    pub(super) quorum: Option<bool>,
    pub(super) redundancy: Option<Spanned<i64>>,
    pub(super) redundancy_spacing: Option<Spanned<f64>>,
    pub(super) path_mode: Option<Spanned<String>>,
    pub(super) realtime_priority: Option<Spanned<i64>>,
    pub(super) lock_memory: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInterface {
    pub(super) name: Option<Spanned<String>>,
    pub(super) mode: Option<Spanned<String>>,
    /// Optional to serde so that a file without it gets the validation
    /// pass's message, which explains the key.
    pub(super) subnet: Option<Spanned<String>>,
    pub(super) subnet6: Option<Spanned<String>>,
    pub(super) mtu: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAllow {
    #[serde(default)]
    pub(super) presets: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) rule: Vec<Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum RawScalar {
    Int(i64),
    Text(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    pub(super) protocol: Spanned<RawScalar>,
    #[serde(default)]
    pub(super) ports: Vec<Spanned<RawScalar>>,
    pub(super) destinations: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMember {
    pub(super) name: Spanned<String>,
    /// Exactly one of `endpoint` (one path) and `endpoints` (one or more):
    /// both optional to serde so the validation pass explains the choice.
    pub(super) endpoint: Option<Spanned<String>>,
    pub(super) endpoints: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) address: Spanned<String>,
    pub(super) address6: Option<Spanned<String>>,
    pub(super) public_key: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVip {
    pub(super) vrid: Spanned<i64>,
    pub(super) family: Option<Spanned<String>>,
    pub(super) address: Option<Spanned<String>>,
    pub(super) on_master: Spanned<Vec<Spanned<String>>>,
    pub(super) settle: Option<Spanned<f64>>,
    pub(super) timeout: Option<Spanned<f64>>,
}

/// Only what tells the layout before this issue (one file per host, with
/// `[[peer]]` tables and the host's own `interface.address`) from the
/// cluster file: read first and leniently, so an old file gets one error
/// explaining the new layout instead of whatever serde trips on first.
#[derive(Deserialize)]
pub(super) struct OldLayoutProbe {
    pub(super) peer: Option<Spanned<toml::Value>>,
    pub(super) interface: Option<OldInterfaceProbe>,
}

#[derive(Deserialize)]
pub(super) struct OldInterfaceProbe {
    pub(super) address: Option<Spanned<toml::Value>>,
    pub(super) address6: Option<Spanned<toml::Value>>,
}
