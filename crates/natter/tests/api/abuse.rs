//! One host cannot hurt the others: stalled bodies are cut, connections
//! are capped per source, and while one host attacks, everyone else's
//! long polls still wake at once.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::common::{Client, TestServer, WAKE_BOUND, assert_error, assert_wakes_within};

/// A connection from `local` (a 127.x address) to the server.
async fn connect_from(server: &TestServer, local: &str) -> std::io::Result<TcpStream> {
    let addr: std::net::SocketAddr = server.base.trim_start_matches("http://").parse().unwrap();
    let socket = TcpSocket::new_v4()?;
    socket.bind(format!("{local}:0").parse().unwrap())?;
    socket.connect(addr).await
}

/// Reads whatever the server says within `wait`, until it closes.
async fn read_answer(stream: &mut TcpStream, wait: Duration) -> String {
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(wait, stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// A POST that announces a body and never sends it.
const STALLED: &[u8] = b"POST /api/v1/users HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"user";

#[tokio::test]
async fn a_stalled_body_is_cut_at_the_read_deadline() {
    let server = TestServer::start_with(|c| c.body_read_timeout = Duration::from_secs(1)).await;
    let mut stream = connect_from(&server, "127.0.0.1").await.unwrap();
    stream.write_all(STALLED).await.unwrap();
    let started = Instant::now();
    let answer = read_answer(&mut stream, Duration::from_secs(10)).await;
    let took = started.elapsed();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"body_timeout\""), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "answered after {took:?}"
    );
    // And the half-sent registration changed nothing.
    let (status, _) = server
        .client()
        .post(
            "/api/v1/users",
            json!({"username": "user", "password": "password-1"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn connections_are_capped_per_source_and_a_freed_place_is_reused() {
    let server = TestServer::start_with(|c| {
        c.max_connections_per_source = 5;
        c.trusted_proxies = natter::source::TrustedProxies(Vec::new());
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..5 {
        let mut stream = connect_from(&server, "127.0.0.2").await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 512];
        let n = stream.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(stream);
    }
    let mut sixth = connect_from(&server, "127.0.0.2").await.unwrap();
    let answer = read_answer(&mut sixth, Duration::from_secs(3)).await;
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    assert!(answer.contains("\"too_many_connections\""), "{answer}");
    assert!(answer.contains("retry-after:"), "{answer}");
    // Another host is not affected.
    let other = Client::from_address(&server.base, "127.0.0.3");
    assert_eq!(other.get("/healthz").await.0, StatusCode::OK);
    // A closed connection gives its place back.
    held.pop();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let again = Client::from_address(&server.base, "127.0.0.2");
    assert_eq!(again.get("/healthz").await.0, StatusCode::OK);
}

/// Two users of a room, on their own addresses.
async fn bystanders(server: &TestServer) -> (Client, Client, i64) {
    let mut alice = Client::from_address(&server.base, "127.0.0.1");
    alice.register_and_login("alice").await;
    let mut bob = Client::from_address(&server.base, "127.0.0.4");
    bob.register_and_login("bob").await;
    let room = alice.create_room("r", "public").await;
    bob.join(room).await;
    (alice, bob, room)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_body_attack_leaves_other_polls_instant() {
    let server = TestServer::start_with(|c| {
        c.max_connections_per_source = 64;
        c.body_read_timeout = Duration::from_secs(10);
        c.trusted_proxies = natter::source::TrustedProxies(Vec::new());
    })
    .await;
    let (alice, bob, room) = bystanders(&server).await;
    // 400 connections that announce a body and never send it, all from
    // one host: the first 64 are held, the rest refused at once.
    let mut stalled = Vec::new();
    let mut refused = 0;
    for _ in 0..400 {
        let mut stream = connect_from(&server, "127.0.0.9").await.unwrap();
        if stream.write_all(STALLED).await.is_ok() {
            stalled.push(stream);
        }
    }
    for stream in &mut stalled {
        let mut buf = [0u8; 64];
        if let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(5), stream.read(&mut buf)).await
            && buf[..n].starts_with(b"HTTP/1.1 429")
        {
            refused += 1;
        }
    }
    assert!(refused >= 300, "only {refused} of 400 refused");
    let slowest = assert_wakes_within(&alice, &bob, room, 5, WAKE_BOUND).await;
    println!("{refused} of 400 stalled connections refused; slowest wake-up {slowest:?}");
    // New clients are still served during the attack.
    let mut carol = Client::from_address(&server.base, "127.0.0.5");
    carol.register_and_login("carol").await;
    drop(stalled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_and_login_flood_is_limited_and_leaves_other_polls_instant() {
    let server = TestServer::start_with(|c| {
        c.chat.limits = natter::chat::RateLimits::default();
        c.trusted_proxies = natter::source::TrustedProxies(Vec::new());
    })
    .await;
    let (alice, bob, room) = bystanders(&server).await;
    let mut mallory = Client::from_address(&server.base, "127.0.0.9");
    mallory.register_and_login("mallory").await;
    // Her own room: the bystanders' polls must wake for their messages,
    // not hers.
    let spam_room = mallory.create_room("spam", "public").await;
    let flood = tokio::spawn({
        let mallory = mallory.clone();
        async move {
            let (mut stored, mut limited, mut logins_limited) = (0, 0, 0);
            let started = Instant::now();
            let mut i = 0;
            while started.elapsed() < Duration::from_secs(3) {
                let (status, body) = mallory
                    .post(
                        &format!("/api/v1/rooms/{spam_room}/messages"),
                        json!({"client_msg_id": format!("flood-{i}"), "text": "spam"}),
                    )
                    .await;
                match status {
                    StatusCode::CREATED => stored += 1,
                    StatusCode::TOO_MANY_REQUESTS => {
                        assert_eq!(body["error"]["code"], "rate_limited");
                        limited += 1;
                    }
                    other => panic!("flood send: {other} {body}"),
                }
                let (status, _) = mallory
                    .post(
                        "/api/v1/sessions",
                        json!({"username": "alice", "password": "wrong-password"}),
                    )
                    .await;
                if status == StatusCode::TOO_MANY_REQUESTS {
                    logins_limited += 1;
                }
                i += 1;
            }
            (stored, limited, logins_limited)
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let slowest = assert_wakes_within(&alice, &bob, room, 5, WAKE_BOUND).await;
    let (stored, limited, logins_limited) = flood.await.unwrap();
    println!(
        "flood: {stored} stored, {limited} sends and {logins_limited} logins limited; slowest wake-up {slowest:?}"
    );
    // The burst (30) plus 5/s over the flood's ~3 s, with slack.
    assert!(stored <= 50, "{stored} flood messages stored");
    assert!(limited > 0 && logins_limited > 0);
    // Alice's own password still opens a session only after the delay,
    // but her session keeps working throughout.
    assert_eq!(alice.get("/api/v1/me").await.0, StatusCode::OK);
    let reply = alice
        .post(
            "/api/v1/sessions",
            json!({"username": "alice", "password": "password-1"}),
        )
        .await;
    assert_error(&reply, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
}
