//! The SQL behind each store operation, as plain functions on a connection
//! so the same statements serve the writer thread and the readers: rooms,
//! membership and the event log here, messages and their current state in
//! `messages.rs`, users and sessions in `accounts.rs`.

mod accounts;
mod archive;
mod messages;

pub use self::accounts::*;
pub use self::archive::{archive_keys, import_chat, rooms_after};
pub use self::messages::{history, message};

use rusqlite::{Connection, OptionalExtension, params};

use super::encoding::{self, EVENT_COLUMNS};
use super::rows::{self, ROOM_COLUMNS, USER_COLUMNS, store_error};
use crate::model::{
    Event, EventBody, Millis, NotifyLevel, Role, Room, RoomId, RoomKind, Seq, User, UserId,
    Visibility,
};
use crate::store::{
    Action, Appended, MemberProfile, MemberQuery, MembershipRecord, NewEvent, NewRoom, Outcome,
    PeopleQuery, RoomSnapshot, RoomSummary, StoreError, StoreResult,
};

type R<T> = StoreResult<T>;

fn q<T>(r: rusqlite::Result<T>) -> R<T> {
    r.map_err(store_error)
}

/// A one-row query through the connection's statement cache, so hot
/// statements are parsed once per connection, not once per call.
fn row<T, P: rusqlite::Params>(
    conn: &Connection,
    sql: &str,
    params: P,
    read: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.prepare_cached(sql)?.query_row(params, read)
}

/// A statement through the connection's statement cache.
fn exec<P: rusqlite::Params>(conn: &Connection, sql: &str, params: P) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

/// Appends `body` as the room's next event, assigning the next sequence.
fn append_event(
    conn: &Connection,
    room: RoomId,
    sender: UserId,
    sender_name: &str,
    at: Millis,
    body: EventBody,
) -> R<Event> {
    let seq: Seq = q(row(
        conn,
        "UPDATE rooms SET head = head + 1 WHERE id = ?1 RETURNING head",
        [room.0],
        |r| r.get(0),
    )
    .optional())?
    .ok_or(StoreError::NotFound("room"))?;
    let columns = encoding::columns(&body);
    let hash = columns
        .client_msg_id
        .map(|id| super::schema::client_msg_hash(room.0, sender.0, id));
    q(exec(
        conn,
        &format!(
            "INSERT INTO events ({EVENT_COLUMNS}, client_msg_hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
        ),
        params![
            room.0,
            seq,
            body.kind(),
            sender.0,
            sender_name,
            at,
            columns.client_msg_id,
            columns.text,
            columns.data,
            columns.target_seq,
            hash
        ],
    ))?;
    Ok(Event {
        room,
        seq,
        at,
        sender,
        sender_name: sender_name.to_owned(),
        body,
        encoded: Default::default(),
    })
}

fn insert_founder(conn: &Connection, room: RoomId, user: UserId, role: Role) -> R<()> {
    q(exec(
        conn,
        "INSERT INTO members (room_id, user_id, role, since_seq, changed_seq, active)
         VALUES (?1, ?2, ?3, 1, 1, 1)",
        params![room.0, user.0, rows::role_str(role)],
    ))?;
    Ok(())
}

pub fn create_room(conn: &Connection, n: &NewRoom) -> R<(Room, Event)> {
    q(exec(
        conn,
        "INSERT INTO rooms (kind, title, visibility, created_by, created_at, community)
         VALUES ('group', ?1, ?2, ?3, ?4, ?5)",
        params![
            n.title,
            rows::visibility_str(n.visibility),
            n.creator.0,
            n.at,
            n.community
        ],
    ))?;
    let id = RoomId(conn.last_insert_rowid());
    insert_founder(conn, id, n.creator, Role::Owner)?;
    let event = append_event(
        conn,
        id,
        n.creator,
        &n.creator_name,
        n.at,
        EventBody::RoomCreated {
            title: n.title.clone(),
            kind: RoomKind::Group,
            visibility: n.visibility,
            members: vec![n.creator],
        },
    )?;
    let room = room(conn, id)?.ok_or(StoreError::NotFound("room"))?;
    Ok((room, event))
}

pub fn open_direct(
    conn: &Connection,
    opener: UserId,
    opener_name: &str,
    peer: UserId,
    at: Millis,
) -> R<(Room, Option<Event>)> {
    let key = format!("{}:{}", opener.0.min(peer.0), opener.0.max(peer.0));
    let existing: Option<Room> = q(row(
        conn,
        &format!("SELECT {ROOM_COLUMNS} FROM rooms WHERE direct_key = ?1"),
        [&key],
        rows::room,
    )
    .optional())?;
    if let Some(room) = existing {
        return Ok((room, None));
    }
    if user(conn, peer)?.is_none() {
        return Err(StoreError::NotFound("user"));
    }
    q(exec(
        conn,
        "INSERT INTO rooms (kind, title, visibility, direct_key, created_by, created_at)
         VALUES ('direct', '', 'private', ?1, ?2, ?3)",
        params![key, opener.0, at],
    ))?;
    let id = RoomId(conn.last_insert_rowid());
    insert_founder(conn, id, opener, Role::Member)?;
    insert_founder(conn, id, peer, Role::Member)?;
    let event = append_event(
        conn,
        id,
        opener,
        opener_name,
        at,
        EventBody::RoomCreated {
            title: String::new(),
            kind: RoomKind::Direct,
            visibility: Visibility::Private,
            members: vec![opener, peer],
        },
    )?;
    let room = room(conn, id)?.ok_or(StoreError::NotFound("room"))?;
    Ok((room, Some(event)))
}

pub fn room(conn: &Connection, id: RoomId) -> R<Option<Room>> {
    q(row(
        conn,
        &format!("SELECT {ROOM_COLUMNS} FROM rooms WHERE id = ?1"),
        [id.0],
        rows::room,
    )
    .optional())
}

/// The heads of `rooms`, in one statement however many: the ids go as
/// one JSON array.
pub fn room_heads(conn: &Connection, rooms: &[RoomId]) -> R<Vec<(RoomId, Seq)>> {
    let ids =
        serde_json::to_string(&rooms.iter().map(|r| r.0).collect::<Vec<_>>()).expect("ids encode");
    let mut stmt = q(conn.prepare_cached(
        "SELECT id, head FROM rooms WHERE id IN (SELECT value FROM json_each(?1))",
    ))?;
    q(stmt
        .query_map([ids], |r| Ok((RoomId(r.get(0)?), r.get(1)?)))
        .and_then(|it| it.collect()))
}

pub fn room_snapshot(conn: &Connection, id: RoomId) -> R<Option<RoomSnapshot>> {
    // One read transaction, so the head and the member set describe the
    // same moment.
    let tx = q(conn.unchecked_transaction())?;
    let Some(room) = room(&tx, id)? else {
        return Ok(None);
    };
    let mut stmt = q(
        tx.prepare_cached("SELECT user_id, role FROM members WHERE room_id = ?1 AND active = 1")
    )?;
    let members = q(stmt
        .query_map([id.0], |r| {
            Ok((UserId(r.get(0)?), rows::role(&r.get::<_, String>(1)?)))
        })
        .and_then(|it| it.collect::<Result<Vec<_>, _>>()))?;
    drop(stmt);
    let head_event = events_after(&tx, id, room.head - 1, 1)?
        .pop()
        .filter(|e| e.seq == room.head);
    q(tx.finish())?;
    Ok(Some(RoomSnapshot {
        room,
        head_event,
        members,
    }))
}

pub fn public_rooms(conn: &Connection, limit: usize, community: Option<&str>) -> R<Vec<Room>> {
    // ?2 NULL lists every community's rooms; else that community's and
    // everyone's (community NULL).
    let mut stmt = q(conn.prepare_cached(&format!(
        "SELECT {ROOM_COLUMNS} FROM rooms WHERE visibility = 'public' AND kind = 'group'
         AND (?2 IS NULL OR community IS NULL OR community = ?2)
         ORDER BY id DESC LIMIT ?1"
    )))?;
    q(stmt
        .query_map(params![limit as i64, community], rows::room)
        .and_then(|it| it.collect()))
}

/// Appends `n` if it changes anything: the store's one write path of room
/// events (see `Store::append`).
pub fn append(conn: &Connection, n: &NewEvent) -> R<Appended> {
    let outcome = apply(conn, n)?;
    let target = match &n.action {
        Action::Edit { target, .. }
        | Action::Delete { target }
        | Action::React { target, .. }
        | Action::Unreact { target, .. } => Some(*target),
        _ => None,
    };
    let message = match target {
        Some(seq) => message(conn, n.room, seq)?,
        None => None,
    };
    Ok(Appended { outcome, message })
}

/// Checks and applies one action; see `append`.
fn apply(conn: &Connection, n: &NewEvent) -> R<Outcome> {
    let (room, actor, name, at) = (n.room, n.actor, n.actor_name.as_str(), n.at);
    let appended = |event: Option<Event>| match event {
        Some(event) => Outcome::Appended(event),
        None => Outcome::Unchanged(None),
    };
    match &n.action {
        Action::Send {
            client_msg_id,
            text,
            reply_to,
        } => messages::send(conn, n, client_msg_id, text, *reply_to),
        Action::Edit {
            target,
            text,
            sent_after,
        } => messages::edit(conn, n, *target, text, *sent_after),
        Action::Delete { target } => messages::delete(conn, n, *target),
        Action::React { target, reaction } => messages::react(conn, n, *target, reaction),
        Action::Unreact { target, reaction } => messages::unreact(conn, n, *target, reaction),
        Action::Join { user, role } => {
            add_member(conn, room, *user, *role, actor, name, at).map(appended)
        }
        Action::Leave { user } => remove_member(conn, room, *user, at).map(appended),
        Action::UpdateRoom { title, visibility } => {
            update_room(conn, room, actor, name, title, *visibility, at).map(appended)
        }
    }
}

fn update_room(
    conn: &Connection,
    id: RoomId,
    by: UserId,
    by_name: &str,
    title: &str,
    visibility: Visibility,
    at: Millis,
) -> R<Option<Event>> {
    let current = room(conn, id)?.ok_or(StoreError::NotFound("room"))?;
    if current.kind == RoomKind::Direct {
        return Err(StoreError::NotAllowed(
            "a direct conversation cannot be changed",
        ));
    }
    if !member_role(conn, id, by)?.is_some_and(Role::can_manage) {
        return Err(StoreError::NotAllowed(
            "only the room's owner and admins can change it",
        ));
    }
    if current.title == title && current.visibility == visibility {
        return Ok(None);
    }
    let changed = q(exec(
        conn,
        "UPDATE rooms SET title = ?1, visibility = ?2 WHERE id = ?3 AND kind = 'group'",
        params![title, rows::visibility_str(visibility), id.0],
    ))?;
    if changed == 0 {
        return Err(StoreError::NotFound("room"));
    }
    append_event(
        conn,
        id,
        by,
        by_name,
        at,
        EventBody::RoomUpdated {
            title: title.to_owned(),
            visibility,
        },
    )
    .map(Some)
}

pub fn members(conn: &Connection, room: RoomId) -> R<Vec<MemberProfile>> {
    let everyone = MemberQuery {
        after: None,
        text: None,
        limit: i64::MAX as usize,
    };
    member_page(conn, room, &everyone)
}

/// A page of active members by display name then id; `after` is a
/// place by the name it carries or, without one, by the member's current
/// name, found in the same statement among the room's member rows (a
/// leaver's row stays), so no page tells the name of anyone who was
/// never in the room.
pub fn member_page(conn: &Connection, room: RoomId, query: &MemberQuery) -> R<Vec<MemberProfile>> {
    let mut stmt = q(conn.prepare_cached(&format!(
        "SELECT m.role, {} FROM members m JOIN users u ON u.id = m.user_id
         WHERE m.room_id = ?1 AND m.active = 1
           AND (?2 IS NULL OR (u.display_name, u.id) >
                (COALESCE(?5, (SELECT u2.display_name FROM members m2 JOIN users u2 ON u2.id = m2.user_id
                  WHERE m2.room_id = ?1 AND m2.user_id = ?2)), ?2))
           AND (?3 IS NULL OR u.display_name LIKE '%' || ?3 || '%' ESCAPE '\\')
         ORDER BY u.display_name, u.id
         LIMIT ?4",
        rows::prefixed(USER_COLUMNS, "u")
    )))?;
    let text = query.text.as_deref().map(like_escaped);
    let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
    q(stmt
        .query_map(
            params![
                room.0,
                query.after.as_ref().map(|p| p.id.0),
                text,
                limit,
                query.after.as_ref().and_then(|p| p.name.as_deref()),
            ],
            |r| {
                Ok(MemberProfile {
                    role: rows::role(&r.get::<_, String>(0)?),
                    user: rows::user_at(r, 1)?,
                })
            },
        )
        .and_then(|it| it.collect()))
}

/// `text` for the middle of a `LIKE … ESCAPE '\'` pattern: its own `%`
/// and `_` match only themselves.
fn like_escaped(text: &str) -> String {
    text.chars()
        .flat_map(|c| match c {
            '%' | '_' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect()
}

pub fn memberships_of(conn: &Connection, user: UserId) -> R<Vec<MembershipRecord>> {
    let mut stmt = q(conn.prepare_cached(
        "SELECT room_id, since_seq, changed_seq, active FROM members WHERE user_id = ?1",
    ))?;
    q(stmt
        .query_map([user.0], |r| {
            Ok(MembershipRecord {
                room: RoomId(r.get(0)?),
                since_seq: r.get(1)?,
                changed_seq: r.get(2)?,
                active: r.get::<_, i64>(3)? != 0,
            })
        })
        .and_then(|it| it.collect()))
}

pub fn room_summaries(conn: &Connection, user: UserId) -> R<Vec<RoomSummary>> {
    let tx = q(conn.unchecked_transaction())?;
    let mut stmt = q(tx.prepare_cached(&format!(
        "SELECT {}, m.role, m.read_seq, m.notify FROM members m JOIN rooms r ON r.id = m.room_id
         WHERE m.user_id = ?1 AND m.active = 1",
        rows::prefixed(ROOM_COLUMNS, "r")
    )))?;
    type Base = (Room, Role, Seq, Option<NotifyLevel>);
    let base: Vec<Base> = q(stmt
        .query_map([user.0], |r| {
            Ok((
                rows::room(r)?,
                rows::role(&r.get::<_, String>(8)?),
                r.get(9)?,
                r.get::<_, Option<String>>(10)?
                    .as_deref()
                    .and_then(NotifyLevel::parse),
            ))
        })
        .and_then(|it| it.collect()))?;
    drop(stmt);
    // Others' messages after the marker, counted in the index alone,
    // less those deleted since (few, found through their state rows).
    let mut unread_stmt = q(tx.prepare_cached(
        "SELECT (SELECT COUNT(*) FROM events
                 WHERE room_id = ?1 AND seq > ?2 AND kind = 'message' AND sender_id != ?3)
              - (SELECT COUNT(*) FROM message_state s
                 JOIN events e ON e.room_id = s.room_id AND e.seq = s.seq
                 WHERE s.room_id = ?1 AND s.seq > ?2 AND s.deleted_at IS NOT NULL
                   AND e.kind = 'message' AND e.sender_id != ?3)",
    ))?;
    let mut last_stmt = q(tx.prepare_cached(
        "SELECT seq FROM events WHERE room_id = ?1 AND kind = 'message' ORDER BY seq DESC LIMIT 1",
    ))?;
    let mut mentions_stmt = q(tx.prepare_cached(
        "SELECT COUNT(*) FROM mentions WHERE user_id = ?1 AND room_id = ?2 AND seq > ?3",
    ))?;
    let mut peer_stmt = q(tx.prepare_cached(&format!(
        "SELECT {}, m.read_seq FROM members m JOIN users u ON u.id = m.user_id
         WHERE m.room_id = ?1 AND m.user_id != ?2 LIMIT 1",
        rows::prefixed(USER_COLUMNS, "u")
    )))?;
    let mut out = Vec::with_capacity(base.len());
    for (room, role, read_seq, notify) in base {
        let unread: i64 =
            q(unread_stmt.query_row(params![room.id.0, read_seq, user.0], |r| r.get(0)))?;
        let mentions: i64 =
            q(mentions_stmt.query_row(params![user.0, room.id.0, read_seq], |r| r.get(0)))?;
        let last: Option<Seq> = q(last_stmt.query_row([room.id.0], |r| r.get(0)).optional())?;
        let last_message = match last {
            Some(seq) => message(&tx, room.id, seq)?,
            None => None,
        };
        let (peer, peer_read_seq) = if room.kind == RoomKind::Direct {
            q(peer_stmt
                .query_row(params![room.id.0, user.0], |r| {
                    Ok((rows::user(r)?, r.get::<_, Seq>(5)?))
                })
                .optional())?
            .unzip()
        } else {
            (None, None)
        };
        out.push(RoomSummary {
            room,
            role,
            read_seq,
            unread,
            mentions,
            notify,
            last_message,
            peer,
            peer_read_seq,
        });
    }
    drop((unread_stmt, mentions_stmt, last_stmt, peer_stmt));
    q(tx.finish())?;
    Ok(out)
}

/// The user's role in the room while they are an active member.
fn member_role(conn: &Connection, room: RoomId, user: UserId) -> R<Option<Role>> {
    let role: Option<String> = q(row(
        conn,
        "SELECT role FROM members WHERE room_id = ?1 AND user_id = ?2 AND active = 1",
        params![room.0, user.0],
        |r| r.get(0),
    )
    .optional())?;
    Ok(role.as_deref().map(rows::role))
}

/// The actor's role, or why they cannot write to the room.
fn require_member(conn: &Connection, room_id: RoomId, user: UserId) -> R<Role> {
    match member_role(conn, room_id, user)? {
        Some(role) => Ok(role),
        None if room(conn, room_id)?.is_none() => Err(StoreError::NotFound("room")),
        None => Err(StoreError::NotAMember),
    }
}

fn add_member(
    conn: &Connection,
    room_id: RoomId,
    user_id: UserId,
    role: Role,
    by: UserId,
    by_name: &str,
    at: Millis,
) -> R<Option<Event>> {
    if member_role(conn, room_id, user_id)?.is_some() {
        return Ok(None);
    }
    let joiner = user(conn, user_id)?.ok_or(StoreError::NotFound("user"))?;
    let event = append_event(
        conn,
        room_id,
        by,
        by_name,
        at,
        EventBody::MemberJoined {
            user: user_id,
            name: joiner.display_name,
            role,
            invited_by: (by != user_id).then_some(by),
        },
    )?;
    q(exec(
        conn,
        // A (re)joined member has read everything up to their join, so
        // unread counts start from there.
        "INSERT INTO members (room_id, user_id, role, since_seq, changed_seq, active, read_seq)
         VALUES (?1, ?2, ?3, ?4, ?4, 1, ?4)
         ON CONFLICT (room_id, user_id) DO UPDATE SET
            role = excluded.role, since_seq = excluded.since_seq,
            changed_seq = excluded.changed_seq, active = 1, read_seq = excluded.read_seq",
        params![room_id.0, user_id.0, rows::role_str(role), event.seq],
    ))?;
    Ok(Some(event))
}

fn remove_member(
    conn: &Connection,
    room_id: RoomId,
    user_id: UserId,
    at: Millis,
) -> R<Option<Event>> {
    if member_role(conn, room_id, user_id)?.is_none() {
        return Ok(None);
    }
    let leaver = user(conn, user_id)?.ok_or(StoreError::NotFound("user"))?;
    let event = append_event(
        conn,
        room_id,
        user_id,
        &leaver.display_name,
        at,
        EventBody::MemberLeft { user: user_id },
    )?;
    q(exec(
        conn,
        "UPDATE members SET active = 0, changed_seq = ?3 WHERE room_id = ?1 AND user_id = ?2",
        params![room_id.0, user_id.0, event.seq],
    ))?;
    Ok(Some(event))
}

pub fn events_after(conn: &Connection, room: RoomId, after: Seq, limit: usize) -> R<Vec<Event>> {
    let mut stmt = q(conn.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE room_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
    )))?;
    q(stmt
        .query_map(params![room.0, after, limit as i64], encoding::read)
        .and_then(|it| it.collect()))
}

pub fn set_notify(
    conn: &Connection,
    room: RoomId,
    user: UserId,
    level: Option<NotifyLevel>,
) -> R<()> {
    let changed = q(exec(
        conn,
        "UPDATE members SET notify = ?3 WHERE room_id = ?1 AND user_id = ?2 AND active = 1",
        params![room.0, user.0, level.map(NotifyLevel::as_str)],
    ))?;
    if changed == 0 {
        return Err(StoreError::NotAMember);
    }
    Ok(())
}

/// Active accounts for a people search: display names containing the
/// text, or the exact username, those whose names start with it first,
/// then by name.
pub fn search_people(conn: &Connection, query: &PeopleQuery) -> R<Vec<User>> {
    let escaped = like_escaped(&query.text);
    let prefix = query.username_prefix.as_deref().unwrap_or("");
    let mut stmt = q(conn.prepare_cached(&format!(
        "SELECT {USER_COLUMNS} FROM users
         WHERE deactivated_at IS NULL
           AND (?2 = '' OR substr(username, 1, length(?2)) = ?2)
           AND (?3 = 0 OR instr(username, ':') = 0)
           AND (display_name LIKE '%' || ?1 || '%' ESCAPE '\\'
                OR substr(username, length(?2) + 1) = lower(?5))
         ORDER BY display_name LIKE ?1 || '%' ESCAPE '\\' DESC, display_name, id
         LIMIT ?4"
    )))?;
    q(stmt
        .query_map(
            params![
                escaped,
                prefix,
                query.local_only,
                query.limit as i64,
                query.text
            ],
            rows::user,
        )
        .and_then(|it| it.collect()))
}

pub fn set_read(conn: &Connection, room: RoomId, user: UserId, seq: Seq) -> R<Seq> {
    q(row(conn,
            "UPDATE members SET read_seq = MAX(read_seq, MIN(?3, (SELECT head FROM rooms WHERE id = ?1)))
             WHERE room_id = ?1 AND user_id = ?2 AND active = 1 RETURNING read_seq",
            params![room.0, user.0, seq],
            |r| r.get(0),
        )
        .optional())?
    .ok_or(StoreError::NotAMember)
}
