//! The comings and goings of a big room while it is measured: members of
//! a pool of their own join, leave, come online and go offline, and
//! waiting readers drop their connection and resume from their cursor,
//! in turn, at a steady total rate. None of it may cost a reader a
//! message (the readers check every delivery; fanout.rs).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hyper::Method;

use crate::conn::{Conn, source_for};
use crate::setup::Account;

/// What the churn did, for the report.
#[derive(Default)]
pub struct Counts {
    pub joins: AtomicU64,
    pub leaves: AtomicU64,
    pub visits: AtomicU64,
    pub reconnects: AtomicU64,
    pub errors: AtomicU64,
}

impl Counts {
    pub fn summary(&self, rate: f64, seconds: f64) -> String {
        let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
        format!(
            "churn at {rate}/s for {seconds:.1} s: {} joins, {} leaves, {} members came online and went, {} readers reconnected; {} churn errors",
            load(&self.joins),
            load(&self.leaves),
            load(&self.visits),
            load(&self.reconnects),
            load(&self.errors),
        )
    }
}

/// A churn to run beside a measured run.
pub struct Churn {
    pub room: i64,
    /// Accounts of the pool, none of them a reader; they start outside
    /// the room.
    pub pool: Vec<Account>,
    /// Changes per second, all kinds together.
    pub per_second: f64,
    /// Readers that should drop their connection and resume: each waiting
    /// reader takes one after its next answer.
    pub reconnect_tickets: AtomicU64,
    pub counts: Counts,
}

impl Churn {
    /// Runs until `stop`, cycling join, come online, reconnect a reader,
    /// leave; the pool's members go through the room in turn.
    pub async fn run(
        self: Arc<Self>,
        server: SocketAddr,
        source_offset: usize,
        stop: Arc<AtomicBool>,
    ) {
        let Ok(mut conn) = Conn::open(server, source_for(source_offset)).await else {
            self.counts.errors.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let started = Instant::now();
        let gap = Duration::from_secs_f64(1.0 / self.per_second);
        let (mut joined, mut left) = (0usize, 0usize);
        let mut visitors = Vec::new();
        for step in 0u64.. {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            tokio::time::sleep_until((started + gap * step as u32).into()).await;
            let room = self.room;
            let (path, member) = match step % 4 {
                0 => {
                    let member = &self.pool[joined % self.pool.len()];
                    joined += 1;
                    (format!("/api/v1/rooms/{room}/join"), member)
                }
                1 => {
                    // The newest joiner comes online for a moment: a poll
                    // that is dropped, so they go offline after the grace.
                    let member = self.pool[(joined - 1) % self.pool.len()].clone();
                    visitors.push(tokio::spawn(visit(
                        server,
                        source_offset + 1 + (step as usize / 4) % 500,
                        member,
                    )));
                    self.counts.visits.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                2 => {
                    self.reconnect_tickets.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                _ => {
                    // Leaves trail joins, so the room's size stays put.
                    if left + 8 > joined {
                        continue;
                    }
                    let member = &self.pool[left % self.pool.len()];
                    left += 1;
                    (format!("/api/v1/rooms/{room}/leave"), member)
                }
            };
            let counter = if step % 4 == 0 {
                &self.counts.joins
            } else {
                &self.counts.leaves
            };
            match post(&mut conn, &path, member).await {
                Ok((status, _)) if status.is_success() => {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
                _ => {
                    self.counts.errors.fetch_add(1, Ordering::Relaxed);
                    if let Ok(c) = Conn::open(server, source_for(source_offset)).await {
                        conn = c;
                    }
                }
            }
        }
        // Members of the pool still in the room leave, so the next run
        // starts from the same room.
        for member in self.pool.iter().cycle().skip(left).take(joined - left) {
            let path = format!("/api/v1/rooms/{}/leave", self.room);
            let _ = post(&mut conn, &path, member).await;
        }
        for v in visitors {
            let _ = v.await;
        }
    }

    /// Takes a reconnect ticket, if one is waiting.
    pub fn take_reconnect(&self) -> bool {
        self.reconnect_tickets
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// A join or leave: a POST with an empty body, as `member`.
async fn post(
    conn: &mut Conn,
    path: &str,
    member: &Account,
) -> anyhow::Result<(hyper::StatusCode, bytes::Bytes)> {
    conn.call(
        Method::POST,
        path,
        Some(&member.token),
        Some(b"{}".to_vec()),
    )
    .await
}

/// One member online for a moment: a cursor, a poll, then the
/// connection dropped while the poll waits.
async fn visit(server: SocketAddr, source: usize, member: Account) {
    let Ok(mut conn) = Conn::open(server, source_for(source)).await else {
        return;
    };
    let Ok(first) = conn
        .json(Method::GET, "/api/v1/events", Some(&member.token), None)
        .await
    else {
        return;
    };
    let cursor = first["cursor"].as_str().unwrap_or_default().to_owned();
    let path = format!("/api/v1/events?cursor={cursor}&timeout=20");
    let _ = tokio::time::timeout(
        Duration::from_millis(500),
        conn.call(Method::GET, &path, Some(&member.token), None),
    )
    .await;
}
