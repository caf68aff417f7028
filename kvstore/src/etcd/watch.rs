//! Watches on etcd that outlive lost connections: each resumes from the
//! revision after the last one it delivered (BEHAVIOURS 50).

use std::time::Duration;

use etcd_client::{Client, EventType, WatchOptions, WatchResponse};
use tokio::sync::mpsc;

use super::{EtcdOptions, EtcdStore, revision, signal, snapshot, timed, to_pair};
use crate::watch::until_closed;
use crate::{Result, Watch, WatchEvent};

/// The most a watch waits between two attempts to reopen.
const MAX_RETRY: Duration = Duration::from_secs(1);

/// What one watch watches, and from where it goes on. It holds the
/// connection, not the store: dropping the store still stops its leases.
struct Resume {
    client: Client,
    options: EtcdOptions,
    closed: signal::Receiver<bool>,
    key: String,
    prefix: bool,
    /// The first revision not yet delivered.
    next: u64,
    tx: mpsc::Sender<WatchEvent>,
}

/// Why a watch stream stopped.
enum Stopped {
    /// The watcher or the store is gone: end the watch.
    Done,
    /// The stream broke or was cancelled: open another one.
    Broken,
}

impl EtcdStore {
    /// Reads the snapshot (errors surface here), then follows the changes
    /// in a task.
    pub(super) async fn start_watch(&self, key: String, prefix: bool) -> Result<Watch> {
        let (pairs, revision) = self.snapshot(&key, prefix).await?;
        let (tx, rx) = mpsc::channel(1024);
        // The channel is new and has room for one event.
        let _ = tx.try_send(WatchEvent::Snapshot { pairs, revision });
        let resume = Resume {
            client: self.inner.client.clone(),
            options: self.inner.options.clone(),
            closed: self.inner.closed.subscribe(),
            key,
            prefix,
            next: revision + 1,
            tx,
        };
        Ok(Watch::new(rx, tokio::spawn(resume.run())))
    }
}

impl Resume {
    async fn run(mut self) {
        let mut closed = self.closed.clone();
        let first = self.options.retry();
        let mut pause = first;
        let watcher = self.tx.clone();
        loop {
            let stopped = tokio::select! {
                () = until_closed(&mut closed) => Stopped::Done,
                () = watcher.closed() => Stopped::Done,
                stopped = self.follow(&mut pause, first) => stopped,
            };
            if matches!(stopped, Stopped::Done) {
                return;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_RETRY);
        }
    }

    /// Opens a stream from `next` and delivers its events until it breaks.
    async fn follow(&mut self, pause: &mut Duration, first: Duration) -> Stopped {
        let mut options = WatchOptions::new().with_start_revision(self.next as i64);
        if self.prefix {
            options = options.with_prefix();
        }
        let mut watches = self.client.watch_client();
        let after = self.options.request_timeout();
        let opened = timed(
            "watch",
            after,
            watches.watch(self.key.as_str(), Some(options)),
        );
        let mut stream = match opened.await {
            Ok(stream) => stream,
            Err(error) => {
                tracing::debug!(key = %self.key, %error, "opening a watch failed; retrying");
                return Stopped::Broken;
            }
        };
        loop {
            match stream.message().await {
                Ok(Some(response)) => {
                    *pause = first;
                    if let Some(stopped) = self.deliver(response).await {
                        return stopped;
                    }
                }
                Ok(None) => return Stopped::Broken,
                Err(error) => {
                    tracing::info!(key = %self.key, next = self.next, %error, "watch broken; resuming");
                    return Stopped::Broken;
                }
            }
        }
    }

    /// Sends a response's events; `Some` when the stream is done for.
    async fn deliver(&mut self, response: WatchResponse) -> Option<Stopped> {
        if response.compact_revision() > 0 {
            tracing::warn!(
                key = %self.key,
                next = self.next,
                compacted = response.compact_revision(),
                "changes compacted away: resync with a snapshot"
            );
            let after = self.options.request_timeout();
            let (pairs, revision) =
                match snapshot(&self.client, after, &self.key, self.prefix).await {
                    Ok(snapshot) => snapshot,
                    Err(_) => return Some(Stopped::Broken),
                };
            self.next = revision + 1;
            let sent = self.tx.send(WatchEvent::Snapshot { pairs, revision }).await;
            return Some(if sent.is_ok() {
                Stopped::Broken
            } else {
                Stopped::Done
            });
        }
        if response.canceled() {
            return Some(Stopped::Broken);
        }
        for event in response.events() {
            let Some(kv) = event.kv() else { continue };
            let change = match event.event_type() {
                EventType::Put => WatchEvent::Put(to_pair(kv)),
                EventType::Delete => WatchEvent::Delete {
                    key: String::from_utf8_lossy(kv.key()).into_owned(),
                    revision: revision(kv.mod_revision()),
                },
            };
            self.next = self.next.max(change.revision() + 1);
            if self.tx.send(change).await.is_err() {
                return Some(Stopped::Done);
            }
        }
        None
    }
}
