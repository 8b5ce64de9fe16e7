//! One error type for the web edge: a French page for people, a JSON error for
//! clients, 503 + Retry-After when hashing is saturated or PostgreSQL or Redis
//! is unavailable. Internal causes are logged once, by the
//! `log_internal_errors` middleware, never shown.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use super::extract::BodyError;
use super::pages::{self, no_store};
use crate::accounts::PasswordError;
use crate::domain::FieldError;
use crate::oidc::{ErrorCode, OAuthError};
use crate::storage;

#[derive(Debug)]
pub enum WebError {
    /// A page for a person, in French or English (the sentences are the
    /// catalogue's keys, see `i18n`).
    Page {
        status: StatusCode,
        title: &'static str,
        message: String,
    },
    /// RFC 6749 §5.2 JSON error for a client.
    OAuth(OAuthError),
    Busy,
    Internal(anyhow::Error),
}

impl WebError {
    pub fn bad_request(error: &FieldError) -> Self {
        Self::Page {
            status: StatusCode::BAD_REQUEST,
            title: "Requête invalide",
            message: error.to_string(),
        }
    }
}

/// A body's own faults, said as a person meets them.
impl From<BodyError> for WebError {
    fn from(error: BodyError) -> Self {
        match error {
            BodyError::TooLarge => Self::Page {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                title: TOO_LARGE.0,
                message: TOO_LARGE.1.into(),
            },
            BodyError::NotAForm => Self::Page {
                status: StatusCode::BAD_REQUEST,
                title: "Requête invalide",
                message:
                    "Cette demande n'a pas pu être lue. Revenez à la page précédente et réessayez."
                        .into(),
            },
            BodyError::Params(error) => Self::bad_request(&error),
        }
    }
}

/// A body over the limit, as a page says it.
const TOO_LARGE: (&str, &str) = (
    "Demande trop volumineuse",
    "Ce que vous avez envoyé est trop volumineux. Revenez à la page précédente et réessayez avec moins de données.",
);

impl From<anyhow::Error> for WebError {
    fn from(e: anyhow::Error) -> Self {
        Self::Internal(e)
    }
}

impl From<sqlx::Error> for WebError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}

impl From<PasswordError> for WebError {
    fn from(e: PasswordError) -> Self {
        match e {
            PasswordError::Busy => Self::Busy,
            PasswordError::Internal(e) => Self::Internal(anyhow::anyhow!(e)),
        }
    }
}

impl From<OAuthError> for WebError {
    fn from(e: OAuthError) -> Self {
        Self::OAuth(e)
    }
}

/// The cause of a 500, carried to the logging middleware.
#[derive(Clone)]
struct InternalCause(Arc<anyhow::Error>);

/// Marks a 503 given because every core was hashing, for the metrics.
#[derive(Clone, Copy)]
struct HashingSaturated;

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self {
            // A refused page always offers a way on: the home page (« Mon
            // compte » when signed in, else the login form).
            Self::Page {
                status,
                title,
                message,
            } => pages::message_with_link(
                status,
                title,
                &message,
                None,
                Some(("/", "Retour à l'accueil")),
            ),
            Self::OAuth(error) => oauth_json(&error),
            Self::Busy => {
                let mut response = pages::message(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Service momentanément surchargé",
                    "Trop de connexions sont en cours. Réessayez dans quelques secondes.",
                    None,
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                response.extensions_mut().insert(HashingSaturated);
                response
            }
            // The database or Redis is down or frozen: the person may simply
            // come back, and a load balancer may retry elsewhere.
            Self::Internal(cause) if storage::is_unavailable(&cause) => {
                let mut response = unavailable_page();
                response
                    .extensions_mut()
                    .insert(InternalCause(Arc::new(cause)));
                response
            }
            Self::Internal(cause) => {
                let mut response = pages::message(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Erreur interne",
                    "Une erreur inattendue s'est produite. Réessayez plus tard ; si le problème persiste, contactez votre établissement.",
                    None,
                );
                response
                    .extensions_mut()
                    .insert(InternalCause(Arc::new(cause)));
                response
            }
        }
    }
}

/// RFC 6749 §5.2: 400, or 401 for `invalid_client`; RFC 6750 §3.1: 401
/// for `invalid_token`, 403 for `insufficient_scope`; never cached.
pub fn oauth_json(error: &OAuthError) -> Response {
    let status = match error.code {
        ErrorCode::InvalidClient | ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
        ErrorCode::InsufficientScope => StatusCode::FORBIDDEN,
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    let body = json!({ "error": error.code.as_str(), "error_description": error.description });
    let mut response = (status, Json(body)).into_response();
    no_store(&mut response);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        retry_after(&mut response);
    }
    if let Some(cause) = &error.cause {
        response
            .extensions_mut()
            .insert(InternalCause(cause.clone()));
    }
    response
}

/// The page of a 503 for an unavailable dependency.
fn unavailable_page() -> Response {
    let mut response = pages::message(
        StatusCode::SERVICE_UNAVAILABLE,
        "Service momentanément indisponible",
        "Le service ne peut pas vous répondre pour le moment. Réessayez dans quelques instants.",
        None,
    );
    retry_after(&mut response);
    response
}

/// RFC 9110 §10.2.3: when to try again after a 503 for an unavailable dependency.
fn retry_after(response: &mut Response) {
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(storage::RETRY_AFTER.as_secs()),
    );
}

/// Logs the cause chain of every internal error, once, and counts those that
/// came from the database or the short-lived store.
pub async fn log_internal_errors(State(app): AppState, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    if response.extensions().get::<HashingSaturated>().is_some() {
        app.metrics.hashing_rejected.inc();
    }
    if let Some(InternalCause(cause)) = response.extensions().get::<InternalCause>() {
        app.count_failure(cause);
        if response.status() == StatusCode::SERVICE_UNAVAILABLE {
            tracing::warn!(%method, %path, error = format!("{cause:#}"), "dependency unavailable");
        } else {
            tracing::error!(%method, %path, error = format!("{cause:#}"), "internal error");
        }
    }
    response
}

/// While the database's breaker is open (`storage::Breaker`), a page that
/// needs the database answers 503 at once, counted (`requests_shed`) but not
/// logged: the breaker said once that the database is down.
pub async fn fail_fast_page(State(app): AppState, request: Request, next: Next) -> Response {
    if app.breaker.is_open() {
        app.metrics.requests_shed.inc();
        return unavailable_page();
    }
    next.run(request).await
}

/// `fail_fast_page` for the endpoints that answer clients in JSON:
/// `temporarily_unavailable`.
pub async fn fail_fast_json(State(app): AppState, request: Request, next: Next) -> Response {
    if app.breaker.is_open() {
        app.metrics.requests_shed.inc();
        return oauth_json(&OAuthError::temporarily_unavailable());
    }
    next.run(request).await
}

/// The endpoints that answer clients in JSON, not people in pages.
fn answers_json(path: &str) -> bool {
    [
        "/token",
        "/par",
        "/introspect",
        "/revoke",
        "/userinfo",
        "/register",
    ]
    .iter()
    .any(|prefix| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }) || path.starts_with("/.well-known/")
        || path == "/jwks.json"
}

/// A request cut off by the layers before any handler answers — too slow
/// (`request_timeout`: 408, empty), too large (413, a line of plain text),
/// without its one `Host` or unreadable to an extractor (400) — gets what
/// every other error gets: a page for a person, an OAuth error in JSON for
/// a client (`invalid_request`).
pub async fn explain_cut_requests(request: Request, next: Next) -> Response {
    let json = answers_json(request.uri().path());
    let locale = super::locale::of_headers(request.headers());
    let up_front = refused_up_front(&request);
    let response = match up_front {
        Some(status) => status.into_response(),
        None => next.run(request).await,
    };
    let status = response.status();
    let explained = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json") || t.starts_with("text/html"));
    if explained
        || !matches!(
            status,
            StatusCode::REQUEST_TIMEOUT | StatusCode::PAYLOAD_TOO_LARGE | StatusCode::BAD_REQUEST
        )
    {
        return response;
    }
    let too_slow = status == StatusCode::REQUEST_TIMEOUT;
    // A plain 400: the Host refused above, or an extractor's English text.
    let unreadable = status == StatusCode::BAD_REQUEST;
    if json {
        let description = if too_slow {
            "the request took too long to arrive"
        } else if up_front == Some(StatusCode::BAD_REQUEST) {
            "an HTTP/1.1 request needs exactly one Host header"
        } else if unreadable {
            "the request could not be read"
        } else {
            "the request body is too large"
        };
        let mut answer = oauth_json(&OAuthError::new(ErrorCode::InvalidRequest, description));
        *answer.status_mut() = status;
        return answer;
    }
    let (title, message) = if too_slow {
        (
            "Délai dépassé",
            "La demande a mis trop de temps à arriver. Vérifiez votre connexion et réessayez.",
        )
    } else if unreadable {
        (
            "Requête invalide",
            "Cette demande n'a pas pu être lue. Revenez à la page précédente et réessayez.",
        )
    } else {
        TOO_LARGE
    };
    locale.sync_scope(|| pages::message(status, title, message, None))
}

/// What is refused before any layer reads the request: an HTTP/1.1 request
/// without exactly one `Host` (RFC 9112 §3.2: 400), and a body announced
/// longer than [`super::MAX_BODY`] (413 at once, rather than holding the
/// connection until the request timeout for a body never sent). The
/// school's file, up to 8 MiB, is the import page's to refuse, with what to
/// do.
fn refused_up_front(request: &Request) -> Option<StatusCode> {
    let headers = request.headers();
    if request.version() == axum::http::Version::HTTP_11
        && headers.get_all(header::HOST).iter().count() != 1
    {
        return Some(StatusCode::BAD_REQUEST);
    }
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())?;
    let path = request.uri().path();
    let import = path.starts_with("/etablissement/") && path.ends_with("/import");
    (!import && announced > super::MAX_BODY as u64).then_some(StatusCode::PAYLOAD_TOO_LARGE)
}
