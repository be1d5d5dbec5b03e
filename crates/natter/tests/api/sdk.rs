//! The JS SDK: served by the binary, and its own tests (web/tests/, run
//! with Node's test runner) pass against a real server.

use std::path::Path;
use std::process::Command;

use reqwest::StatusCode;

use crate::common::TestServer;

#[tokio::test]
async fn the_sdk_is_served_with_revalidation_headers() {
    let server = TestServer::start().await;
    let url = format!("{}/sdk/natter.js", server.base);
    let first = reqwest::get(&url).await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(
        first.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(first.headers()["x-content-type-options"], "nosniff");
    assert_eq!(first.headers()["cache-control"], "no-cache");
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let body = first.text().await.unwrap();
    assert!(body.contains("export class Natter"));

    let again = reqwest::Client::new()
        .get(&url)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert!(again.text().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_tests_pass_against_a_real_server() {
    if !node_found("the_sdk_tests_pass_against_a_real_server") {
        return;
    }
    let server = TestServer::start().await;
    let base = server.base.clone();
    tokio::task::spawn_blocking(move || {
        node_test("web/tests/sdk.test.mjs", &[("NATTER_URL", &base)]);
    })
    .await
    .unwrap();
}

/// Whether `node` runs here; without it a test says it skipped, which
/// under `CI=true` is a failure.
fn node_found(test: &str) -> bool {
    if Command::new("node").arg("--version").output().is_ok() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "node is required under CI=true"
    );
    println!("SKIPPED {test}: node is not installed");
    false
}

/// Runs one file of Node tests from the repository's root; every test in
/// it must pass, and at least one must run.
fn node_test(file: &str, env: &[(&str, &str)]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = Command::new("node")
        .args(["--test", file])
        .current_dir(root)
        .envs(env.iter().copied())
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "node --test {file} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("# fail 0"), "{stdout}");
    assert!(
        !stdout.contains("# pass 0"),
        "no test of {file} ran:\n{stdout}"
    );
}

#[tokio::test]
async fn the_app_page_is_locked_down_and_api_answers_are_never_cached() {
    let server = TestServer::start().await;
    let page = reqwest::get(format!("{}/", server.base)).await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    for rule in [
        "script-src 'self'",
        "object-src 'none'",
        "frame-ancestors 'none'",
    ] {
        assert!(policy.contains(rule), "{policy}");
    }
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"<script type="module" src="/app/app.js">"#));
    assert!(!html.contains("<script>"), "no inline script");
    for path in [
        "/app/app.js",
        "/app/app.css",
        "/app/worker.js",
        "/app/i18n.js",
    ] {
        let asset = reqwest::get(format!("{}{path}", server.base))
            .await
            .unwrap();
        assert_eq!(asset.status(), StatusCode::OK, "{path}");
        assert!(asset.headers().contains_key("etag"), "{path}");
    }
    let health = reqwest::get(format!("{}/api/v1/openapi.json", server.base))
        .await
        .unwrap();
    assert_eq!(health.headers()["cache-control"], "no-store");
    let error = reqwest::get(format!("{}/api/v1/me", server.base))
        .await
        .unwrap();
    assert_eq!(error.headers()["cache-control"], "no-store");
}

/// The web client's state module (web/app/state.js: how events change
/// what the app shows) passes its own tests under Node, among them the
/// randomized comparison with a reference fold of the log.
#[test]
fn the_web_clients_state_module_passes_its_tests_under_node() {
    if node_found("the_web_clients_state_module_passes_its_tests_under_node") {
        node_test("web/tests/state.test.mjs", &[]);
    }
}

/// The web client's rules with no DOM (web/app/attention.js: mention
/// tokens both ways, the typing throttle, which messages notify, where
/// "Seen" goes) pass their tests under Node.
#[test]
fn the_web_clients_attention_rules_pass_their_tests_under_node() {
    if node_found("the_web_clients_attention_rules_pass_their_tests_under_node") {
        node_test("web/tests/attention.test.mjs", &[]);
    }
}

/// The member pane's loaded pages (web/app/member-pages.js: the server's
/// order and search, joins and leaves applied in place) pass their tests
/// under Node.
#[test]
fn the_web_clients_member_pages_pass_their_tests_under_node() {
    if node_found("the_web_clients_member_pages_pass_their_tests_under_node") {
        node_test("web/tests/member-pages.test.mjs", &[]);
    }
}
