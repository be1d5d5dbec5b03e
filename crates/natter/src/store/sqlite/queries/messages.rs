//! Messages and their current state: sending, editing, deleting, reacting,
//! and reading messages as they stand now.
//!
//! The log (`events`) keeps every change as an event. Beside it,
//! `message_state` holds a row only for messages that changed (edited or
//! deleted), and `reactions` one row per reaction a user gave; a message
//! without either is exactly what the log says. A deletion also removes the
//! text from the log: the message's row and those of its edits lose their
//! text, its reactions go, and the state row records who deleted it and
//! when.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, params};

use super::{R, append_event, exec, q, require_member, row};
use crate::model::{
    Current, Event, EventBody, MAX_REACTIONS_PER_MESSAGE, Millis, Reaction, ReplyPreview, RoomId,
    Seq, UserId,
};
use crate::store::sqlite::encoding::{self, EVENT_COLUMNS};
use crate::store::{HistoryPage, NewEvent, Outcome, StoreError};

/// Longest text a reply preview carries, in characters.
const PREVIEW_CHARS: usize = 200;

/// Kinds a history page lists; changes to messages are folded into them.
/// The same list, spelled the same, defines the partial index
/// `events_shown` (schema.rs), which history pages read.
const SHOWN_KINDS: &str =
    "('message', 'room_created', 'member_joined', 'member_left', 'room_updated')";

/// A message as the checks of a change need it.
struct Target {
    sender: UserId,
    at: Millis,
    text: String,
    deleted: bool,
}

/// The message at `seq` in `room`; `NotFound("message")` when the seq is
/// not a message of this room.
fn target(conn: &Connection, room: RoomId, seq: Seq) -> R<Target> {
    q(row(
        conn,
        "SELECT e.sender_id, e.at_ms, COALESCE(s.text, e.text), s.deleted_at
         FROM events e LEFT JOIN message_state s ON s.room_id = e.room_id AND s.seq = e.seq
         WHERE e.room_id = ?1 AND e.seq = ?2 AND e.kind = 'message'",
        params![room.0, seq],
        |r| {
            Ok(Target {
                sender: UserId(r.get(0)?),
                at: r.get(1)?,
                text: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                deleted: r.get::<_, Option<Millis>>(3)?.is_some(),
            })
        },
    )
    .optional())?
    .ok_or(StoreError::NotFound("message"))
}

/// Appends `body` as the room's next event, by the change's actor.
fn append_by(conn: &Connection, n: &NewEvent, body: EventBody) -> R<Event> {
    append_event(conn, n.room, n.actor, &n.actor_name, n.at, body)
}

/// A live message to change: not deleted.
fn live_target(conn: &Connection, room: RoomId, seq: Seq) -> R<Target> {
    let t = target(conn, room, seq)?;
    if t.deleted {
        return Err(StoreError::MessageDeleted);
    }
    Ok(t)
}

pub(super) fn send(
    conn: &Connection,
    n: &NewEvent,
    client_msg_id: &str,
    text: &str,
    reply_to: Option<Seq>,
) -> R<Outcome> {
    require_member(conn, n.room, n.actor)?;
    if let Some(event) = previous_send(conn, n.room, n.actor, client_msg_id)? {
        // A retry of a message deleted since is still that message.
        let same = matches!(&event.body, EventBody::Message { text: t, reply_to: r, redacted, .. }
            if *redacted || (t == text && *r == reply_to));
        return if same {
            Ok(Outcome::Unchanged(Some(event)))
        } else {
            Err(StoreError::IdempotencyConflict)
        };
    }
    if let Some(original) = reply_to {
        live_target(conn, n.room, original)?;
    }
    let event = append_by(
        conn,
        n,
        EventBody::Message {
            client_msg_id: client_msg_id.to_owned(),
            text: text.to_owned(),
            reply_to,
            redacted: false,
        },
    )?;
    add_mentions(conn, n.room, event.seq, n.actor, text)?;
    Ok(Outcome::Appended(event))
}

/// The message `sender` sent to `room` with this client message id, if any.
pub(in crate::store::sqlite) fn previous_send(
    conn: &Connection,
    room: RoomId,
    sender: UserId,
    client_msg_id: &str,
) -> R<Option<Event>> {
    let hash = crate::store::sqlite::schema::client_msg_hash(room.0, sender.0, client_msg_id);
    q(row(
        conn,
        &format!(
            "SELECT {EVENT_COLUMNS} FROM events INDEXED BY events_idempotency
             WHERE client_msg_hash = ?1 AND client_msg_hash IS NOT NULL
               AND room_id = ?2 AND sender_id = ?3 AND client_msg_id = ?4"
        ),
        params![hash, room.0, sender.0, client_msg_id],
        encoding::read,
    )
    .optional())
}

/// Records whom the message at `seq` mentions now (its sender never counts).
fn add_mentions(conn: &Connection, room: RoomId, seq: Seq, sender: UserId, text: &str) -> R<()> {
    for user in crate::mentions::mentioned(text) {
        if user != sender {
            q(exec(
                conn,
                "INSERT OR IGNORE INTO mentions (user_id, room_id, seq) VALUES (?1, ?2, ?3)",
                params![user.0, room.0, seq],
            ))?;
        }
    }
    Ok(())
}

/// Forgets whom the message at `seq` mentioned (edited or deleted).
fn clear_mentions(conn: &Connection, room: RoomId, seq: Seq) -> R<()> {
    q(exec(
        conn,
        "DELETE FROM mentions WHERE room_id = ?1 AND seq = ?2",
        params![room.0, seq],
    ))?;
    Ok(())
}

pub(super) fn edit(
    conn: &Connection,
    n: &NewEvent,
    seq: Seq,
    text: &str,
    sent_after: Option<Millis>,
) -> R<Outcome> {
    require_member(conn, n.room, n.actor)?;
    let t = live_target(conn, n.room, seq)?;
    if t.sender != n.actor {
        return Err(StoreError::NotAllowed("only its sender can edit a message"));
    }
    if sent_after.is_some_and(|after| t.at < after) {
        return Err(StoreError::EditWindowClosed);
    }
    if t.text == text {
        return Ok(Outcome::Unchanged(None));
    }
    let event = append_by(
        conn,
        n,
        EventBody::MessageEdited {
            target: seq,
            text: text.to_owned(),
        },
    )?;
    q(exec(
        conn,
        "INSERT INTO message_state (room_id, seq, text, edited_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (room_id, seq) DO UPDATE SET text = excluded.text, edited_at = excluded.edited_at",
        params![n.room.0, seq, text, n.at],
    ))?;
    clear_mentions(conn, n.room, seq)?;
    add_mentions(conn, n.room, seq, n.actor, text)?;
    Ok(Outcome::Appended(event))
}

pub(super) fn delete(conn: &Connection, n: &NewEvent, seq: Seq) -> R<Outcome> {
    let role = require_member(conn, n.room, n.actor)?;
    let t = target(conn, n.room, seq)?;
    if t.sender != n.actor && !role.can_manage() {
        return Err(StoreError::NotAllowed(
            "only its sender or the room's owner and admins can delete a message",
        ));
    }
    if t.deleted {
        return Ok(Outcome::Unchanged(None));
    }
    let event = append_by(conn, n, EventBody::MessageDeleted { target: seq })?;
    q(exec(
        conn,
        "INSERT INTO message_state (room_id, seq, text, edited_at, deleted_at, deleted_by)
         VALUES (?1, ?2, NULL, NULL, ?3, ?4)
         ON CONFLICT (room_id, seq) DO UPDATE SET text = NULL, edited_at = NULL,
            deleted_at = excluded.deleted_at, deleted_by = excluded.deleted_by",
        params![n.room.0, seq, n.at, n.actor.0],
    ))?;
    q(exec(
        conn,
        "UPDATE events SET text = NULL WHERE room_id = ?1 AND seq = ?2 AND kind = 'message'",
        params![n.room.0, seq],
    ))?;
    q(exec(
        conn,
        "UPDATE events SET text = NULL
         WHERE room_id = ?1 AND target_seq = ?2 AND kind = 'message_edited'",
        params![n.room.0, seq],
    ))?;
    q(exec(
        conn,
        "DELETE FROM reactions WHERE room_id = ?1 AND seq = ?2",
        params![n.room.0, seq],
    ))?;
    clear_mentions(conn, n.room, seq)?;
    Ok(Outcome::Appended(event))
}

fn has_reaction(conn: &Connection, n: &NewEvent, seq: Seq, reaction: &str) -> R<bool> {
    q(row(
        conn,
        "SELECT EXISTS (SELECT 1 FROM reactions
         WHERE room_id = ?1 AND seq = ?2 AND reaction = ?3 AND user_id = ?4)",
        params![n.room.0, seq, reaction, n.actor.0],
        |r| r.get(0),
    ))
}

pub(super) fn react(conn: &Connection, n: &NewEvent, seq: Seq, reaction: &str) -> R<Outcome> {
    require_member(conn, n.room, n.actor)?;
    live_target(conn, n.room, seq)?;
    if has_reaction(conn, n, seq, reaction)? {
        return Ok(Outcome::Unchanged(None));
    }
    // A user's reactions to one message are distinct, so this bounds
    // each user's too.
    let (distinct, chip): (i64, Option<Seq>) = q(row(
        conn,
        "SELECT COUNT(DISTINCT reaction), MIN(CASE WHEN reaction = ?3 THEN chip_seq END)
         FROM reactions WHERE room_id = ?1 AND seq = ?2",
        params![n.room.0, seq, reaction],
        |r| Ok((r.get(0)?, r.get(1)?)),
    ))?;
    if chip.is_none() && distinct as usize >= MAX_REACTIONS_PER_MESSAGE {
        return Err(StoreError::TooMany("distinct reactions on one message"));
    }
    let event = append_by(
        conn,
        n,
        EventBody::ReactionAdded {
            target: seq,
            reaction: reaction.to_owned(),
        },
    )?;
    // A new chip takes its place from this event and keeps it while
    // anyone is left on it.
    q(exec(
        conn,
        "INSERT INTO reactions (room_id, seq, reaction, user_id, added_seq, chip_seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            n.room.0,
            seq,
            reaction,
            n.actor.0,
            event.seq,
            chip.unwrap_or(event.seq)
        ],
    ))?;
    Ok(Outcome::Appended(event))
}

pub(super) fn unreact(conn: &Connection, n: &NewEvent, seq: Seq, reaction: &str) -> R<Outcome> {
    require_member(conn, n.room, n.actor)?;
    live_target(conn, n.room, seq)?;
    if !has_reaction(conn, n, seq, reaction)? {
        return Ok(Outcome::Unchanged(None));
    }
    let event = append_by(
        conn,
        n,
        EventBody::ReactionRemoved {
            target: seq,
            reaction: reaction.to_owned(),
        },
    )?;
    q(exec(
        conn,
        "DELETE FROM reactions WHERE room_id = ?1 AND seq = ?2 AND reaction = ?3 AND user_id = ?4",
        params![n.room.0, seq, reaction, n.actor.0],
    ))?;
    Ok(Outcome::Appended(event))
}

/// A history row: the log event and, for a changed message, its state.
fn shown_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Event, Option<String>, Option<Millis>)> {
    Ok((encoding::read(r)?, r.get(10)?, r.get(11)?))
}

/// The log event made current: the edited text, or the deletion.
fn current_of(mut event: Event, text: Option<String>, edited_at: Option<Millis>) -> Current {
    if let (
        EventBody::Message {
            text: t, redacted, ..
        },
        Some(now),
    ) = (&mut event.body, text)
        && !*redacted
    {
        *t = now;
    }
    let mut current = Current::unchanged(event);
    if !current.deleted {
        current.edited_at = edited_at;
    }
    current
}

const SHOWN_COLUMNS: &str = "e.room_id, e.seq, e.kind, e.sender_id, e.sender_name, e.at_ms,
    e.client_msg_id, e.text, e.data, e.target_seq, s.text, s.edited_at";

pub fn history(
    conn: &Connection,
    room: RoomId,
    before: Option<Seq>,
    limit: usize,
) -> R<HistoryPage> {
    // One read transaction: the page, its reactions and its quotes agree.
    let tx = q(conn.unchecked_transaction())?;
    let mut stmt = q(tx.prepare_cached(&format!(
        "SELECT {SHOWN_COLUMNS}
         FROM events e INDEXED BY events_shown
         LEFT JOIN message_state s ON s.room_id = e.room_id AND s.seq = e.seq
         WHERE e.room_id = ?1 AND e.seq < ?2 AND e.kind IN {SHOWN_KINDS}
         ORDER BY e.seq DESC LIMIT ?3"
    )))?;
    let rows: Vec<_> = q(stmt
        .query_map(
            params![room.0, before.unwrap_or(i64::MAX), limit as i64],
            shown_row,
        )
        .and_then(|it| it.collect::<Result<Vec<_>, _>>()))?;
    drop(stmt);
    let mut page: Vec<Current> = rows
        .into_iter()
        .rev()
        .map(|(event, text, edited_at)| current_of(event, text, edited_at))
        .collect();
    if let (Some(first), Some(last)) = (page.first(), page.last()) {
        let (from, to) = (first.event.seq, last.event.seq);
        let mut reactions = reactions_between(&tx, room, from, to)?;
        for entry in &mut page {
            if let Some(r) = reactions.remove(&entry.event.seq) {
                entry.reactions = r;
            }
        }
    }
    for entry in &mut page {
        entry.reply_preview = reply_preview(&tx, &entry.event)?;
    }
    let head = q(
        row(&tx, "SELECT head FROM rooms WHERE id = ?1", [room.0], |r| {
            r.get(0)
        })
        .optional(),
    )?
    .unwrap_or_default();
    q(tx.finish())?;
    Ok(HistoryPage {
        entries: page,
        head,
    })
}

/// The message at `seq` as it stands now, with its reactions and quote.
pub fn message(conn: &Connection, room: RoomId, seq: Seq) -> R<Option<Current>> {
    let found = q(row(
        conn,
        &format!(
            "SELECT {SHOWN_COLUMNS}
             FROM events e LEFT JOIN message_state s ON s.room_id = e.room_id AND s.seq = e.seq
             WHERE e.room_id = ?1 AND e.seq = ?2 AND e.kind = 'message'"
        ),
        params![room.0, seq],
        shown_row,
    )
    .optional())?;
    let Some((event, text, edited_at)) = found else {
        return Ok(None);
    };
    let mut current = current_of(event, text, edited_at);
    current.reactions = reactions_between(conn, room, seq, seq)?
        .remove(&seq)
        .unwrap_or_default();
    current.reply_preview = reply_preview(conn, &current.event)?;
    Ok(Some(current))
}

/// Reactions of the messages `from..=to`, by message: each reaction's users
/// in the order they reacted; reactions in the order they first appeared
/// (a reaction taken back by everyone and given again comes last), which
/// is what a client applying the events gets.
fn reactions_between(
    conn: &Connection,
    room: RoomId,
    from: Seq,
    to: Seq,
) -> R<BTreeMap<Seq, Vec<Reaction>>> {
    let mut stmt = q(conn.prepare_cached(
        "SELECT seq, reaction, user_id FROM reactions
         WHERE room_id = ?1 AND seq BETWEEN ?2 AND ?3 ORDER BY seq, chip_seq, added_seq",
    ))?;
    let rows = q(stmt
        .query_map(params![room.0, from, to], |r| {
            Ok((
                r.get::<_, Seq>(0)?,
                r.get::<_, String>(1)?,
                UserId(r.get(2)?),
            ))
        })
        .and_then(|it| it.collect::<Result<Vec<_>, _>>()))?;
    let mut out: BTreeMap<Seq, Vec<Reaction>> = BTreeMap::new();
    for (seq, reaction, user) in rows {
        let chips = out.entry(seq).or_default();
        match chips.iter_mut().find(|c| c.reaction == reaction) {
            Some(chip) => chip.users.push(user),
            None => chips.push(Reaction {
                reaction,
                users: vec![user],
            }),
        }
    }
    Ok(out)
}

/// What a reply shows of the message it answers, as that message is now.
fn reply_preview(conn: &Connection, event: &Event) -> R<Option<ReplyPreview>> {
    let EventBody::Message {
        reply_to: Some(original),
        redacted: false,
        ..
    } = &event.body
    else {
        return Ok(None);
    };
    let found: Option<(UserId, String, Option<String>, bool)> = q(row(
        conn,
        "SELECT e.sender_id, e.sender_name, COALESCE(s.text, e.text), s.deleted_at IS NOT NULL
         FROM events e LEFT JOIN message_state s ON s.room_id = e.room_id AND s.seq = e.seq
         WHERE e.room_id = ?1 AND e.seq = ?2 AND e.kind = 'message'",
        params![event.room.0, original],
        |r| Ok((UserId(r.get(0)?), r.get(1)?, r.get(2)?, r.get(3)?)),
    )
    .optional())?;
    Ok(
        found.map(|(sender, sender_name, text, deleted)| ReplyPreview {
            seq: *original,
            sender,
            sender_name,
            text: if deleted {
                String::new()
            } else {
                first_line(text.as_deref().unwrap_or_default())
            },
            deleted,
        }),
    )
}

/// The first line that shows something, shortened.
fn first_line(text: &str) -> String {
    let line = text
        .split(['\n', '\r'])
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    let mut out: String = line.chars().take(PREVIEW_CHARS).collect();
    if line.chars().nth(PREVIEW_CHARS).is_some() {
        out.push('…');
    }
    out
}
