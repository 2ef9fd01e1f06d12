//! Recognises a file in the layout before per-member keys (one file per
//! host: `[[peer]]` tables for the others, the host's own
//! `interface.address`, one cluster key shared by all) and refuses it with
//! one error that explains the cluster file, instead of the first unknown
//! key serde would trip on.

use crate::config::error::{ConfigError, Ctx};
use crate::config::raw::OldLayoutProbe;

/// What to do with an old file, in one message.
const EXPLAINED: &str = "this file has the old per-host layout ([[peer]] tables for the other hosts, this host's interface.address, one cluster key copied to every host), which per-member keys replaced. Now one cluster file, the same bytes on every host, lists every member, this host included, as [[member]] with name, endpoint, address (the overlay IPv4 address without prefix), optional address6, and public_key; [interface] gives the overlay subnet as `subnet = \"10.250.0.0/24\"` (and `subnet6`) instead of address/address6; run `mcast-relay keygen` on each host (it writes /etc/mcast-relay/node.key and prints the `public_key = ...` line for that host's [[member]]), then copy the same file to every host. The shared cluster key is no longer used.";

/// `Ok` for anything that is not recognisably an old file, including text
/// that does not parse (the main pass reports that).
pub(in crate::config) fn refuse_old_layout(ctx: &Ctx) -> Result<(), ConfigError> {
    let Ok(probe) = toml::from_str::<OldLayoutProbe>(ctx.text) else {
        return Ok(());
    };
    if let Some(p) = probe.peer {
        return Err(ctx.err(p.span(), "peer", EXPLAINED));
    }
    if let Some(i) = probe.interface {
        if let Some(a) = i.address {
            return Err(ctx.err(a.span(), "interface.address", EXPLAINED));
        }
        if let Some(a) = i.address6 {
            return Err(ctx.err(a.span(), "interface.address6", EXPLAINED));
        }
    }
    Ok(())
}
