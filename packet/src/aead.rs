//! Authenticated encryption of frame bodies (feature `aead`).

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use chacha20::cipher::consts::U10;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use walle_codec::BoxError;

use crate::{PacketEncoder, Role};

/// The low half of every sealed body's first byte: the layout's version.
/// The high half is the sender's role (0 unspecified, 1 client, 2
/// server). The byte is authenticated.
const VERSION: u8 = 1;
const SALT: usize = 16;
const COUNTER: usize = 8;
const HEADER: usize = 1 + SALT + COUNTER;
const TAG: usize = 16;

/// A 32-byte key. Written in a file as 64 hex digits; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct AeadKey([u8; 32]);

impl AeadKey {
    /// The key of these bytes.
    pub fn new(bytes: [u8; 32]) -> Self {
        AeadKey(bytes)
    }

    /// A key from 64 hex digits.
    pub fn from_hex(hex: &str) -> Result<Self, AeadError> {
        let hex = hex.trim();
        if hex.len() != 64 || !hex.is_ascii() {
            return Err(AeadError::Key(format!(
                "{} characters, not 64 hex digits",
                hex.chars().count()
            )));
        }
        let mut key = [0u8; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
                .map_err(|_| AeadError::Key(format!("not a hex digit pair at {}", 2 * i)))?;
        }
        Ok(AeadKey(key))
    }

    /// A fresh random key, from the operating system's generator.
    pub fn random() -> Self {
        let mut key = [0u8; 32];
        fill_random(&mut key);
        AeadKey(key)
    }

    /// The ChaCha20-Poly1305 key of the stream named `salt`: HChaCha20 of
    /// this key and the salt, as XChaCha20-Poly1305 derives it from the
    /// first 16 bytes of its nonce.
    fn stream_key(&self, salt: &[u8; SALT]) -> LessSafeKey {
        let sub = chacha20::hchacha::<U10>(&self.0.into(), salt.into());
        match UnboundKey::new(&CHACHA20_POLY1305, &sub) {
            Ok(key) => LessSafeKey::new(key),
            Err(_) => unreachable!("a 32-byte key is a ChaCha20-Poly1305 key"),
        }
    }

    /// The key as 64 lowercase hex digits, to write into a configuration.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AeadKey(..)")
    }
}

impl Serialize for AeadKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for AeadKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let hex = String::deserialize(d)?;
        AeadKey::from_hex(&hex).map_err(serde::de::Error::custom)
    }
}

/// Options of [`AeadEncoder`]; loadable from a file (`key = "<64 hex
/// digits>"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AeadOptions {
    /// The key both ends share.
    pub key: AeadKey,
}

/// Why a sealed body was refused, or a key was not read.
#[derive(Debug, thiserror::Error)]
pub enum AeadError {
    /// The key is not 64 hex digits.
    #[error("a bad key: {0}")]
    Key(String),
    /// The body is shorter than the header and tag.
    #[error("a sealed body of {0} bytes, shorter than its {min} bytes of header and tag", min = HEADER + TAG)]
    Truncated(usize),
    /// The layout's version byte is unknown.
    #[error("unknown sealed-body version {0}")]
    Version(u8),
    /// The body carries this end's own stream salt, or was sealed by an
    /// end of this one's role: a packet of this side sent back to it.
    #[error("a packet sent by this side came back (reflected)")]
    Reflected,
    /// The body belongs to another stream than the one this connection
    /// receives.
    #[error("a packet of another stream")]
    OtherStream,
    /// The packet's counter is not above the last one accepted.
    #[error("a replayed or reordered packet: counter {got}, expected at least {expected}")]
    Replayed {
        /// The packet's counter.
        got: u64,
        /// The lowest counter still acceptable.
        expected: u64,
    },
    /// The tag does not match: a wrong key or altered bytes.
    #[error("the body does not authenticate (wrong key or altered bytes)")]
    Forged,
    /// This end has sent 2^64 packets on one stream.
    #[error("the stream's packet counter is exhausted")]
    Exhausted,
}

/// A role as the first byte's high half carries it.
fn role_code(role: Option<Role>) -> u8 {
    match role {
        None => 0,
        Some(Role::Client) => 1,
        Some(Role::Server) => 2,
    }
}

/// The role whose packets an end of role `code` opens.
fn peer_code(code: u8) -> u8 {
    match code {
        1 => 2,
        2 => 1,
        _ => 0,
    }
}

/// Fills `buf` from the operating system's generator, which on the
/// platforms walle runs on does not fail once the system has booted.
fn fill_random(buf: &mut [u8]) {
    if SystemRandom::new().fill(buf).is_err() {
        panic!("the operating system's random generator failed");
    }
}

/// Where this connection's receiving stream stands.
struct Receiving {
    salt: [u8; SALT],
    /// The stream's key, derived once from the shared key and the salt.
    key: LessSafeKey,
    /// The lowest counter still acceptable.
    next: u64,
}

/// Encrypts and authenticates frame bodies with XChaCha20-Poly1305 under
/// a shared key, and refuses replayed, reordered, reflected and altered
/// ones.
///
/// Each connection gets its own instance
/// ([`PacketEncoder::for_connection`]): a random 16-byte salt names the
/// stream it sends, and a counter numbers its packets. The 24-byte
/// XChaCha20-Poly1305 nonce is salt and counter, so no two packets under
/// one key share a nonce as long as salts do not collide (a chance of
/// about 2^-128 per pair of streams). The receiving side takes the peer's
/// salt from the first packet that authenticates and from then on accepts
/// only packets of that stream with a counter above the last one
/// accepted.
///
/// Each end derives its streams' subkeys (HChaCha20 of key and salt) once,
/// so a packet costs one ChaCha20-Poly1305 operation (ring's); the bytes
/// are those of XChaCha20-Poly1305 with that nonce (libsodium's
/// `crypto_aead_xchacha20poly1305_ietf`).
///
/// Wire: `role << 4 | version (1) | salt (16) | counter (8,
/// little-endian) | ciphertext | tag (16)`; the first byte is
/// authenticated data. The
/// transports it runs on deliver frames in order (tcp, ws, kcp), so a
/// counter that does not grow means an attacker's replay or reorder.
///
/// The instances of a server's and a client's connections also know
/// their role ([`Role`], set by the io layer): the first byte carries the
/// sender's, authenticated, and a client accepts only packets sealed by a
/// server and the other way round. A server's own output replayed to it
/// on another connection (its pushes, its answers) is refused.
/// Instances made with [`new`](AeadEncoder::new) have no role and accept
/// only packets of instances without one.
///
/// What it does not do: there is no handshake, so a recording of a whole
/// connection's client side from its first packet can be replayed to a
/// server as a new connection. Where that matters, run TLS (which has
/// one) instead of or beneath it.
///
/// ```
/// use bytes::Bytes;
/// use walle_packet::{AeadEncoder, AeadKey, PacketEncoder};
///
/// let key = AeadKey::random();
/// let (client, server) = (AeadEncoder::new(key.clone()), AeadEncoder::new(key));
/// let mut wire = Vec::new();
/// client.encode(b"move 3 4", &mut wire)?;
/// let sealed = Bytes::from(wire);
/// assert_eq!(&server.decode(sealed.clone())?[..], b"move 3 4");
/// assert!(server.decode(sealed).is_err(), "a replay is refused");
/// # Ok::<(), walle_codec::BoxError>(())
/// ```
pub struct AeadEncoder {
    key: AeadKey,
    /// This end's role: 0 none, 1 client, 2 server.
    role: u8,
    salt: [u8; SALT],
    /// The key of the stream this end sends.
    sending: LessSafeKey,
    sent: AtomicU64,
    receiving: Mutex<Option<Receiving>>,
}

impl AeadEncoder {
    /// An encoder under `key`, with a fresh stream salt and no role.
    pub fn new(key: AeadKey) -> Self {
        AeadEncoder::with_role(key, None)
    }

    /// An encoder under `key` for one end of a connection: it seals as
    /// `role` and opens only what the other role sealed.
    pub fn with_role(key: AeadKey, role: Option<Role>) -> Self {
        let mut salt = [0u8; SALT];
        fill_random(&mut salt);
        AeadEncoder {
            sending: key.stream_key(&salt),
            key,
            role: role_code(role),
            salt,
            sent: AtomicU64::new(0),
            receiving: Mutex::new(None),
        }
    }

    /// An encoder from its options.
    pub fn from_options(options: &AeadOptions) -> Self {
        AeadEncoder::new(options.key.clone())
    }

    /// The ChaCha20-Poly1305 nonce of packet `counter` of a stream:
    /// XChaCha20-Poly1305's last 8 nonce bytes behind 4 zero bytes.
    fn nonce(counter: [u8; COUNTER]) -> Nonce {
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&counter);
        Nonce::assume_unique_for_key(nonce)
    }
}

impl fmt::Debug for AeadEncoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AeadEncoder")
            .field("sent", &self.sent.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl PacketEncoder for AeadEncoder {
    fn name(&self) -> &'static str {
        "aead"
    }

    fn encode(&self, body: &[u8], dst: &mut Vec<u8>) -> Result<(), BoxError> {
        // Never wraps: the last counter is never used, and a stream that
        // reaches it refuses to seal more (no nonce is used twice).
        let counter = self
            .sent
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_add(1))
            .map_err(|_| AeadError::Exhausted)?;
        let counter = counter.to_le_bytes();
        let first = self.role << 4 | VERSION;
        let start = dst.len();
        dst.reserve(HEADER + body.len() + TAG);
        dst.push(first);
        dst.extend_from_slice(&self.salt);
        dst.extend_from_slice(&counter);
        dst.extend_from_slice(body);
        match self.sending.seal_in_place_separate_tag(
            Self::nonce(counter),
            Aad::from([first]),
            &mut dst[start + HEADER..],
        ) {
            Ok(tag) => {
                dst.extend_from_slice(tag.as_ref());
                Ok(())
            }
            Err(_) => {
                dst.truncate(start);
                Err(AeadError::Exhausted.into())
            }
        }
    }

    fn decode(&self, body: Bytes) -> Result<Bytes, BoxError> {
        if body.len() < HEADER + TAG {
            return Err(AeadError::Truncated(body.len()).into());
        }
        let first = body[0];
        if first & 0x0f != VERSION {
            return Err(AeadError::Version(first & 0x0f).into());
        }
        if first >> 4 != peer_code(self.role) {
            return Err(AeadError::Reflected.into());
        }
        let mut salt = [0u8; SALT];
        salt.copy_from_slice(&body[1..1 + SALT]);
        let mut counter = [0u8; COUNTER];
        counter.copy_from_slice(&body[1 + SALT..HEADER]);
        if salt == self.salt {
            return Err(AeadError::Reflected.into());
        }
        let got = u64::from_le_bytes(counter);
        // Held across the decryption: one connection's frames are decoded
        // one after the other anyway, and the check and the update must
        // not interleave with another decode's.
        let mut receiving = self.receiving.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = match &*receiving {
            Some(r) if r.salt != salt => return Err(AeadError::OtherStream.into()),
            Some(r) if got < r.next => {
                return Err(AeadError::Replayed {
                    got,
                    expected: r.next,
                }
                .into());
            }
            Some(_) => None,
            None => Some(self.key.stream_key(&salt)),
        };
        let key = match (&fresh, &*receiving) {
            (Some(key), _) | (None, Some(Receiving { key, .. })) => key,
            (None, None) => unreachable!("a stream key was derived above"),
        };
        let mut plain = body[HEADER..].to_vec();
        let len = key
            .open_in_place(Self::nonce(counter), Aad::from([first]), &mut plain)
            .map_err(|_| AeadError::Forged)?
            .len();
        plain.truncate(len);
        // Only a packet that authenticates moves the window: a forgery
        // cannot push the stream ahead or claim it.
        match (fresh, &mut *receiving) {
            (None, Some(r)) => r.next = got.saturating_add(1),
            (fresh, receiving) => {
                *receiving = fresh.map(|key| Receiving {
                    salt,
                    key,
                    next: got.saturating_add(1),
                })
            }
        }
        Ok(Bytes::from(plain))
    }

    fn for_connection(&self, role: Option<Role>) -> Option<Box<dyn PacketEncoder>> {
        Some(Box::new(AeadEncoder::with_role(self.key.clone(), role)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seal(enc: &AeadEncoder, body: &[u8]) -> Bytes {
        let mut wire = Vec::new();
        enc.encode(body, &mut wire).expect("seals");
        Bytes::from(wire)
    }

    fn pair() -> (AeadEncoder, AeadEncoder) {
        let key = AeadKey::random();
        (AeadEncoder::new(key.clone()), AeadEncoder::new(key))
    }

    fn refused(enc: &AeadEncoder, body: Bytes) -> String {
        enc.decode(body).expect_err("refused").to_string()
    }

    #[test]
    fn bodies_round_trip_and_are_not_in_clear() {
        let (a, b) = pair();
        for body in [&b""[..], b"x", &[0x55; 5000]] {
            let wire = seal(&a, body);
            assert_eq!(wire.len(), body.len() + HEADER + TAG);
            if !body.is_empty() {
                assert_ne!(&wire[HEADER..HEADER + body.len()], body);
            }
            assert_eq!(&b.decode(wire).expect("opens")[..], body);
        }
        // Both directions at once, each its own stream.
        assert_eq!(&a.decode(seal(&b, b"back")).expect("opens")[..], b"back");
    }

    #[test]
    fn replayed_and_reordered_packets_are_refused() {
        let (a, b) = pair();
        let (first, second, third) = (seal(&a, b"1"), seal(&a, b"2"), seal(&a, b"3"));
        b.decode(first.clone()).expect("first");
        assert!(refused(&b, first).contains("counter 0, expected at least 1"));
        b.decode(third)
            .expect("a gap is allowed: a packet may be dropped before encryption");
        assert!(refused(&b, second).contains("replayed or reordered"));
    }

    #[test]
    fn altered_reflected_foreign_and_short_bodies_are_refused() {
        let (a, b) = pair();
        let wire = seal(&a, b"attack at dawn");
        for at in [0, 1, HEADER - 1, HEADER, wire.len() - 1] {
            let mut bad = wire.to_vec();
            bad[at] ^= 1;
            let why = refused(&b, Bytes::from(bad));
            assert!(
                why.contains("authenticate") || why.contains("version") || why.contains("expected"),
                "byte {at}: {why}"
            );
        }
        // Nothing refused moved the window: the genuine packet opens.
        b.decode(wire).expect("genuine");

        assert!(refused(&a, seal(&a, b"mine")).contains("reflected"));
        let (c, _) = pair();
        let fresh = AeadEncoder::new(a.key.clone());
        assert!(
            refused(&fresh, seal(&c, b"x")).contains("authenticate"),
            "another key"
        );
        let same_key_other_stream = AeadEncoder::new(a.key.clone());
        assert!(refused(&b, seal(&same_key_other_stream, b"x")).contains("another stream"));
        assert!(refused(&b, Bytes::from_static(&[1; 40])).contains("shorter"));
    }

    #[test]
    fn connections_get_their_own_streams() {
        let (a, _) = pair();
        let (one, two) = (
            a.for_connection(None).expect("stateful"),
            a.for_connection(None).expect("stateful"),
        );
        let mut x = Vec::new();
        let mut y = Vec::new();
        one.encode(b"p", &mut x).expect("seals");
        two.encode(b"p", &mut y).expect("seals");
        assert_ne!(x[1..HEADER], y[1..HEADER], "salts differ");
        assert_ne!(x, y);
    }

    #[test]
    fn each_role_opens_only_the_other_roles_packets() {
        let key = AeadKey::random();
        let server_a = AeadEncoder::with_role(key.clone(), Some(Role::Server));
        let server_b = AeadEncoder::with_role(key.clone(), Some(Role::Server));
        let client = AeadEncoder::with_role(key.clone(), Some(Role::Client));
        let unset = AeadEncoder::new(key);
        // A server's push replayed to another connection of the same
        // server: another stream, but the server's own role.
        assert!(refused(&server_b, seal(&server_a, b"push")).contains("reflected"));
        assert!(
            refused(
                &client,
                seal(
                    &AeadEncoder::with_role(client.key.clone(), Some(Role::Client)),
                    b"x"
                )
            )
            .contains("reflected")
        );
        assert!(refused(&unset, seal(&server_a, b"x")).contains("reflected"));
        assert!(refused(&server_b, seal(&unset, b"x")).contains("reflected"));
        assert_eq!(
            &server_b.decode(seal(&client, b"up")).expect("opens")[..],
            b"up"
        );
        assert_eq!(
            &client.decode(seal(&server_a, b"down")).expect("opens")[..],
            b"down"
        );
        // The role is authenticated: flipping it breaks the tag.
        let mut forged = seal(&server_a, b"x").to_vec();
        forged[0] = 1 << 4 | VERSION;
        assert!(
            refused(
                &AeadEncoder::with_role(server_a.key.clone(), Some(Role::Server)),
                Bytes::from(forged)
            )
            .contains("authenticate")
        );
    }

    #[test]
    fn a_stream_at_its_last_counter_refuses_to_seal() {
        let enc = AeadEncoder::new(AeadKey::random());
        enc.sent.store(u64::MAX, Ordering::Relaxed);
        let mut wire = Vec::new();
        assert!(enc.encode(b"x", &mut wire).is_err());
        assert!(wire.is_empty());
        assert_eq!(
            enc.sent.load(Ordering::Relaxed),
            u64::MAX,
            "the counter wrapped"
        );
    }

    #[test]
    fn keys_read_from_hex_and_never_print() {
        let key = AeadKey::random();
        assert_eq!(AeadKey::from_hex(&key.to_hex()).expect("hex"), key);
        assert!(AeadKey::from_hex("00").is_err());
        assert!(AeadKey::from_hex(&"zz".repeat(32)).is_err());
        let options: AeadOptions =
            serde_json::from_str(&format!("{{\"key\":\"{}\"}}", key.to_hex())).expect("options");
        assert_eq!(options.key, key);
        assert!(!format!("{options:?}").contains(&key.to_hex()[..8]));
    }
}
