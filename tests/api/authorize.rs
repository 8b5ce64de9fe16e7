//! The authorization endpoint and the login page: sessions, prompts, errors.

use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn login_page_is_french_labelled_and_links_recovery_pages() {
    let app = spawn_app().await;
    app.family().await;
    let (client_id, _) = app.client(false).await;
    let page = browser()
        .get(authorize_url(&app, &client_id, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["cache-control"], "no-store");
    let html = page.text().await.unwrap();
    assert!(html.contains("<html lang=\"fr\">"));
    assert!(html.contains(r#"<label for="identifier">"#) && html.contains(r#"id="identifier""#));
    assert!(html.contains(r#"<label for="password">"#) && html.contains(r#"id="password""#));
    assert!(
        html.contains(r#"autocomplete="username""#)
            && html.contains(r#"autocomplete="current-password""#)
    );
    assert!(
        html.contains(&fr("identifiant oublié ?")) && html.contains(&fr("mot de passe oublié ?"))
    );
    assert!(
        html.contains("ENT du test"),
        "the page names the application"
    );
}

#[tokio::test]
async fn wrong_password_gets_one_generic_message_and_no_session() {
    let app = spawn_app().await;
    app.family().await;
    let (client_id, _) = app.client(false).await;
    let browser = browser();
    let page = browser
        .get(authorize_url(&app, &client_id, &[]))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let wrong = submit_login(&app, &browser, &page, "claire.martin", "pas-le-bon").await;
    assert_eq!(wrong.status(), 401);
    assert!(
        wrong
            .headers()
            .get("set-cookie")
            .is_none_or(|c| !c.to_str().unwrap().contains("clef_session"))
    );
    let wrong_html = wrong.text().await.unwrap();
    assert!(wrong_html.contains("Identifiant ou mot de passe incorrect."));
    // An unknown identifier reads exactly the same.
    let unknown = submit_login(
        &app,
        &browser,
        &wrong_html,
        "personne.inconnue",
        "pas-le-bon",
    )
    .await;
    assert_eq!(unknown.status(), 401);
    assert!(
        unknown
            .text()
            .await
            .unwrap()
            .contains("Identifiant ou mot de passe incorrect.")
    );
    // The form still works afterwards with the right password.
    let right = submit_login(&app, &browser, &wrong_html, "claire.martin", PASSWORD).await;
    assert_eq!(right.status(), 303);
    assert!(location_param(&right, "code").is_some());
}

#[tokio::test]
async fn unknown_client_gets_an_error_page_not_a_redirect() {
    let app = spawn_app().await;
    let response = browser()
        .get(authorize_url(&app, "clef-inconnu", &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("location").is_none());
    assert!(response.text().await.unwrap().contains("pas enregistrée"));
}

#[tokio::test]
async fn unregistered_redirect_uri_gets_an_error_page_not_a_redirect() {
    let app = spawn_app().await;
    let (client_id, _) = app.client(false).await;
    for evil in [
        "https://evil.example/callback",
        "http://127.0.0.1:9999/callback/",
        "http://127.0.0.1:9999/callback?x=1",
        "http://127.0.0.1:9999/CALLBACK",
    ] {
        let url = authorize_url(&app, &client_id, &[]).replace(
            &url::form_urlencoded::byte_serialize(REDIRECT_URI.as_bytes()).collect::<String>(),
            &url::form_urlencoded::byte_serialize(evil.as_bytes()).collect::<String>(),
        );
        let response = browser().get(url).send().await.unwrap();
        assert_eq!(response.status(), 400, "{evil}");
        assert!(response.headers().get("location").is_none(), "{evil}");
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("Demande de connexion invalide")
        );
    }
}

#[tokio::test]
async fn prompt_none_without_a_session_returns_login_required() {
    let app = spawn_app().await;
    let (client_id, _) = app.client(false).await;
    let response = browser()
        .get(authorize_url(&app, &client_id, &[("prompt", "none")]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    assert!(location(&response).starts_with(REDIRECT_URI));
    assert_eq!(
        location_param(&response, "error").as_deref(),
        Some("login_required")
    );
    assert_eq!(
        location_param(&response, "error_description").as_deref(),
        Some("no active session")
    );
    assert_eq!(
        location_param(&response, "state").as_deref(),
        Some("st-123")
    );
}

/// `prompt=login` and `max_age` ask the person for their password again, not
/// for another session (OIDC Core §3.1.2.1): the same person typing it goes
/// on in the session the services know — the same `sid`, a later
/// `auth_time` — whose session-bound refresh tokens keep working, under the
/// same cookie value. A session the registry holds as ended (a logout that
/// raced a renewal) signs in no one. Another person signing in in that
/// browser ends it, as before.
#[tokio::test]
async fn typing_the_password_again_keeps_the_session_the_services_know() {
    let app = spawn_app().await;
    app.family().await;
    let client = app.client(false).await;
    let browser = browser();
    let signed_in = |extra: &'static [(&'static str, &'static str)], who: &'static str| {
        let (app, browser, client) = (&app, browser.clone(), &client);
        async move {
            let back =
                authorize_and_login(app, &browser, &authorize_url(app, &client.0, extra), who)
                    .await;
            let code = location_param(&back, "code").expect("a code");
            let tokens: Value = exchanged(app, client, &code).await;
            let claims = jwt_claims(tokens["id_token"].as_str().unwrap());
            (claims, tokens["refresh_token"].as_str().unwrap().to_owned())
        }
    };
    let open_sessions = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM sessions WHERE ended_at IS NULL")
            .fetch_one(&app.app.db)
            .await
            .unwrap()
    };

    let (first, mut refresh_token) = signed_in(&[], "claire.martin").await;
    // In the same second, a link bringing the session to the request that
    // asked for the password again does not answer it: no password typed.
    let asked = page_text(
        &browser,
        &authorize_url(&app, &client.0, &[("prompt", "login")]),
    )
    .await;
    let linked = browser
        .get(app.url(&format!(
            "/continuer?request={}",
            input_value(&asked, "request").unwrap()
        )))
        .send()
        .await
        .unwrap();
    assert!(location_param(&linked, "code").is_none(), "{linked:?}");
    for extra in [&[("prompt", "login")][..], &[("max_age", "60")][..]] {
        app.clock.advance(120);
        let (again, _) = signed_in(extra, "claire.martin").await;
        assert_eq!(again["sid"], first["sid"], "{extra:?}");
        assert!(again["auth_time"].as_i64() > first["auth_time"].as_i64());
        assert_eq!(open_sessions().await, 1);
        let refreshed = refresh_grant(&app, &client, &refresh_token).await;
        assert_eq!(refreshed.status(), 200, "the session's refresh token lives");
        let refreshed: Value = refreshed.json().await.unwrap();
        refresh_token = refreshed["refresh_token"].as_str().unwrap().to_owned();
    }
    let (other, _) = signed_in(&[("prompt", "login")], "lea.martin").await;
    assert_ne!(other["sid"], first["sid"]);
    assert_eq!(open_sessions().await, 1, "claire's ended");
    // Ended in the registry behind the store's back (a logout that raced a
    // renewal): the cookie signs in no one.
    assert_eq!(account_page(&app, &browser).await.status(), 200);
    sqlx::query("UPDATE sessions SET ended_at = 1 WHERE ended_at IS NULL")
        .execute(&app.app.db)
        .await
        .unwrap();
    assert_eq!(account_page(&app, &browser).await.status(), 303);
}

/// OIDC Core §3.1.2.1: a relying party may POST the request from its own
/// page. The browser keeps the `SameSite=Lax` session cookie off that
/// cross-site POST (played here by a POST without cookies): Clef answers 303
/// to the same request as a GET, which the browser makes top-level with the
/// cookie, so a signed-in person is not asked to sign in again and
/// `prompt=none` gets its code. A POST that carries the cookie (the same
/// site) is answered at once.
#[tokio::test]
async fn a_posted_request_reaches_the_session_its_cookie_did_not_carry() {
    let app = spawn_app().await;
    app.family().await;
    let (client_id, _) = app.client(false).await;
    let signed_in = browser();
    authorize_and_login(
        &app,
        &signed_in,
        &authorize_url(&app, &client_id, &[]),
        "claire.martin",
    )
    .await;
    let request = authorize_url(&app, &client_id, &[("prompt", "none"), ("state", "é&x")]);
    let (_, query) = request.split_once('?').unwrap();
    let cross_site = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(app.url("/authorize"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(query.to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), 303);
    assert_eq!(cross_site.headers()["cache-control"], "no-store");
    let again = location(&cross_site);
    assert!(again.starts_with("/authorize?"), "{again}");
    let pairs = |query: &str| {
        let mut pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        pairs.sort();
        pairs
    };
    assert_eq!(pairs(again.split_once('?').unwrap().1), pairs(query));
    let answered = signed_in.get(app.url(&again)).send().await.unwrap();
    assert_eq!(answered.status(), 302);
    assert!(location_param(&answered, "code").is_some());
    assert_eq!(location_param(&answered, "state").as_deref(), Some("é&x"));

    // Too long for an address (a proxy would refuse it, logs would keep
    // it): answered as posted, the login form.
    let mut long = query.to_owned();
    for n in 0..10 {
        long.push_str(&format!("&extra{n}={}", "x".repeat(500)));
    }
    let too_long = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(app.url("/authorize"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(long)
        .send()
        .await
        .unwrap();
    assert_ne!(too_long.status(), 303);
    assert_eq!(
        location_param(&too_long, "error").as_deref(),
        Some("login_required")
    );

    let same_site = signed_in
        .post(app.url("/authorize"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(query.to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(same_site.status(), 302);
    assert!(location_param(&same_site, "code").is_some());
}

#[tokio::test]
async fn a_session_signs_in_again_without_a_password_unless_prompt_login_or_max_age() {
    let app = spawn_app().await;
    app.family().await;
    let (client_id, _) = app.client(false).await;
    let browser = browser();
    authorize_and_login(
        &app,
        &browser,
        &authorize_url(&app, &client_id, &[]),
        "claire.martin",
    )
    .await;

    let silent = browser
        .get(authorize_url(&app, &client_id, &[("prompt", "none")]))
        .send()
        .await
        .unwrap();
    assert_eq!(silent.status(), 302);
    assert!(
        location_param(&silent, "code").is_some(),
        "SSO: no login form the second time"
    );

    let forced = browser
        .get(authorize_url(&app, &client_id, &[("prompt", "login")]))
        .send()
        .await
        .unwrap();
    assert_eq!(forced.status(), 200, "prompt=login shows the form again");
    assert!(forced.text().await.unwrap().contains("name=\"password\""));

    app.clock.advance(120);
    let too_old = browser
        .get(authorize_url(&app, &client_id, &[("max_age", "60")]))
        .send()
        .await
        .unwrap();
    assert_eq!(too_old.status(), 200, "max_age exceeded shows the form");
    let too_old_silent = browser
        .get(authorize_url(
            &app,
            &client_id,
            &[("max_age", "60"), ("prompt", "none")],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        location_param(&too_old_silent, "error").as_deref(),
        Some("login_required")
    );
    assert_eq!(
        location_param(&too_old_silent, "error_description").as_deref(),
        Some("the sign-in is older than max_age allows")
    );
    let recent_enough = browser
        .get(authorize_url(&app, &client_id, &[("max_age", "3600")]))
        .send()
        .await
        .unwrap();
    assert!(location_param(&recent_enough, "code").is_some());
}

#[tokio::test]
async fn login_hint_prefills_the_identifier() {
    let app = spawn_app().await;
    let (client_id, _) = app.client(false).await;
    let page = browser()
        .get(authorize_url(
            &app,
            &client_id,
            &[("login_hint", "claire.martin")],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        input_value(&page.text().await.unwrap(), "identifier").as_deref(),
        Some("claire.martin")
    );
}

#[tokio::test]
async fn invalid_requests_from_a_known_client_go_back_with_the_error() {
    let app = spawn_app().await;
    let (client_id, _) = app.client(false).await;
    let (public_id, _) = app.client(true).await;
    let cases: Vec<(String, &str)> = vec![
        (
            authorize_url(&app, &client_id, &[])
                .replace("response_type=code", "response_type=token"),
            "unsupported_response_type",
        ),
        (
            authorize_url(&app, &client_id, &[]).replace("scope=openid+", "scope="),
            "invalid_scope",
        ),
        (
            authorize_url(
                &app,
                &client_id,
                &[
                    ("code_challenge", "abc"),
                    ("code_challenge_method", "plain"),
                ],
            ),
            "invalid_request",
        ),
        (authorize_url(&app, &public_id, &[]), "invalid_request"),
        (
            authorize_url(&app, &client_id, &[("prompt", "none login")]),
            "invalid_request",
        ),
        (
            authorize_url(&app, &client_id, &[("max_age", "-1")]),
            "invalid_request",
        ),
        (
            // A request object from a client that registered no keys.
            authorize_url(&app, &client_id, &[("request", "eyJ")]),
            "invalid_request_object",
        ),
    ];
    for (url, expected) in cases {
        let response = browser().get(&url).send().await.unwrap();
        assert_eq!(response.status(), 302, "{url}");
        assert_eq!(
            location_param(&response, "error").as_deref(),
            Some(expected),
            "{url}"
        );
        assert_eq!(
            location_param(&response, "state").as_deref(),
            Some("st-123"),
            "{url}"
        );
    }
}

#[tokio::test]
async fn form_post_response_mode_returns_an_auto_submitted_form() {
    let app = spawn_app().await;
    app.family().await;
    let (client_id, _) = app.client(false).await;
    let browser = browser();
    let url = authorize_url(&app, &client_id, &[("response_mode", "form_post")]);
    let page = browser
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let response = submit_login(&app, &browser, &page, "claire.martin", PASSWORD).await;
    assert_eq!(response.status(), 200);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let html = response.text().await.unwrap();
    assert!(
        html.contains(&format!(
            "action=\"{}\"",
            REDIRECT_URI.replace('/', "&#x2f;")
        )) || html.contains(&format!("action=\"{REDIRECT_URI}\""))
    );
    assert!(input_value(&html, "code").is_some());
    assert_eq!(input_value(&html, "state").as_deref(), Some("st-123"));
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap();
    assert!(html.contains(&format!("nonce=\"{nonce}\"")));
}

#[tokio::test]
async fn login_form_without_its_csrf_cookie_is_refused() {
    let app = spawn_app().await;
    app.family().await;
    let page = browser()
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // Another browser (no CSRF cookie) replays the form.
    let response = submit_login(&app, &browser(), &page, "claire.martin", PASSWORD).await;
    assert_eq!(response.status(), 403);
    assert!(response.text().await.unwrap().contains("Formulaire expiré"));
}

/// Signs `identifier` in through `client` in a new browser; returns the
/// browser and the ID token.
async fn signed_in_with_id_token(
    app: &TestApp,
    client: &(String, Option<String>),
    identifier: &str,
) -> (reqwest::Client, String) {
    let browser = browser();
    let back = authorize_and_login(
        app,
        &browser,
        &authorize_url(app, &client.0, &[]),
        identifier,
    )
    .await;
    let code = location_param(&back, "code").unwrap();
    let tokens: serde_json::Value = exchanged(app, client, &code).await;
    (browser, tokens["id_token"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn id_token_hint_names_who_must_be_signed_in() {
    let app = spawn_app().await;
    app.family().await;
    let client = app.client(false).await;
    let (claire, claire_hint) = signed_in_with_id_token(&app, &client, "claire.martin").await;
    let (lea, _) = signed_in_with_id_token(&app, &client, "lea.martin").await;
    let with_hint = |extra: &[(&str, &str)]| {
        let mut params = vec![("id_token_hint", claire_hint.as_str())];
        params.extend_from_slice(extra);
        authorize_url(&app, &client.0, &params)
    };

    // The person the hint names: a code, silently.
    let same = claire
        .get(with_hint(&[("prompt", "none")]))
        .send()
        .await
        .unwrap();
    assert!(
        location_param(&same, "code").is_some(),
        "{}",
        location(&same)
    );
    // Someone else is signed in: login_required silently, the login form otherwise.
    let other = lea
        .get(with_hint(&[("prompt", "none")]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        location_param(&other, "error").as_deref(),
        Some("login_required")
    );
    assert_eq!(
        location_param(&other, "error_description").as_deref(),
        Some("the person signed in is not the one the request names")
    );
    let interactive = lea.get(with_hint(&[])).send().await.unwrap();
    assert_eq!(interactive.status(), 200, "the login form");
    let page = interactive.text().await.unwrap();
    assert!(page.contains("name=\"password\""));
    // Logging in as yet another person does not answer the request.
    let wrong_person = submit_login(&app, &lea, &page, "lea.martin", PASSWORD).await;
    assert_eq!(
        location_param(&wrong_person, "error").as_deref(),
        Some("login_required")
    );

    // A hint Clef did not sign, or signed for another client, is refused.
    let mut forged = claire_hint.clone();
    forged.replace_range(forged.len() - 4.., "AAAA");
    let other_client = app.client(false).await;
    for (hint, client_id) in [
        (forged.as_str(), &client.0),
        (claire_hint.as_str(), &other_client.0),
    ] {
        let refused = claire
            .get(authorize_url(&app, client_id, &[("id_token_hint", hint)]))
            .send()
            .await
            .unwrap();
        assert_eq!(
            location_param(&refused, "error").as_deref(),
            Some("invalid_request")
        );
    }
}

/// RFC 8252 §7.3: a native app registered on a loopback IP address picks its
/// port when it asks; the rest of the URI must still be the registered one.
/// A web client's port is the registered one (OIDC Core §3.1.2.1).
#[tokio::test]
async fn a_loopback_redirect_uri_matches_on_any_port_and_nothing_else() {
    let app = spawn_app().await;
    app.family().await;
    let ephemeral = "http://127.0.0.1:53412/callback";
    let web = app.client(false).await;
    let url = authorize_url(&app, &web.0, &[("redirect_uri", ephemeral)]);
    let page = browser().get(&url).send().await.unwrap();
    assert_eq!(page.status(), 400, "a web client's port is exact");
    let client = app.client(true).await;
    let (verifier, challenge) = pkce();
    let url = authorize_url(
        &app,
        &client.0,
        &[
            ("redirect_uri", ephemeral),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let back = authorize_and_login(&app, &browser(), &url, "claire.martin").await;
    let location = location(&back);
    assert!(location.starts_with(&format!("{ephemeral}?")), "{location}");
    let code = location_param(&back, "code").unwrap();
    let tokens = reqwest::Client::new()
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", ephemeral),
            ("client_id", client.0.as_str()),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(tokens.status(), 200);
    for other in [
        "http://127.0.0.1:53412/other",
        "http://127.0.0.1:53412/callback?x=1",
        "http://localhost:53412/callback",
        "https://127.0.0.1:53412/callback",
    ] {
        let url = authorize_url(&app, &client.0, &[("redirect_uri", other)]);
        let page = browser().get(&url).send().await.unwrap();
        assert_eq!(page.status(), 400, "{other}");
    }
}

/// A double click on « Se connecter » sends the request twice at once, with
/// the cookies the browser had before either answer: one answer goes back to the
/// application; the other, finding the request answered, says so but keeps
/// the session it opened, so the browser is signed in whichever answer it
/// shows (and the application's next request passes).
#[tokio::test]
async fn a_login_submitted_twice_leaves_the_browser_signed_in_whichever_answer_it_shows() {
    let app = spawn_app().await;
    app.family().await;
    let client = app.client(false).await;
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form_page = plain
        .get(authorize_url(&app, &client.0, &[]))
        .send()
        .await
        .unwrap();
    let cookies: Vec<String> = form_page
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect();
    let page = form_page.text().await.unwrap();
    let submit = || {
        plain
            .post(app.url("/login"))
            .header("cookie", cookies.join("; "))
            .form(&[
                ("csrf", input_value(&page, "csrf").unwrap()),
                ("request", input_value(&page, "request").unwrap()),
                ("identifier", "claire.martin".to_owned()),
                ("password", PASSWORD.to_owned()),
            ])
            .send()
    };
    let (one, other) = tokio::join!(submit(), submit());
    let (mut first, mut second) = (one.unwrap(), other.unwrap());
    if first.status() != 303 {
        std::mem::swap(&mut first, &mut second);
    }
    assert_eq!(first.status(), 303);
    assert!(location(&first).starts_with(REDIRECT_URI));
    assert_eq!(second.status(), 400);
    let session = second
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_owned())
        .find(|c| c.starts_with("clef_session="))
        .expect("the second answer carries its session");
    assert!(
        second
            .text()
            .await
            .unwrap()
            .contains("Demande de connexion expirée")
    );
    let silent = plain
        .get(authorize_url(&app, &client.0, &[("prompt", "none")]))
        .header("cookie", session)
        .send()
        .await
        .unwrap();
    assert!(location_param(&silent, "code").is_some(), "signed in");
}

/// Under an https issuer the CSRF cookie is `__Host-`: Secure, this host,
/// path `/`, so a sibling subdomain cannot plant one; a planted plain
/// `clef_csrf` with a token of the attacker's choosing is refused.
#[tokio::test]
async fn under_https_the_csrf_cookie_is_host_only_and_a_planted_one_is_refused() {
    let app = spawn_app_with(|config| {
        config.issuer = url::Url::parse("https://clef.example.org").unwrap();
    })
    .await;
    app.family().await;
    let plain = reqwest::Client::new();
    let form = plain.get(app.url("/login")).send().await.unwrap();
    let set_cookie = form
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().to_owned())
        .find(|c| c.contains("csrf"))
        .expect("a CSRF cookie");
    assert!(set_cookie.starts_with("__Host-clef_csrf="), "{set_cookie}");
    assert!(set_cookie.contains("Secure") && set_cookie.contains("Path=/"));
    assert!(!set_cookie.to_lowercase().contains("domain="));
    let page = form.text().await.unwrap();
    let token = input_value(&page, "csrf").unwrap();
    let post = |cookie: String, csrf: String| {
        plain
            .post(app.url("/login"))
            .header("cookie", cookie)
            .form(&[
                ("csrf", csrf),
                ("identifier", "claire.martin".to_owned()),
                ("password", "pas-le-bon".to_owned()),
            ])
            .send()
    };
    let planted = "A".repeat(43);
    let forged = post(format!("clef_csrf={planted}"), planted.clone())
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let own = post(format!("__Host-clef_csrf={token}"), token)
        .await
        .unwrap();
    assert_eq!(own.status(), 401, "the form is checked: a wrong password");
}

/// Every answer carries the protective headers; HSTS only under https
/// (a development Clef on plain http must not pin a host to https).
#[tokio::test]
async fn pages_and_documents_carry_the_protective_headers() {
    let app = spawn_app().await;
    for path in ["/login", "/.well-known/openid-configuration", "/nulle-part"] {
        let response = reqwest::get(app.url(path)).await.unwrap();
        let headers = response.headers();
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        let policy = headers["content-security-policy"].to_str().unwrap();
        assert!(
            policy.contains("frame-ancestors 'none'"),
            "{path}: {policy}"
        );
        assert!(
            headers.get("strict-transport-security").is_none(),
            "{path}: not under http"
        );
    }
}

/// Forms are sent to Clef only (`form-action 'self'`), but a sign-in's
/// login page also names where its request sends the browser back to, for a
/// browser that holds the redirects after the form to the policy too.
#[tokio::test]
async fn forms_go_to_clef_only_and_a_sign_in_s_to_its_service() {
    let app = spawn_app().await;
    app.family().await;
    let (client_id, _) = app.client(false).await;
    let policy = |response: &reqwest::Response| {
        response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned()
    };
    let alone = reqwest::get(app.url("/login")).await.unwrap();
    assert!(
        policy(&alone).ends_with("; form-action 'self'"),
        "{}",
        policy(&alone)
    );
    let browser = browser();
    let sign_in = browser
        .get(authorize_url(&app, &client_id, &[]))
        .send()
        .await
        .unwrap();
    let origin = url::Url::parse(REDIRECT_URI)
        .unwrap()
        .origin()
        .ascii_serialization();
    assert!(
        policy(&sign_in).ends_with(&format!("; form-action 'self' {origin}")),
        "{}",
        policy(&sign_in)
    );
    // Mistyped, the form still leads there.
    let page = sign_in.text().await.unwrap();
    let wrong = submit_login(&app, &browser, &page, "claire.martin", "Mauvais0000").await;
    assert_eq!(wrong.status(), 401);
    assert!(
        policy(&wrong).ends_with(&format!(" {origin}")),
        "{}",
        policy(&wrong)
    );
}

/// Pages carry their icon: browsers ask for no `/favicon.ico` (a 404 in
/// every page's console).
#[tokio::test]
async fn pages_carry_their_icon() {
    let app = spawn_app().await;
    for path in ["/login", "/nulle-part"] {
        let page = reqwest::get(app.url(path))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            page.contains("<link rel=\"icon\" href=\"data:image/svg+xml,"),
            "{path}"
        );
    }
}

/// Nothing is cached unless its route says so: a redirect (it carries a
/// request's parameters), a page without a form, a health answer; the
/// public documents keep their own lifetimes.
#[tokio::test]
async fn only_public_documents_may_be_cached() {
    let app = spawn_app().await;
    let (client_id, _) = app.client(false).await;
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // Back to the client with login_required: nobody is signed in.
    let redirect = plain
        .get(authorize_url(&app, &client_id, &[("prompt", "none")]))
        .send()
        .await
        .unwrap();
    assert!(redirect.status().is_redirection(), "{}", redirect.status());
    let to_language = plain
        .get(app.url("/langue?lang=en&next=/login"))
        .send()
        .await
        .unwrap();
    assert!(to_language.status().is_redirection());
    for response in [redirect, to_language] {
        assert_eq!(response.headers()["cache-control"], "no-store");
    }
    for path in ["/", "/healthz"] {
        let response = plain.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.headers()["cache-control"], "no-store", "{path}");
    }
    let discovery = plain
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(discovery.headers()["cache-control"], "public, max-age=3600");
}

/// Under an https issuer the session cookie is `__Host-` too: a cookie of
/// the plain name, which a sibling subdomain could set for the whole
/// domain, signs no one in.
#[tokio::test]
async fn under_https_the_session_cookie_is_host_only_and_a_planted_one_opens_nothing() {
    let app = spawn_app_with(|config| {
        config.issuer = url::Url::parse("https://clef.example.org").unwrap();
    })
    .await;
    app.family().await;
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = plain.get(app.url("/login")).send().await.unwrap();
    assert_eq!(
        form.headers()["strict-transport-security"],
        "max-age=31536000",
        "browsers keep to https"
    );
    let csrf_cookie = form.headers()["set-cookie"].to_str().unwrap().to_owned();
    let csrf_cookie = csrf_cookie.split(';').next().unwrap().to_owned();
    let token = input_value(&form.text().await.unwrap(), "csrf").unwrap();
    let signed_in = plain
        .post(app.url("/login"))
        .header("cookie", &csrf_cookie)
        .form(&[
            ("csrf", token.as_str()),
            ("identifier", "claire.martin"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    let cookies: Vec<String> = signed_in
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().to_owned())
        .collect();
    for name in ["session", "device"] {
        let cookie = cookies
            .iter()
            .find(|c| c.contains(&format!("clef_{name}=")))
            .unwrap_or_else(|| panic!("a {name} cookie in {cookies:?}"));
        assert!(cookie.starts_with("__Host-clef_"), "{cookie}");
        assert!(cookie.contains("Secure") && cookie.contains("Path=/"));
        assert!(!cookie.to_lowercase().contains("domain="));
    }
    let session = cookies
        .iter()
        .find_map(|c| c.strip_prefix("__Host-clef_session="))
        .unwrap();
    let session = session.split(';').next().unwrap();
    let account_page = |cookie: String| {
        plain
            .get(app.url("/compte"))
            .header("cookie", cookie)
            .send()
    };
    let own = account_page(format!("__Host-clef_session={session}"))
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
    let planted = account_page(format!("clef_session={session}"))
        .await
        .unwrap();
    assert_eq!(planted.status(), 303, "the plain name is not read");
    assert_eq!(location(&planted), "/login");
}

/// The `sub` of the ID token a code gives.
async fn subject_of(app: &TestApp, client: &(String, Option<String>), code: &str) -> String {
    let tokens: serde_json::Value = exchanged(app, client, code).await;
    jwt_claims(tokens["id_token"].as_str().expect("an ID token"))["sub"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// OIDC Core §3.1.2.1, `prompt=select_account`: the person signed in is
/// offered to go on with their account, or to sign in with another.
#[tokio::test]
async fn prompt_select_account_offers_to_go_on_or_to_sign_in_with_another_account() {
    let app = spawn_app().await;
    app.family().await;
    app.account(
        "marc.durand",
        clef::accounts::AccountKind::Guardian,
        None,
        None,
    )
    .await;
    let client = app.client(false).await;
    let browser = browser();
    let back = authorize_and_login(
        &app,
        &browser,
        &authorize_url(&app, &client.0, &[]),
        "claire.martin",
    )
    .await;
    let claire = subject_of(&app, &client, &location_param(&back, "code").unwrap()).await;
    let select = authorize_url(&app, &client.0, &[("prompt", "select_account")]);

    let page = page_text(&browser, &select).await;
    assert!(
        page.contains(
            "Vous êtes connecté(e) en tant que <strong>Claire Martin (claire.martin)</strong>"
        ),
        "{page}"
    );
    let go_on = |page: String, csrf: Option<String>| {
        let browser = browser.clone();
        let app = &app;
        async move {
            let form = [
                (
                    "csrf",
                    csrf.unwrap_or_else(|| input_value(&page, "csrf").unwrap()),
                ),
                ("request", input_value(&page, "request").unwrap()),
            ];
            browser
                .post(app.url("/continuer"))
                .form(&form)
                .send()
                .await
                .unwrap()
        }
    };
    let forged = go_on(
        page.clone(),
        Some("forged-token-forged-token-forged-0000".into()),
    )
    .await;
    assert_eq!(forged.status(), 403, "going on needs the form's token");
    // The same choice after a mistyped password, and on the request's own
    // page (where the language link leads).
    let offered =
        "Vous êtes connecté(e) en tant que <strong>Claire Martin (claire.martin)</strong>";
    let mistyped = submit_login(&app, &browser, &page, "marc.durand", "pas-le-bon").await;
    assert_eq!(mistyped.status(), 401);
    assert!(mistyped.text().await.unwrap().contains(offered));
    let request = input_value(&page, "request").unwrap();
    let own_page = page_text(&browser, &app.url(&format!("/login?request={request}"))).await;
    assert!(own_page.contains(offered), "{own_page}");
    assert!(
        !page_text(
            &crate::helpers::browser(),
            &app.url(&format!("/login?request={request}"))
        )
        .await
        .contains("Vous êtes connecté(e)"),
        "not to another browser"
    );
    let went_on = go_on(page, None).await;
    let code = location_param(&went_on, "code").expect("a code, no password typed");
    assert_eq!(subject_of(&app, &client, &code).await, claire);

    // The same page signs another person in.
    let page = page_text(&browser, &select).await;
    let back = submit_login(&app, &browser, &page, "marc.durand", PASSWORD).await;
    let code = location_param(&back, "code").expect("a code for the other account");
    assert_ne!(subject_of(&app, &client, &code).await, claire);

    // An account closed meanwhile is not offered.
    sqlx::query("UPDATE accounts SET state = 'closed' WHERE identifier = 'marc.durand'")
        .execute(&app.app.db)
        .await
        .unwrap();
    let page = page_text(&browser, &select).await;
    assert!(!page.contains("Vous êtes connecté(e)"), "{page}");

    // Without a session, the login form as usual; with prompt=none, refused.
    let page = page_text(&crate::helpers::browser(), &select).await;
    assert!(!page.contains("Vous êtes connecté(e)"));
    let none = browser
        .get(authorize_url(
            &app,
            &client.0,
            &[("prompt", "none select_account")],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        location_param(&none, "error").as_deref(),
        Some("invalid_request")
    );
}

/// A parked request is answered by a sign-in made for it, or by the click
/// on « Continuer avec ce compte » of the session offered, within the
/// request's `max_age`: never by a link that brings another session along.
#[tokio::test]
async fn a_parked_request_is_not_answered_by_a_session_a_link_brings_along() {
    let app = spawn_app().await;
    app.family().await;
    let client = app.client(false).await;
    let signed_in = browser();
    let back = authorize_and_login(
        &app,
        &signed_in,
        &authorize_url(&app, &client.0, &[]),
        "claire.martin",
    )
    .await;
    assert!(location_param(&back, "code").is_some());
    app.clock.advance(5);

    // Someone else's login form, then a link to /continuer in Claire's browser.
    let stranger = browser();
    let form = page_text(&stranger, &authorize_url(&app, &client.0, &[])).await;
    let linked = signed_in
        .get(app.url(&format!(
            "/continuer?request={}",
            input_value(&form, "request").unwrap()
        )))
        .send()
        .await
        .unwrap();
    assert!(location_param(&linked, "code").is_none(), "{linked:?}");

    // The account choice: a link is not the click.
    let select = authorize_url(
        &app,
        &client.0,
        &[("prompt", "select_account"), ("max_age", "60")],
    );
    let choice = page_text(&signed_in, &select).await;
    let request = input_value(&choice, "request").unwrap();
    let linked = signed_in
        .get(app.url(&format!("/continuer?request={request}")))
        .send()
        .await
        .unwrap();
    assert!(location_param(&linked, "code").is_none());

    // The click, once the sign-in is older than max_age: the login form.
    let choice = page_text(&signed_in, &select).await;
    app.clock.advance(60);
    let late = signed_in
        .post(app.url("/continuer"))
        .form(&[
            ("csrf", input_value(&choice, "csrf").unwrap()),
            ("request", input_value(&choice, "request").unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(late.status(), 200);
    let form = late.text().await.unwrap();
    assert!(form.contains("Votre mot de passe"));
    let back = submit_login(&app, &signed_in, &form, "claire.martin", PASSWORD).await;
    assert!(
        location_param(&back, "code").is_some(),
        "a fresh sign-in answers it"
    );
}

/// « Continuer avec ce compte » clicked twice, for a service that asks for
/// consent: the second click is answered as the first (the consent page),
/// and the consent page is still there. Another session cannot take it away.
#[tokio::test]
async fn a_double_click_on_continue_keeps_the_consent_page() {
    let app = spawn_app().await;
    app.family().await;
    let client = app.third_party_client().await;
    let browser = browser();
    let login = page_text(&browser, &app.url("/login")).await;
    let signed_in = submit_login(&app, &browser, &login, "claire.martin", PASSWORD).await;
    assert_eq!(signed_in.status(), 303);
    let select = authorize_url(&app, &client.0, &[("prompt", "select_account")]);
    let page = page_text(&browser, &select).await;
    let form = [
        ("csrf", input_value(&page, "csrf").unwrap()),
        ("request", input_value(&page, "request").unwrap()),
    ];
    let click = || async {
        browser
            .post(app.url("/continuer"))
            .form(&form)
            .send()
            .await
            .unwrap()
    };
    let first = click().await;
    let second = click().await;
    assert_eq!(first.status(), 303);
    assert_eq!(second.status(), 303, "{:?}", second.headers());
    assert_eq!(location(&first), location(&second));
    assert!(location(&first).starts_with("/consentement?request="));

    // Another signed-in browser posting the same id leaves it in place.
    let other = crate::helpers::browser();
    let login = page_text(&other, &app.url("/login")).await;
    submit_login(&app, &other, &login, "lea.martin", PASSWORD).await;
    let account = page_text(&other, &app.url("/compte")).await;
    let stranger = other
        .post(app.url("/consentement"))
        .form(&[
            ("csrf", input_value(&account, "csrf").unwrap()),
            ("request", form[1].1.clone()),
            ("decision", "refuse".to_owned()),
        ])
        .send()
        .await
        .unwrap();
    assert_ne!(stranger.status(), 303);
    let consent = browser
        .get(app.url(&location(&first)))
        .send()
        .await
        .unwrap();
    assert_eq!(consent.status(), 200, "the consent page is still there");
}
