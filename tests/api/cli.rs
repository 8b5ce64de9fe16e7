//! The `clef` binary: each test runs it against its own data directory.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

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
        Some("court\n"),
    );
    assert!(!output.status.success(), "a too-short password is refused");
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
    // Running it again reuses the demo accounts.
    clef.ok(&["demo"], None);
}
