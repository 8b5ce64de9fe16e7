//! The `claims` request parameter (OIDC Core §5.5), the `phone` scope and the
//! hints `/authorize` takes (issue 10).

use serde_json::Value;

use crate::helpers::*;

async fn set_phone(app: &TestApp, identifier: &str, phone: &str) {
    let account = app.account_named(identifier).await;
    let phone = clef::provisioning::csv_file::Phone::parse(phone).unwrap();
    clef::accounts::store::set_phone(&app.app.db, &account.id, Some(&phone), app.app.now())
        .await
        .unwrap();
}

#[tokio::test]
async fn claims_asked_one_by_one_come_with_their_scope_and_the_phone_in_e164() {
    let app = spawn_app().await;
    app.family().await;
    set_phone(&app, "claire.martin", "06 12 34 56 78").await;
    let client = app.client(false).await;
    let claims = r#"{"id_token":{"email":null,"phone_number":{"essential":true}},"userinfo":{"given_name":null}}"#;
    let url = authorize_url(&app, &client.0, &[("scope", "openid"), ("claims", claims)]);
    let back = authorize_and_login(&app, &browser(), &url, "claire.martin").await;
    let code = location_param(&back, "code").expect("a code");
    let tokens: Value = exchanged(&app, &client, &code).await;
    assert_eq!(tokens["scope"], "openid profile email phone");
    let id_token = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id_token["email"], "claire.martin@example.org");
    assert_eq!(id_token["phone_number"], "+33612345678");
    assert_eq!(id_token["phone_number_verified"], false);
    let userinfo: Value = reqwest::Client::new()
        .get(app.url("/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(userinfo["given_name"], "Claire");
}

#[tokio::test]
async fn unmet_essential_acr_bad_claims_and_bad_display_are_refused() {
    let app = spawn_app().await;
    let client = app.client(false).await;
    for (extra, expected) in [
        (
            (
                "claims",
                r#"{"id_token":{"acr":{"essential":true,"values":["urn:mace:incommon:iap:silver"]}}}"#,
            ),
            "access_denied",
        ),
        (("claims", "not json"), "invalid_request"),
        (
            ("claims", r#"{"id_token":{"email":true}}"#),
            "invalid_request",
        ),
        (("display", "hologram"), "invalid_request"),
    ] {
        let response = browser()
            .get(authorize_url(&app, &client.0, &[extra]))
            .send()
            .await
            .unwrap();
        assert_eq!(
            location_param(&response, "error").as_deref(),
            Some(expected),
            "{extra:?}"
        );
    }
    // Hints Clef takes without changing anything.
    for extra in [
        ("display", "touch"),
        ("claims_locales", "fr"),
        ("acr_values", "0"),
    ] {
        let response = browser()
            .get(authorize_url(&app, &client.0, &[extra]))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{extra:?}: the login page");
    }
}

/// OIDC Core §5.5.1: a `sub` asked for with a value names who must be signed
/// in; the answer is never about someone else (here, silently: login_required).
#[tokio::test]
async fn a_sub_claim_with_a_value_is_answered_only_for_that_person() {
    let app = spawn_app().await;
    app.family().await;
    let client = app.client(false).await;
    let browser = browser();
    let first = authorize_url(&app, &client.0, &[]);
    let back = authorize_and_login(&app, &browser, &first, "claire.martin").await;
    let code = location_param(&back, "code").expect("a code");
    let tokens: Value = exchanged(&app, &client, &code).await;
    let id_token = jwt_claims(tokens["id_token"].as_str().unwrap());
    let sub = id_token["sub"].as_str().unwrap();

    let silently = |claims: String| {
        let url = authorize_url(
            &app,
            &client.0,
            &[("prompt", "none"), ("claims", claims.as_str())],
        );
        let browser = browser.clone();
        async move { browser.get(url).send().await.unwrap() }
    };
    let someone_else =
        silently(r#"{"id_token":{"sub":{"value":"quelqu-un-d-autre"}}}"#.into()).await;
    assert_eq!(
        location_param(&someone_else, "error").as_deref(),
        Some("login_required")
    );
    assert!(location_param(&someone_else, "code").is_none());
    let herself = silently(format!(r#"{{"id_token":{{"sub":{{"value":"{sub}"}}}}}}"#)).await;
    assert!(
        location_param(&herself, "code").is_some(),
        "{:?}",
        location(&herself)
    );
    let two = silently(format!(
        r#"{{"id_token":{{"sub":{{"value":"{sub}"}}}},"userinfo":{{"sub":{{"value":"x"}}}}}}"#
    ))
    .await;
    assert_eq!(
        location_param(&two, "error").as_deref(),
        Some("invalid_request")
    );
}
