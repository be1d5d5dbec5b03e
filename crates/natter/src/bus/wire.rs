//! How a [`BusMessage`] travels between nodes: JSON, with a room event in
//! the same columns the stores keep it in (columns.rs), so the bus,
//! the disk and the API can each change their own format, and a node
//! that reads an event from the bus holds exactly what one reading it
//! from the store would.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::BusMessage;
use crate::columns::{self, Stored};
use crate::model::{
    EncodedOnce, EndReason, Ephemeral, Event, Millis, NotifyLevel, RoomId, Seq, SessionId, UserId,
};

/// One message on the wire, with the node that sent it (a node hears its
/// own messages back from Redis and drops them: it delivered them already).
#[derive(Serialize, Deserialize)]
struct Envelope {
    node: u64,
    #[serde(flatten)]
    message: Wire,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Wire {
    Event {
        room: RoomId,
        seq: Seq,
        at: Millis,
        sender: UserId,
        sender_name: String,
        kind: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target_seq: Option<Seq>,
    },
    SessionsEnded {
        user: UserId,
        sessions: Vec<SessionId>,
        reason: String,
    },
    ProfileChanged {
        user: UserId,
        display_name: String,
    },
    /// `hub`: the hub that flipped (the envelope's `node` is its bus).
    Presence {
        hub: u64,
        user: UserId,
        online: bool,
    },
    NodeAlive {
        hub: u64,
        online: Vec<UserId>,
        /// Absent from nodes of natter before the cluster-wide poll cap.
        #[serde(default)]
        polls: Vec<(UserId, u32)>,
    },
    Typing {
        hub: u64,
        item: Item,
    },
    UserItem {
        hub: u64,
        user: UserId,
        item: Item,
    },
}

/// The ephemeral items that travel between nodes (presence and online
/// counts have messages of their own).
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Item {
    Typing {
        room: RoomId,
        user: UserId,
        typing: bool,
        seq: Seq,
        expires_at: Millis,
    },
    Read {
        room: RoomId,
        seq: Seq,
    },
    ReadReceipt {
        room: RoomId,
        user: UserId,
        seq: Seq,
    },
    Notifications {
        room: RoomId,
        level: NotifyLevel,
    },
}

impl Item {
    fn of(item: &Ephemeral) -> Option<Item> {
        Some(match *item {
            Ephemeral::Typing {
                room,
                user,
                typing,
                seq,
                expires_at,
            } => Item::Typing {
                room,
                user,
                typing,
                seq,
                expires_at,
            },
            Ephemeral::Read { room, seq } => Item::Read { room, seq },
            Ephemeral::ReadReceipt { room, user, seq } => Item::ReadReceipt { room, user, seq },
            Ephemeral::Notifications { room, level } => Item::Notifications { room, level },
            Ephemeral::Presence { .. } | Ephemeral::RoomOnline { .. } => return None,
        })
    }

    fn into_ephemeral(self) -> Ephemeral {
        match self {
            Item::Typing {
                room,
                user,
                typing,
                seq,
                expires_at,
            } => Ephemeral::Typing {
                room,
                user,
                typing,
                seq,
                expires_at,
            },
            Item::Read { room, seq } => Ephemeral::Read { room, seq },
            Item::ReadReceipt { room, user, seq } => Ephemeral::ReadReceipt { room, user, seq },
            Item::Notifications { room, level } => Ephemeral::Notifications { room, level },
        }
    }
}

/// The bytes `node` publishes for `message`; `None` for what does not
/// travel between nodes (an item that has a message of its own).
pub fn encode(node: u64, message: &BusMessage) -> Option<Vec<u8>> {
    let message = match message {
        BusMessage::RoomEvent(event) => {
            let c = columns::columns(&event.body);
            Wire::Event {
                room: event.room,
                seq: event.seq,
                at: event.at,
                sender: event.sender,
                sender_name: event.sender_name.clone(),
                kind: event.body.kind().to_owned(),
                client_msg_id: c.client_msg_id.map(str::to_owned),
                text: c.text.map(str::to_owned),
                data: c.data,
                target_seq: c.target_seq,
            }
        }
        BusMessage::SessionsEnded {
            user,
            sessions,
            reason,
        } => Wire::SessionsEnded {
            user: *user,
            sessions: sessions.clone(),
            reason: reason.as_str().to_owned(),
        },
        BusMessage::ProfileChanged { user, display_name } => Wire::ProfileChanged {
            user: *user,
            display_name: display_name.clone(),
        },
        BusMessage::Presence { node, user, online } => Wire::Presence {
            hub: *node,
            user: *user,
            online: *online,
        },
        BusMessage::NodeAlive {
            node,
            online,
            polls,
        } => Wire::NodeAlive {
            hub: *node,
            online: online.clone(),
            polls: polls.clone(),
        },
        BusMessage::Typing { node, item } => Wire::Typing {
            hub: *node,
            item: Item::of(item)?,
        },
        BusMessage::UserItem { node, user, item } => Wire::UserItem {
            hub: *node,
            user: *user,
            item: Item::of(item)?,
        },
        BusMessage::Hearing => return None,
    };
    Some(serde_json::to_vec(&Envelope { node, message }).expect("a bus message encodes"))
}

/// The node that sent `bytes` and its message; `None` for bytes no natter
/// wrote (another program on the channel, a newer natter's kind).
pub fn decode(bytes: &[u8]) -> Option<(u64, BusMessage)> {
    let Envelope { node, message } = serde_json::from_slice(bytes).ok()?;
    let message = match message {
        Wire::Event {
            room,
            seq,
            at,
            sender,
            sender_name,
            kind,
            client_msg_id,
            text,
            data,
            target_seq,
        } => {
            let body = columns::body(Stored {
                kind,
                client_msg_id,
                text,
                data,
                target_seq,
            })
            .ok()?;
            BusMessage::RoomEvent(Arc::new(Event {
                room,
                seq,
                at,
                sender,
                sender_name,
                body,
                encoded: EncodedOnce::default(),
            }))
        }
        Wire::SessionsEnded {
            user,
            sessions,
            reason,
        } => BusMessage::SessionsEnded {
            user,
            sessions,
            reason: EndReason::parse(&reason),
        },
        Wire::ProfileChanged { user, display_name } => {
            BusMessage::ProfileChanged { user, display_name }
        }
        Wire::Presence { hub, user, online } => BusMessage::Presence {
            node: hub,
            user,
            online,
        },
        Wire::NodeAlive { hub, online, polls } => BusMessage::NodeAlive {
            node: hub,
            online,
            polls,
        },
        Wire::Typing { hub, item } => BusMessage::Typing {
            node: hub,
            item: item.into_ephemeral(),
        },
        Wire::UserItem { hub, user, item } => BusMessage::UserItem {
            node: hub,
            user,
            item: item.into_ephemeral(),
        },
    };
    Some((node, message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EventBody, Role};

    fn event(body: EventBody) -> Arc<Event> {
        Arc::new(Event {
            room: RoomId(7),
            seq: 42,
            at: 1_767_225_600_000,
            sender: UserId(3),
            sender_name: "李雷".into(),
            body,
            encoded: EncodedOnce::default(),
        })
    }

    #[test]
    fn every_kind_of_message_comes_back_as_it_went() {
        let bodies = [
            EventBody::Message {
                client_msg_id: "c-1".into(),
                text: "你好 [微笑]\n\u{1F600}".into(),
                reply_to: Some(40),
                redacted: false,
            },
            EventBody::MessageEdited {
                target: 40,
                text: "edited".into(),
            },
            EventBody::MessageDeleted { target: 40 },
            EventBody::ReactionAdded {
                target: 40,
                reaction: "👍".into(),
            },
            EventBody::MemberJoined {
                user: UserId(9),
                name: "韩梅梅".into(),
                role: Role::Member,
                invited_by: Some(UserId(3)),
            },
            EventBody::MemberLeft { user: UserId(9) },
        ];
        for body in bodies {
            let sent = event(body);
            let bytes = encode(5, &BusMessage::RoomEvent(sent.clone())).unwrap();
            let Some((5, BusMessage::RoomEvent(got))) = decode(&bytes) else {
                panic!("{}", String::from_utf8_lossy(&bytes));
            };
            assert_eq!(*got, *sent);
        }
        let ended = BusMessage::SessionsEnded {
            user: UserId(3),
            sessions: vec![SessionId(11), SessionId(12)],
            reason: EndReason::Replaced,
        };
        let Some((
            1,
            BusMessage::SessionsEnded {
                user,
                sessions,
                reason,
            },
        )) = decode(&encode(1, &ended).unwrap())
        else {
            panic!("sessions ended did not come back");
        };
        assert_eq!(
            (user, sessions, reason),
            (
                UserId(3),
                vec![SessionId(11), SessionId(12)],
                EndReason::Replaced
            )
        );
        let renamed = BusMessage::ProfileChanged {
            user: UserId(3),
            display_name: "Li Lei".into(),
        };
        let Some((1, BusMessage::ProfileChanged { user, display_name })) =
            decode(&encode(1, &renamed).unwrap())
        else {
            panic!("a profile change did not come back");
        };
        assert_eq!((user, display_name.as_str()), (UserId(3), "Li Lei"));
    }

    #[test]
    fn ephemeral_items_for_other_nodes_come_back_and_the_rest_stay_home() {
        let items = [
            Ephemeral::Typing {
                room: RoomId(7),
                user: UserId(3),
                typing: true,
                seq: 41,
                expires_at: 1_767_225_606_000,
            },
            Ephemeral::Read {
                room: RoomId(7),
                seq: 42,
            },
            Ephemeral::ReadReceipt {
                room: RoomId(9),
                user: UserId(3),
                seq: 42,
            },
            Ephemeral::Notifications {
                room: RoomId(7),
                level: NotifyLevel::Mentions,
            },
        ];
        for item in items {
            let sent = BusMessage::UserItem {
                node: 4,
                user: UserId(3),
                item: item.clone(),
            };
            let Some((
                1,
                BusMessage::UserItem {
                    node,
                    user,
                    item: got,
                },
            )) = decode(&encode(1, &sent).unwrap())
            else {
                panic!("{item:?} did not come back");
            };
            assert_eq!((node, user, got), (4, UserId(3), item));
        }
        let presence = BusMessage::UserItem {
            node: 4,
            user: UserId(3),
            item: Ephemeral::Presence {
                user: UserId(5),
                online: true,
            },
        };
        assert!(encode(1, &presence).is_none());
    }

    #[test]
    fn bytes_natter_did_not_write_are_ignored() {
        assert!(decode(b"hello").is_none());
        assert!(decode(br#"{"node":1,"type":"teleport"}"#).is_none());
        assert!(decode(br#"{"node":1,"type":"event","room":1,"seq":1,"at":0,"sender":1,"sender_name":"a","kind":"message_edited"}"#).is_none());
    }
}
