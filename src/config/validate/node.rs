//! The `[node]` table: this relay's key file, sockets, timers and account.
//!
//! One small function per key that can be wrong, in the order the errors
//! are reported, so `validate_node` reads as the list of the table's keys.
//! The table is the same on every host, so what depends on which member
//! this host is (its name, the default listen port) is left open in
//! [`Node`] and settled once the host is found.

use std::net::SocketAddr;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::Credential;
use crate::config::endpoint::parse_listen;
use crate::config::error::{ConfigError, Ctx};
use crate::config::raw::RawNode;
use crate::config::{
    DEFAULT_CLOCK_SKEW_SECS, DEFAULT_KEEPALIVE_SECS, DEFAULT_KEY_FILE, DEFAULT_REDUNDANCY,
    DEFAULT_REDUNDANCY_SPACING_SECS, DEFAULT_RESOLVE_INTERVAL_SECS, DEFAULT_STATUS_GROUP,
    DEFAULT_STATUS_SOCKET, DEFAULT_USER, MAX_REDUNDANCY, MAX_REDUNDANCY_SPACING_SECS, NodeConfig,
    PathMode, default_inject_rate_limit,
};
use crate::proto::keys::PublicKey;

/// The table, checked, before this host is known.
pub(super) struct Node {
    /// Where the table is, for errors about the host it describes.
    pub(super) span: Range<usize>,
    /// `node.name` and its place: in insecure mode the name of this host's
    /// member; otherwise, when set, it must agree with the key's member.
    pub(super) name: Option<(String, Range<usize>)>,
    /// `node.listen` as given; by default the wildcard address with the
    /// port of this host's endpoint.
    pub(super) listen: Option<SocketAddr>,
    /// The key file the file names (or the default); `None` when insecure.
    pub(super) key_file: Option<PathBuf>,
    /// The rest of the table, complete but for name, listen and keys.
    settings: NodeConfig,
}

impl Node {
    pub(super) fn insecure(&self) -> bool {
        self.settings.insecure
    }

    /// The table once this host is found: its member's name and public
    /// key, the listen address, and the key the host was recognised by.
    pub(super) fn into_config(
        self,
        name: String,
        listen: SocketAddr,
        key_file: Option<PathBuf>,
        credential: Option<Credential>,
        public_key: Option<PublicKey>,
    ) -> NodeConfig {
        let key = match credential {
            Some(Credential::Private(k)) => Some(k),
            #[cfg(test)]
            Some(Credential::PublicOnly(_)) => None,
            None => None,
        };
        NodeConfig {
            name,
            listen,
            key_file,
            key,
            public_key,
            ..self.settings
        }
    }
}

/// `families`: how many address families the interface carries (1 or 2),
/// for the default injection rate limit.
pub(super) fn validate_node(
    ctx: &Ctx,
    raw: Spanned<RawNode>,
    families: u32,
) -> Result<Node, ConfigError> {
    let span = raw.span();
    let raw_node = raw.into_inner();
    let insecure = raw_node.insecure.as_ref().is_some_and(|b| *b.get_ref());
    let key_file = key_file(ctx, &raw_node.key_file, insecure)?;
    let listen = listen(ctx, &raw_node.listen)?;
    let metrics_listen = metrics_listen(ctx, &raw_node.metrics_listen)?;
    let name = name(ctx, &raw_node.name)?;
    let max_clock_skew = seconds(
        ctx,
        &raw_node.max_clock_skew,
        "node.max_clock_skew",
        DEFAULT_CLOCK_SKEW_SECS,
        3600.0,
    )?;
    let keepalive = seconds(
        ctx,
        &raw_node.keepalive,
        "node.keepalive",
        DEFAULT_KEEPALIVE_SECS,
        60.0,
    )?;
    let resolve_interval = seconds(
        ctx,
        &raw_node.resolve_interval,
        "node.resolve_interval",
        DEFAULT_RESOLVE_INTERVAL_SECS,
        86400.0,
    )?;
    let inject_rate_limit = inject_rate_limit(ctx, &raw_node.inject_rate_limit, families)?;
    let user = user(ctx, &raw_node.user)?;
    let redundancy = redundancy(ctx, &raw_node.redundancy)?;
    let redundancy_spacing_ms = redundancy_spacing_ms(ctx, &raw_node.redundancy_spacing)?;
    let path_mode = path_mode(ctx, &raw_node.path_mode)?;
    let realtime_priority = realtime_priority(ctx, &raw_node.realtime_priority)?;

    let settings = NodeConfig {
        name: String::new(),
        listen: SocketAddr::from(([0, 0, 0, 0], 0)),
        key_file: None,
        key: None,
        public_key: None,
        insecure,
        max_clock_skew,
        resolve_interval,
        keepalive,
        inject_rate_limit,
        user,
        status_socket: raw_node
            .status_socket
            .as_ref()
            .map_or(PathBuf::from(DEFAULT_STATUS_SOCKET), |s| {
                PathBuf::from(s.get_ref())
            }),
        status_group: raw_node
            .status_group
            .as_ref()
            .map_or(DEFAULT_STATUS_GROUP.to_string(), |s| s.get_ref().clone()),
        metrics_listen,
        quorum: raw_node.quorum.unwrap_or(false),
        redundancy,
        redundancy_spacing_ms,
        path_mode,
        realtime_priority,
        lock_memory: raw_node.lock_memory.unwrap_or(false),
    };
    Ok(Node {
        span,
        name,
        listen,
        key_file,
        settings,
    })
}

/// The key file, by default [`DEFAULT_KEY_FILE`]; none when `insecure`,
/// and both given is a contradiction worth an error.
fn key_file(
    ctx: &Ctx,
    raw: &Option<Spanned<PathBuf>>,
    insecure: bool,
) -> Result<Option<PathBuf>, ConfigError> {
    match (raw, insecure) {
        (Some(k), true) => Err(ctx.err(
            k.span(),
            "node.key_file",
            "`key_file` and `insecure = true` are both set: remove `insecure` to authenticate (recommended), or remove `key_file`",
        )),
        (Some(k), false) => {
            if k.get_ref().as_os_str().is_empty() {
                return Err(ctx.err(
                    k.span(),
                    "node.key_file",
                    format!("empty path; give this host's private key written by `mcast-relay keygen -o FILE`, or leave it out for {DEFAULT_KEY_FILE}"),
                ));
            }
            Ok(Some(k.get_ref().clone()))
        }
        (None, true) => Ok(None),
        (None, false) => Ok(Some(PathBuf::from(DEFAULT_KEY_FILE))),
    }
}

fn listen(ctx: &Ctx, raw: &Option<Spanned<String>>) -> Result<Option<SocketAddr>, ConfigError> {
    raw.as_ref()
        .map(|s| {
            parse_listen(s.get_ref()).map_err(|m| ctx.err(s.span(), "node.listen", m.to_string()))
        })
        .transpose()
}

fn metrics_listen(
    ctx: &Ctx,
    raw: &Option<Spanned<String>>,
) -> Result<Option<SocketAddr>, ConfigError> {
    Ok(match raw {
        None => None,
        Some(s) => Some(s.get_ref().trim().parse::<SocketAddr>().map_err(|_| {
            ctx.err(
                s.span(),
                "node.metrics_listen",
                "must be an address and port such as \"127.0.0.1:9712\" (leave it out for no metrics)",
            )
        })?),
    })
}

fn name(
    ctx: &Ctx,
    raw: &Option<Spanned<String>>,
) -> Result<Option<(String, Range<usize>)>, ConfigError> {
    match raw {
        None => Ok(None),
        Some(s) => {
            let v = s.get_ref().trim();
            if v.is_empty() {
                return Err(ctx.err(
                    s.span(),
                    "node.name",
                    "must not be empty; leave it out (the host is found by its key, or in insecure mode by its hostname or address)",
                ));
            }
            Ok(Some((v.to_string(), s.span())))
        }
    }
}

/// A duration key: `default` seconds when left out, else above 0 and at
/// most `max`.
pub(super) fn seconds(
    ctx: &Ctx,
    v: &Option<Spanned<f64>>,
    key: &str,
    default: f64,
    max: f64,
) -> Result<Duration, ConfigError> {
    let Some(s) = v else {
        return Ok(Duration::from_secs_f64(default));
    };
    let x = *s.get_ref();
    if !(x > 0.0 && x <= max) {
        return Err(ctx.err(
            s.span(),
            key,
            format!("must be a number of seconds above 0 and at most {max}"),
        ));
    }
    Ok(Duration::from_secs_f64(x))
}

fn inject_rate_limit(
    ctx: &Ctx,
    raw: &Option<Spanned<i64>>,
    families: u32,
) -> Result<u32, ConfigError> {
    let default = default_inject_rate_limit(families);
    Ok(match raw {
        None => default,
        Some(s) => u32::try_from(*s.get_ref())
            .ok()
            .filter(|n| *n <= 1_000_000)
            .ok_or_else(|| {
                ctx.err(
                    s.span(),
                    "node.inject_rate_limit",
                    format!("must be a number of packets per second from 0 (no limit) to 1000000; the default is {default} for this interface"),
                )
            })?,
    })
}

fn user(ctx: &Ctx, raw: &Option<Spanned<String>>) -> Result<String, ConfigError> {
    match raw {
        None => Ok(DEFAULT_USER.to_string()),
        Some(s) if s.get_ref().trim().is_empty() || s.get_ref().contains(char::is_whitespace) => {
            Err(ctx.err(
                s.span(),
                "node.user",
                format!("must be a user name; the default is \"{DEFAULT_USER}\""),
            ))
        }
        Some(s) => Ok(s.get_ref().clone()),
    }
}

fn redundancy(ctx: &Ctx, raw: &Option<Spanned<i64>>) -> Result<u8, ConfigError> {
    let Some(s) = raw else {
        return Ok(DEFAULT_REDUNDANCY);
    };
    u8::try_from(*s.get_ref())
        .ok()
        .filter(|n| (1..=MAX_REDUNDANCY).contains(n))
        .ok_or_else(|| {
            ctx.err(
                s.span(),
                "node.redundancy",
                format!("must be how many copies of each packet go to each peer, from 1 (no extra copy) to {MAX_REDUNDANCY}; the default is {DEFAULT_REDUNDANCY}"),
            )
        })
}

/// Seconds in the file, whole milliseconds in the configuration: the
/// copies are timed by the event loop's millisecond clock.
fn redundancy_spacing_ms(ctx: &Ctx, raw: &Option<Spanned<f64>>) -> Result<u64, ConfigError> {
    let secs = match raw {
        None => DEFAULT_REDUNDANCY_SPACING_SECS,
        Some(s) => {
            let x = *s.get_ref();
            if !(0.0..=MAX_REDUNDANCY_SPACING_SECS).contains(&x) {
                return Err(ctx.err(
                    s.span(),
                    "node.redundancy_spacing",
                    format!("must be the seconds between a packet's copies, from 0 (back to back) to {MAX_REDUNDANCY_SPACING_SECS}; the default is {DEFAULT_REDUNDANCY_SPACING_SECS} (5 ms)"),
                ));
            }
            x
        }
    };
    // In range, so the product is a small non-negative number of ms.
    Ok((secs * 1000.0).round() as u64)
}

fn path_mode(ctx: &Ctx, raw: &Option<Spanned<String>>) -> Result<PathMode, ConfigError> {
    match raw.as_ref().map(|s| (s, s.get_ref().trim())) {
        None => Ok(PathMode::default()),
        Some((_, "all")) => Ok(PathMode::All),
        Some((_, "best")) => Ok(PathMode::Best),
        Some((s, other)) => Err(ctx.err(
            s.span(),
            "node.path_mode",
            format!("`{other}` is not a path mode; expected \"all\" (every copy over every healthy path, the default) or \"best\" (only the healthiest path)"),
        )),
    }
}

fn realtime_priority(ctx: &Ctx, raw: &Option<Spanned<i64>>) -> Result<Option<u8>, ConfigError> {
    let Some(s) = raw else {
        return Ok(None);
    };
    u8::try_from(*s.get_ref())
        .ok()
        .filter(|n| (1..=99).contains(n))
        .map(Some)
        .ok_or_else(|| {
            ctx.err(
                s.span(),
                "node.realtime_priority",
                "must be a SCHED_RR priority from 1 to 99 (keepalived's vrrp_rt_priority uses the same scale); leave it out to run at normal priority",
            )
        })
}

#[cfg(test)]
mod tests {
    use crate::config::PathMode;
    use crate::config::fixture::{GOOD, err, parse, with};

    /// A line added to [node].
    fn node(line: &str) -> String {
        with(
            "key_file = \"/etc/mcast-relay/key\"",
            &format!("key_file = \"/etc/mcast-relay/key\"\n{line}"),
        )
    }

    #[test]
    fn redundancy_paths_and_realtime_defaults() {
        let c = parse(GOOD).expect("valid");
        assert_eq!(c.node.redundancy, 2);
        assert_eq!(c.node.redundancy_spacing_ms, 5);
        assert_eq!(c.node.path_mode, PathMode::All);
        assert_eq!(c.node.realtime_priority, None);
        assert!(!c.node.lock_memory);
    }

    #[test]
    fn redundancy_paths_and_realtime_as_given() {
        let text = node(
            "redundancy = 4\nredundancy_spacing = 0.0126\npath_mode = \"best\"\nrealtime_priority = 99\nlock_memory = true",
        );
        let c = parse(&text).expect("valid");
        assert_eq!(c.node.redundancy, 4);
        assert_eq!(c.node.redundancy_spacing_ms, 13, "rounded to ms");
        assert_eq!(c.node.path_mode, PathMode::Best);
        assert_eq!(c.node.realtime_priority, Some(99));
        assert!(c.node.lock_memory);
        let c = parse(&node(
            "redundancy = 1\nredundancy_spacing = 0\nrealtime_priority = 1",
        ))
        .expect("the lower ends");
        assert_eq!(c.node.redundancy, 1);
        assert_eq!(c.node.redundancy_spacing_ms, 0);
        assert_eq!(c.node.realtime_priority, Some(1));
        let c = parse(&node("redundancy_spacing = 0.1")).expect("the upper end");
        assert_eq!(c.node.redundancy_spacing_ms, 100);
    }

    #[test]
    fn redundancy_paths_and_realtime_refused_out_of_range() {
        let line = GOOD
            .lines()
            .position(|l| l.starts_with("key_file"))
            .expect("line")
            + 2;
        let cases: &[(&str, &str, &str)] = &[
            ("redundancy = 0", "node.redundancy", "from 1"),
            ("redundancy = 5", "node.redundancy", "to 4"),
            ("redundancy = -1", "node.redundancy", "the default is 2"),
            ("redundancy = 300", "node.redundancy", "copies"),
            (
                "redundancy_spacing = -0.001",
                "node.redundancy_spacing",
                "from 0",
            ),
            (
                "redundancy_spacing = 0.2",
                "node.redundancy_spacing",
                "to 0.1",
            ),
            (
                "redundancy_spacing = nan",
                "node.redundancy_spacing",
                "seconds",
            ),
            ("path_mode = \"fastest\"", "node.path_mode", "\"best\""),
            ("path_mode = \"\"", "node.path_mode", "\"all\""),
            ("realtime_priority = 0", "node.realtime_priority", "1 to 99"),
            (
                "realtime_priority = 100",
                "node.realtime_priority",
                "1 to 99",
            ),
            (
                "realtime_priority = -5",
                "node.realtime_priority",
                "leave it out",
            ),
        ];
        for (text, key, hint) in cases {
            let e = err(&node(text));
            assert_eq!(&e.key, key, "for `{text}`: {e}");
            assert_eq!(e.line, line, "for `{text}`: {e}");
            assert!(e.column > 1, "for `{text}`: points at the value: {e}");
            assert!(e.message.contains(hint), "for `{text}`: {e}");
        }
        // Of the wrong TOML type: serde's error, still at the key.
        for text in [
            "redundancy = 2.5",
            "lock_memory = \"yes\"",
            "realtime_priority = \"high\"",
        ] {
            let e = err(&node(text));
            assert!(e.key.starts_with("node."), "for `{text}`: {e}");
            assert_eq!(e.line, line, "for `{text}`: {e}");
        }
    }
}
