//! S5: paging back through a large room's history, optionally after a
//! share of its messages was edited and reacted to (history then reads
//! the current state of each message beside the log).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};

use crate::conn::{Conn, source_for};
use crate::fanout::{Plan, Population, Run};
use crate::route::Servers;
use crate::setup::parallel;
use crate::stats::{Latency, Report};

/// What share of the room's messages get changed before the pages are read.
#[derive(Clone, Copy, Debug)]
pub struct Changes {
    /// Percent of messages edited once by their sender.
    pub edited_percent: u64,
    /// Percent of messages given one reaction by another sender.
    pub reacted_percent: u64,
}

/// A fixed scramble of a seq, so the changed messages spread evenly.
fn scramble(seq: i64, salt: u64) -> u64 {
    let mut z = (seq as u64) ^ salt;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Edits and reacts to the chosen share of the room's messages, with 32
/// connections at once; returns how many changes were made and how long
/// they took.
async fn change(
    server: SocketAddr,
    population: &Population,
    room: i64,
    head: i64,
    changes: Changes,
) -> anyhow::Result<(usize, Duration)> {
    // Who sent what: the senders' ids, then every message's sender.
    let mut conn = Conn::open(server, source_for(0)).await?;
    let mut tokens = std::collections::HashMap::new();
    for account in &population.senders {
        let me = conn
            .json(Method::GET, "/api/v1/me", Some(&account.token), None)
            .await?;
        tokens.insert(
            me["user"]["id"].as_i64().unwrap_or_default(),
            account.token.clone(),
        );
    }
    let reader = population.senders[0].token.clone();
    let befores: Vec<i64> = (0..)
        .map(|i| head + 1 - i * 100)
        .take_while(|b| *b > 1)
        .collect();
    let pages = parallel(
        &Servers::one(server),
        befores,
        16,
        move |mut conn, before| {
            let reader = reader.clone();
            async move {
                let path = format!("/api/v1/rooms/{room}/messages?before={before}&limit=100");
                let page = conn.json(Method::GET, &path, Some(&reader), None).await?;
                let sent: Vec<(i64, i64)> = page["messages"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|m| m["type"] == "message")
                    .map(|m| {
                        (
                            m["seq"].as_i64().unwrap_or_default(),
                            m["sender_id"].as_i64().unwrap_or_default(),
                        )
                    })
                    .collect();
                Ok((conn, sent))
            }
        },
    )
    .await?;
    let senders: Vec<i64> = tokens.keys().copied().collect();
    let mut work = Vec::new();
    for (seq, sender) in pages.into_iter().flatten() {
        if scramble(seq, 1) % 100 < changes.edited_percent
            && let Some(token) = tokens.get(&sender)
        {
            let path = format!("/api/v1/rooms/{room}/messages/{seq}");
            work.push((Method::PATCH, path, token.clone(), true));
        }
        if scramble(seq, 2) % 100 < changes.reacted_percent {
            let other = senders[(scramble(seq, 3) % senders.len() as u64) as usize];
            let reaction = ["%F0%9F%91%8D", "%F0%9F%8E%89"][(seq % 2) as usize];
            work.push((
                Method::PUT,
                format!("/api/v1/rooms/{room}/messages/{seq}/reactions/{reaction}"),
                tokens[&other].clone(),
                false,
            ));
        }
    }
    let count = work.len();
    eprintln!("changing {count} messages (edits and reactions)");
    let started = Instant::now();
    parallel(
        &Servers::one(server),
        work,
        32,
        |mut conn, (method, path, token, edit)| async move {
            let body = edit.then(|| serde_json::json!({"text": "edited for the bench"}));
            conn.json(method, &path, Some(&token), body).await?;
            Ok((conn, ()))
        },
    )
    .await?;
    Ok((count, started.elapsed()))
}

/// Fills one room with `messages` messages (32 senders at once), changes
/// the share `changes` names, then reads `pages` random pages of 50 and
/// times each.
pub async fn run(
    server: SocketAddr,
    server_pid: &[u32],
    messages: u64,
    pages: usize,
    changes: Changes,
) -> anyhow::Result<Report> {
    let population = Population::create(&Servers::one(server), 1, 0, 32).await?;
    eprintln!("filling one room with {messages} messages");
    let fill = Run {
        change: crate::fanout::Change::Message,
        servers: Servers::one(server),
        server_pids: server_pid,
        population: &population,
        clients: 0,
        plan: Plan::Count { messages },
        drain: Duration::ZERO,
        name: "s5-fill".into(),
        baseline_rss_kib: None,
        source_offset: 0,
        typers: 0,
        watchers: 0,
        churn: None,
        storm_after: None,
        poll_timeout_s: 5,
        barrier: None,
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
    let mut notes = Vec::new();
    if changes.edited_percent + changes.reacted_percent > 0 {
        let (count, took) = change(server, &population, room, head, changes).await?;
        // Idle all that while, the connection was closed by the server.
        conn = Conn::open(server, source_for(0)).await?;
        notes.push(format!(
            "{count} changes ({}% of messages edited, {}% reacted to) in {:.1} s, {:.0}/s",
            changes.edited_percent,
            changes.reacted_percent,
            took.as_secs_f64(),
            count as f64 / took.as_secs_f64().max(1e-9)
        ));
    }
    let head = conn
        .json(
            Method::GET,
            &format!("/api/v1/rooms/{room}"),
            Some(token),
            None,
        )
        .await?["room"]["head_seq"]
        .as_i64()
        .unwrap_or(head);
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
        notes: {
            notes.push(format!(
                "room {room} holds {head} events; {pages} pages of 50 read at random positions"
            ));
            notes
        },
        ..Report::default()
    })
}
