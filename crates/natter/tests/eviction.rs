//! Idle feeds leave memory and come back from the store when used again
//! (hub/eviction.rs). Drives the chat service directly, to count what the
//! hub holds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use natter::bus::local::LocalBus;
use natter::hub::HubConfig;
use natter::store::sqlite::SqliteStore;

mod support;
use support::TwoInARoom;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_feeds_are_evicted_and_a_returning_client_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let bus = Arc::new(LocalBus::new());
    let node = || {
        support::node(
            store.clone(),
            bus.clone(),
            HubConfig {
                evict_idle_after: Some(Duration::from_millis(300)),
                presence_grace: Duration::from_millis(100),
                ..HubConfig::default()
            },
        )
    };
    let chat = node();
    let TwoInARoom {
        writer,
        reader,
        writer_token,
        room,
        ..
    } = support::two_in_a_room(&chat, "idle").await;
    chat.send(&writer, room.id, "before", "before the idle time", None)
        .await
        .unwrap();
    let cursor = chat
        .poll(&reader, None, Some(0), None, None)
        .await
        .unwrap()
        .cursor;
    let (users, rooms) = chat.feeds_held();
    assert!(
        users >= 1 && rooms >= 1,
        "loaded: {users} users, {rooms} rooms"
    );

    // Nobody uses them: they go.
    let deadline = Instant::now() + Duration::from_secs(5);
    while chat.feeds_held() != (0, 0) {
        assert!(
            Instant::now() < deadline,
            "still held: {:?}",
            chat.feeds_held()
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
    assert_eq!(
        support::message_texts(&answer.events),
        ["after the idle time"]
    );
    let (users, rooms) = chat.feeds_held();
    assert!(
        users >= 1 && rooms >= 1,
        "loaded again: {users} users, {rooms} rooms"
    );

    // A poll parked far longer than the idle time keeps its room: a
    // message sent through another node (a second hub on the same store
    // and bus, which has to wake the parked poll through its room) still
    // wakes it at once.
    let other = node();
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
