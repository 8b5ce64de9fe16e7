//! The establishment back office (SPEC §3.9; issue 11, first part): staff
//! scoped to their establishments on every route, the activation funnel, the
//! accounts by class, and an account's audit trail.

use clef::accounts::AccountKind;
use clef::accounts::staff;

use crate::helpers::*;

const SCHOOL_A: &str = "0590011A";
const SCHOOL_B: &str = "0590022B";
const CSV_A: &str = "N° élève;Nom;Prénom;Date de naissance;Classe;Nom responsable 1;Prénom responsable 1;Courriel responsable 1\n\
    1;Aubert;Anna;01/02/2012;5 A;Aubert;Paul;paul.aubert@example.org\n\
    2;Blanc;Bruno;03/04/2012;5 A;Blanc;Marie;marie.blanc@example.org\n\
    3;Colin;Chloe;05/06/2011;4 B;Colin;Luc;luc.colin@example.org\n";
const CSV_B: &str = "N° élève;Nom;Prénom;Date de naissance;Classe;Nom responsable 1;Prénom responsable 1;Courriel responsable 1\n\
    9;Durand;Dora;07/08/2010;3 C;Durand;Eve;eve.durand@example.org\n";

struct Schools {
    app: TestApp,
}

impl Schools {
    async fn new() -> Self {
        let app = spawn_app().await;
        app.establishment(SCHOOL_A, "Collège A").await;
        app.establishment(SCHOOL_B, "Collège B").await;
        app.import(SCHOOL_A, CSV_A.as_bytes()).await.unwrap();
        app.import(SCHOOL_B, CSV_B.as_bytes()).await.unwrap();
        Self { app }
    }

    /// A staff member of `uais` (none: the academy operator), signed in.
    async fn staff(&self, identifier: &str, uais: &[&str]) -> reqwest::Client {
        let account = self
            .app
            .account(identifier, AccountKind::Staff, None, None)
            .await;
        if uais.is_empty() {
            staff::grant(&self.app.app.db, &account, None, 0)
                .await
                .unwrap();
        }
        for uai in uais {
            let uai = clef::domain::Uai::parse(uai).unwrap();
            let establishment = clef::accounts::store::establishment_by_uai(&self.app.app.db, &uai)
                .await
                .unwrap()
                .unwrap();
            staff::grant(&self.app.app.db, &account, Some(&establishment.id), 0)
                .await
                .unwrap();
        }
        self.signed_in(identifier).await
    }

    async fn signed_in(&self, identifier: &str) -> reqwest::Client {
        let browser = browser();
        let page = page_text(&browser, &self.app.url("/login")).await;
        let response = submit_login(&self.app, &browser, &page, identifier, PASSWORD).await;
        assert_eq!(response.status(), 303, "{identifier} signs in");
        browser
    }

    /// Marie Blanc (a parent of school A), made the parent of Dora, a pupil
    /// of school B too: her account as it is then.
    async fn marie_with_a_child_in_school_b(&self) -> clef::accounts::Account {
        let marie = self.app.account_named("marie.blanc").await;
        let dora = self.app.account_named("dora.durand").await;
        clef::accounts::store::link_guardian(
            &self.app.app.db,
            &marie.id,
            &dora.id,
            clef::domain::Rank::new(2).unwrap(),
            self.app.app.now(),
        )
        .await
        .unwrap();
        marie
    }

    async fn student_id(&self, uai: &str) -> String {
        sqlx::query_scalar(
            "SELECT a.id FROM accounts a JOIN establishments e ON e.id = a.establishment_id \
             WHERE e.uai = $1 AND a.kind = 'student' ORDER BY a.identifier LIMIT 1",
        )
        .bind(uai)
        .fetch_one(&self.app.app.db)
        .await
        .unwrap()
    }
}

/// « Imprimer les courriers » at `path` (with its query): the page the GET
/// shows, then its form POSTed as it is filled (its CSRF token and the
/// selection, and `password` when the page asks for it).
async fn print_letters(
    app: &TestApp,
    staff: &reqwest::Client,
    path: &str,
    password: Option<&str>,
) -> reqwest::Response {
    let page = staff.get(app.url(path)).send().await.unwrap();
    assert_eq!(page.status(), 200, "{path}");
    let page = page.text().await.unwrap();
    assert!(page.contains("Imprimer les courriers"), "{page}");
    let mut form: Vec<(String, String)> = ["csrf", "format", "classe", "compte"]
        .iter()
        .filter_map(|name| Some(((*name).to_owned(), input_value(&page, name)?)))
        .collect();
    if let Some(password) = password {
        form.push(("password".to_owned(), password.to_owned()));
    }
    let action = path.split('?').next().unwrap();
    staff
        .post(app.url(action))
        .form(&form)
        .send()
        .await
        .unwrap()
}

async fn status(browser: &reqwest::Client, url: &str) -> u16 {
    browser.get(url).send().await.unwrap().status().as_u16()
}

/// A secretary who signs in with no application asking lands in the
/// establishment's area, and « Mon compte » leads back to it; a parent still
/// lands on « Mon compte », which has no such link.
#[tokio::test]
async fn staff_sign_in_to_their_establishment_s_area_and_find_it_from_their_account() {
    let schools = Schools::new().await;
    let app = &schools.app;
    let secretary = schools.staff("secretariat.a", &[SCHOOL_A]).await;
    let again = browser();
    let page = page_text(&again, &app.url("/login")).await;
    let landed = submit_login(app, &again, &page, "secretariat.a", PASSWORD).await;
    assert_eq!(location(&landed), "/etablissement");
    let account = page_text(&secretary, &app.url("/compte")).await;
    assert!(account.contains("href=\"/etablissement\""), "{account}");
    app.account("parent.test", AccountKind::Guardian, None, None)
        .await;
    let parent = browser();
    let page = page_text(&parent, &app.url("/login")).await;
    let landed = submit_login(app, &parent, &page, "parent.test", PASSWORD).await;
    assert_eq!(location(&landed), "/compte");
    assert!(
        !page_text(&parent, &app.url("/compte"))
            .await
            .contains("etablissement\"")
    );
}

/// A secretary who changes school loses the old one at her next request; one
/// who leaves loses everything: her account is closed, her open session
/// stops, and her password opens nothing.
#[tokio::test]
async fn revoked_staff_lose_the_establishment_at_once_and_with_no_role_left_their_account() {
    let schools = Schools::new().await;
    let app = &schools.app;
    let secretary = schools.staff("secretariat.ab", &[SCHOOL_A, SCHOOL_B]).await;
    let home = |uai: &str| app.url(&format!("/etablissement/{uai}"));
    assert_eq!(status(&secretary, &home(SCHOOL_A)).await, 200);
    let account = app.account_named("secretariat.ab").await;
    let school_a = clef::accounts::store::establishment_by_uai(
        &app.app.db,
        &clef::domain::Uai::parse(SCHOOL_A).unwrap(),
    )
    .await
    .unwrap()
    .unwrap();

    let revoked = staff::revoke(&app.app.db, &account, Some(&[school_a.id]), 0)
        .await
        .unwrap();
    assert_eq!(revoked, staff::Revoked::Kept { roles: 1 });
    assert_eq!(status(&secretary, &home(SCHOOL_A)).await, 403);
    assert_eq!(status(&secretary, &home(SCHOOL_B)).await, 200);

    let revoked = staff::revoke(&app.app.db, &account, None, 0).await.unwrap();
    assert_eq!(revoked, staff::Revoked::Closed);
    let after = secretary.get(home(SCHOOL_B)).send().await.unwrap();
    assert_eq!(after.status(), 303, "the open session stopped");
    assert_eq!(location(&after), "/login");
    let again = browser();
    let page = page_text(&again, &app.url("/login")).await;
    let refused = submit_login(app, &again, &page, "secretariat.ab", PASSWORD).await;
    assert_eq!(
        refused.status(),
        403,
        "closed, told to whoever has its password"
    );
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("Ce compte a été fermé")
    );
}

/// The letters hold provisional passwords: a staff member signed in more
/// than 10 minutes ago (an unattended desk) confirms with their password,
/// the selection carried through the confirmation.
/// A link to the letters from elsewhere (a mail, another site: the session
/// cookie goes with a top-level GET) prints nothing, even for a staff member
/// who signed in a moment ago: the GET shows « Imprimer les courriers », no
/// provisional password leaves and nothing is marked printed; a POST
/// without the page's CSRF token is refused.
#[tokio::test]
async fn a_link_to_the_letters_prints_nothing_without_the_pages_form() {
    let schools = Schools::new().await;
    let app = &schools.app;
    let staff_a = schools.staff("secretariat.a", &[SCHOOL_A]).await;
    let anna = app.account_named("anna.aubert").await;
    for query in ["", "?format=csv", "?format=csv&classe=5%20A"] {
        let url = app.url(&format!("/etablissement/{SCHOOL_A}/courriers{query}"));
        let shown = staff_a.get(&url).send().await.unwrap();
        assert_eq!(shown.status(), 200);
        let kind = shown.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(kind.starts_with("text/html"), "{query}: {kind}");
        let page = shown.text().await.unwrap();
        assert!(page.contains("Imprimer les courriers"), "{page}");
        assert!(!page.contains("anna.aubert"), "{page}");
        // It says what it will print: which accounts, in which file.
        let what = match query {
            "" => "un fichier PDF, une page par courrier",
            _ => "un fichier CSV pour un publipostage",
        };
        assert!(page.contains(&fr(what)), "{query}: {page}");
        assert_eq!(
            page.contains("la classe 5\u{a0}A"),
            query.contains("classe"),
            "{page}"
        );
        // And when a letter's months start.
        assert!(
            page.contains(&fr("Un courrier imprimé pour la première fois est daté de ce jour : ses 3 mois pour activer le compte commencent aujourd")),
            "{page}"
        );
    }
    assert_eq!(
        app.account_named("anna.aubert").await.letter_date,
        None,
        "no letter dated by a GET"
    );
    // A class the school does not have is not « all activated ».
    let url = app.url(&format!("/etablissement/{SCHOOL_A}/courriers?classe=6%20Z"));
    let unknown = staff_a.get(&url).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    let page = unknown.text().await.unwrap();
    assert!(
        page.contains("aucun élève de l&#x27;établissement n&#x27;est dans cette classe"),
        "{page}"
    );
    let forged = staff_a
        .post(app.url(&format!("/etablissement/{SCHOOL_A}/courriers")))
        .form(&[("format", "csv")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let trail = clef::audit::trail(&app.app.db, Some(&anna.id), 0, 20)
        .await
        .unwrap();
    assert!(
        !trail.iter().any(|e| e
            .detail
            .as_deref()
            .is_some_and(|d| d.starts_with("letters printed"))),
        "{trail:?}"
    );
}

/// A PDF of more than a thousand letters is not laid out by the server (a
/// hundred megabytes at a time): the school is told to print class by class,
/// which works.
#[tokio::test]
async fn a_pdf_of_more_than_a_thousand_letters_is_printed_class_by_class() {
    let schools = Schools::new().await;
    let app = &schools.app;
    let letters = |n: usize| -> String {
        let a = char::from(b'a' + u8::try_from(n / 26).unwrap());
        let b = char::from(b'a' + u8::try_from(n % 26).unwrap());
        format!("{a}{b}")
    };
    let mut csv = String::from(CSV_B.lines().next().unwrap());
    for n in 0..500 {
        let class = if n < 20 { "6 A" } else { "6 B" };
        let name = letters(n);
        csv.push_str(&format!(
            "\n{};Martin{name};Jules;01/02/2013;{class};Martin{name};Anne;",
            100 + n
        ));
    }
    app.import(SCHOOL_B, csv.as_bytes()).await.unwrap();
    let staff_b = schools.staff("secretariat.b", &[SCHOOL_B]).await;
    // Told on the page that would print them, and by a POST all the same
    // (the CSRF token of another page of the back office).
    let url = app.url(&format!("/etablissement/{SCHOOL_B}/courriers"));
    let shown = page_text(&staff_b, &url).await;
    let other = page_text(
        &staff_b,
        &app.url(&format!("/etablissement/{SCHOOL_B}/courriers?classe=6%20A")),
    )
    .await;
    let posted = staff_b
        .post(&url)
        .form(&[("csrf", input_value(&other, "csrf").unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);
    assert!(
        posted.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    for page in [shown, posted.text().await.unwrap()] {
        assert!(
            page.contains(&fr("Cette sélection compte 1002 courriers")),
            "{page}"
        );
        assert!(
            page.contains(&fr("Imprimez-les classe par classe")),
            "{page}"
        );
        assert!(
            !page.contains("name=\"csrf\""),
            "no form to print them: {page}"
        );
    }
    // The CSV has no such bound.
    let csv = print_letters(
        app,
        &staff_b,
        &format!("/etablissement/{SCHOOL_B}/courriers?format=csv"),
        None,
    )
    .await;
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(csv.text().await.unwrap().lines().count(), 1003);
    let class = print_letters(
        app,
        &staff_b,
        &format!("/etablissement/{SCHOOL_B}/courriers?classe=6%20A"),
        None,
    )
    .await;
    assert_eq!(class.headers()["content-type"], "application/pdf");
    let pdf = class.bytes().await.unwrap();
    let document = lopdf::Document::load_mem(&pdf).unwrap();
    assert_eq!(document.get_pages().len(), 40);
    // In English too.
    let english = english_page_text(&staff_b, &url).await;
    assert!(
        english.contains("This selection holds 1002 letters: more than the 1000 one PDF file"),
        "{english}"
    );
    assert!(
        english.contains("Too many letters for one file"),
        "{english}"
    );
}

#[tokio::test]
async fn letters_ask_for_the_password_again_after_ten_minutes() {
    let schools = Schools::new().await;
    let app = &schools.app;
    let staff_a = schools.staff("secretariat.a", &[SCHOOL_A]).await;
    let path = format!("/etablissement/{SCHOOL_A}/courriers?format=csv&classe=5%20A");
    let url = app.url(&path);
    // Signed in a moment ago: the page asks no password, its POST prints.
    let page = page_text(&staff_a, &url).await;
    assert!(!page.contains("name=\"password\""), "{page}");
    let fresh = print_letters(app, &staff_a, &path, None).await;
    assert_eq!(fresh.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(
        fresh.headers()["content-disposition"],
        format!("attachment; filename=\"courriers-{SCHOOL_A}-5-A.csv\""),
        "named after the class it holds"
    );

    // A page shown a moment ago, sent after the 10 minutes: the password is
    // asked for, and nothing counted as a failed one.
    let shown = page_text(&staff_a, &url).await;
    app.clock.advance(11 * 60);
    let late = staff_a
        .post(app.url(&format!("/etablissement/{SCHOOL_A}/courriers")))
        .form(&[
            ("csrf", input_value(&shown, "csrf").unwrap()),
            ("format", "csv".to_owned()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(late.status(), 200);
    let late = late.text().await.unwrap();
    assert!(late.contains("name=\"password\"") && !late.contains("Mot de passe incorrect"));
    let staff = app.account_named("secretariat.a").await;
    let failed = |trail: &[clef::audit::Recorded]| {
        trail
            .iter()
            .any(|e| e.event == "login" && e.outcome == "failed")
    };
    let trail = clef::audit::trail(&app.app.db, Some(&staff.id), 0, 10)
        .await
        .unwrap();
    assert!(!failed(&trail), "{trail:?}");
    let stale = staff_a.get(&url).send().await.unwrap();
    assert_eq!(stale.status(), 200);
    assert!(
        stale.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = stale.text().await.unwrap();
    assert!(page.contains("Imprimer les courriers"), "{page}");
    assert!(
        !page.contains("anna.aubert"),
        "no letter before the password"
    );
    let post = |password: &'static str| {
        let page = page.clone();
        let staff_a = staff_a.clone();
        async move {
            let mut form: Vec<(String, String)> = ["csrf", "format", "classe"]
                .iter()
                .map(|name| ((*name).to_owned(), input_value(&page, name).unwrap()))
                .collect();
            form.push(("password".to_owned(), password.to_owned()));
            staff_a
                .post(app.url(&format!("/etablissement/{SCHOOL_A}/courriers")))
                .form(&form)
                .send()
                .await
                .unwrap()
        }
    };
    assert!(page.contains("Télécharger"), "a CSV is downloaded");
    let wrong = post("pas-le-bon").await;
    assert_eq!(wrong.status(), 400);
    assert!(
        wrong
            .text()
            .await
            .unwrap()
            .contains("Mot de passe incorrect")
    );
    // A wrong password is on the staff member's trail, as a failed login.
    let trail = clef::audit::trail(&app.app.db, Some(&staff.id), 0, 10)
        .await
        .unwrap();
    assert!(
        trail.iter().any(|e| e.event == "login"
            && e.outcome == "failed"
            && e.detail.as_deref() == Some("back-office password check")),
        "{trail:?}"
    );
    let printed = post(PASSWORD).await;
    assert_eq!(printed.status(), 200);
    assert_eq!(printed.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = printed.text().await.unwrap();
    assert!(
        csv.contains("anna.aubert") && !csv.contains("chloe.colin"),
        "the class 5 A only"
    );
    // Counted like logins: five wrong, then a wait, said in Retry-After.
    for _ in 0..5 {
        assert_eq!(post("pas-le-bon").await.status(), 400);
    }
    let held = post(PASSWORD).await;
    assert_eq!(held.status(), 429);
    assert!(held.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn staff_reach_their_establishment_only_on_every_route() {
    let schools = Schools::new().await;
    let app = &schools.app;
    let staff_a = schools.staff("secretariat.a", &[SCHOOL_A]).await;
    let academy = schools.staff("rectorat", &[]).await;
    app.family().await;
    let parent = schools.signed_in("claire.martin").await;
    let student_a = schools.student_id(SCHOOL_A).await;
    let student_b = schools.student_id(SCHOOL_B).await;

    let routes_of = |uai: &str, student: &str| {
        vec![
            format!("/etablissement/{uai}"),
            format!("/etablissement/{uai}/comptes"),
            format!("/etablissement/{uai}/comptes?classe=5%20A&etat=provisional&q=a"),
            format!("/etablissement/{uai}/compte/{student}"),
            format!("/etablissement/{uai}/courriers"),
            format!("/etablissement/{uai}/courriers?format=csv"),
            format!("/etablissement/{uai}/import"),
        ]
    };
    // Staff of A: every route of A, none of B, and no account of B through A.
    for route in routes_of(SCHOOL_A, &student_a) {
        assert_eq!(status(&staff_a, &app.url(&route)).await, 200, "{route}");
        assert_eq!(
            status(&academy, &app.url(&route)).await,
            200,
            "academy: {route}"
        );
        assert_eq!(
            status(&parent, &app.url(&route)).await,
            403,
            "a parent: {route}"
        );
        assert_eq!(
            status(&browser(), &app.url(&route)).await,
            303,
            "nobody: {route}"
        );
    }
    for route in routes_of(SCHOOL_B, &student_b) {
        assert_eq!(status(&staff_a, &app.url(&route)).await, 403, "{route}");
        assert_eq!(
            status(&academy, &app.url(&route)).await,
            200,
            "academy: {route}"
        );
    }
    let through_a = format!("/etablissement/{SCHOOL_A}/compte/{student_b}");
    assert_eq!(status(&staff_a, &app.url(&through_a)).await, 403);
    // An unknown establishment answers like someone else's.
    assert_eq!(
        status(&staff_a, &app.url("/etablissement/0000000Z")).await,
        403
    );
    assert_eq!(
        status(&staff_a, &app.url("/etablissement/pas-un-uai")).await,
        403
    );
    // Each refusal is on the staff member's own trail, with what was asked.
    let secretary = app.account_named("secretariat.a").await;
    let refused: Vec<String> = clef::audit::trail(&app.app.db, Some(&secretary.id), 0, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event == "staff_action" && e.outcome == "refused")
        .filter_map(|e| e.detail)
        .collect();
    for asked in [
        format!("refused: establishment {SCHOOL_B}"),
        format!("refused: account {student_b} at {SCHOOL_A}"),
        "refused: establishment 0000000Z".to_owned(),
    ] {
        assert!(refused.contains(&asked), "{asked}: {refused:?}");
    }
    // The home page lists one's own establishments only.
    let home = page_text(&staff_a, &app.url("/etablissement")).await;
    assert!(home.contains(SCHOOL_A) && !home.contains(SCHOOL_B));
    let home = page_text(&academy, &app.url("/etablissement")).await;
    assert!(home.contains(SCHOOL_A) && home.contains(SCHOOL_B));
    assert_eq!(status(&parent, &app.url("/etablissement")).await, 403);
}

/// The numbers of the table row for `class` in the section after `heading`.
fn row(page: &str, heading: &str, class: &str) -> Vec<i64> {
    let section = &page[page.find(heading).expect(heading)..];
    let class = fr(class);
    let start = section
        .find(&format!(">{class}</a>"))
        .unwrap_or_else(|| section.find(&format!(">{class}</th>")).expect(&class));
    let row = &section[start..section[start..].find("</tr>").unwrap() + start];
    row.split("<td>")
        .skip(1)
        .map(|cell| cell.split('<').next().unwrap().trim().parse().unwrap())
        .collect()
}

/// The establishment's page says what its letters print: its address and
/// where they send families to sign in (Clef's own page until the academy
/// sets the school's portal).
#[tokio::test]
async fn the_establishment_page_shows_what_its_letters_print() {
    let schools = Schools::new().await;
    let app = &schools.app;
    let staff_a = schools.staff("secretariat.a", &[SCHOOL_A]).await;
    let url = app.url(&format!("/etablissement/{SCHOOL_A}"));
    let page = page_text(&staff_a, &url).await;
    assert!(
        page.contains("&#x2f;login <span")
            && page.contains(&fr("(le portail de l'établissement n'est pas renseigné)")),
        "{page}"
    );
    let uai = clef::domain::Uai::parse(SCHOOL_A).unwrap();
    let change = clef::accounts::EstablishmentChange {
        address: Some(Some("12 rue des Écoles".into())),
        city: Some(Some("59000 Lille".into())),
        portal_url: Some(Some("https://ent.example.fr/".into())),
        ..Default::default()
    };
    clef::accounts::store::update_establishment(&app.app.db, &uai, change)
        .await
        .unwrap();
    let page = page_text(&staff_a, &url).await;
    for shown in [
        "<dd>12 rue des Écoles, 59000 Lille</dd>",
        "<dd>https:&#x2f;&#x2f;ent.example.fr&#x2f;</dd>",
    ] {
        assert!(page.contains(&fr(shown)), "{shown}: {page}");
    }
}

#[tokio::test]
async fn the_funnel_counts_the_accounts_by_class_and_follows_activations() {
    let schools = Schools::new().await;
    let app = &schools.app;
    let staff_a = schools.staff("secretariat.a", &[SCHOOL_A]).await;
    let url = app.url(&format!("/etablissement/{SCHOOL_A}"));
    let page = page_text(&staff_a, &url).await;
    assert!(page.contains("<svg role=\"img\""), "a chart");
    // provisional, pending, active
    assert_eq!(
        row(&page, "Activation des comptes des élèves", "5 A"),
        [2, 0, 0]
    );
    assert_eq!(
        row(&page, "Activation des comptes des élèves", "4 B"),
        [1, 0, 0]
    );
    assert_eq!(
        row(&page, "Activation des comptes des élèves", "Total"),
        [3, 0, 0]
    );
    assert_eq!(
        row(&page, "Activation des comptes des responsables", "5 A"),
        [2, 0, 0]
    );

    // One parent activates (pending confirmation), one is made active.
    sqlx::query("UPDATE accounts SET state = 'pending_email' WHERE identifier = 'paul.aubert'")
        .execute(&app.app.db)
        .await
        .unwrap();
    sqlx::query("UPDATE accounts SET state = 'active' WHERE identifier = 'marie.blanc'")
        .execute(&app.app.db)
        .await
        .unwrap();
    let page = page_text(&staff_a, &url).await;
    assert_eq!(
        row(&page, "Activation des comptes des responsables", "5 A"),
        [0, 1, 1]
    );
    assert_eq!(
        row(&page, "Activation des comptes des responsables", "Total"),
        [1, 1, 1]
    );

    // The list filters by class and state, and searches names.
    let list = page_text(
        &staff_a,
        &app.url(&format!(
            "/etablissement/{SCHOOL_A}/comptes?classe=5%20A&etat=active"
        )),
    )
    .await;
    assert!(
        list.contains("marie.blanc")
            && !list.contains("paul.aubert")
            && !list.contains("chloe.colin")
    );
    // The class list is in the funnel's order: « 10 C » after « 5 A ».
    app.import(
        SCHOOL_A,
        "N° élève;Nom;Prénom;Date de naissance;Classe\n9;Durand;Inès;01/02/2008;10 C\n".as_bytes(),
    )
    .await
    .unwrap();
    let list_url = app.url(&format!("/etablissement/{SCHOOL_A}/comptes"));
    let list = page_text(&staff_a, &list_url).await;
    let at = |option: &str| {
        list.find(&format!("<option value=\"{option}\""))
            .expect(option)
    };
    assert!(at("4 B") < at("5 A") && at("5 A") < at("10 C"), "{list}");

    // A search is POSTed: a name never travels in an address.
    let csrf = input_value(&page_text(&staff_a, &list_url).await, "csrf").unwrap();
    let found = staff_a
        .post(&list_url)
        .form(&[("csrf", csrf.as_str()), ("q", "COLIN")])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        found.contains("chloe.colin")
            && found.contains("luc.colin")
            && !found.contains("anna.aubert")
    );
}

/// Names are found however their accents and capitals are typed, on
/// SQLite too (whose LOWER leaves « É » as it is).
#[tokio::test]
async fn a_search_finds_accented_names_typed_with_or_without_accents() {
    let schools = Schools::new().await;
    let app = &schools.app;
    let csv = "N° élève;Nom;Prénom;Date de naissance;Classe\n\
        7;LEFÈVRE;Élodie;01/02/2012;5 A\n\
        8;N’Diaye;Aminata;03/04/2012;5 A\n";
    app.import(SCHOOL_A, csv.as_bytes()).await.unwrap();
    let staff_a = schools.staff("secretariat.a", &[SCHOOL_A]).await;
    let list_url = app.url(&format!("/etablissement/{SCHOOL_A}/comptes"));
    let csrf = input_value(&page_text(&staff_a, &list_url).await, "csrf").unwrap();
    let search = async |typed: &str| {
        staff_a
            .post(&list_url)
            .form(&[("csrf", csrf.as_str()), ("q", typed)])
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    for typed in [
        "élodie",
        "Élodie",
        "ELODIE",
        "lefèvre",
        "Élodie Lefèvre",
        "elodie lefevre",
    ] {
        let found = search(typed).await;
        assert!(found.contains("elodie.lefevre"), "{typed}");
        assert!(!found.contains("anna.aubert"), "{typed}");
    }
    // Either apostrophe finds a name imported with the other.
    for typed in ["N'Diaye", "n’diaye", "ndiaye", "Aminata N'Diaye"] {
        assert!(search(typed).await.contains("aminata.ndiaye"), "{typed}");
    }
}

#[tokio::test]
async fn an_accounts_trail_shows_its_logins_newest_first() {
    let schools = Schools::new().await;
    let app = &schools.app;
    app.family().await;
    // Claire is not of school A: a staff member of A cannot read her trail…
    let staff_a = schools.staff("secretariat.a", &[SCHOOL_A]).await;
    let claire = app.account_named("claire.martin").await;
    let hers = app.url(&format!("/etablissement/{SCHOOL_A}/compte/{}", claire.id));
    assert_eq!(status(&staff_a, &hers).await, 403);
    // …but the academy operator can, with a failed login then a good one.
    let browser = browser();
    let page = page_text(&browser, &app.url("/login")).await;
    let failed = submit_login(app, &browser, &page, "claire.martin", "Mauvais2026").await;
    assert_eq!(failed.status(), 401);
    schools.signed_in("claire.martin").await;
    let academy = schools.staff("rectorat", &[]).await;
    let lea = app.account_named("lea.martin").await;
    let college = clef::accounts::store::establishment_by_id(
        &app.app.db,
        lea.establishment_id.as_deref().unwrap(),
    )
    .await
    .unwrap()
    .unwrap();
    let trail = page_text(
        &academy,
        &app.url(&format!(
            "/etablissement/{}/compte/{}",
            college.uai, claire.id
        )),
    )
    .await;
    let ok = trail
        .find("<td>Connexion</td><td>Réussi</td>")
        .expect("the good login");
    let failed = trail
        .find("<td>Connexion</td><td>Échoué</td>")
        .expect("the failed login");
    assert!(ok < failed, "newest first");
    assert!(
        !trail.contains("127.0.0.1"),
        "no address where a family signs in from"
    );
    let events = clef::audit::trail(&app.app.db, Some(&claire.id), 0, 10)
        .await
        .unwrap();
    assert!(
        events
            .iter()
            .all(|e| e.address.as_deref() == Some("127.0.0.1"))
    );
}

/// Posts an action on the account page of `account_id`, confirmed or not;
/// done, the page the answer redirects to (« Action effectuée », a GET).
async fn act(
    app: &TestApp,
    browser: &reqwest::Client,
    uai: &str,
    account_id: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let page_url = app.url(&format!("/etablissement/{uai}/compte/{account_id}"));
    let page = page_text(browser, &page_url).await;
    let csrf = input_value(&page, "csrf").expect("csrf");
    let mut fields = vec![("csrf", csrf.as_str())];
    fields.extend_from_slice(form);
    let answer = browser
        .post(app.url(&format!("/etablissement/{uai}/compte/{account_id}/action")))
        .form(&fields)
        .send()
        .await
        .unwrap();
    if answer.status() != 303 {
        return answer;
    }
    let done = location(&answer);
    let expected = format!("/etablissement/{uai}/compte/{account_id}/fait?resultat=");
    assert!(done.starts_with(&expected), "{done}");
    browser.get(app.url(&done)).send().await.unwrap()
}

#[tokio::test]
async fn staff_reset_close_and_correct_accounts_of_their_school_only_with_confirmation() {
    let schools = Schools::new().await;
    let app = &schools.app;
    let staff_a = schools.staff("secretariat.a", &[SCHOOL_A]).await;
    let staff_b = schools.staff("secretariat.b", &[SCHOOL_B]).await;
    // Marie activated her account; she is signed in somewhere.
    let marie = app.account_named("marie.blanc").await;
    let hash = app
        .app
        .passwords
        .hash(&secrecy::SecretString::from(PASSWORD.to_owned()))
        .await
        .unwrap();
    sqlx::query("UPDATE accounts SET state = 'active', password_hash = $1, email_verified_at = 1, provisional_password = NULL WHERE id = $2")
        .bind(&hash)
        .bind(&marie.id)
        .execute(&app.app.db)
        .await
        .unwrap();
    let marie_browser = schools.signed_in("marie.blanc").await;
    assert_eq!(account_page(app, &marie_browser).await.status(), 200);

    // Without the box ticked, nothing happens; staff of B cannot act on A's account.
    let unconfirmed = act(app, &staff_a, SCHOOL_A, &marie.id, &[("action", "reset")]).await;
    assert_eq!(unconfirmed.status(), 400);
    let csrf_b = input_value(
        &page_text(&staff_b, &app.url("/etablissement")).await,
        "csrf",
    );
    let foreign = staff_b
        .post(app.url(&format!(
            "/etablissement/{SCHOOL_A}/compte/{}/action",
            marie.id
        )))
        .form(&[
            ("csrf", csrf_b.unwrap_or_default().as_str()),
            ("action", "close"),
            ("confirm", "1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    assert_eq!(
        app.account_named("marie.blanc").await.state,
        clef::accounts::AccountState::Active
    );

    // Reset: a new letter, her session ends, the trail says who did it; the
    // old letter's wrong birth dates do not hold the new one back; the
    // consents given in her name are forgotten.
    let service = app.third_party_client().await;
    let consents_of_marie = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM consents WHERE account_id = $1")
            .bind(&marie.id)
            .fetch_one(&app.app.db)
            .await
            .unwrap()
    };
    sqlx::query(
        "INSERT INTO consents (account_id, client_id, scopes, granted_at) VALUES ($1, $2, 'openid children', 0)",
    )
    .bind(&marie.id)
    .bind(&service.0)
    .execute(&app.app.db)
    .await
    .unwrap();
    assert_eq!(consents_of_marie().await, 1);
    for _ in 0..20 {
        app.app
            .throttle
            .enter_birth_date("marie.blanc", app.app.now())
            .await
            .unwrap();
    }
    let reset = act(
        app,
        &staff_a,
        SCHOOL_A,
        &marie.id,
        &[("action", "reset"), ("confirm", "1")],
    )
    .await;
    assert_eq!(reset.status(), 200);
    // The page that says it is a GET of its own: shown again (a reload, the
    // back button), it resets nothing more; the letter printed stays good.
    let done = reset.url().clone();
    let letter = |letters: Vec<clef::provisioning::letters::Letter>| {
        letters
            .into_iter()
            .find(|l| l.identifier == "marie.blanc")
            .map(|l| l.password)
    };
    let printed = letter(app.letters(SCHOOL_A).await);
    let again = staff_a.get(done).send().await.unwrap();
    assert_eq!(again.status(), 200);
    let again = again.text().await.unwrap();
    assert!(again.contains("Action effectuée"), "{again}");
    assert!(again.contains("Imprimer le courrier"), "{again}");
    assert_eq!(letter(app.letters(SCHOOL_A).await), printed);
    assert_eq!(consents_of_marie().await, 0);
    let after = app.account_named("marie.blanc").await;
    assert_eq!(after.state, clef::accounts::AccountState::Provisional);
    assert!(
        app.letters(SCHOOL_A)
            .await
            .iter()
            .any(|l| l.identifier == "marie.blanc")
    );
    assert_eq!(
        account_page(app, &marie_browser).await.status(),
        303,
        "her session ended"
    );
    assert!(matches!(
        app.app
            .throttle
            .enter_birth_date("marie.blanc", app.app.now())
            .await
            .unwrap(),
        clef::accounts::throttle::Gate::Open
    ));
    let trail = clef::audit::trail(&app.app.db, Some(&marie.id), 0, 10)
        .await
        .unwrap();
    let staff_account = app.account_named("secretariat.a").await;
    let resets = trail.iter().filter(|e| {
        e.event == "staff_action"
            && e.actor_id.as_deref() == Some(staff_account.id.as_str())
            && e.detail.as_deref() == Some("reset")
    });
    assert_eq!(resets.count(), 1, "one reset, whatever the reloads");

    // The letters: a PDF of the account, a CSV of the class.
    let pdf = print_letters(
        app,
        &staff_a,
        &format!("/etablissement/{SCHOOL_A}/courriers?compte={}", marie.id),
        None,
    )
    .await;
    assert_eq!(pdf.status(), 200);
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    assert_eq!(
        pdf.headers()["content-disposition"],
        format!("attachment; filename=\"courriers-{SCHOOL_A}-marie.blanc.pdf\""),
        "named after the account it holds"
    );
    assert!(pdf.bytes().await.unwrap().starts_with(b"%PDF"));
    // Her new provisional password was printed: her trail says who did.
    let trail = clef::audit::trail(&app.app.db, Some(&marie.id), 0, 10)
        .await
        .unwrap();
    assert!(
        trail.iter().any(|e| e.event == "staff_action"
            && e.actor_id.as_deref() == Some(staff_account.id.as_str())
            && e.detail.as_deref() == Some(&*format!("letters printed: 1 ({SCHOOL_A})"))),
        "{trail:?}"
    );
    let csv = print_letters(
        app,
        &staff_a,
        &format!("/etablissement/{SCHOOL_A}/courriers?format=csv&classe=5%20A"),
        None,
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(
        csv.contains("marie.blanc") && csv.contains("anna.aubert") && !csv.contains("chloe.colin")
    );
    // A class printed: on the trail of each of its accounts.
    let anna = app.account_named("anna.aubert").await;
    let trail = clef::audit::trail(&app.app.db, Some(&anna.id), 0, 10)
        .await
        .unwrap();
    assert!(
        trail.iter().any(|e| e.event == "staff_action"
            && e.actor_id.as_deref() == Some(staff_account.id.as_str())
            && e.detail
                .as_deref()
                .is_some_and(|d| d.starts_with("letters printed: ")
                    && d.ends_with(&format!("({SCHOOL_A}, class 5 A)")))),
        "{trail:?}"
    );
    assert_eq!(
        status(
            &staff_b,
            &app.url(&format!("/etablissement/{SCHOOL_A}/courriers"))
        )
        .await,
        403
    );

    // Correcting a parent's address; closing an account.
    let paul = app.account_named("paul.aubert").await;
    let corrected = act(
        app,
        &staff_a,
        SCHOOL_A,
        &paul.id,
        &[
            ("action", "email"),
            ("email", "paul.aubert@exemple.fr"),
            ("confirm", "1"),
        ],
    )
    .await;
    assert_eq!(corrected.status(), 200);
    assert_eq!(
        app.account_named("paul.aubert").await.email.as_deref(),
        Some("paul.aubert@exemple.fr")
    );
    // The trail names the address set, and by whom.
    let trail = clef::audit::trail(&app.app.db, Some(&paul.id), 0, 10)
        .await
        .unwrap();
    assert!(
        trail.iter().any(|e| e.event == "staff_action"
            && e.actor_id.as_deref() == Some(staff_account.id.as_str())
            && e.detail.as_deref() == Some("correct_email: paul.aubert@exemple.fr")),
        "{trail:?}"
    );
    let closed = act(
        app,
        &staff_a,
        SCHOOL_A,
        &paul.id,
        &[("action", "close"), ("confirm", "1")],
    )
    .await;
    assert_eq!(closed.status(), 200);
    assert_eq!(
        app.account_named("paul.aubert").await.state,
        clef::accounts::AccountState::Closed
    );
}

/// Correcting an active parent's address mails both addresses: the school
/// spends the account's confirmation mails of the hour like the parent
/// does, and the sixth in the hour is refused, nothing changed.
#[tokio::test]
async fn staff_address_corrections_are_held_to_the_accounts_mails_of_the_hour() {
    let schools = Schools::new().await;
    let app = &schools.app;
    app.family().await;
    let academy = schools.staff("rectorat", &[]).await;
    let claire = app.account_named("claire.martin").await;
    let lea = app.account_named("lea.martin").await;
    let college = clef::accounts::store::establishment_by_id(
        &app.app.db,
        lea.establishment_id.as_deref().unwrap(),
    )
    .await
    .unwrap()
    .unwrap();
    let correct = |n: usize| {
        let email = format!("claire.{n}@exemple.fr");
        let (academy, uai, id) = (&academy, college.uai.clone(), claire.id.clone());
        async move {
            act(
                app,
                academy,
                &uai,
                &id,
                &[("action", "email"), ("email", &email), ("confirm", "1")],
            )
            .await
        }
    };
    let first = correct(0).await;
    assert_eq!(first.status(), 200);
    assert!(
        first
            .text()
            .await
            .unwrap()
            .contains("elle vaut pour le compte dès que la personne a ouvert son lien"),
        "not « when the account is activated »: it is"
    );
    // The mails say the school made the change: the parent did not.
    let confirm = app.last_mail_to("claire.0@exemple.fr");
    assert!(
        confirm
            .text
            .contains("Votre établissement a modifié l'adresse mail")
            && confirm
                .text
                .contains("Si vous n'avez rien demandé à votre établissement")
            && !confirm.text.contains("Vous avez modifié"),
        "{}",
        confirm.text
    );
    let notice = app.last_mail_to("claire.martin@example.org");
    assert!(
        notice
            .text
            .contains("Votre établissement a demandé le changement")
            && !notice.text.contains("changez votre mot de passe")
            // The new address masked: the old mailbox may be read by another.
            && notice.text.contains("la nouvelle adresse sera c***@exemple.fr")
            && !notice.text.contains("claire.0@"),
        "{}",
        notice.text
    );
    // The account's page shows the address awaiting its confirmation.
    let page = page_text(
        &academy,
        &app.url(&format!(
            "/etablissement/{}/compte/{}",
            college.uai, claire.id
        )),
    )
    .await;
    assert!(
        page.contains("Nouvelle adresse en attente de validation</dt><dd>claire.0@exemple.fr"),
        "{page}"
    );
    for n in 1..5 {
        assert_eq!(correct(n).await.status(), 200, "correction {n}");
    }
    let refused = correct(5).await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    assert!(refused.text().await.unwrap().contains("Trop de mails"));
    assert_eq!(
        app.account_named("claire.martin")
            .await
            .pending_email
            .as_deref(),
        Some("claire.4@exemple.fr"),
        "the sixth changed nothing"
    );
}

#[tokio::test]
async fn staff_break_a_grouping_by_detaching_a_child() {
    let schools = Schools::new().await;
    let app = &schools.app;
    let staff_a = schools.staff("secretariat.a", &[SCHOOL_A]).await;
    let paul = app.account_named("paul.aubert").await;
    let anna = app.account_named("anna.aubert").await;
    let chloe = app.account_named("chloe.colin").await;
    // Chloé is Paul's too (a grouping made earlier).
    clef::accounts::store::link_guardian(
        &app.app.db,
        &paul.id,
        &chloe.id,
        clef::domain::Rank::new(1).unwrap(),
        0,
    )
    .await
    .unwrap();
    let detached = act(
        app,
        &staff_a,
        SCHOOL_A,
        &paul.id,
        &[
            ("action", "detach"),
            ("student", &chloe.id),
            ("confirm", "1"),
        ],
    )
    .await;
    assert_eq!(detached.status(), 200);
    // The page leads to the new account's letter.
    let page = detached.text().await.unwrap();
    let new_guardian = page
        .split("courriers?compte=")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("a link to the letter: {page}"));
    assert!(page.contains(&format!(
        "Son nouveau compte responsable est {new_guardian}"
    )));
    assert!(page.contains("Imprimer le courrier</a>"), "{page}");
    assert!(
        page.contains("Retour au compte"),
        "Paul is still the school's: {page}"
    );
    let print = format!("/etablissement/{SCHOOL_A}/courriers?compte={new_guardian}");
    let letter_page = page_text(&staff_a, &app.url(&print)).await;
    assert!(
        letter_page.contains("Imprimer les courriers"),
        "{letter_page}"
    );
    // On each trail once, as done by the staff member.
    let staff = app.account_named("secretariat.a").await;
    for account in [&paul.id, &chloe.id] {
        let trail = clef::audit::trail(&app.app.db, Some(account), 0, 50)
            .await
            .unwrap();
        let detachments: Vec<_> = trail
            .iter()
            .filter(|e| e.event == "detachment" || e.detail.as_deref() == Some("detach"))
            .collect();
        assert_eq!(detachments.len(), 1, "{trail:?}");
        assert_eq!(detachments[0].actor_id.as_deref(), Some(staff.id.as_str()));
    }
    let children = clef::accounts::store::children(&app.app.db, &paul.id)
        .await
        .unwrap();
    assert_eq!(
        children.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        [anna.id.as_str()]
    );
    // A child of another school cannot be named.
    let other = schools.student_id(SCHOOL_B).await;
    let foreign = act(
        app,
        &staff_a,
        SCHOOL_A,
        &paul.id,
        &[("action", "detach"), ("student", &other), ("confirm", "1")],
    )
    .await;
    assert_eq!(foreign.status(), 403);
}

#[tokio::test]
async fn a_school_file_is_previewed_then_applied_from_the_browser() {
    let schools = Schools::new().await;
    let app = &schools.app;
    let staff_a = schools.staff("secretariat.a", &[SCHOOL_A]).await;
    let before = app.count("accounts").await;

    // A bad row: its spreadsheet line, and nothing written.
    let bad = format!("{CSV_A}4;Dupont;;32/13/2012;6 A;;;\n");
    let (status, page) = upload(app, &staff_a, SCHOOL_A, bad.into_bytes()).await;
    assert_eq!(status, 400);
    assert!(page.contains("5"), "the spreadsheet line is named: {page}");
    let page = page.replace("&#x27;", "'");
    assert!(
        page.contains(&fr("corrigez ces lignes dans le tableur")),
        "{page}"
    );
    assert_eq!(app.count("accounts").await, before);
    // A workbook is refused whole: the file to correct, not rows.
    let workbook = b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00".to_vec();
    let (status, page) = upload(app, &staff_a, SCHOOL_A, workbook).await;
    assert_eq!(status, 400);
    let page = page.replace("&#x27;", "'");
    assert!(
        page.contains(&fr(
            "Le fichier n'a pas été importé : corrigez-le dans le tableur"
        )),
        "{page}"
    );
    assert!(!page.contains("ces lignes"), "{page}");

    // A file of 1,000 new pupils (about 90 KiB): previewed, nothing written yet…
    let mut big = String::from(
        "N° élève;Nom;Prénom;Date de naissance;Classe;Nom responsable 1;Prénom responsable 1;Courriel responsable 1\n",
    );
    // Names are letters: `aaa`, `aab`…
    let letters = |n: usize| -> String {
        [n / 676, n / 26, n]
            .iter()
            .map(|d| (b'a' + (d % 26) as u8) as char)
            .collect()
    };
    for n in 0..1000 {
        let name = letters(n);
        big.push_str(&format!(
            "{};Eleve{name};Prenom{name};01/02/2012;6 {};Parent{name};Prenom{name};parent{n}@example.org\n",
            100 + n,
            n % 5
        ));
    }
    assert!(big.len() > 64 * 1024);
    let (status, preview) = upload(app, &staff_a, SCHOOL_A, big.clone().into_bytes()).await;
    assert_eq!(status, 200, "{preview}");
    assert!(
        preview.contains("<td>1000</td>"),
        "1,000 new pupils in the preview"
    );
    // 2,000 new accounts: the first 300 listed, the others counted.
    assert_eq!(preview.matches("<li>ligne ").count(), 300);
    assert!(
        preview.contains(&fr("Autres changements, non listés ici : 1700")),
        "{preview}"
    );
    assert_eq!(app.count("accounts").await, before);
    // A preview of another file replaces it: one draft per staff member.
    let other = "N° élève;Nom;Prénom;Date de naissance;Classe\n500;Nouveau;Eleve;01/02/2012;5 A\n";
    let (status, replaced) = upload(app, &staff_a, SCHOOL_A, other.as_bytes().to_vec()).await;
    assert_eq!(status, 200, "{replaced}");
    let stale = staff_a
        .post(app.url(&format!("/etablissement/{SCHOOL_A}/import/appliquer")))
        .form(&[
            ("csrf", input_value(&preview, "csrf").unwrap()),
            ("draft", input_value(&preview, "draft").unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 410, "the first preview is replaced");
    let (status, preview) = upload(app, &staff_a, SCHOOL_A, big.into_bytes()).await;
    assert_eq!(status, 200, "{preview}");
    // …then applied, once.
    let draft = input_value(&preview, "draft").expect("the draft");
    let csrf = input_value(&preview, "csrf").unwrap();
    let apply = |csrf: String, draft: String| {
        let staff_a = staff_a.clone();
        async move {
            staff_a
                .post(app.url(&format!("/etablissement/{SCHOOL_A}/import/appliquer")))
                .form(&[("csrf", csrf), ("draft", draft)])
                .send()
                .await
                .unwrap()
        }
    };
    // The import runs on its own; its page follows it until the report.
    let applied = apply(csrf.clone(), draft.clone()).await;
    assert_eq!(applied.status(), 303);
    let progress = app.url(&location(&applied));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let response = staff_a.get(&progress).send().await.unwrap();
        let policy = response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        let page = response.text().await.unwrap();
        if page.contains("Le fichier est importé.") {
            assert!(page.contains("<td>1000</td>"));
            assert!(!policy.contains("script-src"), "no script then: {policy}");
            break;
        }
        // Under way, one script asks for the page until the import ends:
        // the only one the page's policy lets run.
        let nonce = policy
            .split("script-src 'nonce-")
            .nth(1)
            .and_then(|rest| rest.split('\'').next())
            .expect("a nonce for the page's script");
        assert!(
            page.contains("id=\"import-en-cours\"")
                && page.contains(&format!("<script nonce=\"{nonce}\">")),
            "under way, the page asks for the end: {page}"
        );
        assert!(policy.contains("connect-src 'self'"), "{policy}");
        assert!(std::time::Instant::now() < deadline, "the import ends");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(app.count("accounts").await, before + 2000);
    assert_eq!(
        apply(csrf, draft).await.status(),
        410,
        "a preview applies once"
    );
    // Someone else's job is not theirs to read.
    let staff_b_of_a = schools.staff("secretariat.bis", &[SCHOOL_B]).await;
    assert_eq!(status_of(&staff_b_of_a, &progress).await, 403);

    // Another school's staff cannot import here.
    let staff_b = schools.staff("secretariat.b", &[SCHOOL_B]).await;
    assert_eq!(
        status_of(
            &staff_b,
            &app.url(&format!("/etablissement/{SCHOOL_A}/import"))
        )
        .await,
        403
    );
}

/// Applies the import previewed on `preview` and waits for its report page.
async fn applied(app: &TestApp, staff: &reqwest::Client, preview: &str) -> String {
    let applied = staff
        .post(app.url(&format!("/etablissement/{SCHOOL_A}/import/appliquer")))
        .form(&[
            ("csrf", input_value(preview, "csrf").unwrap()),
            ("draft", input_value(preview, "draft").unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(applied.status(), 303);
    let progress = app.url(&location(&applied));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let page = page_text(staff, &progress).await;
        if page.contains("Le fichier est importé.") {
            return page;
        }
        assert!(std::time::Instant::now() < deadline, "the import ends");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// What a file changed in an existing account is on that account's trail,
/// with who imported it; an activated parent given a new phone — the one
/// their account is recovered with by SMS — is told at their address.
#[tokio::test]
async fn an_import_s_changes_are_on_each_account_s_trail_and_a_new_phone_is_told() {
    let schools = Schools::new().await;
    let app = &schools.app;
    let staff_a = schools.staff("secretariat.a", &[SCHOOL_A]).await;
    sqlx::query(
        "UPDATE accounts SET state = 'active', activated_at = 5, email_verified_at = 5 \
         WHERE identifier = 'paul.aubert'",
    )
    .execute(&app.app.db)
    .await
    .unwrap();
    let file = "N° élève;Nom;Prénom;Date de naissance;Classe;Nom responsable 1;Prénom responsable 1;\
        Courriel responsable 1;Téléphone responsable 1\n\
        1;Aubert;Anna;01/02/2012;4 A;Aubert;Paul;paul.aubert@example.org;07 98 76 54 32\n";
    let (status, preview) = upload(app, &staff_a, SCHOOL_A, file.as_bytes().to_vec()).await;
    assert_eq!(status, 200, "{preview}");
    // The report after « Appliquer » lists the change, as the preview did.
    let report = applied(app, &staff_a, &preview).await;
    assert!(
        report.contains(&fr(
            "<li>ligne 2 : coordonnées de Paul Aubert mises à jour : téléphone aucun → +33798765432</li>"
        )),
        "{report}"
    );

    let staff = app.account_named("secretariat.a").await;
    let staff = staff.id.as_str();
    let trail_of = |identifier: &'static str| async move {
        let account = app.account_named(identifier).await;
        clef::audit::trail(&app.app.db, Some(&account.id), 0, 50)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.actor_id.as_deref() == Some(staff))
            .filter_map(|e| e.detail)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        trail_of("paul.aubert").await,
        [format!(
            "import {SCHOOL_A}: ligne 2 : coordonnées de Paul Aubert mises à jour : téléphone aucun → +33798765432"
        )]
    );
    assert_eq!(
        trail_of("anna.aubert").await,
        [format!(
            "import {SCHOOL_A}: ligne 2 : Anna Aubert change de classe (5 A → 4 A)"
        )]
    );
    let notice = app.last_mail_to("paul.aubert@example.org");
    assert!(
        notice.text.contains("se termine par 32") && notice.text.contains("Collège A"),
        "{}",
        notice.text
    );
    // The school sees it on the account's page.
    let paul = app.account_named("paul.aubert").await;
    let page = page_text(
        &staff_a,
        &app.url(&format!("/etablissement/{SCHOOL_A}/compte/{}", paul.id)),
    )
    .await;
    assert!(page.contains("Import du fichier des élèves"), "{page}");
}

/// SPEC §3.10: nothing of a file with bad rows is written « unless asked ».
/// Asked (« Importer les autres lignes »), the good rows go in and the bad
/// ones are listed on the report, to be corrected and imported again.
#[tokio::test]
async fn the_good_rows_of_a_file_with_bad_ones_are_imported_when_asked() {
    let schools = Schools::new().await;
    let app = &schools.app;
    let staff_a = schools.staff("secretariat.a", &[SCHOOL_A]).await;
    let before = app.count("accounts").await;
    let file = format!(
        "{CSV_A}4;Dupont;;32/13/2012;6 A;;;\n5;Durand;Léo;01/02/2012;6 A;Durand;Lise;lise.durand@example.org\n"
    );
    let (status, page) = upload(app, &staff_a, SCHOOL_A, file.clone().into_bytes()).await;
    assert_eq!(status, 400, "refused as it is");
    assert!(page.contains(&fr("ligne 5 :")), "{page}");
    assert!(page.contains("Importer les autres lignes"), "{page}");
    assert!(page.contains("nouvel élève Léo Durand"), "{page}");
    assert_eq!(app.count("accounts").await, before, "nothing written yet");

    let report = applied(app, &staff_a, &page).await;
    assert!(report.contains("Lignes laissées de côté"), "{report}");
    assert!(report.contains(&fr("ligne 5 :")), "{report}");
    assert_eq!(app.count("accounts").await, before + 2, "Léo and Lise only");
    app.account_named("leo.durand").await;
    // The staff member's trail says which school's file, and what it did.
    let events = clef::audit::trail(&app.app.db, None, 0, 50).await.unwrap();
    let staff = app.account_named("secretariat.a").await;
    assert!(
        events
            .iter()
            .any(|e| e.actor_id.as_deref() == Some(staff.id.as_str())
                && e.detail.as_deref()
                    == Some(&*format!(
                        "import {SCHOOL_A}: pupils +1 ~0, guardians +1 ~0, rows left out 1"
                    ))),
        "{events:?}"
    );

    // A file whose every row is bad offers nothing to import.
    let (status, page) = upload(
        app,
        &staff_a,
        SCHOOL_A,
        format!(
            "{}\n4;Dupont;;32/13/2012;6 A;;;\n",
            CSV_A.lines().next().unwrap()
        )
        .into_bytes(),
    )
    .await;
    assert_eq!(status, 400);
    assert!(!page.contains("Importer les autres lignes"), "{page}");
}

async fn status_of(browser: &reqwest::Client, url: &str) -> u16 {
    status(browser, url).await
}

#[tokio::test]
async fn a_destructive_action_asks_the_password_again_after_ten_minutes() {
    let schools = Schools::new().await;
    let app = &schools.app;
    let staff_a = schools.staff("secretariat.a", &[SCHOOL_A]).await;
    let paul = app.account_named("paul.aubert").await;
    app.clock.advance(11 * 60);
    let page = page_text(
        &staff_a,
        &app.url(&format!("/etablissement/{SCHOOL_A}/compte/{}", paul.id)),
    )
    .await;
    assert!(
        page.contains("name=\"password\""),
        "the forms ask for the password"
    );
    let without = act(
        app,
        &staff_a,
        SCHOOL_A,
        &paul.id,
        &[("action", "close"), ("confirm", "1")],
    )
    .await;
    assert_eq!(without.status(), 400);
    let wrong = act(
        app,
        &staff_a,
        SCHOOL_A,
        &paul.id,
        &[
            ("action", "close"),
            ("confirm", "1"),
            ("password", "Mauvais2026"),
        ],
    )
    .await;
    assert_eq!(wrong.status(), 400);
    assert_eq!(
        app.account_named("paul.aubert").await.state,
        clef::accounts::AccountState::Provisional
    );
    let right = act(
        app,
        &staff_a,
        SCHOOL_A,
        &paul.id,
        &[
            ("action", "close"),
            ("confirm", "1"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(right.status(), 200);
    assert_eq!(
        app.account_named("paul.aubert").await.state,
        clef::accounts::AccountState::Closed
    );
}

/// Counts accounts of a school by class and state the long way, in Rust,
/// from every account and guardianship: (pupils, parents) per class as
/// [not activated, awaiting, active].
async fn counted(
    app: &TestApp,
    uai: &str,
) -> std::collections::BTreeMap<String, ([i64; 3], [i64; 3])> {
    use sqlx::Row;
    let index = |state: &str| match state {
        "provisional" => Some(0),
        "pending_email" => Some(1),
        "active" => Some(2),
        _ => None,
    };
    let pupils = sqlx::query(
        "SELECT a.id, a.class_name, a.state FROM accounts a JOIN establishments e ON e.id = a.establishment_id \
         WHERE e.uai = $1 AND a.kind = 'student'",
    )
    .bind(uai)
    .fetch_all(&app.app.db)
    .await
    .unwrap();
    let mut counts = std::collections::BTreeMap::new();
    for pupil in &pupils {
        let class: String = pupil.try_get("class_name").unwrap();
        let entry = counts.entry(class.clone()).or_insert(([0; 3], [0; 3]));
        if let Some(i) = index(&pupil.try_get::<String, _>("state").unwrap()) {
            entry.0[i] += 1;
        }
    }
    let links = sqlx::query(
        "SELECT DISTINCT s.class_name, g.id, g.state FROM guardianships l JOIN accounts s ON s.id = l.student_id \
         JOIN accounts g ON g.id = l.guardian_id JOIN establishments e ON e.id = s.establishment_id \
         WHERE e.uai = $1 AND s.state <> 'closed'",
    )
    .bind(uai)
    .fetch_all(&app.app.db)
    .await
    .unwrap();
    for link in &links {
        let class: String = link.try_get("class_name").unwrap();
        let entry = counts.entry(class).or_insert(([0; 3], [0; 3]));
        if let Some(i) = index(&link.try_get::<String, _>("state").unwrap()) {
            entry.1[i] += 1;
        }
    }
    counts.retain(|_, (p, g)| p.iter().sum::<i64>() + g.iter().sum::<i64>() > 0);
    counts
}

#[tokio::test]
async fn the_funnel_matches_the_accounts_after_activations_an_expiry_and_a_grouping() {
    let schools = Schools::new().await;
    let app = &schools.app;
    let staff_a = schools.staff("secretariat.a", &[SCHOOL_A]).await;
    let url = app.url(&format!("/etablissement/{SCHOOL_A}"));
    let check =
        |page: String, expected: std::collections::BTreeMap<String, ([i64; 3], [i64; 3])>| {
            for (class, (pupils, parents)) in expected {
                assert_eq!(
                    row(&page, "Activation des comptes des élèves", &class),
                    pupils,
                    "pupils of {class}"
                );
                assert_eq!(
                    row(&page, "Activation des comptes des responsables", &class),
                    parents,
                    "parents of {class}"
                );
            }
        };
    check(
        page_text(&staff_a, &url).await,
        counted(app, SCHOOL_A).await,
    );
    // Two parents activate (one confirmed), then Paul's account is grouped into Marie's.
    for (identifier, state) in [
        ("marie.blanc", "active"),
        ("paul.aubert", "active"),
        ("luc.colin", "pending_email"),
    ] {
        sqlx::query("UPDATE accounts SET state = $1 WHERE identifier = $2")
            .bind(state)
            .bind(identifier)
            .execute(&app.app.db)
            .await
            .unwrap();
    }
    let marie = app.account_named("marie.blanc").await;
    let paul = app.account_named("paul.aubert").await;
    clef::accounts::grouping::group(&app.app, &marie.id, &paul.id)
        .await
        .unwrap()
        .unwrap();
    check(
        page_text(&staff_a, &url).await,
        counted(app, SCHOOL_A).await,
    );
    // Luc's account grouped into Marie's too: one parent of pupils in 5 A and
    // 4 B, counted in each class, once in all.
    let luc = app.account_named("luc.colin").await;
    clef::accounts::grouping::group(&app.app, &marie.id, &luc.id)
        .await
        .unwrap()
        .unwrap();
    let page = page_text(&staff_a, &url).await;
    check(page.clone(), counted(app, SCHOOL_A).await);
    let parents = "Activation des comptes des responsables";
    assert_eq!(row(&page, parents, "5 A")[2], 1, "Marie in 5 A");
    assert_eq!(row(&page, parents, "4 B")[2], 1, "and in 4 B");
    assert_eq!(
        row(&page, parents, "Total"),
        [0, 0, 1],
        "one account in all"
    );
    // Four months on, the letters never used expire: their accounts go.
    app.clock.advance(122 * 24 * 3600);
    app.expire_letters().await;
    let staff_a = schools.signed_in("secretariat.a").await;
    let expected = counted(app, SCHOOL_A).await;
    assert!(!expected.is_empty());
    check(page_text(&staff_a, &url).await, expected);
}

/// A reset sends an account once active back to a letter; if that letter
/// expires unused, the account is closed, not deleted: what refers to it (a
/// consent here) stays, and the hourly expiry does not fail on it.
#[tokio::test]
async fn an_expired_letter_after_a_reset_closes_the_account_it_does_not_delete_it() {
    let schools = Schools::new().await;
    let app = &schools.app;
    schools.staff("secretariat.a", &[SCHOOL_A]).await;
    sqlx::query(
        "UPDATE accounts SET state = 'active', activated_at = 1 WHERE identifier = 'marie.blanc'",
    )
    .execute(&app.app.db)
    .await
    .unwrap();
    let marie = app.account_named("marie.blanc").await;
    let client = app.client(false).await;
    clef::accounts::staff::act(
        &app.app,
        &app.account_named("secretariat.a").await,
        &marie,
        clef::accounts::staff::Action::Reset,
        "192.0.2.1".parse().unwrap(),
        "test",
    )
    .await
    .unwrap()
    .unwrap();
    // A row that refers to the account (a reset forgets consents: one
    // written since stands for whatever else does).
    sqlx::query(
        "INSERT INTO consents (account_id, client_id, scopes, granted_at) VALUES ($1, $2, 'openid', 0)",
    )
    .bind(&marie.id)
    .bind(&client.0)
    .execute(&app.app.db)
    .await
    .unwrap();
    app.clock.advance(122 * 24 * 3600);
    app.expire_letters().await;
    let marie = app.account_named("marie.blanc").await;
    assert_eq!(marie.state, clef::accounts::AccountState::Closed);
    assert_eq!(app.count("consents").await, 1);
}

/// A parent whose children are in two schools: each school's staff see that
/// parent with their own pupils only (SPEC §3.9, scoped to their establishment).
#[tokio::test]
async fn a_parent_s_page_shows_the_establishment_s_own_pupils_only() {
    let schools = Schools::new().await;
    let app = &schools.app;
    let staff_a = schools.staff("secretariat.a", &[SCHOOL_A]).await;
    let student_b = schools.student_id(SCHOOL_B).await;
    let parent = app.account_named("marie.blanc").await;
    sqlx::query(
        "INSERT INTO guardianships (guardian_id, student_id, rank, created_at) VALUES ($1, $2, 2, 0)",
    )
    .bind(&parent.id)
    .bind(&student_b)
    .execute(&app.app.db)
    .await
    .unwrap();
    let page = page_text(
        &staff_a,
        &app.url(&format!("/etablissement/{SCHOOL_A}/compte/{}", parent.id)),
    )
    .await;
    assert!(page.contains("marie.blanc"));
    assert!(!page.contains("Dora"), "school B's pupil");
}

/// A parent with children in two schools: one school's staff cannot close,
/// reset or re-address the account (it would cut the other school's
/// access too), but can detach its own pupil; staff of both schools can.
#[tokio::test]
async fn a_parent_with_children_in_another_school_is_closed_only_by_staff_of_both() {
    let schools = Schools::new().await;
    let app = &schools.app;
    let staff_a = schools.staff("secretariat.a", &[SCHOOL_A]).await;
    let marie = schools.marie_with_a_child_in_school_b().await;
    for form in [
        &[("action", "close"), ("confirm", "1")][..],
        &[("action", "reset"), ("confirm", "1")],
        &[
            ("action", "email"),
            ("email", "marie@example.net"),
            ("confirm", "1"),
        ],
    ] {
        let refused = act(app, &staff_a, SCHOOL_A, &marie.id, form).await;
        assert_eq!(refused.status(), 400, "{form:?}");
        assert!(
            refused
                .text()
                .await
                .unwrap()
                .contains("Ce parent a aussi des enfants dans un autre établissement"),
            "{form:?}"
        );
    }
    let unchanged = app.account_named("marie.blanc").await;
    assert_eq!(
        (unchanged.state, unchanged.email),
        (marie.state, marie.email)
    );
    let bruno = app.account_named("bruno.blanc").await;
    let detached = act(
        app,
        &staff_a,
        SCHOOL_A,
        &marie.id,
        &[
            ("action", "detach"),
            ("student", &bruno.id),
            ("confirm", "1"),
        ],
    )
    .await;
    assert_eq!(detached.status(), 200, "its own pupil is detached");
    // Marie is no longer school A's to open: the page leads back to the school.
    let page = detached.text().await.unwrap();
    assert!(page.contains("Retour à l&#x27;établissement"), "{page}");
    assert!(!page.contains("Retour au compte"), "{page}");
    let both = schools.staff("rectorat", &[SCHOOL_A, SCHOOL_B]).await;
    let closed = act(
        app,
        &both,
        SCHOOL_B,
        &marie.id,
        &[("action", "close"), ("confirm", "1")],
    )
    .await;
    assert_eq!(closed.status(), 200);
    assert_eq!(
        app.account_named("marie.blanc").await.state,
        clef::accounts::AccountState::Closed
    );
}

/// The address correction asks the staff member's scope again with the
/// parent's row held, inside the change: a grouping that gave the parent
/// another school's child after the page's check is not overwritten
/// (the scope is asked here after the link is made, as a late grouping
/// would leave it). Nothing is written, nothing is mailed.
#[tokio::test]
async fn an_address_correction_rechecks_the_scope_inside_its_transaction() {
    let schools = Schools::new().await;
    let app = &schools.app;
    schools.staff("secretariat.a", &[SCHOOL_A]).await;
    let actor = app.account_named("secretariat.a").await;
    let scope = staff::scope(&app.app.db, &actor).await.unwrap();
    let marie = schools.marie_with_a_child_in_school_b().await;
    let mails = app.outbox().len();
    let address = clef::domain::EmailAddress::parse("autre@example.net").unwrap();
    use clef::accounts::activation::{Readdressed, propose_address};
    let outcome = propose_address(&app.app, &marie, &address, Some(&scope))
        .await
        .unwrap();
    assert_eq!(outcome, Readdressed::BeyondScope);
    let unchanged = app.account_named("marie.blanc").await;
    assert_eq!(unchanged.pending_email, marie.pending_email);
    assert_eq!(app.outbox().len(), mails, "no confirmation mailed");
    // The parent's own change (no scope) goes through.
    let outcome = propose_address(&app.app, &marie, &address, None)
        .await
        .unwrap();
    assert_eq!(
        outcome,
        Readdressed::Written(clef::accounts::activation::MailSent(true))
    );
    assert_eq!(
        app.account_named("marie.blanc")
            .await
            .pending_email
            .as_deref(),
        Some("autre@example.net")
    );
}

/// A pupil closed by the school (it moved away) keeps no parent there: the
/// parent's page is no longer the school's to read, and no letter of the
/// parent prints for it.
#[tokio::test]
async fn a_closed_pupil_keeps_neither_its_parents_page_nor_their_letters_in_the_school() {
    let schools = Schools::new().await;
    let app = &schools.app;
    let staff_a = schools.staff("secretariat.a", &[SCHOOL_A]).await;
    let paul = app.account_named("paul.aubert").await;
    let page = app.url(&format!("/etablissement/{SCHOOL_A}/compte/{}", paul.id));
    assert_eq!(status(&staff_a, &page).await, 200);
    assert!(
        app.letters(SCHOOL_A)
            .await
            .iter()
            .any(|l| l.identifier == "paul.aubert")
    );

    sqlx::query("UPDATE accounts SET state = 'closed' WHERE identifier = 'anna.aubert'")
        .execute(&app.app.db)
        .await
        .unwrap();
    assert_eq!(status(&staff_a, &page).await, 403);
    assert!(
        !app.letters(SCHOOL_A)
            .await
            .iter()
            .any(|l| l.identifier == "paul.aubert")
    );
    let csv = print_letters(
        app,
        &staff_a,
        &format!("/etablissement/{SCHOOL_A}/courriers?format=csv"),
        None,
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(!csv.contains("paul.aubert") && csv.contains("marie.blanc"));
    // Nor in the list of the school's accounts, searched or not.
    for list in ["comptes", "comptes?q=aubert"] {
        let list = staff_a
            .get(app.url(&format!("/etablissement/{SCHOOL_A}/{list}")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            !list.contains("paul.aubert") && list.contains("anna.aubert"),
            "{list}"
        );
    }
}

#[tokio::test]
async fn any_page_number_of_the_accounts_list_is_answered() {
    let schools = Schools::new().await;
    let app = &schools.app;
    let staff_a = schools.staff("secretariat.a", &[SCHOOL_A]).await;
    for page in ["9223372036854775807", "4294967295", "-3", "x"] {
        let url = app.url(&format!("/etablissement/{SCHOOL_A}/comptes?page={page}"));
        assert_eq!(status(&staff_a, &url).await, 200, "page={page}");
    }
}

#[tokio::test]
async fn a_file_over_the_limit_is_told_so_and_nothing_is_written() {
    let schools = Schools::new().await;
    let app = &schools.app;
    let staff_a = schools.staff("secretariat.a", &[SCHOOL_A]).await;
    let accounts = app.count("accounts").await;
    let (status, page) = upload(app, &staff_a, SCHOOL_A, vec![b'a'; 9 << 20]).await;
    assert_eq!(status, 413);
    assert!(page.contains(&fr("Le fichier dépasse 8 Mo")), "{page}");
    assert_eq!(app.count("accounts").await, accounts);
}

/// A parent who signs in in English gets the mails a school's correction of
/// their address sends in English, whatever the staff member's language.
#[tokio::test]
async fn a_corrected_address_is_mailed_in_the_parents_language() {
    let schools = Schools::new().await;
    let app = &schools.app;
    let staff_a = schools.staff("secretariat.a", &[SCHOOL_A]).await;
    let marie = app.account_named("marie.blanc").await;
    let hash = app
        .app
        .passwords
        .hash(&secrecy::SecretString::from(PASSWORD.to_owned()))
        .await
        .unwrap();
    sqlx::query(
        "UPDATE accounts SET state = 'active', email = 'marie@example.org', email_verified_at = 1, \
         password_hash = $1, provisional_password = NULL WHERE id = $2",
    )
    .bind(&hash)
    .bind(&marie.id)
    .execute(&app.app.db)
    .await
    .unwrap();
    // She signs in with an English browser: her language is recorded.
    let browser = browser();
    let page = english_page_text(&browser, &app.url("/login")).await;
    let signed_in = browser
        .post(app.url("/login"))
        .header("accept-language", "en")
        .form(&[
            ("csrf", input_value(&page, "csrf").unwrap().as_str()),
            ("identifier", "marie.blanc"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    let locale: Option<String> = sqlx::query_scalar("SELECT locale FROM accounts WHERE id = $1")
        .bind(&marie.id)
        .fetch_one(&app.app.db)
        .await
        .unwrap();
    assert_eq!(locale.as_deref(), Some("en"));

    let corrected = act(
        app,
        &staff_a,
        SCHOOL_A,
        &marie.id,
        &[
            ("action", "email"),
            ("email", "marie.blanc@example.net"),
            ("confirm", "1"),
        ],
    )
    .await;
    assert_eq!(corrected.status(), 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mails = loop {
        let mails: Vec<_> = app
            .outbox()
            .into_iter()
            .filter(|m| m.to == "marie.blanc@example.net" || m.to == "marie@example.org")
            .collect();
        if mails.len() == 2 || std::time::Instant::now() > deadline {
            break mails;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(mails.len(), 2, "{mails:?}");
    for mail in mails {
        assert!(mail.text.contains("Hello"), "{mail:?}");
        assert!(!mail.text.contains("Bonjour"), "{mail:?}");
    }
}

/// A parent account the school closed (a parent who lost parental
/// authority) is not created again by the next file that still lists the
/// parent, which the report says; the others import as before.
#[tokio::test]
async fn a_parent_the_school_closed_is_not_created_again_by_the_next_import() {
    let schools = Schools::new().await;
    let app = &schools.app;
    schools.staff("secretariat.a", &[SCHOOL_A]).await;
    let marie = app.account_named("marie.blanc").await;
    staff::act(
        &app.app,
        &app.account_named("secretariat.a").await,
        &marie,
        staff::Action::Close,
        "192.0.2.1".parse().unwrap(),
        "test",
    )
    .await
    .unwrap()
    .unwrap();
    let accounts = app.count("accounts").await;

    let report = app.import(SCHOOL_A, CSV_A.as_bytes()).await.unwrap();
    assert_eq!(report.guardians_created, 0, "{:?}", report.changes);
    assert_eq!(report.guardians_unchanged, 2);
    assert!(
        report.changes.iter().any(|c| c.starts_with("ligne 3 :")
            && c.contains("Marie Blanc")
            && c.contains("compte fermé")),
        "{:?}",
        report.changes
    );
    assert_eq!(app.count("accounts").await, accounts);
    let letters = app.letters(SCHOOL_A).await;
    assert!(
        letters.iter().all(|l| !l.recipient.contains("Marie")),
        "no letter for her"
    );
}

/// Storage limitation (RGPD art. 5(1)(e)): a closed account keeps its
/// credentials and contact details `closed_account_retention_days`, then
/// loses them, while its row still holds the closure against the school's
/// next files; an address change never confirmed, and the mail links, go
/// once they can no longer serve.
#[tokio::test]
async fn closed_accounts_and_dead_mail_links_lose_what_reaches_the_person() {
    let schools = Schools::new().await;
    let app = &schools.app;
    let staff_a = schools.staff("secretariat.a", &[SCHOOL_A]).await;
    let hash = app
        .app
        .passwords
        .hash(&secrecy::SecretString::from(PASSWORD.to_owned()))
        .await
        .unwrap();
    // Marie and Luc activated their accounts, with a phone.
    for parent in ["marie.blanc", "luc.colin"] {
        sqlx::query(
            "UPDATE accounts SET state = 'active', password_hash = $1, email_verified_at = 1, \
             provisional_password = NULL, phone = '+33612345678' WHERE identifier = $2",
        )
        .bind(&hash)
        .bind(parent)
        .execute(&app.app.db)
        .await
        .unwrap();
    }
    let marie = app.account_named("marie.blanc").await;
    let bruno = app.account_named("bruno.blanc").await;
    let luc = app.account_named("luc.colin").await;
    // The school closes Marie's account and her son's (he left), and
    // corrects Luc's address, which Luc never confirms.
    for id in [&marie.id, &bruno.id] {
        let closed = act(
            app,
            &staff_a,
            SCHOOL_A,
            id,
            &[("action", "close"), ("confirm", "1")],
        )
        .await;
        assert_eq!(closed.status(), 200);
    }
    let corrected = act(
        app,
        &staff_a,
        SCHOOL_A,
        &luc.id,
        &[
            ("action", "email"),
            ("email", "luc.c@exemple.fr"),
            ("confirm", "1"),
        ],
    )
    .await;
    assert_eq!(corrected.status(), 200);
    assert_eq!(
        app.account_named("luc.colin")
            .await
            .pending_email
            .as_deref(),
        Some("luc.c@exemple.fr")
    );
    let links_of = |id: String| async move {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM action_tokens WHERE account_id = $1")
            .bind(id)
            .fetch_one(&app.app.db)
            .await
            .unwrap()
    };
    assert_eq!(links_of(luc.id.clone()).await, 1);

    let day = 24 * 3600;
    // Within the link's three months, and within the year, nothing goes.
    app.clock.advance(80 * day);
    let hourly = clef::provisioning::expiry::hourly(&app.app).await;
    assert!(hourly.failed.is_empty(), "{:?}", hourly.failed);
    assert_eq!(hourly.closed_erased, 0);
    assert_eq!(hourly.purged.pending_addresses, 0);
    let kept = app.account_named("marie.blanc").await;
    assert!(kept.email.is_some() && kept.phone.is_some() && kept.password_hash.is_some());

    // The link expired: the address it was for goes; the link itself a
    // month later.
    app.clock.advance(15 * day);
    let hourly = clef::provisioning::expiry::hourly(&app.app).await;
    assert_eq!(hourly.purged.pending_addresses, 1);
    let luc_now = app.account_named("luc.colin").await;
    assert_eq!(luc_now.pending_email, None);
    assert_eq!(luc_now.email.as_deref(), Some("luc.colin@example.org"));
    assert_eq!(links_of(luc.id.clone()).await, 1);
    app.clock.advance(31 * day);
    let hourly = clef::provisioning::expiry::hourly(&app.app).await;
    assert_eq!(hourly.purged.mail_links, 1);
    assert_eq!(links_of(luc.id.clone()).await, 0);

    // A year after the closure: Marie's and Bruno's accounts lose their
    // credentials, addresses, phone and birth date; their rows stay.
    app.clock.advance(240 * day);
    let hourly = clef::provisioning::expiry::hourly(&app.app).await;
    assert_eq!(hourly.closed_erased, 2, "{hourly:?}");
    let marie = app.account_named("marie.blanc").await;
    assert_eq!(marie.state, clef::accounts::AccountState::Closed);
    assert_eq!(
        (&marie.email, &marie.phone, &marie.password_hash),
        (&None, &None, &None)
    );
    assert_eq!(
        marie.family_name, "Blanc",
        "the name the files are compared with"
    );
    let bruno = app.account_named("bruno.blanc").await;
    // On each account's trail.
    let erased: Vec<String> = sqlx::query_scalar(
        "SELECT account_id FROM audit_events WHERE event = 'account_erased' ORDER BY account_id",
    )
    .fetch_all(&app.app.db)
    .await
    .unwrap();
    let mut both = vec![marie.id.clone(), bruno.id.clone()];
    both.sort();
    assert_eq!(erased, both);
    assert_eq!(
        (bruno.birthdate.as_deref(), bruno.email.as_deref()),
        (None, None)
    );
    assert_eq!(
        clef::provisioning::expiry::hourly(&app.app)
            .await
            .closed_erased,
        0,
        "nothing left to erase"
    );
    // Marie's password no longer opens anything, not even the closed
    // account's explanation.
    let browser = browser();
    let page = page_text(&browser, &app.url("/login")).await;
    let refused = submit_login(app, &browser, &page, "marie.blanc", PASSWORD).await;
    assert_eq!(refused.status(), 401);
    // The school's file still meets the closure: Bruno's row is left out,
    // no account of the Blancs is made again (the letters that expired
    // meanwhile are printed anew).
    let blancs = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM accounts WHERE family_name = 'Blanc'")
            .fetch_one(&app.app.db)
            .await
            .unwrap()
    };
    assert_eq!(blancs().await, 2);
    let report = app.import(SCHOOL_A, CSV_A.as_bytes()).await.unwrap();
    assert!(
        format!("{report:?}").contains("Blanc a un compte fermé par l'établissement"),
        "{report:?}"
    );
    assert_eq!(blancs().await, 2);
}

/// No letter to print says why: a school whose file was never imported, or
/// whose accounts are closed, is not told its accounts are activated.
#[tokio::test]
async fn no_letter_says_whether_pupils_are_missing_activated_or_closed() {
    use clef::provisioning::letters::{Nothing, Selection, why_none};
    let app = spawn_app().await;
    let uai = app.establishment("0590001A", "Collège Jean Moulin").await;
    let id = clef::accounts::store::establishment_by_uai(&app.app.db, &uai)
        .await
        .unwrap()
        .unwrap()
        .id;
    let selections = [
        Selection::default(),
        Selection {
            class: Some("6 A".into()),
            ..Selection::default()
        },
        Selection {
            account: Some("leo.roux".into()),
            ..Selection::default()
        },
    ];
    let why = |selection: &Selection| {
        let (db, id, selection) = (app.app.db.clone(), id.clone(), selection.clone());
        async move { why_none(&db, &id, &selection).await.unwrap() }
    };
    assert_eq!(why(&selections[0]).await, Nothing::NoPupils);
    assert!(Nothing::NoPupils.french().contains("aucun élève"));
    app.import(
        "0590001A",
        b"student_id;family_name;given_name;birthdate;class\n1;Roux;Leo;03/09/2012;6 A\n",
    )
    .await
    .unwrap();
    for (state, expected) in [
        ("active", Nothing::AllActivated),
        ("closed", Nothing::NoneWaiting),
    ] {
        sqlx::query("UPDATE accounts SET state = $1 WHERE identifier = 'leo.roux'")
            .bind(state)
            .execute(&app.app.db)
            .await
            .unwrap();
        for selection in &selections {
            assert_eq!(why(selection).await, expected, "{state}, {selection:?}");
        }
    }
    assert!(
        Nothing::NoneWaiting
            .french()
            .contains("fermés à l'expiration de leur courrier")
    );
}

/// What a secretary helping a family needs on an account's page: the pupil's
/// birth date (asked at the first connection) and parents, and the parent's
/// phone (the SMS of a lost password), or that it has none, or that it takes
/// no SMS.
#[tokio::test]
async fn an_account_page_shows_the_birth_date_and_the_phone() {
    let schools = Schools::new().await;
    let app = &schools.app;
    let staff_a = schools.staff("secretariat.a", &[SCHOOL_A]).await;
    let page = |identifier: &'static str| {
        let staff_a = staff_a.clone();
        async move {
            let account = app.account_named(identifier).await;
            let url = app.url(&format!("/etablissement/{SCHOOL_A}/compte/{}", account.id));
            page_text(&staff_a, &url).await
        }
    };
    let anna = page("anna.aubert").await;
    assert!(
        anna.contains("<dt>Date de naissance</dt><dd>01&#x2f;02&#x2f;2012</dd>"),
        "{anna}"
    );
    assert!(
        !anna.contains("<dt>Téléphone</dt>"),
        "a pupil without a phone"
    );
    // Written out in English, where 01/02 would read as January 2.
    let anna_id = app.account_named("anna.aubert").await.id;
    let english = english_page_text(
        &staff_a,
        &app.url(&format!("/etablissement/{SCHOOL_A}/compte/{anna_id}")),
    )
    .await;
    assert!(
        english.contains("<dt>Birth date</dt><dd>1 February 2012</dd>"),
        "{english}"
    );
    // Her parents, each with the state of their account, a link away.
    let paul_id = app.account_named("paul.aubert").await.id;
    assert!(
        anna.contains(&fr(&format!(
            "<li><a href=\"/etablissement/{SCHOOL_A}/compte/{paul_id}\">Paul Aubert</a> (responsable 1, non activé)</li>"
        ))),
        "{anna}"
    );
    let paul = page("paul.aubert").await;
    assert!(paul.contains("<dt>Téléphone</dt><dd>aucun</dd>"), "{paul}");
    assert!(!paul.contains("Date de naissance"), "{paul}");
    for (stored, shown, sms) in [
        ("+33612345678", "06 12 34 56 78", true),
        ("+33312345678", "03 12 34 56 78", false),
    ] {
        sqlx::query("UPDATE accounts SET phone = $1 WHERE identifier = 'paul.aubert'")
            .bind(stored)
            .execute(&app.app.db)
            .await
            .unwrap();
        let paul = page("paul.aubert").await;
        assert!(
            paul.contains(&fr(&format!("<span class=\"nowrap\">{shown}</span>"))),
            "{paul}"
        );
        assert_eq!(paul.contains("ne reçoit pas de SMS"), !sms, "{paul}");
    }
}

/// POSTs the details' form of `uai` with its CSRF token and `fields`.
async fn save_details(
    app: &TestApp,
    staff: &reqwest::Client,
    uai: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let url = app.url(&format!("/etablissement/{uai}/coordonnees"));
    let page = page_text(staff, &app.url("/etablissement")).await;
    let csrf = input_value(&page, "csrf").expect("a CSRF field");
    let mut form = vec![("csrf", csrf.as_str())];
    form.extend_from_slice(fields);
    staff.post(url).form(&form).send().await.unwrap()
}

/// The details' form as these tests fill it: the name and street as saved
/// first, then `city`, `contact` and `portal`.
fn details<'a>(city: &'a str, contact: &'a str, portal: &'a str) -> [(&'static str, &'a str); 5] {
    [
        ("name", "Collège Jean Moulin"),
        ("address", "12 rue des Écoles"),
        ("city", city),
        ("contact", contact),
        ("portal_url", portal),
    ]
}

/// The establishment's letterhead and portal as held.
async fn details_held(
    app: &TestApp,
    uai: &str,
) -> (String, clef::accounts::Letterhead, Option<String>) {
    let uai = clef::domain::Uai::parse(uai).unwrap();
    let establishment = clef::accounts::store::establishment_by_uai(&app.app.db, &uai)
        .await
        .unwrap()
        .unwrap();
    let head = clef::accounts::store::letterhead(&app.app.db, &establishment.id)
        .await
        .unwrap();
    (establishment.name, head, establishment.portal_url)
}

/// The academy sets an establishment's name, address, contact and portal
/// from its page (what its letters print): refused fields are told at each,
/// as typed, with nothing written; what changed is on the trail, by whom; a
/// school's own staff are shown who to ask and refused the form.
#[tokio::test]
async fn the_academy_changes_an_establishment_s_details_from_its_page() {
    let schools = Schools::new().await;
    let app = &schools.app;
    let staff_a = schools.staff("secretariat.a", &[SCHOOL_A]).await;
    let academy = schools.staff("academie", &[]).await;
    let page_url = app.url(&format!("/etablissement/{SCHOOL_A}"));
    let form_url = app.url(&format!("/etablissement/{SCHOOL_A}/coordonnees"));

    // A school's staff: who to ask, and no form.
    let page = page_text(&staff_a, &page_url).await;
    assert!(
        page.contains(&fr("adressez-vous au rectorat")) && !page.contains("/coordonnees"),
        "{page}"
    );
    let refused = staff_a.get(&form_url).send().await.unwrap();
    assert_eq!(refused.status(), 403);
    let told = refused.text().await.unwrap();
    assert!(told.contains(&fr("modifiées par le rectorat")), "{told}");
    let refused = save_details(app, &staff_a, SCHOOL_A, &[("name", "Collège pirate")]).await;
    assert_eq!(refused.status(), 403);
    assert_eq!(details_held(app, SCHOOL_A).await.0, "Collège A");

    // The academy: the link, then the form with what is held.
    let page = page_text(&academy, &page_url).await;
    assert!(page.contains("coordonnees\">"), "{page}");
    let form = page_text(&academy, &form_url).await;
    assert_eq!(
        input_value(&form, "name").as_deref(),
        Some("Collège A"),
        "{form}"
    );
    assert_eq!(input_value(&form, "portal_url").as_deref(), Some(""));

    // Refused: a portal in plain http and a town too long, each told at its
    // field, the values kept as typed; nothing written.
    let town = "V".repeat(41);
    let refused = save_details(
        app,
        &academy,
        SCHOOL_A,
        &details(&town, "", "http://ent.example.fr"),
    )
    .await;
    assert_eq!(refused.status(), 400);
    let page = refused.text().await.unwrap();
    for told in [
        "id=\"erreur-city\">Le champ « ville » ne peut pas dépasser 40 caractères.",
        "id=\"erreur-portal_url\">Le champ « adresse du portail » n&#x27;est pas valide.",
    ] {
        assert!(page.contains(&fr(told)), "{told}: {page}");
    }
    assert_eq!(
        input_value(&page, "name").as_deref(),
        Some("Collège Jean Moulin")
    );
    let (name, head, portal) = details_held(app, SCHOOL_A).await;
    assert_eq!(
        (name.as_str(), head.address, portal),
        ("Collège A", None, None)
    );

    // Saved: the page says so and shows it; only what changed is on the
    // trail. (The town pasted from a spreadsheet's cells: its tab is a space.)
    let saved = save_details(
        app,
        &academy,
        SCHOOL_A,
        &details("59000\tLille", "", "https://ent.example.fr"),
    )
    .await;
    assert_eq!(saved.status(), 303);
    let to = saved.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(
        to,
        format!("/etablissement/{SCHOOL_A}?coordonnees=enregistrees")
    );
    let page = page_text(&academy, &app.url(&to)).await;
    for shown in [
        "Les coordonnées de l'établissement sont enregistrées.",
        "<dd>12 rue des Écoles, 59000 Lille</dd>",
        "<dd>https:&#x2f;&#x2f;ent.example.fr&#x2f;</dd>",
    ] {
        assert!(page.contains(&fr(shown)), "{shown}: {page}");
    }
    let (name, head, portal) = details_held(app, SCHOOL_A).await;
    assert_eq!(name, "Collège Jean Moulin");
    assert_eq!(head.city.as_deref(), Some("59000 Lille"));
    assert_eq!(head.contact, None);
    assert_eq!(portal.as_deref(), Some("https://ent.example.fr/"));
    let academy_id = app.account_named("academie").await.id;
    let trail: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT detail, actor_id FROM audit_events WHERE event = 'establishment_changed'",
    )
    .fetch_all(&app.app.db)
    .await
    .unwrap();
    assert_eq!(
        trail,
        [(
            format!(
                "updated {SCHOOL_A}: name=\"Collège Jean Moulin\" (was \"Collège A\") address=\"12 rue des Écoles\" (was unset) city=\"59000 Lille\" (was unset) portal_url=\"https://ent.example.fr/\" (was unset), from the back office by academie"
            ),
            Some(academy_id)
        )]
    );

    // A form left open while another operator changed the portal: saving
    // what it changed (the contact) keeps the other's portal.
    let stale = page_text(&academy, &form_url).await;
    let shown: Vec<(String, String)> = ["name", "address", "city", "contact", "portal_url"]
        .iter()
        .map(|key| {
            let key = format!("shown_{key}");
            let value = input_value(&stale, &key).unwrap();
            (key, value)
        })
        .collect();
    let other = save_details(
        app,
        &academy,
        SCHOOL_A,
        &details("59000 Lille", "", "https://ent.nouveau.fr/"),
    )
    .await;
    assert_eq!(other.status(), 303);
    let mut fields: Vec<(&str, &str)> = shown
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    fields.extend(details(
        "59000 Lille",
        "03 20 00 00 00",
        "https://ent.example.fr/",
    ));
    assert_eq!(
        save_details(app, &academy, SCHOOL_A, &fields)
            .await
            .status(),
        303
    );
    let (_, head, portal) = details_held(app, SCHOOL_A).await;
    assert_eq!(portal.as_deref(), Some("https://ent.nouveau.fr/"));
    assert_eq!(head.contact.as_deref(), Some("03 20 00 00 00"));
    let contact_only = save_details(app, &academy, SCHOOL_A, &[("contact", "")]).await;
    assert_eq!(contact_only.status(), 400, "a form without its fields");

    // What letters cannot print is refused at the field.
    let emoji = save_details(
        app,
        &academy,
        SCHOOL_A,
        &[("name", "Collège Jean Moulin 🎓")],
    )
    .await;
    assert_eq!(emoji.status(), 400);
    let page = emoji.text().await.unwrap();
    assert!(
        page.contains(&fr("Le champ « nom de l&#x27;établissement » contient un caractère que les courriers ne peuvent pas imprimer : « 🎓 »")),
        "{page}"
    );
    // A portal as long as allowed once written out is refused, not cut.
    let long = format!("https://ent.example.fr/{}", "é".repeat(100));
    let refused = save_details(app, &academy, SCHOOL_A, &[("portal_url", &long)]).await;
    assert_eq!(refused.status(), 400);
    assert_eq!(
        details_held(app, SCHOOL_A).await.2.as_deref(),
        Some("https://ent.nouveau.fr/")
    );
    sqlx::query("UPDATE establishments SET contact = NULL, portal_url = 'https://ent.example.fr/' WHERE uai = $1")
        .bind(SCHOOL_A)
        .execute(&app.app.db)
        .await
        .unwrap();

    // Ten minutes on, the password again; the same values again change nothing.
    app.clock.advance(11 * 60);
    let form = page_text(&academy, &form_url).await;
    assert!(form.contains("name=\"password\""), "{form}");
    let fields = details(
        "59000 Lille",
        "secretariat@jean-moulin.example.fr",
        "https://ent.example.fr/",
    );
    let without = save_details(app, &academy, SCHOOL_A, &fields).await;
    assert_eq!(without.status(), 400);
    let mut wrong = fields.to_vec();
    wrong.push(("password", "Mauvais2026"));
    let wrong = save_details(app, &academy, SCHOOL_A, &wrong).await;
    assert_eq!(wrong.status(), 400);
    assert!(
        wrong
            .text()
            .await
            .unwrap()
            .contains("Mot de passe incorrect.")
    );
    assert_eq!(details_held(app, SCHOOL_A).await.1.contact, None);
    let mut with = fields.to_vec();
    with.push(("password", PASSWORD));
    assert_eq!(
        save_details(app, &academy, SCHOOL_A, &with).await.status(),
        303
    );
    assert_eq!(
        details_held(app, SCHOOL_A).await.1.contact.as_deref(),
        Some("secretariat@jean-moulin.example.fr")
    );
    let trail: Vec<String> = sqlx::query_scalar(
        "SELECT detail FROM audit_events WHERE event = 'establishment_changed' ORDER BY at, id",
    )
    .fetch_all(&app.app.db)
    .await
    .unwrap();
    assert_eq!(
        trail.last().map(String::as_str),
        Some(
            format!(
                "updated {SCHOOL_A}: contact=\"secretariat@jean-moulin.example.fr\" (was unset), from the back office by academie"
            )
            .as_str()
        )
    );
}
