//! The [`Service`] trait: one part of a process with an ordered life.

use std::future::Future;
use std::pin::Pin;

/// The error a service's phase returns: any error, boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A boxed future, the shape of every [`Service`] phase (the trait stays
/// object-safe so an [`App`](crate::App) holds services of any type).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a phase of a service returns.
pub type PhaseResult = Result<(), BoxError>;

/// One part of a process run by an [`App`](crate::App): a server, a client
/// proxy, a timer loop, a store connection.
///
/// The app calls `init` on every service in order, then `start` on every
/// service in order, waits for a stop, then calls `stop` and `finish` in
/// reverse order (BEHAVIOURS 60). `init` prepares without serving (open
/// files, read config); `start` begins the work and returns once it runs
/// (spawn what runs long); `stop` ends the work; `finish` releases what
/// `init` took. `stop` and `finish` are each bounded by a timeout: a phase
/// over it is dropped (cancelled), logged, and the run goes on.
///
/// Only `name` and `start` are required; the other phases default to doing
/// nothing.
pub trait Service: Send + 'static {
    /// The service's name, used in logs, the [`RunReport`](crate::RunReport)
    /// and errors.
    fn name(&self) -> &str;

    /// Prepares the service. A failure finishes the services already
    /// initialised, in reverse order, and ends the run with
    /// [`Error::Init`](crate::Error::Init).
    fn init(&mut self) -> BoxFuture<'_, PhaseResult> {
        Box::pin(async { Ok(()) })
    }

    /// Starts the work. A failure stops the services already started, then
    /// finishes every initialised one (both in reverse order), and ends the
    /// run with [`Error::Start`](crate::Error::Start).
    fn start(&mut self) -> BoxFuture<'_, PhaseResult>;

    /// Stops the work. Bounded by the service's stop timeout.
    fn stop(&mut self) -> BoxFuture<'_, PhaseResult> {
        Box::pin(async { Ok(()) })
    }

    /// Releases what `init` took. Bounded by the service's finish timeout.
    fn finish(&mut self) -> BoxFuture<'_, PhaseResult> {
        Box::pin(async { Ok(()) })
    }
}
