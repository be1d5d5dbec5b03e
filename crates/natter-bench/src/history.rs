//! S5: paging back through a large room's history.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};

use crate::conn::{Conn, source_for};
use crate::fanout::{Plan, Population, Run};
use crate::stats::{Latency, Report};

/// Fills one room with `messages` messages (32 senders at once), then
/// reads `pages` random pages of 50 and times each.
pub async fn run(
    server: SocketAddr,
    server_pid: Option<u32>,
    messages: u64,
    pages: usize,
) -> anyhow::Result<Report> {
    let population = Population::create(server, 1, 0, 32).await?;
    eprintln!("filling one room with {messages} messages");
    let fill = Run {
        server,
        server_pid,
        population: &population,
        clients: 0,
        plan: Plan::Count { messages },
        drain: Duration::ZERO,
        name: "s5-fill".into(),
        baseline_rss_kib: None,
        source_offset: 0,
    }
    .execute()
    .await?;
    let room = population.rooms[0];
    let token = &population.senders[0].token;
    let mut conn = Conn::open(server, source_for(0)).await?;
    let info = conn
        .json(
            Method::GET,
            &format!("/api/v1/rooms/{room}"),
            Some(token),
            None,
        )
        .await?;
    let head = info["room"]["head_seq"].as_i64().unwrap_or_default();
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let mut samples = Vec::with_capacity(pages);
    let mut errors = 0;
    for _ in 0..pages {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let before = 51 + (rng % (head.max(51) as u64 - 50)) as i64;
        let path = format!("/api/v1/rooms/{room}/messages?before={before}&limit=50");
        let started = Instant::now();
        let (status, body) = conn.call(Method::GET, &path, Some(token), None).await?;
        samples.push(started.elapsed().as_micros() as u32);
        let page: serde_json::Value = serde_json::from_slice(&body)?;
        if status != StatusCode::OK || page["messages"].as_array().map_or(0, Vec::len) != 50 {
            errors += 1;
        }
    }
    Ok(Report {
        scenario: "s5".into(),
        rooms: 1,
        messages_sent: fill.messages_sent,
        messages_acked: fill.messages_acked,
        acks_per_s: fill.acks_per_s,
        errors: errors + fill.errors,
        page_latency: Some(Latency::from_micros(samples)),
        notes: vec![format!(
            "room {room} holds {head} events; {pages} pages of 50 read at random positions"
        )],
        ..Report::default()
    })
}
