//! Grouping parent accounts (SPEC §3.8, the seeds' « regroupement »): a parent
//! who received one letter per child gathers every child under one account,
//! the principal; the other account is closed. Breaking a grouping is the
//! establishment's: it detaches a child and issues a new letter.
//!
//! A grouping is one transaction that first takes both accounts' rows in a
//! fixed order, then re-reads them: of two groupings racing over the same
//! accounts exactly one applies, and no child is lost or attached twice.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::activation::{letter_valid, provisional_password_matches};
use super::login::MAX_PASSWORD;
use super::throttle::{Admission, Gate, Origin};
use super::{Account, AccountKind, AccountState, Child, PasswordError, store};
use crate::app::Clef;
use crate::audit::{self, Entry, Event, Outcome as AuditOutcome};
use crate::domain::{BirthDate, Identifier};
use crate::oidc::{consent, logout, refresh};
use crate::provisioning::{identifiers, provisional};
use crate::secret::random_token;
use crate::storage::Kind;

/// A checked grouping waits this long for its confirmation.
const PROPOSAL_TTL: i64 = 15 * 60;

/// What the person typed for the account to group.
pub struct OtherAccount {
    pub identifier: String,
    pub password: SecretString,
    /// The child's birth date, asked when the account is a letter's.
    pub birthdate: String,
}

/// Why a grouping is refused, each with its own explanation on screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Unknown identifier or wrong password: one answer for both.
    WrongCredentials,
    /// The account is a letter's: the child's birth date is needed too.
    BirthdateNeeded,
    WrongBirthdate,
    /// The letter is over three months old.
    LetterExpired,
    /// A student's or a staff member's account.
    NotGuardian,
    /// The principal's own identifier.
    SameAccount,
    /// Already grouped into another account, or closed by the school.
    Closed,
    /// The principal is not (or no longer) an active guardian account.
    PrincipalNotActive,
    /// The confirmation came too late, twice, or from another account.
    ProposalExpired,
}

#[derive(Debug, thiserror::Error)]
pub enum GroupingError {
    #[error("too many failed attempts, retry in {retry_after} s")]
    TooManyAttempts { retry_after: u64 },
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for GroupingError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}

/// A grouping checked and waiting for « Valider ».
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pending {
    principal_id: String,
    other_id: String,
    expires_at: i64,
    /// The other account's credentials as they were checked
    /// (`credentials_seal`): a reset, a password change or a first
    /// connection since voids the proposal.
    #[serde(default)]
    other_seal: String,
    /// A letter account's password as it was typed, hashed: the closed
    /// account keeps it, so that the letter, still in the other parent's
    /// hands, says at the login page that the account was grouped.
    #[serde(default)]
    letter_hash: Option<String>,
}

/// A digest of what an account's credentials are now: its state, its
/// password's hash and its letter's sealed password.
fn credentials_seal(state: &str, password_hash: Option<&str>, letter: Option<&str>) -> String {
    crate::secret::digest(&format!(
        "{state}\0{}\0{}",
        password_hash.unwrap_or(""),
        letter.unwrap_or("")
    ))
}

fn proposals(app: &Clef) -> Kind<Pending> {
    Kind::new(&app.store, "grouping")
}

/// What the confirmation screen shows.
#[derive(Debug, Clone)]
pub struct Proposal {
    /// Carried by the confirmation form.
    pub id: String,
    pub other_identifier: String,
    pub principal_children: Vec<Child>,
    pub other_children: Vec<Child>,
}

fn principal_may_group(principal: &Account) -> bool {
    principal.kind == AccountKind::Guardian && principal.state == AccountState::Active
}

/// Checks the other account's credentials (counted like a login attempt on
/// it) and what may be grouped; answers the confirmation to show.
pub async fn propose(
    app: &Clef,
    principal: &Account,
    other: OtherAccount,
    origin: &Origin,
) -> Result<Result<Proposal, Refusal>, GroupingError> {
    if !principal_may_group(principal) {
        return Ok(Err(Refusal::PrincipalNotActive));
    }
    let Ok(identifier) = Identifier::parse(&other.identifier) else {
        return Ok(Err(Refusal::WrongCredentials));
    };
    if identifier.as_str() == principal.identifier {
        return Ok(Err(Refusal::SameAccount));
    }
    let now = app.now();
    let admitted = app
        .throttle
        .enter(identifier.as_str(), origin, app.now_ms())
        .await?;
    let only_if_right = match admitted {
        Admission::Open => None,
        Admission::RightOnly { retry_after } => Some(retry_after),
        Admission::Closed { retry_after } => {
            super::login::as_long_as_a_check(app).await;
            return Err(GroupingError::TooManyAttempts { retry_after });
        }
    };
    let found = store::account_by_identifier(&app.db, &identifier).await?;
    let refusal = match &found {
        Some(account) => credentials_refusal(app, account, &other, now).await?,
        None => {
            // As long as a real check, so timing does not tell the account exists.
            app.passwords.verify(&other.password, None).await?;
            Some(Refusal::WrongCredentials)
        }
    };
    if let Some(refusal) = refusal {
        if matches!(refusal, Refusal::WrongCredentials | Refusal::WrongBirthdate) {
            tracing::info!(principal = %principal.id, address = %origin.address, ?refusal, "grouping refused");
            // On the trail of the account tried, as a failed login is.
            if let Some(account) = &found {
                let detail = format!(
                    "asked by {}: {}",
                    principal.identifier,
                    if refusal == Refusal::WrongBirthdate {
                        "wrong birth date"
                    } else {
                        "wrong password"
                    }
                );
                let entry = Entry::new(Event::Grouping, AuditOutcome::Failed)
                    .account(&account.id)
                    .detail(&detail);
                let entry = audit::Entry {
                    address: Some(origin.address),
                    ..entry
                };
                audit::record(&app.db, entry, now).await;
            }
            if let Some(retry_after) = only_if_right {
                return Err(GroupingError::TooManyAttempts { retry_after });
            }
            return Ok(Err(refusal));
        }
        // The credentials were right: the attempt is not held against the account.
        app.throttle
            .succeeded(identifier.as_str(), origin, admitted)
            .await?;
        return Ok(Err(refusal));
    }
    app.throttle
        .succeeded(identifier.as_str(), origin, admitted)
        .await?;
    let letter_hash = match found.as_ref().map(|account| account.state) {
        Some(AccountState::Provisional) => Some(app.passwords.hash(&other.password).await?),
        _ => None,
    };
    let other = found.expect("checked above");
    let id = random_token(24);
    proposals(app)
        .put(
            &id,
            &Pending {
                principal_id: principal.id.clone(),
                other_id: other.id.clone(),
                expires_at: now + PROPOSAL_TTL,
                other_seal: credentials_seal(
                    other.state.as_str(),
                    other.password_hash.as_deref(),
                    other.provisional_password.as_deref(),
                ),
                letter_hash,
            },
            Duration::from_secs(PROPOSAL_TTL as u64),
        )
        .await?;
    Ok(Ok(Proposal {
        id,
        other_identifier: other.identifier.clone(),
        principal_children: store::children(&app.db, &principal.id).await?,
        other_children: store::children(&app.db, &other.id).await?,
    }))
}

/// Checks what was typed against the account; `None` when it may be grouped.
async fn credentials_refusal(
    app: &Clef,
    account: &Account,
    typed: &OtherAccount,
    now: i64,
) -> Result<Option<Refusal>, GroupingError> {
    let too_long = typed.password.expose_secret().len() > MAX_PASSWORD;
    if account.state == AccountState::Provisional {
        // The letter's password is checked without hashing; hash anyway so
        // the answer takes as long as for an activated account.
        app.passwords.verify(&typed.password, None).await?;
        if too_long || !provisional_password_matches(app, account, &typed.password) {
            return Ok(Some(Refusal::WrongCredentials));
        }
        if account.kind != AccountKind::Guardian {
            return Ok(Some(Refusal::NotGuardian));
        }
        if !letter_valid(app, account, now) {
            return Ok(Some(Refusal::LetterExpired));
        }
        if typed.birthdate.trim().is_empty() {
            return Ok(Some(Refusal::BirthdateNeeded));
        }
        // Counted on the birth date's own count (`throttle::BIRTH_DATES`).
        if let Gate::Closed { retry_after } = app
            .throttle
            .enter_birth_date(&account.identifier, app.now_ms())
            .await?
        {
            return Err(GroupingError::TooManyAttempts { retry_after });
        }
        let Ok(birthdate) = BirthDate::parse(&typed.birthdate) else {
            return Ok(Some(Refusal::WrongBirthdate));
        };
        let children = store::children(&app.db, &account.id).await?;
        if !children
            .iter()
            .any(|c| c.birthdate.as_deref() == Some(birthdate.iso().as_str()))
        {
            return Ok(Some(Refusal::WrongBirthdate));
        }
        app.throttle.birth_date_right(&account.identifier).await?;
        return Ok(None);
    }
    let hash = account.password_hash.as_deref().filter(|_| !too_long);
    if !app.passwords.verify(&typed.password, hash).await? {
        return Ok(Some(Refusal::WrongCredentials));
    }
    Ok(match (account.kind, account.state) {
        (AccountKind::Student | AccountKind::Staff, _) => Some(Refusal::NotGuardian),
        (_, AccountState::Closed) => Some(Refusal::Closed),
        _ => None,
    })
}

/// What a grouping did.
#[derive(Debug, Clone)]
pub struct Grouped {
    pub closed_identifier: String,
    /// Children that moved to the principal (those it already had stay once).
    pub moved: u64,
}

/// « Valider »: the proposal `id` must be the principal's own and still open.
pub async fn confirm(
    app: &Clef,
    principal: &Account,
    id: &str,
) -> Result<Result<Grouped, Refusal>, GroupingError> {
    // Read before it is spent: another account's « Valider » with this id
    // spends nothing of it.
    let proposals = proposals(app);
    let ours = |pending: &Pending| pending.principal_id == principal.id;
    if !proposals.get(id).await?.is_some_and(|p| ours(&p)) {
        return Ok(Err(Refusal::ProposalExpired));
    }
    let Some(pending) = proposals.take(id).await? else {
        return Ok(Err(Refusal::ProposalExpired));
    };
    if !ours(&pending) || pending.expires_at <= app.now() {
        return Ok(Err(Refusal::ProposalExpired));
    }
    let seal = Some(pending.other_seal.as_str());
    let letter_hash = pending.letter_hash.as_deref();
    group_sealed(
        app,
        &pending.principal_id,
        &pending.other_id,
        seal,
        letter_hash,
    )
    .await
}

/// Moves every child of `other_id` to `principal_id` and closes `other_id`,
/// in one transaction; then ends the closed account's sessions and tokens.
pub async fn group(
    app: &Clef,
    principal_id: &str,
    other_id: &str,
) -> Result<Result<Grouped, Refusal>, GroupingError> {
    group_sealed(app, principal_id, other_id, None, None).await
}

/// `group`, if the other account's credentials are still those `seal` was
/// made of (`None`: whatever they are).
async fn group_sealed(
    app: &Clef,
    principal_id: &str,
    other_id: &str,
    seal: Option<&str>,
    letter_hash: Option<&str>,
) -> Result<Result<Grouped, Refusal>, GroupingError> {
    if principal_id == other_id {
        return Ok(Err(Refusal::SameAccount));
    }
    let now = app.now();
    let mut tx = app.db.begin().await?;
    // Take both rows in one order, so two groupings over the same accounts
    // queue instead of deadlocking; what follows reads them as they are now.
    let mut ids = [principal_id, other_id];
    ids.sort_unstable();
    for id in ids {
        sqlx::query("UPDATE accounts SET updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    type Row = (String, String, String, String);
    let state_of = |row: Option<sqlx::any::AnyRow>| -> Result<Option<Row>, sqlx::Error> {
        row.map(|r| {
            let state: String = r.try_get("state")?;
            let hash: Option<String> = r.try_get("password_hash")?;
            let letter: Option<String> = r.try_get("provisional_password")?;
            let seal = credentials_seal(&state, hash.as_deref(), letter.as_deref());
            Ok((r.try_get("kind")?, state, r.try_get("identifier")?, seal))
        })
        .transpose()
    };
    let read = "SELECT kind, state, identifier, password_hash, provisional_password \
                FROM accounts WHERE id = $1";
    let principal = state_of(
        sqlx::query(read)
            .bind(principal_id)
            .fetch_optional(&mut *tx)
            .await?,
    )?;
    let other = state_of(
        sqlx::query(read)
            .bind(other_id)
            .fetch_optional(&mut *tx)
            .await?,
    )?;
    match (&principal, &other) {
        (Some((kind, state, _, _)), _) if kind != "guardian" || state != "active" => {
            return Ok(Err(Refusal::PrincipalNotActive));
        }
        (None, _) => return Ok(Err(Refusal::PrincipalNotActive)),
        (_, None) => return Ok(Err(Refusal::WrongCredentials)),
        (_, Some((kind, _, _, _))) if kind != "guardian" => return Ok(Err(Refusal::NotGuardian)),
        (_, Some((_, state, _, _))) if state == "closed" => return Ok(Err(Refusal::Closed)),
        // Reset, changed or activated since it was checked: whoever typed
        // the credentials may no longer hold them.
        (_, Some((_, _, _, now_sealed))) if seal.is_some_and(|seal| seal != now_sealed) => {
            return Ok(Err(Refusal::ProposalExpired));
        }
        _ => {}
    }
    let principal_identifier = principal
        .map(|(_, _, identifier, _)| identifier)
        .unwrap_or_default();
    let closed_identifier = other
        .map(|(_, _, identifier, _)| identifier)
        .unwrap_or_default();
    // Each moved link remembers the parent it came with (`grouped_from`),
    // so that breaking the grouping gives the child a letter in that name.
    let moved = sqlx::query(
        "INSERT INTO guardianships (guardian_id, student_id, rank, created_at, grouped_from) \
         SELECT $1, student_id, rank, $2, COALESCE(grouped_from, $3) FROM guardianships WHERE guardian_id = $3 \
         ON CONFLICT (guardian_id, student_id) DO NOTHING",
    )
    .bind(principal_id)
    .bind(now)
    .bind(other_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query("DELETE FROM guardianships WHERE guardian_id = $1")
        .bind(other_id)
        .execute(&mut *tx)
        .await?;
    // Closed: it no longer signs in, its letter no longer prints, and its
    // identifier stays taken for the record. A letter account keeps its
    // password as a hash only (`Pending::letter_hash`).
    sqlx::query(
        "UPDATE accounts SET state = 'closed', merged_into = $1, provisional_password = NULL, \
         password_hash = COALESCE($4, password_hash), \
         session_epoch = session_epoch + 1, updated_at = $2, closed_at = $2 WHERE id = $3",
    )
    .bind(principal_id)
    .bind(now)
    .bind(other_id)
    .bind(letter_hash)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE action_tokens SET consumed_at = $1 WHERE account_id = $2 AND consumed_at IS NULL",
    )
    .bind(now)
    .bind(other_id)
    .execute(&mut *tx)
    .await?;
    refresh::revoke_all_of(&mut *tx, other_id, now).await?;
    tx.commit().await?;
    // Done: the closed account's cookies stopped with the commit (its
    // session epoch moved on); ending the sessions' records, telling their
    // clients and ending its tokens is what may fail below, logged, not
    // shown: the grouping stands.
    if let Err(e) = logout::sign_out_everywhere(app, other_id).await {
        tracing::error!(closed = %other_id, error = %e, "sessions of the grouped account not ended");
    }
    tracing::info!(principal = %principal_id, closed = %other_id, moved, "accounts grouped");
    // Each trail names the other account: a school reading the closed
    // one's sees where its children went.
    let grouped = format!(
        "principal; {closed_identifier} grouped into it ({moved} {} moved)",
        if moved == 1 { "child" } else { "children" }
    );
    let closed = format!("closed; grouped into {principal_identifier}");
    for (account, detail) in [(principal_id, &grouped), (other_id, &closed)] {
        let entry = Entry::new(Event::Grouping, AuditOutcome::Ok)
            .account(account)
            .detail(detail);
        audit::record(&app.db, entry, now).await;
    }
    if let Err(e) = tell_the_closed_account(app, principal_id, other_id).await {
        tracing::error!(closed = %other_id, error = %e, "grouping notice not sent");
    }
    Ok(Ok(Grouped {
        closed_identifier,
        moved,
    }))
}

/// Tells the owner of the account a grouping closed, at its address (the
/// school's, for a letter's account), in their language: which account now
/// holds the children, and whom to ask if they did not group it themselves.
async fn tell_the_closed_account(
    app: &Clef,
    principal_id: &str,
    closed_id: &str,
) -> anyhow::Result<()> {
    let (Some(closed), Some(principal)) = (
        store::account_by_id(&app.db, closed_id).await?,
        store::account_by_id(&app.db, principal_id).await?,
    ) else {
        return Ok(());
    };
    let Some(to) = closed
        .email
        .as_deref()
        .and_then(|e| crate::domain::EmailAddress::parse(e).ok())
    else {
        return Ok(());
    };
    let context = minijinja::context! {
        name => format!("{} {}", closed.given_name, closed.family_name),
        identifier => &closed.identifier,
        principal => &principal.identifier,
    };
    let subject = crate::delivery::Subject {
        french: "Regroupement de votre compte",
        english: "Your account was grouped",
    };
    // A letter's account never signed in: the person grouping it is most
    // often its holder, so their language.
    let locale = store::locale_of(&app.db, closed_id)
        .await?
        .unwrap_or_else(crate::domain::Locale::current);
    let mail = locale
        .sync_scope(|| crate::delivery::Mail::render(to, subject, "grouped_notice", context))?;
    // `send` logs and counts a failure: the grouping is made all the same.
    let _ = app.mailer.send(mail).await;
    Ok(())
}

/// A child detached from a guardian, and the new letter's account.
#[derive(Debug)]
pub struct Detached {
    pub guardian: Account,
    /// The letter's password, to print (`clef letters` prints it again).
    pub password: SecretString,
}

#[derive(Debug, thiserror::Error)]
pub enum DetachError {
    #[error("{0} is not attached to {1}")]
    NotAttached(String, String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for DetachError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}

/// Breaks a grouping (the establishment's call): detaches `student_id` from
/// `guardian_id` and gives the child a new provisional guardian account, in
/// the name of the parent the child came with when accounts were grouped
/// (else the guardian's), with the same legal rank, and a new letter. `by`, the
/// staff member who did it, is on the three accounts' trails (`None`: an
/// operator, with `clef guardian detach`).
pub async fn detach(
    app: &Clef,
    guardian_id: &str,
    student_id: &str,
    by: Option<&audit::ActedBy<'_>>,
) -> Result<Detached, DetachError> {
    let now = app.now();
    let mut tx = app.db.begin().await?;
    // Take the guardian's row first, as `group` does: a grouping of this
    // guardian applies wholly before or after, never around, this detachment
    // (and SQLite takes its write lock now rather than failing at the first write).
    sqlx::query("UPDATE accounts SET updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(guardian_id)
        .execute(&mut *tx)
        .await?;
    let link = sqlx::query(
        "SELECT g.rank, COALESCE(o.given_name, a.given_name) AS given_name, \
         COALESCE(o.family_name, a.family_name) AS family_name FROM guardianships g \
         JOIN accounts a ON a.id = g.guardian_id LEFT JOIN accounts o ON o.id = g.grouped_from \
         WHERE g.guardian_id = $1 AND g.student_id = $2",
    )
    .bind(guardian_id)
    .bind(student_id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| DetachError::NotAttached(student_id.to_owned(), guardian_id.to_owned()))?;
    let rank: i64 = link.try_get("rank")?;
    let given_name: String = link.try_get("given_name")?;
    let family_name: String = link.try_get("family_name")?;
    let deleted =
        sqlx::query("DELETE FROM guardianships WHERE guardian_id = $1 AND student_id = $2")
            .bind(guardian_id)
            .bind(student_id)
            .execute(&mut *tx)
            .await?;
    if deleted.rows_affected() != 1 {
        return Err(DetachError::NotAttached(
            student_id.to_owned(),
            guardian_id.to_owned(),
        ));
    }
    consent::forget_child(&mut *tx, guardian_id, student_id).await?;
    let identifier = identifiers::assign(&mut tx, &[identifiers::base(&given_name, &family_name)])
        .await?
        .remove(0);
    let id = uuid::Uuid::new_v4().to_string();
    let password = provisional::generate();
    let sealed = app.letters.encrypt(&id, &password)?;
    sqlx::query(
        "INSERT INTO accounts (id, identifier, kind, state, given_name, family_name, \
         letter_date, provisional_password, created_at, updated_at) \
         VALUES ($1, $2, 'guardian', 'provisional', $3, $4, $5, $6, $5, $5)",
    )
    .bind(&id)
    .bind(&identifier)
    .bind(&given_name)
    .bind(&family_name)
    .bind(now)
    .bind(&sealed)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO guardianships (guardian_id, student_id, rank, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(&id)
    .bind(student_id)
    .bind(rank)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(guardian = %guardian_id, student = %student_id, new_guardian = %id, "child detached");
    for account in [guardian_id, student_id, id.as_str()] {
        let entry = Entry::new(Event::Detachment, AuditOutcome::Ok).account(account);
        let entry = match by {
            Some(by) => entry.by(by),
            None => entry,
        };
        audit::record(&app.db, entry, now).await;
    }
    let guardian = store::account_by_id(&app.db, &id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the new account vanished"))?;
    Ok(Detached { guardian, password })
}
