//! The `[[peer]]` tables: the other relays of the cluster, each checked
//! against this node and the peers before it.
//!
//! Its own file because the cluster's membership is what changes next
//! (per-member keys): names and overlay addresses unique, endpoints
//! reachable from `node.listen`'s address family.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use toml::Spanned;

use crate::config::endpoint::parse_endpoint;
use crate::config::error::{ConfigError, Ctx};
use crate::config::raw::RawPeer;
use crate::config::{Endpoint, InterfaceConfig, PeerConfig};
use crate::proto::overlay::{Prefix, mask_v4, mask_v6};

pub(super) fn validate_peers(
    ctx: &Ctx,
    raw: Vec<Spanned<RawPeer>>,
    iface: &InterfaceConfig,
    node_name: &str,
    listen: SocketAddr,
) -> Result<Vec<PeerConfig>, ConfigError> {
    if raw.is_empty() {
        return Err(ctx.err(ctx.text.len()..ctx.text.len(), "peer", "no [[peer]] configured; add one [[peer]] table (name, endpoint, address) for every other node of the cluster"));
    }
    let mut peers: Vec<PeerConfig> = Vec::new();
    for rp in raw {
        let rp = rp.into_inner();
        let name = name(ctx, &rp.name, node_name, &peers)?;
        let endpoint = endpoint(ctx, &rp.endpoint, &name, listen)?;
        let address = address(ctx, &rp.address, iface, &peers)?;
        let address6 = address6(ctx, &rp.address6, iface, &peers)?;
        peers.push(PeerConfig {
            name,
            endpoint,
            address,
            address6,
            public_key: None,
        });
    }
    Ok(peers)
}

/// Not empty, and unique among the node and the `peers` before this one.
fn name(
    ctx: &Ctx,
    raw: &Spanned<String>,
    node_name: &str,
    peers: &[PeerConfig],
) -> Result<String, ConfigError> {
    let name = raw.get_ref().trim().to_string();
    if name.is_empty() {
        return Err(ctx.err(raw.span(), "peer.name", "must not be empty"));
    }
    if name == node_name || peers.iter().any(|p| p.name == name) {
        return Err(ctx.err(
            raw.span(),
            "peer.name",
            format!("`{name}` is used twice (node and peer names must be unique)"),
        ));
    }
    Ok(name)
}

/// An endpoint address must be one the `listen` socket can send to; a
/// name is resolved later, so its family is not known here.
fn endpoint(
    ctx: &Ctx,
    raw: &Spanned<String>,
    name: &str,
    listen: SocketAddr,
) -> Result<Endpoint, ConfigError> {
    let endpoint = parse_endpoint(raw.get_ref())
        .map_err(|m| ctx.err(raw.span(), "peer.endpoint", m.to_string()))?;
    if let Endpoint::Addr(a) = &endpoint {
        if a.is_ipv6() && listen.is_ipv4() {
            return Err(ctx.err(raw.span(), "peer.endpoint", format!("peer `{name}` has an IPv6 endpoint but node.listen is IPv4; set `listen = \"[::]:{}\"`", listen.port())));
        }
        if a.is_ipv4() && listen.is_ipv6() && !listen.ip().is_unspecified() {
            return Err(ctx.err(raw.span(), "peer.endpoint", format!("peer `{name}` has an IPv4 endpoint but node.listen is a specific IPv6 address; use `listen = \"[::]:{}\"` or an IPv4 listen address", listen.port())));
        }
    }
    Ok(endpoint)
}

/// A host address in the node's overlay subnet, used by no one else.
fn address(
    ctx: &Ctx,
    s: &Spanned<String>,
    iface: &InterfaceConfig,
    peers: &[PeerConfig],
) -> Result<Ipv4Addr, ConfigError> {
    let subnet = Prefix {
        addr: IpAddr::V4(iface.address),
        len: iface.prefix_len,
    };
    let address: Ipv4Addr = s.get_ref().trim().parse().map_err(|_| {
        ctx.err(s.span(), "peer.address", format!("`{}` is not an IPv4 address; expected the peer's overlay address without prefix, e.g. \"10.250.0.2\"", s.get_ref()))
    })?;
    let host = u32::from(address) & !mask_v4(iface.prefix_len);
    if !subnet.contains(IpAddr::V4(address)) || host == 0 || address == iface.broadcast() {
        return Err(ctx.err(s.span(), "peer.address", format!("{address} is not a host address in this node's overlay subnet {}/{}; all nodes share one subnet", Ipv4Addr::from(u32::from(iface.address) & mask_v4(iface.prefix_len)), iface.prefix_len)));
    }
    if address == iface.address || peers.iter().any(|p| p.address == address) {
        return Err(ctx.err(s.span(), "peer.address", format!("{address} is already used by this node or another peer; every node needs its own overlay address")));
    }
    Ok(address)
}

/// Only with the node's own `address6`, inside its prefix, used by no one
/// else.
fn address6(
    ctx: &Ctx,
    raw: &Option<Spanned<String>>,
    iface: &InterfaceConfig,
    peers: &[PeerConfig],
) -> Result<Option<Ipv6Addr>, ConfigError> {
    let Some(s) = raw else {
        return Ok(None);
    };
    let a: Ipv6Addr = s.get_ref().trim().parse().map_err(|_| {
        ctx.err(s.span(), "peer.address6", format!("`{}` is not an IPv6 address; expected the peer's overlay IPv6 address without prefix, e.g. \"fd00:250::2\"", s.get_ref()))
    })?;
    let Some((own, len)) = iface.address6 else {
        return Err(ctx.err(
            s.span(),
            "peer.address6",
            "set [interface] address6 on this node too, or remove the peer's address6",
        ));
    };
    let mask = mask_v6(len);
    if u128::from(a) & mask != u128::from(own) & mask {
        return Err(ctx.err(
            s.span(),
            "peer.address6",
            format!("{a} is not in this node's overlay prefix {own}/{len}"),
        ));
    }
    if a == own || peers.iter().any(|p| p.address6 == Some(a)) {
        return Err(ctx.err(
            s.span(),
            "peer.address6",
            format!("{a} is already used by this node or another peer"),
        ));
    }
    Ok(Some(a))
}

#[cfg(test)]
mod tests {
    use crate::config::fixture::{GOOD, err, with};

    #[test]
    fn semantic_errors_point_at_the_value() {
        let e = err(&with(
            "address = \"10.250.0.3\"",
            "address = \"10.251.0.3\"",
        ));
        assert_eq!(e.key, "peer.address");
        assert!(e.message.contains("10.250.0.0/24"), "{}", e.message);
        let line = GOOD
            .lines()
            .position(|l| l.contains("10.250.0.3"))
            .expect("line")
            + 1;
        assert_eq!(e.line, line);
        assert_eq!(e.column, 11);
    }
}
