//! What the batching tasks share (`oidc::ledger` writes code exchanges by
//! group commit, `oidc::rotations` rotates refresh tokens so, and
//! `accounts::reads` reads accounts together): the queue requests wait in,
//! taking a batch from it, answering each member, and the error every member
//! of a failed batch gets. While the database's breaker is open
//! (`storage::Breaker`), requests fail at once rather than wait for a batch
//! that would wait out the pool.

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::{Breaker, DatabaseDown, Db};

/// The largest batch.
pub const MAX_BATCH: usize = 64;

/// Requests that may wait for a batch; beyond, a request waits to queue.
const QUEUE: usize = 4 * MAX_BATCH;

/// Why a request of a batch failed: the database's error, or its breaker.
type Cause = Arc<dyn Error + Send + Sync>;

/// A request in a batch, and where its answer goes.
pub struct Waiting<I, O> {
    pub item: I,
    answer: oneshot::Sender<Result<O, Cause>>,
}

impl<I, O> Waiting<I, O> {
    /// Answers the request (which may have stopped waiting: nothing to do then).
    pub fn answer(self, outcome: Result<O, Arc<sqlx::Error>>) {
        let _ = self.answer.send(outcome.map_err(|e| e as Cause));
    }
}

/// The requesters' end of a batching task's queue.
pub struct Queue<I, O> {
    sender: mpsc::Sender<Waiting<I, O>>,
    doing: &'static str,
    breaker: Arc<Breaker>,
}

impl<I, O> Queue<I, O> {
    /// A queue for requests of what `doing` says; the batching task takes
    /// them from the `Batches`, and stops when the queue is dropped.
    pub fn new(doing: &'static str, breaker: &Arc<Breaker>) -> (Self, Batches<I, O>) {
        let (sender, receiver) = mpsc::channel(QUEUE);
        let queue = Self {
            sender,
            doing,
            breaker: breaker.clone(),
        };
        let batches = Batches {
            receiver,
            breaker: breaker.clone(),
        };
        (queue, batches)
    }

    /// Queues `item`; returns its answer once its batch is done.
    pub async fn ask(&self, item: I) -> Result<O, Failed> {
        if self.breaker.is_open() {
            return Err(Failed::new(self.doing, Arc::new(DatabaseDown)));
        }
        let (answer, answered) = oneshot::channel();
        let gone = || Failed::gone(self.doing);
        self.sender
            .send(Waiting { item, answer })
            .await
            .map_err(|_| gone())?;
        answered.await.map_err(|_| gone())?.map_err(|cause| {
            if cause
                .downcast_ref::<sqlx::Error>()
                .is_some_and(super::sqlx_unreachable)
            {
                self.breaker.trip();
            }
            Failed::new(self.doing, cause)
        })
    }
}

/// The batching task's end of a queue.
pub struct Batches<I, O> {
    receiver: mpsc::Receiver<Waiting<I, O>>,
    breaker: Arc<Breaker>,
}

impl<I, O> Batches<I, O> {
    /// Waits for the first request, then takes up to `MAX_BATCH` into
    /// `batch`; false once the queue is gone. The first request wakes the
    /// task at once; the tasks already under way reach the queue if it lets
    /// them run first, which at low load costs one turn of the scheduler.
    /// While the breaker is open, what was taken is refused at once.
    pub async fn next(&mut self, batch: &mut Vec<Waiting<I, O>>) -> bool {
        loop {
            if self.receiver.recv_many(batch, MAX_BATCH).await == 0 {
                return false;
            }
            tokio::task::yield_now().await;
            while batch.len() < MAX_BATCH {
                match self.receiver.try_recv() {
                    Ok(item) => batch.push(item),
                    Err(_) => break,
                }
            }
            if !self.breaker.is_open() {
                return true;
            }
            let down: Cause = Arc::new(DatabaseDown);
            for waiting in batch.drain(..) {
                let _ = waiting.answer.send(Err(down.clone()));
            }
        }
    }
}

/// One request of a refused batch, tried on its own.
pub type Alone<'a, O> = Pin<Box<dyn Future<Output = Result<O, sqlx::Error>> + Send + 'a>>;

/// Answers each request of `taken` with its share of `outcome`, the batch's
/// one answer per request. A batch the database refused must not fail its
/// members for one of them: each is then tried `alone`. A database that is
/// down fails them all at once, rather than each after its own wait.
pub async fn answer_each<I, O>(
    db: &Db,
    taken: Vec<Waiting<I, O>>,
    outcome: Result<Vec<O>, sqlx::Error>,
    alone: impl for<'a> Fn(&'a Db, &'a I) -> Alone<'a, O>,
) {
    match outcome {
        Ok(outcomes) => {
            for (waiting, outcome) in taken.into_iter().zip(outcomes) {
                waiting.answer(Ok(outcome));
            }
        }
        Err(e) if taken.len() > 1 && !super::sqlx_unavailable(&e) => {
            let mut down: Option<Arc<sqlx::Error>> = None;
            for waiting in taken {
                let outcome = match &down {
                    // Gone meanwhile: the rest fail with it, not one wait each.
                    Some(e) => Err(e.clone()),
                    None => alone(db, &waiting.item).await.map_err(Arc::new),
                };
                if let Err(e) = &outcome
                    && super::sqlx_unavailable(e)
                {
                    down = Some(e.clone());
                }
                waiting.answer(outcome);
            }
        }
        Err(e) => {
            let e = Arc::new(e);
            for waiting in taken {
                waiting.answer(Err(e.clone()));
            }
        }
    }
}

/// A batch's statement failed: what it was doing, and the database's error
/// (or its breaker's), shared by every member.
#[derive(Debug, Clone)]
pub struct Failed {
    doing: &'static str,
    cause: Cause,
}

impl Failed {
    fn new(doing: &'static str, cause: Cause) -> Self {
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
    /// The database's error itself (or `DatabaseDown`), so that an
    /// unavailable database is told apart (`storage::is_unavailable`).
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(self.cause.as_ref())
    }
}
