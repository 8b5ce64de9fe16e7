//! `/logout`: the end-session endpoint relying parties send browsers to
//! (RP-Initiated Logout 1.0), the confirmation page, « Se déconnecter » in
//! « Mon compte », and the « Vous êtes déconnecté » page.

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;

use super::error::WebError;
use super::extract::{Form, MaybeSession, Query, expired_form};
use super::{AppState, cookies, interaction, pages};
use crate::accounts::store;
use crate::app::Clef;
use crate::domain::Params;
use crate::oidc::logout::{self, EndSessionOutcome, EndSessionRequest, Logout, LogoutError};
use crate::oidc::session::Session;

/// `GET /logout`: a relying party's request (§2: GET and POST).
pub async fn end_session(
    State(app): AppState,
    MaybeSession(session): MaybeSession,
    jar: CookieJar,
    Query(params): Query,
) -> Result<Response, WebError> {
    requested(
        &app,
        session,
        jar,
        params.map_err(|e| WebError::bad_request(&e))?,
    )
    .await
}

/// `POST /logout`: the person's answer when the form carries `confirm` (the
/// confirmation page, « Mon compte »), else a relying party's request.
pub async fn submit(
    State(app): AppState,
    MaybeSession(session): MaybeSession,
    jar: CookieJar,
    uri: Uri,
    Form(params): Form,
) -> Result<Response, WebError> {
    let params = params?;
    if !params.contains("confirm") {
        // A relying party's page posting here from its own site: the
        // browser keeps the `SameSite=Lax` session cookie off a cross-site
        // POST, and the request would end nothing yet go back « logged out ».
        // The same request as a top-level GET carries the cookie.
        if cookies::session_token(&app, &jar).is_none()
            && let Some(again) = super::redirect::as_get("/logout", &params)
        {
            return Ok(again);
        }
        return requested(&app, session, jar, params).await;
    }
    // A signed-in person's own form: logging out needs no more than that;
    // another site's form has no matching token.
    if !cookies::csrf_matches(&app, &jar, params.get("csrf")) {
        return Err(expired_form());
    }
    if params.contains("cancel") {
        // « Mon compte » in the language of the page a relying party asked
        // for (`ui_locales`, which the form posts again), not the browser's.
        let asked = uri.query().is_some_and(|q| q.contains("ui_locales="));
        return Ok(match asked {
            true => Redirect::to(&format!("/compte?lang={}", super::locale::current().code())),
            false => Redirect::to("/compte"),
        }
        .into_response());
    }
    let request = parse(&params)?;
    let logout = match logout::request(&app, &request, session.as_ref()).await {
        Ok(
            EndSessionOutcome::NotSignedIn(logout)
            | EndSessionOutcome::Confirmed(logout)
            | EndSessionOutcome::ConfirmationRequired(logout),
        ) => logout,
        Err(error) => return refused(error, session.is_some()),
    };
    log_out(&app, session, jar, &logout).await
}

fn parse(params: &Params) -> Result<EndSessionRequest, WebError> {
    EndSessionRequest::parse(params).map_err(|e| WebError::bad_request(&e))
}

async fn requested(
    app: &Clef,
    session: Option<Session>,
    jar: CookieJar,
    params: Params,
) -> Result<Response, WebError> {
    let request = parse(&params)?;
    match logout::request(app, &request, session.as_ref()).await {
        Err(error) => refused(error, session.is_some()),
        Ok(EndSessionOutcome::NotSignedIn(logout) | EndSessionOutcome::Confirmed(logout)) => {
            log_out(app, session, jar, &logout).await
        }
        Ok(EndSessionOutcome::ConfirmationRequired(logout)) => {
            let Some(session) = session else {
                return log_out(app, None, jar, &logout).await;
            };
            confirmation(app, jar, &session, &logout).await
        }
    }
}

/// « Voulez-vous vous déconnecter de Clef ? », with the request's validated
/// parameters carried in the form.
async fn confirmation(
    app: &Clef,
    jar: CookieJar,
    session: &Session,
    logout: &Logout,
) -> Result<Response, WebError> {
    let identifier = store::account_by_id(&app.db, &session.account_id)
        .await?
        .map(|account| account.identifier);
    let client = logout.client.as_ref();
    let redirect = logout.redirect.as_ref();
    let page = pages::form(app, jar, StatusCode::OK, "pages/logout.html", |csrf| {
        minijinja::context! {
            csrf, identifier,
            client_name => client.map(|c| &c.name),
            client_id => client.map(|c| &c.id),
            post_logout_redirect_uri => redirect.map(|r| r.uri.as_str()),
            state => redirect.and_then(|r| r.state.as_deref()),
        }
    });
    Ok(pages::leading_to(page, redirect.map(|r| r.uri.as_str())))
}

/// Ends the browser's session and drops its cookie, then sends the browser
/// to the registered post-logout URI (303) or shows « Vous êtes déconnecté ».
async fn log_out(
    app: &Clef,
    session: Option<Session>,
    jar: CookieJar,
    logout: &Logout,
) -> Result<Response, WebError> {
    if let (Some(_), Some(token)) = (&session, cookies::session_token(app, &jar)) {
        logout::end_session(app, token).await?;
    }
    // A first connection or an unconfirmed account's screen left open on a
    // shared computer ends too.
    let jar = interaction::end(app, jar).await?;
    let jar = cookies::without_session(app, jar);
    let mut response = match &logout.redirect {
        Some(redirect) => (jar, Redirect::to(&redirect.location())).into_response(),
        None => {
            let client_name = logout.client.as_ref().map(|c| &c.name);
            let page = pages::render(
                StatusCode::OK,
                "pages/logged_out.html",
                minijinja::context! { client_name },
            );
            (jar, page).into_response()
        }
    };
    pages::no_store(&mut response);
    Ok(response)
}

/// A request Clef will not follow: a page, never a redirect. Only a
/// signed-in browser is told it still is, and how to sign out.
fn refused(error: LogoutError, signed_in: bool) -> Result<Response, WebError> {
    let message = match error {
        LogoutError::Internal(cause) => return Err(WebError::Internal(cause)),
        LogoutError::UnknownClient => {
            "L'application qui vous a envoyé ici n'est pas enregistrée auprès de Clef."
        }
        LogoutError::ClientMismatch
        | LogoutError::RedirectWithoutClient
        | LogoutError::UnregisteredRedirectUri => match signed_in {
            true => {
                "L'application qui vous a envoyé ici a formulé une demande de déconnexion invalide. Vous êtes toujours connecté à Clef ; pour vous déconnecter, utilisez « Se déconnecter » dans « Mon compte »."
            }
            false => {
                "L'application qui vous a envoyé ici a formulé une demande de déconnexion invalide. Vous n'êtes pas connecté à Clef : il n'y a rien à faire de plus."
            }
        },
    };
    Ok(pages::message(
        StatusCode::BAD_REQUEST,
        "Demande de déconnexion invalide",
        message,
        Some(&error.to_string()),
    ))
}
