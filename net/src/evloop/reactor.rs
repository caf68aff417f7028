//! One loop: a mio poll, a slab of sources (each a [`Driver`]), an inbox
//! of commands from other threads, one timer wheel. It knows no socket
//! type: drivers register their own sockets and the loop hands them their
//! events, timers and commands by key.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use mio::{Events, Poll, Token, Waker};
use slab::Slab;
use tracing::warn;
use walle_process::{CloseReason, TimerWheel};

use super::driver::{Ctx, Driver, Ready, Start, Timer, Turn};
use super::{CURRENT, Cmd, Key, LoopHandle, LoopShared, NEXT_LOOP};
use crate::options::{EvloopOptions, later};

const WAKER: Token = Token(usize::MAX);
/// Resolution of the timers.
const TICK: Duration = Duration::from_millis(10);

/// A source in the slab; `generation` tells it from the sources that held
/// its token before.
struct Entry {
    generation: u64,
    driver: Box<dyn Driver>,
}

pub(crate) struct Reactor {
    sources: Slab<Entry>,
    generation: u64,
    parts: Parts,
    fired: Vec<Timer>,
    events: usize,
    cmds: Vec<Cmd>,
    busy_poll: Duration,
}

/// What the loop lends a driver beside its slab entry (see [`Ctx`]).
struct Parts {
    handle: LoopHandle,
    poll: Poll,
    wheel: TimerWheel<Timer>,
    scratch: Box<[u8]>,
    spare: Vec<BytesMut>,
    stopping: Option<Instant>,
    /// Sources that asked to read again, after the others had their turn.
    again: Vec<Key>,
    /// Sources added by drivers, to start once their call returns.
    added: VecDeque<Start>,
}

impl Parts {
    /// The context of the source at `key`.
    fn cx(&mut self, key: Key, now: Instant) -> Ctx<'_> {
        Ctx {
            key,
            now,
            stopping: self.stopping.is_some(),
            registry: self.poll.registry(),
            handle: &self.handle,
            scratch: &mut self.scratch,
            wheel: &mut self.wheel,
            spare: &mut self.spare,
            again: &mut self.again,
            added: &mut self.added,
        }
    }
}

impl Reactor {
    pub(crate) fn new(opts: &EvloopOptions) -> io::Result<(Reactor, LoopHandle)> {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        let epoch = Instant::now();
        let handle = LoopHandle(Arc::new(LoopShared {
            id: NEXT_LOOP.fetch_add(1, Ordering::Relaxed),
            waker,
            inbox: Mutex::new(Vec::with_capacity(256)),
            asleep: AtomicBool::new(false),
            conns: AtomicUsize::new(0),
            held: AtomicUsize::new(0),
            spare_bytes: AtomicUsize::new(0),
            epoch,
        }));
        let reactor = Reactor {
            sources: Slab::new(),
            generation: 0,
            parts: Parts {
                handle: handle.clone(),
                poll,
                wheel: TimerWheel::new(epoch, TICK),
                scratch: vec![0u8; opts.read_chunk.max(4096)].into_boxed_slice(),
                spare: Vec::new(),
                stopping: None,
                again: Vec::new(),
                added: VecDeque::new(),
            },
            fired: Vec::new(),
            events: opts.events.max(64),
            cmds: Vec::with_capacity(256),
            busy_poll: opts.busy_poll,
        };
        Ok((reactor, handle))
    }

    pub(crate) fn run(mut self) {
        CURRENT.with(|c| c.set(self.parts.handle.0.id));
        let mut events = Events::with_capacity(self.events);
        // Until when to poll without sleeping, after the last busy turn.
        let mut spin_until: Option<Instant> = None;
        // Why the sources left standing at the end close.
        let mut end = CloseReason::Stopped;
        loop {
            let timeout = if !self.parts.again.is_empty() {
                Some(Duration::ZERO)
            } else if spin_until.is_some_and(|until| Instant::now() < until) {
                if events.is_empty() {
                    // Nothing came in the last turn: let whatever else
                    // wants this core run before looking again.
                    std::thread::yield_now();
                }
                Some(Duration::ZERO)
            } else if !self.parts.wheel.is_empty() || self.parts.stopping.is_some() {
                Some(TICK)
            } else {
                None
            };
            // A poll that may block is announced first (commands from
            // other threads then wake it), unless commands came meanwhile.
            let blocks = timeout != Some(Duration::ZERO) && !self.parts.handle.0.going_to_sleep();
            let timeout = if blocks {
                timeout
            } else {
                Some(Duration::ZERO)
            };
            let polled = self.parts.poll.poll(&mut events, timeout);
            if blocks {
                self.parts.handle.0.woke();
            }
            if let Err(e) = polled {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                warn!(error = %e, "reactor poll failed");
                end = CloseReason::io(e);
                break;
            }
            let now = Instant::now();
            if !events.is_empty() && !self.busy_poll.is_zero() {
                spin_until = Some(later(now, self.busy_poll));
            }
            for event in events.iter() {
                let Token(token) = event.token();
                let Some(entry) = self.sources.get(token) else {
                    continue; // the waker, or a source gone since
                };
                let key = Key {
                    token,
                    generation: entry.generation,
                };
                let ready = Ready {
                    readable: event.is_readable(),
                    writable: event.is_writable(),
                    drain: event.is_read_closed() || event.is_error(),
                };
                self.turn(key, now, |driver, cx| driver.ready(cx, ready));
            }
            let pending = self.parts.again.len();
            for i in 0..pending {
                let key = self.parts.again[i];
                self.turn(key, now, |driver, cx| driver.ready(cx, Ready::AGAIN));
            }
            self.parts.again.drain(..pending);
            self.drain_inbox(now);
            self.expire(now);
            // Timer callbacks may have queued work (a send's flush) for
            // this very reactor, which no waker announces.
            self.drain_inbox(now);
            if let Some(deadline) = self.parts.stopping {
                if self.sources.is_empty() || now >= deadline {
                    break;
                }
            }
        }
        let now = Instant::now();
        for key in self.keys() {
            self.remove(key, now, end.clone());
        }
    }

    /// The keys of every source.
    fn keys(&self) -> Vec<Key> {
        self.sources
            .iter()
            .map(|(token, entry)| Key {
                token,
                generation: entry.generation,
            })
            .collect()
    }

    /// True while the source at `key` is in the loop.
    fn is_live(&self, key: Key) -> bool {
        self.sources
            .get(key.token)
            .is_some_and(|e| e.generation == key.generation)
    }

    /// Calls the driver at `key`, if it is still there, with its context;
    /// removes it if it ends, and starts what it added.
    fn turn(
        &mut self,
        key: Key,
        now: Instant,
        call: impl FnOnce(&mut dyn Driver, &mut Ctx<'_>) -> Turn,
    ) {
        let Some(entry) = self
            .sources
            .get_mut(key.token)
            .filter(|e| e.generation == key.generation)
        else {
            return;
        };
        let mut cx = self.parts.cx(key, now);
        if let Err(reason) = call(&mut *entry.driver, &mut cx) {
            self.remove(key, now, reason);
        }
        if !self.parts.added.is_empty() {
            self.start_added(now);
        }
    }

    /// Takes the source at `key` out of the loop and tells its driver why.
    fn remove(&mut self, key: Key, now: Instant, reason: CloseReason) {
        if !self.is_live(key) {
            return;
        }
        let entry = self.sources.remove(key.token);
        let mut cx = self.parts.cx(key, now);
        entry.driver.closed(&mut cx, reason);
    }

    /// Gives a new source a key and starts it; a stopping loop drops it.
    fn start(&mut self, start: Start, now: Instant) {
        if self.parts.stopping.is_some() {
            return;
        }
        self.generation += 1;
        let key = Key {
            token: self.sources.vacant_key(),
            generation: self.generation,
        };
        let mut cx = self.parts.cx(key, now);
        if let Some(driver) = start(&mut cx) {
            self.sources.insert(Entry {
                generation: key.generation,
                driver,
            });
        }
    }

    fn start_added(&mut self, now: Instant) {
        while let Some(start) = self.parts.added.pop_front() {
            self.start(start, now);
        }
    }

    fn drain_inbox(&mut self, now: Instant) {
        loop {
            let mut cmds = std::mem::take(&mut self.cmds);
            {
                let mut inbox = self
                    .parts
                    .handle
                    .0
                    .inbox
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                if inbox.is_empty() {
                    self.cmds = cmds;
                    return;
                }
                std::mem::swap(&mut *inbox, &mut cmds);
            }
            for cmd in cmds.drain(..) {
                self.handle_cmd(cmd, now);
            }
            self.cmds = cmds;
        }
    }

    fn handle_cmd(&mut self, cmd: Cmd, now: Instant) {
        match cmd {
            Cmd::Add(start) => {
                self.start(start, now);
                self.start_added(now);
            }
            Cmd::Source { key, sub, op } => {
                self.turn(key, now, |driver, cx| driver.command(cx, op, sub));
            }
            Cmd::Stop(deadline) => {
                self.parts.stopping = Some(deadline);
                for key in self.keys() {
                    self.turn(key, now, |driver, cx| driver.stop(cx));
                }
            }
        }
    }

    fn expire(&mut self, now: Instant) {
        let mut fired = std::mem::take(&mut self.fired);
        self.parts.wheel.expire(now, |t| fired.push(t));
        for timer in fired.drain(..) {
            self.turn(timer.key, now, |driver, cx| {
                driver.timer(cx, timer.kind, timer.sub)
            });
        }
        self.fired = fired;
    }
}
