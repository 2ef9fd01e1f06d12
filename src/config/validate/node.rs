//! The `[node]` table: this relay's name, key, sockets, timers and account.
//!
//! One small function per key that can be wrong, in the order the errors
//! are reported, so `validate_node` reads as the list of the table's keys.

use std::net::SocketAddr;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use crate::config::endpoint::parse_listen;
use crate::config::error::{ConfigError, Ctx};
use crate::config::raw::RawNode;
use crate::config::{
    DEFAULT_CLOCK_SKEW_SECS, DEFAULT_INJECT_RATE_LIMIT, DEFAULT_KEEPALIVE_SECS, DEFAULT_PORT,
    DEFAULT_RESOLVE_INTERVAL_SECS, DEFAULT_STATUS_GROUP, DEFAULT_STATUS_SOCKET, DEFAULT_USER,
    NodeConfig,
};

pub(super) fn validate_node(
    ctx: &Ctx,
    raw: Spanned<RawNode>,
    default_name: &str,
) -> Result<NodeConfig, ConfigError> {
    let node_span = raw.span();
    let raw_node = raw.into_inner();
    let insecure = raw_node.insecure.as_ref().is_some_and(|b| *b.get_ref());
    let key_file = key_file(ctx, &raw_node.key_file, insecure, node_span)?;
    let listen = listen(ctx, &raw_node.listen)?;
    let metrics_listen = metrics_listen(ctx, &raw_node.metrics_listen)?;
    let name = name(ctx, &raw_node.name, default_name)?;
    let max_clock_skew = seconds(
        ctx,
        &raw_node.max_clock_skew,
        "node.max_clock_skew",
        DEFAULT_CLOCK_SKEW_SECS,
        3600.0,
    )?;
    let keepalive = seconds(
        ctx,
        &raw_node.keepalive,
        "node.keepalive",
        DEFAULT_KEEPALIVE_SECS,
        60.0,
    )?;
    let resolve_interval = seconds(
        ctx,
        &raw_node.resolve_interval,
        "node.resolve_interval",
        DEFAULT_RESOLVE_INTERVAL_SECS,
        86400.0,
    )?;
    let inject_rate_limit = inject_rate_limit(ctx, &raw_node.inject_rate_limit)?;
    let user = user(ctx, &raw_node.user)?;

    Ok(NodeConfig {
        name,
        listen,
        key_file,
        insecure,
        max_clock_skew,
        resolve_interval,
        keepalive,
        inject_rate_limit,
        user,
        status_socket: raw_node
            .status_socket
            .as_ref()
            .map_or(PathBuf::from(DEFAULT_STATUS_SOCKET), |s| {
                PathBuf::from(s.get_ref())
            }),
        status_group: raw_node
            .status_group
            .as_ref()
            .map_or(DEFAULT_STATUS_GROUP.to_string(), |s| s.get_ref().clone()),
        metrics_listen,
        quorum: raw_node.quorum.unwrap_or(false),
    })
}

/// Exactly one of `key_file` and `insecure = true`; `node_span` places the
/// error when neither is set.
fn key_file(
    ctx: &Ctx,
    raw: &Option<Spanned<PathBuf>>,
    insecure: bool,
    node_span: Range<usize>,
) -> Result<Option<PathBuf>, ConfigError> {
    match (raw, insecure) {
        (Some(k), true) => Err(ctx.err(
            k.span(),
            "node.key_file",
            "`key_file` and `insecure = true` are both set: remove `insecure` to authenticate (recommended), or remove `key_file`",
        )),
        (Some(k), false) => {
            if k.get_ref().as_os_str().is_empty() {
                return Err(ctx.err(
                    k.span(),
                    "node.key_file",
                    "empty path; give the file written by `mcast-relay keygen -o FILE`",
                ));
            }
            Ok(Some(k.get_ref().clone()))
        }
        (None, true) => Ok(None),
        (None, false) => Err(ctx.err(
            node_span,
            "node.key_file",
            "missing: authentication needs a cluster key; create one with `mcast-relay keygen -o /etc/mcast-relay/key`, copy it to every node and set `key_file` (or set `insecure = true` for a lab without authentication)",
        )),
    }
}

fn listen(ctx: &Ctx, raw: &Option<Spanned<String>>) -> Result<SocketAddr, ConfigError> {
    Ok(match raw {
        None => SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)),
        Some(s) => parse_listen(s.get_ref())
            .map_err(|m| ctx.err(s.span(), "node.listen", m.to_string()))?,
    })
}

fn metrics_listen(
    ctx: &Ctx,
    raw: &Option<Spanned<String>>,
) -> Result<Option<SocketAddr>, ConfigError> {
    Ok(match raw {
        None => None,
        Some(s) => Some(s.get_ref().trim().parse::<SocketAddr>().map_err(|_| {
            ctx.err(
                s.span(),
                "node.metrics_listen",
                "must be an address and port such as \"127.0.0.1:9712\" (leave it out for no metrics)",
            )
        })?),
    })
}

fn name(
    ctx: &Ctx,
    raw: &Option<Spanned<String>>,
    default_name: &str,
) -> Result<String, ConfigError> {
    match raw {
        None => Ok(default_name.to_string()),
        Some(s) => {
            let v = s.get_ref().trim();
            if v.is_empty() {
                return Err(ctx.err(
                    s.span(),
                    "node.name",
                    "must not be empty (leave it out to use the hostname)",
                ));
            }
            Ok(v.to_string())
        }
    }
}

/// A duration key: `default` seconds when left out, else above 0 and at
/// most `max`.
fn seconds(
    ctx: &Ctx,
    v: &Option<Spanned<f64>>,
    key: &str,
    default: f64,
    max: f64,
) -> Result<Duration, ConfigError> {
    let Some(s) = v else {
        return Ok(Duration::from_secs_f64(default));
    };
    let x = *s.get_ref();
    if !(x > 0.0 && x <= max) {
        return Err(ctx.err(
            s.span(),
            key,
            format!("must be a number of seconds above 0 and at most {max}"),
        ));
    }
    Ok(Duration::from_secs_f64(x))
}

fn inject_rate_limit(ctx: &Ctx, raw: &Option<Spanned<i64>>) -> Result<u32, ConfigError> {
    Ok(match raw {
        None => DEFAULT_INJECT_RATE_LIMIT,
        Some(s) => u32::try_from(*s.get_ref())
            .ok()
            .filter(|n| *n <= 1_000_000)
            .ok_or_else(|| {
                ctx.err(
                    s.span(),
                    "node.inject_rate_limit",
                    format!("must be a number of packets per second from 0 (no limit) to 1000000; the default is {DEFAULT_INJECT_RATE_LIMIT}"),
                )
            })?,
    })
}

fn user(ctx: &Ctx, raw: &Option<Spanned<String>>) -> Result<String, ConfigError> {
    match raw {
        None => Ok(DEFAULT_USER.to_string()),
        Some(s) if s.get_ref().trim().is_empty() || s.get_ref().contains(char::is_whitespace) => {
            Err(ctx.err(
                s.span(),
                "node.user",
                format!("must be a user name; the default is \"{DEFAULT_USER}\""),
            ))
        }
        Some(s) => Ok(s.get_ref().clone()),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Endpoint;
    use crate::config::Mode;
    use crate::config::fixture::{err, parse};

    #[test]
    fn insecure_needs_no_key_and_defaults_apply() {
        let text = r#"
[node]
insecure = true
[interface]
address = "10.250.0.1/24"
[allow]
presets = ["corosync"]
[[peer]]
name = "b"
endpoint = "[2001:db8::2]"
address = "10.250.0.2"
"#;
        // An IPv6 endpoint needs an IPv6 listen socket...
        assert_eq!(err(text).key, "peer.endpoint");
        let c = parse(&text.replace("insecure = true", "insecure = true\nlisten = \"[::]:7112\""))
            .expect("valid");
        assert!(c.node.insecure);
        assert_eq!(c.node.key_file, None);
        assert_eq!(c.interface.name, "mcast0");
        assert_eq!(c.interface.mode, Mode::Tun);
        assert_eq!(
            c.peers[0].endpoint,
            Endpoint::Addr("[2001:db8::2]:7112".parse().expect("addr"))
        );
        assert!(!c.node.name.is_empty(), "defaults to the hostname");
    }
}
