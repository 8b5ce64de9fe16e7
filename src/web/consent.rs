//! The consent page (SPEC §4): what a third-party service will receive, in
//! plain words, and the client's terms (the ENT charter) when a version is
//! not yet accepted, with « Accepter » and « Refuser ».

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;

use super::error::WebError;
use super::extract::{CheckedForm, MaybeSession, Query};
use super::login::expired_request;
use super::redirect::after_form;
use super::{AppState, pages};
use crate::accounts::{Account, store};
use crate::app::Clef;
use crate::oidc::authorize::AuthorizationRequest;
use crate::oidc::clients::Client;
use crate::oidc::grants::Awaiting;
use crate::oidc::session::Session;
use crate::oidc::{authorize, consent};

/// What the page is about: the parked request, its client, the account.
struct Approval {
    request: AuthorizationRequest,
    client: Arc<Client>,
    account: Account,
}

/// The request parked for this session's consent under `pending_id` (or
/// answered a moment ago: a double-click's second half).
async fn approval(app: &Clef, pending_id: &str, session: &Session) -> Result<Approval, WebError> {
    let pending = app
        .pending
        .get(pending_id)
        .await?
        .filter(|p| {
            matches!(p.awaiting, Awaiting::Consent | Awaiting::Answered { .. })
                && p.stale_sid.as_deref() == Some(session.sid.as_str())
        })
        .ok_or_else(expired_request)?;
    let client = app
        .clients
        .find(&app.db, &pending.request.client_id)
        .await?
        .ok_or_else(expired_request)?;
    let account = store::account_by_id(&app.db, &session.account_id)
        .await?
        .ok_or_else(expired_request)?;
    Ok(Approval {
        request: pending.request,
        client,
        account,
    })
}

async fn render(
    app: &Clef,
    jar: CookieJar,
    pending_id: &str,
    approval: &Approval,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Response, WebError> {
    let terms = consent::terms_pending(&app.db, &approval.client, &approval.account.id).await?;
    // The children the consent will cover, by name, under their item; the
    // form names them back, and an acceptance covers those only (not a child
    // attached while the page was open, which the page did not show).
    let shown = match approval.request.scopes.contains("children") {
        true => store::children(&app.db, &approval.account.id).await?,
        false => Vec::new(),
    };
    let children: Vec<String> = shown
        .iter()
        .map(|child| format!("{} {}", child.given_name, child.family_name))
        .collect();
    let shown_children = shown
        .iter()
        .map(|child| child.id.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let items: Vec<minijinja::Value> = approval
        .request
        .scopes
        .iter()
        .filter_map(|scope| {
            let text = consent::described(scope, approval.account.kind)?;
            let names = match scope {
                "children" => children.clone(),
                _ => Vec::new(),
            };
            Some(minijinja::context! { text, names })
        })
        .collect();
    let page = pages::form(app, jar, status, "pages/consent.html", |csrf| {
        minijinja::context! {
            client_name => &approval.client.name,
            third_party => !approval.client.is_first_party,
            identifier => &approval.account.identifier,
            terms_url => terms.map(|t| t.url.as_str()),
            terms_version => terms.map(|t| t.version.as_str()),
            // What the service registered about itself (OIDC Registration
            // §2: shown during approval); its terms once only. Its logo is
            // not: a parent's browser would fetch it from the service
            // before they consent.
            policy_url => approval.client.policy_uri.as_ref().map(|u| u.as_str()),
            tos_url => approval.client.tos_uri.as_ref()
                .filter(|tos| terms.is_none_or(|t| t.url != **tos))
                .map(|u| u.as_str()),
            items, csrf, error, shown_children,
            pending => pending_id,
            // The language link comes back to this request's page, also
            // from the page answering a POST.
            lang_back => format!("/consentement?request={pending_id}"),
        }
    });
    let leads_to = approval.request.redirect_uri.as_str();
    Ok(pages::leading_to(page, Some(leads_to)))
}

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
    let approval = approval(&app, pending_id, &session).await?;
    render(&app, jar, pending_id, &approval, None, StatusCode::OK).await
}

/// `POST /consentement`: `decision=accept` (with `terms=accepted` when the
/// page asked for the terms) or `decision=refuse`.
pub async fn decide(
    State(app): AppState,
    MaybeSession(session): MaybeSession,
    jar: CookieJar,
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
    if accepted && params.get("terms") != Some("accepted") {
        let approval = approval(&app, pending_id, &session).await?;
        if consent::terms_pending(&app.db, &approval.client, &approval.account.id)
            .await?
            .is_some()
        {
            let error = "Cochez « J'ai lu et j'accepte la charte » pour continuer, ou refusez.";
            return render(
                &app,
                jar,
                pending_id,
                &approval,
                Some(error),
                StatusCode::BAD_REQUEST,
            )
            .await;
        }
    }
    // The children the page showed (their ids, as it lists them).
    let shown: Vec<&str> = params
        .get("enfants")
        .unwrap_or_default()
        .split(',')
        .filter(|id| !id.is_empty())
        .collect();
    match authorize::decide(&app, pending_id, &session, (accepted, &shown)).await {
        Some(outcome) => after_form(outcome),
        None => Err(expired_request()),
    }
}
