//! Password login (SPEC §3.1): one generic answer for every failure, attempts
//! counted before they are checked (see `throttle`).

use secrecy::{ExposeSecret, SecretString};

use super::activation::{letter_valid, provisional_password_matches};
use super::throttle::{Admission, Origin};
use super::{Account, AccountState, PasswordError};
use crate::app::Clef;
use crate::domain::Identifier;
use crate::metrics::LoginResult;

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

impl LoginOutcome {
    pub fn account(&self) -> &Account {
        match self {
            Self::SignedIn(account)
            | Self::FirstConnection(account)
            | Self::Unconfirmed(account) => account,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Unknown identifier, wrong password, or an account that cannot sign in:
    /// the person is told the same thing in each case.
    #[error("invalid credentials")]
    InvalidCredentials {
        /// The account the identifier named, if any: for its audit trail only.
        account_id: Option<String>,
    },
    /// Not checked: too many attempts on the account or from the address.
    /// Or checked and wrong, from a locked address (`Admission::RightOnly`),
    /// and told as the lock is (`wrong`).
    #[error("too many failed attempts, retry in {retry_after} s")]
    TooManyAttempts {
        retry_after: u64,
        /// The account the identifier named, if any: for its audit trail only.
        account_id: Option<String>,
        /// The password was checked, and wrong: on the trail as a failure.
        wrong: bool,
    },
    /// The password is right but the account is closed: grouped into another
    /// one (the person signs in there now), or closed by the school or the
    /// academy. Told only to whoever typed its password; not counted as a
    /// failed attempt.
    #[error("the account is closed")]
    Closed { account_id: String, grouped: bool },
    /// The letter's password is right but the letter is over three months old.
    #[error("the letter has expired")]
    LetterExpired,
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// What a locked address is answered without a check waits first, as long
/// as a check takes: timing does not tell which of its attempts were checked
/// (`Admission::RightOnly`).
pub(super) async fn as_long_as_a_check(app: &Clef) {
    tokio::time::sleep(app.passwords.typical_check()).await;
}

/// Passwords longer than this are refused before hashing (argon2 input bound).
pub const MAX_PASSWORD: usize = 256;

/// A typed identifier as logs and the audit trail show it: as typed when it
/// names an account; else a keyed tag of it (the same text gives the same
/// tag, so a spray still shows), since what was typed may be a password in
/// the wrong box — a letter's password is a valid identifier once lower-cased.
pub fn shown_identifier(app: &Clef, identifier: &Identifier, known: bool) -> String {
    if known {
        identifier.to_string()
    } else {
        let tag = app.devices.tag("typed-identifier", identifier.as_str());
        format!("inconnu:{}", &tag[..12])
    }
}

/// Checks `password` for the account `identifier` names (`account`, as the
/// caller read it to tell its browser), once the attempt is counted.
pub async fn authenticate(
    app: &Clef,
    identifier: &Identifier,
    account: Option<Account>,
    password: &SecretString,
    origin: &Origin,
) -> Result<LoginOutcome, LoginError> {
    let gate = app
        .throttle
        .enter(identifier.as_str(), origin, app.now_ms())
        .await?;
    let locked = |account_id: Option<String>, retry_after, wrong| {
        let identifier = shown_identifier(app, identifier, account_id.is_some());
        match wrong {
            false => {
                app.metrics.login(LoginResult::locked);
                tracing::info!(identifier, address = %origin.address, retry_after, "login refused: too many attempts");
            }
            true => {
                app.metrics.login(LoginResult::failed);
                tracing::info!(identifier, address = %origin.address, "failed login from a locked address");
            }
        }
        LoginError::TooManyAttempts {
            retry_after,
            account_id,
            wrong,
        }
    };
    let only_if_right = match gate {
        Admission::Open => None,
        Admission::RightOnly { retry_after } => Some(retry_after),
        Admission::Closed { retry_after } => {
            as_long_as_a_check(app).await;
            return Err(locked(account.map(|a| a.id), retry_after, false));
        }
    };
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
    let hash_matches = match (app.passwords.verify(password, hash).await, only_if_right) {
        // A check let through a locked address that cannot be made now is
        // answered as the lock: a 503 would tell it was let through.
        (Err(PasswordError::Busy), Some(retry_after)) => {
            return Err(locked(account.map(|a| a.id), retry_after, false));
        }
        (checked, _) => checked?,
    };
    let account_id = account.as_ref().map(|a| a.id.clone());
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
        Some(account) if hash_matches && account.state == AccountState::Closed => {
            // The right password: not a guess, so the counters start again as
            // after a sign-in (a parent trying twice is not locked out of the
            // explanation); the account still never signs in.
            app.throttle
                .succeeded(identifier.as_str(), origin, gate)
                .await?;
            app.metrics.login(LoginResult::failed);
            let identifier = shown_identifier(app, identifier, true);
            tracing::info!(identifier, address = %origin.address, "login refused: account closed");
            return Err(LoginError::Closed {
                grouped: account.merged_into.is_some(),
                account_id: account.id,
            });
        }
        _ => None,
    };
    match outcome {
        Some(outcome) => {
            app.throttle
                .succeeded(identifier.as_str(), origin, gate)
                .await?;
            app.metrics.login(LoginResult::ok);
            Ok(outcome)
        }
        None => match only_if_right {
            Some(retry_after) => Err(locked(account_id, retry_after, true)),
            None => {
                app.metrics.login(LoginResult::failed);
                let identifier = shown_identifier(app, identifier, account_id.is_some());
                tracing::info!(identifier, address = %origin.address, "failed login");
                Err(LoginError::InvalidCredentials { account_id })
            }
        },
    }
}
