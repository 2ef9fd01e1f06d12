//! The second pass: the meaning of the file as serde read it, into a
//! [`Config`].
//!
//! This file checks `[node]` and fixes the order the tables are checked in
//! (the first error found is the one reported); the other tables have
//! their own files. Peers are checked against the interface's subnet and
//! the node's name and listen address.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use crate::config::endpoint::parse_listen;
use crate::config::error::{ConfigError, Ctx};
use crate::config::raw::RawConfig;
use crate::config::{
    Config, DEFAULT_CLOCK_SKEW_SECS, DEFAULT_INJECT_RATE_LIMIT, DEFAULT_KEEPALIVE_SECS,
    DEFAULT_PORT, DEFAULT_RESOLVE_INTERVAL_SECS, DEFAULT_STATUS_GROUP, DEFAULT_STATUS_SOCKET,
    DEFAULT_USER, NodeConfig,
};

mod allow;
mod interface;
mod peers;

use allow::validate_allow;
use interface::validate_interface;
use peers::validate_peers;

pub(super) fn validate(
    ctx: &Ctx,
    raw: RawConfig,
    default_name: &str,
) -> Result<Config, ConfigError> {
    let node_span = raw.node.span();
    let raw_node = raw.node.into_inner();
    let interface = validate_interface(ctx, raw.interface)?;

    let insecure = raw_node.insecure.as_ref().is_some_and(|b| *b.get_ref());
    let key_file = match (&raw_node.key_file, insecure) {
        (Some(k), true) => {
            return Err(ctx.err(
                k.span(),
                "node.key_file",
                "`key_file` and `insecure = true` are both set: remove `insecure` to authenticate (recommended), or remove `key_file`",
            ));
        }
        (Some(k), false) => {
            if k.get_ref().as_os_str().is_empty() {
                return Err(ctx.err(
                    k.span(),
                    "node.key_file",
                    "empty path; give the file written by `mcast-relay keygen -o FILE`",
                ));
            }
            Some(k.get_ref().clone())
        }
        (None, true) => None,
        (None, false) => {
            return Err(ctx.err(
                node_span,
                "node.key_file",
                "missing: authentication needs a cluster key; create one with `mcast-relay keygen -o /etc/mcast-relay/key`, copy it to every node and set `key_file` (or set `insecure = true` for a lab without authentication)",
            ));
        }
    };

    let listen = match &raw_node.listen {
        None => SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)),
        Some(s) => parse_listen(s.get_ref())
            .map_err(|m| ctx.err(s.span(), "node.listen", m.to_string()))?,
    };

    let metrics_listen = match &raw_node.metrics_listen {
        None => None,
        Some(s) => Some(s.get_ref().trim().parse::<SocketAddr>().map_err(|_| {
            ctx.err(
                s.span(),
                "node.metrics_listen",
                "must be an address and port such as \"127.0.0.1:9712\" (leave it out for no metrics)",
            )
        })?),
    };

    let name = match &raw_node.name {
        None => default_name.to_string(),
        Some(s) => {
            let v = s.get_ref().trim();
            if v.is_empty() {
                return Err(ctx.err(
                    s.span(),
                    "node.name",
                    "must not be empty (leave it out to use the hostname)",
                ));
            }
            v.to_string()
        }
    };

    let seconds = |v: &Option<Spanned<f64>>, key: &str, default: f64, max: f64| {
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
    };
    let max_clock_skew = seconds(
        &raw_node.max_clock_skew,
        "node.max_clock_skew",
        DEFAULT_CLOCK_SKEW_SECS,
        3600.0,
    )?;
    let keepalive = seconds(
        &raw_node.keepalive,
        "node.keepalive",
        DEFAULT_KEEPALIVE_SECS,
        60.0,
    )?;
    let resolve_interval = seconds(
        &raw_node.resolve_interval,
        "node.resolve_interval",
        DEFAULT_RESOLVE_INTERVAL_SECS,
        86400.0,
    )?;

    let inject_rate_limit = match &raw_node.inject_rate_limit {
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
    };

    let user = match &raw_node.user {
        None => DEFAULT_USER.to_string(),
        Some(s) if s.get_ref().trim().is_empty() || s.get_ref().contains(char::is_whitespace) => {
            return Err(ctx.err(
                s.span(),
                "node.user",
                format!("must be a user name; the default is \"{DEFAULT_USER}\""),
            ));
        }
        Some(s) => s.get_ref().clone(),
    };

    let allow = validate_allow(ctx, raw.allow)?;
    let peers = validate_peers(ctx, raw.peer, &interface, &name, listen)?;

    Ok(Config {
        path: ctx.path.to_path_buf(),
        node: NodeConfig {
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
        },
        interface,
        allow,
        peers,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::fixture::{GOOD, err, parse, with};
    use crate::config::{Endpoint, Mode};

    #[test]
    fn rejects_bad_values() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "address = \"10.250.0.1/24\"",
                "address = \"10.250.0.1\"",
                "interface.address",
            ),
            (
                "address = \"10.250.0.1/24\"",
                "address = \"10.250.0.0/24\"",
                "interface.address",
            ),
            (
                "address = \"10.250.0.1/24\"",
                "address = \"fd00::1/64\"",
                "interface.address",
            ),
            (
                "address6 = \"fd00:250::1/64\"",
                "address6 = \"fe80::1/64\"",
                "interface.address6",
            ),
            ("mode = \"tun\"", "mode = \"tunnel\"", "interface.mode"),
            (
                "name = \"mcast0\"",
                "name = \"a-very-long-interface\"",
                "interface.name",
            ),
            (
                "presets = [\"vrrp\", \"heartbeat\"]",
                "presets = [\"vrrp\", \"hearbeat\"]",
                "allow.presets",
            ),
            (
                "protocol = \"udp\"",
                "protocol = \"gre\"",
                "allow.rule.protocol",
            ),
            (
                "ports = [9000, \"9100-9101\"]",
                "ports = [0]",
                "allow.rule.ports",
            ),
            (
                "ports = [9000, \"9100-9101\"]",
                "ports = [\"9-2\"]",
                "allow.rule.ports",
            ),
            (
                "destinations = [\"225.0.0.1\", \"broadcast\"]",
                "destinations = [\"10.0.0.1\"]",
                "allow.rule.destinations",
            ),
            ("name = \"h2\"", "name = \"h1\"", "peer.name"),
            ("name = \"h3\"", "name = \"h2\"", "peer.name"),
            (
                "endpoint = \"192.0.2.2:7112\"",
                "endpoint = \"2001:db8::2:7112\"",
                "peer.endpoint",
            ),
            (
                "endpoint = \"192.0.2.2:7112\"",
                "endpoint = \"[2001:db8::2]:7112\"",
                "peer.endpoint",
            ),
            (
                "endpoint = \"192.0.2.2:7112\"",
                "endpoint = \"bad host:1\"",
                "peer.endpoint",
            ),
            (
                "address = \"10.250.0.3\"",
                "address = \"10.250.0.2\"",
                "peer.address",
            ),
            (
                "address = \"10.250.0.3\"",
                "address = \"10.250.0.255\"",
                "peer.address",
            ),
            (
                "address6 = \"fd00:250::2\"",
                "address6 = \"fd00:251::2\"",
                "peer.address6",
            ),
            (
                "listen = \"0.0.0.0:7112\"",
                "listen = \"everywhere\"",
                "node.listen",
            ),
            (
                "listen = \"0.0.0.0:7112\"",
                "listen = \"0.0.0.0:7112\"\ninject_rate_limit = -5",
                "node.inject_rate_limit",
            ),
            (
                "key_file = \"/etc/mcast-relay/key\"",
                "key_file = \"/k\"\ninsecure = true",
                "node.key_file",
            ),
            ("key_file = \"/etc/mcast-relay/key\"", "", "node.key_file"),
            (
                "listen = \"0.0.0.0:7112\"",
                "max_clock_skew = -1",
                "node.max_clock_skew",
            ),
        ];
        for (from, to, key) in cases {
            let e = err(&with(from, to));
            assert_eq!(&e.key, key, "for `{to}`: {e}");
            assert!(e.line > 0, "no line for `{to}`: {e}");
            assert!(e.message.len() > 20, "terse message for `{to}`: {e}");
        }
    }

    #[test]
    fn missing_sections_and_empty_allow() {
        // The custom rule alone still permits something.
        let c = parse(&with(
            "[allow]\npresets = [\"vrrp\", \"heartbeat\"]",
            "[allow]\npresets = []",
        ))
        .expect("a custom rule is enough");
        assert_eq!(c.allow.rules().len(), 1);
        let no_rules = GOOD
            .split("[[allow.rule]]")
            .next()
            .expect("head")
            .to_string();
        let peers = GOOD
            .split("[[peer]]")
            .skip(1)
            .map(|p| format!("[[peer]]{p}"))
            .collect::<String>();
        let empty_allow =
            no_rules.replace("presets = [\"vrrp\", \"heartbeat\"]", "presets = []") + &peers;
        let e = err(&empty_allow);
        assert_eq!(e.key, "allow");
        assert!(e.message.contains("presets"), "{e}");
        let no_peers = GOOD.split("[[peer]]").next().expect("head");
        assert_eq!(err(no_peers).key, "peer");
        let e = err("[node]\nkey_file = \"/k\"\n");
        assert!(e.message.contains("interface"), "{e}");
    }

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
