//! Pairwise subject identifiers (OIDC Core §8.1; issue 10): a third-party
//! service sees a `sub` computed for its sector, for the parent and for each
//! child, so two unrelated services cannot link a family; services of one
//! sector see the same; the academy's own ENT sees public subjects.

use clef::domain::RedirectUri;
use serde_json::Value;

use crate::helpers::*;

/// Signs Claire in through `client` (consenting if asked) in a fresh browser;
/// returns the ID token's claims.
async fn id_token_claims(
    app: &TestApp,
    client: &(String, Option<String>),
    redirect_uri: &str,
) -> Value {
    id_token_claims_in(app, &browser(), client, redirect_uri).await
}

/// Signs Claire in through `client` in `browser` (silently if it has a
/// session; consenting if asked); returns the ID token's claims.
pub async fn id_token_claims_in(
    app: &TestApp,
    browser: &reqwest::Client,
    client: &(String, Option<String>),
    redirect_uri: &str,
) -> Value {
    let url = authorize_url(
        app,
        &client.0,
        &[("scope", "openid children"), ("redirect_uri", redirect_uri)],
    );
    let code = code_for(app, browser, &url).await;
    let mut form = vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", code),
        ("redirect_uri", redirect_uri.to_owned()),
        ("client_id", client.0.clone()),
    ];
    form.push(("client_secret", client.1.clone().unwrap()));
    let tokens: Value = reqwest::Client::new()
        .post(app.url("/token"))
        .form(&form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwt_claims(tokens["id_token"].as_str().expect("an ID token"))
}

/// The parent's `sub` and the children's, by given name.
fn subjects(claims: &Value) -> (String, Vec<(String, String)>) {
    let mut children: Vec<(String, String)> = claims["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["given_name"].as_str().unwrap().to_owned(),
                c["sub"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    children.sort();
    (claims["sub"].as_str().unwrap().to_owned(), children)
}

async fn third_party_at(app: &TestApp, name: &str, redirect_uri: &str) -> (String, Option<String>) {
    let name = name.to_owned();
    let uri = RedirectUri::parse(redirect_uri).unwrap();
    app.client_with(move |new| {
        new.name = name;
        new.is_first_party = false;
        new.redirect_uris = vec![uri];
    })
    .await
}

#[tokio::test]
async fn unrelated_services_see_unlinkable_subjects_and_one_sector_sees_the_same() {
    let app = spawn_app().await;
    let family = app.family().await;
    let a = "https://cahier.example/callback";
    let a_too = "https://cahier.example:8443/other";
    let b = "https://service-b.example/callback";
    let service_a = third_party_at(&app, "Cahier de textes A", a).await;
    let service_a_too = third_party_at(&app, "Autre service A", a_too).await;
    let service_b = third_party_at(&app, "Service B", b).await;
    let ent = app.client(false).await;

    let (parent_a, children_a) = subjects(&id_token_claims(&app, &service_a, a).await);
    let (parent_a_too, children_a_too) =
        subjects(&id_token_claims(&app, &service_a_too, a_too).await);
    let (parent_b, children_b) = subjects(&id_token_claims(&app, &service_b, b).await);
    let (parent_ent, children_ent) = subjects(&id_token_claims(&app, &ent, REDIRECT_URI).await);

    // The academy's ENT sees the accounts' ids.
    assert_eq!(parent_ent, family.guardian.id);
    assert!(
        children_ent
            .iter()
            .any(|(_, sub)| *sub == family.children[0].id)
    );
    // A third party never sees them…
    for sub in [&parent_a, &parent_b] {
        assert_ne!(*sub, family.guardian.id);
        assert_eq!(sub.len(), 43, "a base64url HMAC-SHA-256");
    }
    // …two sectors cannot link the parent or a child…
    assert_ne!(parent_a, parent_b);
    for ((name, sub_a), (_, sub_b)) in children_a.iter().zip(&children_b) {
        assert_ne!(sub_a, sub_b, "{name}");
        assert_ne!(*sub_a, family.children[0].id);
        assert_ne!(*sub_a, family.children[1].id);
    }
    assert_ne!(children_a[0].1, children_a[1].1);
    // …and one sector sees the same subjects, at every sign-in.
    assert_eq!(parent_a, parent_a_too);
    assert_eq!(children_a, children_a_too);
    let (again, children_again) = subjects(&id_token_claims(&app, &service_a, a).await);
    assert_eq!((again, children_again), (parent_a.clone(), children_a));
    // Loopback is every native app's (RFC 8252 §7.3), not a sector: two apps
    // there, whoever registered them, cannot link anyone either.
    let native = "http://127.0.0.1:9999/callback";
    let other_native = "http://127.0.0.1:7777/other";
    let app_1 = third_party_at(&app, "Application 1", native).await;
    let app_2 = third_party_at(&app, "Application 2", other_native).await;
    let (parent_1, _) = subjects(&id_token_claims(&app, &app_1, native).await);
    let (parent_2, _) = subjects(&id_token_claims(&app, &app_2, other_native).await);
    assert_ne!(parent_1, parent_2);
    assert_ne!(parent_1, parent_a);
    // All of 127.0.0.0/8 is loopback, not only 127.0.0.1.
    let (native_3, native_4) = ("http://127.0.0.2:5555/cb", "http://127.0.0.2:6666/cb");
    let app_3 = third_party_at(&app, "Application 3", native_3).await;
    let app_4 = third_party_at(&app, "Application 4", native_4).await;
    let (parent_3, _) = subjects(&id_token_claims(&app, &app_3, native_3).await);
    let (parent_4, _) = subjects(&id_token_claims(&app, &app_4, native_4).await);
    assert_ne!(parent_3, parent_4);
}

#[tokio::test]
async fn discovery_advertises_pairwise_subjects() {
    let app = spawn_app().await;
    let discovery: Value = reqwest::get(app.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        discovery["subject_types_supported"],
        serde_json::json!(["public", "pairwise"])
    );
}
