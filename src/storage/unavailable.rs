//! "A dependency is unavailable": the one place that tells a PostgreSQL or Redis
//! that is down, frozen or unreachable from a bug, so the web edge answers 503
//! with Retry-After (the client may simply come back) rather than 500.

use std::time::Duration;

/// Sent as Retry-After with every 503 caused by an unavailable dependency.
pub const RETRY_AFTER: Duration = Duration::from_secs(5);

/// Whether `error`, anywhere in its cause chain, says that PostgreSQL, SQLite's
/// pool or Redis is unavailable (rather than that a query or a value was
/// wrong). The drivers' own errors are read, so no store path has to wrap
/// them: a bounded Redis call fails as a timeout, a bounded pool as
/// `PoolTimedOut`.
pub fn is_unavailable(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<redis::RedisError>()
            .is_some_and(redis_unavailable)
            || cause
                .downcast_ref::<sqlx::Error>()
                .is_some_and(sqlx_unavailable)
            || cause.is::<super::DatabaseDown>()
    })
}

/// Whether `error` says the database could not be reached: what makes the
/// breaker check it (`Breaker::trip`). Not the breaker's own refusal, nor a
/// batching task gone (a bug in one feature is not the database down).
pub fn database_unreachable(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<sqlx::Error>()
            .is_some_and(sqlx_unreachable)
    })
}

/// `database_unreachable` for one driver error. A statement that waited
/// too long for a lock is not: PostgreSQL answered.
pub fn sqlx_unreachable(error: &sqlx::Error) -> bool {
    !matches!(error, sqlx::Error::WorkerCrashed) && !busy(error) && sqlx_unavailable(error)
}

/// PostgreSQL gave up waiting for a lock (`lock_timeout`, SQLSTATE 55P03) or
/// cancelled a statement that ran too long (57014): the table is held, by an
/// upgrade's index build say; the request may be tried again shortly.
fn busy(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|db| db.code())
        .is_some_and(|code| BUSY.contains(&&*code))
}

/// The SQLSTATEs of [`busy`].
const BUSY: [&str; 2] = ["55P03", "57014"];

fn redis_unavailable(error: &redis::RedisError) -> bool {
    error.is_timeout()
        || error.is_connection_refusal()
        || error.is_connection_dropped()
        || error.is_io_error()
        // Still loading its data set after a restart.
        || error.code() == Some("LOADING")
        // A Redis Cluster during a failover: a shard without its master, or
        // slots still moving once the client's retries are spent, or no
        // connection to the shard yet.
        || error.is_cluster_error()
        || error.code() == Some("MASTERDOWN")
        || error.kind() == redis::ErrorKind::ClusterConnectionNotFound
}

pub fn sqlx_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        // SQLSTATE class 08 (connection exception) and 57P01–57P03 (the server
        // is shutting down or not yet accepting connections), or busy.
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || code.starts_with("57P") || BUSY.contains(&&*code)
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn pool_timeouts_and_refused_connections_are_unavailability_not_bugs() {
        let timed_out = Err::<(), _>(sqlx::Error::PoolTimedOut)
            .context("loading the account")
            .unwrap_err();
        assert!(is_unavailable(&timed_out));
        let refused =
            redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(is_unavailable(
            &anyhow::Error::new(refused).context("Redis GET")
        ));
        let frozen = redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut));
        assert!(is_unavailable(
            &anyhow::Error::new(frozen).context("Redis SET")
        ));

        assert!(!is_unavailable(&anyhow::Error::new(
            sqlx::Error::RowNotFound
        )));
        assert!(!is_unavailable(&anyhow::anyhow!("a bug")));
        let wrong_type = redis::RedisError::from((redis::ErrorKind::UnexpectedReturnType, "nil"));
        assert!(!is_unavailable(&anyhow::Error::new(wrong_type)));
    }
}
