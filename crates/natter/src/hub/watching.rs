//! Which rooms clients are looking at. A poll may name the rooms its page
//! has open (`watch`); while it waits, each of those rooms counts its user
//! as a watcher.
//!
//! In a big room (more members than `big_room_members`), presence and
//! typing reach only its watchers (and for a few seconds after their
//! poll, so the moment between an answer and the next poll misses
//! nothing), and they get the room's online count
//! as it changes (`room_online`, coalesced like presence wake-ups): a
//! member coming online then wakes the few people looking at the room, not
//! every member of every big room they are in. Small rooms and direct
//! conversations keep presence for everyone in them.
//!
//! Joins and leaves are room events like any other, in every member's
//! log, but in a big room they are quiet news: they wake only its
//! watchers (batched like presence wake-ups) and the member who joined
//! or left, and a poll that does not watch the room holds them until
//! something else is new or it times out. Fifty joins a second in a room of 10,000 then cost its members
//! nothing until the next message, which brings them along, in order.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::room_feed::RoomState;
use super::{Hub, RoomFeed, UserFeed};
use crate::error::ChatResult;
use crate::model::{Event, RoomId, UserId};

/// The most rooms one poll may watch: the rooms a few tabs have open.
pub const MAX_WATCHED: usize = 8;

/// How long a member still counts as watching after their last poll
/// ended: between an answer and the next poll nothing is missed.
const LINGER: Duration = Duration::from_secs(5);

/// One watcher of a room.
struct Watcher {
    polls: u32,
    /// When the last of their polls ended.
    ended: Option<Instant>,
    /// Since when they have watched without a break (wall clock, ms): a
    /// poll that moved here from another node missed nothing of the room
    /// only if this is before its cursor's time (user_feed.rs).
    since: crate::model::Millis,
}

/// The members watching one room.
#[derive(Default)]
pub struct Watchers(HashMap<UserId, Watcher>);

impl Watchers {
    fn start(&mut self, user: UserId) {
        let w = self.0.entry(user).or_insert(Watcher {
            polls: 0,
            ended: None,
            since: crate::model::now_ms(),
        });
        w.polls += 1;
        w.ended = None;
    }

    fn end(&mut self, user: UserId) {
        if let Some(w) = self.0.get_mut(&user) {
            w.polls = w.polls.saturating_sub(1);
            if w.polls == 0 {
                w.ended = Some(Instant::now());
            }
        }
    }

    /// Since when `user` has watched without a break, if they do.
    pub fn since(&mut self, user: UserId) -> Option<crate::model::Millis> {
        self.current();
        self.0.get(&user).map(|w| w.since)
    }

    /// Who is watching now (forgetting those who stopped a while ago).
    pub fn current(&mut self) -> Vec<UserId> {
        let now = Instant::now();
        self.0
            .retain(|_, w| w.polls > 0 || w.ended.is_some_and(|e| now.duration_since(e) < LINGER));
        self.0.keys().copied().collect()
    }
}

/// A poll's watch; dropping it (the poll ends) stops it.
pub struct Watching {
    user: UserId,
    rooms: Vec<Arc<RoomFeed>>,
}

impl Watching {
    /// Whether this poll watches `room`.
    pub(super) fn watches(&self, room: RoomId) -> bool {
        self.rooms.iter().any(|f| f.id == room)
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        for feed in &self.rooms {
            feed.lock().watchers.end(self.user);
        }
    }
}

impl RoomState {
    /// The room's watchers who are still its members: someone who left
    /// while their poll watched, or within its linger, hears no more of it.
    pub(super) fn member_watchers(&mut self) -> Vec<UserId> {
        let mut watchers = self.watchers.current();
        watchers.retain(|user| self.members.contains_key(user));
        watchers
    }
}

impl Hub {
    /// Starts `user` watching those of `rooms` they are a member of; the
    /// others are ignored (a room left since the page opened it) without
    /// a look at the store.
    pub(super) async fn watch(&self, user: &UserFeed, rooms: &[RoomId]) -> ChatResult<Watching> {
        let mine: Vec<RoomId> = {
            let state = user.lock();
            rooms
                .iter()
                .take(MAX_WATCHED)
                .copied()
                .filter(|r| state.rooms.get(r).is_some_and(|m| m.active))
                .collect()
        };
        let user = user.id;
        let mut watching = Watching {
            user,
            rooms: Vec::with_capacity(mine.len()),
        };
        for id in mine {
            let Ok(feed) = self.room(id).await else {
                continue;
            };
            {
                let mut state = feed.lock();
                if !state.members.contains_key(&user) {
                    continue;
                }
                state.watchers.start(user);
            }
            watching.rooms.push(feed);
        }
        Ok(watching)
    }

    /// Whether a room of `members` members is big: presence and typing
    /// reach its watchers only.
    pub(super) fn is_big(&self, members: usize) -> bool {
        members > self.config.big_room_members
    }

    /// Whether `room` is big now: the room list says so, for clients to
    /// read a small room's members whole and a big one's in pages.
    pub fn is_big_room(&self, room: &RoomFeed) -> bool {
        self.is_big(room.member_count())
    }

    /// Who hears a room's presence and typing: its members, or a big
    /// room's watchers; and whether the room is big.
    pub(super) fn presence_audience(&self, room: &mut RoomState) -> (Vec<UserId>, bool) {
        if self.is_big(room.members.len()) {
            (room.member_watchers(), true)
        } else {
            (room.members.keys().copied().collect(), false)
        }
    }

    /// Whether an answer holds only quiet news for this poll: joins and
    /// leaves of others in big rooms it does not watch. Such an answer
    /// waits for more, or for the poll's end.
    pub(super) fn only_quiet_news(
        &self,
        user: UserId,
        events: &[Arc<Event>],
        watching: &Watching,
    ) -> bool {
        // Most answers hold a message: settled without a lock.
        if !events.iter().all(|e| maybe_quiet(user, e, watching)) {
            return false;
        }
        let rooms = self.rooms.read().expect("rooms poisoned");
        events.iter().all(|e| self.in_big_room(&rooms, e))
    }

    /// Calls `each` with the events of an answer that are news in their
    /// own right, leaving out the quiet news the poll held until they
    /// came: a held join is late on purpose, and the delivery latency
    /// would count it as slow. The rooms are read only for joins and
    /// leaves.
    pub(super) fn for_each_unheld(
        &self,
        user: UserId,
        events: &[Arc<Event>],
        watching: &Watching,
        mut each: impl FnMut(&Event),
    ) {
        let mut rooms = None;
        for e in events {
            if maybe_quiet(user, e, watching) {
                let rooms = rooms.get_or_insert_with(|| self.rooms.read().expect("rooms poisoned"));
                if self.in_big_room(rooms, e) {
                    continue;
                }
            }
            each(e);
        }
    }

    fn in_big_room(&self, rooms: &HashMap<RoomId, Arc<RoomFeed>>, e: &Event) -> bool {
        rooms
            .get(&e.room)
            .is_some_and(|feed| self.is_big(feed.member_count()))
    }
}

/// Whether `e` would be quiet news for a poll of `user` if its room is
/// big: another member's join or leave, in a room the poll does not watch.
fn maybe_quiet(user: UserId, e: &Event, watching: &Watching) -> bool {
    e.body.joined_or_left().is_some_and(|member| member != user) && !watching.watches(e.room)
}
