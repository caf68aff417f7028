//! A lossy UDP relay for kcp tests: it stands between one client and a
//! server and, both ways, drops a share of the datagrams and delays the
//! others by a random time (which reorders them). Deterministic: its
//! choices come from a seeded generator. It stops when dropped.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How the relay treats datagrams.
#[derive(Debug, Clone, Copy)]
pub struct Lossy {
    /// Share of datagrams dropped, each way (0.1: 10%).
    pub drop: f64,
    /// Least delay of a datagram.
    pub min_delay: Duration,
    /// Added random delay, up to this (datagrams overtake each other).
    pub jitter: Duration,
    pub seed: u64,
}

/// A running relay.
pub struct Relay {
    /// Where the client sends.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    /// The share dropped now, in millionths.
    share: Arc<AtomicU64>,
    pub dropped: Arc<AtomicU64>,
    pub passed: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A datagram waiting for its time: (when, order, to the server?, bytes).
type Held = Reverse<(Instant, u64, bool, Vec<u8>)>;

impl Relay {
    /// Drops `share` of the datagrams from now on (1.0: the link is cut).
    pub fn set_drop(&self, share: f64) {
        self.share.store((share * 1e6) as u64, Ordering::Relaxed);
    }

    /// A relay to `server` on a port of its own.
    pub fn start(server: SocketAddr, how: Lossy) -> Relay {
        let front = UdpSocket::bind("127.0.0.1:0").expect("relay front");
        let back = UdpSocket::bind("127.0.0.1:0").expect("relay back");
        back.connect(server).expect("relay connect");
        front.set_nonblocking(true).unwrap();
        back.set_nonblocking(true).unwrap();
        let addr = front.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let share = Arc::new(AtomicU64::new((how.drop * 1e6) as u64));
        let (dropped, passed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (s, d, p, sh) = (stop.clone(), dropped.clone(), passed.clone(), share.clone());
        let thread = std::thread::spawn(move || {
            let mut rng = Rng(how.seed | 1);
            let mut held: BinaryHeap<Held> = BinaryHeap::new();
            let mut client: Option<SocketAddr> = None;
            let mut buf = vec![0u8; 65536];
            let mut order = 0u64;
            while !s.load(Ordering::Relaxed) {
                let mut idle = true;
                let now = Instant::now();
                let drop_share = sh.load(Ordering::Relaxed) as f64 / 1e6;
                let mut hold = |to_server: bool, bytes: &[u8], rng: &mut Rng| {
                    if rng.unit() < drop_share {
                        d.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    let jitter = how.jitter.mul_f64(rng.unit());
                    order += 1;
                    held.push(Reverse((
                        now + how.min_delay + jitter,
                        order,
                        to_server,
                        bytes.to_vec(),
                    )));
                };
                while let Ok((n, from)) = front.recv_from(&mut buf) {
                    client = Some(from);
                    hold(true, &buf[..n], &mut rng);
                    idle = false;
                }
                while let Ok(n) = back.recv(&mut buf) {
                    hold(false, &buf[..n], &mut rng);
                    idle = false;
                }
                while held.peek().is_some_and(|Reverse((at, ..))| *at <= now) {
                    let Some(Reverse((_, _, to_server, bytes))) = held.pop() else {
                        break;
                    };
                    p.fetch_add(1, Ordering::Relaxed);
                    let _ = match (to_server, client) {
                        (true, _) => back.send(&bytes),
                        (false, Some(c)) => front.send_to(&bytes, c),
                        (false, None) => Ok(0),
                    };
                    idle = false;
                }
                if idle {
                    std::thread::sleep(Duration::from_micros(500));
                }
            }
        });
        Relay {
            addr,
            stop,
            share,
            dropped,
            passed,
            thread: Some(thread),
        }
    }
}
