//! Sends that arrive while others are being written go to PostgreSQL
//! together: one statement (`natter_send_batch`, schema.rs) and one
//! commit for all of them, as the SQLite store's writer commits the
//! sends that queue up meanwhile in one transaction. A writer takes
//! everything queued when it comes free, up to [`MOST`]; on a quiet node
//! that is one send, written at once. Each send gets its own answer: a
//! refused one (not a member, say) refuses only itself. A send that
//! waited in the queue longer than the pool's wait for a connection is
//! answered `Unavailable` untried, as a call that got no connection is:
//! behind a database that stopped answering, the queue empties within
//! the pool's wait and a call's timeout, however long it was.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, mpsc, oneshot};

use super::calls::Db;
use super::queries;
use crate::store::{Appended, NewEvent, StoreError, StoreResult};

/// Batches written at once per node, each on a connection of the pool.
const WRITERS: usize = 4;
/// The most sends in one batch: a batch holds every room it writes to
/// until it commits, so a bigger one makes each send wait longer.
const MOST: usize = 64;
/// Sends waiting for a writer before a caller waits to queue.
const QUEUE: usize = 4_096;

/// A send on its way to a writer, with where its answer goes.
struct Queued {
    send: NewEvent,
    since: Instant,
    answer: oneshot::Sender<StoreResult<Appended>>,
}

/// The queue of sends and the writers that take from it; the writers end
/// when the store is dropped.
pub(super) struct Sends {
    queue: mpsc::Sender<Queued>,
}

impl Sends {
    /// Starts the writers, on the current tokio runtime; a send waits
    /// for one at most `wait` (the pool's wait for a connection).
    pub(super) fn start(db: Db, wait: Duration) -> Sends {
        let (queue, waiting) = mpsc::channel(QUEUE);
        let waiting = Arc::new(Mutex::new(waiting));
        for _ in 0..WRITERS {
            tokio::spawn(write_batches(db.clone(), waiting.clone(), wait));
        }
        Sends { queue }
    }

    /// Writes `send` (an `Action::Send`) in the next batch and answers
    /// once that batch has committed.
    pub(super) async fn send(&self, send: NewEvent) -> StoreResult<Appended> {
        let (answer, answered) = oneshot::channel();
        self.queue
            .send(Queued {
                send,
                since: Instant::now(),
                answer,
            })
            .await
            .map_err(|_| StoreError::Unavailable("the store is shutting down".into()))?;
        answered
            .await
            .map_err(|_| StoreError::Internal("a batch of sends ended without an answer".into()))?
    }
}

/// One writer: takes what is queued (at least one send, at most
/// [`MOST`]), answers those that waited past `wait`, writes the rest,
/// answers each, and again.
async fn write_batches(db: Db, waiting: Arc<Mutex<mpsc::Receiver<Queued>>>, wait: Duration) {
    loop {
        let batch = {
            let mut waiting = waiting.lock().await;
            let Some(first) = waiting.recv().await else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < MOST {
                match waiting.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            batch
        };
        let (late, batch): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .partition(|queued| queued.since.elapsed() > wait);
        for queued in late {
            let _ = queued.answer.send(Err(StoreError::Unavailable(format!(
                "no database connection free within {} s",
                wait.as_secs_f64()
            ))));
        }
        if batch.is_empty() {
            continue;
        }
        let (sends, answers): (Vec<NewEvent>, Vec<_>) =
            batch.into_iter().map(|q| (q.send, q.answer)).unzip();
        // A batch that panics fails its sends (their answers go with it)
        // and leaves the writer to take the next.
        crate::panics::contained_task(
            "a batch of sends to PostgreSQL",
            write(db.clone(), sends, answers),
        )
        .await;
    }
}

/// Writes `sends` in one statement and answers each (a caller that went
/// away has nothing to be told). Even one send goes as a batch, for the
/// batch's `lock_timeout`: a writer never waits long on a room another
/// transaction holds. A batch that fails as a whole (a room held past
/// that timeout, a send PostgreSQL refuses) is written again one send at
/// a time, each in a task of its own, so a held room holds up only its
/// own sends and no writer; a database that cannot be reached fails them
/// all at once.
async fn write(db: Db, sends: Vec<NewEvent>, answers: Vec<oneshot::Sender<StoreResult<Appended>>>) {
    let written = db
        .write_alone(&sends, |c, sends| Box::pin(queries::send_batch(c, sends)))
        .await;
    match written {
        Ok(each) => {
            for (answer, sent) in answers.into_iter().zip(each) {
                let _ = answer.send(sent.map_err(super::fail::Fail::into_store));
            }
        }
        Err(StoreError::Unavailable(why)) => {
            for answer in answers {
                let _ = answer.send(Err(StoreError::Unavailable(why.clone())));
            }
        }
        Err(_) => {
            for (send, answer) in sends.into_iter().zip(answers) {
                let db = db.clone();
                tokio::spawn(async move {
                    let sent = db
                        .write_alone(&send, |c, send| Box::pin(queries::append(c, send)))
                        .await;
                    let _ = answer.send(sent);
                });
            }
        }
    }
}
