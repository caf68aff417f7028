use std::time::Duration;

/// Failures of a [`Store`](crate::Store).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The key does not exist (BEHAVIOURS 44).
    #[error("key not found: {0}")]
    KeyNotFound(String),
    /// A compare-and-swap or compare-and-delete found another revision than
    /// the one expected: nothing was written (BEHAVIOURS 49).
    #[error("compare failed on {key}: the key is not at the expected revision")]
    Conflict {
        /// The key compared.
        key: String,
    },
    /// The key is empty or names the root, which no single-key operation
    /// accepts.
    #[error("invalid key {0:?}: a key needs at least one non-empty segment")]
    InvalidKey(String),
    /// The store was closed with [`Store::close`](crate::Store::close).
    #[error("the store is closed")]
    Closed,
    /// The store did not answer in time.
    #[error("{op} timed out after {after:?}")]
    Timeout {
        /// The operation that timed out.
        op: &'static str,
        /// How long it waited.
        after: Duration,
    },
    /// A lease that the operation relies on no longer exists.
    #[error("lease {0:x} was lost")]
    LeaseLost(i64),
    /// An error from the etcd client.
    #[cfg(feature = "etcd")]
    #[error("etcd: {0}")]
    Etcd(#[from] etcd_client::Error),
}

/// The result of store operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
