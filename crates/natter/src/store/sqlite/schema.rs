//! The SQLite schema and its migrations, applied in order at start-up and
//! tracked with `PRAGMA user_version`.

use rusqlite::{Connection, OptionalExtension};

/// Each entry moves the schema one version forward; never edit a released one.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    avatar_url    TEXT,
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE TABLE sessions (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id),
    token_hash   BLOB NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    ended_reason TEXT,
    ended_at     INTEGER
);
CREATE INDEX sessions_live_by_user ON sessions(user_id) WHERE ended_reason IS NULL;
CREATE TABLE rooms (
    id         INTEGER PRIMARY KEY,
    kind       TEXT NOT NULL,
    title      TEXT NOT NULL,
    visibility TEXT NOT NULL,
    direct_key TEXT UNIQUE,
    created_by INTEGER NOT NULL REFERENCES users(id),
    created_at INTEGER NOT NULL,
    head       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX rooms_public ON rooms(visibility, id);
CREATE TABLE members (
    room_id     INTEGER NOT NULL REFERENCES rooms(id),
    user_id     INTEGER NOT NULL REFERENCES users(id),
    role        TEXT NOT NULL,
    since_seq   INTEGER NOT NULL,
    changed_seq INTEGER NOT NULL,
    active      INTEGER NOT NULL,
    read_seq    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, user_id)
) WITHOUT ROWID;
CREATE INDEX members_by_user ON members(user_id, room_id);
CREATE TABLE events (
    room_id       INTEGER NOT NULL REFERENCES rooms(id),
    seq           INTEGER NOT NULL,
    kind          TEXT NOT NULL,
    sender_id     INTEGER NOT NULL,
    sender_name   TEXT NOT NULL,
    at_ms         INTEGER NOT NULL,
    client_msg_id TEXT,
    text          TEXT,
    data          TEXT,
    PRIMARY KEY (room_id, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX events_idempotency ON events(room_id, sender_id, client_msg_id)
    WHERE client_msg_id IS NOT NULL;
"#,
    r#"
ALTER TABLE users ADD COLUMN site TEXT;
ALTER TABLE users ADD COLUMN external_id TEXT;
CREATE UNIQUE INDEX users_by_site ON users(site, external_id) WHERE site IS NOT NULL;
CREATE TABLE sso_token_ids (
    site       TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (site, jti)
) WITHOUT ROWID;
"#,
];

/// Brings the database to the newest schema and returns the deployment id,
/// creating it on first start.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<u64> {
    let version: usize = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
        tx.commit()?;
        tracing::info!(schema.version = i + 1, "sqlite schema migrated");
    }
    let existing: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'deployment_id'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(hex) = existing.and_then(|v| u64::from_str_radix(&v, 16).ok()) {
        return Ok(hex);
    }
    let id: u64 = rand::random::<u64>() | 1;
    conn.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('deployment_id', ?1)",
        [format!("{id:016x}")],
    )?;
    Ok(id)
}
