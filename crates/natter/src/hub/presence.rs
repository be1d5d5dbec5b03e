//! Presence: a user is online while one of their polls is open or one
//! ended less than the grace period ago, so the gap between an answer and
//! the next poll never makes them flicker. Changes are pushed to everyone
//! who shares a room with them, as ephemeral items.

use std::collections::HashSet;
use std::sync::{Arc, Weak};

use super::{Hub, UserFeed};
use crate::error::{ChatError, ChatResult};
use crate::model::{Ephemeral, SessionId};

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
        let _in_order = user.presence_order();
        let (id, came_online) = {
            let mut state = user.lock();
            let id = state
                .open_poll(session, self.config.max_polls_per_user)
                .ok_or(ChatError::TooManyPolls)?;
            let came_online = !state.online;
            state.online = true;
            (id, came_online)
        };
        if came_online {
            self.broadcast_presence(user, true);
        }
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
                            let went_offline = state.online;
                            state.online = false;
                            drop(state);
                            // Still under `_in_order`: a poll opening now
                            // announces "online" only after this "offline".
                            if went_offline && let Some(hub) = hub.upgrade() {
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

    /// Tells the user and everyone who shares a room with them.
    fn broadcast_presence(&self, user: &UserFeed, online: bool) {
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
        let mut audience = HashSet::new();
        audience.insert(user.id);
        for feed in feeds {
            audience.extend(feed.lock().members.keys().copied());
        }
        let item = Arc::new(Ephemeral::Presence {
            user: user.id,
            online,
        });
        let targets = self.loaded_users(audience);
        for target in &targets {
            target
                .lock()
                .push_ephemeral(item.clone(), self.config.ephemeral_cap);
        }
        self.wake_for_presence(targets);
    }

    /// Wakes the polls of `targets` for presence news, at most once per
    /// `presence_batch` per user. When many members of a large room come
    /// online together, each waiting member is answered once with all of
    /// them, instead of once per arrival (which grows with the square of
    /// the room's size).
    fn wake_for_presence(&self, targets: Vec<Arc<UserFeed>>) {
        let start_flush = {
            let mut wakes = self.presence_wakes.lock().expect("presence poisoned");
            for t in targets {
                wakes.users.insert(t.id, t);
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
            let due = {
                let mut wakes = hub.presence_wakes.lock().expect("presence poisoned");
                wakes.flush_scheduled = false;
                std::mem::take(&mut wakes.users)
            };
            for feed in due.into_values() {
                feed.wake();
            }
        });
    }
}

/// Users with presence news their polls have not been woken for yet.
#[derive(Default)]
pub(super) struct PresenceWakes {
    users: std::collections::HashMap<crate::model::UserId, Arc<UserFeed>>,
    flush_scheduled: bool,
}
