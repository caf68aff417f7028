//! The life of a session after it opened: flushes, deadlines, a close
//! from this side, an end, the linger that follows.

use std::time::Instant;

use walle_process::CloseReason;

use super::{Event, FIN_GRACE, KcpEndpoint, LINGER, SessionId};
use crate::kcp::session::{Packer, Phase};
use crate::options::later;
use crate::outbound::Outbound;

impl<T> KcpEndpoint<T> {
    /// Ends session `id` for `reason`: the driver is told, and the state
    /// lingers to acknowledge what the peer sends again.
    pub(crate) fn end(&mut self, now: Instant, id: SessionId, reason: CloseReason) {
        let Some(s) = self.get_mut(id) else { return };
        if matches!(
            s.phase,
            Phase::Lingering { .. } | Phase::Closing { fin_sent: true, .. }
        ) {
            return; // told already
        }
        s.phase = Phase::Lingering {
            until: later(now, LINGER),
        };
        s.decoder = None;
        if !matches!(reason, CloseReason::DeadLink) {
            // The end of the stream, for the peer (which may have sent its
            // own: a closed TCP socket answers a FIN with a FIN too).
            let _ = s.kcp.send(&[]);
        }
        let app = s.app.take();
        let buf = s.inbound.take();
        if let Some(buf) = buf {
            self.give_back(buf);
        }
        if matches!(reason, CloseReason::DeadLink) {
            self.counters.dead_link();
        }
        self.events.push_back(Event::Closed(reason, app));
        self.touch(id);
    }

    /// Closes session `id` from this side for `reason`: it reads no more;
    /// what is queued is handed to KCP and, once all of it is acknowledged,
    /// the end of the stream goes out (and the driver hears of the close);
    /// the session leaves when that is acknowledged too, or after a short
    /// grace. At the close flush deadline, what is left is dropped and the
    /// end of the stream goes out as the session lingers.
    pub(crate) fn close(&mut self, now: Instant, id: SessionId, reason: CloseReason) {
        let until = later(now, self.config.close_flush);
        let Some(s) = self.get_mut(id) else { return };
        if !s.is_open() {
            return;
        }
        s.phase = Phase::Closing {
            reason,
            until,
            fin_sent: false,
        };
        self.touch(id);
    }

    /// Stops: new sessions are refused, open ones closed.
    pub(crate) fn stop(&mut self, now: Instant) {
        self.stopping = true;
        let open: Vec<usize> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.is_open())
            .map(|(i, _)| i)
            .collect();
        for index in open {
            let id = self.id_of(index);
            self.close(now, id, CloseReason::Stopped);
        }
    }

    /// Hands session `id`'s queued bytes (`out`, if it has a queue) to
    /// KCP as far as its send queue takes them, then sends what KCP has:
    /// acks, new segments, retransmissions. Ends the session on a dead
    /// link, or once a close is done.
    pub(crate) fn flush(&mut self, now: Instant, id: SessionId, out: Option<&mut Outbound>) {
        let ms = self.ms(now);
        let Some(index) = self.index(id) else { return };
        let s = &mut self.sessions[index];
        let lingering = matches!(s.phase, Phase::Lingering { .. });
        let mut drained = true;
        if let Some(out) = out.filter(|o| o.queued() > 0 && !lingering) {
            let limit = 2 * usize::from(s.kcp.snd_wnd());
            let mut packer = Packer {
                kcp: &mut s.kcp,
                pack: &mut self.pack,
                limit,
            };
            drained = matches!(out.write_to(&mut packer), Ok(true));
            s.blocked = !drained;
        }
        let acked = s.kcp.wait_snd() == 0;
        if let Phase::Closing {
            fin_sent,
            reason,
            until,
        } = &mut s.phase
        {
            if drained && !*fin_sent && acked {
                let _ = s.kcp.send(&[]);
                *fin_sent = true;
                *until = (*until).min(later(now, FIN_GRACE));
                // Its process hears of the close now, before the peer can
                // see the end of the stream, as on tcp.
                s.decoder = None;
                let app = s.app.take();
                self.events.push_back(Event::Closed(reason.clone(), app));
            }
        }
        s.flush(ms);
        let peer = s.peer;
        let dead = s.kcp.is_dead_link();
        let done =
            matches!(s.phase, Phase::Closing { fin_sent: true, .. }) && s.kcp.wait_snd() == 0;
        self.transmits.take_written(peer);
        if dead {
            self.end(now, id, CloseReason::DeadLink);
            self.remove(id);
        } else if done {
            self.remove(id);
        }
    }

    /// Whether session `id` needs its queue at its next flush even when
    /// no send scheduled one: bytes wait there for room in KCP, or a close
    /// waits for the queue to drain.
    pub(crate) fn wants_queue(&self, id: SessionId) -> bool {
        self.get(id).is_some_and(|s| {
            s.blocked
                || matches!(
                    s.phase,
                    Phase::Closing {
                        fin_sent: false,
                        ..
                    }
                )
        })
    }

    /// The next deadline of session `id`, if it is earlier than the one
    /// the driver was last given (whose timer is still set): a KCP update,
    /// the open timeout, the silence limit, the end of a close or of a
    /// linger.
    pub(crate) fn poll_timeout(&mut self, now: Instant, id: SessionId) -> Option<Instant> {
        let ms = self.ms(now);
        let open_timeout = self.config.kcp.open_timeout;
        let silence = self.config.silence;
        let s = self.get_mut(id)?;
        let phase = match &s.phase {
            Phase::Open => {
                let open = (!s.proven).then(|| later(s.opened_at, open_timeout));
                let quiet = silence.map(|limit| later(s.last_read, limit));
                open.into_iter().chain(quiet).min()
            }
            Phase::Closing { until, .. } | Phase::Lingering { until } => Some(*until),
        };
        let at = s.next_update(now, ms).into_iter().chain(phase).min()?;
        if s.armed.is_some_and(|armed| armed <= at) {
            return None;
        }
        s.armed = Some(at);
        Some(at)
    }

    /// A deadline of session `id` may be due: ends what is over. The
    /// driver then flushes it.
    pub(crate) fn handle_timeout(&mut self, now: Instant, id: SessionId) {
        let open_timeout = self.config.kcp.open_timeout;
        let silence = self.config.silence;
        let Some(s) = self.get_mut(id) else { return };
        if s.armed.is_some_and(|armed| armed <= now) {
            s.armed = None;
        }
        let over = |at: Instant| now >= at;
        // (reason to end it, remove it too)
        let verdict = match &s.phase {
            Phase::Open if !s.proven && over(later(s.opened_at, open_timeout)) => {
                Some((Some(CloseReason::Silent(open_timeout)), false))
            }
            Phase::Open => silence
                .filter(|&limit| over(later(s.last_read, limit)))
                .map(|limit| (Some(CloseReason::Silent(limit)), false)),
            Phase::Closing {
                reason,
                until,
                fin_sent,
            } if over(*until) => match fin_sent {
                // Its end goes out as it lingers.
                false => Some((Some(reason.clone()), false)),
                true => Some((None, true)),
            },
            Phase::Lingering { until } if over(*until) => Some((None, true)),
            _ => None,
        };
        if let Some((reason, remove)) = verdict {
            if let Some(reason) = reason {
                self.end(now, id, reason);
            }
            if remove {
                self.remove(id);
                return;
            }
        }
        self.touch(id);
    }
}
