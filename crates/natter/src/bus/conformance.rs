//! What every [`Bus`] must do, as tests that know only the trait, run on
//! the in-process bus and on Redis by `tests/bus_conformance.rs` (the
//! store has its own suite, `store/conformance/`):
//!
//! - a node's own sinks get what it publishes at once, before `publish`
//!   returns, so a send's waiters are woken before the sender is answered;
//! - every node gets every kind of message another publishes, once, in
//!   the order it was published, with every field as it was, except that
//!   a heartbeat ([`BusMessage::NodeAlive`]) may come ahead of what was
//!   published before it: it says the whole state, and must not wait
//!   behind a backlog (bus/redis.rs);
//! - [`BusMessage::Hearing`] never leaves its node.
//!
//! A bus that can lose messages (Redis) passes these on a quiet network:
//! what it loses under faults the store and the head checks repair
//! (`tests/lossy_bus.rs`, `tests/cluster_faults/`).

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use super::{Bus, BusMessage, BusSink};
use crate::model::{
    EncodedOnce, EndReason, Ephemeral, Event, EventBody, NotifyLevel, RoomId, SessionId, UserId,
};

/// A sink that keeps what it gets.
#[derive(Default)]
struct Recorder {
    got: Mutex<Vec<BusMessage>>,
}

impl BusSink for Recorder {
    fn deliver(&self, message: &BusMessage) {
        self.got
            .lock()
            .expect("recorder poisoned")
            .push(message.clone());
    }
}

impl Recorder {
    /// What came since the last call. A bus may say `Hearing` by itself
    /// (its subscription was made): `hearing` keeps or drops those.
    fn taken(&self, hearing: bool) -> Vec<BusMessage> {
        let mut got = std::mem::take(&mut *self.got.lock().expect("recorder poisoned"));
        got.retain(|m| hearing || !matches!(m, BusMessage::Hearing));
        got
    }
}

/// Runs every test on `nodes`, buses of the nodes of one deployment on a
/// fresh channel (for the in-process bus, the one bus: it has one node).
pub async fn run_all(nodes: Vec<Arc<dyn Bus>>) {
    let sinks: Vec<Arc<Recorder>> = nodes
        .iter()
        .map(|bus| {
            let sink = Arc::new(Recorder::default());
            let weak: Weak<dyn BusSink> = Arc::downgrade(&(sink.clone() as Arc<dyn BusSink>));
            bus.subscribe(weak);
            sink
        })
        .collect();
    own_messages_arrive_before_publish_returns(&nodes, &sinks);
    every_node_gets_every_kind_once_in_order(&nodes, &sinks).await;
    hearing_stays_home(&nodes, &sinks).await;
}

/// Message `seq` of room 7 (replying to the one before), as the suite
/// sends them; the Redis bus's own tests send these too.
pub fn event(seq: i64) -> Arc<Event> {
    Arc::new(Event {
        room: RoomId(7),
        seq,
        at: 1_767_225_600_000 + seq,
        sender: UserId(3),
        sender_name: "李雷".into(),
        body: EventBody::Message {
            client_msg_id: format!("c-{seq}"),
            text: format!("第 {seq} 条 [微笑]"),
            reply_to: (seq > 1).then_some(seq - 1),
            redacted: false,
        },
        encoded: EncodedOnce::default(),
    })
}

/// One message of every kind that travels between nodes, then a run of
/// room events.
fn every_kind(node: u64) -> Vec<BusMessage> {
    let mut messages = vec![
        BusMessage::SessionsEnded {
            user: UserId(3),
            sessions: vec![SessionId(11), SessionId(12)],
            reason: EndReason::Replaced,
        },
        BusMessage::ProfileChanged {
            user: UserId(3),
            display_name: "Li Lei".into(),
        },
        BusMessage::Presence {
            node,
            user: UserId(3),
            online: true,
        },
        BusMessage::NodeAlive {
            node,
            online: vec![UserId(3), UserId(4)],
            polls: vec![(UserId(3), 2)],
        },
        BusMessage::Typing {
            node,
            item: Ephemeral::Typing {
                room: RoomId(7),
                user: UserId(3),
                typing: true,
                seq: 41,
                expires_at: 1_767_225_606_000,
            },
        },
        BusMessage::UserItem {
            node,
            user: UserId(3),
            item: Ephemeral::Notifications {
                room: RoomId(7),
                level: NotifyLevel::Mentions,
            },
        },
    ];
    messages.extend((1..=50).map(|seq| BusMessage::RoomEvent(event(seq))));
    messages
}

/// Two messages are the same, an event by its fields (not its cached
/// encoding), the rest as printed.
fn same(a: &BusMessage, b: &BusMessage) -> bool {
    match (a, b) {
        (BusMessage::RoomEvent(a), BusMessage::RoomEvent(b)) => a == b,
        _ => format!("{a:?}") == format!("{b:?}"),
    }
}

fn own_messages_arrive_before_publish_returns(nodes: &[Arc<dyn Bus>], sinks: &[Arc<Recorder>]) {
    sinks[0].taken(false);
    nodes[0].publish(BusMessage::RoomEvent(event(1)));
    let got = sinks[0].taken(false);
    assert!(
        got.len() == 1 && same(&got[0], &BusMessage::RoomEvent(event(1))),
        "the publishing node's sink got {got:?} by the time publish returned"
    );
}

async fn every_node_gets_every_kind_once_in_order(nodes: &[Arc<dyn Bus>], sinks: &[Arc<Recorder>]) {
    // Whatever the last test sent has arrived everywhere by now.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for sink in sinks {
        sink.taken(false);
    }
    let sent = every_kind(42);
    for message in &sent {
        nodes[0].publish(message.clone());
    }
    for (n, sink) in sinks.iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut got = Vec::new();
        while got.len() < sent.len() && Instant::now() < deadline {
            got.extend(sink.taken(false));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Nothing more comes after a moment either: nothing twice.
        tokio::time::sleep(Duration::from_millis(200)).await;
        got.extend(sink.taken(false));
        assert_eq!(
            got.len(),
            sent.len(),
            "node {n} got {} of {}",
            got.len(),
            sent.len()
        );
        // Heartbeats in their own order, everything else in its own.
        let (sent_beats, sent_rest) = heartbeats_apart(&sent);
        let (got_beats, got_rest) = heartbeats_apart(&got);
        for (a, b) in [(sent_beats, got_beats), (sent_rest, got_rest)] {
            assert_eq!(a.len(), b.len(), "node {n}: sent {a:?}, got {b:?}");
            for (i, (a, b)) in a.iter().zip(&b).enumerate() {
                assert!(same(a, b), "node {n}, message {i}: sent {a:?}, got {b:?}");
            }
        }
    }
}

/// The heartbeats of `messages`, and the rest, each in their order.
fn heartbeats_apart(messages: &[BusMessage]) -> (Vec<&BusMessage>, Vec<&BusMessage>) {
    messages
        .iter()
        .partition(|m| matches!(m, BusMessage::NodeAlive { .. }))
}

async fn hearing_stays_home(nodes: &[Arc<dyn Bus>], sinks: &[Arc<Recorder>]) {
    for sink in sinks {
        sink.taken(true);
    }
    nodes[0].publish(BusMessage::Hearing);
    let home = sinks[0].taken(true);
    assert!(
        matches!(home[..], [BusMessage::Hearing]),
        "the node's own sink got {home:?}"
    );
    nodes[0].publish(BusMessage::RoomEvent(event(99)));
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (n, sink) in sinks.iter().enumerate().skip(1) {
        let got = sink.taken(true);
        assert!(
            got.len() == 1 && same(&got[0], &BusMessage::RoomEvent(event(99))),
            "node {n} got {got:?}: Hearing must stay on its node"
        );
    }
}
