//! Health, the OpenAPI document, and small protocol details.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::TestServer;

#[tokio::test]
async fn health_and_openapi() {
    let server = TestServer::start().await;
    let anon = server.client();
    let (status, body) = anon.get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");

    let (status, doc) = anon.get("/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/users", &["post"][..]),
        ("/users/{id}", &["get"]),
        ("/users/{id}/avatar.svg", &["get"]),
        ("/avatar.svg", &["get"]),
        ("/sessions", &["post"]),
        ("/sessions/current", &["delete"]),
        ("/me", &["get", "patch"]),
        ("/rooms", &["get", "post"]),
        ("/rooms/public", &["get"]),
        ("/rooms/{id}", &["get", "patch"]),
        ("/rooms/{id}/join", &["post"]),
        ("/rooms/{id}/leave", &["post"]),
        ("/rooms/{id}/members", &["get", "post"]),
        ("/rooms/{id}/messages", &["get", "post"]),
        ("/rooms/{id}/read", &["post"]),
        ("/direct", &["post"]),
        ("/events", &["get"]),
    ] {
        let full = format!("/api/v1{path}");
        let entry = paths
            .get(&full)
            .or_else(|| paths.get(path))
            .unwrap_or_else(|| panic!("{full} is not documented"));
        for m in methods {
            assert!(entry.get(*m).is_some(), "{m} {full} is not documented");
        }
    }
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let token = alice.token.clone().unwrap();
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let reply = alice
            .send_raw(
                reqwest::Client::new()
                    .get(format!("{}/api/v1/me", server.base))
                    .header("Authorization", format!("{scheme} {token}")),
            )
            .await;
        assert_eq!(reply.0, StatusCode::OK, "{scheme}");
    }
}

#[tokio::test]
async fn rejoining_starts_unread_counts_at_the_join_and_no_op_edits_announce_nothing() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let room = alice.create_room("r", "public").await;
    bob.join(room).await;
    bob.post(&format!("/api/v1/rooms/{room}/leave"), json!({}))
        .await;
    alice.say(room, "while-away", "bob is away").await;
    bob.join(room).await;
    let (_, list) = bob.get("/api/v1/rooms").await;
    assert_eq!(list["rooms"][0]["unread_count"], 0);

    let (_, before) = alice.get(&format!("/api/v1/rooms/{room}")).await;
    let (status, _) = alice
        .patch(&format!("/api/v1/rooms/{room}"), json!({"title": "r"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, after) = alice.get(&format!("/api/v1/rooms/{room}")).await;
    assert_eq!(before["room"]["head_seq"], after["room"]["head_seq"]);
}

#[tokio::test]
async fn every_answer_carries_the_safety_headers_and_a_request_id() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let mut ids = std::collections::HashSet::new();
    for (method, path) in [
        ("GET", "/healthz"),
        ("GET", "/"),
        ("GET", "/api/v1/openapi.json"),
        ("GET", "/api/v1/me"),
        ("GET", "/api/v1/nope"),
        ("GET", "/api/v1/users/1/avatar.svg"),
        ("GET", "/api/v1/avatar.svg?initial=A&hue=7"),
        ("POST", "/api/v1/users"),
    ] {
        let request = http.request(method.parse().unwrap(), format!("{}{path}", server.base));
        let response = request.send().await.unwrap();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        assert_eq!(
            header("x-content-type-options").as_deref(),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(
            header("referrer-policy").as_deref(),
            Some("no-referrer"),
            "{path}"
        );
        let id = header("x-request-id").unwrap_or_default();
        assert!(id.len() >= 10, "{path}: request id {id:?}");
        assert!(ids.insert(id), "{path}: request ids are unique");
        let content_type = header("content-type").unwrap_or_default();
        if content_type.starts_with("application/json") {
            assert_eq!(content_type, "application/json; charset=utf-8", "{path}");
        }
    }
}

#[tokio::test]
async fn a_failed_bind_names_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let data = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_natter"))
        .args(["--listen", &addr, "--log", "debug", "--data-dir"])
        .arg(data.path().join("data"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "no colour codes in a pipe: {stderr}"
    );
}

/// docs/operations.md documents every setting `natter --help` lists, by
/// its flag, its environment variable and its natter.toml key, and every
/// key of a `[[sites]]` entry.
#[test]
fn every_setting_is_documented_with_flag_variable_and_file_key() {
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_natter"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let docs_path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/operations.md");
    let docs = std::fs::read_to_string(&docs_path).unwrap();
    let mut checked = 0;
    for line in help.lines().map(str::trim).filter(|l| l.starts_with("--")) {
        let flag = line.split([' ', '[', '<']).next().unwrap();
        if ["--help", "--version"].contains(&flag) {
            continue;
        }
        let Some(env) = help
            .split(&format!("{flag} "))
            .nth(1)
            .and_then(|rest| rest.split("[env: ").nth(1))
            .and_then(|rest| rest.split('=').next())
        else {
            panic!("{flag} has no environment variable");
        };
        let key = flag.trim_start_matches("--").replace('-', "_");
        assert!(
            docs.contains(&format!("`{flag}`")),
            "docs/operations.md lacks `{flag}`"
        );
        assert!(
            docs.contains(&format!("`{env}`")),
            "docs/operations.md lacks `{env}`"
        );
        if flag != "--config" {
            assert!(
                docs.contains(&format!("`{key}`")),
                "docs/operations.md lacks the key `{key}`"
            );
        }
        checked += 1;
    }
    assert!(checked >= 30, "only {checked} settings found in --help");
    for key in [
        "id",
        "issuer",
        "audience",
        "algorithm",
        "secret",
        "public_key",
        "origins",
        "max_token_lifetime_secs",
        "clock_skew_secs",
        "require_jti",
        "session_ttl_secs",
    ] {
        assert!(
            docs.contains(&format!("`{key}`")),
            "docs/operations.md lacks the site key `{key}`"
        );
    }
}
