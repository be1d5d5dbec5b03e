//! A stopped data folder read whole, for `natter migrate-store`: the
//! folder's lock taken (so no natter starts on it, and none is running),
//! the database opened read-only and checked as a start checks it, and
//! every table read in one read transaction, a batch at a time, so the
//! copy is one consistent moment and its memory does not grow with the
//! folder.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::folder::{self, FolderLock, refused};
use super::schema;
use crate::store::migrate::tables::{Batch, Cell, Kind, TABLES, Table};
use crate::store::{StoreError, StoreResult};

/// A data folder opened for copying out, locked until dropped.
pub(crate) struct Source {
    conn: Connection,
    path: PathBuf,
    _lock: FolderLock,
}

/// How big a batch may grow: rows, and about how many bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BatchSize {
    /// Rows at most: what a `COPY` is sized by.
    pub rows: usize,
    /// Bytes at most, roughly: what memory is bounded by.
    pub bytes: usize,
}

impl Source {
    /// Locks `data_dir` (refused while a natter runs on it), opens its
    /// `natter.db` read-only and checks that it is natter's, whole, and
    /// at the schema version this natter writes; then starts the read
    /// transaction every later read shares.
    pub(crate) fn open(data_dir: &Path) -> StoreResult<Source> {
        let path = folder::database_path(data_dir);
        if !path.exists() {
            return Err(refused(format!(
                "{} does not exist: there is no deployment to migrate in {}",
                path.display(),
                data_dir.display()
            )));
        }
        folder::check_file(&path)?;
        let lock = folder::lock(data_dir)?;
        let sql = |e: rusqlite::Error| refused(format!("cannot read {}: {e}", path.display()));
        let conn =
            Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(sql)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(sql)?;
        folder::check_database_readonly(&conn, &path)?;
        let version: usize = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sql)?;
        let newest = schema::newest_version();
        if version < newest {
            return Err(refused(format!(
                "{} has schema version {version}, and this natter copies version {newest}: \
                 start this natter on the folder once (it upgrades the schema), stop it, then migrate",
                path.display()
            )));
        }
        if version > newest {
            return Err(refused(format!(
                "{} has schema version {version}, written by a newer natter; \
                 this one knows versions up to {newest}: migrate with that natter",
                path.display()
            )));
        }
        // One snapshot for every read: counts and rows agree.
        conn.execute_batch("BEGIN").map_err(sql)?;
        Ok(Source {
            conn,
            path,
            _lock: lock,
        })
    }

    /// The deployment id the folder's cursors are signed with.
    pub(crate) fn deployment_id(&self) -> StoreResult<u64> {
        let stored: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'deployment_id'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.failed("meta", e))?;
        stored
            .and_then(|hex| u64::from_str_radix(&hex, 16).ok())
            .ok_or_else(|| {
                refused(format!(
                    "{} has no deployment id natter can read",
                    self.path.display()
                ))
            })
    }

    /// How many rows `table` holds.
    pub(crate) fn count(&self, table: &Table) -> StoreResult<u64> {
        // Table names are the constants of `TABLES`.
        let rows: i64 = self
            .conn
            .query_row(&format!("SELECT COUNT(*) FROM {}", table.name), [], |r| {
                r.get(0)
            })
            .map_err(|e| self.failed(table.name, e))?;
        Ok(rows as u64)
    }

    /// Reads every row of `TABLES[table]` in batches of at most `size`,
    /// handing each to `send`; stops early (with `Ok`) when `send` says
    /// no one wants more.
    pub(crate) fn read(
        &self,
        table: usize,
        size: BatchSize,
        mut send: impl FnMut(Batch) -> bool,
    ) -> StoreResult<()> {
        let spec = &TABLES[table];
        let columns: Vec<&str> = spec.columns.iter().map(|(name, _)| *name).collect();
        let failed = |e| self.failed(spec.name, e);
        let mut select = self
            .conn
            .prepare(&format!("SELECT {} FROM {}", columns.join(", "), spec.name))
            .map_err(failed)?;
        let mut rows = select.query([]).map_err(failed)?;
        let mut batch = Vec::new();
        let mut bytes = 0;
        while let Some(row) = rows.next().map_err(failed)? {
            let cells = spec
                .columns
                .iter()
                .enumerate()
                .map(|(i, (_, kind))| cell(row, i, *kind))
                .collect::<rusqlite::Result<Vec<Cell>>>()
                .map_err(failed)?;
            bytes += cells.iter().map(Cell::size).sum::<usize>();
            batch.push(cells);
            if batch.len() >= size.rows || bytes >= size.bytes {
                let rows = std::mem::take(&mut batch);
                bytes = 0;
                if !send(Batch { table, rows }) {
                    return Ok(());
                }
            }
        }
        if !batch.is_empty() {
            send(Batch { table, rows: batch });
        }
        Ok(())
    }

    fn failed(&self, table: &str, e: rusqlite::Error) -> StoreError {
        StoreError::Internal(format!(
            "cannot read the table {table} of {}: {e}",
            self.path.display()
        ))
    }
}

/// Column `i` of `row` as a value of `kind`.
fn cell(row: &rusqlite::Row<'_>, i: usize, kind: Kind) -> rusqlite::Result<Cell> {
    Ok(match kind {
        Kind::Int => Cell::Int(row.get(i)?),
        Kind::Text => Cell::Text(row.get(i)?),
        Kind::Bytes => Cell::Bytes(row.get(i)?),
        Kind::Bool => Cell::Bool(row.get::<_, Option<i64>>(i)?.map(|v| v != 0)),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use rusqlite::Connection;

    use super::super::schema;
    use super::{BatchSize, Source};
    use crate::store::migrate::tables::{Cell, SQLITE_ONLY, TABLES};

    /// Every table and column of the newest SQLite schema is copied, or
    /// named in `SQLITE_ONLY`: a migration that adds one must say how it
    /// reaches PostgreSQL.
    #[test]
    fn the_copy_knows_every_table_and_column() {
        let mut conn = Connection::open_in_memory().unwrap();
        schema::migrate(&mut conn).unwrap();
        let tables: BTreeSet<String> = conn
            .prepare(
                "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            )
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let copied: BTreeSet<String> = TABLES.iter().map(|t| t.name.to_owned()).collect();
        assert_eq!(tables, copied);
        for table in TABLES {
            let columns: BTreeSet<String> = conn
                .prepare(&format!(
                    "SELECT name FROM pragma_table_info('{}')",
                    table.name
                ))
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let known: BTreeSet<String> = table
                .columns
                .iter()
                .map(|(c, _)| (*c).to_owned())
                .chain(
                    SQLITE_ONLY
                        .iter()
                        .filter(|(t, _)| *t == table.name)
                        .map(|(_, c)| (*c).to_owned()),
                )
                .collect();
            assert_eq!(columns, known, "the columns of {}", table.name);
        }
    }

    /// Rows come in batches no bigger than asked, by count and by bytes,
    /// all of them, and reading stops when the receiver is gone.
    #[test]
    fn rows_come_in_bounded_batches() {
        let folder = tempfile::tempdir().unwrap();
        {
            let store = super::super::SqliteStore::open(folder.path()).unwrap();
            drop(store);
        }
        let mut conn = Connection::open(folder.path().join("natter.db")).unwrap();
        let tx = conn.transaction().unwrap();
        for i in 0..25 {
            tx.execute(
                "INSERT INTO users (id, username, display_name, password_hash, created_at)
                 VALUES (?1, ?2, 'x', ?3, 0)",
                rusqlite::params![i + 1, format!("user{i}"), "h".repeat(100)],
            )
            .unwrap();
        }
        tx.commit().unwrap();
        drop(conn);

        let source = Source::open(folder.path()).unwrap();
        let users = TABLES.iter().position(|t| t.name == "users").unwrap();
        assert_eq!(source.count(&TABLES[users]).unwrap(), 25);
        let mut sizes = Vec::new();
        let mut ids = Vec::new();
        let size = BatchSize {
            rows: 10,
            bytes: 1_000_000,
        };
        source
            .read(users, size, |batch| {
                sizes.push(batch.rows.len());
                ids.extend(batch.rows.iter().map(|r| r[0].clone()));
                true
            })
            .unwrap();
        assert_eq!(sizes, [10, 10, 5]);
        assert_eq!(
            ids,
            (1..=25).map(|i| Cell::Int(Some(i))).collect::<Vec<_>>()
        );

        let mut sizes = Vec::new();
        let small = BatchSize {
            rows: 1000,
            bytes: 500,
        };
        source
            .read(users, small, |batch| {
                sizes.push(batch.rows.len());
                sizes.len() < 2
            })
            .unwrap();
        assert!(sizes.iter().all(|&n| n <= 4), "{sizes:?}");
        assert_eq!(sizes.len(), 2, "stopped when told");
    }

    /// While natter runs on the folder, it cannot be copied.
    #[test]
    fn a_folder_in_use_is_refused() {
        let folder = tempfile::tempdir().unwrap();
        let store = super::super::SqliteStore::open(folder.path()).unwrap();
        let refused = Source::open(folder.path()).err().unwrap().to_string();
        assert!(refused.contains("another natter"), "{refused}");
        drop(store);
        Source::open(folder.path()).unwrap();
        let empty = tempfile::tempdir().unwrap();
        let refused = Source::open(empty.path()).err().unwrap().to_string();
        assert!(refused.contains("does not exist"), "{refused}");
    }
}
