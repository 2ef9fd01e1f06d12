//! The second pass: the meaning of the file as serde read it, one table at
//! a time, into a [`Config`].
//!
//! Each table has its own file; this one fixes the order they are checked
//! in (the first error found is the one reported) and what one table's
//! result the next needs: peers are checked against the interface's subnet
//! and the node's name and listen address.

use crate::config::Config;
use crate::config::error::{ConfigError, Ctx};
use crate::config::raw::RawConfig;

mod allow;
mod interface;
mod node;
mod peers;

pub(super) fn validate(
    ctx: &Ctx,
    raw: RawConfig,
    default_name: &str,
) -> Result<Config, ConfigError> {
    let interface = interface::validate_interface(ctx, raw.interface)?;
    let node = node::validate_node(ctx, raw.node, default_name)?;
    let allow = allow::validate_allow(ctx, raw.allow)?;
    let peers = peers::validate_peers(ctx, raw.peer, &interface, &node.name, node.listen)?;
    Ok(Config {
        path: ctx.path.to_path_buf(),
        node,
        interface,
        allow,
        peers,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::fixture::{GOOD, err, parse, with};

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
}
