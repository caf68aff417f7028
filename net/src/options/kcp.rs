//! Settings of the kcp backend: the KCP knobs of the reference
//! implementation (nodelay, interval, resend, congestion control, windows,
//! MTU), the liveness of a link, and the bounds of a server's session
//! table against floods.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::millis;

/// Settings of the kcp backend: KCP over UDP, servers and clients.
///
/// The KCP knobs are those of the reference implementation (`ikcp`), with
/// its two named presets: [`KcpOptions::normal`] `(0, 40, 0, off)` and
/// [`KcpOptions::fast`] `(1, 10, 2, on)` (nodelay, interval, resend, no
/// congestion control). The default is `fast` with windows of 256
/// segments: the crate's own defaults (100 ms interval, windows of 32) are
/// slow for games.
///
/// A debug build of an application serving kcp wants, in its own
/// `Cargo.toml`, `[profile.dev.package.kcp] overflow-checks = false`: the
/// `kcp` crate computes with u32 clocks and sequence numbers that must wrap
/// (as the reference implementation's unsigned arithmetic does), and a
/// peer's timestamps and sequence numbers reach that arithmetic. Release
/// builds wrap already; this workspace sets it for its own tests.
///
/// ```
/// use std::time::Duration;
/// use walle_net::{Backend, KcpOptions};
///
/// let kcp = KcpOptions::normal().windows(512, 512).mtu(1200).interval(Duration::from_millis(20));
/// assert_eq!((kcp.nodelay, kcp.resend, kcp.mtu), (false, 0, 1200));
/// let backend = Backend::kcp(kcp);
/// assert_eq!(backend.name(), "kcp");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct KcpOptions {
    /// Nodelay mode: a 30 ms minimum retransmission timeout instead of
    /// 100 ms, and gentler backoff.
    pub nodelay: bool,
    /// The internal update interval (10 ms to 5 s).
    #[serde(with = "millis")]
    pub interval: Duration,
    /// Fast resend after this many acks skipped a segment; 0: off.
    pub resend: u32,
    /// No congestion control: only the windows limit what is in flight.
    pub no_congestion_control: bool,
    /// Send window, in segments.
    pub send_window: u16,
    /// Receive window, in segments (at least 128: a message of the
    /// reference implementation may have 128 fragments).
    pub recv_window: u16,
    /// Largest datagram sent, KCP header (24 bytes) included.
    pub mtu: usize,
    /// Transmissions of one segment after which the link is dead and the
    /// session closes with `CloseReason::DeadLink`.
    pub dead_link: u32,
    /// Sessions a server's table holds at most, per reactor (those still
    /// lingering after a close included); a datagram that would open one
    /// more is dropped. (The accept limit of `ServerOptions` bounds the
    /// sessions that get a process.)
    pub max_sessions: usize,
    /// New sessions a server opens per second at most (per reactor); the
    /// datagrams of those over the rate are dropped, and their peers'
    /// retransmissions try again.
    pub new_sessions_per_sec: u32,
    /// How long a session may stay unproven: on a server, one whose peer
    /// has not completed a frame yet; on a client, one whose server has not
    /// answered its first datagram. It is then dropped.
    #[serde(with = "millis")]
    pub open_timeout: Duration,
    /// Reactors of a server, each with its own UDP socket on the port
    /// (SO_REUSEPORT, which keeps a peer on one socket). 0: one per core.
    /// A client's connections take turns over that many of the client
    /// reactors all clients share (one per core).
    pub loops: usize,
}

impl Default for KcpOptions {
    fn default() -> Self {
        KcpOptions::fast()
    }
}

impl KcpOptions {
    /// The reference implementation's normal mode: `(0, 40, 0, off)`.
    pub fn normal() -> Self {
        KcpOptions {
            nodelay: false,
            interval: Duration::from_millis(40),
            resend: 0,
            no_congestion_control: false,
            ..KcpOptions::fast()
        }
    }

    /// The reference implementation's fast mode: `(1, 10, 2, on)`, with
    /// windows of 256 segments and a 1400-byte MTU (the default).
    pub fn fast() -> Self {
        KcpOptions {
            nodelay: true,
            interval: Duration::from_millis(10),
            resend: 2,
            no_congestion_control: true,
            send_window: 256,
            recv_window: 256,
            mtu: 1400,
            dead_link: 20,
            max_sessions: 16 * 1024,
            new_sessions_per_sec: 1024,
            open_timeout: Duration::from_secs(10),
            loops: 1,
        }
    }

    /// Sets nodelay, interval, resend and no-congestion-control at once,
    /// as the reference implementation's `ikcp_nodelay` does.
    pub fn nodelay(mut self, nodelay: bool, interval: Duration, resend: u32, nc: bool) -> Self {
        self.nodelay = nodelay;
        self.interval = interval;
        self.resend = resend;
        self.no_congestion_control = nc;
        self
    }
    /// Sets the update interval.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }
    /// Sets the send and receive windows, in segments.
    pub fn windows(mut self, send: u16, recv: u16) -> Self {
        self.send_window = send;
        self.recv_window = recv;
        self
    }
    /// Sets the MTU.
    pub fn mtu(mut self, mtu: usize) -> Self {
        self.mtu = mtu;
        self
    }
    /// Sets the transmissions after which a link is dead.
    pub fn dead_link(mut self, times: u32) -> Self {
        self.dead_link = times;
        self
    }
    /// Sets the bound of a server's session table.
    pub fn max_sessions(mut self, n: usize) -> Self {
        self.max_sessions = n;
        self
    }
    /// Sets the bound of new sessions per second.
    pub fn new_sessions_per_sec(mut self, n: u32) -> Self {
        self.new_sessions_per_sec = n;
        self
    }
    /// Sets how long a session may stay unproven.
    pub fn open_timeout(mut self, d: Duration) -> Self {
        self.open_timeout = d;
        self
    }
    /// Sets the reactors of a server.
    pub fn loops(mut self, n: usize) -> Self {
        self.loops = n;
        self
    }

    /// The MTU, kept where the KCP state accepts it.
    pub(crate) fn mtu_bytes(&self) -> usize {
        self.mtu.clamp(64, 64 * 1024)
    }

    pub(crate) fn loop_count(&self) -> usize {
        match self.loops {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Backend;

    #[test]
    fn presets_are_the_reference_ones_and_load_from_a_file() {
        let normal = KcpOptions::normal();
        let n = (
            normal.nodelay,
            normal.interval.as_millis(),
            normal.resend,
            normal.no_congestion_control,
        );
        assert_eq!(n, (false, 40, 0, false));
        let fast = KcpOptions::fast();
        let f = (
            fast.nodelay,
            fast.interval.as_millis(),
            fast.resend,
            fast.no_congestion_control,
        );
        assert_eq!(f, (true, 10, 2, true));
        assert_eq!(KcpOptions::default(), fast);

        let backend: Backend = serde_json::from_str(
            r#"{"kind":"kcp","nodelay":false,"interval":20,"send_window":512,"open_timeout":2500}"#,
        )
        .unwrap();
        let Backend::Kcp(kcp) = &backend else {
            panic!("not kcp: {backend:?}");
        };
        assert_eq!(
            (kcp.nodelay, kcp.interval),
            (false, Duration::from_millis(20))
        );
        assert_eq!((kcp.send_window, kcp.recv_window), (512, 256));
        assert_eq!(kcp.open_timeout, Duration::from_millis(2500));
        let again: Backend =
            serde_json::from_str(&serde_json::to_string(&backend).unwrap()).unwrap();
        assert_eq!(again, backend);
        assert_eq!(
            Backend::parse("kcp"),
            Some(Backend::kcp(KcpOptions::default()))
        );
    }
}
