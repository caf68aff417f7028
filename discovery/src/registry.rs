use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use walle_kvstore::{BoxFuture, Store, tree_prefix};

use crate::{Error, Node, Result, State, reachable_addr};

/// Where nodes are published: a store under a prefix, or nowhere (the
/// `static://` driver). Object-safe; most code uses it through
/// [`Registration`].
pub trait Registry: Send + Sync + fmt::Debug + 'static {
    /// Writes `node` (as given) for `ttl`; kept alive until removed or
    /// until the process stops refreshing it.
    fn publish<'a>(&'a self, node: &'a Node, ttl: Duration) -> BoxFuture<'a, Result<()>>;

    /// Removes the node `id`; a node already gone is not an error.
    fn unpublish<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<()>>;
}

/// A [`Registry`] on a [`Store`]: node `id` lives at `/<prefix>/<id>` with
/// the node's JSON as value, on a lease of the TTL.
#[derive(Debug, Clone)]
pub struct StoreRegistry {
    store: Arc<dyn Store>,
    /// The tree prefix, with its trailing `/`.
    prefix: String,
}

impl StoreRegistry {
    /// Nodes under `prefix` in `store`.
    pub fn new(store: Arc<dyn Store>, prefix: &str) -> Self {
        StoreRegistry {
            store,
            prefix: tree_prefix(prefix),
        }
    }

    /// The key of node `id`.
    pub fn key(&self, id: &str) -> String {
        format!("{}{id}", self.prefix)
    }
}

impl Registry for StoreRegistry {
    fn publish<'a>(&'a self, node: &'a Node, ttl: Duration) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let json = node.to_json().map_err(|source| Error::Encode {
                id: node.id.clone(),
                source,
            })?;
            let key = self.key(&node.id);
            self.store.put(&key, Bytes::from(json), Some(ttl)).await?;
            Ok(())
        })
    }

    fn unpublish<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            match self.store.delete(&self.key(id)).await {
                Ok(()) | Err(walle_kvstore::Error::KeyNotFound(_)) => Ok(()),
                Err(error) => Err(error.into()),
            }
        })
    }
}

/// A node published in a [`Registry`], with the TTL it was published
/// with. Change its state with [`online`](Registration::online) and
/// [`offline`](Registration::offline) (BEHAVIOURS 51); remove it with
/// [`deregister`](Registration::deregister). Dropping it leaves the node
/// published for as long as the process (its store) lives.
#[derive(Debug)]
pub struct Registration {
    registry: Arc<dyn Registry>,
    node: Node,
    ttl: Duration,
}

impl Registration {
    /// Publishes `node` in `registry` for `ttl`. A wildcard address
    /// (`0.0.0.0`, `::`) is replaced by a reachable one (BEHAVIOURS 52);
    /// an empty id or one holding `/` is refused.
    pub async fn register(
        registry: Arc<dyn Registry>,
        mut node: Node,
        ttl: Duration,
    ) -> Result<Self> {
        if node.id.is_empty() || node.id.contains('/') {
            return Err(Error::InvalidNode(format!(
                "id {:?} must be non-empty, without '/'",
                node.id
            )));
        }
        node.addr = reachable_addr(&node.addr)?;
        registry.publish(&node, ttl).await?;
        tracing::info!(id = %node.id, addr = %node.addr, "node registered");
        Ok(Registration {
            registry,
            node,
            ttl,
        })
    }

    /// The node as published.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The node's id.
    pub fn id(&self) -> &str {
        &self.node.id
    }

    /// Publishes the node as [`State::Online`].
    pub async fn online(&mut self) -> Result<()> {
        self.set_state(State::Online).await
    }

    /// Publishes the node as [`State::Offline`]: still listed, not picked.
    pub async fn offline(&mut self) -> Result<()> {
        self.set_state(State::Offline).await
    }

    async fn set_state(&mut self, state: State) -> Result<()> {
        let node = self.node.clone().with_state(state);
        self.registry.publish(&node, self.ttl).await?;
        self.node = node;
        Ok(())
    }

    /// Removes the node.
    pub async fn deregister(self) -> Result<()> {
        self.registry.unpublish(&self.node.id).await?;
        tracing::info!(id = %self.node.id, "node deregistered");
        Ok(())
    }
}
