//! Two nodes on one PostgreSQL and one Redis, as a cluster runs behind a
//! load balancer with no sticky sessions: a poll waiting on one node is
//! woken by a send on the other, a client whose requests alternate between
//! nodes gets every message once, in order, a logout on one node ends
//! the polls on the other, and a node that loses Redis or is killed
//! leaves nothing undelivered (what else the nodes share:
//! cluster_shared.rs). Uses `NATTER_TEST_POSTGRES` and
//! `NATTER_TEST_REDIS` (default `redis://127.0.0.1:6379`); without them it
//! says that it skipped, except under `CI=true`, where it fails.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::cluster_nodes::Cluster;
use crate::common::{
    Client, Process, ephemeral_items, message_texts, read_to_the_end, send_until_refused,
};
use crate::services::{drop_schema, fresh_schema, postgres_url, redis_url};

#[tokio::test]
async fn a_send_on_one_node_reaches_polls_on_the_other_and_alternating_requests_miss_nothing() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    let alice = cluster.nodes[0].user("alice").await;
    let bob = cluster.on(1, &cluster.nodes[0].user("bob").await);
    let room = alice.create_room("two nodes", "public").await;
    bob.join(room).await;

    // Bob waits on node B; Alice sends on node A.
    let cursor = bob.cursor().await;
    let waiting = {
        let (bob, cursor) = (bob.clone(), cursor.clone());
        tokio::spawn(async move { bob.poll(&cursor, 10).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = Instant::now();
    alice.say(room, "x-1", "across the cluster").await;
    let (status, answer) = waiting.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(message_texts(&answer), ["across the cluster"]);
    assert!(
        sent.elapsed() < Duration::from_secs(1),
        "woken through the bus, not a head check: {:?}",
        sent.elapsed()
    );

    // Sends and polls landing on either node, as round-robin does.
    let mut cursor = answer["cursor"].as_str().unwrap().to_owned();
    for i in 0..30 {
        let sender = cluster.on(i % 2, &alice);
        sender
            .say(room, &format!("r-{i}"), &format!("message {i}"))
            .await;
    }
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut n = 0;
    while got.len() < 30 && Instant::now() < deadline {
        let (status, answer) = cluster.on(n % 2, &bob).poll(&cursor, 5).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        got.extend(message_texts(&answer));
        cursor = answer["cursor"].as_str().unwrap().to_owned();
        n += 1;
    }
    let want: Vec<String> = (0..30).map(|i| format!("message {i}")).collect();
    assert_eq!(
        got, want,
        "every message once, in order, whichever node answered"
    );
    cluster.stop().await;
}

#[tokio::test]
async fn a_logout_on_one_node_ends_the_polls_on_the_other_at_once() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    let bob = cluster.nodes[0].user("bob").await;
    let on_b = cluster.on(1, &bob);
    let cursor = on_b.cursor().await;
    let waiting = {
        let (on_b, cursor) = (on_b.clone(), cursor.clone());
        tokio::spawn(async move { on_b.poll(&cursor, 10).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ended = Instant::now();
    let (status, body) = bob.delete("/api/v1/sessions/current").await;
    assert!(status.is_success(), "{status} {body}");
    let (status, answer) = waiting.await.unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert_eq!(answer["error"]["code"], "session_ended", "{answer}");
    assert!(
        ended.elapsed() < Duration::from_secs(1),
        "{:?}",
        ended.elapsed()
    );
    // And node B refuses the token from now on.
    let (status, _) = on_b.get("/api/v1/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    cluster.stop().await;
}

#[tokio::test]
async fn a_rename_on_one_node_names_the_next_send_on_the_other() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    let alice = cluster.nodes[0].user("alice").await;
    let room = alice.create_room("names", "public").await;
    // Node B knows Alice's name from a send there.
    let on_b = cluster.on(1, &alice);
    assert_eq!(
        on_b.say(room, "n-1", "before").await["sender_name"],
        "alice"
    );
    let (status, body) = alice
        .patch(
            "/api/v1/me",
            serde_json::json!({"display_name": "Alice Liddell"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let sent = on_b
            .say(room, &format!("n-{}", rand::random::<u32>()), "after")
            .await;
        if sent["sender_name"] == "Alice Liddell" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node B still names her {}",
            sent["sender_name"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cluster.stop().await;
}

#[tokio::test]
async fn a_node_without_redis_still_commits_and_delivers_through_the_store() {
    // Node B's Redis is away (nothing listens there): its sends still
    // commit, and each node reads the other's from the store.
    let Some(cluster) = Cluster::start_with(
        2,
        |i, redis| match i {
            0 => redis.to_owned(),
            _ => "redis://127.0.0.1:9".into(),
        },
        Duration::from_secs(1),
    )
    .await
    else {
        return;
    };
    let alice = cluster.nodes[0].user("alice").await;
    let bob = cluster.on(1, &cluster.nodes[0].user("bob").await);
    let room = alice.create_room("no redis on b", "public").await;
    bob.join(room).await;
    for (sender, reader, text) in [(&alice, &bob, "from-a"), (&bob, &alice, "from-b")] {
        let cursor = reader.cursor().await;
        let waiting = {
            let (reader, cursor) = (reader.clone(), cursor.clone());
            tokio::spawn(async move { reader.poll(&cursor, 10).await })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        let sent = Instant::now();
        sender.say(room, text, text).await;
        let (status, answer) = waiting.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(message_texts(&answer), [text]);
        assert!(
            sent.elapsed() < Duration::from_secs(3),
            "{text}: within a head check or two, {:?}",
            sent.elapsed()
        );
    }
    cluster.stop().await;
}

/// Two natter processes of one deployment (a schema of its own, for the
/// test to drop), for tests that kill one.
struct Processes {
    nodes: [Process; 2],
    postgres: String,
    schema: String,
    _folder: tempfile::TempDir,
}

impl Processes {
    async fn start() -> Option<Processes> {
        let (Some(postgres), Some(redis)) = (
            postgres_url("the cluster test").await,
            redis_url("the cluster test").await,
        ) else {
            return None;
        };
        let schema = fresh_schema();
        let (admin, conn) = tokio_postgres::connect(&postgres, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        admin
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .await
            .unwrap();
        let separator = if postgres.contains('?') { '&' } else { '?' };
        let store = format!("{postgres}{separator}options=-c%20search_path%3D{schema}");
        let env = [
            ("NATTER_STORE", store.as_str()),
            ("NATTER_BUS", redis.as_str()),
            ("NATTER_PRESENCE_GRACE_SECS", "1"),
        ];
        let folder = tempfile::tempdir().unwrap();
        let a = Process::start_with_env(&folder.path().join("a"), &env).await;
        let b = Process::start_with_env(&folder.path().join("b"), &env).await;
        Some(Processes {
            nodes: [a, b],
            postgres,
            schema,
            _folder: folder,
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_burst_leaves_its_clients_to_the_other_missing_nothing() {
    let Some(Processes {
        nodes: [a, b],
        postgres,
        schema,
        _folder,
    }) = Processes::start().await
    else {
        return;
    };

    let mut alice = Client::new(&a.base);
    alice.register_and_login("alice").await;
    let mut bob = Client::new(&a.base);
    bob.register_and_login("bob").await;
    let room = alice.create_room("killed", "public").await;
    bob.join(room).await;
    let cursor = bob.cursor().await;

    // Four senders on node A; A is killed while they send.
    let senders = send_until_refused(&alice, room);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    a.kill9();
    let mut acked = Vec::new();
    for s in senders {
        acked.extend(s.await.unwrap());
    }
    assert!(
        acked.len() > 20,
        "too few sends before the kill: {}",
        acked.len()
    );

    // Bob's next polls land on node B with the cursor node A gave him.
    bob.base = b.base.clone();
    let (seen, cursor) = read_to_the_end(&bob, cursor).await;
    for id in &acked {
        assert!(seen.contains(id), "acknowledged message {id} was lost");
    }
    let unique: std::collections::HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "nothing twice");
    // And the room goes on, on node B. Sends node A had handed to
    // PostgreSQL when it died may commit there after it, unacknowledged
    // and never published: node B finds them when the next seq shows
    // the gap (or its head check runs), so they may come now, once each.
    alice.base = b.base.clone();
    alice.say(room, "after", "after the kill").await;
    let (_, body) = bob.poll(&cursor, 5).await;
    let later = message_texts(&body);
    assert!(later.iter().any(|t| t == "after the kill"), "{later:?}");
    let unique_later: std::collections::HashSet<_> = later.iter().collect();
    assert_eq!(unique_later.len(), later.len(), "nothing twice: {later:?}");
    for text in later.iter().filter(|t| *t != "after the kill") {
        assert!(!seen.contains(text), "{text} delivered twice");
    }
    println!(
        "{} acknowledged before node A was killed, {} read on node B",
        acked.len(),
        seen.len()
    );
    drop(b);
    drop_schema(&postgres, &schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_users_of_a_node_killed_go_offline_on_the_others() {
    let Some(Processes {
        nodes: [a, b],
        postgres,
        schema,
        _folder,
    }) = Processes::start().await
    else {
        return;
    };
    let mut alice = Client::new(&a.base);
    alice.register_and_login("alice").await;
    let mut bob = Client::new(&a.base);
    bob.register_and_login("bob").await;
    let room = alice.create_room("a node dies", "public").await;
    bob.join(room).await;
    let mut cursor = alice.cursor().await;

    // Bob waits on node B: online for Alice on node A.
    bob.base = b.base.clone();
    let bob_cursor = bob.cursor().await;
    // Not `Client::poll`, which fails the test when the node goes away.
    let waiting = bob
        .http
        .get(format!(
            "{}/api/v1/events?cursor={bob_cursor}&timeout=30",
            bob.base
        ))
        .bearer_auth(bob.token.clone().unwrap())
        .send();
    let waiting = tokio::spawn(waiting);
    until_presence(
        &alice,
        &mut cursor,
        bob.user_id,
        true,
        Duration::from_secs(3),
    )
    .await;
    // Node B dies with his poll open: nobody there says he left.
    let killed = Instant::now();
    b.kill9();
    let _ = waiting.await;
    until_presence(
        &alice,
        &mut cursor,
        bob.user_id,
        false,
        Duration::from_secs(15),
    )
    .await;
    println!(
        "offline on node A {:?} after node B was killed",
        killed.elapsed()
    );
    drop(a);
    drop_schema(&postgres, &schema).await;
}

/// Polls `client` from `cursor` until an answer carries a presence item
/// for `user` saying `online`; fails after `within`.
pub(crate) async fn until_presence(
    client: &Client,
    cursor: &mut String,
    user: i64,
    online: bool,
    within: Duration,
) {
    let deadline = Instant::now() + within;
    loop {
        let (status, answer) = client.poll(cursor, 1).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        *cursor = answer["cursor"].as_str().unwrap().to_owned();
        if ephemeral_items(&answer, "presence")
            .iter()
            .any(|p| p["user_id"] == user && p["online"] == online)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no presence {online} for user {user} within {within:?}"
        );
    }
}
