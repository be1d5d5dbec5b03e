//! The resume cursor of the event stream: for every room of the user, the
//! last sequence number delivered, plus the position in the user's
//! ephemeral stream (presence, read markers).
//!
//! Encoded as URL-safe base64 of a small binary record that starts with a
//! version byte and the deployment id, so a cursor from another deployment
//! or a garbled one is recognised and answered with "resync", never
//! misread.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::model::{RoomId, Seq};

const VERSION: u8 = 1;
/// No honest cursor comes near this; it bounds decoding work.
const MAX_ENCODED_LEN: usize = 64 * 1024;

/// A decoded cursor.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    /// Last delivered sequence per room.
    pub rooms: BTreeMap<RoomId, Seq>,
    /// Which ephemeral stream `ephemeral_seen` counts in (changes when the
    /// server restarts or forgets the user's stream).
    pub ephemeral_stream: u64,
    /// Last ephemeral item delivered.
    pub ephemeral_seen: u64,
}

/// Why a cursor string was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum CursorError {
    Garbled,
    OtherDeployment,
}

impl Cursor {
    /// Encodes for the wire, tagged with `deployment`.
    pub fn encode(&self, deployment: u64) -> String {
        let mut out = Vec::with_capacity(24 + self.rooms.len() * 6);
        out.push(VERSION);
        out.extend_from_slice(&deployment.to_le_bytes());
        out.extend_from_slice(&self.ephemeral_stream.to_le_bytes());
        put_varint(&mut out, self.ephemeral_seen);
        put_varint(&mut out, self.rooms.len() as u64);
        let mut previous = 0i64;
        for (room, seq) in &self.rooms {
            // Rooms are sorted, so deltas keep ids short.
            put_varint(&mut out, (room.0 - previous) as u64);
            put_varint(&mut out, *seq as u64);
            previous = room.0;
        }
        URL_SAFE_NO_PAD.encode(out)
    }

    /// Decodes a wire cursor, checking that it belongs to `deployment`.
    pub fn decode(text: &str, deployment: u64) -> Result<Cursor, CursorError> {
        if text.len() > MAX_ENCODED_LEN {
            return Err(CursorError::Garbled);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| CursorError::Garbled)?;
        let mut r = Reader { bytes: &bytes };
        if r.byte()? != VERSION {
            return Err(CursorError::Garbled);
        }
        if r.u64_le()? != deployment {
            return Err(CursorError::OtherDeployment);
        }
        let ephemeral_stream = r.u64_le()?;
        let ephemeral_seen = r.varint()?;
        let count = r.varint()?;
        if count > bytes.len() as u64 {
            return Err(CursorError::Garbled);
        }
        let mut rooms = BTreeMap::new();
        let mut previous = 0i64;
        for _ in 0..count {
            let delta = i64::try_from(r.varint()?).map_err(|_| CursorError::Garbled)?;
            let seq = i64::try_from(r.varint()?).map_err(|_| CursorError::Garbled)?;
            let room = previous.checked_add(delta).ok_or(CursorError::Garbled)?;
            if (delta == 0 && !rooms.is_empty()) || room <= 0 {
                return Err(CursorError::Garbled);
            }
            rooms.insert(RoomId(room), seq);
            previous = room;
        }
        if !r.bytes.is_empty() {
            return Err(CursorError::Garbled);
        }
        Ok(Cursor {
            rooms,
            ephemeral_stream,
            ephemeral_seen,
        })
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, CursorError> {
        let (&b, rest) = self.bytes.split_first().ok_or(CursorError::Garbled)?;
        self.bytes = rest;
        Ok(b)
    }

    fn u64_le(&mut self) -> Result<u64, CursorError> {
        if self.bytes.len() < 8 {
            return Err(CursorError::Garbled);
        }
        let (head, rest) = self.bytes.split_at(8);
        self.bytes = rest;
        Ok(u64::from_le_bytes(head.try_into().expect("8 bytes")))
    }

    fn varint(&mut self) -> Result<u64, CursorError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(CursorError::Garbled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut c = Cursor {
            ephemeral_stream: 77,
            ephemeral_seen: 300,
            ..Cursor::default()
        };
        c.rooms.insert(RoomId(3), 0);
        c.rooms.insert(RoomId(1000), 123_456);
        c.rooms.insert(RoomId(1001), 1);
        let text = c.encode(42);
        assert_eq!(Cursor::decode(&text, 42), Ok(c));
        assert_eq!(Cursor::decode(&text, 43), Err(CursorError::OtherDeployment));
    }

    #[test]
    fn garbage_is_refused() {
        let good = Cursor::default().encode(42);
        for bad in [
            "",
            "!!!",
            "AAAA",
            &good[..good.len() - 1],
            &format!("{good}AA"),
            &"A".repeat(MAX_ENCODED_LEN + 4),
        ] {
            assert!(Cursor::decode(bad, 42).is_err(), "{bad:?}");
        }
    }
}
