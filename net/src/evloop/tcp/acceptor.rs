//! The acceptor thread: one listener, new connections spread over the
//! reactors, each handed over ready to start there.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use tracing::{debug, warn};

use super::{bind, connection};
use crate::conn::Attach;
use crate::evloop::{Cmd, Feed, LoopHandle};
use crate::options::{Balance, ConnOptions};

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);

pub(crate) struct Acceptor {
    local: SocketAddr,
    waker: Arc<Waker>,
    stopping: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Acceptor {
    pub(crate) fn start(
        addr: SocketAddr,
        balance: Balance,
        loops: Vec<LoopHandle>,
        attach: Attach,
        conn: Arc<ConnOptions>,
        tls: super::Tls,
    ) -> io::Result<Acceptor> {
        let mut listener = bind(addr, false)?;
        let local = listener.local_addr()?;
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let stopping = Arc::new(AtomicBool::new(false));
        let stop = stopping.clone();
        let thread = std::thread::Builder::new()
            .name("walle-acceptor".into())
            .spawn(move || accept_loop(poll, listener, balance, loops, attach, conn, tls, stop))?;
        Ok(Acceptor {
            local,
            waker,
            stopping,
            thread: Mutex::new(Some(thread)),
        })
    }

    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

impl Feed for Acceptor {
    /// Stops accepting and closes the listener.
    fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        let _ = self.waker.wake();
        if let Some(thread) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = thread.join();
        }
    }
}

fn pick(balance: Balance, loops: &[LoopHandle], turn: &mut usize, peer: &SocketAddr) -> usize {
    match balance {
        Balance::RoundRobin => {
            *turn = turn.wrapping_add(1);
            *turn % loops.len()
        }
        Balance::LeastConnections => (0..loops.len())
            .min_by_key(|&i| loops[i].conns())
            .unwrap_or(0),
        Balance::SourceHash => {
            let mut hasher = DefaultHasher::new();
            peer.ip().hash(&mut hasher);
            (hasher.finish() % loops.len() as u64) as usize
        }
    }
}

#[allow(clippy::too_many_arguments)] // the thread's whole setup, moved in once
fn accept_loop(
    mut poll: Poll,
    listener: TcpListener,
    balance: Balance,
    loops: Vec<LoopHandle>,
    attach: Attach,
    conn: Arc<ConnOptions>,
    tls: super::Tls,
    stopping: Arc<AtomicBool>,
) {
    let mut events = Events::with_capacity(64);
    let mut turn = 0usize;
    while !stopping.load(Ordering::Acquire) {
        // A timeout too: after an accept error (out of descriptors), the
        // backlog is tried again without waiting for a new connection.
        if let Err(e) = poll.poll(&mut events, Some(std::time::Duration::from_millis(100))) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            warn!(error = %e, "acceptor poll failed");
            return;
        }
        loop {
            match listener.accept() {
                Ok((stream, peer)) => {
                    let i = pick(balance, &loops, &mut turn, &peer);
                    let start = connection(stream, peer, attach.clone(), conn.clone(), &tls);
                    loops[i].send(Cmd::Add(start));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Out of descriptors and the like: log and keep serving
                    // the connections already open.
                    debug!(error = %e, "accept failed");
                    break;
                }
            }
        }
    }
}
