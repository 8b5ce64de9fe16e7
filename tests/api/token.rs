//! The token endpoint's refusals (RFC 6749 §5.2) and the UserInfo endpoint's.

use serde_json::Value;

use crate::helpers::*;

/// Logs the parent in and returns a fresh code issued with a PKCE challenge.
async fn code_for(app: &TestApp, client_id: &str, challenge: &str) -> String {
    let url = authorize_url(
        app,
        client_id,
        &[
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let back = authorize_and_login(app, &browser(), &url, "claire.martin").await;
    location_param(&back, "code").unwrap()
}

async fn error_of(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    (status, body["error"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn client_secret_post_exchange_returns_bearer_tokens() {
    let app = spawn_app().await;
    app.family().await;
    let client = app.client(false).await;
    let (verifier, challenge) = pkce();
    let code = code_for(&app, &client.0, &challenge).await;
    let response = exchange(&app, &client, &code, Some(&verifier)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "openid profile email children school");
    assert!(body["id_token"].as_str().unwrap().split('.').count() == 3);
}

/// A wrong or missing verifier is `invalid_grant`; the code stays the
/// client's, to exchange with its verifier.
#[tokio::test]
async fn pkce_verifier_mismatch_is_invalid_grant() {
    let app = spawn_app().await;
    app.family().await;
    let client = app.client(false).await;
    let (verifier, challenge) = pkce();
    let (other_verifier, _) = pkce();
    let code = code_for(&app, &client.0, &challenge).await;
    assert_eq!(
        error_of(exchange(&app, &client, &code, Some(&other_verifier)).await).await,
        (400, "invalid_grant".into())
    );
    // Whoever holds a leaked code without its verifier, or another client,
    // cannot spend it: the client with the verifier still exchanges it, once.
    let other_client = app.client(false).await;
    assert_eq!(
        error_of(exchange(&app, &other_client, &code, Some(&verifier)).await).await,
        (400, "invalid_grant".into())
    );
    assert_eq!(
        exchange(&app, &client, &code, Some(&verifier))
            .await
            .status(),
        200
    );
    assert_eq!(
        error_of(exchange(&app, &client, &code, Some(&verifier)).await).await,
        (400, "invalid_grant".into()),
        "and then it is spent"
    );
    let code = code_for(&app, &client.0, &challenge).await;
    assert_eq!(
        error_of(exchange(&app, &client, &code, None).await).await,
        (400, "invalid_grant".into())
    );
    // A verifier RFC 7636 §4.1 does not allow, even one whose hash is the
    // challenge: told as malformed, not as a mismatch.
    let short = "short";
    let code = code_for(&app, &client.0, &clef::secret::s256(short)).await;
    let refused: Value = exchange(&app, &client, &code, Some(short))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(refused["error"], "invalid_grant");
    assert!(
        refused["error_description"]
            .as_str()
            .unwrap()
            .starts_with("code_verifier is malformed"),
        "{refused}"
    );
}

/// A leaked code under a flood of presentations without its verifier or
/// from another client, all at once: none spends it, and the client with
/// the verifier exchanges it. Once spent, another client's presentation is
/// no replay: the tokens it issued stay; its own client's replay ends them.
#[tokio::test]
async fn a_flood_of_refused_presentations_neither_spends_a_code_nor_revokes_its_tokens() {
    let app = spawn_app().await;
    app.family().await;
    let client = app.client(false).await;
    let other_client = app.client(false).await;
    let (verifier, challenge) = pkce();
    let code = code_for(&app, &client.0, &challenge).await;
    let mut flood = tokio::task::JoinSet::new();
    for n in 0..30 {
        let (url, code) = (app.url("/token"), code.clone());
        let (who, verifier) = if n % 2 == 0 {
            (client.clone(), pkce().0)
        } else {
            (other_client.clone(), verifier.clone())
        };
        flood.spawn(async move {
            reqwest::Client::new()
                .post(url)
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", code.as_str()),
                    ("redirect_uri", REDIRECT_URI),
                    ("client_id", who.0.as_str()),
                    ("client_secret", who.1.as_deref().unwrap()),
                    ("code_verifier", verifier.as_str()),
                ])
                .send()
                .await
                .unwrap()
                .status()
        });
    }
    while let Some(status) = flood.join_next().await {
        assert_eq!(status.unwrap(), 400);
    }
    let tokens: Value = exchange(&app, &client, &code, Some(&verifier))
        .await
        .json()
        .await
        .unwrap();
    let access_token = tokens["access_token"].as_str().expect("tokens").to_owned();
    assert_eq!(userinfo_status(&app, &access_token).await, 200);
    // Another client presenting the spent code learns nothing and ends nothing.
    let refused: Value = exchange(&app, &other_client, &code, Some(&verifier))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        refused["error_description"],
        "the code is invalid, expired or already used"
    );
    assert_eq!(userinfo_status(&app, &access_token).await, 200);
    // Its own client presenting it again is a replay: the tokens go.
    assert_eq!(
        error_of(exchange(&app, &client, &code, Some(&verifier)).await).await,
        (400, "invalid_grant".into())
    );
    assert_eq!(userinfo_status(&app, &access_token).await, 401);
}

#[tokio::test]
async fn a_replayed_code_is_refused_and_revokes_the_tokens_it_issued() {
    let app = spawn_app().await;
    app.family().await;
    let client = app.client(false).await;
    let (verifier, challenge) = pkce();
    let code = code_for(&app, &client.0, &challenge).await;
    let first: Value = exchange(&app, &client, &code, Some(&verifier))
        .await
        .json()
        .await
        .unwrap();
    let access_token = first["access_token"].as_str().unwrap().to_owned();
    let userinfo = || {
        reqwest::Client::new()
            .get(app.url("/userinfo"))
            .bearer_auth(&access_token)
            .send()
    };
    assert_eq!(userinfo().await.unwrap().status(), 200);

    assert_eq!(
        error_of(exchange(&app, &client, &code, Some(&verifier)).await).await,
        (400, "invalid_grant".into())
    );
    let revoked = userinfo().await.unwrap();
    assert_eq!(
        revoked.status(),
        401,
        "the replay revoked the first access token"
    );
    assert!(
        revoked.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
}

#[tokio::test]
async fn of_twenty_exchanges_of_one_code_at_once_one_at_most_gets_tokens_and_all_are_revoked() {
    let app = spawn_app().await;
    app.family().await;
    let client = app.client(false).await;
    let (verifier, challenge) = pkce();
    let code = code_for(&app, &client.0, &challenge).await;
    let exchanges = (0..20).map(|_| {
        let (token_url, client, code, verifier) = (
            app.url("/token"),
            client.clone(),
            code.clone(),
            verifier.clone(),
        );
        tokio::spawn(async move {
            let response = reqwest::Client::new()
                .post(token_url)
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", REDIRECT_URI),
                    ("client_id", &client.0),
                    ("client_secret", client.1.as_deref().unwrap()),
                    ("code_verifier", &verifier),
                ])
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            (status, body)
        })
    });
    let mut granted = Vec::new();
    for exchange in exchanges.collect::<Vec<_>>() {
        let (status, body) = exchange.await.unwrap();
        match status {
            200 => granted.push((
                body["access_token"].as_str().unwrap().to_owned(),
                body["refresh_token"].as_str().unwrap().to_owned(),
            )),
            _ => assert_eq!(
                (status, body["error"].as_str()),
                (400, Some("invalid_grant"))
            ),
        }
    }
    assert!(granted.len() <= 1, "one code, {} grants", granted.len());
    // The others were replays: whatever the code issued no longer works, the
    // refresh token included, though the replays came while its family was
    // still being written.
    for (access_token, refresh_token) in granted {
        assert_eq!(userinfo_status(&app, &access_token).await, 401);
        let refreshed = refresh_grant(&app, &client, &refresh_token).await;
        assert_eq!(error_of(refreshed).await, (400, "invalid_grant".into()));
    }
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let app = spawn_app().await;
    app.family().await;
    let client = app.client(false).await;
    let (verifier, challenge) = pkce();
    let code = code_for(&app, &client.0, &challenge).await;
    app.clock.advance(app.app.config.code_ttl + 1);
    let refused = |who: (String, Option<String>)| {
        let (app, code, verifier) = (&app, &code, &verifier);
        async move {
            let body: Value = exchange(app, &who, code, Some(verifier))
                .await
                .json()
                .await
                .unwrap();
            (body["error"].clone(), body["error_description"].clone())
        }
    };
    // Its client is told why; another client learns nothing of the code.
    assert_eq!(
        refused(client.clone()).await,
        ("invalid_grant".into(), "the code has expired".into())
    );
    let other = app.client(false).await;
    assert_eq!(
        refused(other).await,
        (
            "invalid_grant".into(),
            "the code is invalid, expired or already used".into()
        )
    );
}

/// OpenID Connect always sends a redirect URI with the authorization
/// request: one missing at the token endpoint is a malformed request,
/// refused before the code is spent, so the corrected request passes.
#[tokio::test]
async fn a_code_exchange_without_its_redirect_uri_is_invalid_request_and_spends_nothing() {
    let app = spawn_app().await;
    app.family().await;
    let client = app.client(false).await;
    let (verifier, challenge) = pkce();
    let code = code_for(&app, &client.0, &challenge).await;
    let missing = reqwest::Client::new()
        .post(app.url("/token"))
        .basic_auth(&client.0, client.1.as_deref())
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", &verifier),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(missing).await, (400, "invalid_request".into()));
    assert_eq!(
        exchange(&app, &client, &code, Some(&verifier))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_wrong_client_secret_is_invalid_client() {
    let app = spawn_app().await;
    app.family().await;
    let client = app.client(false).await;
    let (verifier, challenge) = pkce();
    let code = code_for(&app, &client.0, &challenge).await;
    let wrong = (client.0.clone(), Some("pas-le-secret".to_owned()));
    let posted = exchange(&app, &wrong, &code, Some(&verifier)).await;
    // A 401 names a scheme, also when the secret came in the form (RFC 9110 §15.5.2).
    assert!(posted.headers().contains_key("www-authenticate"));
    assert_eq!(error_of(posted).await, (401, "invalid_client".into()));

    let basic = reqwest::Client::new()
        .post(app.url("/token"))
        .basic_auth(&client.0, Some("pas-le-secret"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", &verifier),
        ])
        .send()
        .await
        .unwrap();
    assert!(
        basic.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    assert_eq!(error_of(basic).await, (401, "invalid_client".into()));

    // A public client cannot pose as confidential, nor a confidential one skip its secret.
    let no_secret = (client.0.clone(), None);
    assert_eq!(
        error_of(exchange(&app, &no_secret, &code, Some(&verifier)).await).await,
        (401, "invalid_client".into())
    );
}

#[tokio::test]
async fn an_unknown_client_is_invalid_client() {
    let app = spawn_app().await;
    let unknown = ("clef-inconnu".to_owned(), Some("x".to_owned()));
    assert_eq!(
        error_of(exchange(&app, &unknown, "abc", None).await).await,
        (401, "invalid_client".into())
    );
}

#[tokio::test]
async fn a_code_cannot_be_redeemed_by_another_client_or_redirect_uri() {
    let app = spawn_app().await;
    app.family().await;
    let client = app.client(false).await;
    let other = app.client(false).await;
    let (verifier, challenge) = pkce();
    let code = code_for(&app, &client.0, &challenge).await;
    assert_eq!(
        error_of(exchange(&app, &other, &code, Some(&verifier)).await).await,
        (400, "invalid_grant".into())
    );

    let code = code_for(&app, &client.0, &challenge).await;
    let response = reqwest::Client::new()
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", "http://127.0.0.1:9999/other"),
            ("client_id", client.0.as_str()),
            ("client_secret", client.1.as_deref().unwrap()),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response).await, (400, "invalid_grant".into()));
}

#[tokio::test]
async fn unsupported_grant_types_and_double_authentication_are_refused() {
    let app = spawn_app().await;
    let client = app.client(false).await;
    let secret = client.1.clone().unwrap();
    let password_grant = reqwest::Client::new()
        .post(app.url("/token"))
        .basic_auth(&client.0, Some(&secret))
        .form(&[
            ("grant_type", "password"),
            ("username", "x"),
            ("password", "y"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(password_grant).await,
        (400, "unsupported_grant_type".into())
    );
    let both = reqwest::Client::new()
        .post(app.url("/token"))
        .basic_auth(&client.0, Some(&secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("client_secret", secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(both).await, (400, "invalid_request".into()));
}

#[tokio::test]
async fn userinfo_without_a_valid_token_is_401_with_a_bearer_challenge() {
    let app = spawn_app().await;
    let none = reqwest::Client::new()
        .get(app.url("/userinfo"))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 401);
    assert!(
        none.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    assert_eq!(userinfo_status(&app, "bogus").await, 401);
    // The scheme without a token is malformed (RFC 6750 §3.1).
    for header in ["Bearer", "bearer  "] {
        let empty = reqwest::Client::new()
            .get(app.url("/userinfo"))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_eq!(empty.status(), 400, "{header:?}");
        assert!(
            empty.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("error=\"invalid_request\"")
        );
    }
}

#[tokio::test]
async fn discovery_and_jwks_describe_what_clef_does() {
    let app = spawn_app().await;
    let discovery: Value = reqwest::get(app.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], app.address.as_str());
    assert_eq!(discovery["token_endpoint"], app.url("/token"));
    assert_eq!(
        discovery["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(discovery["request_uri_parameter_supported"], true);
    for scope in ["openid", "profile", "email", "children", "school"] {
        assert!(
            discovery["scopes_supported"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s == scope)
        );
    }
    let jwks: Value = reqwest::get(discovery["jwks_uri"].as_str().unwrap())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(
        (
            key["kty"].as_str(),
            key["alg"].as_str(),
            key["use"].as_str()
        ),
        (Some("RSA"), Some("RS256"), Some("sig"))
    );
    assert!(key.get("d").is_none());
    // RFC 8414 §3: the same document where OAuth clients look for it.
    let oauth: Value = reqwest::get(app.url("/.well-known/oauth-authorization-server"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(oauth, discovery);
}

#[tokio::test]
async fn browser_clients_of_other_origins_may_call_the_protocol_endpoints_after_preflight() {
    let app = spawn_app().await;
    let http = reqwest::Client::new();
    for (path, method) in [
        ("/token", "POST"),
        ("/userinfo", "GET"),
        ("/.well-known/openid-configuration", "GET"),
        ("/jwks.json", "GET"),
    ] {
        let preflight = http
            .request(reqwest::Method::OPTIONS, app.url(path))
            .header("origin", "https://ent.example")
            .header("access-control-request-method", method)
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
            .await
            .unwrap();
        assert!(
            preflight.status().is_success(),
            "{path}: {}",
            preflight.status()
        );
        let headers = preflight.headers();
        assert_eq!(headers["access-control-allow-origin"], "*", "{path}");
        let methods = headers["access-control-allow-methods"].to_str().unwrap();
        assert!(methods.contains(method), "{path}: {methods}");
        let allowed = headers["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .to_lowercase();
        assert!(allowed.contains("authorization") && allowed.contains("content-type"));
    }
    let discovery = http
        .get(app.url("/.well-known/openid-configuration"))
        .header("origin", "https://ent.example")
        .send()
        .await
        .unwrap();
    assert_eq!(discovery.headers()["access-control-allow-origin"], "*");
    // A browser app may read why UserInfo refused its token (RFC 6750 §3).
    let refused = http
        .get(app.url("/userinfo"))
        .header("origin", "https://ent.example")
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert!(refused.headers().contains_key("www-authenticate"));
    assert_eq!(
        refused.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .to_lowercase(),
        "www-authenticate"
    );
    // The pages people use are not opened to other origins.
    let login = http
        .get(app.url("/login"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(login.headers().get("access-control-allow-origin").is_none());
}

/// A replay that comes while the exchange's refresh family is still being
/// written revokes that family too (RFC 6749 §4.1.2). PostgreSQL lets the test
/// hold the exchange's write (a lock on the sessions' client records) while
/// the replay runs; SQLite's one writer would hold the replay's revocation as
/// well, so the window cannot be held open there.
#[tokio::test]
async fn a_replay_while_the_refresh_family_is_written_revokes_it_too() {
    if std::env::var("CLEF_TEST_DATABASE_URL").is_err() {
        return;
    }
    let app = spawn_app().await;
    app.family().await;
    let client = app.client(false).await;
    let (verifier, challenge) = pkce();
    let code = code_for(&app, &client.0, &challenge).await;
    let mut hold = app.app.db.begin().await.unwrap();
    sqlx::query("LOCK TABLE session_clients IN EXCLUSIVE MODE")
        .execute(&mut *hold)
        .await
        .unwrap();
    let first = {
        let (app_url, client, code, verifier) = (
            app.url("/token"),
            client.clone(),
            code.clone(),
            verifier.clone(),
        );
        tokio::spawn(async move {
            reqwest::Client::new()
                .post(app_url)
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", REDIRECT_URI),
                    ("client_id", &client.0),
                    ("client_secret", client.1.as_deref().unwrap()),
                    ("code_verifier", &verifier),
                ])
                .send()
                .await
                .unwrap()
        })
    };
    // The first exchange has redeemed the code and waits on the lock.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(!first.is_finished(), "the first exchange waits on the lock");
    assert_eq!(
        error_of(exchange(&app, &client, &code, Some(&verifier)).await).await,
        (400, "invalid_grant".into())
    );
    hold.rollback().await.unwrap();
    let first = first.await.unwrap();
    if first.status() == 200 {
        let body: Value = first.json().await.unwrap();
        assert_eq!(
            userinfo_status(&app, body["access_token"].as_str().unwrap()).await,
            401
        );
        let refreshed = refresh_grant(&app, &client, body["refresh_token"].as_str().unwrap()).await;
        assert_eq!(error_of(refreshed).await, (400, "invalid_grant".into()));
    } else {
        assert_eq!(error_of(first).await, (400, "invalid_grant".into()));
    }
}

/// RFC 9110 §11.1: an authentication scheme's name is case-insensitive
/// (`BASIC`, `bearer`); RFC 6750 §2: a token sent both in the header and in
/// the body is an invalid request, not a choice for the server to make.
#[tokio::test]
async fn scheme_names_are_read_without_case_and_a_token_sent_twice_is_refused() {
    let app = spawn_app().await;
    app.family().await;
    let client = app.client(false).await;
    let secret = client.1.clone().unwrap();
    let (verifier, challenge) = pkce();
    let code = code_for(&app, &client.0, &challenge).await;
    let basic = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{}:{secret}", client.0),
    );
    let exchanged = reqwest::Client::new()
        .post(app.url("/token"))
        .header("authorization", format!("BASIC {basic}"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(exchanged.status(), 200);
    let body: Value = exchanged.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap();

    let userinfo = |authorization: Option<String>, form: Option<&'static str>| {
        let mut request = reqwest::Client::new().post(app.url("/userinfo"));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        if let Some(field) = form {
            request = request.form(&[(field, token)]);
        }
        request.send()
    };
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let answer = userinfo(Some(format!("{scheme} {token}")), None)
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{scheme}");
    }
    assert_eq!(
        userinfo(None, Some("access_token")).await.unwrap().status(),
        200
    );
    let twice = userinfo(Some(format!("Bearer {token}")), Some("access_token"))
        .await
        .unwrap();
    assert_eq!(twice.status(), 400);
    assert!(
        twice.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"invalid_request\"")
    );
    assert_eq!(error_of(twice).await, (400, "invalid_request".into()));
    // Another field of the body is no second token.
    assert_eq!(
        userinfo(Some(format!("Bearer {token}")), Some("other"))
            .await
            .unwrap()
            .status(),
        200
    );
}

/// A hundred wrong secrets at once from one address behind the proxy: fifty
/// are refused with 401, the rest and the failures that follow from that
/// address with 429 and Retry-After; a client that authenticates from that
/// very address (a school's NAT) is served, as from another.
#[tokio::test]
async fn failed_client_authentications_hold_an_address_back() {
    let app = spawn_app_behind_proxy().await;
    let client = app.client(false).await;
    let introspect = |from: &'static str, secret: String| {
        let (url, id) = (app.url("/introspect"), client.0.clone());
        async move {
            reqwest::Client::new()
                .post(url)
                .header("x-forwarded-for", from)
                .basic_auth(id, Some(secret))
                .form(&[("token", "no-such-token")])
                .send()
                .await
                .unwrap()
        }
    };
    let mut attempts = tokio::task::JoinSet::new();
    for _ in 0..100 {
        attempts.spawn(introspect("203.0.113.66", "pas-le-secret".to_owned()));
    }
    let statuses = statuses_of(attempts).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        50,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        50,
        "{statuses:?}"
    );

    let wrong = introspect("203.0.113.66", "encore-faux".to_owned()).await;
    let retry_after: u64 = wrong.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((890..=900).contains(&retry_after), "{retry_after}");
    assert_eq!(error_of(wrong).await, (429, "invalid_client".into()));
    let secret = client.1.clone().unwrap();
    let same_address = introspect("203.0.113.66", secret.clone()).await;
    assert_eq!(same_address.status(), 200);
    let elsewhere = introspect("198.51.100.7", secret).await;
    assert_eq!(elsewhere.status(), 200);
}
