//! `natter migrate-store`: a deployment made through the API on SQLite
//! (people, a site's user, rooms, a direct conversation, messages edited,
//! deleted, reacted to and answered, read markers, notification choices,
//! sessions, an invite), moved onto PostgreSQL by the real binary, reads
//! the same through the API on a server on PostgreSQL: every table row
//! for row, history, room lists with unread and mention counts, members
//! and sessions (old tokens still work), and old cursors continue. A
//! second run says it is done; a non-empty target, or a folder natter
//! is running on, is refused; a run that crashes midway commits nothing
//! and the next one finishes.
//!
//! Each test fills a PostgreSQL schema of its own (`NATTER_TEST_POSTGRES`,
//! default `postgres://postgres@127.0.0.1:5432/test`), dropped at the
//! end; without a server they say that they skipped, except under
//! `CI=true`, where they fail.

use std::path::{Path, PathBuf};
use std::process::Output;

use natter::store::StoreChoice;
use natter::store::postgres::PostgresOptions;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::admin::{KEY, admin};
use crate::common::{Client, TestServer, message_texts, natter_command};
use crate::services::postgres_url;
use crate::sso::{claims, exchange, hs, site};

/// A schema of its own in the test database, dropped with the value.
struct Target {
    url: String,
    schema: String,
    db: tokio_postgres::Client,
}

impl Target {
    async fn new(test: &str) -> Option<Target> {
        let url = postgres_url(test).await?;
        let (db, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        let schema = crate::services::fresh_schema();
        db.batch_execute(&format!("CREATE SCHEMA {schema}"))
            .await
            .unwrap();
        Some(Target { url, schema, db })
    }

    /// The URL an operator would give: the schema by `search_path`.
    fn cli_url(&self) -> String {
        let separator = if self.url.contains('?') { '&' } else { '?' };
        format!(
            "{}{separator}options=-c%20search_path%3D{}",
            self.url, self.schema
        )
    }

    /// Points a test server's configuration at this schema.
    fn serve_here(&self) -> impl Fn(&mut natter::Config) + Clone + use<> {
        let (url, schema) = (self.url.clone(), self.schema.clone());
        move |config: &mut natter::Config| {
            let mut options = PostgresOptions::new(&url);
            options.schema = Some(schema.clone());
            config.store = StoreChoice::Postgres(options);
        }
    }

    async fn count(&self, table: &str) -> i64 {
        self.db
            .query_one(
                &format!("SELECT COUNT(*) FROM {}.{table}", self.schema),
                &[],
            )
            .await
            .unwrap()
            .get(0)
    }

    async fn meta(&self, key: &str) -> Option<String> {
        self.db
            .query_opt(
                &format!("SELECT value FROM {}.meta WHERE key = $1", self.schema),
                &[&key],
            )
            .await
            .unwrap()
            .map(|r| r.get(0))
    }

    async fn has_tables(&self) -> bool {
        let found: Option<String> = self
            .db
            .query_one(
                &format!("SELECT to_regclass('{}.users')::text", self.schema),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        found.is_some()
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let (url, schema) = (self.url.clone(), self.schema.clone());
        // Its own thread and runtime: drop runs inside the test's runtime.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let Ok((db, conn)) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await
                else {
                    return;
                };
                tokio::spawn(conn);
                let _ = db
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                    .await;
            });
        })
        .join()
        .unwrap();
    }
}

/// Runs `natter migrate-store --from from --to to …` to its end.
async fn migrate(from: &Path, to: &str, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = natter_command(&[]);
    command
        .arg("migrate-store")
        .arg("--from")
        .arg(from)
        .args(["--to", to])
        .args(extra)
        .env("NATTER_LOG", "warn")
        .env_remove("NATTER_STORE")
        .env_remove("NATTER_TEST_CRASH_AFTER_BATCHES");
    for (key, value) in env {
        command.env(key, value);
    }
    tokio::task::spawn_blocking(move || command.output().expect("run natter"))
        .await
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[track_caller]
fn assert_ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "migrate-store failed ({}): {}{}",
        output.status,
        stdout(output),
        stderr(output)
    );
    stdout(output)
}

/// The SQLite data folder inside a test server's folder.
fn folder_of(data: &tempfile::TempDir) -> PathBuf {
    data.path().join("data")
}

/// A reply's body, after checking that it succeeded.
async fn read(client: &Client, path: &str) -> Value {
    let (status, body) = client.get(path).await;
    assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
    body
}

/// What `client` sees of the deployment: room list, history and members
/// of `rooms`, profile and sessions. Presence is left out: a restart
/// makes everyone offline until they poll again.
async fn view(client: &Client, rooms: &[i64]) -> Value {
    let mut seen = json!({
        "rooms": read(client, "/api/v1/rooms").await,
        "me": read(client, "/api/v1/me").await,
        "sessions": read(client, "/api/v1/me/sessions").await,
    });
    for room in rooms {
        seen[format!("history {room}")] =
            read(client, &format!("/api/v1/rooms/{room}/messages?limit=100")).await;
        seen[format!("members {room}")] =
            read(client, &format!("/api/v1/rooms/{room}/members")).await;
    }
    without_presence(&mut seen);
    seen
}

fn without_presence(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("online");
            map.remove("online_count");
            map.values_mut().for_each(without_presence);
        }
        Value::Array(items) => items.iter_mut().for_each(without_presence),
        _ => {}
    }
}

/// Every row of every table of `target`, as text, sorted, beside the
/// same columns of the SQLite folder's table: they must be equal. The
/// mark of the finished copy is the one row only PostgreSQL has.
async fn assert_same_rows(target: &Target, folder: &Path) {
    let tables: Vec<String> = target
        .db
        .query(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = $1 AND table_name <> 'natter_migrations' ORDER BY 1",
            &[&target.schema],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(tables.len() >= 12, "{tables:?}");
    let sqlite = rusqlite::Connection::open_with_flags(
        folder.join("natter.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    for table in tables {
        let columns: Vec<(String, String)> = target
            .db
            .query(
                "SELECT column_name::text, data_type::text FROM information_schema.columns
                 WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
                &[&target.schema, &table],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let pg_select: Vec<String> = columns
            .iter()
            .map(|(c, kind)| match kind.as_str() {
                "bytea" => format!("encode({c}, 'hex')"),
                "boolean" => format!("CASE WHEN {c} THEN '1' WHEN NOT {c} THEN '0' END"),
                _ => format!("{c}::text"),
            })
            .collect();
        let mut in_pg: Vec<Vec<Option<String>>> = target
            .db
            .query(
                &format!(
                    "SELECT {} FROM {}.{table}",
                    pg_select.join(", "),
                    target.schema
                ),
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (0..columns.len()).map(|i| r.get(i)).collect())
            .filter(|row: &Vec<Option<String>>| {
                !(table == "meta" && row[0].as_deref() == Some("migrated_from_sqlite"))
            })
            .collect();
        let sqlite_select: Vec<String> = columns
            .iter()
            .map(|(c, kind)| match kind.as_str() {
                "bytea" => format!("CASE WHEN {c} IS NOT NULL THEN lower(hex({c})) END"),
                _ => format!("CAST({c} AS TEXT)"),
            })
            .collect();
        let mut in_sqlite: Vec<Vec<Option<String>>> = sqlite
            .prepare(&format!("SELECT {} FROM {table}", sqlite_select.join(", ")))
            .unwrap()
            .query_map([], |r| {
                (0..columns.len())
                    .map(|i| r.get(i))
                    .collect::<rusqlite::Result<_>>()
            })
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        in_pg.sort();
        in_sqlite.sort();
        assert_eq!(in_pg, in_sqlite, "the rows of {table}");
    }
}

/// The messages of `first`, a poll's answer, and of the polls that
/// follow it from its cursor, until one brings messages: presence news
/// (people coming online on the new server) may answer a poll first.
async fn messages_from(client: &Client, first: crate::common::Reply) -> Vec<String> {
    let (mut status, mut body) = first;
    for _ in 0..10 {
        assert_eq!(status, StatusCode::OK, "{body}");
        let texts = message_texts(&body);
        if !texts.is_empty() {
            return texts;
        }
        (status, body) = client.poll(body["cursor"].as_str().unwrap(), 10).await;
    }
    panic!("no message came: {body}");
}

/// Registers `name` on `server` with its own password login.
async fn person(server: &TestServer, name: &str) -> Client {
    server.user(name).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_moves_onto_postgres_and_clients_carry_on() {
    let Some(target) = Target::new("a_deployment_moves_onto_postgres_and_clients_carry_on").await
    else {
        return;
    };
    let with_sites = |c: &mut natter::Config| {
        c.chat.sites = vec![site("school", "https://school.test", "HS256")];
        c.chat.admin_keys = natter::chat::Secrets(vec![KEY.into()]);
    };
    let server = TestServer::start_with(with_sites).await;
    let mut alice = person(&server, "alice").await;
    let mut bob = person(&server, "bob").await;
    let mut carol = person(&server, "carol").await;
    let mut dave = person(&server, "dave").await;

    // A site's user, signed in with a token whose id is remembered.
    let mut token = claims("42");
    token["jti"] = json!("jti-1");
    let (status, signed_in) = exchange(&server.client(), json!({"token": hs(&token)})).await;
    assert_eq!(status, StatusCode::CREATED, "{signed_in}");
    let mut li = server.client();
    li.token = Some(signed_in["token"].as_str().unwrap().to_owned());
    li.user_id = signed_in["user"]["id"].as_i64().unwrap();
    let school = li.create_room("school corner", "public").await;
    li.say(school, "li-1", "hi from the school").await;

    // A group room where messages are answered, edited, deleted, reacted to.
    let class = alice.create_room("class", "public").await;
    for member in [&bob, &carol, &dave] {
        member.join(class).await;
    }
    let first = alice
        .say(class, "a-1", &format!("hello <@{}>", bob.user_id))
        .await;
    let first = first["seq"].as_i64().unwrap();
    let (status, reply) = bob
        .post(
            &format!("/api/v1/rooms/{class}/messages"),
            json!({"client_msg_id": "b-1", "text": "hi alice", "reply_to": first}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let doomed = carol.say(class, "c-1", "oops, wrong room").await["seq"]
        .as_i64()
        .unwrap();
    let (status, body) = carol
        .delete(&format!("/api/v1/rooms/{class}/messages/{doomed}"))
        .await;
    assert!(status.is_success(), "{body}");
    let (status, body) = alice
        .patch(
            &format!("/api/v1/rooms/{class}/messages/{first}"),
            json!({"text": format!("hello again <@{}> and <@{}>", bob.user_id, carol.user_id)}),
        )
        .await;
    assert!(status.is_success(), "{body}");
    // 👍 twice and :smile:, which is taken back.
    let thumbs = "%F0%9F%91%8D";
    let smile = "%3Asmile%3A";
    for (who, reaction) in [(&bob, thumbs), (&carol, thumbs), (&carol, smile)] {
        let (status, body) = who
            .put(&format!(
                "/api/v1/rooms/{class}/messages/{first}/reactions/{reaction}"
            ))
            .await;
        assert!(status.is_success(), "{body}");
    }
    let (status, body) = carol
        .delete(&format!(
            "/api/v1/rooms/{class}/messages/{first}/reactions/{smile}"
        ))
        .await;
    assert!(status.is_success(), "{body}");

    // A direct conversation, read halfway.
    let (status, opened) = alice
        .post("/api/v1/direct", json!({"user_id": bob.user_id}))
        .await;
    assert!(status.is_success(), "{opened}");
    let direct = opened["room"]["id"].as_i64().unwrap();
    let seen = alice.say(direct, "d-1", "are you there?").await["seq"]
        .as_i64()
        .unwrap();
    alice.say(direct, "d-2", "bob?").await;
    let (status, body) = bob
        .post(
            &format!("/api/v1/rooms/{direct}/read"),
            json!({"seq": seen}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = carol
        .post(
            &format!("/api/v1/rooms/{class}/read"),
            json!({"seq": first}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Notification choices, a second session, an ended one, a leaver,
    // an account closed, an invite.
    for (who, level) in [(&dave, "none"), (&carol, "all")] {
        let (status, body) = who
            .put_json(
                &format!("/api/v1/rooms/{class}/notifications"),
                json!({"level": level}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let mut phone = server.client();
    phone.login("alice").await;
    let mut ended = server.client();
    ended.login("bob").await;
    let (status, _) = ended.delete("/api/v1/sessions/current").await;
    assert!(status.is_success());
    let leaver = person(&server, "erin").await;
    leaver.join(class).await;
    let (status, body) = leaver
        .post(&format!("/api/v1/rooms/{class}/leave"), json!({}))
        .await;
    assert!(status.is_success(), "{body}");
    let closed = person(&server, "frank").await;
    let (status, body) = closed
        .post("/api/v1/me/deactivate", json!({"password": "password-1"}))
        .await;
    assert!(status.is_success(), "{body}");
    let (status, body) = admin(
        &server.client(),
        "POST",
        "/api/v1/admin/invites",
        Some(json!({})),
        KEY,
    )
    .await;
    assert!(status.is_success(), "{body}");

    // Bob's cursor, then two more messages it has not seen.
    let mid = bob.cursor().await;
    alice.say(class, "a-2", "after the cursor, one").await;
    let last = alice.say(class, "a-3", "after the cursor, two").await["seq"]
        .as_i64()
        .unwrap();
    let (status, caught_up) = bob.poll(&mid, 0).await;
    assert_eq!(status, StatusCode::OK, "{caught_up}");
    let latest = caught_up["cursor"].as_str().unwrap().to_owned();

    let people: Vec<(&str, &mut Client, Vec<i64>)> = vec![
        ("alice", &mut alice, vec![class, direct]),
        ("bob", &mut bob, vec![class, direct]),
        ("carol", &mut carol, vec![class]),
        ("dave", &mut dave, vec![class]),
        ("li", &mut li, vec![school]),
        ("alice's phone", &mut phone, vec![class]),
    ];
    let mut before = Vec::new();
    for (name, client, rooms) in &people {
        before.push((*name, view(client, rooms).await));
    }
    let data = server.stop().await;
    let folder = folder_of(&data);

    let done = assert_ok(&migrate(&folder, &target.cli_url(), &["--batch-rows", "3"], &[]).await);
    assert!(done.contains("migrated"), "{done}");
    assert!(done.contains("cursor key kept"), "{done}");
    assert_same_rows(&target, &folder).await;

    // A server on PostgreSQL: the same for everyone, with their old tokens.
    let on_postgres = target.serve_here();
    let server = TestServer::start_with(move |c| {
        with_sites(c);
        on_postgres(c);
    })
    .await;
    let mut people = people;
    for ((name, client, rooms), (_, seen)) in people.iter_mut().zip(&before) {
        client.base = server.base.clone();
        assert_eq!(&view(client, rooms).await, seen, "what {name} sees");
    }
    drop(people);

    // Bob's cursors continue: the older one gets exactly what followed it,
    // the newest waits for what comes next, which takes the next seq.
    let resumed = messages_from(&bob, bob.poll(&mid, 5).await).await;
    assert_eq!(resumed, ["after the cursor, one", "after the cursor, two"]);
    let waiting = bob.parked_poll(&latest, 10).await;
    let next = alice.say(class, "a-4", "on postgres now").await;
    assert_eq!(next["seq"], last + 1);
    let woken = messages_from(&bob, waiting.await.unwrap()).await;
    assert_eq!(woken, ["on postgres now"]);
    // A retried send from before the move is still recognised.
    let (status, again) = alice
        .post(
            &format!("/api/v1/rooms/{class}/messages"),
            json!({"client_msg_id": "a-3", "text": "after the cursor, two"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(
        (&again["duplicate"], &again["message"]["seq"]),
        (&json!(true), &json!(last))
    );

    // New people, rooms and sessions get ids past the copied ones.
    let newcomer = person(&server, "grace").await;
    assert!(newcomer.user_id > closed.user_id, "{}", newcomer.user_id);
    let room = newcomer.create_room("new on postgres", "public").await;
    assert!(room > school.max(class).max(direct), "{room}");
    let sessions = read(&newcomer, "/api/v1/me/sessions").await;
    let session = sessions["sessions"][0]["id"].as_i64().unwrap();
    let old_sessions = read(&alice, "/api/v1/me/sessions").await;
    assert!(
        old_sessions["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["id"].as_i64().unwrap() < session),
        "{old_sessions} {sessions}"
    );
    server.stop().await;

    // A second run finds the copy done, and writes nothing.
    let users = target.count("users").await;
    let again = assert_ok(&migrate(&folder, &target.cli_url(), &[], &[]).await);
    assert!(again.contains("already holds this deployment"), "{again}");
    assert_eq!(target.count("users").await, users);
}

/// A folder natter is running on is refused, and so is a target that
/// already holds a deployment: with a clear reason, and nothing written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_folder_and_a_target_in_use_are_refused() {
    let Some(target) = Target::new("a_running_folder_and_a_target_in_use_are_refused").await else {
        return;
    };
    let server = TestServer::start().await;
    let alice = person(&server, "alice").await;
    let room = alice.create_room("kept", "public").await;
    alice.say(room, "a-1", "on sqlite").await;
    let running = migrate(&folder_of(&server.data), &target.cli_url(), &[], &[]).await;
    assert!(!running.status.success());
    assert!(
        stderr(&running).contains("another natter"),
        "{}",
        stderr(&running)
    );
    assert!(!target.has_tables().await, "nothing was written");
    let data = server.stop().await;

    // The target gets a deployment of its own.
    let on_postgres = target.serve_here();
    let other = TestServer::start_with(on_postgres).await;
    person(&other, "zoe").await;
    other.stop().await;
    let identity = target.meta("deployment_id").await;

    let refused = migrate(&folder_of(&data), &target.cli_url(), &[], &[]).await;
    assert!(!refused.status.success());
    let why = stderr(&refused);
    assert!(
        why.contains("not empty") && why.contains("users 1"),
        "{why}"
    );
    assert!(why.contains("nothing was written"), "{why}");
    assert_eq!(target.count("users").await, 1);
    assert_eq!(target.count("events").await, 0);
    assert_eq!(target.meta("deployment_id").await, identity);
    assert_eq!(target.meta("migrated_from_sqlite").await, None);

    // Without a PostgreSQL URL there is nowhere to go.
    let nowhere = natter_command(&[])
        .arg("migrate-store")
        .arg("--from")
        .arg(folder_of(&data))
        .env_remove("NATTER_STORE")
        .output()
        .unwrap();
    assert!(!nowhere.status.success());
    assert!(
        stderr(&nowhere).contains("--to postgres://"),
        "{}",
        stderr(&nowhere)
    );
}

/// A run that dies midway, its transaction open, commits nothing; the
/// next run copies everything, and clients carry on as after a clean one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_crashes_midway_is_finished_by_the_next() {
    let Some(target) = Target::new("a_run_that_crashes_midway_is_finished_by_the_next").await
    else {
        return;
    };
    let server = TestServer::start().await;
    let mut alice = person(&server, "alice").await;
    let bob = person(&server, "bob").await;
    let room = alice.create_room("long", "public").await;
    bob.join(room).await;
    for i in 0..12 {
        alice
            .say(room, &format!("m-{i}"), &format!("message {i}"))
            .await;
    }
    let cursor = bob.cursor().await;
    let before = view(&alice, &[room]).await;
    let data = server.stop().await;
    let folder = folder_of(&data);

    let crashed = migrate(
        &folder,
        &target.cli_url(),
        &["--batch-rows", "2"],
        &[("NATTER_TEST_CRASH_AFTER_BATCHES", "8")],
    )
    .await;
    assert_eq!(crashed.status.code(), Some(137), "{}", stderr(&crashed));
    assert!(
        stderr(&crashed).contains("copying events"),
        "it was midway, in the events: {}",
        stderr(&crashed)
    );
    assert!(!target.has_tables().await, "nothing was committed");

    let done = assert_ok(&migrate(&folder, &target.cli_url(), &["--batch-rows", "2"], &[]).await);
    assert!(done.contains("migrated"), "{done}");
    assert_same_rows(&target, &folder).await;

    let server = TestServer::start_with(target.serve_here()).await;
    alice.base = server.base.clone();
    assert_eq!(view(&alice, &[room]).await, before);
    let mut bob = bob;
    bob.base = server.base.clone();
    let waiting = bob.parked_poll(&cursor, 10).await;
    alice.say(room, "m-12", "after the move").await;
    let woken = messages_from(&bob, waiting.await.unwrap()).await;
    assert_eq!(woken, ["after the move"]);
    server.stop().await;
}
