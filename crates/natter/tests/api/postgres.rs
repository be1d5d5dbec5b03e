//! The whole server on the PostgreSQL store: a message sent is read
//! back, by history and by a poll, after a restart too. Uses
//! `NATTER_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/test`)
//! in a schema of its own, dropped at the end; without a server it says
//! that it skipped, except under `CI=true`, where it fails.

use std::time::Duration;

use natter::store::StoreChoice;
use natter::store::postgres::PostgresOptions;
use reqwest::StatusCode;

use crate::common::TestServer;

/// The server's URL, or `None` after saying why there is none (and
/// that `test` skipped); under `CI=true` a missing server fails `test`.
pub async fn postgres_url(test: &str) -> Option<String> {
    let url = std::env::var("NATTER_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let reached = tokio::time::timeout(
        Duration::from_secs(5),
        tokio_postgres::connect(&url, tokio_postgres::NoTls),
    )
    .await;
    if matches!(reached, Ok(Ok(_))) {
        return Some(url);
    }
    let redacted = natter::store::postgres::redacted(&url);
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: PostgreSQL at {redacted} is unreachable under CI");
    }
    eprintln!("SKIPPED {test}: PostgreSQL at {redacted} is unreachable; set NATTER_TEST_POSTGRES");
    None
}

#[tokio::test]
async fn a_server_on_postgres_sends_and_reads_messages() {
    let Some(url) = postgres_url("a_server_on_postgres_sends_and_reads_messages").await else {
        return;
    };
    let schema = format!("natter_t_{:016x}", rand::random::<u64>());
    let on_postgres = |config: &mut natter::Config| {
        let mut options = PostgresOptions::new(&url);
        options.schema = Some(schema.clone());
        config.store = StoreChoice::Postgres(options);
    };
    let server = TestServer::start_with(on_postgres).await;
    let alice = server.user("alice").await;
    let room = alice.create_room("on postgres", "public").await;
    let cursor = alice.cursor().await;
    let sent = alice.say(room, "pg-1", "stored in postgres").await;
    let (status, page) = alice.poll(&cursor, 5).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.to_string().contains("stored in postgres"), "{page}");
    let data = server.stop().await;

    // Another node (a restart) on the same schema reads it back.
    let server = TestServer::start_in(data, on_postgres).await;
    let mut alice = server.client();
    alice.login("alice").await;
    let (status, history) = alice.get(&format!("/api/v1/rooms/{room}/messages")).await;
    assert_eq!(status, StatusCode::OK, "{history}");
    let messages = history["messages"].as_array().unwrap();
    let last = messages.last().expect("the message");
    assert_eq!(last["text"], "stored in postgres");
    assert_eq!(last["seq"], sent["seq"]);
    server.stop().await;

    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
}
