//! Slow or greedy clients cannot take the server down.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::Process;

/// Sends one request on a kept-alive connection and reads one answer.
async fn get_health(stream: &mut TcpStream) -> Option<String> {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .ok()?;
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut buf))
        .await
        .ok()?
        .ok()?;
    (n > 0).then(|| String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_open_files_limit_new_clients_are_refused_and_held_ones_keep_service() {
    let dir = tempfile::tempdir().unwrap();
    // A hard limit natter cannot raise: room for a few dozen sockets.
    let server = Process::start_under(
        &["prlimit", "--nofile=48:48", "--"],
        &dir.path().join("data"),
    )
    .await;
    let addr = server.base.trim_start_matches("http://").to_owned();

    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..80 {
        let Ok(mut stream) = TcpStream::connect(&addr).await else {
            continue;
        };
        match get_health(&mut stream).await {
            Some(answer) if answer.starts_with("HTTP/1.1 200") => held.push(stream),
            Some(answer) if answer.starts_with("HTTP/1.1 503") => {
                assert!(answer.contains("\"server_full\""), "{answer}");
                refused += 1;
            }
            other => panic!("neither served nor cleanly refused: {other:?}"),
        }
    }
    assert!(held.len() >= 10, "only {} connections held", held.len());
    assert!(refused > 0, "the limit was never reached");
    println!("{} connections held, {refused} refused", held.len());
    // Every held connection is still served.
    for stream in &mut held {
        let answer = get_health(stream)
            .await
            .expect("held connection still answers");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    drop(held);
    // And once they are gone, newcomers are served again.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    let answer = get_health(&mut stream).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
