//! Password login (SPEC §3.1): one generic answer for every failure, and
//! failure counters per account and per address that lock for a while.

use std::net::IpAddr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::{Account, AccountState, PasswordError, store};
use crate::app::Clef;
use crate::domain::Identifier;

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Unknown identifier, wrong password, or an account that cannot sign in:
    /// the person is told the same thing in each case.
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("too many failed attempts")]
    TooManyAttempts,
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// The failure window: counters reset this long after the first failure, so a
/// lock lasts at most this long (an attacker cannot lock a parent out for long).
const WINDOW: Duration = Duration::from_secs(15 * 60);
const MAX_FAILURES_PER_ACCOUNT: u64 = 10;
const MAX_FAILURES_PER_ADDRESS: u64 = 100;
/// Passwords longer than this are refused before hashing (argon2 input bound).
pub const MAX_PASSWORD: usize = 256;

pub async fn authenticate(
    app: &Clef,
    identifier: &Identifier,
    password: &SecretString,
    ip: IpAddr,
) -> Result<Account, LoginError> {
    let account_key = format!("fail:account:{identifier}");
    let address_key = format!("fail:ip:{ip}");
    for (key, max) in [
        (&account_key, MAX_FAILURES_PER_ACCOUNT),
        (&address_key, MAX_FAILURES_PER_ADDRESS),
    ] {
        let failures = app
            .store
            .get(key)
            .await?
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        if failures >= max {
            return Err(LoginError::TooManyAttempts);
        }
    }
    let account = store::account_by_identifier(&app.db, identifier)
        .await
        .map_err(anyhow::Error::from)?;
    let too_long = password.expose_secret().len() > MAX_PASSWORD;
    let hash = account
        .as_ref()
        .and_then(|a| a.password_hash.as_deref())
        .filter(|_| !too_long);
    // Always hash, even for an unknown identifier, so timing tells nothing.
    let matches = app.passwords.verify(password, hash).await?;
    match account {
        Some(account) if matches && account.state == AccountState::Active => {
            store::record_login(&app.db, &account.id, app.now())
                .await
                .map_err(anyhow::Error::from)?;
            app.store.delete(&account_key).await?;
            Ok(account)
        }
        _ => {
            app.store.incr(&account_key, WINDOW).await?;
            app.store.incr(&address_key, WINDOW).await?;
            tracing::info!(%ip, "failed login");
            Err(LoginError::InvalidCredentials)
        }
    }
}
