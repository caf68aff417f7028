//! A WebSocket connection as a [`Link`] of the tokio connection tasks:
//! tokio-tungstenite's message stream, shared by the reader and the writer
//! under a lock held only inside a poll, never across an await.
//!
//! - Reads take every message there is (up to a batch) into the inbox; a
//!   binary message is a frame body; pings, pongs and fragments are input
//!   too, for the silence limit. A text message, an oversized message or a
//!   protocol error ends the input with a typed reason and a close code.
//! - Writes hand each queued frame to tungstenite as one binary message
//!   (`Outbound::write_messages`), through a per-thread scratch buffer that
//!   lends it as `Bytes` without allocating; a message longer than a
//!   fragment goes out as fragments, so tungstenite's write buffer stays
//!   small. Attempts that must not wait use a no-op waker and leave the
//!   rest to the writer task, which waits with its own.
//! - A heartbeat tick sends a ping; the close sends a close frame and waits
//!   (bounded) for the peer's, or lingers reading when the input is out of
//!   step, so the peer gets the frame instead of a reset.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::net::Shutdown;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::{Sink, Stream};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::Utf8Bytes;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use walle_packet::{FrameMode, Framing};
use walle_process::CloseReason;

use super::close::{self, Ended};
use super::socket::WsSocket;
use crate::conn::{Handler, hand};
use crate::outbound::Outbound;
use crate::tcp::Link;

/// Messages taken per read before they are handed on.
const BATCH: usize = 64;

/// A WebSocket connection after its upgrade, over a socket `S`.
pub(crate) struct WsLink<S = TcpStream> {
    inner: Mutex<Inner<S>>,
    /// tungstenite may hold bytes not yet written (a pong, a ping, the
    /// tail of a message).
    unflushed: AtomicBool,
    fragment: usize,
    close_timeout: Duration,
}

struct Inner<S> {
    ws: WebSocketStream<S>,
    /// Bytes of the message being sent in fragments already handed to
    /// tungstenite; 0 between messages.
    sent: usize,
    /// The code the close frame carries, when the input's end chose it.
    code: Option<(CloseCode, &'static str)>,
    /// The input is out of step: the close reads raw bytes, not frames.
    broken: bool,
    /// The close frame has been queued.
    closing: bool,
}

/// What the reader keeps between reads: whole messages, and the end of
/// the input once seen (after the messages before it are handed on).
pub(crate) struct WsInbox {
    messages: VecDeque<Bytes>,
    ended: Option<CloseReason>,
}

thread_local! {
    /// Where an outgoing message is copied to be lent to tungstenite as
    /// `Bytes`: tungstenite copies it into its write buffer at once and
    /// drops it, so the space is reclaimed by the next message.
    static SCRATCH: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

fn lend(data: &[u8]) -> Bytes {
    SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        scratch.reserve(data.len());
        scratch.extend_from_slice(data);
        scratch.split().freeze()
    })
}

fn noop() -> Context<'static> {
    Context::from_waker(Waker::noop())
}

impl<S: WsSocket> WsLink<S> {
    pub(crate) fn new(ws: WebSocketStream<S>, fragment: usize, close_timeout: Duration) -> Self {
        WsLink {
            inner: Mutex::new(Inner {
                ws,
                sent: 0,
                code: None,
                broken: false,
                closing: false,
            }),
            unflushed: AtomicBool::new(false),
            fragment,
            close_timeout,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<S>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes what has arrived into `inbox`.
    fn poll_read(
        &self,
        cx: &mut Context<'_>,
        inbox: &mut WsInbox,
    ) -> Poll<Result<(), CloseReason>> {
        let mut inner = self.lock();
        let mut got = false;
        let ended = loop {
            let message = match Pin::new(&mut inner.ws).poll_next(cx) {
                Poll::Pending if got => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => break close::peer_closed(),
                Poll::Ready(Some(Err(e))) => break close::read_error(e),
                Poll::Ready(Some(Ok(message))) => message,
            };
            got = true;
            match message {
                Message::Binary(body) => {
                    inbox.messages.push_back(body);
                    if inbox.messages.len() >= BATCH {
                        return Poll::Ready(Ok(()));
                    }
                }
                // tungstenite answers pings and closes with frames of its
                // own, which may wait to be written.
                Message::Ping(_) | Message::Frame(_) => {
                    self.unflushed.store(true, Ordering::Release)
                }
                Message::Pong(_) => {}
                Message::Close(_) => {
                    self.unflushed.store(true, Ordering::Release);
                    break close::peer_closed();
                }
                Message::Text(_) => break close::text(),
            }
        };
        let Ended { why, code, broken } = ended;
        inner.code = inner.code.or(code);
        inner.broken |= broken;
        if inbox.messages.is_empty() {
            Poll::Ready(Err(why))
        } else {
            inbox.ended = Some(why); // after the messages before it
            Poll::Ready(Ok(()))
        }
    }

    /// Flushes tungstenite's buffer; records whether bytes are left.
    fn poll_flush(&self, inner: &mut Inner<S>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut inner.ws).poll_flush(cx) {
            Poll::Ready(Ok(())) => {
                self.unflushed.store(false, Ordering::Release);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(close::write_error(e))),
            Poll::Pending => {
                self.unflushed.store(true, Ordering::Release);
                Poll::Pending
            }
        }
    }

    /// Hands one frame to tungstenite as a binary message, in fragments
    /// when it is long; `WouldBlock` when tungstenite takes no more now
    /// (what was handed of a long one is remembered).
    fn send(&self, inner: &mut Inner<S>, cx: &mut Context<'_>, frame: &[u8]) -> io::Result<()> {
        loop {
            match Pin::new(&mut inner.ws).poll_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Err(close::write_error(e)),
                Poll::Pending => return Err(io::ErrorKind::WouldBlock.into()),
            }
            let at = inner.sent;
            let message = if at == 0 && frame.len() <= self.fragment {
                Message::Binary(lend(frame))
            } else {
                let end = frame.len().min(at + self.fragment);
                let op = if at == 0 {
                    Data::Binary
                } else {
                    Data::Continue
                };
                let fin = end == frame.len();
                inner.sent = if fin { 0 } else { end };
                Message::Frame(Frame::message(lend(&frame[at..end]), OpCode::Data(op), fin))
            };
            Pin::new(&mut inner.ws)
                .start_send(message)
                .map_err(close::write_error)?;
            if inner.sent == 0 {
                return Ok(());
            }
        }
    }

    /// Queues the close frame once, then flushes.
    fn poll_send_close(
        &self,
        cx: &mut Context<'_>,
        code: CloseCode,
        text: &'static str,
    ) -> Poll<io::Result<()>> {
        let mut inner = self.lock();
        if !inner.closing {
            inner.closing = true;
            let frame = CloseFrame {
                code,
                reason: Utf8Bytes::from_static(text),
            };
            if let Err(e) = Pin::new(&mut inner.ws).start_send(Message::Close(Some(frame))) {
                return Poll::Ready(Err(close::write_error(e)));
            }
        }
        self.poll_flush(&mut inner, cx)
    }

    /// Reads until the peer's close frame or the end of the stream: frames
    /// while the input is in step, raw bytes (dropped) once it is not.
    fn poll_drain(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut inner = self.lock();
        if inner.broken {
            let stream = inner.ws.get_ref();
            let mut sink = [0u8; 4096];
            loop {
                match stream.poll_read_ready(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Err(_)) => return Poll::Ready(()),
                    Poll::Ready(Ok(())) => {}
                }
                match stream.try_read(&mut sink) {
                    Ok(0) => return Poll::Ready(()),
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => return Poll::Ready(()),
                }
            }
        }
        loop {
            match Pin::new(&mut inner.ws).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(Message::Close(_))))
                | Poll::Ready(None)
                | Poll::Ready(Some(Err(_))) => {
                    return Poll::Ready(());
                }
                Poll::Ready(Some(Ok(_))) => {} // the peer's last words: dropped
            }
        }
    }
}

impl<S: WsSocket> Link for WsLink<S> {
    type Inbox = WsInbox;

    fn inbox(&self, _framing: Framing) -> WsInbox {
        WsInbox {
            messages: VecDeque::new(),
            ended: None,
        }
    }

    async fn read_some(&self, inbox: &mut WsInbox) -> Result<(), CloseReason> {
        if let Some(why) = inbox.ended.take() {
            return Err(why);
        }
        poll_fn(|cx| self.poll_read(cx, inbox)).await
    }

    fn deliver(&self, inbox: &mut WsInbox, handler: &dyn Handler) -> Result<(), CloseReason> {
        while let Some(body) = inbox.messages.pop_front() {
            hand(body, handler)?;
        }
        Ok(())
    }

    fn mode(&self) -> FrameMode {
        FrameMode::Message
    }

    fn write_out(&self, out: &mut Outbound) -> io::Result<bool> {
        let mut inner = self.lock();
        let mut cx = noop();
        let all = out.write_messages(|frame| self.send(&mut inner, &mut cx, frame))?;
        match self.poll_flush(&mut inner, &mut cx) {
            Poll::Ready(Ok(())) => Ok(all),
            Poll::Ready(Err(e)) => Err(e),
            Poll::Pending => Ok(false),
        }
    }

    async fn writable(&self) -> io::Result<()> {
        poll_fn(|cx| {
            let mut inner = self.lock();
            self.poll_flush(&mut inner, cx)
        })
        .await
    }

    fn flushed(&self) -> bool {
        !self.unflushed.load(Ordering::Acquire)
    }

    fn beat(&self) -> io::Result<bool> {
        let mut inner = self.lock();
        let mut cx = noop();
        if inner.sent == 0 {
            // Not inside a fragmented message, where a ping may still go
            // between fragments but tungstenite's buffer is busy anyway.
            Pin::new(&mut inner.ws)
                .start_send(Message::Ping(Bytes::new()))
                .map_err(close::write_error)?;
        }
        match self.poll_flush(&mut inner, &mut cx) {
            Poll::Ready(Ok(())) => Ok(true),
            Poll::Ready(Err(e)) => Err(e),
            Poll::Pending => Ok(false),
        }
    }

    async fn close(&self, why: &CloseReason) {
        let Some((code, text)) = close::frame_for(why) else {
            return; // the link is broken: no frame can go
        };
        let (code, text) = self.lock().code.unwrap_or((code, text));
        let deadline = Instant::now() + self.close_timeout;
        let sent = tokio::time::timeout_at(
            deadline.into(),
            poll_fn(|cx| self.poll_send_close(cx, code, text)),
        )
        .await;
        if !matches!(sent, Ok(Ok(()))) || matches!(why, CloseReason::PeerClosed) {
            return; // nothing more to wait for
        }
        if self.lock().broken {
            // The peer may still be sending what we will not read: tell it
            // we are done, and read its bytes away until it is too.
            self.lock().ws.get_ref().shutdown(Shutdown::Write);
        }
        let _ = tokio::time::timeout_at(deadline.into(), poll_fn(|cx| self.poll_drain(cx))).await;
    }

    fn shutdown(&self) {
        self.lock().ws.get_ref().shutdown(Shutdown::Both);
    }
}
