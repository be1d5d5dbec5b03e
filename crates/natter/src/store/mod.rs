//! Durable storage behind one domain-shaped trait.
//!
//! [`Store`] speaks in chat terms (append a message, events after a
//! sequence) so each database gets its own plain SQL. Every write that
//! returns `Ok` has been committed: the domain acknowledges a message only
//! after `append_message` returns, which is what "acked means durable" rests on.

pub mod conformance;
pub mod migrate;
mod open;
pub mod postgres;
pub mod sqlite;

use async_trait::async_trait;

pub use self::open::StoreChoice;

use crate::model::{
    Current, EndReason, Event, Millis, NotifyLevel, Role, Room, RoomId, Seq, SessionId, User,
    UserId, Visibility,
};

/// What can go wrong in a store, in terms the domain can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was hit (a taken username).
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// The room or user the write refers to does not exist.
    #[error("not found: {0}")]
    NotFound(&'static str),
    /// The user is not an active member of the room written to.
    #[error("not a member")]
    NotAMember,
    /// The user may not make this change (another's message, say).
    #[error("not allowed: {0}")]
    NotAllowed(&'static str),
    /// The message was deleted: nothing more happens to it.
    #[error("the message was deleted")]
    MessageDeleted,
    /// The message is older than the edit window.
    #[error("the edit window has closed")]
    EditWindowClosed,
    /// A bound was reached (reactions on one message).
    #[error("too many: {0}")]
    TooMany(&'static str),
    /// A write's own data cannot be stored: its source failed midway (an
    /// import's archive), or it holds text the database cannot keep (a NUL
    /// character in PostgreSQL). Nothing of it was written.
    #[error("{0}")]
    Aborted(String),
    /// A client message id was reused for a different text.
    #[error("client message id reused with different content")]
    IdempotencyConflict,
    /// The disk (or the database's size limit) is full: nothing was written.
    #[error("the disk is full")]
    Full,
    /// The data folder or its database cannot be used; the message names
    /// the file and says why (natter refuses to start).
    #[error("{0}")]
    Refused(String),
    /// The database cannot be reached right now (a PostgreSQL server that
    /// is down or restarting): nothing was written, and the same call may
    /// succeed once it is back. Reported fast, so a request fails in
    /// seconds instead of hanging.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// Anything the caller cannot fix: I/O, corruption, a bug.
    #[error("store failure: {0}")]
    Internal(String),
}

/// Store results.
pub type StoreResult<T> = Result<T, StoreError>;

/// A user to create; the password is already hashed.
pub struct NewUser {
    pub username: String,
    pub display_name: String,
    pub password_hash: String,
    pub at: Millis,
    /// The hash of an invite code this registration uses up, in the same
    /// transaction (invite-only registration).
    pub invite: Option<[u8; 32]>,
}

/// The stored form of a user's credentials, for login.
pub struct Credentials {
    pub user: User,
    pub password_hash: String,
    pub deactivated: bool,
}

/// Which of a user's live sessions a write ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndSessions {
    None,
    /// Every one but this (the caller's own).
    AllBut(SessionId),
    All,
}

/// A live session as its owner sees it in their list.
#[derive(Clone, Debug)]
pub struct SessionInfo {
    pub id: SessionId,
    pub created_at: Millis,
    pub expires_at: Millis,
}

/// Changes to a profile; `None` leaves a field alone, `Some(None)` clears it.
#[derive(Default)]
pub struct ProfilePatch {
    pub display_name: Option<String>,
    pub avatar_url: Option<Option<String>>,
}

/// A session to create, optionally ending the user's other sessions in the
/// same transaction (single-session mode).
pub struct NewSession {
    pub user: UserId,
    pub token_hash: [u8; 32],
    pub at: Millis,
    pub expires_at: Millis,
    pub end_others: Option<EndReason>,
    /// When set, the session is made only if the user's password hash is
    /// still this one (`Conflict("password_changed")` otherwise); it is
    /// never made for a deactivated user (`Conflict("deactivated")`).
    pub password_hash: Option<String>,
}

/// A stored session, found by its token hash.
#[derive(Clone, Debug)]
pub struct SessionRecord {
    pub id: SessionId,
    pub user: UserId,
    pub expires_at: Millis,
    pub ended: Option<EndReason>,
}

/// A group room to create with its creator as owner.
pub struct NewRoom {
    pub creator: UserId,
    pub creator_name: String,
    /// Stored form of the room's community (see `Room::community`).
    pub community: Option<String>,
    pub title: String,
    pub visibility: Visibility,
    pub at: Millis,
}

/// A room, its newest event and its active members, read in one snapshot
/// so the head and the member set agree.
pub struct RoomSnapshot {
    pub room: Room,
    /// The event at the head (`None` only for a room with no events), so
    /// a fresh cursor can carry its stamp.
    pub head_event: Option<Event>,
    pub members: Vec<(UserId, Role)>,
}

/// One user's membership of one room, current or past.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MembershipRecord {
    pub room: RoomId,
    /// The first seq this user may see (1 for founding members, else their join).
    pub since_seq: Seq,
    /// The seq of the event that last changed this membership.
    pub changed_seq: Seq,
    pub active: bool,
}

/// A member with the profile fields a member list shows.
pub struct MemberProfile {
    pub user: User,
    pub role: Role,
}

/// A row of a user's room list.
pub struct RoomSummary {
    pub room: Room,
    pub role: Role,
    pub read_seq: Seq,
    /// Messages of others after the read marker, deleted ones not counted.
    pub unread: i64,
    /// Of those, the ones that mention the user.
    pub mentions: i64,
    /// The user's own choice of notifications; `None` until they choose.
    pub notify: Option<NotifyLevel>,
    /// The newest message as it stands now (edited, or deleted).
    pub last_message: Option<Current>,
    /// For direct conversations: the other person.
    pub peer: Option<User>,
    /// For direct conversations: the other person's read marker.
    pub peer_read_seq: Option<Seq>,
}

/// What a people search looks for, and among whom.
pub struct PeopleQuery {
    /// Found anywhere in a display name (ignoring ASCII case, and names
    /// in Chinese have no word breaks to start from), or the whole
    /// username after its community's prefix (a prefix of usernames would
    /// let anyone list them letter by letter).
    pub text: String,
    /// Only usernames that start with this (a community's prefix, e.g.
    /// `site:`); `None` for everyone.
    pub username_prefix: Option<String>,
    /// Usernames with a `:` are left out (local accounts only).
    pub local_only: bool,
    /// The most people to answer with.
    pub limit: usize,
}

/// Which page of a room's member list to read: members by display name
/// (then id), those after `after`, whose names contain `text`.
pub struct MemberQuery {
    /// Members after this place in that order (the last of the previous
    /// page).
    pub after: Option<MemberPlace>,
    /// Found anywhere in a display name, ignoring ASCII case.
    pub text: Option<String>,
    /// The most members to answer with.
    pub limit: usize,
}

/// A place in a member list's order: display name, then id. A page's
/// next one carries the name the member had when the page was read, so a
/// rename between pages moves nobody into or out of the pages still to
/// come; without it (`after` as a bare id) the member's current name is
/// used, and a member who left since is still a place to continue from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberPlace {
    pub id: UserId,
    pub name: Option<String>,
}

/// A change to a room, made by `actor`: if it changes anything, the store
/// appends it as the room's next event and applies it to the room's
/// current state in the same transaction.
pub struct NewEvent {
    pub room: RoomId,
    pub actor: UserId,
    /// The actor's display name, kept with the event.
    pub actor_name: String,
    pub at: Millis,
    pub action: Action,
}

/// What a [`NewEvent`] does. The store checks again what the domain
/// checked (membership, whose message, a deleted target), so no caller can
/// write what the rules forbid.
#[derive(Clone, Debug)]
pub enum Action {
    /// A message, unless the actor already sent one with this client id.
    Send {
        client_msg_id: String,
        text: String,
        reply_to: Option<Seq>,
    },
    /// The sender's new text; with `sent_after`, only for a message sent
    /// at or after that time (the edit window).
    Edit {
        target: Seq,
        text: String,
        sent_after: Option<Millis>,
    },
    /// By the sender, or an owner or admin of the room.
    Delete {
        target: Seq,
    },
    React {
        target: Seq,
        reaction: String,
    },
    Unreact {
        target: Seq,
        reaction: String,
    },
    /// `user` joins with `role` (the actor invited them, or is them).
    Join {
        user: UserId,
        role: Role,
    },
    /// `user` leaves, or is removed.
    Leave {
        user: UserId,
    },
    UpdateRoom {
        title: String,
        visibility: Visibility,
    },
}

/// A page of history and the moment it shows.
#[derive(Debug)]
pub struct HistoryPage {
    /// Oldest first; messages as they stand now.
    pub entries: Vec<Current>,
    /// The room's head when the page was read: every change up to it is
    /// in the page, none after it, so a client that heard changes while
    /// it read knows which to apply again.
    pub head: Seq,
}

/// What an append did and, for a change to a message, the message after it.
#[derive(Debug)]
pub struct Appended {
    pub outcome: Outcome,
    /// For an edit, a deletion or a reaction: the message as it stands
    /// after it, read in the same transaction, so the caller needs no
    /// second trip to the store.
    pub message: Option<Current>,
}

/// Whether an append appended.
#[derive(Debug)]
pub enum Outcome {
    /// Appended as the room's next event.
    Appended(Event),
    /// Nothing changed (the same edit again, a reaction already there, a
    /// member already in); for a send retried with its client id, the
    /// message it stored the first time.
    Unchanged(Option<Event>),
}

/// A chat of an archive being imported (archive/import.rs): the room it
/// becomes, found again by `key` when the archive is imported again.
pub struct ImportChat {
    /// Names the chat in its archive (`mass:215`, `direct:<hash>`).
    pub key: String,
    /// A one-to-one chat: the direct conversation of its two members.
    pub direct: bool,
    /// For a group: the room's title.
    pub title: String,
    /// Stored form of the room's community (see `Room::community`).
    pub community: Option<String>,
    /// Everyone in the chat with the name to announce them by; the first
    /// creates the room (and owns a group).
    pub members: Vec<(UserId, String)>,
    /// When the room was created: the chat's first message.
    pub at: Millis,
}

/// One message of an imported chat.
pub struct ImportMessage {
    pub sender: UserId,
    pub sender_name: String,
    /// When it was sent, by the archive (not when it is imported).
    pub at: Millis,
    /// Derived from the message's place in the archive, so importing the
    /// archive again stores it once.
    pub client_msg_id: String,
    pub text: String,
}

/// Where an import reads a chat's messages from, in order; an `Err` ends
/// the import of the chat and writes none of it.
pub(crate) type ImportSource = Box<dyn Iterator<Item = Result<ImportMessage, String>> + Send>;

/// What importing one chat did.
#[derive(Debug, Clone, Copy)]
pub struct ImportedChat {
    pub room: RoomId,
    /// The room was made by this import (not found from an earlier one).
    pub created: bool,
    pub appended: u64,
    /// Messages stored by an earlier import.
    pub already: u64,
    /// Messages whose place an earlier import stored with another text
    /// (the archive was edited since): left as they were.
    pub conflicting: u64,
    /// New messages of people who left the room since an earlier import:
    /// not added, since nobody is put back into a room they left.
    pub from_leavers: u64,
}

/// Durable storage. One implementation per database, each passing the same
/// conformance tests; every method is atomic.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// A random id fixed when the data folder was created; cursors carry it
    /// so one deployment's cursor is never misread by another.
    fn deployment_id(&self) -> u64;
    /// A random secret fixed when the data folder was created; it signs
    /// cursors, so a client cannot alter one or use another user's.
    fn cursor_key(&self) -> [u8; 32];

    /// Creates a user; `Conflict("username")` when the name is taken,
    /// `NotFound("invite")` when the invite is unknown, used or expired.
    async fn create_user(&self, user: NewUser) -> StoreResult<User>;
    async fn credentials(&self, username: &str) -> StoreResult<Option<Credentials>>;
    async fn user(&self, id: UserId) -> StoreResult<Option<User>>;
    /// Creates or updates the user `external_id` of host site `site`.
    /// Their username is `site:external_id`, which no password login can
    /// name, and `avatar_url` is only changed when `Some`. A deactivated
    /// user is left alone: `Conflict("deactivated")`.
    async fn upsert_site_user(
        &self,
        site: &str,
        external_id: &str,
        display_name: String,
        avatar_url: Option<String>,
        at: Millis,
    ) -> StoreResult<User>;
    /// The user `external_id` of host site `site`, if known.
    async fn site_user(&self, site: &str, external_id: &str) -> StoreResult<Option<User>>;
    /// Ends the live sessions of `user` that `which` names; returns their ids.
    async fn end_user_sessions(
        &self,
        user: UserId,
        which: EndSessions,
        reason: EndReason,
        at: Millis,
    ) -> StoreResult<Vec<SessionId>>;
    /// The user's sessions that have neither ended nor expired at `now`.
    async fn live_sessions(&self, user: UserId, now: Millis) -> StoreResult<Vec<SessionInfo>>;
    /// Replaces the password hash and ends the sessions `ending` names, in
    /// one transaction; returns the ended sessions.
    async fn set_password(
        &self,
        user: UserId,
        password_hash: String,
        ending: EndSessions,
        at: Millis,
    ) -> StoreResult<Vec<SessionId>>;
    /// Deactivates (ending every session in the same transaction) or
    /// reactivates an account; returns the ended sessions.
    async fn set_deactivated(
        &self,
        user: UserId,
        deactivated: bool,
        at: Millis,
    ) -> StoreResult<Vec<SessionId>>;
    /// Whether the account is deactivated (`None`: no such user).
    async fn is_deactivated(&self, user: UserId) -> StoreResult<Option<bool>>;
    /// Records an invite code's hash, usable once until `expires_at`.
    async fn create_invite(
        &self,
        code_hash: [u8; 32],
        at: Millis,
        expires_at: Millis,
    ) -> StoreResult<()>;
    /// Records a site token's `jti`; `false` when it was recorded before
    /// (a replay). Ids whose tokens have expired are forgotten.
    async fn claim_token_id(
        &self,
        site: &str,
        jti: &str,
        expires_at: Millis,
        now: Millis,
    ) -> StoreResult<bool>;
    async fn update_profile(&self, id: UserId, patch: ProfilePatch) -> StoreResult<User>;

    /// Creates a session; returns its id and the ids of sessions it ended.
    async fn create_session(&self, session: NewSession)
    -> StoreResult<(SessionId, Vec<SessionId>)>;
    async fn session_by_token(&self, token_hash: [u8; 32]) -> StoreResult<Option<SessionRecord>>;
    async fn end_session(&self, id: SessionId, reason: EndReason, at: Millis) -> StoreResult<()>;
    /// Those of `ids` that have ended, with their user and why: how a
    /// node of a cluster learns of endings whose bus message it missed,
    /// for all its cached sessions in one query.
    async fn ended_sessions(
        &self,
        ids: &[SessionId],
    ) -> StoreResult<Vec<(UserId, SessionId, EndReason)>>;

    /// Creates a group room: event 1 is `room_created` with the creator as owner.
    async fn create_room(&self, room: NewRoom) -> StoreResult<(Room, Event)>;
    /// Finds or creates the one direct conversation of a pair; the event is
    /// `Some` only when this call created it.
    async fn open_direct(
        &self,
        opener: UserId,
        opener_name: String,
        peer: UserId,
        at: Millis,
    ) -> StoreResult<(Room, Option<Event>)>;
    async fn room(&self, id: RoomId) -> StoreResult<Option<Room>>;
    /// The newest committed seq of each of `rooms` that exists, in no
    /// particular order: a node of a cluster compares them with what its
    /// bus delivered, and reads what the bus lost (hub/heads.rs).
    async fn room_heads(&self, rooms: &[RoomId]) -> StoreResult<Vec<(RoomId, Seq)>>;
    async fn room_snapshot(&self, id: RoomId) -> StoreResult<Option<RoomSnapshot>>;
    /// Public group rooms, newest first: every community's when
    /// `community` is `None`, else that community's and everyone's.
    async fn public_rooms(&self, limit: usize, community: Option<String>)
    -> StoreResult<Vec<Room>>;

    /// Every active member, by display name: for exports and small rooms.
    async fn members(&self, room: RoomId) -> StoreResult<Vec<MemberProfile>>;
    /// One page of the active members: what a member list shows of a room
    /// of thousands, and how it finds someone there by name.
    async fn member_page(
        &self,
        room: RoomId,
        query: MemberQuery,
    ) -> StoreResult<Vec<MemberProfile>>;
    async fn memberships_of(&self, user: UserId) -> StoreResult<Vec<MembershipRecord>>;
    async fn room_summaries(&self, user: UserId) -> StoreResult<Vec<RoomSummary>>;
    /// The one write path of room events after the room's creation: see
    /// [`NewEvent`]. A message, an edit, a reaction, a join: each is
    /// checked, appended with the next sequence number and applied to
    /// the current state in one transaction, or refused and nothing
    /// changes.
    async fn append(&self, change: NewEvent) -> StoreResult<Appended>;
    /// Log events with `seq > after`, oldest first, at most `limit`: what
    /// the event stream delivers (deleted messages' texts already gone).
    async fn events_after(&self, room: RoomId, after: Seq, limit: usize)
    -> StoreResult<Vec<Event>>;
    /// A page of history: the messages and room events with `seq <
    /// before` (or the newest), oldest first, messages as they stand now.
    /// Changes to messages are folded in, never listed.
    async fn history(
        &self,
        room: RoomId,
        before: Option<Seq>,
        limit: usize,
    ) -> StoreResult<HistoryPage>;
    /// The message at `seq` as it stands now; `None` when there is no
    /// message there.
    async fn message(&self, room: RoomId, seq: Seq) -> StoreResult<Option<Current>>;
    /// Moves the user's read marker forward (never back); returns the marker.
    async fn set_read(&self, room: RoomId, user: UserId, seq: Seq) -> StoreResult<Seq>;
    /// Records an active member's choice of notifications for a room
    /// (`None`: back to the default); `NotAMember` otherwise.
    async fn set_notify(
        &self,
        room: RoomId,
        user: UserId,
        level: Option<NotifyLevel>,
    ) -> StoreResult<()>;
    /// Active accounts matching a people search, by display name.
    async fn search_people(&self, query: PeopleQuery) -> StoreResult<Vec<User>>;

    /// Imports one chat of an archive in one transaction: the room an
    /// earlier import made for its key (or a new one, or for a direct
    /// chat the pair's conversation), its members (those never in the
    /// room: nobody who left is put back), and each message not stored
    /// before, with its own time. Nothing of the chat is written
    /// when `messages` yields an error (`StoreError::Aborted`).
    async fn import_chat(
        &self,
        chat: ImportChat,
        messages: ImportSource,
    ) -> StoreResult<ImportedChat>;
    /// The rooms imports made, by archive key.
    async fn archive_keys(&self) -> StoreResult<Vec<(String, RoomId)>>;
    /// Rooms with ids after `after`, by id, at most `limit`: every room,
    /// a page at a time (for exports).
    async fn rooms_after(&self, after: RoomId, limit: usize) -> StoreResult<Vec<Room>>;
}
