//! The errors of an [`App`](crate::App) run.

use crate::{BoxError, RunReport};

/// Why [`App::run`](crate::App::run) failed. Each variant carries the
/// [`RunReport`] of what ran, rollback included.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A service's `init` failed; the services initialised before it were
    /// finished in reverse order.
    #[error("service {service} failed to init: {source}")]
    Init {
        /// The failed service.
        service: String,
        /// Its error.
        #[source]
        source: BoxError,
        /// What ran.
        report: Box<RunReport>,
    },
    /// A service's `start` failed; the services started before it were
    /// stopped, then every initialised one finished, both in reverse order.
    #[error("service {service} failed to start: {source}")]
    Start {
        /// The failed service.
        service: String,
        /// Its error.
        #[source]
        source: BoxError,
        /// What ran.
        report: Box<RunReport>,
    },
    /// The signal handlers could not be installed (no phase ran).
    #[error("cannot install the signal handlers: {0}")]
    Signal(#[source] std::io::Error),
}

impl Error {
    /// The report of what ran (empty for [`Error::Signal`]).
    pub fn report(&self) -> Option<&RunReport> {
        match self {
            Error::Init { report, .. } | Error::Start { report, .. } => Some(report),
            Error::Signal(_) => None,
        }
    }
}
