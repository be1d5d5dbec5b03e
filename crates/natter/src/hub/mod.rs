//! The event hub: per-room feeds and per-user feeds in memory, the waiting
//! polls, cursors and presence.
//!
//! Waiting costs memory, not threads: a poll is a future parked on its
//! user's `watch` channel. A committed event reaches [`Hub::apply`] through
//! the bus, lands in its room's feed, and wakes the feeds of the room's
//! members. Waiting polls never touch the store; the store is read only to
//! load a feed the first time, to catch up past the cache, to fill a
//! sequence gap left by a lost bus message, and (with a bus that can lose
//! messages) for the periodic head checks of `heads.rs`.

mod cluster;
mod cursor;
mod eviction;
mod heads;
mod poll;
mod presence;
mod room_feed;
mod typing;
mod user_feed;
mod watching;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use tokio::sync::watch;

pub(crate) use self::cursor::{Cursor, CursorError, CursorKey, CursorMac, Position};
pub(crate) use self::poll::PollAnswer;
pub(crate) use self::room_feed::RoomFeed;
pub use self::typing::TYPING_TTL;
pub(crate) use self::user_feed::UserFeed;
pub(crate) use self::watching::MAX_WATCHED;
use crate::error::{ChatError, ChatResult};
use crate::metrics::Metrics;
use crate::model::{EndReason, Ephemeral, Event, RoomId, SessionId, UserId};
use crate::store::Store;

/// Tunables of the hub, taken from the server configuration.
#[derive(Clone, Debug)]
pub struct HubConfig {
    /// Recent events kept in memory per room; at least 1, since fresh
    /// cursors take the stamp of the head event from the cache.
    pub room_cache_events: usize,
    /// Ephemeral items kept per user before older ones are dropped.
    pub ephemeral_cap: usize,
    /// How long a user stays online after their last poll ended.
    pub presence_grace: Duration,
    /// Open polls allowed per user.
    pub max_polls_per_user: usize,
    /// How long an out-of-order event waits for the gap before it to close
    /// by itself before the gap is read from the store.
    pub gap_fill_delay: Duration,
    /// Events returned in one poll answer at most (a client may ask for
    /// fewer).
    pub max_batch_events: usize,
    /// About how many bytes of events one poll answer holds at most; an
    /// answer always holds at least one event, so a client catching up
    /// makes progress on any link.
    pub max_batch_bytes: usize,
    /// Presence news is gathered for this long before waiting polls are
    /// woken for it.
    pub presence_batch: Duration,
    /// Rooms with more members are big: presence and typing in them reach
    /// only the members looking at them (`watching.rs`).
    pub big_room_members: usize,
    /// How often a node on a bus that can lose messages compares its
    /// rooms' heads with the store's (`heads.rs`).
    pub head_check_interval: Duration,
    /// Feeds unused this long leave memory (`eviction.rs`); `None` keeps
    /// them.
    pub evict_idle_after: Option<Duration>,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            room_cache_events: 256,
            ephemeral_cap: 64,
            presence_grace: Duration::from_secs(45),
            max_polls_per_user: 8,
            gap_fill_delay: Duration::from_millis(50),
            max_batch_events: 500,
            max_batch_bytes: 256 * 1024,
            presence_batch: Duration::from_millis(250),
            big_room_members: 200,
            head_check_interval: Duration::from_secs(1),
            evict_idle_after: Some(Duration::from_secs(600)),
        }
    }
}

/// The node's event hub. Built once and shared; see the module docs.
pub(crate) struct Hub {
    store: Arc<dyn Store>,
    config: HubConfig,
    // Read-mostly maps: every poll and every fan-out looks feeds up, only
    // a feed's first use writes.
    rooms: RwLock<HashMap<RoomId, Arc<RoomFeed>>>,
    users: RwLock<HashMap<UserId, Arc<UserFeed>>>,
    shutdown: watch::Sender<bool>,
    presence_wakes: Mutex<presence::PresenceWakes>,
    metrics: Arc<Metrics>,
    /// Names this process in the cursors it issues (see `cursor`).
    instance: u64,
    /// The store's cursor key, keyed for HMAC once (it never changes).
    cursor_mac: CursorMac,
    /// The other nodes' presence, when this node is one of a cluster.
    cluster: std::sync::OnceLock<cluster::ClusterPresence>,
    /// Rooms the last head check found behind the store, with the
    /// store's head then (`heads.rs`).
    heads_behind: Mutex<HashMap<RoomId, crate::model::Seq>>,
    /// Held while this node sets a user's presence through its own polls
    /// and says so on the bus, and while a heartbeat lists them, so a
    /// heartbeat never carries a list older than a flip sent before it.
    presence_told: Mutex<()>,
    /// The eviction clock: rounds since start (`eviction.rs`).
    eviction_round: std::sync::atomic::AtomicU64,
    me: Weak<Hub>,
}

impl Hub {
    /// Creates a hub reading from `store` and counting in `metrics`.
    pub fn new(store: Arc<dyn Store>, config: HubConfig, metrics: Arc<Metrics>) -> Arc<Hub> {
        Arc::new_cyclic(|me| Hub {
            metrics,
            cursor_mac: CursorMac::new(&store.cursor_key()),
            store,
            config,
            rooms: RwLock::new(HashMap::new()),
            users: RwLock::new(HashMap::new()),
            shutdown: watch::Sender::new(false),
            presence_wakes: Mutex::default(),
            instance: rand::random(),
            cluster: std::sync::OnceLock::new(),
            heads_behind: Mutex::new(HashMap::new()),
            eviction_round: std::sync::atomic::AtomicU64::new(0),
            presence_told: Mutex::new(()),
            me: me.clone(),
        })
    }

    /// Runs `work` (`what`, for the log) every `period`, the first time
    /// one period from now, until the hub shuts down or goes: the head
    /// checks, the cluster's heartbeat, the eviction rounds. A round that
    /// panics is logged and the next runs as planned. A hub made outside
    /// a runtime (a unit test) runs none.
    fn every<F, Fut>(&self, what: &'static str, period: Duration, work: F)
    where
        F: Fn(Arc<Hub>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let hub = self.me.clone();
        let mut shutdown = self.shutdown.subscribe();
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = shutdown.changed() => return,
                }
                let Some(hub) = hub.upgrade() else { return };
                crate::panics::contained_task(what, work(hub)).await;
            }
        });
    }

    /// The room's feed, loading it from the store on first use.
    pub async fn room(&self, id: RoomId) -> ChatResult<Arc<RoomFeed>> {
        let feed = get_or_insert(&self.rooms, id, || RoomFeed::new(id));
        feed.used
            .store(self.round(), std::sync::atomic::Ordering::Relaxed);
        let loaded = feed
            .loaded
            .get_or_try_init(|| async {
                let snapshot = self
                    .store
                    .room_snapshot(id)
                    .await?
                    .ok_or(ChatError::RoomNotFound)?;
                let mut state = feed.lock();
                state.load(
                    snapshot.room.head,
                    snapshot.room.kind == crate::model::RoomKind::Direct,
                    snapshot.head_event,
                    snapshot.members,
                    self.config.room_cache_events,
                );
                let online = self.online_among(state.members.keys().copied());
                state.online = online;
                feed.loaded_at
                    .store(crate::model::now_ms(), std::sync::atomic::Ordering::Relaxed);
                Ok::<_, ChatError>(())
            })
            .await;
        if let Err(e) = loaded {
            // Forget a feed for a room that does not exist, so probing
            // random ids cannot fill memory.
            let mut rooms = self.rooms.write().expect("rooms poisoned");
            if rooms.get(&id).is_some_and(|f| Arc::ptr_eq(f, &feed)) {
                rooms.remove(&id);
            }
            return Err(e);
        }
        Ok(feed)
    }

    /// The user's feed, loading their memberships on first use.
    pub async fn user(&self, id: UserId) -> ChatResult<Arc<UserFeed>> {
        let feed = get_or_insert(&self.users, id, || UserFeed::new(id));
        feed.used
            .store(self.round(), std::sync::atomic::Ordering::Relaxed);
        feed.loaded
            .get_or_try_init(|| async {
                let records = self.store.memberships_of(id).await?;
                feed.lock().load(records);
                // A new feed of someone online on another node starts
                // online (cluster.rs): a later "offline" then flips it.
                if self.online_elsewhere(id) {
                    let _in_order = feed.presence_order();
                    feed.set_online(true);
                }
                Ok::<_, ChatError>(())
            })
            .await?;
        Ok(feed)
    }

    /// The room's feed if this node holds it, never loading it.
    fn loaded_room(&self, id: RoomId) -> Option<Arc<RoomFeed>> {
        self.rooms.read().expect("rooms poisoned").get(&id).cloned()
    }

    fn loaded_users(&self, ids: impl IntoIterator<Item = UserId>) -> Vec<Arc<UserFeed>> {
        let users = self.users.read().expect("users poisoned");
        ids.into_iter()
            .filter_map(|id| users.get(&id).cloned())
            .collect()
    }

    /// Takes a committed room event from the bus: updates memberships,
    /// appends it to its room's feed and wakes the members' polls.
    pub fn apply(&self, event: &Arc<Event>) {
        // Users whose membership this event changes are woken after the
        // room feed holds the event: woken earlier, a leaver's poll could
        // look, find the room's head not yet moved, and sleep through it.
        let mut changed = Vec::new();
        for (user, change) in event.body.membership_changes() {
            for feed in self.loaded_users([user]) {
                feed.lock().apply_membership(event.room, event.seq, change);
                changed.push(feed);
            }
        }
        self.apply_to_room(event);
        for feed in changed {
            feed.wake();
        }
    }

    fn apply_to_room(&self, event: &Arc<Event>) {
        let Some(room) = self.loaded_room(event.room) else {
            // Nobody on this node has looked at the room; whoever does
            // later reads it from the store.
            return;
        };
        let mut joined_online = Vec::new();
        let mut left_online = false;
        let (audience, watchers, fill_gap) = {
            let mut state = room.lock();
            let applied = state.offer(event.clone(), self.config.room_cache_events);
            for e in &applied {
                if matches!(e.body, crate::model::EventBody::Message { .. }) {
                    state.typers.forget(e.sender);
                }
                let (joined, left) = self.track_online(&mut state, e);
                joined_online.extend(joined);
                left_online |= left;
            }
            // Joins and leaves alone are quiet news in a big room: they
            // wake only its watchers (watching.rs); the members who joined
            // or left were woken by `apply`.
            let quiet = self.is_big(state.members.len())
                && applied.iter().all(|e| e.body.joined_or_left().is_some());
            // Its watchers hear them within a presence batch, however
            // many come and go: 50 joins a second would otherwise answer
            // each watcher's poll 50 times a second.
            let (mut audience, watchers): (Vec<UserId>, Vec<UserId>) = if applied.is_empty() {
                (Vec::new(), Vec::new())
            } else if quiet {
                (Vec::new(), state.member_watchers())
            } else {
                (state.members.keys().copied().collect(), Vec::new())
            };
            // Whoever joined or left in an event this one released from
            // behind a gap: `apply` woke only the users of this event,
            // and a leaver is no member any more.
            audience.extend(applied.iter().filter_map(|e| e.body.joined_or_left()));
            let fill_gap = state.loaded && !state.gap_fill_scheduled && state.gap().is_some();
            if fill_gap {
                state.gap_fill_scheduled = true;
            }
            (audience, watchers, fill_gap)
        };
        for feed in self.loaded_users(audience) {
            if feed.has_waiters() {
                feed.wake();
            }
        }
        if !watchers.is_empty() {
            self.wake_batched(self.loaded_users(watchers), Vec::new());
        }
        self.announce_online_joiners(&room, joined_online);
        if left_online {
            self.announce_count_change(&room);
        }
        if fill_gap {
            self.spawn_gap_fill(room);
        }
    }

    /// Reads a sequence gap from the store if it has not closed by itself
    /// after a short delay (the bus lost or delayed a message).
    fn spawn_gap_fill(&self, room: Arc<RoomFeed>) {
        let Some(hub) = self.me.upgrade() else { return };
        tokio::spawn(async move {
            tokio::time::sleep(hub.config.gap_fill_delay).await;
            loop {
                let gap = {
                    let mut state = room.lock();
                    let gap = state.gap();
                    if gap.is_none() {
                        state.gap_fill_scheduled = false;
                    }
                    gap
                };
                let Some((head, next)) = gap else { return };
                tracing::debug!(room.id = %room.id, seq.from = head + 1, seq.to = next - 1, "filling a sequence gap from the store");
                match hub
                    .store
                    .events_after(room.id, head, (next - head - 1) as usize)
                    .await
                {
                    Ok(events) if events.is_empty() => {
                        // The store does not have what the pending events
                        // say was committed; never spin on it.
                        tracing::warn!(room.id = %room.id, "a sequence gap is not in the store yet; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    Ok(events) => {
                        for event in events {
                            hub.apply(&Arc::new(event));
                        }
                    }
                    Err(e) => {
                        tracing::warn!(room.id = %room.id, error = %e, "gap fill failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
    }

    /// Ends the open polls of these sessions with `reason`.
    pub fn end_sessions(&self, user: UserId, sessions: &[SessionId], reason: EndReason) {
        for feed in self.loaded_users([user]) {
            if feed.lock().end_sessions(sessions, reason) {
                feed.wake();
            }
        }
    }

    /// Pushes an ephemeral item to one user's sessions (their read
    /// markers, notification choices, a peer's read receipt), on every
    /// node of a cluster.
    pub fn push_ephemeral(&self, user: UserId, item: Ephemeral) {
        self.tell_peers_item(user, &item);
        self.push_ephemeral_here(user, item);
    }

    /// [`Hub::push_ephemeral`] on this node only.
    pub(super) fn push_ephemeral_here(&self, user: UserId, item: Ephemeral) {
        let item = Arc::new(item);
        for feed in self.loaded_users([user]) {
            feed.lock()
                .push_ephemeral(item.clone(), self.config.ephemeral_cap);
            feed.wake();
        }
    }

    /// How many event polls the user holds open on this node: what a page
    /// shows as "connected from N places", and how tests check that the
    /// tabs of one browser share a single poll.
    pub fn open_polls(&self, user: UserId) -> usize {
        self.loaded_users([user])
            .first()
            .map_or(0, |f| f.lock().open_polls())
    }

    /// Whether `a` and `b` are both active members of some room.
    pub async fn share_a_room(&self, a: UserId, b: UserId) -> ChatResult<bool> {
        let rooms: Vec<RoomId> = {
            let feed = self.user(a).await?;
            let state = feed.lock();
            state
                .rooms
                .values()
                .filter(|m| m.active)
                .map(|m| m.room)
                .collect()
        };
        for room in rooms {
            if self.room(room).await?.role_of(b).is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether the user has a poll open on this node or had one within the
    /// presence grace period.
    pub fn is_online(&self, user: UserId) -> bool {
        match self.loaded_users([user]).first() {
            Some(feed) => feed.is_online(),
            // No feed here: online if another node of a cluster has them.
            None => self.online_elsewhere(user),
        }
    }

    /// Answers every waiting poll with an empty batch (graceful shutdown);
    /// polls that start afterwards answer at once.
    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// The most events one poll answer holds.
    pub fn max_batch_events(&self) -> usize {
        self.config.max_batch_events
    }

    /// The deployment id that cursors must carry.
    pub fn deployment_id(&self) -> u64 {
        self.store.deployment_id()
    }
}

/// The map's entry for `key`, created with `make` if missing; takes the
/// write lock only when it has to create.
fn get_or_insert<K: std::hash::Hash + Eq + Copy, V>(
    map: &RwLock<HashMap<K, Arc<V>>>,
    key: K,
    make: impl FnOnce() -> V,
) -> Arc<V> {
    if let Some(found) = map.read().expect("feed map poisoned").get(&key) {
        return found.clone();
    }
    map.write()
        .expect("feed map poisoned")
        .entry(key)
        .or_insert_with(|| Arc::new(make()))
        .clone()
}
