//! Consent (SPEC §4, issue 7): a third-party service receives nothing of an
//! account — least of all the list of a parent's children — before the person
//! accepted it on the consent page.

use clef::accounts::AccountKind;
use clef::clock::Clock;
use clef::domain::Rank;
use serde_json::Value;

use crate::helpers::*;

/// Signs Claire in through `url` and returns where the login sends her.
async fn login_through(app: &TestApp, browser: &reqwest::Client, url: &str) -> reqwest::Response {
    let page = page_text(browser, url).await;
    let response = submit_login(app, browser, &page, "claire.martin", PASSWORD).await;
    assert_eq!(response.status(), 303);
    response
}

/// Follows a redirect to the consent page and returns its HTML.
async fn consent_page(
    app: &TestApp,
    browser: &reqwest::Client,
    redirect: &reqwest::Response,
) -> String {
    let location = location(redirect);
    assert!(location.starts_with("/consentement?request="), "{location}");
    let page = browser.get(app.url(&location)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    page.text().await.unwrap()
}

const WITH_CHILDREN: &[(&str, &str)] = &[("scope", "openid profile children")];

/// A `prompt=none` request of `client_id` for the children, in `browser`.
async fn silently(app: &TestApp, browser: &reqwest::Client, client_id: &str) -> reqwest::Response {
    let params = [("scope", "openid profile children"), ("prompt", "none")];
    browser
        .get(authorize_url(app, client_id, &params))
        .send()
        .await
        .unwrap()
}

/// Claire signed in through the third-party service, before its consent
/// page: the app, the service, her browser and the page.
async fn at_the_consent_page() -> (TestApp, (String, Option<String>), reqwest::Client, String) {
    at_the_consent_page_of(|_| {}).await
}

/// [`at_the_consent_page`], the service registered as `configure` says.
async fn at_the_consent_page_of(
    configure: impl FnOnce(&mut clef::oidc::clients::NewClient),
) -> (TestApp, (String, Option<String>), reqwest::Client, String) {
    let app = spawn_app().await;
    app.family().await;
    let client = app
        .client_with(|new| {
            new.name = "Cahier de textes Exemple".into();
            new.is_first_party = false;
            configure(new);
        })
        .await;
    let browser = browser();
    let after_login = login_through(
        &app,
        &browser,
        &authorize_url(&app, &client.0, WITH_CHILDREN),
    )
    .await;
    assert!(
        location_param(&after_login, "code").is_none(),
        "no code before consent"
    );
    let page = consent_page(&app, &browser, &after_login).await;
    (app, client, browser, page)
}

#[tokio::test]
async fn a_third_party_service_gets_no_code_before_the_parent_accepts_then_sees_the_children() {
    let (app, client, browser, page) = at_the_consent_page().await;
    assert!(page.contains("Cahier de textes Exemple"));
    assert!(
        page.contains("la liste de vos enfants"),
        "children named in plain words"
    );
    assert!(page.contains("claire.martin"));
    // What a third party gets, for a parent: a number of its own for them
    // (a pairwise `sub`), not their identifier; no birth date.
    assert!(page.contains("un numéro qui vous désigne auprès de ce service seulement"));
    assert!(page.contains("<li>vos nom et prénom</li>"), "{page}");
    assert!(!page.contains("identifiant Clef"));
    // A parent's birth date, which an operator may have recorded, is not
    // among what the page names: it does not go.
    sqlx::query("UPDATE accounts SET birthdate = '1980-03-12' WHERE identifier = 'claire.martin'")
        .execute(&app.app.db)
        .await
        .unwrap();

    let accepted = answer_consent(&app, &browser, &page, "accept").await;
    assert_eq!(accepted.status(), 303);
    assert!(location(&accepted).starts_with(REDIRECT_URI));
    assert_eq!(
        location_param(&accepted, "state").as_deref(),
        Some("st-123")
    );
    let code = location_param(&accepted, "code").expect("a code after consent");
    let tokens = exchange(&app, &client, &code, None).await;
    assert_eq!(tokens.status(), 200);
    let tokens: Value = tokens.json().await.unwrap();
    let userinfo = userinfo(&app, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(userinfo["children"].as_array().unwrap().len(), 2);
    // What the consent screen names, and no more: not the parent's legal
    // rank, nor the login identifier.
    for child in userinfo["children"].as_array().unwrap() {
        assert!(
            child.get("rank").is_none() && child["given_name"].is_string(),
            "{child}"
        );
    }
    assert!(userinfo.get("preferred_username").is_none(), "{userinfo}");
    assert!(userinfo.get("birthdate").is_none(), "{userinfo}");
    let id_token = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert!(id_token.get("birthdate").is_none(), "{id_token}");

    // Remembered: the next sign-in, even silent, asks nothing.
    let silent = silently(&app, &browser, &client.0).await;
    assert!(
        location_param(&silent, "code").is_some(),
        "{}",
        location(&silent)
    );
}

#[tokio::test]
async fn refusing_consent_returns_access_denied_and_records_nothing() {
    let (app, _, browser, page) = at_the_consent_page().await;
    let refused = answer_consent(&app, &browser, &page, "refuse").await;
    assert_eq!(refused.status(), 303);
    assert!(location(&refused).starts_with(REDIRECT_URI));
    assert_eq!(
        location_param(&refused, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(location_param(&refused, "state").as_deref(), Some("st-123"));
    assert!(location_param(&refused, "code").is_none());
    assert_eq!(app.count("consents").await, 0);
    // The answered request cannot be answered again.
    let again = answer_consent(&app, &browser, &page, "accept").await;
    assert_eq!(again.status(), 400);
}

/// A consent page left open past the request's `max_age`: accepting it asks
/// for the password again (the service checks `auth_time` against its
/// `max_age`), records no consent meanwhile, and the new sign-in goes on
/// to the consent page, whose answer brings a fresh `auth_time` back.
#[tokio::test]
async fn accepting_after_max_age_asks_for_the_password_again() {
    let app = spawn_app().await;
    app.family().await;
    let client = app.third_party_client().await;
    let browser = browser();
    let url = authorize_url(
        &app,
        &client.0,
        &[("scope", "openid profile children"), ("max_age", "60")],
    );
    let after_login = login_through(&app, &browser, &url).await;
    let page = consent_page(&app, &browser, &after_login).await;

    app.clock.advance(61);
    let late = answer_consent(&app, &browser, &page, "accept").await;
    assert_eq!(late.status(), 303);
    let to_login = location(&late);
    assert!(to_login.starts_with("/login?request="), "{to_login}");
    assert!(location_param(&late, "code").is_none());
    assert_eq!(app.count("consents").await, 0);
    let form = page_text(&browser, &app.url(&to_login)).await;
    assert!(form.contains("Votre mot de passe"), "{form}");
    assert!(
        form.contains("Cahier de textes Exemple"),
        "the service is named"
    );

    let signed_in = app.clock.now();
    let again = submit_login(&app, &browser, &form, "claire.martin", PASSWORD).await;
    let page = consent_page(&app, &browser, &again).await;
    let accepted = answer_consent(&app, &browser, &page, "accept").await;
    let code = location_param(&accepted, "code").expect("a code once signed in again");
    let tokens: Value = exchanged(&app, &client, &code).await;
    let id_token = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert!(id_token["auth_time"].as_i64().unwrap() >= signed_in);
}

#[tokio::test]
async fn prompt_none_without_consent_answers_consent_required() {
    let app = spawn_app().await;
    app.family().await;
    let first_party = app.client(false).await;
    let third_party = app.third_party_client().await;
    let browser = browser();
    login_through(&app, &browser, &authorize_url(&app, &first_party.0, &[])).await;
    let silent = browser
        .get(authorize_url(
            &app,
            &third_party.0,
            &[("scope", "openid children"), ("prompt", "none")],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(silent.status(), 302);
    assert_eq!(
        location_param(&silent, "error").as_deref(),
        Some("consent_required")
    );
    assert!(location_param(&silent, "code").is_none());
}

#[tokio::test]
async fn consent_is_asked_again_when_scopes_grow_and_whenever_prompt_consent_says_so() {
    let app = spawn_app().await;
    app.family().await;
    let client = app.third_party_client().await;
    let browser = browser();
    let after_login = login_through(
        &app,
        &browser,
        &authorize_url(&app, &client.0, &[("scope", "openid profile")]),
    )
    .await;
    let page = consent_page(&app, &browser, &after_login).await;
    assert!(
        !page.contains("la liste de vos enfants"),
        "only what is asked is listed"
    );
    assert!(
        location_param(
            &answer_consent(&app, &browser, &page, "accept").await,
            "code"
        )
        .is_some()
    );

    // The service now wants the children: asked again.
    let more = browser
        .get(authorize_url(&app, &client.0, WITH_CHILDREN))
        .send()
        .await
        .unwrap();
    let page = consent_page(&app, &browser, &more).await;
    assert!(page.contains("la liste de vos enfants"));
    assert!(
        location_param(
            &answer_consent(&app, &browser, &page, "accept").await,
            "code"
        )
        .is_some()
    );

    // Everything granted, yet prompt=consent asks once more — first-party clients too.
    let first_party = app.client(false).await;
    for client_id in [&client.0, &first_party.0] {
        let forced = browser
            .get(authorize_url(
                &app,
                client_id,
                &[("scope", "openid profile children"), ("prompt", "consent")],
            ))
            .send()
            .await
            .unwrap();
        let page = consent_page(&app, &browser, &forced).await;
        // A double-click on « Accepter »: a code for each click, not the
        // consent page again for the second.
        for click in ["first", "second"] {
            let accepted = answer_consent(&app, &browser, &page, "accept").await;
            assert!(
                location_param(&accepted, "code").is_some(),
                "{click} click: {}",
                location(&accepted)
            );
        }
    }
    // A first-party ENT is never asked otherwise.
    let plain = browser
        .get(authorize_url(&app, &first_party.0, WITH_CHILDREN))
        .send()
        .await
        .unwrap();
    assert!(location_param(&plain, "code").is_some());
}

#[tokio::test]
async fn a_consent_page_belongs_to_its_session_and_needs_the_form_token() {
    let (app, _, browser, page) = at_the_consent_page().await;

    // Another browser, signed in as someone else, cannot see or answer it.
    let other = browser_signed_in_as(&app, "lea.martin").await;
    let stolen = other
        .get(app.url(&format!(
            "/consentement?request={}",
            input_value(&page, "request").unwrap()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(stolen.status(), 400);
    let forged = other
        .post(app.url("/consentement"))
        .form(&[
            ("csrf", "forged-token-forged-token-forged-token-0000"),
            ("request", input_value(&page, "request").unwrap().as_str()),
            ("decision", "accept"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403, "no CSRF cookie matches");
    assert_eq!(app.count("consents").await, 0);
    // Its owner still can.
    assert!(
        location_param(
            &answer_consent(&app, &browser, &page, "accept").await,
            "code"
        )
        .is_some()
    );
}

async fn browser_signed_in_as(app: &TestApp, identifier: &str) -> reqwest::Client {
    let browser = browser();
    let page = page_text(&browser, &app.url("/login")).await;
    let response = submit_login(app, &browser, &page, identifier, PASSWORD).await;
    assert_eq!(response.status(), 303);
    browser
}

/// A double-click on « Accepter »: the browser drops the first answer and
/// follows the second, which goes back to the service with a code as the
/// first would have, not to « Demande expirée ». Another answer is too late.
#[tokio::test]
async fn a_double_click_on_accept_goes_back_to_the_service_with_a_code() {
    let (app, client, browser, page) = at_the_consent_page().await;
    let first = answer_consent(&app, &browser, &page, "accept").await;
    let first = location_param(&first, "code").expect("a code");
    let second = answer_consent(&app, &browser, &page, "accept").await;
    assert_eq!(second.status(), 303);
    assert_eq!(location_param(&second, "state").as_deref(), Some("st-123"));
    let second = location_param(&second, "code").expect("a code for the second click too");
    assert_ne!(first, second);
    assert_eq!(exchange(&app, &client, &second, None).await.status(), 200);
    assert_eq!(app.count("consents").await, 1);
    // Another browser's session cannot use the trace, nor the same browser
    // change its answer.
    let stranger = browser_signed_in_as(&app, "claire.martin").await;
    let page_of_stranger = page_text(&stranger, &app.url("/login")).await;
    let foreign = stranger
        .post(app.url("/consentement"))
        .form(&[
            (
                "csrf",
                input_value(&page_of_stranger, "csrf").unwrap().as_str(),
            ),
            ("request", input_value(&page, "request").unwrap().as_str()),
            ("decision", "accept"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 400);
    let changed_mind = answer_consent(&app, &browser, &page, "refuse").await;
    assert_eq!(changed_mind.status(), 400, "another answer is too late");
}

/// The children listed by `/userinfo` for `access_token`, by given name.
async fn children_seen(app: &TestApp, access_token: &str) -> Vec<String> {
    let mut names: Vec<String> = userinfo(app, access_token).await["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|child| child["given_name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

/// Zoé, a pupil, becomes the child of the parent `guardian_id`.
async fn zoe_joins(app: &TestApp, guardian_id: &str) {
    let school = app.establishment("0590001A", "Collège Jean Moulin").await;
    let zoe = app
        .account(
            "zoe.martin",
            AccountKind::Student,
            Some((&school, "6 A")),
            Some("2014-09-01"),
        )
        .await;
    clef::accounts::store::link_guardian(
        &app.app.db,
        guardian_id,
        &zoe.id,
        Rank::new(1).unwrap(),
        app.app.now(),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_child_attached_after_the_consent_reaches_the_service_only_once_the_parent_accepts_again()
{
    let app = spawn_app().await;
    let family = app.family().await;
    let client = app.third_party_client().await;
    let browser = browser();
    let url = authorize_url(&app, &client.0, WITH_CHILDREN);
    let page = consent_page(&app, &browser, &login_through(&app, &browser, &url).await).await;
    // The page names the children the consent covers.
    assert!(
        page.contains("Lea Martin") && page.contains("Hugo Martin"),
        "{page}"
    );
    let accepted = answer_consent(&app, &browser, &page, "accept").await;
    let code = location_param(&accepted, "code").expect("a code");
    let tokens: Value = exchanged(&app, &client, &code).await;
    let before = tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(children_seen(&app, &before).await, ["Hugo", "Lea"]);

    // A third child joins the account (a sibling in the school's file, or a
    // grouping of the parent's accounts).
    zoe_joins(&app, &family.guardian.id).await;
    // The service's token does not reach her…
    assert_eq!(children_seen(&app, &before).await, ["Hugo", "Lea"]);
    // …nor does a silent sign-in: the parent has to be asked…
    let silent = silently(&app, &browser, &client.0).await;
    assert_eq!(
        location_param(&silent, "error").as_deref(),
        Some("consent_required")
    );
    // « Mon compte » says which children the service receives.
    let account = page_text(&browser, &app.url("/compte")).await;
    let (_, applications) = account.split_once("Applications autorisées").unwrap();
    assert!(
        applications.contains("<li>Lea Martin</li>") && !applications.contains("Zoe Martin"),
        "{applications}"
    );
    // …and once they accept, the service sees the three.
    let asked = browser.get(&url).send().await.unwrap();
    let page = consent_page(&app, &browser, &asked).await;
    assert!(page.contains("Zoe Martin"), "{page}");
    let accepted = answer_consent(&app, &browser, &page, "accept").await;
    let code = location_param(&accepted, "code").expect("a code");
    let tokens: Value = exchanged(&app, &client, &code).await;
    let after = tokens["access_token"].as_str().unwrap();
    assert_eq!(children_seen(&app, after).await, ["Hugo", "Lea", "Zoe"]);
}

/// A child attached while the consent page is open, which the page did not
/// name, is not covered by the parent's acceptance: the service receives the
/// children shown, and asks again for her.
#[tokio::test]
async fn a_child_attached_while_the_consent_page_is_open_is_not_given_to_the_service() {
    let app = spawn_app().await;
    let family = app.family().await;
    let client = app.third_party_client().await;
    let browser = browser();
    let url = authorize_url(&app, &client.0, WITH_CHILDREN);
    let page = consent_page(&app, &browser, &login_through(&app, &browser, &url).await).await;
    assert!(
        page.contains("Lea Martin") && !page.contains("Zoe Martin"),
        "{page}"
    );
    zoe_joins(&app, &family.guardian.id).await;
    let accepted = answer_consent(&app, &browser, &page, "accept").await;
    let code = location_param(&accepted, "code").expect("a code");
    let tokens: Value = exchanged(&app, &client, &code).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(children_seen(&app, access).await, ["Hugo", "Lea"]);
    let id_token = jwt_claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(
        id_token["children"].as_array().map(Vec::len),
        Some(2),
        "{id_token}"
    );
    let silent = silently(&app, &browser, &client.0).await;
    assert_eq!(
        location_param(&silent, "error").as_deref(),
        Some("consent_required")
    );
}

/// The consent page links to the privacy policy and the terms of use the
/// service registered (OIDC Registration §2: shown during approval), in the
/// person's language; a service that registered neither shows no such line.
#[tokio::test]
async fn the_consent_page_links_to_the_services_policy_and_terms() {
    let (app, _, browser, page) = at_the_consent_page_of(|new| {
        new.policy_uri = Some("https://cahier.example/confidentialite".parse().unwrap());
        new.tos_uri = Some("https://cahier.example/cgu".parse().unwrap());
    })
    .await;
    let links = page.replace("&#x2f;", "/");
    assert!(
        links.contains(
            "<a href=\"https://cahier.example/confidentialite\" rel=\"noopener noreferrer\" \
             target=\"_blank\">sa politique de confidentialité (nouvelle fenêtre)</a>"
        ),
        "{page}"
    );
    assert!(links.contains(
        "<a href=\"https://cahier.example/cgu\" rel=\"noopener noreferrer\" \
         target=\"_blank\">ses conditions d'utilisation (nouvelle fenêtre)</a>"
    ));
    let switched = browser
        .get(app.url(&language_link(&page)))
        .send()
        .await
        .unwrap();
    let english = page_text(&browser, &app.url(&location(&switched))).await;
    assert!(
        english.contains("Published by Cahier de textes Exemple:"),
        "{english}"
    );
    assert!(english.contains("its privacy policy (new window)</a>"));
    assert!(english.contains("its terms of use (new window)</a>"));

    let (_, _, _, plain) = at_the_consent_page().await;
    assert!(!plain.contains("Publiés par"), "{plain}");
}

/// A pupil may allow a third-party service alone; their parent sees it under
/// the child on « Mon compte » and withdraws it: the service's tokens for
/// the child end. A parent reaches only their own children's consents.
#[tokio::test]
async fn a_parent_sees_and_withdraws_a_service_their_child_allowed() {
    let app = spawn_app().await;
    app.family().await;
    let client = app.third_party_client().await;
    // Léa allows the service, offline access included.
    let lea = browser();
    let after_login = authorize_and_login(
        &app,
        &lea,
        &authorize_url(
            &app,
            &client.0,
            &[("scope", "openid profile offline_access")],
        ),
        "lea.martin",
    )
    .await;
    let page = consent_page(&app, &lea, &after_login).await;
    let accepted = answer_consent(&app, &lea, &page, "accept").await;
    let code = location_param(&accepted, "code").expect("a code after consent");
    let tokens: Value = exchanged(&app, &client, &code).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();

    // Claire sees it under Léa, with what the service receives.
    let claire = browser();
    let page = page_text(&claire, &app.url("/login")).await;
    assert_eq!(
        submit_login(&app, &claire, &page, "claire.martin", PASSWORD)
            .await
            .status(),
        303
    );
    let page = page_text(&claire, &app.url("/compte")).await;
    let lea_item = &page[page.find("<h3>Lea Martin</h3>").unwrap()..];
    let lea_item = &lea_item[..lea_item.find("</li>\n  \n  <li>").unwrap_or(lea_item.len())];
    assert!(
        lea_item.contains("Services extérieurs autorisés par cet enfant"),
        "{page}"
    );
    // Told of the child, not of the reader.
    assert!(
        lea_item.contains("ses nom, prénom et date de naissance"),
        "{lea_item}"
    );
    assert!(!lea_item.contains("vos nom"), "{lea_item}");
    assert!(
        page.contains("Aucun service extérieur n'a reçu votre autorisation."),
        "Claire's own list stays empty"
    );
    // In English too.
    claire
        .get(app.url(&language_link(&page)))
        .send()
        .await
        .unwrap();
    let english = page_text(&claire, &app.url("/compte")).await;
    assert!(
        english.contains("Outside services this child allowed:")
            && english.contains("<li>their surname, first name and birth date</li>")
            && english.contains("keep access to this information while they are signed out"),
        "{english}"
    );
    claire
        .get(app.url(&language_link(&english)))
        .send()
        .await
        .unwrap();
    let page = page_text(&claire, &app.url("/compte")).await;
    let lea_id = app.account_named("lea.martin").await.id;
    let withdraw = |child_id: String| {
        let (app, claire, client_id, page) = (&app, &claire, client.0.clone(), page.clone());
        async move {
            claire
                .post(app.url("/compte/enfants/applications/retirer"))
                .form(&[
                    ("csrf", input_value(&page, "csrf").unwrap().as_str()),
                    ("child_id", child_id.as_str()),
                    ("client_id", client_id.as_str()),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    // Not a child of hers: refused, nothing withdrawn.
    let stranger = app
        .account(
            "tom.petit",
            AccountKind::Student,
            Some((&clef::domain::Uai::parse("0590001A").unwrap(), "5 B")),
            Some("01/01/2012"),
        )
        .await;
    sqlx::query("INSERT INTO consents (account_id, client_id, scopes, granted_at) VALUES ($1, $2, 'openid', 0)")
        .bind(&stranger.id)
        .bind(&client.0)
        .execute(&app.app.db)
        .await
        .unwrap();
    assert_eq!(withdraw(stranger.id.clone()).await.status(), 400);
    assert_eq!(app.count("consents").await, 2);
    // Nor her son once he is of age: his consents are his own.
    let hugo = app.account_named("hugo.martin").await;
    let adult = time::OffsetDateTime::from_unix_timestamp(app.app.now())
        .unwrap()
        .year()
        - 19;
    sqlx::query("UPDATE accounts SET birthdate = $1 WHERE id = $2")
        .bind(format!("{adult}-01-01"))
        .bind(&hugo.id)
        .execute(&app.app.db)
        .await
        .unwrap();
    sqlx::query("INSERT INTO consents (account_id, client_id, scopes, granted_at) VALUES ($1, $2, 'openid', 0)")
        .bind(&hugo.id)
        .bind(&client.0)
        .execute(&app.app.db)
        .await
        .unwrap();
    let hugo_item = page_text(&claire, &app.url("/compte")).await;
    let hugo_item = &hugo_item[hugo_item.find("<h3>Hugo Martin</h3>").unwrap()..];
    assert!(!hugo_item[..hugo_item.find("</li>").unwrap()].contains("Services extérieurs"));
    assert_eq!(withdraw(hugo.id.clone()).await.status(), 400);
    assert_eq!(app.count("consents").await, 3);

    let done = withdraw(lea_id.clone()).await;
    assert_eq!(done.status(), 200);
    let done = done.text().await.unwrap();
    assert!(
        done.contains(&fr("L&#x27;autorisation donnée par Lea Martin à « ")),
        "{done}"
    );
    assert!(!done.contains("Services extérieurs autorisés par cet enfant"));
    assert_eq!(app.count("consents").await, 2, "Tom's and Hugo's stay");
    let refreshed = refresh_grant(&app, &client, &refresh_token).await;
    assert_eq!(
        refreshed.status(),
        400,
        "the service's refresh token for Léa ended"
    );
}
