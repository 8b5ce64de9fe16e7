//! The English interface: `ui_locales`, then the person's choice (the language
//! link, remembered in a cookie), then `Accept-Language`; French by default.

use crate::helpers::*;

/// Words of the French login page that must not survive in the English one.
const FRENCH_MARKERS: &[&str] = &[
    "Identifiant",
    "identifiant",
    "mot de passe",
    "Mot de passe",
    "Connexion",
    "Valider",
    "oublié",
    "Connectez-vous",
    "établissements",
];

/// The text of a page, without its tags (nor the paths in its links).
fn visible_text(html: &str) -> String {
    html.split('<')
        .map(|piece| piece.split_once('>').map_or(piece, |(_, text)| text))
        .collect::<Vec<_>>()
        .join(" ")
}

fn assert_english(html: &str) {
    assert!(html.contains("<html lang=\"en\">"), "{html}");
    let text = visible_text(html);
    for marker in FRENCH_MARKERS {
        assert!(
            !text.contains(marker),
            "French « {marker} » left on an English page:\n{html}"
        );
    }
}

async fn login_page(
    app: &TestApp,
    browser: &reqwest::Client,
    extra: &[(&str, &str)],
    language: Option<&str>,
) -> String {
    let (client_id, _) = app.client(false).await;
    let mut request = browser.get(authorize_url(app, &client_id, extra));
    if let Some(language) = language {
        request = request.header("accept-language", language);
    }
    let page = request.send().await.unwrap();
    assert_eq!(page.status(), 200);
    page.text().await.unwrap()
}

#[tokio::test]
async fn accept_language_english_gives_an_english_login_page() {
    let app = spawn_app().await;
    app.family().await;
    let html = login_page(&app, &browser(), &[], Some("en-GB,en;q=0.9,fr;q=0.5")).await;
    assert_english(&html);
    assert!(html.contains("<h1>Sign in</h1>"));
    assert!(html.contains("Your username") && html.contains("Your password"));
    assert!(html.contains("forgotten username?") && html.contains("forgotten password?"));
    assert!(
        !html.contains(['\u{a0}', '\u{202f}']),
        "French typography stays on French pages"
    );
    assert!(
        html.contains(r#"lang="fr" hreflang="fr">Français</a>"#),
        "the link to French is marked as French"
    );
}

#[tokio::test]
async fn french_stays_the_default_and_offers_english() {
    let app = spawn_app().await;
    app.family().await;
    for language in [
        None,
        Some("de-DE,de;q=0.9"),
        Some("fr-FR,fr;q=0.9,en;q=0.8"),
    ] {
        let html = login_page(&app, &browser(), &[], language).await;
        assert!(html.contains("<html lang=\"fr\">"));
        assert!(html.contains("Votre identifiant"));
        assert!(html.contains(r#"lang="en" hreflang="en">English</a>"#));
    }
}

#[tokio::test]
async fn ui_locales_english_wins_over_a_french_browser_for_the_whole_flow() {
    let app = spawn_app().await;
    app.family().await;
    let browser = browser();
    let html = login_page(&app, &browser, &[("ui_locales", "de en fr")], Some("fr-FR")).await;
    assert_english(&html);
    // The next page of the flow, a refused sign-in, speaks English too.
    let wrong = submit_login(&app, &browser, &html, "claire.martin", "pas-le-bon").await;
    assert_eq!(wrong.status(), 401);
    let wrong = wrong.text().await.unwrap();
    assert_english(&wrong);
    assert!(wrong.contains("Incorrect username or password."));
    // A new flow without `ui_locales` follows the browser again.
    let html = login_page(&app, &browser, &[], Some("fr-FR")).await;
    assert!(html.contains("<html lang=\"fr\">"));
}

/// The service asked for French; the person switches to English on the
/// sign-in page: the same request goes on in English, to its code, and a
/// refused sign-in's page links back to the same request too.
#[tokio::test]
async fn the_language_link_of_a_service_sign_in_keeps_the_request() {
    let app = spawn_app().await;
    app.family().await;
    let browser = browser();
    let (client_id, _) = app.client(false).await;
    let first = browser
        .get(authorize_url(&app, &client_id, &[("ui_locales", "fr")]))
        .send()
        .await
        .unwrap();
    let flow = first
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("clef_ui="))
        .expect("the flow's language remembered");
    assert!(
        flow.starts_with("clef_ui=fr") && flow.contains("Max-Age=1800"),
        "the flow's language lasts as long as its request: {flow}"
    );
    let html = first.text().await.unwrap();
    assert!(html.contains("<html lang=\"fr\">"));
    let request = input_value(&html, "request").expect("the request's id");
    let link = |html: &str| {
        html.split("<a class=\"lang\" href=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("a language link")
            .replace("&amp;", "&")
    };
    let wrong = submit_login(&app, &browser, &html, "claire.martin", "pas-le-bon").await;
    let wrong = wrong.text().await.unwrap();
    assert_eq!(
        link(&wrong),
        format!("/langue?lang=en&next=%2Flogin%3Frequest%3D{request}")
    );
    let switched = browser.get(app.url(&link(&html))).send().await.unwrap();
    let english = page_text(&browser, &app.url(&location(&switched))).await;
    assert_english(&english);
    assert_eq!(input_value(&english, "request").as_deref(), Some(&*request));
    let signed_in = submit_login(&app, &browser, &english, "claire.martin", PASSWORD).await;
    assert!(
        location_param(&signed_in, "code").is_some(),
        "{signed_in:?}"
    );
    // An unknown or answered request: « demande expirée », not another form.
    let gone = browser
        .get(app.url(&format!("/login?request={request}")))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 400);
}

#[tokio::test]
async fn ui_locales_french_wins_over_an_english_browser() {
    let app = spawn_app().await;
    app.family().await;
    let html = login_page(&app, &browser(), &[("ui_locales", "fr-FR")], Some("en")).await;
    assert!(html.contains("<html lang=\"fr\">") && html.contains("Votre identifiant"));
}

#[tokio::test]
async fn the_language_link_switches_and_is_remembered() {
    let app = spawn_app().await;
    app.family().await;
    let browser = browser();
    let html = login_page(&app, &browser, &[], None).await;
    let href = language_link(&html);
    // Back to this request's form (the /authorize address may not be
    // replayable: a pushed request is spent once read).
    assert!(
        href.starts_with("/langue?lang=en&next=%2Flogin%3Frequest%3D"),
        "{href}"
    );
    let switched = browser.get(app.url(&href)).send().await.unwrap();
    assert_eq!(switched.status(), 303);
    assert!(location(&switched).starts_with("/login?request="));
    assert!(
        switched.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("clef_lang=en")
    );
    let back = page_text(&browser, &app.url(&location(&switched))).await;
    assert_english(&back);
    // Remembered: another page, without any preference from the browser.
    let missing = page_text(&browser, &app.url("/nulle-part")).await;
    assert!(missing.contains("<html lang=\"en\">") && missing.contains("Page not found"));
    // The person's choice wins over Accept-Language, and can be undone.
    let html = login_page(&app, &browser, &[], Some("fr")).await;
    assert_english(&html);
    browser
        .get(app.url("/langue?lang=fr&next=/"))
        .send()
        .await
        .unwrap();
    let html = login_page(&app, &browser, &[], Some("en")).await;
    assert!(html.contains("<html lang=\"fr\">"));
}

#[tokio::test]
async fn the_language_switch_never_leaves_clef() {
    let app = spawn_app().await;
    for next in [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "evil.example",
        "javascript:alert(1)",
    ] {
        let response = browser()
            .get(app.url("/langue"))
            .query(&[("lang", "en"), ("next", next)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303);
        assert_eq!(location(&response), "/", "{next}");
    }
}

#[tokio::test]
async fn english_error_pages_and_field_errors() {
    let app = spawn_app().await;
    let browser = browser();
    let response = browser
        .get(app.url("/authorize?client_id=inconnu&response_type=code"))
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    let html = response.text().await.unwrap();
    assert!(html.contains("<html lang=\"en\">"));
    assert!(html.contains("is not registered with Clef"), "{html}");
    assert!(!html.contains("Demande") && !html.contains("application qui"));
}

/// A posted authorization request too long to read: refused in the
/// browser's language all the same.
#[tokio::test]
async fn an_oversized_posted_request_is_refused_in_english() {
    let app = spawn_app().await;
    let body = format!("client_id=x&state={}", "a".repeat(100 * 1024));
    let response = browser()
        .post(app.url("/authorize"))
        .header("accept-language", "en")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let html = response.text().await.unwrap();
    assert!(html.contains("<html lang=\"en\">"), "{html}");
    assert!(html.contains("Request too large"), "{html}");
    // A body that is not a form, and a form address asked with another method.
    let response = browser()
        .post(app.url("/login"))
        .header("accept-language", "en")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let html = response.text().await.unwrap();
    assert!(html.contains("This request could not be read."), "{html}");
    assert!(!html.contains("Content-Type"), "{html}");
    let response = browser()
        .delete(app.url("/login"))
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Page not available")
    );
}

/// Words and letters only French text has; the names the test data gives
/// (the service, the people) are removed first.
fn assert_no_french(html: &str) {
    assert!(html.contains("<html lang=\"en\">"), "{html}");
    let text = visible_text(html)
        .replace("Cahier de textes Exemple", "")
        .replace("Lycée Albert Châtelet", "")
        .replace("Collège Jean Moulin", "")
        .replace("Français", "");
    for marker in [
        "é",
        "è",
        "à",
        "ê",
        "«",
        " vous ",
        " votre ",
        " vos ",
        " le ",
        " la ",
        " les ",
        " des ",
        " du ",
        " de ",
        " et ",
        " ou ",
        "Mon compte",
    ] {
        assert!(!text.contains(marker), "French « {marker} » left:\n{text}");
    }
}

#[tokio::test]
async fn an_english_person_goes_through_consent_account_and_logout_in_english() {
    let app = spawn_app().await;
    app.family().await;
    let client = app.third_party_client().await;
    let browser = browser();
    browser
        .get(app.url("/langue?lang=en&next=/"))
        .send()
        .await
        .unwrap();
    let url = authorize_url(
        &app,
        &client.0,
        &[("scope", "openid profile children offline_access")],
    );
    let page = page_text(&browser, &url).await;
    assert_no_french(&page);
    let signed_in = submit_login(&app, &browser, &page, "claire.martin", PASSWORD).await;
    let consent = page_text(&browser, &app.url(&location(&signed_in))).await;
    assert_no_french(&consent);
    assert!(consent.contains("the list of your children"));
    let request = input_value(&consent, "request").unwrap();
    assert!(
        consent.contains(&format!("next=%2Fconsentement%3Frequest%3D{request}\"")),
        "the language link comes back to this request's consent"
    );
    let accepted = answer_consent(&app, &browser, &consent, "accept").await;
    assert!(location_param(&accepted, "code").is_some());

    let account = page_text(&browser, &app.url("/compte")).await;
    assert_no_french(&account);
    assert!(account.contains("<h1>My account</h1>") && account.contains(" at "));
    // Dates as English readers write them: no 03/09, which reads as 9 March.
    let year = time::OffsetDateTime::now_utc().year();
    assert!(
        account.contains(&format!(" {year} at ")) && !account.contains(&format!("/{year}")),
        "{account}"
    );
    assert!(account.contains("Born on 3 February 2009"), "{account}");

    // A refused change of password, its message in English.
    let refused = browser
        .post(app.url("/compte/mot-de-passe"))
        .form(&[
            ("csrf", input_value(&account, "csrf").unwrap().as_str()),
            ("current_password", "pas-le-bon"),
            ("new_password", "Nouveau2026"),
            ("new_password_confirmation", "Nouveau2026"),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_no_french(&refused);
    assert!(
        refused.contains("The current password is incorrect."),
        "{refused}"
    );

    let logout = page_text(&browser, &app.url("/logout")).await;
    assert_no_french(&logout);
    let out = browser
        .post(app.url("/logout"))
        .form(&[
            ("csrf", input_value(&logout, "csrf").unwrap().as_str()),
            ("confirm", "1"),
        ])
        .send()
        .await
        .unwrap();
    let out = if out.status().is_redirection() {
        page_text(&browser, &app.url(&location(&out))).await
    } else {
        out.text().await.unwrap()
    };
    assert_no_french(&out);
    assert!(out.contains("You are signed out"), "{out}");
}

#[tokio::test]
async fn mails_follow_the_language_of_the_page_that_sends_them() {
    let app = spawn_app().await;
    app.family().await;
    let browser = browser();
    browser
        .get(app.url("/langue?lang=en&next=/"))
        .send()
        .await
        .unwrap();
    let page = page_text(&browser, &app.url("/login")).await;
    let signed_in = submit_login(&app, &browser, &page, "claire.martin", PASSWORD).await;
    assert_eq!(signed_in.status(), 303);
    let account = page_text(&browser, &app.url("/compte")).await;
    let changed = browser
        .post(app.url("/compte/adresse"))
        .form(&[
            ("csrf", input_value(&account, "csrf").unwrap().as_str()),
            ("current_password", PASSWORD),
            ("email", "claire.nouvelle@example.org"),
            ("email_confirmation", "claire.nouvelle@example.org"),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        changed.contains("An email has just been sent to your new address"),
        "{changed}"
    );

    let confirm = app.last_mail_to("claire.nouvelle@example.org");
    assert_eq!(confirm.subject, "Update of your email address");
    assert_eq!(confirm.language.as_deref(), Some("en"));
    assert!(confirm.text.starts_with("Hello ") && !confirm.text.contains("Bonjour"));
    // Its deadline as English readers write it.
    let until = confirm.text.split("stays valid until ").nth(1).unwrap();
    let until: Vec<&str> = until.split('.').next().unwrap().split(' ').collect();
    assert!(
        until.len() == 3 && until[1].chars().all(|c| c.is_ascii_alphabetic()),
        "{}",
        confirm.text
    );
    let notice = app.last_mail_to("claire.martin@example.org");
    assert_eq!(notice.subject, "Change of your account's email address");
    assert!(
        notice
            .text
            .contains("the new address will be c***@example.org")
    );
}

#[tokio::test]
async fn ui_locales_in_a_posted_authorization_request_is_honoured() {
    let app = spawn_app().await;
    app.family().await;
    let (client_id, _) = app.client(false).await;
    let url = authorize_url(&app, &client_id, &[("ui_locales", "en")]);
    let (_, query) = url.split_once('?').unwrap();
    let browser = browser();
    let posted = browser
        .post(app.url("/authorize"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept-language", "fr")
        .body(query.to_owned())
        .send()
        .await
        .unwrap();
    // No session cookie came with the POST: the same request as a GET.
    assert_eq!(posted.status(), 303);
    let page = browser
        .get(app.url(&location(&posted)))
        .header("accept-language", "fr")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert_english(&html);
    assert!(html.contains("<h1>Sign in</h1>"));
}

/// `ui_locales` inside a pushed request (RFC 9126): the browser's URL holds
/// only the `request_uri`, and the whole flow speaks the language pushed.
#[tokio::test]
async fn ui_locales_in_a_pushed_request_is_honoured_for_the_whole_flow() {
    let app = spawn_app().await;
    app.family().await;
    let client = app.client(false).await;
    let pushed: serde_json::Value = reqwest::Client::new()
        .post(app.url("/par"))
        .basic_auth(&client.0, client.1.as_deref())
        .form(&[
            ("response_type", "code"),
            ("redirect_uri", REDIRECT_URI),
            ("scope", "openid"),
            ("ui_locales", "en"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut url = url::Url::parse(&app.url("/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", &client.0)
        .append_pair("request_uri", pushed["request_uri"].as_str().unwrap());
    let browser = browser();
    let page = browser
        .get(url.as_str())
        .header("accept-language", "fr")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert_english(&html);
    let wrong = submit_login(&app, &browser, &html, "claire.martin", "pas-le-bon").await;
    assert_eq!(wrong.status(), 401);
    assert_english(&wrong.text().await.unwrap());
}

/// RP-Initiated Logout §2: `ui_locales` sets the language of the logout
/// confirmation, whatever the browser's, and of the page after it; for that
/// logout only.
#[tokio::test]
async fn the_logout_page_follows_ui_locales() {
    let app = spawn_app().await;
    app.family().await;
    let browser = browser();
    let page = page_text(&browser, &app.url("/login")).await;
    let signed_in = submit_login(&app, &browser, &page, "claire.martin", PASSWORD).await;
    assert_eq!(signed_in.status(), 303);
    let confirm = browser
        .get(app.url("/logout?ui_locales=en"))
        .header("accept-language", "fr-FR")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(confirm.contains("lang=\"en\""), "{confirm}");
    let action = confirm
        .split(r#"<form method="post" action=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .replace("&#x2f;", "/");
    let done = browser
        .post(app.url(&action))
        .header("accept-language", "fr-FR")
        .form(&[
            ("csrf", input_value(&confirm, "csrf").unwrap().as_str()),
            ("confirm", "1"),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(done.contains("lang=\"en\""), "{done}");
    assert!(!done.contains("déconnecté"), "{done}");
    for (path, lang) in [("/logout?ui_locales=en", "en"), ("/logout", "fr")] {
        let page = browser
            .get(app.url(path))
            .header("accept-language", "fr-FR")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains(&format!("lang=\"{lang}\"")), "{path}: {page}");
    }
    // A relying party's POSTed request names it in its form (§2: GET and
    // POST alike): the confirmation, and its form's own answer, in English.
    let page = page_text(&browser, &app.url("/login")).await;
    submit_login(&app, &browser, &page, "claire.martin", PASSWORD).await;
    let posted = browser
        .post(app.url("/logout"))
        .header("accept-language", "fr-FR")
        .form(&[("ui_locales", "en"), ("state", "s")])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(posted.contains("lang=\"en\""), "{posted}");
    assert!(posted.contains("ui_locales=en"), "{posted}");
}

/// The language link used while signed in is the person's choice: the mails
/// someone else's action sends them (the school correcting their address)
/// speak it. A browser signed in to no one changes no account's, nor does a
/// link on another site followed by the signed-in browser.
#[tokio::test]
async fn the_language_chosen_while_signed_in_is_the_persons() {
    let app = spawn_app().await;
    app.family().await;
    let claire = app.account_named("claire.martin").await;
    let language = async || {
        clef::accounts::store::locale_of(&app.app.db, &claire.id)
            .await
            .unwrap()
    };
    assert_eq!(language().await, None, "never signed in");
    let signed_in = browser();
    let page = page_text(&signed_in, &app.url("/login")).await;
    let response = submit_login(&app, &signed_in, &page, "claire.martin", PASSWORD).await;
    assert_eq!(response.status(), 303);
    assert_eq!(language().await, Some(clef::domain::Locale::Fr));
    let from_elsewhere = signed_in
        .get(app.url("/langue?lang=en&next=/compte"))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(location(&from_elsewhere), "/compte");
    assert_eq!(language().await, Some(clef::domain::Locale::Fr));
    let switched = signed_in
        .get(app.url("/langue?lang=en&next=/compte"))
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(location(&switched), "/compte");
    assert_eq!(language().await, Some(clef::domain::Locale::En));
    browser()
        .get(app.url("/langue?lang=fr&next=/"))
        .send()
        .await
        .unwrap();
    assert_eq!(language().await, Some(clef::domain::Locale::En));
}
