//! The `[allow]` table: presets and `[[allow.rule]]`s, turned into the
//! core's `AllowList`.
//!
//! An allow list that permits nothing is refused here, since a relay that
//! relays nothing is always a mistake in the file.

use std::ops::Range;

use toml::Spanned;

use crate::config::error::{ConfigError, Ctx};
use crate::config::raw::{RawAllow, RawRule, RawScalar};
use crate::core::allow::{AllowList, Destinations, Preset, Rule, parse_protocol, preset_names};
use crate::proto::packet::{PROTO_TCP, PROTO_UDP};

pub(super) fn validate_allow(
    ctx: &Ctx,
    raw: Option<Spanned<RawAllow>>,
) -> Result<AllowList, ConfigError> {
    let nothing = format!(
        "[allow] permits nothing, so nothing would be relayed; add e.g. `presets = [\"vrrp\"]` (presets: {}) or an [[allow.rule]]",
        preset_names()
    );
    let Some(raw) = raw else {
        return Err(ctx.err(0..0, "allow", nothing));
    };
    let span = raw.span();
    let raw = raw.into_inner();
    let mut rules = Vec::new();
    for p in &raw.presets {
        let preset = Preset::from_name(p.get_ref()).ok_or_else(|| {
            ctx.err(
                p.span(),
                "allow.presets",
                format!(
                    "unknown preset `{}`; expected one of {}",
                    p.get_ref(),
                    preset_names()
                ),
            )
        })?;
        if !rules.iter().any(|r: &Rule| r.label == preset.name()) {
            rules.push(preset.rule());
        }
    }
    for (n, r) in raw.rule.into_iter().enumerate() {
        rules.push(validate_rule(ctx, r.into_inner(), n + 1)?);
    }
    if rules.is_empty() {
        return Err(ctx.err(span, "allow", nothing));
    }
    Ok(AllowList::new(rules))
}

/// The `n`th `[[allow.rule]]` (1-based, for its label).
fn validate_rule(ctx: &Ctx, raw: RawRule, n: usize) -> Result<Rule, ConfigError> {
    let ps = raw.protocol.span();
    let proto = protocol(ctx, raw.protocol)?;
    let mut ports = Vec::new();
    for p in &raw.ports {
        ports.push(port_range(ctx, p, proto)?);
    }
    let dests = destinations(ctx, &raw.destinations, ps)?;
    Ok(Rule {
        label: format!("rule {n}"),
        proto,
        ports,
        dests,
    })
}

/// A protocol by name or number.
fn protocol(ctx: &Ctx, raw: Spanned<RawScalar>) -> Result<u8, ConfigError> {
    let ps = raw.span();
    match raw.into_inner() {
        RawScalar::Text(s) => parse_protocol(&s).map_err(|e| e.to_string()),
        RawScalar::Int(i) => {
            u8::try_from(i).map_err(|_| format!("protocol number {i} is out of range 0-255"))
        }
    }
    .map_err(|m| ctx.err(ps, "allow.rule.protocol", m))
}

/// One entry of `ports`: a port or a "lo-hi" range, only for UDP and TCP.
fn port_range(ctx: &Ctx, p: &Spanned<RawScalar>, proto: u8) -> Result<(u16, u16), ConfigError> {
    if proto != PROTO_UDP && proto != PROTO_TCP {
        return Err(ctx.err(
            p.span(),
            "allow.rule.ports",
            "ports only apply to protocol \"udp\" or \"tcp\"",
        ));
    }
    let bad = |v: &str| {
        ctx.err(
            p.span(),
            "allow.rule.ports",
            format!("`{v}` is not a port; expected a number 1-65535 or a range \"5404-5405\""),
        )
    };
    let port = |s: &str| s.trim().parse::<u16>().ok().filter(|p| *p > 0);
    let range = match p.get_ref() {
        RawScalar::Int(i) => {
            let v = u16::try_from(*i)
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| bad(&i.to_string()))?;
            (v, v)
        }
        RawScalar::Text(s) => match s.split_once('-') {
            Some((lo, hi)) => match (port(lo), port(hi)) {
                (Some(lo), Some(hi)) if lo <= hi => (lo, hi),
                _ => return Err(bad(s)),
            },
            None => {
                let v = port(s).ok_or_else(|| bad(s))?;
                (v, v)
            }
        },
    };
    Ok(range)
}

/// `destinations`, every one when left out. An empty list is refused at
/// the rule's `protocol` (`ps`): the list itself carries no span.
fn destinations(
    ctx: &Ctx,
    raw: &Option<Vec<Spanned<String>>>,
    ps: Range<usize>,
) -> Result<Destinations, ConfigError> {
    let Some(list) = raw else {
        return Ok(Destinations::all());
    };
    let mut d = Destinations::default();
    for e in list {
        d.add(e.get_ref())
            .map_err(|m| ctx.err(e.span(), "allow.rule.destinations", m.to_string()))?;
    }
    if list.is_empty() {
        return Err(ctx.err(
            ps,
            "allow.rule.destinations",
            "is empty, so the rule allows nothing; leave it out to allow every destination",
        ));
    }
    Ok(d)
}
