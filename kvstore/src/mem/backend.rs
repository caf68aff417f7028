//! The shared side of the in-memory store: the [`State`] behind a mutex,
//! the broadcast of changes to watchers, and the reaper task that expires
//! leases on time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use tokio::sync::{Notify, broadcast};
use tokio::time::Instant;

use super::state::{Change, State};

/// One in-memory store, shared by all its clients.
#[derive(Debug)]
pub(super) struct Backend {
    state: Mutex<State>,
    changes: broadcast::Sender<Arc<Change>>,
    wake: Arc<Notify>,
    reaper: AtomicBool,
}

impl Backend {
    pub(super) fn new(history: usize) -> Self {
        Backend {
            state: Mutex::new(State::default()),
            changes: broadcast::Sender::new(history.max(1)),
            wake: Arc::new(Notify::new()),
            reaper: AtomicBool::new(false),
        }
    }

    /// Runs `op` on the state after expiring the leases that are due, and
    /// hands the changes it makes to the watchers, in revision order.
    pub(super) fn write<R>(&self, op: impl FnOnce(&mut State) -> (R, Vec<Change>)) -> R {
        let mut state = self.lock();
        let expired = state.expire(Instant::now());
        let (result, changes) = op(&mut state);
        for change in expired.into_iter().chain(changes) {
            // No receiver is not an error: nobody watches.
            let _ = self.changes.send(Arc::new(change));
        }
        result
    }

    /// Like [`write`](Self::write), and subscribes to the changes from
    /// the ones `op` makes on.
    pub(super) fn subscribe<R>(
        &self,
        op: impl FnOnce(&mut State) -> (R, Vec<Change>),
    ) -> (R, broadcast::Receiver<Arc<Change>>) {
        self.write(|state| {
            let (result, changes) = op(state);
            ((result, self.changes.subscribe()), changes)
        })
    }

    /// Starts the task that expires leases of dead clients on time (once,
    /// on the current tokio runtime). Without a runtime, expired leases are
    /// still reaped, by the next operation on the store.
    pub(super) fn start_reaper(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if !self.reaper.swap(true, Ordering::AcqRel) {
            runtime.spawn(reap(Arc::downgrade(self), self.wake.clone()));
        }
    }

    /// Tells the reaper that a deadline may have moved.
    pub(super) fn wake_reaper(&self) {
        self.wake.notify_one();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the state consistent: every
        // operation completes its change before it can panic.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.wake.notify_one();
    }
}

async fn reap(backend: Weak<Backend>, wake: Arc<Notify>) {
    loop {
        let deadline = match backend.upgrade() {
            Some(backend) => backend.lock().next_deadline(),
            None => return,
        };
        match deadline {
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at) => {}
                    () = wake.notified() => {}
                }
            }
            None => wake.notified().await,
        }
        match backend.upgrade() {
            Some(backend) => backend.write(|_| ((), Vec::new())),
            None => return,
        }
    }
}
