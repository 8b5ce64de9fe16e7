//! The database's circuit breaker. While PostgreSQL is down, every request
//! that needs it would wait out the pool's bound (2 s of retried connections)
//! before its 503; at a morning peak that is thousands of requests held at
//! once. Once a request finds the database unavailable and a check of its
//! own confirms it, the breaker opens: the requests that follow answer 503 at
//! once (`web::error::fail_fast_page`, `fail_fast_json`, `batch::Queue`),
//! and one background probe finds the database again and closes it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sqlx::{ConnectOptions, Connection};

use super::Db;

/// How often the probe tries the database while the breaker is open.
const PROBE_EVERY: Duration = Duration::from_millis(250);

/// How long one probe may take before it counts as a failure.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// What a request that needs the database fails with while the breaker is
/// open; `storage::is_unavailable` reads it as unavailability (503).
#[derive(Debug, thiserror::Error)]
#[error("the database was found unavailable and is not back yet")]
pub struct DatabaseDown;

/// The breaker of one database.
pub struct Breaker {
    db: Db,
    open: AtomicBool,
    /// A check is under way (confirming a failure, or probing while open).
    checking: AtomicBool,
}

impl Breaker {
    pub fn new(db: Db) -> Arc<Self> {
        Arc::new(Self {
            db,
            open: AtomicBool::new(false),
            checking: AtomicBool::new(false),
        })
    }

    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    /// A request found the database unavailable (`unreachable`). One check
    /// confirms it before the breaker opens: a connection cut alone, or a
    /// pool busy past its bound, is not a database down. Once open, the same
    /// check runs every `PROBE_EVERY` until the database answers.
    pub fn trip(self: &Arc<Self>) {
        if self.checking.swap(true, Ordering::AcqRel) {
            return;
        }
        let breaker = self.clone();
        tokio::spawn(async move {
            // Whatever ends this task (a panic in a driver included), the
            // breaker does not stay open without its probe.
            let _reset = Reset(breaker.clone());
            if answers(&breaker.db).await {
                return;
            }
            breaker.open.store(true, Ordering::Release);
            tracing::warn!(
                "the database is unavailable: requests that need it answer 503 until it is back"
            );
            let since = Instant::now();
            loop {
                tokio::time::sleep(PROBE_EVERY).await;
                if answers(&breaker.db).await {
                    break;
                }
            }
            tracing::info!(after = ?since.elapsed(), "the database answers again");
        });
    }
}

/// Closes the breaker and ends its check when the task holding it ends.
struct Reset(Arc<Breaker>);

impl Drop for Reset {
    fn drop(&mut self) {
        self.0.open.store(false, Ordering::Release);
        self.0.checking.store(false, Ordering::Release);
    }
}

/// Whether the database answers: on a connection of the probe's own (a pool
/// whose connections are all busy serving is not a database down), or else
/// through the pool (a server at its `max_connections` refuses a new one
/// while the pool's own still work).
async fn answers(db: &Db) -> bool {
    let own = async {
        let mut connection = db.connect_options().connect().await?;
        sqlx::query("SELECT 1").execute(&mut connection).await?;
        connection.close().await
    };
    let pooled = async {
        sqlx::query("SELECT 1").execute(db).await?;
        Ok::<_, sqlx::Error>(())
    };
    match tokio::time::timeout(PROBE_TIMEOUT, own).await {
        Ok(Ok(())) => true,
        // The server answered, and refused (too many clients, say).
        Ok(Err(sqlx::Error::Database(_))) => {
            matches!(
                tokio::time::timeout(PROBE_TIMEOUT, pooled).await,
                Ok(Ok(()))
            )
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn settled(breaker: &Breaker) {
        for _ in 0..100 {
            if !breaker.checking.load(Ordering::Acquire) || breaker.is_open() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn a_failure_its_check_does_not_confirm_leaves_it_closed() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::storage::connect(&format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("b.db").display()
        ))
        .await
        .unwrap();
        let breaker = Breaker::new(db);
        breaker.trip();
        settled(&breaker).await;
        assert!(!breaker.is_open(), "the database answers: nothing shed");
    }

    #[tokio::test]
    async fn a_database_that_does_not_answer_opens_it() {
        sqlx::any::install_default_drivers();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let db = sqlx::any::AnyPoolOptions::new()
            .acquire_timeout(Duration::from_millis(200))
            .connect_lazy(&format!("postgres://clef@127.0.0.1:{port}/clef"))
            .unwrap();
        let breaker = Breaker::new(db);
        breaker.trip();
        settled(&breaker).await;
        assert!(breaker.is_open());
    }
}
