//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0, issue 7): a
//! relying party holding Clef's ID token ends the session and gets the browser
//! back at a registered URI; anything else asks the person, and never
//! redirects where the client did not register.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::cookie::{CookieStore, Jar};
use serde_json::{Value, json};

use crate::helpers::*;

/// A browser whose cookies the test can read (to replay an old session cookie).
fn browser_with_jar() -> (reqwest::Client, Arc<Jar>) {
    let jar = Arc::new(Jar::default());
    let browser = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    (browser, jar)
}

/// `identifier` signs in through `client` in `browser`; returns the ID token.
async fn id_token_for(
    app: &TestApp,
    browser: &reqwest::Client,
    client: &(String, Option<String>),
    identifier: &str,
) -> String {
    let url = authorize_url(app, &client.0, &[]);
    let back = authorize_and_login(app, browser, &url, identifier).await;
    let code = location_param(&back, "code").expect("a code");
    let tokens: Value = exchanged(app, client, &code).await;
    tokens["id_token"].as_str().unwrap().to_owned()
}

fn logout_url(app: &TestApp, params: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&app.url("/logout")).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    url.into()
}

/// Whether `browser` still has its SSO session: a silent authorization answers
/// with a code, or with `login_required` once the session is over.
async fn still_signed_in(app: &TestApp, browser: &reqwest::Client, client_id: &str) -> bool {
    let silent = browser
        .get(authorize_url(app, client_id, &[("prompt", "none")]))
        .send()
        .await
        .unwrap();
    match location_param(&silent, "error") {
        Some(error) => {
            assert_eq!(error, "login_required", "{}", location(&silent));
            false
        }
        None => location_param(&silent, "code").is_some(),
    }
}

const CONFIRMATION: &str = "Voulez-vous vous déconnecter de Clef ?";
const LOGGED_OUT: &str = "Vous êtes déconnecté";

/// « Se déconnecter » on « Mon compte », in `browser`.
async fn sign_out_from_the_account_page(app: &TestApp, browser: &reqwest::Client) {
    let account = page_text(browser, &app.url("/compte")).await;
    assert!(account.contains(r#"action="/logout""#));
    assert!(account.contains("Se déconnecter"));
    let logged_out = browser
        .post(app.url("/logout"))
        .form(&[
            ("csrf", input_value(&account, "csrf").unwrap()),
            ("confirm", input_value(&account, "confirm").unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(logged_out.status(), 200);
    assert!(logged_out.text().await.unwrap().contains(LOGGED_OUT));
}

#[tokio::test]
async fn a_valid_hint_ends_the_session_and_sends_the_browser_back_with_its_state() {
    let app = spawn_app().await;
    app.family().await;
    let client = app.client(false).await;
    let (browser, jar) = browser_with_jar();
    let id_token = id_token_for(&app, &browser, &client, "claire.martin").await;
    let old_cookies = jar.cookies(&app.url("/").parse().unwrap()).unwrap();

    let discovery: Value = reqwest::get(app.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["end_session_endpoint"], app.url("/logout"));

    let response = browser
        .get(logout_url(
            &app,
            &[
                ("id_token_hint", &id_token),
                ("post_logout_redirect_uri", POST_LOGOUT_URI),
                ("state", "au revoir"),
                ("ui_locales", "fr"),
            ],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(
        location(&response),
        format!("{POST_LOGOUT_URI}?state=au+revoir")
    );
    assert_eq!(response.headers()["cache-control"], "no-store");
    let removal = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("clef_session="))
        .expect("the session cookie is removed");
    assert!(removal.contains("Max-Age=0"), "{removal}");

    assert!(!still_signed_in(&app, &browser, &client.0).await);
    // The session is closed on Clef's side too: the old cookie opens nothing.
    let replayed = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(authorize_url(&app, &client.0, &[("prompt", "none")]))
        .header("cookie", old_cookies)
        .send()
        .await
        .unwrap();
    assert_eq!(
        location_param(&replayed, "error").as_deref(),
        Some("login_required")
    );
}

#[tokio::test]
async fn an_expired_hint_still_names_the_session_and_a_form_post_works_like_get() {
    let app = spawn_app_with(|config| config.id_token_ttl = 60).await;
    app.family().await;
    let client = app.client(false).await;
    let browser = browser();
    let id_token = id_token_for(&app, &browser, &client, "claire.martin").await;
    app.clock.advance(600);
    assert!(still_signed_in(&app, &browser, &client.0).await);

    let response = browser
        .post(app.url("/logout"))
        .form(&[
            ("id_token_hint", id_token.as_str()),
            ("client_id", client.0.as_str()),
            ("post_logout_redirect_uri", POST_LOGOUT_URI),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), POST_LOGOUT_URI, "no state, none added");
    assert!(!still_signed_in(&app, &browser, &client.0).await);

    // Nobody signed in any more: the same request goes straight back.
    let again = browser
        .get(logout_url(
            &app,
            &[
                ("id_token_hint", &id_token),
                ("post_logout_redirect_uri", POST_LOGOUT_URI),
                ("state", "s2"),
            ],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 303);
    assert_eq!(location_param(&again, "state").as_deref(), Some("s2"));
}

/// A relying party's page posting the request from its own site: the
/// browser sends no `SameSite=Lax` cookie with a cross-site POST, so Clef
/// turns it into the same request as a top-level GET, which carries it, and
/// the session ends before the browser goes back.
#[tokio::test]
async fn a_cross_site_form_post_is_followed_as_a_get_that_carries_the_session_cookie() {
    let app = spawn_app().await;
    app.family().await;
    let client = app.client(false).await;
    let browser = browser();
    let id_token = id_token_for(&app, &browser, &client, "claire.martin").await;

    // The POST as the browser sends it from the client's site: no cookie.
    let cross_site = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let params = [
        ("id_token_hint", id_token.as_str()),
        ("post_logout_redirect_uri", POST_LOGOUT_URI),
        ("state", "à bientôt & merci"),
    ];
    let posted = cross_site
        .post(app.url("/logout"))
        .form(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 303);
    let again = location(&posted);
    assert!(again.starts_with("/logout?"), "{again}");
    assert!(
        still_signed_in(&app, &browser, &client.0).await,
        "nothing ended yet"
    );

    // The redirect, followed at the top level: the cookie goes with it.
    let back = browser.get(app.url(&again)).send().await.unwrap();
    assert_eq!(back.status(), 303);
    assert_eq!(
        location(&back),
        format!("{POST_LOGOUT_URI}?state=%C3%A0+bient%C3%B4t+%26+merci")
    );
    assert!(!still_signed_in(&app, &browser, &client.0).await);
}

#[tokio::test]
async fn a_post_logout_redirect_uri_that_is_not_registered_gets_an_error_page_and_the_session_stays()
 {
    let app = spawn_app().await;
    app.family().await;
    let client = app.client(false).await;
    let other = app.client(false).await;
    let browser = browser();
    let id_token = id_token_for(&app, &browser, &client, "claire.martin").await;

    for (params, detail) in [
        (
            vec![
                ("id_token_hint", id_token.as_str()),
                (
                    "post_logout_redirect_uri",
                    "http://127.0.0.1:9999/elsewhere",
                ),
                ("state", "s"),
            ],
            "not registered",
        ),
        (
            // Registered for the client, but not spelled the same way.
            vec![
                ("id_token_hint", id_token.as_str()),
                (
                    "post_logout_redirect_uri",
                    "http://127.0.0.1:9999/logged-out/",
                ),
            ],
            "not registered",
        ),
        (
            // The hint says another client.
            vec![
                ("id_token_hint", id_token.as_str()),
                ("client_id", other.0.as_str()),
                ("post_logout_redirect_uri", POST_LOGOUT_URI),
            ],
            "does not match",
        ),
        (
            vec![
                ("client_id", "clef-unknown"),
                ("post_logout_redirect_uri", POST_LOGOUT_URI),
            ],
            "unknown client_id",
        ),
        (
            // No way to know whose URI it is.
            vec![("post_logout_redirect_uri", POST_LOGOUT_URI)],
            "needs client_id",
        ),
    ] {
        let response = browser.get(logout_url(&app, &params)).send().await.unwrap();
        assert_eq!(response.status(), 400, "{params:?}");
        assert!(response.headers().get("location").is_none());
        assert!(response.headers().get("set-cookie").is_none());
        let page = response.text().await.unwrap();
        assert!(page.contains("Demande de déconnexion invalide"), "{page}");
        assert!(page.contains(detail), "{detail}: {page}");
        if detail != "unknown client_id" {
            assert!(page.contains("Vous êtes toujours connecté"), "{page}");
        }
    }
    assert!(still_signed_in(&app, &browser, &client.0).await);
    // A browser that is not signed in is not told it still is.
    let page = page_text(
        &reqwest::Client::new(),
        &logout_url(&app, &[("post_logout_redirect_uri", POST_LOGOUT_URI)]),
    )
    .await;
    assert!(
        page.contains("êtes pas connecté à Clef") && !page.contains("toujours connecté"),
        "{page}"
    );

    // A parameter given twice is refused by the strict decoder.
    let twice = browser
        .get(app.url("/logout?state=a&state=b"))
        .send()
        .await
        .unwrap();
    assert_eq!(twice.status(), 400);
    assert!(still_signed_in(&app, &browser, &client.0).await);
}

#[tokio::test]
async fn a_forged_hint_is_not_believed_the_person_is_asked_and_nothing_redirects() {
    let app = spawn_app().await;
    app.family().await;
    let client = app.client(false).await;
    let browser = browser();
    let id_token = id_token_for(&app, &browser, &client, "claire.martin").await;
    let claims = jwt_claims(&id_token);

    // The payload changed under a genuine signature.
    let parts: Vec<&str> = id_token.split('.').collect();
    let mut changed = claims.clone();
    changed["exp"] = json!(claims["exp"].as_i64().unwrap() + 1);
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(changed.to_string()),
        parts[2]
    );
    // Every claim right, signed with a key that is not Clef's.
    let elsewhere = tempfile::tempdir().unwrap();
    let stranger = clef::keys::KeyRing::load_or_generate(elsewhere.path(), 0).unwrap();
    let foreign = stranger.sign(&claims).unwrap();
    // Clef's key, but another issuer's name.
    let mut other_issuer = claims.clone();
    other_issuer["iss"] = json!("https://ailleurs.example");
    let misissued = app.app.keys.sign(&other_issuer).unwrap();

    for hint in [tampered, foreign, misissued, "not-a-jwt".to_owned()] {
        let response = browser
            .get(logout_url(
                &app,
                &[
                    ("id_token_hint", &hint),
                    ("post_logout_redirect_uri", POST_LOGOUT_URI),
                    ("state", "s"),
                ],
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{hint}");
        let page = response.text().await.unwrap();
        assert!(page.contains(&fr(CONFIRMATION)), "{page}");
        assert_eq!(
            input_value(&page, "post_logout_redirect_uri"),
            None,
            "nothing of a forged request is carried"
        );
        assert!(still_signed_in(&app, &browser, &client.0).await);
    }
}

#[tokio::test]
async fn a_hint_for_another_account_asks_first_then_returns_to_the_registered_uri() {
    let app = spawn_app().await;
    app.family().await;
    let client = app.client(false).await;
    let claire = browser();
    id_token_for(&app, &claire, &client, "claire.martin").await;
    let lea_token = id_token_for(&app, &browser(), &client, "lea.martin").await;

    let response = claire
        .get(logout_url(
            &app,
            &[
                ("id_token_hint", &lea_token),
                ("post_logout_redirect_uri", POST_LOGOUT_URI),
                ("state", "st"),
            ],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let page = response.text().await.unwrap();
    assert!(page.contains(&fr(CONFIRMATION)));
    assert!(page.contains("ENT du test"), "the asking service is named");
    assert!(page.contains("claire.martin"), "the account is named");
    assert!(still_signed_in(&app, &claire, &client.0).await);

    let confirmed = claire
        .post(app.url("/logout"))
        .form(&[
            ("csrf", input_value(&page, "csrf").unwrap()),
            ("confirm", input_value(&page, "confirm").unwrap()),
            ("client_id", input_value(&page, "client_id").unwrap()),
            (
                "post_logout_redirect_uri",
                input_value(&page, "post_logout_redirect_uri").unwrap(),
            ),
            ("state", input_value(&page, "state").unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status(), 303);
    assert_eq!(location(&confirmed), format!("{POST_LOGOUT_URI}?state=st"));
    assert!(!still_signed_in(&app, &claire, &client.0).await);
}

#[tokio::test]
async fn without_a_hint_the_person_confirms_with_their_own_form_or_cancels() {
    let app = spawn_app().await;
    app.family().await;
    let client = app.client(false).await;
    let browser = browser();
    id_token_for(&app, &browser, &client, "claire.martin").await;

    let response = browser.get(app.url("/logout")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let page = response.text().await.unwrap();
    assert!(page.contains(&fr(CONFIRMATION)));
    assert!(page.contains("Se déconnecter") && page.contains("Annuler"));
    let csrf = input_value(&page, "csrf").unwrap();

    // Another site's form: no token, or a token without its cookie.
    let without_token = browser
        .post(app.url("/logout"))
        .form(&[("confirm", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(without_token.status(), 403);
    let cookieless = reqwest::Client::new()
        .post(app.url("/logout"))
        .form(&[("csrf", csrf.as_str()), ("confirm", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(cookieless.status(), 403);
    // A bare POST is a relying party's request without a hint: asked again.
    let bare = browser
        .post(app.url("/logout"))
        .form(&[("state", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 200);
    assert!(bare.text().await.unwrap().contains(&fr(CONFIRMATION)));
    assert!(still_signed_in(&app, &browser, &client.0).await);

    // « Annuler »: back to « Mon compte », still signed in.
    let cancelled = browser
        .post(app.url("/logout"))
        .form(&[("csrf", csrf.as_str()), ("confirm", "1"), ("cancel", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 303);
    assert_eq!(location(&cancelled), "/compte");
    assert!(still_signed_in(&app, &browser, &client.0).await);
    // From a page in the language a relying party asked for, « Mon compte »
    // opens in that language.
    let cancelled = browser
        .post(app.url("/logout?ui_locales=en"))
        .form(&[("csrf", csrf.as_str()), ("confirm", "1"), ("cancel", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&cancelled), "/compte?lang=en");
    let account = browser
        .get(app.url("/compte?lang=en"))
        .send()
        .await
        .unwrap();
    let page = account.text().await.unwrap();
    assert!(page.contains("lang=\"en\""), "{page}");
    // (A language so opened is the person's choice, as the language link's.)
    browser
        .get(app.url("/compte?lang=fr"))
        .send()
        .await
        .unwrap();

    // « Se déconnecter »: the « Vous êtes déconnecté » page.
    let confirmed = browser
        .post(app.url("/logout"))
        .form(&[("csrf", csrf.as_str()), ("confirm", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status(), 200);
    let page = confirmed.text().await.unwrap();
    assert!(page.contains(LOGGED_OUT), "{page}");
    assert!(!still_signed_in(&app, &browser, &client.0).await);

    // Signed out, /logout has nothing to ask.
    let after = browser.get(app.url("/logout")).send().await.unwrap();
    assert_eq!(after.status(), 200);
    assert!(after.text().await.unwrap().contains(LOGGED_OUT));
}

#[tokio::test]
async fn a_client_id_without_hint_is_asked_then_sent_back_to_its_registered_uri() {
    let app = spawn_app().await;
    app.family().await;
    let client = app.client(true).await;
    let browser = browser();
    let page = page_text(&browser, &app.url("/login")).await;
    submit_login(&app, &browser, &page, "claire.martin", PASSWORD).await;

    let page = page_text(
        &browser,
        &logout_url(
            &app,
            &[
                ("client_id", &client.0),
                ("post_logout_redirect_uri", POST_LOGOUT_URI),
                ("state", "bye"),
            ],
        ),
    )
    .await;
    assert!(page.contains(&fr(CONFIRMATION)));
    let confirmed = browser
        .post(app.url("/logout"))
        .form(&[
            ("csrf", input_value(&page, "csrf").unwrap()),
            ("confirm", "1".into()),
            ("client_id", input_value(&page, "client_id").unwrap()),
            (
                "post_logout_redirect_uri",
                input_value(&page, "post_logout_redirect_uri").unwrap(),
            ),
            ("state", input_value(&page, "state").unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status(), 303);
    assert_eq!(location(&confirmed), format!("{POST_LOGOUT_URI}?state=bye"));
}

#[tokio::test]
async fn se_deconnecter_in_mon_compte_logs_out_at_once() {
    let app = spawn_app().await;
    app.family().await;
    let client = app.client(false).await;
    let browser = browser();
    id_token_for(&app, &browser, &client, "claire.martin").await;

    sign_out_from_the_account_page(&app, &browser).await;

    let account = browser.get(app.url("/compte")).send().await.unwrap();
    assert_eq!(account.status(), 303);
    assert_eq!(location(&account), "/login");
    assert!(!still_signed_in(&app, &browser, &client.0).await);
}

#[tokio::test]
async fn the_page_header_offers_se_deconnecter_to_a_signed_in_person_only() {
    let app = spawn_app().await;
    app.family().await;
    let third_party = app.third_party_client().await;
    let browser = browser();
    let login = page_text(&browser, &app.url("/login")).await;
    assert!(
        !login.contains("class=\"header-logout\""),
        "nobody to sign out yet"
    );
    submit_login(&app, &browser, &login, "claire.martin", PASSWORD).await;

    // A page with a form, signed in: the header carries the button.
    let asked = browser
        .get(authorize_url(&app, &third_party.0, &[]))
        .send()
        .await
        .unwrap();
    let consent = page_text(&browser, &app.url(&location(&asked))).await;
    assert!(consent.contains("class=\"header-logout\""));
    // The login form, even for someone signed in (prompt=login), offers none.
    let again = page_text(
        &browser,
        &authorize_url(&app, &third_party.0, &[("prompt", "login")]),
    )
    .await;
    assert!(again.contains("name=\"password\""));
    assert!(!again.contains("class=\"header-logout\""));
    // « Mon compte » has its own, once.
    let account = page_text(&browser, &app.url("/compte")).await;
    assert_eq!(account.matches(">Se déconnecter</button>").count(), 1);

    // The header's form logs out like « Mon compte »'s.
    let form = [
        ("csrf", input_value(&consent, "csrf").unwrap()),
        ("confirm", "1".to_owned()),
    ];
    let out = browser
        .post(app.url("/logout"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert!(out.text().await.unwrap().contains(LOGGED_OUT));
    assert_eq!(
        browser
            .get(app.url("/compte"))
            .send()
            .await
            .unwrap()
            .status(),
        303
    );
}

/// Back-Channel Logout 1.0 §2.7: logging out revokes the refresh tokens the
/// session's sign-ins got without `offline_access`; one asked for offline use
/// outlives it.
#[tokio::test]
async fn logging_out_revokes_the_session_s_refresh_tokens_but_offline_ones() {
    let app = spawn_app().await;
    app.family().await;
    let client = app.client(false).await;
    let (browser, _jar) = browser_with_jar();
    let mut refresh_tokens = Vec::new();
    for scope in ["openid", "openid offline_access"] {
        let url = authorize_url(&app, &client.0, &[("scope", scope)]);
        // The first signs in; the second finds the session.
        let back = if refresh_tokens.is_empty() {
            authorize_and_login(&app, &browser, &url, "claire.martin").await
        } else {
            browser.get(&url).send().await.unwrap()
        };
        let code = location_param(&back, "code").expect("a code");
        let tokens: Value = exchanged(&app, &client, &code).await;
        refresh_tokens.push(tokens["refresh_token"].as_str().unwrap().to_owned());
    }
    sign_out_from_the_account_page(&app, &browser).await;
    let mut answers = Vec::new();
    for token in &refresh_tokens {
        let refreshed = refresh_grant(&app, &client, token).await;
        answers.push(refreshed.status().as_u16());
    }
    assert_eq!(answers, [400, 200]);
}

/// A third party's access token without `offline_access` ends with the
/// session, as a first party's does with its refresh family (it has none);
/// one granted `offline_access` lives on, as its refresh token does.
#[tokio::test]
async fn logging_out_ends_a_third_partys_access_tokens_but_offline_ones() {
    let app = spawn_app().await;
    app.family().await;
    let client = app.third_party_client().await;
    let (browser, _jar) = browser_with_jar();
    let login = page_text(&browser, &app.url("/login")).await;
    let signed_in = submit_login(&app, &browser, &login, "claire.martin", PASSWORD).await;
    assert_eq!(signed_in.status(), 303);
    let mut access_tokens = Vec::new();
    for scope in ["openid profile", "openid profile offline_access"] {
        let url = authorize_url(&app, &client.0, &[("scope", scope)]);
        let asked = browser.get(&url).send().await.unwrap();
        let consent = page_text(&browser, &app.url(&location(&asked))).await;
        let back = answer_consent(&app, &browser, &consent, "accept").await;
        let code = location_param(&back, "code").expect("a code");
        let tokens: Value = exchanged(&app, &client, &code).await;
        access_tokens.push(tokens["access_token"].as_str().unwrap().to_owned());
    }
    for token in &access_tokens {
        assert_eq!(userinfo_status(&app, token).await, 200);
    }
    sign_out_from_the_account_page(&app, &browser).await;
    let mut answers = Vec::new();
    for token in &access_tokens {
        answers.push(userinfo_status(&app, token).await);
    }
    assert_eq!(answers, [401, 200]);
}

/// A large family's ID token (the `children` claim, ~300 characters a
/// child) comes back as `id_token_hint` longer than most parameters may be:
/// it is still read.
#[tokio::test]
async fn the_id_token_of_a_large_family_is_a_valid_hint() {
    let app = spawn_app().await;
    let family = app.family().await;
    let college = app.establishment("0590009Z", "Collège Lucie Aubrac").await;
    for n in 0..14 {
        let child = app
            .account(
                &format!("enfant{}.martin", (b'a' + n) as char),
                clef::accounts::AccountKind::Student,
                Some((&college, "6 A")),
                Some("2014-01-02"),
            )
            .await;
        clef::accounts::store::link_guardian(
            &app.app.db,
            &family.guardian.id,
            &child.id,
            clef::domain::Rank::new(1).unwrap(),
            app.app.now(),
        )
        .await
        .unwrap();
    }
    let client = app.client(false).await;
    let (browser, _) = browser_with_jar();
    let id_token = id_token_for(&app, &browser, &client, "claire.martin").await;
    assert!(id_token.len() > 4096, "{}", id_token.len());
    let response = browser
        .get(logout_url(
            &app,
            &[
                ("id_token_hint", &id_token),
                ("post_logout_redirect_uri", POST_LOGOUT_URI),
            ],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), POST_LOGOUT_URI);
    assert!(!still_signed_in(&app, &browser, &client.0).await);
}
