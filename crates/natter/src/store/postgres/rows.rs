//! Conversions between PostgreSQL rows and domain types. Every read uses
//! `try_get`, so a column of an unexpected type is an error, never a panic.

use tokio_postgres::Row;

use super::fail::R;
use crate::columns::{self, Stored, Unreadable};
use crate::model::{Event, Role, Room, RoomId, RoomKind, User, UserId, Visibility};
use crate::store::StoreError;

/// Columns [`room`] expects, in order.
pub(super) const ROOM_COLUMNS: &str =
    "id, kind, title, visibility, created_by, created_at, head, community";
/// Columns [`user_at`] expects, in order.
pub(super) const USER_COLUMNS: &str = "id, username, display_name, avatar_url, created_at";
/// Columns [`event_at`] expects, in order.
pub(super) const EVENT_COLUMNS: &str =
    "room_id, seq, kind, sender_id, sender_name, at_ms, client_msg_id, text, data, target_seq";

/// Qualifies a column list with a table alias, for joins.
pub(super) fn prefixed(columns: &str, alias: &str) -> String {
    columns
        .split(", ")
        .map(|c| format!("{alias}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads a room selected with [`ROOM_COLUMNS`] (optionally prefixed).
pub(super) fn room(row: &Row) -> R<Room> {
    Ok(Room {
        id: RoomId(row.try_get(0)?),
        kind: match row.try_get::<_, &str>(1)? {
            "direct" => RoomKind::Direct,
            _ => RoomKind::Group,
        },
        title: row.try_get(2)?,
        visibility: visibility(row.try_get(3)?),
        created_by: UserId(row.try_get(4)?),
        created_at: row.try_get(5)?,
        head: row.try_get(6)?,
        community: row.try_get(7)?,
    })
}

/// Reads a user selected with [`USER_COLUMNS`], starting at column `at`.
pub(super) fn user_at(row: &Row, at: usize) -> R<User> {
    Ok(User {
        id: UserId(row.try_get(at)?),
        username: row.try_get(at + 1)?,
        display_name: row.try_get(at + 2)?,
        avatar_url: row.try_get(at + 3)?,
        created_at: row.try_get(at + 4)?,
    })
}

/// Reads a user selected with [`USER_COLUMNS`].
pub(super) fn user(row: &Row) -> R<User> {
    user_at(row, 0)
}

/// Reads an event selected with [`EVENT_COLUMNS`], starting at column `at`.
pub(super) fn event_at(row: &Row, at: usize) -> R<Event> {
    let body = columns::body(Stored {
        kind: row.try_get(at + 2)?,
        client_msg_id: row.try_get(at + 6)?,
        text: row.try_get(at + 7)?,
        data: row.try_get(at + 8)?,
        target_seq: row.try_get(at + 9)?,
    })
    .map_err(|e| {
        StoreError::Internal(match e {
            Unreadable::Target => "an event changes no message".into(),
            Unreadable::Data => "an event's data is not what natter wrote".into(),
        })
    })?;
    Ok(Event {
        room: RoomId(row.try_get(at)?),
        seq: row.try_get(at + 1)?,
        sender: UserId(row.try_get(at + 3)?),
        sender_name: row.try_get(at + 4)?,
        at: row.try_get(at + 5)?,
        body,
        encoded: Default::default(),
    })
}

/// Reads an event selected with [`EVENT_COLUMNS`].
pub(super) fn event(row: &Row) -> R<Event> {
    event_at(row, 0)
}

pub(super) fn visibility(s: &str) -> Visibility {
    if s == "public" {
        Visibility::Public
    } else {
        Visibility::Private
    }
}

pub(super) fn visibility_str(v: Visibility) -> &'static str {
    match v {
        Visibility::Public => "public",
        Visibility::Private => "private",
    }
}

pub(super) fn role(s: &str) -> Role {
    match s {
        "owner" => Role::Owner,
        "admin" => Role::Admin,
        _ => Role::Member,
    }
}

pub(super) fn role_str(r: Role) -> &'static str {
    match r {
        Role::Owner => "owner",
        Role::Admin => "admin",
        Role::Member => "member",
    }
}
