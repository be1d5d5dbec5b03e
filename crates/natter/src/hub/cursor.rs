//! The resume cursor of the event stream: for every room of the user, the
//! last sequence number delivered and a stamp of that event, plus the
//! place in the user's ephemeral stream (presence, read markers): which
//! stream, the position in it, and when the issuing node read it, so a
//! node that does not hold that stream continues by time instead.
//!
//! Encoded as URL-safe base64 of a small binary record: a version byte,
//! the deployment id, the user it was issued to, the hub process that
//! issued it, the positions, and a 128-bit HMAC-SHA256 tag over all of
//! that with the deployment's secret cursor key. So a cursor from another
//! deployment, another user's, an altered or a garbled one is recognised
//! and answered with "resync", never misread.
//!
//! The stamps make a cursor restore-proof: a data folder restored from an
//! older backup keeps its deployment id and key, and its rooms grow new
//! events under sequence numbers a cursor already passed. A cursor from
//! another process (the server restarted since it was issued) has each
//! stamp compared with the event the store now holds at that position,
//! once; a cursor the running process issued needs no check, since a data
//! folder cannot be restored under a running natter.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::model::{Event, Millis, RoomId, Seq, UserId};

/// Version 1 had no tag and no user, version 2 no stamps: such cursors get
/// a resync. Version 3 had no time in its ephemeral place: it is read
/// with time 0, which continues its rooms and gives an ephemeral gap.
const VERSION: u8 = 4;
const VERSION_WITHOUT_TIME: u8 = 3;
/// Bytes of the HMAC-SHA256 tag kept.
const TAG_LEN: usize = 16;
/// No honest cursor comes near this; it bounds decoding work.
const MAX_ENCODED_LEN: usize = 64 * 1024;

/// A decoded cursor.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    /// The hub process that issued it (see the module docs).
    pub issued_by: u64,
    /// Last delivered event per room.
    pub rooms: BTreeMap<RoomId, Position>,
    /// Where the ephemeral stream stands.
    pub ephemeral: StreamPlace,
}

/// A place in a user's ephemeral stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamPlace {
    /// Which stream `seen` counts in: one per user feed on one node, so
    /// it changes when a poll moves to another node, the server restarts
    /// or forgets the user's feed.
    pub stream: u64,
    /// Last ephemeral item delivered.
    pub seen: u64,
    /// When the issuing node read its stream for `seen` (its wall clock,
    /// ms; 0 unknown): another node continues from that time.
    pub at: Millis,
}

/// Where a cursor stands in one room: the last event delivered, and that
/// event's [`stamp`] (0 before the first event).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Position {
    pub seq: Seq,
    pub stamp: u32,
}

impl Position {
    /// Just after `event`.
    pub fn after(event: &Event) -> Position {
        Position {
            seq: event.seq,
            stamp: stamp(event),
        }
    }
}

/// A 32-bit fingerprint of an event from what no later change to it
/// (an edit, a deletion) touches: its room, sequence, time and sender. An
/// event that took the same place in a diverged history was written at
/// another millisecond, so its stamp differs but for a 1 in 2^32 chance.
///
/// Stamps outlive the process in cursors, so the mix is spelled out here
/// (SplitMix64's finaliser) rather than taken from std's hasher, which
/// may change between releases.
pub fn stamp(event: &Event) -> u32 {
    let mut h = event.room.0 as u64;
    for v in [event.seq as u64, event.at as u64, event.sender.0 as u64] {
        h = mix(h ^ v);
    }
    (h >> 32) as u32
}

fn mix(z: u64) -> u64 {
    let z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Why a cursor string was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum CursorError {
    Garbled,
    OtherDeployment,
    /// The tag does not match: altered, or not made with this key.
    Altered,
    /// Issued to another user.
    OtherUser,
}

/// Who a cursor is for and what signs it.
#[derive(Clone, Copy)]
pub struct CursorKey<'a> {
    pub deployment: u64,
    pub user: UserId,
    pub key: &'a CursorMac,
}

/// The deployment's cursor key, made ready for HMAC once.
///
/// Keying HMAC-SHA256 hashes the key's inner and outer pads, two SHA-256
/// blocks of the five or so each tag costs; every poll checks one tag and
/// every answer makes one, so the keyed state is kept and cloned instead.
#[derive(Clone)]
pub struct CursorMac(Hmac<Sha256>);

impl CursorMac {
    pub fn new(key: &[u8; 32]) -> CursorMac {
        CursorMac(<Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length works"))
    }
}

fn tag(key: &CursorMac, payload: &[u8]) -> Hmac<Sha256> {
    let mut mac = key.0.clone();
    mac.update(payload);
    mac
}

impl Cursor {
    /// Encodes for the wire, for `to.user`, signed with `to.key`.
    pub fn encode(&self, to: CursorKey<'_>) -> String {
        let mut out = Vec::with_capacity(48 + self.rooms.len() * 6);
        out.push(VERSION);
        out.extend_from_slice(&to.deployment.to_le_bytes());
        put_varint(&mut out, to.user.0 as u64);
        out.extend_from_slice(&self.issued_by.to_le_bytes());
        out.extend_from_slice(&self.ephemeral.stream.to_le_bytes());
        put_varint(&mut out, self.ephemeral.seen);
        put_varint(&mut out, self.ephemeral.at.max(0) as u64);
        put_varint(&mut out, self.rooms.len() as u64);
        let mut previous = 0i64;
        for (room, at) in &self.rooms {
            // Rooms are sorted, so deltas keep ids short.
            put_varint(&mut out, (room.0 - previous) as u64);
            put_varint(&mut out, at.seq as u64);
            out.extend_from_slice(&at.stamp.to_le_bytes());
            previous = room.0;
        }
        let tag = tag(to.key, &out).finalize().into_bytes();
        out.extend_from_slice(&tag[..TAG_LEN]);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// Decodes a wire cursor, checking that this deployment issued it,
    /// unaltered, to `to.user`.
    pub fn decode(text: &str, to: CursorKey<'_>) -> Result<Cursor, CursorError> {
        if text.len() > MAX_ENCODED_LEN {
            return Err(CursorError::Garbled);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| CursorError::Garbled)?;
        if bytes.len() < 1 + 8 + TAG_LEN {
            return Err(CursorError::Garbled);
        }
        let (payload, given) = bytes.split_at(bytes.len() - TAG_LEN);
        let mut r = Reader { bytes: payload };
        let version = r.byte()?;
        if version != VERSION && version != VERSION_WITHOUT_TIME {
            return Err(CursorError::Garbled);
        }
        if r.u64_le()? != to.deployment {
            return Err(CursorError::OtherDeployment);
        }
        // Checked in constant time, before any other field is believed.
        tag(to.key, payload)
            .verify_truncated_left(given)
            .map_err(|_| CursorError::Altered)?;
        if r.varint()? != to.user.0 as u64 {
            return Err(CursorError::OtherUser);
        }
        let issued_by = r.u64_le()?;
        let stream = r.u64_le()?;
        let seen = r.varint()?;
        let at = if version == VERSION {
            i64::try_from(r.varint()?).map_err(|_| CursorError::Garbled)?
        } else {
            0
        };
        let count = r.varint()?;
        if count > bytes.len() as u64 {
            return Err(CursorError::Garbled);
        }
        let mut rooms = BTreeMap::new();
        let mut previous = 0i64;
        for _ in 0..count {
            let delta = i64::try_from(r.varint()?).map_err(|_| CursorError::Garbled)?;
            let seq = i64::try_from(r.varint()?).map_err(|_| CursorError::Garbled)?;
            let stamp = r.u32_le()?;
            let room = previous.checked_add(delta).ok_or(CursorError::Garbled)?;
            if (delta == 0 && !rooms.is_empty()) || room <= 0 {
                return Err(CursorError::Garbled);
            }
            rooms.insert(RoomId(room), Position { seq, stamp });
            previous = room;
        }
        if !r.bytes.is_empty() {
            return Err(CursorError::Garbled);
        }
        Ok(Cursor {
            issued_by,
            rooms,
            ephemeral: StreamPlace { stream, seen, at },
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

    fn take<const N: usize>(&mut self) -> Result<[u8; N], CursorError> {
        let (head, rest) = self
            .bytes
            .split_first_chunk::<N>()
            .ok_or(CursorError::Garbled)?;
        self.bytes = rest;
        Ok(*head)
    }

    fn u64_le(&mut self) -> Result<u64, CursorError> {
        self.take().map(u64::from_le_bytes)
    }

    fn u32_le(&mut self) -> Result<u32, CursorError> {
        self.take().map(u32::from_le_bytes)
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

    const PINNED: u32 = 1_496_346_127;

    fn key() -> &'static CursorMac {
        static KEY: std::sync::OnceLock<CursorMac> = std::sync::OnceLock::new();
        KEY.get_or_init(|| CursorMac::new(&[7; 32]))
    }

    fn to(user: i64) -> CursorKey<'static> {
        CursorKey {
            deployment: 42,
            user: UserId(user),
            key: key(),
        }
    }

    fn sample() -> Cursor {
        let mut c = Cursor {
            issued_by: 0xfeed,
            ephemeral: StreamPlace {
                stream: 77,
                seen: 300,
                at: 1_795_667_876_614,
            },
            ..Cursor::default()
        };
        let at = |seq, stamp| Position { seq, stamp };
        c.rooms.insert(RoomId(3), at(0, 0));
        c.rooms.insert(RoomId(1000), at(123_456, u32::MAX));
        c.rooms.insert(RoomId(1001), at(1, 0x0102_0304));
        c
    }

    #[test]
    fn round_trip() {
        let c = sample();
        let text = c.encode(to(5));
        assert_eq!(Cursor::decode(&text, to(5)), Ok(c));
        let elsewhere = CursorKey {
            deployment: 43,
            ..to(5)
        };
        assert_eq!(
            Cursor::decode(&text, elsewhere),
            Err(CursorError::OtherDeployment)
        );
        assert_eq!(Cursor::decode(&text, to(6)), Err(CursorError::OtherUser));
        let other_key = CursorMac::new(&[8; 32]);
        let wrong_key = CursorKey {
            key: &other_key,
            ..to(5)
        };
        assert_eq!(Cursor::decode(&text, wrong_key), Err(CursorError::Altered));
    }

    fn event(at: i64, sender: i64) -> Event {
        Event {
            room: RoomId(7),
            seq: 42,
            at,
            sender: UserId(sender),
            sender_name: "alice".into(),
            body: crate::model::EventBody::MemberLeft { user: UserId(1) },
            encoded: Default::default(),
        }
    }

    /// Stamps live in clients' cursors across upgrades: the function must
    /// not change, and must tell apart events that took the same place.
    #[test]
    fn stamps_are_fixed_and_tell_diverged_events_apart() {
        let original = event(1_795_667_876_614, 1);
        assert_eq!(stamp(&original), PINNED);
        let mut renamed = original.clone();
        renamed.sender_name = "someone else".into();
        assert_eq!(stamp(&renamed), stamp(&original));
        for other in [
            event(1_795_667_876_615, 1),
            event(1_795_667_876_614, 2),
            Event {
                seq: 43,
                ..original.clone()
            },
            Event {
                room: RoomId(8),
                ..original.clone()
            },
        ] {
            assert_ne!(stamp(&other), stamp(&original), "{other:?}");
        }
    }

    #[test]
    fn every_single_bit_flip_is_refused() {
        let text = sample().encode(to(5));
        let bytes = URL_SAFE_NO_PAD.decode(&text).unwrap();
        for i in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[i / 8] ^= 1 << (i % 8);
            let forged = URL_SAFE_NO_PAD.encode(&flipped);
            assert!(
                Cursor::decode(&forged, to(5)).is_err(),
                "bit {i} flipped was accepted"
            );
        }
    }

    /// Clients hold version 3 cursors across the upgrade: their rooms
    /// continue, and their ephemeral place has no time.
    #[test]
    fn a_version_3_cursor_still_reads() {
        let c = sample();
        let mut v3 = vec![VERSION_WITHOUT_TIME];
        v3.extend_from_slice(&42u64.to_le_bytes());
        put_varint(&mut v3, 5);
        v3.extend_from_slice(&c.issued_by.to_le_bytes());
        v3.extend_from_slice(&c.ephemeral.stream.to_le_bytes());
        put_varint(&mut v3, c.ephemeral.seen);
        put_varint(&mut v3, c.rooms.len() as u64);
        let mut previous = 0;
        for (room, at) in &c.rooms {
            put_varint(&mut v3, (room.0 - previous) as u64);
            put_varint(&mut v3, at.seq as u64);
            v3.extend_from_slice(&at.stamp.to_le_bytes());
            previous = room.0;
        }
        let tag = tag(key(), &v3).finalize().into_bytes();
        v3.extend_from_slice(&tag[..TAG_LEN]);
        let read = Cursor::decode(&URL_SAFE_NO_PAD.encode(v3), to(5)).unwrap();
        assert_eq!(read.rooms, c.rooms);
        assert_eq!(
            read.ephemeral,
            StreamPlace {
                at: 0,
                ..c.ephemeral
            }
        );
    }

    #[test]
    fn garbage_and_old_cursors_are_refused() {
        let good = Cursor::default().encode(to(5));
        let mut old = vec![1u8];
        old.extend_from_slice(&42u64.to_le_bytes());
        old.extend_from_slice(&[0; 10]);
        let old = URL_SAFE_NO_PAD.encode(old);
        // A well-signed version 2 cursor (no stamps) is refused too.
        let mut v2 = URL_SAFE_NO_PAD.decode(&good).unwrap();
        v2[0] = 2;
        let v2 = URL_SAFE_NO_PAD.encode(v2);
        for bad in [
            "",
            "!!!",
            "AAAA",
            &good[..good.len() - 1],
            &format!("{good}AA"),
            &"A".repeat(MAX_ENCODED_LEN + 4),
            &old,
            &v2,
        ] {
            assert!(Cursor::decode(bad, to(5)).is_err(), "{bad:?}");
        }
    }
}
