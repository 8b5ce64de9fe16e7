//! `/register` (RFC 7591) and `/register/{client_id}` (RFC 7592): JSON in,
//! JSON out, never cached.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use serde_json::json;
use std::net::IpAddr;
use std::sync::Arc;

use super::AppState;
use super::error::WebError;
use super::extract::ClientAddress;
use super::oidc::{client_auth_failed, client_auth_gate};
use super::pages::no_store;
use crate::app::Clef;
use crate::audit::{self, Entry, Event, Outcome};
use crate::oidc::clients::Client;
use crate::oidc::registration::{self, ClientMetadata, RegistrationError};
use crate::oidc::{ErrorCode, OAuthError, clients};

/// Who calls `/register`: the address its failed tokens count against, and
/// the bearer token it presents, if any. An address held back after too many
/// failed client authentications (these tokens or a client's credentials at
/// the token endpoint, one count) is refused here, before any token is
/// looked up.
pub struct Caller {
    address: IpAddr,
    token: Option<String>,
}

impl FromRequestParts<Arc<Clef>> for Caller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<Clef>) -> Result<Self, Response> {
        let Ok(ClientAddress(address)) = ClientAddress::from_request_parts(parts, app).await;
        client_auth_gate(app, address, ErrorCode::InvalidToken).await?;
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| super::oidc::credentials(value, "Bearer"))
            .map(str::to_owned);
        Ok(Self { address, token })
    }
}

impl Caller {
    /// The client whose registration the caller's token manages, with that
    /// token.
    async fn manages(
        &self,
        app: &Clef,
        client_id: &str,
    ) -> Result<Option<(Client, &str)>, sqlx::Error> {
        let Some(token) = self.token.as_deref() else {
            return Ok(None);
        };
        let client = registration::managed(app, client_id, token).await?;
        Ok(client.map(|client| (client, token)))
    }

    /// The answer to a token refused (none, or not a live one): the failure
    /// counted against the caller's address when a token was presented.
    async fn refused(&self, app: &Clef) -> Response {
        if self.token.is_none() {
            return no_token();
        }
        let refused = refused(&RegistrationError::InvalidToken);
        client_auth_failed(app, self.address, ErrorCode::InvalidToken, refused).await
    }
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    no_store(&mut response);
    response
}

/// RFC 7591 §3.2.2; a bad token answers 401 with the RFC 6750 challenge.
fn refused(error: &RegistrationError) -> Response {
    let status = match error {
        RegistrationError::InvalidToken => StatusCode::UNAUTHORIZED,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut response = json_response(
        status,
        json!({ "error": error.code(), "error_description": error.description() }),
    );
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"clef\", error=\"invalid_token\""),
        );
    }
    response
}

/// No token at all: the RFC 6750 challenge names no error then (§3.1).
fn no_token() -> Response {
    let mut response = refused(&RegistrationError::InvalidToken);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"clef\""),
    );
    response
}

/// The body as client metadata: a JSON object (serde would also fill the
/// fields from an array, in order).
fn parse(body: &Bytes) -> Result<ClientMetadata, RegistrationError> {
    use serde::Deserialize;
    let invalid = || {
        RegistrationError::InvalidClientMetadata(
            "the body must be a JSON object of client metadata".into(),
        )
    };
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(body).map_err(|_| invalid())?;
    ClientMetadata::deserialize(serde_json::Value::Object(object.clone())).map_err(|_| {
        // Which member has the wrong type: each alone, the first that fails.
        let wrong = object.iter().find(|(name, value)| {
            let alone = serde_json::Map::from_iter([((*name).clone(), (*value).clone())]);
            ClientMetadata::deserialize(serde_json::Value::Object(alone)).is_err()
        });
        match wrong {
            Some((name, _)) if name == "redirect_uris" => RegistrationError::InvalidRedirectUri(
                "redirect_uris must be an array of strings".into(),
            ),
            Some((name, _)) => {
                RegistrationError::InvalidClientMetadata(format!("{name} has the wrong type"))
            }
            None => invalid(),
        }
    })
}

/// Development: a plain http issuer lets fetched URLs be loopback http.
fn dev(app: &crate::app::Clef) -> bool {
    app.config.issuer.scheme() == "http"
}

/// A registration not written: a refusal of the metadata as the client
/// reads it (ASCII, RFC 6749 §5.2), or the database's failure, which is not
/// the client's to read (`server_error`, or 503 while it is unavailable).
fn not_stored(e: anyhow::Error) -> Result<Response, WebError> {
    if e.chain()
        .any(|cause| cause.downcast_ref::<sqlx::Error>().is_some())
    {
        return Err(WebError::OAuth(OAuthError::from_internal(e)));
    }
    let why = e.to_string().chars().filter(char::is_ascii).collect();
    Ok(refused(&RegistrationError::InvalidClientMetadata(why)))
}

/// `POST /register`.
pub async fn register(
    State(app): AppState,
    caller: Caller,
    body: Bytes,
) -> Result<Response, WebError> {
    let Some(permit) = registration::may_register(&app, caller.token.as_deref()).await? else {
        return Ok(caller.refused(&app).await);
    };
    let metadata = match parse(&body) {
        Ok(metadata) => metadata,
        Err(e) => return Ok(refused(&e)),
    };
    let first_party = clients::first_party_names(&app.db, None).await?;
    let validated = match metadata.validate(dev(&app), &first_party).await {
        Ok(validated) => validated,
        Err(e) => return Ok(refused(&e)),
    };
    // Refused before the token's client is spent (`clients::register`).
    if validated.subject_type != clients::SubjectType::Pairwise {
        let why = clients::PAIRWISE_ONLY.to_owned();
        return Ok(refused(&RegistrationError::InvalidClientMetadata(why)));
    }
    if let Some(refusal) = registration::groups_a_private_scheme(&validated) {
        return Ok(refused(&refusal));
    }
    if !registration::spend(&app, &permit).await? {
        return Ok(caller.refused(&app).await);
    }
    let registered = match clients::register(&app.db, validated, app.now()).await {
        Ok(registered) => registered,
        Err(e) => return not_stored(e),
    };
    tracing::info!(client = %registered.client.id, "client registered itself");
    let entry = Entry::new(Event::ClientRegistered, Outcome::Ok).client(&registered.client.id);
    audit::record(&app.db, entry, app.now()).await;
    let body = registration::response(
        &app,
        &registered.client,
        registered.secret.as_ref().map(|s| s.expose_secret()),
        Some(registered.registration_access_token.expose_secret()),
    );
    Ok(json_response(StatusCode::CREATED, body))
}

/// `GET /register/{client_id}`: the client information response of RFC 7592
/// §3, with the registration access token that replaces the one presented
/// (the client must keep the new one).
pub async fn read(
    State(app): AppState,
    Path(client_id): Path<String>,
    caller: Caller,
) -> Result<Response, WebError> {
    let Some((client, presented)) = caller.manages(&app, &client_id).await? else {
        return Ok(caller.refused(&app).await);
    };
    Ok(
        match clients::rotate_registration_token(&app.db, &client.id, presented).await? {
            Some(token) => json_response(
                StatusCode::OK,
                registration::response(&app, &client, None, Some(token.expose_secret())),
            ),
            // A call under way with the same token renewed it first.
            None => refused(&RegistrationError::InvalidToken),
        },
    )
}

/// `PUT /register/{client_id}`: the registration replaced (RFC 7592 §2.2).
pub async fn replace(
    State(app): AppState,
    Path(client_id): Path<String>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, WebError> {
    let Some((client, presented)) = caller.manages(&app, &client_id).await? else {
        return Ok(caller.refused(&app).await);
    };
    let metadata = match parse(&body) {
        Ok(metadata) => metadata,
        Err(e) => return Ok(refused(&e)),
    };
    if metadata.client_id.as_deref() != Some(client.id.as_str()) {
        return Ok(refused(&RegistrationError::InvalidClientMetadata(
            "client_id must be the client's".into(),
        )));
    }
    if let Some(secret) = &metadata.client_secret
        && !client.secret_matches(secret)
    {
        return Ok(refused(&RegistrationError::InvalidClientMetadata(
            "client_secret is not the client's".into(),
        )));
    }
    let first_party = clients::first_party_names(&app.db, Some(&client.id)).await?;
    let validated = match metadata.validate(dev(&app), &first_party).await {
        Ok(validated) => validated,
        Err(e) => return Ok(refused(&e)),
    };
    let (client, token) =
        match clients::replace_registration(&app.db, client, validated, presented).await {
            Ok(Some(replaced)) => replaced,
            // A call under way with the same token renewed it first.
            Ok(None) => return Ok(refused(&RegistrationError::InvalidToken)),
            Err(e) => return not_stored(e),
        };
    app.clients.forget(&client.id);
    crate::oidc::assertion::forget_keys(&app, &client.id).await?;
    tracing::info!(client = %client.id, "client registration replaced");
    Ok(json_response(
        StatusCode::OK,
        registration::response(&app, &client, None, Some(token.expose_secret())),
    ))
}

/// `DELETE /register/{client_id}` (RFC 7592 §2.3).
pub async fn delete(
    State(app): AppState,
    Path(client_id): Path<String>,
    caller: Caller,
) -> Result<Response, WebError> {
    let Some((client, _)) = caller.manages(&app, &client_id).await? else {
        return Ok(caller.refused(&app).await);
    };
    clients::delete(&app.db, &client.id, app.now()).await?;
    app.clients.forget(&client.id);
    tracing::info!(client = %client.id, "client deleted its registration");
    let entry = Entry::new(Event::ClientDeleted, Outcome::Ok).client(&client.id);
    audit::record(&app.db, entry, app.now()).await;
    let mut response = StatusCode::NO_CONTENT.into_response();
    no_store(&mut response);
    Ok(response)
}
