//! Relying parties: registration, lookup and authentication of clients.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use url::Url;

use crate::domain::{FieldError, RedirectUri};
use crate::secret::{constant_time_eq, digest, random_token};
use crate::storage::Db;

#[derive(Debug, Clone, Serialize)]
pub struct Client {
    pub id: String,
    pub name: String,
    #[serde(skip)]
    secret_hash: Option<String>,
    pub redirect_uris: Vec<RedirectUri>,
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    /// A public client (SPA, native app) has no secret and must use PKCE.
    pub is_public: bool,
    /// First-party clients (the academy's ENT) skip the consent screen.
    pub is_first_party: bool,
    /// Back-Channel Logout 1.0: where to POST a logout token when a session
    /// in which this client received tokens ends.
    pub backchannel_logout_uri: Option<Url>,
    pub backchannel_logout_session_required: bool,
    /// Terms the account accepts once per version before the first code (the ENT charter).
    pub terms: Option<Terms>,
    /// The grants the client may use at the token endpoint.
    pub grant_types: GrantTypes,
    /// The scopes it may ask for its own tokens (client_credentials, RFC 6749 §4.4).
    pub service_scopes: Vec<String>,
    /// Refresh-token lifetimes for this client, in seconds (`None`: the server's).
    pub refresh_lifetimes: RefreshLifetimes,
    /// Which `sub` the client sees (OIDC Core §8): the account's id, or one
    /// derived for its sector, so unrelated services cannot link a person.
    pub subject_type: SubjectType,
    /// Groups redirect URIs on several hosts into one sector (§8.1).
    pub sector_identifier_uri: Option<Url>,
    /// How the client signs in at the token endpoint; `None`: with its secret
    /// (Basic or in the body), or with nothing for a public client.
    pub auth_method: Option<AuthMethod>,
    /// Its public keys for `private_key_jwt`: inline, or where to fetch them.
    pub jwks: Option<serde_json::Value>,
    pub jwks_uri: Option<Url>,
    /// `RS256`, `ES256` or `EdDSA` (OIDC Registration §2).
    pub id_token_signed_response_alg: String,
    /// UserInfo answers a signed JWT with this algorithm; `None`: plain JSON.
    pub userinfo_signed_response_alg: Option<String>,
    pub logo_uri: Option<Url>,
    pub policy_uri: Option<Url>,
    pub tos_uri: Option<Url>,
    /// `web` or `native` (OIDC Registration §2).
    pub application_type: String,
    /// The only algorithm its `private_key_jwt` assertions may use, when registered.
    pub token_endpoint_auth_signing_alg: Option<String>,
    /// The only algorithm its signed request objects may use, when registered.
    #[serde(default)]
    pub request_object_signing_alg: Option<String>,
    /// The `max_age` of its requests that carry none (OIDC Registration §2).
    #[serde(default)]
    pub default_max_age: Option<i64>,
    /// RFC 7592: SHA-256 of the registration access token, for a client that
    /// registered itself.
    #[serde(skip)]
    registration_access_token_hash: Option<String>,
    /// Registered itself since private schemes name no sector: its own
    /// sector then (see [`Client::sector`]).
    #[serde(skip)]
    own_sector: bool,
    pub created_at: i64,
}

/// What a client registering itself (RFC 7591) asks for, checked.
pub struct Registration {
    pub name: String,
    pub redirect_uris: Vec<RedirectUri>,
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    pub auth_method: AuthMethod,
    pub jwks: Option<serde_json::Value>,
    pub jwks_uri: Option<Url>,
    pub grant_types: GrantTypes,
    pub service_scopes: Vec<String>,
    pub subject_type: SubjectType,
    pub sector_identifier_uri: Option<Url>,
    pub id_token_signed_response_alg: String,
    pub userinfo_signed_response_alg: Option<String>,
    pub backchannel_logout_uri: Option<Url>,
    pub logo_uri: Option<Url>,
    pub policy_uri: Option<Url>,
    pub tos_uri: Option<Url>,
    pub application_type: String,
    pub token_endpoint_auth_signing_alg: Option<String>,
    pub request_object_signing_alg: Option<String>,
    pub default_max_age: Option<i64>,
}

impl Registration {
    /// Applies the registration to `client` (a new one, or one being replaced).
    fn apply(self, client: &mut Client) {
        client.name = self.name;
        client.redirect_uris = self.redirect_uris;
        client.post_logout_redirect_uris = self.post_logout_redirect_uris;
        client.auth_method = Some(self.auth_method);
        client.jwks = self.jwks;
        client.jwks_uri = self.jwks_uri;
        client.grant_types = self.grant_types;
        client.service_scopes = self.service_scopes;
        client.subject_type = self.subject_type;
        client.sector_identifier_uri = self.sector_identifier_uri;
        client.id_token_signed_response_alg = self.id_token_signed_response_alg;
        client.userinfo_signed_response_alg = self.userinfo_signed_response_alg;
        client.backchannel_logout_uri = self.backchannel_logout_uri;
        client.logo_uri = self.logo_uri;
        client.policy_uri = self.policy_uri;
        client.tos_uri = self.tos_uri;
        client.application_type = self.application_type;
        client.token_endpoint_auth_signing_alg = self.token_endpoint_auth_signing_alg;
        client.request_object_signing_alg = self.request_object_signing_alg;
        client.default_max_age = self.default_max_age;
    }
}

/// A client that registered itself, with what it is told once.
pub struct Registered {
    pub client: Client,
    pub secret: Option<SecretString>,
    pub registration_access_token: SecretString,
}

/// The sector a redirect URI belongs to: its host, or for a native app's
/// private scheme (`fr.exemple.agenda:/cb`), which has none, the scheme, so
/// two apps of different publishers never share one. A loopback host
/// (RFC 8252 §7.3) is every native app's: it names no sector (`None`), and
/// such a client is a sector of its own.
pub(crate) fn sector_of(uri: &str) -> Option<String> {
    match Url::parse(uri) {
        Ok(url) if crate::domain::is_loopback(&url) => None,
        Ok(url) => match url.host_str() {
            Some(host) if !host.is_empty() => Some(host.to_owned()),
            _ => Some(format!("{}:", url.scheme())),
        },
        Err(_) => Some(uri.to_owned()),
    }
}

/// Whether a redirect URI is on a private scheme (a native app's), whatever
/// it writes after the scheme: `fr.exemple.app:/cb`, but also
/// `fr.exemple.app://agenda.example.org/cb`, whose "host" is no one's.
pub(crate) fn on_private_scheme(uri: &str) -> bool {
    Url::parse(uri).map_or(true, |url| !matches!(url.scheme(), "http" | "https"))
}

/// An http URI on a loopback IP address (127.0.0.1, [::1]; not `localhost`,
/// which DNS could name elsewhere), as written, without its port; `None` for
/// any other URI, or one not written as the URL parser would write it.
fn without_loopback_port(uri: &str) -> Option<String> {
    let mut url = Url::parse(uri).ok()?;
    if url.scheme() != "http" || !crate::domain::is_loopback_ip(&url) || url.as_str() != uri {
        return None;
    }
    url.set_port(None).ok()?;
    Some(url.into())
}

/// The signing algorithms a client may choose for what Clef signs for it.
pub const SIGNING_ALGS: &[&str] = &["RS256", "ES256", "EdDSA"];

/// Token endpoint authentication methods (OIDC Core §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    PrivateKeyJwt,
    None,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::None => "none",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "client_secret_basic" => Some(Self::ClientSecretBasic),
            "client_secret_post" => Some(Self::ClientSecretPost),
            "private_key_jwt" => Some(Self::PrivateKeyJwt),
            "none" => Some(Self::None),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SubjectType {
    Public,
    Pairwise,
}

impl SubjectType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Pairwise => "pairwise",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "public" => Some(Self::Public),
            "pairwise" => Some(Self::Pairwise),
            _ => None,
        }
    }
}

impl Client {
    /// The sector a pairwise subject is computed for: the host of the
    /// sector identifier URI, else the host of the redirect URIs (OIDC Core §8.1).
    pub fn sector(&self) -> String {
        match &self.sector_identifier_uri {
            Some(uri) => uri.host_str().unwrap_or_default().to_owned(),
            // A service without users, or an app on loopback: its own sector.
            // So is an app that registers itself with a private scheme:
            // anyone may register `fr.exemple.agenda:/cb`, and would be
            // given the subjects the real app's users have there. (The
            // operator vouches for the scheme of the apps it registers; an
            // app registered before this rule keeps its scheme's sector.)
            None => self
                .redirect_uris
                .first()
                .filter(|uri| !(self.own_sector && on_private_scheme(uri.as_str())))
                .and_then(|uri| sector_of(uri.as_str()))
                .unwrap_or_else(|| self.id.clone()),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RefreshLifetimes {
    pub idle: Option<i64>,
    pub absolute: Option<i64>,
}

impl RefreshLifetimes {
    /// Both positive, the idle one within the absolute one; a refusal names
    /// the lifetime at fault.
    pub fn validate(&self) -> Result<(), FieldError> {
        let invalid = |field| FieldError::new(field, crate::domain::Problem::Invalid);
        if self.absolute.is_some_and(|t| t <= 0) {
            return Err(invalid("refresh_token_absolute_ttl"));
        }
        if self.idle.is_some_and(|t| t <= 0)
            || self
                .idle
                .zip(self.absolute)
                .is_some_and(|(idle, absolute)| idle > absolute)
        {
            return Err(invalid("refresh_token_idle_ttl"));
        }
        Ok(())
    }
}

/// Which grants a client may use. By default a code flow with refresh tokens;
/// client_credentials only for a service registered with its scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct GrantTypes {
    pub authorization_code: bool,
    pub refresh_token: bool,
    pub client_credentials: bool,
}

impl GrantTypes {
    /// `authorization_code refresh_token` (spaces or commas), as stored or typed.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let mut grants = Self {
            authorization_code: false,
            refresh_token: false,
            client_credentials: false,
        };
        for grant in raw.split([' ', ',']).filter(|g| !g.is_empty()) {
            match grant {
                "authorization_code" => grants.authorization_code = true,
                "refresh_token" => grants.refresh_token = true,
                "client_credentials" => grants.client_credentials = true,
                _ => {
                    return Err(FieldError::new(
                        "grant_types",
                        crate::domain::Problem::Invalid,
                    ));
                }
            }
        }
        // A refresh token continues a sign-in: it needs the code flow.
        if grants == Self::parse_none() || (grants.refresh_token && !grants.authorization_code) {
            return Err(FieldError::new(
                "grant_types",
                crate::domain::Problem::Invalid,
            ));
        }
        Ok(grants)
    }

    fn parse_none() -> Self {
        Self {
            authorization_code: false,
            refresh_token: false,
            client_credentials: false,
        }
    }

    /// The default: the code flow, with client_credentials for a service.
    pub fn default_for(service: bool) -> Self {
        Self {
            authorization_code: true,
            refresh_token: true,
            client_credentials: service,
        }
    }

    pub fn to_wire(self) -> String {
        [
            (self.authorization_code, "authorization_code"),
            (self.refresh_token, "refresh_token"),
            (self.client_credentials, "client_credentials"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| *name)
        .collect::<Vec<_>>()
        .join(" ")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Terms {
    pub url: Url,
    pub version: String,
}

impl Client {
    /// `candidate` if it is a registered URI, compared as strings (no
    /// normalisation, no prefix matching: OAuth 2.0 Security BCP §4.1.3),
    /// but for the port of a loopback IP address, which a native app picks
    /// when it asks (RFC 8252 §7.3, RFC 9700 §2.1). A web client's port is
    /// the registered one: the exception is the native app's alone.
    pub fn registered_redirect_uri(&self, candidate: &str) -> Option<RedirectUri> {
        if let Some(uri) = self
            .redirect_uris
            .iter()
            .find(|uri| uri.as_str() == candidate)
        {
            return Some(uri.clone());
        }
        if !self.is_native_app() {
            return None;
        }
        let portless = without_loopback_port(candidate)?;
        self.redirect_uris
            .iter()
            .filter_map(|uri| without_loopback_port(uri.as_str()))
            .any(|registered| registered == portless)
            .then(|| RedirectUri::parse(candidate).ok())
            .flatten()
    }

    /// A native app (RFC 8252): registered as one, or a public client, which
    /// is a native app or a single-page one (never on a loopback IP address
    /// in production); `clef client create --public` registers both.
    fn is_native_app(&self) -> bool {
        self.application_type == "native" || self.is_public
    }

    /// Checks a presented secret against the stored digest in constant time.
    pub fn secret_matches(&self, presented: &str) -> bool {
        match &self.secret_hash {
            Some(hash) => constant_time_eq(&digest(presented), hash),
            None => false,
        }
    }
}

#[derive(Default)]
pub struct NewClient {
    pub name: String,
    pub redirect_uris: Vec<RedirectUri>,
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    pub is_public: bool,
    pub is_first_party: bool,
    pub backchannel_logout_uri: Option<Url>,
    pub terms: Option<Terms>,
    /// A service client: client_credentials with these scopes.
    pub service_scopes: Option<Vec<String>>,
    /// `None`: the default for the client's kind (see `GrantTypes::default_for`).
    pub grant_types: Option<GrantTypes>,
    pub refresh_lifetimes: RefreshLifetimes,
    /// The service's privacy policy and terms of service, linked from the
    /// consent page (OIDC Registration §2).
    pub policy_uri: Option<Url>,
    pub tos_uri: Option<Url>,
}

/// Service scopes as given on the command line: scope tokens (RFC 6749 §3.3),
/// separated by spaces or commas.
pub fn parse_service_scopes(raw: &str) -> Result<Vec<String>, FieldError> {
    let scopes: Vec<String> = raw
        .split([' ', ','])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let valid = |s: &String| {
        s.len() <= 64
            && s.bytes()
                .all(|b| matches!(b, 0x21 | 0x23..=0x5b | 0x5d..=0x7e))
    };
    if scopes.is_empty() || !scopes.iter().all(valid) {
        return Err(FieldError::new("scopes", crate::domain::Problem::Invalid));
    }
    Ok(scopes)
}

/// A back-channel logout URI: https, or http on loopback during development;
/// no fragment (Back-Channel Logout 1.0 §2.2).
pub fn parse_backchannel_uri(raw: &str) -> Result<Url, FieldError> {
    let invalid = || FieldError::new("backchannel_logout_uri", crate::domain::Problem::Invalid);
    let url = Url::parse(raw).map_err(|_| invalid())?;
    let secure =
        url.scheme() == "https" || (url.scheme() == "http" && crate::domain::is_loopback(&url));
    if !secure || url.fragment().is_some() || url.host().is_none() {
        return Err(invalid());
    }
    Ok(url)
}

/// A page of the service's own that people are sent to (`field`: its name
/// on the command line): an http(s) URL.
pub fn parse_page_url(field: &'static str, raw: &str) -> Result<Url, FieldError> {
    Url::parse(raw)
        .ok()
        .filter(|u| matches!(u.scheme(), "https" | "http") && u.host().is_some())
        .ok_or_else(|| FieldError::new(field, crate::domain::Problem::Invalid))
}

/// Terms as given on the command line: an http(s) URL and a version label.
pub fn parse_terms(url: &str, version: &str) -> Result<Terms, FieldError> {
    let url = parse_page_url("terms_url", url)?;
    let version = crate::domain::text("terms_version", version, 40)?;
    Ok(Terms { url, version })
}

impl NewClient {
    pub fn validate(&self) -> Result<(), FieldError> {
        crate::domain::shown_text("nom", &self.name, 100)?;
        if self.redirect_uris.is_empty() {
            return Err(FieldError::new(
                "redirect_uri",
                crate::domain::Problem::Empty,
            ));
        }
        Ok(())
    }
}

/// Registers a client; the secret is returned once and only its digest is kept.
pub async fn create(
    db: &Db,
    new: NewClient,
    now: i64,
) -> anyhow::Result<(Client, Option<SecretString>)> {
    new.validate()?;
    let (client, secret) = draft(new, now);
    insert(db, &client).await?;
    Ok((client, secret.map(SecretString::from)))
}

/// A client not stored yet, with its secret (confidential clients).
fn draft(new: NewClient, now: i64) -> (Client, Option<String>) {
    let id = format!("clef-{}", random_token(16));
    let secret = (!new.is_public).then(|| random_token(32));
    let client = Client {
        id,
        name: new.name.trim().to_owned(),
        secret_hash: secret.as_deref().map(digest),
        redirect_uris: new.redirect_uris,
        post_logout_redirect_uris: new.post_logout_redirect_uris,
        is_public: new.is_public,
        is_first_party: new.is_first_party,
        backchannel_logout_uri: new.backchannel_logout_uri,
        backchannel_logout_session_required: true,
        terms: new.terms,
        grant_types: new
            .grant_types
            .unwrap_or(GrantTypes::default_for(new.service_scopes.is_some())),
        service_scopes: new.service_scopes.unwrap_or_default(),
        refresh_lifetimes: new.refresh_lifetimes,
        // A service outside the academy sees pairwise subjects (§8.1).
        subject_type: if new.is_first_party {
            SubjectType::Public
        } else {
            SubjectType::Pairwise
        },
        sector_identifier_uri: None,
        auth_method: None,
        jwks: None,
        jwks_uri: None,
        id_token_signed_response_alg: "RS256".into(),
        userinfo_signed_response_alg: None,
        logo_uri: None,
        policy_uri: new.policy_uri,
        tos_uri: new.tos_uri,
        application_type: "web".into(),
        token_endpoint_auth_signing_alg: None,
        request_object_signing_alg: None,
        default_max_age: None,
        registration_access_token_hash: None,
        own_sector: false,
        created_at: now,
    };
    (client, secret)
}

/// Stores a new client: its identity, then every setting through the one
/// writer `update` uses too, in one transaction.
async fn insert(db: &Db, client: &Client) -> anyhow::Result<()> {
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO clients (id, name, secret_hash, redirect_uris, post_logout_redirect_uris, is_public, \
         is_first_party, created_at) VALUES ($1, $2, $3, '[]', '[]', $4, 0, $5)",
    )
    .bind(&client.id)
    .bind(&client.name)
    .bind(&client.secret_hash)
    .bind(i64::from(client.is_public))
    .bind(client.created_at)
    .execute(&mut *tx)
    .await?;
    write_settings(&mut tx, client).await?;
    sqlx::query(
        "UPDATE clients SET registration_access_token_hash = $1, own_sector = $2 WHERE id = $3",
    )
    .bind(&client.registration_access_token_hash)
    .bind(i64::from(client.own_sector))
    .bind(&client.id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Why a service registering itself may not have public subjects.
pub const PAIRWISE_ONLY: &str = "subject_type public is for the academy's own services; a registered service gets pairwise subjects";

/// Registers a client that asked for itself (RFC 7591): a third party, with a
/// secret unless it authenticates with `none` or `private_key_jwt`, and a
/// registration access token to read, replace or delete its registration.
pub async fn register(db: &Db, registration: Registration, now: i64) -> anyhow::Result<Registered> {
    // A registered service is a third party: pairwise subjects only. A public
    // `sub` is the account's id, the same for every such service and the
    // academy's own: two of them could link a family. (One registered so
    // before keeps them: `keep_sector` refuses any change of subject type.)
    anyhow::ensure!(
        registration.subject_type == SubjectType::Pairwise,
        PAIRWISE_ONLY
    );
    let public = registration.auth_method == AuthMethod::None;
    let (mut client, secret) = draft(
        NewClient {
            name: registration.name.clone(),
            is_public: public,
            is_first_party: false,
            ..NewClient::default()
        },
        now,
    );
    let secret = match registration.auth_method {
        // Its stored digest stays (a confidential client has one), but the
        // secret itself is never handed out: only the client's keys sign in.
        AuthMethod::PrivateKeyJwt => None,
        _ => secret,
    };
    registration.apply(&mut client);
    let token = random_token(32);
    client.registration_access_token_hash = Some(digest(&token));
    client.own_sector = true;
    insert(db, &client).await?;
    Ok(Registered {
        client,
        secret: secret.map(SecretString::from),
        registration_access_token: token.into(),
    })
}

/// RFC 7592 §3: a new registration access token for `client_id`, in place of
/// `presented`, which stops working (tokens are kept as digests: the one
/// presented cannot be handed back). None when `presented` is no longer the
/// client's: a call under way with it rotated it first.
pub async fn rotate_registration_token(
    db: &Db,
    client_id: &str,
    presented: &str,
) -> anyhow::Result<Option<SecretString>> {
    swap_registration_token(&mut *db.acquire().await?, client_id, presented).await
}

async fn swap_registration_token(
    connection: &mut sqlx::AnyConnection,
    client_id: &str,
    presented: &str,
) -> anyhow::Result<Option<SecretString>> {
    let token = random_token(32);
    let rotated = sqlx::query(
        "UPDATE clients SET registration_access_token_hash = $1 \
         WHERE id = $2 AND registration_access_token_hash = $3 AND deleted_at IS NULL",
    )
    .bind(digest(&token))
    .bind(client_id)
    .bind(digest(presented))
    .execute(connection)
    .await?
    .rows_affected();
    Ok((rotated == 1).then(|| token.into()))
}

impl Client {
    /// RFC 7592: whether `token` is this client's registration access token.
    pub fn registration_token_matches(&self, token: &str) -> bool {
        self.registration_access_token_hash
            .as_deref()
            .is_some_and(|hash| constant_time_eq(&digest(token), hash))
    }

    /// Whether the client registered itself (it has a registration access token).
    pub fn self_registered(&self) -> bool {
        self.registration_access_token_hash.is_some()
    }
}

/// RFC 7592 §2.2: the registration replaced by a new one (same id and secret).
/// With it, the registration access token `presented` is replaced by the
/// one answered (RFC 7592 §3), in the same transaction: `None` (nothing
/// written) when `presented` is no longer the client's.
pub async fn replace_registration(
    db: &Db,
    mut client: Client,
    registration: Registration,
    presented: &str,
) -> anyhow::Result<Option<(Client, SecretString)>> {
    anyhow::ensure!(
        (registration.auth_method == AuthMethod::None) == client.is_public,
        "a client cannot move between public and confidential"
    );
    let before = client.clone();
    registration.apply(&mut client);
    keep_sector(&before, &client)?;
    let mut tx = db.begin().await?;
    let Some(token) = swap_registration_token(&mut tx, &client.id, presented).await? else {
        return Ok(None);
    };
    write_settings(&mut tx, &client).await?;
    tx.commit().await?;
    Ok(Some((client, token)))
}

/// RFC 7592 §2.3: the client stops working at once; its row stays for the
/// records that name it (sessions, refresh families, the audit trail). The
/// consents given to it go: « Applications autorisées » no longer lists a
/// service that receives nothing.
pub async fn delete(db: &Db, id: &str, now: i64) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    sqlx::query("UPDATE clients SET deleted_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    for forgotten in [
        "DELETE FROM consent_children WHERE client_id = $1",
        "DELETE FROM consents WHERE client_id = $1",
    ] {
        sqlx::query(forgotten).bind(id).execute(&mut *tx).await?;
    }
    sqlx::query(
        "UPDATE refresh_families SET revoked_at = $1 WHERE client_id = $2 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// Checks and stores every setting of `client` (all but its id, secret,
/// kind and creation date): the one writer of `create` and `update`.
async fn write_settings(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    client: &Client,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        !client.redirect_uris.is_empty() || !client.grant_types.authorization_code,
        "a client of the code flow needs a redirect URI"
    );
    client.refresh_lifetimes.validate()?;
    check_grants(client)?;
    check_sector(client)?;
    check_keys(client)?;
    sqlx::query(
        "UPDATE clients SET name = $1, redirect_uris = $2, post_logout_redirect_uris = $3, is_first_party = $4, \
         backchannel_logout_uri = $5, terms_url = $6, terms_version = $7, grant_types = $8, service_scopes = $9, \
         refresh_token_idle_ttl = $10, refresh_token_absolute_ttl = $11, subject_type = $12, \
         sector_identifier_uri = $13, token_endpoint_auth_method = $14, jwks = $15, jwks_uri = $16, \
         id_token_signed_response_alg = $17, userinfo_signed_response_alg = $18, logo_uri = $19, \
         policy_uri = $20, tos_uri = $21, application_type = $22, token_endpoint_auth_signing_alg = $23, \
         default_max_age = $24, request_object_signing_alg = $25 WHERE id = $26",
    )
    .bind(&client.name)
    .bind(serde_json::to_string(&client.redirect_uris)?)
    .bind(serde_json::to_string(&client.post_logout_redirect_uris)?)
    .bind(i64::from(client.is_first_party))
    .bind(client.backchannel_logout_uri.as_ref().map(Url::as_str))
    .bind(client.terms.as_ref().map(|t| t.url.as_str()))
    .bind(client.terms.as_ref().map(|t| t.version.as_str()))
    .bind(client.grant_types.to_wire())
    .bind(client.service_scopes.join(" "))
    .bind(client.refresh_lifetimes.idle)
    .bind(client.refresh_lifetimes.absolute)
    .bind(client.subject_type.as_str())
    .bind(client.sector_identifier_uri.as_ref().map(Url::as_str))
    .bind(client.auth_method.map(AuthMethod::as_str))
    .bind(client.jwks.as_ref().map(ToString::to_string))
    .bind(client.jwks_uri.as_ref().map(Url::as_str))
    .bind(&client.id_token_signed_response_alg)
    .bind(&client.userinfo_signed_response_alg)
    .bind(client.logo_uri.as_ref().map(Url::as_str))
    .bind(client.policy_uri.as_ref().map(Url::as_str))
    .bind(client.tos_uri.as_ref().map(Url::as_str))
    .bind(&client.application_type)
    .bind(&client.token_endpoint_auth_signing_alg)
    .bind(client.default_max_age)
    .bind(&client.request_object_signing_alg)
    .bind(&client.id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Pairwise subjects need one sector: redirect URIs on several hosts need a
/// sector identifier URI (OIDC Core §8.1).
fn check_sector(client: &Client) -> anyhow::Result<()> {
    if client.subject_type == SubjectType::Pairwise
        && client.sector_identifier_uri.is_none()
        && !client.redirect_uris.is_empty()
    {
        let hosts: std::collections::BTreeSet<Option<String>> = client
            .redirect_uris
            .iter()
            .map(|uri| sector_of(uri.as_str()))
            .collect();
        anyhow::ensure!(
            hosts.len() == 1,
            "pairwise subjects with redirect URIs on several hosts need a sector_identifier_uri"
        );
    }
    Ok(())
}

/// A pairwise client keeps its sector: every subject it was given, children's
/// included, is computed from it, and a new one would make every person a
/// stranger to the service. A service that moves to another host keeps its
/// sector with a `sector_identifier_uri` on the old host listing the new
/// redirect URIs (OIDC Core §8.1).
fn keep_sector(before: &Client, after: &Client) -> anyhow::Result<()> {
    anyhow::ensure!(
        before.subject_type == after.subject_type,
        "subject_type cannot change: every subject the client was given would change"
    );
    if before.subject_type == SubjectType::Pairwise
        && after.subject_type == SubjectType::Pairwise
        && before.sector() != after.sector()
    {
        // An app on loopback, or one that registered itself with a private
        // scheme, is a sector of its own, which no host keeps.
        if before.sector() == before.id {
            anyhow::bail!(
                "this change would move the client's pairwise sector from its own (its redirect URIs are on loopback or a private scheme) to {}, \
                 and change every subject it was given; no sector_identifier_uri can keep it: register the service anew",
                after.sector()
            );
        }
        anyhow::bail!(
            "this change would move the client's pairwise sector from {} to {}, and change every subject it was given; \
             keep it with a sector_identifier_uri on {}",
            before.sector(),
            after.sector(),
            before.sector()
        );
    }
    Ok(())
}

/// private_key_jwt needs the client's keys; the signing algorithms are ours.
fn check_keys(client: &Client) -> anyhow::Result<()> {
    if client.auth_method == Some(AuthMethod::PrivateKeyJwt) {
        anyhow::ensure!(
            client.jwks.is_some() != client.jwks_uri.is_some(),
            "private_key_jwt needs the client's keys: jwks or jwks_uri, not both"
        );
    }
    anyhow::ensure!(
        SIGNING_ALGS.contains(&client.id_token_signed_response_alg.as_str()),
        "id_token_signed_response_alg is one of RS256, ES256, EdDSA"
    );
    if let Some(alg) = &client.userinfo_signed_response_alg {
        anyhow::ensure!(
            SIGNING_ALGS.contains(&alg.as_str()),
            "userinfo_signed_response_alg is one of RS256, ES256, EdDSA"
        );
    }
    Ok(())
}

/// client_credentials needs a secret and scopes to give.
fn check_grants(client: &Client) -> anyhow::Result<()> {
    if client.grant_types.client_credentials {
        anyhow::ensure!(
            !client.is_public,
            "a public client cannot use client_credentials: it has no secret"
        );
        anyhow::ensure!(
            !client.service_scopes.is_empty(),
            "client_credentials needs the scopes the service may ask (--scopes)"
        );
    }
    Ok(())
}

/// What `clef client update` changes; `None` keeps the registered value.
#[derive(Default)]
pub struct ClientChanges {
    pub name: Option<String>,
    pub redirect_uris: Option<Vec<RedirectUri>>,
    pub post_logout_redirect_uris: Option<Vec<RedirectUri>>,
    pub is_first_party: Option<bool>,
    /// `Some(None)` stops back-channel logout.
    pub backchannel_logout_uri: Option<Option<Url>>,
    pub terms: Option<Terms>,
    pub service_scopes: Option<Vec<String>>,
    pub grant_types: Option<GrantTypes>,
    pub refresh_lifetimes: Option<RefreshLifetimes>,
    pub policy_uri: Option<Url>,
    pub tos_uri: Option<Url>,
}

/// Changes a registered client (its secret stays).
pub async fn update(db: &Db, id: &str, changes: ClientChanges) -> anyhow::Result<Client> {
    let mut client = find(db, id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no client {id}"))?;
    let before = client.clone();
    if let Some(name) = changes.name {
        client.name = crate::domain::shown_text("nom", &name, 100)?;
    }
    if let Some(uris) = changes.redirect_uris {
        client.redirect_uris = uris;
    }
    if let Some(uris) = changes.post_logout_redirect_uris {
        client.post_logout_redirect_uris = uris;
    }
    if let Some(first_party) = changes.is_first_party {
        // Its people were never asked for consent, and see their account's
        // id as `sub`: as a third party it would keep both.
        anyhow::ensure!(
            first_party || !before.is_first_party,
            "a first-party client cannot become a third party (its refresh tokens were given without consent, its subjects may be the accounts' ids): register the service anew"
        );
        client.is_first_party = first_party;
    }
    if let Some(uri) = changes.backchannel_logout_uri {
        client.backchannel_logout_uri = uri;
    }
    if let Some(terms) = changes.terms {
        client.terms = Some(terms);
    }
    if let Some(scopes) = changes.service_scopes {
        client.grant_types.client_credentials = true;
        client.service_scopes = scopes;
    }
    if let Some(grants) = changes.grant_types {
        client.grant_types = grants;
    }
    if let Some(lifetimes) = changes.refresh_lifetimes {
        client.refresh_lifetimes = lifetimes;
    }
    if let Some(uri) = changes.policy_uri {
        client.policy_uri = Some(uri);
    }
    if let Some(uri) = changes.tos_uri {
        client.tos_uri = Some(uri);
    }
    keep_sector(&before, &client)?;
    let mut tx = db.begin().await?;
    write_settings(&mut tx, &client).await?;
    tx.commit().await?;
    Ok(client)
}

/// Gives a confidential client a new secret; the old one stops working at once.
pub async fn rotate_secret(db: &Db, id: &str) -> anyhow::Result<SecretString> {
    let secret = random_token(32);
    let updated =
        sqlx::query("UPDATE clients SET secret_hash = $1 WHERE id = $2 AND is_public = 0")
            .bind(digest(&secret))
            .bind(id)
            .execute(db)
            .await?;
    anyhow::ensure!(updated.rows_affected() == 1, "no confidential client {id}");
    Ok(secret.into())
}

const COLUMNS: &str = "id, name, secret_hash, redirect_uris, post_logout_redirect_uris, is_public, is_first_party, created_at, \
     backchannel_logout_uri, backchannel_logout_session_required, terms_url, terms_version, grant_types, service_scopes, \
     refresh_token_idle_ttl, refresh_token_absolute_ttl, subject_type, sector_identifier_uri, \
     token_endpoint_auth_method, jwks, jwks_uri, id_token_signed_response_alg, userinfo_signed_response_alg, \
     logo_uri, policy_uri, tos_uri, registration_access_token_hash, own_sector, application_type, token_endpoint_auth_signing_alg, \
     default_max_age, request_object_signing_alg";

fn url(row: &AnyRow, column: &str) -> Result<Option<Url>, sqlx::Error> {
    row.try_get::<Option<String>, _>(column)?
        .map(|raw| {
            Url::parse(&raw).map_err(|e| sqlx::Error::ColumnDecode {
                index: column.into(),
                source: e.into(),
            })
        })
        .transpose()
}

fn client_from(row: &AnyRow) -> Result<Client, sqlx::Error> {
    let uris = |column: &str| -> Result<Vec<RedirectUri>, sqlx::Error> {
        let json: String = row.try_get(column)?;
        serde_json::from_str(&json).map_err(|e| sqlx::Error::ColumnDecode {
            index: column.into(),
            source: e.into(),
        })
    };
    Ok(Client {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        secret_hash: row.try_get("secret_hash")?,
        redirect_uris: uris("redirect_uris")?,
        post_logout_redirect_uris: uris("post_logout_redirect_uris")?,
        is_public: row.try_get::<i64, _>("is_public")? == 1,
        is_first_party: row.try_get::<i64, _>("is_first_party")? == 1,
        backchannel_logout_uri: url(row, "backchannel_logout_uri")?,
        backchannel_logout_session_required: row
            .try_get::<i64, _>("backchannel_logout_session_required")?
            == 1,
        terms: match (
            url(row, "terms_url")?,
            row.try_get::<Option<String>, _>("terms_version")?,
        ) {
            (Some(url), Some(version)) => Some(Terms { url, version }),
            _ => None,
        },
        grant_types: GrantTypes::parse(&row.try_get::<String, _>("grant_types")?).map_err(|e| {
            sqlx::Error::ColumnDecode {
                index: "grant_types".into(),
                source: e.to_string().into(),
            }
        })?,
        service_scopes: row
            .try_get::<String, _>("service_scopes")?
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        refresh_lifetimes: RefreshLifetimes {
            idle: row.try_get("refresh_token_idle_ttl")?,
            absolute: row.try_get("refresh_token_absolute_ttl")?,
        },
        subject_type: {
            let raw: String = row.try_get("subject_type")?;
            SubjectType::parse(&raw).ok_or_else(|| sqlx::Error::ColumnDecode {
                index: "subject_type".into(),
                source: format!("unexpected value {raw:?}").into(),
            })?
        },
        sector_identifier_uri: url(row, "sector_identifier_uri")?,
        auth_method: row
            .try_get::<Option<String>, _>("token_endpoint_auth_method")?
            .map(|raw| {
                AuthMethod::parse(&raw).ok_or_else(|| sqlx::Error::ColumnDecode {
                    index: "token_endpoint_auth_method".into(),
                    source: format!("unexpected value {raw:?}").into(),
                })
            })
            .transpose()?,
        jwks: row
            .try_get::<Option<String>, _>("jwks")?
            .map(|raw| {
                serde_json::from_str(&raw).map_err(|e| sqlx::Error::ColumnDecode {
                    index: "jwks".into(),
                    source: e.into(),
                })
            })
            .transpose()?,
        jwks_uri: url(row, "jwks_uri")?,
        id_token_signed_response_alg: row.try_get("id_token_signed_response_alg")?,
        userinfo_signed_response_alg: row.try_get("userinfo_signed_response_alg")?,
        logo_uri: url(row, "logo_uri")?,
        policy_uri: url(row, "policy_uri")?,
        tos_uri: url(row, "tos_uri")?,
        registration_access_token_hash: row.try_get("registration_access_token_hash")?,
        own_sector: row.try_get::<i64, _>("own_sector")? == 1,
        application_type: row.try_get("application_type")?,
        token_endpoint_auth_signing_alg: row.try_get("token_endpoint_auth_signing_alg")?,
        request_object_signing_alg: row.try_get("request_object_signing_alg")?,
        default_max_age: row.try_get("default_max_age")?,
        created_at: row.try_get("created_at")?,
    })
}

pub async fn find(db: &Db, id: &str) -> Result<Option<Client>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM clients WHERE id = $1 AND deleted_at IS NULL");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(db)
        .await?
        .map(|row| client_from(&row))
        .transpose()
}

/// Registered clients as the hot paths read them (every token request, every
/// authorization request): kept in memory for [`CLIENT_CACHE_TTL`], so a
/// client is not read from the database on every request. A change made
/// through this instance is seen at once ([`ClientCache::forget`]); one made
/// elsewhere (the CLI, another instance) within the TTL. Unknown ids are not
/// remembered, so a new client works at once and made-up ids take no memory.
/// A hit hands out the shared client, not a copy.
pub struct ClientCache {
    entries: Mutex<HashMap<String, (Instant, Arc<Client>)>>,
}

/// How long another instance's change to a client may go unseen here.
pub const CLIENT_CACHE_TTL: Duration = Duration::from_secs(5);

impl ClientCache {
    pub fn new() -> Self {
        Self {
            entries: Default::default(),
        }
    }

    /// The client `id`, from memory when read less than the TTL ago.
    pub async fn find(&self, db: &Db, id: &str) -> Result<Option<Arc<Client>>, sqlx::Error> {
        let fresh = |(read, _): &(Instant, Arc<Client>)| read.elapsed() < CLIENT_CACHE_TTL;
        if let Some((_, client)) = self.lock().get(id).filter(|entry| fresh(entry)) {
            return Ok(Some(Arc::clone(client)));
        }
        let found = find(db, id).await?.map(Arc::new);
        let mut entries = self.lock();
        match &found {
            Some(client) => {
                entries.insert(id.to_owned(), (Instant::now(), Arc::clone(client)));
            }
            None => {
                entries.remove(id);
            }
        }
        Ok(found)
    }

    /// Forgets `id` after this instance changed or deleted it.
    pub fn forget(&self, id: &str) {
        self.lock().remove(id);
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, (Instant, Arc<Client>)>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for ClientCache {
    fn default() -> Self {
        Self::new()
    }
}

pub async fn list(db: &Db) -> Result<Vec<Client>, sqlx::Error> {
    let sql =
        format!("SELECT {COLUMNS} FROM clients WHERE deleted_at IS NULL ORDER BY created_at, name");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(db)
        .await?
        .iter()
        .map(client_from)
        .collect()
}

/// The names of the academy's own services but `except`'s, which a client
/// registering itself may not take (`registration`).
pub async fn first_party_names(db: &Db, except: Option<&str>) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT name FROM clients WHERE is_first_party = 1 AND deleted_at IS NULL \
         AND id <> COALESCE($1, '')",
    )
    .bind(except)
    .fetch_all(db)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A private scheme is its app's sector when the operator registered
    /// the app, or when it registered itself before the rule; one that
    /// registers itself now is its own sector.
    #[test]
    fn a_private_scheme_is_a_sector_unless_its_app_registered_itself_since() {
        let new = NewClient {
            redirect_uris: vec![RedirectUri::parse("org.example.agenda:/cb").unwrap()],
            ..NewClient::default()
        };
        let (mut client, _) = draft(new, 0);
        assert_eq!(client.sector(), "org.example.agenda:");
        client.own_sector = true;
        assert_eq!(client.sector(), client.id);
        client.redirect_uris =
            vec![RedirectUri::parse("org.example.agenda://agenda.example.org/cb").unwrap()];
        assert_eq!(
            client.sector(),
            client.id,
            "a private scheme's host is no one's"
        );
        client.redirect_uris = vec![RedirectUri::parse("https://agenda.example.org/cb").unwrap()];
        assert_eq!(client.sector(), "agenda.example.org", "a host is a host");
    }
}
