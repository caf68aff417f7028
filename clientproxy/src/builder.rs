//! Building a [`ClientProxy`]: its target, routes, backend and settings.

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use tokio::sync::Notify;
use walle_discovery::Drivers;
use walle_net::{Backend, ClientOptions};
use walle_packet::Protocol;
use walle_process::Routes;

use crate::entry::Maker;
use crate::rng::SplitMix;
use crate::table::{Shared, Table, follow};
use crate::{Balancer, ClientProxy, Error, ProxyOptions, balancer_by_name};

/// Builds a [`ClientProxy`].
pub struct ClientProxyBuilder<C: Clone + Send + Sync + 'static> {
    pub(crate) target: String,
    pub(crate) routes: Routes<C>,
    pub(crate) backend: Backend,
    pub(crate) protocol: Option<Protocol>,
    pub(crate) options: ProxyOptions,
    pub(crate) drivers: Option<Drivers>,
    pub(crate) balancer: Option<Box<dyn Balancer>>,
}

impl<C: Clone + Send + Sync + 'static> ClientProxyBuilder<C> {
    /// Settings.
    pub fn options(mut self, options: ProxyOptions) -> Self {
        self.options = options;
        self
    }
    /// The options of each entry's client.
    pub fn client_options(mut self, options: ClientOptions) -> Self {
        self.options.client = options;
        self
    }
    /// The io backend of each entry's client (default: the event loop).
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }
    /// The wire format pipeline (default: `walle`).
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = Some(protocol);
        self
    }
    /// The drivers that resolve the target (default: [`Drivers::new`]).
    pub fn drivers(mut self, drivers: Drivers) -> Self {
        self.drivers = Some(drivers);
        self
    }
    /// A balancer of one's own, instead of the one named in the options.
    pub fn balancer(mut self, balancer: Box<dyn Balancer>) -> Self {
        self.balancer = Some(balancer);
        self
    }

    /// Resolves the target and starts following it; connects to nothing.
    /// Must run in a tokio runtime, where the discovery task lives.
    pub async fn connect(self) -> Result<ClientProxy<C>, Error> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let balancer = match self.balancer {
            Some(balancer) => balancer,
            None => balancer_by_name(&self.options.balancer)?,
        };
        let drivers = self.drivers.unwrap_or_default();
        let discovery = drivers.resolve(&self.target).await?;
        let shutdown = Arc::new(Notify::new());
        let shared = Arc::new(Shared {
            target: self.target,
            table: RwLock::new(Table {
                entries: Vec::new(),
                balancer,
            }),
            changed: Notify::new(),
            maker: Maker {
                routes: self.routes,
                backend: self.backend,
                protocol: self.protocol,
                options: self.options.client.clone(),
            },
            options: self.options,
            rng: SplitMix::from_entropy(),
            base: Instant::now(),
            runtime: runtime.clone(),
            closed: std::sync::atomic::AtomicBool::new(false),
            shutdown: shutdown.clone(),
        });
        shared.fill(discovery.nodes().values());
        tracing::debug!(target = %shared.target, entries = discovery.nodes().len(), "client proxy resolved");
        runtime.spawn(follow(Arc::downgrade(&shared), shutdown, discovery));
        Ok(ClientProxy::from_shared(shared))
    }
}

impl<C: Clone + Send + Sync + 'static> fmt::Debug for ClientProxyBuilder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientProxyBuilder")
            .field("target", &self.target)
            .field("options", &self.options)
            .finish()
    }
}
