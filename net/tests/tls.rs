//! TLS on the tcp and evloop backends, with certificates made by rcgen:
//! the framework's clients (both backends, against both servers) and a
//! TLS client we did not write (Python's ssl, OpenSSL) get answers; a
//! plain-text client, and a client that trusts another authority, are
//! closed (only they), with a logged reason.

mod util;

use std::io::Write;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;

use bytes::Bytes;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use walle_codec::RawCodec;
use walle_net::{
    Backend, Client, ClientOptions, EvloopOptions, Server, ServerOptions, TcpOptions, TlsOptions,
};
use walle_process::{CloseReason, Router};

use util::*;

/// A certificate authority and a server certificate it signed for
/// `localhost`, as PEM files in a temporary directory.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().expect("a temp dir");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "walle test CA");
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("a CA key"))
            .expect("the CA certificate");
        let key = KeyPair::generate().expect("a server key");
        let leaf = CertificateParams::new(vec!["localhost".to_owned()])
            .expect("server params")
            .signed_by(&key, &ca)
            .expect("the server certificate");
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.path().join("cert.pem"), leaf.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn server_backend(&self, kind: &str) -> Backend {
        with_tls(
            kind,
            TlsOptions::server(self.path("cert.pem"), self.path("key.pem")),
        )
    }

    fn client_backend(&self, kind: &str) -> Backend {
        with_tls(
            kind,
            TlsOptions::client(self.path("ca.pem")).server_name("localhost"),
        )
    }
}

/// `kind` (evloop or tcp) with `tls`.
fn with_tls(kind: &str, tls: TlsOptions) -> Backend {
    match kind {
        "evloop" => Backend::Evloop(EvloopOptions::default().tls(tls)),
        _ => Backend::Tcp(TcpOptions::default().tls(tls)),
    }
}

/// The backends that speak TLS.
const KINDS: [&str; 2] = ["evloop", "tcp"];

fn tls_server(pki: &Pki, kind: &str) -> (Server<RawCodec>, Reasons) {
    recording(
        Server::builder(echo_router())
            .backend(pki.server_backend(kind))
            .options(ServerOptions::default()),
    )
}

fn tls_client(backend: Backend, server: &Server<RawCodec>) -> Client<RawCodec> {
    tls_client_with(backend, server, ClientOptions::default())
}

fn tls_client_with(
    backend: Backend,
    server: &Server<RawCodec>,
    options: ClientOptions,
) -> Client<RawCodec> {
    Client::builder(server.local_addr(), Router::new(RawCodec))
        .backend(backend)
        .options(options)
        .build()
        .expect("client")
}

/// Each backend's client, and an evloop client on its caller's runtime
/// (whose connections that runtime drives, with the tcp backend's TLS).
#[test]
fn the_frameworks_clients_are_answered_over_tls() {
    let pki = Pki::new();
    let current = runtime();
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let clients = [("evloop", false), ("tcp", false), ("evloop", true)];
    for server_kind in KINDS {
        let (server, reasons) = tls_server(&pki, server_kind);
        for (client_kind, on_caller) in clients {
            let pair = format!("{client_kind} (caller_runtime {on_caller}) -> {server_kind}");
            let rt = if on_caller { &multi } else { &current };
            let client = {
                let _inside = rt.enter();
                let options = ClientOptions::default().caller_runtime(on_caller);
                tls_client_with(pki.client_backend(client_kind), &server, options)
            };
            // The first call, larger than what rustls holds before the
            // handshake ends (64 KiB), goes out while the handshake runs.
            for payload in [Bytes::from(vec![7u8; 300_000]), Bytes::from_static(b"hi")] {
                for _ in 0..3 {
                    let got: Bytes = rt
                        .block_on(client.call("echo", &payload))
                        .unwrap_or_else(|e| panic!("{pair}: {e}"));
                    assert_eq!(got, payload, "{pair}");
                }
            }
            // Many calls in flight at once: records interleave with the
            // writer's batches.
            let calls: Vec<_> = (0..64u8)
                .map(|i| {
                    let client = client.clone();
                    rt.spawn(async move {
                        let payload = Bytes::from(vec![i; 1000 + i as usize]);
                        client.call::<Bytes, Bytes>("echo", &payload).await
                    })
                })
                .collect();
            for (i, call) in calls.into_iter().enumerate() {
                let got = rt
                    .block_on(call)
                    .unwrap()
                    .unwrap_or_else(|e| panic!("{pair}: {e}"));
                assert_eq!(got.len(), 1000 + i, "{pair}");
            }
        }
        // The clients dropped along the way closed their sessions; none
        // closed for a fault.
        let reasons = reasons.lock().unwrap();
        assert!(
            reasons
                .values()
                .all(|r| matches!(r, CloseReason::PeerClosed)),
            "{server_kind}: {reasons:?}"
        );
    }
}

#[test]
fn a_tls_client_we_did_not_write_is_answered() {
    let pki = Pki::new();
    for kind in KINDS {
        let (server, _) = tls_server(&pki, kind);
        let frame = request_frame("echo", 5, b"from openssl");
        let hex: String = frame.iter().map(|b| format!("{b:02x}")).collect();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/tls_client.py");
        let out = Command::new("python3")
            .arg(script)
            .arg(server.local_addr().port().to_string())
            .arg(pki.path("ca.pem"))
            .arg(hex)
            .output()
            .expect("python3 is needed: apt-get install python3 (scripts/test.sh installs it)");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (version, body) = stdout.trim().split_once(' ').expect("version and body");
        assert!(version.starts_with("TLSv1."), "{version}");
        let body: Vec<u8> = (0..body.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&body[i..i + 2], 16).unwrap())
            .collect();
        assert!(body.ends_with(b"from openssl"), "{kind}: {body:?}");
    }
}

#[test]
fn plain_text_and_untrusting_clients_are_closed_alone() {
    let pki = Pki::new();
    let other = Pki::new();
    for kind in KINDS {
        let (server, reasons) = tls_server(&pki, kind);
        let good = tls_client(pki.client_backend(kind), &server);
        eventually(&format!("{kind}: the good client's session"), || {
            server.sessions().len() == 1
        });
        let good_peer = server.sessions()[0].peer();
        let rt = runtime();

        // Plain text where TLS is expected: a walle frame, raw.
        let mut plain = TcpStream::connect(server.local_addr()).expect("connect");
        let peer = plain.local_addr().unwrap();
        plain
            .write_all(&request_frame("echo", 1, b"clear"))
            .unwrap();
        assert!(
            closed_by_server(&mut plain),
            "{kind}: a plain-text client was not closed"
        );
        eventually(
            &format!("{kind}: the plain-text client's close reason"),
            || reasons.lock().unwrap().contains_key(&peer),
        );
        let reason = reasons.lock().unwrap().get(&peer).cloned();
        match reason {
            Some(CloseReason::Io(e)) => assert!(e.to_string().contains("tls"), "{kind}: {e}"),
            other => panic!("{kind}: the plain-text client closed as {other:?}"),
        }

        // A client that trusts another authority refuses the server's
        // certificate: its call fails, the server sees the alert.
        let untrusting = tls_client(other.client_backend(kind), &server);
        let refused =
            rt.block_on(untrusting.call::<Bytes, Bytes>("echo", &Bytes::from_static(b"x")));
        assert!(
            refused.is_err(),
            "{kind}: a client with another CA got an answer"
        );
        eventually(
            &format!("{kind}: the untrusting client's session closed (its call: {refused:?})"),
            || reasons.lock().unwrap().len() >= 2,
        );
        // The untrusting client may dial again before its failure is
        // seen here (its reconnects): each of its sessions closes on the
        // TLS alert, and the good client's session stays open.
        let closed = reasons.lock().unwrap().clone();
        assert!(
            !closed.contains_key(&good_peer),
            "{kind}: the good client's session closed: {closed:?}"
        );
        for (addr, reason) in closed.iter().filter(|(addr, _)| **addr != peer) {
            match reason {
                CloseReason::Io(e) if e.to_string().contains("tls") => {}
                other => panic!("{kind}: session {addr} closed as {other:?}: {closed:?}"),
            }
        }

        let got: Bytes = rt
            .block_on(good.call("echo", &Bytes::from_static(b"still served")))
            .expect("the good client is still served");
        assert_eq!(&got[..], b"still served", "{kind}");
    }
}

#[test]
fn a_tls_server_without_its_files_fails_to_bind_with_the_reason() {
    let backend = Backend::Tcp(TcpOptions::default().tls(TlsOptions::server(
        "/nonexistent/cert.pem",
        "/nonexistent/key.pem",
    )));
    let Err(err) = Server::builder(echo_router())
        .backend(backend)
        .bind("127.0.0.1:0")
    else {
        panic!("no certificate, no server");
    };
    assert!(err.to_string().contains("/nonexistent/cert.pem"), "{err}");
    let Err(err) = Client::builder("127.0.0.1:1", Router::new(RawCodec))
        .backend(Backend::Tcp(
            TcpOptions::default().tls(TlsOptions::default()),
        ))
        .options(ClientOptions::default().lazy(true))
        .build()
    else {
        panic!("no CA, no client");
    };
    assert!(err.to_string().contains("tls.ca"), "{err}");
}
