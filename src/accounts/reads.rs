//! Accounts read by id for code exchanges, refreshes and UserInfo, several
//! requests in one statement.
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

use super::Account;
use super::store;
use crate::storage::batch::{self, Batches, Queue};
use crate::storage::{Breaker, Db};

/// The readers' end: lookups queue here.
pub struct AccountReads {
    queue: Queue<String, Option<Account>>,
}

impl AccountReads {
    /// Starts the reader on the current Tokio runtime; it stops when this is
    /// dropped.
    pub fn start(db: Db, breaker: &Arc<Breaker>) -> Self {
        let (queue, lookups) = Queue::new("reading the account of a request", breaker);
        tokio::spawn(read_batches(db, lookups));
        Self { queue }
    }

    /// The account `id`, as the database holds it now, read with whatever
    /// other lookups queued meanwhile.
    pub async fn by_id(&self, id: &str) -> Result<Option<Account>, batch::Failed> {
        self.queue.ask(id.to_owned()).await
    }
}

async fn read_batches(db: Db, mut lookups: Batches<String, Option<Account>>) {
    let mut taken = Vec::new();
    while lookups.next(&mut taken).await {
        let asked: Vec<&str> = taken.iter().map(|w| w.item.as_str()).collect();
        let outcome = read(&db, &asked).await;
        drop(asked);
        batch::answer_each(&db, std::mem::take(&mut taken), outcome, |db, id| {
            Box::pin(async move { Ok(read(db, &[id]).await?.remove(0)) })
        })
        .await;
    }
}

/// Each asked account (or none), in the order asked.
async fn read(db: &Db, asked: &[&str]) -> Result<Vec<Option<Account>>, sqlx::Error> {
    let mut ids = asked.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let accounts = store::accounts_by_ids(&mut *db.acquire().await?, &ids).await?;
    let by_id: HashMap<&str, &Account> = accounts
        .iter()
        .map(|account| (account.id.as_str(), account))
        .collect();
    Ok(asked
        .iter()
        .map(|id| by_id.get(id).map(|a| (*a).clone()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

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
        let reads = Arc::new(AccountReads::start(db.clone(), &Breaker::new(db)));
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
        let reads = AccountReads::start(db.clone(), &Breaker::new(db.clone()));
        db.close().await;
        let error = anyhow::Error::from(reads.by_id("a0").await.unwrap_err());
        assert!(crate::storage::is_unavailable(&error), "{error:#}");
    }
}
