//! Bad input gets a clear 4xx JSON error and changes nothing.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{Client, TestServer, assert_error};

async fn raw_post(
    client: &Client,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> crate::common::Reply {
    let mut rb = client
        .http
        .post(format!("{}{path}", client.base))
        .body(body);
    if let Some(ct) = content_type {
        rb = rb.header("Content-Type", ct);
    }
    client.send_raw(rb).await
}

async fn message_count(client: &Client, room: i64) -> usize {
    let (_, history) = client
        .get(&format!("/api/v1/rooms/{room}/messages?limit=100"))
        .await;
    history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["type"] == "message")
        .count()
}

#[tokio::test]
async fn bad_message_bodies_are_refused_and_store_nothing() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let room = alice.create_room("r", "public").await;
    let path = format!("/api/v1/rooms/{room}/messages");
    let json_ct = Some("application/json");

    let cases: Vec<(Option<&str>, Vec<u8>, StatusCode, &str)> = vec![
        (
            json_ct,
            b"{\"client_msg_id\": \"a\", \"text\": ".to_vec(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            json_ct,
            b"not json at all".to_vec(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            json_ct,
            b"".to_vec(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            json_ct,
            b"{\"client_msg_id\": \"a\", \"text\": \"\xff\xfe\"}".to_vec(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            json_ct,
            br#"{"client_msg_id": "a", "text": 42}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            json_ct,
            br#"{"client_msg_id": "a"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            json_ct,
            br#"{"text": "hi"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            json_ct,
            br#"[1, 2, 3]"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            json_ct,
            br#"null"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            json_ct,
            br#"{"client_msg_id": "a", "text": ""}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "empty_text",
        ),
        (
            json_ct,
            br#"{"client_msg_id": "a", "text": "   \n\t "}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "empty_text",
        ),
        (
            json_ct,
            br#"{"client_msg_id": "a", "text": "nul \u0000 inside"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "control_characters",
        ),
        (
            json_ct,
            br#"{"client_msg_id": "a", "text": "escape \u001b[2J"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "control_characters",
        ),
        (
            json_ct,
            br#"{"client_msg_id": "a", "text": "bidi-safe? \u0085"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "control_characters",
        ),
        (
            json_ct,
            br#"{"client_msg_id": "", "text": "hi"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_client_msg_id",
        ),
        (
            json_ct,
            br#"{"client_msg_id": "has space", "text": "hi"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_client_msg_id",
        ),
        (
            json_ct,
            format!(r#"{{"client_msg_id": "{}", "text": "hi"}}"#, "x".repeat(65)).into_bytes(),
            StatusCode::BAD_REQUEST,
            "invalid_client_msg_id",
        ),
        (
            json_ct,
            format!(
                r#"{{"client_msg_id": "long", "text": "{}"}}"#,
                "x".repeat(4001)
            )
            .into_bytes(),
            StatusCode::BAD_REQUEST,
            "text_too_long",
        ),
        (
            None,
            br#"{"client_msg_id": "a", "text": "hi"}"#.to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            Some("text/plain"),
            br#"{"client_msg_id": "a", "text": "hi"}"#.to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            json_ct,
            format!(
                r#"{{"client_msg_id": "big", "text": "{}"}}"#,
                "x".repeat(70_000)
            )
            .into_bytes(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        // serde reads a struct from an array too: refused as not an object.
        (
            json_ct,
            br#"["c", "hi"]"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            json_ct,
            b"\"hi\"".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            json_ct,
            b"42".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        // Invalid UTF-8, even inside a field the server ignores.
        (
            json_ct,
            b"{\"client_msg_id\": \"u\", \"text\": \"hi\", \"x\": \"\xff\xfe\"}".to_vec(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        // A JSON media type with parameters is still JSON.
        (
            Some("application/json; charset=utf-8"),
            br#"["c", "hi"]"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
    ];
    for (content_type, body, status, code) in cases {
        let shown = String::from_utf8_lossy(&body)
            .chars()
            .take(60)
            .collect::<String>();
        let reply = raw_post(&alice, &path, content_type, body).await;
        assert_eq!(reply.0, status, "{shown}: {}", reply.1);
        assert_eq!(reply.1["error"]["code"], code, "{shown}: {}", reply.1);
    }
    assert_eq!(
        message_count(&alice, room).await,
        0,
        "no refused message was stored"
    );
}

#[tokio::test]
async fn bad_paths_methods_and_queries() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    for path in [
        "/api/v1/rooms/abc/messages",
        "/api/v1/rooms/-1/messages",
        "/api/v1/rooms/0",
        "/api/v1/rooms/99999999999999999999999",
        // Each id has one spelling: no sign, no leading zero, no spaces.
        "/api/v1/rooms/+1",
        "/api/v1/rooms/01",
        "/api/v1/rooms/%201",
        "/api/v1/users/01",
        "/api/v1/users/+1/avatar.svg",
    ] {
        assert_error(
            &alice.get(path).await,
            StatusCode::BAD_REQUEST,
            "invalid_id",
        );
    }
    assert_error(
        &alice.get("/api/v1/nope").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &alice.get("/nope").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let put = alice
        .send_raw(alice.http.put(format!("{}/api/v1/rooms", server.base)))
        .await;
    assert_error(&put, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    let del = alice
        .send_raw(alice.http.delete(format!("{}/api/v1/events", server.base)))
        .await;
    assert_error(&del, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    for bad in ["cursor=%FF%FE", "cursor=a&cursor=b"] {
        let reply = alice.get(&format!("/api/v1/events?{bad}")).await;
        assert_eq!(reply.0, StatusCode::BAD_REQUEST, "{bad}: {}", reply.1);
        assert!(reply.1["error"]["code"].is_string());
    }
}

#[tokio::test]
async fn bad_room_and_profile_input() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    for (body, code) in [
        (json!({"title": ""}), "invalid_title"),
        (json!({"title": "   "}), "invalid_title"),
        (json!({"title": "x".repeat(101)}), "invalid_title"),
        (json!({"title": "tab\tinside"}), "control_characters"),
        (json!({"title": "\u{202e}moor"}), "invalid_title"),
        (json!({"title": "\u{3164}"}), "invalid_title"),
        (json!({"title": 5}), "invalid_body"),
        (
            json!({"title": "ok", "visibility": "secret"}),
            "invalid_body",
        ),
        (json!({}), "invalid_body"),
    ] {
        assert_error(
            &alice.post("/api/v1/rooms", body).await,
            StatusCode::BAD_REQUEST,
            code,
        );
    }
    let (_, rooms) = alice.get("/api/v1/rooms").await;
    assert_eq!(rooms["rooms"], json!([]), "no refused room was created");

    for (body, code) in [
        (json!({"display_name": ""}), "invalid_display_name"),
        (
            json!({"display_name": "x".repeat(65)}),
            "invalid_display_name",
        ),
        (json!({"display_name": "line\nbreak"}), "control_characters"),
        (
            json!({"display_name": "\u{202e}ecila"}),
            "invalid_display_name",
        ),
        (
            json!({"display_name": "ali\u{200b}ce"}),
            "invalid_display_name",
        ),
        (json!({"display_name": "\u{3164}"}), "invalid_display_name"),
        (json!({"display_name": "natter"}), "reserved_name"),
        (json!({"display_name": "Ｎatter"}), "reserved_name"),
        (
            json!({"avatar_url": "javascript:alert(1)"}),
            "invalid_avatar_url",
        ),
        (
            json!({"avatar_url": "data:text/html,<script>"}),
            "invalid_avatar_url",
        ),
        (
            json!({"avatar_url": format!("https://e.com/{}", "a".repeat(600))}),
            "invalid_avatar_url",
        ),
    ] {
        assert_error(
            &alice.patch("/api/v1/me", body).await,
            StatusCode::BAD_REQUEST,
            code,
        );
    }
    let (_, me) = alice.get("/api/v1/me").await;
    assert_eq!(
        me["user"]["display_name"], "alice",
        "no refused edit changed the profile"
    );

    for (body, code) in [
        (json!({"seq": -1}), "invalid_seq"),
        (json!({"seq": "1"}), "invalid_body"),
        (json!({"seq": 1e40}), "invalid_body"),
    ] {
        let room = alice.create_room("r", "private").await;
        assert_error(
            &alice
                .post(&format!("/api/v1/rooms/{room}/read"), body)
                .await,
            StatusCode::BAD_REQUEST,
            code,
        );
    }
    for body in [json!({"user_id": "x"}), json!({})] {
        assert_error(
            &alice.post("/api/v1/direct", body).await,
            StatusCode::BAD_REQUEST,
            "invalid_body",
        );
    }
    let room = alice.create_room("r", "public").await;
    for id in [0, -1] {
        assert_error(
            &alice.post("/api/v1/direct", json!({"user_id": id})).await,
            StatusCode::BAD_REQUEST,
            "invalid_id",
        );
        assert_error(
            &alice
                .post(
                    &format!("/api/v1/rooms/{room}/members"),
                    json!({"user_id": id}),
                )
                .await,
            StatusCode::BAD_REQUEST,
            "invalid_id",
        );
    }
}

#[tokio::test]
async fn a_client_that_trickles_headers_is_cut_off() {
    let server = TestServer::start_with(|c| c.header_read_timeout = Duration::from_secs(1)).await;
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the server kept a half-sent request open");
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(5), "cut off after {waited:?}");
    // Meanwhile the server still serves everyone else.
    assert_eq!(
        reqwest::get(format!("{}/healthz", server.base))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}
