//! What the batching tasks share (`oidc::ledger` writes code exchanges by
//! group commit, `accounts::reads` reads their accounts together): taking a
//! batch from a queue, and the error every member of a failed batch gets.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

use tokio::sync::mpsc;

/// Waits for the first item, then takes up to `max` into `batch`; false once
/// every sender is gone. The first item wakes the task at once; the tasks
/// already under way reach the queue if it lets them run first, which at low
/// load costs one turn of the scheduler.
pub async fn next<T>(queue: &mut mpsc::Receiver<T>, batch: &mut Vec<T>, max: usize) -> bool {
    if queue.recv_many(batch, max).await == 0 {
        return false;
    }
    tokio::task::yield_now().await;
    while batch.len() < max {
        match queue.try_recv() {
            Ok(item) => batch.push(item),
            Err(_) => break,
        }
    }
    true
}

/// A batch's statement failed: what it was doing, and the database's error,
/// shared by every member.
#[derive(Debug, Clone)]
pub struct Failed {
    doing: &'static str,
    cause: Arc<sqlx::Error>,
}

impl Failed {
    pub fn new(doing: &'static str, cause: Arc<sqlx::Error>) -> Self {
        Self { doing, cause }
    }

    /// The batching task is gone (the server is stopping).
    pub fn gone(doing: &'static str) -> Self {
        Self::new(doing, Arc::new(sqlx::Error::WorkerCrashed))
    }
}

impl fmt::Display for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.doing)
    }
}

impl Error for Failed {
    /// The database's error itself, so that an unavailable database is told
    /// apart (`storage::is_unavailable`).
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(self.cause.as_ref())
    }
}
