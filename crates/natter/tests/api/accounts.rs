//! Accounts and sessions, as a user meets them.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{TestServer, assert_error};

#[tokio::test]
async fn register_login_profile_logout() {
    let server = TestServer::start().await;
    let anon = server.client();

    let (status, body) = anon
        .post(
            "/api/v1/users",
            json!({"username": "Alice", "password": "password-1", "display_name": "Alice W."}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body["user"]["username"], "alice",
        "usernames are case-insensitive"
    );
    assert_eq!(body["user"]["display_name"], "Alice W.");
    let id = body["user"]["id"].as_i64().unwrap();
    let generated = body["user"]["avatar_url"].as_str().unwrap().to_owned();
    assert!(
        generated.starts_with("/api/v1/avatar.svg?initial=A&hue="),
        "{generated}"
    );
    assert!(body["user"].get("password_hash").is_none());

    let taken = anon
        .post(
            "/api/v1/users",
            json!({"username": "ALICE", "password": "password-2"}),
        )
        .await;
    assert_error(&taken, StatusCode::CONFLICT, "username_taken");

    let wrong = anon
        .post(
            "/api/v1/sessions",
            json!({"username": "alice", "password": "nope-nope"}),
        )
        .await;
    assert_error(&wrong, StatusCode::UNAUTHORIZED, "invalid_credentials");
    let unknown = anon
        .post(
            "/api/v1/sessions",
            json!({"username": "nobody", "password": "password-1"}),
        )
        .await;
    assert_error(&unknown, StatusCode::UNAUTHORIZED, "invalid_credentials");

    let mut alice = server.client();
    let login = alice.login("alice").await;
    assert!(login["token"].as_str().unwrap().len() >= 40);
    assert!(login["expires_at"].as_i64().unwrap() > 0);

    let (status, me) = alice.get("/api/v1/me").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["user"]["id"], id);

    let (status, edited) = alice
        .patch(
            "/api/v1/me",
            json!({"display_name": "  Alice 🌸 ", "avatar_url": "https://example.com/a.png"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(edited["user"]["display_name"], "Alice 🌸");
    assert_eq!(edited["user"]["avatar_url"], "https://example.com/a.png");
    let (_, reset) = alice.patch("/api/v1/me", json!({"avatar_url": ""})).await;
    let hue = generated.rsplit('=').next().unwrap();
    assert_eq!(
        reset["user"]["avatar_url"],
        format!("/api/v1/avatar.svg?initial=A&hue={hue}"),
        "the generated avatar again, with the new name's initial"
    );

    // A profile is for people who share a conversation with its owner:
    // walking ids finds nobody.
    let bob = server.user("bob").await;
    assert_error(
        &bob.get(&format!("/api/v1/users/{id}")).await,
        StatusCode::NOT_FOUND,
        "user_not_found",
    );
    let room = alice.create_room("r", "public").await;
    bob.join(room).await;
    let (status, seen) = bob.get(&format!("/api/v1/users/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen["user"]["display_name"], "Alice 🌸");
    assert_error(
        &bob.get("/api/v1/users/99999").await,
        StatusCode::NOT_FOUND,
        "user_not_found",
    );

    let (status, _) = alice.delete("/api/v1/sessions/current").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_error(
        &alice.get("/api/v1/me").await,
        StatusCode::UNAUTHORIZED,
        "session_ended",
    );
}

#[tokio::test]
async fn username_and_password_rules() {
    let server = TestServer::start().await;
    let anon = server.client();
    for (username, password, code) in [
        ("ab", "password-1", "invalid_username"),
        ("-abc", "password-1", "invalid_username"),
        ("has space", "password-1", "invalid_username"),
        ("名字名字", "password-1", "invalid_username"),
        ("nul\u{0}user", "password-1", "invalid_username"),
        ("goodname", "short", "invalid_password"),
        ("natter", "password-1", "reserved_name"),
        ("Admin", "password-1", "reserved_name"),
        ("sys-tem", "password-1", "reserved_name"),
        // The accounts an archive import makes.
        ("xml-56", "password-1", "reserved_name"),
    ] {
        let reply = anon
            .post(
                "/api/v1/users",
                json!({"username": username, "password": password}),
            )
            .await;
        assert_error(&reply, StatusCode::BAD_REQUEST, code);
    }
    let long_password = "x".repeat(2000);
    let reply = anon
        .post(
            "/api/v1/users",
            json!({"username": "goodname", "password": long_password}),
        )
        .await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "invalid_password");
    let reply = anon
        .post(
            "/api/v1/users",
            json!({"username": "goodname", "password": "password-1", "display_name": "bad\u{7}bell"}),
        )
        .await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "control_characters");
    // None of the refused registrations created anything.
    let ok = anon
        .post(
            "/api/v1/users",
            json!({"username": "goodname", "password": "password-1"}),
        )
        .await;
    assert_eq!(ok.0, StatusCode::CREATED);
    assert_eq!(ok.1["user"]["id"], 1);
}

#[tokio::test]
async fn logout_ends_an_open_poll_at_once() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let cursor = alice.cursor().await;
    let started = Instant::now();
    let poll = alice.parked_poll(&cursor, 30).await;
    let (status, _) = alice.delete("/api/v1/sessions/current").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let reply = poll.await.unwrap();
    assert_error(&reply, StatusCode::UNAUTHORIZED, "session_ended");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn single_session_mode_replaces_the_older_session() {
    let server = TestServer::start_with(|c| c.chat.single_session = true).await;
    let first = server.user("alice").await;
    let cursor = first.cursor().await;
    let poll = first.parked_poll(&cursor, 30).await;

    let mut second = server.client();
    second.login("alice").await;
    let reply = tokio::time::timeout(Duration::from_secs(5), poll)
        .await
        .expect("the old poll returns at once")
        .unwrap();
    assert_error(&reply, StatusCode::UNAUTHORIZED, "session_replaced");
    assert_error(
        &first.get("/api/v1/me").await,
        StatusCode::UNAUTHORIZED,
        "session_replaced",
    );
    assert_eq!(second.get("/api/v1/me").await.0, StatusCode::OK);
}

#[tokio::test]
async fn several_sessions_by_default() {
    let server = TestServer::start().await;
    let first = server.user("alice").await;
    let mut second = server.client();
    second.login("alice").await;
    assert_eq!(first.get("/api/v1/me").await.0, StatusCode::OK);
    assert_eq!(second.get("/api/v1/me").await.0, StatusCode::OK);
}

#[tokio::test]
async fn generated_avatars_draw_their_url_escaped_and_reveal_no_user() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let (_, me) = alice
        .patch(
            "/api/v1/me",
            json!({"display_name": "<script>alert(1)</script>"}),
        )
        .await;
    let url = me["user"]["avatar_url"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with("/api/v1/avatar.svg?initial=%3C&hue="),
        "{url}"
    );
    // Fetched without a token, as an <img> would.
    let get = |path: String| {
        let base = server.base.clone();
        async move { reqwest::get(format!("{base}{path}")).await.unwrap() }
    };
    let response = get(url).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "image/svg+xml");
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let svg = response.text().await.unwrap();
    assert!(svg.contains("&lt;"), "{svg}");
    assert!(!svg.contains("<script"), "{svg}");
    // The old address answers alike for every id, known or not.
    let known = get(format!("/api/v1/users/{}/avatar.svg", alice.user_id)).await;
    let unknown = get("/api/v1/users/99999/avatar.svg".into()).await;
    assert_eq!(
        (known.status(), unknown.status()),
        (StatusCode::OK, StatusCode::OK)
    );
    assert!(
        !known.text().await.unwrap().contains("&lt;"),
        "no initial there"
    );
    for bad in ["initial=ABCD", "hue=360", "hue=-1", "initial=%07"] {
        let response = get(format!("/api/v1/avatar.svg?{bad}")).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
}
