//! The machine's PostgreSQL and Redis for the tests that need them: their
//! URLs (`NATTER_TEST_POSTGRES`, default
//! `postgres://postgres@127.0.0.1:5432/test`; `NATTER_TEST_REDIS`, default
//! `redis://127.0.0.1:6379`), or `None` after saying that the test
//! skipped. Under `CI=true` a service that does not answer fails the test.

// Each test crate that includes this uses a part of it.
#![allow(dead_code)]

use std::time::Duration;

/// Whether this run is CI's, where nothing may skip.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// PostgreSQL's URL, or `None` (after saying `test` skipped).
pub async fn postgres_url(test: &str) -> Option<String> {
    let url = std::env::var("NATTER_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let reached = tokio::time::timeout(
        Duration::from_secs(5),
        tokio_postgres::connect(&url, tokio_postgres::NoTls),
    )
    .await;
    let why = match reached {
        Ok(Ok(_)) => return Some(url),
        Ok(Err(e)) => e.to_string(),
        Err(_) => "no answer within 5 s".to_owned(),
    };
    let redacted = natter::store::postgres::redacted(&url);
    if under_ci() {
        panic!("{test}: PostgreSQL at {redacted} is unreachable under CI: {why}");
    }
    eprintln!(
        "SKIPPED {test}: PostgreSQL at {redacted} is unreachable ({why}); set NATTER_TEST_POSTGRES"
    );
    None
}

/// Redis's URL, or `None` (after saying `test` skipped).
pub async fn redis_url(test: &str) -> Option<String> {
    let url =
        std::env::var("NATTER_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let reached = tokio::time::timeout(
        Duration::from_secs(3),
        tokio::net::TcpStream::connect(redis_address(&url)),
    )
    .await;
    if matches!(reached, Ok(Ok(_))) {
        return Some(url);
    }
    if under_ci() {
        panic!("{test}: Redis at {url} is unreachable under CI");
    }
    eprintln!("SKIPPED {test}: Redis at {url} is unreachable; set NATTER_TEST_REDIS");
    None
}

/// The `host:port` of a Redis URL without a password or database.
pub fn redis_address(url: &str) -> String {
    url.trim_start_matches("redis://")
        .trim_end_matches('/')
        .to_owned()
}

/// A PostgreSQL schema name no other run uses.
pub fn fresh_schema() -> String {
    format!("natter_t_{:016x}", rand::random::<u64>())
}

/// Drops `schema` and all it holds.
pub async fn drop_schema(postgres: &str, schema: &str) {
    let (client, conn) = tokio_postgres::connect(postgres, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
}
