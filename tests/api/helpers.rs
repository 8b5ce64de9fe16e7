//! `spawn_app()`: Clef in-process on a free port, with a fresh database (SQLite,
//! or PostgreSQL when `CLEF_TEST_DATABASE_URL` is set), a fresh short-lived
//! store (in-process, or Redis when `CLEF_TEST_REDIS_URL` is set) and a clock
//! the test can move.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use clef::accounts::store::{self as accounts, NewAccount};
use clef::accounts::{Account, AccountKind, AccountState};
use clef::app::Clef;
use clef::clock::ShiftedClock;
use clef::config::Config;
use clef::domain::{
    BirthDate, ClassName, EmailAddress, Identifier, PersonName, Rank, RedirectUri, Uai,
};
use clef::oidc::clients::{self, NewClient};
use secrecy::{ExposeSecret, SecretString};

pub const PASSWORD: &str = "Soleil2024";
pub const REDIRECT_URI: &str = "http://127.0.0.1:9999/callback";
/// Registered for every test client as its post-logout redirect URI.
pub const POST_LOGOUT_URI: &str = "http://127.0.0.1:9999/logged-out";

pub struct TestApp {
    pub address: String,
    pub app: Arc<Clef>,
    pub clock: Arc<ShiftedClock>,
    /// The data and outbox folders, removed when the test ends.
    #[allow(dead_code)] // held for its Drop; tests may also write files there
    pub data: tempfile::TempDir,
}

/// One key pair for the whole test binary: RSA generation is the slow part of start-up.
fn shared_keys_dir() -> PathBuf {
    static KEYS: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = KEYS.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        clef::keys::KeyRing::load_or_generate(dir.path(), 0).expect("test key");
        dir
    });
    dir.path().to_owned()
}

/// A fresh PostgreSQL database on the server named by `CLEF_TEST_DATABASE_URL`.
async fn fresh_postgres(server_url: &str) -> String {
    let name = format!("clef_test_{}", uuid::Uuid::new_v4().simple());
    let admin = clef::storage::connect(server_url)
        .await
        .expect("CLEF_TEST_DATABASE_URL must reach PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .expect("create database");
    admin.close().await;
    let mut url = url::Url::parse(server_url).expect("postgres URL");
    url.set_path(&name);
    url.to_string()
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// A Clef behind a reverse proxy on loopback: the client address is read
/// from `X-Forwarded-For` when the peer is 127.0.0.1.
pub async fn spawn_app_behind_proxy() -> TestApp {
    spawn_app_with(|config| {
        config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await
}

/// `spawn_app` with a configuration tweak (SMTP server, password rule…).
pub async fn spawn_app_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    // Warnings and errors (an internal error's cause) in the output of the
    // test that met them, shown when it fails.
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .try_init();
    let data = tempfile::tempdir().expect("temp dir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = format!("http://{}", listener.local_addr().expect("address"));
    let mut config = Config {
        issuer: url::Url::parse(&address).expect("issuer"),
        data_dir: data.path().to_owned(),
        keys_dir: shared_keys_dir(),
        ..Config::default()
    };
    if let Ok(server) = std::env::var("CLEF_TEST_DATABASE_URL") {
        config.database_url = Some(SecretString::from(fresh_postgres(&server).await));
    }
    if let Ok(redis) = std::env::var("CLEF_TEST_REDIS_URL") {
        config.redis_url = Some(SecretString::from(redis));
        config.redis_prefix = format!("clef-test-{}:", uuid::Uuid::new_v4().simple());
    }
    configure(&mut config);
    let clock = Arc::new(ShiftedClock::default());
    let app = Clef::start(config, clock.clone())
        .await
        .expect("clef starts");
    tokio::spawn(clef::web::serve(
        app.clone(),
        listener,
        std::future::pending(),
    ));
    TestApp {
        address,
        app,
        clock,
        data,
    }
}

pub struct Family {
    pub guardian: Account,
    pub children: Vec<Account>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn establishment(&self, uai: &str, name: &str) -> Uai {
        let uai = Uai::parse(uai).unwrap();
        if accounts::establishment_by_uai(&self.app.db, &uai)
            .await
            .unwrap()
            .is_none()
        {
            accounts::create_establishment(
                &self.app.db,
                &uai,
                &clef::accounts::EstablishmentChange::named(name),
                self.app.now(),
            )
            .await
            .unwrap();
        }
        uai
    }

    pub async fn account(
        &self,
        identifier: &str,
        kind: AccountKind,
        school: Option<(&Uai, &str)>,
        birthdate: Option<&str>,
    ) -> Account {
        let (given, family) = identifier.split_once('.').unwrap_or((identifier, "Test"));
        let hash = self
            .app
            .passwords
            .hash(&SecretString::from(PASSWORD.to_owned()))
            .await
            .unwrap();
        let new = NewAccount {
            identifier: Identifier::parse(identifier).unwrap(),
            kind,
            state: AccountState::Active,
            given_name: PersonName::parse("prénom", &capitalise(given)).unwrap(),
            family_name: PersonName::parse("nom", &capitalise(family)).unwrap(),
            birthdate: birthdate.map(|b| BirthDate::parse(b).unwrap()),
            email: (kind == AccountKind::Guardian)
                .then(|| EmailAddress::parse(&format!("{identifier}@example.org")).unwrap()),
            email_verified: kind == AccountKind::Guardian,
            establishment: school
                .map(|(uai, class)| (uai.clone(), ClassName::parse(class).unwrap())),
            password_hash: Some(hash),
        };
        accounts::create_account(&self.app.db, new, self.app.now())
            .await
            .unwrap()
    }

    /// A parent (`claire.martin`) with two children in two establishments.
    pub async fn family(&self) -> Family {
        let college = self.establishment("0590001A", "Collège Jean Moulin").await;
        let lycee = self
            .establishment("0590002B", "Lycée Albert Châtelet")
            .await;
        let guardian = self
            .account("claire.martin", AccountKind::Guardian, None, None)
            .await;
        let lea = self
            .account(
                "lea.martin",
                AccountKind::Student,
                Some((&college, "5 B")),
                Some("14/05/2013"),
            )
            .await;
        let hugo = self
            .account(
                "hugo.martin",
                AccountKind::Student,
                Some((&lycee, "2nde 3")),
                Some("2009-02-03"),
            )
            .await;
        for child in [&lea, &hugo] {
            accounts::link_guardian(
                &self.app.db,
                &guardian.id,
                &child.id,
                Rank::new(1).unwrap(),
                self.app.now(),
            )
            .await
            .unwrap();
        }
        Family {
            guardian,
            children: vec![lea, hugo],
        }
    }

    /// Registers a first-party client; returns its id and secret (`None` for a public client).
    pub async fn client(&self, public: bool) -> (String, Option<String>) {
        self.client_with(|new| new.is_public = public).await
    }

    /// Registers a confidential client that is not the academy's: it needs consent.
    pub async fn third_party_client(&self) -> (String, Option<String>) {
        self.client_with(|new| {
            new.name = "Cahier de textes Exemple".into();
            new.is_first_party = false;
        })
        .await
    }

    /// Registers a confidential first-party client (the test ENT), as `configure` changes it.
    pub async fn client_with(
        &self,
        configure: impl FnOnce(&mut NewClient),
    ) -> (String, Option<String>) {
        let mut new = NewClient {
            name: "ENT du test".into(),
            redirect_uris: vec![RedirectUri::parse(REDIRECT_URI).unwrap()],
            post_logout_redirect_uris: vec![RedirectUri::parse(POST_LOGOUT_URI).unwrap()],
            is_public: false,
            is_first_party: true,
            ..NewClient::default()
        };
        configure(&mut new);
        let (client, secret) = clients::create(&self.app.db, new, self.app.now())
            .await
            .unwrap();
        (client.id, secret.map(|s| s.expose_secret().to_owned()))
    }

    /// Counts rows, to show that refused input wrote nothing.
    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
            .fetch_one(&self.app.db)
            .await
            .unwrap()
    }
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// A browser: keeps cookies, does not follow redirects (tests read them).
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(redirects())
        .build()
        .unwrap()
}

/// The test browsers' redirects: a form whose request is done (a change on
/// « Mon compte », a grouping, a recovery request, an address confirmed)
/// answers with a redirect to the page that tells it, followed as a browser
/// does; every other redirect is the test's to read.
pub fn redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let from = attempt.previous().last().map_or("", |url| url.path());
        let to = attempt.url().path();
        let told = match from {
            "/identifiant-oublie" => to == "/identifiant-oublie/envoye",
            "/confirmation" => to == "/confirmation/faite",
            "/mot-de-passe-oublie/envoyer" => to.starts_with("/mot-de-passe-oublie/"),
            from if from.starts_with("/compte/") => {
                ["/compte", "/compte/regroupement/effectue"].contains(&to)
            }
            _ => false,
        };
        match told {
            true => attempt.follow(),
            false => attempt.stop(),
        }
    })
}

/// The address of a page's language link (« English » / « Français »).
pub fn language_link(html: &str) -> String {
    html.split("<a class=\"lang\" href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a language link")
        .replace("&amp;", "&")
        .replace("&#x2f;", "/")
}

/// A French sentence as pages and mails print it: the spaces before « : ; ! ? »
/// and inside « » are unbreakable (`tests/api/i18n.rs` checks them one by one).
pub fn fr(text: &str) -> String {
    clef::domain::typography::french_text(text)
}

/// The HTML of the page at `url`.
pub async fn page_text(browser: &reqwest::Client, url: &str) -> String {
    browser.get(url).send().await.unwrap().text().await.unwrap()
}

/// [`page_text`] as a browser that prefers English gets it.
pub async fn english_page_text(browser: &reqwest::Client, url: &str) -> String {
    browser
        .get(url)
        .header("accept-language", "en")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Changes the signed-in account's password from « Mon compte », `PASSWORD`
/// to `new`: the answer (its redirect followed, see [`redirects`]).
pub async fn change_password(
    app: &TestApp,
    browser: &reqwest::Client,
    new: &str,
) -> reqwest::Response {
    let account = page_text(browser, &app.url("/compte")).await;
    let changed = browser
        .post(app.url("/compte/mot-de-passe"))
        .form(&[
            ("csrf", input_value(&account, "csrf").unwrap().as_str()),
            ("current_password", PASSWORD),
            ("new_password", new),
            ("new_password_confirmation", new),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
    changed
}

/// « Mon compte » as `browser` gets it (a redirect to /login without a session).
pub async fn account_page(app: &TestApp, browser: &reqwest::Client) -> reqwest::Response {
    browser.get(app.url("/compte")).send().await.unwrap()
}

/// `browser`'s session is over: « Mon compte » sends it to the login form and a
/// silent authorization for `client_id` answers `login_required`.
pub async fn assert_signed_out(app: &TestApp, browser: &reqwest::Client, client_id: &str) {
    let ended = account_page(app, browser).await;
    assert_eq!(ended.status(), 303);
    assert_eq!(location(&ended), "/login");
    let silent = browser
        .get(authorize_url(app, client_id, &[("prompt", "none")]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        location_param(&silent, "error").as_deref(),
        Some("login_required")
    );
}

/// The value of a hidden (or any) input named `name` in a page.
pub fn input_value(html: &str, name: &str) -> Option<String> {
    let start = html.find(&format!("name=\"{name}\""))?;
    let tag_start = html[..start].rfind('<')?;
    let tag_end = start + html[start..].find('>')?;
    let tag = &html[tag_start..tag_end];
    let value = tag.split("value=\"").nth(1)?.split('"').next()?;
    Some(
        value
            .replace("&amp;", "&")
            .replace("&#x2f;", "/")
            .replace("&#x27;", "'")
            .replace("&quot;", "\""),
    )
}

/// The claims of a JWT (an ID token, a logout token), unverified.
pub fn jwt_claims(jwt: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).expect("a JWT's payload");
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&payload).expect("JSON claims")
}

/// A query parameter of a redirect's Location.
pub fn location_param(response: &reqwest::Response, name: &str) -> Option<String> {
    let location = response.headers().get("location")?.to_str().ok()?;
    let url = url::Url::parse(location).ok()?;
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// Submits the login form found in `page` with these credentials.
pub async fn submit_login(
    app: &TestApp,
    browser: &reqwest::Client,
    page: &str,
    identifier: &str,
    password: &str,
) -> reqwest::Response {
    let mut form = vec![
        ("csrf", input_value(page, "csrf").expect("csrf field")),
        ("identifier", identifier.to_owned()),
        ("password", password.to_owned()),
    ];
    // The form's hidden fields, as a browser sends them.
    for hidden in ["request", "activation"] {
        if let Some(value) = input_value(page, hidden) {
            form.push((hidden, value));
        }
    }
    browser
        .post(app.url("/login"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// Follows an authorization request through the login form to the redirect
/// back to the client; returns that redirect.
pub async fn authorize_and_login(
    app: &TestApp,
    browser: &reqwest::Client,
    authorize_url: &str,
    identifier: &str,
) -> reqwest::Response {
    let page = browser.get(authorize_url).send().await.unwrap();
    assert_eq!(page.status(), 200, "the login page is shown");
    let page = page.text().await.unwrap();
    let response = submit_login(app, browser, &page, identifier, PASSWORD).await;
    assert_eq!(
        response.status(),
        303,
        "a successful login redirects back to the client"
    );
    response
}

/// Signs Claire in at `url` in `browser` (silently when the browser has a
/// session), accepts the consent page when it is shown; returns the code.
pub async fn code_for(app: &TestApp, browser: &reqwest::Client, url: &str) -> String {
    let first = browser.get(url).send().await.unwrap();
    let mut back = if first.status() == 200 {
        let page = first.text().await.unwrap();
        submit_login(app, browser, &page, "claire.martin", PASSWORD).await
    } else {
        first
    };
    if location(&back).starts_with("/consentement") {
        assert!(
            location_param(&back, "code").is_none(),
            "no code before consent"
        );
        let consent = page_text(browser, &app.url(&location(&back))).await;
        back = answer_consent(app, browser, &consent, "accept").await;
    }
    location_param(&back, "code")
        .unwrap_or_else(|| panic!("a code, got {} {}", back.status(), location(&back)))
}

/// Answers the consent page `page` with `decision` (`accept` or `refuse`).
pub async fn answer_consent(
    app: &TestApp,
    browser: &reqwest::Client,
    page: &str,
    decision: &str,
) -> reqwest::Response {
    browser
        .post(app.url("/consentement"))
        .form(&[
            ("csrf", input_value(page, "csrf").unwrap().as_str()),
            ("request", input_value(page, "request").unwrap().as_str()),
            // The children the page showed, as a browser posts them back.
            ("enfants", input_value(page, "enfants").unwrap().as_str()),
            ("decision", decision),
        ])
        .send()
        .await
        .unwrap()
}

/// A PKCE pair (RFC 7636): verifier and S256 challenge.
pub fn pkce() -> (String, String) {
    let verifier = clef::secret::random_token(32);
    let challenge = clef::secret::s256(&verifier);
    (verifier, challenge)
}

/// An authorization URL for the test client.
/// An extra parameter replaces the default of the same name (`scope`…).
pub fn authorize_url(app: &TestApp, client_id: &str, extra: &[(&str, &str)]) -> String {
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT_URI),
        ("scope", "openid profile email children school"),
        ("state", "st-123"),
        ("nonce", "n-456"),
    ];
    for (name, value) in extra {
        match params.iter_mut().find(|(n, _)| n == name) {
            Some(param) => param.1 = value,
            None => params.push((name, value)),
        }
    }
    let mut url = url::Url::parse(&app.url("/authorize")).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    url.into()
}

/// A refresh_token grant of `token` by the confidential `client` (client_secret_post).
pub async fn refresh_grant(
    app: &TestApp,
    client: &(String, Option<String>),
    token: &str,
) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", client.0.as_str()),
            ("client_secret", client.1.as_deref().unwrap()),
        ])
        .send()
        .await
        .unwrap()
}

/// How many of `takers` concurrent `take`s of `key` got its value.
pub async fn concurrent_takers_served(
    store: &clef::storage::ShortLived,
    key: &str,
    takers: usize,
) -> usize {
    let takers: Vec<_> = (0..takers)
        .map(|_| {
            let (store, key) = (store.clone(), key.to_owned());
            tokio::spawn(async move { store.take(&key).await.unwrap() })
        })
        .collect();
    let mut served = 0;
    for taker in takers {
        served += usize::from(taker.await.unwrap().is_some());
    }
    served
}

/// The statuses of `attempts` as they end; each 429 says when to come back
/// (Retry-After).
pub async fn statuses_of(mut attempts: tokio::task::JoinSet<reqwest::Response>) -> Vec<u16> {
    let mut statuses = Vec::new();
    while let Some(response) = attempts.join_next().await {
        let response = response.unwrap();
        if response.status() == 429 {
            assert!(response.headers().contains_key("retry-after"));
        }
        statuses.push(response.status().as_u16());
    }
    statuses
}

async fn userinfo_response(app: &TestApp, access_token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(app.url("/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
}

/// The status UserInfo answers to `access_token`.
pub async fn userinfo_status(app: &TestApp, access_token: &str) -> u16 {
    userinfo_response(app, access_token).await.status().as_u16()
}

/// What `/userinfo` answers for `access_token`.
pub async fn userinfo(app: &TestApp, access_token: &str) -> serde_json::Value {
    userinfo_response(app, access_token)
        .await
        .json()
        .await
        .unwrap()
}

/// Exchanges a code at the token endpoint with client_secret_post.
pub async fn exchange(
    app: &TestApp,
    client: &(String, Option<String>),
    code: &str,
    verifier: Option<&str>,
) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", code.to_owned()),
        ("redirect_uri", REDIRECT_URI.to_owned()),
        ("client_id", client.0.clone()),
    ];
    if let Some(secret) = &client.1 {
        form.push(("client_secret", secret.clone()));
    }
    if let Some(verifier) = verifier {
        form.push(("code_verifier", verifier.to_owned()));
    }
    reqwest::Client::new()
        .post(app.url("/token"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// The token endpoint's JSON answer to exchanging `code` (without PKCE).
pub async fn exchanged(
    app: &TestApp,
    client: &(String, Option<String>),
    code: &str,
) -> serde_json::Value {
    exchange(app, client, code, None)
        .await
        .json()
        .await
        .unwrap()
}

/// A received mail, decoded.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// Its `Content-Language`, if it says.
    pub language: Option<String>,
}

impl ReceivedMail {
    pub fn parse(raw: &[u8]) -> Self {
        let message = mail_parser::MessageParser::default()
            .parse(raw)
            .expect("a MIME message");
        let to = message
            .to()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .unwrap_or_default()
            .to_owned();
        Self {
            to,
            language: message
                .header_raw("Content-Language")
                .map(|v| v.trim().to_owned()),
            subject: message.subject().unwrap_or_default().to_owned(),
            text: message
                .body_text(0)
                .map(|t| t.into_owned())
                .unwrap_or_default(),
            html: message
                .body_html(0)
                .map(|t| t.into_owned())
                .unwrap_or_default(),
        }
    }

    /// The first link of the mail that starts with `prefix`.
    pub fn link(&self, prefix: &str) -> String {
        let start = self
            .text
            .find(prefix)
            .unwrap_or_else(|| panic!("no link {prefix} in {}", self.text));
        self.text[start..]
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned()
    }
}

/// Mail read back from a folder of `.eml` files (the outbox) or a Maildir,
/// oldest first.
pub fn read_mail_dir(dir: &std::path::Path) -> Vec<ReceivedMail> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
        .filter_map(|e| e.ok())
        // Hidden files are messages still being written.
        .filter(|e| e.path().is_file() && !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| (e.metadata().unwrap().modified().unwrap(), e.path()))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|(_, path)| ReceivedMail::parse(&std::fs::read(path).unwrap()))
        .collect()
}

impl TestApp {
    /// Mail written to the outbox folder (no SMTP configured).
    pub fn outbox(&self) -> Vec<ReceivedMail> {
        read_mail_dir(&self.app.config.outbox_dir().join("mail"))
    }

    /// The hourly expiry job, run now with the configured validity (3 months)
    /// and time zone.
    pub async fn expire_letters(&self) -> clef::provisioning::expiry::ExpiryReport {
        clef::provisioning::expiry::expire_letters(
            &self.app.db,
            self.app.now(),
            self.app.config.letter_validity_months,
            &self.app.config.zone(),
        )
        .await
        .unwrap()
    }

    /// Waits for the mail (sent in the background) to `to` whose subject contains `subject`.
    pub async fn mail_to(&self, to: &str, subject: &str) -> ReceivedMail {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let Some(mail) = self
                .outbox()
                .into_iter()
                .rev()
                .find(|m| m.to == to && m.subject.contains(subject))
            {
                return mail;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no mail to {to} about {subject:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// The last mail sent to `to`.
    pub fn last_mail_to(&self, to: &str) -> ReceivedMail {
        self.outbox()
            .into_iter()
            .rev()
            .find(|m| m.to == to)
            .unwrap_or_else(|| panic!("no mail to {to}"))
    }

    pub async fn import(
        &self,
        uai: &str,
        csv: &[u8],
    ) -> Result<clef::provisioning::import::ImportReport, clef::provisioning::import::ImportError>
    {
        self.import_with(uai, csv, false).await
    }

    pub async fn import_with(
        &self,
        uai: &str,
        csv: &[u8],
        dry_run: bool,
    ) -> Result<clef::provisioning::import::ImportReport, clef::provisioning::import::ImportError>
    {
        let uai = Uai::parse(uai).unwrap();
        clef::provisioning::import::import(
            &self.app.db,
            &self.app.letters,
            &uai,
            csv,
            self.app.now(),
            dry_run,
            clef::provisioning::import::BadRows::Refuse,
        )
        .await
    }

    /// The letters of an establishment as the CSV export gives them:
    /// identifier → (provisional password, recipient, type).
    pub async fn letters(&self, uai: &str) -> Vec<clef::provisioning::letters::Letter> {
        let uai = Uai::parse(uai).unwrap();
        let selection = clef::provisioning::letters::Selection::default();
        clef::provisioning::letters::select_as_configured(&self.app, &uai, &selection)
            .await
            .unwrap()
    }

    pub async fn account_named(&self, identifier: &str) -> Account {
        accounts::account_by_identifier(&self.app.db, &Identifier::parse(identifier).unwrap())
            .await
            .unwrap()
            .expect("account")
    }
}

/// A real SMTP server on a free port, in the test's runtime: it speaks RFC 5321 to
/// lettre (EHLO, MAIL, RCPT, DATA with dot-unstuffing, RSET, NOOP, QUIT) and keeps
/// every message it accepts.
pub struct SmtpServer {
    pub port: u16,
    messages: Arc<std::sync::Mutex<Vec<SmtpMessage>>>,
    listener: tokio::task::JoinHandle<()>,
}

/// One message as the SMTP server accepted it: the envelope and the RFC 5322 bytes.
#[derive(Clone, Debug)]
pub struct SmtpMessage {
    pub from: String,
    pub to: Vec<String>,
    pub data: Vec<u8>,
}

/// Advertised in EHLO and enforced on DATA.
const SMTP_MAX_SIZE: usize = 1 << 20;

impl SmtpServer {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let messages = Arc::new(std::sync::Mutex::new(Vec::new()));
        let store = Arc::clone(&messages);
        let listener = tokio::spawn(async move {
            // Sessions live in the set, so stopping the listener ends them too.
            let mut sessions = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                sessions.spawn(smtp_session(stream, Arc::clone(&store)));
            }
        });
        Self {
            port,
            messages,
            listener,
        }
    }

    /// Every message accepted so far, in order of arrival.
    pub fn messages(&self) -> Vec<SmtpMessage> {
        self.messages.lock().unwrap().clone()
    }

    pub fn received(&self) -> Vec<ReceivedMail> {
        self.messages()
            .iter()
            .map(|m| ReceivedMail::parse(&m.data))
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// One SMTP connection, command by command; a message is stored before its 250.
async fn smtp_session(
    stream: tokio::net::TcpStream,
    store: Arc<std::sync::Mutex<Vec<SmtpMessage>>>,
) -> std::io::Result<()> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

    let (read, mut write) = stream.into_split();
    let mut read = tokio::io::BufReader::new(read);
    write
        .write_all(b"220 localhost ESMTP Clef test server\r\n")
        .await?;
    let mut greeted = false;
    // The transaction under way: MAIL FROM, then the RCPT TO addresses.
    let mut transaction: Option<(String, Vec<String>)> = None;
    let mut line = Vec::new();
    loop {
        line.clear();
        if read.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let command = String::from_utf8_lossy(&line);
        let command = command.trim_end_matches(['\r', '\n']);
        let (verb, argument) = command.split_once(' ').unwrap_or((command, ""));
        let reply = match verb.to_ascii_uppercase().as_str() {
            "EHLO" => {
                greeted = true;
                transaction = None;
                format!("250-localhost\r\n250-8BITMIME\r\n250 SIZE {SMTP_MAX_SIZE}")
            }
            "HELO" => {
                greeted = true;
                transaction = None;
                "250 localhost".into()
            }
            "MAIL" if !greeted => "503 5.5.1 EHLO first".into(),
            "MAIL" => match smtp_path(argument, "FROM:") {
                Some(from) => {
                    transaction = Some((from, Vec::new()));
                    "250 2.1.0 OK".into()
                }
                None => "501 5.5.4 Syntax: MAIL FROM:<address>".into(),
            },
            "RCPT" => match (&mut transaction, smtp_path(argument, "TO:")) {
                (None, _) => "503 5.5.1 MAIL first".into(),
                (Some(_), None) => "501 5.5.4 Syntax: RCPT TO:<address>".into(),
                (Some((_, to)), Some(address)) => {
                    to.push(address);
                    "250 2.1.5 OK".into()
                }
            },
            "DATA" => match transaction.take() {
                Some((from, to)) if !to.is_empty() => {
                    write
                        .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                        .await?;
                    let mut data = Vec::new();
                    loop {
                        line.clear();
                        if read.read_until(b'\n', &mut line).await? == 0 {
                            return Ok(());
                        }
                        if line == b".\r\n" {
                            break;
                        }
                        // RFC 5321 §4.5.2: a line starting with a dot had one added.
                        let unstuffed = line.strip_prefix(b".").unwrap_or(&line);
                        data.extend_from_slice(unstuffed);
                    }
                    if data.len() > SMTP_MAX_SIZE {
                        "552 5.3.4 Message too big".into()
                    } else {
                        store.lock().unwrap().push(SmtpMessage { from, to, data });
                        "250 2.0.0 OK: queued".into()
                    }
                }
                other => {
                    transaction = other;
                    "503 5.5.1 RCPT first".into()
                }
            },
            "RSET" => {
                transaction = None;
                "250 2.0.0 OK".into()
            }
            "NOOP" => "250 2.0.0 OK".into(),
            "QUIT" => {
                write.write_all(b"221 2.0.0 Bye\r\n").await?;
                return Ok(());
            }
            _ => "500 5.5.2 Command not recognized".into(),
        };
        write.write_all(format!("{reply}\r\n").as_bytes()).await?;
    }
}

/// The address of `FROM:<a@b> BODY=8BITMIME` or `TO:<a@b>`; `<>` is the null sender.
fn smtp_path(argument: &str, keyword: &str) -> Option<String> {
    let head = argument.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = argument[keyword.len()..].trim_start().strip_prefix('<')?;
    let (address, _parameters) = rest.split_once('>')?;
    Some(address.to_owned())
}

/// A loopback port nothing listens on (for a process the test starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `n` distinct free ports: each listener is held until all are picked (the
/// system may hand a port it just freed out again, to a second `free_port`).
pub fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    held.iter()
        .map(|listener| listener.local_addr().unwrap().port())
        .collect()
}

/// A school file as spreadsheets export it, with `pupils` pupils and two
/// guardians each (the first with an address).
pub fn school_file(pupils: usize) -> String {
    let mut csv = String::from(
        "N° élève;Nom;Prénom;Date de naissance;Classe;Nom responsable 1;Prénom responsable 1;\
         Courriel responsable 1;Nom responsable 2;Prénom responsable 2\n",
    );
    for n in 0..pupils {
        // Names are letters only: the number written in base 26.
        let name: String = (0..4)
            .map(|digit| char::from(b'a' + (n / 26usize.pow(digit) % 26) as u8))
            .collect();
        csv.push_str(&format!(
            "{n};Nom{name};Eleve;01/02/2012;5 A;Nom{name};Pere;pere{n}@example.org;Nom{name};Mere\n"
        ));
    }
    csv
}

/// Uploads `csv` to the import page of `uai` as a browser does (multipart).
pub async fn upload(
    app: &TestApp,
    browser: &reqwest::Client,
    uai: &str,
    csv: Vec<u8>,
) -> (u16, String) {
    let page = page_text(browser, &app.url(&format!("/etablissement/{uai}/import"))).await;
    let form = reqwest::multipart::Form::new()
        .text("csrf", input_value(&page, "csrf").expect("csrf"))
        .part(
            "file",
            reqwest::multipart::Part::bytes(csv)
                .file_name("eleves.csv")
                .mime_str("text/csv")
                .unwrap(),
        );
    let response = browser
        .post(app.url(&format!("/etablissement/{uai}/import")))
        .multipart(form)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}
