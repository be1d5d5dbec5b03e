//! An account's life: password changes, one's own sessions, deactivation
//! by the owner or the admin API, and registration modes.

use std::time::Duration;

use natter::chat::RegistrationMode;
use reqwest::StatusCode;
use serde_json::json;

use crate::admin::{KEY, admin};
use crate::common::{Client, TestServer, assert_error};

/// A second session of `client`'s user, as another device would open.
async fn second_device(server: &TestServer, name: &str) -> Client {
    let mut device = server.client();
    device.login(name).await;
    device
}

#[tokio::test]
async fn changing_the_password_signs_out_the_other_sessions_at_once() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let laptop = second_device(&server, "alice").await;
    let cursor = laptop.cursor().await;
    let parked = laptop.parked_poll(&cursor, 30).await;

    let wrong = alice
        .post(
            "/api/v1/me/password",
            json!({"current_password": "not-it-at-all", "new_password": "new-password-2"}),
        )
        .await;
    assert_error(&wrong, StatusCode::FORBIDDEN, "wrong_password");
    let short = alice
        .post(
            "/api/v1/me/password",
            json!({"current_password": "password-1", "new_password": "short"}),
        )
        .await;
    assert_error(&short, StatusCode::BAD_REQUEST, "invalid_password");

    let (status, body) = alice
        .post(
            "/api/v1/me/password",
            json!({"current_password": "password-1", "new_password": "new-password-2"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ended_sessions"], 1);
    let (status, ended) = tokio::time::timeout(Duration::from_secs(2), parked)
        .await
        .expect("the other device's poll returns at once")
        .unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{ended}");
    assert_eq!(ended["error"]["code"], "session_ended");
    assert_eq!(
        alice.get("/api/v1/me").await.0,
        StatusCode::OK,
        "this session goes on"
    );
    let old = server.client().try_login("alice", "password-1").await;
    assert_error(&old, StatusCode::UNAUTHORIZED, "invalid_credentials");
    let new = server.client().try_login("alice", "new-password-2").await;
    assert_eq!(new.0, StatusCode::CREATED);

    // Keeping the other sessions is a choice.
    let (_, body) = alice
        .post(
            "/api/v1/me/password",
            json!({"current_password": "new-password-2", "new_password": "password-1", "end_other_sessions": false}),
        )
        .await;
    assert_eq!(body["ended_sessions"], 0);
}

#[tokio::test]
async fn a_user_sees_and_ends_their_own_sessions_and_no_one_elses() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let phone = second_device(&server, "alice").await;
    let tablet = second_device(&server, "alice").await;
    let bob = server.user("bob").await;

    let (status, list) = alice.get("/api/v1/me/sessions").await;
    assert_eq!(status, StatusCode::OK);
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 3, "{list}");
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    assert!(
        sessions
            .iter()
            .all(|s| s["expires_at"].as_i64() > s["created_at"].as_i64())
    );

    let phone_id = phone.get("/api/v1/me/sessions").await.1["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    // Bob cannot end Alice's session, nor learn that it exists.
    let reply = bob.delete(&format!("/api/v1/me/sessions/{phone_id}")).await;
    assert_error(&reply, StatusCode::NOT_FOUND, "session_not_found");
    assert_eq!(phone.get("/api/v1/me").await.0, StatusCode::OK);

    let (status, _) = alice
        .delete(&format!("/api/v1/me/sessions/{phone_id}"))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_error(
        &phone.get("/api/v1/me").await,
        StatusCode::UNAUTHORIZED,
        "session_ended",
    );
    assert_eq!(tablet.get("/api/v1/me").await.0, StatusCode::OK);

    let (status, body) = alice.delete("/api/v1/me/sessions").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["ended_sessions"], 1);
    assert_error(
        &tablet.get("/api/v1/me").await,
        StatusCode::UNAUTHORIZED,
        "session_ended",
    );
    assert_eq!(alice.get("/api/v1/me").await.0, StatusCode::OK);
    assert_eq!(bob.get("/api/v1/me").await.0, StatusCode::OK);
}

#[tokio::test]
async fn deactivation_ends_every_session_and_poll_and_refuses_logins() {
    let server = crate::admin::server().await;
    let alice = server.user("alice").await;
    let cursor = alice.cursor().await;
    let parked = alice.parked_poll(&cursor, 30).await;
    let wrong = alice
        .post(
            "/api/v1/me/deactivate",
            json!({"password": "not-it-at-all"}),
        )
        .await;
    assert_error(&wrong, StatusCode::FORBIDDEN, "wrong_password");
    let (status, _) = alice
        .post("/api/v1/me/deactivate", json!({"password": "password-1"}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, ended) = tokio::time::timeout(Duration::from_secs(2), parked)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(ended["error"]["code"], "account_deactivated");
    // A wrong password still says only that it is wrong.
    let guess = server.client().try_login("alice", "not-it-at-all").await;
    assert_error(&guess, StatusCode::UNAUTHORIZED, "invalid_credentials");
    let login = server.client().try_login("alice", "password-1").await;
    assert_error(&login, StatusCode::FORBIDDEN, "account_deactivated");

    // The admin API brings the account back, and can take it away again
    // with every session ending at once.
    let api = server.client();
    let path = format!("/api/v1/admin/users/{}", alice.user_id);
    let (status, _) = admin(&api, "POST", &format!("{path}/reactivate"), None, KEY).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let mut back = server.client();
    back.login("alice").await;
    let cursor = back.cursor().await;
    let parked = back.parked_poll(&cursor, 30).await;
    let (status, body) = admin(&api, "POST", &format!("{path}/deactivate"), None, KEY).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ended"], 1);
    let (status, ended) = tokio::time::timeout(Duration::from_secs(2), parked)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(ended["error"]["code"], "account_deactivated");
    let reply = admin(
        &api,
        "POST",
        "/api/v1/admin/users/999/deactivate",
        None,
        KEY,
    )
    .await;
    assert_error(&reply, StatusCode::NOT_FOUND, "user_not_found");
    let reply = server
        .client()
        .post("/api/v1/admin/users/1/deactivate", json!({}))
        .await;
    assert_error(&reply, StatusCode::UNAUTHORIZED, "admin_key_invalid");
}

fn registration(name: &str, invite: Option<&str>) -> serde_json::Value {
    let mut body = json!({"username": name, "password": "password-1"});
    if let Some(code) = invite {
        body["invite"] = json!(code);
    }
    body
}

#[tokio::test]
async fn registration_can_be_invite_only_closed_or_for_site_users_only() {
    let server = TestServer::start_with(|c| {
        c.chat.registration = RegistrationMode::Invite;
        c.chat.admin_keys = natter::chat::Secrets(vec![KEY.into()]);
    })
    .await;
    let anon = server.client();
    let reply = anon.post("/api/v1/users", registration("ann", None)).await;
    assert_error(&reply, StatusCode::FORBIDDEN, "invite_invalid");
    let reply = anon
        .post("/api/v1/users", registration("ann", Some("made-up")))
        .await;
    assert_error(&reply, StatusCode::FORBIDDEN, "invite_invalid");
    let (status, invite) =
        admin(&anon, "POST", "/api/v1/admin/invites", Some(json!({})), KEY).await;
    assert_eq!(status, StatusCode::CREATED, "{invite}");
    let code = invite["code"].as_str().unwrap();
    let (status, _) = anon
        .post("/api/v1/users", registration("ann", Some(code)))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let reply = anon
        .post("/api/v1/users", registration("ben", Some(code)))
        .await;
    assert_error(&reply, StatusCode::FORBIDDEN, "invite_invalid");
    // A refused registration leaves the invite unused.
    let (_, second) = admin(&anon, "POST", "/api/v1/admin/invites", Some(json!({})), KEY).await;
    let code = second["code"].as_str().unwrap();
    let taken = anon
        .post("/api/v1/users", registration("ann", Some(code)))
        .await;
    assert_error(&taken, StatusCode::CONFLICT, "username_taken");
    let (status, _) = anon
        .post("/api/v1/users", registration("ben", Some(code)))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let reply = admin(
        &anon,
        "POST",
        "/api/v1/admin/invites",
        Some(json!({"valid_for_secs": 1})),
        KEY,
    )
    .await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "invalid_valid_for");

    for mode in [RegistrationMode::Closed, RegistrationMode::Sites] {
        let server = TestServer::start_with(|c| c.chat.registration = mode).await;
        let reply = server
            .client()
            .post("/api/v1/users", registration("ann", None))
            .await;
        assert_error(&reply, StatusCode::FORBIDDEN, "registration_closed");
    }
}
