//! A WebSocket spoken by hand, no library between the test and the wire,
//! translated to and from the stream of walle frames the tests read and
//! write (see `raw`).
//!
//! Each frame the test writes (length prefix, body) goes as one binary
//! message without the prefix; a frame written in pieces goes in
//! fragments as its pieces come (so a partial frame is a partial
//! message); a length over [`OVERSIZE`] goes as a frame header announcing
//! that length, its bytes following raw. Each binary message read comes
//! back as a frame with its prefix; a close frame (answered) or the end of
//! the stream reads as the end. Pings are not answered unless asked for: a
//! raw peer is as silent as the test makes it.

use std::io::{self, Read, Write};
use std::net::TcpStream;

/// A frame length above this is sent as a bare announcing header.
pub const OVERSIZE: usize = 1 << 20;

/// The key of every handshake here, and the accept value it calls for.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// Which end of a WebSocket a raw peer is: clients mask what they send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Client,
    Server,
}

/// A WebSocket spoken by hand.
#[derive(Debug)]
pub struct WsRaw {
    pub stream: TcpStream,
    role: Role,
    /// Answer pings with pongs.
    pub answer_pings: bool,
    /// Pings received.
    pub pings: usize,
    /// Pongs received.
    pub pongs: usize,
    /// Bytes read off the socket, not yet a whole WebSocket frame.
    wire: Vec<u8>,
    /// A message arriving in fragments.
    partial: Vec<u8>,
    /// Translated frames waiting to be read, from `taken` on.
    ready: Vec<u8>,
    taken: usize,
    /// Written bytes not yet sent: part of a length prefix.
    head: Vec<u8>,
    /// The frame being written: body bytes left, and whether a fragment
    /// of it went already (or `None` for an oversized one sent raw).
    writing: Option<(usize, Option<bool>)>,
    /// The peer's close code, once its close frame came.
    pub close_code: Option<u16>,
    closed: bool,
}

/// Upgrades `stream` as a client on `path` with `headers`; the status
/// line of a refusal is the error.
pub fn ws_handshake(
    stream: &mut TcpStream,
    path: &str,
    headers: &[(&str, &str)],
) -> io::Result<String> {
    let mut request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n",
        stream.peer_addr()?
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    let response = read_head(stream)?;
    if !response.starts_with("HTTP/1.1 101") {
        let status = response.lines().next().unwrap_or("").to_owned();
        return Err(io::Error::new(io::ErrorKind::ConnectionRefused, status));
    }
    if !response.contains(ACCEPT) {
        return Err(io::Error::new(io::ErrorKind::InvalidData, response));
    }
    Ok(response)
}

/// Reads an HTTP head byte by byte, so no byte after it is taken.
pub fn read_head(stream: &mut TcpStream) -> io::Result<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// One WebSocket frame: `fin`, `opcode`, `payload`, masked if `mask`;
/// `len` is what the header announces (the payload's length unless
/// lying).
pub fn ws_frame(fin: bool, opcode: u8, payload: &[u8], len: u64, mask: bool) -> Vec<u8> {
    let mut out = vec![(fin as u8) << 7 | opcode];
    let bit = (mask as u8) << 7;
    match len {
        0..=125 => out.push(bit | len as u8),
        126..=0xffff => {
            out.push(bit | 126);
            out.extend((len as u16).to_be_bytes());
        }
        _ => {
            out.push(bit | 127);
            out.extend(len.to_be_bytes());
        }
    }
    if mask {
        out.extend(MASK);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

impl WsRaw {
    pub fn new(stream: TcpStream, role: Role) -> WsRaw {
        WsRaw {
            stream,
            role,
            answer_pings: false,
            pings: 0,
            pongs: 0,
            wire: Vec::new(),
            partial: Vec::new(),
            ready: Vec::new(),
            taken: 0,
            head: Vec::new(),
            writing: None,
            close_code: None,
            closed: false,
        }
    }

    fn masks(&self) -> bool {
        self.role == Role::Client
    }

    /// Sends one whole frame of `opcode` (text, binary, ping, ...).
    pub fn send(&mut self, opcode: u8, payload: &[u8]) -> io::Result<()> {
        let frame = ws_frame(true, opcode, payload, payload.len() as u64, self.masks());
        self.stream.write_all(&frame)
    }

    /// Translates written stream bytes into frames, appended to `out`.
    fn translate(&mut self, mut buf: &[u8], out: &mut Vec<u8>) {
        let mask = self.masks();
        while !buf.is_empty() {
            match self.writing {
                None => {
                    let want = 4 - self.head.len();
                    let n = want.min(buf.len());
                    self.head.extend_from_slice(&buf[..n]);
                    buf = &buf[n..];
                    if self.head.len() < 4 {
                        return;
                    }
                    let len = u32::from_be_bytes(self.head[..4].try_into().unwrap()) as usize;
                    self.head.clear();
                    if len > OVERSIZE {
                        out.extend(ws_frame(true, 2, &[], len as u64, mask));
                        self.writing = Some((len, None));
                    } else if len == 0 {
                        out.extend(ws_frame(true, 2, &[], 0, mask));
                    } else {
                        self.writing = Some((len, Some(false)));
                    }
                }
                Some((left, None)) => {
                    let n = left.min(buf.len());
                    out.extend_from_slice(&buf[..n]); // raw: the server stops reading anyway
                    buf = &buf[n..];
                    self.writing = (left > n).then_some((left - n, None));
                }
                Some((left, Some(started))) => {
                    let n = left.min(buf.len());
                    let fin = n == left;
                    let opcode = if started { 0 } else { 2 };
                    out.extend(ws_frame(fin, opcode, &buf[..n], n as u64, mask));
                    buf = &buf[n..];
                    self.writing = (!fin).then_some((left - n, Some(true)));
                }
            }
        }
    }

    /// Parses the whole frames in `wire`; false once the peer closed.
    fn parse(&mut self) -> io::Result<()> {
        loop {
            let Some((fin, opcode, payload, used)) = cut(&self.wire) else {
                return Ok(());
            };
            self.wire.drain(..used);
            match opcode {
                0 | 2 => {
                    self.partial.extend_from_slice(&payload);
                    if fin {
                        self.ready.extend((self.partial.len() as u32).to_be_bytes());
                        self.ready.append(&mut self.partial);
                    }
                }
                9 => {
                    self.pings += 1;
                    if self.answer_pings {
                        let pong = ws_frame(true, 10, &payload, payload.len() as u64, self.masks());
                        self.stream.write_all(&pong)?;
                    }
                }
                8 => {
                    self.close_code = payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
                    let code = payload.get(..2).unwrap_or(&[]);
                    let reply = ws_frame(true, 8, code, code.len() as u64, self.masks());
                    let _ = self.stream.write_all(&reply);
                    self.closed = true;
                    return Ok(());
                }
                10 => self.pongs += 1,
                _ => {} // text from a server
            }
        }
    }
}

/// The first whole frame of `wire`: fin, opcode, unmasked payload, bytes
/// used.
fn cut(wire: &[u8]) -> Option<(bool, u8, Vec<u8>, usize)> {
    let (&b0, &b1) = (wire.first()?, wire.get(1)?);
    let (mut at, len) = match b1 & 0x7f {
        126 => (
            4,
            u16::from_be_bytes(wire.get(2..4)?.try_into().ok()?) as usize,
        ),
        127 => (
            10,
            u64::from_be_bytes(wire.get(2..10)?.try_into().ok()?) as usize,
        ),
        n => (2, n as usize),
    };
    let mask = if b1 & 0x80 != 0 {
        let key: [u8; 4] = wire.get(at..at + 4)?.try_into().ok()?;
        at += 4;
        Some(key)
    } else {
        None
    };
    let mut payload = wire.get(at..at + len)?.to_vec();
    if let Some(key) = mask {
        payload
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b ^= key[i % 4]);
    }
    Some((b0 & 0x80 != 0, b0 & 0x0f, payload, at + len))
}

impl Read for WsRaw {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.taken < self.ready.len() {
                let n = buf.len().min(self.ready.len() - self.taken);
                buf[..n].copy_from_slice(&self.ready[self.taken..self.taken + n]);
                self.taken += n;
                if self.taken == self.ready.len() {
                    self.ready.clear();
                    self.taken = 0;
                }
                return Ok(n);
            }
            if self.closed || buf.is_empty() {
                return Ok(0);
            }
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk)? {
                0 => self.closed = true,
                n => {
                    self.wire.extend_from_slice(&chunk[..n]);
                    self.parse()?;
                }
            }
        }
    }
}

impl Write for WsRaw {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut out = Vec::new();
        self.translate(buf, &mut out);
        self.stream.write_all(&out)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
