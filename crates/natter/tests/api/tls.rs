//! A cluster whose PostgreSQL and Redis speak only TLS and ask for client
//! certificates: the nodes reach both through verified TLS, signed in by
//! certificate, and deliver across each other as on plain TCP; each
//! `sslmode` checks what libpq's does; a node that cannot trust Redis's
//! certificate, or shows it none, hears nothing from it. The servers are
//! the test's own (tests/support/tls.rs), so the machine's stay as they
//! are.

use std::time::{Duration, Instant};

use natter::bus::redis::BusTls;
use natter::chat::Secret;
use natter::store::StoreChoice;
use natter::store::postgres::{PostgresOptions, PostgresStore};
use reqwest::StatusCode;

use crate::common::{TestServer, message_texts};
use crate::tls_services::{CERT_USER, Certificates, TlsPostgres, TlsRedis};

/// Opens the store at `url` with short timeouts: `Ok` or the error's words.
async fn open(url: &str) -> Result<(), String> {
    let mut options = PostgresOptions::new(url);
    options.timeout = Duration::from_secs(3);
    options.call_timeout = Duration::from_secs(5);
    PostgresStore::open(options)
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

/// How many of the natter connections open on `postgres` use TLS and
/// signed in with the test's client certificate, and how many do not,
/// seen over its Unix socket.
async fn natter_connections(postgres: &TlsPostgres, socket_dir: &str) -> (i64, i64) {
    let config = format!(
        "host={socket_dir} port={} user=postgres dbname=postgres",
        postgres.port
    );
    let (client, conn) = tokio_postgres::connect(&config, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let row = client
        .query_one(
            "SELECT count(*) FILTER (WHERE s.ssl AND s.client_dn = $1),
                    count(*) FILTER (WHERE NOT s.ssl OR s.client_dn IS DISTINCT FROM $1)
               FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
              WHERE a.application_name = 'natter'",
            &[&format!("/CN={CERT_USER}")],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

/// The test's certificates and its TLS-only PostgreSQL, or `None`
/// after saying why `test` skipped.
async fn certificates_and_postgres(test: &str) -> Option<(Certificates, TlsPostgres)> {
    let certificates = Certificates::make(test)?;
    let postgres = TlsPostgres::start(test, &certificates).await?;
    Some((certificates, postgres))
}

#[tokio::test]
async fn postgres_certificates_are_checked_as_sslmode_says() {
    let test = "postgres_certificates_are_checked_as_sslmode_says";
    let Some((certificates, postgres)) = certificates_and_postgres(test).await else {
        return;
    };
    let (ca, other) = (certificates.ca(), certificates.other_ca());
    let (ca, other) = (ca.display(), other.display());
    let (cert, key) = (certificates.client_cert(), certificates.client_key());
    let client = format!("sslcert={}&sslkey={}", cert.display(), key.display());

    // The certificate names `localhost`, and the test's CA signed it.
    for (host, params) in [
        ("localhost", format!("sslmode=verify-full&sslrootcert={ca}")),
        // verify-ca does not look at the name.
        ("127.0.0.1", format!("sslmode=verify-ca&sslrootcert={ca}")),
        // require and prefer encrypt without checking (libpq's meaning),
        // and this server takes nothing but TLS.
        ("127.0.0.1", "sslmode=require".to_owned()),
        ("127.0.0.1", String::new()),
        // Named roots make require check the chain, as in libpq.
        ("127.0.0.1", format!("sslmode=require&sslrootcert={ca}")),
    ] {
        let url = postgres.url(host, &params);
        assert_eq!(open(&url).await, Ok(()), "{url}");
    }
    // A role that signs in by certificate.
    let by_certificate = format!("sslmode=verify-full&sslrootcert={ca}&{client}");
    let url = postgres.url_as(CERT_USER, "localhost", &by_certificate);
    assert_eq!(open(&url).await, Ok(()), "{url}");
    let url = postgres.url_as(
        CERT_USER,
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    let why = open(&url).await.expect_err(&url);
    assert!(
        why.contains("requires a valid client certificate"),
        "no client certificate: {why}"
    );
    let half = format!("sslmode=verify-full&sslcert={}", cert.display());
    let why = open(&postgres.url_as(CERT_USER, "localhost", &half))
        .await
        .expect_err("half");
    assert!(why.contains("name both files"), "{why}");

    for (host, params, said) in [
        // The name is wrong.
        (
            "127.0.0.1",
            format!("sslmode=verify-full&sslrootcert={ca}"),
            "not valid for name",
        ),
        // Another CA, by file and named by require.
        (
            "localhost",
            format!("sslmode=verify-full&sslrootcert={other}"),
            "UnknownIssuer",
        ),
        (
            "localhost",
            format!("sslmode=verify-ca&sslrootcert={other}"),
            "UnknownIssuer",
        ),
        // verify-ca forgives the name, never the chain.
        (
            "127.0.0.1",
            format!("sslmode=verify-ca&sslrootcert={other}"),
            "UnknownIssuer",
        ),
        (
            "localhost",
            format!("sslmode=require&sslrootcert={other}"),
            "UnknownIssuer",
        ),
        // The system's roots never signed the test's CA; naming them
        // makes verify-full the mode.
        (
            "localhost",
            "sslmode=verify-full".to_owned(),
            "UnknownIssuer",
        ),
        (
            "localhost",
            "sslrootcert=system".to_owned(),
            "UnknownIssuer",
        ),
        // No TLS, on a server that takes nothing else.
        ("localhost", "sslmode=disable".to_owned(), "no encryption"),
    ] {
        let url = postgres.url(host, &params);
        let why = open(&url).await.expect_err(&url);
        assert!(why.contains(said), "{url}: {why}");
    }
}

#[tokio::test]
async fn a_cluster_on_postgres_and_redis_over_verified_tls_delivers_across_nodes() {
    let test = "a_cluster_on_postgres_and_redis_over_verified_tls_delivers_across_nodes";
    let Some((certificates, postgres)) = certificates_and_postgres(test).await else {
        return;
    };
    let Some(redis) = TlsRedis::start(test, &certificates).await else {
        return;
    };
    let (ca, cert, key) = (
        certificates.ca(),
        certificates.client_cert(),
        certificates.client_key(),
    );
    // Signed in by certificate, with no password.
    let store = postgres.url_as(
        CERT_USER,
        "localhost",
        &format!(
            "sslmode=verify-full&sslrootcert={}&sslcert={}&sslkey={}",
            ca.display(),
            cert.display(),
            key.display()
        ),
    );
    // Nodes A and B trust the test's CA and show Redis the client
    // certificate; node C is given another CA for Redis, and node D no
    // certificate to show, so neither's bus ever connects.
    let client = Some((cert, key));
    let mut nodes = Vec::new();
    for (ca, client) in [
        (ca.clone(), client.clone()),
        (ca.clone(), client.clone()),
        (certificates.other_ca(), client.clone()),
        (ca, None),
    ] {
        let (store, bus) = (store.clone(), redis.url("localhost"));
        nodes.push(
            TestServer::start_with(move |config: &mut natter::Config| {
                config.store = StoreChoice::Postgres(PostgresOptions::new(store));
                config.bus = Some(Secret(bus));
                config.bus_tls = BusTls {
                    ca_file: Some(ca),
                    cert_file: client.as_ref().map(|(cert, _)| cert.clone()),
                    key_file: client.map(|(_, key)| key),
                };
                config.hub.presence_grace = Duration::from_secs(1);
                // What reaches another node comes through the bus.
                config.hub.head_check_interval = Duration::from_secs(60);
            })
            .await,
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let alice = nodes[0].user("alice").await;
    let mut bob = nodes[0].user("bob").await;
    let room = alice.create_room("over TLS", "public").await;
    bob.join(room).await;

    // Bob waits on B, C and D, each with a cursor of that node's; Alice
    // sends on A.
    let mut waiting = Vec::new();
    for node in &nodes[1..] {
        bob.base = node.base.clone();
        let cursor = bob.cursor().await;
        let (bob, cursor) = (bob.clone(), cursor.clone());
        waiting.push(tokio::spawn(async move { bob.poll(&cursor, 3).await }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = Instant::now();
    alice.say(room, "tls-1", "encrypted all the way").await;
    let (status, on_b) = waiting.remove(0).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{on_b}");
    assert_eq!(message_texts(&on_b), ["encrypted all the way"]);
    assert!(
        sent.elapsed() < Duration::from_secs(1),
        "woken through the bus over TLS: {:?}",
        sent.elapsed()
    );
    // C and D differ from B in nothing but the roots they trust for
    // Redis, and the certificate they show it.
    for (node, waited) in ["C (another CA)", "D (no certificate)"]
        .into_iter()
        .zip(waiting)
    {
        let (status, answer) = waited.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert!(
            message_texts(&answer).is_empty(),
            "node {node} heard Redis: {answer}"
        );
    }
    let socket_dir = postgres.socket_dir();
    let (by_certificate, other) = natter_connections(&postgres, &socket_dir).await;
    assert!(
        by_certificate >= 4,
        "each node holds a TLS connection signed in by certificate: {by_certificate}"
    );
    assert_eq!(
        other, 0,
        "natter connections without TLS or the certificate"
    );
    for node in nodes {
        node.stop().await;
    }
}
