//! The JSON shapes of the API. The web client and embedded widgets are
//! clients we do not control: change these only on purpose, and update
//! docs/api.md and the OpenAPI document with them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::chat::{MemberList, MemberPlace, RoomListing};
use crate::hub::PollAnswer;
use crate::mentions::mentioned;
use crate::model::{
    Current, Ephemeral, Event, EventBody, Millis, NotifyLevel, Role, Room, RoomId, RoomKind, Seq,
    User, UserId, Visibility,
};
use crate::text::DisplayName;

/// A user's public profile.
#[derive(Serialize)]
pub struct UserOut {
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    /// The user's own avatar, or the generated one.
    pub avatar_url: String,
    pub created_at: Millis,
}

/// The generated avatar's URL: everything it draws (the name's initial,
/// a colour from the id) is in the URL, so the image endpoint looks
/// nobody up and walking it reveals nothing. A new name is a new URL, so
/// no cache shows the old initial.
fn generated_avatar_url(u: &User) -> String {
    let initial: String = u
        .display_name
        .chars()
        .next()
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_default();
    let mut encoded = String::new();
    for byte in initial.bytes() {
        if byte.is_ascii_alphanumeric() {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!(
        "/api/v1/avatar.svg?initial={encoded}&hue={}",
        avatar_hue(u.id.0)
    )
}

/// The generated avatar's colour for a user id.
pub fn avatar_hue(id: i64) -> i64 {
    (id.wrapping_mul(137) % 360 + 360) % 360
}

impl From<&User> for UserOut {
    fn from(u: &User) -> Self {
        UserOut {
            id: u.id,
            username: u.username.clone(),
            display_name: u.display_name.clone(),
            avatar_url: u
                .avatar_url
                .clone()
                .unwrap_or_else(|| generated_avatar_url(u)),
            created_at: u.created_at,
        }
    }
}

/// A conversation.
#[derive(Serialize)]
pub struct RoomOut {
    pub id: RoomId,
    pub kind: RoomKind,
    pub title: String,
    pub visibility: Visibility,
    pub created_by: UserId,
    pub created_at: Millis,
    /// The newest event's sequence number.
    pub head_seq: Seq,
}

impl From<&Room> for RoomOut {
    fn from(r: &Room) -> Self {
        RoomOut {
            id: r.id,
            kind: r.kind,
            title: r.title.clone(),
            visibility: r.visibility,
            created_by: r.created_by,
            created_at: r.created_at,
            head_seq: r.head,
        }
    }
}

/// Someone a people search found: a name and a face to pick, without
/// the login name (for a site's users, the site's own id for them).
#[derive(Serialize)]
pub struct PersonOut {
    pub id: UserId,
    pub display_name: String,
    /// The user's own avatar, or the generated one (as in `UserOut`).
    pub avatar_url: String,
}

impl From<&User> for PersonOut {
    fn from(u: &User) -> Self {
        let UserOut {
            id,
            display_name,
            avatar_url,
            ..
        } = UserOut::from(u);
        PersonOut {
            id,
            display_name,
            avatar_url,
        }
    }
}

/// A row of the room list.
#[derive(Serialize)]
pub struct RoomListingOut {
    #[serde(flatten)]
    pub room: RoomOut,
    pub role: Role,
    pub read_seq: Seq,
    pub unread_count: i64,
    /// Of the unread messages, those that mention the caller.
    pub mention_count: i64,
    /// What the caller is notified of: their choice, else the default.
    pub notifications: NotifyLevel,
    pub last_message: Option<CurrentOut>,
    pub online_count: usize,
    /// Presence and typing reach only those watching it.
    pub big: bool,
    /// For direct conversations: the other person.
    pub peer: Option<UserOut>,
    /// For direct conversations: how far the other person has read
    /// (`null` when the server keeps read receipts private).
    pub peer_read_seq: Option<Seq>,
}

impl From<&RoomListing> for RoomListingOut {
    fn from(l: &RoomListing) -> Self {
        let s = &l.summary;
        RoomListingOut {
            room: RoomOut::from(&s.room),
            role: s.role,
            read_seq: s.read_seq,
            unread_count: s.unread,
            mention_count: s.mentions,
            notifications: NotifyLevel::effective(s.notify, s.room.kind),
            last_message: s.last_message.as_ref().map(CurrentOut::from),
            online_count: l.online_count,
            big: l.big,
            peer: s.peer.as_ref().map(UserOut::from),
            peer_read_seq: s.peer_read_seq,
        }
    }
}

/// A member list entry.
#[derive(Serialize)]
pub struct MemberOut {
    #[serde(flatten)]
    pub user: UserOut,
    pub role: Role,
    pub online: bool,
}

/// A room's member list.
#[derive(Serialize)]
pub struct MembersOut {
    pub members: Vec<MemberOut>,
    pub online_count: usize,
    pub member_count: usize,
    /// The room seq `member_count` is as of.
    pub member_count_seq: Seq,
    /// `after` for the next page, opaque; `null` on the last.
    pub next: Option<String>,
}

impl From<&MemberList> for MembersOut {
    fn from(list: &MemberList) -> Self {
        MembersOut {
            members: list
                .members
                .iter()
                .map(|(m, online)| MemberOut {
                    user: UserOut::from(&m.user),
                    role: m.role,
                    online: *online,
                })
                .collect(),
            online_count: list.online_count,
            member_count: list.member_count,
            member_count_seq: list.member_count_seq,
            next: list.next.as_ref().map(place_token),
        }
    }
}

/// A member list's place as the `next` token clients hand back as
/// `after`: the id and the name the member had in the page, so a rename
/// before the next page moves nothing. Opaque to clients; base64url of
/// `<id>:<name>`, whose first character is never a digit, so a bare id
/// (what `next` was before) still reads as one.
fn place_token(place: &MemberPlace) -> String {
    let name = place.name.as_deref().unwrap_or_default();
    URL_SAFE_NO_PAD.encode(format!("{}:{name}", place.id.0))
}

/// Reads `after`: a `next` token, or a member's bare id (placed by
/// their current name). `None` for anything else.
pub fn parse_place(after: &str) -> Option<MemberPlace> {
    if after.starts_with(|c: char| c.is_ascii_digit()) {
        return Some(MemberPlace {
            id: member_id(after)?,
            name: None,
        });
    }
    // A name is at most 64 characters of 4 bytes, beside the id and the
    // colon, and base64 adds a third.
    if after.len() > 400 {
        return None;
    }
    let decoded = String::from_utf8(URL_SAFE_NO_PAD.decode(after).ok()?).ok()?;
    let (id, name) = decoded.split_once(':')?;
    // Names are one line without control characters (NUL, which
    // PostgreSQL's text cannot hold, among them): nothing else is a place.
    if name.chars().count() > DisplayName::MAX_CHARS || name.chars().any(char::is_control) {
        return None;
    }
    Some(MemberPlace {
        id: member_id(id)?,
        name: Some(name.to_owned()),
    })
}

/// A positive id in plain decimal (no sign, no leading zero).
fn member_id(text: &str) -> Option<UserId> {
    let plain = !text.starts_with('0') && text.bytes().all(|b| b.is_ascii_digit());
    let id: i64 = text.parse().ok().filter(|_| plain)?;
    Some(UserId(id))
}

/// A room event: the fields every event has, then its type's fields.
#[derive(Serialize)]
pub struct EventOut {
    pub room_id: RoomId,
    pub seq: Seq,
    pub ts: Millis,
    pub sender_id: UserId,
    pub sender_name: String,
    #[serde(flatten)]
    pub body: BodyOut,
}

/// The type-specific part of an event.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BodyOut {
    Message {
        client_msg_id: String,
        text: String,
        reply_to: Option<Seq>,
        /// Deleted since: `text` is empty.
        deleted: bool,
        /// Whom the text mentions (`<@id>` tokens), see `mentions`.
        mentions: Vec<UserId>,
    },
    RoomCreated {
        title: String,
        kind: RoomKind,
        visibility: Visibility,
        member_ids: Vec<UserId>,
    },
    MemberJoined {
        user_id: UserId,
        display_name: String,
        role: Role,
        invited_by: Option<UserId>,
    },
    MemberLeft {
        user_id: UserId,
    },
    RoomUpdated {
        title: String,
        visibility: Visibility,
    },
    MessageEdited {
        target_seq: Seq,
        text: String,
        mentions: Vec<UserId>,
    },
    MessageDeleted {
        target_seq: Seq,
    },
    ReactionAdded {
        target_seq: Seq,
        reaction: String,
    },
    ReactionRemoved {
        target_seq: Seq,
        reaction: String,
    },
}

impl From<&Event> for EventOut {
    fn from(e: &Event) -> Self {
        let body = match &e.body {
            EventBody::Message {
                client_msg_id,
                text,
                reply_to,
                redacted,
            } => BodyOut::Message {
                client_msg_id: client_msg_id.clone(),
                text: text.clone(),
                reply_to: *reply_to,
                deleted: *redacted,
                mentions: mentioned(text),
            },
            EventBody::RoomCreated {
                title,
                kind,
                visibility,
                members,
            } => BodyOut::RoomCreated {
                title: title.clone(),
                kind: *kind,
                visibility: *visibility,
                member_ids: members.clone(),
            },
            EventBody::MemberJoined {
                user,
                name,
                role,
                invited_by,
            } => BodyOut::MemberJoined {
                user_id: *user,
                display_name: name.clone(),
                role: *role,
                invited_by: *invited_by,
            },
            EventBody::MemberLeft { user } => BodyOut::MemberLeft { user_id: *user },
            EventBody::RoomUpdated { title, visibility } => BodyOut::RoomUpdated {
                title: title.clone(),
                visibility: *visibility,
            },
            EventBody::MessageEdited { target, text } => BodyOut::MessageEdited {
                target_seq: *target,
                text: text.clone(),
                mentions: mentioned(text),
            },
            EventBody::MessageDeleted { target } => BodyOut::MessageDeleted {
                target_seq: *target,
            },
            EventBody::ReactionAdded { target, reaction } => BodyOut::ReactionAdded {
                target_seq: *target,
                reaction: reaction.clone(),
            },
            EventBody::ReactionRemoved { target, reaction } => BodyOut::ReactionRemoved {
                target_seq: *target,
                reaction: reaction.clone(),
            },
        };
        EventOut {
            room_id: e.room,
            seq: e.seq,
            ts: e.at,
            sender_id: e.sender,
            sender_name: e.sender_name.clone(),
            body,
        }
    }
}

/// A history entry as it stands now: the event, and for a message what
/// happened to it since (docs/protocol.md says how a client that applies
/// the events gets the same).
#[derive(Serialize)]
pub struct CurrentOut {
    #[serde(flatten)]
    pub event: EventOut,
    #[serde(flatten)]
    pub message: Option<MessageStateOut>,
}

/// What a message's later events made of it.
#[derive(Serialize)]
pub struct MessageStateOut {
    pub edited_at: Option<Millis>,
    pub reactions: Vec<ReactionOut>,
    pub reply_preview: Option<ReplyPreviewOut>,
}

/// One reaction chip.
#[derive(Serialize)]
pub struct ReactionOut {
    pub reaction: String,
    pub count: usize,
    pub user_ids: Vec<UserId>,
}

/// What a reply quotes of the message it answers.
#[derive(Serialize)]
pub struct ReplyPreviewOut {
    pub seq: Seq,
    pub sender_id: UserId,
    pub sender_name: String,
    pub text: String,
    pub deleted: bool,
}

impl From<&Current> for CurrentOut {
    fn from(c: &Current) -> Self {
        let message = matches!(c.event.body, EventBody::Message { .. }).then(|| MessageStateOut {
            edited_at: c.edited_at,
            reactions: c
                .reactions
                .iter()
                .map(|r| ReactionOut {
                    reaction: r.reaction.clone(),
                    count: r.users.len(),
                    user_ids: r.users.clone(),
                })
                .collect(),
            reply_preview: c.reply_preview.as_ref().map(|p| ReplyPreviewOut {
                seq: p.seq,
                sender_id: p.sender,
                sender_name: p.sender_name.clone(),
                text: p.text.clone(),
                deleted: p.deleted,
            }),
        });
        CurrentOut {
            event: EventOut::from(&c.event),
            message,
        }
    }
}

/// Pushed, not stored: presence, typing, the other person's read marker
/// in a direct conversation, and the caller's own read markers and
/// notification choices.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EphemeralOut {
    Presence {
        user_id: UserId,
        online: bool,
    },
    Read {
        room_id: RoomId,
        seq: Seq,
    },
    Typing {
        room_id: RoomId,
        user_id: UserId,
        typing: bool,
        /// The room's head when announced: the typer's messages up to it
        /// came before the notice, later ones after.
        seq: Seq,
        /// How much longer the notice stands unless renewed (counted by
        /// the server's clock, so a client's clock does not matter).
        expires_in_ms: Millis,
    },
    ReadReceipt {
        room_id: RoomId,
        user_id: UserId,
        seq: Seq,
    },
    Notifications {
        room_id: RoomId,
        level: NotifyLevel,
    },
    RoomOnline {
        room_id: RoomId,
        online_count: usize,
    },
}

impl From<&Ephemeral> for EphemeralOut {
    fn from(e: &Ephemeral) -> Self {
        match e {
            Ephemeral::Presence { user, online } => EphemeralOut::Presence {
                user_id: *user,
                online: *online,
            },
            Ephemeral::Read { room, seq } => EphemeralOut::Read {
                room_id: *room,
                seq: *seq,
            },
            Ephemeral::Typing {
                room,
                user,
                typing,
                seq,
                expires_at,
            } => EphemeralOut::Typing {
                room_id: *room,
                user_id: *user,
                typing: *typing,
                seq: *seq,
                expires_in_ms: (*expires_at - crate::model::now_ms()).max(0),
            },
            Ephemeral::ReadReceipt { room, user, seq } => EphemeralOut::ReadReceipt {
                room_id: *room,
                user_id: *user,
                seq: *seq,
            },
            Ephemeral::Notifications { room, level } => EphemeralOut::Notifications {
                room_id: *room,
                level: *level,
            },
            Ephemeral::RoomOnline { room, online } => EphemeralOut::RoomOnline {
                room_id: *room,
                online_count: *online,
            },
        }
    }
}

/// An event's JSON, encoded once per event however many polls send it.
pub fn encoded_event(e: &Event) -> &RawValue {
    e.encoded.get_or_init(|| {
        let json = serde_json::to_string(&EventOut::from(e)).expect("events encode");
        RawValue::from_string(json).expect("serde_json output is JSON")
    })
}

/// One long-poll answer.
#[derive(Serialize)]
pub struct EventsOut<'a> {
    pub events: Vec<&'a RawValue>,
    pub ephemeral: Vec<EphemeralOut>,
    pub cursor: &'a str,
    pub ephemeral_gap: bool,
}

impl EventsOut<'_> {
    /// About the length of this answer's JSON: the events' cached
    /// encodings, the cursor, and a guess for the rest.
    pub fn size_hint(&self) -> usize {
        let events: usize = self.events.iter().map(|e| e.get().len() + 1).sum();
        64 + events + self.cursor.len() + 96 * self.ephemeral.len()
    }
}

impl<'a> From<&'a PollAnswer> for EventsOut<'a> {
    fn from(a: &'a PollAnswer) -> Self {
        EventsOut {
            events: a.events.iter().map(|e| encoded_event(e)).collect(),
            ephemeral: a
                .ephemeral
                .iter()
                .map(|e| EphemeralOut::from(&**e))
                .collect(),
            cursor: &a.cursor,
            ephemeral_gap: a.ephemeral_gap,
        }
    }
}

/// One of the caller's sessions.
#[derive(Serialize)]
pub struct SessionOut {
    pub id: i64,
    pub created_at: Millis,
    pub expires_at: Millis,
    /// The session of the request that asked.
    pub current: bool,
}

impl From<&crate::chat::SessionListing> for SessionOut {
    fn from(s: &crate::chat::SessionListing) -> Self {
        SessionOut {
            id: s.session.id.0,
            created_at: s.session.created_at,
            expires_at: s.session.expires_at,
            current: s.current,
        }
    }
}
