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
    /// No entry of the target is online and healthy (none at all, all
    /// offline, or all put aside after failed connects), within the
    /// configured wait.
    #[error("no available node for {target}")]
    NoNode {
        /// The target URL.
        target: String,
    },
    /// Resolving or watching the target failed.
    #[error("discovery: {0}")]
    Discovery(#[from] walle_discovery::Error),
    /// Connecting to the entry failed, and no other entry was left to
    /// fail over to (within the failover bound).
    #[error("connecting to node {id} at {addr}: {source}")]
    Connect {
        /// The entry's node id.
        id: String,
        /// The address dialled.
        addr: String,
        /// Why the connect failed.
        #[source]
        source: walle_net::NetError,
    },
    /// The call itself failed (a remote error, a timeout, a connection
    /// lost with the call on the wire, ...).
    #[error(transparent)]
    Call(#[from] walle_process::Error),
    /// The proxy was closed ([`ClientProxy::close`](crate::ClientProxy::close)).
    #[error("the client proxy of {target} is closed")]
    Closed {
        /// The target URL.
        target: String,
    },
    /// The proxy needs a tokio runtime (to follow discovery and dial).
    #[error("the client proxy needs a tokio runtime")]
    NoRuntime,
}

impl Error {
    /// Whether this is [`Error::NoNode`].
    pub fn is_no_node(&self) -> bool {
        matches!(self, Error::NoNode { .. })
    }
}
