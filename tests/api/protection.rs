//! Login protection (SPEC §3.1, issue 6): attempts counted before they are
//! checked, client addresses read through trusted proxies only, a delay that an
//! attacker who knows an identifier cannot turn against its owner, and the
//! sessions a password change ends. Run on the in-process store and, in CI, on Redis.

use std::collections::HashMap;

use tokio::task::JoinSet;

use crate::helpers::*;

/// The login page, for its CSRF field and cookie.
async fn login_page(app: &TestApp, browser: &reqwest::Client) -> String {
    page_text(browser, &app.url("/login")).await
}

/// POSTs the login form of the Clef at `address`, as from `forwarded_for`
/// behind the proxy when given.
async fn login_from(
    address: &str,
    browser: &reqwest::Client,
    page: &str,
    identifier: &str,
    password: &str,
    forwarded_for: Option<&str>,
) -> reqwest::Response {
    let form = [
        ("csrf", input_value(page, "csrf").expect("csrf field")),
        ("identifier", identifier.to_owned()),
        ("password", password.to_owned()),
    ];
    let mut request = browser.post(format!("{address}/login")).form(&form);
    if let Some(client) = forwarded_for {
        request = request.header("x-forwarded-for", client);
    }
    request.send().await.unwrap()
}

/// Sends `n` wrong logins at once (identifier chosen per attempt) and tallies the statuses.
async fn storm(
    app: &TestApp,
    n: usize,
    identifier: impl Fn(usize) -> String,
    forwarded_for: impl Fn(usize) -> Option<String>,
) -> HashMap<u16, usize> {
    let browser = browser();
    let page = login_page(app, &browser).await;
    let mut attempts = JoinSet::new();
    for i in 0..n {
        let (browser, page, address) = (browser.clone(), page.clone(), app.address.clone());
        let (identifier, forwarded) = (identifier(i), forwarded_for(i));
        attempts.spawn(async move {
            let response = login_from(
                &address,
                &browser,
                &page,
                &identifier,
                "Mauvais0000",
                forwarded.as_deref(),
            );
            response.await.status().as_u16()
        });
    }
    let mut tally = HashMap::new();
    while let Some(status) = attempts.join_next().await {
        *tally.entry(status.unwrap()).or_default() += 1;
    }
    tally
}

#[tokio::test]
async fn parallel_wrong_passwords_on_one_account_are_checked_at_most_five_times() {
    let app = spawn_app().await;
    app.family().await;
    let tally = storm(&app, 60, |_| "claire.martin".into(), |_| None).await;
    // 401: the password was checked (and wrong); 429: refused before any check.
    assert_eq!(tally.get(&401), Some(&5), "{tally:?}");
    assert_eq!(tally.get(&429), Some(&55), "{tally:?}");
}

#[tokio::test]
async fn a_spray_over_many_identifiers_from_one_address_is_checked_at_most_a_hundred_times() {
    let app = spawn_app().await;
    let tally = storm(&app, 160, |i| format!("parent.inconnu{i}"), |_| None).await;
    assert_eq!(tally.get(&401), Some(&100), "{tally:?}");
    assert_eq!(tally.get(&429), Some(&60), "{tally:?}");
}

#[tokio::test]
async fn forwarding_headers_from_an_untrusted_peer_do_not_escape_the_address_limit() {
    let app = spawn_app().await;
    let tally = storm(
        &app,
        110,
        |i| format!("parent.inconnu{i}"),
        |i| Some(format!("198.51.100.{}", i % 250)),
    )
    .await;
    assert_eq!(tally.get(&401), Some(&100), "{tally:?}");
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_family_is_counted_at_its_own_address() {
    let app = spawn_app_behind_proxy().await;
    app.family().await;
    // One address sprays until it is locked out…
    let tally = storm(
        &app,
        110,
        |i| format!("parent.inconnu{i}"),
        |_| Some("203.0.113.66".into()),
    )
    .await;
    assert_eq!(tally.get(&401), Some(&100), "{tally:?}");
    assert_eq!(tally.get(&429), Some(&10), "{tally:?}");
    // …and a parent behind the same proxy, at another address, signs in.
    let parent = browser();
    let page = login_page(&app, &parent).await;
    let signed_in = login_from(
        &app.address,
        &parent,
        &page,
        "claire.martin",
        PASSWORD,
        Some("192.0.2.1, 198.51.100.23"),
    )
    .await;
    assert_eq!(signed_in.status(), 303);
    // The attacker cannot pick the address counted by writing its own first hop.
    let attacker = browser();
    let page = login_page(&app, &attacker).await;
    let spoofing = login_from(
        &app.address,
        &attacker,
        &page,
        "claire.martin",
        PASSWORD,
        Some("198.51.100.23, 203.0.113.66"),
    )
    .await;
    assert_eq!(
        spoofing.status(),
        429,
        "counted at 203.0.113.66, still locked"
    );
}

/// A school's address (one NAT for every computer) locked by a pupil's
/// spray: a parent who signed in from the school lately still signs in there
/// from a browser it never used, while an account never used from there
/// waits. A wrong password of hers is told as the lock is, so the lock tells
/// no one at the school which accounts are used from it.
#[tokio::test]
async fn a_school_s_address_locked_by_a_spray_still_lets_in_those_who_sign_in_from_it() {
    let app = spawn_app_behind_proxy().await;
    app.family().await;
    let school = Some("203.0.113.80");
    let from_school = |identifier: &'static str, password: &'static str| {
        let app = &app;
        async move {
            let browser = browser();
            let page = login_page(app, &browser).await;
            login_from(&app.address, &browser, &page, identifier, password, school).await
        }
    };
    assert_eq!(from_school("claire.martin", PASSWORD).await.status(), 303);

    let tally = storm(
        &app,
        110,
        |i| format!("parent.inconnu{i}"),
        |_| school.map(str::to_owned),
    )
    .await;
    assert_eq!(tally.get(&401), Some(&100), "{tally:?}");
    assert_eq!(tally.get(&429), Some(&10), "{tally:?}");

    let retry_after = |response: &reqwest::Response| -> i64 {
        response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    let asked = std::time::Instant::now();
    let locked = from_school("lea.martin", PASSWORD).await;
    assert_eq!(locked.status(), 429, "never signed in from the school");
    let lock_ends_in = retry_after(&locked);
    let told = locked.text().await.unwrap();
    assert!(told.contains("Trop de tentatives ont échoué"), "{told}");
    let wrong = from_school("claire.martin", "Mauvais0000").await;
    assert_eq!(wrong.status(), 429, "told as the lock");
    // The lock's wait, less the time gone by between the two answers.
    let gone_by = asked.elapsed().as_secs() as i64 + 1;
    let wait = retry_after(&wrong);
    assert!(
        (lock_ends_in - gone_by..=lock_ends_in).contains(&wait),
        "the lock's wait: {wait} after {lock_ends_in}"
    );
    assert!(
        wrong
            .text()
            .await
            .unwrap()
            .contains("Trop de tentatives ont échoué")
    );
    let right = from_school("claire.martin", PASSWORD).await;
    assert_eq!(right.status(), 303, "signed in from the school before");
    // Her trail shows the wrong password as the failure it was.
    let claire = app.account_named("claire.martin").await.id;
    let mut trail: Vec<String> = sqlx::query_scalar(
        "SELECT outcome FROM audit_events WHERE event = 'login' AND account_id = $1",
    )
    .bind(&claire)
    .fetch_all(&app.app.db)
    .await
    .unwrap();
    trail.sort();
    assert_eq!(trail, ["failed", "ok", "ok"]);
}

/// A storm on accounts used from a locked address, all at once: however
/// many accounts, the address gets another hundred checks at most, each
/// answered as the lock.
#[tokio::test]
async fn a_storm_on_accounts_used_from_a_locked_address_is_checked_a_hundred_times_more_at_most() {
    let app = spawn_app_behind_proxy().await;
    let school = "203.0.113.81";
    // 150 accounts someone signed in to from the school (as a login marks them).
    let from_school = clef::accounts::throttle::Origin {
        address: school.parse().unwrap(),
        device: None,
    };
    for i in 0..150 {
        let identifier = format!("eleve.connu{i}");
        let marked = app.app.throttle.succeeded(
            &identifier,
            &from_school,
            clef::accounts::throttle::Admission::Open,
        );
        marked.await.unwrap();
    }
    let tally = storm(
        &app,
        100,
        |i| format!("parent.inconnu{i}"),
        |_| Some(school.to_owned()),
    )
    .await;
    assert_eq!(tally.get(&401), Some(&100), "{tally:?}");

    let tally = storm(
        &app,
        150,
        |i| format!("eleve.connu{i}"),
        |_| Some(school.to_owned()),
    )
    .await;
    assert_eq!(
        tally.get(&429),
        Some(&150),
        "all told as the lock: {tally:?}"
    );
    let checked: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_events WHERE event = 'login' AND outcome = 'failed'",
    )
    .fetch_one(&app.app.db)
    .await
    .unwrap();
    assert_eq!(
        checked,
        100 + 100,
        "the spray's hundred, then a hundred more"
    );
}

#[tokio::test]
async fn an_attacker_who_knows_the_identifier_cannot_keep_the_parent_out() {
    let app = spawn_app().await;
    app.family().await;
    // The parent has signed in from this browser before.
    let parent = browser();
    let page = login_page(&app, &parent).await;
    let first = login_from(
        &app.address,
        &parent,
        &page,
        "claire.martin",
        PASSWORD,
        None,
    )
    .await;
    assert_eq!(first.status(), 303);

    // The attacker exhausts the free attempts; then each checked attempt
    // doubles the wait before the next (2 s, 4 s, 8 s…).
    let attacker = browser();
    let attack_page = login_page(&app, &attacker).await;
    let attack = || {
        login_from(
            &app.address,
            &attacker,
            &attack_page,
            "claire.martin",
            "Devine123",
            None,
        )
    };
    for _ in 0..5 {
        assert_eq!(attack().await.status(), 401);
    }
    let mut waits = vec![];
    for _ in 0..6 {
        let refused = attack().await;
        assert_eq!(refused.status(), 429);
        let wait = retry_after(&refused);
        waits.push(wait);
        app.clock.advance(wait as i64);
        assert_eq!(
            attack().await.status(),
            401,
            "checked once the wait is over"
        );
    }
    // Seconds of real time may pass while the test runs, never more than a few.
    let expected = [2, 4, 8, 16, 32, 64];
    assert!(
        waits
            .iter()
            .zip(expected)
            .all(|(w, e)| *w <= e && *w + 3 >= e),
        "{waits:?}"
    );

    // Attempts made while waiting are not checked and do not push the wait further.
    let first = retry_after(&attack().await);
    app.clock.advance(10);
    for _ in 0..20 {
        let refused = attack().await;
        assert_eq!(refused.status(), 429);
        assert!(
            retry_after(&refused) <= first - 10,
            "not renewed by refused attempts"
        );
    }

    // The parent's browser is not held back: the right password passes at once.
    let page = login_page(&app, &parent).await;
    let signed_in = login_from(
        &app.address,
        &parent,
        &page,
        "claire.martin",
        PASSWORD,
        None,
    )
    .await;
    assert_eq!(
        signed_in.status(),
        303,
        "the device cookie is a way through"
    );

    // Without the device cookie, the real password waits its turn like any
    // other attempt, then passes: a delay, never a lock.
    let new_browser = browser();
    let page = login_page(&app, &new_browser).await;
    let waiting = login_from(
        &app.address,
        &new_browser,
        &page,
        "claire.martin",
        PASSWORD,
        None,
    )
    .await;
    assert_eq!(waiting.status(), 429);
    assert!(
        waiting.text().await.unwrap().contains("Patientez"),
        "the page says how long to wait"
    );
    app.clock.advance(first as i64);
    let after_the_wait = login_from(
        &app.address,
        &new_browser,
        &page,
        "claire.martin",
        PASSWORD,
        None,
    )
    .await;
    assert_eq!(after_the_wait.status(), 303);

    // However long the attack, the wait stays within five minutes (the count
    // started again at the real sign-in above).
    let mut checked = 0;
    while checked < 14 {
        let response = attack().await;
        if response.status() == 429 {
            let wait = retry_after(&response);
            assert!(wait <= 300, "{wait}");
            app.clock.advance(wait as i64);
        } else {
            checked += 1;
        }
    }
    let capped = retry_after(&attack().await);
    assert!((290..=300).contains(&capped), "{capped}");
}

fn retry_after(response: &reqwest::Response) -> u64 {
    response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// A device proof holds for the password it was earned with: once the
/// password changes (or a reset, or a new letter), a browser that signed in
/// before — whoever knew the old password — waits like any other, while the
/// browser the change was made in is remembered for the new one.
#[tokio::test]
async fn a_device_cookie_from_before_a_password_change_no_longer_passes_the_delay() {
    let app = spawn_app().await;
    app.family().await;
    let sign_in = |browser: reqwest::Client, password: &'static str| {
        let app = &app;
        async move {
            let page = login_page(app, &browser).await;
            login_from(
                &app.address,
                &browser,
                &page,
                "claire.martin",
                password,
                None,
            )
            .await
            .status()
        }
    };
    let old_browser = browser();
    assert_eq!(sign_in(old_browser.clone(), PASSWORD).await, 303);
    let parent = browser();
    assert_eq!(sign_in(parent.clone(), PASSWORD).await, 303);
    change_password(&app, &parent, "Cartable2026").await;

    // Someone else delays the account.
    let attacker = browser();
    for _ in 0..6 {
        sign_in(attacker.clone(), "Devine123").await;
    }
    assert_eq!(sign_in(attacker.clone(), "Devine123").await, 429);

    assert_eq!(
        sign_in(old_browser, "Cartable2026").await,
        429,
        "the old password's proof is no way through"
    );
    assert_eq!(
        sign_in(parent, "Cartable2026").await,
        303,
        "the browser the change was made in is"
    );
}

/// A family computer holds proofs for four accounts: a password changed in
/// it replaces its account's proof, and pushes out no other account's.
#[tokio::test]
async fn a_new_password_replaces_its_own_proof_not_another_accounts() {
    let app = spawn_app().await;
    app.family().await;
    app.account(
        "paul.durand",
        clef::accounts::AccountKind::Guardian,
        None,
        None,
    )
    .await;
    let family_pc = browser();
    for identifier in ["lea.martin", "hugo.martin", "paul.durand", "claire.martin"] {
        let page = login_page(&app, &family_pc).await;
        let signed_in =
            login_from(&app.address, &family_pc, &page, identifier, PASSWORD, None).await;
        assert_eq!(signed_in.status(), 303, "{identifier}");
    }
    change_password(&app, &family_pc, "Cartable2026").await;

    // Léa's account is delayed by someone else; her proof still lets her in.
    let attacker = browser();
    let attack_page = login_page(&app, &attacker).await;
    for _ in 0..7 {
        login_from(
            &app.address,
            &attacker,
            &attack_page,
            "lea.martin",
            "Devine123",
            None,
        )
        .await;
    }
    let page = login_page(&app, &family_pc).await;
    let lea = login_from(
        &app.address,
        &family_pc,
        &page,
        "lea.martin",
        PASSWORD,
        None,
    )
    .await;
    assert_eq!(lea.status(), 303, "the oldest proof was kept");
}

#[tokio::test]
async fn a_device_cookie_for_one_account_does_not_open_another() {
    let app = spawn_app().await;
    app.family().await;
    let browser = browser();
    let page = login_page(&app, &browser).await;
    assert_eq!(
        login_from(&app.address, &browser, &page, "lea.martin", PASSWORD, None)
            .await
            .status(),
        303
    );
    let page = login_page(&app, &browser).await;
    let tally_before_lock: Vec<u16> = {
        let mut statuses = vec![];
        for _ in 0..6 {
            statuses.push(
                login_from(
                    &app.address,
                    &browser,
                    &page,
                    "claire.martin",
                    "Devine123",
                    None,
                )
                .await
                .status()
                .as_u16(),
            );
        }
        statuses
    };
    assert_eq!(tally_before_lock, [401, 401, 401, 401, 401, 429]);
}

/// Signs `identifier` in from a new browser; returns the browser.
async fn signed_in(app: &TestApp, identifier: &str) -> reqwest::Client {
    let browser = browser();
    let page = login_page(app, &browser).await;
    let response = login_from(&app.address, &browser, &page, identifier, PASSWORD, None).await;
    assert_eq!(response.status(), 303);
    browser
}

#[tokio::test]
async fn wrong_current_passwords_on_my_account_are_limited_like_login() {
    let app = spawn_app().await;
    app.family().await;
    let browser = signed_in(&app, "claire.martin").await;
    let page = account_page(&app, &browser).await.text().await.unwrap();
    let csrf = input_value(&page, "csrf").unwrap();
    let mut attempts = JoinSet::new();
    for i in 0..15 {
        let (browser, url, csrf) = (
            browser.clone(),
            app.url(if i % 2 == 0 {
                "/compte/mot-de-passe"
            } else {
                "/compte/adresse"
            }),
            csrf.clone(),
        );
        attempts.spawn(async move {
            let form = [
                ("csrf", csrf.as_str()),
                ("current_password", "Devine123"),
                ("new_password", "Cartable2026"),
                ("new_password_confirmation", "Cartable2026"),
                ("email", "nouvelle@example.org"),
                ("email_confirmation", "nouvelle@example.org"),
            ];
            browser
                .post(url)
                .form(&form)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        });
    }
    let mut tally: HashMap<u16, usize> = HashMap::new();
    while let Some(status) = attempts.join_next().await {
        *tally.entry(status.unwrap()).or_default() += 1;
    }
    assert_eq!(tally.get(&400), Some(&5), "checked: {tally:?}");
    assert_eq!(tally.get(&429), Some(&10), "refused: {tally:?}");
}

#[tokio::test]
async fn a_password_change_ends_every_other_session_of_the_account() {
    let app = spawn_app().await;
    app.family().await;
    let (client_id, _) = app.client(false).await;
    let here = signed_in(&app, "claire.martin").await;
    let elsewhere = signed_in(&app, "claire.martin").await;
    let other_account = signed_in(&app, "lea.martin").await;

    let changed = change_password(&app, &here, "Cartable2026").await;
    assert!(
        changed
            .text()
            .await
            .unwrap()
            .contains("Votre mot de passe a été modifié.")
    );

    assert_eq!(
        account_page(&app, &here).await.status(),
        200,
        "this session goes on"
    );
    assert_signed_out(&app, &elsewhere, &client_id).await;
    assert_eq!(
        account_page(&app, &other_account).await.status(),
        200,
        "other accounts keep theirs"
    );
}

#[tokio::test]
async fn max_age_zero_and_prompt_login_force_a_new_login_within_the_same_second() {
    let app = spawn_app().await;
    app.family().await;
    let (client_id, _) = app.client(false).await;
    let browser = signed_in(&app, "claire.martin").await;
    for forcing in [("max_age", "0"), ("prompt", "login")] {
        let page = browser
            .get(authorize_url(&app, &client_id, &[forcing]))
            .send()
            .await
            .unwrap();
        assert_eq!(
            page.status(),
            200,
            "{forcing:?}: the login form, not a code"
        );
        let page = page.text().await.unwrap();
        assert!(page.contains("name=\"password\""));
        // Resuming the request with the session that was not good enough is refused.
        let request = input_value(&page, "request").unwrap();
        let resumed = browser
            .get(app.url(&format!("/continuer?request={request}")))
            .send()
            .await
            .unwrap();
        assert_eq!(
            location_param(&resumed, "error").as_deref(),
            Some("login_required"),
            "{forcing:?}"
        );
        assert!(location_param(&resumed, "code").is_none());
    }
    // A real new login answers it.
    let page = browser
        .get(authorize_url(&app, &client_id, &[("max_age", "0")]))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let back = submit_login(&app, &browser, &page, "claire.martin", PASSWORD).await;
    assert!(location_param(&back, "code").is_some());
}

#[tokio::test]
async fn wrong_birth_dates_at_first_connection_are_limited_like_login_and_by_a_count_of_the_letter()
{
    let app = spawn_app().await;
    app.establishment("0590001A", "Collège Jean Moulin").await;
    let csv = "student_id,family_name,given_name,birthdate,class,guardian1_family_name,guardian1_given_name,guardian1_email\n\
               1001,Baillet,Julie,03/09/2012,5 B,Baillet,Marc,marc@example.org\n";
    app.import("0590001A", csv.as_bytes()).await.unwrap();
    let letter = app
        .letters("0590001A")
        .await
        .into_iter()
        .find(|l| l.identifier == "marc.baillet")
        .expect("the guardian's letter");
    let browser = browser();
    // Signs in with the letter, past the login counters' delay that refused
    // guesses start: the first connection's form follows.
    let sign_in = || async {
        app.clock.advance(300);
        let page = login_page(&app, &browser).await;
        let response = login_from(
            &app.address,
            &browser,
            &page,
            "marc.baillet",
            &letter.password,
            None,
        )
        .await;
        assert_eq!(location(&response), "/premiere-connexion");
    };
    let submit = |birthdate: &'static str| {
        let browser = browser.clone();
        let url = app.url("/premiere-connexion");
        async move {
            let form_page = page_text(&browser, &url).await;
            let csrf = input_value(&form_page, "csrf").unwrap();
            browser
                .post(&url)
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("birthdate", birthdate),
                    ("password", "Cartable2026"),
                    ("password_confirmation", "Cartable2026"),
                    ("email", "marc@example.org"),
                    ("email_confirmation", "marc@example.org"),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let guesses = |n: usize| async move {
        let mut statuses = vec![];
        for _ in 0..n {
            statuses.push(submit("01/01/2000").await.status().as_u16());
        }
        statuses
    };
    sign_in().await;
    // The letter's login succeeded from this browser, so it is counted on its
    // own device counter: five checks, then a wait.
    assert_eq!(guesses(7).await, [400, 400, 400, 400, 400, 429, 429]);
    // Signing in with the letter again clears the login's counters, not the
    // birth date's own: ten guesses a day in all, however many sign-ins.
    sign_in().await;
    assert_eq!(guesses(5).await, [400, 400, 400, 400, 400]);
    // At once, the login's own delay running too: the day is the wait told,
    // not a few seconds after which nothing would be checked.
    let at_once = submit("01/01/2000").await;
    assert_eq!(at_once.status(), 429);
    let page = at_once.text().await.unwrap();
    assert!(page.contains(&fr("Patientez 24 heures")), "{page}");
    sign_in().await;
    let refused = submit("01/01/2000").await;
    assert_eq!(refused.status(), 429, "the eleventh guess of the day");
    let page = refused.text().await.unwrap();
    assert!(
        page.contains(&fr("Patientez 24 heures avant de réessayer, ou demandez de l&#x27;aide à l&#x27;établissement.")),
        "a day, told in hours; help from the school, not « mot de passe oublié »: {page}"
    );
    // The day over, one more guess, not ten: the count runs for the letter's
    // months, not for a day.
    app.clock.advance(24 * 3600);
    sign_in().await;
    assert_eq!(guesses(2).await, [400, 429]);
    // The next day, the right birth date still opens the letter.
    app.clock.advance(24 * 3600);
    sign_in().await;
    let response = submit("03/09/2012").await;
    assert_eq!(response.status(), 200);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Compte en attente de validation")
    );
}

/// A letter's holder has never signed in, so has no device cookie: the QR
/// code's proof (`appareil`) gives the browser that opens it one, and the
/// first connection passes while a stranger keeps the identifier's delay
/// going; a browser without it waits, and a forged or another letter's proof
/// gives nothing.
#[tokio::test]
async fn the_letter_s_qr_code_lets_its_holder_through_a_stranger_s_delay() {
    let app = spawn_app().await;
    app.establishment("0590001A", "Collège Jean Moulin").await;
    let csv = "student_id,family_name,given_name,birthdate,class,guardian1_family_name,guardian1_given_name\n\
               1001,Baillet,Julie,2012-09-03,5 B,Baillet,Marc\n";
    app.import("0590001A", csv.as_bytes()).await.unwrap();
    let letters = app.letters("0590001A").await;
    let marc = letters
        .iter()
        .find(|l| l.identifier == "marc.baillet")
        .unwrap();
    let julie = letters
        .iter()
        .find(|l| l.identifier == "julie.baillet")
        .unwrap();
    assert!(
        marc.activation_url
            .contains("/activation?identifiant=marc.baillet&appareil="),
        "{}",
        marc.activation_url
    );

    // The QR code opened: the page at its address without the proof.
    let holder = browser();
    let opened = holder.get(&marc.activation_url).send().await.unwrap();
    assert_eq!(opened.status(), 303);
    assert_eq!(location(&opened), "/activation?identifiant=marc.baillet");
    // Another letter's proof, or a forged one, under this identifier.
    let (stranger, forger) = (browser(), browser());
    let proof_of = |url: &str| url.split_once("&appareil=").unwrap().1.to_owned();
    for (who, proof) in [
        (&stranger, proof_of(&julie.activation_url)),
        (&forger, format!("{}A", proof_of(&marc.activation_url))),
    ] {
        let url = app.url(&format!(
            "/activation?identifiant=marc.baillet&appareil={proof}"
        ));
        assert_eq!(who.get(url).send().await.unwrap().status(), 303);
    }

    // A stranger keeps the identifier's delay going.
    let attacker = browser();
    let attack_page = login_page(&app, &attacker).await;
    for _ in 0..6 {
        login_from(
            &app.address,
            &attacker,
            &attack_page,
            "marc.baillet",
            "Devine123",
            None,
        )
        .await;
    }
    for (who, passes) in [(&stranger, false), (&forger, false), (&holder, true)] {
        let page = login_page(&app, who).await;
        let tried = login_from(
            &app.address,
            who,
            &page,
            "marc.baillet",
            &marc.password,
            None,
        )
        .await;
        let status = tried.status();
        if passes {
            assert_eq!(
                status, 303,
                "the letter's browser goes on to its first connection"
            );
            assert!(
                location(&tried).contains("premiere-connexion"),
                "{}",
                location(&tried)
            );
        } else {
            assert_eq!(status, 429, "held back with everyone else");
        }
    }
}
