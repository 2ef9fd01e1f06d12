//! The two address forms the file accepts: `node.listen` (an address with
//! or without port) and a peer's `endpoint` (an address or a DNS name, with
//! or without port).
//!
//! Pure string parsers with their own small error types, apart from the
//! validation passes, because they say nothing about where in the file the
//! value was: the caller adds the position.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use super::{DEFAULT_PORT, Endpoint};

/// A `node.listen` value that is not an address (with or without port).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidListen(pub String);

impl fmt::Display for InvalidListen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not an address to listen on; expected \"0.0.0.0:{DEFAULT_PORT}\", \"[::]:{DEFAULT_PORT}\" (IPv6 and IPv4) or a local address",
            self.0
        )
    }
}

impl std::error::Error for InvalidListen {}

pub(super) fn parse_listen(s: &str) -> Result<SocketAddr, InvalidListen> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    let bare = s.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, DEFAULT_PORT))
        .map_err(|_| InvalidListen(s.to_string()))
}

/// A peer endpoint that is neither an address nor a host name, with or
/// without port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidEndpoint(pub String);

impl fmt::Display for InvalidEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not host:port; expected e.g. \"203.0.113.12:{DEFAULT_PORT}\", \"[2001:db8::2]:{DEFAULT_PORT}\" or \"node2.example.net:{DEFAULT_PORT}\"",
            self.0
        )
    }
}

impl std::error::Error for InvalidEndpoint {}

/// `host:port`, `[v6]:port`, or either without the port (default 7112).
pub(crate) fn parse_endpoint(s: &str) -> Result<Endpoint, InvalidEndpoint> {
    let s = s.trim();
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(Endpoint::Addr(a));
    }
    let bare = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(Endpoint::Addr(SocketAddr::new(ip, DEFAULT_PORT)));
    }
    let invalid = || InvalidEndpoint(s.to_string());
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(invalid)?,
        ),
        None => (s, DEFAULT_PORT),
    };
    let valid_host = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    if !valid_host {
        return Err(invalid());
    }
    Ok(Endpoint::Name {
        host: host.to_string(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            parse_endpoint("1.2.3.4"),
            Ok(Endpoint::Addr("1.2.3.4:7112".parse().expect("a")))
        );
        assert_eq!(
            parse_endpoint("[::1]:9"),
            Ok(Endpoint::Addr("[::1]:9".parse().expect("a")))
        );
        assert_eq!(
            parse_endpoint("h-2.lan:99"),
            Ok(Endpoint::Name {
                host: "h-2.lan".into(),
                port: 99
            })
        );
        assert!(parse_endpoint("host:0").is_err());
        assert!(parse_endpoint("-bad").is_err());
        assert!(parse_endpoint("").is_err());
        assert_eq!(
            parse_endpoint(" host:0 "),
            Err(InvalidEndpoint("host:0".into()))
        );
        assert_eq!(parse_listen("x"), Err(InvalidListen("x".into())));
    }
}
