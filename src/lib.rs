//! walle: a layered network-process framework for game servers and
//! microservices.
//!
//! ```text
//!          app        ordered startup/shutdown, signals, graceful drain
//!           |
//!   process layer     frame -> ProtocolWrapper -> Router -> middleware -> handler
//!           |          (Codec for payloads, Pool for buffers, pending-call table)
//!       io layer      backends: evloop (mio), tcp (tokio), kcp, ws
//!           |
//!  kvstore / discovery   (etcd, or the embedded in-memory store)
//! ```
//!
//! This crate re-exports the layers; each is its own crate:
//! [`mempool`] (buffer pools), [`codec`] (message codecs), [`packet`]
//! (framing and the `walle`, `walle-proto` and `due` wire formats),
//! [`process`] (router, middleware, calls, dispatch), [`net`] (servers,
//! clients and sessions on the event-loop or tokio backend), [`kvstore`] (the
//! `Store` trait, `MemStore`, `EtcdStore`) and [`discovery`] (nodes,
//! registration, discovery, drivers by URL scheme), [`clientproxy`] (calls
//! by service name over discovered nodes) and [`app`] (ordered startup and
//! graceful shutdown of a process's services).
//!
//! ```
//! use walle::prelude::*;
//!
//! let mut router = Router::new(RawCodec);
//! router.route("echo", |_ctx: &mut Context, req: Bytes| Ok(req))?;
//! let routes = router.into_routes(); // shared by every connection
//! let protocol = Protocol::new(WalleFormat::new());
//! # let _ = (routes, protocol);
//! # Ok::<(), walle::process::RouteError>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

/// The app layer: services started in order, stopped in reverse on a
/// signal or a stop handle; a server service registered in discovery.
pub use walle_app as app;
/// The client proxy: calls to a service by name, balanced over the nodes
/// discovery finds for it, with failover.
pub use walle_clientproxy as clientproxy;
pub use walle_codec as codec;
pub use walle_discovery as discovery;
pub use walle_kvstore as kvstore;
pub use walle_mempool as mempool;
pub use walle_net as net;
pub use walle_packet as packet;
pub use walle_process as process;

/// The names most programs need.
pub mod prelude {
    pub use bytes::Bytes;
    pub use walle_codec::{Code, Codec, JsonCodec, MsgPackCodec, ProstCodec, RawCodec};
    pub use walle_mempool::{Pool, SizedPool};
    pub use walle_net::{Dispatcher, Strategy};
    pub use walle_packet::{DueFormat, ProtoFormat, Protocol, ProtocolWrapper, Route, WalleFormat};
    pub use walle_process::{
        CallOptions, CloseReason, Context, Dispatch, Error, HandlerError, Next, Process, Router,
        Session, Status,
    };
}
