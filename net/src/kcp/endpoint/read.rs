//! A session's byte stream: what KCP delivered, cut into frames; the
//! client's hello and the end of the stream taken out.

use std::time::Instant;

use walle_process::CloseReason;

use super::{Event, KcpEndpoint, Role, SessionId};

impl<T> KcpEndpoint<T> {
    /// Reads what KCP delivered to session `id` into frames.
    pub(super) fn read(&mut self, now: Instant, id: SessionId) {
        let server = self.role == Role::Server;
        let mut ended = None;
        let Some(index) = self.index(id) else { return };
        let s = &mut self.sessions[index];
        if s.is_open() && s.decoder.is_none() {
            return; // not accepted yet: what came waits in KCP
        }
        let deliver = s.is_open();
        while let Ok(n) = s.kcp.peeksize() {
            if n == 0 {
                let _ = s.kcp.recv(&mut []);
                if server && !s.read_any {
                    s.read_any = true; // the client's hello
                    continue;
                }
                ended = Some(CloseReason::PeerClosed);
                break;
            }
            s.read_any = true;
            if !deliver {
                self.discard.resize(n, 0);
                let _ = s.kcp.recv(&mut self.discard);
                continue;
            }
            let buf = s
                .inbound
                .get_or_insert_with(|| self.spare.pop().unwrap_or_default());
            let start = buf.len();
            buf.resize(start + n, 0);
            match s.kcp.recv(&mut buf[start..]) {
                Ok(got) => buf.truncate(start + got),
                Err(_) => {
                    buf.truncate(start);
                    break;
                }
            }
            s.last_read = now;
            let Some(decoder) = s.decoder.as_mut() else {
                break;
            };
            loop {
                match decoder.decode(buf) {
                    Ok(Some(frame)) => {
                        s.proven = true;
                        self.events.push_back(Event::Frame(id, frame));
                    }
                    Ok(None) => break,
                    Err(e) => {
                        ended = Some(CloseReason::input(e.into()));
                        break;
                    }
                }
            }
            if ended.is_some() {
                break;
            }
        }
        let idle = s.inbound.take_if(|b| b.is_empty());
        if let Some(buf) = idle {
            self.give_back(buf);
        }
        if let Some(reason) = ended {
            self.end(now, id, reason);
        }
    }
}
