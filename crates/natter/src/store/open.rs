//! Which store a node runs on, picked from the configuration in one
//! place, so the server and the commands that open the store (imports,
//! exports) cannot disagree.

use std::path::Path;
use std::sync::Arc;

use super::postgres::{PostgresOptions, PostgresStore, redacted};
use super::sqlite::SqliteStore;
use super::{Store, StoreError, StoreResult};

/// The database a node keeps its data in.
#[derive(Clone, Debug)]
pub enum StoreChoice {
    /// The embedded default: `natter.db` in the data folder (which the
    /// configuration keeps apart, so a test or a flag that moves the
    /// folder moves the store with it).
    Sqlite,
    /// A PostgreSQL database, shared by every node of a deployment.
    Postgres(PostgresOptions),
}

impl StoreChoice {
    /// The choice a `store` setting names: unset (or `sqlite`) is the
    /// SQLite database in `data_dir`; a `postgres://` or `postgresql://`
    /// URL is PostgreSQL. Anything else is refused, so a typo cannot
    /// quietly start an empty SQLite deployment.
    pub fn from_setting(
        store: Option<&str>,
        allow_unsafe_commit: bool,
    ) -> StoreResult<StoreChoice> {
        match store.map(str::trim) {
            None | Some("") | Some("sqlite") => Ok(StoreChoice::Sqlite),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                let mut options = PostgresOptions::new(url);
                options.allow_unsafe_commit = allow_unsafe_commit;
                Ok(StoreChoice::Postgres(options))
            }
            Some(other) => Err(StoreError::Refused(format!(
                "store {:?}: use a postgres:// URL, or leave it unset for SQLite in the data folder",
                redacted(other)
            ))),
        }
    }

    /// Opens the chosen store (SQLite in `data_dir`): locks, checks and
    /// migrates it.
    pub async fn open(&self, data_dir: &Path) -> StoreResult<Arc<dyn Store>> {
        Ok(match self {
            StoreChoice::Sqlite => Arc::new(SqliteStore::open(data_dir)?),
            StoreChoice::Postgres(options) => Arc::new(PostgresStore::open(options.clone()).await?),
        })
    }
}

impl std::fmt::Display for StoreChoice {
    /// For logs: `sqlite`, or the URL without its password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreChoice::Sqlite => f.write_str("sqlite"),
            StoreChoice::Postgres(options) => write!(f, "{}", redacted(&options.url)),
        }
    }
}
