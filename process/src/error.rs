use std::borrow::Cow;
use std::fmt;

use walle_codec::{BoxError, Code, CodecError};
use walle_packet::PacketError;

/// What a handler or middleware returns on failure: any error. A
/// [`Status`] (or a process [`Error`]) keeps its code on the wire; any
/// other error becomes code 1 with its text.
pub type HandlerError = BoxError;

/// An error with a wire code, for handlers to answer with.
///
/// ```
/// use walle_process::{HandlerError, Status};
///
/// fn join(room_full: bool) -> Result<(), HandlerError> {
///     if room_full {
///         return Err(Status::new(1001, "room is full").into());
///     }
///     Ok(())
/// }
/// assert!(join(true).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The wire code (1000 and up for application errors).
    pub code: Code,
    /// A description for the peer.
    pub desc: Cow<'static, str>,
}

impl Status {
    /// A status of `code` with description `desc`.
    pub fn new(code: impl Into<Code>, desc: impl Into<Cow<'static, str>>) -> Self {
        Status {
            code: code.into(),
            desc: desc.into(),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.desc)
    }
}

impl std::error::Error for Status {}

/// Failures of the process layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The peer answered with an error response.
    #[error("remote error {code}: {desc}")]
    Remote {
        /// The code the peer sent.
        code: Code,
        /// The description the peer sent.
        desc: String,
    },
    /// No response within the call's timeout (code 5).
    #[error("call timed out")]
    Timeout,
    /// The session closed before the operation completed (code 8).
    #[error("session closed")]
    SessionClosed,
    /// A load limit or a full queue refused the work (code 10).
    #[error("overloaded: {0}")]
    Overloaded(&'static str),
    /// No handler for the route and no fallback (code 4).
    #[error("no route for {0}")]
    NoRoute(String),
    /// The operation is not possible here (code 4).
    #[error("not supported: {0}")]
    NotSupported(&'static str),
    /// Async work (an async handler, a task a dispatcher runs) with no
    /// executor to run on, such as a tokio runtime (code 4).
    #[error("no runtime: {0}")]
    NoRuntime(&'static str),
    /// A message could not be encoded or decoded (codes 2, 3).
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// A packet could not be encoded or decoded (codes 2, 3, 6, 7).
    #[error(transparent)]
    Packet(#[from] PacketError),
    /// The transport failed to send.
    #[error("send failed: {0}")]
    Io(#[from] std::io::Error),
    /// A dispatch hook stopped a frame.
    #[error("dispatch hook: {0}")]
    Hook(#[source] BoxError),
}

impl Error {
    /// The wire code of this error.
    pub fn code(&self) -> Code {
        match self {
            Error::Remote { code, .. } => *code,
            Error::Timeout => Code::TIMEOUT,
            Error::SessionClosed => Code::SESSION_CLOSED,
            Error::Overloaded(_) => Code::OVERLOADED,
            Error::NoRoute(_) | Error::NotSupported(_) | Error::NoRuntime(_) => Code::NOT_SUPPORTED,
            Error::Codec(e) => e.code(),
            Error::Packet(e) => e.code(),
            Error::Io(_) | Error::Hook(_) => Code::UNKNOWN,
        }
    }
}

/// The code and description a handler error is answered with
/// (BEHAVIOURS 12).
pub(crate) fn wire_error(err: &HandlerError) -> (Code, Cow<'_, str>) {
    if let Some(status) = err.downcast_ref::<Status>() {
        return (status.code, Cow::Borrowed(&status.desc));
    }
    if let Some(error) = err.downcast_ref::<Error>() {
        return (error.code(), Cow::Owned(error.to_string()));
    }
    (Code::UNKNOWN, Cow::Owned(err.to_string()))
}

/// Refusals at route registration (BEHAVIOURS 6).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// A handler is already registered under this name.
    #[error("route {0:?} is already registered")]
    DuplicateName(String),
    /// A handler is already registered under this id.
    #[error("route id {0} is already registered")]
    DuplicateId(u32),
    /// Id 0 means "no numeric route" on the wire.
    #[error("route id 0 is reserved")]
    ZeroId,
    /// An empty name means "no string route" on the wire.
    #[error("route name must not be empty")]
    EmptyName,
    /// The router already has a fallback.
    #[error("a fallback handler is already registered")]
    DuplicateFallback,
}
