//! The `[[vip]]` tables: which virtual router, its address, the command
//! that moves it and how long to wait, into [`VipConfig`]s.

use std::net::IpAddr;
use std::path::Path;

use toml::Spanned;

use super::node::seconds;
use crate::config::error::{ConfigError, Ctx};
use crate::config::raw::RawVip;
use crate::config::{DEFAULT_HOOK_TIMEOUT_SECS, VipConfig};
use crate::core::vrrp_watch::Family;

/// A settle longer than this is a mistake (the address would not follow
/// a failover for an hour).
const MAX_SETTLE_SECS: f64 = 3600.0;
const MAX_TIMEOUT_SECS: f64 = 3600.0;

pub(super) fn validate_vips(
    ctx: &Ctx,
    raw: Vec<Spanned<RawVip>>,
    has_v6: bool,
) -> Result<Vec<VipConfig>, ConfigError> {
    let mut vips: Vec<VipConfig> = Vec::new();
    for r in raw {
        let span = r.span();
        let v = validate_vip(ctx, r.into_inner(), has_v6)?;
        if vips
            .iter()
            .any(|o| (o.vrid, o.family) == (v.vrid, v.family))
        {
            return Err(ctx.err(
                span,
                "vip",
                format!(
                    "VRID {} ({}) has two [[vip]] tables; one command per virtual router (a hook script may do several things)",
                    v.vrid,
                    v.family.name()
                ),
            ));
        }
        vips.push(v);
    }
    Ok(vips)
}

fn validate_vip(ctx: &Ctx, r: RawVip, has_v6: bool) -> Result<VipConfig, ConfigError> {
    let vrid = u8::try_from(*r.vrid.get_ref())
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| {
            ctx.err(
                r.vrid.span(),
                "vip.vrid",
                "must be a VRID (VHID for CARP) from 1 to 255",
            )
        })?;
    let family = match r.family.as_ref().map(|f| f.get_ref().as_str()) {
        None | Some("ipv4") => Family::V4,
        Some("ipv6") => Family::V6,
        Some(other) => {
            let span = r.family.as_ref().map_or(0..0, Spanned::span);
            return Err(ctx.err(
                span,
                "vip.family",
                format!("unknown family `{other}`; expected \"ipv4\" or \"ipv6\""),
            ));
        }
    };
    if family == Family::V6 && !has_v6 {
        let span = r.family.as_ref().map_or(0..0, Spanned::span);
        return Err(ctx.err(
            span,
            "vip.family",
            "an IPv6 virtual router needs interface.subnet6, else no IPv6 advert crosses the relay",
        ));
    }
    let address = match &r.address {
        None => None,
        Some(a) => {
            let ip: IpAddr = a.get_ref().parse().map_err(|_| {
                ctx.err(
                    a.span(),
                    "vip.address",
                    format!("`{}` is not an IP address", a.get_ref()),
                )
            })?;
            if ip.is_ipv6() != (family == Family::V6) {
                return Err(ctx.err(
                    a.span(),
                    "vip.address",
                    format!(
                        "{ip} is not an {} address, as vip.family says",
                        family.name()
                    ),
                ));
            }
            Some(ip)
        }
    };
    let argv = r.on_master.get_ref();
    let Some(program) = argv.first() else {
        return Err(ctx.err(
            r.on_master.span(),
            "vip.on_master",
            "is empty; give the command and its arguments, e.g. [\"/usr/lib/mcast-relay/hooks/aws-eip\", \"eipalloc-...\"]",
        ));
    };
    if !Path::new(program.get_ref()).is_absolute() {
        return Err(ctx.err(
            program.span(),
            "vip.on_master",
            format!(
                "`{}` is not an absolute path; commands run without a shell and without a search path",
                program.get_ref()
            ),
        ));
    }
    if let Some(bad) = argv.iter().find(|a| a.get_ref().contains('\0')) {
        return Err(ctx.err(bad.span(), "vip.on_master", "an argument holds a NUL byte"));
    }
    // Left out: the core's six advert intervals. Given: above 0, so the
    // claim always waits for a second decision.
    let settle = r
        .settle
        .as_ref()
        .map(|_| seconds(ctx, &r.settle, "vip.settle", 0.0, MAX_SETTLE_SECS))
        .transpose()?;
    let timeout = seconds(
        ctx,
        &r.timeout,
        "vip.timeout",
        DEFAULT_HOOK_TIMEOUT_SECS,
        MAX_TIMEOUT_SECS,
    )?;
    Ok(VipConfig {
        vrid,
        family,
        address,
        on_master: argv.iter().map(|a| a.get_ref().clone()).collect(),
        settle,
        timeout,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::fixture::{GOOD, err, parse};
    use crate::core::vrrp_watch::Family;

    const HOOK: &str = "\n[[vip]]\nvrid = 51\naddress = \"10.0.1.100\"\non_master = [\"/usr/lib/mcast-relay/hooks/aws-eip\", \"eipalloc-1\"]\nsettle = 2.5\n";

    #[test]
    fn a_vip_table_is_read() {
        let cfg = parse(&format!(
            "{GOOD}{HOOK}[[vip]]\nvrid = 51\nfamily = \"ipv6\"\non_master = [\"/bin/true\"]\ntimeout = 5.0\n"
        ))
        .expect("parses");
        let v = &cfg.vips;
        assert_eq!(v.len(), 2);
        assert_eq!((v[0].vrid, v[0].family), (51, Family::V4));
        assert_eq!(
            v[0].address.map(|a| a.to_string()).as_deref(),
            Some("10.0.1.100")
        );
        assert_eq!(
            v[0].on_master,
            ["/usr/lib/mcast-relay/hooks/aws-eip", "eipalloc-1"]
        );
        assert_eq!(v[0].settle, Some(Duration::from_millis(2500)));
        assert_eq!(v[0].timeout, Duration::from_secs(30));
        assert_eq!(
            (v[1].family, v[1].settle, v[1].timeout),
            (Family::V6, None, Duration::from_secs(5))
        );
    }

    #[test]
    fn vip_mistakes_name_the_key_and_line() {
        let line = GOOD.lines().count() + 2;
        for (table, key, says) in [
            (
                "vrid = 0\non_master = [\"/bin/true\"]",
                "vip.vrid",
                "1 to 255",
            ),
            (
                "vrid = 7\nfamily = \"inet\"\non_master = [\"/bin/true\"]",
                "vip.family",
                "ipv4",
            ),
            (
                "vrid = 7\naddress = \"fe80::1\"\non_master = [\"/bin/true\"]",
                "vip.address",
                "not an IPv4",
            ),
            ("vrid = 7\non_master = []", "vip.on_master", "is empty"),
            (
                "vrid = 7\non_master = [\"aws-eip\"]",
                "vip.on_master",
                "absolute path",
            ),
            (
                "vrid = 7\non_master = [\"/bin/true\"]\nsettle = 0.0",
                "vip.settle",
                "above 0",
            ),
            (
                "vrid = 7\non_master = [\"/bin/true\"]\ntimeout = 0",
                "vip.timeout",
                "above 0",
            ),
        ] {
            let e = err(&format!("{GOOD}\n[[vip]]\n{table}\n"));
            assert_eq!(e.key, key, "{table}: {e}");
            assert!(e.message.contains(says), "{table}: {e}");
            assert!(e.line >= line, "{table}: line {} of {e}", e.line);
        }
        let e = err(&format!("{GOOD}{HOOK}{HOOK}"));
        assert!(e.message.contains("two [[vip]] tables"), "{e}");
    }
}
