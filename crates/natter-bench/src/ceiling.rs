//! The physical reference: a trivial HTTP server inside this process that
//! answers every request at once, driven by the same client code. No
//! long-poll server can deliver faster than one answer plus one new request
//! per round trip on this machine.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::conn::{Conn, source_for};
use crate::fanout::Answer;
use crate::stats::{CpuMeter, Report};

static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

const ANSWER: &[u8] = br#"{"events":[],"ephemeral":[],"cursor":"c","ephemeral_gap":false}"#;

/// Runs `clients` connections against the trivial server for `duration`.
pub async fn run(clients: usize, duration: Duration) -> anyhow::Result<Report> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    // The trivial server gets a runtime and thread of its own, as natter
    // would be its own process.
    let listener = listener.into_std()?;
    let server = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let listener = TcpListener::from_std(listener).expect("listener");
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    break;
                };
                tokio::spawn(http1::Builder::new().serve_connection(
                    TokioIo::new(stream),
                    service_fn(|_req| async {
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(ANSWER))))
                    }),
                ));
                if STOP.load(Ordering::Relaxed) {
                    break;
                }
            }
        });
    });
    let done = Arc::new(AtomicU64::new(0));
    let meter = CpuMeter::start(None);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..clients {
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr, source_for(i)).await?;
            while started.elapsed() < duration {
                let (_, body) = conn
                    .call(
                        Method::GET,
                        "/api/v1/events?cursor=c&timeout=30",
                        Some("t"),
                        None,
                    )
                    .await?;
                let _: Answer = serde_json::from_slice(&body)?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    let mut errors = 0;
    for t in tasks {
        if !matches!(t.await, Ok(Ok(()))) {
            errors += 1;
        }
    }
    let elapsed = started.elapsed();
    STOP.store(true, Ordering::Relaxed);
    // Wake the accept loop so it sees the stop.
    let _ = std::net::TcpStream::connect(addr);
    let _ = server.join();
    let mut report = Report {
        scenario: "ceiling".into(),
        clients,
        duration_s: elapsed.as_secs_f64(),
        errors,
        round_trips_per_s: Some(done.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64()),
        ..Report::default()
    };
    meter.finish(&mut report);
    Ok(report)
}
