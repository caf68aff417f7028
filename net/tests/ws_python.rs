//! Interop with a WebSocket we did not write: Python's `websockets`
//! package (`tests/python/walle_ws.py`) as a client of a walle ws server,
//! speaking `walle` frames, and as a server a walle ws client calls.
//!
//! Needs `python3` with `websockets` (`python3 -m pip install websockets`;
//! scripts/test.sh installs it where missing): without it the tests fail
//! saying so.

mod util;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use util::*;
use walle_codec::RawCodec;
use walle_net::{Backend, Client, ClientOptions, ServerOptions};
use walle_process::{Context, Router};

const INSTALL: &str = "python3 with the `websockets` package is needed: \
                       python3 -m pip install websockets (scripts/test.sh does it)";

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/walle_ws.py")
}

/// Fails the test, saying how to install what is missing, unless
/// `websockets` imports.
fn require_websockets() {
    let probe = Command::new("python3")
        .args(["-c", "import websockets.asyncio.client"])
        .output();
    match probe {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!("{INSTALL}: {}", String::from_utf8_lossy(&out.stderr)),
        Err(e) => panic!("{INSTALL}: cannot run python3: {e}"),
    }
}

/// Waits for `child` up to `bound`, killing it past that.
fn wait(mut child: Child, bound: Duration) -> Output {
    let (tx, rx) = mpsc::channel();
    let pid = child.id();
    std::thread::spawn(move || {
        if rx.recv_timeout(bound).is_err() {
            // The child we started, by its id.
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    });
    child.stdin.take();
    let out = child.wait_with_output().expect("the python process");
    let _ = tx.send(());
    out
}

#[test]
fn a_python_client_speaks_walle_to_a_walle_ws_server() {
    require_websockets();
    let slot: Slot = std::sync::Arc::default();
    let held = slot.clone();
    let mut router = echo_router();
    router
        .route("push_me", move |ctx: &mut Context, req: Bytes| {
            let id = ctx.session().id();
            let server = held.lock().unwrap();
            let session = server.as_ref().and_then(|s| s.session(id));
            if let Some(session) = session {
                session.notify("pushed", &req)?;
            }
            Ok(Bytes::new())
        })
        .unwrap();
    let server = server(&Backend::ws(), router, ServerOptions::default());
    let addr = server.local_addr();
    *slot.lock().unwrap() = Some(server);
    let url = format!("ws://{addr}/");
    let child = Command::new("python3")
        .arg(script())
        .args(["client", &url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{INSTALL}: {e}"));
    let out = wait(child, PATIENCE);
    assert!(
        out.status.success(),
        "the python client failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    slot.lock().unwrap().take();
}

#[test]
fn a_walle_ws_client_calls_a_python_ws_server() {
    require_websockets();
    let mut child = Command::new("python3")
        .arg(script())
        .arg("server")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("{INSTALL}: {e}"));
    let mut lines = BufReader::new(child.stdout.take().expect("its output")).lines();
    let port: u16 = loop {
        let line = lines
            .next()
            .expect("the python server printed its port")
            .unwrap();
        if let Some(port) = line.strip_prefix("PORT ") {
            break port.trim().parse().unwrap();
        }
    };
    let (tx, pushes) = mpsc::channel();
    let mut router = Router::new(RawCodec);
    let tx = std::sync::Mutex::new(tx);
    router
        .route("hello", move |_: &mut Context, msg: Bytes| {
            let _ = tx.lock().unwrap().send(msg);
            Ok(Bytes::new())
        })
        .unwrap();
    let client = Client::builder(format!("ws://127.0.0.1:{port}/"), router)
        .backend(Backend::ws())
        .options(ClientOptions::default())
        .build()
        .unwrap();
    let pushed = pushes.recv_timeout(PATIENCE).expect("the server's push");
    assert_eq!(pushed, Bytes::from_static(b"from python"));
    let rt = runtime();
    for size in [0usize, 10, 70_000, 900_000] {
        let payload: Bytes = (0..size).map(|i| i as u8).collect();
        let answer: Bytes = rt.block_on(client.call("echo", &payload)).unwrap();
        let reversed: Vec<u8> = payload.iter().rev().copied().collect();
        assert_eq!(&answer[..], &reversed[..], "{size} bytes");
    }
    client.close();
    drop(lines);
    let out = wait(child, PATIENCE);
    assert!(out.status.success(), "the python server: {}", out.status);
}
