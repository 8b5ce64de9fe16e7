//! First connection (§3.2), the unconfirmed account (§3.3) and the email
//! confirmation link.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;

use super::account::Refusal;
use super::error::WebError;
use super::extract::{CheckedForm, ClientAddress, Device, Query, current_session};
use super::interaction::{self, Interaction, Purpose};
use super::login::{open_session, sign_in, step_expired};
use super::{AppState, cookies, pages};
use crate::accounts::activation::{
    self, ActivationError, FirstConnection, MailRequest, MailSent, ProfileError,
};
use crate::accounts::throttle::french_wait;
use crate::accounts::tokens::{self, TokenProblem};
use crate::accounts::{Account, AccountKind, AccountState, store};
use crate::app::Clef;
use crate::audit::{self, Entry, Event, Outcome};
use crate::domain::{EmailAddress, Locale};
use crate::oidc::authorize;

async fn interaction_account(
    app: &Clef,
    jar: &CookieJar,
    purpose: Purpose,
) -> Result<(Interaction, Account), WebError> {
    step_account(app, jar, purpose)
        .await?
        .ok_or_else(step_expired)
}

/// The browser's step of this purpose and its account, while the step can
/// still be taken.
async fn step_account(
    app: &Clef,
    jar: &CookieJar,
    purpose: Purpose,
) -> Result<Option<(Interaction, Account)>, WebError> {
    let Some(interaction) = interaction::current(app, jar, purpose).await? else {
        return Ok(None);
    };
    // The screen is for an account still in the state that led there, by
    // the same letter: once activated or confirmed (elsewhere, perhaps), or
    // given a new letter by the school, the ticket is spent.
    let expected = match purpose {
        Purpose::FirstConnection => AccountState::Provisional,
        Purpose::Unconfirmed => AccountState::PendingEmail,
    };
    let account = store::account_by_id(&app.db, &interaction.account_id)
        .await?
        .filter(|account| account.state == expected)
        .filter(|account| {
            purpose != Purpose::FirstConnection || account.letter_date == interaction.letter_date
        });
    Ok(account.map(|account| (interaction, account)))
}

/// A step's page asked for once the step is over (Back after a first
/// connection, say): where the browser now stands rather than « Session
/// expirée » — its account's page when signed in, the unconfirmed account's
/// screen when that is the step it came to.
async fn step_over(app: &Clef, jar: &CookieJar) -> Result<Response, WebError> {
    if current_session(app, jar).await?.is_some() {
        return Ok(Redirect::to("/compte").into_response());
    }
    if step_account(app, jar, Purpose::Unconfirmed)
        .await?
        .is_some()
    {
        return Ok(Redirect::to("/compte-non-confirme").into_response());
    }
    Err(step_expired())
}

#[derive(Default)]
struct Entered<'a> {
    birthdate: &'a str,
    email: &'a str,
    email_confirmation: &'a str,
}

async fn first_connection_page(
    app: &Clef,
    (jar, pending_id): (CookieJar, Option<&str>),
    account: &Account,
    entered: Entered<'_>,
    // The fields in error (form names) and their French messages, in the form's order.
    errors: &[(&str, &str)],
    status: StatusCode,
) -> Result<Response, WebError> {
    let errors = pages::field_errors(errors.iter().copied());
    let child = match account.kind {
        AccountKind::Guardian => store::children(&app.db, &account.id)
            .await?
            .into_iter()
            .next()
            .map(|c| c.given_name),
        _ => None,
    };
    let rule = activation::password_rule(app);
    // Done, the form leads on to the service whose sign-in it is part of.
    let parked = match pending_id {
        Some(id) => authorize::parked(app, id).await?,
        None => None,
    };
    let page = pages::form(app, jar, status, "pages/first_connection.html", |csrf| {
        minijinja::context! {
            identifier => &account.identifier,
            guardian => account.kind == AccountKind::Guardian,
            email_required => account.kind == AccountKind::Guardian,
            child, rule => rule.describe(), csrf, errors,
            birthdate => entered.birthdate, email => entered.email, email_confirmation => entered.email_confirmation,
        }
    });
    let leads_to = parked.as_ref().map(|p| p.request.redirect_uri.as_str());
    Ok(pages::leading_to(page, leads_to))
}

/// `GET /premiere-connexion`.
pub async fn first_connection_form(
    State(app): AppState,
    jar: CookieJar,
) -> Result<Response, WebError> {
    match step_account(&app, &jar, Purpose::FirstConnection).await? {
        Some((interaction, account)) => {
            let pending = interaction.pending_id.as_deref();
            let entered = Entered::default();
            first_connection_page(&app, (jar, pending), &account, entered, &[], StatusCode::OK)
                .await
        }
        None => step_over(&app, &jar).await,
    }
}

/// The authorization request under way, as a URL to start it again later.
async fn return_to(app: &Clef, pending_id: Option<&str>) -> anyhow::Result<Option<String>> {
    Ok(match pending_id {
        Some(id) => authorize::parked(app, id)
            .await?
            .map(|parked| parked.request.authorize_url(app.config.issuer_str())),
        None => None,
    })
}

/// `POST /premiere-connexion`.
pub async fn first_connection(
    State(app): AppState,
    ClientAddress(address): ClientAddress,
    Device(device): Device,
    jar: CookieJar,
    CheckedForm(params): CheckedForm,
) -> Result<Response, WebError> {
    if params.get("cancel").is_some() {
        return cancel_first_connection(&app, jar).await;
    }
    let (interaction, account) = interaction_account(&app, &jar, Purpose::FirstConnection).await?;
    let entered = Entered {
        birthdate: params.get("birthdate").unwrap_or(""),
        email: params.get("email").unwrap_or(""),
        email_confirmation: params.get("email_confirmation").unwrap_or(""),
    };
    // The language link of this page is a button of its form: the page
    // again in the other language, with what was typed (the passwords
    // aside, never written back into a page), nothing checked.
    if let Some(locale) = params.get("langue").and_then(Locale::from_tag) {
        let jar = super::locale::chose(&app, jar, locale);
        let to = (jar, interaction.pending_id.as_deref());
        let page = first_connection_page(&app, to, &account, entered, &[], StatusCode::OK);
        return locale.scope(page).await;
    }
    let form = FirstConnection {
        birthdate: entered.birthdate.to_owned(),
        password: params.secret("password"),
        password_confirmation: params.secret("password_confirmation"),
        email: entered.email.to_owned(),
        email_confirmation: entered.email_confirmation.to_owned(),
    };
    let return_to = return_to(&app, interaction.pending_id.as_deref()).await?;
    let origin = cookies::origin(&app, &jar, address, Some(&account));
    let (activated, mail_sent) = match activation::first_connection(
        &app,
        &account.id,
        form,
        return_to,
        &origin,
    )
    .await
    {
        Ok((activated, mail_sent)) => {
            let entry = Entry::new(Event::Activation, Outcome::Ok)
                .account(&activated.id)
                .from(address, &device);
            audit::record(&app.db, entry, app.now()).await;
            (activated, mail_sent)
        }
        Err(ActivationError::Invalid(problems)) => {
            let problems: Vec<(&str, &str)> = problems
                .iter()
                .map(|(field, message)| (*field, message.as_str()))
                .collect();
            return first_connection_page(
                &app,
                (jar, interaction.pending_id.as_deref()),
                &account,
                entered,
                &problems,
                StatusCode::BAD_REQUEST,
            )
            .await;
        }
        Err(ActivationError::WrongBirthdate) => {
            let entry = Entry::new(Event::Activation, Outcome::Failed)
                .account(&account.id)
                .from(address, &device)
                .detail("wrong birth date");
            audit::record(&app.db, entry, app.now()).await;
            let message =
                "La date de naissance ne correspond pas à celle connue de l'établissement.";
            return first_connection_page(
                &app,
                (jar, interaction.pending_id.as_deref()),
                &account,
                entered,
                &[("birthdate", message)],
                StatusCode::BAD_REQUEST,
            )
            .await;
        }
        Err(ActivationError::TooManyAttempts { retry_after }) => {
            // Not « mot de passe oublié » : a letter's account has no password
            // of its own yet, and the wait may last a day.
            let message = format!(
                "Trop de dates de naissance erronées pour ce compte. Patientez {} avant de réessayer, ou demandez de l'aide à l'établissement.",
                french_wait(retry_after)
            );
            let page = first_connection_page(
                &app,
                (jar, interaction.pending_id.as_deref()),
                &account,
                entered,
                &[("birthdate", &message)],
                StatusCode::TOO_MANY_REQUESTS,
            )
            .await?;
            return Ok(pages::retry_after(page, retry_after));
        }
        Err(ActivationError::Expired) => {
            return Err(WebError::Page {
                status: StatusCode::FORBIDDEN,
                title: "Courrier expiré",
                message: "Ce courrier de notification a dépassé son délai d'activation : demandez-en un nouveau à l'établissement.".into(),
            })
        }
        Err(ActivationError::NotProvisional) => return Err(step_expired()),
        Err(ActivationError::Password(e)) => return Err(e.into()),
        Err(ActivationError::Internal(e)) => return Err(e.into()),
    };
    let jar = interaction::end(&app, jar).await?;
    // The letter's proof of this browser ended with the letter: one for the
    // password just chosen.
    let jar = cookies::remember_device_anew(&app, jar, &activated, &account);
    match (activated.state, activated.kind) {
        // A student without email is active at once; a student with one may
        // use applications while the address awaits confirmation (§3.3).
        // Without an application waiting, told so, as a parent is once their
        // address is confirmed.
        (AccountState::Active, _) if interaction.pending_id.is_none() => {
            let (jar, _) = open_session(&app, jar, &activated, &device).await?;
            Ok((jar, created(("/compte", "Gérer mon compte"))).into_response())
        }
        (AccountState::Active, _) => {
            sign_in(
                &app,
                jar,
                &activated,
                &device,
                interaction.pending_id.as_deref(),
            )
            .await
        }
        (AccountState::PendingEmail, AccountKind::Student) => {
            let continue_url = interaction
                .pending_id
                .as_deref()
                .map(|id| format!("/continuer?request={id}"));
            let (jar, _) = open_session(&app, jar, &activated, &device).await?;
            let page = pending_page(
                activated.email.as_deref(),
                mail_sent,
                continue_url.as_deref(),
                "/compte",
            );
            Ok((jar, page).into_response())
        }
        // The account waits for its address: the step a sign-in would find it
        // at, where the language link leads (the letter's step is over).
        _ => {
            let unconfirmed = Interaction {
                purpose: Purpose::Unconfirmed,
                account_id: activated.id.clone(),
                pending_id: interaction.pending_id.clone(),
                letter_date: None,
            };
            let jar = interaction::start(&app, jar, &unconfirmed).await?;
            let page = pending_page(
                activated.email.as_deref(),
                mail_sent,
                None,
                "/compte-non-confirme",
            );
            Ok((jar, page).into_response())
        }
    }
}

/// « Annuler » on the first connection: the letter's step ends here (on a
/// shared computer, no one after goes on with it), back to the login form,
/// the service's if a request is still under way. Nothing is written.
async fn cancel_first_connection(app: &Clef, jar: CookieJar) -> Result<Response, WebError> {
    let pending_id = interaction::current(app, &jar, Purpose::FirstConnection)
        .await?
        .and_then(|interaction| interaction.pending_id);
    let jar = interaction::end(app, jar).await?;
    let login = match pending_id {
        Some(id) if authorize::parked(app, &id).await?.is_some() => {
            format!("/login?request={id}")
        }
        _ => "/login".to_owned(),
    };
    Ok((jar, Redirect::to(&login)).into_response())
}

/// `lang_back`: a page a plain GET shows this step on, for the language link.
fn pending_page(
    email: Option<&str>,
    MailSent(sent): MailSent,
    continue_url: Option<&str>,
    lang_back: &str,
) -> Response {
    pages::render(
        StatusCode::OK,
        "pages/pending_email.html",
        minijinja::context! { email, sent, continue_url, lang_back },
    )
}

/// `GET /compte-non-confirme` (§3.3).
pub async fn unconfirmed_page(State(app): AppState, jar: CookieJar) -> Result<Response, WebError> {
    let Some((_, account)) = step_account(&app, &jar, Purpose::Unconfirmed).await? else {
        return step_over(&app, &jar).await;
    };
    let correction = Correction::default();
    Ok(unconfirmed(
        &app,
        jar,
        &account,
        None,
        None,
        correction,
        StatusCode::OK,
    ))
}

/// The correction form as it comes back: the field in error (its name) and
/// the addresses typed (never the password).
#[derive(Default)]
struct Correction<'a> {
    field: Option<&'static str>,
    email: &'a str,
    confirmation: &'a str,
}

fn unconfirmed(
    app: &Clef,
    jar: CookieJar,
    account: &Account,
    notice: Option<&str>,
    error: Option<&str>,
    correction: Correction<'_>,
    status: StatusCode,
) -> Response {
    let email = account
        .pending_email
        .as_deref()
        .or(account.email.as_deref());
    pages::form(app, jar, status, "pages/unconfirmed.html", |csrf| {
        minijinja::context! {
            email, csrf, notice, error, error_field => correction.field,
            entered_email => correction.email, entered_confirmation => correction.confirmation,
        }
    })
}

/// `POST /compte-non-confirme/renvoyer`.
pub async fn unconfirmed_resend(
    State(app): AppState,
    jar: CookieJar,
    CheckedForm(_): CheckedForm,
) -> Result<Response, WebError> {
    let (interaction, account) = interaction_account(&app, &jar, Purpose::Unconfirmed).await?;
    let return_to = return_to(&app, interaction.pending_id.as_deref()).await?;
    let sent = activation::resend_confirmation(&app, &account, return_to.as_deref()).await?;
    let notice = "Un nouveau mail de confirmation vient d'être envoyé. Seul le lien de ce dernier mail fonctionne.";
    mail_requested(&app, jar, &account, sent, notice)
}

/// The unconfirmed page after a confirmation mail was asked for; a mail
/// held back or not sent is told as « Mon compte » tells it (`Refusal`).
fn mail_requested(
    app: &Clef,
    jar: CookieJar,
    account: &Account,
    request: MailRequest,
    notice: &str,
) -> Result<Response, WebError> {
    let refused = match request {
        MailRequest::TooMany { retry_after } => ProfileError::TooManyMails { retry_after },
        MailRequest::NotSent => ProfileError::MailNotSent,
        MailRequest::Sent | MailRequest::AlreadyConfirmed => {
            let correction = Correction::default();
            return Ok(unconfirmed(
                app,
                jar,
                account,
                Some(notice),
                None,
                correction,
                StatusCode::OK,
            ));
        }
    };
    let refused = Refusal::of(refused)?;
    let page = unconfirmed(
        app,
        jar,
        account,
        None,
        Some(&refused.message),
        Correction::default(),
        refused.status,
    );
    Ok(refused.answer(page))
}

/// `POST /compte-non-confirme/corriger`.
pub async fn unconfirmed_correct(
    State(app): AppState,
    ClientAddress(address): ClientAddress,
    jar: CookieJar,
    CheckedForm(params): CheckedForm,
) -> Result<Response, WebError> {
    let (interaction, account) = interaction_account(&app, &jar, Purpose::Unconfirmed).await?;
    let typed = |field| Correction {
        field: Some(field),
        email: params.get("email").unwrap_or(""),
        confirmation: params.get("email_confirmation").unwrap_or(""),
    };
    let email = match EmailAddress::parse(params.get("email").unwrap_or("")) {
        Ok(email) => email,
        Err(e) => {
            return Ok(unconfirmed(
                &app,
                jar,
                &account,
                None,
                Some(&e.to_string()),
                typed("email"),
                StatusCode::BAD_REQUEST,
            ));
        }
    };
    if EmailAddress::parse(params.get("email_confirmation").unwrap_or(""))
        .ok()
        .as_ref()
        != Some(&email)
    {
        let message = "La confirmation de l'adresse mail ne correspond pas.";
        return Ok(unconfirmed(
            &app,
            jar,
            &account,
            None,
            Some(message),
            typed("email_confirmation"),
            StatusCode::BAD_REQUEST,
        ));
    }
    let return_to = return_to(&app, interaction.pending_id.as_deref()).await?;
    let origin = cookies::origin(&app, &jar, address, Some(&account));
    let corrected = activation::correct_own_address(
        &app,
        &account,
        &params.secret("password"),
        &email,
        return_to.as_deref(),
        &origin,
    )
    .await;
    let sent = match corrected {
        Ok(sent) => sent,
        // Told as for a resend, on the page that says where mails go.
        Err(ProfileError::TooManyMails { retry_after }) => MailRequest::TooMany { retry_after },
        Err(e) => {
            let refused = Refusal::of(e)?;
            let page = unconfirmed(
                &app,
                jar,
                &account,
                None,
                Some(&refused.message),
                typed("password"),
                refused.status,
            );
            return Ok(refused.answer(page));
        }
    };
    let account = store::account_by_id(&app.db, &account.id)
        .await?
        .ok_or_else(step_expired)?;
    let notice = "L'adresse a été corrigée et un mail de confirmation y a été envoyé.";
    mail_requested(&app, jar, &account, sent, notice)
}

/// A confirmation link refused: « Adresse déjà confirmée » when it was
/// spent confirming the address the account has now (opened again from the
/// mail), the problem otherwise.
async fn refused_link(
    app: &Clef,
    token: &str,
    problem: TokenProblem,
) -> Result<Response, WebError> {
    if problem == TokenProblem::Used && activation::already_confirmed(app, token).await? {
        return Ok(pages::message_with_link(
            StatusCode::OK,
            "Adresse déjà confirmée",
            "Cette adresse mail est déjà confirmée : ce lien n'a plus rien à faire. Connectez-vous simplement avec votre identifiant et votre mot de passe.",
            None,
            Some(("/login", "Se connecter")),
        ));
    }
    Err(link_problem(problem))
}

fn link_problem(problem: TokenProblem) -> WebError {
    let message = match problem {
        TokenProblem::Unknown => {
            "Ce lien n'est pas valide. Vérifiez que vous avez copié l'adresse complète du mail."
        }
        TokenProblem::Used => {
            "Ce lien a déjà servi, ou ne vaut plus : un mail plus récent l'a remplacé, ou le mot de passe du compte a changé depuis (ce qui annule un changement d'adresse en attente). Utilisez le lien du dernier mail reçu. Si votre adresse est déjà confirmée, connectez-vous simplement."
        }
        TokenProblem::Expired => {
            "Ce lien a expiré. Connectez-vous pour recevoir un nouveau mail de confirmation."
        }
    };
    WebError::Page {
        status: StatusCode::GONE,
        title: "Lien invalide",
        message: message.into(),
    }
}

/// `GET /confirmation?jeton=…`: shows a button; only the POST confirms (mail
/// scanners follow links).
pub async fn confirm_form(
    State(app): AppState,
    jar: CookieJar,
    Query(params): Query,
) -> Result<Response, WebError> {
    let params = params.map_err(|e| WebError::bad_request(&e))?;
    let token = params.get("jeton").unwrap_or("").to_owned();
    let mut conn = app.db.acquire().await?;
    let checked =
        tokens::check(&mut conn, &token, tokens::Purpose::ConfirmEmail, app.now()).await?;
    drop(conn);
    let found = match checked {
        Ok(found) => found,
        Err(problem) => return refused_link(&app, &token, problem).await,
    };
    Ok(pages::form(
        &app,
        jar,
        StatusCode::OK,
        "pages/confirm.html",
        |csrf| {
            minijinja::context! { email => found.email, token, csrf }
        },
    ))
}

/// `POST /confirmation`: confirmed, told by a page of its own
/// (`GET /confirmation/faite`), so that a reload does not present the spent
/// link again (« Lien invalide »).
pub async fn confirm(
    State(app): AppState,
    jar: CookieJar,
    CheckedForm(params): CheckedForm,
) -> Result<Response, WebError> {
    let token = params.get("jeton").unwrap_or("");
    let confirmed = match activation::confirm_email(&app, token).await? {
        Ok(confirmed) => confirmed,
        Err(problem) => return refused_link(&app, token, problem).await,
    };
    let entry = Entry::new(Event::EmailConfirmed, Outcome::Ok).account(&confirmed.account.id);
    audit::record(&app.db, entry, app.now()).await;
    let kind = match confirmed.activated {
        true => CREATED,
        false => CONFIRMED,
    };
    // Where the person goes on: the request of the service that sent them,
    // recorded with the link (a URL on the issuer; its path and query are
    // carried, when a cookie holds them).
    let on = confirmed
        .return_to
        .as_deref()
        .and_then(|url| url.strip_prefix(app.config.issuer_str()))
        .filter(|path| super::locale::is_local_path(path));
    let encoded: String =
        url::form_urlencoded::byte_serialize(on.unwrap_or("").as_bytes()).collect();
    let what = format!("{kind}:{encoded}");
    Ok(cookies::tell(&app, jar, what, "/confirmation/faite"))
}

const CREATED: &str = "compte-cree";
const CONFIRMED: &str = "adresse-confirmee";

/// `GET /confirmation/faite`: « Création réussie » or « Adresse mail
/// confirmée », told once after the confirmation; « Mon compte » otherwise.
pub async fn confirmed(State(app): AppState, jar: CookieJar) -> Response {
    let (jar, told) = cookies::told(&app, jar);
    let told = told.as_deref().and_then(|what| {
        let (kind, on) = what.split_once(':')?;
        let on = percent_encoding::percent_decode_str(on)
            .decode_utf8()
            .ok()?;
        let on = super::locale::is_local_path(&on).then(|| on.into_owned());
        [CREATED, CONFIRMED]
            .contains(&kind)
            .then(|| (kind == CREATED, on))
    });
    let Some((created_now, on)) = told else {
        return Redirect::to("/compte").into_response();
    };
    let link = match on.as_deref() {
        Some(url) => (url, "Continuer vers l'application"),
        None => ("/compte", "Gérer mon compte"),
    };
    let page = match created_now {
        true => created(link),
        false => pages::message_with_link(
            StatusCode::OK,
            "Adresse mail confirmée",
            "Votre adresse mail est confirmée : c'est désormais celle de votre compte.",
            None,
            Some(link),
        ),
    };
    (jar, page).into_response()
}

/// « Création réussie »: the account is activated (the seeds' words), with
/// where to go on. Its language link leads to « Mon compte » (the step that
/// showed it is over), in the other language.
fn created((href, text): (&str, &str)) -> Response {
    pages::render(
        StatusCode::OK,
        "pages/message.html",
        minijinja::context! {
            title => "Création réussie",
            message => "Vous venez de créer votre compte, vous pouvez maintenant utiliser les différents services ouverts par l'établissement qui vous a remis le courrier de notification. Vous pouvez à tout moment mettre à jour les informations de votre compte dans « Mon compte ».",
            links => [(href.to_owned(), text.to_owned())],
            lang_back => "/compte",
        },
    )
}
