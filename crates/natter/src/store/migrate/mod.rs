//! `natter migrate-store`: a single-node deployment moved from its
//! SQLite data folder onto PostgreSQL, row for row, so that everything a
//! node reads (accounts and their sessions, rooms, memberships with read
//! markers and notification choices, every event under its seq, the
//! current state of changed messages, reactions, mentions, invites, site
//! token ids, archive keys) and the deployment's identity (its id and
//! cursor key, which sign every client's cursor) are the same on the new
//! store: people stay logged in and clients resume from their cursors.
//!
//! The SQLite side (`sqlite/copy_out.rs`) reads the stopped folder in
//! one read transaction on a thread of its own; the PostgreSQL side
//! (`postgres/copy_in.rs`) writes everything in one transaction, which
//! is what makes the command safe to run again: a run that stops midway
//! commits nothing, and a run after a finished one says so. Batches
//! travel between the two through a channel of two, so memory stays at
//! a few batches however big the folder is. `tables.rs` is the list of
//! what is copied.

pub(crate) mod tables;

use std::path::PathBuf;
use std::time::Instant;

use tokio::sync::mpsc;

use self::tables::{Batch, TABLES};
use super::postgres::PostgresOptions;
use super::postgres::copy_in::{self, CopyIn, SourceFacts};
use super::sqlite::copy_out::{BatchSize, Source};
use super::{StoreError, StoreResult};
use crate::model::{Millis, now_ms};
use crate::progress::Progress;

/// Rows per batch unless told otherwise: big enough that a `COPY` costs
/// little per row, small enough to keep memory flat.
pub const DEFAULT_BATCH_ROWS: usize = 5_000;
/// A batch also ends at about this many bytes, so one of long messages
/// is no bigger in memory than one of short ones.
const BATCH_BYTES: usize = 8 << 20;
/// Batches read ahead of the writer.
const READ_AHEAD: usize = 2;

/// What to move where.
#[derive(Clone, Debug)]
pub struct MigrateOptions {
    /// The SQLite data folder (natter must not be running on it).
    pub from: PathBuf,
    /// The PostgreSQL database (and schema) to fill; it must hold no
    /// deployment yet.
    pub to: PostgresOptions,
    /// Rows per batch read and written ([`DEFAULT_BATCH_ROWS`]).
    pub batch_rows: usize,
    /// For the crash test only: end the process, as a crash would,
    /// after this many batches are written and before the commit.
    #[doc(hidden)]
    pub crash_after_batches: Option<u64>,
}

impl MigrateOptions {
    /// Moves `from` into `to`, in batches of the default size.
    pub fn new(from: impl Into<PathBuf>, to: PostgresOptions) -> MigrateOptions {
        MigrateOptions {
            from: from.into(),
            to,
            batch_rows: DEFAULT_BATCH_ROWS,
            crash_after_batches: None,
        }
    }
}

/// How a migration ended.
#[derive(Debug)]
pub enum Outcome {
    /// The deployment was copied and committed.
    Copied(Summary),
    /// An earlier run copied this deployment already, at `at` (ms since
    /// the epoch); nothing was written.
    AlreadyDone { deployment_id: u64, at: Millis },
}

/// What a finished copy moved, for the operator to compare with the
/// folder.
#[derive(Debug)]
pub struct Summary {
    /// The deployment id kept, which the operator can match with the
    /// folder's (clients' cursors carry it).
    pub deployment_id: u64,
    /// Rows per table, in the order they were copied.
    pub tables: Vec<Copied>,
    /// How long the whole command took, checks included.
    pub seconds: f64,
}

/// The rows of one table that were copied.
#[derive(Debug)]
pub struct Copied {
    /// The table's name in both stores.
    pub table: &'static str,
    /// What its rows are, in words ("memberships").
    pub label: &'static str,
    /// Rows copied, which is every row the folder held.
    pub rows: u64,
}

/// Copies the deployment of `options.from` into `options.to`, showing
/// progress on stderr: a bar on a terminal, a line every few seconds
/// otherwise.
pub async fn migrate_store(options: MigrateOptions) -> StoreResult<Outcome> {
    let started = Instant::now();
    let progress = Progress::new();
    progress.note("checking the data folder");
    let from = options.from.clone();
    let opened = tokio::task::spawn_blocking(move || {
        let source = Source::open(&from)?;
        let facts = SourceFacts {
            deployment_id: source.deployment_id()?,
            rows: TABLES
                .iter()
                .map(|t| source.count(t))
                .collect::<StoreResult<_>>()?,
            at: now_ms(),
        };
        Ok::<_, StoreError>((source, facts))
    })
    .await
    .map_err(|e| StoreError::Internal(format!("the data folder's check failed: {e}")))
    .and_then(|opened| opened);
    let (source, facts) = match opened {
        Ok(opened) => opened,
        Err(e) => {
            progress.finish();
            return Err(e);
        }
    };
    let total: u64 = facts.rows.iter().sum();
    progress.set_total(total);

    let size = BatchSize {
        rows: options.batch_rows.max(1),
        bytes: BATCH_BYTES,
    };
    let (send, mut batches) = mpsc::channel::<StoreResult<Batch>>(READ_AHEAD);
    // The reader hands the source back when done: the folder stays
    // locked until the copy is committed.
    let reader = std::thread::spawn(move || {
        for table in 0..TABLES.len() {
            let read = source.read(table, size, |batch| send.blocking_send(Ok(batch)).is_ok());
            if let Err(e) = read {
                let _ = send.blocking_send(Err(e));
                break;
            }
        }
        source
    });

    let mut done = 0u64;
    let mut written = 0u64;
    let mut table = None;
    let crash_after = options.crash_after_batches;
    let rows = facts.rows.clone();
    let mut copied = |batch: &Batch| {
        if table != Some(batch.table) {
            table = Some(batch.table);
            progress.say(&format!(
                "copying {} ({} rows)",
                TABLES[batch.table].label, rows[batch.table]
            ));
        }
        done += batch.rows.len() as u64;
        written += 1;
        progress.set_done(done);
        progress.note(&format!(
            "copying {}: {done} of {total} rows",
            TABLES[batch.table].label
        ));
        if crash_after == Some(written) {
            // The test of a crash midway: gone without a commit.
            std::process::exit(137);
        }
    };
    let result = copy_in::copy_in(&options.to, &facts, &mut batches, &mut copied).await;
    drop(batches);
    let source = reader
        .join()
        .map_err(|_| StoreError::Internal("the data folder's reader failed".into()))?;
    progress.finish();
    drop(source);
    Ok(match result? {
        CopyIn::AlreadyDone { at } => Outcome::AlreadyDone {
            deployment_id: facts.deployment_id,
            at,
        },
        CopyIn::Copied => Outcome::Copied(Summary {
            deployment_id: facts.deployment_id,
            tables: TABLES
                .iter()
                .zip(&facts.rows)
                .map(|(t, &rows)| Copied {
                    table: t.name,
                    label: t.label,
                    rows,
                })
                .collect(),
            seconds: started.elapsed().as_secs_f64(),
        }),
    })
}
