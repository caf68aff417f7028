//! The `walle` command as a user runs it: the built binary against a
//! real echo server, a served config against a raw TCP peer and the
//! command's own client, and discovery through a real etcd.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use walle::codec::RawCodec;
use walle::net::{Backend, Server};
use walle::prelude::*;

/// The built `walle` binary.
fn walle() -> Command {
    Command::new(env!("CARGO_BIN_EXE_walle"))
}

fn run(args: &[&str]) -> Output {
    walle().args(args).output().expect("walle runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// An echo server like the `echo_server` example: uri `echo` and id 1,
/// raw codec, on evloop, speaking `walle`.
fn echo_server() -> Server<RawCodec> {
    echo_server_of(Protocol::new(WalleFormat::new()))
}

fn echo_server_of(protocol: Protocol) -> Server<RawCodec> {
    let mut router = Router::new(RawCodec);
    router
        .route("echo", |_: &mut Context, req: Bytes| Ok(req))
        .unwrap();
    router
        .route_id(1, |_: &mut Context, req: Bytes| Ok(req))
        .unwrap();
    Server::builder(router)
        .backend(Backend::evloop())
        .protocol(protocol)
        .bind("127.0.0.1:0")
        .expect("bind")
}

#[test]
fn call_prints_the_answer_and_exits_by_outcome() {
    let server = echo_server();
    let addr = server.local_addr().to_string();

    let out = run(&["call", &addr, "echo", "hello", "--codec", "raw"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hello\n");

    let out = run(&["call", &addr, "nowhere", "hello", "--codec", "raw"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).starts_with("error 4: "),
        "{}",
        text(&out.stderr)
    );

    // A port nothing listens on: bound, then closed.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let out = run(&["call", &closed.to_string(), "echo", "x", "--codec", "raw"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("refused"),
        "{}",
        text(&out.stderr)
    );

    // JSON in, pretty JSON out; metadata and a numeric route.
    let out = run(&[
        "call",
        &addr,
        "echo",
        r#"{"b":[1,2],"a":"x"}"#,
        "--md",
        "trace=7",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(answer, serde_json::json!({"b": [1, 2], "a": "x"}));
    assert!(
        text(&out.stdout).contains("\n  "),
        "not pretty: {}",
        text(&out.stdout)
    );
    let numeric = echo_server_of(Protocol::new(WalleFormat::with_ids()));
    let numeric_addr = numeric.local_addr().to_string();
    let out = run(&[
        "call",
        &numeric_addr,
        "1",
        "7",
        "--format",
        "walle-id",
        "--codec",
        "msgpack",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "7\n");
    let out = run(&["call", &addr, "echo", "x", "--format", "walle-id"]);
    assert_eq!(out.status.code(), Some(1), "a name on a numeric format");

    // A server that takes the connection and never answers: a timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let out = run(&[
        "call",
        &silent.local_addr().unwrap().to_string(),
        "echo",
        "x",
        "--codec",
        "raw",
        "--timeout",
        "300",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("no answer within"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn bench_prints_its_table_and_the_summary_line() {
    let server = echo_server();
    let addr = server.local_addr().to_string();
    let out = run(&[
        "bench", &addr, "--conns", "2", "--depth", "4", "--size", "32", "--secs", "0.5",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for row in ["p50", "p90", "p99", "p99.9", "max", "msgs/s", "errors"] {
        assert!(
            stdout.lines().any(|l| l.starts_with(row)),
            "no {row} row: {stdout}"
        );
    }
    let last = stdout.lines().last().expect("a last line");
    let fields: Vec<(&str, u64)> = last
        .split(' ')
        .map(|f| {
            let (k, v) = f.split_once('=').expect("key=value");
            (k, v.parse().expect("a number"))
        })
        .collect();
    assert_eq!(
        fields.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
        ["msgs_per_s", "p50_us", "p99_us"]
    );
    assert!(fields[0].1 > 0, "{last}");

    let out = run(&[
        "bench", &addr, "--conns", "1", "--depth", "2", "--secs", "0.3", "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(report["ok"].as_u64().expect("ok") > 0, "{report}");
    assert!(
        report["errors"].as_object().expect("errors").is_empty(),
        "{report}"
    );

    // A route the server lacks: every call an error, counted by code.
    let out = run(&[
        "bench", &addr, "--route", "nowhere", "--conns", "1", "--depth", "1", "--secs", "0.2",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).lines().any(|l| l.starts_with("error 4")),
        "{}",
        text(&out.stdout)
    );
}

/// A `walle serve` child, killed (SIGTERM) when dropped.
struct Served {
    child: Child,
    addr: String,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Served {
    fn start(config: &str) -> Served {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("serve.toml");
        std::fs::write(&path, config).expect("write the config");
        let mut child = walle()
            .args(["serve", "--config"])
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("walle serve runs");
        let (tx, lines) = std::sync::mpsc::channel();
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let first = lines
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                let mut err = String::new();
                let _ = child.stderr.take().map(|mut e| e.read_to_string(&mut err));
                panic!("walle serve printed nothing: {err}")
            });
        let addr = first
            .strip_prefix("serving echo on ")
            .and_then(|rest| rest.split(' ').next())
            .unwrap_or_else(|| panic!("unexpected first line: {first}"))
            .to_owned();
        drop(dir);
        Served { child, addr, lines }
    }

    fn line(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(60))
            .expect("a line from walle serve")
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "walle serve did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn serve_answers_as_the_config_says_and_stops_on_sigterm() {
    let mut served = Served::start(
        "addr = \"127.0.0.1:0\"\nformat = \"walle-id\"\n[backend]\nkind = \"tcp\"\nworkers = 1\n\
         [server]\nmax_sessions = 8\n",
    );
    // A raw TCP peer first (no walle client under it), then the command.
    let mut frame = Vec::new();
    Protocol::new(WalleFormat::with_ids())
        .encode(
            &walle::packet::Head::request(Route::Id(1), 3),
            b"ping",
            &mut frame,
        )
        .unwrap();
    let mut stream = TcpStream::connect(&served.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(&frame).unwrap();
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).expect("an answer");
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    stream.read_exact(&mut body).unwrap();
    assert!(body.ends_with(b"ping"));

    let out = run(&[
        "call",
        &served.addr,
        "1",
        "hi",
        "--format",
        "walle-id",
        "--codec",
        "raw",
        "--backend",
        "tcp",
    ]);
    assert_eq!(text(&out.stdout), "hi\n", "{}", text(&out.stderr));

    assert!(served.terminate().success());
    assert!(served.line().starts_with("stopping: "));
}

#[test]
fn serve_refuses_a_bad_config_naming_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "addr = \"127.0.0.1:0\"\n\n[server]\nmax_sesions = 3\n",
    )
    .unwrap();
    let out = walle()
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("line 4") && err.contains("max_sesions"),
        "{err}"
    );
}

#[cfg(feature = "etcd")]
#[test]
fn a_served_node_registered_in_etcd_is_listed_by_discover() {
    let etcd = walle_kvstore::testing::Etcd::start_or_panic();
    let target = format!("etcd://{}/services/echo", etcd.address());
    let mut served = Served::start(&format!(
        "addr = \"127.0.0.1:0\"\n[register]\ntarget = \"{target}\"\nttl_secs = 5\n"
    ));
    let registered = served.line();
    assert!(registered.starts_with("registered "), "{registered}");
    let id = registered.split(' ').nth(1).expect("an id").to_owned();

    let out = run(&["discover", &target]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    let row = table
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("{id} not listed: {table}"));
    assert!(
        row.contains(&served.addr) && row.contains("online") && row.contains("tcp"),
        "{row}"
    );

    // Through discovery, the proxy reaches it.
    let out = run(&["call", &target, "echo", "via etcd", "--codec", "raw"]);
    assert_eq!(text(&out.stdout), "via etcd\n", "{}", text(&out.stderr));

    // Watched: the node's removal shows as a line when the server stops.
    let mut watch = walle()
        .args(["discover", &target, "--watch"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    let header = lines.next().unwrap().unwrap();
    assert!(header.starts_with("ID"), "{header}");
    assert!(lines.next().unwrap().unwrap().starts_with(&id));
    assert!(served.terminate().success());
    let change = lines.next().expect("a change").expect("a line");
    assert_eq!(change, format!("remove {id}"));
    let _ = watch.kill();
    let _ = watch.wait();
}

/// GETs `/metrics` from `addr` and parses it with the reference Python
/// client's parser: sample name with sorted labels -> value.
fn scrape(addr: &str) -> serde_json::Value {
    let mut stream = TcpStream::connect(addr).expect("connect to /metrics");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(stream, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("a response");
    let (head, body) = response.split_once("\r\n\r\n").expect("headers and body");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/prom_parse.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is needed: apt-get install python3 (scripts/test.sh installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert!(
        !err.contains("ModuleNotFoundError"),
        "the parser needs prometheus_client: python3 -m pip install prometheus-client \
         (scripts/test.sh installs it): {err}"
    );
    assert!(
        out.status.success(),
        "the parser refused the text: {err}\n{body}"
    );
    serde_json::from_slice(&out.stdout).expect("the parser's JSON")
}

#[test]
fn served_metrics_parse_and_count_requests() {
    let served = Served::start("addr = \"127.0.0.1:0\"\n[metrics]\naddr = \"127.0.0.1:0\"\n");
    let line = served.line();
    let metrics = line
        .strip_prefix("metrics on http://")
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("unexpected line: {line}"))
        .to_owned();
    let requests = |samples: &serde_json::Value| {
        samples["walle_requests_total{code=0,route=echo}"]
            .as_f64()
            .unwrap_or(0.0)
    };
    let before = scrape(&metrics);
    for n in 0..3 {
        let out = run(&[
            "call",
            &served.addr,
            "echo",
            &format!("{n}"),
            "--codec",
            "raw",
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let out = run(&["call", &served.addr, "nowhere", "x", "--codec", "raw"]);
    assert_eq!(out.status.code(), Some(1));
    let after = scrape(&metrics);
    assert_eq!(requests(&after) - requests(&before), 3.0, "{after}");
    assert_eq!(
        after["walle_requests_total{code=4,route=}"].as_f64(),
        Some(1.0),
        "{after}"
    );
    assert_eq!(
        after["__types__"]["walle_request_duration_seconds"], "histogram",
        "{after}"
    );
    assert_eq!(
        after["walle_request_duration_seconds_count{route=echo}"].as_f64(),
        Some(3.0),
        "{after}"
    );
    assert!(
        after["walle_connections_accepted_total{backend=evloop}"].as_f64() >= Some(4.0),
        "{after}"
    );
    assert!(
        after["walle_frame_bytes_in_total{}"].as_f64() > Some(0.0),
        "{after}"
    );
    assert!(
        after["walle_pool_reused{pool=outbound}"].as_f64() > Some(0.0),
        "{after}"
    );
    assert!(
        after["walle_pool_outstanding{pool=process}"].is_number(),
        "{after}"
    );
}

/// A CA and a server certificate it signed for `localhost`, PEM files in
/// `dir`.
fn pki(dir: &std::path::Path) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "walle cli test CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("cert.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
}

#[test]
fn served_tls_answers_a_tls_client_we_did_not_write_and_the_commands_client() {
    let dir = tempfile::tempdir().unwrap();
    pki(dir.path());
    let file = |name: &str| dir.path().join(name).display().to_string();
    let served = Served::start(&format!(
        "addr = \"127.0.0.1:0\"\nbackend = \"tcp\"\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        file("cert.pem"),
        file("key.pem")
    ));
    // Python's ssl module (OpenSSL) as the client.
    let mut frame = Vec::new();
    Protocol::new(WalleFormat::new())
        .encode(
            &walle::packet::Head::request(Route::Uri("echo"), 4),
            b"over tls",
            &mut frame,
        )
        .unwrap();
    let hex: String = frame.iter().map(|b| format!("{b:02x}")).collect();
    let port = served.addr.rsplit(':').next().unwrap().to_owned();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../net/tests/python/tls_client.py"
    );
    let out = Command::new("python3")
        .args([script, &port, &file("ca.pem"), &hex])
        .output()
        .expect("python3 is needed: apt-get install python3 (scripts/test.sh installs it)");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}{stdout}", text(&out.stderr));
    let body = stdout.trim().split(' ').nth(1).expect("a body");
    assert!(
        body.ends_with(
            &b"over tls"
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        ),
        "{stdout}"
    );

    // The command's own client, with the CA; without it, the plain-text
    // call is closed by the server.
    let ca = file("ca.pem");
    let out = run(&[
        "call",
        &served.addr,
        "echo",
        "hi",
        "--codec",
        "raw",
        "--backend",
        "tcp",
        "--tls-ca",
        &ca,
        "--tls-name",
        "localhost",
    ]);
    assert_eq!(text(&out.stdout), "hi\n", "{}", text(&out.stderr));
    let out = run(&[
        "call",
        &served.addr,
        "echo",
        "hi",
        "--codec",
        "raw",
        "--backend",
        "tcp",
        "--timeout",
        "2000",
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a plain-text call to a TLS server: {}",
        text(&out.stderr)
    );
}
