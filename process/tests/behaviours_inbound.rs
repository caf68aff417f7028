//! BEHAVIOURS 1-3 of the process layer, over two processes wired back to
//! back in memory: the order of the inbound chain and its unwinding,
//! packet encoders undone in reverse, dispatch hooks that drop, defer,
//! rewrite or refuse a frame, and middleware that moves the rest of the
//! chain to another thread.

mod util;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use util::{Link, body, bytes, drain, echo_router, poll, ready, walle};
use walle_codec::{Code, RawCodec};
use walle_packet::{DueFormat, FrameMode, Head, PacketEncoder, Protocol, Route};
use walle_process::mem::MemTransport;
use walle_process::{
    CloseReason, Context, DispatchHook, Error, FrameNext, HandlerError, Next, Process,
    ProcessOptions, Router, Status,
};

type Log = Arc<Mutex<Vec<String>>>;

fn note(log: &Log, s: &str) {
    log.lock().unwrap().push(s.to_string());
}

#[derive(Debug)]
struct Tag(&'static str, Log);
impl PacketEncoder for Tag {
    fn name(&self) -> &'static str {
        self.0
    }
    fn encode(&self, body: &[u8], dst: &mut Vec<u8>) -> Result<(), walle_codec::BoxError> {
        dst.push(self.0.as_bytes()[0]);
        dst.extend_from_slice(body);
        Ok(())
    }
    fn decode(&self, body: Bytes) -> Result<Bytes, walle_codec::BoxError> {
        note(&self.1, &format!("decode {}", self.0));
        match body.first() {
            Some(&b) if b == self.0.as_bytes()[0] => Ok(body.slice(1..)),
            _ => Err("wrong order".into()),
        }
    }
}

#[derive(Debug)]
struct LogHook(Log);
impl DispatchHook for LogHook {
    fn on_frame(&self, frame: Bytes, next: FrameNext) -> Result<(), HandlerError> {
        note(&self.0, "frame");
        Ok(next.run(frame)?)
    }
}

/// BEHAVIOURS 1: framing -> packet decoders (reversed) -> format -> router
/// -> middleware -> handler; after-code runs as the chain unwinds.
#[test]
fn b01_inbound_order_and_unwinding() {
    let log: Log = Arc::default();
    let protocol = walle()
        .with_encoder(Tag("a", log.clone()))
        .with_encoder(Tag("b", log.clone()));
    let mut router = Router::new(RawCodec);
    let l = log.clone();
    router
        .route("x", move |_: &mut Context, req: Bytes| {
            note(&l, "handler");
            Ok(req)
        })
        .unwrap()
        .layer({
            let l = log.clone();
            move |ctx: &mut Context, next: Next<'_>| {
                note(&l, "route before");
                let r = next.run(ctx);
                note(&l, "route after");
                r
            }
        });
    let l = log.clone();
    router.middleware(move |ctx: &mut Context, next: Next<'_>| {
        note(&l, "global before");
        let r = next.run(ctx);
        note(&l, "global after");
        r
    });
    let hook = Arc::new(LogHook(log.clone()));
    let mut link = Link::with(
        protocol,
        Router::new(RawCodec),
        router,
        |b| b,
        |b| b.hook(hook),
    );
    let mut call = link.client.call::<Bytes, Bytes>("x", &bytes("q"));
    link.pump();
    assert_eq!(ready(&mut call).unwrap(), bytes("q"));
    let log = log.lock().unwrap().clone();
    assert_eq!(
        log,
        [
            "frame", // framing cut the frame, the hook saw it first
            "decode b",
            "decode a", // encoders undone in reverse
            "global before",
            "route before",
            "handler",
            "route after",
            "global after",
            "decode b", // the client undoes the encoders of the response
            "decode a",
        ]
    );
}

#[derive(Debug)]
enum HookMode {
    Drop,
    Rewrite,
    Defer,
    Fail,
}

#[derive(Debug)]
struct ModeHook(HookMode);
impl DispatchHook for ModeHook {
    fn on_frame(&self, frame: Bytes, next: FrameNext) -> Result<(), HandlerError> {
        match self.0 {
            HookMode::Drop => Ok(()),
            HookMode::Rewrite => {
                let protocol = walle();
                let p = protocol.decode(frame).unwrap();
                let mut head = Head::request(Route::Uri("echo"), p.seq());
                head.cmd = p.cmd();
                Ok(next.run(util::body(&protocol, &head, b"rewritten"))?)
            }
            HookMode::Defer => {
                std::thread::spawn(move || next.run(frame).unwrap())
                    .join()
                    .unwrap();
                Ok(())
            }
            HookMode::Fail => Err("refused by hook".into()),
        }
    }
}

/// BEHAVIOURS 2: a dispatch hook drops, defers or rewrites a frame; its
/// error stops the frame and is reported.
#[test]
fn b02_dispatch_hook_drop_defer_rewrite_error() {
    for mode in [
        HookMode::Drop,
        HookMode::Rewrite,
        HookMode::Defer,
        HookMode::Fail,
    ] {
        let name = format!("{mode:?}");
        let hook = Arc::new(ModeHook(mode));
        let mut link = Link::with(
            walle(),
            Router::new(RawCodec),
            echo_router(),
            |b| b,
            |b| b.hook(hook),
        );
        let mut call = link.client.call::<Bytes, Bytes>("echo", &bytes("orig"));
        let frame = {
            let packets = drain(&walle(), &link.to_server);
            assert_eq!(packets.len(), 1);
            body(
                &walle(),
                &Head::request(Route::Uri("echo"), packets[0].seq()),
                b"orig",
            )
        };
        let result = link.server.handle_frame(frame);
        link.pump();
        match name.as_str() {
            "Drop" => {
                assert!(result.is_ok());
                assert!(poll(&mut call).is_pending(), "dropped frame: no answer");
            }
            "Rewrite" => assert_eq!(ready(&mut call).unwrap(), bytes("rewritten")),
            "Defer" => assert_eq!(ready(&mut call).unwrap(), bytes("orig")),
            "Fail" => {
                let err = result.unwrap_err();
                assert!(matches!(err, Error::Hook(_)), "{err}");
                assert!(err.to_string().contains("refused by hook"));
                assert!(poll(&mut call).is_pending());
            }
            _ => unreachable!(),
        }
    }
}

/// DESIGN: middleware can move the rest of the chain to another executor;
/// the request is answered from there, and its errors too.
#[test]
fn middleware_moves_the_chain_to_another_thread() {
    let mut router = Router::new(RawCodec);
    router
        .route("where", |_: &mut Context, _: Bytes| {
            Ok(Bytes::from(
                std::thread::current().name().unwrap_or("?").to_string(),
            ))
        })
        .unwrap();
    router
        .route("fails", |_: &mut Context, _: Bytes| -> Result<Bytes, _> {
            Err(Status::new(1500, "no").into())
        })
        .unwrap();
    router.middleware(|ctx: &mut Context, next: Next<'_>| {
        let next = next.into_owned(ctx);
        let mut owned = ctx.defer();
        std::thread::Builder::new()
            .name("elsewhere".into())
            .spawn(move || {
                if let Err(e) = next.run(&mut owned) {
                    owned.abort(e);
                }
            })
            .unwrap()
            .join()
            .unwrap();
        Ok(())
    });
    let mut link = Link::new(walle(), router);
    let mut here = link.client.call::<Bytes, Bytes>("where", &Bytes::new());
    let mut fails = link.client.call::<Bytes, Bytes>("fails", &Bytes::new());
    link.pump();
    assert_eq!(ready(&mut here).unwrap(), bytes("elsewhere"));
    assert_eq!(ready(&mut fails).unwrap_err().code(), Code(1500));
}

/// A hook that passes a frame on keeps the rest of dispatch's error as it
/// is: a frame that does not decode stays a packet error, so the io layer
/// closes the connection as `Malformed`, not as the hook's refusal.
#[test]
fn a_hook_passing_a_bad_frame_on_keeps_the_packet_error() {
    #[derive(Debug)]
    struct PassOn;
    impl DispatchHook for PassOn {
        fn on_frame(&self, frame: Bytes, next: FrameNext) -> Result<(), HandlerError> {
            Ok(next.run(frame)?)
        }
    }
    let link = Link::with(
        walle(),
        Router::new(RawCodec),
        echo_router(),
        |b| b,
        |b| b.hook(Arc::new(PassOn)),
    );
    let error = link
        .server
        .handle_frame(Bytes::from_static(&[0xff, 0xff, 0xff]))
        .unwrap_err();
    assert!(matches!(error, Error::Packet(_)), "{error:?}");
    let reason = CloseReason::input(error);
    assert!(matches!(reason, CloseReason::Malformed(_)), "{reason:?}");
}

/// An echoed heartbeat that cannot be sent (a full queue) is not the
/// peer's fault: the frame is handled and the session stays open.
#[test]
fn a_heartbeat_echo_that_cannot_be_sent_closes_nothing() {
    let protocol = Protocol::new(DueFormat::new());
    let full = Arc::new(MemTransport::new(0));
    let process = Process::builder(protocol.clone(), echo_router())
        .transport(full)
        .options(ProcessOptions::default().echo_heartbeat(true))
        .build()
        .unwrap();
    let mut beat = Vec::new();
    protocol
        .encode_heartbeat_in(FrameMode::Message, None, &mut beat)
        .unwrap();
    assert!(process.handle_frame(Bytes::from(beat)).is_ok());
    assert!(!process.is_closed());
}
