//! The bus may lose messages; delivery must stay exact. A node that sees a
//! room's sequence jump reads the gap from the store (DESIGN.md, "Shape of
//! the system"). This drives the chat service directly over a bus that
//! drops every third room event and checks that a waiting reader still
//! gets every message once, in order.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use natter::bus::local::LocalBus;
use natter::bus::{Bus, BusMessage, BusSink};
use natter::chat::{Chat, ChatConfig};
use natter::hub::HubConfig;
use natter::model::{EventBody, Visibility};
use natter::store::sqlite::SqliteStore;

/// Drops every `n`-th room event; everything else passes through.
struct LossyBus {
    inner: LocalBus,
    every: u64,
    seen: AtomicU64,
    dropped: AtomicU64,
}

impl Bus for LossyBus {
    fn publish(&self, message: BusMessage) {
        if matches!(message, BusMessage::RoomEvent(_))
            && self.seen.fetch_add(1, Ordering::Relaxed) % self.every == self.every - 1
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.inner.publish(message);
    }

    fn subscribe(&self, sink: Weak<dyn BusSink>) {
        self.inner.subscribe(sink);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lossy_bus_still_delivers_every_message_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let bus = Arc::new(LossyBus {
        inner: LocalBus::new(),
        every: 3,
        seen: AtomicU64::new(0),
        dropped: AtomicU64::new(0),
    });
    let chat = Chat::new(
        store,
        bus.clone(),
        HubConfig::default(),
        ChatConfig {
            limits: natter::chat::RateLimits::off(),
            ..ChatConfig::default()
        },
    );

    let here = natter::source::Source::of(std::net::Ipv4Addr::LOCALHOST.into());
    chat.register(here, "writer", "password-1", None, None)
        .await
        .unwrap();
    chat.register(here, "reader", "password-1", None, None)
        .await
        .unwrap();
    let writer = chat.login(here, "writer", "password-1").await.unwrap();
    let reader = chat.login(here, "reader", "password-1").await.unwrap();
    let writer = chat.authenticate(&writer.token).await.unwrap();
    let reader = chat.authenticate(&reader.token).await.unwrap();
    let room = chat
        .create_room(&writer, "lossy", Visibility::Public)
        .await
        .unwrap();
    chat.join(&reader, room.id).await.unwrap();

    let start = chat
        .poll(&reader, None, Some(0), None, None)
        .await
        .unwrap()
        .cursor;
    // Room events so far: room_created, member_joined; then message n is
    // event n + 2, dropped when n % 3 == 0. The last one (n = 299) gets
    // through: a gap is only noticed when a later event arrives.
    const MESSAGES: usize = 300;
    let sender = {
        let chat = chat.clone();
        tokio::spawn(async move {
            for n in 0..MESSAGES {
                chat.send(
                    &writer,
                    room.id,
                    &format!("m{n}"),
                    &format!("message {n}"),
                    None,
                )
                .await
                .unwrap();
            }
        })
    };

    let mut cursor = start;
    let mut texts = Vec::new();
    let mut seqs = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while texts.len() < MESSAGES {
        assert!(
            Instant::now() < deadline,
            "only {} of {MESSAGES} arrived",
            texts.len()
        );
        let answer = chat
            .poll(&reader, Some(&cursor), Some(5), None, None)
            .await
            .unwrap();
        for event in &answer.events {
            seqs.push(event.seq);
            if let EventBody::Message { text, .. } = &event.body {
                texts.push(text.clone());
            }
        }
        cursor = answer.cursor;
    }
    sender.await.unwrap();

    assert!(
        bus.dropped.load(Ordering::Relaxed) >= 90,
        "the bus must really drop"
    );
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "gapless, no duplicates"
    );
    let expected: Vec<String> = (0..MESSAGES).map(|n| format!("message {n}")).collect();
    assert_eq!(texts, expected, "every message once, in order");
}
