//! Idle feeds leave memory and come back from the store when used again
//! (hub/eviction.rs). Drives the chat service directly, to count what the
//! hub holds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use natter::bus::local::LocalBus;
use natter::chat::{Chat, ChatConfig};
use natter::hub::HubConfig;
use natter::model::{EventBody, Visibility};
use natter::store::sqlite::SqliteStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_feeds_are_evicted_and_a_returning_client_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let bus = Arc::new(LocalBus::new());
    let node = || {
        Chat::new(
            store.clone(),
            bus.clone(),
            HubConfig {
                evict_idle_after: Some(Duration::from_millis(300)),
                presence_grace: Duration::from_millis(100),
                ..HubConfig::default()
            },
            ChatConfig {
                limits: natter::chat::RateLimits::off(),
                ..ChatConfig::default()
            },
        )
    };
    let chat = node();
    let here = natter::source::Source::of(std::net::Ipv4Addr::LOCALHOST.into());
    for name in ["writer", "reader"] {
        chat.register(here, name, "password-1", None, None)
            .await
            .unwrap();
    }
    let writer = chat.login(here, "writer", "password-1").await.unwrap();
    let reader = chat.login(here, "reader", "password-1").await.unwrap();
    let writer = chat.authenticate(&writer.token).await.unwrap();
    let reader = chat.authenticate(&reader.token).await.unwrap();
    let room = chat
        .create_room(&writer, "idle", Visibility::Public)
        .await
        .unwrap();
    chat.join(&reader, room.id).await.unwrap();
    chat.send(&writer, room.id, "before", "before the idle time", None)
        .await
        .unwrap();
    let cursor = chat
        .poll(&reader, None, Some(0), None, None)
        .await
        .unwrap()
        .cursor;
    let (users, rooms) = chat.hub().feeds_held();
    assert!(
        users >= 1 && rooms >= 1,
        "loaded: {users} users, {rooms} rooms"
    );

    // Nobody uses them: they go.
    let deadline = Instant::now() + Duration::from_secs(5);
    while chat.hub().feeds_held() != (0, 0) {
        assert!(
            Instant::now() < deadline,
            "still held: {:?}",
            chat.hub().feeds_held()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The reader comes back with the cursor from before: what was sent
    // meanwhile arrives, read from the store.
    chat.send(&writer, room.id, "after", "after the idle time", None)
        .await
        .unwrap();
    let answer = chat
        .poll(&reader, Some(&cursor), Some(5), None, None)
        .await
        .unwrap();
    let texts: Vec<&str> = answer
        .events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::Message { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(texts, ["after the idle time"]);
    let (users, rooms) = chat.hub().feeds_held();
    assert!(
        users >= 1 && rooms >= 1,
        "loaded again: {users} users, {rooms} rooms"
    );

    // A poll parked far longer than the idle time keeps its room: a
    // message sent through another node (a second hub on the same store
    // and bus, which has to wake the parked poll through its room) still
    // wakes it at once.
    let other = node();
    let writer_token = chat
        .login(here, "writer", "password-1")
        .await
        .unwrap()
        .token;
    let writer = other.authenticate(&writer_token).await.unwrap();
    let cursor = answer.cursor;
    let waiting = {
        let chat = chat.clone();
        tokio::spawn(async move {
            chat.poll(&reader, Some(&cursor), Some(10), None, None)
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let sent = Instant::now();
    other
        .send(&writer, room.id, "parked", "to a parked poll", None)
        .await
        .unwrap();
    let answer = waiting.await.unwrap().unwrap();
    assert_eq!(answer.events.len(), 1);
    assert!(
        sent.elapsed() < Duration::from_secs(1),
        "{:?}",
        sent.elapsed()
    );
}
