//! The future of one call's response.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use walle_codec::Codec;

use crate::core::Core;
use crate::error::Error;

pub(super) enum CallState {
    Waiting(u64),
    Failed(Option<Error>),
    Finished,
}

/// The response of a [`Process::call`](super::Process::call).
#[must_use = "a call is cancelled when its future is dropped"]
pub struct CallFuture<C, Resp> {
    core: Arc<Core>,
    codec: C,
    state: CallState,
    _resp: PhantomData<fn() -> Resp>,
}

impl<C, Resp> CallFuture<C, Resp> {
    pub(super) fn new(core: Arc<Core>, codec: C, state: CallState) -> Self {
        CallFuture {
            core,
            codec,
            state,
            _resp: PhantomData,
        }
    }

    /// The sequence id of the request, while it is pending.
    pub fn seq(&self) -> Option<u64> {
        match self.state {
            CallState::Waiting(seq) => Some(seq),
            _ => None,
        }
    }
}

impl<C: Codec<Resp> + Unpin, Resp> Future for CallFuture<C, Resp> {
    type Output = Result<Resp, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let result = match &mut this.state {
            CallState::Waiting(seq) => match this.core.poll_call(*seq, cx.waker()) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(result) => result,
            },
            CallState::Failed(error) => Err(error.take().unwrap_or(Error::SessionClosed)),
            CallState::Finished => Err(Error::SessionClosed),
        };
        this.state = CallState::Finished;
        Poll::Ready(
            result.and_then(|packet| this.codec.decode(packet.payload()).map_err(Error::from)),
        )
    }
}

impl<C, Resp> Drop for CallFuture<C, Resp> {
    fn drop(&mut self) {
        if let CallState::Waiting(seq) = self.state {
            drop(self.core.cancel_call(seq));
        }
    }
}

impl<C, Resp> fmt::Debug for CallFuture<C, Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallFuture")
            .field("seq", &self.seq())
            .finish()
    }
}
