use std::collections::{BTreeMap, VecDeque};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use walle_kvstore::{KvPair, Store, Watch, WatchEvent, tree_prefix};

use crate::{Node, Result};

/// A change in a service's nodes, tower-discover style.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A node appeared.
    Insert(Node),
    /// A known node changed (state, address, metadata).
    Update(Node),
    /// The node with this id is gone.
    Remove(String),
}

/// The nodes of one service: a current set, and a stream of the
/// [`Change`]s that keep it current (the stream ends only when the store
/// under it closes).
///
/// Keys are read as `/<prefix>/<id>`: the exact prefix is stripped and the
/// rest, untouched, is the id. Values that are not node JSON are skipped and
/// logged (BEHAVIOURS 53).
#[derive(Debug)]
pub struct Discovery {
    prefix: String,
    nodes: BTreeMap<String, Node>,
    watch: Option<Watch>,
    pending: VecDeque<Change>,
}

impl Discovery {
    /// Watches the nodes under `prefix` in `store`; returns once the first
    /// snapshot is in.
    pub async fn watch(store: &dyn Store, prefix: &str) -> Result<Discovery> {
        let mut watch = store.watch_tree(prefix).await?;
        let first = watch.next().await;
        let mut discovery = Discovery {
            prefix: tree_prefix(prefix),
            nodes: BTreeMap::new(),
            watch: Some(watch),
            pending: VecDeque::new(),
        };
        if let Some(snapshot) = first {
            discovery.apply(snapshot);
        }
        // The first snapshot is the starting set, not a change.
        discovery.pending.clear();
        Ok(discovery)
    }

    /// A fixed set of nodes that never changes (`static://`).
    pub fn fixed(nodes: impl IntoIterator<Item = Node>) -> Discovery {
        Discovery {
            prefix: String::new(),
            nodes: nodes.into_iter().map(|n| (n.id.clone(), n)).collect(),
            watch: None,
            pending: VecDeque::new(),
        }
    }

    /// The current nodes, by id.
    pub fn nodes(&self) -> &BTreeMap<String, Node> {
        &self.nodes
    }

    /// The current nodes that are online.
    pub fn online(&self) -> impl Iterator<Item = &Node> {
        self.nodes.values().filter(|node| node.is_online())
    }

    /// The next change, already applied to [`nodes`](Discovery::nodes);
    /// `None` once the store is closed.
    pub async fn next(&mut self) -> Option<Change> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    fn apply(&mut self, event: WatchEvent) {
        match event {
            WatchEvent::Snapshot { pairs, .. } => {
                let fresh: BTreeMap<String, Node> =
                    pairs.iter().filter_map(|pair| self.decode(pair)).collect();
                for id in self.nodes.keys().filter(|id| !fresh.contains_key(*id)) {
                    self.pending.push_back(Change::Remove(id.clone()));
                }
                let old = std::mem::take(&mut self.nodes);
                for node in fresh.into_values() {
                    self.upsert(old.get(&node.id), node);
                }
            }
            WatchEvent::Put(pair) => match self.decode(&pair) {
                Some((_, node)) => {
                    let old = self.nodes.get(&node.id).cloned();
                    self.upsert(old.as_ref(), node);
                }
                None => self.remove(&pair.key),
            },
            WatchEvent::Delete { key, .. } => self.remove(&key),
        }
    }

    fn upsert(&mut self, old: Option<&Node>, node: Node) {
        match old {
            None => self.pending.push_back(Change::Insert(node.clone())),
            Some(old) if *old != node => self.pending.push_back(Change::Update(node.clone())),
            Some(_) => {}
        }
        self.nodes.insert(node.id.clone(), node);
    }

    fn remove(&mut self, key: &str) {
        let Some(id) = self.id_of(key) else { return };
        if self.nodes.remove(id).is_some() {
            self.pending.push_back(Change::Remove(id.to_owned()));
        }
    }

    fn id_of<'k>(&self, key: &'k str) -> Option<&'k str> {
        key.strip_prefix(self.prefix.as_str())
            .filter(|id| !id.is_empty())
    }

    fn decode(&self, pair: &KvPair) -> Option<(String, Node)> {
        let id = self.id_of(&pair.key)?;
        match Node::from_json(id, &pair.value) {
            Ok(node) => Some((id.to_owned(), node)),
            Err(error) => {
                tracing::warn!(key = %pair.key, %error, "skipping an entry that is not a node");
                None
            }
        }
    }
}

impl Stream for Discovery {
    type Item = Change;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Change>> {
        loop {
            if let Some(change) = self.pending.pop_front() {
                return Poll::Ready(Some(change));
            }
            let Some(watch) = self.watch.as_mut() else {
                return Poll::Pending; // a fixed set never changes
            };
            match Pin::new(watch).poll_next(cx) {
                Poll::Ready(Some(event)) => self.apply(event),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
