//! Request metadata: a multi-valued map of strings, as in HTTP headers.

use std::collections::BTreeMap;

use crate::{PacketError, pb};

/// Metadata to send: key -> values, kept sorted by key (the `walle` format
/// writes keys in ascending order).
///
/// ```
/// use walle_packet::Metadata;
///
/// let mut md = Metadata::new();
/// md.insert("trace", "abc");
/// md.insert("lang", "en");
/// md.insert("lang", "fr");
/// assert_eq!(md.get("lang"), Some("en"));
/// assert_eq!(md.get_all("lang"), ["en", "fr"]);
/// assert_eq!(md.keys().collect::<Vec<_>>(), ["lang", "trace"]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata(BTreeMap<String, Vec<String>>);

impl Metadata {
    /// Empty metadata.
    pub fn new() -> Self {
        Metadata::default()
    }

    /// Adds a value to `key`, after any it has.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.0.entry(key.into()).or_default().push(value.into());
    }

    /// Replaces the values of `key` with one value.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.0.insert(key.into(), vec![value.into()]);
    }

    /// Removes `key`, returning its values.
    pub fn remove(&mut self, key: &str) -> Option<Vec<String>> {
        self.0.remove(key)
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.first()).map(String::as_str)
    }

    /// Every value of `key`.
    pub fn get_all(&self, key: &str) -> &[String] {
        self.0.get(key).map(Vec::as_slice).unwrap_or_default()
    }

    /// Keys in ascending order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// `(key, values)` in ascending key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True without keys.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Bytes of the `walle` encoding.
    pub fn walle_len(&self) -> usize {
        self.0
            .iter()
            .map(|(k, vs)| 4 + k.len() + vs.iter().map(|v| 2 + v.len()).sum::<usize>())
            .sum()
    }

    /// Appends the `walle` encoding:
    /// `u16 key_len | u16 value_count | key | value_count x (u16 len | value)`.
    pub fn encode_walle(&self, dst: &mut Vec<u8>) -> Result<(), PacketError> {
        let too_long = |_| PacketError::Unencodable("metadata key, value or count over 65535");
        for (key, values) in &self.0 {
            let key_len = u16::try_from(key.len()).map_err(too_long)?;
            let count = u16::try_from(values.len()).map_err(too_long)?;
            dst.extend_from_slice(&key_len.to_be_bytes());
            dst.extend_from_slice(&count.to_be_bytes());
            dst.extend_from_slice(key.as_bytes());
            for value in values {
                let len = u16::try_from(value.len()).map_err(too_long)?;
                dst.extend_from_slice(&len.to_be_bytes());
                dst.extend_from_slice(value.as_bytes());
            }
        }
        Ok(())
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Metadata {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut md = Metadata::new();
        iter.into_iter().for_each(|(k, v)| md.insert(k, v));
        md
    }
}

/// Where a received packet keeps its metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MetaKind {
    None,
    /// `walle` entries in `body[start..end]`.
    Walle(u32, u32),
    /// `walle-proto` map entries: field 4 of the whole body.
    Proto,
}

/// Checks `walle` metadata: structure and UTF-8.
pub(crate) fn validate_walle(src: &[u8]) -> Result<(), PacketError> {
    WalleEntries { src, pos: 0 }.try_for_each(|entry| entry.map(drop))
}

/// Reads a `u16` length and that many UTF-8 bytes at `*pos`.
fn take_str<'a>(src: &'a [u8], pos: &mut usize, len: usize) -> Result<&'a str, PacketError> {
    let bytes = src
        .get(*pos..*pos + len)
        .ok_or(PacketError::Malformed("metadata overruns"))?;
    *pos += len;
    std::str::from_utf8(bytes).map_err(|_| PacketError::Malformed("metadata is not UTF-8"))
}

fn take_u16(src: &[u8], pos: &mut usize) -> Result<usize, PacketError> {
    let bytes = src
        .get(*pos..*pos + 2)
        .ok_or(PacketError::Malformed("metadata overruns"))?;
    *pos += 2;
    Ok(usize::from(u16::from_be_bytes([bytes[0], bytes[1]])))
}

/// `(key, value)` pairs of `walle` metadata, one per value.
struct WalleEntries<'a> {
    src: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for WalleEntries<'a> {
    type Item = Result<(&'a str, WalleValues<'a>), PacketError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.src.len() {
            return None;
        }
        let entry = (|| {
            let key_len = take_u16(self.src, &mut self.pos)?;
            let count = take_u16(self.src, &mut self.pos)?;
            let key = take_str(self.src, &mut self.pos, key_len)?;
            let values = WalleValues {
                src: self.src,
                pos: self.pos,
                left: count as u16,
            };
            for _ in 0..count {
                let len = take_u16(self.src, &mut self.pos)?;
                take_str(self.src, &mut self.pos, len)?;
            }
            Ok((key, values))
        })();
        if entry.is_err() {
            self.pos = self.src.len();
        }
        Some(entry)
    }
}

/// The values of one `walle` entry (already validated).
#[derive(Clone)]
struct WalleValues<'a> {
    src: &'a [u8],
    pos: usize,
    left: u16,
}

impl<'a> Iterator for WalleValues<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let len = take_u16(self.src, &mut self.pos).ok()?;
        take_str(self.src, &mut self.pos, len).ok()
    }
}

/// Checks one `walle-proto` map entry (`key = 1`, `value = 2`, strings)
/// and returns it.
pub(crate) fn proto_entry(src: &[u8]) -> Result<(&str, &str), PacketError> {
    let (mut key, mut value) = ("", "");
    let mut pos = 0;
    while pos < src.len() {
        let f = pb::field(src, &mut pos)?;
        let target = match (f.number, f.wire) {
            (1, pb::LEN) => &mut key,
            (2, pb::LEN) => &mut value,
            (1 | 2, _) => return Err(PacketError::Malformed("metadata entry field type")),
            _ => continue,
        };
        *target = std::str::from_utf8(&src[f.value as usize..f.end])
            .map_err(|_| PacketError::Malformed("metadata is not UTF-8"))?;
    }
    Ok((key, value))
}

/// Metadata of a received packet, read in place.
#[derive(Debug, Clone, Copy)]
pub struct MetadataView<'a> {
    kind: MetaKind,
    body: &'a [u8],
}

impl<'a> MetadataView<'a> {
    pub(crate) fn new(kind: MetaKind, body: &'a [u8]) -> Self {
        MetadataView { kind, body }
    }

    /// Every `(key, value)` pair, a key repeated for each of its values.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let (walle, proto) = match self.kind {
            MetaKind::None => (None, None),
            MetaKind::Walle(start, end) => {
                let src = &self.body[start as usize..end as usize];
                (Some(WalleEntries { src, pos: 0 }), None)
            }
            MetaKind::Proto => (None, Some((self.body, 0usize))),
        };
        let walle = walle
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .flat_map(|(key, values)| values.map(move |v| (key, v)));
        let proto = proto.into_iter().flat_map(|(body, mut pos)| {
            std::iter::from_fn(move || {
                while pos < body.len() {
                    let f = pb::field(body, &mut pos).ok()?;
                    if f.number == 4 && f.wire == pb::LEN {
                        return proto_entry(&body[f.value as usize..f.end]).ok();
                    }
                }
                None
            })
        });
        walle.chain(proto)
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Every value of `key`.
    pub fn get_all<'k>(&self, key: &'k str) -> impl Iterator<Item = &'a str> + 'k
    where
        'a: 'k,
    {
        self.iter().filter(move |(k, _)| *k == key).map(|(_, v)| v)
    }

    /// True when there is no metadata.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// An owned copy.
    pub fn to_metadata(&self) -> Metadata {
        self.iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walle_metadata_round_trips_through_the_view() {
        let mut md = Metadata::new();
        md.insert("b", "2");
        md.insert("a", "1");
        md.insert("a", "one");
        let mut buf = Vec::new();
        md.encode_walle(&mut buf).unwrap();
        assert_eq!(buf.len(), md.walle_len());
        validate_walle(&buf).unwrap();
        let view = MetadataView::new(MetaKind::Walle(0, buf.len() as u32), &buf);
        assert_eq!(view.get_all("a").collect::<Vec<_>>(), ["1", "one"]);
        assert_eq!(view.to_metadata(), md);
    }

    #[test]
    fn broken_walle_metadata_is_malformed() {
        for bad in [&[0u8][..], &[0, 1, 0, 1, b'k'], &[0, 1, 0, 0, 0xff]] {
            assert!(validate_walle(bad).is_err(), "{bad:?}");
        }
    }
}
