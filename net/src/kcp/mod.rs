//! KCP, sans io: the session table of a UDP socket ([`KcpEndpoint`]),
//! each session a `kcp::Kcp` state carrying the same length-prefixed
//! frames as tcp as one byte stream. Datagrams and time go in, frames,
//! datagrams and deadlines come out; the event loop's driver
//! (`evloop::kcp`) owns the socket and the timers.
//!
//! - `segment`: the 24-byte header of skywind3000's ikcp, checked whole
//!   before a KCP state sees a datagram (bad ones are dropped and counted).
//! - `wire`: where the states' datagrams go, and the queue to the socket.
//! - `session`: one session, its stream conventions (the client's hello,
//!   the end of a stream) and the packing of queued bytes into segments.
//! - `endpoint`: the table: sessions keyed by (peer address, conv), the
//!   bounds against floods (a table size, a new-session rate, a short life
//!   for a session that proved nothing), close and linger.

mod endpoint;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
mod segment;
mod session;
#[cfg(test)]
mod tests;
mod wire;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

pub(crate) use endpoint::{Config, Event, KcpEndpoint};
pub(crate) use wire::Sent;

/// Which end of its sessions an endpoint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Takes a peer's first datagram of a new conv as a new session.
    Server,
    /// Dials its sessions, each with a conv of its own choice.
    Client,
}

/// A session of an endpoint: its slab index and a generation that tells
/// it from the sessions that held the index before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SessionId(pub(crate) u64);

impl SessionId {
    fn new(index: usize, generation: u32) -> Self {
        SessionId((u64::from(generation) << 32) | index as u64)
    }

    fn parts(self) -> (usize, u32) {
        ((self.0 & 0xffff_ffff) as usize, (self.0 >> 32) as u32)
    }
}

/// Counters of the kcp backend's endpoints: what was dropped before a
/// session saw it, and the session table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KcpStats {
    /// Sessions in the tables now (lingering ones included).
    pub sessions: usize,
    /// Sessions opened since the start.
    pub opened: u64,
    /// Datagrams dropped as shorter than a KCP header (or with a tail
    /// shorter than one).
    pub short: u64,
    /// Datagrams dropped for an unknown command.
    pub bad_command: u64,
    /// Datagrams dropped for inconsistent lengths, mixed convs or
    /// impossible fragment counts.
    pub bad_length: u64,
    /// Datagrams dropped as of no session and opening none.
    pub stray: u64,
    /// Datagrams dropped that would have opened a session past the
    /// table's bound.
    pub over_limit: u64,
    /// Datagrams dropped that would have opened a session past the
    /// new-session rate.
    pub over_rate: u64,
    /// Sessions ended by a dead link.
    pub dead_links: u64,
    /// Datagrams dropped because the queue to the socket was full.
    pub unsent: u64,
}

impl KcpStats {
    /// Datagrams dropped before reaching a session, for any reason.
    pub fn dropped(&self) -> u64 {
        self.short
            + self.bad_command
            + self.bad_length
            + self.stray
            + self.over_limit
            + self.over_rate
    }

    pub(crate) fn add(&mut self, other: &KcpStats) {
        self.sessions += other.sessions;
        self.opened += other.opened;
        self.short += other.short;
        self.bad_command += other.bad_command;
        self.bad_length += other.bad_length;
        self.stray += other.stray;
        self.over_limit += other.over_limit;
        self.over_rate += other.over_rate;
        self.dead_links += other.dead_links;
        self.unsent += other.unsent;
    }
}

/// [`KcpStats`] of one endpoint, kept where other threads read them.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    sessions: AtomicUsize,
    opened: AtomicU64,
    short: AtomicU64,
    bad_command: AtomicU64,
    bad_length: AtomicU64,
    stray: AtomicU64,
    over_limit: AtomicU64,
    over_rate: AtomicU64,
    dead_links: AtomicU64,
    unsent: AtomicU64,
}

impl Counters {
    fn bad(&self, bad: segment::Bad) {
        let counter = match bad {
            segment::Bad::Short => &self.short,
            segment::Bad::Command => &self.bad_command,
            segment::Bad::Length => &self.bad_length,
        };
        counter.fetch_add(1, Relaxed);
    }
    fn stray(&self) {
        self.stray.fetch_add(1, Relaxed);
    }
    fn over_limit(&self) {
        self.over_limit.fetch_add(1, Relaxed);
    }
    fn over_rate(&self) {
        self.over_rate.fetch_add(1, Relaxed);
    }
    fn opened(&self) {
        self.opened.fetch_add(1, Relaxed);
    }
    fn dead_link(&self) {
        self.dead_links.fetch_add(1, Relaxed);
    }
    fn set_sessions(&self, n: usize) {
        self.sessions.store(n, Relaxed);
    }
    fn set_unsent(&self, n: u64) {
        self.unsent.store(n, Relaxed);
    }

    /// The counters now.
    pub(crate) fn snapshot(&self) -> KcpStats {
        KcpStats {
            sessions: self.sessions.load(Relaxed),
            opened: self.opened.load(Relaxed),
            short: self.short.load(Relaxed),
            bad_command: self.bad_command.load(Relaxed),
            bad_length: self.bad_length.load(Relaxed),
            stray: self.stray.load(Relaxed),
            over_limit: self.over_limit.load(Relaxed),
            over_rate: self.over_rate.load(Relaxed),
            dead_links: self.dead_links.load(Relaxed),
            unsent: self.unsent.load(Relaxed),
        }
    }
}
