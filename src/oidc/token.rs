//! The token endpoint (RFC 6749 §3.2, §4.1.3) and UserInfo (OIDC Core §5.3).

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::assertion;
use super::clients::{AuthMethod, Client};
use super::grants::{AccessGrant, CodeGrant, CodeTokens, PresentedCode, Redeem};
use super::ledger::{Entry, Written};
use super::refresh::{self, Family, Presented, Rotation};
use super::{ErrorCode, OAuthError, Scopes, claims};
use crate::app::Clef;
use crate::domain::Params;
use crate::keys::SigningAlg;
use crate::metrics::TokenKind;
use crate::secret::{constant_time_eq, left_half_hash, left_half_hash_512, s256};

/// The credentials a request to the token endpoint carries.
pub struct ClientCredentials<'a> {
    /// From `Authorization: Basic` (RFC 6749 §2.3.1), already form-decoded.
    pub basic: Option<(String, String)>,
    pub params: &'a Params,
}

/// RFC 6749 §2.3, OIDC Core §9: authenticates the client by exactly one
/// method, the one it registered when it registered one.
pub async fn authenticate_client(
    app: &Clef,
    credentials: ClientCredentials<'_>,
) -> Result<Arc<Client>, OAuthError> {
    let params = credentials.params;
    let assertion = match (
        params.get("client_assertion_type"),
        params.get("client_assertion"),
    ) {
        (None, None) => None,
        (Some(assertion::ASSERTION_TYPE), Some(assertion)) => Some(assertion),
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_request(
                "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ));
        }
        _ => {
            return Err(OAuthError::invalid_request(
                "client_assertion and client_assertion_type go together",
            ));
        }
    };
    let methods = [
        credentials.basic.is_some(),
        params.get("client_secret").is_some(),
        assertion.is_some(),
    ];
    if methods.iter().filter(|used| **used).count() > 1 {
        return Err(OAuthError::invalid_request(
            "use one client authentication method, not two",
        ));
    }
    let (client_id, method) = match (&credentials.basic, assertion) {
        (Some((id, _)), _) => (id.clone(), AuthMethod::ClientSecretBasic),
        (None, Some(assertion)) => (
            assertion::claimed_client(assertion)
                .ok_or_else(|| OAuthError::invalid_client("client assertion refused: no iss"))?,
            AuthMethod::PrivateKeyJwt,
        ),
        (None, None) if params.get("client_secret").is_some() => (
            params
                .get("client_id")
                .ok_or_else(|| OAuthError::invalid_client("client authentication is missing"))?
                .to_owned(),
            AuthMethod::ClientSecretPost,
        ),
        (None, None) => (
            params
                .get("client_id")
                .ok_or_else(|| OAuthError::invalid_client("client authentication is missing"))?
                .to_owned(),
            AuthMethod::None,
        ),
    };
    if params
        .get("client_id")
        .is_some_and(|other| other != client_id)
    {
        return Err(OAuthError::invalid_request(
            "client_id differs from the authenticated client",
        ));
    }
    let failed = || OAuthError::invalid_client("client authentication failed");
    let client = app
        .clients
        .find(&app.db, &client_id)
        .await?
        .ok_or_else(failed)?;
    // A client that registered a method uses it; others use their secret
    // (either way) or, public, nothing.
    let allowed = match client.auth_method {
        Some(registered) => registered == method,
        None if client.is_public => method == AuthMethod::None,
        None => matches!(
            method,
            AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost
        ),
    };
    if !allowed {
        return Err(failed());
    }
    match method {
        AuthMethod::None => Ok(client),
        AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost => {
            let secret = match &credentials.basic {
                Some((_, secret)) => secret.as_str(),
                None => params.get("client_secret").unwrap_or_default(),
            };
            if client.secret_matches(secret) {
                Ok(client)
            } else {
                Err(failed())
            }
        }
        AuthMethod::PrivateKeyJwt => {
            assertion::verify(app, &client, assertion.unwrap_or_default()).await?;
            Ok(client)
        }
    }
}

/// A token request, parsed once at the edge (RFC 6749 §4.1.3, §6).
#[derive(Debug)]
pub enum TokenRequest {
    AuthorizationCode {
        code: String,
        /// Required: OpenID Connect requests always send one (RFC 6749 §4.1.3).
        redirect_uri: String,
        code_verifier: Option<String>,
    },
    RefreshToken {
        refresh_token: String,
        /// A narrower set of the family's scopes (RFC 6749 §6).
        scope: Option<String>,
    },
    /// RFC 6749 §4.4: a service's token for itself.
    ClientCredentials { scope: Option<String> },
}

impl TokenRequest {
    pub fn parse(params: &Params) -> Result<Self, OAuthError> {
        let required = |name: &'static str| {
            params
                .get(name)
                .map(str::to_owned)
                .ok_or_else(|| OAuthError::invalid_request(format!("{name} is missing")))
        };
        match params.get("grant_type") {
            Some("authorization_code") => Ok(Self::AuthorizationCode {
                code: required("code")?,
                redirect_uri: required("redirect_uri")?,
                code_verifier: params.get("code_verifier").map(str::to_owned),
            }),
            Some("refresh_token") => Ok(Self::RefreshToken {
                refresh_token: required("refresh_token")?,
                scope: params.get("scope").map(str::to_owned),
            }),
            Some("client_credentials") => Ok(Self::ClientCredentials {
                scope: params.get("scope").map(str::to_owned),
            }),
            None => Err(OAuthError::invalid_request("grant_type is missing")),
            Some(_) => Err(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                "supported grant types: authorization_code, refresh_token, client_credentials",
            )),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    /// None for client_credentials: no person signed in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub scope: String,
}

impl TokenResponse {
    /// RFC 6749 §5.1: a Bearer access token and what comes with it (counted).
    fn bearer(
        app: &Clef,
        access_token: String,
        id_token: Option<String>,
        refresh_token: Option<String>,
        scope: String,
    ) -> Self {
        app.metrics.token(TokenKind::access_token);
        if id_token.is_some() {
            app.metrics.token(TokenKind::id_token);
        }
        Self {
            access_token,
            token_type: "Bearer",
            expires_in: app.config.access_token_ttl,
            id_token,
            refresh_token,
            scope,
        }
    }
}

/// RFC 6749 §4.1.2: a replayed code revokes what it issued — the access
/// token, and the refresh-token family started with it.
async fn refuse_replay(app: &Clef, client: &Client, redeem: Redeem) -> OAuthError {
    let revoked = async {
        match redeem {
            Redeem::Unknown => {}
            Redeem::Replayed { issued } => {
                if let Some(CodeTokens { access, family }) = issued {
                    // A code redeemed before its family was recorded with it
                    // names it through the access token only.
                    let family = match family {
                        Some(family) => Some(family),
                        None => app
                            .access_tokens
                            .by_id(&access)
                            .await?
                            .and_then(|g| g.family),
                    };
                    if let Some(family) = family {
                        refresh::revoke_family(&app.db, &family, app.now()).await?;
                    }
                    app.access_tokens.revoke(&access).await?;
                }
                tracing::warn!(client_id = %client.id, "authorization code replayed; its tokens are revoked");
            }
            Redeem::Store(e) => return Err(e),
        }
        Ok(())
    };
    match revoked.await {
        Ok(()) => unusable_code(),
        Err(e) => e.into(),
    }
}

/// A code that cannot be exchanged, whatever the reason: never issued, long
/// expired, spent, or another client's (a holder of a leaked code learns
/// nothing of it).
fn unusable_code() -> OAuthError {
    OAuthError::invalid_grant("the code is invalid, expired or already used")
}

pub async fn exchange(
    app: &Clef,
    client: &Client,
    request: TokenRequest,
) -> Result<TokenResponse, OAuthError> {
    let grants = client.grant_types;
    let allowed = match &request {
        TokenRequest::AuthorizationCode { .. } => grants.authorization_code,
        TokenRequest::RefreshToken { .. } => grants.refresh_token,
        TokenRequest::ClientCredentials { .. } => grants.client_credentials,
    };
    if !allowed {
        // RFC 6749 §5.2
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client may not use this grant type",
        ));
    }
    match request {
        TokenRequest::AuthorizationCode {
            code,
            redirect_uri,
            code_verifier,
        } => exchange_code(app, client, &code, redirect_uri, code_verifier).await,
        TokenRequest::RefreshToken {
            refresh_token,
            scope,
        } => refresh(app, client, &refresh_token, scope.as_deref()).await,
        TokenRequest::ClientCredentials { scope } => {
            client_credentials(app, client, scope.as_deref()).await
        }
    }
}

/// RFC 6749 §4.4: an access token for a confidential service client itself,
/// with scopes among those registered for it; no ID token, no refresh token.
async fn client_credentials(
    app: &Clef,
    client: &Client,
    scope: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    if client.is_public {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client may not use client_credentials",
        ));
    }
    let scopes: Vec<String> = match scope {
        None => client.service_scopes.clone(),
        Some(raw) => {
            let asked: Vec<String> = raw
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            if asked.is_empty() || !asked.iter().all(|s| client.service_scopes.contains(s)) {
                return Err(OAuthError::new(
                    ErrorCode::InvalidScope,
                    "a scope asked is not registered for this client",
                ));
            }
            asked
        }
    };
    let now = app.now();
    let access = AccessGrant {
        client_id: client.id.clone(),
        account_id: None,
        scopes: Scopes::known([]),
        service_scopes: scopes.clone(),
        sid: None,
        expires_at: now + app.config.access_token_ttl,
        family: None,
        issued_at: now,
        issued_ms: app.now_ms(),
    };
    let (access_token, _) = app.access_tokens.issue(&access).await?;
    Ok(TokenResponse::bearer(
        app,
        access_token,
        None,
        None,
        scopes.join(" "),
    ))
}

/// Refresh tokens go to first-party clients, and to others only when the
/// person consented to `offline_access`.
fn gets_refresh_token(client: &Client, scopes: &Scopes) -> bool {
    client.grant_types.refresh_token && (client.is_first_party || scopes.contains("offline_access"))
}

/// Whether a code's grant is the one `client` may exchange with this
/// `redirect_uri` and `code_verifier`.
fn code_fits(
    grant: &CodeGrant,
    client: &Client,
    redirect_uri: &str,
    code_verifier: Option<&str>,
) -> Result<(), OAuthError> {
    if grant.client_id != client.id {
        return Err(unusable_code());
    }
    // RFC 6749 §4.1.3: redirect_uri must be identical to the authorization request's.
    if redirect_uri != grant.redirect_uri.as_str() {
        return Err(OAuthError::invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    match (&grant.code_challenge, code_verifier) {
        (Some(challenge), Some(verifier)) => {
            let well_formed = (43..=128).contains(&verifier.len())
                && verifier
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
            if !well_formed {
                return Err(OAuthError::invalid_grant(
                    "code_verifier is malformed: 43 to 128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636)",
                ));
            }
            if !constant_time_eq(&s256(verifier), challenge) {
                return Err(OAuthError::invalid_grant(
                    "code_verifier does not match the code_challenge",
                ));
            }
            Ok(())
        }
        (Some(_), None) => Err(OAuthError::invalid_grant("code_verifier is missing")),
        // RFC 7636 §4.5 / Security BCP: a verifier for a code issued without a challenge is refused.
        (None, Some(_)) => Err(OAuthError::invalid_grant(
            "no code_challenge was sent for this code",
        )),
        (None, None) => Ok(()),
    }
}

async fn exchange_code(
    app: &Clef,
    client: &Client,
    code: &str,
    redirect_uri: String,
    code_verifier: Option<String>,
) -> Result<TokenResponse, OAuthError> {
    let now = app.now();
    let fits =
        |grant: &CodeGrant| code_fits(grant, client, &redirect_uri, code_verifier.as_deref());
    // The exchange is judged before the code is spent (as the reference
    // provider does): a request refused for what it lacks (another client's
    // credentials, another redirect_uri, no or the wrong verifier) leaves
    // the code as it is, so a leaked code cannot be spent, nor its tokens
    // revoked, by whoever lacks them, however many requests they send.
    let (code_id, grant) = match app.codes.look(code).await? {
        (id, PresentedCode::Issued(grant)) => (id, grant),
        // Presented again as its exchange was: a replay (RFC 6749 §4.1.2).
        (id, PresentedCode::Spent(grant)) if grant.as_ref().is_none_or(|g| fits(g).is_ok()) => {
            let replay = app.codes.replayed(&id).await?;
            return Err(refuse_replay(app, client, replay).await);
        }
        (_, PresentedCode::Spent(_) | PresentedCode::Unknown) => return Err(unusable_code()),
    };
    // Another client learns nothing, not even that the code expired.
    fits(&grant)?;
    if grant.expires_at <= now {
        return Err(OAuthError::invalid_grant("the code has expired"));
    }
    if let Err(redeem) = app.codes.redeem(&code_id, &grant).await {
        return Err(refuse_replay(app, client, redeem).await);
    }

    // The account is read, and the exchange's writes are written, together
    // with the other exchanges under way (`accounts::reads`, `ledger`).
    let account = app
        .account_reads
        .by_id(&grant.account_id)
        .await?
        .filter(|a| a.may_use_applications())
        .ok_or_else(|| OAuthError::invalid_grant("the account can no longer sign in"))?;
    let claims =
        claims::for_scopes(&app.db, &app.subjects, client, &account, &grant.scopes).await?;

    // Without `offline_access`, a refresh family ends with its session; a
    // code exchanged once the session lapsed gets none, which would be born
    // dead.
    let session_end = grant
        .session_expires_at
        .filter(|_| !grant.scopes.contains("offline_access"));
    let lapsed = session_end.is_some_and(|end| end <= now);
    let family = (gets_refresh_token(client, &grant.scopes) && !lapsed).then(|| Family {
        id: refresh::new_family_id(),
        client_id: client.id.clone(),
        account_id: account.id.clone(),
        scopes: grant.scopes.clone(),
        sid: grant.sid.clone(),
        auth_time: grant.auth_time,
        amr: grant.amr.clone(),
    });
    // OIDC Core §11: `offline_access` without a refresh token grants nothing,
    // and the response's `scope` says what was granted (RFC 6749 §5.1).
    let granted = match family {
        Some(_) => grant.scopes.clone(),
        None => grant.scopes.without("offline_access"),
    };
    let access = AccessGrant {
        client_id: client.id.clone(),
        account_id: Some(account.id.clone()),
        scopes: granted.clone(),
        service_scopes: Vec::new(),
        sid: Some(grant.sid.clone()),
        expires_at: now + app.config.access_token_ttl,
        family: family.as_ref().map(|f| f.id.clone()),
        issued_at: now,
        issued_ms: app.now_ms(),
    };
    let (access_token, access_id) = app.access_tokens.issue(&access).await?;
    // The session's record of the client (for back-channel logout) and the
    // refresh family, committed before the answer.
    let (opening, refresh_token) = family
        .map(|family| {
            let policy = app.config.refresh_policy(&client.refresh_lifetimes);
            let policy = match session_end {
                Some(end) => policy.within_session(end, now),
                None => policy,
            };
            refresh::Opening::new(family, &policy, now)
        })
        .unzip();
    let signed = SignIn {
        auth_time: grant.auth_time,
        sid: &grant.sid,
        amr: &grant.amr,
        nonce: grant.nonce.as_deref(),
    };
    // The ID token is signed while the ledger's batch is on its way to the
    // database: the `biased` join polls the write first, which queues the
    // entry, then signs; the token is dropped unsent if the exchange is
    // refused below.
    let entry = Entry {
        sid: grant.sid.clone(),
        client_id: client.id.clone(),
        at: now,
        opening,
    };
    let (written, id_token) = tokio::join!(biased; app.ledger.write(entry), async {
        id_token(app, client, claims, &signed, &access_token)
    });
    let written = written?;
    // A session ended since the code was issued (a logout, a password reset,
    // « se déconnecter partout »), or a service's consent withdrawn since,
    // ends the code as it ends the tokens. Checked once the refresh family is
    // written: an ending marks the session ended (a withdrawal, the consent)
    // before it revokes the families, so a family written meanwhile is
    // revoked by it or here. First-party services are not asked for
    // consent: nothing to withdraw.
    let refusal = if written == Written::SessionEnded {
        Some("the sign-in session has ended")
    } else if !client.is_first_party
        && app
            .access_tokens
            .revoked_since(
                &account.id,
                &client.id,
                super::grants::issued_ms(grant.issued_ms, grant.issued_at),
            )
            .await?
    {
        Some("the person withdrew their consent to this client")
    } else {
        None
    };
    if let Some(refusal) = refusal {
        app.access_tokens.revoke(&access_id).await?;
        if let Some(family) = &access.family {
            refresh::revoke_family(&app.db, family, now).await?;
        }
        return Err(OAuthError::invalid_grant(refusal));
    }
    // Recorded once the family is written: a replay from then on finds the
    // access token and, through it, the family to revoke; one before has
    // marked the code, and this exchange revokes them itself.
    let issued = CodeTokens {
        access: access_id,
        family: access.family,
    };
    if let Err(redeem) = app.codes.record_issued(&code_id, issued).await {
        return Err(refuse_replay(app, client, redeem).await);
    }
    Ok(TokenResponse::bearer(
        app,
        access_token,
        Some(id_token?),
        refresh_token,
        granted.to_wire(),
    ))
}

/// RFC 6749 §6: a new access token, refresh token and ID token for the same
/// sign-in; the children and school claims are read afresh.
async fn refresh(
    app: &Clef,
    client: &Client,
    token: &str,
    scope: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let now = app.now();
    let policy = app.config.refresh_policy(&client.refresh_lifetimes);
    // A narrower set of the family's scopes may be asked (RFC 6749 §6).
    // An unknown scope was not granted either: refused, not dropped (RFC 6749 §6).
    let asked = scope
        .map(|raw| {
            let parsed = Scopes::parse(Some(raw))?;
            if raw.split(' ').any(|s| !s.is_empty() && !parsed.contains(s)) {
                return Err(OAuthError::new(
                    ErrorCode::InvalidScope,
                    "a scope asked was not granted",
                ));
            }
            Ok(parsed)
        })
        .transpose()?;
    let rotation = app
        .rotations
        .rotate(Presented::new(
            token,
            &client.id,
            asked.clone(),
            policy,
            now,
        ))
        .await?;
    let (refresh_token, family, superseded) = match rotation {
        Rotation::Rotated {
            token,
            family,
            superseded,
        } => (token, family, superseded),
        Rotation::ReuseDetected { family_id } => {
            tracing::warn!(client_id = %client.id, family = %family_id, "refresh token reused; its family is revoked");
            return Err(OAuthError::invalid_grant(
                "the refresh token was already used or superseded",
            ));
        }
        Rotation::Invalid => {
            return Err(OAuthError::invalid_grant(
                "the refresh token is invalid, expired or revoked",
            ));
        }
        Rotation::WiderScope => {
            return Err(OAuthError::new(
                ErrorCode::InvalidScope,
                "a refresh cannot widen the scopes granted",
            ));
        }
    };
    let scopes = asked.unwrap_or_else(|| family.scopes.clone());
    let Some(account) = app
        .account_reads
        .by_id(&family.account_id)
        .await?
        .filter(|a| a.may_use_applications())
    else {
        refresh::revoke_family(&app.db, &family.id, now).await?;
        return Err(OAuthError::invalid_grant(
            "the account can no longer sign in",
        ));
    };
    let access = AccessGrant {
        client_id: client.id.clone(),
        account_id: Some(account.id.clone()),
        scopes: scopes.clone(),
        service_scopes: Vec::new(),
        sid: Some(family.sid.clone()),
        expires_at: now + app.config.access_token_ttl,
        family: Some(family.id.clone()),
        issued_at: now,
        issued_ms: app.now_ms(),
    };
    let (access_token, access_id) = app.access_tokens.issue(&access).await?;
    // The access token goes with its refresh token: a retry in the grace
    // window that ends the refresh token ends it too, and a retry that ended
    // others ends theirs (RFC 9700 §4.14.2: no live token on the other branch).
    let linked = async {
        let refresh_id = crate::secret::digest(&refresh_token);
        app.access_tokens
            .issued_with(&refresh_id, &access_id)
            .await?;
        for id in &superseded {
            app.access_tokens.revoke_issued_with(id).await?;
        }
        anyhow::Ok(())
    };
    // OIDC Core §12.2: same sub, auth_time and sid; no nonce.
    let signed = SignIn {
        auth_time: family.auth_time,
        sid: &family.sid,
        amr: &family.amr,
        nonce: None,
    };
    let (linked, claims) = tokio::join!(
        linked,
        claims::for_scopes(&app.db, &app.subjects, client, &account, &scopes)
    );
    linked?;
    let claims = claims?;
    let id_token = id_token(app, client, claims, &signed, &access_token)?;
    Ok(TokenResponse::bearer(
        app,
        access_token,
        Some(id_token),
        Some(refresh_token),
        scopes.to_wire(),
    ))
}

/// The sign-in an ID token speaks of.
struct SignIn<'a> {
    auth_time: i64,
    sid: &'a str,
    amr: &'a [String],
    nonce: Option<&'a str>,
}

/// An ID token (OIDC Core §2): the claims of the scopes, as just read, and the
/// protocol claims of the sign-in.
fn id_token(
    app: &Clef,
    client: &Client,
    mut claims: Map<String, Value>,
    sign_in: &SignIn<'_>,
    access_token: &str,
) -> anyhow::Result<String> {
    let now = app.now();
    // The client's registered algorithm (checked at registration: one of ours).
    let alg = SigningAlg::parse(&client.id_token_signed_response_alg).unwrap_or(SigningAlg::RS256);
    let at_hash = match alg {
        SigningAlg::EdDSA => left_half_hash_512(access_token),
        SigningAlg::RS256 | SigningAlg::ES256 => left_half_hash(access_token),
    };
    let protocol = json!({
        "iss": app.config.issuer_str(),
        "aud": client.id,
        "exp": now + app.config.id_token_ttl,
        "iat": now,
        "auth_time": sign_in.auth_time,
        "sid": app.subjects.session_of(client, sign_in.sid),
        "amr": sign_in.amr,
        "at_hash": at_hash,
    });
    if let Value::Object(protocol) = protocol {
        claims.extend(protocol);
    }
    if let Some(nonce) = sign_in.nonce {
        claims.insert("nonce".into(), nonce.into());
    }
    app.keys.sign_with(alg, &Value::Object(claims), "JWT")
}

/// What UserInfo answers: JSON, or a JWT for a client that registered
/// `userinfo_signed_response_alg` (OIDC Core §5.3.2).
#[derive(Debug)]
pub enum UserInfo {
    Json(Value),
    Signed(String),
}

/// OIDC Core §5.3: the claims of the access token's scopes.
pub async fn userinfo(app: &Clef, access_token: &str) -> Result<UserInfo, OAuthError> {
    let invalid = || {
        OAuthError::new(
            ErrorCode::InvalidToken,
            "the access token is invalid, expired or revoked",
        )
    };
    let access = app
        .access_tokens
        .find(access_token, app.now())
        .await?
        .ok_or_else(invalid)?;
    if let Some(family) = &access.family
        && !refresh::family_alive(&app.db, family, app.now()).await?
    {
        return Err(invalid());
    }
    let client = app
        .clients
        .find(&app.db, &access.client_id)
        .await?
        .ok_or_else(invalid)?;
    // A service's own token speaks for nobody: there is no user to describe.
    let Some(account_id) = &access.account_id else {
        return Err(OAuthError::new(
            ErrorCode::InsufficientScope,
            "a service's own token speaks for no one: UserInfo has no one to describe",
        ));
    };
    let account = app
        .account_reads
        .by_id(account_id)
        .await?
        .filter(|a| a.may_use_applications())
        .ok_or_else(invalid)?;
    let mut claims =
        claims::for_scopes(&app.db, &app.subjects, &client, &account, &access.scopes).await?;
    match client
        .userinfo_signed_response_alg
        .as_deref()
        .and_then(SigningAlg::parse)
    {
        None => Ok(UserInfo::Json(Value::Object(claims))),
        Some(alg) => {
            claims.insert("iss".into(), app.config.issuer_str().into());
            claims.insert("aud".into(), client.id.clone().into());
            Ok(UserInfo::Signed(app.keys.sign_with(
                alg,
                &Value::Object(claims),
                "JWT",
            )?))
        }
    }
}
