//! Archive imports (archive/import.rs): one chat in one job of the
//! writer, so in one transaction, whatever its size; and what an export
//! reads to write the archive back.

use rusqlite::{Connection, OptionalExtension, params};

use super::messages::previous_send;
use super::{R, add_member, append, create_room, exec, open_direct, q, row};
use crate::model::{Role, Room, RoomId, Visibility};
use crate::store::sqlite::rows::{self, ROOM_COLUMNS};
use crate::store::{
    Action, ImportChat, ImportSource, ImportedChat, NewEvent, NewRoom, Outcome, StoreError,
};

pub fn import_chat(
    conn: &Connection,
    chat: &ImportChat,
    messages: ImportSource,
) -> R<ImportedChat> {
    let Some((creator, creator_name)) = chat.members.first() else {
        return Err(StoreError::Aborted("a chat with nobody in it".into()));
    };
    let known: Option<i64> = q(row(
        conn,
        "SELECT room_id FROM archive_chats WHERE key = ?1",
        [&chat.key],
        |r| r.get(0),
    )
    .optional())?;
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
                    )));
                };
                let (room, created) = open_direct(conn, *creator, creator_name, *peer, chat.at)?;
                done.created = created.is_some();
                room.id
            } else {
                let (room, _) = create_room(
                    conn,
                    &NewRoom {
                        creator: *creator,
                        creator_name: creator_name.clone(),
                        community: chat.community.clone(),
                        title: chat.title.clone(),
                        visibility: Visibility::Private,
                        at: chat.at,
                    },
                )?;
                done.created = true;
                room.id
            };
            // Two folders of one pair share its one conversation; the
            // first keeps the key, the second finds the room again by the
            // pair.
            q(exec(
                conn,
                "INSERT OR IGNORE INTO archive_chats (key, room_id) VALUES (?1, ?2)",
                params![chat.key, room.0],
            ))?;
            room
        }
    };
    if !chat.direct {
        for (user, name) in &chat.members {
            let ever: bool = q(row(
                conn,
                "SELECT EXISTS (SELECT 1 FROM members WHERE room_id = ?1 AND user_id = ?2)",
                params![done.room.0, user.0],
                |r| r.get(0),
            ))?;
            if !ever {
                add_member(conn, done.room, *user, Role::Member, *user, name, chat.at)?;
            }
        }
    }
    for message in messages {
        let m = message.map_err(StoreError::Aborted)?;
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
        match append(conn, &change) {
            Ok(written) => match written.outcome {
                Outcome::Appended(_) => done.appended += 1,
                Outcome::Unchanged(_) => done.already += 1,
            },
            Err(StoreError::IdempotencyConflict) => done.conflicting += 1,
            Err(StoreError::NotAMember) => {
                // Someone who left since: what an earlier run stored of
                // theirs is there all the same.
                match previous_send(conn, done.room, sender, &client_msg_id)? {
                    Some(_) => done.already += 1,
                    None => done.from_leavers += 1,
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

pub fn archive_keys(conn: &Connection) -> R<Vec<(String, RoomId)>> {
    let mut stmt = q(conn.prepare("SELECT key, room_id FROM archive_chats ORDER BY room_id"))?;
    q(stmt
        .query_map([], |r| Ok((r.get(0)?, RoomId(r.get(1)?))))
        .and_then(|it| it.collect()))
}

pub fn rooms_after(conn: &Connection, after: RoomId, limit: usize) -> R<Vec<Room>> {
    let mut stmt = q(conn.prepare_cached(&format!(
        "SELECT {ROOM_COLUMNS} FROM rooms WHERE id > ?1 ORDER BY id LIMIT ?2"
    )))?;
    q(stmt
        .query_map(params![after.0, limit as i64], rows::room)
        .and_then(|it| it.collect()))
}
