//! The accept path: each accepted connection gets a place under the
//! accept limit, a session and its process, or is refused.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use tracing::warn;
use walle_process::{Session, Transport};

use super::Shared;
use crate::conn::{Attach, Handler, Side};
use crate::options::HeartbeatMode;
use crate::session::SessionHandle;

/// Builds the process of each accepted connection, or refuses it.
pub(super) fn attach<C: Clone + Send + Sync + 'static>(shared: Weak<Shared<C>>) -> Attach {
    Arc::new(move |transport: Arc<dyn Transport>, peer: SocketAddr| {
        let shared = shared.upgrade()?;
        let Some(admission) = shared.hub.admit() else {
            shared.refused.fetch_add(1, Ordering::Relaxed);
            shared.metrics.refused.increment(1);
            warn!(%peer, limit = shared.options.max_sessions, "connection refused: accept limit reached");
            return None;
        };
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let session = Session::new(id);
        let mut options = shared.options.conn.process.clone();
        options.echo_heartbeat = !shared.options.conn.heartbeat.is_zero()
            && shared.options.conn.heartbeat_mode == HeartbeatMode::Echo;
        let Some(process) = shared.parts.build(
            transport,
            session.clone(),
            options,
            Side::Server,
            tracing::debug_span!("conn", session = id, %peer, backend = shared.backend),
        ) else {
            shared.refused.fetch_add(1, Ordering::Relaxed);
            shared.metrics.refused.increment(1);
            return None;
        };
        let handle = SessionHandle {
            process: process.clone(),
            peer,
        };
        shared.hub.insert(handle.clone());
        shared.metrics.accepted.increment(1);
        shared.metrics.open.increment(1.0);
        let weak = Arc::downgrade(&shared);
        session.on_close(move |_| {
            // A session closing after its server is gone was counted off
            // when the server went (`Drop for Shared`).
            if let Some(shared) = weak.upgrade() {
                shared.hub.remove(id);
                shared.metrics.open.decrement(1.0);
            }
            drop(admission);
        });
        if let Some(hook) = &shared.on_session {
            if let Err(reason) = hook(&handle) {
                warn!(%peer, session = id, %reason, "connection refused by the session hook");
                let refused = walle_process::Error::Hook(reason);
                handle.close_for(walle_process::CloseReason::Refused(Arc::new(refused)));
                return None;
            }
        }
        tracing::debug!(%peer, session = id, "session open");
        Some(Arc::new(process) as Arc<dyn Handler>)
    })
}
