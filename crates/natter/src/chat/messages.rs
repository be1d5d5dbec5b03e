//! Messages: send (idempotent), page back through history, mark read, and
//! the long poll that delivers everything new.

use std::sync::Arc;
use std::time::Duration;

use super::{Caller, Chat, Limit};
use crate::bus::BusMessage;
use crate::error::{ChatError, ChatResult};
use crate::hub::PollAnswer;
use crate::model::{Ephemeral, Event, RoomId, Seq, now_ms};
use crate::store::NewMessage;
use crate::text::{ClientMsgId, Invalid, MessageText};

/// A sent message, shared with the hub that delivers it.
pub struct Sent {
    pub event: Arc<Event>,
    /// True when the client message id was used before: nothing new was stored.
    pub duplicate: bool,
}

/// The largest history page.
pub const MAX_PAGE: usize = 100;

impl Chat {
    /// Sends a message. It is acknowledged (this returns `Ok`) only after
    /// it is committed; a retry with the same client message id returns
    /// the stored message and stores nothing.
    pub async fn send(
        &self,
        caller: &Caller,
        room: RoomId,
        client_msg_id: &str,
        text: &str,
    ) -> ChatResult<Sent> {
        let started = std::time::Instant::now();
        let text = MessageText::parse(text, self.config.max_message_chars)?;
        let client_msg_id = ClientMsgId::parse(client_msg_id)?;
        self.limits.by_user(Limit::Send, caller.user)?;
        // Also loads the room's feed before the write, so the event lands in it.
        self.membership(caller, room).await?;
        let message = NewMessage {
            room,
            sender: caller.user,
            sender_name: self.display_name(caller.user).await?,
            client_msg_id: client_msg_id.into_string(),
            text: text.into_string(),
            at: now_ms(),
        };
        let store = self.store.clone();
        let sent = self
            .commit(async move {
                let appended = store.append_message(message).await?;
                let event = Arc::new(appended.event);
                let announce = if appended.duplicate {
                    Vec::new()
                } else {
                    vec![BusMessage::RoomEvent(event.clone())]
                };
                let sent = Sent {
                    event,
                    duplicate: appended.duplicate,
                };
                Ok((sent, announce))
            })
            .await?;
        if !sent.duplicate {
            self.metrics.sends.inc();
        }
        self.metrics
            .send_ack_latency
            .observe(started.elapsed().as_secs_f64());
        Ok(sent)
    }

    /// A page of a room's events before `before` (or the newest), oldest
    /// first.
    pub async fn history(
        &self,
        caller: &Caller,
        room: RoomId,
        before: Option<Seq>,
        limit: Option<usize>,
    ) -> ChatResult<Vec<Event>> {
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
        self.limits.by_user(Limit::History, caller.user)?;
        self.membership(caller, room).await?;
        Ok(self.store.events_before(room, before, limit).await?)
    }

    /// Moves the caller's read marker forward; echoed to their other sessions.
    pub async fn mark_read(&self, caller: &Caller, room: RoomId, seq: Seq) -> ChatResult<Seq> {
        if seq < 0 {
            return Err(invalid("invalid_seq", "seq must not be negative".into()));
        }
        self.limits.by_user(Limit::ReadMarker, caller.user)?;
        self.membership(caller, room).await?;
        let read = self.store.set_read(room, caller.user, seq).await?;
        self.hub
            .push_ephemeral(caller.user, Ephemeral::Read { room, seq: read });
        Ok(read)
    }

    /// The long poll over all of the caller's conversations.
    pub async fn poll(
        &self,
        caller: &Caller,
        cursor: Option<&str>,
        timeout_secs: Option<u64>,
        max_events: Option<usize>,
    ) -> ChatResult<PollAnswer> {
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
            .poll(caller.user, caller.session, cursor, timeout, max_events)
            .await
    }
}

fn invalid(code: &'static str, message: String) -> ChatError {
    Invalid { code, message }.into()
}
