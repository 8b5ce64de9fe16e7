//! Request objects (OIDC Core §6, RFC 9101) and pushed authorization requests
//! (RFC 9126): the parameters of an authorization request, signed by the
//! client (`request`, or fetched from a `request_uri`) or pushed beforehand
//! to `/par` and named by a one-time `urn:ietf:params:oauth:request_uri:…`.
//! Either way they are turned into plain parameters here, once, before the
//! request is validated like any other.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::clients::Client;
use super::outbound::Reach;
use super::{ErrorCode, OAuthError, assertion};
use crate::app::Clef;
use crate::domain::Params;
use crate::secret::random_token;
use crate::storage::Kind;

/// RFC 9126 §2.2.
pub const PAR_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";
/// A pushed request is good for this many seconds, once.
pub const PAR_TTL: i64 = 60;

/// A pushed authorization request, kept until used or expired.
#[derive(Debug, Serialize, Deserialize)]
struct Pushed {
    client_id: String,
    params: Vec<(String, String)>,
    expires_at: i64,
}

fn pushed(app: &Clef) -> Kind<Pushed> {
    Kind::new(&app.store, "par")
}

fn invalid_object(why: &str) -> OAuthError {
    OAuthError::new(
        ErrorCode::InvalidRequestObject,
        format!("request object refused: {why}"),
    )
}

fn invalid_uri(why: &'static str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidRequestUri, why)
}

/// Where a request object comes from (OIDC Core §6.1, §6.2).
enum Source<'a> {
    Value(&'a str),
    Reference(&'a str),
}

/// The parameters an `/authorize` request stands for: its own, those of its
/// request object (which win over the query's, OIDC Core §6.3.3), or those it
/// pushed (RFC 9126 §4).
pub async fn resolve(app: &Clef, params: Params) -> Result<Params, OAuthError> {
    let source = match (params.get("request"), params.get("request_uri")) {
        (None, None) => return Ok(params),
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_request(
                "request and request_uri cannot be used together",
            ));
        }
        (Some(object), None) => Source::Value(object),
        (None, Some(uri)) if uri.starts_with(PAR_PREFIX) => {
            return take_pushed(app, &params, uri).await;
        }
        (None, Some(uri)) => Source::Reference(uri),
    };
    // The client first: nothing is fetched for a request that names none.
    let client_id = params
        .get("client_id")
        .ok_or_else(|| OAuthError::invalid_request("client_id is missing"))?;
    let client = app
        .clients
        .find(&app.db, client_id)
        .await?
        .ok_or_else(|| OAuthError::invalid_client("unknown client_id"))?;
    let object = match source {
        Source::Value(object) => object.to_owned(),
        Source::Reference(uri) => {
            let reach = Reach::of(app, client.is_first_party);
            fetch_object(&client, uri, app.config.issuer.scheme() == "http", reach).await?
        }
    };
    let claims = verify(app, &client, &object).await?;
    merge(&params, claims)
}

/// The authorization parameters Clef reads (`authorize`).
const READ: [&str; 17] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "prompt",
    "max_age",
    "login_hint",
    "id_token_hint",
    "ui_locales",
    "response_mode",
    "code_challenge",
    "code_challenge_method",
    "claims",
    "display",
    "acr_values",
];

/// The request's parameters once its object's claims are read (RFC 9101
/// §6.3): the object's claims win, `request` and `request_uri` go, strings,
/// numbers and booleans travel as text and `claims` as its JSON, the JWT's own
/// claims (`iss`, `aud`, `exp`…) are not parameters. Read without any store
/// (so fuzzed: `fuzz/fuzz_targets/request_object.rs`).
pub fn merge(params: &Params, claims: Map<String, Value>) -> Result<Params, OAuthError> {
    let mut merged: Vec<(String, String)> = params
        .pairs()
        .filter(|(name, _)| !matches!(*name, "request" | "request_uri"))
        .filter(|(name, _)| !claims.contains_key(*name))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    for (name, value) in claims {
        // The JWT's own claims are not parameters, nor is a nested object
        // (`verify` refuses one; never passed on whoever calls this).
        if matches!(
            name.as_str(),
            "iss" | "aud" | "exp" | "iat" | "nbf" | "jti" | "sub" | "request" | "request_uri"
        ) {
            continue;
        }
        let value = match value {
            Value::String(text) => text,
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            // `claims` is an object: it travels as its JSON, as in a query.
            Value::Object(_) if name == "claims" => value.to_string(),
            // A parameter Clef reads, in a shape no parameter has
            // (`"prompt": ["none"]`, `"state": null`), refuses the object:
            // dropped, it would silently turn a silent request into a login
            // page, or lose the client's `state`. Others (`resource` arrays,
            // `authorization_details`) are not Clef's to read: dropped.
            _ if READ.contains(&name.as_str()) => {
                return Err(invalid_object(&format!(
                    "{} must be a string, a number or a boolean",
                    ascii_name(&name)
                )));
            }
            _ => continue,
        };
        merged.push((name, value));
    }
    Params::from_pairs(merged).map_err(|e| invalid_object(&e.wire_description()))
}

/// OIDC Core §6.2: a request object published by the client at an https URL
/// (loopback http too when `dev`, an http issuer: development). Only a client
/// that signs request objects (it has keys), and only on a host of its own
/// (one of its redirect URIs' or its `jwks_uri`'s), so that the request_uri
/// cannot make Clef reach any address it can (RFC 9101 §10.4.1).
async fn fetch_object(
    client: &Client,
    uri: &str,
    dev: bool,
    reach: Reach,
) -> Result<String, OAuthError> {
    let url = url::Url::parse(uri).map_err(|_| invalid_uri("request_uri is not a URL"))?;
    let loopback = crate::domain::is_loopback(&url);
    if !(url.scheme() == "https" || (dev && url.scheme() == "http" && loopback)) {
        return Err(invalid_uri("request_uri must be https"));
    }
    if client.jwks.is_none() && client.jwks_uri.is_none() {
        return Err(invalid_uri(
            "this client has no keys to sign request objects with",
        ));
    }
    let mut own_hosts = client
        .redirect_uris
        .iter()
        .filter_map(|r| url::Url::parse(r.as_str()).ok())
        .chain(client.jwks_uri.clone());
    let host = url.host_str();
    if !own_hosts.any(|own| own.host_str() == host) {
        return Err(invalid_uri(
            "request_uri must be on a host of the client's redirect URIs or jwks_uri",
        ));
    }
    let body = assertion::fetch_bytes(&url, reach)
        .await
        .map_err(|_| invalid_uri("request_uri could not be read"))?;
    String::from_utf8(body)
        .map(|text| text.trim().to_owned())
        .map_err(|_| invalid_uri("request_uri does not hold a request object"))
}

/// The claims of a request object the client signed with one of its keys
/// (RS256, ES256 or EdDSA; never `none`), for this issuer, not expired.
async fn verify(
    app: &Clef,
    client: &Client,
    object: &str,
) -> Result<Map<String, Value>, OAuthError> {
    let header: Map<String, Value> = object
        .split('.')
        .next()
        .and_then(|h| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(h)
                .ok()
        })
        .and_then(|h| serde_json::from_slice(&h).ok())
        .ok_or_else(|| invalid_object("not a JWS"))?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .filter(|alg| assertion::ALGS.contains(alg))
        .ok_or_else(|| invalid_object("it must be signed with RS256, ES256, EdDSA or Ed25519"))?;
    // OIDC Registration §2: a registered algorithm is the only one taken.
    if client
        .request_object_signing_alg
        .as_deref()
        .is_some_and(|registered| !assertion::same_alg(registered, alg))
    {
        return Err(invalid_object(
            "alg is not the client's request_object_signing_alg",
        ));
    }
    let kid = header.get("kid").and_then(Value::as_str);
    if client.jwks.is_none() && client.jwks_uri.is_none() {
        return Err(invalid_object("the client has no registered keys"));
    }
    // The client's keys unreadable (its jwks_uri down): the request object
    // cannot be checked, which is not a failed client authentication.
    let claims = assertion::signed_by_client(app, client, object, alg, kid)
        .await
        .map_err(|e| match e.code {
            ErrorCode::InvalidClient => invalid_object("the client's keys could not be read"),
            _ => e,
        })?
        .ok_or_else(|| invalid_object("bad signature or unknown key"))?;
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    if text("client_id").is_some_and(|id| id != client.id) {
        return Err(invalid_object("client_id differs from the request's"));
    }
    if text("iss").is_some_and(|iss| iss != client.id) {
        return Err(invalid_object("iss must be the client_id"));
    }
    let audience_ok = match claims.get("aud") {
        None => true,
        Some(Value::String(aud)) => aud == app.config.issuer_str(),
        Some(Value::Array(auds)) => auds
            .iter()
            .any(|a| a.as_str() == Some(app.config.issuer_str())),
        Some(_) => false,
    };
    if !audience_ok {
        return Err(invalid_object("aud must be the issuer"));
    }
    check_times(&claims, app.now())?;
    if claims.get("request").is_some() || claims.get("request_uri").is_some() {
        return Err(invalid_object("a request object cannot hold another"));
    }
    Ok(claims)
}

/// How far ahead of Clef's clock a client's clock may be (`nbf`).
const CLOCK_SKEW: i64 = 60;

/// RFC 7519 §2, §4.1.4–4.1.6: `exp`, `nbf` and `iat`, when present, are
/// numbers of seconds (fractions allowed); an object past its `exp` or
/// before its `nbf` is refused.
fn check_times(claims: &Map<String, Value>, now: i64) -> Result<(), OAuthError> {
    let time = |name: &str| match claims.get(name) {
        None => Ok(None),
        Some(value) => value
            .as_f64()
            .filter(|seconds| seconds.is_finite())
            .map(Some)
            .ok_or_else(|| invalid_object(&format!("{name} must be a number of seconds"))),
    };
    let (exp, nbf) = (time("exp")?, time("nbf")?);
    time("iat")?;
    let now = now as f64;
    if exp.is_some_and(|exp| exp <= now) {
        return Err(invalid_object("expired"));
    }
    if nbf.is_some_and(|nbf| nbf > now + CLOCK_SKEW as f64) {
        return Err(invalid_object("not valid yet (nbf)"));
    }
    Ok(())
}

/// A member's name as an ASCII error description can carry it.
fn ascii_name(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(64)
        .collect()
}

/// The pushed request `uri` names, taken once, by its own client: another
/// client's request (whoever saw the address) leaves it where it is.
async fn take_pushed(app: &Clef, params: &Params, uri: &str) -> Result<Params, OAuthError> {
    let id = &uri[PAR_PREFIX.len()..];
    let unknown = || invalid_uri("request_uri is unknown, used or expired");
    let store = pushed(app);
    let found = store
        .get(id)
        .await?
        .filter(|p| p.expires_at > app.now())
        .ok_or_else(unknown)?;
    if params.get("client_id") != Some(found.client_id.as_str()) {
        return Err(invalid_uri("request_uri was pushed by another client"));
    }
    // Of two uses at once, one.
    let found = store.take(id).await?.ok_or_else(unknown)?;
    Params::from_pairs(found.params).map_err(|e| OAuthError::invalid_request(e.wire_description()))
}

/// `POST /par`: stores the (already validated) parameters for `PAR_TTL`
/// seconds; answers the `request_uri` that names them.
pub async fn push(app: &Clef, client: &Client, params: &Params) -> anyhow::Result<String> {
    let id = random_token(32);
    let pushed_request = Pushed {
        client_id: client.id.clone(),
        params: params
            .pairs()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        expires_at: app.now() + PAR_TTL,
    };
    pushed(app)
        .put(&id, &pushed_request, Duration::from_secs(PAR_TTL as u64))
        .await?;
    Ok(format!("{PAR_PREFIX}{id}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    #[test]
    fn the_object_wins_and_neither_jwt_claims_nor_nested_requests_become_parameters() {
        let params =
            Params::parse(b"client_id=ent&scope=email&request=x&state=q&prompt=login").unwrap();
        let merged = merge(
            &params,
            claims(json!({
                "scope": "openid profile",
                "iss": "ent", "aud": "https://clef.example", "exp": 1, "jti": "j", "sub": "s",
                "request": "inner", "request_uri": "https://x.example/r",
                "max_age": 0, "claims": {"userinfo": {"children": null}},
            })),
        )
        .unwrap();
        assert_eq!(
            merged.get("scope"),
            Some("openid profile"),
            "the object wins"
        );
        assert_eq!(merged.get("client_id"), Some("ent"));
        assert_eq!(merged.get("state"), Some("q"), "the query's own stay");
        assert_eq!(merged.get("max_age"), Some("0"));
        assert_eq!(
            merged.get("claims"),
            Some(r#"{"userinfo":{"children":null}}"#)
        );
        for gone in ["iss", "aud", "exp", "jti", "sub", "request", "request_uri"] {
            assert!(!merged.contains(gone), "{gone}");
        }
        assert_eq!(merged.get("prompt"), Some("login"), "the query's");
    }

    /// A parameter Clef reads, in a shape no parameter has, refuses the
    /// object: dropped, `"prompt": ["none"]` would have made a silent request
    /// a login page, `"state": null` lost the client's state. A member Clef
    /// does not read is dropped whatever its shape.
    #[test]
    fn a_parameter_clef_reads_in_a_shape_no_parameter_has_refuses_the_object() {
        let params = Params::parse(b"client_id=ent&prompt=login&state=q").unwrap();
        for member in [
            json!({ "prompt": ["none"] }),
            json!({ "state": null }),
            json!({ "nonce": { "n": 1 } }),
        ] {
            let refused = merge(&params, claims(member.clone())).unwrap_err();
            assert_eq!(refused.code, ErrorCode::InvalidRequestObject, "{member}");
            assert!(refused.description.contains("must be a string"), "{member}");
        }
        let merged = merge(
            &params,
            claims(json!({
                "resource": ["https://api.example"],
                "authorization_details": [{ "type": "x" }],
                "extra": null,
            })),
        )
        .unwrap();
        for dropped in ["resource", "authorization_details", "extra"] {
            assert!(!merged.contains(dropped), "{dropped}");
        }
        assert_eq!(merged.get("prompt"), Some("login"));
    }

    #[test]
    fn exp_nbf_and_iat_are_numbers_of_seconds_and_bound_the_object() {
        let now = 1_000_000;
        let at = |value: Value| check_times(&claims(value), now);
        assert!(at(json!({})).is_ok());
        assert!(at(json!({ "exp": now + 60, "nbf": now + 30, "iat": now })).is_ok());
        assert!(at(json!({ "exp": now as f64 + 0.5, "iat": now as f64 - 0.25 })).is_ok());
        for refused in [
            json!({ "exp": now }),
            json!({ "exp": now as f64 - 0.5 }),
            json!({ "exp": "0" }),
            json!({ "nbf": now + 3600 }),
            json!({ "nbf": null }),
            json!({ "iat": "yesterday" }),
        ] {
            let error = at(refused.clone()).unwrap_err();
            assert_eq!(error.code, ErrorCode::InvalidRequestObject, "{refused}");
        }
    }
}
