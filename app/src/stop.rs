//! The [`StopHandle`]: stops a running [`App`](crate::App) from code.

use std::sync::Arc;

use tokio::sync::watch;

/// Why an app began to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// [`StopHandle::stop`] was called.
    Handle,
    /// The process received SIGINT.
    Interrupt,
    /// The process received SIGTERM.
    Terminate,
}

/// Stops a running [`App`](crate::App): it ends the wait between the start
/// and the stop phases. Cloneable and cheap; a stop asked before the app
/// reaches its wait (even before `run`) is kept, and the app stops as soon
/// as every service has started. Asking again does nothing.
#[derive(Debug, Clone)]
pub struct StopHandle {
    tx: Arc<watch::Sender<Option<StopReason>>>,
}

impl StopHandle {
    pub(crate) fn new() -> Self {
        StopHandle {
            tx: Arc::new(watch::Sender::new(None)),
        }
    }

    /// Asks the app to stop.
    pub fn stop(&self) {
        self.trigger(StopReason::Handle);
    }

    /// Whether a stop was asked (by a handle or a signal).
    pub fn is_stopping(&self) -> bool {
        self.tx.borrow().is_some()
    }

    /// Waits until a stop is asked, and says why. Services may use it to
    /// end their own loops.
    pub async fn stopped(&self) -> StopReason {
        let mut rx = self.tx.subscribe();
        loop {
            if let Some(reason) = *rx.borrow_and_update() {
                return reason;
            }
            if rx.changed().await.is_err() {
                // The sender lives as long as this handle: not reached.
                return StopReason::Handle;
            }
        }
    }

    /// Records the first reason; later ones are ignored.
    pub(crate) fn trigger(&self, reason: StopReason) {
        self.tx.send_if_modified(|cur| {
            if cur.is_none() {
                *cur = Some(reason);
                true
            } else {
                false
            }
        });
    }
}
