//! The bus may lose messages; delivery must stay exact. A node that sees a
//! room's sequence jump reads the gap from the store (DESIGN.md, "Shape of
//! the system"). This drives the chat service directly over a bus that
//! drops every third room event and checks that a waiting reader still
//! gets every message once, in order; and over one that loses the last
//! message before a silence, which only the hub's head checks find.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use natter::bus::local::LocalBus;
use natter::bus::{Bus, BusMessage, BusSink};
use natter::chat::{Chat, ChatConfig};
use natter::hub::HubConfig;
use natter::model::{EventBody, Visibility};
use natter::store::sqlite::SqliteStore;

mod support;
use support::TwoInARoom;

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

/// Loses every room event while `losing` is set, and says it can (as
/// Redis pub/sub can) if `says_lossy`, so the hub checks the store's heads.
struct SilentBus {
    inner: LocalBus,
    losing: AtomicBool,
    says_lossy: bool,
}

impl Bus for SilentBus {
    fn publish(&self, message: BusMessage) {
        if matches!(message, BusMessage::RoomEvent(_)) && self.losing.load(Ordering::Relaxed) {
            return;
        }
        self.inner.publish(message);
    }

    fn subscribe(&self, sink: Weak<dyn BusSink>) {
        self.inner.subscribe(sink);
    }

    fn lossy(&self) -> bool {
        self.says_lossy
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_message_before_a_silence_arrives_though_the_bus_lost_it() {
    let dir = tempfile::tempdir().unwrap();
    let bus = Arc::new(SilentBus {
        inner: LocalBus::new(),
        losing: AtomicBool::new(false),
        says_lossy: true,
    });
    let chat = support::node(
        Arc::new(SqliteStore::open(dir.path()).unwrap()),
        bus.clone(),
        HubConfig {
            head_check_interval: Duration::from_millis(200),
            ..HubConfig::default()
        },
    );
    let TwoInARoom {
        writer,
        reader,
        room,
        cursor,
        ..
    } = support::two_in_a_room(&chat, "silent").await;

    // The reader waits; the one message sent is lost on the bus, and
    // nothing comes after it.
    let waiting = {
        let chat = chat.clone();
        tokio::spawn(async move {
            chat.poll(&reader, Some(&cursor), Some(10), None, None)
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    bus.losing.store(true, Ordering::Relaxed);
    let sent_at = Instant::now();
    chat.send(&writer, room.id, "lost", "lost on the bus", None)
        .await
        .unwrap();
    let answer = waiting.await.unwrap().unwrap();
    assert_eq!(support::message_texts(&answer.events), ["lost on the bus"]);
    assert!(
        sent_at.elapsed() < Duration::from_secs(2),
        "found by a head check within two of its intervals and a bit: {:?}",
        sent_at.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_send_announces_what_its_first_try_committed_unannounced() {
    // The first try commits, but its announcement never arrives (as when
    // the connection broke during COMMIT and the client got a 503); no
    // head checks run. The client's retry with the same id is a replay,
    // and announces the message.
    let dir = tempfile::tempdir().unwrap();
    let bus = Arc::new(SilentBus {
        inner: LocalBus::new(),
        losing: AtomicBool::new(false),
        says_lossy: false,
    });
    let chat = support::node(
        Arc::new(SqliteStore::open(dir.path()).unwrap()),
        bus.clone(),
        HubConfig::default(),
    );
    let TwoInARoom {
        writer,
        reader,
        room,
        cursor,
        ..
    } = support::two_in_a_room(&chat, "retried").await;
    let waiting = {
        let chat = chat.clone();
        tokio::spawn(async move { chat.poll(&reader, Some(&cursor), Some(5), None, None).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    bus.losing.store(true, Ordering::Relaxed);
    chat.send(&writer, room.id, "once", "committed, unannounced", None)
        .await
        .unwrap();
    bus.losing.store(false, Ordering::Relaxed);
    let started = Instant::now();
    chat.send(&writer, room.id, "once", "committed, unannounced", None)
        .await
        .unwrap();
    let answer = waiting.await.unwrap().unwrap();
    assert_eq!(
        support::message_texts(&answer.events),
        ["committed, unannounced"]
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

/// Loses every announcement that sessions ended, as a node whose Redis
/// subscription was down at the time would; says it is lossy, so nodes
/// recheck their cached sessions.
struct NoEndingsBus {
    inner: LocalBus,
}

impl Bus for NoEndingsBus {
    fn publish(&self, message: BusMessage) {
        if !matches!(message, BusMessage::SessionsEnded { .. }) {
            self.inner.publish(message);
        }
    }

    fn subscribe(&self, sink: Weak<dyn BusSink>) {
        self.inner.subscribe(sink);
    }

    fn lossy(&self) -> bool {
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_missed_a_logout_ends_the_session_at_its_next_recheck() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn natter::store::Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let bus = Arc::new(NoEndingsBus {
        inner: LocalBus::new(),
    });
    let node = || {
        Chat::new(
            store.clone(),
            bus.clone(),
            HubConfig::default(),
            ChatConfig {
                limits: natter::chat::RateLimits::off(),
                session_recheck: Duration::from_millis(200),
                ..ChatConfig::default()
            },
        )
    };
    let (a, b) = (node(), node());
    let TwoInARoom {
        writer,
        writer_token,
        ..
    } = support::two_in_a_room(&a, "endings").await;

    // Node B knows the session (cached) and holds a poll of it.
    assert_eq!(b.authenticate(&writer_token).await.unwrap(), writer);
    let cursor = b
        .poll(&writer, None, Some(0), None, None)
        .await
        .unwrap()
        .cursor;
    let parked = {
        let b = b.clone();
        tokio::spawn(async move { b.poll(&writer, Some(&cursor), Some(30), None, None).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;

    // The logout on node A never reaches B over the bus.
    let logged_out = Instant::now();
    a.logout(&writer).await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(5), parked)
        .await
        .expect("the poll on B ends at B's next recheck")
        .unwrap();
    assert!(
        matches!(
            ended,
            Err(natter::chat::ChatError::SessionEnded(
                natter::model::EndReason::LoggedOut
            ))
        ),
        "{:?}",
        ended.map(|a| a.cursor)
    );
    assert!(
        matches!(
            b.authenticate(&writer_token).await,
            Err(natter::chat::ChatError::SessionEnded(_))
        ),
        "and B refuses the token"
    );
    assert!(
        logged_out.elapsed() < Duration::from_secs(2),
        "within about one recheck: {:?}",
        logged_out.elapsed()
    );
}
