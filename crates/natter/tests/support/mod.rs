//! Set-up shared by the tests that drive the chat service directly
//! (tests/lossy_bus.rs, tests/eviction.rs): a node on a given store and
//! bus, and a writer and a reader in one room.

// Each test crate that includes this uses a part of it.
#![allow(dead_code)]

use std::sync::Arc;

use natter::bus::Bus;
use natter::chat::{Caller, Chat, ChatConfig, RateLimits};
use natter::hub::HubConfig;
use natter::model::{Event, EventBody, Room, Visibility};
use natter::store::Store;

/// A node on `store` and `bus`, with `hub` settings and no rate limits.
pub fn node(store: Arc<dyn Store>, bus: Arc<dyn Bus>, hub: HubConfig) -> Arc<Chat> {
    Chat::new(
        store,
        bus,
        hub,
        ChatConfig {
            limits: RateLimits::off(),
            ..ChatConfig::default()
        },
    )
}

/// A writer and a reader, both signed in, in one public room, and a
/// cursor of the reader's at the room's head.
pub struct TwoInARoom {
    pub writer: Caller,
    pub reader: Caller,
    /// The writer's session token, to sign in on another node.
    pub writer_token: String,
    pub room: Room,
    pub cursor: String,
}

/// Registers "writer" and "reader" on `chat`, the writer makes the room
/// `title` and the reader joins it.
pub async fn two_in_a_room(chat: &Chat, title: &str) -> TwoInARoom {
    let here = natter::source::Source::of(std::net::Ipv4Addr::LOCALHOST.into());
    for name in ["writer", "reader"] {
        chat.register(here, name, "password-1", None, None)
            .await
            .unwrap();
    }
    let writer_token = chat
        .login(here, "writer", "password-1")
        .await
        .unwrap()
        .token;
    let reader_token = chat
        .login(here, "reader", "password-1")
        .await
        .unwrap()
        .token;
    let writer = chat.authenticate(&writer_token).await.unwrap();
    let reader = chat.authenticate(&reader_token).await.unwrap();
    let room = chat
        .create_room(&writer, title, Visibility::Public)
        .await
        .unwrap();
    chat.join(&reader, room.id).await.unwrap();
    let cursor = chat
        .poll(&reader, None, Some(0), None, None)
        .await
        .unwrap()
        .cursor;
    TwoInARoom {
        writer,
        reader,
        writer_token,
        room,
        cursor,
    }
}

/// The texts of the message events among `events`.
pub fn message_texts(events: &[Arc<Event>]) -> Vec<&str> {
    events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::Message { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}
