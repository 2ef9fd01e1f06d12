//! Which `[[member]]` this host is. The cluster file is the same on every
//! host, so the host is found, not named: by its private key's public key
//! (authenticated), or in insecure mode by `node.name`, the hostname, or a
//! member endpoint that is one of its own addresses.
//!
//! The facts about the host come in as [`HostFacts`] so the rules are
//! tested without depending on the machine the tests run on.

use std::net::IpAddr;
use std::path::Path;

use super::members::Member;
use super::node::Node;
use crate::config::error::{ConfigError, Ctx};
use crate::proto::keys::{PrivateKey, PublicKey};

/// What the host says about itself, for insecure mode.
pub(crate) struct HostFacts<'a> {
    pub(crate) hostname: &'a str,
    /// Whether an address is assigned to this host (in its network
    /// namespace).
    pub(crate) is_local: &'a dyn Fn(IpAddr) -> bool,
}

/// What this host is recognised by in authenticated mode.
pub(crate) enum Credential {
    /// Its private key, as read from the key file.
    Private(PrivateKey),
    /// Only a public key: to check a cluster file from every member's
    /// point of view without the members' private keys.
    #[cfg(test)]
    PublicOnly(PublicKey),
}

impl Credential {
    pub(super) fn public(&self) -> PublicKey {
        match self {
            Credential::Private(k) => k.public(),
            #[cfg(test)]
            Credential::PublicOnly(p) => *p,
        }
    }
}

/// This host's public key and the key file it came from (for the errors).
pub(super) struct HostKey<'a> {
    pub(super) public: PublicKey,
    pub(super) file: &'a Path,
}

fn names(members: &[Member]) -> String {
    members
        .iter()
        .map(|m| format!("`{}`", m.config.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The index of this host's member: by `key` when there is one, else by
/// the insecure rules.
pub(super) fn find_self(
    ctx: &Ctx,
    members: &[Member],
    node: &Node,
    key: Option<HostKey>,
    facts: &HostFacts,
) -> Result<usize, ConfigError> {
    match key {
        Some(k) => by_key(ctx, members, node, &k),
        None => by_name_or_address(ctx, members, node, facts),
    }
}

fn by_key(ctx: &Ctx, members: &[Member], node: &Node, k: &HostKey) -> Result<usize, ConfigError> {
    let public = k.public;
    let file = k.file.display();
    let Some(i) = members
        .iter()
        .position(|m| m.config.public_key == Some(public))
    else {
        let end = ctx.text.len()..ctx.text.len();
        return Err(ctx.err(end, "member.public_key", format!(
            "this host's public key {public} (of the private key in {file}) is the public_key of no [[member]] (members: {}): add a [[member]] for this host with `public_key = \"{public}\"` (`mcast-relay pubkey -k {file}` prints it), or point node.key_file or `-k` at this host's own key. If that file holds the cluster key once shared by every host, it is no longer used: run `mcast-relay keygen` on each host and list each public key in its [[member]]",
            names(members)
        )));
    };
    if let Some((name, span)) = &node.name {
        let own = &members[i].config.name;
        if name != own {
            return Err(ctx.err(span.clone(), "node.name", format!("is `{name}`, but this host's key ({file}) is the key of member `{own}`; leave node.name out (the key says which member this host is), or use the right key file")));
        }
    }
    Ok(i)
}

fn by_name_or_address(
    ctx: &Ctx,
    members: &[Member],
    node: &Node,
    facts: &HostFacts,
) -> Result<usize, ConfigError> {
    if let Some((name, span)) = &node.name {
        return members
            .iter()
            .position(|m| &m.config.name == name)
            .ok_or_else(|| {
                ctx.err(
                    span.clone(),
                    "node.name",
                    format!(
                        "no [[member]] is named `{name}`; members: {}",
                        names(members)
                    ),
                )
            });
    }
    let short = facts.hostname.split('.').next().unwrap_or(facts.hostname);
    let by_host = |h: &str| members.iter().position(|m| m.config.name == h);
    if let Some(i) = by_host(facts.hostname).or_else(|| by_host(short)) {
        return Ok(i);
    }
    let local: Vec<usize> = members
        .iter()
        .enumerate()
        .filter(|(_, m)| m.endpoint_ips().any(|ip| (facts.is_local)(ip)))
        .map(|(i, _)| i)
        .collect();
    match local[..] {
        [i] => Ok(i),
        [] => Err(ctx.err(node.span.clone(), "node.name", format!(
            "cannot tell which [[member]] this host is: insecure mode has no key to find it by, the hostname `{}` is no member's name, and no member's endpoint is an address of this host (members: {}); set `name = \"...\"` in [node]",
            facts.hostname,
            names(members)
        ))),
        _ => {
            let which = local
                .iter()
                .map(|i| format!("`{}`", members[*i].config.name))
                .collect::<Vec<_>>()
                .join(", ");
            Err(ctx.err(node.span.clone(), "node.name", format!(
                "cannot tell which [[member]] this host is: the endpoints of {which} are all addresses of this host; set `name = \"...\"` in [node]"
            )))
        }
    }
}
