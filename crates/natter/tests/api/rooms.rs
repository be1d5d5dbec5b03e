//! Conversations: group rooms, membership, direct conversations, the list.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{TestServer, assert_error};

#[tokio::test]
async fn group_rooms_join_invite_leave() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;

    let public = alice.create_room("Class 3 (2)", "public").await;
    let private = alice.create_room("Teachers", "private").await;

    // The public directory lists only the public room.
    let (_, dir) = bob.get("/api/v1/rooms/public").await;
    let ids: Vec<i64> = dir["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![public]);

    bob.join(public).await;
    bob.join(public).await; // joining twice changes nothing
    let (_, members) = alice.get(&format!("/api/v1/rooms/{public}/members")).await;
    assert_eq!(members["members"].as_array().unwrap().len(), 2);
    let roles: Vec<_> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["username"].clone(), m["role"].clone()))
        .collect();
    assert!(roles.contains(&(json!("alice"), json!("owner"))));
    assert!(roles.contains(&(json!("bob"), json!("member"))));

    // A private room cannot be joined, and to outsiders it does not exist.
    assert_error(
        &bob.post(&format!("/api/v1/rooms/{private}/join"), json!({}))
            .await,
        StatusCode::NOT_FOUND,
        "room_not_found",
    );
    assert_error(
        &bob.get(&format!("/api/v1/rooms/{private}")).await,
        StatusCode::NOT_FOUND,
        "room_not_found",
    );

    // Only owners and admins invite to a private room.
    let invite = alice
        .post(
            &format!("/api/v1/rooms/{private}/members"),
            json!({"user_id": bob.user_id}),
        )
        .await;
    assert_eq!(invite.0, StatusCode::NO_CONTENT, "{}", invite.1);
    let refused = bob
        .post(
            &format!("/api/v1/rooms/{private}/members"),
            json!({"user_id": carol.user_id}),
        )
        .await;
    assert_error(&refused, StatusCode::FORBIDDEN, "forbidden");
    // Any member may invite to a public room.
    let ok = bob
        .post(
            &format!("/api/v1/rooms/{public}/members"),
            json!({"user_id": carol.user_id}),
        )
        .await;
    assert_eq!(ok.0, StatusCode::NO_CONTENT);
    assert_error(
        &alice
            .post(
                &format!("/api/v1/rooms/{public}/members"),
                json!({"user_id": 999}),
            )
            .await,
        StatusCode::NOT_FOUND,
        "user_not_found",
    );

    // Renaming is for owners and admins.
    assert_error(
        &bob.patch(
            &format!("/api/v1/rooms/{public}"),
            json!({"title": "mine now"}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    let (status, renamed) = alice
        .patch(
            &format!("/api/v1/rooms/{public}"),
            json!({"title": "Class 3 (2) – 2026"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(renamed["room"]["title"], "Class 3 (2) – 2026");

    let (status, _) = carol
        .post(&format!("/api/v1/rooms/{public}/leave"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_error(
        &carol.get(&format!("/api/v1/rooms/{public}/members")).await,
        StatusCode::FORBIDDEN,
        "not_a_member",
    );
    let (_, members) = alice.get(&format!("/api/v1/rooms/{public}/members")).await;
    assert_eq!(members["members"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn one_direct_conversation_per_pair() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;

    let (status, first) = alice
        .post("/api/v1/direct", json!({"user_id": bob.user_id}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["room"]["kind"], "direct");
    let (status, again) = bob
        .post("/api/v1/direct", json!({"user_id": alice.user_id}))
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "whoever opens it second gets the same one"
    );
    assert_eq!(again["room"]["id"], first["room"]["id"]);
    let room = first["room"]["id"].as_i64().unwrap();

    bob.say(room, "d1", "hi alice").await;
    let (_, list) = alice.get("/api/v1/rooms").await;
    let row = &list["rooms"][0];
    assert_eq!(row["peer"]["username"], "bob");
    assert_eq!(row["unread_count"], 1);

    assert_error(
        &alice
            .post("/api/v1/direct", json!({"user_id": alice.user_id}))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_peer",
    );
    assert_error(
        &alice
            .post("/api/v1/direct", json!({"user_id": 424242}))
            .await,
        StatusCode::NOT_FOUND,
        "user_not_found",
    );
    assert_error(
        &alice
            .post(&format!("/api/v1/rooms/{room}/leave"), json!({}))
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    let carol = server.user("carol").await;
    assert_error(
        &carol.get(&format!("/api/v1/rooms/{room}/messages")).await,
        StatusCode::NOT_FOUND,
        "room_not_found",
    );
}

#[tokio::test]
async fn room_list_has_unread_counts_last_message_and_presence() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let quiet = alice.create_room("quiet", "public").await;
    let busy = alice.create_room("busy", "public").await;
    bob.join(quiet).await;
    bob.join(busy).await;
    alice.say(busy, "b1", "one").await;
    alice.say(busy, "b2", "two").await;
    let last = alice.say(busy, "b3", "three").await;

    // Bob polls, so he counts as online.
    bob.cursor().await;
    let (_, list) = bob.get("/api/v1/rooms").await;
    let rooms = list["rooms"].as_array().unwrap();
    assert_eq!(rooms[0]["id"], busy, "most recently active first");
    assert_eq!(rooms[0]["unread_count"], 3);
    assert_eq!(rooms[0]["last_message"]["text"], "three");
    assert_eq!(rooms[0]["online_count"], 1);
    assert_eq!(rooms[1]["unread_count"], 0);

    let seq = last["seq"].as_i64().unwrap();
    let (status, read) = bob
        .post(&format!("/api/v1/rooms/{busy}/read"), json!({"seq": seq}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["read_seq"], seq);
    // The marker never moves back, and never past the head.
    let (_, read) = bob
        .post(&format!("/api/v1/rooms/{busy}/read"), json!({"seq": 1}))
        .await;
    assert_eq!(read["read_seq"], seq);
    let (_, read) = bob
        .post(
            &format!("/api/v1/rooms/{busy}/read"),
            json!({"seq": 1_000_000}),
        )
        .await;
    assert_eq!(read["read_seq"], seq);
    let (_, list) = bob.get("/api/v1/rooms").await;
    assert_eq!(list["rooms"][0]["unread_count"], 0);
}

#[tokio::test]
async fn presence_follows_polls_with_a_grace_period() {
    let server = TestServer::start().await; // grace 500 ms in tests
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let room = alice.create_room("r", "public").await;
    bob.join(room).await;

    let online_of = |list: &serde_json::Value, name: &str| {
        list["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["username"] == name)
            .unwrap()["online"]
            .as_bool()
            .unwrap()
    };
    let (_, list) = alice.get(&format!("/api/v1/rooms/{room}/members")).await;
    assert!(!online_of(&list, "bob"));
    assert_eq!(list["online_count"], 0);

    // Alice waits on the event stream and sees Bob come online, then go
    // offline after his grace period.
    let mut cursor = alice.cursor().await;
    let bob_poller = bob.clone();
    let bob_cursor = bob.cursor().await;
    let bob_poll = tokio::spawn(async move { bob_poller.poll(&bob_cursor, 1).await });
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while seen.len() < 2 && std::time::Instant::now() < deadline {
        let (status, body) = alice.poll(&cursor, 5).await;
        assert_eq!(status, StatusCode::OK);
        for e in body["ephemeral"].as_array().unwrap() {
            if e["type"] == "presence" && e["user_id"] == bob.user_id {
                seen.push(e["online"].as_bool().unwrap());
            }
        }
        if seen == [true] {
            let (_, list) = alice.get(&format!("/api/v1/rooms/{room}/members")).await;
            assert!(online_of(&list, "bob"));
        }
        cursor = body["cursor"].as_str().unwrap().to_owned();
    }
    bob_poll.await.unwrap();
    assert_eq!(seen, vec![true, false]);
    let (_, list) = alice.get(&format!("/api/v1/rooms/{room}/members")).await;
    assert!(!online_of(&list, "bob"));
}
