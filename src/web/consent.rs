//! The consent page (SPEC §4): what a third-party service will receive, in
//! plain words, with « Accepter » and « Refuser ».

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;

use super::error::WebError;
use super::extract::{CheckedForm, MaybeSession, Query};
use super::login::expired_request;
use super::redirect::after_form;
use super::{AppState, pages};
use crate::accounts::store;
use crate::oidc::grants::Awaiting;
use crate::oidc::{authorize, clients, consent};

/// `GET /consentement?request=…`
pub async fn page(
    State(app): AppState,
    MaybeSession(session): MaybeSession,
    jar: CookieJar,
    Query(params): Query,
) -> Result<Response, WebError> {
    let params = params.map_err(|e| WebError::bad_request(&e))?;
    let pending_id = params.get("request").unwrap_or("");
    let Some(session) = session else {
        return Ok(Redirect::to("/login").into_response());
    };
    let pending = app
        .pending
        .get(pending_id)
        .await?
        .filter(|p| {
            p.awaiting == Awaiting::Consent && p.stale_sid.as_deref() == Some(session.sid.as_str())
        })
        .ok_or_else(expired_request)?;
    let client = clients::find(&app.db, &pending.request.client_id)
        .await?
        .ok_or_else(expired_request)?;
    let account = store::account_by_id(&app.db, &session.account_id)
        .await?
        .ok_or_else(expired_request)?;
    let items: Vec<&str> = pending
        .request
        .scopes
        .iter()
        .filter_map(consent::described)
        .collect();
    Ok(pages::form(
        &app,
        jar,
        StatusCode::OK,
        "pages/consent.html",
        |csrf| {
            minijinja::context! {
                client_name => &client.name,
                identifier => &account.identifier,
                items, csrf,
                pending => pending_id,
            }
        },
    ))
}

/// `POST /consentement`: `decision=accept` or `decision=refuse`.
pub async fn decide(
    State(app): AppState,
    MaybeSession(session): MaybeSession,
    CheckedForm(params): CheckedForm,
) -> Result<Response, WebError> {
    let Some(session) = session else {
        return Ok(Redirect::to("/login").into_response());
    };
    let accepted = match params.get("decision") {
        Some("accept") => true,
        Some("refuse") => false,
        _ => {
            return Err(WebError::Page {
                status: StatusCode::BAD_REQUEST,
                title: "Requête invalide",
                message: "Choisissez « Accepter » ou « Refuser ».".into(),
            });
        }
    };
    let pending_id = params.get("request").unwrap_or("");
    match authorize::decide(&app, pending_id, &session, accepted).await {
        Some(outcome) => after_form(outcome),
        None => Err(expired_request()),
    }
}
