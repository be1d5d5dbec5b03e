//! How PostgreSQL's errors become store errors: uniqueness violations
//! stay conflicts, a full disk is `Full`, a server that is down or
//! restarting is `Unavailable` (a 503, not a 500), and the few errors a
//! transaction may simply run again are told apart.

use std::error::Error as _;

use tokio_postgres::error::SqlState;

use crate::store::StoreError;

/// What a query of this store fails with: a store error decided in Rust
/// (not a member, a deleted message), or one PostgreSQL reported, kept
/// whole until the transaction knows whether to run again.
#[derive(Debug)]
pub(super) enum Fail {
    Store(StoreError),
    Db(tokio_postgres::Error),
}

/// Results of this store's queries.
pub(super) type R<T> = Result<T, Fail>;

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail::Store(e)
    }
}

impl From<tokio_postgres::Error> for Fail {
    fn from(e: tokio_postgres::Error) -> Self {
        Fail::Db(e)
    }
}

impl Fail {
    /// A transaction that failed this way changed nothing and may run
    /// again as it was: a deadlock or serialization failure, or a unique
    /// key that a concurrent writer (another node) committed first, which
    /// the next run finds and answers from (an idempotent replay, the
    /// pair's existing conversation).
    pub(super) fn retryable(&self) -> bool {
        let Fail::Db(e) = self else { return false };
        matches!(
            e.code(),
            Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED
                || *c == SqlState::T_R_SERIALIZATION_FAILURE
                || *c == SqlState::UNIQUE_VIOLATION
        )
    }

    /// The store error when Rust decided it (not a member, a deleted
    /// message), else the database's failure as it is, for a caller that
    /// goes on after the first kind.
    pub(super) fn decided(self) -> Result<StoreError, Fail> {
        match self {
            Fail::Store(e) => Ok(e),
            db => Err(db),
        }
    }

    /// The store error this is.
    pub(super) fn into_store(self) -> StoreError {
        match self {
            Fail::Store(e) => e,
            Fail::Db(e) => db_error(&e),
        }
    }
}

/// The store error for one of PostgreSQL's.
pub(super) fn db_error(e: &tokio_postgres::Error) -> StoreError {
    let Some(code) = e.code() else {
        // No SQLSTATE: the connection itself failed (refused, reset,
        // closed by a restarting server) or a value did not convert.
        let io = e
            .source()
            .is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some());
        return if e.is_closed() || io || e.to_string().contains("connect") {
            StoreError::Unavailable(with_causes(e))
        } else {
            StoreError::Internal(with_causes(e))
        };
    };
    let class = code.code().get(..2).unwrap_or_default();
    if *code == SqlState::UNIQUE_VIOLATION {
        StoreError::Conflict("unique constraint")
    } else if *code == SqlState::DISK_FULL {
        StoreError::Full
    } else if *code == SqlState::CHARACTER_NOT_IN_REPERTOIRE
        || *code == SqlState::UNTRANSLATABLE_CHARACTER
    {
        // The guard (guard.rs) stops NUL before it is sent; this is
        // what PostgreSQL would say of any it missed.
        StoreError::Aborted(format!("text PostgreSQL cannot hold: {e}"))
    } else if class == "08"
        || *code == SqlState::ADMIN_SHUTDOWN
        || *code == SqlState::CRASH_SHUTDOWN
        || *code == SqlState::CANNOT_CONNECT_NOW
        || *code == SqlState::TOO_MANY_CONNECTIONS
    {
        StoreError::Unavailable(e.to_string())
    } else {
        // The server's own words: a bare "db error" tells the log nothing.
        let said = e.as_db_error().map_or_else(
            || e.to_string(),
            |db| format!("PostgreSQL {}: {}", db.code().code(), db.message()),
        );
        StoreError::Internal(said)
    }
}

/// `e` and what caused it, for the log: tokio-postgres's own words are
/// only the kind ("error performing TLS handshake"), the cause says why
/// (the certificate is not trusted, the connection was refused).
fn with_causes(e: &tokio_postgres::Error) -> String {
    let mut said = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        said.push_str(": ");
        said.push_str(&c.to_string());
        cause = c.source();
    }
    said
}

/// The store error for a failure to get a connection from the pool.
pub(super) fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    use deadpool_postgres::PoolError;
    match e {
        PoolError::Timeout(what) => StoreError::Unavailable(format!(
            "no database connection within the pool's timeout ({what:?})"
        )),
        PoolError::Backend(e) => match db_error(&e) {
            StoreError::Internal(why) => StoreError::Unavailable(why),
            other => other,
        },
        PoolError::Closed => StoreError::Unavailable("the connection pool is closed".into()),
        other => StoreError::Internal(other.to_string()),
    }
}
