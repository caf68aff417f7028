//! The walle process layer: what happens to a frame between the socket and
//! the handler, and to a call between the caller and the socket.
//!
//! ```text
//! frame -> [dispatch hook] -> packet encoders -> ProtocolWrapper -> Router
//!       -> middleware -> handler -> response -> ProtocolWrapper -> Transport
//! ```
//!
//! - [`Router`]: string and numeric routes, global and per-route
//!   [`Middleware`], a fallback; sync and async handlers with typed
//!   messages through a [`Codec`](walle_codec::Codec).
//! - [`Context`]: the request, its metadata, the [`Session`] values, the
//!   means to answer or abort.
//! - [`Process`]: one connection's state: [`call`](Process::call),
//!   [`async_call`](Process::async_call), [`notify`](Process::notify), the
//!   pending-call table with timeouts, cleanup on close, the [`LoadLimit`].
//! - [`Dispatch`]: where handlers run. Each request reaches the process's
//!   dispatcher as a [`Job`], each async handler as a [`Task`]; [`Inline`]
//!   runs jobs where the frame was read and has no executor for tasks.
//!
//! Sans-io: no socket, no hidden clock, no executor. The io layer (or the
//! in-memory [`mem`] link) hands frames in and writes what the
//! [`Transport`] is given; worker pools, per-key workers and tokio tasks
//! are dispatchers of the io layer (`walle_net::Dispatcher`).
//!
//! Two processes back to back in memory:
//!
//! ```
//! use bytes::Bytes;
//! use std::sync::Arc;
//! use std::task::{Context as Task, Poll, Waker};
//! use walle_codec::RawCodec;
//! use walle_packet::{Protocol, WalleFormat};
//! use walle_process::mem::{MemPipe, MemTransport};
//! use walle_process::{Context, Process, Router};
//!
//! let protocol = Protocol::new(WalleFormat::new());
//! let mut router = Router::new(RawCodec);
//! router.route("echo", |_: &mut Context, req: Bytes| Ok(req))?;
//!
//! let (to_server, to_client) = (Arc::new(MemTransport::new(1 << 20)), Arc::new(MemTransport::new(1 << 20)));
//! let server = Process::builder(protocol.clone(), router).transport(to_client.clone()).build()?;
//! let client = Process::builder(protocol.clone(), Router::new(RawCodec)).transport(to_server.clone()).build()?;
//! let (mut up, mut down) = (MemPipe::new(&protocol), MemPipe::new(&protocol));
//!
//! let mut call = client.call::<Bytes, Bytes>("echo", &Bytes::from_static(b"hi"));
//! up.pump(&to_server, &server)?; // the request reaches the server
//! down.pump(&to_client, &client)?; // the response reaches the client
//! let mut task = Task::from_waker(Waker::noop());
//! let Poll::Ready(answer) = std::pin::Pin::new(&mut call).poll(&mut task) else { panic!() };
//! assert_eq!(answer?, Bytes::from_static(b"hi"));
//! # use std::future::Future;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]
#![warn(clippy::unwrap_used)]

// The order in which these modules import each other, and its two
// callback loops, are set out at the top of core/mod.rs.
mod close;
mod context;
mod core;
mod dispatch;
mod encode;
mod error;
mod hook;
mod load;
pub mod mem;
mod metrics;

/// The pool processes take their buffers from when their builder is given
/// none: one for the whole program.
pub fn default_pool() -> std::sync::Arc<dyn walle_mempool::Pool> {
    process::builder::default_pool()
}
mod options;
mod panic;
mod pending;
mod process;
mod router;
pub mod serde_duration;
mod session;
mod time;
mod transport;

pub use close::CloseReason;
pub use context::{Context, Job, Task};
pub use core::ProcessStats;
pub use dispatch::{Dispatch, Inline};
pub use error::{Error, HandlerError, RouteError, Status};
pub use hook::{DispatchHook, FrameNext};
pub use load::{LoadGuard, LoadLimit};
pub use metrics::record_pool_metrics;
pub use options::{CallOptions, ProcessOptions, SeqRange};
pub use process::{CallFuture, Process, ProcessBuilder, ProcessTemplate, encode_notify_frame};
pub use router::{Middleware, Next, OwnedNext, RouteHandle, Router, Routes};
pub use session::Session;
pub use time::{Clock, ManualClock, SystemClock, TimerKey, TimerWheel};
pub use transport::Transport;
