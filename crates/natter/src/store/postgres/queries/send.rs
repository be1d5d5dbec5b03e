//! Sending a message: one statement, `natter_send` (schema.rs), which
//! takes the room's lock and makes every check of a send, or
//! `natter_send_batch` for the sends that queued up on a node
//! (`store/postgres/sends.rs`); and the idempotency key's lookup, which
//! an archive import makes itself.

use deadpool_postgres::GenericClient;

use super::{R, all, one, opt};
use crate::model::{Event, EventBody, Millis, RoomId, Seq, UserId};
use crate::store::postgres::rows::{self, EVENT_COLUMNS};
use crate::store::{Action, Appended, NewEvent, Outcome, StoreError};

/// Sends a message through `natter_send` (schema.rs), which locks the
/// room and makes every check of a send in one statement: on a
/// connection outside a transaction it is the whole write, committed by
/// itself; in an archive import's transaction it is one more statement.
pub(super) async fn send(
    c: &impl GenericClient,
    n: &NewEvent,
    client_msg_id: &str,
    text: &str,
    reply_to: Option<Seq>,
) -> R<Outcome> {
    let mentions: Vec<i64> = crate::mentions::mentioned(text)
        .into_iter()
        .map(|u| u.0)
        .collect();
    let row = one(
        c,
        "SELECT outcome, event_seq FROM natter_send($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &n.room.0,
            &n.actor.0,
            &n.actor_name,
            &n.at,
            &client_msg_id,
            &text,
            &reply_to,
            &mentions,
        ],
    )
    .await?;
    sent(c, n, row.try_get(0)?, row.try_get(1)?).await
}

/// The fields of a send, which `n` must be.
fn send_fields(n: &NewEvent) -> R<(&str, &str, Option<Seq>)> {
    match &n.action {
        Action::Send {
            client_msg_id,
            text,
            reply_to,
        } => Ok((client_msg_id, text, *reply_to)),
        _ => Err(StoreError::Internal("a batch of sends holds another change".into()).into()),
    }
}

/// Sends every one of `sends` (each an `Action::Send`) in one statement,
/// `natter_send_batch` (schema.rs), outside a transaction: all of them
/// commit together. Each gets its own answer, in order.
pub(in crate::store::postgres) async fn send_batch(
    c: &impl GenericClient,
    sends: &[NewEvent],
) -> R<Vec<R<Appended>>> {
    let mut columns = BatchColumns::default();
    for n in sends {
        let (client_msg_id, text, reply_to) = send_fields(n)?;
        columns.rooms.push(n.room.0);
        columns.senders.push(n.actor.0);
        columns.names.push(&n.actor_name);
        columns.ats.push(n.at);
        columns.client_msg_ids.push(client_msg_id);
        columns.texts.push(text);
        columns.reply_tos.push(reply_to);
        let mentioned: Vec<String> = crate::mentions::mentioned(text)
            .iter()
            .map(|u| u.0.to_string())
            .collect();
        columns.mentions.push(mentioned.join(","));
    }
    let rows = all(
        c,
        "SELECT ord, outcome, event_seq
         FROM natter_send_batch($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &columns.rooms,
            &columns.senders,
            &columns.names,
            &columns.ats,
            &columns.client_msg_ids,
            &columns.texts,
            &columns.reply_tos,
            &columns.mentions,
        ],
    )
    .await?;
    let mut answers: Vec<Option<R<Appended>>> = sends.iter().map(|_| None).collect();
    for row in rows {
        let place = usize::try_from(row.try_get::<_, i32>(0)?)
            .ok()
            .and_then(|ord| ord.checked_sub(1))
            .filter(|at| *at < sends.len())
            .ok_or_else(|| {
                StoreError::Internal("natter_send_batch answered out of place".into())
            })?;
        let outcome = sent(c, &sends[place], row.try_get(1)?, row.try_get(2)?).await;
        answers[place] = Some(outcome.map(|outcome| Appended {
            outcome,
            message: None,
        }));
    }
    answers
        .into_iter()
        .map(|answer| {
            answer.ok_or_else(|| {
                StoreError::Internal("natter_send_batch left a send unanswered".into()).into()
            })
        })
        .collect()
}

/// The arrays `natter_send_batch` takes, one place per send.
#[derive(Default)]
struct BatchColumns<'a> {
    rooms: Vec<i64>,
    senders: Vec<i64>,
    names: Vec<&'a str>,
    ats: Vec<Millis>,
    client_msg_ids: Vec<&'a str>,
    texts: Vec<&'a str>,
    reply_tos: Vec<Option<Seq>>,
    mentions: Vec<String>,
}

/// What a send came to, from `natter_send`'s answer: the event appended,
/// the earlier one a retry replays, or why it was refused.
async fn sent(c: &impl GenericClient, n: &NewEvent, outcome: &str, seq: Option<Seq>) -> R<Outcome> {
    let (client_msg_id, text, reply_to) = send_fields(n)?;
    match (outcome, seq) {
        ("appended", Some(seq)) => Ok(Outcome::Appended(Event {
            room: n.room,
            seq,
            at: n.at,
            sender: n.actor,
            sender_name: n.actor_name.clone(),
            body: EventBody::Message {
                client_msg_id: client_msg_id.to_owned(),
                text: text.to_owned(),
                reply_to,
                redacted: false,
            },
            encoded: Default::default(),
        })),
        // natter_send compared it with the stored one, under the lock.
        ("replayed", Some(seq)) => Ok(Outcome::Unchanged(Some(
            event_at_seq(c, n.room, seq).await?,
        ))),
        ("conflict", _) => Err(StoreError::IdempotencyConflict.into()),
        ("no_room", _) => Err(StoreError::NotFound("room").into()),
        ("not_member", _) => Err(StoreError::NotAMember.into()),
        ("no_target", _) => Err(StoreError::NotFound("message").into()),
        ("target_deleted", _) => Err(StoreError::MessageDeleted.into()),
        (outcome, seq) => Err(StoreError::Internal(format!(
            "natter_send answered {outcome:?} with seq {seq:?}"
        ))
        .into()),
    }
}

/// The event at `seq` in `room`, which the caller knows is there.
async fn event_at_seq(c: &impl GenericClient, room: RoomId, seq: Seq) -> R<Event> {
    let row = one(
        c,
        &format!("SELECT {EVENT_COLUMNS} FROM events WHERE room_id = $1 AND seq = $2"),
        &[&room.0, &seq],
    )
    .await?;
    rows::event(&row)
}

/// The message `sender` sent to `room` with this client message id, if
/// any, found through the unique index `events_idempotency`.
pub(super) async fn previous_send(
    c: &impl GenericClient,
    room: RoomId,
    sender: UserId,
    client_msg_id: &str,
) -> R<Option<Event>> {
    opt(
        c,
        &format!(
            "SELECT {EVENT_COLUMNS} FROM events
             WHERE room_id = $1 AND sender_id = $2 AND client_msg_id = $3"
        ),
        &[&room.0, &sender.0, &client_msg_id],
    )
    .await?
    .map(|r| rows::event(&r))
    .transpose()
}
