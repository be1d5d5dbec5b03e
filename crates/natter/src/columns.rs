//! How a room event lies in a store's `events` table, the same in every
//! database: the stores' own format, apart from the domain type and the
//! wire, so either can change without rewriting history on disk, and so a
//! deployment can be copied from one database to another row by row. The
//! bus between nodes sends events in the same columns (bus/wire.rs), so
//! it sits beside the model, below both the stores and the bus.
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

use serde::{Deserialize, Serialize};

use crate::model::{EventBody, Role, RoomKind, Seq, UserId, Visibility};

/// An event's columns after the six every event has (room, seq, kind,
/// sender, sender's name, time).
pub(crate) struct Columns<'a> {
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
pub(crate) fn columns(body: &EventBody) -> Columns<'_> {
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

/// The columns of a stored event, as read back (owned).
pub(crate) struct Stored {
    pub kind: String,
    pub client_msg_id: Option<String>,
    pub text: Option<String>,
    pub data: Option<String>,
    pub target_seq: Option<Seq>,
}

/// Why a stored event could not be read: which column was wrong.
#[derive(Debug)]
pub(crate) enum Unreadable {
    /// A change without the message it changes.
    Target,
    /// Missing or malformed `data` JSON.
    Data,
}

/// Reassembles an event body from its stored columns.
pub(crate) fn body(stored: Stored) -> Result<EventBody, Unreadable> {
    let Stored {
        kind,
        client_msg_id,
        text,
        data,
        target_seq,
    } = stored;
    let target = || target_seq.ok_or(Unreadable::Target);
    Ok(match kind.as_str() {
        "message" => EventBody::Message {
            client_msg_id: client_msg_id.unwrap_or_default(),
            // A deleted message keeps nothing of what it said, not even
            // what it answered.
            reply_to: if text.is_some() { target_seq } else { None },
            redacted: text.is_none(),
            text: text.unwrap_or_default(),
        },
        "message_edited" => EventBody::MessageEdited {
            target: target()?,
            text: text.unwrap_or_default(),
        },
        "message_deleted" => EventBody::MessageDeleted { target: target()? },
        "reaction_added" => EventBody::ReactionAdded {
            target: target()?,
            reaction: text.unwrap_or_default(),
        },
        "reaction_removed" => EventBody::ReactionRemoved {
            target: target()?,
            reaction: text.unwrap_or_default(),
        },
        _ => {
            let data = data.ok_or(Unreadable::Data)?;
            match serde_json::from_str(&data).map_err(|_| Unreadable::Data)? {
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
    })
}
