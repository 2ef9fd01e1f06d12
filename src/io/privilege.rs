//! Least privilege: once the interface exists and the socket is bound, the
//! relay needs no privilege at all — it only reads and writes two file
//! descriptors it already holds. So a relay started as root switches to an
//! unprivileged user (`node.user`, default `nobody`), which clears every
//! capability, and forbids regaining any (no_new_privs). A bug in the packet
//! path then cannot reconfigure the host's network or read its files.

use nix::unistd::{Gid, Uid, User, getuid, setgroups, setresgid, setresuid};

/// `node.user` value that keeps root (not recommended; logged).
pub const KEEP_ROOT: &str = "root";

/// The account to run as, looked up before anything is set up so that a
/// typo fails at start, not after the interface was created.
#[derive(Clone, Debug)]
pub struct RunAs {
    pub name: String,
    pub uid: Uid,
    pub gid: Gid,
}

pub fn lookup(name: &str) -> Result<RunAs, String> {
    match User::from_name(name) {
        Ok(Some(u)) => Ok(RunAs {
            name: u.name,
            uid: u.uid,
            gid: u.gid,
        }),
        Ok(None) => Err(format!(
            "node.user: no user `{name}` on this host; create it (`useradd --system --no-create-home {name}`) or use an existing unprivileged account such as \"nobody\""
        )),
        Err(e) => Err(format!("node.user: cannot look up `{name}`: {e}")),
    }
}

/// What [`drop_to`] did, for the start-up log.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Switched from root to the user; no capabilities left.
    Dropped,
    /// Not started as root: nothing to drop to (systemd `User=` etc.).
    NotRoot,
    /// `user = "root"`: kept on request.
    KeptRoot,
}

/// Switches to `user` if running as root and forbids gaining privileges
/// again. Fails closed: if the switch cannot be verified, the relay stops.
pub fn drop_to(user: &RunAs) -> Result<Outcome, String> {
    if !getuid().is_root() {
        set_no_new_privs()?;
        return Ok(Outcome::NotRoot);
    }
    if user.uid.is_root() {
        set_no_new_privs()?;
        return Ok(Outcome::KeptRoot);
    }
    // Groups first: once the uid changes we may no longer change them.
    setgroups(&[user.gid]).map_err(|e| format!("dropping supplementary groups: {e}"))?;
    setresgid(user.gid, user.gid, user.gid)
        .map_err(|e| format!("switching to group {}: {e}", user.gid))?;
    setresuid(user.uid, user.uid, user.uid)
        .map_err(|e| format!("switching to user {}: {e}", user.name))?;
    if setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0)).is_ok() {
        return Err("privileges could be regained after dropping them; refusing to run".into());
    }
    set_no_new_privs()?;
    Ok(Outcome::Dropped)
}

fn set_no_new_privs() -> Result<(), String> {
    nix::sys::prctl::set_no_new_privs().map_err(|e| format!("setting no_new_privs: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_finds_root_and_names_a_missing_user() {
        let root = lookup("root").expect("root exists");
        assert!(root.uid.is_root());
        let e = lookup("no-such-user-mcast-relay").expect_err("missing");
        assert!(e.contains("node.user") && e.contains("useradd"), "{e}");
    }
}
