//! The client proxy's errors.

/// What can go wrong in the client proxy.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A balancer name none of the built-ins answers to.
    #[error("unknown balancer {name:?}; known: {known}")]
    UnknownBalancer {
        /// The name asked for.
        name: String,
        /// The known names, comma-separated.
        known: String,
    },
}
