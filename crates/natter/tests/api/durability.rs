//! Acked means durable: restarts, graceful or by SIGKILL, lose nothing
//! acknowledged, and clients resume from their old cursors.

use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{
    Client, Process, TestServer, assert_error, message_texts, read_to_the_end, send_until_refused,
};

#[tokio::test]
async fn graceful_restart_keeps_everything_and_cursors_resume() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let room = alice.create_room("r", "public").await;
    alice.say(room, "a", "before the cursor").await;
    let cursor = alice.cursor().await;
    alice.say(room, "b", "after the cursor 1").await;
    alice.say(room, "c", "after the cursor 2").await;
    let token = alice.token.clone();
    let data = server.stop().await;

    let server = TestServer::start_in(data, |_| {}).await;
    let mut alice = server.client();
    alice.token = token;
    let (status, body) = alice.poll(&cursor, 5).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        message_texts(&body),
        ["after the cursor 1", "after the cursor 2"]
    );
    // Presence and read markers are not kept across restarts; the answer says so.
    assert_eq!(body["ephemeral_gap"], true);
    let next = body["cursor"].as_str().unwrap();
    alice.say(room, "d", "after the restart").await;
    let (_, body) = alice.poll(next, 5).await;
    assert_eq!(message_texts(&body), ["after the restart"]);
}

/// Copies a stopped server's data folder, as an operator's backup would.
fn copy_folder(from: &tempfile::TempDir) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    let status = Command::new("cp")
        .arg("-a")
        .arg(from.path().join("data"))
        .arg(to.path())
        .status()
        .unwrap();
    assert!(status.success());
    to
}

/// Sends `n` numbered messages to `room`.
async fn say_many(client: &Client, room: i64, tag: &str, n: usize) {
    for i in 0..n {
        client
            .say(room, &format!("{tag}-{i}"), &format!("{tag} {i}"))
            .await;
    }
}

/// The finding of the issue: a cursor at seq 70 of a room, the folder
/// restored to a copy at seq 40, then 60 new messages: the old cursor
/// must not be served 71–100 as if 41–70 had been delivered.
#[tokio::test]
async fn a_restored_backup_asks_newer_cursors_for_a_resync_and_keeps_older_ones() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let room = alice.create_room("r", "public").await;
    say_many(&alice, room, "kept", 39).await;
    let at_backup = alice.cursor().await;
    let token = alice.token.clone();
    let data = server.stop().await;
    let backup = copy_folder(&data);

    let server = TestServer::start_in(data, |_| {}).await;
    let mut alice = server.client();
    alice.token = token.clone();
    say_many(&alice, room, "lost", 30).await;
    let (status, body) = alice.poll(&at_backup, 5).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["events"].as_array().unwrap().len(), 30);
    let after_backup = body["cursor"].as_str().unwrap().to_owned();
    drop(server.stop().await);

    let server = TestServer::start_in(backup, |_| {}).await;
    let mut alice = server.client();
    alice.token = token;
    say_many(&alice, room, "new", 60).await;
    // The cursor past the backup names events this history lacks.
    let reply = alice.poll(&after_backup, 0).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, "resync_required");
    // A cursor from the backup's own time still holds, and resumes exactly.
    let (status, body) = alice.poll(&at_backup, 5).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let texts = message_texts(&body);
    assert_eq!(texts.len(), 60, "{texts:?}");
    assert_eq!(texts[0], "new 0");
    let seqs: Vec<i64> = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, (41..=100).collect::<Vec<_>>());
    // The answer's cursor is this process's: an idle poll hands it back.
    let next = body["cursor"].as_str().unwrap();
    let (_, idle) = alice.poll(next, 0).await;
    assert_eq!(idle["cursor"], next);
}

/// An idle cursor from before a restart is checked once and handed back
/// renewed, so the poll after it needs no check.
#[tokio::test]
async fn an_idle_cursor_from_before_a_restart_is_renewed() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let room = alice.create_room("r", "public").await;
    alice.say(room, "a", "one").await;
    let cursor = alice.cursor().await;
    let token = alice.token.clone();
    let data = server.stop().await;

    let server = TestServer::start_in(data, |_| {}).await;
    let mut alice = server.client();
    alice.token = token;
    let (status, body) = alice.poll(&cursor, 0).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["events"], json!([]));
    let renewed = body["cursor"].as_str().unwrap();
    assert_ne!(renewed, cursor);
    alice.say(room, "b", "two").await;
    let (_, body) = alice.poll(renewed, 5).await;
    assert_eq!(message_texts(&body), ["two"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_acknowledged_message() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = Process::start(&data).await;
    let mut alice = Client::new(&first.base);
    alice.register_and_login("alice").await;
    let room = alice.create_room("r", "public").await;
    let cursor = alice.cursor().await;

    // Four senders in flight; the server is killed while they send.
    let tasks = send_until_refused(&alice, room);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    first.kill9();
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    assert!(
        acked.len() > 20,
        "too few sends before the kill: {}",
        acked.len()
    );

    let second = Process::start(&data).await;
    alice.base = second.base.clone();
    // Resume from the cursor taken before any of these sends.
    let (seen, _) = read_to_the_end(&alice, cursor).await;
    for id in &acked {
        assert!(seen.contains(id), "acknowledged message {id} was lost");
    }
    let unique: std::collections::HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no duplicates after the restart");
    println!(
        "{} acknowledged before SIGKILL, {} found after restart",
        acked.len(),
        seen.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_answers_waiting_polls_then_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Process::start(&dir.path().join("data")).await;
    let mut alice = Client::new(&server.base);
    alice.register_and_login("alice").await;
    let cursor = alice.cursor().await;
    let poll = alice.parked_poll(&cursor, 30).await;

    let started = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let (status, body) = poll.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["events"], json!([]));
    assert_eq!(body["cursor"], cursor.as_str());
    let exit = tokio::task::spawn_blocking(move || server.child.wait().unwrap())
        .await
        .unwrap();
    assert!(exit.success(), "natter exited with {exit}");
    assert!(started.elapsed() < Duration::from_secs(10));
}
