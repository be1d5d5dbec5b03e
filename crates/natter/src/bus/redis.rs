//! The bus between the nodes of a cluster: Redis pub/sub on one channel
//! per deployment (`natter:<deployment id>:bus` unless `bus_channel` names
//! another), so two deployments on one Redis never hear each other. A
//! copy of a deployment's database (a restored dump) has the same id: it
//! needs a channel of its own if it shares the Redis.
//!
//! A message is queued for the other nodes, then delivered to this
//! node's hub at once, in process, as the single-node bus does. Redis
//! pub/sub is at-most-once: a message published while a node is
//! disconnected, or dropped because Redis was away long enough to fill
//! the outbox, never reaches it. Nothing depends on it arriving: the store is the source of
//! truth, a node that sees a room's seq jump reads the gap from it, and
//! the hub's head checks (hub/heads.rs) read what was lost after the last
//! message before a silence. Both connections reconnect by themselves.
//!
//! The one message that cannot wait behind the others is the heartbeat
//! ([`BusMessage::NodeAlive`]): a node not heard from for a few seconds
//! is taken for dead, and its users for offline (hub/cluster.rs). So the
//! newest heartbeat waits in a place of its own, goes first in the next
//! pipeline whatever has queued up, is never turned away by a full
//! outbox, and is sent again after a pipeline that failed. Each heartbeat
//! carries the node's whole online list, so one that overtakes older
//! presence flips loses nothing: they are already in it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::{mpsc, watch};

use super::local::LocalBus;
use super::redis_rates::RedisRates;
use super::{Bus, BusMessage, BusSink, SharedRates, wire};

/// Messages waiting for Redis; past this (Redis away for a while) newer
/// ones are dropped, which the head checks repair.
const OUTBOX: usize = 10_000;
/// How long a connection or a command to Redis may take.
const TIMEOUT: Duration = Duration::from_secs(3);
/// The longest wait between two attempts to reconnect.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// How often the subscription is pinged: a connection to a host that
/// vanished without closing it would otherwise wait for ever.
const PING_EVERY: Duration = Duration::from_secs(5);
/// Messages sent to Redis in one pipeline at most.
const BATCH: usize = 256;

/// [`Bus`] over Redis pub/sub.
pub struct RedisBus {
    /// This process among the nodes: its own messages come back from
    /// Redis and are dropped.
    node: u64,
    local: LocalBus,
    outbox: mpsc::Sender<Vec<u8>>,
    /// The newest heartbeat, for the publisher to send before the outbox.
    heartbeat: watch::Sender<Option<Vec<u8>>>,
    /// Messages the full outbox turned away since it last had room (they
    /// go only through the store); logged once per such stretch.
    turned_away: AtomicU64,
    /// Tells the subscriber task to stop when the bus goes.
    stop: watch::Sender<bool>,
    /// The cluster's rate-limit counters, in the same Redis.
    rates: Arc<RedisRates>,
}

impl RedisBus {
    /// A bus on the Redis at `url`, on `channel` (one per deployment),
    /// with the shared rate limits under keys `<channel>:rates:…`. A
    /// `rediss://` URL speaks TLS and verifies Redis's certificate and
    /// name, with `tls`'s roots and client certificate if it names them.
    /// Checks the URL and reads the roots and certificate now (and the
    /// system's roots, which redis reads too); connects in the
    /// background and keeps reconnecting, so a node starts while Redis is away and
    /// delivers through the store until it is back.
    pub fn start(url: &str, tls: &BusTls, channel: String) -> anyhow::Result<Arc<RedisBus>> {
        let client = client(url, tls)?;
        let (outbox, queued) = mpsc::channel(OUTBOX);
        let (heartbeat, beats) = watch::channel(None);
        let (stop, stopped) = watch::channel(false);
        let bus = Arc::new(RedisBus {
            node: rand::random(),
            local: LocalBus::new(),
            outbox,
            heartbeat,
            turned_away: AtomicU64::new(0),
            stop,
            rates: Arc::new(RedisRates::new(client.clone(), format!("{channel}:rates"))),
        });
        tokio::spawn(publish_loop(client.clone(), channel.clone(), queued, beats));
        tokio::spawn(subscribe_loop(
            client,
            channel,
            Arc::downgrade(&bus),
            stopped,
        ));
        Ok(bus)
    }
}

/// What a `rediss://` bus trusts and presents: PEM files of the roots
/// Redis's certificate must chain to (else the system's), and of the
/// certificate and key natter shows a Redis that asks clients for one
/// (`tls-auth-clients`, on by default once Redis speaks TLS).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BusTls {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

/// The client for `url`, with `tls`'s files read now, so a missing or
/// unreadable one stops the node at start.
fn client(url: &str, tls: &BusTls) -> anyhow::Result<redis::Client> {
    let unusable = |e: redis::RedisError| anyhow::anyhow!("the bus URL cannot be used: {e}");
    // Small writes go at once: with Nagle's algorithm a publish right
    // after another could wait for the first's acknowledgement.
    let info = redis::IntoConnectionInfo::into_connection_info(url)
        .map_err(unusable)?
        .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
    if let redis::ConnectionAddr::TcpTls { insecure, .. } = info.addr() {
        // Without its insecure feature redis refuses `#insecure` only
        // when it connects; natter never turns verification off.
        anyhow::ensure!(
            !insecure,
            "the bus URL cannot be used: natter always verifies Redis's certificate (drop `#insecure`; name the roots with bus_ca_file)"
        );
        // rustls is built with ring alone; naming it here keeps a second
        // provider that some other crate might bring from making rustls
        // refuse to choose. Another caller having set one first is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        system_roots_load(tls.ca_file.is_none())?;
    }
    if *tls == BusTls::default() {
        return redis::Client::open(info).map_err(unusable);
    }
    let certificates = |pem: &[u8]| {
        let found = CertificateDer::pem_slice_iter(pem).collect::<Result<Vec<_>, _>>();
        match found {
            Ok(found) if !found.is_empty() => Ok(()),
            _ => Err("no certificate in the file"),
        }
    };
    let root_cert = match &tls.ca_file {
        Some(path) => Some(pem_file(path, "bus_ca_file", certificates)?),
        None => None,
    };
    let client_tls = match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => Some(redis::ClientTlsConfig {
            client_cert: pem_file(cert, "bus_cert_file", certificates)?,
            client_key: pem_file(key, "bus_key_file", |pem| {
                PrivateKeyDer::from_pem_slice(pem)
                    .map(drop)
                    .map_err(|_| "no private key (PKCS#8, PKCS#1 or SEC1) in the file")
            })?,
        }),
        (None, None) => None,
        _ => anyhow::bail!("bus_cert_file and bus_key_file go together"),
    };
    let certificates = redis::TlsCertificates {
        client_tls,
        root_cert,
    };
    redis::Client::build_with_tls(info, certificates).map_err(unusable)
}

/// The bytes of the PEM file `path` (the setting `setting`), which
/// `holds` must find what it wants in, or say what it lacks.
fn pem_file(
    path: &Path,
    setting: &str,
    holds: impl Fn(&[u8]) -> Result<(), &'static str>,
) -> anyhow::Result<Vec<u8>> {
    let shown = path.display();
    let pem = std::fs::read(path).map_err(|e| anyhow::anyhow!("{setting} {shown}: {e}"))?;
    holds(&pem).map_err(|lacks| anyhow::anyhow!("{setting} {shown}: {lacks}"))?;
    Ok(pem)
}

/// Whether the system's roots load (and, if `needed`, hold one root).
/// redis loads them on every TLS connection, even beside `bus_ca_file`,
/// and any error fails the connection: better said once at start than
/// logged on every attempt.
fn system_roots_load(needed: bool) -> anyhow::Result<()> {
    let found = rustls_native_certs::load_native_certs();
    if let Some(error) = found.errors.first() {
        anyhow::bail!(
            "the system's trusted certificates do not load ({error}); name the roots with bus_ca_file"
        );
    }
    anyhow::ensure!(
        !needed || !found.certs.is_empty(),
        "the system has no trusted certificates; name the roots with bus_ca_file"
    );
    Ok(())
}

impl Drop for RedisBus {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl Bus for RedisBus {
    fn publish(&self, message: BusMessage) {
        // Queued for the other nodes before this node's own polls are
        // woken: the publisher is then scheduled ahead of them, and the
        // other nodes' fan-outs start beside this one, not after it.
        if let Some(bytes) = wire::encode(self.node, &message) {
            self.queue_for_others(&message, bytes);
        }
        self.local.publish(message);
    }

    fn subscribe(&self, sink: Weak<dyn BusSink>) {
        self.local.subscribe(sink);
    }

    fn lossy(&self) -> bool {
        true
    }

    fn shared_rates(&self) -> Option<Arc<dyn SharedRates>> {
        Some(self.rates.clone())
    }
}

impl RedisBus {
    /// Hands `message`'s encoding `bytes` to the publisher: a heartbeat
    /// to its own place, anything else to the outbox, or nowhere when the
    /// outbox is full.
    fn queue_for_others(&self, message: &BusMessage, bytes: Vec<u8>) {
        if matches!(message, BusMessage::NodeAlive { .. }) {
            self.heartbeat.send_replace(Some(bytes));
            return;
        }
        if self.outbox.try_send(bytes).is_err() {
            if self.turned_away.fetch_add(1, Ordering::Relaxed) == 0 {
                tracing::warn!(
                    "the bus to Redis is full (Redis away or slow): messages go only through the store until it has room"
                );
            }
        } else if self.turned_away.load(Ordering::Relaxed) > 0 {
            let missed = self.turned_away.swap(0, Ordering::Relaxed);
            tracing::info!(messages = missed, "the bus to Redis has room again");
        }
    }
}

/// The wait before reconnect attempt `attempt` (0, 1, …).
fn backoff(attempt: u32) -> Duration {
    (Duration::from_millis(100) * 2u32.saturating_pow(attempt.min(5))).min(MAX_BACKOFF)
}

/// Sends the newest heartbeat and the outbox to Redis, in pipelines,
/// until the bus is gone.
async fn publish_loop(
    client: redis::Client,
    channel: String,
    mut queued: mpsc::Receiver<Vec<u8>>,
    mut beats: watch::Receiver<Option<Vec<u8>>>,
) {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(TIMEOUT))
        .set_response_timeout(Some(TIMEOUT));
    let mut attempt = 0;
    // A heartbeat taken from `beats` and not yet sent: kept across a
    // failed pipeline and a reconnect, unless a newer one replaces it.
    let mut beat: Option<Vec<u8>> = None;
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let mut conn = match client
            .get_multiplexed_async_connection_with_config(&config)
            .await
        {
            Ok(conn) => conn,
            Err(e) => {
                if queued.is_closed() {
                    return;
                }
                tracing::warn!(error = %e, "cannot reach Redis to publish; retrying");
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
                continue;
            }
        };
        attempt = 0;
        loop {
            if beat.is_none() && batch.is_empty() {
                // Wait for either; a heartbeat first when both are there.
                tokio::select! {
                    biased;
                    changed = beats.changed() => {
                        if changed.is_ok() {
                            beat = beats.borrow_and_update().clone();
                        } else if queued.recv_many(&mut batch, BATCH).await == 0 {
                            // The bus is gone and what it queued is sent.
                            return;
                        }
                    }
                    got = queued.recv_many(&mut batch, BATCH) => {
                        if got == 0 {
                            return;
                        }
                    }
                }
            }
            if beats.has_changed().unwrap_or(false) {
                beat = beats.borrow_and_update().clone();
            }
            // What has queued up goes in the same pipeline: one round
            // trip per batch, not per message.
            while batch.len() < BATCH {
                match queued.try_recv() {
                    Ok(bytes) => batch.push(bytes),
                    Err(_) => break,
                }
            }
            let mut pipe = redis::pipe();
            for bytes in beat.iter().chain(&batch) {
                pipe.cmd("PUBLISH").arg(&channel).arg(bytes).ignore();
            }
            let sent: redis::RedisResult<()> = pipe.query_async(&mut conn).await;
            // A batch that failed is not sent again (Redis may have
            // published part of it; the store repairs what was lost), a
            // heartbeat is: it says only how things stand.
            batch.clear();
            if let Err(e) = sent {
                tracing::warn!(error = %e, "publishing to Redis failed; reconnecting");
                break;
            }
            beat = None;
        }
    }
}

/// Hears the channel and hands other nodes' messages to this node's hub,
/// reconnecting whenever the connection ends, until the bus is gone.
async fn subscribe_loop(
    client: redis::Client,
    channel: String,
    bus: Weak<RedisBus>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut attempt = 0;
    while !*stopped.borrow() {
        let connected = tokio::time::timeout(TIMEOUT, async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            redis::RedisResult::Ok(pubsub)
        })
        .await;
        let pubsub = match connected {
            Ok(Ok(pubsub)) => pubsub,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot subscribe to Redis; retrying");
                if sleep_or_stop(backoff(attempt), &mut stopped).await {
                    return;
                }
                attempt += 1;
                continue;
            }
            Err(_) => {
                tracing::warn!("subscribing to Redis timed out; retrying");
                if sleep_or_stop(backoff(attempt), &mut stopped).await {
                    return;
                }
                attempt += 1;
                continue;
            }
        };
        if attempt > 0 {
            tracing::info!("the bus to Redis is back");
        }
        attempt = 0;
        match bus.upgrade() {
            Some(bus) => bus.local.publish(BusMessage::Hearing),
            None => return,
        }
        let (mut sink, mut messages) = pubsub.split();
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.tick().await;
        loop {
            let message = tokio::select! {
                m = messages.next() => m,
                _ = stopped.changed() => return,
                _ = ping.tick() => {
                    let answered = tokio::time::timeout(TIMEOUT, sink.ping::<redis::Value>()).await;
                    if !matches!(answered, Ok(Ok(_))) {
                        tracing::warn!("Redis stopped answering the subscription's ping; reconnecting");
                        break;
                    }
                    continue;
                }
            };
            let Some(message) = message else {
                tracing::warn!("the Redis subscription ended; reconnecting");
                break;
            };
            let Some(bus) = bus.upgrade() else { return };
            match wire::decode(message.get_payload_bytes()) {
                Some((node, _)) if node == bus.node => {}
                // A message whose handling panics is lost here, as one
                // Redis dropped would be; the next is heard as usual.
                Some((_, message)) => {
                    crate::panics::contained("a message from another node", || {
                        bus.local.publish(message)
                    });
                }
                None => tracing::debug!("a message on the bus channel that natter did not write"),
            }
        }
    }
}

/// Sleeps `wait`, or less if the bus stops meanwhile; answers whether it
/// stopped.
async fn sleep_or_stop(wait: Duration, stopped: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(wait) => *stopped.borrow(),
        _ = stopped.changed() => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Why `client` refused `url` with `tls`.
    fn refused(url: &str, tls: &BusTls) -> String {
        match client(url, tls) {
            Ok(_) => panic!("{url} with {tls:?} was accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn verification_cannot_be_turned_off() {
        let why = refused("rediss://localhost:6380/#insecure", &BusTls::default());
        assert!(why.contains("always verifies"), "{why}");
        assert!(client("rediss://localhost:6380", &BusTls::default()).is_ok());
    }

    #[test]
    fn files_that_are_missing_or_hold_the_wrong_thing_stop_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not PEM at all\n").unwrap();
        let missing = dir.path().join("missing.pem");
        let url = "rediss://localhost:6380";
        let ca = |path: &Path| BusTls {
            ca_file: Some(path.to_owned()),
            ..BusTls::default()
        };
        let why = refused(url, &ca(&missing));
        assert!(why.starts_with("bus_ca_file"), "{why}");
        let why = refused(url, &ca(&garbage));
        assert!(why.contains("no certificate in the file"), "{why}");
        let pair = BusTls {
            cert_file: Some(garbage.clone()),
            key_file: Some(garbage.clone()),
            ..BusTls::default()
        };
        let why = refused(url, &pair);
        assert!(why.starts_with("bus_cert_file"), "{why}");
        let half = BusTls {
            cert_file: Some(garbage),
            ..BusTls::default()
        };
        assert!(refused(url, &half).contains("go together"));
    }
}
