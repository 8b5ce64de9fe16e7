//! « Mon compte », sessions and applications (SPEC §3.6, issue 7): the open
//! sessions of the account with « Se déconnecter partout », and the services
//! holding consent with « Retirer l'autorisation », which ends their refresh
//! tokens.

use clef::oidc::{logout, session};
use serde_json::Value;

use crate::helpers::*;

type ClientCreds = (String, Option<String>);

const SERVICE: &str = "Cahier de textes Exemple";
const OFFLINE: &str = "openid profile children offline_access";

/// A browser whose User-Agent is `device` (what « Vos sessions » shows).
fn browser_named(device: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(redirects())
        .user_agent(device)
        .build()
        .unwrap()
}

/// Signs `identifier` in at /login from a browser named `device`.
async fn signed_in(app: &TestApp, identifier: &str, device: &str) -> reqwest::Client {
    let browser = browser_named(device);
    let page = page_text(&browser, &app.url("/login")).await;
    let response = submit_login(app, &browser, &page, identifier, PASSWORD).await;
    assert_eq!(response.status(), 303);
    browser
}

async fn account_text(app: &TestApp, browser: &reqwest::Client) -> String {
    let page = account_page(app, browser).await;
    assert_eq!(page.status(), 200);
    page.text().await.unwrap()
}

/// POSTs one of « Mon compte »'s forms with the page's CSRF token.
async fn post_from_account(
    app: &TestApp,
    browser: &reqwest::Client,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let page = account_text(app, browser).await;
    let csrf = input_value(&page, "csrf").unwrap();
    let mut form = form.to_vec();
    form.push(("csrf", &csrf));
    browser
        .post(app.url(path))
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// Withdraws, from « Mon compte », the consent given to `client_id`.
async fn withdraw(app: &TestApp, browser: &reqwest::Client, client_id: &str) -> reqwest::Response {
    post_from_account(
        app,
        browser,
        "/compte/applications/retirer",
        &[("client_id", client_id)],
    )
    .await
}

/// A code for `client`, which the person consented to: given at once.
async fn code_without_asking(
    app: &TestApp,
    browser: &reqwest::Client,
    client: &ClientCreds,
    scope: &str,
) -> String {
    let back = browser
        .get(authorize_url(app, &client.0, &[("scope", scope)]))
        .send()
        .await
        .unwrap();
    location_param(&back, "code").expect("consented: a code at once")
}

/// The list item of the page that names `device`.
fn item_naming<'a>(page: &'a str, device: &str) -> &'a str {
    page.split("<li>")
        .find(|item| item.contains(device))
        .unwrap_or_else(|| panic!("{device} is not listed"))
}

/// The part of the page about the service named `name`: from its heading to its form's end.
fn application<'a>(page: &'a str, name: &str) -> &'a str {
    let start = page
        .find(&format!("<h3>{name}</h3>"))
        .unwrap_or_else(|| panic!("{name} is not listed"));
    let end = start + page[start..].find("</form>").unwrap();
    &page[start..end]
}

/// Signs `identifier` in through `client` asking `scope` from `browser`,
/// accepts on the consent page, exchanges the code; returns the tokens.
async fn consented(
    app: &TestApp,
    browser: &reqwest::Client,
    client: &ClientCreds,
    identifier: &str,
    scope: &str,
) -> Value {
    let url = authorize_url(app, &client.0, &[("scope", scope)]);
    let first = browser.get(&url).send().await.unwrap();
    let to_consent = if first.status() == 200 {
        let page = first.text().await.unwrap();
        submit_login(app, browser, &page, identifier, PASSWORD).await
    } else {
        first
    };
    let consent_url = location(&to_consent);
    assert!(
        consent_url.starts_with("/consentement?"),
        "consent is asked: {consent_url}"
    );
    let page = page_text(browser, &app.url(&consent_url)).await;
    let accepted = answer_consent(app, browser, &page, "accept").await;
    let code = location_param(&accepted, "code").expect("a code after consent");
    let tokens = exchange(app, client, &code, None).await;
    assert_eq!(tokens.status(), 200);
    let tokens: Value = tokens.json().await.unwrap();
    assert_eq!(
        tokens["refresh_token"].is_string(),
        scope.contains("offline_access"),
        "{tokens}"
    );
    tokens
}

/// Presents a refresh token at /token; answers the status and the body.
async fn refresh(app: &TestApp, client: &ClientCreds, token: &str) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", token),
        ("client_id", client.0.as_str()),
    ];
    if let Some(secret) = &client.1 {
        form.push(("client_secret", secret));
    }
    let response = reqwest::Client::new()
        .post(app.url("/token"))
        .form(&form)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn text(value: &Value, name: &str) -> String {
    value[name]
        .as_str()
        .unwrap_or_else(|| panic!("{name} in {value}"))
        .to_owned()
}

async fn consents_of(app: &TestApp, identifier: &str) -> i64 {
    let account = app.account_named(identifier).await;
    sqlx::query_scalar("SELECT COUNT(*) FROM consents WHERE account_id = $1")
        .bind(&account.id)
        .fetch_one(&app.app.db)
        .await
        .unwrap()
}

async fn last_seen(app: &TestApp, device: &str) -> (i64, i64) {
    use sqlx::Row;
    let row = sqlx::query("SELECT created_at, last_seen_at FROM sessions WHERE device = $1")
        .bind(device)
        .fetch_one(&app.app.db)
        .await
        .unwrap();
    (row.get("created_at"), row.get("last_seen_at"))
}

#[tokio::test]
async fn my_account_lists_the_open_sessions_and_marks_this_one() {
    let app = spawn_app().await;
    app.family().await;
    let here = signed_in(&app, "claire.martin", "Firefox du salon").await;
    let there = signed_in(&app, "claire.martin", "Safari du telephone").await;
    let _child = signed_in(&app, "lea.martin", "Tablette de Lea").await;
    let gone = signed_in(&app, "claire.martin", "Ordinateur du CDI").await;
    let page = account_text(&app, &gone).await;
    let logged_out = gone
        .post(app.url("/logout"))
        .form(&[
            ("csrf", input_value(&page, "csrf").unwrap().as_str()),
            ("confirm", "1"),
        ])
        .send()
        .await
        .unwrap();
    assert!(logged_out.status().is_success() || logged_out.status().is_redirection());

    let page = account_text(&app, &here).await;
    assert!(page.contains("<h2>Vos sessions</h2>"));
    assert!(page.contains("Safari du telephone"));
    assert!(
        !page.contains("Tablette de Lea"),
        "another account's session"
    );
    assert!(!page.contains("Ordinateur du CDI"), "an ended session");
    assert_eq!(page.matches("cette session").count(), 1);
    assert!(item_naming(&page, "Firefox du salon").contains("cette session"));
    assert!(!item_naming(&page, "Safari du telephone").contains("cette session"));
    assert!(item_naming(&page, "Safari du telephone").contains("Dernière activité le"));
    assert!(page.contains("Se déconnecter partout"));

    let page = account_text(&app, &there).await;
    assert!(item_naming(&page, "Safari du telephone").contains("cette session"));
    assert!(!item_naming(&page, "Firefox du salon").contains("cette session"));

    // Last seen moves when the session is used, at most every five minutes.
    let (opened, seen) = last_seen(&app, "Safari du telephone").await;
    assert_eq!(seen, opened);
    app.clock.advance(600);
    account_text(&app, &there).await;
    let (_, seen) = last_seen(&app, "Safari du telephone").await;
    assert!(seen >= opened + 600, "{seen} after {opened}");
    app.clock.advance(60);
    account_text(&app, &there).await;
    assert_eq!(last_seen(&app, "Safari du telephone").await.1, seen);
    // An expired session is no longer listed.
    app.clock.advance(app.app.config.session_ttl);
    let reopened = signed_in(&app, "claire.martin", "Nouveau navigateur").await;
    let page = account_text(&app, &reopened).await;
    assert!(!page.contains("Firefox du salon"));
    assert!(item_naming(&page, "Nouveau navigateur").contains("cette session"));
}

#[tokio::test]
async fn signing_out_everywhere_ends_the_other_sessions_and_keeps_this_one() {
    let app = spawn_app().await;
    app.family().await;
    let (client_id, _) = app.client(false).await;
    let here = signed_in(&app, "claire.martin", "Firefox du salon").await;
    let there = signed_in(&app, "claire.martin", "Safari du telephone").await;
    let child = signed_in(&app, "lea.martin", "Tablette de Lea").await;

    // Another site's form carries no matching token: refused, nothing ends.
    for form in [
        vec![],
        vec![("csrf", "forged-token-forged-token-forged-token-0000")],
    ] {
        let forged = here
            .post(app.url("/compte/deconnexion-partout"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), 403);
        let page = forged.text().await.unwrap();
        assert!(
            page.contains("Formulaire expiré") && page.contains("Retour à l&#x27;accueil</a>"),
            "a way on: {page}"
        );
    }
    assert_eq!(account_page(&app, &there).await.status(), 200);

    let done = post_from_account(&app, &here, "/compte/deconnexion-partout", &[]).await;
    assert_eq!(done.status(), 200);
    let page = done.text().await.unwrap();
    assert!(page.contains("Vos autres sessions sont fermées"));
    assert!(!page.contains("Safari du telephone"), "no longer listed");
    assert!(item_naming(&page, "Firefox du salon").contains("cette session"));

    assert_eq!(
        account_page(&app, &here).await.status(),
        200,
        "this session goes on"
    );
    assert_signed_out(&app, &there, &client_id).await;
    let here_still = here
        .get(authorize_url(&app, &client_id, &[("prompt", "none")]))
        .send()
        .await
        .unwrap();
    assert!(location_param(&here_still, "code").is_some());
    assert_eq!(
        account_page(&app, &child).await.status(),
        200,
        "other accounts keep theirs"
    );
    let ended_in_registry: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sessions WHERE device = 'Safari du telephone' AND ended_at IS NOT NULL",
    )
    .fetch_one(&app.app.db)
    .await
    .unwrap();
    assert_eq!(ended_in_registry, 1);
}

/// « Sur tous vos appareils »: a first-party app that got `offline_access`
/// in another session (an ENT app on a lost phone) loses its refresh token
/// too, which no page lists; this session's keeps working.
#[tokio::test]
async fn signing_out_everywhere_ends_the_other_sessions_offline_refresh_tokens() {
    let app = spawn_app().await;
    app.family().await;
    let client = app.client(false).await;
    let here = signed_in(&app, "claire.martin", "Firefox du salon").await;
    let there = signed_in(&app, "claire.martin", "Telephone perdu").await;
    let mut tokens = Vec::new();
    for browser in [&here, &there] {
        let code = code_without_asking(&app, browser, &client, "openid offline_access").await;
        let body: Value = exchanged(&app, &client, &code).await;
        tokens.push(text(&body, "refresh_token"));
    }
    let done = post_from_account(&app, &here, "/compte/deconnexion-partout", &[]).await;
    assert_eq!(done.status(), 200);
    let (status, body) = refresh(&app, &client, &tokens[1]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, body) = refresh(&app, &client, &tokens[0]).await;
    assert_eq!(status, 200, "{body}");
}

/// The access tokens a service got without a refresh token end with
/// « se déconnecter partout » and with a password change, those of every
/// session: no refresh family's revocation reaches them, and each would
/// otherwise answer at UserInfo for its hour. The session kept gets new ones
/// without a sign-in.
#[tokio::test]
async fn signing_out_everywhere_and_a_password_change_end_the_access_tokens_handed_out() {
    let app = spawn_app().await;
    app.family().await;
    let client = app.third_party_client().await;
    let scope = "openid profile";
    let there = browser_named("Telephone perdu");
    let theirs = text(
        &consented(&app, &there, &client, "claire.martin", scope).await,
        "access_token",
    );
    let access_in = |browser: &reqwest::Client| {
        let (app, browser, client) = (&app, browser.clone(), &client);
        async move {
            let code = code_without_asking(app, &browser, client, scope).await;
            let body: Value = exchanged(app, client, &code).await;
            assert!(body.get("refresh_token").is_none(), "{body}");
            text(&body, "access_token")
        }
    };
    let here = signed_in(&app, "claire.martin", "Firefox du salon").await;
    let ours = access_in(&here).await;
    assert_eq!(userinfo_status(&app, &theirs).await, 200);
    assert_eq!(userinfo_status(&app, &ours).await, 200);

    // In the very second the tokens were issued: they end all the same.
    let done = post_from_account(&app, &here, "/compte/deconnexion-partout", &[]).await;
    assert_eq!(done.status(), 200);
    assert_eq!(userinfo_status(&app, &theirs).await, 401);
    assert_eq!(userinfo_status(&app, &ours).await, 401);
    let renewed = access_in(&here).await;
    assert_eq!(
        userinfo_status(&app, &renewed).await,
        200,
        "no sign-in asked"
    );

    let elsewhere = signed_in(&app, "claire.martin", "Tablette").await;
    let theirs = access_in(&elsewhere).await;
    assert_eq!(userinfo_status(&app, &theirs).await, 200);
    let changed = post_from_account(
        &app,
        &here,
        "/compte/mot-de-passe",
        &[
            ("current_password", PASSWORD),
            ("new_password", "Cartable2026"),
            ("new_password_confirmation", "Cartable2026"),
        ],
    )
    .await;
    assert_eq!(changed.status(), 200);
    assert_eq!(userinfo_status(&app, &theirs).await, 401);
    assert_eq!(userinfo_status(&app, &renewed).await, 401);
}

/// A code issued in a session that has ended since (here « se déconnecter
/// partout » from another browser; a logout or a password reset end
/// sessions alike) gives nothing: no tokens, no refresh family. A code of
/// the session kept still works.
#[tokio::test]
async fn a_code_of_a_session_ended_since_gives_nothing() {
    let app = spawn_app().await;
    app.family().await;
    let client = app.client(false).await;
    let here = signed_in(&app, "claire.martin", "Firefox du salon").await;
    let there = signed_in(&app, "claire.martin", "Safari du telephone").await;
    let held = code_without_asking(&app, &there, &client, OFFLINE).await;
    let kept = code_without_asking(&app, &here, &client, OFFLINE).await;

    let done = post_from_account(&app, &here, "/compte/deconnexion-partout", &[]).await;
    assert_eq!(done.status(), 200);

    let refused = exchange(&app, &client, &held, None).await;
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(body["error_description"], "the sign-in session has ended");
    let alive = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM refresh_families WHERE client_id = $1 AND revoked_at IS NULL",
        )
        .bind(&client.0)
        .fetch_one(&app.app.db)
        .await
        .unwrap()
    };
    assert_eq!(alive().await, 0, "the family it opened is revoked");

    let granted = exchange(&app, &client, &kept, None).await;
    assert_eq!(granted.status(), 200);
    assert_eq!(alive().await, 1);
}

/// A service that got no refresh token (no `offline_access`) holds an
/// access token tied to nothing else: withdrawing its consent ends it too,
/// at UserInfo and at introspection, and a code it has not exchanged yet;
/// while a new consent's token works.
#[tokio::test]
async fn withdrawing_a_consent_ends_the_services_access_tokens_and_codes() {
    let app = spawn_app().await;
    app.family().await;
    let client = app.third_party_client().await;
    let browser = browser_named("Firefox du salon");
    let scope = "openid profile children";
    let tokens = consented(&app, &browser, &client, "claire.martin", scope).await;
    let access = text(&tokens, "access_token");
    assert_eq!(userinfo_status(&app, &access).await, 200);
    let unexchanged = code_without_asking(&app, &browser, &client, scope).await;
    let withdrawn = withdraw(&app, &browser, &client.0).await;
    assert_eq!(withdrawn.status(), 200);
    assert_eq!(userinfo_status(&app, &access).await, 401);
    let introspected: Value = reqwest::Client::new()
        .post(app.url("/introspect"))
        .basic_auth(&client.0, client.1.as_deref())
        .form(&[("token", access.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(introspected["active"], false);
    let late = exchange(&app, &client, &unexchanged, None).await;
    assert_eq!(late.status(), 400);
    let late: Value = late.json().await.unwrap();
    assert_eq!(late["error"], "invalid_grant", "{late}");
    // Consent given again at once, in the same second: the new token works.
    let again = consented(&app, &browser, &client, "claire.martin", scope).await;
    assert_eq!(
        userinfo_status(&app, &text(&again, "access_token")).await,
        200
    );
}

#[tokio::test]
async fn withdrawing_a_services_consent_ends_its_refresh_tokens_and_asks_again() {
    let app = spawn_app().await;
    app.family().await;
    let client = app.third_party_client().await;
    let browser = browser_named("Firefox du salon");
    let tokens = consented(&app, &browser, &client, "claire.martin", OFFLINE).await;
    let (status, rotated) = refresh(&app, &client, &text(&tokens, "refresh_token")).await;
    assert_eq!(status, 200, "{rotated}");
    let unexchanged = code_without_asking(&app, &browser, &client, OFFLINE).await;

    let page = account_text(&app, &browser).await;
    assert!(page.contains("<h2>Applications autorisées</h2>"));
    let item = application(&page, SERVICE);
    assert!(item.contains("Autorisation donnée le"));
    assert!(
        item.contains("la liste de vos enfants"),
        "what it receives, in plain words"
    );
    assert!(item.contains("quand vous n&#x27;êtes pas connecté(e)"));
    assert!(item.contains(&format!(
        "aria-label=\"Retirer l'autorisation de {SERVICE}\""
    )));
    assert_eq!(input_value(item, "client_id").as_deref(), Some(&*client.0));

    // Without the form token: refused, the consent stays.
    let forged = browser
        .post(app.url("/compte/applications/retirer"))
        .form(&[("client_id", client.0.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert_eq!(consents_of(&app, "claire.martin").await, 1);

    let withdrawn = withdraw(&app, &browser, &client.0).await;
    assert_eq!(withdrawn.status(), 200);
    let page = withdrawn.text().await.unwrap();
    assert!(page.contains(&fr(&format!(
        "L&#x27;autorisation de « {SERVICE} » est retirée"
    ))));
    assert!(!page.contains(&format!("<h3>{SERVICE}</h3>")));
    assert!(page.contains("Aucun service extérieur n'a reçu votre autorisation."));
    assert_eq!(consents_of(&app, "claire.martin").await, 0);

    // A code issued before gives nothing, and leaves no refresh family alive.
    assert_eq!(
        exchange(&app, &client, &unexchanged, None).await.status(),
        400
    );
    let alive: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM refresh_families WHERE client_id = $1 AND revoked_at IS NULL",
    )
    .bind(&client.0)
    .fetch_one(&app.app.db)
    .await
    .unwrap();
    assert_eq!(alive, 0);

    // Its refresh tokens, and the access tokens issued from them, are over.
    let (status, body) = refresh(&app, &client, &text(&rotated, "refresh_token")).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(
        userinfo_status(&app, &text(&rotated, "access_token")).await,
        401
    );

    // The next sign-in asks again; a silent one cannot go through.
    let silent = browser
        .get(authorize_url(
            &app,
            &client.0,
            &[("scope", OFFLINE), ("prompt", "none")],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        location_param(&silent, "error").as_deref(),
        Some("consent_required")
    );
    // Consent given again at once, in the same second as the withdrawal.
    consented(&app, &browser, &client, "claire.martin", OFFLINE).await;

    // Withdrawing twice: nothing left to withdraw.
    let again = withdraw(&app, &browser, &client.0).await;
    assert_eq!(again.status(), 200, "the renewed consent is withdrawn");
    let twice = withdraw(&app, &browser, &client.0).await;
    assert_eq!(twice.status(), 400);
    assert!(
        twice
            .text()
            .await
            .unwrap()
            .contains("Ce service n&#x27;a pas ou plus votre autorisation.")
    );
}

#[tokio::test]
async fn a_person_withdraws_only_their_own_consent_whatever_client_id_they_send() {
    let app = spawn_app().await;
    app.family().await;
    let client = app.third_party_client().await;
    let other_service = app
        .client_with(|new| {
            new.name = "Soutien scolaire Exemple".into();
            new.is_first_party = false;
        })
        .await;
    let claire = browser_named("Firefox du salon");
    let lea = browser_named("Tablette de Lea");
    consented(&app, &claire, &client, "claire.martin", OFFLINE).await;
    let lea_tokens = consented(
        &app,
        &lea,
        &client,
        "lea.martin",
        "openid profile offline_access",
    )
    .await;
    let lea_other = consented(
        &app,
        &lea,
        &other_service,
        "lea.martin",
        "openid offline_access",
    )
    .await;

    // Léa's services are not in Claire's own list: they are under Léa, whose
    // parent she is.
    let page = account_text(&app, &claire).await;
    let (children, own) = page.split_once("Applications autorisées").unwrap();
    assert!(!own.contains("Soutien scolaire Exemple"), "{own}");
    assert!(children.contains("Soutien scolaire Exemple"), "{children}");

    // A service Claire never authorized, an unknown one: nothing to withdraw.
    for client_id in [other_service.0.as_str(), "clef-unknown", ""] {
        let refused = withdraw(&app, &claire, client_id).await;
        assert_eq!(refused.status(), 400, "{client_id}");
    }
    // The service both authorized: only Claire's consent goes.
    let withdrawn = withdraw(&app, &claire, &client.0).await;
    assert_eq!(withdrawn.status(), 200);
    assert_eq!(consents_of(&app, "claire.martin").await, 0);
    assert_eq!(consents_of(&app, "lea.martin").await, 2);
    let page = account_text(&app, &lea).await;
    assert!(page.contains(&format!("<h3>{SERVICE}</h3>")));
    assert!(page.contains("<h3>Soutien scolaire Exemple</h3>"));
    for (service, tokens) in [(&client, &lea_tokens), (&other_service, &lea_other)] {
        let (status, body) = refresh(&app, service, &text(tokens, "refresh_token")).await;
        assert_eq!(status, 200, "Léa's refresh tokens live on: {body}");
    }
}

/// A sign-in whose password was checked just before a reset or a change
/// landed opens nothing: were it opened after the change's sign-out, in the
/// new epoch, the old password would have bought a live session.
#[tokio::test]
async fn a_sign_in_checked_against_a_password_changed_since_opens_no_session() {
    let app = spawn_app().await;
    app.family().await;
    let checked = app.account_named("claire.martin").await;
    sqlx::query("UPDATE accounts SET password_hash = $1 WHERE id = $2")
        .bind("$argon2id$v=19$m=19456,t=2,p=1$changed$changed")
        .bind(&checked.id)
        .execute(&app.app.db)
        .await
        .unwrap();

    let opened = session::open(&app.app, &checked, "Firefox", app.app.now())
        .await
        .unwrap();
    assert!(
        opened.is_none(),
        "the password checked is not the account's any more"
    );
    let open: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE account_id = $1")
        .bind(&checked.id)
        .fetch_one(&app.app.db)
        .await
        .unwrap();
    assert_eq!(open, 0);

    let current = app.account_named("claire.martin").await;
    assert!(
        session::open(&app.app, &current, "Firefox", app.app.now())
            .await
            .unwrap()
            .is_some()
    );
}

/// Signing out everywhere ends the sessions of the epochs before it, not one
/// a sign-in opened in the new epoch while the others were being ended; and
/// a session of an earlier epoch counts as ended for a code exchange even
/// before its record is marked.
#[tokio::test]
async fn signing_out_everywhere_ends_the_earlier_epochs_sessions_only() {
    let app = spawn_app().await;
    app.family().await;
    let account = app.account_named("claire.martin").await;
    let now = app.app.now();
    let (old_token, old) = session::open(&app.app, &account, "Firefox", now)
        .await
        .unwrap()
        .unwrap();

    let epoch = clef::accounts::store::next_session_epoch(&app.app.db, &account.id, now)
        .await
        .unwrap();
    let (new_token, new) = session::open(&app.app, &account, "Safari", now)
        .await
        .unwrap()
        .unwrap();
    let mut conn = app.app.db.acquire().await.unwrap();
    let ended = session::ended_among(&mut conn, &[&old.sid, &new.sid])
        .await
        .unwrap();
    assert_eq!(ended.into_iter().collect::<Vec<_>>(), vec![old.sid.clone()]);
    drop(conn);

    logout::signed_out_everywhere(&app.app, &account.id, epoch)
        .await
        .unwrap();
    let still_open: Vec<String> =
        sqlx::query_scalar("SELECT sid FROM sessions WHERE account_id = $1 AND ended_at IS NULL")
            .bind(&account.id)
            .fetch_all(&app.app.db)
            .await
            .unwrap();
    assert_eq!(still_open, vec![new.sid.clone()]);
    assert!(
        session::find(&app.app, &old_token, now)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        session::find(&app.app, &new_token, now)
            .await
            .unwrap()
            .is_some()
    );
}

/// The form token a browser holds before signing in (which someone else may
/// have seen or planted) does not carry into its session: a form of the
/// session with the old token is refused.
#[tokio::test]
async fn signing_in_renews_the_form_token() {
    let app = spawn_app().await;
    app.family().await;
    let browser = browser();
    let login = page_text(&browser, &app.url("/login")).await;
    let before = input_value(&login, "csrf").unwrap();
    let response = submit_login(&app, &browser, &login, "claire.martin", PASSWORD).await;
    assert_eq!(response.status(), 303);
    let account = account_text(&app, &browser).await;
    let after = input_value(&account, "csrf").unwrap();
    assert_ne!(before, after);
    let stale = browser
        .post(app.url("/compte/deconnexion-partout"))
        .form(&[("csrf", before.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 403);
    let fresh = browser
        .post(app.url("/compte/deconnexion-partout"))
        .form(&[("csrf", after.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.status(), 200);
}
