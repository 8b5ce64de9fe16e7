//! First connection (SPEC §3.2), email confirmation (§3.3) and the profile
//! changes of « Mon compte » (§3.6): everything that moves an account between
//! states or changes its credentials.

use secrecy::{ExposeSecret, SecretString};

use super::policy::PasswordRule;
use super::recovery;
use super::staff::Scope;
use super::throttle::{Admission, Gate, Origin};
use super::tokens::{self, Purpose, TokenProblem};
use super::{Account, AccountKind, AccountState, PasswordError, store};
use crate::app::Clef;
use crate::delivery::{Mail, Subject};
use crate::domain::{BirthDate, EmailAddress, FieldError, Locale, Problem};
use crate::oidc::{logout, refresh};
use crate::provisioning::letters::{add_months, date_in, letter_deadline};
use crate::secret::constant_time_eq;

#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    /// The fields to correct, in the form's order: each its form name and a
    /// French message, shown together above the form.
    #[error("{}", .0.iter().map(|(_, message)| message.as_str()).collect::<Vec<_>>().join(" "))]
    Invalid(Vec<(&'static str, String)>),
    #[error("wrong birth date")]
    WrongBirthdate,
    #[error("the letter has expired")]
    Expired,
    #[error("the account is no longer provisional")]
    NotProvisional,
    #[error("too many failed attempts, retry in {retry_after} s")]
    TooManyAttempts { retry_after: u64 },
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for ActivationError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}

pub struct FirstConnection {
    pub birthdate: String,
    pub password: SecretString,
    pub password_confirmation: SecretString,
    pub email: String,
    pub email_confirmation: String,
}

pub fn password_rule(app: &Clef) -> PasswordRule {
    PasswordRule::configured(&app.config)
}

/// A new password against the rule, and its confirmation typed again: each
/// field in error (of `fields`, the two fields' form names) with its French
/// message, both at once.
pub fn check_new_password(
    app: &Clef,
    password: &SecretString,
    confirmation: &SecretString,
    fields: [&'static str; 2],
) -> Vec<(&'static str, String)> {
    let mut problems = Vec::new();
    // An empty field is said empty, not a password that breaks the rule.
    let required = |name| FieldError::new(name, Problem::Empty).to_string();
    let (typed, confirmed) = (password.expose_secret(), confirmation.expose_secret());
    if typed.is_empty() {
        problems.push((fields[0], required("nouveau mot de passe")));
    } else if let Err(message) = password_rule(app).check(password) {
        problems.push((fields[0], message));
    }
    if confirmed.is_empty() && !typed.is_empty() {
        problems.push((fields[1], required("confirmation du mot de passe")));
    } else if let Err(message) = check_confirmation(password, confirmation) {
        problems.push((fields[1], message));
    }
    problems
}

/// Whether the password was typed the same twice.
fn check_confirmation(password: &SecretString, confirmation: &SecretString) -> Result<(), String> {
    if constant_time_eq(password.expose_secret(), confirmation.expose_secret()) {
        Ok(())
    } else {
        Err("La confirmation du mot de passe ne correspond pas.".into())
    }
}

/// Whether a provisional account's letter still works.
pub fn letter_valid(app: &Clef, account: &Account, now: i64) -> bool {
    account.letter_date.is_some_and(|date| {
        letter_deadline(date, app.config.letter_validity_months, &app.config.zone()) > now
    })
}

/// Checks the letter's password (stored sealed, so no hashing: it is random
/// and single-purpose), as typed in any case, spaces aside. Constant-time
/// comparison.
pub fn provisional_password_matches(
    app: &Clef,
    account: &Account,
    presented: &SecretString,
) -> bool {
    let Some(sealed) = &account.provisional_password else {
        return false;
    };
    // The letter's alphabet is capitals and digits: typed on a phone, whose
    // keyboard starts in lower case, or with a space between its halves,
    // it is the same password.
    let typed: SecretString = presented
        .expose_secret()
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect::<String>()
        .into();
    match app.letters.decrypt(&account.id, sealed) {
        Ok(expected) => constant_time_eq(expected.expose_secret(), typed.expose_secret()),
        Err(e) => {
            tracing::error!(error = %e, "a provisional password does not decrypt");
            false
        }
    }
}

/// The birth date the first-connection screen asks for: the child's for a
/// guardian (any attached child), one's own for a student.
async fn expected_birthdates(app: &Clef, account: &Account) -> anyhow::Result<Vec<String>> {
    Ok(match account.kind {
        AccountKind::Guardian => store::children(&app.db, &account.id)
            .await?
            .into_iter()
            .filter_map(|c| c.birthdate)
            .collect(),
        AccountKind::Student | AccountKind::Staff => {
            account.birthdate.clone().into_iter().collect()
        }
    })
}

/// Completes a first connection: new password, email, state `pending_email`
/// (or `active` for a student without email). Sends the confirmation mail.
pub async fn first_connection(
    app: &Clef,
    account_id: &str,
    form: FirstConnection,
    return_to: Option<String>,
    origin: &Origin,
) -> Result<(Account, MailSent), ActivationError> {
    let now = app.now();
    let account = store::account_by_id(&app.db, account_id)
        .await?
        .ok_or(ActivationError::NotProvisional)?;
    if account.state != AccountState::Provisional {
        return Err(ActivationError::NotProvisional);
    }
    if !letter_valid(app, &account, now) {
        return Err(ActivationError::Expired);
    }
    // Every field's form checked at once, so that the person corrects them
    // in one go; none of these checks tells anything of the birth date, which
    // is compared after them, counted.
    let mut problems = Vec::new();
    let birthdate = BirthDate::parse(&form.birthdate)
        .map_err(|e| {
            let why = match e.problem {
                Problem::Invalid if BirthDate::no_such_day(&form.birthdate) => {
                    NO_SUCH_BIRTH_DAY.to_owned()
                }
                Problem::Invalid => BIRTH_DATE_SHAPE.to_owned(),
                _ => e.to_string(),
            };
            problems.push(("birthdate", why));
        })
        .ok();
    // The new password as wherever one is chosen; then « Mot de passe
    // provisoire, à modifier lors de la première connexion »: the paper
    // letter must not stay a way in (in any case, as its password is taken),
    // told instead of the rule, whether or not it happens to meet it.
    let mut chosen = check_new_password(
        app,
        &form.password,
        &form.password_confirmation,
        ["password", "password_confirmation"],
    );
    if !form.password.expose_secret().is_empty()
        && provisional_password_matches(app, &account, &form.password)
    {
        chosen.retain(|(field, _)| *field != "password");
        chosen.insert(
            0,
            (
                "password",
                "Choisissez un mot de passe différent du mot de passe provisoire du courrier."
                    .into(),
            ),
        );
    }
    problems.extend(chosen);
    let email = match (form.email.trim(), account.kind) {
        ("", AccountKind::Guardian) => {
            problems.push((
                "email",
                "L'adresse mail est obligatoire pour les responsables.".into(),
            ));
            None
        }
        ("", _) => None,
        (raw, _) => EmailAddress::parse(raw)
            .map_err(|e| problems.push(("email", e.to_string())))
            .ok(),
    };
    // Compared as typed when the address itself is not valid, so that a
    // mistyped confirmation is told at the same time.
    let email_confirmed = match &email {
        Some(email) => EmailAddress::parse(&form.email_confirmation).ok().as_ref() == Some(email),
        None => form.email.trim() == form.email_confirmation.trim(),
    };
    if !email_confirmed {
        problems.push((
            "email_confirmation",
            "La confirmation de l'adresse mail ne correspond pas.".into(),
        ));
    }
    let Some(birthdate) = birthdate.filter(|_| problems.is_empty()) else {
        return Err(ActivationError::Invalid(problems));
    };
    // The birth date is a secret of the letter's holder: its attempts are
    // counted like login attempts, on the same counters, before the check.
    // And on a count of their own, which a new sign-in with the letter does
    // not clear: once it is spent, its wait (up to a day) is the one told.
    let now_ms = app.now_ms();
    if let Some(retry_after) = app
        .throttle
        .birth_dates_held_back(&account.identifier, now_ms)
        .await?
    {
        return Err(ActivationError::TooManyAttempts { retry_after });
    }
    let admitted = app
        .throttle
        .enter(&account.identifier, origin, now_ms)
        .await?;
    if let Admission::Closed { retry_after } = admitted {
        return Err(ActivationError::TooManyAttempts { retry_after });
    }
    let gate = app
        .throttle
        .enter_birth_date(&account.identifier, now_ms)
        .await?;
    if let Gate::Closed { retry_after } = gate {
        return Err(ActivationError::TooManyAttempts { retry_after });
    }
    if !expected_birthdates(app, &account)
        .await?
        .iter()
        .any(|expected| *expected == birthdate.iso())
    {
        tracing::info!(identifier = %account.identifier, address = %origin.address, "wrong birth date at first connection");
        return Err(ActivationError::WrongBirthdate);
    }
    app.throttle
        .succeeded(&account.identifier, origin, admitted)
        .await?;
    app.throttle.birth_date_right(&account.identifier).await?;
    let hash = app.passwords.hash(&form.password).await?;
    let state = if email.is_some() {
        AccountState::PendingEmail
    } else {
        AccountState::Active
    };

    let mut tx = app.db.begin().await?;
    let updated = sqlx::query(
        "UPDATE accounts SET password_hash = $1, provisional_password = NULL, state = $2, email = $3, \
         email_verified_at = NULL, pending_email = NULL, activated_at = $4, updated_at = $4, locale = $6 \
         WHERE id = $5 AND state = 'provisional'",
    )
    .bind(&hash)
    .bind(state.as_str())
    .bind(email.as_ref().map(EmailAddress::as_str))
    .bind(now)
    .bind(&account.id)
    // The language to write to them in later (`store::locale_of`).
    .bind(Locale::current().code())
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() != 1 {
        return Err(ActivationError::NotProvisional);
    }
    let token = match &email {
        Some(email) => Some(
            issue_confirmation(
                app,
                &mut tx,
                &account.id,
                email.as_str(),
                return_to.as_deref(),
                now,
            )
            .await?,
        ),
        None => None,
    };
    tx.commit().await?;
    tracing::info!(account = %account.id, state = state.as_str(), "first connection completed");
    let account = store::account_by_id(&app.db, &account.id)
        .await?
        .ok_or(ActivationError::NotProvisional)?;
    let sent = match (email, token) {
        (Some(email), Some((token, expires_at))) => {
            send_confirmation(
                app,
                &account,
                email,
                &token,
                expires_at,
                Confirming::Address,
                Requester::Owner,
            )
            .await
        }
        _ => MailSent(true),
    };
    Ok((account, sent))
}

async fn issue_confirmation(
    app: &Clef,
    conn: &mut sqlx::AnyConnection,
    account_id: &str,
    email: &str,
    return_to: Option<&str>,
    now: i64,
) -> Result<(String, i64), sqlx::Error> {
    let expires_at = add_months(
        now,
        i32::from(app.config.confirmation_validity_months),
        &app.config.zone(),
    );
    let token = tokens::issue(
        conn,
        account_id,
        Purpose::ConfirmEmail,
        Some(email),
        return_to,
        now,
        expires_at,
    )
    .await?;
    Ok((token, expires_at))
}

/// What a confirmation link confirms: an account's first address, or a
/// change of it (the seeds' « Mise à jour de votre adresse mail »).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Confirming {
    Address,
    Change,
}

impl Confirming {
    fn subject(self) -> Subject<'static> {
        match self {
            Self::Address => Subject {
                french: "Confirmez votre adresse mail",
                english: "Confirm your email address",
            },
            Self::Change => Subject {
                french: "Mise à jour de votre adresse mail",
                english: "Update of your email address",
            },
        }
    }
}

/// Sends the confirmation link; says whether it went. A failure is logged
/// and not fatal: the account is saved, the page says the mail did not go,
/// and the person can ask for it again.
async fn send_confirmation(
    app: &Clef,
    account: &Account,
    to: EmailAddress,
    token: &str,
    expires_at: i64,
    confirming: Confirming,
    by: Requester,
) -> MailSent {
    // In the mail's language when opened, whatever the browser's.
    let link = app.config.endpoint(&format!(
        "/confirmation?jeton={token}&lang={}",
        Locale::current().code()
    ));
    let context = minijinja::context! {
        name => format!("{} {}", account.given_name, account.family_name),
        identifier => &account.identifier,
        link,
        deadline => date_in(Locale::current(), expires_at, &app.config.zone()),
        change => confirming == Confirming::Change,
        by_school => by == Requester::School,
    };
    match Mail::render(to, confirming.subject(), "confirm_email", context) {
        // `send` logs and counts a failure.
        Ok(mail) => MailSent(app.mailer.send(mail).await.is_ok()),
        Err(e) => {
            tracing::error!(account = %account.id, error = %e, "confirmation mail not rendered");
            MailSent(false)
        }
    }
}

/// Who asked for an address: the account's owner, or their school (the
/// back office), which the mails say rather than « you changed it ».
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Requester {
    Owner,
    School,
}

impl Requester {
    /// A change within a staff member's scope is the school's.
    fn of(within: Option<&Scope>) -> Self {
        match within {
            Some(_) => Self::School,
            None => Self::Owner,
        }
    }
}

/// A birth date that does not read as one, said why.
const NO_SUCH_BIRTH_DAY: &str = "La date de naissance n'est pas valide : ce jour n'existe pas.";
const BIRTH_DATE_SHAPE: &str =
    "La date de naissance n'est pas valide : écrivez-la jj/mm/aaaa, par exemple 03/09/2012.";

/// What a person reads when their confirmation mail did not go.
pub const MAIL_NOT_SENT: &str = "Le mail de confirmation n'a pas pu être envoyé pour le moment. Redemandez-le dans quelques minutes ; si cela continue, signalez-le à l'établissement qui vous a remis le courrier.";

/// Whether a confirmation mail went to the mail server (it refused it, or
/// could not be reached: the page says so rather than « open the mail you
/// just received »).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailSent(pub bool);

/// What a confirmed link did.
pub struct Confirmed {
    pub account: Account,
    pub return_to: Option<String>,
    /// The link completed an activation (`pending_email` → `active`), rather
    /// than confirming a changed address.
    pub activated: bool,
}

/// Whether a spent confirmation link's address is its account's, confirmed:
/// opened again after it worked (or after a newer mail's link did), the link
/// has nothing left to do.
pub async fn already_confirmed(app: &Clef, token: &str) -> anyhow::Result<bool> {
    let mut conn = app.db.acquire().await?;
    let Some(found) = tokens::find(&mut conn, token, Purpose::ConfirmEmail).await? else {
        return Ok(false);
    };
    drop(conn);
    let account = store::account_by_id(&app.db, &found.account_id).await?;
    Ok(account.is_some_and(|account| {
        account.state == AccountState::Active
            && account.email_verified_at.is_some()
            && account.email.is_some()
            && account.email == found.email
    }))
}

/// Consumes a confirmation link: the address becomes the account's, confirmed;
/// a `pending_email` account becomes `active`.
pub async fn confirm_email(
    app: &Clef,
    token: &str,
) -> Result<Result<Confirmed, TokenProblem>, anyhow::Error> {
    let now = app.now();
    let mut tx = app.db.begin().await?;
    let found = match tokens::consume(&mut tx, token, Purpose::ConfirmEmail, now).await? {
        Ok(found) => found,
        Err(problem) => return Ok(Err(problem)),
    };
    let Some(email) = found.email.clone() else {
        return Ok(Err(TokenProblem::Unknown));
    };
    let state: Option<String> = sqlx::query_scalar("SELECT state FROM accounts WHERE id = $1")
        .bind(&found.account_id)
        .fetch_optional(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE accounts SET email = $1, email_verified_at = $2, \
         pending_email = CASE WHEN pending_email = $1 THEN NULL ELSE pending_email END, \
         state = CASE WHEN state = 'pending_email' THEN 'active' ELSE state END, updated_at = $2, \
         locale = $4 \
         WHERE id = $3 AND state IN ('pending_email', 'active')",
    )
    .bind(&email)
    .bind(now)
    .bind(&found.account_id)
    .bind(Locale::current().code())
    .execute(&mut *tx)
    .await?;
    // Reset links mailed to the address this one replaces stop working.
    recovery::void_reset_links(&mut *tx, &found.account_id, now).await?;
    tx.commit().await?;
    let account = store::account_by_id(&app.db, &found.account_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("account vanished"))?;
    tracing::info!(account = %account.id, "email confirmed");
    let activated = state.as_deref() == Some(AccountState::PendingEmail.as_str());
    Ok(Ok(Confirmed {
        account,
        return_to: found.return_to,
        activated,
    }))
}

/// What a confirmation mail asked for by the account's owner came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailRequest {
    Sent,
    /// Asked and counted, but the mail server refused it or could not be
    /// reached: try again later.
    NotSent,
    /// Nothing waits for confirmation (only when asked to send again).
    AlreadyConfirmed,
    /// Not sent: five were asked for this hour ([`throttle::CONFIRMATION_MAILS`]).
    TooMany {
        retry_after: u64,
    },
}

/// Counts a confirmation mail asked for `account` by its owner, to
/// `address`: `None` if it may be sent.
async fn mail_refused(
    app: &Clef,
    account: &Account,
    address: &str,
) -> anyhow::Result<Option<MailRequest>> {
    Ok(
        match app
            .throttle
            .enter_confirmation_mail(&account.id, address, app.now_ms())
            .await?
        {
            Gate::Open => None,
            Gate::Closed { retry_after } => Some(MailRequest::TooMany { retry_after }),
        },
    )
}

/// « Renvoyer le mail de confirmation »: a new link (older ones stop working)
/// to the address waiting for confirmation.
pub async fn resend_confirmation(
    app: &Clef,
    account: &Account,
    return_to: Option<&str>,
) -> anyhow::Result<MailRequest> {
    let (address, confirming) = match (
        &account.pending_email,
        &account.email,
        account.email_verified_at,
    ) {
        (Some(pending), _, _) => (pending.clone(), Confirming::Change),
        (None, Some(email), None) => (email.clone(), Confirming::Address),
        _ => return Ok(MailRequest::AlreadyConfirmed),
    };
    if let Some(refused) = mail_refused(app, account, &address).await? {
        return Ok(refused);
    }
    let now = app.now();
    let mut tx = app.db.begin().await?;
    let (token, expires_at) =
        issue_confirmation(app, &mut tx, &account.id, &address, return_to, now).await?;
    tx.commit().await?;
    let sent = send_confirmation(
        app,
        account,
        EmailAddress::parse(&address)?,
        &token,
        expires_at,
        confirming,
        Requester::Owner,
    )
    .await;
    Ok(MailRequest::from(sent))
}

impl From<MailSent> for MailRequest {
    fn from(MailSent(sent): MailSent) -> Self {
        if sent { Self::Sent } else { Self::NotSent }
    }
}

/// « Corriger l'adresse » asked by the account's owner: the password again
/// (the screen follows a login on what may be a shared computer, and the
/// address decides who can recover the account), counted as a mail asked
/// for, then [`correct_address`].
pub async fn correct_own_address(
    app: &Clef,
    account: &Account,
    current: &SecretString,
    email: &EmailAddress,
    return_to: Option<&str>,
    origin: &Origin,
) -> Result<MailRequest, ProfileError> {
    require_current_password(app, account, current, origin).await?;
    if let Some(refused) = mail_refused(app, account, email.as_str()).await? {
        return Ok(refused);
    }
    Ok(
        match correct_address(app, account, email, return_to, None).await? {
            Readdressed::Written(sent) => MailRequest::from(sent),
            Readdressed::BeyondScope => {
                return Err(anyhow::anyhow!("an owner's own address is beyond no scope").into());
            }
        },
    )
}

/// « Corriger l'adresse » (SPEC §3.3): for an account whose address was never
/// confirmed, the new address replaces it and gets the link.
pub async fn correct_address(
    app: &Clef,
    account: &Account,
    email: &EmailAddress,
    return_to: Option<&str>,
    within: Option<&Scope>,
) -> anyhow::Result<Readdressed> {
    anyhow::ensure!(
        account.state == AccountState::PendingEmail,
        "only an unconfirmed account corrects its address"
    );
    let now = app.now();
    let mut tx = app.db.begin().await?;
    // Still unconfirmed: a confirmation clicked meanwhile made the address
    // the account's, which a correction must not undo.
    let corrected = sqlx::query(
        "UPDATE accounts SET email = $1, email_verified_at = NULL, pending_email = NULL, updated_at = $2 \
         WHERE id = $3 AND state = 'pending_email'",
    )
    .bind(email.as_str())
    .bind(now)
    .bind(&account.id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    anyhow::ensure!(corrected == 1, "the address was confirmed meanwhile");
    if beyond(&mut tx, within, &account.id).await? {
        return Ok(Readdressed::BeyondScope);
    }
    let (token, expires_at) =
        issue_confirmation(app, &mut tx, &account.id, email.as_str(), return_to, now).await?;
    tx.commit().await?;
    let sent = send_confirmation(
        app,
        account,
        email.clone(),
        &token,
        expires_at,
        Confirming::Address,
        Requester::of(within),
    )
    .await;
    Ok(Readdressed::Written(sent))
}

/// What a new address for an account came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Readdressed {
    /// Written; to an activated or activating account's new address goes its
    /// confirmation link (whether it went; none went to a letter's account).
    Written(MailSent),
    /// Nothing written: the parent has children in an establishment the staff
    /// member's scope does not cover (seen with the account's row held, so a
    /// grouping cannot give them one between the check and the change).
    BeyondScope,
}

/// Whether a staff member acting `within` a scope no longer covers the
/// parent `account_id`. Asked inside the change's transaction, once the
/// account's row is written: a grouping takes the same row first.
async fn beyond(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    within: Option<&Scope>,
    account_id: &str,
) -> Result<bool, sqlx::Error> {
    match within {
        Some(scope) => super::staff::beyond_scope(&mut **tx, scope, account_id).await,
        None => Ok(false),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("{0}")]
    Invalid(String),
    /// The form's fields to correct (their form names), each with its French
    /// message, all at once.
    #[error("the form has fields to correct")]
    Fields(Vec<(&'static str, String)>),
    /// The change is made, but its confirmation mail did not go (the mail
    /// server refused it or could not be reached): asked again later, it may.
    #[error("the confirmation mail could not be sent")]
    MailNotSent,
    #[error("too many failed attempts, retry in {retry_after} s")]
    TooManyAttempts { retry_after: u64 },
    #[error("too many confirmation mails asked for, retry in {retry_after} s")]
    TooManyMails { retry_after: u64 },
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for ProfileError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}

/// The current password left empty: said so with the form's other problems
/// (first: it is the form's first field), and not counted as an attempt.
fn current_password_missing(current: &SecretString, problems: &mut Vec<(&'static str, String)>) {
    if current.expose_secret().is_empty() {
        let required = FieldError::new("mot de passe actuel", Problem::Empty).to_string();
        problems.insert(0, ("current_password", required));
    }
}

fn wrong_current_password() -> ProfileError {
    ProfileError::Fields(vec![(
        "current_password",
        "Le mot de passe actuel est incorrect.".into(),
    )])
}

/// Checks the current password, counted like a login attempt (SPEC §3.1).
async fn require_current_password(
    app: &Clef,
    account: &Account,
    current: &SecretString,
    origin: &Origin,
) -> Result<(), ProfileError> {
    let gate = app
        .throttle
        .enter(&account.identifier, origin, app.now_ms())
        .await?;
    if let Admission::Closed { retry_after } = gate {
        return Err(ProfileError::TooManyAttempts { retry_after });
    }
    if app
        .passwords
        .verify(current, account.password_hash.as_deref())
        .await?
    {
        app.throttle
            .succeeded(&account.identifier, origin, gate)
            .await?;
        Ok(())
    } else {
        tracing::info!(identifier = %account.identifier, address = %origin.address, "wrong current password");
        Err(wrong_current_password())
    }
}

/// Changes the password; the current one is required. Every session of the
/// account ends but `keep_session` (the cookie value of the one in use).
pub async fn change_password(
    app: &Clef,
    account: &Account,
    current: &SecretString,
    new: &SecretString,
    confirmation: &SecretString,
    origin: &Origin,
    keep_session: &str,
) -> Result<(), ProfileError> {
    // The new password first, both fields at once: a mistyped one spends no
    // attempt at the current password.
    let mut problems = check_new_password(
        app,
        new,
        confirmation,
        ["new_password", "new_password_confirmation"],
    );
    current_password_missing(current, &mut problems);
    if !problems.is_empty() {
        return Err(ProfileError::Fields(problems));
    }
    require_current_password(app, account, current, origin).await?;
    let hash = app.passwords.hash(new).await?;
    let now = app.now();
    // With the old password go what was obtained through it or meant to
    // replace it: reset links and SMS codes under way, and refresh tokens.
    // The other sessions end with the commit (their epoch is over).
    let mut tx = app.db.begin().await?;
    // Only over the password just checked: of two changes at once, the
    // second finds its « current » password replaced, and is told so.
    let epoch: Option<i64> = sqlx::query_scalar(
        "UPDATE accounts SET password_hash = $1, session_epoch = session_epoch + 1, updated_at = $2 \
         WHERE id = $3 AND password_hash = $4 RETURNING session_epoch",
    )
    .bind(hash)
    .bind(now)
    .bind(&account.id)
    .bind(account.password_hash.as_deref())
    .fetch_optional(&mut *tx)
    .await?;
    let Some(epoch) = epoch else {
        return Err(wrong_current_password());
    };
    recovery::void_reset_links(&mut *tx, &account.id, now).await?;
    cancel_address_change(&mut tx, &account.id, now).await?;
    let families = refresh::revoke_all_of(&mut *tx, &account.id, now).await?;
    tx.commit().await?;
    // Done: the person gets the success page whatever fails below, which
    // carrying this session into the new epoch (first: without it, the
    // person is signed out), ending the others' records and telling their
    // clients, voiding an SMS code only complete.
    if let Err(e) = logout::signed_out_everywhere_else(app, &account.id, epoch, keep_session).await
    {
        tracing::error!(account = %account.id, error = %e, "other sessions not ended after a password change");
    }
    if let Err(e) = recovery::forget_sms_code(app, &account.id).await {
        tracing::error!(account = %account.id, error = %e, "SMS codes not voided after a password change");
    }
    // Once more: a family an exchange of another session wrote between the
    // revocation above and the end of that session.
    refresh::revoke_all_of(&app.db, &account.id, app.now()).await?;
    tracing::info!(account = %account.id, refresh_families = families, "password changed; other sessions ended");
    if let Err(e) = recovery::tell_password_changed(app, account, true) {
        tracing::error!(account = %account.id, error = %e, "password change notice not sent");
    }
    Ok(())
}

/// A new address asked for and not confirmed yet is dropped, and its link
/// stops working (a password change or reset: whoever asked for it may have
/// been someone holding the old password). A first connection's own link,
/// for the account's address, stays.
pub async fn cancel_address_change(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    account_id: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE action_tokens SET consumed_at = $1 \
         WHERE account_id = $2 AND purpose = 'confirm_email' AND consumed_at IS NULL \
         AND COALESCE(email, '') <> COALESCE((SELECT a.email FROM accounts a WHERE a.id = $2), '')",
    )
    .bind(now)
    .bind(account_id)
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE accounts SET pending_email = NULL WHERE id = $1")
        .bind(account_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Asks for a new address: it takes effect when its link is clicked; the old
/// address is told (SPEC §3.6).
pub async fn change_email(
    app: &Clef,
    account: &Account,
    current: &SecretString,
    new: &str,
    confirmation: &str,
    origin: &Origin,
) -> Result<EmailAddress, ProfileError> {
    // The new address first, both fields at once: a mistyped one spends no
    // attempt at the current password.
    let mut problems = Vec::new();
    let parsed = EmailAddress::parse(new);
    match &parsed {
        Err(e) => problems.push(("email", e.to_string())),
        // Nothing to confirm: no mail saying « votre nouvelle adresse » is the
        // old one (whose mailbox is the same whatever the case of its letters).
        Ok(new)
            if account.email_verified_at.is_some()
                && account
                    .email
                    .as_deref()
                    .is_some_and(|old| old.eq_ignore_ascii_case(new.as_str())) =>
        {
            problems.push(("email", "C'est déjà l'adresse mail de votre compte.".into()));
        }
        Ok(_) => {}
    }
    // Compared as typed when the address itself is not valid, so that a
    // mistyped confirmation is told at the same time.
    let confirmed = match &parsed {
        Ok(new) => EmailAddress::parse(confirmation).ok().as_ref() == Some(new),
        Err(_) => new.trim() == confirmation.trim(),
    };
    if !confirmed {
        problems.push((
            "email_confirmation",
            "La confirmation de l'adresse mail ne correspond pas.".into(),
        ));
    }
    current_password_missing(current, &mut problems);
    let new = match parsed {
        Ok(new) if problems.is_empty() => new,
        _ => return Err(ProfileError::Fields(problems)),
    };
    require_current_password(app, account, current, origin).await?;
    if let Some(MailRequest::TooMany { retry_after }) =
        mail_refused(app, account, new.as_str()).await?
    {
        return Err(ProfileError::TooManyMails { retry_after });
    }
    propose_address(app, account, &new, None).await?;
    Ok(new)
}

/// A new address for an activated account: it becomes the account's when its
/// confirmation link is clicked, and the old address is told (SPEC §3.6).
/// Also the establishment's « corriger l'adresse » for such an account.
pub async fn propose_address(
    app: &Clef,
    account: &Account,
    new: &EmailAddress,
    within: Option<&Scope>,
) -> anyhow::Result<Readdressed> {
    let now = app.now();
    let mut tx = app.db.begin().await?;
    sqlx::query("UPDATE accounts SET pending_email = $1, updated_at = $2 WHERE id = $3")
        .bind(new.as_str())
        .bind(now)
        .bind(&account.id)
        .execute(&mut *tx)
        .await?;
    if beyond(&mut tx, within, &account.id).await? {
        return Ok(Readdressed::BeyondScope);
    }
    let (token, expires_at) =
        issue_confirmation(app, &mut tx, &account.id, new.as_str(), None, now).await?;
    tx.commit().await?;
    let sent = send_confirmation(
        app,
        account,
        new.clone(),
        &token,
        expires_at,
        Confirming::Change,
        Requester::of(within),
    )
    .await;
    // Told only at an address the account confirmed: a mistyped one is a
    // stranger's.
    if let Some(old) = account
        .email
        .as_deref()
        .filter(|_| account.email_verified_at.is_some())
        .and_then(|e| EmailAddress::parse(e).ok())
    {
        let context = minijinja::context! {
            name => format!("{} {}", account.given_name, account.family_name),
            identifier => &account.identifier,
            // Masked: the old mailbox may be read by someone the owner left,
            // and the new address may be mistyped, a stranger's.
            new_email => crate::delivery::mail::mask(new.as_str()),
            by_school => Requester::of(within) == Requester::School,
        };
        let notice = Mail::render(
            old,
            Subject {
                french: "Changement de l'adresse mail de votre compte",
                english: "Change of your account's email address",
            },
            "email_change_notice",
            context,
        )?;
        // `send` logs and counts a failure: the change is made all the same.
        let _ = app.mailer.send(notice).await;
    }
    Ok(Readdressed::Written(sent))
}
