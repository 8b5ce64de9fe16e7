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

/// How long something usually takes: a moving average of its last
/// durations, the newest weighing 1/5. What answers without doing that
/// thing waits as long, so that timing tells nothing (an SMS sent or not,
/// a password checked or not).
#[derive(Debug)]
pub struct TypicalDuration {
    micros: std::sync::atomic::AtomicU64,
}

impl TypicalDuration {
    /// Weight of the newest duration, as 1 / this.
    const DIVISOR: u64 = 5;

    /// An average that starts at `start`, before anything is measured.
    pub fn starting_at(start: std::time::Duration) -> Self {
        Self {
            micros: std::sync::atomic::AtomicU64::new(micros(start)),
        }
    }

    pub fn get(&self) -> std::time::Duration {
        std::time::Duration::from_micros(self.micros.load(Ordering::Relaxed))
    }

    pub fn record(&self, elapsed: std::time::Duration) {
        let sample = micros(elapsed);
        let _ = self
            .micros
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |average| {
                Some(
                    (average.saturating_mul(Self::DIVISOR - 1) / Self::DIVISOR)
                        .saturating_add(sample / Self::DIVISOR),
                )
            });
    }
}

fn micros(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}
