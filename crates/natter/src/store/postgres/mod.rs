//! The scale-out store: PostgreSQL, shared by every natter node of a
//! deployment, through a small pool of connections per node.
//!
//! Each store call is one transaction (reads that must see one moment use
//! `REPEATABLE READ`), committed before the call returns `Ok`; natter
//! refuses a server whose commits may not survive a crash (`schema.rs`).
//! Sends that queue up meanwhile share one statement and one commit
//! (`sends.rs`). A room's writers are ordered by a lock on the room's
//! row, so its seqs follow commit order (`queries/mod.rs`); the rules
//! that must hold across nodes (one message per client id, one
//! conversation per pair) are unique keys. A database that is down fails
//! calls within the pool's timeouts with `StoreError::Unavailable`
//! (`pool.rs`).

mod calls;
pub(crate) mod copy_in;
mod fail;
mod guard;
mod pool;
mod queries;
mod rows;
mod schema;
mod sends;
mod tls;

use async_trait::async_trait;

use self::calls::Db;
use self::fail::Fail;
pub use self::pool::{PostgresOptions, redacted};
use self::sends::Sends;
use crate::model::{
    Current, EndReason, Event, Millis, NotifyLevel, Room, RoomId, Seq, SessionId, User, UserId,
};
use crate::store::{
    Action, Appended, Credentials, EndSessions, HistoryPage, ImportChat, ImportSource,
    ImportedChat, MemberProfile, MemberQuery, MembershipRecord, NewEvent, NewRoom, NewSession,
    NewUser, PeopleQuery, ProfilePatch, RoomSnapshot, RoomSummary, SessionInfo, SessionRecord,
    Store, StoreResult,
};

/// The PostgreSQL implementation of [`Store`].
pub struct PostgresStore {
    db: Db,
    sends: Sends,
    deployment_id: u64,
    cursor_key: [u8; 32],
}

impl PostgresStore {
    /// Connects, refuses a server without durable commits (unless
    /// `allow_unsafe_commit`), and creates or migrates the schema under an
    /// advisory lock, so nodes starting at once do it once.
    pub async fn open(options: PostgresOptions) -> StoreResult<PostgresStore> {
        let pool = pool::build(&options)?;
        let mut conn = pool::connection(&pool).await?;
        let started = conn.transaction().await.map_err(|e| fail::db_error(&e))?;
        let identity = async {
            schema::check_durability(&started, options.allow_unsafe_commit).await?;
            let identity = schema::migrate(&started, options.schema.as_deref()).await?;
            started.commit().await?;
            Ok::<_, Fail>(identity)
        }
        .await
        .map_err(Fail::into_store)?;
        drop(conn);
        tracing::info!(
            store = %redacted(&options.url),
            schema = options.schema.as_deref().unwrap_or("(search_path)"),
            "postgres store ready"
        );
        let db = Db::new(pool, options.call_timeout);
        Ok(PostgresStore {
            sends: Sends::start(db.clone(), options.timeout),
            db,
            deployment_id: identity.deployment_id,
            cursor_key: identity.cursor_key,
        })
    }
}

/// The text fields of a change, for the NUL guard.
fn action_texts(change: &NewEvent) -> Vec<(&'static str, &str)> {
    let mut fields = vec![("the actor's name", change.actor_name.as_str())];
    match &change.action {
        Action::Send {
            client_msg_id,
            text,
            ..
        } => {
            fields.push(("the client message id", client_msg_id));
            fields.push(("the message's text", text));
        }
        Action::Edit { text, .. } => fields.push(("the message's text", text)),
        Action::React { reaction, .. } | Action::Unreact { reaction, .. } => {
            fields.push(("the reaction", reaction))
        }
        Action::UpdateRoom { title, .. } => fields.push(("the room's title", title)),
        Action::Delete { .. } | Action::Join { .. } | Action::Leave { .. } => {}
    }
    fields
}

#[async_trait]
impl Store for PostgresStore {
    fn deployment_id(&self) -> u64 {
        self.deployment_id
    }

    fn cursor_key(&self) -> [u8; 32] {
        self.cursor_key
    }

    async fn create_user(&self, user: NewUser) -> StoreResult<User> {
        guard::no_nul(&[
            ("the username", &user.username),
            ("the display name", &user.display_name),
            ("the password hash", &user.password_hash),
        ])?;
        self.db
            .write(&user, |tx, u| Box::pin(queries::create_user(tx, u)))
            .await
    }

    async fn credentials(&self, username: &str) -> StoreResult<Option<Credentials>> {
        if guard::has_nul(&[username]) {
            return Ok(None);
        }
        self.db
            .read(&username.to_owned(), |c, u| {
                Box::pin(queries::credentials(c, u))
            })
            .await
    }

    async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        self.db
            .read(&id, |c, id| Box::pin(queries::user(c, *id)))
            .await
    }

    async fn upsert_site_user(
        &self,
        site: &str,
        external_id: &str,
        display_name: String,
        avatar_url: Option<String>,
        at: Millis,
    ) -> StoreResult<User> {
        guard::no_nul(&[
            ("the site", site),
            ("the external id", external_id),
            ("the display name", &display_name),
            ("the avatar URL", avatar_url.as_deref().unwrap_or_default()),
        ])?;
        let input = (
            site.to_owned(),
            external_id.to_owned(),
            display_name,
            avatar_url,
            at,
        );
        self.db
            .write(&input, |tx, (site, id, name, avatar, at)| {
                Box::pin(queries::upsert_site_user(
                    tx,
                    site,
                    id,
                    name,
                    avatar.as_deref(),
                    *at,
                ))
            })
            .await
    }

    async fn site_user(&self, site: &str, external_id: &str) -> StoreResult<Option<User>> {
        if guard::has_nul(&[site, external_id]) {
            return Ok(None);
        }
        let input = (site.to_owned(), external_id.to_owned());
        self.db
            .read(&input, |c, (site, id)| {
                Box::pin(queries::site_user(c, site, id))
            })
            .await
    }

    async fn end_user_sessions(
        &self,
        user: UserId,
        which: EndSessions,
        reason: EndReason,
        at: Millis,
    ) -> StoreResult<Vec<SessionId>> {
        self.db
            .write(
                &(user, which, reason, at),
                |tx, (user, which, reason, at)| {
                    Box::pin(queries::end_user_sessions(tx, *user, *which, *reason, *at))
                },
            )
            .await
    }

    async fn live_sessions(&self, user: UserId, now: Millis) -> StoreResult<Vec<SessionInfo>> {
        self.db
            .read(&(user, now), |c, (user, now)| {
                Box::pin(queries::live_sessions(c, *user, *now))
            })
            .await
    }

    async fn set_password(
        &self,
        user: UserId,
        password_hash: String,
        ending: EndSessions,
        at: Millis,
    ) -> StoreResult<Vec<SessionId>> {
        guard::no_nul(&[("the password hash", &password_hash)])?;
        self.db
            .write(
                &(user, password_hash, ending, at),
                |tx, (user, hash, ending, at)| {
                    Box::pin(queries::set_password(tx, *user, hash, *ending, *at))
                },
            )
            .await
    }

    async fn set_deactivated(
        &self,
        user: UserId,
        deactivated: bool,
        at: Millis,
    ) -> StoreResult<Vec<SessionId>> {
        self.db
            .write(&(user, deactivated, at), |tx, (user, deactivated, at)| {
                Box::pin(queries::set_deactivated(tx, *user, *deactivated, *at))
            })
            .await
    }

    async fn is_deactivated(&self, user: UserId) -> StoreResult<Option<bool>> {
        self.db
            .read(&user, |c, user| Box::pin(queries::is_deactivated(c, *user)))
            .await
    }

    async fn create_invite(
        &self,
        code_hash: [u8; 32],
        at: Millis,
        expires_at: Millis,
    ) -> StoreResult<()> {
        self.db
            .write(&(code_hash, at, expires_at), |tx, (hash, at, expires)| {
                Box::pin(queries::create_invite(tx, hash, *at, *expires))
            })
            .await
    }

    async fn claim_token_id(
        &self,
        site: &str,
        jti: &str,
        expires_at: Millis,
        now: Millis,
    ) -> StoreResult<bool> {
        guard::no_nul(&[("the site", site), ("the token id", jti)])?;
        let input = (site.to_owned(), jti.to_owned(), expires_at, now);
        self.db
            .write(&input, |tx, (site, jti, expires, now)| {
                Box::pin(queries::claim_token_id(tx, site, jti, *expires, *now))
            })
            .await
    }

    async fn update_profile(&self, id: UserId, patch: ProfilePatch) -> StoreResult<User> {
        guard::no_nul(&[
            (
                "the display name",
                patch.display_name.as_deref().unwrap_or_default(),
            ),
            (
                "the avatar URL",
                patch
                    .avatar_url
                    .as_ref()
                    .and_then(|u| u.as_deref())
                    .unwrap_or_default(),
            ),
        ])?;
        self.db
            .write(&(id, patch), |tx, (id, patch)| {
                Box::pin(queries::update_profile(tx, *id, patch))
            })
            .await
    }

    async fn create_session(
        &self,
        session: NewSession,
    ) -> StoreResult<(SessionId, Vec<SessionId>)> {
        self.db
            .write(&session, |tx, s| Box::pin(queries::create_session(tx, s)))
            .await
    }

    async fn session_by_token(&self, token_hash: [u8; 32]) -> StoreResult<Option<SessionRecord>> {
        self.db
            .read(&token_hash, |c, hash| {
                Box::pin(queries::session_by_token(c, hash))
            })
            .await
    }

    async fn ended_sessions(
        &self,
        ids: &[SessionId],
    ) -> StoreResult<Vec<(UserId, SessionId, EndReason)>> {
        let ids: Vec<i64> = ids.iter().map(|s| s.0).collect();
        self.db
            .read(&ids, |c, ids| Box::pin(queries::ended_sessions(c, ids)))
            .await
    }

    async fn end_session(&self, id: SessionId, reason: EndReason, at: Millis) -> StoreResult<()> {
        self.db
            .write(&(id, reason, at), |tx, (id, reason, at)| {
                Box::pin(queries::end_session(tx, *id, *reason, *at))
            })
            .await
    }

    async fn create_room(&self, room: NewRoom) -> StoreResult<(Room, Event)> {
        guard::no_nul(&[
            ("the creator's name", &room.creator_name),
            (
                "the community",
                room.community.as_deref().unwrap_or_default(),
            ),
            ("the room's title", &room.title),
        ])?;
        self.db
            .write(&room, |tx, room| Box::pin(queries::create_room(tx, room)))
            .await
    }

    async fn open_direct(
        &self,
        opener: UserId,
        opener_name: String,
        peer: UserId,
        at: Millis,
    ) -> StoreResult<(Room, Option<Event>)> {
        guard::no_nul(&[("the opener's name", &opener_name)])?;
        self.db
            .write(
                &(opener, opener_name, peer, at),
                |tx, (opener, name, peer, at)| {
                    Box::pin(queries::open_direct(tx, *opener, name, *peer, *at))
                },
            )
            .await
    }

    async fn room(&self, id: RoomId) -> StoreResult<Option<Room>> {
        self.db
            .read(&id, |c, id| Box::pin(queries::room(c, *id)))
            .await
    }

    async fn room_heads(&self, rooms: &[RoomId]) -> StoreResult<Vec<(RoomId, Seq)>> {
        let ids: Vec<i64> = rooms.iter().map(|r| r.0).collect();
        self.db
            .read(&ids, |c, ids| Box::pin(queries::room_heads(c, ids)))
            .await
    }

    async fn room_snapshot(&self, id: RoomId) -> StoreResult<Option<RoomSnapshot>> {
        self.db
            .snapshot(&id, |tx, id| Box::pin(queries::room_snapshot(tx, *id)))
            .await
    }

    async fn public_rooms(
        &self,
        limit: usize,
        community: Option<String>,
    ) -> StoreResult<Vec<Room>> {
        if guard::has_nul(&[community.as_deref().unwrap_or_default()]) {
            return Ok(Vec::new());
        }
        self.db
            .read(&(limit, community), |c, (limit, community)| {
                Box::pin(queries::public_rooms(c, *limit, community.as_deref()))
            })
            .await
    }

    async fn members(&self, room: RoomId) -> StoreResult<Vec<MemberProfile>> {
        self.db
            .read(&room, |c, room| Box::pin(queries::members(c, *room)))
            .await
    }

    async fn member_page(
        &self,
        room: RoomId,
        query: MemberQuery,
    ) -> StoreResult<Vec<MemberProfile>> {
        if guard::has_nul(&[query.text.as_deref().unwrap_or_default()]) {
            return Ok(Vec::new());
        }
        self.db
            .read(&(room, query), |c, (room, query)| {
                Box::pin(queries::member_page(c, *room, query))
            })
            .await
    }

    async fn memberships_of(&self, user: UserId) -> StoreResult<Vec<MembershipRecord>> {
        self.db
            .read(&user, |c, user| Box::pin(queries::memberships_of(c, *user)))
            .await
    }

    async fn room_summaries(&self, user: UserId) -> StoreResult<Vec<RoomSummary>> {
        self.db
            .snapshot(&user, |tx, user| {
                Box::pin(queries::room_summaries(tx, *user))
            })
            .await
    }

    async fn append(&self, change: NewEvent) -> StoreResult<Appended> {
        guard::no_nul(&action_texts(&change))?;
        if matches!(change.action, Action::Send { .. }) {
            // With the sends that queue up meanwhile, in one statement.
            return self.sends.send(change).await;
        }

        self.db
            .write(&change, |tx, change| Box::pin(queries::append(tx, change)))
            .await
    }

    async fn events_after(
        &self,
        room: RoomId,
        after: Seq,
        limit: usize,
    ) -> StoreResult<Vec<Event>> {
        self.db
            .read(&(room, after, limit), |c, (room, after, limit)| {
                Box::pin(queries::events_after(c, *room, *after, *limit))
            })
            .await
    }

    async fn history(
        &self,
        room: RoomId,
        before: Option<Seq>,
        limit: usize,
    ) -> StoreResult<HistoryPage> {
        self.db
            .snapshot(&(room, before, limit), |tx, (room, before, limit)| {
                Box::pin(queries::history(tx, *room, *before, *limit))
            })
            .await
    }

    async fn message(&self, room: RoomId, seq: Seq) -> StoreResult<Option<Current>> {
        self.db
            .snapshot(&(room, seq), |tx, (room, seq)| {
                Box::pin(queries::message(tx, *room, *seq))
            })
            .await
    }

    async fn set_read(&self, room: RoomId, user: UserId, seq: Seq) -> StoreResult<Seq> {
        self.db
            .write(&(room, user, seq), |tx, (room, user, seq)| {
                Box::pin(queries::set_read(tx, *room, *user, *seq))
            })
            .await
    }

    async fn set_notify(
        &self,
        room: RoomId,
        user: UserId,
        level: Option<NotifyLevel>,
    ) -> StoreResult<()> {
        self.db
            .write(&(room, user, level), |tx, (room, user, level)| {
                Box::pin(queries::set_notify(tx, *room, *user, *level))
            })
            .await
    }

    async fn search_people(&self, query: PeopleQuery) -> StoreResult<Vec<User>> {
        if guard::has_nul(&[
            &query.text,
            query.username_prefix.as_deref().unwrap_or_default(),
        ]) {
            return Ok(Vec::new());
        }
        self.db
            .read(&query, |c, query| {
                Box::pin(queries::search_people(c, query))
            })
            .await
    }

    async fn import_chat(
        &self,
        chat: ImportChat,
        messages: ImportSource,
    ) -> StoreResult<ImportedChat> {
        let mut fields = vec![
            ("the archive key", chat.key.as_str()),
            ("the room's title", chat.title.as_str()),
            (
                "the community",
                chat.community.as_deref().unwrap_or_default(),
            ),
        ];
        fields.extend(
            chat.members
                .iter()
                .map(|(_, name)| ("a member's name", name.as_str())),
        );
        guard::no_nul(&fields)?;
        // The source is read once, so this write is not run again.
        let mut conn = self.db.connection().await?;
        async {
            let tx = conn.transaction().await?;
            let done = queries::import_chat(&tx, &chat, messages).await?;
            tx.commit().await?;
            Ok::<_, Fail>(done)
        }
        .await
        .map_err(Fail::into_store)
    }

    async fn archive_keys(&self) -> StoreResult<Vec<(String, RoomId)>> {
        self.db
            .read(&(), |c, ()| Box::pin(queries::archive_keys(c)))
            .await
    }

    async fn rooms_after(&self, after: RoomId, limit: usize) -> StoreResult<Vec<Room>> {
        self.db
            .read(&(after, limit), |c, (after, limit)| {
                Box::pin(queries::rooms_after(c, *after, *limit))
            })
            .await
    }
}
