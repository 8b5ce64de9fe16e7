//! Pushed authorization requests (RFC 9126) and request objects (OIDC Core
//! §6, RFC 9101; issue 10): a request pushed to /par and named by its one-time
//! request_uri, and signed request objects by value and by reference.

use josekit::jws::ES256;
use josekit::jwt::{self, JwtPayload};
use serde_json::{Value, json};

use crate::helpers::*;

/// POSTs a pushed request for the test client, authenticated with its secret.
async fn push(
    app: &TestApp,
    client: &(String, Option<String>),
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut form: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("redirect_uri", REDIRECT_URI),
        ("scope", "openid profile"),
        ("state", "st-par"),
        ("nonce", "n-par"),
    ];
    for (name, value) in extra {
        form.retain(|(n, _)| n != name);
        form.push((name, value));
    }
    reqwest::Client::new()
        .post(app.url("/par"))
        .basic_auth(&client.0, client.1.as_deref())
        .form(&form)
        .send()
        .await
        .unwrap()
}

fn authorize_with(app: &TestApp, params: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&app.url("/authorize")).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    url.into()
}

/// Signs Claire in at `url` in a fresh browser; returns the redirect back.
async fn sign_in_at(app: &TestApp, url: &str) -> reqwest::Response {
    let browser = browser();
    let page = browser.get(url).send().await.unwrap();
    assert_eq!(page.status(), 200, "the login page");
    let page = page.text().await.unwrap();
    submit_login(app, &browser, &page, "claire.martin", PASSWORD).await
}

#[tokio::test]
async fn a_pushed_request_is_used_once_by_its_client_within_a_minute() {
    let app = spawn_app().await;
    app.family().await;
    let client = app.client(false).await;
    let pushed = push(&app, &client, &[]).await;
    assert_eq!(pushed.status(), 201);
    assert_eq!(pushed.headers()["cache-control"], "no-store");
    let body: Value = pushed.json().await.unwrap();
    assert_eq!(body["expires_in"], 60);
    let request_uri = body["request_uri"].as_str().unwrap().to_owned();
    assert!(request_uri.starts_with("urn:ietf:params:oauth:request_uri:"));

    // Only the client_id and the request_uri travel through the browser.
    let url = authorize_with(
        &app,
        &[("client_id", &client.0), ("request_uri", &request_uri)],
    );
    let back = sign_in_at(&app, &url).await;
    assert_eq!(location_param(&back, "state").as_deref(), Some("st-par"));
    let code = location_param(&back, "code").expect("a code");
    assert_eq!(exchange(&app, &client, &code, None).await.status(), 200);

    // Used: it names nothing any more (shown: the query has no redirect_uri to trust).
    let again = browser().get(&url).send().await.unwrap();
    assert_eq!(again.status(), 400);
    assert!(
        again
            .text()
            .await
            .unwrap()
            .contains("request_uri is unknown, used or expired")
    );

    // Another client cannot use it; after a minute it is gone.
    let other = app.client(false).await;
    let body: Value = push(&app, &client, &[]).await.json().await.unwrap();
    let pushed_uri = body["request_uri"].as_str().unwrap().to_owned();
    let stolen = browser()
        .get(authorize_with(
            &app,
            &[("client_id", &other.0), ("request_uri", &pushed_uri)],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        stolen.status(),
        400,
        "shown: the request_uri names another client's request"
    );
    // The attempt did not spend it: its own client still signs in with it.
    let back = sign_in_at(
        &app,
        &authorize_with(
            &app,
            &[("client_id", &client.0), ("request_uri", &pushed_uri)],
        ),
    )
    .await;
    assert!(
        location_param(&back, "code").is_some(),
        "{}",
        location(&back)
    );
    let body: Value = push(&app, &client, &[]).await.json().await.unwrap();
    app.clock.advance(61);
    let late = browser()
        .get(authorize_with(
            &app,
            &[
                ("client_id", &client.0),
                ("request_uri", body["request_uri"].as_str().unwrap()),
            ],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(late.status(), 400);
}

#[tokio::test]
async fn a_pushed_request_is_checked_when_pushed_and_needs_client_authentication() {
    let app = spawn_app().await;
    let client = app.client(false).await;
    let unregistered = push(
        &app,
        &client,
        &[("redirect_uri", "https://evil.example/cb")],
    )
    .await;
    assert_eq!(unregistered.status(), 400);
    let body: Value = unregistered.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    let bad_scope = push(&app, &client, &[("scope", "profile")]).await;
    assert_eq!(bad_scope.status(), 400);
    let wrong_secret = reqwest::Client::new()
        .post(app.url("/par"))
        .basic_auth(&client.0, Some("wrong"))
        .form(&[
            ("response_type", "code"),
            ("redirect_uri", REDIRECT_URI),
            ("scope", "openid"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_secret.status(), 401);
    let nested = push(&app, &client, &[("request_uri", "https://rp.example/r")]).await;
    assert_eq!(nested.status(), 400);
}

/// A client registered (open registration) with an ES256 key; returns its
/// id and secret, and a function that signs request objects with its key.
async fn client_with_key(app: &TestApp) -> ((String, Option<String>), impl Fn(Value) -> String) {
    let pair = ES256.generate_key_pair().unwrap();
    let mut public = pair.to_jwk_public_key();
    public.set_key_id("rp-key-1");
    let registered: Value = reqwest::Client::new()
        .post(app.url("/register"))
        .json(&json!({
            "redirect_uris": [REDIRECT_URI],
            "client_name": "RP signant",
            "jwks": { "keys": [Value::Object(public.as_ref().clone())] },
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = registered["client_id"]
        .as_str()
        .expect("registered")
        .to_owned();
    let secret = registered["client_secret"].as_str().map(str::to_owned);
    let mut private = pair.to_jwk_private_key();
    private.set_key_id("rp-key-1");
    let signer = ES256.signer_from_jwk(&private).unwrap();
    let sign = move |claims: Value| {
        let payload = JwtPayload::from_map(claims.as_object().unwrap().clone()).unwrap();
        let mut header = josekit::jws::JwsHeader::new();
        header.set_token_type("oauth-authz-req+jwt");
        header.set_key_id("rp-key-1");
        jwt::encode_with_signer(&payload, &header, &signer).unwrap()
    };
    ((id, secret), sign)
}

#[tokio::test]
async fn a_signed_request_object_carries_the_request_and_wins_over_the_query() {
    let app = spawn_app_with(|config| config.registration_open = true).await;
    app.family().await;
    let (client, sign) = client_with_key(&app).await;
    let object = sign(json!({
        "iss": client.0, "aud": app.address, "client_id": client.0,
        "response_type": "code", "redirect_uri": REDIRECT_URI, "scope": "openid",
        "state": "from-the-object", "nonce": "n-object", "max_age": 3600,
        "exp": app.app.now() + 300,
    }));
    let url = authorize_with(
        &app,
        &[
            ("client_id", &client.0),
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "from-the-query"),
            ("request", &object),
        ],
    );
    let back = sign_in_at(&app, &url).await;
    let location = location(&back);
    assert!(
        location.contains("/consentement") || location_param(&back, "code").is_some(),
        "{location}"
    );

    // Tampered, unsigned, for another audience, or expired: refused.
    let mut parts: Vec<String> = object.split('.').map(str::to_owned).collect();
    parts[1] = parts[1].chars().rev().collect();
    let tampered = parts.join(".");
    use base64::Engine;
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let unsigned = format!(
        "{}.{}.",
        b64(json!({"alg": "none"})),
        b64(
            json!({"client_id": client.0, "redirect_uri": REDIRECT_URI, "response_type": "code", "scope": "openid"})
        )
    );
    let elsewhere = sign(
        json!({"client_id": client.0, "aud": "https://other.example", "redirect_uri": REDIRECT_URI, "response_type": "code", "scope": "openid"}),
    );
    let expired = sign(
        json!({"client_id": client.0, "exp": app.app.now() - 10, "redirect_uri": REDIRECT_URI, "response_type": "code", "scope": "openid"}),
    );
    for (name, bad) in [
        ("tampered", tampered),
        ("unsigned", unsigned),
        ("elsewhere", elsewhere),
        ("expired", expired),
    ] {
        let answer = browser()
            .get(authorize_with(
                &app,
                &[
                    ("client_id", &client.0),
                    ("redirect_uri", REDIRECT_URI),
                    ("response_type", "code"),
                    ("scope", "openid"),
                    ("request", &bad),
                ],
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(
            location_param(&answer, "error").as_deref(),
            Some("invalid_request_object"),
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_request_object_by_reference_is_fetched_from_the_client() {
    let app = spawn_app_with(|config| config.registration_open = true).await;
    app.family().await;
    let (client, sign) = client_with_key(&app).await;
    let object = sign(json!({
        "client_id": client.0, "aud": app.address, "response_type": "code",
        "redirect_uri": REDIRECT_URI, "scope": "openid", "state": "by-reference",
    }));
    let served = axum::Router::new().route(
        "/request.jwt",
        axum::routing::get(move || {
            let object = object.clone();
            async move { object }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let request_uri = format!("http://{}/request.jwt", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, served).await });
    let url = authorize_with(
        &app,
        &[
            ("client_id", &client.0),
            ("response_type", "code"),
            ("scope", "openid"),
            ("request_uri", &request_uri),
        ],
    );
    let page = browser().get(&url).send().await.unwrap();
    assert_eq!(page.status(), 200, "the login page for the fetched request");

    // A pushed request made of a request object works too.
    let object = sign(json!({
        "client_id": client.0, "aud": app.address, "response_type": "code",
        "redirect_uri": REDIRECT_URI, "scope": "openid", "state": "pushed-object",
    }));
    let pushed = reqwest::Client::new()
        .post(app.url("/par"))
        .basic_auth(&client.0, client.1.as_deref())
        .form(&[("request", object.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(pushed.status(), 201);
}

#[tokio::test]
async fn discovery_advertises_par_and_request_objects() {
    let app = spawn_app().await;
    let discovery: Value = reqwest::get(app.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        discovery["pushed_authorization_request_endpoint"],
        app.url("/par")
    );
    assert_eq!(discovery["request_parameter_supported"], true);
    assert_eq!(discovery["request_uri_parameter_supported"], true);
    assert_eq!(
        discovery["request_object_signing_alg_values_supported"],
        json!(["RS256", "ES256", "EdDSA", "Ed25519"])
    );
}

/// A request_uri is fetched only for a known client that signs request objects,
/// and only on a host of its own: never for a request naming no client, nor on
/// any other address (RFC 9101 §10.4.1, no server-side request forgery).
#[tokio::test]
async fn a_request_uri_is_fetched_only_from_the_client_s_own_hosts() {
    let app = spawn_app_with(|config| config.registration_open = true).await;
    app.family().await;
    let (keyed, _sign) = client_with_key(&app).await;
    let unkeyed = app.client(false).await;
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = hits.clone();
    let served = axum::Router::new().fallback(move || {
        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async { "not a request object" }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, served).await });
    let on_loopback = format!("http://127.0.0.1:{port}/admin");
    let on_localhost = format!("http://localhost:{port}/admin");
    let cases: [(&str, Vec<(&str, &str)>); 3] = [
        ("no client_id", vec![("request_uri", &on_loopback)]),
        (
            "a client without keys",
            vec![("client_id", &unkeyed.0), ("request_uri", &on_loopback)],
        ),
        (
            "a host that is not the client's",
            vec![("client_id", &keyed.0), ("request_uri", &on_localhost)],
        ),
    ];
    for (name, query) in cases {
        let page = browser()
            .get(authorize_with(&app, &query))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 400, "{name}");
    }
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0);
}

/// A client whose `jwks_uri` cannot be read: its request object cannot be
/// checked, answered `invalid_request_object` (OIDC Core §6.3.1), not the
/// `invalid_client` of a failed client authentication, which the
/// authorization endpoint may not send (RFC 6749 §4.1.2.1).
#[tokio::test]
async fn a_request_object_whose_client_keys_are_unreadable_is_an_invalid_request_object() {
    let app = spawn_app_with(|config| config.registration_open = true).await;
    let down = format!("http://127.0.0.1:{}/jwks", free_port());
    let registered: Value = reqwest::Client::new()
        .post(app.url("/register"))
        .json(&json!({
            "redirect_uris": [REDIRECT_URI],
            "client_name": "RP aux clés injoignables",
            "jwks_uri": down,
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client_id = registered["client_id"].as_str().expect("registered");
    let (_, sign) = client_with_key(&app).await;
    let object = sign(json!({
        "iss": client_id, "aud": app.address, "client_id": client_id,
        "response_type": "code", "redirect_uri": REDIRECT_URI, "scope": "openid",
    }));
    let answer = browser()
        .get(authorize_with(
            &app,
            &[
                ("client_id", client_id),
                ("redirect_uri", REDIRECT_URI),
                ("response_type", "code"),
                ("scope", "openid"),
                ("request", &object),
            ],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        location_param(&answer, "error").as_deref(),
        Some("invalid_request_object"),
        "{:?}",
        answer.headers().get("location")
    );
}

/// OIDC Registration §2: a client that registered `request_object_signing_alg`
/// has its request objects in that algorithm only, even signed with another
/// of its keys; encryption, which Clef does not do, is refused at
/// registration rather than ignored.
#[tokio::test]
async fn a_registered_request_object_alg_is_the_only_one_taken() {
    let app = spawn_app_with(|config| config.registration_open = true).await;
    app.family().await;
    let es = ES256.generate_key_pair().unwrap();
    let rs = josekit::jws::RS256.generate_key_pair(2048).unwrap();
    let public = |jwk: josekit::jwk::Jwk, kid: &str| {
        let mut jwk = jwk;
        jwk.set_key_id(kid);
        Value::Object(jwk.as_ref().clone())
    };
    let register = |extra: Value| {
        let mut body = json!({
            "redirect_uris": [REDIRECT_URI],
            "client_name": "RP signant",
            "jwks": { "keys": [public(es.to_jwk_public_key(), "es"), public(rs.to_jwk_public_key(), "rs")] },
        });
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        reqwest::Client::new()
            .post(app.url("/register"))
            .json(&body)
            .send()
    };
    for encrypted in [
        "id_token_encrypted_response_alg",
        "userinfo_encrypted_response_alg",
    ] {
        let refused = register(json!({ encrypted: "RSA-OAEP" })).await.unwrap();
        assert_eq!(refused.status(), 400, "{encrypted}");
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client_metadata", "{body}");
    }
    // Every algorithm discovery lists for request objects can be registered.
    for advertised in ["ES256", "EdDSA", "Ed25519"] {
        let registered = register(json!({ "request_object_signing_alg": advertised }))
            .await
            .unwrap();
        assert_eq!(registered.status(), 201, "{advertised}");
    }
    let refused = register(json!({ "request_object_signing_alg": "HS256" }))
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let registered: Value = register(json!({ "request_object_signing_alg": "RS256" }))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(registered["request_object_signing_alg"], "RS256");
    let id = registered["client_id"].as_str().unwrap();
    let claims = json!({
        "iss": id, "aud": app.address, "client_id": id, "response_type": "code",
        "redirect_uri": REDIRECT_URI, "scope": "openid", "exp": app.app.now() + 300,
    });
    let payload = JwtPayload::from_map(claims.as_object().unwrap().clone()).unwrap();
    let signed = |signer: &dyn josekit::jws::JwsSigner, kid: &str| {
        let mut header = josekit::jws::JwsHeader::new();
        header.set_key_id(kid);
        jwt::encode_with_signer(&payload, &header, signer).unwrap()
    };
    let with_es = signed(
        &*ES256
            .signer_from_jwk(&{
                let mut k = es.to_jwk_private_key();
                k.set_key_id("es");
                k
            })
            .unwrap(),
        "es",
    );
    let with_rs = signed(
        &*josekit::jws::RS256
            .signer_from_jwk(&{
                let mut k = rs.to_jwk_private_key();
                k.set_key_id("rs");
                k
            })
            .unwrap(),
        "rs",
    );
    let answer = |object: String| {
        browser()
            .get(authorize_with(
                &app,
                &[
                    ("client_id", id),
                    ("redirect_uri", REDIRECT_URI),
                    ("response_type", "code"),
                    ("scope", "openid"),
                    ("request", &object),
                ],
            ))
            .send()
    };
    let refused = answer(with_es).await.unwrap();
    assert_eq!(
        location_param(&refused, "error").as_deref(),
        Some("invalid_request_object")
    );
    let taken = answer(with_rs).await.unwrap();
    assert_eq!(taken.status(), 200, "the login page: {}", location(&taken));
}
