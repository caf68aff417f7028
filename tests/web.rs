//! The browser client (`examples/web/`) in headless Chromium against the
//! `echo_server` example with `--backend ws`: the test serves the page
//! over HTTP on 127.0.0.1, Chromium runs its checks against the server
//! over WebSocket, and the page POSTs its verdict back to the test.
//!
//! Needs Chromium (Debian package `chromium`, /usr/bin/chromium;
//! scripts/test.sh installs it where missing): without it the test fails
//! saying so.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const CHROMIUM: &str = "/usr/bin/chromium";
const BOUND: Duration = Duration::from_secs(60);

/// A child process killed (by its id) when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The echo server example on a free port, speaking ws; its address.
fn echo_server() -> (Running, String) {
    let mut child = Command::new(support::example("echo_server"))
        .args(["--backend", "ws", "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the echo_server example");
    let out = child.stdout.take().expect("its output");
    let mut line = String::new();
    BufReader::new(out)
        .read_line(&mut line)
        .expect("its first line");
    let addr = line
        .split("listening on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    (Running(child), addr)
}

/// Reads one HTTP request: its request line and body.
fn read_request(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut start = String::new();
    reader.read_line(&mut start).ok()?;
    let mut length = 0;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    Some((start, body))
}

fn respond(stream: &mut TcpStream, status: &str, kind: &str, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
}

/// Serves `dir`'s page and script; each POST's body goes to `verdicts`.
fn serve_page(dir: PathBuf, listener: TcpListener, verdicts: mpsc::Sender<String>) {
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let _ = stream.set_read_timeout(Some(BOUND));
        let Some((start, body)) = read_request(&mut stream) else {
            continue;
        };
        let path = start.split_whitespace().nth(1).unwrap_or("/");
        let path = path.split('?').next().unwrap_or("/");
        if start.starts_with("POST") {
            respond(&mut stream, "204 No Content", "text/plain", b"");
            let _ = verdicts.send(String::from_utf8_lossy(&body).into_owned());
            continue;
        }
        let (file, kind) = match path {
            "/" | "/index.html" => ("index.html", "text/html; charset=utf-8"),
            "/walle.js" => ("walle.js", "text/javascript; charset=utf-8"),
            _ => {
                respond(&mut stream, "404 Not Found", "text/plain", b"not here");
                continue;
            }
        };
        let content = std::fs::read(dir.join(file)).expect("the page's files");
        respond(&mut stream, "200 OK", kind, &content);
    }
}

#[test]
fn the_browser_client_talks_walle_over_websocket_to_the_echo_server() {
    assert!(
        Path::new(CHROMIUM).is_file(),
        "headless Chromium is needed at {CHROMIUM}: apt-get install chromium \
         (scripts/test.sh installs it)"
    );
    let (_server, addr) = echo_server();
    let web = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/web");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let http = listener.local_addr().unwrap();
    let (tx, verdicts) = mpsc::channel();
    std::thread::spawn(move || serve_page(web, listener, tx));

    let profile = std::env::temp_dir().join(format!("walle-chromium-{}", std::process::id()));
    let page = format!("http://{http}/index.html?ws=ws://{addr}/&report=/verdict");
    let browser = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(&page)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {CHROMIUM}: {e}"));
    let browser = Running(browser);
    let verdict = verdicts.recv_timeout(BOUND);
    drop(browser);
    let _ = std::fs::remove_dir_all(&profile);
    let verdict = verdict.expect("the page reported its verdict");
    assert!(
        verdict.contains(r#""ok":true"#),
        "the page's checks: {verdict}"
    );
    assert!(verdict.contains("50 calls at once"), "{verdict}");
}
