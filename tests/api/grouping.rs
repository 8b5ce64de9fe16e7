//! Grouping parent accounts through the pages (SPEC §3.8; issue 9): the
//! seeds' scenario, a joint account with the other legal guardian, and every
//! refusal.

use clef::accounts::AccountKind;
use clef::domain::Rank;
use serde_json::Value;

use crate::helpers::*;

const UAI: &str = "0330001A";
const NEW_PASSWORD: &str = "Regroupe2026";
/// Two pupils, one parent: two letters, so two accounts (as in the seeds).
const CSV: &str = "N° élève;Nom;Prénom;Date de naissance;Classe;Nom responsable 1;Prénom responsable 1;Courriel responsable 1\n\
    5001;Crouzet;Dylan;04/05/2011;4 B;Crouzet;Nadia;nadia.crouzet@example.org\n\
    5002;Crouzet;Florian;12/03/2014;6 A;Crouzet;Nadia;nadia.crouzet@example.org\n";

fn unescaped(html: &str) -> String {
    html.replace("&#x27;", "'")
}

/// The provisional guardian account of `pupil`'s letter: identifier and password.
async fn letter_of(app: &TestApp, pupil: &str) -> (String, String) {
    let letter = app
        .letters(UAI)
        .await
        .into_iter()
        .find(|l| l.kind == "guardian" && l.student_given_name == pupil)
        .unwrap_or_else(|| panic!("a guardian letter for {pupil}"));
    (letter.identifier, letter.password)
}

/// Posts `form` to `action` with the CSRF token of `page`.
async fn post(
    app: &TestApp,
    browser: &reqwest::Client,
    page: &str,
    action: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let csrf = input_value(page, "csrf").expect("csrf field");
    let mut fields = vec![("csrf", csrf.as_str())];
    fields.extend_from_slice(form);
    browser
        .post(app.url(action))
        .form(&fields)
        .send()
        .await
        .unwrap()
}

/// Signs `identifier` in at Clef (no application) in a new browser.
async fn signed_in(app: &TestApp, identifier: &str, password: &str) -> reqwest::Client {
    let browser = browser();
    let page = page_text(&browser, &app.url("/login")).await;
    let response = submit_login(app, &browser, &page, identifier, password).await;
    assert_eq!(response.status(), 303, "{identifier} signs in");
    browser
}

/// Submits « Regrouper des comptes » with the other account's details.
async fn propose(
    app: &TestApp,
    browser: &reqwest::Client,
    identifier: &str,
    password: &str,
    birthdate: &str,
) -> (u16, String) {
    let form = page_text(browser, &app.url("/compte/regroupement")).await;
    let response = post(
        app,
        browser,
        &form,
        "/compte/regroupement",
        &[
            ("identifier", identifier),
            ("password", password),
            ("birthdate", birthdate),
        ],
    )
    .await;
    (
        response.status().as_u16(),
        unescaped(&response.text().await.unwrap()),
    )
}

/// Validates a confirmation page.
async fn validate(app: &TestApp, browser: &reqwest::Client, confirmation: &str) -> (u16, String) {
    let proposal = input_value(confirmation, "proposal").expect("the proposal");
    let response = post(
        app,
        browser,
        confirmation,
        "/compte/regroupement/valider",
        &[("proposal", &proposal)],
    )
    .await;
    (
        response.status().as_u16(),
        unescaped(&response.text().await.unwrap()),
    )
}

/// The given names in the `children` claim of a new ID token for `browser`'s session.
async fn children_in_id_token(
    app: &TestApp,
    browser: &reqwest::Client,
    client: &(String, Option<String>),
) -> Vec<String> {
    let back = browser
        .get(authorize_url(
            app,
            &client.0,
            &[("scope", "openid children")],
        ))
        .send()
        .await
        .unwrap();
    let code = location_param(&back, "code").expect("a code, silently");
    let tokens: Value = exchanged(app, client, &code).await;
    let claims = jwt_claims(tokens["id_token"].as_str().unwrap());
    let mut names: Vec<String> = claims["children"]
        .as_array()
        .expect("a children claim")
        .iter()
        .map(|c| c["given_name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

async fn login_status(app: &TestApp, identifier: &str, password: &str) -> u16 {
    let browser = browser();
    let page = page_text(&browser, &app.url("/login")).await;
    submit_login(app, &browser, &page, identifier, password)
        .await
        .status()
        .as_u16()
}

#[tokio::test]
async fn the_seed_scenario_a_parent_groups_the_letter_account_of_a_second_child() {
    let app = spawn_app().await;
    app.establishment(UAI, "Collège Ausone").await;
    app.import(UAI, CSV.as_bytes()).await.unwrap();
    let client = app.client(false).await;
    let (dylan_account, dylan_password) = letter_of(&app, "Dylan").await;
    let (florian_account, florian_password) = letter_of(&app, "Florian").await;
    assert_ne!(dylan_account, florian_account, "one letter per child");

    // Nadia activates the account of Dylan's letter and confirms her address.
    let browser = browser();
    let login = page_text(&browser, &app.url("/login")).await;
    let first = submit_login(&app, &browser, &login, &dylan_account, &dylan_password).await;
    assert_eq!(location(&first), "/premiere-connexion");
    let page = page_text(&browser, &app.url("/premiere-connexion")).await;
    let done = post(
        &app,
        &browser,
        &page,
        "/premiere-connexion",
        &[
            ("birthdate", "04/05/2011"),
            ("password", NEW_PASSWORD),
            ("password_confirmation", NEW_PASSWORD),
            ("email", "nadia.crouzet@example.org"),
            ("email_confirmation", "nadia.crouzet@example.org"),
        ],
    )
    .await;
    assert_eq!(done.status(), 200);
    let link = app.last_mail_to("nadia.crouzet@example.org").link("http");
    let confirm_page = page_text(&browser, &link).await;
    let confirmed = post(
        &app,
        &browser,
        &confirm_page,
        "/confirmation",
        &[("jeton", &input_value(&confirm_page, "jeton").unwrap())],
    )
    .await;
    assert_eq!(confirmed.status(), 200);

    // Signed in with the principal: « Enfants » shows Dylan alone.
    let browser = signed_in(&app, &dylan_account, NEW_PASSWORD).await;
    let account = page_text(&browser, &app.url("/compte")).await;
    assert!(account.contains("id=\"enfants\"") && account.contains("Dylan Crouzet"));
    assert!(!account.contains("Florian"));
    assert!(account.contains("href=\"/compte/regroupement\""));
    assert_eq!(
        children_in_id_token(&app, &browser, &client).await,
        ["Dylan"]
    );

    // Florian's letter: its identifier and provisional password, then Florian's birth date.
    let (status, page) = propose(&app, &browser, &florian_account, &florian_password, "").await;
    assert_eq!(status, 400);
    assert!(
        page.contains("retapez le mot de passe provisoire")
            && page.contains("saisissez aussi la date de naissance"),
        "{page}"
    );
    // The birth date typed, the password forgotten (its field comes back
    // empty): told as missing, not as wrong.
    let (status, page) = propose(&app, &browser, &florian_account, "", "12/03/2014").await;
    assert_eq!(status, 400);
    assert!(
        page.contains(&fr("Le champ « mot de passe du compte » est obligatoire."))
            && !page.contains("mot de passe incorrect"),
        "{page}"
    );
    // Both fields empty: both told, each at its field.
    let (status, page) = propose(&app, &browser, "", "", "").await;
    assert_eq!(status, 400);
    assert!(
        page.contains(
            r#"aria-invalid="true" autofocus aria-describedby="erreur-other_identifier""#
        ) && page.contains(
            r#"aria-invalid="true" aria-describedby="erreur-other_password password-hint""#
        ) && page.contains(&fr("Le champ « identifiant du compte » est obligatoire.")),
        "{page}"
    );
    let (status, page) = propose(
        &app,
        &browser,
        &florian_account,
        &florian_password,
        "04/05/2011",
    )
    .await;
    assert_eq!(status, 400, "Dylan's birth date is not on Florian's letter");
    assert!(page.contains("La date de naissance ne correspond pas"));
    // The field in error has the focus, not the identifier's.
    let focused: Vec<&str> = page
        .split("<input")
        .filter(|input| input.contains("autofocus"))
        .collect();
    assert_eq!(focused.len(), 1, "{page}");
    assert!(focused[0].contains(r#"id="birthdate""#), "{}", focused[0]);
    let (status, confirmation) = propose(
        &app,
        &browser,
        &florian_account,
        &florian_password,
        "12/03/2014",
    )
    .await;
    assert_eq!(status, 200);
    assert!(confirmation.contains("Élèves rattachés à votre compte"));
    let principal_side = confirmation
        .find("Élèves rattachés à votre compte")
        .unwrap();
    let other_side = confirmation
        .find("Élèves rattachés au compte que vous souhaitez regrouper")
        .unwrap();
    assert!(confirmation[principal_side..other_side].contains("Dylan Crouzet"));
    assert!(confirmation[other_side..].contains("Florian Crouzet"));

    // Validated in English: the letter's account never signed in, so its
    // notice speaks the language of the grouping (most often its holder's).
    let in_language = async |lang: &str| {
        let url = app.url(&format!("/langue?lang={lang}&next=/compte"));
        browser.get(url).send().await.unwrap();
    };
    in_language("en").await;
    let (status, done) = validate(&app, &browser, &confirmation).await;
    assert_eq!(status, 200);
    assert!(
        done.contains("The accounts have been grouped successfully."),
        "{done}"
    );
    let notice = app.last_mail_to("nadia.crouzet@example.org");
    assert_eq!(notice.subject, "Your account was grouped");
    in_language("fr").await;
    // The same confirmation cannot be validated twice.
    assert_eq!(validate(&app, &browser, &confirmation).await.0, 409);
    // The page that told it is a GET of its own, and tells it once: shown
    // again (a reload), it leads to the children, with no error.
    let again = browser
        .get(app.url("/compte/regroupement/effectue"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.url().path(), "/compte");
    let again = again.text().await.unwrap();
    assert!(!again.contains("effectuée avec succès") && !again.contains("Erreur"));

    let account = page_text(&browser, &app.url("/compte")).await;
    assert!(account.contains("Dylan Crouzet") && account.contains("Florian Crouzet"));
    assert_eq!(
        children_in_id_token(&app, &browser, &client).await,
        ["Dylan", "Florian"]
    );
    // The letter account is closed: it no longer signs in, and its letter,
    // still in the other parent's hands, says where the child went; a wrong
    // password tells nothing.
    let other_parent = crate::helpers::browser();
    let login = page_text(&other_parent, &app.url("/login")).await;
    let refused = submit_login(
        &app,
        &other_parent,
        &login,
        &florian_account,
        &florian_password,
    )
    .await;
    assert_eq!(refused.status(), 403);
    let page = refused.text().await.unwrap();
    assert!(
        page.contains("Ce compte a été regroupé avec un autre compte"),
        "{page}"
    );
    assert_eq!(login_status(&app, &florian_account, "ZZZZ2222").await, 401);
    let closed = app.account_named(&florian_account).await;
    assert_eq!(closed.state, clef::accounts::AccountState::Closed);
    assert_eq!(
        closed.provisional_password, None,
        "the letter's secret is gone"
    );
    assert!(closed.password_hash.unwrap().starts_with("$argon2id$"));
}

#[tokio::test]
async fn grouping_the_other_legal_guardians_account_makes_a_joint_account() {
    let app = spawn_app().await;
    let family = app.family().await;
    let other = app
        .account("marc.martin", AccountKind::Guardian, None, None)
        .await;
    // Marc is responsable légal 2 of Léa, and the only guardian of a third child.
    let college = app.establishment("0590001A", "Collège Jean Moulin").await;
    let zoe = app
        .account(
            "zoe.martin",
            AccountKind::Student,
            Some((&college, "6 C")),
            Some("2014-01-02"),
        )
        .await;
    for (child, rank) in [(&family.children[0], 2), (&zoe, 1)] {
        clef::accounts::store::link_guardian(
            &app.app.db,
            &other.id,
            &child.id,
            Rank::new(rank).unwrap(),
            app.app.now(),
        )
        .await
        .unwrap();
    }
    let browser = signed_in(&app, "claire.martin", PASSWORD).await;
    let (status, confirmation) = propose(&app, &browser, "marc.martin", PASSWORD, "").await;
    assert_eq!(status, 200, "{confirmation}");
    assert_eq!(validate(&app, &browser, &confirmation).await.0, 200);
    let children = clef::accounts::store::children(&app.app.db, &family.guardian.id)
        .await
        .unwrap();
    let mut names: Vec<(&str, i64)> = children
        .iter()
        .map(|c| (c.given_name.as_str(), c.rank))
        .collect();
    names.sort();
    // Léa once, still with Claire's rank; Zoé joins with Marc's.
    assert_eq!(names, [("Hugo", 1), ("Lea", 1), ("Zoe", 1)]);
    // Marc's password now tells him where his children went; a wrong one
    // tells nothing.
    // Tried again and again, it is still told, never locked out (the right
    // password is not a failed attempt: five pass before the delay starts);
    // the identifier is the field to change, not the password.
    for _ in 0..7 {
        let marc = crate::helpers::browser();
        let login = page_text(&marc, &app.url("/login")).await;
        let refused = submit_login(&app, &marc, &login, "marc.martin", PASSWORD).await;
        assert_eq!(refused.status(), 403);
        let page = refused.text().await.unwrap();
        assert!(page.contains("Ce compte a été regroupé avec un autre compte"));
        let password = &page[page.find("id=\"password\"").unwrap()..];
        let password = &password[..password.find('>').unwrap()];
        assert!(!password.contains("aria-invalid"), "{password}");
        assert!(page.contains("<title>Erreur — Connexion — Clef</title>"));
    }
    assert_eq!(login_status(&app, "marc.martin", "Faux2026mdp").await, 401);
    // The school breaks the grouping for Zoé: her new letter is in the name
    // of the parent she came with (Marc), not of the account that held her.
    let detached = clef::accounts::grouping::detach(&app.app, &family.guardian.id, &zoe.id, None)
        .await
        .unwrap();
    assert_eq!(
        (
            detached.guardian.given_name.as_str(),
            detached.guardian.family_name.as_str()
        ),
        ("Marc", "Martin"),
        "{}",
        detached.guardian.identifier
    );
    assert!(detached.guardian.identifier.starts_with("marc.martin"));
    // Marc is told, and whom to ask if he did not group it himself.
    let notice = app
        .outbox()
        .into_iter()
        .find(|m| m.to == "marc.martin@example.org")
        .expect("a notice to the closed account's address");
    assert_eq!(notice.subject, "Regroupement de votre compte");
    assert!(
        notice.text.contains("avec le compte claire.martin"),
        "{}",
        notice.text
    );
    assert!(notice.text.contains("contactez votre établissement"));
    // Each account's trail names the other.
    assert!(
        trail(&app, &other.id)
            .await
            .iter()
            .any(|d| d.contains("grouped into claire.martin"))
    );
    assert!(
        trail(&app, &family.guardian.id)
            .await
            .iter()
            .any(|d| d.contains("marc.martin grouped into it"))
    );
}

/// The audit details of an account's grouping events.
async fn trail(app: &TestApp, account_id: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT outcome || ': ' || COALESCE(detail, '') FROM audit_events \
         WHERE account_id = $1 AND event = 'grouping'",
    )
    .bind(account_id)
    .fetch_all(&app.app.db)
    .await
    .unwrap()
}

/// A proposal checked with the other account's password is void once that
/// password changed (its owner reset it, the school gave a new letter): who
/// typed the old one may no longer hold the account.
#[tokio::test]
async fn a_proposal_is_void_once_the_other_account_s_password_changed() {
    let app = spawn_app().await;
    app.family().await;
    app.account("marc.martin", AccountKind::Guardian, None, None)
        .await;
    let browser = signed_in(&app, "claire.martin", PASSWORD).await;
    let (status, confirmation) = propose(&app, &browser, "marc.martin", PASSWORD, "").await;
    assert_eq!(status, 200, "{confirmation}");
    let hash = app
        .app
        .passwords
        .hash(&secrecy::SecretString::from(NEW_PASSWORD.to_owned()))
        .await
        .unwrap();
    sqlx::query("UPDATE accounts SET password_hash = $1 WHERE identifier = 'marc.martin'")
        .bind(&hash)
        .execute(&app.app.db)
        .await
        .unwrap();
    let (status, page) = validate(&app, &browser, &confirmation).await;
    assert_ne!(status, 200, "{page}");
    assert!(page.contains("a expiré"), "{page}");
    assert_eq!(login_status(&app, "marc.martin", NEW_PASSWORD).await, 303);
}

#[tokio::test]
async fn every_refusal_has_its_message_and_changes_nothing() {
    let app = spawn_app().await;
    app.family().await;
    let staff = app
        .account("paul.proviseur", AccountKind::Staff, None, None)
        .await;
    let closed = app
        .account("ancien.compte", AccountKind::Guardian, None, None)
        .await;
    sqlx::query("UPDATE accounts SET state = 'closed' WHERE id = $1")
        .bind(&closed.id)
        .execute(&app.app.db)
        .await
        .unwrap();
    app.establishment(UAI, "Collège Ausone").await;
    app.import(UAI, CSV.as_bytes()).await.unwrap();
    let (letter_account, letter_password) = letter_of(&app, "Florian").await;
    let browser = signed_in(&app, "claire.martin", PASSWORD).await;
    let guardianships = app.count("guardianships").await;

    for (identifier, password, birthdate, message) in [
        (
            "lea.martin",
            PASSWORD,
            "",
            "ce compte est celui d'un élève ou d'un personnel",
        ),
        (
            staff.identifier.as_str(),
            PASSWORD,
            "",
            "ce compte est celui d'un élève ou d'un personnel",
        ),
        (
            "claire.martin",
            PASSWORD,
            "",
            "C'est le compte avec lequel vous êtes connecté",
        ),
        (
            "ancien.compte",
            PASSWORD,
            "",
            "Ce compte a déjà été regroupé ou fermé",
        ),
        (
            "lea.martin",
            "Mauvais2026",
            "",
            "Identifiant ou mot de passe incorrect.",
        ),
        (
            "personne.inconnue",
            PASSWORD,
            "",
            "Identifiant ou mot de passe incorrect.",
        ),
        (
            letter_account.as_str(),
            "AAAAAAAA",
            "12/03/2014",
            "Identifiant ou mot de passe incorrect.",
        ),
        (
            letter_account.as_str(),
            letter_password.as_str(),
            "01/01/2001",
            "La date de naissance ne correspond pas",
        ),
    ] {
        let (status, page) = propose(&app, &browser, identifier, password, birthdate).await;
        assert_eq!(status, 400, "{identifier}");
        assert!(page.contains(message), "{identifier}: {message}");
    }
    // An expired letter no longer groups.
    app.clock.advance(95 * 24 * 3600);
    let browser = signed_in(&app, "claire.martin", PASSWORD).await;
    let (status, page) = propose(
        &app,
        &browser,
        &letter_account,
        &letter_password,
        "12/03/2014",
    )
    .await;
    assert_eq!(status, 400);
    assert!(page.contains("a dépassé son délai"), "{page}");
    assert_eq!(app.count("guardianships").await, guardianships);
    assert_eq!(
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM accounts WHERE state = 'closed'")
            .fetch_one(&app.app.db)
            .await
            .unwrap(),
        1,
        "only the account closed by the test"
    );
}

#[tokio::test]
async fn wrong_passwords_for_the_other_account_are_limited_like_login() {
    let app = spawn_app().await;
    app.family().await;
    app.account("marc.martin", AccountKind::Guardian, None, None)
        .await;
    let browser = signed_in(&app, "claire.martin", PASSWORD).await;
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(
            propose(&app, &browser, "marc.martin", "Mauvais2026", "")
                .await
                .0,
        );
    }
    assert_eq!(statuses[..5], [400; 5]);
    assert_eq!(statuses[5], 429, "{statuses:?}");
    // The attempts are on the trail of the account tried.
    let marc = app.account_named("marc.martin").await;
    let tried = trail(&app, &marc.id).await;
    assert_eq!(
        tried
            .iter()
            .filter(|d| *d == "failed: asked by claire.martin: wrong password")
            .count(),
        5,
        "{tried:?}"
    );
}

/// The browser Marc signed in with is remembered for him, however his
/// identifier is typed: someone keeping his account delayed does not stop
/// grouping from that browser.
#[tokio::test]
async fn a_remembered_browser_groups_while_the_other_account_is_delayed() {
    let app = spawn_app().await;
    app.family().await;
    app.account("marc.martin", AccountKind::Guardian, None, None)
        .await;
    let browser = browser();
    for identifier in ["marc.martin", "claire.martin"] {
        let page = page_text(&browser, &app.url("/login")).await;
        let response = submit_login(&app, &browser, &page, identifier, PASSWORD).await;
        assert_eq!(response.status(), 303, "{identifier} signs in");
    }
    for _ in 0..8 {
        login_status(&app, "marc.martin", "Mauvais2026").await;
    }
    assert_eq!(login_status(&app, "marc.martin", PASSWORD).await, 429);
    let (status, _) = propose(&app, &browser, " Marc.Martin", "Mauvais2026", "").await;
    assert_eq!(status, 400, "a wrong password, checked");
}

#[tokio::test]
async fn only_guardians_have_children_and_grouping() {
    let app = spawn_app().await;
    app.family().await;
    let browser = signed_in(&app, "lea.martin", PASSWORD).await;
    let account = page_text(&browser, &app.url("/compte")).await;
    assert!(!account.contains("id=\"enfants\""));
    let form = browser
        .get(app.url("/compte/regroupement"))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 403);
    // Not signed in: the login page.
    let anonymous = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url("/compte/regroupement"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 303);
}

#[tokio::test]
async fn a_guardian_finds_each_childs_services_beside_the_child() {
    let app = spawn_app().await;
    app.family().await;
    sqlx::query("UPDATE establishments SET portal_url = 'https://ent.lycee-chatelet.example' WHERE uai = '0590002B'")
        .execute(&app.app.db)
        .await
        .unwrap();
    sqlx::query("UPDATE accounts SET phone = '+33612345678' WHERE identifier = 'claire.martin'")
        .execute(&app.app.db)
        .await
        .unwrap();
    let browser = signed_in(&app, "claire.martin", PASSWORD).await;
    let page = page_text(&browser, &app.url("/compte")).await;
    // What services may receive about her is on her page: her phone, which
    // she cannot change here, and her children's birth dates.
    assert!(
        page.contains(&fr(
            "<dt>Téléphone portable</dt><dd><span class=\"nowrap\">06 12 34 56 78</span>"
        )),
        "{page}"
    );
    // Each child once, with its own establishment's services.
    let item = |name: &str| {
        let start = page.find(&format!("<h3>{name}</h3>")).expect(name);
        page[start..start + page[start..].find("</li>").unwrap()].to_owned()
    };
    let (lea, hugo) = (item("Lea Martin"), item("Hugo Martin"));
    assert_eq!(page.matches("Lea Martin").count(), 1, "{page}");
    assert_eq!(page.matches("<h3>Hugo Martin</h3>").count(), 1, "{page}");
    assert!(!lea.contains("<a "), "no portal for Léa's school: {lea}");
    assert!(hugo.contains("Lycée Albert Châtelet"), "{hugo}");
    assert!(hugo.contains("Né(e) le 03&#x2f;02&#x2f;2009"), "{hugo}");
    assert!(lea.contains("Né(e) le 14&#x2f;05&#x2f;2013"), "{lea}");
    assert!(
        hugo.replace("&#x2f;", "/").contains(
            "<a href=\"https://ent.lycee-chatelet.example\">Accéder aux services de l'établissement\
             <span class=\"sr-only\"> — Hugo Martin</span></a>"
        ),
        "{hugo}"
    );
}
