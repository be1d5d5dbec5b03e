//! WAL checkpoints off the writer's path. Copying committed pages from the
//! WAL back into the database file ends with an fsync of that file, which
//! takes milliseconds under load; run inside a COMMIT (SQLite's default) it
//! delays every acknowledgement of the batch. Here a thread of its own does
//! the bulk of the copying on its own connection while the writer goes on
//! committing. A checkpoint that runs beside the writer never catches up
//! with it completely, and a WAL restarts from its beginning only after one
//! did; so once the WAL has grown past [`CheckpointPolicy::restart_frames`],
//! the writer copies the few frames committed meanwhile itself (a pause of
//! a few milliseconds for the next batch), and the WAL restarts at its next
//! transaction unless a reader still uses an older snapshot; then the next
//! background checkpoint finds it long again and the writer tries again.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{self, TrySendError};
use std::thread;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::store::{StoreError, StoreResult};

/// When checkpoints run.
#[derive(Clone, Copy, Debug)]
pub struct CheckpointPolicy {
    /// Time between two requests for a background checkpoint, while
    /// commits arrive. Each checkpoint ends with an fsync of the database
    /// file that competes with the WAL's fsyncs, so they should be few;
    /// and the longer the interval, the more often a page rewritten by
    /// many commits (a busy room's last index leaf) is copied back once.
    pub interval: Duration,
    /// WAL length in frames past which the writer completes a background
    /// checkpoint itself, so the WAL restarts.
    pub restart_frames: i64,
}

impl Default for CheckpointPolicy {
    /// The heaviest write load measured on the reference machine
    /// (docs/performance.md, S4) writes ~25,000 frames of 1 KiB pages in
    /// half a second; completing a checkpoint pauses the writer for ~15 ms.
    fn default() -> Self {
        CheckpointPolicy {
            interval: Duration::from_millis(500),
            restart_frames: 50_000,
        }
    }
}

/// The writer's handle to the checkpoint thread; dropping it stops the thread.
pub struct Checkpointer {
    policy: CheckpointPolicy,
    last_request: Instant,
    wake: mpsc::SyncSender<()>,
    /// The WAL's length in frames when the last background checkpoint
    /// finished, or -1 when none finished since the writer last looked.
    finished: Arc<AtomicI64>,
}

impl Checkpointer {
    /// Moves `conn` (a read-write connection to the same database) onto a
    /// new thread that checkpoints whenever asked.
    pub fn start(conn: Connection, policy: CheckpointPolicy) -> StoreResult<Checkpointer> {
        // The database file's fsync is what makes the copy durable before
        // the WAL is reused; never waiting on locks is PASSIVE's own rule.
        conn.execute_batch("PRAGMA synchronous = FULL")
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        let (wake, requests) = mpsc::sync_channel::<()>(1);
        let finished = Arc::new(AtomicI64::new(-1));
        let done = finished.clone();
        thread::Builder::new()
            .name("natter-sqlite-checkpoint".into())
            .spawn(move || {
                while requests.recv().is_ok() {
                    if let Some(frames) = checkpoint(&conn, "background") {
                        done.store(frames, Ordering::Release);
                    }
                }
            })
            .map_err(|e| {
                StoreError::Internal(format!("cannot start the checkpoint thread: {e}"))
            })?;
        Ok(Checkpointer {
            policy,
            last_request: Instant::now(),
            wake,
            finished,
        })
    }

    /// Called by the writer on its own connection after each group commit
    /// has been answered, so no acknowledgement waits for a checkpoint.
    pub fn after_commit(&mut self, writer: &Connection) {
        let finished = self.finished.swap(-1, Ordering::AcqRel);
        if finished >= self.policy.restart_frames {
            if finished >= 4 * self.policy.restart_frames {
                tracing::warn!(
                    wal.frames = finished,
                    "the WAL keeps growing: a long-running read may be holding an old snapshot"
                );
            }
            // Copy what was committed while the background checkpoint ran;
            // the WAL is then complete in the database file and restarts.
            checkpoint(writer, "writer");
        }
        if self.last_request.elapsed() >= self.policy.interval {
            self.last_request = Instant::now();
            match self.wake.try_send(()) {
                // A request while one is pending adds nothing.
                Ok(()) | Err(TrySendError::Full(())) => {}
                // The checkpoint thread is gone: checkpoint here, as
                // SQLite itself would, rather than let the WAL grow.
                Err(TrySendError::Disconnected(())) => {
                    checkpoint(writer, "writer");
                }
            }
        }
    }
}

/// Runs a PASSIVE checkpoint, which never waits for readers or writers:
/// pages a reader still needs, or frames committed while it runs, are left
/// for the next one. Returns the WAL's length in frames if it ran.
fn checkpoint(conn: &Connection, who: &'static str) -> Option<i64> {
    let started = Instant::now();
    match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, i64>(1)?,
            row.get::<_, i64>(2)?,
        ))
    }) {
        Ok((busy, frames, copied)) => {
            tracing::debug!(
                checkpoint.by = who,
                busy,
                wal.frames = frames,
                wal.copied = copied,
                checkpoint_us = started.elapsed().as_micros() as u64,
                "checkpoint"
            );
            (busy == 0).then_some(frames)
        }
        Err(e) => {
            tracing::warn!(error = %e, checkpoint.by = who, "sqlite checkpoint failed");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rusqlite::Connection;

    use super::CheckpointPolicy;
    use crate::store::sqlite::writer::tests::writer_on;

    /// Under a steady stream of commits the WAL is copied back in the
    /// background and restarts, so its file stops growing.
    #[tokio::test]
    async fn the_wal_restarts_under_steady_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let policy = CheckpointPolicy {
            interval: Duration::from_millis(2),
            restart_frames: 200,
        };
        let writer = writer_on(
            &path,
            "PRAGMA page_size = 1024;
             PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             CREATE TABLE t (x BLOB);",
            policy,
        );
        let commits = 2_000;
        for _ in 0..commits {
            // One 1 KiB page per row: at least one WAL frame per commit.
            writer
                .write(|c| {
                    c.execute("INSERT INTO t VALUES (zeroblob(600))", [])
                        .map_err(|e| crate::store::StoreError::Internal(e.to_string()))
                })
                .await
                .unwrap();
        }
        let frame = 24 + 1024;
        let wal = std::fs::metadata(dir.path().join("t.db-wal"))
            .unwrap()
            .len();
        assert!(
            wal < 1_000 * frame,
            "the WAL holds {} frames after {commits} commits",
            wal / frame
        );
        let reader = Connection::open(&path).unwrap();
        let rows: i64 = reader
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, commits);
    }
}
