//! The embedded default store: one SQLite file in the data folder, in WAL
//! mode with `synchronous = FULL`, so a committed transaction survives both
//! a killed process and a power cut.
//!
//! Writes go through one writer thread with group commit ([`writer`]);
//! reads use a small pool of read-only connections on tokio's blocking pool,
//! which WAL lets run beside the writer.

mod backup;
mod checkpointer;
pub(crate) mod copy_out;
mod encoding;
mod folder;
mod queries;
mod rows;
mod schema;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags};

pub use self::backup::{BackupSummary, backup};
use self::checkpointer::CheckpointPolicy;
use self::writer::Writer;
use crate::model::{
    Current, EndReason, Event, Millis, NotifyLevel, Room, RoomId, Seq, SessionId, User, UserId,
};
use crate::store::{
    Appended, Credentials, EndSessions, HistoryPage, ImportChat, ImportSource, ImportedChat,
    MemberProfile, MemberQuery, MembershipRecord, NewEvent, NewRoom, NewSession, NewUser,
    PeopleQuery, ProfilePatch, RoomSnapshot, RoomSummary, SessionInfo, SessionRecord, Store,
    StoreError, StoreResult,
};

/// Read connections kept open between reads, and reads run at once.
const IDLE_READERS: usize = 8;
/// Prepared statements kept per connection: more than the store has.
const STATEMENT_CACHE: usize = 64;

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    writer: Writer,
    readers: Arc<Readers>,
    deployment_id: u64,
    cursor_key: [u8; 32],
    /// Held until the store is dropped: no second natter on this folder.
    _lock: folder::FolderLock,
}

struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// Reads running at once; bounded so a burst reuses the open
    /// connections instead of opening (and then closing) new ones.
    running: Arc<tokio::sync::Semaphore>,
}

impl Readers {
    fn take(&self) -> rusqlite::Result<Connection> {
        if let Some(conn) = self.idle.lock().expect("reader pool poisoned").pop() {
            return Ok(conn);
        }
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(conn)
    }

    fn give_back(&self, conn: Connection) {
        let mut idle = self.idle.lock().expect("reader pool poisoned");
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) `natter.db` in `data_dir` and migrates
    /// it, after taking the folder's lock and checking that the file is
    /// natter's and whole (`folder.rs`).
    pub fn open(data_dir: &Path) -> StoreResult<SqliteStore> {
        let lock = folder::lock(data_dir)?;
        let path = folder::database_path(data_dir);
        folder::check_file(&path)?;
        let internal = |e: rusqlite::Error| StoreError::Internal(e.to_string());
        let mut conn = Connection::open(&path).map_err(internal)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(internal)?;
        folder::check_database(&conn, &path)?;
        conn.execute_batch(
            "PRAGMA page_size = 1024;
             PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA foreign_keys = ON;
             -- A deleted message's text is overwritten on its page, not
             -- left in free space (the WAL keeps it until the next
             -- checkpoint overwrites or truncates it).
             PRAGMA secure_delete = ON;",
        )
        .map_err(internal)?;
        let identity = schema::migrate(&mut conn)?;
        folder::mark(&conn).map_err(internal)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let checkpoints = Connection::open(&path).map_err(internal)?;
        let writer = Writer::start(conn, checkpoints, CheckpointPolicy::default())?;
        Ok(SqliteStore {
            writer,
            readers: Arc::new(Readers {
                path,
                idle: Mutex::new(Vec::new()),
                running: Arc::new(tokio::sync::Semaphore::new(IDLE_READERS)),
            }),
            deployment_id: identity.deployment_id,
            cursor_key: identity.cursor_key,
            _lock: lock,
        })
    }

    async fn read<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        // The permit moves into the blocking task, so a cancelled caller
        // does not free its slot while the read is still running.
        let permit = self
            .readers
            .running
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Internal("reader pool closed".into()))?;
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let conn = readers
                .take()
                .map_err(|e| StoreError::Internal(e.to_string()))?;
            let result = work(&conn);
            readers.give_back(conn);
            result
        })
        .await
        .map_err(|e| StoreError::Internal(format!("read task failed: {e}")))?
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn deployment_id(&self) -> u64 {
        self.deployment_id
    }

    fn cursor_key(&self) -> [u8; 32] {
        self.cursor_key
    }

    async fn create_user(&self, user: NewUser) -> StoreResult<User> {
        self.writer
            .write(move |c| queries::create_user(c, &user))
            .await
    }

    async fn credentials(&self, username: &str) -> StoreResult<Option<Credentials>> {
        let username = username.to_owned();
        self.read(move |c| queries::credentials(c, &username)).await
    }

    async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        self.read(move |c| queries::user(c, id)).await
    }

    async fn upsert_site_user(
        &self,
        site: &str,
        external_id: &str,
        display_name: String,
        avatar_url: Option<String>,
        at: Millis,
    ) -> StoreResult<User> {
        let (site, external_id) = (site.to_owned(), external_id.to_owned());
        self.writer
            .write(move |c| {
                queries::upsert_site_user(
                    c,
                    &site,
                    &external_id,
                    &display_name,
                    avatar_url.as_deref(),
                    at,
                )
            })
            .await
    }

    async fn site_user(&self, site: &str, external_id: &str) -> StoreResult<Option<User>> {
        let (site, external_id) = (site.to_owned(), external_id.to_owned());
        self.read(move |c| queries::site_user(c, &site, &external_id))
            .await
    }

    async fn end_user_sessions(
        &self,
        user: UserId,
        which: EndSessions,
        reason: EndReason,
        at: Millis,
    ) -> StoreResult<Vec<SessionId>> {
        self.writer
            .write(move |c| queries::end_user_sessions(c, user, which, reason, at))
            .await
    }

    async fn live_sessions(&self, user: UserId, now: Millis) -> StoreResult<Vec<SessionInfo>> {
        self.read(move |c| queries::live_sessions(c, user, now))
            .await
    }

    async fn set_password(
        &self,
        user: UserId,
        password_hash: String,
        ending: EndSessions,
        at: Millis,
    ) -> StoreResult<Vec<SessionId>> {
        self.writer
            .write(move |c| queries::set_password(c, user, &password_hash, ending, at))
            .await
    }

    async fn set_deactivated(
        &self,
        user: UserId,
        deactivated: bool,
        at: Millis,
    ) -> StoreResult<Vec<SessionId>> {
        self.writer
            .write(move |c| queries::set_deactivated(c, user, deactivated, at))
            .await
    }

    async fn is_deactivated(&self, user: UserId) -> StoreResult<Option<bool>> {
        self.read(move |c| queries::is_deactivated(c, user)).await
    }

    async fn create_invite(
        &self,
        code_hash: [u8; 32],
        at: Millis,
        expires_at: Millis,
    ) -> StoreResult<()> {
        self.writer
            .write(move |c| queries::create_invite(c, &code_hash, at, expires_at))
            .await
    }

    async fn claim_token_id(
        &self,
        site: &str,
        jti: &str,
        expires_at: Millis,
        now: Millis,
    ) -> StoreResult<bool> {
        let (site, jti) = (site.to_owned(), jti.to_owned());
        self.writer
            .write(move |c| queries::claim_token_id(c, &site, &jti, expires_at, now))
            .await
    }

    async fn update_profile(&self, id: UserId, patch: ProfilePatch) -> StoreResult<User> {
        self.writer
            .write(move |c| queries::update_profile(c, id, &patch))
            .await
    }

    async fn create_session(
        &self,
        session: NewSession,
    ) -> StoreResult<(SessionId, Vec<SessionId>)> {
        self.writer
            .write(move |c| queries::create_session(c, &session))
            .await
    }

    async fn session_by_token(&self, token_hash: [u8; 32]) -> StoreResult<Option<SessionRecord>> {
        self.read(move |c| queries::session_by_token(c, &token_hash))
            .await
    }

    async fn ended_sessions(
        &self,
        ids: &[SessionId],
    ) -> StoreResult<Vec<(UserId, SessionId, EndReason)>> {
        let ids = ids.to_vec();
        self.read(move |c| queries::ended_sessions(c, &ids)).await
    }

    async fn end_session(&self, id: SessionId, reason: EndReason, at: Millis) -> StoreResult<()> {
        self.writer
            .write(move |c| queries::end_session(c, id, reason, at))
            .await
    }

    async fn create_room(&self, room: NewRoom) -> StoreResult<(Room, Event)> {
        self.writer
            .write(move |c| queries::create_room(c, &room))
            .await
    }

    async fn open_direct(
        &self,
        opener: UserId,
        opener_name: String,
        peer: UserId,
        at: Millis,
    ) -> StoreResult<(Room, Option<Event>)> {
        self.writer
            .write(move |c| queries::open_direct(c, opener, &opener_name, peer, at))
            .await
    }

    async fn room(&self, id: RoomId) -> StoreResult<Option<Room>> {
        self.read(move |c| queries::room(c, id)).await
    }

    async fn room_heads(&self, rooms: &[RoomId]) -> StoreResult<Vec<(RoomId, Seq)>> {
        let rooms = rooms.to_vec();
        self.read(move |c| queries::room_heads(c, &rooms)).await
    }

    async fn room_snapshot(&self, id: RoomId) -> StoreResult<Option<RoomSnapshot>> {
        self.read(move |c| queries::room_snapshot(c, id)).await
    }

    async fn public_rooms(
        &self,
        limit: usize,
        community: Option<String>,
    ) -> StoreResult<Vec<Room>> {
        self.read(move |c| queries::public_rooms(c, limit, community.as_deref()))
            .await
    }

    async fn members(&self, room: RoomId) -> StoreResult<Vec<MemberProfile>> {
        self.read(move |c| queries::members(c, room)).await
    }

    async fn member_page(
        &self,
        room: RoomId,
        query: MemberQuery,
    ) -> StoreResult<Vec<MemberProfile>> {
        self.read(move |c| queries::member_page(c, room, &query))
            .await
    }

    async fn memberships_of(&self, user: UserId) -> StoreResult<Vec<MembershipRecord>> {
        self.read(move |c| queries::memberships_of(c, user)).await
    }

    async fn room_summaries(&self, user: UserId) -> StoreResult<Vec<RoomSummary>> {
        self.read(move |c| queries::room_summaries(c, user)).await
    }

    async fn events_after(
        &self,
        room: RoomId,
        after: Seq,
        limit: usize,
    ) -> StoreResult<Vec<Event>> {
        self.read(move |c| queries::events_after(c, room, after, limit))
            .await
    }

    async fn append(&self, change: NewEvent) -> StoreResult<Appended> {
        self.writer
            .write(move |c| queries::append(c, &change))
            .await
    }

    async fn history(
        &self,
        room: RoomId,
        before: Option<Seq>,
        limit: usize,
    ) -> StoreResult<HistoryPage> {
        self.read(move |c| queries::history(c, room, before, limit))
            .await
    }

    async fn message(&self, room: RoomId, seq: Seq) -> StoreResult<Option<Current>> {
        self.read(move |c| queries::message(c, room, seq)).await
    }

    async fn set_read(&self, room: RoomId, user: UserId, seq: Seq) -> StoreResult<Seq> {
        self.writer
            .write(move |c| queries::set_read(c, room, user, seq))
            .await
    }

    async fn set_notify(
        &self,
        room: RoomId,
        user: UserId,
        level: Option<NotifyLevel>,
    ) -> StoreResult<()> {
        self.writer
            .write(move |c| queries::set_notify(c, room, user, level))
            .await
    }

    async fn import_chat(
        &self,
        chat: ImportChat,
        messages: ImportSource,
    ) -> StoreResult<ImportedChat> {
        self.writer
            .write(move |c| queries::import_chat(c, &chat, messages))
            .await
    }

    async fn archive_keys(&self) -> StoreResult<Vec<(String, RoomId)>> {
        self.read(queries::archive_keys).await
    }

    async fn rooms_after(&self, after: RoomId, limit: usize) -> StoreResult<Vec<Room>> {
        self.read(move |c| queries::rooms_after(c, after, limit))
            .await
    }

    async fn search_people(&self, query: PeopleQuery) -> StoreResult<Vec<User>> {
        self.read(move |c| queries::search_people(c, &query)).await
    }
}
