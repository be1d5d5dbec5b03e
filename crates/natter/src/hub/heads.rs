//! Head checks, for a bus that can lose messages (Redis pub/sub between
//! the nodes of a cluster): every second or so the hub asks the store for
//! the heads of the rooms it holds, and reads what the bus never brought.
//!
//! A lost message in the middle of a room's traffic shows as a seq jump
//! at the next one and is read at once (`Hub::apply`'s gap fill); these
//! checks catch the case where the lost message was the last before
//! silence, and a bus that was away for a while. A room found behind is
//! read only if it is still short of that head at the next round: events
//! on their way through the bus are not read twice. Their cost is one
//! query per 500 rooms held per interval, whatever the traffic.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::Hub;
use crate::model::{RoomId, Seq};

/// Rooms asked about in one query.
const HEADS_PER_QUERY: usize = 500;
/// Events read from the store at a time while catching a room up.
const CATCH_UP_BATCH: usize = 500;

impl Hub {
    /// Checks the heads of the rooms this node holds every `interval`,
    /// until the hub shuts down or goes.
    pub fn spawn_head_checks(&self, interval: Duration) {
        self.every("a head check", interval, |hub| async move {
            hub.check_heads().await
        });
    }

    /// One round: the store's heads against this node's, and a catch-up
    /// of every room still behind what the last round saw.
    pub(crate) async fn check_heads(&self) {
        let held: HashMap<RoomId, Seq> = {
            let rooms = self.rooms.read().expect("rooms poisoned");
            rooms
                .values()
                .filter_map(|feed| {
                    let state = feed.lock();
                    state.loaded.then_some((feed.id, state.head))
                })
                .collect()
        };
        let ids: Vec<RoomId> = held.keys().copied().collect();
        let mut behind = HashMap::new();
        let mut lost = Vec::new();
        for chunk in ids.chunks(HEADS_PER_QUERY) {
            let heads = match self.store.room_heads(chunk).await {
                Ok(heads) => heads,
                Err(e) => {
                    tracing::warn!(error = %e, "a head check could not read the store");
                    return;
                }
            };
            let seen_last = self.heads_behind.lock().expect("heads poisoned");
            for (room, head) in heads {
                let Some(&ours) = held.get(&room) else {
                    continue;
                };
                if head <= ours {
                    continue;
                }
                match seen_last.get(&room) {
                    Some(&then) if ours < then => lost.push((room, then)),
                    _ => {
                        behind.insert(room, head);
                    }
                }
            }
        }
        *self.heads_behind.lock().expect("heads poisoned") = behind;
        for (room, head) in lost {
            self.catch_up(room, head).await;
        }
    }

    /// Reads the events of `room` after this node's head, up to `head`
    /// at least, and applies them as the bus would have.
    async fn catch_up(&self, room: RoomId, head: Seq) {
        let Some(feed) = self.loaded_room(room) else {
            return;
        };
        loop {
            let ours = feed.head();
            if ours >= head {
                return;
            }
            tracing::debug!(room.id = %room, seq.from = ours + 1, seq.to = head, "reading events the bus did not bring");
            match self.store.events_after(room, ours, CATCH_UP_BATCH).await {
                Ok(events) if events.is_empty() => return,
                Ok(events) => {
                    for event in events {
                        self.apply(&Arc::new(event));
                    }
                }
                Err(e) => {
                    tracing::warn!(room.id = %room, error = %e, "catching a room up failed");
                    return;
                }
            }
        }
    }
}
