//! The driver task of a client: runs the dials and the backoff timers the
//! state machine asks for, on the client's runtime (its caller's, or the
//! shared client runtime). It holds the client only weakly, so dropping
//! the last handle ends it.

use std::future::Future;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Instant;

use tracing::{debug, warn};

use super::state::{Action, Event, Phase};
use super::{Inner, live};

/// Starts the driver of `inner` on the client's runtime.
pub(super) fn spawn<C: Clone + Send + Sync + 'static>(inner: &Arc<Inner<C>>) {
    let weak = Arc::downgrade(inner);
    let ended = inner.ended.clone();
    inner.runtime.spawn(async move {
        drive(weak).await;
        ended.flag.store(true, Ordering::Release);
        ended.notify.notify_waiters();
    });
}

async fn drive<C: Clone + Send + Sync + 'static>(weak: Weak<Inner<C>>) {
    loop {
        // Armed before the state is read: no wake-up is missed.
        let Some(wake) = weak.upgrade().map(|inner| inner.wake.clone()) else {
            return;
        };
        let notified = wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let Some(action) = weak
            .upgrade()
            .map(|i| i.machine().poll_action(Instant::now()))
        else {
            return;
        };
        match action {
            Action::Exit => return,
            Action::Wait => notified.await,
            Action::Sleep(until) => {
                tokio::select! {
                    () = tokio::time::sleep_until(until.into()) => {}
                    () = notified => continue,
                }
                match weak.upgrade() {
                    Some(inner) => {
                        inner.apply(Event::Tick);
                    }
                    None => return,
                }
            }
            Action::Dial { epoch } => dial(&weak, epoch).await,
        }
    }
}

/// Runs dial `epoch`: connect (resolving the endpoint's host), hand what
/// connected to the backend's driver, wait for it to set the connection
/// up. Gives up as soon as the phase moves on (a close), dropping what it
/// connected.
async fn dial<C: Clone + Send + Sync + 'static>(weak: &Weak<Inner<C>>, epoch: u64) {
    let Some((connect, timeout)) = weak.upgrade().map(|i| {
        let connect = i.dialer.dial(i.endpoint.clone());
        (connect, i.options.connect_timeout)
    }) else {
        return;
    };
    let connect = tokio::time::timeout(timeout, connect);
    let dialled = match while_dialling(weak, epoch, connect).await {
        None => {
            debug!(epoch, "closed during the dial: dial abandoned");
            return;
        }
        Some(Ok(Ok(dialled))) => dialled,
        Some(Ok(Err(e))) => return failed(weak, epoch, e),
        Some(Err(_)) => {
            let e = io::Error::new(io::ErrorKind::TimedOut, "connect timed out");
            return failed(weak, epoch, e);
        }
    };
    {
        let Some(inner) = weak.upgrade() else { return };
        if !inner.is_dialling(epoch) {
            let peer = dialled.peer();
            debug!(endpoint = %inner.endpoint, %peer, epoch, "closed during the dial: socket dropped");
            return;
        }
        let attach = live::attach(Arc::downgrade(&inner), epoch);
        let conn = Arc::new(inner.options.conn.clone());
        if let Err(e) = dialled.hand_over(attach, conn) {
            drop(inner);
            return failed(weak, epoch, e);
        }
    }
    // The backend builds the process (the event loop on its own thread).
    let setup = tokio::time::sleep(timeout);
    if while_dialling(weak, epoch, setup).await.is_some() {
        let e = io::Error::new(io::ErrorKind::TimedOut, "connection setup timed out");
        failed(weak, epoch, e);
    }
}

fn failed<C: Clone + Send + Sync + 'static>(weak: &Weak<Inner<C>>, epoch: u64, error: io::Error) {
    if let Some(inner) = weak.upgrade() {
        warn!(endpoint = %inner.endpoint, epoch, %error, "dial failed");
        inner.apply(Event::Failed { epoch, error });
    }
}

/// Runs `fut` while dial `epoch` is the phase; `None` once it is not (the
/// client closed, or went away).
async fn while_dialling<C, F>(weak: &Weak<Inner<C>>, epoch: u64, fut: F) -> Option<F::Output>
where
    C: Clone + Send + Sync + 'static,
    F: Future,
{
    tokio::pin!(fut);
    loop {
        let wake = weak.upgrade()?.wake.clone();
        let notified = wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if !weak.upgrade()?.is_dialling(epoch) {
            return None;
        }
        tokio::select! {
            out = &mut fut => return Some(out),
            () = notified => {}
        }
    }
}

impl<C: Clone + Send + Sync + 'static> Inner<C> {
    fn is_dialling(&self, epoch: u64) -> bool {
        matches!(self.machine().phase(), Phase::Connecting { epoch: e } if *e == epoch)
    }
}
