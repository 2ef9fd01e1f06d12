//! Why the relay stopped with a failure, and which kind of failure it is:
//! `main` turns the kind into the exit status, so a service manager or a
//! script can tell a configuration to fix from a missing privilege from a
//! failure at run time. The messages are the ones the log always showed.

use std::fmt;
use std::io;
use std::net::SocketAddr;

use crate::io::keyfile::KeyFileError;
use crate::io::notify::NotifyError;
use crate::io::privilege::{PrivilegeError, UserError};
use crate::io::realtime::RealtimeError;

/// What the operator has to fix, by kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The configuration (including a `node.user` that does not exist).
    Config,
    /// The cluster key file.
    Key,
    /// Missing privileges: not root or no CAP_NET_ADMIN, a port below 1024,
    /// or privileges that could not be dropped.
    Permission,
    /// Anything else, at set-up or while running.
    Runtime,
}

/// A failure that stops the relay.
#[derive(Debug)]
pub enum Error {
    EventLoop(io::Error),
    User(UserError),
    Notify(NotifyError),
    /// Authenticated mode without a key file (the configuration's
    /// validation refuses this first).
    NoKeyFile,
    Key(KeyFileError),
    /// Creating or configuring the interface; the text names the step.
    Tun(io::Error),
    RegisterTun(io::Error),
    /// Binding the relay's UDP socket; the text names the address.
    Bind(io::Error),
    RegisterSocket(io::Error),
    Metrics {
        addr: SocketAddr,
        source: io::Error,
    },
    Privilege(PrivilegeError),
    /// `node.realtime_priority` or `node.lock_memory` could not be applied.
    Realtime(RealtimeError),
    Random,
    Signals(io::Error),
    WaitTun(io::Error),
    WaitSocket(io::Error),
    ReadTun(io::Error),
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        let denied = |e: &io::Error| e.kind() == io::ErrorKind::PermissionDenied;
        match self {
            Error::User(_) => ErrorKind::Config,
            Error::NoKeyFile | Error::Key(_) => ErrorKind::Key,
            Error::Privilege(_) => ErrorKind::Permission,
            Error::Realtime(RealtimeError::Threads(_)) => ErrorKind::Runtime,
            Error::Realtime(_) => ErrorKind::Permission,
            Error::Tun(e) | Error::Bind(e) | Error::Metrics { source: e, .. } if denied(e) => {
                ErrorKind::Permission
            }
            _ => ErrorKind::Runtime,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::EventLoop(e) => write!(f, "cannot start the event loop: {e}"),
            Error::User(e) => write!(f, "{e}"),
            Error::Notify(e) => write!(f, "{e}"),
            Error::NoKeyFile => f.write_str("no key_file configured"),
            Error::Key(e) => write!(f, "{e}"),
            Error::Tun(e) | Error::Bind(e) => write!(f, "{e}"),
            Error::RegisterTun(e) => write!(f, "registering the interface: {e}"),
            Error::RegisterSocket(e) => write!(f, "registering the UDP socket: {e}"),
            Error::Metrics { addr, source } => {
                write!(f, "binding node.metrics_listen {addr}: {source}")
            }
            Error::Privilege(e) => write!(f, "{e}"),
            Error::Realtime(e) => write!(f, "{e}"),
            Error::Random => f.write_str("the system's random number generator failed"),
            Error::Signals(e) => write!(f, "installing signal handlers: {e}"),
            Error::WaitTun(e) => write!(f, "waiting on the interface: {e}"),
            Error::WaitSocket(e) => write!(f, "waiting on the UDP socket: {e}"),
            Error::ReadTun(e) => write!(f, "reading from the interface failed: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::User(e) => Some(e),
            Error::Notify(e) => Some(e),
            Error::Key(e) => Some(e),
            Error::Privilege(e) => Some(e),
            Error::Realtime(e) => Some(e),
            Error::EventLoop(e)
            | Error::Tun(e)
            | Error::RegisterTun(e)
            | Error::Bind(e)
            | Error::RegisterSocket(e)
            | Error::Metrics { source: e, .. }
            | Error::Signals(e)
            | Error::WaitTun(e)
            | Error::WaitSocket(e)
            | Error::ReadTun(e) => Some(e),
            Error::NoKeyFile | Error::Random => None,
        }
    }
}

impl From<UserError> for Error {
    fn from(e: UserError) -> Self {
        Error::User(e)
    }
}

impl From<NotifyError> for Error {
    fn from(e: NotifyError) -> Self {
        Error::Notify(e)
    }
}

impl From<KeyFileError> for Error {
    fn from(e: KeyFileError) -> Self {
        Error::Key(e)
    }
}

impl From<RealtimeError> for Error {
    fn from(e: RealtimeError) -> Self {
        Error::Realtime(e)
    }
}

impl From<PrivilegeError> for Error {
    fn from(e: PrivilegeError) -> Self {
        Error::Privilege(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        let denied = || io::Error::from(io::ErrorKind::PermissionDenied);
        assert_eq!(Error::Tun(denied()).kind(), ErrorKind::Permission);
        assert_eq!(Error::Bind(denied()).kind(), ErrorKind::Permission);
        assert_eq!(
            Error::Tun(io::Error::other("EBUSY")).kind(),
            ErrorKind::Runtime
        );
        assert_eq!(Error::NoKeyFile.kind(), ErrorKind::Key);
        assert_eq!(
            Error::User(UserError::NoSuchUser { name: "x".into() }).kind(),
            ErrorKind::Config
        );
        assert_eq!(
            Error::Privilege(PrivilegeError::Regainable).kind(),
            ErrorKind::Permission
        );
        assert_eq!(Error::Random.kind(), ErrorKind::Runtime);
    }
}
