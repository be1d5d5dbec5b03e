//! Presence: a user is online while one of their polls is open or one
//! ended less than the grace period ago, so the gap between an answer and
//! the next poll never makes them flicker. Changes are pushed, as
//! ephemeral items, to everyone who shares a small room or a direct
//! conversation with them, and in a big room to those watching it
//! (watching.rs), who also get the new online count of every big room
//! whose count changed (`room_online`), once per batch.
//!
//! Each room keeps the set of its members online now ("online sets"),
//! changed where presence flips and where membership events apply, so
//! a count costs nothing however big the room. A flip happens under the
//! user's `presence_order`, then walks the user's rooms; a room reads a
//! user's flag (an atomic) under its own lock and never takes the user's
//! lock, whose holders (polls) take room locks.

use std::collections::HashSet;
use std::sync::{Arc, Weak};

use super::room_feed::RoomState;
use super::{Hub, RoomFeed, UserFeed};
use crate::error::{ChatError, ChatResult};
use crate::model::{Ephemeral, Event, MembershipChange, SessionId, UserId};

/// An open poll; dropping it closes the poll, whichever way the request
/// ended (answered, timed out, or its connection dropped).
pub struct OpenPoll {
    hub: Weak<Hub>,
    user: Arc<UserFeed>,
    pub id: u64,
}

impl Drop for OpenPoll {
    fn drop(&mut self) {
        if let Some(hub) = self.hub.upgrade() {
            hub.metrics.polls_waiting.dec();
        }
        let start_check = {
            let mut state = self.user.lock();
            let idle = state.close_poll(self.id) == 0;
            let start = idle && !state.offline_check_pending;
            if start {
                state.offline_check_pending = true;
            }
            start
        };
        if start_check && let Some(hub) = self.hub.upgrade() {
            hub.schedule_offline(self.user.clone());
        }
    }
}

impl Hub {
    /// Registers a poll for `session`, bringing the user online.
    pub(super) fn open_poll(
        &self,
        user: &Arc<UserFeed>,
        session: SessionId,
    ) -> ChatResult<OpenPoll> {
        // In a cluster the cap counts the polls open on the other nodes.
        let cap = self
            .config
            .max_polls_per_user
            .saturating_sub(self.polls_elsewhere(user.id));
        let _in_order = user.presence_order();
        let (id, came_online) = {
            let mut state = user.lock();
            let id = state
                .open_poll(session, cap)
                .ok_or(ChatError::TooManyPolls)?;
            (id, !user.set_online(true))
        };
        if came_online {
            self.broadcast_presence(user, true);
        }
        self.set_local_presence(user, true);
        self.metrics.polls_waiting.inc();
        Ok(OpenPoll {
            hub: self.me.clone(),
            user: user.clone(),
            id,
        })
    }

    /// Takes the user offline once no poll has been open for the grace
    /// period. One such task runs per user at a time: it sleeps until the
    /// last poll's end plus the grace, and gives up as soon as a poll is
    /// open again.
    fn schedule_offline(&self, user: Arc<UserFeed>) {
        // A poll dropped while the runtime shuts down has nobody to tell.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            user.lock().offline_check_pending = false;
            return;
        };
        let hub = self.me.clone();
        let grace = self.config.presence_grace;
        runtime.spawn(async move {
            loop {
                let due = {
                    let _in_order = user.presence_order();
                    let mut state = user.lock();
                    let ended = state.last_poll_end.filter(|_| state.open_polls() == 0);
                    match ended {
                        None => {
                            state.offline_check_pending = false;
                            return;
                        }
                        Some(ended) if ended + grace <= tokio::time::Instant::now() => {
                            state.offline_check_pending = false;
                            drop(state);
                            let Some(hub) = hub.upgrade() else { return };
                            hub.set_local_presence(&user, false);
                            // Online still through another node's polls?
                            let went_offline =
                                !hub.online_elsewhere(user.id) && user.set_online(false);
                            // Still under `_in_order`: a poll opening now
                            // announces "online" only after this "offline".
                            if went_offline {
                                hub.broadcast_presence(&user, false);
                            }
                            return;
                        }
                        Some(ended) => ended + grace,
                    }
                };
                tokio::time::sleep_until(due).await;
            }
        });
    }

    /// Tells the user, everyone who shares a small room with them, and the
    /// watchers of their big rooms.
    pub(super) fn broadcast_presence(&self, user: &UserFeed, online: bool) {
        let rooms: Vec<_> = user
            .lock()
            .rooms
            .values()
            .filter(|m| m.active)
            .map(|m| m.room)
            .collect();
        let feeds: Vec<_> = {
            let map = self.rooms.read().expect("rooms poisoned");
            rooms.iter().filter_map(|r| map.get(r).cloned()).collect()
        };
        self.announce_presence(user.id, feeds, online, false);
    }

    /// Counts `user` online or offline in `rooms` (those held here) and
    /// tells who hears their presence there. With `only_if_changed`
    /// nothing is told when no room's count moved: the news was known
    /// here already (another node's user, whose feed this node need not
    /// hold).
    pub(super) fn announce_presence(
        &self,
        user: UserId,
        rooms: Vec<Arc<RoomFeed>>,
        online: bool,
        only_if_changed: bool,
    ) {
        let mut audience = HashSet::new();
        audience.insert(user);
        let mut counted = Vec::new();
        let mut any_changed = false;
        for feed in rooms {
            let mut state = feed.lock();
            let changed = state.members.contains_key(&user)
                && if online {
                    state.online.insert(user)
                } else {
                    state.online.remove(&user)
                };
            any_changed |= changed;
            let (hearers, big) = self.presence_audience(&mut state);
            drop(state);
            audience.extend(hearers);
            if changed && big {
                counted.push(feed);
            }
        }
        if only_if_changed && !any_changed {
            return;
        }
        let targets = self.push_item(audience, Ephemeral::Presence { user, online });
        self.wake_batched(targets, counted);
    }

    /// Pushes `item` to the ephemeral streams of those of `audience` with
    /// a feed here; returns their feeds, to be woken.
    fn push_item(
        &self,
        audience: impl IntoIterator<Item = UserId>,
        item: Ephemeral,
    ) -> Vec<Arc<UserFeed>> {
        let item = Arc::new(item);
        let targets = self.loaded_users(audience);
        for target in &targets {
            target
                .lock()
                .push_ephemeral(item.clone(), self.config.ephemeral_cap);
        }
        targets
    }

    /// Tells the watchers of a big room how many of its members are online.
    fn announce_online_count(&self, room: &RoomFeed) -> Vec<Arc<UserFeed>> {
        let (online, audience) = {
            let mut state = room.lock();
            (state.online.len(), self.presence_audience(&mut state).0)
        };
        self.push_item(
            audience,
            Ephemeral::RoomOnline {
                room: room.id,
                online,
            },
        )
    }

    /// Those of `members` online now: a room's online set when its feed
    /// loads.
    pub(super) fn online_among(
        &self,
        members: impl IntoIterator<Item = UserId>,
    ) -> HashSet<UserId> {
        let members: Vec<UserId> = members.into_iter().collect();
        let mut online: HashSet<UserId> = self
            .loaded_users(members.iter().copied())
            .iter()
            .filter(|f| f.is_online())
            .map(|f| f.id)
            .collect();
        // Members with no feed here may be online through another node.
        online.extend(members.into_iter().filter(|m| self.online_elsewhere(*m)));
        online
    }

    /// Keeps a room's online set across a membership event applied to
    /// it. The event reached the members' user feeds before the room
    /// (`Hub::apply`), so a flip racing with it is seen by one side or
    /// the other: checked here after it, or announced by
    /// `broadcast_presence` walking rooms that include this one.
    /// Returns the members who joined online, for
    /// [`Hub::announce_online_joiners`] once the room's lock is let go,
    /// and whether someone online left (the count changed).
    pub(super) fn track_online(&self, room: &mut RoomState, event: &Event) -> (Vec<UserId>, bool) {
        let mut joined_online = Vec::new();
        let mut left_online = false;
        for (user, change) in event.body.membership_changes() {
            match change {
                MembershipChange::Joined(_) if self.is_online(user) => {
                    if room.online.insert(user) {
                        joined_online.push(user);
                    }
                }
                MembershipChange::Joined(_) => {}
                MembershipChange::Left => {
                    left_online |= room.online.remove(&user);
                }
            }
        }
        (joined_online, left_online)
    }

    /// Someone online left: a big room's watchers get its new count with
    /// the next presence batch (a small room's members count for
    /// themselves from the `member_left` event).
    pub(super) fn announce_count_change(&self, room: &Arc<RoomFeed>) {
        if self.is_big(room.member_count()) {
            self.wake_batched(Vec::new(), vec![room.clone()]);
        }
    }

    /// Someone who joins while online is presence news for the room: the
    /// item a flip would send, to those who hear the room's presence (its
    /// members, or a big room's watchers with its new count). Under the
    /// joiner's `presence_order`, so it never lands after a later
    /// "offline".
    pub(super) fn announce_online_joiners(&self, room: &Arc<RoomFeed>, joiners: Vec<UserId>) {
        for joiner in self.loaded_users(joiners) {
            let _in_order = joiner.presence_order();
            if !joiner.is_online() {
                continue;
            }
            let (audience, big) = self.presence_audience(&mut room.lock());
            let targets = self.push_item(
                audience,
                Ephemeral::Presence {
                    user: joiner.id,
                    online: true,
                },
            );
            let counted = if big { vec![room.clone()] } else { Vec::new() };
            self.wake_batched(targets, counted);
        }
    }

    /// Wakes the polls of `targets` for presence news (and a big room's
    /// watchers for its joins and leaves), at most once per
    /// `presence_batch` per user. When many members of a large room come
    /// online together, each waiting member is answered once with all of
    /// them, instead of once per arrival (which grows with the square of
    /// the room's size).
    pub(super) fn wake_batched(&self, targets: Vec<Arc<UserFeed>>, counted: Vec<Arc<RoomFeed>>) {
        let start_flush = {
            let mut wakes = self.presence_wakes.lock().expect("presence poisoned");
            for t in targets {
                wakes.users.insert(t.id, t);
            }
            for room in counted {
                wakes.rooms.insert(room.id, room);
            }
            !std::mem::replace(&mut wakes.flush_scheduled, true)
        };
        if !start_flush {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.presence_wakes
                .lock()
                .expect("presence poisoned")
                .flush_scheduled = false;
            return;
        };
        let hub = self.me.clone();
        let delay = self.config.presence_batch;
        runtime.spawn(async move {
            tokio::time::sleep(delay).await;
            let Some(hub) = hub.upgrade() else { return };
            let (mut due, rooms) = {
                let mut wakes = hub.presence_wakes.lock().expect("presence poisoned");
                wakes.flush_scheduled = false;
                (
                    std::mem::take(&mut wakes.users),
                    std::mem::take(&mut wakes.rooms),
                )
            };
            // One count per big room per batch, however many came and went.
            for room in rooms.into_values() {
                for watcher in hub.announce_online_count(&room) {
                    due.insert(watcher.id, watcher);
                }
            }
            for feed in due.into_values() {
                feed.wake();
            }
        });
    }
}

/// Users with presence news their polls have not been woken for yet.
#[derive(Default)]
pub(super) struct PresenceWakes {
    users: std::collections::HashMap<UserId, Arc<UserFeed>>,
    /// Big rooms whose online count changed: their watchers get the new one.
    rooms: std::collections::HashMap<crate::model::RoomId, Arc<RoomFeed>>,
    flush_scheduled: bool,
}
