use std::io;

use crate::endpoint::{EndpointError, Scheme};

/// Failures of servers and clients.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// Binding, accepting, connecting or a socket option failed.
    #[error("io: {0}")]
    Io(#[from] io::Error),
    /// The process layer refused (a call, a send).
    #[error(transparent)]
    Process(#[from] walle_process::Error),
    /// The server or client has stopped.
    #[error("stopped")]
    Stopped,
    /// No session has that id (or user id).
    #[error("no such session: {0}")]
    NoSession(u64),
    /// The configuration cannot work.
    #[error("invalid configuration: {0}")]
    Config(&'static str),
    /// A client's server is not an endpoint.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// A client's backend cannot dial its endpoint's scheme.
    #[error("the {backend} backend cannot dial {scheme}:// endpoints")]
    UnsupportedScheme {
        /// The endpoint's scheme.
        scheme: Scheme,
        /// The backend's name.
        backend: &'static str,
    },
}

impl From<NetError> for walle_process::Error {
    fn from(e: NetError) -> Self {
        match e {
            NetError::Process(e) => e,
            NetError::Io(e) => walle_process::Error::Io(e),
            NetError::Stopped | NetError::NoSession(_) => walle_process::Error::SessionClosed,
            NetError::Config(what) => walle_process::Error::NotSupported(what),
            NetError::Endpoint(e) => {
                walle_process::Error::Io(io::Error::new(io::ErrorKind::InvalidInput, e))
            }
            NetError::UnsupportedScheme { .. } => {
                walle_process::Error::NotSupported("the backend cannot dial this endpoint's scheme")
            }
        }
    }
}
