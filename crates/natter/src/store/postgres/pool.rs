//! The connection pool: how natter reaches PostgreSQL, with short
//! timeouts so a database that is down fails a call in seconds
//! (`Unavailable`) instead of hanging it, and connections that the
//! server closed replaced by new ones on their next use, so the pool
//! reconnects by itself when the database is back.

use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};

use super::fail::pool_error;
use super::tls;
use crate::store::{StoreError, StoreResult};

/// How to reach the database, and what natter accepts of it.
#[derive(Clone)]
pub struct PostgresOptions {
    /// A libpq-style URL, `postgres://user:password@host:port/database`
    /// (its `options` parameter may set `search_path`).
    pub url: String,
    /// The schema natter's tables live in, created if missing; `None`
    /// uses the URL's `search_path` (by default `public`). Tests give
    /// each run a schema of its own.
    pub schema: Option<String>,
    /// Start even when the server's `synchronous_commit` or `fsync` is
    /// off, which lets a crash lose acknowledged messages. Off by default:
    /// natter refuses to start on such a server.
    pub allow_unsafe_commit: bool,
    /// Connections kept open at most.
    pub max_connections: usize,
    /// The longest a call waits to connect or for a free connection
    /// before it fails with `Unavailable`.
    pub timeout: Duration,
    /// The longest a call's statements may take once connected: a server
    /// that accepts and then never answers (stopped, wedged) fails calls
    /// with `Unavailable` after this, and their connections are closed.
    pub call_timeout: Duration,
}

impl PostgresOptions {
    /// The defaults for `url`: the `public` schema (or the URL's), safe
    /// commits only, 16 connections, 3 s timeouts to connect, 10 s for a
    /// call's statements.
    pub fn new(url: impl Into<String>) -> PostgresOptions {
        PostgresOptions {
            url: url.into(),
            schema: None,
            allow_unsafe_commit: false,
            max_connections: 16,
            timeout: Duration::from_secs(3),
            call_timeout: Duration::from_secs(10),
        }
    }
}

impl std::fmt::Debug for PostgresOptions {
    // Never print a password in the URL.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresOptions")
            .field("url", &redacted(&self.url))
            .field("schema", &self.schema)
            .field("allow_unsafe_commit", &self.allow_unsafe_commit)
            .finish_non_exhaustive()
    }
}

/// Where the host part of a PostgreSQL URL begins: after the user part,
/// which ends at the first `@`, as tokio-postgres reads it (so a
/// password may hold `/` or `?`), or right after `://` without one.
pub(super) fn host_start(url: &str) -> usize {
    let after_scheme = url.find("://").map_or(0, |at| at + 3);
    match url[after_scheme..].find('@') {
        Some(at) => after_scheme + at + 1,
        None => after_scheme,
    }
}

/// `url` without the password of its user part or of a `password`
/// parameter, for logs and errors. The user part is taken to end at the
/// last `@`, not the first as tokio-postgres reads it: an `@` left
/// unencoded in a password then hides the rest of it, at worst hiding
/// more than the password.
pub fn redacted(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return "<not a URL>".into();
    };
    let after_scheme = scheme_end + 3;
    let host_at = url[after_scheme..]
        .rfind('@')
        .map_or(after_scheme, |at| after_scheme + at + 1);
    let user = match url[after_scheme..host_at].split_once(':') {
        Some((name, _)) => format!("{name}:***@"),
        None => url[after_scheme..host_at].to_owned(),
    };
    let rest = &url[host_at..];
    let rest = match rest.split_once('?') {
        Some((path, query)) => {
            let pairs: Vec<&str> = query
                .split('&')
                .map(|pair| {
                    let key = pair.split_once('=').map_or(pair, |(key, _)| key);
                    let key = percent_encoding::percent_decode_str(key).decode_utf8_lossy();
                    if key == "password" {
                        "password=***"
                    } else {
                        pair
                    }
                })
                .collect();
            format!("{path}?{}", pairs.join("&"))
        }
        None => rest.to_owned(),
    };
    format!("{}{user}{rest}", &url[..after_scheme])
}

/// Whether `name` is a plain lower-case identifier: what a schema name
/// must be here, since it goes into `search_path` and `CREATE SCHEMA`.
pub(super) fn plain_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 63
}

/// A pool for `options`; it connects lazily, on the first call.
pub(super) fn build(options: &PostgresOptions) -> StoreResult<Pool> {
    let refused =
        |why: String| StoreError::Refused(format!("store {}: {why}", redacted(&options.url)));
    let (url, tls) = tls::split(&options.url).map_err(refused)?;
    let connector = tls::connector(&tls).map_err(refused)?;
    let mut config = tokio_postgres::Config::from_str(&url).map_err(|e| {
        // The cause names the parameter at fault, never its value.
        let cause = std::error::Error::source(&e).map_or_else(String::new, |c| format!(": {c}"));
        refused(format!("not a PostgreSQL URL: {e}{cause}"))
    })?;
    config.ssl_mode(tls.mode);
    // Settings natter's statements are written for, after the URL's own
    // (the last `-c` of a name wins). Sends lock their room's row and
    // then read what it holds now, which read committed gives and
    // repeatable read or serializable refuse once another send moved the
    // room on; a server or role defaulting to those would fail sends.
    let mut settings = vec![r"default_transaction_isolation=read\ committed".to_owned()];
    if let Some(schema) = &options.schema {
        if !plain_identifier(schema) {
            return Err(StoreError::Refused(format!(
                "schema {schema:?}: use lower-case letters, digits and _ only"
            )));
        }
        settings.push(format!("search_path={schema}"));
    }
    let mut startup = config.get_options().unwrap_or_default().to_owned();
    for setting in settings {
        startup.push_str(" -c ");
        startup.push_str(&setting);
    }
    config.options(startup.trim());
    if config.get_application_name().is_none() {
        // What pg_stat_activity shows; a URL may name its own.
        config.application_name("natter");
    }
    config
        .connect_timeout(options.timeout)
        // A peer that vanished without closing (a dead host, a cut
        // network) is noticed by the kernel instead of never.
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(10))
        .keepalives_interval(Duration::from_secs(2))
        .keepalives_retries(3)
        // Data sent and not acknowledged for this long ends the
        // connection: a query to a host that stopped answering fails in
        // seconds, not when TCP gives up minutes later.
        .tcp_user_timeout(Duration::from_secs(10));
    let manager = Manager::from_config(
        config,
        connector,
        ManagerConfig {
            // Connections the server closed (a restart) are dropped when
            // they come back to the pool; the next call opens a new one.
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(options.max_connections.max(1))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(options.timeout))
        .create_timeout(Some(options.timeout))
        .recycle_timeout(Some(options.timeout))
        .build()
        .map_err(|e| StoreError::Internal(format!("cannot build the connection pool: {e}")))
}

/// A connection from `pool`, or `Unavailable` within the pool's timeouts.
pub(super) async fn connection(pool: &Pool) -> StoreResult<deadpool_postgres::Object> {
    pool.get().await.map_err(pool_error)
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn passwords_in_the_user_part_or_the_query_are_not_shown() {
        assert_eq!(
            redacted("postgres://natter:s3cret@db:5432/natter?sslmode=verify-full"),
            "postgres://natter:***@db:5432/natter?sslmode=verify-full"
        );
        assert_eq!(
            redacted("postgres://natter@db/natter?application_name=a&password=s3cret"),
            "postgres://natter@db/natter?application_name=a&password=***"
        );
        assert_eq!(
            redacted("postgres://u:pa/ss?x@db/natter?pass%77ord=s3cret"),
            "postgres://u:***@db/natter?password=***"
        );
        assert_eq!(
            redacted("postgres://u:p@ss@db/natter"),
            "postgres://u:***@db/natter"
        );
        assert_eq!(redacted("postgres://db"), "postgres://db");
        assert_eq!(redacted("db:5432"), "<not a URL>");
    }
}
