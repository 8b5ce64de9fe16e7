//! Two `clef serve` instances on one database and one Redis behave as one
//! server (SPEC §5; issue 12, item 1): a login on one and the code exchange
//! on the other, a session seen by both, a logout on one seen by the other,
//! failed-attempt limits shared.

use secrecy::SecretString;
use serde_json::Value;

use crate::helpers::*;

/// Two instances: the first as the helpers make it (on PostgreSQL, in the
/// pass of the tests that has it), the second on the same database, the same
/// Redis under the same prefix, and the same keys. Several instances share
/// their state through Redis only: without `CLEF_TEST_REDIS_URL` (the
/// README's command on a machine with Rust alone) there is nothing to run.
async fn two_instances() -> Option<(TestApp, TestApp)> {
    let redis = std::env::var("CLEF_TEST_REDIS_URL").ok()?;
    let prefix = format!("clef-two-{}:", uuid::Uuid::new_v4().simple());
    let (redis_one, prefix_one) = (redis.clone(), prefix.clone());
    let first = spawn_app_with(move |config| {
        config.redis_url = Some(SecretString::from(redis_one));
        config.redis_prefix = prefix_one;
    })
    .await;
    let database = clef::storage::database_url(&first.app.config).unwrap();
    let keys = first.app.config.keys_dir.clone();
    let second = spawn_app_with(move |config| {
        config.database_url = Some(SecretString::from(database));
        config.redis_url = Some(SecretString::from(redis));
        config.redis_prefix = prefix;
        config.keys_dir = keys;
    })
    .await;
    Some((first, second))
}

#[tokio::test]
async fn a_login_on_one_instance_is_exchanged_seen_and_ended_on_the_other() {
    let Some((one, two)) = two_instances().await else {
        return;
    };
    one.family().await;
    let client = one.client(false).await;
    let browser = browser();
    let back = authorize_and_login(
        &one,
        &browser,
        &authorize_url(&one, &client.0, &[("scope", "openid profile")]),
        "claire.martin",
    )
    .await;
    let code = location_param(&back, "code").expect("a code from the first");
    // The second instance redeems the first one's code…
    let tokens: Value = exchange(&two, &client, &code, None)
        .await
        .json()
        .await
        .unwrap();
    let access = tokens["access_token"]
        .as_str()
        .expect("tokens from the second");
    // …and knows the access token and the session.
    let userinfo = reqwest::Client::new()
        .get(two.url("/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), 200);
    assert_eq!(account_page(&two, &browser).await.status(), 200);
    // Signing out on the second ends the session on the first.
    let page = page_text(&browser, &two.url("/compte")).await;
    let logout = browser
        .post(two.url("/logout"))
        .form(&[
            ("csrf", input_value(&page, "csrf").unwrap().as_str()),
            ("confirm", "1"),
        ])
        .send()
        .await
        .unwrap();
    assert!(logout.status().is_success() || logout.status().is_redirection());
    assert_eq!(account_page(&one, &browser).await.status(), 303);
    // Both publish the same keys.
    let jwks = |app: &TestApp| reqwest::get(app.url("/jwks.json"));
    let (a, b): (Value, Value) = (
        jwks(&one).await.unwrap().json().await.unwrap(),
        jwks(&two).await.unwrap().json().await.unwrap(),
    );
    assert_eq!(a, b);
}

#[tokio::test]
async fn failed_attempts_count_on_every_instance() {
    let Some((one, two)) = two_instances().await else {
        return;
    };
    one.family().await;
    let wrong = |app: &TestApp| {
        let app_url = app.url("/login");
        async move {
            let browser = browser();
            let page = page_text(&browser, &app_url).await;
            browser
                .post(app_url.as_str())
                .form(&[
                    ("csrf", input_value(&page, "csrf").unwrap().as_str()),
                    ("identifier", "claire.martin"),
                    ("password", "Mauvais2026"),
                ])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // Five free attempts, spread over both instances…
    for n in 0..5 {
        let app = if n % 2 == 0 { &one } else { &two };
        assert_eq!(wrong(app).await, 401, "attempt {n}");
    }
    // …then both hold the account back.
    assert_eq!(wrong(&two).await, 429);
    assert_eq!(wrong(&one).await, 429);
}
