//! The life of an account (SPEC §3.1–3.3, §3.6): a letter becomes a working
//! account through first connection and email confirmation.

use serde_json::Value;

use crate::helpers::*;

const CSV: &str = "student_id,family_name,given_name,birthdate,class,guardian1_family_name,guardian1_given_name,guardian1_email\n\
                   1001,Baillet,Julie,03/09/2012,5 B,Baillet,Marc,marc@example.org\n";

struct School {
    app: TestApp,
    client: (String, Option<String>),
}

async fn school() -> School {
    school_with(|_| {}).await
}

async fn school_with(configure: impl FnOnce(&mut clef::config::Config)) -> School {
    let app = spawn_app_with(configure).await;
    app.establishment("0590001A", "Collège Jean Moulin").await;
    app.import("0590001A", CSV.as_bytes()).await.unwrap();
    let client = app.client(false).await;
    School { app, client }
}

impl School {
    /// The provisional password printed on `identifier`'s letter.
    async fn letter_password(&self, identifier: &str) -> String {
        self.app
            .letters("0590001A")
            .await
            .into_iter()
            .find(|l| l.identifier == identifier)
            .expect("a letter")
            .password
    }

    /// Starts an authorization and logs in with the letter's password; returns
    /// the first-connection page.
    async fn first_connection_page(&self, browser: &reqwest::Client, identifier: &str) -> String {
        let url = authorize_url(&self.app, &self.client.0, &[]);
        let login = browser
            .get(&url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let password = self.letter_password(identifier).await;
        let response = submit_login(&self.app, browser, &login, identifier, &password).await;
        assert_eq!(response.status(), 303);
        assert_eq!(location(&response), "/premiere-connexion");
        let page = browser
            .get(self.app.url("/premiere-connexion"))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        page.text().await.unwrap()
    }

    async fn submit_first_connection(
        &self,
        browser: &reqwest::Client,
        page: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut form: Vec<(String, String)> =
            vec![("csrf".into(), input_value(page, "csrf").unwrap())];
        form.extend(fields.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        browser
            .post(self.app.url("/premiere-connexion"))
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    /// Marc's first connection, done right: his account awaits email
    /// confirmation, the step the browser's Back button leads to.
    async fn activate_marc(&self, browser: &reqwest::Client) {
        let page = self.first_connection_page(browser, "marc.baillet").await;
        let fields = guardian_fields("03/09/2012", NEW_PASSWORD, NEW_PASSWORD);
        let done = self.submit_first_connection(browser, &page, &fields).await;
        assert_eq!(done.status(), 200);
        let back = browser
            .get(self.app.url("/premiere-connexion"))
            .send()
            .await
            .unwrap();
        assert_eq!(back.status(), 303);
        assert_eq!(location(&back), "/compte-non-confirme");
    }

    /// Logs Marc in with his new password, which leads to « Compte non confirmé »; returns that screen.
    async fn unconfirmed_screen(&self, browser: &reqwest::Client) -> String {
        let response = self
            .login_to_code(browser, "marc.baillet", NEW_PASSWORD)
            .await;
        assert_eq!(location(&response), "/compte-non-confirme");
        page_text(browser, &self.app.url("/compte-non-confirme")).await
    }

    /// Opens a confirmation link the way a person does: GET shows a button, POST confirms.
    async fn confirm(&self, browser: &reqwest::Client, link: &str) -> reqwest::Response {
        let page = browser.get(link).send().await.unwrap();
        assert_eq!(page.status(), 200, "the link shows its form");
        let html = page.text().await.unwrap();
        let form = [
            ("csrf", input_value(&html, "csrf").unwrap()),
            ("jeton", input_value(&html, "jeton").unwrap()),
        ];
        browser
            .post(self.app.url("/confirmation"))
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    async fn login_to_code(
        &self,
        browser: &reqwest::Client,
        identifier: &str,
        password: &str,
    ) -> reqwest::Response {
        let url = authorize_url(&self.app, &self.client.0, &[]);
        let login = browser
            .get(&url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        submit_login(&self.app, browser, &login, identifier, password).await
    }
}

const NEW_PASSWORD: &str = "Cartable2026";

fn guardian_fields<'a>(
    birthdate: &'a str,
    password: &'a str,
    confirmation: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("birthdate", birthdate),
        ("password", password),
        ("password_confirmation", confirmation),
        ("email", "marc@example.org"),
        ("email_confirmation", "marc@example.org"),
    ]
}

/// A pupil's first connection, without an address.
fn student_fields<'a>(birthdate: &'a str, password: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("birthdate", birthdate),
        ("password", password),
        ("password_confirmation", password),
        ("email", ""),
        ("email_confirmation", ""),
    ]
}

/// Exchanges the code of a redirect and returns the ID token's claims (unverified: the
/// signature is checked by the relying-party tests).
async fn claims_of(school: &School, back: &reqwest::Response) -> Value {
    let code = location_param(back, "code").expect("a code");
    let body: Value = exchange(&school.app, &school.client, &code, None)
        .await
        .json()
        .await
        .unwrap();
    jwt_claims(body["id_token"].as_str().unwrap())
}

async fn guardian_whole_path(school: &School, mails: impl Fn() -> Vec<ReceivedMail>) {
    let browser = browser();
    let page = school.first_connection_page(&browser, "marc.baillet").await;
    assert!(page.contains("Date de naissance de votre enfant"));
    assert!(page.contains(&fr("8 à 14 caractères, chiffres et lettres obligatoires")));
    assert!(page.contains(r#"<dd id="identifier-shown">marc.baillet</dd>"#));
    assert!(page.contains(r#"value="marc.baillet" autocomplete="username" readonly hidden"#));

    // Wrong birth date, weak password, mismatched confirmation: each refused, nothing changes.
    for (fields, expected) in [
        (
            guardian_fields("04/09/2012", NEW_PASSWORD, NEW_PASSWORD),
            "date de naissance ne correspond pas",
        ),
        (
            guardian_fields("03/09/2012", "motdepasse", "motdepasse"),
            "ne respecte pas la règle",
        ),
        (
            guardian_fields("03/09/2012", NEW_PASSWORD, "Cartable2027"),
            "confirmation du mot de passe",
        ),
        // Left empty: said empty, not a password that breaks the rule.
        (
            guardian_fields("03/09/2012", "", ""),
            "Le champ « nouveau mot de passe » est obligatoire.",
        ),
        (
            guardian_fields("03/09/2012", NEW_PASSWORD, ""),
            "Le champ « confirmation du mot de passe » est obligatoire.",
        ),
    ] {
        let refused = school
            .submit_first_connection(&browser, &page, &fields)
            .await;
        assert_eq!(refused.status(), 400);
        assert!(
            refused.text().await.unwrap().contains(&fr(expected)),
            "{expected}"
        );
    }
    assert_eq!(
        school.app.account_named("marc.baillet").await.state,
        clef::accounts::AccountState::Provisional
    );

    let done = school
        .submit_first_connection(
            &browser,
            &page,
            &guardian_fields("03/09/2012", NEW_PASSWORD, NEW_PASSWORD),
        )
        .await;
    assert_eq!(done.status(), 200);
    let done = done.text().await.unwrap();
    assert!(done.contains("Compte en attente de validation"));
    // The language link shows where the account stands, in English: the
    // letter's step is over (it said « Session expired »).
    let switched = browser
        .get(school.app.url(&language_link(&done)))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&switched), "/compte-non-confirme");
    let english = page_text(&browser, &school.app.url("/compte-non-confirme")).await;
    assert!(english.contains("<html lang=\"en\">"), "{english}");
    assert!(english.contains("marc@example.org"), "{english}");
    let back = school.app.url("/langue?lang=fr&next=/");
    browser.get(back).send().await.unwrap();
    let marc = school.app.account_named("marc.baillet").await;
    assert_eq!(marc.state, clef::accounts::AccountState::PendingEmail);
    assert!(
        marc.provisional_password.is_none(),
        "the letter's password is erased at activation"
    );

    // The letter no longer works; the new password does, but applications stay closed.
    let letter_again = school
        .login_to_code(&browser, "marc.baillet", "whatever")
        .await;
    assert_eq!(letter_again.status(), 401);
    let unconfirmed = school
        .login_to_code(&browser, "marc.baillet", NEW_PASSWORD)
        .await;
    assert_eq!(
        location(&unconfirmed),
        "/compte-non-confirme",
        "no code before confirmation"
    );
    let screen = browser
        .get(school.app.url("/compte-non-confirme"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        screen.contains("Renvoyer le mail de confirmation")
            && screen.contains("Corriger l'adresse")
    );

    let mail = mails()
        .into_iter()
        .rev()
        .find(|m| m.to == "marc@example.org")
        .expect("a confirmation mail");
    assert_eq!(mail.subject, "Confirmez votre adresse mail");
    let link = mail.link(&school.app.url("/confirmation?jeton="));
    let confirmed = school.confirm(&browser, &link).await;
    assert_eq!(confirmed.status(), 200);
    assert_eq!(confirmed.url().path(), "/confirmation/faite");
    let html = confirmed.text().await.unwrap();
    assert!(html.contains("Création réussie"));
    assert!(
        html.contains("Continuer vers l&#x27;application")
            || html.contains("Continuer vers l'application")
    );
    // Told once: shown again (a reload), the page leads to « Mon compte »,
    // not to « Lien invalide ».
    let again = browser
        .get(school.app.url("/confirmation/faite"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 303);
    assert_eq!(location(&again), "/compte");
    let marc = school.app.account_named("marc.baillet").await;
    assert_eq!(marc.state, clef::accounts::AccountState::Active);
    assert!(marc.email_verified_at.is_some());

    // Back to the application: a code, and Julie in the children claim.
    let back = school
        .login_to_code(&crate::helpers::browser(), "marc.baillet", NEW_PASSWORD)
        .await;
    let claims = claims_of(school, &back).await;
    assert_eq!(claims["children"][0]["given_name"], "Julie");
    assert_eq!(claims["children"][0]["class"], "5 B");
}

#[tokio::test]
async fn a_guardian_turns_a_letter_into_an_account_with_mail_read_from_the_outbox() {
    let school = school().await;
    guardian_whole_path(&school, || school.app.outbox()).await;
}

#[tokio::test]
async fn a_guardian_turns_a_letter_into_an_account_with_mail_through_a_real_smtp_server() {
    let smtp = SmtpServer::start().await;
    let url = format!("smtp://127.0.0.1:{}", smtp.port);
    let school = school_with(|config| config.smtp_url = Some(url.into())).await;
    guardian_whole_path(&school, || smtp.received()).await;
    assert!(
        school.app.outbox().is_empty(),
        "with SMTP configured, nothing goes to the outbox"
    );
    let envelope = &smtp.messages()[0];
    assert_eq!(envelope.from, "no-reply@localhost");
    assert_eq!(envelope.to, ["marc@example.org"]);
}

#[tokio::test]
async fn the_test_smtp_server_speaks_the_protocol_lettre_relies_on() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

    let smtp = SmtpServer::start().await;
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", smtp.port))
        .await
        .unwrap();
    let (read, mut write) = stream.into_split();
    let mut read = tokio::io::BufReader::new(read);
    let mut exchange = async |command: &str| {
        if !command.is_empty() {
            write.write_all(command.as_bytes()).await.unwrap();
        }
        // A reply ends with its first line whose code is followed by a space.
        let mut reply = String::new();
        loop {
            let mut line = String::new();
            read.read_line(&mut line).await.unwrap();
            reply.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return reply;
            }
        }
    };
    assert!(exchange("").await.starts_with("220 "));
    let ehlo = exchange("EHLO client.example\r\n").await;
    assert!(
        ehlo.starts_with("250-") && ehlo.contains("8BITMIME"),
        "{ehlo}"
    );
    assert!(exchange("DATA\r\n").await.starts_with("503 "));
    assert!(exchange("VRFY root\r\n").await.starts_with("500 "));
    assert!(exchange("NOOP\r\n").await.starts_with("250 "));
    assert!(
        exchange("MAIL FROM:<a@example.org>\r\n")
            .await
            .starts_with("250 ")
    );
    assert!(exchange("RSET\r\n").await.starts_with("250 "));
    assert!(
        exchange("RCPT TO:<b@example.org>\r\n")
            .await
            .starts_with("503 "),
        "RSET ended the transaction"
    );
    assert!(
        exchange("MAIL FROM:<a@example.org> BODY=8BITMIME\r\n")
            .await
            .starts_with("250 ")
    );
    assert!(
        exchange("RCPT TO:<b@example.org>\r\n")
            .await
            .starts_with("250 ")
    );
    assert!(exchange("DATA\r\n").await.starts_with("354 "));
    let body = "Subject: dots\r\n\r\n..leading dot\r\n.\r\n";
    assert!(exchange(body).await.starts_with("250 "));
    assert!(exchange("QUIT\r\n").await.starts_with("221 "));

    let messages = smtp.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].from, "a@example.org");
    assert_eq!(messages[0].to, ["b@example.org"]);
    assert_eq!(messages[0].data, b"Subject: dots\r\n\r\n.leading dot\r\n");
}

#[tokio::test]
async fn a_student_without_email_reaches_the_application_at_once() {
    let school = school().await;
    let browser = browser();
    let page = school
        .first_connection_page(&browser, "julie.baillet")
        .await;
    assert!(page.contains("Votre date de naissance"));
    let fields = student_fields("2012-09-03", NEW_PASSWORD);
    let back = school
        .submit_first_connection(&browser, &page, &fields)
        .await;
    assert_eq!(back.status(), 303, "the authorization resumes");
    assert!(location(&back).starts_with(REDIRECT_URI));
    let claims = claims_of(&school, &back).await;
    assert_eq!(claims["school"]["uai"], "0590001A");
    assert_eq!(
        school.app.account_named("julie.baillet").await.state,
        clef::accounts::AccountState::Active
    );
    // « Mon compte » offers to add an address, and says what it is for.
    let account = page_text(&browser, &school.app.url("/compte")).await;
    assert!(
        account.contains(&fr("<h2 id=\"adresse\">Ajouter une adresse mail</h2>")),
        "{account}"
    );
    assert!(account.contains("retrouver seul votre identifiant ou votre mot de passe"));
    assert!(!account.contains("l'ancienne adresse en sera informée"));
}

/// On a phone: the letter's password typed in lower case (the keyboard's
/// start) with a space between its halves, and the birth date in digits
/// alone (a numeric keypad has no slash). Both are what the letter says.
#[tokio::test]
async fn a_letter_typed_on_a_phone_keyboard_works() {
    let school = school().await;
    let browser = browser();
    let url = authorize_url(&school.app, &school.client.0, &[]);
    let login = page_text(&browser, &url).await;
    let password = school.letter_password("julie.baillet").await;
    let typed = format!(
        " {} {} ",
        password[..4].to_lowercase(),
        password[4..].to_lowercase()
    );
    // `0` is not in the letters' alphabet: surely another password.
    let wrong = format!("{}0", &typed[..typed.len() - 2]);
    let refused = submit_login(&school.app, &browser, &login, "julie.baillet", &wrong).await;
    assert_eq!(refused.status(), 401, "another password is still refused");
    let login = page_text(&browser, &url).await;
    let response = submit_login(&school.app, &browser, &login, "julie.baillet", &typed).await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/premiere-connexion");
    let page = page_text(&browser, &school.app.url("/premiere-connexion")).await;
    // The letter's password, in lower case, is still the letter's: not a new one.
    let lower = password.to_lowercase();
    let same = student_fields("03092012", &lower);
    let refused = school.submit_first_connection(&browser, &page, &same).await;
    assert_eq!(refused.status(), 400);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("différent du mot de passe provisoire")
    );
    let fields = student_fields("03092012", NEW_PASSWORD);
    let back = school
        .submit_first_connection(&browser, &page, &fields)
        .await;
    assert_eq!(back.status(), 303, "the birth date is read");
    assert!(location(&back).starts_with(REDIRECT_URI));
}

/// From the letter's address, with no application waiting: the student is
/// told the account is made (« Création réussie »), signed in, with the way
/// to « Mon compte ».
#[tokio::test]
async fn a_student_activating_from_the_letter_is_told_the_account_is_made() {
    let school = school().await;
    let browser = browser();
    let login = page_text(
        &browser,
        &school.app.url("/activation?identifiant=julie.baillet"),
    )
    .await;
    let password = school.letter_password("julie.baillet").await;
    let response = submit_login(&school.app, &browser, &login, "julie.baillet", &password).await;
    assert_eq!(location(&response), "/premiere-connexion");
    let page = page_text(&browser, &school.app.url("/premiere-connexion")).await;
    let fields = [
        ("birthdate", "03/09/2012"),
        ("password", NEW_PASSWORD),
        ("password_confirmation", NEW_PASSWORD),
        ("email", ""),
        ("email_confirmation", ""),
    ];
    let done = school
        .submit_first_connection(&browser, &page, &fields)
        .await;
    assert_eq!(done.status(), 200);
    let done = done.text().await.unwrap();
    assert!(
        done.contains("<h1>Création réussie</h1>")
            && done.contains(r#"href="&#x2f;compte""#)
            && done.contains("next=%2Fcompte"),
        "{done}"
    );
    let account = browser.get(school.app.url("/compte")).send().await.unwrap();
    assert_eq!(account.status(), 200, "signed in");
    // Back to the step, now over: « Mon compte », not « Session expirée ».
    let back = browser
        .get(school.app.url("/premiere-connexion"))
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), 303);
    assert_eq!(location(&back), "/compte");
}

#[tokio::test]
async fn a_student_with_an_unconfirmed_email_may_use_applications() {
    let school = school().await;
    let browser = browser();
    let page = school
        .first_connection_page(&browser, "julie.baillet")
        .await;
    let fields = [
        ("birthdate", "03/09/2012"),
        ("password", NEW_PASSWORD),
        ("password_confirmation", NEW_PASSWORD),
        ("email", "julie@example.org"),
        ("email_confirmation", "julie@example.org"),
    ];
    let done = school
        .submit_first_connection(&browser, &page, &fields)
        .await;
    let html = done.text().await.unwrap();
    assert!(html.contains("Compte en attente de validation"));
    let start = html
        .find("continuer?request=")
        .expect("a link back to the application");
    let request: String = html[start + "continuer?request=".len()..]
        .chars()
        .take_while(|c| *c != '"')
        .collect();
    let resumed = browser
        .get(school.app.url(&format!("/continuer?request={request}")))
        .send()
        .await
        .unwrap();
    assert!(
        location_param(&resumed, "code").is_some(),
        "« Continuer vers l'application » resumes the authorization"
    );
    assert_eq!(
        school.app.account_named("julie.baillet").await.state,
        clef::accounts::AccountState::PendingEmail
    );
    let back = school
        .login_to_code(&crate::helpers::browser(), "julie.baillet", NEW_PASSWORD)
        .await;
    assert!(
        location_param(&back, "code").is_some(),
        "a student is not held back by an unconfirmed address"
    );
}

#[tokio::test]
async fn a_guardian_must_give_an_email() {
    let school = school().await;
    let browser = browser();
    let page = school.first_connection_page(&browser, "marc.baillet").await;
    let fields = [
        ("birthdate", "03/09/2012"),
        ("password", NEW_PASSWORD),
        ("password_confirmation", NEW_PASSWORD),
        ("email", ""),
        ("email_confirmation", ""),
    ];
    let refused = school
        .submit_first_connection(&browser, &page, &fields)
        .await;
    assert_eq!(refused.status(), 400);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("obligatoire pour les responsables")
    );
}

#[tokio::test]
async fn an_expired_letter_no_longer_works_and_its_account_is_deleted() {
    let school = school().await;
    let password = school.letter_password("marc.baillet").await;
    school.app.clock.advance(93 * 24 * 3600);
    let refused = school
        .login_to_code(&browser(), "marc.baillet", &password)
        .await;
    assert_eq!(refused.status(), 403);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("a dépassé son délai")
    );

    let (db, now) = (&school.app.app.db, school.app.app.now());
    let zone = school.app.app.config.zone();
    let expiry = || clef::provisioning::expiry::expire_letters(db, now, 3, &zone);
    let (first, second) = tokio::join!(expiry(), expiry());
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(
        first.deleted + second.deleted,
        2,
        "the guardian and the student, once"
    );
    assert_eq!(
        expiry().await.unwrap().deleted,
        0,
        "running it again changes nothing"
    );
    assert_eq!(school.app.count("accounts").await, 0);
    assert_eq!(school.app.count("guardianships").await, 0);
}

#[tokio::test]
async fn expiry_keeps_a_student_whose_guardian_is_active_but_voids_the_letter() {
    let school = school().await;
    let browser = browser();
    school.activate_marc(&browser).await;
    school.app.clock.advance(93 * 24 * 3600);
    let report = school.app.expire_letters().await;
    assert_eq!((report.deleted, report.letters_voided), (0, 1));
    let julie = school.app.account_named("julie.baillet").await;
    assert!(julie.provisional_password.is_none());
    assert_eq!(
        school.app.count("guardianships").await,
        1,
        "Marc keeps Julie"
    );
}

#[tokio::test]
async fn a_link_replaced_by_a_newer_one_is_refused_and_a_used_one_says_the_address_is_confirmed() {
    let school = school().await;
    let browser = browser();
    school.activate_marc(&browser).await;
    let first_link = school
        .app
        .last_mail_to("marc@example.org")
        .link(&school.app.url("/confirmation?jeton="));

    // « Renvoyer le mail de confirmation » from the unconfirmed screen.
    let screen = school.unconfirmed_screen(&browser).await;
    let resent = browser
        .post(school.app.url("/compte-non-confirme/renvoyer"))
        .form(&[("csrf", input_value(&screen, "csrf").unwrap())])
        .send()
        .await
        .unwrap();
    assert!(
        resent
            .text()
            .await
            .unwrap()
            .contains("nouveau mail de confirmation")
    );
    let second_link = school
        .app
        .last_mail_to("marc@example.org")
        .link(&school.app.url("/confirmation?jeton="));
    assert_ne!(first_link, second_link);

    let replaced = browser.get(&first_link).send().await.unwrap();
    assert_eq!(replaced.status(), 410);
    assert!(replaced.text().await.unwrap().contains("plus récent"));
    assert_eq!(school.confirm(&browser, &second_link).await.status(), 200);
    // Opened again from the mail, either link has nothing left to do, and
    // says so rather than « Lien invalide ».
    for link in [&second_link, &first_link] {
        let again = browser.get(link).send().await.unwrap();
        assert_eq!(again.status(), 200);
        let again = again.text().await.unwrap();
        assert!(
            again.contains("<h1>Adresse déjà confirmée</h1>")
                && !again.contains("Confirmer mon adresse"),
            "{again}"
        );
    }
}

/// A mail server that cannot be reached: the first connection is saved and
/// its page says the confirmation mail did not go (not « open the mail you
/// just received »); asking for it again says the same, with 503, and
/// nothing is lost.
#[tokio::test]
async fn a_confirmation_mail_that_does_not_go_is_told_as_such() {
    let port = free_port();
    let school =
        school_with(|config| config.smtp_url = Some(format!("smtp://127.0.0.1:{port}").into()))
            .await;
    let browser = browser();
    let page = school.first_connection_page(&browser, "marc.baillet").await;
    let fields = guardian_fields("03/09/2012", NEW_PASSWORD, NEW_PASSWORD);
    let done = school
        .submit_first_connection(&browser, &page, &fields)
        .await;
    assert_eq!(done.status(), 200);
    let done = done.text().await.unwrap();
    assert!(
        done.contains("le mail de confirmation n'a pas pu être envoyé pour le moment")
            && !done.contains("que vous venez de recevoir"),
        "{done}"
    );
    assert_eq!(
        school.app.account_named("marc.baillet").await.state,
        clef::accounts::AccountState::PendingEmail,
        "the account is saved"
    );
    let screen = school.unconfirmed_screen(&browser).await;
    let csrf = input_value(&screen, "csrf").unwrap();
    let again = browser
        .post(school.app.url("/compte-non-confirme/renvoyer"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 503);
    assert!(again.headers().contains_key("retry-after"));
    assert!(
        again
            .text()
            .await
            .unwrap()
            .contains("pas pu être envoyé pour le moment. Redemandez-le dans quelques minutes")
    );
}

#[tokio::test]
async fn an_unconfirmed_guardian_corrects_the_address() {
    let school = school().await;
    let browser = browser();
    school.activate_marc(&browser).await;
    let screen = school.unconfirmed_screen(&browser).await;
    let csrf = input_value(&screen, "csrf").unwrap();
    let corrected = browser
        .post(school.app.url("/compte-non-confirme/corriger"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", "marc.baillet@example.net"),
            ("email_confirmation", "marc.baillet@example.net"),
            ("password", NEW_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert!(corrected.text().await.unwrap().contains("corrigée"));
    assert_eq!(
        school
            .app
            .account_named("marc.baillet")
            .await
            .email
            .as_deref(),
        Some("marc.baillet@example.net")
    );
    let link = school
        .app
        .last_mail_to("marc.baillet@example.net")
        .link(&school.app.url("/confirmation?jeton="));
    assert_eq!(school.confirm(&browser, &link).await.status(), 200);
    assert_eq!(
        school.app.account_named("marc.baillet").await.state,
        clef::accounts::AccountState::Active
    );
}

/// The unconfirmed screen follows a login, perhaps on a shared computer: the
/// next person there cannot point the account at their own address without
/// the password; and once the address is confirmed, the screen is gone.
#[tokio::test]
async fn the_unconfirmed_screen_corrects_the_address_only_with_the_password_and_ends_with_confirmation()
 {
    let school = school().await;
    let browser = browser();
    school.activate_marc(&browser).await;
    let screen = school.unconfirmed_screen(&browser).await;
    let csrf = input_value(&screen, "csrf").unwrap();
    let correct = |password: &'static str| {
        browser
            .post(school.app.url("/compte-non-confirme/corriger"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("email", "someone.else@example.net"),
                ("email_confirmation", "someone.else@example.net"),
                ("password", password),
            ])
            .send()
    };
    let refused = correct("").await.unwrap();
    assert_eq!(refused.status(), 400);
    let page = refused.text().await.unwrap();
    assert!(page.contains("Le mot de passe actuel est incorrect."));
    // Said beside the field, not at the top of a long page; the title says it too.
    let (before, after) = page.split_once(r#"id="erreur""#).unwrap();
    assert!(
        before.contains(r#"action="/compte-non-confirme/corriger""#),
        "{page}"
    );
    assert!(after.contains(r#"<label for="password">"#) && !after.contains(r#"id="email""#));
    assert!(
        page.contains(&format!("<title>Erreur — {}", fr("Compte non confirmé"))),
        "{page}"
    );
    // The field in error is the password's, focused; the addresses typed stay.
    let password_input = page
        .split("<input")
        .find(|input| input.contains(r#"id="password""#))
        .unwrap();
    assert!(
        password_input.contains(r#"aria-invalid="true" autofocus"#),
        "{password_input}"
    );
    let email_input = page
        .split("<input")
        .find(|input| input.contains(r#"id="email""#))
        .unwrap();
    assert!(!email_input.contains("aria-invalid"), "{email_input}");
    assert!(email_input.contains(r#"value="someone.else@example.net""#));
    assert_eq!(correct("Devine2026").await.unwrap().status(), 400);
    assert_eq!(
        school
            .app
            .account_named("marc.baillet")
            .await
            .email
            .as_deref(),
        Some("marc@example.org"),
        "the address is unchanged"
    );

    // Marc confirms from his phone: this browser's screen is spent.
    let link = school
        .app
        .last_mail_to("marc@example.org")
        .link(&school.app.url("/confirmation?jeton="));
    assert_eq!(
        school
            .confirm(&crate::helpers::browser(), &link)
            .await
            .status(),
        200
    );
    let after = browser
        .get(school.app.url("/compte-non-confirme"))
        .send()
        .await
        .unwrap();
    assert_ne!(after.status(), 200);
    assert_ne!(correct(NEW_PASSWORD).await.unwrap().status(), 200);
    assert_eq!(
        school
            .app
            .account_named("marc.baillet")
            .await
            .email
            .as_deref(),
        Some("marc@example.org")
    );
}

/// Resending and correcting share one count per account: five mails an
/// hour, then a 429 that says how long to wait, and nothing sent.
#[tokio::test]
async fn confirmation_mails_asked_for_are_limited_to_five_an_hour() {
    let school = school().await;
    let browser = browser();
    school.activate_marc(&browser).await;
    let screen = school.unconfirmed_screen(&browser).await;
    let csrf = input_value(&screen, "csrf").unwrap();
    let ask = |action: &'static str| {
        let (browser, csrf, url) = (
            browser.clone(),
            csrf.clone(),
            school.app.url(&format!("/compte-non-confirme/{action}")),
        );
        async move {
            browser
                .post(url)
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("email", "marc.baillet@example.net"),
                    ("email_confirmation", "marc.baillet@example.net"),
                    ("password", NEW_PASSWORD),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let mails = school.app.outbox().len();
    for action in ["renvoyer", "corriger", "renvoyer", "corriger", "renvoyer"] {
        assert_eq!(ask(action).await.status(), 200, "{action}");
    }
    assert_eq!(school.app.outbox().len(), mails + 5);
    for action in ["renvoyer", "corriger"] {
        let refused = ask(action).await;
        assert_eq!(refused.status(), 429, "{action}");
        // The hour from the fifth mail (a second may have gone by since).
        let retry_after: u64 = refused.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((3590..=3600).contains(&retry_after), "{retry_after}");
        let page = refused.text().await.unwrap();
        assert!(
            page.contains(&fr("Trop de mails de confirmation ont été demandés pour ce compte. Patientez 60 minutes")),
            "{page}"
        );
    }
    assert_eq!(
        school.app.outbox().len(),
        mails + 5,
        "nothing more was sent"
    );
    school.app.clock.advance(3600);
    assert_eq!(ask("renvoyer").await.status(), 200);
    assert_eq!(school.app.outbox().len(), mails + 6);
}

/// Claire signed in, on « Mon compte »: the app, her browser and the
/// page's CSRF token.
async fn claire_on_her_account_page() -> (TestApp, reqwest::Client, String) {
    let app = spawn_app().await;
    app.family().await;
    let browser = browser();
    let login = page_text(&browser, &app.url("/login")).await;
    let signed_in = submit_login(&app, &browser, &login, "claire.martin", PASSWORD).await;
    assert_eq!(location(&signed_in), "/compte");
    let page = page_text(&browser, &app.url("/compte")).await;
    let csrf = input_value(&page, "csrf").unwrap();
    (app, browser, csrf)
}

/// Password changes sent at once (a double click, two tabs): one is made;
/// the others find their « current » password replaced and say so — not
/// four « Mot de passe modifié » for passwords of which one alone works.
#[tokio::test]
async fn password_changes_sent_at_once_make_one() {
    let (app, browser, csrf) = claire_on_her_account_page().await;
    let change = |new: &'static str| {
        let form = [
            ("csrf", csrf.clone()),
            ("current_password", PASSWORD.to_owned()),
            ("new_password", new.to_owned()),
            ("new_password_confirmation", new.to_owned()),
        ];
        let request = browser.post(app.url("/compte/mot-de-passe")).form(&form);
        async move {
            let answer = request.send().await.unwrap();
            match answer.status().as_u16() {
                // Sent while the first one carried this session into the
                // password's new epoch: signed out, as another session is.
                303 => format!("303 {}", location(&answer)),
                status => status.to_string(),
            }
        }
    };
    let news = [
        "Cartable2027",
        "Cartable2028",
        "Cartable2029",
        "Cartable2030",
    ];
    let (a, b, c, d) = tokio::join!(
        change(news[0]),
        change(news[1]),
        change(news[2]),
        change(news[3])
    );
    let statuses = [a, b, c, d];
    assert_eq!(
        statuses.iter().filter(|s| *s == "200").count(),
        1,
        "one made: {statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| ["200", "400", "303 /login"].contains(&s.as_str())),
        "the others refused: {statuses:?}"
    );
    let hash = app.account_named("claire.martin").await.password_hash;
    let mut working = 0;
    for new in news {
        let secret = secrecy::SecretString::from(new.to_owned());
        if app
            .app
            .passwords
            .verify(&secret, hash.as_deref())
            .await
            .unwrap()
        {
            working += 1;
        }
    }
    assert_eq!(working, 1, "the one told made is the one that works");
}

/// A change made on « Mon compte » answers with a redirect to the page,
/// which tells it once: shown again (a reload, the back button), the page
/// neither repeats the change nor tells it again.
#[tokio::test]
async fn my_account_tells_a_change_once_and_a_reload_does_not_repeat_it() {
    let (app, browser, _) = claire_on_her_account_page().await;
    let changed = change_password(&app, &browser, NEW_PASSWORD).await;
    assert_eq!(changed.url().path(), "/compte", "a redirect, followed");
    let page = changed.text().await.unwrap();
    assert!(page.contains("Votre mot de passe a été modifié."), "{page}");
    let again = page_text(&browser, &app.url("/compte")).await;
    assert!(
        !again.contains("Votre mot de passe a été modifié."),
        "{again}"
    );
    assert!(!again.contains("Erreur"), "{again}");
    // The notice is sent after the answer: waited for, then counted.
    app.mail_to(
        "claire.martin@example.org",
        "Votre mot de passe a été modifié",
    )
    .await;
    let mails = app
        .outbox()
        .iter()
        .filter(|m| m.subject.contains("Votre mot de passe a été modifié"))
        .count();
    assert_eq!(mails, 1, "one change, one mail");
}

/// On « Mon compte », a new address and « renvoyer » share the count.
#[tokio::test]
async fn my_account_asks_for_five_confirmation_mails_an_hour() {
    let (app, browser, csrf) = claire_on_her_account_page().await;
    let post = |path: &'static str| {
        browser
            .post(app.url(path))
            .form(&[
                ("csrf", csrf.as_str()),
                ("current_password", PASSWORD),
                ("email", "claire@example.net"),
                ("email_confirmation", "claire@example.net"),
            ])
            .send()
    };
    for path in [
        "/compte/adresse",
        "/compte/renvoyer",
        "/compte/renvoyer",
        "/compte/adresse",
        "/compte/renvoyer",
    ] {
        assert_eq!(post(path).await.unwrap().status(), 200, "{path}");
    }
    for path in ["/compte/adresse", "/compte/renvoyer"] {
        let refused = post(path).await.unwrap();
        assert_eq!(refused.status(), 429, "{path}");
        assert!(refused.headers().contains_key("retry-after"));
        assert!(
            refused
                .text()
                .await
                .unwrap()
                .contains("Trop de mails de confirmation")
        );
    }
}

/// A student who mistyped their address at first connection fixes it on
/// « Mon compte »: the mistyped address, a stranger's, is not told (it was
/// never confirmed); the new one gets its link.
#[tokio::test]
async fn a_new_address_is_not_told_to_an_old_one_never_confirmed() {
    let app = spawn_app().await;
    app.family().await;
    sqlx::query(
        "UPDATE accounts SET email = 'lea.mistyped@example.org', email_verified_at = NULL, \
         state = 'pending_email' WHERE identifier = 'lea.martin'",
    )
    .execute(&app.app.db)
    .await
    .unwrap();
    let browser = browser();
    let login = page_text(&browser, &app.url("/login")).await;
    submit_login(&app, &browser, &login, "lea.martin", PASSWORD).await;
    let page = page_text(&browser, &app.url("/compte")).await;
    let changed = browser
        .post(app.url("/compte/adresse"))
        .form(&[
            ("csrf", input_value(&page, "csrf").unwrap().as_str()),
            ("current_password", PASSWORD),
            ("email", "lea@example.net"),
            ("email_confirmation", "lea@example.net"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
    let outbox = app.outbox();
    assert!(outbox.iter().any(|m| m.to == "lea@example.net"));
    assert!(
        !outbox.iter().any(|m| m.to == "lea.mistyped@example.org"),
        "the stranger's address is told nothing"
    );
}

/// « Dernière connexion » is the sign-in before the one that opened the page,
/// so a parent can spot a sign-in that was not theirs.
#[tokio::test]
async fn my_account_shows_the_sign_in_before_this_one() {
    let app = spawn_app().await;
    app.family().await;
    let account_page = async || {
        let browser = browser();
        let login = browser.get(app.url("/login")).send().await.unwrap();
        let login = login.text().await.unwrap();
        let signed_in = submit_login(&app, &browser, &login, "claire.martin", PASSWORD).await;
        assert_eq!(location(&signed_in), "/compte");
        let page = browser.get(app.url("/compte")).send().await.unwrap();
        page.text().await.unwrap()
    };
    let first = account_page().await;
    assert!(
        first.contains("<dt>Dernière connexion</dt><dd>aucune avant celle-ci</dd>"),
        "{first}"
    );
    let first_at = app.app.now();
    app.clock.advance(3 * 86_400);
    let second = account_page().await;
    let first_at = jiff::Timestamp::from_second(first_at)
        .unwrap()
        .to_zoned(app.app.config.zone());
    // As minijinja escapes it: `/` is `&#x2f;`.
    let shown = first_at.strftime("%d&#x2f;%m&#x2f;%Y à %H:%M");
    assert!(
        second.contains(&format!("<dt>Dernière connexion</dt><dd>{shown}</dd>")),
        "the first sign-in, {shown}: {second}"
    );
}

#[tokio::test]
async fn my_account_changes_the_password_and_the_address_with_the_current_password() {
    let app = spawn_app().await;
    app.family().await;
    let browser = browser();
    let login = browser
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let signed_in = submit_login(&app, &browser, &login, "claire.martin", PASSWORD).await;
    assert_eq!(location(&signed_in), "/compte");
    let page = browser
        .get(app.url("/compte"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("claire.martin") && page.contains("claire.martin@example.org — validée"));
    assert!(page.contains("Dernière connexion"));
    let csrf = input_value(&page, "csrf").unwrap();
    let post = |path: &'static str, form: Vec<(&'static str, String)>| {
        let mut form = form;
        form.push(("csrf", csrf.clone()));
        browser.post(app.url(path)).form(&form).send()
    };

    let wrong = post(
        "/compte/mot-de-passe",
        vec![
            ("current_password", "faux".into()),
            ("new_password", NEW_PASSWORD.into()),
            ("new_password_confirmation", NEW_PASSWORD.into()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(wrong.status(), 400);
    let wrong = wrong.text().await.unwrap();
    // Told beside the form it answers (at 320 px the forms are screens
    // apart), its first field focused and described by it; the title says so.
    assert!(
        wrong.contains("<title>Erreur — Mon compte — Clef</title>"),
        "{wrong}"
    );
    let section = &wrong[wrong.find(r#"<h2 id="mot-de-passe">"#).unwrap()..];
    let section = &section[..section.find("</form>").unwrap()];
    assert!(
        section.contains("mot de passe actuel est incorrect"),
        "{section}"
    );
    assert!(section.contains(r#"id="current_password" name="current_password" autocomplete="current-password" required aria-invalid="true" autofocus aria-describedby="erreur-current_password""#), "{section}");
    // In the list above the form, and beside its field.
    assert_eq!(
        wrong.matches("mot de passe actuel est incorrect").count(),
        2
    );
    // A new password too weak and typed differently: both told at once, at
    // their fields, before the current password is even checked.
    let weak = post(
        "/compte/mot-de-passe",
        vec![
            ("current_password", "faux".into()),
            ("new_password", "court".into()),
            ("new_password_confirmation", "autre".into()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(weak.status(), 400);
    let weak = weak.text().await.unwrap();
    assert!(weak.contains(r#"id="new_password" name="new_password" autocomplete="new-password" required aria-invalid="true" autofocus aria-describedby="erreur-new_password""#), "{weak}");
    assert!(weak.contains(r#"id="new_password_confirmation" name="new_password_confirmation" autocomplete="new-password" required aria-invalid="true" aria-describedby="erreur-new_password_confirmation""#), "{weak}");
    assert!(
        !weak.contains("mot de passe actuel est incorrect"),
        "{weak}"
    );
    let changed = post(
        "/compte/mot-de-passe",
        vec![
            ("current_password", PASSWORD.into()),
            ("new_password", NEW_PASSWORD.into()),
            ("new_password_confirmation", NEW_PASSWORD.into()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(changed.status(), 200);
    // The owner is told, in case it was not them (a session left open).
    let notice = app
        .mail_to(
            "claire.martin@example.org",
            "Votre mot de passe a été modifié",
        )
        .await;
    assert!(
        notice.text.contains(&fr("modifié depuis « Mon compte »")),
        "{}",
        notice.text
    );
    let again = crate::helpers::browser();
    let login = again
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        submit_login(&app, &again, &login, "claire.martin", NEW_PASSWORD)
            .await
            .status(),
        303
    );

    // The address the account already has: nothing to confirm, no mail.
    let mails = app.outbox().len();
    let same = post(
        "/compte/adresse",
        vec![
            ("current_password", NEW_PASSWORD.into()),
            ("email", "Claire.Martin@example.org".into()),
            ("email_confirmation", "Claire.Martin@example.org".into()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(same.status(), 400);
    assert!(
        same.text()
            .await
            .unwrap()
            .contains("C&#x27;est déjà l&#x27;adresse mail de votre compte.")
    );
    assert_eq!(app.outbox().len(), mails, "no mail for the same address");
    // An address that is not one, confirmed otherwise: both told, each at
    // its field (the page's ids: the password form has a current_password).
    let typo = post(
        "/compte/adresse",
        vec![
            ("current_password", NEW_PASSWORD.into()),
            ("email", "claire@example".into()),
            ("email_confirmation", "claire@exemple.fr".into()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(typo.status(), 400);
    let typo = typo.text().await.unwrap();
    assert!(typo.contains(r#"value="claire@example" aria-invalid="true" autofocus aria-describedby="erreur-new_email""#), "{typo}");
    assert!(typo.contains(r#"value="claire@exemple.fr" aria-invalid="true" aria-describedby="erreur-new_email_confirmation""#), "{typo}");
    assert!(!typo.contains(r#"id="email_password" name="current_password" autocomplete="current-password" required aria-invalid"#), "{typo}");

    let asked = post(
        "/compte/adresse",
        vec![
            ("current_password", NEW_PASSWORD.into()),
            ("email", "claire@example.net".into()),
            ("email_confirmation", "claire@example.net".into()),
        ],
    )
    .await
    .unwrap();
    let asked = asked.text().await.unwrap();
    assert!(asked.contains("claire@example.net"));
    // The seeds' words (guide des élèves, « Votre adresse mail »).
    assert!(asked.contains(
        "Un courriel vient de vous être envoyé à votre nouvelle adresse afin de confirmer cette mise à jour."
    ));
    let claire = app.account_named("claire.martin").await;
    assert_eq!(
        claire.email.as_deref(),
        Some("claire.martin@example.org"),
        "the old address stays until the new one is confirmed"
    );
    assert_eq!(claire.pending_email.as_deref(), Some("claire@example.net"));
    // On the account's trail, without the address.
    let asked: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT event, detail FROM audit_events WHERE account_id = $1 AND event = 'email_change_requested'",
    )
    .bind(&claire.id)
    .fetch_all(&app.app.db)
    .await
    .unwrap();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(
        asked[0].1.as_deref().is_none_or(|d| !d.contains('@')),
        "{asked:?}"
    );
    let notice = app.last_mail_to("claire.martin@example.org");
    assert!(
        notice.text.contains("c***@example.net") && !notice.text.contains("claire@example.net"),
        "the old address is told, the new one masked"
    );
    // The seeds' mail for a change: « Mise à jour de votre adresse mail ».
    let change = app.last_mail_to("claire@example.net");
    assert_eq!(change.subject, "Mise à jour de votre adresse mail");
    assert!(
        change
            .text
            .contains("Vous avez modifié l'adresse mail de votre compte")
    );
    let link = change.link(&app.url("/confirmation?jeton="));
    let page = browser
        .get(&link)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let form = [
        ("csrf", input_value(&page, "csrf").unwrap()),
        ("jeton", input_value(&page, "jeton").unwrap()),
    ];
    let confirmed = browser
        .post(app.url("/confirmation"))
        .form(&form)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(confirmed.contains("Adresse mail confirmée"));
    let claire = app.account_named("claire.martin").await;
    assert_eq!(
        (claire.email.as_deref(), claire.pending_email.as_deref()),
        (Some("claire@example.net"), None)
    );
}

/// « Mot de passe provisoire, à modifier lors de la première connexion »:
/// the letter's password is refused as the new one, and nothing is written.
#[tokio::test]
async fn the_letters_password_is_not_taken_as_the_new_one() {
    let school = school().await;
    let browser = browser();
    let page = school.first_connection_page(&browser, "marc.baillet").await;
    let letter = school.letter_password("marc.baillet").await;
    let fields = guardian_fields("03/09/2012", &letter, &letter);
    let refused = school
        .submit_first_connection(&browser, &page, &fields)
        .await;
    assert_eq!(refused.status(), 400);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("différent du mot de passe provisoire du courrier")
    );
    let marc = school.app.account_named("marc.baillet").await;
    assert_eq!(marc.state, clef::accounts::AccountState::Provisional);
}

/// A « Mon compte » form sent with its fields empty says every one that is
/// required at once, the current password's first (the form's first field).
#[tokio::test]
async fn an_empty_account_form_names_every_field_required() {
    let (app, browser, csrf) = claire_on_her_account_page().await;
    let empty = |path: &'static str, fields: &'static [&'static str]| {
        let mut form: Vec<(&str, &str)> = fields.iter().map(|f| (*f, "")).collect();
        form.push(("csrf", csrf.as_str()));
        browser.post(app.url(path)).form(&form).send()
    };
    let password = empty(
        "/compte/mot-de-passe",
        &[
            "current_password",
            "new_password",
            "new_password_confirmation",
        ],
    )
    .await
    .unwrap();
    assert_eq!(password.status(), 400);
    let password = password.text().await.unwrap();
    let current = fr("Le champ « mot de passe actuel » est obligatoire.");
    let new = fr("Le champ « nouveau mot de passe » est obligatoire.");
    assert!(
        password.contains(&current) && password.contains(&new),
        "{password}"
    );
    assert!(password.find(&current) < password.find(&new), "{password}");
    let address = empty(
        "/compte/adresse",
        &["current_password", "email", "email_confirmation"],
    )
    .await
    .unwrap();
    assert_eq!(address.status(), 400);
    let address = address.text().await.unwrap();
    assert!(address.contains(&current), "{address}");
    assert!(
        address.contains(&fr("Le champ « adresse mail » est obligatoire.")),
        "{address}"
    );
}

/// Someone who had the password asks for their own address; the owner,
/// warned, changes the password: the new address is dropped and its link
/// no longer confirms anything.
#[tokio::test]
async fn a_password_change_drops_an_address_change_under_way() {
    let (app, browser, csrf) = claire_on_her_account_page().await;
    let post = |path: &'static str, form: Vec<(&'static str, String)>| {
        let mut form = form;
        form.push(("csrf", csrf.clone()));
        browser.post(app.url(path)).form(&form).send()
    };
    let asked = post(
        "/compte/adresse",
        vec![
            ("current_password", PASSWORD.into()),
            ("email", "pirate@example.net".into()),
            ("email_confirmation", "pirate@example.net".into()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(asked.status(), 200);
    let link = app
        .last_mail_to("pirate@example.net")
        .link(&app.url("/confirmation?jeton="));
    let changed = post(
        "/compte/mot-de-passe",
        vec![
            ("current_password", PASSWORD.into()),
            ("new_password", NEW_PASSWORD.into()),
            ("new_password_confirmation", NEW_PASSWORD.into()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(changed.status(), 200);
    // The owner is told, in case the change was theirs.
    let changed = changed.text().await.unwrap().replace("&#x27;", "'");
    assert!(
        changed.contains(&fr("Le changement d'adresse mail en attente est annulé")),
        "{changed}"
    );
    let claire = app.account_named("claire.martin").await;
    assert_eq!(claire.pending_email, None);

    let pirate = crate::helpers::browser();
    let opened = pirate.get(&link).send().await.unwrap();
    let page = opened.text().await.unwrap();
    if let (Some(csrf), Some(token)) = (input_value(&page, "csrf"), input_value(&page, "jeton")) {
        pirate
            .post(app.url("/confirmation"))
            .form(&[("csrf", csrf), ("jeton", token)])
            .send()
            .await
            .unwrap();
    }
    let claire = app.account_named("claire.martin").await;
    assert_eq!(claire.email.as_deref(), Some("claire.martin@example.org"));
}

#[tokio::test]
async fn the_qr_code_page_prefills_the_identifier() {
    let school = school().await;
    let letter = school
        .app
        .letters("0590001A")
        .await
        .into_iter()
        .next()
        .unwrap();
    // The QR code's address leaves its proof in the browser, then shows
    // the page at an address without it.
    let browser = browser();
    let opened = browser.get(&letter.activation_url).send().await.unwrap();
    assert_eq!(opened.status(), 303);
    let page = page_text(&browser, &school.app.url(&location(&opened))).await;
    assert!(page.contains("Première connexion"));
    assert_eq!(
        input_value(&page, "identifier").as_deref(),
        Some(letter.identifier.as_str())
    );
    assert!(!page.contains(&letter.password), "never the password");
}

/// A first connection opened with a letter ends when the school gives a new
/// one (a reset): whoever held the old letter cannot finish it.
#[tokio::test]
async fn a_new_letter_ends_a_first_connection_opened_with_the_old_one() {
    let school = school().await;
    let browser = browser();
    let page = school.first_connection_page(&browser, "marc.baillet").await;
    sqlx::query(
        "UPDATE accounts SET letter_date = letter_date + 60 WHERE identifier = 'marc.baillet'",
    )
    .execute(&school.app.app.db)
    .await
    .unwrap();
    let refused = school
        .submit_first_connection(
            &browser,
            &page,
            &guardian_fields("03/09/2012", NEW_PASSWORD, NEW_PASSWORD),
        )
        .await;
    assert_eq!(refused.status(), 400);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("Cette étape a expiré")
    );
    assert_eq!(
        school.app.account_named("marc.baillet").await.state,
        clef::accounts::AccountState::Provisional
    );
}

/// A password longer than the rule allows is refused by the server with the
/// rule, not cut short by the browser (a password manager would keep the
/// whole one, and the next login would fail).
#[tokio::test]
async fn a_too_long_new_password_is_refused_not_cut_short() {
    let school = school().await;
    let browser = browser();
    let page = school.first_connection_page(&browser, "marc.baillet").await;
    assert!(!page.contains("maxlength=\"14\""), "{page}");
    let long = "Cartable2026Cartable";
    let refused = school
        .submit_first_connection(&browser, &page, &guardian_fields("03/09/2012", long, long))
        .await;
    assert_eq!(refused.status(), 400);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains(&fr("8 à 14 caractères"))
    );
}

/// « Annuler » on the first connection ends the letter's step in this
/// browser (no one after goes on with it) and goes back to the service's
/// login form; the account stays as the letter left it.
#[tokio::test]
async fn cancelling_the_first_connection_ends_it_and_returns_to_the_login_form() {
    let school = school().await;
    let browser = browser();
    let page = school.first_connection_page(&browser, "marc.baillet").await;
    assert!(page.contains("Annuler"));
    let cancelled = school
        .submit_first_connection(
            &browser,
            &page,
            &[("cancel", "1"), ("birthdate", "03/09/2012")],
        )
        .await;
    assert_eq!(cancelled.status(), 303);
    let login = location(&cancelled);
    assert!(login.starts_with("/login?request="), "{login}");
    let form = page_text(&browser, &school.app.url(&login)).await;
    assert!(form.contains("Votre mot de passe"));

    let after = browser
        .get(school.app.url("/premiere-connexion"))
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 400, "the step is over");
    let refused = school
        .submit_first_connection(
            &browser,
            &page,
            &guardian_fields("03/09/2012", NEW_PASSWORD, NEW_PASSWORD),
        )
        .await;
    assert_eq!(refused.status(), 400);
    assert_eq!(
        school.app.account_named("marc.baillet").await.state,
        clef::accounts::AccountState::Provisional
    );

    // The letter still opens the step again.
    school.activate_marc(&browser).await;
}

/// Logging out (the header's « Se déconnecter », a service's logout) also
/// ends a first connection left open in the browser.
#[tokio::test]
async fn logging_out_ends_a_first_connection_left_open() {
    let school = school().await;
    let browser = browser();
    school.first_connection_page(&browser, "marc.baillet").await;
    let out = browser.get(school.app.url("/logout")).send().await.unwrap();
    assert_eq!(out.status(), 200);
    let after = browser
        .get(school.app.url("/premiere-connexion"))
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 400, "the step is over");
}

#[tokio::test]
async fn hostile_first_connection_and_profile_fields_are_refused_and_change_nothing() {
    let school = school().await;
    let browser = browser();
    let page = school.first_connection_page(&browser, "marc.baillet").await;
    let csrf = input_value(&page, "csrf").unwrap();
    let good = guardian_fields("03/09/2012", NEW_PASSWORD, NEW_PASSWORD);
    for field in [
        "birthdate",
        "password",
        "password_confirmation",
        "email",
        "email_confirmation",
    ] {
        for (what, value) in [
            ("non-UTF-8", "%FF%FE"),
            ("NUL", "a%00b"),
            ("newline", "a%0Ab"),
            ("too long", &"a".repeat(5000)),
            ("empty", ""),
        ] {
            let mut body = format!("csrf={csrf}");
            for (name, v) in &good {
                let v = if *name == field {
                    value.to_owned()
                } else {
                    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
                };
                body.push_str(&format!("&{name}={v}"));
            }
            let response = browser
                .post(school.app.url("/premiere-connexion"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 400, "{field} {what}");
            let html = response.text().await.unwrap();
            assert!(html.contains("lang=\"fr\""), "{field} {what}");
        }
    }
    let marc = school.app.account_named("marc.baillet").await;
    assert_eq!(
        marc.state,
        clef::accounts::AccountState::Provisional,
        "nothing was written"
    );
    assert!(marc.provisional_password.is_some());

    // A confirmation token that is not one.
    for bogus in ["%FF", "a%00", "x", &"a".repeat(5000)] {
        let response = browser
            .get(school.app.url(&format!("/confirmation?jeton={bogus}")))
            .send()
            .await
            .unwrap();
        assert!(matches!(response.status().as_u16(), 400 | 410), "{bogus}");
    }
}

/// A first connection with several fields wrong (confirmations included)
/// says all of them at once, each field marked and described by its own message, the first focused;
/// the birth date, a secret, is not tried (no attempt counted).
#[tokio::test]
async fn a_first_connection_tells_every_field_to_correct_at_once() {
    let school = school().await;
    let browser = browser();
    let page = school.first_connection_page(&browser, "marc.baillet").await;
    let csrf = input_value(&page, "csrf").unwrap();
    let response = browser
        .post(school.app.url("/premiere-connexion"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("birthdate", "01/01/2001"),
            ("password", "court"),
            ("password_confirmation", "cour"),
            ("email", "pas-une-adresse"),
            ("email_confirmation", "pas-une-adress"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let html = response.text().await.unwrap();
    assert!(
        html.contains("<title>Erreur — Première connexion"),
        "{html}"
    );
    let input = |id: &str| {
        html.split("<input")
            .find(|input| input.contains(&format!(r#"id="{id}""#)))
            .unwrap()
            .split('>')
            .next()
            .unwrap()
            .to_owned()
    };
    let password = input("password");
    assert!(
        password.contains(r#"aria-invalid="true" autofocus aria-describedby="erreur-password""#),
        "{password}"
    );
    let email = input("email");
    assert!(
        email.contains(r#"aria-invalid="true" aria-describedby="erreur-email email-hint""#),
        "{email}"
    );
    assert!(
        !input("birthdate").contains("aria-invalid"),
        "the birth date is not tried"
    );
    // Mistyped confirmations are told with the rest, not after them: each in the list
    // above the form, a link to its field, and again beside the field.
    for field in [
        "password",
        "password_confirmation",
        "email",
        "email_confirmation",
    ] {
        assert!(
            html.contains(&format!(r##"<li><a href="#{field}">"##)),
            "{field}: {html}"
        );
        let beside = format!(r#"<p class="field-error" id="erreur-{field}">"#);
        let (_, after) = html.split_once(&beside).expect(&beside);
        let next_input = after.split("<input").nth(1).unwrap();
        assert!(
            next_input.starts_with(&format!(
                r#" type="{}" id="{field}""#,
                if field.starts_with("email") {
                    "email"
                } else {
                    "password"
                }
            )),
            "{field}: its message comes just before it: {next_input}"
        );
    }
    assert!(!html.contains(r#"id="erreur-birthdate""#), "{html}");
    assert_eq!(
        school.app.account_named("marc.baillet").await.state,
        clef::accounts::AccountState::Provisional
    );
    // A birth date that is no date says why: no such day, or how to write it.
    for (typed, why) in [
        ("31/02/2013", "ce jour n&#x27;existe pas"),
        ("le 3 mars", "écrivez-la jj&#x2f;mm&#x2f;aaaa"),
    ] {
        let fields = guardian_fields(typed, NEW_PASSWORD, NEW_PASSWORD);
        let response = school
            .submit_first_connection(&browser, &page, &fields)
            .await;
        assert_eq!(response.status(), 400);
        let html = response.text().await.unwrap();
        assert!(html.contains(why), "{typed}: {html}");
    }
}

/// A correction of the address on the unconfirmed screen that races a click
/// on the confirmation link (the screen read the account before the click):
/// the confirmed address stays, the correction is refused.
#[tokio::test]
async fn a_correction_racing_a_confirmation_leaves_the_confirmed_address() {
    let app = spawn_app().await;
    app.family().await;
    let confirmed = app.account_named("claire.martin").await;
    let mut read_before = confirmed.clone();
    read_before.state = clef::accounts::AccountState::PendingEmail;
    let email = clef::domain::EmailAddress::parse("autre@example.org").unwrap();
    let corrected =
        clef::accounts::activation::correct_address(&app.app, &read_before, &email, None, None)
            .await;
    assert!(corrected.is_err());
    let after = app.account_named("claire.martin").await;
    assert_eq!(after.email, confirmed.email);
    assert!(after.email_verified_at.is_some());
    assert!(!app.outbox().iter().any(|m| m.to == "autre@example.org"));
}

/// A letter's QR code leads to its first connection; a mistyped letter
/// password keeps that page's wording (it became the sign-in's: « Votre mot
/// de passe »), and its language link stays on it.
#[tokio::test]
async fn a_mistyped_letter_password_stays_on_the_first_connection() {
    let school = school().await;
    let browser = browser();
    let page = page_text(
        &browser,
        &school.app.url("/activation?identifiant=marc.baillet"),
    )
    .await;
    assert!(page.contains("<h1>Première connexion</h1>"), "{page}");
    let wrong = submit_login(&school.app, &browser, &page, "marc.baillet", "PASBON12").await;
    assert_eq!(wrong.status(), 401);
    let wrong = wrong.text().await.unwrap();
    assert!(wrong.contains("<h1>Première connexion</h1>"), "{wrong}");
    assert!(wrong.contains("Mot de passe provisoire (sur votre courrier)"));
    assert!(
        language_link(&wrong).ends_with("next=%2Factivation%3Fidentifiant%3Dmarc.baillet"),
        "{}",
        language_link(&wrong)
    );
    // The right one goes on to the letter's step.
    let password = school.letter_password("marc.baillet").await;
    let right = submit_login(&school.app, &browser, &wrong, "marc.baillet", &password).await;
    assert_eq!(location(&right), "/premiere-connexion");
}

/// The first connection's language link is a button of its form: the page
/// comes back in English with the birth date and addresses typed, the
/// passwords never written back into a page, nothing activated; the choice
/// is kept for the pages after.
#[tokio::test]
async fn switching_language_on_the_first_connection_keeps_what_was_typed() {
    let school = school().await;
    let browser = browser();
    let page = school.first_connection_page(&browser, "marc.baillet").await;
    assert!(
        page.contains("form=\"premiere-connexion\" name=\"langue\" value=\"en\""),
        "{page}"
    );
    let mut fields = guardian_fields("03/09/2012", NEW_PASSWORD, NEW_PASSWORD);
    fields.push(("langue", "en"));
    let switched = school
        .submit_first_connection(&browser, &page, &fields)
        .await;
    assert_eq!(switched.status(), 200);
    let english = switched.text().await.unwrap();
    assert!(english.contains("<html lang=\"en\">"), "{english}");
    assert!(english.contains("<h1>First sign-in</h1>"), "{english}");
    assert_eq!(
        input_value(&english, "birthdate").as_deref(),
        Some("03/09/2012")
    );
    assert_eq!(
        input_value(&english, "email_confirmation").as_deref(),
        Some("marc@example.org")
    );
    assert!(!english.contains(NEW_PASSWORD), "no password written back");
    assert!(english.contains("name=\"langue\" value=\"fr\""), "and back");
    let marc = school.app.account_named("marc.baillet").await;
    assert_eq!(marc.state, clef::accounts::AccountState::Provisional);
    let again = page_text(&browser, &school.app.url("/premiere-connexion")).await;
    assert!(again.contains("<h1>First sign-in</h1>"), "{again}");
}

/// A first connection made in English is remembered as the language to
/// write to the person in (a grouping or the school's action mails them
/// later), and its confirmation link opens in English in a French browser.
#[tokio::test]
async fn a_first_connection_in_english_is_remembered_and_its_link_opens_in_english() {
    let school = school().await;
    let browser = browser();
    browser
        .get(school.app.url("/langue?lang=en&next=/"))
        .send()
        .await
        .unwrap();
    school.activate_marc(&browser).await;
    let marc = school.app.account_named("marc.baillet").await;
    assert_eq!(
        clef::accounts::store::locale_of(&school.app.app.db, &marc.id)
            .await
            .unwrap(),
        Some(clef::domain::Locale::En)
    );
    let mail = school.app.last_mail_to("marc@example.org");
    let link = mail.link(&school.app.url("/confirmation?jeton="));
    assert!(link.ends_with("&lang=en"), "{link}");
    let french = crate::helpers::browser();
    let page = french
        .get(&link)
        .header("accept-language", "fr-FR")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("<html lang=\"en\">"), "{page}");
}
