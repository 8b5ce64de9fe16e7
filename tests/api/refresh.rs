//! Refresh tokens, introspection and revocation (RFC 6749 §6, RFC 7662,
//! RFC 7009; issue 7): rotation on every use, reuse revoking the family, a
//! grace window for a client's retry, and each client seeing only its own tokens.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use tokio::task::JoinSet;

use crate::helpers::*;

type ClientCreds = (String, Option<String>);

/// Signs Claire in through `client` and exchanges the code; returns the token response.
async fn sign_in(app: &TestApp, client: &ClientCreds, extra: &[(&str, &str)]) -> Value {
    let url = authorize_url(app, &client.0, extra);
    let back = authorize_and_login(app, &browser(), &url, "claire.martin").await;
    let code = location_param(&back, "code").expect("a code");
    let response = exchange(app, client, &code, None).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// POSTs a form to `path` authenticated as `client` (client_secret_post).
async fn post(
    app: &TestApp,
    client: &ClientCreds,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut form: Vec<(&str, &str)> = form.to_vec();
    form.push(("client_id", &client.0));
    if let Some(secret) = &client.1 {
        form.push(("client_secret", secret));
    }
    post_form(app.url(path), &form).await
}

/// POSTs a form to `url` (for requests sent from spawned tasks).
async fn post_form(url: String, form: &[(&str, &str)]) -> reqwest::Response {
    reqwest::Client::new()
        .post(url)
        .form(form)
        .send()
        .await
        .unwrap()
}

async fn refresh(app: &TestApp, client: &ClientCreds, token: &str) -> reqwest::Response {
    post(
        app,
        client,
        "/token",
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
    )
    .await
}

async fn error_of(response: reqwest::Response) -> String {
    let body: Value = response.json().await.unwrap();
    body["error"].as_str().unwrap_or_default().to_owned()
}

fn claims(id_token: &str) -> Value {
    let payload = id_token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

async fn introspect(app: &TestApp, client: &ClientCreds, token: &str) -> Value {
    let response = post(app, client, "/introspect", &[("token", token)]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.json().await.unwrap()
}

fn text(value: &Value, name: &str) -> String {
    value[name]
        .as_str()
        .unwrap_or_else(|| panic!("{name} in {value}"))
        .to_owned()
}

#[tokio::test]
async fn a_refresh_rotates_the_token_and_keeps_the_sign_in_with_fresh_children() {
    let app = spawn_app().await;
    let family = app.family().await;
    let client = app.client(false).await;
    let first = sign_in(&app, &client, &[]).await;
    let first_claims = claims(&text(&first, "id_token"));
    assert_eq!(first_claims["children"].as_array().unwrap().len(), 2);

    // A third child is attached meanwhile: the refreshed ID token says so.
    let school = app.establishment("0590001A", "Collège Jean Moulin").await;
    let zoe = app
        .account(
            "zoe.martin",
            clef::accounts::AccountKind::Student,
            Some((&school, "6 A")),
            Some("2015-01-02"),
        )
        .await;
    clef::accounts::store::link_guardian(
        &app.app.db,
        &family.guardian.id,
        &zoe.id,
        clef::domain::Rank::new(1).unwrap(),
        app.app.now(),
    )
    .await
    .unwrap();
    app.clock.advance(60);

    let second = refresh(&app, &client, &text(&first, "refresh_token")).await;
    assert_eq!(second.status(), 200);
    assert_eq!(second.headers()["cache-control"], "no-store");
    let second: Value = second.json().await.unwrap();
    assert_ne!(second["refresh_token"], first["refresh_token"], "rotated");
    assert_ne!(second["access_token"], first["access_token"]);
    let refreshed = claims(&text(&second, "id_token"));
    for kept in ["sub", "sid", "auth_time", "iss", "aud"] {
        assert_eq!(refreshed[kept], first_claims[kept], "{kept}");
    }
    assert!(
        refreshed.get("nonce").is_none(),
        "OIDC Core §12.2: no nonce"
    );
    assert!(refreshed["iat"].as_i64() > first_claims["iat"].as_i64());
    assert_eq!(refreshed["children"].as_array().unwrap().len(), 3);
    assert_eq!(
        userinfo_status(&app, &text(&second, "access_token")).await,
        200
    );

    // A narrower scope may be asked; a wider one may not, and asking does not
    // spend the token: past the grace window, it still works.
    let wider = post(
        &app,
        &client,
        "/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &text(&second, "refresh_token")),
            ("scope", "openid profile phone"),
        ],
    )
    .await;
    assert_eq!(error_of(wider).await, "invalid_scope");
    // A scope Clef does not know was not granted either: refused, not dropped.
    let unknown = post(
        &app,
        &client,
        "/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &text(&second, "refresh_token")),
            ("scope", "openid admin"),
        ],
    )
    .await;
    assert_eq!(error_of(unknown).await, "invalid_scope");
    app.clock.advance(6);
    let narrower = post(
        &app,
        &client,
        "/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &text(&second, "refresh_token")),
            ("scope", "openid profile"),
        ],
    )
    .await;
    assert_eq!(narrower.status(), 200);
    let narrower: Value = narrower.json().await.unwrap();
    assert_eq!(narrower["scope"], "openid profile");
    assert!(
        claims(&text(&narrower, "id_token"))
            .get("children")
            .is_none()
    );
}

#[tokio::test]
async fn a_reused_refresh_token_revokes_its_whole_family_and_its_access_tokens() {
    let app = spawn_app().await;
    app.family().await;
    let client = app.client(false).await;
    let first = sign_in(&app, &client, &[]).await;
    let second: Value = refresh(&app, &client, &text(&first, "refresh_token"))
        .await
        .json()
        .await
        .unwrap();
    // Past the grace window, the first token comes back: stolen.
    app.clock.advance(6);
    let reused = refresh(&app, &client, &text(&first, "refresh_token")).await;
    assert_eq!(reused.status(), 400);
    assert_eq!(error_of(reused).await, "invalid_grant");
    // The thief's replay ends the legitimate holder's tokens too.
    let latest = refresh(&app, &client, &text(&second, "refresh_token")).await;
    assert_eq!(error_of(latest).await, "invalid_grant");
    assert_eq!(
        userinfo_status(&app, &text(&second, "access_token")).await,
        401
    );
    assert_eq!(
        userinfo_status(&app, &text(&first, "access_token")).await,
        401
    );
    assert_eq!(
        introspect(&app, &client, &text(&second, "refresh_token")).await["active"],
        false
    );
}

/// A client whose answer was lost retries at once and gets a successor;
/// the lost answer's token is over, and presented later (by a thief who
/// raced the client with a copy, or by the client holding it after all) it
/// betrays two holders: the family ends (RFC 9700 §4.14.2).
#[tokio::test]
async fn a_retry_within_the_grace_window_gets_a_successor_and_its_ended_twin_revokes_the_family() {
    let app = spawn_app().await;
    app.family().await;
    let client = app.client(false).await;
    let first = sign_in(&app, &client, &[]).await;
    let token = text(&first, "refresh_token");
    let lost = refresh(&app, &client, &token).await;
    assert_eq!(lost.status(), 200);
    let lost: Value = lost.json().await.unwrap();
    // The client never read that answer and retries at once.
    let retried = refresh(&app, &client, &token).await;
    assert_eq!(retried.status(), 200);
    let retried: Value = retried.json().await.unwrap();
    // The first answer's access token went with its refresh token; the
    // retry's works.
    assert_eq!(
        userinfo_status(&app, &text(&lost, "access_token")).await,
        401
    );
    assert_eq!(
        userinfo_status(&app, &text(&retried, "access_token")).await,
        200
    );
    // The family does not fork: the successor of the first use is over.
    let forked = refresh(&app, &client, &text(&lost, "refresh_token")).await;
    assert_eq!(error_of(forked).await, "invalid_grant");
    // Its holder showed up: two hold the family, which ends for both.
    assert_eq!(
        error_of(refresh(&app, &client, &text(&retried, "refresh_token")).await).await,
        "invalid_grant"
    );
    assert_eq!(
        userinfo_status(&app, &text(&retried, "access_token")).await,
        401
    );
}

/// The honest retry alone: the retry's token lives on, and the first token
/// presented once more within the window is a retry again.
#[tokio::test]
async fn a_retry_whose_lost_answer_never_shows_up_lives_on() {
    let app = spawn_app().await;
    app.family().await;
    let client = app.client(false).await;
    let first = sign_in(&app, &client, &[]).await;
    let token = text(&first, "refresh_token");
    assert_eq!(refresh(&app, &client, &token).await.status(), 200);
    let retried: Value = refresh(&app, &client, &token).await.json().await.unwrap();
    let next = refresh(&app, &client, &text(&retried, "refresh_token")).await;
    assert_eq!(next.status(), 200);
    let next: Value = next.json().await.unwrap();
    assert_eq!(
        userinfo_status(&app, &text(&next, "access_token")).await,
        200
    );
}

/// `uses` refreshes of `token` by `client` at once: their answers.
async fn at_once(
    app: &TestApp,
    client: &(String, Option<String>),
    token: &str,
    uses: usize,
) -> Vec<Value> {
    at_once_on(std::slice::from_ref(app), client, token, uses).await
}

/// `at_once`, the refreshes sent to each of `apps` in turn.
async fn at_once_on(
    apps: &[TestApp],
    client: &(String, Option<String>),
    token: &str,
    uses: usize,
) -> Vec<Value> {
    let mut attempts = JoinSet::new();
    for app in apps.iter().cycle().take(uses) {
        let (url, client, token) = (app.url("/token"), client.clone(), token.to_owned());
        attempts.spawn(async move {
            let form = [
                ("grant_type", "refresh_token"),
                ("refresh_token", token.as_str()),
                ("client_id", client.0.as_str()),
                ("client_secret", client.1.as_deref().unwrap()),
            ];
            post_form(url, &form).await.json::<Value>().await.unwrap()
        });
    }
    attempts.join_all().await
}

/// A hundred uses of one token at once, within the grace window (a client
/// and a thief racing it): each is answered, and every answer but the last
/// retry's ends, refresh and access token alike — the family never lives on
/// in two branches. On PostgreSQL the retries run in transactions side by
/// side: each waits for the family's row, so it sees and ends the successor
/// another retry just wrote.
#[tokio::test]
async fn concurrent_retries_within_the_grace_window_leave_one_live_branch() {
    // Two instances on one database where Redis is given, as in production.
    let apps = match crate::instances::two_instances().await {
        Some((one, two)) => vec![one, two],
        None => vec![spawn_app().await],
    };
    let app = &apps[0];
    app.family().await;
    let client = app.client(false).await;
    let first = sign_in(app, &client, &[]).await;
    let answers = at_once_on(&apps, &client, &text(&first, "refresh_token"), 100).await;
    let mut live = Vec::new();
    for (n, answer) in answers.iter().enumerate() {
        let access = answer["access_token"].as_str();
        let access = access.unwrap_or_else(|| panic!("every retry is answered: {answer}"));
        if userinfo_status(app, access).await == 200 {
            live.push(("access", n));
        }
        let refresh = answer["refresh_token"].as_str().unwrap();
        if introspect(app, &client, refresh).await["active"] == true {
            live.push(("refresh", n));
        }
    }
    assert!(
        matches!(live[..], [("access", a), ("refresh", r)] if a == r),
        "one live branch, both tokens of one answer, of {} answers: {live:?}",
        answers.len()
    );
}

#[tokio::test]
async fn without_grace_concurrent_uses_of_one_token_let_none_live_on() {
    let app = spawn_app_with(|config| config.refresh_token_grace = 0).await;
    app.family().await;
    let client = app.client(false).await;
    let first = sign_in(&app, &client, &[]).await;
    let successors: Vec<String> = at_once(&app, &client, &text(&first, "refresh_token"), 8)
        .await
        .iter()
        .filter_map(|a| a["refresh_token"].as_str().map(str::to_owned))
        .collect();
    assert!(
        successors.len() <= 1,
        "at most one use rotates: {}",
        successors.len()
    );
    // The others were reuses: the family is gone, the winner's successor with it.
    for successor in successors {
        assert_eq!(
            error_of(refresh(&app, &client, &successor).await).await,
            "invalid_grant"
        );
    }
}

#[tokio::test]
async fn a_client_cannot_use_introspect_or_revoke_another_clients_tokens() {
    let app = spawn_app().await;
    app.family().await;
    let owner = app.client(false).await;
    let other = app.client(false).await;
    let public = app.client(true).await;
    let tokens = sign_in(&app, &owner, &[]).await;
    let (access, refresh_token) = (
        text(&tokens, "access_token"),
        text(&tokens, "refresh_token"),
    );

    assert_eq!(
        error_of(refresh(&app, &other, &refresh_token).await).await,
        "invalid_grant"
    );
    for token in [&access, &refresh_token] {
        assert_eq!(
            introspect(&app, &other, token).await,
            serde_json::json!({"active": false})
        );
        // RFC 7009 §2.1: refused, and said so, for a confidential client.
        let refused = post(&app, &other, "/revoke", &[("token", token)]).await;
        assert_eq!(refused.status(), 400);
        assert_eq!(error_of(refused).await, "invalid_request");
        // A public client, which anyone can be, is answered as for an
        // unknown token: it cannot tell another's live token from a made-up one.
        assert_eq!(
            post(&app, &public, "/revoke", &[("token", token)])
                .await
                .status(),
            200
        );
        // Introspection asks for a client that authenticates (RFC 7662 §2.1).
        let scanning = post(&app, &public, "/introspect", &[("token", token)]).await;
        assert_eq!(scanning.status(), 401);
        // A 401 names its scheme (RFC 9110 §15.5.2).
        assert_eq!(
            scanning.headers()["www-authenticate"],
            "Basic realm=\"clef\""
        );
        assert_eq!(error_of(scanning).await, "invalid_client");
    }
    // Nothing happened to them: the owner still uses both.
    let active = introspect(&app, &owner, &access).await;
    assert_eq!(active["active"], true);
    assert_eq!(active["client_id"], owner.0.as_str());
    assert_eq!(active["token_type"], "Bearer");
    assert_eq!(active["sub"], claims(&text(&tokens, "id_token"))["sub"]);
    let refresh_described = introspect(&app, &owner, &refresh_token).await;
    assert_eq!(refresh_described["active"], true);
    assert!(
        refresh_described.get("token_type").is_none(),
        "an access token's type only (RFC 7662 §2.2): {refresh_described}"
    );
    assert_eq!(userinfo_status(&app, &access).await, 200);
    let rotated = refresh(&app, &owner, &refresh_token).await;
    assert_eq!(rotated.status(), 200);
    let rotated: Value = rotated.json().await.unwrap();

    // The owner revokes: the access token at once, the refresh token with its family.
    assert_eq!(
        post(&app, &owner, "/revoke", &[("token", &access)])
            .await
            .status(),
        200
    );
    assert_eq!(introspect(&app, &owner, &access).await["active"], false);
    assert_eq!(userinfo_status(&app, &access).await, 401);
    let latest = text(&rotated, "refresh_token");
    assert_eq!(
        post(&app, &owner, "/revoke", &[("token", &latest)])
            .await
            .status(),
        200
    );
    assert_eq!(
        error_of(refresh(&app, &owner, &latest).await).await,
        "invalid_grant"
    );
    assert_eq!(
        userinfo_status(&app, &text(&rotated, "access_token")).await,
        401
    );
    // Unknown tokens are answered alike (RFC 7009 §2.2).
    assert_eq!(
        post(&app, &owner, "/revoke", &[("token", "never-issued")])
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_client_without_the_refresh_grant_gets_no_refresh_token() {
    let app = spawn_app().await;
    app.family().await;
    let client = app
        .client_with(|new| {
            new.grant_types =
                Some(clef::oidc::clients::GrantTypes::parse("authorization_code").unwrap());
        })
        .await;
    let tokens = sign_in(&app, &client, &[]).await;
    assert!(tokens.get("refresh_token").is_none(), "{tokens}");
    let refused = post(
        &app,
        &client,
        "/token",
        &[("grant_type", "refresh_token"), ("refresh_token", "x")],
    )
    .await;
    assert_eq!(error_of(refused).await, "unauthorized_client");
}

#[tokio::test]
async fn third_party_clients_get_refresh_tokens_only_with_consented_offline_access() {
    let app = spawn_app().await;
    app.family().await;
    let client = app.third_party_client().await;
    for (scope, expected) in [
        ("openid profile", false),
        ("openid profile offline_access", true),
    ] {
        let browser = browser();
        let url = authorize_url(&app, &client.0, &[("scope", scope), ("prompt", "consent")]);
        let page = page_text(&browser, &url).await;
        let consent = submit_login(&app, &browser, &page, "claire.martin", PASSWORD).await;
        let consent_page = page_text(&browser, &app.url(&location(&consent))).await;
        if expected {
            assert!(
                consent_page.contains("pas connecté(e)"),
                "offline access is named"
            );
        }
        let accepted = answer_consent(&app, &browser, &consent_page, "accept").await;
        let code = location_param(&accepted, "code").expect("a code");
        let tokens: Value = exchanged(&app, &client, &code).await;
        assert_eq!(
            tokens.get("refresh_token").is_some(),
            expected,
            "{scope}: {tokens}"
        );
    }
}

/// A replayed code revokes the refresh family it started; also after its
/// access token was revoked: the thief who redeemed a stolen code first
/// cannot shield its refresh token from the victim's replay by revoking its
/// own access token (nor by waiting for it to expire), the code names the
/// family itself.
#[tokio::test]
async fn a_replayed_code_also_revokes_the_refresh_family_it_started() {
    let app = spawn_app().await;
    app.family().await;
    let client = app.client(false).await;
    for revoke_access_first in [false, true] {
        let back = authorize_and_login(
            &app,
            &browser(),
            &authorize_url(&app, &client.0, &[]),
            "claire.martin",
        )
        .await;
        let code = location_param(&back, "code").unwrap();
        let tokens: Value = exchanged(&app, &client, &code).await;
        if revoke_access_first {
            let access = text(&tokens, "access_token");
            let revoked = post(&app, &client, "/revoke", &[("token", &access)]).await;
            assert_eq!(revoked.status(), 200);
        }
        assert_eq!(exchange(&app, &client, &code, None).await.status(), 400);
        assert_eq!(
            error_of(refresh(&app, &client, &text(&tokens, "refresh_token")).await).await,
            "invalid_grant",
            "access token revoked first: {revoke_access_first}"
        );
    }
}

#[tokio::test]
async fn discovery_advertises_refresh_introspection_and_revocation() {
    let app = spawn_app().await;
    let metadata: Value = reqwest::get(app.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["introspection_endpoint"], app.url("/introspect"));
    // RFC 7662 §2.1: introspection is for clients that authenticate.
    assert!(
        !metadata["introspection_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&Value::from("none"))
    );
    assert_eq!(metadata["revocation_endpoint"], app.url("/revoke"));
    let grants = metadata["grant_types_supported"].as_array().unwrap();
    assert!(grants.contains(&Value::from("refresh_token")));
    assert!(
        metadata["scopes_supported"]
            .as_array()
            .unwrap()
            .contains(&Value::from("offline_access"))
    );
}

#[tokio::test]
async fn a_service_client_gets_tokens_for_itself_within_its_registered_scopes() {
    let app = spawn_app().await;
    let service = app
        .client_with(|new| {
            new.service_scopes = Some(vec!["annuaire:lecture".into(), "notes:lecture".into()]);
        })
        .await;
    let grant = |scope: Option<&'static str>| {
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend(scope.map(|s| ("scope", s)));
        form
    };
    let all = post(&app, &service, "/token", &grant(None)).await;
    assert_eq!(all.status(), 200);
    let all: Value = all.json().await.unwrap();
    assert_eq!(all["scope"], "annuaire:lecture notes:lecture");
    assert!(all.get("id_token").is_none() && all.get("refresh_token").is_none());
    let token = text(&all, "access_token");
    let described = introspect(&app, &service, &token).await;
    assert_eq!(described["active"], true);
    assert_eq!(
        described["sub"],
        service.0.as_str(),
        "the service is its own subject"
    );
    assert!(described.get("sid").is_none());
    // No person behind it: a good token, not for UserInfo (RFC 6750 §3.1),
    // so a client does not take it for an expired one.
    let userinfo = reqwest::Client::new()
        .get(app.url("/userinfo"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), 403);
    assert!(
        userinfo.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"insufficient_scope\"")
    );

    let narrower: Value = post(&app, &service, "/token", &grant(Some("notes:lecture")))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(narrower["scope"], "notes:lecture");
    let wider = post(&app, &service, "/token", &grant(Some("notes:ecriture"))).await;
    assert_eq!(error_of(wider).await, "invalid_scope");

    // A service-only client has no code flow.
    let service_only = app
        .client_with(|new| {
            new.service_scopes = Some(vec!["notes:lecture".into()]);
            new.grant_types =
                Some(clef::oidc::clients::GrantTypes::parse("client_credentials").unwrap());
        })
        .await;
    let authorize = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(authorize_url(&app, &service_only.0, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        location_param(&authorize, "error").as_deref(),
        Some("unauthorized_client")
    );
    assert_eq!(
        post(&app, &service_only, "/token", &grant(None))
            .await
            .status(),
        200
    );

    // A client not registered as a service may not.
    let ent = app.client(false).await;
    let refused = post(&app, &ent, "/token", &grant(None)).await;
    assert_eq!(refused.status(), 400);
    assert_eq!(error_of(refused).await, "unauthorized_client");
}

#[test]
fn service_scopes_are_rfc_6749_scope_tokens() {
    use clef::oidc::clients::parse_service_scopes;
    assert_eq!(
        parse_service_scopes("annuaire:lecture, notes:lecture").unwrap(),
        ["annuaire:lecture", "notes:lecture"]
    );
    for bad in ["", "  ", "a\"b", "a\\b", "é"] {
        assert!(parse_service_scopes(bad).is_err(), "{bad:?}");
    }
}

/// A refresh token given without `offline_access` continues the sign-in, not
/// the person's absence: its family ends when the session does, used or not,
/// as a logout would have ended it; `offline_access` outlives the session.
#[tokio::test]
async fn without_offline_access_a_refresh_family_ends_with_its_session() {
    let app = spawn_app_with(|config| config.session_ttl = 3600).await;
    app.family().await;
    let client = app.client(false).await;
    let online = sign_in(&app, &client, &[]).await;
    let offline = sign_in(&app, &client, &[("scope", "openid profile offline_access")]).await;
    assert!(text(&offline, "scope").contains("offline_access"));
    app.clock.advance(3000);
    let next = refresh(&app, &client, &text(&online, "refresh_token")).await;
    assert_eq!(next.status(), 200, "within the session");
    let next: Value = next.json().await.unwrap();
    app.clock.advance(601);
    assert_eq!(
        error_of(refresh(&app, &client, &text(&next, "refresh_token")).await).await,
        "invalid_grant",
        "the session is over"
    );
    let still = refresh(&app, &client, &text(&offline, "refresh_token")).await;
    assert_eq!(still.status(), 200, "offline access outlives the session");

    // A code from a session's last seconds, exchanged once it lapsed: no
    // refresh token born dead.
    let browser = browser();
    let url = authorize_url(&app, &client.0, &[]);
    authorize_and_login(&app, &browser, &url, "claire.martin").await;
    app.clock.advance(3590);
    let late = browser.get(&url).send().await.unwrap();
    let code = location_param(&late, "code").expect("a code from the live session");
    app.clock.advance(20);
    let tokens: Value = exchanged(&app, &client, &code).await;
    assert!(tokens["access_token"].is_string(), "{tokens}");
    assert!(tokens.get("refresh_token").is_none(), "{tokens}");
}

#[tokio::test]
async fn a_client_may_have_shorter_refresh_lifetimes_than_the_server() {
    let app = spawn_app().await;
    app.family().await;
    let short = app
        .client_with(|new| {
            new.refresh_lifetimes = clef::oidc::clients::RefreshLifetimes {
                idle: Some(60),
                absolute: Some(600),
            };
        })
        .await;
    let usual = app.client(false).await;
    let short_tokens = sign_in(&app, &short, &[]).await;
    let usual_tokens = sign_in(&app, &usual, &[]).await;
    app.clock.advance(61);
    let idle = refresh(&app, &short, &text(&short_tokens, "refresh_token")).await;
    assert_eq!(
        error_of(idle).await,
        "invalid_grant",
        "unused past its idle lifetime"
    );
    let fresh = refresh(&app, &usual, &text(&usual_tokens, "refresh_token")).await;
    assert_eq!(fresh.status(), 200);

    // Used within its idle lifetime, a token lives on, up to the family's end.
    let again = sign_in(&app, &short, &[]).await;
    let mut token = text(&again, "refresh_token");
    for _ in 0..5 {
        app.clock.advance(50);
        let next = refresh(&app, &short, &token).await;
        assert_eq!(next.status(), 200);
        token = text(&next.json().await.unwrap(), "refresh_token");
    }
    app.clock.advance(400);
    assert_eq!(
        error_of(refresh(&app, &short, &token).await).await,
        "invalid_grant",
        "the family ended"
    );
}

#[tokio::test]
async fn housekeeping_forgets_sessions_and_families_a_month_after_they_end_and_keeps_the_rest() {
    let app = spawn_app().await;
    app.family().await;
    let client = app.client(false).await;
    let revoked = sign_in(&app, &client, &[]).await;
    // Offline: its family outlives the sessions (those of the others end
    // with them, and go a month after).
    let live = sign_in(&app, &client, &[("scope", "openid profile offline_access")]).await;
    assert_eq!(
        post(
            &app,
            &client,
            "/revoke",
            &[("token", &text(&revoked, "refresh_token"))]
        )
        .await
        .status(),
        200
    );
    let day = 24 * 3600;
    let purge = |now| clef::oidc::housekeeping::purge(&app.app.db, now);

    // Within the month, nothing goes.
    let soon = purge(app.app.now() + 29 * day).await.unwrap();
    assert_eq!(soon, Default::default());
    // A month after the revocation, its family goes; the live one stays, and
    // sessions still open stay too (their 12 hours ended long before: they go).
    let later = purge(app.app.now() + 31 * day).await.unwrap();
    assert_eq!(later.refresh_families, 1);
    assert_eq!(later.sessions, 2);
    assert_eq!(app.count("refresh_families").await, 1);
    assert_eq!(app.count("session_clients").await, 0);
    assert_eq!(
        refresh(&app, &client, &text(&live, "refresh_token"))
            .await
            .status(),
        200
    );
}

/// The exchange-batch histogram's `(count, sum)`: transactions, and exchanges
/// written in them.
fn exchange_batches(app: &TestApp) -> (u64, f64) {
    let text = app.app.metrics.render().unwrap();
    let value = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("clef_exchange_write_batch_size_{name} ")))
            .unwrap_or_else(|| panic!("{name} in {text}"))
            .to_owned()
    };
    (
        value("count").parse().unwrap(),
        value("sum").parse().unwrap(),
    )
}

/// Code exchanges under way together share one transaction (group commit,
/// `oidc::ledger`) on this run's database: each answers a refresh token that
/// rotates, the families are all there, and the session records the client
/// once though every row of the batch names it.
#[tokio::test]
async fn concurrent_code_exchanges_are_written_together_and_each_refresh_token_works() {
    let app = spawn_app().await;
    app.family().await;
    let client = app.client(false).await;
    let browser = browser();
    let signed_in = authorize_and_login(
        &app,
        &browser,
        &authorize_url(&app, &client.0, &[]),
        "claire.martin",
    )
    .await;
    let mut codes = vec![location_param(&signed_in, "code").expect("a code")];
    while codes.len() < 24 {
        let url = authorize_url(&app, &client.0, &[("prompt", "none")]);
        let back = browser.get(url).send().await.unwrap();
        codes.push(location_param(&back, "code").expect("a code from the session"));
    }
    let (transactions_before, exchanges_before) = exchange_batches(&app);

    let mut exchanges = JoinSet::new();
    for code in codes {
        let (url, client) = (app.url("/token"), client.clone());
        exchanges.spawn(async move {
            let form = [
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT_URI),
                ("client_id", client.0.as_str()),
                ("client_secret", client.1.as_deref().unwrap()),
            ];
            let response = post_form(url, &form).await;
            assert_eq!(response.status(), 200);
            let body: Value = response.json().await.unwrap();
            text(&body, "refresh_token")
        });
    }
    let mut tokens = vec![];
    while let Some(token) = exchanges.join_next().await {
        tokens.push(token.unwrap());
    }

    let (transactions, exchanges) = exchange_batches(&app);
    assert_eq!(exchanges - exchanges_before, 24.0);
    assert!(transactions - transactions_before <= 24);
    assert_eq!(app.count("refresh_families").await, 24);
    assert_eq!(app.count("session_clients").await, 1);
    for token in tokens {
        assert_eq!(refresh(&app, &client, &token).await.status(), 200);
    }
}

/// The same through the ledger itself, so that a batch of many rows is
/// certain: 20 entries queued at once are written in fewer transactions, on
/// SQLite and on PostgreSQL alike, and their tokens work at the token endpoint.
#[tokio::test]
async fn entries_queued_at_once_are_written_in_one_batch_on_this_database() {
    use clef::oidc::ledger::Entry;
    use clef::oidc::refresh::{Family, Opening};

    let app = spawn_app().await;
    let family = app.family().await;
    let client = app.client(false).await;
    sign_in(&app, &client, &[]).await;
    let sid: String = sqlx::query_scalar("SELECT sid FROM sessions")
        .fetch_one(&app.app.db)
        .await
        .unwrap();
    let (transactions_before, _) = exchange_batches(&app);
    let now = app.app.now();
    let policy = app.app.config.refresh_policy(&Default::default());
    let mut writes = JoinSet::new();
    let mut tokens = vec![];
    for _ in 0..20 {
        let (opening, token) = Opening::new(
            Family {
                id: clef::oidc::refresh::new_family_id(),
                client_id: client.0.clone(),
                account_id: family.guardian.id.clone(),
                scopes: clef::oidc::Scopes::known(["openid"]),
                sid: sid.clone(),
                auth_time: now,
                amr: vec!["pwd".into()],
            },
            &policy,
            now,
        );
        tokens.push(token);
        let entry = Entry {
            sid: sid.clone(),
            client_id: client.0.clone(),
            at: now,
            opening: Some(opening),
        };
        let app = app.app.clone();
        writes.spawn(async move { app.ledger.write(entry).await });
    }
    while let Some(written) = writes.join_next().await {
        written.unwrap().unwrap();
    }
    let (transactions, _) = exchange_batches(&app);
    assert!(
        transactions - transactions_before < 20,
        "{} transactions for 20 entries",
        transactions - transactions_before
    );
    assert_eq!(app.count("refresh_families").await, 21);
    for token in tokens {
        assert_eq!(refresh(&app, &client, &token).await.status(), 200);
    }
}

/// RFC 7662 §2.2: a token whose person can no longer use applications (the
/// account closed) is not active, as UserInfo already refuses it.
#[tokio::test]
async fn introspection_says_inactive_once_the_account_is_closed() {
    let app = spawn_app().await;
    app.family().await;
    let client = app.client(false).await;
    let tokens = sign_in(&app, &client, &[]).await;
    let access = text(&tokens, "access_token");
    assert_eq!(introspect(&app, &client, &access).await["active"], true);
    sqlx::query("UPDATE accounts SET state = 'closed' WHERE identifier = 'claire.martin'")
        .execute(&app.app.db)
        .await
        .unwrap();
    assert_eq!(introspect(&app, &client, &access).await["active"], false);
}

/// A client not registered for refresh tokens that asks `offline_access`
/// gets none, and the response's `scope` does not claim it (OIDC Core §11,
/// RFC 6749 §5.1).
#[tokio::test]
async fn offline_access_without_a_refresh_token_is_not_claimed_granted() {
    let app = spawn_app().await;
    app.family().await;
    let client = app
        .client_with(|new| {
            new.grant_types = Some(clef::oidc::clients::GrantTypes {
                authorization_code: true,
                refresh_token: false,
                client_credentials: false,
            })
        })
        .await;
    let url = authorize_url(
        &app,
        &client.0,
        &[("scope", "openid profile offline_access")],
    );
    let back = authorize_and_login(&app, &browser(), &url, "claire.martin").await;
    let code = location_param(&back, "code").expect("a code");
    let tokens: Value = exchanged(&app, &client, &code).await;
    assert!(tokens.get("refresh_token").is_none(), "{tokens}");
    assert_eq!(tokens["scope"], "openid profile", "{tokens}");
}
