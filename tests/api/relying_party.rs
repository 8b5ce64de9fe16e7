//! Whole flows through a real relying-party library: the `openidconnect` crate
//! discovers Clef, sends the browser to it, exchanges the code and verifies the
//! ID token against the published JWKS.

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreRevocableToken,
};
use openidconnect::{
    AccessTokenHash, AdditionalClaims, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IdToken, IntrospectionUrl, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, RevocationUrl, Scope,
    TokenIntrospectionResponse, TokenResponse, UserInfoClaims,
};
use serde::{Deserialize, Serialize};

use crate::helpers::{
    REDIRECT_URI, TestApp, authorize_and_login, browser, location_param, spawn_app,
};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SchoolClaims {
    children: Option<Vec<ChildClaim>>,
    school: Option<Establishment>,
}
impl AdditionalClaims for SchoolClaims {}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ChildClaim {
    sub: String,
    given_name: String,
    family_name: String,
    birthdate: String,
    establishment: Establishment,
    class: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Establishment {
    uai: String,
    name: String,
    class: Option<String>,
}

type SchoolIdToken = IdToken<
    SchoolClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

fn http_client() -> openidconnect::reqwest::Client {
    openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

type RelyingParty = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// A relying party configured from Clef's discovery document, as an ENT would be.
async fn relying_party(
    app: &TestApp,
    http: &openidconnect::reqwest::Client,
    client_id: String,
    secret: Option<String>,
    redirect_uri: &str,
) -> RelyingParty {
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.address.clone()).unwrap(), http)
            .await
            .unwrap();
    CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(client_id),
        secret.map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(redirect_uri.into()).unwrap())
}

#[tokio::test]
async fn guardian_signs_in_through_an_openidconnect_relying_party_and_sees_both_children() {
    let app = spawn_app().await;
    let family = app.family().await;
    let (client_id, secret) = app.client(false).await;
    let http = http_client();

    let client = relying_party(&app, &http, client_id, secret, REDIRECT_URI).await;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("children".into()))
        .set_pkce_challenge(challenge)
        .url();

    let back = authorize_and_login(&app, &browser(), url.as_str(), "claire.martin").await;
    assert_eq!(
        location_param(&back, "state").as_deref(),
        Some(csrf.secret().as_str())
    );
    assert_eq!(
        location_param(&back, "iss").as_deref(),
        Some(app.address.as_str()),
        "RFC 9207 iss"
    );
    let code = location_param(&back, "code").expect("a code");

    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let id_token = tokens.id_token().expect("an ID token");
    let verifier = client.id_token_verifier();
    let claims = id_token
        .claims(&verifier, &nonce)
        .expect("the ID token verifies against the JWKS");
    assert_eq!(claims.subject().as_str(), family.guardian.id);
    assert!(claims.auth_time().is_some());
    let at_hash = claims.access_token_hash().expect("at_hash");
    let expected = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(*at_hash, expected);
    assert_eq!(
        claims.email().map(|e| e.as_str()),
        Some("claire.martin@example.org")
    );
    assert_eq!(
        claims.preferred_username().map(|u| u.as_str()),
        Some("claire.martin")
    );

    // The same token, read with the school claims: both children, their schools and classes.
    let school_token: SchoolIdToken = id_token.to_string().parse().unwrap();
    let claims = school_token.claims(&verifier, &nonce).unwrap();
    let children = claims
        .additional_claims()
        .children
        .clone()
        .expect("children claim");
    assert_eq!(children.len(), 2);
    let lea = children
        .iter()
        .find(|c| c.given_name == "Lea")
        .expect("Léa");
    assert_eq!(lea.sub, family.children[0].id);
    assert_eq!(
        (
            lea.establishment.uai.as_str(),
            lea.establishment.name.as_str()
        ),
        ("0590001A", "Collège Jean Moulin")
    );
    assert_eq!(lea.class, "5 B");
    assert_eq!(lea.birthdate, "2013-05-14");
    let hugo = children
        .iter()
        .find(|c| c.given_name == "Hugo")
        .expect("Hugo");
    assert_eq!(
        (hugo.establishment.uai.as_str(), hugo.class.as_str()),
        ("0590002B", "2nde 3")
    );

    // The raw token carries sid and amr too.
    let payload = id_token.to_string().split('.').nth(1).unwrap().to_owned();
    let payload: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
            .unwrap(),
    )
    .unwrap();
    assert!(payload["sid"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(payload["amr"], serde_json::json!(["pwd"]));

    let userinfo: UserInfoClaims<SchoolClaims, CoreGenderClaim> = client
        .user_info(
            tokens.access_token().clone(),
            Some(claims.subject().clone()),
        )
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(
        userinfo.additional_claims().children.as_ref().map(Vec::len),
        Some(2)
    );
    assert_eq!(
        userinfo.email().map(|e| e.as_str()),
        Some("claire.martin@example.org")
    );
}

#[tokio::test]
async fn student_receives_the_school_claim_through_a_public_client() {
    let app = spawn_app().await;
    let family = app.family().await;
    let (client_id, _) = app.client(true).await;
    let http = http_client();
    let client = relying_party(&app, &http, client_id, None, REDIRECT_URI).await;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("school".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    let back = authorize_and_login(&app, &browser(), url.as_str(), "lea.martin").await;
    let code = location_param(&back, "code").unwrap();
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(
        tokens.scopes().map(|s| s.len()),
        Some(3),
        "openid profile school granted"
    );
    let token: SchoolIdToken = tokens.id_token().unwrap().to_string().parse().unwrap();
    let claims = token.claims(&client.id_token_verifier(), &nonce).unwrap();
    assert_eq!(claims.subject().as_str(), family.children[0].id);
    assert_eq!(claims.birthdate().map(|b| b.as_str()), Some("2013-05-14"));
    let school = claims
        .additional_claims()
        .school
        .clone()
        .expect("school claim");
    assert_eq!(
        (school.uai.as_str(), school.class.as_deref()),
        ("0590001A", Some("5 B"))
    );
    assert!(
        claims.additional_claims().children.is_none(),
        "a student has no children claim"
    );
}

#[tokio::test]
async fn the_demo_parent_logs_in_through_the_demo_client() {
    use secrecy::ExposeSecret;
    let app = spawn_app().await;
    clef::demo::load(
        &app.app,
        clef::demo::Where {
            allow_public: false,
        },
    )
    .await
    .unwrap();
    // Loading twice reuses the accounts and rotates the client's secret.
    let demo = clef::demo::load(
        &app.app,
        clef::demo::Where {
            allow_public: false,
        },
    )
    .await
    .unwrap();
    assert_eq!(app.count("clients").await, 1);
    assert_eq!(app.count("guardianships").await, 2);
    let http = http_client();
    let secret = Some(demo.client_secret.expose_secret().to_owned());
    let client = relying_party(
        &app,
        &http,
        demo.client_id.clone(),
        secret,
        clef::demo::REDIRECT_URI,
    )
    .await;
    let (url, _, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("children".into()))
        .url();
    let browser = browser();
    let page = browser
        .get(url.as_str())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let back =
        crate::helpers::submit_login(&app, &browser, &page, "parent.martin", clef::demo::PASSWORD)
            .await;
    let code = location_param(&back, "code").expect("a code");
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    let token: SchoolIdToken = tokens.id_token().unwrap().to_string().parse().unwrap();
    let children = token
        .claims(&client.id_token_verifier(), &nonce)
        .unwrap()
        .additional_claims()
        .children
        .clone()
        .unwrap();
    let mut names: Vec<&str> = children.iter().map(|c| c.given_name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["Hugo", "Léa"]);
}

/// Signs Claire in through `rp` with PKCE and exchanges the code.
async fn code_flow(
    app: &TestApp,
    http: &openidconnect::reqwest::Client,
    rp: &CoreClient<
        EndpointSet,
        EndpointNotSet,
        EndpointSet,
        EndpointSet,
        EndpointMaybeSet,
        EndpointMaybeSet,
    >,
) -> (openidconnect::core::CoreTokenResponse, Nonce) {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _state, nonce) = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("children".into()))
        .set_pkce_challenge(challenge)
        .url();
    let back = authorize_and_login(app, &browser(), url.as_str(), "claire.martin").await;
    let code = location_param(&back, "code").unwrap();
    let tokens = rp
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(http)
        .await
        .unwrap();
    (tokens, nonce)
}

#[tokio::test]
async fn an_openidconnect_relying_party_refreshes_introspects_and_revokes() {
    let app = spawn_app().await;
    app.family().await;
    let (client_id, secret) = app.client(false).await;
    let http = http_client();
    let rp = relying_party(&app, &http, client_id, secret.clone(), REDIRECT_URI)
        .await
        .set_introspection_url(IntrospectionUrl::new(app.url("/introspect")).unwrap())
        .set_revocation_url(RevocationUrl::new(app.url("/revoke")).unwrap());
    let (tokens, nonce) = code_flow(&app, &http, &rp).await;
    let verifier = rp.id_token_verifier();
    let original = tokens
        .id_token()
        .unwrap()
        .claims(&verifier, &nonce)
        .unwrap()
        .clone();
    let first_refresh = tokens.refresh_token().expect("a refresh token").clone();

    // Refresh: a new token pair and an ID token for the same sign-in, no nonce.
    let refreshed = rp
        .exchange_refresh_token(&first_refresh)
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    let claims = refreshed
        .id_token()
        .expect("a refreshed ID token")
        .claims(&verifier, |nonce: Option<&Nonce>| match nonce {
            None => Ok(()),
            Some(_) => Err("a refreshed ID token carries no nonce".to_owned()),
        })
        .unwrap();
    assert_eq!(claims.subject(), original.subject());
    assert_eq!(claims.auth_time(), original.auth_time());
    let newest = refreshed.refresh_token().expect("rotated").clone();
    assert_ne!(newest.secret(), first_refresh.secret());

    // Introspection describes the client's own live token.
    let described = rp
        .introspect(refreshed.access_token())
        .request_async(&http)
        .await
        .unwrap();
    assert!(described.active());
    assert_eq!(described.sub(), Some(original.subject().as_str()));

    // Reused past the grace window, the spent token revokes the family.
    app.clock.advance(6);
    let reused = rp
        .exchange_refresh_token(&first_refresh)
        .unwrap()
        .request_async(&http)
        .await;
    assert!(reused.is_err(), "the spent refresh token is refused");
    let after = rp
        .exchange_refresh_token(&newest)
        .unwrap()
        .request_async(&http)
        .await;
    assert!(after.is_err(), "its family went with it");
    let inactive = rp
        .introspect(refreshed.access_token())
        .request_async(&http)
        .await
        .unwrap();
    assert!(!inactive.active(), "and the access tokens issued from it");

    // Revocation of a fresh access token. The crate sends revocations only over
    // TLS (RFC 7009 §2), which a loopback test has not: the same form by hand.
    let (fresh, _) = code_flow(&app, &http, &rp).await;
    let token = CoreRevocableToken::AccessToken(fresh.access_token().clone());
    assert!(matches!(
        rp.revoke_token(token),
        Err(openidconnect::ConfigurationError::InsecureUrl("revocation"))
    ));
    let revocation = http
        .post(app.url("/revoke"))
        .basic_auth(rp.client_id().as_str(), secret.as_deref())
        .form(&[("token", fresh.access_token().secret().as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revocation.status(), 200);
    let revoked = rp
        .introspect(fresh.access_token())
        .request_async(&http)
        .await
        .unwrap();
    assert!(!revoked.active());
}

#[tokio::test]
async fn an_openidconnect_service_client_gets_a_client_credentials_token() {
    let app = spawn_app().await;
    let (client_id, secret) = app
        .client_with(|new| new.service_scopes = Some(vec!["annuaire:lecture".into()]))
        .await;
    let http = http_client();
    let rp = relying_party(&app, &http, client_id, secret, REDIRECT_URI).await;
    let tokens = rp
        .exchange_client_credentials()
        .unwrap()
        .add_scope(Scope::new("annuaire:lecture".into()))
        .request_async(&http)
        .await
        .unwrap();
    assert!(tokens.id_token().is_none() && tokens.refresh_token().is_none());
    assert_eq!(
        tokens
            .scopes()
            .map(|s| s.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
        Some(vec!["annuaire:lecture".to_owned()])
    );
}
