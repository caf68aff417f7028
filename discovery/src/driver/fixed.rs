use std::sync::Arc;
use std::time::Duration;

use walle_kvstore::BoxFuture;

use super::{Driver, Target};
use crate::{Discovery, Error, Node, Registry, Result};

/// `static://addr1,addr2`: a fixed list of online `tcp` nodes, each with
/// its address as id. Registering is accepted and does nothing: the list
/// is what the target says.
#[derive(Debug, Clone, Copy, Default)]
pub struct StaticDriver;

/// The registry of `static://` targets: publishes nothing.
#[derive(Debug, Clone, Copy, Default)]
struct NoRegistry;

impl Registry for NoRegistry {
    fn publish<'a>(&'a self, node: &'a Node, _ttl: Duration) -> BoxFuture<'a, Result<()>> {
        tracing::debug!(id = %node.id, "static target: nothing to publish");
        Box::pin(async { Ok(()) })
    }

    fn unpublish<'a>(&'a self, _id: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

impl Driver for StaticDriver {
    fn registry<'a>(&'a self, _target: &'a Target) -> BoxFuture<'a, Result<Arc<dyn Registry>>> {
        Box::pin(async { Ok(Arc::new(NoRegistry) as Arc<dyn Registry>) })
    }

    fn resolve<'a>(&'a self, target: &'a Target) -> BoxFuture<'a, Result<Discovery>> {
        Box::pin(async move {
            let nodes: Vec<Node> = target
                .hosts()
                .map(|addr| Node::new(addr).with_id(addr))
                .collect();
            if nodes.is_empty() {
                return Err(Error::InvalidTarget {
                    target: target.to_string(),
                    reason: "a static target lists addresses: static://host:port,host:port",
                });
            }
            Ok(Discovery::fixed(nodes))
        })
    }
}
