//! The cluster's shared rate-limit counters, in the bus's Redis: one key
//! per limit and user (or host), holding the GCRA's "theoretical arrival
//! time" (the same algorithm as each node's own counters), updated by one
//! Lua script so that concurrent calls from several nodes count once each.
//! The script reads Redis's clock, so the nodes' clocks do not matter.
//!
//! Redis away or slow is no reason to refuse a call: a check that does not
//! answer within [`TIMEOUT`] falls back to the node's own counter (which
//! the caller has checked already), and the counters are not asked again
//! for [`PAUSE`], so a Redis that is down costs a call nothing.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::SharedRates;

/// How long one check may take before the node counts on its own.
const TIMEOUT: Duration = Duration::from_millis(250);
/// How long the counters are left alone after they failed to answer.
const PAUSE: Duration = Duration::from_secs(1);

/// GCRA on one key: KEYS[1] the key, ARGV[1] the emission interval and
/// ARGV[2] the burst. Answers 0 to pass, else the microseconds to wait.
const TAKE: &str = r"
local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]
local every = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local next = tat + every
local allowed = every * burst
if next - now > allowed then
  return next - now - allowed
end
redis.call('SET', KEYS[1], next, 'PX', math.floor((next - now) / 1000) + 1)
return 0
";

/// [`SharedRates`] in Redis.
pub(crate) struct RedisRates {
    client: redis::Client,
    /// Every key starts with it: one deployment's counters, apart from
    /// another's on the same Redis.
    prefix: String,
    /// A connection with the script loaded, and the script's hash.
    conn: tokio::sync::Mutex<Option<(redis::aio::MultiplexedConnection, String)>>,
    /// Until when the counters are left alone.
    paused_until: Mutex<Option<Instant>>,
    /// Whether the fall-back has been logged since the counters last
    /// answered.
    warned: AtomicBool,
}

impl RedisRates {
    /// Counters on `client`'s Redis under keys that start with `prefix`.
    pub fn new(client: redis::Client, prefix: String) -> RedisRates {
        RedisRates {
            client,
            prefix,
            conn: tokio::sync::Mutex::new(None),
            paused_until: Mutex::new(None),
            warned: AtomicBool::new(false),
        }
    }

    async fn connection(&self) -> redis::RedisResult<(redis::aio::MultiplexedConnection, String)> {
        let mut held = self.conn.lock().await;
        if let Some(conn) = held.as_ref() {
            return Ok(conn.clone());
        }
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT));
        let mut conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let sha: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(TAKE)
            .query_async(&mut conn)
            .await?;
        *held = Some((conn.clone(), sha.clone()));
        Ok((conn, sha))
    }

    /// The counters did not answer: the node counts on its own for a
    /// while, and says so once.
    async fn fall_back(&self, why: &str) {
        self.conn.lock().await.take();
        *self.paused_until.lock().expect("pause poisoned") = Some(Instant::now() + PAUSE);
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                error = why,
                "the shared rate limits in Redis do not answer; each node counts on its own until they do"
            );
        }
    }
}

#[async_trait::async_trait]
impl SharedRates for RedisRates {
    async fn take(&self, key: &str, every: Duration, burst: u32) -> Option<Result<(), Duration>> {
        let paused = *self.paused_until.lock().expect("pause poisoned");
        if paused.is_some_and(|until| Instant::now() < until) {
            return None;
        }
        let asked = async {
            let (mut conn, sha) = self.connection().await?;
            redis::cmd("EVALSHA")
                .arg(sha)
                .arg(1)
                .arg(format!("{}:{key}", self.prefix))
                .arg(every.as_micros().max(1) as u64)
                .arg(burst.max(1))
                .query_async::<i64>(&mut conn)
                .await
        };
        let wait = match tokio::time::timeout(TIMEOUT, asked).await {
            Ok(Ok(wait)) => wait,
            Ok(Err(e)) => {
                self.fall_back(&e.to_string()).await;
                return None;
            }
            Err(_) => {
                self.fall_back("no answer in time").await;
                return None;
            }
        };
        if self.warned.swap(false, Ordering::Relaxed) {
            tracing::info!("the shared rate limits in Redis answer again");
        }
        Some(match wait {
            0 => Ok(()),
            micros => Err(Duration::from_micros(micros.max(0) as u64)),
        })
    }
}
