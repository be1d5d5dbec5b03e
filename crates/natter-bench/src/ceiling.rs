//! The physical references: a trivial HTTP server inside this process,
//! driven by the same client code as natter.
//!
//! - [`round_trips`] answers every request at once. No long-poll server can
//!   deliver faster than one answer plus one new request per round trip on
//!   this machine.
//! - [`fan_out`] holds every request, as a long poll does, until a "message"
//!   arrives at a steady rate, then answers all of them with it: S1's shape
//!   with a server that does no work at all (no auth, no storage, no
//!   cursor). The latency it measures is the floor under S1's on this
//!   machine.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::conn::{Conn, source_for};
use crate::fanout::Answer;
use crate::stats::{CpuMeter, Latency, Report};

/// The trivial server's threads, named apart from the generator's so
/// perf, top and its CPU meter can tell them apart.
const SERVER_THREAD_NAME: &str = "trivial-server";

const EMPTY_ANSWER: &[u8] = br#"{"events":[],"ephemeral":[],"cursor":"c","ephemeral_gap":false}"#;

/// A trivial HTTP/1.1 server on its own runtime and threads, as natter
/// would be its own process; stops when dropped.
struct TrivialServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TrivialServer {
    /// Serves every request with `answer` on `threads` worker threads.
    fn start<F, Fut>(threads: usize, answer: F) -> anyhow::Result<TrivialServer>
    where
        F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Bytes> + Send + 'static,
    {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .thread_name(SERVER_THREAD_NAME)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).expect("listener");
                loop {
                    let accepted = listener.accept().await;
                    if stopped.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok((stream, _)) = accepted else {
                        // Out of file handles, most likely: a client left
                        // unaccepted would wait forever, so keep accepting.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let answer = answer.clone();
                    tokio::spawn(http1::Builder::new().serve_connection(
                        TokioIo::new(stream),
                        service_fn(move |request| {
                            let body = answer(request);
                            async move { Ok::<_, Infallible>(Response::new(Full::new(body.await))) }
                        }),
                    ));
                }
            });
        });
        Ok(TrivialServer {
            addr,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for TrivialServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the stop.
        let _ = std::net::TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Whether `clients` connections and the in-process server's ends of them
/// fit in this process's open-files limit.
pub fn fits(clients: usize) -> bool {
    let limit = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft);
    (clients as u64) * 2 + 100 <= limit
}

/// Runs `clients` connections against a server that answers at once, for
/// `duration`.
pub async fn round_trips(clients: usize, duration: Duration) -> anyhow::Result<Report> {
    let server = TrivialServer::start(1, |_request| async { Bytes::from_static(EMPTY_ANSWER) })?;
    let addr = server.addr;
    let done = Arc::new(AtomicU64::new(0));
    let meter = CpuMeter::start(&[]);
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
    let errors = count_failed(tasks).await;
    let elapsed = started.elapsed();
    drop(server);
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

/// The newest "message" of [`fan_out`]: its number (0 before the first)
/// and when it was sent, in microseconds since the run's epoch.
#[derive(Clone, Copy, Default)]
struct Tick {
    seq: u64,
    sent_us: u64,
    last: bool,
}

/// `clients` long polls held by a server that does no work, answered with
/// a message `rate` times a second for `duration`; `server_threads` as
/// natter's runtime has (one per core).
pub async fn fan_out(
    clients: usize,
    rate: f64,
    duration: Duration,
    server_threads: usize,
) -> anyhow::Result<Report> {
    let (ticks, tick_rx) = watch::channel(Tick::default());
    let server = TrivialServer::start(server_threads, move |request| {
        let mut rx = tick_rx.clone();
        async move {
            // The client's cursor is the last message it has: answer at
            // once if a newer one exists, else wait for it, as a long poll.
            let have: u64 = request
                .uri()
                .query()
                .and_then(|q| q.strip_prefix("cursor="))
                .and_then(|c| c.split('&').next())
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            let tick = *rx
                .wait_for(|t| t.seq > have || t.last)
                .await
                .expect("ticks outlive the server");
            if tick.seq <= have {
                return Bytes::from_static(EMPTY_ANSWER);
            }
            // Shaped like natter's answer with one message event.
            Bytes::from(format!(
                r#"{{"events":[{{"type":"message","room_id":1,"seq":{seq},"sender_id":2,"sender_name":"sender","at":1700000000000,"client_msg_id":"c-{seq}","text":"{sent}"}}],"ephemeral":[],"cursor":"{seq}","ephemeral_gap":false}}"#,
                seq = tick.seq,
                sent = tick.sent_us,
            ))
        }
    })?;
    let addr = server.addr;
    let epoch = Instant::now();
    let ready = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..clients {
        let ready = ready.clone();
        let ticks = ticks.subscribe();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr, source_for(i)).await?;
            ready.fetch_add(1, Ordering::Relaxed);
            let (mut have, mut latencies) = (0u64, Vec::new());
            while !ticks.borrow().last {
                let path = format!("/api/v1/events?cursor={have}&timeout=30");
                let (_, body) = conn.call(Method::GET, &path, Some("t"), None).await?;
                let now_us = epoch.elapsed().as_micros() as u64;
                let answer: Answer = serde_json::from_slice(&body)?;
                for (seq, sent_us) in answer.message_times() {
                    have = have.max(seq as u64);
                    latencies.push(now_us.saturating_sub(sent_us).min(u64::from(u32::MAX)) as u32);
                }
            }
            anyhow::Ok(latencies)
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while ready.load(Ordering::Relaxed) < clients && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Let every client's first poll reach the server and park.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let meter = CpuMeter::for_threads(SERVER_THREAD_NAME);
    let started = Instant::now();
    let mut sent = 0u64;
    loop {
        let due = started + Duration::from_secs_f64(sent as f64 / rate);
        if due >= started + duration {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
        sent += 1;
        let sent_us = epoch.elapsed().as_micros() as u64;
        ticks.send_replace(Tick {
            seq: sent,
            sent_us,
            last: false,
        });
    }
    // Give the last message time to arrive, then release every poll.
    tokio::time::sleep(Duration::from_millis(500)).await;
    ticks.send_modify(|t| t.last = true);
    let mut errors = 0;
    let mut latencies = Vec::new();
    for t in tasks {
        match t.await {
            Ok(Ok(l)) => latencies.extend(l),
            _ => errors += 1,
        }
    }
    let expected = sent * clients as u64;
    let received = latencies.len() as u64;
    let mut report = Report {
        scenario: "ceiling (fan-out)".into(),
        clients,
        rooms: 1,
        duration_s: duration.as_secs_f64(),
        messages_sent: sent,
        messages_acked: sent,
        deliveries_expected: Some(expected),
        deliveries_received: Some(received),
        lost: Some(expected.saturating_sub(received)),
        errors,
        delivery_latency: Some(Latency::from_micros(latencies)),
        notes: vec![format!(
            "a trivial server on {server_threads} threads in this process; its CPU is its threads', the generator's includes them"
        )],
        ..Report::default()
    };
    // Read while the server's threads still run.
    meter.finish(&mut report);
    report.count_cpu_per_delivery();
    drop(server);
    Ok(report)
}

async fn count_failed(tasks: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>) -> u64 {
    let mut failed = 0;
    for t in tasks {
        if !matches!(t.await, Ok(Ok(()))) {
            failed += 1;
        }
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_no_op_fan_out_delivers_every_message_to_every_poll() {
        // 100 ms between messages: ample for 20 clients to poll again,
        // even on a loaded machine (a late poll would see only the newest).
        let report = fan_out(20, 10.0, Duration::from_secs(1), 1).await.unwrap();
        assert_eq!(report.messages_sent, 10);
        assert_eq!(report.deliveries_expected, Some(200));
        assert_eq!(report.deliveries_received, Some(200));
        assert_eq!((report.lost, report.errors), (Some(0), 0));
        assert_eq!(report.delivery_latency.unwrap().count, 200);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn round_trips_are_counted() {
        let report = round_trips(4, Duration::from_millis(300)).await.unwrap();
        assert_eq!(report.errors, 0);
        assert!(report.round_trips_per_s.unwrap() > 0.0);
    }
}
