//! Messages: send (idempotent, optionally as a reply), edit, delete,
//! react, read one or a page of history as it stands now, mark read, and
//! the long poll that delivers everything new.
//!
//! Each change is checked here (who may, whether the message is still
//! there) and again by the store as it writes, then goes through the
//! store's one write path ([`Chat::append`]) as a room event of its own.

use std::sync::Arc;
use std::time::Duration;

use super::{Caller, Chat, Limit, invalid};
use crate::error::{ChatError, ChatResult};
use crate::hub::{MAX_WATCHED, PollAnswer};
use crate::model::{
    Current, Ephemeral, Event, EventBody, Millis, Role, RoomId, Seq, UserId, now_ms,
};
use crate::store::{Action, HistoryPage};
use crate::text::{ClientMsgId, MessageText, ReactionText};

/// A sent message, shared with the hub that delivers it.
pub struct Sent {
    pub event: Arc<Event>,
    /// True when the client message id was used before: nothing new was stored.
    pub duplicate: bool,
}

/// A message after an edit, a deletion or a reaction.
pub struct Changed {
    /// As it stands now.
    pub message: Current,
    /// False when the call changed nothing (the same text again, a
    /// reaction already there): no event was appended.
    pub changed: bool,
}

/// What the checks of a change need to know of its message.
struct Target {
    sender: UserId,
    at: Millis,
    deleted: bool,
}

/// The largest history page.
pub const MAX_PAGE: usize = 100;

impl Chat {
    /// Sends a message, optionally as a reply to the message at
    /// `reply_to`. It is acknowledged (this returns `Ok`) only after it is
    /// committed; a retry with the same client message id returns the
    /// stored message and stores nothing.
    pub async fn send(
        &self,
        caller: &Caller,
        room: RoomId,
        client_msg_id: &str,
        text: &str,
        reply_to: Option<Seq>,
    ) -> ChatResult<Sent> {
        let started = std::time::Instant::now();
        let text = MessageText::parse(text, self.config.max_message_chars)?;
        let client_msg_id = ClientMsgId::parse(client_msg_id)?;
        self.limits.by_user(Limit::Send, caller.user).await?;
        // Also loads the room's feed before the write, so the event lands in it.
        self.membership(caller, room).await?;
        let action = Action::Send {
            client_msg_id: client_msg_id.into_string(),
            text: text.into_string(),
            reply_to,
        };
        let written = self.append(room, caller.user, action).await?;
        let event = written
            .event
            .ok_or_else(|| ChatError::Internal("a send stored nothing".into()))?;
        if written.new {
            self.metrics.sends.inc();
        }
        self.metrics
            .send_ack_latency
            .observe(started.elapsed().as_secs_f64());
        Ok(Sent {
            event,
            duplicate: !written.new,
        })
    }

    /// Gives the caller's own message a new text. The same text again
    /// changes nothing.
    pub async fn edit(
        &self,
        caller: &Caller,
        room: RoomId,
        seq: Seq,
        text: &str,
    ) -> ChatResult<Changed> {
        let text = MessageText::parse(text, self.config.max_message_chars)?;
        self.limits.by_user(Limit::Send, caller.user).await?;
        let (target, _) = self.target(caller, room, seq).await?;
        if target.deleted {
            return Err(ChatError::MessageDeleted);
        }
        if target.sender != caller.user {
            return Err(ChatError::NotAllowed("only its sender can edit a message"));
        }
        let sent_after = self
            .config
            .edit_window
            .map(|w| now_ms() - w.as_millis() as i64);
        if sent_after.is_some_and(|after| target.at < after) {
            return Err(ChatError::EditWindowClosed);
        }
        let action = Action::Edit {
            target: seq,
            text: text.into_string(),
            sent_after,
        };
        self.change(caller, room, action).await
    }

    /// Deletes a message: the caller's own, or any in a room they own or
    /// administer. Its text leaves the store; deleting it again changes
    /// nothing.
    pub async fn delete_message(
        &self,
        caller: &Caller,
        room: RoomId,
        seq: Seq,
    ) -> ChatResult<Changed> {
        self.limits.by_user(Limit::Send, caller.user).await?;
        let (target, role) = self.target(caller, room, seq).await?;
        if target.sender != caller.user && !role.can_manage() {
            return Err(ChatError::NotAllowed(
                "only its sender or the room's owner and admins can delete a message",
            ));
        }
        // Deleted already: the store answers with the message, unchanged.
        self.change(caller, room, Action::Delete { target: seq })
            .await
    }

    /// Adds (`add`) or takes back the caller's reaction to a message;
    /// asking for what is already so changes nothing.
    pub async fn react(
        &self,
        caller: &Caller,
        room: RoomId,
        seq: Seq,
        reaction: &str,
        add: bool,
    ) -> ChatResult<Changed> {
        let reaction = ReactionText::parse(reaction)?.into_string();
        self.limits.by_user(Limit::Send, caller.user).await?;
        if self.target(caller, room, seq).await?.0.deleted {
            return Err(ChatError::MessageDeleted);
        }
        let action = if add {
            Action::React {
                target: seq,
                reaction,
            }
        } else {
            Action::Unreact {
                target: seq,
                reaction,
            }
        };
        self.change(caller, room, action).await
    }

    /// One message of a room the caller is in, as it stands now.
    pub async fn message(&self, caller: &Caller, room: RoomId, seq: Seq) -> ChatResult<Current> {
        self.membership(caller, room).await?;
        self.store
            .message(room, seq)
            .await?
            .ok_or(ChatError::MessageNotFound)
    }

    /// What the checks of a change need of the message at `seq`, and the
    /// caller's role in its room. The room's cache in memory has recent
    /// messages (a deleted one there is already redacted); older ones are
    /// read from the store. The store checks all of it again as it writes.
    async fn target(&self, caller: &Caller, room: RoomId, seq: Seq) -> ChatResult<(Target, Role)> {
        let (feed, role) = self.membership(caller, room).await?;
        let cached = feed.cached_event(seq);
        let event = match cached {
            Some(event) => (*event).clone(),
            None => {
                self.store
                    .message(room, seq)
                    .await?
                    .ok_or(ChatError::MessageNotFound)?
                    .event
            }
        };
        match event.body {
            EventBody::Message { redacted, .. } => Ok((
                Target {
                    sender: event.sender,
                    at: event.at,
                    deleted: redacted,
                },
                role,
            )),
            _ => Err(ChatError::MessageNotFound),
        }
    }

    /// Appends a change to a message; answers with the message after it.
    async fn change(&self, caller: &Caller, room: RoomId, action: Action) -> ChatResult<Changed> {
        let written = self.append(room, caller.user, action).await?;
        let message = written.message.ok_or(ChatError::MessageNotFound)?;
        Ok(Changed {
            message,
            changed: written.new,
        })
    }

    /// A page of a room's history before `before` (or the newest), oldest
    /// first, messages as they stand now.
    pub async fn history(
        &self,
        caller: &Caller,
        room: RoomId,
        before: Option<Seq>,
        limit: Option<usize>,
    ) -> ChatResult<HistoryPage> {
        let limit = limit.unwrap_or(50);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(invalid(
                "invalid_limit",
                format!("limit must be 1..={MAX_PAGE}"),
            ));
        }
        if before.is_some_and(|b| b < 1) {
            return Err(invalid(
                "invalid_before",
                "before must be a positive sequence number".into(),
            ));
        }
        self.limits.by_user(Limit::History, caller.user).await?;
        self.membership(caller, room).await?;
        Ok(self.store.history(room, before, limit).await?)
    }

    /// Moves the caller's read marker forward; echoed to their other sessions.
    pub async fn mark_read(&self, caller: &Caller, room: RoomId, seq: Seq) -> ChatResult<Seq> {
        if seq < 0 {
            return Err(invalid("invalid_seq", "seq must not be negative".into()));
        }
        self.limits.by_user(Limit::ReadMarker, caller.user).await?;
        let (feed, _) = self.membership(caller, room).await?;
        let read = self.store.set_read(room, caller.user, seq).await?;
        self.hub
            .push_ephemeral(caller.user, Ephemeral::Read { room, seq: read });
        self.send_read_receipt(&feed, caller.user, read);
        Ok(read)
    }

    /// The long poll over all of the caller's conversations.
    pub async fn poll(
        &self,
        caller: &Caller,
        cursor: Option<&str>,
        timeout_secs: Option<u64>,
        max_events: Option<usize>,
        watch: Option<&str>,
    ) -> ChatResult<PollAnswer> {
        let watch = watched_rooms(watch.unwrap_or(""))?;
        let most = self.hub.max_batch_events();
        let max_events = match max_events {
            None => most,
            Some(n) if (1..=most).contains(&n) => n,
            Some(_) => {
                return Err(invalid(
                    "invalid_limit",
                    format!("limit must be 1..={most}"),
                ));
            }
        };
        let max = self.config.max_poll_timeout;
        let timeout = match timeout_secs {
            None => self.config.default_poll_timeout,
            Some(s) if Duration::from_secs(s) <= max => Duration::from_secs(s),
            Some(_) => {
                return Err(invalid(
                    "invalid_timeout",
                    format!("timeout must be 0..={} seconds", max.as_secs()),
                ));
            }
        };
        self.hub
            .poll(
                caller.user,
                caller.session,
                cursor,
                timeout,
                max_events,
                &watch,
            )
            .await
    }
}

/// The rooms a poll's `watch` names: up to `MAX_WATCHED` ids, comma
/// separated, each spelt one way (no sign, no leading zero).
fn watched_rooms(text: &str) -> ChatResult<Vec<RoomId>> {
    let refuse = || {
        invalid(
            "invalid_watch",
            format!("watch must be up to {MAX_WATCHED} room ids, comma separated"),
        )
    };
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let ids = text
        .split(',')
        .map(|id| {
            let canonical = !id.is_empty()
                && id.len() <= 18
                && id.bytes().all(|b| b.is_ascii_digit())
                && !id.starts_with('0');
            canonical
                .then(|| id.parse().ok().map(RoomId))
                .flatten()
                .ok_or_else(refuse)
        })
        .collect::<ChatResult<Vec<RoomId>>>()?;
    if ids.len() > MAX_WATCHED {
        return Err(refuse());
    }
    Ok(ids)
}
