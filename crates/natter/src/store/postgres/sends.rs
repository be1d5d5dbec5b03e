//! Sends that arrive while others are being written go to PostgreSQL
//! together: one statement (`natter_send_batch`, schema.rs) and one
//! commit for all of them, as the SQLite store's writer commits the
//! sends that queue up meanwhile in one transaction. A quiet node sends
//! each alone at once; only when all [`WRITERS`] are busy does a queue
//! form, and the next free writer takes up to [`MOST`] of it. Each send
//! gets its own answer: a refused one (not a member, say) refuses only
//! itself. A database out of reach fails the whole queue at once, so a
//! send fails within about two call timeouts however many wait.

use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};

use super::calls::Db;
use super::queries;
use crate::store::{Appended, NewEvent, StoreError, StoreResult};

/// Batches written at once per node, each on a connection of its own.
const WRITERS: usize = 4;
/// The most sends in one batch: a batch holds every room it writes to
/// until it commits, so a bigger one makes each send wait longer.
const MOST: usize = 64;
/// Sends waiting for a writer before a caller waits to queue.
const QUEUE: usize = 4_096;

/// A send on its way to a writer, with where its answer goes.
struct Queued {
    send: NewEvent,
    answer: oneshot::Sender<StoreResult<Appended>>,
}

/// The queue of sends and the writers that take from it; the writers end
/// when the store is dropped.
pub(super) struct Sends {
    queue: mpsc::Sender<Queued>,
}

impl Sends {
    /// Starts the writers, on the current tokio runtime.
    pub(super) fn start(db: Db) -> Sends {
        let (queue, waiting) = mpsc::channel(QUEUE);
        let waiting = Arc::new(Mutex::new(waiting));
        for _ in 0..WRITERS {
            tokio::spawn(write_batches(db.clone(), waiting.clone()));
        }
        Sends { queue }
    }

    /// Writes `send` (an `Action::Send`) in the next batch and answers
    /// once that batch has committed.
    pub(super) async fn send(&self, send: NewEvent) -> StoreResult<Appended> {
        let (answer, answered) = oneshot::channel();
        self.queue
            .send(Queued { send, answer })
            .await
            .map_err(|_| StoreError::Unavailable("the store is shutting down".into()))?;
        answered
            .await
            .map_err(|_| StoreError::Internal("a batch of sends ended without an answer".into()))?
    }
}

/// One writer: takes what is queued (at least one send, at most
/// [`MOST`]), writes it, answers each, and again.
async fn write_batches(db: Db, waiting: Arc<Mutex<mpsc::Receiver<Queued>>>) {
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
        let (sends, answers): (Vec<NewEvent>, Vec<_>) =
            batch.into_iter().map(|q| (q.send, q.answer)).unzip();
        let results = write(&db, sends).await;
        let unreachable = match results.first() {
            Some(Err(StoreError::Unavailable(why)))
                if results
                    .iter()
                    .all(|r| matches!(r, Err(StoreError::Unavailable(_)))) =>
            {
                Some(why.clone())
            }
            _ => None,
        };
        for (answer, result) in answers.into_iter().zip(results) {
            // A caller that went away has nothing to be told.
            let _ = answer.send(result);
        }
        if let Some(why) = unreachable {
            refuse_queued(&waiting, &why);
        }
    }
}

/// Answers every send queued now `Unavailable`, untried: the database
/// just failed a whole batch so, and each batch behind would wait out
/// the call's timeout in turn (for thousands of sends, minutes). Skipped
/// while another writer holds the queue: it is waiting on an empty one,
/// or taking a batch, which will fail as fast.
fn refuse_queued(waiting: &Mutex<mpsc::Receiver<Queued>>, why: &str) {
    let Ok(mut waiting) = waiting.try_lock() else {
        return;
    };
    while let Ok(queued) = waiting.try_recv() {
        let _ = queued
            .answer
            .send(Err(StoreError::Unavailable(why.to_owned())));
    }
}

/// Each send's answer, in order. A batch that fails as a whole (after
/// the write's attempts) is written again one send at a time, so a send
/// PostgreSQL refuses fails alone; a database that cannot be reached
/// fails them all at once rather than one timeout after another.
async fn write(db: &Db, sends: Vec<NewEvent>) -> Vec<StoreResult<Appended>> {
    if sends.len() == 1 {
        return vec![
            db.write_alone(&sends[0], |c, send| Box::pin(queries::append(c, send)))
                .await,
        ];
    }
    match db
        .write_alone(&sends, |c, sends| Box::pin(queries::send_batch(c, sends)))
        .await
    {
        Ok(each) => each
            .into_iter()
            .map(|sent| sent.map_err(super::fail::Fail::into_store))
            .collect(),
        Err(StoreError::Unavailable(why)) => sends
            .iter()
            .map(|_| Err(StoreError::Unavailable(why.clone())))
            .collect(),
        Err(_) => {
            let mut each = Vec::with_capacity(sends.len());
            for send in &sends {
                each.push(
                    db.write_alone(send, |c, send| Box::pin(queries::append(c, send)))
                        .await,
                );
            }
            each
        }
    }
}
