//! A grouping as a relying party sees it, through the `openidconnect` crate:
//! the `children` claim of new sign-ins and of refreshes follows the grouping
//! and its detachment, with the same `sub` for each child throughout; the
//! closed account no longer signs in and its refresh token is refused.

use clef::accounts::grouping;
use clef::accounts::{Account, AccountKind};
use clef::domain::Rank;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreErrorResponseType, CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm, CoreProviderMetadata,
    CoreTokenResponse,
};
use openidconnect::{
    AdditionalClaims, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IdToken, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    RedirectUrl, RefreshToken, RequestTokenError, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};

use crate::helpers::{
    PASSWORD, REDIRECT_URI, TestApp, authorize_and_login, browser, location_param, page_text,
    spawn_app, submit_login,
};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ChildrenClaim {
    children: Option<Vec<ChildClaim>>,
}
impl AdditionalClaims for ChildrenClaim {}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ChildClaim {
    sub: String,
    given_name: String,
    family_name: String,
    birthdate: Option<String>,
    rank: i64,
    class: Option<String>,
}

type ChildrenIdToken = IdToken<
    ChildrenClaim,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

type RelyingParty = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

fn http_client() -> openidconnect::reqwest::Client {
    openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A relying party configured from Clef's discovery document.
async fn relying_party(
    app: &TestApp,
    http: &openidconnect::reqwest::Client,
    client: (String, Option<String>),
) -> RelyingParty {
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.address.clone()).unwrap(), http)
            .await
            .unwrap();
    CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(client.0),
        client.1.map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT_URI.into()).unwrap())
}

/// `identifier` signs in through `rp` (code flow, PKCE, nonce) with the scopes
/// `openid children offline_access`; the tokens and the children of the
/// verified ID token.
async fn sign_in(
    app: &TestApp,
    http: &openidconnect::reqwest::Client,
    rp: &RelyingParty,
    identifier: &str,
) -> (CoreTokenResponse, Vec<ChildClaim>) {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("children".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();
    let back = authorize_and_login(app, &browser(), url.as_str(), identifier).await;
    assert_eq!(
        location_param(&back, "state").as_deref(),
        Some(csrf.secret().as_str())
    );
    let code = location_param(&back, "code").expect("a code");
    let tokens = rp
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(http)
        .await
        .unwrap();
    let token: ChildrenIdToken = tokens
        .id_token()
        .expect("an ID token")
        .to_string()
        .parse()
        .unwrap();
    let claims = token
        .claims(&rp.id_token_verifier(), &nonce)
        .expect("the ID token verifies");
    let children = claims
        .additional_claims()
        .children
        .clone()
        .expect("the children claim");
    (tokens, children)
}

/// Refreshes with `token`: the new tokens and the children of the new ID
/// token (verified; a refreshed ID token carries no nonce).
async fn refresh(
    http: &openidconnect::reqwest::Client,
    rp: &RelyingParty,
    token: &RefreshToken,
) -> (CoreTokenResponse, Vec<ChildClaim>) {
    let tokens = rp
        .exchange_refresh_token(token)
        .unwrap()
        .request_async(http)
        .await
        .expect("the refresh is granted");
    let token: ChildrenIdToken = tokens
        .id_token()
        .expect("a refreshed ID token")
        .to_string()
        .parse()
        .unwrap();
    let claims = token
        .claims(
            &rp.id_token_verifier(),
            |nonce: Option<&Nonce>| match nonce {
                None => Ok(()),
                Some(_) => Err("a refreshed ID token carries no nonce".to_owned()),
            },
        )
        .expect("the refreshed ID token verifies");
    let children = claims
        .additional_claims()
        .children
        .clone()
        .expect("the children claim");
    (tokens, children)
}

/// given name → sub, for comparing claims across tokens.
fn subs(children: &[ChildClaim]) -> Vec<(String, String)> {
    let mut subs: Vec<(String, String)> = children
        .iter()
        .map(|c| (c.given_name.clone(), c.sub.clone()))
        .collect();
    subs.sort();
    subs
}

fn named<'a>(children: &'a [ChildClaim], given_name: &str) -> &'a ChildClaim {
    children
        .iter()
        .find(|c| c.given_name == given_name)
        .unwrap_or_else(|| panic!("{given_name} in {children:?}"))
}

async fn link(app: &TestApp, guardian: &Account, student: &Account, rank: u8) {
    clef::accounts::store::link_guardian(
        &app.app.db,
        &guardian.id,
        &student.id,
        Rank::new(rank).unwrap(),
        app.app.now(),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_relying_party_sees_the_grouped_children_and_loses_the_closed_account() {
    let app = spawn_app().await;
    let family = app.family().await;
    let (lea, hugo) = (&family.children[0], &family.children[1]);
    let college = app.establishment("0590001A", "Collège Jean Moulin").await;
    // Marc: another guardian account, responsable légal 2 of Léa and of a third child.
    let marc = app
        .account("marc.martin", AccountKind::Guardian, None, None)
        .await;
    let zoe = app
        .account(
            "zoe.martin",
            AccountKind::Student,
            Some((&college, "6 C")),
            Some("2014-01-02"),
        )
        .await;
    link(&app, &marc, &zoe, 2).await;
    link(&app, &marc, lea, 2).await;
    let http = http_client();
    let rp = relying_party(&app, &http, app.client(false).await).await;

    // Claire's sign-in: Léa and Hugo.
    let (first, children) = sign_in(&app, &http, &rp, "claire.martin").await;
    assert_eq!(
        subs(&children),
        [
            ("Hugo".to_owned(), hugo.id.clone()),
            ("Lea".to_owned(), lea.id.clone())
        ]
    );
    let first_refresh = first.refresh_token().expect("a refresh token").clone();
    let before = subs(&children);
    // Marc signs in to the same application before the grouping.
    let (marc_tokens, marc_children) = sign_in(&app, &http, &rp, "marc.martin").await;
    assert_eq!(marc_children.len(), 2);
    let marc_refresh = marc_tokens
        .refresh_token()
        .expect("a refresh token")
        .clone();

    let grouped = grouping::group(&app.app, &family.guardian.id, &marc.id)
        .await
        .unwrap()
        .expect("Marc's account is grouped into Claire's");
    assert_eq!(grouped.moved, 1);

    // A new sign-in: three children, Léa and Hugo with the same sub as before.
    let (_, children) = sign_in(&app, &http, &rp, "claire.martin").await;
    assert_eq!(children.len(), 3, "{children:?}");
    let now = subs(&children);
    for known in &before {
        assert!(now.contains(known), "{known:?} unchanged in {now:?}");
    }
    let zoe_claim = named(&children, "Zoe");
    assert_eq!(zoe_claim.sub, zoe.id);
    assert_eq!(zoe_claim.rank, 2, "Zoé comes with Marc's rank");
    assert_eq!(zoe_claim.birthdate.as_deref(), Some("2014-01-02"));
    assert_eq!(named(&children, "Lea").rank, 1, "Léa keeps Claire's rank");

    // The refresh token of the sign-in before the grouping: three children too.
    let (refreshed, children) = refresh(&http, &rp, &first_refresh).await;
    assert_eq!(subs(&children), now);
    let newest = refreshed.refresh_token().expect("rotated").clone();

    // The school detaches Hugo: the next refresh lists two.
    let detached = grouping::detach(&app.app, &family.guardian.id, &hugo.id, None)
        .await
        .unwrap();
    assert_ne!(detached.guardian.id, family.guardian.id);
    let (_, children) = refresh(&http, &rp, &newest).await;
    assert_eq!(
        subs(&children),
        [
            ("Lea".to_owned(), lea.id.clone()),
            ("Zoe".to_owned(), zoe.id.clone())
        ]
    );

    // Marc's account is closed: no sign-in, and its refresh token is refused.
    let login_browser = browser();
    let page = page_text(&login_browser, &app.url("/login")).await;
    let login = submit_login(&app, &login_browser, &page, "marc.martin", PASSWORD).await;
    assert_eq!(login.status(), 403, "grouped: no sign-in");
    let refused = rp
        .exchange_refresh_token(&marc_refresh)
        .unwrap()
        .request_async(&http)
        .await;
    match refused {
        Err(RequestTokenError::ServerResponse(response)) => {
            assert_eq!(*response.error(), CoreErrorResponseType::InvalidGrant);
        }
        other => panic!("the closed account's refresh token must be refused: {other:?}"),
    }
    // Nor does the access token it had still describe it.
    let userinfo = http
        .get(app.url("/userinfo"))
        .bearer_auth(marc_tokens.access_token().secret())
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), 401);
}
