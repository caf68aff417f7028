//! walle app layer: the parts of a process ([`Service`]s) started in
//! order and stopped in reverse, on a signal or a [`StopHandle`].
//!
//! - [`Service`]: `name`, `init`, `start`, `stop`, `finish`, each async
//!   (boxed futures, so an app holds services of any type).
//! - [`App`]: built with [`App::builder`]; [`App::run`] inits every service
//!   in order, starts every service in order, waits for a stop, then stops
//!   and finishes every service in reverse (BEHAVIOURS 60). A failed init or
//!   start rolls back what already ran, and the error names the service.
//!   `stop` and `finish` are bounded per service ([`ServiceOptions`]).
//! - Stopping: a [`StopHandle`] from code, or SIGINT/SIGTERM when
//!   [`AppOptions::signals`] is on (the default); a second signal forces
//!   the process to exit with code 130.
//! - [`RunReport`]: every phase that ran, in order, with its outcome.
//!
//! - [`ServerService`]: a `walle_net` server that binds on start, publishes
//!   its node in discovery, and on stop goes offline, waits for proxies to
//!   see it, waits for the requests in flight, stops (flushing), then
//!   deregisters (BEHAVIOURS 61).
//!
//! - [`ProxyService`]: a `walle_clientproxy` proxy that waits for its nodes
//!   on start and closes (draining its calls) on stop.
//!
//! Anything else (a timer loop, a store connection) becomes part of an app
//! by implementing [`Service`].
//!
//! ```
//! use walle_app::{App, BoxFuture, PhaseResult, Service};
//!
//! struct Ticker;
//!
//! impl Service for Ticker {
//!     fn name(&self) -> &str {
//!         "ticker"
//!     }
//!     fn start(&mut self) -> BoxFuture<'_, PhaseResult> {
//!         Box::pin(async { Ok(()) })
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), walle_app::Error> {
//! let app = App::builder().signals(false).service(Ticker).build();
//! let stop = app.stop_handle();
//! stop.stop(); // kept until the app reaches its wait
//! let report = app.run().await?;
//! assert_eq!(
//!     report.sequence(),
//!     ["init ticker", "start ticker", "stop ticker", "finish ticker"]
//! );
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

mod app;
mod error;
mod options;
mod proxy;
mod report;
mod server;
mod service;
mod signal;
mod stop;

pub use app::{App, AppBuilder};
pub use error::Error;
pub use options::{AppOptions, ServiceOptions};
pub use proxy::ProxyService;
pub use report::{Outcome, Phase, PhaseRecord, RunReport};
pub use server::{BoundAddr, ServerService};
pub use service::{BoxError, BoxFuture, PhaseResult, Service};
pub use stop::{StopHandle, StopReason};
