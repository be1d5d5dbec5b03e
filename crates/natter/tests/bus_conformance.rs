//! The bus conformance suite (`natter::bus::conformance`) on the
//! in-process bus, and on Redis with two nodes of one deployment on a
//! channel of their own (`NATTER_TEST_REDIS`, default
//! `redis://127.0.0.1:6379`; without it the Redis test says it skipped,
//! except under `CI=true`, where it fails).

use std::sync::Arc;
use std::time::Duration;

use natter::bus::Bus;
use natter::bus::local::LocalBus;
use natter::bus::redis::RedisBus;

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
    let a: Arc<dyn Bus> = RedisBus::start(&url, channel.clone()).unwrap();
    let b: Arc<dyn Bus> = RedisBus::start(&url, channel).unwrap();
    // Both subscribed before the first message.
    tokio::time::sleep(Duration::from_millis(500)).await;
    natter::bus::conformance::run_all(vec![a, b]).await;
}
