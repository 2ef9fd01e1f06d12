//! The one translation from the configuration to the core's terms: the
//! peers and the tunables the core takes at start ([`RelayParams`]) and
//! again on SIGHUP ([`Reload`]) are read here, once, so start and reload
//! cannot drift apart.

use crate::config::{self, Config, Mode};
use crate::core::relay::{Link, NodeAddrs, PeerSpec, RelayParams, Reload, Security};
use crate::core::{PathMode, Redundancy, vip};

/// Each peer as the core knows it: a name and its overlay addresses.
fn peer_specs(cfg: &Config) -> Vec<PeerSpec> {
    cfg.peers
        .iter()
        .map(|p| PeerSpec {
            name: p.name.clone(),
            addrs: NodeAddrs {
                v4: p.address,
                v6: p.address6,
            },
            public_key: p.public_key,
        })
        .collect()
}

/// Everything a reload may change in the core.
pub(super) fn reload(cfg: &Config) -> Reload {
    Reload {
        peers: peer_specs(cfg),
        allow: cfg.allow.clone(),
        max_clock_skew_ms: cfg.node.max_clock_skew.as_millis() as u64,
        inject_rate_limit: cfg.node.inject_rate_limit,
        keepalive_ms: cfg.node.keepalive.as_millis() as u64,
        redundancy: Redundancy {
            copies: cfg.node.redundancy,
            spacing_ms: cfg.node.redundancy_spacing_ms,
            path_mode: match cfg.node.path_mode {
                config::PathMode::All => PathMode::All,
                config::PathMode::Best => PathMode::Best,
            },
        },
    }
}

/// The core's start parameters: what [`reload`] gives, plus what only a
/// start sets (this node's addresses and link, the key, the random run).
pub(super) fn relay_params(cfg: &Config, security: Security, run: u64) -> RelayParams {
    // Destructured without `..`: a tunable added to `Reload` must be
    // passed on here too.
    let Reload {
        peers,
        allow,
        max_clock_skew_ms,
        inject_rate_limit,
        keepalive_ms,
        redundancy,
    } = reload(cfg);
    RelayParams {
        local: NodeAddrs {
            v4: cfg.interface.address,
            v6: cfg.interface.address6.map(|(a, _)| a),
        },
        link: match cfg.interface.mode {
            Mode::Tun => Link::Ip,
            Mode::Tap => Link::Ethernet,
        },
        prefix_len: cfg.interface.prefix_len,
        peers,
        allow,
        security,
        run,
        max_clock_skew_ms,
        inject_rate_limit,
        keepalive_ms,
        quorum: cfg.node.quorum,
        redundancy,
        vips: cfg
            .vips
            .iter()
            .map(|v| vip::Rule {
                family: v.family,
                vrid: v.vrid,
                settle_ms: v.settle.map(|s| s.as_millis() as u64),
            })
            .collect(),
    }
}
