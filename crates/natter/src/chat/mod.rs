//! The chat domain: who may do what, and in which order things happen.
//!
//! Every operation validates its input ([`crate::text`]), checks that the
//! caller may act (members only), commits through the [`Store`], and only
//! then publishes to the [`Bus`], so nothing is announced that is not
//! durable. This module knows nothing of HTTP.

mod accounts;
mod admin;
mod attention;
mod communities;
mod lifecycle;
mod limits;
mod login_delay;
mod messages;
mod passwords;
mod people;
mod rooms;
mod sso;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use self::accounts::{Caller, Login};
pub use self::admin::{MemberRef, RosterChange};
pub use self::communities::Community;
pub use self::lifecycle::{Invite, SessionListing};
pub use self::limits::{Limit, RateLimits, RateSpec};
pub use self::messages::{Changed, Sent};
pub use self::people::MAX_PEOPLE;
pub use self::rooms::{MAX_MEMBERS_PAGE, MemberList, MemberPage, RoomListing};
pub use self::sso::Site;
use crate::bus::{Bus, BusMessage, BusSink};
/// What the service's calls answer when they fail, for its callers to
/// match on.
pub use crate::error::{ChatError, ChatResult};
use crate::hub::{Hub, HubConfig, RoomFeed};
use crate::metrics::Metrics;
use crate::model::{Current, EndReason, Event, Role, RoomId, SessionId, User, UserId, Visibility};
/// Where a member page starts: the store's, named here so the edge can
/// read and write it without naming the store.
pub use crate::store::MemberPlace;
use crate::store::{Action, NewEvent, Outcome, Store, StoreError};

/// What [`Chat::append`] wrote.
struct Written {
    /// The event appended; for a send retried, the one stored the first time.
    event: Option<Arc<Event>>,
    /// Whether an event was appended.
    new: bool,
    /// For a change to a message, the message as it stands after it.
    message: Option<Current>,
}

/// The bus message announcing a committed room event.
fn room_event(event: Event) -> BusMessage {
    BusMessage::RoomEvent(Arc::new(event))
}

/// Rules of the chat domain that operators may tune.
#[derive(Clone, Debug)]
pub struct ChatConfig {
    /// A new login ends the user's other sessions (the paper's behaviour).
    pub single_session: bool,
    /// Longest message, in characters.
    pub max_message_chars: usize,
    /// How long after sending a sender may edit; `None`: always.
    pub edit_window: Option<Duration>,
    /// How long a session token stays valid.
    pub session_ttl: Duration,
    /// Poll timeout when the client names none.
    pub default_poll_timeout: Duration,
    /// Longest poll timeout a client may ask for.
    pub max_poll_timeout: Duration,
    /// Host sites whose signed tokens sign their users in.
    pub sites: Vec<Arc<Site>>,
    /// Keys of the server-to-server admin API.
    pub admin_keys: Secrets,
    /// How often users and sources may do costly things.
    pub limits: RateLimits,
    /// Who may create an account.
    pub registration: RegistrationMode,
    /// Every site's users and local users form one community
    /// (`communities.rs`); by default each is kept apart.
    pub shared_community: bool,
    /// Direct conversations show how far the other person has read.
    pub read_receipts: bool,
    /// People may be found by name (`people.rs`).
    pub people_search: bool,
    /// In a cluster, how often the node asks the store which of the
    /// sessions it has cached have ended: a logout elsewhere whose bus
    /// message never came here is refused within about this long.
    pub session_recheck: Duration,
}

/// Who may create an account.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationMode {
    /// Anyone may register (the default).
    #[default]
    Open,
    /// Registering takes an invite code from the admin API.
    Invite,
    /// Host sites' users only: no local registration; site tokens create
    /// their users.
    Sites,
    /// Nobody new: no registration, and site tokens sign in only users
    /// natter already knows.
    Closed,
}

impl std::str::FromStr for RegistrationMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "open" => Ok(RegistrationMode::Open),
            "invite" => Ok(RegistrationMode::Invite),
            "sites" => Ok(RegistrationMode::Sites),
            "closed" => Ok(RegistrationMode::Closed),
            _ => Err(format!("{s:?} is not open, invite, sites or closed")),
        }
    }
}

/// The bus message that ends `sessions`' open polls, if there are any.
fn sessions_ended(user: UserId, sessions: Vec<SessionId>, reason: EndReason) -> Vec<BusMessage> {
    if sessions.is_empty() {
        return Vec::new();
    }
    vec![BusMessage::SessionsEnded {
        user,
        sessions,
        reason,
    }]
}

/// A secret string (a key, a token) that never appears in logs or debug
/// output, however the value holding it is printed.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl Secret {
    /// The secret itself, for the one place that compares or uses it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[hidden]")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Secret, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret(s.to_owned())
    }
}

/// Secret strings that never appear in logs or debug output.
#[derive(Clone, Default)]
pub struct Secrets(pub Vec<String>);

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{} hidden]", self.0.len())
    }
}

impl Default for ChatConfig {
    fn default() -> Self {
        ChatConfig {
            single_session: false,
            max_message_chars: 4000,
            edit_window: None,
            session_ttl: Duration::from_secs(30 * 24 * 3600),
            default_poll_timeout: Duration::from_secs(30),
            max_poll_timeout: Duration::from_secs(60),
            sites: Vec::new(),
            admin_keys: Secrets::default(),
            limits: RateLimits::default(),
            registration: RegistrationMode::Open,
            shared_community: false,
            read_receipts: true,
            people_search: true,
            session_recheck: Duration::from_secs(5),
        }
    }
}

/// The node's chat service; built once at start-up and shared by handlers.
pub struct Chat {
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    hub: Arc<Hub>,
    config: ChatConfig,
    sessions: accounts::SessionCache,
    limits: limits::Limiters,
    metrics: Arc<Metrics>,
    /// The last write found the disk full (logged once, not per write).
    storage_full: Arc<AtomicBool>,
    /// Display names of senders, so a send needs no extra read, with when
    /// each was read.
    names: Mutex<HashMap<UserId, (String, std::time::Instant)>>,
    /// In a cluster, a name is read from the store again after this long:
    /// a rename on another node whose bus message was lost is taken up.
    names_max_age: Option<std::time::Duration>,
    passwords: passwords::PasswordPool,
    /// Checked against when a login names no account, so the answer takes
    /// as long as a wrong password and reveals nothing.
    decoy_hash: tokio::sync::OnceCell<String>,
}

impl Chat {
    /// Wires the service to its store and bus and subscribes its hub.
    pub fn new(
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
        hub_config: HubConfig,
        config: ChatConfig,
    ) -> Arc<Chat> {
        let metrics = Arc::new(Metrics::new());
        let head_checks = hub_config.head_check_interval;
        let hub = Hub::new(store.clone(), hub_config, metrics.clone());
        hub.spawn_eviction();
        if bus.lossy() {
            hub.spawn_head_checks(head_checks);
            hub.join_cluster(bus.clone());
        }
        let chat = Arc::new(Chat {
            store,
            bus: bus.clone(),
            hub,
            limits: limits::Limiters::new(&config.limits, metrics.clone(), bus.shared_rates()),
            metrics,
            storage_full: Arc::default(),
            config,
            sessions: accounts::SessionCache::default(),
            names: Mutex::new(HashMap::new()),
            names_max_age: bus.lossy().then_some(NAMES_MAX_AGE_IN_A_CLUSTER),
            passwords: passwords::PasswordPool::start(),
            decoy_hash: tokio::sync::OnceCell::new(),
        });
        let sink: Arc<dyn BusSink> = chat.clone();
        bus.subscribe(Arc::downgrade(&sink));
        if bus.lossy() {
            chat.spawn_session_rechecks();
        }
        chat
    }

    /// The hub, for presence queries and shutdown.
    pub(crate) fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// How many user and room feeds this node holds: what its memory
    /// grows with, and what eviction keeps to those with interest here.
    pub fn feeds_held(&self) -> (usize, usize) {
        self.hub.feeds_held()
    }

    /// The node's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The configured rules.
    pub fn config(&self) -> &ChatConfig {
        &self.config
    }

    /// The room's feed and the caller's role in it. A private room the
    /// caller is not in is reported as not found, so its existence leaks
    /// nothing; a public one as "not a member".
    async fn membership(&self, caller: &Caller, room: RoomId) -> ChatResult<(Arc<RoomFeed>, Role)> {
        let feed = self.hub.room(room).await?;
        if let Some(role) = feed.role_of(caller.user) {
            return Ok((feed, role));
        }
        Err(self.not_member_error(caller, room).await)
    }

    /// "Not a member" for a room the caller could join, "not found" for
    /// one they could not (private, or another community's).
    async fn not_member_error(&self, caller: &Caller, room: RoomId) -> ChatError {
        let found = match self.store.room(room).await {
            Ok(found) => found,
            Err(e) => return e.into(),
        };
        match found {
            Some(r) if r.visibility == Visibility::Public => {
                match self.may_find(caller, &r).await {
                    Ok(true) => ChatError::NotAMember,
                    Ok(false) => ChatError::RoomNotFound,
                    Err(e) => e,
                }
            }
            _ => ChatError::RoomNotFound,
        }
    }

    /// Whether the caller's community reaches the room's.
    async fn may_find(&self, caller: &Caller, room: &crate::model::Room) -> ChatResult<bool> {
        let theirs = self.community_of(caller.user).await?;
        Ok(self.reaches(&theirs, &Community::of_room(room)))
    }

    /// The user's display name, cached.
    async fn display_name(&self, user: UserId) -> ChatResult<String> {
        if let Some((name, read)) = self.names.lock().expect("names poisoned").get(&user)
            && self.names_max_age.is_none_or(|age| read.elapsed() <= age)
        {
            return Ok(name.clone());
        }
        let asked = std::time::Instant::now();
        let user = self.user(user).await?;
        // A rename heard from another node while this read was on its
        // way is newer than what it read.
        let mut names = self.names.lock().expect("names poisoned");
        let newer = names.get(&user.id).is_some_and(|(_, at)| *at > asked);
        if !newer {
            names.insert(
                user.id,
                (user.display_name.clone(), std::time::Instant::now()),
            );
        }
        Ok(user.display_name)
    }

    /// Keeps `user`'s display name, just written (a rename, a site
    /// sign-in), for the next send here, and tells the other nodes' caches.
    /// Reads never spread a name: one read just before a rename elsewhere
    /// would spread the old one.
    fn remember_name(&self, user: &User) {
        self.names.lock().expect("names poisoned").insert(
            user.id,
            (user.display_name.clone(), std::time::Instant::now()),
        );
        self.tell_name(user);
    }

    /// Tells every node's cache `user`'s display name.
    fn tell_name(&self, user: &User) {
        self.bus.publish(BusMessage::ProfileChanged {
            user: user.id,
            display_name: user.display_name.clone(),
        });
    }

    /// A user's public profile.
    pub async fn user(&self, id: UserId) -> ChatResult<User> {
        self.store.user(id).await?.ok_or(ChatError::UserNotFound)
    }

    /// A change to a room through the store's one write path, made by
    /// `actor` now, and announced when it appended an event.
    async fn append(&self, room: RoomId, actor: UserId, action: Action) -> ChatResult<Written> {
        let change = NewEvent {
            room,
            actor,
            actor_name: self.display_name(actor).await?,
            at: crate::model::now_ms(),
            action,
        };
        let store = self.store.clone();
        self.commit(async move {
            let appended = store.append(change).await?;
            let message = appended.message;
            Ok(match appended.outcome {
                Outcome::Appended(event) => {
                    let event = Arc::new(event);
                    let announce = vec![BusMessage::RoomEvent(event.clone())];
                    let written = Written {
                        event: Some(event),
                        new: true,
                        message,
                    };
                    (written, announce)
                }
                Outcome::Unchanged(event) => {
                    let event = event.map(Arc::new);
                    // A replay of an earlier send is announced again: that
                    // send may have committed while its answer was lost (a
                    // connection cut during COMMIT), unannounced. Hubs
                    // drop an event they have by its seq.
                    let announce = event
                        .iter()
                        .map(|e| BusMessage::RoomEvent(e.clone()))
                        .collect();
                    let written = Written {
                        event,
                        new: false,
                        message,
                    };
                    (written, announce)
                }
            })
        })
        .await
    }

    /// Runs a store write, then publishes what it produced, on a task of
    /// its own: a request cancelled after the commit (its client went away)
    /// must never leave a committed change unannounced, or the members'
    /// feeds would miss it.
    async fn commit<T: Send + 'static>(
        &self,
        write: impl Future<Output = Result<(T, Vec<BusMessage>), StoreError>> + Send + 'static,
    ) -> ChatResult<T> {
        let (bus, metrics) = (self.bus.clone(), self.metrics.clone());
        let full = self.storage_full.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let written = write.await;
            // Said once when the disk fills and once when it has room
            // again, not once per refused write.
            match &written {
                Err(StoreError::Full) if !full.swap(true, Ordering::Relaxed) => {
                    tracing::error!(
                        "the disk is full: writes are refused with 507 until there is room"
                    );
                }
                Ok(_) if full.swap(false, Ordering::Relaxed) => {
                    tracing::warn!("the disk has room again: writes succeed");
                }
                _ => {}
            }
            let (value, announcements) = written?;
            metrics
                .store_commit_latency
                .observe(started.elapsed().as_secs_f64());
            for message in announcements {
                bus.publish(message);
            }
            Ok(value)
        })
        .await
        .map_err(|e| ChatError::Internal(format!("write task failed: {e}")))?
    }
}

impl BusSink for Chat {
    fn deliver(&self, message: &BusMessage) {
        match message {
            BusMessage::RoomEvent(event) => self.hub.apply(event),
            BusMessage::SessionsEnded {
                user,
                sessions,
                reason,
            } => {
                self.sessions.forget(sessions);
                self.hub.end_sessions(*user, sessions, *reason);
            }
            BusMessage::Presence { node, user, online } => {
                self.hub.peer_presence(*node, *user, *online);
            }
            BusMessage::NodeAlive {
                node,
                online,
                polls,
            } => {
                self.hub.peer_alive(*node, online.clone(), polls);
            }
            BusMessage::Typing { node, item } => {
                self.hub.peer_typing_from(*node, item.clone());
            }
            BusMessage::UserItem { node, user, item } => {
                self.hub.peer_user_item(*node, *user, item.clone());
            }
            BusMessage::Hearing => self.hub.hearing_the_others(),
            BusMessage::ProfileChanged { user, display_name } => {
                self.names
                    .lock()
                    .expect("names poisoned")
                    .insert(*user, (display_name.clone(), std::time::Instant::now()));
            }
        }
    }
}

/// How long a node of a cluster trusts a cached display name before it
/// reads it again (see `Chat::display_name`).
const NAMES_MAX_AGE_IN_A_CLUSTER: std::time::Duration = std::time::Duration::from_secs(10);

/// A 400 for input the rules refuse, with its stable code.
fn invalid(code: &'static str, message: String) -> ChatError {
    crate::text::Invalid { code, message }.into()
}
