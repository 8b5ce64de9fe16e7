//! Password login (SPEC §3.1): one generic answer for every failure, and
//! failure counters per account and per address that lock for a while.

use std::net::IpAddr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::activation::{letter_valid, provisional_password_matches};
use super::{Account, AccountState, PasswordError, store};
use crate::app::Clef;
use crate::domain::Identifier;

/// Where a correct password leads.
#[derive(Debug)]
pub enum LoginOutcome {
    /// The account may reach applications: open a session.
    SignedIn(Account),
    /// A provisional account used its letter's password: first connection (§3.2).
    FirstConnection(Account),
    /// A guardian whose address is not confirmed (§3.3).
    Unconfirmed(Account),
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Unknown identifier, wrong password, or an account that cannot sign in:
    /// the person is told the same thing in each case.
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("too many failed attempts")]
    TooManyAttempts,
    /// The letter's password is right but the letter is over three months old.
    #[error("the letter has expired")]
    LetterExpired,
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
) -> Result<LoginOutcome, LoginError> {
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
    let provisional = account
        .as_ref()
        .is_some_and(|a| a.state == AccountState::Provisional);
    let hash = account
        .as_ref()
        .filter(|_| !provisional && !too_long)
        .and_then(|a| a.password_hash.as_deref());
    // Always hash, even for an unknown identifier or a letter's password
    // (which is checked without hashing), so timing tells nothing.
    let hash_matches = app.passwords.verify(password, hash).await?;
    let outcome = match account {
        Some(account)
            if provisional
                && !too_long
                && provisional_password_matches(app, &account, password) =>
        {
            if !letter_valid(app, &account, app.now()) {
                return Err(LoginError::LetterExpired);
            }
            Some(LoginOutcome::FirstConnection(account))
        }
        Some(account) if hash_matches && account.may_use_applications() => {
            Some(LoginOutcome::SignedIn(account))
        }
        Some(account) if hash_matches && account.state == AccountState::PendingEmail => {
            Some(LoginOutcome::Unconfirmed(account))
        }
        _ => None,
    };
    match outcome {
        Some(outcome) => {
            app.store.delete(&account_key).await?;
            Ok(outcome)
        }
        None => {
            app.store.incr(&account_key, WINDOW).await?;
            app.store.incr(&address_key, WINDOW).await?;
            tracing::info!(%ip, "failed login");
            Err(LoginError::InvalidCredentials)
        }
    }
}
