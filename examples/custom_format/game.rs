//! A packet format and a message codec that are not walle's, built on the
//! public API alone: the common game layout
//! `u16 len | u16 msg_id | u32 seq | u8 flags | payload` (little-endian) and
//! a fixed-layout little-endian codec for plain structs.
#![allow(dead_code)] // shared by the example and its test, which use different parts

use bytes::Bytes;
use walle::codec::CodecError;
use walle::packet::{
    ByteOrder, Cmd, FLAG_ERROR, Framing, Head, Packet, PacketError, ProtocolWrapper,
};
use walle::prelude::*;

/// `u16 msg_id | u32 seq | u8 flags | payload` behind a `u16` length, all
/// little-endian. Flags: bit 0 error, bit 1 request, bit 2 response; neither
/// of the last two is a notify (a push).
#[derive(Debug, Clone, Copy, Default)]
pub struct GameFormat;

pub const HEADER: usize = 7;
pub const REQUEST: u8 = 0x02;
pub const RESPONSE: u8 = 0x04;

impl ProtocolWrapper for GameFormat {
    fn name(&self) -> &'static str {
        "game-le"
    }

    fn framing(&self) -> Framing {
        // A u16 length: 64 KiB - 1 is the most a frame can be anyway.
        Framing::new(2, ByteOrder::Little).max_frame(u16::MAX as usize)
    }

    fn decode(&self, body: Bytes) -> Result<Packet, PacketError> {
        let Some(head) = body.first_chunk::<HEADER>() else {
            return Err(PacketError::Malformed("a game frame has a 7-byte header"));
        };
        let id = u16::from_le_bytes([head[0], head[1]]);
        let seq = u32::from_le_bytes([head[2], head[3], head[4], head[5]]);
        let flags = head[6];
        let cmd = match flags & (REQUEST | RESPONSE) {
            0 => Cmd::Notify,
            REQUEST => Cmd::Request,
            RESPONSE => Cmd::Response,
            _ => return Err(PacketError::Malformed("request and response flags at once")),
        };
        let len = body.len();
        Packet::parts(body, cmd)
            .id(u32::from(id))
            .seq(u64::from(seq))
            .flags(u32::from(flags) & FLAG_ERROR)
            .payload(HEADER..len)
            .build()
    }

    fn encode(
        &self,
        head: &Head<'_>,
        payload: &[u8],
        dst: &mut Vec<u8>,
    ) -> Result<(), PacketError> {
        if !head.uri.is_empty() {
            return Err(PacketError::Unencodable("game frames carry numeric routes"));
        }
        let id = u16::try_from(head.id)
            .map_err(|_| PacketError::Unencodable("game routes are u16 ids"))?;
        let seq = u32::try_from(head.seq).map_err(|_| PacketError::Unencodable("seq over u32"))?;
        let kind = match head.cmd {
            Cmd::Notify => 0,
            Cmd::Request => REQUEST,
            Cmd::Response => RESPONSE,
        };
        let error = if head.flags & FLAG_ERROR != 0 {
            0x01
        } else {
            0
        };
        dst.extend_from_slice(&id.to_le_bytes());
        dst.extend_from_slice(&seq.to_le_bytes());
        dst.push(kind | error);
        dst.extend_from_slice(payload);
        Ok(())
    }

    fn max_seq(&self) -> u64 {
        u64::from(u32::MAX)
    }
}

/// A message with a fixed little-endian layout.
pub trait Wire: Sized {
    /// Appends the message.
    fn put(&self, dst: &mut Vec<u8>);
    /// Reads the message from the front of `src`.
    fn take(src: &mut &[u8]) -> Option<Self>;
}

/// The codec of every [`Wire`] message: the bytes must hold exactly one.
#[derive(Debug, Clone, Copy, Default)]
pub struct LeCodec;

impl<M: Wire> Codec<M> for LeCodec {
    fn encode(&self, msg: &M, dst: &mut Vec<u8>) -> Result<(), CodecError> {
        msg.put(dst);
        Ok(())
    }

    fn decode(&self, src: Bytes) -> Result<M, CodecError> {
        let mut rest = &src[..];
        match M::take(&mut rest) {
            Some(msg) if rest.is_empty() => Ok(msg),
            Some(_) => Err(CodecError::decode("trailing bytes after the message")),
            None => Err(CodecError::decode("message cut short")),
        }
    }
}

fn take_array<const N: usize>(src: &mut &[u8]) -> Option<[u8; N]> {
    let (head, rest) = src.split_first_chunk::<N>()?;
    *src = rest;
    Some(*head)
}

impl Wire for i32 {
    fn put(&self, dst: &mut Vec<u8>) {
        dst.extend_from_slice(&self.to_le_bytes());
    }
    fn take(src: &mut &[u8]) -> Option<Self> {
        take_array(src).map(i32::from_le_bytes)
    }
}

impl Wire for u32 {
    fn put(&self, dst: &mut Vec<u8>) {
        dst.extend_from_slice(&self.to_le_bytes());
    }
    fn take(src: &mut &[u8]) -> Option<Self> {
        take_array(src).map(u32::from_le_bytes)
    }
}

/// `u16 len | UTF-8`; a longer string is cut at 65535 bytes' worth of chars.
impl Wire for String {
    fn put(&self, dst: &mut Vec<u8>) {
        let mut end = self.len().min(u16::MAX as usize);
        while !self.is_char_boundary(end) {
            end -= 1;
        }
        dst.extend_from_slice(&(end as u16).to_le_bytes());
        dst.extend_from_slice(&self.as_bytes()[..end]);
    }
    fn take(src: &mut &[u8]) -> Option<Self> {
        let len = u16::from_le_bytes(take_array(src)?) as usize;
        let text = src.get(..len)?;
        let text = std::str::from_utf8(text).ok()?.to_owned();
        *src = &src[len..];
        Some(text)
    }
}

/// A player asks to move by `(dx, dy)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Move {
    pub dx: i32,
    pub dy: i32,
}

impl Wire for Move {
    fn put(&self, dst: &mut Vec<u8>) {
        self.dx.put(dst);
        self.dy.put(dst);
    }
    fn take(src: &mut &[u8]) -> Option<Self> {
        Some(Move {
            dx: i32::take(src)?,
            dy: i32::take(src)?,
        })
    }
}

/// Where the player stands now, and how many moves this connection made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub x: i32,
    pub y: i32,
    pub moves: u32,
}

impl Wire for Position {
    fn put(&self, dst: &mut Vec<u8>) {
        self.x.put(dst);
        self.y.put(dst);
        self.moves.put(dst);
    }
    fn take(src: &mut &[u8]) -> Option<Self> {
        Some(Position {
            x: i32::take(src)?,
            y: i32::take(src)?,
            moves: u32::take(src)?,
        })
    }
}

/// Message ids.
pub const LOGIN: u32 = 1;
pub const MOVE: u32 = 2;

/// A refused move: the game's own error code, carried in an error frame.
pub const OUT_OF_BOUNDS: u32 = 1001;

/// The player's state on one connection, kept in the session's values:
/// how a codec or handler keeps per-connection state (a handshake, a
/// dictionary), since formats and codecs are shared by every connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Player {
    x: i32,
    y: i32,
    moves: u32,
}

/// The game's routes: `LOGIN` (a name, answered with a greeting) starts a
/// player at the origin on this connection; `MOVE` moves it within
/// -100..=100 on both axes.
pub fn game_router() -> Router<LeCodec> {
    let mut router = Router::new(LeCodec);
    router
        .route_id(LOGIN, |ctx: &mut Context, name: String| {
            ctx.session().insert(Player {
                x: 0,
                y: 0,
                moves: 0,
            });
            Ok(format!("welcome, {name}"))
        })
        .expect("a new route");
    router
        .route_id(MOVE, |ctx: &mut Context, step: Move| {
            let Some(mut player) = ctx.session().get::<Player>() else {
                return Err(Status::new(1000, "log in first").into());
            };
            let (x, y) = (player.x + step.dx, player.y + step.dy);
            if !(-100..=100).contains(&x) || !(-100..=100).contains(&y) {
                return Err(Status::new(OUT_OF_BOUNDS, "out of bounds").into());
            }
            player = Player {
                x,
                y,
                moves: player.moves + 1,
            };
            ctx.session().insert(player);
            Ok(Position {
                x,
                y,
                moves: player.moves,
            })
        })
        .expect("a new route");
    router
}
