//! How a store call meets the database: a connection from the pool,
//! a transaction (or one statement that commits by itself), a limit on
//! how long the server may take to answer, and the attempts a write makes
//! again when it failed in a way that changed nothing.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use deadpool_postgres::{Client, Pool, Transaction};
use tokio_postgres::IsolationLevel;

use super::fail::{Fail, R};
use super::pool;
use crate::store::StoreResult;

/// How often a write runs again after a deadlock, a serialization failure
/// or a unique key another node took first (the next run sees its row).
const WRITE_ATTEMPTS: usize = 3;

/// A query's future, borrowing its transaction or connection.
pub(super) type Query<'t, T> = Pin<Box<dyn Future<Output = R<T>> + Send + 't>>;
/// Work in a transaction, with its input `A`.
pub(super) type TxWork<A, T> = for<'t, 'c> fn(&'t Transaction<'c>, &'t A) -> Query<'t, T>;
/// Work of one statement, outside a transaction.
pub(super) type Work<A, T> = for<'t> fn(&'t Client, &'t A) -> Query<'t, T>;

/// How a write runs: in a transaction of its own, or as one statement
/// that commits by itself.
enum Writing<A, T> {
    Transaction(TxWork<A, T>),
    Alone(Work<A, T>),
}

// By hand: a derive would ask `A` and `T` to be `Copy`, fn pointers are.
impl<A, T> Clone for Writing<A, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<A, T> Copy for Writing<A, T> {}

/// The pool and the limit every call of the store keeps to; cheap to
/// clone, for the tasks that write batches of sends.
#[derive(Clone)]
pub(super) struct Db {
    pool: Pool,
    /// See [`super::PostgresOptions::call_timeout`].
    call_timeout: Duration,
}

impl Db {
    /// Calls on `pool`, each cut off after `call_timeout`.
    pub(super) fn new(pool: Pool, call_timeout: Duration) -> Db {
        Db { pool, call_timeout }
    }

    /// A connection of the pool, or `Unavailable` within its timeout.
    pub(super) async fn connection(&self) -> StoreResult<deadpool_postgres::Object> {
        pool::connection(&self.pool).await
    }

    /// Runs `work` in a read-committed transaction and commits it, again
    /// (up to [`WRITE_ATTEMPTS`]) when it failed in a way that changed
    /// nothing and may go otherwise the next time.
    pub(super) async fn write<A: Sync, T>(&self, input: &A, work: TxWork<A, T>) -> StoreResult<T> {
        self.write_as(input, Writing::Transaction(work)).await
    }

    /// Runs `work`, a write of one statement, which commits by itself,
    /// again as [`Self::write`] does: no BEGIN and COMMIT around it, two
    /// round trips fewer.
    pub(super) async fn write_alone<A: Sync, T>(
        &self,
        input: &A,
        work: Work<A, T>,
    ) -> StoreResult<T> {
        self.write_as(input, Writing::Alone(work)).await
    }

    /// The attempts of [`Self::write`] and [`Self::write_alone`].
    async fn write_as<A: Sync, T>(&self, input: &A, work: Writing<A, T>) -> StoreResult<T> {
        let mut attempt = 1;
        loop {
            let conn = self.connection().await?;
            let result = within(self.call_timeout, conn, async |conn| match work {
                Writing::Transaction(work) => {
                    let tx = conn.transaction().await?;
                    let value = work(&tx, input).await?;
                    tx.commit().await?;
                    Ok::<_, Fail>(value)
                }
                Writing::Alone(work) => work(conn, input).await,
            })
            .await?;
            match result {
                Err(e) if e.retryable() && attempt < WRITE_ATTEMPTS => attempt += 1,
                other => return other.map_err(Fail::into_store),
            }
        }
    }

    /// Runs `work` in a read-only repeatable-read transaction: every
    /// statement of it sees the same moment.
    pub(super) async fn snapshot<A: Sync, T>(
        &self,
        input: &A,
        work: TxWork<A, T>,
    ) -> StoreResult<T> {
        let conn = self.connection().await?;
        within(self.call_timeout, conn, async |conn| {
            let tx = conn
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await?;
            let value = work(&tx, input).await?;
            tx.commit().await?;
            Ok::<_, Fail>(value)
        })
        .await?
        .map_err(Fail::into_store)
    }

    /// Runs `work`, a read of one statement (or of rows that need not agree).
    pub(super) async fn read<A: Sync, T>(&self, input: &A, work: Work<A, T>) -> StoreResult<T> {
        let conn = self.connection().await?;
        within(self.call_timeout, conn, async |conn| {
            work(conn, input).await
        })
        .await?
        .map_err(Fail::into_store)
    }
}

/// Runs `work` on `conn`, unless the server does not answer within
/// `limit`: then the connection leaves the pool and closes (the server
/// rolls back what it had not committed), and the call is `Unavailable`.
/// A write cut off so may still have committed; its client's retry is
/// answered from the idempotency key.
async fn within<T>(
    limit: std::time::Duration,
    mut conn: deadpool_postgres::Object,
    work: impl AsyncFnOnce(&mut deadpool_postgres::Object) -> T,
) -> StoreResult<T> {
    let answered = tokio::time::timeout(limit, work(&mut conn)).await;
    match answered {
        Ok(value) => Ok(value),
        Err(_) => {
            drop(deadpool_postgres::Object::take(conn));
            tracing::warn!(
                seconds = limit.as_secs_f64(),
                "PostgreSQL did not answer in time; closing that connection"
            );
            Err(crate::store::StoreError::Unavailable(format!(
                "the database did not answer within {} s",
                limit.as_secs_f64()
            )))
        }
    }
}
