//! `private_key_jwt` client authentication (OIDC Core §9, RFC 7523 §2.2): the
//! client signs a short-lived JWT with its own private key; Clef checks it
//! against the client's registered public keys (inline `jwks`, or `jwks_uri`
//! fetched and kept five minutes in the shared store, fetched again when a
//! `kid` is unknown), checks `iss`, `sub`, `aud` (the issuer alone, unless
//! `client_assertion_audience` says otherwise), `exp`, and refuses a `jti`
//! seen before. Only asymmetric algorithms are taken: `none` and HMAC (which a
//! public key would make forgeable) never are.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jwk::Jwk;
use josekit::jws::{ES256, EdDSA, JwsVerifier, RS256};
use serde_json::{Map, Value};

use super::OAuthError;
use super::clients::Client;
use super::outbound::Reach;
use crate::app::Clef;
use crate::config::AssertionAudience;
use crate::secret::digest;
use crate::storage::Kind;

/// RFC 7523 §2.2.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The algorithms a client may sign its assertions with (`Ed25519` is the
/// fully-specified name of EdDSA on Ed25519, RFC 9864, which some libraries send).
pub const ALGS: &[&str] = &["RS256", "ES256", "EdDSA", "Ed25519"];

/// At most one fetch of a client's `jwks_uri` for an unknown `kid` in this
/// many seconds, whoever asks.
const REFETCH_INTERVAL: Duration = Duration::from_secs(10);

/// An assertion may not live longer than this: it bounds how long its `jti`
/// is remembered. An hour: what libraries give by default (authlib).
const MAX_LIFETIME: i64 = 60 * 60;
/// Clock difference forgiven between the client and Clef.
const LEEWAY: i64 = 60;
/// How long fetched client keys are kept.
const JWKS_TTL: Duration = Duration::from_secs(300);
/// A JWKS document larger than this is refused.
const MAX_JWKS: usize = 64 * 1024;

/// The unverified `iss` of an assertion: which client claims to have signed it.
pub fn claimed_client(assertion: &str) -> Option<String> {
    let payload = assertion.split('.').nth(1)?;
    let claims: Map<String, Value> =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    claims.get("iss")?.as_str().map(str::to_owned)
}

pub(super) fn refused(why: &str) -> OAuthError {
    OAuthError::invalid_client(format!("client assertion refused: {why}"))
}

/// Checks `assertion` for `client`; the client is authenticated when it passes.
pub async fn verify(app: &Clef, client: &Client, assertion: &str) -> Result<(), OAuthError> {
    let (alg, kid) = signing_header(assertion)?;
    // OIDC Registration §2: a registered algorithm is the only one taken.
    if client
        .token_endpoint_auth_signing_alg
        .as_deref()
        .is_some_and(|registered| !same_alg(registered, &alg))
    {
        return Err(refused(
            "alg is not the client's token_endpoint_auth_signing_alg",
        ));
    }
    let claims = signed_by_client(app, client, assertion, &alg, kid.as_deref())
        .await?
        .ok_or_else(|| refused("bad signature or unknown key"))?;

    let issuer = app.config.issuer_str();
    let endpoints = ["/token", "/par", "/introspect", "/revoke"].map(|e| app.config.endpoint(e));
    let legacy = [
        issuer,
        &endpoints[0],
        &endpoints[1],
        &endpoints[2],
        &endpoints[3],
    ];
    let audience = match app.config.client_assertion_audience {
        AssertionAudience::Issuer => Audience::Issuer(issuer),
        AssertionAudience::IssuerOrEndpoint => Audience::AnyOf(&legacy),
    };
    let (jti, ttl) = check_claims(&claims, &client.id, audience, app.now())?;
    // Counted before anything else uses it: of two concurrent presentations, one passes.
    let seen: Kind<()> = Kind::new(&app.store, "client-assertion");
    if seen
        .count(&digest(&format!("{}\0{jti}", client.id)), ttl)
        .await?
        > 1
    {
        return Err(refused("jti already used"));
    }
    Ok(())
}

/// The `alg` (one of `ALGS`) and `kid` of an assertion's header, unverified.
pub fn signing_header(assertion: &str) -> Result<(String, Option<String>), OAuthError> {
    let header = assertion
        .split('.')
        .next()
        .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
        .and_then(|h| serde_json::from_slice::<Map<String, Value>>(&h).ok())
        .ok_or_else(|| refused("not a JWS"))?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .filter(|alg| ALGS.contains(alg))
        .ok_or_else(|| refused("alg must be RS256, ES256, EdDSA or Ed25519"))?
        .to_owned();
    let kid = header.get("kid").and_then(Value::as_str).map(str::to_owned);
    Ok((alg, kid))
}

/// The `aud` an assertion may carry (see [`AssertionAudience`]).
#[derive(Clone, Copy)]
pub enum Audience<'a> {
    /// This issuer identifier, as the one string.
    Issuer(&'a str),
    /// One of these, alone or in a list.
    AnyOf(&'a [&'a str]),
}

/// The checks of verified claims that need no store: `iss` and `sub` are
/// the client, `aud` is `audience`, `exp` and `nbf` frame `now`, and a `jti`
/// is there. Gives the `jti` and how long to remember it.
pub fn check_claims<'c>(
    claims: &'c Map<String, Value>,
    client_id: &str,
    audience: Audience<'_>,
    now: i64,
) -> Result<(&'c str, Duration), OAuthError> {
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    if text("iss") != Some(client_id) || text("sub") != Some(client_id) {
        return Err(refused("iss and sub must be the client_id"));
    }
    match audience {
        Audience::Issuer(issuer) => {
            if text("aud") != Some(issuer) {
                return Err(refused(
                    "aud must be the issuer identifier, as a single string",
                ));
            }
        }
        Audience::AnyOf(accepted) => {
            let presented: Vec<&str> = match claims.get("aud") {
                Some(Value::String(one)) => vec![one.as_str()],
                Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            if !presented.iter().any(|aud| accepted.contains(aud)) {
                return Err(refused("aud must be the issuer or the endpoint"));
            }
        }
    }
    // NumericDate may have a fraction (RFC 7519 §2).
    let seconds = |name: &str| {
        claims
            .get(name)
            .and_then(Value::as_f64)
            .filter(|s| s.is_finite())
            .map(|s| s as i64)
    };
    let exp = seconds("exp").ok_or_else(|| refused("exp is missing"))?;
    // `exp` is the client's number: near i64::MAX, `exp + LEEWAY` would overflow.
    if exp.saturating_add(LEEWAY) <= now {
        return Err(refused("expired"));
    }
    if exp > now + MAX_LIFETIME + LEEWAY {
        return Err(refused("exp is too far in the future"));
    }
    if seconds("nbf").is_some_and(|nbf| nbf > now + LEEWAY) {
        return Err(refused("not valid yet"));
    }
    let jti = text("jti")
        .filter(|jti| !jti.is_empty() && jti.len() <= 256)
        .ok_or_else(|| refused("jti is missing"))?;
    let ttl = Duration::from_secs((exp - now + LEEWAY).clamp(1, MAX_LIFETIME + 2 * LEEWAY) as u64);
    Ok((jti, ttl))
}

/// `EdDSA` and `Ed25519` name the same algorithm here.
pub(super) fn same_alg(a: &str, b: &str) -> bool {
    fn canonical(alg: &str) -> &str {
        if alg == "Ed25519" { "EdDSA" } else { alg }
    }
    canonical(a) == canonical(b)
}

/// The claims of `jwt` when one of the client's keys signed it with `alg`.
/// The keys of a `jwks_uri` come from the cache; they are fetched again only
/// for a `kid` the cache does not know (the client rotated), at most once
/// every `REFETCH_INTERVAL`, so a stranger cannot make Clef fetch them at will.
pub(super) async fn signed_by_client(
    app: &Clef,
    client: &Client,
    jwt: &str,
    alg: &str,
    kid: Option<&str>,
) -> Result<Option<Map<String, Value>>, OAuthError> {
    let keys = client_keys(app, client, false).await?;
    if let Some(claims) = check_signature(jwt, alg, kid, &keys) {
        return Ok(Some(claims));
    }
    let unknown_kid = kid.is_some_and(|kid| {
        !keys
            .iter()
            .any(|key| key.get("kid").and_then(Value::as_str) == Some(kid))
    });
    if client.jwks_uri.is_none() || !unknown_kid {
        return Ok(None);
    }
    let refetches: Kind<()> = Kind::new(&app.store, "client-jwks-refetch");
    if refetches.count(&client.id, REFETCH_INTERVAL).await? > 1 {
        return Ok(None);
    }
    let keys = client_keys(app, client, true).await?;
    Ok(check_signature(jwt, alg, kid, &keys))
}

/// The claims, when a key of the set (the one named by `kid`, else any of a
/// matching type) verifies the signature with `alg`.
pub fn check_signature(
    assertion: &str,
    alg: &str,
    kid: Option<&str>,
    keys: &[Map<String, Value>],
) -> Option<Map<String, Value>> {
    // The signature is checked over `header.payload` here, rather than by
    // josekit's compact deserialiser, which would refuse the header's
    // `Ed25519` (RFC 9864's name) for its EdDSA verifier.
    let (signed, signature) = assertion.rsplit_once('.')?;
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    let payload = URL_SAFE_NO_PAD.decode(signed.split_once('.')?.1).ok()?;
    keys.iter()
        .filter(|key| kid.is_none() || key.get("kid").and_then(Value::as_str) == kid)
        .filter(|key| {
            key.get("alg")
                .and_then(Value::as_str)
                .is_none_or(|key_alg| same_alg(key_alg, alg))
        })
        .filter(|key| {
            key.get("use")
                .and_then(Value::as_str)
                .is_none_or(|u| u == "sig")
        })
        .find_map(|key| {
            let jwk = Jwk::from_map(key.clone()).ok()?;
            // Each verifier checks the key type: an RSA key never verifies ES256 or EdDSA.
            let verifier: Box<dyn JwsVerifier> = match alg {
                "RS256" => Box::new(RS256.verifier_from_jwk(&jwk).ok()?),
                "ES256" => Box::new(ES256.verifier_from_jwk(&jwk).ok()?),
                "EdDSA" | "Ed25519" => Box::new(EdDSA.verifier_from_jwk(&jwk).ok()?),
                _ => return None,
            };
            verifier.verify(signed.as_bytes(), &signature).ok()?;
            serde_json::from_slice(&payload).ok()
        })
}

/// The cached keys of a client's `jwks_uri`.
fn cached_keys(app: &Clef) -> Kind<Value> {
    Kind::new(&app.store, "client-jwks")
}

/// Forgets the keys cached for `client_id`: its registration changed (a new
/// `jwks_uri`, or new keys at it), and the old ones must not sign for it.
pub async fn forget_keys(app: &Clef, client_id: &str) -> anyhow::Result<()> {
    cached_keys(app).delete(client_id).await
}

/// The client's public keys: inline, or from its `jwks_uri` (cached unless `fresh`).
pub(super) async fn client_keys(
    app: &Clef,
    client: &Client,
    fresh: bool,
) -> Result<Vec<Map<String, Value>>, OAuthError> {
    let set = match (&client.jwks, &client.jwks_uri) {
        (Some(inline), _) => inline.clone(),
        (None, Some(uri)) => {
            let cache = cached_keys(app);
            let cached = if fresh {
                None
            } else {
                cache.get(&client.id).await?
            };
            match cached {
                Some(set) => set,
                None => {
                    let reach = Reach::of(app, client.is_first_party);
                    let set = fetch(uri, reach).await.map_err(|e| {
                        tracing::warn!(client = %client.id, error = %e, "client jwks_uri not fetched");
                        refused("the client's jwks_uri could not be read")
                    })?;
                    cache.put(&client.id, &set, JWKS_TTL).await?;
                    set
                }
            }
        }
        (None, None) => return Err(refused("the client has no registered keys")),
    };
    Ok(set
        .get("keys")
        .and_then(Value::as_array)
        .map(|keys| keys.iter().filter_map(|k| k.as_object().cloned()).collect())
        .unwrap_or_default())
}

/// Fetches a JWKS document.
pub async fn fetch(uri: &url::Url, reach: Reach) -> anyhow::Result<Value> {
    let set: Value = serde_json::from_slice(&fetch_bytes(uri, reach).await?)?;
    anyhow::ensure!(
        set.get("keys").is_some_and(Value::is_array),
        "no keys array"
    );
    Ok(set)
}

/// GETs a small document the client published: no redirects, five seconds,
/// 64 KiB, at an address the client may make Clef reach (`outbound`).
pub async fn fetch_bytes(uri: &url::Url, reach: Reach) -> anyhow::Result<Vec<u8>> {
    anyhow::ensure!(reach.allows(uri), "not a public address");
    let http = reach.http(Duration::from_secs(5))?;
    // Errors without the URL: they are logged, and a client's URL may carry a token.
    let mut response = http
        .get(uri.clone())
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(reqwest::Error::without_url)?;
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(reqwest::Error::without_url)?
    {
        body.extend_from_slice(&chunk);
        anyhow::ensure!(body.len() <= MAX_JWKS, "the document is larger than 64 KiB");
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seen while writing `fuzz/fuzz_targets/client_assertion.rs` (its seed
    /// `signed-ed-exp-max`): an `exp` near `i64::MAX` overflowed
    /// `exp + LEEWAY`, a panic in debug builds, a wrap in release ones.
    #[test]
    fn an_exp_at_the_end_of_time_is_refused_without_overflow() {
        let now = 1_767_225_600;
        for exp in [i64::MAX, i64::MAX - LEEWAY + 1, i64::MIN] {
            let claims: Map<String, Value> = serde_json::from_value(serde_json::json!({
                "iss": "ent", "sub": "ent", "aud": "https://clef.example",
                "jti": "j1", "exp": exp,
            }))
            .unwrap();
            let refused = check_claims(
                &claims,
                "ent",
                Audience::Issuer("https://clef.example"),
                now,
            )
            .unwrap_err();
            assert!(
                refused.description.contains("exp"),
                "{exp}: {}",
                refused.description
            );
        }
    }
}
