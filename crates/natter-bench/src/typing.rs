//! The cost of typing notices: some members of a room "type" the way the
//! web client does (one notice per 3 s each) while the room's other
//! members wait, as in S1. The scenario runs the same room twice, without
//! and with typers, so the server CPU the notices cost is the difference
//! between two runs measured back to back.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hyper::Method;
use serde_json::json;

use crate::conn::{Conn, source_for};

/// How often one typer sends a notice: the web client's throttle.
pub const NOTICE_EVERY: Duration = Duration::from_secs(3);

/// What the typers did.
#[derive(Default)]
pub struct Typed {
    pub sent: AtomicU64,
    pub announced: AtomicU64,
    pub errors: AtomicU64,
}

/// Runs one typer per token in `room` until `stop` is set: each starts at
/// its own offset within [`NOTICE_EVERY`], so notices arrive evenly.
pub fn start(
    server: SocketAddr,
    tokens: Vec<String>,
    room: i64,
    source_offset: usize,
    stop: Arc<AtomicBool>,
) -> (Arc<Typed>, Vec<tokio::task::JoinHandle<()>>) {
    let typed = Arc::new(Typed::default());
    let count = tokens.len().max(1) as u32;
    let tasks = tokens
        .into_iter()
        .enumerate()
        .map(|(i, token)| {
            let (typed, stop) = (typed.clone(), stop.clone());
            let offset = NOTICE_EVERY * i as u32 / count;
            tokio::spawn(async move {
                tokio::time::sleep(offset).await;
                let Ok(mut conn) = Conn::open(server, source_for(source_offset + i)).await else {
                    typed.errors.fetch_add(1, Ordering::Relaxed);
                    return;
                };
                let path = format!("/api/v1/rooms/{room}/typing");
                let mut next = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    let body = json!({ "typing": true });
                    match conn
                        .json(Method::POST, &path, Some(&token), Some(body))
                        .await
                    {
                        Ok(answer) => {
                            typed.sent.fetch_add(1, Ordering::Relaxed);
                            if answer["announced"] == true {
                                typed.announced.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Err(_) => {
                            typed.errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    next += NOTICE_EVERY;
                    tokio::time::sleep_until(next.into()).await;
                }
            })
        })
        .collect();
    (typed, tasks)
}
