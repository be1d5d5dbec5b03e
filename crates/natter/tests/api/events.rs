//! The event stream: what it carries, how it waits, how cursors behave.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{
    Client, TestServer, WAKE_BOUND, assert_error, assert_wakes_within, message_texts,
};

/// Polls until `want` events arrived (or 10 s passed); returns them and the cursor.
async fn collect(client: &Client, cursor: &mut String, want: usize) -> Vec<Value> {
    let mut events = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while events.len() < want && Instant::now() < deadline {
        let (status, body) = client.poll(cursor, 5).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        events.extend(body["events"].as_array().unwrap().iter().cloned());
        *cursor = body["cursor"].as_str().unwrap().to_owned();
    }
    events
}

#[tokio::test]
async fn every_kind_of_room_event_arrives() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let mut cursor = bob.cursor().await;

    // A room Bob is invited to appears in his stream from his join on.
    let room = alice.create_room("before bob", "private").await;
    alice.say(room, "early", "bob cannot see this one").await;
    alice
        .post(
            &format!("/api/v1/rooms/{room}/members"),
            json!({"user_id": bob.user_id}),
        )
        .await;
    alice.say(room, "m1", "welcome").await;
    alice
        .patch(
            &format!("/api/v1/rooms/{room}"),
            json!({"title": "with bob"}),
        )
        .await;
    let events = collect(&bob, &mut cursor, 3).await;
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["member_joined", "message", "room_updated"]);
    assert_eq!(events[0]["user_id"], bob.user_id);
    assert_eq!(events[0]["invited_by"], alice.user_id);
    assert_eq!(events[1]["text"], "welcome");
    assert_eq!(events[2]["title"], "with bob");

    // A direct conversation opened by someone else arrives with its creation.
    let (_, direct) = alice
        .post("/api/v1/direct", json!({"user_id": bob.user_id}))
        .await;
    let direct_id = direct["room"]["id"].as_i64().unwrap();
    let events = collect(&bob, &mut cursor, 1).await;
    assert_eq!(events[0]["type"], "room_created");
    assert_eq!(events[0]["room_id"], direct_id);
    assert_eq!(events[0]["kind"], "direct");

    // Leaving: the leave itself is delivered, then nothing more from that room.
    bob.post(&format!("/api/v1/rooms/{room}/leave"), json!({}))
        .await;
    let events = collect(&bob, &mut cursor, 1).await;
    assert_eq!(events[0]["type"], "member_left");
    assert_eq!(events[0]["user_id"], bob.user_id);
    alice.say(room, "after", "bob has left").await;
    alice.say(direct_id, "d", "still here").await;
    let events = collect(&bob, &mut cursor, 1).await;
    assert_eq!(message_texts(&json!({"events": events})), ["still here"]);

    // Read markers are echoed to the user's other sessions.
    let mut bob2 = server.client();
    bob2.login("bob").await;
    let mut cursor2 = bob2.cursor().await;
    bob.post(
        &format!("/api/v1/rooms/{direct_id}/read"),
        json!({"seq": 2}),
    )
    .await;
    let (_, body) = bob2.poll(&cursor2, 5).await;
    let read: Vec<_> = body["ephemeral"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "read")
        .collect();
    assert_eq!(read.len(), 1, "{body}");
    assert_eq!(read[0]["room_id"], direct_id);
    assert_eq!(read[0]["seq"], 2);
    cursor2 = body["cursor"].as_str().unwrap().to_owned();
    assert!(!cursor2.is_empty());
}

/// A cursor from before a leave and a rejoin resumes where it was: the
/// user's own `member_left` and `member_joined` come in their place, and
/// the sequence has no hole (what happened while they were away is
/// history they may read again as a member).
#[tokio::test]
async fn a_cursor_from_before_a_leave_and_rejoin_leaves_no_hole() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let room = alice.create_room("r", "public").await;
    bob.join(room).await;
    let mut cursor = bob.cursor().await;
    alice.say(room, "1", "while bob is in").await;
    bob.post(&format!("/api/v1/rooms/{room}/leave"), json!({}))
        .await;
    alice.say(room, "2", "while bob is away").await;
    bob.join(room).await;
    alice.say(room, "3", "after bob is back").await;

    let events = collect(&bob, &mut cursor, 5).await;
    let seen: Vec<(i64, &str)> = events
        .iter()
        .map(|e| (e["seq"].as_i64().unwrap(), e["type"].as_str().unwrap()))
        .collect();
    assert_eq!(
        seen,
        [
            (3, "message"),
            (4, "member_left"),
            (5, "message"),
            (6, "member_joined"),
            (7, "message"),
        ]
    );
    assert_eq!(events[1]["user_id"], bob.user_id);
    assert_eq!(events[3]["user_id"], bob.user_id);

    // Left for good: the cursor is served up to the leave, no further.
    bob.post(&format!("/api/v1/rooms/{room}/leave"), json!({}))
        .await;
    alice.say(room, "4", "bob has gone").await;
    let events = collect(&bob, &mut cursor, 1).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["type"], "member_left");
    let (_, body) = bob.poll(&cursor, 0).await;
    assert_eq!(body["events"], json!([]));
}

#[tokio::test]
async fn a_waiting_poll_wakes_at_once_on_a_send() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let room = alice.create_room("r", "public").await;
    bob.join(room).await;
    assert_wakes_within(&alice, &bob, room, 5, WAKE_BOUND).await;
}

#[tokio::test]
async fn an_idle_poll_returns_empty_at_its_timeout_with_the_same_cursor() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    alice.create_room("r", "public").await;
    let cursor = alice.cursor().await;
    let started = Instant::now();
    let (status, body) = alice.poll(&cursor, 1).await;
    let waited = started.elapsed();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["events"], json!([]));
    assert_eq!(body["cursor"], cursor.as_str());
    assert!(
        waited >= Duration::from_millis(950),
        "returned early: {waited:?}"
    );
    assert!(waited < Duration::from_secs(3), "returned late: {waited:?}");

    // timeout=0 answers at once.
    let started = Instant::now();
    let (_, body) = alice.poll(&cursor, 0).await;
    assert_eq!(body["cursor"], cursor.as_str());
    assert!(started.elapsed() < Duration::from_millis(500));
}

#[tokio::test]
async fn cursors_that_cannot_be_served_exactly_ask_for_a_resync() {
    let server = TestServer::start().await;
    let other = TestServer::start().await;
    let alice = server.user("alice").await;
    let room = alice.create_room("r", "private").await;
    let foreign = other.user("zed").await.cursor().await;

    for bad in ["garbage", "AAAA", "", "%00%01", &"A".repeat(5000), &foreign] {
        let reply = alice
            .get(&format!("/api/v1/events?cursor={bad}&timeout=0"))
            .await;
        assert_error(&reply, StatusCode::BAD_REQUEST, "resync_required");
    }

    // Another user's cursor, and any alteration of one's own.
    let bob = server.user("bob").await;
    let bobs = bob.cursor().await;
    let reply = alice
        .get(&format!("/api/v1/events?cursor={bobs}&timeout=0"))
        .await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "resync_required");
    let own = alice.cursor().await;
    let mut altered: Vec<char> = own.chars().collect();
    let i = altered.len() / 2;
    altered[i] = if altered[i] == 'A' { 'B' } else { 'A' };
    let altered: String = altered.into_iter().collect();
    let reply = alice
        .get(&format!("/api/v1/events?cursor={altered}&timeout=0"))
        .await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "resync_required");

    // A forged cursor pointing past the room's newest event: its tag no
    // longer matches (a restored backup is the honest way to get one).
    let cursor = alice.cursor().await;
    let ahead = forge_room_seq(&cursor, room, 1_000);
    let reply = alice
        .get(&format!("/api/v1/events?cursor={ahead}&timeout=0"))
        .await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "resync_required");

    for bad in [
        "timeout=61",
        "timeout=-1",
        "timeout=abc",
        "timeout=99999999999999999999",
    ] {
        let reply = alice
            .get(&format!("/api/v1/events?cursor={cursor}&{bad}"))
            .await;
        assert_eq!(reply.0, StatusCode::BAD_REQUEST, "{bad}: {}", reply.1);
    }
}

/// Rewrites the seq of `room` in a cursor, as a client might try (the
/// tag is not recomputed: the server must notice).
fn forge_room_seq(cursor: &str, room: i64, seq: u64) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let bytes = URL_SAFE_NO_PAD.decode(cursor).unwrap();
    // Keeps the first 17 bytes and writes one room after them; whatever
    // that produces, it is not what the server signed.
    let mut out = bytes[..17].to_vec();
    let mut rest = &bytes[17..];
    let seen = read_varint(&mut rest);
    let _count = read_varint(&mut rest);
    put_varint(&mut out, seen);
    put_varint(&mut out, 1);
    put_varint(&mut out, room as u64);
    put_varint(&mut out, seq);
    URL_SAFE_NO_PAD.encode(out)
}

fn read_varint(bytes: &mut &[u8]) -> u64 {
    let mut v = 0;
    let mut shift = 0;
    loop {
        let b = bytes[0];
        *bytes = &bytes[1..];
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return v;
        }
        shift += 7;
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[tokio::test]
async fn open_polls_per_user_are_capped() {
    let server = TestServer::start_with(|c| c.hub.max_polls_per_user = 2).await;
    let alice = server.user("alice").await;
    let cursor = alice.cursor().await;
    let mut polls = Vec::new();
    for _ in 0..2 {
        let c = alice.clone();
        let cur = cursor.clone();
        polls.push(tokio::spawn(async move { c.poll(&cur, 2).await }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_error(
        &alice.poll(&cursor, 2).await,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_polls",
    );
    for p in polls {
        assert_eq!(p.await.unwrap().0, StatusCode::OK);
    }
    // Once they are answered there is room again.
    assert_eq!(alice.poll(&cursor, 0).await.0, StatusCode::OK);
}

#[tokio::test]
async fn shutdown_answers_waiting_polls_first() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let cursor = alice.cursor().await;
    let poll = alice.parked_poll(&cursor, 30).await;
    let started = Instant::now();
    server.stop().await;
    let (status, body) = poll.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["events"], json!([]));
    assert_eq!(body["cursor"], cursor.as_str());
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_dropped_connection_frees_its_poll() {
    let server = TestServer::start_with(|c| c.hub.max_polls_per_user = 2).await;
    let alice = server.user("alice").await;
    let cursor = alice.cursor().await;
    for _ in 0..6 {
        let impatient = reqwest::Client::builder()
            .timeout(Duration::from_millis(200))
            .build()
            .unwrap();
        let gave_up = impatient
            .get(format!(
                "{}/api/v1/events?cursor={cursor}&timeout=30",
                server.base
            ))
            .bearer_auth(alice.token.as_deref().unwrap())
            .send()
            .await;
        assert!(gave_up.is_err(), "the poll should still have been waiting");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Six abandoned polls, a cap of two: only freed polls leave room for this one.
    let (status, body) = alice.poll(&cursor, 0).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leave_wakes_the_leavers_other_sessions_at_once() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let room = alice.create_room("r", "public").await;
    bob.join(room).await;
    let mut bob_tab = server.client();
    bob_tab.login("bob").await;
    for round in 0..5 {
        let cursor = bob_tab.cursor().await;
        let poll = bob_tab.parked_poll(&cursor, 30).await;
        let started = Instant::now();
        let (status, _) = bob
            .post(&format!("/api/v1/rooms/{room}/leave"), json!({}))
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (_, body) = poll.await.unwrap();
        assert_eq!(
            body["events"][0]["type"], "member_left",
            "round {round}: {body}"
        );
        assert!(started.elapsed() < Duration::from_secs(2), "round {round}");
        bob.join(room).await;
    }
}

#[tokio::test]
async fn an_answer_is_bounded_by_size_and_by_the_clients_limit_and_loses_nothing() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let room = alice.create_room("r", "public").await;
    bob.join(room).await;
    let start = bob.cursor().await;
    // 100 messages of 4,000 CJK characters: about 1.2 MB of text.
    let text = "满".repeat(4000);
    for i in 0..100 {
        alice.say(room, &format!("big-{i}"), &text).await;
    }
    let mut cursor = start.clone();
    let mut seen = 0;
    let mut answers = 0;
    while seen < 100 {
        let response = reqwest::Client::new()
            .get(format!(
                "{}/api/v1/events?cursor={cursor}&timeout=5",
                server.base
            ))
            .bearer_auth(bob.token.as_ref().unwrap())
            .send()
            .await
            .unwrap();
        let body = response.bytes().await.unwrap();
        assert!(body.len() < 400_000, "an answer of {} bytes", body.len());
        let answer: Value = serde_json::from_slice(&body).unwrap();
        let texts = message_texts(&answer);
        assert!(!texts.is_empty(), "no progress: {answer}");
        seen += texts.len();
        answers += 1;
        cursor = answer["cursor"].as_str().unwrap().to_owned();
    }
    assert_eq!(seen, 100, "each message exactly once");
    assert!(answers >= 4, "1.2 MB came in {answers} answers");

    // A client may ask for fewer; a limit outside 1..=500 is refused.
    let (status, few) = bob
        .get(&format!("/api/v1/events?cursor={start}&timeout=0&limit=3"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(message_texts(&few).len(), 3);
    for bad in ["0", "501", "x"] {
        let reply = bob
            .get(&format!(
                "/api/v1/events?cursor={start}&timeout=0&limit={bad}"
            ))
            .await;
        assert_eq!(reply.0, StatusCode::BAD_REQUEST, "limit={bad}: {}", reply.1);
    }
}
