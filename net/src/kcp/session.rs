//! One KCP session: its `kcp::Kcp` state, what it has read of the byte
//! stream KCP delivers, and where it is in its life.
//!
//! The byte stream: every message KCP delivers is bytes of one stream, cut
//! into frames by the connection's [`FrameDecoder`], so a frame may span
//! messages and a message may hold several frames. An empty message is
//! not data: the first one a client sends is its hello (it makes the
//! server see the client before its first frame, and the server's ack
//! tells the client the server is there); any other ends the stream, as a
//! TCP FIN does. A KCP peer that knows neither reads an empty message as
//! nothing, and sees a close by its own timeouts.

use std::io::{self, IoSlice, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use kcp::Kcp;
use walle_packet::FrameDecoder;
use walle_process::CloseReason;

use super::wire::Wire;
use crate::options::KcpOptions;

/// Where a session is in its life.
#[derive(Debug)]
pub(crate) enum Phase {
    /// Carrying frames both ways.
    Open,
    /// Closed by this side: what is queued is handed to KCP, then the end
    /// of the stream, until all is acknowledged or `until`.
    Closing {
        reason: CloseReason,
        until: Instant,
        fin_sent: bool,
    },
    /// Ended; kept until `until` to acknowledge what the peer sends again.
    Lingering { until: Instant },
}

/// One session of an endpoint.
pub(crate) struct Session<T> {
    pub(crate) peer: SocketAddr,
    pub(crate) conv: u32,
    pub(crate) kcp: Kcp<Wire>,
    pub(crate) phase: Phase,
    /// Cuts frames out of the stream, once the session is accepted.
    pub(crate) decoder: Option<FrameDecoder>,
    /// Bytes of a partial frame, held only while there is one.
    pub(crate) inbound: Option<bytes::BytesMut>,
    /// A message was read already (a server takes an empty first one as
    /// the client's hello).
    pub(crate) read_any: bool,
    /// A server's session completed a frame; a client's got an answer.
    pub(crate) proven: bool,
    pub(crate) opened_at: Instant,
    pub(crate) last_read: Instant,
    /// Queued bytes wait for room in the KCP send queue.
    pub(crate) blocked: bool,
    /// The earliest timer the driver was asked for.
    pub(crate) armed: Option<Instant>,
    /// In the endpoint's list of sessions to flush.
    pub(crate) touched: bool,
    /// The driver's state of the session (its process).
    pub(crate) app: Option<T>,
}

/// A fresh KCP state with `opts`, message mode: empty messages can be sent.
pub(crate) fn kcp_state(conv: u32, opts: &KcpOptions) -> Kcp<Wire> {
    let mut kcp = Kcp::new(conv, Wire);
    let interval = i32::try_from(opts.interval.as_millis()).unwrap_or(5000);
    let resend = i32::try_from(opts.resend).unwrap_or(i32::MAX);
    kcp.set_nodelay(opts.nodelay, interval, resend, opts.no_congestion_control);
    kcp.set_wndsize(opts.send_window.max(1), opts.recv_window.max(128));
    // `mtu_bytes` keeps it in the range the state takes.
    let _ = kcp.set_mtu(opts.mtu_bytes());
    kcp.set_maximum_resend_times(opts.dead_link.max(1));
    kcp
}

impl<T> Session<T> {
    pub(crate) fn new(peer: SocketAddr, conv: u32, opts: &KcpOptions, now: Instant) -> Self {
        Session {
            peer,
            conv,
            kcp: kcp_state(conv, opts),
            phase: Phase::Open,
            decoder: None,
            inbound: None,
            read_any: false,
            proven: false,
            opened_at: now,
            last_read: now,
            blocked: false,
            armed: None,
            touched: false,
            app: None,
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open)
    }

    /// Updates and flushes the KCP state at `ms` (its clock).
    pub(crate) fn flush(&mut self, ms: u32) {
        // `update` flushes only when an interval passed; the flush after it
        // sends acks and new segments now, stamped with this time.
        let _ = self.kcp.update(ms);
        let _ = self.kcp.flush();
    }

    /// When the state wants its next update, if it holds anything to
    /// send or see acknowledged (an idle state needs none until input or
    /// a send).
    pub(crate) fn next_update(&self, now: Instant, ms: u32) -> Option<Instant> {
        (self.kcp.wait_snd() > 0)
            .then(|| now + Duration::from_millis(u64::from(self.kcp.check(ms))))
    }
}

/// Hands queued bytes to a KCP state, packed into segments of at most
/// `mss` bytes (as a stream-mode KCP would), until its send queue is full.
pub(crate) struct Packer<'a> {
    pub(crate) kcp: &'a mut Kcp<Wire>,
    pub(crate) pack: &'a mut Vec<u8>,
    pub(crate) limit: usize,
}

impl Packer<'_> {
    fn full(&self) -> bool {
        self.kcp.wait_snd() >= self.limit
    }

    fn send_pack(&mut self) -> io::Result<()> {
        if !self.pack.is_empty() {
            self.kcp.send(self.pack).map_err(io::Error::from)?;
            self.pack.clear();
        }
        Ok(())
    }
}

impl Write for Packer<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        if self.full() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let mss = self.kcp.mss().max(1);
        let mut taken = 0;
        'slices: for buf in bufs {
            let mut rest: &[u8] = buf;
            while !rest.is_empty() {
                let n = rest.len().min(mss - self.pack.len());
                self.pack.extend_from_slice(&rest[..n]);
                rest = &rest[n..];
                taken += n;
                if self.pack.len() == mss {
                    self.send_pack()?;
                    if self.full() {
                        break 'slices;
                    }
                }
            }
        }
        self.send_pack()?;
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
