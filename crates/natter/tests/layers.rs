//! The layers of docs/architecture.md, checked on the source: a module
//! that reaches across them fails this test, so the architecture stays as
//! the document draws it.
//!
//! - `http` never names the store or the bus: it speaks to `chat` (and
//!   reads the hub's poll answers).
//! - `chat` never names axum, hyper or `http`: the rules of the chat know
//!   nothing of HTTP.
//! - `store` depends only on the model (with the mention token every
//!   reader of a text shares, the event columns the stores share, and the
//!   progress a long command shows); `bus` only on the model and those
//!   columns; and those depend on the model alone. Both may use `panics`
//!   (how a loop outlives a fault in one item), which depends on nothing.
//! - Each database and broker crate is named only inside its own module:
//!   rusqlite in `store/sqlite/`, tokio-postgres and deadpool in
//!   `store/postgres/`, redis in `bus/redis.rs` and `bus/redis_rates.rs`
//!   (the bus and the shared rate limits); axum and hyper only in
//!   `http/` and `server/`.
//!
//! Comments and `#[cfg(test)]` modules are not read: a unit test may
//! build what it tests from anywhere.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
    found
}

/// The file's code lines with their numbers: no comments, nothing from
/// its `#[cfg(test)]` modules on (they come last in this code base).
fn code_lines(text: &str) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]") {
            break;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        let code = match line.find("//") {
            // A `//` inside a string ("http://…") is no comment.
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        };
        lines.push((n + 1, code.to_owned()));
    }
    lines
}

/// The crate's own modules a line names (`crate::store::…` → "store").
fn crate_modules(line: &str) -> Vec<String> {
    line.match_indices("crate::")
        .map(|(at, _)| {
            line[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

/// Whether `line` names the external crate `name` (`name::…` or `use
/// name`), not a module of this crate that shares its name.
fn names_crate(line: &str, name: &str) -> bool {
    line.match_indices(&format!("{name}::")).any(|(at, _)| {
        let before = line[..at].chars().next_back();
        !matches!(before, Some(c) if c.is_alphanumeric() || c == '_' || c == ':')
    }) || line.trim_start().starts_with(&format!("use {name}"))
}

#[test]
fn modules_keep_to_their_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut broken = Vec::new();
    let mut files = 0;
    for path in sources(&src) {
        files += 1;
        let rel = path
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let layer = rel.split('/').next().unwrap().trim_end_matches(".rs");
        let text = std::fs::read_to_string(&path).unwrap();
        for (n, line) in code_lines(&text) {
            let mut fault =
                |why: String| broken.push(format!("src/{rel}:{n}: {why}: {}", line.trim()));
            let named = crate_modules(&line);
            let allowed: Option<&[&str]> = match layer {
                "store" => Some(&[
                    "store", "model", "columns", "mentions", "progress", "panics",
                ]),
                "bus" => Some(&["bus", "model", "columns", "panics"]),
                "columns" | "model" | "mentions" | "progress" => Some(&["model"]),
                "panics" => Some(&[]),
                _ => None,
            };
            if let Some(allowed) = allowed {
                for module in named.iter().filter(|m| !allowed.contains(&m.as_str())) {
                    fault(format!("{layer} depends on crate::{module}"));
                }
            }
            if layer == "http" {
                for module in named
                    .iter()
                    .filter(|m| ["store", "bus"].contains(&m.as_str()))
                {
                    fault(format!("http names crate::{module}"));
                }
            }
            if layer == "chat" {
                if named.iter().any(|m| m == "http" || m == "server") {
                    fault("chat names the HTTP layer".into());
                }
                for web in ["axum", "hyper"] {
                    if names_crate(&line, web) {
                        fault(format!("chat names {web}"));
                    }
                }
            }
            let homes: [(&str, &[&str]); 7] = [
                ("rusqlite", &["store/sqlite/"]),
                ("tokio_postgres", &["store/postgres/"]),
                ("deadpool_postgres", &["store/postgres/"]),
                ("postgres_types", &["store/postgres/"]),
                ("redis", &["bus/redis.rs", "bus/redis_rates.rs"]),
                ("axum", &["http/", "server/"]),
                ("hyper", &["http/", "server/"]),
            ];
            for (krate, home) in homes {
                if names_crate(&line, krate) && !home.iter().any(|h| rel.starts_with(h)) {
                    fault(format!("{krate} outside {}", home.join(" and ")));
                }
            }
        }
    }
    assert!(files > 50, "read only {files} files: is src/ where it was?");
    assert!(
        broken.is_empty(),
        "imports across the layers of docs/architecture.md:\n{}",
        broken.join("\n")
    );
}

/// The checks see what they look for: a line of each kind they refuse.
#[test]
fn the_checks_catch_what_they_look_for() {
    assert_eq!(
        crate_modules("use crate::store::{Store, StoreError};"),
        ["store"]
    );
    assert!(names_crate(
        "    let c = redis::Client::open(url)?;",
        "redis"
    ));
    assert!(names_crate("use axum::Router;", "axum"));
    assert!(!names_crate("use crate::bus::redis::RedisBus;", "redis"));
    assert!(!names_crate("let x = my_redis::open();", "redis"));
    let lines = code_lines(
        "use a;\n// use crate::store;\nlet u = \"http://x\"; // c\n#[cfg(test)]\nuse crate::store;\n",
    );
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1].1, "let u = \"http://x\"; // c");
}
