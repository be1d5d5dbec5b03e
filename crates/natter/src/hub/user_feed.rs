//! One user's live state on this node: which rooms they are in (and were
//! in), their open polls, their ephemeral stream and their presence.
//!
//! Every waiting poll of the user holds a receiver of `wake`; anything that
//! may concern the user bumps it, and each poll re-reads what is new for it.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{OnceCell, watch};

use super::cursor::StreamPlace;
use crate::model::{
    EndReason, Ephemeral, MembershipChange, Millis, RoomId, Seq, SessionId, UserId, now_ms,
};
use crate::store::MembershipRecord;

/// The live state of one user.
pub struct UserFeed {
    pub id: UserId,
    /// Set once memberships have been read from the store.
    pub(super) loaded: OnceCell<()>,
    /// Names this feed's ephemeral stream in cursors; a new feed (after a
    /// restart, or once the user was forgotten) gets a new one.
    pub(super) stream: u64,
    wake: watch::Sender<u64>,
    state: Mutex<UserState>,
    /// Held while presence flips and is announced, so every watcher sees
    /// a user's online/offline items in the order they happened.
    presence_order: Mutex<()>,
    /// Whether the user counts as online. Outside `state`, so a room can
    /// read it under its own lock: polls lock a user, then rooms, and a
    /// room never waits for a user's lock (presence.rs, "online sets").
    online: AtomicBool,
    /// Whether the user is online through this node's polls (one open, or
    /// one ended within the grace); `online` also counts other nodes'
    /// (cluster.rs).
    local_online: AtomicBool,
    /// The hub's eviction round when this feed was last looked up by a
    /// request (eviction.rs).
    pub(super) used: std::sync::atomic::AtomicU64,
}

#[derive(Default)]
pub(super) struct UserState {
    loaded: bool,
    pub rooms: HashMap<RoomId, MembershipRecord>,
    pending: Vec<(RoomId, Seq, MembershipChange)>,
    /// Position, arrival time (wall clock, ms) and item.
    ephemeral: VecDeque<(u64, Millis, Arc<Ephemeral>)>,
    ephemeral_last: u64,
    /// The newest position the cap pushed out or the bus lost: a cursor
    /// before it missed something.
    ephemeral_dropped: u64,
    /// When that happened: a cursor of another node's stream from before
    /// it missed something too.
    ephemeral_dropped_at: Millis,
    /// When this stream began: it holds nothing from before.
    started_at: Millis,
    polls: HashMap<u64, PollSlot>,
    next_poll: u64,
    /// When the last open poll closed.
    pub last_poll_end: Option<tokio::time::Instant>,
    /// Whether a task is already waiting to take the user offline, so a
    /// user who polls thousands of times starts one such task, not thousands.
    pub offline_check_pending: bool,
}

struct PollSlot {
    session: SessionId,
    ended: Option<EndReason>,
    opened: tokio::time::Instant,
}

/// How far apart two nodes may see one item arrive: the skew between
/// their clocks plus the bus's delay. A cursor of another node's stream,
/// issued at time T, gets the items that arrived here after T minus this;
/// those up to T plus this may have reached it there already.
pub(super) const NODES_APART_MS: Millis = 1_000;

/// What the ephemeral stream holds for a cursor position.
pub struct EphemeralSince {
    pub items: Vec<Arc<Ephemeral>>,
    pub last: u64,
    /// Items were lost (a stream that began after the cursor's time, or
    /// items evicted): re-read presence.
    pub gap: bool,
    /// For a cursor of another node's stream whose items all arrived
    /// before its poll came, so near the cursor's time that the client
    /// may have them already: the time (this node's clock) after which
    /// nothing in the window is a duplicate any more. See
    /// docs/protocol.md, "Several nodes".
    pub maybe_seen_until: Option<Millis>,
}

impl UserFeed {
    pub(super) fn new(id: UserId) -> Self {
        UserFeed {
            id,
            loaded: OnceCell::new(),
            stream: rand::random::<u64>() | 1,
            wake: watch::Sender::new(0),
            state: Mutex::new(UserState {
                started_at: now_ms(),
                ..UserState::default()
            }),
            presence_order: Mutex::new(()),
            online: AtomicBool::new(false),
            local_online: AtomicBool::new(false),
            used: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, UserState> {
        self.state.lock().expect("user feed poisoned")
    }

    /// See `presence_order`; taken before [`UserFeed::lock`], never after.
    pub(super) fn presence_order(&self) -> MutexGuard<'_, ()> {
        self.presence_order.lock().expect("presence order poisoned")
    }

    /// A receiver that sees every later [`UserFeed::wake`].
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.wake.subscribe()
    }

    /// Tells every waiting poll of this user to look again.
    pub fn wake(&self) {
        self.wake.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Whether some waiting poll of this user would care.
    pub fn has_waiters(&self) -> bool {
        self.wake.receiver_count() > 0
    }

    /// Whether the user currently counts as online.
    pub fn is_online(&self) -> bool {
        self.online.load(Ordering::SeqCst)
    }

    /// Flips presence; returns what it was. Only under
    /// [`UserFeed::presence_order`], so flips and their announcements
    /// keep one order.
    pub(super) fn set_online(&self, online: bool) -> bool {
        self.online.swap(online, Ordering::SeqCst)
    }

    /// Whether this node's own polls keep the user online.
    pub(super) fn is_local_online(&self) -> bool {
        self.local_online.load(Ordering::SeqCst)
    }

    /// Flips presence through this node's polls; returns what it was.
    /// Under [`UserFeed::presence_order`], like [`UserFeed::set_online`].
    pub(super) fn set_local_online(&self, online: bool) -> bool {
        self.local_online.swap(online, Ordering::SeqCst)
    }
}

impl UserState {
    /// Installs memberships read from the store, then the changes that
    /// arrived while they were being read.
    pub fn load(&mut self, records: Vec<MembershipRecord>) {
        self.rooms = records.into_iter().map(|r| (r.room, r)).collect();
        self.loaded = true;
        let mut pending = std::mem::take(&mut self.pending);
        pending.sort_by_key(|(_, seq, _)| *seq);
        for (room, seq, change) in pending {
            self.apply_membership(room, seq, change);
        }
    }

    /// Applies a membership change carried by room event `seq`; older
    /// changes than the one recorded are ignored, so order does not matter.
    pub fn apply_membership(&mut self, room: RoomId, seq: Seq, change: MembershipChange) {
        if !self.loaded {
            self.pending.push((room, seq, change));
            return;
        }
        if self.rooms.get(&room).is_some_and(|r| r.changed_seq >= seq) {
            return;
        }
        let since_seq = match (change, self.rooms.get(&room)) {
            (MembershipChange::Joined(_), _) => seq,
            (MembershipChange::Left, Some(r)) => r.since_seq,
            (MembershipChange::Left, None) => seq,
        };
        self.rooms.insert(
            room,
            MembershipRecord {
                room,
                since_seq,
                changed_seq: seq,
                active: matches!(change, MembershipChange::Joined(_)),
            },
        );
    }

    /// Appends to the ephemeral stream, keeping at most `cap` items.
    pub fn push_ephemeral(&mut self, item: Arc<Ephemeral>, cap: usize) {
        self.push_ephemeral_at(item, cap, now_ms());
    }

    fn push_ephemeral_at(&mut self, item: Arc<Ephemeral>, cap: usize, now: Millis) {
        self.ephemeral_last += 1;
        // A typing notice supersedes the same person's older one in the
        // same room: only the newest means anything, and renewals every
        // few seconds must not push presence and read items out.
        if item.supersedes_older() {
            self.ephemeral.retain(|(_, _, e)| !item.replaces(e));
        }
        // Make room first: pushing onto a full deque would double its
        // buffer, for every user that ever received `cap` items.
        while !self.ephemeral.is_empty() && self.ephemeral.len() >= cap {
            if let Some((n, at, _)) = self.ephemeral.pop_front() {
                // Never back past a loss `lost_ephemeral` marked.
                self.ephemeral_dropped = self.ephemeral_dropped.max(n);
                self.ephemeral_dropped_at = self.ephemeral_dropped_at.max(at);
            }
        }
        if cap > 0 {
            self.ephemeral.push_back((self.ephemeral_last, now, item));
        } else {
            self.ephemeral_dropped = self.ephemeral_last;
            self.ephemeral_dropped_at = now;
        }
    }

    /// Records that items for this stream may have been lost here (the
    /// bus to the other nodes was away): every cursor from before now
    /// gets a gap.
    pub fn lost_ephemeral(&mut self) {
        // A position of its own, with no item: a cursor that had seen
        // everything until now is before it too, and a parked poll
        // finds something new to look at.
        self.ephemeral_last += 1;
        self.ephemeral_dropped = self.ephemeral_last;
        self.ephemeral_dropped_at = now_ms();
    }

    /// The ephemeral items after `place`, for a poll that came to this
    /// node at `poll_came`.
    ///
    /// In this feed's own stream, exactly those after its position. In
    /// another node's (a poll that moved), those that arrived here since
    /// the cursor's time less [`NODES_APART_MS`]: each item is a state
    /// (who is online, who types, where a room was read), so one the
    /// client had already changes nothing when applied again. A gap if
    /// this stream began, or lost items, after that time.
    pub fn ephemeral_since(
        &self,
        own_stream: u64,
        place: StreamPlace,
        poll_came: Millis,
    ) -> EphemeralSince {
        let since = |keep: &dyn Fn(u64, Millis) -> bool| {
            self.ephemeral
                .iter()
                .filter(|(n, at, _)| keep(*n, *at))
                .map(|(_, _, e)| e.clone())
                .collect()
        };
        if place.stream == own_stream && place.seen <= self.ephemeral_last {
            return EphemeralSince {
                items: since(&|n, _| n > place.seen),
                last: self.ephemeral_last,
                gap: place.seen < self.ephemeral_dropped,
                maybe_seen_until: None,
            };
        }
        let from = place.at.saturating_sub(NODES_APART_MS);
        let missed = place.at == 0 || self.started_at > from || self.ephemeral_dropped_at >= from;
        if missed {
            return EphemeralSince {
                items: Vec::new(),
                last: self.ephemeral_last,
                gap: true,
                maybe_seen_until: None,
            };
        }
        let maybe_seen_until = place.at.saturating_add(NODES_APART_MS);
        let items: Vec<Arc<Ephemeral>> = since(&|_, at| at >= from);
        let all_maybe_seen = self
            .ephemeral
            .iter()
            .filter(|(_, at, _)| *at >= from)
            .all(|(_, at, _)| *at <= maybe_seen_until && *at < poll_came);
        EphemeralSince {
            maybe_seen_until: (!items.is_empty() && all_maybe_seen).then_some(maybe_seen_until),
            items,
            last: self.ephemeral_last,
            gap: false,
        }
    }

    /// The newest ephemeral position, for a fresh cursor.
    pub fn ephemeral_last(&self) -> u64 {
        self.ephemeral_last
    }

    /// Registers an open poll; `None` when the user already has `max`.
    pub fn open_poll(&mut self, session: SessionId, max: usize) -> Option<u64> {
        if self.polls.len() >= max {
            return None;
        }
        self.next_poll += 1;
        self.polls.insert(
            self.next_poll,
            PollSlot {
                session,
                ended: None,
                opened: tokio::time::Instant::now(),
            },
        );
        Some(self.next_poll)
    }

    /// Removes a poll; returns how many remain.
    pub fn close_poll(&mut self, id: u64) -> usize {
        self.polls.remove(&id);
        if self.polls.is_empty() {
            self.last_poll_end = Some(tokio::time::Instant::now());
        }
        self.polls.len()
    }

    /// Why the poll's session ended, if it did.
    pub fn poll_ended(&self, id: u64) -> Option<EndReason> {
        self.polls.get(&id).and_then(|p| p.ended)
    }

    /// Marks the polls of these sessions as ended.
    pub fn end_sessions(&mut self, sessions: &[SessionId], reason: EndReason) -> bool {
        let mut any = false;
        for slot in self.polls.values_mut() {
            if sessions.contains(&slot.session) {
                slot.ended = Some(reason);
                any = true;
            }
        }
        any
    }

    pub fn open_polls(&self) -> usize {
        self.polls.len()
    }

    /// Polls open since `before` or earlier: those a heartbeat counts
    /// for the other nodes' caps. A poll that just came here from another
    /// node may still be counted there, in that node's last heartbeat.
    pub fn polls_open_since(&self, before: tokio::time::Instant) -> usize {
        self.polls.values().filter(|p| p.opened <= before).count()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::{NODES_APART_MS, StreamPlace, UserState};
    use crate::model::{Ephemeral, RoomId, UserId};

    fn own(seen: u64) -> StreamPlace {
        StreamPlace {
            stream: 1,
            seen,
            at: 0,
        }
    }

    impl UserState {
        fn ephemeral_since_now(
            &self,
            own_stream: u64,
            place: StreamPlace,
        ) -> super::EphemeralSince {
            self.ephemeral_since(own_stream, place, i64::MAX)
        }
    }

    fn presence(user: i64, online: bool) -> Arc<Ephemeral> {
        Arc::new(Ephemeral::Presence {
            user: UserId(user),
            online,
        })
    }

    /// A user's ephemeral stream keeps the newest `cap` items in a buffer
    /// that never outgrows `cap`: there is one such buffer per user.
    #[test]
    fn the_ephemeral_stream_stays_within_its_cap() {
        let mut state = UserState::default();
        let item = Arc::new(Ephemeral::Presence {
            user: UserId(7),
            online: true,
        });
        for _ in 0..1_000 {
            state.push_ephemeral(item.clone(), 64);
        }
        assert_eq!(state.ephemeral.len(), 64);
        assert!(
            state.ephemeral.capacity() < 128,
            "{}",
            state.ephemeral.capacity()
        );
        let since = state.ephemeral_since_now(1, own(1_000 - 10));
        assert_eq!(since.items.len(), 10);
        assert!(!since.gap);
        assert!(state.ephemeral_since_now(1, own(1_000 - 65)).gap);
    }

    /// Typing renewals replace the same person's older notice, so a room
    /// full of typers does not push presence out of anyone's stream, and a
    /// superseded notice is no gap.
    #[test]
    fn typing_notices_supersede_each_other() {
        let mut state = UserState::default();
        let online = Arc::new(Ephemeral::Presence {
            user: UserId(2),
            online: true,
        });
        state.push_ephemeral(online.clone(), 8);
        for i in 0..100 {
            let typer = UserId(10 + i % 3);
            state.push_ephemeral(
                Arc::new(Ephemeral::Typing {
                    room: RoomId(1),
                    user: typer,
                    typing: true,
                    seq: i,
                    expires_at: 0,
                }),
                8,
            );
        }
        let since = state.ephemeral_since_now(1, own(0));
        assert!(!since.gap);
        assert_eq!(
            since.items.len(),
            4,
            "the presence item and one notice per typer"
        );
        assert_eq!(since.items[0], online);
    }

    /// A cursor of another node's stream, issued at time T, gets what
    /// arrived here from T less the nodes' distance on; items that near T
    /// are held as possibly seen; a stream that began, or lost items,
    /// after that is a gap.
    #[test]
    fn a_cursor_from_another_node_continues_by_time() {
        let t = 1_000_000;
        let mut state = UserState {
            started_at: t - 60_000,
            ..UserState::default()
        };
        state.push_ephemeral_at(presence(2, true), 64, t - 5_000);
        state.push_ephemeral_at(presence(3, true), 64, t - 200);
        let there = |at| StreamPlace {
            stream: 99,
            seen: 7,
            at,
        };
        let since = state.ephemeral_since_now(1, there(t));
        assert!(!since.gap);
        assert_eq!(
            since.items,
            vec![presence(3, true)],
            "the old item was seen"
        );
        assert_eq!(since.maybe_seen_until, Some(t + NODES_APART_MS));
        assert_eq!(since.last, 2);

        let since = state.ephemeral_since(1, there(t), t - 300);
        assert_eq!(since.items.len(), 1);
        assert_eq!(
            since.maybe_seen_until, None,
            "it came while the poll waited"
        );

        state.push_ephemeral_at(presence(4, true), 64, t + 3_000);
        let since = state.ephemeral_since_now(1, there(t));
        assert_eq!(since.items.len(), 2);
        assert_eq!(since.maybe_seen_until, None, "one item is surely new");

        let since = state.ephemeral_since_now(1, there(t + 10_000));
        assert!(since.items.is_empty() && !since.gap);

        assert!(
            state.ephemeral_since_now(1, there(0)).gap,
            "a cursor without a time"
        );
        assert!(
            state.ephemeral_since_now(1, there(t - 60_000)).gap,
            "issued before this stream began"
        );
        state.lost_ephemeral();
        assert!(state.ephemeral_since_now(1, there(t + 3_000)).gap);
        assert!(
            state.ephemeral_since_now(1, own(2)).gap,
            "and in its own stream, for a cursor that had seen everything"
        );
        assert!(state.ephemeral_last() > 2, "a parked poll has news");
        // Pushing out old items never moves the loss back.
        for _ in 0..70 {
            state.push_ephemeral_at(presence(5, true), 64, t + 4_000);
        }
        assert!(state.ephemeral_since_now(1, own(4)).gap);
        assert!(state.ephemeral_since_now(1, there(t + 3_000)).gap);
    }
}
