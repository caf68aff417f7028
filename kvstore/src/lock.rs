use std::fmt;

use crate::{BoxFuture, Result};

type Release = Box<dyn FnOnce() -> BoxFuture<'static, Result<()>> + Send + Sync>;

/// A held lock from [`Store::lock`](crate::Store::lock). Release it with
/// [`unlock`](Lock::unlock); dropping it releases it in the background
/// (when a tokio runtime is there to run the release), and if the process
/// dies the lock's lease expires and frees it.
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
        if let Some(release) = self.release.take() {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let key = std::mem::take(&mut self.key);
                runtime.spawn(async move {
                    if let Err(error) = release().await {
                        tracing::warn!(%key, %error, "releasing a dropped lock failed");
                    }
                });
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
