//! The SQLite schema and its migrations, applied in order at start-up and
//! tracked with `PRAGMA user_version`.

use rusqlite::{Connection, OptionalExtension};

use crate::store::{StoreError, StoreResult};

/// One step of the schema: SQL, then an optional fix-up in Rust for what
/// SQL alone cannot compute. Never edit a released one.
struct Migration {
    sql: &'static str,
    then: Option<fn(&Connection) -> rusqlite::Result<()>>,
}

/// Each entry moves the schema one version forward.
const MIGRATIONS: &[Migration] = &[
    Migration {
        then: None,
        sql: r#"
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
    },
    Migration {
        then: None,
        sql: r#"
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
    },
    // Events move from a table clustered by (room, seq) to one in arrival
    // order. Every room appends at the end of its own key range, so the
    // clustered layout rewrote (and split) a full-row leaf per busy room on
    // every group commit; now the rows of a commit share the last pages of
    // one table, and only two small index entries per event land in
    // per-room or random places: about 40% fewer pages written per message.
    // Idempotency keys are looked up by a 64-bit hash (see
    // `client_msg_hash`), the smallest index entry that finds them.
    Migration {
        then: Some(copy_events_v3),
        sql: r#"
CREATE TABLE events_v3 (
    id              INTEGER PRIMARY KEY,
    room_id         INTEGER NOT NULL REFERENCES rooms(id),
    seq             INTEGER NOT NULL,
    kind            TEXT NOT NULL,
    sender_id       INTEGER NOT NULL,
    sender_name     TEXT NOT NULL,
    at_ms           INTEGER NOT NULL,
    client_msg_id   TEXT,
    text            TEXT,
    data            TEXT,
    client_msg_hash INTEGER
);
"#,
    },
    // Accounts can be deactivated (by their owner or the admin API), and
    // registration can require an invite; invites are kept by the hash of
    // their code, which is shown once. Rooms belong to a community: the
    // site of the user who created them, '' for local users, NULL for
    // everyone (rooms of the system user).
    Migration {
        then: None,
        sql: r#"
ALTER TABLE users ADD COLUMN deactivated_at INTEGER;
ALTER TABLE rooms ADD COLUMN community TEXT;
UPDATE rooms SET community = (
    SELECT CASE WHEN instr(u.username, ':') > 0
                THEN substr(u.username, 1, instr(u.username, ':') - 1)
                ELSE '' END
    FROM users u WHERE u.id = rooms.created_by
);
UPDATE rooms SET community = NULL WHERE community = 'natter';
CREATE TABLE invites (
    code_hash  BLOB PRIMARY KEY,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_by    INTEGER REFERENCES users(id),
    used_at    INTEGER
);
"#,
    },
    // Messages people can change (see store/sqlite/encoding.rs and
    // queries/messages.rs): changes and replies name their message in
    // `target_seq`; the current state of changed messages and every
    // reaction live beside the log. Only messages that changed get a
    // state row, so sending writes what it wrote before.
    Migration {
        then: None,
        sql: r#"
ALTER TABLE events ADD COLUMN target_seq INTEGER;
CREATE INDEX events_by_target ON events(room_id, target_seq) WHERE target_seq IS NOT NULL;
-- History lists what a room shows and folds the changes in: a page of 50
-- reads 50 entries of this index however many reactions lie between.
CREATE INDEX events_shown ON events(room_id, seq)
    WHERE kind IN ('message', 'room_created', 'member_joined', 'member_left', 'room_updated');
CREATE TABLE message_state (
    room_id    INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    text       TEXT,
    edited_at  INTEGER,
    deleted_at INTEGER,
    deleted_by INTEGER,
    PRIMARY KEY (room_id, seq)
) WITHOUT ROWID;
CREATE TABLE reactions (
    room_id   INTEGER NOT NULL,
    seq       INTEGER NOT NULL,
    reaction  TEXT NOT NULL,
    user_id   INTEGER NOT NULL,
    added_seq INTEGER NOT NULL,
    chip_seq  INTEGER NOT NULL,
    PRIMARY KEY (room_id, seq, reaction, user_id)
) WITHOUT ROWID;
"#,
    },
    // The conversation view: who each message mentions (kept from its
    // current text, for mention counts), and each member's notification
    // choice for the room (NULL: the default for the room's kind); and
    // the rooms archive imports made.
    Migration {
        then: Some(fill_mentions_v6),
        sql: r#"
CREATE TABLE mentions (
    user_id INTEGER NOT NULL,
    room_id INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    PRIMARY KEY (user_id, room_id, seq)
) WITHOUT ROWID;
CREATE INDEX mentions_by_message ON mentions(room_id, seq);
ALTER TABLE members ADD COLUMN notify TEXT;
-- The rooms imports of an archive made (archive/import.rs), so a second
-- import finds them.
CREATE TABLE archive_chats (
    key     TEXT PRIMARY KEY,
    room_id INTEGER NOT NULL UNIQUE REFERENCES rooms(id)
) WITHOUT ROWID;
"#,
    },
];

/// The schema version this natter writes: a data folder is copied to
/// another store only at this version, whose tables the copy knows.
pub(super) fn newest_version() -> usize {
    MIGRATIONS.len()
}

/// Migration 6's fill: the mentions of every message already stored, read
/// from its current text as sending would have.
fn fill_mentions_v6(conn: &Connection) -> rusqlite::Result<()> {
    let mut select = conn.prepare(
        "SELECT e.room_id, e.seq, e.sender_id, COALESCE(s.text, e.text)
         FROM events e LEFT JOIN message_state s ON s.room_id = e.room_id AND s.seq = e.seq
         WHERE e.kind = 'message' AND s.deleted_at IS NULL
           AND COALESCE(s.text, e.text) LIKE '%<@%'",
    )?;
    let mut insert =
        conn.prepare("INSERT OR IGNORE INTO mentions (user_id, room_id, seq) VALUES (?1, ?2, ?3)")?;
    let rows = select.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, String>(3)?,
        ))
    })?;
    for row in rows {
        let (room, seq, sender, text) = row?;
        for user in crate::mentions::mentioned(&text) {
            if user.0 != sender {
                insert.execute(rusqlite::params![user.0, room, seq])?;
            }
        }
    }
    Ok(())
}

/// The idempotency key of a message as the events index stores it: the
/// first 8 bytes of SHA-256 over room, sender and client message id. Stable
/// across versions and platforms (it is on disk); a collision only costs a
/// second row to compare, since lookups also match the full key.
pub fn client_msg_hash(room: i64, sender: i64, client_msg_id: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(room.to_be_bytes());
    hasher.update(sender.to_be_bytes());
    hasher.update(client_msg_id.as_bytes());
    let digest = hasher.finalize();
    i64::from_be_bytes(
        digest[..8]
            .try_into()
            .expect("a SHA-256 digest has 32 bytes"),
    )
}

/// Migration 3's copy: every event, room by room so each room's history
/// stays contiguous, with its idempotency key hashed on the way (SQL has no
/// SHA-256), a bounded chunk at a time; then the old table makes way.
fn copy_events_v3(conn: &Connection) -> rusqlite::Result<()> {
    const CHUNK: i64 = 10_000;
    type Row = (
        i64,
        i64,
        String,
        i64,
        String,
        i64,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let mut select = conn.prepare(
        "SELECT room_id, seq, kind, sender_id, sender_name, at_ms, client_msg_id, text, data
         FROM events WHERE (room_id, seq) > (?1, ?2) ORDER BY room_id, seq LIMIT ?3",
    )?;
    let mut insert = conn.prepare(
        "INSERT INTO events_v3 (room_id, seq, kind, sender_id, sender_name, at_ms,
                                client_msg_id, text, data, client_msg_hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    let mut last = (i64::MIN, i64::MIN);
    loop {
        let rows: Vec<Row> = select
            .query_map(rusqlite::params![last.0, last.1, CHUNK], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let Some(end) = rows.last().map(|r| (r.0, r.1)) else {
            break;
        };
        for (room, seq, kind, sender, name, at, client_msg_id, text, data) in rows {
            let hash = client_msg_id
                .as_deref()
                .map(|id| client_msg_hash(room, sender, id));
            insert.execute(rusqlite::params![
                room,
                seq,
                kind,
                sender,
                name,
                at,
                client_msg_id,
                text,
                data,
                hash
            ])?;
        }
        last = end;
    }
    conn.execute_batch(
        "DROP TABLE events;
         ALTER TABLE events_v3 RENAME TO events;
         CREATE UNIQUE INDEX events_by_room ON events(room_id, seq, sender_id, kind);
         CREATE INDEX events_idempotency ON events(client_msg_hash)
             WHERE client_msg_hash IS NOT NULL;",
    )
}

/// Brings the database to the newest schema and returns the deployment id,
/// creating it on first start.
pub fn migrate(conn: &mut Connection) -> StoreResult<Identity> {
    let internal = |e: rusqlite::Error| StoreError::Internal(e.to_string());
    let version: usize = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(internal)?;
    if version > MIGRATIONS.len() {
        // An older binary would write rows the newer schema cannot find
        // (idempotency keys without their hash, for one).
        return Err(StoreError::Internal(format!(
            "the database has schema version {version}, written by a newer natter; \
             this one knows versions up to {}",
            MIGRATIONS.len()
        )));
    }
    apply(conn, version).map_err(internal)
}

fn apply(conn: &mut Connection, version: usize) -> rusqlite::Result<Identity> {
    for (i, migration) in MIGRATIONS.iter().enumerate().skip(version) {
        // Some steps rewrite whole tables: say so before a long wait.
        tracing::info!(schema.version = i + 1, "migrating the sqlite schema");
        let tx = conn.transaction()?;
        tx.execute_batch(migration.sql)?;
        if let Some(then) = migration.then {
            then(&tx)?;
        }
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
        tx.commit()?;
        tracing::info!(schema.version = i + 1, "sqlite schema migrated");
    }
    if version < MIGRATIONS.len() {
        // A migration that rewrote a table left a WAL as large as the
        // table; copy it back and shrink the file now, before serving.
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    }
    let existing: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'deployment_id'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    let deployment_id = match existing.and_then(|v| u64::from_str_radix(&v, 16).ok()) {
        Some(id) => id,
        None => {
            let id: u64 = rand::random::<u64>() | 1;
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('deployment_id', ?1)",
                [format!("{id:016x}")],
            )?;
            id
        }
    };
    Ok(Identity {
        deployment_id,
        cursor_key: cursor_key(conn)?,
    })
}

/// What a data folder is: its deployment id, and the secret that signs
/// its cursors.
pub struct Identity {
    pub deployment_id: u64,
    pub cursor_key: [u8; 32],
}

impl std::fmt::Debug for Identity {
    // Never print the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("deployment_id", &self.deployment_id)
            .finish_non_exhaustive()
    }
}

/// The deployment's cursor key, made on first use: 32 random bytes, kept
/// in `meta` and never sent anywhere.
fn cursor_key(conn: &Connection) -> rusqlite::Result<[u8; 32]> {
    let stored: Option<Vec<u8>> = conn
        .query_row("SELECT value FROM meta WHERE key = 'cursor_key'", [], |r| {
            r.get::<_, String>(0)
        })
        .optional()?
        .and_then(|hex| {
            (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
                .collect()
        });
    if let Some(key) = stored.and_then(|k| <[u8; 32]>::try_from(k).ok()) {
        return Ok(key);
    }
    let key: [u8; 32] = rand::random();
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    conn.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('cursor_key', ?1)",
        [hex],
    )?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::{MIGRATIONS, migrate};
    use crate::model::{EventBody, RoomId, UserId};
    use crate::store::sqlite::queries;
    use crate::store::{Action, NewEvent, Outcome};

    /// A send through the store's write path, as `(seq, duplicate)`.
    fn send(
        conn: &Connection,
        room: i64,
        sender: i64,
        client_msg_id: &str,
        text: &str,
    ) -> Result<(i64, bool), crate::store::StoreError> {
        let change = NewEvent {
            room: RoomId(room),
            actor: UserId(sender),
            actor_name: "Ann".into(),
            at: 20,
            action: Action::Send {
                client_msg_id: client_msg_id.into(),
                text: text.into(),
                reply_to: None,
            },
        };
        Ok(match queries::append(conn, &change)?.outcome {
            Outcome::Appended(e) => (e.seq, false),
            Outcome::Unchanged(e) => (e.expect("a retried send has its message").seq, true),
        })
    }

    type EventShape = (i64, i64, String, Option<String>, Option<String>);

    /// Room, seq, kind, text and data of every event, in `order`.
    fn events_in_order(conn: &Connection, order: &str) -> Vec<EventShape> {
        conn.prepare(&format!(
            "SELECT room_id, seq, kind, text, data FROM events ORDER BY {order}"
        ))
        .unwrap()
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    /// A database from a newer natter is refused, not written to: this
    /// binary would store rows that the newer schema cannot find.
    #[test]
    fn a_newer_schema_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(&format!("PRAGMA user_version = {}", MIGRATIONS.len() + 1))
            .unwrap();
        let refused = migrate(&mut conn).unwrap_err().to_string();
        assert!(refused.contains("newer natter"), "{refused}");
        let tables: i64 = conn
            .query_row("SELECT COUNT(*) FROM sqlite_schema", [], |r| r.get(0))
            .unwrap();
        assert_eq!(tables, 0, "nothing was created");
    }

    /// Rooms made before schema 4 belong to their creator's community:
    /// a site user's to the site, a local user's to the local community,
    /// the system user's to everyone; users start active.
    #[test]
    fn migration_4_gives_old_rooms_their_creators_community() {
        let mut conn = Connection::open_in_memory().unwrap();
        for migration in &MIGRATIONS[..3] {
            conn.execute_batch(migration.sql).unwrap();
        }
        conn.execute_batch(
            "PRAGMA user_version = 3;
             INSERT INTO users (id, username, display_name, password_hash, created_at, site, external_id) VALUES
                 (1, 'ann', 'Ann', 'x', 0, NULL, NULL),
                 (2, 'school:7', 'Li', '', 0, 'school', '7'),
                 (3, 'natter:system', 'natter', '', 0, 'natter', 'system');
             INSERT INTO rooms (id, kind, title, visibility, created_by, created_at, head) VALUES
                 (1, 'group', 'local', 'public', 1, 0, 1),
                 (2, 'group', 'class', 'public', 2, 0, 1),
                 (3, 'group', 'notices', 'private', 3, 0, 1);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let communities: Vec<Option<String>> = conn
            .prepare("SELECT community FROM rooms ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            communities,
            [Some(String::new()), Some("school".into()), None]
        );
        let deactivated: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM users WHERE deactivated_at IS NOT NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(deactivated, 0);
    }

    /// Messages stored before mentions were counted get their mentions
    /// from their current text: an edit's, none for a deleted one, never
    /// the sender's own.
    #[test]
    fn migration_6_finds_the_mentions_already_stored() {
        let mut conn = Connection::open_in_memory().unwrap();
        for migration in &MIGRATIONS[..5] {
            conn.execute_batch(migration.sql).unwrap();
        }
        conn.execute_batch(
            "PRAGMA user_version = 5;
             INSERT INTO users (id, username, display_name, password_hash, created_at) VALUES
                 (1, 'ann', 'Ann', 'x', 0);
             INSERT INTO rooms (id, kind, title, visibility, created_by, created_at, head) VALUES
                 (1, 'group', 'class', 'public', 1, 0, 4);
             INSERT INTO events (room_id, seq, kind, sender_id, sender_name, at_ms, client_msg_id, text) VALUES
                 (1, 1, 'message', 1, 'Ann', 0, 'a', '<@2> hi <@1>'),
                 (1, 2, 'message', 1, 'Ann', 0, 'b', NULL),
                 (1, 3, 'message', 1, 'Ann', 0, 'c', 'plain'),
                 (1, 4, 'message', 1, 'Ann', 0, 'd', 'nobody, <@x>');
             INSERT INTO message_state (room_id, seq, text, edited_at, deleted_at, deleted_by) VALUES
                 (1, 2, NULL, NULL, 5, 1),
                 (1, 3, 'now <@3>', 6, NULL, NULL);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let mentions: Vec<(i64, i64)> = conn
            .prepare("SELECT user_id, seq FROM mentions ORDER BY seq, user_id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(mentions, [(2, 1), (3, 3)]);
    }

    /// A database written by schema version 2 keeps its history, its order
    /// and its idempotency keys across the move to arrival-order events.
    #[test]
    fn version_2_events_survive_migration_3() {
        let mut conn = Connection::open_in_memory().unwrap();
        for migration in &MIGRATIONS[..2] {
            conn.execute_batch(migration.sql).unwrap();
        }
        conn.execute_batch(
            "PRAGMA user_version = 2;
             INSERT INTO users (id, username, display_name, password_hash, created_at)
                 VALUES (1, 'ann', 'Ann', 'x', 0), (2, 'bob', 'Bob', 'x', 0);
             INSERT INTO rooms (id, kind, title, visibility, created_by, created_at, head)
                 VALUES (1, 'group', 'one', 'public', 1, 0, 3), (2, 'group', 'two', 'public', 2, 0, 2);
             INSERT INTO members (room_id, user_id, role, since_seq, changed_seq, active)
                 VALUES (1, 1, 'owner', 1, 1, 1), (2, 2, 'owner', 1, 1, 1);
             INSERT INTO events (room_id, seq, kind, sender_id, sender_name, at_ms, client_msg_id, text, data) VALUES
                 (2, 1, 'room_updated', 2, 'Bob', 10, NULL, NULL, '{\"type\":\"room_updated\",\"title\":\"two\",\"visibility\":\"public\"}'),
                 (1, 1, 'room_updated', 1, 'Ann', 11, NULL, NULL, '{\"type\":\"room_updated\",\"title\":\"one\",\"visibility\":\"public\"}'),
                 (2, 2, 'message', 2, 'Bob', 12, 'b-1', 'hi from two', NULL),
                 (1, 2, 'message', 1, 'Ann', 13, 'a-1', 'first', NULL),
                 (1, 3, 'message', 1, 'Ann', 14, 'a-2', 'second', NULL);
             -- More messages than one chunk of the hashing step.
             WITH RECURSIVE n(i) AS (SELECT 3 UNION ALL SELECT i + 1 FROM n WHERE i < 25002)
             INSERT INTO events (room_id, seq, kind, sender_id, sender_name, at_ms, client_msg_id, text, data)
                 SELECT 2, i, 'message', 2, 'Bob', 15, 'b-' || i, 'bulk ' || i, NULL FROM n;
             UPDATE rooms SET head = 25002 WHERE id = 2;",
        )
        .unwrap();
        let before = |conn: &Connection, room| {
            queries::history(conn, RoomId(room), None, 10)
                .unwrap()
                .entries
                .into_iter()
                .map(|c| (c.event.seq, c.event.sender.0, c.event.at, c.event.body))
                .collect::<Vec<_>>()
        };
        let old_shape = events_in_order(&conn, "room_id, seq");

        migrate(&mut conn).unwrap();

        let version: usize = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len());
        let new_shape = events_in_order(&conn, "id");
        assert_eq!(
            new_shape, old_shape,
            "every event kept, each room contiguous"
        );
        let room_one = before(&conn, 1);
        assert_eq!(room_one.iter().map(|e| e.0).collect::<Vec<_>>(), [1, 2, 3]);
        assert!(
            matches!(&room_one[2].3, EventBody::Message { text, client_msg_id, .. } if text == "second" && client_msg_id == "a-2")
        );

        // A retry of a message sent before the migration is recognised...
        assert_eq!(send(&conn, 1, 1, "a-1", "first").unwrap(), (2, true));
        assert!(matches!(
            send(&conn, 1, 1, "a-1", "changed"),
            Err(crate::store::StoreError::IdempotencyConflict)
        ));
        // ...the same id in another room or from another sender is not one,
        // and new messages continue the room's sequence.
        assert_eq!(send(&conn, 1, 1, "b-1", "new").unwrap(), (4, false));
        assert_eq!(send(&conn, 1, 1, "b-1", "new").unwrap(), (4, true));
        // A message from deep in the last hashing chunk is found as well.
        assert_eq!(
            send(&conn, 2, 2, "b-24999", "bulk 24999").unwrap(),
            (24999, true)
        );
        let unhashed: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM events WHERE client_msg_id IS NOT NULL AND client_msg_hash IS NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(unhashed, 0);
    }
}
