//! The running relay: sets up the interface and socket, then one event loop
//! moves packets between them through the sans-IO core.
//!
//! * `setup`: the steps before the loop, in order (key, first name
//!   resolution, MTU, interface, socket, listeners, privilege drop, core).
//! * `core_config`: the one translation from configuration to core, used
//!   at start and on reload.
//! * `event_loop`: the loop, its state and the per-packet handlers.
//! * `reload`: what a new configuration may change while running.
//! * `resolve`: background DNS for peers given by name.
//! * `hooks`: runs the `[[vip]]` commands when the core claims a
//!   virtual router, with timeouts, retries and one run at a time.
//! * `logs`: rate-limited drop and send-failure reporting.
//! * `control`: the status socket, metrics and service-manager listeners
//!   and how status clients are served.
//! * `metrics_server`: how metrics clients are served, capped and from a
//!   rate-limited render.
//! * [`status`], `metrics`: what those surfaces show (pure).
//! * `clock`: the time the core is given.
//! * [`Error`]: why the relay stopped, by kind (for the exit status).

mod clock;
mod control;
mod core_config;
mod error;
mod event_loop;
mod hooks;
mod logs;
mod metrics;
mod metrics_server;
mod reload;
mod resolve;
mod setup;
pub mod status;

pub use error::{Error, ErrorKind};

use crate::config::Config;

/// Runs the relay until SIGTERM or SIGINT.
pub fn run(cfg: Config) -> Result<(), Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::EventLoop)?;
    rt.block_on(async {
        let ready = setup::prepare(cfg).await?;
        event_loop::run(ready).await
    })
}
