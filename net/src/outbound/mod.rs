//! A connection's outbound queue: pooled chunks that frames are encoded
//! into, and shared frames (broadcasts) queued without a copy. A written
//! chunk goes back to its pool at once, so an idle connection holds no
//! write buffer either.
//!
//! Two modes, chosen by the transport ([`FrameMode`]):
//! - **stream** (tcp, kcp): frames are bytes of one stream, written out
//!   with vectored writes ([`Outbound::write_to`]) that may end anywhere;
//! - **message** (WebSocket): each frame is one message, lent out whole
//!   ([`Outbound::peek_messages`]) for the link to put its own header in
//!   front of, and dropped once written ([`Outbound::pop_messages`]).
//!   Frames are still packed into pooled chunks (a frame never straddles
//!   two); a side queue keeps each frame's length.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::sync::{Arc, OnceLock};

use bytes::{Buf, Bytes};
use walle_mempool::{Pool, PoolBuf, SizedPool};
use walle_packet::FrameMode;

/// Size of a pooled chunk.
const CHUNK: usize = 16 * 1024;
/// Room a chunk must have left to take another frame.
const ROOM: usize = CHUNK / 4;
/// Slices per vectored write.
const SLICES: usize = 64;

/// The pool outbound chunks come from, shared by every reactor.
pub(crate) fn chunk_pool() -> &'static Arc<dyn Pool> {
    static POOL: OnceLock<Arc<dyn Pool>> = OnceLock::new();
    POOL.get_or_init(|| Arc::new(SizedPool::new()))
}

enum Chunk {
    /// Encoded frames; the first `usize` bytes are already written.
    Owned(PoolBuf, usize),
    /// A frame shared with other connections.
    Shared(Bytes),
}

impl Chunk {
    /// What is left to write of it.
    fn unwritten(&self) -> &[u8] {
        match self {
            Chunk::Owned(v, at) => &v[*at..],
            Chunk::Shared(b) => b,
        }
    }
}

#[derive(Default)]
pub(crate) struct Outbound {
    chunks: VecDeque<Chunk>,
    queued: usize,
    /// Frames queued since the queue was last empty.
    frames: usize,
    /// Message mode: the length of each frame waiting, oldest first.
    /// `None` in stream mode (boxed: most connections are streams, and
    /// this stays one word in theirs).
    #[expect(
        clippy::box_collection,
        reason = "one word instead of four in every stream-mode queue"
    )]
    messages: Option<Box<VecDeque<usize>>>,
    /// Set by `clear`.
    cleared: bool,
}

impl Outbound {
    /// An empty queue in `mode`.
    pub(crate) fn new(mode: FrameMode) -> Outbound {
        Outbound {
            messages: (mode == FrameMode::Message).then(Box::default),
            ..Outbound::default()
        }
    }

    /// How the queue delimits frames.
    pub(crate) fn mode(&self) -> FrameMode {
        match self.messages {
            Some(_) => FrameMode::Message,
            None => FrameMode::Stream,
        }
    }

    /// Bytes waiting to be written.
    pub(crate) fn queued(&self) -> usize {
        self.queued
    }

    /// Nothing waits to be written: no bytes, and no message (an empty
    /// frame is a message too, with no bytes).
    pub(crate) fn is_empty(&self) -> bool {
        self.queued == 0 && self.messages() == 0
    }

    /// Message mode: the queue was cleared (the connection is gone), so a
    /// message the link had begun to write may have been dropped.
    pub(crate) fn was_cleared(&self) -> bool {
        self.cleared
    }

    /// Frames queued since the queue was last empty: an upper bound of
    /// the frames waiting.
    pub(crate) fn frames(&self) -> usize {
        self.frames
    }

    /// Encodes one frame at the end of the queue with `write` (in message
    /// mode, what one call appends is one message); on error nothing of it
    /// stays queued.
    pub(crate) fn encode<E>(
        &mut self,
        write: &mut dyn FnMut(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        let tail = self.tail();
        let before = tail.len();
        match write(tail) {
            Ok(()) => {
                let added = tail.len() - before;
                self.added(added);
                Ok(())
            }
            Err(e) => {
                tail.truncate(before);
                if before == 0 {
                    self.chunks.pop_back(); // the chunk taken for this frame
                }
                Err(e)
            }
        }
    }

    /// The chunk to encode the next frame into. A frame is encoded into
    /// one chunk, which grows if it must: frames never straddle chunks.
    fn tail(&mut self) -> &mut Vec<u8> {
        // A chunk takes more frames while a typical one still fits, so
        // that encoding rarely outgrows (and reallocates) a pooled chunk.
        let reuse = matches!(
            self.chunks.back(),
            Some(Chunk::Owned(v, _)) if v.capacity() - v.len() >= ROOM
        );
        if !reuse {
            self.room_for_a_chunk();
            self.chunks
                .push_back(Chunk::Owned(chunk_pool().alloc(CHUNK), 0));
        }
        match self.chunks.back_mut() {
            Some(Chunk::Owned(v, _)) => v.as_mut_vec(),
            _ => unreachable!("an owned chunk was just ensured"),
        }
    }

    /// Accounts for a frame of `n` bytes appended to the queue.
    fn added(&mut self, n: usize) {
        self.queued += n;
        self.frames += 1;
        if let Some(messages) = &mut self.messages {
            messages.push_back(n);
        }
    }

    /// Makes the chunk list's first room one chunk, not the four a first
    /// push makes: a connection that is idle after its first answer keeps
    /// the list's room, and most never have two chunks at once.
    fn room_for_a_chunk(&mut self) {
        if self.chunks.capacity() == 0 {
            self.chunks.reserve_exact(1);
        }
    }

    /// Queues a shared frame without copying it.
    pub(crate) fn push_shared(&mut self, frame: Bytes) {
        self.room_for_a_chunk();
        self.added(frame.len());
        self.chunks.push_back(Chunk::Shared(frame));
    }

    /// Stream mode: writes as much as `sink` takes, with vectored writes.
    /// `Ok(true)` when all is written, `Ok(false)` when the sink would
    /// block.
    pub(crate) fn write_to(&mut self, sink: &mut impl Write) -> io::Result<bool> {
        debug_assert!(self.messages.is_none(), "a stream write of messages");
        while self.queued > 0 {
            let mut slices = [IoSlice::new(&[]); SLICES];
            let mut n = 0;
            for chunk in self.chunks.iter().take(SLICES) {
                slices[n] = IoSlice::new(chunk.unwritten());
                n += 1;
            }
            match sink.write_vectored(&slices[..n]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => self.advance(written),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Message mode: frames waiting, oldest first.
    pub(crate) fn messages(&self) -> usize {
        self.messages.as_ref().map_or(0, |m| m.len())
    }

    /// Message mode: lends the oldest frames waiting, whole, one per slot
    /// of `into` (as many as fit); returns how many. The link writes them
    /// and then [`pop_messages`](Self::pop_messages) the ones it finished;
    /// it keeps count itself of what it wrote of the first.
    pub(crate) fn peek_messages<'a>(&'a self, into: &mut [&'a [u8]]) -> usize {
        let Some(lengths) = &self.messages else {
            return 0;
        };
        let mut chunks = self.chunks.iter();
        let mut chunk: &[u8] = &[];
        let mut n = 0;
        for (&len, slot) in lengths.iter().zip(into.iter_mut()) {
            // A frame never straddles chunks: one that is not in what is
            // left of this chunk starts the next.
            // (Empty chunks, left by empty frames, are passed over.)
            while chunk.len() < len {
                match chunks.next() {
                    Some(next) if chunk.is_empty() => chunk = next.unwritten(),
                    _ => return n, // out of step: lend no more
                }
            }
            let (message, rest) = chunk.split_at(len);
            *slot = message;
            chunk = rest;
            n += 1;
        }
        n
    }

    /// Message mode: drops the oldest `n` frames (written).
    pub(crate) fn pop_messages(&mut self, n: usize) {
        let Some(lengths) = &mut self.messages else {
            return;
        };
        let n = n.min(lengths.len());
        let bytes = lengths.drain(..n).sum();
        self.advance(bytes);
    }

    /// Drops the first `n` bytes; chunks written to their end leave (an
    /// empty one at the front too, so that the next frame comes first).
    fn advance(&mut self, mut n: usize) {
        self.queued -= n;
        if self.queued == 0 {
            self.frames = 0;
        }
        while let Some(front) = self.chunks.front_mut() {
            let left = front.unwritten().len();
            if n < left {
                match front {
                    Chunk::Owned(_, at) => *at += n,
                    Chunk::Shared(b) => b.advance(n),
                }
                return;
            }
            n -= left;
            self.chunks.pop_front(); // a pooled chunk returns to its pool
            if n == 0 {
                return;
            }
        }
    }

    /// Drops everything queued (the connection is gone).
    pub(crate) fn clear(&mut self) {
        self.cleared = true;
        self.chunks.clear();
        self.queued = 0;
        self.frames = 0;
        if let Some(messages) = &mut self.messages {
            messages.clear();
        }
    }
}

#[cfg(test)]
mod tests;
