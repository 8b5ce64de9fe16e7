//! Dynamic client registration (RFC 7591, OIDC Dynamic Registration 1.0) and
//! its management (RFC 7592): a relying party registers itself with an
//! initial access token from the operator (`clef client token`), or freely
//! when `registration_open` is set; it gets a registration access token to
//! read, replace or delete its registration. Every metadata field is checked;
//! fields Clef does not know are ignored (RFC 7591 §2).

use serde::Deserialize;
use serde_json::{Map, Value, json};
use url::Url;

use super::assertion;
use super::clients::{
    self, AuthMethod, Client, GrantTypes, Registration, SIGNING_ALGS, SubjectType,
    parse_backchannel_uri,
};
use super::outbound::Reach;
use crate::app::Clef;
use crate::domain::RedirectUri;
use crate::secret::{constant_time_eq, digest, random_token};
use crate::storage::Db;

/// Why a registration is refused (RFC 7591 §3.2.2, RFC 6750 §3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationError {
    InvalidRedirectUri(String),
    InvalidClientMetadata(String),
    /// No initial access token, or a wrong one; a wrong registration access token.
    InvalidToken,
}

impl RegistrationError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRedirectUri(_) => "invalid_redirect_uri",
            Self::InvalidClientMetadata(_) => "invalid_client_metadata",
            Self::InvalidToken => "invalid_token",
        }
    }

    /// ASCII, as RFC 7591 §3.2.2 asks: a client's value echoed back is made so.
    pub fn description(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Self::InvalidRedirectUri(why) | Self::InvalidClientMetadata(why) => {
                super::error::ascii_description(why)
            }
            Self::InvalidToken => "the access token is missing, invalid or expired".into(),
        }
    }
}

fn metadata(why: impl Into<String>) -> RegistrationError {
    RegistrationError::InvalidClientMetadata(why.into())
}

/// The metadata a client sends (RFC 7591 §2, OIDC Registration §2), as sent.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ClientMetadata {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub response_types: Option<Vec<String>>,
    pub grant_types: Option<Vec<String>>,
    pub application_type: Option<String>,
    pub client_name: Option<String>,
    pub token_endpoint_auth_method: Option<String>,
    pub token_endpoint_auth_signing_alg: Option<String>,
    pub jwks: Option<Value>,
    pub jwks_uri: Option<String>,
    pub scope: Option<String>,
    pub subject_type: Option<String>,
    pub sector_identifier_uri: Option<String>,
    pub id_token_signed_response_alg: Option<String>,
    pub userinfo_signed_response_alg: Option<String>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    pub backchannel_logout_uri: Option<String>,
    pub logo_uri: Option<String>,
    pub policy_uri: Option<String>,
    pub tos_uri: Option<String>,
    pub client_uri: Option<String>,
    pub default_max_age: Option<i64>,
    /// Clef always puts `auth_time` in its ID tokens: any value is met.
    pub require_auth_time: Option<bool>,
    pub request_object_signing_alg: Option<String>,
    /// Encryption Clef does not do: a client asking for it is refused,
    /// rather than sent in clear what it expects encrypted.
    pub id_token_encrypted_response_alg: Option<Value>,
    pub id_token_encrypted_response_enc: Option<Value>,
    pub userinfo_encrypted_response_alg: Option<Value>,
    pub userinfo_encrypted_response_enc: Option<Value>,
    pub request_object_encryption_alg: Option<Value>,
    pub request_object_encryption_enc: Option<Value>,
    pub authorization_encrypted_response_alg: Option<Value>,
    pub authorization_encrypted_response_enc: Option<Value>,
}

/// The longest `default_max_age` taken: a year.
const MAX_DEFAULT_MAX_AGE: i64 = 365 * 24 * 3600;

/// An https URL (http on loopback in development only: Clef fetches some of
/// them, and must not be led to its own host's services in production).
fn web_url(field: &str, raw: &str, dev: bool) -> Result<Url, RegistrationError> {
    let url = Url::parse(raw).map_err(|_| metadata(format!("{field} is not a URL")))?;
    let loopback = crate::domain::is_loopback(&url);
    if !(url.scheme() == "https" || (dev && url.scheme() == "http" && loopback))
        || url.fragment().is_some()
    {
        return Err(metadata(format!(
            "{field} must be an https URL without fragment"
        )));
    }
    Ok(url)
}

fn optional_url(
    field: &str,
    raw: &Option<String>,
    dev: bool,
) -> Result<Option<Url>, RegistrationError> {
    raw.as_deref()
        .map(|raw| web_url(field, raw, dev))
        .transpose()
}

fn alg(field: &str, raw: &Option<String>) -> Result<Option<String>, RegistrationError> {
    match raw.as_deref() {
        None => Ok(None),
        Some(alg) if SIGNING_ALGS.contains(&alg) => Ok(Some(alg.to_owned())),
        Some(_) => Err(metadata(format!("{field} must be RS256, ES256 or EdDSA"))),
    }
}

/// A client's own JWKS: public keys only, each usable by josekit.
fn check_jwks(set: &Value) -> Result<(), RegistrationError> {
    let keys = set
        .get("keys")
        .and_then(Value::as_array)
        .filter(|keys| !keys.is_empty())
        .ok_or_else(|| metadata("jwks must hold a non-empty keys array"))?;
    for key in keys {
        let map: Map<String, Value> = key
            .as_object()
            .cloned()
            .ok_or_else(|| metadata("each key of jwks is an object"))?;
        if map.contains_key("d") || map.get("kty").and_then(Value::as_str) == Some("oct") {
            return Err(metadata("jwks holds public keys only"));
        }
        josekit::jwk::Jwk::from_map(map).map_err(|_| metadata("a key of jwks is not a JWK"))?;
    }
    Ok(())
}

impl ClientMetadata {
    /// Checks every field; fetches `sector_identifier_uri` and checks it lists
    /// every redirect URI (OIDC Registration §5).
    /// `dev`: the issuer is plain http (development): URLs Clef fetches or
    /// shows may then be loopback http; in production they are https only.
    /// `first_party`: the names of the academy's own services, which no
    /// client registering itself may pass for on a consent page.
    pub async fn validate(
        self,
        dev: bool,
        first_party: &[String],
    ) -> Result<Registration, RegistrationError> {
        if let Some(types) = &self.response_types
            && types.iter().any(|t| t != "code")
        {
            return Err(metadata("response_types: only code is supported"));
        }
        let grants = self
            .grant_types
            .clone()
            .unwrap_or_else(|| vec!["authorization_code".into()]);
        let grant_types = GrantTypes::parse(&grants.join(" ")).map_err(|_| {
            metadata("grant_types: authorization_code, refresh_token, client_credentials")
        })?;
        let application_type = self.application_type.as_deref().unwrap_or("web");
        if !matches!(application_type, "web" | "native") {
            return Err(metadata("application_type is web or native"));
        }
        let redirect_uris = self
            .redirect_uris
            .clone()
            .unwrap_or_default()
            .iter()
            .map(|raw| {
                let uri = RedirectUri::parse_or_why(raw).map_err(|why| {
                    RegistrationError::InvalidRedirectUri(format!(
                        "{raw} is not an acceptable redirect URI: {why}"
                    ))
                })?;
                // A web application redirects to https only (OIDC Registration §2).
                let on_web = Url::parse(raw).is_ok_and(|url| {
                    url.scheme() == "https"
                        || (url.scheme() == "http" && crate::domain::is_loopback(&url))
                });
                if application_type == "web" && !on_web {
                    return Err(RegistrationError::InvalidRedirectUri(format!(
                        "{raw}: a web application redirects to https"
                    )));
                }
                Ok(uri)
            })
            .collect::<Result<Vec<_>, _>>()?;
        if grant_types.authorization_code && redirect_uris.is_empty() {
            return Err(RegistrationError::InvalidRedirectUri(
                "redirect_uris is required".into(),
            ));
        }
        let auth_method = match self.token_endpoint_auth_method.as_deref() {
            None => AuthMethod::ClientSecretBasic,
            Some(raw) => AuthMethod::parse(raw).ok_or_else(|| {
                metadata(
                    "token_endpoint_auth_method: client_secret_basic, client_secret_post, private_key_jwt or none",
                )
            })?,
        };
        // What the client signs, Clef verifies: the algorithms of assertions
        // (`Ed25519` too, RFC 9864's name of EdDSA), as discovery lists them.
        for (field, alg) in [
            (
                "token_endpoint_auth_signing_alg",
                &self.token_endpoint_auth_signing_alg,
            ),
            (
                "request_object_signing_alg",
                &self.request_object_signing_alg,
            ),
        ] {
            if let Some(alg) = alg
                && !assertion::ALGS.contains(&alg.as_str())
            {
                return Err(metadata(format!(
                    "{field} must be RS256, ES256, EdDSA or Ed25519"
                )));
            }
        }
        let encrypted = [
            (
                "id_token_encrypted_response_alg",
                &self.id_token_encrypted_response_alg,
            ),
            (
                "id_token_encrypted_response_enc",
                &self.id_token_encrypted_response_enc,
            ),
            (
                "userinfo_encrypted_response_alg",
                &self.userinfo_encrypted_response_alg,
            ),
            (
                "userinfo_encrypted_response_enc",
                &self.userinfo_encrypted_response_enc,
            ),
            (
                "request_object_encryption_alg",
                &self.request_object_encryption_alg,
            ),
            (
                "request_object_encryption_enc",
                &self.request_object_encryption_enc,
            ),
            (
                "authorization_encrypted_response_alg",
                &self.authorization_encrypted_response_alg,
            ),
            (
                "authorization_encrypted_response_enc",
                &self.authorization_encrypted_response_enc,
            ),
        ];
        if let Some((field, _)) = encrypted.iter().find(|(_, v)| v.is_some()) {
            return Err(metadata(format!(
                "{field}: Clef does not encrypt; its tokens are signed only"
            )));
        }
        if let Some(set) = &self.jwks {
            check_jwks(set)?;
        }
        if self
            .default_max_age
            .is_some_and(|age| !(0..=MAX_DEFAULT_MAX_AGE).contains(&age))
        {
            return Err(metadata(
                "default_max_age must be a number of seconds from 0 to 31536000",
            ));
        }
        let jwks_uri = optional_url("jwks_uri", &self.jwks_uri, dev)?;
        if self.jwks.is_some() && jwks_uri.is_some() {
            return Err(metadata("jwks and jwks_uri cannot both be given"));
        }
        if auth_method == AuthMethod::PrivateKeyJwt && self.jwks.is_none() && jwks_uri.is_none() {
            return Err(metadata("private_key_jwt needs jwks or jwks_uri"));
        }
        if auth_method == AuthMethod::None && grant_types.client_credentials {
            return Err(metadata("a public client cannot use client_credentials"));
        }
        let service_scopes: Vec<String> = if grant_types.client_credentials {
            clients::parse_service_scopes(self.scope.as_deref().unwrap_or(""))
                .map_err(|_| metadata("client_credentials needs scope"))?
        } else {
            Vec::new()
        };
        let subject_type = match self.subject_type.as_deref() {
            None => SubjectType::Pairwise,
            Some(raw) => SubjectType::parse(raw)
                .ok_or_else(|| metadata("subject_type is public or pairwise"))?,
        };
        let sector_identifier_uri =
            optional_url("sector_identifier_uri", &self.sector_identifier_uri, dev)?;
        match &sector_identifier_uri {
            Some(uri) => check_sector(uri, &redirect_uris, dev).await?,
            // OIDC Core §8.1: redirect URIs on several hosts need a sector.
            None if subject_type == SubjectType::Pairwise => {
                // (Loopback addresses, 127.0.0.1 and [::1] alike, are one:
                // the app's own sector.)
                let hosts: std::collections::BTreeSet<Option<String>> = redirect_uris
                    .iter()
                    .map(|uri| super::clients::sector_of(uri.as_str()))
                    .collect();
                if hosts.len() > 1 {
                    return Err(metadata(
                        "redirect_uris on several hosts need a sector_identifier_uri for pairwise subjects",
                    ));
                }
            }
            None => {}
        }
        let post_logout_redirect_uris = self
            .post_logout_redirect_uris
            .clone()
            .unwrap_or_default()
            .iter()
            .map(|raw| {
                RedirectUri::parse(raw).map_err(|_| {
                    metadata(format!(
                        "post_logout_redirect_uris: {raw} is not acceptable"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let backchannel_logout_uri = self
            .backchannel_logout_uri
            .as_deref()
            .map(|raw| {
                // Clef POSTs there: loopback http only in development, as for the URLs it fetches.
                web_url("backchannel_logout_uri", raw, dev)?;
                parse_backchannel_uri(raw).map_err(|_| {
                    metadata("backchannel_logout_uri must be an https URL without fragment")
                })
            })
            .transpose()?;
        let name = match self.client_name.as_deref().map(str::trim) {
            None | Some("") => "Service".to_owned(),
            Some(name) => crate::domain::shown_text("client_name", name, 100)
                .map_err(|_| {
                    metadata(
                        "client_name is at most 100 characters of text, without control or direction characters",
                    )
                })?,
        };
        if first_party.iter().any(|own| looks_alike(own, &name)) {
            return Err(metadata(
                "client_name is the name of one of the academy's own services",
            ));
        }
        optional_url("client_uri", &self.client_uri, dev)?;
        Ok(Registration {
            name,
            redirect_uris,
            post_logout_redirect_uris,
            auth_method,
            jwks: self.jwks,
            jwks_uri,
            grant_types,
            service_scopes,
            subject_type,
            sector_identifier_uri,
            id_token_signed_response_alg: alg(
                "id_token_signed_response_alg",
                &self.id_token_signed_response_alg,
            )?
            .unwrap_or_else(|| "RS256".into()),
            userinfo_signed_response_alg: alg(
                "userinfo_signed_response_alg",
                &self.userinfo_signed_response_alg,
            )?,
            backchannel_logout_uri,
            logo_uri: optional_url("logo_uri", &self.logo_uri, dev)?,
            policy_uri: optional_url("policy_uri", &self.policy_uri, dev)?,
            tos_uri: optional_url("tos_uri", &self.tos_uri, dev)?,
            application_type: application_type.to_owned(),
            token_endpoint_auth_signing_alg: self.token_endpoint_auth_signing_alg,
            request_object_signing_alg: self.request_object_signing_alg,
            default_max_age: self.default_max_age,
        })
    }
}

/// A new registration's own refusal: any app may register a private scheme
/// (`fr.exemple.agenda:/cb`), so one registering itself is its own sector
/// (`Client::sector`), which a sector document, readable by anyone, may not
/// undo. (A registration made before this rule is read and replaced as it
/// was.)
pub fn groups_a_private_scheme(registration: &Registration) -> Option<RegistrationError> {
    let private = registration
        .redirect_uris
        .iter()
        .any(|uri| clients::on_private_scheme(uri.as_str()));
    (private && registration.sector_identifier_uri.is_some()).then(|| {
        metadata(
            "sector_identifier_uri cannot be used with redirect_uris on a private scheme, which any app may register",
        )
    })
}

/// Whether two service names read alike to a parent: the same letters and
/// digits, whatever the case, accents, spaces and punctuation, and letters of
/// other scripts that look like them (a Cyrillic « Р » is a P: UTS #39's
/// skeletons, where a transliteration would make it an R).
fn looks_alike(a: &str, b: &str) -> bool {
    let folded = |name: &str| -> String {
        deunicode::deunicode(name)
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    // As written, and as its skeleton (before any case is changed: a Greek
    // capital Ε is an E, its small ε is not an e).
    let readings = |name: &str| {
        let skeleton: String = unicode_security::skeleton(name).collect();
        [folded(name), folded(&skeleton)]
    };
    let theirs = readings(b);
    readings(a).iter().any(|reading| theirs.contains(reading))
}

/// OIDC Registration §5: the sector document is a JSON array holding every
/// redirect URI of the client.
async fn check_sector(
    uri: &Url,
    redirect_uris: &[RedirectUri],
    dev: bool,
) -> Result<(), RegistrationError> {
    // A client registering itself: public addresses only, but in development.
    let reach = match dev {
        true => Reach::Anywhere,
        false => Reach::PublicOnly,
    };
    let listed: Vec<String> = assertion::fetch_bytes(uri, reach)
        .await
        .ok()
        .and_then(|body| serde_json::from_slice(&body).ok())
        .ok_or_else(|| {
            metadata("sector_identifier_uri could not be read as a JSON array of URIs")
        })?;
    if let Some(missing) = redirect_uris
        .iter()
        .find(|uri| !listed.iter().any(|l| l == uri.as_str()))
    {
        return Err(metadata(format!(
            "sector_identifier_uri does not list {}",
            missing.as_str()
        )));
    }
    Ok(())
}

/// What an initial access token allows, as `clef client token` issues it.
#[derive(Debug, Clone, Copy)]
pub struct InitialToken {
    /// How long it works, in seconds.
    pub ttl: i64,
    /// How many clients it registers, at most.
    pub clients: i64,
}

/// Issues an initial access token for `clef client token`.
pub async fn issue_initial_token(
    db: &Db,
    now: i64,
    allows: InitialToken,
) -> Result<String, sqlx::Error> {
    let token = random_token(32);
    sqlx::query(
        "INSERT INTO registration_tokens (token_hash, created_at, expires_at, clients_left) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(digest(&token))
    .bind(now)
    .bind(now + allows.ttl)
    .bind(allows.clients)
    .execute(db)
    .await?;
    Ok(token)
}

/// Who may register: anyone (`registration_open`), or the holder of a live
/// initial access token with clients left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Permit {
    Open,
    Token { hash: String },
}

/// Whether a registration may proceed: open registration, or a live initial
/// access token with clients left (reusable until it expires or has
/// registered its clients, so one integrator can register its test and
/// production clients). Nothing is spent yet: see [`spend`].
pub async fn may_register(app: &Clef, bearer: Option<&str>) -> Result<Option<Permit>, sqlx::Error> {
    if app.config.registration_open {
        return Ok(Some(Permit::Open));
    }
    let Some(token) = bearer else {
        return Ok(None);
    };
    let hash = digest(token);
    let found: Option<String> = sqlx::query_scalar(
        "SELECT token_hash FROM registration_tokens \
         WHERE token_hash = $1 AND expires_at > $2 AND clients_left > 0",
    )
    .bind(&hash)
    .bind(app.now())
    .fetch_optional(&app.db)
    .await?;
    Ok(found
        .filter(|found| constant_time_eq(found, &hash))
        .map(|hash| Permit::Token { hash }))
}

/// Takes one client from the permit's token, as a sound registration is
/// about to be written: false when the token expired or registered its last
/// client since [`may_register`]. One statement, so concurrent registrations
/// with the same token never register more clients than it allows.
pub async fn spend(app: &Clef, permit: &Permit) -> Result<bool, sqlx::Error> {
    let Permit::Token { hash } = permit else {
        return Ok(true);
    };
    let spent = sqlx::query(
        "UPDATE registration_tokens SET clients_left = clients_left - 1 \
         WHERE token_hash = $1 AND expires_at > $2 AND clients_left > 0",
    )
    .bind(hash)
    .bind(app.now())
    .execute(&app.db)
    .await?;
    Ok(spent.rows_affected() == 1)
}

/// The client whose registration `token` manages (RFC 7592 §2), if it does.
pub async fn managed(
    app: &Clef,
    client_id: &str,
    token: &str,
) -> Result<Option<Client>, sqlx::Error> {
    let client = clients::find(&app.db, client_id).await?;
    Ok(client.filter(|client| client.registration_token_matches(token)))
}

/// The registration as the client reads it (RFC 7591 §3.2.1, RFC 7592 §3).
pub fn response(
    app: &Clef,
    client: &Client,
    secret: Option<&str>,
    registration_access_token: Option<&str>,
) -> Value {
    let uris = |list: &[RedirectUri]| -> Vec<String> {
        list.iter().map(|u| u.as_str().to_owned()).collect()
    };
    let mut grant_types = Vec::new();
    if client.grant_types.authorization_code {
        grant_types.push("authorization_code");
    }
    if client.grant_types.refresh_token {
        grant_types.push("refresh_token");
    }
    if client.grant_types.client_credentials {
        grant_types.push("client_credentials");
    }
    let mut answer = json!({
        "client_id": client.id,
        "client_id_issued_at": client.created_at,
        "client_name": client.name,
        "redirect_uris": uris(&client.redirect_uris),
        "post_logout_redirect_uris": uris(&client.post_logout_redirect_uris),
        "response_types": ["code"],
        "grant_types": grant_types,
        "application_type": client.application_type,
        "token_endpoint_auth_method": client.auth_method.unwrap_or(if client.is_public {
            AuthMethod::None
        } else {
            AuthMethod::ClientSecretBasic
        }).as_str(),
        "subject_type": client.subject_type.as_str(),
        "id_token_signed_response_alg": client.id_token_signed_response_alg,
        "registration_client_uri": app.config.endpoint(&format!("/register/{}", client.id)),
    });
    let object = answer.as_object_mut().expect("an object");
    let mut optional = |name: &str, value: Option<Value>| {
        if let Some(value) = value {
            object.insert(name.into(), value);
        }
    };
    optional("client_secret", secret.map(Value::from));
    if secret.is_some() {
        optional("client_secret_expires_at", Some(0.into()));
    }
    optional(
        "registration_access_token",
        registration_access_token.map(Value::from),
    );
    optional("jwks", client.jwks.clone());
    optional(
        "jwks_uri",
        client.jwks_uri.as_ref().map(|u| u.as_str().into()),
    );
    optional(
        "sector_identifier_uri",
        client
            .sector_identifier_uri
            .as_ref()
            .map(|u| u.as_str().into()),
    );
    optional(
        "userinfo_signed_response_alg",
        client.userinfo_signed_response_alg.clone().map(Value::from),
    );
    optional(
        "backchannel_logout_uri",
        client
            .backchannel_logout_uri
            .as_ref()
            .map(|u| u.as_str().into()),
    );
    if client.backchannel_logout_uri.is_some() {
        optional("backchannel_logout_session_required", Some(true.into()));
    }
    optional("default_max_age", client.default_max_age.map(Value::from));
    // Every ID token carries `auth_time`, whatever was asked.
    optional("require_auth_time", Some(true.into()));
    optional(
        "token_endpoint_auth_signing_alg",
        client
            .token_endpoint_auth_signing_alg
            .clone()
            .map(Value::from),
    );
    optional(
        "request_object_signing_alg",
        client.request_object_signing_alg.clone().map(Value::from),
    );
    optional(
        "logo_uri",
        client.logo_uri.as_ref().map(|u| u.as_str().into()),
    );
    optional(
        "policy_uri",
        client.policy_uri.as_ref().map(|u| u.as_str().into()),
    );
    optional(
        "tos_uri",
        client.tos_uri.as_ref().map(|u| u.as_str().into()),
    );
    if !client.service_scopes.is_empty() {
        optional("scope", Some(client.service_scopes.join(" ").into()));
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata_with_backchannel(uri: &str) -> ClientMetadata {
        serde_json::from_value(serde_json::json!({
            "redirect_uris": ["https://rp.example/cb"],
            "backchannel_logout_uri": uri,
        }))
        .unwrap()
    }

    /// Clef POSTs logout tokens to a registered back-channel URI: anyone who may
    /// register must not point it at the server's own loopback services.
    #[tokio::test]
    async fn a_loopback_backchannel_uri_is_refused_outside_development() {
        let local = "http://127.0.0.1:6379/";
        assert!(
            metadata_with_backchannel(local)
                .validate(false, &[])
                .await
                .is_err()
        );
        assert!(
            metadata_with_backchannel(local)
                .validate(true, &[])
                .await
                .is_ok()
        );
        let public = "https://rp.example/logout";
        assert!(
            metadata_with_backchannel(public)
                .validate(false, &[])
                .await
                .is_ok()
        );
    }
}
