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
    let mut slots: [&[u8]; 4] = [&[]; 4];
    assert_eq!(
        (stream.messages(), stream.peek_messages(&mut slots)),
        (0, 0),
        "a stream queue has no messages to lend"
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

/// Takes up to `max` messages off `out`: peeked, copied, popped.
fn take(out: &mut Outbound, max: usize) -> Vec<Vec<u8>> {
    let mut slots: Vec<&[u8]> = vec![&[]; max];
    let n = out.peek_messages(&mut slots);
    let got = slots[..n].iter().map(|m| m.to_vec()).collect();
    out.pop_messages(n);
    got
}

/// Takes every message of `out`.
fn send_all(out: &mut Outbound) -> Vec<Vec<u8>> {
    let sent = take(out, out.messages());
    assert_eq!(out.messages(), 0, "all lent at once");
    sent
}

#[test]
fn message_mode_lends_each_frame_whole_in_order() {
    let frames = broadcast();
    let mut out = Outbound::new(FrameMode::Message);
    let mut expected = Vec::new();
    for i in 0..60u8 {
        expected.push(queue_frame(&mut out, i, &frames));
    }
    assert_eq!(out.frames(), 60);
    assert_eq!(out.messages(), 60);
    assert_eq!(out.queued(), expected.iter().map(Vec::len).sum::<usize>());
    let failed = out.encode(&mut |tail| {
        tail.extend_from_slice(b"half a frame");
        Err(())
    });
    assert!(failed.is_err());
    let mut got = Vec::new();
    while out.messages() > 0 {
        got.extend(take(&mut out, 7));
    }
    assert_eq!(
        got.len(),
        60,
        "one message per frame, none for the failed one"
    );
    assert_eq!(got, expected);
    assert!(out.is_empty());
    assert_eq!(out.frames(), 0);
    assert!(send_all(&mut out).is_empty(), "nothing is left");
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
fn a_lent_message_stays_queued_until_popped() {
    let mut out = Outbound::new(FrameMode::Message);
    for frame in [&b"one"[..], b"two", b"three"] {
        encode(&mut out, frame);
    }
    out.push_shared(Bytes::from_static(b"four"));
    let mut slots: [&[u8]; 2] = [&[]; 2];
    assert_eq!(out.peek_messages(&mut slots), 2);
    assert_eq!(slots, [&b"one"[..], b"two"]);
    out.pop_messages(1);
    assert_eq!(out.queued(), b"twothreefour".len());
    assert_eq!(out.messages(), 3);
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
