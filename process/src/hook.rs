//! A hook in front of dispatch that sees every frame first.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::core::Core;
use crate::error::{Error, HandlerError};

/// Sees every inbound frame body before it is decoded and routed. It can
/// pass it on ([`FrameNext::run`]), drop it (return without running
/// `next`), rewrite it (run `next` with other bytes) or defer it (send
/// `next` and the frame to another executor). An error stops the frame
/// and is returned from [`Process::handle_frame`](crate::Process::handle_frame):
/// a walle [`Error`] as it is (so `next.run(frame)?` passes a decode error
/// on unchanged, and the connection closes as malformed), any other error
/// as [`Error::Hook`] (the connection closes as refused).
///
/// ```
/// use bytes::Bytes;
/// use walle_process::{DispatchHook, FrameNext, HandlerError};
///
/// /// Drops empty frames, passes the rest.
/// #[derive(Debug)]
/// struct SkipEmpty;
/// impl DispatchHook for SkipEmpty {
///     fn on_frame(&self, frame: Bytes, next: FrameNext) -> Result<(), HandlerError> {
///         if frame.is_empty() {
///             return Ok(());
///         }
///         Ok(next.run(frame)?)
///     }
/// }
/// ```
pub trait DispatchHook: Send + Sync + 'static {
    /// Handles one frame body.
    fn on_frame(&self, frame: Bytes, next: FrameNext) -> Result<(), HandlerError>;
}

/// The rest of inbound dispatch for one frame: decode, route, handle.
pub struct FrameNext {
    core: Arc<Core>,
}

impl FrameNext {
    pub(crate) fn new(core: Arc<Core>) -> Self {
        FrameNext { core }
    }

    /// Decodes and dispatches `frame`.
    pub fn run(self, frame: Bytes) -> Result<(), Error> {
        self.core.dispatch(frame)
    }
}

impl fmt::Debug for FrameNext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameNext")
            .field("session", &self.core.session().id())
            .finish()
    }
}
