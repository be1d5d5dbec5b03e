//! Typing notices, "Seen" in direct conversations and notification
//! choices: who gets them, how often, for how long, and what is refused.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Client, TestServer, WAKE_BOUND, assert_error, ephemeral_items as items};

fn typing_path(room: i64) -> String {
    format!("/api/v1/rooms/{room}/typing")
}

async fn typing(client: &Client, room: i64, typing: bool) -> bool {
    let (status, body) = client
        .post(&typing_path(room), json!({ "typing": typing }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["announced"].as_bool().unwrap()
}

async fn pair_in_room(server: &TestServer) -> (Client, Client, i64) {
    let lilei = server.user("lilei").await;
    let hanmei = server.user("hanmei").await;
    let room = lilei.create_room("class", "public").await;
    hanmei.join(room).await;
    (lilei, hanmei, room)
}

#[tokio::test]
async fn a_typing_notice_reaches_the_other_members_at_once() {
    let server = TestServer::start().await;
    let (lilei, hanmei, room) = pair_in_room(&server).await;
    // Both online first, so the poll below has nothing else to answer with.
    let own_cursor = lilei.cursor().await;
    let cursor = hanmei.cursor().await;
    let poll = hanmei.parked_poll(&cursor, 10).await;
    let started = Instant::now();
    assert!(typing(&lilei, room, true).await);
    let (status, answer) = poll.await.unwrap();
    let took = started.elapsed();
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(took < WAKE_BOUND, "typing took {took:?}");
    let notices = items(&answer, "typing");
    assert_eq!(notices.len(), 1, "{answer}");
    assert_eq!(notices[0]["room_id"], room);
    assert_eq!(notices[0]["user_id"], lilei.user_id);
    assert_eq!(notices[0]["typing"], true);
    let left = notices[0]["expires_in_ms"].as_i64().unwrap();
    assert!((4_000..=6_000).contains(&left), "{left}");
    // The typer's own stream does not echo it.
    let (_, own) = lilei.poll(&own_cursor, 0).await;
    assert!(items(&own, "typing").is_empty(), "{own}");
}

#[tokio::test]
async fn notices_are_throttled_stopped_and_cleared_by_the_message() {
    let server = TestServer::start().await;
    let (lilei, hanmei, room) = pair_in_room(&server).await;
    let cursor = hanmei.cursor().await;
    assert!(typing(&lilei, room, true).await);
    // Keystrokes within the renewal period announce nothing more.
    assert!(!typing(&lilei, room, true).await);
    assert!(!typing(&lilei, room, true).await);
    let (_, answer) = hanmei.poll(&cursor, 0).await;
    assert_eq!(items(&answer, "typing").len(), 1, "{answer}");
    let cursor = answer["cursor"].as_str().unwrap().to_owned();

    // Stopping is announced once.
    assert!(typing(&lilei, room, false).await);
    assert!(!typing(&lilei, room, false).await);
    let (_, answer) = hanmei.poll(&cursor, 0).await;
    let notices = items(&answer, "typing");
    assert_eq!(notices.len(), 1, "{answer}");
    assert_eq!(notices[0]["typing"], false);

    // A message ends the notice: typing again is news at once, and the
    // notice says it came after the message, though one answer brings both.
    assert!(typing(&lilei, room, true).await);
    let cursor = answer["cursor"].as_str().unwrap().to_owned();
    let said = lilei.say(room, "t-1", "hello").await["seq"]
        .as_i64()
        .unwrap();
    assert!(typing(&lilei, room, true).await);
    // The newer notice replaced the older one in the stream.
    let (_, answer) = hanmei.poll(&cursor, 0).await;
    let notices = items(&answer, "typing");
    assert_eq!(notices.len(), 1, "{answer}");
    assert_eq!(notices[0]["seq"], said, "{answer}");
}

#[tokio::test]
async fn a_room_announces_at_most_ten_typers_at_once() {
    let server = TestServer::start().await;
    let owner = server.user("owner").await;
    let room = owner.create_room("lecture", "public").await;
    let mut typers = Vec::new();
    for i in 0..11 {
        let user = server.user(&format!("pupil{i}")).await;
        user.join(room).await;
        typers.push(user);
    }
    let cursor = owner.cursor().await;
    let mut announced = 0;
    for user in &typers {
        announced += usize::from(typing(user, room, true).await);
    }
    assert_eq!(announced, 10);
    let (_, answer) = owner.poll(&cursor, 0).await;
    assert_eq!(items(&answer, "typing").len(), 10, "{answer}");
    // One of them stops: there is room for the eleventh.
    assert!(typing(&typers[0], room, false).await);
    assert!(typing(&typers[10], room, true).await);
}

#[tokio::test]
async fn only_members_type_and_only_members_hear_it() {
    let server = TestServer::start().await;
    let (lilei, _hanmei, room) = pair_in_room(&server).await;
    let outsider = server.user("outsider").await;
    let elsewhere = outsider.create_room("elsewhere", "private").await;
    let cursor = outsider.cursor().await;
    assert_error(
        &outsider
            .post(&typing_path(room), json!({"typing": true}))
            .await,
        StatusCode::FORBIDDEN,
        "not_a_member",
    );
    assert_error(
        &lilei
            .post(&typing_path(elsewhere), json!({"typing": true}))
            .await,
        StatusCode::NOT_FOUND,
        "room_not_found",
    );
    assert!(typing(&lilei, room, true).await);
    let (_, answer) = outsider.poll(&cursor, 0).await;
    assert!(items(&answer, "typing").is_empty(), "{answer}");

    // Bad input changes nothing and says why.
    for body in [json!({}), json!({"typing": "yes"}), json!([true])] {
        let reply = lilei.post(&typing_path(room), body).await;
        assert_eq!(reply.0, StatusCode::BAD_REQUEST, "{}", reply.1);
    }
    assert_error(
        &server
            .client()
            .post(&typing_path(room), json!({"typing": true}))
            .await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
}

#[tokio::test]
async fn a_stale_typing_notice_is_never_delivered() {
    // Presence stays put while the notice goes stale, so nothing else is new.
    let server = TestServer::start_with(|c| c.hub.presence_grace = Duration::from_secs(60)).await;
    let (lilei, hanmei, room) = pair_in_room(&server).await;
    let cursor = hanmei.cursor().await;
    assert!(typing(&lilei, room, true).await);
    tokio::time::sleep(natter::hub::TYPING_TTL + Duration::from_millis(200)).await;
    // A client that comes back later is not told of typing long over,
    // and its poll waits instead of answering with nothing.
    let started = Instant::now();
    let (status, answer) = hanmei.poll(&cursor, 1).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(
        answer["ephemeral"].as_array().unwrap().is_empty(),
        "{answer}"
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
    let moved = answer["cursor"].as_str().unwrap();
    assert_ne!(moved, cursor, "the cursor moves past the stale notice");
}

#[tokio::test]
async fn a_direct_conversation_shows_how_far_the_other_person_read() {
    let server = TestServer::start().await;
    let (lilei, hanmei, _) = pair_in_room(&server).await;
    let (status, opened) = lilei
        .post("/api/v1/direct", json!({"user_id": hanmei.user_id}))
        .await;
    assert!(status.is_success(), "{opened}");
    let direct = opened["room"]["id"].as_i64().unwrap();
    let sent = lilei.say(direct, "d-1", "are you there?").await;
    let seq = sent["seq"].as_i64().unwrap();
    let cursor = lilei.cursor().await;
    let poll = lilei.parked_poll(&cursor, 10).await;
    let (status, _) = hanmei
        .post(&format!("/api/v1/rooms/{direct}/read"), json!({"seq": seq}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, answer) = poll.await.unwrap();
    let receipts = items(&answer, "read_receipt");
    assert_eq!(receipts.len(), 1, "{answer}");
    assert_eq!(receipts[0]["room_id"], direct);
    assert_eq!(receipts[0]["user_id"], hanmei.user_id);
    assert_eq!(receipts[0]["seq"], seq);
    let (_, rooms) = lilei.get("/api/v1/rooms").await;
    let row = rooms["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == direct)
        .unwrap();
    assert_eq!(row["peer_read_seq"], seq, "{row}");
}

#[tokio::test]
async fn group_rooms_and_private_servers_send_no_receipts() {
    let server = TestServer::start_with(|c| c.chat.read_receipts = false).await;
    let (lilei, hanmei, room) = pair_in_room(&server).await;
    let (_, opened) = lilei
        .post("/api/v1/direct", json!({"user_id": hanmei.user_id}))
        .await;
    let direct = opened["room"]["id"].as_i64().unwrap();
    let seq = lilei.say(direct, "d-1", "hi").await["seq"]
        .as_i64()
        .unwrap();
    let group_seq = lilei.say(room, "g-1", "hi all").await["seq"]
        .as_i64()
        .unwrap();
    let cursor = lilei.cursor().await;
    for (r, s) in [(direct, seq), (room, group_seq)] {
        let (status, _) = hanmei
            .post(&format!("/api/v1/rooms/{r}/read"), json!({"seq": s}))
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (_, answer) = lilei.poll(&cursor, 0).await;
    assert!(items(&answer, "read_receipt").is_empty(), "{answer}");
    let (_, rooms) = lilei.get("/api/v1/rooms").await;
    for row in rooms["rooms"].as_array().unwrap() {
        assert!(row["peer_read_seq"].is_null(), "{row}");
    }
}

#[tokio::test]
async fn notification_choices_are_kept_per_member_and_reach_every_session() {
    let server = TestServer::start().await;
    let (lilei, hanmei, room) = pair_in_room(&server).await;
    let (_, opened) = lilei
        .post("/api/v1/direct", json!({"user_id": hanmei.user_id}))
        .await;
    let direct = opened["room"]["id"].as_i64().unwrap();
    let level_of = |rooms: &Value, id: i64| {
        rooms["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap()["notifications"]
            .clone()
    };
    let (_, rooms) = lilei.get("/api/v1/rooms").await;
    assert_eq!(level_of(&rooms, room), "mentions", "a group's default");
    assert_eq!(
        level_of(&rooms, direct),
        "all",
        "a direct conversation's default"
    );

    let mut phone = server.client();
    phone.login("lilei").await;
    let cursor = phone.cursor().await;
    let path = format!("/api/v1/rooms/{room}/notifications");
    let (status, body) = lilei.put_json(&path, json!({"level": "all"})).await;
    assert_eq!(
        (status, body["level"].clone()),
        (StatusCode::OK, json!("all"))
    );
    let (_, answer) = phone.poll(&cursor, 0).await;
    let echoed = items(&answer, "notifications");
    assert_eq!(echoed.len(), 1, "{answer}");
    assert_eq!(
        (echoed[0]["room_id"].clone(), echoed[0]["level"].clone()),
        (json!(room), json!("all"))
    );
    let (_, rooms) = phone.get("/api/v1/rooms").await;
    assert_eq!(level_of(&rooms, room), "all");
    // Someone else's choice is their own.
    let (_, theirs) = hanmei.get("/api/v1/rooms").await;
    assert_eq!(level_of(&theirs, room), "mentions");

    let (_, body) = lilei.put_json(&path, json!({"level": "none"})).await;
    assert_eq!(body["level"], "none");
    let (_, body) = lilei.put_json(&path, json!({"level": "default"})).await;
    assert_eq!(body["level"], "mentions");

    for bad in [
        json!({"level": "loud"}),
        json!({"level": 1}),
        json!({}),
        json!("all"),
    ] {
        let reply = lilei.put_json(&path, bad).await;
        assert_eq!(reply.0, StatusCode::BAD_REQUEST, "{}", reply.1);
    }
    let (_, rooms) = lilei.get("/api/v1/rooms").await;
    assert_eq!(
        level_of(&rooms, room),
        "mentions",
        "bad input changed nothing"
    );
    let outsider = server.user("outsider").await;
    assert_error(
        &outsider.put_json(&path, json!({"level": "all"})).await,
        StatusCode::FORBIDDEN,
        "not_a_member",
    );
    assert_error(
        &server
            .client()
            .put_json(&path, json!({"level": "all"}))
            .await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
}
