//! The sessions of a server: lookup, user binding, broadcast, admission.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tracing::info;
use walle_process::CloseReason;

use crate::NetError;
use crate::session::{SessionHandle, UserId};

/// A place under the accept limit, given back when dropped (when the
/// session closes, or at once when the connection is refused).
#[derive(Debug)]
pub(crate) struct Admission(Arc<AtomicUsize>);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

pub(crate) struct Hub<C> {
    sessions: RwLock<HashMap<u64, SessionHandle<C>>>,
    users: Mutex<HashMap<u64, u64>>,
    admitted: Arc<AtomicUsize>,
    max: usize,
}

impl<C> Hub<C> {
    /// Sessions in the hub (for a drop, where `C` has no bounds).
    pub(crate) fn count(&self) -> usize {
        self.sessions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }
}

impl<C: Clone + Send + Sync + 'static> Hub<C> {
    pub(crate) fn new(max: usize) -> Self {
        Hub {
            sessions: RwLock::new(HashMap::new()),
            users: Mutex::new(HashMap::new()),
            admitted: Arc::new(AtomicUsize::new(0)),
            max,
        }
    }

    /// A place for one more session, or `None` at the limit. The count
    /// rises first and falls back on refusal, so racing accepts cannot
    /// exceed it (BEHAVIOURS 34).
    pub(crate) fn admit(&self) -> Option<Admission> {
        let before = self.admitted.fetch_add(1, Ordering::AcqRel);
        let admission = Admission(self.admitted.clone());
        (self.max == 0 || before < self.max).then_some(admission)
    }

    pub(crate) fn admitted(&self) -> usize {
        self.admitted.load(Ordering::Acquire)
    }

    pub(crate) fn insert(&self, handle: SessionHandle<C>) {
        let mut sessions = self.sessions.write().unwrap_or_else(|e| e.into_inner());
        sessions.insert(handle.id(), handle);
    }

    /// Forgets a closed session and its user binding.
    pub(crate) fn remove(&self, id: u64) {
        let removed = self
            .sessions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        if let Some(user) = removed.and_then(|h| h.user()) {
            let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
            if users.get(&user) == Some(&id) {
                users.remove(&user);
            }
        }
    }

    pub(crate) fn get(&self, id: u64) -> Option<SessionHandle<C>> {
        self.sessions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    pub(crate) fn by_user(&self, user: u64) -> Option<SessionHandle<C>> {
        let id = *self
            .users
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&user)?;
        self.get(id)
    }

    pub(crate) fn len(&self) -> usize {
        self.sessions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    pub(crate) fn all(&self) -> Vec<SessionHandle<C>> {
        self.sessions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Binds `user` to session `id`; a session bound to `user` before is
    /// unbound and closed (BEHAVIOURS 37). A user `id` was bound to before
    /// is unbound from it, so pushes to that user no longer reach it.
    pub(crate) fn bind(&self, user: u64, id: u64) -> Result<(), NetError> {
        let handle = self.get(id).ok_or(NetError::NoSession(id))?;
        let kicked = {
            // Under the users lock: the table and the sessions' values
            // change together.
            let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(before) = handle.user().filter(|&before| before != user) {
                if users.get(&before) == Some(&id) {
                    users.remove(&before);
                }
            }
            handle.session().insert(UserId(user));
            let old = users.insert(user, id).filter(|&old| old != id);
            let kicked = old.and_then(|old| self.get(old));
            if let Some(old) = &kicked {
                old.session().remove::<UserId>();
            }
            kicked
        };
        if let Some(old) = kicked {
            info!(
                user,
                old = old.id(),
                new = id,
                "user bound to a new session: kicking the old one"
            );
            old.close_for(CloseReason::Replaced); // its callbacks run without the lock
        }
        Ok(())
    }
}
