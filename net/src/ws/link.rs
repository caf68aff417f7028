//! A WebSocket connection after its upgrade, as a [`Link`] of the tokio
//! connection tasks: the frames of RFC 6455 read and written straight on
//! the socket's byte stream, with the buffers a TCP connection has.
//!
//! - Reads land in the connection's input buffer as on TCP; each binary
//!   message is unmasked in place and handed on as a slice of it (no
//!   copy). A message in fragments is gathered, up to the message limit.
//!   A header announcing more than the limit closes the connection with
//!   1009 before any of its payload is buffered; a text message with
//!   1003; anything the RFC forbids (reserved bits, an unmasked client
//!   frame, a fragmented or long control frame, an unknown opcode) with
//!   1002. A ping is answered with a pong; every frame counts as input for
//!   the silence limit.
//! - Writes put a header in front of each queued frame and write headers
//!   and frames together with vectored writes, straight from the outbound
//!   queue (a server's frames are not masked); a client masks, so its
//!   messages are copied and masked into a buffer of the link's first.
//!   The link's own frames (pongs, pings, the close) go between messages.
//! - The close sends a close frame (echoing the peer's code when the peer
//!   closed first) and waits, bounded, for the peer's; when the input is
//!   out of step it ends its writes and reads the peer's bytes away
//!   instead, so the peer gets the frame rather than a reset.

use std::io::{self, IoSlice};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use tokio::net::TcpStream;
use walle_packet::{FrameMode, Framing};
use walle_process::CloseReason;

use super::close::{self, Ended};
use super::frame::{self, Header};
use crate::conn::{Handler, hand};
use crate::outbound::Outbound;
use crate::tcp::{ByteStream, Link};

/// Messages per vectored write.
const BATCH: usize = 32;
/// Bytes of a client's masked messages gathered per write.
const MASKED: usize = 64 * 1024;
/// The link's own frames waiting beyond which a ping is not answered (a
/// peer pinging faster than it reads gets the pongs it has room for).
const CONTROL: usize = 4 * 1024;

/// Which end of the connection this is: a client masks what it sends and
/// must not see masked frames; a server the other way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Server,
    Client,
}

/// A WebSocket connection after its upgrade, over a byte stream `S`.
pub(crate) struct WsLink<S = TcpStream> {
    stream: S,
    role: Role,
    max_message: usize,
    close_timeout: Duration,
    out: Mutex<Writer>,
    /// The link holds bytes of its own not yet written.
    unflushed: AtomicBool,
    end: Mutex<End>,
    /// The reader's input not yet parsed, once the reader is done: where
    /// the close looks for the peer's close frame.
    rest: Arc<Mutex<BytesMut>>,
    /// The input as the upgrade left it (bytes read past the handshake).
    first: Mutex<Option<BytesMut>>,
}

/// The write side's state.
struct Writer {
    /// The link's own frames waiting, whole: pongs, pings, the close.
    control: BytesMut,
    /// A server: bytes of the first queued message (header and frame)
    /// already written.
    partial: usize,
    /// A client: messages taken off the queue and masked, to be written.
    masked: BytesMut,
    /// A client's mask keys.
    rng: u64,
    /// The close frame is queued.
    closing: bool,
}

impl Writer {
    /// Between two messages: the link's own frames may go.
    fn between(&self) -> bool {
        self.partial == 0 && self.masked.is_empty()
    }

    fn idle(&self) -> bool {
        self.control.is_empty() && self.masked.is_empty()
    }

    fn mask_key(&mut self) -> [u8; 4] {
        // xorshift64*: a mask only has to be unpredictable to what the
        // page in a browser could choose, not secret.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        ((self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32).to_ne_bytes()
    }

    /// Queues a control frame of `opcode` carrying `payload`.
    fn control(&mut self, role: Role, opcode: u8, payload: &[u8]) {
        let key = (role == Role::Client).then(|| self.mask_key());
        let mut head = [0u8; frame::MAX_HEADER];
        let n = frame::header(&mut head, opcode, payload.len(), key);
        self.control.extend_from_slice(&head[..n]);
        let at = self.control.len();
        self.control.extend_from_slice(payload);
        if let Some(key) = key {
            frame::apply_mask(&mut self.control[at..], key, 0);
        }
    }
}

/// How the input ended, for the close.
#[derive(Default)]
struct End {
    /// The code the close frame carries, when the input's end chose it.
    code: Option<(u16, &'static str)>,
    /// The peer closed first: its code, echoed (`None`: it gave none).
    echo: Option<Option<u16>>,
    /// The input is out of step: the close reads raw bytes, not frames.
    broken: bool,
}

/// What the reader keeps between reads: bytes read, and a message
/// arriving in fragments. Its unparsed bytes go back to the link when the
/// reader is done, for the close.
pub(crate) struct WsInbox {
    buf: BytesMut,
    /// The buffer holds what the upgrade read past its end, not yet
    /// handed on: the first read returns at once.
    early: bool,
    pieces: Option<BytesMut>,
    rest: Arc<Mutex<BytesMut>>,
}

#[cfg(feature = "fuzzing")]
impl WsInbox {
    /// Adds input as a read would.
    pub(super) fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held: the input not yet handed on, and its room.
    pub(super) fn buffered(&self) -> usize {
        self.buf.capacity() + self.pieces.as_ref().map_or(0, BytesMut::capacity)
    }
}

impl Drop for WsInbox {
    fn drop(&mut self) {
        *lock(&self.rest) = std::mem::take(&mut self.buf);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Writes what `stream` takes of `buf` now; true when all of it went.
fn write_now(stream: &impl ByteStream, buf: &mut BytesMut) -> io::Result<bool> {
    while !buf.is_empty() {
        match stream.try_write_vectored(&[IoSlice::new(buf)]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf.advance(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

impl<S: ByteStream> WsLink<S> {
    /// A link over `stream` as `role`, for messages of at most
    /// `max_message` bytes; `first` is what the upgrade read past its end.
    pub(crate) fn new(
        stream: S,
        role: Role,
        max_message: usize,
        close_timeout: Duration,
        first: BytesMut,
    ) -> Self {
        use std::hash::BuildHasher;
        let seed = std::collections::hash_map::RandomState::new().hash_one(0u8) | 1;
        WsLink {
            stream,
            role,
            max_message,
            close_timeout,
            out: Mutex::new(Writer {
                control: BytesMut::new(),
                partial: 0,
                masked: BytesMut::new(),
                rng: seed,
                closing: false,
            }),
            unflushed: AtomicBool::new(false),
            end: Mutex::new(End::default()),
            rest: Arc::default(),
            first: Mutex::new(Some(first)),
        }
    }

    /// The socket under the link.
    #[cfg(feature = "fuzzing")]
    pub(super) fn stream(&self) -> &S {
        &self.stream
    }

    fn writer(&self) -> MutexGuard<'_, Writer> {
        lock(&self.out)
    }

    /// Records how the input ended; returns why, for the reader.
    fn ended(&self, ended: Ended) -> CloseReason {
        let mut end = lock(&self.end);
        end.code = end.code.or(ended.code);
        end.broken |= ended.broken;
        ended.why
    }

    /// The checks a header passes before its payload is read.
    fn check(&self, h: &Header, pieces: Option<&BytesMut>) -> Result<(), Ended> {
        if h.rsv != 0 {
            return Err(close::protocol("reserved bits set"));
        }
        if !h.minimal || h.len > i64::MAX as u64 {
            return Err(close::protocol("a length not in its shortest form"));
        }
        match (self.role, h.mask.is_some()) {
            (Role::Server, false) => return Err(close::protocol("an unmasked client frame")),
            (Role::Client, true) => return Err(close::protocol("a masked server frame")),
            _ => {}
        }
        if h.is_control() {
            if !matches!(h.opcode, frame::CLOSE | frame::PING | frame::PONG) {
                return Err(close::protocol("an unknown control opcode"));
            }
            if !h.fin || h.len > frame::MAX_CONTROL as u64 {
                return Err(close::protocol("a fragmented or long control frame"));
            }
            return Ok(());
        }
        match (h.opcode, pieces.is_some()) {
            (frame::TEXT, _) => return Err(close::text()),
            (frame::BINARY, false) | (frame::CONTINUATION, true) => {}
            (frame::BINARY, true) => {
                return Err(close::protocol("a new message inside a fragmented one"));
            }
            (frame::CONTINUATION, false) => {
                return Err(close::protocol("a continuation of no message"));
            }
            _ => return Err(close::protocol("an unknown opcode")),
        }
        let so_far = pieces.map_or(0, BytesMut::len) as u64;
        if h.len.saturating_add(so_far) > self.max_message as u64 {
            let len = usize::try_from(h.len.saturating_add(so_far)).unwrap_or(usize::MAX);
            return Err(close::too_big(len, self.max_message));
        }
        Ok(())
    }

    /// Handles one whole frame (its payload unmasked); `Err` ends the
    /// input.
    fn frame(
        &self,
        h: &Header,
        payload: BytesMut,
        pieces: &mut Option<BytesMut>,
        handler: &dyn Handler,
    ) -> Result<(), CloseReason> {
        match h.opcode {
            frame::BINARY if h.fin => hand(payload.freeze(), handler),
            frame::BINARY => {
                *pieces = Some(payload);
                Ok(())
            }
            frame::CONTINUATION => {
                let gathered = pieces.as_mut().expect("checked: a message in fragments");
                gathered.extend_from_slice(&payload);
                match h.fin {
                    true => hand(pieces.take().expect("gathered").freeze(), handler),
                    false => Ok(()),
                }
            }
            frame::PING => {
                let mut w = self.writer();
                if w.control.len() < CONTROL && !w.closing {
                    w.control(self.role, frame::PONG, &payload);
                    self.unflushed.store(true, Ordering::Release);
                }
                Ok(())
            }
            frame::PONG => Ok(()),
            // (`check` lets no other opcode through.)
            _ => Err(self.peer_closed(&payload)),
        }
    }

    /// The peer's close frame: its code is echoed, unless it is one a
    /// frame must not carry.
    fn peer_closed(&self, payload: &[u8]) -> CloseReason {
        let code = match payload {
            [] => None,
            [a, b, text @ ..] => {
                let code = u16::from_be_bytes([*a, *b]);
                if std::str::from_utf8(text).is_err() {
                    return self.ended(close::invalid_utf8());
                }
                if !close::may_be_sent(code) {
                    return self.ended(close::protocol("a close code no frame may carry"));
                }
                Some(code)
            }
            [_] => return self.ended(close::protocol("a one-byte close payload")),
        };
        lock(&self.end).echo = Some(code);
        CloseReason::PeerClosed
    }

    /// A server's write: headers and queued frames together.
    fn write_messages(&self, w: &mut Writer, out: &mut Outbound) -> io::Result<bool> {
        let mut bodies: [&[u8]; BATCH] = [&[]; BATCH];
        let n = out.peek_messages(&mut bodies);
        if n == 0 {
            return Err(io::Error::other("the message queue is out of step"));
        }
        let mut heads = [[0u8; frame::MAX_HEADER]; BATCH];
        let mut sizes = [0usize; BATCH];
        let mut head_len = [0usize; BATCH];
        for i in 0..n {
            head_len[i] = frame::header(&mut heads[i], frame::BINARY, bodies[i].len(), None);
            sizes[i] = head_len[i] + bodies[i].len();
        }
        if w.partial >= sizes[0] {
            return Err(io::Error::other("a message written past its end"));
        }
        let mut slices = [IoSlice::new(&[]); 2 * BATCH];
        let mut s = 0;
        for i in 0..n {
            // What is left of the first message after a short write.
            let skip = if i == 0 { w.partial } else { 0 };
            let head = &heads[i][..head_len[i]];
            if skip < head.len() {
                slices[s] = IoSlice::new(&head[skip..]);
                slices[s + 1] = IoSlice::new(bodies[i]);
                s += 2;
            } else {
                slices[s] = IoSlice::new(&bodies[i][skip - head.len()..]);
                s += 1;
            }
        }
        let written = loop {
            match self.stream.try_write_vectored(&slices[..s]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => break written,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        };
        let mut left = w.partial + written;
        let mut done = 0;
        while done < n && left >= sizes[done] {
            left -= sizes[done];
            done += 1;
        }
        out.pop_messages(done);
        w.partial = left;
        Ok(true)
    }

    /// A client's write: messages off the queue, masked into the link's
    /// buffer.
    fn mask_messages(&self, w: &mut Writer, out: &mut Outbound) -> io::Result<()> {
        let mut bodies: [&[u8]; BATCH] = [&[]; BATCH];
        let n = out.peek_messages(&mut bodies);
        if n == 0 {
            return Err(io::Error::other("the message queue is out of step"));
        }
        let mut taken = 0;
        for body in &bodies[..n] {
            if taken > 0 && w.masked.len() + body.len() > MASKED {
                break;
            }
            let key = w.mask_key();
            let mut head = [0u8; frame::MAX_HEADER];
            let size = frame::header(&mut head, frame::BINARY, body.len(), Some(key));
            w.masked.extend_from_slice(&head[..size]);
            let at = w.masked.len();
            w.masked.extend_from_slice(body);
            frame::apply_mask(&mut w.masked[at..], key, 0);
            taken += 1;
        }
        out.pop_messages(taken);
        Ok(())
    }

    /// Writes what the socket takes: the link's own frames between
    /// messages, then the queue's.
    fn write_locked(&self, w: &mut Writer, out: &mut Outbound) -> io::Result<bool> {
        if w.partial > 0 && out.was_cleared() {
            // The message being written was dropped with the queue: the
            // stream is out of step, nothing more may follow.
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        if w.closing && !out.is_empty() {
            return Err(io::ErrorKind::BrokenPipe.into()); // no data after the close
        }
        loop {
            if w.between() && !w.control.is_empty() && !write_now(&self.stream, &mut w.control)? {
                return Ok(false);
            }
            if !w.masked.is_empty() {
                if !write_now(&self.stream, &mut w.masked)? {
                    return Ok(false);
                }
                if w.masked.capacity() > 2 * MASKED {
                    w.masked = BytesMut::new(); // after a long message
                }
                continue;
            }
            if out.messages() == 0 {
                return Ok(w.control.is_empty());
            }
            match self.role {
                Role::Client => self.mask_messages(w, out)?,
                Role::Server => {
                    if !self.write_messages(w, out)? {
                        return Ok(false);
                    }
                }
            }
        }
    }

    /// Queues the close frame once and writes it, unless a message was
    /// cut short (the stream is then out of step: no frame can follow).
    fn send_close(&self, code: Option<u16>, text: &str) -> io::Result<bool> {
        let mut w = self.writer();
        if w.partial > 0 {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        if !w.closing {
            w.closing = true;
            let mut payload = Vec::with_capacity(2 + text.len());
            if let Some(code) = code {
                payload.extend_from_slice(&code.to_be_bytes());
                payload.extend_from_slice(&text.as_bytes()[..text.len().min(123)]);
            }
            w.control(self.role, frame::CLOSE, &payload);
        }
        if !w.masked.is_empty() && !write_now(&self.stream, &mut w.masked)? {
            return Ok(false);
        }
        write_now(&self.stream, &mut w.control)
    }

    /// Reads until the peer's close frame or the end of the stream:
    /// frames while the input is in step, raw bytes (dropped) once it is
    /// not.
    async fn drain(&self, broken: bool) {
        let mut buf = std::mem::take(&mut *lock(&self.rest));
        let mut skip = 0usize;
        loop {
            if broken {
                buf.clear();
            }
            loop {
                let n = skip.min(buf.len());
                buf.advance(n);
                skip -= n;
                if skip > 0 || broken {
                    break;
                }
                let Some(h) = frame::parse(&buf) else { break };
                if h.opcode == frame::CLOSE {
                    return;
                }
                buf.advance(h.size);
                skip = usize::try_from(h.len).unwrap_or(usize::MAX); // the peer's last words: dropped
            }
            match self.stream.read_some(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }
}

impl<S: ByteStream> Link for WsLink<S> {
    type Inbox = WsInbox;

    fn inbox(&self, _framing: Framing) -> WsInbox {
        let buf = lock(&self.first).take().unwrap_or_default();
        WsInbox {
            early: !buf.is_empty(),
            buf,
            pieces: None,
            rest: self.rest.clone(),
        }
    }

    async fn read_some(&self, inbox: &mut WsInbox) -> Result<(), CloseReason> {
        if std::mem::take(&mut inbox.early) {
            return Ok(());
        }
        match self.stream.read_some(&mut inbox.buf).await {
            Ok(0) => Err(CloseReason::PeerClosed),
            Ok(_) => Ok(()),
            Err(e) => Err(CloseReason::io(e)),
        }
    }

    fn deliver(&self, inbox: &mut WsInbox, handler: &dyn Handler) -> Result<(), CloseReason> {
        while let Some(h) = frame::parse(&inbox.buf) {
            if let Err(ended) = self.check(&h, inbox.pieces.as_ref()) {
                return Err(self.ended(ended));
            }
            let len = h.len as usize; // checked against the limit
            let whole = h.size + len;
            if inbox.buf.len() < whole {
                // The buffer grows as the payload arrives, not by what a
                // header announces.
                break;
            }
            inbox.buf.advance(h.size);
            let mut payload = inbox.buf.split_to(len);
            if let Some(key) = h.mask {
                frame::apply_mask(&mut payload, key, 0);
            }
            self.frame(&h, payload, &mut inbox.pieces, handler)?;
        }
        if inbox.buf.is_empty() && inbox.buf.capacity() > 64 * 1024 {
            inbox.buf = BytesMut::new(); // an idle connection keeps no large buffer
        }
        Ok(())
    }

    fn mode(&self) -> FrameMode {
        FrameMode::Message
    }

    fn write_out(&self, out: &mut Outbound) -> io::Result<bool> {
        let mut w = self.writer();
        let done = self.write_locked(&mut w, out);
        self.unflushed.store(!w.idle(), Ordering::Release);
        done
    }

    async fn writable(&self) -> io::Result<()> {
        self.stream.writable().await
    }

    fn flushed(&self) -> bool {
        !self.unflushed.load(Ordering::Acquire)
    }

    fn beat(&self) -> io::Result<bool> {
        let mut w = self.writer();
        if w.control.len() < CONTROL && !w.closing {
            w.control(self.role, frame::PING, &[]);
        }
        let done = w.between() && write_now(&self.stream, &mut w.control)?;
        self.unflushed.store(!w.idle(), Ordering::Release);
        Ok(done)
    }

    async fn close(&self, why: &CloseReason) {
        let Some((code, text)) = close::frame_for(why) else {
            return; // the link is broken: no frame can go
        };
        let (code, text, echo, broken) = {
            let end = lock(&self.end);
            let (code, text) = end.code.unwrap_or((code, text));
            (code, text, end.echo, end.broken)
        };
        // The peer's close is answered with its own code (or none).
        let code = match echo {
            Some(echoed) => echoed,
            None => Some(code),
        };
        let deadline = Instant::now() + self.close_timeout;
        let sent = tokio::time::timeout_at(deadline.into(), async {
            loop {
                if self.send_close(code, text)? {
                    return Ok::<(), io::Error>(());
                }
                self.stream.writable().await?;
            }
        })
        .await;
        if !matches!(sent, Ok(Ok(()))) || echo.is_some() {
            return; // nothing more to wait for
        }
        if broken {
            // The peer may still be sending what we will not read: tell it
            // we are done, and read its bytes away until it is too.
            self.stream.shutdown_write();
        }
        let _ = tokio::time::timeout_at(deadline.into(), self.drain(broken)).await;
    }

    fn shutdown(&self) {
        self.stream.shutdown();
    }
}
