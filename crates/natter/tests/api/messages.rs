//! Sending, idempotent retries and history.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{TestServer, assert_error};

#[tokio::test]
async fn send_is_idempotent_per_client_message_id() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let room = alice.create_room("r", "private").await;

    let first = alice
        .say(room, "c-1", "hello :smile: [微笑] 😀\nsecond line")
        .await;
    assert_eq!(first["type"], "message");
    assert_eq!(
        first["text"], "hello :smile: [微笑] 😀\nsecond line",
        "kept as typed"
    );
    assert_eq!(first["sender_id"], alice.user_id);
    assert_eq!(first["sender_name"], "alice");
    assert!(first["ts"].as_i64().unwrap() > 1_600_000_000_000);

    let (status, retry) = alice
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            json!({"client_msg_id": "c-1", "text": "hello :smile: [微笑] 😀\nsecond line"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(retry["duplicate"], true);
    assert_eq!(retry["message"]["seq"], first["seq"]);

    let conflict = alice
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            json!({"client_msg_id": "c-1", "text": "something else"}),
        )
        .await;
    assert_error(&conflict, StatusCode::CONFLICT, "client_msg_id_conflict");

    let (_, history) = alice.get(&format!("/api/v1/rooms/{room}/messages")).await;
    let messages: Vec<_> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["type"] == "message")
        .collect();
    assert_eq!(messages.len(), 1, "a retry never stores a second message");
}

#[tokio::test]
async fn history_pages_backwards_in_order() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let room = alice.create_room("r", "private").await;
    for i in 0..120 {
        alice
            .say(room, &format!("m{i}"), &format!("message {i}"))
            .await;
    }
    // seq 1 is room_created; messages are seq 2..=121.
    let mut seen = Vec::new();
    let mut before: Option<i64> = None;
    loop {
        let path = match before {
            Some(b) => format!("/api/v1/rooms/{room}/messages?before={b}&limit=50"),
            None => format!("/api/v1/rooms/{room}/messages?limit=50"),
        };
        let (status, page) = alice.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let events = page["messages"].as_array().unwrap();
        let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
        assert!(
            seqs.windows(2).all(|w| w[1] == w[0] + 1),
            "a page is ascending and gapless"
        );
        seen.splice(0..0, seqs.iter().copied());
        if !page["has_more"].as_bool().unwrap() {
            break;
        }
        before = seqs.first().copied();
    }
    assert_eq!(seen, (1..=121).collect::<Vec<_>>());

    for bad in [
        "limit=0",
        "limit=101",
        "limit=-1",
        "limit=abc",
        "before=0",
        "before=-5",
        "before=x",
    ] {
        let reply = alice
            .get(&format!("/api/v1/rooms/{room}/messages?{bad}"))
            .await;
        assert_eq!(reply.0, StatusCode::BAD_REQUEST, "{bad}: {}", reply.1);
        assert!(reply.1["error"]["code"].is_string());
    }
}

#[tokio::test]
async fn message_length_limit_is_configurable() {
    let server = TestServer::start_with(|c| c.chat.max_message_chars = 10).await;
    let alice = server.user("alice").await;
    let room = alice.create_room("r", "private").await;
    alice.say(room, "ok", "微笑微笑微笑微笑微笑").await; // 10 characters, 30 bytes
    let reply = alice
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            json!({"client_msg_id": "long", "text": "12345678901"}),
        )
        .await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "text_too_long");
}
