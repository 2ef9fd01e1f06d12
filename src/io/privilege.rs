//! Least privilege: once the interface exists and the socket is bound, the
//! relay needs no privilege at all — it only reads and writes two file
//! descriptors it already holds. So a relay started as root switches to an
//! unprivileged user (`node.user`, default `nobody`), which clears every
//! capability, and forbids regaining any (no_new_privs). A bug in the packet
//! path then cannot reconfigure the host's network or read its files.

use std::fmt;

use nix::unistd::{Gid, Uid, User, getuid, setgroups, setresgid, setresuid};

/// `node.user` names no account the relay can switch to: a mistake in the
/// configuration (or a missing account), found before any set-up.
#[derive(Debug)]
pub enum UserError {
    NoSuchUser { name: String },
    Lookup { name: String, source: nix::Error },
}

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserError::NoSuchUser { name } => write!(
                f,
                "node.user: no user `{name}` on this host; create it (`useradd --system --no-create-home {name}`) or use an existing unprivileged account such as \"nobody\""
            ),
            UserError::Lookup { name, source } => {
                write!(f, "node.user: cannot look up `{name}`: {source}")
            }
        }
    }
}

impl std::error::Error for UserError {}

/// Dropping privileges failed or could not be verified: the relay refuses
/// to run rather than keep privileges it said it would give up.
#[derive(Debug)]
pub enum PrivilegeError {
    Groups(nix::Error),
    Group {
        gid: Gid,
        source: nix::Error,
    },
    User {
        name: String,
        source: nix::Error,
    },
    /// After the switch, root could be regained.
    Regainable,
    NoNewPrivs(nix::Error),
}

impl fmt::Display for PrivilegeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrivilegeError::Groups(e) => write!(f, "dropping supplementary groups: {e}"),
            PrivilegeError::Group { gid, source } => {
                write!(f, "switching to group {gid}: {source}")
            }
            PrivilegeError::User { name, source } => {
                write!(f, "switching to user {name}: {source}")
            }
            PrivilegeError::Regainable => {
                f.write_str("privileges could be regained after dropping them; refusing to run")
            }
            PrivilegeError::NoNewPrivs(e) => write!(f, "setting no_new_privs: {e}"),
        }
    }
}

impl std::error::Error for PrivilegeError {}

/// The account to run as, looked up before anything is set up so that a
/// typo fails at start, not after the interface was created.
#[derive(Clone, Debug)]
pub struct RunAs {
    pub name: String,
    pub uid: Uid,
    pub gid: Gid,
}

pub fn lookup(name: &str) -> Result<RunAs, UserError> {
    match User::from_name(name) {
        Ok(Some(u)) => Ok(RunAs {
            name: u.name,
            uid: u.uid,
            gid: u.gid,
        }),
        Ok(None) => Err(UserError::NoSuchUser {
            name: name.to_string(),
        }),
        Err(source) => Err(UserError::Lookup {
            name: name.to_string(),
            source,
        }),
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
pub fn drop_to(user: &RunAs) -> Result<Outcome, PrivilegeError> {
    if !getuid().is_root() {
        set_no_new_privs()?;
        return Ok(Outcome::NotRoot);
    }
    if user.uid.is_root() {
        set_no_new_privs()?;
        return Ok(Outcome::KeptRoot);
    }
    // Groups first: once the uid changes we may no longer change them.
    setgroups(&[user.gid]).map_err(PrivilegeError::Groups)?;
    setresgid(user.gid, user.gid, user.gid).map_err(|source| PrivilegeError::Group {
        gid: user.gid,
        source,
    })?;
    setresuid(user.uid, user.uid, user.uid).map_err(|source| PrivilegeError::User {
        name: user.name.clone(),
        source,
    })?;
    if setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0)).is_ok() {
        return Err(PrivilegeError::Regainable);
    }
    set_no_new_privs()?;
    Ok(Outcome::Dropped)
}

fn set_no_new_privs() -> Result<(), PrivilegeError> {
    nix::sys::prctl::set_no_new_privs().map_err(PrivilegeError::NoNewPrivs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_finds_root_and_names_a_missing_user() {
        let root = lookup("root").expect("root exists");
        assert!(root.uid.is_root());
        let e = lookup("no-such-user-mcast-relay").expect_err("missing");
        assert!(matches!(e, UserError::NoSuchUser { .. }), "{e:?}");
        let e = e.to_string();
        assert!(e.contains("node.user") && e.contains("useradd"), "{e}");
    }
}
