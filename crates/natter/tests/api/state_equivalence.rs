//! State equivalence: a client that keeps a snapshot of a room and applies
//! the events it receives — resuming from old cursors with the snapshot it
//! had then — ends with exactly what a fresh read of history returns; and
//! after a kill -9 in a burst of changes, the current state the store kept
//! is the replay of its own log.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Client, Process, TestServer};

/// A message as a client applying the protocol's rules keeps it.
#[derive(Clone, Debug, PartialEq)]
struct Shown {
    text: String,
    deleted: bool,
    edited_at: Option<i64>,
    reply_to: Option<i64>,
    /// Reaction → (user, seq of their reaction_added), in reacting order.
    reactions: Vec<(String, Vec<(i64, i64)>)>,
}

/// A room's messages by seq.
type Snapshot = BTreeMap<i64, Shown>;

/// Text, deleted, edited at, reply to, and reactions with their users,
/// by seq: what both sides are compared on.
type Comparable = BTreeMap<
    i64,
    (
        String,
        bool,
        Option<i64>,
        Option<i64>,
        Vec<(String, Vec<i64>)>,
    ),
>;

/// The rules of docs/protocol.md ("Applying events"), written out plainly.
fn apply(state: &mut Snapshot, e: &Value) {
    let seq = e["seq"].as_i64().unwrap();
    let target = e["target_seq"].as_i64();
    match e["type"].as_str().unwrap() {
        "message" => {
            state.entry(seq).or_insert_with(|| Shown {
                text: e["text"].as_str().unwrap().to_owned(),
                deleted: e["deleted"].as_bool().unwrap(),
                edited_at: None,
                reply_to: e["reply_to"].as_i64(),
                reactions: Vec::new(),
            });
        }
        "message_edited" => {
            if let Some(t) = target
                .and_then(|t| state.get_mut(&t))
                .filter(|t| !t.deleted)
            {
                t.text = e["text"].as_str().unwrap().to_owned();
                t.edited_at = e["ts"].as_i64();
            }
        }
        "message_deleted" => {
            if let Some(t) = target.and_then(|t| state.get_mut(&t)) {
                *t = Shown {
                    text: String::new(),
                    deleted: true,
                    edited_at: None,
                    reply_to: None,
                    reactions: Vec::new(),
                };
            }
        }
        kind @ ("reaction_added" | "reaction_removed") => {
            let Some(t) = target
                .and_then(|t| state.get_mut(&t))
                .filter(|t| !t.deleted)
            else {
                return;
            };
            let reaction = e["reaction"].as_str().unwrap().to_owned();
            let user = e["sender_id"].as_i64().unwrap();
            let chip = t.reactions.iter().position(|(r, _)| *r == reaction);
            if kind == "reaction_added" {
                match chip {
                    Some(i) if t.reactions[i].1.iter().any(|(u, _)| *u == user) => {}
                    Some(i) => t.reactions[i].1.push((user, seq)),
                    None => t.reactions.push((reaction, vec![(user, seq)])),
                }
            } else if let Some(i) = chip {
                t.reactions[i].1.retain(|(u, _)| *u != user);
                if t.reactions[i].1.is_empty() {
                    t.reactions.remove(i);
                }
            }
        }
        _ => {}
    }
}

/// What history says, in the same shape (reacting seqs are not on the
/// wire; only the order of users and chips is compared).
fn from_history(messages: &[Value]) -> Comparable {
    messages
        .iter()
        .filter(|m| m["type"] == "message")
        .map(|m| {
            let reactions = m["reactions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    let users: Vec<i64> = r["user_ids"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|u| u.as_i64().unwrap())
                        .collect();
                    assert_eq!(r["count"].as_u64().unwrap() as usize, users.len());
                    (r["reaction"].as_str().unwrap().to_owned(), users)
                })
                .collect();
            (
                m["seq"].as_i64().unwrap(),
                (
                    m["text"].as_str().unwrap().to_owned(),
                    m["deleted"].as_bool().unwrap(),
                    m["edited_at"].as_i64(),
                    m["reply_to"].as_i64(),
                    reactions,
                ),
            )
        })
        .collect()
}

fn comparable(state: &Snapshot) -> Comparable {
    state
        .iter()
        .map(|(seq, s)| {
            let reactions = s
                .reactions
                .iter()
                .map(|(r, users)| (r.clone(), users.iter().map(|(u, _)| *u).collect()))
                .collect();
            (
                *seq,
                (
                    s.text.clone(),
                    s.deleted,
                    s.edited_at,
                    s.reply_to,
                    reactions,
                ),
            )
        })
        .collect()
}

/// Every message of the room as history returns it, paging back.
async fn read_history(client: &Client, room: i64) -> Vec<Value> {
    let mut all = Vec::new();
    let mut before: Option<i64> = None;
    loop {
        let path = match before {
            Some(b) => format!("/api/v1/rooms/{room}/messages?limit=100&before={b}"),
            None => format!("/api/v1/rooms/{room}/messages?limit=100"),
        };
        let (status, body) = client.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let page = body["messages"].as_array().unwrap().clone();
        let Some(first) = page.first() else { break };
        before = first["seq"].as_i64();
        let more = body["has_more"].as_bool().unwrap();
        all.splice(0..0, page);
        if !more {
            break;
        }
    }
    all
}

/// Polls from `cursor` until nothing more comes, applying what arrives.
async fn catch_up(client: &Client, cursor: &mut String, state: &mut Snapshot, room: i64) {
    loop {
        let (status, body) = client.poll(cursor, 0).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let events = body["events"].as_array().unwrap();
        for e in events.iter().filter(|e| e["room_id"] == room) {
            apply(state, e);
        }
        *cursor = body["cursor"].as_str().unwrap().to_owned();
        if events.is_empty() {
            return;
        }
    }
}

/// A small deterministic generator, so a failing seed can be rerun.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const REACTIONS: [&str; 5] = ["👍", "❤️", "[强]", ":smile:", "🎉"];

fn encode(text: &str) -> String {
    text.bytes().map(|b| format!("%{b:02X}")).collect()
}

/// One random change by a random user; refusals (a deleted target,
/// another's message) are part of the game, server errors are not.
async fn random_change(
    rng: &mut Rng,
    users: &[Client],
    room: i64,
    sent: &mut Vec<(i64, usize)>,
    n: usize,
) {
    let who = rng.below(users.len());
    let user = &users[who];
    let pick = |rng: &mut Rng, sent: &Vec<(i64, usize)>| sent[rng.below(sent.len())];
    let reply = match rng.below(10) {
        0..=3 => {
            let reply_to = (!sent.is_empty() && rng.below(3) == 0).then(|| pick(rng, sent).0);
            let (status, body) = user
                .post(
                    &format!("/api/v1/rooms/{room}/messages"),
                    json!({"client_msg_id": format!("m-{n}"), "text": format!("message {n}\nline two"), "reply_to": reply_to}),
                )
                .await;
            if status == StatusCode::CREATED {
                sent.push((body["message"]["seq"].as_i64().unwrap(), who));
            }
            (status, body)
        }
        _ if sent.is_empty() => return,
        4 | 5 => {
            // Mostly one's own message, sometimes another's (refused).
            let (seq, owner) = pick(rng, sent);
            let editor = if rng.below(4) == 0 {
                &users[rng.below(users.len())]
            } else {
                &users[owner]
            };
            editor
                .patch(
                    &format!("/api/v1/rooms/{room}/messages/{seq}"),
                    json!({"text": format!("edit {n}")}),
                )
                .await
        }
        6 => {
            let (seq, owner) = pick(rng, sent);
            // The owner (user 0) may delete anything; others their own.
            let deleter = if rng.below(2) == 0 {
                &users[0]
            } else {
                &users[owner]
            };
            deleter
                .delete(&format!("/api/v1/rooms/{room}/messages/{seq}"))
                .await
        }
        _ => {
            let (seq, _) = pick(rng, sent);
            let path = format!(
                "/api/v1/rooms/{room}/messages/{seq}/reactions/{}",
                encode(REACTIONS[rng.below(REACTIONS.len())])
            );
            if rng.below(3) == 0 {
                user.delete(&path).await
            } else {
                user.put(&path).await
            }
        }
    };
    assert!(!reply.0.is_server_error(), "{}: {}", reply.0, reply.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_applying_events_ends_where_history_is() {
    let server = TestServer::start().await;
    for seed in 1..=12u64 {
        let mut users = Vec::new();
        for i in 0..4 {
            users.push(server.user(&format!("s{seed}u{i}")).await);
        }
        let observer = users[1].clone();
        let mut cursor = observer.cursor().await;
        let room = users[0]
            .create_room(&format!("seed {seed}"), "public")
            .await;
        for u in &users[1..] {
            u.join(room).await;
        }
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut state = Snapshot::new();
        let mut checkpoints: Vec<(String, Snapshot)> = vec![(cursor.clone(), state.clone())];
        let mut sent = Vec::new();
        for n in 0..120 {
            random_change(&mut rng, &users, room, &mut sent, n).await;
            match rng.below(12) {
                0..=2 => {
                    catch_up(&observer, &mut cursor, &mut state, room).await;
                    checkpoints.push((cursor.clone(), state.clone()));
                }
                3 => {
                    // Back to an old cursor with the snapshot kept with it.
                    let (c, s) = checkpoints[rng.below(checkpoints.len())].clone();
                    (cursor, state) = (c, s);
                }
                _ => {}
            }
        }
        catch_up(&observer, &mut cursor, &mut state, room).await;
        let history = read_history(&observer, room).await;
        assert_eq!(comparable(&state), from_history(&history), "seed {seed}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_kill_the_current_state_is_the_replay_of_the_log() {
    let data = tempfile::tempdir().unwrap();
    let natter = Process::start(data.path()).await;
    let mut users = Vec::new();
    for i in 0..3 {
        let mut c = Client::new(&natter.base);
        c.register_and_login(&format!("kill{i}")).await;
        users.push(c);
    }
    let cursor = users[0].cursor().await;
    let room = users[0].create_room("burst", "public").await;
    for u in &users[1..] {
        u.join(room).await;
    }
    let mut sent = Vec::new();
    for i in 0..30 {
        let m = users[i % 3]
            .say(room, &format!("k-{i}"), &format!("k {i}"))
            .await;
        sent.push((m["seq"].as_i64().unwrap(), i % 3));
    }
    // A burst of edits and reactions from three users at once, cut by SIGKILL.
    let mut tasks = Vec::new();
    for (u, user) in users.iter().enumerate() {
        let (user, sent) = (user.clone(), sent.clone());
        tasks.push(tokio::spawn(async move {
            for round in 0.. {
                let (seq, owner) = sent[(round * 7 + u) % sent.len()];
                let result = if owner == u {
                    user.http
                        .patch(format!("{}/api/v1/rooms/{room}/messages/{seq}", user.base))
                        .bearer_auth(user.token.as_deref().unwrap())
                        .json(&json!({"text": format!("edit {round}")}))
                        .send()
                        .await
                } else {
                    let r = encode(REACTIONS[round % REACTIONS.len()]);
                    let path = format!(
                        "{}/api/v1/rooms/{room}/messages/{seq}/reactions/{r}",
                        user.base
                    );
                    let rb = if round % 3 == 0 {
                        user.http.delete(path)
                    } else {
                        user.http.put(path)
                    };
                    rb.bearer_auth(user.token.as_deref().unwrap()).send().await
                };
                if result.is_err() {
                    return round;
                }
            }
            unreachable!()
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    natter.kill9();
    let mut rounds = 0;
    for t in tasks {
        rounds += t.await.unwrap();
    }
    assert!(rounds > 10, "the burst barely started: {rounds} changes");

    let natter = Process::start(data.path()).await;
    let mut observer = Client::new(&natter.base);
    observer.token = users[0].token.clone();
    let mut replayed = Snapshot::new();
    let mut cursor = cursor;
    catch_up(&observer, &mut cursor, &mut replayed, room).await;
    let history = read_history(&observer, room).await;
    assert_eq!(comparable(&replayed), from_history(&history));
    let edited = replayed.values().filter(|m| m.edited_at.is_some()).count();
    let reacted = replayed
        .values()
        .filter(|m| !m.reactions.is_empty())
        .count();
    assert!(
        edited > 0 && reacted > 0,
        "edited {edited}, reacted {reacted}"
    );
}
