//! The clock flows are given: the system clock in production, a movable one in tests.

use std::sync::atomic::{AtomicI64, Ordering};

/// Seconds since the Unix epoch, as every flow sees them; milliseconds where
/// two moments of one second must be told apart (a revocation, and a token
/// issued just before or just after it).
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> i64;
    fn now_ms(&self) -> i64;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }

    fn now_ms(&self) -> i64 {
        (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
    }
}

/// The system clock shifted by an adjustable offset: tests move time forward
/// (code expiry, session age) without sleeping, while tokens stay verifiable by
/// relying-party libraries that read the real clock.
#[derive(Default)]
pub struct ShiftedClock {
    offset: AtomicI64,
}

impl ShiftedClock {
    pub fn advance(&self, seconds: i64) {
        self.offset.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> i64 {
        SystemClock.now() + self.offset.load(Ordering::SeqCst)
    }

    fn now_ms(&self) -> i64 {
        SystemClock.now_ms() + 1000 * self.offset.load(Ordering::SeqCst)
    }
}
