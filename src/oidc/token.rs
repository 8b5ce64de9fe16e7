//! The token endpoint (RFC 6749 §3.2, §4.1.3) and UserInfo (OIDC Core §5.3).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::authorize::CodeGrant;
use super::clients::{self, Client};
use super::{ErrorCode, OAuthError, Scopes, claims};
use crate::accounts::store as accounts;
use crate::app::Clef;
use crate::domain::Params;
use crate::metrics::TokenKind;
use crate::secret::{constant_time_eq, digest, left_half_hash, random_token, s256};

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
    let client = clients::find(&app.db, &client_id)
        .await
        .map_err(|e| internal(e.into()))?;
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

/// What an access token stands for, stored under its digest.
#[derive(Debug, Serialize, Deserialize)]
struct AccessGrant {
    client_id: String,
    account_id: String,
    scopes: Scopes,
    sid: String,
    expires_at: i64,
}

fn internal(error: anyhow::Error) -> OAuthError {
    OAuthError::from_internal(error)
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
    let code_key = digest(code);
    let store = &app.store;
    let grant_json = store
        .get(&format!("code:{code_key}"))
        .await
        .map_err(internal)?;
    // Each code is exchanged once. The counter is atomic on both stores, so of
    // two concurrent exchanges exactly one proceeds.
    let uses_ttl = Duration::from_secs((app.config.access_token_ttl + app.config.code_ttl) as u64);
    let first_use = match &grant_json {
        Some(_) => {
            store
                .incr(&format!("code-uses:{code_key}"), uses_ttl)
                .await
                .map_err(internal)?
                == 1
        }
        None => false,
    };
    if !first_use {
        // RFC 6749 §4.1.2: a code used twice revokes what it issued.
        if let Some(access_key) = store
            .get(&format!("code-tokens:{code_key}"))
            .await
            .map_err(internal)?
        {
            store
                .delete(&format!("access:{access_key}"))
                .await
                .map_err(internal)?;
            tracing::warn!(client_id = %client.id, "authorization code replayed; its tokens are revoked");
        }
        store
            .put(&format!("code-revoked:{code_key}"), "1", uses_ttl)
            .await
            .map_err(internal)?;
        return Err(OAuthError::invalid_grant(
            "the code is invalid, expired or already used",
        ));
    }
    let grant: CodeGrant = serde_json::from_str(grant_json.as_deref().unwrap_or(""))
        .map_err(|e| internal(e.into()))?;
    store
        .delete(&format!("code:{code_key}"))
        .await
        .map_err(internal)?;

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
        .await
        .map_err(|e| internal(e.into()))?
        .filter(|a| a.may_use_applications())
        .ok_or_else(|| OAuthError::invalid_grant("the account can no longer sign in"))?;

    let access_token = random_token(32);
    let access_key = digest(&access_token);
    let access = AccessGrant {
        client_id: client.id.clone(),
        account_id: account.id.clone(),
        scopes: grant.scopes.clone(),
        sid: grant.sid.clone(),
        expires_at: now + app.config.access_token_ttl,
    };
    let access_ttl = Duration::from_secs(app.config.access_token_ttl as u64);
    let access_json = serde_json::to_string(&access).map_err(|e| internal(e.into()))?;
    store
        .put(&format!("access:{access_key}"), &access_json, access_ttl)
        .await
        .map_err(internal)?;
    store
        .put(&format!("code-tokens:{code_key}"), &access_key, uses_ttl)
        .await
        .map_err(internal)?;
    // A replay that raced this exchange has marked the code: honour it.
    if store
        .get(&format!("code-revoked:{code_key}"))
        .await
        .map_err(internal)?
        .is_some()
    {
        store
            .delete(&format!("access:{access_key}"))
            .await
            .map_err(internal)?;
        return Err(OAuthError::invalid_grant(
            "the code is invalid, expired or already used",
        ));
    }

    let mut id_token = claims::for_scopes(&app.db, client, &account, &grant.scopes)
        .await
        .map_err(internal)?;
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
    let id_token = app.keys.sign(&Value::Object(id_token)).map_err(internal)?;
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
    let json = app
        .store
        .get(&format!("access:{}", digest(access_token)))
        .await
        .map_err(internal)?
        .ok_or_else(invalid)?;
    let access: AccessGrant = serde_json::from_str(&json).map_err(|e| internal(e.into()))?;
    if access.expires_at <= app.now() {
        return Err(invalid());
    }
    let client = clients::find(&app.db, &access.client_id)
        .await
        .map_err(|e| internal(e.into()))?
        .ok_or_else(invalid)?;
    let account = accounts::account_by_id(&app.db, &access.account_id)
        .await
        .map_err(|e| internal(e.into()))?
        .filter(|a| a.may_use_applications())
        .ok_or_else(invalid)?;
    let claims = claims::for_scopes(&app.db, &client, &account, &access.scopes)
        .await
        .map_err(internal)?;
    Ok(Value::Object(claims))
}
