//! Sending the browser back to the client after an authorization request: a
//! redirect or an auto-submitted form with the code or the error, or a page
//! when the client itself cannot be trusted with the answer.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::error::WebError;
use super::pages::{self, no_store};
use crate::oidc::ErrorCode;
use crate::oidc::authorize::{self, AuthorizeOutcome, Rejection, ResponseMode};
use crate::secret::random_token;

/// The longest query a POST is sent back as: a longer address may be refused
/// on its way (nginx takes 8 KiB of request line by default) and lands in
/// proxies' logs and the browser's history.
const MAX_QUERY_AS_GET: usize = 4096;

/// The same request as a GET of `path` (303: the browser drops the body): a
/// relying party's cross-site POST, which the session cookie does not reach,
/// made top-level navigation, which it does. `None` when its parameters are
/// too long for an address (`MAX_QUERY_AS_GET`).
pub fn as_get(path: &str, params: &crate::domain::Params) -> Option<Response> {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.pairs())
        .finish();
    if query.len() > MAX_QUERY_AS_GET {
        return None;
    }
    let mut response = Redirect::to(&format!("{path}?{query}")).into_response();
    no_store(&mut response);
    Some(response)
}

/// Where an authorization outcome sends the browser after a form (login,
/// consent): 303, so the browser follows with a GET.
pub fn after_form(outcome: AuthorizeOutcome) -> Result<Response, WebError> {
    match outcome {
        AuthorizeOutcome::Permitted(response)
        | AuthorizeOutcome::Rejected(Rejection::Returned(response)) => {
            Ok(respond(&response, StatusCode::SEE_OTHER))
        }
        AuthorizeOutcome::Rejected(rejection) => rejection_response(rejection),
        AuthorizeOutcome::ConsentRequired { pending_id } => Ok(to_consent(&pending_id)),
        // The request wants a login again (a consent page left open past its
        // `max_age`): its login form, which names the service.
        AuthorizeOutcome::LoginRequired { pending_id }
        | AuthorizeOutcome::AccountChoice { pending_id } => {
            Ok(Redirect::to(&format!("/login?request={pending_id}")).into_response())
        }
    }
}

/// To the consent page of the request parked under `pending_id`.
pub fn to_consent(pending_id: &str) -> Response {
    Redirect::to(&format!("/consentement?request={pending_id}")).into_response()
}

pub fn rejection_response(rejection: Rejection) -> Result<Response, WebError> {
    match rejection {
        Rejection::Shown(error) => {
            let message = match error.code {
                ErrorCode::InvalidClient => {
                    "L'application qui vous a envoyé ici n'est pas enregistrée auprès de Clef."
                }
                _ => {
                    "L'application qui vous a envoyé ici a formulé une demande de connexion invalide. Revenez sur son site et réessayez ; si le problème persiste, contactez-la."
                }
            };
            Ok(pages::message(
                StatusCode::BAD_REQUEST,
                "Demande de connexion invalide",
                message,
                Some(&error.description),
            ))
        }
        Rejection::Returned(response) => Ok(respond(&response, StatusCode::FOUND)),
        Rejection::Internal(e) => Err(WebError::Internal(e)),
    }
}

/// Sends the browser back to the client: a redirect (`query`) or an
/// auto-submitted form (`form_post`, OAuth 2.0 Form Post Response Mode).
pub fn respond(response: &authorize::Response, status: StatusCode) -> Response {
    let mut http = match response.mode {
        ResponseMode::Query => match status {
            StatusCode::SEE_OTHER => Redirect::to(&response.location()).into_response(),
            _ => (StatusCode::FOUND, [(header::LOCATION, response.location())]).into_response(),
        },
        ResponseMode::FormPost => {
            let nonce = random_token(16);
            let mut page = pages::render(
                StatusCode::OK,
                "pages/form_post.html",
                minijinja::context! { action => response.redirect_uri.as_str(), params => &response.params, nonce => &nonce },
            );
            let csp = format!(
                "default-src 'none'; script-src 'nonce-{nonce}'; frame-ancestors 'none'; base-uri 'none'"
            );
            if let Ok(value) = HeaderValue::from_str(&csp) {
                page.headers_mut()
                    .insert(header::CONTENT_SECURITY_POLICY, value);
            }
            page
        }
    };
    no_store(&mut http);
    http
}
