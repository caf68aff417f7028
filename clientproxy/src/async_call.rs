//! [`ClientProxy::async_call`]: a proxy call whose answer goes to a
//! callback instead of a future.

use walle_codec::Codec;
use walle_packet::{Metadata, Route};
use walle_process::CallOptions;

use crate::{ClientProxy, Error, ProxyCallOptions};

/// A route that outlives the caller's borrow.
enum OwnedRoute {
    None,
    Uri(Box<str>),
    Id(u32),
}

impl OwnedRoute {
    fn new(route: Route<'_>) -> Self {
        match route {
            Route::None => OwnedRoute::None,
            Route::Uri(uri) => OwnedRoute::Uri(uri.into()),
            Route::Id(id) => OwnedRoute::Id(id),
        }
    }

    fn as_route(&self) -> Route<'_> {
        match self {
            OwnedRoute::None => Route::None,
            OwnedRoute::Uri(uri) => Route::Uri(uri),
            OwnedRoute::Id(id) => Route::Id(*id),
        }
    }
}

/// Runs the callback exactly once: with the call's result, or, when the
/// task is dropped unfinished (its runtime shut down), with
/// [`Error::NoRuntime`].
struct Once<Resp, F: FnOnce(Result<Resp, Error>)>(Option<F>, std::marker::PhantomData<fn(Resp)>);

impl<Resp, F: FnOnce(Result<Resp, Error>)> Once<Resp, F> {
    fn run(mut self, result: Result<Resp, Error>) {
        if let Some(callback) = self.0.take() {
            callback(result);
        }
    }
}

impl<Resp, F: FnOnce(Result<Resp, Error>)> Drop for Once<Resp, F> {
    fn drop(&mut self) {
        if let Some(callback) = self.0.take() {
            callback(Err(Error::NoRuntime));
        }
    }
}

impl<C: Clone + Send + Sync + 'static> ClientProxy<C> {
    /// Calls like [`call_with`](Self::call_with) (same balancing and
    /// failover) and hands the result to `callback`, which runs exactly
    /// once, on the proxy's runtime: with the answer, the call's error, or
    /// [`Error::NoRuntime`] when that runtime shuts down first.
    ///
    /// The call runs as a task of its own, so it owns its request (and
    /// copies the route name and metadata); [`call`](Self::call) avoids
    /// that where a future will do.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use bytes::Bytes;
    /// # use walle_clientproxy::{ClientProxy, ProxyCallOptions};
    /// # use walle_codec::RawCodec;
    /// # use walle_net::{Backend, Server};
    /// # use walle_process::{Context, Router};
    /// # tokio::runtime::Runtime::new()?.block_on(async {
    /// # let mut router = Router::new(RawCodec);
    /// # router.route("echo", |_: &mut Context, req: Bytes| Ok(req))?;
    /// # let server = Server::builder(router).backend(Backend::tcp()).bind("127.0.0.1:0")?;
    /// let target = format!("static://{}", server.local_addr());
    /// let proxy = ClientProxy::builder(target, Router::new(RawCodec)).connect().await?;
    /// let (tx, rx) = tokio::sync::oneshot::channel();
    /// proxy.async_call("echo", Bytes::from_static(b"hi"), ProxyCallOptions::default(),
    ///     move |answer: Result<Bytes, _>| { let _ = tx.send(answer); });
    /// assert_eq!(rx.await??, Bytes::from_static(b"hi"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn async_call<'r, Req, Resp, F>(
        &self,
        route: impl Into<Route<'r>>,
        req: Req,
        options: ProxyCallOptions<'_>,
        callback: F,
    ) where
        C: Codec<Req> + Codec<Resp> + Unpin,
        Req: Send + Sync + 'static,
        Resp: Send + 'static,
        F: FnOnce(Result<Resp, Error>) + Send + 'static,
    {
        let route = OwnedRoute::new(route.into());
        let key: Option<Box<[u8]>> = options.key.map(Into::into);
        let metadata: Option<Metadata> = options.call.metadata.cloned();
        let (timeout, idempotent) = (options.call.timeout, options.idempotent);
        let proxy = self.clone();
        let once = Once(Some(callback), std::marker::PhantomData);
        self.shared.runtime.spawn(async move {
            let call = CallOptions {
                timeout,
                metadata: metadata.as_ref(),
            };
            let mut options = ProxyCallOptions::default()
                .call(call)
                .idempotent(idempotent);
            if let Some(key) = key.as_deref() {
                options = options.key(key);
            }
            let result = proxy.call_with(route.as_route(), &req, options).await;
            once.run(result);
        });
    }
}
