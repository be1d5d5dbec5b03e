//! The one SQLite connection that writes, on a thread of its own, with group
//! commit: every job that queued up while the previous transaction was being
//! committed runs in the next transaction, each inside its own savepoint, and
//! all of them are answered after that single COMMIT (and its fsync)
//! returns. Durability per acknowledgement stays intact while the cost of a
//! sync is shared by everyone who was waiting for one.

use std::sync::mpsc;
use std::thread;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::checkpointer::{CheckpointPolicy, Checkpointer};
use crate::store::{StoreError, StoreResult};

/// How many jobs one transaction takes at most, so a flood of writes still
/// gets acknowledged in steady steps.
const MAX_BATCH: usize = 512;

/// Called with the outcome of the COMMIT, to answer the job's caller.
type Finish = Box<dyn FnOnce(Result<(), String>) + Send>;
/// Runs a job's statements; `true` keeps its savepoint, `false` rolls it back.
type Job = Box<dyn FnOnce(&Connection) -> (bool, Finish) + Send>;

/// A handle to the writer thread; dropping every handle stops the thread.
pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Moves `conn` onto a new writer thread.
    /// `checkpoints` is a second read-write connection to the same
    /// database, for the checkpoint thread.
    pub fn start(
        conn: Connection,
        checkpoints: Connection,
        policy: CheckpointPolicy,
    ) -> StoreResult<Writer> {
        // Checkpoints are ours to schedule: see checkpointer.rs.
        conn.execute_batch("PRAGMA wal_autocheckpoint = 0")
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        let checkpointer = Checkpointer::start(checkpoints, policy)?;
        let (jobs, queue) = mpsc::channel::<Job>();
        thread::Builder::new()
            .name("natter-sqlite-writer".into())
            .spawn(move || run(conn, queue, checkpointer))
            .map_err(|e| StoreError::Internal(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer { jobs })
    }

    /// Runs `work` in the next group transaction and returns its result once
    /// that transaction is committed.
    pub async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel::<StoreResult<T>>();
        let job: Job = Box::new(move |conn| {
            let result = work(conn);
            let keep = result.is_ok();
            let finish: Finish = Box::new(move |commit| {
                let outcome = match commit {
                    Ok(()) => result,
                    Err(e) if e.contains("disk is full") => Err(StoreError::Full),
                    Err(e) => Err(StoreError::Internal(format!("commit failed: {e}"))),
                };
                let _ = reply.send(outcome);
            });
            (keep, finish)
        });
        self.jobs
            .send(job)
            .map_err(|_| StoreError::Internal("the writer thread has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Internal("the writer dropped a job".into()))?
    }
}

fn run(conn: Connection, queue: mpsc::Receiver<Job>, mut checkpointer: Checkpointer) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        if let Err(e) = run_cached(&conn, &["BEGIN IMMEDIATE"]) {
            tracing::error!(error = %e, "sqlite writer could not begin a transaction");
            // Dropping the jobs answers their callers with an error.
            continue;
        }
        let mut finishes = Vec::with_capacity(batch.len());
        let mut aborted = false;
        for job in batch {
            if aborted {
                // Dropping the job answers its caller with an error.
                continue;
            }
            if let Err(e) = run_cached(&conn, &["SAVEPOINT job"]) {
                tracing::error!(error = %e, "sqlite writer could not open a savepoint");
                continue;
            }
            // A job that panicked answered its caller with an error as
            // its reply went; what it wrote is rolled back like a job
            // that failed, and the writer goes on with the next.
            let ran = crate::panics::contained("a write of the SQLite writer", || job(&conn));
            let end: &[&str] = match ran {
                Some((true, _)) => &["RELEASE job"],
                _ => &["ROLLBACK TO job", "RELEASE job"],
            };
            if let Err(e) = run_cached(&conn, end) {
                tracing::error!(error = %e, "sqlite writer could not close a savepoint");
            }
            finishes.extend(ran.map(|(_, finish)| finish));
            // Some errors (disk full, I/O) make SQLite roll back the whole
            // transaction. Running further jobs would commit each on its
            // own, outside the group, and then report them as failed.
            if conn.is_autocommit() {
                tracing::error!("sqlite rolled back the group transaction; failing the batch");
                aborted = true;
            }
        }
        let executed = started.elapsed();
        let commit = if aborted {
            Err("the transaction was rolled back".to_owned())
        } else {
            run_cached(&conn, &["COMMIT"]).map_err(|e| e.to_string())
        };
        tracing::debug!(
            batch.jobs = finishes.len(),
            execute_us = executed.as_micros() as u64,
            commit_us = (started.elapsed() - executed).as_micros() as u64,
            "group commit"
        );
        if commit.is_err() && !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        for finish in finishes {
            finish(commit.clone());
        }
        checkpointer.after_commit(&conn);
    }
}

/// Runs transaction-control statements through the statement cache: they
/// run several times per group commit.
fn run_cached(conn: &Connection, statements: &[&str]) -> rusqlite::Result<()> {
    for sql in statements {
        conn.prepare_cached(sql)?.execute([])?;
    }
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use std::path::Path;

    use rusqlite::Connection;

    use super::Writer;
    use crate::store::StoreError;
    use crate::store::sqlite::checkpointer::CheckpointPolicy;

    /// A writer on a new database at `path`, made by `schema` (which sets
    /// its pragmas and tables), checkpointed by `policy`.
    pub(in crate::store::sqlite) fn writer_on(
        path: &Path,
        schema: &str,
        policy: CheckpointPolicy,
    ) -> Writer {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(schema).unwrap();
        Writer::start(conn, Connection::open(path).unwrap(), policy).unwrap()
    }

    /// A job that panics half-way (a fault in a query's code) fails alone:
    /// its caller gets an error, what it wrote is rolled back, and the
    /// writer commits the jobs after it.
    #[tokio::test]
    async fn a_job_that_panics_fails_alone_and_the_writer_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let writer = writer_on(
            &path,
            "PRAGMA journal_mode = WAL; CREATE TABLE t (x TEXT);",
            CheckpointPolicy::default(),
        );
        let insert = |c: &Connection, x: &str| {
            c.execute("INSERT INTO t VALUES (?1)", [x])
                .map_err(|e| StoreError::Internal(e.to_string()))
        };
        let failed: Result<(), _> = writer
            .write(move |c| {
                insert(c, "half-way")?;
                panic!("a fault on purpose");
            })
            .await;
        assert!(matches!(failed, Err(StoreError::Internal(_))), "{failed:?}");
        writer.write(move |c| insert(c, "after")).await.unwrap();
        let rows: Vec<String> = Connection::open(&path)
            .unwrap()
            .prepare("SELECT x FROM t")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows, ["after"]);
    }
}
