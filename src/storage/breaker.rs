//! The database's circuit breaker. While PostgreSQL is down, every request
//! that needs it would wait out the pool's bound (2 s of retried connections)
//! before its 503; at a morning peak that is thousands of requests held at
//! once. Once a request finds the database unavailable, the breaker opens:
//! the requests that follow answer 503 at once (`web::error::fail_fast`), and
//! one background probe finds the database again and closes it.

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
}

impl Breaker {
    pub fn new(db: Db) -> Arc<Self> {
        Arc::new(Self {
            db,
            open: AtomicBool::new(false),
        })
    }

    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    /// Opens the breaker, unless it is open already, and starts the probe
    /// that closes it once the database answers again.
    pub fn trip(self: &Arc<Self>) {
        if self.open.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::warn!(
            "the database is unavailable: requests that need it answer 503 until it is back"
        );
        let breaker = self.clone();
        tokio::spawn(async move {
            let since = Instant::now();
            loop {
                tokio::time::sleep(PROBE_EVERY).await;
                if answers(&breaker.db).await {
                    break;
                }
            }
            breaker.open.store(false, Ordering::Release);
            tracing::info!(after = ?since.elapsed(), "the database answers again");
        });
    }
}

/// Whether the database answers, on a connection of the probe's own: a pool
/// whose connections are all busy serving is not a database down.
async fn answers(db: &Db) -> bool {
    let attempt = async {
        let mut connection = db.connect_options().connect().await?;
        sqlx::query("SELECT 1").execute(&mut connection).await?;
        connection.close().await
    };
    matches!(
        tokio::time::timeout(PROBE_TIMEOUT, attempt).await,
        Ok(Ok(()))
    )
}
