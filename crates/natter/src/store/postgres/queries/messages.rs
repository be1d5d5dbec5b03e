//! Messages and their current state: sending, editing, deleting, reacting,
//! and reading messages as they stand now, in the SQLite store's layout
//! (`store/sqlite/queries/messages.rs`): `events` keeps every change,
//! `message_state` a row only for messages that changed, `reactions` one
//! row per reaction a user gave; a deletion takes the text out of the log.
//! Every write here runs after `lock_room`. Sending is in `send.rs`.

use std::collections::BTreeMap;

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::{R, all, append_event, exec, limit, one, opt, require_member};
use crate::model::{
    Current, Event, EventBody, MAX_REACTIONS_PER_MESSAGE, Millis, Reaction, ReplyPreview, RoomId,
    Seq, UserId,
};
use crate::store::postgres::rows;
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
async fn target(c: &impl GenericClient, room: RoomId, seq: Seq) -> R<Target> {
    let row = opt(
        c,
        "SELECT e.sender_id, e.at_ms, COALESCE(s.text, e.text), s.deleted_at
         FROM events e LEFT JOIN message_state s ON s.room_id = e.room_id AND s.seq = e.seq
         WHERE e.room_id = $1 AND e.seq = $2 AND e.kind = 'message'",
        &[&room.0, &seq],
    )
    .await?
    .ok_or(StoreError::NotFound("message"))?;
    Ok(Target {
        sender: UserId(row.try_get(0)?),
        at: row.try_get(1)?,
        text: row.try_get::<_, Option<String>>(2)?.unwrap_or_default(),
        deleted: row.try_get::<_, Option<Millis>>(3)?.is_some(),
    })
}

/// Appends `body` as the room's next event, by the change's actor.
async fn append_by(c: &impl GenericClient, n: &NewEvent, body: EventBody) -> R<Event> {
    append_event(c, n.room, n.actor, &n.actor_name, n.at, body).await
}

/// A live message to change: not deleted.
async fn live_target(c: &impl GenericClient, room: RoomId, seq: Seq) -> R<Target> {
    let t = target(c, room, seq).await?;
    if t.deleted {
        return Err(StoreError::MessageDeleted.into());
    }
    Ok(t)
}

/// Records whom the message at `seq` mentions now (its sender never counts).
async fn add_mentions(
    c: &impl GenericClient,
    room: RoomId,
    seq: Seq,
    sender: UserId,
    text: &str,
) -> R<()> {
    for user in crate::mentions::mentioned(text) {
        if user != sender {
            exec(
                c,
                "INSERT INTO mentions (user_id, room_id, seq) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
                &[&user.0, &room.0, &seq],
            )
            .await?;
        }
    }
    Ok(())
}

/// Forgets whom the message at `seq` mentioned (edited or deleted).
async fn clear_mentions(c: &impl GenericClient, room: RoomId, seq: Seq) -> R<()> {
    exec(
        c,
        "DELETE FROM mentions WHERE room_id = $1 AND seq = $2",
        &[&room.0, &seq],
    )
    .await?;
    Ok(())
}

pub(super) async fn edit(
    c: &impl GenericClient,
    n: &NewEvent,
    seq: Seq,
    text: &str,
    sent_after: Option<Millis>,
) -> R<Outcome> {
    require_member(c, n.room, n.actor).await?;
    let t = live_target(c, n.room, seq).await?;
    if t.sender != n.actor {
        return Err(StoreError::NotAllowed("only its sender can edit a message").into());
    }
    if sent_after.is_some_and(|after| t.at < after) {
        return Err(StoreError::EditWindowClosed.into());
    }
    if t.text == text {
        return Ok(Outcome::Unchanged(None));
    }
    let event = append_by(
        c,
        n,
        EventBody::MessageEdited {
            target: seq,
            text: text.to_owned(),
        },
    )
    .await?;
    exec(
        c,
        "INSERT INTO message_state (room_id, seq, text, edited_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (room_id, seq) DO UPDATE SET text = excluded.text, edited_at = excluded.edited_at",
        &[&n.room.0, &seq, &text, &n.at],
    )
    .await?;
    clear_mentions(c, n.room, seq).await?;
    add_mentions(c, n.room, seq, n.actor, text).await?;
    Ok(Outcome::Appended(event))
}

pub(super) async fn delete(c: &impl GenericClient, n: &NewEvent, seq: Seq) -> R<Outcome> {
    let role = require_member(c, n.room, n.actor).await?;
    let t = target(c, n.room, seq).await?;
    if t.sender != n.actor && !role.can_manage() {
        return Err(StoreError::NotAllowed(
            "only its sender or the room's owner and admins can delete a message",
        )
        .into());
    }
    if t.deleted {
        return Ok(Outcome::Unchanged(None));
    }
    let event = append_by(c, n, EventBody::MessageDeleted { target: seq }).await?;
    exec(
        c,
        "INSERT INTO message_state (room_id, seq, text, edited_at, deleted_at, deleted_by)
         VALUES ($1, $2, NULL, NULL, $3, $4)
         ON CONFLICT (room_id, seq) DO UPDATE SET text = NULL, edited_at = NULL,
            deleted_at = excluded.deleted_at, deleted_by = excluded.deleted_by",
        &[&n.room.0, &seq, &n.at, &n.actor.0],
    )
    .await?;
    exec(
        c,
        "UPDATE events SET text = NULL WHERE room_id = $1 AND seq = $2 AND kind = 'message'",
        &[&n.room.0, &seq],
    )
    .await?;
    exec(
        c,
        "UPDATE events SET text = NULL
         WHERE room_id = $1 AND target_seq = $2 AND kind = 'message_edited'",
        &[&n.room.0, &seq],
    )
    .await?;
    exec(
        c,
        "DELETE FROM reactions WHERE room_id = $1 AND seq = $2",
        &[&n.room.0, &seq],
    )
    .await?;
    clear_mentions(c, n.room, seq).await?;
    Ok(Outcome::Appended(event))
}

async fn has_reaction(c: &impl GenericClient, n: &NewEvent, seq: Seq, reaction: &str) -> R<bool> {
    Ok(one(
        c,
        "SELECT EXISTS (SELECT 1 FROM reactions
         WHERE room_id = $1 AND seq = $2 AND reaction = $3 AND user_id = $4)",
        &[&n.room.0, &seq, &reaction, &n.actor.0],
    )
    .await?
    .try_get(0)?)
}

pub(super) async fn react(
    c: &impl GenericClient,
    n: &NewEvent,
    seq: Seq,
    reaction: &str,
) -> R<Outcome> {
    require_member(c, n.room, n.actor).await?;
    live_target(c, n.room, seq).await?;
    if has_reaction(c, n, seq, reaction).await? {
        return Ok(Outcome::Unchanged(None));
    }
    // A user's reactions to one message are distinct, so this bounds
    // each user's too.
    let row = one(
        c,
        "SELECT COUNT(DISTINCT reaction), MIN(CASE WHEN reaction = $3 THEN chip_seq END)
         FROM reactions WHERE room_id = $1 AND seq = $2",
        &[&n.room.0, &seq, &reaction],
    )
    .await?;
    let (distinct, chip): (i64, Option<Seq>) = (row.try_get(0)?, row.try_get(1)?);
    if chip.is_none() && distinct as usize >= MAX_REACTIONS_PER_MESSAGE {
        return Err(StoreError::TooMany("distinct reactions on one message").into());
    }
    let event = append_by(
        c,
        n,
        EventBody::ReactionAdded {
            target: seq,
            reaction: reaction.to_owned(),
        },
    )
    .await?;
    // A new chip takes its place from this event and keeps it while
    // anyone is left on it.
    exec(
        c,
        "INSERT INTO reactions (room_id, seq, reaction, user_id, added_seq, chip_seq)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &n.room.0,
            &seq,
            &reaction,
            &n.actor.0,
            &event.seq,
            &chip.unwrap_or(event.seq),
        ],
    )
    .await?;
    Ok(Outcome::Appended(event))
}

pub(super) async fn unreact(
    c: &impl GenericClient,
    n: &NewEvent,
    seq: Seq,
    reaction: &str,
) -> R<Outcome> {
    require_member(c, n.room, n.actor).await?;
    live_target(c, n.room, seq).await?;
    if !has_reaction(c, n, seq, reaction).await? {
        return Ok(Outcome::Unchanged(None));
    }
    let event = append_by(
        c,
        n,
        EventBody::ReactionRemoved {
            target: seq,
            reaction: reaction.to_owned(),
        },
    )
    .await?;
    exec(
        c,
        "DELETE FROM reactions WHERE room_id = $1 AND seq = $2 AND reaction = $3 AND user_id = $4",
        &[&n.room.0, &seq, &reaction, &n.actor.0],
    )
    .await?;
    Ok(Outcome::Appended(event))
}

/// A history row: the log event and, for a changed message, its state.
fn shown_row(r: &Row) -> R<(Event, Option<String>, Option<Millis>)> {
    Ok((rows::event(r)?, r.try_get(10)?, r.try_get(11)?))
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

/// Run in a repeatable-read transaction: the page, its reactions, its
/// quotes and the head agree.
pub(in crate::store::postgres) async fn history(
    c: &impl GenericClient,
    room: RoomId,
    before: Option<Seq>,
    n: usize,
) -> R<HistoryPage> {
    let rows = all(
        c,
        &format!(
            "SELECT {SHOWN_COLUMNS}
             FROM events e
             LEFT JOIN message_state s ON s.room_id = e.room_id AND s.seq = e.seq
             WHERE e.room_id = $1 AND e.seq < $2 AND e.kind IN {SHOWN_KINDS}
             ORDER BY e.seq DESC LIMIT $3"
        ),
        &[&room.0, &before.unwrap_or(i64::MAX), &limit(n)],
    )
    .await?;
    let mut page = Vec::with_capacity(rows.len());
    for r in rows.iter().rev() {
        let (event, text, edited_at) = shown_row(r)?;
        page.push(current_of(event, text, edited_at));
    }
    if let (Some(first), Some(last)) = (page.first(), page.last()) {
        let (from, to) = (first.event.seq, last.event.seq);
        let mut reactions = reactions_between(c, room, from, to).await?;
        for entry in &mut page {
            if let Some(r) = reactions.remove(&entry.event.seq) {
                entry.reactions = r;
            }
        }
    }
    for entry in &mut page {
        entry.reply_preview = reply_preview(c, &entry.event).await?;
    }
    let head = opt(c, "SELECT head FROM rooms WHERE id = $1", &[&room.0])
        .await?
        .map(|r| r.try_get(0))
        .transpose()?
        .unwrap_or_default();
    Ok(HistoryPage {
        entries: page,
        head,
    })
}

/// The message at `seq` as it stands now, with its reactions and quote.
pub(in crate::store::postgres) async fn message(
    c: &impl GenericClient,
    room: RoomId,
    seq: Seq,
) -> R<Option<Current>> {
    let found = opt(
        c,
        &format!(
            "SELECT {SHOWN_COLUMNS}
             FROM events e LEFT JOIN message_state s ON s.room_id = e.room_id AND s.seq = e.seq
             WHERE e.room_id = $1 AND e.seq = $2 AND e.kind = 'message'"
        ),
        &[&room.0, &seq],
    )
    .await?;
    let Some(found) = found else {
        return Ok(None);
    };
    let (event, text, edited_at) = shown_row(&found)?;
    let mut current = current_of(event, text, edited_at);
    current.reactions = reactions_between(c, room, seq, seq)
        .await?
        .remove(&seq)
        .unwrap_or_default();
    current.reply_preview = reply_preview(c, &current.event).await?;
    Ok(Some(current))
}

/// Reactions of the messages `from..=to`, by message: each reaction's users
/// in the order they reacted; reactions in the order they first appeared
/// (a reaction taken back by everyone and given again comes last), which
/// is what a client applying the events gets.
async fn reactions_between(
    c: &impl GenericClient,
    room: RoomId,
    from: Seq,
    to: Seq,
) -> R<BTreeMap<Seq, Vec<Reaction>>> {
    let rows = all(
        c,
        "SELECT seq, reaction, user_id FROM reactions
         WHERE room_id = $1 AND seq BETWEEN $2 AND $3 ORDER BY seq, chip_seq, added_seq",
        &[&room.0, &from, &to],
    )
    .await?;
    let mut out: BTreeMap<Seq, Vec<Reaction>> = BTreeMap::new();
    for r in &rows {
        let (seq, reaction, user): (Seq, String, UserId) =
            (r.try_get(0)?, r.try_get(1)?, UserId(r.try_get(2)?));
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
async fn reply_preview(c: &impl GenericClient, event: &Event) -> R<Option<ReplyPreview>> {
    let EventBody::Message {
        reply_to: Some(original),
        redacted: false,
        ..
    } = &event.body
    else {
        return Ok(None);
    };
    let found = opt(
        c,
        "SELECT e.sender_id, e.sender_name, COALESCE(s.text, e.text), s.deleted_at IS NOT NULL
         FROM events e LEFT JOIN message_state s ON s.room_id = e.room_id AND s.seq = e.seq
         WHERE e.room_id = $1 AND e.seq = $2 AND e.kind = 'message'",
        &[&event.room.0, original],
    )
    .await?;
    let Some(r) = found else {
        return Ok(None);
    };
    let deleted: bool = r.try_get(3)?;
    let text: Option<String> = r.try_get(2)?;
    Ok(Some(ReplyPreview {
        seq: *original,
        sender: UserId(r.try_get(0)?),
        sender_name: r.try_get(1)?,
        text: if deleted {
            String::new()
        } else {
            first_line(text.as_deref().unwrap_or_default())
        },
        deleted,
    }))
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
