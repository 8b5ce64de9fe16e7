//! « Mon compte » (SPEC §3.6): identifier, address and its validation, resend
//! validation, change password, change address, last login; the open sessions
//! with « Se déconnecter partout »; the services holding consent, with revoke;
//! and for a guardian, « Enfants » with « Regrouper des comptes ».

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum_extra::extract::CookieJar;

use super::error::WebError;
use super::extract::{CheckedForm, ClientAddress, Device, SignedIn, device_label};
use super::login::{too_many_attempts, too_many_mails};
use super::{AppState, cookies, pages};
use crate::accounts::activation::{self, MailRequest, ProfileError};
use crate::accounts::{Account, AccountKind, Child, store};
use crate::app::Clef;
use crate::audit::{self, Entry, Event, Outcome};
use crate::domain::BirthDate;
use crate::oidc::{clients, consent, logout, session};
use crate::provisioning::csv_file::Phone;

/// A moment as the pages show it, in the académie's time zone (`time_zone`).
pub(super) fn datetime(app: &Clef, unix: i64) -> String {
    shown_at(app.config.zone(), unix)
}

fn shown_at(zone: jiff::tz::TimeZone, unix: i64) -> String {
    match jiff::Timestamp::from_second(unix) {
        Ok(t) => {
            let t = t.to_zoned(zone);
            format!(
                "{:02}/{:02}/{} à {:02}:{:02}",
                t.day(),
                t.month(),
                t.year(),
                t.hour(),
                t.minute()
            )
        }
        Err(_) => String::new(),
    }
}

/// The open sessions (this one first) and the services holding consent, as
/// the page shows them.
struct Lists {
    sessions: Vec<minijinja::Value>,
    applications: Vec<minijinja::Value>,
    /// A guardian's children (« Enfants »); `None` for students and staff.
    children: Option<Vec<minijinja::Value>>,
}

/// A child as « Enfants » shows it.
pub(super) fn child_view(child: &Child) -> minijinja::Value {
    minijinja::context! {
        name => format!("{} {}", child.given_name, child.family_name),
        establishment => child.establishment.as_ref().map(|e| format!("{} ({})", e.name, e.uai)),
        class => &child.class_name,
        rank => child.rank,
        portal => child.establishment.as_ref().and_then(|e| e.portal_url.as_deref()),
    }
}

async fn lists(app: &Clef, account: &Account, current_sid: &str) -> Result<Lists, WebError> {
    let account_id = account.id.as_str();
    // A parent also sees the services each minor child allowed, and may
    // withdraw them; an adult pupil's are their own.
    let children = match account.kind {
        AccountKind::Guardian => {
            let mut children = Vec::new();
            for child in store::children(&app.db, account_id).await? {
                let born = birth_date(&child);
                let applications = if is_minor(app, born.as_ref()) {
                    applications(app, &child.id, None).await?
                } else {
                    Vec::new()
                };
                children.push(minijinja::context! {
                    id => &child.id, applications,
                    birthdate => born.map(|d| d.french()),
                    ..child_view(&child)
                });
            }
            Some(children)
        }
        AccountKind::Student | AccountKind::Staff => None,
    };
    let mut open = session::open_sessions(&app.db, account_id, app.now()).await?;
    open.sort_by_key(|s| s.sid != current_sid);
    let sessions = open
        .iter()
        .map(|s| {
            minijinja::context! {
                device => device_label(&s.device),
                opened => datetime(app, s.created_at),
                last_seen => datetime(app, s.last_seen_at),
                current => s.sid == current_sid,
            }
        })
        .collect();
    let applications = applications(app, account_id, Some(account.kind)).await?;
    Ok(Lists {
        sessions,
        applications,
        children,
    })
}

/// The third-party services `account_id` allowed, as the page lists them:
/// to the account's owner, of `kind`, or (`None`) to a pupil's parent.
async fn applications(
    app: &Clef,
    account_id: &str,
    kind: Option<AccountKind>,
) -> Result<Vec<minijinja::Value>, WebError> {
    Ok(consent::authorizations(&app.db, account_id)
        .await?
        .iter()
        .map(|a| {
            let items: Vec<minijinja::Value> = a
                .scopes
                .iter()
                .filter_map(|scope| {
                    let text = match kind {
                        Some(kind) => consent::described(scope, kind),
                        None => consent::described_of_child(scope),
                    }?;
                    let names = match scope {
                        "children" => a.children.clone(),
                        _ => Vec::new(),
                    };
                    Some(minijinja::context! { text, names })
                })
                .collect();
            minijinja::context! {
                client_id => &a.client_id,
                name => &a.client_name,
                since => datetime(app, a.granted_at),
                items,
            }
        })
        .collect())
}

/// Where on the page an outcome is told: beside the form that was sent, so
/// that it is found at once (at 320 px the forms are screens apart) and says
/// which form it answers; the addresses typed come back (never a password).
enum Section<'a> {
    Top,
    Password,
    Email {
        email: &'a str,
        confirmation: &'a str,
    },
}

fn render(
    app: &Clef,
    jar: CookieJar,
    account: &Account,
    lists: Lists,
    (section, notice, refused): (Section<'_>, Option<&str>, Option<&Refusal>),
    status: StatusCode,
) -> Response {
    let (section, entered_email, entered_confirmation) = match section {
        Section::Top => ("top", "", ""),
        Section::Password => ("password", "", ""),
        Section::Email {
            email,
            confirmation,
        } => ("email", email, confirmation),
    };
    // A refusal about fields is told at each (by its id on this page, where
    // both forms ask for the current password); any other above its form.
    let (error, errors) = match refused {
        Some(refused) if refused.fields.is_empty() => (Some(refused.message.as_str()), Vec::new()),
        Some(refused) => (
            None,
            pages::field_errors(refused.fields.iter().map(|(field, message)| {
                let id = match (section, *field) {
                    ("email", "current_password") => "email_password",
                    ("email", "email") => "new_email",
                    ("email", "email_confirmation") => "new_email_confirmation",
                    (_, field) => field,
                };
                (id, message.as_str())
            })),
        ),
        None => (None, Vec::new()),
    };
    let can_resend = account.pending_email.is_some()
        || (account.email.is_some() && account.email_verified_at.is_none());
    pages::form(app, jar, status, "pages/account.html", |csrf| {
        minijinja::context! {
            identifier => &account.identifier,
            name => format!("{} {}", account.given_name, account.family_name),
            email => &account.email,
            email_verified => account.email_verified_at.is_some(),
            pending_email => &account.pending_email,
            phone => account.phone.as_deref().map(phone_shown),
            phone_sms => account.phone.as_deref().is_some_and(Phone::takes_sms),
            last_login => account.previous_login_at.map(|at| datetime(app, at)),
            rule => activation::password_rule(app).describe(),
            sessions => lists.sessions,
            applications => lists.applications,
            children => lists.children,
            staff => account.kind == AccountKind::Staff,
            can_resend, csrf, notice, error, errors, section, entered_email, entered_confirmation,
        }
    })
}

/// A child's birth date as kept (ISO), read.
fn birth_date(child: &Child) -> Option<BirthDate> {
    child
        .birthdate
        .as_deref()
        .and_then(|iso| BirthDate::parse(iso).ok())
}

/// Whether a child born `born` is under 18 today (a child whose birth date
/// Clef does not hold counts as one).
fn is_minor(app: &Clef, born: Option<&BirthDate>) -> bool {
    !born.is_some_and(|born| born.is_adult_on(app.now()))
}

/// A phone as kept, the way French people write and read it: `+33612345678`
/// → `06 12 34 56 78`, an overseas department's `+262692123456` →
/// `0692 12 34 56`; another country's as kept, in E.164.
pub(super) fn phone_shown(stored: &str) -> String {
    let e164 = Phone::as_stored(stored);
    let nine = |national: &str| national.len() == 9 && national.bytes().all(|b| b.is_ascii_digit());
    for (code, head) in [
        ("+33", 2),
        ("+262", 4),
        ("+590", 4),
        ("+594", 4),
        ("+596", 4),
    ] {
        if let Some(national) = e164.strip_prefix(code).filter(|n| nine(n)) {
            let national = format!("0{national}");
            let (first, rest) = national.split_at(head);
            let pairs: Vec<&str> = rest
                .as_bytes()
                .chunks(2)
                .map(|p| std::str::from_utf8(p).unwrap_or(""))
                .collect();
            return format!("{first} {}", pairs.join(" "));
        }
    }
    e164
}

/// `GET /compte`. A guardian's children are listed each with their
/// establishment's services (its portal), where the seeds' services screen
/// had a drop-down to pick one child.
pub async fn page(
    State(app): AppState,
    SignedIn {
        account, session, ..
    }: SignedIn,
    jar: CookieJar,
) -> Result<Response, WebError> {
    // A change just made is told once (see `Done`).
    let (jar, told) = cookies::told(&app, jar);
    let (section, notice) = match told.as_deref().and_then(Done::parse) {
        Some(done) => done.told(&app, &account).await?,
        None => (Section::Top, None),
    };
    let lists = lists(&app, &account, &session.sid).await?;
    Ok(render(
        &app,
        jar,
        &account,
        lists,
        (section, notice.as_deref(), None),
        StatusCode::OK,
    ))
}

/// What a change made on « Mon compte » did. Done, its answer is a redirect
/// to `GET /compte`, which tells it once (`cookies::tell`): reloading the
/// page, or coming back to it, does not make the change again (a second
/// mail, « mot de passe actuel incorrect »).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Done {
    Resent,
    PasswordChanged { address_change_cancelled: bool },
    EmailChangeRequested,
    OthersSignedOut,
    Withdrawn { client_id: String },
    ChildWithdrawn { child_id: String, client_id: String },
}

impl Done {
    fn value(&self) -> String {
        let encoded =
            |id: &str| url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>();
        match self {
            Self::Resent => "renvoye".into(),
            Self::PasswordChanged {
                address_change_cancelled: false,
            } => "mot-de-passe".into(),
            Self::PasswordChanged {
                address_change_cancelled: true,
            } => "mot-de-passe-adresse".into(),
            Self::EmailChangeRequested => "adresse".into(),
            Self::OthersSignedOut => "sessions".into(),
            Self::Withdrawn { client_id } => format!("autorisation:{}", encoded(client_id)),
            Self::ChildWithdrawn {
                child_id,
                client_id,
            } => format!(
                "autorisation-enfant:{}:{}",
                encoded(child_id),
                encoded(client_id)
            ),
        }
    }

    fn parse(value: &str) -> Option<Self> {
        let decoded = |id: &str| -> Option<String> {
            let id = percent_encoding::percent_decode_str(id)
                .decode_utf8()
                .ok()?;
            (!id.is_empty()).then(|| id.into_owned())
        };
        let mut parts = value.split(':');
        let done = match parts.next()? {
            "renvoye" => Self::Resent,
            "mot-de-passe" => Self::PasswordChanged {
                address_change_cancelled: false,
            },
            "mot-de-passe-adresse" => Self::PasswordChanged {
                address_change_cancelled: true,
            },
            "adresse" => Self::EmailChangeRequested,
            "sessions" => Self::OthersSignedOut,
            "autorisation" => Self::Withdrawn {
                client_id: decoded(parts.next()?)?,
            },
            "autorisation-enfant" => Self::ChildWithdrawn {
                child_id: decoded(parts.next()?)?,
                client_id: decoded(parts.next()?)?,
            },
            _ => return None,
        };
        parts.next().is_none().then_some(done)
    }

    /// Where the page tells it, and what (`None`: nothing left to tell, a
    /// service deleted since).
    async fn told(
        &self,
        app: &Clef,
        account: &Account,
    ) -> Result<(Section<'static>, Option<String>), WebError> {
        let service = async |client_id: &str| -> Result<Option<String>, WebError> {
            Ok(clients::find(&app.db, client_id).await?.map(|c| c.name))
        };
        Ok(match self {
            Self::Resent => (
                Section::Top,
                Some("Un email de validation vient d'être envoyé. Seul le lien de ce dernier mail fonctionne.".into()),
            ),
            Self::PasswordChanged {
                address_change_cancelled,
            } => (
                Section::Password,
                Some(match address_change_cancelled {
                    // Dropped with the old password (whoever asked may have held it).
                    true => "Votre mot de passe a été modifié. Le changement d'adresse mail en attente est annulé : si c'est vous qui l'aviez demandé, demandez-le de nouveau.",
                    false => "Votre mot de passe a été modifié.",
                }
                .into()),
            ),
            Self::EmailChangeRequested => (
                Section::Email {
                    email: "",
                    confirmation: "",
                },
                Some("Un courriel vient de vous être envoyé à votre nouvelle adresse afin de confirmer cette mise à jour. Elle remplacera l'actuelle dès que vous aurez cliqué sur son lien.".into()),
            ),
            Self::OthersSignedOut => (
                Section::Top,
                Some("Vos autres sessions sont fermées : seule celle-ci reste ouverte.".into()),
            ),
            Self::Withdrawn { client_id } => (
                Section::Top,
                service(client_id).await?.map(|name| {
                    format!(
                        "L'autorisation de « {name} » est retirée : ce service vous la redemandera s'il en a besoin."
                    )
                }),
            ),
            Self::ChildWithdrawn {
                child_id,
                client_id,
            } => {
                let child = store::children(&app.db, &account.id)
                    .await?
                    .into_iter()
                    .find(|child| child.id == *child_id);
                let name = service(client_id).await?;
                (
                    Section::Top,
                    child.zip(name).map(|(child, name)| {
                        format!(
                            "L'autorisation donnée par {} {} à « {name} » est retirée : ce service la redemandera s'il en a besoin.",
                            child.given_name, child.family_name
                        )
                    }),
                )
            }
        })
    }
}

async fn outcome(
    app: &Clef,
    jar: CookieJar,
    account: &Account,
    current_sid: &str,
    section: Section<'_>,
    result: Result<Done, ProfileError>,
) -> Result<Response, WebError> {
    let refused = match result {
        Ok(done) => return Ok(cookies::tell(app, jar, done.value(), "/compte")),
        Err(e) => Refusal::of(e)?,
    };
    let account = store::account_by_id(&app.db, &account.id)
        .await?
        .unwrap_or_else(|| account.clone());
    let lists = lists(app, &account, current_sid).await?;
    let page = render(
        app,
        jar,
        &account,
        lists,
        (section, None, Some(&refused)),
        refused.status,
    );
    Ok(refused.answer(page))
}

/// A profile change refused, as a page tells it: the message, 400 or (for
/// a limit) 429, and when to try again.
pub(super) struct Refusal {
    /// What the page tells, all its fields' messages for a form's fields.
    pub message: String,
    /// The fields to correct (form names) and their messages, when the
    /// refusal is about them.
    pub fields: Vec<(&'static str, String)>,
    pub status: StatusCode,
    retry_after: Option<u64>,
}

impl Refusal {
    /// What is not the person's doing stays an error.
    pub fn of(error: ProfileError) -> Result<Self, WebError> {
        let limit = |message, retry_after| Self {
            message,
            fields: Vec::new(),
            status: StatusCode::TOO_MANY_REQUESTS,
            retry_after: Some(retry_after),
        };
        Ok(match error {
            ProfileError::Invalid(message) => Self {
                message,
                fields: Vec::new(),
                status: StatusCode::BAD_REQUEST,
                retry_after: None,
            },
            ProfileError::Fields(fields) => Self {
                message: (fields.iter().map(|(_, message)| message.as_str()))
                    .collect::<Vec<_>>()
                    .join(" "),
                fields,
                status: StatusCode::BAD_REQUEST,
                retry_after: None,
            },
            ProfileError::TooManyAttempts { retry_after } => {
                limit(too_many_attempts(retry_after), retry_after)
            }
            ProfileError::TooManyMails { retry_after } => {
                limit(too_many_mails(retry_after), retry_after)
            }
            ProfileError::MailNotSent => Self {
                message: activation::MAIL_NOT_SENT.into(),
                fields: Vec::new(),
                status: StatusCode::SERVICE_UNAVAILABLE,
                retry_after: Some(60),
            },
            ProfileError::Password(e) => return Err(e.into()),
            ProfileError::Internal(e) => return Err(e.into()),
        })
    }

    /// `page`, which tells the refusal, with `Retry-After` for a limit.
    pub fn answer(&self, page: Response) -> Response {
        match self.retry_after {
            Some(seconds) => pages::retry_after(page, seconds),
            None => page,
        }
    }
}

/// `POST /compte/renvoyer`.
pub async fn resend(
    State(app): AppState,
    SignedIn {
        account, session, ..
    }: SignedIn,
    jar: CookieJar,
    CheckedForm(_): CheckedForm,
) -> Result<Response, WebError> {
    let result = match activation::resend_confirmation(&app, &account, None).await? {
        MailRequest::Sent => Ok(Done::Resent),
        MailRequest::NotSent => Err(ProfileError::MailNotSent),
        MailRequest::AlreadyConfirmed => Err(ProfileError::Invalid(
            "Votre adresse mail est déjà validée.".into(),
        )),
        MailRequest::TooMany { retry_after } => Err(ProfileError::TooManyMails { retry_after }),
    };
    let section = Section::Top;
    outcome(&app, jar, &account, &session.sid, section, result).await
}

/// `POST /compte/mot-de-passe`.
pub async fn change_password(
    State(app): AppState,
    SignedIn {
        account,
        session_token,
        session,
    }: SignedIn,
    ClientAddress(address): ClientAddress,
    Device(device): Device,
    jar: CookieJar,
    CheckedForm(params): CheckedForm,
) -> Result<Response, WebError> {
    let origin = cookies::origin(&app, &jar, address, Some(&account));
    let result = activation::change_password(
        &app,
        &account,
        &params.secret("current_password"),
        &params.secret("new_password"),
        &params.secret("new_password_confirmation"),
        &origin,
        &session_token,
    )
    .await
    .map(|()| Done::PasswordChanged {
        address_change_cancelled: account.pending_email.is_some(),
    });
    let done = if result.is_ok() {
        Outcome::Ok
    } else {
        Outcome::Failed
    };
    let entry = Entry::new(Event::PasswordChanged, done)
        .account(&account.id)
        .from(address, &device);
    audit::record(&app.db, entry, app.now()).await;
    // The browser's proof held for the old password: one for the new.
    let changed = match result {
        Ok(_) => store::account_by_id(&app.db, &account.id).await?,
        Err(_) => None,
    };
    let jar = match &changed {
        Some(changed) => cookies::remember_device_anew(&app, jar, changed, &account),
        None => jar,
    };
    let section = Section::Password;
    outcome(&app, jar, &account, &session.sid, section, result).await
}

/// `POST /compte/adresse`.
pub async fn change_email(
    State(app): AppState,
    SignedIn {
        account, session, ..
    }: SignedIn,
    ClientAddress(address): ClientAddress,
    Device(device): Device,
    jar: CookieJar,
    CheckedForm(params): CheckedForm,
) -> Result<Response, WebError> {
    let origin = cookies::origin(&app, &jar, address, Some(&account));
    let result = activation::change_email(
        &app,
        &account,
        &params.secret("current_password"),
        params.get("email").unwrap_or(""),
        params.get("email_confirmation").unwrap_or(""),
        &origin,
    )
    .await
    .map(|_| Done::EmailChangeRequested);
    // On the account's trail, as its confirmation will be (not the address).
    if result.is_ok() {
        let entry = Entry::new(Event::EmailChangeRequested, Outcome::Ok)
            .account(&account.id)
            .from(address, &device);
        audit::record(&app.db, entry, app.now()).await;
    }
    let section = Section::Email {
        email: params.get("email").unwrap_or(""),
        confirmation: params.get("email_confirmation").unwrap_or(""),
    };
    outcome(&app, jar, &account, &session.sid, section, result).await
}

/// `POST /compte/deconnexion-partout`: every other session of the account
/// ends (their cookies at once, their clients told); this one goes on.
pub async fn sign_out_everywhere_else(
    State(app): AppState,
    SignedIn {
        account,
        session_token,
        session,
    }: SignedIn,
    jar: CookieJar,
    CheckedForm(_): CheckedForm,
) -> Result<Response, WebError> {
    logout::sign_out_everywhere_else(&app, &account.id, &session_token).await?;
    let result = Ok(Done::OthersSignedOut);
    let section = Section::Top;
    outcome(&app, jar, &account, &session.sid, section, result).await
}

/// Withdraws `account_id`'s consent to `client_id` at the request of `by`
/// (the account itself, or a parent of it), on the account's trail: whether
/// it held one.
async fn withdrawn(
    app: &Clef,
    account_id: &str,
    by: &str,
    client_id: &str,
) -> Result<bool, WebError> {
    if clients::find(&app.db, client_id).await?.is_none() {
        return Ok(false);
    }
    if !consent::withdraw(app, account_id, client_id).await? {
        return Ok(false);
    }
    tracing::info!(account = %account_id, by = %by, client = %client_id, "consent withdrawn");
    let mut entry = Entry::new(Event::ConsentWithdrawn, Outcome::Ok)
        .account(account_id)
        .client(client_id);
    if by != account_id {
        entry = entry.actor(by);
    }
    audit::record(&app.db, entry, app.now()).await;
    Ok(true)
}

/// `POST /compte/applications/retirer`: withdraws the consent given to the
/// service `client_id` and ends the refresh tokens it holds for this account.
pub async fn withdraw_consent(
    State(app): AppState,
    SignedIn {
        account, session, ..
    }: SignedIn,
    jar: CookieJar,
    CheckedForm(params): CheckedForm,
) -> Result<Response, WebError> {
    let client_id = params.get("client_id").unwrap_or("");
    let done = withdrawn(&app, &account.id, &account.id, client_id)
        .await?
        .then(|| Done::Withdrawn {
            client_id: client_id.to_owned(),
        });
    let result = done.ok_or_else(|| {
        ProfileError::Invalid("Ce service n'a pas ou plus votre autorisation.".into())
    });
    let section = Section::Top;
    outcome(&app, jar, &account, &session.sid, section, result).await
}

/// `POST /compte/enfants/applications/retirer`: a parent withdraws the
/// consent one of their children gave to the service `client_id` (a pupil
/// may allow a service alone; their parent sees it and may end it).
pub async fn withdraw_child_consent(
    State(app): AppState,
    SignedIn {
        account, session, ..
    }: SignedIn,
    jar: CookieJar,
    CheckedForm(params): CheckedForm,
) -> Result<Response, WebError> {
    let (child_id, client_id) = (
        params.get("child_id").unwrap_or(""),
        params.get("client_id").unwrap_or(""),
    );
    // Only a minor child attached to this account, and still open.
    let child = match account.kind {
        AccountKind::Guardian => store::children(&app.db, &account.id)
            .await?
            .into_iter()
            .find(|child| child.id == child_id && is_minor(&app, birth_date(child).as_ref())),
        AccountKind::Student | AccountKind::Staff => None,
    };
    let done = match child {
        Some(child) => withdrawn(&app, &child.id, &account.id, client_id)
            .await?
            .then(|| Done::ChildWithdrawn {
                child_id: child.id,
                client_id: client_id.to_owned(),
            }),
        None => None,
    };
    let result = done.ok_or_else(|| {
        ProfileError::Invalid("Ce service n'a pas ou plus cette autorisation.".into())
    });
    outcome(&app, jar, &account, &session.sid, Section::Top, result).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phone_is_shown_as_french_people_write_it() {
        assert_eq!(phone_shown("+33612345678"), "06 12 34 56 78");
        assert_eq!(
            phone_shown("0612345678"),
            "06 12 34 56 78",
            "kept before E.164"
        );
        assert_eq!(phone_shown("+262692123456"), "0692 12 34 56");
        assert_eq!(phone_shown("+441234567890"), "+441234567890");
    }

    #[test]
    fn dates_are_shown_in_the_academie_s_time_zone() {
        let zone = |name| jiff::tz::TimeZone::get(name).unwrap();
        // 2026-07-01 12:00 UTC: summer time in Paris; 2026-01-15 12:00 UTC: winter.
        assert_eq!(
            shown_at(zone("Europe/Paris"), 1_782_907_200),
            "01/07/2026 à 14:00"
        );
        assert_eq!(
            shown_at(zone("Europe/Paris"), 1_768_478_400),
            "15/01/2026 à 13:00"
        );
        assert_eq!(
            shown_at(zone("Indian/Reunion"), 1_782_907_200),
            "01/07/2026 à 16:00"
        );
    }
}
