//! Sites kept apart: by default one site's users cannot find, join or
//! message another site's (nor local accounts'), and profiles are shown
//! only to people who share a conversation; `shared_community` makes
//! the deployment one community.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{Client, TestServer, assert_error};
use crate::sso::{claims, exchange, hs, site};

async fn server(shared: bool) -> TestServer {
    TestServer::start_with(|c| {
        c.chat.sites = vec![
            site("school", "https://school.test", "HS256"),
            site("forum", "https://forum.test", "HS256"),
        ];
        c.chat.shared_community = shared;
    })
    .await
}

/// A signed-in user `sub` of the site whose issuer is `issuer`.
async fn site_user(server: &TestServer, issuer: &str, sub: &str) -> Client {
    let mut token = claims(sub);
    token["iss"] = json!(issuer);
    let (status, body) = exchange(&server.client(), json!({"token": hs(&token)})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mut client = server.client();
    client.token = Some(body["token"].as_str().unwrap().to_owned());
    client.user_id = body["user"]["id"].as_i64().unwrap();
    client
}

fn ids(body: &serde_json::Value) -> Vec<i64> {
    body["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect()
}

struct World {
    pupil: Client,
    classmate: Client,
    poster: Client,
    local: Client,
    school_room: i64,
    forum_room: i64,
    local_room: i64,
}

async fn world(server: &TestServer) -> World {
    let pupil = site_user(server, "https://school.test", "s1").await;
    let classmate = site_user(server, "https://school.test", "s2").await;
    let poster = site_user(server, "https://forum.test", "f1").await;
    let local = server.user("stranger").await;
    World {
        school_room: pupil.create_room("class", "public").await,
        forum_room: poster.create_room("lounge", "public").await,
        local_room: local.create_room("open to all?", "public").await,
        pupil,
        classmate,
        poster,
        local,
    }
}

#[tokio::test]
async fn by_default_each_site_keeps_to_itself() {
    let server = server(false).await;
    let w = world(&server).await;
    let (_, directory) = w.poster.get("/api/v1/rooms/public").await;
    assert_eq!(
        ids(&directory),
        [w.forum_room],
        "the forum sees its own rooms only"
    );
    let (_, directory) = w.local.get("/api/v1/rooms/public").await;
    assert_eq!(ids(&directory), [w.local_room]);

    for path in [
        format!("/api/v1/rooms/{}", w.school_room),
        format!("/api/v1/rooms/{}/messages", w.school_room),
    ] {
        assert_error(
            &w.poster.get(&path).await,
            StatusCode::NOT_FOUND,
            "room_not_found",
        );
    }
    let join = w
        .poster
        .post(&format!("/api/v1/rooms/{}/join", w.school_room), json!({}))
        .await;
    assert_error(&join, StatusCode::NOT_FOUND, "room_not_found");
    let send = w
        .poster
        .post(
            &format!("/api/v1/rooms/{}/messages", w.school_room),
            json!({"client_msg_id": "x", "text": "hi kids"}),
        )
        .await;
    assert_error(&send, StatusCode::NOT_FOUND, "room_not_found");
    for stranger in [&w.poster, &w.local] {
        let dm = stranger
            .post("/api/v1/direct", json!({"user_id": w.pupil.user_id}))
            .await;
        assert_error(&dm, StatusCode::NOT_FOUND, "user_not_found");
        let profile = stranger
            .get(&format!("/api/v1/users/{}", w.pupil.user_id))
            .await;
        assert_error(&profile, StatusCode::NOT_FOUND, "user_not_found");
    }
    let invite = w
        .pupil
        .post(
            &format!("/api/v1/rooms/{}/members", w.school_room),
            json!({"user_id": w.poster.user_id}),
        )
        .await;
    assert_error(&invite, StatusCode::NOT_FOUND, "user_not_found");

    // Within the school everything works.
    w.classmate.join(w.school_room).await;
    let (status, _) = w
        .pupil
        .post("/api/v1/direct", json!({"user_id": w.classmate.user_id}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = w
        .classmate
        .get(&format!("/api/v1/users/{}", w.pupil.user_id))
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_shared_community_lets_every_site_meet() {
    let server = server(true).await;
    let w = world(&server).await;
    let (_, directory) = w.poster.get("/api/v1/rooms/public").await;
    let mut seen = ids(&directory);
    seen.sort();
    assert_eq!(seen, [w.school_room, w.forum_room, w.local_room]);
    w.poster.join(w.school_room).await;
    let (status, _) = w
        .poster
        .post("/api/v1/direct", json!({"user_id": w.pupil.user_id}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = w
        .local
        .post(
            &format!("/api/v1/rooms/{}/members", w.local_room),
            json!({"user_id": w.classmate.user_id}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Profiles still need a shared conversation.
    let profile = w
        .local
        .get(&format!("/api/v1/users/{}", w.pupil.user_id))
        .await;
    assert_error(&profile, StatusCode::NOT_FOUND, "user_not_found");
}
