//! Archive imports (archive/import.rs): one chat in one transaction,
//! whatever its size, and what an export reads to write the archive back.
//! Two imports of one archive key at once (two nodes, two terminals) are
//! serialised by an advisory lock on the key, so the chat gets one room.

use deadpool_postgres::GenericClient;

use super::send::previous_send;
use super::{R, add_member, all, append, create_room, exec, limit, one, open_direct, opt};
use crate::model::{Role, Room, RoomId, Visibility};
use crate::store::postgres::guard;
use crate::store::postgres::rows::{self, ROOM_COLUMNS};
use crate::store::{
    Action, ImportChat, ImportMessage, ImportSource, ImportedChat, NewEvent, NewRoom, Outcome,
    StoreError,
};

/// Messages read from the source per trip to a blocking thread: the
/// source reads files, which must not stall the async runtime.
const SOURCE_BATCH: usize = 256;

pub(in crate::store::postgres) async fn import_chat(
    c: &impl GenericClient,
    chat: &ImportChat,
    messages: ImportSource,
) -> R<ImportedChat> {
    let Some((creator, creator_name)) = chat.members.first() else {
        return Err(StoreError::Aborted("a chat with nobody in it".into()).into());
    };
    one(
        c,
        "SELECT pg_advisory_xact_lock(hashtextextended('natter import ' || $1::TEXT, 0))",
        &[&chat.key],
    )
    .await?;
    let known: Option<i64> = opt(
        c,
        "SELECT room_id FROM archive_chats WHERE key = $1",
        &[&chat.key],
    )
    .await?
    .map(|r| r.try_get(0))
    .transpose()?;
    let mut done = ImportedChat {
        room: RoomId(0),
        created: false,
        appended: 0,
        already: 0,
        conflicting: 0,
        from_leavers: 0,
    };
    done.room = match known {
        Some(id) => RoomId(id),
        None => {
            let room = if chat.direct {
                let [_, (peer, _)] = chat.members.as_slice() else {
                    return Err(StoreError::Aborted(format!(
                        "a one-to-one chat of {} people",
                        chat.members.len()
                    ))
                    .into());
                };
                let (room, created) =
                    open_direct(c, *creator, creator_name, *peer, chat.at).await?;
                done.created = created.is_some();
                room.id
            } else {
                let (room, _) = create_room(
                    c,
                    &NewRoom {
                        creator: *creator,
                        creator_name: creator_name.clone(),
                        community: chat.community.clone(),
                        title: chat.title.clone(),
                        visibility: Visibility::Private,
                        at: chat.at,
                    },
                )
                .await?;
                done.created = true;
                room.id
            };
            // Two folders of one pair share its one conversation; the
            // first keeps the key, the second finds the room again by the
            // pair.
            exec(
                c,
                "INSERT INTO archive_chats (key, room_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&chat.key, &room.0],
            )
            .await?;
            room
        }
    };
    if !chat.direct {
        for (user, name) in &chat.members {
            let ever: bool = one(
                c,
                "SELECT EXISTS (SELECT 1 FROM members WHERE room_id = $1 AND user_id = $2)",
                &[&done.room.0, &user.0],
            )
            .await?
            .try_get(0)?;
            if !ever {
                super::lock_room(c, done.room).await?;
                add_member(c, done.room, *user, Role::Member, *user, name, chat.at).await?;
            }
        }
    }
    let mut source = Some(messages);
    while let Some(rest) = source.take() {
        let (rest, batch) = next_batch(rest).await?;
        let finished = batch.len() < SOURCE_BATCH;
        for message in batch {
            import_message(c, &mut done, message.map_err(StoreError::Aborted)?).await?;
        }
        if !finished {
            source = Some(rest);
        }
    }
    Ok(done)
}

/// Up to [`SOURCE_BATCH`] messages of `source`, read on a blocking thread.
async fn next_batch(
    mut source: ImportSource,
) -> R<(ImportSource, Vec<Result<ImportMessage, String>>)> {
    tokio::task::spawn_blocking(move || {
        let batch: Vec<_> = source.by_ref().take(SOURCE_BATCH).collect();
        (source, batch)
    })
    .await
    .map_err(|e| StoreError::Internal(format!("the import's reader failed: {e}")).into())
}

/// Appends one imported message, counting what became of it.
async fn import_message(
    c: &impl GenericClient,
    done: &mut ImportedChat,
    m: ImportMessage,
) -> R<()> {
    guard::no_nul(&[
        ("a message's text", &m.text),
        ("a sender's name", &m.sender_name),
        ("a client message id", &m.client_msg_id),
    ])?;
    let (sender, client_msg_id) = (m.sender, m.client_msg_id.clone());
    let change = NewEvent {
        room: done.room,
        actor: m.sender,
        actor_name: m.sender_name,
        at: m.at,
        action: Action::Send {
            client_msg_id: m.client_msg_id,
            text: m.text,
            reply_to: None,
        },
    };
    match append(c, &change).await.map_err(|e| e.decided()) {
        Ok(written) => match written.outcome {
            Outcome::Appended(_) => done.appended += 1,
            Outcome::Unchanged(_) => done.already += 1,
        },
        Err(Ok(StoreError::IdempotencyConflict)) => done.conflicting += 1,
        Err(Ok(StoreError::NotAMember)) => {
            // Someone who left since: what an earlier run stored of
            // theirs is there all the same.
            match previous_send(c, done.room, sender, &client_msg_id).await? {
                Some(_) => done.already += 1,
                None => done.from_leavers += 1,
            }
        }
        Err(Ok(e)) => return Err(e.into()),
        Err(Err(e)) => return Err(e),
    }
    Ok(())
}

pub(in crate::store::postgres) async fn archive_keys(
    c: &impl GenericClient,
) -> R<Vec<(String, RoomId)>> {
    all(
        c,
        "SELECT key, room_id FROM archive_chats ORDER BY room_id",
        &[],
    )
    .await?
    .iter()
    .map(|r| Ok((r.try_get(0)?, RoomId(r.try_get(1)?))))
    .collect()
}

pub(in crate::store::postgres) async fn rooms_after(
    c: &impl GenericClient,
    after: RoomId,
    n: usize,
) -> R<Vec<Room>> {
    all(
        c,
        &format!("SELECT {ROOM_COLUMNS} FROM rooms WHERE id > $1 ORDER BY id LIMIT $2"),
        &[&after.0, &limit(n)],
    )
    .await?
    .iter()
    .map(rows::room)
    .collect()
}
