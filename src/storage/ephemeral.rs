//! The short-lived store: login sessions, authorization codes, access tokens,
//! rate-limit counters. In-process by default; Redis when several `clef serve`
//! instances must share them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use redis::aio::ConnectionManager;

/// One small interface, two implementations. Values are strings (JSON where
/// structured); every entry has a time to live.
#[derive(Clone)]
pub enum ShortLived {
    Memory(MemoryStore),
    Redis(RedisStore),
}

impl ShortLived {
    pub fn memory() -> Self {
        Self::Memory(MemoryStore::default())
    }

    pub async fn redis(url: &str, prefix: &str) -> anyhow::Result<Self> {
        Ok(Self::Redis(RedisStore::connect(url, prefix).await?))
    }

    /// Stores `value` under `key`, replacing what was there.
    pub async fn put(&self, key: &str, value: &str, ttl: Duration) -> anyhow::Result<()> {
        match self {
            Self::Memory(m) => {
                m.put(key, value, ttl);
                Ok(())
            }
            Self::Redis(r) => r.put(key, value, ttl).await,
        }
    }

    pub async fn get(&self, key: &str) -> anyhow::Result<Option<String>> {
        match self {
            Self::Memory(m) => Ok(m.get(key)),
            Self::Redis(r) => r.get(key).await,
        }
    }

    /// Reads and removes `key` atomically: of two concurrent takers, one gets
    /// the value and the other `None` (single-use codes rest on this).
    pub async fn take(&self, key: &str) -> anyhow::Result<Option<String>> {
        match self {
            Self::Memory(m) => Ok(m.take(key)),
            Self::Redis(r) => r.take(key).await,
        }
    }

    pub async fn delete(&self, key: &str) -> anyhow::Result<()> {
        match self {
            Self::Memory(m) => {
                m.take(key);
                Ok(())
            }
            Self::Redis(r) => r.delete(key).await,
        }
    }

    /// Increments a counter, starting its time to live on the first increment;
    /// returns the new count.
    pub async fn incr(&self, key: &str, ttl: Duration) -> anyhow::Result<u64> {
        match self {
            Self::Memory(m) => Ok(m.incr(key, ttl)),
            Self::Redis(r) => r.incr(key, ttl).await,
        }
    }

    /// Answers whether the backing service is reachable (for `/readyz`).
    pub async fn ping(&self) -> anyhow::Result<()> {
        match self {
            Self::Memory(_) => Ok(()),
            Self::Redis(r) => r.ping().await,
        }
    }
}

#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<MemoryInner>>,
}

#[derive(Default)]
struct MemoryInner {
    entries: HashMap<String, (String, Instant)>,
    /// Expired entries are swept when the map doubles past this mark, so the
    /// map stays proportional to the live entries at amortised O(1) cost.
    sweep_at: usize,
}

impl MemoryStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryInner> {
        // A panic while holding the lock cannot leave the map half-written, so
        // a poisoned lock is still safe to use.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn put(&self, key: &str, value: &str, ttl: Duration) {
        let now = Instant::now();
        let mut inner = self.lock();
        inner
            .entries
            .insert(key.to_owned(), (value.to_owned(), now + ttl));
        if inner.entries.len() > inner.sweep_at {
            inner.entries.retain(|_, (_, expires)| *expires > now);
            inner.sweep_at = (inner.entries.len() * 2).max(1024);
        }
    }

    fn get(&self, key: &str) -> Option<String> {
        let inner = self.lock();
        inner
            .entries
            .get(key)
            .filter(|(_, expires)| *expires > Instant::now())
            .map(|(v, _)| v.clone())
    }

    fn take(&self, key: &str) -> Option<String> {
        let mut inner = self.lock();
        inner
            .entries
            .remove(key)
            .filter(|(_, expires)| *expires > Instant::now())
            .map(|(v, _)| v)
    }

    fn incr(&self, key: &str, ttl: Duration) -> u64 {
        let now = Instant::now();
        let mut inner = self.lock();
        let entry = inner
            .entries
            .entry(key.to_owned())
            .or_insert_with(|| ("0".into(), now + ttl));
        if entry.1 <= now {
            *entry = ("0".into(), now + ttl);
        }
        let count = entry.0.parse::<u64>().unwrap_or(0) + 1;
        entry.0 = count.to_string();
        count
    }
}

#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: Arc<str>,
}

impl RedisStore {
    async fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).context("parsing the Redis URL")?;
        let conn = client
            .get_connection_manager()
            .await
            .context("connecting to Redis")?;
        Ok(Self {
            conn,
            prefix: prefix.into(),
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    async fn put(&self, key: &str, value: &str, ttl: Duration) -> anyhow::Result<()> {
        let millis = ttl.as_millis().max(1) as u64;
        redis::cmd("SET")
            .arg(self.key(key))
            .arg(value)
            .arg("PX")
            .arg(millis)
            .query_async::<()>(&mut self.conn.clone())
            .await
            .context("Redis SET")
    }

    async fn get(&self, key: &str) -> anyhow::Result<Option<String>> {
        redis::cmd("GET")
            .arg(self.key(key))
            .query_async(&mut self.conn.clone())
            .await
            .context("Redis GET")
    }

    async fn take(&self, key: &str) -> anyhow::Result<Option<String>> {
        redis::cmd("GETDEL")
            .arg(self.key(key))
            .query_async(&mut self.conn.clone())
            .await
            .context("Redis GETDEL")
    }

    async fn delete(&self, key: &str) -> anyhow::Result<()> {
        redis::cmd("DEL")
            .arg(self.key(key))
            .query_async::<()>(&mut self.conn.clone())
            .await
            .context("Redis DEL")
    }

    async fn incr(&self, key: &str, ttl: Duration) -> anyhow::Result<u64> {
        let key = self.key(key);
        let millis = ttl.as_millis().max(1) as u64;
        // INCR then PEXPIRE NX in one round trip: the window starts at the first failure.
        let (count, _): (u64, i64) = redis::pipe()
            .atomic()
            .cmd("INCR")
            .arg(&key)
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(millis)
            .arg("NX")
            .query_async(&mut self.conn.clone())
            .await
            .context("Redis INCR")?;
        Ok(count)
    }

    async fn ping(&self) -> anyhow::Result<()> {
        redis::cmd("PING")
            .query_async::<String>(&mut self.conn.clone())
            .await
            .context("Redis PING")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_entries_expire_and_take_is_single_use() {
        let store = ShortLived::memory();
        store.put("a", "1", Duration::from_secs(60)).await.unwrap();
        assert_eq!(store.take("a").await.unwrap().as_deref(), Some("1"));
        assert_eq!(store.take("a").await.unwrap(), None);
        store.put("b", "2", Duration::from_millis(1)).await.unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(store.get("b").await.unwrap(), None);
        assert_eq!(store.incr("c", Duration::from_secs(60)).await.unwrap(), 1);
        assert_eq!(store.incr("c", Duration::from_secs(60)).await.unwrap(), 2);
    }
}
