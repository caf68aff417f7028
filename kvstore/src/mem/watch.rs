//! Watches of the in-memory store: a snapshot taken under the same lock as
//! the subscription to later changes, so nothing falls between the two.

use std::sync::Arc;

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc};

use super::backend::Backend;
use super::state::{Change, State};
use super::{MemStore, signal};
use crate::watch::until_closed;
use crate::{Result, Watch, WatchEvent};

/// What a watch selects.
#[derive(Debug, Clone)]
pub(super) enum Filter {
    /// One normalised key.
    Key(String),
    /// The keys starting with a tree prefix.
    Prefix(String),
}

impl Filter {
    fn matches(&self, key: &str) -> bool {
        match self {
            Filter::Key(k) => k == key,
            Filter::Prefix(prefix) => key.starts_with(prefix.as_str()),
        }
    }

    fn snapshot(&self, state: &State) -> WatchEvent {
        let pairs = match self {
            Filter::Key(key) => state.get(key).into_iter().collect(),
            Filter::Prefix(prefix) => state.range(prefix),
        };
        let revision = state.revision();
        WatchEvent::Snapshot { pairs, revision }
    }
}

impl MemStore {
    pub(super) fn start_watch(&self, filter: Filter) -> Result<Watch> {
        let client = self.open()?;
        let backend = client.backend.clone();
        let (snapshot, changes) = backend.subscribe(|state| (filter.snapshot(state), Vec::new()));
        let (tx, rx) = mpsc::channel(client.options.watch_buffer.max(1));
        let from = snapshot.revision();
        // The channel is new and has room for one event.
        let _ = tx.try_send(snapshot);
        let closed = client.closed.subscribe();
        let task = tokio::spawn(forward(backend, filter, changes, from, tx, closed));
        Ok(Watch::new(rx, task))
    }
}

/// Sends the matching events of each change after revision `from`; a
/// watcher that fell out of the history gets a new snapshot.
async fn forward(
    backend: Arc<Backend>,
    filter: Filter,
    mut changes: broadcast::Receiver<Arc<Change>>,
    mut from: u64,
    tx: mpsc::Sender<WatchEvent>,
    mut closed: signal::Receiver<bool>,
) {
    loop {
        let received = tokio::select! {
            () = until_closed(&mut closed) => return,
            received = changes.recv() => received,
        };
        let events = match received {
            Ok(change) if change.revision > from => {
                from = change.revision;
                let matching = change.events.iter().filter(|e| match e {
                    WatchEvent::Put(pair) => filter.matches(&pair.key),
                    WatchEvent::Delete { key, .. } => filter.matches(key),
                    WatchEvent::Snapshot { .. } => false,
                });
                matching.cloned().collect()
            }
            Ok(_) => continue,
            Err(RecvError::Lagged(missed)) => {
                tracing::debug!(missed, "watcher fell behind the history: resync");
                let (snapshot, resubscribed) =
                    backend.subscribe(|state| (filter.snapshot(state), Vec::new()));
                changes = resubscribed;
                from = snapshot.revision();
                vec![snapshot]
            }
            Err(RecvError::Closed) => return,
        };
        for event in events {
            if tx.send(event).await.is_err() {
                return;
            }
        }
    }
}
