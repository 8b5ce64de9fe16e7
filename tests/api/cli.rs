//! The `clef` binary: each test runs it against its own data directory.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::helpers::free_port;

struct Clef {
    data: tempfile::TempDir,
}

impl Clef {
    fn new() -> Self {
        Self {
            data: tempfile::tempdir().unwrap(),
        }
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_clef"));
        command
            .args(args)
            .env("CLEF_DATA_DIR", self.data.path().join("data"))
            .env("CLEF_KEYS_DIR", self.data.path().join("keys"))
            .env_remove("CLEF_DATABASE_URL")
            .env_remove("CLEF_REDIS_URL")
            .current_dir(self.data.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        child.wait_with_output().unwrap()
    }

    fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let output = self.run(args, stdin);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    fn fails(&self, args: &[&str]) -> String {
        let output = self.run(args, None);
        assert!(!output.status.success(), "{args:?} should fail");
        String::from_utf8(output.stderr).unwrap()
    }
}

#[test]
fn operators_create_establishments_accounts_guardianships_and_clients() {
    let clef = Clef::new();
    clef.ok(&["migrate"], None);
    clef.ok(
        &[
            "establishment",
            "create",
            "--uai",
            "0590001A",
            "--name",
            "Collège Jean Moulin",
        ],
        None,
    );
    clef.ok(
        &[
            "account",
            "create",
            "--kind",
            "guardian",
            "--identifier",
            "claire.martin",
            "--given-name",
            "Claire",
            "--family-name",
            "Martin",
            "--email",
            "claire@example.org",
            "--password-stdin",
        ],
        Some("Soleil2024\n"),
    );
    let student = clef.ok(
        &[
            "account",
            "create",
            "--kind",
            "student",
            "--identifier",
            "lea.martin",
            "--given-name",
            "Léa",
            "--family-name",
            "Martin",
            "--birthdate",
            "14/05/2013",
            "--establishment",
            "0590001A",
            "--class",
            "5 B",
        ],
        None,
    );
    let student_id = student.split_whitespace().next().unwrap();
    clef.ok(
        &[
            "guardian",
            "link",
            "--guardian",
            "claire.martin",
            "--student",
            student_id,
            "--rank",
            "1",
        ],
        None,
    );

    let created: Value = serde_json::from_str(&clef.ok(
        &[
            "client",
            "create",
            "--name",
            "ENT",
            "--redirect-uri",
            "https://ent.example/cb",
            "--first-party",
            "--json",
        ],
        None,
    ))
    .unwrap();
    assert!(created["client_id"].as_str().unwrap().starts_with("clef-"));
    assert_eq!(created["client_secret"].as_str().unwrap().len(), 43);
    let public: Value = serde_json::from_str(&clef.ok(
        &[
            "client",
            "create",
            "--name",
            "Appli",
            "--redirect-uri",
            "fr.academie.app:/cb",
            "--public",
            "--json",
        ],
        None,
    ))
    .unwrap();
    assert!(public["client_secret"].is_null());
    let list = clef.ok(&["client", "list"], None);
    assert!(
        list.contains("ENT") && list.contains("Appli") && list.contains("https://ent.example/cb")
    );
    assert!(
        !list.contains(created["client_secret"].as_str().unwrap()),
        "secrets are never listed"
    );
}

#[test]
fn bad_input_on_the_command_line_is_refused_and_writes_nothing() {
    let clef = Clef::new();
    clef.ok(
        &[
            "establishment",
            "create",
            "--uai",
            "0590001A",
            "--name",
            "Collège",
        ],
        None,
    );
    let refusals = [
        vec!["establishment", "create", "--uai", "59001", "--name", "X"],
        vec![
            "establishment",
            "create",
            "--uai",
            "0590001A",
            "--name",
            "Doublon",
        ],
        vec![
            "account",
            "create",
            "--kind",
            "guardian",
            "--identifier",
            "Claire Martin",
            "--given-name",
            "C",
            "--family-name",
            "M",
        ],
        vec![
            "account",
            "create",
            "--kind",
            "guardian",
            "--identifier",
            "c.m",
            "--given-name",
            "",
            "--family-name",
            "M",
        ],
        vec![
            "account",
            "create",
            "--kind",
            "guardian",
            "--identifier",
            "c.m",
            "--given-name",
            "C\u{1b}[31m",
            "--family-name",
            "M",
        ],
        vec![
            "account",
            "create",
            "--kind",
            "student",
            "--identifier",
            "c.m",
            "--given-name",
            "C",
            "--family-name",
            "M",
        ],
        vec![
            "account",
            "create",
            "--kind",
            "student",
            "--identifier",
            "c.m",
            "--given-name",
            "C",
            "--family-name",
            "M",
            "--birthdate",
            "31/02/2013",
            "--establishment",
            "0590001A",
            "--class",
            "5 B",
        ],
        vec![
            "account",
            "create",
            "--kind",
            "guardian",
            "--identifier",
            "c.m",
            "--given-name",
            "C",
            "--family-name",
            "M",
            "--email",
            "pas-une-adresse",
        ],
        vec![
            "client",
            "create",
            "--name",
            "ENT",
            "--redirect-uri",
            "http://ent.example/cb",
        ],
        vec![
            "client",
            "create",
            "--name",
            "ENT",
            "--redirect-uri",
            "https://ent.example/cb#frag",
        ],
        vec![
            "guardian",
            "link",
            "--guardian",
            "personne",
            "--student",
            "personne.bis",
            "--rank",
            "1",
        ],
        vec![
            "guardian",
            "link",
            "--guardian",
            "a",
            "--student",
            "b",
            "--rank",
            "3",
        ],
    ];
    for args in &refusals {
        let stderr = clef.fails(args);
        assert!(!stderr.is_empty(), "{args:?} explains itself");
    }
    let long = "a".repeat(300);
    clef.fails(&[
        "account",
        "create",
        "--kind",
        "staff",
        "--identifier",
        "x.y",
        "--given-name",
        &long,
        "--family-name",
        "M",
    ]);
    // The rule of the pages: `password_min` to `password_max` characters,
    // letters and digits.
    for weak in ["court\n", "abcdefghij\n", "Soleil2024Soleil2024\n"] {
        let output = clef.run(
            &[
                "account",
                "create",
                "--kind",
                "staff",
                "--identifier",
                "x.y",
                "--given-name",
                "X",
                "--family-name",
                "Y",
                "--password-stdin",
            ],
            Some(weak),
        );
        assert!(!output.status.success(), "{weak:?}");
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("chiffres et lettres obligatoires"),
            "{weak:?}"
        );
    }
    assert_eq!(
        clef.ok(&["client", "list"], None),
        "",
        "no client was written"
    );
    // Nothing but the first establishment was written.
    let created = clef.ok(
        &[
            "account",
            "create",
            "--kind",
            "staff",
            "--identifier",
            "c.m",
            "--given-name",
            "C",
            "--family-name",
            "M",
        ],
        None,
    );
    assert!(created.contains("c.m"), "the identifier c.m was still free");
}

#[test]
fn demo_loads_a_family_and_a_client_and_explains_how_to_log_in() {
    let clef = Clef::new();
    let out = clef.ok(&["demo"], None);
    assert!(out.contains("parent.martin") && out.contains("/authorize?") && out.contains("curl"));
    // Running it again reuses the demo accounts and the client's secret.
    let again = clef.ok(&["demo"], None);
    assert_eq!(printed(&again, "Client:"), printed(&out, "Client:"));
    assert_eq!(printed(&again, "Secret:"), printed(&out, "Secret:"));
    // Without the kept secret, the client gets a new one, kept for the next run.
    std::fs::remove_file(clef.data.path().join("data/demo-client-secret")).unwrap();
    let renewed = printed(&clef.ok(&["demo"], None), "Secret:");
    assert_ne!(renewed, printed(&out, "Secret:"));
    assert_eq!(printed(&clef.ok(&["demo"], None), "Secret:"), renewed);
}

/// The demo accounts' password is in the README: behind a public issuer (a
/// production database), `clef demo` and `serve --demo` refuse them unless
/// told it is a shared test server.
#[test]
fn the_demo_is_refused_behind_a_public_issuer_unless_allowed() {
    let clef = Clef::new();
    std::fs::write(
        clef.data.path().join("clef.toml"),
        "issuer = \"https://connexion.ac-exemple.fr\"\n",
    )
    .unwrap();
    let refused = clef.fails(&["demo"]);
    assert!(
        refused.contains("published in the README") && refused.contains("--allow-public"),
        "{refused}"
    );
    let secret_file = clef.data.path().join("data/demo-client-secret");
    assert!(!secret_file.exists(), "nothing loaded");
    clef.fails(&["serve", "--demo"]);
    let out = clef.ok(&["demo", "--allow-public"], None);
    assert!(out.contains("parent.martin"), "{out}");
}

#[test]
fn the_demo_prints_a_shell_command_that_decodes_an_id_token_payload() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    let out = Clef::new().ok(&["demo"], None);
    let decoder = out
        .lines()
        .find(|line| line.contains("| base64 -d"))
        .expect("a decoding command")
        .trim();
    // Payload lengths 0, 1 and 2 modulo 3 (no, two and one padding characters
    // missing), and a payload whose base64url has both `-` and `_`.
    for payload in [
        r#"{"sub":"ab"}"#,
        r#"{"sub":"abc"}"#,
        r#"{"sub":"a"}"#,
        r#"{"name":"Léa ??? >>>"}"#,
    ] {
        let encoded = URL_SAFE_NO_PAD.encode(payload);
        if payload.contains("Léa") {
            assert!(encoded.contains('-') && encoded.contains('_'), "{encoded}");
        }
        let jwt = format!("eyJhbGciOiJSUzI1NiJ9.{encoded}.c2lnbmF0dXJl");
        let output = Command::new("sh")
            .args(["-c", &decoder.replace("ID_TOKEN", &jwt)])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{decoder}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            String::from_utf8(output.stdout).unwrap(),
            format!("{payload}\n")
        );
    }
}

#[tokio::test]
async fn serve_demo_prints_the_same_working_client_secret_at_every_start() {
    let clef = Clef::new();
    let first = clef.serve_demo(free_port());
    let client_id = printed(&first.out, "Client:");
    let secret = printed(&first.out, "Secret:");
    drop(first);

    let port = free_port();
    let second = clef.serve_demo(port);
    assert_eq!(printed(&second.out, "Client:"), client_id);
    assert_eq!(printed(&second.out, "Secret:"), secret);
    let file = clef.data.path().join("data/demo-client-secret");
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), secret);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the secret is its owner's alone");
    }

    // The server takes the printed secret: a made-up code gets past client
    // authentication and is refused as a grant; another secret is refused as a client.
    let token = async |secret: &str| {
        let url = format!("http://127.0.0.1:{port}/token");
        let form = [
            ("grant_type", "authorization_code"),
            ("code", "not-a-code"),
            ("redirect_uri", "http://127.0.0.1:9000/callback"),
        ];
        for _ in 0..100 {
            let sent = reqwest::Client::new()
                .post(&url)
                .basic_auth(&client_id, Some(secret))
                .form(&form)
                .send()
                .await;
            if let Ok(response) = sent {
                let status = response.status().as_u16();
                let body: Value = response.json().await.unwrap();
                return (
                    status,
                    body["error"].as_str().unwrap_or_default().to_owned(),
                );
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("clef serve --demo did not answer on port {port}")
    };
    assert_eq!(token(&secret).await, (400, "invalid_grant".into()));
    assert_eq!(
        token("not-the-secret").await,
        (401, "invalid_client".into())
    );
}

/// The value printed after `label` in the demo instructions.
fn printed(out: &str, label: &str) -> String {
    out.lines()
        .find_map(|line| line.trim().strip_prefix(label))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no {label} in {out}"))
        .to_owned()
}

/// A running `clef serve --demo`, killed when dropped.
struct DemoServer {
    child: std::process::Child,
    /// What it printed: the demo instructions.
    out: String,
    stdout: Option<std::io::BufReader<std::process::ChildStdout>>,
}

impl Drop for DemoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Clef {
    /// Starts `clef serve --demo` on `port` (same environment as `run`) and returns
    /// once it has printed the demo instructions, whose last line is the decoder.
    fn serve_demo(&self, port: u16) -> DemoServer {
        use std::io::BufRead;

        let child = Command::new(env!("CARGO_BIN_EXE_clef"))
            .args(["serve", "--demo"])
            .env("CLEF_DATA_DIR", self.data.path().join("data"))
            .env("CLEF_KEYS_DIR", self.data.path().join("keys"))
            .env("CLEF_LISTEN", format!("127.0.0.1:{port}"))
            .env_remove("CLEF_DATABASE_URL")
            .env_remove("CLEF_REDIS_URL")
            .current_dir(self.data.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut server = DemoServer {
            child,
            out: String::new(),
            stdout: None,
        };
        let mut stdout = std::io::BufReader::new(server.child.stdout.take().unwrap());
        let mut line = String::new();
        while stdout.read_line(&mut line).unwrap() > 0 {
            server.out.push_str(&line);
            if line.contains("| base64 -d") {
                // Kept open: a closed pipe would fail the server's next print.
                server.stdout = Some(stdout);
                return server;
            }
            line.clear();
        }
        panic!(
            "clef serve --demo stopped before its instructions:\n{}",
            server.out
        )
    }
}

/// The mode bits of a file, as `ls -l` shows them.
#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// `clef migrate` says what it did; a database a newer Clef migrated (a
/// rolling upgrade, a rollback) is served, not refused.
#[test]
fn migrate_reports_the_schema_and_runs_on_one_a_newer_clef_migrated() {
    let clef = Clef::new();
    let first = clef.ok(&["migrate"], None);
    let newest = clef::storage::migrator()
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap();
    assert!(
        first.contains(&format!(
            "{newest} migration(s) applied: schema at migration {newest}"
        )),
        "{first}"
    );
    let again = clef.ok(&["migrate"], None);
    assert!(
        again.contains(&format!("schema up to date (migration {newest})")),
        "{again}"
    );
    let database = format!(
        "sqlite://{}",
        clef.data.path().join("data/clef.db").display()
    );
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let mut connection = sqlx::AnyConnection::connect(&database).await.unwrap();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (9999, 'from a newer Clef', TRUE, X'00', 0)",
        )
        .execute(&mut connection)
        .await
        .unwrap();
    });
    let newer = clef.ok(&["migrate"], None);
    assert!(
        newer.contains(&format!(
            "migrated by a newer Clef (this one knows up to migration {newest})"
        )),
        "{newer}"
    );
    clef.ok(
        &[
            "establishment",
            "create",
            "--uai",
            "0590001A",
            "--name",
            "Collège A",
        ],
        None,
    );
}

#[cfg(unix)]
#[test]
fn the_database_file_is_private_even_in_a_data_folder_open_to_all() {
    use std::os::unix::fs::PermissionsExt;
    let clef = Clef::new();
    // A mounted volume: the folder exists, and anyone may list it.
    let data = clef.data.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    clef.ok(&["migrate"], None);
    assert_eq!(mode(&data.join("clef.db")), 0o600);
    // A file left readable by an earlier version is closed at the next start.
    std::fs::set_permissions(data.join("clef.db"), std::fs::Permissions::from_mode(0o644)).unwrap();
    clef.ok(&["migrate"], None);
    assert_eq!(mode(&data.join("clef.db")), 0o600);
}

#[cfg(unix)]
#[tokio::test]
async fn the_write_ahead_log_and_outbox_mail_are_private_in_a_data_folder_open_to_all() {
    use std::os::unix::fs::PermissionsExt;
    let volume = tempfile::tempdir().unwrap();
    let data = volume.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let data_dir = data.clone();
    let app = crate::helpers::spawn_app_with(move |config| {
        config.data_dir = data_dir;
        config.database_url = None;
        config.smtp_url = None;
    })
    .await;
    // A write, so SQLite has its write-ahead log and shared-memory files.
    app.establishment("0590001A", "Collège Jean Moulin").await;
    for file in ["clef.db", "clef.db-wal", "clef.db-shm"] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
    let to = clef::domain::EmailAddress::parse("marc@example.org").unwrap();
    let mail = clef::delivery::Mail {
        to,
        subject: "Lien d'activation".into(),
        text: "https://clef.example.fr/activation?t=secret".into(),
        language: clef::domain::Locale::Fr,
        html: "<p>https://clef.example.fr/activation?t=secret</p>".into(),
    };
    app.app.mailer.send(mail).await.unwrap();
    let outbox = data.join("outbox").join("mail");
    let mails: Vec<std::path::PathBuf> = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].extension().is_some_and(|e| e == "eml"));
    assert_eq!(mode(&mails[0]), 0o600);
    assert_eq!(
        app.last_mail_to("marc@example.org").subject,
        "Lien d'activation"
    );
}

#[test]
fn operators_update_a_client_and_give_it_terms_back_channel_and_service_scopes() {
    let clef = Clef::new();
    let created: Value = serde_json::from_str(&clef.ok(
        &[
            "client",
            "create",
            "--name",
            "ENT",
            "--redirect-uri",
            "https://ent.example/cb",
            "--json",
        ],
        None,
    ))
    .unwrap();
    let id = created["client_id"].as_str().unwrap();
    clef.ok(
        &[
            "client",
            "update",
            "--id",
            id,
            "--name",
            "ENT Collèges 59",
            "--first-party",
            "true",
            "--terms-url",
            "https://ent.example/charte",
            "--terms-version",
            "2026-09",
            "--backchannel-logout-uri",
            "https://ent.example/backchannel",
            "--service-scopes",
            "annuaire:lecture",
            "--policy-uri",
            "https://ent.example/confidentialite",
            "--tos-uri",
            "https://ent.example/cgu",
        ],
        None,
    );
    let list: Value = serde_json::from_str(&clef.ok(&["client", "list", "--json"], None)).unwrap();
    let client = &list[0];
    assert_eq!(client["name"], "ENT Collèges 59");
    assert_eq!(client["policy_uri"], "https://ent.example/confidentialite");
    assert_eq!(client["tos_uri"], "https://ent.example/cgu");
    clef.fails(&[
        "client",
        "update",
        "--id",
        id,
        "--policy-uri",
        "ent.example/rgpd",
    ]);
    assert_eq!(client["is_first_party"], true);
    assert_eq!(client["terms"]["version"], "2026-09");
    assert_eq!(
        client["backchannel_logout_uri"],
        "https://ent.example/backchannel"
    );
    assert_eq!(client["grant_types"]["client_credentials"], true);
    assert_eq!(client["grant_types"]["refresh_token"], true);
    assert_eq!(client["redirect_uris"][0], "https://ent.example/cb", "kept");
    // Never back to a third party: what it got without consent would stay.
    clef.fails(&["client", "update", "--id", id, "--first-party", "false"]);
    // Back-channel logout can be stopped; a bad value changes nothing.
    clef.ok(
        &["client", "update", "--id", id, "--no-backchannel-logout"],
        None,
    );
    clef.fails(&[
        "client",
        "update",
        "--id",
        id,
        "--backchannel-logout-uri",
        "http://ent.example/bc",
    ]);
    clef.fails(&["client", "update", "--id", "clef-inconnu", "--name", "X"]);
    // Grants are chosen among those Clef knows; a refresh token needs the code flow.
    clef.fails(&["client", "update", "--id", id, "--grant-types", "implicit"]);
    clef.fails(&[
        "client",
        "update",
        "--id",
        id,
        "--grant-types",
        "refresh_token",
    ]);
    clef.ok(
        &[
            "client",
            "update",
            "--id",
            id,
            "--grant-types",
            "client_credentials",
        ],
        None,
    );
    let list: Value = serde_json::from_str(&clef.ok(&["client", "list", "--json"], None)).unwrap();
    assert!(list[0]["backchannel_logout_uri"].is_null());
    assert_eq!(list[0]["grant_types"]["authorization_code"], false);
    assert_eq!(list[0]["name"], "ENT Collèges 59");
}

/// `clef config check | head -1`: a reader that goes away ends the command
/// quietly, as it ends any Unix tool, not with a panic on stderr.
#[test]
fn a_command_whose_reader_goes_away_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let clef = Clef::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_clef"))
        .args(["config", "check"])
        .env("CLEF_DATA_DIR", clef.data.path().join("data"))
        .env("CLEF_KEYS_DIR", clef.data.path().join("keys"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader is gone before the command writes a line.
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(output.status.signal(), Some(libc::SIGPIPE), "{stderr}");
}

#[test]
fn config_check_prints_the_configuration_in_force_with_secrets_masked() {
    let clef = Clef::new();
    std::fs::write(
        clef.data.path().join("clef.toml"),
        "session_ttl = 7200\nmail_from = \"Clef <clef@ac-exemple.fr>\"\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_clef"))
        .args(["config", "check"])
        .current_dir(clef.data.path())
        .env("CLEF_SESSION_TTL", "600")
        .env("CLEF_SMTP_URL", "smtp://clef:hunter2@mail.internal:587")
        .env("CLEF_RECOVERY_EXPLICIT", "yes")
        // Empty counts as unset, as for every variable.
        .env("CLEF_CONFIG", "")
        .env_remove("CLEF_DATABASE_URL")
        .env_remove("CLEF_REDIS_URL")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains("session_ttl = 600"),
        "the environment wins: {text}"
    );
    assert!(
        text.contains("mail_from = \"Clef <clef@ac-exemple.fr>\""),
        "{text}"
    );
    assert!(text.contains("recovery_explicit = true"), "{text}");
    assert!(
        text.contains("smtp_url = \"smtp://clef:********@mail.internal:587\"")
            && !text.contains("hunter2"),
        "{text}"
    );
    // A misspelt variable is named, with the setting it likely stands for.
    let misspelt = Command::new(env!("CARGO_BIN_EXE_clef"))
        .args(["config", "check"])
        .current_dir(clef.data.path())
        .env("CLEF_SESSIONTTL", "5")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&misspelt.stderr).contains("CLEF_SESSIONTTL (CLEF_SESSION_TTL?)"),
        "{}",
        String::from_utf8_lossy(&misspelt.stderr)
    );
    // A bad value is refused with its setting's name.
    let refused = Command::new(env!("CARGO_BIN_EXE_clef"))
        .args(["config", "check"])
        .current_dir(clef.data.path())
        .env("CLEF_MAX_CONNECTIONS", "many")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("max_connections"));
    // So is a value `serve` would refuse only as it starts (it passed the
    // check): the same reading, connecting to nothing.
    for (variable, value, named) in [
        ("CLEF_MAIL_FROM", "not an address", "mail_from"),
        ("CLEF_SMTP_URL", "http://mail.internal", "smtp_url"),
        (
            "CLEF_SMTP_URL",
            "smtp://clef:hunter2@mail.internal:587?tls=bogus",
            "tls=\"bogus\" is not a choice: tls=required",
        ),
        (
            "CLEF_DATABASE_URL",
            "mysql://db.internal/clef",
            "database URL",
        ),
        (
            "CLEF_DATABASE_URL",
            "postgres://clef@db.internal/clef?sslmode=bogus",
            "unknown value \"bogus\" for `ssl_mode`",
        ),
        ("CLEF_DATABASE_URL", "postgres://", "names no host"),
        (
            "CLEF_DATABASE_URL",
            "postgres://clef@db.internal/clef?sslmode=verify-full&sslrootcert=/nulle/part.pem",
            "sslrootcert /nulle/part.pem: no such file",
        ),
        (
            "CLEF_REFRESH_TOKEN_IDLE_TTL",
            "99999999",
            "longer than refresh_token_absolute_ttl",
        ),
        (
            "CLEF_LOG",
            "clef=bavard",
            "CLEF_LOG=\"clef=bavard\" cannot be read",
        ),
        ("CLEF_REDIS_URL", "http://cache.internal", "Redis URL"),
        (
            "CLEF_SMS_GATEWAY_BODY",
            "{{ to | nosuchfilter }}",
            "sms_gateway_body",
        ),
    ] {
        let refused = Command::new(env!("CARGO_BIN_EXE_clef"))
            .args(["config", "check"])
            .current_dir(clef.data.path())
            .env_remove("CLEF_DATABASE_URL")
            .env_remove("CLEF_REDIS_URL")
            .env_remove("PGHOST")
            .env("CLEF_SMS_GATEWAY_URL", "https://sms.example/send")
            .env(variable, value)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(!refused.status.success(), "{variable}: {stderr}");
        assert!(stderr.contains(named), "{variable}: {stderr}");
        assert!(!stderr.contains("hunter2"), "never the secret: {stderr}");
    }
}

/// `clef import`: a file with a bad row is refused whole, its row named,
/// unless `--skip-bad-rows` asks for the others.
#[test]
fn import_refuses_a_file_with_a_bad_row_unless_asked_to_skip_it() {
    let clef = Clef::new();
    clef.ok(&["migrate"], None);
    clef.ok(
        &[
            "establishment",
            "create",
            "--uai",
            "0590001A",
            "--name",
            "Collège Jean Moulin",
        ],
        None,
    );
    let file = clef.data.path().join("eleves.csv");
    std::fs::write(
        &file,
        "N° élève;Nom;Prénom;Date de naissance;Classe\n\
         1;Baillet;Julie;03/09/2012;5 B\n\
         2;Petit;;32/13/2011;4 A\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let import = ["import", "--establishment", "0590001A", "--file", file];
    let refused = clef.fails(&import);
    assert!(refused.contains("ligne 3 :"), "{refused}");
    assert!(
        refused.contains(
            "1 ligne refusée : rien n'a été importé (--skip-bad-rows importe la ligne valable)"
        ),
        "{refused}"
    );

    let output = clef.run(&[&import[..], &["--skip-bad-rows"]].concat(), None);
    assert!(output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("ligne 3 :"), "{stderr}");
    assert!(
        stderr.contains("1 ligne refusée, laissée de côté"),
        "{stderr}"
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.contains("élèves : 1 créé, 0 mis à jour, 0 inchangé ;"),
        "{stdout}"
    );

    // Where no row is good, --skip-bad-rows is no way out: not suggested.
    std::fs::write(
        file,
        "N° élève;Nom;Prénom;Date de naissance;Classe
2;Petit;;32/13/2011;4 A
3;;Léa;01/01/2011;
",
    )
    .unwrap();
    let refused = clef.fails(&import);
    assert!(
        refused.contains("2 lignes refusées, aucune ligne valable : rien n'a été importé"),
        "{refused}"
    );
    assert!(!refused.contains("--skip-bad-rows"), "{refused}");

    // A file that cannot be read at all is refused as a file, not as rows.
    std::fs::write(file, "").unwrap();
    let refused = clef.fails(&import);
    assert!(
        refused.contains("fichier : le fichier est vide"),
        "{refused}"
    );
    assert!(
        refused.contains("fichier refusé : rien n'a été importé"),
        "{refused}"
    );
    assert!(!refused.contains("ligne refusée"), "{refused}");
    // A file that is not there, or one without end, is said so, in French.
    let missing = clef.fails(&[
        "import",
        "--establishment",
        "0590001A",
        "--file",
        "/nulle/part.csv",
    ]);
    assert!(
        missing.contains(
            "impossible de lire « /nulle/part.csv » : ce fichier ou son dossier n'existe pas"
        ),
        "{missing}"
    );
    let endless = clef.fails(&[
        "import",
        "--establishment",
        "0590001A",
        "--file",
        "/dev/zero",
    ]);
    assert!(
        endless.contains("« /dev/zero » dépasse 8 Mo : importez-le en plusieurs fichiers"),
        "{endless}"
    );

    // A real import prints its changes as the dry run does: here the pupil
    // the next file leaves out.
    std::fs::write(
        file,
        "N° élève;Nom;Prénom;Date de naissance;Classe\n4;Roux;Léo;04/05/2011;4 A\n",
    )
    .unwrap();
    let stdout = clef.ok(&import, None);
    assert!(
        stdout.contains("1 élève de l'établissement ne figure pas dans ce fichier : Julie Baillet (5 B) ; son compte reste ouvert"),
        "{stdout}"
    );
    // A parent's new address and phone are printed, old → new (the file may
    // undo a correction the school made by hand).
    let with = |email: &str, phone: &str| {
        format!(
            "N° élève;Nom;Prénom;Date de naissance;Classe;Nom responsable 1;Prénom responsable 1;\
             Courriel responsable 1;Téléphone responsable 1\n\
             4;Roux;Léo;04/05/2011;4 A;Roux;Anne;{email};{phone}\n"
        )
    };
    std::fs::write(file, with("anne@example.org", "06 12 34 56 78")).unwrap();
    clef.ok(&import, None);
    std::fs::write(file, with("anne@example.org", "06 99 88 77 66")).unwrap();
    let stdout = clef.ok(&import, None);
    assert!(
        stdout.contains(
            "coordonnées d'Anne Roux mises à jour : téléphone +33612345678 → +33699887766"
        ),
        "{stdout}"
    );
    std::fs::write(file, with("anne.roux@example.org", "06 99 88 77 66")).unwrap();
    let stdout = clef.ok(&import, None);
    assert!(
        stdout.contains(
            "coordonnées d'Anne Roux mises à jour : adresse anne@example.org → anne.roux@example.org"
        ),
        "{stdout}"
    );

    // The letters written to standard output (`kubectl exec … > courriers.pdf`,
    // as docs/operations.md shows) are the PDF alone: the count goes to stderr.
    let letters = [
        "letters",
        "--establishment",
        "0590001A",
        "--out",
        "/dev/stdout",
    ];
    let output = clef.run(&letters, None);
    assert!(output.status.success());
    assert!(output.stdout.starts_with(b"%PDF-"), "the PDF on stdout");
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("courrier"),
        "and nothing else"
    );
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("courriers écrits dans /dev/stdout"),
        "the count on stderr"
    );

    // A class typed in another case and spacing is the one the file wrote.
    let mut class_letters = letters.to_vec();
    class_letters.extend(["--class", "4a"]);
    let output = clef.run(&class_letters, None);
    assert!(output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("2 courriers écrits"),
        "Léo's and his mother's (4 A): {}",
        String::from_utf8_lossy(&output.stderr)
    );

    // No empty PDF: a class or an account the school does not have is
    // refused with its reason, and no file is written.
    let out = clef.data.path().join("vide.pdf");
    let out = out.to_str().unwrap();
    for (selection, reason) in [
        (
            ["--class", "3c"],
            "aucun élève de l'établissement n'est dans cette classe. \
             Classes de l'établissement : 4 A, 5 B. Aucun fichier écrit.",
        ),
        (
            ["--account", "personne.inconnue"],
            "aucun compte de l'établissement n'a cet identifiant",
        ),
    ] {
        let mut args = vec!["letters", "--establishment", "0590001A", "--out", out];
        args.extend(selection);
        let output = clef.run(&args, None);
        assert!(!output.status.success(), "{selection:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(reason), "{stderr}");
        assert!(
            !std::path::Path::new(out).exists(),
            "{selection:?}: no file"
        );
    }
}

#[test]
fn staff_revoke_takes_establishments_away_then_closes_the_account_and_is_audited() {
    let clef = Clef::new();
    clef.ok(&["migrate"], None);
    for (uai, name) in [("0590001A", "Collège A"), ("0590002B", "Collège B")] {
        clef.ok(
            &["establishment", "create", "--uai", uai, "--name", name],
            None,
        );
    }
    clef.ok(
        &[
            "staff",
            "create",
            "--identifier",
            "secretariat.ab",
            "--given-name",
            "Sophie",
            "--family-name",
            "Durand",
            "--establishment",
            "0590001A",
            "--establishment",
            "0590002B",
        ],
        None,
    );
    assert!(
        clef.fails(&["staff", "revoke", "--identifier", "secretariat.ab"])
            .contains("--establishment")
    );
    assert!(
        !clef
            .fails(&["staff", "revoke", "--identifier", "personne", "--all"])
            .is_empty()
    );
    let one = clef.ok(
        &[
            "staff",
            "revoke",
            "--identifier",
            "secretariat.ab",
            "--establishment",
            "0590001A",
        ],
        None,
    );
    assert_eq!(one.trim(), "secretariat.ab: 1 role(s) left");
    let all = clef.ok(
        &["staff", "revoke", "--identifier", "secretariat.ab", "--all"],
        None,
    );
    assert_eq!(all.trim(), "secretariat.ab: no role left, account closed");
    let trail = clef.ok(&["audit", "--account", "secretariat.ab"], None);
    assert!(trail.starts_with("AT\tEVENT\tOUTCOME\tACCOUNT\tACTOR\tADDRESS\tDETAIL\n"));
    // The command line acts, for the system user who ran it.
    for detail in [
        "granted 0590001A 0590002B, from the command line by ",
        "revoked 0590001A, from the command line by ",
        "revoked all, from the command line by ",
    ] {
        assert!(trail.contains(detail), "{detail} in {trail}");
    }
}

/// An academy's theme (`theme_dir`, SPEC §5): its templates replace Clef's
/// of the same name, its stylesheet and logo are linked from every page and
/// served under `/theme/`; a template name Clef does not have stops
/// `config check` (and the start) with the name.
#[tokio::test]
async fn a_theme_folder_replaces_templates_and_serves_its_stylesheet_and_logo() {
    let clef = Clef::new();
    let theme = clef.data.path().join("theme");
    for (path, content) in [
        (
            "templates/pages/login.html",
            "{% extends \"pages/base.html\" %}{% block title %}{{ t(\"Connexion\") }}{% endblock %}\
             {% block content %}<h1>ENT de l'académie d'Exemple</h1>{% endblock %}",
        ),
        ("static/theme.css", ":root { --accent: #6e445a; }"),
        (
            "static/logo.svg",
            "<svg xmlns=\"http://www.w3.org/2000/svg\"/>",
        ),
    ] {
        let path = theme.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    std::fs::write(
        clef.data.path().join("clef.toml"),
        "theme_dir = \"theme\"\n",
    )
    .unwrap();
    clef.ok(&["config", "check"], None);

    let port = free_port();
    let _server = clef.serve_demo(port);
    let get = async |path: &str| {
        let url = format!("http://127.0.0.1:{port}{path}");
        for _ in 0..100 {
            if let Ok(response) = reqwest::get(&url).await {
                return response;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("no answer at {url}")
    };
    let login = get("/login").await;
    let csp = login.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("style-src 'self'") && csp.contains("font-src 'self'"),
        "{csp}"
    );
    let login = login.text().await.unwrap();
    assert!(
        login.contains("<h1>ENT de l'académie d'Exemple</h1>"),
        "{login}"
    );
    assert!(
        login.contains("<link rel=\"stylesheet\" href=\"/theme/theme.css\">")
            && login.contains("<img class=\"logo\" src=\"/theme/logo.svg\" alt=\"\">"),
        "{login}"
    );
    // The other pages keep Clef's templates, with the theme's style and logo.
    let forgot = get("/mot-de-passe-oublie").await.text().await.unwrap();
    assert!(forgot.contains("/theme/theme.css") && forgot.contains("Mot de passe oublié"));
    let css = get("/theme/theme.css").await;
    assert_eq!(css.status(), 200);
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    assert_eq!(css.text().await.unwrap(), ":root { --accent: #6e445a; }");
    assert_eq!(
        get("/theme/logo.svg").await.headers()["content-type"],
        "image/svg+xml"
    );
    assert_eq!(get("/theme/absent.css").await.status(), 404);
    assert_eq!(get("/theme/..%2Fclef.toml").await.status(), 404);

    // A mistyped name is told, not ignored.
    std::fs::write(theme.join("templates/pages/logn.html"), "x").unwrap();
    let error = clef.fails(&["config", "check"]);
    assert!(
        error.contains("theme template pages/logn.html: Clef has no template of that name"),
        "{error}"
    );
}

/// An establishment's name, address and portal (SPEC §2) are set when it is
/// made or later: its letters send families to its portal, under its name
/// and address; a portal that is not https is refused and changes nothing;
/// an empty value clears a detail; the UAI names no other.
#[test]
fn an_establishments_details_and_portal_are_set_and_printed_on_its_letters() {
    let clef = Clef::new();
    clef.ok(&["migrate"], None);
    let create = |portal: &str| {
        clef.run(
            &[
                "establishment",
                "create",
                "--uai",
                "0590001A",
                "--name",
                "College Jean Moulin",
                "--portal-url",
                portal,
            ],
            None,
        )
    };
    for refused in [
        "http://ent.example.fr",
        "javascript:alert(1)",
        "https://a:b@ent.example.fr",
    ] {
        let output = create(refused);
        assert!(!output.status.success(), "{refused}");
        assert!(
            String::from_utf8_lossy(&output.stderr)
                .contains("« adresse du portail » n'est pas valide"),
            "{refused}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert!(
        clef.fails(&["establishment", "show", "--uai", "0590001A"])
            .contains("0590001A")
    );
    assert!(create("https://ent.example.fr/").status.success());
    let shown = clef.ok(
        &[
            "establishment",
            "update",
            "--uai",
            "0590001a",
            "--name",
            "Collège Jean Moulin",
            "--address",
            "12 rue des Écoles",
            "--city",
            "59000 Lille",
            "--contact",
            "ce.0590001a@ac-lille.fr",
        ],
        None,
    );
    for line in [
        "name:       Collège Jean Moulin",
        "address:    12 rue des Écoles",
        "city:       59000 Lille",
        "contact:    ce.0590001a@ac-lille.fr",
        "portal_url: https://ent.example.fr/",
    ] {
        assert!(shown.contains(line), "{line}: {shown}");
    }
    let refused = clef.fails(&[
        "establishment",
        "update",
        "--uai",
        "0590001A",
        "--portal-url",
        "ftp://ent.example.fr",
    ]);
    assert!(refused.contains("adresse du portail"), "{refused}");
    let unknown = clef.fails(&[
        "establishment",
        "update",
        "--uai",
        "0590009Z",
        "--city",
        "Lens",
    ]);
    // A UAI not of its shape says what it should be.
    let malformed = clef.fails(&["establishment", "show", "--uai", "59001"]);
    assert!(
        malformed
            .contains("« UAI (7 chiffres et une lettre, par exemple 0590001A) » n'est pas valide"),
        "{malformed}"
    );
    // On the audit trail, with who ran the command.
    let trail = clef.ok(&["audit"], None);
    for made in [
        "establishment_changed\tok\t-\t-\t-\tcreated 0590001A: name=\"College Jean Moulin\" portal_url=\"https://ent.example.fr/\", from the command line by",
        "updated 0590001A: name=\"Collège Jean Moulin\" (was \"College Jean Moulin\") address=\"12 rue des Écoles\" (was unset) city=\"59000 Lille\" (was unset) contact=\"ce.0590001a@ac-lille.fr\" (was unset), from the command line by",
    ] {
        assert!(trail.contains(made), "{made}: {trail}");
    }
    assert!(unknown.contains("0590009Z"), "{unknown}");

    let file = clef.data.path().join("eleves.csv");
    std::fs::write(
        &file,
        "N° élève;Nom;Prénom;Date de naissance;Classe\n1;Roux;Léo;04/05/2011;4 A\n",
    )
    .unwrap();
    clef.ok(
        &[
            "import",
            "--establishment",
            "0590001A",
            "--file",
            file.to_str().unwrap(),
        ],
        None,
    );
    let letters = |out: &str| {
        clef.ok(
            &["letters", "--establishment", "0590001A", "--out", out],
            None,
        );
        let document = lopdf::Document::load(out).unwrap();
        document.extract_text(&[1]).unwrap()
    };
    let pdf = clef.data.path().join("courriers.pdf");
    let text = letters(pdf.to_str().unwrap());
    for printed in [
        "Collège Jean Moulin",
        "12 rue des Écoles, 59000 Lille",
        "https://ent.example.fr/",
        "En cas de difficulté, adressez-vous à l'établissement",
        "ce.0590001a@ac-lille.fr",
    ] {
        assert!(text.contains(printed), "{printed}: {text}");
    }

    // Cleared: Clef's own login page again, and no address.
    let shown = clef.ok(
        &[
            "establishment",
            "update",
            "--uai",
            "0590001A",
            "--portal-url",
            "",
            "--address",
            "",
        ],
        None,
    );
    assert!(
        shown.contains("portal_url: -") && shown.contains("address:    -"),
        "{shown}"
    );
    let text = letters(pdf.to_str().unwrap());
    assert!(
        !text.contains("ent.example.fr") && !text.contains("rue des Écoles"),
        "{text}"
    );
    assert!(text.contains("/login"), "{text}");
    assert!(text.contains("59000 Lille"), "{text}");
}
