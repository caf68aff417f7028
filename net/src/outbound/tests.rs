//! The outbound queue in both modes: order, partial and blocked writes,
//! failed encodes, shared frames.

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

/// Queues frame `i` of a test sequence: an encoded frame of varied size,
/// every seventh a shared one (as a broadcast queues). Returns its bytes.
fn queue_frame(out: &mut Outbound, i: u8, shared: &[Bytes]) -> Vec<u8> {
    if i % 7 == 3 {
        let frame = shared[usize::from(i) % shared.len()].clone();
        let bytes = frame.to_vec();
        out.push_shared(frame);
        bytes
    } else {
        // Some frames are larger than a chunk's spare room, some than a
        // whole chunk.
        let len = match i % 11 {
            5 => ROOM + 100,
            9 => CHUNK + 1000,
            _ => 37 + usize::from(i),
        };
        let frame = vec![i; len];
        encode(out, &frame);
        frame
    }
}

/// A broadcast's frames, shared by several queues.
fn broadcast() -> Vec<Bytes> {
    (0..3u8).map(|i| Bytes::from(vec![200 + i; 90])).collect()
}

#[test]
fn the_mode_is_the_one_asked_for() {
    assert_eq!(Outbound::default().mode(), FrameMode::Stream);
    assert_eq!(Outbound::new(FrameMode::Stream).mode(), FrameMode::Stream);
    assert_eq!(Outbound::new(FrameMode::Message).mode(), FrameMode::Message);
    let mut stream = Outbound::new(FrameMode::Stream);
    stream.push_shared(Bytes::from_static(b"x"));
    assert!(
        stream.write_messages(|_| Ok(())).is_err(),
        "a stream queue has no messages to hand out"
    );
}

#[test]
fn a_shared_frame_goes_whole_to_every_stream_queue() {
    let frames = broadcast();
    let mut queues: Vec<Outbound> = (0..3).map(|_| Outbound::default()).collect();
    let mut expected = vec![Vec::new(); 3];
    for i in 0..30u8 {
        for (out, want) in queues.iter_mut().zip(&mut expected) {
            want.extend(queue_frame(out, i, &frames));
        }
    }
    for (n, (out, want)) in queues.iter_mut().zip(&expected).enumerate() {
        let mut sink = Trickle {
            out: Vec::new(),
            max: 101 + 50 * n,
            calls: 0,
        };
        while !out.write_to(&mut sink).unwrap() {}
        assert_eq!(&sink.out, want, "queue {n}");
    }
    assert_eq!(frames[0].len(), 90, "writes never touch the shared bytes");
}

/// A message sink: takes one message per call, says WouldBlock every
/// `block_every`-th call, fails with `Interrupted` once.
struct Messages {
    got: Vec<Vec<u8>>,
    calls: usize,
    block_every: usize,
    interrupted: bool,
}

impl Messages {
    fn new(block_every: usize) -> Messages {
        Messages {
            got: Vec::new(),
            calls: 0,
            block_every,
            interrupted: false,
        }
    }

    fn send(&mut self, message: &[u8]) -> io::Result<()> {
        self.calls += 1;
        if self.calls % self.block_every == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        if self.calls == 2 && !self.interrupted {
            self.interrupted = true;
            return Err(io::ErrorKind::Interrupted.into());
        }
        self.got.push(message.to_vec());
        Ok(())
    }
}

#[test]
fn message_mode_hands_out_each_frame_whole_in_order() {
    let frames = broadcast();
    let mut out = Outbound::new(FrameMode::Message);
    let mut expected = Vec::new();
    for i in 0..60u8 {
        expected.push(queue_frame(&mut out, i, &frames));
    }
    assert_eq!(out.frames(), 60);
    assert_eq!(out.queued(), expected.iter().map(Vec::len).sum::<usize>());
    let failed = out.encode(&mut |tail| {
        tail.extend_from_slice(b"half a frame");
        Err(())
    });
    assert!(failed.is_err());
    let mut sink = Messages::new(3);
    let mut blocked = 0;
    while !out.write_messages(|m| sink.send(m)).unwrap() {
        blocked += 1;
    }
    assert!(blocked > 10, "the sink blocked {blocked} times");
    assert!(sink.interrupted);
    assert_eq!(
        sink.got.len(),
        60,
        "one message per frame, none for the failed one"
    );
    assert_eq!(sink.got, expected);
    assert!(out.is_empty());
    assert_eq!(out.frames(), 0);
    assert!(send_all(&mut out).is_empty(), "nothing is left");
}

/// Hands out every message of `out` to a sink that takes them all.
fn send_all(out: &mut Outbound) -> Vec<Vec<u8>> {
    let mut sent = Vec::new();
    let done = out.write_messages(|m| {
        sent.push(m.to_vec());
        Ok(())
    });
    assert!(done.unwrap(), "a sink that never blocks takes all");
    sent
}

/// Encodes `frame` as one frame of `out`.
fn encode(out: &mut Outbound, frame: &[u8]) {
    out.encode(&mut |tail| {
        tail.extend_from_slice(frame);
        Ok::<(), ()>(())
    })
    .unwrap();
}

#[test]
fn a_blocked_message_is_handed_out_again_and_an_error_keeps_it() {
    let mut out = Outbound::new(FrameMode::Message);
    for frame in [&b"one"[..], b"two", b"three"] {
        encode(&mut out, frame);
    }
    out.push_shared(Bytes::from_static(b"four"));
    let mut seen = Vec::new();
    let written = out.write_messages(|m| {
        seen.push(m.to_vec());
        if seen.len() == 2 {
            Err(io::ErrorKind::WouldBlock.into())
        } else {
            Ok(())
        }
    });
    assert!(!written.unwrap());
    assert_eq!(seen, [&b"one"[..], b"two"]);
    assert_eq!(out.queued(), b"twothreefour".len());
    let failed = out.write_messages(|m| {
        assert_eq!(m, b"two", "the blocked message comes first again");
        Err(io::ErrorKind::ConnectionReset.into())
    });
    assert_eq!(failed.unwrap_err().kind(), io::ErrorKind::ConnectionReset);
    let rest = send_all(&mut out);
    assert_eq!(rest, [&b"two"[..], b"three", b"four"]);
}

#[test]
fn empty_messages_keep_the_queue_in_step() {
    let mut out = Outbound::new(FrameMode::Message);
    encode(&mut out, b"");
    out.push_shared(Bytes::from_static(b"after"));
    encode(&mut out, b"");
    encode(&mut out, b"last");
    let got = send_all(&mut out);
    assert_eq!(got, [&b""[..], b"after", b"", b"last"]);
}

#[test]
fn clearing_a_message_queue_forgets_its_lengths() {
    let mut out = Outbound::new(FrameMode::Message);
    out.push_shared(Bytes::from_static(b"dropped"));
    out.clear();
    out.push_shared(Bytes::from_static(b"kept"));
    let got = send_all(&mut out);
    assert_eq!(got, [&b"kept"[..]]);
}
