//! Storage limitation for closed accounts (RGPD art. 5(1)(e)). An account is
//! closed when it is grouped into another, closed by its school (a pupil who
//! left, a parent the school detached), or when its letter expired after
//! use. Its row stays: its identifier stays taken, the school's next files
//! are compared with it (a pupil's number or a parent's name the school
//! closed is not created again), an old identifier grouped into another
//! still finds its way. What reaches or authenticates the person goes once
//! the account has been closed `closed_account_retention_days`: password
//! hash, addresses (confirmed and pending), phone, a pupil's birth date, the
//! times of the last sign-ins, the services it allowed, and its mail links.
//! Safe to run twice, or on two instances at once.

use crate::storage::Db;

/// Closed accounts still holding something to erase, closed before `$1` (an
/// account closed by a previous version during a rolling update has no
/// `closed_at`: its last write dates it).
const DUE: &str = "state = 'closed' AND COALESCE(closed_at, updated_at) < $1 \
     AND (password_hash IS NOT NULL OR email IS NOT NULL OR pending_email IS NOT NULL \
     OR phone IS NOT NULL OR birthdate IS NOT NULL OR last_login_at IS NOT NULL \
     OR previous_login_at IS NOT NULL OR provisional_password IS NOT NULL)";

/// Erases what the accounts closed before `closed_before` (seconds) still
/// hold of their person; returns the ids of the accounts this call erased
/// (another instance's run at the same moment erases, and returns, others).
pub async fn erase_closed(db: &Db, closed_before: i64) -> Result<Vec<String>, sqlx::Error> {
    let mut tx = db.begin().await?;
    for dependent in [
        "DELETE FROM action_tokens WHERE account_id IN (SELECT id FROM accounts WHERE {DUE})",
        "DELETE FROM consent_children WHERE account_id IN (SELECT id FROM accounts WHERE {DUE}) \
         OR child_id IN (SELECT id FROM accounts WHERE {DUE})",
        "DELETE FROM consents WHERE account_id IN (SELECT id FROM accounts WHERE {DUE})",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(dependent.replace("{DUE}", DUE)))
            .bind(closed_before)
            .execute(&mut *tx)
            .await?;
    }
    let erased = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "UPDATE accounts SET password_hash = NULL, email = NULL, email_verified_at = NULL, \
         pending_email = NULL, phone = NULL, birthdate = NULL, last_login_at = NULL, \
         previous_login_at = NULL, provisional_password = NULL WHERE {DUE} RETURNING id"
    )))
    .bind(closed_before)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(erased)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The retention counts from the closure, whatever was written to the
    /// row since; an account closed by a previous version (no `closed_at`)
    /// is dated by its last write; an open account is never erased.
    #[tokio::test]
    async fn the_retention_counts_from_the_closure() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let db = crate::storage::open(&url).await.unwrap();
        for (id, state, closed_at, updated_at) in [
            ("closed_then_written", "closed", Some(10), 500),
            ("closed_lately", "closed", Some(200), 200),
            ("closed_by_old_version", "closed", None, 20),
            ("open", "active", None, 5),
        ] {
            sqlx::query(
                "INSERT INTO accounts (id, identifier, kind, state, given_name, family_name, \
                 password_hash, email, closed_at, created_at, updated_at) \
                 VALUES ($1, $1, 'guardian', $2, 'Marc', 'Baillet', 'hash', 'm@b.fr', $3, 0, $4)",
            )
            .bind(id)
            .bind(state)
            .bind(closed_at)
            .bind(updated_at)
            .execute(&db)
            .await
            .unwrap();
        }
        let mut erased = erase_closed(&db, 100).await.unwrap();
        erased.sort();
        assert_eq!(erased, ["closed_by_old_version", "closed_then_written"]);
        assert!(erase_closed(&db, 100).await.unwrap().is_empty());
        let kept: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM accounts WHERE password_hash IS NOT NULL AND email IS NOT NULL ORDER BY id",
        )
        .fetch_all(&db)
        .await
        .unwrap();
        assert_eq!(kept, ["closed_lately", "open"]);
    }
}
