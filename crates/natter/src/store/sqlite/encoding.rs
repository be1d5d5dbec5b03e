//! How a room event lies in the `events` table: the store's own format,
//! apart from the domain type and the wire, so either can change without
//! rewriting history on disk.
//!
//! | kind | `client_msg_id` | `text` | `target_seq` | `data` |
//! | --- | --- | --- | --- | --- |
//! | `message` | the client's id | the text as sent, NULL once deleted | the message it replies to (not read once deleted) | |
//! | `message_edited` | | the new text, NULL once the message was deleted | the message | |
//! | `message_deleted` | | | the message | |
//! | `reaction_added`, `reaction_removed` | | the reaction | the message | |
//! | `room_created`, `member_joined`, `member_left`, `room_updated` | | | | JSON, below |
//!
//! The JSON of the last four is what natter has written since its first
//! version (a `type` tag and the fields), so old databases read as they are.
//! A later kind (an image, a moderation action) gets a row of this table
//! and, if it needs them, columns or a table of its own.

use rusqlite::Row;
use rusqlite::types::Type;
use serde::{Deserialize, Serialize};

use crate::model::{Event, EventBody, Millis, Role, RoomId, RoomKind, Seq, UserId, Visibility};

/// Columns [`read`] expects, in order.
pub const EVENT_COLUMNS: &str =
    "room_id, seq, kind, sender_id, sender_name, at_ms, client_msg_id, text, data, target_seq";

/// An event's columns, as [`EVENT_COLUMNS`] names them (after the first
/// six, which every event has).
pub struct Columns<'a> {
    pub client_msg_id: Option<&'a str>,
    pub text: Option<&'a str>,
    pub data: Option<String>,
    pub target_seq: Option<Seq>,
}

/// The `data` JSON of the membership and room kinds.
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Data {
    RoomCreated {
        title: String,
        kind: RoomKind,
        visibility: Visibility,
        members: Vec<UserId>,
    },
    MemberJoined {
        user: UserId,
        name: String,
        role: Role,
        invited_by: Option<UserId>,
    },
    MemberLeft {
        user: UserId,
    },
    RoomUpdated {
        title: String,
        visibility: Visibility,
    },
}

fn json(data: &Data) -> Option<String> {
    Some(serde_json::to_string(data).expect("event data encodes"))
}

/// Splits an event body into its columns.
pub fn columns(body: &EventBody) -> Columns<'_> {
    let none = Columns {
        client_msg_id: None,
        text: None,
        data: None,
        target_seq: None,
    };
    match body {
        EventBody::Message {
            client_msg_id,
            text,
            reply_to,
            redacted,
        } => Columns {
            client_msg_id: Some(client_msg_id),
            text: (!redacted).then_some(text.as_str()),
            target_seq: *reply_to,
            ..none
        },
        EventBody::MessageEdited { target, text } => Columns {
            text: Some(text),
            target_seq: Some(*target),
            ..none
        },
        EventBody::MessageDeleted { target } => Columns {
            target_seq: Some(*target),
            ..none
        },
        EventBody::ReactionAdded { target, reaction }
        | EventBody::ReactionRemoved { target, reaction } => Columns {
            text: Some(reaction),
            target_seq: Some(*target),
            ..none
        },
        EventBody::RoomCreated {
            title,
            kind,
            visibility,
            members,
        } => Columns {
            data: json(&Data::RoomCreated {
                title: title.clone(),
                kind: *kind,
                visibility: *visibility,
                members: members.clone(),
            }),
            ..none
        },
        EventBody::MemberJoined {
            user,
            name,
            role,
            invited_by,
        } => Columns {
            data: json(&Data::MemberJoined {
                user: *user,
                name: name.clone(),
                role: *role,
                invited_by: *invited_by,
            }),
            ..none
        },
        EventBody::MemberLeft { user } => Columns {
            data: json(&Data::MemberLeft { user: *user }),
            ..none
        },
        EventBody::RoomUpdated { title, visibility } => Columns {
            data: json(&Data::RoomUpdated {
                title: title.clone(),
                visibility: *visibility,
            }),
            ..none
        },
    }
}

fn bad(col: usize, what: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(col, Type::Text, what.to_owned().into())
}

/// Reads an event row selected with [`EVENT_COLUMNS`].
pub fn read(row: &Row<'_>) -> rusqlite::Result<Event> {
    let kind: String = row.get(2)?;
    let text = || row.get::<_, Option<String>>(7);
    let target = || {
        row.get::<_, Option<Seq>>(9)?
            .ok_or_else(|| bad(9, "a change without its target"))
    };
    let body = match kind.as_str() {
        "message" => {
            let text = text()?;
            EventBody::Message {
                client_msg_id: row.get::<_, Option<String>>(6)?.unwrap_or_default(),
                // A deleted message keeps nothing of what it said,
                // not even what it answered.
                reply_to: if text.is_some() { row.get(9)? } else { None },
                redacted: text.is_none(),
                text: text.unwrap_or_default(),
            }
        }
        "message_edited" => EventBody::MessageEdited {
            target: target()?,
            text: text()?.unwrap_or_default(),
        },
        "message_deleted" => EventBody::MessageDeleted { target: target()? },
        "reaction_added" => EventBody::ReactionAdded {
            target: target()?,
            reaction: text()?.unwrap_or_default(),
        },
        "reaction_removed" => EventBody::ReactionRemoved {
            target: target()?,
            reaction: text()?.unwrap_or_default(),
        },
        _ => {
            let data: String = row.get(8)?;
            match serde_json::from_str(&data).map_err(|_| bad(8, "event data"))? {
                Data::RoomCreated {
                    title,
                    kind,
                    visibility,
                    members,
                } => EventBody::RoomCreated {
                    title,
                    kind,
                    visibility,
                    members,
                },
                Data::MemberJoined {
                    user,
                    name,
                    role,
                    invited_by,
                } => EventBody::MemberJoined {
                    user,
                    name,
                    role,
                    invited_by,
                },
                Data::MemberLeft { user } => EventBody::MemberLeft { user },
                Data::RoomUpdated { title, visibility } => {
                    EventBody::RoomUpdated { title, visibility }
                }
            }
        }
    };
    let at: Millis = row.get(5)?;
    Ok(Event {
        room: RoomId(row.get(0)?),
        seq: row.get(1)?,
        sender: UserId(row.get(3)?),
        sender_name: row.get(4)?,
        at,
        body,
        encoded: Default::default(),
    })
}
