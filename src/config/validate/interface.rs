//! The `[interface]` table: the tun/tap device's name, mode, overlay
//! addresses and MTU.
//!
//! The overlay IPv4 subnet decided here is what every peer address is
//! checked against, so its rules (a prefix, a host address) sit together.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use toml::Spanned;

use crate::config::error::{ConfigError, Ctx};
use crate::config::raw::RawInterface;
use crate::config::{DEFAULT_INTERFACE, InterfaceConfig, Mode};
use crate::proto::overlay::{Prefix, mask_v4};

pub(super) fn validate_interface(
    ctx: &Ctx,
    raw: Spanned<RawInterface>,
) -> Result<InterfaceConfig, ConfigError> {
    let raw = raw.into_inner();
    let name = name(ctx, &raw.name)?;
    let mode = mode(ctx, &raw.mode)?;
    let (address, prefix_len) = address(ctx, &raw.address)?;
    let address6 = address6(ctx, &raw.address6)?;
    let mtu = mtu(ctx, &raw.mtu, address6.is_some())?;
    Ok(InterfaceConfig {
        name,
        mode,
        address,
        prefix_len,
        address6,
        mtu,
    })
}

fn name(ctx: &Ctx, raw: &Option<Spanned<String>>) -> Result<String, ConfigError> {
    match raw {
        None => Ok(DEFAULT_INTERFACE.to_string()),
        Some(s) => {
            let n = s.get_ref();
            let ok = !n.is_empty()
                && n.len() <= 15
                && n != "."
                && n != ".."
                && n.chars()
                    .all(|c| c.is_ascii_graphic() && c != '/' && c != ':');
            if !ok {
                return Err(ctx.err(s.span(), "interface.name", format!("`{n}` is not a valid interface name: 1 to 15 characters, no spaces, `/` or `:`")));
            }
            Ok(n.clone())
        }
    }
}

fn mode(ctx: &Ctx, raw: &Option<Spanned<String>>) -> Result<Mode, ConfigError> {
    match raw {
        None => Ok(Mode::Tun),
        Some(s) => match s.get_ref().as_str() {
            "tun" => Ok(Mode::Tun),
            "tap" => Ok(Mode::Tap),
            other => Err(ctx.err(
                s.span(),
                "interface.mode",
                format!("unknown mode `{other}`; expected \"tun\" or \"tap\""),
            )),
        },
    }
}

/// This node's IPv4 overlay address and the prefix length all nodes share.
fn address(ctx: &Ctx, a: &Spanned<String>) -> Result<(Ipv4Addr, u8), ConfigError> {
    let p: Prefix = a.get_ref().parse().map_err(|m| {
        ctx.err(
            a.span(),
            "interface.address",
            format!(
                "{m}; expected this node's overlay address with its prefix, e.g. \"10.250.0.1/24\""
            ),
        )
    })?;
    let IpAddr::V4(address) = p.addr else {
        return Err(ctx.err(a.span(), "interface.address", "must be an IPv4 address with prefix, e.g. \"10.250.0.1/24\"; put an IPv6 overlay address in `address6`"));
    };
    if !a.get_ref().contains('/') {
        return Err(ctx.err(
            a.span(),
            "interface.address",
            format!("needs a prefix length shared by all nodes, e.g. \"{address}/24\""),
        ));
    }
    if !(8..=30).contains(&p.len) {
        return Err(ctx.err(a.span(), "interface.address", "prefix length must be between 8 and 30 so the subnet has a broadcast address and room for the nodes"));
    }
    let host = u32::from(address) & !mask_v4(p.len);
    if host == 0 || host == !mask_v4(p.len) {
        return Err(ctx.err(
            a.span(),
            "interface.address",
            format!(
                "{address} is the network or broadcast address of its subnet; pick a host address"
            ),
        ));
    }
    Ok((address, p.len))
}

fn address6(
    ctx: &Ctx,
    raw: &Option<Spanned<String>>,
) -> Result<Option<(Ipv6Addr, u8)>, ConfigError> {
    let Some(s) = raw else {
        return Ok(None);
    };
    let p: Prefix = s.get_ref().parse().map_err(|m| {
        ctx.err(
            s.span(),
            "interface.address6",
            format!("{m}; expected e.g. \"fd00:250::1/64\""),
        )
    })?;
    let IpAddr::V6(a6) = p.addr else {
        return Err(ctx.err(
            s.span(),
            "interface.address6",
            "must be an IPv6 address with prefix, e.g. \"fd00:250::1/64\"",
        ));
    };
    if !s.get_ref().contains('/') || p.len == 0 || p.len > 127 {
        return Err(ctx.err(
            s.span(),
            "interface.address6",
            "needs a prefix length from 1 to 127 shared by all nodes, e.g. \"fd00:250::1/64\"",
        ));
    }
    if a6.is_multicast() || a6.is_unicast_link_local() || a6.is_loopback() || a6.is_unspecified() {
        return Err(ctx.err(s.span(), "interface.address6", "must be a unicast address outside fe80::/10 (the relay derives the link-local address itself), e.g. \"fd00:250::1/64\""));
    }
    Ok(Some((a6, p.len)))
}

/// IPv6 needs at least 1280 bytes, so the floor depends on `has_v6`.
fn mtu(ctx: &Ctx, raw: &Option<Spanned<i64>>, has_v6: bool) -> Result<Option<u32>, ConfigError> {
    let Some(s) = raw else {
        return Ok(None);
    };
    let min = if has_v6 { 1280 } else { 576 };
    let v = *s.get_ref();
    if !(min..=65_535).contains(&v) {
        return Err(ctx.err(s.span(), "interface.mtu", format!("must be between {min} and 65535 (IPv6 needs at least 1280); leave it out to use the underlay MTU minus the relay's overhead")));
    }
    Ok(Some(v as u32))
}
