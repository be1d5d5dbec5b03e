//! What tells people where to look, besides the messages themselves:
//! typing notices, "Seen" in direct conversations, and each member's
//! choice of which messages of a room notify them. None of it is a room
//! event: typing and receipts are ephemeral (the hub pushes them and
//! forgets them), and a notification choice is the member's own setting.

use super::{Caller, Chat, Limit};
use crate::error::ChatResult;
use crate::hub::RoomFeed;
use crate::model::{Ephemeral, NotifyLevel, RoomId, RoomKind, Seq, UserId};

impl Chat {
    /// The caller started (`typing`) or stopped typing in a room they
    /// are in; returns whether the room was told (see hub/typing.rs for
    /// what holds a notice back).
    pub async fn typing(&self, caller: &Caller, room: RoomId, typing: bool) -> ChatResult<bool> {
        self.limits.by_user(Limit::Typing, caller.user).await?;
        let (feed, _) = self.membership(caller, room).await?;
        Ok(self.hub.typing(&feed, caller.user, typing))
    }

    /// Tells the other person of a direct conversation how far `reader`
    /// has read, unless the server keeps read receipts private.
    pub(super) fn send_read_receipt(&self, feed: &RoomFeed, reader: UserId, seq: Seq) {
        if !self.config.read_receipts || !feed.is_direct() {
            return;
        }
        for other in feed.member_ids().into_iter().filter(|m| *m != reader) {
            self.hub.push_ephemeral(
                other,
                Ephemeral::ReadReceipt {
                    room: feed.id,
                    user: reader,
                    seq,
                },
            );
        }
    }

    /// Records which messages of a room notify the caller (`None`: the
    /// default for the room's kind) and tells all their sessions;
    /// returns the level now in force.
    pub async fn set_notifications(
        &self,
        caller: &Caller,
        room: RoomId,
        level: Option<NotifyLevel>,
    ) -> ChatResult<NotifyLevel> {
        self.limits.by_user(Limit::RoomChange, caller.user).await?;
        let (feed, _) = self.membership(caller, room).await?;
        self.store.set_notify(room, caller.user, level).await?;
        let kind = if feed.is_direct() {
            RoomKind::Direct
        } else {
            RoomKind::Group
        };
        let level = NotifyLevel::effective(level, kind);
        self.hub
            .push_ephemeral(caller.user, Ephemeral::Notifications { room, level });
        Ok(level)
    }
}
