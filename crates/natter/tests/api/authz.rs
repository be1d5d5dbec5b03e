//! Nobody reaches what is not theirs.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{Client, TestServer, assert_error};

/// Every endpoint that needs a session, with a body where it takes one.
fn protected(room: i64) -> Vec<(&'static str, String, Option<serde_json::Value>)> {
    vec![
        ("GET", "/api/v1/me".into(), None),
        (
            "PATCH",
            "/api/v1/me".into(),
            Some(json!({"display_name": "x"})),
        ),
        ("GET", "/api/v1/users/1".into(), None),
        ("DELETE", "/api/v1/sessions/current".into(), None),
        ("GET", "/api/v1/rooms".into(), None),
        ("POST", "/api/v1/rooms".into(), Some(json!({"title": "t"}))),
        ("GET", "/api/v1/rooms/public".into(), None),
        ("GET", format!("/api/v1/rooms/{room}"), None),
        (
            "PATCH",
            format!("/api/v1/rooms/{room}"),
            Some(json!({"title": "t"})),
        ),
        ("POST", format!("/api/v1/rooms/{room}/join"), None),
        ("POST", format!("/api/v1/rooms/{room}/leave"), None),
        ("GET", format!("/api/v1/rooms/{room}/members"), None),
        (
            "POST",
            format!("/api/v1/rooms/{room}/members"),
            Some(json!({"user_id": 1})),
        ),
        ("GET", format!("/api/v1/rooms/{room}/messages"), None),
        (
            "POST",
            format!("/api/v1/rooms/{room}/messages"),
            Some(json!({"client_msg_id": "x", "text": "x"})),
        ),
        (
            "POST",
            format!("/api/v1/rooms/{room}/read"),
            Some(json!({"seq": 1})),
        ),
        ("POST", "/api/v1/direct".into(), Some(json!({"user_id": 1}))),
        ("GET", "/api/v1/events".into(), None),
    ]
}

async fn call(
    client: &Client,
    method: &str,
    path: &str,
    body: &Option<serde_json::Value>,
) -> crate::common::Reply {
    let url = format!("{}{path}", client.base);
    let mut rb = client.http.request(method.parse().unwrap(), url);
    if let Some(b) = body {
        rb = rb.json(b);
    }
    client.send_raw(rb).await
}

#[tokio::test]
async fn no_or_bad_token_is_401() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let room = alice.create_room("r", "public").await;
    let anon = server.client();
    let mut forged = server.client();
    forged.token = Some("not-a-real-token".into());
    for (method, path, body) in protected(room) {
        assert_error(
            &call(&anon, method, &path, &body).await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        );
        assert_error(
            &call(&forged, method, &path, &body).await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        );
    }
    let mut raw = server.client();
    raw.token = None;
    let reply = raw
        .send_raw(
            raw.http
                .get(format!("{}/api/v1/me", server.base))
                .header("Authorization", "Basic YTpi"),
        )
        .await;
    assert_error(&reply, StatusCode::UNAUTHORIZED, "unauthenticated");
}

#[tokio::test]
async fn a_logged_out_token_is_401_everywhere() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let room = alice.create_room("r", "public").await;
    alice.delete("/api/v1/sessions/current").await;
    for (method, path, body) in protected(room) {
        assert_error(
            &call(&alice, method, &path, &body).await,
            StatusCode::UNAUTHORIZED,
            "session_ended",
        );
    }
}

#[tokio::test]
async fn non_members_cannot_read_write_or_list() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let mallory = server.user("mallory").await;
    let public = alice.create_room("open", "public").await;
    let private = alice.create_room("closed", "private").await;
    for room in [public, private] {
        alice.say(room, "secret", "only for members").await;
    }
    for (room, status, code) in [
        (public, StatusCode::FORBIDDEN, "not_a_member"),
        (private, StatusCode::NOT_FOUND, "room_not_found"),
    ] {
        assert_error(
            &mallory.get(&format!("/api/v1/rooms/{room}/messages")).await,
            status,
            code,
        );
        assert_error(
            &mallory
                .post(
                    &format!("/api/v1/rooms/{room}/messages"),
                    json!({"client_msg_id": "m", "text": "hi"}),
                )
                .await,
            status,
            code,
        );
        assert_error(
            &mallory.get(&format!("/api/v1/rooms/{room}/members")).await,
            status,
            code,
        );
        assert_error(
            &mallory
                .post(&format!("/api/v1/rooms/{room}/read"), json!({"seq": 1}))
                .await,
            status,
            code,
        );
        assert_error(
            &mallory
                .post(
                    &format!("/api/v1/rooms/{room}/members"),
                    json!({"user_id": mallory.user_id}),
                )
                .await,
            status,
            code,
        );
    }
    // Nothing of either room reaches Mallory's event stream, even with a
    // cursor forged to include them.
    let cursor = mallory.cursor().await;
    let (_, body) = mallory.poll(&cursor, 0).await;
    assert_eq!(body["events"], json!([]));
    let (_, rooms) = mallory.get("/api/v1/rooms").await;
    assert_eq!(rooms["rooms"], json!([]));
    // Nothing was stored by the refused sends.
    let (_, history) = alice.get(&format!("/api/v1/rooms/{public}/messages")).await;
    let texts: Vec<_> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["type"] == "message")
        .collect();
    assert_eq!(texts.len(), 1);
}

#[tokio::test]
async fn unknown_rooms_are_404() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    for path in [
        "/api/v1/rooms/999/messages",
        "/api/v1/rooms/999/members",
        "/api/v1/rooms/999",
    ] {
        assert_error(
            &alice.get(path).await,
            StatusCode::NOT_FOUND,
            "room_not_found",
        );
    }
    let reply = alice
        .post(
            "/api/v1/rooms/999/messages",
            json!({"client_msg_id": "m", "text": "hi"}),
        )
        .await;
    assert_error(&reply, StatusCode::NOT_FOUND, "room_not_found");
    assert_error(
        &alice.post("/api/v1/rooms/999/join", json!({})).await,
        StatusCode::NOT_FOUND,
        "room_not_found",
    );
}
