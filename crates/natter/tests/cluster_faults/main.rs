//! A cluster while its services fail: three nodes behind round-robin
//! with every subscription to Redis killed every 2 s, and two nodes
//! through a Redis restart and a PostgreSQL crash (`pg_ctlcluster …
//! restart -m immediate`). Every acknowledged message reaches every
//! reader once, in order.
//!
//! Its own test binary: cargo runs one binary at a time, so killing every
//! Redis subscription or restarting the services disturbs no other test.
//! The tests here also run one at a time (`SERVICES`). Restarting the
//! machine's PostgreSQL and Redis needs `CI=true` or
//! `NATTER_TEST_RESTART_SERVICES=1`; without either that test says it
//! skipped.

#[allow(dead_code)]
#[path = "../api/cluster_nodes.rs"]
mod cluster_nodes;
#[allow(dead_code)]
#[path = "../api/common.rs"]
mod common;
#[path = "../support/services.rs"]
mod services;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use cluster_nodes::Cluster;
use common::Client;

/// Held by each test for its whole run.
static SERVICES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A message as a reader got it.
struct Got {
    seq: i64,
    text: String,
    /// Milliseconds from its send to the answer that brought it.
    latency_ms: i64,
}

/// What a reader waits for.
#[derive(Clone)]
enum Until {
    /// This many messages.
    Count(usize),
    /// The message with this text.
    Text(&'static str),
}

impl Until {
    fn reached(&self, got: &[Got]) -> bool {
        match self {
            Until::Count(n) => got.len() >= *n,
            Until::Text(text) => got.iter().any(|g| g.text == *text),
        }
    }
}

/// Polls `client` from `cursor`, each poll on the next of `bases`, until
/// `until`, or until no message has come for `stalled` (a message lost
/// for good; a slow machine still makes progress). Answers that the
/// store being away refused are tried again.
async fn read_messages(
    bases: Vec<String>,
    client: Client,
    mut cursor: String,
    until: Until,
    stalled: Duration,
) -> Vec<Got> {
    let mut last_news = Instant::now();
    let mut got = Vec::new();
    let mut next = 0;
    while !until.reached(&got) && last_news.elapsed() < stalled {
        let mut here = client.clone();
        here.base = bases[next % bases.len()].clone();
        next += 1;
        let (status, answer) = here.poll(&cursor, 5).await;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        assert_eq!(status, StatusCode::OK, "{answer}");
        let now = natter::model::now_ms();
        for event in answer["events"].as_array().unwrap() {
            if event["type"] == "message" {
                last_news = Instant::now();
                got.push(Got {
                    seq: event["seq"].as_i64().unwrap(),
                    text: event["text"].as_str().unwrap().to_owned(),
                    latency_ms: now - event["ts"].as_i64().unwrap(),
                });
            }
        }
        cursor = answer["cursor"].as_str().unwrap().to_owned();
    }
    got
}

/// Checks that `got` holds every one of `sent` once, in seq order, and
/// nothing else but `also_allowed` (sends whose answer was lost).
fn assert_exactly_once_in_order(
    who: &str,
    got: &[Got],
    sent: &HashSet<String>,
    also_allowed: &HashSet<String>,
) {
    for pair in got.windows(2) {
        assert!(
            pair[1].seq > pair[0].seq,
            "{who}: seq {} after {}",
            pair[1].seq,
            pair[0].seq
        );
    }
    let texts: HashSet<&str> = got.iter().map(|g| g.text.as_str()).collect();
    assert_eq!(texts.len(), got.len(), "{who}: a message came twice");
    for text in sent {
        assert!(
            texts.contains(text.as_str()),
            "{who}: acknowledged {text} never came ({} of {} came, the last at seq {:?})",
            got.len(),
            sent.len(),
            got.last().map(|g| g.seq)
        );
    }
    for text in texts {
        assert!(
            sent.contains(text) || also_allowed.contains(text),
            "{who}: {text} came but was never sent"
        );
    }
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// 8 senders and 30 readers on 3 nodes, every request on the next node,
/// while every Redis subscription is killed every 2 s: 5,000 messages,
/// each reaching every reader once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_over_three_nodes_with_subscriptions_killed_every_two_seconds() {
    const SENDERS: usize = 8;
    const READERS: usize = 30;
    const EACH: usize = 625;
    let _alone = SERVICES.lock().await;
    let Some(redis) = services::redis_url("round_robin_over_three_nodes").await else {
        return;
    };
    let Some(cluster) = Cluster::start_with(3, |_, r| r.to_owned(), Duration::from_secs(1)).await
    else {
        return;
    };
    let bases: Vec<String> = cluster.nodes.iter().map(|n| n.base.clone()).collect();
    let owner = cluster.nodes[0].user("owner").await;
    let room = owner.create_room("round robin", "public").await;
    let mut senders = Vec::new();
    for i in 0..SENDERS {
        let sender = cluster.nodes[i % 3].user(&format!("sender{i}")).await;
        sender.join(room).await;
        senders.push(sender);
    }
    let mut readers = Vec::new();
    for i in 0..READERS {
        let reader = cluster.nodes[i % 3].user(&format!("reader{i}")).await;
        reader.join(room).await;
        let cursor = reader.cursor().await;
        readers.push((reader, cursor));
    }

    let reading: Vec<_> = readers
        .into_iter()
        .map(|(reader, cursor)| {
            tokio::spawn(read_messages(
                bases.clone(),
                reader,
                cursor,
                Until::Count(SENDERS * EACH),
                // Head checks run every second: 30 s without news is a
                // message lost, however slow the machine.
                Duration::from_secs(30),
            ))
        })
        .collect();
    let (done, mut stopped) = tokio::sync::watch::channel(false);
    let killer = tokio::spawn(async move {
        let client = redis::Client::open(redis.as_str()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let mut kills = 0;
        let mut killed = 0;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                _ = stopped.changed() => return (kills, killed),
            }
            let n: i64 = redis::cmd("CLIENT")
                .arg("KILL")
                .arg("TYPE")
                .arg("pubsub")
                .query_async(&mut conn)
                .await
                .unwrap();
            kills += 1;
            killed += n;
        }
    });
    let started = Instant::now();
    let sending: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(i, sender)| {
            let cluster_bases = bases.clone();
            tokio::spawn(async move {
                let mut sent = Vec::with_capacity(EACH);
                for n in 0..EACH {
                    let mut here = sender.clone();
                    here.base = cluster_bases[n % 3].clone();
                    let id = format!("s{i}-{n}");
                    let (status, body) = here
                        .post(
                            &format!("/api/v1/rooms/{room}/messages"),
                            json!({"client_msg_id": id, "text": id}),
                        )
                        .await;
                    assert_eq!(status, StatusCode::CREATED, "{body}");
                    sent.push(id);
                }
                sent
            })
        })
        .collect();
    let mut sent = HashSet::new();
    for s in sending {
        sent.extend(s.await.unwrap());
    }
    let send_time = started.elapsed();
    let mut latencies = Vec::new();
    for (i, r) in reading.into_iter().enumerate() {
        let got = r.await.unwrap();
        assert_exactly_once_in_order(&format!("reader{i}"), &got, &sent, &HashSet::new());
        latencies.extend(got.iter().map(|g| g.latency_ms));
    }
    let read_time = started.elapsed();
    done.send(true).unwrap();
    let (kills, killed) = killer.await.unwrap();
    assert!(kills >= 2, "the run ended before two rounds of kills");
    latencies.sort_unstable();
    println!(
        "{} messages sent in {:.1} s, {} deliveries read by {:.1} s; {kills} rounds killed {killed} subscriptions; wake-up p50 {} ms, p99 {} ms, max {} ms",
        sent.len(),
        send_time.as_secs_f64(),
        latencies.len(),
        read_time.as_secs_f64(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().unwrap(),
    );
    cluster.stop().await;
}

/// Whether this run may restart the machine's PostgreSQL and Redis.
fn may_restart_services(test: &str) -> bool {
    if services::under_ci() || std::env::var("NATTER_TEST_RESTART_SERVICES").is_ok_and(|v| v == "1")
    {
        return true;
    }
    eprintln!(
        "SKIPPED {test}: it restarts this machine's PostgreSQL and Redis; set NATTER_TEST_RESTART_SERVICES=1 to let it"
    );
    false
}

/// Runs scripts/services.sh `action service`.
fn services_script(action: &str, service: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/services.sh");
    let status = std::process::Command::new("bash")
        .arg(script)
        .arg(action)
        .arg(service)
        .status()
        .expect("scripts/services.sh runs");
    assert!(status.success(), "services.sh {action} {service}: {status}");
}

/// Starts PostgreSQL and Redis again if a test ends while one is down.
struct BringBack;

impl Drop for BringBack {
    fn drop(&mut self) {
        services_script("start", "postgres");
        services_script("start", "redis");
    }
}

/// Sends `room` messages as `client` until `stop`, each answered within
/// 5 s: acknowledged (and then durable), or refused with
/// `503 store_unavailable`. Returns the acknowledged ids and those whose
/// fate the client cannot know (refused: they may not have committed).
async fn send_through(
    client: Client,
    room: i64,
    prefix: &'static str,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> (Vec<String>, Vec<String>) {
    let (mut acked, mut refused) = (Vec::new(), Vec::new());
    for n in 0.. {
        if *stop.borrow_and_update() {
            break;
        }
        let id = format!("{prefix}-{n}");
        let sent = Instant::now();
        let (status, body): (StatusCode, Value) = client
            .post(
                &format!("/api/v1/rooms/{room}/messages"),
                json!({"client_msg_id": id, "text": id}),
            )
            .await;
        assert!(
            sent.elapsed() < Duration::from_secs(5),
            "a send took {:?}: {status} {body}",
            sent.elapsed()
        );
        match status {
            StatusCode::CREATED => acked.push(id),
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(body["error"]["code"], "store_unavailable", "{body}");
                refused.push(id);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => panic!("a send answered {other}: {body}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (acked, refused)
}

/// Two nodes; Bob reads on node B what Alice sends on node A, through a
/// Redis restart, then through a PostgreSQL crash. Sends go on being
/// acknowledged while Redis is away and are refused fast while
/// PostgreSQL is; Bob gets every acknowledged message once, in order,
/// and the bus and the pool come back by themselves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_and_reads_go_on_through_a_redis_restart_and_a_postgres_crash() {
    let test = "sends_and_reads_go_on_through_a_redis_restart_and_a_postgres_crash";
    let _alone = SERVICES.lock().await;
    if !may_restart_services(test) {
        return;
    }
    // Head checks too rare to matter: after Redis is back, only the bus
    // (and the gap it reveals) can bring Bob the messages.
    let Some(cluster) = Cluster::start_with(2, |_, r| r.to_owned(), Duration::from_secs(60)).await
    else {
        return;
    };
    let _bring_back = BringBack;
    let alice = cluster.nodes[0].user("alice").await;
    let bob = cluster.on(1, &cluster.nodes[0].user("bob").await);
    let room = alice.create_room("restarts", "public").await;
    bob.join(room).await;
    let cursor = bob.cursor().await;

    // Redis goes away and comes back while Alice sends.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let sending = tokio::spawn(send_through(alice.clone(), room, "r", stopped));
    tokio::time::sleep(Duration::from_millis(500)).await;
    services_script("restart", "redis");
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.send(true).unwrap();
    let (acked, refused) = sending.await.unwrap();
    assert!(refused.is_empty(), "Redis away refused sends: {refused:?}");
    // The bus is back: one more message brings Bob everything.
    let came_back = Instant::now();
    alice.say(room, "r-last", "r-last").await;
    let mut sent: HashSet<String> = acked.into_iter().collect();
    sent.insert("r-last".into());
    let got = read_messages(
        vec![cluster.nodes[1].base.clone()],
        bob.clone(),
        cursor,
        Until::Text("r-last"),
        Duration::from_secs(10),
    )
    .await;
    assert_exactly_once_in_order("Bob after Redis", &got, &sent, &HashSet::new());
    println!(
        "Redis restart: {} sends acknowledged, all read on node B within {} ms of the next send",
        sent.len(),
        came_back.elapsed().as_millis()
    );
    let cursor = {
        let (_, answer) = bob.poll(&bob.cursor().await, 0).await;
        answer["cursor"].as_str().unwrap().to_owned()
    };

    // PostgreSQL crashes and recovers while Alice sends.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let sending = tokio::spawn(send_through(alice.clone(), room, "p", stopped));
    tokio::time::sleep(Duration::from_millis(500)).await;
    services_script("crash", "postgres");
    // Until the pool has reconnected and sends are acknowledged again.
    let back = Instant::now();
    loop {
        let (status, _) = alice.get(&format!("/api/v1/rooms/{room}")).await;
        if status == StatusCode::OK {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(15),
            "still {status} 15 s after PostgreSQL came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.send(true).unwrap();
    let (acked, refused) = sending.await.unwrap();
    assert!(!acked.is_empty());
    alice.say(room, "p-last", "p-last").await;
    let mut sent: HashSet<String> = acked.into_iter().collect();
    sent.insert("p-last".into());
    let maybe: HashSet<String> = refused.iter().cloned().collect();
    let got = read_messages(
        vec![cluster.nodes[1].base.clone()],
        bob.clone(),
        cursor,
        Until::Text("p-last"),
        Duration::from_secs(20),
    )
    .await;
    // A refused send may have committed before the crash took the answer.
    assert_exactly_once_in_order("Bob after PostgreSQL", &got, &sent, &maybe);
    // And the database itself holds every acknowledged one.
    let (db, conn) = tokio_postgres::connect(&cluster.postgres, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let stored: HashSet<String> = db
        .query(
            &format!(
                "SELECT client_msg_id FROM {}.events WHERE room_id = $1 AND client_msg_id IS NOT NULL",
                cluster.schema
            ),
            &[&room],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    for id in &sent {
        assert!(
            stored.contains(id),
            "acknowledged {id} is not in PostgreSQL"
        );
    }
    println!(
        "PostgreSQL crash: {} sends acknowledged, {} refused with 503 store_unavailable; the pool was back {} ms after the restart",
        sent.len(),
        refused.len(),
        back.elapsed().as_millis()
    );
    cluster.stop().await;
}
