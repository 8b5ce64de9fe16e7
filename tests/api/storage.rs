//! The relational store and the short-lived store, through the same code on
//! SQLite and PostgreSQL, in-process and Redis (see `spawn_app`).

use std::time::Duration;

use clef::accounts::store::{self as accounts, NewAccount};
use clef::accounts::{AccountError, AccountKind, AccountState, EstablishmentChange};
use clef::domain::{Identifier, PersonName, Rank, Uai};

use crate::helpers::*;

#[tokio::test]
async fn migrations_are_idempotent() {
    let app = spawn_app().await;
    clef::storage::migrator().run(&app.app.db).await.unwrap();
    clef::storage::migrator().run(&app.app.db).await.unwrap();
    assert_eq!(app.count("accounts").await, 0);
}

#[tokio::test]
async fn accounts_establishments_and_guardianships_round_trip() {
    let app = spawn_app().await;
    let family = app.family().await;
    let found =
        accounts::account_by_identifier(&app.app.db, &Identifier::parse("lea.martin").unwrap())
            .await
            .unwrap()
            .unwrap();
    assert_eq!(found.id, family.children[0].id);
    assert_eq!(found.kind, AccountKind::Student);
    assert_eq!(found.state, AccountState::Active);
    assert_eq!(found.birthdate.as_deref(), Some("2013-05-14"));
    assert_eq!(found.class_name.as_deref(), Some("5 B"));
    let children = accounts::children(&app.app.db, &family.guardian.id)
        .await
        .unwrap();
    assert_eq!(children.len(), 2);
    let school_of = |id: &str| {
        children
            .iter()
            .find(|c| c.id == id)
            .unwrap()
            .establishment
            .clone()
            .unwrap()
    };
    assert_eq!(school_of(&family.children[0].id).uai, "0590001A");
    assert_eq!(
        school_of(&family.children[1].id).name,
        "Lycée Albert Châtelet"
    );
    assert!(children.iter().all(|c| c.rank == 1));

    // Linking again changes the rank in place, without a second row.
    accounts::link_guardian(
        &app.app.db,
        &family.guardian.id,
        &family.children[0].id,
        Rank::new(2).unwrap(),
        0,
    )
    .await
    .unwrap();
    assert_eq!(app.count("guardianships").await, 2);
    let children = accounts::children(&app.app.db, &family.guardian.id)
        .await
        .unwrap();
    assert_eq!(
        children
            .iter()
            .find(|c| c.id == family.children[0].id)
            .unwrap()
            .rank,
        2
    );
}

#[tokio::test]
async fn identifiers_and_uai_are_unique() {
    let app = spawn_app().await;
    app.family().await;
    let new = NewAccount {
        identifier: Identifier::parse("claire.martin").unwrap(),
        kind: AccountKind::Guardian,
        state: AccountState::Active,
        given_name: PersonName::parse("prénom", "Claire").unwrap(),
        family_name: PersonName::parse("nom", "Martin").unwrap(),
        birthdate: None,
        email: None,
        email_verified: false,
        establishment: None,
        password_hash: None,
    };
    let before = app.count("accounts").await;
    assert!(matches!(
        accounts::create_account(&app.app.db, new, 0).await,
        Err(AccountError::IdentifierTaken(_))
    ));
    assert_eq!(app.count("accounts").await, before);
    let uai = Uai::parse("0590001A").unwrap();
    assert!(matches!(
        accounts::create_establishment(
            &app.app.db,
            &uai,
            &EstablishmentChange::named("Doublon"),
            0
        )
        .await,
        Err(AccountError::UaiTaken(_))
    ));
}

#[tokio::test]
async fn guardianships_join_a_guardian_to_a_student_only() {
    let app = spawn_app().await;
    let family = app.family().await;
    let rank = Rank::new(1).unwrap();
    let (guardian, student) = (&family.guardian.id, &family.children[0].id);
    assert!(matches!(
        accounts::link_guardian(&app.app.db, student, guardian, rank, 0).await,
        Err(AccountError::WrongKind(..))
    ));
    assert!(matches!(
        accounts::link_guardian(&app.app.db, guardian, "nobody", rank, 0).await,
        Err(AccountError::UnknownAccount(_))
    ));
    assert_eq!(app.count("guardianships").await, 2);
}

#[tokio::test]
async fn the_schema_refuses_states_and_kinds_it_does_not_know() {
    let app = spawn_app().await;
    let insert = |state: &'static str, kind: &'static str| {
        sqlx::query(
            "INSERT INTO accounts (id, identifier, kind, state, given_name, family_name, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 'A', 'B', 0, 0)",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(kind)
        .bind(state)
        .execute(&app.app.db)
    };
    assert!(insert("suspended", "guardian").await.is_err());
    assert!(insert("active", "teacher").await.is_err());
    assert!(
        insert("active", "student").await.is_err(),
        "a student needs an establishment and a class"
    );
    assert!(insert("provisional", "guardian").await.is_ok());
}

#[tokio::test]
async fn the_short_lived_store_takes_once_counts_and_expires() {
    let app = spawn_app().await;
    let store = &app.app.store;
    store.put("k", "v", Duration::from_secs(60)).await.unwrap();
    assert_eq!(store.get("k").await.unwrap().as_deref(), Some("v"));
    // Of many concurrent takers, exactly one gets the value.
    assert_eq!(concurrent_takers_served(store, "k", 16).await, 1);
    assert_eq!(store.incr("n", Duration::from_secs(60)).await.unwrap(), 1);
    assert_eq!(store.incr("n", Duration::from_secs(60)).await.unwrap(), 2);
    store
        .put("short", "v", Duration::from_millis(50))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(
        store.get("short").await.unwrap(),
        None,
        "entries expire by their time to live"
    );
    store.delete("n").await.unwrap();
    assert_eq!(store.get("n").await.unwrap(), None);
    store.ping().await.unwrap();
}

/// A plain limit (`free` attempts, then a lock of `window`) forgets its count
/// when the lock ends, by the app's clock to the millisecond: the attempt
/// made the moment the lock is over starts a new count, not a new lock; one
/// made a moment before is refused. A counter an earlier version wrote in
/// seconds is read as such, and one this version writes holds the seconds
/// an earlier version reads. Both stores.
#[tokio::test]
async fn a_limit_forgets_its_count_when_its_lock_ends() {
    use clef::storage::{Attempt, Backoff};
    let app = spawn_app().await;
    let store = &app.app.store;
    let rule = Backoff {
        free: 2,
        first_delay: 30,
        max_delay: 30,
        window: Duration::from_secs(30),
    };
    let t = app.app.now_ms();
    for count in 1..=2 {
        assert_eq!(
            store.attempt("limit", &rule, t).await.unwrap(),
            Attempt::Admitted { count }
        );
    }
    for (elapsed, retry_after) in [(1_500, 29), (29_999, 1)] {
        assert_eq!(
            store.attempt("limit", &rule, t + elapsed).await.unwrap(),
            Attempt::Refused { retry_after }
        );
    }
    let at = t + 30_000;
    assert_eq!(
        store.attempt("limit", &rule, at).await.unwrap(),
        Attempt::Admitted { count: 1 }
    );
    // Its first fields in seconds, as an earlier version reads them.
    assert_eq!(
        store.get("limit").await.unwrap().unwrap(),
        format!("1:{}:{}:{at}:{at}", (at + 999) / 1000, at / 1000)
    );

    let seconds = t / 1000;
    store
        .put(
            "old",
            &format!("2:{}:{seconds}", seconds + 30),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .attempt("old", &rule, seconds * 1000 + 10_000)
            .await
            .unwrap(),
        Attempt::Refused { retry_after: 20 }
    );
    assert_eq!(
        store
            .attempt("old", &rule, seconds * 1000 + 30_000)
            .await
            .unwrap(),
        Attempt::Admitted { count: 1 }
    );
}
