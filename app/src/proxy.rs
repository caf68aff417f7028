//! [`ProxyService`]: a [`ClientProxy`] as a [`Service`], so an app waits
//! for the nodes it needs before serving and closes the proxy after the
//! services that call through it have stopped.

use std::fmt;
use std::time::Duration;

use walle_clientproxy::{ClientProxy, EntryStatus};

use crate::{BoxFuture, PhaseResult, Service};

/// A client proxy as a [`Service`].
///
/// - `start`: when [`wait_for_nodes`](Self::wait_for_nodes) asks for it,
///   waits until that many entries are online in discovery, and fails the
///   start (the app rolls back) when they are not within the bound.
/// - `stop`: [`ClientProxy::close`]: calls in flight end (bounded by the
///   proxy's drain option), then the clients close.
///
/// Put it before the services that call through it: an app stops in
/// reverse order, so a server forwarding through the proxy stops (and
/// drains its requests) before the proxy closes.
///
/// ```
/// # use walle_app::{App, ProxyService};
/// # use walle_clientproxy::ClientProxy;
/// # use walle_codec::RawCodec;
/// # use walle_process::Router;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let proxy = ClientProxy::builder("mem:///doc/app-proxy", Router::new(RawCodec))
///     .connect()
///     .await?;
/// let app = App::builder()
///     .signals(false)
///     .service(ProxyService::new("nodes", proxy.clone()))
///     .build();
/// app.stop_handle().stop();
/// app.run().await?;
/// assert!(proxy.is_closed());
/// # Ok(())
/// # }
/// ```
pub struct ProxyService<C: Clone + Send + Sync + 'static> {
    name: String,
    proxy: ClientProxy<C>,
    wait: Option<(usize, Duration)>,
}

impl<C: Clone + Send + Sync + 'static> ProxyService<C> {
    /// A service named `name` around `proxy` (clones of it keep working
    /// until the service stops).
    pub fn new(name: impl Into<String>, proxy: ClientProxy<C>) -> Self {
        ProxyService {
            name: name.into(),
            proxy,
            wait: None,
        }
    }

    /// Makes `start` wait up to `bound` until `n` entries are online.
    pub fn wait_for_nodes(mut self, n: usize, bound: Duration) -> Self {
        self.wait = Some((n, bound));
        self
    }

    /// The proxy.
    pub fn proxy(&self) -> &ClientProxy<C> {
        &self.proxy
    }

    async fn start_inner(&mut self) -> PhaseResult {
        let Some((n, bound)) = self.wait else {
            return Ok(());
        };
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            // Created before the look: a change meanwhile still wakes it.
            let changed = self.proxy.changed();
            let online = self
                .proxy
                .stats()
                .iter()
                .filter(|s| s.status != EntryStatus::Offline)
                .count();
            if online >= n {
                tracing::info!(service = %self.name, target = %self.proxy.target(), online, "nodes online");
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return Err(format!(
                    "{online} of {n} nodes of {} online after {bound:?}",
                    self.proxy.target()
                )
                .into());
            }
        }
    }
}

impl<C: Clone + Send + Sync + 'static> fmt::Debug for ProxyService<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyService")
            .field("name", &self.name)
            .field("proxy", &self.proxy)
            .field("wait", &self.wait)
            .finish()
    }
}

impl<C: Clone + Send + Sync + 'static> Service for ProxyService<C> {
    fn name(&self) -> &str {
        &self.name
    }
    fn start(&mut self) -> BoxFuture<'_, PhaseResult> {
        Box::pin(self.start_inner())
    }
    fn stop(&mut self) -> BoxFuture<'_, PhaseResult> {
        Box::pin(async move {
            self.proxy.close().await;
            tracing::info!(service = %self.name, "client proxy closed");
            Ok(())
        })
    }
}
