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
        let remaining = self.user.lock().close_poll(self.id);
        if remaining == 0 {
            if let Some(hub) = self.hub.upgrade() {
                hub.schedule_offline(self.user.clone());
            }
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
        Ok(OpenPoll {
            hub: self.me.clone(),
            user: user.clone(),
            id,
        })
    }

    /// After the grace period, takes the user offline unless a poll opened
    /// in the meantime.
    fn schedule_offline(&self, user: Arc<UserFeed>) {
        // A poll dropped while the runtime shuts down has nobody to tell.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let generation = user.lock().presence_generation;
        let hub = self.me.clone();
        let grace = self.config.presence_grace;
        runtime.spawn(async move {
            tokio::time::sleep(grace).await;
            let Some(hub) = hub.upgrade() else { return };
            let went_offline = {
                let mut state = user.lock();
                let idle = state.presence_generation == generation && state.open_polls() == 0;
                let went = idle && state.online;
                if went {
                    state.online = false;
                }
                went
            };
            if went_offline {
                hub.broadcast_presence(&user, false);
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
            let map = self.rooms.lock().expect("rooms poisoned");
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
        for target in self.loaded_users(audience) {
            target
                .lock()
                .push_ephemeral(item.clone(), self.config.ephemeral_cap);
            target.wake();
        }
    }
}
