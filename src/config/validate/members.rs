//! The `[[member]]` tables: every relay of the cluster, this host included,
//! each checked against the subnets and the members before it.
//!
//! Nothing here depends on which member this host is, so the same file
//! passes or fails the same way on every host: names, endpoints, overlay
//! addresses and public keys unique, addresses inside the subnets.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;

use toml::Spanned;

use super::interface::{Subnet4, Subnet6};
use crate::config::endpoint::parse_endpoint;
use crate::config::error::{ConfigError, Ctx};
use crate::config::raw::RawMember;
use crate::config::{Endpoint, PeerConfig};
use crate::proto::keys::PublicKey;

/// A checked member, with the place of its endpoint for the checks that
/// need to know this host first (the listen socket's family).
pub(super) struct Member {
    pub(super) config: PeerConfig,
    pub(super) endpoint_span: Range<usize>,
}

impl Member {
    pub(super) fn endpoint_ip(&self) -> Option<IpAddr> {
        match &self.config.endpoint {
            Endpoint::Addr(a) => Some(a.ip()),
            Endpoint::Name { .. } => None,
        }
    }
}

pub(super) fn validate_members(
    ctx: &Ctx,
    raw: Vec<Spanned<RawMember>>,
    subnet: Subnet4,
    subnet6: Option<Subnet6>,
    insecure: bool,
) -> Result<Vec<Member>, ConfigError> {
    if raw.len() < 2 {
        let have = match raw.len() {
            0 => "no [[member]] table".to_string(),
            _ => "only one [[member]]".to_string(),
        };
        return Err(ctx.err(ctx.text.len()..ctx.text.len(), "member", format!("{have}: list every relay of the cluster, this host included, as a [[member]] (name, endpoint, address, public_key); a cluster needs at least 2")));
    }
    let mut members: Vec<Member> = Vec::new();
    for rm in raw {
        let table = rm.span();
        let rm = rm.into_inner();
        let name = name(ctx, &rm.name, &members)?;
        let config = PeerConfig {
            endpoint: endpoint(ctx, &rm.endpoint, &members)?,
            address: address(ctx, &rm.address, subnet, &members)?,
            address6: address6(ctx, &rm.address6, subnet6, &members)?,
            public_key: public_key(ctx, &rm.public_key, insecure, &members, (&name, table))?,
            name,
        };
        members.push(Member {
            config,
            endpoint_span: rm.endpoint.span(),
        });
    }
    Ok(members)
}

fn configs(members: &[Member]) -> impl Iterator<Item = &PeerConfig> {
    members.iter().map(|m| &m.config)
}

/// Not empty, and unique among the members before this one.
fn name(ctx: &Ctx, raw: &Spanned<String>, members: &[Member]) -> Result<String, ConfigError> {
    let name = raw.get_ref().trim().to_string();
    if name.is_empty() {
        return Err(ctx.err(
            raw.span(),
            "member.name",
            "must not be empty; give the member's name as shown in logs and status, e.g. its hostname",
        ));
    }
    if configs(members).any(|p| p.name == name) {
        return Err(ctx.err(
            raw.span(),
            "member.name",
            format!("`{name}` is used by two members; every member needs its own name"),
        ));
    }
    Ok(name)
}

/// Where the member's relay listens; no two members at the same one.
fn endpoint(ctx: &Ctx, raw: &Spanned<String>, members: &[Member]) -> Result<Endpoint, ConfigError> {
    let endpoint = parse_endpoint(raw.get_ref())
        .map_err(|m| ctx.err(raw.span(), "member.endpoint", m.to_string()))?;
    if let Some(other) = configs(members).find(|p| p.endpoint == endpoint) {
        return Err(ctx.err(
            raw.span(),
            "member.endpoint",
            format!(
                "{endpoint} is also the endpoint of `{}`; every member's relay needs its own host:port",
                other.name
            ),
        ));
    }
    Ok(endpoint)
}

/// A host address in the overlay subnet, used by no other member.
fn address(
    ctx: &Ctx,
    s: &Spanned<String>,
    subnet: Subnet4,
    members: &[Member],
) -> Result<Ipv4Addr, ConfigError> {
    let address: Ipv4Addr = s.get_ref().trim().parse().map_err(|_| {
        ctx.err(s.span(), "member.address", format!("`{}` is not an IPv4 address; expected the member's overlay address without prefix, e.g. \"10.250.0.2\" (the prefix comes from interface.subnet)", s.get_ref()))
    })?;
    if !subnet.holds_host(address) {
        return Err(ctx.err(s.span(), "member.address", format!("{address} is not a host address in interface.subnet {subnet}; every member's overlay address is inside it, neither its network nor its broadcast address")));
    }
    if let Some(other) = configs(members).find(|p| p.address == address) {
        return Err(ctx.err(
            s.span(),
            "member.address",
            format!(
                "{address} is already the address of `{}`; every member needs its own overlay address",
                other.name
            ),
        ));
    }
    Ok(address)
}

/// Only with `interface.subnet6`, inside it, used by no other member.
fn address6(
    ctx: &Ctx,
    raw: &Option<Spanned<String>>,
    subnet6: Option<Subnet6>,
    members: &[Member],
) -> Result<Option<Ipv6Addr>, ConfigError> {
    let Some(s) = raw else {
        return Ok(None);
    };
    let a: Ipv6Addr = s.get_ref().trim().parse().map_err(|_| {
        ctx.err(s.span(), "member.address6", format!("`{}` is not an IPv6 address; expected the member's overlay IPv6 address without prefix, e.g. \"fd00:250::2\"", s.get_ref()))
    })?;
    let Some(subnet6) = subnet6 else {
        return Err(ctx.err(
            s.span(),
            "member.address6",
            "needs the overlay IPv6 prefix: set [interface] subnet6 (e.g. \"fd00:250::/64\"), or remove the member's address6",
        ));
    };
    if !subnet6.holds_host(a) {
        return Err(ctx.err(
            s.span(),
            "member.address6",
            format!("{a} is not a host address in interface.subnet6 {subnet6}"),
        ));
    }
    if let Some(other) = configs(members).find(|p| p.address6 == Some(a)) {
        return Err(ctx.err(
            s.span(),
            "member.address6",
            format!("{a} is already the address6 of `{}`", other.name),
        ));
    }
    Ok(Some(a))
}

/// Required unless `insecure`; a key given in insecure mode is still
/// checked, so turning authentication on later does not reveal old typos.
fn public_key(
    ctx: &Ctx,
    raw: &Option<Spanned<String>>,
    insecure: bool,
    members: &[Member],
    (name, table): (&str, Range<usize>),
) -> Result<Option<PublicKey>, ConfigError> {
    let Some(s) = raw else {
        if insecure {
            return Ok(None);
        }
        return Err(ctx.err(table, "member.public_key", format!("member `{name}` has no public_key: run `mcast-relay keygen` on its host and paste the `public_key = ...` line it prints into this [[member]] (or set node.insecure = true, labs only)")));
    };
    let key = PublicKey::parse(s.get_ref()).map_err(|e| {
        ctx.err(s.span(), "member.public_key", format!("{e}; expected the line `mcast-relay keygen` or `mcast-relay pubkey` printed on that member's host: 32 bytes in base64 (44 characters)"))
    })?;
    if key.is_weak() {
        return Err(ctx.err(
            s.span(),
            "member.public_key",
            format!("{key} is not a usable public key (a point of small order: anyone could pose as `{name}`); paste the line `mcast-relay keygen` printed on that member's host"),
        ));
    }
    if let Some(other) = configs(members).find(|p| p.public_key == Some(key)) {
        return Err(ctx.err(
            s.span(),
            "member.public_key",
            format!("{key} is already the public key of `{}`; every member has its own key pair: run `mcast-relay keygen` on this member's host and paste the line it prints", other.name),
        ));
    }
    Ok(Some(key))
}
