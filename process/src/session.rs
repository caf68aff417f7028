//! Per-connection state shared by every request of the connection.

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use crate::close::CloseReason;

type CloseFn = Box<dyn FnOnce(&CloseReason) + Send>;

/// A connection's identity and values. Cheap to clone; every clone sees
/// the same values.
///
/// Values are keyed by type, one per type:
///
/// ```
/// use walle_process::Session;
///
/// #[derive(Clone, Debug, PartialEq)]
/// struct UserId(u64);
///
/// let session = Session::new(1);
/// session.insert(UserId(42));
/// assert_eq!(session.get::<UserId>(), Some(UserId(42)));
/// assert_eq!(session.get::<String>(), None);
/// ```
#[derive(Clone)]
pub struct Session(Arc<Inner>);

struct Inner {
    id: u64,
    /// A session holds few values: a list, searched, is smaller than a
    /// map (and, empty, allocates nothing either).
    values: RwLock<Vec<(TypeId, Box<dyn Any + Send + Sync>)>>,
    on_close: Mutex<Option<Vec<CloseFn>>>,
    reason: OnceLock<CloseReason>,
}

impl Session {
    /// A session with id `id`.
    pub fn new(id: u64) -> Self {
        Session(Arc::new(Inner {
            id,
            values: RwLock::new(Vec::new()),
            on_close: Mutex::new(Some(Vec::new())),
            reason: OnceLock::new(),
        }))
    }

    /// The session id.
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// Stores `value`, replacing any value of the same type.
    pub fn insert<T: Send + Sync + 'static>(&self, value: T) {
        let mut values = self.0.values.write().unwrap_or_else(|e| e.into_inner());
        let id = TypeId::of::<T>();
        match values.iter_mut().find(|(t, _)| *t == id) {
            Some((_, slot)) => *slot = Box::new(value),
            None => values.push((id, Box::new(value))),
        }
    }

    /// A clone of the value of type `T`.
    pub fn get<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.with(|v: &T| v.clone())
    }

    /// Runs `f` on the value of type `T`, if any.
    pub fn with<T: Send + Sync + 'static, R>(&self, f: impl FnOnce(&T) -> R) -> Option<R> {
        let values = self.0.values.read().unwrap_or_else(|e| e.into_inner());
        let id = TypeId::of::<T>();
        values
            .iter()
            .find(|(t, _)| *t == id)
            .and_then(|(_, v)| v.downcast_ref::<T>())
            .map(f)
    }

    /// Removes the value of type `T`.
    pub fn remove<T: Send + Sync + 'static>(&self) -> Option<T> {
        let mut values = self.0.values.write().unwrap_or_else(|e| e.into_inner());
        let id = TypeId::of::<T>();
        let at = values.iter().position(|(t, _)| *t == id)?;
        values.swap_remove(at).1.downcast::<T>().ok().map(|v| *v)
    }

    /// Runs `f` once when the session closes, with the reason; at once if
    /// it already has.
    pub fn on_close(&self, f: impl FnOnce(&CloseReason) + Send + 'static) {
        let mut callbacks = self.0.on_close.lock().unwrap_or_else(|e| e.into_inner());
        match callbacks.as_mut() {
            Some(list) => {
                // Most sessions get one or two callbacks: room for one at
                // first, not the four a first push would make.
                if list.capacity() == 0 {
                    list.reserve_exact(1);
                }
                list.push(Box::new(f));
            }
            None => {
                drop(callbacks);
                f(self.close_reason().as_ref().unwrap_or(&CloseReason::Local));
            }
        }
    }

    /// Why the session closed; `None` while it is open.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.0.reason.get().cloned()
    }

    /// Keeps `reason` as why the session closed, unless one is kept already.
    pub(crate) fn record(&self, reason: CloseReason) {
        let _ = self.0.reason.set(reason);
    }

    /// Runs the close callbacks, once, with the reason [`record`]ed before
    /// (so an `on_close` that finds them taken finds the reason too); later
    /// calls do nothing.
    ///
    /// [`record`]: Session::record
    pub(crate) fn run_close(&self) {
        let callbacks = self
            .0
            .on_close
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let reason = self.0.reason.get().unwrap_or(&CloseReason::Local);
        for f in callbacks.into_iter().flatten() {
            // One panicking callback neither stops the others nor the
            // thread closing the session.
            let run = std::panic::AssertUnwindSafe(|| f(reason));
            if let Err(panic) = std::panic::catch_unwind(run) {
                tracing::error!(
                    panic = crate::panic::panic_message(&*panic),
                    "a close callback panicked"
                );
            }
        }
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session").field("id", &self.0.id).finish()
    }
}
