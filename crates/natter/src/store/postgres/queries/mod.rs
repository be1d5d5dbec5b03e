//! The SQL behind each store operation, as async functions on a
//! connection or a transaction: rooms, membership and the event log here,
//! sending in `send.rs`, messages and their current state in
//! `messages.rs`, users and sessions in `accounts.rs`, archive imports in
//! `archive.rs`.
//!
//! Every write to a room starts by locking the room's row
//! ([`lock_room`]): a room's writers, on any node, then run one after
//! another, as the SQLite store's single writer runs them, so every check
//! an append makes (membership, idempotency, the target's state) reads
//! what the previous writer committed, and seqs follow commit order.

mod accounts;
mod archive;
mod messages;
mod send;

pub(super) use self::accounts::*;
pub(super) use self::archive::{archive_keys, import_chat, rooms_after};
pub(super) use self::messages::{history, message};
pub(super) use self::send::send_batch;

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::fail::R;
use super::rows::{self, EVENT_COLUMNS, ROOM_COLUMNS, USER_COLUMNS};
use crate::model::{
    Event, EventBody, Millis, NotifyLevel, Role, Room, RoomId, RoomKind, Seq, User, UserId,
    Visibility,
};
use crate::store::{
    Action, Appended, MemberProfile, MemberQuery, MembershipRecord, NewEvent, NewRoom, Outcome,
    PeopleQuery, RoomSnapshot, RoomSummary, StoreError,
};

/// A statement's parameters.
type P<'a> = &'a (dyn ToSql + Sync);

/// At most one row, through the connection's statement cache.
async fn opt(c: &impl GenericClient, sql: &str, params: &[P<'_>]) -> R<Option<Row>> {
    let statement = c.prepare_cached(sql).await?;
    Ok(c.query_opt(&statement, params).await?)
}

/// Exactly one row.
async fn one(c: &impl GenericClient, sql: &str, params: &[P<'_>]) -> R<Row> {
    let statement = c.prepare_cached(sql).await?;
    Ok(c.query_one(&statement, params).await?)
}

/// Every row.
async fn all(c: &impl GenericClient, sql: &str, params: &[P<'_>]) -> R<Vec<Row>> {
    let statement = c.prepare_cached(sql).await?;
    Ok(c.query(&statement, params).await?)
}

/// A statement's count of rows changed.
async fn exec(c: &impl GenericClient, sql: &str, params: &[P<'_>]) -> R<u64> {
    let statement = c.prepare_cached(sql).await?;
    Ok(c.execute(&statement, params).await?)
}

/// A `LIMIT` from a count (PostgreSQL's is a BIGINT).
fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Locks the room's row until the transaction ends: see the module's doc.
/// A room that does not exist locks nothing; the checks that follow say
/// so as the SQLite store would.
pub(super) async fn lock_room(c: &impl GenericClient, room: RoomId) -> R<()> {
    opt(
        c,
        "SELECT 1 FROM rooms WHERE id = $1 FOR NO KEY UPDATE",
        &[&room.0],
    )
    .await?;
    Ok(())
}

/// Appends `body` as the room's next event, assigning the next seq from
/// the room's row in this transaction (never from a SEQUENCE, which can
/// commit out of order).
async fn append_event(
    c: &impl GenericClient,
    room: RoomId,
    sender: UserId,
    sender_name: &str,
    at: Millis,
    body: EventBody,
) -> R<Event> {
    let seq: Seq = opt(
        c,
        "UPDATE rooms SET head = head + 1 WHERE id = $1 RETURNING head",
        &[&room.0],
    )
    .await?
    .ok_or(StoreError::NotFound("room"))?
    .try_get(0)?;
    let columns = crate::columns::columns(&body);
    exec(
        c,
        &format!(
            "INSERT INTO events ({EVENT_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ),
        &[
            &room.0,
            &seq,
            &body.kind(),
            &sender.0,
            &sender_name,
            &at,
            &columns.client_msg_id,
            &columns.text,
            &columns.data,
            &columns.target_seq,
        ],
    )
    .await?;
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

async fn insert_founder(c: &impl GenericClient, room: RoomId, user: UserId, role: Role) -> R<()> {
    exec(
        c,
        "INSERT INTO members (room_id, user_id, role, since_seq, changed_seq, active)
         VALUES ($1, $2, $3, 1, 1, TRUE)",
        &[&room.0, &user.0, &rows::role_str(role)],
    )
    .await?;
    Ok(())
}

pub(super) async fn create_room(c: &impl GenericClient, n: &NewRoom) -> R<(Room, Event)> {
    let id: i64 = one(
        c,
        "INSERT INTO rooms (kind, title, visibility, created_by, created_at, community)
         VALUES ('group', $1, $2, $3, $4, $5) RETURNING id",
        &[
            &n.title,
            &rows::visibility_str(n.visibility),
            &n.creator.0,
            &n.at,
            &n.community,
        ],
    )
    .await?
    .try_get(0)?;
    let id = RoomId(id);
    insert_founder(c, id, n.creator, Role::Owner).await?;
    let event = append_event(
        c,
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
    )
    .await?;
    let room = room(c, id).await?.ok_or(StoreError::NotFound("room"))?;
    Ok((room, event))
}

/// The pair's conversation, made if missing. Two nodes opening it at once
/// both insert; the unique `direct_key` keeps one, and the other's
/// `ON CONFLICT DO NOTHING` (which waits for the first to commit) finds
/// nothing inserted and reads the first's room.
pub(super) async fn open_direct(
    c: &impl GenericClient,
    opener: UserId,
    opener_name: &str,
    peer: UserId,
    at: Millis,
) -> R<(Room, Option<Event>)> {
    let key = format!("{}:{}", opener.0.min(peer.0), opener.0.max(peer.0));
    let by_key = format!("SELECT {ROOM_COLUMNS} FROM rooms WHERE direct_key = $1");
    if let Some(row) = opt(c, &by_key, &[&key]).await? {
        return Ok((rows::room(&row)?, None));
    }
    if user(c, peer).await?.is_none() {
        return Err(StoreError::NotFound("user").into());
    }
    let inserted = opt(
        c,
        "INSERT INTO rooms (kind, title, visibility, direct_key, created_by, created_at)
         VALUES ('direct', '', 'private', $1, $2, $3)
         ON CONFLICT (direct_key) DO NOTHING RETURNING id",
        &[&key, &opener.0, &at],
    )
    .await?;
    let Some(inserted) = inserted else {
        let row = one(c, &by_key, &[&key]).await?;
        return Ok((rows::room(&row)?, None));
    };
    let id = RoomId(inserted.try_get(0)?);
    insert_founder(c, id, opener, Role::Member).await?;
    insert_founder(c, id, peer, Role::Member).await?;
    let event = append_event(
        c,
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
    )
    .await?;
    let room = room(c, id).await?.ok_or(StoreError::NotFound("room"))?;
    Ok((room, Some(event)))
}

pub(super) async fn room(c: &impl GenericClient, id: RoomId) -> R<Option<Room>> {
    opt(
        c,
        &format!("SELECT {ROOM_COLUMNS} FROM rooms WHERE id = $1"),
        &[&id.0],
    )
    .await?
    .map(|r| rows::room(&r))
    .transpose()
}

/// The heads of the rooms with these ids, in one statement.
pub(super) async fn room_heads(c: &impl GenericClient, ids: &[i64]) -> R<Vec<(RoomId, Seq)>> {
    all(c, "SELECT id, head FROM rooms WHERE id = ANY($1)", &[&ids])
        .await?
        .iter()
        .map(|r| Ok((RoomId(r.try_get(0)?), r.try_get(1)?)))
        .collect()
}

/// Run in a repeatable-read transaction, so the head and the member set
/// describe the same moment.
pub(super) async fn room_snapshot(c: &impl GenericClient, id: RoomId) -> R<Option<RoomSnapshot>> {
    let Some(room) = room(c, id).await? else {
        return Ok(None);
    };
    let members = all(
        c,
        "SELECT user_id, role FROM members WHERE room_id = $1 AND active",
        &[&id.0],
    )
    .await?
    .iter()
    .map(|r| Ok((UserId(r.try_get(0)?), rows::role(r.try_get(1)?))))
    .collect::<R<Vec<_>>>()?;
    let head_event = events_after(c, id, room.head - 1, 1)
        .await?
        .pop()
        .filter(|e| e.seq == room.head);
    Ok(Some(RoomSnapshot {
        room,
        head_event,
        members,
    }))
}

pub(super) async fn public_rooms(
    c: &impl GenericClient,
    n: usize,
    community: Option<&str>,
) -> R<Vec<Room>> {
    // $2 NULL lists every community's rooms; else that community's and
    // everyone's (community NULL).
    all(
        c,
        &format!(
            "SELECT {ROOM_COLUMNS} FROM rooms WHERE visibility = 'public' AND kind = 'group'
             AND ($2::TEXT IS NULL OR community IS NULL OR community = $2)
             ORDER BY id DESC LIMIT $1"
        ),
        &[&limit(n), &community],
    )
    .await?
    .iter()
    .map(rows::room)
    .collect()
}

/// Appends `n` if it changes anything: the store's one write path of room
/// events (see `Store::append`), after [`lock_room`], which a send takes
/// in its own statement.
pub(super) async fn append(c: &impl GenericClient, n: &NewEvent) -> R<Appended> {
    // A send is one statement that locks the room itself (messages.rs).
    if !matches!(n.action, Action::Send { .. }) {
        lock_room(c, n.room).await?;
    }
    let outcome = apply(c, n).await?;
    let target = match &n.action {
        Action::Edit { target, .. }
        | Action::Delete { target }
        | Action::React { target, .. }
        | Action::Unreact { target, .. } => Some(*target),
        _ => None,
    };
    let message = match target {
        Some(seq) => message(c, n.room, seq).await?,
        None => None,
    };
    Ok(Appended { outcome, message })
}

/// Checks and applies one action; see `append`.
async fn apply(c: &impl GenericClient, n: &NewEvent) -> R<Outcome> {
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
        } => send::send(c, n, client_msg_id, text, *reply_to).await,
        Action::Edit {
            target,
            text,
            sent_after,
        } => messages::edit(c, n, *target, text, *sent_after).await,
        Action::Delete { target } => messages::delete(c, n, *target).await,
        Action::React { target, reaction } => messages::react(c, n, *target, reaction).await,
        Action::Unreact { target, reaction } => messages::unreact(c, n, *target, reaction).await,
        Action::Join { user, role } => add_member(c, room, *user, *role, actor, name, at)
            .await
            .map(appended),
        Action::Leave { user } => remove_member(c, room, *user, at).await.map(appended),
        Action::UpdateRoom { title, visibility } => {
            update_room(c, room, actor, name, title, *visibility, at)
                .await
                .map(appended)
        }
    }
}

async fn update_room(
    c: &impl GenericClient,
    id: RoomId,
    by: UserId,
    by_name: &str,
    title: &str,
    visibility: Visibility,
    at: Millis,
) -> R<Option<Event>> {
    let current = room(c, id).await?.ok_or(StoreError::NotFound("room"))?;
    if current.kind == RoomKind::Direct {
        return Err(StoreError::NotAllowed("a direct conversation cannot be changed").into());
    }
    if !member_role(c, id, by).await?.is_some_and(Role::can_manage) {
        return Err(
            StoreError::NotAllowed("only the room's owner and admins can change it").into(),
        );
    }
    if current.title == title && current.visibility == visibility {
        return Ok(None);
    }
    let changed = exec(
        c,
        "UPDATE rooms SET title = $1, visibility = $2 WHERE id = $3 AND kind = 'group'",
        &[&title, &rows::visibility_str(visibility), &id.0],
    )
    .await?;
    if changed == 0 {
        return Err(StoreError::NotFound("room").into());
    }
    append_event(
        c,
        id,
        by,
        by_name,
        at,
        EventBody::RoomUpdated {
            title: title.to_owned(),
            visibility,
        },
    )
    .await
    .map(Some)
}

pub(super) async fn members(c: &impl GenericClient, room: RoomId) -> R<Vec<MemberProfile>> {
    let everyone = MemberQuery {
        after: None,
        text: None,
        limit: i64::MAX as usize,
    };
    member_page(c, room, &everyone).await
}

/// A page of active members by display name then id; `after` names the
/// place by the member's current name, found in the same statement among
/// the room's member rows (a leaver's row stays), so no page tells the
/// name of anyone who was never in the room. `display_name` is
/// `COLLATE "C"`, so the order and the ASCII-only case folding of `ILIKE`
/// are SQLite's.
pub(super) async fn member_page(
    c: &impl GenericClient,
    room: RoomId,
    query: &MemberQuery,
) -> R<Vec<MemberProfile>> {
    let text = query.text.as_deref().map(like_escaped);
    all(
        c,
        &format!(
            "SELECT m.role, {} FROM members m JOIN users u ON u.id = m.user_id
             WHERE m.room_id = $1 AND m.active
               AND ($2::BIGINT IS NULL OR (u.display_name, u.id) >
                    (COALESCE($5::TEXT, (SELECT u2.display_name FROM members m2 JOIN users u2 ON u2.id = m2.user_id
                      WHERE m2.room_id = $1 AND m2.user_id = $2)), $2))
               AND ($3::TEXT IS NULL OR u.display_name ILIKE '%' || $3 || '%' ESCAPE '\\')
             ORDER BY u.display_name, u.id
             LIMIT $4",
            rows::prefixed(USER_COLUMNS, "u")
        ),
        &[
            &room.0,
            &query.after.as_ref().map(|p| p.id.0),
            &text,
            &limit(query.limit),
            &query.after.as_ref().and_then(|p| p.name.as_deref()),
        ],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(MemberProfile {
            role: rows::role(r.try_get(0)?),
            user: rows::user_at(r, 1)?,
        })
    })
    .collect()
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

pub(super) async fn memberships_of(
    c: &impl GenericClient,
    user: UserId,
) -> R<Vec<MembershipRecord>> {
    all(
        c,
        "SELECT room_id, since_seq, changed_seq, active FROM members WHERE user_id = $1",
        &[&user.0],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(MembershipRecord {
            room: RoomId(r.try_get(0)?),
            since_seq: r.try_get(1)?,
            changed_seq: r.try_get(2)?,
            active: r.try_get(3)?,
        })
    })
    .collect()
}

/// Run in a repeatable-read transaction, so every row of the list
/// describes the same moment.
pub(super) async fn room_summaries(c: &impl GenericClient, user: UserId) -> R<Vec<RoomSummary>> {
    let base = all(
        c,
        &format!(
            "SELECT {}, m.role, m.read_seq, m.notify FROM members m JOIN rooms r ON r.id = m.room_id
             WHERE m.user_id = $1 AND m.active",
            rows::prefixed(ROOM_COLUMNS, "r")
        ),
        &[&user.0],
    )
    .await?;
    let mut out = Vec::with_capacity(base.len());
    for r in &base {
        let room = rows::room(r)?;
        let role = rows::role(r.try_get(8)?);
        let read_seq: Seq = r.try_get(9)?;
        let notify = r
            .try_get::<_, Option<&str>>(10)?
            .and_then(NotifyLevel::parse);
        // Others' messages after the marker, less those deleted since.
        let unread: i64 = one(
            c,
            "SELECT (SELECT COUNT(*) FROM events
                     WHERE room_id = $1 AND seq > $2 AND kind = 'message' AND sender_id != $3)
                  - (SELECT COUNT(*) FROM message_state s
                     JOIN events e ON e.room_id = s.room_id AND e.seq = s.seq
                     WHERE s.room_id = $1 AND s.seq > $2 AND s.deleted_at IS NOT NULL
                       AND e.kind = 'message' AND e.sender_id != $3)",
            &[&room.id.0, &read_seq, &user.0],
        )
        .await?
        .try_get(0)?;
        let mentions: i64 = one(
            c,
            "SELECT COUNT(*) FROM mentions WHERE user_id = $1 AND room_id = $2 AND seq > $3",
            &[&user.0, &room.id.0, &read_seq],
        )
        .await?
        .try_get(0)?;
        let last: Option<Seq> = opt(
            c,
            "SELECT seq FROM events WHERE room_id = $1 AND kind = 'message'
             ORDER BY seq DESC LIMIT 1",
            &[&room.id.0],
        )
        .await?
        .map(|r| r.try_get(0))
        .transpose()?;
        let last_message = match last {
            Some(seq) => message(c, room.id, seq).await?,
            None => None,
        };
        let (peer, peer_read_seq) = if room.kind == RoomKind::Direct {
            let found = opt(
                c,
                &format!(
                    "SELECT {}, m.read_seq FROM members m JOIN users u ON u.id = m.user_id
                     WHERE m.room_id = $1 AND m.user_id != $2 LIMIT 1",
                    rows::prefixed(USER_COLUMNS, "u")
                ),
                &[&room.id.0, &user.0],
            )
            .await?;
            match found {
                Some(p) => (Some(rows::user(&p)?), Some(p.try_get::<_, Seq>(5)?)),
                None => (None, None),
            }
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
    Ok(out)
}

/// The user's role in the room while they are an active member.
async fn member_role(c: &impl GenericClient, room: RoomId, user: UserId) -> R<Option<Role>> {
    opt(
        c,
        "SELECT role FROM members WHERE room_id = $1 AND user_id = $2 AND active",
        &[&room.0, &user.0],
    )
    .await?
    .map(|r| Ok(rows::role(r.try_get(0)?)))
    .transpose()
}

/// The actor's role, or why they cannot write to the room.
async fn require_member(c: &impl GenericClient, room_id: RoomId, user: UserId) -> R<Role> {
    match member_role(c, room_id, user).await? {
        Some(role) => Ok(role),
        None if room(c, room_id).await?.is_none() => Err(StoreError::NotFound("room").into()),
        None => Err(StoreError::NotAMember.into()),
    }
}

async fn add_member(
    c: &impl GenericClient,
    room_id: RoomId,
    user_id: UserId,
    role: Role,
    by: UserId,
    by_name: &str,
    at: Millis,
) -> R<Option<Event>> {
    if member_role(c, room_id, user_id).await?.is_some() {
        return Ok(None);
    }
    let joiner = user(c, user_id)
        .await?
        .ok_or(StoreError::NotFound("user"))?;
    let event = append_event(
        c,
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
    )
    .await?;
    // A (re)joined member has read everything up to their join, so
    // unread counts start from there.
    exec(
        c,
        "INSERT INTO members (room_id, user_id, role, since_seq, changed_seq, active, read_seq)
         VALUES ($1, $2, $3, $4, $4, TRUE, $4)
         ON CONFLICT (room_id, user_id) DO UPDATE SET
            role = excluded.role, since_seq = excluded.since_seq,
            changed_seq = excluded.changed_seq, active = TRUE, read_seq = excluded.read_seq",
        &[&room_id.0, &user_id.0, &rows::role_str(role), &event.seq],
    )
    .await?;
    Ok(Some(event))
}

async fn remove_member(
    c: &impl GenericClient,
    room_id: RoomId,
    user_id: UserId,
    at: Millis,
) -> R<Option<Event>> {
    if member_role(c, room_id, user_id).await?.is_none() {
        return Ok(None);
    }
    let leaver = user(c, user_id)
        .await?
        .ok_or(StoreError::NotFound("user"))?;
    let event = append_event(
        c,
        room_id,
        user_id,
        &leaver.display_name,
        at,
        EventBody::MemberLeft { user: user_id },
    )
    .await?;
    exec(
        c,
        "UPDATE members SET active = FALSE, changed_seq = $3 WHERE room_id = $1 AND user_id = $2",
        &[&room_id.0, &user_id.0, &event.seq],
    )
    .await?;
    Ok(Some(event))
}

pub(super) async fn events_after(
    c: &impl GenericClient,
    room: RoomId,
    after: Seq,
    n: usize,
) -> R<Vec<Event>> {
    all(
        c,
        &format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE room_id = $1 AND seq > $2
             ORDER BY seq LIMIT $3"
        ),
        &[&room.0, &after, &limit(n)],
    )
    .await?
    .iter()
    .map(rows::event)
    .collect()
}

pub(super) async fn set_notify(
    c: &impl GenericClient,
    room: RoomId,
    user: UserId,
    level: Option<NotifyLevel>,
) -> R<()> {
    let changed = exec(
        c,
        "UPDATE members SET notify = $3 WHERE room_id = $1 AND user_id = $2 AND active",
        &[&room.0, &user.0, &level.map(NotifyLevel::as_str)],
    )
    .await?;
    if changed == 0 {
        return Err(StoreError::NotAMember.into());
    }
    Ok(())
}

/// Active accounts for a people search: display names containing the
/// text, or the exact username, those whose names start with it first,
/// then by name. `ILIKE` and `lower` fold ASCII only on the `COLLATE "C"`
/// columns, as SQLite's `LIKE` and `lower` do.
pub(super) async fn search_people(c: &impl GenericClient, query: &PeopleQuery) -> R<Vec<User>> {
    let escaped = like_escaped(&query.text);
    let prefix = query.username_prefix.as_deref().unwrap_or("");
    all(
        c,
        &format!(
            "SELECT {USER_COLUMNS} FROM users
             WHERE deactivated_at IS NULL
               AND ($2::TEXT = '' OR left(username, length($2)) = $2)
               AND (NOT $3::BOOLEAN OR strpos(username, ':') = 0)
               AND (display_name ILIKE '%' || $1::TEXT || '%' ESCAPE '\\'
                    OR substr(username, length($2) + 1) = lower($5::TEXT COLLATE \"C\"))
             ORDER BY display_name ILIKE $1 || '%' ESCAPE '\\' DESC, display_name, id
             LIMIT $4"
        ),
        &[
            &escaped,
            &prefix,
            &query.local_only,
            &limit(query.limit),
            &query.text,
        ],
    )
    .await?
    .iter()
    .map(rows::user)
    .collect()
}

pub(super) async fn set_read(
    c: &impl GenericClient,
    room: RoomId,
    user: UserId,
    seq: Seq,
) -> R<Seq> {
    opt(
        c,
        "UPDATE members SET read_seq = GREATEST(read_seq, LEAST($3, (SELECT head FROM rooms WHERE id = $1)))
         WHERE room_id = $1 AND user_id = $2 AND active RETURNING read_seq",
        &[&room.0, &user.0, &seq],
    )
    .await?
    .ok_or(StoreError::NotAMember)?
    .try_get(0)
    .map_err(Into::into)
}
