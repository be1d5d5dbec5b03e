//! Health, the OpenAPI document, and small protocol details.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::TestServer;

#[tokio::test]
async fn health_and_openapi() {
    let server = TestServer::start().await;
    let anon = server.client();
    let (status, body) = anon.get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");

    let (status, doc) = anon.get("/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/users", &["post"][..]),
        ("/users/{id}", &["get"]),
        ("/users/{id}/avatar.svg", &["get"]),
        ("/sessions", &["post"]),
        ("/sessions/current", &["delete"]),
        ("/me", &["get", "patch"]),
        ("/rooms", &["get", "post"]),
        ("/rooms/public", &["get"]),
        ("/rooms/{id}", &["get", "patch"]),
        ("/rooms/{id}/join", &["post"]),
        ("/rooms/{id}/leave", &["post"]),
        ("/rooms/{id}/members", &["get", "post"]),
        ("/rooms/{id}/messages", &["get", "post"]),
        ("/rooms/{id}/read", &["post"]),
        ("/direct", &["post"]),
        ("/events", &["get"]),
    ] {
        let full = format!("/api/v1{path}");
        let entry = paths
            .get(&full)
            .or_else(|| paths.get(path))
            .unwrap_or_else(|| panic!("{full} is not documented"));
        for m in methods {
            assert!(entry.get(*m).is_some(), "{m} {full} is not documented");
        }
    }
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let token = alice.token.clone().unwrap();
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let reply = alice
            .send_raw(
                reqwest::Client::new()
                    .get(format!("{}/api/v1/me", server.base))
                    .header("Authorization", format!("{scheme} {token}")),
            )
            .await;
        assert_eq!(reply.0, StatusCode::OK, "{scheme}");
    }
}

#[tokio::test]
async fn rejoining_starts_unread_counts_at_the_join_and_no_op_edits_announce_nothing() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let room = alice.create_room("r", "public").await;
    bob.join(room).await;
    bob.post(&format!("/api/v1/rooms/{room}/leave"), json!({}))
        .await;
    alice.say(room, "while-away", "bob is away").await;
    bob.join(room).await;
    let (_, list) = bob.get("/api/v1/rooms").await;
    assert_eq!(list["rooms"][0]["unread_count"], 0);

    let (_, before) = alice.get(&format!("/api/v1/rooms/{room}")).await;
    let (status, _) = alice
        .patch(&format!("/api/v1/rooms/{room}"), json!({"title": "r"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, after) = alice.get(&format!("/api/v1/rooms/{room}")).await;
    assert_eq!(before["room"]["head_seq"], after["room"]["head_seq"]);
}
