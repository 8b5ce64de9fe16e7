//! The SMS gateway client against a gateway on loopback that records what it
//! receives: JSON and form bodies, Basic and bearer authentication, retries on
//! 5xx, none on 4xx, and an unreachable gateway.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clef::config::Config;
use clef::delivery::{SmsError, SmsSender};
use clef::metrics::Metrics;
use secrecy::SecretString;
use serde_json::Value;

/// One request as the gateway received it.
#[derive(Clone, Debug)]
struct Received {
    content_type: Option<String>,
    authorization: Option<String>,
    body: String,
}

struct Gateway {
    url: url::Url,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Gateway {
    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

/// A gateway on loopback answering `statuses` in turn, then the last one again.
async fn gateway(statuses: &[u16]) -> Gateway {
    let statuses: Arc<Vec<u16>> = Arc::new(statuses.to_vec());
    let received = Arc::new(Mutex::new(Vec::new()));
    let log = received.clone();
    let app = axum::Router::new().route(
        "/sms",
        post(move |headers: HeaderMap, body: Bytes| {
            let log = log.clone();
            let statuses = statuses.clone();
            async move {
                let header = |name| {
                    headers
                        .get(name)
                        .map(|v: &header::HeaderValue| v.to_str().unwrap().to_owned())
                };
                let mut log = log.lock().unwrap();
                log.push(Received {
                    content_type: header(header::CONTENT_TYPE),
                    authorization: header(header::AUTHORIZATION),
                    body: String::from_utf8(body.to_vec()).unwrap(),
                });
                let status = statuses[(log.len() - 1).min(statuses.len() - 1)];
                // A refusal says why, quoting the request (as some gateways do).
                let why = format!(
                    "insufficient credit; request was {}",
                    log.last().unwrap().body
                );
                (StatusCode::from_u16(status).unwrap(), why)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/sms", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Gateway { url, received }
}

fn gateway_config(data: &tempfile::TempDir, url: url::Url) -> Config {
    Config {
        data_dir: data.path().to_owned(),
        sms_gateway_url: Some(url),
        sms_gateway_timeout: 2,
        ..Config::default()
    }
}

const TEXT: &str = "Clef : votre code est 123456. \"Ne le donnez à personne\" & bonne journée";

#[tokio::test]
async fn a_json_body_with_basic_authentication_reaches_the_gateway() {
    let data = tempfile::tempdir().unwrap();
    let gateway = gateway(&[200]).await;
    let config = Config {
        sms_gateway_username: Some("ecole".into()),
        sms_gateway_password: Some(SecretString::from("s3cret:<&>")),
        sms_sender: "Ecole".into(),
        ..gateway_config(&data, gateway.url.clone())
    };
    let sms = SmsSender::from_config(&config, Metrics::default()).unwrap();
    sms.send("+33612345678", TEXT).await.unwrap();

    let received = gateway.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.content_type.as_deref(), Some("application/json"));
    let expected = format!("Basic {}", STANDARD.encode("ecole:s3cret:<&>"));
    assert_eq!(request.authorization.as_deref(), Some(expected.as_str()));
    let body: Value = serde_json::from_str(&request.body).expect(&request.body);
    assert_eq!(
        body,
        serde_json::json!({ "to": "+33612345678", "text": TEXT, "sender": "Ecole" })
    );
    // Nothing written to the outbox when a gateway is configured.
    assert!(!config.outbox_dir().join("sms").exists());
}

#[tokio::test]
async fn a_form_body_with_a_bearer_token_reaches_the_gateway() {
    let data = tempfile::tempdir().unwrap();
    let gateway = gateway(&[201]).await;
    let config = Config {
        sms_gateway_token: Some(SecretString::from("tok-123")),
        sms_gateway_body: "to={{ to | urlencode }}&msg={{ text | urlencode }}".into(),
        sms_gateway_content_type: "application/x-www-form-urlencoded".into(),
        ..gateway_config(&data, gateway.url.clone())
    };
    let sms = SmsSender::from_config(&config, Metrics::default()).unwrap();
    sms.send("+33612345678", TEXT).await.unwrap();

    let received = gateway.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(
        request.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(request.authorization.as_deref(), Some("Bearer tok-123"));
    let form: Vec<(String, String)> = url::form_urlencoded::parse(request.body.as_bytes())
        .into_owned()
        .collect();
    assert_eq!(
        form,
        [
            ("to".to_owned(), "+33612345678".to_owned()),
            ("msg".to_owned(), TEXT.to_owned()),
        ]
    );
}

#[tokio::test]
async fn a_gateway_that_recovers_gets_the_message_on_a_retry() {
    let data = tempfile::tempdir().unwrap();
    let gateway = gateway(&[503, 503, 200]).await;
    let metrics = Metrics::default();
    let sms = SmsSender::from_config(&gateway_config(&data, gateway.url.clone()), metrics.clone())
        .unwrap();
    sms.send("0612345678", "code 123456").await.unwrap();
    assert_eq!(gateway.received().len(), 3);
    let text = metrics.render().unwrap();
    assert!(
        text.contains("clef_sms_total{outcome=\"sent\"} 1"),
        "{text}"
    );
    assert!(!text.contains("outcome=\"failed\"} 1"), "{text}");
}

#[tokio::test]
async fn server_errors_are_retried_and_client_errors_are_not() {
    let data = tempfile::tempdir().unwrap();
    let failing = gateway(&[500]).await;
    let metrics = Metrics::default();
    let config = Config {
        sms_gateway_retries: 3,
        ..gateway_config(&data, failing.url.clone())
    };
    let sms = SmsSender::from_config(&config, metrics.clone()).unwrap();
    let error = sms.send("0612345678", "code 123456").await.unwrap_err();
    assert!(
        matches!(error, SmsError::Rejected { status: 500, .. }),
        "{error:?}"
    );
    // The gateway's reason is told, its quotes of the number and the code
    // masked (the log must not open the account).
    let told = error.to_string();
    assert!(told.contains("insufficient credit"), "{told}");
    assert!(
        !told.contains("123456") && !told.contains("612345678"),
        "{told}"
    );
    assert_eq!(failing.received().len(), 1 + 3);
    let text = metrics.render().unwrap();
    assert!(
        text.contains("clef_sms_total{outcome=\"failed\"} 1"),
        "{text}"
    );

    for status in [400, 401, 404] {
        let refusing = gateway(&[status]).await;
        let sms = SmsSender::from_config(
            &gateway_config(&data, refusing.url.clone()),
            Metrics::default(),
        )
        .unwrap();
        let error = sms.send("0612345678", "code 123456").await.unwrap_err();
        assert!(
            matches!(error, SmsError::Rejected { status: s, .. } if s == status),
            "{error:?}"
        );
        assert_eq!(refusing.received().len(), 1, "{status} is not retried");
    }

    // Too many requests: worth another try.
    let busy = gateway(&[429, 200]).await;
    let sms = SmsSender::from_config(&gateway_config(&data, busy.url.clone()), Metrics::default())
        .unwrap();
    sms.send("0612345678", "code 123456").await.unwrap();
    assert_eq!(busy.received().len(), 2);
}

#[tokio::test]
async fn an_unreachable_gateway_fails_quickly() {
    let data = tempfile::tempdir().unwrap();
    // A port that was free a moment ago, and that nobody listens on now.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url: url::Url = format!("http://127.0.0.1:{port}/sms").parse().unwrap();
    let sms = SmsSender::from_config(&gateway_config(&data, url), Metrics::default()).unwrap();
    let started = Instant::now();
    let error = sms.send("0612345678", "code 123456").await.unwrap_err();
    assert!(matches!(error, SmsError::Unreachable(_)), "{error:?}");
    // Two retries after 200 and 400 ms: well under the 2 s timeout per attempt.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(!error.to_string().contains("123456"), "{error}");
}
