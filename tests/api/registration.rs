//! Dynamic client registration (RFC 7591, OIDC Dynamic Registration 1.0) and
//! its management (RFC 7592), and what a registered client may ask for:
//! `private_key_jwt` with inline or fetched keys (OIDC Core §9, RFC 7523),
//! ID tokens signed ES256 or EdDSA, signed UserInfo. A relying-party library
//! (the `openidconnect` crate) registers, signs in and verifies; the keys of
//! the clients are made here with josekit and served, when fetched, by a small
//! HTTP server of the test.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jwk::alg::ed::EdCurve;
use josekit::jwk::{Jwk, JwkSet, KeyPair};
use josekit::jws::{ES256, EdDSA, HS256, JwsHeader, JwsSigner, JwsVerifier, RS256};
use openidconnect::core::{
    CoreClient, CoreClientAuthMethod, CoreClientRegistrationRequest, CoreJwsSigningAlgorithm,
    CoreProviderMetadata, CoreSubjectIdentifierType,
};
use openidconnect::registration::EmptyAdditionalClientMetadata;
use openidconnect::{
    AccessToken, AccessTokenHash, AuthorizationCode, ClientId, ClientName, ClientSecret, CsrfToken,
    IssuerUrl, LocalizedClaim, Nonce, OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope,
    TokenResponse,
};
use serde_json::{Value, json};

use clef::oidc::registration::InitialToken;

use crate::helpers::*;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

// ------------------------------------------------------------------ helpers

/// An initial access token, as `clef client token` issues it (one hour).
async fn initial_token(app: &TestApp) -> String {
    let allows = InitialToken {
        ttl: 3600,
        clients: 10,
    };
    clef::oidc::registration::issue_initial_token(&app.app.db, app.app.now(), allows)
        .await
        .unwrap()
}

/// `POST /register` with `body` as it is (JSON or not).
async fn post_register(app: &TestApp, bearer: Option<&str>, body: &str) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(app.url("/register"))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

/// Registers `metadata` with a fresh initial access token; the 201 answer.
async fn register(app: &TestApp, metadata: Value) -> Value {
    let token = initial_token(app).await;
    let response = post_register(app, Some(&token), &metadata.to_string()).await;
    let (status, body) = status_and_json(response).await;
    assert_eq!(status, 201, "registration of {metadata} refused: {body}");
    body
}

/// The status and the JSON body of an answer.
async fn status_and_json(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&body).unwrap_or_else(|_| {
            let start: String = body.chars().take(200).collect();
            json!({ "not_json": start })
        }),
    )
}

/// The answer must be a 401 `invalid_token` with a Bearer challenge (RFC 6750 §3).
/// No bearer token at all: 401, and a challenge that names no error (RFC
/// 6750 §3.1).
async fn assert_token_missing(response: reqwest::Response, what: &str) {
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let (status, body) = status_and_json(response).await;
    assert_eq!(status, 401, "{what}: {body}");
    assert_eq!(body["error"], "invalid_token", "{what}: {body}");
    assert_eq!(challenge, "Bearer realm=\"clef\"", "{what}");
}

async fn assert_invalid_token(response: reqwest::Response, what: &str) {
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let (status, body) = status_and_json(response).await;
    assert_eq!(status, 401, "{what}: {body}");
    assert_eq!(body["error"], "invalid_token", "{what}: {body}");
    assert!(
        challenge.starts_with("Bearer ") && challenge.contains("error=\"invalid_token\""),
        "{what}: WWW-Authenticate {challenge:?}"
    );
}

/// The answer must be a 401 `invalid_client` (RFC 6749 §5.2).
async fn assert_invalid_client(response: reqwest::Response, what: &str) {
    let (status, body) = status_and_json(response).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "{what}: {body}"
    );
}

/// The answer must be a 400 `invalid_grant`: the client authenticated, the code did not pass.
async fn assert_authenticated(response: reqwest::Response, what: &str) {
    let (status, body) = status_and_json(response).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{what}: the client should have authenticated (and the bogus code be refused): {body}"
    );
}

/// A token request with `form`.
async fn token_request(app: &TestApp, form: &[(&str, &str)]) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url("/token"))
        .form(form)
        .send()
        .await
        .unwrap()
}

/// The code exchanged with a client assertion (no secret).
async fn exchange_with_assertion(app: &TestApp, code: &str, assertion: &str) -> reqwest::Response {
    token_request(
        app,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", assertion),
        ],
    )
    .await
}

/// The code exchanged with HTTP Basic (client_secret_basic, the registration default).
async fn exchange_with_basic(
    app: &TestApp,
    client: &Value,
    code: &str,
    redirect_uri: &str,
) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url("/token"))
        .basic_auth(
            client["client_id"].as_str().unwrap(),
            client["client_secret"].as_str(),
        )
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
        ])
        .send()
        .await
        .unwrap()
}

fn header(jwt: &str) -> Value {
    serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(jwt.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap()
}

/// A key pair of a client: its public JWK to register, its private JWK to sign.
struct ClientKey {
    private: Jwk,
    public: Jwk,
}

impl ClientKey {
    fn new(pair: &dyn KeyPair, alg: &str, kid: &str) -> Self {
        let mut private = pair.to_jwk_private_key();
        let mut public = pair.to_jwk_public_key();
        for jwk in [&mut private, &mut public] {
            jwk.set_key_id(kid);
            jwk.set_algorithm(alg);
            jwk.set_key_use("sig");
        }
        Self { private, public }
    }

    fn es256(kid: &str) -> Self {
        Self::new(&ES256.generate_key_pair().unwrap(), "ES256", kid)
    }

    fn eddsa(kid: &str) -> Self {
        Self::new(
            &EdDSA.generate_key_pair(EdCurve::Ed25519).unwrap(),
            "EdDSA",
            kid,
        )
    }

    fn rs256(kid: &str) -> Self {
        Self::new(&RS256.generate_key_pair(2048).unwrap(), "RS256", kid)
    }

    fn public_jwk(&self) -> Value {
        Value::Object(self.public.as_ref().clone())
    }

    fn private_jwk(&self) -> Value {
        Value::Object(self.private.as_ref().clone())
    }

    fn signer(&self) -> Box<dyn JwsSigner> {
        match self.private.algorithm() {
            Some("ES256") => Box::new(ES256.signer_from_jwk(&self.private).unwrap()),
            Some("EdDSA") => Box::new(EdDSA.signer_from_jwk(&self.private).unwrap()),
            Some("RS256") => Box::new(RS256.signer_from_jwk(&self.private).unwrap()),
            other => panic!("no signer for {other:?}"),
        }
    }

    /// `claims` signed with this key, its kid in the header.
    fn sign(&self, claims: &Value) -> String {
        sign_with(&*self.signer(), self.private.key_id(), claims)
    }
}

fn sign_with(signer: &dyn JwsSigner, kid: Option<&str>, claims: &Value) -> String {
    let mut header = JwsHeader::new();
    header.set_token_type("JWT");
    if let Some(kid) = kid {
        header.set_key_id(kid);
    }
    josekit::jws::serialize_compact(&serde_json::to_vec(claims).unwrap(), &header, signer).unwrap()
}

/// A JWKS of public keys.
fn jwks(keys: &[&ClientKey]) -> Value {
    json!({ "keys": keys.iter().map(|k| k.public_jwk()).collect::<Vec<_>>() })
}

/// The claims of a client assertion as RFC 7523 §3 wants them, addressed to
/// the issuer (draft-ietf-oauth-rfc7523bis): valid one minute.
fn assertion_claims(app: &TestApp, client_id: &str) -> Value {
    let now = app.app.now();
    json!({
        "iss": client_id,
        "sub": client_id,
        "aud": app.address,
        "iat": now,
        "exp": now + 60,
        "jti": uuid::Uuid::new_v4().to_string(),
    })
}

/// A relying party's own small web server on loopback: its JWKS (counting how
/// often it is fetched) and its sector identifier document.
struct Documents {
    base: String,
    jwks: Arc<Mutex<Value>>,
    sector: Arc<Mutex<Value>>,
    jwks_hits: Arc<AtomicUsize>,
}

impl Documents {
    async fn start() -> Self {
        let jwks = Arc::new(Mutex::new(json!({ "keys": [] })));
        let sector = Arc::new(Mutex::new(json!([])));
        let jwks_hits = Arc::new(AtomicUsize::new(0));
        let router = axum::Router::new()
            .route(
                "/jwks.json",
                get({
                    let (jwks, hits) = (jwks.clone(), jwks_hits.clone());
                    move || {
                        hits.fetch_add(1, Ordering::SeqCst);
                        let body = jwks.lock().unwrap().clone();
                        async move { axum::Json(body) }
                    }
                }),
            )
            .route(
                "/sector.json",
                get({
                    let sector = sector.clone();
                    move || {
                        let body = sector.lock().unwrap().clone();
                        async move { axum::Json(body) }
                    }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self {
            base,
            jwks,
            sector,
            jwks_hits,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn serve_jwks(&self, set: Value) {
        *self.jwks.lock().unwrap() = set;
    }

    fn serve_sector(&self, uris: &[&str]) {
        *self.sector.lock().unwrap() = json!(uris);
    }

    fn jwks_hits(&self) -> usize {
        self.jwks_hits.load(Ordering::SeqCst)
    }
}

fn http_client() -> openidconnect::reqwest::Client {
    openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn discover(app: &TestApp, http: &openidconnect::reqwest::Client) -> CoreProviderMetadata {
    CoreProviderMetadata::discover_async(IssuerUrl::new(app.address.clone()).unwrap(), http)
        .await
        .unwrap()
}

/// Claire signs in through a registered client driven by the `openidconnect`
/// crate; returns the token response's ID token claims verified with `algs`,
/// the access token and the raw ID token.
async fn sign_in_with_openidconnect(
    app: &TestApp,
    http: &openidconnect::reqwest::Client,
    browser: &reqwest::Client,
    metadata: &CoreProviderMetadata,
    registered: &Value,
    alg: CoreJwsSigningAlgorithm,
) -> (String, AccessToken, String) {
    let client = CoreClient::from_provider_metadata(
        metadata.clone(),
        ClientId::new(registered["client_id"].as_str().unwrap().into()),
        registered["client_secret"]
            .as_str()
            .map(|s| ClientSecret::new(s.into())),
    )
    .set_redirect_uri(
        RedirectUrl::new(registered["redirect_uris"][0].as_str().unwrap().into()).unwrap(),
    );
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _, nonce) = client
        .authorize_url(
            openidconnect::core::CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    let code = code_for(app, browser, url.as_str()).await;
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(http)
        .await
        .unwrap();
    let id_token = tokens.id_token().expect("an ID token");
    assert_eq!(id_token.signing_alg().unwrap(), &alg);
    // The verifier takes the client's registered algorithm, and that one only.
    let verifier = client
        .id_token_verifier()
        .set_allowed_algs(vec![alg.clone()]);
    let claims = id_token
        .claims(&verifier, &nonce)
        .unwrap_or_else(|e| panic!("the {alg:?} ID token does not verify: {e}"));
    let expected = AccessTokenHash::from_token(
        tokens.access_token(),
        &alg,
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(
        claims.access_token_hash(),
        Some(&expected),
        "at_hash with the hash of {alg:?}"
    );
    (
        claims.subject().to_string(),
        tokens.access_token().clone(),
        id_token.to_string(),
    )
}

// ------------------------------------------------------------------- tests

#[tokio::test]
async fn a_service_registers_itself_through_openidconnect_then_a_parent_signs_in_after_consent() {
    let app = spawn_app().await;
    let family = app.family().await;
    let http = http_client();

    let raw: Value = reqwest::get(app.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(raw["registration_endpoint"], app.url("/register"));
    for (field, value) in [
        ("token_endpoint_auth_methods_supported", "private_key_jwt"),
        ("subject_types_supported", "pairwise"),
        ("id_token_signing_alg_values_supported", "ES256"),
        ("id_token_signing_alg_values_supported", "EdDSA"),
        ("userinfo_signing_alg_values_supported", "ES256"),
        ("token_endpoint_auth_signing_alg_values_supported", "EdDSA"),
    ] {
        assert!(
            raw[field]
                .as_array()
                .is_some_and(|list| list.contains(&json!(value))),
            "{field} lists {value}: {}",
            raw[field]
        );
    }

    let metadata = discover(&app, &http).await;
    let endpoint = metadata
        .registration_endpoint()
        .expect("discovery advertises the registration endpoint")
        .clone();
    let mut name = LocalizedClaim::new();
    name.insert(None, ClientName::new("Cahier de textes Exemple".into()));
    let clients_before = app.count("clients").await;
    let registered = CoreClientRegistrationRequest::new(
        vec![RedirectUrl::new(REDIRECT_URI.into()).unwrap()],
        EmptyAdditionalClientMetadata::default(),
    )
    .set_initial_access_token(Some(AccessToken::new(initial_token(&app).await)))
    .set_client_name(Some(name))
    .register_async(&endpoint, &http)
    .await
    .expect("openidconnect registers the client (201 Created, JSON)");
    assert_eq!(app.count("clients").await, clients_before + 1);
    let client_id = registered.client_id().clone();
    let secret = registered
        .client_secret()
        .expect("a confidential client is given a secret")
        .clone();
    assert!(registered.registration_access_token().is_some());
    assert_eq!(
        registered.registration_client_uri().map(|u| u.to_string()),
        Some(app.url(&format!("/register/{}", client_id.as_str())))
    );
    assert_eq!(
        registered.token_endpoint_auth_method(),
        Some(&CoreClientAuthMethod::ClientSecretBasic),
        "client_secret_basic by default"
    );
    assert_eq!(
        registered.subject_type(),
        Some(&CoreSubjectIdentifierType::Pairwise),
        "pairwise by default"
    );
    assert_eq!(
        registered.redirect_uris(),
        &vec![RedirectUrl::new(REDIRECT_URI.into()).unwrap()]
    );

    let client = CoreClient::from_provider_metadata(metadata, client_id.clone(), Some(secret))
        .set_redirect_uri(RedirectUrl::new(REDIRECT_URI.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(
            openidconnect::core::CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("children".into()))
        .set_pkce_challenge(challenge)
        .url();

    // A registered client is a third party: the login leads to the consent page.
    let browser = browser();
    let page = page_text(&browser, url.as_str()).await;
    let after_login = submit_login(&app, &browser, &page, "claire.martin", PASSWORD).await;
    assert!(
        location(&after_login).starts_with("/consentement"),
        "consent asked: {}",
        location(&after_login)
    );
    assert!(location_param(&after_login, "code").is_none());
    let consent = page_text(&browser, &app.url(&location(&after_login))).await;
    assert!(consent.contains("Cahier de textes Exemple"), "{consent}");
    let back = answer_consent(&app, &browser, &consent, "accept").await;
    assert_eq!(
        location_param(&back, "state").as_deref(),
        Some(csrf.secret().as_str())
    );
    let code = location_param(&back, "code").expect("a code after consent");

    // client_secret_basic through openidconnect's default (HTTP Basic).
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let id_token = tokens.id_token().expect("an ID token");
    let id_verifier = client.id_token_verifier();
    let claims = id_token
        .claims(&id_verifier, &nonce)
        .expect("the ID token verifies against the JWKS");
    assert_eq!(claims.audiences()[0].as_str(), client_id.as_str());
    let sub = claims.subject().as_str();
    assert_ne!(
        sub, family.guardian.id,
        "a pairwise subject, not the account id"
    );
    assert_eq!(sub.len(), 43, "a base64url HMAC-SHA-256: {sub}");
    let expected = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&id_verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&expected));
    let children = jwt_claims(&id_token.to_string())["children"].clone();
    let child_subs: Vec<&str> = children
        .as_array()
        .expect("children claim")
        .iter()
        .map(|c| c["sub"].as_str().unwrap())
        .collect();
    assert_eq!(child_subs.len(), 2);
    for child in &family.children {
        assert!(
            !child_subs.contains(&child.id.as_str()),
            "pairwise children"
        );
    }
}

#[tokio::test]
async fn registration_needs_a_live_initial_access_token_unless_it_is_open() {
    let app = spawn_app().await;
    let metadata = json!({ "redirect_uris": [REDIRECT_URI] }).to_string();
    let clients = app.count("clients").await;

    assert_token_missing(
        post_register(&app, None, &metadata).await,
        "no initial access token",
    )
    .await;
    assert_invalid_token(
        post_register(&app, Some("not-a-token"), &metadata).await,
        "a wrong initial access token",
    )
    .await;
    let now = app.app.now();
    let hour = InitialToken {
        ttl: 3600,
        clients: 10,
    };
    let expired = clef::oidc::registration::issue_initial_token(&app.app.db, now - 7200, hour)
        .await
        .unwrap();
    assert_invalid_token(
        post_register(&app, Some(&expired), &metadata).await,
        "an expired initial access token",
    )
    .await;
    // Not a Bearer token at all.
    let basic = reqwest::Client::new()
        .post(app.url("/register"))
        .basic_auth("someone", Some("something"))
        .header("content-type", "application/json")
        .body(metadata.clone())
        .send()
        .await
        .unwrap();
    assert_token_missing(basic, "HTTP Basic instead of a bearer token").await;
    assert_eq!(app.count("clients").await, clients, "nothing registered");

    // A live token works, for several registrations, until it expires.
    let two_minutes = InitialToken {
        ttl: 120,
        clients: 10,
    };
    let token = clef::oidc::registration::issue_initial_token(&app.app.db, now, two_minutes)
        .await
        .unwrap();
    let first = post_register(&app, Some(&token), &metadata).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    assert_eq!(
        post_register(&app, Some(&token), &metadata).await.status(),
        201
    );
    // A registration access token is no initial access token.
    assert_invalid_token(
        post_register(
            &app,
            Some(first["registration_access_token"].as_str().unwrap()),
            &metadata,
        )
        .await,
        "a registration access token presented as an initial access token",
    )
    .await;
    app.clock.advance(121);
    assert_invalid_token(
        post_register(&app, Some(&token), &metadata).await,
        "an initial access token past its lifetime",
    )
    .await;
    assert_eq!(app.count("clients").await, clients + 2);

    // A token registers as many clients as it allows, however many
    // registrations arrive at once; a registration refused for its metadata
    // takes none.
    let three = InitialToken {
        ttl: 3600,
        clients: 3,
    };
    let token = clef::oidc::registration::issue_initial_token(&app.app.db, app.app.now(), three)
        .await
        .unwrap();
    let unsound = post_register(&app, Some(&token), r#"{"redirect_uris": ["ftp://x"]}"#).await;
    assert_eq!(unsound.status(), 400);
    let public = json!({ "redirect_uris": [REDIRECT_URI], "subject_type": "public" });
    let public = post_register(&app, Some(&token), &public.to_string()).await;
    assert_eq!(
        public.status(),
        400,
        "public subjects are the academy's own"
    );
    let mut at_once = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let request = reqwest::Client::new()
            .post(app.url("/register"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(metadata.clone());
        at_once.spawn(async move { request.send().await.unwrap() });
    }
    let statuses = statuses_of(at_once).await;
    assert_eq!(
        statuses.iter().filter(|&&status| status == 201).count(),
        3,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|&status| matches!(status, 201 | 401)),
        "{statuses:?}"
    );
    assert_invalid_token(
        post_register(&app, Some(&token), &metadata).await,
        "an initial access token that registered its clients",
    )
    .await;
    assert_eq!(app.count("clients").await, clients + 5);

    // registration_open: no token needed.
    let open = spawn_app_with(|config| config.registration_open = true).await;
    let response = post_register(&open, None, &metadata).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert!(body["client_id"].as_str().is_some());
    assert!(body["client_secret"].as_str().is_some());
    assert!(body["registration_access_token"].as_str().is_some());
}

/// Wrong initial and registration access tokens from one address behind the
/// proxy count as failed client authentications: fifty are looked up and
/// refused, the rest and what follows from that address get 429 with
/// Retry-After before any lookup — even a live token; another address is
/// served.
#[tokio::test]
async fn wrong_registration_tokens_hold_an_address_back() {
    let app = spawn_app_behind_proxy().await;
    let registered = register(&app, json!({ "redirect_uris": [REDIRECT_URI] })).await;
    let read_url = app.url(&format!(
        "/register/{}",
        registered["client_id"].as_str().unwrap()
    ));
    let metadata = json!({ "redirect_uris": [REDIRECT_URI] }).to_string();
    let create = |from: &'static str, token: String| {
        let request = reqwest::Client::new()
            .post(app.url("/register"))
            .header("x-forwarded-for", from)
            .header("content-type", "application/json")
            .bearer_auth(token)
            .body(metadata.clone());
        async move { request.send().await.unwrap() }
    };
    let read = |from: &'static str, token: &str| {
        let request = reqwest::Client::new()
            .get(&read_url)
            .header("x-forwarded-for", from)
            .bearer_auth(token);
        async move { request.send().await.unwrap() }
    };
    let mut attempts = tokio::task::JoinSet::new();
    for i in 0..30 {
        attempts.spawn(create("203.0.113.66", format!("wrong-initial-{i}")));
        attempts.spawn(read("203.0.113.66", "wrong-registration-token"));
    }
    let statuses = statuses_of(attempts).await;
    let count = |status| statuses.iter().filter(|s| **s == status).count();
    assert_eq!((count(401), count(429)), (50, 10), "{statuses:?}");

    let live = initial_token(&app).await;
    let (status, body) = status_and_json(create("203.0.113.66", live.clone()).await).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (429, Some("invalid_token"))
    );
    let own = registered["registration_access_token"].as_str().unwrap();
    assert_eq!(read("203.0.113.66", own).await.status(), 429);
    assert_eq!(create("198.51.100.7", live).await.status(), 201);
    assert_eq!(read("198.51.100.7", own).await.status(), 200);
}

#[tokio::test]
async fn bad_metadata_is_refused_with_the_right_error_and_nothing_is_written() {
    let app = spawn_app().await;
    let docs = Documents::start().await;
    docs.serve_sector(&["https://other.example/callback"]);
    let token = initial_token(&app).await;
    let key = ClientKey::es256("k1");
    let mut oct = serde_json::Map::new();
    oct.insert("kty".into(), "oct".into());
    oct.insert("k".into(), "c2VjcmV0LXNlY3JldC1zZWNyZXQ".into());
    let ok = REDIRECT_URI;
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "an http redirect URI of a web application (not loopback)",
            json!({ "redirect_uris": ["http://rp.example.org/callback"] }).to_string(),
            "invalid_redirect_uri",
        ),
        (
            "a redirect URI with a fragment",
            json!({ "redirect_uris": ["https://rp.example.org/callback#top"] }).to_string(),
            "invalid_redirect_uri",
        ),
        (
            "no redirect URI",
            json!({ "client_name": "Sans retour" }).to_string(),
            "invalid_redirect_uri",
        ),
        (
            "redirect_uris a string, not an array",
            json!({ "redirect_uris": ok }).to_string(),
            "invalid_redirect_uri",
        ),
        (
            "client_name a number",
            json!({ "redirect_uris": [ok], "client_name": 42 }).to_string(),
            "invalid_client_metadata",
        ),
        (
            "a client_name that reads otherwise than it is written",
            json!({ "redirect_uris": [ok], "client_name": "Cantine \u{202e}sulP" }).to_string(),
            "invalid_client_metadata",
        ),
        (
            "response_types token",
            json!({ "redirect_uris": [ok], "response_types": ["token"] }).to_string(),
            "invalid_client_metadata",
        ),
        (
            "id_token_signed_response_alg none",
            json!({ "redirect_uris": [ok], "id_token_signed_response_alg": "none" }).to_string(),
            "invalid_client_metadata",
        ),
        (
            "userinfo_signed_response_alg HS256",
            json!({ "redirect_uris": [ok], "userinfo_signed_response_alg": "HS256" }).to_string(),
            "invalid_client_metadata",
        ),
        (
            "jwks holding a private key",
            json!({
                "redirect_uris": [ok],
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks": { "keys": [key.private_jwk()] },
            })
            .to_string(),
            "invalid_client_metadata",
        ),
        (
            "jwks holding a symmetric key",
            json!({
                "redirect_uris": [ok],
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks": { "keys": [oct] },
            })
            .to_string(),
            "invalid_client_metadata",
        ),
        (
            "jwks and jwks_uri both",
            json!({
                "redirect_uris": [ok],
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks": jwks(&[&key]),
                "jwks_uri": docs.url("/jwks.json"),
            })
            .to_string(),
            "invalid_client_metadata",
        ),
        (
            "private_key_jwt without keys",
            json!({ "redirect_uris": [ok], "token_endpoint_auth_method": "private_key_jwt" })
                .to_string(),
            "invalid_client_metadata",
        ),
        (
            "an http logo_uri (not loopback)",
            json!({ "redirect_uris": [ok], "logo_uri": "http://rp.example.org/logo.png" })
                .to_string(),
            "invalid_client_metadata",
        ),
        (
            "a sector_identifier_uri that does not list the redirect URI",
            json!({ "redirect_uris": [ok], "sector_identifier_uri": docs.url("/sector.json") })
                .to_string(),
            "invalid_client_metadata",
        ),
        (
            "a sector_identifier_uri that cannot be read",
            json!({ "redirect_uris": [ok], "sector_identifier_uri": docs.url("/missing.json") })
                .to_string(),
            "invalid_client_metadata",
        ),
        (
            "an unknown token_endpoint_auth_method",
            json!({ "redirect_uris": [ok], "token_endpoint_auth_method": "client_secret_jwt" })
                .to_string(),
            "invalid_client_metadata",
        ),
        (
            "a body that is not JSON",
            format!("redirect_uris={ok}"),
            "invalid_client_metadata",
        ),
        (
            "a redirect URI with a non-ASCII host, echoed back",
            json!({ "redirect_uris": ["http://é.example/cb"] }).to_string(),
            "invalid_redirect_uri",
        ),
    ];
    let clients = app.count("clients").await;
    for (what, body, expected) in cases {
        let response = post_register(&app, Some(&token), &body).await;
        assert!(
            response
                .headers()
                .get("content-type")
                .is_some_and(|c| c.to_str().unwrap().starts_with("application/json")),
            "{what}: a JSON answer"
        );
        let (status, answer) = status_and_json(response).await;
        assert_eq!(status, 400, "{what}: {answer}");
        assert_eq!(answer["error"], expected, "{what}: {answer}");
        assert!(
            answer["error_description"]
                .as_str()
                .is_some_and(|d| !d.is_empty() && d.is_ascii()),
            "{what}: an ASCII error_description: {answer}"
        );
        if what == "client_name a number" {
            assert_eq!(
                answer["error_description"],
                "client_name has the wrong type"
            );
        }
        assert_eq!(
            app.count("clients").await,
            clients,
            "{what}: nothing written"
        );
    }

    // The same server's sector document, listing the redirect URI: accepted.
    docs.serve_sector(&[ok, "https://other.example/callback"]);
    let registered = register(
        &app,
        json!({ "redirect_uris": [ok], "sector_identifier_uri": docs.url("/sector.json") }),
    )
    .await;
    assert_eq!(
        registered["sector_identifier_uri"],
        docs.url("/sector.json")
    );
    assert_eq!(app.count("clients").await, clients + 1);
}

#[tokio::test]
async fn redirect_uris_on_two_hosts_register_with_a_sector_identifier_uri_and_are_refused_without()
{
    let app = spawn_app().await;
    let docs = Documents::start().await;
    // (Loopback addresses are one host: the app's own.)
    let two_hosts = [REDIRECT_URI, "https://ent.example.org/callback"];
    docs.serve_sector(&two_hosts);
    let clients = app.count("clients").await;

    // OIDC Core §8.1: redirect URIs on several hosts need a sector identifier
    // for pairwise subjects. Every case is tried before any is judged.
    let token = initial_token(&app).await;
    let mut outcomes = Vec::new();
    for (what, metadata, expected) in [
        (
            "pairwise, no sector_identifier_uri",
            json!({ "redirect_uris": two_hosts }),
            400,
        ),
        (
            "pairwise, a sector_identifier_uri listing both",
            json!({ "redirect_uris": two_hosts, "sector_identifier_uri": docs.url("/sector.json") }),
            201,
        ),
        // Public subjects (the account's id, the same for every such
        // service) are the academy's own services': refused.
        (
            "public subjects",
            json!({ "redirect_uris": two_hosts, "subject_type": "public" }),
            400,
        ),
        // A native app on both loopback addresses (RFC 8252 §7.3): one
        // sector, its own.
        (
            "a native app on 127.0.0.1 and [::1]",
            json!({
                "application_type": "native",
                "redirect_uris": ["http://127.0.0.1/cb", "http://[::1]/cb"],
                "token_endpoint_auth_method": "none",
            }),
            201,
        ),
    ] {
        let response = post_register(&app, Some(&token), &metadata.to_string()).await;
        let (status, answer) = status_and_json(response).await;
        outcomes.push((what, expected, status, answer));
    }
    for (what, expected, status, answer) in &outcomes {
        assert_eq!(
            status,
            expected,
            "{what}: {answer}\nall cases: {:?}",
            outcomes
                .iter()
                .map(|(what, _, status, _)| format!("{what} → {status}"))
                .collect::<Vec<_>>()
        );
        if *expected == 400 {
            assert!(
                matches!(
                    answer["error"].as_str(),
                    Some("invalid_client_metadata" | "invalid_redirect_uri")
                ),
                "{what}: {answer}"
            );
        } else if answer["application_type"] != "native" {
            assert_eq!(answer["redirect_uris"], json!(two_hosts), "{what}");
        }
    }
    assert_eq!(app.count("clients").await, clients + 2);
}

/// A registered service cannot turn its pairwise subjects into public ones
/// (the account's id, the same for every such service) by replacing its
/// registration: refused, the registration as it was.
#[tokio::test]
async fn a_registered_service_cannot_move_to_public_subjects() {
    let app = spawn_app().await;
    let registered = register(&app, json!({ "redirect_uris": [REDIRECT_URI] })).await;
    assert_eq!(registered["subject_type"], "pairwise");
    let replaced = reqwest::Client::new()
        .put(registered["registration_client_uri"].as_str().unwrap())
        .bearer_auth(registered["registration_access_token"].as_str().unwrap())
        .json(&json!({
            "client_id": registered["client_id"],
            "redirect_uris": [REDIRECT_URI],
            "subject_type": "public",
        }))
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(replaced).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_client_metadata")),
        "{body}"
    );
    let subject_type: String = sqlx::query_scalar("SELECT subject_type FROM clients WHERE id = $1")
        .bind(registered["client_id"].as_str().unwrap())
        .fetch_one(&app.app.db)
        .await
        .unwrap();
    assert_eq!(subject_type, "pairwise");
}

#[tokio::test]
async fn a_sector_identifier_uri_sets_the_sector_of_pairwise_subjects() {
    let app = spawn_app().await;
    app.family().await;
    let docs = Documents::start().await;
    let at_localhost = "http://localhost:9999/callback";
    docs.serve_sector(&[at_localhost]);
    // Its redirect URI is on localhost, its sector document on 127.0.0.1.
    let grouped = register(
        &app,
        json!({ "redirect_uris": [at_localhost], "sector_identifier_uri": docs.url("/sector.json") }),
    )
    .await;
    let same_sector = register(
        &app,
        json!({ "redirect_uris": [at_localhost], "sector_identifier_uri": docs.url("/sector.json") }),
    )
    .await;
    let same_redirect_host = register(&app, json!({ "redirect_uris": [at_localhost] })).await;

    let browser = browser();
    let mut subjects = Vec::new();
    for (client, redirect_uri) in [
        (&grouped, at_localhost),
        (&same_sector, at_localhost),
        (&same_redirect_host, at_localhost),
    ] {
        let id = client["client_id"].as_str().unwrap();
        let url = authorize_url(&app, id, &[("redirect_uri", redirect_uri)]);
        let code = code_for(&app, &browser, &url).await;
        let tokens = exchange_with_basic(&app, client, &code, redirect_uri).await;
        assert_eq!(tokens.status(), 200);
        let tokens: Value = tokens.json().await.unwrap();
        subjects.push(jwt_claims(tokens["id_token"].as_str().unwrap())["sub"].clone());
    }
    assert_eq!(
        subjects[0], subjects[1],
        "one sector identifier URI, one sector"
    );
    assert_ne!(subjects[0], subjects[2], "not the redirect URI's");
}

#[tokio::test]
async fn a_registered_client_reads_replaces_and_deletes_its_registration() {
    let app = spawn_app().await;
    app.family().await;
    let registered = register(
        &app,
        json!({ "redirect_uris": [REDIRECT_URI], "client_name": "Agenda scolaire" }),
    )
    .await;
    let other = register(&app, json!({ "redirect_uris": [REDIRECT_URI] })).await;
    let client_id = registered["client_id"].as_str().unwrap().to_owned();
    assert!(registered["client_secret"].as_str().is_some());
    let mut access = registered["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let uri = registered["registration_client_uri"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(uri, app.url(&format!("/register/{client_id}")));
    let http = reqwest::Client::new();

    // GET with the registration access token: the metadata.
    let read = http.get(&uri).bearer_auth(&access).send().await.unwrap();
    assert_eq!(read.status(), 200);
    assert!(
        read.headers()
            .get("cache-control")
            .is_some_and(|c| c.to_str().unwrap().contains("no-store"))
    );
    let read: Value = read.json().await.unwrap();
    assert_eq!(read["client_id"], client_id.as_str());
    assert_eq!(read["client_name"], "Agenda scolaire");
    assert_eq!(read["redirect_uris"], json!([REDIRECT_URI]));
    assert_eq!(read["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(read["registration_client_uri"], uri.as_str());
    // RFC 7592 §3: the response carries the registration access token, a
    // new one; the one used stops working.
    let renewed = read["registration_access_token"].as_str().expect("a token");
    assert_ne!(renewed, access);
    assert_invalid_token(
        http.get(&uri).bearer_auth(&access).send().await.unwrap(),
        "GET with the token a read replaced",
    )
    .await;
    access = renewed.to_owned();

    // Anything else: 401.
    assert_invalid_token(
        http.get(&uri).bearer_auth("wrong").send().await.unwrap(),
        "GET with a wrong token",
    )
    .await;
    assert_token_missing(http.get(&uri).send().await.unwrap(), "GET without a token").await;
    assert_invalid_token(
        http.get(&uri)
            .bearer_auth(other["registration_access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap(),
        "GET with another client's registration access token",
    )
    .await;
    assert_invalid_token(
        http.get(&uri)
            .bearer_auth(initial_token(&app).await)
            .send()
            .await
            .unwrap(),
        "GET with an initial access token",
    )
    .await;

    // PUT: redirect URIs and name replaced.
    let moved = "http://127.0.0.1:9999/new-callback";
    let put = |token: &str, body: Value| {
        http.put(&uri)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    };
    let replaced = put(
        &access,
        json!({ "client_id": client_id, "redirect_uris": [moved], "client_name": "Agenda 2" }),
    )
    .await
    .unwrap();
    let (status, replaced) = status_and_json(replaced).await;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(replaced["redirect_uris"], json!([moved]));
    assert_eq!(replaced["client_name"], "Agenda 2");
    assert_eq!(replaced["client_id"], client_id.as_str());
    access = renewed_token(&replaced, &access);
    let read: Value = http
        .get(&uri)
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read["redirect_uris"], json!([moved]));
    assert_eq!(read["client_name"], "Agenda 2");
    access = renewed_token(&read, &access);
    // The new redirect URI is the one /authorize accepts now.
    let browser = browser();
    let old = browser
        .get(authorize_url(&app, &client_id, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), 400, "the replaced redirect URI is refused");
    assert!(old.headers().get("location").is_none());
    let code = code_for(
        &app,
        &browser,
        &authorize_url(&app, &client_id, &[("redirect_uri", moved)]),
    )
    .await;

    // A wrong or missing client_id, a wrong secret, a wrong token: refused, nothing changed.
    for (what, body) in [
        (
            "another client's id",
            json!({ "client_id": other["client_id"], "redirect_uris": [REDIRECT_URI] }),
        ),
        ("no client_id", json!({ "redirect_uris": [REDIRECT_URI] })),
        (
            "a wrong client_secret",
            json!({ "client_id": client_id, "client_secret": "wrong", "redirect_uris": [REDIRECT_URI] }),
        ),
    ] {
        let (status, answer) = status_and_json(put(&access, body).await.unwrap()).await;
        assert_eq!(status, 400, "{what}: {answer}");
        assert_eq!(answer["error"], "invalid_client_metadata", "{what}");
    }
    assert_invalid_token(
        put(
            "wrong",
            json!({ "client_id": client_id, "redirect_uris": [REDIRECT_URI] }),
        )
        .await
        .unwrap(),
        "PUT with a wrong token",
    )
    .await;
    let read: Value = http
        .get(&uri)
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read["redirect_uris"], json!([moved]), "nothing changed");
    access = renewed_token(&read, &access);

    // Before the deletion the secret works (a bogus code is what fails)...
    let bogus = exchange_with_basic(&app, &registered, "bogus", moved).await;
    assert_authenticated(bogus, "the secret before deletion").await;
    // ...and an access token of the client reads UserInfo.
    let tokens = exchange_with_basic(&app, &registered, &code, moved).await;
    assert_eq!(tokens.status(), 200);
    let tokens: Value = tokens.json().await.unwrap();
    let access_token = tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(userinfo_status(&app, &access_token).await, 200);
    let pending_code = code_for(
        &app,
        &browser,
        &authorize_url(&app, &client_id, &[("redirect_uri", moved)]),
    )
    .await;

    // DELETE with a wrong token: nothing happens.
    assert_invalid_token(
        http.delete(&uri).bearer_auth("wrong").send().await.unwrap(),
        "DELETE with a wrong token",
    )
    .await;
    let consents_to = |client_id: String| {
        let db = app.app.db.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM consents WHERE client_id = $1")
                .bind(client_id)
                .fetch_one(&db)
                .await
                .unwrap()
        }
    };
    assert_eq!(consents_to(client_id.clone()).await, 1);
    let deleted = http.delete(&uri).bearer_auth(&access).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    // The parent's consent went with it: « Applications autorisées » no
    // longer lists a service that receives nothing.
    assert_eq!(consents_to(client_id.clone()).await, 0);

    // The client is gone: no tokens for its secret, its code or its access token.
    let after = exchange_with_basic(&app, &registered, &pending_code, moved).await;
    assert_invalid_client(after, "the deleted client's secret at /token").await;
    assert_eq!(userinfo_status(&app, &access_token).await, 401);
    let authorize = browser
        .get(authorize_url(&app, &client_id, &[("redirect_uri", moved)]))
        .send()
        .await
        .unwrap();
    assert_eq!(authorize.status(), 400, "no sign-in for a deleted client");
    assert_invalid_token(
        http.get(&uri).bearer_auth(&access).send().await.unwrap(),
        "GET after DELETE",
    )
    .await;
    assert_invalid_token(
        put(
            &access,
            json!({ "client_id": client_id, "redirect_uris": [moved] }),
        )
        .await
        .unwrap(),
        "PUT after DELETE",
    )
    .await;
    assert_invalid_token(
        http.delete(&uri).bearer_auth(&access).send().await.unwrap(),
        "DELETE again",
    )
    .await;
    // The other client is untouched.
    let other_uri = other["registration_client_uri"].as_str().unwrap();
    let still = http
        .get(other_uri)
        .bearer_auth(other["registration_access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(still.status(), 200);
}

#[tokio::test]
async fn private_key_jwt_with_inline_es256_keys_signs_in_and_every_forged_assertion_is_refused() {
    let app = spawn_app().await;
    app.family().await;
    let key = ClientKey::es256("k1");
    let registered = register(
        &app,
        json!({
            "redirect_uris": [REDIRECT_URI],
            "token_endpoint_auth_method": "private_key_jwt",
            "token_endpoint_auth_signing_alg": "ES256",
            "jwks": jwks(&[&key]),
        }),
    )
    .await;
    assert!(
        registered.get("client_secret").is_none(),
        "no secret for private_key_jwt: {registered}"
    );
    assert_eq!(registered["token_endpoint_auth_method"], "private_key_jwt");
    assert_eq!(registered["jwks"], jwks(&[&key]));
    let id = registered["client_id"].as_str().unwrap().to_owned();

    // A full login, the code exchanged with an assertion.
    let browser = browser();
    let code = code_for(&app, &browser, &authorize_url(&app, &id, &[])).await;
    let used = key.sign(&assertion_claims(&app, &id));
    let tokens = exchange_with_assertion(&app, &code, &used).await;
    let (status, tokens) = status_and_json(tokens).await;
    assert_eq!(status, 200, "{tokens}");
    let access_token = tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        jwt_claims(tokens["id_token"].as_str().unwrap())["aud"],
        id.as_str()
    );

    // The assertion works at introspection and revocation too.
    let claims = assertion_claims(&app, &id);
    let introspected: Value = reqwest::Client::new()
        .post(app.url("/introspect"))
        .form(&[
            ("token", access_token.as_str()),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &key.sign(&claims)),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(introspected["active"], true, "{introspected}");

    // The same assertion again: refused even with a bogus code (authentication comes first).
    assert_invalid_client(
        exchange_with_assertion(&app, "bogus", &used).await,
        "a replayed assertion",
    )
    .await;
    // A fresh one passes authentication: only the bogus code is refused.
    assert_authenticated(
        exchange_with_assertion(&app, "bogus", &key.sign(&assertion_claims(&app, &id))).await,
        "a fresh assertion",
    )
    .await;
    // As libraries make them: `exp` an hour ahead (authlib's default), a
    // NumericDate with a fraction.
    for exp in [
        json!(app.app.now() + 3600),
        json!(app.app.now() as f64 + 300.5),
    ] {
        let mut claims = assertion_claims(&app, &id);
        claims["exp"] = exp.clone();
        assert_authenticated(
            exchange_with_assertion(&app, "bogus", &key.sign(&claims)).await,
            &format!("exp {exp}"),
        )
        .await;
    }

    let now = app.app.now();
    let with = |change: &dyn Fn(&mut Value)| {
        let mut claims = assertion_claims(&app, &id);
        change(&mut claims);
        claims
    };
    let other_key = ClientKey::es256("k1");
    let rsa_key = ClientKey::rs256("k1");
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({ "alg": "none", "typ": "JWT", "kid": "k1" }).to_string()),
        URL_SAFE_NO_PAD.encode(assertion_claims(&app, &id).to_string())
    );
    // HS256 keyed with the registered public key (the PEM, then the JWK's JSON).
    let pem = josekit::jwk::alg::ec::EcKeyPair::from_jwk(&key.private)
        .unwrap()
        .to_pem_public_key();
    let hs_pem = sign_with(
        &HS256.signer_from_bytes(&pem).unwrap(),
        Some("k1"),
        &assertion_claims(&app, &id),
    );
    let hs_jwk = sign_with(
        &HS256
            .signer_from_bytes(key.public_jwk().to_string().as_bytes())
            .unwrap(),
        Some("k1"),
        &assertion_claims(&app, &id),
    );
    let forged: Vec<(&str, String)> = vec![
        (
            "aud another server",
            key.sign(&with(&|c| c["aud"] = json!("https://other.example/token"))),
        ),
        (
            "aud the UserInfo endpoint",
            key.sign(&with(&|c| c["aud"] = json!(app.url("/userinfo")))),
        ),
        // The audience-injection attack's way in (draft-ietf-oauth-rfc7523bis):
        // the token endpoint, or the issuer in a list, are no longer taken.
        (
            "aud the token endpoint",
            key.sign(&with(&|c| c["aud"] = json!(app.url("/token")))),
        ),
        (
            "aud a list holding the issuer",
            key.sign(&with(&|c| c["aud"] = json!([app.address]))),
        ),
        (
            "expired",
            key.sign(&with(&|c| {
                c["iat"] = json!(now - 600);
                c["exp"] = json!(now - 120);
            })),
        ),
        (
            "no exp",
            key.sign(&with(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            })),
        ),
        (
            "exp two hours ahead",
            key.sign(&with(&|c| c["exp"] = json!(now + 7200))),
        ),
        (
            "no jti",
            key.sign(&with(&|c| {
                c.as_object_mut().unwrap().remove("jti");
            })),
        ),
        (
            "sub another client",
            key.sign(&with(&|c| c["sub"] = json!("someone-else"))),
        ),
        ("alg none", unsigned),
        ("HS256 keyed with the public key's PEM", hs_pem),
        ("HS256 keyed with the public JWK", hs_jwk),
        (
            "signed by another ES256 key with the same kid",
            other_key.sign(&assertion_claims(&app, &id)),
        ),
        (
            "signed by another key without kid",
            sign_with(&*other_key.signer(), None, &assertion_claims(&app, &id)),
        ),
        (
            "RS256 by an RSA key with the same kid",
            rsa_key.sign(&assertion_claims(&app, &id)),
        ),
    ];
    for (what, assertion) in &forged {
        assert_invalid_client(
            exchange_with_assertion(&app, "bogus", assertion).await,
            what,
        )
        .await;
    }

    // The client's secret methods are refused: it registered private_key_jwt.
    let basic = reqwest::Client::new()
        .post(app.url("/token"))
        .basic_auth(&id, Some("any-secret"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "bogus"),
            ("redirect_uri", REDIRECT_URI),
        ])
        .send()
        .await
        .unwrap();
    assert_invalid_client(basic, "client_secret_basic for a private_key_jwt client").await;
    assert_invalid_client(
        token_request(
            &app,
            &[
                ("grant_type", "authorization_code"),
                ("code", "bogus"),
                ("redirect_uri", REDIRECT_URI),
                ("client_id", &id),
                ("client_secret", "any-secret"),
            ],
        )
        .await,
        "client_secret_post for a private_key_jwt client",
    )
    .await;
    assert_invalid_client(
        token_request(
            &app,
            &[
                ("grant_type", "authorization_code"),
                ("code", "bogus"),
                ("redirect_uri", REDIRECT_URI),
                ("client_id", &id),
            ],
        )
        .await,
        "no authentication for a private_key_jwt client",
    )
    .await;

    // Revocation with an assertion; the token is gone.
    let revoked = reqwest::Client::new()
        .post(app.url("/revoke"))
        .form(&[
            ("token", access_token.as_str()),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &key.sign(&assertion_claims(&app, &id))),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(userinfo_status(&app, &access_token).await, 401);
}

/// `client_assertion_audience = "issuer-or-endpoint"`: clients built before
/// draft-ietf-oauth-rfc7523bis address their assertions to the endpoint
/// called, or list several audiences; another server is still refused.
#[tokio::test]
async fn private_key_jwt_takes_the_endpoint_as_audience_when_configured_so() {
    let app = spawn_app_with(|config| {
        config.client_assertion_audience = clef::config::AssertionAudience::IssuerOrEndpoint;
    })
    .await;
    let key = ClientKey::es256("k1");
    let registered = register(
        &app,
        json!({
            "redirect_uris": [REDIRECT_URI],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": jwks(&[&key]),
        }),
    )
    .await;
    let id = registered["client_id"].as_str().unwrap().to_owned();
    for aud in [
        json!(app.address),
        json!(app.url("/token")),
        json!(["https://other.example", app.url("/token")]),
    ] {
        let mut claims = assertion_claims(&app, &id);
        claims["aud"] = aud.clone();
        assert_authenticated(
            exchange_with_assertion(&app, "bogus", &key.sign(&claims)).await,
            &format!("aud {aud}"),
        )
        .await;
    }
    let mut claims = assertion_claims(&app, &id);
    claims["aud"] = json!("https://other.example/token");
    assert_invalid_client(
        exchange_with_assertion(&app, "bogus", &key.sign(&claims)).await,
        "aud another server",
    )
    .await;
}

#[tokio::test]
async fn private_key_jwt_with_a_jwks_uri_is_cached_and_refetched_when_the_client_rotates_its_key() {
    let app = spawn_app().await;
    app.family().await;
    let docs = Documents::start().await;
    let first = ClientKey::eddsa("e1");
    docs.serve_jwks(jwks(&[&first]));
    let registered = register(
        &app,
        json!({
            "redirect_uris": [REDIRECT_URI],
            "token_endpoint_auth_method": "private_key_jwt",
            "token_endpoint_auth_signing_alg": "EdDSA",
            "jwks_uri": docs.url("/jwks.json"),
        }),
    )
    .await;
    assert!(registered.get("client_secret").is_none());
    assert_eq!(registered["jwks_uri"], docs.url("/jwks.json"));
    let id = registered["client_id"].as_str().unwrap().to_owned();
    let hits = docs.jwks_hits();

    let browser = browser();
    let code = code_for(&app, &browser, &authorize_url(&app, &id, &[])).await;
    let response =
        exchange_with_assertion(&app, &code, &first.sign(&assertion_claims(&app, &id))).await;
    let (status, tokens) = status_and_json(response).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(docs.jwks_hits(), hits + 1, "the keys fetched once");

    // Cached: more assertions, no more fetches.
    for _ in 0..3 {
        assert_authenticated(
            exchange_with_assertion(&app, "bogus", &first.sign(&assertion_claims(&app, &id))).await,
            "an assertion by the cached key",
        )
        .await;
    }
    assert_eq!(
        docs.jwks_hits(),
        hits + 1,
        "the JWKS is not fetched on every request"
    );

    // The client rotates: its server now publishes only a new key, with a new kid.
    let second = ClientKey::eddsa("e2");
    docs.serve_jwks(jwks(&[&second]));
    let code = code_for(&app, &browser, &authorize_url(&app, &id, &[])).await;
    let response =
        exchange_with_assertion(&app, &code, &second.sign(&assertion_claims(&app, &id))).await;
    let (status, tokens) = status_and_json(response).await;
    assert_eq!(status, 200, "the new kid is fetched: {tokens}");
    assert_eq!(
        docs.jwks_hits(),
        hits + 2,
        "fetched again for the unknown kid"
    );
    assert_authenticated(
        exchange_with_assertion(&app, "bogus", &second.sign(&assertion_claims(&app, &id))).await,
        "the new key, cached",
    )
    .await;
    assert_eq!(docs.jwks_hits(), hits + 2);

    // The retired key no longer signs in.
    assert_invalid_client(
        exchange_with_assertion(&app, "bogus", &first.sign(&assertion_claims(&app, &id))).await,
        "the retired key",
    )
    .await;
    // Nor does a key the client never published, nor an ES256 assertion under the EdDSA kid.
    assert_invalid_client(
        exchange_with_assertion(
            &app,
            "bogus",
            &ClientKey::eddsa("e2").sign(&assertion_claims(&app, &id)),
        )
        .await,
        "an unpublished key under the published kid",
    )
    .await;
    assert_invalid_client(
        exchange_with_assertion(
            &app,
            "bogus",
            &ClientKey::es256("e2").sign(&assertion_claims(&app, &id)),
        )
        .await,
        "ES256 under an EdDSA kid",
    )
    .await;

    // A new registration (RFC 7592 §2.2) drops the keys cached under the
    // old one: what its jwks_uri publishes now signs, nothing before.
    let third = ClientKey::eddsa("e3");
    docs.serve_jwks(jwks(&[&third]));
    let replaced = reqwest::Client::new()
        .put(registered["registration_client_uri"].as_str().unwrap())
        .bearer_auth(registered["registration_access_token"].as_str().unwrap())
        .json(&json!({
            "client_id": id,
            "redirect_uris": [REDIRECT_URI],
            "token_endpoint_auth_method": "private_key_jwt",
            "token_endpoint_auth_signing_alg": "EdDSA",
            "jwks_uri": docs.url("/jwks.json"),
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(replaced.status(), 200);
    assert_invalid_client(
        exchange_with_assertion(&app, "bogus", &second.sign(&assertion_claims(&app, &id))).await,
        "a key cached before the new registration",
    )
    .await;
    assert_authenticated(
        exchange_with_assertion(&app, "bogus", &third.sign(&assertion_claims(&app, &id))).await,
        "the key published now",
    )
    .await;
}

#[tokio::test]
async fn id_tokens_signed_es256_and_eddsa_verify_through_openidconnect_and_userinfo_can_be_signed()
{
    let app = spawn_app().await;
    app.family().await;
    let http = http_client();
    let metadata = discover(&app, &http).await;
    let browser = browser();

    let mut subjects = Vec::new();
    for (name, alg) in [
        ("ES256", CoreJwsSigningAlgorithm::EcdsaP256Sha256),
        ("EdDSA", CoreJwsSigningAlgorithm::EdDsa),
        ("RS256", CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256),
    ] {
        // One web service's host: one sector (loopback would be each app's own).
        let registered = register(
            &app,
            json!({ "redirect_uris": ["https://rp.example/callback"], "id_token_signed_response_alg": name }),
        )
        .await;
        assert_eq!(registered["id_token_signed_response_alg"], name);
        let (sub, _, id_token) =
            sign_in_with_openidconnect(&app, &http, &browser, &metadata, &registered, alg).await;
        assert_eq!(header(&id_token)["alg"], name);
        subjects.push(sub);
    }
    assert!(
        subjects.iter().all(|s| *s == subjects[0]),
        "one sector, one pairwise subject whatever the algorithm"
    );

    // Signed UserInfo: application/jwt, ES256, verified against the JWKS.
    let registered = register(
        &app,
        json!({ "redirect_uris": [REDIRECT_URI], "userinfo_signed_response_alg": "ES256" }),
    )
    .await;
    assert_eq!(registered["userinfo_signed_response_alg"], "ES256");
    let client_id = registered["client_id"].as_str().unwrap().to_owned();
    let (sub, access_token, _) = sign_in_with_openidconnect(
        &app,
        &http,
        &browser,
        &metadata,
        &registered,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    )
    .await;
    let response = reqwest::Client::new()
        .get(app.url("/userinfo"))
        .bearer_auth(access_token.secret())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers().get("content-type").unwrap(),
        "application/jwt"
    );
    let jwt = response.text().await.unwrap();
    let jwt_header = header(&jwt);
    assert_eq!(jwt_header["alg"], "ES256");
    let set = JwkSet::from_bytes(
        reqwest::get(app.url("/jwks.json"))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    let kid = jwt_header["kid"].as_str().expect("a kid");
    let jwk = set
        .get(kid)
        .into_iter()
        .next()
        .expect("the kid is published");
    let verifier: Box<dyn JwsVerifier> = Box::new(ES256.verifier_from_jwk(jwk).unwrap());
    let (claims, _) = josekit::jws::deserialize_compact(&jwt, &*verifier)
        .expect("the UserInfo JWT verifies against the JWKS");
    let claims: Value = serde_json::from_slice(&claims).unwrap();
    assert_eq!(claims["iss"], app.address.as_str());
    assert_eq!(claims["aud"], client_id.as_str());
    assert_eq!(
        claims["sub"],
        sub.as_str(),
        "UserInfo sub is the ID token's"
    );
    // A registered service is a third party: names, not the login identifier.
    assert_eq!(claims["given_name"], "Claire");
    assert!(claims.get("preferred_username").is_none(), "{claims}");
}

#[tokio::test]
async fn client_metadata_is_a_json_object_not_an_array_of_its_fields() {
    let app = spawn_app().await;
    let token = initial_token(&app).await;
    let clients = app.count("clients").await;
    // ClientMetadata's fields in declaration order: client_id, client_secret, redirect_uris.
    let array = json!([null, null, [REDIRECT_URI]]).to_string();
    let (status, answer) = status_and_json(post_register(&app, Some(&token), &array).await).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("invalid_client_metadata")),
        "RFC 7591 §3.1: the metadata is a JSON object: {answer}"
    );
    assert_eq!(app.count("clients").await, clients, "nothing written");
}

#[tokio::test]
async fn a_client_credentials_service_without_redirect_uris_is_registered_or_told_why() {
    let app = spawn_app().await;
    let token = initial_token(&app).await;
    let clients = app.count("clients").await;
    // RFC 7591 §2: redirect_uris is for redirect-based flows; a service has none.
    let metadata = json!({ "grant_types": ["client_credentials"], "scope": "agenda:lecture" });
    let response = post_register(&app, Some(&token), &metadata.to_string()).await;
    let (status, answer) = status_and_json(response).await;
    match status {
        201 => {
            assert_eq!(answer["grant_types"], json!(["client_credentials"]));
            assert_eq!(app.count("clients").await, clients + 1);
        }
        400 => {
            assert!(
                matches!(
                    answer["error"].as_str(),
                    Some("invalid_redirect_uri" | "invalid_client_metadata")
                ),
                "{answer}"
            );
            assert_eq!(app.count("clients").await, clients);
        }
        _ => {
            panic!("a registration answer (201, or 400 with an error code), got {status}: {answer}")
        }
    }
}

#[tokio::test]
async fn a_native_application_is_read_back_as_native() {
    let app = spawn_app().await;
    let registered = register(
        &app,
        json!({
            "application_type": "native",
            "redirect_uris": ["org.example.agenda:/callback"],
            "token_endpoint_auth_method": "none",
        }),
    )
    .await;
    assert!(registered.get("client_secret").is_none(), "{registered}");
    let read: Value = reqwest::Client::new()
        .get(registered["registration_client_uri"].as_str().unwrap())
        .bearer_auth(registered["registration_access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // RFC 7591 §3.2.1, RFC 7592 §3: the registered metadata, as registered.
    assert_eq!(
        (
            registered["application_type"].as_str(),
            read["application_type"].as_str()
        ),
        (Some("native"), Some("native")),
        "registration answer: {registered}"
    );
}

#[tokio::test]
async fn the_registered_token_endpoint_auth_signing_alg_is_the_only_one_accepted() {
    let app = spawn_app().await;
    let es = ClientKey::es256("k-es");
    let rsa = ClientKey::rs256("k-rsa");
    let registered = register(
        &app,
        json!({
            "redirect_uris": [REDIRECT_URI],
            "token_endpoint_auth_method": "private_key_jwt",
            "token_endpoint_auth_signing_alg": "ES256",
            "jwks": jwks(&[&es, &rsa]),
        }),
    )
    .await;
    let id = registered["client_id"].as_str().unwrap().to_owned();
    assert_authenticated(
        exchange_with_assertion(&app, "bogus", &es.sign(&assertion_claims(&app, &id))).await,
        "an ES256 assertion",
    )
    .await;
    // OIDC Registration §2: requests whose JWT is not signed with the
    // registered algorithm MUST be rejected.
    assert_invalid_client(
        exchange_with_assertion(&app, "bogus", &rsa.sign(&assertion_claims(&app, &id))).await,
        "an RS256 assertion from a client that registered ES256",
    )
    .await;
    assert_eq!(
        registered["token_endpoint_auth_signing_alg"], "ES256",
        "the registration answer holds what was registered: {registered}"
    );
}

#[tokio::test]
async fn a_registered_client_name_is_shown_escaped_on_the_consent_page() {
    let app = spawn_app().await;
    app.family().await;
    let registered = register(
        &app,
        json!({
            "redirect_uris": [REDIRECT_URI],
            "client_name": "Agenda <img src=x onerror=alert(1)>",
        }),
    )
    .await;
    let browser = browser();
    let url = authorize_url(&app, registered["client_id"].as_str().unwrap(), &[]);
    let page = page_text(&browser, &url).await;
    let after_login = submit_login(&app, &browser, &page, "claire.martin", PASSWORD).await;
    let consent = page_text(&browser, &app.url(&location(&after_login))).await;
    assert!(consent.contains("Agenda &lt;img"), "{consent}");
    assert!(
        !consent.contains("<img src=x"),
        "the name is text, not markup"
    );
}

/// A service registering itself cannot take the name of one of the
/// academy's own (« ENT du test »), however it writes it: parents would
/// read it on the consent page as the academy's.
#[tokio::test]
async fn a_registered_client_cannot_take_a_first_party_service_s_name() {
    let app = spawn_app().await;
    app.client_with(|_| {}).await;
    app.client_with(|new| new.name = "Pronote".into()).await;
    let token = initial_token(&app).await;
    let clients = app.count("clients").await;
    // Then in Greek capitals, and with a Cyrillic « Р », which a
    // transliteration reads « R ».
    for copied in [
        "ENT du test",
        "ent-du-TEST",
        "Ént du tеst",
        "\u{395}\u{39d}\u{3a4} du test",
        "\u{420}ronote",
    ] {
        let metadata = json!({ "redirect_uris": [REDIRECT_URI], "client_name": copied });
        let (status, body) =
            status_and_json(post_register(&app, Some(&token), &metadata.to_string()).await).await;
        assert_eq!(status, 400, "{copied}: {body}");
        assert_eq!(body["error"], "invalid_client_metadata");
        assert_eq!(
            body["error_description"],
            "client_name is the name of one of the academy's own services"
        );
    }
    assert_eq!(app.count("clients").await, clients);
    let own = json!({ "redirect_uris": [REDIRECT_URI], "client_name": "ENT du test bis" });
    let (status, body) =
        status_and_json(post_register(&app, Some(&token), &own.to_string()).await).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn two_unrelated_native_applications_see_unlinkable_pairwise_subjects() {
    let app = spawn_app().await;
    app.family().await;
    let browser = browser();
    let mut subjects = Vec::new();
    // The third registers the first one's scheme; the last two write a
    // "host" after theirs.
    for redirect_uri in [
        "org.example.agenda:/callback",
        "com.autre.cantine:/callback",
        "org.example.agenda:/callback",
        "org.example.cahier://callback",
        "com.autre.devoirs://callback",
    ] {
        let registered = register(
            &app,
            json!({
                "application_type": "native",
                "redirect_uris": [redirect_uri],
                "token_endpoint_auth_method": "none",
            }),
        )
        .await;
        let id = registered["client_id"].as_str().unwrap();
        let (verifier, challenge) = pkce();
        let url = authorize_url(
            &app,
            id,
            &[
                ("redirect_uri", redirect_uri),
                ("scope", "openid"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        );
        let code = code_for(&app, &browser, &url).await;
        let response = token_request(
            &app,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", redirect_uri),
                ("client_id", id),
                ("code_verifier", &verifier),
            ],
        )
        .await;
        let (status, tokens) = status_and_json(response).await;
        assert_eq!(status, 200, "{tokens}");
        subjects.push(jwt_claims(tokens["id_token"].as_str().unwrap())["sub"].clone());
    }
    // Their redirect URIs have no host: the host rule of OIDC Core §8.1 gives
    // them no sector, which must not become one sector shared by every such app.
    assert_ne!(
        subjects[0], subjects[1],
        "two native apps of different publishers can link Claire by her pairwise sub"
    );
    // Anyone may register a scheme: one that registered itself is its own sector.
    assert_ne!(
        subjects[0], subjects[2],
        "an app that registered another's scheme is given that app's subjects"
    );
    assert_ne!(
        subjects[3], subjects[4],
        "two apps whose private schemes write the same host share a sector"
    );
    // Nor may a sector document, which anyone can read, group such a scheme.
    let docs = Documents::start().await;
    docs.serve_sector(&["org.example.agenda:/callback"]);
    let grouped = json!({
        "application_type": "native",
        "redirect_uris": ["org.example.agenda:/callback"],
        "token_endpoint_auth_method": "none",
        "sector_identifier_uri": docs.url("/sector.json"),
    });
    let token = initial_token(&app).await;
    let (status, body) =
        status_and_json(post_register(&app, Some(&token), &grouped.to_string()).await).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("private scheme"),
        "{body}"
    );
}

/// A pairwise client that moves its redirect URIs to another host would move
/// its sector, and every subject it was given (children's included) would
/// change: the update is refused, with the way to keep the sector; a new
/// path on the same host is fine.
#[tokio::test]
async fn an_update_that_would_move_the_pairwise_sector_is_refused() {
    let app = spawn_app().await;
    let registered = register(
        &app,
        json!({ "redirect_uris": ["https://agenda.example.org/cb"], "client_name": "Agenda" }),
    )
    .await;
    assert_eq!(registered["subject_type"], "pairwise");
    let uri = registered["registration_client_uri"]
        .as_str()
        .unwrap()
        .to_owned();
    let access = registered["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let client_id = registered["client_id"].as_str().unwrap().to_owned();
    let put = |redirect: &str| {
        reqwest::Client::new()
            .put(&uri)
            .bearer_auth(&access)
            .header("content-type", "application/json")
            .body(json!({ "client_id": client_id, "redirect_uris": [redirect] }).to_string())
            .send()
    };
    let (status, body) =
        status_and_json(put("https://nouveau.example.net/cb").await.unwrap()).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_client_metadata");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("sector_identifier_uri on agenda.example.org"),
        "{body}"
    );
    let (status, body) = status_and_json(
        put("https://agenda.example.org/autre-retour")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // A service tried on loopback is a sector of its own, which no host
    // keeps: the refusal says so rather than name a host.
    let on_loopback = register(
        &app,
        json!({ "redirect_uris": ["http://127.0.0.1:18082/dyn"], "client_name": "Essai" }),
    )
    .await;
    let moved = reqwest::Client::new()
        .put(on_loopback["registration_client_uri"].as_str().unwrap())
        .bearer_auth(on_loopback["registration_access_token"].as_str().unwrap())
        .header("content-type", "application/json")
        .body(
            json!({
                "client_id": on_loopback["client_id"],
                "redirect_uris": ["https://other.example.org/cb"],
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(moved).await;
    assert_eq!(status, 400, "{body}");
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description
            .contains("from its own (its redirect URIs are on loopback or a private scheme)")
            && description.contains("register the service anew")
            && !description.contains("clef-"),
        "{body}"
    );
}

/// The registration access token a client information response carries: a
/// new one, in place of `used` (RFC 7592 §3).
fn renewed_token(information: &Value, used: &str) -> String {
    let renewed = information["registration_access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("a registration access token in {information}"));
    assert_ne!(renewed, used, "a new token");
    renewed.to_owned()
}

/// OIDC Registration §2: `default_max_age` stands for the `max_age` of the
/// client's requests that carry none; `require_auth_time` is always met.
#[tokio::test]
async fn default_max_age_asks_for_the_password_again_once_the_sign_in_is_older() {
    let app = spawn_app().await;
    app.family().await;
    for (what, age) in [("negative", json!(-1)), ("not a number", json!("60"))] {
        let token = initial_token(&app).await;
        let metadata = json!({ "redirect_uris": [REDIRECT_URI], "default_max_age": age });
        let (status, body) =
            status_and_json(post_register(&app, Some(&token), &metadata.to_string()).await).await;
        assert_eq!(status, 400, "{what}: {body}");
        assert_eq!(body["error"], "invalid_client_metadata", "{what}");
    }
    let registered = register(
        &app,
        json!({ "redirect_uris": [REDIRECT_URI], "default_max_age": 600, "require_auth_time": true }),
    )
    .await;
    assert_eq!(registered["default_max_age"], 600);
    assert_eq!(registered["require_auth_time"], true);
    let client_id = registered["client_id"].as_str().unwrap();
    let browser = browser();
    let url = authorize_url(&app, client_id, &[]);
    code_for(&app, &browser, &url).await;

    app.clock.advance(599);
    let within = browser.get(&url).send().await.unwrap();
    assert!(
        location_param(&within, "code").is_some(),
        "within the age: signed in already"
    );
    app.clock.advance(2);
    let older = browser.get(&url).send().await.unwrap();
    assert_eq!(older.status(), 200, "past it: the login form");
    assert!(older.text().await.unwrap().contains("Votre mot de passe"));
    // A max_age in the request still wins.
    let asked = browser
        .get(authorize_url(&app, client_id, &[("max_age", "3600")]))
        .send()
        .await
        .unwrap();
    assert!(location_param(&asked, "code").is_some());
}

/// A sign-in parked while the client still listed a redirect URI, finished
/// after the client dropped it: nothing goes to the dropped URI.
#[tokio::test]
async fn a_parked_sign_in_sends_nothing_to_a_redirect_uri_dropped_since() {
    let app = spawn_app().await;
    app.family().await;
    let kept = "http://127.0.0.1:9999/kept";
    let dropped = "http://127.0.0.1:9999/dropped";
    let registered = register(&app, json!({ "redirect_uris": [kept, dropped] })).await;
    let client_id = registered["client_id"].as_str().unwrap().to_owned();
    let browser = browser();
    let mut url = url::Url::parse(&app.url("/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client_id)
        .append_pair("redirect_uri", dropped)
        .append_pair("scope", "openid")
        .append_pair("state", "s")
        .append_pair("nonce", "n");
    let page = page_text(&browser, url.as_str()).await;
    assert!(input_value(&page, "request").is_some(), "{page}");

    let replaced = reqwest::Client::new()
        .put(registered["registration_client_uri"].as_str().unwrap())
        .bearer_auth(registered["registration_access_token"].as_str().unwrap())
        .json(&json!({ "client_id": client_id, "redirect_uris": [kept] }))
        .send()
        .await
        .unwrap();
    assert_eq!(replaced.status(), 200);

    let signed_in = submit_login(&app, &browser, &page, "claire.martin", PASSWORD).await;
    assert_eq!(signed_in.status(), 400);
    assert!(signed_in.headers().get("location").is_none());
    assert!(
        signed_in
            .text()
            .await
            .unwrap()
            .contains("redirect_uri is no longer registered")
    );
}

/// In production (an https issuer), a client that registered itself cannot
/// make Clef reach the operator's network: its `jwks_uri` on a private
/// address, written as one or behind a name, is never connected to.
#[tokio::test]
async fn a_self_registered_client_cannot_make_clef_reach_internal_addresses() {
    let app = spawn_app_with(|config| {
        config.issuer = "https://clef.example".parse().unwrap();
    })
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let seen = connections.clone();
    tokio::spawn(async move {
        while let Ok((_socket, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
        }
    });
    let key = ClientKey::eddsa("k1");
    for jwks_uri in [
        format!("https://127.0.0.1:{port}/jwks.json"),
        format!("https://localhost:{port}/jwks.json"),
    ] {
        let registered = register(
            &app,
            json!({
                "redirect_uris": [REDIRECT_URI],
                "token_endpoint_auth_method": "private_key_jwt",
                "token_endpoint_auth_signing_alg": "EdDSA",
                "jwks_uri": jwks_uri,
            }),
        )
        .await;
        let id = registered["client_id"].as_str().unwrap();
        let mut claims = assertion_claims(&app, id);
        claims["aud"] = json!("https://clef.example");
        assert_invalid_client(
            exchange_with_assertion(&app, "bogus", &key.sign(&claims)).await,
            &jwks_uri,
        )
        .await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(connections.load(Ordering::SeqCst), 0, "never connected to");
}

/// An academy service that signs its requests with its own keys registers
/// through `/register` (keys and algorithms are registration metadata), then
/// the operator makes it first-party (`clef client update --first-party
/// true`): no consent page from then on, its keys still authenticate it, and
/// its people keep the pairwise subjects it already saw.
#[tokio::test]
async fn a_registered_key_signing_service_made_first_party_keeps_its_keys_and_subjects() {
    let app = spawn_app().await;
    app.family().await;
    let key = ClientKey::es256("k1");
    let registered = register(
        &app,
        json!({
            "redirect_uris": [REDIRECT_URI],
            "token_endpoint_auth_method": "private_key_jwt",
            "id_token_signed_response_alg": "ES256",
            "jwks": jwks(&[&key]),
        }),
    )
    .await;
    let id = registered["client_id"].as_str().unwrap().to_owned();
    let sign_in = |browser: reqwest::Client| {
        let (app, id, key) = (&app, id.clone(), &key);
        async move {
            let code = code_for(app, &browser, &authorize_url(app, &id, &[])).await;
            let tokens =
                exchange_with_assertion(app, &code, &key.sign(&assertion_claims(app, &id))).await;
            let (status, tokens) = status_and_json(tokens).await;
            assert_eq!(status, 200, "{tokens}");
            jwt_claims(tokens["id_token"].as_str().unwrap())
        }
    };
    let before = sign_in(browser()).await;

    clef::oidc::clients::update(
        &app.app.db,
        &id,
        clef::oidc::clients::ClientChanges {
            is_first_party: Some(true),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    app.app.clients.forget(&id);
    // Her consent forgotten (else it alone would skip the page), a new
    // browser: no consent page on the way, and none recorded.
    sqlx::query("DELETE FROM consents WHERE client_id = $1")
        .bind(&id)
        .execute(&app.app.db)
        .await
        .unwrap();
    let browser = browser();
    let first = browser
        .get(authorize_url(&app, &id, &[]))
        .send()
        .await
        .unwrap();
    let page = first.text().await.unwrap();
    let back = submit_login(&app, &browser, &page, "claire.martin", PASSWORD).await;
    assert!(
        location(&back).starts_with(REDIRECT_URI),
        "no consent for a first-party service: {}",
        location(&back)
    );
    let after = sign_in(browser).await;
    assert_eq!(app.count("consents").await, 0, "a first party asks none");
    assert_eq!(after["sub"], before["sub"], "its subjects stay");
    assert_ne!(
        after["sub"],
        app.account_named("claire.martin").await.id.as_str()
    );
}
