//! One dial's connection as the client holds it: built into a process
//! when the driver attaches it, and fed back to the state machine, with
//! its close reason, when it ends.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use tracing::{debug, info};
use walle_process::{CloseReason, Process, Session, Transport};

use super::Inner;
use super::state::Event;
use crate::conn::{Attach, Handler, Side};

/// A live connection: its process and the address the dial reached.
pub(super) struct Live<C> {
    pub(super) process: Process<C>,
    pub(super) peer: SocketAddr,
}

/// Builds the process of dial `epoch`'s connection, or turns it away.
pub(super) fn attach<C: Clone + Send + Sync + 'static>(weak: Weak<Inner<C>>, epoch: u64) -> Attach {
    Arc::new(move |transport: Arc<dyn Transport>, peer: SocketAddr| {
        let inner = weak.upgrade()?;
        let session = Session::new(inner.sessions.fetch_add(1, Ordering::Relaxed));
        let mut options = inner.options.conn.process.clone();
        options.echo_heartbeat = false;
        let Some(process) = inner
            .parts
            .build(
                transport,
                session.clone(),
                options,
                Side::Client,
                tracing::debug_span!("conn", session = session.id(), %peer, backend = inner.backend, side = "client"),
            )
        else {
            let error = io::Error::other("cannot build the connection's process");
            inner.apply(Event::Failed { epoch, error });
            return None;
        };
        let closed = Arc::downgrade(&inner);
        session.on_close(move |reason| {
            if let Some(inner) = closed.upgrade() {
                inner.disconnected(epoch, reason);
            }
        });
        let link = Live {
            process: process.clone(),
            peer,
        };
        if !inner.apply(Event::Attached { epoch, conn: link }) {
            debug!(endpoint = %inner.endpoint, epoch, "connection came too late: dropped");
            return None;
        }
        info!(endpoint = %inner.endpoint, %peer, epoch, "connected");
        Some(Arc::new(process) as Arc<dyn Handler>)
    })
}

impl<C: Clone + Send + Sync + 'static> Inner<C> {
    /// Connection `epoch` closed for `reason`: tells the machine, and says
    /// so once, with what the client does next, if it was the live one.
    fn disconnected(&self, epoch: u64, reason: &CloseReason) {
        let (from, to, _) = self.apply_states(Event::Disconnected {
            epoch,
            reason: reason.clone(),
        });
        if from == super::ClientState::Connected && from != to {
            info!(
                endpoint = %self.endpoint,
                epoch,
                kind = reason.name(),
                %reason,
                next = ?to,
                "disconnected"
            );
        }
    }
}
