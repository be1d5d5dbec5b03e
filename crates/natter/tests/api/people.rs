//! Finding people by name to start a direct conversation: within the
//! caller's community, never the deactivated, bounded, and refused
//! cleanly when the input is bad or the server turned it off.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Client, TestServer, assert_error};
use crate::sso::{claims, exchange, hs, site};

fn names(body: &Value) -> Vec<String> {
    body["users"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|u| u["display_name"].as_str().unwrap().to_owned())
        .collect()
}

async fn named(server: &TestServer, username: &str, display: &str) -> Client {
    let client = server.user(username).await;
    let (status, body) = client
        .patch("/api/v1/me", json!({"display_name": display}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    client
}

fn search_path(q: &str) -> String {
    let encoded: String = q
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("/api/v1/users?q={encoded}")
}

#[tokio::test]
async fn people_are_found_by_any_part_of_their_name() {
    let server = TestServer::start_with(|c| {
        c.chat.sites = vec![site("school", "https://school.test", "HS256")];
    })
    .await;
    let me = named(&server, "myself", "Me Myself").await;
    named(&server, "lilei", "李雷").await;
    named(&server, "hanmei", "韩梅梅").await;
    named(&server, "jim", "Jim Green").await;
    named(&server, "percent", "100% Sure").await;
    let gone = named(&server, "gone", "Jim Gone").await;
    let (status, _) = gone
        .post("/api/v1/me/deactivate", json!({"password": "password-1"}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // A site's user is another community: a local account does not find them.
    let (status, _) = exchange(&server.client(), json!({"token": hs(&claims("s1"))})).await;
    assert_eq!(status, StatusCode::CREATED);

    let (status, body) = me.get(&search_path("雷")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(names(&body), ["李雷"], "a Chinese given name alone finds");
    let (_, body) = me.get(&search_path("green")).await;
    assert_eq!(names(&body), ["Jim Green"], "ASCII case does not matter");
    let (_, body) = me.get(&search_path("jim")).await;
    assert_eq!(
        names(&body),
        ["Jim Green"],
        "deactivated accounts are not found"
    );
    let (_, body) = me.get(&search_path("hanmei")).await;
    assert_eq!(names(&body), ["韩梅梅"], "by the whole username too");
    let (_, body) = me.get(&search_path("hanm")).await;
    assert!(names(&body).is_empty(), "not by its start: {body}");
    let (_, body) = me.get(&search_path("Li Lei")).await;
    assert!(
        names(&body).is_empty(),
        "a site user named Li Lei is elsewhere: {body}"
    );
    let (_, body) = me.get(&search_path("me")).await;
    assert!(
        !names(&body).contains(&"Me Myself".to_owned()),
        "not the caller"
    );
    let (_, body) = me.get(&search_path("%")).await;
    assert_eq!(
        names(&body),
        ["100% Sure"],
        "wildcards are plain characters"
    );
    let (_, body) = me.get(&format!("{}&limit=1", search_path("e"))).await;
    assert_eq!(body["users"].as_array().unwrap().len(), 1);
    // A person found is a name and a face, not an account's login name.
    let found = body["users"][0].as_object().unwrap();
    let mut fields: Vec<&str> = found.keys().map(String::as_str).collect();
    fields.sort();
    assert_eq!(fields, ["avatar_url", "display_name", "id"]);
}

#[tokio::test]
async fn a_site_user_finds_their_own_site() {
    let server = TestServer::start_with(|c| {
        c.chat.sites = vec![site("school", "https://school.test", "HS256")];
    })
    .await;
    named(&server, "lilei", "Li Lei").await;
    let (_, first) = exchange(&server.client(), json!({"token": hs(&claims("s1"))})).await;
    let mut pupil = server.client();
    pupil.token = Some(first["token"].as_str().unwrap().to_owned());
    let (status, second) = exchange(&server.client(), json!({"token": hs(&claims("s2"))})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = pupil.get(&search_path("li")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The classmate (also "Li Lei", by the test's claims), not the local account.
    let users = body["users"].as_array().unwrap();
    assert_eq!(users.len(), 1, "{body}");
    assert_eq!(users[0]["id"], second["user"]["id"]);
}

#[tokio::test]
async fn bad_searches_are_refused() {
    let server = TestServer::start().await;
    let me = server.user("myself").await;
    assert_error(
        &me.get("/api/v1/users").await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    );
    for q in ["", "%20%20", "%0A", "%FF", &"x".repeat(65)] {
        assert_error(
            &me.get(&format!("/api/v1/users?q={q}")).await,
            StatusCode::BAD_REQUEST,
            "invalid_query",
        );
    }
    for limit in ["0", "51", "-1", "many"] {
        let reply = me.get(&format!("/api/v1/users?q=a&limit={limit}")).await;
        assert_eq!(reply.0, StatusCode::BAD_REQUEST, "{}", reply.1);
    }
    assert_error(
        &server.client().get("/api/v1/users?q=a").await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
}

#[tokio::test]
async fn a_server_can_turn_people_search_off() {
    let server = TestServer::start_with(|c| c.chat.people_search = false).await;
    let me = server.user("myself").await;
    assert_error(
        &me.get("/api/v1/users?q=a").await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
}
