//! Member lists by pages: a room of thousands is read a page at a time,
//! by name, and searched; its online count is kept as presence and
//! membership change, never counted from the whole list.

use std::collections::HashSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{Client, TestServer, assert_error};

async fn page(client: &Client, room: i64, query: &str) -> Value {
    let (status, body) = client
        .get(&format!("/api/v1/rooms/{room}/members?{query}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// A `next` token as the server writes one (docs/api.md: opaque to
/// clients; the tests build hostile ones).
fn b64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

fn names(body: &Value) -> Vec<String> {
    body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["display_name"].as_str().unwrap().to_owned())
        .collect()
}

/// A room of `owner` and the members named, who join in that order.
async fn room_of(server: &TestServer, names: &[&str]) -> (Client, Vec<Client>, i64) {
    let owner = server.user("m_owner").await;
    let room = owner.create_room("assembly hall", "public").await;
    let mut members = Vec::new();
    for name in names {
        let member = server.user(name).await;
        member.join(room).await;
        members.push(member);
    }
    (owner, members, room)
}

#[tokio::test]
async fn the_member_list_pages_by_name_and_searches() {
    let server = TestServer::start().await;
    let (owner, _members, room) =
        room_of(&server, &["m_eve", "m_bob", "m_dan", "m_al", "m_cy"]).await;
    let everyone = ["m_al", "m_bob", "m_cy", "m_dan", "m_eve", "m_owner"];

    let whole = page(&owner, room, "").await;
    assert_eq!(names(&whole), everyone, "one page when it fits, by name");
    assert_eq!(whole["member_count"], 6);
    assert_eq!(whole["next"], Value::Null);
    // The count is as of the room's seq: its creation and five joins.
    let counted_to = whole["member_count_seq"].as_i64().unwrap();
    assert!(counted_to >= 6, "{whole}");

    // Pages of two, each starting where the last ended.
    let mut seen = Vec::new();
    let mut query = "limit=2".to_owned();
    loop {
        let body = page(&owner, room, &query).await;
        assert!(body["members"].as_array().unwrap().len() <= 2);
        assert_eq!(body["member_count"], 6, "every page has the room's counts");
        seen.extend(names(&body));
        match body["next"].as_str() {
            Some(next) => query = format!("limit=2&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen, everyone, "every member once, in order");
    assert_eq!(
        names(&page(&owner, room, "limit=6").await).len(),
        6,
        "a page that holds them all exactly"
    );
    assert_eq!(page(&owner, room, "limit=6").await["next"], Value::Null);

    // Search: part of a name, ASCII case ignored; blank is everyone.
    assert_eq!(names(&page(&owner, room, "q=B").await), ["m_bob"]);
    assert_eq!(names(&page(&owner, room, "q=%20_D%20").await), ["m_dan"]);
    let found = page(&owner, room, "q=m_&limit=4").await;
    assert_eq!(names(&found), &everyone[..4]);
    let rest = page(
        &owner,
        room,
        &format!("q=m_&limit=4&after={}", found["next"].as_str().unwrap()),
    )
    .await;
    assert_eq!(names(&rest), &everyone[4..]);
    assert_eq!(names(&page(&owner, room, "q=%20%20").await), everyone);
    assert!(names(&page(&owner, room, "q=nobody").await).is_empty());
    assert!(
        names(&page(&owner, room, "q=%25").await).is_empty(),
        "% matches only itself"
    );

    // A join moves the count and its seq on together.
    server.user("m_fay").await.join(room).await;
    let after_join = page(&owner, room, "limit=2").await;
    assert_eq!(after_join["member_count"], 7);
    assert!(after_join["member_count_seq"].as_i64().unwrap() > counted_to);
}

#[tokio::test]
async fn bad_member_list_requests_are_refused() {
    let server = TestServer::start().await;
    let (owner, _members, room) = room_of(&server, &["m_ann"]).await;
    let path = |query: &str| format!("/api/v1/rooms/{room}/members?{query}");
    let long = "x".repeat(65);
    for (query, code) in [
        ("limit=0", "invalid_limit"),
        ("limit=501", "invalid_limit"),
        ("limit=-1", "invalid_query"),
        ("limit=ten", "invalid_query"),
        ("limit=2&limit=3", "invalid_query"),
        ("after=0", "invalid_after"),
        ("after=-4", "invalid_after"),
        ("after=abc", "invalid_after"),
        ("after=", "invalid_after"),
        ("after=007", "invalid_after"),
        ("after=%2B7", "invalid_after"),
        // Tokens: base64url of "<id>:<name>" with a bad id, no colon, a
        // name past 64 characters, not base64, or far too long.
        (&format!("after={}", b64("0:Al")), "invalid_after"),
        (&format!("after={}", b64("-3:Al")), "invalid_after"),
        (&format!("after={}", b64("7")), "invalid_after"),
        (
            &format!("after={}", b64(&format!("7:{long}"))),
            "invalid_after",
        ),
        // A name with a NUL (which PostgreSQL's text cannot hold) or a
        // line break: no display name has one.
        (&format!("after={}", b64("7:a\u{0}b")), "invalid_after"),
        (&format!("after={}", b64("7:a\nb")), "invalid_after"),
        ("after=%F0%9F%98%80", "invalid_after"),
        (&format!("after={}", "A".repeat(401)), "invalid_after"),
        ("q=a%01b", "invalid_query"),
        ("q=%FF", "invalid_query"),
        (&format!("q={long}"), "invalid_query"),
    ] {
        assert_error(
            &owner.get(&path(query)).await,
            StatusCode::BAD_REQUEST,
            code,
        );
    }
    // After someone of no room, or the last: an empty page, not an error.
    assert!(names(&page(&owner, room, "after=999999").await).is_empty());
    // A token of any place is only a place: members after it, nobody else.
    assert_eq!(
        names(&page(&owner, room, &format!("after={}", b64("999999:m_b"))).await),
        ["m_owner"]
    );

    let stranger = server.user("m_stranger").await;
    assert_error(
        &stranger.get(&path("limit=1")).await,
        StatusCode::FORBIDDEN,
        "not_a_member",
    );
    assert_error(
        &server.client().get(&path("")).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    assert_error(
        &owner.get("/api/v1/rooms/99999/members").await,
        StatusCode::NOT_FOUND,
        "room_not_found",
    );
}

/// The room's online count, as the member list and the room list say.
async fn online_counts(client: &Client, room: i64) -> (i64, i64) {
    let members = page(client, room, "limit=1").await["online_count"]
        .as_i64()
        .unwrap();
    let (_, rooms) = client.get("/api/v1/rooms").await;
    let listed = rooms["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == room)
        .unwrap()["online_count"]
        .as_i64()
        .unwrap();
    (members, listed)
}

#[tokio::test]
async fn the_online_count_follows_presence_and_membership() {
    let server = TestServer::start_with(|c| c.hub.presence_grace = Duration::from_secs(1)).await;
    let (owner, members, room) = room_of(&server, &["m_ann", "m_ben"]).await;
    let ann = &members[0];
    assert_eq!(
        online_counts(&owner, room).await,
        (0, 0),
        "nobody polls yet"
    );

    // Polls held open keep their users online.
    let ann_poll = ann.parked_poll(&ann.cursor().await, 20).await;
    assert_eq!(online_counts(&owner, room).await, (1, 1));

    // Someone online joining and leaving moves the count at once.
    let cy = server.user("m_cy").await;
    let cy_poll = cy.parked_poll(&cy.cursor().await, 20).await;
    assert_eq!(
        online_counts(&owner, room).await,
        (1, 1),
        "not a member yet"
    );
    cy.join(room).await;
    assert_eq!(online_counts(&owner, room).await, (2, 2));
    let online: HashSet<i64> = page(&owner, room, "").await["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["online"] == true)
        .map(|m| m["id"].as_i64().unwrap())
        .collect();
    assert_eq!(online, HashSet::from([ann.user_id, cy.user_id]));
    let (status, _) = cy
        .post(
            &format!("/api/v1/rooms/{room}/leave"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(online_counts(&owner, room).await, (1, 1));

    // Offline once the poll is gone and the grace is over.
    ann_poll.abort();
    cy_poll.abort();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while online_counts(&owner, room).await != (0, 0) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "ann never went offline"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn someone_who_joins_while_online_is_announced_online() {
    let server = TestServer::start_with(|c| c.hub.presence_grace = Duration::from_secs(60)).await;
    let (_owner, members, room) = room_of(&server, &["m_ann"]).await;
    let ann = &members[0];
    let mut cursor = ann.cursor().await;
    let cy = server.user("m_cy").await;
    cy.cursor().await;
    cy.join(room).await;
    // The join, then (presence is gathered for 250 ms) Cy online.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (status, answer) = ann.poll(&cursor, 2).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let announced = crate::common::ephemeral_items(&answer, "presence")
            .iter()
            .any(|p| p["user_id"] == cy.user_id && p["online"] == true);
        if announced {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Cy was never announced online"
        );
        cursor = answer["cursor"].as_str().unwrap().to_owned();
    }
}

#[tokio::test]
async fn a_rename_between_pages_moves_nobody_out_of_the_pages() {
    let server = TestServer::start().await;
    let (owner, members, room) = room_of(&server, &["m_al", "m_bo", "m_cy", "m_di"]).await;
    let first = page(&owner, room, "limit=2").await;
    assert_eq!(names(&first), ["m_al", "m_bo"]);
    // The page's last member renames: before, the next page followed the
    // new name and skipped m_cy and m_di.
    let renamed = members[1]
        .patch("/api/v1/me", serde_json::json!({"display_name": "zz_bo"}))
        .await;
    assert_eq!(renamed.0, StatusCode::OK, "{}", renamed.1);
    let next = first["next"].as_str().unwrap();
    let second = page(&owner, room, &format!("limit=2&after={next}")).await;
    assert_eq!(names(&second), ["m_cy", "m_di"]);
    let next = second["next"].as_str().unwrap();
    let third = page(&owner, room, &format!("limit=2&after={next}")).await;
    assert_eq!(names(&third), ["m_owner", "zz_bo"]);
    assert_eq!(third["next"], Value::Null);
}
