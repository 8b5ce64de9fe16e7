//! Refresh-token rotations, several refreshes in one transaction.
//!
//! A rotation claims the token, reads its family and writes the successor:
//! in a transaction of its own that is two more trips to the database (BEGIN,
//! COMMIT), a connection taken from the pool (and pinged as it goes back),
//! and a log write per refresh. Here the refreshes under way at the same
//! moment are rotated one after another in one transaction, committed before
//! any is answered, as the ledger does for code exchanges. Each rotation
//! gives back what it claimed when it refuses (`refresh::rotate_in`), so one
//! refusal never undoes the others. Alone, a refresh is a batch of one.

use std::sync::Arc;

use tokio::sync::Semaphore;

use super::refresh::{self, Presented, Rotation};
use crate::storage::batch::{self, Batches, Queue};
use crate::storage::{Breaker, Db};

/// The rotator's end: refreshes queue here.
pub struct Rotations {
    queue: Queue<Presented, Rotation>,
}

impl Rotations {
    /// Starts the rotator on the current Tokio runtime; it stops when this is
    /// dropped.
    pub fn start(db: Db, breaker: &Arc<Breaker>) -> Self {
        let (queue, waiting) = Queue::new("rotating a refresh token", breaker);
        tokio::spawn(rotate_batches(db, waiting));
        Self { queue }
    }

    /// Rotates `presented` with whatever other refreshes queued meanwhile;
    /// returns once the outcome is committed.
    pub async fn rotate(&self, presented: Presented) -> Result<Rotation, batch::Failed> {
        self.queue.ask(presented).await
    }
}

/// How many batches may be at the database at once. SQLite writes one
/// transaction at a time anyway. On PostgreSQL a batch's rotations are round
/// trips one after another: one batch at a time would queue every refresh
/// behind them, so as many run as the pool has connections, and batches stay
/// small (measured: one at a time made refreshes 15 % slower there).
fn in_flight(db: &Db) -> usize {
    match db.connect_options().database_url.scheme() {
        "sqlite" => 1,
        _ => db.options().get_max_connections() as usize,
    }
}

async fn rotate_batches(db: Db, mut waiting: Batches<Presented, Rotation>) {
    let turns = Arc::new(Semaphore::new(in_flight(&db)));
    loop {
        // The turn first: while the batches before are at the database, the
        // next one grows.
        let turn = turns
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let mut taken = Vec::new();
        if !waiting.next(&mut taken).await {
            return;
        }
        let db = db.clone();
        tokio::spawn(async move {
            // In a stable order, so that two batches lock the same tokens in
            // the same order rather than into a deadlock.
            taken.sort_by(|a, b| a.item.id.cmp(&b.item.id));
            let presented: Vec<&Presented> = taken.iter().map(|w| &w.item).collect();
            let outcome = rotate_all(&db, &presented).await;
            drop(presented);
            batch::answer_each(&db, taken, outcome, |db, one| {
                Box::pin(async move { Ok(rotate_all(db, &[one]).await?.remove(0)) })
            })
            .await;
            drop(turn);
        });
    }
}

/// One transaction for the batch, each rotation in turn.
async fn rotate_all(db: &Db, presented: &[&Presented]) -> Result<Vec<Rotation>, sqlx::Error> {
    let mut tx = db.begin().await?;
    let mut rotations = Vec::with_capacity(presented.len());
    for one in presented {
        rotations.push(refresh::rotate_in(&mut tx, one).await?);
    }
    tx.commit().await?;
    Ok(rotations)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oidc::Scopes;
    use crate::oidc::ledger::Ledger;
    use crate::oidc::ledger::tests::{database, entry};
    use crate::oidc::refresh::Policy;

    const NO_GRACE: Policy = Policy {
        idle: 1_000,
        absolute: 2_000,
        grace: 0,
    };

    /// `n` families (scope `openid`) of client `ent`, one per session; their first tokens.
    async fn families(db: &Db, n: usize) -> Vec<String> {
        let ledger = Ledger::start(
            db.clone(),
            &Breaker::new(db.clone()),
            crate::metrics::Metrics::default().exchange_batches,
        );
        let mut tokens = Vec::new();
        for i in 0..n {
            let (entry, token) = entry(&format!("s{i}"), "ent", true);
            ledger.write(entry).await.unwrap();
            tokens.push(token.unwrap());
        }
        tokens
    }

    /// Presents every `(token, asked)` at once, at `now`; the outcomes in order.
    async fn present_at_once(
        rotations: &Arc<Rotations>,
        tokens: &[(String, Option<Scopes>)],
        now: i64,
    ) -> Vec<Rotation> {
        let tasks: Vec<_> = tokens
            .iter()
            .cloned()
            .map(|(token, asked)| {
                let rotations = rotations.clone();
                tokio::spawn(async move {
                    let presented = Presented::new(&token, "ent", asked, NO_GRACE, now);
                    rotations.rotate(presented).await.unwrap()
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.unwrap());
        }
        outcomes
    }

    fn successor(rotation: &Rotation) -> String {
        match rotation {
            Rotation::Rotated { token, .. } => token.clone(),
            other => panic!("not rotated: {other:?}"),
        }
    }

    #[tokio::test]
    async fn concurrent_refreshes_each_rotate_and_each_successor_works() {
        let (_dir, db) = database(20).await;
        let first = families(&db, 20).await;
        let rotations = Arc::new(Rotations::start(db.clone(), &Breaker::new(db.clone())));
        let asked: Vec<_> = first.iter().map(|t| (t.clone(), None)).collect();
        let second: Vec<String> = present_at_once(&rotations, &asked, 20)
            .await
            .iter()
            .map(successor)
            .collect();
        let asked: Vec<_> = second.iter().map(|t| (t.clone(), None)).collect();
        for outcome in present_at_once(&rotations, &asked, 21).await {
            successor(&outcome);
        }
        // The first tokens again: spent, so reuses.
        let asked: Vec<_> = first.iter().take(3).map(|t| (t.clone(), None)).collect();
        for outcome in present_at_once(&rotations, &asked, 22).await {
            assert!(
                matches!(outcome, Rotation::ReuseDetected { .. }),
                "{outcome:?}"
            );
        }
    }

    #[tokio::test]
    async fn one_token_twice_in_a_batch_without_grace_lets_no_successor_live() {
        let (_dir, db) = database(1).await;
        let token = families(&db, 1).await.remove(0);
        let rotations = Arc::new(Rotations::start(db.clone(), &Breaker::new(db.clone())));
        let twice = [(token.clone(), None), (token, None)];
        let outcomes = present_at_once(&rotations, &twice, 20).await;
        let rotated: Vec<&Rotation> = outcomes
            .iter()
            .filter(|o| matches!(o, Rotation::Rotated { .. }))
            .collect();
        assert_eq!(rotated.len(), 1, "{outcomes:?}");
        assert!(
            outcomes
                .iter()
                .any(|o| matches!(o, Rotation::ReuseDetected { .. })),
            "{outcomes:?}"
        );
        // The reuse revoked the family, the successor with it.
        let again = [(successor(rotated[0]), None)];
        let outcome = present_at_once(&rotations, &again, 21).await;
        assert!(matches!(outcome[0], Rotation::Invalid), "{outcome:?}");
    }

    #[tokio::test]
    async fn a_refusal_in_a_batch_spends_nothing_and_undoes_no_other_rotation() {
        let (_dir, db) = database(2).await;
        let tokens = families(&db, 2).await;
        let rotations = Arc::new(Rotations::start(db.clone(), &Breaker::new(db.clone())));
        let wider = Scopes::known(["openid", "profile"]);
        let asked = [
            (tokens[0].clone(), Some(wider)),
            (tokens[1].clone(), None),
            ("unknown".to_owned(), None),
        ];
        let outcomes = present_at_once(&rotations, &asked, 20).await;
        assert!(matches!(outcomes[0], Rotation::WiderScope), "{outcomes:?}");
        assert!(matches!(outcomes[2], Rotation::Invalid), "{outcomes:?}");
        let other = successor(&outcomes[1]);
        // Well past any grace: the refused token was not spent, the other was rotated.
        let later = [(tokens[0].clone(), None), (other, None)];
        for outcome in present_at_once(&rotations, &later, 500).await {
            successor(&outcome);
        }
    }

    #[tokio::test]
    async fn a_closed_database_fails_each_refresh_as_unavailable() {
        let (_dir, db) = database(1).await;
        let token = families(&db, 1).await.remove(0);
        let rotations = Rotations::start(db.clone(), &Breaker::new(db.clone()));
        db.close().await;
        let error = rotations
            .rotate(Presented::new(&token, "ent", None, NO_GRACE, 20))
            .await
            .unwrap_err();
        let error = anyhow::Error::from(error);
        assert!(crate::storage::is_unavailable(&error), "{error:#}");
    }
}
