//! How a long-lived loop outlives a fault in one of its items: a writer's
//! job or batch, a message from the bus, a periodic round. natter unwinds
//! on a panic, and one that ended such a loop would leave the node up but
//! unable to write, deaf to the other nodes, or never checking its room
//! heads again. So the item fails, the panic is logged, and the loop goes
//! on with the next.

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Runs `work`; a panic in it is logged as a fault in `what` and gives
/// `None`. The caller undoes what `work` may have left half-done (the
/// SQLite writer rolls the job's savepoint back). A hub feed whose lock
/// was held at the panic stays poisoned, and the requests that use it
/// fail, as they did before anything was contained.
pub(crate) fn contained<T>(what: &str, work: impl FnOnce() -> T) -> Option<T> {
    catch_unwind(AssertUnwindSafe(work))
        .map_err(|panic| logged(what, &*panic))
        .ok()
}

/// Runs `work` as a task of its own and waits for it; a panic in it is
/// logged as a fault in `what` and gives `None`.
pub(crate) async fn contained_task<T: Send + 'static>(
    what: &str,
    work: impl Future<Output = T> + Send + 'static,
) -> Option<T> {
    match tokio::spawn(work).await {
        Ok(value) => Some(value),
        Err(ended) if ended.is_panic() => {
            logged(what, &*ended.into_panic());
            None
        }
        // Cancelled: the runtime is shutting down.
        Err(_) => None,
    }
}

/// Logs the panic `panic` of `what`, with its message when it has one.
fn logged(what: &str, panic: &(dyn Any + Send)) {
    let message = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    tracing::error!(
        panic = message,
        "a fault in {what}: that one failed and natter goes on; please report it"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_gives_none_and_the_next_call_runs() {
        assert_eq!(
            contained("a test", || -> u32 { panic!("on purpose") }),
            None
        );
        assert_eq!(contained("a test", || 7), Some(7));
    }

    #[tokio::test]
    async fn a_panicking_task_gives_none_and_the_next_one_runs() {
        let failed = contained_task("a test", async { panic!("on purpose {}", 1) }).await;
        assert_eq!(failed, None::<u32>);
        assert_eq!(contained_task("a test", async { 7 }).await, Some(7));
    }
}
