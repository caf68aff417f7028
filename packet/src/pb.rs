//! The few protobuf wire-format primitives `walle-proto` needs, so that
//! decoding yields slices of the frame instead of owned strings and maps.

use crate::PacketError;

pub(crate) const VARINT: u8 = 0;
pub(crate) const FIXED64: u8 = 1;
pub(crate) const LEN: u8 = 2;
pub(crate) const FIXED32: u8 = 5;

/// Reads a varint at `*pos`, advancing it.
pub(crate) fn varint(src: &[u8], pos: &mut usize) -> Result<u64, PacketError> {
    let mut value = 0u64;
    for i in 0..10 {
        let Some(&byte) = src.get(*pos) else {
            return Err(PacketError::Malformed("truncated varint"));
        };
        *pos += 1;
        if i == 9 && byte > 1 {
            return Err(PacketError::Malformed("varint overflows 64 bits"));
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            return Ok(value);
        }
    }
    Err(PacketError::Malformed("varint longer than 10 bytes"))
}

/// A field: its number, wire type, and for `LEN` fields the value's range.
pub(crate) struct Field {
    pub(crate) number: u32,
    pub(crate) wire: u8,
    /// The varint value, or the start of a `LEN` value.
    pub(crate) value: u64,
    /// End of a `LEN` value.
    pub(crate) end: usize,
}

/// Reads the field at `*pos` (key and value), advancing past it.
pub(crate) fn field(src: &[u8], pos: &mut usize) -> Result<Field, PacketError> {
    let key = varint(src, pos)?;
    let number = u32::try_from(key >> 3).map_err(|_| PacketError::Malformed("field number"))?;
    if number == 0 {
        return Err(PacketError::Malformed("field number 0"));
    }
    let wire = (key & 7) as u8;
    let (value, end) = match wire {
        VARINT => (varint(src, pos)?, *pos),
        FIXED64 | FIXED32 => {
            let width = if wire == FIXED64 { 8 } else { 4 };
            let end = pos.checked_add(width).filter(|&e| e <= src.len());
            let end = end.ok_or(PacketError::Malformed("truncated fixed field"))?;
            *pos = end;
            (0, end)
        }
        LEN => {
            let len = varint(src, pos)?;
            let start = *pos;
            let end = usize::try_from(len)
                .ok()
                .and_then(|l| start.checked_add(l))
                .filter(|&e| e <= src.len())
                .ok_or(PacketError::Malformed(
                    "length-delimited field overruns the packet",
                ))?;
            *pos = end;
            (start as u64, end)
        }
        _ => return Err(PacketError::Malformed("unsupported wire type")),
    };
    Ok(Field {
        number,
        wire,
        value,
        end,
    })
}

/// Appends a varint.
pub(crate) fn put_varint(dst: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        dst.push(v as u8 | 0x80);
        v >>= 7;
    }
    dst.push(v as u8);
}

/// Bytes a varint of `v` takes.
pub(crate) fn varint_len(v: u64) -> usize {
    ((64 - (v | 1).leading_zeros()) as usize).div_ceil(7)
}

/// Appends a field key.
pub(crate) fn put_key(dst: &mut Vec<u8>, number: u32, wire: u8) {
    put_varint(dst, u64::from(number) << 3 | u64::from(wire));
}

/// Appends a `LEN` field.
pub(crate) fn put_bytes(dst: &mut Vec<u8>, number: u32, value: &[u8]) {
    put_key(dst, number, LEN);
    put_varint(dst, value.len() as u64);
    dst.extend_from_slice(value);
}

/// Appends a varint field.
pub(crate) fn put_uint(dst: &mut Vec<u8>, number: u32, value: u64) {
    put_key(dst, number, VARINT);
    put_varint(dst, value);
}

/// Bytes a `LEN` field of `len` bytes takes, key (field < 16) included.
pub(crate) fn bytes_field_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_every_length() {
        for v in [0u64, 1, 127, 128, 300, 1 << 35, u64::MAX] {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            assert_eq!(buf.len(), varint_len(v));
            let mut pos = 0;
            assert_eq!(varint(&buf, &mut pos).unwrap(), v);
            assert_eq!(pos, buf.len());
        }
        let mut pos = 0;
        assert!(varint(&[0xff; 11], &mut pos).is_err());
        let mut pos = 0;
        assert!(varint(&[0x80], &mut pos).is_err());
    }
}
