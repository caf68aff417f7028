//! This side's calls: starting one, its outcome, its timeout.

use std::sync::atomic::Ordering::Relaxed;
use std::task::{Poll, Waker};
use std::time::Instant;

use tracing::debug;
use walle_codec::{Code, Codec};
use walle_packet::{Head, Packet, Route};

use super::Core;
use crate::error::Error;
use crate::options::CallOptions;
use crate::pending::{Callback, Waiter, Wakeup};

impl Core {
    /// Registers a pending call and writes its request. On failure, the
    /// entry is gone again (BEHAVIOURS 16) and the waiter comes back.
    pub(crate) fn start_call<C: Codec<Req>, Req>(
        &self,
        codec: &C,
        route: Route<'_>,
        req: &Req,
        options: &CallOptions<'_>,
        waiter: Waiter,
    ) -> Result<u64, (Error, Waiter)> {
        let timeout = options.timeout.unwrap_or(self.options.call_timeout);
        // A timeout past what the clock can represent (`Duration::MAX`)
        // means none: the call ends with its answer, a cancel or the close.
        let deadline = self.clock.now().checked_add(timeout);
        let seq = self.pending().begin(deadline, waiter)?;
        let mut head = Head::request(route, seq);
        head.metadata = options.metadata;
        match self.send_message(codec, &head, req) {
            Ok(()) => {
                if let Some(deadline) = deadline {
                    self.transport.timer_hint(deadline);
                }
                Ok(seq)
            }
            Err(error) => {
                let callback = self.cancel_call(seq);
                Err((error, callback.map_or(Waiter::Future, Waiter::Callback)))
            }
        }
    }

    /// The outcome of call `seq`'s future, or `Pending` after noting its
    /// waker.
    pub(crate) fn poll_call(&self, seq: u64, waker: &Waker) -> Poll<Result<Packet, Error>> {
        self.pending().poll(seq, waker)
    }

    /// Forgets call `seq` (BEHAVIOURS 14, 16); its callback, if it had one.
    pub(crate) fn cancel_call(&self, seq: u64) -> Option<Callback> {
        self.pending().cancel(seq)
    }

    /// The earliest call deadline (see `Process::poll_timeout`).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.pending().next_deadline()
    }

    /// Fails the calls whose deadline has passed.
    pub(crate) fn handle_timeout(&self, now: Instant) {
        let _span = self.span().enter();
        let mut wakeups = Vec::new();
        self.pending().expire(now, &mut wakeups, &self.metrics);
        wakeups.into_iter().for_each(Wakeup::fire);
    }

    /// Hands a response to its pending call.
    pub(super) fn settle(&self, packet: Packet) {
        let seq = packet.seq();
        let result = match packet.is_error() {
            false => Ok(packet),
            true => Err(
                match self.protocol().wrapper().decode_error(packet.payload_ref()) {
                    Ok((code, desc)) => Error::Remote {
                        code,
                        desc: desc.to_string(),
                    },
                    Err(_) => Error::Remote {
                        code: Code::INVALID_ERROR_PAYLOAD,
                        desc: "error response with an unreadable payload".to_string(),
                    },
                },
            ),
        };
        let wakeup = self.pending().complete(seq, result, &self.metrics);
        match wakeup {
            Some(wakeup) => wakeup.into_iter().for_each(Wakeup::fire),
            None => {
                self.counters.stray_responses.fetch_add(1, Relaxed);
                debug!(
                    session = self.session.id(),
                    seq, "response without a pending call dropped"
                );
            }
        }
    }
}
