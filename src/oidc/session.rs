//! Login sessions (the SSO cookie's server side), kept in the short-lived store.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::accounts::store as accounts;
use crate::app::Clef;
use crate::secret::{digest, random_token};
use crate::storage::Kind;

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
}

/// Sessions live under the digest of their cookie value.
fn sessions(app: &Clef) -> Kind<Session> {
    Kind::new(&app.store, "session")
}

/// Opens a session after a successful password login (recorded as the
/// account's last login); returns the cookie value.
pub async fn open(app: &Clef, account_id: &str, now: i64) -> anyhow::Result<(String, Session)> {
    let epoch = accounts::record_login(&app.db, account_id, now).await?;
    let token = random_token(32);
    let ttl = app.config.session_ttl;
    let session = Session {
        sid: random_token(16),
        account_id: account_id.to_owned(),
        auth_time: now,
        expires_at: now + ttl,
        amr: vec!["pwd".into()],
        epoch,
    };
    sessions(app)
        .put(&digest(&token), &session, Duration::from_secs(ttl as u64))
        .await?;
    Ok((token, session))
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
    Ok((current == Some(session.epoch)).then_some(session))
}

/// Moves the session behind `token` into the account's epoch `epoch`: the
/// session where a password was changed lives on, the others end.
pub async fn carry_over(app: &Clef, token: &str, epoch: i64) -> anyhow::Result<()> {
    let Some(mut session) = sessions(app).get(&digest(token)).await? else {
        return Ok(());
    };
    let remaining = session.expires_at - app.now();
    if remaining <= 0 {
        return Ok(());
    }
    session.epoch = epoch;
    sessions(app)
        .put(
            &digest(token),
            &session,
            Duration::from_secs(remaining as u64),
        )
        .await
}

pub async fn close(app: &Clef, token: &str) -> anyhow::Result<()> {
    sessions(app).delete(&digest(token)).await
}
