//! Exact delivery under load: concurrent senders, a reader whose
//! connections drop at random points, every message exactly once in order.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{Client, TestServer};

/// A small deterministic PRNG, so a failing run can be replayed by seed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_messages_exactly_once_despite_dropped_connections() {
    const SENDERS: usize = 4;
    const PER_SENDER: usize = 500;
    let server = TestServer::start().await;
    let owner = server.user("owner").await;
    let rooms = [
        owner.create_room("one", "public").await,
        owner.create_room("two", "public").await,
    ];
    let mut senders = Vec::new();
    for i in 0..SENDERS {
        let s = server.user(&format!("sender{i}")).await;
        for r in rooms {
            s.join(r).await;
        }
        senders.push(s);
    }
    let reader = server.user("reader").await;
    for r in rooms {
        reader.join(r).await;
    }
    let start_cursor = reader.cursor().await;

    let seed = 0x9E37_79B9_7F4A_7C15 ^ std::process::id() as u64;
    println!("delivery test seed: {seed:#x}");
    let base = server.base.clone();
    let token = reader.token.clone();
    let read = tokio::spawn(async move {
        read_with_random_drops(base, token, start_cursor, SENDERS * PER_SENDER, seed).await
    });

    let mut sends = Vec::new();
    for (i, s) in senders.into_iter().enumerate() {
        sends.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for n in 0..PER_SENDER {
                let room = rooms[n % 2];
                let id = format!("s{i}-{n}");
                s.say(room, &id, &format!("message {id}")).await;
                acked.push(id);
            }
            acked
        }));
    }
    let mut sent = HashSet::new();
    for s in sends {
        sent.extend(s.await.unwrap());
    }
    let (events, drops) = read.await.unwrap();
    println!("reader dropped {drops} connections");
    assert!(drops > 0, "the test must actually drop connections");

    // Per room: one gapless ascending run of sequence numbers.
    let mut by_room: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    let mut received = Vec::new();
    for e in &events {
        by_room
            .entry(e["room_id"].as_i64().unwrap())
            .or_default()
            .push(e["seq"].as_i64().unwrap());
        if e["type"] == "message" {
            received.push(e["client_msg_id"].as_str().unwrap().to_owned());
        }
    }
    for (room, seqs) in &by_room {
        assert!(
            seqs.windows(2).all(|w| w[1] == w[0] + 1),
            "room {room}: sequence has a gap or a duplicate"
        );
    }
    assert_eq!(received.len(), sent.len(), "every message exactly once");
    let unique: HashSet<_> = received.iter().cloned().collect();
    assert_eq!(unique, sent);
}

/// Polls until `want` messages arrived. Each request gets a random client
/// timeout, so many are abandoned mid-wait or mid-answer; the reader then
/// polls again from the last cursor it fully received.
async fn read_with_random_drops(
    base: String,
    token: Option<String>,
    mut cursor: String,
    want: usize,
    seed: u64,
) -> (Vec<Value>, usize) {
    let mut rng = XorShift(seed);
    let mut events = Vec::new();
    let mut messages = 0;
    let mut drops = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while messages < want {
        assert!(
            Instant::now() < deadline,
            "reader timed out with {messages}/{want} messages"
        );
        let timeout = Duration::from_millis(1 + rng.next() % 40);
        let mut client = Client::new(&base);
        client.token = token.clone();
        client.http = reqwest::Client::builder().timeout(timeout).build().unwrap();
        let url = format!("{base}/api/v1/events?cursor={cursor}&timeout=2");
        let response = client
            .http
            .get(&url)
            .bearer_auth(token.as_deref().unwrap())
            .send()
            .await;
        let body: Value = match response {
            Ok(r) if r.status().is_success() => match r.json().await {
                Ok(body) => body,
                Err(_) => {
                    drops += 1;
                    continue;
                }
            },
            Ok(r) => panic!("poll failed: {}", r.status()),
            Err(_) => {
                drops += 1;
                continue;
            }
        };
        for e in body["events"].as_array().unwrap() {
            if e["type"] == "message" {
                messages += 1;
            }
            events.push(e.clone());
        }
        cursor = body["cursor"].as_str().unwrap().to_owned();
    }
    (events, drops)
}
