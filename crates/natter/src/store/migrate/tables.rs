//! What a deployment is made of, table by table: the tables `natter
//! migrate-store` copies, their columns and the kind of value in each,
//! in the order the copy writes them (a table after those its rows
//! refer to). The SQLite store (`sqlite/copy_out.rs`) reads rows in
//! these columns and the PostgreSQL store (`postgres/copy_in.rs`) writes
//! them, so neither knows the other; a test in `copy_out.rs` fails when
//! the SQLite schema has a table or a column this list lacks.

/// The kind of value in a column, as both stores hold it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `INTEGER` in SQLite, `BIGINT` in PostgreSQL.
    Int,
    /// `TEXT` in both.
    Text,
    /// `BLOB` in SQLite, `BYTEA` in PostgreSQL.
    Bytes,
    /// `INTEGER` 0 or 1 in SQLite, `BOOLEAN` in PostgreSQL.
    Bool,
}

/// One table of a deployment.
pub(crate) struct Table {
    pub name: &'static str,
    /// What the summary calls its rows.
    pub label: &'static str,
    pub columns: &'static [(&'static str, Kind)],
    /// PostgreSQL makes this table's `id` from an identity column, which
    /// must continue past the copied ids so new rows do not collide.
    pub identity: bool,
    /// The target already has rows of its own here (`meta`: the
    /// identity every PostgreSQL store makes when it first opens), which
    /// the copied rows replace.
    pub replaces: bool,
}

use Kind::{Bool, Bytes, Int, Text};

/// Every table of the newest schema, in the order they are copied.
pub(crate) const TABLES: &[Table] = &[
    Table {
        name: "meta",
        label: "settings",
        columns: &[("key", Text), ("value", Text)],
        identity: false,
        replaces: true,
    },
    Table {
        name: "users",
        label: "users",
        columns: &[
            ("id", Int),
            ("username", Text),
            ("display_name", Text),
            ("avatar_url", Text),
            ("password_hash", Text),
            ("created_at", Int),
            ("site", Text),
            ("external_id", Text),
            ("deactivated_at", Int),
        ],
        identity: true,
        replaces: false,
    },
    Table {
        name: "rooms",
        label: "rooms",
        columns: &[
            ("id", Int),
            ("kind", Text),
            ("title", Text),
            ("visibility", Text),
            ("direct_key", Text),
            ("created_by", Int),
            ("created_at", Int),
            ("head", Int),
            ("community", Text),
        ],
        identity: true,
        replaces: false,
    },
    Table {
        name: "sessions",
        label: "sessions",
        columns: &[
            ("id", Int),
            ("user_id", Int),
            ("token_hash", Bytes),
            ("created_at", Int),
            ("expires_at", Int),
            ("ended_reason", Text),
            ("ended_at", Int),
        ],
        identity: true,
        replaces: false,
    },
    Table {
        name: "members",
        label: "memberships",
        columns: &[
            ("room_id", Int),
            ("user_id", Int),
            ("role", Text),
            ("since_seq", Int),
            ("changed_seq", Int),
            ("active", Bool),
            ("read_seq", Int),
            ("notify", Text),
        ],
        identity: false,
        replaces: false,
    },
    Table {
        name: "events",
        label: "events",
        columns: &[
            ("room_id", Int),
            ("seq", Int),
            ("kind", Text),
            ("sender_id", Int),
            ("sender_name", Text),
            ("at_ms", Int),
            ("client_msg_id", Text),
            ("text", Text),
            ("data", Text),
            ("target_seq", Int),
        ],
        identity: false,
        replaces: false,
    },
    Table {
        name: "message_state",
        label: "changed messages",
        columns: &[
            ("room_id", Int),
            ("seq", Int),
            ("text", Text),
            ("edited_at", Int),
            ("deleted_at", Int),
            ("deleted_by", Int),
        ],
        identity: false,
        replaces: false,
    },
    Table {
        name: "reactions",
        label: "reactions",
        columns: &[
            ("room_id", Int),
            ("seq", Int),
            ("reaction", Text),
            ("user_id", Int),
            ("added_seq", Int),
            ("chip_seq", Int),
        ],
        identity: false,
        replaces: false,
    },
    Table {
        name: "mentions",
        label: "mentions",
        columns: &[("user_id", Int), ("room_id", Int), ("seq", Int)],
        identity: false,
        replaces: false,
    },
    Table {
        name: "invites",
        label: "invites",
        columns: &[
            ("code_hash", Bytes),
            ("created_at", Int),
            ("expires_at", Int),
            ("used_by", Int),
            ("used_at", Int),
        ],
        identity: false,
        replaces: false,
    },
    Table {
        name: "sso_token_ids",
        label: "site token ids",
        columns: &[("site", Text), ("jti", Text), ("expires_at", Int)],
        identity: false,
        replaces: false,
    },
    Table {
        name: "archive_chats",
        label: "archive chats",
        columns: &[("key", Text), ("room_id", Int)],
        identity: false,
        replaces: false,
    },
];

/// Columns of the SQLite schema that are not copied, each because the
/// PostgreSQL store has no use for it: the events' arrival-order id and
/// the hash their idempotency index is keyed by (PostgreSQL keys both
/// by the columns themselves).
#[cfg(test)]
pub(crate) const SQLITE_ONLY: &[(&str, &str)] = &[("events", "id"), ("events", "client_msg_hash")];

/// One value of a row on its way from one store to the other.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Cell {
    Int(Option<i64>),
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
    Bool(Option<bool>),
}

impl Cell {
    /// About how many bytes the value holds, so a batch of long
    /// messages stays as small in memory as a batch of short ones.
    pub(crate) fn size(&self) -> usize {
        8 + match self {
            Cell::Text(Some(s)) => s.len(),
            Cell::Bytes(Some(b)) => b.len(),
            _ => 0,
        }
    }
}

/// Rows of one table (an index into [`TABLES`]), in its columns' order.
pub(crate) struct Batch {
    pub table: usize,
    pub rows: Vec<Vec<Cell>>,
}
