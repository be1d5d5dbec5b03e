//! Acked means durable: restarts, graceful or by SIGKILL, lose nothing
//! acknowledged, and clients resume from their old cursors.

use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{Client, Process, TestServer, message_texts};

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
    let mut tasks = Vec::new();
    for t in 0..4 {
        let c = alice.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for n in 0.. {
                let id = format!("t{t}-{n}");
                let sent = c
                    .http
                    .post(format!("{}/api/v1/rooms/{room}/messages", c.base))
                    .bearer_auth(c.token.as_deref().unwrap())
                    .json(&json!({"client_msg_id": id, "text": id}))
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == StatusCode::CREATED => acked.push(id),
                    _ => break,
                }
            }
            acked
        }));
    }
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
    let mut cursor = cursor;
    let mut seen = Vec::new();
    loop {
        let (status, body) = alice.poll(&cursor, 0).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let texts = message_texts(&body);
        if texts.is_empty() {
            break;
        }
        seen.extend(texts);
        cursor = body["cursor"].as_str().unwrap().to_owned();
    }
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
