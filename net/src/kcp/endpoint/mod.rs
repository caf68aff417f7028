//! The session table of one UDP socket, in the shape of quinn-proto's
//! endpoint: datagrams in ([`KcpEndpoint::handle`]), events, datagrams
//! out ([`KcpEndpoint::poll_transmit`]) and per-session deadlines
//! ([`KcpEndpoint::poll_timeout`], [`KcpEndpoint::handle_timeout`]), with
//! time passed in: no socket, no clock.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use slab::Slab;
use walle_packet::FrameDecoder;
use walle_process::CloseReason;

use super::segment::{self, Bad};
use super::session::{Phase, Session};
use super::wire::{Sent, Transmits};
use super::{Counters, Role, SessionId};
use crate::options::KcpOptions;

mod life;
mod read;

/// How long an ended session stays to acknowledge what its peer sends
/// again (its last acks may be lost).
const LINGER: Duration = Duration::from_secs(2);
/// How long a close waits for the end of its stream to be acknowledged,
/// once all before it was: the data is through, and a peer that missed
/// the end sees it by its own timeouts.
const FIN_GRACE: Duration = Duration::from_millis(500);
/// Idle read buffers kept for reuse.
const SPARE: usize = 64;

/// What an endpoint is set up with.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) kcp: KcpOptions,
    /// Close a session whose stream is silent this long.
    pub(crate) silence: Option<Duration>,
    /// How long a local close flushes.
    pub(crate) close_flush: Duration,
}

/// What happened, for the driver.
#[derive(Debug)]
pub(crate) enum Event<T> {
    /// A session began: on a server, a peer's first datagram; on a client,
    /// the server's first answer. Accept it or close it.
    Opened(SessionId, SocketAddr),
    /// A frame body arrived on the session.
    Frame(SessionId, Bytes),
    /// The session ended, with its driver state if it was accepted.
    Closed(CloseReason, Option<T>),
}

/// The sessions of one socket.
pub(crate) struct KcpEndpoint<T> {
    config: Config,
    role: Role,
    epoch: Instant,
    sessions: Slab<Session<T>>,
    /// Generation of each slab entry, for ids.
    generations: Vec<u32>,
    by_key: HashMap<(SocketAddr, u32), usize>,
    events: VecDeque<Event<T>>,
    transmits: Transmits,
    touched: Vec<SessionId>,
    counters: Arc<Counters>,
    /// New-session tokens (a bucket refilled at the configured rate).
    tokens: f64,
    refilled: Instant,
    stopping: bool,
    spare: Vec<BytesMut>,
    pack: Vec<u8>,
    discard: Vec<u8>,
}

impl<T> KcpEndpoint<T> {
    pub(crate) fn new(config: Config, role: Role, counters: Arc<Counters>, now: Instant) -> Self {
        let tokens = f64::from(config.kcp.new_sessions_per_sec.max(1));
        KcpEndpoint {
            config,
            role,
            epoch: now,
            sessions: Slab::new(),
            generations: Vec::new(),
            by_key: HashMap::new(),
            events: VecDeque::new(),
            transmits: Transmits::default(),
            touched: Vec::new(),
            counters,
            tokens,
            refilled: now,
            stopping: false,
            spare: Vec::new(),
            pack: Vec::new(),
            discard: Vec::new(),
        }
    }

    /// The KCP clock: milliseconds since the endpoint began, wrapping as
    /// the reference implementation's does.
    fn ms(&self, now: Instant) -> u32 {
        now.saturating_duration_since(self.epoch).as_millis() as u32
    }

    fn get(&self, id: SessionId) -> Option<&Session<T>> {
        let (index, generation) = id.parts();
        (self.generations.get(index) == Some(&generation))
            .then(|| self.sessions.get(index))
            .flatten()
    }

    fn get_mut(&mut self, id: SessionId) -> Option<&mut Session<T>> {
        let index = self.index(id)?;
        self.sessions.get_mut(index)
    }

    /// The slab index of session `id`, if it is still there.
    fn index(&self, id: SessionId) -> Option<usize> {
        let (index, generation) = id.parts();
        (self.generations.get(index) == Some(&generation) && self.sessions.contains(index))
            .then_some(index)
    }

    fn id_of(&self, index: usize) -> SessionId {
        SessionId::new(index, self.generations[index])
    }

    /// Sessions in the table (lingering ones too).
    pub(crate) fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Sessions open or closing: what a stopping driver waits for.
    pub(crate) fn live(&self) -> usize {
        let lingering = |s: &Session<T>| matches!(s.phase, Phase::Lingering { .. });
        self.sessions.iter().filter(|(_, s)| !lingering(s)).count()
    }

    /// The driver state of session `id`.
    pub(crate) fn app(&self, id: SessionId) -> Option<&T> {
        self.get(id).and_then(|s| s.app.as_ref())
    }

    fn insert(&mut self, now: Instant, peer: SocketAddr, conv: u32) -> SessionId {
        let index = self
            .sessions
            .insert(Session::new(peer, conv, &self.config.kcp, now));
        if self.generations.len() <= index {
            self.generations.resize(index + 1, 0);
        }
        self.generations[index] = self.generations[index].wrapping_add(1);
        self.by_key.insert((peer, conv), index);
        self.counters.opened();
        self.counters.set_sessions(self.sessions.len());
        self.id_of(index)
    }

    fn remove(&mut self, id: SessionId) {
        let (index, _) = id.parts();
        if self.get(id).is_none() {
            return;
        }
        let session = self.sessions.remove(index);
        self.by_key.remove(&(session.peer, session.conv));
        if let Some(buf) = session.inbound {
            self.give_back(buf);
        }
        self.counters.set_sessions(self.sessions.len());
    }

    fn give_back(&mut self, mut buf: BytesMut) {
        if self.spare.len() < SPARE {
            buf.clear();
            self.spare.push(buf);
        }
    }

    fn touch(&mut self, id: SessionId) {
        if let Some(s) = self.get_mut(id) {
            if !s.touched {
                s.touched = true;
                self.touched.push(id);
            }
        }
    }

    /// A client's session to `peer` with conversation `conv`: its hello
    /// (an empty message) is queued at once.
    pub(crate) fn connect(&mut self, now: Instant, peer: SocketAddr, conv: u32) -> SessionId {
        let id = self.insert(now, peer, conv);
        if let Some(s) = self.get_mut(id) {
            let _ = s.kcp.send(&[]);
        }
        self.flush(now, id, None);
        id
    }

    /// Takes a new session over, the driver's state set; frames it has
    /// already received are cut with `decoder` and reported.
    pub(crate) fn accept(&mut self, now: Instant, id: SessionId, decoder: FrameDecoder, app: T) {
        if let Some(s) = self.get_mut(id) {
            s.decoder = Some(decoder);
            s.app = Some(app);
            self.read(now, id);
        }
    }

    /// Begins a new-session token's refill up to now; takes one if any.
    fn take_token(&mut self, now: Instant) -> bool {
        let rate = f64::from(self.config.kcp.new_sessions_per_sec.max(1));
        let passed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.refilled = now.max(self.refilled);
        self.tokens = (self.tokens + passed * rate).min(rate);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// A datagram from `peer`: checked whole, then fed to its session (a
    /// new one on a server, within the bounds). Returns the session fed.
    pub(crate) fn handle(
        &mut self,
        now: Instant,
        peer: SocketAddr,
        datagram: &[u8],
    ) -> Option<SessionId> {
        let head = match segment::check(datagram) {
            Ok(head) => head,
            Err(bad) => {
                self.counters.bad(bad);
                return None;
            }
        };
        let id = match self.by_key.get(&(peer, head.conv)) {
            Some(&index) => self.id_of(index),
            None => self.open(now, peer, head)?,
        };
        let ms = self.ms(now);
        let index = self.index(id)?;
        let s = &mut self.sessions[index];
        let _ = s.kcp.update(ms); // its clock, for the RTT of acks
        // What that update flushed is this session's: queued for its peer
        // before any other state writes.
        self.transmits.take_written(s.peer);
        if s.kcp.input(datagram).is_err() {
            self.counters.bad(Bad::Length);
            return None;
        }
        if self.role == Role::Client && !s.proven {
            s.proven = true;
            self.events.push_back(Event::Opened(id, peer));
        }
        self.touch(id);
        self.read(now, id);
        Some(id)
    }

    /// A session for a datagram no session takes, if it may open one.
    fn open(&mut self, now: Instant, peer: SocketAddr, head: segment::Head) -> Option<SessionId> {
        if self.role == Role::Client || !head.opens || self.stopping {
            self.counters.stray();
            return None;
        }
        if self.sessions.len() >= self.config.kcp.max_sessions.max(1) {
            self.counters.over_limit();
            return None;
        }
        if !self.take_token(now) {
            self.counters.over_rate();
            return None;
        }
        let id = self.insert(now, peer, head.conv);
        self.events.push_back(Event::Opened(id, peer));
        Some(id)
    }

    /// Sessions to flush since the last call (fed, closed, opened).
    pub(crate) fn poll_touched(&mut self) -> Option<SessionId> {
        let id = self.touched.pop()?;
        if let Some(s) = self.get_mut(id) {
            s.touched = false;
        }
        Some(id)
    }

    /// The sessions the driver accepted and that have not ended.
    pub(crate) fn accepted(&self) -> Vec<SessionId> {
        let ids = self.sessions.iter().filter(|(_, s)| s.app.is_some());
        ids.map(|(index, _)| self.id_of(index)).collect()
    }

    /// Takes the driver state of every session (the source is ending).
    pub(crate) fn take_apps(&mut self) -> Vec<(SessionId, T)> {
        let mut apps = Vec::new();
        for (index, s) in &mut self.sessions {
            if let Some(app) = s.app.take() {
                apps.push((SessionId::new(index, self.generations[index]), app));
            }
        }
        apps
    }

    #[cfg(test)]
    pub(crate) fn config_mut(&mut self) -> &mut Config {
        &mut self.config
    }

    /// The next event.
    pub(crate) fn poll_event(&mut self) -> Option<Event<T>> {
        self.events.pop_front()
    }

    /// Hands `send` the datagrams waiting, oldest first (see
    /// [`Transmits::poll_transmit`]); `false` when the socket blocked.
    pub(crate) fn poll_transmit(&mut self, send: impl FnMut(SocketAddr, &[u8]) -> Sent) -> bool {
        let sent = self.transmits.poll_transmit(send);
        self.counters.set_unsent(self.transmits.dropped);
        sent
    }
}
