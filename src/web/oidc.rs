//! HTTP side of the OpenID Connect endpoints.

use axum::Json;
use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::percent_decode_str;

use super::error::{WebError, oauth_json};
use super::extract::{AuthorizationParams, ClientAddress, Form, MaybeSession, Unreadable};
use super::locale::{self, Locale};
use super::pages::no_store;
use super::redirect::{as_get, rejection_response, respond, to_consent};
use super::{AppState, cookies, login};
use crate::accounts::throttle::Gate;
use crate::app::Clef;
use crate::domain::Params;
use crate::oidc::authorize::{self, AuthorizeOutcome, Rejection};
use crate::oidc::clients::Client;
use crate::oidc::session::Session;
use crate::oidc::token::{self, ClientCredentials};
use crate::oidc::{ErrorCode, OAuthError};
use crate::oidc::{introspection, request_object};

fn json_document(body: &str, max_age: &'static str) -> Response {
    let mut response = (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_owned(),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(max_age));
    response
}

pub async fn discovery(State(app): AppState) -> Response {
    json_document(&app.discovery_json, "public, max-age=3600")
}

pub async fn jwks(State(app): AppState) -> Response {
    // The current key set's JSON, shared rather than copied. Cached for less
    // than a new key waits before it signs (keys::PUBLICATION_DELAY).
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static(crate::keys::JWKS_CACHE_CONTROL),
            ),
        ],
        app.keys.jwks_body(),
    )
        .into_response()
}

/// `GET /authorize`.
pub async fn authorize(
    State(app): AppState,
    MaybeSession(session): MaybeSession,
    jar: CookieJar,
    AuthorizationParams(params): AuthorizationParams,
) -> Result<Response, WebError> {
    match params {
        Ok(params) => authorize_with(&app, session, jar, params).await,
        Err(unreadable) => unreadable_request(&app, unreadable).await,
    }
}

/// A request whose parameters could not be read (undecodable, repeated,
/// too long): `invalid_request` goes back to the client when what is left
/// of it names a client and one of its registered redirect URIs (RFC 6749
/// §4.1.2.1); else the person gets a page.
async fn unreadable_request(app: &Clef, unreadable: Unreadable) -> Result<Response, WebError> {
    let error = OAuthError::invalid_request(unreadable.error.wire_description());
    match authorize::early_rejection(app, &unreadable.left, error).await {
        Rejection::Shown(_) => Err(unreadable.error.into()),
        rejection => rejection_response(rejection),
    }
}

/// `POST /authorize` (OIDC Core §3.1.2.1), from a relying party's page on its
/// own site: the browser keeps the `SameSite=Lax` session cookie off a
/// cross-site POST, so a signed-in person would be asked to sign in again
/// (and `prompt=none` answered `login_required`). Without the cookie, the
/// same request as a top-level GET, which carries it (unless too long for an
/// address: then answered as posted).
pub async fn authorize_posted(
    State(app): AppState,
    MaybeSession(session): MaybeSession,
    jar: CookieJar,
    AuthorizationParams(params): AuthorizationParams,
) -> Result<Response, WebError> {
    let params = match params {
        Ok(params) => params,
        Err(unreadable) => return unreadable_request(&app, unreadable).await,
    };
    if cookies::session_token(&app, &jar).is_none()
        && let Some(again) = as_get("/authorize", &params)
    {
        return Ok(again);
    }
    authorize_with(&app, session, jar, params).await
}

async fn authorize_with(
    app: &Clef,
    session: Option<Session>,
    jar: CookieJar,
    params: Params,
) -> Result<Response, WebError> {
    let params = match request_object::resolve(app, params.clone()).await {
        Ok(resolved) => resolved,
        Err(e) => return rejection_response(authorize::early_rejection(app, &params, e).await),
    };
    // `ui_locales` inside a request object or a pushed request: the pages of
    // the flow speak it too (the locale middleware reads only the plain
    // parameters).
    let asked = params.get("ui_locales").and_then(Locale::from_ui_locales);
    match asked.filter(|asked| *asked != locale::current()) {
        Some(asked) => {
            let response = asked
                .scope(answer_authorize(app, session, jar, params))
                .await?;
            Ok(locale::remember_flow(app, asked, response))
        }
        None => answer_authorize(app, session, jar, params).await,
    }
}

/// `/authorize` once its parameters are known.
async fn answer_authorize(
    app: &Clef,
    session: Option<Session>,
    jar: CookieJar,
    params: Params,
) -> Result<Response, WebError> {
    let (request, client) = match authorize::validate(app, &params).await {
        Ok(valid) => valid,
        Err(rejection) => return rejection_response(rejection),
    };
    match authorize::proceed(app, request.clone(), session.as_ref()).await {
        AuthorizeOutcome::Permitted(response) => Ok(respond(&response, StatusCode::FOUND)),
        AuthorizeOutcome::LoginRequired { pending_id } => {
            let hint = request.login_hint.as_deref().unwrap_or("");
            let page = login::FormPage {
                pending: Some(&pending_id),
                client_name: Some(&client.name),
                identifier: hint,
                leads_to: Some(request.redirect_uri.as_str()),
                ..login::FormPage::default()
            };
            Ok(login::form_page(app, jar, page))
        }
        AuthorizeOutcome::AccountChoice { pending_id } => {
            // An account that may no longer sign in (closed, grouped) is
            // not offered: the login form alone.
            let signed_in_as = match authorize::parked(app, &pending_id).await? {
                Some(parked) => login::offered_account(app, &parked, session.as_ref()).await?,
                None => None,
            };
            let page = login::FormPage {
                pending: Some(&pending_id),
                client_name: Some(&client.name),
                signed_in_as: signed_in_as.as_deref(),
                leads_to: Some(request.redirect_uri.as_str()),
                ..login::FormPage::default()
            };
            Ok(login::form_page(app, jar, page))
        }
        AuthorizeOutcome::ConsentRequired { pending_id } => Ok(to_consent(&pending_id)),
        AuthorizeOutcome::Rejected(rejection) => rejection_response(rejection),
    }
}

/// The credentials of an `Authorization` value in `scheme`, whose name is
/// matched without case (RFC 9110 §11.1): `Basic abc`, `BASIC abc`.
pub(super) fn credentials<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let (name, rest) = value.trim_start().split_once(' ')?;
    name.eq_ignore_ascii_case(scheme).then(|| rest.trim())
}

/// RFC 6749 §2.3.1: `Authorization: Basic` with form-encoded id and secret.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return match headers.contains_key(header::AUTHORIZATION) {
            // Two: which one would authenticate? Neither (RFC 6749 §3.2.1).
            true => Err(OAuthError::invalid_request(
                "the Authorization header is repeated",
            )),
            false => Ok(None),
        };
    };
    let invalid = || OAuthError::invalid_client("malformed Basic credentials");
    let value = value.to_str().map_err(|_| invalid())?;
    let encoded = credentials(value, "Basic").ok_or_else(invalid)?;
    let decoded = STANDARD.decode(encoded).map_err(|_| invalid())?;
    let decoded = String::from_utf8(decoded).map_err(|_| invalid())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(invalid)?;
    let form_decode = |s: &str| {
        percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| invalid())
    };
    Ok(Some((form_decode(id)?, form_decode(secret)?)))
}

/// A client authenticated at the token, revocation or introspection endpoint
/// (RFC 6749 §2.3), with the rest of its form.
pub struct AuthenticatedClient {
    client: Arc<Client>,
    params: Params,
}

impl FromRequest<Arc<Clef>> for AuthenticatedClient {
    type Rejection = Response;

    async fn from_request(request: Request, app: &Arc<Clef>) -> Result<Self, Response> {
        use axum::extract::FromRequestParts;
        let (mut parts, body) = request.into_parts();
        let Ok(ClientAddress(address)) = ClientAddress::from_request_parts(&mut parts, app).await;
        let request = Request::from_parts(parts, body);
        // No gate before the check: a school's services behind one NAT
        // address would be locked out by whoever fails there fifty times.
        // Secrets are 32 random bytes, nothing to slow down; failures past
        // the limit get 429 instead of 401 (`client_auth_failed`).
        let basic = basic_credentials(request.headers());
        let Ok(Form(params)) = Form::from_request(request, app).await;
        let params =
            params.map_err(|e| oauth_json(&OAuthError::invalid_request(e.wire_description())))?;
        let basic = basic.map_err(|e| with_basic_challenge(oauth_json(&e)))?;
        let credentials = ClientCredentials {
            basic,
            params: &params,
        };
        match token::authenticate_client(app, credentials).await {
            Ok(client) => Ok(Self { client, params }),
            // A 401 names a scheme to authenticate with (RFC 9110 §15.5.2),
            // whichever method failed.
            Err(e) if e.code == ErrorCode::InvalidClient => {
                let refused = with_basic_challenge(oauth_json(&e));
                Err(client_auth_failed(app, address, ErrorCode::InvalidClient, refused).await)
            }
            Err(e) => Err(oauth_json(&e)),
        }
    }
}

/// Refuses, before anything is read or checked, an address held back after
/// too many failed client authentications (see
/// [`crate::accounts::throttle::CLIENT_AUTH_PER_ADDRESS`]): 429 with `code`
/// (`invalid_client`, or `invalid_token` at /register), or 503 while the
/// store is unavailable.
pub(super) async fn client_auth_gate(
    app: &Clef,
    address: IpAddr,
    code: ErrorCode,
) -> Result<(), Response> {
    match app.throttle.client_auth_gate(address, app.now_ms()).await {
        Ok(Gate::Open) => Ok(()),
        Ok(Gate::Closed { retry_after }) => Err(too_many_failures(code, retry_after)),
        Err(e) => Err(oauth_json(&OAuthError::from(e))),
    }
}

/// Counts a failed client authentication from `address`: `refused` while the
/// address may still try, else 429 with `code` (as [`client_auth_gate`]).
pub(super) async fn client_auth_failed(
    app: &Clef,
    address: IpAddr,
    code: ErrorCode,
    refused: Response,
) -> Response {
    match app.throttle.client_auth_failed(address, app.now_ms()).await {
        Ok(Gate::Open) => refused,
        Ok(Gate::Closed { retry_after }) => too_many_failures(code, retry_after),
        Err(e) => oauth_json(&OAuthError::from(e)),
    }
}

/// 429 once an address failed client authentication too often: `code` as
/// JSON, with Retry-After.
fn too_many_failures(code: ErrorCode, retry_after: u64) -> Response {
    let e = OAuthError::new(
        code,
        "too many failed client authentications from this address; retry later",
    );
    let mut response = oauth_json(&e);
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after.max(1)));
    response
}

/// JSON that no cache keeps (tokens, introspection).
fn no_store_json(body: impl serde::Serialize) -> Response {
    let mut response = Json(body).into_response();
    no_store(&mut response);
    response
}

/// `POST /token`.
pub async fn token(State(app): AppState, caller: AuthenticatedClient) -> Response {
    let answer = async {
        let request = token::TokenRequest::parse(&caller.params)?;
        token::exchange(&app, &caller.client, request).await
    };
    match answer.await {
        Ok(tokens) => no_store_json(tokens),
        Err(e) => oauth_json(&e),
    }
}

/// `POST /par` (RFC 9126): a client pushes its authorization request (plain
/// parameters or a request object); it is checked as `/authorize` would, and
/// kept a minute under the `request_uri` the answer gives.
pub async fn par(State(app): AppState, caller: AuthenticatedClient) -> Response {
    if caller.params.contains("request_uri") {
        return oauth_json(&OAuthError::invalid_request("request_uri cannot be pushed"));
    }
    if caller
        .params
        .get("client_id")
        .is_some_and(|id| id != caller.client.id)
    {
        return oauth_json(&OAuthError::invalid_request(
            "client_id differs from the authenticated client",
        ));
    }
    let pairs = caller
        .params
        .pairs()
        .filter(|(name, _)| {
            !matches!(
                *name,
                "client_id" | "client_secret" | "client_assertion" | "client_assertion_type"
            )
        })
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .chain([("client_id".to_owned(), caller.client.id.clone())]);
    let params = match Params::from_pairs(pairs) {
        Ok(params) => params,
        Err(e) => return oauth_json(&OAuthError::invalid_request(e.wire_description())),
    };
    let params = match request_object::resolve(&app, params).await {
        Ok(params) => params,
        Err(e) => return oauth_json(&e),
    };
    match authorize::validate(&app, &params).await {
        Ok(_) => match request_object::push(&app, &caller.client, &params).await {
            Ok(request_uri) => {
                let mut response = (
                    StatusCode::CREATED,
                    Json(serde_json::json!({
                        "request_uri": request_uri,
                        "expires_in": request_object::PAR_TTL,
                    })),
                )
                    .into_response();
                no_store(&mut response);
                response
            }
            Err(e) => oauth_json(&OAuthError::from(e)),
        },
        Err(Rejection::Shown(e)) => oauth_json(&e),
        Err(Rejection::Returned(answer)) => {
            let value = |name: &str| {
                answer
                    .params
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            let mut response = (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({
                    "error": value("error"),
                    "error_description": value("error_description"),
                })),
            )
                .into_response();
            no_store(&mut response);
            response
        }
        Err(Rejection::Internal(e)) => oauth_json(&OAuthError::from(e)),
    }
}

/// `POST /introspect` (RFC 7662).
pub async fn introspect(State(app): AppState, caller: AuthenticatedClient) -> Response {
    // RFC 7662 §2.1: the caller is authorised, so tokens cannot be scanned
    // by whoever knows a public client's id.
    if caller.client.is_public {
        return with_basic_challenge(oauth_json(&OAuthError::invalid_client(
            "introspection needs a client that authenticates",
        )));
    }
    let Some(token) = caller.params.get("token") else {
        return oauth_json(&OAuthError::invalid_request("token is missing"));
    };
    match introspection::introspect(&app, &caller.client, token).await {
        Ok(answer) => no_store_json(answer),
        Err(e) => oauth_json(&e),
    }
}

/// `POST /revoke` (RFC 7009): 200 whether or not the token was valid (§2.2);
/// another client's token is refused (§2.1).
pub async fn revoke(State(app): AppState, caller: AuthenticatedClient) -> Response {
    let Some(token) = caller.params.get("token") else {
        return oauth_json(&OAuthError::invalid_request("token is missing"));
    };
    match introspection::revoke(&app, &caller.client, token).await {
        Ok(()) => no_store_json(serde_json::json!({})),
        Err(e) => oauth_json(&e),
    }
}

/// RFC 6749 §5.2: a failed Basic authentication answers with the challenge.
fn with_basic_challenge(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"clef\""),
    );
    response
}

/// RFC 6750 §3.1: a request whose access token is malformed is 400
/// `invalid_request`, with the Bearer challenge naming the error.
fn malformed_bearer(description: &'static str) -> Response {
    let mut response = oauth_json(&OAuthError::invalid_request(description));
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"clef\", error=\"invalid_request\""),
    );
    response
}

pub async fn userinfo(
    State(app): AppState,
    headers: HeaderMap,
    request: axum::extract::Request,
) -> Response {
    // RFC 6750 §2.1 (header) or §2.2 (form body), never both (§2: "MUST
    // NOT use more than one method"); never the query string.
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    // `Bearer` with no token is a malformed request (RFC 6750 §3.1: 400
    // invalid_request), not a request without credentials.
    if authorization.is_some_and(|v| {
        v.trim().eq_ignore_ascii_case("bearer") || credentials(v, "Bearer") == Some("")
    }) {
        return malformed_bearer("the Bearer scheme is sent without a token");
    }
    let from_header = authorization
        .and_then(|v| credentials(v, "Bearer"))
        .map(str::to_owned);
    let from_body = if request.method() == axum::http::Method::POST {
        use axum::extract::FromRequest;
        match Form::from_request(request, &app).await {
            Ok(Form(Ok(params))) => params.get("access_token").map(str::to_owned),
            _ => None,
        }
    } else {
        None
    };
    let access_token = match (from_header, from_body) {
        (Some(_), Some(_)) => {
            return malformed_bearer("the access token is sent in more than one way");
        }
        (Some(token), None) | (None, Some(token)) => token,
        (None, None) => {
            let mut response = StatusCode::UNAUTHORIZED.into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"clef\""),
            );
            return response;
        }
    };
    match token::userinfo(&app, &access_token).await {
        Ok(token::UserInfo::Json(claims)) => {
            let mut response = Json(claims).into_response();
            no_store(&mut response);
            response
        }
        Ok(token::UserInfo::Signed(jwt)) => {
            let mut response = ([(header::CONTENT_TYPE, "application/jwt")], jwt).into_response();
            no_store(&mut response);
            response
        }
        Err(e)
            if matches!(
                e.code,
                ErrorCode::InvalidToken | ErrorCode::InsufficientScope
            ) =>
        {
            let mut response = oauth_json(&e);
            let challenge = format!(
                "Bearer realm=\"clef\", error=\"{}\", error_description=\"{}\"",
                e.code.as_str(),
                e.description
            );
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, value);
            }
            response
        }
        Err(e) => oauth_json(&e),
    }
}
