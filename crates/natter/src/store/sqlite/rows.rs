//! Conversions between SQLite rows and domain types.

use rusqlite::Row;

use crate::model::{Role, Room, RoomId, RoomKind, User, UserId, Visibility};
use crate::store::StoreError;

/// Columns [`room`] expects, in order.
pub const ROOM_COLUMNS: &str =
    "id, kind, title, visibility, created_by, created_at, head, community";
/// Columns [`user`] expects, in order.
pub const USER_COLUMNS: &str = "id, username, display_name, avatar_url, created_at";

/// Qualifies a column list with a table alias, for joins.
pub fn prefixed(columns: &str, alias: &str) -> String {
    columns
        .split(", ")
        .map(|c| format!("{alias}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads a room row selected with [`ROOM_COLUMNS`] (optionally prefixed).
pub fn room(row: &Row<'_>) -> rusqlite::Result<Room> {
    Ok(Room {
        id: RoomId(row.get(0)?),
        kind: match row.get::<_, String>(1)?.as_str() {
            "direct" => RoomKind::Direct,
            _ => RoomKind::Group,
        },
        title: row.get(2)?,
        visibility: visibility(&row.get::<_, String>(3)?),
        created_by: UserId(row.get(4)?),
        created_at: row.get(5)?,
        head: row.get(6)?,
        community: row.get(7)?,
    })
}

/// Reads a user row selected with [`USER_COLUMNS`], starting at column `at`.
pub fn user_at(row: &Row<'_>, at: usize) -> rusqlite::Result<User> {
    Ok(User {
        id: UserId(row.get(at)?),
        username: row.get(at + 1)?,
        display_name: row.get(at + 2)?,
        avatar_url: row.get(at + 3)?,
        created_at: row.get(at + 4)?,
    })
}

/// Reads a user row selected with [`USER_COLUMNS`].
pub fn user(row: &Row<'_>) -> rusqlite::Result<User> {
    user_at(row, 0)
}

pub fn visibility(s: &str) -> Visibility {
    if s == "public" {
        Visibility::Public
    } else {
        Visibility::Private
    }
}

pub fn visibility_str(v: Visibility) -> &'static str {
    match v {
        Visibility::Public => "public",
        Visibility::Private => "private",
    }
}

pub fn role(s: &str) -> Role {
    match s {
        "owner" => Role::Owner,
        "admin" => Role::Admin,
        _ => Role::Member,
    }
}

pub fn role_str(r: Role) -> &'static str {
    match r {
        Role::Owner => "owner",
        Role::Admin => "admin",
        Role::Member => "member",
    }
}

/// Maps SQLite errors to store errors, keeping uniqueness violations apart
/// so the domain can report them as conflicts.
pub fn store_error(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            StoreError::Conflict("unique constraint")
        }
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DiskFull => {
            StoreError::Full
        }
        _ => StoreError::Internal(e.to_string()),
    }
}
