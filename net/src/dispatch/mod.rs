//! Dispatchers that own threads or a runtime: where handlers run when not
//! on the io thread that read their frame.
//!
//! The process layer defines the seam ([`Dispatch`](walle_process::Dispatch):
//! submit a request's [`Job`](walle_process::Job), spawn an async
//! handler's [`Task`](walle_process::Task)) and runs nothing itself;
//! [`Dispatcher`] implements it with the [`Strategy`] a server is
//! configured with. Any other implementation of the trait can be given to
//! [`ServerBuilder::dispatcher`](crate::ServerBuilder::dispatcher) instead.

mod dispatcher;
mod tasks;
mod workers;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use walle_process::Context;

pub use dispatcher::Dispatcher;
pub(crate) use dispatcher::shared_inline;

/// The dispatch strategy of a server: where handlers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "workers")]
pub enum Strategy {
    /// On the io thread that read the frame: no hop, no queue. Handlers
    /// must not block. Async handlers run on tokio (see [`Dispatcher`]).
    #[default]
    Inline,
    /// On a pool of `n` worker threads sharing one bounded queue.
    Pool(usize),
    /// On `n` worker threads, each request on the worker its key (the
    /// session id by default) maps to: per-key order, the game-logic model.
    Keyed(usize),
    /// As tasks on a tokio runtime, at most
    /// [`max_tasks`](DispatchOptions::max_tasks) at once.
    Tokio,
}

/// Chooses the key of a request under [`Strategy::Keyed`].
pub type KeyFn = Arc<dyn Fn(&Context) -> u64 + Send + Sync>;

/// Default room of each worker queue.
pub const DEFAULT_QUEUE: usize = 4096;

/// Default bound on the tokio tasks a dispatcher has in flight.
pub const DEFAULT_MAX_TASKS: usize = 65_536;

/// Settings of a [`Dispatcher`]. Loadable from a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct DispatchOptions {
    /// Room of each worker queue (`Pool`, `Keyed`), in requests. Default
    /// [`DEFAULT_QUEUE`].
    pub queue: usize,
    /// Most tokio tasks in flight at once for requests under
    /// `Strategy::Tokio`, and as many again for async handlers under any
    /// strategy (counted apart, so that a request's task never holds the
    /// place its handler needs). A request over it is answered with code
    /// 10 (overloaded), as a full queue is. 0 means no bound (not advised:
    /// a flood of requests then grows memory without end). Default
    /// [`DEFAULT_MAX_TASKS`].
    pub max_tasks: usize,
}

impl Default for DispatchOptions {
    fn default() -> Self {
        DispatchOptions {
            queue: DEFAULT_QUEUE,
            max_tasks: DEFAULT_MAX_TASKS,
        }
    }
}

impl DispatchOptions {
    /// Sets the room of each worker queue.
    pub fn queue(mut self, requests: usize) -> Self {
        self.queue = requests;
        self
    }
    /// Sets the bound on tokio tasks in flight.
    pub fn max_tasks(mut self, tasks: usize) -> Self {
        self.max_tasks = tasks;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies_load_from_their_serde_shape() {
        let cases = [
            (r#"{"kind":"inline"}"#, Strategy::Inline),
            (r#"{"kind":"pool","workers":4}"#, Strategy::Pool(4)),
            (r#"{"kind":"keyed","workers":8}"#, Strategy::Keyed(8)),
            (r#"{"kind":"tokio"}"#, Strategy::Tokio),
        ];
        for (text, strategy) in cases {
            assert_eq!(serde_json::from_str::<Strategy>(text).unwrap(), strategy);
            assert_eq!(serde_json::to_string(&strategy).unwrap(), text);
        }
        let options: DispatchOptions = serde_json::from_str(r#"{"queue":8}"#).unwrap();
        assert_eq!(options, DispatchOptions::default().queue(8));
    }
}
