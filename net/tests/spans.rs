//! Logs of a request nest under its connection's span (session, peer,
//! backend) and its own (session, seq, route), on every backend: a
//! handler's log line, captured from a real subscriber, names them all.

mod util;

use std::io::Write;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use walle_codec::RawCodec;
use walle_net::ServerOptions;
use walle_process::{Context, Router};

use util::*;

/// Everything the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_handlers_log_names_its_connection_and_request() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    for backend in all_backends() {
        let name = backend.name();
        let mut router = Router::new(RawCodec);
        router
            .route("game.Room/Join", move |_: &mut Context, req: Bytes| {
                tracing::info!(backend = name, "joining");
                Ok(req)
            })
            .unwrap();
        let server = server(&backend, router, ServerOptions::default());
        let client = client(&backend, server.local_addr(), Default::default());
        let answer: Bytes = runtime()
            .block_on(client.call("game.Room/Join", &Bytes::from_static(b"hi")))
            .unwrap();
        assert_eq!(&answer[..], b"hi");
        let text = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
        let line = text
            .lines()
            .find(|l| l.contains("joining") && l.contains(&format!("backend=\"{name}\"")))
            .unwrap_or_else(|| panic!("{name}: no handler line in:\n{text}"));
        let session = server.sessions()[0].id();
        let peer = server.sessions()[0].peer();
        for part in [
            format!("conn{{session={session} peer={peer} backend=\"{name}\"}}"),
            format!("request{{session={session} seq="),
            "route=Uri(\"game.Room/Join\")".to_owned(),
        ] {
            assert!(line.contains(&part), "{name}: {part} missing from: {line}");
        }
    }
}
