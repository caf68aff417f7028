//! A connection's outbound queue: pooled chunks that frames are encoded
//! into, and shared frames (broadcasts) queued without a copy. Written out
//! with vectored writes. A written chunk goes back to its pool at once, so
//! an idle connection holds no write buffer either.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::sync::{Arc, OnceLock};

use bytes::{Buf, Bytes};
use walle_mempool::{Pool, PoolBuf, SizedPool};

/// Size of a pooled chunk.
const CHUNK: usize = 16 * 1024;
/// Room a chunk must have left to take another frame.
const ROOM: usize = CHUNK / 4;
/// Slices per vectored write.
const SLICES: usize = 64;

/// The pool outbound chunks come from, shared by every reactor.
fn chunk_pool() -> &'static Arc<dyn Pool> {
    static POOL: OnceLock<Arc<dyn Pool>> = OnceLock::new();
    POOL.get_or_init(|| Arc::new(SizedPool::new()))
}

enum Chunk {
    /// Encoded frames; the first `usize` bytes are already written.
    Owned(PoolBuf, usize),
    /// A frame shared with other connections.
    Shared(Bytes),
}

#[derive(Default)]
pub(crate) struct Outbound {
    chunks: VecDeque<Chunk>,
    queued: usize,
    /// Frames queued since the queue was last empty.
    frames: usize,
}

impl Outbound {
    /// Bytes waiting to be written.
    pub(crate) fn queued(&self) -> usize {
        self.queued
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.queued == 0
    }

    /// Frames queued since the queue was last empty: an upper bound of
    /// the frames waiting.
    pub(crate) fn frames(&self) -> usize {
        self.frames
    }

    /// Encodes one frame at the end of the queue with `write`; on error
    /// nothing of it stays queued.
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

    /// The chunk to encode the next frame into.
    fn tail(&mut self) -> &mut Vec<u8> {
        // A chunk takes more frames while a typical one still fits, so
        // that encoding rarely outgrows (and reallocates) a pooled chunk.
        let reuse = matches!(
            self.chunks.back(),
            Some(Chunk::Owned(v, _)) if v.capacity() - v.len() >= ROOM
        );
        if !reuse {
            self.chunks
                .push_back(Chunk::Owned(chunk_pool().alloc(CHUNK), 0));
        }
        match self.chunks.back_mut() {
            Some(Chunk::Owned(v, _)) => v.as_mut_vec(),
            _ => unreachable!("an owned chunk was just ensured"),
        }
    }

    /// Accounts for a frame of `n` bytes appended to the tail chunk.
    fn added(&mut self, n: usize) {
        self.queued += n;
        self.frames += 1;
    }

    /// Queues a shared frame without copying it.
    pub(crate) fn push_shared(&mut self, frame: Bytes) {
        self.queued += frame.len();
        self.frames += 1;
        self.chunks.push_back(Chunk::Shared(frame));
    }

    /// Writes as much as `sink` takes. `Ok(true)` when all is written,
    /// `Ok(false)` when the sink would block.
    pub(crate) fn write_to(&mut self, sink: &mut impl Write) -> io::Result<bool> {
        while self.queued > 0 {
            let mut slices = [IoSlice::new(&[]); SLICES];
            let mut n = 0;
            for chunk in self.chunks.iter().take(SLICES) {
                slices[n] = IoSlice::new(match chunk {
                    Chunk::Owned(v, at) => &v[*at..],
                    Chunk::Shared(b) => b,
                });
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

    fn advance(&mut self, mut n: usize) {
        self.queued -= n;
        if self.queued == 0 {
            self.frames = 0;
        }
        while n > 0 {
            let Some(front) = self.chunks.front_mut() else {
                return;
            };
            let left = match front {
                Chunk::Owned(v, at) => v.len() - *at,
                Chunk::Shared(b) => b.len(),
            };
            if n < left {
                match front {
                    Chunk::Owned(_, at) => *at += n,
                    Chunk::Shared(b) => b.advance(n),
                }
                return;
            }
            n -= left;
            self.chunks.pop_front(); // a pooled chunk returns to its pool
        }
    }

    /// Drops everything queued (the connection is gone).
    pub(crate) fn clear(&mut self) {
        self.chunks.clear();
        self.queued = 0;
        self.frames = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink taking at most `max` bytes per call, blocking every other call.
    struct Trickle {
        out: Vec<u8>,
        max: usize,
        calls: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.write_vectored(&[IoSlice::new(buf)])
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            self.calls += 1;
            if self.calls % 2 == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let mut room = self.max;
            for b in bufs {
                let take = b.len().min(room);
                self.out.extend_from_slice(&b[..take]);
                room -= take;
            }
            Ok(self.max - room)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// BEHAVIOURS 28: queued frames leave in order through vectored writes,
    /// partial writes included.
    #[test]
    fn b28_frames_leave_in_order_through_partial_vectored_writes() {
        let mut out = Outbound::default();
        let mut expected = Vec::new();
        for i in 0..50u8 {
            if i % 7 == 3 {
                let shared = Bytes::from(vec![i; 100]);
                expected.extend_from_slice(&shared);
                out.push_shared(shared);
            } else {
                let frame = vec![i; 37 + usize::from(i)];
                expected.extend_from_slice(&frame);
                out.encode(&mut |tail| {
                    tail.extend_from_slice(&frame);
                    Ok::<(), ()>(())
                })
                .unwrap();
            }
        }
        assert_eq!(out.queued(), expected.len());
        assert_eq!(out.frames(), 50);
        let failed = out.encode(&mut |tail| {
            tail.extend_from_slice(b"half a frame");
            Err(())
        });
        assert!(failed.is_err());
        assert_eq!(
            out.queued(),
            expected.len(),
            "a failed encode leaves nothing"
        );
        let mut sink = Trickle {
            out: Vec::new(),
            max: 333,
            calls: 0,
        };
        while !out.write_to(&mut sink).unwrap() {}
        assert_eq!(sink.out, expected);
        assert!(out.is_empty());
        assert_eq!(out.frames(), 0);
    }
}
