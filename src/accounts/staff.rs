//! Staff roles (SPEC §3.9, issue 11): a staff account manages one or more
//! establishments, or — the academy operator — all of them. Every back-office
//! action asks [`Scope::manages`] first.

use sqlx::Row;

use super::{Account, AccountKind, Establishment};
use crate::storage::Db;

/// What a staff account may manage.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// The academy operator: every establishment.
    pub academy: bool,
    /// The establishments of an establishment's staff.
    pub establishments: Vec<Establishment>,
}

impl Scope {
    pub fn is_empty(&self) -> bool {
        !self.academy && self.establishments.is_empty()
    }

    /// Whether the establishment `id` is within the scope.
    pub fn manages(&self, establishment_id: &str) -> bool {
        self.academy || self.establishments.iter().any(|e| e.id == establishment_id)
    }
}

/// The scope of `account`: empty for anyone but staff.
pub async fn scope(db: &Db, account: &Account) -> Result<Scope, sqlx::Error> {
    if account.kind != AccountKind::Staff {
        return Ok(Scope::default());
    }
    let rows = sqlx::query(
        "SELECT r.establishment_id, e.uai, e.name, e.portal_url FROM staff_roles r \
         LEFT JOIN establishments e ON e.id = r.establishment_id \
         WHERE r.account_id = $1 ORDER BY e.uai",
    )
    .bind(&account.id)
    .fetch_all(db)
    .await?;
    let mut scope = Scope::default();
    for row in rows {
        match row.try_get::<Option<String>, _>("establishment_id")? {
            None => scope.academy = true,
            Some(id) => scope.establishments.push(Establishment {
                id,
                uai: row.try_get("uai")?,
                name: row.try_get("name")?,
                portal_url: row.try_get("portal_url")?,
            }),
        }
    }
    Ok(scope)
}

/// Gives a staff account an establishment (`Some`) or the academy role (`None`).
pub async fn grant(
    db: &Db,
    account: &Account,
    establishment_id: Option<&str>,
    now: i64,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        account.kind == AccountKind::Staff,
        "only a staff account gets a back-office role"
    );
    let exists: Option<i64> = match establishment_id {
        Some(id) => {
            sqlx::query_scalar(
                "SELECT 1 FROM staff_roles WHERE account_id = $1 AND establishment_id = $2",
            )
            .bind(&account.id)
            .bind(id)
            .fetch_optional(db)
            .await?
        }
        None => {
            sqlx::query_scalar(
                "SELECT 1 FROM staff_roles WHERE account_id = $1 AND establishment_id IS NULL",
            )
            .bind(&account.id)
            .fetch_optional(db)
            .await?
        }
    };
    if exists.is_none() {
        sqlx::query(
            "INSERT INTO staff_roles (account_id, establishment_id, created_at) VALUES ($1, $2, $3)",
        )
        .bind(&account.id)
        .bind(establishment_id)
        .bind(now)
        .execute(db)
        .await?;
    }
    Ok(())
}

/// What [`revoke`] left of a staff member's access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    /// These roles remain (the back office reads them on every request: the
    /// others are gone at once).
    Kept { roles: usize },
    /// No role remained: the account is closed and signed out everywhere.
    Closed,
}

/// Takes a staff member's roles away: those of `establishment_ids`, or all
/// (`None`; a secretary who left). With none left the account is closed in
/// the same transaction and its session epoch moves on, so its sessions
/// stop at the next request, on every instance, without the server's help.
pub async fn revoke(
    db: &Db,
    account: &Account,
    establishment_ids: Option<&[String]>,
    now: i64,
) -> anyhow::Result<Revoked> {
    anyhow::ensure!(
        account.kind == AccountKind::Staff,
        "only a staff account has back-office roles"
    );
    let mut tx = db.begin().await?;
    match establishment_ids {
        Some(ids) => {
            for id in ids {
                sqlx::query(
                    "DELETE FROM staff_roles WHERE account_id = $1 AND establishment_id = $2",
                )
                .bind(&account.id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
        }
        None => {
            sqlx::query("DELETE FROM staff_roles WHERE account_id = $1")
                .bind(&account.id)
                .execute(&mut *tx)
                .await?;
        }
    }
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM staff_roles WHERE account_id = $1")
        .bind(&account.id)
        .fetch_one(&mut *tx)
        .await?;
    let revoked = if left == 0 {
        sqlx::query(
            "UPDATE accounts SET state = 'closed', session_epoch = session_epoch + 1, \
             updated_at = $1, closed_at = $1 WHERE id = $2",
        )
        .bind(now)
        .bind(&account.id)
        .execute(&mut *tx)
        .await?;
        crate::oidc::refresh::revoke_all_of(&mut *tx, &account.id, now).await?;
        Revoked::Closed
    } else {
        Revoked::Kept {
            roles: usize::try_from(left)?,
        }
    };
    tx.commit().await?;
    Ok(revoked)
}

/// Accounts of an establishment in each state, per class: its pupils, and the
/// guardians of its pupils (a guardian of two classes counts in both).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Funnel {
    pub class: String,
    pub provisional: i64,
    pub pending_email: i64,
    pub active: i64,
}

impl Funnel {
    pub fn total(&self) -> i64 {
        self.provisional + self.pending_email + self.active
    }

    /// `n` accounts in `state`.
    fn count(&mut self, state: &str, n: i64) {
        match state {
            "provisional" => self.provisional += n,
            "pending_email" => self.pending_email += n,
            "active" => self.active += n,
            _ => {}
        }
    }
}

/// The activation funnel of an establishment, by class, for students or guardians.
pub async fn funnel(
    db: &Db,
    establishment_id: &str,
    guardians: bool,
) -> Result<Vec<Funnel>, sqlx::Error> {
    let sql = if guardians {
        "SELECT s.class_name AS class, g.state AS state, COUNT(DISTINCT g.id) AS n \
         FROM accounts s JOIN guardianships l ON l.student_id = s.id \
         JOIN accounts g ON g.id = l.guardian_id \
         WHERE s.establishment_id = $1 AND s.kind = 'student' AND s.state <> 'closed' AND g.state <> 'closed' \
         GROUP BY s.class_name, g.state ORDER BY s.class_name"
    } else {
        "SELECT class_name AS class, state, COUNT(*) AS n FROM accounts \
         WHERE establishment_id = $1 AND kind = 'student' AND state <> 'closed' \
         GROUP BY class_name, state ORDER BY class_name"
    };
    let rows = sqlx::query(sql)
        .bind(establishment_id)
        .fetch_all(db)
        .await?;
    let mut classes: Vec<Funnel> = Vec::new();
    for row in rows {
        let class: Option<String> = row.try_get("class")?;
        let class = class.unwrap_or_default();
        let state: String = row.try_get("state")?;
        let n: i64 = row.try_get("n")?;
        if classes.last().is_none_or(|last| last.class != class) {
            classes.push(Funnel {
                class,
                ..Funnel::default()
            });
        }
        classes.last_mut().expect("just pushed").count(&state, n);
    }
    // As the letters are filed: « 6 B » before « 10 A ».
    classes.sort_by_cached_key(|f| crate::provisioning::letters::filed(&f.class));
    Ok(classes)
}

/// The establishment's classes (those of its pupils), as the letters are
/// filed: « 6 B » before « 10 A ».
pub async fn classes(db: &Db, establishment_id: &str) -> Result<Vec<String>, sqlx::Error> {
    let mut classes: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT class_name FROM accounts WHERE establishment_id = $1 AND kind = 'student' \
         AND class_name IS NOT NULL",
    )
    .bind(establishment_id)
    .fetch_all(db)
    .await?;
    classes.sort_by_cached_key(|class| crate::provisioning::letters::filed(class));
    Ok(classes)
}

/// The establishment's accounts in each state, in all: a guardian of two
/// classes counts once (where [`funnel`] counts them in both classes).
pub async fn funnel_total(
    db: &Db,
    establishment_id: &str,
    guardians: bool,
) -> Result<Funnel, sqlx::Error> {
    let sql = if guardians {
        "SELECT g.state AS state, COUNT(DISTINCT g.id) AS n \
         FROM accounts s JOIN guardianships l ON l.student_id = s.id \
         JOIN accounts g ON g.id = l.guardian_id \
         WHERE s.establishment_id = $1 AND s.kind = 'student' AND s.state <> 'closed' AND g.state <> 'closed' \
         GROUP BY g.state"
    } else {
        "SELECT state, COUNT(*) AS n FROM accounts \
         WHERE establishment_id = $1 AND kind = 'student' AND state <> 'closed' GROUP BY state"
    };
    let mut total = Funnel::default();
    for row in sqlx::query(sql)
        .bind(establishment_id)
        .fetch_all(db)
        .await?
    {
        let state: String = row.try_get("state")?;
        total.count(&state, row.try_get("n")?);
    }
    Ok(total)
}

/// What the establishment may do to one of its accounts (SPEC §3.9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A new provisional password and letter; the account starts again from
    /// its first connection, and every session and refresh token ends.
    Reset,
    /// The account can no longer sign in; sessions and refresh tokens end.
    Close,
    /// A parent's address corrected: confirmed by its link before it counts.
    CorrectEmail(crate::domain::EmailAddress),
    /// A child detached from this guardian (breaks a grouping).
    Detach { student_id: String },
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Reset => "reset",
            Self::Close => "close",
            Self::CorrectEmail(_) => "correct_email",
            Self::Detach { .. } => "detach",
        }
    }
}

/// What an action did, for the page.
#[derive(Debug)]
pub enum Done {
    Reset,
    Closed,
    /// The address is corrected; its confirmation link is mailed to it.
    EmailSent,
    /// The address is corrected, but its confirmation mail did not go.
    EmailNotSent,
    /// The address of a letter's account is corrected: the first connection
    /// will offer it, and its confirmation link go then.
    EmailForActivation,
    Detached {
        new_identifier: String,
    },
}

/// An action the actor's scope does not cover.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The parent also has children in an establishment the actor does not
    /// manage: closing, resetting or re-addressing the account would cut
    /// that parent's access there too. The academy (or staff of every one
    /// of those establishments) does it.
    SharedParent,
    /// The account's confirmation mails of the hour are spent (the same
    /// count as the parent's own requests): no school can make Clef mail an
    /// address over and over either.
    TooManyMails { retry_after: u64 },
}

/// Whether `guardian_id` is a parent of a pupil of an establishment `scope` does not manage.
pub(super) async fn beyond_scope<'e>(
    conn: impl sqlx::Executor<'e, Database = sqlx::Any>,
    scope: &Scope,
    guardian_id: &str,
) -> Result<bool, sqlx::Error> {
    let establishments: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT s.establishment_id FROM guardianships g JOIN accounts s ON s.id = g.student_id \
         WHERE g.guardian_id = $1 AND s.state <> 'closed' AND s.establishment_id IS NOT NULL",
    )
    .bind(guardian_id)
    .fetch_all(conn)
    .await?;
    Ok(establishments.iter().any(|id| !scope.manages(id)))
}

/// Carries out `action` on `account` for the staff member `actor`; the audit
/// trail records it with who did it.
pub async fn act(
    app: &crate::app::Clef,
    actor: &Account,
    account: &Account,
    action: Action,
    address: std::net::IpAddr,
    user_agent: &str,
) -> anyhow::Result<Result<Done, Refused>> {
    use super::AccountState;
    anyhow::ensure!(
        account.kind != AccountKind::Staff,
        "staff accounts are not managed here"
    );
    anyhow::ensure!(
        account.state != AccountState::Closed,
        "this account is closed"
    );
    let whole_account = !matches!(action, Action::Detach { .. });
    let shared_parent_check = whole_account && account.kind == AccountKind::Guardian;
    let actor_scope = scope(&app.db, actor).await?;
    if shared_parent_check && beyond_scope(&app.db, &actor_scope, &account.id).await? {
        return Ok(Err(Refused::SharedParent));
    }
    let now = app.now();
    let done = match &action {
        Action::Reset | Action::Close => {
            let mut tx = app.db.begin().await?;
            if action == Action::Reset {
                let password = crate::provisioning::provisional::generate();
                let sealed = app.letters.encrypt(&account.id, &password)?;
                let changed = sqlx::query(
                    // `activated_at` stays: an account once used keeps its history
                    // (grouped accounts, its trail…), so the letter's expiry closes it
                    // rather than deleting it (`provisioning::expiry`). Its consents
                    // go (`consent::forget_all` below).
                    "UPDATE accounts SET state = 'provisional', password_hash = NULL, provisional_password = $1, \
                     letter_date = $2, email_verified_at = NULL, pending_email = NULL, \
                     session_epoch = session_epoch + 1, updated_at = $2 WHERE id = $3 AND state <> 'closed'",
                )
                .bind(&sealed)
                .bind(now)
                .bind(&account.id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                // Closed meanwhile (by another staff member): nothing to reset.
                anyhow::ensure!(changed == 1, "this account is closed");
            } else {
                let changed = sqlx::query(
                    "UPDATE accounts SET state = 'closed', provisional_password = NULL, closed_by_school_at = $1, \
                     closed_at = $1, session_epoch = session_epoch + 1, updated_at = $1 WHERE id = $2 AND state <> 'closed'",
                )
                .bind(now)
                .bind(&account.id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                anyhow::ensure!(changed == 1, "this account is closed");
            }
            // Again with the account written (locked): a grouping that gave
            // the parent another school's child meanwhile is seen, and the
            // transaction is dropped — nothing written.
            if shared_parent_check && beyond_scope(&mut *tx, &actor_scope, &account.id).await? {
                return Ok(Err(Refused::SharedParent));
            }
            sqlx::query(
                "UPDATE action_tokens SET consumed_at = $1 WHERE account_id = $2 AND consumed_at IS NULL",
            )
            .bind(now)
            .bind(&account.id)
            .execute(&mut *tx)
            .await?;
            crate::oidc::refresh::revoke_all_of(&mut *tx, &account.id, now).await?;
            crate::oidc::consent::forget_all(&mut tx, &account.id).await?;
            tx.commit().await?;
            // Done, and on the trail now. The account's cookies stopped working
            // with the commit (its session epoch moved on); ending the sessions'
            // records and telling their clients is what may fail below, and
            // acting again would not redo it (a closed account is refused).
            record(app, actor, account, &action, address, user_agent, now).await;
            if let Err(e) = crate::oidc::logout::sign_out_everywhere(app, &account.id).await {
                tracing::error!(account = %account.id, error = %e, "sessions not ended after a staff action");
            }
            // An SMS code sent before gives no reset link after (`recovery::verify_code`
            // also finds the account no longer activated).
            if let Err(e) = super::recovery::forget_sms_code(app, &account.id).await {
                tracing::error!(account = %account.id, error = %e, "SMS codes not voided after a staff action");
            }
            // The new letter's birth date is not held back by the old one's
            // wrong guesses (the lock's page sends the family to the school).
            if action == Action::Reset
                && let Err(e) = app.throttle.birth_date_right(&account.identifier).await
            {
                tracing::error!(account = %account.id, error = %e, "birth date count not cleared after a reset");
            }
            if action == Action::Reset {
                Done::Reset
            } else {
                Done::Closed
            }
        }
        Action::CorrectEmail(email) => {
            anyhow::ensure!(
                account.kind == AccountKind::Guardian,
                "only a parent's address is corrected here"
            );
            let mails = matches!(
                account.state,
                AccountState::PendingEmail | AccountState::Active
            );
            if mails
                && let super::throttle::Gate::Closed { retry_after } = app
                    .throttle
                    .enter_confirmation_mail(&account.id, email.as_str(), app.now_ms())
                    .await?
            {
                return Ok(Err(Refused::TooManyMails { retry_after }));
            }
            // The mails go out in the parent's language, not the staff member's.
            let locale = super::store::locale_of(&app.db, &account.id)
                .await?
                .unwrap_or_default();
            // The scope is asked again inside each change's transaction (see
            // `Readdressed::BeyondScope`): the check above may predate a grouping.
            use super::activation::{MailSent, Readdressed, correct_address, propose_address};
            let within = Some(&actor_scope);
            let mailed = |readdressed| match readdressed {
                Readdressed::BeyondScope => None,
                Readdressed::Written(MailSent(true)) => Some(Done::EmailSent),
                Readdressed::Written(MailSent(false)) => Some(Done::EmailNotSent),
            };
            let done = match account.state {
                AccountState::PendingEmail => mailed(
                    locale
                        .scope(correct_address(app, account, email, None, within))
                        .await?,
                ),
                AccountState::Active => mailed(
                    locale
                        .scope(propose_address(app, account, email, within))
                        .await?,
                ),
                // Not activated yet: the first connection will ask for it
                // (one made meanwhile chose its own address: left alone).
                _ => {
                    let mut tx = app.db.begin().await?;
                    let corrected = sqlx::query(
                        "UPDATE accounts SET email = $1, updated_at = $2 \
                         WHERE id = $3 AND state = 'provisional'",
                    )
                    .bind(email.as_str())
                    .bind(now)
                    .bind(&account.id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    anyhow::ensure!(corrected == 1, "the account was activated meanwhile");
                    if beyond_scope(&mut *tx, &actor_scope, &account.id).await? {
                        None
                    } else {
                        tx.commit().await?;
                        Some(Done::EmailForActivation)
                    }
                }
            };
            match done {
                Some(done) => done,
                None => return Ok(Err(Refused::SharedParent)),
            }
        }
        Action::Detach { student_id } => {
            // On the trails as a detachment by this staff member (one entry each).
            let by = crate::audit::ActedBy {
                actor_id: &actor.id,
                address,
                user_agent,
            };
            let detached = super::grouping::detach(app, &account.id, student_id, Some(&by)).await?;
            Done::Detached {
                new_identifier: detached.guardian.identifier,
            }
        }
    };
    if !matches!(done, Done::Reset | Done::Closed | Done::Detached { .. }) {
        record(app, actor, account, &action, address, user_agent, now).await;
    }
    Ok(Ok(done))
}

/// The staff action on the account's trail, with who did it.
async fn record(
    app: &crate::app::Clef,
    actor: &Account,
    account: &Account,
    action: &Action,
    address: std::net::IpAddr,
    user_agent: &str,
    now: i64,
) {
    // A corrected address names the new one: a staff member who set an
    // address of theirs could take the account by a reset mail.
    let detail = match action {
        Action::CorrectEmail(email) => format!("{}: {}", action.name(), email.as_str()),
        _ => action.name().to_owned(),
    };
    let entry =
        crate::audit::Entry::new(crate::audit::Event::StaffAction, crate::audit::Outcome::Ok)
            .account(&account.id)
            .actor(&actor.id)
            .from(address, user_agent)
            .detail(&detail);
    crate::audit::record(&app.db, entry, now).await;
    tracing::info!(account = %account.id, actor = %actor.id, action = action.name(), "staff action");
}
