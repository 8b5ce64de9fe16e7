//! Token introspection (RFC 7662) and revocation (RFC 7009), for the client
//! that holds the token: a client learns nothing of another's tokens and
//! cannot revoke them.

use serde_json::{Value, json};

use super::clients::Client;
use super::grants::AccessTokens;
use super::{OAuthError, refresh};
use crate::app::Clef;

/// RFC 7662 §2.2: what an active token stands for, or `{"active": false}`.
pub async fn introspect(app: &Clef, client: &Client, token: &str) -> Result<Value, OAuthError> {
    let now = app.now();
    if let Some(access) = app.access_tokens.find(token, now).await?
        && access.client_id == client.id
    {
        let family_alive = match &access.family {
            Some(family) => refresh::family_alive(&app.db, family, now).await?,
            None => true,
        };
        // The person's token dies with their account's use of applications
        // (closed, grouped into another), as at UserInfo.
        let alive = family_alive
            && match &access.account_id {
                Some(account_id) => app
                    .account_reads
                    .by_id(account_id)
                    .await?
                    .is_some_and(|a| a.may_use_applications()),
                None => true,
            };
        if alive {
            // A service's own token (client_credentials) has the client as subject.
            let (sub, scope) = match &access.account_id {
                Some(account_id) => (app.subjects.of(client, account_id), access.scopes.to_wire()),
                None => (client.id.clone(), access.service_scopes.join(" ")),
            };
            let mut answer = json!({
                "active": true,
                "token_type": "Bearer",
                "scope": scope,
                "client_id": client.id,
                "sub": sub,
                "aud": client.id,
                "iss": app.config.issuer_str(),
                "iat": access.issued_at,
                "exp": access.expires_at,
            });
            if let Some(sid) = &access.sid {
                answer["sid"] = app.subjects.session_of(client, sid).into();
            }
            return Ok(answer);
        }
    }
    if let Some(described) = refresh::describe(&app.db, token, now).await?
        && described.family.client_id == client.id
    {
        // No `token_type`: RFC 7662 §2.2 takes an access token's type
        // (RFC 6749 §7.1), which a refresh token has none of.
        return Ok(json!({
            "active": true,
            "scope": described.family.scopes.to_wire(),
            "client_id": client.id,
            "sub": app.subjects.of(client, &described.family.account_id),
            "iss": app.config.issuer_str(),
            "iat": described.issued_at,
            "exp": described.expires_at,
            "sid": app.subjects.session_of(client, &described.family.sid),
        }));
    }
    Ok(json!({ "active": false }))
}

/// RFC 7009 §2: ends `token` if it is one of `client`'s, answers the same
/// whether it was or not (unknown, expired), and refuses another client's
/// (`not_yours`). A refresh token takes its whole family along.
pub async fn revoke(app: &Clef, client: &Client, token: &str) -> Result<(), OAuthError> {
    let id = AccessTokens::id_of(token);
    if let Some(access) = app.access_tokens.by_id(&id).await? {
        if access.client_id != client.id {
            return not_yours(client);
        }
        app.access_tokens.revoke(&id).await?;
        return Ok(());
    }
    if let Some((family, owner)) = refresh::family_of(&app.db, token).await? {
        if owner != client.id {
            return not_yours(client);
        }
        refresh::revoke_family(&app.db, &family, app.now()).await?;
    }
    Ok(())
}

/// Another client's token (RFC 7009 §2.1): refused, and nothing revoked. A
/// public client, which anyone can be, gets the answer of an unknown token
/// instead, so that it cannot tell a live token of another client from a
/// made-up one.
fn not_yours(client: &Client) -> Result<(), OAuthError> {
    if client.is_public {
        return Ok(());
    }
    Err(OAuthError::invalid_request(
        "the token was not issued to this client",
    ))
}
