use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use tokio::sync::{mpsc, watch as signal};
use tokio::task::JoinHandle;

use crate::KvPair;

/// What a [`Watch`] delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// Every watched key as of `revision`. Always the first event; comes
    /// again only if the store could not replay the changes it missed
    /// (history compacted): then it replaces all the watcher knew.
    Snapshot {
        /// The keys, sorted.
        pairs: Vec<KvPair>,
        /// The store revision the snapshot was read at.
        revision: u64,
    },
    /// A key was created or changed.
    Put(KvPair),
    /// A key was deleted (or its lease expired).
    Delete {
        /// The deleted key.
        key: String,
        /// The revision of the deletion.
        revision: u64,
    },
}

impl WatchEvent {
    /// The store revision this event brings the watcher to.
    pub fn revision(&self) -> u64 {
        match self {
            WatchEvent::Snapshot { revision, .. } | WatchEvent::Delete { revision, .. } => {
                *revision
            }
            WatchEvent::Put(pair) => pair.mod_revision,
        }
    }
}

/// A stream of [`WatchEvent`]s from [`Store::watch`](crate::Store::watch)
/// or [`Store::watch_tree`](crate::Store::watch_tree). It ends only when
/// its store is [closed](crate::Store::close) (dropping the store's
/// handles does not end it); lost connections are retried inside it.
pub struct Watch {
    events: mpsc::Receiver<WatchEvent>,
    task: JoinHandle<()>,
}

impl Watch {
    /// A watch fed by `task` through `events`; the task is aborted when the
    /// watch is dropped.
    pub(crate) fn new(events: mpsc::Receiver<WatchEvent>, task: JoinHandle<()>) -> Self {
        Watch { events, task }
    }

    /// The next event; `None` once the store is closed.
    pub async fn next(&mut self) -> Option<WatchEvent> {
        self.events.recv().await
    }
}

impl Stream for Watch {
    type Item = WatchEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<WatchEvent>> {
        self.events.poll_recv(cx)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl fmt::Debug for Watch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watch")
            .field("queued", &self.events.len())
            .finish_non_exhaustive()
    }
}

/// Returns when the store's closed flag turns true; never if the store is
/// dropped without closing (its watches go on).
pub(crate) async fn until_closed(closed: &mut signal::Receiver<bool>) {
    if closed.wait_for(|closed| *closed).await.is_err() {
        std::future::pending::<()>().await;
    }
}
