//! Command line: thin wrappers around the library.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mcast_relay::{check, config, crypto, daemon, keyfile, tun};

#[derive(Parser)]
#[command(
    name = "mcast-relay",
    version,
    about = "Relays multicast and broadcast heartbeats (keepalived, heartbeat, corosync, spread) between hosts over authenticated, encrypted unicast UDP"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the relay in the foreground (systemd runs it this way).
    Run {
        /// Configuration file.
        #[arg(short, long, default_value = config::DEFAULT_PATH)]
        config: PathBuf,
    },
    /// Validate the configuration and the host; exit 1 with reasons.
    Check {
        /// Configuration file.
        #[arg(short, long, default_value = config::DEFAULT_PATH)]
        config: PathBuf,
        /// A failover tool's configuration to check against the relay's
        /// interface and subnet (keepalived.conf, ha.cf, corosync.conf);
        /// repeatable. Default: those at their usual paths under /etc.
        #[arg(long = "tool-config", value_name = "FILE")]
        tool_configs: Vec<PathBuf>,
    },
    /// Write a new random cluster key (mode 0600), or print it.
    Keygen {
        /// File to write; without it the key is printed to standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Overwrite an existing key file.
        #[arg(long)]
        force: bool,
    },
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MCAST_RELAY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config } => {
            init_logging();
            let cfg = match config::Config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!("{e}");
                    return ExitCode::FAILURE;
                }
            };
            match daemon::run(cfg) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Check {
            config,
            tool_configs,
        } => {
            let findings = check::check(&config, tun::is_root(), &tool_configs);
            for f in &findings {
                println!("{f}");
            }
            if findings.iter().any(check::Finding::is_error) {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Command::Keygen { output, force } => {
            let key = match crypto::ClusterKey::generate() {
                Ok(k) => k,
                Err(_) => {
                    eprintln!("error: the system random number generator failed");
                    return ExitCode::FAILURE;
                }
            };
            match output {
                None => {
                    print!("{}", key.to_file_text());
                    ExitCode::SUCCESS
                }
                Some(path) => match keyfile::write(&path, &key, force) {
                    Ok(()) => {
                        eprintln!(
                            "wrote a new cluster key to {} (mode 0600); copy it to every node, keeping it private",
                            path.display()
                        );
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        ExitCode::FAILURE
                    }
                },
            }
        }
    }
}
