//! Login sessions (the SSO cookie's server side), kept in the short-lived store.

use std::collections::HashSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::accounts::Account;
use crate::accounts::store as accounts;
use crate::app::Clef;
use crate::secret::{digest, random_token};
use crate::storage::{Db, Kind};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    /// The session id relying parties see as `sid` (OIDC Front/Back-Channel Logout).
    pub sid: String,
    pub account_id: String,
    pub auth_time: i64,
    pub expires_at: i64,
    pub amr: Vec<String>,
    /// The account's session epoch when the session was opened.
    #[serde(default)]
    pub epoch: i64,
    /// Names the password entry `auth_time` is the time of: a new one at
    /// each (a sign-in, or the same person's again in this session, see
    /// [`renew`]); empty for a session stored before this field.
    #[serde(default)]
    pub authentication: String,
}

/// Sessions live under the digest of their cookie value.
fn sessions(app: &Clef) -> Kind<Session> {
    Kind::new(&app.store, "session")
}

/// Opens a session after a successful password login (recorded as the
/// account's last login); returns the cookie value, or `None` if the
/// account's credentials changed since they were checked (see
/// [`accounts::record_login`]).
/// `device` names the browser (its User-Agent), for the account's list of sessions.
pub async fn open(
    app: &Clef,
    account: &Account,
    device: &str,
    now: i64,
) -> anyhow::Result<Option<(String, Session)>> {
    let Some(epoch) = accounts::record_login(&app.db, account, now).await? else {
        return Ok(None);
    };
    let token = random_token(32);
    let ttl = app.config.session_ttl;
    let session = Session {
        sid: random_token(16),
        account_id: account.id.clone(),
        auth_time: now,
        expires_at: now + ttl,
        amr: vec!["pwd".into()],
        epoch,
        authentication: random_token(16),
    };
    sqlx::query(
        "INSERT INTO sessions (sid, account_id, device, created_at, last_seen_at, expires_at, epoch) \
         VALUES ($1, $2, $3, $4, $4, $5, $6)",
    )
    .bind(&session.sid)
    .bind(&account.id)
    .bind(device)
    .bind(now)
    .bind(session.expires_at)
    .bind(epoch)
    .execute(&app.db)
    .await?;
    sessions(app)
        .put(&digest(&token), &session, Duration::from_secs(ttl as u64))
        .await?;
    Ok(Some((token, session)))
}

/// What a password entry did to the session its browser already had.
pub enum Renewal {
    /// The same person: the session goes on, under the same cookie value.
    Renewed(Session),
    /// The account's credentials changed since they were checked: no session.
    CredentialsChanged,
    /// Another person's, or gone: it is to end, and a new one to open.
    NotRenewable,
}

/// The person of the live session behind `token` typed their password again
/// (`prompt=login`, `max_age`, a sign-in page left open): the session goes
/// on, the same `sid` the relying parties hold (ending it would log the
/// person out of every service of the session, Back-Channel Logout §2.7),
/// with `auth_time` now and its lifetime started again. The cookie value
/// stays: it already stood for this very person (nothing to fixate), and
/// two sign-ins at once (a double click, two tabs) then renew one session
/// rather than strand the services' one under a value no browser holds. A
/// logout meanwhile wins: the registry marks the session ended, which
/// [`find`] reads.
pub async fn renew(
    app: &Clef,
    token: &str,
    account: &Account,
    now: i64,
) -> anyhow::Result<Renewal> {
    let Some(old) = find(app, token, now).await? else {
        return Ok(Renewal::NotRenewable);
    };
    if old.account_id != account.id {
        return Ok(Renewal::NotRenewable);
    }
    let Some(epoch) = accounts::record_login(&app.db, account, now).await? else {
        return Ok(Renewal::CredentialsChanged);
    };
    if old.epoch != epoch {
        return Ok(Renewal::NotRenewable);
    }
    let ttl = app.config.session_ttl;
    let session = Session {
        auth_time: now,
        expires_at: now + ttl,
        amr: vec!["pwd".into()],
        authentication: random_token(16),
        ..old
    };
    let renewed = sqlx::query(
        "UPDATE sessions SET expires_at = $1, last_seen_at = $2 \
         WHERE sid = $3 AND ended_at IS NULL AND epoch = $4",
    )
    .bind(session.expires_at)
    .bind(now)
    .bind(&session.sid)
    .bind(epoch)
    .execute(&app.db)
    .await?
    .rows_affected();
    if renewed == 0 {
        return Ok(Renewal::NotRenewable);
    }
    sessions(app)
        .put(&digest(token), &session, Duration::from_secs(ttl as u64))
        .await?;
    Ok(Renewal::Renewed(session))
}

/// The live session behind a cookie value, if any.
pub async fn find(app: &Clef, token: &str, now: i64) -> anyhow::Result<Option<Session>> {
    if token.len() != 43 {
        return Ok(None);
    }
    let Some(session) = sessions(app).get(&digest(token)).await? else {
        return Ok(None);
    };
    if session.expires_at <= now {
        return Ok(None);
    }
    // Ended by a password change made in another session (or the account is gone).
    let current = accounts::session_epoch(&app.db, &session.account_id).await?;
    if current != Some(session.epoch) {
        return Ok(None);
    }
    // Ended in the registry: a logout that raced a renewal of the same
    // session (`renew` wrote it back after the logout took it).
    if seen(app, &session.sid, now).await? == Registry::Ended {
        return Ok(None);
    }
    Ok(Some(session))
}

/// Moves the session behind `token` into the account's epoch `epoch`: the
/// session where a password was changed lives on, the others end.
pub async fn carry_over(app: &Clef, token: &str, epoch: i64) -> anyhow::Result<Option<Session>> {
    let Some(mut session) = sessions(app).get(&digest(token)).await? else {
        return Ok(None);
    };
    let remaining = session.expires_at - app.now();
    if remaining <= 0 {
        return Ok(None);
    }
    session.epoch = epoch;
    sessions(app)
        .put(
            &digest(token),
            &session,
            Duration::from_secs(remaining as u64),
        )
        .await?;
    sqlx::query("UPDATE sessions SET epoch = $1 WHERE sid = $2")
        .bind(epoch)
        .bind(&session.sid)
        .execute(&app.db)
        .await?;
    Ok(Some(session))
}

/// Closes the session behind a cookie value; returns it if it was open.
pub async fn close(app: &Clef, token: &str) -> anyhow::Result<Option<Session>> {
    let session = sessions(app).take(&digest(token)).await?;
    if let Some(session) = &session {
        sqlx::query("UPDATE sessions SET ended_at = $1 WHERE sid = $2 AND ended_at IS NULL")
            .bind(app.now())
            .bind(&session.sid)
            .execute(&app.db)
            .await?;
    }
    Ok(session)
}

/// Those of `sids` the registry holds as ended, or opened in an earlier
/// session epoch than their account's (ended by a sign-out everywhere that
/// marked the registry before they were written to it). A session opened
/// before the registry existed is not in it: not ended, as far as it can tell.
pub async fn ended_among(
    db: &mut sqlx::AnyConnection,
    sids: &[&str],
) -> Result<HashSet<String>, sqlx::Error> {
    let mut ended = HashSet::new();
    for run in crate::storage::in_prepared_sizes(sids) {
        let sql = format!(
            "SELECT s.sid FROM sessions s JOIN accounts a ON a.id = s.account_id \
             WHERE (s.ended_at IS NOT NULL OR s.epoch < a.session_epoch) AND s.sid IN {}",
            crate::storage::values_list(1, run.len())
        );
        let mut query = sqlx::query_scalar(sqlx::AssertSqlSafe(sql));
        for sid in run {
            query = query.bind(*sid);
        }
        ended.extend(query.fetch_all(&mut *db).await?);
    }
    Ok(ended)
}

/// Marks every open session of the account opened before its session epoch
/// `epoch` ended in the registry (their store entries die with the epoch),
/// but `keep`; returns their ids. A session opened in `epoch` meanwhile (a
/// sign-in with the new password) stays open.
pub async fn end_others(
    app: &Clef,
    account_id: &str,
    epoch: i64,
    keep: Option<&str>,
) -> anyhow::Result<Vec<String>> {
    let now = app.now();
    Ok(sqlx::query_scalar(
        "UPDATE sessions SET ended_at = $1 \
         WHERE account_id = $2 AND ended_at IS NULL AND expires_at > $1 \
         AND (epoch IS NULL OR epoch < $3) AND sid <> $4 RETURNING sid",
    )
    .bind(now)
    .bind(account_id)
    .bind(epoch)
    // No session id is empty.
    .bind(keep.unwrap_or_default())
    .fetch_all(&app.db)
    .await?)
}

/// How stale `last_seen_at` may get: a session in use is written to at most
/// once in this many seconds, not on every request.
const LAST_SEEN_STEP: i64 = 300;

/// What the registry says of a session in use.
#[derive(Debug, PartialEq, Eq)]
enum Registry {
    /// Open, or not in the registry (opened before it existed).
    Open,
    Ended,
}

/// Records that the session `sid` was used at `now`, for « Mon compte »;
/// answers whether the registry holds it as ended.
async fn seen(app: &Clef, sid: &str, now: i64) -> anyhow::Result<Registry> {
    let row: Option<(i64, Option<i64>)> =
        sqlx::query_as("SELECT last_seen_at, ended_at FROM sessions WHERE sid = $1")
            .bind(sid)
            .fetch_optional(&app.db)
            .await?;
    if row.is_some_and(|(_, ended_at)| ended_at.is_some()) {
        return Ok(Registry::Ended);
    }
    let last = row.map(|(last, _)| last);
    if last.is_some_and(|last| now - last >= LAST_SEEN_STEP) {
        sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE sid = $2 AND last_seen_at < $1")
            .bind(now)
            .bind(sid)
            .execute(&app.db)
            .await?;
    }
    Ok(Registry::Open)
}

/// An open session as the person sees it in « Mon compte ».
#[derive(Debug, Clone)]
pub struct OpenSession {
    pub sid: String,
    /// The browser, as its User-Agent named it.
    pub device: String,
    pub created_at: i64,
    pub last_seen_at: i64,
}

/// The account's sessions neither ended nor expired at `now`, the most
/// recently used first.
pub async fn open_sessions(
    db: &Db,
    account_id: &str,
    now: i64,
) -> Result<Vec<OpenSession>, sqlx::Error> {
    use sqlx::Row;
    sqlx::query(
        "SELECT sid, device, created_at, last_seen_at FROM sessions \
         WHERE account_id = $1 AND ended_at IS NULL AND expires_at > $2 \
         ORDER BY last_seen_at DESC, created_at DESC",
    )
    .bind(account_id)
    .bind(now)
    .fetch_all(db)
    .await?
    .iter()
    .map(|row| {
        Ok(OpenSession {
            sid: row.try_get("sid")?,
            device: row.try_get("device")?,
            created_at: row.try_get("created_at")?,
            last_seen_at: row.try_get("last_seen_at")?,
        })
    })
    .collect()
}
