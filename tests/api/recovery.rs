//! Self-service recovery (SPEC §3.4, §3.5, §3.7; issue 8), through the pages
//! as a parent meets them: the identifier reminder, the password reset by an
//! emailed link and by an SMS code (outbox, real SMTP server, HTTP gateway),
//! what a reset ends, the links and codes that must not work, the limits, and
//! the answers that must not tell accounts apart.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::routing::post;
use clef::accounts::AccountKind;
use serde_json::Value;

use crate::helpers::*;

const NEW_PASSWORD: &str = "Nouveau2026x";

/// A page's text as read: apostrophes are escaped in messages.
fn unescaped(html: &str) -> String {
    html.replace("&#x27;", "'").replace("&quot;", "\"")
}

/// A form page's CSRF field.
fn csrf(page: &str) -> String {
    input_value(page, "csrf").expect("csrf field")
}

/// GETs `path` in `browser` (which sets the CSRF cookie) and POSTs `form` to
/// `action` with the page's token.
async fn submit(
    app: &TestApp,
    browser: &reqwest::Client,
    path: &str,
    action: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let page = page_text(browser, &app.url(path)).await;
    post_with(app, browser, &page, action, form).await
}

/// POSTs `form` to `action` with the CSRF token of `page`.
async fn post_with(
    app: &TestApp,
    browser: &reqwest::Client,
    page: &str,
    action: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let token = csrf(page);
    let mut fields = vec![("csrf", token.as_str())];
    fields.extend_from_slice(form);
    browser
        .post(app.url(action))
        .form(&fields)
        .send()
        .await
        .unwrap()
}

/// Types the code of the SMS `text` on the code screen `page`.
async fn enter_sms_code(
    app: &TestApp,
    browser: &reqwest::Client,
    page: &str,
    text: &str,
) -> reqwest::Response {
    let challenge = input_value(page, "challenge").unwrap();
    post_with(
        app,
        browser,
        page,
        "/mot-de-passe-oublie/code",
        &[("challenge", &challenge), ("code", &code_in(text))],
    )
    .await
}

/// Asks for a password reset by `channel` for `identifier`; answers the page.
async fn request_reset(
    app: &TestApp,
    browser: &reqwest::Client,
    identifier: &str,
    channel: &str,
) -> (u16, String) {
    let choice = submit(
        app,
        browser,
        "/mot-de-passe-oublie",
        "/mot-de-passe-oublie",
        &[("identifier", identifier)],
    )
    .await;
    assert_eq!(choice.status(), 200);
    let choice = choice.text().await.unwrap();
    let taken = post_with(
        app,
        browser,
        &choice,
        "/mot-de-passe-oublie/envoyer",
        &[("identifier", identifier), ("channel", channel)],
    )
    .await;
    (
        taken.status().as_u16(),
        unescaped(&taken.text().await.unwrap()),
    )
}

/// The 13-digit reference shown on a page.
fn reference(page: &str) -> String {
    let start = page
        .find("class=\"reference\">")
        .unwrap_or_else(|| panic!("no reference in {page}"))
        + "class=\"reference\">".len();
    let reference: String = page[start..].chars().take(13).collect();
    assert!(
        reference.len() == 13 && reference.bytes().all(|b| b.is_ascii_digit()),
        "{reference:?} is 13 digits"
    );
    reference
}

/// How many mails to `to` there are once background sends have had time to land.
async fn mails_to(app: &TestApp, to: &str) -> usize {
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.outbox().iter().filter(|m| m.to == to).count()
}

/// The SMS written to the outbox, oldest first: (to, text), once those on
/// their way are written (they leave beside the answer): when two reads a
/// moment apart agree.
async fn sms_outbox(app: &TestApp) -> Vec<(String, String)> {
    let mut seen = sms_written(app);
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = sms_written(app);
        if now.len() == seen.len() {
            return now;
        }
        seen = now;
    }
}

fn sms_written(app: &TestApp) -> Vec<(String, String)> {
    let dir = app.app.config.outbox_dir().join("sms");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut messages: Vec<(std::time::SystemTime, Value)> = entries
        .filter_map(Result::ok)
        // One being written.
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| {
            (
                e.metadata().unwrap().modified().unwrap(),
                serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap(),
            )
        })
        .collect();
    messages.sort_by_key(|(at, _)| *at);
    messages
        .into_iter()
        .map(|(_, m)| {
            (
                m["to"].as_str().unwrap().to_owned(),
                m["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The 6-digit code in an SMS text.
fn code_in(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|part| part.len() == 6)
        .unwrap_or_else(|| panic!("no code in {text:?}"))
        .to_owned()
}

/// Fills « Modifiez votre mot de passe » found in `page`.
async fn reset_with(
    app: &TestApp,
    browser: &reqwest::Client,
    page: &str,
    identifier: &str,
    password: &str,
) -> reqwest::Response {
    let token = input_value(page, "jeton").expect("the link's token in the form");
    post_with(
        app,
        browser,
        page,
        "/mot-de-passe-oublie/modifier",
        &[
            ("jeton", &token),
            ("identifier", identifier),
            ("password", password),
            ("password_confirmation", password),
        ],
    )
    .await
}

/// Opens the reset link of a mail; answers the page.
async fn open_link(browser: &reqwest::Client, mail: &ReceivedMail) -> reqwest::Response {
    let link = mail.link("http");
    assert!(
        link.contains("/mot-de-passe-oublie/modifier?jeton="),
        "{link}"
    );
    browser.get(&link).send().await.unwrap()
}

async fn login_status(app: &TestApp, identifier: &str, password: &str) -> u16 {
    let browser = browser();
    let page = page_text(&browser, &app.url("/login")).await;
    let response = submit_login(app, &browser, &page, identifier, password).await;
    response.status().as_u16()
}

async fn set_phone(app: &TestApp, identifier: &str, phone: &str) {
    let account = app.account_named(identifier).await;
    let phone = clef::provisioning::csv_file::Phone::parse(phone).unwrap();
    clef::accounts::store::set_phone(&app.app.db, &account.id, Some(&phone), app.app.now())
        .await
        .unwrap();
}

/// Makes an account's address unconfirmed (as if its link was never clicked).
async fn unconfirm(app: &TestApp, identifier: &str) {
    sqlx::query("UPDATE accounts SET email_verified_at = NULL WHERE identifier = $1")
        .bind(identifier)
        .execute(&app.app.db)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_login_page_links_lead_to_the_recovery_pages() {
    let app = spawn_app().await;
    let login = page_text(&browser(), &app.url("/login")).await;
    for (path, title) in [
        ("/identifiant-oublie", "Identifiant oublié"),
        ("/mot-de-passe-oublie", "Mot de passe oublié"),
    ] {
        assert!(login.contains(&format!("href=\"{path}\"")));
        let page = browser().get(app.url(path)).send().await.unwrap();
        assert_eq!(page.status(), 200);
        assert!(page.text().await.unwrap().contains(title));
    }
}

#[tokio::test]
async fn a_forgotten_identifier_is_mailed_with_the_children_to_a_confirmed_address_only() {
    let app = spawn_app().await;
    app.family().await;
    let browser = browser();
    let done = submit(
        &app,
        &browser,
        "/identifiant-oublie",
        "/identifiant-oublie",
        &[("email", "Claire.Martin@EXAMPLE.org")],
    )
    .await;
    assert_eq!(done.status(), 200);
    assert!(
        done.text()
            .await
            .unwrap()
            .contains("Vous ne recevez rien\u{202f}?"),
        "French typography: a narrow no-break space before « ? »"
    );
    // The domain is case-insensitive; the address is the one confirmed.
    let mail = app
        .mail_to("claire.martin@example.org", "identifiant")
        .await;
    assert!(
        mail.text.contains("identifiant\u{a0}: claire.martin")
            && mail
                .html
                .contains("identifiant\u{a0}: <strong>claire.martin</strong>"),
        "a no-break space before « : », in both parts: {}",
        mail.text
    );
    assert!(mail.text.contains("compte de responsable"));
    assert!(
        mail.text
            .contains(&fr("Lea Martin (Collège Jean Moulin, 5 B)")),
        "{}",
        mail.text
    );
    assert!(
        mail.text
            .contains("Hugo Martin (Lycée Albert Châtelet, 2nde 3)")
    );

    // An address that was never confirmed receives nothing.
    let other = app
        .account("paul.durand", AccountKind::Guardian, None, None)
        .await;
    unconfirm(&app, &other.identifier).await;
    let done = submit(
        &app,
        &browser,
        "/identifiant-oublie",
        "/identifiant-oublie",
        &[("email", "paul.durand@example.org")],
    )
    .await;
    assert_eq!(done.status(), 200);
    assert_eq!(mails_to(&app, "paul.durand@example.org").await, 0);
}

#[tokio::test]
async fn the_identifier_reminder_goes_through_a_real_smtp_server() {
    let smtp = SmtpServer::start().await;
    let port = smtp.port;
    let app = spawn_app_with(|config| {
        config.smtp_url = Some(format!("smtp://127.0.0.1:{port}").into());
    })
    .await;
    app.family().await;
    let done = submit(
        &app,
        &browser(),
        "/identifiant-oublie",
        "/identifiant-oublie",
        &[("email", "claire.martin@example.org")],
    )
    .await;
    assert_eq!(done.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mail = loop {
        if let Some(mail) = smtp.received().into_iter().next() {
            break mail;
        }
        assert!(Instant::now() < deadline, "the SMTP server got no mail");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(mail.to, "claire.martin@example.org");
    assert_eq!(mail.subject, "Rappel de votre identifiant");
    assert!(mail.text.contains("claire.martin"));
}

/// A relying party's back-channel logout endpoint; counts the tokens it gets.
async fn backchannel_receiver() -> (String, Arc<Mutex<Vec<String>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let store = received.clone();
    let app = axum::Router::new().route(
        "/backchannel",
        post(
            move |axum::Form(form): axum::Form<std::collections::HashMap<String, String>>| {
                let store = store.clone();
                async move {
                    store
                        .lock()
                        .unwrap()
                        .push(form.get("logout_token").cloned().unwrap_or_default());
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

#[tokio::test]
async fn a_reset_by_mail_changes_the_password_and_ends_sessions_refresh_tokens_and_relying_parties()
{
    let app = spawn_app().await;
    app.family().await;
    let (uri, logout_tokens) = backchannel_receiver().await;
    let client = app
        .client_with(|new| {
            new.backchannel_logout_uri = Some(url::Url::parse(&uri).unwrap());
        })
        .await;
    // Claire is signed in at the ENT, which holds a refresh token.
    let signed_in = browser();
    let url = authorize_url(&app, &client.0, &[("scope", "openid offline_access")]);
    let back = authorize_and_login(&app, &signed_in, &url, "claire.martin").await;
    let code = location_param(&back, "code").unwrap();
    let tokens: Value = exchanged(&app, &client, &code).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(account_page(&app, &signed_in).await.status(), 200);
    // And a service that gets no refresh token holds an access token alone.
    let service = app
        .client_with(|new| {
            new.grant_types =
                Some(clef::oidc::clients::GrantTypes::parse("authorization_code").unwrap());
        })
        .await;
    let back = signed_in
        .get(authorize_url(&app, &service.0, &[]))
        .send()
        .await
        .unwrap();
    let code = location_param(&back, "code").unwrap();
    let tokens: Value = exchange(&app, &service, &code, None)
        .await
        .json()
        .await
        .unwrap();
    let lone_access = tokens["access_token"].as_str().unwrap().to_owned();
    assert!(tokens.get("refresh_token").is_none());
    assert_eq!(userinfo_status(&app, &lone_access).await, 200);
    // A third-party service holds a consent and accepted terms (whoever held
    // the account may have given them).
    let third_party = app.third_party_client().await;
    let claire = app.account_named("claire.martin").await;
    for statement in [
        "INSERT INTO consents (account_id, client_id, scopes, granted_at) VALUES ($1, $2, 'openid children', 0)",
        "INSERT INTO terms_acceptances (account_id, client_id, version, accepted_at) VALUES ($1, $2, 'v1', 0)",
    ] {
        sqlx::query(statement)
            .bind(&claire.id)
            .bind(&third_party.0)
            .execute(&app.app.db)
            .await
            .unwrap();
    }
    app.clock.advance(1);

    let browser = browser();
    let choice = submit(
        &app,
        &browser,
        "/mot-de-passe-oublie",
        "/mot-de-passe-oublie",
        &[("identifier", "Claire.Martin")],
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(choice.contains("value=\"mail\""));
    let (status, taken) = request_reset(&app, &browser, "claire.martin", "mail").await;
    assert_eq!(status, 200);
    let reference = reference(&taken);
    assert!(
        taken.contains("Votre demande de réinitialisation de mot de passe a été prise en compte.")
    );

    let mail = app.mail_to("claire.martin@example.org", &reference).await;
    assert_eq!(
        mail.subject,
        format!("Demande de changement de mot de passe n° {reference}")
    );
    // The request taken is told by a page of its own: shown again (a
    // reload), it makes no new request, and the link mailed stays the one.
    let told = app.url(&format!(
        "/mot-de-passe-oublie/demande?reference={reference}"
    ));
    let before = app.outbox().len();
    let again = page_text(&browser, &told).await;
    assert!(again.contains(&reference), "{again}");
    assert_eq!(app.outbox().len(), before, "no new mail");
    let form = open_link(&browser, &mail).await;
    assert_eq!(form.status(), 200);
    let form = form.text().await.unwrap();
    assert!(form.contains("Modifiez votre mot de passe"));

    // The identifier must be the link's account.
    let wrong = reset_with(&app, &browser, &form, "lea.martin", NEW_PASSWORD).await;
    assert_eq!(wrong.status(), 400);
    assert!(
        wrong
            .text()
            .await
            .unwrap()
            .contains("aria-invalid=\"true\"")
    );
    // A password too weak, typed differently: both told at once, at their fields.
    let token = input_value(&form, "jeton").unwrap();
    let weak = post_with(
        &app,
        &browser,
        &form,
        "/mot-de-passe-oublie/modifier",
        &[
            ("jeton", &token),
            ("identifier", "claire.martin"),
            ("password", "court"),
            ("password_confirmation", "autre"),
        ],
    )
    .await;
    assert_eq!(weak.status(), 400);
    let weak = weak.text().await.unwrap();
    assert!(
        weak.contains(r#"aria-invalid="true" autofocus aria-describedby="erreur-password""#)
            && weak
                .contains(r#"aria-invalid="true" aria-describedby="erreur-password_confirmation""#)
            && weak.contains("La confirmation du mot de passe ne correspond pas."),
        "{weak}"
    );
    // Typed differently only: both fields come back empty, and the focus
    // goes to the first, where typing starts again.
    let token = input_value(&weak, "jeton").unwrap();
    let mismatch = post_with(
        &app,
        &browser,
        &weak,
        "/mot-de-passe-oublie/modifier",
        &[
            ("jeton", &token),
            ("identifier", "claire.martin"),
            ("password", NEW_PASSWORD),
            ("password_confirmation", "Autre2026clef!"),
        ],
    )
    .await;
    assert_eq!(mismatch.status(), 400);
    let mismatch = mismatch.text().await.unwrap();
    assert!(
        mismatch.contains(r#"autofocus aria-describedby="password-rule""#)
            && mismatch
                .contains(r#"aria-invalid="true" aria-describedby="erreur-password_confirmation""#)
            && mismatch.matches("autofocus").count() == 1,
        "{mismatch}"
    );
    // The identifier emptied: said empty, not someone else's.
    let token = input_value(&mismatch, "jeton").unwrap();
    let empty = post_with(
        &app,
        &browser,
        &mismatch,
        "/mot-de-passe-oublie/modifier",
        &[
            ("jeton", &token),
            ("identifier", ""),
            ("password", NEW_PASSWORD),
            ("password_confirmation", NEW_PASSWORD),
        ],
    )
    .await;
    assert_eq!(empty.status(), 400);
    let empty = empty.text().await.unwrap();
    assert!(
        empty.contains(&fr("Le champ « identifiant » est obligatoire.")),
        "{empty}"
    );
    let done = reset_with(&app, &browser, &form, "claire.martin", NEW_PASSWORD).await;
    assert_eq!(done.status(), 200);
    assert!(
        done.text()
            .await
            .unwrap()
            .contains("Votre mot de passe a été modifié avec succès.")
    );

    assert_eq!(
        login_status(&app, "claire.martin", PASSWORD).await,
        401,
        "the old password fails"
    );
    assert_eq!(
        login_status(&app, "claire.martin", NEW_PASSWORD).await,
        303,
        "the new one works"
    );
    assert_signed_out(&app, &signed_in, &client.0).await;
    let refreshed = refresh_grant(&app, &client, &refresh_token).await;
    assert_eq!(refreshed.status(), 400);
    let body: Value = refreshed.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(
        userinfo_status(&app, &lone_access).await,
        401,
        "an access token without a refresh family ends too"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while logout_tokens.lock().unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "no back-channel logout reached the ENT"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let notice = app
        .mail_to("claire.martin@example.org", "a été modifié")
        .await;
    assert!(notice.text.contains("Si ce n'était pas vous"));
    // The consent and the terms went with the old password: asked again.
    for table in ["consents", "terms_acceptances"] {
        let left: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM {table} WHERE account_id = $1"
        )))
        .bind(&claire.id)
        .fetch_one(&app.app.db)
        .await
        .unwrap();
        assert_eq!(left, 0, "{table}");
    }
}

#[tokio::test]
async fn replayed_expired_and_replaced_links_do_not_work() {
    let app = spawn_app().await;
    app.family().await;
    let browser = browser();
    let (_, first) = request_reset(&app, &browser, "claire.martin", "mail").await;
    let first = app
        .mail_to("claire.martin@example.org", &reference(&first))
        .await;
    let (_, second) = request_reset(&app, &browser, "claire.martin", "mail").await;
    let second = app
        .mail_to("claire.martin@example.org", &reference(&second))
        .await;

    // The newer request voided the older link.
    let voided = open_link(&browser, &first).await;
    assert_eq!(voided.status(), 410);
    assert!(
        voided
            .text()
            .await
            .unwrap()
            .contains("une demande plus récente")
    );

    let form = open_link(&browser, &second).await.text().await.unwrap();
    assert_eq!(
        reset_with(&app, &browser, &form, "claire.martin", NEW_PASSWORD)
            .await
            .status(),
        200
    );
    // Used once: the link and its form no longer work.
    assert_eq!(open_link(&browser, &second).await.status(), 410);
    assert_eq!(
        reset_with(&app, &browser, &form, "claire.martin", "Autre2026x")
            .await
            .status(),
        410
    );
    assert_eq!(login_status(&app, "claire.martin", NEW_PASSWORD).await, 303);

    // A link is good for an hour.
    let (_, third) = request_reset(&app, &browser, "claire.martin", "mail").await;
    let third = app
        .mail_to("claire.martin@example.org", &reference(&third))
        .await;
    app.clock.advance(3601);
    let expired = open_link(&browser, &third).await;
    assert_eq!(expired.status(), 410);
    assert!(expired.text().await.unwrap().contains("Ce lien a expiré."));
}

/// Someone who knows Claire's identifier keeps her account's failed-attempt
/// delay running: her reset link works all the same, and lifts it. A link
/// takes ten forms; beyond, it is spent.
#[tokio::test]
async fn a_reset_link_works_while_an_attacker_keeps_the_account_delayed() {
    let app = spawn_app().await;
    app.family().await;
    for _ in 0..8 {
        login_status(&app, "claire.martin", "not-her-password").await;
    }
    assert_eq!(
        login_status(&app, "claire.martin", "not-her-password").await,
        429
    );

    let browser = browser();
    let (status, taken) = request_reset(&app, &browser, "claire.martin", "mail").await;
    assert_eq!(status, 200);
    let mail = app
        .mail_to("claire.martin@example.org", &reference(&taken))
        .await;
    let form = open_link(&browser, &mail).await.text().await.unwrap();
    let done = reset_with(&app, &browser, &form, "Claire.Martin", NEW_PASSWORD).await;
    assert_eq!(done.status(), 200);
    assert_eq!(login_status(&app, "claire.martin", NEW_PASSWORD).await, 303);

    // Another link, and someone trying identifiers on it: ten forms, then spent.
    let (_, taken) = request_reset(&app, &browser, "claire.martin", "mail").await;
    let mail = app
        .mail_to("claire.martin@example.org", &reference(&taken))
        .await;
    let form = open_link(&browser, &mail).await.text().await.unwrap();
    for n in 0..10 {
        let wrong = reset_with(&app, &browser, &form, &format!("guess.{n}"), NEW_PASSWORD).await;
        assert_eq!(wrong.status(), 400, "form {n}");
    }
    let spent = reset_with(&app, &browser, &form, "claire.martin", NEW_PASSWORD).await;
    assert_eq!(spent.status(), 410);
    assert!(
        spent
            .text()
            .await
            .unwrap()
            .contains("Cette demande a déjà servi")
    );
}

/// The browser that set the new password is remembered for it: an attacker
/// who delays the identifier again at once holds back other browsers, not
/// the owner's.
#[tokio::test]
async fn the_browser_that_reset_the_password_is_not_held_back_by_a_new_delay() {
    let app = spawn_app().await;
    app.family().await;
    let browser = browser();
    let (_, taken) = request_reset(&app, &browser, "claire.martin", "mail").await;
    let mail = app
        .mail_to("claire.martin@example.org", &reference(&taken))
        .await;
    let form = open_link(&browser, &mail).await.text().await.unwrap();
    let done = reset_with(&app, &browser, &form, "claire.martin", NEW_PASSWORD).await;
    assert_eq!(done.status(), 200);
    for _ in 0..8 {
        login_status(&app, "claire.martin", "not-her-password").await;
    }
    assert_eq!(
        login_status(&app, "claire.martin", NEW_PASSWORD).await,
        429,
        "another browser waits"
    );
    let page = page_text(&browser, &app.url("/login")).await;
    let own = submit_login(&app, &browser, &page, "claire.martin", NEW_PASSWORD).await;
    assert_eq!(own.status(), 303, "the owner's does not");
}

/// Claire, whose phone from the school's file is `phone`, at the channel
/// screen of « mot de passe oublié »: the app, her browser and the screen.
async fn at_the_channel_screen(phone: &str) -> (TestApp, reqwest::Client, String) {
    let app = spawn_app().await;
    app.family().await;
    set_phone(&app, "claire.martin", phone).await;
    let browser = browser();
    let choice = channel_screen(&app, &browser).await;
    (app, browser, choice)
}

/// The channel screen Claire's identifier leads `browser` to.
async fn channel_screen(app: &TestApp, browser: &reqwest::Client) -> String {
    submit(
        app,
        browser,
        "/mot-de-passe-oublie",
        "/mot-de-passe-oublie",
        &[("identifier", "claire.martin")],
    )
    .await
    .text()
    .await
    .unwrap()
}

/// A landline from the school's file takes no SMS: the screen shows no
/// number and a request sends nothing (the same screen as any identifier's).
#[tokio::test]
async fn a_landline_is_not_offered_for_an_sms_code() {
    let (app, browser, choice) = at_the_channel_screen("01 23 45 67 89").await;
    // The screen of an account without a number (a stand-in derived from the
    // identifier, whose last two digits may be anything, 89 included).
    sqlx::query("UPDATE accounts SET phone = NULL WHERE identifier = 'claire.martin'")
        .execute(&app.app.db)
        .await
        .unwrap();
    let without = channel_screen(&app, &browser).await;
    let masked = |page: &str| {
        page.split("•• •• •• •• ")
            .nth(1)
            .map(|rest| rest[..2].to_owned())
    };
    assert_eq!(masked(&choice), masked(&without));
    assert!(masked(&choice).is_some());
    set_phone(&app, "claire.martin", "01 23 45 67 89").await;
    let (status, _) = request_reset(&app, &browser, "claire.martin", "sms").await;
    assert_eq!(status, 200);
    assert!(sms_outbox(&app).await.is_empty());
}

#[tokio::test]
async fn a_reset_by_sms_code_from_the_outbox_with_three_tries() {
    let (app, browser, choice) = at_the_channel_screen("06 12 34 56 78").await;
    assert!(choice.contains(&clef::accounts::recovery::shown_phone("+33612345678")));
    assert!(!choice.contains("612345678") && !choice.contains("12 34 56"));

    // Three wrong codes spend the code.
    let (status, code_page) = request_reset(&app, &browser, "claire.martin", "sms").await;
    assert_eq!(status, 200);
    let number = reference(&code_page);
    let (to, text) = sms_outbox(&app).await.pop().expect("an SMS in the outbox");
    assert_eq!(to, "+33612345678");
    // The SMS names its request, as the screen does beside the code's field.
    assert!(text.starts_with(&format!("Demande {number} :")), "{text}");
    assert!(code_page.contains(&fr(&format!("porte le n° de cette demande : {number}."))));
    // On the trail: where the request came from, and its number, which the
    // parent quotes to the help desk.
    let (address, detail): (Option<String>, Option<String>) = sqlx::query_as(
        "SELECT address, detail FROM audit_events WHERE event = 'recovery_requested' \
         ORDER BY at DESC, id DESC LIMIT 1",
    )
    .fetch_one(&app.app.db)
    .await
    .unwrap();
    assert_eq!(address.as_deref(), Some("127.0.0.1"));
    assert_eq!(detail, Some(format!("password_sms {number}")));
    let right = code_in(&text);
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    let challenge = input_value(&code_page, "challenge").unwrap();
    // A slip (letters, a digit missing) is told as such and uses no try.
    for slip in ["abc", "12345", "1234567"] {
        let response = post_with(
            &app,
            &browser,
            &code_page,
            "/mot-de-passe-oublie/code",
            &[("challenge", &challenge), ("code", slip)],
        )
        .await;
        assert_eq!(response.status(), 400);
        let page = unescaped(&response.text().await.unwrap());
        assert!(
            page.contains(&fr("Le code reçu par SMS compte 6 chiffres.")),
            "{slip}: {page}"
        );
    }
    let mut page = code_page.clone();
    for expected in [
        "Il vous reste 2 essais.",
        "Il vous reste 1 essai.",
        "ce code ne fonctionne plus",
    ] {
        let response = post_with(
            &app,
            &browser,
            &page,
            "/mot-de-passe-oublie/code",
            &[("challenge", &challenge), ("code", wrong)],
        )
        .await;
        assert_eq!(response.status(), 400);
        page = unescaped(&response.text().await.unwrap());
        assert!(page.contains(&fr(expected)), "{expected}: {page}");
    }
    // Even the right code no longer works after three wrong ones.
    let spent = post_with(
        &app,
        &browser,
        &code_page,
        "/mot-de-passe-oublie/code",
        &[("challenge", &challenge), ("code", &right)],
    )
    .await;
    assert_eq!(spent.status(), 410);

    // A new request, the right code: the same form as the mail's link.
    let (_, code_page) = request_reset(&app, &browser, "claire.martin", "sms").await;
    let (_, text) = sms_outbox(&app).await.pop().unwrap();
    let form = enter_sms_code(&app, &browser, &code_page, &text).await;
    assert_eq!(form.status(), 200);
    let form = form.text().await.unwrap();
    assert!(form.contains("Modifiez votre mot de passe"));
    // « English » shows this form again, in English: the code verified is
    // not asked for again (it is spent).
    let switched = browser
        .get(app.url(&language_link(&form)))
        .send()
        .await
        .unwrap();
    let english = page_text(&browser, &app.url(&location(&switched))).await;
    assert!(english.contains("Change your password"), "{english}");
    let form = english;
    assert_eq!(
        reset_with(&app, &browser, &form, "claire.martin", NEW_PASSWORD)
            .await
            .status(),
        200
    );
    assert_eq!(login_status(&app, "claire.martin", NEW_PASSWORD).await, 303);
    // A code asked for right after the reset (in the same second, as a
    // person who forgot the new one at once) is not voided by it.
    let (_, code_page) = request_reset(&app, &browser, "claire.martin", "sms").await;
    let (_, text) = sms_outbox(&app).await.pop().unwrap();
    let form = enter_sms_code(&app, &browser, &code_page, &text).await;
    assert_eq!(form.status(), 200);
}

/// A code works for ten minutes on the screen that asked for it. A newer
/// request (a stranger typing the parent's identifier) does not void it, or
/// the parent would be left with a code and no screen to type it in; the
/// code used voids the others.
#[tokio::test]
async fn an_sms_code_lasts_ten_minutes_and_a_strangers_request_does_not_void_it() {
    let app = spawn_app().await;
    app.family().await;
    set_phone(&app, "claire.martin", "0612345678").await;
    let enter = |browser: reqwest::Client, page: String, text: String| {
        let app = &app;
        async move {
            enter_sms_code(app, &browser, &page, &text)
                .await
                .status()
                .as_u16()
        }
    };
    let parent = browser();
    let (_, parents_page) = request_reset(&app, &parent, "claire.martin", "sms").await;
    let parents_code = sms_outbox(&app).await.pop().unwrap().1;
    let stranger = browser();
    let (_, strangers_page) = request_reset(&app, &stranger, "claire.martin", "sms").await;
    let strangers_code = sms_outbox(&app).await.pop().unwrap().1;
    assert_ne!(code_in(&parents_code), code_in(&strangers_code));

    assert_eq!(
        enter(parent.clone(), parents_page, parents_code).await,
        200,
        "the parent's code still works"
    );
    assert_eq!(
        enter(stranger, strangers_page, strangers_code).await,
        410,
        "the code used voided the other"
    );

    let (_, page) = request_reset(&app, &parent, "claire.martin", "sms").await;
    let text = sms_outbox(&app).await.pop().unwrap().1;
    app.clock.advance(601);
    assert_eq!(enter(parent, page, text).await, 410);
}

/// An SMS code sent before the school reset the account (a new letter, the
/// account provisional again) gives no reset link: one would outlive the
/// new letter and overwrite the password chosen with it.
#[tokio::test]
async fn an_sms_code_sent_before_the_school_reset_the_account_gives_no_link() {
    let app = spawn_app().await;
    app.family().await;
    set_phone(&app, "claire.martin", "0612345678").await;
    let parent = browser();
    let (_, page) = request_reset(&app, &parent, "claire.martin", "sms").await;
    let text = sms_outbox(&app).await.pop().unwrap().1;
    sqlx::query(
        "UPDATE accounts SET state = 'provisional', password_hash = NULL WHERE identifier = 'claire.martin'",
    )
    .execute(&app.app.db)
    .await
    .unwrap();
    let entered = enter_sms_code(&app, &parent, &page, &text).await;
    assert_eq!(entered.status(), 410);
    assert!(entered.text().await.unwrap().contains("Ce code a expiré"));
}

/// A gateway of an SMS provider on loopback: records each request's
/// `Authorization` and body, answers `status`.
async fn gateway(status: u16) -> (url::Url, Arc<Mutex<Vec<(String, Value)>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let store = received.clone();
    let app = axum::Router::new().route(
        "/sms",
        post(
            move |headers: axum::http::HeaderMap, axum::Json(body): axum::Json<Value>| {
                let store = store.clone();
                async move {
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    store.lock().unwrap().push((auth, body));
                    axum::http::StatusCode::from_u16(status).unwrap()
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = url::Url::parse(&format!("http://{}/sms", listener.local_addr().unwrap())).unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

#[tokio::test]
async fn the_sms_gateway_receives_the_code_and_its_failure_is_shown() {
    let (url, received) = gateway(200).await;
    let app = spawn_app_with(|config| {
        config.sms_gateway_url = Some(url);
        config.sms_gateway_token = Some("provider-key".to_owned().into());
    })
    .await;
    app.family().await;
    set_phone(&app, "claire.martin", "+33612345678").await;
    let browser = browser();
    let (status, code_page) = request_reset(&app, &browser, "claire.martin", "sms").await;
    assert_eq!(status, 200);
    // The SMS leaves beside the answer.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (auth, body) = loop {
        if let Some(call) = received.lock().unwrap().pop() {
            break call;
        }
        assert!(Instant::now() < deadline, "the gateway was called");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(auth, "Bearer provider-key");
    assert_eq!(body["to"], "+33612345678");
    let form = enter_sms_code(&app, &browser, &code_page, body["text"].as_str().unwrap()).await;
    assert_eq!(form.status(), 200);

    // A gateway that fails (down, or refusing this number): the screen
    // answers as for an unknown identifier (SPEC §3.7), no code works, and
    // the request is recorded as failed for the operator.
    let (url, received) = gateway(500).await;
    let app = spawn_app_with(|config| {
        config.sms_gateway_url = Some(url);
        config.sms_gateway_retries = 1;
    })
    .await;
    app.family().await;
    set_phone(&app, "claire.martin", "0612345678").await;
    let (status, page) = request_reset(&app, &browser, "claire.martin", "sms").await;
    let (unknown_status, unknown) =
        request_reset(&app, &crate::helpers::browser(), "personne.inconnue", "sms").await;
    assert_eq!((status, unknown_status), (200, 200));
    assert_eq!(
        normalised(&page, "claire.martin"),
        normalised(&unknown, "personne.inconnue")
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let outcome: String = sqlx::query_scalar(
            "SELECT outcome FROM recovery_requests WHERE account_id IS NOT NULL",
        )
        .fetch_one(&app.app.db)
        .await
        .unwrap();
        if outcome == "failed" {
            break;
        }
        assert!(Instant::now() < deadline, "recorded as failed: {outcome}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(received.lock().unwrap().len(), 2, "one try and one retry");
    // Its code, which the gateway may have passed on all the same, does not work.
    let text = received.lock().unwrap()[0].1["text"]
        .as_str()
        .unwrap()
        .to_owned();
    let entered = enter_sms_code(&app, &browser, &page, &text).await;
    assert_eq!(entered.status(), 400, "taken for a wrong code");
}

/// A page with what varies by request taken out: the reference, the CSRF
/// token, the identifier typed and the masked number shown.
fn normalised(page: &str, identifier: &str) -> String {
    let mut page = page.replace(identifier, "IDENTIFIER");
    if let Some(token) = input_value(&page, "csrf") {
        page = page.replace(&token, "CSRF");
    }
    for marker in [
        "class=\"reference\">",
        "au numéro <span dir=\"ltr\" aria-hidden=\"true\" class=\"nowrap\">",
    ] {
        if let Some(start) = page.find(marker).map(|i| i + marker.len()) {
            let end = start + page[start..].find('<').unwrap();
            let varies = page[start..end].to_owned();
            page = page.replace(&varies, "VARIES");
        }
    }
    // The phone's last two digits, read out: there only (they are in « 100% » too).
    let marker = "se terminant par ";
    if let Some(start) = page.find(marker).map(|i| i + marker.len()) {
        let end = start + page[start..].find('<').unwrap();
        page.replace_range(start..end, "VARIES");
    }
    if let Some(challenge) = input_value(&page, "challenge") {
        page = page.replace(&challenge, "CHALLENGE");
    }
    page
}

#[tokio::test]
async fn recovery_answers_the_same_for_known_unknown_provisional_and_unconfirmed_identifiers() {
    let app = spawn_app().await;
    app.family().await; // claire.martin: known, confirmed address
    let unconfirmed = app
        .account("paul.durand", AccountKind::Guardian, None, None)
        .await;
    unconfirm(&app, &unconfirmed.identifier).await;
    app.establishment("0590003C", "Collège Victor Hugo").await;
    app.import(
        "0590003C",
        "N° élève;Nom;Prénom;Date de naissance;Classe;Nom responsable 1;Prénom responsable 1;Courriel responsable 1\n\
         3001;Petit;Tom;02/03/2013;6 A;Petit;Anne;anne.petit@example.org\n"
            .as_bytes(),
    )
    .await
    .unwrap();
    let provisional: String = sqlx::query_scalar(
        "SELECT identifier FROM accounts WHERE state = 'provisional' AND kind = 'guardian'",
    )
    .fetch_one(&app.app.db)
    .await
    .unwrap();
    let identifiers = [
        "claire.martin",
        "personne.inconnue",
        provisional.as_str(),
        "paul.durand",
    ];
    let browser = browser();
    for (step, channel) in [
        ("identifier", None),
        ("mail", Some("mail")),
        ("sms", Some("sms")),
    ] {
        let mut answers = Vec::new();
        for identifier in identifiers {
            let (status, page) = match channel {
                None => {
                    let response = submit(
                        &app,
                        &browser,
                        "/mot-de-passe-oublie",
                        "/mot-de-passe-oublie",
                        &[("identifier", identifier)],
                    )
                    .await;
                    (response.status().as_u16(), response.text().await.unwrap())
                }
                Some(channel) => request_reset(&app, &browser, identifier, channel).await,
            };
            if channel.is_some() {
                reference(&page); // a reference every time
            }
            answers.push((status, normalised(&page, identifier)));
        }
        for (identifier, answer) in identifiers.iter().zip(&answers) {
            assert_eq!(answer.0, answers[0].0, "{step}: status for {identifier}");
            assert_eq!(answer.1, answers[0].1, "{step}: page for {identifier}");
        }
    }
    // Only the known account was sent anything.
    assert_eq!(mails_to(&app, "claire.martin@example.org").await, 1);
    assert_eq!(mails_to(&app, "paul.durand@example.org").await, 0);
    assert_eq!(mails_to(&app, "anne.petit@example.org").await, 0);
    assert!(
        sms_outbox(&app).await.is_empty(),
        "no one had a phone on record"
    );
    // Every request was recorded under its reference, matched or not.
    assert_eq!(app.count("recovery_requests").await, 8);

    // The identifier reminder answers the same for a known and an unknown address.
    let mut pages = Vec::new();
    for email in [
        "claire.martin@example.org",
        "personne@example.org",
        "paul.durand@example.org",
    ] {
        let response = submit(
            &app,
            &browser,
            "/identifiant-oublie",
            "/identifiant-oublie",
            &[("email", email)],
        )
        .await;
        assert_eq!(response.status(), 200);
        pages.push(normalised(&response.text().await.unwrap(), email));
    }
    assert!(pages.iter().all(|p| *p == pages[0]));
}

#[tokio::test]
async fn the_explicit_switch_restores_the_seed_messages() {
    let app = spawn_app_with(|config| config.recovery_explicit = true).await;
    app.family().await;
    let unconfirmed = app
        .account("paul.durand", AccountKind::Guardian, None, None)
        .await;
    unconfirm(&app, &unconfirmed.identifier).await;
    let browser = browser();
    for (identifier, message) in [
        (
            "personne.inconnue",
            "Cet identifiant n'est pas reconnu. Veuillez réessayer.",
        ),
        (
            "paul.durand",
            "Les informations associées à votre compte ne permettent pas de répondre à votre demande.",
        ),
    ] {
        let page = submit(
            &app,
            &browser,
            "/mot-de-passe-oublie",
            "/mot-de-passe-oublie",
            &[("identifier", identifier)],
        )
        .await
        .text()
        .await
        .unwrap();
        let page = unescaped(&page);
        assert!(page.contains(message), "{identifier}: {page}");
    }
    // An address no account confirmed, as the seeds word it.
    let page = submit(
        &app,
        &browser,
        "/identifiant-oublie",
        "/identifiant-oublie",
        &[("email", "personne@example.org")],
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(
        unescaped(&page).contains(
            "Les informations associées à votre compte ne permettent pas de répondre à votre demande. Merci de contacter votre établissement."
        ),
        "{page}"
    );
    // A known account with no phone is offered the mail only.
    let choice = submit(
        &app,
        &browser,
        "/mot-de-passe-oublie",
        "/mot-de-passe-oublie",
        &[("identifier", "claire.martin")],
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(choice.contains("value=\"mail\"") && !choice.contains("value=\"sms\""));
}

#[tokio::test]
async fn a_student_recovers_by_mail_only_once_the_address_is_confirmed() {
    let app = spawn_app().await;
    let college = app.establishment("0590001A", "Collège Jean Moulin").await;
    app.account(
        "nina.roux",
        AccountKind::Student,
        Some((&college, "4 A")),
        Some("2012-01-01"),
    )
    .await;
    sqlx::query("UPDATE accounts SET email = 'nina.roux@example.org', email_verified_at = NULL WHERE identifier = 'nina.roux'")
        .execute(&app.app.db)
        .await
        .unwrap();
    let browser = browser();
    let (status, page) = request_reset(&app, &browser, "nina.roux", "mail").await;
    assert_eq!(status, 200);
    assert!(page.contains(&fr(
        "Élève sans adresse mail confirmée : demandez à vos parents ou à votre établissement."
    )));
    assert_eq!(mails_to(&app, "nina.roux@example.org").await, 0);

    sqlx::query("UPDATE accounts SET email_verified_at = 1 WHERE identifier = 'nina.roux'")
        .execute(&app.app.db)
        .await
        .unwrap();
    let (_, page) = request_reset(&app, &browser, "nina.roux", "mail").await;
    app.mail_to("nina.roux@example.org", &reference(&page))
        .await;
}

/// Strangers who spend the hour's three messages for a parent's identifier
/// do not keep the parent from their own: a browser that signed in to the
/// account before is counted on its own (as at the login), a new one is not.
#[tokio::test]
async fn a_browser_that_signed_in_before_gets_its_code_after_strangers_spent_the_hours_messages() {
    let app = spawn_app().await;
    app.family().await;
    set_phone(&app, "claire.martin", "0612345678").await;
    let parents_browser = browser();
    let login = page_text(&parents_browser, &app.url("/login")).await;
    assert_eq!(
        submit_login(&app, &parents_browser, &login, "claire.martin", PASSWORD)
            .await
            .status(),
        303
    );
    for _ in 0..3 {
        request_reset(&app, &browser(), "claire.martin", "sms").await;
    }
    assert_eq!(sms_outbox(&app).await.len(), 3);
    let (status, _) = request_reset(&app, &browser(), "claire.martin", "sms").await;
    assert_eq!(status, 200, "the same answer");
    assert_eq!(
        sms_outbox(&app).await.len(),
        3,
        "held back for a new browser"
    );
    let (status, _) = request_reset(&app, &parents_browser, "claire.martin", "sms").await;
    assert_eq!(status, 200);
    assert_eq!(
        sms_outbox(&app).await.len(),
        4,
        "sent to the parent's own browser"
    );
    // Its own count is the same three an hour.
    for _ in 0..3 {
        request_reset(&app, &parents_browser, "claire.martin", "sms").await;
    }
    assert_eq!(sms_outbox(&app).await.len(), 6);
}

/// Strangers who spend an identifier's SMS do not spend its mail, and a
/// parent's address that is several accounts' (one per child, the
/// children's own) takes each of their messages in the hour.
#[tokio::test]
async fn sms_requests_do_not_spend_the_mail_and_an_address_shared_by_siblings_gets_each() {
    let app = spawn_app().await;
    app.family().await;
    set_phone(&app, "claire.martin", "0612345678").await;
    for _ in 0..4 {
        request_reset(&app, &browser(), "claire.martin", "sms").await;
    }
    assert_eq!(sms_outbox(&app).await.len(), 3);
    let (_, page) = request_reset(&app, &browser(), "claire.martin", "mail").await;
    app.mail_to("claire.martin@example.org", &reference(&page))
        .await;

    sqlx::query(
        "UPDATE accounts SET email = 'claire.martin@example.org', email_verified_at = 1 \
         WHERE identifier IN ('lea.martin', 'hugo.martin')",
    )
    .execute(&app.app.db)
    .await
    .unwrap();
    for identifier in ["lea.martin", "hugo.martin", "claire.martin"] {
        let (_, page) = request_reset(&app, &browser(), identifier, "mail").await;
        app.mail_to("claire.martin@example.org", &reference(&page))
            .await;
    }
    assert_eq!(mails_to(&app, "claire.martin@example.org").await, 4);
}

#[tokio::test]
async fn a_flood_for_one_family_sends_three_messages_and_an_address_is_limited() {
    let app = spawn_app_behind_proxy().await;
    app.family().await;
    // Ten requests from ten addresses, all for Claire: three mails reach her.
    for n in 0..10 {
        reset_from(
            app.address.clone(),
            format!("198.51.100.{n}"),
            "claire.martin".into(),
            "mail",
        )
        .await;
    }
    assert_eq!(mails_to(&app, "claire.martin@example.org").await, 3);

    // One address: 30 requests an hour, then 429 with Retry-After.
    let browser = browser();
    let page = page_text(&browser, &app.url("/identifiant-oublie")).await;
    let mut statuses = Vec::new();
    for _ in 0..31 {
        let response = browser
            .post(app.url("/identifiant-oublie"))
            .header("x-forwarded-for", "203.0.113.9")
            .form(&[("csrf", csrf(&page).as_str()), ("email", "x@example.org")])
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            assert!(response.headers().contains_key("retry-after"));
        }
    }
    assert!(statuses[..30].iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(statuses[30], 429);
}

/// Identifier reminders need only the address: a stranger asking for them
/// over and over gets three an hour to it, and the parent's reset link
/// still comes.
#[tokio::test]
async fn reminders_asked_by_a_stranger_do_not_hold_back_the_reset_mail() {
    let app = spawn_app().await;
    app.family().await;
    let stranger = browser();
    for _ in 0..10 {
        let done = submit(
            &app,
            &stranger,
            "/identifiant-oublie",
            "/identifiant-oublie",
            &[("email", "claire.martin@example.org")],
        )
        .await;
        assert_eq!(done.status(), 200);
    }
    assert_eq!(mails_to(&app, "claire.martin@example.org").await, 3);

    let (status, page) = request_reset(&app, &browser(), "claire.martin", "mail").await;
    assert_eq!(status, 200);
    app.mail_to("claire.martin@example.org", &reference(&page))
        .await;

    // The parent's own browser (it signed in before) gets the reminder the
    // stranger spent, counted on its own.
    let own = browser();
    let login = page_text(&own, &app.url("/login")).await;
    submit_login(&app, &own, &login, "claire.martin", PASSWORD).await;
    let reminders = || {
        app.outbox()
            .iter()
            .filter(|m| {
                m.to == "claire.martin@example.org"
                    && m.text.contains(&fr("identifiant : claire.martin"))
            })
            .count()
    };
    let before = reminders();
    let done = submit(
        &app,
        &own,
        "/identifiant-oublie",
        "/identifiant-oublie",
        &[("email", "claire.martin@example.org")],
    )
    .await;
    assert_eq!(done.status(), 200);
    mails_to(&app, "claire.martin@example.org").await;
    assert_eq!(
        reminders(),
        before + 1,
        "the parent's own browser is not held back"
    );
}

#[tokio::test]
async fn recovery_pages_and_mails_speak_english() {
    let app = spawn_app().await;
    app.family().await;
    let browser = browser();
    let english = |path: &str| {
        browser
            .get(app.url(path))
            .header("accept-language", "en")
            .send()
    };
    let page = english("/mot-de-passe-oublie")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Forgotten password"), "{page}");
    let choice = browser
        .post(app.url("/mot-de-passe-oublie"))
        .header("accept-language", "en")
        .form(&[
            ("csrf", csrf(&page).as_str()),
            ("identifier", "claire.martin"),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(choice.contains("By email, at your account"), "{choice}");
    let taken = browser
        .post(app.url("/mot-de-passe-oublie/envoyer"))
        .header("accept-language", "en")
        .form(&[
            ("csrf", csrf(&choice).as_str()),
            ("identifier", "claire.martin"),
            ("channel", "mail"),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        taken.contains("Your request's reference number is"),
        "{taken}"
    );
    let mail = app
        .mail_to("claire.martin@example.org", &reference(&taken))
        .await;
    assert!(mail.subject.starts_with("Password change request no."));
    assert!(mail.text.starts_with("Hello"));
}

/// A password changed on « Mon compte » takes with it the reset links and
/// SMS codes under way (someone who read the mailbox cannot use one later) and
/// the refresh tokens obtained before.
#[tokio::test]
async fn a_password_change_voids_reset_links_and_refresh_tokens() {
    let app = spawn_app().await;
    app.family().await;
    let client = app.client(false).await;
    let signed_in = browser();
    let url = authorize_url(&app, &client.0, &[("scope", "openid offline_access")]);
    let back = authorize_and_login(&app, &signed_in, &url, "claire.martin").await;
    let code = location_param(&back, "code").unwrap();
    let tokens: Value = exchanged(&app, &client, &code).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();

    let other = browser();
    let (_, taken) = request_reset(&app, &other, "claire.martin", "mail").await;
    let mail = app
        .mail_to("claire.martin@example.org", &reference(&taken))
        .await;

    change_password(&app, &signed_in, NEW_PASSWORD).await;

    assert_eq!(open_link(&other, &mail).await.status(), 410);
    let refreshed = refresh_grant(&app, &client, &refresh_token).await;
    let body: Value = refreshed.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(login_status(&app, "claire.martin", NEW_PASSWORD).await, 303);
}

/// Requests held back for one name (three an hour) do not spend the day's SMS
/// budget, which would silence every other family for the rest of the day.
#[tokio::test]
async fn requests_held_back_for_one_name_do_not_spend_the_day_s_sms_budget() {
    let app = spawn_app_with(|config| config.sms_daily_limit = 5).await;
    app.family().await;
    set_phone(&app, "claire.martin", "06 12 34 56 78").await;
    set_phone(&app, "lea.martin", "06 98 76 54 32").await;
    let browser = browser();
    for _ in 0..6 {
        assert_eq!(
            request_reset(&app, &browser, "claire.martin", "sms")
                .await
                .0,
            200
        );
    }
    assert_eq!(
        sms_outbox(&app).await.len(),
        3,
        "three an hour for one name"
    );
    request_reset(&app, &browser, "lea.martin", "sms").await;
    let outbox = sms_outbox(&app).await;
    assert_eq!(outbox.len(), 4);
    assert_eq!(outbox.last().unwrap().0, "+33698765432");
}

/// Strangers who spend the day's SMS budget on guessed names do not
/// silence a parent asking from a browser that signed in to the account
/// before; what the budget held back shows on `/metrics`.
#[tokio::test]
async fn a_spent_sms_budget_still_serves_a_browser_that_signed_in_before() {
    let app = spawn_app_with(|config| config.sms_daily_limit = 2).await;
    app.family().await;
    set_phone(&app, "claire.martin", "06 12 34 56 78").await;
    set_phone(&app, "lea.martin", "06 98 76 54 32").await;
    let parents_browser = browser();
    let login = page_text(&parents_browser, &app.url("/login")).await;
    let signed_in = submit_login(&app, &parents_browser, &login, "claire.martin", PASSWORD).await;
    assert_eq!(signed_in.status(), 303);

    for identifier in ["lea.martin", "claire.martin", "lea.martin"] {
        request_reset(&app, &browser(), identifier, "sms").await;
    }
    assert_eq!(sms_outbox(&app).await.len(), 2, "the day's budget");
    request_reset(&app, &parents_browser, "claire.martin", "sms").await;
    let outbox = sms_outbox(&app).await;
    assert_eq!(outbox.len(), 3, "the parent's own browser");
    assert_eq!(outbox.last().unwrap().0, "+33612345678");

    let metrics = reqwest::get(app.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("clef_sms_total{outcome=\"held_back\"} 1"),
        "{metrics}"
    );
}

/// Fills the reset form of the Clef at `base` from `from` (through the
/// trusted proxy) in a fresh browser, choosing `channel` (`mail` or `sms`).
/// Owns what it takes, so that many can run at once as tasks.
async fn reset_from(base: String, from: String, identifier: String, channel: &'static str) {
    let browser = browser();
    let page = browser
        .get(format!("{base}/mot-de-passe-oublie"))
        .header("x-forwarded-for", &from)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let response = browser
        .post(format!("{base}/mot-de-passe-oublie/envoyer"))
        .header("x-forwarded-for", &from)
        .form(&[
            ("csrf", csrf(&page).as_str()),
            ("identifier", identifier.as_str()),
            ("channel", channel),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "the same answer whatever is sent");
}

/// One address asking for SMS codes for guessed identifiers gets five sent
/// an hour, not the day's national budget; a parent elsewhere still gets
/// theirs, all three of the hour.
#[tokio::test]
async fn one_address_gets_five_reset_sms_an_hour_and_others_still_theirs() {
    let app = spawn_app_behind_proxy().await;
    app.family().await;
    let guessed = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf",
    ];
    for (n, name) in guessed.iter().enumerate() {
        let identifier = format!("parent.{name}");
        app.account(&identifier, AccountKind::Guardian, None, None)
            .await;
        set_phone(&app, &identifier, &format!("06 00 00 00 0{n}")).await;
    }
    for name in guessed {
        reset_from(
            app.address.clone(),
            "203.0.113.7".into(),
            format!("parent.{name}"),
            "sms",
        )
        .await;
    }
    assert_eq!(sms_outbox(&app).await.len(), 5);

    // Held back by the address's limit, its requests for Claire spend
    // nothing of her identifier's three an hour.
    set_phone(&app, "claire.martin", "06 12 34 56 78").await;
    for _ in 0..3 {
        reset_from(
            app.address.clone(),
            "203.0.113.7".into(),
            "claire.martin".into(),
            "sms",
        )
        .await;
    }
    assert_eq!(sms_outbox(&app).await.len(), 5);
    for _ in 0..3 {
        reset_from(
            app.address.clone(),
            "198.51.100.20".into(),
            "claire.martin".into(),
            "sms",
        )
        .await;
    }
    let outbox = sms_outbox(&app).await;
    assert_eq!(outbox.len(), 8);
    assert_eq!(outbox.last().unwrap().0, "+33612345678");
}

/// A hundred requests at once for one identifier, from a hundred addresses,
/// send exactly the hour's three SMS: a request held back by one count (the
/// phone's, the address's, the day's) gives back those it took, so none is
/// spent on a message that did not go. (Checked on Redis, where the counts
/// of concurrent requests interleave.)
#[tokio::test]
async fn a_hundred_sms_requests_at_once_send_exactly_the_hours_three() {
    let app = spawn_app_behind_proxy().await;
    app.family().await;
    set_phone(&app, "claire.martin", "06 12 34 56 78").await;
    let mut requests = tokio::task::JoinSet::new();
    for n in 0..100 {
        let from = format!("198.51.100.{n}");
        requests.spawn(reset_from(
            app.address.clone(),
            from,
            "claire.martin".into(),
            "sms",
        ));
    }
    requests.join_all().await;
    assert_eq!(sms_outbox(&app).await.len(), 3);
}

/// The language link of a step that answers a form shows that very step in
/// the other language: the SMS code's form (the code already sent, its help
/// about an SMS, not a spam folder) and a mail request's reference; it went
/// back to the start, the code and the number lost.
#[tokio::test]
async fn the_language_link_keeps_the_recovery_step() {
    let (app, browser, choice) = at_the_channel_screen("06 12 34 56 78").await;
    assert!(choice.contains(&fr("Identifiant saisi : <strong>claire.martin</strong>")));
    assert!(
        choice.contains("se terminant par 78"),
        "the phone's ending, read out"
    );
    let (_, code_page) = request_reset(&app, &browser, "claire.martin", "sms").await;
    let number = reference(&code_page);
    let challenge = input_value(&code_page, "challenge").unwrap();
    assert!(code_page.contains("ne bloque pas les SMS") && !code_page.contains("spam"));
    let switched = browser
        .get(app.url(&language_link(&code_page)))
        .send()
        .await
        .unwrap();
    assert_eq!(switched.status(), 303);
    let english = page_text(&browser, &app.url(&location(&switched))).await;
    assert!(english.contains("<html lang=\"en\">"), "{english}");
    assert_eq!(
        input_value(&english, "challenge").as_deref(),
        Some(challenge.as_str())
    );
    assert!(english.contains(&number));
    let (_, text) = sms_outbox(&app).await.pop().unwrap();
    let form = enter_sms_code(&app, &browser, &english, &text).await;
    assert_eq!(form.status(), 200, "the code sent before the switch works");

    let (_, requested) = request_reset(&app, &browser, "claire.martin", "mail").await;
    let number = reference(&requested);
    let switched = browser
        .get(app.url(&language_link(&requested)))
        .send()
        .await
        .unwrap();
    let french = page_text(&browser, &app.url(&location(&switched))).await;
    assert!(
        french.contains("<html lang=\"fr\">") && french.contains(&number),
        "{french}"
    );
    // Only a number is shown back.
    let forged = browser
        .get(app.url("/mot-de-passe-oublie/demande?reference=%3Cb%3E"))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&forged), "/mot-de-passe-oublie");
}

/// A reset asked in English: its mail's link opens in English in a browser
/// that speaks French (a phone's mail app), remembers the choice for the
/// form it posts, and the reset records English as the language to write to
/// the person in when someone else's action mails them.
#[tokio::test]
async fn a_reset_link_opens_in_the_language_it_was_asked_in() {
    let app = spawn_app().await;
    app.family().await;
    let asking = browser();
    asking
        .get(app.url("/langue?lang=en&next=/"))
        .send()
        .await
        .unwrap();
    let (status, taken) = request_reset(&app, &asking, "claire.martin", "mail").await;
    assert_eq!(status, 200);
    let mail = app
        .mail_to("claire.martin@example.org", &reference(&taken))
        .await;
    assert!(mail.link("http").ends_with("&lang=en"), "{}", mail.text);

    // Another browser, French by its headers.
    let phone = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(
            [(
                reqwest::header::ACCEPT_LANGUAGE,
                reqwest::header::HeaderValue::from_static("fr-FR,fr;q=0.9"),
            )]
            .into_iter()
            .collect(),
        )
        .build()
        .unwrap();
    let form = open_link(&phone, &mail).await.text().await.unwrap();
    assert!(form.contains("<html lang=\"en\">"), "{form}");
    // The language link of the page leads back without the mail's `lang`.
    assert!(
        !form.contains("lang%3Den") && !form.contains("&amp;lang=en"),
        "{form}"
    );
    let done = reset_with(&app, &phone, &form, "claire.martin", NEW_PASSWORD).await;
    assert_eq!(done.status(), 200);
    let done = done.text().await.unwrap();
    assert!(done.contains("<html lang=\"en\">"), "{done}");
    // The notice of the change leads to the sign-in page in English too.
    let notice = app
        .mail_to(
            "claire.martin@example.org",
            "Your password has been changed",
        )
        .await;
    assert!(
        notice
            .text
            .contains(&format!("({})", app.url("/login?lang=en"))),
        "{}",
        notice.text
    );
    let claire = app.account_named("claire.martin").await;
    assert_eq!(
        clef::accounts::store::locale_of(&app.app.db, &claire.id)
            .await
            .unwrap(),
        Some(clef::domain::Locale::En)
    );
}
