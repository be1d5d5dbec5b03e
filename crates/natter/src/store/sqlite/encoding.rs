//! How SQLite reads and writes a room event's row; the format of the
//! columns themselves is the stores' shared one (`columns.rs`).

use rusqlite::Row;
use rusqlite::types::Type;

use crate::columns::{self, Stored, Unreadable};
use crate::model::{Event, Millis, RoomId, UserId};

pub(crate) use crate::columns::columns;

/// Columns [`read`] expects, in order.
pub const EVENT_COLUMNS: &str =
    "room_id, seq, kind, sender_id, sender_name, at_ms, client_msg_id, text, data, target_seq";

fn bad(col: usize, what: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(col, Type::Text, what.to_owned().into())
}

/// Reads an event row selected with [`EVENT_COLUMNS`].
pub fn read(row: &Row<'_>) -> rusqlite::Result<Event> {
    let body = columns::body(Stored {
        kind: row.get(2)?,
        client_msg_id: row.get(6)?,
        text: row.get(7)?,
        data: row.get(8)?,
        target_seq: row.get(9)?,
    })
    .map_err(|e| match e {
        Unreadable::Target => bad(9, "a change without its target"),
        Unreadable::Data => bad(8, "event data"),
    })?;
    let at: Millis = row.get(5)?;
    Ok(Event {
        room: RoomId(row.get(0)?),
        seq: row.get(1)?,
        sender: UserId(row.get(3)?),
        sender_name: row.get(4)?,
        at,
        body,
        encoded: Default::default(),
    })
}
