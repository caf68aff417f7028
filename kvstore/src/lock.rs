use std::fmt;
use std::future::Future;
use std::task::{Context, Waker};

use crate::{BoxFuture, Result};

type Release = Box<dyn FnOnce() -> BoxFuture<'static, Result<()>> + Send + Sync>;

/// A held lock from [`Store::lock`](crate::Store::lock). Release it with
/// [`unlock`](Lock::unlock); dropping it releases it in the background (on
/// the current tokio runtime; without one, only a release that needs no
/// I/O, such as `MemStore`'s, completes), and if the process dies the
/// lock's lease expires and frees it.
pub struct Lock {
    key: String,
    release: Option<Release>,
}

impl Lock {
    pub(crate) fn new(key: String, release: Release) -> Self {
        Lock {
            key,
            release: Some(release),
        }
    }

    /// The store key that stands for this holder (`/<lock name>/<lease>`).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Releases the lock.
    pub async fn unlock(mut self) -> Result<()> {
        match self.release.take() {
            Some(release) => release().await,
            None => Ok(()),
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let Some(release) = self.release.take() else {
            return;
        };
        let key = std::mem::take(&mut self.key);
        let released = async move {
            if let Err(error) = release().await {
                tracing::warn!(%key, %error, "releasing a dropped lock failed");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn(released)),
            Err(_) => {
                let mut task = Context::from_waker(Waker::noop());
                let _ = std::pin::pin!(released).poll(&mut task);
            }
        }
    }
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("key", &self.key)
            .field("held", &self.release.is_some())
            .finish()
    }
}
