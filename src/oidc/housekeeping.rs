//! What the protocol leaves in the database and no longer needs: sessions
//! over for a month (kept that long for the account's history), the record of
//! which clients they reached, and refresh-token families a month past their
//! end, recovery requests a month old, and mail links (address confirmations,
//! password resets) a month after they were used or expired, with an address
//! change's pending address once no link for it is left. Safe to run twice,
//! or on two instances at once.

use crate::storage::Db;

/// How long ended sessions and refresh families are kept, in seconds.
const KEPT: i64 = 30 * 24 * 3600;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub sessions: u64,
    pub refresh_families: u64,
    pub recovery_requests: u64,
    pub mail_links: u64,
    pub pending_addresses: u64,
}

pub async fn purge(db: &Db, now: i64) -> Result<Purged, sqlx::Error> {
    let cutoff = now - KEPT;
    let mut tx = db.begin().await?;
    let over_sessions = "SELECT sid FROM sessions WHERE COALESCE(ended_at, expires_at) < $1";
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM session_clients WHERE sid IN ({over_sessions})"
    )))
    .bind(cutoff)
    .execute(&mut *tx)
    .await?;
    let sessions = sqlx::query("DELETE FROM sessions WHERE COALESCE(ended_at, expires_at) < $1")
        .bind(cutoff)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    let over_families =
        "SELECT id FROM refresh_families WHERE COALESCE(revoked_at, expires_at) < $1";
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM refresh_tokens WHERE family_id IN ({over_families})"
    )))
    .bind(cutoff)
    .execute(&mut *tx)
    .await?;
    let refresh_families =
        sqlx::query("DELETE FROM refresh_families WHERE COALESCE(revoked_at, expires_at) < $1")
            .bind(cutoff)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    let recovery_requests = sqlx::query("DELETE FROM recovery_requests WHERE created_at < $1")
        .bind(cutoff)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    // A link used or expired a month ago answers « lien invalide » rather
    // than « déjà utilisé »; it holds the address it was sent to.
    let mail_links =
        sqlx::query("DELETE FROM action_tokens WHERE COALESCE(consumed_at, expires_at) < $1")
            .bind(cutoff)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    // An address change never confirmed: no link can confirm it any more, and
    // the address, perhaps mistyped, may be a stranger's. Not an account
    // written this month: a change proposed while this runs holds the row,
    // and PostgreSQL re-checks the row (not the subquery) once it is free.
    let pending_addresses = sqlx::query(
        "UPDATE accounts SET pending_email = NULL WHERE pending_email IS NOT NULL \
         AND updated_at < $2 AND NOT EXISTS (SELECT 1 FROM action_tokens t WHERE t.account_id = accounts.id \
         AND t.purpose = 'confirm_email' AND t.consumed_at IS NULL AND t.expires_at >= $1)",
    )
    .bind(now)
    .bind(cutoff)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(Purged {
        sessions,
        refresh_families,
        recovery_requests,
        mail_links,
        pending_addresses,
    })
}
