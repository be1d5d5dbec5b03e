//! The admin API: a host site's backend creates rooms, syncs rosters,
//! edits profiles, posts notices and ends sessions; browsers and wrong keys
//! are refused.

use std::sync::Arc;

use natter::chat::{Secrets, Site};
use natter::config::SiteSettings;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Client, Reply, TestServer, assert_error};

pub const KEY: &str = "admin-key-for-tests-0123456789abcdef";

pub async fn server() -> TestServer {
    TestServer::start_with(|c| {
        c.chat.admin_keys = Secrets(vec![KEY.into()]);
        c.chat.sites = vec![Arc::new(
            Site::from_settings(SiteSettings {
                id: "school".into(),
                issuer: "https://school.test".into(),
                algorithm: "HS256".into(),
                secret: Some("school-secret-of-at-least-32-bytes!!".into()),
                ..SiteSettings::default()
            })
            .unwrap(),
        )];
    })
    .await
}

/// A group room made through the admin API: its id and the answer.
async fn admin_room(api: &Client, title: &str) -> (i64, Value) {
    let path = "/api/v1/admin/rooms";
    let (status, room) = admin(api, "POST", path, Some(json!({"title": title})), KEY).await;
    assert_eq!(status, StatusCode::CREATED, "{room}");
    (room["room"]["id"].as_i64().unwrap(), room)
}

pub async fn admin(
    client: &Client,
    method: &str,
    path: &str,
    body: Option<Value>,
    key: &str,
) -> Reply {
    let mut rb = client
        .http
        .request(method.parse().unwrap(), format!("{}{path}", client.base))
        .header("X-Natter-Admin-Key", key);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    client.send_raw(rb).await
}

#[tokio::test]
async fn a_site_backend_manages_a_class_room_and_its_roster() {
    let server = server().await;
    let api = server.client();
    let (status, room) = admin(
        &api,
        "POST",
        "/api/v1/admin/rooms",
        Some(json!({"title": "Class 3 (2)"})),
        KEY,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{room}");
    let room_id = room["room"]["id"].as_i64().unwrap();
    assert_eq!(room["room"]["visibility"], "private");

    let roster: Vec<Value> = (1..=30)
        .map(|n| json!({"site": "school", "external_id": format!("s{n}"), "name": format!("Student {n}")}))
        .collect();
    let (status, synced) = admin(
        &api,
        "PUT",
        &format!("/api/v1/admin/rooms/{room_id}/members"),
        Some(json!({"members": roster})),
        KEY,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{synced}");
    assert_eq!(synced["added"], 30);
    assert_eq!(synced["removed"], 0);

    // A second sync with one student gone and one new: one in, one out.
    let mut next: Vec<Value> = (2..=30)
        .map(|n| json!({"site": "school", "external_id": format!("s{n}")}))
        .collect();
    next.push(json!({"site": "school", "external_id": "s31", "name": "Student 31"}));
    let (_, resynced) = admin(
        &api,
        "PUT",
        &format!("/api/v1/admin/rooms/{room_id}/members"),
        Some(json!({"members": next})),
        KEY,
    )
    .await;
    assert_eq!(
        (resynced["added"].as_i64(), resynced["removed"].as_i64()),
        (Some(1), Some(1))
    );

    // A notice, then a student signs in (as the site would) and sees both.
    let (status, notice) = admin(
        &api,
        "POST",
        &format!("/api/v1/admin/rooms/{room_id}/messages"),
        Some(json!({"text": "Homework is due Friday"})),
        KEY,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{notice}");
    assert_eq!(notice["message"]["sender_name"], "natter");
    let (_, found) = admin(
        &api,
        "GET",
        "/api/v1/admin/sites/school/users/s7",
        None,
        KEY,
    )
    .await;
    let s7 = found["user"]["id"].as_i64().unwrap();
    assert_eq!(found["user"]["display_name"], "Student 7");
    let (_, renamed) = admin(
        &api,
        "PATCH",
        &format!("/api/v1/admin/users/{s7}"),
        Some(json!({"display_name": "Student Seven"})),
        KEY,
    )
    .await;
    assert_eq!(renamed["user"]["display_name"], "Student Seven");

    let token = natter_site_token("s7");
    let (status, login) = api
        .post("/api/v1/sessions/sso", json!({"token": token}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{login}");
    let mut student = server.client();
    student.token = Some(login["token"].as_str().unwrap().to_owned());
    let (_, rooms) = student.get("/api/v1/rooms").await;
    assert_eq!(rooms["rooms"][0]["id"], room_id);
    assert_eq!(
        rooms["rooms"][0]["last_message"]["text"],
        "Homework is due Friday"
    );
    let (_, members) = student
        .get(&format!("/api/v1/rooms/{room_id}/members"))
        .await;
    assert_eq!(
        members["members"].as_array().unwrap().len(),
        31,
        "30 students and the system user"
    );

    // Removing a member, then ending a user's sessions.
    let (status, _) = admin(
        &api,
        "DELETE",
        &format!("/api/v1/admin/rooms/{room_id}/members/{s7}"),
        None,
        KEY,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_error(
        &student
            .get(&format!("/api/v1/rooms/{room_id}/messages"))
            .await,
        StatusCode::NOT_FOUND,
        "room_not_found",
    );
    let (_, ended) = admin(
        &api,
        "DELETE",
        &format!("/api/v1/admin/users/{s7}/sessions"),
        None,
        KEY,
    )
    .await;
    assert_eq!(ended["ended"], 1);
    assert_error(
        &student.get("/api/v1/me").await,
        StatusCode::UNAUTHORIZED,
        "session_ended",
    );
}

/// A token the school site would sign for `sub`.
fn natter_site_token(sub: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": sub, "iss": "https://school.test", "aud": "natter", "iat": now, "exp": now + 60}),
        &jsonwebtoken::EncodingKey::from_secret(b"school-secret-of-at-least-32-bytes!!"),
    )
    .unwrap()
}

#[tokio::test]
async fn wrong_keys_users_and_browsers_are_refused() {
    let server = server().await;
    let api = server.client();
    let path = "/api/v1/admin/rooms";
    let body = Some(json!({"title": "x"}));
    assert_error(
        &admin(&api, "POST", path, body.clone(), "wrong-key").await,
        StatusCode::UNAUTHORIZED,
        "admin_key_invalid",
    );
    assert_error(
        &admin(&api, "POST", path, body.clone(), "").await,
        StatusCode::UNAUTHORIZED,
        "admin_key_invalid",
    );
    // A user's session token is not an admin key.
    let alice = server.user("alice").await;
    assert_error(
        &alice.post(path, json!({"title": "x"})).await,
        StatusCode::UNAUTHORIZED,
        "admin_key_invalid",
    );
    // A browser (Origin or Sec-Fetch-Site) never gets in, even with the key.
    for (header, value) in [
        ("Origin", "https://school.test"),
        ("Sec-Fetch-Site", "same-origin"),
    ] {
        let reply = api
            .send_raw(
                api.http
                    .post(format!("{}{path}", server.base))
                    .header("X-Natter-Admin-Key", KEY)
                    .header(header, value)
                    .json(&json!({"title": "x"})),
            )
            .await;
        assert_error(&reply, StatusCode::FORBIDDEN, "admin_from_browser");
    }
    // Nothing was created by the refused calls.
    let (_, rooms) = alice.get("/api/v1/rooms/public").await;
    assert_eq!(rooms["rooms"], json!([]));
    // Bad input to a good key is a clear 4xx too.
    assert_error(
        &admin(&api, "POST", path, Some(json!({"title": ""})), KEY).await,
        StatusCode::BAD_REQUEST,
        "invalid_title",
    );
    assert_error(
        &admin(
            &api,
            "PUT",
            "/api/v1/admin/rooms/999/members",
            Some(json!({"members": []})),
            KEY,
        )
        .await,
        StatusCode::NOT_FOUND,
        "room_not_found",
    );
    let (_, room) = admin(&api, "POST", path, Some(json!({"title": "ok"})), KEY).await;
    let id = room["room"]["id"].as_i64().unwrap();
    assert_error(
        &admin(
            &api,
            "PUT",
            &format!("/api/v1/admin/rooms/{id}/members"),
            Some(json!({"members": [{"site": "nope", "external_id": "1"}]})),
            KEY,
        )
        .await,
        StatusCode::BAD_REQUEST,
        "unknown_site",
    );
    assert_error(
        &admin(
            &api,
            "PUT",
            &format!("/api/v1/admin/rooms/{id}/members"),
            Some(json!({"members": [{"user_id": -3}]})),
            KEY,
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_id",
    );
}

#[tokio::test]
async fn a_roster_with_one_bad_entry_creates_renames_and_removes_nobody() {
    let server = server().await;
    let api = server.client();
    let (id, _) = admin_room(&api, "c").await;
    let path = format!("/api/v1/admin/rooms/{id}/members");
    let first = json!({"members": [{"site": "school", "external_id": "s1", "name": "Ann"}]});
    let (status, _) = admin(&api, "PUT", &path, Some(first), KEY).await;
    assert_eq!(status, StatusCode::OK);
    // A deactivated site user, named with a new name, is a bad entry too.
    let gone = json!({"site": "school", "external_id": "s9"});
    let (_, added) = admin(&api, "POST", &path, Some(gone), KEY).await;
    let gone_id = added["user"]["id"].as_i64().unwrap();
    let deactivate = format!("/api/v1/admin/users/{gone_id}/deactivate");
    assert_eq!(
        admin(&api, "POST", &deactivate, None, KEY).await.0,
        StatusCode::OK
    );
    for (bad, code) in [
        (
            json!({"site": "school", "external_id": "s9", "name": "Back"}),
            "account_deactivated",
        ),
        (
            json!({"site": "school", "external_id": "s3", "name": "\u{202e}bad"}),
            "invalid_display_name",
        ),
        (json!({"site": "nope", "external_id": "s3"}), "unknown_site"),
        (
            json!({"site": "school", "external_id": "s3", "avatar_url": "javascript:x"}),
            "invalid_avatar_url",
        ),
        (json!({"user_id": 999_999}), "user_not_found"),
    ] {
        // The bad entry comes last: the good ones before it would have
        // been written by a sync that checked as it went.
        let roster = json!({"members": [
            {"site": "school", "external_id": "s1", "name": "Renamed"},
            {"site": "school", "external_id": "s2", "name": "New"},
            bad,
        ]});
        let reply = admin(&api, "PUT", &path, Some(roster), KEY).await;
        assert_eq!(reply.1["error"]["code"], code, "{}", reply.1);
        assert!(reply.0.is_client_error());
    }
    let (_, ann) = admin(
        &api,
        "GET",
        "/api/v1/admin/sites/school/users/s1",
        None,
        KEY,
    )
    .await;
    assert_eq!(ann["user"]["display_name"], "Ann", "not renamed");
    let reply = admin(
        &api,
        "GET",
        "/api/v1/admin/sites/school/users/s2",
        None,
        KEY,
    )
    .await;
    assert_error(&reply, StatusCode::NOT_FOUND, "user_not_found");
}

#[tokio::test]
async fn natters_system_user_cannot_be_renamed_removed_or_deactivated() {
    let server = server().await;
    let api = server.client();
    let (id, room) = admin_room(&api, "n").await;
    let system = room["room"]["created_by"].as_i64().unwrap();
    for (method, path, body) in [
        (
            "POST",
            format!("/api/v1/admin/users/{system}/deactivate"),
            None,
        ),
        (
            "PATCH",
            format!("/api/v1/admin/users/{system}"),
            Some(json!({"display_name": "evil"})),
        ),
        (
            "DELETE",
            format!("/api/v1/admin/rooms/{id}/members/{system}"),
            None,
        ),
    ] {
        let reply = admin(&api, method, &path, body, KEY).await;
        assert_error(&reply, StatusCode::FORBIDDEN, "forbidden");
    }
    // The admin API still works.
    let (status, _) = admin(
        &api,
        "POST",
        &format!("/api/v1/admin/rooms/{id}/messages"),
        Some(json!({"text": "still here"})),
        KEY,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
}
