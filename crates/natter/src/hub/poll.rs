//! The long poll: subscribe, then read, then wait.
//!
//! A poll first subscribes to its user's wake-ups, then compares its cursor
//! with the room heads in memory; only if nothing is new does it wait, so
//! an event that lands between the two is never missed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::cursor::StreamPlace;
use super::{Cursor, CursorError, CursorKey, Hub, Position, UserFeed, cursor};
use crate::error::{ChatError, ChatResult};
use crate::model::{Ephemeral, Event, Millis, RoomId, Seq, SessionId, UserId, now_ms};
use crate::store::MembershipRecord;

/// What a poll returns.
#[derive(Debug)]
pub struct PollAnswer {
    /// Room events, in sequence order within each room.
    pub events: Vec<Arc<Event>>,
    /// Presence changes and read markers since the cursor.
    pub ephemeral: Vec<Arc<Ephemeral>>,
    /// Where the next poll continues.
    pub cursor: String,
    /// Ephemeral items were lost: re-read member lists and room list.
    pub ephemeral_gap: bool,
}

impl PollAnswer {
    fn is_empty(&self) -> bool {
        self.events.is_empty() && self.ephemeral.is_empty() && !self.ephemeral_gap
    }
}

/// How a collected answer stands in the ephemeral stream.
struct EphemeralRead {
    /// The place the answer's cursor holds.
    place: StreamPlace,
    /// The answer's items all arrived so near a moved cursor's time that
    /// the client may have them from its last node: until then (this
    /// node's clock) they wait for other news (user_feed.rs).
    maybe_seen_until: Option<Millis>,
}

impl Hub {
    /// Answers at once with whatever is newer than `cursor`, or waits up to
    /// `timeout` for something to arrive. Without a cursor it answers at
    /// once with a cursor at the current heads.
    pub async fn poll(
        &self,
        user_id: UserId,
        session: SessionId,
        cursor_text: Option<&str>,
        timeout: Duration,
        max_events: usize,
        watch: &[RoomId],
    ) -> ChatResult<PollAnswer> {
        let to = CursorKey {
            deployment: self.deployment_id(),
            user: user_id,
            key: &self.cursor_mac,
        };
        let cursor = cursor_text
            .map(|text| {
                Cursor::decode(text, to).map_err(|e| {
                    ChatError::ResyncRequired(match e {
                        CursorError::Garbled => "the cursor is not one this server issued",
                        CursorError::OtherDeployment => "the cursor belongs to another deployment",
                        CursorError::Altered => "the cursor was altered",
                        CursorError::OtherUser => "the cursor belongs to another user",
                    })
                })
            })
            .transpose()?;
        let user = self.user(user_id).await?;
        let mut wake = user.subscribe();
        let poll = self.open_poll(&user, session)?;
        let Some(mut cursor) = cursor else {
            self.metrics.poll_answers.fresh.inc();
            return self.fresh_cursor(&user, to).await;
        };
        let watching = self.watch(&user, watch).await?;
        // Issued before this process started: its history may since have
        // been restored from an older copy. Checked once; every answer
        // from here on is this process's cursor.
        let reissued = cursor.issued_by != self.instance;
        if reissued {
            self.check_positions(&cursor).await?;
            cursor.issued_by = self.instance;
        }
        let mut moved = reissued;
        // Quiet news is waiting (watching.rs): answered at the end if
        // nothing else comes.
        let mut holding = false;
        let mut deadline = tokio::time::Instant::now() + timeout;
        let came = now_ms();
        let mut shutdown = self.shutdown.subscribe();
        loop {
            if let Some(reason) = user.lock().poll_ended(poll.id) {
                return Err(ChatError::SessionEnded(reason));
            }
            if self.may_have_news(&user, &cursor) {
                let (answer, read) = self
                    .collect(&user, &cursor, (came, watch), to, max_events)
                    .await?;
                // An answer the limits cut short may hide other news
                // behind the joins: it goes at once.
                let full = answer.events.len() >= max_events.clamp(1, self.config.max_batch_events)
                    || answer
                        .events
                        .iter()
                        .map(|e| e.approx_wire_bytes())
                        .sum::<usize>()
                        >= self.config.max_batch_bytes / 2;
                // A poll that moved from another node may have had these
                // items there: answering them at once would send the
                // client straight to the next node, to get them again.
                let items_wait = read.maybe_seen_until.is_some();
                let quiet = (answer.ephemeral.is_empty() || items_wait)
                    && !answer.ephemeral_gap
                    && !full
                    && self.only_quiet_news(user_id, &answer.events, &watching);
                if !answer.is_empty() && !quiet {
                    self.count_answer(&answer, user_id, &watching);
                    return Ok(answer);
                }
                holding = !answer.is_empty();
                if let Some(until) = read.maybe_seen_until.filter(|_| holding) {
                    let wait = Duration::from_millis(until.saturating_sub(now_ms()).max(0) as u64);
                    if let Some(then) = tokio::time::Instant::now().checked_add(wait) {
                        deadline = deadline.min(then);
                    }
                }
                // Nothing new of the stream (or only typing notices past
                // their time): the cursor moves to this node's stream, or
                // past the stale items, so they are not looked at again.
                let place = (read.place.stream, read.place.seen);
                if answer.ephemeral.is_empty()
                    && place != (cursor.ephemeral.stream, cursor.ephemeral.seen)
                {
                    cursor.ephemeral = read.place;
                    moved = true;
                }
            }
            if *shutdown.borrow_and_update() {
                break;
            }
            tokio::select! {
                changed = wake.changed() => if changed.is_err() { break },
                _ = tokio::time::sleep_until(deadline) => break,
                _ = shutdown.changed() => break,
            }
        }
        // Held news goes at the timeout; at shutdown the poll answers
        // empty with its cursor, as every waiting poll does, and the next
        // poll gets it. Held on purpose, it is no slow delivery: counted,
        // but kept out of the latency histogram.
        if holding && !*shutdown.borrow() {
            let (answer, _) = self
                .collect(&user, &cursor, (came, watch), to, max_events)
                .await?;
            self.metrics.deliveries.inc_by(answer.events.len() as u64);
            self.metrics.poll_answers.held.inc();
            return Ok(answer);
        }
        self.metrics.poll_answers.empty.inc();
        Ok(PollAnswer {
            events: Vec::new(),
            ephemeral: Vec::new(),
            cursor: if moved {
                cursor.encode(to)
            } else {
                cursor_text.unwrap_or_default().to_owned()
            },
            ephemeral_gap: false,
        })
    }

    /// Checks that every position of `cursor` names the event the store
    /// holds there now, by its stamp; see the cursor module.
    async fn check_positions(&self, cursor: &Cursor) -> ChatResult<()> {
        const RESTORED: ChatError = ChatError::ResyncRequired(
            "the cursor names events this server does not hold (was the data restored from an older copy?)",
        );
        for (&room, at) in &cursor.rooms {
            if at.seq == 0 {
                continue;
            }
            let feed = match self.room(room).await {
                Ok(feed) => feed,
                Err(ChatError::RoomNotFound) => return Err(RESTORED),
                Err(e) => return Err(e),
            };
            let held = match feed.cached_stamp(at.seq) {
                Some(stamp) => Some(stamp),
                None => self
                    .store
                    .events_after(room, at.seq - 1, 1)
                    .await?
                    .first()
                    .filter(|e| e.seq == at.seq)
                    .map(cursor::stamp),
            };
            if held != Some(at.stamp) {
                tracing::info!(room.id = %room, seq = at.seq, "a cursor does not match the stored history; asking for a resync");
                return Err(RESTORED);
            }
        }
        Ok(())
    }

    /// Counts an answer with news, its events, and how long after its
    /// send each reached the poll. Two kinds are counted but kept out of
    /// the latency histogram, as no slow delivery: events older than a
    /// minute (a client catching up), and quiet news the poll held on
    /// purpose until something else came (watching.rs).
    fn count_answer(
        &self,
        answer: &PollAnswer,
        user: UserId,
        watching: &super::watching::Watching,
    ) {
        let events = &answer.events;
        if events.is_empty() {
            self.metrics.poll_answers.items.inc();
            return;
        }
        self.metrics.poll_answers.events.inc();
        self.metrics.deliveries.inc_by(events.len() as u64);
        let now = now_ms();
        self.for_each_unheld(user, events, watching, |event| {
            let ms = (now - event.at).max(0);
            if ms < 60_000 {
                self.metrics.delivery_latency.observe(ms as f64 / 1000.0);
            }
        });
    }

    /// A cursor at the current heads of the user's rooms.
    async fn fresh_cursor(&self, user: &UserFeed, to: CursorKey<'_>) -> ChatResult<PollAnswer> {
        let (rooms, ephemeral) = {
            let state = user.lock();
            let rooms: Vec<RoomId> = state
                .rooms
                .values()
                .filter(|m| m.active)
                .map(|m| m.room)
                .collect();
            let place = StreamPlace {
                stream: user.stream,
                seen: state.ephemeral_last(),
                at: now_ms(),
            };
            (rooms, place)
        };
        let mut heads = BTreeMap::new();
        for room in rooms {
            heads.insert(room, self.room(room).await?.head_position());
        }
        let cursor = Cursor {
            issued_by: self.instance,
            rooms: heads,
            ephemeral,
        };
        Ok(PollAnswer {
            events: Vec::new(),
            ephemeral: Vec::new(),
            cursor: cursor.encode(to),
            ephemeral_gap: false,
        })
    }

    /// A cheap check, without allocating, of whether `collect` could find
    /// anything: most wake-ups of a parked poll and every fresh re-poll
    /// find nothing, and should cost next to nothing.
    fn may_have_news(&self, user: &UserFeed, cursor: &Cursor) -> bool {
        let state = user.lock();
        if cursor.ephemeral.stream != user.stream || state.ephemeral_last() != cursor.ephemeral.seen
        {
            return true;
        }
        let rooms = self.rooms.read().expect("rooms poisoned");
        let round = self.round();
        state.rooms.values().any(|m| {
            // A poll keeps its rooms' feeds in memory (eviction.rs): a
            // message to an evicted room would wake nobody here.
            if let Some(feed) = rooms.get(&m.room) {
                feed.used.store(round, std::sync::atomic::Ordering::Relaxed);
            }
            let given = cursor.rooms.get(&m.room).copied();
            let Some((after, upto)) = undelivered(m, given) else {
                return false;
            };
            if upto.is_some() {
                return true;
            }
            match (given, rooms.get(&m.room)) {
                // A room joined since the cursor, or one not loaded yet.
                (None, _) | (_, None) => true,
                (Some(_), Some(feed)) => feed.head() != after,
            }
        })
    }

    /// Everything newer than `cursor` for this user, from memory where the
    /// room caches reach, else from the store; and where the answer's
    /// cursor stands in the ephemeral stream. `came`: when the poll came,
    /// and the rooms it watches.
    async fn collect(
        &self,
        user: &UserFeed,
        cursor: &Cursor,
        (came, watched): (Millis, &[RoomId]),
        to: CursorKey<'_>,
        max_events: usize,
    ) -> ChatResult<(PollAnswer, EphemeralRead)> {
        let max_events = max_events.clamp(1, self.config.max_batch_events);
        let mut bytes = 0;
        let (mut memberships, mut ephemeral, read_at) = {
            let state = user.lock();
            (
                state.rooms.values().copied().collect::<Vec<_>>(),
                state.ephemeral_since(user.stream, cursor.ephemeral, came),
                // Under the lock: every item pushed after it arrived later.
                now_ms(),
            )
        };
        memberships.sort_by_key(|m| m.room);
        let moved = cursor.ephemeral.stream != user.stream;
        if moved
            && !ephemeral.gap
            && !self.heard_rooms_since(user.id, &memberships, watched, cursor)
        {
            ephemeral.gap = true;
            ephemeral.items.clear();
            ephemeral.maybe_seen_until = None;
        }
        let place = StreamPlace {
            stream: user.stream,
            seen: ephemeral.last,
            at: read_at,
        };
        let mut next = Cursor {
            issued_by: self.instance,
            rooms: BTreeMap::new(),
            ephemeral: place,
        };
        let mut events: Vec<Arc<Event>> = Vec::new();
        for m in memberships {
            let given = cursor.rooms.get(&m.room).copied();
            let Some((after, upto)) = undelivered(&m, given) else {
                continue;
            };
            let budget = if bytes >= self.config.max_batch_bytes {
                0
            } else {
                max_events.saturating_sub(events.len())
            };
            let mut got = if budget == 0 {
                Vec::new()
            } else {
                self.events_between(m.room, after, upto, budget).await?
            };
            // Bounded by size too: the rest comes in the next answer,
            // from the position of the last event sent.
            let mut kept = 0;
            for event in &got {
                let size = event.approx_wire_bytes();
                if (kept > 0 || !events.is_empty()) && bytes + size > self.config.max_batch_bytes {
                    break;
                }
                bytes += size;
                kept += 1;
            }
            got.truncate(kept);
            // A room not in the cursor that got nothing yet stays out of
            // it: absent means "from the join", which is still true.
            if let Some(at) = got.last().map(|e| Position::after(e)).or(given) {
                next.rooms.insert(m.room, at);
            }
            events.extend(got);
        }
        let mut items = ephemeral.items;
        items.retain(|item| !item.is_stale(read_at));
        let answer = PollAnswer {
            events,
            ephemeral: items,
            cursor: next.encode(to),
            ephemeral_gap: ephemeral.gap,
        };
        let read = EphemeralRead {
            place,
            maybe_seen_until: ephemeral.maybe_seen_until,
        };
        Ok((answer, read))
    }

    /// Whether this node has heard everything of `user`'s rooms for their
    /// ephemeral stream since a moved cursor's time: every room they are
    /// in held here since then, and a big room this poll watches watched
    /// here by them since then (only watchers hear a big room's presence
    /// and typing). Otherwise a moved poll gets a gap.
    fn heard_rooms_since(
        &self,
        user: UserId,
        memberships: &[MembershipRecord],
        watched: &[RoomId],
        cursor: &Cursor,
    ) -> bool {
        let from = cursor
            .ephemeral
            .at
            .saturating_sub(super::user_feed::NODES_APART_MS);
        memberships.iter().filter(|m| m.active).all(|m| {
            let Some(feed) = self.loaded_room(m.room) else {
                return false;
            };
            if feed.loaded_at.load(std::sync::atomic::Ordering::Relaxed) > from {
                return false;
            }
            let mut state = feed.lock();
            if !watched.contains(&m.room) || !self.is_big(state.members.len()) {
                return true;
            }
            state
                .watchers
                .since(user)
                .is_some_and(|since| since <= from)
        })
    }

    /// Events of a room in `(after, upto]`, at most `limit`.
    async fn events_between(
        &self,
        room_id: RoomId,
        after: Seq,
        upto: Option<Seq>,
        limit: usize,
    ) -> ChatResult<Vec<Arc<Event>>> {
        let feed = self.room(room_id).await?;
        match feed.read_after(after, upto, limit) {
            super::room_feed::Read::Events(events) => Ok(events),
            super::room_feed::Read::FromStore => {
                let end = upto.unwrap_or(Seq::MAX).min(feed.head());
                let events = self.store.events_after(room_id, after, limit).await?;
                Ok(events
                    .into_iter()
                    .filter(|e| e.seq <= end)
                    .map(Arc::new)
                    .collect())
            }
            super::room_feed::Read::Ahead => {
                let room = self
                    .store
                    .room(room_id)
                    .await?
                    .ok_or(ChatError::RoomNotFound)?;
                if after > room.head {
                    Err(ChatError::ResyncRequired(
                        "the cursor points past the newest event of a room",
                    ))
                } else {
                    Ok(Vec::new())
                }
            }
        }
    }
}

/// What of a room a cursor has yet to deliver, as `(after, upto)`, under
/// the stream's rule (docs/protocol.md): a room the cursor holds continues
/// from its position, so a leave and a rejoin since leave no hole; a room
/// it does not hold starts at the user's join. A room the user left is
/// delivered up to their leave, and only when the cursor holds it.
fn undelivered(m: &MembershipRecord, given: Option<Position>) -> Option<(Seq, Option<Seq>)> {
    let after = given.map_or(m.since_seq - 1, |at| at.seq);
    if m.active {
        Some((after, None))
    } else if given.is_some() && after < m.changed_seq {
        Some((after, Some(m.changed_seq)))
    } else {
        None
    }
}
