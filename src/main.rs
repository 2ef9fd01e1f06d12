//! Command line: thin wrappers around the library, and the one place that
//! turns a failure's kind into the exit status (`cli::exit`).

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use mcast_relay::cli::{Cli, Command, exit};
use mcast_relay::daemon::ErrorKind;
use mcast_relay::io::{keyfile, tun};
use mcast_relay::{check, config, daemon};

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
        Command::Run { config, key } => {
            init_logging();
            let cfg = match config::Config::load(&config, key.as_deref()) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!("{e}");
                    return ExitCode::from(match e {
                        config::LoadError::Config(_) => exit::CONFIG,
                        config::LoadError::Key(_) => exit::KEY,
                    });
                }
            };
            match daemon::run(cfg) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e}");
                    ExitCode::from(match e.kind() {
                        ErrorKind::Config => exit::CONFIG,
                        ErrorKind::Key => exit::KEY,
                        ErrorKind::Permission => exit::PERMISSION,
                        ErrorKind::Runtime => exit::FAILURE,
                    })
                }
            }
        }
        Command::Check {
            config,
            key,
            tool_configs,
        } => {
            let findings = check::check(&config, key.as_deref(), tun::is_root(), &tool_configs);
            for f in &findings {
                println!("{f}");
            }
            if findings.iter().any(check::Finding::is_error) {
                ExitCode::from(exit::FAILURE)
            } else {
                ExitCode::SUCCESS
            }
        }
        Command::Status { json, socket } => status(&socket, json),
        Command::Keygen { output, force } => match keyfile::generate(&output, force) {
            Ok(public) => {
                println!("{}", keyfile::public_key_line(&public));
                eprintln!(
                    "wrote this host's new private key to {} (mode 0600; it never leaves this host); put the line above in this host's [[member]] of the cluster file, the same file on every host",
                    output.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => key_error(&e),
        },
        Command::Pubkey { key } => match keyfile::public_key(&key) {
            Ok(public) => {
                println!("{}", keyfile::public_key_line(&public));
                ExitCode::SUCCESS
            }
            Err(e) => key_error(&e),
        },
    }
}

fn key_error(e: &keyfile::KeyFileError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(match e {
        keyfile::KeyFileError::NoRandomness => exit::FAILURE,
        _ => exit::KEY,
    })
}

/// `mcast-relay status`: reads the relay's snapshot from its socket.
fn status(socket: &std::path::Path, json: bool) -> ExitCode {
    use std::io::Read;
    let shown = socket.display();
    let mut body = String::new();
    let read = std::os::unix::net::UnixStream::connect(socket).and_then(|mut c| {
        c.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
        c.read_to_string(&mut body)
    });
    if let Err(e) = read {
        eprintln!(
            "error: cannot read the relay's status from {shown}: {e} (is mcast-relay running? reading it needs root or the node.status_group)"
        );
        return ExitCode::from(if e.kind() == std::io::ErrorKind::PermissionDenied {
            exit::PERMISSION
        } else {
            exit::FAILURE
        });
    }
    if json {
        println!("{body}");
        return ExitCode::SUCCESS;
    }
    match serde_json::from_str::<mcast_relay::daemon::status::Status>(&body) {
        Ok(s) => {
            print!("{}", mcast_relay::daemon::status::render(&s));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: the relay at {shown} sent a status this version cannot read: {e}");
            ExitCode::from(exit::FAILURE)
        }
    }
}
