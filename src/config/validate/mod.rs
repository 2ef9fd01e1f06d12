//! The second pass: the meaning of the file as serde read it, one table at
//! a time, then which member this host is, into a [`Config`].
//!
//! Each table has its own file; this one fixes the order they are checked
//! in (the first error found is the one reported) and what one table's
//! result the next needs: members are checked against the interface's
//! subnets; the host's key is read only once the whole file is valid, and
//! what depends on which member the host is (its addresses, name, default
//! listen port, its peers' endpoint families) is settled last.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

use crate::config::error::{ConfigError, Ctx};
use crate::config::raw::RawConfig;
use crate::config::{Config, Endpoint, InterfaceConfig, PeerConfig};

mod allow;
mod identity;
mod interface;
mod members;
mod node;
mod old_layout;
mod vip;

pub(crate) use identity::{Credential, HostFacts};
pub(super) use old_layout::refuse_old_layout;

use identity::HostKey;
use members::Member;

/// `load_key` reads the host's key from the path the file (or
/// `key_override`) names; it is not called in insecure mode.
pub(super) fn validate<E: From<ConfigError>>(
    ctx: &Ctx,
    raw: RawConfig,
    key_override: Option<&Path>,
    facts: &HostFacts,
    load_key: impl FnOnce(&Path) -> Result<Credential, E>,
) -> Result<Config, E> {
    let iface = interface::validate_interface(ctx, raw.interface)?;
    let families = 1 + u32::from(iface.subnet6.is_some());
    let node = node::validate_node(ctx, raw.node, families)?;
    let allow = allow::validate_allow(ctx, raw.allow)?;
    let vips = vip::validate_vips(ctx, raw.vip, iface.subnet6.is_some())?;
    let members = members::validate_members(
        ctx,
        raw.member,
        iface.subnet,
        iface.subnet6,
        node.insecure(),
    )?;
    let key_file = match (node.insecure(), key_override) {
        (true, _) => None,
        (false, Some(k)) => Some(k.to_path_buf()),
        (false, None) => node.key_file.clone(),
    };
    let credential = key_file.as_deref().map(load_key).transpose()?;
    let public_key = credential.as_ref().map(Credential::public);
    let host_key = public_key
        .zip(key_file.as_deref())
        .map(|(public, file)| HostKey { public, file });
    let me = identity::find_self(ctx, &members, &node, host_key, facts)?;
    let own = &members[me].config;
    let listen = match &node.listen {
        Some(a) => *a,
        None => default_listen(&members, own.endpoints[0].port()),
    };
    let interface = InterfaceConfig {
        name: iface.name,
        mode: iface.mode,
        address: own.address,
        prefix_len: iface.subnet.len,
        address6: own.address6.zip(iface.subnet6.map(|s| s.len)),
        mtu: iface.mtu,
    };
    let name = own.name.clone();
    // With a key, the same as the credential's: that is how it was found.
    let own_key = own.public_key;
    // Every member, this host too: its own endpoint is where the others
    // send, so it must be of the family it listens on.
    for m in &members {
        reachable(ctx, m, listen)?;
    }
    let peers = members
        .into_iter()
        .enumerate()
        .filter(|(i, _)| *i != me)
        .map(|(_, m)| m.config)
        .collect();
    Ok(Config {
        path: ctx.path.to_path_buf(),
        key_override: key_override.map(Path::to_path_buf),
        node: node.into_config(name, listen, key_file, credential, own_key),
        interface,
        allow,
        peers,
        vips,
    })
}

/// The wildcard address on `port`: IPv6's (dual-stack, so IPv4 paths
/// still work) as soon as any member has an IPv6 path, else IPv4's; so the
/// relay listens on whatever its paths need without a `listen` line.
fn default_listen(members: &[Member], port: u16) -> SocketAddr {
    if members
        .iter()
        .any(|m| m.endpoint_ips().any(|ip| ip.is_ipv6()))
    {
        SocketAddr::from((Ipv6Addr::UNSPECIFIED, port))
    } else {
        SocketAddr::from((Ipv4Addr::UNSPECIFIED, port))
    }
}

/// Each of a member's endpoint addresses must be of a family the `listen`
/// socket sends and receives on; a name is resolved later, so its family
/// is not known here.
fn reachable(ctx: &Ctx, m: &Member, listen: SocketAddr) -> Result<(), ConfigError> {
    let PeerConfig {
        name, endpoints, ..
    } = &m.config;
    for (endpoint, span) in endpoints.iter().zip(&m.endpoint_spans) {
        let Endpoint::Addr(a) = endpoint else {
            continue;
        };
        let key = m.endpoint_key;
        if a.is_ipv6() && listen.is_ipv4() {
            return Err(ctx.err(span.clone(), key, format!("member `{name}` has an IPv6 endpoint ({a}) but node.listen is IPv4 ({listen}); set `listen = \"[::]:{}\"` in [node]", listen.port())));
        }
        if a.is_ipv4() && listen.is_ipv6() && !listen.ip().is_unspecified() {
            return Err(ctx.err(span.clone(), key, format!("member `{name}` has an IPv4 endpoint ({a}) but node.listen is a specific IPv6 address; use `listen = \"[::]:{}\"` or an IPv4 listen address", listen.port())));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use crate::config::fixture::{
        GOOD, Host, STRANGER, err, key, parse, parse_as, stranger_host, with,
    };
    use crate::config::{Endpoint, Mode};

    #[test]
    fn rejects_bad_values() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "subnet = \"10.250.0.0/24\"",
                "subnet = \"10.250.0.0\"",
                "interface.subnet",
            ),
            (
                "subnet = \"10.250.0.0/24\"",
                "subnet = \"10.250.0.1/24\"",
                "interface.subnet",
            ),
            (
                "subnet = \"10.250.0.0/24\"",
                "subnet = \"fd00::/64\"",
                "interface.subnet",
            ),
            (
                "subnet = \"10.250.0.0/24\"",
                "subnet = \"10.250.0.0/31\"",
                "interface.subnet",
            ),
            (
                "subnet6 = \"fd00:250::/64\"",
                "subnet6 = \"fe80::/64\"",
                "interface.subnet6",
            ),
            (
                "subnet6 = \"fd00:250::/64\"",
                "subnet6 = \"fd00:250::1/64\"",
                "interface.subnet6",
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
            ("name = \"h2\"", "name = \"h1\"", "member.name"),
            ("name = \"h3\"", "name = \"h2\"", "member.name"),
            ("name = \"h3\"", "name = \" \"", "member.name"),
            (
                "endpoint = \"192.0.2.2:7112\"",
                "endpoint = \"2001:db8::2:7112\"",
                "member.endpoint",
            ),
            (
                "endpoint = \"192.0.2.2:7112\"",
                "endpoint = \"[2001:db8::2]:7112\"",
                "member.endpoint",
            ),
            (
                "endpoint = \"192.0.2.2:7112\"",
                "endpoint = \"bad host:1\"",
                "member.endpoint",
            ),
            (
                "endpoint = \"node3.example.net\"",
                "endpoint = \"192.0.2.2:7112\"",
                "member.endpoint",
            ),
            (
                "address = \"10.250.0.3\"",
                "address = \"10.250.0.2\"",
                "member.address",
            ),
            (
                "address = \"10.250.0.3\"",
                "address = \"10.250.0.255\"",
                "member.address",
            ),
            (
                "address = \"10.250.0.3\"",
                "address = \"10.250.0.3/24\"",
                "member.address",
            ),
            (
                "address6 = \"fd00:250::2\"",
                "address6 = \"fd00:251::2\"",
                "member.address6",
            ),
            (
                "address6 = \"fd00:250::2\"",
                "address6 = \"fd00:250::1\"",
                "member.address6",
            ),
            (
                "public_key = \"zo060cy2M+x7cMF4FKXHbs0CloUFDTRHRboFhw5YfVk=\"",
                "public_key = \"not a key\"",
                "member.public_key",
            ),
            (
                "public_key = \"zo060cy2M+x7cMF4FKXHbs0CloUFDTRHRboFhw5YfVk=\"",
                "public_key = \"AAAA\"",
                "member.public_key",
            ),
            (
                "public_key = \"zo060cy2M+x7cMF4FKXHbs0CloUFDTRHRboFhw5YfVk=\"",
                "",
                "member.public_key",
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
            (
                "key_file = \"/etc/mcast-relay/key\"",
                "key_file = \"\"",
                "node.key_file",
            ),
            (
                "listen = \"0.0.0.0:7112\"",
                "max_clock_skew = -1",
                "node.max_clock_skew",
            ),
            (
                "listen = \"0.0.0.0:7112\"",
                "listen = \"0.0.0.0:7112\"\nname = \"h2\"",
                "node.name",
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
        let members = GOOD
            .split("[[member]]")
            .skip(1)
            .map(|p| format!("[[member]]{p}"))
            .collect::<String>();
        let empty_allow =
            no_rules.replace("presets = [\"vrrp\", \"heartbeat\"]", "presets = []") + &members;
        let e = err(&empty_allow);
        assert_eq!(e.key, "allow");
        assert!(e.message.contains("presets"), "{e}");
        let no_members = GOOD.split("[[member]]").next().expect("head");
        assert_eq!(err(no_members).key, "member");
        let one_member = GOOD
            .splitn(3, "[[member]]")
            .take(2)
            .collect::<Vec<_>>()
            .join("[[member]]");
        let e = err(&one_member);
        assert_eq!(e.key, "member");
        assert!(e.message.contains("at least 2"), "{e}");
        let e = err("[node]\nkey_file = \"/k\"\n");
        assert!(e.message.contains("interface"), "{e}");
        let e = err(&with("subnet = \"10.250.0.0/24\"\n", ""));
        assert_eq!(e.key, "interface.subnet");
        assert!(e.message.contains("10.250.0.0/24"), "{e}");
        let e = err(&with("subnet6 = \"fd00:250::/64\"\n", ""));
        assert_eq!(e.key, "member.address6");
        assert!(e.message.contains("subnet6"), "{e}");
    }

    #[test]
    fn semantic_errors_point_at_the_value() {
        let e = err(&with(
            "address = \"10.250.0.3\"",
            "address = \"10.251.0.3\"",
        ));
        assert_eq!(e.key, "member.address");
        assert!(e.message.contains("10.250.0.0/24"), "{}", e.message);
        let line = GOOD
            .lines()
            .position(|l| l.contains("10.250.0.3"))
            .expect("line")
            + 1;
        assert_eq!(e.line, line);
        assert_eq!(e.column, 11);
    }

    #[test]
    fn a_key_no_member_has_is_refused_naming_it() {
        let e = parse_as(GOOD, Some(key(4)), &stranger_host()).expect_err("no member");
        assert_eq!(e.key, "member.public_key");
        assert!(e.line > 0, "{e}");
        for part in [
            STRANGER,
            "/etc/mcast-relay/key",
            "[[member]]",
            "pubkey",
            "cluster key",
            "`h1`",
        ] {
            assert!(e.message.contains(part), "`{part}` missing: {e}");
        }
    }

    #[test]
    fn a_public_key_of_small_order_is_refused() {
        let e = err(&with(
            "Xf7dO2vUf2+ijuFdlp1bsOpTd01Ii9r53xxuASSz7yI=",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ));
        assert_eq!(e.key, "member.public_key");
        assert!(e.message.contains("small order"), "{e}");
    }

    #[test]
    fn a_public_key_used_twice_is_refused() {
        let e = err(&with(
            "zo060cy2M+x7cMF4FKXHbs0CloUFDTRHRboFhw5YfVk=",
            "Xf7dO2vUf2+ijuFdlp1bsOpTd01Ii9r53xxuASSz7yI=",
        ));
        assert_eq!(e.key, "member.public_key");
        let line = GOOD
            .lines()
            .position(|l| l.contains("zo060cy2M"))
            .expect("line")
            + 1;
        // The second use, h3's, is the one reported.
        assert!(e.line > line, "{e}");
        assert!(
            e.message.contains("`h2`") && e.message.contains("keygen"),
            "{e}"
        );
    }

    /// Without `listen`: the wildcard on this host's first path's port,
    /// IPv6 (dual-stack) once any member has an IPv6 path.
    #[test]
    fn the_default_listen_serves_every_path() {
        let no_listen = with("listen = \"0.0.0.0:7112\"\n", "");
        let c = parse(&no_listen).expect("valid");
        assert_eq!(c.node.listen, "0.0.0.0:7112".parse().expect("addr"));
        // A name's family is unknown, so it keeps IPv4.
        let named = no_listen.replace("192.0.2.2:7112", "h2.example.net:7112");
        let c = parse(&named).expect("valid");
        assert_eq!(c.node.listen, "0.0.0.0:7112".parse().expect("addr"));
        // h2's second path is IPv6; h1 (this host) listens on [::], at the
        // port of its own first path.
        let v6 = no_listen
            .replace(
                "endpoint = \"192.0.2.2:7112\"",
                "endpoints = [\"192.0.2.2:7112\", \"[2001:db8::2]:7112\"]",
            )
            .replace(
                "endpoint = \"192.0.2.1:7112\"",
                "endpoints = [\"192.0.2.1:7300\", \"192.0.2.101:7400\"]",
            );
        let c = parse(&v6).expect("valid");
        assert_eq!(c.node.listen, "[::]:7300".parse().expect("addr"));
    }

    #[test]
    fn the_old_layout_gets_one_explaining_error() {
        let old = r#"
[node]
name = "h1"
key_file = "/etc/mcast-relay/key"

[interface]
address = "10.250.0.1/24"

[allow]
presets = ["vrrp"]

[[peer]]
name = "h2"
endpoint = "192.0.2.2:7112"
address = "10.250.0.2"
"#;
        let e = err(old);
        assert_eq!(e.key, "peer");
        assert_eq!(e.line, 12);
        for part in ["[[member]]", "public_key", "subnet", "keygen", "every host"] {
            assert!(e.message.contains(part), "`{part}` missing: {e}");
        }
        // An old file without peers still has its own address.
        let e = err(old.split("[[peer]]").next().expect("head"));
        assert_eq!(e.key, "interface.address");
        assert!(e.message.contains("[[member]]"), "{e}");
        // ...or beside the new keys, an old key is still explained.
        let e = err(&with(
            "subnet6 = \"fd00:250::/64\"",
            "subnet6 = \"fd00:250::/64\"\naddress6 = \"fd00:250::1/64\"",
        ));
        assert_eq!(e.key, "interface.address6");
    }

    fn insecure(extra: &str) -> String {
        with(
            "key_file = \"/etc/mcast-relay/key\"",
            &format!("insecure = true{extra}"),
        )
    }

    #[test]
    fn insecure_needs_no_key_and_defaults_apply() {
        let text = r#"
[node]
insecure = true
[interface]
subnet = "10.250.0.0/24"
[allow]
presets = ["corosync"]
[[member]]
name = "a"
endpoint = "192.0.2.1"
address = "10.250.0.1"
[[member]]
name = "b"
endpoint = "[2001:db8::2]"
address = "10.250.0.2"
"#;
        let host_a = Host {
            hostname: "a",
            local: Vec::new(),
        };
        // An IPv6 endpoint needs an IPv6 listen socket...
        let v4 = text.replace(
            "insecure = true",
            "insecure = true\nlisten = \"0.0.0.0:7112\"",
        );
        let e = parse_as(&v4, None, &host_a).expect_err("IPv4 listen");
        assert_eq!(e.key, "member.endpoint");
        // ...on every host, the one with that endpoint too.
        let host_b = Host {
            hostname: "b",
            local: Vec::new(),
        };
        let e = parse_as(&v4, None, &host_b).expect_err("IPv4 listen on b");
        assert_eq!(e.key, "member.endpoint");
        assert!(e.message.contains("`b`"), "{e}");
        // ...which is the default then, on every host: dual-stack, so a's
        // IPv4 path is served too.
        for host in [&host_a, &host_b] {
            let c = parse_as(text, None, host).expect("valid");
            assert_eq!(c.node.listen, "[::]:7112".parse().expect("addr"));
        }
        let c = parse_as(
            &text.replace("insecure = true", "insecure = true\nlisten = \"[::]:7112\""),
            None,
            &host_a,
        )
        .expect("valid");
        assert!(c.node.insecure);
        assert_eq!(c.node.key_file, None);
        assert_eq!(c.node.key.is_none(), c.node.public_key.is_none());
        assert!(c.node.key.is_none());
        assert_eq!(c.interface.name, "mcast0");
        assert_eq!(c.interface.mode, Mode::Tun);
        assert_eq!(c.peers[0].public_key, None);
        assert_eq!(
            c.peers[0].endpoints,
            [Endpoint::Addr("[2001:db8::2]:7112".parse().expect("addr"))]
        );
        assert_eq!(c.node.name, "a", "found by the hostname");
    }

    #[test]
    fn insecure_finds_the_host_by_name_hostname_or_address() {
        // By node.name, whatever the host says.
        let c = parse_as(&insecure("\nname = \"h2\""), None, &stranger_host()).expect("by name");
        assert_eq!(c.node.name, "h2");
        assert_eq!(c.node.key_file, None);
        let e = parse_as(&insecure("\nname = \"h9\""), None, &stranger_host()).expect_err("no h9");
        assert_eq!(e.key, "node.name");
        assert!(e.message.contains("`h1`, `h2`, `h3`"), "{e}");
        // By the hostname, short or full.
        for hostname in ["h3", "h3.example.net"] {
            let host = Host {
                hostname,
                local: Vec::new(),
            };
            let c = parse_as(&insecure(""), None, &host).expect("by hostname");
            assert_eq!(c.node.name, "h3", "{hostname}");
        }
        // By a local address equal to a member's endpoint.
        let host = Host {
            hostname: "test-host",
            local: vec![IpAddr::from([192, 0, 2, 2])],
        };
        let c = parse_as(&insecure(""), None, &host).expect("by address");
        assert_eq!(c.node.name, "h2");
        assert_eq!(c.interface.address.to_string(), "10.250.0.2");
        // Nothing, or two members, say who it is: an error naming them.
        let e = parse_as(&insecure(""), None, &stranger_host()).expect_err("unknown");
        assert_eq!(e.key, "node.name");
        assert!(
            e.message.contains("`h1`, `h2`, `h3`") && e.message.contains("test-host"),
            "{e}"
        );
        let both = Host {
            hostname: "test-host",
            local: vec![IpAddr::from([192, 0, 2, 1]), IpAddr::from([192, 0, 2, 2])],
        };
        let e = parse_as(&insecure(""), None, &both).expect_err("ambiguous");
        assert!(e.message.contains("`h1`, `h2`"), "{e}");
    }

    #[test]
    fn in_insecure_mode_public_keys_may_be_left_out() {
        let text = insecure("\nname = \"h1\"").replace(
            "public_key = \"zo060cy2M+x7cMF4FKXHbs0CloUFDTRHRboFhw5YfVk=\"\n",
            "",
        );
        let c = parse_as(&text, None, &stranger_host()).expect("valid");
        assert_eq!(c.peers[0].public_key, None);
        assert_eq!(c.node.key.is_none(), c.node.key_file.is_none());
        assert_eq!(c.node.public_key, Some(key(1).public()), "as listed");
        let h2 = parse_as(
            &text.replacen("name = \"h1\"", "name = \"h2\"", 1),
            None,
            &stranger_host(),
        )
        .expect("valid");
        assert_eq!(h2.node.public_key, None);
    }
}
