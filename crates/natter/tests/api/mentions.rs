//! Mentions: `<@id>` in a message's text names a person by id, so a
//! rename breaks nothing; the stream and history list whom a message
//! mentions, and the room list counts unread mentions apart from unread
//! messages.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Client, TestServer};

async fn counts(client: &Client, room: i64) -> (i64, i64) {
    let (status, body) = client.get("/api/v1/rooms").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let row = body["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == room)
        .unwrap_or_else(|| panic!("no room {room} in {body}"))
        .clone();
    (
        row["unread_count"].as_i64().unwrap(),
        row["mention_count"].as_i64().unwrap(),
    )
}

/// Li Lei's room, with Han Meimei in it.
async fn class(server: &TestServer) -> (Client, Client, i64) {
    let lilei = server.user("lilei").await;
    let hanmei = server.user("hanmei").await;
    let room = lilei.create_room("class", "public").await;
    hanmei.join(room).await;
    (lilei, hanmei, room)
}

fn mentions(message: &Value) -> Vec<i64> {
    message["mentions"]
        .as_array()
        .unwrap_or_else(|| panic!("no mentions in {message}"))
        .iter()
        .map(|m| m.as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn a_mention_is_listed_and_counted_until_read() {
    let server = TestServer::start().await;
    let (lilei, hanmei, room) = class(&server).await;
    let cursor = hanmei.cursor().await;

    let plain = lilei.say(room, "m-1", "good morning").await;
    assert_eq!(mentions(&plain), Vec::<i64>::new());
    let text = format!(
        "<@{}> your homework, and mine <@{}>",
        hanmei.user_id, lilei.user_id
    );
    let sent = lilei.say(room, "m-2", &text).await;
    assert_eq!(mentions(&sent), [hanmei.user_id, lilei.user_id]);
    assert_eq!(counts(&hanmei, room).await, (2, 1));
    // Mentioning yourself never counts.
    assert_eq!(counts(&lilei, room).await, (0, 0));

    // The stream and history say the same.
    let (_, answer) = hanmei.poll(&cursor, 0).await;
    let delivered = answer["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["seq"] == sent["seq"])
        .unwrap();
    assert_eq!(mentions(delivered), [hanmei.user_id, lilei.user_id]);
    let (_, page) = hanmei.get(&format!("/api/v1/rooms/{room}/messages")).await;
    let listed = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["seq"] == sent["seq"])
        .unwrap();
    assert_eq!(mentions(listed), [hanmei.user_id, lilei.user_id]);

    let (status, _) = hanmei
        .post(
            &format!("/api/v1/rooms/{room}/read"),
            json!({"seq": sent["seq"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(counts(&hanmei, room).await, (0, 0));
}

#[tokio::test]
async fn edits_and_deletions_change_who_is_mentioned() {
    let server = TestServer::start().await;
    let (lilei, hanmei, room) = class(&server).await;
    let seq = lilei.say(room, "m-1", "who is on duty?").await["seq"]
        .as_i64()
        .unwrap();
    let path = format!("/api/v1/rooms/{room}/messages/{seq}");
    assert_eq!(counts(&hanmei, room).await, (1, 0));

    let text = format!("who is on duty? <@{}>", hanmei.user_id);
    let (status, edited) = lilei.patch(&path, json!({"text": text})).await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(mentions(&edited["message"]), [hanmei.user_id]);
    assert_eq!(counts(&hanmei, room).await, (1, 1));

    let (_, edited) = lilei.patch(&path, json!({"text": "never mind"})).await;
    assert_eq!(mentions(&edited["message"]), Vec::<i64>::new());
    assert_eq!(counts(&hanmei, room).await, (1, 0));

    lilei.patch(&path, json!({"text": text})).await;
    assert_eq!(counts(&hanmei, room).await, (1, 1));
    let (status, _) = lilei.delete(&path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(counts(&hanmei, room).await, (0, 0));
}

#[tokio::test]
async fn a_rename_keeps_the_mention_and_joining_later_counts_nothing_old() {
    let server = TestServer::start().await;
    let lilei = server.user("lilei").await;
    let hanmei = server.user("hanmei").await;
    let late = server.user("late").await;
    let room = lilei.create_room("class", "public").await;
    hanmei.join(room).await;
    let text = format!("<@{}> and <@{}>", hanmei.user_id, late.user_id);
    let sent = lilei.say(room, "m-1", &text).await;
    let (status, _) = hanmei
        .patch("/api/v1/me", json!({"display_name": "韩梅梅"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, page) = hanmei.get(&format!("/api/v1/rooms/{room}/messages")).await;
    let listed = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["seq"] == sent["seq"])
        .unwrap();
    assert_eq!(
        listed["text"],
        text.as_str(),
        "the text names ids, not names"
    );
    assert_eq!(mentions(listed), [hanmei.user_id, late.user_id]);
    // Someone mentioned before they joined has nothing unread from it.
    late.join(room).await;
    assert_eq!(counts(&late, room).await, (0, 0));
    // Near misses are text, not mentions.
    let near = lilei
        .say(
            room,
            "m-2",
            &format!(
                "<@ {}> <@{}x> @{}",
                hanmei.user_id, hanmei.user_id, hanmei.user_id
            ),
        )
        .await;
    assert_eq!(mentions(&near), Vec::<i64>::new());
}
