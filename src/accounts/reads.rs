//! Accounts read by id for code exchanges and UserInfo, several requests in
//! one statement.
//!
//! Every code exchange reads its account (is it still allowed to sign in?
//! what are its claims?). Read one exchange at a time, that is a connection
//! taken from the pool and given back (sqlx pings a connection as it comes
//! back: on SQLite, two more trips to the connection's worker thread; on
//! PostgreSQL, one more round trip) and a statement, for each exchange. Here
//! the exchanges asking at the same moment share one connection and one
//! `WHERE id IN (…)`; alone, an exchange is a batch of one.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::Account;
use super::store;
use crate::storage::{Db, batch};

/// The largest batch: 64 parameters, far below any database's limit.
const MAX_BATCH: usize = 64;

/// Lookups that may wait for a batch; beyond, a lookup waits to queue.
const QUEUE: usize = 4 * MAX_BATCH;

const READING: &str = "reading the account of a code exchange or UserInfo request";

struct Lookup {
    id: String,
    found: oneshot::Sender<Result<Option<Account>, Arc<sqlx::Error>>>,
}

/// The readers' end: lookups queue here.
pub struct AccountReads {
    queue: mpsc::Sender<Lookup>,
}

impl AccountReads {
    /// Starts the reader on the current Tokio runtime; it stops when this is
    /// dropped.
    pub fn start(db: Db) -> Self {
        let (queue, lookups) = mpsc::channel(QUEUE);
        tokio::spawn(read_batches(db, lookups));
        Self { queue }
    }

    /// The account `id`, as the database holds it now, read with whatever
    /// other lookups queued meanwhile.
    pub async fn by_id(&self, id: &str) -> Result<Option<Account>, batch::Failed> {
        let (found, answer) = oneshot::channel();
        let gone = || batch::Failed::gone(READING);
        self.queue
            .send(Lookup {
                id: id.to_owned(),
                found,
            })
            .await
            .map_err(|_| gone())?;
        answer
            .await
            .map_err(|_| gone())?
            .map_err(|e| batch::Failed::new(READING, e))
    }
}

async fn read_batches(db: Db, mut lookups: mpsc::Receiver<Lookup>) {
    let mut taken = Vec::with_capacity(MAX_BATCH);
    while batch::next(&mut lookups, &mut taken, MAX_BATCH).await {
        let mut ids: Vec<&str> = taken.iter().map(|l: &Lookup| l.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let read = async { store::accounts_by_ids(&mut *db.acquire().await?, &ids).await };
        match read.await {
            Ok(accounts) => {
                let by_id: HashMap<&str, &Account> = accounts
                    .iter()
                    .map(|account| (account.id.as_str(), account))
                    .collect();
                for lookup in taken.drain(..) {
                    let account = by_id.get(lookup.id.as_str()).map(|a| (*a).clone());
                    let _ = lookup.found.send(Ok(account));
                }
            }
            Err(e) => {
                let e = Arc::new(e);
                for lookup in taken.drain(..) {
                    let _ = lookup.found.send(Err(e.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database with `n` accounts, `a0` to `a{n-1}`.
    async fn database(n: usize) -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let db = crate::storage::open(&url).await.unwrap();
        for i in 0..n {
            sqlx::query(
                "INSERT INTO accounts (id, identifier, kind, state, given_name, family_name, created_at, updated_at) \
                 VALUES ($1, $2, 'guardian', 'active', $3, 'Martin', 0, 0)",
            )
            .bind(format!("a{i}"))
            .bind(format!("claire.martin{i}"))
            .bind(format!("Claire{i}"))
            .execute(&db)
            .await
            .unwrap();
        }
        (dir, db)
    }

    #[tokio::test]
    async fn a_hundred_ids_are_read_in_runs_each_account_once() {
        let (_dir, db) = database(120).await;
        let ids: Vec<String> = (0..100).map(|i| format!("a{i}")).collect();
        let mut asked: Vec<&str> = ids.iter().map(String::as_str).collect();
        asked.push("nobody");
        let mut found: Vec<String> =
            store::accounts_by_ids(&mut db.acquire().await.unwrap(), &asked)
                .await
                .unwrap()
                .into_iter()
                .map(|account| account.id)
                .collect();
        found.sort();
        let mut expected = ids.clone();
        expected.sort();
        assert_eq!(found, expected);
    }

    #[tokio::test]
    async fn concurrent_lookups_each_get_their_own_account_or_none() {
        let (_dir, db) = database(30).await;
        let reads = Arc::new(AccountReads::start(db));
        // 30 accounts, some asked twice at once, and ids that do not exist.
        let lookups = (0..40).map(|i| {
            let reads = reads.clone();
            tokio::spawn(async move {
                let id = match i {
                    0..30 => format!("a{i}"),
                    30..35 => format!("a{}", i - 30),
                    _ => format!("missing{i}"),
                };
                (id.clone(), reads.by_id(&id).await.unwrap())
            })
        });
        for lookup in lookups {
            let (id, account) = lookup.await.unwrap();
            match id.strip_prefix('a') {
                Some(n) => {
                    let account = account.expect("an account that exists is found");
                    assert_eq!(account.id, id);
                    assert_eq!(account.given_name, format!("Claire{n}"));
                }
                None => assert!(account.is_none(), "{id} does not exist"),
            }
        }
    }

    #[tokio::test]
    async fn a_closed_database_fails_each_lookup_as_unavailable() {
        let (_dir, db) = database(1).await;
        let reads = AccountReads::start(db.clone());
        db.close().await;
        let error = anyhow::Error::from(reads.by_id("a0").await.unwrap_err());
        assert!(crate::storage::is_unavailable(&error), "{error:#}");
    }
}
