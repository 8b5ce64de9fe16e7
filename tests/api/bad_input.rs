//! Hostile input on every form field and query parameter: too long, empty,
//! non-UTF-8, control characters. People get a French page, clients a JSON
//! error, and nothing is written.

use serde_json::Value;

use crate::helpers::*;

/// Raw (already percent-encoded) values that must be refused.
fn hostile_values() -> Vec<(&'static str, String)> {
    vec![
        ("non-UTF-8", "%FF%FE".into()),
        ("NUL", "a%00b".into()),
        ("newline", "a%0D%0Ab".into()),
        ("escape", "a%1B%5B31m".into()),
        ("too long", "a".repeat(5000)),
    ]
}

/// A hostile `client_id` or `redirect_uri` (here each given twice, the second
/// hostile) leaves nowhere to send an answer: a French page, no redirect. Any
/// other parameter unreadable, the client and its redirect URI being sound:
/// `invalid_request` goes back to the client (RFC 6749 §4.1.2.1) with its
/// `state` when that one was readable.
#[tokio::test]
async fn hostile_authorize_parameters_get_a_french_page_and_no_redirect() {
    let app = spawn_app().await;
    let (client_id, _) = app.client(false).await;
    let base = authorize_url(&app, &client_id, &[]);
    for name in ["client_id", "redirect_uri"] {
        for (what, value) in hostile_values() {
            let url = format!("{base}&{name}={value}");
            let response = browser().get(&url).send().await.unwrap();
            assert_eq!(response.status(), 400, "{name} {what}");
            assert!(
                response.headers().get("location").is_none(),
                "{name} {what}"
            );
            let html = response.text().await.unwrap();
            assert!(html.contains("lang=\"fr\""), "{name} {what}");
            assert!(html.contains("Requête invalide"), "{name} {what}: {html}");
        }
    }
    for name in [
        "state",
        "nonce",
        "scope",
        "response_type",
        "login_hint",
        "prompt",
        "max_age",
    ] {
        for (what, value) in hostile_values() {
            // Given twice (the second hostile), and, for one the request
            // has, given once with the hostile value.
            let mut urls = vec![format!("{base}&{name}={value}")];
            if base.contains(&format!("&{name}=")) {
                urls.push(base.replace(&format!("&{name}="), &format!("&{name}={value}&ignored=")));
            }
            for url in urls {
                let response = browser().get(&url).send().await.unwrap();
                assert_eq!(response.status(), 302, "{name} {what}");
                assert!(
                    location(&response).starts_with(REDIRECT_URI),
                    "{name} {what}"
                );
                assert_eq!(
                    location_param(&response, "error").as_deref(),
                    Some("invalid_request"),
                    "{name} {what}"
                );
                let state = location_param(&response, "state");
                assert_eq!(state.is_some(), name != "state", "{name} {what}: {state:?}");
            }
        }
    }
    // Empty client_id and redirect_uri: the page says what is missing.
    let response = browser()
        .get(app.url("/authorize?client_id=&redirect_uri=&response_type=code"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("client_id is missing")
    );
}

#[tokio::test]
async fn hostile_login_fields_get_a_french_page_and_write_nothing() {
    let app = spawn_app().await;
    let family = app.family().await;
    let browser = browser();
    let page = browser
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = input_value(&page, "csrf").unwrap();
    for field in ["identifier", "password"] {
        for (what, value) in hostile_values() {
            let mut body = format!("csrf={csrf}&identifier=claire.martin&password={PASSWORD}");
            body = body.replace(&format!("{field}="), &format!("{field}={value}&ignored="));
            let response = browser
                .post(app.url("/login"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 400, "{field} {what}");
            let cookies: Vec<_> = response
                .headers()
                .get_all("set-cookie")
                .iter()
                .map(|c| c.to_str().unwrap().to_owned())
                .collect();
            assert!(
                !cookies.iter().any(|c| c.starts_with("clef_session")),
                "{field} {what}"
            );
            let html = response.text().await.unwrap();
            assert!(
                html.contains("lang=\"fr\"") && html.contains("Le champ"),
                "{field} {what}: {html}"
            );
        }
        // Empty.
        let body = format!("csrf={csrf}&identifier=claire.martin&password={PASSWORD}")
            .replace(&format!("{field}="), &format!("{field}=&x="));
        let response = browser
            .post(app.url("/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{field} empty");
        assert!(
            response.text().await.unwrap().contains("est obligatoire"),
            "{field} empty"
        );
    }
    let account = clef::accounts::store::account_by_id(&app.app.db, &family.guardian.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        account.last_login_at, None,
        "no refused login was recorded as a login"
    );
}

#[tokio::test]
async fn a_login_form_that_is_not_a_form_is_refused() {
    let app = spawn_app().await;
    let response = browser()
        .post(app.url("/login"))
        .json(&serde_json::json!({"identifier": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Cette demande n&#x27;a pas pu être lue.")
    );
    let huge = browser()
        .post(app.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("identifier={}", "a".repeat(200_000)))
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), 413);
}

#[tokio::test]
async fn hostile_token_parameters_get_a_json_invalid_request_described_in_ascii() {
    let app = spawn_app().await;
    let client = app.client(false).await;
    let base = format!(
        "grant_type=authorization_code&code=abc&redirect_uri=x&client_id={}&client_secret={}",
        client.0,
        client.1.unwrap()
    );
    for name in ["grant_type", "code", "redirect_uri", "code_verifier"] {
        for (what, value) in hostile_values() {
            let body = format!("{base}&{name}={value}")
                .replace(&format!("{name}=abc"), "")
                .replace(&format!("{name}=x"), "");
            let body = if name == "grant_type" {
                body.replace("grant_type=authorization_code&", "")
            } else {
                body
            };
            let response = reqwest::Client::new()
                .post(app.url("/token"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 400, "{name} {what}");
            let json: Value = response.json().await.unwrap();
            assert_eq!(json["error"], "invalid_request", "{name} {what}");
            // RFC 6749 §5.2: %x20-21 / %x23-5B / %x5D-7E, so no French quotes or accents.
            let description = json["error_description"].as_str().unwrap();
            assert!(
                description
                    .bytes()
                    .all(|b| matches!(b, 0x20..=0x7e) && b != b'"' && b != b'\\'),
                "{name} {what}: {description}"
            );
        }
    }
    let not_a_form = reqwest::Client::new()
        .post(app.url("/token"))
        .json(&serde_json::json!({"grant_type": "authorization_code"}))
        .send()
        .await
        .unwrap();
    assert_eq!(not_a_form.status(), 400);
    assert_eq!(
        not_a_form.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
}

/// An address a form posts to, opened directly (a reload, a bookmark): a
/// page in the person's language; the protocol's endpoints answer JSON.
#[tokio::test]
async fn a_method_an_address_does_not_answer_gets_a_page_or_json() {
    let app = spawn_app().await;
    for (language, text) in [
        ("fr", "ouvre pas directement : revenez à la page précédente"),
        ("en", "This address cannot be opened directly"),
    ] {
        let response = browser()
            .get(app.url("/mot-de-passe-oublie/envoyer"))
            .header("accept-language", language)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405);
        assert_eq!(response.headers()["allow"], "POST");
        let page = response.text().await.unwrap();
        assert!(
            page.contains(&format!("<html lang=\"{language}\">")),
            "{page}"
        );
        assert!(page.contains(&fr(text)), "{page}");
    }
    for path in ["/token", "/register"] {
        let response = browser().get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 405, "{path}");
        assert_eq!(
            response.json::<Value>().await.unwrap()["error"],
            "invalid_request",
            "{path}"
        );
    }
}

#[tokio::test]
async fn unknown_pages_answer_in_french() {
    let app = spawn_app().await;
    let response = browser().get(app.url("/nulle-part")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    // Kept by no cache: a refusal may quote the request.
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert!(response.text().await.unwrap().contains("Page introuvable"));
}

/// A token request in JSON, or with no Content-Type, is told what the body
/// must be (RFC 6749 §4.1.3: a form), not that a parameter is repeated.
#[tokio::test]
async fn a_token_request_that_is_not_a_form_is_told_so() {
    let app = spawn_app().await;
    let json = reqwest::Client::new()
        .post(app.url("/token"))
        .json(&serde_json::json!({"grant_type": "authorization_code"}))
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), 400);
    let body: serde_json::Value = json.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(
        body["error_description"],
        "the body must be a form: Content-Type application/x-www-form-urlencoded"
    );
    // A body over the limit is told as one, not as a parameter.
    let huge = reqwest::Client::new()
        .post(app.url("/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=authorization_code&code={}",
            "a".repeat(200_000)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), 413);
    let body: serde_json::Value = huge.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(body["error_description"], "the request body is too large");
    // Two Authorization headers: neither is taken.
    let twice = reqwest::Client::new()
        .post(app.url("/token"))
        .header("authorization", "Basic YTpi")
        .header("authorization", "Basic Yzpk")
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(twice.status(), 400);
    let body: serde_json::Value = twice.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request", "{body}");
}

/// `request` sent as is on a new connection; the status of the answer, read
/// within `within`.
async fn raw_status(app: &TestApp, request: &[u8], within: std::time::Duration) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = vec![0; 1024];
    let read = tokio::time::timeout(within, stream.read(&mut answer))
        .await
        .expect("an answer in time")
        .unwrap();
    let head = String::from_utf8_lossy(&answer[..read]).to_string();
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{head}"))
}

/// RFC 9112 §3.2: an HTTP/1.1 request without a `Host`, or with two, is
/// answered 400; a body announced longer than taken is refused at once
/// (413), not waited for until the request timeout; headers beyond 32 KiB
/// get 431.
#[tokio::test]
async fn requests_no_front_would_pass_are_refused_at_once() {
    let app = spawn_app().await;
    let host = app.address.trim_start_matches("http://").to_owned();
    let second = std::time::Duration::from_secs(2);
    assert_eq!(
        raw_status(&app, b"GET /healthz HTTP/1.1\r\n\r\n", second).await,
        400
    );
    let two = format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nHost: evil.example\r\n\r\n");
    assert_eq!(raw_status(&app, two.as_bytes(), second).await, 400);
    let one = format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n");
    assert_eq!(raw_status(&app, one.as_bytes(), second).await, 200);
    assert_eq!(
        raw_status(&app, b"GET /healthz HTTP/1.0\r\n\r\n", second).await,
        200
    );
    for path in ["/login", "/token", "/register"] {
        let announced = format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000000\r\n\r\nabc"
        );
        assert_eq!(
            raw_status(&app, announced.as_bytes(), second).await,
            413,
            "{path}"
        );
    }
    let big = format!(
        "GET /healthz HTTP/1.1\r\nHost: {host}\r\nX-Big: {}\r\n\r\n",
        "a".repeat(70_000)
    );
    assert_eq!(raw_status(&app, big.as_bytes(), second).await, 431);
    // A token request refused so is told in JSON, as its other errors.
    let response = reqwest::Client::new()
        .post(app.url("/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![b'a'; 70_000])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(body["error_description"], "the request body is too large");
    // A request an extractor cannot read gets a page, not its English text.
    let page = reqwest::get(app.url("/langue")).await.unwrap();
    assert_eq!(page.status(), 400);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.text().await.unwrap().contains("Requête invalide"));
}
