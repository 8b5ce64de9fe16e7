//! The token endpoint (RFC 6749 §3.2, §4.1.3) and UserInfo (OIDC Core §5.3).

use serde::Serialize;
use serde_json::{Value, json};

use super::clients::{self, Client};
use super::grants::{AccessGrant, Redeem, Redeemed};
use super::{ErrorCode, OAuthError, claims};
use crate::accounts::store as accounts;
use crate::app::Clef;
use crate::domain::Params;
use crate::metrics::TokenKind;
use crate::secret::{constant_time_eq, left_half_hash, s256};

/// The credentials a request to the token endpoint carries.
pub struct ClientCredentials<'a> {
    /// From `Authorization: Basic` (RFC 6749 §2.3.1), already form-decoded.
    pub basic: Option<(String, String)>,
    pub params: &'a Params,
}

/// RFC 6749 §2.3: authenticates the client by exactly one method.
pub async fn authenticate_client(
    app: &Clef,
    credentials: ClientCredentials<'_>,
) -> Result<Client, OAuthError> {
    let params = credentials.params;
    let (client_id, secret) = match (credentials.basic, params.get("client_secret")) {
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_request(
                "use one client authentication method, not two",
            ));
        }
        (Some((id, secret)), None) => {
            if params.get("client_id").is_some_and(|other| other != id) {
                return Err(OAuthError::invalid_request(
                    "client_id differs from the authenticated client",
                ));
            }
            (id, Some(secret))
        }
        (None, secret) => {
            let id = params
                .get("client_id")
                .ok_or_else(|| OAuthError::invalid_client("client authentication is missing"))?;
            (id.to_owned(), secret.map(str::to_owned))
        }
    };
    let client = clients::find(&app.db, &client_id).await?;
    match (client, secret) {
        (Some(client), None) if client.is_public => Ok(client),
        (Some(client), Some(secret)) if !client.is_public && client.secret_matches(&secret) => {
            Ok(client)
        }
        _ => Err(OAuthError::invalid_client("client authentication failed")),
    }
}

#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub id_token: String,
    pub scope: String,
}

/// RFC 6749 §4.1.2: a replayed code revokes what it issued.
async fn refuse_replay(app: &Clef, client: &Client, redeem: Redeem) -> OAuthError {
    match redeem {
        Redeem::Unknown => {}
        Redeem::Replayed { issued } => {
            if let Some(token) = issued {
                if let Err(e) = app.access_tokens.revoke(&token).await {
                    return e.into();
                }
            }
            tracing::warn!(client_id = %client.id, "authorization code replayed; its tokens are revoked");
        }
        Redeem::Store(e) => return e.into(),
    }
    OAuthError::invalid_grant("the code is invalid, expired or already used")
}

pub async fn exchange(
    app: &Clef,
    client: &Client,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    match params.get("grant_type") {
        Some("authorization_code") => exchange_code(app, client, params).await,
        None => Err(OAuthError::invalid_request("grant_type is missing")),
        Some(_) => Err(OAuthError::new(
            ErrorCode::UnsupportedGrantType,
            "only authorization_code is supported",
        )),
    }
}

async fn exchange_code(
    app: &Clef,
    client: &Client,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    let now = app.now();
    let code = params
        .get("code")
        .ok_or_else(|| OAuthError::invalid_request("code is missing"))?;
    let Redeemed { id: code_id, grant } = match app.codes.redeem(code).await {
        Ok(redeemed) => redeemed,
        Err(redeem) => return Err(refuse_replay(app, client, redeem).await),
    };
    if grant.client_id != client.id {
        return Err(OAuthError::invalid_grant(
            "the code was issued to another client",
        ));
    }
    if grant.expires_at <= now {
        return Err(OAuthError::invalid_grant("the code has expired"));
    }
    // RFC 6749 §4.1.3: redirect_uri must be identical to the authorization request's.
    if params.get("redirect_uri") != Some(grant.redirect_uri.as_str()) {
        return Err(OAuthError::invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    match (&grant.code_challenge, params.get("code_verifier")) {
        (Some(challenge), Some(verifier)) => {
            let well_formed = (43..=128).contains(&verifier.len())
                && verifier
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
            if !well_formed || !constant_time_eq(&s256(verifier), challenge) {
                return Err(OAuthError::invalid_grant(
                    "code_verifier does not match the code_challenge",
                ));
            }
        }
        (Some(_), None) => return Err(OAuthError::invalid_grant("code_verifier is missing")),
        // RFC 7636 §4.5 / Security BCP: a verifier for a code issued without a challenge is refused.
        (None, Some(_)) => {
            return Err(OAuthError::invalid_grant(
                "no code_challenge was sent for this code",
            ));
        }
        (None, None) => {}
    }

    let account = accounts::account_by_id(&app.db, &grant.account_id)
        .await?
        .filter(|a| a.may_use_applications())
        .ok_or_else(|| OAuthError::invalid_grant("the account can no longer sign in"))?;

    let access = AccessGrant {
        client_id: client.id.clone(),
        account_id: account.id.clone(),
        scopes: grant.scopes.clone(),
        sid: grant.sid.clone(),
        expires_at: now + app.config.access_token_ttl,
    };
    let (access_token, access_id) = app.access_tokens.issue(&access).await?;
    if let Err(redeem) = app.codes.record_issued(&code_id, &access_id).await {
        return Err(refuse_replay(app, client, redeem).await);
    }

    let mut id_token = claims::for_scopes(&app.db, client, &account, &grant.scopes).await?;
    let protocol = json!({
        "iss": app.config.issuer_str(),
        "aud": client.id,
        "exp": now + app.config.id_token_ttl,
        "iat": now,
        "auth_time": grant.auth_time,
        "sid": grant.sid,
        "amr": grant.amr,
        "at_hash": left_half_hash(&access_token),
    });
    if let Value::Object(protocol) = protocol {
        id_token.extend(protocol);
    }
    if let Some(nonce) = grant.nonce {
        id_token.insert("nonce".into(), nonce.into());
    }
    let id_token = app.keys.sign(&Value::Object(id_token))?;
    app.metrics.token(TokenKind::access_token);
    app.metrics.token(TokenKind::id_token);
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: app.config.access_token_ttl,
        id_token,
        scope: grant.scopes.to_wire(),
    })
}

/// OIDC Core §5.3: the claims of the access token's scopes.
pub async fn userinfo(app: &Clef, access_token: &str) -> Result<Value, OAuthError> {
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
    let client = clients::find(&app.db, &access.client_id)
        .await?
        .ok_or_else(invalid)?;
    let account = accounts::account_by_id(&app.db, &access.account_id)
        .await?
        .filter(|a| a.may_use_applications())
        .ok_or_else(invalid)?;
    let claims = claims::for_scopes(&app.db, &client, &account, &access.scopes).await?;
    Ok(Value::Object(claims))
}
