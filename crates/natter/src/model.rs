//! The chat domain's vocabulary: identifiers, users, rooms and room events.
//!
//! Every layer speaks these types, so they carry no behaviour beyond what
//! keeps them consistent; validation of user input lives in [`crate::text`].

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A user's permanent id; usernames can be looked up, ids are what rooms store.
    UserId
);
id_type!(
    /// A conversation's id: group rooms and direct conversations share one id space.
    RoomId
);
id_type!(
    /// A login session's id; the token itself is never stored, only its hash.
    SessionId
);

/// A position in one room's event sequence: 1, 2, 3 … with no gaps, so a
/// client that remembers the last one it saw can resume exactly.
pub type Seq = i64;

/// Milliseconds since the Unix epoch, as stored and as sent to clients.
pub type Millis = i64;

/// The current time in [`Millis`].
pub fn now_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}

/// A registered person, as others may see them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    /// Set by the user; `None` means clients show the generated avatar.
    pub avatar_url: Option<String>,
    pub created_at: Millis,
}

/// Whether a conversation is a group room or the one conversation of a pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoomKind {
    Group,
    Direct,
}

/// Who may join a group room without being invited.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    Public,
    Private,
}

/// What a member may do beyond reading and writing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Admin,
    Member,
}

impl Role {
    /// Owners and admins manage a room: invite to private rooms, rename it.
    pub fn can_manage(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }
}

/// A conversation as stored, with its current head sequence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Room {
    pub id: RoomId,
    pub kind: RoomKind,
    pub title: String,
    pub visibility: Visibility,
    pub created_by: UserId,
    pub created_at: Millis,
    /// The sequence number of the room's newest event.
    pub head: Seq,
    /// Whose room it is, in stored form (`chat::Community`): `None` for
    /// everyone's, `""` for the local community's, else a site's id.
    pub community: Option<String>,
}

/// One entry of a room's durable, ordered event log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub room: RoomId,
    pub seq: Seq,
    pub at: Millis,
    pub sender: UserId,
    /// The sender's display name when the event happened.
    pub sender_name: String,
    pub body: EventBody,
    /// The event's encoded wire form, filled by the first answer that sends
    /// it, so a fan-out to a thousand polls encodes it once.
    pub encoded: EncodedOnce,
}

/// A once-filled slot for a JSON encoding of a value; ignored by
/// comparisons, since it only ever holds a function of the value itself.
#[derive(Clone, Debug, Default)]
pub struct EncodedOnce(std::sync::OnceLock<Box<serde_json::value::RawValue>>);

impl EncodedOnce {
    /// The cached encoding, computing it with `encode` the first time.
    pub fn get_or_init(
        &self,
        encode: impl FnOnce() -> Box<serde_json::value::RawValue>,
    ) -> &serde_json::value::RawValue {
        self.0.get_or_init(encode)
    }
}

impl PartialEq for EncodedOnce {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for EncodedOnce {}

/// What happened in a room. Every change to a message is an event of its
/// own that names the message by `target` seq, so a client that resumes
/// from any cursor receives every change it missed, in order.
///
/// How events are kept on disk is the store's business (`store::sqlite`
/// encodes each kind in its columns), and how they look on the wire is
/// `http::wire`'s: this type is only what happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventBody {
    /// A chat message; `client_msg_id` makes sending idempotent.
    Message {
        client_msg_id: String,
        text: String,
        /// The message this one answers.
        reply_to: Option<Seq>,
        /// The message was deleted since: `text` is gone from the log too.
        redacted: bool,
    },
    /// Always seq 1; `members` are the room's first members.
    RoomCreated {
        title: String,
        kind: RoomKind,
        visibility: Visibility,
        members: Vec<UserId>,
    },
    /// Someone joined, or was invited by `invited_by`.
    MemberJoined {
        user: UserId,
        name: String,
        role: Role,
        invited_by: Option<UserId>,
    },
    /// Someone left the room.
    MemberLeft { user: UserId },
    /// The title or visibility changed.
    RoomUpdated {
        title: String,
        visibility: Visibility,
    },
    /// The sender gave their message a new text (empty once the message
    /// was deleted: earlier texts leave the log with it).
    MessageEdited { target: Seq, text: String },
    /// The message's text, edits and reactions are gone; the sender or a
    /// room manager (the event's sender) deleted it.
    MessageDeleted { target: Seq },
    /// The event's sender reacted to the message.
    ReactionAdded { target: Seq, reaction: String },
    /// The event's sender took their reaction back.
    ReactionRemoved { target: Seq, reaction: String },
}

impl Event {
    /// About how many bytes the event takes in a poll answer, to keep
    /// answers bounded without encoding them twice.
    pub fn approx_wire_bytes(&self) -> usize {
        let body = match &self.body {
            EventBody::Message {
                client_msg_id,
                text,
                ..
            } => client_msg_id.len() + text.len(),
            EventBody::MessageEdited { text, .. } => text.len(),
            _ => 256,
        };
        160 + self.sender_name.len() + body
    }
}

impl Event {
    /// This event as the deletion of message `target` leaves it: the
    /// message itself and its edits lose their text; `None` for any other
    /// event, which the deletion does not touch.
    pub fn redacted_for(&self, target: Seq) -> Option<Event> {
        let body = match &self.body {
            EventBody::Message { client_msg_id, .. } if self.seq == target => EventBody::Message {
                client_msg_id: client_msg_id.clone(),
                text: String::new(),
                reply_to: None,
                redacted: true,
            },
            EventBody::MessageEdited { target: t, .. } if *t == target => {
                EventBody::MessageEdited {
                    target,
                    text: String::new(),
                }
            }
            _ => return None,
        };
        Some(Event {
            body,
            // A new slot: the old encoding carries the text.
            encoded: Default::default(),
            sender_name: self.sender_name.clone(),
            ..*self
        })
    }
}

impl EventBody {
    /// The stable name used in storage and on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            EventBody::Message { .. } => "message",
            EventBody::RoomCreated { .. } => "room_created",
            EventBody::MemberJoined { .. } => "member_joined",
            EventBody::MemberLeft { .. } => "member_left",
            EventBody::RoomUpdated { .. } => "room_updated",
            EventBody::MessageEdited { .. } => "message_edited",
            EventBody::MessageDeleted { .. } => "message_deleted",
            EventBody::ReactionAdded { .. } => "reaction_added",
            EventBody::ReactionRemoved { .. } => "reaction_removed",
        }
    }

    /// The message a change event applies to.
    pub fn target(&self) -> Option<Seq> {
        match self {
            EventBody::MessageEdited { target, .. }
            | EventBody::MessageDeleted { target }
            | EventBody::ReactionAdded { target, .. }
            | EventBody::ReactionRemoved { target, .. } => Some(*target),
            _ => None,
        }
    }

    /// The member a join or leave is about: the news a big room keeps
    /// quiet (hub/watching.rs).
    pub fn joined_or_left(&self) -> Option<UserId> {
        match self {
            EventBody::MemberJoined { user, .. } | EventBody::MemberLeft { user } => Some(*user),
            _ => None,
        }
    }

    /// How this event changes membership, for the hub's in-memory member sets.
    pub fn membership_changes(&self) -> Vec<(UserId, MembershipChange)> {
        match self {
            EventBody::RoomCreated { members, kind, .. } => {
                // A group room has one founder, its owner; a direct
                // conversation has two equal members.
                let role = match kind {
                    RoomKind::Group => Role::Owner,
                    RoomKind::Direct => Role::Member,
                };
                members
                    .iter()
                    .map(|u| (*u, MembershipChange::Joined(role)))
                    .collect()
            }
            EventBody::MemberJoined { user, role, .. } => {
                vec![(*user, MembershipChange::Joined(*role))]
            }
            EventBody::MemberLeft { user } => vec![(*user, MembershipChange::Left)],
            _ => Vec::new(),
        }
    }
}

/// Most distinct reactions one message carries. A user's reactions to a
/// message are distinct, so no user gives one message more than this.
pub(crate) const MAX_REACTIONS_PER_MESSAGE: usize = 20;

/// One reaction on a message and who gave it, in the order they did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reaction {
    pub reaction: String,
    pub users: Vec<UserId>,
}

/// What a reply shows of the message it answers, as that message is now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplyPreview {
    pub seq: Seq,
    pub sender: UserId,
    pub sender_name: String,
    /// The first line, shortened; empty when deleted.
    pub text: String,
    pub deleted: bool,
}

/// An event of a room's history as it stands now: for a message, its
/// current text, whether it was edited or deleted, its reactions (in the
/// order they first appeared, each with its users in reacting order) and
/// what it replies to; for other events, the event itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Current {
    /// For a message, `text` is the current text (empty once deleted).
    pub event: Event,
    pub edited_at: Option<Millis>,
    pub deleted: bool,
    pub reactions: Vec<Reaction>,
    pub reply_preview: Option<ReplyPreview>,
}

impl Current {
    /// A history entry that is not a message, or a message never changed.
    pub fn unchanged(event: Event) -> Current {
        let deleted = matches!(event.body, EventBody::Message { redacted: true, .. });
        Current {
            event,
            edited_at: None,
            deleted,
            reactions: Vec::new(),
            reply_preview: None,
        }
    }
}

/// A change of one user's membership, carried by a room event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MembershipChange {
    Joined(Role),
    Left,
}

/// Short-lived news that is pushed but not stored: a client that misses it
/// re-reads the state it describes (the member list, the room list).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ephemeral {
    /// A user came online or went offline.
    Presence { user: UserId, online: bool },
    /// The receiving user marked a room read (echoed to their other sessions).
    Read { room: RoomId, seq: Seq },
    /// Someone in the room started (until `expires_at`) or stopped typing,
    /// when the room's head was `seq`: a message of theirs after it is
    /// newer than the notice, one at or before it older.
    Typing {
        room: RoomId,
        user: UserId,
        typing: bool,
        seq: Seq,
        expires_at: Millis,
    },
    /// The other person in a direct conversation read up to `seq`.
    ReadReceipt {
        room: RoomId,
        user: UserId,
        seq: Seq,
    },
    /// A big room's online count changed (to those watching it).
    RoomOnline { room: RoomId, online: usize },
    /// The receiving user changed a room's notifications (echoed to their
    /// sessions, so every device obeys the new choice at once).
    Notifications { room: RoomId, level: NotifyLevel },
}

/// Which messages of a room a member wants to be notified of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyLevel {
    All,
    /// Messages that mention the member.
    Mentions,
    None,
}

impl NotifyLevel {
    /// What a member gets until they choose: every message of a direct
    /// conversation (it is written to them), only mentions in a group.
    pub fn default_for(kind: RoomKind) -> NotifyLevel {
        match kind {
            RoomKind::Direct => NotifyLevel::All,
            RoomKind::Group => NotifyLevel::Mentions,
        }
    }

    /// The level in force: a member's own `choice`, else the default.
    pub fn effective(choice: Option<NotifyLevel>, kind: RoomKind) -> NotifyLevel {
        choice.unwrap_or(NotifyLevel::default_for(kind))
    }

    /// The stable name used in storage and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyLevel::All => "all",
            NotifyLevel::Mentions => "mentions",
            NotifyLevel::None => "none",
        }
    }

    /// The level a stored or sent name names.
    pub fn parse(name: &str) -> Option<NotifyLevel> {
        [NotifyLevel::All, NotifyLevel::Mentions, NotifyLevel::None]
            .into_iter()
            .find(|l| l.as_str() == name)
    }
}

/// Why a session stopped being valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// The user logged out.
    LoggedOut,
    /// A newer login replaced it (single-session mode).
    Replaced,
    /// The account was deactivated.
    Deactivated,
}

impl EndReason {
    /// The stable name used in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::LoggedOut => "logged_out",
            EndReason::Replaced => "replaced",
            EndReason::Deactivated => "deactivated",
        }
    }

    /// Parses [`EndReason::as_str`]; unknown strings count as a logout.
    pub fn parse(s: &str) -> Self {
        match s {
            "replaced" => EndReason::Replaced,
            "deactivated" => EndReason::Deactivated,
            _ => EndReason::LoggedOut,
        }
    }
}
