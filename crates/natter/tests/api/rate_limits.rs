//! Every rate limit refuses past its rate with `429 rate_limited` and a
//! `Retry-After`, changes nothing when it refuses, and counts per user or
//! per source as documented.

use std::time::Duration;

use natter::chat::RateLimits;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Client, TestServer, assert_error};

/// A server with only the limits `limits` sets.
async fn server_with(limits: impl FnOnce(&mut RateLimits)) -> TestServer {
    let mut wanted = RateLimits::off();
    limits(&mut wanted);
    TestServer::start_with(move |c| c.chat.limits = wanted).await
}

fn rate(spec: &str) -> Option<natter::chat::RateSpec> {
    Some(spec.parse().unwrap())
}

/// Posts and returns the status, the `Retry-After` seconds and the body.
async fn post_timed(client: &Client, path: &str, body: Value) -> (StatusCode, Option<u64>, Value) {
    let mut request = client
        .http
        .post(format!("{}{path}", client.base))
        .json(&body);
    if let Some(token) = &client.token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    (
        response.status(),
        retry_after,
        response.json().await.unwrap(),
    )
}

fn assert_limited(reply: &(StatusCode, Option<u64>, Value)) -> u64 {
    assert_eq!(reply.0, StatusCode::TOO_MANY_REQUESTS, "{}", reply.2);
    assert_eq!(reply.2["error"]["code"], "rate_limited", "{}", reply.2);
    let secs = reply.1.expect("Retry-After");
    assert!(secs >= 1, "Retry-After {secs}");
    secs
}

/// A password login, with its `Retry-After`.
async fn login_attempt(
    client: &Client,
    name: &str,
    password: &str,
) -> (StatusCode, Option<u64>, Value) {
    post_timed(client, "/api/v1/sessions", credentials(name, password)).await
}

fn credentials(name: &str, password: &str) -> Value {
    json!({"username": name, "password": password})
}

#[tokio::test]
async fn wrong_passwords_delay_the_account_but_never_its_open_sessions() {
    let server = server_with(|l| {
        l.login_free_failures = 3;
        l.login_max_delay = Duration::from_secs(60);
    })
    .await;
    let alice = server.user("alice").await;
    let stranger = server.client();
    for _ in 0..3 {
        let reply = login_attempt(&stranger, "alice", "guess-guess").await;
        assert_eq!(reply.0, StatusCode::UNAUTHORIZED, "{}", reply.2);
    }
    // Now even the right password waits, so guessing gains nothing...
    let reply = login_attempt(&stranger, "alice", "password-1").await;
    let wait = assert_limited(&reply);
    assert!(wait <= 1, "the first delay is 1 s, not {wait}");
    // ...while Alice's session works as before.
    assert_eq!(alice.get("/api/v1/me").await.0, StatusCode::OK);
    assert_eq!(alice.get("/api/v1/rooms").await.0, StatusCode::OK);
    // Another account is not delayed, and one that does not exist is
    // delayed like a real one, so the answers reveal nothing.
    server.user("bob").await;
    for _ in 0..3 {
        login_attempt(&stranger, "nobody", "guess-guess").await;
    }
    assert_limited(&login_attempt(&stranger, "nobody", "x-x-x-x-x").await);
    // After the wait the right password opens a session and clears the run.
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let reply = login_attempt(&stranger, "alice", "password-1").await;
    assert_eq!(reply.0, StatusCode::CREATED, "{}", reply.2);
    let reply = login_attempt(&stranger, "alice", "guess-guess").await;
    assert_eq!(reply.0, StatusCode::UNAUTHORIZED, "{}", reply.2);
}

#[tokio::test]
async fn logins_are_limited_per_source() {
    let server = server_with(|l| l.login_per_source = rate("3/h")).await;
    server.client().register_and_login("alice").await; // login 1
    let here = server.client();
    for _ in 0..2 {
        let reply = login_attempt(&here, "alice", "password-1").await;
        assert_eq!(reply.0, StatusCode::CREATED);
    }
    assert_limited(&login_attempt(&here, "alice", "password-1").await);
    let elsewhere = Client::from_address(&server.base, "127.0.0.7");
    let reply = login_attempt(&elsewhere, "alice", "password-1").await;
    // 127.0.0.7 is loopback, a trusted proxy by default, and sent no
    // X-Forwarded-For: it is its own source.
    assert_eq!(reply.0, StatusCode::CREATED, "{}", reply.2);
}

/// A registration from the client a trusted proxy names.
async fn register_via_proxy(
    client: &Client,
    name: &str,
    forwarded_for: &str,
) -> (StatusCode, Value) {
    let response = client
        .http
        .post(format!("{}/api/v1/users", client.base))
        .header("x-forwarded-for", forwarded_for)
        .json(&credentials(name, "password-1"))
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

#[tokio::test]
async fn registrations_are_limited_per_source_as_a_trusted_proxy_names_it() {
    let server = server_with(|l| l.register_per_source = rate("2/h")).await;
    let proxy = server.client(); // on loopback: trusted by default
    assert_eq!(
        register_via_proxy(&proxy, "ann", "198.51.100.7").await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        register_via_proxy(&proxy, "ben", "203.0.113.1, 198.51.100.7")
            .await
            .0,
        StatusCode::CREATED,
        "the nearest untrusted hop is the source"
    );
    let refused = register_via_proxy(&proxy, "cid", "198.51.100.7").await;
    assert_error(&refused, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    // The refusal created nothing: the name is still free for another source.
    assert_eq!(
        register_via_proxy(&proxy, "cid", "198.51.100.8").await.0,
        StatusCode::CREATED
    );

    // A host that is not a trusted proxy cannot pick its source.
    let server = TestServer::start_with(|c| {
        let mut limits = RateLimits::off();
        limits.register_per_source = rate("1/h");
        c.chat.limits = limits;
        c.trusted_proxies = natter::source::TrustedProxies(Vec::new());
    })
    .await;
    let direct = server.client();
    assert_eq!(
        register_via_proxy(&direct, "ann", "198.51.100.1").await.0,
        StatusCode::CREATED
    );
    let refused = register_via_proxy(&direct, "ben", "198.51.100.2").await;
    assert_error(&refused, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
}

#[tokio::test]
async fn site_sign_ins_are_limited_per_source() {
    let server = server_with(|l| l.site_sign_in_per_source = rate("2/h")).await;
    let client = server.client();
    for _ in 0..2 {
        let reply = post_timed(
            &client,
            "/api/v1/sessions/sso",
            json!({"token": "not.a.jwt"}),
        )
        .await;
        assert_eq!(reply.2["error"]["code"], "token_malformed", "{}", reply.2);
    }
    assert_limited(
        &post_timed(
            &client,
            "/api/v1/sessions/sso",
            json!({"token": "not.a.jwt"}),
        )
        .await,
    );
}

#[tokio::test]
async fn sends_have_a_burst_then_a_rate_per_user_and_a_refused_send_stores_nothing() {
    let server = server_with(|l| l.sends_per_user = rate("1/h burst 3")).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let room = alice.create_room("r", "public").await;
    bob.join(room).await;
    let path = format!("/api/v1/rooms/{room}/messages");
    for i in 0..3 {
        alice.say(room, &format!("m{i}"), "hi").await;
    }
    let wait = assert_limited(
        &post_timed(&alice, &path, json!({"client_msg_id": "m3", "text": "hi"})).await,
    );
    assert!(wait > 3000, "the sustained rate is 1/h: wait {wait}");
    bob.say(room, "b0", "bob has his own bucket").await;
    let (_, history) = alice.get(&path).await;
    let texts: Vec<_> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "message")
        .collect();
    assert_eq!(texts.len(), 4, "three of Alice's and Bob's one: {history}");
}

#[tokio::test]
async fn room_creation_direct_conversations_and_history_are_limited_per_user() {
    let server = server_with(|l| {
        l.rooms_per_user = rate("1/h burst 2");
        l.direct_per_user = rate("1/h burst 1");
        l.history_per_user = rate("1/h burst 2");
        l.invites_per_user = rate("1/h burst 1");
    })
    .await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let room = alice.create_room("one", "public").await;
    alice.create_room("two", "public").await;
    assert_limited(&post_timed(&alice, "/api/v1/rooms", json!({"title": "three"})).await);
    bob.create_room("bob's", "public").await;

    let reply = post_timed(&alice, "/api/v1/direct", json!({"user_id": bob.user_id})).await;
    assert_eq!(reply.0, StatusCode::CREATED, "{}", reply.2);
    assert_limited(&post_timed(&alice, "/api/v1/direct", json!({"user_id": carol.user_id})).await);

    let path = format!("/api/v1/rooms/{room}/messages");
    for _ in 0..2 {
        assert_eq!(alice.get(&path).await.0, StatusCode::OK);
    }
    let reply = alice.get(&path).await;
    assert_error(&reply, StatusCode::TOO_MANY_REQUESTS, "rate_limited");

    // Joining, leaving and changing rooms share one limit.
    let server2 = server_with(|l| {
        l.room_changes_per_user = rate("1/h burst 2");
        l.read_markers_per_user = rate("1/h burst 1");
        l.password_checks_per_user = rate("1/h burst 1");
    })
    .await;
    let owner = server2.user("owner").await;
    let guest = server2.user("guest").await;
    let open = owner.create_room("open", "public").await;
    guest.join(open).await;
    let (status, _) = guest
        .post(&format!("/api/v1/rooms/{open}/leave"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_limited(&post_timed(&guest, &format!("/api/v1/rooms/{open}/join"), json!({})).await);
    let read = format!("/api/v1/rooms/{open}/read");
    assert_eq!(owner.post(&read, json!({"seq": 1})).await.0, StatusCode::OK);
    assert_limited(&post_timed(&owner, &read, json!({"seq": 2})).await);
    let change = json!({"current_password": "password-1", "new_password": "password-2", "end_other_sessions": false});
    assert_eq!(
        owner.post("/api/v1/me/password", change.clone()).await.0,
        StatusCode::OK
    );
    assert_limited(&post_timed(&owner, "/api/v1/me/password", change).await);

    let members = format!("/api/v1/rooms/{room}/members");
    let reply = alice.post(&members, json!({"user_id": bob.user_id})).await;
    assert_eq!(reply.0, StatusCode::NO_CONTENT, "{}", reply.1);
    assert_limited(&post_timed(&alice, &members, json!({"user_id": carol.user_id})).await);
}

#[test]
fn limits_are_set_in_the_file_and_can_be_turned_off() {
    use natter::config::{Config, Settings};
    let file: Settings = toml::from_str(
        "limit_sends_per_user = \"2/s burst 4\"\nlimit_history_per_user = \"off\"\nlogin_free_failures = 9\n",
    )
    .unwrap();
    let config = Config::from_settings(file).unwrap();
    let limits = &config.chat.limits;
    assert_eq!(limits.sends_per_user, rate("2/s burst 4"));
    assert_eq!(limits.history_per_user, None);
    assert_eq!(limits.login_free_failures, 9);
    assert_eq!(
        limits.register_per_source,
        RateLimits::default().register_per_source
    );
    let off: Settings = toml::from_str("rate_limits = false").unwrap();
    assert_eq!(
        Config::from_settings(off)
            .unwrap()
            .chat
            .limits
            .sends_per_user,
        None
    );
    assert!(toml::from_str::<Settings>("limit_sends_per_user = \"lots\"").is_err());
}
