//! What arrivals cost a big room: clients wait in one room, then more of
//! its members come online one after another. Every answer the waiting
//! clients get carries no message, so the answers per arrival are what
//! presence costs the room. Run it against a server with the default
//! `--big-room-members` (200: presence in this room reaches only those
//! watching it) and with a huge one (presence to every member) to compare.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hyper::Method;

use crate::conn::{Conn, source_for};
use crate::route::Servers;
use crate::setup;
use crate::stats::{CpuMeter, Report};

/// Counts of what the waiting clients saw.
#[derive(Default)]
struct Seen {
    answers: AtomicU64,
    presence_items: AtomicU64,
    errors: AtomicU64,
    ready: AtomicU64,
}

/// One client's long-poll loop, counting answers, until `stop`.
async fn wait_loop(
    server: SocketAddr,
    index: usize,
    token: String,
    seen: Arc<Seen>,
    stop: Arc<AtomicBool>,
) {
    let Ok(mut conn) = Conn::open(server, source_for(index)).await else {
        seen.errors.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let Ok(first) = conn
        .json(Method::GET, "/api/v1/events", Some(&token), None)
        .await
    else {
        seen.errors.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let mut cursor = first["cursor"].as_str().unwrap_or_default().to_owned();
    seen.ready.fetch_add(1, Ordering::Relaxed);
    while !stop.load(Ordering::Relaxed) {
        let path = format!("/api/v1/events?cursor={cursor}&timeout=3");
        match conn.json(Method::GET, &path, Some(&token), None).await {
            Ok(answer) => {
                let items = answer["ephemeral"].as_array().map_or(0, Vec::len) as u64;
                if items > 0 || answer["events"].as_array().is_some_and(|e| !e.is_empty()) {
                    seen.answers.fetch_add(1, Ordering::Relaxed);
                    seen.presence_items.fetch_add(items, Ordering::Relaxed);
                }
                cursor = answer["cursor"].as_str().unwrap_or_default().to_owned();
            }
            Err(_) => {
                seen.errors.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
    }
}

/// Runs the scenario; see the module docs.
pub async fn run(
    server: SocketAddr,
    pid: &[u32],
    clients: usize,
    arrivals: usize,
    rate: f64,
) -> anyhow::Result<Report> {
    let prefix = setup::run_prefix();
    eprintln!(
        "setting up one room of {} members (prefix {prefix})",
        clients + arrivals
    );
    let one = Servers::one(server);
    let owner = setup::accounts(&one, &format!("{prefix}o"), 1).await?;
    let room = setup::rooms(&one, &owner[0], &prefix, 1).await?[0];
    let people = setup::accounts(&one, &format!("{prefix}m"), clients + arrivals).await?;
    setup::join(&one, people.iter().map(|a| (a.clone(), room)).collect()).await?;
    let (waiting, arriving) = people.split_at(clients);

    let seen = Arc::new(Seen::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for (i, account) in waiting.iter().enumerate() {
        let (seen, stop, token) = (seen.clone(), stop.clone(), account.token.clone());
        tasks.push(tokio::spawn(wait_loop(server, i, token, seen, stop)));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while (seen.ready.load(Ordering::Relaxed) as usize) < clients && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let the waiting clients' own arrivals settle before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    seen.answers.store(0, Ordering::Relaxed);
    seen.presence_items.store(0, Ordering::Relaxed);

    let meter = CpuMeter::start(pid);
    let started = Instant::now();
    let arrived = Arc::new(Seen::default());
    let gap = Duration::from_secs_f64(1.0 / rate);
    for (i, account) in arriving.iter().enumerate() {
        tokio::time::sleep_until((started + gap * i as u32).into()).await;
        let (arrived, stop, token) = (arrived.clone(), stop.clone(), account.token.clone());
        tasks.push(tokio::spawn(wait_loop(
            server,
            clients + i,
            token,
            arrived,
            stop,
        )));
    }
    // Presence is gathered for 250 ms before it wakes anyone.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let elapsed = started.elapsed();
    let answers = seen.answers.load(Ordering::Relaxed);
    let items = seen.presence_items.load(Ordering::Relaxed);
    let mut report = Report {
        scenario: "presence".into(),
        clients,
        rooms: 1,
        duration_s: elapsed.as_secs_f64(),
        errors: seen.errors.load(Ordering::Relaxed) + arrived.errors.load(Ordering::Relaxed),
        ..Report::default()
    };
    meter.finish(&mut report);
    report.notes.push(format!(
        "{arrivals} members came online at {rate}/s while {clients} waited: the waiting clients got {answers} answers ({:.2} per arrival) holding {items} ephemeral items",
        answers as f64 / arrivals.max(1) as f64
    ));
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }
    Ok(report)
}
