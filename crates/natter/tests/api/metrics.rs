//! Prometheus metrics: behind a token on the main listener, or open on a
//! listener of their own; never served by default.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{TestServer, assert_error};

const TOKEN: &str = "metrics-token-for-tests-0123456789abcdef";

/// The value of the first sample line that starts with `name`.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no sample {name} in:\n{text}"))
}

async fn scrape(url: &str, token: Option<&str>) -> (StatusCode, String) {
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

#[tokio::test]
async fn metrics_are_not_served_without_a_token_or_their_own_listener() {
    let server = TestServer::start().await;
    let reply = server.client().get("/metrics").await;
    assert_error(&reply, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn metrics_behind_a_token_count_polls_sends_deliveries_errors_and_limits() {
    let server = TestServer::start_with(|c| {
        c.metrics_token = Some(TOKEN.into());
        c.chat.limits.sends_per_user = Some("1/h burst 2".parse().unwrap());
    })
    .await;
    let url = format!("{}/metrics", server.base);
    let (status, body) = scrape(&url, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body.contains("metrics_token_invalid"));
    assert_eq!(
        scrape(&url, Some("wrong")).await.0,
        StatusCode::UNAUTHORIZED
    );

    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let room = alice.create_room("r", "public").await;
    bob.join(room).await;
    let cursor = bob.cursor().await;
    let parked = bob.parked_poll(&cursor, 30).await;
    let (_, during) = scrape(&url, Some(TOKEN)).await;
    assert_eq!(sample(&during, "natter_polls_waiting"), 1.0, "{during}");
    assert!(sample(&during, "natter_connections_open") >= 1.0);
    alice.say(room, "m1", "hello").await;
    let (status, _) = tokio::time::timeout(Duration::from_secs(5), parked)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    alice.say(room, "m2", "again").await;
    let limited = alice
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            json!({"client_msg_id": "m3", "text": "too many"}),
        )
        .await;
    assert_error(&limited, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    alice.get("/api/v1/rooms/999").await;

    let (status, text) = scrape(&url, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sample(&text, "natter_polls_waiting"), 0.0);
    assert_eq!(sample(&text, "natter_sends_total"), 2.0);
    assert!(sample(&text, "natter_deliveries_total") >= 1.0);
    assert!(sample(&text, "natter_delivery_latency_seconds_count") >= 1.0);
    assert_eq!(sample(&text, "natter_send_ack_latency_seconds_count"), 2.0);
    assert!(sample(&text, "natter_store_commit_latency_seconds_count") >= 2.0);
    assert_eq!(
        sample(&text, "natter_rate_limited_total{limit=\"send\"}"),
        1.0
    );
    assert_eq!(
        sample(&text, "natter_errors_total{code=\"rate_limited\"}"),
        1.0
    );
    assert_eq!(
        sample(&text, "natter_errors_total{code=\"room_not_found\"}"),
        1.0
    );
}

#[tokio::test]
async fn metrics_on_their_own_listener_need_no_token() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let server = TestServer::start_with(|c| c.metrics_listen = Some(addr)).await;
    server.user("alice").await;
    let mut answer = None;
    for _ in 0..50 {
        if let Ok(response) = reqwest::get(format!("http://{addr}/metrics")).await {
            answer = Some((response.status(), response.text().await.unwrap()));
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, text) = answer.expect("the metrics listener answers");
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("natter_polls_waiting"), "{text}");
    // And not on the main listener, which has no token configured.
    assert_eq!(
        server.client().get("/metrics").await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn feed_gauges_follow_what_the_node_holds_and_evicts() {
    let server = TestServer::start_with(|c| {
        c.metrics_token = Some(TOKEN.into());
        c.hub.evict_idle_after = Some(Duration::from_millis(500));
    })
    .await;
    let url = format!("{}/metrics", server.base);
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let room = alice.create_room("r", "public").await;
    bob.join(room).await;
    alice.say(room, "m1", "hello").await;
    bob.cursor().await;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let feeds = |text: &str| {
        (
            sample(text, "natter_user_feeds"),
            sample(text, "natter_room_feeds"),
        )
    };
    loop {
        let (_, text) = scrape(&url, Some(TOKEN)).await;
        let (users, rooms) = feeds(&text);
        // Bob's poll loaded his feed and the room's.
        if users >= 1.0 && rooms >= 1.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never counted: {users} user feeds, {rooms} room feeds"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Nobody uses them any more: after the presence grace and ten idle
    // rounds they go, and the gauges say so.
    loop {
        let (_, text) = scrape(&url, Some(TOKEN)).await;
        if feeds(&text) == (0.0, 0.0) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still counted: {:?}",
            feeds(&text)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn poll_answers_are_counted_by_why_they_answered() {
    let server = TestServer::start_with(|c| {
        c.metrics_token = Some(TOKEN.into());
        c.hub.big_room_members = 2;
    })
    .await;
    let url = format!("{}/metrics", server.base);
    let answers = |text: &str, why: &str| {
        sample(text, &format!("natter_poll_answers_total{{why=\"{why}\"}}"))
    };
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    // Three members: above the threshold of 2, a big room.
    let room = alice.create_room("lobby", "public").await;
    bob.join(room).await;
    carol.join(room).await;

    let cursor = bob.cursor().await;
    let (_, text) = scrape(&url, Some(TOKEN)).await;
    assert_eq!(answers(&text, "fresh"), 1.0, "{text}");
    assert_eq!(answers(&text, "events"), 0.0);

    // Nothing happens: the poll answers empty at its timeout.
    let (status, body) = bob.poll(&cursor, 1).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["events"].as_array().unwrap().is_empty(), "{body}");
    let cursor = body["cursor"].as_str().unwrap().to_owned();

    // Dave joins: quiet news for Bob, who does not watch the big room,
    // so his poll holds it to its end.
    let dave = server.user("dave").await;
    dave.join(room).await;
    let (status, body) = bob.poll(&cursor, 1).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["events"].as_array().unwrap().len(), 1, "{body}");
    let cursor = body["cursor"].as_str().unwrap().to_owned();

    // Erin joins, and Bob's poll holds that until a message comes: it
    // answers with both at once.
    server.user("erin").await.join(room).await;
    let parked = bob.parked_poll(&cursor, 30).await;
    alice.say(room, "m1", "hello").await;
    let (status, body) = tokio::time::timeout(Duration::from_secs(5), parked)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["events"].as_array().unwrap().len(), 2, "{body}");
    let cursor = body["cursor"].as_str().unwrap().to_owned();
    // Three events reached Bob; only the message is timed: the joins
    // were held on purpose, no slow delivery.
    let (_, text) = scrape(&url, Some(TOKEN)).await;
    assert_eq!(sample(&text, "natter_deliveries_total"), 3.0, "{text}");
    assert_eq!(
        sample(&text, "natter_delivery_latency_seconds_count"),
        1.0,
        "{text}"
    );

    // Bob looks at the room; Alice comes online: an answer of items only.
    let watching = {
        let (bob, cursor) = (bob.clone(), cursor.clone());
        tokio::spawn(async move {
            bob.get(&format!(
                "/api/v1/events?cursor={cursor}&timeout=30&watch={room}"
            ))
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let alice_cursor = alice.cursor().await;
    let online = alice.parked_poll(&alice_cursor, 1).await;
    let (status, body) = tokio::time::timeout(Duration::from_secs(5), watching)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["events"].as_array().unwrap().is_empty(), "{body}");
    assert!(!body["ephemeral"].as_array().unwrap().is_empty(), "{body}");
    online.await.unwrap();

    let (_, text) = scrape(&url, Some(TOKEN)).await;
    // Alice's first poll took a fresh cursor, her second ended empty.
    assert_eq!(answers(&text, "fresh"), 2.0, "{text}");
    assert_eq!(answers(&text, "empty"), 2.0, "{text}");
    assert_eq!(answers(&text, "held"), 1.0, "{text}");
    assert_eq!(answers(&text, "events"), 1.0, "{text}");
    assert_eq!(answers(&text, "items"), 1.0, "{text}");
}
