//! A throwaway etcd for tests and benchmarks (feature `etcd-harness`).
//!
//! [`Etcd::start`] runs Debian's `etcd` binary (package `etcd-server`) on
//! two free loopback ports with a temporary data directory, waits until it
//! answers `/health`, and kills it when dropped. [`stop`](Etcd::stop) and
//! [`restart`](Etcd::restart) keep the ports and the data;
//! [`pause`](Etcd::pause) and [`resume`](Etcd::resume) send SIGSTOP and
//! SIGCONT, for fault tests.
//!
//! The binary is `$WALLE_ETCD` if set, else `etcd` on the `PATH`, else
//! `/usr/bin/etcd`. When it is missing, [`Etcd::start`] fails with an error
//! that says to `apt-get install etcd-server etcd-client`: a test that
//! needs etcd fails, it is never skipped.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let etcd = walle_kvstore::testing::Etcd::start()?;
//! println!("etcd at {}", etcd.endpoint()); // http://127.0.0.1:<port>
//! # Ok(()) }
//! ```

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// How long etcd may take to answer after it is started.
const READY_WITHIN: Duration = Duration::from_secs(20);

/// Why the harness could not run etcd.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HarnessError {
    /// No etcd binary.
    #[error(
        "the etcd binary was not found ({0}); install it with \
         `apt-get install etcd-server etcd-client` (or set WALLE_ETCD)"
    )]
    Missing(String),
    /// The binary or the data directory could not be set up.
    #[error("starting etcd: {0}")]
    Io(#[from] std::io::Error),
    /// etcd exited or did not answer in time; `log` is the end of its log.
    #[error("etcd is not ready: {reason}; its log ends with:\n{log}")]
    NotReady {
        /// What went wrong.
        reason: String,
        /// The last lines etcd wrote.
        log: String,
    },
    /// A signal could not be sent.
    #[error("signalling etcd: {0}")]
    Signal(#[from] nix::Error),
}

/// A running etcd on loopback, killed when dropped.
#[derive(Debug)]
pub struct Etcd {
    binary: PathBuf,
    dir: tempfile::TempDir,
    client_port: u16,
    peer_port: u16,
    child: Option<Child>,
}

impl Etcd {
    /// Starts an etcd on free loopback ports and waits until it answers.
    pub fn start() -> Result<Etcd, HarnessError> {
        Etcd::start_binary(find_binary()?)
    }

    /// Like [`start`](Etcd::start), with the etcd binary at `binary`.
    pub fn start_binary(binary: impl Into<PathBuf>) -> Result<Etcd, HarnessError> {
        let binary = binary.into();
        if !binary.is_file() {
            return Err(HarnessError::Missing(binary.display().to_string()));
        }
        let mut last = None;
        // A port found free may be taken before etcd binds it: try again.
        for _ in 0..3 {
            let mut etcd = Etcd {
                binary: binary.clone(),
                dir: tempfile::Builder::new().prefix("walle-etcd-").tempdir()?,
                client_port: free_port()?,
                peer_port: free_port()?,
                child: None,
            };
            match etcd.spawn() {
                Ok(()) => return Ok(etcd),
                Err(error) => last = Some(error),
            }
        }
        Err(last.unwrap_or_else(|| HarnessError::Missing(binary.display().to_string())))
    }

    /// [`Etcd::start`] for tests: panics with the reason, which says how to
    /// install etcd when it is missing, so that the test fails.
    #[track_caller]
    pub fn start_or_panic() -> Etcd {
        match Etcd::start() {
            Ok(etcd) => etcd,
            Err(error) => panic!("{error}"),
        }
    }

    /// The client URL, `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address())
    }

    /// The client address, `127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    /// The process id while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills etcd (SIGKILL) and waits for it; the data directory stays.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts etcd again on the same ports and data directory.
    pub fn restart(&mut self) -> Result<(), HarnessError> {
        self.stop();
        self.spawn()
    }

    /// Freezes etcd (SIGSTOP): it keeps its sockets but answers nothing.
    pub fn pause(&self) -> Result<(), HarnessError> {
        self.signal(Signal::SIGSTOP)
    }

    /// Lets a paused etcd go on (SIGCONT).
    pub fn resume(&self) -> Result<(), HarnessError> {
        self.signal(Signal::SIGCONT)
    }

    fn signal(&self, signal: Signal) -> Result<(), HarnessError> {
        let pid = self.pid().and_then(|pid| i32::try_from(pid).ok());
        let pid = pid.ok_or_else(|| not_ready("etcd is not running", &self.log_path()))?;
        Ok(kill(Pid::from_raw(pid), signal)?)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("etcd.log")
    }

    fn spawn(&mut self) -> Result<(), HarnessError> {
        let (client, peer) = (
            format!("http://127.0.0.1:{}", self.client_port),
            format!("http://127.0.0.1:{}", self.peer_port),
        );
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        let child = Command::new(&self.binary)
            .args(["--name", "walle-test"])
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("walle-test={peer}")])
            .args(["--initial-cluster-state", "new"])
            .args(["--logger", "zap", "--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<(), HarnessError> {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    let reason = format!("etcd exited with {status}");
                    return Err(not_ready(&reason, &self.log_path()));
                }
            }
            if healthy(self.client_port) {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.stop();
                let reason = format!("no answer within {READY_WITHIN:?}");
                return Err(not_ready(&reason, &self.log_path()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.stop();
    }
}

fn find_binary() -> Result<PathBuf, HarnessError> {
    if let Some(path) = std::env::var_os("WALLE_ETCD") {
        let path = PathBuf::from(path);
        return match path.is_file() {
            true => Ok(path),
            false => Err(HarnessError::Missing(format!(
                "WALLE_ETCD={}",
                path.display()
            ))),
        };
    }
    let on_path = std::env::var_os("PATH").into_iter().flat_map(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("etcd"))
            .collect::<Vec<_>>()
    });
    on_path
        .chain([PathBuf::from("/usr/bin/etcd")])
        .find(|path| path.is_file())
        .ok_or_else(|| HarnessError::Missing("not on PATH nor at /usr/bin/etcd".to_owned()))
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// Whether etcd answers `GET /health` with a healthy status.
fn healthy(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let request = "GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    let mut answer = String::new();
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_to_string(&mut answer).is_ok()
        && answer.contains("\"health\":\"true\"")
}

fn not_ready(reason: &str, log: &Path) -> HarnessError {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(20)..].join("\n");
    HarnessError::NotReady {
        reason: reason.to_owned(),
        log: tail,
    }
}
