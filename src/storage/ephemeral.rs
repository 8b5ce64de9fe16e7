//! The short-lived store: login sessions, authorization codes, access tokens,
//! rate-limit counters. In-process by default; Redis when several `clef serve`
//! instances must share them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use redis::RedisFuture;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterConfig};
use redis::cluster_async::ClusterConnection;

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

    /// Redis at `url`; with `cluster`, a Redis Cluster whose nodes (one is
    /// enough: the others are discovered) `url` lists, comma-separated.
    pub async fn redis(url: &str, cluster: bool, prefix: &str) -> anyhow::Result<Self> {
        Ok(Self::Redis(
            RedisStore::connect(url, cluster, prefix).await?,
        ))
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

    /// Replaces the value under `key`, if there is one, with `value` for
    /// `ttl`, atomically; returns the value replaced. Nothing there: nothing
    /// is written and `None` comes back. Of two concurrent replacers, one gets
    /// the first value and the other the first one's replacement.
    pub async fn replace(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> anyhow::Result<Option<String>> {
        match self {
            Self::Memory(m) => Ok(m.replace(key, value, ttl)),
            Self::Redis(r) => r.replace(key, value, ttl).await,
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

    /// Counts an attempt under `key` before it is evaluated, atomically (of N
    /// concurrent attempts, exactly those the rule allows are admitted), and
    /// says whether it may go on. Refused attempts change nothing: they neither
    /// count nor push the delay further, so a lock is never renewed by attempts
    /// made while it holds.
    pub async fn attempt(&self, key: &str, rule: &Backoff, now: i64) -> anyhow::Result<Attempt> {
        match self {
            Self::Memory(m) => Ok(m.attempt(key, rule, now)),
            Self::Redis(r) => r.attempt(key, rule, now).await,
        }
    }

    /// The delay attempts under `key` would be refused with now by `rule`
    /// (`Some(retry_after)`), read without counting one: a gate checked
    /// before anything else, where only failures are counted.
    pub async fn held_back(
        &self,
        key: &str,
        rule: &Backoff,
        now: i64,
    ) -> anyhow::Result<Option<u64>> {
        let raw = self.get(key).await?;
        let (_, not_before) = counter_at(raw.as_deref(), rule, now);
        Ok((now < not_before).then(|| (not_before - now) as u64))
    }

    /// Takes back one counted attempt (it turned out to be legitimate), leaving
    /// any delay in force as it is.
    pub async fn refund(&self, key: &str) -> anyhow::Result<()> {
        match self {
            Self::Memory(m) => {
                m.refund(key);
                Ok(())
            }
            Self::Redis(r) => r.refund(key).await,
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

/// A progressive delay: `free` attempts pass at once; the attempt that uses the
/// last free one starts a delay of `first_delay` seconds, doubled by each
/// further admitted attempt up to `max_delay`. The count is forgotten `window`
/// after the last admitted attempt. With `first_delay == max_delay == window`
/// it is a plain limit: `free` attempts, then a lock of `window`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub free: u64,
    pub first_delay: u64,
    pub max_delay: u64,
    pub window: Duration,
}

impl Backoff {
    /// The wait imposed after the `count`-th admitted attempt, in seconds.
    pub fn delay_after(&self, count: u64) -> u64 {
        if count < self.free {
            return 0;
        }
        let doublings = u32::try_from(count - self.free).unwrap_or(u32::MAX).min(32);
        self.first_delay
            .saturating_mul(1u64 << doublings)
            .min(self.max_delay)
    }
}

/// What [`ShortLived::attempt`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Counted; this is the `count`-th attempt in the window.
    Admitted { count: u64 },
    /// Not counted: come back in `retry_after` seconds.
    Refused { retry_after: u64 },
}

/// A counter as stored: `count:not_before` (Unix seconds).
/// An attempt counter as stored, `count:not_before:last` (seconds of the
/// app's clock; `last`, the last admitted attempt, is absent from counters
/// an older version wrote).
/// An attempt counter as `rule` reads it at `now`: its count and the time
/// before which attempts are refused; forgotten `window` after its last
/// admitted attempt, by the app's clock, as the lock is timed (not a second
/// later by the store's). The Redis script reads it the same way.
fn counter_at(raw: Option<&str>, rule: &Backoff, now: i64) -> (u64, i64) {
    let (count, not_before, last) = raw.map_or((0, 0, None), parse_counter);
    if last.is_some_and(|last| now >= last + rule.window.as_secs() as i64) {
        return (0, 0);
    }
    (count, not_before)
}

fn parse_counter(raw: &str) -> (u64, i64, Option<i64>) {
    let mut fields = raw.split(':');
    let count = fields.next().and_then(|c| c.parse().ok());
    let not_before = fields.next().and_then(|n| n.parse().ok());
    let last = fields.next().and_then(|l| l.parse().ok());
    match (count, not_before) {
        (Some(count), Some(not_before)) => (count, not_before, last),
        _ => (0, 0, None),
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

    fn replace(&self, key: &str, value: &str, ttl: Duration) -> Option<String> {
        let now = Instant::now();
        let mut inner = self.lock();
        let entry = inner
            .entries
            .get_mut(key)
            .filter(|(_, expires)| *expires > now)?;
        Some(std::mem::replace(entry, (value.to_owned(), now + ttl)).0)
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

    fn attempt(&self, key: &str, rule: &Backoff, now: i64) -> Attempt {
        let mut inner = self.lock();
        let live = inner
            .entries
            .get(key)
            .filter(|(_, expires)| *expires > Instant::now())
            .map(|(value, _)| value.as_str());
        let (count, not_before) = counter_at(live, rule, now);
        if now < not_before {
            return Attempt::Refused {
                retry_after: (not_before - now) as u64,
            };
        }
        let count = count + 1;
        let not_before = now + rule.delay_after(count) as i64;
        inner.entries.insert(
            key.to_owned(),
            (
                format!("{count}:{not_before}:{now}"),
                Instant::now() + rule.window,
            ),
        );
        Attempt::Admitted { count }
    }

    fn refund(&self, key: &str) {
        let mut inner = self.lock();
        if let Some((value, _)) = inner.entries.get_mut(key)
            && let Some((count, rest)) = value.split_once(':')
        {
            let count = count.parse::<u64>().unwrap_or(0).saturating_sub(1);
            *value = format!("{count}:{rest}");
        }
    }
}

/// `replace` in one step: the value under KEYS[1], replaced by ARGV[1] for
/// ARGV[2] ms when there was one.
const REPLACE_SCRIPT: &str = r"
local v = redis.call('GET', KEYS[1])
if v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return v
";

/// [`MemoryStore::attempt`] in one Redis round trip, atomic as a script.
const ATTEMPT_SCRIPT: &str = r"
local count, not_before, last = 0, 0, nil
local v = redis.call('GET', KEYS[1])
if v then
  local sep = string.find(v, ':', 1, true)
  if sep then
    count = tonumber(string.sub(v, 1, sep - 1)) or 0
    local rest = string.sub(v, sep + 1)
    local sep2 = string.find(rest, ':', 1, true)
    if sep2 then
      not_before = tonumber(string.sub(rest, 1, sep2 - 1)) or 0
      last = tonumber(string.sub(rest, sep2 + 1))
    else
      not_before = tonumber(rest) or 0
    end
  end
end
local now = tonumber(ARGV[1])
if last and now * 1000 >= last * 1000 + tonumber(ARGV[5]) then
  count, not_before = 0, 0
end
if now < not_before then
  return {0, not_before - now}
end
count = count + 1
local free, first, max = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local delay = 0
if count >= free then
  delay = math.min(first * 2 ^ math.min(count - free, 32), max)
end
redis.call('SET', KEYS[1], count .. ':' .. string.format('%d', now + delay) .. ':' .. string.format('%d', now), 'PX', ARGV[5])
return {1, count}
";

const REFUND_SCRIPT: &str = r"
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local sep = string.find(v, ':', 1, true)
if not sep then return 0 end
local count = tonumber(string.sub(v, 1, sep - 1)) or 0
if count > 0 then count = count - 1 end
redis.call('SET', KEYS[1], count .. string.sub(v, sep), 'KEEPTTL')
return count
";

#[derive(Clone)]
pub struct RedisStore {
    conn: BoundedConnection,
    prefix: Arc<str>,
}

/// How long one Redis call may take, waiting for a reconnection included. A
/// Redis that is down or frozen fails the request with a timeout (which
/// `storage::is_unavailable` turns into 503) instead of holding it.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// Bounds on each connection attempt and each answer, under `CALL_TIMEOUT`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);

/// One Redis server (through the connection manager, which reconnects after
/// any drop), or a Redis Cluster (which routes each call to the shard of its
/// key and follows the cluster's changes), with every call, commands,
/// pipelines and scripts alike, bounded by `CALL_TIMEOUT`.
#[derive(Clone)]
enum BoundedConnection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for BoundedConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> RedisFuture<'a, redis::Value> {
        match self {
            Self::Single(conn) => Box::pin(bounded(conn.req_packed_command(cmd))),
            Self::Cluster(conn) => Box::pin(bounded(conn.req_packed_command(cmd))),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Self::Single(conn) => {
                Box::pin(bounded(conn.req_packed_commands(pipeline, offset, count)))
            }
            Self::Cluster(conn) => {
                Box::pin(bounded(conn.req_packed_commands(pipeline, offset, count)))
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(conn) => conn.get_db(),
            Self::Cluster(conn) => conn.get_db(),
        }
    }
}

async fn bounded<T>(call: impl Future<Output = redis::RedisResult<T>>) -> redis::RedisResult<T> {
    tokio::time::timeout(CALL_TIMEOUT, call)
        .await
        .unwrap_or_else(|_| {
            Err(
                std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer from Redis in time")
                    .into(),
            )
        })
}

/// The Redis URL (or, for a cluster, the nodes' comma-separated URLs) read,
/// without connecting (also `clef config check`).
pub fn check_url(url: &str, cluster: bool) -> anyhow::Result<()> {
    if cluster {
        cluster_client(url)?;
    } else {
        client(url)?;
    }
    Ok(())
}

fn client(url: &str) -> anyhow::Result<redis::Client> {
    redis::Client::open(url).context("parsing the Redis URL")
}

fn cluster_client(url: &str) -> anyhow::Result<ClusterClient> {
    let nodes: Vec<&str> = url.split(',').map(str::trim).collect();
    ClusterClient::builder(nodes)
        .connection_timeout(CONNECT_TIMEOUT)
        .response_timeout(RESPONSE_TIMEOUT)
        // A moved slot or a failover is followed at once; an unreachable
        // shard fails the call within `CALL_TIMEOUT`.
        .retries(2)
        .min_retry_wait(10)
        .max_retry_wait(200)
        .build()
        .context("parsing the Redis Cluster URLs")
}

impl RedisStore {
    /// Connects lazily: Clef starts even when Redis is down (it then reports
    /// not ready on `/readyz` and answers 503), and reconnects by itself when
    /// Redis returns, as the connection manager does after any drop.
    async fn connect(url: &str, cluster: bool, prefix: &str) -> anyhow::Result<Self> {
        let conn = if cluster {
            let client = cluster_client(url)?;
            BoundedConnection::Cluster(
                client.get_pending_async_connection_with_config(ClusterConfig::new()),
            )
        } else {
            let client = client(url)?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                .set_response_timeout(Some(RESPONSE_TIMEOUT))
                // One quick retry of a failed reconnection; the next call tries again.
                .set_number_of_retries(1)
                .set_max_delay(Duration::from_millis(200));
            BoundedConnection::Single(
                ConnectionManager::new_lazy_with_config(client, config)
                    .context("configuring the Redis connection")?,
            )
        };
        let store = Self {
            conn,
            prefix: prefix.into(),
        };
        if let Err(error) = store.ping().await {
            tracing::warn!(
                error = format!("{error:#}"),
                "Redis is unreachable at start; serving, not ready until it answers"
            );
        }
        Ok(store)
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

    async fn replace(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> anyhow::Result<Option<String>> {
        redis::Script::new(REPLACE_SCRIPT)
            .key(self.key(key))
            .arg(value)
            .arg(ttl.as_millis().max(1) as u64)
            .invoke_async(&mut self.conn.clone())
            .await
            .context("Redis replace script")
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

    async fn attempt(&self, key: &str, rule: &Backoff, now: i64) -> anyhow::Result<Attempt> {
        let (admitted, value): (u8, u64) = redis::Script::new(ATTEMPT_SCRIPT)
            .key(self.key(key))
            .arg(now)
            .arg(rule.free)
            .arg(rule.first_delay)
            .arg(rule.max_delay)
            .arg(rule.window.as_millis().max(1) as u64)
            .invoke_async(&mut self.conn.clone())
            .await
            .context("Redis attempt script")?;
        Ok(if admitted == 1 {
            Attempt::Admitted { count: value }
        } else {
            Attempt::Refused { retry_after: value }
        })
    }

    async fn refund(&self, key: &str) -> anyhow::Result<()> {
        redis::Script::new(REFUND_SCRIPT)
            .key(self.key(key))
            .invoke_async::<i64>(&mut self.conn.clone())
            .await
            .context("Redis refund script")?;
        Ok(())
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

    #[test]
    fn backoff_doubles_from_the_last_free_attempt_up_to_its_cap() {
        let rule = Backoff {
            free: 3,
            first_delay: 2,
            max_delay: 10,
            window: Duration::from_secs(60),
        };
        let delays: Vec<u64> = (1..=7).map(|n| rule.delay_after(n)).collect();
        assert_eq!(delays, [0, 0, 2, 4, 8, 10, 10]);
        assert_eq!(rule.delay_after(u64::MAX), 10);
    }

    #[tokio::test]
    async fn refused_attempts_neither_count_nor_extend_the_delay() {
        let store = ShortLived::memory();
        let rule = Backoff {
            free: 2,
            first_delay: 30,
            max_delay: 30,
            window: Duration::from_secs(60),
        };
        let t = 1_000;
        assert_eq!(
            store.attempt("k", &rule, t).await.unwrap(),
            Attempt::Admitted { count: 1 }
        );
        assert_eq!(
            store.attempt("k", &rule, t).await.unwrap(),
            Attempt::Admitted { count: 2 }
        );
        for elapsed in [0, 10, 29] {
            assert_eq!(
                store.attempt("k", &rule, t + elapsed).await.unwrap(),
                Attempt::Refused {
                    retry_after: 30 - elapsed as u64
                }
            );
        }
        assert_eq!(
            store.attempt("k", &rule, t + 30).await.unwrap(),
            Attempt::Admitted { count: 3 }
        );
        store.refund("k").await.unwrap();
        assert_eq!(
            store.attempt("k", &rule, t + 31).await.unwrap(),
            Attempt::Refused { retry_after: 29 }
        );
    }
}
