/// Failures of registration and discovery.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store under the registry or discovery failed.
    #[error(transparent)]
    Store(#[from] walle_kvstore::Error),
    /// A node could not be encoded as JSON.
    #[error("node {id}: {source}")]
    Encode {
        /// The node's id.
        id: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// No driver for the target's scheme (BEHAVIOURS 59).
    #[error("no discovery driver for scheme {scheme:?}; known: {known}")]
    UnknownScheme {
        /// The scheme asked for.
        scheme: String,
        /// The schemes there are drivers for, comma separated.
        known: String,
    },
    /// A driver that ships with walle but was left out of this build: the
    /// `etcd` driver without the crate's `etcd` feature.
    #[error(
        "the {scheme}:// driver is not built in; enable the cargo feature {feature:?} (of walle or walle-discovery)"
    )]
    DriverNotBuilt {
        /// The scheme asked for.
        scheme: String,
        /// The cargo feature that builds the driver.
        feature: &'static str,
    },
    /// A target URL that cannot be used.
    #[error("invalid target {target:?}: {reason}")]
    InvalidTarget {
        /// The target as given.
        target: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A node that cannot be registered as it is.
    #[error("invalid node: {0}")]
    InvalidNode(String),
    /// A wildcard listen address (0.0.0.0, ::) for which no address other
    /// hosts can reach was found (BEHAVIOURS 52).
    #[error("cannot publish {addr}: {reason}; register a concrete address instead")]
    NoReachableAddress {
        /// The listen address given.
        addr: String,
        /// Why none was found.
        reason: String,
    },
}

/// The result of discovery operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
