//! The authorization endpoint's logic (RFC 6749 §4.1.1, OIDC Core §3.1.2, RFC 7636).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::clients::{self, Client};
use super::consent;
use super::grants::{Awaiting, CodeGrant, Pending};
use super::logout::IdTokenHint;
use super::session::Session;
use super::{ErrorCode, OAuthError, Scopes};
use crate::accounts::store as accounts;
use crate::app::Clef;
use crate::audit;
use crate::domain::{Params, RedirectUri};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    Query,
    FormPost,
}

/// A validated authorization request, kept in the short-lived store while the
/// person logs in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    pub client_id: String,
    pub redirect_uri: RedirectUri,
    pub response_mode: ResponseMode,
    pub scopes: Scopes,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt_none: bool,
    pub prompt_login: bool,
    /// `prompt=consent`: ask even if consent was given before (OIDC Core §3.1.2.1).
    #[serde(default)]
    pub prompt_consent: bool,
    /// `prompt=select_account`: a person signed in chooses between going on
    /// with that account and signing in with another (OIDC Core §3.1.2.1).
    #[serde(default)]
    pub prompt_select_account: bool,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// The `sub` of a verified `id_token_hint`, or of a `sub` claim request
    /// with a value: only that person may be signed in.
    #[serde(default)]
    pub hint_subject: Option<String>,
}

impl AuthorizationRequest {
    /// The request as an `/authorize` URL, to start it again later (after an
    /// email confirmation, say) without `prompt`, which belonged to the moment.
    /// The person it names stays named: the subject of its `id_token_hint`
    /// as a `sub` claim request (OIDC Core §5.5.1), its `login_hint`; and its
    /// `max_age`.
    pub fn authorize_url(&self, issuer: &str) -> String {
        let mut url = match url::Url::parse(&format!("{issuer}/authorize")) {
            Ok(url) => url,
            Err(_) => return format!("{issuer}/authorize"),
        };
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("response_type", "code");
            query.append_pair("client_id", &self.client_id);
            query.append_pair("redirect_uri", self.redirect_uri.as_str());
            query.append_pair("scope", &self.scopes.to_wire());
            if let Some(state) = &self.state {
                query.append_pair("state", state);
            }
            if let Some(nonce) = &self.nonce {
                query.append_pair("nonce", nonce);
            }
            if let Some(challenge) = &self.code_challenge {
                query.append_pair("code_challenge", challenge);
                query.append_pair("code_challenge_method", "S256");
            }
            if self.response_mode == ResponseMode::FormPost {
                query.append_pair("response_mode", "form_post");
            }
            if let Some(max_age) = self.max_age {
                query.append_pair("max_age", &max_age.to_string());
            }
            if let Some(hint) = &self.login_hint {
                query.append_pair("login_hint", hint);
            }
            if let Some(subject) = &self.hint_subject {
                let claims = serde_json::json!({ "id_token": { "sub": { "value": subject } } });
                query.append_pair("claims", &claims.to_string());
            }
        }
        url.into()
    }
}

/// Where the browser goes next: back to the client with parameters, by
/// redirect (`query`) or by an auto-submitted form (`form_post`).
#[derive(Debug, Clone)]
pub struct Response {
    pub redirect_uri: RedirectUri,
    pub mode: ResponseMode,
    pub params: Vec<(&'static str, String)>,
}

impl Response {
    pub fn location(&self) -> String {
        let params: Vec<(&str, &str)> = self.params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.redirect_uri.with_params(&params)
    }
}

/// Why an authorization request stops.
#[derive(Debug)]
pub enum Rejection {
    /// RFC 6749 §4.1.2.1: the client or redirect URI cannot be trusted, so the
    /// error is shown to the person and never redirected.
    Shown(OAuthError),
    /// Any other error goes back to the client.
    Returned(Response),
    Internal(anyhow::Error),
}

impl From<anyhow::Error> for Rejection {
    fn from(e: anyhow::Error) -> Self {
        Self::Internal(e)
    }
}

impl From<sqlx::Error> for Rejection {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}

/// Validates the request. Client and redirect URI first (errors shown), then
/// the rest (errors returned to the client).
pub async fn validate(
    app: &Clef,
    params: &Params,
) -> Result<(AuthorizationRequest, Arc<Client>), Rejection> {
    let shown =
        |description: &'static str| Rejection::Shown(OAuthError::invalid_request(description));
    let client_id = params
        .get("client_id")
        .ok_or_else(|| shown("client_id is missing"))?;
    let client = match app.clients.find(&app.db, client_id).await? {
        Some(client) => client,
        None => {
            return Err(Rejection::Shown(OAuthError::invalid_client(
                "unknown client_id",
            )));
        }
    };
    // OIDC Core §3.1.2.1: redirect_uri is required and must match a registered one exactly.
    let redirect_uri = params
        .get("redirect_uri")
        .ok_or_else(|| shown("redirect_uri is missing"))?;
    let redirect_uri = client
        .registered_redirect_uri(redirect_uri)
        .ok_or_else(|| shown("redirect_uri is not registered for this client"))?;

    let state = params.get("state").map(str::to_owned);
    let response_mode = response_mode(params);
    let returned = |mode: ResponseMode, error: OAuthError| {
        Rejection::Returned(error_response(
            app,
            &redirect_uri,
            mode,
            state.as_deref(),
            &error,
        ))
    };
    let response_mode = response_mode.map_err(|e| returned(ResponseMode::Query, e))?;
    let requesting = RequestingClient::from(&*client);
    let mut request = parse_rest(
        params,
        requesting,
        &redirect_uri,
        response_mode,
        state.clone(),
    )
    .map_err(|e| returned(response_mode, e))?;
    // OIDC Core §3.1.2.1: an ID token Clef issued to this client names who
    // should be signed in.
    if let Some(raw) = params.get("id_token_hint") {
        let hint = IdTokenHint::verify(app, raw)
            .filter(|hint| hint.client_id == client.id)
            .ok_or_else(|| {
                let error = OAuthError::invalid_request(
                    "id_token_hint was not issued to this client by Clef",
                );
                returned(response_mode, error)
            })?;
        if request
            .hint_subject
            .as_ref()
            .is_some_and(|claimed| *claimed != hint.subject)
        {
            let error = OAuthError::invalid_request(
                "the claims request and id_token_hint name different subs",
            );
            return Err(returned(response_mode, error));
        }
        request.hint_subject = Some(hint.subject);
    }
    Ok((request, client))
}

/// A request whose parameters could not even be read (a bad request object
/// or request_uri): the error goes back to the client when the query names a
/// client and one of its registered redirect URIs, and is shown otherwise.
pub async fn early_rejection(app: &Clef, params: &Params, error: OAuthError) -> Rejection {
    let client = match params.get("client_id") {
        Some(id) => match clients::find(&app.db, id).await {
            Ok(client) => client,
            Err(e) => return Rejection::Internal(e.into()),
        },
        None => None,
    };
    let redirect_uri = client.as_ref().and_then(|client| {
        params
            .get("redirect_uri")
            .and_then(|uri| client.registered_redirect_uri(uri))
    });
    match redirect_uri {
        Some(uri) => {
            let mode = match params.get("response_mode") {
                Some("form_post") => ResponseMode::FormPost,
                _ => ResponseMode::Query,
            };
            Rejection::Returned(error_response(app, &uri, mode, params.get("state"), &error))
        }
        None => Rejection::Shown(error),
    }
}

/// Whether the session's account is someone else than the hint names.
fn hint_mismatch(
    app: &Clef,
    client: &Client,
    request: &AuthorizationRequest,
    session: &Session,
) -> bool {
    request
        .hint_subject
        .as_ref()
        .is_some_and(|subject| *subject != app.subjects.of(client, &session.account_id))
}

/// `response_mode`: `query` when absent (RFC 6749 §4.1.2), or `form_post`.
pub fn response_mode(params: &Params) -> Result<ResponseMode, OAuthError> {
    match params.get("response_mode") {
        None | Some("query") => Ok(ResponseMode::Query),
        Some("form_post") => Ok(ResponseMode::FormPost),
        Some(_) => Err(OAuthError::invalid_request("unsupported response_mode")),
    }
}

/// What of the client the reading of its request depends on.
#[derive(Debug, Clone, Copy)]
pub struct RequestingClient<'a> {
    pub id: &'a str,
    pub is_public: bool,
    /// Whether it may use the code flow (`authorization_code` among its grants).
    pub code_flow: bool,
    /// The `max_age` of a request that carries none.
    pub default_max_age: Option<i64>,
}

impl<'a> From<&'a Client> for RequestingClient<'a> {
    fn from(client: &'a Client) -> Self {
        Self {
            id: &client.id,
            is_public: client.is_public,
            code_flow: client.grant_types.authorization_code,
            default_max_age: client.default_max_age,
        }
    }
}

/// The parameters after the client and its redirect URI, read without any
/// store (so fuzzed: `fuzz/fuzz_targets/authorize_request.rs`).
pub fn parse_rest(
    params: &Params,
    client: RequestingClient<'_>,
    redirect_uri: &RedirectUri,
    response_mode: ResponseMode,
    state: Option<String>,
) -> Result<AuthorizationRequest, OAuthError> {
    // Request objects and request_uri are resolved before (`request_object`):
    // one left here came from inside a request object.
    if params.contains("request") || params.contains("request_uri") {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequestObject,
            "a request object cannot hold another",
        ));
    }
    if params.contains("registration") {
        return Err(OAuthError::new(
            ErrorCode::RegistrationNotSupported,
            "registration is not supported",
        ));
    }
    if !client.code_flow {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client may not use the code flow",
        ));
    }
    match params.get("response_type") {
        Some("code") => {}
        None => return Err(OAuthError::invalid_request("response_type is missing")),
        Some(_) => {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedResponseType,
                "only the code flow is supported",
            ));
        }
    }
    let scopes = Scopes::parse(params.get("scope"))?;
    let (scopes, claimed_subject) = match params.get("claims") {
        Some(raw) => with_requested_claims(scopes, raw)?,
        None => (scopes, None),
    };
    // OIDC Core §3.1.2.1: display and claims_locales are hints. Every page
    // fits every screen, and the data Clef holds is in French only.
    if let Some(display) = params.get("display")
        && !matches!(display, "page" | "popup" | "touch" | "wap")
    {
        return Err(OAuthError::invalid_request(
            "display is page, popup, touch or wap",
        ));
    }
    let bounded = |name: &'static str, max: usize| -> Result<Option<String>, OAuthError> {
        match params.get(name) {
            Some(v) if v.len() > max => {
                Err(OAuthError::invalid_request(format!("{name} is too long")))
            }
            v => Ok(v.map(str::to_owned)),
        }
    };
    if state.as_ref().is_some_and(|s| s.len() > 2048) {
        return Err(OAuthError::invalid_request("state is too long"));
    }
    let nonce = bounded("nonce", 512)?;
    let login_hint = bounded("login_hint", 256)?;

    // RFC 7636 §4.3, S256 only; public clients must use it (OAuth 2.0 Security BCP §2.1.1).
    let code_challenge = match (
        params.get("code_challenge"),
        params.get("code_challenge_method"),
    ) {
        (Some(challenge), Some("S256")) => {
            let well_formed = challenge.len() == 43
                && challenge
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !well_formed {
                return Err(OAuthError::invalid_request(
                    "code_challenge must be a base64url SHA-256",
                ));
            }
            Some(challenge.to_owned())
        }
        (Some(_), _) => {
            return Err(OAuthError::invalid_request(
                "code_challenge_method must be S256",
            ));
        }
        (None, Some(_)) => return Err(OAuthError::invalid_request("code_challenge is missing")),
        (None, None) if client.is_public => {
            return Err(OAuthError::invalid_request(
                "PKCE (S256) is required for public clients",
            ));
        }
        (None, None) => None,
    };

    let prompts: Vec<&str> = params
        .get("prompt")
        .unwrap_or("")
        .split(' ')
        .filter(|p| !p.is_empty())
        .collect();
    if let Some(unknown) = prompts
        .iter()
        .find(|p| !matches!(**p, "none" | "login" | "consent" | "select_account"))
    {
        return Err(OAuthError::invalid_request(format!(
            "unsupported prompt value {unknown}"
        )));
    }
    let prompt_none = prompts.contains(&"none");
    if prompt_none && prompts.len() > 1 {
        // OIDC Core §3.1.2.1: none with any other value is an error.
        return Err(OAuthError::invalid_request(
            "prompt=none cannot be combined",
        ));
    }
    // A request without `max_age` takes the client's registered default.
    let max_age = match params.get("max_age") {
        None => client.default_max_age,
        Some(raw) => match raw.parse::<i64>() {
            Ok(v) if v >= 0 && raw.len() <= 10 => Some(v),
            _ => {
                return Err(OAuthError::invalid_request(
                    "max_age must be a non-negative integer",
                ));
            }
        },
    };
    Ok(AuthorizationRequest {
        client_id: client.id.to_owned(),
        redirect_uri: redirect_uri.clone(),
        response_mode,
        scopes,
        state,
        nonce,
        code_challenge,
        prompt_none,
        prompt_login: prompts.contains(&"login"),
        prompt_consent: prompts.contains(&"consent"),
        prompt_select_account: prompts.contains(&"select_account"),
        max_age,
        login_hint,
        hint_subject: claimed_subject,
    })
}

/// OIDC Core §5.5: the `claims` parameter. Each standard claim asked for, in
/// the ID token or at UserInfo, brings its scope into the request (and so
/// onto the consent screen). Clef issues no `acr`: an essential `acr` with
/// required values cannot be met, which is a failed authentication (§5.5.1.1).
/// A `sub` with a `value` names who must be signed in (§5.5.1: the answer may
/// not be about anyone else), as an `id_token_hint` does; two different
/// values are a request no one can answer.
fn with_requested_claims(
    scopes: Scopes,
    raw: &str,
) -> Result<(Scopes, Option<String>), OAuthError> {
    let invalid = || OAuthError::invalid_request("claims must be a JSON object of claim requests");
    let request: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(raw).map_err(|_| invalid())?;
    let mut wanted: Vec<&str> = scopes.iter().collect();
    let mut subject: Option<&str> = None;
    for (target, claims) in &request {
        if !matches!(target.as_str(), "id_token" | "userinfo") {
            continue;
        }
        let claims = claims.as_object().ok_or_else(invalid)?;
        for (name, spec) in claims {
            if !(spec.is_null() || spec.is_object()) {
                return Err(invalid());
            }
            if name == "acr"
                && spec.get("essential").and_then(serde_json::Value::as_bool) == Some(true)
                && (spec.get("value").is_some() || spec.get("values").is_some())
            {
                return Err(OAuthError::new(
                    ErrorCode::AccessDenied,
                    "the requested acr cannot be met",
                ));
            }
            if name == "sub"
                && let Some(value) = spec.get("value")
            {
                let value = value
                    .as_str()
                    .ok_or_else(|| OAuthError::invalid_request("the sub value must be a string"))?;
                if subject.is_some_and(|other| other != value) {
                    return Err(OAuthError::invalid_request(
                        "the claims request names two different subs",
                    ));
                }
                subject = Some(value);
            }
            if let Some(scope) = super::claims::scope_of(name) {
                wanted.push(scope);
            }
        }
    }
    Ok((Scopes::known(wanted), subject.map(str::to_owned)))
}

/// Whether the person must (re-)enter their password for this request.
/// `max_age=0` asks for a login at this very request (OIDC Core §3.1.2.1),
/// like `prompt=login`: a session opened earlier in the same second is no answer.
pub fn needs_login(request: &AuthorizationRequest, session: Option<&Session>, now: i64) -> bool {
    match session {
        None => true,
        Some(session) => {
            request.prompt_login
                || request
                    .max_age
                    .is_some_and(|max_age| max_age == 0 || now - session.auth_time > max_age)
        }
    }
}

/// What the authorization endpoint answers (kanidm's `AuthoriseResponse`).
#[derive(Debug)]
pub enum AuthorizeOutcome {
    /// Show the login form for the request parked under this id.
    LoginRequired { pending_id: String },
    /// Offer the person signed in to go on with their account, or to sign in
    /// with another, for the request parked under this id.
    AccountChoice { pending_id: String },
    /// Ask the person's consent for the request parked under this id.
    ConsentRequired { pending_id: String },
    /// Back to the client with a code.
    Permitted(Response),
    /// Back to the client with an error, or a page when it cannot be trusted.
    Rejected(Rejection),
}

impl From<Result<AuthorizeOutcome, Rejection>> for AuthorizeOutcome {
    fn from(result: Result<AuthorizeOutcome, Rejection>) -> Self {
        result.unwrap_or_else(AuthorizeOutcome::Rejected)
    }
}

/// A validated request, arriving with or without a session.
pub async fn proceed(
    app: &Clef,
    request: AuthorizationRequest,
    session: Option<&Session>,
) -> AuthorizeOutcome {
    // Kept to answer an internal failure: the redirect URI is trusted by now.
    let reply = (
        request.redirect_uri.clone(),
        request.response_mode,
        request.state.clone(),
    );
    let outcome = async {
        let now = app.now();
        let other_person = match (session, &request.hint_subject) {
            (Some(session), Some(_)) => {
                match app.clients.find(&app.db, &request.client_id).await? {
                    Some(client) => hint_mismatch(app, &client, &request, session),
                    None => false,
                }
            }
            _ => false,
        };
        let session = match session {
            Some(session) if !other_person && !needs_login(&request, Some(session), now) => session,
            _ => {
                if request.prompt_none {
                    let why = match session {
                        None => "no active session",
                        Some(_) if other_person => {
                            "the person signed in is not the one the request names"
                        }
                        Some(_) => "the sign-in is older than max_age allows",
                    };
                    let error = OAuthError::new(ErrorCode::LoginRequired, why);
                    return Ok(returned(app, &request, &error));
                }
                let pending = Pending {
                    request,
                    stale_sid: session.map(|s| s.sid.clone()),
                    stale_authentication: session.map(|s| s.authentication.clone()),
                    awaiting: Awaiting::Login,
                    parked_at: now,
                };
                let pending_id = app.pending.park(&pending).await?;
                return Ok(AuthorizeOutcome::LoginRequired { pending_id });
            }
        };
        if request.prompt_select_account {
            let pending = Pending {
                request,
                stale_sid: Some(session.sid.clone()),
                stale_authentication: Some(session.authentication.clone()),
                awaiting: Awaiting::Account,
                parked_at: now,
            };
            let pending_id = app.pending.park(&pending).await?;
            return Ok(AuthorizeOutcome::AccountChoice { pending_id });
        }
        answer(app, request, session, None).await
    }
    .await;
    match outcome {
        // RFC 6749 §4.1.2.1: `server_error` or `temporarily_unavailable` go
        // back to the client like any other error once its redirect URI is
        // known, so a silent (`prompt=none`) request in a hidden frame ends
        // too, and the service can tell its user to come back later.
        Err(Rejection::Internal(cause)) => {
            tracing::error!(error = format!("{cause:#}"), "authorization request failed");
            app.count_failure(&cause);
            let error = OAuthError::from_internal(cause);
            let (redirect_uri, mode, state) = reply;
            let response = error_response(app, &redirect_uri, mode, state.as_deref(), &error);
            AuthorizeOutcome::Rejected(Rejection::Returned(response))
        }
        other => other.into(),
    }
}

/// A parked request as the pages that show it read it.
pub struct Parked {
    pub request: AuthorizationRequest,
    /// The session whose person it offers to go on (`prompt=select_account`).
    offered_sid: Option<String>,
}

impl Parked {
    /// Whether it offers `session`'s person to go on, as its page did.
    pub fn offers(&self, session: &Session) -> bool {
        self.offered_sid.as_deref() == Some(session.sid.as_str())
    }
}

/// The request parked under `pending_id`, if it has not expired.
pub async fn parked(app: &Clef, pending_id: &str) -> anyhow::Result<Option<Parked>> {
    Ok(app.pending.get(pending_id).await?.map(|pending| Parked {
        offered_sid: pending
            .stale_sid
            .filter(|_| pending.awaiting == Awaiting::Account),
        request: pending.request,
    }))
}

/// The request parked under `pending_id`, taken, if `session` is the one it
/// waits on; else it is put back as it was.
async fn take_for(
    app: &Clef,
    pending_id: &str,
    session: &Session,
) -> anyhow::Result<Option<Pending>> {
    let Some(pending) = app.pending.take(pending_id).await? else {
        return Ok(None);
    };
    if pending.stale_sid.as_deref() != Some(session.sid.as_str()) {
        put_back(app, pending_id, &pending).await?;
        return Ok(None);
    }
    Ok(Some(pending))
}

/// A parked request taken by a session that may not answer it goes back as
/// it was, so that no one else can wipe it; a consent's answered trace (a
/// minute, for a double-click) is let go rather than kept half an hour.
async fn put_back(app: &Clef, pending_id: &str, pending: &Pending) -> anyhow::Result<()> {
    if matches!(pending.awaiting, Awaiting::Answered { .. }) {
        return Ok(());
    }
    app.pending.repark(pending_id, pending).await
}

/// After a login: the parked request goes on with the new session. `None`:
/// nothing is parked under that id (expired, or answered already).
pub async fn resume(app: &Clef, pending_id: &str, session: &Session) -> Option<AuthorizeOutcome> {
    let result = async {
        let Some(pending) = app.pending.take(pending_id).await? else {
            return Ok(None);
        };
        // Only a password typed since the request was parked answers it
        // (going on with the session offered is `go_on`): in another
        // session, or in the same one, renewed (`session::renew`); not the
        // session that was there, which another page brought here (`GET
        // /continuer` from a link).
        let typed_again = pending.stale_sid.as_deref() != Some(session.sid.as_str())
            || match pending.stale_authentication.as_deref() {
                Some(before) => before != session.authentication,
                // Parked by an instance from before this field: a sign-in
                // in a later second renewed the session.
                None => session.auth_time > pending.parked_at,
            };
        let goes_on = match pending.awaiting {
            Awaiting::Login | Awaiting::Account => {
                typed_again && session.auth_time >= pending.parked_at
            }
            Awaiting::Consent | Awaiting::Answered { .. } => false,
        };
        if !goes_on {
            let error = OAuthError::new(ErrorCode::LoginRequired, "a new login was required");
            return Ok(Some(returned(app, &pending.request, &error)));
        }
        answer(app, pending.request, session, Some(pending_id))
            .await
            .map(Some)
    }
    .await;
    result.unwrap_or_else(|rejection| Some(AuthorizeOutcome::Rejected(rejection)))
}

/// The request parked again under `pending_id`, now waiting for a login:
/// its login form.
async fn login_again(
    app: &Clef,
    pending_id: &str,
    (pending, session): (Pending, &Session),
    now: i64,
) -> Result<AuthorizeOutcome, Rejection> {
    let pending = Pending {
        awaiting: Awaiting::Login,
        parked_at: now,
        stale_authentication: Some(session.authentication.clone()),
        ..pending
    };
    app.pending.repark(pending_id, &pending).await?;
    Ok(AuthorizeOutcome::LoginRequired {
        pending_id: pending_id.to_owned(),
    })
}

/// Whether the sign-in is older than the request's `max_age` allows. A
/// `max_age=0` was met by the login made for this request (`needs_login`).
fn outlived_max_age(request: &AuthorizationRequest, session: &Session, now: i64) -> bool {
    request
        .max_age
        .is_some_and(|max_age| max_age > 0 && now - session.auth_time > max_age)
}

/// Whether `session` may answer `pending`: a sign-in since it was parked
/// always may; an older one only as the request's `prompt=login` and
/// `max_age` allow, now.
fn fresh_enough(pending: &Pending, session: &Session, now: i64) -> bool {
    session.auth_time >= pending.parked_at || !needs_login(&pending.request, Some(session), now)
}

/// « Continuer avec ce compte » (`prompt=select_account`): the session that
/// was offered goes on, if it is still recent enough for the request; else
/// the login form. `None`: nothing offered to this session under that id.
pub async fn go_on(app: &Clef, pending_id: &str, session: &Session) -> Option<AuthorizeOutcome> {
    let result = async {
        let Some(pending) = take_for(app, pending_id, session).await? else {
            return Ok(None);
        };
        match pending.awaiting {
            Awaiting::Account => {}
            // A second click, the first having led to the consent page:
            // answered alike, the consent page still there.
            Awaiting::Consent => {
                app.pending.repark(pending_id, &pending).await?;
                return Ok(Some(AuthorizeOutcome::ConsentRequired {
                    pending_id: pending_id.to_owned(),
                }));
            }
            _ => {
                put_back(app, pending_id, &pending).await?;
                return Ok(None);
            }
        }
        let now = app.now();
        if !fresh_enough(&pending, session, now) {
            return login_again(app, pending_id, (pending, session), now)
                .await
                .map(Some);
        }
        answer(app, pending.request, session, Some(pending_id))
            .await
            .map(Some)
    }
    .await;
    result.unwrap_or_else(|rejection| Some(AuthorizeOutcome::Rejected(rejection)))
}

/// The person's answer on the consent page, and the children it showed them
/// (their account ids: an acceptance of `children` covers those only).
/// `None`: nothing waits for consent under that id.
pub async fn decide(
    app: &Clef,
    pending_id: &str,
    session: &Session,
    (accepted, children_shown): (bool, &[&str]),
) -> Option<AuthorizeOutcome> {
    let result = async {
        let Some(pending) = take_for(app, pending_id, session).await? else {
            return Ok(None);
        };
        let request = pending.request.clone();
        let Some(client) = app.clients.find(&app.db, &request.client_id).await? else {
            return Ok(None);
        };
        still_registered(&client, &request)?;
        let again = match pending.awaiting {
            Awaiting::Consent => false,
            // The same button again: a double-click. Another answer is too late.
            Awaiting::Answered { accepted: first } if first == accepted => true,
            _ => return Ok(None),
        };
        // A consent page left open past the request's `max_age`: the password
        // again before the code, whose `auth_time` the service checks against
        // it (OIDC Core §3.1.2.1); the consent is then asked anew.
        let now = app.now();
        if accepted && outlived_max_age(&request, session, now) {
            return login_again(app, pending_id, (pending, session), now).await.map(Some);
        }
        if !again {
            // One second click, within a minute; not a third.
            app.pending.answered(pending_id, pending, accepted).await?;
        }
        if again && accepted {
            // The first click gave the consent: this one gets its own code,
            // without the consent page a `prompt=consent` would ask again.
            let request = AuthorizationRequest {
                prompt_consent: false,
                ..request
            };
            return answer(app, request, session, None).await.map(Some);
        }
        if !accepted {
            // OIDC Core §3.1.2.6
            let error = OAuthError::new(ErrorCode::AccessDenied, "the user refused consent");
            return Ok(Some(returned(app, &request, &error)));
        }
        // The page asks to tick the terms when they are pending; the web edge
        // checks the box before calling, so acceptance here covers them.
        consent::accept_terms(&app.db, &session.account_id, &client, now).await?;
        consent::grant(
            &app.db,
            (&session.account_id, &request.client_id),
            &request.scopes,
            children_shown,
            now,
        )
        .await?;
        tracing::info!(account = %session.account_id, client_id = %request.client_id, scopes = %request.scopes.to_wire(), "consent given");
        let scopes = request.scopes.to_wire();
        let entry = audit::Entry::new(audit::Event::ConsentGiven, audit::Outcome::Ok)
            .account(&session.account_id)
            .client(&request.client_id)
            .detail(&scopes);
        audit::record(&app.db, entry, now).await;
        respond_with_code(app, &request, session).await.map(Some)
    }
    .await;
    result.unwrap_or_else(|rejection| Some(AuthorizeOutcome::Rejected(rejection)))
}

/// A session good enough for the request: consent, then the code.
/// A request parked before its client dropped the redirect URI it names
/// sends nothing there any more, neither a code nor an error (RFC 6749
/// §3.1.2.2: registered URIs only).
fn still_registered(client: &Client, request: &AuthorizationRequest) -> Result<(), Rejection> {
    match client.registered_redirect_uri(request.redirect_uri.as_str()) {
        Some(_) => Ok(()),
        None => Err(Rejection::Shown(OAuthError::invalid_request(
            "redirect_uri is no longer registered for this client",
        ))),
    }
}

async fn answer(
    app: &Clef,
    request: AuthorizationRequest,
    session: &Session,
    pending_id: Option<&str>,
) -> Result<AuthorizeOutcome, Rejection> {
    let Some(client) = app.clients.find(&app.db, &request.client_id).await? else {
        return Err(Rejection::Shown(OAuthError::invalid_client(
            "unknown client_id",
        )));
    };
    still_registered(&client, &request)?;
    if hint_mismatch(app, &client, &request, session) {
        let error = OAuthError::new(
            ErrorCode::LoginRequired,
            "the signed-in user is not the one the request names",
        );
        return Ok(returned(app, &request, &error));
    }
    if !consent::required(&app.db, &client, &session.account_id, &request).await? {
        return respond_with_code(app, &request, session).await;
    }
    if request.prompt_none {
        let error = OAuthError::new(ErrorCode::ConsentRequired, "the user has not consented");
        return Ok(returned(app, &request, &error));
    }
    let pending = Pending {
        request,
        stale_sid: Some(session.sid.clone()),
        stale_authentication: Some(session.authentication.clone()),
        awaiting: Awaiting::Consent,
        parked_at: app.now(),
    };
    let pending_id = match pending_id {
        Some(id) => {
            app.pending.repark(id, &pending).await?;
            id.to_owned()
        }
        None => app.pending.park(&pending).await?,
    };
    Ok(AuthorizeOutcome::ConsentRequired { pending_id })
}

async fn respond_with_code(
    app: &Clef,
    request: &AuthorizationRequest,
    session: &Session,
) -> Result<AuthorizeOutcome, Rejection> {
    let now = app.now();
    // The session may outlive the account's right to sign in (closed, merged).
    let account = accounts::account_by_id(&app.db, &session.account_id).await?;
    if !account.is_some_and(|a| a.may_use_applications()) {
        let error = OAuthError::new(
            ErrorCode::LoginRequired,
            "the session's account can no longer sign in",
        );
        return Ok(returned(app, request, &error));
    }
    let grant = CodeGrant {
        client_id: request.client_id.clone(),
        redirect_uri: request.redirect_uri.to_string(),
        account_id: session.account_id.clone(),
        scopes: request.scopes.clone(),
        nonce: request.nonce.clone(),
        code_challenge: request.code_challenge.clone(),
        auth_time: session.auth_time,
        sid: session.sid.clone(),
        amr: session.amr.clone(),
        issued_at: now,
        issued_ms: app.now_ms(),
        expires_at: now + app.config.code_ttl,
        session_expires_at: Some(session.expires_at),
    };
    let code = app.codes.issue(grant).await?;
    let mut params = vec![("code", code)];
    if let Some(state) = &request.state {
        params.push(("state", state.clone()));
    }
    params.push(("iss", app.config.issuer_str().to_owned()));
    Ok(AuthorizeOutcome::Permitted(Response {
        redirect_uri: request.redirect_uri.clone(),
        mode: request.response_mode,
        params,
    }))
}

/// An error for the client, sent back to it.
fn returned(app: &Clef, request: &AuthorizationRequest, error: &OAuthError) -> AuthorizeOutcome {
    AuthorizeOutcome::Rejected(Rejection::Returned(request_error(app, request, error)))
}

/// An error response to a validated request.
pub fn request_error(app: &Clef, request: &AuthorizationRequest, error: &OAuthError) -> Response {
    error_response(
        app,
        &request.redirect_uri,
        request.response_mode,
        request.state.as_deref(),
        error,
    )
}

fn error_response(
    app: &Clef,
    redirect_uri: &RedirectUri,
    mode: ResponseMode,
    state: Option<&str>,
    error: &OAuthError,
) -> Response {
    let mut params = vec![
        ("error", error.code.as_str().to_owned()),
        ("error_description", error.description.to_string()),
    ];
    if let Some(state) = state {
        params.push(("state", state.to_owned()));
    }
    // RFC 9207: the issuer identifies who answered, errors included.
    params.push(("iss", app.config.issuer_str().to_owned()));
    Response {
        redirect_uri: redirect_uri.clone(),
        mode,
        params,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Started again after an email confirmation, a request still names its
    /// person (its `id_token_hint`'s subject, its `login_hint`) and its
    /// `max_age`.
    #[test]
    fn a_request_started_again_names_the_same_person() {
        let request = AuthorizationRequest {
            client_id: "clef-ent".into(),
            redirect_uri: RedirectUri::parse("https://ent.example/cb").unwrap(),
            response_mode: ResponseMode::Query,
            scopes: Scopes::parse(Some("openid profile")).unwrap(),
            state: Some("st".into()),
            nonce: Some("n".into()),
            code_challenge: None,
            prompt_none: false,
            prompt_login: true,
            prompt_consent: false,
            prompt_select_account: false,
            max_age: Some(600),
            login_hint: Some("marc.baillet".into()),
            hint_subject: Some("sub-of-marc".into()),
        };
        let url = url::Url::parse(&request.authorize_url("https://clef.example")).unwrap();
        let query: std::collections::HashMap<String, String> =
            url.query_pairs().into_owned().collect();
        assert_eq!(query["max_age"], "600");
        assert_eq!(query["login_hint"], "marc.baillet");
        assert!(
            !query.contains_key("prompt"),
            "prompt belonged to the moment"
        );
        let (_, subject) = with_requested_claims(request.scopes.clone(), &query["claims"]).unwrap();
        assert_eq!(subject.as_deref(), Some("sub-of-marc"));
    }
}
