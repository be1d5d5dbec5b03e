//! A whole deployment written into PostgreSQL, for `natter
//! migrate-store`: in **one transaction**, so a copy that stops midway
//! (a crash, a lost connection, a refusal) leaves the target as it was
//! and the next run starts it again from nothing; and only into a
//! target that holds no deployment yet.
//!
//! The transaction first creates or migrates the schema as a starting
//! node does (under the same advisory lock, so nodes that start
//! meanwhile wait for the copy and then find it) and locks every table
//! against writers; then it checks that the target is empty, writes the
//! batches with binary `COPY`, checks that every row arrived, moves the
//! identity columns past the copied ids, and marks the copy done in
//! `meta` (`migrated_from_sqlite`) before it commits. A second run finds
//! the mark and the same deployment id, and says it is done.

use std::pin::pin;

use tokio::sync::mpsc;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

use super::fail::{Fail, R, db_error};
use super::{PostgresOptions, pool, schema};
use crate::model::Millis;
use crate::store::migrate::tables::{Batch, Cell, Kind, TABLES, Table};
use crate::store::{StoreError, StoreResult};

/// The key in `meta` that says a copy finished, with its time (ms).
const DONE_KEY: &str = "migrated_from_sqlite";

/// What the copy knows of its source before it starts.
pub(crate) struct SourceFacts {
    /// The source's deployment id: a copy of it is "done" only when the
    /// target holds the same.
    pub deployment_id: u64,
    /// Rows in each of [`TABLES`], counted in the read that is copied.
    pub rows: Vec<u64>,
    /// When the copy runs, for the mark.
    pub at: Millis,
}

/// How a copy ended, when it did not fail.
#[derive(Debug)]
pub(crate) enum CopyIn {
    /// Every row was written and committed.
    Copied,
    /// An earlier run copied this deployment already, at `at`; nothing
    /// was written.
    AlreadyDone { at: Millis },
}

/// Copies the batches `batches` brings into the database of `options`,
/// as described above; `copied` hears of each batch once it is written.
pub(crate) async fn copy_in(
    options: &PostgresOptions,
    source: &SourceFacts,
    batches: &mut mpsc::Receiver<StoreResult<Batch>>,
    copied: &mut (dyn FnMut(&Batch) + Send),
) -> StoreResult<CopyIn> {
    let mut options = options.clone();
    options.max_connections = 1;
    let pool = pool::build(&options)?;
    let mut conn = pool::connection(&pool).await?;
    let tx = conn.transaction().await.map_err(|e| db_error(&e))?;
    let result = async {
        schema::check_durability(&tx, options.allow_unsafe_commit).await?;
        schema::migrate(&tx, options.schema.as_deref()).await?;
        let names: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
        // Table names are the constants of `TABLES`.
        tx.batch_execute(&format!(
            "LOCK TABLE {} IN EXCLUSIVE MODE",
            names.join(", ")
        ))
        .await?;
        if let Some(at) = already_done(&tx, source.deployment_id).await? {
            return Ok(CopyIn::AlreadyDone { at });
        }
        refuse_unless_empty(&tx).await?;
        let mut written = vec![0u64; TABLES.len()];
        while let Some(batch) = batches.recv().await {
            let batch = batch?;
            written[batch.table] += write(&tx, &batch).await?;
            copied(&batch);
        }
        for (i, table) in TABLES.iter().enumerate() {
            if written[i] != source.rows[i] {
                return Err(StoreError::Internal(format!(
                    "{} of {} rows of {} were copied: nothing was committed",
                    written[i], source.rows[i], table.name
                ))
                .into());
            }
            if table.identity {
                continue_identity(&tx, table).await?;
            }
        }
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ($1, $2)",
            &[&DONE_KEY, &source.at.to_string()],
        )
        .await?;
        Ok::<_, Fail>(CopyIn::Copied)
    }
    .await
    .map_err(Fail::into_store)?;
    match result {
        CopyIn::Copied => tx.commit().await.map_err(|e| db_error(&e))?,
        // Nothing was written, but the schema may have been made: undo it.
        CopyIn::AlreadyDone { .. } => tx.rollback().await.map_err(|e| db_error(&e))?,
    }
    Ok(result)
}

/// When the target holds a finished copy of `deployment_id`, its time;
/// a finished copy of another deployment is refused.
async fn already_done(
    tx: &tokio_postgres::Transaction<'_>,
    deployment_id: u64,
) -> R<Option<Millis>> {
    let row = tx
        .query_opt(
            "SELECT d.value, i.value FROM meta d, meta i
             WHERE d.key = $1 AND i.key = 'deployment_id'",
            &[&DONE_KEY],
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    let (at, target_id): (String, String) = (row.try_get(0)?, row.try_get(1)?);
    if target_id != format!("{deployment_id:016x}") {
        return Err(StoreError::Refused(format!(
            "the target already holds another deployment (id {target_id}), copied from another \
             data folder: migrate into an empty database or schema; nothing was written"
        ))
        .into());
    }
    Ok(Some(at.parse().unwrap_or_default()))
}

/// Refuses a target with rows in any table but `meta` (whose identity,
/// made when a node first opened the database, the copy replaces).
async fn refuse_unless_empty(tx: &tokio_postgres::Transaction<'_>) -> R<()> {
    let mut holding = Vec::new();
    for table in TABLES.iter().filter(|t| !t.replaces) {
        let rows: i64 = tx
            .query_one(&format!("SELECT COUNT(*) FROM {}", table.name), &[])
            .await?
            .try_get(0)?;
        if rows > 0 {
            holding.push(format!("{} {rows}", table.label));
        }
    }
    if holding.is_empty() {
        return Ok(());
    }
    Err(StoreError::Refused(format!(
        "the target is not empty ({}): migrate-store copies a deployment only into a database \
         (or schema) without one; nothing was written",
        holding.join(", ")
    ))
    .into())
}

/// Writes `batch`; returns how many rows it wrote.
async fn write(tx: &tokio_postgres::Transaction<'_>, batch: &Batch) -> R<u64> {
    let table = &TABLES[batch.table];
    let in_table = |e: tokio_postgres::Error| -> Fail {
        match db_error(&e) {
            StoreError::Internal(why) => {
                StoreError::Internal(format!("writing {}: {why}", table.name)).into()
            }
            StoreError::Aborted(why) => {
                StoreError::Aborted(format!("writing {}: {why}", table.name)).into()
            }
            _ => Fail::Db(e),
        }
    };
    let columns: Vec<&str> = table.columns.iter().map(|(name, _)| *name).collect();
    if table.replaces {
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT ({}) DO UPDATE SET {}",
            table.name,
            columns.join(", "),
            (1..=columns.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", "),
            columns[0],
            columns[1..]
                .iter()
                .map(|c| format!("{c} = EXCLUDED.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut written = 0;
        for row in &batch.rows {
            written += tx.execute(&sql, &values(row)).await.map_err(in_table)?;
        }
        return Ok(written);
    }
    let sink = tx
        .copy_in(&format!(
            "COPY {} ({}) FROM STDIN (FORMAT binary)",
            table.name,
            columns.join(", ")
        ))
        .await
        .map_err(in_table)?;
    let types: Vec<Type> = table
        .columns
        .iter()
        .map(|(_, kind)| pg_type(*kind))
        .collect();
    let mut writer = pin!(BinaryCopyInWriter::new(sink, &types));
    for row in &batch.rows {
        writer
            .as_mut()
            .write(&values(row))
            .await
            .map_err(in_table)?;
    }
    writer.finish().await.map_err(in_table)
}

/// Moves `table`'s identity past its highest copied id, so the next row
/// a node creates gets a new one.
async fn continue_identity(tx: &tokio_postgres::Transaction<'_>, table: &Table) -> R<()> {
    tx.query_one(
        &format!(
            "SELECT setval(pg_get_serial_sequence($1, 'id'),
                           COALESCE((SELECT MAX(id) FROM {}), 0) + 1, false)",
            table.name
        ),
        &[&table.name],
    )
    .await?;
    Ok(())
}

fn pg_type(kind: Kind) -> Type {
    match kind {
        Kind::Int => Type::INT8,
        Kind::Text => Type::TEXT,
        Kind::Bytes => Type::BYTEA,
        Kind::Bool => Type::BOOL,
    }
}

fn values(row: &[Cell]) -> Vec<&(dyn ToSql + Sync)> {
    row.iter()
        .map(|cell| -> &(dyn ToSql + Sync) {
            match cell {
                Cell::Int(v) => v,
                Cell::Text(v) => v,
                Cell::Bytes(v) => v,
                Cell::Bool(v) => v,
            }
        })
        .collect()
}
