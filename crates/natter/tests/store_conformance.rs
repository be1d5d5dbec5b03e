//! The stores against the store conformance suite
//! (`natter::store::conformance`), which every store must pass, and the
//! PostgreSQL store's own promises: one migration when nodes start at
//! once, no NUL in its text, a fast `Unavailable` when the database is
//! out of reach, a pool that reconnects by itself, and sends that work
//! whatever isolation the server defaults to.
//!
//! The PostgreSQL tests use `NATTER_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/test`), each in a schema of its
//! own that is dropped at the end. Without a server they say that they
//! skipped, and pass, except under `CI=true`, where they fail.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use natter::store::postgres::{PostgresOptions, PostgresStore};
use natter::store::sqlite::SqliteStore;
use natter::store::{Action, NewEvent, NewRoom, NewUser, Store, StoreError};

#[path = "support/services.rs"]
mod services;
use services::{fresh_schema, postgres_url};
#[path = "support/proxy.rs"]
mod proxy;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_passes_the_store_conformance_suite() {
    // Each test gets a fresh data folder, kept until the suite ends.
    let folders: Arc<Mutex<Vec<tempfile::TempDir>>> = Arc::default();
    natter::store::conformance::run_all(|| {
        let folders = folders.clone();
        async move {
            let folder = tempfile::tempdir().unwrap();
            let store = SqliteStore::open(folder.path()).expect("open a fresh store");
            folders.lock().unwrap().push(folder);
            Arc::new(store) as Arc<dyn Store>
        }
    })
    .await;
}

/// A user to create, with a hash no password matches.
fn new_user(name: &str) -> NewUser {
    NewUser {
        username: name.into(),
        display_name: name.into(),
        password_hash: "x".into(),
        at: 1,
        invite: None,
    }
}

/// A user, ann, and a public room she made (its head is 1).
async fn ann_and_her_room(store: &dyn Store) -> (natter::model::UserId, natter::model::RoomId) {
    let ann = store.create_user(new_user("ann")).await.unwrap().id;
    (ann, room_by(store, ann).await)
}

/// A public room `creator` made (its head is 1).
async fn room_by(store: &dyn Store, creator: natter::model::UserId) -> natter::model::RoomId {
    let (room, _) = store
        .create_room(NewRoom {
            creator,
            creator_name: "ann".into(),
            community: None,
            title: "room".into(),
            visibility: natter::model::Visibility::Public,
            at: 1,
        })
        .await
        .unwrap();
    room.id
}

/// Send `i` by `actor` to `room`: client id `c{i}`, text "send {i}".
fn send_by(actor: natter::model::UserId, room: natter::model::RoomId, i: usize) -> NewEvent {
    send_saying(actor, room, i, format!("send {i}"))
}

/// Send `i` by `actor` to `room`, saying `text`.
fn send_saying(
    actor: natter::model::UserId,
    room: natter::model::RoomId,
    i: usize,
    text: String,
) -> NewEvent {
    NewEvent {
        room,
        actor,
        actor_name: "ann".into(),
        at: 2,
        action: Action::Send {
            client_msg_id: format!("c{i}"),
            text,
            reply_to: None,
        },
    }
}

/// `url` with the query parameter `parameter` (`name=value`) added.
fn with_parameter(url: &str, parameter: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{parameter}")
}

/// Whether a send was taken and made an event.
fn appended(sent: &natter::store::StoreResult<natter::store::Appended>) -> bool {
    matches!(
        sent,
        Ok(natter::store::Appended {
            outcome: natter::store::Outcome::Appended(_),
            ..
        })
    )
}

/// A connection of the test's own to the server at `url`.
async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

/// Takes `room`'s row in `schema` (`SELECT … FOR UPDATE`, as a slow
/// writer of another node would) on a connection of its own, and lets
/// it go `hold` later, when the returned task ends.
async fn hold_room(
    url: &str,
    schema: &str,
    room: natter::model::RoomId,
    hold: Duration,
) -> tokio::task::JoinHandle<()> {
    let mut holder = connect(url).await;
    let lock = format!("SELECT head FROM {schema}.rooms WHERE id = $1 FOR UPDATE");
    let (locked, taken) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let tx = holder.transaction().await.unwrap();
        tx.query_one(&lock, &[&room.0]).await.unwrap();
        let _ = locked.send(());
        tokio::time::sleep(hold).await;
        tx.commit().await.unwrap();
    });
    taken.await.unwrap();
    task
}

/// Drops the schemas a test made, when it ends (even by a panic).
struct Schemas {
    url: String,
    names: Mutex<Vec<String>>,
}

impl Schemas {
    fn new(url: &str) -> Arc<Schemas> {
        Arc::new(Schemas {
            url: url.to_owned(),
            names: Mutex::default(),
        })
    }

    /// Options for a store in a new schema, dropped with `self`.
    fn options(&self) -> PostgresOptions {
        let schema = fresh_schema();
        self.names.lock().unwrap().push(schema.clone());
        let mut options = PostgresOptions::new(&self.url);
        options.schema = Some(schema);
        options
    }
}

impl Drop for Schemas {
    fn drop(&mut self) {
        let names = std::mem::take(&mut *self.names.lock().unwrap());
        let url = self.url.clone();
        // Its own thread and runtime: drop may run inside a runtime.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let Ok((client, conn)) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await
                else {
                    return;
                };
                tokio::spawn(conn);
                for name in names {
                    let _ = client
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                        .await;
                }
            });
        })
        .join()
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_passes_the_store_conformance_suite() {
    let Some(url) = postgres_url("postgres_passes_the_store_conformance_suite").await else {
        return;
    };
    let schemas = Schemas::new(&url);
    natter::store::conformance::run_all(|| {
        let options = schemas.options();
        async move {
            let store = PostgresStore::open(options)
                .await
                .expect("open a fresh store");
            Arc::new(store) as Arc<dyn Store>
        }
    })
    .await;
}

/// Three nodes starting at once on an empty schema: all open, the schema
/// is made once, and they share one deployment id and cursor key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_nodes_starting_at_once_migrate_once() {
    let Some(url) = postgres_url("postgres_nodes_starting_at_once_migrate_once").await else {
        return;
    };
    let schemas = Schemas::new(&url);
    let options = schemas.options();
    let starts: Vec<_> = (0..3)
        .map(|_| tokio::spawn(PostgresStore::open(options.clone())))
        .collect();
    let mut nodes = Vec::new();
    for start in starts {
        nodes.push(start.await.unwrap().expect("every node starts"));
    }
    for node in &nodes[1..] {
        assert_eq!(node.deployment_id(), nodes[0].deployment_id());
        assert_eq!(node.cursor_key(), nodes[0].cursor_key());
    }
    let client = connect(&url).await;
    let schema = options.schema.unwrap();
    let applied = client
        .query_one(
            &format!(
                "SELECT COUNT(*), COUNT(DISTINCT version), MAX(version)::BIGINT
                 FROM {schema}.natter_migrations"
            ),
            &[],
        )
        .await
        .unwrap();
    let (rows, versions, newest): (i64, i64, i64) =
        (applied.get(0), applied.get(1), applied.get(2));
    assert!(newest >= 2, "every migration applied: {newest}");
    assert_eq!(
        (rows, versions),
        (newest, newest),
        "each migration applied once"
    );
    // A restart keeps the identity.
    let again = PostgresStore::open(schemas_options(&url, &schema))
        .await
        .unwrap();
    assert_eq!(again.deployment_id(), nodes[0].deployment_id());
}

fn schemas_options(url: &str, schema: &str) -> PostgresOptions {
    let mut options = PostgresOptions::new(url);
    options.schema = Some(schema.to_owned());
    options
}

/// Text PostgreSQL cannot hold (U+0000) is refused with an error, and
/// nothing of the write is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_refuses_nul_with_an_error() {
    let Some(url) = postgres_url("postgres_refuses_nul_with_an_error").await else {
        return;
    };
    let schemas = Schemas::new(&url);
    let store = PostgresStore::open(schemas.options()).await.unwrap();
    assert!(matches!(
        store.create_user(new_user("nul\0name")).await,
        Err(StoreError::Aborted(_))
    ));
    assert!(store.credentials("nul\0name").await.unwrap().is_none());
    let (ann, room) = ann_and_her_room(&store).await;
    let sent = store
        .append(NewEvent {
            room,
            actor: ann,
            actor_name: "ann".into(),
            at: 2,
            action: Action::Send {
                client_msg_id: "c".into(),
                text: "a\0b".into(),
                reply_to: None,
            },
        })
        .await;
    assert!(matches!(sent, Err(StoreError::Aborted(ref why)) if why.contains("U+0000")));
    assert_eq!(store.room(room).await.unwrap().unwrap().head, 1);
}

/// A send that PostgreSQL itself refuses (here a trigger the test adds)
/// fails alone: the sends that queued up with it, written in one batch,
/// are written again one by one and stored. The test holds the room's row
/// while the sends queue, so they go out in batches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_postgres_refuses_fails_alone_in_its_batch() {
    let Some(url) = postgres_url("a_send_postgres_refuses_fails_alone_in_its_batch").await else {
        return;
    };
    let schemas = Schemas::new(&url);
    let options = schemas.options();
    let schema = options.schema.clone().unwrap();
    let store = Arc::new(PostgresStore::open(options).await.unwrap());
    let (ann, room) = ann_and_her_room(&*store).await;
    connect(&url)
        .await
        .batch_execute(&format!(
            "CREATE FUNCTION {schema}.poison() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF NEW.text = 'poison' THEN RAISE EXCEPTION 'a poisoned send'; END IF;
                 RETURN NEW;
             END $$;
             CREATE TRIGGER poison BEFORE INSERT ON {schema}.events
                 FOR EACH ROW EXECUTE FUNCTION {schema}.poison();"
        ))
        .await
        .unwrap();
    let hold = hold_room(&url, &schema, room, Duration::from_millis(300)).await;
    let sends: Vec<_> = (0..100)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let text = if i == 70 {
                    "poison".into()
                } else {
                    format!("send {i}")
                };
                (i, store.append(send_saying(ann, room, i, text)).await)
            })
        })
        .collect();
    hold.await.unwrap();
    for send in sends {
        match send.await.unwrap() {
            (70, Err(StoreError::Internal(why))) => assert!(why.contains("poisoned"), "{why}"),
            (70, other) => panic!("the poisoned send was answered {other:?}"),
            (
                _,
                Ok(natter::store::Appended {
                    outcome: natter::store::Outcome::Appended(_),
                    ..
                }),
            ) => {}
            (i, other) => panic!("send {i}, queued with the poisoned one, was answered {other:?}"),
        }
    }
    assert_eq!(store.room(room).await.unwrap().unwrap().head, 1 + 99);
}

/// A database out of reach fails a call within seconds, as
/// `Unavailable`, not after a long hang and not as an internal error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_postgres_is_unavailable_fast() {
    // A port nothing listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let opened = PostgresStore::open(PostgresOptions::new(format!(
        "postgres://postgres@127.0.0.1:{port}/test"
    )))
    .await;
    assert!(
        matches!(opened, Err(StoreError::Unavailable(_))),
        "{:?}",
        opened.err()
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// Connections the server ends (a restart does that to all of them) are
/// replaced by the pool: calls succeed again without a restart of natter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_pool_reconnects_after_its_connections_end() {
    let Some(url) = postgres_url("postgres_pool_reconnects_after_its_connections_end").await else {
        return;
    };
    let schemas = Schemas::new(&url);
    let name = fresh_schema();
    let mut options = schemas.options();
    options.url = with_parameter(&url, &format!("application_name={name}"));
    let store = PostgresStore::open(options).await.unwrap();
    assert!(
        store
            .user(natter::model::UserId(1))
            .await
            .unwrap()
            .is_none()
    );

    let client = connect(&url).await;
    let ended: i64 = client
        .query_one(
            "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE application_name = $1) t",
            &[&name],
        )
        .await
        .unwrap()
        .get(0);
    assert!(ended >= 1, "the store's connections were ended");

    let started = Instant::now();
    loop {
        match store.user(natter::model::UserId(1)).await {
            Ok(found) => {
                assert!(found.is_none());
                break;
            }
            Err(StoreError::Unavailable(_)) if started.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("after its connections ended: {e}"),
        }
    }
}

/// A server whose commits may not survive a crash is refused at start,
/// unless the operator says that they accept it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_without_synchronous_commit_is_refused() {
    let Some(url) = postgres_url("postgres_without_synchronous_commit_is_refused").await else {
        return;
    };
    let schemas = Schemas::new(&url);
    let mut options = schemas.options();
    // This session's setting, as a server's `synchronous_commit = off` would be.
    options.url = with_parameter(&url, "options=-c%20synchronous_commit%3Doff");
    let refused = PostgresStore::open(options.clone()).await;
    assert!(
        matches!(refused, Err(StoreError::Refused(ref why)) if why.contains("synchronous_commit")),
        "{:?}",
        refused.err()
    );
    options.allow_unsafe_commit = true;
    PostgresStore::open(options)
        .await
        .expect("allowed when asked for");
}

/// A server whose sessions default to another isolation level (an
/// operator's `default_transaction_isolation = serializable`, here set
/// in the URL) still takes every send of two nodes racing in one room:
/// natter's sessions use the read-committed isolation its sends are
/// written for, whatever the server's default, where repeatable read
/// and serializable refuse a send whose room another one moved on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_defaulting_to_serializable_still_takes_every_send() {
    let test = "postgres_defaulting_to_serializable_still_takes_every_send";
    let Some(url) = postgres_url(test).await else {
        return;
    };
    let schemas = Schemas::new(&url);
    let mut options = schemas.options();
    options.url = with_parameter(
        &url,
        "options=-c%20default_transaction_isolation%3Dserializable",
    );
    let mut nodes: Vec<Arc<dyn Store>> = Vec::new();
    for _ in 0..2 {
        nodes.push(Arc::new(
            PostgresStore::open(options.clone()).await.unwrap(),
        ));
    }
    let (ann, room) = ann_and_her_room(&*nodes[0]).await;
    let sends: Vec<_> = (0..200)
        .map(|i| {
            let store = nodes[i % 2].clone();
            tokio::spawn(async move { store.append(send_by(ann, room, i)).await })
        })
        .collect();
    let mut refused = Vec::new();
    for send in sends {
        let sent = send.await.unwrap();
        if !appended(&sent) {
            refused.push(format!("{sent:?}"));
        }
    }
    assert!(
        refused.is_empty(),
        "{} refused: {:?}",
        refused.len(),
        refused.first()
    );
    assert_eq!(nodes[1].room(room).await.unwrap().unwrap().head, 1 + 200);
}

/// Two nodes' stores race to send in one room while the test holds the
/// room's row (`SELECT … FOR UPDATE` in a transaction left open for
/// 300 ms, as a slow send of a third node would): the sends wait, then
/// commit in seq order, and a reader following the room never sees a seq
/// before the ones below it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sends_behind_a_held_room_commit_in_seq_order() {
    let Some(url) = postgres_url("postgres_sends_behind_a_held_room_commit_in_seq_order").await
    else {
        return;
    };
    let schemas = Schemas::new(&url);
    let options = schemas.options();
    let schema = options.schema.clone().unwrap();
    let mut nodes: Vec<Arc<dyn Store>> = Vec::new();
    for _ in 0..2 {
        nodes.push(Arc::new(
            PostgresStore::open(options.clone()).await.unwrap(),
        ));
    }
    let held = std::sync::atomic::AtomicU32::new(0);
    natter::store::conformance::racing_nodes_behind_a_slow_transaction(nodes, |room| {
        let (url, schema, held) = (url.clone(), schema.clone(), &held);
        async move {
            let hold = hold_room(&url, &schema, room, Duration::from_millis(300)).await;
            hold.await.unwrap();
            held.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    })
    .await;
    assert_eq!(held.into_inner(), 5);
}

/// A room another transaction holds (here the test, for 5 s) holds up
/// only its own sends: sends to another room, queued with them and
/// written in the same batches, are stored while it is held. (Fewer
/// sends wait for the held room than the pool has connections: each
/// waits on one.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_room_holds_up_only_its_own_sends() {
    let Some(url) = postgres_url("a_held_room_holds_up_only_its_own_sends").await else {
        return;
    };
    let schemas = Schemas::new(&url);
    let options = schemas.options();
    let schema = options.schema.clone().unwrap();
    let store = Arc::new(PostgresStore::open(options).await.unwrap());
    let (ann, held_room) = ann_and_her_room(&*store).await;
    let free_room = room_by(&*store, ann).await;
    let started = Instant::now();
    let hold = hold_room(&url, &schema, held_room, Duration::from_secs(5)).await;
    let sends: Vec<_> = (0..120)
        .map(|i| {
            let store = store.clone();
            let room = if i % 12 == 0 { held_room } else { free_room };
            tokio::spawn(async move {
                let sent = store.append(send_by(ann, room, i)).await;
                (room, sent, started.elapsed())
            })
        })
        .collect();
    for send in sends {
        let (room, sent, at) = send.await.unwrap();
        assert!(appended(&sent), "{sent:?}");
        if room == free_room {
            assert!(
                at < Duration::from_secs(4),
                "a send to the free room took {at:?}"
            );
        } else {
            assert!(
                at >= Duration::from_secs(4),
                "a send to the held room went through at {at:?}"
            );
        }
    }
    hold.await.unwrap();
    assert_eq!(store.room(held_room).await.unwrap().unwrap().head, 1 + 10);
    assert_eq!(store.room(free_room).await.unwrap().unwrap().head, 1 + 110);
}

/// Sends queued up behind a database that stopped answering all fail
/// fast, as `Unavailable`, within a few call timeouts: not one batch's
/// timeout after another, which for thousands of queued sends would be
/// a minute's hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_queued_behind_a_silent_postgres_all_fail_fast() {
    let test = "sends_queued_behind_a_silent_postgres_all_fail_fast";
    let Some(url) = postgres_url(test).await else {
        return;
    };
    let (through, frozen) = proxy::freezable_proxy(host_port(&url)).await;
    let schemas = Schemas::new(&url);
    let mut options = schemas.options();
    options.url = url.replacen(&host_port(&url), &through, 1);
    options.call_timeout = Duration::from_secs(2);
    let store = Arc::new(PostgresStore::open(options).await.unwrap());
    let (ann, room) = ann_and_her_room(&*store).await;

    frozen.send(true).unwrap();
    let started = Instant::now();
    let sends: Vec<_> = (0..3_000)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.append(send_by(ann, room, i)).await })
        })
        .collect();
    for send in sends {
        let answer = send.await.unwrap();
        assert!(
            matches!(answer, Err(StoreError::Unavailable(_))),
            "{answer:?}"
        );
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(12),
        "3,000 queued sends took {took:?}"
    );
    frozen.send(false).unwrap();
}

/// The host and port of a PostgreSQL URL, after the user (if any), up
/// to the database.
fn host_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split(['/', '?']).next().unwrap().to_owned()
}

/// A server that stops answering on open connections fails reads and
/// writes with `Unavailable` after the call timeout, not never; and calls
/// work again once it answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_that_stops_answering_fails_calls_after_the_call_timeout() {
    let test = "a_postgres_that_stops_answering_fails_calls_after_the_call_timeout";
    let Some(url) = postgres_url(test).await else {
        return;
    };
    let host_port = host_port(&url);
    let (through, frozen) = proxy::freezable_proxy(host_port.clone()).await;
    let schemas = Schemas::new(&url);
    let mut options = schemas.options();
    options.url = url.replacen(&host_port, &through, 1);
    options.call_timeout = Duration::from_secs(2);
    let store = PostgresStore::open(options).await.unwrap();
    let ann = store.create_user(new_user("ann")).await.unwrap().id;

    frozen.send(true).unwrap();
    let started = Instant::now();
    assert!(matches!(
        store.user(ann).await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        store.create_user(new_user("bob")).await,
        Err(StoreError::Unavailable(_))
    ));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(8),
        "two calls took {took:?}"
    );

    frozen.send(false).unwrap();
    let started = Instant::now();
    loop {
        match store.user(ann).await {
            Ok(found) => {
                assert_eq!(found.unwrap().username, "ann");
                break;
            }
            Err(StoreError::Unavailable(_)) if started.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("calls did not work again: {e:?}"),
        }
    }
}
