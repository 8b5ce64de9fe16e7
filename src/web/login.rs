//! The login page (SPEC §3.1) and what follows a successful login.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use secrecy::SecretString;

use super::error::WebError;
use super::extract::{CheckedForm, ClientAddress, Device, MaybeSession, Query};
use super::interaction::{self, Interaction, Purpose};
use super::redirect::after_form;
use super::{AppState, cookies, pages};
use crate::accounts::login::{self, LoginError, LoginOutcome};
use crate::accounts::throttle::french_wait;
use crate::accounts::{Account, AccountKind, store};
use crate::app::Clef;
use crate::audit::{self, Entry, Event, Outcome};
use crate::domain::{Identifier, Params};
use crate::oidc::{authorize, logout, session};

const INVALID_CREDENTIALS: &str = "Identifiant ou mot de passe incorrect.";

/// What the login form shows.
#[derive(Default)]
pub struct FormPage<'a> {
    /// The authorization request under way.
    pub pending: Option<&'a str>,
    pub client_name: Option<&'a str>,
    pub identifier: &'a str,
    pub error: Option<&'a str>,
    pub status: StatusCode,
    /// Titled « Première connexion » (a letter's QR code leads there).
    pub activation: bool,
    /// The person signed in, offered to go on (`prompt=select_account`).
    pub signed_in_as: Option<&'a str>,
    /// The error is the identifier's alone (a closed account, a malformed
    /// identifier): the password is not marked invalid, the identifier has
    /// the focus.
    pub identifier_wrong: bool,
    /// Where the request under way sends the browser back to, which the
    /// form leads on to (`pages::leading_to`).
    pub leads_to: Option<&'a str>,
}

/// Renders the login form, setting the CSRF cookie if the browser has none.
pub fn form_page(app: &Clef, jar: CookieJar, page: FormPage<'_>) -> Response {
    let FormPage {
        pending,
        client_name,
        identifier,
        error,
        status,
        activation,
        signed_in_as,
        identifier_wrong,
        leads_to,
    } = page;
    // The language link comes back to this form of this request, not to the
    // address that showed it (an /authorize whose pushed request is spent,
    // whose `ui_locales` would win over the choice; a POST).
    let lang_back = match pending {
        Some(id) => Some(format!("/login?request={id}")),
        // A letter's first connection stays one (an identifier is plain text).
        None if activation => Some(format!(
            "/activation?identifiant={}",
            url::form_urlencoded::byte_serialize(identifier.as_bytes()).collect::<String>()
        )),
        None => None,
    };
    let page = pages::form(app, jar, status, "pages/login.html", |csrf| {
        minijinja::context! { pending, client_name, identifier, error, csrf, activation, signed_in_as, lang_back, identifier_wrong }
    });
    pages::leading_to(page, leads_to)
}

/// `GET /login`: the form on its own, or, with `request`, the form of an
/// authorization request under way (where the language link brings it back),
/// with the account choice when the request offered it to this session.
pub async fn page(
    State(app): AppState,
    MaybeSession(session): MaybeSession,
    jar: CookieJar,
    Query(params): Query,
) -> Result<Response, WebError> {
    let params = params.ok();
    let Some(pending_id) = params.as_ref().and_then(|p| p.get("request")) else {
        return Ok(prefilled(&app, jar, params, "identifier", false));
    };
    let Some(parked) = authorize::parked(&app, pending_id).await? else {
        return Err(expired_request());
    };
    let request = &parked.request;
    let client = app.clients.find(&app.db, &request.client_id).await?;
    let signed_in_as = offered_account(&app, &parked, session.as_ref()).await?;
    let page = FormPage {
        pending: Some(pending_id),
        client_name: client.as_ref().map(|c| c.name.as_str()),
        identifier: request.login_hint.as_deref().unwrap_or(""),
        signed_in_as: signed_in_as.as_deref(),
        leads_to: Some(request.redirect_uri.as_str()),
        ..FormPage::default()
    };
    Ok(form_page(&app, jar, page))
}

/// Who « Continuer avec ce compte » names on the form of the `parked`
/// request, if it offered the account of `session`, and that account may
/// still sign in (not closed, not grouped).
pub async fn offered_account(
    app: &Clef,
    parked: &authorize::Parked,
    session: Option<&session::Session>,
) -> anyhow::Result<Option<String>> {
    let Some(session) = session.filter(|session| parked.offers(session)) else {
        return Ok(None);
    };
    let account = store::account_by_id(&app.db, &session.account_id).await?;
    Ok(account
        .filter(|a| a.may_use_applications())
        .map(|a| format!("{} {} ({})", a.given_name, a.family_name, a.identifier)))
}

/// The login form with the identifier taken from the query (ignored when invalid).
fn prefilled(
    app: &Clef,
    jar: CookieJar,
    params: Option<Params>,
    name: &str,
    activation: bool,
) -> Response {
    let identifier = params.and_then(|p| p.get(name).and_then(|i| Identifier::parse(i).ok()));
    let identifier = identifier.as_ref().map_or("", |i| i.as_str());
    form_page(
        app,
        jar,
        FormPage {
            identifier,
            activation,
            ..FormPage::default()
        },
    )
}

/// `GET /`: « Mon compte » for a signed-in person, else the login form.
pub async fn home() -> Redirect {
    Redirect::to("/compte")
}

/// `POST /login`.
pub async fn submit(
    State(app): AppState,
    ClientAddress(address): ClientAddress,
    Device(device): Device,
    MaybeSession(session): MaybeSession,
    jar: CookieJar,
    CheckedForm(params): CheckedForm,
) -> Result<Response, WebError> {
    let pending_id = params.get("request").map(str::to_owned);
    let parked = match &pending_id {
        Some(id) => match authorize::parked(&app, id).await? {
            Some(parked) => Some(parked),
            None => return Err(expired_request()),
        },
        None => None,
    };
    let (client_name, signed_in_as) = match &parked {
        Some(parked) => (
            app.clients
                .find(&app.db, &parked.request.client_id)
                .await?
                .map(|c| c.name.clone()),
            offered_account(&app, parked, session.as_ref()).await?,
        ),
        None => (None, None),
    };
    // A letter's first connection (its QR code's page) stays one when a
    // password is mistyped: the letter's wording, not the sign-in's.
    let activation = params.get("activation") == Some("1");
    let again_on = |jar, identifier, error, status, identifier_wrong| {
        let page = FormPage {
            pending: pending_id.as_deref(),
            client_name: client_name.as_deref(),
            identifier,
            error: Some(error),
            status,
            activation,
            signed_in_as: signed_in_as.as_deref(),
            identifier_wrong,
            leads_to: parked.as_ref().map(|p| p.request.redirect_uri.as_str()),
        };
        form_page(&app, jar, page)
    };
    let again = |jar, identifier, error, status| again_on(jar, identifier, error, status, false);

    let raw_identifier = params.get("identifier").unwrap_or("");
    let identifier = match Identifier::parse(raw_identifier) {
        Ok(identifier) => identifier,
        Err(e) => {
            let error = e.to_string();
            return Ok(again_on(jar, "", &error, StatusCode::BAD_REQUEST, true));
        }
    };
    let Some(password) = password(&params) else {
        let message = "Le champ « mot de passe » est obligatoire.";
        return Ok(again(
            jar,
            identifier.as_str(),
            message,
            StatusCode::BAD_REQUEST,
        ));
    };
    let account = store::account_by_identifier(&app.db, &identifier).await?;
    let origin = cookies::origin(&app, &jar, address, account.as_ref());
    let outcome = login::authenticate(&app, &identifier, account, &password, &origin).await;
    audit_login(&app, &identifier, &outcome, address, &device).await?;
    // A right password, whatever follows: this browser is remembered for the account.
    let jar = match &outcome {
        Ok(outcome) => cookies::remember_device(&app, jar, outcome.account()),
        Err(_) => jar,
    };
    let account = match outcome {
        Ok(LoginOutcome::SignedIn(account)) => account,
        Ok(LoginOutcome::FirstConnection(account)) => {
            let interaction = Interaction {
                purpose: Purpose::FirstConnection,
                account_id: account.id,
                pending_id,
                letter_date: account.letter_date,
            };
            let jar = interaction::start(&app, jar, &interaction).await?;
            return Ok((jar, Redirect::to("/premiere-connexion")).into_response());
        }
        Ok(LoginOutcome::Unconfirmed(account)) => {
            let interaction = Interaction {
                purpose: Purpose::Unconfirmed,
                account_id: account.id,
                pending_id,
                letter_date: None,
            };
            let jar = interaction::start(&app, jar, &interaction).await?;
            return Ok((jar, Redirect::to("/compte-non-confirme")).into_response());
        }
        Err(LoginError::InvalidCredentials { .. }) => {
            return Ok(again(
                jar,
                identifier.as_str(),
                INVALID_CREDENTIALS,
                StatusCode::UNAUTHORIZED,
            ));
        }
        Err(LoginError::TooManyAttempts { retry_after, .. }) => {
            let message = too_many_attempts(retry_after);
            let page = again(
                jar,
                identifier.as_str(),
                &message,
                StatusCode::TOO_MANY_REQUESTS,
            );
            return Ok(pages::retry_after(page, retry_after));
        }
        Err(LoginError::LetterExpired) => {
            let message = "Ce courrier de notification a dépassé son délai d'activation : il ne permet plus d'activer le compte. Demandez un nouveau courrier à l'établissement.";
            return Ok(again(
                jar,
                identifier.as_str(),
                message,
                StatusCode::FORBIDDEN,
            ));
        }
        Err(LoginError::Closed { grouped, .. }) => {
            let message = if grouped {
                "Ce compte a été regroupé avec un autre compte, auquel ses enfants sont désormais rattachés : connectez-vous avec l'identifiant de cet autre compte. Si vous ne le connaissez pas, contactez votre établissement."
            } else {
                "Ce compte a été fermé : il ne permet plus de se connecter. Pour toute question, contactez votre établissement."
            };
            return Ok(again_on(
                jar,
                identifier.as_str(),
                message,
                StatusCode::FORBIDDEN,
                true,
            ));
        }
        Err(LoginError::Password(e)) => return Err(e.into()),
        Err(LoginError::Internal(e)) => return Err(e.into()),
    };
    sign_in(&app, jar, &account, &device, pending_id.as_deref()).await
}

/// Records a login attempt in the audit trail: its account (also when the
/// attempt failed, so the trail of an account shows the attacks on it), the
/// address and browser, and the outcome.
async fn audit_login(
    app: &Clef,
    identifier: &Identifier,
    outcome: &Result<LoginOutcome, LoginError>,
    address: std::net::IpAddr,
    device: &str,
) -> Result<(), WebError> {
    let (account_id, result) = match outcome {
        Ok(
            LoginOutcome::SignedIn(account)
            | LoginOutcome::FirstConnection(account)
            | LoginOutcome::Unconfirmed(account),
        ) => (Some(account.id.clone()), Outcome::Ok),
        // A failed check, or a limit, names the account it looked up; an
        // expired letter names none.
        Err(LoginError::InvalidCredentials { account_id }) => (account_id.clone(), Outcome::Failed),
        Err(LoginError::Closed { account_id, .. }) => (Some(account_id.clone()), Outcome::Failed),
        Err(LoginError::TooManyAttempts {
            account_id, wrong, ..
        }) => {
            let outcome = match wrong {
                true => Outcome::Failed,
                false => Outcome::Refused,
            };
            (account_id.clone(), outcome)
        }
        // Clef could not check it (a store down, hashing saturated): the
        // person gets a 503 page, and the trail no attempt of theirs.
        Err(LoginError::Password(_) | LoginError::Internal(_)) => return Ok(()),
        Err(LoginError::LetterExpired) => {
            let found = store::account_by_identifier(&app.db, identifier).await?;
            (found.map(|a| a.id), Outcome::Failed)
        }
    };
    let shown = login::shown_identifier(app, identifier, account_id.is_some());
    let mut entry = Entry::new(Event::Login, result)
        .from(address, device)
        .detail(&shown);
    if let Some(id) = account_id.as_deref() {
        entry = entry.account(id);
    }
    audit::record(&app.db, entry, app.now()).await;
    Ok(())
}

/// Opens a session and goes on: back to the client if a request was under
/// way, else to « Mon compte ».
pub async fn sign_in(
    app: &Clef,
    jar: CookieJar,
    account: &Account,
    device: &str,
    pending_id: Option<&str>,
) -> Result<Response, WebError> {
    let (jar, session) = open_session(app, jar, account, device).await?;
    let response = match pending_id {
        Some(id) => match authorize::resume(app, id, &session).await {
            Some(outcome) => after_form(outcome)?,
            // Answered already (a double click) or expired: the session just
            // opened stays, so the application's next request passes.
            None => expired_request().into_response(),
        },
        None => Redirect::to(landing(account)).into_response(),
    };
    Ok((jar, response).into_response())
}

/// Where a sign-in that no application asked for leads: staff to their
/// establishment's back office, everyone else to « Mon compte ».
fn landing(account: &Account) -> &'static str {
    match account.kind {
        AccountKind::Staff => "/etablissement",
        AccountKind::Guardian | AccountKind::Student => "/compte",
    }
}

/// Opens a session for `account` as its credentials were checked: a new one
/// (a new session id: no fixation), or the browser's own session when it is
/// already this person's (`session::renew`); if the credentials have changed
/// since (a password reset landed meanwhile), none: the step is over.
pub async fn open_session(
    app: &Clef,
    jar: CookieJar,
    account: &Account,
    device: &str,
) -> Result<(CookieJar, session::Session), WebError> {
    let old = cookies::session_token(app, &jar).map(str::to_owned);
    // Any screen left open after an earlier login (first connection,
    // unconfirmed account), which may have been someone else's, ends.
    let jar = interaction::end(app, jar).await?;
    if let Some(old) = old {
        // The same person again: their session goes on. Another's ends, as
        // a logout would.
        match session::renew(app, &old, account, app.now()).await? {
            session::Renewal::Renewed(session) => {
                return Ok((jar.add(cookies::session(app, old)), session));
            }
            session::Renewal::CredentialsChanged => return Err(step_expired()),
            session::Renewal::NotRenewable => logout::end_session(app, &old).await?,
        }
    }
    let (token, session) = session::open(app, account, device, app.now())
        .await?
        .ok_or_else(step_expired)?;
    let jar = cookies::renew_csrf(app, jar);
    Ok((jar.add(cookies::session(app, token)), session))
}

/// A step that can no longer be taken (its interaction ended, or the
/// password changed under it): sign in again.
pub(super) fn step_expired() -> WebError {
    WebError::Page {
        status: StatusCode::BAD_REQUEST,
        title: "Session expirée",
        message:
            "Cette étape a expiré. Reconnectez-vous avec votre identifiant et votre mot de passe."
                .into(),
    }
}

/// `GET /activation?identifiant=…`: where a letter's QR code leads — the
/// login form, titled for a first connection, with the identifier filled in.
/// The code's `appareil`, the letter's device proof, makes this browser one
/// its account trusts (`cookies::remember_letter`); the page is then shown
/// at the address without it.
pub async fn activation(
    State(app): AppState,
    jar: CookieJar,
    Query(params): Query,
) -> Result<Response, WebError> {
    let params = params.ok();
    let asked = params.as_ref().and_then(|p| p.get("identifiant"));
    let proof = params.as_ref().and_then(|p| p.get("appareil"));
    let (Some(typed), Some(proof)) = (asked, proof) else {
        return Ok(prefilled(&app, jar, params, "identifiant", true));
    };
    let jar = match Identifier::parse(typed) {
        Ok(identifier) => match store::account_by_identifier(&app.db, &identifier).await? {
            Some(account) => cookies::remember_letter(&app, jar, &account, proof),
            None => jar,
        },
        Err(_) => jar,
    };
    let clean = format!(
        "/activation?identifiant={}",
        url::form_urlencoded::byte_serialize(typed.as_bytes()).collect::<String>()
    );
    Ok((jar, Redirect::to(&clean)).into_response())
}

/// `GET /continuer?request=…`: resumes an authorization request for a person
/// who already has a session (a student whose address awaits confirmation).
pub async fn resume(
    State(app): AppState,
    MaybeSession(session): MaybeSession,
    Query(params): Query,
) -> Result<Response, WebError> {
    let params = params.map_err(|e| WebError::bad_request(&e))?;
    let pending_id = params.get("request").unwrap_or("").to_owned();
    match session {
        Some(session) => match authorize::resume(&app, &pending_id, &session).await {
            Some(outcome) => after_form(outcome),
            None => Err(expired_request()),
        },
        None => Ok(Redirect::to("/login").into_response()),
    }
}

/// `POST /continuer`: the person signed in goes on with their account, where
/// the request let them choose (`prompt=select_account`).
pub async fn go_on(
    State(app): AppState,
    MaybeSession(session): MaybeSession,
    jar: CookieJar,
    CheckedForm(params): CheckedForm,
) -> Result<Response, WebError> {
    let pending_id = params.get("request").unwrap_or("");
    let Some(session) = session else {
        return Ok(Redirect::to("/login").into_response());
    };
    match authorize::go_on(&app, pending_id, &session).await {
        // The sign-in has grown too old for the request meanwhile.
        Some(authorize::AuthorizeOutcome::LoginRequired { pending_id }) => {
            let parked = authorize::parked(&app, &pending_id).await?;
            let page = FormPage {
                pending: Some(&pending_id),
                leads_to: parked.as_ref().map(|p| p.request.redirect_uri.as_str()),
                ..FormPage::default()
            };
            Ok(form_page(&app, jar, page))
        }
        Some(outcome) => after_form(outcome),
        None => Err(expired_request()),
    }
}

/// The message of a refused attempt, with the wait.
pub fn too_many_attempts(retry_after: u64) -> String {
    format!(
        "Trop de tentatives ont échoué. Patientez {} avant de réessayer, ou utilisez « mot de passe oublié ? ».",
        french_wait(retry_after)
    )
}

/// Confirmation mails asked for too often (« Mon compte », an unconfirmed account).
pub fn too_many_mails(retry_after: u64) -> String {
    format!(
        "Trop de mails de confirmation ont été demandés pour ce compte. Patientez {} avant de réessayer.",
        french_wait(retry_after)
    )
}

fn password(params: &Params) -> Option<SecretString> {
    params
        .get("password")
        .map(|p| SecretString::from(p.to_owned()))
}

pub fn expired_request() -> WebError {
    WebError::Page {
        status: StatusCode::BAD_REQUEST,
        title: "Demande de connexion expirée",
        message: "Votre demande de connexion a expiré. Revenez sur le site de l'application et cliquez à nouveau sur « se connecter ».".into(),
    }
}
