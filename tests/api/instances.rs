//! Two `clef serve` instances on one database and one Redis behave as one
//! server (SPEC §5; issue 12, item 1): a login on one and the code exchange
//! on the other, a session seen by both, a logout on one seen by the other,
//! failed-attempt limits shared, the hourly housekeeping run by both at once.

use clef::config::Config;
use secrecy::SecretString;
use serde_json::Value;

use crate::helpers::*;

/// Two instances: the first as the helpers make it (on PostgreSQL, in the
/// pass of the tests that has it), the second on the same database, the same
/// Redis under the same prefix, and the same keys. Several instances share
/// their state through Redis only: without `CLEF_TEST_REDIS_URL` (the
/// README's command on a machine with Rust alone) there is nothing to run.
pub(crate) async fn two_instances() -> Option<(TestApp, TestApp)> {
    two_instances_with(|_| {}).await
}

/// `two_instances` with the same configuration tweak on both.
async fn two_instances_with(tweak: fn(&mut Config)) -> Option<(TestApp, TestApp)> {
    let redis = std::env::var("CLEF_TEST_REDIS_URL").ok()?;
    let prefix = format!("clef-two-{}:", uuid::Uuid::new_v4().simple());
    let (redis_one, prefix_one) = (redis.clone(), prefix.clone());
    let first = spawn_app_with(move |config| {
        config.redis_url = Some(SecretString::from(redis_one));
        config.redis_prefix = prefix_one;
        tweak(config);
    })
    .await;
    let database = clef::storage::database_url(&first.app.config).unwrap();
    let keys = first.app.config.keys_dir.clone();
    let second = spawn_app_with(move |config| {
        config.database_url = Some(SecretString::from(database));
        config.redis_url = Some(SecretString::from(redis));
        config.redis_prefix = prefix;
        config.keys_dir = keys;
        tweak(config);
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

#[tokio::test]
async fn the_hourly_housekeeping_run_by_both_instances_at_once_does_each_thing_once() {
    let Some((one, two)) = two_instances_with(|config| config.audit_retention_days = 100).await
    else {
        return;
    };
    // Letters to expire, sessions and refresh tokens to purge, audit events past retention.
    one.family().await;
    let report = one
        .import("0590001A", school_file(120).as_bytes())
        .await
        .unwrap();
    let provisional = (report.students_created + report.guardians_created) as u64;
    assert_eq!(provisional, 360);
    // Printed: dated (a letter never printed does not expire).
    assert_eq!(one.letters("0590001A").await.len(), 360);
    let client = one.client(false).await;
    for app in [&one, &two] {
        let back = authorize_and_login(
            app,
            &browser(),
            &authorize_url(app, &client.0, &[("scope", "openid profile")]),
            "claire.martin",
        )
        .await;
        let code = location_param(&back, "code").unwrap();
        assert_eq!(exchange(app, &client, &code, None).await.status(), 200);
    }
    let sessions = one.count("sessions").await as u64;
    let families = one.count("refresh_families").await as u64;
    let events = one.count("audit_events").await as u64;
    assert!(sessions >= 2 && families >= 2 && events >= 2);

    // Past the letters' validity, the refresh tokens' absolute lifetime and a
    // month more, and the audit retention.
    for app in [&one, &two] {
        app.clock.advance(125 * 24 * 3600);
    }
    let mut totals = (0, 0, 0, 0);
    for round in 0..3 {
        let (a, b) = tokio::join!(
            clef::provisioning::expiry::hourly(&one.app),
            clef::provisioning::expiry::hourly(&two.app)
        );
        for done in [a, b] {
            assert!(
                done.failed.is_empty(),
                "round {round}: {:?} failed",
                done.failed
            );
            totals.0 += done.expiry.deleted;
            totals.1 += done.purged.sessions;
            totals.2 += done.purged.refresh_families;
            totals.3 += done.audit_events;
        }
    }
    assert_eq!(
        totals,
        (provisional, sessions, families, events),
        "every letter, session, refresh family and event removed once"
    );
    for table in [
        "sessions",
        "refresh_families",
        "refresh_tokens",
        "audit_events",
    ] {
        assert_eq!(one.count(table).await, 0, "{table}");
    }
    // The family stays; the letters' accounts and their guardianships are gone.
    assert_eq!(one.count("accounts").await, 3);
    assert_eq!(one.count("guardianships").await, 2);
}

#[tokio::test]
async fn a_client_deleted_through_one_instance_is_refused_there_at_once_and_on_the_other_within_the_cache_ttl()
 {
    let Some((one, two)) = two_instances().await else {
        return;
    };
    one.family().await;
    let client = one.client(false).await;
    let authorize_status = |app: &TestApp| {
        let url = authorize_url(app, &client.0, &[]);
        async move { reqwest::get(url).await.unwrap().status().as_u16() }
    };
    // Both instances have read the client (and keep it for the cache's TTL).
    assert_eq!(authorize_status(&one).await, 200);
    assert_eq!(authorize_status(&two).await, 200);
    // Deleted as `DELETE /register/{id}` does on the first instance.
    clef::oidc::clients::delete(&one.app.db, &client.0, one.app.now())
        .await
        .unwrap();
    one.app.clients.forget(&client.0);
    assert_eq!(
        authorize_status(&one).await,
        400,
        "at once where it was deleted"
    );
    tokio::time::sleep(
        clef::oidc::clients::CLIENT_CACHE_TTL + std::time::Duration::from_millis(200),
    )
    .await;
    assert_eq!(
        authorize_status(&two).await,
        400,
        "within the TTL on the other"
    );
}
