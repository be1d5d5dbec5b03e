//! The bus conformance suite (`natter::bus::conformance`) on the
//! in-process bus, and on Redis with two nodes of one deployment on a
//! channel of their own (`NATTER_TEST_REDIS`, default
//! `redis://127.0.0.1:6379`; without it the Redis tests say they skipped,
//! except under `CI=true`, where they fail); and what the Redis bus
//! promises beyond the suite, for the heartbeat.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use natter::bus::conformance::event;
use natter::bus::local::LocalBus;
use natter::bus::redis::{BusTls, RedisBus};
use natter::bus::{Bus, BusMessage, BusSink};
use natter::model::UserId;

#[path = "support/proxy.rs"]
mod proxy;
#[path = "support/services.rs"]
mod services;

#[tokio::test]
async fn the_in_process_bus_passes_the_bus_conformance_suite() {
    natter::bus::conformance::run_all(vec![Arc::new(LocalBus::new())]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_passes_the_bus_conformance_suite() {
    let Some(url) = services::redis_url("redis_passes_the_bus_conformance_suite").await else {
        return;
    };
    let channel = format!("natter:test-{:016x}:bus", rand::random::<u64>());
    let a: Arc<dyn Bus> = RedisBus::start(&url, &BusTls::default(), channel.clone()).unwrap();
    let b: Arc<dyn Bus> = RedisBus::start(&url, &BusTls::default(), channel).unwrap();
    // Both subscribed before the first message.
    tokio::time::sleep(Duration::from_millis(500)).await;
    natter::bus::conformance::run_all(vec![a, b]).await;
}

/// What a node heard from the bus, in order.
#[derive(Default)]
struct Heard(Mutex<Vec<BusMessage>>);

impl BusSink for Heard {
    fn deliver(&self, message: &BusMessage) {
        self.0.lock().unwrap().push(message.clone());
    }
}

/// A node whose Redis stops answering for a while queues everything it
/// publishes meanwhile, and past its outbox turns messages away; the
/// store repairs those, but its heartbeat must not be one of them, nor
/// wait behind the backlog, or the other nodes take it for dead and its
/// users for offline (hub/cluster.rs). Once Redis answers, the heartbeat
/// goes in the first pipeline or the one after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_goes_ahead_of_a_backlog_and_past_a_full_outbox() {
    let test = "a_heartbeat_goes_ahead_of_a_backlog_and_past_a_full_outbox";
    let Some(url) = services::redis_url(test).await else {
        return;
    };
    let address = services::redis_address(&url);
    let (through, frozen) = proxy::freezable_proxy(address.clone()).await;
    let channel = format!("natter:test-{:016x}:bus", rand::random::<u64>());
    let slow = RedisBus::start(
        &url.replacen(&address, &through, 1),
        &BusTls::default(),
        channel.clone(),
    )
    .unwrap();
    let other = RedisBus::start(&url, &BusTls::default(), channel).unwrap();
    let heard = Arc::new(Heard::default());
    let sink: Arc<dyn BusSink> = heard.clone();
    other.subscribe(Arc::downgrade(&sink));
    tokio::time::sleep(Duration::from_millis(500)).await;

    frozen.send_replace(true);
    // More than the outbox (10,000) and a pipeline in flight (256) hold.
    let sent = 12_000;
    for seq in 1..=sent {
        slow.publish(BusMessage::RoomEvent(event(seq)));
    }
    slow.publish(BusMessage::NodeAlive {
        node: 42,
        online: vec![UserId(3), UserId(4)],
        polls: vec![(UserId(3), 1)],
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    frozen.send_replace(false);

    let deadline = Instant::now() + Duration::from_secs(20);
    let events_before = loop {
        {
            let got = heard.0.lock().unwrap();
            if let Some(at) = got
                .iter()
                .position(|m| matches!(m, BusMessage::NodeAlive { .. }))
            {
                break got[..at]
                    .iter()
                    .filter(|m| matches!(m, BusMessage::RoomEvent(_)))
                    .count();
            }
        }
        assert!(
            Instant::now() < deadline,
            "the heartbeat never came (the other node heard {} messages)",
            heard.0.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        events_before <= 2 * 256,
        "the heartbeat came after {events_before} of the backlog's room events"
    );
    // The backlog follows, short of what the full outbox turned away.
    let room_events = || {
        heard
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|m| matches!(m, BusMessage::RoomEvent(_)))
            .count()
    };
    while room_events() < 10_000 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events = room_events();
    assert!(
        (10_000..sent as usize).contains(&events),
        "the other node heard {events} of {sent} room events"
    );
}
