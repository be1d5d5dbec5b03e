//! The data folder cannot be silently wrong: a file that is not natter's
//! (empty, foreign, another program's, damaged), a folder natter cannot
//! write, and a second natter on the same folder all stop the start with
//! one line naming the file; a full disk answers 507 and recovers by
//! itself; `natter backup` copies a running deployment.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{Client, Process, assert_error, natter_command};

/// A running natter on `data` with Alice, her room, and `count` messages
/// of `text` (numbered when `text` is empty).
async fn deployment(data: &Path, count: usize, text: &str) -> (Process, Client, i64) {
    let server = Process::start(data).await;
    let mut alice = Client::new(&server.base);
    alice.register_and_login("alice").await;
    let room = alice.create_room("r", "public").await;
    for i in 0..count {
        let text = if text.is_empty() {
            format!("message {i}")
        } else {
            text.to_owned()
        };
        alice.say(room, &format!("m{i}"), &text).await;
    }
    (server, alice, room)
}

/// `natter --data-dir DATA backup DEST`.
fn backup(data: &Path, dest: &Path) -> std::process::Output {
    natter_command(&[])
        .arg("--data-dir")
        .arg(data)
        .arg("backup")
        .arg(dest)
        .output()
        .unwrap()
}

/// Starts natter on `data` and expects it to refuse: returns what it said.
fn refused_start(data: &Path, wrapper: &[&str]) -> String {
    let output = natter_command(wrapper)
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .output()
        .unwrap();
    assert!(
        !output.status.success(),
        "natter started on {}",
        data.display()
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        !stdout.contains("natter is serving"),
        "said it served: {stdout}"
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn a_database_that_is_not_natters_stops_the_start_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let db = data.join("natter.db");

    std::fs::write(&db, b"").unwrap();
    let said = refused_start(&data, &[]);
    assert!(said.contains("natter.db is empty (0 bytes)"), "{said}");

    std::fs::write(&db, b"not a database at all, just some bytes that go on").unwrap();
    assert!(refused_start(&data, &[]).contains("is not an SQLite database"));

    std::fs::remove_file(&db).unwrap();
    let foreign = rusqlite::Connection::open(&db).unwrap();
    foreign
        .execute_batch("CREATE TABLE photos (id INTEGER)")
        .unwrap();
    drop(foreign);
    assert!(refused_start(&data, &[]).contains("is an SQLite database, but not natter's"));

    std::fs::remove_file(&db).unwrap();
    let other = rusqlite::Connection::open(&db).unwrap();
    other.execute_batch("PRAGMA application_id = 1234").unwrap();
    drop(other);
    let said = refused_start(&data, &[]);
    assert!(said.contains("belongs to another program"), "{said}");
    assert_eq!(said.trim().lines().count(), 1, "one line: {said}");
}

#[tokio::test]
async fn a_damaged_database_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (server, _, _) = deployment(&data, 200, &"lorem ipsum ".repeat(20)).await;
    drop(server);
    let db = data.join("natter.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    drop(conn);
    // Scribble over the pages in the middle of the file.
    let mut bytes = std::fs::read(&db).unwrap();
    let middle = bytes.len() / 2 / 1024 * 1024;
    for b in &mut bytes[middle..middle + 8 * 1024] {
        *b = 0x5a;
    }
    std::fs::write(&db, &bytes).unwrap();
    let said = refused_start(&data, &[]);
    assert!(said.contains("natter.db is damaged"), "{said}");
}

#[tokio::test]
async fn a_second_natter_on_the_same_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = Process::start(&data).await;
    let said = refused_start(&data, &[]);
    assert!(said.contains("another natter (process"), "{said}");
    assert!(said.contains("is using the data folder"), "{said}");
    // The first one is undisturbed, and once it is gone the folder is free.
    assert_eq!(
        reqwest::get(format!("{}/healthz", first.base))
            .await
            .unwrap()
            .status(),
        200
    );
    drop(first);
    let again = Process::start(&data).await;
    assert_eq!(
        reqwest::get(format!("{}/healthz", again.base))
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn a_folder_natter_cannot_write_is_refused_at_start() {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    if !root || Command::new("setpriv").arg("--version").output().is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "running natter as nobody needs root and setpriv under CI=true"
        );
        println!(
            "SKIPPED a_folder_natter_cannot_write_is_refused_at_start: needs root and setpriv"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    // The folder belongs to the test's user; natter runs as nobody.
    let nobody = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--",
    ];
    let said = refused_start(&data, &nobody);
    assert!(said.contains("is not writable"), "{said}");
}

#[tokio::test]
async fn natter_backup_copies_a_running_deployment_that_then_serves() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (server, _, room) = deployment(&data, 30, "").await;
    let dest = dir.path().join("backup");
    let output = backup(&data, &dest);
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(said.contains("1 users, 1 rooms, 31 events"), "{said}");
    // A second backup into the same folder is refused.
    assert!(!backup(&data, &dest).status.success());
    server.kill9();

    let restored = Process::start(&dest).await;
    let mut back = Client::new(&restored.base);
    back.login("alice").await;
    let (status, history) = back
        .get(&format!("/api/v1/rooms/{room}/messages?limit=100"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let texts: Vec<&str> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "message")
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts.len(), 30, "{history}");
    assert_eq!(texts[29], "message 29");
}

#[tokio::test]
async fn a_full_disk_answers_507_and_recovers_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk");
    std::fs::create_dir_all(&disk).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=3m", "tmpfs"])
        .arg(&disk)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "cannot mount a tmpfs under CI=true"
        );
        println!(
            "SKIPPED a_full_disk_answers_507_and_recovers_without_a_restart: cannot mount a tmpfs"
        );
        return;
    }
    let unmount = scopeguard(disk.clone());
    let data = disk.join("data");
    let (server, alice, room) = deployment(&data, 0, "").await;
    // Fill what is left, then send until the store says the disk is full.
    let filler = disk.join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 2_600_000]);
    let text = "满".repeat(4000);
    let mut full = None;
    for i in 0..2000 {
        let reply = alice
            .post(
                &format!("/api/v1/rooms/{room}/messages"),
                json!({"client_msg_id": format!("f{i}"), "text": text}),
            )
            .await;
        if reply.0 != StatusCode::CREATED {
            full = Some(reply);
            break;
        }
    }
    let full = full.expect("the disk never filled");
    assert_error(&full, StatusCode::INSUFFICIENT_STORAGE, "storage_full");
    // Room again: the same natter takes writes.
    std::fs::remove_file(&filler).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, body) = alice
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            json!({"client_msg_id": "after", "text": "there is room again"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    drop(server);
    drop(unmount);
}

/// Unmounts the test's tmpfs however the test ends.
fn scopeguard(path: std::path::PathBuf) -> impl Drop {
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    Unmount(path)
}
