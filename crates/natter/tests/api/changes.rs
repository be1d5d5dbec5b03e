//! Messages people change and answer: edit, delete, react, reply; who may,
//! what is refused, and what history, the room list and the stream show.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Client, TestServer, assert_error};

fn msg(room: i64, seq: i64) -> String {
    format!("/api/v1/rooms/{room}/messages/{seq}")
}

fn reaction(room: i64, seq: i64, reaction: &str) -> String {
    let encoded: String = url_encode(reaction);
    format!("/api/v1/rooms/{room}/messages/{seq}/reactions/{encoded}")
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn head(client: &Client, room: i64) -> i64 {
    let (_, body) = client.get(&format!("/api/v1/rooms/{room}")).await;
    body["room"]["head_seq"]
        .as_i64()
        .or_else(|| body["head_seq"].as_i64())
        .unwrap_or_else(|| panic!("{body}"))
}

async fn history(client: &Client, room: i64) -> Vec<Value> {
    let (status, body) = client
        .get(&format!("/api/v1/rooms/{room}/messages?limit=100"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["messages"].as_array().unwrap().clone()
}

/// The `type` of each event of a poll answer, in order.
fn event_types(polled: &Value) -> Vec<&str> {
    polled["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect()
}

fn find(history: &[Value], seq: i64) -> &Value {
    history
        .iter()
        .find(|m| m["seq"] == seq)
        .unwrap_or_else(|| panic!("no seq {seq} in {history:?}"))
}

/// A room of alice (owner) with bob and carol as members, and one
/// message of bob's.
async fn setup(server: &TestServer) -> (Client, Client, Client, i64, i64) {
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let room = alice.create_room("r", "public").await;
    bob.join(room).await;
    carol.join(room).await;
    let sent = bob.say(room, "b1", "hello there").await;
    (alice, bob, carol, room, sent["seq"].as_i64().unwrap())
}

#[tokio::test]
async fn editing_shows_the_new_text_to_everyone_and_only_the_sender_may() {
    let server = TestServer::start().await;
    let (alice, bob, carol, room, seq) = setup(&server).await;
    let mut cursor = carol.cursor().await;

    let (status, body) = bob
        .patch(&msg(room, seq), json!({"text": "hello, world"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["changed"], true);
    assert_eq!(body["message"]["text"], "hello, world");
    assert!(body["message"]["edited_at"].is_i64());

    // Everyone sees it at once, as an event of its own.
    let (_, polled) = carol.poll(&cursor, 5).await;
    let events = polled["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{polled}");
    assert_eq!(events[0]["type"], "message_edited");
    assert_eq!(events[0]["target_seq"], seq);
    assert_eq!(events[0]["text"], "hello, world");
    cursor = polled["cursor"].as_str().unwrap().to_owned();

    // The same text again changes nothing and appends nothing.
    let before = head(&alice, room).await;
    let (status, body) = bob
        .patch(&msg(room, seq), json!({"text": "hello, world"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["changed"], false);
    assert_eq!(head(&alice, room).await, before);
    let (_, polled) = carol.poll(&cursor, 0).await;
    assert_eq!(polled["events"], json!([]));

    // History shows the current text, marked edited.
    let page = history(&carol, room).await;
    let m = find(&page, seq);
    assert_eq!(m["text"], "hello, world");
    assert!(m["edited_at"].is_i64());
    assert!(
        page.iter().all(|e| e["type"] != "message_edited"),
        "{page:?}"
    );

    // Only the sender edits: not the owner, not another member.
    for other in [&alice, &carol] {
        let reply = other
            .patch(&msg(room, seq), json!({"text": "mine now"}))
            .await;
        assert_error(&reply, StatusCode::FORBIDDEN, "forbidden");
    }
    // Bad input changes nothing.
    let long = "x".repeat(4001);
    for (body, code) in [
        (json!({"text": ""}), "empty_text"),
        (json!({"text": "  \n"}), "empty_text"),
        (json!({"text": long}), "text_too_long"),
        (json!({"text": "a\u{0}b"}), "control_characters"),
    ] {
        let reply = bob.patch(&msg(room, seq), body).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, code);
    }
    for bad in [json!({}), json!({"text": 5}), json!([1])] {
        let (status, _) = bob.patch(&msg(room, seq), bad).await;
        assert!(status.is_client_error(), "{status}");
    }
    // Not a message, no such seq, another room's.
    let other_room = bob.create_room("other", "public").await;
    for path in [msg(room, 1), msg(room, 999), msg(other_room, seq)] {
        let reply = bob.patch(&path, json!({"text": "x"})).await;
        assert_error(&reply, StatusCode::NOT_FOUND, "message_not_found");
    }
    for path in [
        format!("/api/v1/rooms/{room}/messages/0"),
        format!("/api/v1/rooms/{room}/messages/-1"),
        format!("/api/v1/rooms/{room}/messages/abc"),
    ] {
        let reply = bob.patch(&path, json!({"text": "x"})).await;
        assert_eq!(reply.0, StatusCode::BAD_REQUEST, "{path}: {}", reply.1);
    }
    assert_eq!(
        find(&history(&carol, room).await, seq)["text"],
        "hello, world"
    );

    // A former member edits nothing; an outsider finds nothing.
    bob.post(&format!("/api/v1/rooms/{room}/leave"), json!({}))
        .await;
    let reply = bob
        .patch(&msg(room, seq), json!({"text": "after leaving"}))
        .await;
    assert_error(&reply, StatusCode::FORBIDDEN, "not_a_member");
    let dave = server.user("dave").await;
    let private = alice.create_room("private", "private").await;
    let secret = alice.say(private, "s1", "secret").await["seq"]
        .as_i64()
        .unwrap();
    let reply = dave
        .patch(&msg(private, secret), json!({"text": "x"}))
        .await;
    assert_error(&reply, StatusCode::NOT_FOUND, "room_not_found");
    let reply = dave.get(&msg(private, secret)).await;
    assert_error(&reply, StatusCode::NOT_FOUND, "room_not_found");
}

#[tokio::test]
async fn the_edit_window_closes() {
    let server = TestServer::start_with(|c| {
        c.chat.edit_window = Some(std::time::Duration::from_millis(400));
    })
    .await;
    let (_, bob, _, room, seq) = setup(&server).await;
    let (status, _) = bob
        .patch(&msg(room, seq), json!({"text": "quick fix"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let reply = bob
        .patch(&msg(room, seq), json!({"text": "too late"}))
        .await;
    assert_error(&reply, StatusCode::FORBIDDEN, "edit_window_closed");
    // Deleting is never limited.
    let (status, _) = bob.delete(&msg(room, seq)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn deleting_removes_the_text_everywhere_and_managers_may_delete_any() {
    let server = TestServer::start().await;
    let (alice, bob, carol, room, seq) = setup(&server).await;
    let from_start = carol.cursor().await;
    let unique = "a text that must leave the disk 7f3a9c";
    let edited = "its edit must leave too 1b2c3d";
    let own = carol.say(room, "c1", unique).await["seq"].as_i64().unwrap();
    carol.patch(&msg(room, own), json!({"text": edited})).await;
    carol.put(&reaction(room, own, "👍")).await;

    // A member may not delete another's message; the owner may.
    let reply = bob.delete(&msg(room, own)).await;
    assert_error(&reply, StatusCode::FORBIDDEN, "forbidden");
    let (status, body) = alice.delete(&msg(room, seq)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["message"]["deleted"], true);
    // The sender deletes their own; again changes nothing.
    let (_, body) = carol.delete(&msg(room, own)).await;
    assert_eq!(body["changed"], true);
    assert_eq!(body["message"]["text"], "");
    assert_eq!(body["message"]["reactions"], json!([]));
    let before = head(&alice, room).await;
    let (status, body) = carol.delete(&msg(room, own)).await;
    assert_eq!(
        (status, body["changed"].clone()),
        (StatusCode::OK, json!(false))
    );
    assert_eq!(head(&alice, room).await, before);

    // Nothing more happens to a deleted message.
    let reply = carol.patch(&msg(room, own), json!({"text": "back"})).await;
    assert_error(&reply, StatusCode::CONFLICT, "message_deleted");
    let reply = bob.put(&reaction(room, own, "👍")).await;
    assert_error(&reply, StatusCode::CONFLICT, "message_deleted");
    let reply = bob
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            json!({"client_msg_id": "r1", "text": "re", "reply_to": own}),
        )
        .await;
    assert_error(&reply, StatusCode::CONFLICT, "message_deleted");

    // History and the stream from an old cursor carry no trace of the text.
    let page = history(&bob, room).await;
    let m = find(&page, own);
    assert_eq!(
        (m["deleted"].clone(), m["text"].clone()),
        (json!(true), json!(""))
    );
    let (_, polled) = carol.poll(&from_start, 0).await;
    let answer = polled.to_string();
    assert!(
        !answer.contains(unique) && !answer.contains(edited),
        "{answer}"
    );
    let kinds = event_types(&polled);
    assert_eq!(
        kinds,
        [
            "message",
            "message_edited",
            "reaction_added",
            "message_deleted",
            "message_deleted"
        ]
    );
    // The room list's preview and unread counts honour it.
    let (_, rooms) = bob.get("/api/v1/rooms").await;
    let listing = rooms["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == room)
        .unwrap()
        .clone();
    assert_eq!(listing["last_message"]["deleted"], true, "{listing}");
    assert_eq!(listing["unread_count"], 0, "{listing}");
}

#[tokio::test]
async fn a_deleted_text_is_gone_from_the_data_folder() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let room = alice.create_room("r", "public").await;
    let unique = "disk scrub check 4e5f6a7b";
    let seq = alice.say(room, "a", unique).await["seq"].as_i64().unwrap();
    alice
        .patch(&msg(room, seq), json!({"text": "edited scrub 8c9d"}))
        .await;
    alice.delete(&msg(room, seq)).await;
    let data = server.stop().await;
    let folder = data.path().join("data");
    // The WAL keeps old page images until new frames overwrite them (a
    // running natter only checkpoints PASSIVE-ly and never truncates it):
    // truncate it here, then check that the database pages hold no trace.
    let conn = rusqlite::Connection::open(folder.join("natter.db")).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    drop(conn);
    for entry in std::fs::read_dir(&folder).unwrap() {
        let path = entry.unwrap().path();
        if !path.is_file() {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        for needle in [unique, "edited scrub 8c9d"] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{needle:?} is still in {path:?}"
            );
        }
    }
}

#[tokio::test]
async fn reactions_toggle_per_user_and_are_bounded() {
    let server = TestServer::start().await;
    let (alice, bob, carol, room, seq) = setup(&server).await;
    let cursor = bob.cursor().await;
    for (who, r) in [
        (&alice, "👍"),
        (&carol, "👍"),
        (&carol, "[强]"),
        (&alice, ":smile:"),
    ] {
        let (status, body) = who.put(&reaction(room, seq, r)).await;
        assert_eq!(status, StatusCode::OK, "{r}: {body}");
        assert_eq!(body["changed"], true);
    }
    // The same intent again changes nothing.
    let (_, body) = alice.put(&reaction(room, seq, "👍")).await;
    assert_eq!(body["changed"], false);
    let (_, body) = bob.delete(&reaction(room, seq, "👍")).await;
    assert_eq!(body["changed"], false);
    let (_, body) = alice.delete(&reaction(room, seq, "👍")).await;
    assert_eq!(body["changed"], true);
    assert_eq!(
        body["message"]["reactions"],
        json!([
            {"reaction": "👍", "count": 1, "user_ids": [carol.user_id]},
            {"reaction": "[强]", "count": 1, "user_ids": [carol.user_id]},
            {"reaction": ":smile:", "count": 1, "user_ids": [alice.user_id]},
        ])
    );
    assert_eq!(
        find(&history(&bob, room).await, seq)["reactions"],
        body["message"]["reactions"]
    );
    let (_, polled) = bob.poll(&cursor, 5).await;
    let kinds = event_types(&polled);
    assert_eq!(
        kinds,
        [
            "reaction_added",
            "reaction_added",
            "reaction_added",
            "reaction_added",
            "reaction_removed"
        ]
    );
    assert_eq!(polled["events"][1]["sender_id"], carol.user_id);
    assert_eq!(polled["events"][2]["reaction"], "[强]");

    // Not one emoji or a known code.
    for bad in [
        "a", "👍👍", "👍 ", ":nope:", "<script>", "[强", "%00", "1", "   ",
    ] {
        let reply = bob.put(&reaction(room, seq, bad)).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, "invalid_reaction");
    }
    // At most 20 distinct reactions on a message, 20 of one user.
    let emoji: Vec<String> = (0..25)
        .map(|i| char::from_u32(0x1F600 + i).unwrap().to_string())
        .collect();
    let mut refused = None;
    for (i, e) in emoji.iter().enumerate() {
        let reply = bob.put(&reaction(room, seq, e)).await;
        if reply.0 != StatusCode::OK {
            refused = Some((i, reply));
            break;
        }
    }
    let (at, reply) = refused.expect("a bound");
    assert_error(&reply, StatusCode::CONFLICT, "too_many_reactions");
    assert_eq!(at, 17, "3 distinct were there; 17 more make 20");
    let m = find(&history(&bob, room).await, seq).clone();
    assert_eq!(m["reactions"].as_array().unwrap().len(), 20);
    // One user's bound, on a fresh message.
    let fresh = alice.say(room, "a2", "react to me").await["seq"]
        .as_i64()
        .unwrap();
    for e in &emoji[..20] {
        assert_eq!(bob.put(&reaction(room, fresh, e)).await.0, StatusCode::OK);
    }
    let reply = bob.put(&reaction(room, fresh, &emoji[20])).await;
    assert_error(&reply, StatusCode::CONFLICT, "too_many_reactions");

    // Members only.
    let dave = server.user("dave").await;
    let reply = dave.put(&reaction(room, seq, "👍")).await;
    assert_error(&reply, StatusCode::FORBIDDEN, "not_a_member");
    let reply = bob.put(&reaction(room, 1, "👍")).await;
    assert_error(&reply, StatusCode::NOT_FOUND, "message_not_found");
}

#[tokio::test]
async fn a_reply_quotes_its_original_as_it_stands() {
    let server = TestServer::start().await;
    let (alice, bob, _, room, seq) = setup(&server).await;
    let (status, body) = alice
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            json!({"client_msg_id": "re-1", "text": "hi bob", "reply_to": seq}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["message"]["reply_to"], seq);
    let reply_seq = body["message"]["seq"].as_i64().unwrap();
    let page = history(&bob, room).await;
    let preview = &find(&page, reply_seq)["reply_preview"];
    assert_eq!(preview["seq"], seq);
    assert_eq!(preview["sender_id"], bob.user_id);
    assert_eq!(preview["text"], "hello there");
    // The quote follows its original's edits, then its deletion.
    bob.patch(&msg(room, seq), json!({"text": "first line\nsecond line"}))
        .await;
    let (_, one) = bob.get(&msg(room, reply_seq)).await;
    assert_eq!(one["message"]["reply_preview"]["text"], "first line");
    bob.delete(&msg(room, seq)).await;
    let (_, one) = bob.get(&msg(room, reply_seq)).await;
    assert_eq!(one["message"]["reply_preview"]["deleted"], true);
    assert_eq!(one["message"]["reply_preview"]["text"], "");

    // Not a message, no such seq, outside the room.
    let other = alice.create_room("other", "public").await;
    let elsewhere = alice.say(other, "o1", "elsewhere").await["seq"]
        .as_i64()
        .unwrap();
    for target in [
        json!(1),
        json!(9999),
        json!(elsewhere + 100),
        json!(0),
        json!(-3),
    ] {
        let reply = alice
            .post(
                &format!("/api/v1/rooms/{room}/messages"),
                json!({"client_msg_id": format!("bad-{target}"), "text": "x", "reply_to": target}),
            )
            .await;
        assert_error(&reply, StatusCode::NOT_FOUND, "message_not_found");
    }
    let reply = alice
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            json!({"client_msg_id": "bad-type", "text": "x", "reply_to": "2"}),
        )
        .await;
    assert_eq!(reply.0, StatusCode::BAD_REQUEST, "{}", reply.1);
}
