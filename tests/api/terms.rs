//! Per-client terms (the ENT charter, issue 7): accepted once per version, on
//! the consent page, before the first code for that client.

use crate::helpers::*;

async fn charter_client(app: &TestApp) -> (String, Option<String>) {
    app.client_with(|new| {
        new.terms = Some(
            clef::oidc::clients::parse_terms("https://ent.example.fr/charte", "2026-09").unwrap(),
        );
    })
    .await
}

async fn answer(
    app: &TestApp,
    browser: &reqwest::Client,
    page: &str,
    tick: bool,
) -> reqwest::Response {
    let mut form = vec![
        ("csrf", input_value(page, "csrf").unwrap()),
        ("request", input_value(page, "request").unwrap()),
        ("enfants", input_value(page, "enfants").unwrap()),
        ("decision", "accept".to_owned()),
    ];
    if tick {
        form.push(("terms", "accepted".to_owned()));
    }
    browser
        .post(app.url("/consentement"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_charter_is_accepted_once_per_version_before_the_first_code() {
    let app = spawn_app().await;
    app.family().await;
    let client = charter_client(&app).await;
    let browser = browser();
    let login = page_text(&browser, &authorize_url(&app, &client.0, &[])).await;
    let after_login = submit_login(&app, &browser, &login, "claire.martin", PASSWORD).await;
    assert!(
        location_param(&after_login, "code").is_none(),
        "no code before the charter"
    );
    let page = page_text(&browser, &app.url(&location(&after_login))).await;
    assert!(
        page.contains("ent.example.fr&#x2f;charte"),
        "the charter is linked"
    );
    assert!(page.contains("version 2026-09"));
    assert!(
        !page.contains("pas géré par l&#x27;académie"),
        "a first-party ENT"
    );

    // « Accepter » without ticking the charter: asked again, nothing recorded.
    let unticked = answer(&app, &browser, &page, false).await;
    assert_eq!(unticked.status(), 400);
    let again = unticked.text().await.unwrap();
    assert!(again.contains("Cochez"));
    assert_eq!(app.count("terms_acceptances").await, 0);
    let accepted = answer(&app, &browser, &again, true).await;
    assert!(location_param(&accepted, "code").is_some());

    // Accepted: the next sign-in goes straight through.
    let next = browser
        .get(authorize_url(&app, &client.0, &[]))
        .send()
        .await
        .unwrap();
    assert!(location_param(&next, "code").is_some());

    // A new version of the charter is asked again; prompt=none cannot skip it.
    sqlx::query("UPDATE clients SET terms_version = '2027-01' WHERE id = $1")
        .bind(&client.0)
        .execute(&app.app.db)
        .await
        .unwrap();
    // A change made outside the server (`clef client update`) is seen within
    // the client cache's few seconds; here at once.
    app.app.clients.forget(&client.0);
    let silent = browser
        .get(authorize_url(&app, &client.0, &[("prompt", "none")]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        location_param(&silent, "error").as_deref(),
        Some("consent_required")
    );
    let asked = browser
        .get(authorize_url(&app, &client.0, &[]))
        .send()
        .await
        .unwrap();
    let page = page_text(&browser, &app.url(&location(&asked))).await;
    assert!(page.contains("version 2027-01"));
    assert!(location_param(&answer(&app, &browser, &page, true).await, "code").is_some());
    assert_eq!(app.count("terms_acceptances").await, 2);
}

#[test]
fn terms_need_a_web_address_and_a_version() {
    use clef::oidc::clients::parse_terms;
    assert!(parse_terms("javascript:alert(1)", "1").is_err());
    assert!(parse_terms("https://ent.example.fr/charte", "").is_err());
    assert!(parse_terms("https://ent.example.fr/charte", "v\u{1}1").is_err());
    assert!(parse_terms("https://ent.example.fr/charte", "v1").is_ok());
}
