//! Expiry of unactivated letters (SPEC §3.2): a provisional account whose
//! letter is older than the validity period is deleted with its guardianships;
//! one that was active before (a staff reset sent it a new letter) is closed
//! instead, keeping what refers to it.
//! A provisional student still attached to a guardian account is kept (the
//! parent's account shows the child) but the letter's password is erased.
//! Safe to run twice, or on two instances at once. The hourly task also runs
//! the protocol's housekeeping (`oidc::housekeeping`).

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::letters::{add_months, start_of_day};
use crate::app::Clef;
use crate::storage::Db;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ExpiryReport {
    pub deleted: u64,
    pub letters_voided: u64,
}

/// Accounts claimed by this run: closed now, never activated, old letter.
const CLAIMED: &str = "state = 'closed' AND closed_at = $1 AND activated_at IS NULL AND merged_into IS NULL \
                       AND letter_date < $2";

pub async fn expire_letters(
    db: &Db,
    now: i64,
    validity_months: u8,
    zone: &jiff::tz::TimeZone,
) -> anyhow::Result<ExpiryReport> {
    // Letters issued before this had their last day (`letters::letter_deadline`) yesterday.
    let cutoff = add_months(start_of_day(now, zone), -i32::from(validity_months), zone);
    let mut tx = db.begin().await?;
    // Claim first: an activation racing this run updates `WHERE state =
    // 'provisional'` and so either wins (and is not claimed) or finds nothing.
    sqlx::query(
        "UPDATE accounts SET state = 'closed', provisional_password = NULL, updated_at = $1, \
         closed_at = $1 WHERE kind = 'guardian' AND state = 'provisional' AND letter_date < $2",
    )
    .bind(now)
    .bind(cutoff)
    .execute(&mut *tx)
    .await?;
    let sql = format!("SELECT id FROM accounts WHERE {CLAIMED}");
    let claimed: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(now)
        .bind(cutoff)
        .fetch_all(&mut *tx)
        .await?;
    for table_column in [
        "guardianships WHERE guardian_id",
        "action_tokens WHERE account_id",
    ] {
        let sql =
            format!("DELETE FROM {table_column} IN (SELECT id FROM accounts WHERE {CLAIMED})");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(cutoff)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(
        "UPDATE accounts SET state = 'closed', provisional_password = NULL, updated_at = $1, \
         closed_at = $1 WHERE kind = 'student' AND state = 'provisional' AND letter_date < $2 \
         AND NOT EXISTS (SELECT 1 FROM guardianships g WHERE g.student_id = accounts.id)",
    )
    .bind(now)
    .bind(cutoff)
    .execute(&mut *tx)
    .await?;
    let sql = format!("DELETE FROM accounts WHERE {CLAIMED}");
    let deleted = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(now)
        .bind(cutoff)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    let voided = sqlx::query(
        "UPDATE accounts SET provisional_password = NULL, updated_at = $1 \
         WHERE kind = 'student' AND state = 'provisional' AND letter_date < $2 AND provisional_password IS NOT NULL",
    )
    .bind(now)
    .bind(cutoff)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    if deleted > 0 || voided > 0 {
        tracing::info!(
            deleted,
            letters_voided = voided,
            claimed_guardians = claimed.len(),
            "expired letters"
        );
    }
    Ok(ExpiryReport {
        deleted,
        letters_voided: voided,
    })
}

/// What one run of the hourly housekeeping did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Hourly {
    pub expiry: ExpiryReport,
    pub purged: crate::oidc::housekeeping::Purged,
    pub audit_events: u64,
    /// Closed accounts whose credentials and contact details were erased.
    pub closed_erased: u64,
    /// The parts that failed (and were logged), to be retried in an hour.
    pub failed: Vec<&'static str>,
}

/// One run of the hourly housekeeping: letters past their validity, the
/// protocol's leftovers, audit events past their retention, closed accounts
/// past theirs. Each part is its
/// own transaction and safe on several instances at once; a part that fails
/// is logged and the others still run.
pub async fn hourly(app: &Clef) -> Hourly {
    let mut done = Hourly::default();
    match expire_letters(
        &app.db,
        app.now(),
        app.config.letter_validity_months,
        &app.config.zone(),
    )
    .await
    {
        Ok(report) => done.expiry = report,
        Err(e) => {
            tracing::error!(
                error = format!("{e:#}"),
                "letter expiry failed; retrying in an hour"
            );
            done.failed.push("expiry");
        }
    }
    match crate::oidc::housekeeping::purge(&app.db, app.now()).await {
        Ok(purged) => {
            if purged != Default::default() {
                tracing::info!(?purged, "old sessions and refresh tokens purged");
            }
            done.purged = purged;
        }
        Err(e) => {
            tracing::error!(error = %e, "housekeeping failed; retrying in an hour");
            done.failed.push("housekeeping");
        }
    }
    let cutoff = app.now() - app.config.audit_retention_days * 24 * 3600;
    match crate::audit::purge(&app.db, cutoff).await {
        Ok(n) => {
            if n > 0 {
                tracing::info!(events = n, "audit events past their retention purged");
            }
            done.audit_events = n;
        }
        Err(e) => {
            tracing::error!(error = %e, "audit purge failed; retrying in an hour");
            done.failed.push("audit");
        }
    }
    let closed_before = app.now() - app.config.closed_account_retention_days * 24 * 3600;
    match crate::accounts::retention::erase_closed(&app.db, closed_before).await {
        Ok(erased) => {
            if !erased.is_empty() {
                tracing::info!(
                    accounts = erased.len(),
                    "closed accounts past their retention erased"
                );
                let ids: Vec<&str> = erased.iter().map(String::as_str).collect();
                let entry = crate::audit::Entry::new(
                    crate::audit::Event::AccountErased,
                    crate::audit::Outcome::Ok,
                );
                crate::audit::record_for_each(&app.db, entry, &ids, app.now()).await;
            }
            done.closed_erased = erased.len() as u64;
        }
        Err(e) => {
            tracing::error!(error = %e, "erasure of closed accounts failed; retrying in an hour");
            done.failed.push("retention");
        }
    }
    done
}

/// Runs [`hourly`] at start, then every hour, for the life of the server.
pub fn spawn(app: Arc<Clef>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(3600));
        loop {
            every.tick().await;
            hourly(&app).await;
        }
    })
}
