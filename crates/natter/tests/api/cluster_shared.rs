//! What the nodes of a cluster share besides room events, with two nodes
//! on one PostgreSQL and one Redis: presence, typing and "Seen" across
//! nodes, a poll that moves between nodes continuing its ephemeral
//! stream, and the per-user poll cap and rate limits counted over every
//! node. Uses `NATTER_TEST_POSTGRES` and `NATTER_TEST_REDIS`; without
//! them it says that it skipped, except under `CI=true`, where it fails.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::cluster::until_presence;
use crate::cluster_nodes::Cluster;
use crate::common::{Client, ephemeral_items};

#[tokio::test]
async fn presence_follows_a_poll_on_any_node() {
    // Eviction rounds of 1 s keep the feed gauges current.
    let Some(cluster) = Cluster::start_tuned(2, |_, _, config| {
        config.metrics_token = Some(FEEDS_TOKEN.into());
        config.hub.evict_idle_after = Some(Duration::from_secs(10));
    })
    .await
    else {
        return;
    };
    let alice = cluster.nodes[0].user("alice").await;
    let bob = cluster.nodes[1].user("bob").await;
    let room = alice.create_room("presence", "public").await;
    bob.join(room).await;
    let mut cursor = alice.cursor().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // Bob's poll on node B makes him online for Alice on node A.
    let came = Instant::now();
    let bob_polls = {
        let bob = bob.clone();
        tokio::spawn(async move {
            let cursor = bob.cursor().await;
            bob.poll(&cursor, 3).await
        })
    };
    until_presence(
        &alice,
        &mut cursor,
        bob.user_id,
        true,
        Duration::from_secs(3),
    )
    .await;
    assert!(
        came.elapsed() < Duration::from_secs(2),
        "{:?}",
        came.elapsed()
    );
    let (_, rooms) = alice.get("/api/v1/rooms").await;
    assert_eq!(rooms["rooms"][0]["online_count"], 2, "{rooms}");
    // Node A told of it from the room it holds, without loading Bob's
    // feed (a store read per user of the cluster, before).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(user_feeds(&cluster.nodes[0]).await, 1.0, "only Alice's");

    // His poll ends and its grace (1 s here) passes: offline on node A too.
    bob_polls.await.unwrap();
    until_presence(
        &alice,
        &mut cursor,
        bob.user_id,
        false,
        Duration::from_secs(6),
    )
    .await;
    let (_, rooms) = alice.get("/api/v1/rooms").await;
    assert_eq!(rooms["rooms"][0]["online_count"], 1, "{rooms}");
    cluster.stop().await;
}

#[tokio::test]
async fn typing_and_seen_reach_people_on_the_other_node() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    let alice = cluster.nodes[0].user("alice").await;
    let bob = cluster.on(1, &cluster.nodes[0].user("bob").await);
    let (status, direct) = alice
        .post(
            "/api/v1/direct",
            serde_json::json!({"user_id": bob.user_id}),
        )
        .await;
    assert!(status.is_success(), "{direct}");
    let room = direct["room"]["id"].as_i64().unwrap();
    let sent = alice.say(room, "s-1", "are you there?").await;

    // Alice waits on node A; Bob types and reads on node B.
    let mut cursor = alice.cursor().await;
    let (status, body) = bob
        .post(
            &format!("/api/v1/rooms/{room}/typing"),
            serde_json::json!({"typing": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = bob
        .post(
            &format!("/api/v1/rooms/{room}/read"),
            serde_json::json!({"seq": sent["seq"]}),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let deadline = Instant::now() + Duration::from_secs(3);
    let (mut typing, mut seen) = (false, false);
    while !(typing && seen) {
        assert!(
            Instant::now() < deadline,
            "typing {typing}, seen {seen} on node A"
        );
        let (status, answer) = alice.poll(&cursor, 1).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        cursor = answer["cursor"].as_str().unwrap().to_owned();
        typing |= ephemeral_items(&answer, "typing")
            .iter()
            .any(|t| t["user_id"] == bob.user_id && t["typing"] == true);
        seen |= ephemeral_items(&answer, "read_receipt")
            .iter()
            .any(|r| r["user_id"] == bob.user_id && r["seq"] == sent["seq"]);
    }
    cluster.stop().await;
}

#[tokio::test]
async fn a_room_loaded_after_someone_came_online_elsewhere_follows_them_offline() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    // Bob does everything on node B; Alice's room is not held on node A
    // until she looks at it, after Bob came online.
    let bob = cluster.nodes[1].user("bob").await;
    let alice = cluster.nodes[0].user("alice").await;
    let room = bob.create_room("loaded late", "public").await;
    cluster.on(1, &alice).join(room).await;
    let bob_polls = {
        let bob = bob.clone();
        tokio::spawn(async move {
            let cursor = bob.cursor().await;
            bob.poll(&cursor, 3).await
        })
    };
    tokio::time::sleep(Duration::from_millis(800)).await;
    let online_count = |alice: Client| async move {
        let (_, rooms) = alice.get("/api/v1/rooms").await;
        rooms["rooms"][0]["online_count"].clone()
    };
    assert_eq!(online_count(alice.clone()).await, 1, "Alice is not polling");
    let (_, members) = alice.get(&format!("/api/v1/rooms/{room}/members")).await;
    let bob_there = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == bob.user_id)
        .unwrap()
        .clone();
    assert_eq!(bob_there["online"], true, "{members}");
    // His poll ends on B and its grace passes: node A's count follows.
    bob_polls.await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(6);
    loop {
        let (_, members) = alice.get(&format!("/api/v1/rooms/{room}/members")).await;
        if members["online_count"] == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node A still counts Bob: {members}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    cluster.stop().await;
}

/// A client behind a round-robin balancer: each poll lands on the other
/// node than the last. Typing, read markers from its other session and
/// presence reach it one after another, each within a few polls, and no
/// poll says `ephemeral_gap`: the stream continues from node to node
/// (docs/protocol.md, "Several nodes").
#[tokio::test]
async fn a_poll_that_moves_between_nodes_continues_its_ephemeral_stream() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    let alice = cluster.nodes[0].user("alice").await;
    let bob = cluster.on(1, &cluster.nodes[0].user("bob").await);
    let carol = cluster.on(1, &cluster.nodes[0].user("carol").await);
    let room = alice.create_room("moving", "public").await;
    bob.join(room).await;
    carol.join(room).await;
    let sent = alice.say(room, "m-1", "hello").await;
    let mut alice_too = cluster.nodes[0].client();
    alice_too.login("alice").await;
    // Both nodes have heard Alice's stream since before her cursor's
    // time: the first poll on a node that meets her later cannot know
    // what she missed, and says so.
    let (status, answer) = cluster.on(1, &alice).poll(&alice.cursor().await, 1).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["ephemeral_gap"], true, "{answer}");
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let mut cursor = alice.cursor().await;
    let mut polls = 0;
    let mut next_node = 1;
    // Polls, each on the other node, until `wanted` is in an answer.
    let mut until = async |what: &str, wanted: &dyn Fn(&serde_json::Value) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(8);
        loop {
            assert!(Instant::now() < deadline, "no {what} within 8 s");
            let (status, answer) = cluster.on(next_node, &alice).poll(&cursor, 3).await;
            assert_eq!(status, StatusCode::OK, "{answer}");
            assert_eq!(
                answer["ephemeral_gap"], false,
                "a moved poll said ephemeral_gap, waiting for {what}: {answer}"
            );
            next_node = 1 - next_node;
            polls += 1;
            cursor = answer["cursor"].as_str().unwrap().to_owned();
            if answer["ephemeral"].as_array().unwrap().iter().any(wanted) {
                return;
            }
        }
    };

    let typing = |on: bool| serde_json::json!({"typing": on});
    let (status, body) = bob
        .post(&format!("/api/v1/rooms/{room}/typing"), typing(true))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    until("Bob typing", &|e| {
        e["type"] == "typing" && e["user_id"] == bob.user_id && e["typing"] == true
    })
    .await;

    let (status, body) = alice_too
        .post(
            &format!("/api/v1/rooms/{room}/read"),
            serde_json::json!({"seq": sent["seq"]}),
        )
        .await;
    assert!(status.is_success(), "{body}");
    until("the read marker of her other session", &|e| {
        e["type"] == "read" && e["room_id"] == room && e["seq"] == sent["seq"]
    })
    .await;

    let carol_polls = {
        let carol = carol.clone();
        tokio::spawn(async move {
            let cursor = carol.cursor().await;
            carol.poll(&cursor, 3).await
        })
    };
    until("Carol online", &|e| {
        e["type"] == "presence" && e["user_id"] == carol.user_id && e["online"] == true
    })
    .await;

    let (status, body) = bob
        .post(&format!("/api/v1/rooms/{room}/typing"), typing(false))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    until("Bob stopping", &|e| {
        e["type"] == "typing" && e["user_id"] == bob.user_id && e["typing"] == false
    })
    .await;
    // An item the last node answered may come once more from the next
    // one, after a moment, never in a burst of quick answers.
    eprintln!("{polls} polls for four items");
    assert!(polls <= 16, "{polls} polls for four items");
    carol_polls.await.unwrap();
    cluster.stop().await;
}

/// The poll cap counts a user's polls on every node: with a cap of 2, one
/// poll open on each node leaves no room for a third on either, once the
/// heartbeats (every 2 s) have told of polls open that long; when they
/// end, there is room again.
#[tokio::test]
async fn the_poll_cap_counts_the_polls_open_on_every_node() {
    let Some(cluster) = Cluster::start_tuned(2, |_, _, config| {
        config.hub.max_polls_per_user = 2;
    })
    .await
    else {
        return;
    };
    let alice = cluster.nodes[0].user("alice").await;
    let cursor = alice.cursor().await;
    let on_a = alice.parked_poll(&cursor, 8).await;
    // Node B's own cursor: A's would answer at once there, with a gap.
    let alice_on_b = cluster.on(1, &alice);
    let on_b = alice_on_b.parked_poll(&alice_on_b.cursor().await, 8).await;
    // Open 2 s, then told by the next heartbeat.
    tokio::time::sleep(Duration::from_millis(4600)).await;
    for node in 0..2 {
        let (status, body) = cluster.on(node, &alice).poll(&cursor, 1).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "node {node}: {body}");
        assert_eq!(body["error"]["code"], "too_many_polls", "{body}");
    }
    for parked in [on_a, on_b] {
        assert_eq!(parked.await.unwrap().0, StatusCode::OK);
    }
    // Room again once the heartbeats say so.
    let deadline = Instant::now() + Duration::from_secs(4);
    loop {
        let (status, body) = cluster.on(1, &alice).poll(&cursor, 0).await;
        if status == StatusCode::OK {
            break;
        }
        assert_eq!(body["error"]["code"], "too_many_polls", "{body}");
        assert!(Instant::now() < deadline, "no room again within 6 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    cluster.stop().await;
}

/// Rate limits count a user's calls on every node: with 3 sends a minute,
/// sends alternating between the nodes are refused at the fourth, however
/// they fall. A node whose Redis is away counts on its own, at once.
#[tokio::test]
async fn rate_limits_count_the_calls_on_every_node() {
    let Some(cluster) = Cluster::start_tuned(3, |i, _, config| {
        config.chat.limits.sends_per_user = Some("3/m".parse().unwrap());
        if i == 2 {
            config.bus = Some(natter::chat::Secret("redis://127.0.0.1:9".into()));
        }
    })
    .await
    else {
        return;
    };
    let alice = cluster.nodes[0].user("alice").await;
    let room = alice.create_room("limits", "public").await;
    let send = |node: usize, n: usize| {
        let alice = cluster.on(node, &alice);
        async move {
            alice
                .post(
                    &format!("/api/v1/rooms/{room}/messages"),
                    serde_json::json!({"client_msg_id": format!("m{n}"), "text": "hi"}),
                )
                .await
        }
    };
    for n in 0..3 {
        let (status, body) = send(n % 2, n).await;
        assert_eq!(status, StatusCode::CREATED, "send {n}: {body}");
    }
    // Node B has counted only one of the three itself.
    let (status, body) = send(1, 3).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");

    // Node C cannot reach Redis: it counts on its own, without waiting.
    let started = Instant::now();
    for n in 10..13 {
        let (status, body) = send(2, n).await;
        assert_eq!(status, StatusCode::CREATED, "send {n} on node C: {body}");
    }
    let (status, body) = send(2, 13).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "node C took {:?} for four sends",
        started.elapsed()
    );
    cluster.stop().await;
}

/// A typer whose "stopped" lands on another node than their "typing"
/// (a balancer with no sticky sessions) is shown stopping at once, not
/// when the notice expires 6 s later; and a renewal there within 2 s is
/// not announced again.
#[tokio::test]
async fn typing_stopped_on_another_node_than_it_started_is_announced() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    let alice = cluster.nodes[0].user("alice").await;
    let bob = cluster.nodes[0].user("bob").await;
    let room = alice.create_room("typing", "public").await;
    bob.join(room).await;
    let mut cursor = alice.cursor().await;
    // Both nodes hold the room.
    let (status, _) = cluster
        .on(1, &bob)
        .get(&format!("/api/v1/rooms/{room}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let typing = |node: usize, on: bool| {
        let bob = cluster.on(node, &bob);
        async move {
            let (status, body) = bob
                .post(
                    &format!("/api/v1/rooms/{room}/typing"),
                    serde_json::json!({"typing": on}),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    };
    let until_typing = async |cursor: &mut String, on: bool| {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            assert!(Instant::now() < deadline, "no typing {on} within 2 s");
            let (status, answer) = alice.poll(cursor, 2).await;
            assert_eq!(status, StatusCode::OK, "{answer}");
            *cursor = answer["cursor"].as_str().unwrap().to_owned();
            if ephemeral_items(&answer, "typing")
                .iter()
                .any(|t| t["typing"] == on)
            {
                return;
            }
        }
    };
    typing(0, true).await;
    until_typing(&mut cursor, true).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A renewal on node B is within the 2 s: not announced again.
    typing(1, true).await;
    let (_, answer) = alice.poll(&cursor, 1).await;
    assert!(ephemeral_items(&answer, "typing").is_empty(), "{answer}");
    cursor = answer["cursor"].as_str().unwrap().to_owned();
    typing(1, false).await;
    until_typing(&mut cursor, false).await;
    cluster.stop().await;
}

/// This node's `natter_user_feeds` gauge, as of its last eviction round.
async fn user_feeds(node: &crate::common::TestServer) -> f64 {
    let text = reqwest::Client::new()
        .get(format!("{}/metrics", node.base))
        .bearer_auth(FEEDS_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("natter_user_feeds "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no natter_user_feeds in:\n{text}"))
}

const FEEDS_TOKEN: &str = "metrics-token-for-the-cluster-tests-0123456789";
