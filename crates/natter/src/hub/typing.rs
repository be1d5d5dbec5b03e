//! Typing notices: "Li Lei is typing…". Ephemeral like presence: never
//! stored, pushed into the streams of the room's other members, and
//! dropped from any answer once they are stale.
//!
//! What one room can cost is bounded whatever its clients do: a typer is
//! announced at most once per [`RENEW_AFTER`] (clients renew every 3 s
//! while typing), and at most [`MAX_TYPERS`] people are announced as
//! typing in one room at a time, so a room of a thousand people all
//! typing fans out no more than a room of ten. A client shows a notice
//! until it expires, until a "stopped" notice, or until a message of the
//! typer's newer than the notice arrives (each notice carries the room's
//! head when it was announced, since a poll answer may bring both).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{Hub, RoomFeed};
use crate::model::{Ephemeral, Millis, UserId, now_ms};

/// How long a notice stands without being renewed.
pub const TYPING_TTL: Duration = Duration::from_secs(6);

/// A typer's next notice within this is not announced again.
pub const RENEW_AFTER: Duration = Duration::from_secs(2);

/// People announced as typing in one room at once.
pub const MAX_TYPERS: usize = 10;

/// Who a room has announced as typing, and when.
#[derive(Default)]
pub(super) struct Typers {
    announced: HashMap<UserId, Instant>,
}

impl Typers {
    /// Whether `user`'s "typing" notice at `now` is to be announced.
    fn start(&mut self, user: UserId, now: Instant) -> bool {
        self.announced
            .retain(|_, at| now.duration_since(*at) < TYPING_TTL);
        match self.announced.get(&user) {
            Some(at) if now.duration_since(*at) < RENEW_AFTER => false,
            None if self.announced.len() >= MAX_TYPERS => false,
            _ => {
                self.announced.insert(user, now);
                true
            }
        }
    }

    /// Whether `user`'s "stopped" notice is news to the room.
    fn stop(&mut self, user: UserId, now: Instant) -> bool {
        self.announced
            .remove(&user)
            .is_some_and(|at| now.duration_since(at) < TYPING_TTL)
    }

    /// Another node announced `user`'s notice: the room here counts it
    /// too, so a renewal or a stop that lands here, and the cap, see the
    /// typers of the whole cluster.
    fn heard(&mut self, user: UserId, typing: bool, now: Instant) {
        if typing {
            self.announced.insert(user, now);
        } else {
            self.announced.remove(&user);
        }
    }

    /// The typer's message arrived: clients clear its notice themselves.
    pub fn forget(&mut self, user: UserId) {
        self.announced.remove(&user);
    }
}

impl Ephemeral {
    /// A typing notice past its time; it is left out of answers.
    pub(super) fn is_stale(&self, now: Millis) -> bool {
        matches!(self, Ephemeral::Typing { expires_at, .. } if *expires_at <= now)
    }

    /// Items of which only the newest means anything: a typing notice of
    /// one person in one room, a room's online count.
    pub(super) fn supersedes_older(&self) -> bool {
        matches!(
            self,
            Ephemeral::Typing { .. } | Ephemeral::RoomOnline { .. }
        )
    }

    /// Whether this item makes `older` pointless.
    pub(super) fn replaces(&self, older: &Ephemeral) -> bool {
        match (self, older) {
            (
                Ephemeral::Typing { room, user, .. },
                Ephemeral::Typing {
                    room: r, user: u, ..
                },
            ) => room == r && user == u,
            (Ephemeral::RoomOnline { room, .. }, Ephemeral::RoomOnline { room: r, .. }) => {
                room == r
            }
            _ => false,
        }
    }
}

impl Hub {
    /// Announces that `user` started (`typing`) or stopped typing in the
    /// room of `feed` to its other members, unless the limits above hold
    /// it back; returns whether it was announced.
    pub fn typing(&self, feed: &RoomFeed, user: UserId, typing: bool) -> bool {
        let now = Instant::now();
        let (audience, head) = {
            let mut state = feed.lock();
            let news = if typing {
                state.typers.start(user, now)
            } else {
                state.typers.stop(user, now)
            };
            if !news {
                return false;
            }
            // A big room tells only those looking at it (watching.rs).
            let (mut audience, _) = self.presence_audience(&mut state);
            audience.retain(|m| *m != user);
            (audience, state.head)
        };
        let item = Arc::new(Ephemeral::Typing {
            room: feed.id,
            user,
            typing,
            seq: head,
            expires_at: now_ms() + TYPING_TTL.as_millis() as Millis,
        });
        self.tell_peers_typing(&item);
        self.push_typing_here(audience, item);
        true
    }

    /// Another node's typing notice, from the bus: to those here who hear
    /// the room's presence and typing (its loaded members, or a big
    /// room's watchers). The throttle and the cap ran on the typist's
    /// node; the room here notes the typer, for the next notice that
    /// lands here.
    pub fn peer_typing(&self, item: Ephemeral) {
        let Ephemeral::Typing {
            room, user, typing, ..
        } = item
        else {
            return;
        };
        let Some(feed) = self.loaded_room(room) else {
            return;
        };
        let mut audience = {
            let mut state = feed.lock();
            state.typers.heard(user, typing, Instant::now());
            self.presence_audience(&mut state).0
        };
        audience.retain(|m| *m != user);
        self.push_typing_here(audience, Arc::new(item));
    }

    fn push_typing_here(&self, audience: Vec<UserId>, item: Arc<Ephemeral>) {
        for target in self.loaded_users(audience) {
            target
                .lock()
                .push_ephemeral(item.clone(), self.config.ephemeral_cap);
            if target.has_waiters() {
                target.wake();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::Instant;

    use super::{MAX_TYPERS, RENEW_AFTER, TYPING_TTL, Typers};
    use crate::model::UserId;

    #[test]
    fn a_typer_is_announced_once_per_renewal_period() {
        let mut typers = Typers::default();
        let t0 = Instant::now();
        assert!(typers.start(UserId(1), t0));
        assert!(!typers.start(UserId(1), t0 + Duration::from_millis(500)));
        assert!(typers.start(UserId(1), t0 + RENEW_AFTER));
        assert!(typers.stop(UserId(1), t0 + RENEW_AFTER));
        // Stopping twice, or after the notice expired, is no news.
        assert!(!typers.stop(UserId(1), t0 + RENEW_AFTER));
        assert!(typers.start(UserId(2), t0));
        assert!(!typers.stop(UserId(2), t0 + TYPING_TTL));
    }

    #[test]
    fn a_room_announces_a_bounded_number_of_typers() {
        let mut typers = Typers::default();
        let t0 = Instant::now();
        for i in 0..MAX_TYPERS as i64 {
            assert!(typers.start(UserId(i), t0));
        }
        assert!(!typers.start(UserId(99), t0));
        // Those announced are still renewed; room frees up as they stop
        // or expire.
        assert!(typers.start(UserId(0), t0 + RENEW_AFTER));
        assert!(typers.stop(UserId(1), t0 + RENEW_AFTER));
        assert!(typers.start(UserId(99), t0 + RENEW_AFTER));
        assert!(typers.start(UserId(100), t0 + TYPING_TTL + RENEW_AFTER));
    }
}
