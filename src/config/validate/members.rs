//! The `[[member]]` tables: every relay of the cluster, this host included,
//! each checked against the subnets and the members before it.
//!
//! Nothing here depends on which member this host is, so the same file
//! passes or fails the same way on every host: names, endpoints, overlay
//! addresses and public keys unique, addresses inside the subnets. A member
//! gives its paths as one `endpoint` or a list of `endpoints`; either way
//! no host:port is listed twice, in one member or across members.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;

use toml::Spanned;

use super::interface::{Subnet4, Subnet6};
use crate::config::endpoint::parse_endpoint;
use crate::config::error::{ConfigError, Ctx};
use crate::config::raw::RawMember;
use crate::config::{Endpoint, MAX_ENDPOINTS, PeerConfig};
use crate::proto::keys::PublicKey;

/// A checked member, with the places of its endpoints for the checks that
/// need to know this host first (the listen socket's family).
pub(super) struct Member {
    pub(super) config: PeerConfig,
    /// One per entry of `config.endpoints`.
    pub(super) endpoint_spans: Vec<Range<usize>>,
    /// The key they were given under: `member.endpoint` or `member.endpoints`.
    pub(super) endpoint_key: &'static str,
}

impl Member {
    /// The addresses among its endpoints (names are resolved later).
    pub(super) fn endpoint_ips(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.config.endpoints.iter().filter_map(|e| match e {
            Endpoint::Addr(a) => Some(a.ip()),
            Endpoint::Name { .. } => None,
        })
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
        let (given, endpoint_key) = endpoint_list(ctx, &rm, &name, table.clone())?;
        let mut endpoints = Vec::with_capacity(given.len());
        for s in &given {
            endpoints.push(endpoint(ctx, s, endpoint_key, &name, &endpoints, &members)?);
        }
        let config = PeerConfig {
            endpoints,
            address: address(ctx, &rm.address, subnet, &members)?,
            address6: address6(ctx, &rm.address6, subnet6, &members)?,
            public_key: public_key(ctx, &rm.public_key, insecure, &members, (&name, table))?,
            name,
        };
        members.push(Member {
            config,
            endpoint_spans: given.iter().map(|s| s.span()).collect(),
            endpoint_key,
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

/// The member's paths as written, and the key they were written under:
/// exactly one of `endpoint` and `endpoints`, the list 1 to
/// [`MAX_ENDPOINTS`] long.
fn endpoint_list<'a>(
    ctx: &Ctx,
    rm: &'a RawMember,
    name: &str,
    table: Range<usize>,
) -> Result<(Vec<&'a Spanned<String>>, &'static str), ConfigError> {
    match (&rm.endpoint, &rm.endpoints) {
        (Some(_), Some(list)) => Err(ctx.err(
            list.span(),
            "member.endpoints",
            format!("member `{name}` has both `endpoint` and `endpoints`: keep one, `endpoint = \"host:port\"` for one path or `endpoints = [\"host:port\", ...]` listing every path (the one in `endpoint` too)"),
        )),
        (None, None) => Err(ctx.err(
            table,
            "member.endpoint",
            format!("member `{name}` has no endpoint: give where its relay listens, `endpoint = \"host:port\"`, or its paths, `endpoints = [\"host:port\", ...]`"),
        )),
        (Some(one), None) => Ok((vec![one], "member.endpoint")),
        (None, Some(list)) => {
            let entries = list.get_ref();
            if entries.is_empty() {
                return Err(ctx.err(
                    list.span(),
                    "member.endpoints",
                    format!("member `{name}` has an empty endpoints list: list 1 to {MAX_ENDPOINTS} host:port where its relay is reached, e.g. [\"192.0.2.2:7112\", \"[2001:db8::2]:7112\"]"),
                ));
            }
            if let Some(extra) = entries.get(MAX_ENDPOINTS) {
                return Err(ctx.err(
                    extra.span(),
                    "member.endpoints",
                    format!("member `{name}` lists {} endpoints; at most {MAX_ENDPOINTS} paths per member", entries.len()),
                ));
            }
            Ok((entries.iter().collect(), "member.endpoints"))
        }
    }
}

/// One path of the member's relay: listed once in its own list, and no
/// two members at the same one.
fn endpoint(
    ctx: &Ctx,
    raw: &Spanned<String>,
    key: &str,
    name: &str,
    earlier: &[Endpoint],
    members: &[Member],
) -> Result<Endpoint, ConfigError> {
    let endpoint =
        parse_endpoint(raw.get_ref()).map_err(|m| ctx.err(raw.span(), key, m.to_string()))?;
    if earlier.contains(&endpoint) {
        return Err(ctx.err(
            raw.span(),
            key,
            format!("{endpoint} is listed twice in the endpoints of `{name}`; list each path once"),
        ));
    }
    if let Some(other) = configs(members).find(|p| p.endpoints.contains(&endpoint)) {
        return Err(ctx.err(
            raw.span(),
            key,
            format!(
                "{endpoint} is also an endpoint of `{}`; every member's relay needs its own host:port",
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

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use crate::config::Endpoint;
    use crate::config::fixture::{Host, err, parse, parse_as, with};

    const H2: &str = "endpoint = \"192.0.2.2:7112\"";

    /// h2's `endpoint` line replaced by `to`, on a dual-stack listen.
    fn h2(to: &str) -> String {
        with(H2, to).replace("listen = \"0.0.0.0:7112\"", "listen = \"[::]:7112\"")
    }

    fn line_of(text: &str, needle: &str) -> usize {
        text.lines().position(|l| l.contains(needle)).expect("line") + 1
    }

    #[test]
    fn endpoints_lists_every_path_in_order() {
        let c = parse(&h2(
            "endpoints = [\"192.0.2.2:7112\", \"[2001:db8::2]:7112\", \"h2.example.net:7200\"]",
        ))
        .expect("valid");
        assert_eq!(
            c.peers[0].endpoints,
            [
                Endpoint::Addr("192.0.2.2:7112".parse().expect("a")),
                Endpoint::Addr("[2001:db8::2]:7112".parse().expect("a")),
                Endpoint::Name {
                    host: "h2.example.net".into(),
                    port: 7200
                },
            ]
        );
        // One entry is one path, as `endpoint` is.
        let c = parse(&with(H2, "endpoints = [\"192.0.2.2\"]")).expect("valid");
        assert_eq!(
            c.peers[0].endpoints,
            [Endpoint::Addr("192.0.2.2:7112".parse().expect("a"))]
        );
        let eight: Vec<String> = (1..=8).map(|n| format!("\"192.0.2.2:{n}\"")).collect();
        let c = parse(&with(H2, &format!("endpoints = [{}]", eight.join(", ")))).expect("8 paths");
        assert_eq!(c.peers[0].endpoints.len(), 8);
    }

    #[test]
    fn endpoint_and_endpoints_are_one_or_the_other() {
        let both = h2(&format!("{H2}\nendpoints = [\"192.0.2.20:7112\"]"));
        let e = err(&both);
        assert_eq!(e.key, "member.endpoints");
        assert_eq!(e.line, line_of(&both, "endpoints = "));
        assert!(
            e.message.contains("both") && e.message.contains("`h2`"),
            "{e}"
        );
        let neither = with(&format!("{H2}\n"), "");
        let e = err(&neither);
        assert_eq!(e.key, "member.endpoint");
        assert!(e.line > 0, "{e}");
        assert!(
            e.message.contains("`h2` has no endpoint") && e.message.contains("endpoints = ["),
            "{e}"
        );
    }

    #[test]
    fn endpoints_list_errors_point_at_the_entry() {
        let cases: &[(&str, &str, &str)] = &[
            ("endpoints = []", "[]", "empty"),
            (
                "endpoints = [\"192.0.2.2:7112\", \"bad host:1\"]",
                "\"bad host:1\"",
                "not host:port",
            ),
            (
                "endpoints = [\"192.0.2.2:7112\", \"192.0.2.9\", \"192.0.2.2:7112\"]",
                "\"192.0.2.2:7112\"]",
                "listed twice",
            ),
            (
                // h1's endpoint, as h2's second path.
                "endpoints = [\"192.0.2.22:7112\", \"192.0.2.1:7112\"]",
                "\"192.0.2.1:7112\"",
                "also an endpoint of `h1`",
            ),
            (
                "endpoints = [\"a:1\", \"a:2\", \"a:3\", \"a:4\", \"a:5\", \"a:6\", \"a:7\", \"a:8\", \"a:9\"]",
                "\"a:9\"",
                "at most 8",
            ),
        ];
        for (to, at, says) in cases {
            let text = h2(to);
            let e = err(&text);
            assert_eq!(e.key, "member.endpoints", "for `{to}`: {e}");
            let line = line_of(&text, to);
            let column = text
                .lines()
                .nth(line - 1)
                .expect("line")
                .rfind(at)
                .expect("at")
                + 1;
            assert_eq!((e.line, e.column), (line, column), "for `{to}`: {e}");
            assert!(e.message.contains(says), "for `{to}`: {e}");
        }
        // A later member may not reuse a path of an earlier one's list.
        let text = h2("endpoints = [\"192.0.2.2:7112\", \"[2001:db8::2]:7112\"]").replace(
            "endpoint = \"node3.example.net\"",
            "endpoints = [\"[2001:db8::2]:7112\"]",
        );
        let e = err(&text);
        assert_eq!(e.key, "member.endpoints");
        assert!(e.message.contains("also an endpoint of `h2`"), "{e}");
        assert_eq!(
            e.line,
            line_of(&text, "endpoints = [\"[2001:db8::2]:7112\"]")
        );
    }

    #[test]
    fn every_path_must_suit_the_listen_socket() {
        // An IPv4 listen cannot reach h2's IPv6 path: the error is at that entry.
        let text = with(
            H2,
            "endpoints = [\"192.0.2.2:7112\", \"[2001:db8::2]:7112\"]",
        );
        let e = err(&text);
        assert_eq!(e.key, "member.endpoints");
        assert!(e.message.contains("[2001:db8::2]:7112"), "{e}");
        assert!(e.message.contains("[::]:7112"), "says what to set: {e}");
        let line = line_of(&text, "endpoints = ");
        let column = text
            .lines()
            .nth(line - 1)
            .expect("l")
            .find("\"[2001")
            .expect("at")
            + 1;
        assert_eq!((e.line, e.column), (line, column));
    }

    #[test]
    fn insecure_finds_the_host_by_any_of_its_paths() {
        let text = with("key_file = \"/etc/mcast-relay/key\"", "insecure = true").replace(
            H2,
            "endpoints = [\"192.0.2.2:7112\", \"198.51.100.2:7112\"]",
        );
        let host = Host {
            hostname: "test-host",
            local: vec![IpAddr::from([198, 51, 100, 2])],
        };
        let c = parse_as(&text, None, &host).expect("by its second path");
        assert_eq!(c.node.name, "h2");
    }
}
