//! One room's live state on this node: its head sequence, its members, and
//! a bounded cache of recent events that waiting polls are answered from.
//!
//! Events may arrive out of order (two sends commit in order but publish in
//! either order) or not at all (a lossy bus). They are held in `pending`
//! until the sequence is contiguous; a gap that does not close by itself is
//! read from the store by the hub.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::OnceCell;

use super::cursor::{Position, stamp};
use crate::model::{Event, EventBody, MembershipChange, Role, RoomId, Seq, UserId};

/// The live state of one room.
pub struct RoomFeed {
    pub id: RoomId,
    /// Set once the head and members have been read from the store.
    pub(super) loaded: OnceCell<()>,
    state: Mutex<RoomState>,
    /// The hub's eviction round when this feed was last looked up by a
    /// request (eviction.rs).
    pub(super) used: std::sync::atomic::AtomicU64,
    /// When it was loaded (wall clock, ms): the members' ephemeral streams
    /// here hold its presence and typing from then on (user_feed.rs).
    pub(super) loaded_at: std::sync::atomic::AtomicI64,
}

#[derive(Default)]
pub(super) struct RoomState {
    pub loaded: bool,
    pub head: Seq,
    recent: VecDeque<Arc<Event>>,
    pending: BTreeMap<Seq, Arc<Event>>,
    pub members: HashMap<UserId, Role>,
    /// The members online now, kept as presence and membership change
    /// (presence.rs), so a count never walks a big room's members.
    pub online: HashSet<UserId>,
    pub gap_fill_scheduled: bool,
    pub typers: super::typing::Typers,
    /// A direct conversation (the kind never changes).
    pub direct: bool,
    /// Members whose polls watch this room (watching.rs).
    pub watchers: super::watching::Watchers,
}

/// What a reader gets for "events after `after`".
pub enum Read {
    /// The events, possibly none, all from memory.
    Events(Vec<Arc<Event>>),
    /// Older than the cache: read them from the store.
    FromStore,
    /// The cursor is past this node's head.
    Ahead,
}

impl RoomFeed {
    pub(super) fn new(id: RoomId) -> Self {
        RoomFeed {
            id,
            loaded: OnceCell::new(),
            state: Mutex::new(RoomState::default()),
            used: std::sync::atomic::AtomicU64::new(0),
            loaded_at: std::sync::atomic::AtomicI64::new(i64::MAX),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, RoomState> {
        self.state.lock().expect("room feed poisoned")
    }

    /// The role of `user`, if an active member.
    pub fn role_of(&self, user: UserId) -> Option<Role> {
        self.lock().members.get(&user).copied()
    }

    /// Whether this is a direct conversation.
    pub fn is_direct(&self) -> bool {
        self.lock().direct
    }

    /// The active members, in no particular order.
    pub fn member_ids(&self) -> Vec<UserId> {
        self.lock().members.keys().copied().collect()
    }

    /// How many active members the room has.
    pub fn member_count(&self) -> usize {
        self.lock().members.len()
    }

    /// How many members the room has, and the newest seq that count
    /// follows: every join and leave up to it is counted, none after.
    pub fn member_count_as_of(&self) -> (usize, Seq) {
        let state = self.lock();
        (state.members.len(), state.head)
    }

    /// How many of the members are online.
    pub fn online_count(&self) -> usize {
        self.lock().online.len()
    }

    /// The newest contiguous sequence this node knows.
    pub fn head(&self) -> Seq {
        self.lock().head
    }

    /// A cursor position at the head. The cache always holds the head
    /// event (the snapshot reads it; each applied event joins the cache),
    /// so its stamp is at hand; 0 before the first event.
    pub fn head_position(&self) -> Position {
        let state = self.lock();
        Position {
            seq: state.head,
            stamp: state.cached(state.head).map_or(0, |e| stamp(e)),
        }
    }

    /// The event at `seq`, when it is in memory.
    pub fn cached_event(&self, seq: Seq) -> Option<Arc<Event>> {
        self.lock().cached(seq).cloned()
    }

    /// The stamp of the event at `seq`, when it is in memory.
    pub fn cached_stamp(&self, seq: Seq) -> Option<u32> {
        self.lock().cached(seq).map(|e| stamp(e))
    }

    /// Events in `(after, upto]` (upto defaults to the head), at most `limit`.
    pub fn read_after(&self, after: Seq, upto: Option<Seq>, limit: usize) -> Read {
        let state = self.lock();
        if after > state.head && upto.is_none() {
            // A cursor a little ahead of the head is fine while pending
            // events cover it: they are committed, just not yet contiguous.
            let covered = state
                .pending
                .keys()
                .next_back()
                .is_some_and(|&s| s >= after);
            return if covered {
                Read::Events(Vec::new())
            } else {
                Read::Ahead
            };
        }
        let end = upto.map_or(state.head, |u| u.min(state.head));
        if after >= end {
            return Read::Events(Vec::new());
        }
        match state.recent.front() {
            Some(first) if first.seq <= after + 1 => {
                let skip = (after + 1 - first.seq) as usize;
                Read::Events(
                    state
                        .recent
                        .iter()
                        .skip(skip)
                        .take_while(|e| e.seq <= end)
                        .take(limit)
                        .cloned()
                        .collect(),
                )
            }
            _ => Read::FromStore,
        }
    }
}

impl RoomState {
    /// The event at `seq` in the cache of recent events.
    fn cached(&self, seq: Seq) -> Option<&Arc<Event>> {
        let first = self.recent.front()?.seq;
        let index = usize::try_from(seq.checked_sub(first)?).ok()?;
        self.recent.get(index).filter(|e| e.seq == seq)
    }

    /// Sets the state read from the store (the head, the event there and
    /// the members) and applies whatever arrived while it was being read.
    pub fn load(
        &mut self,
        head: Seq,
        direct: bool,
        head_event: Option<Event>,
        members: Vec<(UserId, Role)>,
        cache_cap: usize,
    ) {
        self.head = head;
        self.direct = direct;
        if let Some(event) = head_event.filter(|e| e.seq == head) {
            self.recent.push_back(Arc::new(event));
        }
        self.members = members.into_iter().collect();
        self.loaded = true;
        self.drain(cache_cap);
    }

    /// Takes an event; returns the events that became contiguous (applied).
    pub fn offer(&mut self, event: Arc<Event>, cache_cap: usize) -> Vec<Arc<Event>> {
        if self.loaded && event.seq <= self.head {
            return Vec::new();
        }
        // A deletion takes the text out of memory at once, even while it
        // waits behind a gap: its sender has been told it is gone.
        if let EventBody::MessageDeleted { target } = event.body {
            self.redact(target);
        }
        self.pending.insert(event.seq, event);
        if self.loaded {
            self.drain(cache_cap)
        } else {
            Vec::new()
        }
    }

    /// The first missing sequence and the one after the gap, if there is a gap.
    pub fn gap(&self) -> Option<(Seq, Seq)> {
        let (&first, _) = self.pending.iter().next()?;
        (first > self.head + 1).then_some((self.head, first))
    }

    /// Replaces the message `target` and its edits, cached or waiting
    /// for a gap, by their redacted forms: a deleted text must leave
    /// memory as it left the store, before any poll reads it again.
    fn redact(&mut self, target: Seq) {
        let from = self.recent.partition_point(|e| e.seq < target);
        let cached = self.recent.range_mut(from..);
        for slot in cached.chain(self.pending.range_mut(target..).map(|(_, e)| e)) {
            if let Some(redacted) = slot.redacted_for(target) {
                *slot = Arc::new(redacted);
            }
        }
    }

    fn drain(&mut self, cache_cap: usize) -> Vec<Arc<Event>> {
        let mut applied = Vec::new();
        while let Some(entry) = self.pending.first_entry() {
            let seq = *entry.key();
            if seq <= self.head {
                entry.remove();
                continue;
            }
            if seq != self.head + 1 {
                break;
            }
            let event = entry.remove();
            for (user, change) in event.body.membership_changes() {
                match change {
                    MembershipChange::Joined(role) => {
                        self.members.insert(user, role);
                    }
                    MembershipChange::Left => {
                        self.members.remove(&user);
                    }
                }
            }
            self.head = seq;
            self.recent.push_back(event.clone());
            while self.recent.len() > cache_cap {
                self.recent.pop_front();
            }
            applied.push(event);
        }
        applied
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::RoomState;
    use crate::model::{Event, EventBody, RoomId, UserId};

    fn event(seq: i64, body: EventBody) -> Arc<Event> {
        Arc::new(Event {
            room: RoomId(1),
            seq,
            at: seq,
            sender: UserId(1),
            sender_name: "ann".into(),
            body,
            encoded: Default::default(),
        })
    }

    fn message(seq: i64, text: &str) -> Arc<Event> {
        event(
            seq,
            EventBody::Message {
                client_msg_id: format!("c{seq}"),
                text: text.into(),
                reply_to: None,
                redacted: false,
            },
        )
    }

    /// A deletion that arrives ahead of a gap takes the text out of the
    /// cache and out of the events waiting for the gap at once.
    #[test]
    fn a_deletion_redacts_at_once_even_behind_a_gap() {
        let mut state = RoomState::default();
        state.load(1, false, None, Vec::new(), 16);
        state.offer(message(2, "cached secret"), 16);
        state.offer(message(4, "pending secret"), 16);
        for target in [2, 4] {
            state.offer(event(4 + target, EventBody::MessageDeleted { target }), 16);
        }
        let texts = |state: &RoomState| -> Vec<String> {
            state
                .recent
                .iter()
                .chain(state.pending.values())
                .filter_map(|e| match &e.body {
                    EventBody::Message { text, .. } => Some(text.clone()),
                    _ => None,
                })
                .collect()
        };
        assert_eq!(texts(&state), ["", ""], "nothing left to read");
        // The gap closes: the events drain in order, still redacted.
        state.offer(message(3, "kept"), 16);
        state.offer(message(5, "kept too"), 16);
        state.offer(message(7, "kept three"), 16);
        assert_eq!(state.head, 8);
        assert_eq!(texts(&state), ["", "kept", "", "kept too", "kept three"]);
    }
}
