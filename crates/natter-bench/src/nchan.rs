//! S1's shape against nginx + nchan, the C long-poll server natter is
//! measured against: `clients` long polls on one channel, one publisher at
//! a steady rate, the same client code as natter's runs.
//!
//! nchan's long poll carries its cursor in the answer's `Last-Modified`
//! and `Etag`, sent back as `If-Modified-Since` and `If-None-Match`. It
//! keeps no users, no auth and nothing on disk, so it is a peer for the
//! cost of a delivery, not for what natter promises (scripts/vs-nchan.sh
//! starts it with the configuration these paths expect).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use serde::Deserialize;

use crate::conn::{Conn, Extra, source_for};
use crate::stats::{CpuMeter, Latency, Report, memory};

/// The channel's subscriber and publisher paths in scripts/nchan.conf.
const SUBSCRIBE: &str = "/sub/s1";
const PUBLISH: &str = "/pub/s1";

/// What the publisher sends: natter-bench's own numbering and clock.
#[derive(Deserialize)]
struct Published {
    seq: u64,
    sent_us: u64,
    #[serde(default)]
    last: bool,
}

/// What one subscriber saw.
#[derive(Default)]
struct Seen {
    latencies: Vec<u32>,
    duplicated: u64,
    gaps: u64,
}

/// Runs S1 against nchan at `server` (nginx's master process is
/// `server_pid`; its workers' CPU counts too).
pub async fn s1(
    server: SocketAddr,
    server_pid: &[u32],
    clients: usize,
    rate: f64,
    duration: Duration,
) -> anyhow::Result<Report> {
    let epoch = Instant::now();
    let ready = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::with_capacity(clients);
    for i in 0..clients {
        let (ready, done) = (ready.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            subscribe(server, i, epoch, &ready, &done).await
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while ready.load(Ordering::Relaxed) < clients && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Let every subscriber's first poll reach nginx and wait there.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut publisher = Conn::open(server, source_for(clients)).await?;
    let meter = CpuMeter::start(server_pid);
    let started = Instant::now();
    let (mut sent, mut acked, mut errors) = (0u64, 0u64, 0u64);
    let mut ack_latencies = Vec::new();
    loop {
        let due = started + Duration::from_secs_f64(sent as f64 / rate);
        if due >= started + duration {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
        sent += 1;
        let sent_us = epoch.elapsed().as_micros() as u64;
        let body = format!(r#"{{"seq":{sent},"sent_us":{sent_us}}}"#).into_bytes();
        match publisher
            .call(Method::POST, PUBLISH, None, Some(body))
            .await
        {
            Ok((status, _)) if status.is_success() => {
                acked += 1;
                ack_latencies.push(micros_since(epoch, sent_us));
            }
            _ => errors += 1,
        }
    }
    // Give the last message time to arrive, then release every poll.
    tokio::time::sleep(Duration::from_millis(500)).await;
    done.store(true, Ordering::Relaxed);
    let last = format!(r#"{{"seq":{},"sent_us":0,"last":true}}"#, sent + 1).into_bytes();
    publisher
        .call(Method::POST, PUBLISH, None, Some(last))
        .await?;
    let mut seen = Seen::default();
    for task in tasks {
        match task.await {
            Ok(Ok(s)) => {
                seen.latencies.extend(s.latencies);
                seen.duplicated += s.duplicated;
                seen.gaps += s.gaps;
            }
            _ => errors += 1,
        }
    }
    let expected = acked * clients as u64;
    let received = seen.latencies.len() as u64;
    let mut report = Report {
        scenario: "nchan s1".into(),
        clients,
        rooms: 1,
        duration_s: duration.as_secs_f64(),
        messages_sent: sent,
        messages_acked: acked,
        deliveries_expected: Some(expected),
        deliveries_received: Some(received),
        lost: Some(expected.saturating_sub(received)),
        duplicated: Some(seen.duplicated),
        errors,
        delivery_latency: Some(Latency::from_micros(seen.latencies)),
        ack_latency: Some(Latency::from_micros(ack_latencies)),
        notes: vec![
            "nginx + nchan, memory store, long poll; CPU is nginx's master and workers'".into(),
        ],
        ..Report::default()
    };
    if seen.gaps > 0 {
        report
            .notes
            .push(format!("{} sequence gaps seen by subscribers", seen.gaps));
    }
    meter.finish(&mut report);
    report.count_cpu_per_delivery();
    if let Some(m) = memory(server_pid) {
        report.server_rss_kib = Some(m.rss_kib);
    }
    Ok(report)
}

/// One subscriber's long-poll loop, until the publisher's last message.
async fn subscribe(
    server: SocketAddr,
    index: usize,
    epoch: Instant,
    ready: &AtomicUsize,
    done: &AtomicBool,
) -> anyhow::Result<Seen> {
    let mut conn = Conn::open(server, source_for(index)).await?;
    ready.fetch_add(1, Ordering::Relaxed);
    let (mut modified, mut etag) = (None::<String>, None::<String>);
    let (mut have, mut seen) = (0u64, Seen::default());
    loop {
        let mut send = Vec::with_capacity(2);
        if let Some(m) = &modified {
            send.push(("If-Modified-Since", m.as_str()));
        }
        if let Some(e) = &etag {
            send.push(("If-None-Match", e.as_str()));
        }
        let extra = Extra {
            send: &send,
            keep: &["last-modified", "etag"],
        };
        let (status, kept, body) = conn
            .call_with(Method::GET, SUBSCRIBE, None, None, &extra)
            .await?;
        let now_us = epoch.elapsed().as_micros() as u64;
        if status == StatusCode::NOT_MODIFIED || status == StatusCode::REQUEST_TIMEOUT {
            // The poll's own timeout: ask again from the same place.
            if done.load(Ordering::Relaxed) {
                return Ok(seen);
            }
            continue;
        }
        anyhow::ensure!(status == StatusCode::OK, "subscribe: {status}");
        let [new_modified, new_etag] = <[Option<String>; 2]>::try_from(kept)
            .map_err(|_| anyhow::anyhow!("two kept headers"))?;
        (modified, etag) = (new_modified, new_etag);
        let message: Published = serde_json::from_slice(&body)?;
        if message.last {
            return Ok(seen);
        }
        if message.seq <= have {
            seen.duplicated += 1;
            continue;
        }
        if message.seq > have + 1 && have > 0 {
            seen.gaps += 1;
        }
        have = message.seq;
        seen.latencies.push(
            now_us
                .saturating_sub(message.sent_us)
                .min(u64::from(u32::MAX)) as u32,
        );
    }
}

fn micros_since(epoch: Instant, since_us: u64) -> u32 {
    (epoch.elapsed().as_micros() as u64)
        .saturating_sub(since_us)
        .min(u64::from(u32::MAX)) as u32
}
