//! Big rooms: above `big_room_members`, presence and typing reach only the
//! members whose polls watch the room, who also get its online count; a
//! member coming online wakes nobody else. Small rooms and direct
//! conversations keep presence for everyone in them.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Client, TestServer, assert_error, ephemeral_items as items};

/// A server where rooms of more than 3 members are big, and presence
/// stays put for the length of a test.
async fn server() -> TestServer {
    TestServer::start_with(|c| {
        c.hub.big_room_members = 3;
        c.hub.presence_grace = Duration::from_secs(60);
    })
    .await
}

async fn poll_watching(client: &Client, cursor: &str, watch: &str, timeout: u64) -> Value {
    let (status, body) = client
        .get(&format!(
            "/api/v1/events?cursor={cursor}&timeout={timeout}&watch={watch}"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// A room of five: owner, watcher, bystander and two more.
async fn big_room(server: &TestServer) -> (Client, Client, Client, i64) {
    let owner = server.user("owner").await;
    let room = owner.create_room("lecture hall", "public").await;
    let watcher = server.user("watcher").await;
    let bystander = server.user("bystander").await;
    let late = server.user("latecomer").await;
    let other = server.user("other").await;
    for c in [&watcher, &bystander, &late, &other] {
        c.join(room).await;
    }
    (watcher, bystander, late, room)
}

/// Cursors of the watcher (watching `room`) and the bystander, past the
/// presence news of their own arrival (gathered for 250 ms).
async fn settled_cursors(watcher: &Client, bystander: &Client, room: i64) -> (String, String) {
    let watching = watcher.cursor().await;
    let not_watching = bystander.cursor().await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let w = poll_watching(watcher, &watching, &room.to_string(), 0).await;
    let b = poll_watching(bystander, &not_watching, "", 0).await;
    (
        w["cursor"].as_str().unwrap().to_owned(),
        b["cursor"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn presence_in_a_big_room_reaches_only_those_looking_at_it() {
    let server = server().await;
    let (watcher, bystander, late, room) = big_room(&server).await;
    let (watching, not_watching) = settled_cursors(&watcher, &bystander, room).await;
    let (w, b) = (watcher.clone(), bystander.clone());
    let (wc, bc) = (watching.clone(), not_watching.clone());
    let watched = tokio::spawn(async move { poll_watching(&w, &wc, &room.to_string(), 5).await });
    let unwatched = tokio::spawn(async move { poll_watching(&b, &bc, "", 2).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The latecomer comes online.
    late.cursor().await;
    let answer = watched.await.unwrap();
    let presence = items(&answer, "presence");
    assert!(
        presence
            .iter()
            .any(|p| p["user_id"] == late.user_id && p["online"] == true),
        "{answer}"
    );
    let counts = items(&answer, "room_online");
    assert_eq!(counts.len(), 1, "{answer}");
    assert_eq!(counts[0]["room_id"], room);
    assert_eq!(
        counts[0]["online_count"], 3,
        "watcher, bystander, latecomer"
    );
    // Someone not looking at the room slept through it.
    let answer = unwatched.await.unwrap();
    assert!(
        answer["ephemeral"].as_array().unwrap().is_empty(),
        "{answer}"
    );
    // The room list still counts everyone online.
    let (_, rooms) = bystander.get("/api/v1/rooms").await;
    assert_eq!(rooms["rooms"][0]["online_count"], 3, "{rooms}");
}

#[tokio::test]
async fn typing_in_a_big_room_reaches_only_those_looking_at_it() {
    let server = server().await;
    let (watcher, bystander, late, room) = big_room(&server).await;
    let watching = watcher.cursor().await;
    let not_watching = bystander.cursor().await;
    let (status, _) = late
        .post(
            &format!("/api/v1/rooms/{room}/typing"),
            json!({"typing": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // Typing before anyone watched reached nobody; now the watcher looks.
    let (w, wc) = (watcher.clone(), watching.clone());
    let watched = tokio::spawn(async move { poll_watching(&w, &wc, &room.to_string(), 5).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    late.say(room, "m-1", "done").await;
    let (status, _) = late
        .post(
            &format!("/api/v1/rooms/{room}/typing"),
            json!({"typing": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut answer = watched.await.unwrap();
    if items(&answer, "typing").is_empty() {
        // The message woke the poll first; the notice is next.
        let cursor = answer["cursor"].as_str().unwrap().to_owned();
        answer = poll_watching(&watcher, &cursor, &room.to_string(), 5).await;
    }
    assert_eq!(items(&answer, "typing").len(), 1, "{answer}");
    let (_, answer) = bystander
        .get(&format!("/api/v1/events?cursor={not_watching}&timeout=0"))
        .await;
    assert!(items(&answer, "typing").is_empty(), "{answer}");
}

#[tokio::test]
async fn someone_who_leaves_a_big_room_they_watch_hears_no_more_typing() {
    let server = server().await;
    let (watcher, _bystander, late, room) = big_room(&server).await;
    let cursor = watcher.cursor().await;
    let (w, c) = (watcher.clone(), cursor.clone());
    let watched = tokio::spawn(async move { poll_watching(&w, &c, &room.to_string(), 5).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _) = watcher
        .post(&format!("/api/v1/rooms/{room}/leave"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Their own leave ends the watching poll; they linger as a watcher.
    let answer = watched.await.unwrap();
    let cursor = answer["cursor"].as_str().unwrap().to_owned();
    let (status, _) = late
        .post(
            &format!("/api/v1/rooms/{room}/typing"),
            json!({"typing": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let answer = poll_watching(&watcher, &cursor, "", 1).await;
    assert!(items(&answer, "typing").is_empty(), "{answer}");
}

#[tokio::test]
async fn a_big_rooms_watchers_hear_a_burst_of_joins_in_one_answer() {
    // A batch long enough for five joins one after another on a busy
    // machine (CI once took over the default 250 ms between two).
    let server = TestServer::start_with(|c| {
        c.hub.big_room_members = 3;
        c.hub.presence_grace = Duration::from_secs(60);
        c.hub.presence_batch = Duration::from_millis(1500);
    })
    .await;
    let (watcher, bystander, _late, room) = big_room(&server).await;
    let mut newcomers = Vec::new();
    for i in 0..5 {
        newcomers.push(server.user(&format!("newcomer{i}")).await);
    }
    let (cursor, _) = settled_cursors(&watcher, &bystander, room).await;
    let (w, c) = (watcher.clone(), cursor.clone());
    let watched = tokio::spawn(async move { poll_watching(&w, &c, &room.to_string(), 10).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    for newcomer in &newcomers {
        newcomer.join(room).await;
    }
    // Woken once for the batch, not once per join.
    let answer = watched.await.unwrap();
    let joins = event_types(&answer)
        .iter()
        .filter(|t| *t == "member_joined")
        .count();
    assert!(joins >= 2, "{answer}");
}

#[tokio::test]
async fn a_direct_conversation_keeps_presence_whatever_big_room_is_shared() {
    let server = server().await;
    let (_watcher, bystander, late, _room) = big_room(&server).await;
    let (status, _) = bystander
        .post("/api/v1/direct", json!({"user_id": late.user_id}))
        .await;
    assert!(status.is_success());
    let cursor = bystander.cursor().await;
    let (b, c) = (bystander.clone(), cursor.clone());
    let poll = tokio::spawn(async move { poll_watching(&b, &c, "", 5).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    late.cursor().await;
    let answer = poll.await.unwrap();
    assert!(
        items(&answer, "presence")
            .iter()
            .any(|p| p["user_id"] == late.user_id),
        "{answer}"
    );
}

#[tokio::test]
async fn watch_takes_up_to_eight_room_ids() {
    let server = server().await;
    let user = server.user("someone").await;
    let cursor = user.cursor().await;
    for bad in [
        "0",
        "01",
        "-1",
        "a",
        "1,,2",
        ",",
        "1,2,3,4,5,6,7,8,9",
        "99999999999999999999",
    ] {
        assert_error(
            &user
                .get(&format!(
                    "/api/v1/events?cursor={cursor}&timeout=0&watch={bad}"
                ))
                .await,
            StatusCode::BAD_REQUEST,
            "invalid_watch",
        );
    }
    // Rooms the user is not in (or that do not exist) are simply not watched.
    let answer = poll_watching(&user, &cursor, "1,2,3,4,5,6,7,8", 0).await;
    assert!(answer["events"].as_array().unwrap().is_empty());
}

fn event_types(answer: &Value) -> Vec<String> {
    answer["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn joins_and_leaves_in_a_big_room_wait_for_the_next_message_unless_watched() {
    let server = server().await;
    let (watcher, bystander, late, room) = big_room(&server).await;
    let (watching, not_watching) = settled_cursors(&watcher, &bystander, room).await;
    let (w, wc) = (watcher.clone(), watching.clone());
    let watched = tokio::spawn(async move { poll_watching(&w, &wc, &room.to_string(), 10).await });
    let (b, bc) = (bystander.clone(), not_watching.clone());
    let unwatched = tokio::spawn(async move { poll_watching(&b, &bc, "", 10).await });
    tokio::time::sleep(Duration::from_millis(300)).await;

    let newcomer = server.user("newcomer").await;
    let newcomer_cursor = newcomer.cursor().await;
    newcomer.join(room).await;
    let (status, _) = late
        .post(&format!("/api/v1/rooms/{room}/leave"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // The watcher hears of the join at once.
    let answer = tokio::time::timeout(Duration::from_secs(5), watched)
        .await
        .expect("the watcher is woken")
        .unwrap();
    assert_eq!(event_types(&answer)[0], "member_joined", "{answer}");
    // The member who joined hears of it too.
    let own = newcomer.poll(&newcomer_cursor, 5).await.1;
    assert!(
        event_types(&own).contains(&"member_joined".to_owned()),
        "{own}"
    );
    // The bystander's poll sleeps through both...
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        !unwatched.is_finished(),
        "a join woke a member not watching"
    );
    // ...and the next message brings them along, in order, none skipped.
    watcher.say(room, "after-joins", "hello hall").await;
    let answer = tokio::time::timeout(Duration::from_secs(5), unwatched)
        .await
        .expect("the message wakes the bystander")
        .unwrap();
    assert_eq!(
        event_types(&answer),
        ["member_joined", "member_left", "message"],
        "{answer}"
    );
    let seqs: Vec<i64> = answer["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");

    // With nothing else new, a poll answers with joins when it times out.
    let cursor = answer["cursor"].as_str().unwrap().to_owned();
    let another = server.user("another").await;
    another.join(room).await;
    let started = std::time::Instant::now();
    let answer = poll_watching(&bystander, &cursor, "", 2).await;
    assert!(started.elapsed() >= Duration::from_millis(1500), "{answer}");
    assert_eq!(event_types(&answer), ["member_joined"], "{answer}");

    // A small room's joins wake everyone at once, as before.
    let small = watcher.create_room("seminar", "public").await;
    bystander.join(small).await;
    let cursor = answer["cursor"].as_str().unwrap().to_owned();
    let (b, bc) = (bystander.clone(), cursor.clone());
    let poll = tokio::spawn(async move { poll_watching(&b, &bc, "", 10).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    another.join(small).await;
    let answer = tokio::time::timeout(Duration::from_secs(3), poll)
        .await
        .expect("a small room's join wakes its members")
        .unwrap();
    assert_eq!(event_types(&answer), ["member_joined"], "{answer}");
}

/// Polls, watching `room`, until a `room_online` item says `want`;
/// returns the cursor after it.
async fn until_online_count(watcher: &Client, mut cursor: String, room: i64, want: i64) -> String {
    let watch = room.to_string();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the online count never became {want}"
        );
        let answer = poll_watching(watcher, &cursor, &watch, 1).await;
        cursor = answer["cursor"].as_str().unwrap().to_owned();
        if items(&answer, "room_online")
            .last()
            .is_some_and(|c| c["online_count"] == want)
        {
            return cursor;
        }
    }
}

#[tokio::test]
async fn an_online_member_leaving_a_big_room_lowers_its_watchers_count() {
    let server = server().await;
    let (watcher, _bystander, late, room) = big_room(&server).await;
    let cursor = watcher.cursor().await;
    late.cursor().await;
    // Both online, once the arrivals are announced.
    let cursor = until_online_count(&watcher, cursor, room, 2).await;
    let (status, _) = late
        .post(&format!("/api/v1/rooms/{room}/leave"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    until_online_count(&watcher, cursor, room, 1).await;
}
