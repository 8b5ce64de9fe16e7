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

    /// Redis at `target`, its keys under `prefix`.
    pub async fn redis(target: &RedisTarget<'_>, prefix: &str) -> anyhow::Result<Self> {
        Ok(Self::Redis(RedisStore::connect(target, prefix).await?))
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
    /// made while it holds. `now_ms` is the app's clock in milliseconds: a
    /// delay of 2 s is 2 s, not whatever is left of the current second plus one.
    pub async fn attempt(&self, key: &str, rule: &Backoff, now_ms: i64) -> anyhow::Result<Attempt> {
        match self {
            Self::Memory(m) => Ok(m.attempt(key, rule, now_ms)),
            Self::Redis(r) => r.attempt(key, rule, now_ms).await,
        }
    }

    /// The delay attempts under `key` would be refused with now by `rule`
    /// (`Some(retry_after)`), read without counting one: a gate checked
    /// before anything else, where only failures are counted.
    pub async fn held_back(
        &self,
        key: &str,
        rule: &Backoff,
        now_ms: i64,
    ) -> anyhow::Result<Option<u64>> {
        let raw = self.get(key).await?;
        let (_, not_before) = counter_at(raw.as_deref(), rule, now_ms);
        Ok((now_ms < not_before).then(|| seconds_until(not_before - now_ms)))
    }

    /// Takes back one count under `key`, an attempt (`attempt`: any delay in
    /// force is left as it is) or an increment (`incr`), its time to live
    /// unchanged: it turned out to be legitimate, or a later limit held back
    /// what it was counted for.
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
    /// Not counted: come back in `retry_after` seconds (rounded up).
    Refused { retry_after: u64 },
}

/// A wait in milliseconds as whole seconds, rounded up: an attempt made
/// `retry_after` seconds later is admitted.
fn seconds_until(wait_ms: i64) -> u64 {
    (wait_ms.max(0) as u64).div_ceil(1000)
}

/// An attempt counter as stored: `count:not_before:last:not_before_ms:last_ms`.
/// `not_before` (rounded up) and `last`, the last admitted attempt, are in
/// seconds, as an earlier version wrote and reads them during a rolling
/// upgrade (it reads the first three fields); this one reads the
/// milliseconds, or the seconds of a counter without them. All are times of
/// the app's clock. The Redis script writes and reads it the same way.
fn counter_text(count: u64, not_before_ms: i64, last_ms: i64) -> String {
    let (not_before, last) = (
        (not_before_ms + 999).div_euclid(1000),
        last_ms.div_euclid(1000),
    );
    format!("{count}:{not_before}:{last}:{not_before_ms}:{last_ms}")
}

/// An attempt counter as `rule` reads it at `now_ms`: its count and the time
/// (ms) before which attempts are refused; forgotten `window` after its last
/// admitted attempt, by the app's clock, as the lock is timed (not a second
/// later by the store's).
fn counter_at(raw: Option<&str>, rule: &Backoff, now_ms: i64) -> (u64, i64) {
    let (count, not_before, last) = raw.map_or((0, 0, None), parse_counter);
    if last.is_some_and(|last| now_ms >= last + rule.window.as_millis() as i64) {
        return (0, 0);
    }
    (count, not_before)
}

/// A stored counter's count, and its times in ms (see [`counter_text`]).
fn parse_counter(raw: &str) -> (u64, i64, Option<i64>) {
    let fields: Vec<Option<i64>> = raw.split(':').map(|f| f.parse().ok()).collect();
    let count = fields
        .first()
        .copied()
        .flatten()
        .and_then(|c| u64::try_from(c).ok());
    let field = |n: usize| fields.get(n).copied().flatten();
    let (not_before, last) = match (field(3), field(4)) {
        (Some(not_before_ms), Some(last_ms)) => (Some(not_before_ms), Some(last_ms)),
        _ => (field(1).map(|s| s * 1000), field(2).map(|s| s * 1000)),
    };
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

    fn attempt(&self, key: &str, rule: &Backoff, now_ms: i64) -> Attempt {
        let mut inner = self.lock();
        let live = inner
            .entries
            .get(key)
            .filter(|(_, expires)| *expires > Instant::now())
            .map(|(value, _)| value.as_str());
        let (count, not_before) = counter_at(live, rule, now_ms);
        if now_ms < not_before {
            return Attempt::Refused {
                retry_after: seconds_until(not_before - now_ms),
            };
        }
        let count = count + 1;
        let not_before = now_ms + 1000 * rule.delay_after(count) as i64;
        inner.entries.insert(
            key.to_owned(),
            (
                counter_text(count, not_before, now_ms),
                Instant::now() + rule.window,
            ),
        );
        Attempt::Admitted { count }
    }

    fn refund(&self, key: &str) {
        let mut inner = self.lock();
        if let Some((value, _)) = inner.entries.get_mut(key) {
            let (count, rest) = value.split_once(':').unwrap_or((value, ""));
            let count = count.parse::<u64>().unwrap_or(0).saturating_sub(1);
            *value = match rest {
                "" => count.to_string(),
                rest => format!("{count}:{rest}"),
            };
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
local f = {}
local v = redis.call('GET', KEYS[1])
if v then
  for field in string.gmatch(v, '[^:]+') do f[#f + 1] = tonumber(field) or false end
end
-- times in ms; a counter an earlier version wrote holds seconds only
local count, not_before, last = 0, 0, nil
if f[1] and f[2] then
  count = f[1]
  if f[4] and f[5] then
    not_before, last = f[4], f[5]
  else
    not_before = f[2] * 1000
    if f[3] then last = f[3] * 1000 end
  end
end
local now = tonumber(ARGV[1])
if last and now >= last + tonumber(ARGV[5]) then
  count, not_before = 0, 0
end
if now < not_before then
  return {0, math.ceil((not_before - now) / 1000)}
end
count = count + 1
local free, first, max = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local delay = 0
if count >= free then
  delay = 1000 * math.min(first * 2 ^ math.min(count - free, 32), max)
end
local until_ms = now + delay
redis.call('SET', KEYS[1], string.format('%d:%d:%d:%d:%d', count, math.ceil(until_ms / 1000),
  math.floor(now / 1000), until_ms, now), 'PX', ARGV[5])
return {1, count}
";

/// [`MemoryStore::refund`]: an attempt counter `count:…` or an `INCR` count.
const REFUND_SCRIPT: &str = r"
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local sep = string.find(v, ':', 1, true) or (string.len(v) + 1)
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

/// Where the short-lived store is: Redis at `url` (`redis://`, or
/// `rediss://` for TLS); with `cluster`, a Redis Cluster whose nodes (one is
/// enough: the others are discovered) `url` lists, comma-separated; with
/// `ca_file`, the authority a TLS server's certificate is checked against
/// (else the Mozilla roots).
#[derive(Debug, Clone, Copy)]
pub struct RedisTarget<'a> {
    pub url: &'a str,
    pub cluster: bool,
    pub ca_file: Option<&'a std::path::Path>,
}

impl RedisTarget<'_> {
    /// The authority to check the server's certificate against, if one is named.
    fn certificates(&self) -> anyhow::Result<Option<redis::TlsCertificates>> {
        let Some(file) = self.ca_file else {
            return Ok(None);
        };
        // Every node's URL must ask for TLS, or the authority would check
        // nothing (a cluster's nodes are comma-separated; one server's
        // password may hold a comma).
        let tls = |url: &str| {
            url.trim_start()
                .get(..9)
                .is_some_and(|scheme| scheme.eq_ignore_ascii_case("rediss://"))
        };
        anyhow::ensure!(
            if self.cluster {
                self.url.split(',').all(tls)
            } else {
                tls(self.url)
            },
            "redis_ca_file is set, but redis_url does not ask for TLS: write rediss://… \
             (or remove redis_ca_file)"
        );
        let root_cert = std::fs::read(file)
            .with_context(|| format!("reading redis_ca_file {}", file.display()))?;
        anyhow::ensure!(
            root_cert.starts_with(b"-----BEGIN"),
            "redis_ca_file {}: not a PEM certificate",
            file.display()
        );
        Ok(Some(redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(root_cert),
        }))
    }
}

/// The Redis URL (or, for a cluster, the nodes' comma-separated URLs) and the
/// CA file read, without connecting (also `clef config check`).
pub fn check_url(target: &RedisTarget<'_>) -> anyhow::Result<()> {
    if target.cluster {
        cluster_client(target)?;
    } else {
        client(target)?;
    }
    Ok(())
}

fn client(target: &RedisTarget<'_>) -> anyhow::Result<redis::Client> {
    let client = match target.certificates()? {
        Some(certificates) => redis::Client::build_with_tls(target.url, certificates),
        None => redis::Client::open(target.url),
    };
    client.map_err(|e| anyhow::anyhow!("parsing the Redis URL: {}", redis_reason(&e)))
}

/// What is wrong with a Redis URL, never the URL (it may hold a password).
fn redis_reason(e: &redis::RedisError) -> String {
    const SHAPE: &str =
        "it must read redis://[user][:password@]host[:port][/db], or rediss://… for TLS";
    match e.detail() {
        Some(detail) => format!("{detail}; {SHAPE}"),
        None => format!("{}; {SHAPE}", e.category()),
    }
}

fn cluster_client(target: &RedisTarget<'_>) -> anyhow::Result<ClusterClient> {
    let nodes: Vec<&str> = target.url.split(',').map(str::trim).collect();
    let mut builder = ClusterClient::builder(nodes);
    if let Some(certificates) = target.certificates()? {
        builder = builder.certs(certificates);
    }
    builder
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
    async fn connect(target: &RedisTarget<'_>, prefix: &str) -> anyhow::Result<Self> {
        let conn = if target.cluster {
            let client = cluster_client(target)?;
            BoundedConnection::Cluster(
                client.get_pending_async_connection_with_config(ClusterConfig::new()),
            )
        } else {
            let client = client(target)?;
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

    async fn attempt(&self, key: &str, rule: &Backoff, now_ms: i64) -> anyhow::Result<Attempt> {
        let (admitted, value): (u8, u64) = redis::Script::new(ATTEMPT_SCRIPT)
            .key(self.key(key))
            .arg(now_ms)
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

    /// An authority for a Redis reached without TLS is a mistake named as
    /// such, not as a URL of the wrong shape.
    #[test]
    fn a_ca_file_without_tls_is_told_as_such() {
        let ca = std::path::Path::new("/etc/ssl/certs/ca-certificates.crt");
        // A password with a comma, a scheme in capitals: TLS all the same
        // (the file is then read, and found not to be there).
        for url in [
            "rediss://clef:pa,ss@redis.internal:6380",
            "REDISS://redis.internal",
        ] {
            let target = RedisTarget {
                url,
                cluster: false,
                ca_file: Some(std::path::Path::new("/nulle/part.pem")),
            };
            let error = check_url(&target).unwrap_err().to_string();
            assert!(error.contains("reading redis_ca_file"), "{url}: {error}");
        }
        for (url, cluster) in [
            ("redis://redis.internal:6379", false),
            ("rediss://a:6379,redis://b:6379", true),
        ] {
            let target = RedisTarget {
                url,
                cluster,
                ca_file: Some(ca),
            };
            let error = check_url(&target).unwrap_err().to_string();
            assert!(error.contains("does not ask for TLS"), "{url}: {error}");
        }
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

    /// Two attempts, then 30 s between attempts; forgotten after a minute.
    const TWO_THEN_30_S: Backoff = Backoff {
        free: 2,
        first_delay: 30,
        max_delay: 30,
        window: Duration::from_secs(60),
    };

    #[tokio::test]
    async fn refused_attempts_neither_count_nor_extend_the_delay() {
        let store = ShortLived::memory();
        let rule = TWO_THEN_30_S;
        let t = 1_800_000_000_000;
        assert_eq!(
            store.attempt("k", &rule, t).await.unwrap(),
            Attempt::Admitted { count: 1 }
        );
        assert_eq!(
            store.attempt("k", &rule, t).await.unwrap(),
            Attempt::Admitted { count: 2 }
        );
        for (elapsed, retry_after) in [(0, 30), (10_000, 20), (29_001, 1)] {
            assert_eq!(
                store.attempt("k", &rule, t + elapsed).await.unwrap(),
                Attempt::Refused { retry_after }
            );
        }
        assert_eq!(
            store.attempt("k", &rule, t + 30_000).await.unwrap(),
            Attempt::Admitted { count: 3 }
        );
        store.refund("k").await.unwrap();
        assert_eq!(
            store.attempt("k", &rule, t + 31_000).await.unwrap(),
            Attempt::Refused { retry_after: 29 }
        );
    }

    #[tokio::test]
    async fn counters_are_read_and_written_as_both_versions_read_them() {
        let store = ShortLived::memory();
        let rule = TWO_THEN_30_S;
        // Written by an earlier version, in seconds.
        let t = 1_800_000_000;
        store
            .put("k", &format!("2:{}:{t}", t + 30), Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(
            store.attempt("k", &rule, t * 1000 + 10_000).await.unwrap(),
            Attempt::Refused { retry_after: 20 }
        );
        assert_eq!(
            store
                .held_back("k", &rule, t * 1000 + 10_000)
                .await
                .unwrap(),
            Some(20)
        );
        assert_eq!(
            store.attempt("k", &rule, t * 1000 + 60_000).await.unwrap(),
            Attempt::Admitted { count: 1 },
            "forgotten a window after its last attempt"
        );
        // Written by this one: the earlier version's three fields first, in
        // seconds (the delay's end rounded up), then the milliseconds.
        let now_ms = t * 1000 + 61_500;
        assert_eq!(
            store.attempt("k", &rule, now_ms).await.unwrap(),
            Attempt::Admitted { count: 2 }
        );
        assert_eq!(
            store.get("k").await.unwrap().unwrap(),
            format!("2:{}:{}:{}:{now_ms}", t + 92, t + 61, now_ms + 30_000)
        );
    }
}
