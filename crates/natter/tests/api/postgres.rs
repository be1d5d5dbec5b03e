//! The whole server on the PostgreSQL store: a message sent is read
//! back, by history and by a poll, after a restart too. Uses
//! `NATTER_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/test`)
//! in a schema of its own, dropped at the end; without a server it says
//! that it skipped, except under `CI=true`, where it fails.

use natter::store::StoreChoice;
use natter::store::postgres::PostgresOptions;
use reqwest::StatusCode;

use crate::common::TestServer;
use crate::services::postgres_url;

#[tokio::test]
async fn a_server_on_postgres_sends_and_reads_messages() {
    let Some(url) = postgres_url("a_server_on_postgres_sends_and_reads_messages").await else {
        return;
    };
    let schema = crate::services::fresh_schema();
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

    crate::services::drop_schema(&url, &schema).await;
}
