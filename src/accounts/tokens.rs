//! Single-use action tokens for emailed links: only their SHA-256 is stored;
//! issuing a new one for the same purpose retires the older ones.

use sqlx::Row;
use sqlx::any::Any;

use crate::secret::{digest, random_token};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    ConfirmEmail,
    ResetPassword,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::ConfirmEmail => "confirm_email",
            Self::ResetPassword => "reset_password",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ActionToken {
    pub id: String,
    pub account_id: String,
    /// The address the link was sent to (the one it confirms).
    pub email: Option<String>,
    /// Where to send the person afterwards (an authorization request under way).
    pub return_to: Option<String>,
    pub expires_at: i64,
    pub consumed_at: Option<i64>,
}

/// Why a link does not work (each gets its own explanation on screen).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenProblem {
    #[error("unknown link")]
    Unknown,
    #[error("link already used or replaced by a newer one")]
    Used,
    #[error("link expired")]
    Expired,
}

type Conn = sqlx::AnyConnection;

/// Issues a token and retires the account's earlier ones for the same purpose.
pub async fn issue(
    conn: &mut Conn,
    account_id: &str,
    purpose: Purpose,
    email: Option<&str>,
    return_to: Option<&str>,
    now: i64,
    expires_at: i64,
) -> Result<String, sqlx::Error> {
    sqlx::query(
        "UPDATE action_tokens SET consumed_at = $1 WHERE account_id = $2 AND purpose = $3 AND consumed_at IS NULL",
    )
    .bind(now)
    .bind(account_id)
    .bind(purpose.as_str())
    .execute(&mut *conn)
    .await?;
    let token = random_token(32);
    sqlx::query(
        "INSERT INTO action_tokens (id, account_id, purpose, token_hash, email, return_to, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(account_id)
    .bind(purpose.as_str())
    .bind(digest(&token))
    .bind(email)
    .bind(return_to)
    .bind(now)
    .bind(expires_at)
    .execute(&mut *conn)
    .await?;
    Ok(token)
}

/// Looks a token up without consuming it (the GET that shows the form).
pub async fn check(
    conn: &mut Conn,
    token: &str,
    purpose: Purpose,
    now: i64,
) -> Result<Result<ActionToken, TokenProblem>, sqlx::Error> {
    let Some(found) = find(conn, token, purpose).await? else {
        return Ok(Err(TokenProblem::Unknown));
    };
    Ok(if found.consumed_at.is_some() {
        Err(TokenProblem::Used)
    } else if found.expires_at <= now {
        Err(TokenProblem::Expired)
    } else {
        Ok(found)
    })
}

/// The token, whether it may still be used or not.
pub async fn find(
    conn: &mut Conn,
    token: &str,
    purpose: Purpose,
) -> Result<Option<ActionToken>, sqlx::Error> {
    if token.len() != 43 {
        return Ok(None);
    }
    let row = sqlx::query(
        "SELECT id, account_id, email, return_to, expires_at, consumed_at FROM action_tokens \
         WHERE token_hash = $1 AND purpose = $2",
    )
    .bind(digest(token))
    .bind(purpose.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    Ok(Some(ActionToken {
        id: row.try_get("id")?,
        account_id: row.try_get("account_id")?,
        email: row.try_get("email")?,
        return_to: row.try_get("return_to")?,
        expires_at: row.try_get("expires_at")?,
        consumed_at: row.try_get("consumed_at")?,
    }))
}

/// Consumes a token: of two concurrent consumers, one succeeds.
pub async fn consume(
    tx: &mut sqlx::Transaction<'_, Any>,
    token: &str,
    purpose: Purpose,
    now: i64,
) -> Result<Result<ActionToken, TokenProblem>, sqlx::Error> {
    let found = match check(&mut *tx, token, purpose, now).await? {
        Ok(found) => found,
        Err(problem) => return Ok(Err(problem)),
    };
    let updated = sqlx::query(
        "UPDATE action_tokens SET consumed_at = $1 WHERE id = $2 AND consumed_at IS NULL",
    )
    .bind(now)
    .bind(&found.id)
    .execute(&mut **tx)
    .await?;
    Ok(if updated.rows_affected() == 1 {
        Ok(found)
    } else {
        Err(TokenProblem::Used)
    })
}
