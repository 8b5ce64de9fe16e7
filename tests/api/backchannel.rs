//! Back-channel logout (OpenID Connect Back-Channel Logout 1.0, issue 7): when
//! a session ends, each client that received tokens in it and registered a
//! back-channel URI receives a logout token, verifiable against the JWKS,
//! without the person's page waiting for it.

use std::time::{Duration, Instant};

use axum::Form;
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::helpers::*;

/// A relying party's back-channel endpoint on loopback: hands over each
/// `logout_token` it receives, after `delay`.
async fn receiver(delay: Duration) -> (String, mpsc::UnboundedReceiver<String>) {
    let (sender, received) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/backchannel",
        post(
            move |Form(form): Form<std::collections::HashMap<String, String>>| {
                let sender = sender.clone();
                async move {
                    tokio::time::sleep(delay).await;
                    let _ = sender.send(form.get("logout_token").cloned().unwrap_or_default());
                    axum::http::StatusCode::OK
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("http://{}/backchannel", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (uri, received)
}

/// Signs Claire in through `client` in `browser` (silently if the browser has
/// a session already); returns the ID token's claims.
async fn signed_in_through(
    app: &TestApp,
    browser: &reqwest::Client,
    client: &(String, Option<String>),
) -> Value {
    let url = authorize_url(app, &client.0, &[]);
    let first = browser.get(&url).send().await.unwrap();
    let back = if first.status() == 200 {
        let page = first.text().await.unwrap();
        submit_login(app, browser, &page, "claire.martin", PASSWORD).await
    } else {
        first
    };
    let code = location_param(&back, "code").expect("a code");
    let tokens: Value = exchanged(app, client, &code).await;
    jwt_claims(tokens["id_token"].as_str().unwrap())
}

/// Verifies a logout token against Clef's published JWKS; returns header and claims.
async fn verified(app: &TestApp, token: &str) -> (Value, Value) {
    let jwks = reqwest::get(app.url("/jwks.json"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let jwks = josekit::jwk::JwkSet::from_bytes(&jwks).unwrap();
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    let kid = header["kid"].as_str().unwrap();
    let jwk = jwks
        .get(kid)
        .into_iter()
        .next()
        .expect("the signing key is published");
    let verifier: Box<dyn josekit::jws::JwsVerifier> = match header["alg"].as_str() {
        Some("ES256") => Box::new(josekit::jws::ES256.verifier_from_jwk(jwk).unwrap()),
        _ => Box::new(josekit::jws::RS256.verifier_from_jwk(jwk).unwrap()),
    };
    let (payload, _) =
        josekit::jws::deserialize_compact(token, &*verifier).expect("a valid signature");
    (header, serde_json::from_slice(&payload).unwrap())
}

async fn next(received: &mut mpsc::UnboundedReceiver<String>) -> Option<String> {
    tokio::time::timeout(Duration::from_secs(10), received.recv())
        .await
        .ok()
        .flatten()
}

async fn log_out_from_my_account(app: &TestApp, browser: &reqwest::Client) -> reqwest::Response {
    let page = page_text(browser, &app.url("/compte")).await;
    browser
        .post(app.url("/logout"))
        .form(&[
            ("csrf", input_value(&page, "csrf").unwrap().as_str()),
            ("confirm", "1"),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn ending_a_session_sends_each_client_of_it_a_logout_token_it_can_verify() {
    let app = spawn_app().await;
    app.family().await;
    let (uri, mut received) = receiver(Duration::ZERO).await;
    let with_backchannel = app
        .client_with(|new| new.backchannel_logout_uri = Some(uri.parse().unwrap()))
        .await;
    let without = app.client(false).await;
    let browser = browser();
    let id_token = signed_in_through(&app, &browser, &with_backchannel).await;
    signed_in_through(&app, &browser, &without).await;

    let logged_out = log_out_from_my_account(&app, &browser).await;
    assert!(logged_out.status().is_success() || logged_out.status().is_redirection());
    let token = next(&mut received).await.expect("a logout token");
    let (header, claims) = verified(&app, &token).await;
    assert_eq!(header["typ"], "logout+jwt");
    assert_eq!(claims["iss"], app.address.as_str());
    assert_eq!(claims["aud"], with_backchannel.0.as_str());
    assert_eq!(claims["sub"], id_token["sub"]);
    assert_eq!(claims["sid"], id_token["sid"]);
    assert!(claims["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
    assert!(claims.get("nonce").is_none());
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));
    assert!(claims["exp"].as_i64() > claims["iat"].as_i64());
    // One token, for the one client that asked for them.
    assert!(
        tokio::time::timeout(Duration::from_millis(500), received.recv())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn services_of_one_session_cannot_join_on_its_sid_and_each_logout_token_carries_its_own() {
    let app = spawn_app().await;
    app.family().await;
    let mut services = Vec::new();
    for (name, redirect_uri) in [
        ("Service A", "https://service-a.example/callback"),
        ("Service B", "https://service-b.example/callback"),
    ] {
        let (uri, received) = receiver(Duration::ZERO).await;
        let client = app
            .client_with(|new| {
                new.name = name.into();
                new.is_first_party = false;
                new.redirect_uris = vec![clef::domain::RedirectUri::parse(redirect_uri).unwrap()];
                new.backchannel_logout_uri = Some(uri.parse().unwrap());
            })
            .await;
        services.push((client, redirect_uri, received));
    }
    let (ent_uri, mut ent_received) = receiver(Duration::ZERO).await;
    let ent = app
        .client_with(|new| new.backchannel_logout_uri = Some(ent_uri.parse().unwrap()))
        .await;
    let browser = browser();
    let ent_token = signed_in_through(&app, &browser, &ent).await;
    let mut sids = Vec::new();
    for (client, redirect_uri, _) in &services {
        let claims =
            crate::pairwise::id_token_claims_in(&app, &browser, client, redirect_uri).await;
        sids.push(claims["sid"].as_str().expect("a sid").to_owned());
    }
    // One session, one sign-in: two third parties cannot join on its sid, nor
    // on the academy's ENT's.
    assert_ne!(sids[0], sids[1]);
    for sid in &sids {
        assert_ne!(Some(sid.as_str()), ent_token["sid"].as_str());
        assert_eq!(sid.len(), 43, "a base64url HMAC-SHA-256");
    }
    // The same service sees the same sid at each sign-in of the session.
    let (client, redirect_uri, _) = &services[0];
    let again = crate::pairwise::id_token_claims_in(&app, &browser, client, redirect_uri).await;
    assert_eq!(again["sid"], sids[0].as_str());

    log_out_from_my_account(&app, &browser).await;
    // Each logout token names the session as its service saw it.
    for ((_, _, received), sid) in services.iter_mut().zip(&sids) {
        let token = next(received).await.expect("a logout token");
        let (_, claims) = verified(&app, &token).await;
        assert_eq!(claims["sid"], sid.as_str());
    }
    let token = next(&mut ent_received).await.expect("a logout token");
    assert_eq!(verified(&app, &token).await.1["sid"], ent_token["sid"]);
}

#[tokio::test]
async fn a_slow_relying_party_does_not_hold_up_the_person_logging_out() {
    let app = spawn_app().await;
    app.family().await;
    let (uri, mut received) = receiver(Duration::from_secs(3)).await;
    let client = app
        .client_with(|new| new.backchannel_logout_uri = Some(uri.parse().unwrap()))
        .await;
    let browser = browser();
    signed_in_through(&app, &browser, &client).await;
    let started = Instant::now();
    log_out_from_my_account(&app, &browser).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the page answered in {:?}",
        started.elapsed()
    );
    assert!(
        next(&mut received).await.is_some(),
        "delivered in the background"
    );
}

#[tokio::test]
async fn a_password_change_tells_the_clients_of_the_sessions_it_ends() {
    let app = spawn_app().await;
    app.family().await;
    let (uri, mut received) = receiver(Duration::ZERO).await;
    let client = app
        .client_with(|new| new.backchannel_logout_uri = Some(uri.parse().unwrap()))
        .await;
    let elsewhere = browser();
    let ended = signed_in_through(&app, &elsewhere, &client).await;
    let here = browser();
    let kept = signed_in_through(&app, &here, &client).await;

    change_password(&app, &here, "Cartable2026").await;
    let token = next(&mut received).await.expect("a logout token");
    let (_, claims) = verified(&app, &token).await;
    assert_eq!(
        claims["sid"], ended["sid"],
        "the other session is the one ended"
    );
    assert_ne!(claims["sid"], kept["sid"]);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), received.recv())
            .await
            .is_err()
    );
}

/// §2.6: the client validates a logout token as its ID tokens, so it comes
/// signed with the algorithm the client registered for them.
#[tokio::test]
async fn a_logout_token_is_signed_with_the_client_s_id_token_algorithm() {
    let app = spawn_app().await;
    app.family().await;
    let (uri, mut received) = receiver(Duration::ZERO).await;
    let client = app
        .client_with(|new| new.backchannel_logout_uri = Some(uri.parse().unwrap()))
        .await;
    sqlx::query("UPDATE clients SET id_token_signed_response_alg = 'ES256' WHERE id = $1")
        .bind(&client.0)
        .execute(&app.app.db)
        .await
        .unwrap();
    let browser = browser();
    signed_in_through(&app, &browser, &client).await;
    log_out_from_my_account(&app, &browser).await;
    let token = next(&mut received).await.expect("a logout token");
    let (header, claims) = verified(&app, &token).await;
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["typ"], "logout+jwt");
    assert_eq!(claims["aud"], client.0.as_str());
}

/// A relying party that answers 500 to its first logout token, then 200;
/// hands over every token it receives.
async fn flaky_receiver() -> (String, mpsc::UnboundedReceiver<String>) {
    let (sender, received) = mpsc::unbounded_channel();
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let app = axum::Router::new().route(
        "/backchannel",
        post(
            move |Form(form): Form<std::collections::HashMap<String, String>>| {
                let (sender, calls) = (sender.clone(), calls.clone());
                async move {
                    let _ = sender.send(form.get("logout_token").cloned().unwrap_or_default());
                    match calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                        0 => axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                        _ => axum::http::StatusCode::OK,
                    }
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("http://{}/backchannel", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (uri, received)
}

/// A retry is a token signed when it is sent: a relying party that refused
/// the first gets one whose `iat` and `exp` are those of the retry (not a
/// token that may have expired while it waited), with a `jti` of its own.
#[tokio::test]
async fn a_retried_logout_token_is_signed_anew_when_it_is_sent() {
    let app = spawn_app().await;
    app.family().await;
    let (uri, mut received) = flaky_receiver().await;
    let client = app
        .client_with(|new| new.backchannel_logout_uri = Some(uri.parse().unwrap()))
        .await;
    let browser = browser();
    signed_in_through(&app, &browser, &client).await;
    log_out_from_my_account(&app, &browser).await;
    let first = next(&mut received).await.expect("a first attempt");
    app.clock.advance(600);
    let second = next(&mut received).await.expect("a retry");
    let (_, first) = verified(&app, &first).await;
    let (_, second) = verified(&app, &second).await;
    assert_eq!(first["sid"], second["sid"]);
    // The retry comes a second of real time later, the clock moved on by 600.
    let later = second["iat"].as_i64().unwrap() - first["iat"].as_i64().unwrap();
    assert!((600..=605).contains(&later), "{later}");
    assert_eq!(
        second["exp"].as_i64().unwrap(),
        second["iat"].as_i64().unwrap() + 120
    );
    assert_ne!(first["jti"], second["jti"]);
}
