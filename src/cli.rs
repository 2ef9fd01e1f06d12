//! The command line's definition, in the library so that the man page and
//! shell completions can be generated from it (packaging/gen_assets.rs).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::check::toolconf;
use crate::config;
use crate::core::allow::PRESETS;

/// The exit statuses, one per kind of failure, so that a script or the
/// service manager can tell what to fix (listed in `--help` and the README).
pub mod exit {
    /// The relay failed while running or setting up, `check` found an
    /// error, `status` could not read the relay, or the random number
    /// generator failed.
    pub const FAILURE: u8 = 1;
    /// The command line is wrong (clap's own status).
    pub const USAGE: u8 = 2;
    /// The configuration file (or its `node.user`) is wrong.
    pub const CONFIG: u8 = 3;
    /// This host's key file is missing, unreadable, too open or invalid,
    /// or `keygen` would overwrite one.
    pub const KEY: u8 = 4;
    /// A privilege is missing: root or CAP_NET_ADMIN for the interface, a
    /// port below 1024, the status socket's group, or dropping privileges.
    pub const PERMISSION: u8 = 5;
}

#[derive(Parser)]
#[command(
    name = "mcast-relay",
    version,
    about = "Relays multicast and broadcast heartbeats (keepalived, heartbeat, corosync, spread) between hosts over authenticated, encrypted unicast UDP",
    after_help = after_help()
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the relay in the foreground (systemd runs it this way).
    Run {
        /// Configuration file: the cluster file, the same on every host.
        #[arg(short, long, value_name = "FILE", default_value = config::DEFAULT_PATH)]
        config: PathBuf,
        /// This host's private key, instead of node.key_file (default
        /// /etc/mcast-relay/node.key); its public key says which
        /// [[member]] this host is.
        #[arg(short, long = "key", value_name = "KEYFILE")]
        key: Option<PathBuf>,
    },
    /// Validate the configuration and the host; exit 1 with reasons.
    Check {
        /// Configuration file: the cluster file, the same on every host.
        #[arg(short, long, value_name = "FILE", default_value = config::DEFAULT_PATH)]
        config: PathBuf,
        /// This host's private key, instead of node.key_file; its public
        /// key says which [[member]] this host is.
        #[arg(short, long = "key", value_name = "KEYFILE")]
        key: Option<PathBuf>,
        #[arg(long = "tool-config", value_name = "FILE", help = tool_config_help())]
        tool_configs: Vec<PathBuf>,
    },
    /// Ask the running relay what it sees: peers and their health, who is
    /// master of each virtual router, alarms, counters.
    Status {
        /// Print the JSON the relay sends instead of tables.
        #[arg(long)]
        json: bool,
        /// The relay's status socket (node.status_socket).
        #[arg(short, long, default_value = config::DEFAULT_STATUS_SOCKET)]
        socket: PathBuf,
    },
    /// Write this host's new private key (mode 0600) and print its public
    /// key as the `public_key = "..."` line of this host's [[member]].
    Keygen {
        /// Where to write the private key; it never leaves this host.
        #[arg(short, long, value_name = "FILE", default_value = config::DEFAULT_KEY_FILE)]
        output: PathBuf,
        /// Overwrite an existing key file (this host's public key changes:
        /// update its [[member]] in the cluster file on every host).
        #[arg(long)]
        force: bool,
    },
    /// Print the public key of a private key file, as the `public_key =
    /// "..."` line of this host's [[member]].
    Pubkey {
        /// The private key file.
        #[arg(short, long = "key", value_name = "FILE", default_value = config::DEFAULT_KEY_FILE)]
        key: PathBuf,
    },
}

/// `--tool-config`'s help, naming the files the presets' tools keep.
fn tool_config_help() -> String {
    format!(
        "A failover tool's configuration to check against the relay's interface and subnet ({}); repeatable. Default: those at their usual paths under /etc, of the tools [allow] carries",
        toolconf::default_file_names()
    )
}

/// The presets and the exit statuses, below the commands in `--help`.
fn after_help() -> String {
    let mut s = String::from("Presets for [allow] presets:\n");
    for p in &PRESETS {
        s += &format!("  {:<10} {}\n", p.name, p.help);
    }
    s += &format!(
        "\nExit status: 0 success; {} failure (or `check` found an error); {} usage; {} configuration; {} key file; {} permission",
        exit::FAILURE,
        exit::USAGE,
        exit::CONFIG,
        exit::KEY,
        exit::PERMISSION
    );
    s
}
