//! Feeds nobody uses leave memory: a node that has seen a million users
//! and rooms keeps only those with interest here now.
//!
//! Every request that needs a feed looks it up through `Hub::room` or
//! `Hub::user`, which stamp it with the current round, and every poll
//! stamps the feeds of its user's rooms (so a room whose members poll
//! stays, and a message to it wakes them); every
//! `evict_idle_after / 10` the round moves on, and a feed not stamped for
//! ten rounds goes if nothing else holds it (no poll, watch, timer or
//! task: the map's is its only reference), for a user if no poll is
//! open and they are not online, and for a room if no member's poll is
//! parked here. The next request loads it again from the
//! store. A user's ephemeral stream goes with their feed: a client idle
//! that long gets `ephemeral_gap` on its next poll and reads its lists
//! again, as after a restart.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::Hub;
use crate::model::UserId;

/// Rounds a feed may go unused before it is evicted.
const IDLE_ROUNDS: u64 = 10;

impl Hub {
    /// Starts the rounds, until the hub shuts down or goes.
    pub fn spawn_eviction(&self) {
        let Some(idle) = self.config.evict_idle_after else {
            return;
        };
        let round = (idle / IDLE_ROUNDS as u32).max(Duration::from_millis(10));
        self.every(
            "an eviction round",
            round,
            |hub| async move { hub.evict_idle() },
        );
    }

    /// The round to stamp a feed with when a request uses it.
    pub(super) fn round(&self) -> u64 {
        self.eviction_round.load(Ordering::Relaxed)
    }

    /// One round: moves the clock on and lets idle feeds go.
    fn evict_idle(&self) {
        let now = self.eviction_round.fetch_add(1, Ordering::Relaxed) + 1;
        let idle = |used: u64| now.saturating_sub(used) > IDLE_ROUNDS;
        let users = evict(&self.users, |feed| {
            idle(feed.used.load(Ordering::Relaxed))
                && !feed.is_online()
                && !feed.is_local_online()
                && !feed.has_waiters()
                && feed.lock().open_polls() == 0
        });
        // A room with a member's poll parked here stays however long it
        // was quiet: a message to it must wake that poll.
        let waiting: HashSet<UserId> = self
            .users
            .read()
            .expect("users poisoned")
            .values()
            .filter(|f| f.has_waiters())
            .map(|f| f.id)
            .collect();
        let rooms = evict(&self.rooms, |feed| {
            idle(feed.used.load(Ordering::Relaxed))
                && !feed.lock().members.keys().any(|m| waiting.contains(m))
        });
        if users + rooms > 0 {
            tracing::debug!(users, rooms, "idle feeds evicted");
        }
        let (users, rooms) = self.feeds_held();
        self.metrics.user_feeds.set(users as i64);
        self.metrics.room_feeds.set(rooms as i64);
    }

    /// How many user and room feeds this node holds: what memory grows
    /// with.
    pub fn feeds_held(&self) -> (usize, usize) {
        (
            self.users.read().expect("users poisoned").len(),
            self.rooms.read().expect("rooms poisoned").len(),
        )
    }
}

/// Removes the entries of `map` that only the map holds and that `idle`
/// says may go; answers how many went. Under the map's write lock nobody
/// can take a new reference meanwhile.
fn evict<K: Copy + Eq + std::hash::Hash, V>(
    map: &std::sync::RwLock<HashMap<K, Arc<V>>>,
    idle: impl Fn(&V) -> bool,
) -> usize {
    let mut map = map.write().expect("feed map poisoned");
    let before = map.len();
    map.retain(|_, feed| Arc::strong_count(feed) > 1 || !idle(feed));
    before - map.len()
}
