//! A connection's outbound queue: pooled chunks that frames are encoded
//! into, and shared frames (broadcasts) queued without a copy. Written out
//! with vectored writes. A written chunk goes back to its pool at once, so
//! an idle connection holds no write buffer either.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::sync::{Arc, OnceLock};

use bytes::{Buf, Bytes};
use walle_mempool::{Pool, PoolBuf, SizedPool};

/// Size of a pooled chunk; a chunk takes frames until it is this full.
const CHUNK: usize = 16 * 1024;
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

    /// The chunk to encode the next frame into.
    pub(crate) fn tail(&mut self) -> &mut Vec<u8> {
        let reuse = matches!(self.chunks.back(), Some(Chunk::Owned(v, _)) if v.len() < CHUNK);
        if !reuse {
            self.chunks
                .push_back(Chunk::Owned(chunk_pool().alloc(CHUNK), 0));
        }
        match self.chunks.back_mut() {
            Some(Chunk::Owned(v, _)) => v.as_mut_vec(),
            _ => unreachable!("an owned chunk was just ensured"),
        }
    }

    /// Accounts for bytes appended to [`tail`](Outbound::tail).
    pub(crate) fn added(&mut self, n: usize) {
        self.queued += n;
    }

    /// Queues a shared frame without copying it.
    pub(crate) fn push_shared(&mut self, frame: Bytes) {
        self.queued += frame.len();
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
                out.tail().extend_from_slice(&frame);
                out.added(frame.len());
            }
        }
        assert_eq!(out.queued(), expected.len());
        let mut sink = Trickle {
            out: Vec::new(),
            max: 333,
            calls: 0,
        };
        while !out.write_to(&mut sink).unwrap() {}
        assert_eq!(sink.out, expected);
        assert!(out.is_empty());
    }
}
