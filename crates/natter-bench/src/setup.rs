//! Creating what a run needs through the public API: users with sessions,
//! rooms, memberships. Every name carries the run's prefix, so runs never
//! collide and nothing created by others is touched.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hyper::Method;
use serde_json::json;
use tokio::sync::Mutex;

use crate::conn::{Conn, source_for};
use crate::route::Servers;

/// A user with a live session.
#[derive(Clone, Debug)]
pub struct Account {
    pub token: String,
}

const PASSWORD: &str = "bench-password";

/// The site natter-bench signs its users in through, when the deployment
/// has one (`--site-secret`): docs/performance.md shows its `[[sites]]`.
const SITE: &str = "bench";
const SITE_ISSUER: &str = "natter-bench";

/// A site token for the user `name`, valid for a minute.
fn site_token(secret: &str, name: &str) -> anyhow::Result<String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let claims = json!({
        "sub": name,
        "iss": SITE_ISSUER,
        "aud": "natter",
        "iat": now,
        "exp": now + 60,
        "name": name,
    });
    Ok(jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )?)
}

/// Runs `work` over `items` with `workers` workers in parallel; the
/// results keep the items' order. Item `i` goes to server `i % n`, so a
/// cluster's setup spreads over its nodes as its clients do.
pub async fn parallel<T, R, F, Fut>(
    servers: &Servers,
    items: Vec<T>,
    workers: usize,
    work: F,
) -> anyhow::Result<Vec<R>>
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(Conn, T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<(Conn, R)>> + Send,
{
    let count = items.len();
    let queue = Arc::new(Mutex::new(items.into_iter().enumerate()));
    let results = Arc::new(Mutex::new(
        (0..count).map(|_| None).collect::<Vec<Option<R>>>(),
    ));
    let work = Arc::new(work);
    let mut tasks = Vec::new();
    for w in 0..workers.min(count.max(1)) {
        let (queue, results, work) = (queue.clone(), results.clone(), work.clone());
        let servers = servers.clone();
        tasks.push(tokio::spawn(async move {
            // One connection per node, opened when first needed.
            let mut conns: Vec<Option<Conn>> = servers.addrs().iter().map(|_| None).collect();
            loop {
                let next = queue.lock().await.next();
                let Some((i, item)) = next else { break };
                let node = servers.home(i);
                let conn = match conns[node].take() {
                    Some(conn) => conn,
                    None => Conn::open(servers.addrs()[node], source_for(w)).await?,
                };
                let (c, r) = work(conn, item).await?;
                conns[node] = Some(c);
                results.lock().await[i] = Some(r);
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let results = Arc::try_unwrap(results)
        .map_err(|_| anyhow::anyhow!("workers still running"))?
        .into_inner();
    Ok(results
        .into_iter()
        .map(|r| r.expect("every item done"))
        .collect())
}

/// Registers `count` users named `<prefix><n>` and logs each in; or, on
/// a deployment with the `bench` site's secret, signs each in with a site
/// token (no password hashes: 100,000 users in minutes, not hours).
pub async fn accounts(
    servers: &Servers,
    prefix: &str,
    count: usize,
) -> anyhow::Result<Vec<Account>> {
    let names: Vec<String> = (0..count).map(|n| format!("{prefix}{n}")).collect();
    let done = Arc::new(AtomicUsize::new(0));
    let site_secret = servers.site_secret().map(str::to_owned);
    parallel(servers, names, 8, move |mut conn, name| {
        let done = done.clone();
        let site_secret = site_secret.clone();
        async move {
            let login = match site_secret {
                Some(secret) => {
                    conn.json(
                        Method::POST,
                        "/api/v1/sessions/sso",
                        None,
                        Some(json!({"site": SITE, "token": site_token(&secret, &name)?})),
                    )
                    .await?
                }
                None => {
                    conn.json(
                        Method::POST,
                        "/api/v1/users",
                        None,
                        Some(json!({"username": name, "password": PASSWORD})),
                    )
                    .await?;
                    conn.json(
                        Method::POST,
                        "/api/v1/sessions",
                        None,
                        Some(json!({"username": name, "password": PASSWORD})),
                    )
                    .await?
                }
            };
            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_multiple_of(1000) {
                eprintln!("  {n} users ready");
            }
            let account = Account {
                token: login["token"].as_str().unwrap_or_default().to_owned(),
            };
            Ok((conn, account))
        }
    })
    .await
}

/// Creates `count` public rooms owned by `owner`.
pub async fn rooms(
    servers: &Servers,
    owner: &Account,
    prefix: &str,
    count: usize,
) -> anyhow::Result<Vec<i64>> {
    let token = owner.token.clone();
    let prefix = prefix.to_owned();
    parallel(servers, (0..count).collect(), 4, move |mut conn, n| {
        let token = token.clone();
        let title = format!("{prefix} room {n}");
        async move {
            let room = conn
                .json(
                    Method::POST,
                    "/api/v1/rooms",
                    Some(&token),
                    Some(json!({"title": title, "visibility": "public"})),
                )
                .await?;
            Ok((conn, room["room"]["id"].as_i64().unwrap_or_default()))
        }
    })
    .await
}

/// Makes each account a member of its rooms.
pub async fn join(servers: &Servers, memberships: Vec<(Account, i64)>) -> anyhow::Result<()> {
    parallel(
        servers,
        memberships,
        8,
        |mut conn, (account, room)| async move {
            conn.json(
                Method::POST,
                &format!("/api/v1/rooms/{room}/join"),
                Some(&account.token),
                Some(json!({})),
            )
            .await?;
            Ok((conn, ()))
        },
    )
    .await?;
    Ok(())
}

/// A short prefix unique to this run.
pub fn run_prefix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("b{:x}x", (nanos as u64) & 0xff_ffff_ffff)
}
