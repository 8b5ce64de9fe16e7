//! Self-service recovery (SPEC §3.4, §3.5, §3.7): the forgotten identifier,
//! and the forgotten password by an emailed link or an SMS code.
//!
//! The screens answer the same whatever was typed: every request is recorded
//! under a reference number and costs the same database work, mail leaves in
//! the background, and an SMS that is not sent is waited for as long as one
//! usually takes. Only `recovery_explicit` restores the seeds' messages saying
//! that an identifier is unknown or cannot recover.
//!
//! Limits, counted before anything is looked at: requests per client address
//! (`throttle::RECOVERY_PER_ADDRESS`); messages per identifier and channel
//! ([`MESSAGES_PER_HOUR`]) and per address or phone
//! ([`CONTACT_MESSAGES_PER_HOUR`]), so a flood aimed at one family sends them
//! a few messages at most; SMS per day (`sms_daily_limit`).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rand::RngExt;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::activation::check_new_password;
use super::devices::TrustedDevice;
use super::throttle::{Gate, Origin};
use super::tokens::{self, Purpose, TokenProblem};
use super::{Account, AccountKind, AccountState, PasswordError, store};
use crate::app::Clef;
use crate::audit;
use crate::delivery::{Mail, Subject};
use crate::domain::{EmailAddress, Identifier};
use crate::oidc::{logout, refresh};
use crate::secret::{constant_time_eq, random_token};
use crate::storage::Kind;

/// Messages one identifier receives per hour at most by each channel,
/// whoever asks: strangers spending its SMS do not spend its mail.
pub const MESSAGES_PER_HOUR: u64 = 3;

/// Messages one address or one phone receives per hour at most: more than
/// one identifier's, since a parent's address is often that of several
/// accounts (one per child until they are grouped, the children's own).
pub const CONTACT_MESSAGES_PER_HOUR: u64 = 10;

/// An SMS code works this long, and this many tries.
pub const CODE_TTL: i64 = 10 * 60;
pub const CODE_ATTEMPTS: u64 = 3;

/// The number of a request: 13 digits, shown on screen and in the mail's
/// subject (« Demande de changement de mot de passe n° … »).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference(String);

impl Reference {
    fn random() -> Self {
        let mut rng = rand::rng();
        let first = rng.random_range(1..=9u8);
        let rest: String = (0..12)
            .map(|_| char::from(b'0' + rng.random_range(0..=9u8)))
            .collect();
        Self(format!("{first}{rest}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Email,
    Sms,
}

impl Channel {
    /// The form value: `mail` or `sms`.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "mail" => Some(Self::Email),
            "sms" => Some(Self::Sms),
            _ => None,
        }
    }

    fn kind(self) -> &'static str {
        match self {
            Self::Email => "password_email",
            Self::Sms => "password_sms",
        }
    }
}

/// What became of a request, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Sent,
    /// Nothing matched, or the account cannot recover this way.
    Nothing,
    /// A limit held the message back.
    Limited,
    Failed,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Nothing => "nothing",
            Self::Limited => "limited",
            Self::Failed => "failed",
        }
    }
}

/// Why the input cannot recover anything; told only with `recovery_explicit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unrecoverable {
    /// « Cet identifiant n'est pas reconnu. »
    UnknownIdentifier,
    /// « identifiant partiellement reconnu »: an account that never
    /// confirmed an address and has no phone (or was never activated).
    PartiallyKnown,
    /// No account has confirmed this address.
    UnknownAddress,
}

#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error("too many recovery requests from this address, retry in {retry_after} s")]
    TooManyRequests { retry_after: u64 },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for RecoveryError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}

async fn gate(app: &Clef, address: IpAddr) -> Result<(), RecoveryError> {
    match app.throttle.enter_recovery(address, app.now_ms()).await? {
        Gate::Open => Ok(()),
        Gate::Closed { retry_after } => Err(RecoveryError::TooManyRequests { retry_after }),
    }
}

/// Accounts that may recover at all: activated and not closed.
fn activated(account: &Account) -> bool {
    matches!(
        account.state,
        AccountState::Active | AccountState::PendingEmail
    )
}

fn confirmed_email(account: &Account) -> Option<&str> {
    account
        .email
        .as_deref()
        .filter(|_| account.email_verified_at.is_some())
}

fn email_recovers(account: &Account) -> bool {
    activated(account) && confirmed_email(account).is_some()
}

/// An SMS recovers an activated account whose phone takes one (a landline
/// from the school's file does not).
fn sms_recovers(account: &Account) -> bool {
    activated(account)
        && account
            .phone
            .as_deref()
            .is_some_and(crate::provisioning::csv_file::Phone::takes_sms)
}

async fn find(app: &Clef, identifier: &Identifier) -> Result<Option<Account>, sqlx::Error> {
    Ok(store::account_by_identifier(&app.db, identifier)
        .await?
        .filter(|a| a.state != AccountState::Closed))
}

/// Records a request under a fresh reference (drawn again in the unlikely
/// case it is taken), and on the audit trail with the address it came from
/// and its reference, which the person quotes to the help desk.
async fn record(
    app: &Clef,
    kind: &str,
    account_id: Option<&str>,
    outcome: Outcome,
    address: IpAddr,
) -> Result<Reference, sqlx::Error> {
    loop {
        let reference = Reference::random();
        let inserted = sqlx::query(
            "INSERT INTO recovery_requests (reference, account_id, kind, outcome, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (reference) DO NOTHING",
        )
        .bind(reference.as_str())
        .bind(account_id)
        .bind(kind)
        .bind(outcome.as_str())
        .bind(app.now())
        .execute(&app.db)
        .await?;
        if inserted.rows_affected() == 1 {
            let audited = match outcome {
                Outcome::Limited => audit::Outcome::Refused,
                Outcome::Sent | Outcome::Nothing | Outcome::Failed => audit::Outcome::Ok,
            };
            let detail = format!("{kind} {}", reference.as_str());
            let mut entry =
                audit::Entry::new(audit::Event::RecoveryRequested, audited).detail(&detail);
            entry.account_id = account_id;
            entry.address = Some(address);
            audit::record(&app.db, entry, app.now()).await;
            return Ok(reference);
        }
    }
}

/// Counts one more message for each of `recipients` in turn, and says whether
/// it may go (`Some`: the counts it took, to give back if a later limit holds
/// it back). A count past its limit gives the message back to the counts
/// before it and to itself: of many requests at once, exactly those the limits
/// allow go, and one held back by a count spends no other.
async fn count_message(app: &Clef, recipients: &[Recipient]) -> anyhow::Result<Option<Counted>> {
    let mut counted = Counted(Vec::with_capacity(recipients.len()));
    for recipient in recipients {
        let sent = app.store.incr(&recipient.key, recipient.period).await?;
        counted.0.push(recipient.key.clone());
        if sent > recipient.limit {
            counted.give_back(app).await?;
            return Ok(None);
        }
    }
    Ok(Some(counted))
}

/// The counts a message took ([`count_message`]).
struct Counted(Vec<String>);

impl Counted {
    /// The message was held back after all: its counts are taken back.
    async fn give_back(self, app: &Clef) -> anyhow::Result<()> {
        for key in &self.0 {
            app.store.refund(key).await?;
        }
        Ok(())
    }
}

/// A count of messages: under `key`, at most `limit` in a `period` that runs
/// from its first message.
struct Recipient {
    key: String,
    limit: u64,
    period: Duration,
}

/// The key a recipient is counted under: keyed, so the store holds no
/// address. An address or a phone has its own limit; an address's identifier
/// reminders (`reminder`) the identifier's.
fn recipient(app: &Clef, what: &str, value: &str) -> Recipient {
    let limit = match what {
        "email" | "phone" => CONTACT_MESSAGES_PER_HOUR,
        _ => MESSAGES_PER_HOUR,
    };
    Recipient {
        key: format!(
            "recovery:sent:{what}:{}",
            app.devices.tag("recovery-recipient", value)
        ),
        limit,
        period: Duration::from_secs(3600),
    }
}

/// The day's reset SMS to strangers of the accounts, nationwide
/// (`sms_daily_limit`, a day of the app's clock from `now`).
fn sms_today(app: &Clef, now: i64) -> Recipient {
    Recipient {
        key: format!("recovery:sms-day:{}", now.div_euclid(24 * 3600)),
        limit: app.config.sms_daily_limit,
        period: Duration::from_secs(2 * 24 * 3600),
    }
}

/// The counts a reset message is held to: the identifier's by this channel
/// and the contact's (`what`: `email` or `phone`), whoever asks; but a
/// browser that signed in to the account before (device cookie) is counted
/// on its own, as at the login, so strangers spending the identifier's
/// messages cannot keep the parent from their own.
fn reset_recipients(
    app: &Clef,
    origin: &Origin,
    identifier: &Identifier,
    what: &str,
    contact: &str,
) -> Vec<Recipient> {
    match &origin.device {
        Some(device) => vec![recipient(app, "device", device.as_str())],
        None => vec![
            recipient(app, &format!("identifier-{what}"), identifier.as_str()),
            recipient(app, what, contact),
        ],
    }
}

// ---------------------------------------------------------------------------
// Identifiant oublié (§3.4)

/// One account named in the reminder mail.
#[derive(Debug, Serialize)]
struct Reminded {
    identifier: String,
    kind: &'static str,
    /// Who the account is for: the children of a guardian, the student.
    people: Vec<String>,
}

/// Mails the identifiers of every account that confirmed `email` (one mail).
/// The answer costs the same whether or not the address matched: the
/// request is recorded either way, and the mail is prepared and sent after
/// the answer. It says nothing of a match unless explicit. `device_proofs`
/// are the browser's device cookie's: one for an account of the address
/// counts the mail on that browser's own count, so strangers spending the
/// address's reminders cannot keep them from the parent's own browser.
pub async fn remind_identifier(
    app: &Arc<Clef>,
    email: &EmailAddress,
    address: IpAddr,
    device_proofs: &[String],
) -> Result<Result<(), Unrecoverable>, RecoveryError> {
    gate(app, address).await?;
    let accounts = store::accounts_by_confirmed_email(&app.db, email).await?;
    let accounts: Vec<Account> = accounts.into_iter().filter(email_recovers).collect();
    let device = accounts.iter().find_map(|account| {
        app.devices.recognise(
            device_proofs.iter().map(String::as_str),
            &account.identifier,
            account.credential_stamp(),
        )
    });
    let outcome = if accounts.is_empty() {
        Outcome::Nothing
    } else {
        Outcome::Sent
    };
    let reference = record(
        app,
        "identifier",
        accounts.first().map(|a| a.id.as_str()),
        outcome,
        address,
    )
    .await?;
    if accounts.is_empty() {
        return Ok(if app.config.recovery_explicit {
            Err(Unrecoverable::UnknownAddress)
        } else {
            Ok(())
        });
    }
    after_answer(app, reference, send_reminder(app.clone(), accounts, device));
    Ok(Ok(()))
}

/// Runs `work` beside the answer, in the person's language; a message a
/// limit held back or that failed is recorded on the request. A graceful
/// shutdown waits for it (`Clef::background`).
fn after_answer(
    app: &Arc<Clef>,
    reference: Reference,
    work: impl Future<Output = anyhow::Result<Outcome>> + Send + 'static,
) {
    let app = app.clone();
    let locale = crate::domain::Locale::current();
    let background = app.background.clone();
    // In the request's span: its log lines carry the request's id.
    background.spawn(tracing::Instrument::in_current_span(locale.scope(async move {
        let outcome = work.await.unwrap_or_else(|e| {
            tracing::error!(reference = reference.as_str(), error = crate::delivery::mail::masked_error(&e), "recovery message not sent");
            Outcome::Failed
        });
        if outcome != Outcome::Sent
            && let Err(e) = sqlx::query("UPDATE recovery_requests SET outcome = $1 WHERE reference = $2")
                .bind(outcome.as_str())
                .bind(reference.as_str())
                .execute(&app.db)
                .await
        {
            tracing::error!(reference = reference.as_str(), error = %e, "recovery outcome not recorded");
        }
    })));
}

async fn send_reminder(
    app: Arc<Clef>,
    accounts: Vec<Account>,
    device: Option<TrustedDevice>,
) -> anyhow::Result<Outcome> {
    let first = &accounts[0];
    // The address as the accounts confirmed it, not as typed.
    let to = EmailAddress::parse(confirmed_email(first).unwrap_or_default())?;
    // Counted apart from the reset mails to the address, so that reminders
    // asked by anyone who knows it (they need nothing else) do not hold back
    // the parent's own reset link; from a browser that signed in to one of
    // the accounts, on that browser's count.
    let counted = match &device {
        Some(device) => recipient(&app, "device", device.as_str()),
        None => recipient(&app, "reminder", &to.as_str().to_lowercase()),
    };
    if count_message(&app, &[counted]).await?.is_none() {
        app.metrics.mail(crate::metrics::Delivery::held_back);
        tracing::warn!(account = %first.id, "identifier reminder held back by the hourly limit");
        return Ok(Outcome::Limited);
    }
    let mut reminded = Vec::with_capacity(accounts.len());
    for account in &accounts {
        reminded.push(Reminded {
            identifier: account.identifier.clone(),
            kind: match account.kind {
                AccountKind::Guardian => "guardian",
                AccountKind::Student => "student",
                AccountKind::Staff => "staff",
            },
            people: people(&app, account).await?,
        });
    }
    let mail = Mail::render(
        to,
        Subject {
            french: "Rappel de votre identifiant",
            english: "Your username",
        },
        "identifier_reminder",
        minijinja::context! { accounts => minijinja::Value::from(minijinja::value::Serde(&reminded)) },
    )?;
    app.mailer.send(mail).await?;
    tracing::info!(accounts = accounts.len(), "identifier reminder sent");
    Ok(Outcome::Sent)
}

/// « Léa Martin (Collège Jean Moulin, 5 B) » for each child of a guardian, or the student.
async fn people(app: &Clef, account: &Account) -> anyhow::Result<Vec<String>> {
    let describe = |given: &str, family: &str, school: Option<String>| match school {
        Some(school) => format!("{given} {family} ({school})"),
        None => format!("{given} {family}"),
    };
    Ok(match account.kind {
        AccountKind::Guardian => store::children(&app.db, &account.id)
            .await?
            .into_iter()
            .map(|c| {
                let school = c.establishment.map(|e| match &c.class_name {
                    Some(class) => format!("{}, {class}", e.name),
                    None => e.name,
                });
                describe(&c.given_name, &c.family_name, school)
            })
            .collect(),
        AccountKind::Student | AccountKind::Staff => {
            let school = match &account.establishment_id {
                Some(id) => store::establishment_by_id(&app.db, id)
                    .await?
                    .map(|e| e.name),
                None => None,
            };
            vec![describe(&account.given_name, &account.family_name, school)]
        }
    })
}

// ---------------------------------------------------------------------------
// Mot de passe oublié (§3.5): identifier → channel → link or code → new password

/// The channels the second screen offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channels {
    pub email: bool,
    /// The phone an SMS goes to, masked. Unless explicit, every identifier
    /// shows one: the account's, or a stand-in derived from the identifier
    /// with the server's key (the same each time, and nothing is sent to it).
    pub phone: Option<String>,
}

pub async fn channels(
    app: &Clef,
    identifier: &Identifier,
    address: IpAddr,
) -> Result<Result<Channels, Unrecoverable>, RecoveryError> {
    gate(app, address).await?;
    let account = find(app, identifier).await?;
    if app.config.recovery_explicit {
        return Ok(match account {
            None => Err(Unrecoverable::UnknownIdentifier),
            Some(account) if !email_recovers(&account) && !sms_recovers(&account) => {
                Err(Unrecoverable::PartiallyKnown)
            }
            Some(account) => Ok(Channels {
                email: email_recovers(&account),
                phone: sms_recovers(&account)
                    .then(|| shown_phone(account.phone.as_deref().unwrap_or_default())),
            }),
        });
    }
    // A landline is no phone to send to: a stand-in, as for no phone.
    let phone = account.as_ref().and_then(|a| a.phone.as_deref());
    let phone = match phone.filter(|p| crate::provisioning::csv_file::Phone::takes_sms(p)) {
        Some(phone) => shown_phone(phone),
        None => shown_phone(&stand_in_phone(app, identifier)),
    };
    Ok(Ok(Channels {
        email: true,
        phone: Some(phone),
    }))
}

/// A number derived from the identifier with the server's key.
fn stand_in_phone(app: &Clef, identifier: &Identifier) -> String {
    app.devices
        .tag("recovery-phone", identifier.as_str())
        .bytes()
        .filter(u8::is_ascii_digit)
        .chain(std::iter::repeat(b'0'))
        .take(10)
        .map(char::from)
        .collect()
}

/// A number as the channel screen shows it: its last two digits only, in one
/// shape whatever the number (national, international, a stand-in), so the
/// shape tells nothing either: `•• •• •• •• 78`.
pub fn shown_phone(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    let last: String = digits[digits.len().saturating_sub(2)..].iter().collect();
    format!("•• •• •• •• {last}")
}

/// A request taken: its number, and for SMS the code challenge to answer.
#[derive(Debug, Clone)]
pub struct Requested {
    pub reference: Reference,
    /// The id of the SMS code to enter (SMS only).
    pub challenge: Option<String>,
}

/// An SMS code waiting to be entered.
#[derive(Debug, Serialize, Deserialize)]
struct Challenge {
    /// `None` when nothing was sent: the code screen shows all the same.
    account_id: Option<String>,
    /// Keyed digest of the code.
    code_tag: String,
    /// Milliseconds: a password reset in the same second as the request
    /// (just before it) must not void it.
    issued_at_ms: i64,
    expires_at: i64,
}

fn challenges(app: &Clef) -> Kind<Challenge> {
    Kind::new(&app.store, "recovery-code")
}

/// Tries made on a challenge.
fn challenge_tries(app: &Clef) -> Kind<u64> {
    Kind::new(&app.store, "recovery-code-tries")
}

/// When the account's codes were last voided (a code used, a password
/// reset or changed), in milliseconds: codes issued until then no longer
/// work. Kept as long as a code issued just before can live.
fn codes_voided(app: &Clef) -> Kind<i64> {
    Kind::new(&app.store, "recovery-code-voided-ms")
}

fn code_tag(app: &Clef, challenge: &str, code: &str) -> String {
    app.devices
        .tag("recovery-code", &format!("{challenge}\0{code}"))
}

/// Takes a password-reset request for `identifier` by `channel`, from `origin`.
pub async fn request_reset(
    app: &Arc<Clef>,
    identifier: &Identifier,
    channel: Channel,
    origin: &Origin,
) -> Result<Result<Requested, Unrecoverable>, RecoveryError> {
    gate(app, origin.address).await?;
    let account = find(app, identifier).await?;
    let recovers = |a: &Account| match channel {
        Channel::Email => email_recovers(a),
        Channel::Sms => sms_recovers(a),
    };
    if app.config.recovery_explicit {
        match &account {
            None => return Ok(Err(Unrecoverable::UnknownIdentifier)),
            Some(a) if !recovers(a) => return Ok(Err(Unrecoverable::PartiallyKnown)),
            Some(_) => {}
        }
    }
    let eligible = account.filter(|a| recovers(a));
    Ok(Ok(match channel {
        Channel::Email => Requested {
            reference: request_by_email(app, identifier, eligible, origin).await?,
            challenge: None,
        },
        Channel::Sms => {
            let (reference, challenge) = request_by_sms(app, identifier, eligible, origin).await?;
            Requested {
                reference,
                challenge: Some(challenge),
            }
        }
    }))
}

/// The account's unused password-reset links stop working (a new request, a
/// reset, a password or address change).
pub async fn void_reset_links<'e>(
    conn: impl sqlx::Executor<'e, Database = sqlx::Any>,
    account_id: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE action_tokens SET consumed_at = $1 \
         WHERE account_id = $2 AND purpose = 'reset_password' AND consumed_at IS NULL",
    )
    .bind(now)
    .bind(account_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The account's outstanding SMS codes stop working. (A newer request does
/// not void them: the code screen belongs to the browser that asked, so a
/// stranger asking for the parent's name would otherwise strand the parent
/// with a code and no screen to type it in.)
pub async fn forget_sms_code(app: &Clef, account_id: &str) -> anyhow::Result<()> {
    let ttl = Duration::from_secs(CODE_TTL as u64 + 1);
    codes_voided(app).put(account_id, &app.now_ms(), ttl).await
}

/// Records the request and answers; the link is made and mailed after the
/// answer, so a known account answers as fast as an unknown one.
async fn request_by_email(
    app: &Arc<Clef>,
    identifier: &Identifier,
    account: Option<Account>,
    origin: &Origin,
) -> Result<Reference, RecoveryError> {
    let kind = Channel::Email.kind();
    let Some(account) = account else {
        return Ok(record(app, kind, None, Outcome::Nothing, origin.address).await?);
    };
    let reference = record(app, kind, Some(&account.id), Outcome::Sent, origin.address).await?;
    let work = send_reset_link(
        app.clone(),
        identifier.clone(),
        account,
        reference.clone(),
        origin.clone(),
    );
    after_answer(app, reference.clone(), work);
    Ok(reference)
}

async fn send_reset_link(
    app: Arc<Clef>,
    identifier: Identifier,
    account: Account,
    reference: Reference,
    origin: Origin,
) -> anyhow::Result<Outcome> {
    let email = confirmed_email(&account).unwrap_or_default().to_owned();
    let recipients = reset_recipients(&app, &origin, &identifier, "email", &email.to_lowercase());
    if count_message(&app, &recipients).await?.is_none() {
        app.metrics.mail(crate::metrics::Delivery::held_back);
        tracing::warn!(account = %account.id, "reset mail held back by the hourly limit");
        return Ok(Outcome::Limited);
    }
    // The newest link replaces the older ones (each mail reaches the owner,
    // so the latest one in the mailbox always works).
    void_reset_links(&app.db, &account.id, app.now()).await?;
    let now = app.now();
    let ttl = app.config.recovery_link_ttl;
    let mut conn = app.db.acquire().await?;
    let token = tokens::issue(
        &mut conn,
        &account.id,
        Purpose::ResetPassword,
        Some(&email),
        None,
        now,
        now + ttl,
    )
    .await?;
    drop(conn);
    let context = minijinja::context! {
        name => format!("{} {}", account.given_name, account.family_name),
        // In the mail's language when opened, whatever the browser's.
        link => app.config.endpoint(&format!(
            "/mot-de-passe-oublie/modifier?jeton={token}&lang={}",
            crate::domain::Locale::current().code()
        )),
        reference => reference.as_str(),
        minutes => ttl / 60,
    };
    let subject = format!(
        "Demande de changement de mot de passe n° {}",
        reference.as_str()
    );
    let english = format!("Password change request no. {}", reference.as_str());
    let mail = Mail::render(
        EmailAddress::parse(&email)?,
        Subject {
            french: &subject,
            english: &english,
        },
        "reset_password",
        context,
    )?;
    app.mailer.send(mail).await?;
    tracing::info!(account = %account.id, reference = reference.as_str(), "password reset link sent");
    Ok(Outcome::Sent)
}

async fn request_by_sms(
    app: &Arc<Clef>,
    identifier: &Identifier,
    account: Option<Account>,
    origin: &Origin,
) -> Result<(Reference, String), RecoveryError> {
    // Every answer of this screen is given at the same moment after the
    // request: as long as a send usually takes, the store's round trips of
    // the limits (a known account with a phone makes more) inside it.
    let answer_at = tokio::time::Instant::now() + app.sms.typical_latency();
    let kind = Channel::Sms.kind();
    let now = app.now();
    let challenge_id = random_token(24);
    let code = format!("{:06}", rand::rng().random_range(0..1_000_000u32));
    let ttl = Duration::from_secs(CODE_TTL as u64);
    let waiting = |account_id: Option<String>| Challenge {
        account_id,
        code_tag: code_tag(app, &challenge_id, &code),
        issued_at_ms: app.now_ms(),
        expires_at: now + CODE_TTL,
    };
    let phone = account.as_ref().and_then(|a| a.phone.clone());
    let (Some(account), Some(phone)) = (account, phone) else {
        // Nothing to send: the same screen, after as long as a send takes.
        challenges(app)
            .put(&challenge_id, &waiting(None), ttl)
            .await?;
        let reference = record(app, kind, None, Outcome::Nothing, origin.address).await?;
        tokio::time::sleep_until(answer_at).await;
        return Ok((reference, challenge_id));
    };
    // A phone stored before numbers were kept in E.164 is counted as one.
    let counted = crate::provisioning::csv_file::Phone::as_stored(&phone);
    let recipients = reset_recipients(app, origin, identifier, "phone", &counted);
    // The day's budget counts only SMS that the other limits let go, so that
    // requests held back for one name or one address cannot spend
    // everyone's; and not those of a browser that signed in to the account
    // before (its own three an hour), so that strangers who spend the budget
    // on guessed names do not silence the parents asking from their own
    // phone or computer. An SMS the address's or the day's limit holds back
    // gives back its counts on the identifier and the phone.
    let known_device = origin.device.is_some();
    let within = match count_message(app, &recipients).await? {
        None => false,
        Some(_) if known_device => true,
        Some(taken) => {
            let within = app
                .throttle
                .send_sms_from(origin.address, app.now_ms())
                .await?
                == Gate::Open
                && match count_message(app, &[sms_today(app, now)]).await? {
                    Some(_) => true,
                    None => {
                        let limit = app.config.sms_daily_limit;
                        tracing::warn!(limit, "the day's SMS budget is spent");
                        false
                    }
                };
            if !within {
                taken.give_back(app).await?;
            }
            within
        }
    };
    if !within {
        app.metrics.sms(crate::metrics::Delivery::held_back);
        tracing::warn!(account = %account.id, "reset SMS held back by a limit");
        challenges(app)
            .put(&challenge_id, &waiting(None), ttl)
            .await?;
        let reference = record(
            app,
            kind,
            Some(&account.id),
            Outcome::Limited,
            origin.address,
        )
        .await?;
        // As long as a send takes, like every other answer of this screen.
        tokio::time::sleep_until(answer_at).await;
        return Ok((reference, challenge_id));
    }
    challenges(app)
        .put(&challenge_id, &waiting(Some(account.id.clone())), ttl)
        .await?;
    let reference = record(app, kind, Some(&account.id), Outcome::Sent, origin.address).await?;
    // The request's number, as its screen shows it: a parent who asked
    // twice (the first SMS slow to come) knows which code the screen takes.
    // GSM-7 characters only (no « n° »), so the text stays one SMS.
    let number = reference.as_str();
    let text = match crate::domain::Locale::current() {
        crate::domain::Locale::Fr => format!(
            "Demande {number} : votre code de changement de mot de passe est {code}. Il est valable 10 minutes. Ne le communiquez à personne."
        ),
        crate::domain::Locale::En => format!(
            "Request {number}: your password change code is {code}. It is valid for 10 minutes. Do not share it with anyone."
        ),
    };
    // Sent after the answer, which waits as long as a send usually takes, as
    // every other answer of this screen (SPEC §3.7): a gateway slow, failing
    // or retrying shows nothing of which identifiers have a phone.
    let work = send_code(
        app.clone(),
        phone,
        text,
        challenge_id.clone(),
        waiting(None),
        reference.clone(),
    );
    after_answer(app, reference.clone(), work);
    tokio::time::sleep_until(answer_at).await;
    Ok((reference, challenge_id))
}

/// Sends a reset code; if it could not be sent (the gateway logs why), no
/// code of its challenge will do (`unsent`: the challenge without its
/// account), and the screen says what to do when nothing arrives.
async fn send_code(
    app: Arc<Clef>,
    phone: String,
    text: String,
    challenge_id: String,
    unsent: Challenge,
    reference: Reference,
) -> anyhow::Result<Outcome> {
    if app.sms.send(&phone, &text).await.is_err() {
        let ttl = Duration::from_secs((unsent.expires_at - app.now()).max(1) as u64);
        challenges(&app).put(&challenge_id, &unsent, ttl).await?;
        return Ok(Outcome::Failed);
    }
    tracing::info!(reference = reference.as_str(), "password reset code sent");
    Ok(Outcome::Sent)
}

/// What an entered SMS code did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeOutcome {
    /// The code was right: a reset token for the new-password form.
    Verified {
        token: String,
    },
    Wrong {
        remaining: u64,
    },
    /// Not six digits (letters, a digit missing): a slip, not a guess; no
    /// try is used.
    Malformed,
    /// The tries are used up: the code no longer works.
    Spent,
    /// Unknown, expired, or replaced by a newer request.
    Expired,
}

/// Checks an SMS code; each try is counted before the check.
pub async fn verify_code(
    app: &Clef,
    challenge_id: &str,
    code: &str,
) -> Result<CodeOutcome, RecoveryError> {
    let now = app.now();
    let Some(challenge) = challenges(app).get(challenge_id).await? else {
        return Ok(CodeOutcome::Expired);
    };
    if challenge.expires_at <= now {
        challenges(app).delete(challenge_id).await?;
        return Ok(CodeOutcome::Expired);
    }
    if let Some(account_id) = &challenge.account_id
        && codes_voided(app)
            .get(account_id)
            .await?
            .is_some_and(|voided| voided >= challenge.issued_at_ms)
    {
        return Ok(CodeOutcome::Expired);
    }
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(CodeOutcome::Malformed);
    }
    let tries = challenge_tries(app)
        .count(challenge_id, Duration::from_secs(CODE_TTL as u64))
        .await?;
    if tries > CODE_ATTEMPTS {
        challenges(app).delete(challenge_id).await?;
        return Ok(CodeOutcome::Spent);
    }
    let right = challenge.account_id.is_some()
        && constant_time_eq(&code_tag(app, challenge_id, &code), &challenge.code_tag);
    if !right {
        if tries == CODE_ATTEMPTS {
            challenges(app).delete(challenge_id).await?;
            return Ok(CodeOutcome::Spent);
        }
        return Ok(CodeOutcome::Wrong {
            remaining: CODE_ATTEMPTS - tries,
        });
    }
    // Of two concurrent right answers, one takes the challenge.
    let Some(Challenge {
        account_id: Some(account_id),
        ..
    }) = challenges(app).take(challenge_id).await?
    else {
        return Ok(CodeOutcome::Expired);
    };
    // The account's other codes go with this one.
    forget_sms_code(app, &account_id).await?;
    // An account reset or closed by the school since the code was sent has
    // no password to change; a link made now would outlive its new letter.
    let still_activated = store::account_by_id(&app.db, &account_id)
        .await?
        .is_some_and(|account| activated(&account));
    if !still_activated {
        return Ok(CodeOutcome::Expired);
    }
    let mut conn = app.db.acquire().await?;
    let token = tokens::issue(
        &mut conn,
        &account_id,
        Purpose::ResetPassword,
        None,
        None,
        now,
        now + app.config.recovery_link_ttl,
    )
    .await?;
    tracing::info!(account = %account_id, "password reset code verified");
    Ok(CodeOutcome::Verified { token })
}

/// The new-password form, as typed.
pub struct NewPassword {
    pub identifier: String,
    pub password: SecretString,
    pub confirmation: SecretString,
}

#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    #[error(transparent)]
    Link(TokenProblem),
    #[error("the identifier is not the link's")]
    WrongIdentifier,
    /// The fields to correct (their form names), each with its French message.
    #[error("the new password is refused")]
    Invalid(Vec<(&'static str, String)>),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for ResetError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}

/// The forms a reset link takes (a wrong identifier, a password the rules
/// refuse…); beyond, it is spent.
const LINK_SUBMISSIONS: u64 = 10;

/// The forms each reset link took, under the link's id.
fn link_submissions(app: &Clef) -> Kind<u64> {
    Kind::new(&app.store, "reset-link-submissions")
}

/// Whether a reset link still works (the GET that shows the form).
pub async fn check_link(app: &Clef, token: &str) -> anyhow::Result<Result<(), TokenProblem>> {
    let mut conn = app.db.acquire().await?;
    Ok(
        tokens::check(&mut conn, token, Purpose::ResetPassword, app.now())
            .await?
            .map(|_| ()),
    )
}

/// « Modifiez votre mot de passe »: the identifier must be the link's account
/// (the link takes [`LINK_SUBMISSIONS`] forms, then it is spent). Then the new password is
/// set, every session and refresh token of the account ends (relying parties
/// told), and a notice goes to the account's address.
pub async fn reset_password(
    app: &Clef,
    token: &str,
    form: NewPassword,
    origin: &Origin,
) -> Result<Account, ResetError> {
    let now = app.now();
    let found = {
        let mut conn = app.db.acquire().await?;
        tokens::check(&mut conn, token, Purpose::ResetPassword, now)
            .await?
            .map_err(ResetError::Link)?
    };
    let account = store::account_by_id(&app.db, &found.account_id)
        .await?
        .filter(activated)
        .ok_or(ResetError::Link(TokenProblem::Unknown))?;
    // Counted on the link, not on the account: the account's failed-attempt
    // delay, which anyone who knows the identifier can keep running, must
    // not stop the owner of the mailbox from resetting the password.
    let submissions = link_submissions(app)
        .count(
            &found.id,
            Duration::from_secs((found.expires_at - now).max(1) as u64),
        )
        .await?;
    if submissions > LINK_SUBMISSIONS {
        return Err(ResetError::Link(TokenProblem::Used));
    }
    if Identifier::parse(&form.identifier)
        .ok()
        .is_none_or(|typed| typed.as_str() != account.identifier)
    {
        tracing::info!(account = %account.id, address = %origin.address, "wrong identifier on a reset link");
        return Err(ResetError::WrongIdentifier);
    }
    let problems = check_new_password(
        app,
        &form.password,
        &form.confirmation,
        ["password", "password_confirmation"],
    );
    if !problems.is_empty() {
        return Err(ResetError::Invalid(problems));
    }
    let hash = app.passwords.hash(&form.password).await?;

    let mut tx = app.db.begin().await?;
    if let Err(problem) = tokens::consume(&mut tx, token, Purpose::ResetPassword, now).await? {
        return Err(ResetError::Link(problem));
    }
    // The sessions opened with the old password end with the commit (their
    // epoch is over), whatever happens after it.
    let epoch: Option<i64> = sqlx::query_scalar(
        "UPDATE accounts SET password_hash = $1, session_epoch = session_epoch + 1, updated_at = $2, \
         locale = $4 \
         WHERE id = $3 AND state IN ('active', 'pending_email') RETURNING session_epoch",
    )
    .bind(&hash)
    .bind(now)
    .bind(&account.id)
    .bind(crate::domain::Locale::current().code())
    .fetch_optional(&mut *tx)
    .await?;
    let Some(epoch) = epoch else {
        return Err(ResetError::Link(TokenProblem::Unknown));
    };
    void_reset_links(&mut *tx, &account.id, now).await?;
    super::activation::cancel_address_change(&mut tx, &account.id, now).await?;
    let families = refresh::revoke_all_of(&mut *tx, &account.id, now).await?;
    crate::oidc::consent::forget_all(&mut tx, &account.id).await?;
    tx.commit().await?;

    // Done: the parent gets the success page whatever fails below, which
    // ending the sessions' records, telling their clients, voiding an SMS
    // code (`verify_code` also finds its request over) only complete.
    if let Err(e) = forget_sms_code(app, &account.id).await {
        tracing::error!(account = %account.id, error = %e, "SMS codes not voided after a reset");
    }
    if let Err(e) = logout::signed_out_everywhere(app, &account.id, epoch).await {
        tracing::error!(account = %account.id, error = %e, "sessions not ended after a reset");
    }
    if let Err(e) = app.throttle.forgive(&account.identifier).await {
        tracing::error!(account = %account.id, error = %e, "login delay not lifted after a reset");
    }
    tracing::info!(account = %account.id, refresh_families = families, "password reset");
    let entry = audit::Entry::new(audit::Event::RecoveryCompleted, audit::Outcome::Ok)
        .account(&account.id)
        .detail("password reset");
    let entry = audit::Entry {
        address: Some(origin.address),
        ..entry
    };
    audit::record(&app.db, entry, now).await;
    tell_password_changed(app, &account, false)?;
    Ok(account)
}

/// « Votre mot de passe a été modifié », to the account's confirmed address
/// (none: nothing to tell): after a reset (every session closed), or a
/// change in « Mon compte » (`from_account`: the other sessions closed), so
/// that an owner who did not make it knows at once.
pub(crate) fn tell_password_changed(
    app: &Clef,
    account: &Account,
    from_account: bool,
) -> anyhow::Result<()> {
    let Some(email) = confirmed_email(account).and_then(|e| EmailAddress::parse(e).ok()) else {
        return Ok(());
    };
    let context = minijinja::context! {
        name => format!("{} {}", account.given_name, account.family_name),
        identifier => &account.identifier,
        from_account,
        // In the mail's language when opened, as the other mails' links.
        login => app.config.endpoint(&format!("/login?lang={}", crate::domain::Locale::current().code())),
    };
    let notice = Mail::render(
        email,
        Subject {
            french: "Votre mot de passe a été modifié",
            english: "Your password has been changed",
        },
        "password_changed",
        context,
    )?;
    app.mailer.dispatch(notice);
    Ok(())
}
