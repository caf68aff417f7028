//! Where the KCP states' datagrams go: each state writes to a [`Wire`],
//! which appends to a buffer of the current thread; the endpoint moves
//! what one call of a state wrote into its queue of [`Transmits`], with
//! the session's peer. (The `kcp` crate owns its output and offers no way
//! back to it: a thread-local buffer spares a lock per datagram.)

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::SocketAddr;

thread_local! {
    /// Datagrams written by the KCP state of the call under way: their
    /// bytes back to back, and where each ends.
    static WRITTEN: RefCell<(Vec<u8>, Vec<usize>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// The output of a KCP state: every `write` is one whole datagram (the
/// state writes each with one `write_all`, which one `write` takes).
#[derive(Debug, Default)]
pub(crate) struct Wire;

impl Write for Wire {
    fn write(&mut self, datagram: &[u8]) -> io::Result<usize> {
        WRITTEN.with(|w| {
            let (bytes, ends) = &mut *w.borrow_mut();
            bytes.extend_from_slice(datagram);
            ends.push(bytes.len());
        });
        Ok(datagram.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Datagrams waiting for the socket, oldest first, in one buffer.
#[derive(Debug, Default)]
pub(crate) struct Transmits {
    bytes: Vec<u8>,
    /// Destination and end offset in `bytes` of each datagram.
    queue: VecDeque<(SocketAddr, usize)>,
    /// Bytes before the first datagram, already sent.
    sent: usize,
    /// Datagrams dropped because the queue was full.
    pub(crate) dropped: u64,
}

/// Bytes of datagrams a queue holds at most: past it, new ones are
/// dropped (as a full socket buffer would).
const MAX_QUEUED: usize = 8 << 20;

impl Transmits {
    /// Moves what KCP states wrote on this thread since the last call into
    /// the queue, for `peer`.
    pub(crate) fn take_written(&mut self, peer: SocketAddr) {
        WRITTEN.with(|w| {
            let (bytes, ends) = &mut *w.borrow_mut();
            if ends.is_empty() {
                return;
            }
            let mut start = 0;
            for &end in ends.iter() {
                if self.bytes.len() - self.sent + (end - start) > MAX_QUEUED {
                    self.dropped += 1;
                } else {
                    self.bytes.extend_from_slice(&bytes[start..end]);
                    self.queue.push_back((peer, self.bytes.len()));
                }
                start = end;
            }
            bytes.clear();
            ends.clear();
        });
    }

    /// Hands `send` each datagram, oldest first, until all are sent
    /// (`true`) or the socket blocks (`false`: that one stays first). A
    /// datagram the socket lost is gone (UDP may lose any).
    pub(crate) fn poll_transmit(
        &mut self,
        mut send: impl FnMut(SocketAddr, &[u8]) -> Sent,
    ) -> bool {
        while let Some(&(peer, end)) = self.queue.front() {
            match send(peer, &self.bytes[self.sent..end]) {
                Sent::Done | Sent::Lost => {
                    self.queue.pop_front();
                    self.sent = end;
                }
                Sent::Blocked => return false,
            }
        }
        self.compact();
        true
    }

    /// Gives back the room of sent datagrams: all of it once the queue is
    /// empty, or the front once it is large.
    fn compact(&mut self) {
        if self.queue.is_empty() {
            self.bytes.clear();
            self.sent = 0;
        } else if self.sent > MAX_QUEUED / 4 {
            self.bytes.drain(..self.sent);
            for (_, end) in &mut self.queue {
                *end -= self.sent;
            }
            self.sent = 0;
        }
    }
}

/// What became of one datagram handed to the socket.
#[derive(Debug)]
pub(crate) enum Sent {
    /// Sent.
    Done,
    /// Not sent, and never will be (a transient error): go on.
    Lost,
    /// The socket takes no more now.
    Blocked,
}
