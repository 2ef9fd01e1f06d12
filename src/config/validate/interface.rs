//! The `[interface]` table: the tun/tap device's name, mode, the overlay
//! subnets every member's address is in, and the MTU.
//!
//! The subnets decided here are what every member's address is checked
//! against; this host's own addresses come from its `[[member]]` entry, so
//! the table is the same on every host.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use toml::Spanned;

use crate::config::error::{ConfigError, Ctx};
use crate::config::raw::RawInterface;
use crate::config::{DEFAULT_INTERFACE, Mode};
use crate::proto::overlay::{Prefix, mask_v4, mask_v6};

/// The table, checked; the host's addresses are added once it is known.
pub(super) struct Interface {
    pub(super) name: String,
    pub(super) mode: Mode,
    pub(super) subnet: Subnet4,
    pub(super) subnet6: Option<Subnet6>,
    pub(super) mtu: Option<u32>,
}

#[derive(Clone, Copy)]
pub(super) struct Subnet4 {
    pub(super) network: Ipv4Addr,
    pub(super) len: u8,
}

impl Subnet4 {
    /// A host address of the subnet: inside it, neither its network nor
    /// its broadcast address.
    pub(super) fn holds_host(&self, a: Ipv4Addr) -> bool {
        let mask = mask_v4(self.len);
        let host = u32::from(a) & !mask;
        u32::from(a) & mask == u32::from(self.network) && host != 0 && host != !mask
    }
}

impl std::fmt::Display for Subnet4 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.len)
    }
}

#[derive(Clone, Copy)]
pub(super) struct Subnet6 {
    pub(super) network: Ipv6Addr,
    pub(super) len: u8,
}

impl Subnet6 {
    /// Inside the prefix and not its all-zero host (the subnet-router
    /// anycast address).
    pub(super) fn holds_host(&self, a: Ipv6Addr) -> bool {
        let mask = mask_v6(self.len);
        u128::from(a) & mask == u128::from(self.network) && u128::from(a) & !mask != 0
    }
}

impl std::fmt::Display for Subnet6 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.len)
    }
}

pub(super) fn validate_interface(
    ctx: &Ctx,
    raw: Spanned<RawInterface>,
) -> Result<Interface, ConfigError> {
    let span = raw.span();
    let raw = raw.into_inner();
    let name = name(ctx, &raw.name)?;
    let mode = mode(ctx, &raw.mode)?;
    let subnet = subnet(ctx, &raw.subnet, span)?;
    let subnet6 = subnet6(ctx, &raw.subnet6)?;
    let mtu = mtu(ctx, &raw.mtu, subnet6.is_some())?;
    Ok(Interface {
        name,
        mode,
        subnet,
        subnet6,
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

/// The overlay IPv4 subnet all members share, given as its network.
fn subnet(
    ctx: &Ctx,
    raw: &Option<Spanned<String>>,
    table: std::ops::Range<usize>,
) -> Result<Subnet4, ConfigError> {
    let Some(s) = raw else {
        return Err(ctx.err(table, "interface.subnet", "missing: give the overlay IPv4 subnet every [[member]] address is in, e.g. `subnet = \"10.250.0.0/24\"`"));
    };
    let p: Prefix = s.get_ref().parse().map_err(|m| {
        ctx.err(
            s.span(),
            "interface.subnet",
            format!("{m}; expected the overlay IPv4 subnet, e.g. \"10.250.0.0/24\""),
        )
    })?;
    let IpAddr::V4(a) = p.addr else {
        return Err(ctx.err(s.span(), "interface.subnet", "must be an IPv4 subnet, e.g. \"10.250.0.0/24\"; put an IPv6 overlay prefix in `subnet6`"));
    };
    if !s.get_ref().contains('/') {
        return Err(ctx.err(
            s.span(),
            "interface.subnet",
            format!("needs a prefix length, e.g. \"{a}/24\""),
        ));
    }
    if !(8..=30).contains(&p.len) {
        return Err(ctx.err(s.span(), "interface.subnet", "prefix length must be between 8 and 30 so the subnet has a broadcast address and room for the members"));
    }
    let network = Ipv4Addr::from(u32::from(a) & mask_v4(p.len));
    if network != a {
        return Err(ctx.err(
            s.span(),
            "interface.subnet",
            format!("{a}/{} has host bits set; the subnet is \"{network}/{}\" (each member's own address goes in its [[member]] `address`)", p.len, p.len),
        ));
    }
    Ok(Subnet4 {
        network,
        len: p.len,
    })
}

fn subnet6(ctx: &Ctx, raw: &Option<Spanned<String>>) -> Result<Option<Subnet6>, ConfigError> {
    let Some(s) = raw else {
        return Ok(None);
    };
    let p: Prefix = s.get_ref().parse().map_err(|m| {
        ctx.err(
            s.span(),
            "interface.subnet6",
            format!("{m}; expected the overlay IPv6 prefix, e.g. \"fd00:250::/64\""),
        )
    })?;
    let IpAddr::V6(a6) = p.addr else {
        return Err(ctx.err(
            s.span(),
            "interface.subnet6",
            "must be an IPv6 prefix, e.g. \"fd00:250::/64\"",
        ));
    };
    if !s.get_ref().contains('/') || p.len == 0 || p.len > 127 {
        return Err(ctx.err(
            s.span(),
            "interface.subnet6",
            "needs a prefix length from 1 to 127, e.g. \"fd00:250::/64\"",
        ));
    }
    if a6.is_multicast() || a6.is_unicast_link_local() || a6.is_loopback() || a6.is_unspecified() {
        return Err(ctx.err(s.span(), "interface.subnet6", "must be a unicast prefix outside fe80::/10 (the relay derives the link-local address itself), e.g. \"fd00:250::/64\""));
    }
    let network = Ipv6Addr::from(u128::from(a6) & mask_v6(p.len));
    if network != a6 {
        return Err(ctx.err(
            s.span(),
            "interface.subnet6",
            format!("{a6}/{} has host bits set; the prefix is \"{network}/{}\" (each member's own address goes in its [[member]] `address6`)", p.len, p.len),
        ));
    }
    Ok(Some(Subnet6 {
        network,
        len: p.len,
    }))
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
