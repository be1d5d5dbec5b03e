//! The web client and embedding in real Chromium: web/tests/browser/
//! (Node's test runner driving Debian's Chromium through playwright-core,
//! and PHP's built-in server for the PHP example) against this build of
//! the natter binary. Screenshots land in test-artifacts/screenshots/.

use std::path::Path;
use std::process::Command;

#[test]
fn the_web_client_works_in_chromium() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let missing: Vec<&str> = [
        (
            Command::new("node").arg("--version").output().is_err(),
            "node",
        ),
        (!Path::new(&chromium).exists(), "chromium"),
        (
            Command::new("php").arg("--version").output().is_err(),
            "php (the PHP example's test)",
        ),
        (
            !root.join("web/node_modules/playwright-core").exists()
                || !root.join("web/node_modules/axe-core").exists(),
            "web/node_modules (run `npm ci` in web/)",
        ),
    ]
    .into_iter()
    .filter_map(|(absent, what)| absent.then_some(what))
    .collect();
    if !missing.is_empty() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "browser tests need {missing:?} under CI=true"
        );
        println!("SKIPPED the_web_client_works_in_chromium: missing {missing:?}");
        return;
    }
    let output = Command::new("node")
        .args(["--test", "--test-concurrency=1", "web/tests/browser/"])
        .current_dir(&root)
        .env("NATTER_BIN", env!("CARGO_BIN_EXE_natter"))
        .env("CHROMIUM", &chromium)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "browser tests failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("# fail 0"), "{stdout}");
    assert!(
        !stdout.contains("# pass 0"),
        "no browser test ran:\n{stdout}"
    );
    println!(
        "{}",
        stdout
            .lines()
            .filter(|l| l.starts_with("# "))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
