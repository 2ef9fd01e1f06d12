//! `check` of the `[[vip]]` hooks: each `on_master` program must be a file
//! the relay's unprivileged user may execute, since the relay runs it after
//! dropping privileges; a typo or a missing package is found before the
//! first failover rather than at it. Warnings, not errors: the systemd
//! unit runs `check` before every start, and a broken cloud hook must not
//! stop the relay from carrying heartbeats (its status shows the failures).

use std::io;

use crate::check::Finding;

/// What `check` reads of a program file.
#[derive(Clone, Copy, Debug)]
pub struct Program {
    pub is_file: bool,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The finding for `[[vip]]` `what`'s program `path`, as user `uid`/`gid`
/// (`user` by name) would run it.
pub fn hook_finding(
    what: &str,
    path: &str,
    program: &io::Result<Program>,
    user: &str,
    uid: u32,
    gid: u32,
) -> Finding {
    let p = match program {
        Ok(p) => p,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Finding::Warning(format!(
                "{what}: on_master program {path} does not exist; install it (the shipped hooks are in /usr/lib/mcast-relay/hooks/) or fix the path"
            ));
        }
        Err(e) => return Finding::Warning(format!("{what}: on_master program {path}: {e}")),
    };
    if !p.is_file {
        return Finding::Warning(format!("{what}: on_master program {path} is not a file"));
    }
    let bits = if uid == 0 {
        // root may execute a file with any execute bit.
        0o111
    } else if p.uid == uid {
        0o100
    } else if p.gid == gid {
        0o010
    } else {
        0o001
    };
    if p.mode & bits == 0 {
        return Finding::Warning(format!(
            "{what}: on_master program {path} is not executable by {user}, the user the relay runs it as (mode {:o}); chmod a+x it",
            p.mode & 0o7777
        ));
    }
    Finding::Ok(format!("{what}: on_master {path} is executable by {user}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prog(mode: u32, uid: u32) -> io::Result<Program> {
        Ok(Program {
            is_file: true,
            mode,
            uid,
            gid: 0,
        })
    }

    #[test]
    fn a_hook_the_relay_user_cannot_run_is_a_warning() {
        let nobody = |p: &io::Result<Program>| {
            hook_finding("[[vip]] VRID 51", "/x", p, "nobody", 65534, 65534)
        };
        assert!(matches!(nobody(&prog(0o755, 0)), Finding::Ok(_)));
        let e = nobody(&prog(0o750, 0));
        assert!(
            matches!(e, Finding::Warning(_)) && e.to_string().contains("not executable by nobody"),
            "{e}"
        );
        assert!(
            matches!(nobody(&prog(0o700, 65534)), Finding::Ok(_)),
            "its owner"
        );
        let missing = nobody(&Err(io::Error::from(io::ErrorKind::NotFound)));
        assert!(missing.to_string().contains("does not exist"), "{missing}");
        let dir = nobody(&Ok(Program {
            is_file: false,
            mode: 0o755,
            uid: 0,
            gid: 0,
        }));
        assert!(dir.to_string().contains("not a file"), "{dir}");
    }
}
