//! The login page (SPEC §3.1) and what follows a successful login.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use secrecy::SecretString;

use super::error::{WebError, no_store};
use super::extract::{Form, Query};
use super::oidc::{current_session, rejection_response, respond};
use super::{AppState, cookies, pages};
use crate::accounts::login::{self, LoginError};
use crate::accounts::store as accounts;
use crate::app::Clef;
use crate::domain::{Identifier, Params};
use crate::oidc::{authorize, clients, session};

const INVALID_CREDENTIALS: &str = "Identifiant ou mot de passe incorrect.";

/// Renders the login form, setting the CSRF cookie if the browser has none.
pub fn form(
    app: &Clef,
    jar: CookieJar,
    pending: Option<&str>,
    client_name: Option<&str>,
    identifier: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let (jar, csrf) = cookies::csrf_token(app, jar);
    let page = pages::render(
        status,
        "pages/login.html",
        minijinja::context! { pending, client_name, identifier, error, csrf },
    );
    let mut response = (jar, page).into_response();
    no_store(&mut response);
    response
}

/// `GET /login`: the form on its own, outside any authorization request.
pub async fn page(State(app): AppState, jar: CookieJar, Query(params): Query) -> Response {
    let identifier = params
        .ok()
        .and_then(|p| p.get("identifier").and_then(|i| Identifier::parse(i).ok()));
    let identifier = identifier.as_ref().map_or("", |i| i.as_str());
    form(&app, jar, None, None, identifier, None, StatusCode::OK)
}

/// `GET /`: who is logged in, or the login form.
pub async fn home(State(app): AppState, jar: CookieJar) -> Result<Response, WebError> {
    let Some(session) = current_session(&app, &jar).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let Some(account) = accounts::account_by_id(&app.db, &session.account_id).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let message = format!(
        "Vous êtes connecté(e) en tant que {} {} (identifiant {}).",
        account.given_name, account.family_name, account.identifier
    );
    Ok(pages::message(
        StatusCode::OK,
        "Vous êtes connecté(e)",
        &message,
        None,
    ))
}

/// `POST /login`.
pub async fn submit(
    State(app): AppState,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    Form(params): Form,
) -> Result<Response, WebError> {
    let params = params.map_err(|e| WebError::bad_request(&e))?;
    if !cookies::csrf_matches(&jar, params.get("csrf")) {
        return Err(WebError::Page {
            status: StatusCode::FORBIDDEN,
            title: "Formulaire expiré",
            message: "Ce formulaire a expiré ou n'a pas été envoyé depuis Clef. Revenez à la page de connexion et réessayez."
                .into(),
        });
    }
    let pending_id = params.get("request").map(str::to_owned);
    let pending = match &pending_id {
        Some(id) => match authorize::pending(&app, id).await? {
            Some(request) => Some(request),
            None => return Err(expired_request()),
        },
        None => None,
    };
    let client_name = match &pending {
        Some(request) => clients::find(&app.db, &request.client_id)
            .await?
            .map(|c| c.name),
        None => None,
    };
    let again = |jar: CookieJar, identifier: &str, error: &str, status: StatusCode| {
        form(
            &app,
            jar,
            pending_id.as_deref(),
            client_name.as_deref(),
            identifier,
            Some(error),
            status,
        )
    };

    let raw_identifier = params.get("identifier").unwrap_or("");
    let identifier = match Identifier::parse(raw_identifier) {
        Ok(identifier) => identifier,
        Err(e) => return Ok(again(jar, "", &e.to_string(), StatusCode::BAD_REQUEST)),
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
    let account = match login::authenticate(&app, &identifier, &password, peer.ip()).await {
        Ok(account) => account,
        Err(LoginError::InvalidCredentials) => {
            return Ok(again(
                jar,
                identifier.as_str(),
                INVALID_CREDENTIALS,
                StatusCode::UNAUTHORIZED,
            ));
        }
        Err(LoginError::TooManyAttempts) => {
            let message = "Trop de tentatives de connexion ont échoué. Patientez quelques minutes avant de réessayer, ou utilisez « mot de passe oublié ? ».";
            return Ok(again(
                jar,
                identifier.as_str(),
                message,
                StatusCode::TOO_MANY_REQUESTS,
            ));
        }
        Err(LoginError::Password(e)) => return Err(e.into()),
        Err(LoginError::Internal(e)) => return Err(e.into()),
    };

    // A new login gets a new session id (no session fixation).
    if let Some(old) = jar.get(cookies::SESSION) {
        session::close(&app, old.value()).await?;
    }
    let (token, session) = session::open(&app, &account.id, app.now()).await?;
    let jar = jar.add(cookies::session(&app, token));
    let response = match pending_id {
        Some(id) => match authorize::resume(&app, &id, &session).await {
            Ok(Some(response)) => respond(&response, StatusCode::SEE_OTHER),
            Ok(None) => return Err(expired_request()),
            Err(rejection) => rejection_response(rejection)?,
        },
        None => Redirect::to("/").into_response(),
    };
    Ok((jar, response).into_response())
}

fn password(params: &Params) -> Option<SecretString> {
    params
        .get("password")
        .map(|p| SecretString::from(p.to_owned()))
}

fn expired_request() -> WebError {
    WebError::Page {
        status: StatusCode::BAD_REQUEST,
        title: "Demande de connexion expirée",
        message: "Votre demande de connexion a expiré. Revenez sur le site de l'application et cliquez à nouveau sur « se connecter ».".into(),
    }
}
