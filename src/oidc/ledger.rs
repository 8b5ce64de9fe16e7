//! What code exchanges leave in the database, written by group commit.
//!
//! An exchange records that its session's client received tokens (for
//! back-channel logout) and, when the client gets refresh tokens, opens a
//! refresh family with its first token. Written one exchange at a time, that
//! is a transaction of up to five statements per exchange, each a trip to the
//! database (on SQLite, a trip to the connection's worker thread, and two
//! thread switches), and a log write per commit: measured, more than half of
//! an exchange's CPU. Here the exchanges waiting at the same moment share one
//! transaction, with a few multi-row statements per table, each kept prepared
//! (`storage::in_prepared_sizes`); each exchange answers
//! only once its batch is committed, so nothing is answered that is not
//! written. Alone, an exchange is a batch of one: nothing waits for a batch
//! to fill.
//!
//! Once a batch is committed, one more statement tells which of its sessions
//! have ended meanwhile (a logout, a password reset): a code issued in such a
//! session gives nothing. Read after the commit, so that an ending, which
//! marks its sessions ended before it revokes their refresh families, either
//! is seen here or finds the family written.

use prometheus_client::metrics::histogram::Histogram;
use sqlx::Connection;
use std::collections::HashSet;
use std::sync::Arc;

use super::refresh::{self, Opening};
use super::{backchannel, session};
use crate::storage::batch::{self, Batches, Queue};
use crate::storage::{Breaker, Db};

/// What one code exchange writes.
#[derive(Debug)]
pub struct Entry {
    /// The session the client received tokens in (back-channel logout).
    pub sid: String,
    pub client_id: String,
    pub at: i64,
    /// The refresh family the exchange opens, when the client gets one.
    pub opening: Option<Opening>,
}

/// What became of an entry, once written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Its session is still open.
    SessionOpen,
    /// Its session has ended since the code was issued: the exchange must
    /// give nothing, and revoke the family it opened.
    SessionEnded,
}

/// The writer's end: exchanges queue their entries here.
pub struct Ledger {
    queue: Queue<Entry, Written>,
}

impl Ledger {
    /// Starts the writer on the current Tokio runtime; it stops when the
    /// ledger is dropped. Each batch's size goes to `batches`.
    pub fn start(db: Db, breaker: &Arc<Breaker>, batches: Histogram) -> Self {
        let (queue, waiting) = Queue::new(
            "writing the code exchange's session record and refresh family",
            breaker,
        );
        tokio::spawn(write_batches(db, waiting, batches));
        Self { queue }
    }

    /// Writes `entry`, with whatever other exchanges queued meanwhile; returns
    /// once it is committed, telling whether its session is still open.
    pub async fn write(&self, entry: Entry) -> Result<Written, batch::Failed> {
        self.queue.ask(entry).await
    }
}

async fn write_batches(db: Db, mut waiting: Batches<Entry, Written>, batches: Histogram) {
    let mut taken = Vec::new();
    while waiting.next(&mut taken).await {
        batches.observe(taken.len() as f64);
        let entries: Vec<&Entry> = taken.iter().map(|w| &w.item).collect();
        let outcome = write(&db, &entries).await;
        drop(entries);
        batch::answer_each(&db, std::mem::take(&mut taken), outcome, |db, entry| {
            Box::pin(async move { Ok(write(db, &[entry]).await?.remove(0)) })
        })
        .await;
    }
}

/// One transaction for the batch, a few multi-row statements per table;
/// then, committed, which of its sessions have ended.
async fn write(db: &Db, entries: &[&Entry]) -> Result<Vec<Written>, sqlx::Error> {
    let records: Vec<(&str, &str, i64)> = entries
        .iter()
        .map(|e| (e.sid.as_str(), e.client_id.as_str(), e.at))
        .collect();
    let openings: Vec<&Opening> = entries.iter().filter_map(|e| e.opening.as_ref()).collect();
    let mut conn = db.acquire().await?;
    if openings.is_empty() && records.len() == 1 {
        backchannel::record_all(&mut conn, &records).await?;
    } else {
        let mut tx = conn.begin().await?;
        backchannel::record_all(&mut tx, &records).await?;
        refresh::open_all(&mut tx, &openings).await?;
        tx.commit().await?;
    }
    let mut sids: Vec<&str> = records.iter().map(|(sid, _, _)| *sid).collect();
    sids.sort_unstable();
    sids.dedup();
    let ended: HashSet<String> = session::ended_among(&mut conn, &sids).await?;
    Ok(entries
        .iter()
        .map(|e| match ended.contains(&e.sid) {
            true => Written::SessionEnded,
            false => Written::SessionOpen,
        })
        .collect())
}

#[cfg(test)]
pub(crate) mod tests {
    use sqlx::Row;
    use std::sync::Arc;

    use super::*;
    use crate::oidc::Scopes;
    use crate::oidc::refresh::{Family, Policy};

    const POLICY: Policy = Policy {
        idle: 1_000,
        absolute: 2_000,
        grace: 0,
    };

    /// A database with one account, one client and `sessions` open sessions.
    pub(crate) async fn database(sessions: usize) -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let db = crate::storage::open(&url).await.unwrap();
        for statement in [
            "INSERT INTO accounts (id, identifier, kind, state, given_name, family_name, created_at, updated_at) \
             VALUES ('a1', 'claire.martin', 'guardian', 'active', 'Claire', 'Martin', 0, 0)",
            "INSERT INTO clients (id, name, secret_hash, redirect_uris, post_logout_redirect_uris, is_public, is_first_party, created_at) \
             VALUES ('ent', 'ENT', 'x', '', '', 0, 1, 0)",
        ] {
            sqlx::query(statement).execute(&db).await.unwrap();
        }
        for n in 0..sessions {
            sqlx::query(
                "INSERT INTO sessions (sid, account_id, device, created_at, last_seen_at, expires_at) \
                 VALUES ($1, 'a1', 'test', 0, 0, 9999)",
            )
            .bind(format!("s{n}"))
            .execute(&db)
            .await
            .unwrap();
        }
        (dir, db)
    }

    pub(crate) fn entry(sid: &str, client_id: &str, refresh: bool) -> (Entry, Option<String>) {
        let (opening, token) = match refresh {
            true => {
                let family = Family {
                    id: refresh::new_family_id(),
                    client_id: client_id.into(),
                    account_id: "a1".into(),
                    scopes: Scopes::known(["openid"]),
                    sid: sid.into(),
                    auth_time: 10,
                    amr: vec!["pwd".into()],
                };
                let (opening, token) = Opening::new(family, &POLICY, 10);
                (Some(opening), Some(token))
            }
            false => (None, None),
        };
        let entry = Entry {
            sid: sid.into(),
            client_id: client_id.into(),
            at: 10,
            opening,
        };
        (entry, token)
    }

    async fn count(db: &Db, table: &str) -> i64 {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) AS n FROM {table}"
        )))
        .fetch_one(db)
        .await
        .unwrap()
        .get("n")
    }

    fn histogram_line(batches: &Histogram, line: &str) -> String {
        let metrics = crate::metrics::Metrics {
            exchange_batches: batches.clone(),
            ..Default::default()
        };
        let text = metrics.render().unwrap();
        let prefix = format!("clef_exchange_write_batch_size_{line} ");
        text.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .unwrap_or_else(|| panic!("{prefix} in {text}"))
            .to_owned()
    }

    #[tokio::test]
    async fn concurrent_exchanges_share_a_transaction_and_each_is_written() {
        let (_dir, db) = database(40).await;
        let batches = Histogram::new(std::iter::empty());
        let ledger = Arc::new(Ledger::start(
            db.clone(),
            &Breaker::new(db.clone()),
            batches.clone(),
        ));
        let mut writes = tokio::task::JoinSet::new();
        let mut tokens = Vec::new();
        for n in 0..40 {
            let (entry, token) = entry(&format!("s{n}"), "ent", n % 4 != 0);
            tokens.extend(token);
            let ledger = ledger.clone();
            writes.spawn(async move { ledger.write(entry).await });
        }
        while let Some(written) = writes.join_next().await {
            written.unwrap().unwrap();
        }
        assert_eq!(count(&db, "session_clients").await, 40);
        assert_eq!(count(&db, "refresh_families").await, 30);
        // Each answered token is the one its family holds, usable once.
        for token in &tokens {
            let rotation = refresh::rotate(
                &mut db.acquire().await.unwrap(),
                token,
                "ent",
                None,
                &POLICY,
                20,
            )
            .await
            .unwrap();
            assert!(
                matches!(rotation, refresh::Rotation::Rotated { .. }),
                "{rotation:?}"
            );
        }
        // 40 exchanges queued together: fewer transactions than exchanges.
        assert_eq!(histogram_line(&batches, "sum"), "40.0");
        let transactions: u64 = histogram_line(&batches, "count").parse().unwrap();
        assert!(
            transactions < 40,
            "{transactions} transactions for 40 exchanges"
        );
    }

    #[tokio::test]
    async fn an_entry_the_database_refuses_fails_alone() {
        let (_dir, db) = database(8).await;
        let ledger = Arc::new(Ledger::start(
            db.clone(),
            &Breaker::new(db.clone()),
            Histogram::new(std::iter::empty()),
        ));
        let mut writes = tokio::task::JoinSet::new();
        for n in 0..8 {
            // Entry 3 names a client that does not exist: its family breaks a
            // foreign key, and it alone must fail.
            let client = if n == 3 { "nobody" } else { "ent" };
            let (entry, _) = entry(&format!("s{n}"), client, true);
            let ledger = ledger.clone();
            writes.spawn(async move { (n, ledger.write(entry).await) });
        }
        while let Some(written) = writes.join_next().await {
            let (n, outcome) = written.unwrap();
            assert_eq!(outcome.is_err(), n == 3, "entry {n}: {outcome:?}");
        }
        assert_eq!(count(&db, "refresh_families").await, 7);
        assert_eq!(count(&db, "session_clients").await, 7);
    }

    #[tokio::test]
    async fn each_entry_learns_whether_its_session_has_ended() {
        let (_dir, db) = database(4).await;
        sqlx::query("UPDATE sessions SET ended_at = 5 WHERE sid IN ('s1', 's3')")
            .execute(&db)
            .await
            .unwrap();
        let ledger = Arc::new(Ledger::start(
            db.clone(),
            &Breaker::new(db.clone()),
            Histogram::new(std::iter::empty()),
        ));
        let mut writes = tokio::task::JoinSet::new();
        for n in 0..4 {
            let (entry, _) = entry(&format!("s{n}"), "ent", n < 2);
            let ledger = ledger.clone();
            writes.spawn(async move { (n, ledger.write(entry).await.unwrap()) });
        }
        while let Some(written) = writes.join_next().await {
            let (n, written) = written.unwrap();
            let expected = match n % 2 {
                0 => Written::SessionOpen,
                _ => Written::SessionEnded,
            };
            assert_eq!(written, expected, "entry s{n}");
        }
    }

    #[tokio::test]
    async fn a_closed_database_answers_unavailable() {
        let (_dir, db) = database(2).await;
        let ledger = Ledger::start(
            db.clone(),
            &Breaker::new(db.clone()),
            Histogram::new(std::iter::empty()),
        );
        db.close().await;
        let (entry, _) = entry("s0", "ent", true);
        let refused = ledger.write(entry).await.unwrap_err();
        assert!(crate::storage::is_unavailable(&refused.into()));
    }
}
