//! The audit trail (SPEC §3.9, issue 11): every security event with its time,
//! the account it concerned, who acted (a staff member, when it was not the
//! account itself), the client address and user agent, and how it ended. An
//! account's trail is read newest first in the back office and by `clef audit`.
//!
//! Writing the trail never stops what it records: a failure to write is
//! logged as an error (and the operator's alerts watch the logs).

use std::net::IpAddr;

use serde::Serialize;
use sqlx::Row;

use crate::storage::Db;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Login,
    Activation,
    EmailConfirmed,
    /// A new address asked for in « Mon compte » (it counts once confirmed).
    EmailChangeRequested,
    PasswordChanged,
    RecoveryRequested,
    RecoveryCompleted,
    Grouping,
    Detachment,
    ConsentGiven,
    ConsentWithdrawn,
    ClientRegistered,
    ClientDeleted,
    KeyRotation,
    /// An action of the establishment's staff on an account.
    StaffAction,
    /// A staff member's back-office roles granted or taken away (the CLI).
    StaffAccess,
    /// An establishment made or changed (the CLI): its name, address or
    /// portal, which its letters send families to.
    EstablishmentChanged,
    /// A closed account's credentials and contact details erased after
    /// `closed_account_retention_days` (`accounts::retention`).
    AccountErased,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Activation => "activation",
            Self::EmailConfirmed => "email_confirmed",
            Self::EmailChangeRequested => "email_change_requested",
            Self::PasswordChanged => "password_changed",
            Self::RecoveryRequested => "recovery_requested",
            Self::RecoveryCompleted => "recovery_completed",
            Self::Grouping => "grouping",
            Self::Detachment => "detachment",
            Self::ConsentGiven => "consent_given",
            Self::ConsentWithdrawn => "consent_withdrawn",
            Self::ClientRegistered => "client_registered",
            Self::ClientDeleted => "client_deleted",
            Self::KeyRotation => "key_rotation",
            Self::StaffAction => "staff_action",
            Self::StaffAccess => "staff_access",
            Self::EstablishmentChanged => "establishment_changed",
            Self::AccountErased => "account_erased",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    /// A wrong secret (password, birth date, code).
    Failed,
    /// Not even checked: a limit, a lock, a closed account.
    Refused,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Failed => "failed",
            Self::Refused => "refused",
        }
    }
}

/// Who did something for someone else (a staff member in the back office), and from where.
#[derive(Debug, Clone, Copy)]
pub struct ActedBy<'a> {
    pub actor_id: &'a str,
    pub address: IpAddr,
    pub user_agent: &'a str,
}

/// One event to record.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub event: Event,
    pub outcome: Outcome,
    pub account_id: Option<&'a str>,
    pub actor_id: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub address: Option<IpAddr>,
    pub user_agent: Option<&'a str>,
    /// A short word on what happened (an identifier, a reference); never a secret.
    pub detail: Option<&'a str>,
}

impl<'a> Entry<'a> {
    pub fn new(event: Event, outcome: Outcome) -> Self {
        Self {
            event,
            outcome,
            account_id: None,
            actor_id: None,
            client_id: None,
            address: None,
            user_agent: None,
            detail: None,
        }
    }

    pub fn account(mut self, id: &'a str) -> Self {
        self.account_id = Some(id);
        self
    }

    pub fn actor(mut self, id: &'a str) -> Self {
        self.actor_id = Some(id);
        self
    }

    pub fn client(mut self, id: &'a str) -> Self {
        self.client_id = Some(id);
        self
    }

    pub fn from(mut self, address: IpAddr, user_agent: &'a str) -> Self {
        self.address = Some(address);
        self.user_agent = Some(user_agent);
        self
    }

    /// Done by a staff member (`by`), from where they were.
    pub fn by(self, by: &ActedBy<'a>) -> Self {
        self.actor(by.actor_id).from(by.address, by.user_agent)
    }

    pub fn detail(mut self, detail: &'a str) -> Self {
        self.detail = Some(detail);
        self
    }
}

/// Records `entry` at `now`; a failure is logged, never returned.
pub async fn record(db: &Db, entry: Entry<'_>, now: i64) {
    if let Err(e) = insert(db, &entry, now).await {
        tracing::error!(event = entry.event.as_str(), error = %e, "audit event not recorded");
    }
}

/// Records `entry` on the trail of each of `accounts` (a bulk action:
/// every account it touched shows it), in one transaction; a failure is
/// logged, never returned.
pub async fn record_for_each(db: &Db, entry: Entry<'_>, accounts: &[&str], now: i64) {
    let entries = accounts
        .iter()
        .map(|account| entry.clone().account(account))
        .collect();
    record_all(db, entries, now).await;
}

/// Records `entries` in one transaction; a failure is logged, never returned.
pub async fn record_all(db: &Db, entries: Vec<Entry<'_>>, now: i64) {
    if entries.is_empty() {
        return;
    }
    let written = async {
        let mut tx = db.begin().await?;
        for entry in entries {
            insert(&mut *tx, &entry, now).await?;
        }
        tx.commit().await
    }
    .await;
    if let Err(e) = written {
        tracing::error!(error = %e, "audit events not recorded");
    }
}

async fn insert<'e>(
    conn: impl sqlx::Executor<'e, Database = sqlx::Any>,
    entry: &Entry<'_>,
    now: i64,
) -> Result<(), sqlx::Error> {
    let user_agent: Option<String> = entry
        .user_agent
        .map(|ua| ua.chars().filter(|c| !c.is_control()).take(256).collect());
    sqlx::query(
        "INSERT INTO audit_events (id, at, event, outcome, account_id, actor_id, client_id, address, user_agent, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    // Time-ordered ids: events of the same second stay in the order they happened.
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(now)
    .bind(entry.event.as_str())
    .bind(entry.outcome.as_str())
    .bind(entry.account_id)
    .bind(entry.actor_id)
    .bind(entry.client_id)
    .bind(entry.address.map(|a| a.to_string()))
    .bind(user_agent)
    .bind(entry.detail)
    .execute(conn)
    .await?;
    Ok(())
}

/// An event as read back.
#[derive(Debug, Clone, Serialize)]
pub struct Recorded {
    pub at: i64,
    pub event: String,
    pub outcome: String,
    pub account_id: Option<String>,
    pub actor_id: Option<String>,
    pub client_id: Option<String>,
    pub address: Option<String>,
    pub user_agent: Option<String>,
    pub detail: Option<String>,
}

/// Events newest first: one account's (`Some`), or everyone's; at most `limit`.
pub async fn trail(
    db: &Db,
    account_id: Option<&str>,
    since: i64,
    limit: i64,
) -> Result<Vec<Recorded>, sqlx::Error> {
    const COLUMNS: &str =
        "at, event, outcome, account_id, actor_id, client_id, address, user_agent, detail";
    let rows = match account_id {
        Some(account_id) => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM audit_events WHERE account_id = $1 AND at >= $2 \
                 ORDER BY at DESC, id DESC LIMIT $3"
            )))
            .bind(account_id)
            .bind(since)
            .bind(limit)
            .fetch_all(db)
            .await?
        }
        None => sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM audit_events WHERE at >= $1 ORDER BY at DESC, id DESC LIMIT $2"
        )))
        .bind(since)
        .bind(limit)
        .fetch_all(db)
        .await?,
    };
    rows.iter()
        .map(|row| {
            Ok(Recorded {
                at: row.try_get("at")?,
                event: row.try_get("event")?,
                outcome: row.try_get("outcome")?,
                account_id: row.try_get("account_id")?,
                actor_id: row.try_get("actor_id")?,
                client_id: row.try_get("client_id")?,
                address: row.try_get("address")?,
                user_agent: row.try_get("user_agent")?,
                detail: row.try_get("detail")?,
            })
        })
        .collect()
}

/// Forgets events older than `cutoff` (the retention setting).
pub async fn purge(db: &Db, cutoff: i64) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM audit_events WHERE at < $1")
        .bind(cutoff)
        .execute(db)
        .await?
        .rows_affected())
}
