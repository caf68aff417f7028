//! The frame path of the ws backend for a fuzzer (feature `fuzzing`): not
//! an API.

use std::future::Future;
use std::io::{self, IoSlice};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use walle_packet::{FrameMode, Framing};
use walle_process::{CloseReason, Error};

use super::frame;
use super::link::{Role, WsLink};
use crate::conn::Handler;
use crate::outbound::Outbound;
use crate::tcp::{ByteStream, Link};

/// A socket that takes, per write, as many bytes as the input says (some
/// writes are cut short, some would block), and keeps them.
struct Sink {
    takes: Mutex<(Vec<u8>, usize)>,
    wire: Mutex<Vec<u8>>,
}

impl ByteStream for Sink {
    fn read_some(&self, _: &mut BytesMut) -> impl Future<Output = io::Result<usize>> + Send {
        std::future::pending()
    }
    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut takes = self.takes.lock().expect("takes");
        let (plan, at) = &mut *takes;
        let take = match plan.get(*at % plan.len().max(1)) {
            Some(0) => return Err(io::ErrorKind::WouldBlock.into()),
            Some(&n) => usize::from(n) * 7,
            None => usize::MAX,
        };
        *at += 1;
        let mut wire = self.wire.lock().expect("wire");
        let mut left = take;
        for buf in bufs {
            let n = buf.len().min(left);
            wire.extend_from_slice(&buf[..n]);
            left -= n;
        }
        Ok(take - left)
    }
    fn writable(&self) -> impl Future<Output = io::Result<()>> + Send {
        std::future::ready(Ok(()))
    }
    fn shutdown(&self) {}
    fn shutdown_write(&self) {}
}

/// Counts the messages handed on, each within the limit.
struct Count {
    max: usize,
    got: Mutex<usize>,
}

impl Handler for Count {
    fn frame(&self, body: Bytes) -> Result<(), Error> {
        assert!(body.len() <= self.max, "a message over the limit handed on");
        *self.got.lock().expect("count") += 1;
        Ok(())
    }
    fn timeout(&self, _: Instant) {}
    fn next_timeout(&self) -> Option<Instant> {
        None
    }
    fn heartbeat(&self) -> Result<(), Error> {
        Ok(())
    }
    fn closed(&self, _: CloseReason) {}
    fn close_reason(&self) -> Option<CloseReason> {
        None
    }
    fn id(&self) -> u64 {
        0
    }
    fn framing(&self) -> Framing {
        Framing::default()
    }
}

/// Reads `data` as a peer's input, in pieces, on a server or client link
/// with a small message limit, then queues messages and writes them out
/// through a socket that cuts writes short as `data` says; the written
/// bytes must parse back as whole frames: the pongs the input asked for,
/// then every queued message, in order. Panics if a bound is broken or
/// the output goes out of step; must never panic otherwise.
pub fn frames(data: &[u8]) {
    let [flags, rest @ ..] = data else { return };
    let role = if flags & 1 == 0 {
        Role::Server
    } else {
        Role::Client
    };
    let max = 64 + usize::from(flags >> 1) * 16;
    let split = rest.len() / 2;
    let (input, plan) = rest.split_at(split);
    let sink = Sink {
        takes: Mutex::new((plan.iter().map(|b| b % 8).collect(), 0)),
        wire: Mutex::new(Vec::new()),
    };
    let link = WsLink::new(sink, role, max, Duration::ZERO, BytesMut::new());
    let handler = Count {
        max,
        got: Mutex::new(0),
    };
    let mut inbox = link.inbox(Framing::default());
    let mut pieces = input.chunks(plan.first().map_or(7, |&b| usize::from(b % 32) + 1));
    for piece in &mut pieces {
        inbox.feed(piece);
        if link.deliver(&mut inbox, &handler).is_err() {
            break;
        }
        assert!(
            inbox.buffered() <= 2 * (max + frame::MAX_HEADER) + input.len(),
            "the input buffer outgrew the message limit"
        );
    }
    let mut out = Outbound::new(FrameMode::Message);
    let sizes: Vec<usize> = plan.iter().take(16).map(|&b| usize::from(b) * 3).collect();
    for (i, &size) in sizes.iter().enumerate() {
        let _ = out.encode(&mut |tail: &mut Vec<u8>| {
            tail.extend(std::iter::repeat_n(i as u8, size));
            Ok::<(), ()>(())
        });
    }
    for _ in 0..64 {
        match link.write_out(&mut out) {
            Ok(true) => break,
            Ok(false) => {}
            Err(_) => return,
        }
    }
    // Whatever was written parses as whole frames, messages in order.
    let wire = link.stream().wire.lock().expect("wire").clone();
    let mut at = 0;
    let mut message = 0;
    while let Some(h) = frame::parse(&wire[at..]) {
        let len = usize::try_from(h.len).expect("a sane length");
        let Some(payload) = wire.get(at + h.size..at + h.size + len) else {
            break; // the tail of a message cut short
        };
        assert_eq!(h.mask.is_some(), role == Role::Client, "masking by role");
        let mut payload = payload.to_vec();
        if let Some(key) = h.mask {
            frame::apply_mask(&mut payload, key, 0);
        }
        match h.opcode {
            frame::BINARY => {
                assert_eq!(payload.len(), sizes[message], "message {message} whole");
                assert!(
                    payload.iter().all(|&b| b == message as u8),
                    "message {message} in order"
                );
                message += 1;
            }
            frame::PONG => {}
            other => panic!("an unexpected opcode {other} written"),
        }
        at += h.size + len;
    }
}
