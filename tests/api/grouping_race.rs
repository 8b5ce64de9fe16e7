//! Groupings racing each other (SPEC §3.8): `grouping::group` takes both
//! accounts' rows in one order inside one transaction, so of two groupings over
//! the same accounts exactly one applies, the other is refused (never an
//! error), and no child is lost or attached twice. Then a grouping broken by
//! the school with the real `clef guardian detach`, and made again with the
//! new letter. Last, what else writes a guardian's children while it is
//! grouped: a detachment, and a link (`clef guardian link`), must each
//! apply wholly before or after the grouping.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Stdio};
use std::sync::Arc;

use clef::accounts::grouping::{self, DetachError, Grouped, GroupingError, OtherAccount, Refusal};
use clef::accounts::store::{self, NewAccount};
use clef::accounts::throttle::Origin;
use clef::accounts::{Account, AccountError, AccountKind, AccountState};
use clef::app::Clef;
use clef::config::Config;
use clef::domain::{BirthDate, ClassName, Identifier, PersonName, Rank, Uai};
use secrecy::{ExposeSecret, SecretString};
use sqlx::Row;
use tokio::sync::Barrier;

use crate::helpers::{TestApp, spawn_app};

const UAI: &str = "0590001A";

type Outcome = Result<Result<Grouped, Refusal>, GroupingError>;

/// A name from the letters of an identifier's `part` (`zoe.durand` → `Zoe`, `Durand`).
fn name_of(identifier: &str, part: usize) -> String {
    let letters: String = identifier
        .split('.')
        .nth(part)
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_alphabetic)
        .collect();
    let mut chars = letters.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => "Course".into(),
    }
}

/// An active account without a password (these tests never sign in with it):
/// no hashing, so a round costs only its inserts.
async fn person(
    app: &TestApp,
    identifier: &str,
    kind: AccountKind,
    school: Option<&Uai>,
    birthdate: Option<&str>,
) -> Account {
    let new = NewAccount {
        identifier: Identifier::parse(identifier).unwrap(),
        kind,
        state: AccountState::Active,
        given_name: PersonName::parse("prénom", &name_of(identifier, 0)).unwrap(),
        family_name: PersonName::parse("nom", &name_of(identifier, 1)).unwrap(),
        birthdate: birthdate.map(|b| BirthDate::parse(b).unwrap()),
        email: None,
        email_verified: false,
        establishment: school.map(|uai| (uai.clone(), ClassName::parse("6 A").unwrap())),
        password_hash: None,
    };
    store::create_account(&app.app.db, new, app.app.now())
        .await
        .unwrap()
}

async fn guardian(app: &TestApp, identifier: &str) -> Account {
    person(app, identifier, AccountKind::Guardian, None, None).await
}

async fn student(app: &TestApp, uai: &Uai, identifier: &str) -> Account {
    person(
        app,
        identifier,
        AccountKind::Student,
        Some(uai),
        Some("2013-05-14"),
    )
    .await
}

async fn link(app: &TestApp, guardian: &Account, student: &Account, rank: u8) {
    store::link_guardian(
        &app.app.db,
        &guardian.id,
        &student.id,
        Rank::new(rank).unwrap(),
        app.app.now(),
    )
    .await
    .unwrap();
}

/// Every guardianship: (guardian id, student id, rank).
async fn guardianships(app: &TestApp) -> Vec<(String, String, i64)> {
    sqlx::query("SELECT guardian_id, student_id, rank FROM guardianships")
        .fetch_all(&app.app.db)
        .await
        .unwrap()
        .iter()
        .map(|row| {
            (
                row.try_get("guardian_id").unwrap(),
                row.try_get("student_id").unwrap(),
                row.try_get("rank").unwrap(),
            )
        })
        .collect()
}

/// The guardians of `student_id`: guardian id → rank.
async fn guardians_of(app: &TestApp, student_id: &str) -> BTreeMap<String, i64> {
    guardianships(app)
        .await
        .into_iter()
        .filter(|(_, s, _)| s == student_id)
        .map(|(g, _, rank)| (g, rank))
        .collect()
}

/// An account's state and `merged_into`.
async fn state_of(app: &TestApp, id: &str) -> (String, Option<String>) {
    let row = sqlx::query("SELECT state, merged_into FROM accounts WHERE id = $1")
        .bind(id)
        .fetch_one(&app.app.db)
        .await
        .unwrap();
    (
        row.try_get("state").unwrap(),
        row.try_get("merged_into").unwrap(),
    )
}

/// Runs `group(principal, other)` for every pair, each in its own task, all
/// let go together by a barrier; the outcomes in the order of `pairs`.
async fn race(app: &Arc<Clef>, pairs: &[(String, String)]) -> Vec<Outcome> {
    let barrier = Arc::new(Barrier::new(pairs.len()));
    let tasks: Vec<_> = pairs
        .iter()
        .cloned()
        .map(|(principal, other)| {
            let app = Arc::clone(app);
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                grouping::group(&app, &principal, &other).await
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.expect("the grouping task panicked"));
    }
    outcomes
}

/// A grouping that did not fail: applied or refused. An error (a deadlock, a
/// locked database) is what the row order is there to prevent.
fn settled(outcome: Outcome, what: &str) -> Result<Grouped, Refusal> {
    outcome.unwrap_or_else(|e| panic!("{what}: an error instead of a refusal: {e:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_groupings_in_opposite_directions_one_applies_and_the_other_is_refused() {
    let app = spawn_app().await;
    let uai = app.establishment(UAI, "Collège Jean Moulin").await;
    let mut wins = [0u32; 2];
    for round in 0..20 {
        let a = guardian(&app, &format!("a{round}.course")).await;
        let b = guardian(&app, &format!("b{round}.course")).await;
        // One child each has alone, one they share (A rank 1, B rank 2), one more for B.
        let shared = student(&app, &uai, &format!("shared{round}.course")).await;
        let a_only = student(&app, &uai, &format!("aonly{round}.course")).await;
        let b_only = student(&app, &uai, &format!("bonly{round}.course")).await;
        let b_second = student(&app, &uai, &format!("bsecond{round}.course")).await;
        link(&app, &a, &shared, 1).await;
        link(&app, &a, &a_only, 1).await;
        link(&app, &b, &shared, 2).await;
        link(&app, &b, &b_only, 1).await;
        link(&app, &b, &b_second, 2).await;
        let before = app.count("guardianships").await;

        let mut outcomes = race(
            &app.app,
            &[(a.id.clone(), b.id.clone()), (b.id.clone(), a.id.clone())],
        )
        .await
        .into_iter();
        let a_absorbs_b = settled(outcomes.next().unwrap(), &format!("round {round}: A←B"));
        let b_absorbs_a = settled(outcomes.next().unwrap(), &format!("round {round}: B←A"));
        let (survivor, closed, grouped, refusal, moved, shared_rank) =
            match (a_absorbs_b, b_absorbs_a) {
                (Ok(grouped), Err(refusal)) => {
                    wins[0] += 1;
                    (&a, &b, grouped, refusal, 2, 1)
                }
                (Err(refusal), Ok(grouped)) => {
                    wins[1] += 1;
                    (&b, &a, grouped, refusal, 1, 2)
                }
                both => panic!("round {round}: exactly one grouping must apply: {both:?}"),
            };
        // The loser's principal was closed under it.
        assert_eq!(refusal, Refusal::PrincipalNotActive, "round {round}");
        assert_eq!(grouped.closed_identifier, closed.identifier);
        assert_eq!(
            grouped.moved, moved,
            "round {round}: the shared child stays once"
        );

        assert_eq!(
            state_of(&app, &survivor.id).await,
            ("active".to_owned(), None),
            "round {round}: the survivor"
        );
        assert_eq!(
            state_of(&app, &closed.id).await,
            ("closed".to_owned(), Some(survivor.id.clone())),
            "round {round}: the closed account"
        );
        for child in [&shared, &a_only, &b_only, &b_second] {
            let guardians = guardians_of(&app, &child.id).await;
            assert_eq!(
                guardians.keys().collect::<Vec<_>>(),
                [&survivor.id],
                "round {round}: {} attached once, to the survivor",
                child.identifier
            );
        }
        assert_eq!(
            guardians_of(&app, &shared.id).await[&survivor.id],
            shared_rank,
            "round {round}: the survivor's own rank for the shared child"
        );
        assert_eq!(
            app.count("guardianships").await,
            before - 1,
            "round {round}: only the shared child's second link went"
        );
    }
    eprintln!("A←B applied {} times, B←A {} times", wins[0], wins[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_principals_racing_for_the_same_account_one_gets_its_children() {
    let app = spawn_app().await;
    let uai = app.establishment(UAI, "Collège Jean Moulin").await;
    for round in 0..10 {
        let a = guardian(&app, &format!("a{round}.course")).await;
        let b = guardian(&app, &format!("b{round}.course")).await;
        let c = guardian(&app, &format!("c{round}.course")).await;
        let of_a = student(&app, &uai, &format!("ofa{round}.course")).await;
        let of_b = student(&app, &uai, &format!("ofb{round}.course")).await;
        // C's children: one shared with A, one shared with B, two of its own.
        let with_a = student(&app, &uai, &format!("witha{round}.course")).await;
        let with_b = student(&app, &uai, &format!("withb{round}.course")).await;
        let c_first = student(&app, &uai, &format!("cfirst{round}.course")).await;
        let c_second = student(&app, &uai, &format!("csecond{round}.course")).await;
        link(&app, &a, &of_a, 1).await;
        link(&app, &a, &with_a, 1).await;
        link(&app, &b, &of_b, 1).await;
        link(&app, &b, &with_b, 1).await;
        for child in [&with_a, &with_b, &c_first, &c_second] {
            link(&app, &c, child, 2).await;
        }
        let before = guardianships(&app).await;

        let mut outcomes = race(
            &app.app,
            &[(a.id.clone(), c.id.clone()), (b.id.clone(), c.id.clone())],
        )
        .await
        .into_iter();
        let by_a = settled(outcomes.next().unwrap(), &format!("round {round}: A←C"));
        let by_b = settled(outcomes.next().unwrap(), &format!("round {round}: B←C"));
        let (winner, loser, refusal) = match (by_a, by_b) {
            (Ok(_), Err(refusal)) => (&a, &b, refusal),
            (Err(refusal), Ok(_)) => (&b, &a, refusal),
            both => panic!("round {round}: exactly one grouping must apply: {both:?}"),
        };
        assert_eq!(refusal, Refusal::Closed, "round {round}");
        assert_eq!(
            state_of(&app, &c.id).await,
            ("closed".to_owned(), Some(winner.id.clone()))
        );
        assert_eq!(state_of(&app, &loser.id).await, ("active".to_owned(), None));

        // What the guardianships must be: C's links moved to the winner (the
        // one it shares with the winner already there), the loser's untouched.
        let mut expected: BTreeSet<(String, String)> = BTreeSet::new();
        for (guardian, student, _) in &before {
            let guardian = if *guardian == c.id {
                winner.id.clone()
            } else {
                guardian.clone()
            };
            expected.insert((guardian, student.clone()));
        }
        let after = guardianships(&app).await;
        let pairs: Vec<(String, String)> = after
            .iter()
            .map(|(g, s, _)| (g.clone(), s.clone()))
            .collect();
        let unique: BTreeSet<(String, String)> = pairs.iter().cloned().collect();
        assert_eq!(unique.len(), pairs.len(), "round {round}: no link twice");
        assert_eq!(
            unique, expected,
            "round {round}: nothing lost, nothing added"
        );
        assert_eq!(after.len(), before.len() - 1, "round {round}");
        for child in [&with_a, &with_b, &c_first, &c_second] {
            assert!(
                guardians_of(&app, &child.id).await.contains_key(&winner.id),
                "round {round}: {} is the winner's",
                child.identifier
            );
        }
        // The child the loser shared with C keeps the loser, and gains the winner.
        let shared_with_loser = if winner.id == a.id { &with_b } else { &with_a };
        assert_eq!(guardians_of(&app, &shared_with_loser.id).await.len(), 2);
    }
}

/// A small deterministic generator (xorshift64*): the schedule, not the
/// pairs, is what varies from run to run.
struct Pairs(u64);

impl Pairs {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_concurrent_groupings_leave_every_child_with_an_open_guardian() {
    let app = spawn_app().await;
    let uai = app.establishment(UAI, "Collège Jean Moulin").await;
    for (round, seed) in [0x9e37_79b9_7f4a_7c15_u64, 0xd1b5_4a32_d192_ed03, 42]
        .into_iter()
        .enumerate()
    {
        let mut guardians = Vec::new();
        for g in 0..8 {
            guardians.push(guardian(&app, &format!("g{g}.r{round}")).await);
        }
        let mut rng = Pairs(seed);
        // Two children of their own each, and six shared by two guardians.
        let mut students = Vec::new();
        for (g, account) in guardians.iter().enumerate() {
            for n in 0..2 {
                let child = student(&app, &uai, &format!("own{g}-{n}.r{round}")).await;
                link(&app, account, &child, 1).await;
                students.push(child);
            }
        }
        for n in 0..6 {
            let child = student(&app, &uai, &format!("shared{n}.r{round}")).await;
            let first = rng.below(8);
            let second = (first + 1 + rng.below(7)) % 8;
            link(&app, &guardians[first], &child, 1).await;
            link(&app, &guardians[second], &child, 2).await;
            students.push(child);
        }
        // A student with no guardian at all stays so.
        let orphan = student(&app, &uai, &format!("orphan.r{round}")).await;
        students.push(orphan);

        let mut before: HashMap<String, BTreeSet<String>> = HashMap::new();
        for (guardian, student, _) in guardianships(&app).await {
            before.entry(student).or_default().insert(guardian);
        }

        let pairs: Vec<(String, String)> = (0..30)
            .map(|_| {
                let principal = rng.below(8);
                let other = (principal + 1 + rng.below(7)) % 8;
                (guardians[principal].id.clone(), guardians[other].id.clone())
            })
            .collect();
        let outcomes = race(&app.app, &pairs).await;
        let mut applied = 0;
        for (n, outcome) in outcomes.into_iter().enumerate() {
            match settled(outcome, &format!("round {round}, grouping {n}")) {
                Ok(_) => applied += 1,
                Err(Refusal::PrincipalNotActive | Refusal::Closed) => {}
                Err(other) => panic!("round {round}, grouping {n}: unexpected {other:?}"),
            }
        }
        assert!(
            applied >= 1,
            "round {round}: the first grouping always applies"
        );

        let mut merged_into: HashMap<String, Option<String>> = HashMap::new();
        for account in &guardians {
            let (state, into) = state_of(&app, &account.id).await;
            match (state.as_str(), &into) {
                ("active", None) => {}
                ("closed", Some(into)) => assert!(
                    store::account_by_id(&app.app.db, into)
                        .await
                        .unwrap()
                        .is_some(),
                    "round {round}: merged_into names an account"
                ),
                other => panic!("round {round}: {} is {other:?}", account.identifier),
            }
            merged_into.insert(account.id.clone(), into);
        }
        let closed = merged_into.values().filter(|into| into.is_some()).count();
        assert_eq!(
            closed, applied,
            "round {round}: one account closed per grouping"
        );
        // Where an account's children went: along merged_into to an open account.
        let root = |id: &str| {
            let mut id = id.to_owned();
            for _ in 0..=guardians.len() {
                match &merged_into[&id] {
                    Some(into) => id = into.clone(),
                    None => return id,
                }
            }
            panic!("round {round}: merged_into goes round in a circle from {id}")
        };

        let after = guardianships(&app).await;
        let mut now: HashMap<String, BTreeSet<String>> = HashMap::new();
        for (guardian, student, _) in &after {
            assert!(
                merged_into.get(guardian).is_none_or(|into| into.is_none()),
                "round {round}: closed account {guardian} still holds {student}"
            );
            now.entry(student.clone())
                .or_default()
                .insert(guardian.clone());
        }
        for child in &students {
            let had = before.get(&child.id).cloned().unwrap_or_default();
            let has = now.get(&child.id).cloned().unwrap_or_default();
            if !had.is_empty() {
                assert!(
                    !has.is_empty(),
                    "round {round}: {} lost every guardian",
                    child.identifier
                );
            }
            // Exactly the open accounts its guardians were grouped into.
            let expected: BTreeSet<String> = had.iter().map(|g| root(g)).collect();
            assert_eq!(has, expected, "round {round}: {}", child.identifier);
        }
    }
}

/// Runs the `clef` binary against the database and keys of `config` (the
/// test app's), off the runtime.
async fn clef_cli(config: &Config, args: &[&str]) -> std::process::Output {
    let workdir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_clef"));
    command
        .args(args)
        .env("CLEF_DATA_DIR", &config.data_dir)
        .env("CLEF_KEYS_DIR", &config.keys_dir)
        .env_remove("CLEF_CONFIG")
        .env_remove("CLEF_REDIS_URL")
        .current_dir(workdir.path())
        .stdin(Stdio::null());
    match &config.database_url {
        // PostgreSQL: the test's own database.
        Some(url) => command.env("CLEF_DATABASE_URL", url.expose_secret()),
        // SQLite: the file in the data folder.
        None => command.env_remove("CLEF_DATABASE_URL"),
    };
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    drop(workdir);
    output
}

#[tokio::test]
async fn a_child_detached_by_the_school_is_grouped_back_with_its_new_letter() {
    let app = spawn_app().await;
    let family = app.family().await;
    let claire = family.guardian.clone();
    let lea = &family.children[0];
    let college = app.establishment(UAI, "Collège Jean Moulin").await;
    let marc = guardian(&app, "marc.durand").await;
    let zoe = person(
        &app,
        "zoe.durand",
        AccountKind::Student,
        Some(&college),
        Some("02/01/2014"),
    )
    .await;
    // Marc is responsable légal 2 of Zoé, and of Léa too.
    link(&app, &marc, &zoe, 2).await;
    link(&app, &marc, lea, 2).await;

    let grouped = grouping::group(&app.app, &claire.id, &marc.id)
        .await
        .unwrap()
        .expect("Marc's account is grouped into Claire's");
    assert_eq!(grouped.moved, 1, "Zoé moves; Léa was Claire's already");
    assert_eq!(
        guardians_of(&app, &zoe.id).await,
        BTreeMap::from([(claire.id.clone(), 2)])
    );

    // The school breaks the grouping for Zoé, with the real command.
    let output = clef_cli(
        &app.app.config,
        &[
            "guardian",
            "detach",
            "--guardian",
            "claire.martin",
            "--student",
            &zoe.id,
        ],
    )
    .await;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "clef guardian detach: {}{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let new_identifier = stdout
        .split("its new guardian account is ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("the new identifier in {stdout:?}"))
        .to_owned();
    assert!(
        stdout.starts_with("zoe.durand is detached from claire.martin"),
        "{stdout}"
    );
    let new = app.account_named(&new_identifier).await;
    assert_eq!(
        (new.kind, new.state),
        (AccountKind::Guardian, AccountState::Provisional)
    );
    assert_eq!(
        (new.given_name.as_str(), new.family_name.as_str()),
        ("Marc", "Durand"),
        "the names of the parent Zoé came with, not the principal's"
    );
    assert_eq!(
        guardians_of(&app, &zoe.id).await,
        BTreeMap::from([(new.id.clone(), 2)]),
        "Zoé has the new account, with the same rank, and no longer Claire"
    );
    let mut claires: Vec<String> = store::children(&app.app.db, &claire.id)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.given_name)
        .collect();
    claires.sort();
    assert_eq!(claires, ["Hugo", "Lea"]);

    // The new letter prints, for Zoé, as responsable légal 2.
    let letter = app
        .letters(UAI)
        .await
        .into_iter()
        .find(|l| l.identifier == new_identifier)
        .unwrap_or_else(|| panic!("a letter for {new_identifier}"));
    assert_eq!(
        (
            letter.kind.as_str(),
            letter.rank,
            letter.student_given_name.as_str()
        ),
        ("guardian", Some(2), "Zoe")
    );
    assert!(!letter.password.is_empty());

    // Claire groups it back with the letter and Zoé's birth date.
    let origin = Origin {
        address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
        device: None,
    };
    let claire = store::account_by_id(&app.app.db, &claire.id)
        .await
        .unwrap()
        .unwrap();
    let proposal = grouping::propose(
        &app.app,
        &claire,
        OtherAccount {
            identifier: new_identifier.clone(),
            password: SecretString::from(letter.password.clone()),
            birthdate: "02/01/2014".into(),
        },
        &origin,
    )
    .await
    .unwrap()
    .expect("the letter's account may be grouped");
    assert_eq!(proposal.other_identifier, new_identifier);
    assert_eq!(
        proposal
            .other_children
            .iter()
            .map(|c| c.id.as_str())
            .collect::<Vec<_>>(),
        [zoe.id.as_str()]
    );
    // Another account's « Valider » with Claire's proposal spends nothing.
    let stranger = store::account_by_id(&app.app.db, &zoe.id)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        grouping::confirm(&app.app, &stranger, &proposal.id)
            .await
            .unwrap(),
        Err(grouping::Refusal::ProposalExpired)
    ));
    let again = grouping::confirm(&app.app, &claire, &proposal.id)
        .await
        .unwrap()
        .expect("confirmed");
    assert_eq!(again.closed_identifier, new_identifier);
    assert_eq!(again.moved, 1);
    assert_eq!(
        guardians_of(&app, &zoe.id).await,
        BTreeMap::from([(claire.id.clone(), 2)]),
        "Zoé is Claire's again"
    );
    assert_eq!(
        state_of(&app, &new.id).await,
        ("closed".to_owned(), Some(claire.id.clone()))
    );
    assert!(
        app.letters(UAI)
            .await
            .iter()
            .all(|l| l.identifier != new_identifier),
        "the closed account's letter no longer prints"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_detachment_racing_a_grouping_of_the_same_guardian_applies_before_or_after_it() {
    let app = spawn_app().await;
    let uai = app.establishment(UAI, "Collège Jean Moulin").await;
    let mut failures = Vec::new();
    for round in 0..20 {
        let principal = guardian(&app, &format!("p{round}.course")).await;
        let other = guardian(&app, &format!("x{round}.course")).await;
        let detached_child = student(&app, &uai, &format!("s{round}.course")).await;
        let staying = student(&app, &uai, &format!("t{round}.course")).await;
        link(&app, &other, &detached_child, 1).await;
        link(&app, &other, &staying, 1).await;

        let barrier = Arc::new(Barrier::new(2));
        let grouping_task = tokio::spawn({
            let (app, barrier) = (Arc::clone(&app.app), Arc::clone(&barrier));
            let (principal, other) = (principal.id.clone(), other.id.clone());
            async move {
                barrier.wait().await;
                grouping::group(&app, &principal, &other).await
            }
        });
        let detach_task = tokio::spawn({
            let (app, barrier) = (Arc::clone(&app.app), Arc::clone(&barrier));
            let (other, child) = (other.id.clone(), detached_child.id.clone());
            async move {
                barrier.wait().await;
                grouping::detach(&app, &other, &child, None).await
            }
        });
        let grouped = settled(grouping_task.await.unwrap(), &format!("round {round}"));
        assert!(grouped.is_ok(), "round {round}: {grouped:?}");
        let detached = detach_task.await.unwrap();
        let guardians = guardians_of(&app, &detached_child.id).await;
        // Either the school's detachment came first (the child has the new
        // account only), or the grouping did (the child is the principal's
        // and there was nothing left to detach).
        let outcome = match detached {
            Ok(detached) if guardians.keys().eq([&detached.guardian.id]) => continue,
            Err(DetachError::NotAttached(..)) if guardians.keys().eq([&principal.id]) => continue,
            Ok(detached) => format!(
                "detached to {}, the child's guardians are {guardians:?} (principal {})",
                detached.guardian.id, principal.id
            ),
            Err(e) => format!("{e:?}, the child's guardians are {guardians:?}"),
        };
        failures.push(format!("round {round}: {outcome}"));
    }
    assert!(
        failures.is_empty(),
        "a detachment and a grouping interleaved:\n{}",
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_link_racing_the_grouping_of_its_guardian_never_attaches_to_a_closed_account() {
    let app = spawn_app().await;
    let uai = app.establishment(UAI, "Collège Jean Moulin").await;
    let mut failures = Vec::new();
    for round in 0..20 {
        let principal = guardian(&app, &format!("p{round}.course")).await;
        let other = guardian(&app, &format!("x{round}.course")).await;
        let first = student(&app, &uai, &format!("s{round}.course")).await;
        let newcomer = student(&app, &uai, &format!("n{round}.course")).await;
        link(&app, &other, &first, 1).await;

        let barrier = Arc::new(Barrier::new(2));
        let grouping_task = tokio::spawn({
            let (app, barrier) = (Arc::clone(&app.app), Arc::clone(&barrier));
            let (principal, other) = (principal.id.clone(), other.id.clone());
            async move {
                barrier.wait().await;
                grouping::group(&app, &principal, &other).await
            }
        });
        let link_task = tokio::spawn({
            let (app, barrier) = (Arc::clone(&app.app), Arc::clone(&barrier));
            let (other, child) = (other.id.clone(), newcomer.id.clone());
            async move {
                barrier.wait().await;
                let now = app.now();
                store::link_guardian(&app.db, &other, &child, Rank::new(2).unwrap(), now).await
            }
        });
        let grouped = settled(grouping_task.await.unwrap(), &format!("round {round}"));
        assert!(grouped.is_ok(), "round {round}: {grouped:?}");
        let linked = link_task.await.unwrap();
        let guardians = guardians_of(&app, &newcomer.id).await;
        // Either the link came first and the grouping moved it to the
        // principal, or the grouping did and the link found a closed account.
        let outcome = match linked {
            Ok(()) if guardians.keys().eq([&principal.id]) => continue,
            Err(AccountError::UnknownAccount(_)) if guardians.is_empty() => continue,
            Ok(()) => format!(
                "linked, the newcomer's guardians are {guardians:?} (principal {}, closed {})",
                principal.id, other.id
            ),
            Err(e) => format!("{e:?}, the newcomer's guardians are {guardians:?}"),
        };
        failures.push(format!("round {round}: {outcome}"));
    }
    assert!(
        failures.is_empty(),
        "a link and a grouping interleaved:\n{}",
        failures.join("\n")
    );
}
